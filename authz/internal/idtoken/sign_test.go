package idtoken

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// testNow is the fixed clock of these tests.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var testOptions = Options{Issuer: "agentos-authz", Audience: "my-os", TTL: 60 * time.Second}

// signingKeys are the accepted key files and the algorithm each signs.
var signingKeys = []struct {
	file string
	alg  jwa.SignatureAlgorithm
}{
	{file: "rsa2048.pkcs8.pem", alg: jwa.RS256},
	{file: "rsa2048.pkcs1.pem", alg: jwa.RS256},
	{file: "p256.pkcs8.pem", alg: jwa.ES256},
	{file: "p256.sec1.pem", alg: jwa.ES256},
	{file: "ed25519.pkcs8.pem", alg: jwa.EdDSA},
}

func loadTestKey(t testing.TB, file string) *Key {
	t.Helper()
	k, err := LoadKey(filepath.Join("testdata", file))
	if err != nil {
		t.Fatalf("LoadKey(%s): %v", file, err)
	}
	return k
}

func newTestSigner(t testing.TB, current *Key, previous ...*Key) *Signer {
	t.Helper()
	s, err := NewSigner(testOptions, current, previous...)
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	return s
}

// verifyWithJWKS parses tok with jwx against the published JWK Set, as a
// relying party would: the key chosen by kid, the algorithm pinned, the
// claims validated at now.
func verifyWithJWKS(t *testing.T, s *Signer, tok string, now time.Time) jwt.Token {
	t.Helper()
	set, err := jwk.Parse(s.JWKS())
	if err != nil {
		t.Fatalf("jwk.Parse(JWKS()): %v", err)
	}
	parsed, err := jwt.Parse([]byte(tok),
		jwt.WithKeySet(set, jws.WithRequireKid(true), jws.WithInferAlgorithmFromKey(false)),
		jwt.WithClock(jwt.ClockFunc(func() time.Time { return now })),
		jwt.WithAudience(testOptions.Audience),
		jwt.WithIssuer(testOptions.Issuer),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
	)
	if err != nil {
		t.Fatalf("jwt.Parse(signed %s token) with the published JWKS: %v", s.Key().Alg(), err)
	}
	return parsed
}

// decodePart decodes one base64url part of a compact JWS into a map.
func decodePart(t *testing.T, tok string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatalf("part %d: %v", i, err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("part %d: %v", i, err)
	}
	return m
}

// TestSignVerifiesWithJWKS: every accepted key type signs a token that jwx
// verifies with the published JWK Set, with the header alg, kid, typ.
func TestSignVerifiesWithJWKS(t *testing.T) {
	for _, c := range signingKeys {
		t.Run(c.file, func(t *testing.T) {
			k := loadTestKey(t, c.file)
			if k.Alg() != string(c.alg) {
				t.Fatalf("LoadKey(%s).Alg() = %s, want %s", c.file, k.Alg(), c.alg)
			}
			s := newTestSigner(t, k)
			tok, err := s.Sign(testNow, Caller{Subject: "alice", Scopes: []string{"agents:read"}})
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			verifyWithJWKS(t, s, tok.Value, testNow)

			hdr := decodePart(t, tok.Value, 0)
			want := map[string]any{"alg": string(c.alg), "kid": k.KeyID(), "typ": "JWT"}
			if !reflect.DeepEqual(hdr, want) {
				t.Errorf("protected header = %v, want %v", hdr, want)
			}

			// A tampered payload must not verify: the check above is real.
			parts := strings.Split(tok.Value, ".")
			forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"agentos-authz","aud":["my-os"],"sub":"mallory","scopes":["agent_os:admin"],"exp":9999999999}`)) + "." + parts[2]
			set, _ := jwk.Parse(s.JWKS())
			if _, err := jwt.Parse([]byte(forged), jwt.WithKeySet(set), jwt.WithValidate(false)); err == nil {
				t.Error("jwt.Parse accepted a token with a forged payload")
			}
		})
	}
}

// TestClaims: the claim set is exactly docs/CONTRACT.md §9's, with exp the
// earlier of now + ttl and the caller's exp, never after the caller's.
func TestClaims(t *testing.T) {
	s := newTestSigner(t, loadTestKey(t, "p256.pkcs8.pem"))
	ttlExp := float64(testNow.Add(testOptions.TTL).Unix())
	cases := []struct {
		name      string
		caller    Caller
		want      map[string]any // without jti
		wantFresh bool           // Fresh at exp - 1 s
	}{
		{
			name: "full caller, exp beyond the ttl",
			caller: Caller{Subject: "alice", SessionID: "s-1", Scopes: []string{"agents:read", "agents:web:run"},
				Expires: testNow.Add(time.Hour)},
			want: map[string]any{"iss": "agentos-authz", "aud": []any{"my-os"}, "sub": "alice", "session_id": "s-1",
				"scopes": []any{"agents:read", "agents:web:run"}, "iat": float64(testNow.Unix()), "exp": ttlExp},
		},
		{
			name:   "caller exp within the ttl, fractional: floored",
			caller: Caller{Subject: "bob", Scopes: []string{"teams:read"}, Expires: testNow.Add(20*time.Second + 900*time.Millisecond)},
			want: map[string]any{"iss": "agentos-authz", "aud": []any{"my-os"}, "sub": "bob",
				"scopes": []any{"teams:read"}, "iat": float64(testNow.Unix()), "exp": float64(testNow.Unix() + 20)},
			wantFresh: true,
		},
		{
			name:   "caller without exp: now + ttl",
			caller: Caller{Subject: "carol", Scopes: []string{}},
			want: map[string]any{"iss": "agentos-authz", "aud": []any{"my-os"}, "sub": "carol",
				"scopes": []any{}, "iat": float64(testNow.Unix()), "exp": ttlExp},
		},
		{
			name:   "no sub, no session, nil scopes: sub and session_id left out, scopes an empty list",
			caller: Caller{Expires: testNow.Add(2 * time.Minute)},
			want: map[string]any{"iss": "agentos-authz", "aud": []any{"my-os"},
				"scopes": []any{}, "iat": float64(testNow.Unix()), "exp": ttlExp},
		},
		{
			name:   "scopes with JSON-special characters survive",
			caller: Caller{Subject: `dave "the" \admin`, Scopes: []string{"agents:sales bot:run", "x:<é>:y"}, Expires: testNow.Add(time.Hour)},
			want: map[string]any{"iss": "agentos-authz", "aud": []any{"my-os"}, "sub": `dave "the" \admin`,
				"scopes": []any{"agents:sales bot:run", "x:<é>:y"}, "iat": float64(testNow.Unix()), "exp": ttlExp},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok, err := s.Sign(testNow.Add(300*time.Millisecond), c.caller)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			verifyWithJWKS(t, s, tok.Value, testNow)
			got := decodePart(t, tok.Value, 1)
			jti, ok := got["jti"].(string)
			if !ok {
				t.Fatalf("claims %v: no string jti", got)
			}
			if raw, err := base64.RawURLEncoding.DecodeString(jti); err != nil || len(raw) != 16 {
				t.Errorf("jti %q: want 16 bytes base64url without padding (err %v)", jti, err)
			}
			delete(got, "jti")
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("Sign(%+v) claims = %v\nwant %v", c.caller, got, c.want)
			}
			exp := int64(got["exp"].(float64))
			if !c.caller.Expires.IsZero() && time.Unix(exp, 0).After(c.caller.Expires) {
				t.Errorf("exp %d is after the caller's %v", exp, c.caller.Expires)
			}
			if !tok.Expires().Equal(time.Unix(exp, 0)) {
				t.Errorf("Token.Expires() = %v, want exp %d", tok.Expires(), exp)
			}
			if got := tok.Fresh(time.Unix(exp-1, 0)); got != c.wantFresh {
				t.Errorf("Fresh(exp - 1s) = %v, want %v", got, c.wantFresh)
			}
		})
	}
}

// TestKeyIDIsThumbprint: kid is jwx's RFC 7638 SHA-256 thumbprint of the
// key, in the token header and in the JWK Set.
func TestKeyIDIsThumbprint(t *testing.T) {
	for _, c := range signingKeys {
		t.Run(c.file, func(t *testing.T) {
			k := loadTestKey(t, c.file)
			raw, err := jwk.FromRaw(k.priv)
			if err != nil {
				t.Fatal(err)
			}
			tp, err := raw.Thumbprint(crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			if want := base64.RawURLEncoding.EncodeToString(tp); k.KeyID() != want {
				t.Errorf("KeyID() = %q, want jwx's thumbprint %q", k.KeyID(), want)
			}
			set, err := jwk.Parse(newTestSigner(t, k).JWKS())
			if err != nil {
				t.Fatal(err)
			}
			if set.Len() != 1 {
				t.Fatalf("JWKS has %d keys, want 1", set.Len())
			}
			pub, _ := set.Key(0)
			if pub.KeyID() != k.KeyID() || pub.Algorithm().String() != string(c.alg) || pub.KeyUsage() != "sig" {
				t.Errorf("JWKS key kid=%q alg=%v use=%q, want %q %s sig", pub.KeyID(), pub.Algorithm(), pub.KeyUsage(), k.KeyID(), c.alg)
			}
			if _, isPrivate := pub.(interface{ D() []byte }); isPrivate {
				t.Error("the JWK Set holds a private key")
			}
			if strings.Contains(string(newTestSigner(t, k).JWKS()), `"d"`) {
				t.Error(`the JWK Set has a "d" member (private key material)`)
			}
		})
	}
	// Both encodings of one key have the same kid.
	if a, b := loadTestKey(t, "rsa2048.pkcs8.pem"), loadTestKey(t, "rsa2048.pkcs1.pem"); a.KeyID() != b.KeyID() {
		t.Errorf("PKCS#8 and PKCS#1 of one key: kids %q and %q differ", a.KeyID(), b.KeyID())
	}
}

// TestRotation: the newest key signs; every key is published, the newest
// first; a token of the previous signer still verifies with the new set.
func TestRotation(t *testing.T) {
	oldKey, newKey := loadTestKey(t, "rsa2048.pkcs8.pem"), loadTestKey(t, "rsa2048-next.pkcs8.pem")
	oldSigner := newTestSigner(t, oldKey)
	oldTok, err := oldSigner.Sign(testNow, Caller{Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	rotated := newTestSigner(t, newKey, oldSigner.Key())
	set, err := jwk.Parse(rotated.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for i := range set.Len() {
		k, _ := set.Key(i)
		kids = append(kids, k.KeyID())
	}
	if want := []string{newKey.KeyID(), oldKey.KeyID()}; !slices.Equal(kids, want) {
		t.Fatalf("rotated JWKS kids = %q, want %q (newest first)", kids, want)
	}
	newTok, err := rotated.Sign(testNow, Caller{Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if kid := decodePart(t, newTok.Value, 0)["kid"]; kid != newKey.KeyID() {
		t.Errorf("rotated signer signs with kid %v, want the newest %s", kid, newKey.KeyID())
	}
	verifyWithJWKS(t, rotated, newTok.Value, testNow)
	verifyWithJWKS(t, rotated, oldTok.Value, testNow)

	// Reloading the same key is no rotation: one key published.
	same := newTestSigner(t, loadTestKey(t, "rsa2048.pkcs1.pem"), oldSigner.Key())
	if set, _ := jwk.Parse(same.JWKS()); set.Len() != 1 {
		t.Errorf("NewSigner(k, k) publishes %d keys, want 1", set.Len())
	}
	// A token of a key that is not published does not verify.
	other := newTestSigner(t, loadTestKey(t, "p256.pkcs8.pem"))
	otherTok, _ := other.Sign(testNow, Caller{Subject: "alice"})
	if _, err := jwt.Parse([]byte(otherTok.Value), jwt.WithKeySet(set), jwt.WithValidate(false)); err == nil {
		t.Error("a token of an unpublished key verified with the rotated JWKS")
	}
}

// TestJTIUnique: each signature gets its own jti, even at one instant.
func TestJTIUnique(t *testing.T) {
	s := newTestSigner(t, loadTestKey(t, "ed25519.pkcs8.pem"))
	seen := map[string]bool{}
	for range 1000 {
		tok, err := s.Sign(testNow, Caller{Subject: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		jti := decodePart(t, tok.Value, 1)["jti"].(string)
		if seen[jti] {
			t.Fatalf("jti %q issued twice", jti)
		}
		seen[jti] = true
	}
}

// TestNewSignerErrors: each bad option is named.
func TestNewSignerErrors(t *testing.T) {
	k := loadTestKey(t, "ed25519.pkcs8.pem")
	cases := []struct {
		name string
		o    Options
		key  *Key
		want []string
	}{
		{name: "empty issuer", o: Options{Audience: "os", TTL: time.Minute}, key: k, want: []string{"issuer is empty"}},
		{name: "empty audience", o: Options{Issuer: "i", TTL: time.Minute}, key: k, want: []string{"audience (the AgentOS id) is empty"}},
		{name: "zero ttl", o: Options{Issuer: "i", Audience: "os"}, key: k, want: []string{"ttl 0s is under one second"}},
		{name: "no key, all bad", o: Options{}, want: []string{"issuer is empty", "audience", "ttl", "no signing key"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := NewSigner(c.o, c.key)
			if err == nil {
				t.Fatalf("NewSigner(%+v) = %v, nil; want an error", c.o, s)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("NewSigner(%+v) error %q, want it to contain %q", c.o, err, w)
				}
			}
		})
	}
}

// TestLoadKeyErrors: each bad key file gets its own error class and says
// what the file holds and what to write instead, never quoting the file.
func TestLoadKeyErrors(t *testing.T) {
	cases := []struct {
		file  string
		class error
		want  []string
	}{
		{file: "rsa2048.pub.pem", class: ErrNotPrivateKey, want: []string{"holds a public key", "private half", "keygen"}},
		{file: "p256.cert.pem", class: ErrNotPrivateKey, want: []string{"holds a certificate", "private key"}},
		{file: "hmac-secret.txt", class: ErrNotPrivateKey, want: []string{"no PEM block", "HMAC secret", "keygen --alg RS256"}},
		{file: "hmac.jwk.json", class: ErrNotPrivateKey, want: []string{"holds JSON", "PEM private key"}},
		{file: "ssh-ed25519.pub", class: ErrNotPrivateKey, want: []string{"SSH public key"}},
		{file: "openssh-ed25519.key", class: ErrNotPrivateKey, want: []string{"OpenSSH private key", "PKCS8"}},
		{file: "p256.encrypted-pkcs8.pem", class: ErrNotPrivateKey, want: []string{"passphrase-encrypted", "openssl pkey"}},
		{file: "p256.encrypted-sec1.pem", class: ErrNotPrivateKey, want: []string{"passphrase-encrypted EC PRIVATE KEY", "openssl pkey"}},
		{file: "rsa1024.pem", class: ErrUnsupportedKey, want: []string{"1024-bit RSA key", "at least 2048"}},
		{file: "p384.sec1.pem", class: ErrUnsupportedKey, want: []string{"EC key on P-384", "needs P-256", "--alg ES256"}},
		{file: "x25519.pkcs8.pem", class: ErrUnsupportedKey, want: []string{"X25519", "cannot sign", "Ed25519"}},
		{file: "secp256k1.sec1.pem", class: ErrMalformedKey, want: []string{"EC PRIVATE KEY block does not parse", "EC P-256"}},
		{file: "two-keys.pem", class: ErrMalformedKey, want: []string{"more than one private key"}},
		{file: "p256.key-and-cert.pem", class: ErrMalformedKey, want: []string{"CERTIFICATE block after the private key"}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join("testdata", c.file)
			k, err := LoadKey(path)
			if err == nil {
				t.Fatalf("LoadKey(%s) = %s key, want an error", c.file, k.Alg())
			}
			if !errors.Is(err, c.class) {
				t.Errorf("LoadKey(%s) error %q is not %v", c.file, err, c.class)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, path+": ") {
				t.Errorf("LoadKey(%s) error %q does not start with the path", c.file, msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("LoadKey(%s) error %q, want it to contain %q", c.file, msg, w)
				}
			}
			if strings.Contains(msg, "MII") || strings.Contains(msg, "AAAA") {
				t.Errorf("LoadKey(%s) error %q seems to quote key material", c.file, msg)
			}
		})
	}

	t.Run("in-memory content", func(t *testing.T) {
		for _, c := range []struct {
			name  string
			data  string
			class error
			want  string
		}{
			{name: "empty", data: " \n", class: ErrNotPrivateKey, want: "the file is empty"},
			{name: "truncated PEM", data: "-----BEGIN PRIVATE KEY-----\nMIGH", class: ErrMalformedKey, want: "does not decode"},
			{name: "garbage DER", data: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", class: ErrMalformedKey, want: "PRIVATE KEY block does not parse"},
			{name: "unknown block", data: "-----BEGIN DH PARAMETERS-----\nAAAA\n-----END DH PARAMETERS-----\n", class: ErrNotPrivateKey, want: `"DH PARAMETERS" PEM block`},
		} {
			_, err := ParseKey([]byte(c.data))
			if !errors.Is(err, c.class) || err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("ParseKey(%s) error %v, want %v containing %q", c.name, err, c.class, c.want)
			}
		}
		pem := mustRead(t, "p256.pkcs8.pem")
		if _, err := ParseKey(append(pem, "trailing words"...)); !errors.Is(err, ErrMalformedKey) {
			t.Errorf("ParseKey(key + trailing text) error %v, want %v", err, ErrMalformedKey)
		}
		if _, err := ParseKey(append(pem, "\n\n"...)); err != nil {
			t.Errorf("ParseKey(key + blank lines) error %v, want none", err)
		}
	})

	if _, err := LoadKey(filepath.Join("testdata", "missing.pem")); err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Errorf("LoadKey(missing file) error %v, want one naming the file", err)
	}
}

// TestRawECDSA: the DER → JWS conversion agrees with encoding/asn1 on real
// signatures (about one in 256 has a short r or s, one in two a sign byte)
// and refuses what is not one signature.
func TestRawECDSA(t *testing.T) {
	priv := loadTestKey(t, "p256.pkcs8.pem").priv.(*ecdsa.PrivateKey)
	short := 0
	for i := range 600 {
		d := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		der, err := ecdsa.SignASN1(rand.Reader, priv, d[:])
		if err != nil {
			t.Fatal(err)
		}
		var want struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(der, &want); err != nil {
			t.Fatal(err)
		}
		got, ok := rawECDSA(der, 32)
		if !ok {
			t.Fatalf("rawECDSA(%x) failed", der)
		}
		if new(big.Int).SetBytes(got[:32]).Cmp(want.R) != 0 || new(big.Int).SetBytes(got[32:]).Cmp(want.S) != 0 {
			t.Fatalf("rawECDSA(%x) = %x, want r %x s %x", der, got, want.R, want.S)
		}
		if want.R.BitLen() <= 248 || want.S.BitLen() <= 248 {
			short++
		}
	}
	t.Logf("%d of 600 signatures had a short r or s", short)
	// Hand-made: r = 1 (short), s = 0x80 followed by 31 zero bytes with
	// DER's sign byte.
	s := append([]byte{0x00, 0x80}, make([]byte, 31)...)
	der := append([]byte{0x30, byte(3 + 2 + len(s)), 0x02, 0x01, 0x01, 0x02, byte(len(s))}, s...)
	got, ok := rawECDSA(der, 32)
	want := make([]byte, 64)
	want[31], want[32] = 0x01, 0x80
	if !ok || !bytes.Equal(got, want) {
		t.Errorf("rawECDSA(%x) = %x, %v; want %x", der, got, ok, want)
	}
	for _, bad := range [][]byte{
		nil,
		{0x30, 0x00},
		{0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01},                                                // not a SEQUENCE
		{0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01},                                                // length too long
		{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x02, 0x01},                                                // s overruns
		{0x30, 0x03, 0x02, 0x01, 0x01},                                                                  // no s
		{0x30, 0x09, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x05, 0x01, 0x00},                              // trailing element
		slices.Concat([]byte{0x30, 0x26, 0x02, 0x21, 0x01}, make([]byte, 32), []byte{0x02, 0x01, 0x01}), // 33-byte r, no sign byte
	} {
		if got, ok := rawECDSA(bad, 32); ok {
			t.Errorf("rawECDSA(%x) = %x, true; want false", bad, got)
		}
	}
}

// jwksKids lists the kids of a Signer's published set, in order.
func jwksKids(t *testing.T, s *Signer) []string {
	t.Helper()
	set, err := jwk.Parse(s.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for i := range set.Len() {
		k, _ := set.Key(i)
		kids = append(kids, k.KeyID())
	}
	return kids
}

// TestNext: reloads keep the previous key published after a rotation, and
// the same key reloaded changes nothing.
func TestNext(t *testing.T) {
	a, b, c := loadTestKey(t, "rsa2048.pkcs8.pem"), loadTestKey(t, "p256.pkcs8.pem"), loadTestKey(t, "ed25519.pkcs8.pem")
	s1 := newTestSigner(t, a)
	steps := []struct {
		name     string
		key      *Key
		wantKids []string
	}{
		{name: "rotate to b", key: b, wantKids: []string{b.KeyID(), a.KeyID()}},
		{name: "reload b (PKCS#8 again)", key: loadTestKey(t, "p256.sec1.pem"), wantKids: []string{b.KeyID(), a.KeyID()}},
		{name: "rotate to c: a dropped", key: c, wantKids: []string{c.KeyID(), b.KeyID()}},
		{name: "back to a", key: a, wantKids: []string{a.KeyID(), c.KeyID()}},
	}
	s := s1
	for _, st := range steps {
		next, err := s.Next(testOptions, st.key)
		if err != nil {
			t.Fatalf("%s: Next: %v", st.name, err)
		}
		if got := jwksKids(t, next); !slices.Equal(got, st.wantKids) {
			t.Errorf("%s: published kids %q, want %q", st.name, got, st.wantKids)
		}
		tok, err := next.Sign(testNow, Caller{Subject: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		if kid := decodePart(t, tok.Value, 0)["kid"]; kid != st.key.KeyID() {
			t.Errorf("%s: signs with kid %v, want %s", st.name, kid, st.key.KeyID())
		}
		s = next
	}
	longer := testOptions
	longer.TTL = time.Hour
	next, err := s.Next(longer, a)
	if err != nil {
		t.Fatal(err)
	}
	if tok, _ := next.Sign(testNow, Caller{}); !tok.Expires().Equal(testNow.Add(time.Hour)) {
		t.Errorf("Next(ttl 1h) signs exp %v, want %v", tok.Expires(), testNow.Add(time.Hour))
	}
	if _, err := s.Next(testOptions, nil); err == nil {
		t.Error("Next(nil key) succeeded")
	}
}
