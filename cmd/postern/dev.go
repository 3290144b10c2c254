package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"postern.dev/postern/directory"
	"postern.dev/postern/directory/manifest"
	"postern.dev/postern/edge"
	"postern.dev/postern/edge/mail"
)

//go:embed sample-tenant.yaml
var sampleManifest []byte

// runDev runs every role in one process on an embedded, single-node directory, and creates the sample
// tenant on first start.
func runDev(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dev", "dev [--data DIR] [--listen ADDR] [--admin-listen ADDR] [--public-url URL] [--smtp HOST:PORT]")
	o := nodeOptions{voter: true, bootstrap: true, nodeID: "dev", fetchPrivate: true}
	fs.StringVar(&o.dataDir, "data", "./postern-data", "data directory")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address of the edge listener")
	fs.StringVar(&o.adminListen, "admin-listen", "127.0.0.1:8081", "address of the admin API")
	fs.StringVar(&o.publicURL, "public-url", "", "public base URL of the edge (default http://<listen>)")
	upstreamListen := fs.String("sample-upstream-listen", "127.0.0.1:8082", "address of the sample upstream app the demo route protects")
	fs.StringVar(&o.smtp, "smtp", "", "SMTP server HOST:PORT for outgoing mail (default: write mail to the log and DIR/outbox/)")
	fs.StringVar(&o.smtpTLS, "smtp-tls", "", "none, starttls or tls (default: none to a loopback server, else starttls)")
	fs.StringVar(&o.smtpFrom, "smtp-from", "", "From address of outgoing mail (default "+mail.DefaultFrom+")")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if o.smtp != "" {
		if _, _, err := net.SplitHostPort(o.smtp); err != nil {
			return usagef("--smtp must be HOST:PORT: %v", err)
		}
	}
	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return fmt.Errorf("creating data directory: %w", err)
	}
	o.kekFile = filepath.Join(o.dataDir, "kek")
	if os.Getenv("POSTERN_KEK") != "" {
		o.kekFile = ""
	} else if _, err := os.Stat(o.kekFile); errors.Is(err, os.ErrNotExist) {
		if err := directory.GenerateKEKFile(o.kekFile); err != nil {
			return err
		}
	}
	tokenFile := filepath.Join(o.dataDir, "admin-token")
	o.adminToken = os.Getenv("POSTERN_ADMIN_TOKEN")
	if o.adminToken == "" {
		var err error
		if o.adminToken, err = readOrCreateToken(tokenFile); err != nil {
			return err
		}
	}
	log := newLogger()
	upstreamLn, err := net.Listen("tcp", *upstreamListen)
	if err != nil {
		return fmt.Errorf("listening for the sample upstream on %s: %w", *upstreamListen, err)
	}
	upstream := edge.NewSampleUpstream()
	go upstream.Serve(upstreamLn)
	defer upstream.Shutdown()

	rn, err := startNode(o, log)
	if err != nil {
		return err
	}
	defer rn.stop()
	if err := waitForLeader(rn.node, 10*time.Second); err != nil {
		return err
	}
	made, err := ensureSampleTenant(rn, "http://"+upstreamLn.Addr().String(), rn.edgeAddr)
	if err != nil {
		return fmt.Errorf("creating the sample tenant: %w", err)
	}
	publicURL := o.publicURL
	if publicURL == "" {
		publicURL = "http://" + rn.edgeAddr
	}
	fmt.Fprintf(stdout, `Postern is running (dev mode, data in %s).

  Edge:          %s   (health: %s/healthz)
  Tenant demo:   issuer %s/demo
                 discovery %s/demo/.well-known/openid-configuration
  Sample app:    %s   (an upstream the demo route protects)
  Admin API:     http://%s/admin/v1/   (OpenAPI: http://%s/admin/v1/openapi.json)
  Admin token:   %s
`, o.dataDir, publicURL, publicURL, publicURL, publicURL, "http://"+upstreamLn.Addr().String(), rn.adminAddr, rn.adminAddr, tokenSource(tokenFile))
	if made.created {
		fmt.Fprintf(stdout, `
  Created the sample tenant (shown once, only hashes are kept):
    OIDC client:   client_id demo-web, client_secret %s, redirect_uri http://127.0.0.1:9000/callback
    Sample user:   demo@example.com, password %s
`, made.clientSecret, made.userPassword)
	}
	if o.smtp == "" {
		fmt.Fprint(stdout, "\n  Mail (sign-up codes) goes to the log and to "+filepath.Join(o.dataDir, "outbox")+"; give --smtp to send it.\n")
	}
	fmt.Fprint(stdout, "\nPress Ctrl-C to stop.\n")
	sig := waitForSignal()
	log.Info("stopping", "signal", sig.String())
	return nil
}

func tokenSource(file string) string {
	if os.Getenv("POSTERN_ADMIN_TOKEN") != "" {
		return "from POSTERN_ADMIN_TOKEN"
	}
	return file
}

// readOrCreateToken reads the dev admin token, or writes a new one (mode 0600).
func readOrCreateToken(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err == nil {
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, nil
		}
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("reading admin token: %w", err)
	}
	t := randomToken()
	if err := os.WriteFile(file, []byte(t+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("writing admin token: %w", err)
	}
	return t, nil
}

// sample is what `postern dev` made on first start; the secrets exist in plain text only here.
type sample struct {
	created      bool
	clientSecret string
	userPassword string
}

// ensureSampleTenant applies the sample manifest once, on first start, through the same planner and raft
// path as `postern apply`, and adds a sample user.
func ensureSampleTenant(rn *runningNode, upstreamURL, edgeAddr string) (sample, error) {
	if _, err := rn.store.Tenant("demo"); err == nil {
		return sample{}, nil
	}
	_, port, _ := net.SplitHostPort(edgeAddr)
	text := strings.NewReplacer("${SAMPLE_UPSTREAM}", upstreamURL, "${EDGE_PORT}", port).Replace(string(sampleManifest))
	m, err := manifest.ParseYAML([]byte(text), manifest.Options{Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		return sample{}, err
	}
	plan, err := directory.PlanManifest(rn.store, m, rn.kek)
	if err != nil {
		return sample{}, err
	}
	out := sample{created: true, userPassword: directory.NewClientSecret()[:20]}
	for _, a := range plan.Apps {
		if a.ClientSecret != "" {
			out.clientSecret = a.ClientSecret
		}
	}
	hash, err := directory.HashPassword(out.userPassword)
	if err != nil {
		return sample{}, err
	}
	ops := append(plan.Ops, directory.MakeOp(directory.OpUserCreate, directory.User{ID: directory.NewID(), Tenant: "demo",
		Email: "demo@example.com", EmailVerified: true, PasswordHash: hash, Profile: directory.Profile{GivenName: "Demo", Name: "Demo User"}}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := rn.node.Propose(ctx, directory.NewCommand(time.Now(), "postern dev", ops...)); err != nil {
		return sample{}, err
	}
	return out, nil
}
