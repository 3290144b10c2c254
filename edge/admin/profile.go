package admin

import (
	"bytes"
	"runtime/pprof"
	"time"

	"github.com/valyala/fasthttp"
)

// A node's runtime profiles, for operators chasing CPU or memory on one node (and for the proxy
// benchmark, which profiles the edge under load). They sit behind the admin token like the rest of the
// API: a heap profile shows what the process holds, and a CPU profile costs a little while it runs.

// maxProfileSeconds bounds a CPU profile: the request holds a connection for that long.
const maxProfileSeconds = 120

// profile answers GET /admin/v1/debug/pprof/{profile}: "cpu" (?seconds=, default 10) or one of the
// runtime's named profiles (heap, allocs, goroutine, block, mutex, threadcreate), in pprof's format.
func (s *Server) profile(c *call) error {
	name := c.param("profile")
	var buf bytes.Buffer
	if name == "cpu" {
		secs, err := queryInt(c, "seconds", 10)
		if err != nil {
			return err
		}
		if secs < 1 || secs > maxProfileSeconds {
			return badRequest("seconds must be between 1 and 120")
		}
		if err := pprof.StartCPUProfile(&buf); err != nil {
			return apiError(fasthttp.StatusConflict, "profile_running", "a CPU profile is already being taken on this node")
		}
		time.Sleep(time.Duration(secs) * time.Second)
		pprof.StopCPUProfile()
	} else {
		p := pprof.Lookup(name)
		if p == nil {
			return apiError(fasthttp.StatusNotFound, "not_found", "no profile named "+name+
				" (cpu, heap, allocs, goroutine, block, mutex, threadcreate)")
		}
		if err := p.WriteTo(&buf, 0); err != nil {
			return err
		}
	}
	c.ctx.SetContentType("application/octet-stream")
	c.ctx.Response.Header.Set("Content-Disposition", `attachment; filename="`+name+`.pprof"`)
	c.ctx.SetStatusCode(fasthttp.StatusOK)
	c.ctx.SetBody(buf.Bytes())
	return nil
}
