package scopes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/agentos-authz/agentos-authz/internal/conformance"
)

// defaultExcluded is docs/CONTRACT.md §4's default excluded_routes.
var defaultExcluded = []string{"/", "/health", "/info", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"}

// vectorConfig is the part of a configuration the engine and this walk need.
type vectorConfig struct {
	opts          Options
	authorization bool
	excluded      []string
	scopesClaim   string
}

// parseVectorConfig reads a conformance configuration. scope_mappings is read
// token by token: its order is the table's order.
func parseVectorConfig(raw json.RawMessage, env map[string]string) (vectorConfig, error) {
	c := vectorConfig{excluded: defaultExcluded, scopesClaim: "scopes"}
	var top map[string]json.RawMessage
	if len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &top); err != nil {
			return c, err
		}
	}
	var jwt struct {
		VerificationKeys []string `json:"verification_keys"`
		JWKSFile         string   `json:"jwks_file"`
		JWKSURL          string   `json:"jwks_url"`
		Validate         *bool    `json:"validate"`
		Claims           struct {
			Scopes string `json:"scopes"`
		} `json:"claims"`
	}
	if v, ok := top["jwt"]; ok {
		if err := json.Unmarshal(v, &jwt); err != nil {
			return c, fmt.Errorf("jwt: %w", err)
		}
	}
	if jwt.Claims.Scopes != "" {
		c.scopesClaim = jwt.Claims.Scopes
	}
	// docs/CONTRACT.md §4: authorization defaults to true with a JWT source.
	c.authorization = len(jwt.VerificationKeys) > 0 || jwt.JWKSFile != "" || jwt.JWKSURL != "" ||
		(jwt.Validate != nil && !*jwt.Validate) ||
		env["JWT_VERIFICATION_KEY"] != "" || env["JWT_JWKS_FILE"] != "" || env["JWT_JWKS_URL"] != ""
	if v, ok := top["authorization"]; ok {
		if err := json.Unmarshal(v, &c.authorization); err != nil {
			return c, fmt.Errorf("authorization: %w", err)
		}
	}
	if v, ok := top["admin_scope"]; ok {
		if err := json.Unmarshal(v, &c.opts.AdminScope); err != nil {
			return c, fmt.Errorf("admin_scope: %w", err)
		}
	}
	if v, ok := top["unmapped_routes"]; ok {
		if err := json.Unmarshal(v, &c.opts.Unmapped); err != nil {
			return c, fmt.Errorf("unmapped_routes: %w", err)
		}
	}
	if v, ok := top["excluded_routes"]; ok {
		c.excluded = nil
		if err := json.Unmarshal(v, &c.excluded); err != nil {
			return c, fmt.Errorf("excluded_routes: %w", err)
		}
	}
	if v, ok := top["interfaces"]; ok {
		var ifaces []struct {
			Type   string  `json:"type"`
			Prefix *string `json:"prefix"`
			Family string  `json:"family"`
		}
		if err := json.Unmarshal(v, &ifaces); err != nil {
			return c, fmt.Errorf("interfaces: %w", err)
		}
		for _, in := range ifaces {
			// docs/CONTRACT.md §5: prefix defaults to the type's mount.
			p, _ := DefaultPrefix(in.Type)
			if in.Prefix != nil {
				p = *in.Prefix
			}
			it := Interface{Type: in.Type, Prefix: p, Family: in.Family}
			c.opts.Interfaces = append(c.opts.Interfaces, it)
			if g := it.Excluded(); g != "" {
				c.excluded = append(c.excluded, g)
			}
		}
	}
	if v, ok := top["scope_mappings"]; ok {
		m, err := orderedMappings(v)
		if err != nil {
			return c, fmt.Errorf("scope_mappings: %w", err)
		}
		c.opts.Custom = m
	}
	return c, nil
}

// orderedMappings decodes a JSON object of key → list of strings, keeping the
// keys' order.
func orderedMappings(raw json.RawMessage) ([]Mapping, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not an object (%v)", err)
	}
	var out []Mapping
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("key %v is not a string", tok)
		}
		scopes := []string{}
		if err := dec.Decode(&scopes); err != nil {
			return nil, fmt.Errorf("%q: %w", key, err)
		}
		out = append(out, Mapping{Key: key, Scopes: scopes})
	}
	if _, err := dec.Token(); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return out, nil
}

// claimScopes reads the scopes claim as the JWT layer does: a list keeps its
// strings, a string is split on white space, anything else is no scope.
func claimScopes(raw json.RawMessage) []string {
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err == nil {
		var out []string
		for _, item := range list {
			var s string
			if json.Unmarshal(item, &s) == nil {
				out = append(out, s)
			}
		}
		return out
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return strings.Fields(s)
	}
	return nil
}

// simplePath normalises a vector's raw path the simple way: no query or
// fragment, decoded once, no trailing slash. ok is false for anything the
// service would answer 400, which is not a scope decision.
func simplePath(raw string) (string, bool) {
	p, _, _ := strings.Cut(raw, "?")
	p, _, _ = strings.Cut(p, "#")
	if strings.Contains(strings.ToLower(p), "%2f") {
		return "", false
	}
	dec, err := url.PathUnescape(p)
	if err != nil || !utf8.ValidString(dec) || !strings.HasPrefix(dec, "/") || strings.ContainsAny(dec, "\\") {
		return "", false
	}
	for _, r := range dec {
		if r < ' ' || r == 0x7f {
			return "", false
		}
	}
	if len(dec) > 1 {
		dec = strings.TrimSuffix(dec, "/")
	}
	if dec != "/" {
		for _, seg := range strings.Split(dec[1:], "/") {
			if seg == "" || seg == "." || seg == ".." {
				return "", false
			}
		}
	}
	return dec, true
}

func excludedPath(patterns []string, path string) bool {
	for _, p := range patterns {
		g, err := CompileGlob(p)
		if err != nil {
			continue
		}
		if g.Match(path) || g.Match(path+"/") {
			return true
		}
	}
	return false
}

// TestConformanceVectors walks every conformance vector (the vendored set,
// read by internal/conformance) that is a scope decision (a token, a 200 or
// 403, authorization on, not excluded, not OPTIONS, a path that is not a 400)
// and checks the engine agrees with its status, accessible ids and detail.
func TestConformanceVectors(t *testing.T) {
	_, files, _, err := conformance.Load()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, f := range files {
		groups, err := f.Groups()
		if err != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
		n := 0
		for _, g := range groups {
			for _, v := range g.Vectors {
				if checkVector(t, g.Config, g.Env, v) {
					n++
				}
			}
		}
		t.Logf("%s: %d scope decisions checked", filepath.Base(f.Path), n)
		total += n
	}
	// rbac.json alone holds well over a hundred scope decisions: a walk that
	// checks few has stopped reading the vectors.
	if total < 150 {
		t.Errorf("checked %d scope decisions, want at least 150", total)
	}
}

// checkVector checks one vector if it is a scope decision and says whether it was.
func checkVector(t *testing.T, cfgRaw json.RawMessage, env map[string]string, v conformance.Vector) bool {
	t.Helper()
	if len(v.Expect.Status) != 1 {
		return false
	}
	status := v.Expect.Status[0]
	if status != 200 && status != 403 {
		return false
	}
	if v.Token == nil || v.Token.Raw != nil || v.Token.PayloadRaw != nil {
		return false
	}
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(v.Token.Claims, &claims); err != nil || claims == nil {
		return false
	}
	method := v.Request.Method
	if method == "" {
		method = "GET"
	}
	if method == "OPTIONS" {
		return false
	}
	path, ok := simplePath(v.Request.Path)
	if !ok {
		return false
	}
	cfg, err := parseVectorConfig(cfgRaw, env)
	if err != nil {
		t.Errorf("%s: config: %v", v.Name, err)
		return false
	}
	if !cfg.authorization || excludedPath(cfg.excluded, path) {
		return false
	}
	table, err := Compile(cfg.opts)
	if err != nil {
		t.Errorf("%s: Compile: %v", v.Name, err)
		return false
	}
	scopes := claimScopes(claims[cfg.scopesClaim])
	set := table.Parse(scopes)
	res := table.Check(method, path, &set)
	call := fmt.Sprintf("%s: Check(%s %s, %q)", v.Name, method, path, scopes)

	if got := map[bool]int{true: 200, false: 403}[res.Allowed]; got != status {
		t.Errorf("%s = %d, want %d (rule %v, missing %q)", call, got, status, res.Rule, res.Missing())
		return true
	}
	if v.Expect.Detail != nil {
		if got := detail(res); got != *v.Expect.Detail {
			t.Errorf("%s detail = %q, want %q", call, got, *v.Expect.Detail)
		}
	}
	if want, ok := v.Expect.Headers["x-agentos-accessible-ids"]; ok {
		if want.Set == nil {
			t.Errorf("%s: accessible ids expectation %s is not a set", v.Name, want)
		}
		got := slices.Sorted(slices.Values(res.AccessibleIDs))
		if !res.Listing || !slices.Equal(got, slices.Sorted(slices.Values(want.Set))) {
			t.Errorf("%s accessible ids = %q (listing %v), want %q", call, res.AccessibleIDs, res.Listing, want.Set)
		}
	}
	if slices.Contains(v.Expect.AbsentHeaders, "x-agentos-accessible-ids") && res.Listing {
		t.Errorf("%s: filtered listing %q, want none", call, res.AccessibleIDs)
	}
	return true
}

// detail renders the contract's 403 detail from a Result.
func detail(r Result) string {
	if r.Allowed {
		return ""
	}
	if r.Unmapped {
		return "Insufficient permissions. No permission rule for this route"
	}
	return "Insufficient permissions. Required scope(s): " + strings.Join(r.DeniedScopes(), ", ")
}
