// Command probe is a test extension that reports what a module can reach. The host functions must
// work (config, secrets, time, randomness, log); the WASI capabilities Postern withholds must not: it
// tries to read and create files, read environment variables and arguments, find preopened
// directories, and open sockets, and reports each attempt's error (or what it got).
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"postern.dev/postern/wasm/sdk"
)

func main() {}

var kept [][]byte

//go:wasmimport wasi_snapshot_preview1 fd_prestat_get
func fdPrestatGet(fd int32, buf *uint64) int32

//go:wasmimport wasi_snapshot_preview1 sock_accept
func sockAccept(fd int32, flags int32, newFD *int32) int32

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func init() {
	sdk.HandleRaw(func(req []byte) []byte {
		var in struct {
			Dial   string `json:"dial"`
			Log    int    `json:"log"`    // log lines to write
			Stdout int    `json:"stdout"` // lines to print
			Panic  bool   `json:"panic"`
			Alloc  int    `json:"alloc_mib"` // memory to allocate and keep
		}
		_ = json.Unmarshal(req, &in)
		if in.Panic {
			panic("probe: asked to panic")
		}
		for range in.Alloc {
			kept = append(kept, make([]byte, 1<<20))
		}
		got := map[string]any{}

		// What must work.
		got["config"], _ = sdk.Config("greeting")
		_, missing := sdk.Config("missing")
		got["config_missing"] = !missing
		got["secret"], _ = sdk.Secret("api_key")
		_, missing = sdk.Secret("missing")
		got["secret_missing"] = !missing
		_, inConfig := sdk.Config("api_key")
		got["secret_in_config"] = inConfig
		got["now_ms"] = sdk.Now().UnixMilli()
		got["time_now_ms"] = time.Now().UnixMilli()
		b := make([]byte, 16)
		sdk.Random(b)
		got["random"] = hex.EncodeToString(b)
		_, _ = rand.Read(b)
		got["crypto_rand"] = hex.EncodeToString(b)
		for i := range in.Log {
			sdk.Logf(sdk.LevelInfo, "line %d %s", i, strings.Repeat("x", 2000))
		}
		for i := range in.Stdout {
			fmt.Println("stdout line", i)
		}

		// What must not.
		_, err := os.ReadFile("/etc/passwd")
		got["read_file"] = errText(err)
		_, err = os.ReadDir("/")
		got["read_dir"] = errText(err)
		_, err = os.ReadDir(".")
		got["read_cwd"] = errText(err)
		f, err := os.Create("/tmp/postern-escape")
		if f != nil {
			f.Close()
		}
		got["create"] = errText(err)
		got["env_secret"] = os.Getenv("POSTERN_TEST_SECRET")
		got["environ"] = strings.Join(os.Environ(), "\n")
		got["args"] = strings.Join(os.Args, " ")
		if in.Dial != "" {
			c, err := net.Dial("tcp", in.Dial)
			if c != nil {
				c.Close()
			}
			got["dial"] = errText(err)
		}
		var prestat uint64
		preopens := 0
		for fd := int32(3); fd < 16; fd++ {
			if fdPrestatGet(fd, &prestat) == 0 {
				preopens++
			}
		}
		got["preopens"] = preopens
		sockets := 0
		for fd := int32(0); fd < 16; fd++ {
			var nfd int32
			if sockAccept(fd, 0, &nfd) == 0 {
				sockets++
			}
		}
		got["sockets"] = sockets

		out, _ := json.Marshal(got)
		return out
	})
}
