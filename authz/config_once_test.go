package authz

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"

	"github.com/agentos-authz/agentos-authz/internal/jwttest"
	"github.com/agentos-authz/agentos-authz/internal/testpki"
)

// TestLoadReadsEachFileOnce: Load reads every file the configuration names
// (verification key file, JWKS file, upstream signing key, JWKS CA file)
// and New and Reload build from what it read: the files replaced or
// removed after Load change nothing New builds (STYLE.md §14 "Validate by
// compiling"). Loading again reads the new content, and names the bad
// files by field.
func TestLoadReadsEachFileOnce(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	secretA, secretB := strings.Repeat("a", 40), strings.Repeat("b", 40)
	es, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := write("hs.secret", []byte(secretA))
	jwksFile := write("jwks.json", jwttest.JWKS(t, []crypto.PublicKey{es.Public()}, []string{""}, []string{"ES256"}))
	signingKey := signingKeyFile(t, "ES256")
	signingPEM, err := os.ReadFile(signingKey)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := ParseUpstreamKey(signingPEM)
	if err != nil {
		t.Fatal(err)
	}
	text := "os_id: test-os\njwt:\n  algorithms: [HS256, ES256]\n  verification_key_files: [" + keyFile + "]\n" +
		"  jwks_file: " + jwksFile + "\n" + upstreamYAML(signingKey)
	cfg, err := Load([]byte(text), nil, LoadOptions{})
	if err != nil {
		t.Fatalf("Load = %v", err)
	}

	// Every file replaced or removed after Load.
	write("hs.secret", []byte(secretB))
	write("jwks.json", []byte("not a JWK Set"))
	if err := os.Remove(signingKey); err != nil {
		t.Fatal(err)
	}

	a, err := New(cfg, Options{Clock: testClock})
	if err != nil {
		t.Fatalf("New after the files changed = %v, want what Load read", err)
	}
	decide := func(tok string) Decision {
		return a.Decide(t.Context(), &Request{Method: "GET", Path: "/agents", Headers: bearerH(tok)})
	}
	if d := decide(mint(t, jwa.HS256, []byte(secretA), user("agents:read"))); d.Status != 200 {
		t.Errorf("token of the key file as loaded = %d %q, want 200", d.Status, d.Detail)
	}
	if d := decide(mint(t, jwa.HS256, []byte(secretB), user("agents:read"))); d.Status != 401 {
		t.Errorf("token of the key file as rewritten after Load = %d %q, want 401", d.Status, d.Detail)
	}
	d := decide(mint(t, jwa.ES256, es, user("agents:read")))
	if d.Status != 200 {
		t.Fatalf("token of the JWKS file as loaded = %d %q, want 200", d.Status, d.Detail)
	}
	header, _ := identityHeader(&d)
	if _, kid := verifyIdentity(t, a, header, testNow); kid != loaded.KeyID() {
		t.Errorf("identity token kid = %q, want the signing key Load read (%q)", kid, loaded.KeyID())
	}
	if changed, err := a.Reload(cfg, ReloadOptions{}); err != nil || changed {
		t.Errorf("Reload(same Load) = %v, %v; want keys unchanged, no file read", changed, err)
	}

	// Loading again reads the files as they are now.
	_, err = Load([]byte(text), nil, LoadOptions{})
	for _, field := range []string{"jwt.jwks_file", "upstream.signing_key_file"} {
		if !hasFieldError(err, field) {
			t.Errorf("Load after the files changed = %v, want a *FieldError for %s", err, field)
		}
	}
}

// TestLoadReadsCAFileOnce: the JWKS CA file is read by Load; New builds the
// fetcher's roots from what it read, the file gone or not.
func TestLoadReadsCAFileOnce(t *testing.T) {
	ca := testpki.WriteFile(t, t.TempDir(), "ca.pem", testpki.NewCA(t, "jwks").PEM)
	cfg, err := Load([]byte("os_id: test-os\njwt:\n  jwks_url: https://127.0.0.1:1/jwks.json\n  jwks_ca_file: "+ca+"\n"), nil, LoadOptions{})
	if err != nil {
		t.Fatalf("Load = %v", err)
	}
	if err := os.Remove(ca); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, Options{Clock: testClock}); err != nil {
		t.Fatalf("New after the CA file was removed = %v, want the roots Load read", err)
	}
	_, err = Load([]byte("os_id: test-os\njwt:\n  jwks_url: https://127.0.0.1:1/jwks.json\n  jwks_ca_file: "+ca+"\n"), nil, LoadOptions{})
	if !hasFieldError(err, "jwt.jwks_ca_file") {
		t.Errorf("Load without the CA file = %v, want a *FieldError for jwt.jwks_ca_file", err)
	}
}

// TestNewRefusesConfigNotLoaded: New builds only from what Load compiled.
func TestNewRefusesConfigNotLoaded(t *testing.T) {
	if _, err := New(&Config{SecurityKey: "k"}, Options{}); !errors.Is(err, errNotLoaded) {
		t.Errorf("New(hand-made Config) = %v, want %v", err, errNotLoaded)
	}
	cfg, err := Load([]byte(hsConfig("")), nil, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.ExcludedRoutes[0] = "/agents"
	if _, err := New(cfg, Options{}); !errors.Is(err, errChangedAfterLoad) {
		t.Errorf("New(Config changed after Load) = %v, want %v", err, errChangedAfterLoad)
	}
}

// hasFieldError reports whether err joins a *FieldError for field.
func hasFieldError(err error, field string) bool {
	if fe, ok := err.(*FieldError); ok {
		return fe.Field == field
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if hasFieldError(e, field) {
				return true
			}
		}
	}
	return false
}
