// Package manifest parses and validates a tenant manifest: the one file (YAML for people, JSON for programs)
// in which an operator declares everything about a tenant — its sign-in methods, sign-up and MFA flows,
// branding, apps, proxied routes, upstream identity providers and Wasm extensions. `postern apply -f` reads
// it; the admin API accepts its JSON form.
//
// The package exists so that every problem with a manifest is found in one place, before anything is written
// to the directory, and is reported the way an operator can act on it: every problem at once (not the first
// one only), each with the field path ("apps[1].redirect_uris[0]") and, for YAML, the line. A manifest that
// passes [ParseYAML] or [ParseJSON] is safe to turn into directory commands; defaults (generated client ids and
// secrets, token lifetimes, extension timeouts) are applied later by the caller, not here.
//
// Three choices shape the parser:
//
//   - ${NAME} references are replaced in scalar values after the YAML is parsed into a node tree, never by
//     rewriting the text, so a secret that contains ": " or "#" stays one plain string and cannot change the
//     document's structure. "$${" writes a literal "${".
//   - Unknown fields are errors. The node tree is walked against the Go types (their yaml tags), so every
//     unknown field, wrong type and duplicate key is reported with its line, with a did-you-mean suggestion
//     where one is close.
//   - YAML aliases (*name) and merge keys (<<) are refused: they make line numbers ambiguous and open the door
//     to alias bombs, and a manifest is short enough to spell out.
//
// The JSON form has the same field names and shape as the YAML form; its errors carry Line 0.
//
// The package imports only the standard library and gopkg.in/yaml.v3; it knows nothing of HTTP, raft, Badger
// or the rest of Postern, so the CLI, the admin API and tests can all use it.
package manifest
