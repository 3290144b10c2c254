package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"postern.dev/postern/directory/manifest"
)

var postern string // the binary, built once

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "postern-cmd-test")
	if err != nil {
		panic(err)
	}
	postern = filepath.Join(dir, "postern")
	if out, err := exec.Command("go", "build", "-o", postern, ".").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		panic("building postern: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// devServer is a `postern dev` process on free ports.
type devServer struct {
	data     string
	adminURL string
	edgeURL  string
	stderr   *bytes.Buffer
	printed  []string // lines of the start-up message
}

func startDev(t *testing.T) *devServer {
	t.Helper()
	d := &devServer{data: t.TempDir(), stderr: &bytes.Buffer{}}
	cmd := exec.Command(postern, "dev", "--data", d.data, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
		"--sample-upstream-listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "POSTERN_ADMIN_TOKEN=", "POSTERN_KEK=")
	cmd.Stderr = d.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("postern dev stderr:\n%s", d.stderr)
		}
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	adminRe := regexp.MustCompile(`Admin API:\s+(http://[0-9.:]+)/admin/v1/`)
	edgeRe := regexp.MustCompile(`Edge:\s+(http://[0-9.:]+)\s`)
	deadline := time.After(30 * time.Second)
	for d.adminURL == "" || d.edgeURL == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("postern dev exited early; stderr:\n%s", d.stderr)
			}
			d.printed = append(d.printed, l)
			if m := adminRe.FindStringSubmatch(l); m != nil {
				d.adminURL = m[1]
			}
			if m := edgeRe.FindStringSubmatch(l); m != nil {
				d.edgeURL = m[1]
			}
		case <-deadline:
			t.Fatalf("postern dev did not print its URLs; stderr:\n%s", d.stderr)
		}
	}
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("postern dev exited early; stderr:\n%s", d.stderr)
			}
			d.printed = append(d.printed, l)
			if strings.Contains(l, "Press Ctrl-C") {
				go func() {
					for range lines {
					}
				}()
				return d
			}
		case <-deadline:
			t.Fatalf("postern dev did not finish its start-up message; stderr:\n%s", d.stderr)
		}
	}
}

func (d *devServer) token(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join(d.data, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func (d *devServer) get(t *testing.T, path string, out any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", d.adminURL+path, nil)
	req.Header.Set("Authorization", "Bearer "+d.token(t))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

// cli runs a postern command in-process and returns its exit code and output.
func cli(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

type applyReport struct {
	Tenant  string   `json:"tenant"`
	Issuer  string   `json:"issuer"`
	Changed bool     `json:"changed"`
	Changes []string `json:"changes"`
	Apps    []struct {
		Name         string `json:"name"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	} `json:"apps"`
}

func applyFile(t *testing.T, d *devServer, file string) (int, applyReport, string) {
	t.Helper()
	code, out, errText := cli("apply", "-f", file, "--server", d.adminURL, "--data", d.data)
	var r applyReport
	if code == 0 {
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("apply printed no JSON report: %v\n%s", err, out)
		}
	}
	return code, r, errText
}

func TestApplyCreatesUpdatesAndIsIdempotent(t *testing.T) {
	d := startDev(t)
	t.Setenv("SHOP_SECRET", "a-long-random-secret-for-the-shop-web-app-0123456789")

	code, r, stderr := applyFile(t, d, "testdata/acme.yaml")
	if code != 0 {
		t.Fatalf("first apply failed (%d): %s", code, stderr)
	}
	if !r.Changed || r.Tenant != "acme" || r.Issuer != d.edgeURL+"/acme" {
		t.Fatalf("first apply report = %+v", r)
	}
	apps := map[string]string{}
	for _, a := range r.Apps {
		apps[a.Name] = a.ClientID
		if a.ClientSecret != "" {
			t.Errorf("app %s: a secret was printed, but the manifest gave one (web) or the app is public (spa)", a.Name)
		}
	}
	if apps["shop-web"] != "shop-web" || apps["shop-spa"] == "" {
		t.Fatalf("apps in report = %v", apps)
	}

	// The same manifest again: no change, nothing proposed.
	var before struct {
		Nodes []struct {
			AppliedIndex uint64 `json:"applied_index"`
		} `json:"nodes"`
	}
	d.get(t, "/admin/v1/cluster", &before)
	code, r, stderr = applyFile(t, d, "testdata/acme.yaml")
	if code != 0 || r.Changed || len(r.Changes) != 0 {
		t.Fatalf("second identical apply: code %d, report %+v, stderr %s", code, r, stderr)
	}
	var after = before
	d.get(t, "/admin/v1/cluster", &after)
	if after.Nodes[0].AppliedIndex != before.Nodes[0].AppliedIndex {
		t.Errorf("identical apply moved the raft index from %d to %d", before.Nodes[0].AppliedIndex, after.Nodes[0].AppliedIndex)
	}

	// An update: renamed, one app replaced by a service app whose secret is generated and shown once.
	code, r, stderr = applyFile(t, d, "testdata/acme-v2.yaml")
	if code != 0 || !r.Changed {
		t.Fatalf("update apply: code %d, report %+v, stderr %s", code, r, stderr)
	}
	want := map[string]bool{"update tenant acme": true, "create app shop-api": true, "delete app shop-spa": true}
	for _, c := range r.Changes {
		if !want[c] {
			t.Errorf("unexpected change %q", c)
		}
		delete(want, c)
	}
	if len(want) != 0 {
		t.Errorf("missing changes %v in %v", want, r.Changes)
	}
	for _, a := range r.Apps {
		if (a.Name == "shop-api") != (a.ClientSecret != "") {
			t.Errorf("app %s: client_secret %q (only the new service app gets a generated one)", a.Name, a.ClientSecret)
		}
	}
	var tenant struct {
		DisplayName string `json:"display_name"`
	}
	d.get(t, "/admin/v1/tenants/acme", &tenant)
	if tenant.DisplayName != "Acme Shop (renamed)" {
		t.Errorf("display_name = %q after update", tenant.DisplayName)
	}
	if code := d.get(t, "/admin/v1/tenants/acme/apps/shop-spa", nil); code != 404 {
		t.Errorf("removed app shop-spa: GET = %d, want 404", code)
	}
	code, r, _ = applyFile(t, d, "testdata/acme-v2.yaml")
	if code != 0 || r.Changed {
		t.Errorf("re-applying the update changed something: %+v", r)
	}
}

func TestApplyBadManifestReportsEveryProblemAndChangesNothing(t *testing.T) {
	d := startDev(t)
	t.Setenv("SHOP_SECRET", "a-long-random-secret-for-the-shop-web-app-0123456789")
	if code, _, stderr := applyFile(t, d, "testdata/acme.yaml"); code != 0 {
		t.Fatalf("apply: %s", stderr)
	}
	var before, after []json.RawMessage
	d.get(t, "/admin/v1/tenants/acme/audit", &before)

	code, _, stderr := applyFile(t, d, "testdata/acme-bad.yaml")
	if code != 1 {
		t.Fatalf("bad manifest: exit code %d, want 1; stderr %s", code, stderr)
	}
	// Every problem, each with its line and field.
	for _, want := range []string{
		`line 3: sign_in_methods[1]`,                 // unknown method
		`line 7: flows.sign_up.attributes[0].colour`, // unknown field
		`line 12: apps[0].client_secret`,             // unset variable
		`line 13: apps[0].redirect_uris[0]`,          // javascript: URI
		`line 16: apps[1].client_secret`,             // secret on a public client
		`line 17: apps[1].redirect_uri`,              // unknown field (did you mean redirect_uris?)
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	d.get(t, "/admin/v1/tenants/acme/audit", &after)
	if len(after) != len(before) {
		t.Errorf("a bad manifest changed the directory: %d audit events before, %d after", len(before), len(after))
	}
	var tenant struct {
		DisplayName string `json:"display_name"`
	}
	d.get(t, "/admin/v1/tenants/acme", &tenant)
	if tenant.DisplayName != "Acme Shop" {
		t.Errorf("display_name = %q, the bad manifest must change nothing", tenant.DisplayName)
	}
}

func TestCommandLineErrors(t *testing.T) {
	tests := []struct {
		args     []string
		code     int
		contains string
	}{
		{[]string{"nope"}, 2, "unknown command"},
		{[]string{"dev", "--bogus"}, 2, "flag provided but not defined"},
		{[]string{"directory", "--data", "x"}, 2, "--node-id is required"},
		{[]string{"directory", "--data", "x", "--node-id", "a", "--raft-addr", "127.0.0.1:1", "--bootstrap", "--join", "http://x"}, 2, "exclude each other"},
		{[]string{"edge", "--data", t.TempDir(), "--node-id", "e", "--raft-addr", "127.0.0.1:1"}, 2, "--join"},
		{[]string{"apply"}, 2, "-f FILE is required"},
		{[]string{"apply", "-f", "testdata/does-not-exist.yaml", "--token", "x"}, 1, "reading the manifest"},
		{[]string{"admin", "widgets", "list", "--token", "x"}, 2, "unknown resource"},
		{[]string{"admin", "users", "list", "--token", "x"}, 2, "--tenant is required"},
		{[]string{"cluster", "certs"}, 2, "--out DIR is required"},
		{[]string{"dev", "--smtp", "nocolon"}, 2, "--smtp must be HOST:PORT"},
	}
	for _, tc := range tests {
		code, _, stderr := cli(tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.contains) {
			t.Errorf("postern %v: exit %d, stderr %q; want exit %d containing %q", tc.args, code, stderr, tc.code, tc.contains)
		}
		if strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("postern %v: stderr is more than one line: %q", tc.args, stderr)
		}
	}
	for _, c := range commands() {
		code, out, _ := cli(c.name, "--help")
		if c.name == "cluster" {
			code, out, _ = cli("cluster", "certs", "--help")
		}
		if code != 0 {
			t.Errorf("postern %s --help: exit %d", c.name, code)
		}
		_ = out
	}
}

func TestAdminCommands(t *testing.T) {
	d := startDev(t)
	base := []string{"--server", d.adminURL, "--data", d.data}
	steps := []struct {
		args     []string
		contains string
	}{
		{[]string{"admin", "tenants", "create", "shop", "display_name=Shop"}, `"id": "shop"`},
		{[]string{"admin", "tenants", "list"}, "shop"},
		{[]string{"admin", "users", "create", "--tenant", "shop", "email=Ann@Example.com", "password=correct-horse-battery", "profile.given_name=Ann"}, `"email": "ann@example.com"`},
		{[]string{"admin", "users", "get", "--tenant", "shop", "ann@example.com"}, `"given_name": "Ann"`},
		{[]string{"admin", "groups", "create", "--tenant", "shop", "name=customers"}, `"name": "customers"`},
		{[]string{"admin", "groups", "add-member", "--tenant", "shop", "customers", "ann@example.com"}, "add-member"},
		{[]string{"admin", "groups", "members", "--tenant", "shop", "customers", "--output", "json"}, "ann@example.com"},
		{[]string{"admin", "apps", "create", "--tenant", "shop", "name=web", "type=web", `redirect_uris=["http://127.0.0.1:9000/cb"]`}, `"client_secret"`},
		{[]string{"admin", "users", "update", "--tenant", "shop", "ann@example.com", "blocked=true"}, `"blocked": true`},
		{[]string{"admin", "users", "delete", "--tenant", "shop", "ann@example.com"}, "deleted user"},
	}
	for _, s := range steps {
		code, out, stderr := cli(append(s.args, base...)...)
		if code != 0 || !strings.Contains(out, s.contains) {
			t.Fatalf("postern %v: exit %d, out %s, stderr %s; want %q", s.args, code, out, stderr, s.contains)
		}
	}
	code, out, _ := cli(append([]string{"admin", "tenants", "list", "--output", "json"}, base...)...)
	var list []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 2 || list[0]["id"] == nil {
		t.Errorf("tenants list --output json = %s", out)
	}
	code, _, stderr := cli(append([]string{"admin", "users", "create", "--tenant", "shop", "email=x@example.com", "password=short"}, base...)...)
	if code != 1 || !strings.Contains(stderr, "password must be") {
		t.Errorf("short password: exit %d, %s", code, stderr)
	}
	code, out, _ = cli(append([]string{"cluster", "status"}, base...)...)
	if code != 0 || !strings.Contains(out, `"leader": "dev"`) {
		t.Errorf("cluster status: %s", out)
	}
	// Backup then restore through the CLI.
	file := filepath.Join(t.TempDir(), "backup.bin")
	if code, _, stderr := cli(append([]string{"backup", "-o", file}, base...)...); code != 0 {
		t.Fatalf("backup: %s", stderr)
	}
	if code, _, _ := cli(append([]string{"admin", "tenants", "delete", "shop"}, base...)...); code != 0 {
		t.Fatal("delete tenant failed")
	}
	if code, _, stderr := cli(append([]string{"restore", "-f", file}, base...)...); code != 0 {
		t.Fatalf("restore: %s", stderr)
	}
	if c := d.get(t, "/admin/v1/tenants/shop", nil); c != 200 {
		t.Errorf("after restore, tenant shop: %d", c)
	}
	// A corrupt backup is refused and changes nothing.
	bad := filepath.Join(t.TempDir(), "bad.bin")
	os.WriteFile(bad, []byte("not a backup"), 0o600)
	if code, _, _ := cli(append([]string{"restore", "-f", bad}, base...)...); code == 0 {
		t.Error("restoring garbage succeeded")
	}
	if c := d.get(t, "/admin/v1/tenants/shop", nil); c != 200 {
		t.Errorf("after a refused restore, tenant shop: %d", c)
	}
	_ = io.Discard
}

// The manifests the docs show must stay valid.
func TestDocExamplesAreValid(t *testing.T) {
	files, _ := filepath.Glob("../../docs/examples/*.yaml")
	files = append(files, "sample-tenant.yaml")
	if len(files) < 2 {
		t.Fatal("no example manifests found")
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		env := func(name string) (string, bool) {
			return map[string]string{"SAMPLE_UPSTREAM": "http://127.0.0.1:8082", "EDGE_PORT": "8080"}[name], true
		}
		if _, err := manifest.ParseYAML(raw, manifest.Options{Getenv: env}); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
