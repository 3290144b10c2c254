package manifest

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written as a string: "100ms", "15m", "12h", and also whole days, "30d" or
// "1d12h". It marshals to the shortest such form.
type Duration time.Duration

const day = 24 * time.Hour

// ParseDuration parses a duration as Go's time.ParseDuration does, and also accepts a leading number of whole
// days ("30d", "1d12h").
func ParseDuration(s string) (Duration, error) {
	in := s
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("invalid duration %q: empty", in)
	}
	var days int64
	if i := strings.IndexByte(s, 'd'); i > 0 && allDigits(s[:i]) {
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil || n > int64(math.MaxInt64/day) {
			return 0, fmt.Errorf("invalid duration %q: too long", in)
		}
		days, s = n, s[i+1:]
		if s == "" {
			return Duration(time.Duration(days) * day), nil
		}
		if s[0] == '-' || s[0] == '+' {
			return 0, fmt.Errorf("invalid duration %q", in)
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		if allDigits(strings.TrimLeft(s, "+-")) {
			return 0, fmt.Errorf("invalid duration %q: missing unit; write it like \"100ms\", \"15m\", \"12h\" or \"30d\"", in)
		}
		return 0, fmt.Errorf("invalid duration %q: write it like \"100ms\", \"15m\", \"12h\" or \"30d\"", in)
	}
	total := time.Duration(days) * day
	if d > time.Duration(math.MaxInt64)-total {
		return 0, fmt.Errorf("invalid duration %q: too long", in)
	}
	return Duration(total + d), nil
}

// String formats d in a short form ParseDuration reads back: "30d" (whole days from two days up), "24h",
// "15m", "1h30m", "100ms".
func (d Duration) String() string {
	td := time.Duration(d)
	if td >= 2*day && td%day == 0 {
		return strconv.FormatInt(int64(td/day), 10) + "d"
	}
	s := td.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// MarshalJSON writes d as a string, e.g. "15m".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string; null leaves d unchanged.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration must be a string like \"100ms\", got %s", b)
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML writes d as a string, e.g. "15m".
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML reads a duration scalar.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: expected a duration like \"100ms\"", n.Line)}}
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*d = v
	return nil
}

// ByteSize is a number of bytes, written as a plain integer or with a unit: "512KiB", "16MiB", "1GiB"
// (powers of 1024) or "500KB", "16MB" (powers of 1000). It marshals to the largest binary unit that divides
// it exactly.
type ByteSize int64

// Byte size units.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
	TiB ByteSize = 1 << 40
)

var sizeUnits = map[string]ByteSize{
	"": 1, "B": 1,
	"KiB": KiB, "MiB": MiB, "GiB": GiB, "TiB": TiB,
	"KB": 1e3, "kB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
}

// ParseByteSize parses a size: digits, optional spaces, and an optional unit (B, KiB, MiB, GiB, TiB, KB, MB,
// GB, TB).
func ParseByteSize(s string) (ByteSize, error) {
	in := s
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("invalid size %q: write a number of bytes or a size like \"512KiB\" or \"16MiB\"", in)
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: too large", in)
	}
	unit, ok := sizeUnits[strings.TrimSpace(s[i:])]
	if !ok {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q; use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB", in, strings.TrimSpace(s[i:]))
	}
	if n > int64(math.MaxInt64/unit) {
		return 0, fmt.Errorf("invalid size %q: too large", in)
	}
	return ByteSize(n) * unit, nil
}

// String formats b with the largest binary unit that divides it exactly ("16MiB"), or in bytes ("1000B").
func (b ByteSize) String() string {
	if b == 0 {
		return "0"
	}
	for _, u := range []struct {
		size ByteSize
		name string
	}{{TiB, "TiB"}, {GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}} {
		if b%u.size == 0 {
			return strconv.FormatInt(int64(b/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// MarshalJSON writes b as a string, e.g. "16MiB".
func (b ByteSize) MarshalJSON() ([]byte, error) { return json.Marshal(b.String()) }

// UnmarshalJSON reads a size string or a plain integer of bytes; null leaves b unchanged.
func (b *ByteSize) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		var n json.Number
		if json.Unmarshal(data, &n) != nil {
			return fmt.Errorf("a size must be a string like \"16MiB\" or an integer, got %s", data)
		}
		s = n.String()
	}
	v, err := ParseByteSize(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// MarshalYAML writes b as a string, e.g. "16MiB".
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// UnmarshalYAML reads a size scalar.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: expected a size like \"16MiB\"", n.Line)}}
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*b = v
	return nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
