package authz

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
)

// testNow is the fixed clock of the decision tests.
var testNow = time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)

func testClock() time.Time { return testNow }

// hsConfig is a minimal HS256 configuration; extra YAML is appended.
func hsConfig(extra string) string {
	return "os_id: test-os\njwt:\n  algorithms: [HS256]\n  verification_keys: [\"" + hsKey + "\"]\n" + extra
}

func newTestAuthorizer(t testing.TB, yamlText string, envMap map[string]string, log *zap.Logger) *Authorizer {
	t.Helper()
	cfg, err := Load([]byte(yamlText), env(envMap), LoadOptions{})
	if err != nil {
		t.Fatalf("Load(%q) = %v", yamlText, err)
	}
	if log == nil {
		if tt, ok := t.(*testing.T); ok {
			log = zaptest.NewLogger(tt, zaptest.Level(zapcore.DebugLevel))
		}
	}
	a, err := New(cfg, Options{Logger: log, Clock: testClock})
	if err != nil {
		t.Fatalf("New(%q) = %v", yamlText, err)
	}
	return a
}

// claims are a test token's claims; exp defaults to an hour from testNow.
type claims map[string]any

// mint signs c with alg and key (an HMAC secret []byte or a private key).
func mint(t testing.TB, alg jwa.SignatureAlgorithm, key any, c claims) string {
	t.Helper()
	b := jwt.NewBuilder().IssuedAt(testNow).Expiration(testNow.Add(time.Hour))
	for k, v := range c {
		b = b.Claim(k, v)
	}
	tok, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(alg, key))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

func mintHS(t testing.TB, c claims) string { return mint(t, jwa.HS256, []byte(hsKey), c) }

func user(scopes ...string) claims {
	return claims{"sub": "u1", "session_id": "s1", "aud": "test-os", "scopes": scopes}
}

func bearerH(tok string) map[string]string {
	return map[string]string{"authorization": "Bearer " + tok}
}

func with(h map[string]string, kv ...string) map[string]string {
	out := maps.Clone(h)
	if out == nil {
		out = map[string]string{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func TestDecide(t *testing.T) {
	const key = "sk-test-0123456789abcdef"
	corsHdrs := corsHeaders("https://app.example.com")
	tests := []struct {
		name    string
		yaml    string
		env     map[string]string
		method  string
		path    string
		headers map[string]string
		// Outcome.
		status   int
		reason   Reason
		detail   string // exact, or a prefix when it ends with ": "
		upstream []Header
		remove   []string
		response []Header
		rule     string
		missing  []string
	}{
		{
			name: "allow with scope", method: "GET", path: "/agents",
			headers: bearerH(mintHS(t, user("agents:read"))),
			status:  200, reason: ReasonAllowed, rule: "GET /agents",
			upstream: []Header{{HeaderUserID, "u1"}, {headerSessionID, "s1"}, {headerScopes, "agents:read"}, {headerAuth, authJWT}},
		},
		{
			name: "spoofed headers overwritten or removed", method: "GET", path: "/agents?limit=1",
			headers: with(bearerH(mintHS(t, user("agents:read"))), "x-agentos-user-id", "admin", "x-agentos-zz", "1",
				"x-agentos-accessible-ids", `["*"]`, "x-agentos-claim-role", "admin"),
			status: 200, reason: ReasonAllowed, rule: "GET /agents",
			upstream: []Header{{HeaderUserID, "u1"}, {headerSessionID, "s1"}, {headerScopes, "agents:read"}, {headerAuth, authJWT}},
			remove:   []string{"x-agentos-accessible-ids", "x-agentos-claim-role", "x-agentos-zz"},
		},
		{
			name: "listing filtered", method: "GET", path: "/agents",
			headers: bearerH(mintHS(t, user("agents:a1:read", "agents:a b:read"))),
			status:  200, reason: ReasonAllowedListing, rule: "GET /agents",
			upstream: []Header{{HeaderUserID, "u1"}, {headerSessionID, "s1"}, {headerScopes, "agents:a1:read agents:a b:read"},
				{headerAuth, authJWT}, {headerAccessibleIDs, `["a1","a b"]`}},
		},
		{
			name: "head checked as get", method: "HEAD", path: "/config",
			headers: bearerH(mintHS(t, user("agents:read"))),
			status:  403, reason: ReasonInsufficientScopes, detail: "Insufficient permissions. Required scope(s): config:read",
			rule: "GET /config", missing: []string{"config:read"},
		},
		{
			// A case-insensitive upstream would run "delete" as DELETE: it
			// needs what DELETE needs, never unmapped_routes: allow.
			name: "lower-case method checked as upper-case", method: "delete", path: "/agents/a1",
			headers: bearerH(mintHS(t, user("agents:read"))),
			status:  403, reason: ReasonInsufficientScopes, detail: "Insufficient permissions. Required scope(s): agents:delete",
			rule: "DELETE /agents/*", missing: []string{"agents:delete"},
		},
		{
			name: "lower-case options is no preflight", method: "options", path: "/agents",
			status: 401, reason: ReasonMissingCredential, detail: "Authorization header missing",
		},
		{
			name: "method not a token", method: "GE T", path: "/agents",
			headers: bearerH(mintHS(t, user("agents:read"))),
			status:  400, reason: ReasonMalformedRequest, detail: "Malformed check request",
		},
		{
			name: "empty method", method: "", path: "/agents",
			headers: bearerH(mintHS(t, user("agents:read"))),
			status:  400, reason: ReasonMalformedRequest, detail: "Malformed check request",
		},
		{
			name: "insufficient scopes", method: "POST", path: "/agents/a1/runs",
			headers: with(bearerH(mintHS(t, user("agents:a2:run"))), "origin", "https://app.example.com"),
			status:  403, reason: ReasonInsufficientScopes, detail: "Insufficient permissions. Required scope(s): agents:run",
			response: corsHdrs, rule: "POST /agents/*/runs", missing: []string{"agents:run"},
		},
		{
			name: "no token", method: "GET", path: "/agents",
			status: 401, reason: ReasonMissingCredential, detail: "Authorization header missing",
		},
		{
			name: "no token cors", method: "GET", path: "/agents", headers: map[string]string{"origin": "https://app.example.com"},
			status: 401, reason: ReasonMissingCredential, detail: "Authorization header missing", response: corsHdrs,
		},
		{
			name: "expired", method: "GET", path: "/agents",
			headers: bearerH(mint(t, jwa.HS256, []byte(hsKey), claims{"sub": "u1", "exp": testNow.Add(-time.Hour).Unix()})),
			status:  401, reason: ReasonTokenExpired, detail: "Token has expired",
		},
		{
			name: "wrong secret", method: "GET", path: "/agents",
			headers: bearerH(mint(t, jwa.HS256, []byte("another-secret-0123456789abcdef012345"), user("agents:read"))),
			status:  401, reason: ReasonInvalidToken, detail: "Invalid token: ",
		},
		{
			name: "garbage token", method: "GET", path: "/agents", headers: bearerH("not-a-jwt"),
			status: 401, reason: ReasonInvalidToken, detail: "Invalid token: ",
		},
		{
			name: "malformed path before credentials", method: "GET", path: "/health/../config",
			headers: with(bearerH("not-a-jwt"), "origin", "https://app.example.com"),
			status:  400, reason: ReasonMalformedPath, detail: "Malformed request path", response: corsHdrs,
		},
		{
			name: "excluded", method: "GET", path: "/health", headers: with(bearerH("not-a-jwt"), "x-agentos-user-id", "admin"),
			status: 200, reason: ReasonAllowedExcluded, upstream: []Header{{headerAuth, authNone}}, remove: []string{"x-agentos-user-id"},
		},
		{
			name: "excluded with trailing slash", method: "POST", path: "/health/?x=1",
			status: 200, reason: ReasonAllowedExcluded, upstream: []Header{{headerAuth, authNone}},
		},
		{
			name: "excluded root", method: "GET", path: "/",
			status: 200, reason: ReasonAllowedExcluded, upstream: []Header{{headerAuth, authNone}},
		},
		{
			name: "not excluded prefix", method: "GET", path: "/healthz",
			status: 401, reason: ReasonMissingCredential, detail: "Authorization header missing",
		},
		{
			name: "custom excluded slash pattern", yaml: "excluded_routes: [/public/, /sessions/*, /x/*/y]\n",
			method: "GET", path: "/public/",
			status: 200, reason: ReasonAllowedExcluded, upstream: []Header{{headerAuth, authNone}},
		},
		{
			// docs/CONTRACT.md §5: the "/" variant only when the request had one.
			name: "custom excluded slash pattern needs the slash", yaml: "excluded_routes: [/public/, /sessions/*, /x/*/y]\n",
			method: "GET", path: "/public",
			status: 401, reason: ReasonMissingCredential, detail: "Authorization header missing",
		},
		{
			name: "custom excluded glob with slash", yaml: "excluded_routes: [/public/, /sessions/*, /x/*/y]\n",
			method: "GET", path: "/sessions/",
			status: 200, reason: ReasonAllowedExcluded, upstream: []Header{{headerAuth, authNone}},
		},
		{
			name: "custom excluded glob never excludes its bare prefix", yaml: "excluded_routes: [/public/, /sessions/*, /x/*/y]\n",
			method: "GET", path: "/sessions?x=/",
			status: 401, reason: ReasonMissingCredential, detail: "Authorization header missing",
		},
		{
			name: "custom excluded glob crosses slash", yaml: "excluded_routes: [/public/, /sessions/*, /x/*/y]\n",
			method: "GET", path: "/x/a/b/y/",
			status: 200, reason: ReasonAllowedExcluded, upstream: []Header{{headerAuth, authNone}},
		},
		{
			name: "custom excluded replaces defaults", yaml: "excluded_routes: [/public/, /sessions/*, /x/*/y]\n",
			method: "GET", path: "/health",
			status: 401, reason: ReasonMissingCredential, detail: "Authorization header missing",
		},
		{
			name: "preflight", method: "OPTIONS", path: "/agents/a1/runs",
			headers: with(bearerH(mintHS(t, user("agents:run"))), "x-agentos-scopes", "agent_os:admin"),
			status:  200, reason: ReasonAllowedPreflight, upstream: []Header{{headerAuth, authNone}}, remove: []string{"x-agentos-scopes"},
		},
		{
			name: "cors allowlist miss", yaml: "cors_allowed_origins: [https://app.example.com]\n",
			method: "GET", path: "/agents", headers: map[string]string{"origin": "https://evil.example"},
			status: 401, reason: ReasonMissingCredential, detail: "Authorization header missing",
		},
		{
			name: "cors allowlist hit", yaml: "cors_allowed_origins: [https://app.example.com]\n",
			method: "GET", path: "/agents", headers: map[string]string{"origin": "https://app.example.com"},
			status: 401, reason: ReasonMissingCredential, detail: "Authorization header missing", response: corsHdrs,
		},
		{
			name: "authorization false authenticates only", yaml: "authorization: false\n",
			method: "DELETE", path: "/config", headers: bearerH(mintHS(t, user())),
			status: 200, reason: ReasonAllowed,
			upstream: []Header{{HeaderUserID, "u1"}, {headerSessionID, "s1"}, {headerAuth, authJWT}},
		},
		{
			name: "authorization false still authenticates", yaml: "authorization: false\n",
			method: "GET", path: "/config",
			status: 401, reason: ReasonMissingCredential, detail: "Authorization header missing",
		},
		{
			name: "unmapped allowed", method: "PUT", path: "/totally/unmapped", headers: bearerH(mintHS(t, user())),
			status: 200, reason: ReasonAllowedUnmapped,
			upstream: []Header{{HeaderUserID, "u1"}, {headerSessionID, "s1"}, {headerAuth, authJWT}},
		},
		{
			name: "unmapped denied", yaml: "unmapped_routes: deny\n",
			method: "GET", path: "/totally/unmapped", headers: bearerH(mintHS(t, user("agents:read"))),
			status: 403, reason: ReasonNoRule, detail: "Insufficient permissions. No permission rule for this route",
		},
		{
			name: "unmapped deny admin passes", yaml: "unmapped_routes: deny\n",
			method: "GET", path: "/totally/unmapped", headers: bearerH(mintHS(t, user("agent_os:admin"))),
			status: 200, reason: ReasonAllowedUnmapped,
			upstream: []Header{{HeaderUserID, "u1"}, {headerSessionID, "s1"}, {headerScopes, "agent_os:admin"}, {headerAuth, authJWT}},
		},
		{
			name: "custom header", yaml: "  header: X-Auth-Token\n",
			method: "GET", path: "/agents", headers: map[string]string{"x-auth-token": mintHS(t, user("agents:read"))},
			status: 200, reason: ReasonAllowed, rule: "GET /agents",
			upstream: []Header{{HeaderUserID, "u1"}, {headerSessionID, "s1"}, {headerScopes, "agents:read"}, {headerAuth, authJWT}},
		},
		{
			name: "cookie source", yaml: "  token_source: cookie\n",
			method: "GET", path: "/agents", headers: map[string]string{"cookie": "a=b; access_token=" + mintHS(t, user("agents:read"))},
			status: 200, reason: ReasonAllowed, rule: "GET /agents",
			upstream: []Header{{HeaderUserID, "u1"}, {headerSessionID, "s1"}, {headerScopes, "agents:read"}, {headerAuth, authJWT}},
		},
		{
			name: "cookie source missing", yaml: "  token_source: cookie\n",
			method: "GET", path: "/agents", headers: bearerH(mintHS(t, user("agents:read"))),
			status: 401, reason: ReasonMissingCredential, detail: "JWT cookie 'access_token' missing",
		},
		{
			name: "both missing", yaml: "  token_source: both\n  cookie: jwt_cookie\n",
			method: "GET", path: "/agents",
			status: 401, reason: ReasonMissingCredential, detail: "JWT token missing from both Authorization header and 'jwt_cookie' cookie",
		},
		{
			name: "forward claims", yaml: "  forward_claims: [org_id, roles, absent]\n",
			method: "GET", path: "/agents", headers: bearerH(mintHS(t, claims{"sub": "u1", "scopes": []string{"agents:read"}, "org_id": "o1", "roles": []string{"a", "b"}})),
			status: 200, reason: ReasonAllowed, rule: "GET /agents",
			upstream: []Header{{HeaderUserID, "u1"}, {headerScopes, "agents:read"}, {headerAuth, authJWT},
				{headerClaimPrefix + "org_id", "o1"}, {headerClaimPrefix + "roles", `["a","b"]`}},
		},

		// The deprecated security key (docs/CONTRACT.md §7).
		{
			name: "key only right", yaml: "", env: map[string]string{envSecurityKey: key},
			method: "POST", path: "/agents/a1/runs", headers: map[string]string{"authorization": "bearer " + key},
			status: 200, reason: ReasonAllowed, upstream: []Header{{headerScopes, "agent_os:admin"}, {headerAuth, AuthSecurityKey}},
		},
		{
			name: "key only bare", yaml: "", env: map[string]string{envSecurityKey: key},
			method: "GET", path: "/config", headers: map[string]string{"authorization": key},
			status: 200, reason: ReasonAllowed, upstream: []Header{{headerScopes, "agent_os:admin"}, {headerAuth, AuthSecurityKey}},
		},
		{
			name: "key only wrong", yaml: "", env: map[string]string{envSecurityKey: key},
			method: "GET", path: "/config", headers: bearerH(key + "x"),
			status: 401, reason: ReasonInvalidSecurityKey, detail: "Invalid authentication token",
		},
		{
			name: "key only jwt", yaml: "", env: map[string]string{envSecurityKey: key},
			method: "GET", path: "/config", headers: bearerH(mintHS(t, user("agent_os:admin"))),
			status: 401, reason: ReasonInvalidSecurityKey, detail: "Invalid authentication token",
		},
		{
			name: "key only missing", yaml: "", env: map[string]string{envSecurityKey: key},
			method: "GET", path: "/config",
			status: 401, reason: ReasonMissingCredential, detail: "Authorization header required",
		},
		{
			name: "a2a interface route needs its scope", yaml: "interfaces: [{type: a2a}]\n",
			method: "POST", path: "/a2a/agents/web/v1/message:send", headers: bearerH(mintHS(t, user())),
			status: 403, reason: ReasonInsufficientScopes, rule: "POST /a2a/agents/*/v1/message:send", detail: "Insufficient permissions. Required scope(s): agents:run", missing: []string{"agents:run"},
		},
		{
			name: "a2a interface at a custom prefix, per-resource scope", yaml: "interfaces: [{type: a2a, prefix: /ext/a2a}]\n",
			method: "POST", path: "/ext/a2a/agents/web/v1/message:send", headers: bearerH(mintHS(t, user("agents:web:run"))),
			status: 200, reason: ReasonAllowed, rule: "POST /ext/a2a/agents/*/v1/message:send",
			upstream: []Header{{HeaderUserID, "u1"}, {headerSessionID, "s1"}, {headerScopes, "agents:web:run"}, {headerAuth, authJWT}},
		},
		{
			name: "agui interface", yaml: "interfaces: [{type: agui, family: teams}]\n",
			method: "POST", path: "/agui", headers: bearerH(mintHS(t, user("agents:run"))),
			status: 403, reason: ReasonInsufficientScopes, rule: "POST /agui", detail: "Insufficient permissions. Required scope(s): teams:run", missing: []string{"teams:run"},
		},
		{
			name: "slack interface webhooks are excluded", yaml: "interfaces: [{type: slack}]\n",
			method: "POST", path: "/slack/events",
			status: 200, reason: ReasonAllowedExcluded, upstream: []Header{{headerAuth, authNone}},
		},
		{
			name: "slack interface prefix itself is not excluded", yaml: "interfaces: [{type: slack, prefix: /hooks/slack}]\n",
			method: "POST", path: "/hooks/slack",
			status: 401, reason: ReasonMissingCredential, detail: "Authorization header missing",
		},
		{
			name: "key with custom admin scope", yaml: "admin_scope: platform:root\nsecurity_key: " + key + "\n",
			method: "DELETE", path: "/sessions/s1", headers: bearerH(key),
			status: 200, reason: ReasonAllowed, upstream: []Header{{headerScopes, "platform:root"}, {headerAuth, AuthSecurityKey}},
		},
		{
			name: "migration key", yaml: hsConfig("security_key_migration: true\n"), env: map[string]string{envSecurityKey: key},
			method: "DELETE", path: "/sessions/s1", headers: bearerH(key),
			status: 200, reason: ReasonAllowed, rule: "DELETE /sessions/*",
			upstream: []Header{{headerScopes, "agent_os:admin"}, {headerAuth, AuthSecurityKey}},
		},
		{
			name: "migration jwt", yaml: hsConfig("security_key_migration: true\n"), env: map[string]string{envSecurityKey: key},
			method: "GET", path: "/agents", headers: bearerH(mintHS(t, user("agents:read"))),
			status: 200, reason: ReasonAllowed, rule: "GET /agents",
			upstream: []Header{{HeaderUserID, "u1"}, {headerSessionID, "s1"}, {headerScopes, "agents:read"}, {headerAuth, authJWT}},
		},
		{
			name: "migration neither", yaml: hsConfig("security_key_migration: true\n"), env: map[string]string{envSecurityKey: key},
			method: "GET", path: "/agents", headers: bearerH("wrong-key"),
			status: 401, reason: ReasonInvalidToken, detail: "Invalid token: ",
		},
		{
			name: "migration none", yaml: hsConfig("security_key_migration: true\n"), env: map[string]string{envSecurityKey: key},
			method: "GET", path: "/agents",
			status: 401, reason: ReasonMissingCredential, detail: "Authorization header missing",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := tt.yaml
			if y == "" && tt.env == nil {
				y = hsConfig("")
			} else if strings.HasPrefix(y, "  ") {
				y = hsConfig(y) // extra jwt: fields
			} else if tt.env == nil && !strings.Contains(y, "jwt:") && !strings.Contains(y, "security_key") {
				y = hsConfig(y)
			}
			a := newTestAuthorizer(t, y, tt.env, nil)
			r := &Request{Method: tt.method, Path: tt.path, Headers: tt.headers}
			before := maps.Clone(tt.headers)
			d := a.Decide(t.Context(), r)
			call := fmt.Sprintf("Decide(%s %s)", tt.method, tt.path)
			if d.Status != tt.status || d.Reason != tt.reason {
				t.Fatalf("%s = %d %s %q, want %d %s", call, d.Status, d.Reason, d.Detail, tt.status, tt.reason)
			}
			if strings.HasSuffix(tt.detail, ": ") {
				if !strings.HasPrefix(d.Detail, tt.detail) {
					t.Errorf("%s detail = %q, want prefix %q", call, d.Detail, tt.detail)
				}
			} else if d.Detail != tt.detail {
				t.Errorf("%s detail = %q, want %q", call, d.Detail, tt.detail)
			}
			if !slices.Equal(d.Upstream, tt.upstream) {
				t.Errorf("%s upstream = %q\nwant %q", call, d.Upstream, tt.upstream)
			}
			if !slices.Equal(d.Remove, tt.remove) {
				t.Errorf("%s remove = %q, want %q", call, d.Remove, tt.remove)
			}
			if !slices.Equal(d.Response, tt.response) {
				t.Errorf("%s response = %q, want %q", call, d.Response, tt.response)
			}
			if d.Rule != tt.rule {
				t.Errorf("%s rule = %q, want %q", call, d.Rule, tt.rule)
			}
			if !slices.Equal(d.Missing, tt.missing) {
				t.Errorf("%s missing = %q, want %q", call, d.Missing, tt.missing)
			}
			if !maps.Equal(before, tt.headers) {
				t.Errorf("%s modified the request headers", call)
			}
		})
	}
}

func TestDecideMalformedRequest(t *testing.T) {
	a := newTestAuthorizer(t, hsConfig(""), nil, nil)
	for _, r := range []*Request{nil, {Malformed: true}, {Malformed: true, Headers: map[string]string{"origin": "https://a.example"}}} {
		d := a.Decide(t.Context(), r)
		if d.Status != 400 || d.Reason != ReasonMalformedRequest || d.Detail != "Malformed check request" {
			t.Errorf("Decide(%+v) = %d %s %q, want 400 Malformed check request", r, d.Status, d.Reason, d.Detail)
		}
	}
}

func TestDecideExplain(t *testing.T) {
	a := newTestAuthorizer(t, hsConfig(""), nil, nil)
	r := &Request{Method: "POST", Path: "/agents/a1/runs", Headers: bearerH(mintHS(t, user("agents:*:run")))}
	d := a.Explain(t.Context(), r)
	if !d.Allowed() || d.Rule != "POST /agents/*/runs" || !slices.Equal(d.Required, []string{"agents:run"}) || len(d.Matched) != 1 ||
		d.Matched[0] != (MatchedScope{Required: "agents:run", By: "agents:*:run"}) {
		t.Errorf("Explain(POST /agents/a1/runs) = %d rule %q required %q matched %v", d.Status, d.Rule, d.Required, d.Matched)
	}
	if d := a.Decide(t.Context(), r); d.Matched != nil {
		t.Errorf("Decide filled Matched = %v; only Explain should", d.Matched)
	}
}

// TestDecideCanceled: a cancelled context denies, whatever the request.
func TestDecideCanceled(t *testing.T) {
	a := newTestAuthorizer(t, hsConfig(""), nil, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, r := range []*Request{
		{Method: "GET", Path: "/agents", Headers: bearerH(mintHS(t, user("agent_os:admin")))},
		{Method: "GET", Path: "/health"},
		{Method: "OPTIONS", Path: "/agents"},
	} {
		d := a.Decide(ctx, r)
		if d.Allowed() || d.Reason != ReasonCanceled {
			t.Errorf("Decide(cancelled, %s %s) = %d %s, want a %s denial", r.Method, r.Path, d.Status, d.Reason, ReasonCanceled)
		}
	}
}

// TestZeroAuthorizerDenies: an Authorizer not built by New fails closed.
func TestZeroAuthorizerDenies(t *testing.T) {
	var a Authorizer
	a.log = zap.NewNop()
	if d := a.Decide(t.Context(), &Request{Method: "GET", Path: "/health"}); d.Allowed() {
		t.Errorf("zero Authorizer: Decide = %d, want a denial", d.Status)
	}
	if a.Ready() {
		t.Error("zero Authorizer is Ready")
	}
}

// TestDecideLogsNoSecrets: decisions log one line each, with the allowlisted
// fields, and never a token, a key or a secret.
func TestDecideLogsNoSecrets(t *testing.T) {
	const key = "sk-log-test-key-0123456789"
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	jwtA := newTestAuthorizer(t, hsConfig("security_key_migration: true\n"), map[string]string{envSecurityKey: key}, log)
	good := mintHS(t, user("agents:read"))
	forbidden := mintHS(t, user("teams:read"))
	expired := mint(t, jwa.HS256, []byte(hsKey), claims{"sub": "u1", "exp": testNow.Add(-time.Hour).Unix()})
	forged := mint(t, jwa.HS256, []byte("forged-secret-0123456789abcdef0123"), user("agent_os:admin"))
	reqs := []*Request{
		{Method: "GET", Path: "/agents?token=" + good, Headers: map[string]string{"authorization": "Bearer " + good, "x-request-id": "r1"}},
		{Method: "GET", Path: "/agents?q=1", Headers: map[string]string{"authorization": "Bearer " + forbidden, "x-request-id": "r2"}},
		{Method: "GET", Path: "/agents", Headers: map[string]string{"authorization": "Bearer " + expired}},
		{Method: "GET", Path: "/agents", Headers: map[string]string{"authorization": "Bearer " + forged, "cookie": "access_token=" + forged}},
		{Method: "GET", Path: "/agents", Headers: map[string]string{"authorization": key}},
		{Method: "GET", Path: "/agents", Headers: map[string]string{"authorization": "Bearer " + key + "x"}},
		{Method: "GET", Path: "/agents/%2e%2e?secret=" + key},
	}
	for _, r := range reqs {
		jwtA.Decide(t.Context(), r)
	}
	secrets := []string{good, forbidden, expired, forged, key, hsKey}
	for _, tok := range []string{good, forbidden, expired, forged} {
		secrets = append(secrets, strings.Split(tok, ".")...) // any slice of a token
	}
	entries := logs.All()
	decisions := 0
	for _, e := range entries {
		text := e.Message + fmt.Sprint(e.ContextMap())
		for _, s := range secrets {
			if len(s) >= 8 && strings.Contains(text, s) {
				t.Errorf("log %q %v contains a secret", e.Message, e.ContextMap())
			}
		}
		if e.Message != msgAllowed && e.Message != msgDenied {
			continue
		}
		decisions++
		m := e.ContextMap()
		for _, f := range []string{"reason", "status", "method", "path", "rule", "user_id", "request_id"} {
			if _, ok := m[f]; !ok {
				t.Errorf("log %q lacks field %s: %v", e.Message, f, m)
			}
		}
		if p, _ := m["path"].(string); strings.Contains(p, "?") {
			t.Errorf("log path %q holds a query", p)
		}
		wantLevel := zapcore.InfoLevel
		if e.Message == msgAllowed {
			wantLevel = zapcore.DebugLevel
		}
		if e.Level != wantLevel {
			t.Errorf("log %q at %s, want %s", e.Message, e.Level, wantLevel)
		}
	}
	if decisions != len(reqs) {
		t.Errorf("%d decision log lines for %d requests", decisions, len(reqs))
	}
	denied := logs.FilterMessage(msgDenied).FilterField(zap.String("request_id", "r2")).All()
	if len(denied) != 1 {
		t.Fatalf("%d denied lines for r2, want 1", len(denied))
	}
	want := map[string]any{"reason": "insufficient_scopes", "status": int64(403), "method": "GET", "path": "/agents",
		"rule": "GET /agents", "user_id": "u1", "request_id": "r2"}
	if got := denied[0].ContextMap(); !maps.Equal(got, want) {
		t.Errorf("denied line for r2 = %v, want %v", got, want)
	}
	if n := logs.FilterMessageSnippet("deprecated security key").Len(); n != 1 {
		t.Errorf("%d deprecation lines, want 1 (one key use)", n)
	}
}

func rsaKeyPEM(t testing.TB) (*rsa.PrivateKey, string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return k, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

var decisionSink Decision

// BenchmarkDecide measures a full decision (path, credential, signature and
// claims, scopes, headers) against the bare signature verification.
func BenchmarkDecide(b *testing.B) {
	rsaKey, rsaPEM := rsaKeyPEM(b)
	cases := []struct {
		name string
		yaml string
		tok  string
	}{
		// cache_size: 0: every decision verifies (BenchmarkDecideCached
		// measures the cached path).
		{name: "HS256", yaml: hsConfig("  cache_size: 0\n"), tok: mintHS(b, user("agents:a1:run", "agents:read"))},
		{name: "RS256", yaml: "os_id: test-os\njwt:\n  cache_size: 0\n  algorithms: [RS256]\n  verification_keys:\n    - |\n" +
			indent(rsaPEM, "      "), tok: mint(b, jwa.RS256, rsaKey, user("agents:a1:run", "agents:read"))},
	}
	for _, c := range cases {
		a := newTestAuthorizer(b, c.yaml, nil, zap.NewNop())
		r := &Request{Method: "POST", Path: "/agents/a1/runs?stream=true", Headers: map[string]string{
			"authorization": "Bearer " + c.tok, "x-request-id": "bench", ":authority": "agentos.test",
			"user-agent": "bench", "content-type": "application/json", "x-forwarded-proto": "https",
		}}
		ctx := context.Background()
		if d := a.Decide(ctx, r); !d.Allowed() {
			b.Fatalf("%s: Decide = %d %q", c.name, d.Status, d.Detail)
		}
		b.Run(c.name+"/decide", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				decisionSink = a.Decide(ctx, r)
			}
		})
		v := a.snap.Load().verifier
		b.Run(c.name+"/verify", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, f := v.Verify(ctx, c.tok); f != nil {
					b.Fatal(f.Why)
				}
			}
		})
	}
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}

// FuzzDecide: whatever the request, Decide answers 200, 400, 401 or 403,
// never echoes the credential, and lets no client x-agentos-* header
// through on an allow.
func FuzzDecide(f *testing.F) {
	a := newTestAuthorizer(f, hsConfig("cors_allowed_origins: [https://app.example.com]\n"), nil, zap.NewNop())
	good := mintHS(f, user("agents:read"))
	f.Add("GET", "/agents", "Bearer "+good, "", "")
	f.Add("GET", "/agents?x=1", good, "access_token="+good, "admin")
	f.Add("HEAD", "/agents/a1/", "bearer "+good+"x", "", "")
	f.Add("OPTIONS", "/agents/%2e%2e", "", "", "")
	f.Add("POST", "/health/", "Bearer a.b.c", "a=b", "")
	f.Fuzz(func(t *testing.T, method, path, authorization, cookie, spoof string) {
		h := map[string]string{"authorization": authorization, "cookie": cookie, "origin": "https://app.example.com"}
		if spoof != "" {
			h["x-agentos-user-id"] = spoof
			h["x-agentos-"+spoof] = spoof
		}
		d := a.Decide(t.Context(), &Request{Method: method, Path: path, Headers: h})
		switch d.Status {
		case 200, 400, 401, 403:
		default:
			t.Fatalf("Decide(%q %q) status %d", method, path, d.Status)
		}
		if d.Allowed() != (d.Detail == "") {
			t.Fatalf("Decide(%q %q) = %d with detail %q", method, path, d.Status, d.Detail)
		}
		tok := trimSpace(authorization)
		if len(tok) >= 16 {
			if strings.Contains(d.Detail, tok) {
				t.Fatalf("detail %q echoes the credential", d.Detail)
			}
			for _, hd := range append(d.Upstream, d.Response...) {
				if strings.Contains(hd.Value, tok) {
					t.Fatalf("header %s echoes the credential", hd.Name)
				}
			}
		}
		if d.Allowed() {
			set := map[string]bool{}
			for _, u := range d.Upstream {
				set[u.Name] = true
			}
			for name := range h {
				if strings.HasPrefix(strings.ToLower(name), "x-agentos-") && !set[strings.ToLower(name)] && !slices.Contains(d.Remove, strings.ToLower(name)) {
					t.Fatalf("client header %q passes to the upstream", name)
				}
			}
		}
	})
}
