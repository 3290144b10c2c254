//go:build !wasip1

package sdk

import (
	"crypto/rand"
	"time"
)

// Outside wasip1 there is no host: these stand-ins let an extension's package build, and its logic be
// unit-tested natively through Serve. Log drops its lines, Config and Secret find nothing and Fetch
// fails with ErrNoHost.

func hostLog(Level, string) {}

func hostConfigGet(string) ([]byte, bool) { return nil, false }

func hostSecretGet(string) ([]byte, bool) { return nil, false }

func hostFetch([]byte) ([]byte, error) { return nil, ErrNoHost }

func hostNow() int64 { return time.Now().UnixMilli() }

func hostRandom(b []byte) { _, _ = rand.Read(b) }
