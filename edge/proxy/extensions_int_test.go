package proxy_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"postern.dev/postern/directory"
	"postern.dev/postern/edge/proxy"
	"postern.dev/postern/flows"
)

// proxyHook answers OnProxyRequest as a tenant's service would: deny /vip for anyone not in ops, add a
// header otherwise.
type proxyHook struct{ calls atomic.Int64 }

func (h *proxyHook) Invoke(_ context.Context, _ directory.Extension, input []byte) ([]byte, error) {
	h.calls.Add(1)
	var req struct {
		Type string `json:"type"`
		Data struct {
			Path string `json:"path"`
			User struct {
				ID     string   `json:"id"`
				Groups []string `json:"groups"`
			} `json:"user"`
		} `json:"data"`
	}
	json.Unmarshal(input, &req)
	if strings.HasPrefix(req.Data.Path, "/vip") && !strings.Contains(strings.Join(req.Data.User.Groups, ","), "ops") {
		return []byte(`{"data":{"@odata.type":"postern.onProxyRequestResponseData","actions":[
			{"@odata.type":"postern.proxyRequest.deny","status":402,"message":"VIP area: upgrade your plan."}]}}`), nil
	}
	return []byte(`{"data":{"@odata.type":"postern.onProxyRequestResponseData","actions":[
		{"@odata.type":"postern.proxyRequest.addUpstreamHeaders","headers":{"X-Plan":"gold-` + req.Data.User.ID + `"}}]}}`), nil
}

func TestProxyRequestExtension(t *testing.T) {
	hook := &proxyHook{}
	e := newEnv(t, func(c *proxy.Config) { c.Extensions = &flows.Runner{HTTP: hook} })
	ann, _ := e.token("acme", "ann")
	bob, _ := e.token("acme", "bob")
	e.propose(directory.MakeOp(directory.OpMemberAdd, directory.Membership{Tenant: "acme", GroupID: "g-staff", UserID: "bob"}))

	// Before the extension exists, nothing calls it.
	if resp := e.do("GET", acmeHost, "/vip", nil, map[string]string{"Authorization": "Bearer " + bob}); resp.StatusCode != http.StatusOK || hook.calls.Load() != 0 {
		t.Fatalf("no extension: %d, %d calls", resp.StatusCode, hook.calls.Load())
	}
	e.propose(directory.MakeOp(directory.OpExtensionPut, directory.ExtensionPut{Extension: directory.Extension{
		ID: "plans", Tenant: "acme", Events: []string{"OnProxyRequest"}, URL: "https://hooks.acme.test/plans"}}))

	resp := e.do("GET", acmeHost, "/vip/lounge", nil, map[string]string{"Authorization": "Bearer " + bob})
	if resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("bob at /vip: %d, want the extension's 402", resp.StatusCode)
	}
	s := readSeen(t, e.do("GET", acmeHost, "/vip/lounge", nil, map[string]string{"Authorization": "Bearer " + ann, "X-Plan": "forged"}))
	if got := s.headerValues("X-Plan"); len(got) != 1 || got[0] != "gold-ann" {
		t.Errorf("upstream X-Plan = %q, want the extension's only", got)
	}
	// Forward-auth gives the same decision.
	fa := e.do("GET", "postern.internal", "/.postern/auth", nil, map[string]string{"X-Forwarded-Host": acmeHost,
		"X-Forwarded-Uri": "/vip", "Authorization": "Bearer " + bob})
	if fa.StatusCode != http.StatusPaymentRequired {
		t.Errorf("forward-auth for bob at /vip: %d", fa.StatusCode)
	}
}
