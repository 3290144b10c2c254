package sdk

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// A hand-written JSON reader for the request. Inside wasm, encoding/json's reflection and its loops are
// most of a small extension's cost: the host checks for interruption at every wasm loop header, and Go
// compiles each function to one loop that every call and every backward jump goes through. So the
// envelope and Request.String read the bytes directly: one pass, no reflection, strings eight bytes at
// a time, and an allocation only for a string that has escapes or broken UTF-8. (On the claims
// example, the SDK's part of a call went from about 600 µs to about 70 µs; BenchmarkInvoke/go-claims.)
//
// Every function here takes the index of a value's first byte and returns the index just past it, or
// -1 when the bytes are not JSON: they never read out of bounds and always move forward, so malformed
// input ends the scan. What counts as JSON is exactly what encoding/json accepts (RFC 8259, bytes
// that are not UTF-8 allowed inside strings, at most maxDepth nested arrays and objects), so that the
// SDK accepts and refuses the same requests as before.

// maxDepth is encoding/json's nesting limit: a deeper request is not JSON to it.
const maxDepth = 10000

// The envelope's fields, as matchField names them.
const (
	fieldNone = iota
	fieldType
	fieldSource
	fieldData
)

// parseEnvelope reads in the way json.Unmarshal(in, &req) does: ok is false exactly when that fails,
// i.e. when in is not JSON, or is neither an object nor null, or has a type or source that is neither
// a string nor null. Data aliases in.
func parseEnvelope(in []byte) (req Request, ok bool) {
	i := skipSpace(in, 0)
	if i < len(in) && in[i] == 'n' {
		i = skipLiteral(in, i, "null")
		return Request{}, i >= 0 && skipSpace(in, i) == len(in)
	}
	if i >= len(in) || in[i] != '{' {
		return Request{}, false
	}
	i = skipSpace(in, i+1)
	if i < len(in) && in[i] == '}' {
		return req, skipSpace(in, i+1) == len(in)
	}
	for {
		if i >= len(in) || in[i] != '"' {
			return req, false
		}
		ks := i
		var plain bool
		if i, plain = scanString(in, i); i < 0 {
			return req, false
		}
		field := matchField(in[ks+1:i-1], plain)
		if i = skipSpace(in, i); i >= len(in) || in[i] != ':' {
			return req, false
		}
		vs := skipSpace(in, i+1)
		if i = skipValue(in, vs, 1); i < 0 {
			return req, false
		}
		switch field {
		case fieldType, fieldSource:
			// A string field takes a string; null leaves it as it was; anything else is a type error.
			switch in[vs] {
			case '"':
				s := decodeString(in[vs+1 : i-1])
				if field == fieldType {
					req.Type = s
				} else {
					req.Source = s
				}
			case 'n':
			default:
				return req, false
			}
		case fieldData:
			req.Data = in[vs:i:i]
		}
		if i = skipSpace(in, i); i >= len(in) {
			return req, false
		}
		switch in[i] {
		case ',':
			i = skipSpace(in, i+1)
		case '}':
			return req, skipSpace(in, i+1) == len(in)
		default:
			return req, false
		}
	}
}

// matchField is encoding/json's choice of struct field for a key (raw, between its quotes; plain as
// scanString says): the exact name, else the name folded for case (strings.EqualFold folds as
// encoding/json does, so "ſource" is source too).
func matchField(raw []byte, plain bool) int {
	key := string(raw) // no allocation: only compared
	if !plain {
		key = decodeString(raw)
	}
	switch key {
	case "type":
		return fieldType
	case "source":
		return fieldSource
	case "data":
		return fieldData
	}
	if plain && len(key) != 4 && len(key) != 6 {
		return fieldNone // folding ASCII keeps the length
	}
	switch {
	case strings.EqualFold(key, "type"):
		return fieldType
	case strings.EqualFold(key, "source"):
		return fieldSource
	case strings.EqualFold(key, "data"):
		return fieldData
	}
	return fieldNone
}

// lookup returns the value at path in doc (each element an object key), as json.Unmarshal into a
// map[string]json.RawMessage at each step would find it: the whole of doc must be JSON, and a key
// that appears twice means its last value.
func lookup(doc []byte, path []string) ([]byte, bool) {
	i := skipSpace(doc, 0)
	end := -1
	for n, key := range path {
		start, stop, next := findMember(doc, i, key, utf8.ValidString(key))
		if next < 0 {
			return nil, false
		}
		// The first step reads the whole document, so it is also the check that doc is JSON; the
		// values it leads to are parts of it, and so JSON too.
		if n == 0 && skipSpace(doc, next) != len(doc) {
			return nil, false
		}
		if start < 0 {
			return nil, false
		}
		i, end = start, stop
	}
	return doc[i:end], true
}

// findMember reads the object at doc[i] and returns the bounds of key's last value in it (start -1
// when it has none) and the index past the object; next is -1 when doc[i] is not an object or the
// object is not JSON. A key that is not UTF-8 (validKey false) is in no object: keys decode to UTF-8.
func findMember(doc []byte, i int, key string, validKey bool) (start, stop, next int) {
	start, stop = -1, -1
	if i >= len(doc) || doc[i] != '{' {
		return -1, -1, -1
	}
	i = skipSpace(doc, i+1)
	if i < len(doc) && doc[i] == '}' {
		return -1, -1, i + 1
	}
	for {
		if i >= len(doc) || doc[i] != '"' {
			return -1, -1, -1
		}
		ks := i
		var plain bool
		if i, plain = scanString(doc, i); i < 0 {
			return -1, -1, -1
		}
		raw := doc[ks+1 : i-1]
		match := validKey && (plain && string(raw) == key || !plain && decodeString(raw) == key)
		if i = skipSpace(doc, i); i >= len(doc) || doc[i] != ':' {
			return -1, -1, -1
		}
		vs := skipSpace(doc, i+1)
		if i = skipValue(doc, vs, 1); i < 0 {
			return -1, -1, -1
		}
		if match {
			start, stop = vs, i
		}
		if i = skipSpace(doc, i); i >= len(doc) {
			return -1, -1, -1
		}
		switch doc[i] {
		case ',':
			i = skipSpace(doc, i+1)
		case '}':
			return start, stop, i + 1
		default:
			return -1, -1, -1
		}
	}
}

// valueText is Request.String's answer for a value read from a document (no space around it):
// strings decoded, numbers and booleans as their text, null, objects and arrays not found.
func valueText(v []byte) (string, bool) {
	if len(v) == 0 {
		return "", false
	}
	switch v[0] {
	case '"':
		return decodeString(v[1 : len(v)-1]), true
	case 'n', '{', '[':
		return "", false
	}
	return string(v), true
}

// jsonText is Request.String with no path, over Data as the handler may have set it: what the
// json.Unmarshal-based version answered, quirks included (Data with space around a number is returned
// as it is).
func jsonText(raw []byte) (string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", false
	}
	// json.Unmarshal(raw, &s) succeeds when raw is JSON and holds a string or null.
	if i := skipSpace(raw, 0); valid(raw) {
		switch raw[i] {
		case '"':
			return decodeString(raw[i+1 : skipString(raw, i)-1]), true
		case 'n':
			return "", true
		}
	}
	if raw[0] == '{' || raw[0] == '[' {
		return "", false
	}
	return string(raw), true
}

// valid reports whether b is one JSON value with optional space around it.
func valid(b []byte) bool {
	i := skipValue(b, skipSpace(b, 0), 0)
	return i >= 0 && skipSpace(b, i) == len(b)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipValue returns the index past the value at b[i], which sits inside depth arrays and objects.
func skipValue(b []byte, i, depth int) int {
	if i >= len(b) {
		return -1
	}
	switch c := b[i]; c {
	case '"':
		return skipString(b, i)
	case '{', '[':
		if depth >= maxDepth {
			return -1
		}
		return skipContainer(b, i, depth+1)
	case 't':
		return skipLiteral(b, i, "true")
	case 'f':
		return skipLiteral(b, i, "false")
	case 'n':
		return skipLiteral(b, i, "null")
	default:
		if c == '-' || '0' <= c && c <= '9' {
			return skipNumber(b, i)
		}
		return -1
	}
}

// skipContainer returns the index past the object or array at b[i], whose members sit inside depth
// arrays and objects.
func skipContainer(b []byte, i, depth int) int {
	object := b[i] == '{'
	closing := byte(']')
	if object {
		closing = '}'
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == closing {
		return i + 1
	}
	for {
		if object {
			if i >= len(b) || b[i] != '"' {
				return -1
			}
			if i = skipString(b, i); i < 0 {
				return -1
			}
			if i = skipSpace(b, i); i >= len(b) || b[i] != ':' {
				return -1
			}
			i = skipSpace(b, i+1)
		}
		if i = skipValue(b, i, depth); i < 0 {
			return -1
		}
		if i = skipSpace(b, i); i >= len(b) {
			return -1
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case closing:
			return i + 1
		default:
			return -1
		}
	}
}

// skipString returns the index past the string whose opening quote is b[i].
func skipString(b []byte, i int) int {
	i, _ = scanString(b, i)
	return i
}

// scanString returns the index past the string whose opening quote is b[i], and whether the string
// is plain: ASCII without escapes, so its contents are its text.
//
// It looks at eight bytes at a time while none of them needs a closer look: in wasm, a loop's cost
// is mostly its iterations.
func scanString(b []byte, i int) (end int, plain bool) {
	plain = true
	for i++; ; {
		if i+8 <= len(b) {
			stops := stringStops(binary.LittleEndian.Uint64(b[i:]))
			if stops == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(stops) / 8
		} else if i >= len(b) {
			return -1, false
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, plain
		case c < 0x20:
			return -1, false
		case c == '\\':
			plain = false
			if i++; i >= len(b) {
				return -1, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) || hex4(b[i+1:i+5]) < 0 {
					return -1, false
				}
				i += 4
			default:
				return -1, false
			}
		case c >= utf8.RuneSelf:
			plain = false
		}
		i++
	}
}

// Bytes repeated across a uint64, for looking at eight bytes at once.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// stringStops marks the bytes among the eight in x (bytes of a string, the first in the low byte) that
// are a quote, a backslash, a control or not ASCII, by their high bit. A byte after a marked one may be
// marked wrongly, but the lowest mark is right: (x-ones)&^x&highs marks the zero bytes of x, and a
// borrow only moves up.
func stringStops(x uint64) uint64 {
	q := x ^ (ones * '"')
	s := x ^ (ones * '\\')
	return (x | (x-ones*0x20)&^x | (q-ones)&^q | (s-ones)&^s) & highs
}

// skipNumber returns the index past the number at b[i]: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
// What follows it is the caller's to check.
func skipNumber(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return -1
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		if i+1 >= len(b) || !isDigit(b[i+1]) {
			return -1
		}
		i = skipDigits(b, i+1)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return -1
		}
		i = skipDigits(b, i)
	}
	return i
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	return i
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func skipLiteral(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// hex4 is the value of four hex digits, or -1.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// decodeString is the text of a string's raw contents (between its quotes, already checked by
// skipString), decoded as encoding/json does: a \u escape of half a surrogate pair, or bytes that are
// not UTF-8, become U+FFFD.
func decodeString(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return string(raw)
	}
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c == '\\' && i+1 < len(raw) {
			i += 2
			switch e := raw[i-1]; e {
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r := rune(-1)
				if i+4 <= len(raw) {
					r = hex4(raw[i:])
				}
				if r < 0 {
					return string(out) // not reached for checked strings
				}
				i += 4
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
						r2 = hex4(raw[i+2:])
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						r = dec
						i += 6
					} else {
						r = utf8.RuneError
					}
				}
				out = utf8.AppendRune(out, r)
			default: // '"', '\\', '/'
				out = append(out, e)
			}
			continue
		}
		if c < utf8.RuneSelf {
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(raw[i:])
		out = utf8.AppendRune(out, r)
		i += n
	}
	return string(out)
}
