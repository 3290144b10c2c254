package admin

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"postern.dev/postern/cluster"
	"postern.dev/postern/directory"
	"postern.dev/postern/directory/manifest"
)

// The OpenAPI document is written by hand; these tests keep it honest: every route of the table is in it
// and nothing else, every reference resolves, and the schemas have exactly the JSON fields of the Go types
// the handlers read and write.

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// loadOpenAPI reads openapi.json as generic JSON, checking it is what the binary embeds.
func loadOpenAPI(t *testing.T) ([]byte, map[string]any) {
	t.Helper()
	raw, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, openAPIDocument) {
		t.Fatal("openapi.json differs from the embedded document")
	}
	var doc map[string]any
	d := json.NewDecoder(bytes.NewReader(raw))
	if err := d.Decode(&doc); err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	if d.More() {
		t.Fatal("openapi.json holds more than one JSON value")
	}
	if doc["openapi"] != "3.0.3" {
		t.Fatalf("openapi = %v, want 3.0.3", doc["openapi"])
	}
	return raw, doc
}

// obj and list read generic JSON without panicking on a wrong shape.
func obj(v any) map[string]any { m, _ := v.(map[string]any); return m }
func list(v any) []any         { l, _ := v.([]any); return l }

// resolve follows a local $ref ("#/components/…") if v is one.
func resolve(t *testing.T, doc map[string]any, v any) map[string]any {
	t.Helper()
	m := obj(v)
	ref, ok := m["$ref"].(string)
	if !ok {
		return m
	}
	target, err := pointer(doc, ref)
	if err != nil {
		t.Fatalf("$ref %s: %v", ref, err)
	}
	return resolve(t, doc, target)
}

// pointer looks up a local JSON pointer reference (RFC 6901) in doc.
func pointer(doc map[string]any, ref string) (any, error) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, errorString("not a local reference")
	}
	var cur any = doc
	for _, tok := range strings.Split(ref[2:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, errorString("no object at " + tok)
		}
		if cur, ok = m[tok]; !ok {
			return nil, errorString("no member " + tok)
		}
	}
	return cur, nil
}

type errorString string

func (e errorString) Error() string { return string(e) }

// operations lists the document's operations as "METHOD /path".
func operations(doc map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for path, item := range obj(doc["paths"]) {
		for _, m := range httpMethods {
			if op := obj(obj(item)[m]); op != nil {
				out[strings.ToUpper(m)+" "+path] = op
			}
		}
	}
	return out
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	raw, doc := loadOpenAPI(t)
	e := newTestEnv(t)
	ops := operations(doc)

	routes := map[string]route{}
	for _, r := range e.srv.routes {
		key := r.method + " " + r.pattern
		if _, dup := routes[key]; dup {
			t.Errorf("the table has %s twice", key)
		}
		routes[key] = r
		if ops[key] == nil {
			t.Errorf("route %s is not in openapi.json", key)
		}
	}
	for key := range ops {
		if _, ok := routes[key]; !ok {
			t.Errorf("openapi.json documents %s, which no route serves", key)
		}
	}

	// Security: the bearer scheme everywhere but on the public routes.
	scheme := obj(obj(obj(doc["components"])["securitySchemes"])["adminToken"])
	if scheme["type"] != "http" || scheme["scheme"] != "bearer" {
		t.Errorf("securitySchemes.adminToken = %v, want http bearer", scheme)
	}
	global := list(doc["security"])
	if len(global) != 1 || !reflect.DeepEqual(global[0], map[string]any{"adminToken": []any{}}) {
		t.Errorf("global security = %v, want [{adminToken: []}]", global)
	}
	ids := map[string]string{}
	for key, op := range ops {
		r, ok := routes[key]
		if !ok {
			continue
		}
		sec, overrides := op["security"]
		public := overrides && len(list(sec)) == 0
		if public != r.public {
			t.Errorf("%s: documented public=%v, the route is public=%v", key, public, r.public)
		}
		if overrides && !public {
			t.Errorf("%s: overrides security with %v", key, sec)
		}
		responses := obj(op["responses"])
		if !r.public && responses["401"] == nil {
			t.Errorf("%s: no 401 response", key)
		}
		if !slices.ContainsFunc(slices.Collect(maps.Keys(responses)), func(c string) bool { return strings.HasPrefix(c, "2") }) {
			t.Errorf("%s: no 2xx response", key)
		}
		id, _ := op["operationId"].(string)
		if id == "" {
			t.Errorf("%s: no operationId", key)
		} else if other, dup := ids[id]; dup {
			t.Errorf("operationId %s is on %s and %s", id, other, key)
		}
		ids[id] = key
	}

	// Path parameters: each {name} of a path is declared once, required, and nothing else is.
	braces := regexp.MustCompile(`\{([^}]+)\}`)
	for path, item := range obj(doc["paths"]) {
		var want []string
		for _, m := range braces.FindAllStringSubmatch(path, -1) {
			want = append(want, m[1])
		}
		slices.Sort(want)
		for _, method := range httpMethods {
			op := obj(obj(item)[method])
			if op == nil {
				continue
			}
			var got []string
			for _, p := range append(list(obj(item)["parameters"]), list(op["parameters"])...) {
				p := resolve(t, doc, p)
				if p["in"] == "path" {
					got = append(got, p["name"].(string))
					if p["required"] != true {
						t.Errorf("%s %s: path parameter %v is not required", method, path, p["name"])
					}
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s %s: path parameters %v, want %v", method, path, got, want)
			}
		}
	}

	// The document is served as it is, without a token.
	r := e.do(t, "GET", "/admin/v1/openapi.json", nil, "Authorization", "")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET openapi.json: %d %s", r.status, r.header.Get("Content-Type"))
	}
	if !bytes.Equal(r.body, raw) {
		t.Errorf("the served document is not openapi.json")
	}
	var served map[string]any
	if err := json.Unmarshal(r.body, &served); err != nil || !reflect.DeepEqual(served, doc) {
		t.Errorf("the served document is not the same JSON: %v", err)
	}
}

func TestOpenAPIReferences(t *testing.T) {
	t.Parallel()
	_, doc := loadOpenAPI(t)
	used := map[string]bool{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				if _, err := pointer(doc, ref); err != nil {
					t.Errorf("%s: $ref %s does not resolve: %v", path, ref, err)
				}
				if len(x) != 1 {
					t.Errorf("%s: $ref %s has siblings, which OpenAPI 3.0 ignores", path, ref)
				}
				used[ref] = true
			}
			for k, v := range x {
				walk(path+"/"+k, v)
			}
		case []any:
			for _, v := range x {
				walk(path+"[]", v)
			}
		}
	}
	walk("#", doc)
	// Every component is used: one that is not has usually fallen behind a renamed twin.
	for kind, comps := range obj(doc["components"]) {
		if kind == "securitySchemes" {
			continue
		}
		for name := range obj(comps) {
			if ref := "#/components/" + kind + "/" + name; !used[ref] {
				t.Errorf("%s is never referenced", ref)
			}
		}
	}
}

// jsonFields lists the JSON members a Go struct encodes to, with whether each may be left out
// (omitempty or omitzero); embedded structs without a tag are flattened, as encoding/json does.
func jsonFields(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			maps.Copy(out, jsonFields(f.Type))
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero")
	}
	return out
}

// schemaFields lists a schema's properties and required members, following $ref and allOf.
func schemaFields(t *testing.T, doc map[string]any, v any) (props, required map[string]bool) {
	props, required = map[string]bool{}, map[string]bool{}
	s := resolve(t, doc, v)
	for _, part := range list(s["allOf"]) {
		p, r := schemaFields(t, doc, part)
		maps.Copy(props, p)
		maps.Copy(required, r)
	}
	for name := range obj(s["properties"]) {
		props[name] = true
	}
	for _, name := range list(s["required"]) {
		required[name.(string)] = true
	}
	return props, required
}

func TestOpenAPISchemasMatchGoTypes(t *testing.T) {
	t.Parallel()
	_, doc := loadOpenAPI(t)
	tests := []struct {
		schema string
		typ    reflect.Type
		// hidden are Go fields the API never shows (or, in a request, never takes).
		hidden []string
		// response schemas require exactly the members the Go type always writes.
		response bool
	}{
		{"Tenant", reflect.TypeFor[tenantView](), nil, true},
		{"Settings", reflect.TypeFor[directory.Settings](), nil, true},
		{"SignUp", reflect.TypeFor[directory.SignUp](), nil, true},
		{"AttributeDef", reflect.TypeFor[directory.AttributeDef](), nil, true},
		{"MFA", reflect.TypeFor[directory.MFA](), nil, true},
		{"Branding", reflect.TypeFor[directory.Branding](), nil, true},
		{"App", reflect.TypeFor[directory.App](), nil, true},
		{"AppWithSecret", reflect.TypeFor[appView](), nil, true},
		{"SecretInfo", reflect.TypeFor[directory.SecretHash](), []string{"hash"}, true},
		{"User", reflect.TypeFor[directory.User](), []string{"password_hash"}, true},
		{"Profile", reflect.TypeFor[directory.Profile](), nil, true},
		{"Credential", reflect.TypeFor[directory.Credential](), []string{"secret"}, true},
		{"Group", reflect.TypeFor[directory.Group](), nil, true},
		{"AuditEvent", reflect.TypeFor[directory.AuditEvent](), nil, true},
		{"ClusterStatus", reflect.TypeFor[cluster.Status](), nil, true},
		{"NodeStatus", reflect.TypeFor[cluster.NodeStatus](), nil, true},
		{"ApplyReport", reflect.TypeFor[ApplyReport](), nil, true},
		{"PlannedApp", reflect.TypeFor[directory.PlannedApp](), nil, true},
		{"ManifestProblem", reflect.TypeFor[manifestProblem](), nil, true},

		{"TenantCreate", reflect.TypeFor[tenantBody](), nil, false},
		{"TenantUpdate", reflect.TypeFor[tenantBody](), nil, false},
		{"AppCreate", reflect.TypeFor[appBody](), []string{"rotate_secret"}, false},
		{"AppUpdate", reflect.TypeFor[appBody](), nil, false},
		{"UserCreate", reflect.TypeFor[userBody](), nil, false},
		{"UserUpdate", reflect.TypeFor[userBody](), nil, false},
		{"GroupCreate", reflect.TypeFor[groupBody](), nil, false},
		{"GroupUpdate", reflect.TypeFor[groupBody](), nil, false},
		{"JoinRequest", reflect.TypeFor[cluster.JoinRequest](), nil, false},
		{"Manifest", reflect.TypeFor[manifest.Manifest](), nil, false},
		{"ManifestFlows", reflect.TypeFor[manifest.Flows](), nil, false},
		{"ManifestSignUp", reflect.TypeFor[manifest.SignUp](), nil, false},
		{"ManifestAttribute", reflect.TypeFor[manifest.Attribute](), nil, false},
		{"ManifestMFA", reflect.TypeFor[manifest.MFA](), nil, false},
		{"ManifestBranding", reflect.TypeFor[manifest.Branding](), nil, false},
		{"ManifestApp", reflect.TypeFor[manifest.App](), nil, false},
		{"ManifestRoute", reflect.TypeFor[manifest.Route](), nil, false},
		{"ManifestAllow", reflect.TypeFor[manifest.Allow](), nil, false},
		{"ManifestPathRule", reflect.TypeFor[manifest.PathRule](), nil, false},
		{"ManifestIdentityProvider", reflect.TypeFor[manifest.IdentityProvider](), nil, false},
		{"ManifestExtension", reflect.TypeFor[manifest.Extension](), nil, false},
	}
	schemas := obj(obj(doc["components"])["schemas"])
	for _, tc := range tests {
		t.Run(tc.schema, func(t *testing.T) {
			s, ok := schemas[tc.schema]
			if !ok {
				t.Fatalf("no schema %s", tc.schema)
			}
			fields := jsonFields(tc.typ)
			for _, h := range tc.hidden {
				if _, ok := fields[h]; !ok {
					t.Fatalf("%v has no field %s to hide", tc.typ, h)
				}
				delete(fields, h)
			}
			props, required := schemaFields(t, doc, s)
			want := slices.Sorted(maps.Keys(fields))
			if got := slices.Sorted(maps.Keys(props)); !slices.Equal(got, want) {
				t.Errorf("properties %v, want the JSON fields of %v: %v", got, tc.typ, want)
			}
			if tc.response {
				var always []string
				for name, optional := range fields {
					if !optional {
						always = append(always, name)
					}
				}
				slices.Sort(always)
				if got := slices.Sorted(maps.Keys(required)); !slices.Equal(got, always) {
					t.Errorf("required %v, want the fields %v always writes: %v", got, tc.typ, always)
				}
				return
			}
			// The handlers decode request bodies strictly: the document must say unknown members are refused.
			if obj(s)["additionalProperties"] != false {
				t.Errorf("a request body schema without additionalProperties: false")
			}
		})
	}
}
