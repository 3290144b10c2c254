package directory

import (
	"encoding/json"
	"testing"
	"time"
)

func TestCodeRedeemedOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		f := newFixture(t, s)
		f.ok(MakeOp(OpTenantCreate, Tenant{ID: "acme"}), MakeOp(OpTenantCreate, Tenant{ID: "beta"}))
		exp := f.now().Add(10 * time.Minute)
		first := CodeRedemption{Tenant: "acme", CodeID: "c1", ClientID: "app", FamilyID: "fam1", ExpiresAt: exp}
		f.ok(MakeOp(OpCodeRedeem, first))
		f.refused(CodeConflict, MakeOp(OpCodeRedeem, CodeRedemption{Tenant: "acme", CodeID: "c1", ClientID: "app", FamilyID: "fam2", ExpiresAt: exp}))
		got, err := s.CodeRedemption("acme", "c1")
		if err != nil || got.FamilyID != "fam1" {
			t.Fatalf("the first redemption's record: %+v, %v", got, err)
		}
		// Codes are per tenant: the same id in another tenant is another code.
		f.ok(MakeOp(OpCodeRedeem, CodeRedemption{Tenant: "beta", CodeID: "c1", ClientID: "app", ExpiresAt: exp}))
		// An expired code cannot be redeemed, judged by the command's time (deterministic).
		f.refused(CodeInvalid, MakeOp(OpCodeRedeem, CodeRedemption{Tenant: "acme", CodeID: "c2", ClientID: "app", ExpiresAt: f.now().Add(-time.Second)}))
	})
}

func TestRefreshRotationAndReuse(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		f := newFixture(t, s)
		f.ok(MakeOp(OpTenantCreate, Tenant{ID: "acme"}),
			MakeOp(OpRefreshPut, RefreshFamily{ID: "fam", Tenant: "acme", ClientID: "app", Current: "h0", ExpiresAt: f.now().Add(time.Hour)}))
		rotate := func(presented, next string) RotateOutcome {
			res := f.ok(MakeOp(OpRefreshRotate, RefreshRotate{Tenant: "acme", ID: "fam", Presented: presented, Next: next}))
			var o RotateOutcome
			if err := json.Unmarshal(res.Outputs[0], &o); err != nil {
				t.Fatal(err)
			}
			return o
		}
		if o := rotate("h0", "h1"); !o.Rotated || o.Family.Current != "h1" || o.Family.Generation != 1 {
			t.Fatalf("rotation: %+v", o)
		}
		// h0 comes back: reuse of a rotated token revokes the whole family.
		if o := rotate("h0", "h2"); !o.Reused || o.Rotated || o.Family.RevokedAt.IsZero() {
			t.Fatalf("reuse: %+v", o)
		}
		// Even the current token is dead now.
		f.refused(CodeInvalid, MakeOp(OpRefreshRotate, RefreshRotate{Tenant: "acme", ID: "fam", Presented: "h1", Next: "h3"}))
		fam, _ := s.RefreshFamily("acme", "fam")
		if fam.RevokedAt.IsZero() || fam.Current != "h1" {
			t.Errorf("family after reuse: %+v", fam)
		}
	})
}

func TestTokenRevoke(t *testing.T) {
	s := openMemoryStore(t)
	f := newFixture(t, s)
	f.ok(MakeOp(OpTenantCreate, Tenant{ID: "acme"}))
	f.ok(MakeOp(OpTokenRevoke, RevokedToken{Tenant: "acme", JTI: "j1", ExpiresAt: f.now().Add(time.Hour)}))
	if !s.TokenRevoked("acme", "j1") || s.TokenRevoked("acme", "j2") || s.TokenRevoked("beta", "j1") {
		t.Error("revocation lookup is wrong")
	}
}
