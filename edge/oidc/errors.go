package oidc

import (
	"encoding/json"
	"fmt"

	"github.com/valyala/fasthttp"
)

// Error is an OAuth 2.0 error response (RFC 6749 section 5.2). Description is shown to the client, so it
// never carries internal text; the cause, if any, goes to the log only.
type Error struct {
	Code        string
	Description string
	Status      int
	cause       error
}

func (e *Error) Error() string {
	if e.cause != nil {
		return e.Code + ": " + e.Description + ": " + e.cause.Error()
	}
	return e.Code + ": " + e.Description
}

func (e *Error) Unwrap() error { return e.cause }

func oauthError(status int, code, format string, a ...any) *Error {
	return &Error{Code: code, Description: fmt.Sprintf(format, a...), Status: status}
}

// The RFC 6749 and OIDC error codes used here.
func errInvalidRequest(format string, a ...any) *Error {
	return oauthError(fasthttp.StatusBadRequest, "invalid_request", format, a...)
}
func errInvalidClient(format string, a ...any) *Error {
	return oauthError(fasthttp.StatusUnauthorized, "invalid_client", format, a...)
}
func errInvalidGrant(format string, a ...any) *Error {
	return oauthError(fasthttp.StatusBadRequest, "invalid_grant", format, a...)
}
func errUnauthorizedClient(format string, a ...any) *Error {
	return oauthError(fasthttp.StatusBadRequest, "unauthorized_client", format, a...)
}
func errUnsupportedGrantType(format string, a ...any) *Error {
	return oauthError(fasthttp.StatusBadRequest, "unsupported_grant_type", format, a...)
}
func errInvalidScope(format string, a ...any) *Error {
	return oauthError(fasthttp.StatusBadRequest, "invalid_scope", format, a...)
}
func errInvalidToken(format string, a ...any) *Error {
	return oauthError(fasthttp.StatusUnauthorized, "invalid_token", format, a...)
}
func errServer(cause error) *Error {
	return &Error{Code: "server_error", Description: "the server could not complete the request", Status: fasthttp.StatusInternalServerError, cause: cause}
}
func errTemporarilyUnavailable(cause error) *Error {
	return &Error{Code: "temporarily_unavailable", Description: "the service cannot take this request right now; retry shortly", Status: fasthttp.StatusServiceUnavailable, cause: cause}
}

// writeJSONError writes e as the token endpoint's JSON error body.
func writeJSONError(ctx *fasthttp.RequestCtx, e *Error) {
	if e.Code == "invalid_client" && len(ctx.Request.Header.Peek("Authorization")) > 0 {
		ctx.Response.Header.Set("WWW-Authenticate", `Basic realm="postern", error="invalid_client"`)
	}
	if e.Status == fasthttp.StatusServiceUnavailable {
		ctx.Response.Header.Set("Retry-After", "1")
	}
	writeJSON(ctx, e.Status, map[string]string{"error": e.Code, "error_description": e.Description})
}

// writeBearerError answers a protected resource (userinfo) per RFC 6750 section 3.
func writeBearerError(ctx *fasthttp.RequestCtx, e *Error) {
	ctx.Response.Header.Set("WWW-Authenticate", fmt.Sprintf(`Bearer error=%q, error_description=%q`, e.Code, e.Description))
	writeJSON(ctx, e.Status, map[string]string{"error": e.Code, "error_description": e.Description})
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		ctx.SetStatusCode(fasthttp.StatusInternalServerError)
		return
	}
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.Response.Header.Set("Pragma", "no-cache")
	ctx.SetContentType("application/json")
	ctx.SetStatusCode(status)
	ctx.SetBody(b)
}
