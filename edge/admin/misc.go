package admin

import (
	"bytes"
	_ "embed"
	"io"
	"strconv"

	"github.com/valyala/fasthttp"
)

//go:embed openapi.json
var openAPIDocument []byte

func (s *Server) openAPI(c *call) error {
	c.ctx.SetContentType("application/json")
	c.ctx.SetStatusCode(fasthttp.StatusOK)
	c.ctx.SetBody(openAPIDocument)
	return nil
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
