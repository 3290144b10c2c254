package admin

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"testing"
)

func TestProfile(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	const path = "/admin/v1/debug/pprof/"

	// A profile is gzipped protobuf (pprof's format); a short CPU profile and a heap profile both come.
	for _, p := range []string{"heap", "goroutine", "cpu?seconds=1"} {
		r := e.must(t, http.StatusOK, "GET", path+p, nil, nil)
		z, err := gzip.NewReader(bytes.NewReader(r.body))
		if err != nil {
			t.Fatalf("%s: the answer is not a gzipped profile: %v", p, err)
		}
		if b, err := io.ReadAll(z); err != nil || len(b) == 0 {
			t.Fatalf("%s: reading the profile: %d bytes, %v", p, len(b), err)
		}
	}

	// Bad names and durations are refused, and the token is required like everywhere in the API.
	e.mustFail(t, http.StatusNotFound, "not_found", "GET", path+"nosuch", nil)
	for _, q := range []string{"0", "121", "x"} {
		e.mustFail(t, http.StatusBadRequest, "invalid", "GET", path+"cpu?seconds="+q, nil)
	}
	if r := e.do(t, "GET", path+"heap", nil, "Authorization", ""); r.status != http.StatusUnauthorized {
		t.Fatalf("without the token: HTTP %d, want 401", r.status)
	}
}
