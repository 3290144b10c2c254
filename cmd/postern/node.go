package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"postern.dev/postern/flows"
	"postern.dev/postern/wasm"
	"strings"
	"syscall"
	"time"

	"postern.dev/postern/cluster"
	"postern.dev/postern/directory"
	"postern.dev/postern/edge"
	"postern.dev/postern/edge/admin"
	"postern.dev/postern/edge/mail"
	"postern.dev/postern/edge/oidc"
	"postern.dev/postern/edge/proxy"
	"postern.dev/postern/edge/tokens"
)

// nodeOptions is what dev, directory and edge have in common.
type nodeOptions struct {
	dataDir     string
	nodeID      string
	raftAddr    string
	listen      string // edge listener; "" for none
	adminListen string
	publicURL   string
	bootstrap   bool
	join        string
	region      string
	tlsDir      string
	kekFile     string
	voter       bool
	snapThresh  uint64
	trailing    uint64
	snapEvery   time.Duration
	segSize     int
	adminToken  string
	smtp        string // HOST:PORT; "" writes mail to the log and DIR/outbox
	smtpTLS     string
	smtpFrom    string
	// fetchPrivate lets extensions' http fetches reach loopback and private addresses (postern dev: the
	// tenant's services run on the same machine).
	fetchPrivate bool
}

// runningNode is a started node and its listeners.
type runningNode struct {
	node      *cluster.Node
	store     *directory.Store
	kek       *directory.KEK
	admin     *admin.Server
	edge      *edge.Server
	wasm      *wasm.Runtime
	audit     *cluster.AuditShipper // extensions' log lines to their tenants' audits; nil without an edge
	adminAddr string
	edgeAddr  string
	log       *slog.Logger
}

func newLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// loadKEK finds the key-encryption key: --kek-file, else POSTERN_KEK (base64).
func loadKEK(file string) (*directory.KEK, error) {
	if file != "" {
		return directory.LoadKEKFile(file)
	}
	if v := os.Getenv("POSTERN_KEK"); v != "" {
		k, err := directory.ParseKEK(v)
		if err != nil {
			return nil, fmt.Errorf("POSTERN_KEK: %w", err)
		}
		return k, nil
	}
	return nil, usagef("no key-encryption key: give --kek-file FILE or set POSTERN_KEK (32 random bytes, base64); every node of a cluster needs the same one")
}

func startNode(o nodeOptions, log *slog.Logger) (*runningNode, error) {
	if o.adminToken == "" {
		return nil, usagef("no admin token: set POSTERN_ADMIN_TOKEN")
	}
	kek, err := loadKEK(o.kekFile)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	store, err := directory.Open(filepath.Join(o.dataDir, "directory"), directory.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	cfg := cluster.Config{
		ID: o.nodeID, RaftAddr: o.raftAddr, DataDir: o.dataDir, Voter: o.voter, Bootstrap: o.bootstrap,
		Region: o.region, Store: store, Logger: log, SnapshotThreshold: o.snapThresh, TrailingLogs: o.trailing,
		SnapshotInterval: o.snapEvery, LogSegmentSize: o.segSize, QuietRaft: o.raftAddr == "",
	}
	if o.tlsDir != "" {
		cfg.ServerTLS, cfg.ClientTLS, err = cluster.LoadTLS(o.tlsDir)
		if err != nil {
			store.Close()
			return nil, err
		}
	} else if o.raftAddr != "" {
		log.Warn("no --tls-dir: traffic between nodes is neither encrypted nor authenticated; use this only on a trusted loopback")
	}
	adminLn, err := net.Listen("tcp", o.adminListen)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("listening for the admin API on %s: %w", o.adminListen, err)
	}
	var edgeLn net.Listener
	if o.listen != "" {
		if edgeLn, err = net.Listen("tcp", o.listen); err != nil {
			adminLn.Close()
			store.Close()
			return nil, fmt.Errorf("listening for the edge on %s: %w", o.listen, err)
		}
	}
	cfg.AdminURL = "http://" + adminLn.Addr().String()
	node, err := cluster.Start(cfg)
	if err != nil {
		adminLn.Close()
		if edgeLn != nil {
			edgeLn.Close()
		}
		store.Close()
		return nil, err
	}
	rn := &runningNode{node: node, store: store, kek: kek, log: log, adminAddr: adminLn.Addr().String()}
	publicURL := o.publicURL
	if publicURL == "" && edgeLn != nil {
		publicURL = "http://" + edgeLn.Addr().String()
	}
	rn.admin = admin.New(admin.Config{Cluster: node, Token: o.adminToken, KEK: kek, PublicURL: publicURL, Logger: log})
	go rn.admin.Serve(adminLn)
	if edgeLn != nil {
		rn.edgeAddr = edgeLn.Addr().String()
		sender, err := newMailer(o, log)
		if err != nil {
			node.Close()
			adminLn.Close()
			edgeLn.Close()
			store.Close()
			return nil, err
		}
		keys := tokens.NewKeyRing(store, kek)
		// What extensions log goes to their tenant's audit too, through raft, off the call's path.
		rn.audit = cluster.NewAuditShipper(cluster.AuditShipperConfig{Node: o.nodeID, Proposer: node, Log: log})
		// Tenant extensions: Wasm modules in this node's runtime (compiled once, cached on disk), web
		// services over HTTP with a token of the tenant's key.
		rn.wasm, err = wasm.New(wasm.Config{CacheDir: filepath.Join(o.dataDir, "wasm-cache"), Log: log, Module: store.Blob,
			Audit:  func(l wasm.CallLog) { rn.audit.Ship(l.AuditLines()) },
			Secret: kek.ExtensionSecret, Fetch: wasm.FetchPolicy{AllowPrivateAddresses: o.fetchPrivate}})
		if err != nil {
			rn.audit.Close()
			node.Close()
			adminLn.Close()
			edgeLn.Close()
			store.Close()
			return nil, err
		}
		runner := &flows.Runner{Wasm: rn.wasm, Log: log, HTTP: &flows.HTTPInvoker{
			Sign: func(tenant string, claims map[string]any) (string, error) {
				return keys.SignJWT(tenant, "", tokens.TypeIDToken, tokens.Claims(claims))
			},
			Issuer: func(tenant string) string { return strings.TrimRight(publicURL, "/") + "/" + tenant },
		}}
		provider := oidc.New(oidc.Config{Store: store, Write: node, Keys: keys, KEK: kek, Extensions: runner,
			PublicURL: publicURL, Log: log, Mail: func(ctx context.Context, tenant, to, subject, text string) error {
				return sender.Send(ctx, mail.Message{Tenant: tenant, To: to, Subject: subject, Text: text})
			}})
		// The proxy comes first: a routed host never reaches the provider's endpoints.
		px := proxy.New(proxy.Config{Store: store, Keys: keys, KEK: kek, Write: node, Exchange: provider.ExchangeCode,
			PublicURL: publicURL, Log: log, Extensions: runner})
		node.Listen(func(a cluster.Applied) {
			if a.Restored {
				provider.Invalidate("", "")
				px.Invalidate("", "", "")
			}
			for _, c := range a.Changes {
				provider.Invalidate(c.Tenant, c.Kind)
				px.Invalidate(c.Tenant, c.Kind, c.ID)
				if c.Kind == "extension" {
					go prepareExtension(rn.wasm, store, log, c.Tenant, c.ID)
				}
			}
		})
		rn.edge = edge.NewServer(node, log, px, provider)
		go rn.edge.Serve(edgeLn)
	}
	if o.join != "" {
		req := cluster.JoinRequest{ID: o.nodeID, RaftAddr: o.raftAddr, Voter: o.voter, Region: o.region, AdminURL: cfg.AdminURL}
		if err := joinCluster(o.join, o.adminToken, req, node, log); err != nil {
			rn.stop()
			return nil, err
		}
	}
	return rn, nil
}

// prepareExtension compiles an uploaded or replaced Wasm extension and starts an instance ahead of its
// first call (compiling a Go guest takes seconds), or forgets a deleted one. It runs off the apply path.
func prepareExtension(rt *wasm.Runtime, store *directory.Store, log *slog.Logger, tenant, id string) {
	exts, err := store.Extensions(tenant)
	if err != nil {
		return
	}
	for _, e := range exts {
		if e.ID != id {
			continue
		}
		if e.WasmSHA256 == "" {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := rt.Prepare(ctx, e); err != nil {
			log.Warn("preparing an extension", "tenant", tenant, "extension", id, "error", err)
		}
		return
	}
	rt.Drop(tenant, id)
}

// newMailer is the SMTP sender of --smtp, or the outbox in the data directory.
func newMailer(o nodeOptions, log *slog.Logger) (mail.Sender, error) {
	if o.smtp == "" {
		return mail.NewOutbox(o.dataDir, log)
	}
	mode := o.smtpTLS
	if mode == "" {
		mode = mail.TLSStartTLS
		if host, _, _ := net.SplitHostPort(o.smtp); host == "localhost" || net.ParseIP(host).IsLoopback() {
			mode = mail.TLSNone
		}
	}
	return mail.NewSMTP(mail.SMTPConfig{Addr: o.smtp, TLS: mode, From: o.smtpFrom,
		Username: os.Getenv("POSTERN_SMTP_USERNAME"), Password: os.Getenv("POSTERN_SMTP_PASSWORD")})
}

// joinCluster asks a member (by its admin URL) to add this node, until this node sees itself in the
// configuration. Asking again is harmless, so a restarted node may do it too.
func joinCluster(url, token string, req cluster.JoinRequest, node *cluster.Node, log *slog.Logger) error {
	body, _ := json.Marshal(req)
	deadline := time.Now().Add(2 * time.Minute)
	var last error
	for time.Now().Before(deadline) {
		if node.Member() {
			return nil
		}
		hreq, _ := http.NewRequest("POST", strings.TrimRight(url, "/")+"/admin/v1/cluster/join", bytes.NewReader(body))
		hreq.Header.Set("Authorization", "Bearer "+token)
		hreq.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(hreq)
		if err == nil {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return errors.New("joining: the cluster refused the admin token (POSTERN_ADMIN_TOKEN must match)")
			}
			if resp.StatusCode/100 != 2 {
				err = fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
			}
		}
		if err != nil {
			last = err
			log.Warn("joining the cluster", "via", url, "error", err)
		}
		waitForMembership(node, time.Second)
	}
	return fmt.Errorf("joining the cluster via %s: gave up after 2 minutes: %v", url, last)
}

func waitForMembership(node *cluster.Node, d time.Duration) {
	end := time.Now().Add(d)
	for time.Now().Before(end) && !node.Member() {
		time.Sleep(50 * time.Millisecond)
	}
}

func (rn *runningNode) stop() {
	if rn.edge != nil {
		rn.edge.Shutdown()
	}
	if rn.wasm != nil {
		rn.wasm.Close(context.Background())
	}
	// After the runtime, whose calls may still log, and before the node, through which it ships.
	if rn.audit != nil {
		rn.audit.Close()
	}
	rn.admin.Shutdown()
	rn.node.Close()
	rn.store.Close()
}

// waitForSignal blocks until SIGINT or SIGTERM.
func waitForSignal() os.Signal {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	return <-ch
}

// waitForLeader waits until the node knows a leader, for start-up steps that write.
func waitForLeader(node *cluster.Node, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for ctx.Err() == nil {
		if _, addr := node.Leader(); addr != "" {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("no leader was elected in time")
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}
