package pages

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
)

// element is a parsed HTML element, enough of one for the structural checks.
type element struct {
	name   string
	attrs  map[string]string
	parent *element
	kids   []*element
	text   strings.Builder
}

func (e *element) has(attr string) bool { _, ok := e.attrs[attr]; return ok }

func (e *element) walk(f func(*element)) {
	f(e)
	for _, k := range e.kids {
		k.walk(f)
	}
}

func (e *element) all(name string) []*element {
	var out []*element
	e.walk(func(x *element) {
		if x.name == name {
			out = append(out, x)
		}
	})
	return out
}

// inside reports whether e has an ancestor named name.
func (e *element) inside(name string) bool {
	for p := e.parent; p != nil; p = p.parent {
		if p.name == name {
			return true
		}
	}
	return false
}

// textContent is the text of e and its descendants.
func (e *element) textContent() string {
	var b strings.Builder
	e.walk(func(x *element) { b.WriteString(x.text.String()) })
	return b.String()
}

// parseHTML reads the pages' HTML with encoding/xml in its lenient HTML mode (golang.org/x/net/html is
// not a dependency of the module). The pages are written so that this is enough: void elements are the
// standard ones, and there is no '<' or '&' in the style sheet.
func parseHTML(t *testing.T, doc string) *element {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(doc))
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity
	root := &element{name: "#document", attrs: map[string]string{}}
	cur := root
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("parsing the page: %v\n%s", err, doc)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			e := &element{name: strings.ToLower(tok.Name.Local), attrs: map[string]string{}, parent: cur}
			for _, a := range tok.Attr {
				name := strings.ToLower(a.Name.Local)
				if a.Name.Space != "" {
					name = strings.ToLower(a.Name.Space) + ":" + name
				}
				if _, dup := e.attrs[name]; dup {
					t.Errorf("<%s> has attribute %s twice", e.name, name)
				}
				e.attrs[name] = a.Value
			}
			cur.kids = append(cur.kids, e)
			cur = e
		case xml.EndElement:
			if cur.parent != nil {
				cur = cur.parent
			}
		case xml.CharData:
			cur.text.Write(tok)
		}
	}
	return root
}

// checkPage holds a rendered page to the hosted-page rules (CONTRACT.md "Hosted pages"): labels on every
// input, one submit button and a CSRF field per form, no script, one hashed style element, lang and dir,
// unique ids and aria-describedby pointing at them.
func checkPage(t *testing.T, p Page, doc string) *element {
	t.Helper()
	lower := strings.ToLower(doc)
	for _, banned := range []string{"<script", "javascript:", " style=", "<iframe", "<object", "<embed", "<svg"} {
		if strings.Contains(lower, banned) {
			t.Errorf("page contains %q", banned)
		}
	}
	root := parseHTML(t, doc)

	htmls := root.all("html")
	if len(htmls) != 1 || htmls[0].attrs["lang"] == "" || (htmls[0].attrs["dir"] != "ltr" && htmls[0].attrs["dir"] != "rtl") {
		t.Errorf("want one <html> with lang and dir, got %v", htmls)
	}

	styles := root.all("style")
	if len(styles) != 1 {
		t.Fatalf("want exactly one <style>, got %d", len(styles))
	}
	start := strings.Index(doc, "<style>") + len("<style>")
	end := strings.Index(doc, "</style>")
	sum := sha256.Sum256([]byte(doc[start:end]))
	if got, want := StyleHash(p), "sha256-"+base64.StdEncoding.EncodeToString(sum[:]); got != want {
		t.Errorf("StyleHash = %s, the style element hashes to %s", got, want)
	}

	ids := map[string]bool{}
	root.walk(func(e *element) {
		for a := range e.attrs {
			if strings.HasPrefix(a, "on") {
				t.Errorf("<%s> has event handler attribute %s", e.name, a)
			}
		}
		if id, ok := e.attrs["id"]; ok {
			if id == "" || ids[id] {
				t.Errorf("id %q empty or repeated", id)
			}
			ids[id] = true
		}
	})
	root.walk(func(e *element) {
		if refs, ok := e.attrs["aria-describedby"]; ok {
			for _, ref := range strings.Fields(refs) {
				if !ids[ref] {
					t.Errorf("<%s> aria-describedby names %q, which is no element's id", e.name, ref)
				}
			}
		}
	})

	labels := map[string]int{}
	for _, l := range root.all("label") {
		labels[l.attrs["for"]]++
		if strings.TrimSpace(l.textContent()) == "" {
			t.Errorf("label for %q is empty", l.attrs["for"])
		}
	}
	for _, in := range root.all("input") {
		if !in.inside("form") {
			t.Errorf("input %q outside a form", in.attrs["name"])
		}
		if in.attrs["name"] == "" {
			t.Errorf("input %q has no name", in.attrs["id"])
		}
		if in.attrs["type"] == "hidden" {
			continue
		}
		if id := in.attrs["id"]; id == "" || labels[id] != 1 {
			t.Errorf("input %q: want exactly one <label for>, got %d", id, labels[id])
		}
		if in.attrs["type"] == "password" && in.has("value") {
			t.Errorf("password input carries a value")
		}
	}
	for _, b := range root.all("button") {
		if !b.inside("form") {
			t.Errorf("button outside a form")
		}
	}
	for i, f := range root.all("form") {
		if f.attrs["method"] != "post" || !f.has("action") {
			t.Errorf("form %d: want method=post and an action, got %v", i, f.attrs)
		}
		var submits, csrf int
		f.walk(func(e *element) {
			switch {
			case e.name == "button" && e.attrs["type"] == "submit":
				submits++
			case e.name == "button":
				t.Errorf("form %d: a button without type=submit", i)
			case e.name == "input" && (e.attrs["type"] == "submit" || e.attrs["type"] == "image"):
				submits++
			case e.name == "input" && e.attrs["type"] == "hidden" && e.attrs["name"] == FieldCSRF:
				csrf++
				if e.attrs["value"] != p.CSRF {
					t.Errorf("form %d: CSRF field %q, want %q", i, e.attrs["value"], p.CSRF)
				}
			}
		})
		if submits != 1 {
			t.Errorf("form %d: %d submit buttons, want exactly one", i, submits)
		}
		if csrf != 1 {
			t.Errorf("form %d: %d CSRF fields, want exactly one", i, csrf)
		}
	}

	if body := root.all("body"); len(body) == 1 {
		text := body[0].textContent()
		for _, ph := range []string{"{company}", "{email}", "{min}", "{max}"} {
			if strings.Contains(text, ph) {
				t.Errorf("placeholder %s left in the page", ph)
			}
		}
	} else {
		t.Errorf("want one <body>")
	}
	return root
}
