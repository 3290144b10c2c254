package tokens

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"sync"
)

// scratch is a reusable buffer for a token's claims JSON before it is base64url-encoded.
type scratch struct{ b []byte }

var scratchPool = sync.Pool{New: func() any { return &scratch{b: make([]byte, 0, 1024)} }}

// appendClaimsJSON appends the JSON object of c to dst, byte for byte what encoding/json writes for the
// map (members sorted by name, the same escaping), but without reflection for the types tokens carry:
// strings, integers, integral floats, booleans, nil and []string. Any other value goes through
// encoding/json.
func appendClaimsJSON(dst []byte, c Claims) ([]byte, error) {
	var arr [24]string
	names := arr[:0]
	for name := range c {
		names = append(names, name)
	}
	slices.Sort(names)
	dst = append(dst, '{')
	var err error
	for i, name := range names {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, name)
		dst = append(dst, ':')
		if dst, err = appendJSONValue(dst, c[name]); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

func appendJSONValue(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		return appendJSONString(dst, x), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case bool:
		return strconv.AppendBool(dst, x), nil
	case nil:
		return append(dst, "null"...), nil
	case float64:
		// encoding/json writes integral floats below 1e21 without exponent or fraction.
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 && (x != 0 || !math.Signbit(x)) { // not -0
			return strconv.AppendInt(dst, int64(x), 10), nil
		}
	case []string:
		if x == nil {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '[')
		for i, s := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, s)
		}
		return append(dst, ']'), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// appendJSONString writes printable ASCII that needs no escaping as it is and leaves anything else to
// encoding/json, so the escaping (HTML-safe, invalid UTF-8 replaced) is exactly encoding/json's.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always encodes
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
