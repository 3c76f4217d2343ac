package authz

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/x25519"
	"go.yaml.in/yaml/v3"
)

// decodeJWTYAML decodes a jwt: section from YAML, strictly.
func decodeJWTYAML(t *testing.T, text string) JWTConfig {
	t.Helper()
	c := DefaultJWTConfig()
	dec := yaml.NewDecoder(strings.NewReader(text))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("decode %q: %v", text, err)
	}
	return c
}

// yamlQuote makes s a YAML double-quoted scalar (a JSON string is one).
func yamlQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestJWTConfigCheck(t *testing.T) {
	k := jtLoadKeys(t)
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	jwksRS := write("rs.json", string(jtJWKS(t, []crypto.PublicKey{k.rs.priv.Public()}, []string{"rs"}, nil)))
	jwksEnc := write("enc.json", `{"keys":[`+jtJWKUse(t, k.rs.priv.Public(), "rs", "enc")+`]}`)
	notJSON := write("bad.json", "this is { not json")
	encrypted := "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n"
	badPEM := "-----BEGIN PUBLIC KEY-----\nTUlJQklqQU5CZ2txaGtpRzl3MEJBUUVGQUFPQ0FROEFNSUlCQ2dLQ0FRRUF1\n-----END PUBLIC KEY-----\n"

	cases := []struct {
		name string
		yaml string
		want []string // substrings, one error each; empty = valid
	}{
		{name: "hs256 secret", yaml: "algorithms: [HS256]\nverification_keys: [" + yamlQuote(k.hs) + "]"},
		{name: "default RS256 with a PEM key", yaml: "verification_keys: [" + yamlQuote(k.rs.pubPEM) + "]"},
		{name: "single algorithm form with a certificate", yaml: "algorithm: RS256\nverification_keys: [" + yamlQuote(k.rsCert) + "]"},
		{name: "every asymmetric type", yaml: "algorithms: [RS256, PS512, ES256, ES384, EdDSA]\nverification_keys: [" +
			yamlQuote(k.rs.pubPEM) + ", " + yamlQuote(k.es.pubPEM) + ", " + yamlQuote(k.es384.pubPEM) + ", " + yamlQuote(k.ed.pubPEM) + "]"},
		{name: "jwks file", yaml: "jwks_file: " + jwksRS},
		{name: "validate false needs no key", yaml: "validate: false\nalgorithms: [ES256, HS256]"},
		{name: "jwks url keys arrive later", yaml: "jwks_url: https://idp.example/jwks.json\nalgorithms: [ES256]"},
		{name: "every other field", yaml: "verification_keys: [" + yamlQuote(k.rs.pubPEM) + "]\nissuer: https://i\nverify_audience: true\naudience: [a, b]\n" +
			"leeway: 0s\nrequire_exp: false\ntoken_source: both\nheader: X-Token\ncookie: tok\nclaims: {scopes: scp, user_id: uid, session_id: sid, audience: aud2}\n" +
			"forward_claims: [org_id, Roles]\njwks_refresh: 1m"},

		{name: "unknown algorithm", yaml: "algorithms: [RS256, RS257]\nverification_keys: [" + yamlQuote(k.rs.pubPEM) + "]",
			want: []string{`jwt.algorithms[1]: "RS257" is not a signature algorithm`}},
		{name: "lower-case algorithm", yaml: "algorithms: [rs256]\nverification_keys: [" + yamlQuote(k.rs.pubPEM) + "]",
			want: []string{`jwt.algorithms[0]: "rs256" is not a signature algorithm (did you mean RS256?)`}},
		{name: "none", yaml: "algorithm: none\nvalidate: false", want: []string{`jwt.algorithm: "none" is not allowed`}},
		{name: "NONE in the list", yaml: "algorithms: [HS256, NONE]\nverification_keys: [s3cret]", want: []string{`jwt.algorithms[1]: "NONE" is not allowed`}},
		{name: "algorithm without a key of its type", yaml: "algorithms: [ES256]\nverification_keys: [" + yamlQuote(k.rs.pubPEM) + "]",
			want: []string{"jwt.algorithms[0]: ES256 has no key of its type: it needs an EC P-256 public key"}},
		{name: "EC key of another curve", yaml: "algorithms: [ES256]\nverification_keys: [" + yamlQuote(k.es384.pubPEM) + "]",
			want: []string{"jwt.algorithms[0]: ES256 has no key of its type"}},
		{name: "single algorithm without a key", yaml: "algorithm: EdDSA\nverification_keys: [s3cret]",
			want: []string{"jwt.algorithm: EdDSA has no key of its type"}},
		{name: "default algorithm without a key", yaml: "verification_keys: [s3cret]",
			want: []string{"jwt.algorithms: RS256 (the default; set jwt.algorithms"}},
		{name: "HMAC secret is no RSA key", yaml: "algorithms: [HS256, RS256]\nverification_keys: [s3cret]",
			want: []string{"jwt.algorithms[1]: RS256 has no key of its type"}},
		{name: "PEM is no HMAC secret", yaml: "algorithms: [HS256]\nverification_keys: [" + yamlQuote(k.rs.pubPEM) + "]",
			want: []string{"jwt.algorithms[0]: HS256 has no key of its type: it needs an HMAC secret"}},
		{name: "key does not parse", yaml: "algorithms: [HS256]\nverification_keys: [s3cret, " + yamlQuote(badPEM) + "]",
			want: []string{"jwt.verification_keys[1]: is a PEM PUBLIC KEY block that does not parse"}},
		{name: "empty key", yaml: "algorithms: [HS256]\nverification_keys: [s3cret, '  ']", want: []string{"jwt.verification_keys[1]: is empty"}},
		{name: "encrypted key", yaml: "algorithms: [HS256]\nverification_keys: [s3cret, " + yamlQuote(encrypted) + "]",
			want: []string{"jwt.verification_keys[1]: is an encrypted PEM block"}},
		{name: "key of no usable curve", yaml: "algorithms: [HS256]\nverification_keys: [s3cret, " + yamlQuote(jtPubPEM(t, p224.Public())) + "]",
			want: []string{"jwt.verification_keys[1]: is an EC P-224 key, which fits no supported signature algorithm"}},
		{name: "bad JWK JSON", yaml: "algorithms: [HS256]\nverification_keys: [s3cret, '{\"kty\": \"nope\"}']",
			want: []string{"jwt.verification_keys[1]: is JSON but not a valid JWK or JWK Set"}},
		{name: "JWK for encryption", yaml: "algorithms: [HS256]\nverification_keys: [s3cret, " + yamlQuote(jtJWKUse(t, k.rs.priv.Public(), "x", "enc")) + "]",
			want: []string{`jwt.verification_keys[1]: key 0 is an encryption key (use "enc")`}},
		{name: "JWK whose alg does not fit", yaml: "algorithms: [HS256]\nverification_keys: [s3cret, " + yamlQuote(jtJWKUse(t, k.rs.priv.Public(), "x", "sig", "ES256")) + "]",
			want: []string{"jwt.verification_keys[1]: key 0 has alg ES256, which does not fit an RSA key (2048 bits)"}},
		{name: "jwks file missing", yaml: "jwks_file: " + filepath.Join(dir, "missing.json"), want: []string{"jwt.jwks_file: ", "does not exist"}},
		{name: "jwks file not JSON", yaml: "jwks_file: " + notJSON, want: []string{"jwt.jwks_file: ", "is not a JWK Set"}},
		{name: "jwks file of encryption keys", yaml: "jwks_file: " + jwksEnc, want: []string{"jwt.jwks_file: ", "holds no usable signature key"}},
		{name: "bad token source", yaml: "token_source: query\nvalidate: false", want: []string{`jwt.token_source: "query" must be header, cookie or both`}},
		{name: "bad header and cookie", yaml: "header: 'X Token'\ncookie: 'a;b'\nvalidate: false",
			want: []string{`jwt.header: "X Token" is not a valid HTTP header name`, `jwt.cookie: "a;b" is not a valid cookie name`}},
		{name: "negative durations", yaml: "leeway: -1s\njwks_refresh: -5m\nvalidate: false",
			want: []string{"jwt.leeway: must not be negative", "jwt.jwks_refresh: must not be negative"}},
		{name: "empty audience", yaml: "audience: [a, '']\nvalidate: false", want: []string{"jwt.audience[1]: is empty"}},
		{name: "forward claims", yaml: "forward_claims: [org, '', 'a b', ORG]\nvalidate: false",
			want: []string{"jwt.forward_claims[1]: is empty", `jwt.forward_claims[2]: "a b" cannot be part of a header name`,
				`jwt.forward_claims[3]: "ORG" is already forwarded by forward_claims[0]`}},
		{name: "every problem at once", yaml: "algorithms: [XS512, ES256]\nverification_keys: ['']\njwks_file: " + notJSON + "\ntoken_source: x",
			want: []string{"jwt.algorithms[0]", "jwt.verification_keys[0]", "jwt.jwks_file", "jwt.token_source", "jwt.algorithms[1]: ES256 has no key"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := decodeJWTYAML(t, tc.yaml)
			errs := c.Check()
			if len(errs) != len(tc.want) {
				t.Fatalf("Check() = %d errors %v, want %d: %q", len(errs), errs, len(tc.want), tc.want)
			}
			all := ""
			if len(errs) > 0 {
				all = errors.Join(errs...).Error()
			}
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("Check() = %q, want it to contain %q", all, w)
				}
			}
			for _, secret := range []string{"s3cret", k.hs, "MIIB", "TUlJQ"} {
				if len(errs) > 0 && strings.Contains(all, secret) {
					t.Errorf("Check() error quotes key material %q: %s", secret, all)
				}
			}
			// NewVerifier refuses exactly what Check refuses.
			_, err := NewVerifier(&c, VerifierOptions{Audience: []string{"os"}, JWKS: nil})
			if c.JWKSURL == "" && (err == nil) != (len(errs) == 0) {
				t.Errorf("NewVerifier error = %v, Check errors = %v", err, errs)
			}
		})
	}
}

func TestNewVerifierErrors(t *testing.T) {
	k := jtLoadKeys(t)
	cases := []struct {
		name string
		cfg  JWTConfig
		opts VerifierOptions
		want []string
	}{
		{name: "verify audience without audience", cfg: JWTConfig{VerificationKeys: []string{k.rs.pubPEM}, VerifyAudience: true},
			want: []string{"jwt.audience: verify_audience is true but no audience is expected"}},
		{name: "empty expected audience", cfg: JWTConfig{VerificationKeys: []string{k.rs.pubPEM}, VerifyAudience: true},
			opts: VerifierOptions{Audience: []string{""}}, want: []string{"jwt.audience: an expected audience is empty"}},
		{name: "jwks url over plain http", cfg: JWTConfig{JWKSURL: "http://idp.example/jwks.json"},
			want: []string{"jwt.jwks_url: \"http://idp.example/jwks.json\" is plain HTTP to a host that is not loopback"}},
		{name: "problems joined", cfg: JWTConfig{Algorithms: []string{"none"}, VerificationKeys: []string{""}, VerifyAudience: true},
			want: []string{`jwt.algorithms[0]: "none" is not allowed`, "jwt.verification_keys[0]: is empty", "jwt.audience"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewVerifier(&tc.cfg, tc.opts)
			if err == nil || v != nil {
				t.Fatalf("NewVerifier = %v, %v; want an error", v, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("NewVerifier error = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestJWTConfigDefaults(t *testing.T) {
	cases := []struct {
		name      string
		cfg       JWTConfig
		algs      []string
		hasSource bool
	}{
		{name: "empty", cfg: JWTConfig{}, algs: []string{"RS256"}},
		{name: "single form", cfg: JWTConfig{Algorithm: "ES256", JWKSFile: "f"}, algs: []string{"ES256"}, hasSource: true},
		{name: "both forms merged", cfg: JWTConfig{Algorithms: []string{"RS256"}, Algorithm: "ES256", VerificationKeys: []string{"k"}}, algs: []string{"RS256", "ES256"}, hasSource: true},
		{name: "single form already listed", cfg: JWTConfig{Algorithms: []string{"ES256"}, Algorithm: "ES256", JWKSURL: "u"}, algs: []string{"ES256"}, hasSource: true},
		{name: "validate false", cfg: JWTConfig{Validate: jtPtr(false)}, algs: []string{"RS256"}, hasSource: true},
		{name: "validate true", cfg: JWTConfig{Validate: jtPtr(true)}, algs: []string{"RS256"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.cfg.AlgorithmNames(); strings.Join(got, ",") != strings.Join(tc.algs, ",") {
				t.Errorf("AlgorithmNames() = %v, want %v", got, tc.algs)
			}
			if got := tc.cfg.HasSource(); got != tc.hasSource {
				t.Errorf("HasSource() = %v, want %v", got, tc.hasSource)
			}
		})
	}
	d := DefaultJWTConfig()
	if d.Leeway.Duration != DefaultLeeway || d.JWKSRefresh.Duration != DefaultJWKSRefresh || !d.RequiresExp() || !d.ValidatesSignature() {
		t.Errorf("DefaultJWTConfig() = %+v", d)
	}
	n := ClaimNames{UserID: "uid"}.WithDefaults()
	if n != (ClaimNames{Scopes: "scopes", UserID: "uid", SessionID: "session_id", Audience: "aud"}) {
		t.Errorf("WithDefaults() = %+v", n)
	}
}

func TestFittingAlgs(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ec := func(c elliptic.Curve) crypto.PublicKey {
		k, _ := ecdsa.GenerateKey(c, rand.Reader)
		return &k.PublicKey
	}
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	xPub, _, _ := x25519.GenerateKey(rand.Reader)
	all := func(as ...sigAlg) algSet {
		var s algSet
		for _, a := range as {
			s.add(a)
		}
		return s
	}
	cases := []struct {
		name string
		raw  any
		want algSet
	}{
		{"rsa", &rsaKey.PublicKey, all(algRS256, algRS384, algRS512, algPS256, algPS384, algPS512)},
		{"p256", ec(elliptic.P256()), all(algES256)},
		{"p384", ec(elliptic.P384()), all(algES384)},
		{"p521", ec(elliptic.P521()), all(algES512)},
		{"p224", ec(elliptic.P224()), 0},
		{"ed25519", edPub, all(algEdDSA)},
		{"x25519", xPub, 0},
		{"hmac", []byte("secret"), all(algHS256, algHS384, algHS512)},
		{"empty hmac", []byte{}, 0},
		{"string", "secret", 0},
		{"rsa value not pointer", *rsaKey, 0},
	}
	for _, tc := range cases {
		if got := fittingAlgs(tc.raw); got != tc.want {
			t.Errorf("fittingAlgs(%s) = %v, want %v", tc.name, got.algs(), tc.want.algs())
		}
	}
}

func TestParseAlg(t *testing.T) {
	for a := range algCount {
		got, ok := parseAlg(a.String())
		if !ok || got != a {
			t.Errorf("parseAlg(%q) = %v, %v; want %v", a.String(), got, ok, a)
		}
	}
	for _, name := range []string{"", "none", "None", "NONE", "rs256", "RS257", "ES256K", "Ed25519", "HS256 "} {
		if _, ok := parseAlg(name); ok {
			t.Errorf("parseAlg(%q) accepted", name)
		}
	}
}

func TestKeySet(t *testing.T) {
	k := jtLoadKeys(t)
	doc := `{"keys":[` +
		jtJWKUse(t, k.rs.priv.Public(), "a", "sig") + `,` +
		jtJWKUse(t, k.rs2.priv.Public(), "a", "sig") + `,` +
		jtJWKUse(t, k.es.priv.Public(), "e", "enc") + `,` +
		jtJWKOne(k.ed.priv.Public(), "") + `]}`
	ks, err := ParseJWKS([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if ks.Len() != 3 || ks.Skipped() != 1 || len(ks.byKID["a"]) != 2 || len(ks.kidless) != 1 || ks.byKID["e"] != nil {
		t.Fatalf("KeySet = %d keys (%d skipped), by kid %v, kid-less %d", ks.Len(), ks.Skipped(), len(ks.byKID), len(ks.kidless))
	}
	if !ks.fits(algEdDSA) || !ks.fits(algPS256) || ks.fits(algES256) {
		t.Error("KeySet.fits wrong")
	}
	// A private JWK serves its public half.
	priv, err := jwk.FromRaw(k.ec())
	if err != nil {
		t.Fatal(err)
	}
	set := jwk.NewSet()
	_ = set.AddKey(priv)
	ks, err = NewKeySet(set)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ks.kidless[0].raw.(*ecdsa.PublicKey); !ok {
		t.Fatalf("private JWK kept as %T", ks.kidless[0].raw)
	}
	for _, bad := range []string{`{"keys":[]}`, `{}`, `[1,2]`, `nope`} {
		if _, err := ParseJWKS([]byte(bad)); err == nil {
			t.Errorf("ParseJWKS(%s) = nil error", bad)
		}
	}
}

// ec returns the EC test private key.
func (k *jtKeys) ec() *ecdsa.PrivateKey { return k.es.priv.(*ecdsa.PrivateKey) }

// TestHMACSecretIsExact: the secret is used byte for byte; only a
// whitespace-only entry is refused.
func TestHMACSecretIsExact(t *testing.T) {
	c := DefaultJWTConfig()
	c.Algorithms = []string{"HS256"}
	c.VerificationKeys = []string{" padded secret\n"}
	v := jtVerifier(t, c, VerifierOptions{})
	if _, f := v.Verify(t.Context(), jtMint(t, jtToken{alg: "HS256", key: " padded secret\n", claims: jtClaims(nil)})); f != nil {
		t.Fatalf("exact secret: %q", f.Detail)
	}
	if _, f := v.Verify(t.Context(), jtMint(t, jtToken{alg: "HS256", key: "padded secret", claims: jtClaims(nil)})); f == nil {
		t.Fatal("trimmed secret verified")
	}
}

func TestLoadJWKSFileTooLarge(t *testing.T) {
	p := jtWriteFile(t, "big.json", bytes.Repeat([]byte(" "), maxJWKSBytes+1))
	if _, err := LoadJWKSFile(p); err == nil || !strings.Contains(err.Error(), "larger than 1 MiB") {
		t.Fatalf("LoadJWKSFile(big) = %v", err)
	}
}

// TestPEMBlockTypes: PKCS#1 public keys and PKCS#8/SEC1 private keys are
// read too (the public half is used).
func TestPEMBlockTypes(t *testing.T) {
	k := jtLoadKeys(t)
	rsaPriv := k.rs.priv.(*rsa.PrivateKey)
	ecPriv := k.ec()
	sec1, _ := x509.MarshalECPrivateKey(ecPriv)
	for name, text := range map[string]string{
		"pkcs1 public":  string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaPriv.PublicKey)})),
		"pkcs1 private": string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaPriv)})),
		"pkcs8 private": jtPrivPEM(rsaPriv),
		"sec1 private":  string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})),
		"with text":     "Subject: test\n" + k.rsCert,
	} {
		keys, err := parseVerificationKey(text)
		if err != nil || len(keys) != 1 {
			t.Errorf("%s: %v", name, err)
			continue
		}
		switch keys[0].raw.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey:
		default:
			t.Errorf("%s: raw key %T, want a public key", name, keys[0].raw)
		}
	}
}

// TestCheckWithoutSource: a section with no JWT source (security key only)
// has nothing to cover; its other fields are still checked.
func TestCheckWithoutSource(t *testing.T) {
	c := DefaultJWTConfig()
	if errs := c.Check(); len(errs) != 0 {
		t.Fatalf("Check() with no source = %v", errs)
	}
	c.Algorithms = []string{"ES256", "XS1"}
	if errs := c.Check(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "jwt.algorithms[1]") {
		t.Fatalf("Check() = %v, want only the bad name", errs)
	}
}
