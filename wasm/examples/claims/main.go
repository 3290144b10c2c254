// Command claims is an OnTokenIssuanceStart extension: it adds one claim, named and valued by its
// configuration (claim_name, claim_value), to the tokens being issued.
package main

import "postern.dev/postern/wasm/sdk"

func main() {}

func init() {
	sdk.Handle(func(req sdk.Request) sdk.Response {
		name, ok := sdk.Config("claim_name")
		if !ok {
			name = "tier"
		}
		value, _ := sdk.Config("claim_value")
		return sdk.ProvideClaimsForToken(map[string]any{name: value})
	})
}
