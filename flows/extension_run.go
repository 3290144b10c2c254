package flows

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"

	"postern.dev/postern/directory"
)

// Runner calls a tenant's extensions at an event and merges what they decide. It is the one place where
// on_error is applied: an extension that fails (its invoker's error, or an answer that breaks the
// contract) either stops the journey ("fail", the default, and any unknown value) or is logged and skipped
// ("continue").
//
// # Order and merging
//
// The extensions subscribed to the event are called one after another, in the order of the slice given
// (the directory lists them by id). Each sees the journey as the ones before it left it:
//
//   - OnAttributeCollectionStart: prefills merge, a later extension's value replacing an earlier one's,
//     and the next extension's request carries them; the first block page ends the run.
//   - OnAttributeCollectionSubmit: modifications merge the same way; the first validation error or block
//     page ends the run.
//   - OnTokenIssuanceStart: claims merge, later replacing earlier, within [MaxClaimsSize] in all (the
//     extension that would pass it fails).
//   - OnOtpSend: the first extension that delivers the code ends the run; if none does, Postern mails it.
//     A failure under "continue" counts as not delivered, like Entra's fallbackToMicrosoftProviderOnError.
//   - OnProxyRequest: added headers merge, later replacing earlier; the first denial ends the run.
//
// A Runner is safe for concurrent use. The zero value works: without invokers, every extension call
// fails under its extension's policy.
type Runner struct {
	// Wasm calls WebAssembly extensions (those with a WasmSHA256). Nil fails each such call under its
	// extension's policy.
	Wasm Invoker
	// HTTP calls HTTP extensions (those with a URL), usually an [*HTTPInvoker]. Nil fails each such call.
	HTTP Invoker
	// Log receives the failures skipped under on_error "continue"; nil discards them.
	Log *slog.Logger
}

// AttributeCollectionStart runs the tenant's OnAttributeCollectionStart extensions among exts. An error
// means the journey stops on the branded error page; it is an [*ExtensionError] when an extension failed
// under "fail".
func (r *Runner) AttributeCollectionStart(ctx context.Context, exts []directory.Extension, in AttributeCollectionStartInput) (AttributeStartDecision, error) {
	var d AttributeStartDecision
	in.SignUp.Attributes = maps.Clone(in.SignUp.Attributes)
	err := r.run(ctx, EventAttributeCollectionStart, in.EventContext, exts, func(ext directory.Extension) (bool, error) {
		one, err := ask(ctx, r, ext, in.Request, func(out []byte) (AttributeStartDecision, error) {
			return ParseAttributeCollectionStart(out, in.Flow)
		})
		if err != nil {
			return false, err
		}
		if one.Block != nil {
			one.Block.Extension = ext.ID
			d.Block = one.Block
			return true, nil
		}
		setValues(&d.Prefill, &in.SignUp.Attributes, one.Prefill)
		return false, nil
	})
	if err != nil {
		return AttributeStartDecision{}, err
	}
	return d, nil
}

// setValues records an extension's attribute values in the decision and in the attributes the next
// extension is asked about, so later extensions see (and may override) what earlier ones set.
func setValues(decided, attrs *map[string]string, values map[string]string) {
	for k, v := range values {
		if *decided == nil {
			*decided = map[string]string{}
		}
		if *attrs == nil {
			*attrs = map[string]string{}
		}
		(*decided)[k], (*attrs)[k] = v, v
	}
}

// AttributeCollectionSubmit runs the tenant's OnAttributeCollectionSubmit extensions among exts. An error
// means the journey stops on the branded error page; it is an [*ExtensionError] when an extension failed
// under "fail".
func (r *Runner) AttributeCollectionSubmit(ctx context.Context, exts []directory.Extension, in AttributeCollectionSubmitInput) (SubmitDecision, error) {
	var d SubmitDecision
	in.SignUp.Attributes = maps.Clone(in.SignUp.Attributes)
	err := r.run(ctx, EventAttributeCollectionSubmit, in.EventContext, exts, func(ext directory.Extension) (bool, error) {
		one, err := ask(ctx, r, ext, in.Request, func(out []byte) (SubmitDecision, error) {
			return ParseAttributeCollectionSubmit(out, in.Flow)
		})
		if err != nil {
			return false, err
		}
		if one.Block != nil {
			one.Block.Extension = ext.ID
			d.Block = one.Block
			return true, nil
		}
		if !one.OK() {
			d.FieldErrors, d.Message = one.FieldErrors, one.Message
			return true, nil
		}
		setValues(&d.Modify, &in.SignUp.Attributes, one.Modify)
		return false, nil
	})
	if err != nil {
		return SubmitDecision{}, err
	}
	return d, nil
}

// TokenIssuanceStart runs the tenant's OnTokenIssuanceStart extensions among exts. An error means no token
// may be issued: the journey stops on the branded error page (or the OAuth error response); it is an
// [*ExtensionError] when an extension failed under "fail".
func (r *Runner) TokenIssuanceStart(ctx context.Context, exts []directory.Extension, in TokenIssuanceStartInput) (TokenDecision, error) {
	var d TokenDecision
	req, err := in.build()
	if err != nil {
		return TokenDecision{}, err
	}
	err = r.run(ctx, EventTokenIssuanceStart, in.EventContext, exts, func(ext directory.Extension) (bool, error) {
		one, err := ask(ctx, r, ext, req.encode, ParseTokenIssuanceStart)
		if err != nil {
			return false, err
		}
		merged := maps.Clone(d.Claims)
		if merged == nil {
			merged = map[string]any{}
		}
		maps.Copy(merged, one.Claims)
		if n := ClaimsSize(merged); n > MaxClaimsSize {
			return false, malformed(EventTokenIssuanceStart, "with this answer the extensions' claims total %d bytes, more than %d", n, MaxClaimsSize)
		}
		d.Claims = merged
		return false, nil
	})
	if err != nil {
		return TokenDecision{}, err
	}
	return d, nil
}

// OtpSend runs the tenant's OnOtpSend extensions among exts. Without an error, Delivered false means
// Postern mails the code itself. An error means the code must not be sent at all and the journey stops
// on the branded error page; it is an [*ExtensionError] when an extension failed under "fail".
func (r *Runner) OtpSend(ctx context.Context, exts []directory.Extension, in OtpSendInput) (OtpDecision, error) {
	var d OtpDecision
	req, err := in.build()
	if err != nil {
		return OtpDecision{}, err
	}
	err = r.run(ctx, EventOtpSend, in.EventContext, exts, func(ext directory.Extension) (bool, error) {
		one, err := ask(ctx, r, ext, req.encode, ParseOtpSend)
		if err != nil {
			return false, err
		}
		if one.Delivered {
			d = OtpDecision{Delivered: true, Extension: ext.ID}
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return OtpDecision{}, err
	}
	return d, nil
}

// ProxyRequest runs the tenant's OnProxyRequest extensions among exts. An error means the request is not
// forwarded (the caller answers with its error page); it is an [*ExtensionError] when an extension failed
// under "fail".
func (r *Runner) ProxyRequest(ctx context.Context, exts []directory.Extension, in ProxyRequestInput) (ProxyDecision, error) {
	var d ProxyDecision
	req, err := in.build()
	if err != nil {
		return ProxyDecision{}, err
	}
	err = r.run(ctx, EventProxyRequest, in.EventContext, exts, func(ext directory.Extension) (bool, error) {
		one, err := ask(ctx, r, ext, req.encode, ParseProxyRequest)
		if err != nil {
			return false, err
		}
		if one.Deny != nil {
			one.Deny.Extension = ext.ID
			d = ProxyDecision{Deny: one.Deny}
			return true, nil
		}
		if len(one.Headers) == 0 {
			return false, nil
		}
		merged := maps.Clone(d.Headers)
		if merged == nil {
			merged = map[string]string{}
		}
		maps.Copy(merged, one.Headers)
		if err := upstreamHeadersSize(merged); err != nil {
			return false, malformed(EventProxyRequest, "with this answer the extensions' headers: %v", err)
		}
		d.Headers = merged
		return false, nil
	})
	if err != nil {
		return ProxyDecision{}, err
	}
	return d, nil
}

// ask sends one extension its request for the event and parses its answer: the step every event's run
// takes once per extension. A request that cannot be built is the caller's error, not the extension's.
func ask[D any](ctx context.Context, r *Runner, ext directory.Extension, request func(directory.Extension) ([]byte, error),
	parse func([]byte) (D, error)) (D, error) {
	var zero D
	req, err := request(ext)
	if err != nil {
		return zero, callerError{err}
	}
	out, err := r.invoke(ctx, ext, req)
	if err != nil {
		return zero, err
	}
	return parse(out)
}

// callerError is a failure that is not the extension's (a request that cannot be built from the
// caller's input): it stops the run whatever the policy.
type callerError struct{ error }

// run calls step for each extension of exts subscribed to ev, until one says stop, applying on_error to
// each failure.
func (r *Runner) run(ctx context.Context, ev Event, c EventContext, exts []directory.Extension, step func(directory.Extension) (stop bool, err error)) error {
	for _, ext := range exts {
		if !subscribed(ext.Events, ev) {
			continue
		}
		if ext.Tenant != c.Tenant {
			return fmt.Errorf("running %s for tenant %q: extension %q belongs to tenant %q", ev, c.Tenant, ext.ID, ext.Tenant)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("running %s for tenant %q: %w", ev, c.Tenant, err)
		}
		stop, err := step(ext)
		if err == nil {
			if stop {
				return nil
			}
			continue
		}
		var ce callerError
		if errors.As(err, &ce) {
			return ce.error
		}
		xerr := &ExtensionError{Tenant: c.Tenant, Event: ev, Extension: ext.ID, Err: err}
		if ext.OnError != onErrorContinue || ctx.Err() != nil {
			return xerr
		}
		if r.Log != nil {
			r.Log.LogAttrs(ctx, slog.LevelWarn, "extension failed; continuing without it (on_error: continue)",
				slog.String("tenant", c.Tenant), slog.String("event", string(ev)), slog.String("extension", ext.ID),
				slog.String("correlation_id", c.CorrelationID), slog.String("error", err.Error()))
		}
	}
	return nil
}

// invoke calls ext with the invoker of its kind.
func (r *Runner) invoke(ctx context.Context, ext directory.Extension, req []byte) ([]byte, error) {
	var inv Invoker
	switch {
	case ext.WasmSHA256 != "":
		if inv = r.Wasm; inv == nil {
			return nil, errors.New("no WebAssembly runtime on this node")
		}
	case ext.URL != "":
		if inv = r.HTTP; inv == nil {
			return nil, errors.New("no HTTP invoker on this node")
		}
	default:
		return nil, errors.New("the extension has neither a module nor a URL")
	}
	return inv.Invoke(ctx, ext, req)
}
