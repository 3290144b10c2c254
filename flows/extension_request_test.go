package flows

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postern.dev/postern/directory"
	"postern.dev/postern/directory/manifest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/extensions")

var (
	testApp = directory.App{ID: "app_7f3a", Tenant: "acme", Name: "Acme Shop", ClientID: "shop-web"}
	testCtx = EventContext{Tenant: "acme", App: testApp, CorrelationID: "c0ffee00-0000-4000-8000-000000000001",
		ClientIP: "203.0.113.7", Locale: "en-GB"}
	testFlow = directory.SignUp{Attributes: []directory.AttributeDef{
		{Name: "given_name", Required: true},
		{Name: "loyalty_id", Pattern: "[0-9]{8}"},
		{Name: "age", Type: "number"},
		{Name: "height", Type: "number"},
		{Name: "birthday", Type: "date"},
		{Name: "newsletter", Type: "boolean"},
	}}
	testUser = directory.User{ID: "usr_01", Tenant: "acme", Email: "ann@example.com", EmailVerified: true,
		PasswordHash: "$argon2id$secret", Profile: directory.Profile{Name: "Ann Lee", GivenName: "Ann", FamilyName: "Lee", Locale: "en-GB"},
		Attributes: map[string]any{"loyalty_id": "12345678"}, CreatedAt: time.Date(2026, 3, 1, 15, 23, 40, 0, time.UTC)}
)

func testExt(id string, events ...Event) directory.Extension {
	e := directory.Extension{ID: id, Tenant: "acme", WasmSHA256: strings.Repeat("ab", 32)}
	for _, ev := range events {
		e.Events = append(e.Events, string(ev))
	}
	return e
}

// TestEventRequests pins each event's request JSON to a golden file in testdata/extensions: the contract
// an extension is written against (go test -run TestEventRequests -update rewrites them). Shapes after
// Entra's references: custom-extension-onattributecollectionstart-retrieve-return-data,
// custom-extension-onattributecollectionsubmit-reference, custom-claims-provider-reference,
// custom-extension-email-otp-send-data.
func TestEventRequests(t *testing.T) {
	tests := []struct {
		name string
		in   interface {
			Request(directory.Extension) ([]byte, error)
		}
		ev Event
	}{
		{"attribute_collection_start", AttributeCollectionStartInput{EventContext: testCtx, Flow: testFlow,
			SignUp: SignUpInput{Email: " Ann@Example.com", Attributes: map[string]string{"given_name": "Ann"}}}, EventAttributeCollectionStart},
		{"attribute_collection_submit", AttributeCollectionSubmitInput{EventContext: testCtx, Flow: testFlow,
			SignUp: SignUpInput{Email: "ann@example.com", Attributes: map[string]string{"given_name": "Ann", "loyalty_id": "12345678",
				"age": "42", "height": "1.75", "birthday": "1990-02-03", "newsletter": "on", "undeclared": "ignored"}}}, EventAttributeCollectionSubmit},
		{"token_issuance_start", TokenIssuanceStartInput{EventContext: testCtx, User: testUser}, EventTokenIssuanceStart},
		{"otp_send", OtpSendInput{EventContext: testCtx, RequestType: OtpSignUp, Email: "ann@example.com", Code: "48151623"}, EventOtpSend},
		{"proxy_request", ProxyRequestInput{EventContext: testCtx, Host: "shop.example.com", Method: "GET", Path: "/orders/17?token=secret",
			Headers: map[string]string{"accept-language": "en-GB", "Cookie": "postern_session=x", "authorization": "Bearer x", "User-Agent": "test"},
			User:    &ProxyUser{ID: "usr_01", Email: "ann@example.com", Groups: []string{"staff"}}}, EventProxyRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.in.Request(testExt("loyalty", tc.ev))
			if err != nil {
				t.Fatal(err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, got, "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			path := filepath.Join("testdata", "extensions", tc.name+".request.json")
			if *update {
				if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Errorf("request differs from %s:\n%s", path, pretty.Bytes())
			}
			for _, secret := range []string{"secret", "argon2id", "postern_session", "Bearer"} {
				if bytes.Contains(got, []byte(secret)) {
					t.Errorf("request carries %q", secret)
				}
			}
		})
	}
}

func TestRequestShapes(t *testing.T) {
	// An anonymous proxied request has no user; a sign-up before the form has nulls, not zero values.
	b, err := ProxyRequestInput{EventContext: testCtx, Host: "h", Method: "GET", Path: "/"}.Request(testExt("p", EventProxyRequest))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(`"user"`)) || bytes.Contains(b, []byte(`"headers"`)) {
		t.Errorf("anonymous proxy request: %s", b)
	}
	b, err = AttributeCollectionStartInput{EventContext: testCtx, Flow: testFlow}.Request(testExt("s", EventAttributeCollectionStart))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Data struct {
			UserSignUpInfo struct {
				Attributes map[string]map[string]any `json:"attributes"`
				Identities []any                     `json:"identities"`
			} `json:"userSignUpInfo"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	info := r.Data.UserSignUpInfo
	if _, ok := info.Attributes["email"]; ok || info.Identities == nil || len(info.Identities) != 0 {
		t.Errorf("no email yet: %s", b)
	}
	if a := info.Attributes["newsletter"]; a["value"] != nil || a["@odata.type"] != booleanAttribute || a["attributeType"] != "directorySchemaExtension" {
		t.Errorf("unset boolean before the form: %v", a)
	}
	// A value the form could not have passed is the caller's mistake, not sent.
	if _, err := (AttributeCollectionSubmitInput{EventContext: testCtx, Flow: testFlow,
		SignUp: SignUpInput{Email: "a@example.com", Attributes: map[string]string{"age": "forty"}}}).Request(testExt("s")); err == nil {
		t.Error("a number attribute of text was encoded")
	}
	if _, err := (OtpSendInput{EventContext: testCtx, Email: "a@example.com"}).Request(testExt("o")); err == nil {
		t.Error("an OTP request without a code was encoded")
	}
}

// TestEventNamesMatchManifest keeps the event names and failure policies the same as those the manifest
// accepts.
func TestEventNamesMatchManifest(t *testing.T) {
	pairs := map[Event]string{
		EventAttributeCollectionStart:  manifest.EventAttributeCollectionStart,
		EventAttributeCollectionSubmit: manifest.EventAttributeCollectionSubmit,
		EventTokenIssuanceStart:        manifest.EventTokenIssuanceStart,
		EventOtpSend:                   manifest.EventOtpSend,
		EventProxyRequest:              manifest.EventProxyRequest,
	}
	for ev, m := range pairs {
		if string(ev) != m {
			t.Errorf("flows %q, manifest %q", ev, m)
		}
		if _, ok := contracts[ev]; !ok {
			t.Errorf("%s has no contract", ev)
		}
	}
	if len(contracts) != len(pairs) {
		t.Errorf("%d contracts, %d events", len(contracts), len(pairs))
	}
	if onErrorFail != manifest.OnErrorFail || onErrorContinue != manifest.OnErrorContinue {
		t.Error("failure policies differ from the manifest's")
	}
}
