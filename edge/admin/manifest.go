package admin

import (
	"bytes"
	"errors"
	"strings"

	"github.com/valyala/fasthttp"

	"postern.dev/postern/directory"
	"postern.dev/postern/directory/manifest"
)

// ApplyReport is the answer to a manifest apply (and what `postern apply` prints).
type ApplyReport struct {
	Tenant  string                 `json:"tenant"`
	Issuer  string                 `json:"issuer"`
	Changed bool                   `json:"changed"`
	Changes []string               `json:"changes"`
	Apps    []directory.PlannedApp `json:"apps"`
	Index   uint64                 `json:"index,omitempty"`
}

// manifestErrorBody carries every problem of a refused manifest.
type manifestErrorBody struct {
	Error struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		Details []manifestProblem `json:"details"`
	} `json:"error"`
}

// manifestProblem is one manifest.Error as the API shows it (manifest.Error has no JSON names of its own).
type manifestProblem struct {
	Field   string `json:"field,omitempty"`
	Line    int    `json:"line,omitempty"`
	Message string `json:"message"`
}

// applyManifest makes the tenant match a whole manifest, atomically (one raft command) and idempotently
// (an identical second apply changes nothing and says so). The body is the manifest as JSON (what
// `postern apply` sends, files already inlined) or as YAML.
func (s *Server) applyManifest(c *call) error {
	body, err := requestBody(c)
	if err != nil {
		return err
	}
	var m *manifest.Manifest
	ct := string(c.ctx.Request.Header.ContentType())
	if strings.Contains(ct, "yaml") || (!strings.Contains(ct, "json") && !bytes.HasPrefix(bytes.TrimSpace(body), []byte("{"))) {
		// The server's environment is not the operator's: ${NAME} is not substituted here.
		m, err = manifest.ParseYAML(body, manifest.Options{Getenv: func(string) (string, bool) { return "", false }})
	} else {
		m, err = manifest.ParseJSON(body)
	}
	var merrs manifest.Errors
	if errors.As(err, &merrs) {
		var b manifestErrorBody
		b.Error.Code, b.Error.Message = "invalid_manifest", merrs.Error()
		for _, e := range merrs {
			b.Error.Details = append(b.Error.Details, manifestProblem{Field: e.Field, Line: e.Line, Message: e.Message})
		}
		return writeJSON(c.ctx, fasthttp.StatusBadRequest, b)
	}
	if err != nil {
		return badRequest(err.Error())
	}
	if m.Tenant != c.param("tenant") {
		return badRequest("the manifest is for tenant " + m.Tenant + " but was sent to " + c.param("tenant"))
	}
	// Plan against everything committed so far, so an apply right after another sees it.
	ctx, cancel := c.context()
	defer cancel()
	if err := s.cfg.Cluster.Barrier(ctx); err != nil {
		return err
	}
	plan, err := directory.PlanManifest(s.store, m, s.cfg.KEK)
	if err != nil {
		return err
	}
	report := ApplyReport{Tenant: m.Tenant, Issuer: s.issuer(m.Tenant), Changes: nonNil(plan.Changes), Apps: nonNil(plan.Apps)}
	if len(plan.Ops) == 0 {
		return writeJSON(c.ctx, fasthttp.StatusOK, report)
	}
	res, err := s.propose(c, plan.Ops...)
	if err != nil {
		return err
	}
	report.Changed, report.Index = true, res.Index
	return writeJSON(c.ctx, fasthttp.StatusOK, report)
}
