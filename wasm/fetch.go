package wasm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// fetchRequest is http_fetch's request JSON.
type fetchRequest struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

// fetchResponse is http_fetch's answer when the request was made.
type fetchResponse struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

const maxRedirects = 3

// newFetchClient is the one HTTP client of all extensions' fetches. It takes no proxy from the
// environment, and its dialer refuses non-public addresses unless the policy allows them, whatever
// name resolved to them.
func newFetchClient(p FetchPolicy) *http.Client {
	rt := p.Transport
	if rt == nil {
		dialer := &net.Dialer{Timeout: p.Timeout, KeepAlive: 30 * time.Second}
		if !p.AllowPrivateAddresses {
			dialer.Control = refusePrivate
		}
		rt = &http.Transport{
			Proxy:                  nil,
			DialContext:            dialer.DialContext,
			ForceAttemptHTTP2:      true,
			MaxIdleConns:           256,
			MaxIdleConnsPerHost:    16,
			IdleConnTimeout:        90 * time.Second,
			TLSHandshakeTimeout:    p.Timeout,
			MaxResponseHeaderBytes: 64 << 10,
		}
	}
	return &http.Client{
		Transport: rt,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("more than %d redirects", maxRedirects)
			}
			cs, _ := req.Context().Value(callKey{}).(*callState)
			if cs == nil {
				return errors.New("redirect outside a call")
			}
			return allowedURL(cs.ext.AllowedHosts, req.URL)
		},
	}
}

// fetch makes one guest's HTTP request and returns the JSON answer for it: {status, headers, body},
// or {error} when the request is refused or fails.
func (r *Runtime) fetch(ctx context.Context, cs *callState, raw []byte) []byte {
	p := &r.cfg.Fetch
	if cs.fetches >= p.MaxPerCall {
		return fetchFailure("more than %d fetches in one call", p.MaxPerCall)
	}
	cs.fetches++
	var req fetchRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return fetchFailure("the request is not JSON: %v", err)
	}
	u, err := url.Parse(req.URL)
	if err != nil {
		return fetchFailure("bad url: %v", err)
	}
	if err := allowedURL(cs.ext.AllowedHosts, u); err != nil {
		return fetchFailure("%v", err)
	}
	method := strings.ToUpper(req.Method)
	if method == "" {
		method = http.MethodGet
	}
	fctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	var body io.Reader
	if req.Body != "" {
		body = strings.NewReader(req.Body)
	}
	hreq, err := http.NewRequestWithContext(fctx, method, u.String(), body)
	if err != nil {
		return fetchFailure("bad request: %v", err)
	}
	for k, v := range req.Headers {
		hreq.Header.Set(k, v)
	}
	if hreq.Header.Get("User-Agent") == "" {
		hreq.Header.Set("User-Agent", "postern-extension")
	}
	start := time.Now()
	resp, err := r.client.Do(hreq)
	if err != nil {
		var ne net.Error
		if fctx.Err() != nil || errors.As(err, &ne) && ne.Timeout() {
			return fetchFailure("%s %s: timed out", method, u.Host)
		}
		return fetchFailure("%s %s: %v", method, u.Host, unwrapURLError(err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, p.MaxResponseBytes+1))
	if err != nil {
		return fetchFailure("%s %s: reading the response: %v", method, u.Host, unwrapURLError(err))
	}
	if int64(len(b)) > p.MaxResponseBytes {
		return fetchFailure("%s %s: response larger than %d bytes", method, u.Host, p.MaxResponseBytes)
	}
	headers := make(map[string]string, len(resp.Header))
	for k, vs := range resp.Header {
		headers[k] = strings.Join(vs, ", ")
	}
	out, err := json.Marshal(fetchResponse{Status: resp.StatusCode, Headers: headers, Body: string(b)})
	if err != nil {
		return fetchFailure("encoding the response: %v", err)
	}
	r.cfg.Log.Debug("wasm: extension fetch", "tenant", cs.ext.Tenant, "extension", cs.ext.ID,
		"method", method, "host", u.Host, "status", resp.StatusCode, "took", time.Since(start))
	return out
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// allowedURL checks a URL against an extension's allowed_hosts. An entry is a host name or IP
// ("api.example.com": any port), a host and port ("api.example.com:8443"), or a wildcard
// ("*.example.com": any subdomain, not example.com itself). Only http and https, no user info.
func allowedURL(allowed []string, u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme %q is not allowed: only http and https", u.Scheme)
	}
	if u.User != nil {
		return errors.New("user info in the url is not allowed")
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "" {
		return errors.New("the url has no host")
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	for _, entry := range allowed {
		entry = strings.ToLower(strings.TrimSpace(entry))
		h, p, err := net.SplitHostPort(entry)
		if err != nil {
			h, p = strings.Trim(entry, "[]"), ""
		}
		if p != "" && p != port {
			continue
		}
		if rest, ok := strings.CutPrefix(h, "*."); ok {
			if strings.HasSuffix(host, "."+rest) {
				return nil
			}
			continue
		}
		if h == host {
			return nil
		}
	}
	return fmt.Errorf("host %q is not in the extension's allowed_hosts", u.Host)
}

// nonPublic are the address ranges a fetch may not reach unless the policy allows private addresses,
// beyond what netip's Is… methods cover.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
}

// refusePrivate is the fetch dialer's check of each address it connects to, after name resolution.
func refusePrivate(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("address %q is not an IP", host)
	}
	ip = ip.Unmap()
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return fmt.Errorf("address %s is not public", ip)
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return fmt.Errorf("address %s is not public", ip)
		}
	}
	return nil
}
