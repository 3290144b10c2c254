package edge

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

type alwaysReady struct{}

func (alwaysReady) Ready() error { return nil }

// streamer is a streaming handler, as the proxy is: it owns /upload and reports the length and sha256
// of the body it read from the stream. Every other path it declines, as the proxy declines a host that
// is not routed.
type streamer struct{}

func (streamer) StreamsRequestBody() bool { return true }

func (streamer) Handle(ctx *fasthttp.RequestCtx) bool {
	if string(ctx.Path()) != "/upload" {
		return false
	}
	r := ctx.RequestBodyStream()
	if r == nil {
		r = bytes.NewReader(ctx.PostBody())
	}
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		ctx.Error(err.Error(), fasthttp.StatusBadRequest)
		return true
	}
	fmt.Fprintf(ctx, "%d %s", n, hex.EncodeToString(h.Sum(nil)))
	return true
}

// former is a handler that does not stream, as the OIDC provider: it parses a form.
type former struct{}

func (former) Handle(ctx *fasthttp.RequestCtx) bool {
	if string(ctx.Path()) != "/form" {
		return false
	}
	fmt.Fprintf(ctx, "a=%d bytes", len(ctx.PostArgs().Peek("a")))
	return true
}

// Interface guards
var (
	_ BodyStreamer = streamer{}
	_ Handler      = streamer{}
	_ Handler      = former{}
)

// serve starts s on a loopback port and returns its base URL.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown() })
	return "http://" + ln.Addr().String()
}

// post sends body (with a length, or chunked when chunked is set) and returns the status and body.
func post(t *testing.T, url, contentType string, body []byte, chunked bool) (int, string) {
	t.Helper()
	var r io.Reader = bytes.NewReader(body)
	if chunked {
		r = io.MultiReader(r) // no length known: net/http sends it chunked
	}
	req, err := http.NewRequest("POST", url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func bigBody(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>12)
	}
	return b
}

func TestStreamingHandlerTakesALargeUpload(t *testing.T) {
	base := serve(t, NewServer(alwaysReady{}, nil, streamer{}, former{}))
	big := bigBody(20 << 20)
	sum := sha256.Sum256(big)
	want := fmt.Sprintf("%d %s", len(big), hex.EncodeToString(sum[:]))
	for _, chunked := range []bool{false, true} {
		status, got := post(t, base+"/upload", "application/octet-stream", big, chunked)
		if status != http.StatusOK || got != want {
			t.Errorf("chunked %v: %d %q, want 200 %q", chunked, status, got, want)
		}
	}
}

func TestBufferedHandlerIsBounded(t *testing.T) {
	// The streaming handler comes first and declines /form, as the proxy does for the provider's host.
	base := serve(t, NewServer(alwaysReady{}, nil, streamer{}, former{}))
	form := func(n int) []byte { return []byte("a=" + strings.Repeat("x", n)) }
	for _, chunked := range []bool{false, true} {
		status, body := post(t, base+"/form", "application/x-www-form-urlencoded", form(2<<20), chunked)
		if status != http.StatusRequestEntityTooLarge || body != "request body too large\n" {
			t.Errorf("2 MiB form, chunked %v: %d %q, want 413", chunked, status, body)
		}
		status, body = post(t, base+"/form", "application/x-www-form-urlencoded", form(1000), chunked)
		if status != http.StatusOK || body != "a=1000 bytes" {
			t.Errorf("small form, chunked %v: %d %q", chunked, status, body)
		}
		// Right at the bound is still taken.
		status, body = post(t, base+"/form", "application/x-www-form-urlencoded", form(MaxBufferedBody-2), chunked)
		if status != http.StatusOK || body != fmt.Sprintf("a=%d bytes", MaxBufferedBody-2) {
			t.Errorf("form of exactly %d bytes, chunked %v: %d %q", MaxBufferedBody, chunked, status, body)
		}
	}
	// A declared length far over the bound is refused at once, with no more of the body read than
	// fasthttp reads ahead (8 KiB).
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "POST /form HTTP/1.1\r\nHost: edge.test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1073741824\r\n\r\na="+strings.Repeat("x", 16<<10))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !resp.Close {
		t.Errorf("1 GiB declared: %d, close %v; want 413 and the connection closed", resp.StatusCode, resp.Close)
	}

	// A GET with a query and no body still reaches the handler.
	resp, err = http.Get(base + "/form?" + url.Values{"a": {"q"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /form: %d", resp.StatusCode)
	}
}

// slowReader hands out its bytes a chunk at a time, one chunk per tick, as a slow uplink does.
type slowReader struct {
	b     []byte
	chunk int
	tick  time.Duration
}

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	time.Sleep(r.tick) // pacing the client, not synchronisation
	n := copy(p[:min(len(p), r.chunk)], r.b)
	r.b = r.b[n:]
	return n, nil
}

func TestStreamedUploadOutlastsTheReadTimeout(t *testing.T) {
	s := NewServer(alwaysReady{}, nil, streamer{}, former{})
	s.srv.ReadTimeout = 300 * time.Millisecond
	base := serve(t, s)
	body := bigBody(64 << 10)
	sum := sha256.Sum256(body)
	// 16 chunks, 100 ms apart: about 1.6 s in all, each gap well inside the read timeout.
	for _, size := range []int64{int64(len(body)), -1} {
		req, err := http.NewRequest("POST", base+"/upload", &slowReader{b: body, chunk: 4 << 10, tick: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = size
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("%d %s", len(body), hex.EncodeToString(sum[:])); resp.StatusCode != http.StatusOK || string(got) != want {
			t.Errorf("length %d: %d %q, want 200 %q", size, resp.StatusCode, got, want)
		}
	}
}
