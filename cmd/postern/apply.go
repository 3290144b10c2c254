package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"postern.dev/postern/directory"
	"postern.dev/postern/directory/manifest"
)

// runApply creates or updates one tenant from a manifest file. The manifest is checked here first, so a
// bad one is reported in full (every problem, with its line) and nothing is sent; files it names (Wasm
// modules, a logo) are read relative to the manifest and sent inline.
func runApply(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("apply", "apply -f FILE [--server URL] [--token T] [--data DIR]")
	file := fs.String("f", "", "the manifest (YAML); - for standard input")
	var cf clientFlags
	cf.add(fs)
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if *file == "" {
		return usagef("-f FILE is required")
	}
	var raw []byte
	var err error
	dir := "."
	if *file == "-" {
		raw, err = io.ReadAll(os.Stdin)
	} else {
		raw, err = os.ReadFile(*file)
		dir = filepath.Dir(*file)
	}
	if err != nil {
		return fmt.Errorf("reading the manifest: %w", err)
	}
	m, err := manifest.ParseYAML(raw, manifest.Options{})
	var problems manifest.Errors
	if errors.As(err, &problems) {
		return manifestProblems(problems)
	}
	if err != nil {
		return err
	}
	if err := inlineFiles(m, dir); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var report json.RawMessage
	if err := c.json("PUT", "/admin/v1/tenants/"+url.PathEscape(m.Tenant)+"/manifest", m, &report); err != nil {
		return err
	}
	var pretty any
	json.Unmarshal(report, &pretty)
	out, _ := json.MarshalIndent(pretty, "", "  ")
	fmt.Fprintln(stdout, string(out))
	return nil
}

// inlineFiles replaces file paths in the manifest with their content: Wasm modules as data URLs the API
// stores by content hash, and a logo as a data URL.
func inlineFiles(m *manifest.Manifest, dir string) error {
	for i := range m.Extensions {
		w := m.Extensions[i].Wasm
		if w == "" || strings.HasPrefix(w, "data:") || strings.HasPrefix(w, "sha256:") {
			continue
		}
		b, err := os.ReadFile(resolve(dir, w))
		if err != nil {
			return fmt.Errorf("extensions[%d].wasm: %w", i, err)
		}
		m.Extensions[i].Wasm = directory.WasmDataURLPrefix + base64.StdEncoding.EncodeToString(b)
	}
	if l := m.Branding.Logo; l != "" && !strings.Contains(l, "://") && !strings.HasPrefix(l, "data:") {
		b, err := os.ReadFile(resolve(dir, l))
		if err != nil {
			return fmt.Errorf("branding.logo: %w", err)
		}
		ct := mime.TypeByExtension(filepath.Ext(l))
		if ct == "" {
			ct = "application/octet-stream"
		}
		m.Branding.Logo = "data:" + ct + ";base64," + base64.StdEncoding.EncodeToString(b)
	}
	return nil
}

func resolve(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// manifestProblems lists every problem of a manifest, one per line.
func manifestProblems(ps manifest.Errors) error {
	var b strings.Builder
	fmt.Fprintf(&b, "manifest has %d problem(s); nothing was applied:", len(ps))
	for _, p := range ps {
		b.WriteString("\n  " + p.Error())
	}
	return errors.New(b.String())
}
