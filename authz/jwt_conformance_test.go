package authz

import (
	"bytes"
	"encoding/json"
	"errors"
	"github.com/agentos-authz/agentos-authz/authz/serviceaccount"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/agentos-authz/agentos-authz/authz/internal/jwtauth"
	"github.com/agentos-authz/agentos-authz/internal/conformance"
	"github.com/agentos-authz/agentos-authz/internal/jwttest"
)

// TestConformanceJWT runs the JWT part of every conformance vector
// (test/testdata/conformance, README there; read by internal/conformance)
// through Verify: the vector's jwt: section and env become a Verifier, its
// token is minted as the harness would, and the outcome is compared where
// it is the verifier's: a 401 token detail, or a valid token (200 with
// identity headers, or 403). Credential extraction, paths, scopes and the
// security key are Decide's and not checked here. Startup vectors about
// the jwt: section are checked against JWTConfig.problems.
func TestConformanceJWT(t *testing.T) {
	_, files, keys, err := conformance.Load()
	if err != nil {
		t.Fatalf("conformance material: %v", err)
	}
	minter := conformance.Minter{Keys: keys, Now: jwttest.Clock}
	ran, other := 0, 0
	for _, f := range files {
		groups, err := f.Groups()
		if err != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
		for _, g := range groups {
			for i := range g.Vectors {
				vec := &g.Vectors[i]
				t.Run(vec.Name, func(t *testing.T) {
					if runJWTVector(t, vec, g, keys, minter) {
						ran++
					} else {
						other++
					}
				})
			}
		}
	}
	if ran == 0 {
		t.Fatal("no conformance vector is about the verifier")
	}
	t.Logf("conformance vectors through Verify/problems: %d run, %d not about the verifier", ran, other)
}

// runJWTVector checks the vector; false when it is not about the verifier.
func runJWTVector(t *testing.T, vec *conformance.Vector, g conformance.Group, keys *conformance.Keys, minter conformance.Minter) bool {
	sub := &conformance.Substituter{Keys: keys, Dir: t.TempDir()}
	cfgMap := map[string]any{}
	if g.Config != nil {
		text, err := sub.Config(g.Config)
		if err != nil {
			t.Fatalf("config: %v", err)
		}
		if err := json.Unmarshal(text, &cfgMap); err != nil {
			t.Fatalf("config: %v", err)
		}
	}
	env, err := sub.Env(g.Env)
	if err != nil {
		t.Fatal(err)
	}
	jwtSection, _ := cfgMap["jwt"].(map[string]any)
	var cfg JWTConfig
	decodeErr := decodeJWTSection(jwtSection, &cfg)
	for k, v := range env {
		switch k {
		case "JWT_VERIFICATION_KEY":
			cfg.VerificationKeys = append(cfg.VerificationKeys, v)
		case "JWT_JWKS_FILE":
			cfg.JWKSFile = v
		case "AGENT_OS_ID":
			cfgMap["os_id"] = v
		}
	}

	if vec.Startup() {
		return runJWTStartup(t, vec, &cfg, decodeErr)
	}
	if decodeErr != nil {
		t.Fatalf("decode jwt section: %v", decodeErr)
	}
	if !cfg.HasSource() || vec.Token == nil || vec.Token2 != nil || vec.Request.Omit != "" || strings.EqualFold(vec.Request.Method, "OPTIONS") {
		return false
	}
	if vec.Token.Raw != nil && strings.HasPrefix(*vec.Token.Raw, serviceaccount.TokenPrefix) {
		return false // a service-account token (docs/CONTRACT.md §8), never decoded as a JWT
	}
	if len(vec.Expect.Status) != 1 {
		return false // a choice of statuses: not a verifier-only outcome
	}
	status := vec.Expect.Status[0]
	if h := vec.Expect.Headers["x-agentos-auth"].Exact; h != nil && (*h == "none" || *h == "security-key") {
		return false
	}
	var detail, prefix string
	if vec.Expect.Detail != nil {
		detail = *vec.Expect.Detail
	}
	if vec.Expect.DetailPrefix != nil {
		prefix = *vec.Expect.DetailPrefix
	}
	tokenDetail := detail == detailExpired || detail == detailInvalidAudience || detail == detailInvalidSubject ||
		strings.HasPrefix(detail, detailInvalidPrefix) || prefix == detailInvalidPrefix
	switch {
	case status == 401 && !tokenDetail, status == 400:
		return false
	case status != 401 && status != 200 && status != 403:
		return false
	}
	for _, l := range vec.Request.Headers {
		name, val := l.Key, l.Value
		// Only a token sent as is ("Bearer <t>", a bare token, or a
		// cookie) reaches Verify unchanged; other shapes are the
		// credential extractor's business.
		before, after, found := strings.Cut(val, "{token}")
		if !found {
			continue
		}
		plain := (strings.EqualFold(before, "bearer ") || before == "") && after == ""
		cookie := name == "cookie" && strings.HasSuffix(before, "=") && (after == "" || strings.HasPrefix(after, ";"))
		if !plain && !cookie {
			return false
		}
	}
	if key, _ := cfgMap["security_key"].(string); key != "" && vec.Token.Raw != nil && *vec.Token.Raw == key {
		return false
	}

	var aud []string
	if cfg.VerifyAudience {
		aud = cfg.Audience
		if len(aud) == 0 {
			if os, _ := cfgMap["os_id"].(string); os != "" {
				aud = []string{os}
			}
		}
	}
	vc := cfg.verifierConfig()
	v, err := jwtauth.New(&vc, jwtauth.Options{Audience: aud, Clock: jwttest.Clock})
	if err != nil {
		t.Fatalf("jwtauth.New: %v", err)
	}
	raw, err := minter.Mint(*vec.Token)
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	id, jf := v.Verify(t.Context(), raw)
	var f *failure
	if jf != nil {
		f = tokenFailure(jf)
	}
	if status == 401 {
		if f == nil {
			t.Fatalf("Verify = valid, want %q%q", detail, prefix)
		}
		if detail != "" && f.Detail != detail || prefix != "" && !strings.HasPrefix(f.Detail, prefix) {
			t.Fatalf("Verify detail = %q, want %q%q", f.Detail, detail, prefix)
		}
		return true
	}
	if f != nil {
		t.Fatalf("Verify = %q, want a valid token (vector status %v)", f.Detail, status)
	}
	got := map[string]string{}
	if id.UserID != "" {
		got["x-agentos-user-id"] = id.UserID
	}
	if id.SessionID != "" {
		got["x-agentos-session-id"] = id.SessionID
	}
	if len(id.Scopes) > 0 && cfgMap["authorization"] != false {
		got["x-agentos-scopes"] = strings.Join(id.Scopes, " ")
	}
	for _, h := range id.Forward {
		got[h.Name] = h.Value
	}
	for name, want := range vec.Expect.Headers {
		if name == "x-agentos-auth" || name == "x-agentos-accessible-ids" || strings.HasPrefix(name, "x-agentos-scopes") && cfgMap["authorization"] == false {
			continue
		}
		switch {
		case want.Exact != nil:
			if got[name] != *want.Exact {
				t.Errorf("%s = %q, want %q", name, got[name], *want.Exact)
			}
		case want.JSON != nil:
			var g, w any
			if err := json.Unmarshal([]byte(got[name]), &g); err != nil || json.Unmarshal(want.JSON, &w) != nil || !jsonEqual(g, w) {
				t.Errorf("%s = %s, want JSON %s", name, got[name], want.JSON)
			}
		}
	}
	for _, name := range vec.Expect.AbsentHeaders {
		if _, ok := got[name]; ok {
			t.Errorf("%s = %q, want absent", name, got[name])
		}
	}
	return true
}

// runStartup checks a startup vector whose problem is in the jwt: section.
func runJWTStartup(t *testing.T, vec *conformance.Vector, cfg *JWTConfig, decodeErr error) bool {
	jwtWords := []string{"jwks_file", "leeway", "algorithms", "ES256", "roles"}
	ours := false
	for _, s := range vec.Expect.StderrContains {
		for _, w := range jwtWords {
			ours = ours || strings.EqualFold(s, w)
		}
	}
	if !ours {
		return false
	}
	if decodeErr != nil {
		return true // the YAML decoder refuses it (it names the field, see config_decode.go)
	}
	errs := problemsOf(t, cfg)
	if len(errs) == 0 {
		t.Fatal("the jwt section compiled without a problem, want a startup error")
	}
	text := errors.Join(errs...).Error()
	for _, s := range vec.Expect.StderrContains {
		if !strings.Contains(strings.ToLower(text), strings.ToLower(s)) {
			t.Errorf("the jwt section's problems = %q, want them to mention %q", text, s)
		}
	}
	return true
}

// decodeJWTSection decodes the jwt: section strictly, as the loader does.
func decodeJWTSection(section map[string]any, cfg *JWTConfig) error {
	*cfg = defaultJWTConfig()
	if section == nil {
		return nil
	}
	text, err := yaml.Marshal(section)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(text))
	dec.KnownFields(true)
	return dec.Decode(cfg)
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}
