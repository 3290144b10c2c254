package admin

import (
	"github.com/valyala/fasthttp"

	"postern.dev/postern/directory"
)

type groupBody struct {
	Name        *string `json:"name,omitempty"`
	Description *string `json:"description,omitempty"`
}

// findGroup accepts a group's id or name in the URL.
func (s *Server) findGroup(tenant, ref string) (directory.Group, error) {
	if _, err := s.store.Tenant(tenant); err != nil {
		return directory.Group{}, notFoundAs(err, "tenant", tenant)
	}
	if g, err := s.store.Group(tenant, ref); err == nil {
		return g, nil
	}
	if g, err := s.store.GroupByName(tenant, ref); err == nil {
		return g, nil
	}
	return directory.Group{}, notFoundAs(directory.ErrNotFound, "group", ref)
}

func (s *Server) listGroups(c *call) error {
	if err := s.consistent(c); err != nil {
		return err
	}
	if _, err := s.store.Tenant(c.param("tenant")); err != nil {
		return notFoundAs(err, "tenant", c.param("tenant"))
	}
	gs, err := s.store.Groups(c.param("tenant"))
	if err != nil {
		return err
	}
	return writeJSON(c.ctx, fasthttp.StatusOK, nonNil(gs))
}

func (s *Server) getGroup(c *call) error {
	if err := s.consistent(c); err != nil {
		return err
	}
	g, err := s.findGroup(c.param("tenant"), c.param("group"))
	if err != nil {
		return err
	}
	return writeJSON(c.ctx, fasthttp.StatusOK, g)
}

func (s *Server) createGroup(c *call) error {
	var b groupBody
	if err := decodeBody(c, &b); err != nil {
		return err
	}
	if b.Name == nil || *b.Name == "" {
		return badRequest("name is required")
	}
	g := directory.Group{ID: directory.NewID(), Tenant: c.param("tenant"), Name: *b.Name}
	setIf(&g.Description, b.Description)
	res, err := s.propose(c, directory.MakeOp(directory.OpGroupCreate, g))
	if err != nil {
		return err
	}
	created, err := output[directory.Group](res, 0)
	if err != nil {
		return err
	}
	return writeJSON(c.ctx, fasthttp.StatusCreated, created)
}

func (s *Server) updateGroup(c *call) error {
	var b groupBody
	if err := decodeBody(c, &b); err != nil {
		return err
	}
	g, err := s.findGroup(c.param("tenant"), c.param("group"))
	if err != nil {
		return err
	}
	res, err := s.propose(c, directory.MakeOp(directory.OpGroupUpdate, directory.GroupPatch{Tenant: g.Tenant, ID: g.ID, Name: b.Name, Description: b.Description}))
	if err != nil {
		return err
	}
	updated, err := output[directory.Group](res, 0)
	if err != nil {
		return err
	}
	return writeJSON(c.ctx, fasthttp.StatusOK, updated)
}

func (s *Server) deleteGroup(c *call) error {
	g, err := s.findGroup(c.param("tenant"), c.param("group"))
	if err != nil {
		return err
	}
	if _, err := s.propose(c, directory.MakeOp(directory.OpGroupDelete, directory.Ref{Tenant: g.Tenant, ID: g.ID})); err != nil {
		return err
	}
	c.ctx.SetStatusCode(fasthttp.StatusNoContent)
	return nil
}

func (s *Server) listMembers(c *call) error {
	if err := s.consistent(c); err != nil {
		return err
	}
	g, err := s.findGroup(c.param("tenant"), c.param("group"))
	if err != nil {
		return err
	}
	ids, err := s.store.GroupMembers(g.Tenant, g.ID)
	if err != nil {
		return err
	}
	out := make([]directory.User, 0, len(ids))
	for _, id := range ids {
		if u, err := s.store.User(g.Tenant, id); err == nil {
			out = append(out, u.Public())
		}
	}
	return writeJSON(c.ctx, fasthttp.StatusOK, out)
}

func (s *Server) membership(c *call) (directory.Membership, error) {
	g, err := s.findGroup(c.param("tenant"), c.param("group"))
	if err != nil {
		return directory.Membership{}, err
	}
	u, err := s.findUser(c.param("tenant"), c.param("user"))
	if err != nil {
		return directory.Membership{}, err
	}
	return directory.Membership{Tenant: g.Tenant, GroupID: g.ID, UserID: u.ID}, nil
}

func (s *Server) addMember(c *call) error {
	m, err := s.membership(c)
	if err != nil {
		return err
	}
	if _, err := s.propose(c, directory.MakeOp(directory.OpMemberAdd, m)); err != nil {
		return err
	}
	c.ctx.SetStatusCode(fasthttp.StatusNoContent)
	return nil
}

func (s *Server) removeMember(c *call) error {
	m, err := s.membership(c)
	if err != nil {
		return err
	}
	if _, err := s.propose(c, directory.MakeOp(directory.OpMemberRemove, m)); err != nil {
		return err
	}
	c.ctx.SetStatusCode(fasthttp.StatusNoContent)
	return nil
}
