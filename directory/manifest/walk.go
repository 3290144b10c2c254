package manifest

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// walker checks a node tree against Go types before it is decoded. It substitutes ${NAME} references, reports
// unknown fields, wrong types and duplicate keys with their lines, records the line of every field path for
// the semantic checks, and replaces each rejected value with null so that decoding what is left cannot fail.
type walker struct {
	getenv func(string) (string, bool) // nil: no ${NAME} substitution (JSON)
	json   bool                        // JSON input: strict scalar types, JSON words in messages
	lines  map[string]int              // field path → line of its key (or list item)
	errs   Errors
	broken map[string]bool // paths whose value was rejected: semantic errors at or under them are dropped
}

func newWalker(getenv func(string) (string, bool), json bool) *walker {
	return &walker{getenv: getenv, json: json, lines: map[string]int{}, broken: map[string]bool{}}
}

var (
	durationType = reflect.TypeFor[Duration]()
	byteSizeType = reflect.TypeFor[ByteSize]()
)

const (
	strTag   = "!!str"
	boolTag  = "!!bool"
	intTag   = "!!int"
	floatTag = "!!float"
	nullTag  = "!!null"
	timeTag  = "!!timestamp"
)

// fail records a problem with the value at path and marks the path broken.
func (w *walker) fail(n *yaml.Node, path, format string, args ...any) {
	w.errs = append(w.errs, Error{Field: path, Line: n.Line, Message: fmt.Sprintf(format, args...)})
	w.broken[path] = true
}

// isBroken reports whether field is at or under a path whose value was rejected.
func (w *walker) isBroken(field string) bool {
	for p := range w.broken {
		if field == p || strings.HasPrefix(field, p+".") || strings.HasPrefix(field, p+"[") {
			return true
		}
	}
	return false
}

// walk checks n against type t. It returns false when the value is rejected; the caller then replaces it with
// null.
func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) bool {
	if n.Kind == yaml.AliasNode {
		w.fail(n, path, "aliases (*%s) are not supported in a manifest; write the value out", n.Value)
		return false
	}
	substituted := false
	if n.Kind == yaml.ScalarNode && w.getenv != nil {
		var ok bool
		if substituted, ok = w.substitute(n, path); !ok {
			w.broken[path] = true
			return false
		}
	}
	if !substituted && n.Kind == yaml.ScalarNode && n.ShortTag() == nullTag {
		return true // null: the zero value
	}
	switch t {
	case durationType:
		return w.parsed(n, path, substituted, `a duration like "100ms"`, false, func(s string) error { _, err := ParseDuration(s); return err })
	case byteSizeType:
		return w.parsed(n, path, substituted, `a size like "16MiB"`, true, func(s string) error { _, err := ParseByteSize(s); return err })
	}
	switch t.Kind() {
	case reflect.String:
		return w.str(n, path, substituted)
	case reflect.Bool:
		return w.boolean(n, path, substituted)
	case reflect.Slice:
		return w.list(n, t, path)
	case reflect.Map:
		return w.mapping(n, t, path)
	case reflect.Struct:
		return w.object(n, t, path)
	}
	panic("manifest: no walker for field type " + t.String()) // a broken invariant: a new field type needs a case
}

func (w *walker) str(n *yaml.Node, path string, substituted bool) bool {
	if n.Kind != yaml.ScalarNode {
		w.fail(n, path, "expected a string, got %s", w.describe(n))
		return false
	}
	if !substituted {
		switch tag := n.ShortTag(); {
		case tag == strTag:
		case w.json:
			w.fail(n, path, "expected a string, got %s", w.describe(n))
			return false
		case tag == intTag || tag == floatTag || tag == boolTag || tag == timeTag:
			// A plain YAML scalar such as 12345 or 2024-01-01 is read as the text written.
		default:
			w.fail(n, path, "expected a string, got %s", w.describe(n))
			return false
		}
	}
	n.Tag = strTag
	return true
}

func (w *walker) boolean(n *yaml.Node, path string, substituted bool) bool {
	if n.Kind != yaml.ScalarNode || (!substituted && n.ShortTag() != boolTag) {
		got := w.describe(n)
		if n.Kind == yaml.ScalarNode && n.ShortTag() == strTag && len(n.Value) <= 40 {
			got = strconv.Quote(n.Value)
		}
		w.fail(n, path, "expected true or false, got %s", got)
		return false
	}
	var v bool
	switch n.Value {
	case "true", "True", "TRUE":
		v = true
	case "false", "False", "FALSE":
	default:
		w.fail(n, path, "expected true or false, got %q", n.Value)
		return false
	}
	n.Tag, n.Value, n.Style = boolTag, strconv.FormatBool(v), 0
	return true
}

// parsed checks a scalar written as text and read by parse (durations, sizes). A JSON number is allowed
// only when jsonNumber is set.
func (w *walker) parsed(n *yaml.Node, path string, substituted bool, want string, jsonNumber bool, parse func(string) error) bool {
	ok := n.Kind == yaml.ScalarNode
	if ok && !substituted {
		switch tag := n.ShortTag(); {
		case tag == strTag:
		case w.json:
			ok = tag == intTag && jsonNumber
		default:
			ok = tag == intTag || tag == floatTag
		}
	}
	if !ok {
		w.fail(n, path, "expected %s, got %s", want, w.describe(n))
		return false
	}
	if err := parse(n.Value); err != nil {
		w.fail(n, path, "%v", err)
		return false
	}
	n.Tag = strTag
	return true
}

func (w *walker) list(n *yaml.Node, t reflect.Type, path string) bool {
	if n.Kind != yaml.SequenceNode {
		msg := fmt.Sprintf("expected %s, got %s", w.word("a list", "an array"), w.describe(n))
		if !w.json && n.Kind == yaml.ScalarNode && t.Elem().Kind() == reflect.String && len(n.Value) <= 40 && !strings.ContainsAny(n.Value, "\n,[]") {
			msg += fmt.Sprintf("; write [%s] for a list of one", n.Value)
		}
		w.fail(n, path, "%s", msg)
		return false
	}
	for i, item := range n.Content {
		p := path + "[" + strconv.Itoa(i) + "]"
		w.lines[p] = item.Line
		if !w.walk(item, t.Elem(), p) {
			n.Content[i] = null(item)
		}
	}
	return true
}

func (w *walker) mapping(n *yaml.Node, t reflect.Type, path string) bool {
	if n.Kind != yaml.MappingNode {
		w.fail(n, path, "expected %s, got %s", w.word("a mapping", "an object"), w.describe(n))
		return false
	}
	seen := map[string]int{}
	kept := make([]*yaml.Node, 0, len(n.Content))
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key, ok := w.key(k, path)
		if !ok {
			continue
		}
		p := joinKey(path, key)
		if first, dup := seen[key]; dup {
			w.fail(k, p, "%s", w.duplicate(first))
			continue
		}
		seen[key] = k.Line
		w.lines[p] = k.Line
		if !w.walk(v, t.Elem(), p) {
			v = null(v)
		}
		kept = append(kept, k, v)
	}
	n.Content = kept
	return true
}

func (w *walker) object(n *yaml.Node, t reflect.Type, path string) bool {
	if n.Kind != yaml.MappingNode {
		w.fail(n, path, "expected %s, got %s", w.word("a mapping", "an object"), w.describe(n))
		return false
	}
	fields, names := fieldsOf(t)
	seen := map[string]int{}
	suggested := map[string]bool{}
	kept := make([]*yaml.Node, 0, len(n.Content))
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key, ok := w.key(k, path)
		if !ok {
			continue
		}
		p := joinField(path, key)
		if first, dup := seen[key]; dup {
			w.fail(k, p, "%s", w.duplicate(first))
			continue
		}
		seen[key] = k.Line
		ft, known := fields[key]
		if !known {
			msg := "unknown field"
			if key == "<<" {
				msg = "merge keys (<<) are not supported in a manifest; write the fields out"
			} else if s := suggest(key, names); s != "" {
				msg += " (did you mean " + s + "?)"
				suggested[s] = true
			}
			w.errs = append(w.errs, Error{Field: p, Line: k.Line, Message: msg})
			continue
		}
		w.lines[p] = k.Line
		if !w.walk(v, ft, p) {
			v = null(v)
		}
		kept = append(kept, k, v)
	}
	n.Content = kept
	// A misspelt field explains the absence of the one it resembles: "redirect_uris is required" would only
	// repeat the unknown-field error.
	for s := range suggested {
		if _, present := seen[s]; !present {
			w.broken[joinField(path, s)] = true
		}
	}
	return true
}

// key checks a mapping key: a non-null scalar.
func (w *walker) key(k *yaml.Node, path string) (string, bool) {
	if k.Kind != yaml.ScalarNode || k.ShortTag() == nullTag {
		w.errs = append(w.errs, Error{Field: path, Line: k.Line, Message: fmt.Sprintf("a key must be a string, got %s", w.describe(k))})
		return "", false
	}
	k.Tag = strTag
	return k.Value, true
}

func (w *walker) duplicate(firstLine int) string {
	if w.json || firstLine == 0 {
		return "duplicate key"
	}
	return fmt.Sprintf("duplicate key (first at line %d)", firstLine)
}

func (w *walker) word(yamlWord, jsonWord string) string {
	if w.json {
		return jsonWord
	}
	return yamlWord
}

// describe names the kind of value n holds, for "expected X, got Y".
func (w *walker) describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return w.word("a mapping", "an object")
	case yaml.SequenceNode:
		return w.word("a list", "an array")
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch tag := n.ShortTag(); tag {
		case strTag:
			return "a string"
		case intTag, floatTag:
			return "a number"
		case boolTag:
			return "a boolean"
		case nullTag:
			return "null"
		case timeTag:
			return "a timestamp"
		default:
			return "a value tagged " + tag
		}
	}
	return "nothing"
}

func null(n *yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: nullTag, Value: "null", Line: n.Line, Column: n.Column}
}

// fieldsOf lists the fields of struct type t by yaml name, and the names in declaration order.
func fieldsOf(t reflect.Type) (map[string]reflect.Type, []string) {
	fields := map[string]reflect.Type{}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
		names = append(names, name)
	}
	return fields, names
}

var simpleKeyRe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// joinField appends a struct field name to a path: "apps[0]" + "name" = "apps[0].name".
func joinField(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// joinKey appends a map key to a path: "branding.colors" + "primary" = "branding.colors.primary"; a key that
// is not a simple word is quoted: branding.colors["a.b"].
func joinKey(path, key string) string {
	if simpleKeyRe.MatchString(key) {
		return joinField(path, key)
	}
	return path + "[" + strconv.Quote(key) + "]"
}

// parentPath removes the last element of a path: "apps[0].name" → "apps[0]" → "apps" → "".
func parentPath(p string) string {
	if strings.HasSuffix(p, `"]`) {
		if i := strings.LastIndex(p, `["`); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexAny(p, ".["); i >= 0 {
		return p[:i]
	}
	return ""
}

var envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// substitute replaces ${NAME} references in the scalar n and turns $${ into ${. It reports whether a variable
// was substituted (the value is then read afresh for its target type), and false for ok when a reference is
// malformed or names an unset variable.
func (w *walker) substitute(n *yaml.Node, path string) (substituted, ok bool) {
	s := n.Value
	if !strings.Contains(s, "${") {
		return false, true
	}
	ok = true
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		s = s[i:]
		switch {
		case strings.HasPrefix(s, "$${"):
			b.WriteString("${")
			s = s[3:]
		case strings.HasPrefix(s, "${"):
			end := strings.IndexByte(s, '}')
			if end < 0 {
				w.errs = append(w.errs, Error{Field: path, Line: n.Line, Message: `unterminated "${": write ${NAME}, or $${ for a literal "${"`})
				return false, false
			}
			name := s[2:end]
			s = s[end+1:]
			if !envNameRe.MatchString(name) {
				w.errs = append(w.errs, Error{Field: path, Line: n.Line, Message: fmt.Sprintf("invalid variable name %q in ${...}: use letters, digits and _, not starting with a digit (or $${ for a literal \"${\")", name)})
				ok = false
				continue
			}
			v, found := w.getenv(name)
			if !found {
				w.errs = append(w.errs, Error{Field: path, Line: n.Line, Message: fmt.Sprintf("environment variable %s is not set", name)})
				ok = false
				continue
			}
			b.WriteString(v)
			substituted = true
		default:
			b.WriteByte('$')
			s = s[1:]
		}
	}
	if ok {
		n.Value = b.String()
	}
	return substituted, ok
}
