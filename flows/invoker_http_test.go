package flows

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"postern.dev/postern/directory"
)

// testSigner signs like the tenant's key would, with a key of the test's own.
type testSigner struct {
	key     *ecdsa.PrivateKey
	signer  jose.Signer
	tenants []string
	mu      sync.Mutex
}

func newTestSigner(t *testing.T) *testSigner {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	return &testSigner{key: k, signer: s}
}

func (s *testSigner) Sign(tenant string, claims map[string]any) (string, error) {
	s.mu.Lock()
	s.tenants = append(s.tenants, tenant)
	s.mu.Unlock()
	return jwt.Signed(s.signer).Claims(claims).Serialize()
}

var testNow = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func newTestInvoker(t *testing.T) (*HTTPInvoker, *testSigner) {
	s := newTestSigner(t)
	return &HTTPInvoker{
		Sign:   s.Sign,
		Issuer: func(tenant string) string { return "https://" + tenant + ".postern.test" },
		Now:    func() time.Time { return testNow },
	}, s
}

func httpExt(url string, timeout time.Duration) directory.Extension {
	return directory.Extension{ID: "claims", Tenant: "acme", Events: []string{string(EventTokenIssuanceStart)}, URL: url,
		Timeout: directory.Duration(timeout)}
}

const okAnswer = `{"data": {"@odata.type": "microsoft.graph.onTokenIssuanceStartResponseData", "actions": [{"@odata.type": "microsoft.graph.tokenIssuanceStart.provideClaimsForToken", "claims": {"tier": "gold"}}]}}`

func answerOK(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	io.WriteString(w, okAnswer)
}

// TestHTTPInvokerSuccess checks the request an HTTP extension receives: a POST of the event's JSON, with
// a bearer token of the tenant's key that the service can verify (issuer, audience, five minutes, jti).
func TestHTTPInvokerSuccess(t *testing.T) {
	var got struct {
		method, contentType, auth string
		body                      []byte
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.method, got.contentType, got.auth = r.Method, r.Header.Get("Content-Type"), r.Header.Get("Authorization")
		got.body, _ = io.ReadAll(r.Body)
		answerOK(w)
	}))
	defer srv.Close()
	h, signer := newTestInvoker(t)
	ext := httpExt(srv.URL+"/claims", 0)
	input, err := TokenIssuanceStartInput{EventContext: testCtx, User: testUser}.Request(ext)
	if err != nil {
		t.Fatal(err)
	}
	out, err := h.Invoke(context.Background(), ext, input)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != okAnswer {
		t.Errorf("answer %s", out)
	}
	if got.method != http.MethodPost || got.contentType != "application/json" || !bytes.Equal(got.body, input) {
		t.Errorf("request: %s %q %s", got.method, got.contentType, got.body)
	}
	token, ok := strings.CutPrefix(got.auth, "Bearer ")
	if !ok {
		t.Fatalf("Authorization %q", got.auth)
	}
	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var claims jwt.Claims
	if err := parsed.Claims(&signer.key.PublicKey, &claims); err != nil {
		t.Fatalf("the token does not verify with the tenant's key: %v", err)
	}
	if err := claims.ValidateWithLeeway(jwt.Expected{Issuer: "https://acme.postern.test", AnyAudience: jwt.Audience{ext.URL},
		Time: testNow.Add(4 * time.Minute)}, 0); err != nil {
		t.Errorf("claims %+v: %v", claims, err)
	}
	if !claims.IssuedAt.Time().Equal(testNow) || !claims.Expiry.Time().Equal(testNow.Add(5*time.Minute)) || len(claims.ID) < 16 {
		t.Errorf("claims %+v", claims)
	}
	if other := newTestSigner(t); parsed.Claims(&other.key.PublicKey, &claims) == nil {
		t.Error("the token verifies with another key")
	}
	if len(signer.tenants) != 1 || signer.tenants[0] != "acme" {
		t.Errorf("signed for %v", signer.tenants)
	}
	// The answer is one the runner accepts.
	if d, err := ParseTokenIssuanceStart(out); err != nil || d.Claims["tier"] != "gold" {
		t.Errorf("%v %v", d, err)
	}
}

// TestHTTPInvokerFailures covers the retry rule (one retry, only when no answer came) and the answers
// that fail at once.
func TestHTTPInvokerFailures(t *testing.T) {
	// The server notices a client gone only once the request body is read.
	block := func(w http.ResponseWriter, r *http.Request) { io.ReadAll(r.Body); <-r.Context().Done() }
	status := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { http.Error(w, "oops", code) }
	}
	tests := []struct {
		name     string
		handlers []http.HandlerFunc // by attempt; the last one repeats
		timeout  time.Duration
		calls    int32
		wantErr  string // "" for success
	}{
		{"success", []http.HandlerFunc{func(w http.ResponseWriter, r *http.Request) { answerOK(w) }}, 0, 1, ""},
		{"500 then success", []http.HandlerFunc{status(500), func(w http.ResponseWriter, r *http.Request) { answerOK(w) }}, 0, 2, ""},
		{"two 500s", []http.HandlerFunc{status(500)}, 0, 2, "status 500; retried once: calling extension \"claims\": status 500"},
		{"503 then 502", []http.HandlerFunc{status(503), status(502)}, 0, 2, "status 502"},
		{"timeout then success", []http.HandlerFunc{block, func(w http.ResponseWriter, r *http.Request) { answerOK(w) }}, 100 * time.Millisecond, 2, ""},
		{"two timeouts", []http.HandlerFunc{block}, 50 * time.Millisecond, 2, "context deadline exceeded"},
		{"400 is not retried", []http.HandlerFunc{status(400)}, 0, 1, "status 400, want 200"},
		{"a redirect is not followed", []http.HandlerFunc{func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}}, 0, 1, "status 302"},
		{"204 is not an answer", []http.HandlerFunc{status(204)}, 0, 1, "status 204"},
		{"wrong content type", []http.HandlerFunc{func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, okAnswer)
		}}, 0, 1, `Content-Type "text/plain"`},
		{"oversized body", []http.HandlerFunc{func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(bytes.Repeat([]byte(" "), MaxHTTPResponseSize+1))
		}}, 0, 1, "more than 1048576"},
		{"oversized body without a length", []http.HandlerFunc{func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			for range 17 {
				w.Write(bytes.Repeat([]byte(" "), 64<<10))
				w.(http.Flusher).Flush()
			}
		}}, 0, 1, "more than 1048576 bytes"},
		{"timeout in the body is not retried", []http.HandlerFunc{func(w http.ResponseWriter, r *http.Request) {
			io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"data": `)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}}, 50 * time.Millisecond, 1, "reading the answer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(calls.Add(1)) - 1
				tc.handlers[min(n, len(tc.handlers)-1)](w, r)
			}))
			defer srv.Close()
			h, _ := newTestInvoker(t)
			out, err := h.Invoke(context.Background(), httpExt(srv.URL, tc.timeout), []byte(`{}`))
			if got := calls.Load(); got != tc.calls {
				t.Errorf("%d calls, want %d", got, tc.calls)
			}
			if tc.wantErr == "" {
				if err != nil || string(out) != okAnswer {
					t.Errorf("%s, %v", out, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// TestHTTPInvokerRefusesBeforeCalling: URLs that are not https (or loopback http) and a failed signature
// send nothing.
func TestHTTPInvokerRefusesBeforeCalling(t *testing.T) {
	for _, u := range []string{"http://example.com/x", "http://10.0.0.1/x", "ftp://127.0.0.1/x", "https://user:pw@example.com/",
		"https:///path", "https://example.com/#frag", "::not a url", ""} {
		if err := checkExtensionURL(u); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
	for _, u := range []string{"https://ext.example.com/claims", "http://127.0.0.1:8080/x", "http://[::1]:9/x", "http://localhost/x", "HTTPS://EXAMPLE.COM"} {
		if err := checkExtensionURL(u); err != nil {
			t.Errorf("%q: %v", u, err)
		}
	}
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1); answerOK(w) }))
	defer srv.Close()
	h, _ := newTestInvoker(t)
	h.Sign = func(string, map[string]any) (string, error) { return "", errors.New("no active key") }
	if _, err := h.Invoke(context.Background(), httpExt(srv.URL, 0), []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "no active key") {
		t.Errorf("unsigned: %v", err)
	}
	if _, err := (&HTTPInvoker{}).Invoke(context.Background(), httpExt(srv.URL, 0), []byte(`{}`)); err == nil {
		t.Error("an invoker without a signer called")
	}
	if calls.Load() != 0 {
		t.Errorf("%d calls", calls.Load())
	}
}

// TestHTTPInvokerConnectionAndCancel: a refused connection is retried once; a journey that is cancelled
// is not retried.
func TestHTTPInvokerConnectionAndCancel(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	h, signer := newTestInvoker(t)
	if _, err := h.Invoke(context.Background(), httpExt("http://"+addr+"/x", 0), []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "retried once") {
		t.Errorf("refused: %v", err)
	}
	if len(signer.tenants) != 2 {
		t.Errorf("%d attempts, want 2", len(signer.tenants))
	}

	var calls atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		io.ReadAll(r.Body)
		cancel()
		<-r.Context().Done()
	}))
	defer srv.Close()
	if _, err := h.Invoke(ctx, httpExt(srv.URL, 0), []byte(`{}`)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if calls.Load() != 1 {
		t.Errorf("%d calls after cancel, want 1", calls.Load())
	}
}

// TestHTTPInvokerTLS calls an https extension with the caller's client, and keeps redirects unfollowed
// even though that client would follow them.
func TestHTTPInvokerTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, "/claims", http.StatusTemporaryRedirect)
			return
		}
		answerOK(w)
	}))
	defer srv.Close()
	h, _ := newTestInvoker(t)
	h.Client = srv.Client()
	if out, err := h.Invoke(context.Background(), httpExt(srv.URL+"/claims", 0), []byte(`{}`)); err != nil || string(out) != okAnswer {
		t.Errorf("%s %v", out, err)
	}
	if _, err := h.Invoke(context.Background(), httpExt(srv.URL+"/moved", 0), []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "status 307") {
		t.Errorf("redirect: %v", err)
	}
	if srv.Client().CheckRedirect != nil {
		t.Error("the caller's client was changed")
	}
}
