package admin

import (
	"strconv"

	"github.com/valyala/fasthttp"

	"postern.dev/postern/directory"
)

type tenantBody struct {
	ID            string              `json:"id"`
	DisplayName   *string             `json:"display_name,omitempty"`
	DefaultLocale *string             `json:"default_locale,omitempty"`
	Settings      *directory.Settings `json:"settings,omitempty"`
}

// tenantView is a tenant as the API shows it, with its issuer.
type tenantView struct {
	directory.Tenant
	Issuer string `json:"issuer"`
}

func (s *Server) issuer(tenant string) string { return s.cfg.PublicURL + "/" + tenant }

func (s *Server) listTenants(c *call) error {
	if err := s.consistent(c); err != nil {
		return err
	}
	ts, err := s.store.Tenants()
	if err != nil {
		return err
	}
	out := make([]tenantView, len(ts))
	for i, t := range ts {
		out[i] = tenantView{t, s.issuer(t.ID)}
	}
	return writeJSON(c.ctx, fasthttp.StatusOK, out)
}

func (s *Server) getTenant(c *call) error {
	if err := s.consistent(c); err != nil {
		return err
	}
	t, err := s.store.Tenant(c.param("tenant"))
	if err != nil {
		return notFoundAs(err, "tenant", c.param("tenant"))
	}
	return writeJSON(c.ctx, fasthttp.StatusOK, tenantView{t, s.issuer(t.ID)})
}

// createTenant creates the tenant together with its first signing key (ES256, active), in one command.
func (s *Server) createTenant(c *call) error {
	var b tenantBody
	if err := decodeBody(c, &b); err != nil {
		return err
	}
	if err := directory.ValidTenantID(b.ID); err != nil {
		return err
	}
	t := directory.Tenant{ID: b.ID}
	setIf(&t.DisplayName, b.DisplayName)
	setIf(&t.DefaultLocale, b.DefaultLocale)
	setIf(&t.Settings, b.Settings)
	key, err := directory.NewSigningKey(s.cfg.KEK, t.ID, "ES256", directory.KeyActive)
	if err != nil {
		return err
	}
	res, err := s.propose(c, directory.MakeOp(directory.OpTenantCreate, t), directory.MakeOp(directory.OpKeyPut, key))
	if err != nil {
		return err
	}
	created, err := output[directory.Tenant](res, 0)
	if err != nil {
		return err
	}
	return writeJSON(c.ctx, fasthttp.StatusCreated, tenantView{created, s.issuer(created.ID)})
}

func (s *Server) updateTenant(c *call) error {
	var b tenantBody
	if err := decodeBody(c, &b); err != nil {
		return err
	}
	if b.ID != "" && b.ID != c.param("tenant") {
		return badRequest("a tenant's id cannot change")
	}
	p := directory.TenantPatch{ID: c.param("tenant"), DisplayName: b.DisplayName, DefaultLocale: b.DefaultLocale, Settings: b.Settings}
	res, err := s.propose(c, directory.MakeOp(directory.OpTenantUpdate, p))
	if err != nil {
		return err
	}
	t, err := output[directory.Tenant](res, 0)
	if err != nil {
		return err
	}
	return writeJSON(c.ctx, fasthttp.StatusOK, tenantView{t, s.issuer(t.ID)})
}

func (s *Server) deleteTenant(c *call) error {
	if _, err := s.propose(c, directory.MakeOp(directory.OpTenantDelete, directory.Ref{ID: c.param("tenant")})); err != nil {
		return err
	}
	c.ctx.SetStatusCode(fasthttp.StatusNoContent)
	return nil
}

func (s *Server) listAudit(c *call) error {
	if err := s.consistent(c); err != nil {
		return err
	}
	if _, err := s.store.Tenant(c.param("tenant")); err != nil {
		return notFoundAs(err, "tenant", c.param("tenant"))
	}
	limit, err := queryInt(c, "limit", 1000)
	if err != nil {
		return err
	}
	evs, err := s.store.AuditEvents(c.param("tenant"), limit)
	if err != nil {
		return err
	}
	return writeJSON(c.ctx, fasthttp.StatusOK, nonNil(evs))
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// notFoundAs turns a directory not-found into a message naming what was looked for.
func notFoundAs(err error, kind, id string) error {
	if e, ok := directory.AsError(err); ok && e.Code == directory.CodeNotFound {
		return apiError(fasthttp.StatusNotFound, directory.CodeNotFound, kind+" "+strconv.Quote(id)+" does not exist")
	}
	return err
}

func queryInt(c *call, name string, def int) (int, error) {
	v := c.ctx.QueryArgs().Peek(name)
	if len(v) == 0 {
		return def, nil
	}
	n, err := strconv.Atoi(string(v))
	if err != nil || n < 0 {
		return 0, badRequest(name + " must be a non-negative integer")
	}
	return n, nil
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}
