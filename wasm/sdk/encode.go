package sdk

import (
	"encoding/json"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"unicode/utf8"
)

// A hand-written JSON writer for the response, for the same reason as scan.go: inside wasm,
// json.Marshal's reflection costs more than the rest of a small extension. It writes what json.Marshal
// writes, byte for byte: object keys sorted, strings escaped the same way (HTML's <, > and & as
// \u003c, \u003e and \u0026, U+2028 and U+2029 escaped, bytes that are not UTF-8 as \ufffd), and
// numbers in the same format. Values of other types than the common ones below go to json.Marshal,
// so whatever it does with them (a Marshaler, a struct, a cycle it refuses) it still does.

// fallbackDepth is how deep the writer follows nested maps and slices before it hands the rest to
// json.Marshal, which notices cycles.
const fallbackDepth = 64

// appendResponse appends json.Marshal(r) to b.
func appendResponse(b []byte, r Response) ([]byte, error) {
	b = append(b, `{"data":{"@odata.type":`...)
	b = appendString(b, r.Data.ODataType)
	b = append(b, `,"actions":`...)
	if r.Data.Actions == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, a := range r.Data.Actions {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendMap(b, a, 1); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
	}
	return append(b, "}}"...), nil
}

// appendValue appends json.Marshal(v) to b; depth counts the maps and slices v is inside.
func appendValue(b []byte, v any, depth int) ([]byte, error) {
	if depth > fallbackDepth {
		return appendMarshal(b, v)
	}
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int8:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int16:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int32:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case uint:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case uint8:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case uint16:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case uint64:
		return strconv.AppendUint(b, v, 10), nil
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return appendMarshal(b, v) // for json.Marshal's error
		}
		return appendFloat(b, v, 64), nil
	case float32:
		if math.IsInf(float64(v), 0) || math.IsNaN(float64(v)) {
			return appendMarshal(b, v)
		}
		return appendFloat(b, float64(v), 32), nil
	case []string:
		if v == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		return append(b, ']'), nil
	case []any:
		if v == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		return appendMap(b, v, depth+1)
	case Action:
		return appendMap(b, v, depth+1)
	case map[string]string:
		if v == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '{')
		var buf [8]string
		for i, k := range sortedKeys(buf[:0], v) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, v[k])
		}
		return append(b, '}'), nil
	default:
		return appendMarshal(b, v)
	}
}

func appendMap(b []byte, m map[string]any, depth int) ([]byte, error) {
	if m == nil {
		return append(b, "null"...), nil
	}
	b = append(b, '{')
	var buf [8]string
	for i, k := range sortedKeys(buf[:0], m) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		var err error
		if b, err = appendValue(b, m[k], depth); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// sortedKeys appends m's keys to keys in json.Marshal's order (byte order). The maps of a response
// are small, so the keys usually fit the caller's buffer, and a sort of one or two keys is a compare.
func sortedKeys[V any](keys []string, m map[string]V) []string {
	for k := range m {
		keys = append(keys, k)
	}
	switch {
	case len(keys) == 2:
		if keys[1] < keys[0] {
			keys[0], keys[1] = keys[1], keys[0]
		}
	case len(keys) > 2:
		slices.Sort(keys)
	}
	return keys
}

func appendMarshal(b []byte, v any) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, j...), nil
}

// appendFloat writes f as json.Marshal does: like ES6's Number to String, shortest digits, exponent
// form only below 1e-6 or from 1e21 on, with the exponent unpadded.
func appendFloat(b []byte, f float64, bits int) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if n := len(b); format == 'e' && n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
		b[n-2] = b[n-1] // e-07 → e-7
		b = b[:n-1]
	}
	return b
}

const hexDigits = "0123456789abcdef"

// htmlStops marks the bytes among the eight in x that are not plain, as stringStops does.
// (Written out: a loop over the five would cost more than it saves, in wasm.)
func htmlStops(x uint64) uint64 {
	q, s, lt, gt, amp := x^ones*'"', x^ones*'\\', x^ones*'<', x^ones*'>', x^ones*'&'
	return (x | (x-ones*0x20)&^x | (q-ones)&^q | (s-ones)&^s | (lt-ones)&^lt | (gt-ones)&^gt |
		(amp-ones)&^amp) & highs
}

// load64 is s[i:i+8] as a little-endian uint64 (one load, in wasm).
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// plain is the ASCII bytes a string holds as they are: not the controls, the quote, the backslash, nor
// <, > and &.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString writes s quoted and escaped as json.Marshal does (with its HTML escaping).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if i+8 <= len(s) {
			stops := htmlStops(load64(s, i))
			if stops == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(stops) / 8
		}
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += n
			continue
		}
		i += n
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
