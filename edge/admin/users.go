package admin

import (
	"strconv"

	"github.com/valyala/fasthttp"

	"postern.dev/postern/directory"
)

type userBody struct {
	Email         *string            `json:"email,omitempty"`
	Username      *string            `json:"username,omitempty"`
	Password      *string            `json:"password,omitempty"`
	EmailVerified *bool              `json:"email_verified,omitempty"`
	Blocked       *bool              `json:"blocked,omitempty"`
	Profile       *directory.Profile `json:"profile,omitempty"`
	Attributes    map[string]any     `json:"attributes,omitempty"`
}

// Password length bounds (NIST SP 800-63B): at least 8, and at least 64 allowed.
const (
	minPassword = 8
	maxPassword = 256
)

func hashPassword(p *string) (*string, error) {
	if p == nil {
		return nil, nil
	}
	if n := len([]rune(*p)); n < minPassword || n > maxPassword {
		return nil, badRequest("password must be " + strconv.Itoa(minPassword) + " to " + strconv.Itoa(maxPassword) + " characters")
	}
	h, err := directory.HashPassword(*p)
	if err != nil {
		return nil, err
	}
	return &h, nil
}

// findUser accepts a user's id, email or username in the URL.
func (s *Server) findUser(tenant, ref string) (directory.User, error) {
	if _, err := s.store.Tenant(tenant); err != nil {
		return directory.User{}, notFoundAs(err, "tenant", tenant)
	}
	for _, lookup := range []func(string, string) (directory.User, error){s.store.User, s.store.UserByEmail, s.store.UserByUsername} {
		if u, err := lookup(tenant, ref); err == nil {
			return u, nil
		}
	}
	return directory.User{}, notFoundAs(directory.ErrNotFound, "user", ref)
}

// listUsers pages through a tenant's users: ?after=<last id>&limit=N (default 100, at most 1000); the
// X-Next-After header gives the cursor of the next page. ?email= finds one user by email.
func (s *Server) listUsers(c *call) error {
	if err := s.consistent(c); err != nil {
		return err
	}
	t := c.param("tenant")
	if _, err := s.store.Tenant(t); err != nil {
		return notFoundAs(err, "tenant", t)
	}
	if email := c.ctx.QueryArgs().Peek("email"); len(email) > 0 {
		u, err := s.store.UserByEmail(t, string(email))
		if err != nil {
			if _, ok := directory.AsError(err); ok {
				return writeJSON(c.ctx, fasthttp.StatusOK, []directory.User{})
			}
			return err
		}
		return writeJSON(c.ctx, fasthttp.StatusOK, []directory.User{u.Public()})
	}
	limit, err := queryInt(c, "limit", 100)
	if err != nil {
		return err
	}
	if limit == 0 || limit > 1000 {
		limit = 1000
	}
	users, err := s.store.Users(t, string(c.ctx.QueryArgs().Peek("after")), limit)
	if err != nil {
		return err
	}
	out := make([]directory.User, len(users))
	for i, u := range users {
		out[i] = u.Public()
	}
	if len(users) == limit {
		c.ctx.Response.Header.Set("X-Next-After", users[len(users)-1].ID)
	}
	return writeJSON(c.ctx, fasthttp.StatusOK, out)
}

func (s *Server) getUser(c *call) error {
	if err := s.consistent(c); err != nil {
		return err
	}
	u, err := s.findUser(c.param("tenant"), c.param("user"))
	if err != nil {
		return err
	}
	return writeJSON(c.ctx, fasthttp.StatusOK, u.Public())
}

func (s *Server) createUser(c *call) error {
	var b userBody
	if err := decodeBody(c, &b); err != nil {
		return err
	}
	u := directory.User{ID: directory.NewID(), Tenant: c.param("tenant")}
	setIf(&u.Email, b.Email)
	setIf(&u.Username, b.Username)
	setIf(&u.EmailVerified, b.EmailVerified)
	setIf(&u.Blocked, b.Blocked)
	setIf(&u.Profile, b.Profile)
	u.Attributes = b.Attributes
	if u.Email == "" && u.Username == "" {
		return badRequest("a user needs an email or a username")
	}
	if u.Email != "" && !directory.PlausibleEmail(u.Email) {
		return badRequest("email " + strconv.Quote(u.Email) + " is not an email address")
	}
	h, err := hashPassword(b.Password)
	if err != nil {
		return err
	}
	setIf(&u.PasswordHash, h)
	res, err := s.propose(c, directory.MakeOp(directory.OpUserCreate, u))
	if err != nil {
		return err
	}
	created, err := output[directory.User](res, 0)
	if err != nil {
		return err
	}
	return writeJSON(c.ctx, fasthttp.StatusCreated, created)
}

func (s *Server) updateUser(c *call) error {
	var b userBody
	if err := decodeBody(c, &b); err != nil {
		return err
	}
	u, err := s.findUser(c.param("tenant"), c.param("user"))
	if err != nil {
		return err
	}
	if b.Email != nil && *b.Email != "" && !directory.PlausibleEmail(*b.Email) {
		return badRequest("email " + strconv.Quote(*b.Email) + " is not an email address")
	}
	h, err := hashPassword(b.Password)
	if err != nil {
		return err
	}
	p := directory.UserPatch{Tenant: u.Tenant, ID: u.ID, Email: b.Email, Username: b.Username,
		EmailVerified: b.EmailVerified, Blocked: b.Blocked, PasswordHash: h, Profile: b.Profile, Attributes: b.Attributes}
	res, err := s.propose(c, directory.MakeOp(directory.OpUserUpdate, p))
	if err != nil {
		return err
	}
	updated, err := output[directory.User](res, 0)
	if err != nil {
		return err
	}
	return writeJSON(c.ctx, fasthttp.StatusOK, updated)
}

func (s *Server) deleteUser(c *call) error {
	u, err := s.findUser(c.param("tenant"), c.param("user"))
	if err != nil {
		return err
	}
	if _, err := s.propose(c, directory.MakeOp(directory.OpUserDelete, directory.Ref{Tenant: u.Tenant, ID: u.ID})); err != nil {
		return err
	}
	c.ctx.SetStatusCode(fasthttp.StatusNoContent)
	return nil
}
