package admin

import (
	"bufio"
	"errors"

	"github.com/valyala/fasthttp"

	"postern.dev/postern/cluster"
)

func (s *Server) clusterStatus(c *call) error {
	ctx, cancel := c.context()
	defer cancel()
	st, err := s.cfg.Cluster.Status(ctx)
	if err != nil {
		return err
	}
	return writeJSON(c.ctx, fasthttp.StatusOK, st)
}

// clusterJoin adds the calling node to the cluster. The admin token authorizes it; the node must also
// hold a certificate of the cluster's CA, or raft traffic to and from it fails.
func (s *Server) clusterJoin(c *call) error {
	var req cluster.JoinRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	if req.ID == "" || req.RaftAddr == "" {
		return badRequest("id and raft_addr are required")
	}
	ctx, cancel := c.context()
	defer cancel()
	if err := s.cfg.Cluster.Join(ctx, req); err != nil {
		return err
	}
	return writeJSON(c.ctx, fasthttp.StatusOK, map[string]string{"joined": req.ID})
}

func (s *Server) clusterRemove(c *call) error {
	ctx, cancel := c.context()
	defer cancel()
	if err := s.cfg.Cluster.Remove(ctx, c.param("node")); err != nil {
		return err
	}
	c.ctx.SetStatusCode(fasthttp.StatusNoContent)
	return nil
}

// backup streams a snapshot of this replica; with ?consistency=linearizable (what `postern backup` sends)
// it first waits for a barrier, so the snapshot holds every committed write.
func (s *Server) backup(c *call) error {
	if err := s.consistent(c); err != nil {
		return err
	}
	sn, err := s.store.Snapshot()
	if err != nil {
		return err
	}
	c.ctx.SetContentType("application/octet-stream")
	c.ctx.Response.Header.Set("Content-Disposition", `attachment; filename="postern-backup.bin"`)
	c.ctx.Response.Header.Set("X-Postern-Index", itoa(sn.AppliedIndex()))
	log := s.cfg.Logger
	c.ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer sn.Release()
		if err := sn.Write(w); err != nil && log != nil {
			log.Error("writing backup stream", "error", err)
		}
	})
	return nil
}

// restore replaces the whole directory, on every node, with a backup. It must reach the leader.
func (s *Server) restore(c *call) error {
	body := c.ctx.RequestBodyStream()
	var err error
	if body != nil {
		err = s.cfg.Cluster.RestoreBackup(body)
	} else {
		err = s.cfg.Cluster.RestoreBackup(bytesReader(c.ctx.PostBody()))
	}
	if errors.Is(err, cluster.ErrNotLeader) {
		return apiError(fasthttp.StatusConflict, "not_leader", err.Error())
	}
	if err != nil {
		return err
	}
	return writeJSON(c.ctx, fasthttp.StatusOK, map[string]any{"restored": true, "index": s.store.AppliedIndex()})
}
