// Package jwttest is the shared test material of the JWT tests of authz and
// authz/internal/jwtauth: the fixed clock, the suite's keys (the vendored
// conformance keys, read through internal/conformance) and a few generated
// ones, a token minter that can produce every shape of token, well-formed or
// not (the header is written as given, so any alg name, kid or jku can be
// claimed, and signed with the real algorithm by conformance.Sign), JWKS
// documents, a JWKS endpoint with switchable faults, a fake clock and a
// recording observer. Tests wait with internal/poll.
//
// It is test material, not part of the service: it imports no package of
// the service, so that jwtauth's own tests can use it too.
package jwttest

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

	"github.com/agentos-authz/agentos-authz/internal/conformance"
)

// Now is the fixed clock of the verifier tests.
var Now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Clock returns Now.
func Clock() time.Time { return Now }

// Unix is Now moved by d, as a NumericDate.
func Unix(d time.Duration) int64 { return Now.Add(d).Unix() }

// KeyPair is a private key and the PEM of its public key.
type KeyPair struct {
	Priv   crypto.Signer
	PubPEM string
}

// Keys is the key material of one test: the suite's fixed keys and an
// ES384 key generated for it.
type Keys struct {
	RS, RS2, ES, ED KeyPair
	ES384           KeyPair
	RSCert          string // the certificate of RS
	HS              string // the HMAC secret
}

// LoadKeys reads the conformance suite's keys (conformance.Dir()/keys);
// missing material fails t.
func LoadKeys(t testing.TB) *Keys {
	t.Helper()
	dir, err := conformance.Dir()
	if err != nil {
		t.Fatalf("test keys: %v", err)
	}
	ck, err := conformance.LoadKeys(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatalf("test keys: %v", err)
	}
	pair := func(name string) KeyPair {
		priv, err := ck.Private(name)
		if err != nil {
			t.Fatalf("test key: %v", err)
		}
		pub, err := ck.PublicPEM(name)
		if err != nil {
			t.Fatalf("test key: %v", err)
		}
		return KeyPair{Priv: priv, PubPEM: pub}
	}
	k := &Keys{RS: pair("rs"), RS2: pair("rs2"), ES: pair("es"), ED: pair("ed")}
	if k.RSCert, err = ck.CertPEM("rs"); err != nil {
		t.Fatalf("test key: %v", err)
	}
	if k.HS, err = ck.Secret("hs"); err != nil {
		t.Fatalf("test key: %v", err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k.ES384 = KeyPair{Priv: p384, PubPEM: PubPEM(t, p384.Public())}
	return k
}

// PubPEM is the SPKI PEM of a public key.
func PubPEM(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// PrivPEM is the PKCS#8 PEM of a private key.
func PrivPEM(t testing.TB, k crypto.Signer) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// GenRSA generates a 2048-bit RSA key pair.
func GenRSA(t testing.TB) KeyPair {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return KeyPair{Priv: k, PubPEM: PubPEM(t, k.Public())}
}

// GenEd generates an Ed25519 key pair.
func GenEd(t testing.TB) KeyPair {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return KeyPair{Priv: k, PubPEM: PubPEM(t, k.Public())}
}

// B64 is the base64url encoding of JWS.
var B64 = base64.RawURLEncoding

// Token describes a token to mint.
type Token struct {
	Alg    string         // the signing algorithm (and the header's alg unless Header sets one)
	Key    any            // crypto.Signer for asymmetric algs, []byte or string for HS*
	Header map[string]any // extra header fields; a nil value removes a field
	Claims map[string]any // marshalled as the payload unless Payload is set
	// Payload, when set, is signed as is.
	Payload []byte
}

// Mint signs tk. Alg "none" (any case) gives an unsigned header.payload.
func Mint(t testing.TB, tk Token) string {
	t.Helper()
	hdr := map[string]any{"alg": tk.Alg, "typ": "JWT"}
	for k, v := range tk.Header {
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
	payload := tk.Payload
	if payload == nil {
		if payload, err = json.Marshal(tk.Claims); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := conformance.Sign(tk.Alg, tk.Key, hb, payload)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return tok
}

// Claims returns standard valid claims at Now, with over merged in (a nil
// value removes a claim).
func Claims(over map[string]any) map[string]any {
	c := map[string]any{
		"sub":        "test_user",
		"session_id": "session_test_user",
		"aud":        "test-os",
		"scopes":     []any{"agents:read"},
		"exp":        Now.Add(time.Hour).Unix(),
		"iat":        Now.Unix(),
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

// FlipSig changes the first character of a compact JWS's signature.
func FlipSig(s string) string {
	i := strings.LastIndexByte(s, '.') + 1
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

// WriteFile writes data to name in a new temporary directory of t and
// returns its path.
func WriteFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Ptr returns a pointer to v.
func Ptr[T any](v T) *T { return &v }
