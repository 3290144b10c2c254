package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Options tunes [ParseYAML].
type Options struct {
	// Getenv looks up the NAME of a ${NAME} reference; nil means os.LookupEnv.
	Getenv func(name string) (value string, ok bool)
}

// ParseYAML parses a manifest written in YAML: it replaces ${NAME} references in scalar values, rejects unknown
// fields, wrong types, duplicate keys and aliases, decodes, and validates (see [Manifest.Validate]).
//
// On any problem it returns nil and an [Errors] holding every problem found, each with its field path and line.
//
// # Notes
//
//   - ${NAME} is replaced after parsing, in values only (never in keys), so a value such as a secret containing
//     ": " or " #" stays one plain string. $${ writes a literal ${. A reference to an unset variable is an
//     error; a variable set to the empty string is not.
//   - A manifest file holds one YAML document.
func ParseYAML(data []byte, opt Options) (*Manifest, error) {
	getenv := opt.Getenv
	if getenv == nil {
		getenv = os.LookupEnv
	}
	root, err := parseYAMLDocument(data)
	if err != nil {
		return nil, err
	}
	return decode(root, newWalker(getenv, false))
}

// ParseJSON parses the JSON form of a manifest: the same field names and shape as the YAML form, unknown fields
// rejected, no ${NAME} substitution. On any problem it returns nil and an [Errors] holding every problem found;
// their Line is 0.
func ParseJSON(data []byte) (*Manifest, error) {
	root, err := jsonToNode(data)
	if err != nil {
		return nil, err
	}
	return decode(root, newWalker(nil, true))
}

// decode walks root against the Manifest type (substituting, checking and pruning), decodes what is left,
// and validates it.
func decode(root *yaml.Node, w *walker) (*Manifest, error) {
	w.lines[""] = root.Line
	if !w.walk(root, reflect.TypeFor[Manifest](), "") {
		return nil, w.errs.err()
	}
	var m Manifest
	if err := root.Decode(&m); err != nil {
		// The walk checked every value, so this is not expected; report it rather than lose it.
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, s := range te.Errors {
				w.errs = append(w.errs, yamlError(s))
			}
		} else {
			w.errs = append(w.errs, yamlError(err.Error()))
		}
		return nil, w.errs.err()
	}
	normalize(reflect.ValueOf(&m).Elem())
	errs := w.errs
	for _, e := range m.validate(w.lines) {
		if !w.isBroken(e.Field) {
			errs = append(errs, e)
		}
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return &m, nil
}

// parseYAMLDocument parses data into a node tree and returns the document's root node.
func parseYAMLDocument(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{Message: "the manifest is empty"}}
		}
		return nil, Errors{syntaxError(data, err)}
	}
	for {
		// Further documents are refused, but an empty one (a trailing "---") is harmless.
		var next yaml.Node
		err := dec.Decode(&next)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, Errors{syntaxError(data, err)}
		}
		if len(next.Content) == 0 || next.Content[0].Kind == yaml.ScalarNode && next.Content[0].ShortTag() == nullTag {
			continue
		}
		return nil, Errors{{Line: next.Content[0].Line, Message: `a manifest holds one YAML document; remove the "---" and what follows it, or split the file`}}
	}
	root := &doc
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	if root.Kind == yaml.DocumentNode || root.Kind == yaml.ScalarNode && root.ShortTag() == nullTag {
		return nil, Errors{{Message: "the manifest is empty"}}
	}
	return root, nil
}

// syntaxError reports a YAML syntax error. A ${NAME} in a flow collection ([...] or {...}) is a common cause:
// "{" and "}" end a plain scalar there, so the reference must be quoted.
func syntaxError(data []byte, err error) Error {
	e := yamlError(err.Error())
	if parserProblems[e.Message] {
		// yaml.v3 reports a parser error (unlike a scanner error) at a 0-based line: the line where the
		// enclosing collection starts, or the problem's own line, or none at all for line 1.
		e.Line++
	}
	if e.Line > 0 {
		lines := bytes.Split(data, []byte("\n"))
		if e.Line <= len(lines) && bytes.Contains(lines[e.Line-1], []byte("${")) {
			e.Message += `; inside [...] or {...} a ${NAME} must be quoted, like "${NAME}"`
		}
	}
	return e
}

// parserProblems are the messages of yaml.v3's parser errors, whose line numbers are 0-based.
var parserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"found undefined tag handle":             true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
}

var yamlLineRe = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlError turns a yaml.v3 error message into an Error, lifting its line number out of the text.
func yamlError(s string) Error {
	if m := yamlLineRe.FindStringSubmatch(s); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Error{Line: line, Message: m[2]}
	}
	return Error{Message: strings.TrimPrefix(s, "yaml: ")}
}

// maxJSONDepth bounds nesting in JSON input; a manifest is a few levels deep.
const maxJSONDepth = 32

// jsonToNode parses JSON into the same node tree the YAML parser produces (with Line 0), so both forms go
// through one walker. Strings are tagged !!str and quoted, so they are never read as another type.
func jsonToNode(data []byte) (*yaml.Node, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, Errors{{Message: "the manifest is empty"}}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	n, err := readJSON(dec, 0)
	if err != nil {
		return nil, Errors{jsonError(err, dec)}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, Errors{{Message: fmt.Sprintf("invalid JSON: unexpected data after the manifest at byte offset %d", dec.InputOffset())}}
	}
	return n, nil
}

func jsonError(err error, dec *json.Decoder) Error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return Error{Message: fmt.Sprintf("invalid JSON at byte offset %d: %v", se.Offset, se)}
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return Error{Message: "invalid JSON: unexpected end of input"}
	default:
		return Error{Message: fmt.Sprintf("invalid JSON at byte offset %d: %v", dec.InputOffset(), err)}
	}
}

func readJSON(dec *json.Decoder, depth int) (*yaml.Node, error) {
	if depth > maxJSONDepth {
		return nil, errors.New("nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch v := tok.(type) {
	case json.Delim:
		var n *yaml.Node
		if v == '{' {
			n = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		} else {
			n = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		}
		for dec.More() {
			if v == '{' {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, _ := k.(string)
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Style: yaml.DoubleQuotedStyle, Value: key})
			}
			item, err := readJSON(dec, depth+1)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, item)
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return nil, err
		}
		return n, nil
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Style: yaml.DoubleQuotedStyle, Value: v}, nil
	case json.Number:
		tag := "!!int"
		if strings.ContainsAny(string(v), ".eE") {
			tag = "!!float"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: string(v)}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v)}, nil
	default: // nil
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
	}
}

// normalize makes empty slices and maps nil, so that "absent" and "empty" decode the same in both forms.
func normalize(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				normalize(v.Field(i))
			}
		}
	case reflect.Slice:
		if v.Len() == 0 {
			v.SetZero()
			return
		}
		for i := range v.Len() {
			normalize(v.Index(i))
		}
	case reflect.Map:
		if v.Len() == 0 {
			v.SetZero()
		}
	}
}
