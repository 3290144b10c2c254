package directory

import (
	"encoding/json"
	"testing"
	"time"
)

func TestSignUpVerification(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		f := newFixture(t, s)
		f.ok(MakeOp(OpTenantCreate, Tenant{ID: "acme"}))
		start := func(id, email string) {
			f.ok(MakeOp(OpSignUpStart, PendingSignUp{ID: id, Tenant: "acme", CodeHash: "right",
				User: User{ID: "u-" + id, Tenant: "acme", Email: email}, ExpiresAt: f.now().Add(10 * time.Minute)}))
		}
		complete := func(id, code string) SignUpOutcome {
			res := f.ok(MakeOp(OpSignUpComplete, SignUpComplete{Tenant: "acme", ID: id, CodeHash: code,
				Session: Session{ID: "s-" + id, Tenant: "acme", ExpiresAt: f.now().Add(time.Hour)}}))
			var o SignUpOutcome
			json.Unmarshal(res.Outputs[0], &o)
			return o
		}
		start("p1", "Ann@example.com")
		for i := 1; i < MaxCodeAttempts; i++ {
			if o := complete("p1", "wrong"); o.Result != SignUpWrongCode {
				t.Fatalf("attempt %d: %+v", i, o)
			}
		}
		if o := complete("p1", "wrong"); o.Result != SignUpTooMany {
			t.Fatalf("last attempt: %+v", o)
		}
		if o := complete("p1", "right"); o.Result != SignUpNoSuchStart {
			t.Fatalf("after too many attempts the right code must not work: %+v", o)
		}
		start("p2", "Ann@example.com")
		if o := complete("p2", "right"); o.Result != SignUpDone || !o.User.EmailVerified {
			t.Fatalf("right code: %+v", o)
		}
		if u, err := s.UserByEmail("acme", "ann@example.com"); err != nil || !u.EmailVerified {
			t.Fatalf("user after sign-up: %+v %v", u, err)
		}
		if sess, err := s.Session("acme", "s-p2"); err != nil || sess.UserID != "u-p2" {
			t.Fatalf("session after sign-up: %+v %v", sess, err)
		}
		start("p3", "ann@EXAMPLE.com")
		if o := complete("p3", "right"); o.Result != SignUpEmailTaken {
			t.Fatalf("second sign-up of one email: %+v", o)
		}
	})
}
