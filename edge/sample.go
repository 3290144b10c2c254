package edge

import (
	"fmt"
	"html"
	"net"
	"sort"
	"strings"

	"github.com/valyala/fasthttp"
)

// SampleUpstream is the little app `postern dev` puts behind the demo route: it shows which identity
// headers reached it, which is the quickest way to see the proxy at work.
type SampleUpstream struct{ srv *fasthttp.Server }

// NewSampleUpstream builds the sample app.
func NewSampleUpstream() *SampleUpstream {
	return &SampleUpstream{srv: &fasthttp.Server{Handler: sampleHandler, Name: "postern-sample"}}
}

// Serve answers on ln until Shutdown.
func (s *SampleUpstream) Serve(ln net.Listener) error { return s.srv.Serve(ln) }

// Shutdown stops the sample app.
func (s *SampleUpstream) Shutdown() error { return s.srv.Shutdown() }

func sampleHandler(ctx *fasthttp.RequestCtx) {
	var rows []string
	for k, v := range ctx.Request.Header.All() {
		name := string(k)
		if strings.HasPrefix(strings.ToLower(name), "x-") {
			rows = append(rows, fmt.Sprintf("<tr><th>%s</th><td>%s</td></tr>", html.EscapeString(name), html.EscapeString(string(v))))
		}
	}
	sort.Strings(rows)
	ctx.SetContentType("text/html; charset=utf-8")
	fmt.Fprintf(ctx, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sample app</title></head>
<body><h1>Sample app behind Postern</h1><p>Path: %s</p><table>%s</table></body></html>
`, html.EscapeString(string(ctx.Path())), strings.Join(rows, ""))
}
