package sdk

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// refString is Request.String as it was written over encoding/json: the behaviour the scanner keeps.
func refString(data []byte, path ...string) (string, bool) {
	cur := json.RawMessage(data)
	for _, key := range path {
		var obj map[string]json.RawMessage
		if json.Unmarshal(cur, &obj) != nil {
			return "", false
		}
		next, ok := obj[key]
		if !ok {
			return "", false
		}
		cur = next
	}
	if len(cur) == 0 || string(cur) == "null" {
		return "", false
	}
	var s string
	if json.Unmarshal(cur, &s) == nil {
		return s, true
	}
	if cur[0] == '{' || cur[0] == '[' {
		return "", false
	}
	return string(cur), true
}

// checkString compares Request.String with refString on data and path.
func checkString(t *testing.T, data []byte, path ...string) (string, bool) {
	t.Helper()
	got, ok := Request{Data: data}.String(path...)
	want, wantOK := refString(data, path...)
	if got != want || ok != wantOK {
		t.Errorf("String(%q) of %q = %q, %v; encoding/json finds %q, %v", path, data, got, ok, want, wantOK)
	}
	return got, ok
}

func TestStringPaths(t *testing.T) {
	const doc = ` { "a" : { "b" : "x\"y\\z\/\b\f\n\r\t" , "n" : -12.5e+3 , "t" : true , "f" : false , "z" : null ,
		"o" : { "deep" : [ 1 , { "k" : "}" } , "]" ] } , "arr" : [ ] , "empty" : { } } ,
		"esc" : "\u00e9\u4e2d\ud83d\ude00 \ud800 \udc00x \ud83dz \u0041" ,
		"utf8" : "ż🙂" , "bad" : "a` + "\xff\xfe" + `b" , "surr" : "` + "\xed\xa0\x80" + `" ,
		"dup" : "first" , "dup" : "second" , "dupobj" : { "v" : 1 } , "dupobj" : { "w" : 2 } ,
		"k\u0065y" : "escaped key" , "` + "\xff" + `" : "bad key" , "" : "empty key" , "ok" : "yes" } `
	for _, tc := range []struct {
		path []string
		want string
		ok   bool
	}{
		{[]string{"a", "b"}, "x\"y\\z/\b\f\n\r\t", true},
		{[]string{"a", "n"}, "-12.5e+3", true},
		{[]string{"a", "t"}, "true", true},
		{[]string{"a", "f"}, "false", true},
		{[]string{"a", "z"}, "", false},
		{[]string{"a", "o"}, "", false},
		{[]string{"a", "arr"}, "", false},
		{[]string{"a", "empty"}, "", false},
		{[]string{"a", "o", "deep"}, "", false},
		{[]string{"a", "o", "deep", "k"}, "", false}, // arrays are not indexed
		{[]string{"a", "missing"}, "", false},
		{[]string{"a", "b", "c"}, "", false}, // a string has no keys
		{[]string{"esc"}, "é中😀 \ufffd \ufffdx \ufffdz A", true},
		{[]string{"utf8"}, "ż🙂", true},
		{[]string{"bad"}, "a\ufffd\ufffdb", true},
		{[]string{"surr"}, "\ufffd\ufffd\ufffd", true},
		{[]string{"dup"}, "second", true},
		{[]string{"dupobj", "v"}, "", false}, // the last value wins whole: no merging
		{[]string{"dupobj", "w"}, "2", true},
		{[]string{"key"}, "escaped key", true},
		{[]string{"\ufffd"}, "bad key", true},
		{[]string{"\xff"}, "", false},
		{[]string{""}, "empty key", true},
		{[]string{"ok"}, "yes", true},
		{[]string{"OK"}, "", false}, // map keys are exact, unlike struct fields
	} {
		got, ok := checkString(t, []byte(doc), tc.path...)
		if got != tc.want || ok != tc.ok {
			t.Errorf("String(%q) = %q, %v; want %q, %v", tc.path, got, ok, tc.want, tc.ok)
		}
	}
}

func TestStringNoPath(t *testing.T) {
	// With no path, String reads Data as the handler may have set it, quirks of the old code included.
	for _, data := range []string{``, `null`, ` null`, `"s"`, ` "s" `, `"\u00e9"`, `42`, ` 42 `, `true`, `{}`, `[]`,
		` {}`, `"unterminated`, `nonsense`, `{"a":1`, `"a" "b"`} {
		checkString(t, []byte(data))
	}
}

func TestStringMalformed(t *testing.T) {
	const doc = `{"a":{"b":"v","s":"\u00e9\ud83d\ude00","n":[1,2.5,-3e2,{"x":null}],"t":true},"c":"w"}`
	// Every prefix of a document is malformed (until it is whole): never found, and no panic or hang.
	for n := range len(doc) + 1 {
		for _, path := range [][]string{{"a", "b"}, {"a"}, {"c"}, {"a", "s"}, {"a", "n"}} {
			_, ok := checkString(t, []byte(doc[:n]), path...)
			if ok && n < len(doc) {
				t.Errorf("String(%q) found a value in the truncated %q", path, doc[:n])
			}
		}
	}
	for _, data := range []string{
		`{"a":"v"}}`, `{"a":"v"`, `{"a":"v",}`, `{"a" "v"}`, `{"a":}`, `{a:"v"}`, `{"a":"v"]`, `["a"]`, `{"a":[}`,
		`{"a":{"b":"v"]}`, `{"a":"v" "b":"w"}`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":1e}`, `{"a":-}`, `{"a":+1}`,
		`{"a":tru}`, `{"a":nul}`, `{"a":True}`, `{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"\u12G4"}`, "{\"a\":\"tab\there\"}",
		`{"a":"v"} x`, `{"a":"v"}{}`, `{"a":"v",,"b":1}`, `{,"a":"v"}`, `{"a":"v"`, "\x00", `{"a":"v"}` + "\x00",
		`{"a":[1,]}`, `{"a":[,1]}`, `{"a":"\'"}`, `{"a":"v"} /* comment */`,
	} {
		for _, path := range [][]string{{"a"}, {"a", "b"}, {"b"}} {
			if v, ok := checkString(t, []byte(data), path...); ok {
				t.Errorf("String(%q) of malformed %q = %q", path, data, v)
			}
		}
	}
}

func TestStringDepth(t *testing.T) {
	// encoding/json refuses more than 10000 nested arrays and objects; so does the scanner.
	for _, depth := range []int{maxDepth - 1, maxDepth, maxDepth + 1} {
		data := `{"a":"v","deep":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `}`
		_, ok := checkString(t, []byte(data), "a")
		if ok != (depth <= maxDepth) {
			t.Errorf("depth %d: found %v", depth, ok)
		}
	}
}

func TestEnvelope(t *testing.T) {
	for _, in := range []string{
		submit,
		`{"type":"t","source":"s","data":{"x":1}}`,
		" \n{ \"type\" : \"t\" , \"data\" : [ 1 , 2 ] }\t",
		`{}`, `null`, ` null `, `{"data":null}`, `{"data":"str"}`, `{"data":42}`,
		`{"type":null,"source":null}`, `{"type":"a","type":null}`, `{"type":"a","type":"b"}`,
		`{"data":{"v":1},"data":{"w":2}}`, `{"TYPE":"upper","Source":"mixed","DaTa":{}}`,
		`{"type":"exact","Type":"folded"}`, `{"Type":"folded","type":"exact"}`,
		`{"ſource":"long s","t\u0079pe":"escaped"}`, `{"type":"\u00e9\ud83d","source":"` + "\xff" + `"}`,
		`{"unknown":{"type":"nested"},"type":"top"}`,
		// Not events: encoding/json fails on all of these.
		``, ` `, `[]`, `"event"`, `42`, `true`, `{"type":1}`, `{"type":{}}`, `{"source":[]}`, `{"type":true}`,
		`{"type":"t"`, `{"type":"t"} {}`, `{"type":"t",}`, `{"data":}`, `nul`, `null x`, `{"data":{"a":1}`,
	} {
		checkEnvelope(t, []byte(in))
	}
}

// checkEnvelope compares parseEnvelope with json.Unmarshal on in.
func checkEnvelope(t *testing.T, in []byte) {
	t.Helper()
	got, ok := parseEnvelope(in)
	var want Request
	err := json.Unmarshal(in, &want)
	if ok != (err == nil) {
		t.Fatalf("parseEnvelope(%q): ok %v; encoding/json: %v", in, ok, err)
	}
	if ok && (got.Type != want.Type || got.Source != want.Source || string(got.Data) != string(want.Data) ||
		(got.Data == nil) != (want.Data == nil)) {
		t.Errorf("parseEnvelope(%q) = %q %q %q; encoding/json: %q %q %q", in, got.Type, got.Source, got.Data,
			want.Type, want.Source, want.Data)
	}
}

func TestHandleNotAnEvent(t *testing.T) {
	Handle(func(Request) Response { return ContinueWithDefaultBehavior(OnOtpSend) })
	for _, in := range []string{`[]`, `{"type":1}`, `{"type":"t"`} {
		func() {
			defer func() {
				var want Request
				err := json.Unmarshal([]byte(in), &want)
				if r := recover(); r != "sdk: the request is not an event: "+err.Error() {
					t.Errorf("Serve(%q) panicked with %v", in, r)
				}
			}()
			Serve([]byte(in))
		}()
	}
	// null was never an error: the handler gets an empty request.
	if out := Serve([]byte(`null`)); !json.Valid(out) {
		t.Errorf("Serve(null) = %s", out)
	}
}

func FuzzString(f *testing.F) {
	for _, seed := range []struct{ data, k1, k2 string }{
		{submit, "userSignUpInfo", "attributes"},
		{`{"a":{"b":"x\u00e9\ud83d\ude00"}}`, "a", "b"},
		{`{"a":1,"a":{"b":true}}`, "a", "b"},
		{`{"k\u0065y":[1,{"b":"}"}],"b":null}`, "key", ""},
		{` {"a" : {"b" : -1.5e-3 } } `, "a", "b"},
		{`{"a":"v"`, "a", ""},
		{`{"type":"t","source":"s","data":{}}`, "type", ""},
	} {
		f.Add([]byte(seed.data), seed.k1, seed.k2)
	}
	f.Fuzz(func(t *testing.T, data []byte, k1, k2 string) {
		checkString(t, data)
		checkString(t, data, k1)
		checkString(t, data, k1, k2)
		checkEnvelope(t, data)
	})
}

func TestDecodeString(t *testing.T) {
	// Every escape and every kind of broken input, against encoding/json's unquoting.
	var cases []string
	for _, s := range []string{`\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`, `\u0000`, `\u001f`, `\u00E9`, `\uFFFF`,
		`\ud83d\ude00`, `\ud83d`, `\ude00`, `\ud83d\u0041`, `\ud83d\ud83d\ude00`, `\ude00\ud83d`, "\xc3", "\xc3\xa9",
		"\xf0\x9f\x98", "\xed\xbf\xbf", "\xc0\x80", "\x7f", "plain"} {
		cases = append(cases, s, "a"+s+"z", s+s)
	}
	for _, raw := range cases {
		var want string
		if err := json.Unmarshal([]byte(`"`+raw+`"`), &want); err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		if got := decodeString([]byte(raw)); got != want || !utf8.ValidString(got) {
			t.Errorf("decodeString(%q) = %q, want %q", raw, got, want)
		}
	}
}

func BenchmarkString(b *testing.B) {
	req := Request{Data: []byte(submit)[strings.Index(submit, `"data":`)+7 : len(submit)-1]}
	if v, ok := req.Attribute("email"); !ok || v != "ann@acme.test" {
		b.Fatalf("Attribute(email) = %q, %v", v, ok)
	}
	for _, impl := range []struct {
		name string
		get  func(...string) (string, bool)
	}{
		{"scanner", req.String},
		{"encoding-json", func(p ...string) (string, bool) { return refString(req.Data, p...) }},
	} {
		b.Run(impl.name, func(b *testing.B) {
			for b.Loop() {
				if _, ok := impl.get("userSignUpInfo", "attributes", "email", "value"); !ok {
					b.Fatal("not found")
				}
			}
		})
	}
}

func TestStringChunks(t *testing.T) {
	// The scanner reads strings eight bytes at a time: put what stops it at every offset of a chunk.
	for n := range 20 {
		for _, special := range []string{`\"`, `\\`, `\u00e9`, `\ud83d\ude00`, "é", "\xff", "\x01", `"`, `\`} {
			s := strings.Repeat("a", n) + special + strings.Repeat("b", 17-n%8)
			data := `{"k":"` + s + `","` + s + `":"key","z":"` + s + s + `"}`
			checkString(t, []byte(data), "k")
			checkString(t, []byte(data), s)
			checkString(t, []byte(data), "z")
			checkEnvelope(t, []byte(`{"type":"`+s+`","data":`+data+`}`))
		}
	}
}
