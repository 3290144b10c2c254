package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"postern.dev/postern/directory"
)

// resources of `postern admin`, with the field shown beside the id in a plain listing.
var adminResources = map[string]string{"tenants": "display_name", "apps": "client_id", "users": "email", "groups": "name", "keys": "state",
	"extensions": "events"}

const adminUsage = `admin RESOURCE VERB [ID] [--tenant T] [--json OBJECT | field=value ...] [--output json] [--server URL] [--token T]

RESOURCE is tenants, apps, users, groups, keys or extensions; VERB is list, get, create, update or delete.
groups also take: members GROUP, add-member GROUP USER, remove-member GROUP USER.
keys (a tenant's token-signing keys) take: list, and rotate [alg=ES256|RS256|EdDSA]. A rotation publishes
a next key; the following one makes it sign and retires the old key until its tokens have expired. Let
relying parties refresh the JWK Set (5 minutes) between the two.
extensions take: list, get ID, put ID, delete ID. put creates or replaces the whole extension: --wasm FILE
sends a module (or wasm=sha256:HEX names one the tenant already stored, or url=https://... an HTTP
extension), with events=E1,E2 and timeout, memory_limit, on_error, allowed_hosts=H1,H2, config.KEY=VALUE,
secrets.NAME=VALUE (answers show secret_names only; a put without secrets keeps the stored ones).
Fields: --json '{"email":"a@example.com"}' or field=value pairs (dots nest: profile.given_name=Ann;
values that parse as JSON, such as true, 3 or ["a"], are taken as JSON).
Examples:
  postern admin tenants create acme display_name="Acme Shop"
  postern admin users create --tenant acme email=ann@example.com password=correct-horse-battery
  postern admin apps list --tenant acme --output json
  postern admin keys rotate --tenant acme alg=RS256
  postern admin extensions put --tenant acme add-claims --wasm add_claims.wasm events=OnTokenIssuanceStart`

func runAdmin(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("admin", adminUsage)
	tenant := fs.String("tenant", "", "tenant of the resource (all resources but tenants)")
	data := fs.String("json", "", "the resource as a JSON object, for create and update")
	wasmFile := fs.String("wasm", "", "extensions put: a WebAssembly module file, sent inline")
	output := fs.String("output", "text", "text or json")
	var cf clientFlags
	cf.add(fs)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return usagef("need RESOURCE and VERB")
	}
	res, verb, rest := pos[0], pos[1], pos[2:]
	if _, ok := adminResources[res]; !ok {
		return usagef("unknown resource %q: one of tenants, apps, users, groups, keys, extensions", res)
	}
	if *output != "text" && *output != "json" {
		return usagef("--output must be text or json")
	}
	base := "/admin/v1/tenants"
	if res != "tenants" {
		if *tenant == "" {
			return usagef("--tenant is required for %s", res)
		}
		base += "/" + url.PathEscape(*tenant) + "/" + res
	}
	// Split positional arguments into ids and field=value pairs.
	var ids []string
	fields := map[string]any{}
	for _, a := range rest {
		if k, v, ok := strings.Cut(a, "="); ok && k != "" {
			setField(fields, k, v)
		} else {
			ids = append(ids, a)
		}
	}
	body := func() (any, error) {
		if *data != "" {
			var v map[string]any
			if err := json.Unmarshal([]byte(*data), &v); err != nil {
				return nil, usagef("--json is not a JSON object: %v", err)
			}
			for k, x := range fields {
				v[k] = x
			}
			return v, nil
		}
		return fields, nil
	}
	if *wasmFile != "" && res != "extensions" {
		return usagef("--wasm is for extensions put only")
	}
	needID := func(n int) error {
		if len(ids) != n {
			return usagef("%s %s takes %d id argument(s), got %d", res, verb, n, len(ids))
		}
		return nil
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	if res == "keys" {
		return adminKeys(c, base, verb, ids, body, *output == "json", stdout)
	}
	if res == "extensions" {
		return adminExtensions(c, base, verb, ids, body, *wasmFile, *output == "json", stdout)
	}
	var out any
	switch verb {
	case "list":
		if err := needID(0); err != nil {
			return err
		}
		var list []map[string]any
		if err := c.json("GET", base, nil, &list); err != nil {
			return err
		}
		if *output == "json" {
			return printJSON(stdout, list, false)
		}
		return printTable(stdout, list, adminResources[res])
	case "get":
		if err := needID(1); err != nil {
			return err
		}
		err = c.json("GET", base+"/"+url.PathEscape(ids[0]), nil, &out)
	case "create":
		b, err2 := body()
		if err2 != nil {
			return err2
		}
		if res == "tenants" {
			if err := needID(1); err != nil {
				return err
			}
			b.(map[string]any)["id"] = ids[0]
		} else if err := needID(0); err != nil {
			return err
		}
		err = c.json("POST", base, b, &out)
	case "update":
		if err := needID(1); err != nil {
			return err
		}
		b, err2 := body()
		if err2 != nil {
			return err2
		}
		err = c.json("PATCH", base+"/"+url.PathEscape(ids[0]), b, &out)
	case "delete":
		if err := needID(1); err != nil {
			return err
		}
		if err := c.json("DELETE", base+"/"+url.PathEscape(ids[0]), nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted %s %s\n", strings.TrimSuffix(res, "s"), ids[0])
		return nil
	case "members", "add-member", "remove-member":
		if res != "groups" {
			return usagef("%s is a verb of groups only", verb)
		}
		switch verb {
		case "members":
			if err := needID(1); err != nil {
				return err
			}
			var list []map[string]any
			if err := c.json("GET", base+"/"+url.PathEscape(ids[0])+"/members", nil, &list); err != nil {
				return err
			}
			if *output == "json" {
				return printJSON(stdout, list, false)
			}
			return printTable(stdout, list, "email")
		case "add-member", "remove-member":
			if err := needID(2); err != nil {
				return err
			}
			method := map[string]string{"add-member": "PUT", "remove-member": "DELETE"}[verb]
			if err := c.json(method, base+"/"+url.PathEscape(ids[0])+"/members/"+url.PathEscape(ids[1]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s: %s in %s\n", verb, ids[1], ids[0])
			return nil
		}
	default:
		return usagef("unknown verb %q: one of list, get, create, update, delete", verb)
	}
	if err != nil {
		return err
	}
	return printJSON(stdout, out, *output == "text")
}

// adminKeys runs the verbs of the keys resource: list, and rotate (one step of a rotation; the answer is
// the keys after it).
func adminKeys(c *apiClient, base, verb string, ids []string, body func() (any, error), asJSON bool, stdout io.Writer) error {
	if len(ids) != 0 {
		return usagef("keys %s takes no id argument, got %d", verb, len(ids))
	}
	var list []map[string]any
	switch verb {
	case "list":
		if err := c.json("GET", base, nil, &list); err != nil {
			return err
		}
	case "rotate":
		b, err := body()
		if err != nil {
			return err
		}
		if err := c.json("POST", base+"/rotate", b, &list); err != nil {
			return err
		}
	default:
		return usagef("unknown verb %q for keys: list or rotate", verb)
	}
	if asJSON {
		// Every listed object carries its id (CONTRACT.md); a key's id is its kid.
		for _, k := range list {
			if _, ok := k["id"]; !ok {
				k["id"] = k["kid"]
			}
		}
		return printJSON(stdout, list, false)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tCREATED\tNOT AFTER")
	for _, k := range list {
		fmt.Fprintf(tw, "%v\t%v\t%v\t%v\t%v\n", k["kid"], k["alg"], k["state"], valueOr(k["created_at"], ""), valueOr(k["not_after"], ""))
	}
	return tw.Flush()
}

// adminExtensions runs the verbs of the extensions resource: list, get, put (create or replace the whole
// extension; --wasm FILE inlines a module) and delete. Answers show a module's hash and size, not its bytes.
func adminExtensions(c *apiClient, base, verb string, ids []string, body func() (any, error), wasmFile string, asJSON bool, stdout io.Writer) error {
	want := map[string]int{"list": 0, "get": 1, "put": 1, "delete": 1}
	n, ok := want[verb]
	if !ok {
		return usagef("unknown verb %q for extensions: list, get, put or delete", verb)
	}
	if len(ids) != n {
		return usagef("extensions %s takes %d id argument(s), got %d", verb, n, len(ids))
	}
	if wasmFile != "" && verb != "put" {
		return usagef("--wasm is for extensions put only")
	}
	var out any
	switch verb {
	case "list":
		var list []map[string]any
		if err := c.json("GET", base, nil, &list); err != nil {
			return err
		}
		if asJSON {
			return printJSON(stdout, list, false)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tEVENTS\tMODULE OR URL\tVERSION")
		for _, x := range list {
			var events []string
			evs, _ := x["events"].([]any)
			for _, e := range evs {
				events = append(events, fmt.Sprint(e))
			}
			target := valueOr(x["url"], "")
			if sha, ok := x["wasm_sha256"].(string); ok {
				size := "?"
				if n, ok := x["wasm_size"].(float64); ok { // a JSON number: print it whole, not as 3.3e+06
					size = strconv.FormatInt(int64(n), 10)
				}
				target = fmt.Sprintf("sha256:%.12s… (%s bytes)", sha, size)
			}
			fmt.Fprintf(tw, "%v\t%s\t%v\t%v\n", x["id"], strings.Join(events, ","), target, x["version"])
		}
		return tw.Flush()
	case "get":
		if err := c.json("GET", base+"/"+url.PathEscape(ids[0]), nil, &out); err != nil {
			return err
		}
	case "put":
		b, err := body()
		if err != nil {
			return err
		}
		fields := b.(map[string]any)
		if wasmFile != "" {
			if _, ok := fields["wasm"]; ok {
				return usagef("give the module as --wasm FILE or wasm=..., not both")
			}
			mod, err := os.ReadFile(wasmFile)
			if err != nil {
				return fmt.Errorf("reading the module: %w", err)
			}
			fields["wasm"] = directory.WasmDataURLPrefix + base64.StdEncoding.EncodeToString(mod)
		}
		// Lists may be written E1,E2 and configuration and secret values are strings, whatever they look like.
		for _, k := range []string{"events", "allowed_hosts"} {
			if v, ok := fields[k].(string); ok {
				fields[k] = strings.Split(v, ",")
			}
		}
		for _, field := range []string{"config", "secrets"} {
			m, ok := fields[field].(map[string]any)
			if !ok {
				continue
			}
			for k, v := range m {
				if _, isString := v.(string); !isString {
					j, _ := json.Marshal(v)
					m[k] = string(j)
				}
			}
		}
		if err := c.json("PUT", base+"/"+url.PathEscape(ids[0]), fields, &out); err != nil {
			return err
		}
	case "delete":
		if err := c.json("DELETE", base+"/"+url.PathEscape(ids[0]), nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted extension %s\n", ids[0])
		return nil
	}
	return printJSON(stdout, out, !asJSON)
}

// setField sets a dotted key in a JSON object; the value is JSON when it parses as JSON, else a string.
func setField(m map[string]any, key, value string) {
	parts := strings.Split(key, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	var v any
	if err := json.Unmarshal([]byte(value), &v); err != nil {
		v = value
	}
	m[parts[len(parts)-1]] = v
}

func printJSON(w io.Writer, v any, indent bool) error {
	var b []byte
	var err error
	if indent {
		b, err = json.MarshalIndent(v, "", "  ")
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

func printTable(w io.Writer, list []map[string]any, field string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ID\t%s\n", strings.ToUpper(field))
	for _, item := range list {
		fmt.Fprintf(tw, "%v\t%v\n", item["id"], valueOr(item[field], ""))
	}
	return tw.Flush()
}

func valueOr(v any, def string) any {
	if v == nil {
		return def
	}
	return v
}
