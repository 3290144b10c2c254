package proxy

import "time"

// HostSessionCookie seals a host session cookie value as the sign-in callback does, for tests and
// benchmarks that need a signed-in browser without the sign-in.
func HostSessionCookie(p *Proxy, host, tenant, sub, sid string, exp time.Time) (string, error) {
	return p.seal(hostSession{Tenant: tenant, Sub: sub, SID: sid, Exp: exp.Unix()}, sessionContext(host))
}
