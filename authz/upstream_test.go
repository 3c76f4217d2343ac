package authz

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"go.uber.org/zap"
)

// signingKeyFile writes a fresh identity-token signing key of alg (RS256,
// ES256, EdDSA) as a PKCS#8 PEM file and returns its path.
func signingKeyFile(t testing.TB, alg string) string {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case "RS256":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("no key for %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "upstream.key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// upstreamYAML is the upstream: section with identity tokens signed by
// keyFile; extra lines are indented into it.
func upstreamYAML(keyFile string, extra ...string) string {
	s := "upstream:\n  identity_token: true\n  signing_key_file: " + keyFile + "\n"
	for _, e := range extra {
		s += "  " + e + "\n"
	}
	return s
}

// stepClock is a settable test clock.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *stepClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// identityHeader returns the authorization value of an allowed decision's
// upstream headers, and how many there are.
func identityHeader(d *Decision) (string, int) {
	v, n := "", 0
	for _, h := range d.Upstream {
		if strings.EqualFold(h.Name, "authorization") {
			v, n = h.Value, n+1
		}
	}
	return v, n
}

// verifyIdentity verifies the "Bearer <t>" value against the authorizer's
// published JWK Set as AgentOS would (JWT_JWKS_FILE, audience = os id, at
// now) and returns the token's claims as JSON values and its kid.
func verifyIdentity(t *testing.T, a *Authorizer, header string, now time.Time) (map[string]any, string) {
	t.Helper()
	tok, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		t.Fatalf("authorization = %.20q…, want Bearer <token>", header)
	}
	set, err := jwk.Parse(a.UpstreamJWKS())
	if err != nil {
		t.Fatalf("published JWK Set: %v", err)
	}
	if _, err := jwt.Parse([]byte(tok), jwt.WithKeySet(set), jwt.WithAudience("test-os"), jwt.WithIssuer("agentos-authz"),
		jwt.WithClock(jwt.ClockFunc(func() time.Time { return now }))); err != nil {
		t.Fatalf("identity token does not verify against /.well-known/jwks.json: %v", err)
	}
	msg, err := jws.Parse([]byte(tok))
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(msg.Payload(), &claims); err != nil {
		t.Fatal(err)
	}
	return claims, msg.Signatures()[0].ProtectedHeaders().KeyID()
}

func TestUpstreamConfigErrors(t *testing.T) {
	pub := filepath.Join(t.TempDir(), "pub.pem")
	_, rsaPub := rsaKeyPEM(t)
	if err := os.WriteFile(pub, []byte(rsaPub), 0o600); err != nil {
		t.Fatal(err)
	}
	good := signingKeyFile(t, "EdDSA")
	tests := []struct {
		name string
		yaml string
		want []string // each a substring of the error
	}{
		{name: "no key file", yaml: hsConfig("upstream:\n  identity_token: true\n"),
			want: []string{"upstream.signing_key_file: required with upstream.identity_token: true"}},
		{name: "no os id", yaml: strings.TrimPrefix(hsConfig(upstreamYAML(good)), "os_id: test-os\n"),
			want: []string{"os_id: required with upstream.identity_token: true"}},
		{name: "public key", yaml: hsConfig(upstreamYAML(pub)),
			want: []string{"upstream.signing_key_file: " + pub + ": the file holds a public key"}},
		{name: "missing file", yaml: hsConfig(upstreamYAML(pub + ".missing")),
			want: []string{"upstream.signing_key_file: open " + pub + ".missing"}},
		{name: "unverified tokens", yaml: "os_id: test-os\njwt:\n  algorithms: [HS256]\n  validate: false\n" + upstreamYAML(good),
			want: []string{"upstream.identity_token: true with jwt.validate: false would sign identities no one verified"}},
		{name: "bad listing filter", yaml: hsConfig("upstream:\n  listing_filter: filter\n"),
			want: []string{`upstream.listing_filter: "filter" must be upstream`}},
		{name: "ttl zero", yaml: hsConfig("upstream:\n  token_ttl: 0s\n"), want: []string{"upstream.token_ttl: 0s must be at least 1s"}},
		{name: "empty issuer", yaml: hsConfig("upstream:\n  issuer: \"\"\n"), want: []string{"upstream.issuer: must not be empty"}},
		{name: "unknown field", yaml: hsConfig("upstream:\n  identity_tokens: true\n"), want: []string{"upstream.identity_tokens"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load([]byte(tt.yaml), nil, LoadOptions{})
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
	t.Run("defaults", func(t *testing.T) {
		cfg, err := Load([]byte(hsConfig("")), nil, LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := UpstreamConfig{Issuer: "agentos-authz", TokenTTL: Duration{time.Minute}, ListingFilter: "upstream"}
		if cfg.Upstream != want {
			t.Errorf("Upstream = %+v, want %+v", cfg.Upstream, want)
		}
	})
}

func TestUpstreamWarnings(t *testing.T) {
	key := signingKeyFile(t, "ES256")
	tests := []struct {
		name, yaml string
		want       []string // warning fields
	}{
		{name: "default", yaml: hsConfig(""), want: []string{"upstream.listing_filter"}},
		{name: "identity tokens", yaml: hsConfig(upstreamYAML(key))},
		{name: "agentos verifies", yaml: hsConfig("upstream:\n  agentos_verifies: true\n")},
		{name: "deny", yaml: hsConfig("upstream:\n  listing_filter: deny\n")},
		{name: "security key only", yaml: "os_id: test-os\nsecurity_key: sk-0123456789abcdef\n" + upstreamYAML(key),
			want: []string{"upstream.identity_token"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load([]byte(tt.yaml), nil, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range cfg.Warnings() {
				got = append(got, w.Field)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("warnings on %v, want %v", got, tt.want)
			}
		})
	}
}

// TestIdentityTokenClaims: the re-issued token verifies against the
// published set and carries exactly the claims of docs/CONTRACT.md §9.
func TestIdentityTokenClaims(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			a := newTestAuthorizer(t, hsConfig(upstreamYAML(signingKeyFile(t, alg))), nil, nil)
			caller := mintHS(t, claims{"sub": "u1", "session_id": "s1", "aud": "test-os", "iss": "https://idp.example",
				"scopes": []any{"agents:read", "agents:web:run", 7, ""}, "email": "u1@example.com"})
			d := a.Decide(context.Background(), &Request{Method: "POST", Path: "/agents/web/runs",
				Headers: with(bearerH(caller), "x-agentos-user-id", "forged")})
			if !d.Allowed() {
				t.Fatalf("Decide = %d %q", d.Status, d.Detail)
			}
			v, n := identityHeader(&d)
			if n != 1 {
				t.Fatalf("%d authorization headers upstream, want 1", n)
			}
			if strings.Contains(v, caller) {
				t.Fatal("the upstream receives the caller's token")
			}
			got, kid := verifyIdentity(t, a, v, testNow)
			jti, _ := got["jti"].(string)
			if raw, err := base64.RawURLEncoding.DecodeString(jti); err != nil || len(raw) != 16 {
				t.Errorf("jti %q is not 128 random bits", jti)
			}
			delete(got, "jti")
			want := map[string]any{"iss": "agentos-authz", "aud": []any{"test-os"}, "sub": "u1", "session_id": "s1",
				"scopes": []any{"agents:read", "agents:web:run"}, "iat": float64(testNow.Unix()), "exp": float64(testNow.Add(time.Minute).Unix())}
			if !mapsEqualJSON(got, want) {
				t.Errorf("claims = %v\nwant      %v (+ jti)", got, want)
			}
			set, err := jwk.Parse(a.UpstreamJWKS())
			if err != nil {
				t.Fatal(err)
			}
			k, _ := set.Key(0)
			tp, err := k.Thumbprint(crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			if want := base64.RawURLEncoding.EncodeToString(tp); kid != want || k.KeyID() != want {
				t.Errorf("kid %q, published kid %q, want the RFC 7638 thumbprint %q", kid, k.KeyID(), want)
			}
			if k.Algorithm().String() != alg {
				t.Errorf("published alg %v, want %s", k.Algorithm(), alg)
			}
		})
	}
}

func mapsEqualJSON(a, b map[string]any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// TestIdentityTokenExp: exp is never later than the caller's, and a token
// without sub, session_id or scopes carries none of them but an empty list.
func TestIdentityTokenExp(t *testing.T) {
	// GET /public needs no scope: a caller without any is allowed.
	a := newTestAuthorizer(t, hsConfig("scope_mappings:\n  \"GET /public\": []\n"+upstreamYAML(signingKeyFile(t, "EdDSA"))), nil, nil)
	for _, tc := range []struct {
		name   string
		exp    time.Time
		want   time.Time
		claims claims
	}{
		{name: "caller expires first", exp: testNow.Add(30*time.Second + 500*time.Millisecond), want: testNow.Add(30 * time.Second)},
		{name: "ttl first", exp: testNow.Add(2 * time.Hour), want: testNow.Add(time.Minute)},
		{name: "no identity claims", exp: testNow.Add(time.Hour), want: testNow.Add(time.Minute), claims: claims{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.claims
			if c == nil {
				c = user("agents:read")
			}
			c = maps.Clone(c)
			c["exp"] = tc.exp.Unix()
			if tc.exp.Truncate(time.Second) != tc.exp {
				c["exp"] = float64(tc.exp.UnixMilli()) / 1000
			}
			d := a.Decide(context.Background(), &Request{Method: "GET", Path: "/public", Headers: bearerH(mintHS(t, c))})
			if !d.Allowed() {
				t.Fatalf("Decide = %d %q", d.Status, d.Detail)
			}
			v, _ := identityHeader(&d)
			got, _ := verifyIdentity(t, a, v, testNow)
			if exp := int64(got["exp"].(float64)); exp != tc.want.Unix() || exp > tc.exp.Unix() {
				t.Errorf("exp = %d, want %d (caller's %v)", exp, tc.want.Unix(), tc.exp)
			}
			if tc.claims != nil {
				for _, k := range []string{"sub", "session_id"} {
					if _, ok := got[k]; ok {
						t.Errorf("claim %s present for a caller without it", k)
					}
				}
				if s, ok := got["scopes"].([]any); !ok || len(s) != 0 {
					t.Errorf("scopes = %v, want []", got["scopes"])
				}
			}
		})
	}
}

// TestIdentityTokenCache: the token is kept beside the verified caller
// token and sent while Fresh, then signed again; without the cache every
// allowed request is signed.
func TestIdentityTokenCache(t *testing.T) {
	key := signingKeyFile(t, "EdDSA")
	clock := &stepClock{t: testNow}
	a := cachedAuthorizer(t, hsConfig(upstreamYAML(key)), clock.now, nil)
	tok := mintHS(t, user("agents:read"))
	identity := func() string {
		t.Helper()
		d := a.Decide(context.Background(), getAgents(tok))
		if !d.Allowed() {
			t.Fatalf("Decide = %d %q", d.Status, d.Detail)
		}
		v, n := identityHeader(&d)
		if n != 1 {
			t.Fatalf("%d authorization headers", n)
		}
		return v
	}
	first := identity()
	if again := identity(); again != first {
		t.Error("a cached caller token got a new identity token while the first was fresh")
	}
	// Margin(60s) = 15s: fresh until 45s after issue.
	clock.advance(44 * time.Second)
	if again := identity(); again != first {
		t.Error("signed again 44s into a 60s token")
	}
	clock.advance(2 * time.Second)
	renewed := identity()
	if renewed == first {
		t.Fatal("not signed again 46s into a 60s token")
	}
	got, _ := verifyIdentity(t, a, renewed, clock.now())
	if exp := int64(got["exp"].(float64)); exp != clock.now().Add(time.Minute).Unix() {
		t.Errorf("renewed exp = %d, want now + 60s", exp)
	}
	if again := identity(); again != renewed {
		t.Error("the renewed token is not kept")
	}

	uncached := cachedAuthorizer(t, hsConfig("  cache_size: 0\n"+upstreamYAML(key)), clock.now, nil)
	seen := map[string]bool{}
	for range 3 {
		d := uncached.Decide(context.Background(), getAgents(tok))
		v, n := identityHeader(&d)
		if !d.Allowed() || n != 1 {
			t.Fatalf("Decide = %d %q with %d authorization headers", d.Status, d.Detail, n)
		}
		verifyIdentity(t, uncached, v, clock.now())
		seen[v] = true
	}
	if len(seen) != 3 {
		t.Errorf("cache off: %d distinct tokens for 3 requests, want 3 (signed each time)", len(seen))
	}
}

// TestIdentityTokenPassThrough: the security key, excluded routes and
// preflights reach the upstream with their own authorization.
func TestIdentityTokenPassThrough(t *testing.T) {
	const key = "sk-test-0123456789abcdef"
	a := newTestAuthorizer(t, hsConfig("security_key: "+key+"\nsecurity_key_migration: true\n"+upstreamYAML(signingKeyFile(t, "EdDSA"))), nil, nil)
	jwtTok := mintHS(t, user("agents:read"))
	for _, tc := range []struct {
		name string
		r    Request
		auth string
	}{
		{name: "security key", r: Request{Method: "GET", Path: "/agents", Headers: bearerH(key)}, auth: AuthSecurityKey},
		{name: "excluded route", r: Request{Method: "GET", Path: "/health", Headers: bearerH(jwtTok)}, auth: authNone},
		{name: "preflight", r: Request{Method: "OPTIONS", Path: "/agents", Headers: bearerH(jwtTok)}, auth: authNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := a.Decide(context.Background(), &tc.r)
			if !d.Allowed() || d.Auth != tc.auth {
				t.Fatalf("Decide = %d %q auth %q, want allowed as %q", d.Status, d.Detail, d.Auth, tc.auth)
			}
			if _, n := identityHeader(&d); n != 0 {
				t.Errorf("an authorization header is set upstream; the caller's must pass unchanged")
			}
		})
	}
}

// TestIdentityTokenSigningFailure: a token that cannot be signed denies
// 503 (fail closed), never allows with the caller's token.
func TestIdentityTokenSigningFailure(t *testing.T) {
	a := newTestAuthorizer(t, hsConfig(upstreamYAML(signingKeyFile(t, "EdDSA"))), nil, nil)
	s := a.snap.Load()
	r := &Request{Method: "GET", Path: "/agents", Headers: with(bearerH("t"), "origin", "https://app.example")}
	allowed := Decision{Status: 200, Reason: ReasonAllowed, Auth: authJWT, UserID: "u1", Rule: "GET /agents"}
	// A principal without its slot: the one fault Sign's caller can have.
	deny, ok := s.identityToken(r, &principal{userID: "u1"}, authJWT, &allowed, zap.NewNop())
	if ok {
		t.Fatal("identityToken succeeded without a slot")
	}
	if deny.Status != 503 || deny.Detail != "Authentication is temporarily unavailable" || deny.Reason != ReasonIdentityTokenFailed {
		t.Errorf("deny = %d %q %v, want 503 Authentication is temporarily unavailable", deny.Status, deny.Detail, deny.Reason)
	}
	if len(deny.Upstream) != 0 || len(deny.Response) == 0 {
		t.Errorf("deny has upstream headers %v / CORS %v", deny.Upstream, deny.Response)
	}
	if !errors.Is(s.up.addIdentityToken(&principal{}, testNow, &allowed), errNoSlot) {
		t.Error("addIdentityToken without a slot: want errNoSlot")
	}
	if ReasonIdentityTokenFailed.String() != "identity_token_failed" {
		t.Errorf("reason code %q", ReasonIdentityTokenFailed)
	}
}

// TestIdentityTokenCallerKeys: callers whose tokens come from a static
// RS256 key, an HMAC secret and a JWKS file all reach the upstream with a
// token of the same stable key.
func TestIdentityTokenCallerKeys(t *testing.T) {
	rsaKey, rsaPEM := rsaKeyPEM(t)
	esKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubJWK, err := jwk.FromRaw(&esKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	must(t, pubJWK.Set(jwk.KeyIDKey, "idp-es"))
	must(t, pubJWK.Set(jwk.AlgorithmKey, jwa.ES256))
	set := jwk.NewSet()
	must(t, set.AddKey(pubJWK))
	setJSON, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	jwksFile := filepath.Join(t.TempDir(), "idp.jwks.json")
	must(t, os.WriteFile(jwksFile, setJSON, 0o600))
	privJWK, err := jwk.FromRaw(esKey)
	if err != nil {
		t.Fatal(err)
	}
	must(t, privJWK.Set(jwk.KeyIDKey, "idp-es"))

	cfg := "os_id: test-os\njwt:\n  algorithms: [RS256, HS256, ES256]\n  jwks_file: " + jwksFile +
		"\n  verification_keys:\n    - \"" + hsKey + "\"\n    - |\n" + indent(rsaPEM, "      ") + "\n" + upstreamYAML(signingKeyFile(t, "RS256"))
	a := newTestAuthorizer(t, cfg, nil, nil)
	callers := map[string]string{
		"RS256 static key": mint(t, jwa.RS256, rsaKey, user("agents:read")),
		"HS256 secret":     mintHS(t, user("agents:read")),
		"JWKS file":        mint(t, jwa.ES256, privJWK, user("agents:read")),
	}
	kids := map[string]bool{}
	for name, tok := range callers {
		d := a.Decide(context.Background(), getAgents(tok))
		if !d.Allowed() {
			t.Fatalf("%s: Decide = %d %q", name, d.Status, d.Detail)
		}
		v, _ := identityHeader(&d)
		claims, kid := verifyIdentity(t, a, v, testNow)
		if claims["sub"] != "u1" {
			t.Errorf("%s: sub %v", name, claims["sub"])
		}
		kids[kid] = true
	}
	if len(kids) != 1 {
		t.Errorf("identity tokens signed under %d kids, want 1", len(kids))
	}
}

// TestListingFilterDeny: docs/CONTRACT.md §9, upstream.listing_filter.
func TestListingFilterDeny(t *testing.T) {
	perResource := mintHS(t, user("agents:web:read"))
	global := mintHS(t, user("agents:read"))
	for _, tc := range []struct {
		name, filter, tok string
		status            int
		detail            string
		reason            Reason
	}{
		{name: "upstream filters", filter: "upstream", tok: perResource, status: 200, reason: ReasonAllowedListing},
		{name: "deny", filter: "deny", tok: perResource, status: 403, reason: ReasonInsufficientScopes,
			detail: "Insufficient permissions. Required scope(s): agents:read"},
		{name: "deny, global scope", filter: "deny", tok: global, status: 200, reason: ReasonAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newTestAuthorizer(t, hsConfig("upstream:\n  listing_filter: "+tc.filter+"\n"), nil, nil)
			d := a.Decide(context.Background(), getAgents(tc.tok))
			if d.Status != tc.status || d.Detail != tc.detail || d.Reason != tc.reason {
				t.Errorf("Decide = %d %q %v, want %d %q %v", d.Status, d.Detail, d.Reason, tc.status, tc.detail, tc.reason)
			}
			if tc.status == 403 {
				if !slices.Equal(d.Missing, []string{"agents:read"}) || d.Rule != "GET /agents" || len(d.Upstream) != 0 {
					t.Errorf("deny explanation: rule %q missing %v upstream %v", d.Rule, d.Missing, d.Upstream)
				}
			}
		})
	}
	// The same caller without the per-resource scope gets the same detail.
	a := newTestAuthorizer(t, hsConfig("upstream:\n  listing_filter: deny\n"), nil, nil)
	none := a.Decide(context.Background(), getAgents(mintHS(t, user("teams:read"))))
	if none.Status != 403 || none.Detail != "Insufficient permissions. Required scope(s): agents:read" {
		t.Errorf("no scope: %d %q", none.Status, none.Detail)
	}
}

func TestUpstreamJWKSOff(t *testing.T) {
	a := newTestAuthorizer(t, hsConfig(""), nil, nil)
	if set := a.UpstreamJWKS(); set != nil {
		t.Errorf("UpstreamJWKS without identity tokens = %s", set)
	}
	d := a.Decide(context.Background(), getAgents(mintHS(t, user("agents:read"))))
	if _, n := identityHeader(&d); !d.Allowed() || n != 0 {
		t.Errorf("identity tokens off: %d with %d authorization headers", d.Status, n)
	}
}

// TestUpstreamRotation: a reload with a new signing key signs with it and
// keeps publishing the previous key; the same key keeps the set.
func TestUpstreamRotation(t *testing.T) {
	load := func(keyFile string) *Config {
		cfg, err := Load([]byte(hsConfig(upstreamYAML(keyFile))), nil, LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	kids := func(p upstreamPolicy) []string {
		set, err := jwk.Parse(p.signer.JWKS())
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for i := range set.Len() {
			k, _ := set.Key(i)
			out = append(out, k.KeyID())
		}
		return out
	}
	oldFile, newFile := signingKeyFile(t, "EdDSA"), signingKeyFile(t, "ES256")
	first, err := compileUpstream(load(oldFile))
	if err != nil {
		t.Fatal(err)
	}
	oldKid := first.signer.Key().KeyID()
	same, err := compileUpstreamAfter(load(oldFile), &first)
	if err != nil {
		t.Fatal(err)
	}
	if got := kids(same); !slices.Equal(got, []string{oldKid}) {
		t.Errorf("same key reloaded: published %v, want [%s]", got, oldKid)
	}
	rotated, err := compileUpstreamAfter(load(newFile), &same)
	if err != nil {
		t.Fatal(err)
	}
	newKid := rotated.signer.Key().KeyID()
	if got := kids(rotated); newKid == oldKid || !slices.Equal(got, []string{newKid, oldKid}) {
		t.Errorf("rotated: published %v, want [%s %s] (the new key signs, the old stays published)", got, newKid, oldKid)
	}
}

// TestUpstreamReload: a reload that turns identity tokens on gives cached
// caller tokens an identity token (their cache entries are dropped, never
// served without a slot), and a reload with a new signing key signs with
// it while the previous key stays published.
func TestUpstreamReload(t *testing.T) {
	a := newTestAuthorizer(t, hsConfig(""), nil, nil)
	tok := mintHS(t, user("agents:read"))
	decide := func() Decision {
		t.Helper()
		d := a.Decide(context.Background(), getAgents(tok))
		if !d.Allowed() {
			t.Fatalf("Decide = %d %q", d.Status, d.Detail)
		}
		return d
	}
	decide() // cached without an identity-token slot
	reload := func(yaml string) {
		t.Helper()
		cfg, err := Load([]byte(yaml), nil, LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Reload(cfg, ReloadOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	first := signingKeyFile(t, "EdDSA")
	reload(hsConfig(upstreamYAML(first)))
	d := decide()
	v, n := identityHeader(&d)
	if n != 1 {
		t.Fatalf("after turning identity tokens on: %d authorization headers", n)
	}
	_, kid1 := verifyIdentity(t, a, v, testNow)

	reload(hsConfig(upstreamYAML(signingKeyFile(t, "ES256"))))
	d = decide()
	v, _ = identityHeader(&d)
	_, kid2 := verifyIdentity(t, a, v, testNow)
	set, err := jwk.Parse(a.UpstreamJWKS())
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for i := range set.Len() {
		k, _ := set.Key(i)
		kids = append(kids, k.KeyID())
	}
	if kid2 == kid1 || !slices.Equal(kids, []string{kid2, kid1}) {
		t.Errorf("after a rotation: signed by %s, published %v; want the new key signing and both published", kid2, kids)
	}

	reload(hsConfig(""))
	d = decide()
	if _, n := identityHeader(&d); n != 0 || a.UpstreamJWKS() != nil {
		t.Errorf("identity tokens off again: %d authorization headers", n)
	}
}

// must fails t on err.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
