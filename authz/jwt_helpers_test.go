package authz

// Test helpers of the authz tests that need tokens, keys, a JWKS endpoint,
// an injected clock or an observer: those of the jwtauth package's tests
// (authz/internal/jwtauth/jwt_mint_test.go, jwks_remote_test.go), whose
// test keys they read.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/agentos-authz/agentos-authz/authz/internal/jwtauth"
)

// jtNow is the fixed clock of the verifier tests.
var jtNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func jtClock() time.Time { return jtNow }

// jtKeyPair is a private key and the public key PEM of it.
type jtKeyPair struct {
	priv   crypto.Signer
	pubPEM string
}

// jtKeys is the key material of one test: the fixed testdata keys (the
// conformance suite's) and a few generated ones.
type jtKeys struct {
	rs, rs2, es, ed jtKeyPair
	es384           jtKeyPair
	rsCert          string
	hs              string
}

func jtLoadKeys(t testing.TB) *jtKeys {
	t.Helper()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("internal", "jwtauth", "testdata", "keys", name))
		if err != nil {
			t.Fatalf("read test key: %v", err)
		}
		return string(b)
	}
	pair := func(name string) jtKeyPair {
		block, _ := pem.Decode([]byte(read(name + ".key.pem")))
		if block == nil {
			t.Fatalf("%s.key.pem: no PEM block", name)
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			t.Fatalf("%s.key.pem: %v", name, err)
		}
		return jtKeyPair{priv: k.(crypto.Signer), pubPEM: read(name + ".pub.pem")}
	}
	k := &jtKeys{
		rs: pair("rs"), rs2: pair("rs2"), es: pair("es"), ed: pair("ed"),
		rsCert: read("rs.crt.pem"),
		hs:     strings.TrimSpace(read("hs.secret")),
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k.es384 = jtKeyPair{priv: p384, pubPEM: jtPubPEM(t, p384.Public())}
	return k
}

func jtPubPEM(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

var jtB64 = base64.RawURLEncoding

// jtToken describes a token to mint.
type jtToken struct {
	alg    string         // the signing algorithm (and the header's alg unless header sets one)
	key    any            // crypto.Signer for asymmetric algs, []byte or string for HS*
	header map[string]any // extra header fields; a nil value removes a field
	claims map[string]any // marshalled as the payload unless payload is set
	// payload, when set, is signed as is.
	payload []byte
}

// jtMint signs tk. alg "none" (any case) gives an unsigned header.payload.
func jtMint(t testing.TB, tk jtToken) string {
	t.Helper()
	hdr := map[string]any{"alg": tk.alg, "typ": "JWT"}
	for k, v := range tk.header {
		if v == nil {
			delete(hdr, k)
		} else {
			hdr[k] = v
		}
	}
	hb, err := json.Marshal(hdr)
	if err != nil {
		t.Fatal(err)
	}
	payload := tk.payload
	if payload == nil {
		if payload, err = json.Marshal(tk.claims); err != nil {
			t.Fatal(err)
		}
	}
	input := jtB64.EncodeToString(hb) + "." + jtB64.EncodeToString(payload)
	if strings.EqualFold(tk.alg, "none") {
		return input + "."
	}
	signer, err := jws.NewSigner(jwa.SignatureAlgorithm(tk.alg))
	if err != nil {
		t.Fatalf("signer %s: %v", tk.alg, err)
	}
	key := tk.key
	if s, ok := key.(string); ok {
		key = []byte(s)
	}
	sig, err := signer.Sign([]byte(input), key)
	if err != nil {
		t.Fatalf("sign %s: %v", tk.alg, err)
	}
	return input + "." + jtB64.EncodeToString(sig)
}

// jtClaims returns standard valid claims at jtNow, with over merged in
// (a nil value removes a claim).
func jtClaims(over map[string]any) map[string]any {
	c := map[string]any{
		"sub":        "test_user",
		"session_id": "session_test_user",
		"aud":        "test-os",
		"scopes":     []any{"agents:read"},
		"exp":        jtNow.Add(time.Hour).Unix(),
		"iat":        jtNow.Unix(),
	}
	for k, v := range over {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// jtJWKS builds a JWKS document of public keys; kids[i] == "" leaves key
// i without a kid. Each key gets use: sig and, when alg is non-empty, alg.
func jtJWKS(t testing.TB, keys []crypto.PublicKey, kids, algs []string) []byte {
	t.Helper()
	set := jwk.NewSet()
	for i, pub := range keys {
		k, err := jwk.FromRaw(pub)
		if err != nil {
			t.Fatal(err)
		}
		if kids[i] != "" {
			_ = k.Set(jwk.KeyIDKey, kids[i])
		}
		_ = k.Set(jwk.KeyUsageKey, "sig")
		if algs != nil && algs[i] != "" {
			_ = k.Set(jwk.AlgorithmKey, algs[i])
		}
		_ = set.AddKey(k)
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jtJWKUse is the JWK JSON of a public key with kid, use and (optional) alg.
func jtJWKUse(t testing.TB, pub crypto.PublicKey, kid, use string, alg ...string) string {
	t.Helper()
	k, err := jwk.FromRaw(pub)
	if err != nil {
		t.Fatal(err)
	}
	_ = k.Set(jwk.KeyIDKey, kid)
	_ = k.Set(jwk.KeyUsageKey, use)
	if len(alg) > 0 {
		_ = k.Set(jwk.AlgorithmKey, alg[0])
	}
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func jtWriteFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func jtPtr[T any](v T) *T { return &v }

// jtFlipSig changes the first character of the signature.
func jtFlipSig(s string) string {
	i := strings.LastIndexByte(s, '.') + 1
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

// fakeClock is an injected clock a test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// recObserver records what a FetchObserver is told.
type recObserver struct {
	mu      sync.Mutex
	fetches []error  // one per fetch, nil on success
	fetched []string // the URLs fetched successfully
	limited atomic.Int64
	hits    atomic.Int64
	misses  atomic.Int64
}

func (o *recObserver) Fetch(url string, err error, _ int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fetches = append(o.fetches, err)
	if err == nil {
		o.fetched = append(o.fetched, url)
	}
}

func (o *recObserver) RefetchLimited(string) { o.limited.Add(1) }

func (o *recObserver) CacheHit() { o.hits.Add(1) }

func (o *recObserver) CacheMiss() { o.misses.Add(1) }

func (o *recObserver) faults() []jwtauth.FetchFault {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []jwtauth.FetchFault
	for _, err := range o.fetches {
		var fe *jwtauth.FetchError
		switch {
		case err == nil:
			out = append(out, "")
		case errors.As(err, &fe):
			out = append(out, fe.Fault)
		default:
			out = append(out, "untyped")
		}
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes (no sleeps).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// jwksServer is a JWKS endpoint on loopback whose answer a test switches
// between a document and the faults of issue 4, counting the requests.
type jwksServer struct {
	*httptest.Server
	hits atomic.Int64

	mu           sync.Mutex
	mode         string // "ok", "down", "slow", "garbage", "huge", "nokeys"
	body         []byte
	cacheControl string
}

func newJWKSServer(t testing.TB, body []byte) *jwksServer {
	t.Helper()
	s := &jwksServer{mode: "ok", body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(mode string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode = mode
	if body != nil {
		s.body = body
	}
}

func (s *jwksServer) handle(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	s.mu.Lock()
	mode, body, cc := s.mode, s.body, s.cacheControl
	s.mu.Unlock()
	switch mode {
	case "down":
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	case "slow":
		// Never answers: the client's timeout must end the fetch.
		<-r.Context().Done()
	case "garbage":
		_, _ = w.Write([]byte("<html>this is not a JWKS</html>"))
	case "nokeys":
		_, _ = w.Write([]byte(`{"keys":[{"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"}]}`))
	case "huge":
		// A valid JSON document, just over 1 MiB.
		_, _ = w.Write([]byte(`{"keys":[],"pad":"` + strings.Repeat("a", 1<<20) + `"}`))
	default:
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}
}

// rotationKeys are the JWKS documents of a rotation: k1 alone, k1 and k2,
// k2 alone, and tokens signed by each key.
type rotationKeys struct {
	only1, both, only2 []byte
	tok1, tok2         string
	tokX               string // signed by k1 under a kid no document has
}

// jwksRefetchGap is the jwtauth package's least time between two kid-miss
// refetches of a JWKS URL.
const jwksRefetchGap = 10 * time.Second

func newRotationKeys(t testing.TB) rotationKeys {
	k := jtLoadKeys(t)
	pub1, pub2 := k.rs.priv.Public(), k.rs2.priv.Public()
	return rotationKeys{
		only1: jtJWKS(t, []crypto.PublicKey{pub1}, []string{"k1"}, []string{"RS256"}),
		both:  jtJWKS(t, []crypto.PublicKey{pub1, pub2}, []string{"k1", "k2"}, []string{"RS256", "RS256"}),
		only2: jtJWKS(t, []crypto.PublicKey{pub2}, []string{"k2"}, []string{"RS256"}),
		tok1:  jtMint(t, jtToken{alg: "RS256", key: k.rs.priv, header: map[string]any{"kid": "k1"}, claims: jtClaims(nil)}),
		tok2:  jtMint(t, jtToken{alg: "RS256", key: k.rs2.priv, header: map[string]any{"kid": "k2"}, claims: jtClaims(nil)}),
		tokX:  jtMint(t, jtToken{alg: "RS256", key: k.rs.priv, header: map[string]any{"kid": "x"}, claims: jtClaims(nil)}),
	}
}
