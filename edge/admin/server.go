package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"postern.dev/postern/cluster"
	"postern.dev/postern/directory"
	"postern.dev/postern/edge"
)

// Cluster is what the admin API needs of the node it runs on. *cluster.Node implements it.
type Cluster interface {
	Propose(ctx context.Context, cmd directory.Command) (*directory.Result, error)
	WaitApplied(ctx context.Context, index uint64) error
	Barrier(ctx context.Context) error
	Join(ctx context.Context, req cluster.JoinRequest) error
	Remove(ctx context.Context, id string) error
	Status(ctx context.Context) (cluster.Status, error)
	Ready() error
	RestoreBackup(r io.Reader) error
	Store() *directory.Store
}

var _ Cluster = (*cluster.Node)(nil) // Interface guard.

// Config is the admin API's wiring.
type Config struct {
	Cluster Cluster
	// Token is the admin bearer token; requests must present it.
	Token string
	// KEK seals the secrets the API creates (signing keys, identity-provider secrets).
	KEK *directory.KEK
	// PublicURL is the edge's public base URL, for the issuers the API reports ("" when this node has no
	// edge: the issuer is then reported relative).
	PublicURL string
	Logger    *slog.Logger
	// Registry receives the API's metrics; nil makes a private one.
	Registry *prometheus.Registry
}

// Server is the admin listener.
type Server struct {
	cfg      Config
	store    *directory.Store
	routes   []route
	srv      *fasthttp.Server
	metrics  fasthttp.RequestHandler
	requests *prometheus.CounterVec
	token    [32]byte
}

// New builds the admin API.
func New(cfg Config) *Server {
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	s := &Server{cfg: cfg, store: cfg.Cluster.Store(), token: sha256.Sum256([]byte(cfg.Token))}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "postern_admin_requests_total", Help: "Admin API requests by route and status.",
	}, []string{"route", "code"})
	cfg.Registry.MustRegister(s.requests,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "postern_directory_applied_index", Help: "Raft index of the last command applied to this replica.",
		}, func() float64 { return float64(s.store.AppliedIndex()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "postern_ready", Help: "1 when this node has a leader and its replica has caught up, else 0.",
		}, func() float64 {
			if cfg.Cluster.Ready() != nil {
				return 0
			}
			return 1
		}),
	)
	s.metrics = fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}))
	s.routes = s.table()
	s.srv = &fasthttp.Server{
		Handler:               s.handle,
		Name:                  "postern-admin",
		NoDefaultServerHeader: true,
		MaxRequestBodySize:    256 << 20,
		StreamRequestBody:     true,
		ReadTimeout:           5 * time.Minute,
	}
	return s
}

// Serve answers requests on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.srv.Serve(ln) }

// Shutdown stops accepting and waits for requests in flight.
func (s *Server) Shutdown() error { return s.srv.Shutdown() }

// Handler is the API as a fasthttp handler (for tests and in-process use).
func (s *Server) Handler() fasthttp.RequestHandler { return s.handle }

// table is every route of the API. The OpenAPI test walks it.
func (s *Server) table() []route {
	return []route{
		{"GET", "/healthz", true, func(c *call) error { edge.Healthz(c.ctx); return nil }},
		{"GET", "/readyz", true, func(c *call) error { edge.Readyz(c.ctx, s.cfg.Cluster); return nil }},
		{"GET", "/metrics", true, func(c *call) error { s.metrics(c.ctx); return nil }},
		{"GET", "/admin/v1/openapi.json", true, s.openAPI},

		{"GET", "/admin/v1/tenants", false, s.listTenants},
		{"POST", "/admin/v1/tenants", false, s.createTenant},
		{"GET", "/admin/v1/tenants/{tenant}", false, s.getTenant},
		{"PATCH", "/admin/v1/tenants/{tenant}", false, s.updateTenant},
		{"DELETE", "/admin/v1/tenants/{tenant}", false, s.deleteTenant},
		{"PUT", "/admin/v1/tenants/{tenant}/manifest", false, s.applyManifest},
		{"GET", "/admin/v1/tenants/{tenant}/audit", false, s.listAudit},
		{"GET", "/admin/v1/tenants/{tenant}/keys", false, s.listKeys},
		{"POST", "/admin/v1/tenants/{tenant}/keys/rotate", false, s.rotateKeys},

		{"GET", "/admin/v1/tenants/{tenant}/apps", false, s.listApps},
		{"POST", "/admin/v1/tenants/{tenant}/apps", false, s.createApp},
		{"GET", "/admin/v1/tenants/{tenant}/apps/{app}", false, s.getApp},
		{"PATCH", "/admin/v1/tenants/{tenant}/apps/{app}", false, s.updateApp},
		{"DELETE", "/admin/v1/tenants/{tenant}/apps/{app}", false, s.deleteApp},

		{"GET", "/admin/v1/tenants/{tenant}/users", false, s.listUsers},
		{"POST", "/admin/v1/tenants/{tenant}/users", false, s.createUser},
		{"GET", "/admin/v1/tenants/{tenant}/users/{user}", false, s.getUser},
		{"PATCH", "/admin/v1/tenants/{tenant}/users/{user}", false, s.updateUser},
		{"DELETE", "/admin/v1/tenants/{tenant}/users/{user}", false, s.deleteUser},

		{"GET", "/admin/v1/tenants/{tenant}/groups", false, s.listGroups},
		{"POST", "/admin/v1/tenants/{tenant}/groups", false, s.createGroup},
		{"GET", "/admin/v1/tenants/{tenant}/groups/{group}", false, s.getGroup},
		{"PATCH", "/admin/v1/tenants/{tenant}/groups/{group}", false, s.updateGroup},
		{"DELETE", "/admin/v1/tenants/{tenant}/groups/{group}", false, s.deleteGroup},
		{"GET", "/admin/v1/tenants/{tenant}/groups/{group}/members", false, s.listMembers},
		{"PUT", "/admin/v1/tenants/{tenant}/groups/{group}/members/{user}", false, s.addMember},
		{"DELETE", "/admin/v1/tenants/{tenant}/groups/{group}/members/{user}", false, s.removeMember},

		{"GET", "/admin/v1/tenants/{tenant}/extensions", false, s.listExtensions},
		{"GET", "/admin/v1/tenants/{tenant}/extensions/{extension}", false, s.getExtension},
		{"PUT", "/admin/v1/tenants/{tenant}/extensions/{extension}", false, s.putExtension},
		{"DELETE", "/admin/v1/tenants/{tenant}/extensions/{extension}", false, s.deleteExtension},

		{"GET", "/admin/v1/cluster", false, s.clusterStatus},
		{"POST", "/admin/v1/cluster/join", false, s.clusterJoin},
		{"DELETE", "/admin/v1/cluster/nodes/{node}", false, s.clusterRemove},
		{"GET", "/admin/v1/backup", false, s.backup},
		{"POST", "/admin/v1/restore", false, s.restore},
		{"GET", "/admin/v1/debug/pprof/{profile}", false, s.profile},
	}
}

// call is one request being handled.
type call struct {
	ctx    *fasthttp.RequestCtx
	params map[string]string
}

func (c *call) param(name string) string { return c.params[name] }

// context bounds the work of one request.
func (c *call) context() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 15*time.Second)
}

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	path := string(ctx.Path())
	method := string(ctx.Method())
	params := map[string]string{}
	var found *route
	var allowed []string // the methods of the routes whose pattern fits path
	for i := range s.routes {
		r := &s.routes[i]
		clear(params)
		if !match(r.pattern, path, params) {
			continue
		}
		allowed = append(allowed, r.method)
		if r.method == method {
			found = r
			break
		}
	}
	label := "unknown"
	defer func() { s.requests.WithLabelValues(label, strconv.Itoa(ctx.Response.StatusCode())).Inc() }()
	if found == nil {
		if len(allowed) > 0 {
			// RFC 9110 section 15.5.6: a 405 lists the methods the resource has.
			slices.Sort(allowed)
			ctx.Response.Header.Set("Allow", strings.Join(allowed, ", "))
			writeError(ctx, s.cfg.Logger, apiError(fasthttp.StatusMethodNotAllowed, "method_not_allowed", "method "+method+" is not allowed on "+path))
			return
		}
		writeError(ctx, s.cfg.Logger, apiError(fasthttp.StatusNotFound, "not_found", "no such endpoint: "+path))
		return
	}
	label = found.method + " " + found.pattern
	// Re-match to fill params of the route that won.
	clear(params)
	match(found.pattern, path, params)
	if !found.public && !s.authorized(ctx) {
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="postern-admin"`)
		writeError(ctx, s.cfg.Logger, apiError(fasthttp.StatusUnauthorized, "unauthorized", "a valid admin bearer token is required"))
		return
	}
	if err := found.handle(&call{ctx: ctx, params: params}); err != nil {
		writeError(ctx, s.cfg.Logger, err)
	}
}

// authorized compares the bearer token in constant time (hashes first, so the length leaks nothing).
func (s *Server) authorized(ctx *fasthttp.RequestCtx) bool {
	h := ctx.Request.Header.Peek("Authorization")
	const prefix = "Bearer "
	if len(h) <= len(prefix) || !bytes.EqualFold(h[:len(prefix)], []byte(prefix)) || s.cfg.Token == "" {
		return false
	}
	got := sha256.Sum256(bytes.TrimSpace(h[len(prefix):]))
	return subtle.ConstantTimeCompare(got[:], s.token[:]) == 1
}

// Errors.

// httpError is an error with its status and a message safe to show.
type httpError struct {
	status  int
	code    string
	message string
}

func (e *httpError) Error() string { return e.message }

func apiError(status int, code, message string) error {
	return &httpError{status: status, code: code, message: message}
}

func badRequest(message string) error { return apiError(fasthttp.StatusBadRequest, "invalid", message) }

// writeError is the one place errors become responses. Refusals of the state machine and cluster
// conditions have safe messages; anything else is logged with a correlation id, and only the id is shown.
func writeError(ctx *fasthttp.RequestCtx, log *slog.Logger, err error) {
	var he *httpError
	status, code, msg := fasthttp.StatusInternalServerError, "internal", ""
	if errors.As(err, &he) {
		status, code, msg = he.status, he.code, he.message
	} else if de, ok := directory.AsError(err); ok {
		code, msg = de.Code, de.Message
		switch de.Code {
		case directory.CodeConflict:
			status = fasthttp.StatusConflict
		case directory.CodeNotFound:
			status = fasthttp.StatusNotFound
		default:
			status = fasthttp.StatusBadRequest
		}
	} else if cluster.IsRetryable(err) {
		status, code, msg = fasthttp.StatusServiceUnavailable, "unavailable", err.Error()+" (retryable)"
		ctx.Response.Header.Set("Retry-After", "1")
	} else {
		id := directory.NewID()[:12]
		msg = "internal error; correlation id " + id
		if log != nil {
			log.Error("admin request failed", "correlation_id", id, "method", string(ctx.Method()),
				"path", string(ctx.Path()), "error", err)
		}
	}
	ctx.Response.Header.Set("Cache-Control", "no-store")
	writeJSON(ctx, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, '\n'))
	return nil
}

// decodeBody reads a JSON body strictly: unknown fields are an error naming the field.
func decodeBody(c *call, v any) error {
	body, err := requestBody(c)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("a JSON body is required")
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return badRequest("malformed JSON body: " + err.Error())
	}
	if d.More() {
		return badRequest("malformed JSON body: more than one value")
	}
	return nil
}

// requestBody reads the whole request body. The server streams request bodies (a restore may be large),
// and fasthttp logs a warning each time PostBody drains such a stream, so the stream is read here.
func requestBody(c *call) ([]byte, error) {
	r := c.ctx.RequestBodyStream()
	if r == nil {
		return c.ctx.PostBody(), nil
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, badRequest("reading the request body: " + err.Error())
	}
	return b, nil
}

// Consistency of reads: local by default; ?consistency=linearizable waits for a barrier through the
// leader; an X-Postern-Min-Index header (the index a write returned) waits for this replica to reach it.
func (s *Server) consistent(c *call) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	switch string(c.ctx.QueryArgs().Peek("consistency")) {
	case "", "local":
	case "linearizable":
		if err := s.cfg.Cluster.Barrier(ctx); err != nil {
			return err
		}
	default:
		return badRequest("consistency must be local or linearizable")
	}
	if h := c.ctx.Request.Header.Peek("X-Postern-Min-Index"); len(h) > 0 {
		idx, err := strconv.ParseUint(string(h), 10, 64)
		if err != nil {
			return badRequest("X-Postern-Min-Index must be a raft index")
		}
		if err := s.cfg.Cluster.WaitApplied(ctx, idx); err != nil {
			return err
		}
	}
	return nil
}

// propose runs a command and reports its index to the client for read-your-writes.
func (s *Server) propose(c *call, ops ...directory.Op) (*directory.Result, error) {
	ctx, cancel := c.context()
	defer cancel()
	res, err := s.cfg.Cluster.Propose(ctx, directory.NewCommand(time.Now(), "admin", ops...))
	if err != nil {
		return nil, err
	}
	c.ctx.Response.Header.Set("X-Postern-Index", strconv.FormatUint(res.Index, 10))
	return res, nil
}

// output decodes the i-th op's output of a result.
func output[T any](res *directory.Result, i int) (T, error) {
	var v T
	if i >= len(res.Outputs) {
		return v, errors.New("command result has no output")
	}
	return v, json.Unmarshal(res.Outputs[i], &v)
}
