package directory

import (
	"encoding/json"
	"time"
)

// OAuth records. Authorization codes themselves are sealed, self-contained values that no replica
// stores; what the directory decides is that each is redeemed once, on whichever edge wins the race, and
// remembers what that redemption issued so a second attempt can revoke it (RFC 6749 section 4.1.2).

// Op kinds of the OAuth records.
const (
	OpCodeRedeem    = "code.redeem"
	OpRefreshRotate = "refresh.rotate"
	OpTokenRevoke   = "token.revoke"
)

// CodeRedemption records that an authorization code was used, and what its use issued.
type CodeRedemption struct {
	Tenant    string    `json:"tenant"`
	CodeID    string    `json:"code_id"`
	ClientID  string    `json:"client_id"`
	SessionID string    `json:"session_id,omitempty"`
	FamilyID  string    `json:"family_id,omitempty"`
	AccessJTI string    `json:"access_jti,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
	At        time.Time `json:"at"`
}

// RefreshRotate presents a refresh token of a family (by hash) and installs its successor. When the
// presented token is not the family's current one, the family is revoked instead: a rotated token came
// back, so it was stolen or replayed (OAuth 2.0 Security BCP, section 4.14).
type RefreshRotate struct {
	Tenant    string    `json:"tenant"`
	ID        string    `json:"id"`
	Presented string    `json:"presented"`
	Next      string    `json:"next"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// RotateOutcome is the output of a refresh.rotate op.
type RotateOutcome struct {
	Rotated bool          `json:"rotated"`
	Reused  bool          `json:"reused"`
	Family  RefreshFamily `json:"family"`
}

// RevokedToken marks a JWT (by jti) as revoked until it would have expired anyway.
type RevokedToken struct {
	Tenant    string    `json:"tenant"`
	JTI       string    `json:"jti"`
	ExpiresAt time.Time `json:"expires_at"`
}

func keyCode(t, id string) []byte    { return []byte("t/" + t + "/code/" + id) }
func keyRevoked(t, id string) []byte { return []byte("t/" + t + "/revoked/" + id) }

func applyCodeRedeem(a *applier, body json.RawMessage) (any, error) {
	c, err := decode[CodeRedemption](body)
	if err != nil {
		return nil, err
	}
	if err := a.requireTenant(c.Tenant); err != nil {
		return nil, err
	}
	if c.CodeID == "" || c.ClientID == "" {
		return nil, invalid("a code redemption needs a code id and a client")
	}
	if !a.now().Before(c.ExpiresAt) {
		return nil, invalid("authorization code expired")
	}
	var first CodeRedemption
	found, err := a.get(keyCode(c.Tenant, c.CodeID), &first)
	if err != nil {
		return nil, err
	}
	if found {
		return nil, conflict("authorization code already used")
	}
	c.At = a.now()
	if err := a.put(keyCode(c.Tenant, c.CodeID), c); err != nil {
		return nil, err
	}
	a.changed(c.Tenant, "code", c.CodeID)
	return c, nil
}

func applyRefreshRotate(a *applier, body json.RawMessage) (any, error) {
	r, err := decode[RefreshRotate](body)
	if err != nil {
		return nil, err
	}
	var f RefreshFamily
	ok, err := a.get(keyRefresh(r.Tenant, r.ID), &f)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("refresh token family does not exist")
	}
	if !f.RevokedAt.IsZero() {
		return nil, invalid("refresh token revoked")
	}
	if !f.ExpiresAt.IsZero() && !a.now().Before(f.ExpiresAt) {
		return nil, invalid("refresh token expired")
	}
	out := RotateOutcome{}
	if r.Presented != f.Current {
		f.RevokedAt = a.now()
		out.Reused = true
	} else {
		f.Current = r.Next
		f.Generation++
		if !r.ExpiresAt.IsZero() {
			f.ExpiresAt = r.ExpiresAt
		}
		out.Rotated = true
	}
	if err := a.put(keyRefresh(r.Tenant, r.ID), f); err != nil {
		return nil, err
	}
	a.changed(r.Tenant, "refresh", r.ID)
	out.Family = f
	return out, nil
}

func applyTokenRevoke(a *applier, body json.RawMessage) (any, error) {
	r, err := decode[RevokedToken](body)
	if err != nil {
		return nil, err
	}
	if err := a.requireTenant(r.Tenant); err != nil {
		return nil, err
	}
	if r.JTI == "" {
		return nil, invalid("a revoked token needs a jti")
	}
	if err := a.put(keyRevoked(r.Tenant, r.JTI), r); err != nil {
		return nil, err
	}
	a.changed(r.Tenant, "revoked", r.JTI)
	return nil, nil
}

// CodeRedemption reads the record of a redeemed authorization code.
func (s *Store) CodeRedemption(tenant, codeID string) (CodeRedemption, error) {
	return getJSON[CodeRedemption](s, keyCode(tenant, codeID))
}

// TokenRevoked reports whether a JWT of the tenant was revoked by its jti.
func (s *Store) TokenRevoked(tenant, jti string) bool {
	_, err := getJSON[RevokedToken](s, keyRevoked(tenant, jti))
	return err == nil
}
