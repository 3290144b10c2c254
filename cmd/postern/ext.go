package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"postern.dev/postern/directory"
	"postern.dev/postern/directory/manifest"
	"postern.dev/postern/flows"
	"postern.dev/postern/wasm"
)

const extUsage = `ext test FILE --event EVENT [--input JSON|@FILE|-] [--config KEY=VALUE ...] [--secret NAME=VALUE ...]
       [--allowed-host HOST ...] [--timeout D] [--memory-limit SIZE] [--flow MANIFEST] [--cache DIR]

Runs a WebAssembly extension on this machine as a node runs it, without a server: sends it the event's
request, prints its answer on standard output, and checks the answer against the event's contract. On
standard error: the extension's log lines, then "ok: " and what the answer decides, or how it breaks the
contract (exit 1). A trap, a timeout or a bad module also exits 1.

EVENT is one of OnAttributeCollectionStart, OnAttributeCollectionSubmit, OnTokenIssuanceStart, OnOtpSend
or OnProxyRequest. Without --input the request is a sample of what Postern sends at EVENT. The attribute events' answers are
checked against the sign-up flow (flows.sign_up) of the manifest given with --flow, else against the
attributes of the input's data.userSignUpInfo.attributes. --timeout, --memory-limit, --config, --secret
and --allowed-host are the manifest's extension settings; here http_fetch may also reach loopback and
private addresses of the allowed hosts (a node refuses those). Secrets are sealed with a key made for the
run and read through secret_get as on a node; give them from a shell variable, as below, so they stay out
of your shell's history.

Examples:
  postern ext test add_claims.wasm --event OnTokenIssuanceStart --config claim_name=tier --config claim_value=gold
  postern ext test loyalty.wasm --event OnAttributeCollectionSubmit --config service_url=https://loyalty.example/check \
      --allowed-host loyalty.example --secret api_key="$LOYALTY_API_KEY"`

// runExt is `postern ext`: tools for extension authors.
func runExt(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprintf(stdout, "Usage: postern %s\n", extUsage)
		return flag.ErrHelp
	}
	if len(args) == 0 {
		return usagef("need a subcommand: test")
	}
	if args[0] != "test" {
		return usagef("unknown subcommand %q: test", args[0])
	}
	return runExtTest(args[1:], stdout, stderr)
}

// listFlag is a flag that may be given many times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runExtTest(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ext test", extUsage)
	event := fs.String("event", "", "the event to send, by its manifest name")
	input := fs.String("input", "", "the request JSON, @FILE to read it from a file, or - for standard input (default: a sample request)")
	timeout := fs.String("timeout", "", "time per call, 1ms to 10s (default 2s)")
	memory := fs.String("memory-limit", "", "memory of an instance, 64KiB to 512MiB (default 64MiB)")
	flowFile := fs.String("flow", "", "a manifest whose flows.sign_up the attribute events' answers are checked against")
	cache := fs.String("cache", defaultWasmCache(), "compiled-code cache directory; empty for none")
	var configs, secrets, hosts listFlag
	fs.Var(&configs, "config", "a configuration entry KEY=VALUE of the extension (repeatable)")
	fs.Var(&secrets, "secret", "a secret NAME=VALUE of the extension, read with secret_get (repeatable)")
	fs.Var(&hosts, "allowed-host", "a host http_fetch may reach (repeatable)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("need exactly one FILE, the extension's module")
	}
	file := pos[0]
	if *event == "" {
		return usagef("--event is required: one of %s", strings.Join(eventNames(), ", "))
	}

	// The extension as a manifest would declare it, checked by the manifest's rules.
	me := manifest.Extension{ID: extensionID(file), Wasm: file, Events: []string{*event}, AllowedHosts: hosts}
	if *timeout != "" {
		if me.Timeout, err = manifest.ParseDuration(*timeout); err != nil {
			return usagef("--timeout: %v", err)
		}
	}
	if *memory != "" {
		if me.MemoryLimit, err = manifest.ParseByteSize(*memory); err != nil {
			return usagef("--memory-limit: %v", err)
		}
	}
	for _, c := range configs {
		k, v, ok := strings.Cut(c, "=")
		if !ok {
			return usagef("--config %q is not KEY=VALUE", c)
		}
		if me.Config == nil {
			me.Config = map[string]string{}
		}
		me.Config[k] = v
	}
	for _, s := range secrets {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			// Not repeated: without "=", the argument may be the value itself.
			return usagef("--secret takes NAME=VALUE, and one of them has no =")
		}
		if me.Secrets == nil {
			me.Secrets = map[string]string{}
		}
		me.Secrets[k] = v
	}
	if err := checkManifestPart(manifest.Manifest{Tenant: "local", Extensions: []manifest.Extension{me}}, "extensions[0]", map[string]string{
		"events[0]": "--event", "timeout": "--timeout", "memory_limit": "--memory-limit", "config": "--config",
		"secrets": "--secret"}); err != nil {
		return err
	}
	ev := flows.Event(*event)
	contract, ok := extensionContracts[ev]
	if !ok {
		return usagef("--event %q is not one `ext test` knows: %s", *event, strings.Join(eventNames(), ", "))
	}

	mod, err := os.ReadFile(file)
	if err != nil {
		return usagef("reading the module: %v", err)
	}
	if !bytes.HasPrefix(mod, []byte("\x00asm")) {
		return fmt.Errorf("%s is not a WebAssembly module (it does not start with \\0asm)", file)
	}
	sha := directory.SHA256Hex(mod)
	ext := directory.Extension{ID: me.ID, Tenant: "local", Events: me.Events, WasmSHA256: sha, WasmSize: int64(len(mod)),
		Timeout: directory.Duration(me.Timeout), MemoryLimit: int64(me.MemoryLimit), AllowedHosts: me.AllowedHosts,
		Config: me.Config, Version: 1, UpdatedAt: time.Now()}
	// The secrets take the path they take on a node, sealed in the record and opened when the guest asks,
	// under a key that lives as long as this run.
	kek, err := runKEK()
	if err != nil {
		return err
	}
	if ext.Secrets, err = directory.SealExtensionSecrets(kek, ext.Tenant, ext.ID, me.Secrets, nil); err != nil {
		return err
	}

	var flow *directory.SignUp
	if *flowFile != "" {
		if flow, err = readSignUpFlow(*flowFile); err != nil {
			return err
		}
	}
	var req []byte
	switch {
	case *input == "":
		f := directory.SignUp{Attributes: []directory.AttributeDef{{Name: "given_name", Type: "string"}}}
		if flow != nil {
			f = *flow
		}
		if req, err = contract.sample(ext, f); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "input: a sample %s request (give your own with --input)\n", ev)
	default:
		if req, err = readInput(*input); err != nil {
			return err
		}
	}
	if flow == nil {
		f := signUpFlowOf(req)
		flow = &f
	}

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}))
	rt, err := wasm.New(wasm.Config{CacheDir: *cache, Log: log, Secret: kek.ExtensionSecret,
		Module: func(tenant, want string) ([]byte, error) {
			if want != sha {
				return nil, directory.ErrNotFound
			}
			return mod, nil
		},
		Fetch: wasm.FetchPolicy{AllowPrivateAddresses: true},
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	defer rt.Close(context.Background())
	// The deadline covers compiling the module too; the call itself has the extension's timeout.
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	answer, err := rt.Invoke(ctx, ext, req)
	if err != nil {
		return fmt.Errorf("running %s: %w", file, err)
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, answer, "", "  ") != nil {
		pretty.Reset()
		pretty.Write(answer)
	}
	fmt.Fprintln(stdout, strings.TrimRight(pretty.String(), "\n"))
	summary, err := contract.check(answer, *flow)
	if err != nil {
		return err
	}
	fmt.Fprintln(stderr, "ok: "+summary)
	return nil
}

// extensionContract is what `ext test` knows of an event: a sample request, and how to read an answer.
type extensionContract struct {
	sample func(ext directory.Extension, flow directory.SignUp) ([]byte, error)
	check  func(answer []byte, flow directory.SignUp) (string, error)
}

// sampleContext is the journey of the sample requests.
var sampleContext = flows.EventContext{Tenant: "local",
	App:           directory.App{ID: "app_local", Tenant: "local", Name: "Local app", ClientID: "local-app"},
	CorrelationID: "00000000-0000-4000-8000-000000000000", ClientIP: "127.0.0.1", Locale: "en"}

// extensionContracts is the registry of events `ext test` sends, one entry per event.
var extensionContracts = map[flows.Event]extensionContract{
	flows.EventAttributeCollectionStart: {
		sample: func(ext directory.Extension, flow directory.SignUp) ([]byte, error) {
			return flows.AttributeCollectionStartInput{EventContext: sampleContext, Flow: flow,
				SignUp: flows.SignUpInput{Email: "ann@example.com"}}.Request(ext)
		},
		check: func(answer []byte, flow directory.SignUp) (string, error) {
			d, err := flows.ParseAttributeCollectionStart(answer, flow)
			switch {
			case err != nil:
				return "", err
			case d.Block != nil:
				return blockSummary(d.Block), nil
			case len(d.Prefill) > 0:
				return "prefill the sign-up form: " + stringMap(d.Prefill), nil
			}
			return "show the sign-up form as configured", nil
		},
	},
	flows.EventAttributeCollectionSubmit: {
		sample: func(ext directory.Extension, flow directory.SignUp) ([]byte, error) {
			attrs := map[string]string{}
			for _, a := range flow.Attributes {
				attrs[a.Name] = sampleValue(a)
			}
			return flows.AttributeCollectionSubmitInput{EventContext: sampleContext, Flow: flow,
				SignUp: flows.SignUpInput{Email: "ann@example.com", Attributes: attrs}}.Request(ext)
		},
		check: func(answer []byte, flow directory.SignUp) (string, error) {
			d, err := flows.ParseAttributeCollectionSubmit(answer, flow)
			switch {
			case err != nil:
				return "", err
			case d.Block != nil:
				return blockSummary(d.Block), nil
			case !d.OK():
				s := "send the form back"
				if d.Message != "" {
					s += " with " + strconv.Quote(d.Message)
				}
				if len(d.FieldErrors) > 0 {
					s += "; errors: " + stringMap(d.FieldErrors)
				}
				return s, nil
			case len(d.Modify) > 0:
				return "accept the sign-up with changed attributes: " + stringMap(d.Modify), nil
			}
			return "accept the sign-up as submitted", nil
		},
	},
	flows.EventTokenIssuanceStart: {
		sample: func(ext directory.Extension, _ directory.SignUp) ([]byte, error) {
			return flows.TokenIssuanceStartInput{EventContext: sampleContext, User: directory.User{ID: "user_local",
				Tenant: "local", Email: "ann@example.com", EmailVerified: true,
				Profile: directory.Profile{Name: "Ann Example", GivenName: "Ann", FamilyName: "Example"}}}.Request(ext)
		},
		check: func(answer []byte, _ directory.SignUp) (string, error) {
			d, err := flows.ParseTokenIssuanceStart(answer)
			if err != nil {
				return "", err
			}
			if len(d.Claims) == 0 {
				return "no claims to add", nil
			}
			var parts []string
			for _, k := range slices.Sorted(maps.Keys(d.Claims)) {
				v, _ := json.Marshal(d.Claims[k])
				parts = append(parts, k+"="+string(v))
			}
			return "add claims to the ID and access tokens: " + strings.Join(parts, ", "), nil
		},
	},
	flows.EventOtpSend: {
		sample: func(ext directory.Extension, _ directory.SignUp) ([]byte, error) {
			return flows.OtpSendInput{EventContext: sampleContext, RequestType: flows.OtpSignUp, Email: "ann@example.com",
				Code: "123456"}.Request(ext)
		},
		check: func(answer []byte, _ directory.SignUp) (string, error) {
			d, err := flows.ParseOtpSend(answer)
			switch {
			case err != nil:
				return "", err
			case d.Delivered:
				return "the extension delivered the code", nil
			}
			return "Postern mails the code itself", nil
		},
	},
	flows.EventProxyRequest: {
		sample: func(ext directory.Extension, _ directory.SignUp) ([]byte, error) {
			return flows.ProxyRequestInput{EventContext: sampleContext, Host: "app.localhost:8080", Method: "GET",
				Path: "/", Headers: map[string]string{"Accept": "text/html"},
				User: &flows.ProxyUser{ID: "user_local", Email: "ann@example.com", Groups: []string{"customers"}}}.Request(ext)
		},
		check: func(answer []byte, _ directory.SignUp) (string, error) {
			d, err := flows.ParseProxyRequest(answer)
			switch {
			case err != nil:
				return "", err
			case d.Deny != nil:
				return fmt.Sprintf("deny with status %d and %q", d.Deny.Status, d.Deny.Message), nil
			case len(d.Headers) > 0:
				return "let the request through with upstream headers " + stringMap(d.Headers), nil
			}
			return "let the request through", nil
		},
	},
}

func eventNames() []string {
	var names []string
	for ev := range extensionContracts {
		names = append(names, string(ev))
	}
	slices.Sort(names)
	return names
}

func blockSummary(b *flows.Block) string {
	s := "end the sign-up with a block page"
	if b.Title != "" {
		s += " titled " + strconv.Quote(b.Title)
	}
	return s + ": " + strconv.Quote(b.Message)
}

// stringMap writes a map as k="v", sorted by key.
func stringMap(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+strconv.Quote(m[k]))
	}
	return strings.Join(parts, ", ")
}

func sampleValue(a directory.AttributeDef) string {
	switch a.Type {
	case "number":
		return "42"
	case "boolean":
		return "true"
	case "date":
		return "1990-02-03"
	}
	if a.Name == "given_name" {
		return "Ann"
	}
	return ""
}

// extensionID makes an extension id (the manifest's rule: lower-case letters, digits, _ and -) of a
// module's file name.
func extensionID(file string) string {
	base := strings.ToLower(strings.TrimSuffix(filepath.Base(file), filepath.Ext(file)))
	id := strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '_' || r == '-' {
			return r
		}
		return '-'
	}, base)
	id = strings.TrimLeft(id, "_-")
	if len(id) > 63 {
		id = id[:63]
	}
	if id == "" {
		id = "extension"
	}
	return id
}

// runKEK is a key-encryption key for one run of `ext test`.
func runKEK() (*directory.KEK, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	return directory.NewKEK(key)
}

// checkManifestPart validates m and reports the problems under prefix as a usage error, with the
// fields renamed to the flags that set them ("secrets.api-key" to "--secret api-key").
func checkManifestPart(m manifest.Manifest, prefix string, flags map[string]string) error {
	err := m.Validate()
	var problems manifest.Errors
	if !errors.As(err, &problems) {
		return err
	}
	var msgs []string
	for _, p := range problems {
		if !strings.HasPrefix(p.Field, prefix) {
			continue
		}
		field := strings.TrimPrefix(strings.TrimPrefix(p.Field, prefix), ".")
		if f, ok := flags[field]; ok {
			field = f
		} else if i := strings.IndexAny(field, ".["); i > 0 && flags[field[:i]] != "" {
			field = flags[field[:i]] + " " + strings.TrimPrefix(field[i:], ".")
		}
		msgs = append(msgs, strings.TrimPrefix(field+": "+p.Message, ": "))
	}
	if len(msgs) == 0 {
		return nil
	}
	return usagef("%s", strings.Join(msgs, "; "))
}

// readInput reads --input: JSON itself, @FILE or - for standard input.
func readInput(arg string) ([]byte, error) {
	var b []byte
	var err error
	switch {
	case arg == "-":
		b, err = io.ReadAll(os.Stdin)
	case strings.HasPrefix(arg, "@"):
		b, err = os.ReadFile(arg[1:])
	default:
		b = []byte(arg)
	}
	if err != nil {
		return nil, usagef("reading --input: %v", err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, usagef("--input is not JSON: %v", err)
	}
	return b, nil
}

// readSignUpFlow reads flows.sign_up of a manifest (the rest of the manifest is not read), checked by
// the manifest's rules.
func readSignUpFlow(file string) (*directory.SignUp, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, usagef("reading --flow: %v", err)
	}
	var doc struct {
		Flows manifest.Flows `yaml:"flows"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, usagef("--flow %s: %v", file, err)
	}
	if err := checkManifestPart(manifest.Manifest{Tenant: "local", Flows: doc.Flows}, "flows.sign_up", nil); err != nil {
		return nil, usagef("--flow %s: %v", file, err)
	}
	f := directory.SignUp{EmailVerification: doc.Flows.SignUp.EmailVerification}
	for _, a := range doc.Flows.SignUp.Attributes {
		t := a.Type
		if t == "" {
			t = manifest.AttrString
		}
		f.Attributes = append(f.Attributes, directory.AttributeDef{Name: a.Name, Type: t, Pattern: a.Pattern,
			Required: a.Required, Label: a.Label})
	}
	return &f, nil
}

// signUpFlowOf derives a sign-up flow from a request's data.userSignUpInfo.attributes: every attribute
// but the email, typed by its @odata.type (or its JSON value when it is given bare).
func signUpFlowOf(req []byte) directory.SignUp {
	var r struct {
		Data struct {
			UserSignUpInfo struct {
				Attributes map[string]json.RawMessage `json:"attributes"`
			} `json:"userSignUpInfo"`
		} `json:"data"`
	}
	var f directory.SignUp
	if json.Unmarshal(req, &r) != nil {
		return f
	}
	attrs := r.Data.UserSignUpInfo.Attributes
	for _, name := range slices.Sorted(maps.Keys(attrs)) {
		if name == "email" {
			continue
		}
		var typed struct {
			ODataType string `json:"@odata.type"`
			Value     any    `json:"value"`
		}
		var bare any
		json.Unmarshal(attrs[name], &typed)
		json.Unmarshal(attrs[name], &bare)
		t := manifest.AttrString
		switch o := strings.ToLower(typed.ODataType); {
		case strings.Contains(o, "int64") || strings.Contains(o, "double"):
			t = manifest.AttrNumber
		case strings.Contains(o, "boolean"):
			t = manifest.AttrBoolean
		case o != "":
		default:
			switch bare.(type) {
			case float64:
				t = manifest.AttrNumber
			case bool:
				t = manifest.AttrBoolean
			}
		}
		f.Attributes = append(f.Attributes, directory.AttributeDef{Name: name, Type: t})
	}
	return f
}

// defaultWasmCache is where `ext test` keeps compiled modules between runs: compiling a Go guest takes
// about a second.
func defaultWasmCache() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "postern", "wasm")
}
