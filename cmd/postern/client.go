package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// apiClient talks to the admin API for the operator commands.
type apiClient struct {
	server string
	token  string
	http   *http.Client
}

// clientFlags adds --server, --token and --data to a command's flags.
type clientFlags struct {
	server, token, data string
}

func (c *clientFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&c.server, "server", "http://127.0.0.1:8081", "admin API base URL")
	fs.StringVar(&c.token, "token", "", "admin token (default: POSTERN_ADMIN_TOKEN, else DIR/admin-token with --data)")
	fs.StringVar(&c.data, "data", "", "a postern dev data directory to read the admin token from")
}

func (c *clientFlags) client() (*apiClient, error) {
	token := c.token
	if token == "" {
		token = os.Getenv("POSTERN_ADMIN_TOKEN")
	}
	if token == "" {
		dir := c.data
		if dir == "" {
			dir = "./postern-data"
		}
		b, err := os.ReadFile(filepath.Join(dir, "admin-token"))
		if err != nil && c.data != "" {
			return nil, fmt.Errorf("reading the admin token: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		return nil, usagef("no admin token: give --token, set POSTERN_ADMIN_TOKEN, or --data DIR of postern dev")
	}
	return &apiClient{server: strings.TrimRight(c.server, "/"), token: token, http: &http.Client{Timeout: 5 * time.Minute}}, nil
}

// apiError is an error body of the admin API.
type apiError struct {
	Status  int
	Code    string
	Message string
	Details []struct {
		Field   string `json:"field"`
		Line    int    `json:"line"`
		Message string `json:"message"`
	}
}

func (e *apiError) Error() string {
	if len(e.Details) > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "manifest has %d problem(s):", len(e.Details))
		for _, d := range e.Details {
			b.WriteString("\n  ")
			if d.Line > 0 {
				fmt.Fprintf(&b, "line %d: ", d.Line)
			}
			if d.Field != "" {
				b.WriteString(d.Field + ": ")
			}
			b.WriteString(d.Message)
		}
		return b.String()
	}
	return fmt.Sprintf("%s (HTTP %d %s)", e.Message, e.Status, e.Code)
}

// do sends a request; body may be nil, []byte or any JSON value. A non-2xx answer becomes *apiError.
func (c *apiClient) do(method, path string, body any, contentType string) (*http.Response, error) {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case io.Reader:
		r = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		r, contentType = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, c.server+path, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reaching the admin API at %s: %w", c.server, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var eb struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Details json.RawMessage
		} `json:"error"`
	}
	ae := &apiError{Status: resp.StatusCode}
	if json.Unmarshal(raw, &eb) == nil && eb.Error.Code != "" {
		ae.Code, ae.Message = eb.Error.Code, eb.Error.Message
		if len(eb.Error.Details) > 0 {
			json.Unmarshal(eb.Error.Details, &ae.Details)
		}
	} else {
		ae.Code, ae.Message = "http_error", strings.TrimSpace(string(raw))
	}
	return nil, ae
}

// getJSON sends a request and decodes a JSON answer into out (nil to discard).
func (c *apiClient) json(method, path string, body any, out any) error {
	resp, err := c.do(method, path, body, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("reading the admin API's answer: %w", err)
	}
	return nil
}
