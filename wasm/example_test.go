package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"postern.dev/postern/directory"
)

func ExampleRuntime_Invoke() {
	// A module, stored by its SHA-256 (in Postern, the directory's Store.Blob).
	wasm := constModule(`{"data":{"@odata.type":"microsoft.graph.onTokenIssuanceStartResponseData","actions":[]}}`)
	sum := sha256.Sum256(wasm)
	sha := hex.EncodeToString(sum[:])
	r, err := New(Config{
		Module: func(tenant, s string) ([]byte, error) {
			if tenant == "acme" && s == sha {
				return wasm, nil
			}
			return nil, directory.ErrNotFound
		},
	})
	if err != nil {
		panic(err)
	}
	defer r.Close(context.Background())

	ext := directory.Extension{ID: "claims", Tenant: "acme", Events: []string{"OnTokenIssuanceStart"}, WasmSHA256: sha}
	out, err := r.Invoke(context.Background(), ext, []byte(`{"type":"microsoft.graph.authenticationEvent.tokenIssuanceStart","data":{}}`))
	switch {
	case errors.Is(err, ErrTimeout), errors.Is(err, ErrTrap):
		fmt.Println("the extension failed: apply its on_error policy")
	case err != nil:
		fmt.Println("error:", err)
	default:
		fmt.Println(string(out))
	}
	// Output: {"data":{"@odata.type":"microsoft.graph.onTokenIssuanceStartResponseData","actions":[]}}
}
