package pages

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/text/language"
)

//go:embed locales/*.json
var localeFiles embed.FS

// fallbackLocale is the language of last resort, and the catalog every other must match id for id.
const fallbackLocale = "en"

// catalogs are the message catalogs of the languages the pages speak, and the matcher that picks one.
type catalogs struct {
	names   []string // supported tags as strings, English first: the matcher's order
	matcher language.Matcher
	msgs    map[string]map[string]string // tag → message id → text
}

// shipped are the catalogs embedded from locales/.
var shipped = mustLoadCatalogs(localeFiles, "locales")

func mustLoadCatalogs(fsys fs.FS, dir string) *catalogs {
	c, err := loadCatalogs(fsys, dir)
	if err != nil {
		panic("pages: " + err.Error()) // the embedded catalogs are broken: a build defect, caught by the tests
	}
	return c
}

// loadCatalogs reads every dir/<tag>.json of fsys. Each is one flat JSON object from message id to text.
func loadCatalogs(fsys fs.FS, dir string) (*catalogs, error) {
	files, err := fs.Glob(fsys, path.Join(dir, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("listing catalogs: %w", err)
	}
	c := &catalogs{msgs: map[string]map[string]string{}}
	var tags []language.Tag
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".json")
		tag, err := language.Parse(name)
		if err != nil {
			return nil, fmt.Errorf("catalog %s: file name is not a language tag: %w", f, err)
		}
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, fmt.Errorf("reading catalog %s: %w", f, err)
		}
		var msgs map[string]string
		if err := json.Unmarshal(b, &msgs); err != nil {
			return nil, fmt.Errorf("parsing catalog %s: %w", f, err)
		}
		c.msgs[tag.String()] = msgs
		tags = append(tags, tag)
	}
	// The matcher falls back to its first tag: make that English.
	slices.SortStableFunc(tags, func(a, b language.Tag) int {
		return strings.Compare(sortKey(a), sortKey(b))
	})
	if len(tags) == 0 || tags[0].String() != fallbackLocale {
		return nil, fmt.Errorf("no %s catalog in %s", fallbackLocale, dir)
	}
	for _, t := range tags {
		c.names = append(c.names, t.String())
	}
	c.matcher = language.NewMatcher(tags)
	return c, nil
}

func sortKey(t language.Tag) string {
	if t.String() == fallbackLocale {
		return ""
	}
	return t.String()
}

// Locales lists the languages the pages are available in, as tags, English first.
func Locales() []string { return slices.Clone(shipped.names) }

// Negotiate picks the language of a page among those with a catalog: the first of the OpenID Connect
// ui_locales parameter (space-separated tags, in order of preference) that matches, else the best match of
// the Accept-Language header (q-values honoured), else the tenant's default, else English. Malformed tags
// are skipped, never an error. It returns a supported tag such as "fr".
//
// # Notes
//
//   - ui_locales: https://openid.net/specs/openid-connect-core-1_0.html#AuthRequest
//   - Accept-Language: https://www.rfc-editor.org/rfc/rfc9110#name-accept-language
func Negotiate(uiLocales, acceptLanguage, tenantDefault string) string {
	return shipped.negotiate(uiLocales, acceptLanguage, tenantDefault)
}

func (c *catalogs) negotiate(uiLocales, acceptLanguage, tenantDefault string) string {
	for _, prefs := range [][]language.Tag{parseTagList(uiLocales), parseAcceptLanguage(acceptLanguage), parseTagList(tenantDefault)} {
		if name, ok := c.match(prefs); ok {
			return name
		}
	}
	return fallbackLocale
}

// resolve maps any tag (a Page's Locale, a tenant's strings key) to the supported tag it reads in.
func (c *catalogs) resolve(locale string) string {
	if _, ok := c.msgs[locale]; ok {
		return locale
	}
	if name, ok := c.match(parseTagList(locale)); ok {
		return name
	}
	return fallbackLocale
}

func (c *catalogs) match(prefs []language.Tag) (string, bool) {
	if len(prefs) == 0 {
		return "", false
	}
	_, i, conf := c.matcher.Match(prefs...)
	if conf == language.No {
		return "", false
	}
	return c.names[i], true
}

// Limits on what a client may make the matcher chew on.
const (
	maxLanguageHeader = 1024
	maxLanguageTags   = 16
)

// parseTagList parses space-separated language tags, skipping malformed ones.
func parseTagList(s string) []language.Tag {
	if len(s) > maxLanguageHeader {
		s = s[:maxLanguageHeader]
	}
	var tags []language.Tag
	for _, f := range strings.Fields(s) {
		if len(tags) == maxLanguageTags {
			break
		}
		if t, err := language.Parse(f); err == nil {
			tags = append(tags, t)
		}
	}
	return tags
}

// parseAcceptLanguage parses an Accept-Language header entry by entry, so that one malformed entry (which
// language.ParseAcceptLanguage would fail the whole header for) costs only itself. Entries with q=0 and the
// wildcard are dropped; the rest come in order of decreasing q, ties in header order.
func parseAcceptLanguage(s string) []language.Tag {
	if len(s) > maxLanguageHeader {
		s = s[:maxLanguageHeader]
	}
	type weighted struct {
		tag language.Tag
		q   float64
	}
	var ws []weighted
	for entry := range strings.SplitSeq(s, ",") {
		if len(ws) == maxLanguageTags {
			break
		}
		name, params, _ := strings.Cut(entry, ";")
		name = strings.TrimSpace(name)
		if name == "" || name == "*" {
			continue
		}
		q := 1.0
		if params = strings.TrimSpace(params); params != "" {
			v, ok := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q=")
			f, err := strconv.ParseFloat(v, 64)
			if !ok || err != nil || f > 1 {
				continue
			}
			q = f
		}
		if q <= 0 {
			continue
		}
		t, err := language.Parse(name)
		if err != nil {
			continue
		}
		ws = append(ws, weighted{t, q})
	}
	slices.SortStableFunc(ws, func(a, b weighted) int {
		switch {
		case a.q > b.q:
			return -1
		case a.q < b.q:
			return 1
		}
		return 0
	})
	tags := make([]language.Tag, len(ws))
	for i, w := range ws {
		tags[i] = w.tag
	}
	return tags
}

// rtlScripts are the ISO 15924 codes of the scripts in current use that are written right to left.
var rtlScripts = map[string]bool{
	"Adlm": true, "Arab": true, "Hebr": true, "Mand": true, "Mend": true, "Nkoo": true,
	"Rohg": true, "Samr": true, "Syrc": true, "Thaa": true, "Yezi": true,
}

// Dir is the text direction of a language, "rtl" or "ltr", for the dir attribute of <html>: right to left
// when the language's script (given in the tag, or else its likely script) is one written that way, as
// Arabic, Hebrew, Persian, Urdu and Dhivehi are.
func Dir(locale string) string {
	t, err := language.Parse(locale)
	if err != nil {
		return "ltr"
	}
	if s, _ := t.Script(); rtlScripts[s.String()] {
		return "rtl"
	}
	return "ltr"
}

// localizer answers a page's message ids in one language: the tenant's own strings first, then the
// language's catalog, then English.
type localizer struct {
	msgs, fallback map[string]string
	tenant         map[string]string
	repl           *strings.Replacer
}

// newLocalizer returns the localizer for a supported locale. vars fill the texts' {name} placeholders.
func (c *catalogs) newLocalizer(locale string, tenantStrings map[string]map[string]string, vars map[string]string) *localizer {
	l := &localizer{msgs: c.msgs[locale], fallback: c.msgs[fallbackLocale], tenant: c.tenantStrings(locale, tenantStrings)}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range vars {
			if !yield(k) {
				return
			}
		}
	})
	pairs := make([]string, 0, 2*len(keys))
	for _, k := range keys {
		pairs = append(pairs, "{"+k+"}", vars[k])
	}
	l.repl = strings.NewReplacer(pairs...)
	return l
}

// tenantStrings picks the tenant's overrides for locale: those filed under that very tag, else under a
// tag that reads in it ("fr-CA" for "fr"), the first such in sorted order.
func (c *catalogs) tenantStrings(locale string, all map[string]map[string]string) map[string]string {
	if m, ok := all[locale]; ok {
		return m
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range all {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range keys {
		if t, err := language.Parse(k); err == nil && t.String() == locale {
			return all[k]
		}
	}
	for _, k := range keys {
		if name, ok := c.match(parseTagList(k)); ok && name == locale {
			return all[k]
		}
	}
	return nil
}

// lookup returns the text of id and whether any layer knows it.
func (l *localizer) lookup(id string) (string, bool) {
	if s, ok := l.tenant[id]; ok && s != "" {
		return l.repl.Replace(s), true
	}
	if s, ok := l.msgs[id]; ok {
		return l.repl.Replace(s), true
	}
	if s, ok := l.fallback[id]; ok {
		return l.repl.Replace(s), true
	}
	return "", false
}

// text is the text of a message id the templates use; a missing one shows as its id (a test keeps the
// catalogs complete).
func (l *localizer) text(id string) string {
	if s, ok := l.lookup(id); ok {
		return s
	}
	return id
}

// message is the text of an error or message the caller named: a known id is localized, anything else is
// caller-written text shown as it is (escaped).
func (l *localizer) message(idOrText string) string {
	if s, ok := l.lookup(idOrText); ok {
		return s
	}
	return idOrText
}
