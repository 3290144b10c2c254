package admin

import (
	"bytes"
	"encoding/base64"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"postern.dev/postern/directory"
	"postern.dev/postern/directory/manifest"
)

// wasmHeader is the smallest valid WebAssembly module: the magic number and version 1. The directory
// stores modules without compiling them, so it stands in for a real one.
var wasmHeader = []byte("\x00asm\x01\x00\x00\x00")

// module is a distinct small module: the header and a custom section named name (section id 0).
func module(name string) []byte {
	b := slices.Clone(wasmHeader)
	b = append(b, 0, byte(1+len(name)), byte(len(name)))
	return append(b, name...)
}

func dataURL(b []byte) string {
	return directory.WasmDataURLPrefix + base64.StdEncoding.EncodeToString(b)
}

func TestExtensions(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.createTenant(t, "acme")
	e.createTenant(t, "other")
	const base = "/admin/v1/tenants/acme/extensions"
	mod := module("claims")
	sha := directory.SHA256Hex(mod)

	// Create, with the module inline.
	var created directory.Extension
	r := e.must(t, 201, "PUT", base+"/add-claims", map[string]any{"wasm": dataURL(mod),
		"events": []string{"OnTokenIssuanceStart"}, "timeout": "100ms", "memory_limit": "16MiB", "on_error": "continue",
		"allowed_hosts": []string{"api.example.com"}, "config": map[string]string{"claim_name": "tier"}}, &created)
	idx := r.index(t)
	want := directory.Extension{ID: "add-claims", Tenant: "acme", Events: []string{"OnTokenIssuanceStart"},
		WasmSHA256: sha, WasmSize: int64(len(mod)), Timeout: directory.Duration(100 * time.Millisecond),
		MemoryLimit: 16 << 20, OnError: "continue", AllowedHosts: []string{"api.example.com"},
		Config: map[string]string{"claim_name": "tier"}, Version: 1, UpdatedAt: created.UpdatedAt}
	if !reflect.DeepEqual(created, want) || created.UpdatedAt.IsZero() {
		t.Fatalf("created =\n%+v\nwant\n%+v", created, want)
	}
	if bytes.Contains(r.body, []byte(base64.StdEncoding.EncodeToString(mod))) || bytes.Contains(r.body, []byte(`"wasm"`)) {
		t.Errorf("the answer carries the module: %s", r.body)
	}
	if b, err := e.store.Blob("acme", sha); err != nil || !bytes.Equal(b, mod) {
		t.Errorf("stored module = %q, %v; want the uploaded one", b, err)
	}

	// Read it back, on this replica after the write's index.
	var got directory.Extension
	e.must(t, 200, "GET", base+"/add-claims", nil, &got, "X-Postern-Min-Index", strconv.FormatUint(idx, 10))
	if !reflect.DeepEqual(got, created) {
		t.Errorf("get = %+v, want %+v", got, created)
	}
	var list []directory.Extension
	r = e.must(t, 200, "GET", base, nil, &list)
	if len(list) != 1 || list[0].ID != "add-claims" || bytes.Contains(r.body, []byte(base64.StdEncoding.EncodeToString(mod))) {
		t.Errorf("list = %s", r.body)
	}

	// Replace: the version goes up, the settings are the new ones (not merged).
	var replaced directory.Extension
	r = e.must(t, 200, "PUT", base+"/add-claims", map[string]any{"id": "add-claims", "wasm": dataURL(mod),
		"events": []string{"OnTokenIssuanceStart"}, "config": map[string]string{"claim_name": "level"}}, &replaced)
	if r.index(t) <= idx {
		t.Errorf("replace index %d not after create %d", r.index(t), idx)
	}
	if replaced.Version != 2 || replaced.Config["claim_name"] != "level" || replaced.OnError != "" || replaced.Timeout != 0 ||
		replaced.WasmSHA256 != sha {
		t.Errorf("replaced = %+v, want version 2 with only the new settings", replaced)
	}

	// Replace again, naming the stored module by its hash: nothing is uploaded, the size is kept.
	r = e.must(t, 200, "PUT", base+"/add-claims", map[string]any{"wasm": "sha256:" + sha,
		"events": []string{"OnTokenIssuanceStart", "OnAttributeCollectionSubmit"}}, &replaced)
	if replaced.Version != 3 || replaced.WasmSHA256 != sha || replaced.WasmSize != int64(len(mod)) || len(replaced.Events) != 2 {
		t.Errorf("replaced by reference = %+v, want version 3 with the same module", replaced)
	}

	// Refusals: each says what is wrong, and nothing changes.
	t.Run("refused", func(t *testing.T) {
		other := module("other")
		tests := []struct {
			name     string
			path     string
			body     any
			status   int
			contains []string
		}{
			{"bad base64", "/add-claims", map[string]any{"wasm": directory.WasmDataURLPrefix + "not base64!", "events": []string{"OnOtpSend"}},
				400, []string{"wasm: the inline module is not valid base64"}},
			{"not wasm", "/add-claims", map[string]any{"wasm": dataURL([]byte("#!/bin/sh\n")), "events": []string{"OnOtpSend"}},
				400, []string{"not a WebAssembly binary module"}},
			{"empty module", "/add-claims", map[string]any{"wasm": directory.WasmDataURLPrefix, "events": []string{"OnOtpSend"}},
				400, []string{"the module is empty"}},
			{"a file path", "/add-claims", map[string]any{"wasm": "./claims.wasm", "events": []string{"OnOtpSend"}},
				400, []string{"neither an inline module", "--wasm FILE"}},
			{"unknown hash", "/add-claims", map[string]any{"wasm": "sha256:" + directory.SHA256Hex(other), "events": []string{"OnOtpSend"}},
				400, []string{"no module sha256:" + directory.SHA256Hex(other) + " is stored for tenant acme"}},
			{"malformed hash", "/add-claims", map[string]any{"wasm": "sha256:ABC", "events": []string{"OnOtpSend"}},
				400, []string{"64 lower-case hex digits"}},
			{"both url and wasm", "/add-claims", map[string]any{"wasm": dataURL(other), "url": "https://hooks.example/x", "events": []string{"OnOtpSend"}},
				400, []string{"url: set either wasm or url, not both"}},
			{"neither url nor wasm", "/add-claims", map[string]any{"events": []string{"OnOtpSend"}},
				400, []string{"set one of wasm (a WebAssembly module) or url"}},
			{"unknown event", "/add-claims", map[string]any{"wasm": dataURL(other), "events": []string{"OnTokenIssuance"}},
				400, []string{`events[0]: unknown event "OnTokenIssuance": use OnAttributeCollectionStart, `}},
			{"no events", "/add-claims", map[string]any{"wasm": dataURL(other)},
				400, []string{"events: at least one event is required"}},
			{"bad on_error", "/add-claims", map[string]any{"wasm": dataURL(other), "events": []string{"OnOtpSend"}, "on_error": "retry"},
				400, []string{`on_error: unknown on_error policy "retry"`}},
			{"timeout out of range", "/add-claims", map[string]any{"wasm": dataURL(other), "events": []string{"OnOtpSend"}, "timeout": "30s"},
				400, []string{"timeout: out of range: between 1ms and 10s"}},
			{"timeout as a number", "/add-claims", map[string]any{"wasm": dataURL(other), "events": []string{"OnOtpSend"}, "timeout": 5},
				400, []string{"malformed JSON body", "duration"}},
			{"memory out of range", "/add-claims", map[string]any{"wasm": dataURL(other), "events": []string{"OnOtpSend"}, "memory_limit": "1GiB"},
				400, []string{"memory_limit: out of range"}},
			{"memory of an http extension", "/add-claims", map[string]any{"url": "https://hooks.example/x", "events": []string{"OnOtpSend"}, "memory_limit": "1MiB"},
				400, []string{"memory_limit: applies to wasm extensions only"}},
			{"several problems at once", "/add-claims", map[string]any{"wasm": dataURL(other), "events": []string{"OnNothing"}, "on_error": "retry"},
				400, []string{"events[0]: unknown event", "; on_error: unknown"}},
			{"unknown field", "/add-claims", map[string]any{"wasm": dataURL(other), "events": []string{"OnOtpSend"}, "on_eror": "fail"},
				400, []string{`unknown field "on_eror"`}},
			{"another id in the body", "/add-claims", map[string]any{"id": "other", "wasm": dataURL(other), "events": []string{"OnOtpSend"}},
				400, []string{`the body's id "other" is not the id in the path, "add-claims"`}},
			{"bad id", "/Add.Claims", map[string]any{"wasm": dataURL(other), "events": []string{"OnOtpSend"}},
				400, []string{`id: invalid id "Add.Claims"`}},
			{"no body", "/add-claims", "", 400, []string{"a JSON body is required"}},
		}
		before := e.store.AppliedIndex()
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				eb := e.mustFail(t, tc.status, "invalid", "PUT", base+tc.path, tc.body)
				for _, s := range tc.contains {
					if !strings.Contains(eb.Error.Message, s) {
						t.Errorf("message %q lacks %q", eb.Error.Message, s)
					}
				}
			})
		}
		e.mustFail(t, 404, "not_found", "PUT", "/admin/v1/tenants/nope/extensions/x", map[string]any{"wasm": dataURL(other), "events": []string{"OnOtpSend"}})
		if after := e.store.AppliedIndex(); after != before {
			t.Errorf("refused requests moved the applied index from %d to %d", before, after)
		}
		if _, err := e.store.Blob("acme", directory.SHA256Hex(other)); err == nil {
			t.Errorf("a refused request stored its module")
		}
		var still directory.Extension
		e.must(t, 200, "GET", base+"/add-claims", nil, &still)
		if still.Version != 3 {
			t.Errorf("after refusals, version %d, want 3", still.Version)
		}
	})

	t.Run("http extension", func(t *testing.T) {
		var x directory.Extension
		e.must(t, 201, "PUT", base+"/loyalty", map[string]any{"url": "https://loyalty.example/check",
			"events": []string{"OnAttributeCollectionSubmit"}, "timeout": "2s"}, &x)
		if x.URL != "https://loyalty.example/check" || x.WasmSHA256 != "" || x.Version != 1 {
			t.Errorf("http extension = %+v", x)
		}
	})

	t.Run("module as the body", func(t *testing.T) {
		raw := module("raw")
		var x directory.Extension
		e.must(t, 201, "PUT", base+"/raw?events=OnOtpSend,OnTokenIssuanceStart&on_error=continue&timeout=50ms&memory_limit=1MiB&allowed_hosts=a.example&allowed_hosts=b.example&config.k=v",
			raw, &x, "Content-Type", "application/wasm")
		if x.WasmSHA256 != directory.SHA256Hex(raw) || x.WasmSize != int64(len(raw)) || !slices.Equal(x.Events, []string{"OnOtpSend", "OnTokenIssuanceStart"}) ||
			x.OnError != "continue" || time.Duration(x.Timeout) != 50*time.Millisecond || x.MemoryLimit != 1<<20 ||
			!slices.Equal(x.AllowedHosts, []string{"a.example", "b.example"}) || x.Config["k"] != "v" {
			t.Errorf("extension from a raw module = %+v", x)
		}
		eb := e.mustFail(t, 400, "invalid", "PUT", base+"/raw?events=OnOtpSend&url=https://x.example", raw, "Content-Type", "application/wasm")
		if !strings.Contains(eb.Error.Message, `unknown query parameter "url"`) {
			t.Errorf("message %q", eb.Error.Message)
		}
		eb = e.mustFail(t, 400, "invalid", "PUT", base+"/raw?events=OnOtpSend", []byte("not wasm"), "Content-Type", "application/wasm")
		if !strings.Contains(eb.Error.Message, "not a WebAssembly binary module") {
			t.Errorf("message %q", eb.Error.Message)
		}
		eb = e.mustFail(t, 400, "invalid", "PUT", base+"/raw?events=OnOtpSend", []byte{}, "Content-Type", "application/wasm")
		if !strings.Contains(eb.Error.Message, "the module is empty") {
			t.Errorf("message %q", eb.Error.Message)
		}
		eb = e.mustFail(t, 400, "invalid", "PUT", base+"/raw?events=OnOtpSend&timeout=soon", raw, "Content-Type", "application/wasm")
		if !strings.HasPrefix(eb.Error.Message, "timeout: ") {
			t.Errorf("message %q", eb.Error.Message)
		}
		e.must(t, 204, "DELETE", base+"/raw", nil, nil)
	})

	t.Run("other tenants", func(t *testing.T) {
		e.mustFail(t, 404, "not_found", "GET", "/admin/v1/tenants/other/extensions/add-claims", nil)
		e.mustFail(t, 404, "not_found", "DELETE", "/admin/v1/tenants/other/extensions/add-claims", nil)
		var list []directory.Extension
		r := e.must(t, 200, "GET", "/admin/v1/tenants/other/extensions", nil, &list)
		if len(list) != 0 || strings.TrimSpace(string(r.body)) != "[]" {
			t.Errorf("other tenant's list = %s", r.body)
		}
		// Modules are stored per tenant: another tenant cannot name acme's by its hash.
		eb := e.mustFail(t, 400, "invalid", "PUT", "/admin/v1/tenants/other/extensions/x", map[string]any{"wasm": "sha256:" + sha,
			"events": []string{"OnOtpSend"}})
		if !strings.Contains(eb.Error.Message, "is stored for tenant other") {
			t.Errorf("message %q", eb.Error.Message)
		}
		e.mustFail(t, 404, "not_found", "GET", "/admin/v1/tenants/nope/extensions", nil)
	})

	t.Run("delete", func(t *testing.T) {
		r := e.must(t, 204, "DELETE", base+"/add-claims", nil, nil)
		r.index(t)
		eb := e.mustFail(t, 404, "not_found", "GET", base+"/add-claims", nil)
		if eb.Error.Message != `extension "add-claims" does not exist` {
			t.Errorf("404 message %q", eb.Error.Message)
		}
		e.mustFail(t, 404, "not_found", "DELETE", base+"/add-claims", nil)
		// The module stays stored: a new extension can name it.
		var x directory.Extension
		e.must(t, 201, "PUT", base+"/add-claims", map[string]any{"wasm": "sha256:" + sha, "events": []string{"OnTokenIssuanceStart"}}, &x)
		if x.Version != 1 || x.WasmSize != int64(len(mod)) {
			t.Errorf("recreated by reference = %+v", x)
		}
	})

	// The changes are in the tenant's audit.
	var evs []directory.AuditEvent
	e.must(t, 200, "GET", "/admin/v1/tenants/acme/audit", nil, &evs)
	var puts, deletes int
	for _, ev := range evs {
		switch {
		case ev.Action == directory.OpExtensionPut && ev.Target == "add-claims":
			puts++
		case ev.Action == directory.OpExtensionDelete && ev.Target == "add-claims":
			deletes++
		}
	}
	if puts != 4 || deletes != 1 {
		t.Errorf("audit: %d puts and %d deletes of add-claims, want 4 and 1", puts, deletes)
	}
}

// A Go guest is 2 to 4 MiB, and a third larger again inline in JSON: the admin server takes such a body
// and the directory stores the module. On disk, as nodes run: the in-memory store keeps values of at most
// 1 MiB (Badger's value threshold), so this test has its own node.
func TestExtensionModuleOfAGoGuestsSize(t *testing.T) {
	t.Parallel()
	e := newDiskTestEnv(t)
	e.createTenant(t, "acme")
	big := append(slices.Clone(wasmHeader), 0, 0x80, 0x80, 0x80, 0x02) // a custom section of 4 MiB (LEB128)…
	big = append(big, 3, 'b', 'i', 'g')                                // …named "big"…
	big = append(big, make([]byte, 4<<20-4)...)                        // …of zeros.
	var x directory.Extension
	e.must(t, 201, "PUT", "/admin/v1/tenants/acme/extensions/big", map[string]any{"wasm": dataURL(big), "events": []string{"OnOtpSend"}}, &x)
	if x.WasmSize != int64(len(big)) || x.WasmSHA256 != directory.SHA256Hex(big) {
		t.Errorf("size %d, hash %s; want %d, %s", x.WasmSize, x.WasmSHA256, len(big), directory.SHA256Hex(big))
	}
	if b, err := e.store.Blob("acme", x.WasmSHA256); err != nil || !bytes.Equal(b, big) {
		t.Errorf("stored module: %d bytes, %v", len(b), err)
	}
	// Over the limit: refused before it reaches the raft log.
	huge := append(slices.Clone(wasmHeader), make([]byte, maxModuleSize)...)
	e.mustFail(t, 413, "too_large", "PUT", "/admin/v1/tenants/acme/extensions/huge?events=OnOtpSend", huge, "Content-Type", "application/wasm")
}

// newDiskTestEnv is newTestEnv on a store on disk.
func newDiskTestEnv(t *testing.T) *testEnv {
	t.Helper()
	store, err := directory.Open(t.TempDir(), directory.Options{SmallMemory: true})
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	return serveTestEnv(t, store)
}

// An extension a manifest created stays the manifest's when the API replaces it: the next apply that
// no longer lists it deletes it.
func TestExtensionOfAManifest(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	mod := module("m")
	apply := func(exts []map[string]any) {
		t.Helper()
		e.must(t, 200, "PUT", "/admin/v1/tenants/shop/manifest", map[string]any{"tenant": "shop", "extensions": exts}, nil)
	}
	apply([]map[string]any{{"id": "claims", "wasm": dataURL(mod), "events": []string{"OnTokenIssuanceStart"}}})
	var x directory.Extension
	e.must(t, 200, "PUT", "/admin/v1/tenants/shop/extensions/claims", map[string]any{"wasm": "sha256:" + directory.SHA256Hex(mod),
		"events": []string{"OnTokenIssuanceStart"}, "on_error": "continue"}, &x)
	if x.Version != 2 || x.ManagedBy != directory.ManagedByManifest {
		t.Errorf("replaced = %+v, want version 2, still managed by the manifest", x)
	}
	apply([]map[string]any{})
	e.mustFail(t, 404, "not_found", "GET", "/admin/v1/tenants/shop/extensions/claims", nil)
}

// The hand-written schemas of the extension routes have the JSON fields of the Go types.
func TestOpenAPIExtensionSchemas(t *testing.T) {
	t.Parallel()
	_, doc := loadOpenAPI(t)
	schemas := obj(obj(doc["components"])["schemas"])
	for _, tc := range []struct {
		schema   string
		typ      reflect.Type
		hidden   []string // Go fields the API never shows
		response bool
	}{
		{"Extension", reflect.TypeFor[extensionView](), []string{"secrets"}, true},
		{"ExtensionPut", reflect.TypeFor[manifest.Extension](), nil, false},
	} {
		t.Run(tc.schema, func(t *testing.T) {
			fields := jsonFields(tc.typ)
			for _, h := range tc.hidden {
				if _, ok := fields[h]; !ok {
					t.Fatalf("%v has no field %s to hide", tc.typ, h)
				}
				delete(fields, h)
			}
			props, required := schemaFields(t, doc, schemas[tc.schema])
			if got, want := slices.Sorted(maps.Keys(props)), slices.Sorted(maps.Keys(fields)); !slices.Equal(got, want) {
				t.Errorf("properties %v, want %v", got, want)
			}
			var always []string
			for name, optional := range fields {
				if !optional && tc.response {
					always = append(always, name)
				}
			}
			slices.Sort(always)
			if got := slices.Sorted(maps.Keys(required)); !slices.Equal(got, always) {
				t.Errorf("required %v, want %v", got, always)
			}
			if !tc.response && obj(schemas[tc.schema])["additionalProperties"] != false {
				t.Errorf("a request body schema without additionalProperties: false")
			}
		})
	}
}

// Secrets go in through the API in plain text and never come out: every answer names them, none carries
// a value or its sealed bytes. A PUT without secrets keeps the stored ones (its client could not have
// read them to send them back); one with secrets replaces them all.
func TestExtensionSecrets(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.createTenant(t, "acme")
	const (
		base   = "/admin/v1/tenants/acme/extensions"
		apiKey = "sk_live_admin_api_5e1f09"
		hook   = "whsec_admin_api_77c2d1"
		newKey = "sk_live_admin_api_rotated_0b3c"
	)
	mod := module("loyalty")
	sha := directory.SHA256Hex(mod)
	values := []string{apiKey, hook, newKey}
	// noSecrets checks an answer body: no value, no sealed bytes of the stored record, no "secrets" member.
	noSecrets := func(t *testing.T, what string, body []byte) {
		t.Helper()
		forbidden := slices.Clone(values)
		if exts, err := e.store.Extensions("acme"); err == nil {
			for _, x := range exts {
				for _, sealed := range x.Secrets {
					forbidden = append(forbidden, base64.StdEncoding.EncodeToString(sealed))
				}
			}
		}
		for _, v := range forbidden {
			if bytes.Contains(body, []byte(v)) {
				t.Errorf("%s: the answer carries a secret (%.12s…): %s", what, v, body)
			}
		}
		if bytes.Contains(body, []byte(`"secrets"`)) {
			t.Errorf("%s: the answer has a secrets member: %s", what, body)
		}
	}
	stored := func(t *testing.T) directory.Extension {
		t.Helper()
		exts, err := e.store.Extensions("acme")
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range exts {
			if x.ID == "loyalty" {
				return x
			}
		}
		t.Fatal("no extension loyalty stored")
		return directory.Extension{}
	}
	opens := func(t *testing.T, want map[string]string) {
		t.Helper()
		x := stored(t)
		if got := x.SecretNames(); !slices.Equal(got, slices.Sorted(maps.Keys(want))) {
			t.Errorf("stored secret names %q, want those of %v", got, slices.Sorted(maps.Keys(want)))
		}
		for name, v := range want {
			if got, ok, err := e.kek.ExtensionSecret(x, name); err != nil || !ok || string(got) != v {
				t.Errorf("stored secret %s opens to %q, %v, %v", name, got, ok, err)
			}
		}
	}
	type view struct {
		Version     int      `json:"version"`
		SecretNames []string `json:"secret_names"`
		Config      map[string]string
	}

	var v view
	r := e.must(t, 201, "PUT", base+"/loyalty", map[string]any{"wasm": dataURL(mod), "events": []string{"OnAttributeCollectionSubmit"},
		"secrets": map[string]string{"webhook": hook, "api_key": apiKey}}, &v)
	noSecrets(t, "create", r.body)
	if !slices.Equal(v.SecretNames, []string{"api_key", "webhook"}) {
		t.Errorf("create: secret_names %q, want [api_key webhook]", v.SecretNames)
	}
	opens(t, map[string]string{"api_key": apiKey, "webhook": hook})
	sealedBefore := stored(t).Secrets

	r = e.must(t, 200, "GET", base+"/loyalty", nil, &v)
	noSecrets(t, "get", r.body)
	if !slices.Equal(v.SecretNames, []string{"api_key", "webhook"}) {
		t.Errorf("get: secret_names %q", v.SecretNames)
	}
	var list []view
	r = e.must(t, 200, "GET", base, nil, &list)
	noSecrets(t, "list", r.body)
	if len(list) != 1 || !slices.Equal(list[0].SecretNames, []string{"api_key", "webhook"}) {
		t.Errorf("list: %s", r.body)
	}

	// Replacing the rest keeps the secrets, as they were sealed: by JSON without "secrets", and by a
	// module sent as the body.
	r = e.must(t, 200, "PUT", base+"/loyalty", map[string]any{"wasm": "sha256:" + sha, "events": []string{"OnAttributeCollectionSubmit"},
		"config": map[string]string{"service_url": "https://loyalty.example/check"}}, &v)
	noSecrets(t, "put without secrets", r.body)
	if v.Version != 2 || !slices.Equal(v.SecretNames, []string{"api_key", "webhook"}) || v.Config["service_url"] == "" {
		t.Errorf("put without secrets: %s", r.body)
	}
	if !reflect.DeepEqual(stored(t).Secrets, sealedBefore) {
		t.Error("a put without secrets changed the sealed secrets")
	}
	r = e.must(t, 200, "PUT", base+"/loyalty?events=OnAttributeCollectionSubmit", module("loyalty v2"), &v, "Content-Type", "application/wasm")
	noSecrets(t, "module as the body", r.body)
	if !slices.Equal(v.SecretNames, []string{"api_key", "webhook"}) {
		t.Errorf("module as the body: secret_names %q", v.SecretNames)
	}

	// Secrets in a body replace them all: the same value keeps its sealed bytes, a new one is sealed anew.
	r = e.must(t, 200, "PUT", base+"/loyalty", map[string]any{"wasm": "sha256:" + sha, "events": []string{"OnAttributeCollectionSubmit"},
		"secrets": map[string]string{"api_key": apiKey}}, &v)
	noSecrets(t, "put with one secret", r.body)
	if !slices.Equal(v.SecretNames, []string{"api_key"}) {
		t.Errorf("put with one secret: secret_names %q", v.SecretNames)
	}
	if !bytes.Equal(stored(t).Secrets["api_key"], sealedBefore["api_key"]) {
		t.Error("an unchanged value was sealed again")
	}
	e.must(t, 200, "PUT", base+"/loyalty", map[string]any{"wasm": "sha256:" + sha, "events": []string{"OnAttributeCollectionSubmit"},
		"secrets": map[string]string{"api_key": newKey}}, &v)
	opens(t, map[string]string{"api_key": newKey})
	r = e.must(t, 200, "PUT", base+"/loyalty", map[string]any{"wasm": "sha256:" + sha, "events": []string{"OnAttributeCollectionSubmit"},
		"secrets": map[string]string{}}, &v)
	if len(v.SecretNames) != 0 || !bytes.Contains(r.body, []byte(`"secret_names": []`)) {
		t.Errorf("secrets {}: %s, want secret_names []", r.body)
	}
	opens(t, map[string]string{})

	// Refusals name the field, never the value.
	for _, tc := range []struct {
		name, path, contentType string
		body                    any
		contains                string
	}{
		{"an HTTP extension", "/hook", "", map[string]any{"url": "https://hooks.example/x", "events": []string{"OnOtpSend"},
			"secrets": map[string]string{"api_key": apiKey}}, "secrets: applies to wasm extensions only"},
		{"a bad name", "/loyalty", "", map[string]any{"wasm": "sha256:" + sha, "events": []string{"OnOtpSend"},
			"secrets": map[string]string{"api-key": apiKey}}, `secrets.api-key: invalid secret name "api-key"`},
		{"an empty value", "/loyalty", "", map[string]any{"wasm": "sha256:" + sha, "events": []string{"OnOtpSend"},
			"secrets": map[string]string{"api_key": ""}}, "secrets.api_key: must not be empty"},
		{"a value too long", "/loyalty", "", map[string]any{"wasm": "sha256:" + sha, "events": []string{"OnOtpSend"},
			"secrets": map[string]string{"api_key": apiKey + strings.Repeat("x", 4096)}}, "secrets.api_key: too long"},
		{"a value not a string", "/loyalty", "", map[string]any{"wasm": "sha256:" + sha, "events": []string{"OnOtpSend"},
			"secrets": map[string]any{"api_key": 42}}, "malformed JSON body"},
		{"in the URL", "/loyalty?events=OnOtpSend&secrets.api_key=" + apiKey, "application/wasm", mod,
			"secrets.api_key: send secrets in a JSON body, not in the URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var headers []string
			if tc.contentType != "" {
				headers = []string{"Content-Type", tc.contentType}
			}
			eb := e.mustFail(t, 400, "invalid", "PUT", base+tc.path, tc.body, headers...)
			if !strings.Contains(eb.Error.Message, tc.contains) || strings.Contains(eb.Error.Message, apiKey) {
				t.Errorf("message %q: want it to contain %q and no value", eb.Error.Message, tc.contains)
			}
		})
	}

	// Through a manifest: the apply report and the extension's answers name the secrets only.
	r = e.must(t, 200, "PUT", "/admin/v1/tenants/shop/manifest", map[string]any{"tenant": "shop", "extensions": []map[string]any{{
		"id": "loyalty", "wasm": dataURL(mod), "events": []string{"OnAttributeCollectionSubmit"},
		"secrets": map[string]string{"api_key": apiKey}}}}, nil)
	noSecrets(t, "manifest apply", r.body)
	r = e.must(t, 200, "GET", "/admin/v1/tenants/shop/extensions/loyalty", nil, &v)
	noSecrets(t, "get of a manifest's extension", r.body)
	if !slices.Equal(v.SecretNames, []string{"api_key"}) {
		t.Errorf("a manifest's extension: secret_names %q", v.SecretNames)
	}
	// The same manifest again changes nothing: the secret's value is compared, not its sealed bytes.
	var report ApplyReport
	e.must(t, 200, "PUT", "/admin/v1/tenants/shop/manifest", map[string]any{"tenant": "shop", "extensions": []map[string]any{{
		"id": "loyalty", "wasm": dataURL(mod), "events": []string{"OnAttributeCollectionSubmit"},
		"secrets": map[string]string{"api_key": apiKey}}}}, &report)
	if report.Changed || len(report.Changes) != 0 {
		t.Errorf("the same manifest again: %+v, want no change", report)
	}
}
