package admin

import (
	"bytes"
	"cmp"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"postern.dev/postern/directory"
	"postern.dev/postern/edge/tokens"
)

// keyView is a signing key as the API shows it: never any private material.
type keyView struct {
	KID       string    `json:"kid"`
	Alg       string    `json:"alg"`
	State     string    `json:"state"`
	CreatedAt time.Time `json:"created_at"`
	NotAfter  time.Time `json:"not_after,omitzero"`
}

// rotateBody is the optional body of a rotation.
type rotateBody struct {
	Alg string `json:"alg,omitempty"`
}

// minRetirement is the least time a retired key stays published and accepted, whatever the apps' token
// lifetimes say: longer than every default lifetime, and a margin for tokens whose lifetime no app
// records (the proxy's assertions).
const minRetirement = time.Hour

// keyStateOrder lists keys as they matter: the signing ones first.
var keyStateOrder = map[string]int{directory.KeyActive: 0, directory.KeyNext: 1, directory.KeyRetired: 2}

func (s *Server) keyViews(tenant string) ([]keyView, error) {
	keys, err := s.store.SigningKeys(tenant)
	if err != nil {
		return nil, err
	}
	out := make([]keyView, len(keys))
	for i, k := range keys {
		out[i] = keyView{KID: k.ID, Alg: k.Alg, State: k.State, CreatedAt: k.CreatedAt, NotAfter: k.NotAfter}
	}
	slices.SortFunc(out, func(a, b keyView) int {
		return cmp.Or(cmp.Compare(a.Alg, b.Alg), cmp.Compare(keyStateOrder[a.State], keyStateOrder[b.State]),
			b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(a.KID, b.KID))
	})
	return out, nil
}

func (s *Server) listKeys(c *call) error {
	if err := s.consistent(c); err != nil {
		return err
	}
	if _, err := s.store.Tenant(c.param("tenant")); err != nil {
		return notFoundAs(err, "tenant", c.param("tenant"))
	}
	keys, err := s.keyViews(c.param("tenant"))
	if err != nil {
		return err
	}
	return writeJSON(c.ctx, fasthttp.StatusOK, keys)
}

// rotateKeys runs one step of a key rotation (see tokens.RotationOps) and answers with the tenant's keys
// after it. A retired key stays published for the longest token lifetime of the tenant's apps (at least
// minRetirement) plus the verifiers' leeway.
func (s *Server) rotateKeys(c *call) error {
	tenant := c.param("tenant")
	body, err := requestBody(c)
	if err != nil {
		return err
	}
	var b rotateBody
	if len(bytes.TrimSpace(body)) > 0 {
		d := json.NewDecoder(bytes.NewReader(body))
		d.DisallowUnknownFields()
		if err := d.Decode(&b); err != nil {
			return badRequest("malformed JSON body: " + err.Error())
		}
		if d.More() {
			return badRequest("malformed JSON body: more than one value")
		}
	}
	if b.Alg == "" {
		b.Alg = tokens.DefaultAlg
	}
	if !slices.Contains(tokens.Algs, b.Alg) {
		return badRequest("alg must be one of " + strings.Join(tokens.Algs, ", "))
	}
	if _, err := s.store.Tenant(tenant); err != nil {
		return notFoundAs(err, "tenant", tenant)
	}
	apps, err := s.store.Apps(tenant)
	if err != nil {
		return err
	}
	lifetime := minRetirement
	for _, a := range apps {
		lifetime = max(lifetime, time.Duration(a.AccessTokenTTL), time.Duration(a.IDTokenTTL))
	}
	ops, changes, err := tokens.RotationOps(s.store, s.cfg.KEK, tenant, b.Alg, time.Now(), lifetime+tokens.Leeway)
	if err != nil {
		return notFoundAs(err, "tenant", tenant)
	}
	res, err := s.propose(c, ops...)
	if err != nil {
		return err
	}
	if s.cfg.Logger != nil {
		s.cfg.Logger.Info("rotated signing keys", "tenant", tenant, "alg", b.Alg, "changes", changes)
	}
	// The command is committed; read it back from this replica once it has applied it.
	ctx, cancel := c.context()
	defer cancel()
	if err := s.cfg.Cluster.WaitApplied(ctx, res.Index); err != nil {
		return err
	}
	keys, err := s.keyViews(tenant)
	if err != nil {
		return err
	}
	return writeJSON(c.ctx, fasthttp.StatusOK, keys)
}
