package admin

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"mime"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"postern.dev/postern/directory"
	"postern.dev/postern/directory/manifest"
)

// A tenant's extensions through the API: the same records a manifest's extensions section makes, checked
// by the same rules (manifest.Manifest.Validate), one at a time. A PUT creates or replaces one whole
// extension; its module travels inline, or by the content hash of a module the tenant already stored.
// Answers show the module's hash and size, never its bytes, and the secrets' names, never their values.

// maxModuleSize bounds an uploaded module: the wasm runtime's default MaxModuleSize (a node with a
// larger one still accepts no more through the API). A Go guest is about 2 to 4 MiB.
const maxModuleSize = 32 << 20

// wasmMagic starts every WebAssembly binary module: "\0asm" and version 1 (WebAssembly Core
// Specification, section 5.5.16).
var wasmMagic = []byte("\x00asm\x01\x00\x00\x00")

// extensionView is an extension as the API shows it: its secrets by name only. A value, sealed or not,
// never leaves the directory through the API: operators set secrets, extensions read them.
type extensionView struct {
	directory.Extension
	SecretNames []string `json:"secret_names"`
}

func viewExtension(x directory.Extension) extensionView {
	return extensionView{x.Public(), nonNil(x.SecretNames())}
}

// findExtension returns a tenant's extension by id.
func (s *Server) findExtension(tenant, id string) (directory.Extension, error) {
	if _, err := s.store.Tenant(tenant); err != nil {
		return directory.Extension{}, notFoundAs(err, "tenant", tenant)
	}
	exts, err := s.store.Extensions(tenant)
	if err != nil {
		return directory.Extension{}, err
	}
	for _, x := range exts {
		if x.ID == id {
			return x, nil
		}
	}
	return directory.Extension{}, notFoundAs(directory.ErrNotFound, "extension", id)
}

func (s *Server) listExtensions(c *call) error {
	if err := s.consistent(c); err != nil {
		return err
	}
	if _, err := s.store.Tenant(c.param("tenant")); err != nil {
		return notFoundAs(err, "tenant", c.param("tenant"))
	}
	exts, err := s.store.Extensions(c.param("tenant"))
	if err != nil {
		return err
	}
	out := make([]extensionView, len(exts))
	for i, x := range exts {
		out[i] = viewExtension(x)
	}
	return writeJSON(c.ctx, fasthttp.StatusOK, out)
}

func (s *Server) getExtension(c *call) error {
	if err := s.consistent(c); err != nil {
		return err
	}
	x, err := s.findExtension(c.param("tenant"), c.param("extension"))
	if err != nil {
		return err
	}
	return writeJSON(c.ctx, fasthttp.StatusOK, viewExtension(x))
}

// putExtension creates or replaces an extension: 201 with version 1, or 200 with the next version. The
// body is the manifest's extension as JSON, or (Content-Type: application/wasm) the module itself with
// the other fields as query parameters. An extension a manifest created stays the manifest's.
//
// Secrets are the exception to replacing the whole: answers never show their values, so a client
// that sends back what it read has none to send. A body without "secrets" (and a module sent as the
// body) keeps the stored ones; "secrets": {...} replaces them all, {} removes them.
func (s *Server) putExtension(c *call) error {
	tenant, id := c.param("tenant"), c.param("extension")
	if _, err := s.store.Tenant(tenant); err != nil {
		return notFoundAs(err, "tenant", tenant)
	}
	var me manifest.Extension
	var module []byte
	if ct, _, _ := mime.ParseMediaType(string(c.ctx.Request.Header.ContentType())); ct == "application/wasm" {
		var err error
		if module, err = requestBody(c); err != nil {
			return err
		}
		module = append([]byte{}, module...) // not nil even when empty: the module is the body
		if me, err = extensionFromQuery(c.ctx.QueryArgs()); err != nil {
			return err
		}
		me.Wasm = "sha256:" + directory.SHA256Hex(module) // for the checks: a module is given
	} else {
		if err := decodeBody(c, &me); err != nil {
			return err
		}
		if me.ID != "" && me.ID != id {
			return badRequest("the body's id " + strconv.Quote(me.ID) + " is not the id in the path, " + strconv.Quote(id))
		}
	}
	me.ID = id
	if err := checkExtension(tenant, me); err != nil {
		return err
	}
	ext := directory.Extension{ID: id, Tenant: tenant, Events: me.Events, URL: me.URL,
		Timeout: directory.Duration(me.Timeout), MemoryLimit: int64(me.MemoryLimit), OnError: me.OnError,
		MaxInstances: me.MaxInstances, MaxInput: int64(me.MaxInput), MaxOutput: int64(me.MaxOutput),
		AllowedHosts: me.AllowedHosts, Config: me.Config}
	switch {
	case module != nil:
	case strings.HasPrefix(me.Wasm, directory.WasmDataURLPrefix):
		b, err := base64.StdEncoding.DecodeString(me.Wasm[len(directory.WasmDataURLPrefix):])
		if err != nil {
			return badRequest("wasm: the inline module is not valid base64 (" + directory.WasmDataURLPrefix + "…, standard alphabet with padding)")
		}
		module = b
	case strings.HasPrefix(me.Wasm, "sha256:"):
		sha := strings.TrimPrefix(me.Wasm, "sha256:")
		if b, err := hex.DecodeString(sha); err != nil || len(b) != 32 || strings.ToLower(sha) != sha {
			return badRequest("wasm: " + strconv.Quote(shortText(me.Wasm)) + " is not a module reference: sha256: then 64 lower-case hex digits")
		}
		stored, err := s.store.Blob(tenant, sha)
		if err != nil {
			if e, ok := directory.AsError(err); ok && e.Code == directory.CodeNotFound {
				return badRequest("wasm: no module " + me.Wasm + " is stored for tenant " + tenant + "; send the module inline (" + directory.WasmDataURLPrefix + "…)")
			}
			return err
		}
		ext.WasmSHA256, ext.WasmSize = sha, int64(len(stored))
	case me.Wasm != "":
		return badRequest("wasm: " + strconv.Quote(shortText(me.Wasm)) + " is neither an inline module (" + directory.WasmDataURLPrefix +
			"…) nor sha256:<hex> of a stored one; `postern admin extensions put --wasm FILE` reads a file and sends it inline")
	}
	if module != nil {
		if err := checkModule(module); err != nil {
			return err
		}
		ext.WasmSHA256, ext.WasmSize = directory.SHA256Hex(module), int64(len(module))
	}
	old, err := s.findExtension(tenant, id)
	var he *httpError
	found := err == nil
	if !found && !(errors.As(err, &he) && he.status == fasthttp.StatusNotFound) {
		return err // not a new extension: a failed read, which must not lose the stored secrets
	}
	if found {
		ext.ManagedBy = old.ManagedBy
	}
	switch {
	case me.Secrets == nil && found && ext.URL == "":
		ext.Secrets = old.Secrets
	case me.Secrets != nil:
		if ext.Secrets, err = directory.SealExtensionSecrets(s.cfg.KEK, tenant, id, me.Secrets, old.Secrets); err != nil {
			return err
		}
	}
	res, err := s.propose(c, directory.MakeOp(directory.OpExtensionPut, directory.ExtensionPut{Extension: ext, Wasm: module}))
	if err != nil {
		return err
	}
	put, err := output[directory.Extension](res, 0)
	if err != nil {
		return err
	}
	status := fasthttp.StatusOK
	if put.Version == 1 {
		status = fasthttp.StatusCreated
	}
	return writeJSON(c.ctx, status, viewExtension(put))
}

func (s *Server) deleteExtension(c *call) error {
	x, err := s.findExtension(c.param("tenant"), c.param("extension"))
	if err != nil {
		return err
	}
	if _, err := s.propose(c, directory.MakeOp(directory.OpExtensionDelete, directory.Ref{Tenant: x.Tenant, ID: x.ID})); err != nil {
		return err
	}
	c.ctx.SetStatusCode(fasthttp.StatusNoContent)
	return nil
}

// checkExtension applies the manifest's rules to one extension (as the only one of a manifest for the
// tenant): its id, one of wasm or url, known events, the bounds of timeout and memory_limit, on_error,
// allowed_hosts. Every problem is in the message, named by its field.
func checkExtension(tenant string, me manifest.Extension) error {
	m := manifest.Manifest{Tenant: tenant, Extensions: []manifest.Extension{me}}
	err := m.Validate()
	if err == nil {
		return nil
	}
	problems, ok := err.(manifest.Errors)
	if !ok {
		return badRequest(err.Error())
	}
	var msgs []string
	for _, p := range problems {
		const prefix = "extensions[0]"
		if !strings.HasPrefix(p.Field, prefix) {
			continue // not about the extension (the tenant id is checked elsewhere)
		}
		p.Field = strings.TrimPrefix(strings.TrimPrefix(p.Field, prefix), ".")
		msgs = append(msgs, p.Error())
	}
	if len(msgs) == 0 {
		return nil
	}
	return badRequest(strings.Join(msgs, "; "))
}

// checkModule refuses what cannot be a module before it enters the raft log. The module is compiled by
// each node's runtime later; a module that fails there fails its calls, under its on_error policy.
func checkModule(b []byte) error {
	switch {
	case len(b) == 0:
		return badRequest("wasm: the module is empty")
	case len(b) > maxModuleSize:
		return apiError(fasthttp.StatusRequestEntityTooLarge, "too_large",
			"wasm: the module is "+itoa(uint64(len(b)))+" bytes, more than "+itoa(maxModuleSize))
	case !bytes.HasPrefix(b, wasmMagic):
		return badRequest(`wasm: not a WebAssembly binary module (it does not start with "\0asm" version 1)`)
	}
	return nil
}

// extensionQuery are the query parameters of a PUT whose body is the module itself.
var extensionQuery = []string{"events", "timeout", "memory_limit", "on_error", "allowed_hosts", "config.KEY"}

// extensionFromQuery reads an extension's fields from query parameters: events and allowed_hosts
// repeated or comma-separated, config.KEY=VALUE for each configuration entry.
func extensionFromQuery(args *fasthttp.Args) (manifest.Extension, error) {
	var me manifest.Extension
	for k, v := range args.All() {
		key, val := string(k), string(v)
		var err error
		switch {
		case key == "events":
			me.Events = append(me.Events, splitList(val)...)
		case key == "allowed_hosts":
			me.AllowedHosts = append(me.AllowedHosts, splitList(val)...)
		case key == "on_error":
			me.OnError = val
		case key == "timeout":
			me.Timeout, err = manifest.ParseDuration(val)
		case key == "memory_limit":
			me.MemoryLimit, err = manifest.ParseByteSize(val)
		case strings.HasPrefix(key, "secrets."):
			return me, badRequest(key + ": send secrets in a JSON body, not in the URL, which proxies and access logs keep")
		case strings.HasPrefix(key, "config."):
			if me.Config == nil {
				me.Config = map[string]string{}
			}
			me.Config[strings.TrimPrefix(key, "config.")] = val
		default:
			return me, badRequest("unknown query parameter " + strconv.Quote(key) + " with an application/wasm body: use " + strings.Join(extensionQuery, ", "))
		}
		if err != nil {
			return me, badRequest(key + ": " + err.Error())
		}
	}
	return me, nil
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// shortText keeps a client's value short enough to repeat in an error message.
func shortText(s string) string {
	if r := []rune(s); len(r) > 64 {
		return string(r[:64]) + "…"
	}
	return s
}
