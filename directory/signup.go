package directory

import (
	"crypto/subtle"
	"encoding/json"
	"time"
)

// A sign-up with email verification waits as a PendingSignUp until the person types the code that was
// mailed. The code is checked inside Apply, so attempts are counted once, cluster-wide, and the user,
// the session and the end of the pending record are one change.

// Op kinds of sign-up.
const (
	OpSignUpStart    = "signup.start"
	OpSignUpComplete = "signup.complete"
)

// MaxCodeAttempts is how many wrong codes end a pending sign-up.
const MaxCodeAttempts = 5

// PendingSignUp is a sign-up waiting for its email code. CodeHash is a keyed hash of the code (the key is
// derived from the KEK, so a copy of the data does not give the code away).
type PendingSignUp struct {
	ID        string    `json:"id"`
	Tenant    string    `json:"tenant"`
	User      User      `json:"user"`
	CodeHash  string    `json:"code_hash"`
	Attempts  int       `json:"attempts"`
	ExpiresAt time.Time `json:"expires_at"`
}

// SignUpComplete presents a code for a pending sign-up; when it is right, the user and the session are
// created.
type SignUpComplete struct {
	Tenant   string  `json:"tenant"`
	ID       string  `json:"id"`
	CodeHash string  `json:"code_hash"`
	Session  Session `json:"session"`
}

// Outcomes of signup.complete.
const (
	SignUpDone        = "done"
	SignUpWrongCode   = "wrong_code"
	SignUpExpired     = "code_expired"
	SignUpTooMany     = "too_many_attempts"
	SignUpEmailTaken  = "email_taken"
	SignUpNoSuchStart = "journey_expired"
)

// SignUpOutcome is the output of signup.complete.
type SignUpOutcome struct {
	Result string `json:"result"`
	User   User   `json:"user,omitzero"`
}

func keyPending(t, id string) []byte { return []byte("t/" + t + "/pending/" + id) }

func applySignUpStart(a *applier, body json.RawMessage) (any, error) {
	p, err := decode[PendingSignUp](body)
	if err != nil {
		return nil, err
	}
	if err := a.requireTenant(p.Tenant); err != nil {
		return nil, err
	}
	if p.ID == "" || p.CodeHash == "" || p.User.Email == "" {
		return nil, invalid("a pending sign-up needs an id, an email and a code")
	}
	p.Attempts = 0
	if err := a.put(keyPending(p.Tenant, p.ID), p); err != nil {
		return nil, err
	}
	return nil, nil
}

// applySignUpComplete never refuses for a wrong code: the attempt must be counted, and a refused command
// changes nothing. The outcome says what happened.
func applySignUpComplete(a *applier, body json.RawMessage) (any, error) {
	c, err := decode[SignUpComplete](body)
	if err != nil {
		return nil, err
	}
	var p PendingSignUp
	found, err := a.get(keyPending(c.Tenant, c.ID), &p)
	if err != nil {
		return nil, err
	}
	if !found {
		return SignUpOutcome{Result: SignUpNoSuchStart}, nil
	}
	end := func(result string) (any, error) {
		return SignUpOutcome{Result: result}, a.del(keyPending(c.Tenant, c.ID))
	}
	if !a.now().Before(p.ExpiresAt) {
		return end(SignUpExpired)
	}
	if subtle.ConstantTimeCompare([]byte(c.CodeHash), []byte(p.CodeHash)) != 1 {
		p.Attempts++
		if p.Attempts >= MaxCodeAttempts {
			return end(SignUpTooMany)
		}
		return SignUpOutcome{Result: SignUpWrongCode}, a.put(keyPending(c.Tenant, c.ID), p)
	}
	u := p.User
	u.EmailVerified = true
	owner, err := a.getRaw(keyEmailIndex(c.Tenant, NormalizeEmail(u.Email)))
	if err != nil {
		return nil, err
	}
	if owner != nil {
		return end(SignUpEmailTaken)
	}
	ub, _ := json.Marshal(u)
	created, err := applyUserCreate(a, ub)
	if err != nil {
		return nil, err
	}
	if c.Session.ID != "" {
		c.Session.UserID = u.ID
		sb, _ := json.Marshal(c.Session)
		if _, err := applySessionPut(a, sb); err != nil {
			return nil, err
		}
	}
	if err := a.del(keyPending(c.Tenant, c.ID)); err != nil {
		return nil, err
	}
	return SignUpOutcome{Result: SignUpDone, User: created.(User)}, nil
}

// PendingSignUp reads a pending sign-up.
func (s *Store) PendingSignUp(tenant, id string) (PendingSignUp, error) {
	return getJSON[PendingSignUp](s, keyPending(tenant, id))
}
