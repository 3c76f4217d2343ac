package jwtauth

import (
	"context"
	"crypto"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentos-authz/agentos-authz/internal/jwttest"
)

// jtBaseConfig accepts RS256, PS256, ES256, EdDSA and HS256 with one key of
// each type.
func jtBaseConfig(k *jwttest.Keys) Config {
	c := defaultConfig()
	c.Algorithms = []string{"RS256", "PS256", "ES256", "EdDSA", "HS256"}
	c.VerificationKeys = []string{k.RS.PubPEM, k.ES.PubPEM, k.ED.PubPEM, k.HS}
	return c
}

func jtVerifier(t testing.TB, c Config, o Options) *Verifier {
	t.Helper()
	if o.Clock == nil {
		o.Clock = jwttest.Clock
	}
	v, err := New(&c, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return v
}

func unix(d time.Duration) int64 { return jwttest.Now.Add(d).Unix() }

type verifyCase struct {
	name string
	// cfg builds the configuration; nil is jtBaseConfig.
	cfg func(k *jwttest.Keys) Config
	// aud is Options.Audience.
	aud []string
	tok func(t testing.TB, k *jwttest.Keys) string
	// reason is the wanted Failure reason; ReasonUnknown = valid token.
	reason Reason
	// detail is the exact wanted detail; for ReasonInvalidToken "" only
	// asserts the "Invalid token: " prefix.
	detail string
	// want, when set, is the exact wanted Identity of a valid token.
	want *Identity
}

// hsTok mints an HS256 token with the standard claims and over merged in.
func hsTok(over map[string]any) func(testing.TB, *jwttest.Keys) string {
	return func(t testing.TB, k *jwttest.Keys) string {
		return jwttest.Mint(t, jwttest.Token{Alg: "HS256", Key: k.HS, Claims: jwttest.Claims(over)})
	}
}

// withCfg changes the base configuration.
func withCfg(f func(c *Config)) func(k *jwttest.Keys) Config {
	return func(k *jwttest.Keys) Config {
		c := jtBaseConfig(k)
		f(&c)
		return c
	}
}

func stdIdentity() *Identity {
	return &Identity{UserID: "test_user", SessionID: "session_test_user", Scopes: []string{"agents:read"}, Expires: jwttest.Now.Add(time.Hour)}
}

func verifyCases(t testing.TB) []verifyCase {
	signed := func(alg string, key func(k *jwttest.Keys) any, over map[string]any, header map[string]any) func(testing.TB, *jwttest.Keys) string {
		return func(t testing.TB, k *jwttest.Keys) string {
			return jwttest.Mint(t, jwttest.Token{Alg: alg, Key: key(k), Header: header, Claims: jwttest.Claims(over)})
		}
	}
	rs := func(k *jwttest.Keys) any { return k.RS.Priv }
	rs2 := func(k *jwttest.Keys) any { return k.RS2.Priv }
	es := func(k *jwttest.Keys) any { return k.ES.Priv }
	ed := func(k *jwttest.Keys) any { return k.ED.Priv }
	hs := func(k *jwttest.Keys) any { return k.HS }
	raw := func(s string) func(testing.TB, *jwttest.Keys) string {
		return func(testing.TB, *jwttest.Keys) string { return s }
	}

	return []verifyCase{
		// Valid tokens, each key type.
		{name: "hs256", tok: signed("HS256", hs, nil, nil), want: stdIdentity()},
		{name: "rs256", tok: signed("RS256", rs, nil, nil), want: stdIdentity()},
		{name: "ps256", tok: signed("PS256", rs, nil, nil), want: stdIdentity()},
		{name: "es256", tok: signed("ES256", es, nil, nil), want: stdIdentity()},
		{name: "eddsa", tok: signed("EdDSA", ed, nil, nil), want: stdIdentity()},
		{name: "certificate key", cfg: func(k *jwttest.Keys) Config {
			c := defaultConfig()
			c.Algorithm = "RS256"
			c.VerificationKeys = []string{k.RSCert}
			return c
		}, tok: signed("RS256", rs, nil, nil), want: stdIdentity()},
		{name: "second static key", cfg: func(k *jwttest.Keys) Config {
			c := defaultConfig()
			c.VerificationKeys = []string{k.RSCert, k.RS2.PubPEM}
			return c
		}, tok: signed("RS256", rs2, nil, nil), want: stdIdentity()},
		{name: "JWK JSON static key", cfg: func(k *jwttest.Keys) Config {
			c := defaultConfig()
			c.Algorithms = []string{"ES256"}
			c.VerificationKeys = []string{jwttest.JWK(t, k.ES.Priv.Public(), "", "")}
			return c
		}, tok: signed("ES256", es, nil, nil), want: stdIdentity()},
		{name: "JWK JSON static key with kid serves its kid", cfg: func(k *jwttest.Keys) Config {
			c := defaultConfig()
			c.Algorithms = []string{"ES256"}
			c.VerificationKeys = []string{jwttest.JWK(t, k.ES.Priv.Public(), "k1", "")}
			return c
		}, tok: signed("ES256", es, nil, map[string]any{"kid": "k1"}), want: stdIdentity()},
		{name: "JWK JSON static key with kid ignores other kids", cfg: func(k *jwttest.Keys) Config {
			c := defaultConfig()
			c.Algorithms = []string{"ES256"}
			c.VerificationKeys = []string{jwttest.JWK(t, k.ES.Priv.Public(), "k1", "")}
			return c
		}, tok: signed("ES256", es, nil, map[string]any{"kid": "k2"}), reason: ReasonInvalidToken, detail: "Invalid token: no verification key for this token"},

		// Identity claims.
		{name: "scopes space-separated string", tok: hsTok(map[string]any{"scopes": "agents:read  teams:read\tx"}),
			want: &Identity{UserID: "test_user", SessionID: "session_test_user", Scopes: []string{"agents:read", "teams:read", "x"}, Expires: jwttest.Now.Add(time.Hour)}},
		{name: "scopes non-string, empty and control entries dropped", tok: hsTok(map[string]any{"scopes": []any{"agents:read", 42, nil, map[string]any{"x": 1}, []any{"config:read"}, true, "", "a b", "c\u0000", "teams:run"}}),
			want: &Identity{UserID: "test_user", SessionID: "session_test_user", Scopes: []string{"agents:read", "a b", "teams:run"}, Expires: jwttest.Now.Add(time.Hour)}},
		{name: "scopes bool", tok: hsTok(map[string]any{"scopes": true}),
			want: &Identity{UserID: "test_user", SessionID: "session_test_user", Expires: jwttest.Now.Add(time.Hour)}},
		{name: "scopes missing", tok: hsTok(map[string]any{"scopes": nil}),
			want: &Identity{UserID: "test_user", SessionID: "session_test_user", Expires: jwttest.Now.Add(time.Hour)}},
		{name: "comma is not a separator", tok: hsTok(map[string]any{"scopes": "agents:read,teams:read"}),
			want: &Identity{UserID: "test_user", SessionID: "session_test_user", Scopes: []string{"agents:read,teams:read"}, Expires: jwttest.Now.Add(time.Hour)}},
		{name: "no sub no session", tok: hsTok(map[string]any{"sub": nil, "session_id": nil}),
			want: &Identity{Scopes: []string{"agents:read"}, Expires: jwttest.Now.Add(time.Hour)}},
		{name: "custom claim names", cfg: withCfg(func(c *Config) {
			c.Claims = ClaimNames{Scopes: "permissions", UserID: "uid", SessionID: "sid"}
		}), tok: hsTok(map[string]any{"sub": "sa:bot", "uid": "alice", "sid": "s1", "permissions": []any{"read", "agents:read"}, "scopes": []any{"agent_os:admin"}}),
			want: &Identity{UserID: "alice", SessionID: "s1", Scopes: []string{"read", "agents:read"}, Expires: jwttest.Now.Add(time.Hour)}},
		{name: "forward claims", cfg: withCfg(func(c *Config) {
			c.ForwardClaims = []string{"org_id", "roles", "session_data", "level", "is_staff", "big", "Tenant", "nl", "nul", "sub", "aud", "exp"}
		}), tok: func(t testing.TB, k *jwttest.Keys) string {
			payload := `{"sub":"test_user","session_id":"session_test_user","aud":"test-os","scopes":["agents:read"],` +
				`"exp":` + jtItoa(unix(time.Hour)) + `,"iat":` + jtItoa(unix(0)) + `,` +
				`"org_id":"test_org_789","roles":["admin", "user"],"session_data":{"last_login": "2023-10-01T10:00:00Z"},` +
				`"level":7,"is_staff":true,"big":12345678901234567890,"nl":"a\nb","nul":null,"other":"x"}`
			return jwttest.Mint(t, jwttest.Token{Alg: "HS256", Key: k.HS, Payload: []byte(payload)})
		}, want: &Identity{UserID: "test_user", SessionID: "session_test_user", Scopes: []string{"agents:read"}, Expires: jwttest.Now.Add(time.Hour),
			Forward: []Header{
				{Name: "x-agentos-claim-org_id", Value: "test_org_789"},
				{Name: "x-agentos-claim-roles", Value: `["admin","user"]`},
				{Name: "x-agentos-claim-session_data", Value: `{"last_login":"2023-10-01T10:00:00Z"}`},
				{Name: "x-agentos-claim-level", Value: "7"},
				{Name: "x-agentos-claim-is_staff", Value: "true"},
				{Name: "x-agentos-claim-big", Value: "12345678901234567890"},
				{Name: "x-agentos-claim-nl", Value: `"a\nb"`},
				{Name: "x-agentos-claim-nul", Value: "null"},
				{Name: "x-agentos-claim-sub", Value: "test_user"},
				{Name: "x-agentos-claim-aud", Value: "test-os"},
				{Name: "x-agentos-claim-exp", Value: jtItoa(unix(time.Hour))},
			}}},

		// Time.
		{name: "expired", tok: hsTok(map[string]any{"exp": unix(-time.Hour), "iat": unix(-2 * time.Hour)}), reason: ReasonTokenExpired, detail: detailExpired},
		{name: "expired at the leeway edge", tok: hsTok(map[string]any{"exp": unix(-10 * time.Second)}), reason: ReasonTokenExpired, detail: detailExpired},
		{name: "expired within leeway passes", tok: hsTok(map[string]any{"exp": unix(-9 * time.Second)})},
		{name: "exp zero is expired", tok: hsTok(map[string]any{"exp": 0}), reason: ReasonTokenExpired, detail: detailExpired},
		{name: "exp negative", tok: hsTok(map[string]any{"exp": -1}), reason: ReasonTokenExpired, detail: detailExpired},
		{name: "exp numeric string", tok: hsTok(map[string]any{"exp": jtItoa(unix(time.Hour))}), reason: ReasonInvalidToken, detail: "Invalid token: exp claim is not a date"},
		{name: "exp out of range", tok: func(t testing.TB, k *jwttest.Keys) string {
			return jwttest.Mint(t, jwttest.Token{Alg: "HS256", Key: k.HS, Payload: []byte(`{"exp":1e400}`)})
		}, reason: ReasonInvalidToken, detail: "Invalid token: exp claim is not a date"},
		{name: "exp beyond year 9999", tok: hsTok(map[string]any{"exp": 1e15}), reason: ReasonInvalidToken, detail: "Invalid token: exp claim is not a date"},
		{name: "exp null", tok: hsTok(map[string]any{"exp": nil, "nbf": nil}), reason: ReasonInvalidToken},
		{name: "exp with a fraction", tok: hsTok(map[string]any{"exp": float64(unix(time.Hour)) + 0.5}), want: stdIdentity()},
		{name: "iat not a number", tok: hsTok(map[string]any{"iat": "now"}), reason: ReasonInvalidToken, detail: "Invalid token: iat claim is not a date"},
		{name: "iss not a string", tok: hsTok(map[string]any{"iss": 42}), reason: ReasonInvalidToken, detail: "Invalid token: iss claim is not a string"},
		{name: "exp one second after the epoch", tok: hsTok(map[string]any{"exp": 1}), reason: ReasonTokenExpired, detail: detailExpired},
		{name: "exp not a number", tok: hsTok(map[string]any{"exp": "tomorrow"}), reason: ReasonInvalidToken, detail: "Invalid token: exp claim is not a date"},
		{name: "exp missing", tok: hsTok(map[string]any{"exp": nil}), reason: ReasonInvalidToken, detail: "Invalid token: token has no expiry (exp)"},
		{name: "exp missing allowed by require_exp false", cfg: withCfg(func(c *Config) { c.RequireExp = jwttest.Ptr(false) }),
			tok: hsTok(map[string]any{"exp": nil}), want: &Identity{UserID: "test_user", SessionID: "session_test_user", Scopes: []string{"agents:read"}}},
		{name: "nbf within leeway", tok: hsTok(map[string]any{"nbf": unix(3 * time.Second)})},
		{name: "nbf past", tok: hsTok(map[string]any{"nbf": unix(-time.Hour)})},
		{name: "nbf beyond leeway", tok: hsTok(map[string]any{"nbf": unix(11 * time.Second)}), reason: ReasonInvalidToken, detail: "Invalid token: token is not valid yet (nbf)"},
		{name: "nbf within a 60s leeway", cfg: withCfg(func(c *Config) { c.Leeway = time.Minute }), tok: hsTok(map[string]any{"nbf": unix(30 * time.Second)})},
		{name: "nbf beyond a 60s leeway", cfg: withCfg(func(c *Config) { c.Leeway = time.Minute }), tok: hsTok(map[string]any{"nbf": unix(5 * time.Minute)}), reason: ReasonInvalidToken},
		{name: "iat in the future within leeway", tok: hsTok(map[string]any{"iat": unix(5 * time.Second)})},
		{name: "iat in the future beyond leeway", tok: hsTok(map[string]any{"iat": unix(time.Minute)}), reason: ReasonInvalidToken, detail: "Invalid token: token is issued in the future (iat)"},
		{name: "zero leeway", cfg: withCfg(func(c *Config) { c.Leeway = 0 }), tok: hsTok(map[string]any{"nbf": unix(time.Second)}), reason: ReasonInvalidToken},

		// Issuer.
		{name: "issuer matches", cfg: withCfg(func(c *Config) { c.Issuer = "https://issuer.test" }), tok: hsTok(map[string]any{"iss": "https://issuer.test"})},
		{name: "issuer wrong", cfg: withCfg(func(c *Config) { c.Issuer = "https://issuer.test" }), tok: hsTok(map[string]any{"iss": "https://evil.test"}),
			reason: ReasonInvalidToken, detail: "Invalid token: issuer missing or not accepted"},
		{name: "issuer missing", cfg: withCfg(func(c *Config) { c.Issuer = "https://issuer.test" }), tok: hsTok(nil), reason: ReasonInvalidToken},

		// Audience.
		{name: "audience not verified by default", tok: hsTok(map[string]any{"aud": "wrong-audience-456"})},
		{name: "audience matches", cfg: withCfg(func(c *Config) { c.VerifyAudience = true }), aud: []string{"test-os"}, tok: hsTok(nil)},
		{name: "audience list with a match", cfg: withCfg(func(c *Config) { c.VerifyAudience = true }), aud: []string{"test-os"},
			tok: hsTok(map[string]any{"aud": []any{"other", "test-os"}})},
		{name: "audience list misses", cfg: withCfg(func(c *Config) { c.VerifyAudience = true }), aud: []string{"test-os"},
			tok: hsTok(map[string]any{"aud": []any{"wrong-audience-1", "wrong-audience-2"}}), reason: ReasonInvalidAudience, detail: detailInvalidAudience},
		{name: "audience missing when verified", cfg: withCfg(func(c *Config) { c.VerifyAudience = true }), aud: []string{"test-os"},
			tok: hsTok(map[string]any{"aud": nil}), reason: ReasonInvalidToken, detail: "Invalid token: missing audience claim"},
		{name: "audience missing when not verified", tok: hsTok(map[string]any{"aud": nil})},
		{name: "audience empty string", tok: hsTok(map[string]any{"aud": ""}), reason: ReasonInvalidToken, detail: "Invalid token: malformed audience claim"},
		{name: "audience empty list", tok: hsTok(map[string]any{"aud": []any{}}), reason: ReasonInvalidToken, detail: "Invalid token: malformed audience claim"},
		{name: "audience list with empty entry", tok: hsTok(map[string]any{"aud": []any{"test-os", ""}}), reason: ReasonInvalidToken},
		{name: "audience number", tok: hsTok(map[string]any{"aud": 42}), reason: ReasonInvalidToken},
		{name: "audience list with number", tok: hsTok(map[string]any{"aud": []any{"test-os", 42}}), reason: ReasonInvalidToken},
		{name: "explicit audience overrides os id", cfg: withCfg(func(c *Config) {
			c.VerifyAudience, c.Audience, c.Claims.Audience = true, []string{"aud-1", "aud-2"}, "custom_aud"
		}), aud: []string{"aud-1", "aud-2"}, tok: hsTok(map[string]any{"aud": nil, "custom_aud": "test-os"}), reason: ReasonInvalidAudience, detail: detailInvalidAudience},
		{name: "custom audience claim matches", cfg: withCfg(func(c *Config) {
			c.VerifyAudience, c.Claims.Audience = true, "custom_aud"
		}), aud: []string{"aud-1", "aud-2"}, tok: hsTok(map[string]any{"aud": "ignored", "custom_aud": []any{"aud-2"}})},
		{name: "custom audience claim non-string", cfg: withCfg(func(c *Config) {
			c.VerifyAudience, c.Claims.Audience = true, "custom_aud"
		}), aud: []string{"aud-1"}, tok: hsTok(map[string]any{"custom_aud": map[string]any{"a": "aud-1"}}), reason: ReasonInvalidToken, detail: "Invalid token: malformed audience claim"},

		// Subjects.
		{name: "reserved sa:", tok: hsTok(map[string]any{"sub": "sa:claude-code"}), reason: ReasonInvalidSubject, detail: detailInvalidSubject},
		{name: "reserved sa: empty", tok: hsTok(map[string]any{"sub": "sa:"}), reason: ReasonInvalidSubject, detail: detailInvalidSubject},
		{name: "reserved __oauth__:", tok: hsTok(map[string]any{"sub": "__oauth__:github"}), reason: ReasonInvalidSubject, detail: detailInvalidSubject},
		{name: "reserved __scheduler__", tok: hsTok(map[string]any{"sub": "__scheduler__"}), reason: ReasonInvalidSubject, detail: detailInvalidSubject},
		{name: "not reserved scheduler", tok: hsTok(map[string]any{"sub": "scheduler"})},
		{name: "not reserved email", tok: hsTok(map[string]any{"sub": "user@example.com"})},
		{name: "reserved custom user claim", cfg: withCfg(func(c *Config) { c.Claims.UserID = "uid" }),
			tok: hsTok(map[string]any{"uid": "__scheduler__"}), reason: ReasonInvalidSubject, detail: detailInvalidSubject},
		{name: "user id not a string", cfg: withCfg(func(c *Config) { c.Claims.UserID = "uid" }),
			tok: hsTok(map[string]any{"uid": 42}), reason: ReasonInvalidToken, detail: "Invalid token: user id claim is not a string"},
		{name: "sub not a string", tok: hsTok(map[string]any{"sub": 42}), reason: ReasonInvalidToken, detail: "Invalid token: user id claim is not a string"},
		{name: "sub null", tok: func(t testing.TB, k *jwttest.Keys) string {
			return jwttest.Mint(t, jwttest.Token{Alg: "HS256", Key: k.HS, Payload: []byte(`{"sub":null,"exp":` + jtItoa(unix(time.Hour)) + `}`)})
		}, reason: ReasonInvalidToken, detail: "Invalid token: user id claim is not a string"},
		{name: "audience null", tok: func(t testing.TB, k *jwttest.Keys) string {
			return jwttest.Mint(t, jwttest.Token{Alg: "HS256", Key: k.HS, Payload: []byte(`{"aud":null,"exp":` + jtItoa(unix(time.Hour)) + `}`)})
		}, reason: ReasonInvalidToken, detail: "Invalid token: malformed audience claim"},
		{name: "escaped strings", tok: hsTok(map[string]any{"sub": "Zo\u00eb \"Z\"", "scopes": "agents:read\u0020teams:read"}),
			want: &Identity{UserID: "Zo\u00eb \"Z\"", SessionID: "session_test_user", Scopes: []string{"agents:read", "teams:read"}, Expires: jwttest.Now.Add(time.Hour)}},
		{name: "user id with a newline", tok: hsTok(map[string]any{"sub": "alice\r\nx-agentos-scopes: agent_os:admin"}), reason: ReasonInvalidToken},
		{name: "session id not a string", tok: hsTok(map[string]any{"session_id": []any{"a"}}), reason: ReasonInvalidToken, detail: "Invalid token: session id claim is not a string"},

		// Signatures and algorithms.
		{name: "alg none", tok: func(t testing.TB, k *jwttest.Keys) string {
			return jwttest.Mint(t, jwttest.Token{Alg: "none", Claims: jwttest.Claims(nil)})
		}, reason: ReasonInvalidToken},
		{name: "alg NONE with a signature", tok: signed("HS256", hs, nil, map[string]any{"alg": "NONE"}), reason: ReasonInvalidToken, detail: "Invalid token: signing algorithm not allowed"},
		{name: "alg None with a signature", tok: signed("HS256", hs, nil, map[string]any{"alg": "None"}), reason: ReasonInvalidToken, detail: "Invalid token: signing algorithm not allowed"},
		{name: "alg lower case", tok: signed("HS256", hs, nil, map[string]any{"alg": "hs256"}), reason: ReasonInvalidToken, detail: "Invalid token: signing algorithm not allowed"},
		{name: "alg missing", tok: signed("HS256", hs, nil, map[string]any{"alg": nil}), reason: ReasonInvalidToken, detail: "Invalid token: signing algorithm not allowed"},
		{name: "alg not a string", tok: signed("HS256", hs, nil, map[string]any{"alg": 256}), reason: ReasonInvalidToken},
		{name: "hs512 not allowed", tok: signed("HS512", hs, nil, nil), reason: ReasonInvalidToken, detail: "Invalid token: signing algorithm not allowed"},
		{name: "hs256 with the rsa public pem as secret", tok: func(t testing.TB, k *jwttest.Keys) string {
			return jwttest.Mint(t, jwttest.Token{Alg: "HS256", Key: k.RS.PubPEM, Claims: jwttest.Claims(map[string]any{"scopes": []any{"agent_os:admin"}})})
		}, reason: ReasonInvalidToken, detail: "Invalid token: signature verification failed"},
		{name: "hs256 with the rsa public pem as secret and no hmac key", cfg: func(k *jwttest.Keys) Config {
			c := defaultConfig()
			c.Algorithms = []string{"RS256", "HS256"}
			c.VerificationKeys = []string{k.RS.PubPEM, k.HS}
			return c
		}, tok: func(t testing.TB, k *jwttest.Keys) string {
			return jwttest.Mint(t, jwttest.Token{Alg: "HS256", Key: strings.TrimSpace(k.RS.PubPEM), Claims: jwttest.Claims(nil)})
		}, reason: ReasonInvalidToken},
		{name: "hs256 with the ec public pem as secret", tok: func(t testing.TB, k *jwttest.Keys) string {
			return jwttest.Mint(t, jwttest.Token{Alg: "HS256", Key: k.ES.PubPEM, Claims: jwttest.Claims(nil)})
		}, reason: ReasonInvalidToken},
		{name: "hs256 wrong secret", tok: func(t testing.TB, k *jwttest.Keys) string {
			return jwttest.Mint(t, jwttest.Token{Alg: "HS256", Key: "not-the-secret", Claims: jwttest.Claims(nil)})
		}, reason: ReasonInvalidToken, detail: "Invalid token: signature verification failed"},
		{name: "rs256 unknown key", tok: signed("RS256", rs2, nil, nil), reason: ReasonInvalidToken, detail: "Invalid token: signature verification failed"},
		{name: "expired with a forged signature", tok: func(t testing.TB, k *jwttest.Keys) string {
			s := jwttest.Mint(t, jwttest.Token{Alg: "HS256", Key: k.HS, Claims: jwttest.Claims(map[string]any{"exp": unix(-time.Hour)})})
			return jwttest.FlipSig(s)
		}, reason: ReasonInvalidToken, detail: "Invalid token: signature verification failed"},
		{name: "tampered payload", tok: func(t testing.TB, k *jwttest.Keys) string {
			s := jwttest.Mint(t, jwttest.Token{Alg: "HS256", Key: k.HS, Claims: jwttest.Claims(nil)})
			parts := strings.Split(s, ".")
			body, _ := json.Marshal(jwttest.Claims(map[string]any{"scopes": []any{"agent_os:admin"}}))
			return parts[0] + "." + jwttest.B64.EncodeToString(body) + "." + parts[2]
		}, reason: ReasonInvalidToken, detail: "Invalid token: signature verification failed"},
		{name: "crit header", tok: signed("HS256", hs, nil, map[string]any{"crit": []any{"exp"}, "exp": 1}), reason: ReasonInvalidToken, detail: "Invalid token: unsupported critical header"},
		{name: "b64 false", tok: signed("HS256", hs, nil, map[string]any{"b64": false, "crit": []any{"b64"}}), reason: ReasonInvalidToken},
		{name: "crit empty list", tok: signed("HS256", hs, nil, map[string]any{"crit": []any{}}), reason: ReasonInvalidToken, detail: "Invalid token: unsupported critical header"},
		{name: "b64 without crit", tok: signed("HS256", hs, nil, map[string]any{"b64": true}), reason: ReasonInvalidToken, detail: "Invalid token: unsupported critical header"},

		// Malformed tokens.
		{name: "empty", tok: raw(""), reason: ReasonInvalidToken, detail: "Invalid token: empty token"},
		{name: "garbage", tok: raw("invalid-token-format"), reason: ReasonInvalidToken},
		{name: "three garbage parts", tok: raw("invalid.token.here"), reason: ReasonInvalidToken},
		{name: "three garbage base64 parts", tok: raw("invalidA.tokenAAA.hereAAA"), reason: ReasonInvalidToken, detail: "Invalid token: malformed token"},
		{name: "non-canonical base64 (stray low bits)", tok: func(t testing.TB, k *jwttest.Keys) string {
			// The payload of this claim set ends in a 2-character group
			// ("fQ" = "}"): "fX" decodes to the same byte leniently.
			s := jwttest.Mint(t, jwttest.Token{Alg: "HS256", Key: k.HS, Payload: []byte(`{"exp": ` + jtItoa(unix(time.Hour)) + `}`)})
			parts := strings.Split(s, ".")
			if !strings.HasSuffix(parts[1], "Q") {
				t.Fatalf("payload %q does not end in a 2-character group", parts[1])
			}
			parts[1] = parts[1][:len(parts[1])-1] + "X"
			return strings.Join(parts, ".")
		}, reason: ReasonInvalidToken, detail: "Invalid token: not a JWT (not base64url)"},
		{name: "two parts", tok: raw("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0"), reason: ReasonInvalidToken},
		{name: "four parts", tok: raw("a.b.c.d"), reason: ReasonInvalidToken},
		{name: "five parts (JWE shape)", tok: raw("a.b.c.d.e"), reason: ReasonInvalidToken},
		{name: "not base64", tok: raw("@@@.###.$$$"), reason: ReasonInvalidToken, detail: "Invalid token: not a JWT (not base64url)"},
		{name: "padded base64", tok: func(t testing.TB, k *jwttest.Keys) string { return hsTok(nil)(t, k) + "==" }, reason: ReasonInvalidToken},
		{name: "bad base64 length", tok: raw("a.b.c"), reason: ReasonInvalidToken},
		{name: "header not json", tok: raw("bm90LWpzb24.eyJzdWIiOiJ4In0.c2ln"), reason: ReasonInvalidToken},
		{name: "empty header", tok: raw(".eyJzdWIiOiJ4In0.c2ln"), reason: ReasonInvalidToken},
		{name: "unsigned", tok: func(t testing.TB, k *jwttest.Keys) string {
			s := hsTok(nil)(t, k)
			return s[:strings.LastIndexByte(s, '.')+1]
		}, reason: ReasonInvalidToken, detail: "Invalid token: token is not signed"},
		{name: "json serialization", tok: raw(`{"payload":"e30","signatures":[{"protected":"eyJhbGciOiJIUzI1NiJ9","signature":"c2ln"}]}`), reason: ReasonInvalidToken},
		{name: "payload not json", tok: func(t testing.TB, k *jwttest.Keys) string {
			return jwttest.Mint(t, jwttest.Token{Alg: "HS256", Key: k.HS, Payload: []byte("not json")})
		}, reason: ReasonInvalidToken, detail: "Invalid token: malformed claims"},
		{name: "payload json array", tok: func(t testing.TB, k *jwttest.Keys) string {
			return jwttest.Mint(t, jwttest.Token{Alg: "HS256", Key: k.HS, Payload: []byte(`["sub"]`)})
		}, reason: ReasonInvalidToken, detail: "Invalid token: malformed claims"},
		{name: "payload null", tok: func(t testing.TB, k *jwttest.Keys) string {
			return jwttest.Mint(t, jwttest.Token{Alg: "HS256", Key: k.HS, Payload: []byte(`null`)})
		}, reason: ReasonInvalidToken, detail: "Invalid token: malformed claims"},
		{name: "payload with trailing data", tok: func(t testing.TB, k *jwttest.Keys) string {
			b, _ := json.Marshal(jwttest.Claims(nil))
			return jwttest.Mint(t, jwttest.Token{Alg: "HS256", Key: k.HS, Payload: append(b, []byte(`{"scopes":["agent_os:admin"]}`)...)})
		}, reason: ReasonInvalidToken, detail: "Invalid token: malformed claims"},
		{name: "payload is a nested jws", tok: func(t testing.TB, k *jwttest.Keys) string {
			inner := hsTok(nil)(t, k)
			return jwttest.Mint(t, jwttest.Token{Alg: "HS256", Key: k.HS, Payload: []byte(inner)})
		}, reason: ReasonInvalidToken, detail: "Invalid token: malformed claims"},
		{name: "payload is a json jws", tok: func(t testing.TB, k *jwttest.Keys) string {
			return jwttest.Mint(t, jwttest.Token{Alg: "HS256", Key: k.HS, Payload: []byte(`{"payload":"e30","signatures":[{"protected":"eyJhbGciOiJub25lIn0","signature":""}]}`)})
		}, reason: ReasonInvalidToken, detail: "Invalid token: token has no expiry (exp)"},
		{name: "over 8 KiB", tok: func(t testing.TB, k *jwttest.Keys) string { return jtSized(t, k, MaxTokenBytes+1) },
			reason: ReasonInvalidToken, detail: "Invalid token: token is larger than 8 KiB"},
		{name: "exactly 8 KiB", tok: func(t testing.TB, k *jwttest.Keys) string { return jtSized(t, k, MaxTokenBytes) }},
		{name: "huge garbage", tok: raw(strings.Repeat("A", 1<<20)), reason: ReasonInvalidToken, detail: "Invalid token: token is larger than 8 KiB"},

		// validate: false.
		{name: "validate false accepts any signature", cfg: func(k *jwttest.Keys) Config {
			c := defaultConfig()
			c.Validate, c.Algorithms = jwttest.Ptr(false), []string{"HS256"}
			return c
		}, tok: func(t testing.TB, k *jwttest.Keys) string {
			return jwttest.Mint(t, jwttest.Token{Alg: "HS256", Key: "any-secret-doesnt-matter", Claims: jwttest.Claims(nil)})
		}, want: stdIdentity()},
		{name: "validate false still checks exp", cfg: func(k *jwttest.Keys) Config {
			c := defaultConfig()
			c.Validate, c.Algorithms = jwttest.Ptr(false), []string{"HS256"}
			return c
		}, tok: func(t testing.TB, k *jwttest.Keys) string {
			return jwttest.Mint(t, jwttest.Token{Alg: "HS256", Key: "unknown-key", Claims: jwttest.Claims(map[string]any{"exp": unix(-time.Hour)})})
		}, reason: ReasonTokenExpired, detail: detailExpired},
		{name: "validate false still checks audience and issuer", cfg: withCfg(func(c *Config) {
			c.Validate, c.VerifyAudience, c.Issuer = jwttest.Ptr(false), true, "https://issuer.test"
		}), aud: []string{"test-os"}, tok: func(t testing.TB, k *jwttest.Keys) string {
			return jwttest.Mint(t, jwttest.Token{Alg: "HS256", Key: "whatever", Claims: jwttest.Claims(map[string]any{"aud": "other-os", "iss": "https://issuer.test"})})
		}, reason: ReasonInvalidAudience, detail: detailInvalidAudience},
		{name: "validate false refuses garbage", cfg: withCfg(func(c *Config) { c.Validate = jwttest.Ptr(false) }),
			tok: raw("not-a-jwt"), reason: ReasonInvalidToken},
		{name: "validate false refuses alg none", cfg: withCfg(func(c *Config) { c.Validate = jwttest.Ptr(false) }),
			tok: func(t testing.TB, k *jwttest.Keys) string {
				return jwttest.Mint(t, jwttest.Token{Alg: "none", Claims: jwttest.Claims(nil)}) + "c2ln"
			},
			reason: ReasonInvalidToken, detail: "Invalid token: signing algorithm not allowed"},
		{name: "validate false refuses an algorithm not listed", cfg: func(k *jwttest.Keys) Config {
			c := defaultConfig()
			c.Validate, c.Algorithms = jwttest.Ptr(false), []string{"RS256"}
			return c
		}, tok: hsTok(nil), reason: ReasonInvalidToken, detail: "Invalid token: signing algorithm not allowed"},
	}
}

func jtItoa(i int64) string { b, _ := json.Marshal(i); return string(b) }

// jtSized mints a valid HS256 token of exactly n bytes.
func jtSized(t testing.TB, k *jwttest.Keys, n int) string {
	t.Helper()
	pad := ""
	for range 3 {
		s := jwttest.Mint(t, jwttest.Token{Alg: "HS256", Key: k.HS, Claims: jwttest.Claims(map[string]any{"pad": pad})})
		if len(s) == n {
			return s
		}
		// 4 base64 characters carry 3 payload bytes.
		more := (n - len(s)) * 3 / 4
		pad += strings.Repeat("x", more)
	}
	for i := 0; i < 8; i++ {
		s := jwttest.Mint(t, jwttest.Token{Alg: "HS256", Key: k.HS, Claims: jwttest.Claims(map[string]any{"pad": pad})})
		switch {
		case len(s) == n:
			return s
		case len(s) < n:
			pad += "x"
		default:
			pad = pad[:len(pad)-1]
		}
	}
	t.Fatalf("cannot mint a token of %d bytes", n)
	return ""
}

func TestVerify(t *testing.T) {
	k := jwttest.LoadKeys(t)
	for _, tc := range verifyCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			cfg := jtBaseConfig(k)
			if tc.cfg != nil {
				cfg = tc.cfg(k)
			}
			v := jtVerifier(t, cfg, Options{Audience: tc.aud})
			raw := tc.tok(t, k)
			id, f := v.Verify(t.Context(), raw)
			checkOutcome(t, raw, id, f, tc.reason, tc.detail, tc.want)
		})
	}
}

// checkOutcome asserts a Verify result and, on failure, that the detail
// quotes no part of the token.
func checkOutcome(t *testing.T, raw string, id Identity, f *Failure, reason Reason, detail string, want *Identity) {
	t.Helper()
	if reason == ReasonUnknown {
		if f != nil {
			t.Fatalf("Verify = %v %q, want a valid token", f.Reason(), f.Detail())
		}
		if want != nil && !reflect.DeepEqual(id, *want) {
			t.Fatalf("Verify identity =\n %+v\nwant\n %+v", id, *want)
		}
		return
	}
	if f == nil {
		t.Fatalf("Verify = valid %+v, want %v %q", id, reason, detail)
	}
	if f.Reason() != reason {
		t.Fatalf("Verify reason = %v (%q), want %v", f.Reason(), f.Detail(), reason)
	}
	switch {
	case detail != "" && f.Detail() != detail:
		t.Fatalf("Verify detail = %q, want %q", f.Detail(), detail)
	case reason == ReasonInvalidToken && !strings.HasPrefix(f.Detail(), detailInvalidPrefix):
		t.Fatalf("Verify detail = %q, want prefix %q", f.Detail(), detailInvalidPrefix)
	}
	if !reflect.DeepEqual(id, Identity{}) {
		t.Fatalf("Verify failed but returned identity %+v", id)
	}
	for part := range strings.SplitSeq(raw, ".") {
		if len(part) >= 6 && strings.Contains(f.Detail(), part) {
			t.Fatalf("detail %q quotes the token", f.Detail())
		}
	}
}

// TestVerifyJWKS covers docs/CONTRACT.md §5 key selection with a JWKS file.
func TestVerifyJWKS(t *testing.T) {
	k := jwttest.LoadKeys(t)
	pub := func(p jwttest.KeyPair) crypto.PublicKey { return p.Priv.Public() }
	files := map[string]string{
		// kids rs (RSA) and es (EC), none without a kid.
		"keyed": jwttest.WriteFile(t, "keyed.json", jwttest.JWKS(t, []crypto.PublicKey{pub(k.RS), pub(k.ES)}, []string{"rs", "es"}, []string{"RS256", "ES256"})),
		// kid rs, and rs2 without a kid.
		"mixed": jwttest.WriteFile(t, "mixed.json", jwttest.JWKS(t, []crypto.PublicKey{pub(k.RS), pub(k.RS2)}, []string{"rs", ""}, []string{"RS256", "RS256"})),
		// rs without kid nor alg.
		"nokid": jwttest.WriteFile(t, "nokid.json", jwttest.JWKS(t, []crypto.PublicKey{pub(k.RS)}, []string{""}, nil)),
		// an encryption key with kid rs, and rs2 with kid rs2 but alg PS256.
		"odd": jwttest.WriteFile(t, "odd.json", []byte(`{"keys":[`+jwttest.JWK(t, pub(k.RS), "rs", "enc")+`,`+jwttest.JWK(t, pub(k.RS2), "rs2", "sig", "PS256")+`]}`)),
	}
	rsTok := func(key jwttest.KeyPair, alg string, header map[string]any, over map[string]any) func(testing.TB, *jwttest.Keys) string {
		return func(t testing.TB, _ *jwttest.Keys) string {
			return jwttest.Mint(t, jwttest.Token{Alg: alg, Key: key.Priv, Header: header, Claims: jwttest.Claims(over)})
		}
	}
	cases := []struct {
		name, file string
		static     []string
		algs       []string
		tok        func(testing.TB, *jwttest.Keys) string
		reason     Reason
		detail     string
	}{
		{name: "kid match", file: "keyed", tok: rsTok(k.RS, "RS256", map[string]any{"kid": "rs"}, nil)},
		{name: "kid match es", file: "keyed", tok: rsTok(k.ES, "ES256", map[string]any{"kid": "es"}, nil)},
		{name: "kid match wrong signer", file: "keyed", tok: rsTok(k.RS2, "RS256", map[string]any{"kid": "rs"}, nil),
			reason: ReasonInvalidToken, detail: "Invalid token: signature verification failed"},
		{name: "kid of another key type", file: "keyed", tok: rsTok(k.ES, "ES256", map[string]any{"kid": "rs"}, nil),
			reason: ReasonInvalidToken, detail: "Invalid token: no verification key for this token"},
		{name: "no kid and no kid-less key", file: "keyed", tok: rsTok(k.RS, "RS256", nil, nil),
			reason: ReasonInvalidToken, detail: "Invalid token: no verification key for this token"},
		{name: "unknown kid and no kid-less key", file: "keyed", tok: rsTok(k.RS, "RS256", map[string]any{"kid": "gone"}, nil), reason: ReasonInvalidToken},
		{name: "mixed kid match", file: "mixed", tok: rsTok(k.RS, "RS256", map[string]any{"kid": "rs"}, nil)},
		{name: "mixed kid is not a fallback", file: "mixed", tok: rsTok(k.RS2, "RS256", map[string]any{"kid": "rs"}, nil), reason: ReasonInvalidToken},
		{name: "mixed no kid uses kid-less", file: "mixed", tok: rsTok(k.RS2, "RS256", nil, nil)},
		{name: "mixed unknown kid uses kid-less", file: "mixed", tok: rsTok(k.RS2, "RS256", map[string]any{"kid": "rotated-away"}, nil)},
		{name: "mixed kid-less expired", file: "mixed", tok: rsTok(k.RS2, "RS256", nil, map[string]any{"exp": unix(-time.Hour)}),
			reason: ReasonTokenExpired, detail: detailExpired},
		{name: "nokid", file: "nokid", tok: rsTok(k.RS, "RS256", nil, nil)},
		{name: "nokid unknown kid", file: "nokid", tok: rsTok(k.RS, "RS256", map[string]any{"kid": "rotated-away"}, nil)},
		{name: "nokid wrong key", file: "nokid", tok: rsTok(k.RS2, "RS256", nil, nil), reason: ReasonInvalidToken},
		{name: "nokid es256 not allowed", file: "nokid", tok: rsTok(k.ES, "ES256", nil, nil), reason: ReasonInvalidToken, detail: "Invalid token: signing algorithm not allowed"},
		{name: "static key after jwks", file: "keyed", static: []string{k.RS2.PubPEM}, tok: rsTok(k.RS2, "RS256", map[string]any{"kid": "rs"}, nil)},
		{name: "static key for a token without kid", file: "keyed", static: []string{k.RS.PubPEM}, tok: rsTok(k.RS, "RS256", nil, nil)},
		{name: "enc key skipped", file: "odd", algs: []string{"RS256", "PS256"}, static: []string{k.RS2.PubPEM},
			tok: rsTok(k.RS, "RS256", map[string]any{"kid": "rs"}, nil), reason: ReasonInvalidToken, detail: "Invalid token: signature verification failed"},
		{name: "key alg pins", file: "odd", algs: []string{"RS256", "PS256"}, static: []string{k.RS.PubPEM},
			tok: rsTok(k.RS2, "RS256", map[string]any{"kid": "rs2"}, nil), reason: ReasonInvalidToken, detail: "Invalid token: signature verification failed"},
		{name: "key alg allows its own", file: "odd", algs: []string{"RS256", "PS256"}, static: []string{k.RS.PubPEM},
			tok: rsTok(k.RS2, "PS256", map[string]any{"kid": "rs2"}, nil)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := defaultConfig()
			c.JWKSFile = files[tc.file]
			c.VerificationKeys = tc.static
			c.Algorithms = tc.algs
			if c.Algorithms == nil {
				c.Algorithms = map[string][]string{"keyed": {"RS256", "ES256"}, "mixed": {"RS256"}, "nokid": {"RS256"}}[tc.file]
			}
			v := jtVerifier(t, c, Options{})
			raw := tc.tok(t, k)
			id, f := v.Verify(t.Context(), raw)
			checkOutcome(t, raw, id, f, tc.reason, tc.detail, nil)
		})
	}
}

// fakeJWKS is a jwksSource whose Refetch swaps in the next set.
type fakeJWKS struct {
	cur, next *keySet
	refetches atomic.Int32
	kids      []string
}

func (f *fakeJWKS) Keys(context.Context) (*keySet, error) { return f.cur, nil }
func (f *fakeJWKS) Refetch(_ context.Context, kid string) (*keySet, error) {
	f.refetches.Add(1)
	f.kids = append(f.kids, kid)
	return f.next, nil
}

func TestVerifyJWKSRefetchOnKidMiss(t *testing.T) {
	k := jwttest.LoadKeys(t)
	old, err := parseJWKS(jwttest.JWKS(t, []crypto.PublicKey{k.RS.Priv.Public()}, []string{"old"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := parseJWKS(jwttest.JWKS(t, []crypto.PublicKey{k.RS2.Priv.Public()}, []string{"new"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	src := &fakeJWKS{cur: old, next: rotated}
	c := defaultConfig()
	c.JWKSURL = "https://idp.example/jwks.json"
	v := jtVerifier(t, c, Options{jwks: src})

	tok := jwttest.Mint(t, jwttest.Token{Alg: "RS256", Key: k.RS.Priv, Header: map[string]any{"kid": "old"}, Claims: jwttest.Claims(nil)})
	if _, f := v.Verify(t.Context(), tok); f != nil {
		t.Fatalf("Verify(kid old) = %q, want valid", f.Detail())
	}
	if n := src.refetches.Load(); n != 0 {
		t.Fatalf("refetches after a kid hit = %d, want 0", n)
	}
	tok = jwttest.Mint(t, jwttest.Token{Alg: "RS256", Key: k.RS2.Priv, Header: map[string]any{"kid": "new"}, Claims: jwttest.Claims(nil)})
	if _, f := v.Verify(t.Context(), tok); f != nil {
		t.Fatalf("Verify(kid new) = %q, want valid after one refetch", f.Detail())
	}
	if n := src.refetches.Load(); n != 1 || src.kids[0] != "new" {
		t.Fatalf("refetches = %d %v, want 1 for kid new", n, src.kids)
	}
	src.next = nil
	tok = jwttest.Mint(t, jwttest.Token{Alg: "RS256", Key: k.RS2.Priv, Header: map[string]any{"kid": "forged"}, Claims: jwttest.Claims(nil)})
	if _, f := v.Verify(t.Context(), tok); f == nil {
		t.Fatal("Verify(unknown kid, nothing new) = valid, want invalid")
	}
	if n := src.refetches.Load(); n != 2 {
		t.Fatalf("refetches = %d, want exactly one more", n)
	}
	tok = jwttest.Mint(t, jwttest.Token{Alg: "RS256", Key: k.RS.Priv, Claims: jwttest.Claims(nil)})
	if _, f := v.Verify(t.Context(), tok); f == nil {
		t.Fatal("Verify(no kid, no kid-less key) = valid, want invalid")
	}
	if n := src.refetches.Load(); n != 2 {
		t.Fatalf("a token without kid refetched: %d", n)
	}
}

// TestVerifyNeverFetchesJKU: jku and x5u headers name a server that fails
// the test if it is ever contacted.
func TestVerifyNeverFetchesJKU(t *testing.T) {
	k := jwttest.LoadKeys(t)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		t.Errorf("the verifier fetched %s", r.URL.Path)
		_, _ = w.Write(jwttest.JWKS(t, []crypto.PublicKey{k.RS2.Priv.Public()}, []string{"attacker"}, nil))
	}))
	defer srv.Close()
	jwksFile := jwttest.WriteFile(t, "jwks.json", jwttest.JWKS(t, []crypto.PublicKey{k.RS.Priv.Public()}, []string{"rs"}, nil))
	for _, cfg := range []Config{
		{VerificationKeys: []string{k.RS.PubPEM}},
		{JWKSFile: jwksFile},
		{Validate: jwttest.Ptr(false)},
	} {
		v := jtVerifier(t, cfg, Options{})
		for _, h := range []map[string]any{
			{"jku": srv.URL + "/jwks.json", "kid": "attacker"},
			{"x5u": srv.URL + "/cert.pem"},
			{"jku": srv.URL + "/jwks.json", "x5u": srv.URL + "/cert.pem", "kid": "rs"},
		} {
			tok := jwttest.Mint(t, jwttest.Token{Alg: "RS256", Key: k.RS2.Priv, Header: h, Claims: jwttest.Claims(nil)})
			_, f := v.Verify(t.Context(), tok)
			if cfg.Validate == nil && f == nil {
				t.Errorf("Verify(token of an unknown key with %v) = valid", h)
			}
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("jku/x5u server hit %d times", n)
	}
}

func TestVerifyCanceledContext(t *testing.T) {
	k := jwttest.LoadKeys(t)
	v := jtVerifier(t, jtBaseConfig(k), Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, f := v.Verify(ctx, hsTok(nil)(t, k))
	if f == nil || f.Reason() != ReasonCanceled {
		t.Fatalf("Verify(cancelled) = %+v, want ReasonCanceled", f)
	}
}

// TestVerifyConcurrent runs Verify from many goroutines (for -race).
func TestVerifyConcurrent(t *testing.T) {
	k := jwttest.LoadKeys(t)
	v := jtVerifier(t, jtBaseConfig(k), Options{})
	toks := []string{hsTok(nil)(t, k), jwttest.Mint(t, jwttest.Token{Alg: "ES256", Key: k.ES.Priv, Claims: jwttest.Claims(nil)}), "garbage"}
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 50 {
				tok := toks[(g+i)%len(toks)]
				_, f := v.Verify(context.Background(), tok)
				if (tok == "garbage") != (f != nil) {
					t.Errorf("concurrent Verify outcome wrong: %+v", f)
					return
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
}
