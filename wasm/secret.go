package wasm

import (
	"context"
	"fmt"

	"github.com/tetratelabs/wazero/api"

	"postern.dev/postern/directory"
)

// SecretFunc opens one of an extension's secrets (directory.Extension.Secrets, sealed): ok is false when
// the extension has none by that name. Nodes implement it with their key-encryption key, so this package
// never holds the key and opens a secret only when a guest asks for it. It may be called from many calls
// at once. Its error must not carry the value: it ends up in logs.
type SecretFunc func(ext directory.Extension, name string) (value []byte, ok bool, err error)

// hostFailure ends a call for a reason that is the host's, not the guest's: the call fails with an
// internal error, not ErrTrap, so the extension's author is not sent looking for a bug in the module.
type hostFailure struct{ err error }

func (f *hostFailure) Error() string { return f.err.Error() }

// secretGet is the secret_get host function: config_get's protocol over the extension's secrets.
//
// secret_get(name_ptr i32, name_len i32) -> i64: the value's length, or -1
func (r *Runtime) secretGet(ctx context.Context, m api.Module, stack []uint64) {
	cs := stateOf(ctx)
	n := uint32(stack[1])
	if n > maxKeyBytes {
		fault("secret_get: name of %d bytes is over %d", n, maxKeyBytes)
	}
	name := string(read(m, "secret_get", uint32(stack[0]), n))
	var value []byte
	ok := false
	if r.cfg.Secret != nil {
		var err error
		if value, ok, err = r.cfg.Secret(cs.ext, name); err != nil {
			panic(&hostFailure{fmt.Errorf("secret_get: %w", err)})
		}
	}
	if !ok {
		cs.result = nil
		stack[0] = api.EncodeI64(-1)
		return
	}
	cs.result = value
	stack[0] = api.EncodeI64(int64(len(value)))
}
