package manifest

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem with a manifest, with where it is.
type Error struct {
	// Field is the path of the field, e.g. "apps[1].redirect_uris[0]"; empty for the document as a whole.
	Field string
	// Line is 1-based; 0 when unknown (JSON input, or a Manifest built in code).
	Line int
	// Message says what is wrong, and where it helps, what to write instead.
	Message string
}

// Error formats e as "line N: field: message", leaving out the parts that are unknown.
func (e Error) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Errors is every problem found in a manifest, sorted by line and then field.
type Errors []Error

// Error lists the problems one per line, each as "line N: field: message".
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems as individual errors, for errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// sorted returns es sorted by line, field and message, without exact duplicates.
func (es Errors) sorted() Errors {
	out := slices.Clone(es)
	slices.SortStableFunc(out, func(a, b Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Field, b.Field), cmp.Compare(a.Message, b.Message))
	})
	return slices.Compact(out)
}

// err returns es as an error: nil when there are none.
func (es Errors) err() error {
	if len(es) == 0 {
		return nil
	}
	return es.sorted()
}
