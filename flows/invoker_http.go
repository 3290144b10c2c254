package flows

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"postern.dev/postern/directory"
)

// HTTP extension limits. The timeout and the single retry are Entra's (a custom authentication extension
// waits at most 2 s and retries a timed-out or failed call once).
const (
	// DefaultExtensionTimeout bounds one attempt of an HTTP extension whose record sets no timeout.
	DefaultExtensionTimeout = 2 * time.Second
	// MaxHTTPResponseSize is the most of an HTTP extension's answer that is read; a longer one fails.
	MaxHTTPResponseSize = 1 << 20
	// callTokenTTL is the lifetime of the bearer token that authenticates Postern to the extension.
	callTokenTTL = 5 * time.Minute
)

// HTTPInvoker calls HTTP extensions: the same JSON as a module gets, POSTed to the extension's URL, for
// tenants who keep a web service. Postern authenticates itself with "Authorization: Bearer <JWT>", signed
// by the tenant's key (so the service verifies it against the tenant's published JWKS): iss is the
// tenant's issuer, aud the extension's URL (Entra uses the app ID URI of the API's registration; Postern
// has none, and the URL is what the service knows itself by), iat, exp five minutes on, and a fresh jti
// per attempt.
//
// # Notes
//
//   - One attempt lasts at most ext.Timeout ([DefaultExtensionTimeout] when unset).
//   - There is at most one retry, and only when no answer came: a connection error, a timeout before the
//     response headers, or a 5xx status. A 4xx, a timeout while reading the body, a wrong Content-Type or
//     an oversized body fail at once.
//   - Only status 200 with Content-Type application/json is an answer (Entra's errors 1003002 and 1003006
//     otherwise). Redirects are not followed.
//   - Only https URLs, except http to a loopback address (a service on the same host; tests).
//   - An HTTPInvoker must not be copied after first use; it is safe for concurrent use.
type HTTPInvoker struct {
	// Sign signs claims as a JWT with the tenant's current signing key. flows does not know the keys
	// (edge/tokens does); the caller passes this in.
	Sign func(tenant string, claims map[string]any) (string, error)
	// Issuer gives the tenant's issuer URL, the iss of its tokens.
	Issuer func(tenant string) string
	// Client sends the requests; nil means a client of the invoker's own. Its redirect policy is replaced:
	// redirects are never followed.
	Client *http.Client
	// Now is the clock of the token's iat and exp; nil means time.Now.
	Now func() time.Time

	once   sync.Once
	client *http.Client
}

// Invoke POSTs input to ext.URL and returns the answer's body; see [HTTPInvoker] for the rules.
func (h *HTTPInvoker) Invoke(ctx context.Context, ext directory.Extension, input []byte) ([]byte, error) {
	if err := checkExtensionURL(ext.URL); err != nil {
		return nil, fmt.Errorf("calling extension %q: %w", ext.ID, err)
	}
	if h.Sign == nil || h.Issuer == nil {
		return nil, fmt.Errorf("calling extension %q: the HTTP invoker has no signer or issuer", ext.ID)
	}
	timeout := time.Duration(ext.Timeout)
	if timeout <= 0 {
		timeout = DefaultExtensionTimeout
	}
	body, retry, err := h.attempt(ctx, ext, input, timeout)
	if err == nil || !retry || ctx.Err() != nil {
		return body, err
	}
	body, _, err2 := h.attempt(ctx, ext, input, timeout)
	if err2 != nil {
		return nil, fmt.Errorf("%w; retried once: %w", err, err2)
	}
	return body, nil
}

// attempt makes one call. retry reports whether no answer came, so that one more attempt may be made.
func (h *HTTPInvoker) attempt(ctx context.Context, ext directory.Extension, input []byte, timeout time.Duration) (body []byte, retry bool, err error) {
	token, err := h.token(ext)
	if err != nil {
		return nil, false, fmt.Errorf("calling extension %q: signing the bearer token: %w", ext.ID, err)
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, ext.URL, bytes.NewReader(input))
	if err != nil {
		return nil, false, fmt.Errorf("calling extension %q: %w", ext.ID, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("User-Agent", "Postern-Extensions/1")
	resp, err := h.httpClient().Do(req)
	if err != nil {
		return nil, true, fmt.Errorf("calling extension %q: %w", ext.ID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 500 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // lets the connection be reused
		return nil, true, fmt.Errorf("calling extension %q: status %d", ext.ID, resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, false, fmt.Errorf("calling extension %q: status %d, want 200", ext.ID, resp.StatusCode)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return nil, false, fmt.Errorf("calling extension %q: Content-Type %q, want application/json", ext.ID, resp.Header.Get("Content-Type"))
	}
	if resp.ContentLength > MaxHTTPResponseSize {
		return nil, false, fmt.Errorf("calling extension %q: the answer is %d bytes, more than %d", ext.ID, resp.ContentLength, MaxHTTPResponseSize)
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, MaxHTTPResponseSize+1))
	if err != nil {
		return nil, false, fmt.Errorf("calling extension %q: reading the answer: %w", ext.ID, err)
	}
	if len(body) > MaxHTTPResponseSize {
		return nil, false, fmt.Errorf("calling extension %q: the answer is more than %d bytes", ext.ID, MaxHTTPResponseSize)
	}
	return body, false, nil
}

// token is the bearer token of one attempt.
func (h *HTTPInvoker) token(ext directory.Extension) (string, error) {
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	iat := now().Unix()
	return h.Sign(ext.Tenant, map[string]any{
		"iss": h.Issuer(ext.Tenant),
		"aud": ext.URL,
		"iat": iat,
		"exp": iat + int64(callTokenTTL/time.Second),
		"jti": rand.Text(),
	})
}

func (h *HTTPInvoker) httpClient() *http.Client {
	h.once.Do(func() {
		c := &http.Client{}
		if h.Client != nil {
			*c = *h.Client
		} else {
			t := http.DefaultTransport.(*http.Transport).Clone()
			t.MaxIdleConnsPerHost = 64
			c.Transport = t
		}
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		h.client = c
	})
	return h.client
}

// checkExtensionURL admits https URLs, and http ones to a loopback address.
func checkExtensionURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("the extension URL does not parse: %w", err)
	}
	if u.Host == "" || u.User != nil || u.Fragment != "" {
		return errors.New("the extension URL needs a host, and no user information or fragment")
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
			return nil
		}
		return errors.New("an http extension URL must be https, unless its host is a loopback address")
	}
	return fmt.Errorf("the extension URL's scheme is %q, want https", u.Scheme)
}
