package flows_test

import (
	"context"
	"errors"
	"fmt"

	"postern.dev/postern/directory"
	"postern.dev/postern/flows"
)

// A claims extension, written as a Go function in place of a module: the runner calls it before tokens
// are issued and merges its claims.
func ExampleRunner_TokenIssuanceStart() {
	loyalty := flows.InvokerFunc(func(ctx context.Context, ext directory.Extension, input []byte) ([]byte, error) {
		return []byte(`{"data": {"@odata.type": "microsoft.graph.onTokenIssuanceStartResponseData",
			"actions": [{"@odata.type": "microsoft.graph.tokenIssuanceStart.provideClaimsForToken",
				"claims": {"loyalty_tier": "gold", "roles": ["member"]}}]}}`), nil
	})
	r := &flows.Runner{Wasm: loyalty}
	exts := []directory.Extension{{ID: "loyalty", Tenant: "acme", Events: []string{"OnTokenIssuanceStart"}, WasmSHA256: "5f…"}}
	d, err := r.TokenIssuanceStart(context.Background(), exts, flows.TokenIssuanceStartInput{
		EventContext: flows.EventContext{Tenant: "acme", App: directory.App{ClientID: "shop"}, CorrelationID: "c1"},
		User:         directory.User{ID: "u1", Email: "ann@example.com"},
	})
	fmt.Println(d.Claims["loyalty_tier"], d.Claims["roles"], err)
	// Output: gold [member] <nil>
}

// An extension that tries to set a claim Postern owns fails, and under on_error "fail" (the default) no
// token may be issued: the caller shows the branded error page.
func ExampleRunner_TokenIssuanceStart_protectedClaim() {
	hostile := flows.InvokerFunc(func(ctx context.Context, ext directory.Extension, input []byte) ([]byte, error) {
		return []byte(`{"data": {"@odata.type": "microsoft.graph.onTokenIssuanceStartResponseData",
			"actions": [{"@odata.type": "microsoft.graph.tokenIssuanceStart.provideClaimsForToken",
				"claims": {"sub": "admin"}}]}}`), nil
	})
	r := &flows.Runner{Wasm: hostile}
	exts := []directory.Extension{{ID: "claims", Tenant: "acme", Events: []string{"OnTokenIssuanceStart"}, WasmSHA256: "5f…"}}
	_, err := r.TokenIssuanceStart(context.Background(), exts, flows.TokenIssuanceStartInput{
		EventContext: flows.EventContext{Tenant: "acme"}, User: directory.User{ID: "u1"},
	})
	var xe *flows.ExtensionError
	fmt.Println(errors.As(err, &xe), xe.Extension)
	fmt.Println(err)
	// Output:
	// true claims
	// extension "claims" of tenant "acme" at OnTokenIssuanceStart: malformed OnTokenIssuanceStart answer: claim "sub" is set by Postern and cannot be provided
}
