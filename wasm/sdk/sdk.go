package sdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// handler is the extension's function, set by Handle or HandleRaw from an init function.
var handler func(in []byte) []byte

// Handle makes h the extension's handler. Call it from an init function: a reactor module runs its
// package initialisers when the host instantiates it, but never main.
func Handle(h func(Request) Response) {
	handler = func(in []byte) []byte { return encodeResponse(h(decodeRequest(in))) }
}

// HandleErr is Handle for handlers that can fail: when h returns an error, the error is logged and the
// call fails (the host reports ErrFailed, and the extension's on_error policy decides what the journey
// does). The instance stays usable, unlike after a panic.
func HandleErr(h func(Request) (Response, error)) {
	handler = func(in []byte) []byte {
		resp, err := h(decodeRequest(in))
		if err != nil {
			hostLog(LevelError, err.Error())
			return nil
		}
		return encodeResponse(resp)
	}
}

// decodeRequest reads the event in, or panics when it is not one (a broken host, not a runtime
// error).
func decodeRequest(in []byte) Request {
	req, ok := parseEnvelope(in)
	if !ok {
		// The scanner only knows that in is not an event: encoding/json says why, and has the last word.
		req = Request{}
		if err := json.Unmarshal(in, &req); err != nil {
			panic("sdk: the request is not an event: " + err.Error())
		}
	}
	req.raw = in
	return req
}

// encodeResponse is json.Marshal(resp), or a panic when a value in it cannot be encoded (a bug in the
// extension, caught by its first test).
func encodeResponse(resp Response) []byte {
	out, err := appendResponse(make([]byte, 0, 256), resp)
	if err != nil {
		panic("sdk: encoding the response: " + err.Error())
	}
	return out
}

// HandleRaw makes h the extension's handler over the raw request and response JSON. The host checks
// that the answer is valid JSON; an empty answer means the call failed (see HandleErr).
func HandleRaw(h func(request []byte) (response []byte)) { handler = h }

// Serve runs the registered handler on one request. The module's postern_handle export calls it; an
// extension's own tests can call it natively.
func Serve(in []byte) []byte {
	if handler == nil {
		panic("sdk: no handler: call sdk.Handle from an init function")
	}
	return handler(in)
}

// Level is a log line's severity.
type Level int32

// Log levels, as the host's "log" function numbers them.
const (
	LevelDebug Level = 0
	LevelInfo  Level = 1
	LevelWarn  Level = 2
	LevelError Level = 3
)

// Log writes one line to the extension's log. The host bounds the bytes per line and per call and
// drops the excess.
func Log(level Level, msg string) { hostLog(level, msg) }

// Logf is Log with fmt.Sprintf formatting.
func Logf(level Level, format string, args ...any) { hostLog(level, fmt.Sprintf(format, args...)) }

// Config returns the value of key in the extension's configuration (the manifest's
// extensions[].config), and whether it is set.
func Config(key string) (string, bool) {
	b, ok := hostConfigGet(key)
	return string(b), ok
}

// Secret returns the value of one of the extension's secrets (the manifest's extensions[].secrets,
// such as an API key for the services it fetches), and whether it is set. Secrets are stored sealed
// and come through their own host function, apart from Config: the host opens one only when asked.
// Keep the value out of logs and answers; fetch it in each call rather than in init, so that a
// replaced secret reaches the next call.
func Secret(name string) (string, bool) {
	b, ok := hostSecretGet(name)
	return string(b), ok
}

// Now is the host's wall clock, in milliseconds. (time.Now works too: WASI clocks are real.)
func Now() time.Time { return time.UnixMilli(hostNow()) }

// Random fills b with bytes from the host's crypto/rand. (crypto/rand works too: it uses the same
// source through WASI.)
func Random(b []byte) { hostRandom(b) }

// FetchRequest is an HTTP request made through the host. Only hosts listed in the extension's
// allowed_hosts can be reached, over http or https.
type FetchRequest struct {
	Method  string            `json:"method,omitempty"` // GET when empty
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body,omitempty"`
}

// FetchResponse is the answer to a FetchRequest. Header values that appear more than once are joined
// with ", ".
type FetchResponse struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body"`
}

// ErrNoHost is returned by the host functions when the code is not running inside Postern (built for
// another GOOS than wasip1, e.g. in a unit test on the host).
var ErrNoHost = errors.New("sdk: not running inside Postern")

// Fetch makes an HTTP request through the host. An error is either the host's refusal (a host not
// allowed, too many fetches, too large an answer) or the request's own failure; a response with a
// 4xx or 5xx status is not an error.
func Fetch(req FetchRequest) (FetchResponse, error) {
	in, err := json.Marshal(req)
	if err != nil {
		return FetchResponse{}, err
	}
	out, err := hostFetch(in)
	if err != nil {
		return FetchResponse{}, err
	}
	var resp struct {
		FetchResponse
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		return FetchResponse{}, fmt.Errorf("sdk: decoding the fetch answer: %w", err)
	}
	if resp.Error != "" {
		return FetchResponse{}, errors.New("fetch: " + resp.Error)
	}
	return resp.FetchResponse, nil
}
