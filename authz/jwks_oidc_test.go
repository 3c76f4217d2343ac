package authz

import (
	"crypto/rand"
	"crypto/rsa"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/agentos-authz/agentos-authz/internal/jwttest"
	"github.com/agentos-authz/agentos-authz/internal/poll"
)

// TestOIDCDiscoveryMockOIDC runs an independent OIDC issuer (mockoidc, on
// loopback): the service finds its JWKS by discovery from jwt.issuer and
// accepts the tokens it signs, and only those.
func TestOIDCDiscoveryMockOIDC(t *testing.T) {
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatalf("mockoidc: %v", err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })

	now := time.Now()
	obs := &jwttest.Observer{}
	a := cachedAuthorizer(t, "os_id: test-os\njwt:\n  issuer: "+m.Issuer()+"\n  verify_audience: true\n", time.Now, obs)
	a.Start(t.Context())
	t.Cleanup(a.Close)
	poll.For(t, "discovery and the first key set", a.Ready)
	// The fetches so far: the discovery document, then the JWKS it names.
	fetched := obs.Fetched()
	if u := fetched[len(fetched)-1]; u != m.JWKSEndpoint() {
		t.Errorf("discovered JWKS URL = %q (fetched %q), want %q", u, fetched, m.JWKSEndpoint())
	}

	claims := func(over map[string]any) gojwt.MapClaims {
		c := gojwt.MapClaims{
			"iss": m.Issuer(), "sub": "alice", "aud": "test-os", "session_id": "s-1",
			"scopes": []string{"agents:read"}, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		}
		for k, v := range over {
			c[k] = v
		}
		return c
	}
	sign := func(kp *mockoidc.Keypair, c gojwt.MapClaims) string {
		tok, err := kp.SignJWT(c)
		if err != nil {
			t.Fatalf("SignJWT: %v", err)
		}
		return tok
	}
	// A key the issuer does not publish, under the issuer's own kid.
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := m.Keypair.KeyID()
	if err != nil {
		t.Fatal(err)
	}
	forger := &mockoidc.Keypair{PrivateKey: other, PublicKey: &other.PublicKey, Kid: kid}

	cases := []struct {
		name   string
		tok    string
		status int
		detail string
	}{
		{name: "issuer's token", tok: sign(m.Keypair, claims(nil)), status: 200},
		{name: "wrong issuer", tok: sign(m.Keypair, claims(map[string]any{"iss": "https://evil.example"})), status: 401,
			detail: "Invalid token: issuer missing or not accepted"},
		{name: "wrong audience", tok: sign(m.Keypair, claims(map[string]any{"aud": "another-os"})), status: 401, detail: detailInvalidAudience},
		{name: "expired", tok: sign(m.Keypair, claims(map[string]any{"exp": now.Add(-time.Hour).Unix()})), status: 401, detail: detailExpired},
		{name: "missing scope", tok: sign(m.Keypair, claims(map[string]any{"scopes": []string{"teams:read"}})), status: 403},
		{name: "forged with the issuer's kid", tok: sign(forger, claims(nil)), status: 401, detail: "Invalid token: signature verification failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for i := range 2 { // verified, then (if valid) from the cache
				d := a.Decide(t.Context(), getAgents(tc.tok))
				if d.Status != tc.status || (tc.detail != "" && d.Detail != tc.detail) {
					t.Fatalf("#%d Decide(GET /agents) = %d %q, want %d %q", i, d.Status, d.Detail, tc.status, tc.detail)
				}
				if d.Allowed() && d.UserID != "alice" {
					t.Errorf("user id = %q, want alice", d.UserID)
				}
			}
		})
	}
}
