// Command blocklist is an OnAttributeCollectionSubmit extension: it shows a block page to a sign-up
// whose email is in its configured list. Configuration: blocked, a comma-separated list of addresses
// and "@domain" entries; message, the text of the block page.
package main

import (
	"strings"

	"postern.dev/postern/wasm/sdk"
)

func main() {}

func init() {
	sdk.Handle(func(req sdk.Request) sdk.Response {
		email, _ := req.Attribute("email")
		email = strings.ToLower(strings.TrimSpace(email))
		list, _ := sdk.Config("blocked")
		if email != "" && blocked(email, list) {
			msg, ok := sdk.Config("message")
			if !ok {
				msg = "Sign-up is not available for this address."
			}
			_, domain, _ := strings.Cut(email, "@")
			sdk.Logf(sdk.LevelInfo, "blocked a sign-up from @%s", domain)
			return sdk.ShowBlockPage(sdk.OnAttributeCollectionSubmit, msg)
		}
		return sdk.ContinueWithDefaultBehavior(sdk.OnAttributeCollectionSubmit)
	})
}

func blocked(email, list string) bool {
	for _, entry := range strings.Split(list, ",") {
		entry = strings.ToLower(strings.TrimSpace(entry))
		switch {
		case entry == "":
		case strings.HasPrefix(entry, "@") && strings.HasSuffix(email, entry):
			return true
		case entry == email:
			return true
		}
	}
	return false
}
