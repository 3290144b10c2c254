package wasm

import (
	"log/slog"
	"net/http"
	"time"
)

// Config is a node's extension runtime configuration. Zero fields take the defaults below.
type Config struct {
	// CacheDir holds compiled machine code across restarts (wazero's file compilation cache). Empty
	// keeps compiled code in memory only.
	CacheDir string
	// Log receives the extensions' log lines (with tenant and extension attributes) and the runtime's
	// own warnings. Nil discards them.
	Log *slog.Logger
	// Module returns a tenant's module bytes by their SHA-256 (hex): the directory's Store.Blob.
	Module func(tenant, sha256 string) ([]byte, error)
	// Secret opens an extension's secret for secret_get. Nil: no extension has secrets here, and
	// secret_get finds none. An error fails the call, as the host's failure.
	Secret SecretFunc

	// MaxInstances bounds the calls running at once, and so the instances alive, per extension
	// (default 8). Callers beyond it wait for their context's deadline.
	MaxInstances int
	// MaxModuleSize bounds a module's bytes (default 32 MiB).
	MaxModuleSize int64
	// MaxInput and MaxOutput bound a call's request and response JSON (default 1 MiB each).
	MaxInput, MaxOutput int

	// DefaultTimeout is a call's time when the extension sets none (default 2 s); MaxTimeout caps what
	// an extension may ask for (default 10 s). Compiling a module and starting instances are not
	// counted: those are bounded by the caller's context and InitTimeout.
	DefaultTimeout, MaxTimeout time.Duration
	// InitTimeout bounds starting one instance, including the guest's _initialize (default 5 s).
	InitTimeout time.Duration

	// DefaultMemoryLimit is an instance's memory when the extension sets none (default 64 MiB);
	// MaxMemoryLimit caps what an extension may ask for (default 512 MiB). Both are rounded up to
	// whole 64 KiB pages.
	DefaultMemoryLimit, MaxMemoryLimit int64

	// LogLineBytes bounds one log line (default 1 KiB, longer lines are cut); LogCallBytes bounds the
	// log bytes of one call (default 16 KiB, later lines are dropped and counted).
	LogLineBytes, LogCallBytes int
	// Audit receives, when a call ends, the lines it logged (besides Log) and the host's own lines
	// about it, for the tenant's audit; a call that logged nothing and ended well makes no call. It runs
	// on the goroutine of the extension's call, which waits for it: it must not block (queue the lines
	// and return). The CallLog is the hook's to keep. Nil discards them.
	Audit func(CallLog)

	// Fetch is the policy of the http_fetch host function.
	Fetch FetchPolicy

	// Interpreter runs modules in wazero's interpreter even where its compiler is available (slower;
	// for platforms or debugging only).
	Interpreter bool
}

// FetchPolicy bounds what an extension can do with http_fetch. Which hosts it may reach is the
// extension's own allowed_hosts.
type FetchPolicy struct {
	// Timeout bounds one fetch (default 2 s); the call's own deadline bounds it too.
	Timeout time.Duration
	// MaxRequestBytes bounds the request JSON a guest passes (default 1 MiB).
	MaxRequestBytes int
	// MaxResponseBytes bounds a response body (default 1 MiB).
	MaxResponseBytes int64
	// MaxPerCall bounds the fetches of one call (default 8).
	MaxPerCall int
	// AllowPrivateAddresses lets fetches reach loopback, private, link-local and other
	// non-public addresses. Off by default, so an allowed host name that resolves to an internal
	// address (the node itself, a metadata service) is still refused; tests turn it on.
	AllowPrivateAddresses bool
	// Transport replaces the HTTP transport (tests). The address check above is part of the default
	// transport's dialer, so it does not apply to a replaced one.
	Transport http.RoundTripper
}

const (
	pageSize = 64 << 10
	mib      = 1 << 20
)

func (c Config) withDefaults() Config {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	setDefault(&c.MaxInstances, 8)
	setDefault(&c.MaxModuleSize, 32*mib)
	setDefault(&c.MaxInput, mib)
	setDefault(&c.MaxOutput, mib)
	setDefault(&c.DefaultTimeout, 2*time.Second)
	setDefault(&c.MaxTimeout, 10*time.Second)
	setDefault(&c.InitTimeout, 5*time.Second)
	setDefault(&c.DefaultMemoryLimit, 64*mib)
	setDefault(&c.MaxMemoryLimit, 512*mib)
	setDefault(&c.LogLineBytes, 1<<10)
	setDefault(&c.LogCallBytes, 16<<10)
	setDefault(&c.Fetch.Timeout, 2*time.Second)
	setDefault(&c.Fetch.MaxRequestBytes, mib)
	setDefault(&c.Fetch.MaxResponseBytes, mib)
	setDefault(&c.Fetch.MaxPerCall, 8)
	return c
}

func setDefault[T int | int64 | time.Duration](p *T, v T) {
	if *p <= 0 {
		*p = v
	}
}
