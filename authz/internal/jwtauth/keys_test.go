package jwtauth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/x25519"

	"github.com/agentos-authz/agentos-authz/internal/jwttest"
)

func TestNewVerifierErrors(t *testing.T) {
	k := jwttest.LoadKeys(t)
	cases := []struct {
		name string
		cfg  Config
		opts Options
		want []string
	}{
		{name: "verify audience without audience", cfg: Config{VerificationKeys: []string{k.RS.PubPEM}, VerifyAudience: true},
			want: []string{"jwt.audience: verify_audience is true but no audience is expected"}},
		{name: "empty expected audience", cfg: Config{VerificationKeys: []string{k.RS.PubPEM}, VerifyAudience: true},
			opts: Options{Audience: []string{""}}, want: []string{"jwt.audience: an expected audience is empty"}},
		{name: "jwks url over plain http", cfg: Config{JWKSURL: "http://idp.example/jwks.json"},
			want: []string{"jwt.jwks_url: \"http://idp.example/jwks.json\" is plain HTTP to a host that is not loopback"}},
		{name: "problems joined", cfg: Config{Algorithms: []string{"none"}, VerificationKeys: []string{""}, VerifyAudience: true},
			want: []string{`jwt.algorithms[0]: "none" is not allowed`, "jwt.verification_keys[0]: is empty", "jwt.audience"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := New(&tc.cfg, tc.opts)
			if err == nil || v != nil {
				t.Fatalf("New = %v, %v; want an error", v, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("New error = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestJWTConfigDefaults(t *testing.T) {
	cases := []struct {
		name      string
		cfg       Config
		algs      []string
		hasSource bool
	}{
		{name: "empty", cfg: Config{}, algs: []string{"RS256"}},
		{name: "single form", cfg: Config{Algorithm: "ES256", JWKSFile: "f"}, algs: []string{"ES256"}, hasSource: true},
		{name: "both forms merged", cfg: Config{Algorithms: []string{"RS256"}, Algorithm: "ES256", VerificationKeys: []string{"k"}}, algs: []string{"RS256", "ES256"}, hasSource: true},
		{name: "single form already listed", cfg: Config{Algorithms: []string{"ES256"}, Algorithm: "ES256", JWKSURL: "u"}, algs: []string{"ES256"}, hasSource: true},
		{name: "validate false", cfg: Config{Validate: jwttest.Ptr(false)}, algs: []string{"RS256"}, hasSource: true},
		{name: "validate true", cfg: Config{Validate: jwttest.Ptr(true)}, algs: []string{"RS256"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.cfg.algorithmNames(); strings.Join(got, ",") != strings.Join(tc.algs, ",") {
				t.Errorf("algorithmNames() = %v, want %v", got, tc.algs)
			}
			if got := tc.cfg.HasSource(); got != tc.hasSource {
				t.Errorf("HasSource() = %v, want %v", got, tc.hasSource)
			}
		})
	}
	d := defaultConfig()
	if d.Leeway != DefaultLeeway || d.JWKSRefresh != DefaultJWKSRefresh || !d.requiresExp() || !d.validatesSignature() {
		t.Errorf("defaultConfig() = %+v", d)
	}
	n := ClaimNames{UserID: "uid"}.withDefaults()
	if n != (ClaimNames{Scopes: "scopes", UserID: "uid", SessionID: "session_id", Audience: "aud"}) {
		t.Errorf("withDefaults() = %+v", n)
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
	k := jwttest.LoadKeys(t)
	doc := `{"keys":[` +
		jwttest.JWK(t, k.RS.Priv.Public(), "a", "sig") + `,` +
		jwttest.JWK(t, k.RS2.Priv.Public(), "a", "sig") + `,` +
		jwttest.JWK(t, k.ES.Priv.Public(), "e", "enc") + `,` +
		jwttest.JWK(t, k.ED.Priv.Public(), "", "") + `]}`
	ks, err := parseJWKS([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if ks.Len() != 3 || ks.Skipped() != 1 || len(ks.byKID["a"]) != 2 || len(ks.kidless) != 1 || ks.byKID["e"] != nil {
		t.Fatalf("keySet = %d keys (%d skipped), by kid %v, kid-less %d", ks.Len(), ks.Skipped(), len(ks.byKID), len(ks.kidless))
	}
	if !ks.fits(algEdDSA) || !ks.fits(algPS256) || ks.fits(algES256) {
		t.Error("keySet.fits wrong")
	}
	// A private JWK serves its public half.
	priv, err := jwk.FromRaw(ecKey(k))
	if err != nil {
		t.Fatal(err)
	}
	set := jwk.NewSet()
	_ = set.AddKey(priv)
	ks, err = newKeySet(set)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ks.kidless[0].raw.(*ecdsa.PublicKey); !ok {
		t.Fatalf("private JWK kept as %T", ks.kidless[0].raw)
	}
	for _, bad := range []string{`{"keys":[]}`, `{}`, `[1,2]`, `nope`} {
		if _, err := parseJWKS([]byte(bad)); err == nil {
			t.Errorf("parseJWKS(%s) = nil error", bad)
		}
	}
}

// ecKey returns the EC test private key.
func ecKey(k *jwttest.Keys) *ecdsa.PrivateKey { return k.ES.Priv.(*ecdsa.PrivateKey) }

// TestHMACSecretIsExact: the secret is used byte for byte, and a padded
// one is refused rather than silently breaking every token
// (docs/CONTRACT.md §4).
func TestHMACSecretIsExact(t *testing.T) {
	c := defaultConfig()
	c.Algorithms = []string{"HS256"}
	secret := "an exact secret of more than 32 bytes, with inner spaces"
	c.VerificationKeys = []string{secret}
	v := jtVerifier(t, c, Options{})
	if _, f := v.Verify(t.Context(), jwttest.Mint(t, jwttest.Token{Alg: "HS256", Key: secret, Claims: jwttest.Claims(nil)})); f != nil {
		t.Fatalf("exact secret: %q", f.Detail())
	}
	c.VerificationKeys = []string{" " + secret + "\n"}
	if _, err := New(&c, Options{}); err == nil || !strings.Contains(err.Error(), "jwt.verification_keys[0]: the HMAC secret has leading or trailing white space") {
		t.Fatalf("New(padded secret) = %v, want the white-space error", err)
	}
}

// TestSecretHygiene: every HMAC secret that would let anyone mint tokens
// or break every login is refused, naming the field and what to do
// (docs/CONTRACT.md §4).
func TestSecretHygiene(t *testing.T) {
	k := jwttest.LoadKeys(t)
	rsaPub := k.RS.Priv.(*rsa.PrivateKey).Public()
	der, err := x509.MarshalPKIXPublicKey(rsaPub)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pubFile := jwttest.WriteFile(t, "prod.pub.pem", []byte(k.RS.PubPEM))
	secretFile := jwttest.WriteFile(t, "hs.secret", []byte(strings.Repeat("s", 48)))
	newlineFile := jwttest.WriteFile(t, "hs-newline.secret", []byte(strings.Repeat("s", 48)+"\n"))
	jwkFile := jwttest.WriteFile(t, "es.jwk", []byte(jwttest.JWK(t, k.ES.Priv.Public(), "es1", "")))
	long := strings.Repeat("x", 64)
	tests := []struct {
		name  string
		algs  []string
		keys  []string
		files []string
		allow bool
		want  string // "" = accepted
	}{
		{name: "32 bytes for HS256", algs: []string{"HS256"}, keys: []string{long[:32]}},
		{name: "31 bytes for HS256", algs: []string{"HS256"}, keys: []string{long[:31]}, want: "verification_keys[0]: the HMAC secret is 31 bytes, shorter than the 32"},
		{name: "HS512 needs 64", algs: []string{"HS256", "HS512"}, keys: []string{long[:48]}, want: "shorter than the 64"},
		{name: "short allowed", algs: []string{"HS256"}, keys: []string{"short"}, allow: true},
		{name: "trailing newline", algs: []string{"HS256"}, keys: []string{long + "\n"}, want: "leading or trailing white space"},
		{name: "ssh public key", algs: []string{"HS256"}, keys: []string{"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 user@host" + long}, want: "is an SSH public key"},
		{name: "base64 DER public key", algs: []string{"HS256"}, keys: []string{base64.StdEncoding.EncodeToString(der)}, want: "is a base64 DER public key"},
		{name: "path of the public key", algs: []string{"HS256"}, keys: []string{pubFile}, want: "is the path of an existing file"},
		{name: "private key PEM", algs: []string{"RS256"}, keys: []string{jwttest.PrivPEM(t, k.RS.Priv)}, want: "is a private key (PEM PRIVATE KEY)"},
		{name: "private JWK", algs: []string{"ES256"}, keys: []string{jwttest.JWK(t, k.ES.Priv, "", "")}, want: "key 0 is a private key"},
		{name: "secret file", algs: []string{"HS256"}, files: []string{secretFile}},
		{name: "secret file with newline", algs: []string{"HS256"}, files: []string{newlineFile}, want: "verification_key_files[0]: " + newlineFile + ": the secret file has leading or trailing white space"},
		{name: "PEM key file", algs: []string{"RS256"}, files: []string{pubFile}},
		{name: "JWK key file", algs: []string{"ES256"}, files: []string{jwkFile}},
		{name: "missing key file", algs: []string{"HS256"}, files: []string{dir + "/missing"}, want: "verification_key_files[0]: cannot read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := defaultConfig()
			c.Algorithms = tt.algs
			c.VerificationKeys = tt.keys
			c.VerificationKeyFiles = tt.files
			c.AllowShortHMACSecrets = tt.allow
			_, err := New(&c, Options{})
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("New = %v, want accepted", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("New = %v, want an error containing %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "AAAAB3") {
				t.Errorf("the error quotes the key: %v", err)
			}
		})
	}
}

func TestLoadJWKSFileTooLarge(t *testing.T) {
	p := jwttest.WriteFile(t, "big.json", bytes.Repeat([]byte(" "), maxJWKSBytes+1))
	if _, err := loadJWKSFile(p, io.Discard); err == nil || !strings.Contains(err.Error(), "larger than 1 MiB") {
		t.Fatalf("loadJWKSFile(big) = %v", err)
	}
}

// TestPEMBlockTypes: PKCS#1 public keys and certificates with text before
// them are read; PKCS#1, PKCS#8 and SEC1 private keys are refused
// (docs/CONTRACT.md §4: only public keys belong among verification keys).
func TestPEMBlockTypes(t *testing.T) {
	k := jwttest.LoadKeys(t)
	rsaPriv := k.RS.Priv.(*rsa.PrivateKey)
	ecPriv := ecKey(k)
	sec1, _ := x509.MarshalECPrivateKey(ecPriv)
	for name, text := range map[string]string{
		"pkcs1 public": string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaPriv.PublicKey)})),
		"with text":    "Subject: test\n" + k.RSCert,
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
	for name, text := range map[string]string{
		"pkcs1 private": string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaPriv)})),
		"pkcs8 private": jwttest.PrivPEM(t, rsaPriv),
		"sec1 private":  string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})),
	} {
		if _, err := parseVerificationKey(text); err == nil || !strings.Contains(err.Error(), "is a private key") {
			t.Errorf("%s: parseVerificationKey = %v, want a private-key error", name, err)
		}
	}
}

// defaultConfig is a Config (the tests' starting point) with nothing set: the durations at their
// defaults, every other field zero (= its default).
func defaultConfig() Config {
	return Config{Leeway: DefaultLeeway, JWKSRefresh: DefaultJWKSRefresh}
}

// algorithmNames is the effective algorithm allowlist (what compile
// allows): Algorithms, then
// Algorithm if not already listed; [RS256] when both are empty.
func (c *Config) algorithmNames() []string {
	names := make([]string, 0, len(c.Algorithms)+1)
	names = append(names, c.Algorithms...)
	if c.Algorithm != "" && !slices.Contains(names, c.Algorithm) {
		names = append(names, c.Algorithm)
	}
	if len(names) == 0 {
		names = append(names, defaultAlgorithm)
	}
	return names
}
