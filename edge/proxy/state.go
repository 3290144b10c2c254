package proxy

import (
	"errors"
	"time"

	"postern.dev/postern/directory"
)

// The proxy checks, on every request, that the token's jti is not revoked and its session has not
// ended. Reading both from the replica costs two Badger reads (tens of microseconds); instead the proxy
// keeps what it read and drops an entry when the apply notification for that very record arrives
// (kinds "revoked" and "session" carry the record's id). A revocation applied on this node is therefore
// honoured as soon as its notification runs, well within the one second the contract allows, and on
// other nodes as soon as it has replicated.

// sessionState is what the proxy needs of a directory session.
type sessionState struct {
	ended   bool
	expires time.Time // absolute end; zero: none
}

// stateCache holds session states and revocations by tenant and id.
type stateCache struct {
	sessions *hotCache[recordKey, sessionState]
	revoked  *hotCache[recordKey, bool]
}

func (c *stateCache) clear() {
	c.sessions.clear()
	c.revoked.clear()
}

// sessionLive reports whether the tenant's session sid is live at now.
func (p *Proxy) sessionLive(tenant, sid string, now time.Time) (bool, error) {
	k := recordKey{tenant, sid}
	st, ok := p.state.sessions.get(k)
	if !ok {
		gen := p.gen.Load()
		s, err := p.cfg.Store.Session(tenant, sid)
		switch {
		case err == nil:
			st.ended = !s.RevokedAt.IsZero()
			st.expires = s.ExpiresAt
		case errors.Is(err, directory.ErrNotFound):
			// Not (yet) here: a session made on another edge a moment ago. Catch up with the leader
			// once and read again; still missing, it does not exist (and is not remembered).
			if p.cfg.Write == nil {
				return false, nil
			}
			c, cancel := writeContext()
			berr := p.cfg.Write.Barrier(c)
			cancel()
			if berr != nil {
				return false, nil
			}
			if s, err = p.cfg.Store.Session(tenant, sid); err != nil {
				return false, nil
			}
			st.ended = !s.RevokedAt.IsZero()
			st.expires = s.ExpiresAt
		default:
			return false, err
		}
		if p.gen.Load() == gen {
			p.state.sessions.put(k, st)
		}
	}
	return !st.ended && (st.expires.IsZero() || now.Before(st.expires)), nil
}

// tokenRevoked reports whether the tenant revoked the JWT with this jti.
func (p *Proxy) tokenRevoked(tenant, jti string) bool {
	k := recordKey{tenant, jti}
	if v, ok := p.state.revoked.get(k); ok {
		return v
	}
	gen := p.gen.Load()
	r := p.cfg.Store.TokenRevoked(tenant, jti)
	if p.gen.Load() == gen {
		p.state.revoked.put(k, r)
	}
	return r
}
