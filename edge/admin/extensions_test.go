package admin

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp/fasthttputil"

	"postern.dev/postern/cluster"
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
	node, err := cluster.Start(cluster.Config{ID: "n1", DataDir: t.TempDir(), Voter: true, Bootstrap: true, Store: store})
	if err != nil {
		store.Close()
		t.Fatalf("starting node: %v", err)
	}
	t.Cleanup(func() {
		node.Close()
		store.Close()
	})
	waitFor(t, "a leader", func() bool { _, addr := node.Leader(); return addr != "" })
	kek, err := directory.NewKEK(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	srv := New(Config{Cluster: node, Token: testToken, KEK: kek, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	ln := fasthttputil.NewInmemoryListener()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(context.Context, string, string) (net.Conn, error) { return ln.Dial() },
	}}
	t.Cleanup(func() {
		client.CloseIdleConnections()
		srv.Shutdown()
		<-served
	})
	return &testEnv{srv: srv, node: node, store: store, kek: kek, log: logs, http: client}
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
		response bool
	}{
		{"Extension", reflect.TypeFor[directory.Extension](), true},
		{"ExtensionPut", reflect.TypeFor[manifest.Extension](), false},
	} {
		t.Run(tc.schema, func(t *testing.T) {
			fields := jsonFields(tc.typ)
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
