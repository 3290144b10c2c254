// Command postern-bench-peer runs one peer of postern-bench's proxy scenario, in a process of its own:
//
//	postern-bench-peer upstream [-listen 127.0.0.1:0]
//	postern-bench-peer bare-proxy -upstream HOST:PORT [-listen 127.0.0.1:0]
//
// upstream is the app the proxy forwards to (bench.UpstreamHandler), bare-proxy the baseline reverse
// proxy (bench.BareProxyHandler, served with the edge's client timeouts). Once it accepts connections it prints "listening on ADDR" on stdout;
// it serves until it is killed (SIGTERM ends it: there is nothing to save).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/valyala/fasthttp"

	"postern.dev/postern/bench"
	"postern.dev/postern/edge"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "postern-bench-peer: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: postern-bench-peer upstream|bare-proxy [flags]")
	}
	role := args[0]
	fs := flag.NewFlagSet("postern-bench-peer "+role, flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address to serve on")
	upstream := fs.String("upstream", "", "bare-proxy: the upstream's host:port")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	var h fasthttp.RequestHandler
	switch role {
	case "upstream":
		h = bench.UpstreamHandler
	case "bare-proxy":
		if *upstream == "" {
			return errors.New("bare-proxy: -upstream is required")
		}
		h = bench.BareProxyHandler(*upstream)
	default:
		return fmt.Errorf("unknown role %q (upstream or bare-proxy)", role)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())
	srv := &fasthttp.Server{Handler: h, NoDefaultServerHeader: true}
	if role == "bare-proxy" {
		// The edge's own client timeouts: what any proxy facing the internet sets, so the comparison is
		// of what the proxies do per request, not of their server settings.
		srv.ReadTimeout, srv.IdleTimeout = edge.ReadTimeout, edge.IdleTimeout
	}
	return srv.Serve(ln)
}
