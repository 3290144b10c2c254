// Command otp is an OnOtpSend extension that delivers one-time codes itself, through the tenant's own
// messaging service, instead of Postern's email.
//
// Configuration: delivery_url (its host must be in allowed_hosts). Secret: api_key, sent as a bearer
// token when set.
// The service is sent POST {"to": "…", "code": "…"} and must answer with a 2xx status.
package main

import (
	"encoding/json"
	"fmt"

	"postern.dev/postern/wasm/sdk"
)

func main() {}

func init() {
	sdk.HandleErr(func(req sdk.Request) (sdk.Response, error) {
		to, _ := req.String("otpContext", "identifier")
		code, _ := req.String("otpContext", "oneTimeCode")
		if to == "" || code == "" {
			return sdk.Response{}, fmt.Errorf("otp: the event has no otpContext.identifier or oneTimeCode")
		}
		url, ok := sdk.Config("delivery_url")
		if !ok {
			return sdk.Response{}, fmt.Errorf("otp: delivery_url is not configured")
		}
		headers := map[string]string{"Content-Type": "application/json"}
		if key, ok := sdk.Secret("api_key"); ok {
			headers["Authorization"] = "Bearer " + key
		}
		body, _ := json.Marshal(map[string]string{"to": to, "code": code})
		resp, err := sdk.Fetch(sdk.FetchRequest{Method: "POST", URL: url, Headers: headers, Body: string(body)})
		if err != nil {
			return sdk.Response{}, fmt.Errorf("otp: delivering the code: %w", err)
		}
		if resp.Status < 200 || resp.Status > 299 {
			return sdk.Response{}, fmt.Errorf("otp: the delivery service answered %d", resp.Status)
		}
		return sdk.ContinueWithDefaultBehavior(sdk.OnOtpSend), nil
	})
}
