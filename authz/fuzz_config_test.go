package authz

import (
	"regexp"
	"strings"
	"testing"
)

// fieldPath is how every configuration problem starts: its YAML path
// ("jwt.algorithms[1]: ", "scope_mappings[\"GET /x\"]: "), or "config: "
// for a problem of the whole document (not YAML, several documents).
// An index is a number or a quoted key, which may hold any character
// (`["0]"]`: the key 0] quoted by joinPath).
var fieldPath = regexp.MustCompile(`^(config: |([a-zA-Z_][a-zA-Z0-9_]*|` + pathIndex + `)(\.[a-zA-Z_][a-zA-Z0-9_]*|` + pathIndex + `)*: )`)

// pathIndex is one [index] of a field path: [3] or ["a quoted key"].
const pathIndex = `\[([0-9]+|"(?:[^"\\]|\\.)*")\]`

// FuzzLoad: whatever the file holds, Load never panics, and each problem it
// reports names its field (docs/CONTRACT.md §4: "every problem named with
// its field").
func FuzzLoad(f *testing.F) {
	for _, seed := range []string{
		"",
		"os_id: x\njwt:\n  algorithms: [HS256]\n  verification_keys: [\"" + hsKey + "\"]\n",
		"jwt: {algorithms: [RS257, none], leeway: -1s}\nunmapped_routes: maybe\n",
		"scope_mappings: {\"DELETE /danger/\": [agent_os:admin], \"GET /a\": [\"x y\"]}\n",
		"interfaces: [{type: agui}, {type: a2a, prefix: /a//b}, {type: mcp}]\n",
		"service_accounts: {db_url: 'mysql://u:p@h/db', max_failures: -1}\n",
		"upstream: {identity_token: true, listing_filter: maybe, signing_key_file: /nonexistent}\n",
		"jwt: {verification_key_files: [/nonexistent], jwks_file: /nonexistent, jwks_ca_file: /nonexistent}\n",
		"- a list\n",
		"a: 1\n---\nb: 2\n",
		"jwt: [1, 2]\nexcluded_routes: {a: b}\n",
		"&a [*a]\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		_, err := Load([]byte(text), nil, LoadOptions{})
		if err == nil {
			return
		}
		problems := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			problems = j.Unwrap()
		}
		for _, p := range problems {
			// One error type names every problem (STYLE.md §14).
			if fe, ok := p.(*FieldError); !ok || fe.Field == "" {
				t.Errorf("Load(%q): problem %q is a %T, not a *FieldError naming its field", text, p, p)
			}
			if msg := p.Error(); !fieldPath.MatchString(msg) {
				t.Errorf("Load(%q): problem %q does not name its field", text, msg)
			}
		}
	})
}

// FuzzServiceAccountToken: whatever follows agno_pat_ (or looks like it),
// a service-account credential is answered with a contract status, never
// a panic, and the token never comes back in the detail or the headers.
func FuzzServiceAccountToken(f *testing.F) {
	fx := newSAFixture(f)
	a := newSAAuthorizer(f, hsConfig(saBlock(fx.url, "")))
	for _, seed := range []string{fx.valid, fx.revoked, fx.expired, "agno_pat_", "agno_pat_x", "agno_pat_" + strings.Repeat("A", 9000),
		"agno_pat_\x00\x7f", "AGNO_PAT_abc", "agno_pat_é", "Bearer agno_pat_abc", " agno_pat_abc"} {
		f.Add(seed, "10.0.0.1")
	}
	f.Fuzz(func(t *testing.T, tok, client string) {
		r := &Request{Method: "GET", Path: "/config", ClientAddr: client, Headers: map[string]string{"authorization": "Bearer " + tok}}
		d := a.Decide(t.Context(), r)
		switch d.Status {
		case 200, 401, 403, 429, 503:
		default:
			t.Fatalf("Decide(%q) = %d %s, not a contract status", tok, d.Status, d.Reason)
		}
		if len(tok) >= 8 && strings.Contains(d.Detail, tok) {
			t.Errorf("Decide(%q): the detail %q holds the token", tok, d.Detail)
		}
		for _, h := range d.Upstream {
			if len(tok) >= 8 && strings.Contains(h.Value, tok) {
				t.Errorf("Decide(%q): upstream header %s holds the token", tok, h.Name)
			}
		}
	})
}
