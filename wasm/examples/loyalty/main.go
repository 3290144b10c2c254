// Command loyalty is an OnAttributeCollectionSubmit extension that checks the loyalty number a person
// entered at sign-up against the tenant's own service, through the host's fetch.
//
// Configuration: service_url, the service's check endpoint (its host must be in allowed_hosts);
// attribute, the sign-up attribute holding the number (default loyalty_id). Secret: api_key, sent as
// "Authorization: Bearer <api_key>" when set. The service is sent POST {"loyalty_id": "…"} and
// answers {"status": "valid"} or {"status": "invalid"}.
package main

import (
	"encoding/json"
	"fmt"

	"postern.dev/postern/wasm/sdk"
)

func main() {}

func init() {
	sdk.HandleErr(func(req sdk.Request) (sdk.Response, error) {
		attr, ok := sdk.Config("attribute")
		if !ok {
			attr = "loyalty_id"
		}
		id, ok := req.Attribute(attr)
		if !ok || id == "" {
			return sdk.ContinueWithDefaultBehavior(sdk.OnAttributeCollectionSubmit), nil
		}
		url, ok := sdk.Config("service_url")
		if !ok {
			return sdk.Response{}, fmt.Errorf("loyalty: service_url is not configured")
		}
		body, _ := json.Marshal(map[string]string{"loyalty_id": id})
		headers := map[string]string{"Content-Type": "application/json"}
		if key, ok := sdk.Secret("api_key"); ok {
			headers["Authorization"] = "Bearer " + key
		}
		resp, err := sdk.Fetch(sdk.FetchRequest{
			Method:  "POST",
			URL:     url,
			Headers: headers,
			Body:    string(body),
		})
		if err != nil {
			return sdk.Response{}, fmt.Errorf("loyalty: checking the number: %w", err)
		}
		if resp.Status != 200 {
			return sdk.Response{}, fmt.Errorf("loyalty: the service answered %d", resp.Status)
		}
		var answer struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal([]byte(resp.Body), &answer); err != nil {
			return sdk.Response{}, fmt.Errorf("loyalty: decoding the service's answer: %w", err)
		}
		if answer.Status == "invalid" {
			return sdk.ShowValidationError("Please check your loyalty number.",
				map[string]string{attr: "This loyalty number is not valid."}), nil
		}
		return sdk.ContinueWithDefaultBehavior(sdk.OnAttributeCollectionSubmit), nil
	})
}
