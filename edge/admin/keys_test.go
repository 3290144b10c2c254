package admin

import (
	"encoding/json"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestKeys(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.createTenant(t, "acme")
	path := "/admin/v1/tenants/acme/keys"

	list := func(r response) []keyView {
		t.Helper()
		// No private or public key material, under any name.
		for _, leak := range []string{`"private"`, `"public"`, `"d"`, `"k"`} {
			if strings.Contains(string(r.body), leak) {
				t.Fatalf("the key list has %s: %s", leak, r.body)
			}
		}
		var keys []keyView
		if err := json.Unmarshal(r.body, &keys); err != nil {
			t.Fatalf("decoding %s: %v", r.body, err)
		}
		return keys
	}
	states := func(keys []keyView) []string {
		var out []string
		for _, k := range keys {
			out = append(out, k.Alg+":"+k.State)
		}
		return out
	}

	// A new tenant has one active ES256 key.
	initial := list(e.must(t, http.StatusOK, "GET", path, nil, nil))
	if got := states(initial); !slices.Equal(got, []string{"ES256:active"}) {
		t.Fatalf("a new tenant's keys: %v", got)
	}

	// Step 1, without a body: a next key is published; the active one is unchanged.
	r := e.must(t, http.StatusOK, "POST", path+"/rotate", nil, nil)
	r.index(t)
	step1 := list(r)
	if got := states(step1); !slices.Equal(got, []string{"ES256:active", "ES256:next"}) || step1[0].KID != initial[0].KID {
		t.Fatalf("after step 1: %v", step1)
	}

	// Step 2: the next key signs, the old one is retired until now + 1 h + leeway.
	before := time.Now()
	step2 := list(e.must(t, http.StatusOK, "POST", path+"/rotate", map[string]any{"alg": "ES256"}, nil))
	if got := states(step2); !slices.Equal(got, []string{"ES256:active", "ES256:next", "ES256:retired"}) {
		t.Fatalf("after step 2: %v", step2)
	}
	if step2[0].KID != step1[1].KID || step2[2].KID != initial[0].KID {
		t.Errorf("after step 2: active %s retired %s, want %s and %s", step2[0].KID, step2[2].KID, step1[1].KID, initial[0].KID)
	}
	if na := step2[2].NotAfter; na.Before(before.Add(time.Hour+time.Minute)) || na.After(time.Now().Add(time.Hour+time.Minute)) {
		t.Errorf("retired until %v, want about an hour and a minute from now", na)
	}
	if got := list(e.must(t, http.StatusOK, "GET", path, nil, nil)); !reflect.DeepEqual(got, step2) {
		t.Errorf("GET after the rotation = %v, want %v", got, step2)
	}

	// An app with longer-lived tokens keeps retired keys longer.
	e.must(t, http.StatusCreated, "POST", "/admin/v1/tenants/acme/apps", map[string]any{"name": "svc", "type": "service", "id_token_ttl": "3h"}, nil)
	before = time.Now()
	step3 := list(e.must(t, http.StatusOK, "POST", path+"/rotate", "", nil))
	var retired keyView
	for _, k := range step3 {
		if k.KID == step2[0].KID {
			retired = k
		}
	}
	if retired.State != "retired" || retired.NotAfter.Before(before.Add(3*time.Hour+time.Minute)) {
		t.Errorf("with a 3 h ID token lifetime, the retired key: %+v", retired)
	}

	// Another alg rotates apart from ES256.
	rs := list(e.must(t, http.StatusOK, "POST", path+"/rotate", map[string]any{"alg": "RS256"}, nil))
	if got := states(rs); !slices.Contains(got, "RS256:next") || slices.Contains(got, "RS256:active") || len(rs) != len(step3)+1 {
		t.Errorf("after an RS256 rotation: %v", got)
	}

	e.mustFail(t, http.StatusBadRequest, "invalid", "POST", path+"/rotate", map[string]any{"alg": "HS256"})
	e.mustFail(t, http.StatusBadRequest, "invalid", "POST", path+"/rotate", map[string]any{"alg": "none"})
	e.mustFail(t, http.StatusBadRequest, "invalid", "POST", path+"/rotate", map[string]any{"algorithm": "ES256"})
	e.mustFail(t, http.StatusBadRequest, "invalid", "POST", path+"/rotate", "[1]")
	e.mustFail(t, http.StatusNotFound, "not_found", "POST", "/admin/v1/tenants/nope/keys/rotate", nil)
	e.mustFail(t, http.StatusNotFound, "not_found", "GET", "/admin/v1/tenants/nope/keys", nil)
	e.mustFail(t, http.StatusUnauthorized, "unauthorized", "POST", path+"/rotate", nil, "Authorization", "")
}

// TestOpenAPIKeySchemas holds the key schemas of openapi.json to the Go types, as
// TestOpenAPISchemasMatchGoTypes does for the others.
func TestOpenAPIKeySchemas(t *testing.T) {
	t.Parallel()
	_, doc := loadOpenAPI(t)
	schemas := obj(obj(doc["components"])["schemas"])
	tests := []struct {
		schema   string
		typ      reflect.Type
		response bool
	}{
		{"SigningKey", reflect.TypeFor[keyView](), true},
		{"KeyRotate", reflect.TypeFor[rotateBody](), false},
	}
	for _, tc := range tests {
		s, ok := schemas[tc.schema]
		if !ok {
			t.Fatalf("no schema %s", tc.schema)
		}
		fields := jsonFields(tc.typ)
		props, required := schemaFields(t, doc, s)
		if got, want := slices.Sorted(maps.Keys(props)), slices.Sorted(maps.Keys(fields)); !slices.Equal(got, want) {
			t.Errorf("%s: properties %v, want %v", tc.schema, got, want)
		}
		if tc.response {
			var always []string
			for name, optional := range fields {
				if !optional {
					always = append(always, name)
				}
			}
			if got, want := slices.Sorted(maps.Keys(required)), slices.Sorted(slices.Values(always)); !slices.Equal(got, want) {
				t.Errorf("%s: required %v, want %v", tc.schema, got, want)
			}
		} else if obj(s)["additionalProperties"] != false {
			t.Errorf("%s: a request body schema without additionalProperties: false", tc.schema)
		}
	}
}
