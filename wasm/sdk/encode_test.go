package sdk

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"
)

// tier is a type of the extension's own: the writer leaves it to encoding/json.
type tier string

type profile struct {
	Name  string   `json:"name"`
	Tags  []string `json:"tags,omitempty"`
	Score float64  `json:"-"`
}

func TestEncodeResponse(t *testing.T) {
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	n := 7
	for _, tc := range []struct {
		name string
		resp Response
	}{
		{"claims", ProvideClaimsForToken(map[string]any{"tier": "gold"})},
		{"validation error", ShowValidationError("Fix it.", map[string]string{"city": "No digits.", "age": "Too <young>."})},
		{"validation error without attributes", ShowValidationError("Fix it.", nil)},
		{"block page", ShowBlockPage(OnAttributeCollectionStart, "No & never.")},
		{"block page on submit", ShowBlockPage(OnAttributeCollectionSubmit, "")},
		{"prefill", SetPrefillValues(map[string]any{"city": "Oslo", "newsletter": true})},
		{"modify", ModifyAttributeValues(map[string]any{"city": "OSLO", "zip": 150})},
		{"modify nil", ModifyAttributeValues(nil)},
		{"continue", ContinueWithDefaultBehavior(OnOtpSend)},
		{"continue on start", ContinueWithDefaultBehavior(OnAttributeCollectionStart)},
		{"continue on submit", ContinueWithDefaultBehavior(OnAttributeCollectionSubmit)},
		{"respond", Respond(OnOtpSend, "custom", map[string]any{"@odata.type": "ignored", "!first": 1, "Zed": 2, "a": 3})},
		{"zero response", Response{}},
		{"empty actions", Response{Data: ResponseData{ODataType: "x", Actions: []Action{}}}},
		{"nil action", Response{Data: ResponseData{ODataType: "x", Actions: []Action{nil, NewAction("y", nil)}}}},
		{"two actions", Response{Data: ResponseData{ODataType: "x", Actions: []Action{NewAction("a", nil), NewAction("b", map[string]any{"k": "v"})}}}},
		{"strings", ProvideClaimsForToken(map[string]any{
			"html":    `<script>alert("x & y")</script>`,
			"control": "\x00\x01\b\f\n\r\t\x1f\x7f",
			"quotes":  `"\/\\`,
			"unicode": "é中😀",
			"bad":     "a\xffb\xc3",
			"surr":    "\xed\xa0\x80",
			"lines":   "\u2028\u2029",
			"":        "empty key",
			"k<&>":    "escaped key",
			"k\xff":   "bad key",
		})},
		{"numbers", ProvideClaimsForToken(map[string]any{
			"int": -42, "int8": int8(-8), "int16": int16(16), "int32": int32(-32), "int64": int64(math.MinInt64),
			"uint": uint(42), "uint8": uint8(255), "uint16": uint16(16), "uint32": uint32(32), "uint64": uint64(math.MaxUint64),
			"f0": 0.0, "fneg0": math.Copysign(0, -1), "f1": 1.0, "fhalf": 0.5, "ftenth": 0.1, "fbig": 1e21, "fbelow": 1e20,
			"fsmall": 1e-7, "fsmall6": 1e-6, "fmax": math.MaxFloat64, "ftiny": math.SmallestNonzeroFloat64, "fneg": -123.456e-10,
			"f32": float32(0.1), "f32big": float32(1e21), "f32small": float32(1e-7), "f32max": float32(math.MaxFloat32),
			"f32odd": float32(16777217),
		})},
		{"bools and nil", ProvideClaimsForToken(map[string]any{"t": true, "f": false, "nil": nil})},
		{"lists", ProvideClaimsForToken(map[string]any{
			"roles": []string{"admin", "<ops>"}, "none": []string(nil), "empty": []string{},
			"mixed":  []any{"a", 1, 2.5, true, nil, []any{"nested"}, map[string]any{"k": "v"}, []string{"s"}},
			"nilany": []any(nil), "emptyany": []any{},
		})},
		{"maps", ProvideClaimsForToken(map[string]any{
			"address": map[string]any{"city": "Oslo", "zip": "0150", "geo": map[string]any{"lat": 59.9, "lon": 10.7}},
			"nilmap":  map[string]any(nil), "strmap": map[string]string{"b": "2", "a": "1"}, "nilstr": map[string]string(nil),
			"action": NewAction("nested", nil),
		})},
		{"deep", ProvideClaimsForToken(map[string]any{"d": deep(100)})},
		{"fallback", ProvideClaimsForToken(map[string]any{
			"named": tier("gold"), "number": json.Number("12.50"), "raw": json.RawMessage(`{ "b" : [1, 2] , "a":"<"}`),
			"time": time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), "bytes": []byte("hi"), "ptr": &n, "nilptr": (*int)(nil),
			"struct": profile{Name: "Ann <admin>", Tags: []string{"x"}}, "ints": []int{1, 2}, "intmap": map[string]int{"b": 2, "a": 1},
			"anymaps": []map[string]any{{"k": 1}}, "uintptr": uintptr(7),
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := json.Marshal(tc.resp)
			if err != nil {
				t.Fatal(err)
			}
			got := encodeResponse(tc.resp)
			if string(got) != string(want) {
				t.Errorf("got  %s\nwant %s", got, want)
			}
			// Byte-identical implies this; it is the guarantee the host relies on.
			var g, w any
			if json.Unmarshal(got, &g) != nil || json.Unmarshal(want, &w) != nil || !reflect.DeepEqual(g, w) {
				t.Errorf("not the same JSON value:\n%s\n%s", got, want)
			}
		})
	}

	// What json.Marshal refuses, the writer refuses with the same error (and Handle panics with it).
	for name, v := range map[string]any{
		"NaN": math.NaN(), "Inf": math.Inf(-1), "float32 NaN": float32(math.NaN()), "chan": make(chan int),
		"func": func() {}, "cycle": cyclic, "nested NaN": []any{map[string]any{"x": math.Inf(1)}},
	} {
		resp := ProvideClaimsForToken(map[string]any{"v": v})
		_, want := json.Marshal(resp)
		_, err := appendResponse(nil, resp)
		if want == nil || err == nil || err.Error() != want.Error() {
			t.Errorf("%s: error %v, json.Marshal's %v", name, err, want)
		}
	}
}

func deep(n int) any {
	var v any = "bottom"
	for i := range n {
		if i%2 == 0 {
			v = map[string]any{"m": v}
		} else {
			v = []any{v}
		}
	}
	return v
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", `<a href="x">&amp;</a>`, "\x00\x1f\x7f\u2028\u2029", "é\xff\xed\xa0\x80😀"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}

func FuzzAppendFloat(f *testing.F) {
	for _, v := range []float64{0, 1, -1, 0.1, 1e21, 1e20, 1e-6, 1e-7, math.MaxFloat64, 5e-324, 123456789.125} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) {
		for _, x := range []any{v, float32(v)} {
			want, err := json.Marshal(x)
			got, gotErr := appendValue(nil, x, 0)
			if (err == nil) != (gotErr == nil) || string(got) != string(want) {
				t.Errorf("appendValue(%T %v) = %s, %v; json.Marshal: %s, %v", x, x, got, gotErr, want, err)
			}
		}
	})
}

func BenchmarkEncodeResponse(b *testing.B) {
	resp := ProvideClaimsForToken(map[string]any{"loyalty_tier": "gold", "roles": []string{"a", "b"}, "score": 12.5})
	if want, _ := json.Marshal(resp); string(encodeResponse(resp)) != string(want) {
		b.Fatal("not json.Marshal's answer")
	}
	b.Run("writer", func(b *testing.B) {
		for b.Loop() {
			encodeResponse(resp)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(resp); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestConstructorsAreRespond(t *testing.T) {
	// The constructors build their action in place; they used to go through Respond, and must still
	// give what it gives.
	claims, attrs := map[string]any{"tier": "gold"}, map[string]string{"city": "No digits."}
	for _, tc := range []struct{ got, want Response }{
		{ProvideClaimsForToken(claims), Respond(OnTokenIssuanceStart, "provideClaimsForToken", map[string]any{"claims": claims})},
		{ProvideClaimsForToken(nil), Respond(OnTokenIssuanceStart, "provideClaimsForToken", map[string]any{"claims": map[string]any(nil)})},
		{SetPrefillValues(claims), Respond(OnAttributeCollectionStart, "setPrefillValues", map[string]any{"inputs": claims})},
		{ModifyAttributeValues(claims), Respond(OnAttributeCollectionSubmit, "modifyAttributeValues", map[string]any{"attributes": claims})},
		{ShowValidationError("m", attrs), Respond(OnAttributeCollectionSubmit, "showValidationError", map[string]any{"message": "m", "attributeErrors": attrs})},
		{ShowValidationError("m", nil), Respond(OnAttributeCollectionSubmit, "showValidationError", map[string]any{"message": "m", "attributeErrors": map[string]string{}})},
		{ShowBlockPage(OnAttributeCollectionStart, "m"), Respond(OnAttributeCollectionStart, "showBlockPage", map[string]any{"message": "m"})},
		{ContinueWithDefaultBehavior(OnOtpSend), Respond(OnOtpSend, "continueWithDefaultBehavior", nil)},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("got  %#v\nwant %#v", tc.got, tc.want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("ShowBlockPage accepted an unknown event")
		}
	}()
	ShowBlockPage("OnNothing", "m")
}
