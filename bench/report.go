package bench

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Report is the outcome of a run: one markdown table of every figure of every scenario.
type Report struct {
	Results []Result
}

// Failed reports whether any scenario failed.
func (r Report) Failed() bool {
	for _, res := range r.Results {
		if res.Err != nil {
			return true
		}
	}
	return false
}

// WriteMarkdown writes the table: one row per figure, and one row saying why for a scenario that failed.
func (r Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("| scenario | figure | value | baseline | baseline value | ratio |\n")
	b.WriteString("|---|---|--:|---|--:|--:|\n")
	for _, res := range r.Results {
		name := cell(res.Scenario.Name)
		if res.Err != nil {
			fmt.Fprintf(&b, "| %s | error | %s | — | — | — |\n", name, cell(res.Err.Error()))
			continue
		}
		for _, f := range res.Figures {
			base, baseValue, ratio := "—", "—", "—"
			if f.HasBaseline {
				name := res.Scenario.Baseline
				if f.BaselineName != "" {
					name = f.BaselineName
				}
				base, baseValue = cell(name), formatValue(f.Unit, f.Baseline)
				if f.Baseline != 0 {
					ratio = sig3(f.Ratio()) + "×"
				}
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", name, cell(f.Name), formatValue(f.Unit, f.Value),
				base, baseValue, ratio)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// cell makes text safe inside a markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.Join(strings.Fields(s), " ")
}

func formatValue(u Unit, v float64) string {
	switch u {
	case PerSecond:
		return formatRate(v) + "/s"
	case Nanoseconds:
		return formatDuration(time.Duration(math.Round(v)))
	}
	return sig3(v)
}

// formatRate writes whole numbers with thousands separators (12,345) and small ones to three significant
// digits (12.3).
func formatRate(v float64) string {
	if v < 1000 {
		return sig3(v)
	}
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// formatDuration writes a duration to three significant digits in the unit that suits it: 850 ns, 1.23 ms,
// 48.2 s; a difference of durations may be negative: -1.23 ms.
func formatDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + formatDuration(-d)
	case d < time.Microsecond:
		return strconv.FormatInt(int64(d), 10) + " ns"
	case d < time.Millisecond:
		return sig3(float64(d)/float64(time.Microsecond)) + " µs"
	case d < time.Second:
		return sig3(float64(d)/float64(time.Millisecond)) + " ms"
	}
	return sig3(d.Seconds()) + " s"
}

// sig3 writes v to three significant digits, without an exponent for the magnitudes a table shows.
func sig3(v float64) string {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	digits := func(v float64) int { return max(0, 2-int(math.Floor(math.Log10(math.Abs(v))))) }
	// Round first, then count digits again: 9.996 rounds to 10.0, not 10.00.
	p := math.Pow10(digits(v))
	v = math.Round(v*p) / p
	return strconv.FormatFloat(v, 'f', digits(v), 64)
}
