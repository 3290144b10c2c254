package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"postern.dev/postern/wasm/wasmtest"
)

// The example guests of wasm/examples, built as an author builds them, run by `postern ext test`.
func TestExtTest(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	mods := map[string]string{}
	for pkg, wasm := range wasmtest.BuildAll(t, "postern.dev/postern/wasm/examples/echo",
		"postern.dev/postern/wasm/examples/claims", "postern.dev/postern/wasm/examples/blocklist",
		"postern.dev/postern/wasm/examples/loyalty") {
		name := filepath.Base(pkg)
		mods[name] = filepath.Join(dir, name+".wasm")
		if err := os.WriteFile(mods[name], wasm, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// An answer echo gives back as it is: echo stands in for any extension's answer.
	answer := func(event, action, members string) string {
		return `{"data":{"@odata.type":"microsoft.graph.on` + event + `ResponseData","actions":[{"@odata.type":"` + action + `"` + members + `}]}}`
	}
	flowFile := filepath.Join(dir, "flow.yaml")
	os.WriteFile(flowFile, []byte("tenant: acme\nflows:\n  sign_up:\n    attributes:\n      - {name: loyalty_id, pattern: \"^[0-9]{8}$\"}\n"), 0o600)
	// A loyalty service that wants its API key, which `ext test --secret` gives the loyalty example.
	const apiKey = "sk_test_ext_5b7d9f1e"
	loyalty := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+apiKey {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"valid"}`)
	}))
	defer loyalty.Close()
	loyaltyArgs := []string{mods["loyalty"], "--event", "OnAttributeCollectionSubmit", "--config", "service_url=" + loyalty.URL + "/check",
		"--allowed-host", "127.0.0.1", "--input", `{"type":"microsoft.graph.authenticationEvent.attributeCollectionSubmit","data":{"userSignUpInfo":` +
			`{"attributes":{"loyalty_id":{"@odata.type":"microsoft.graph.stringDirectoryAttributeValue","value":"LOY-1"}}}}}`}

	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // a part of the answer
		stderr string // a part of the last line of standard error
	}{
		{"claims from configuration, on a sample request",
			[]string{mods["claims"], "--event", "OnTokenIssuanceStart", "--config", "claim_name=tier", "--config", "claim_value=gold"},
			0, `"tier": "gold"`, `ok: add claims to the ID and access tokens: tier="gold"`},
		{"a protected claim breaks the contract",
			[]string{mods["claims"], "--event", "OnTokenIssuanceStart", "--config", "claim_name=sub"},
			1, `"sub": ""`, `malformed OnTokenIssuanceStart answer: claim "sub" is set by Postern and cannot be provided`},
		{"a blocked sign-up, with the extension's log line",
			[]string{mods["blocklist"], "--event", "OnAttributeCollectionSubmit", "--config", "blocked=@example.com", "--config", "message=Not here."},
			0, `"message": "Not here."`, `ok: end the sign-up with a block page: "Not here."`},
		{"a sign-up let through",
			[]string{mods["blocklist"], "--event", "OnAttributeCollectionSubmit", "--config", "blocked=@spam.test"},
			0, `continueWithDefaultBehavior`, `ok: accept the sign-up as submitted`},
		{"a request that is no answer",
			[]string{mods["echo"], "--event", "OnTokenIssuanceStart", "--input", `{"type":"x"}`},
			1, `"type": "x"`, `malformed OnTokenIssuanceStart answer: no "data" object`},
		{"an attribute the input's flow does not collect",
			[]string{mods["echo"], "--event", "OnAttributeCollectionSubmit", "--input", answer("AttributeCollectionSubmit",
				"microsoft.graph.attributeCollectionSubmit.modifyAttributeValues", `,"attributes":{"loyalty_id":"123"}`)},
			1, `loyalty_id`, `attribute "loyalty_id" is not collected by the sign-up flow`},
		{"a value the --flow refuses",
			[]string{mods["echo"], "--event", "OnAttributeCollectionSubmit", "--flow", flowFile, "--input", answer("AttributeCollectionSubmit",
				"microsoft.graph.attributeCollectionSubmit.modifyAttributeValues", `,"attributes":{"loyalty_id":"123"}`)},
			1, `loyalty_id`, `attribute "loyalty_id": the value fails the flow's checks (pattern_mismatch)`},
		{"a value the --flow accepts",
			[]string{mods["echo"], "--event", "OnAttributeCollectionSubmit", "--flow", flowFile, "--input", answer("AttributeCollectionSubmit",
				"microsoft.graph.attributeCollectionSubmit.modifyAttributeValues", `,"attributes":{"loyalty_id":"12345678"}`)},
			0, `loyalty_id`, `ok: accept the sign-up with changed attributes: loyalty_id="12345678"`},
		{"prefill",
			[]string{mods["echo"], "--event", "OnAttributeCollectionStart", "--flow", flowFile, "--input", answer("AttributeCollectionStart",
				"microsoft.graph.attributeCollectionStart.setPrefillValues", `,"inputs":{"loyalty_id":"12345678"}`)},
			0, `setPrefillValues`, `ok: prefill the sign-up form: loyalty_id="12345678"`},
		{"a validation error",
			[]string{mods["echo"], "--event", "OnAttributeCollectionSubmit", "--flow", flowFile, "--input", answer("AttributeCollectionSubmit",
				"microsoft.graph.attributeCollectionSubmit.showValidationError", `,"message":"Check it.","attributeErrors":{"loyalty_id":"Unknown number."}`)},
			0, `showValidationError`, `ok: send the form back with "Check it."; errors: loyalty_id="Unknown number."`},
		{"otp delivered",
			[]string{mods["echo"], "--event", "OnOtpSend", "--input", `{"data":{"@odata.type":"microsoft.graph.OnOtpSendResponseData","actions":[{"@odata.type":"microsoft.graph.OtpSend.continueWithDefaultBehavior"}]}}`},
			0, `OtpSend`, `ok: the extension delivered the code`},
		{"proxy denial",
			[]string{mods["echo"], "--event", "OnProxyRequest", "--input", `{"data":{"@odata.type":"postern.onProxyRequestResponseData","actions":[{"@odata.type":"postern.proxyRequest.deny","status":451,"message":"Not here."}]}}`},
			0, `451`, `ok: deny with status 451 and "Not here."`},
		{"a sample proxy request is no answer",
			[]string{mods["echo"], "--event", "OnProxyRequest"},
			1, `"app.localhost:8080"`, `malformed OnProxyRequest answer`},
		{"the input from a file that is not JSON",
			[]string{mods["claims"], "--event", "OnTokenIssuanceStart", "--input", "@" + flowFile},
			2, ``, `--input is not JSON`},
		{"a secret as the service's API key",
			append(slices.Clone(loyaltyArgs), "--secret", "api_key="+apiKey),
			0, `continueWithDefaultBehavior`, `ok: accept the sign-up as submitted`},
		{"the service refuses a call without the secret",
			loyaltyArgs,
			1, ``, `reported a failure (see its log)`},
		{"a memory limit below what the module needs",
			[]string{mods["claims"], "--event", "OnTokenIssuanceStart", "--memory-limit", "64KiB"},
			1, ``, `extension limit reached: extension local/claims`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := cli(append([]string{"ext", "test", "--cache", cache}, tc.args...)...)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if code != tc.code || !strings.Contains(stdout, tc.stdout) || !strings.Contains(lines[len(lines)-1], tc.stderr) {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s\nwant stdout with %q and a last stderr line with %q",
					code, tc.code, stdout, stderr, tc.stdout, tc.stderr)
			}
			if code == 0 && !json.Valid([]byte(stdout)) {
				t.Errorf("stdout is not the JSON answer alone: %s", stdout)
			}
		})
	}

	t.Run("a secret is not printed", func(t *testing.T) {
		code, stdout, stderr := cli(append([]string{"ext", "test", "--cache", cache, "--secret", "api_key=" + apiKey}, loyaltyArgs...)...)
		if code != 0 || strings.Contains(stdout+stderr, apiKey) {
			t.Errorf("exit %d; the output holds the secret or the run failed:\n%s\n%s", code, stdout, stderr)
		}
	})

	t.Run("logs on stderr", func(t *testing.T) {
		_, _, stderr := cli("ext", "test", "--cache", cache, mods["blocklist"], "--event", "OnAttributeCollectionSubmit",
			"--config", "blocked=@example.com")
		if !strings.Contains(stderr, `msg="blocked a sign-up from @example.com" tenant=local extension=blocklist`) {
			t.Errorf("the extension's log line is not on stderr:\n%s", stderr)
		}
	})

	t.Run("input from standard input", func(t *testing.T) {
		cmd := exec.Command(postern, "ext", "test", "--cache", cache, mods["echo"], "--event", "OnOtpSend", "--input", "-")
		cmd.Stdin = strings.NewReader(`{"data":{"@odata.type":"microsoft.graph.OnOtpSendResponseData","actions":[{"@odata.type":"postern.otpSend.useDefaultProvider"}]}}`)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil || !strings.Contains(stderr.String(), "ok: Postern mails the code itself") {
			t.Errorf("postern ext test --input -: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
		}
	})
}

// Mistakes in how `ext test` is called: one line on stderr, exit 2 (1 for a file that is no module).
func TestExtTestErrors(t *testing.T) {
	dir := t.TempDir()
	mod := filepath.Join(dir, "add_claims.wasm")
	os.WriteFile(mod, []byte("\x00asm\x01\x00\x00\x00"), 0o600)
	notWasm := filepath.Join(dir, "script.wasm")
	os.WriteFile(notWasm, []byte("#!/bin/sh\necho hi\n"), 0o600)
	tests := []struct {
		args     []string
		code     int
		contains string
	}{
		{[]string{"ext"}, 2, "need a subcommand: test"},
		{[]string{"ext", "run"}, 2, `unknown subcommand "run"`},
		{[]string{"ext", "test", "--event", "OnOtpSend"}, 2, "need exactly one FILE"},
		{[]string{"ext", "test", mod}, 2, "--event is required: one of OnAttributeCollectionStart"},
		{[]string{"ext", "test", filepath.Join(dir, "missing.wasm"), "--event", "OnOtpSend"}, 2, "reading the module: open "},
		{[]string{"ext", "test", mod, "--event", "OnTokenIssue"}, 2, `--event: unknown event "OnTokenIssue": use OnAttributeCollectionStart`},
		{[]string{"ext", "test", mod, "--event", "OnOtpSend", "--input", "{bad"}, 2, "--input is not JSON: invalid character"},
		{[]string{"ext", "test", mod, "--event", "OnOtpSend", "--input", "@" + filepath.Join(dir, "missing.json")}, 2, "reading --input: open "},
		{[]string{"ext", "test", mod, "--event", "OnOtpSend", "--timeout", "30s"}, 2, "--timeout: out of range: between 1ms and 10s"},
		{[]string{"ext", "test", mod, "--event", "OnOtpSend", "--timeout", "soon"}, 2, "--timeout: "},
		{[]string{"ext", "test", mod, "--event", "OnOtpSend", "--memory-limit", "1GiB"}, 2, "--memory-limit: out of range"},
		{[]string{"ext", "test", mod, "--event", "OnOtpSend", "--config", "novalue"}, 2, `--config "novalue" is not KEY=VALUE`},
		{[]string{"ext", "test", mod, "--event", "OnOtpSend", "--allowed-host", "http://x"}, 2, "allowed_hosts[0]"},
		{[]string{"ext", "test", mod, "--event", "OnOtpSend", "--secret", "sk_live_typed_alone"}, 2, "--secret takes NAME=VALUE, and one of them has no ="},
		{[]string{"ext", "test", mod, "--event", "OnOtpSend", "--secret", "api-key=x"}, 2, `--secret api-key: invalid secret name "api-key"`},
		{[]string{"ext", "test", mod, "--event", "OnOtpSend", "--secret", "api_key="}, 2, "--secret api_key: must not be empty"},
		{[]string{"ext", "test", mod, "--event", "OnOtpSend", "--flow", filepath.Join(dir, "missing.yaml")}, 2, "reading --flow"},
		{[]string{"ext", "test", notWasm, "--event", "OnOtpSend"}, 1, "script.wasm is not a WebAssembly module"},
	}
	for _, tc := range tests {
		code, stdout, stderr := cli(tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.contains) {
			t.Errorf("postern %v: exit %d, stderr %q; want exit %d containing %q", tc.args, code, stderr, tc.code, tc.contains)
		}
		if strings.Count(strings.TrimSpace(stderr), "\n") > 0 || stdout != "" {
			t.Errorf("postern %v: more than one line on stderr, or output on stdout: %q, %q", tc.args, stderr, stdout)
		}
	}
	// A module without the ABI's exports: the runtime's error, exit 1.
	code, _, stderr := cli("ext", "test", "--cache", "", mod, "--event", "OnOtpSend")
	if code != 1 || !strings.Contains(stderr, "bad extension module") || !strings.Contains(stderr, "local/add_claims") {
		t.Errorf("a module without exports: exit %d, stderr %q", code, stderr)
	}
	if code, out, _ := cli("ext", "--help"); code != 0 || !strings.Contains(out, "Usage: postern ext test FILE --event EVENT") {
		t.Errorf("ext --help: exit %d, %q", code, out)
	}
}

// `postern admin extensions` against a dev server.
func TestAdminExtensionsCommands(t *testing.T) {
	d := startDev(t)
	base := []string{"--server", d.adminURL, "--data", d.data}
	mod := filepath.Join(t.TempDir(), "claims.wasm")
	os.WriteFile(mod, []byte("\x00asm\x01\x00\x00\x00"), 0o600)
	const sha = "93a44bbb96c751218e4c00d479e4c14358122a389acca16205b1e4d0dc5f9476" // of the 8 bytes above
	admin := func(args ...string) (int, string, string) {
		return cli(append(append([]string{"admin", "extensions"}, args...), base...)...)
	}
	steps := []struct {
		args     []string
		contains string
	}{
		{[]string{"put", "--tenant", "demo", "claims", "--wasm", mod, "events=OnTokenIssuanceStart,OnOtpSend", "timeout=100ms", "config.claim_value=3"},
			`"wasm_sha256": "` + sha + `"`},
		{[]string{"get", "--tenant", "demo", "claims"}, `"claim_value": "3"`},
		{[]string{"list", "--tenant", "demo"}, "claims  OnTokenIssuanceStart,OnOtpSend  sha256:93a44bbb96c7… (8 bytes)  1"},
		{[]string{"put", "--tenant", "demo", "claims", "--json", `{"wasm":"sha256:` + sha + `","events":["OnOtpSend"]}`}, `"version": 2`},
		{[]string{"list", "--tenant", "demo", "--output", "json"}, `"id":"claims"`},
		// A secret goes in and only its name comes out (12345678 is sent as text, not a number).
		{[]string{"put", "--tenant", "demo", "claims", "wasm=sha256:" + sha, "events=OnOtpSend", "secrets.api_key=sk_cli_3e7f91",
			"secrets.pin=12345678"}, `"secret_names": [`},
		{[]string{"get", "--tenant", "demo", "claims"}, `"pin"`},
		{[]string{"delete", "--tenant", "demo", "claims"}, "deleted extension claims"},
	}
	for _, s := range steps {
		code, out, stderr := admin(s.args...)
		if code != 0 || !strings.Contains(out, s.contains) {
			t.Fatalf("postern admin extensions %v: exit %d, out %s, stderr %s; want %q", s.args, code, out, stderr, s.contains)
		}
		if strings.Contains(out+stderr, "sk_cli_3e7f91") || strings.Contains(out, "12345678") {
			t.Errorf("postern admin extensions %v printed a secret:\n%s%s", s.args, out, stderr)
		}
	}
	code, _, stderr := admin("put", "--tenant", "demo", "claims", "--wasm", mod, "events=OnTokenIssue")
	if code != 1 || !strings.Contains(stderr, `events[0]: unknown event "OnTokenIssue"`) {
		t.Errorf("put with an unknown event: exit %d, stderr %s", code, stderr)
	}
	code, _, stderr = admin("put", "--tenant", "demo", "claims", "--wasm", filepath.Join(t.TempDir(), "missing.wasm"), "events=OnOtpSend")
	if code != 1 || !strings.Contains(stderr, "reading the module") {
		t.Errorf("put with a missing module: exit %d, stderr %s", code, stderr)
	}
	code, _, stderr = admin("rotate", "--tenant", "demo")
	if code != 2 || !strings.Contains(stderr, "list, get, put or delete") {
		t.Errorf("unknown verb: exit %d, stderr %s", code, stderr)
	}
	code, _, stderr = cli(append([]string{"admin", "users", "list", "--tenant", "demo", "--wasm", mod}, base...)...)
	if code != 2 || !strings.Contains(stderr, "--wasm is for extensions put only") {
		t.Errorf("--wasm on users: exit %d, stderr %s", code, stderr)
	}
}
