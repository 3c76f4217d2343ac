package jwtauth

import (
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
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// Test key material and a token minter that can produce every shape of
// token, well-formed or not: the header is written as given (so any alg
// name, kid, jku can be claimed) and signed with the real algorithm.

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
		b, err := os.ReadFile(filepath.Join("testdata", "keys", name))
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

func jtGenRSA(t testing.TB) jtKeyPair {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return jtKeyPair{priv: k, pubPEM: jtPubPEM(t, k.Public())}
}

func jtGenEd(t testing.TB) jtKeyPair {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return jtKeyPair{priv: k, pubPEM: jtPubPEM(t, k.Public())}
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

func jtWriteFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func jtPtr[T any](v T) *T { return &v }

// jtPrivPEM is the PKCS#8 PEM of a private key.
func jtPrivPEM(k crypto.Signer) string {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// jtJWKOne is the JWK JSON of a public key, with kid when non-empty.
func jtJWKOne(pub crypto.PublicKey, kid string) string {
	k, err := jwk.FromRaw(pub)
	if err != nil {
		panic(err)
	}
	if kid != "" {
		_ = k.Set(jwk.KeyIDKey, kid)
	}
	b, err := json.Marshal(k)
	if err != nil {
		panic(err)
	}
	return string(b)
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
