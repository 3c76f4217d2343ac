package authz

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/agentos-authz/agentos-authz/authz/internal/jwtauth"
	"github.com/agentos-authz/agentos-authz/internal/jwttest"
)

// decodeJWTYAML decodes a jwt: section from YAML, strictly.
func decodeJWTYAML(t *testing.T, text string) JWTConfig {
	t.Helper()
	c := defaultJWTConfig()
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
	k := jwttest.LoadKeys(t)
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
	jwksRS := write("rs.json", string(jwttest.JWKS(t, []crypto.PublicKey{k.RS.Priv.Public()}, []string{"rs"}, nil)))
	jwksEnc := write("enc.json", `{"keys":[`+jwttest.JWK(t, k.RS.Priv.Public(), "rs", "enc")+`]}`)
	notJSON := write("bad.json", "this is { not json")
	encrypted := "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n"
	badPEM := "-----BEGIN PUBLIC KEY-----\nTUlJQklqQU5CZ2txaGtpRzl3MEJBUUVGQUFPQ0FROEFNSUlCQ2dLQ0FRRUF1\n-----END PUBLIC KEY-----\n"

	cases := []struct {
		name string
		yaml string
		want []string // substrings, one error each; empty = valid
	}{
		{name: "hs256 secret", yaml: "algorithms: [HS256]\nverification_keys: [" + yamlQuote(k.HS) + "]"},
		{name: "default RS256 with a PEM key", yaml: "verification_keys: [" + yamlQuote(k.RS.PubPEM) + "]"},
		{name: "single algorithm form with a certificate", yaml: "algorithm: RS256\nverification_keys: [" + yamlQuote(k.RSCert) + "]"},
		{name: "every asymmetric type", yaml: "algorithms: [RS256, PS512, ES256, ES384, EdDSA]\nverification_keys: [" +
			yamlQuote(k.RS.PubPEM) + ", " + yamlQuote(k.ES.PubPEM) + ", " + yamlQuote(k.ES384.PubPEM) + ", " + yamlQuote(k.ED.PubPEM) + "]"},
		{name: "jwks file", yaml: "jwks_file: " + jwksRS},
		{name: "validate false needs no key", yaml: "validate: false\nalgorithms: [ES256, HS256]"},
		{name: "jwks url keys arrive later", yaml: "jwks_url: https://idp.example/jwks.json\nalgorithms: [ES256]"},
		{name: "every other field", yaml: "verification_keys: [" + yamlQuote(k.RS.PubPEM) + "]\nissuer: https://i\nverify_audience: true\naudience: [a, b]\n" +
			"leeway: 0s\nrequire_exp: false\ntoken_source: both\nheader: X-Token\ncookie: tok\nclaims: {scopes: scp, user_id: uid, session_id: sid, audience: aud2}\n" +
			"forward_claims: [org_id, Roles]\njwks_refresh: 1m"},

		{name: "unknown algorithm", yaml: "algorithms: [RS256, RS257]\nverification_keys: [" + yamlQuote(k.RS.PubPEM) + "]",
			want: []string{`jwt.algorithms[1]: "RS257" is not a signature algorithm`}},
		{name: "lower-case algorithm", yaml: "algorithms: [rs256]\nverification_keys: [" + yamlQuote(k.RS.PubPEM) + "]",
			want: []string{`jwt.algorithms[0]: "rs256" is not a signature algorithm (did you mean RS256?)`}},
		{name: "none", yaml: "algorithm: none\nvalidate: false", want: []string{`jwt.algorithm: "none" is not allowed`}},
		{name: "NONE in the list", yaml: "algorithms: [HS256, NONE]\nverification_keys: [s3cret-0123456789abcdef0123456789ab]", want: []string{`jwt.algorithms[1]: "NONE" is not allowed`}},
		{name: "algorithm without a key of its type", yaml: "algorithms: [ES256]\nverification_keys: [" + yamlQuote(k.RS.PubPEM) + "]",
			want: []string{"jwt.algorithms[0]: ES256 has no key of its type: it needs an EC P-256 public key"}},
		{name: "EC key of another curve", yaml: "algorithms: [ES256]\nverification_keys: [" + yamlQuote(k.ES384.PubPEM) + "]",
			want: []string{"jwt.algorithms[0]: ES256 has no key of its type"}},
		{name: "single algorithm without a key", yaml: "algorithm: EdDSA\nverification_keys: [s3cret-0123456789abcdef0123456789ab]",
			want: []string{"jwt.algorithm: EdDSA has no key of its type"}},
		{name: "default algorithm without a key", yaml: "verification_keys: [s3cret-0123456789abcdef0123456789ab]",
			want: []string{"jwt.algorithms: RS256 (the default; set jwt.algorithms"}},
		{name: "HMAC secret is no RSA key", yaml: "algorithms: [HS256, RS256]\nverification_keys: [s3cret-0123456789abcdef0123456789ab]",
			want: []string{"jwt.algorithms[1]: RS256 has no key of its type"}},
		{name: "PEM is no HMAC secret", yaml: "algorithms: [HS256]\nverification_keys: [" + yamlQuote(k.RS.PubPEM) + "]",
			want: []string{"jwt.algorithms[0]: HS256 has no key of its type: it needs an HMAC secret"}},
		{name: "key does not parse", yaml: "algorithms: [HS256]\nverification_keys: [s3cret-0123456789abcdef0123456789ab, " + yamlQuote(badPEM) + "]",
			want: []string{"jwt.verification_keys[1]: is a PEM PUBLIC KEY block that does not parse"}},
		{name: "empty key", yaml: "algorithms: [HS256]\nverification_keys: [s3cret-0123456789abcdef0123456789ab, '  ']", want: []string{"jwt.verification_keys[1]: is empty"}},
		{name: "encrypted key", yaml: "algorithms: [HS256]\nverification_keys: [s3cret-0123456789abcdef0123456789ab, " + yamlQuote(encrypted) + "]",
			want: []string{"jwt.verification_keys[1]: is an encrypted PEM block"}},
		{name: "key of no usable curve", yaml: "algorithms: [HS256]\nverification_keys: [s3cret-0123456789abcdef0123456789ab, " + yamlQuote(jwttest.PubPEM(t, p224.Public())) + "]",
			want: []string{"jwt.verification_keys[1]: is an EC P-224 key, which fits no supported signature algorithm"}},
		{name: "bad JWK JSON", yaml: "algorithms: [HS256]\nverification_keys: [s3cret-0123456789abcdef0123456789ab, '{\"kty\": \"nope\"}']",
			want: []string{"jwt.verification_keys[1]: is JSON but not a valid JWK or JWK Set"}},
		{name: "JWK for encryption", yaml: "algorithms: [HS256]\nverification_keys: [s3cret-0123456789abcdef0123456789ab, " + yamlQuote(jwttest.JWK(t, k.RS.Priv.Public(), "x", "enc")) + "]",
			want: []string{`jwt.verification_keys[1]: key 0 is an encryption key (use "enc")`}},
		{name: "JWK whose alg does not fit", yaml: "algorithms: [HS256]\nverification_keys: [s3cret-0123456789abcdef0123456789ab, " + yamlQuote(jwttest.JWK(t, k.RS.Priv.Public(), "x", "sig", "ES256")) + "]",
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
			errs := problemsOf(t, &c)
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
			for _, secret := range []string{"s3cret", k.HS, "MIIB", "TUlJQ"} {
				if len(errs) > 0 && strings.Contains(all, secret) {
					t.Errorf("Check() error quotes key material %q: %s", secret, all)
				}
			}
			// The verifier refuses exactly what its part of Check refuses.
			vc := c.verifierConfig()
			_, err := jwtauth.New(&vc, jwtauth.Options{Audience: []string{"os"}})
			if _, cerrs := jwtauth.Compile(&vc); c.JWKSURL == "" && (err == nil) != (len(cerrs) == 0) {
				t.Errorf("jwtauth.New error = %v, Compile errors = %v", err, cerrs)
			}
		})
	}
}

// TestCheckWithoutSource: a section with no JWT source (security key only)
// has nothing to cover; its other fields are still checked.
func TestCheckWithoutSource(t *testing.T) {
	c := defaultJWTConfig()
	if errs := problemsOf(t, &c); len(errs) != 0 {
		t.Fatalf("Check() with no source = %v", errs)
	}
	c.Algorithms = []string{"ES256", "XS1"}
	if errs := problemsOf(t, &c); len(errs) != 1 || !strings.Contains(errs[0].Error(), "jwt.algorithms[1]") {
		t.Fatalf("Check() = %v, want only the bad name", errs)
	}
}
func TestJWKSConfigChecks(t *testing.T) {
	k := jwttest.LoadKeys(t)
	ca := jwttest.WriteFile(t, "ca.pem", []byte(k.RSCert))
	notPEM := jwttest.WriteFile(t, "ca.txt", []byte("hello"))
	cases := []struct {
		name string
		yaml string
		want []string // empty = valid
	}{
		{name: "https url", yaml: "jwks_url: https://idp.example/jwks.json"},
		{name: "loopback http url", yaml: "jwks_url: http://127.0.0.1:1/jwks.json"},
		{name: "remote http url", yaml: "jwks_url: http://idp.example/jwks.json", want: []string{"jwt.jwks_url: \"http://idp.example/jwks.json\" is plain HTTP"}},
		{name: "remote http url allowed", yaml: "jwks_url: http://idp.example/jwks.json\njwks_allow_insecure: true"},
		{name: "url and file", yaml: "jwks_url: https://idp.example/jwks.json\njwks_file: /x.json", want: []string{"jwt.jwks_url: set jwks_url (JWT_JWKS_URL) or jwks_file (JWT_JWKS_FILE), not both"}},
		{name: "discovery", yaml: "issuer: https://idp.example"},
		{name: "discovery from a non-url", yaml: "issuer: my-issuer", want: []string{"jwt.issuer: with no other key source the JWKS is found by OIDC discovery"}},
		{name: "issuer beside keys is only checked", yaml: "issuer: my-issuer\nverification_keys: [" + yamlQuote(k.RS.PubPEM) + "]"},
		{name: "ca file", yaml: "jwks_url: https://idp.example/jwks.json\njwks_ca_file: " + ca},
		{name: "ca file missing", yaml: "jwks_url: https://idp.example/jwks.json\njwks_ca_file: /nonexistent/ca.pem", want: []string{"jwt.jwks_ca_file: \"/nonexistent/ca.pem\" does not exist"}},
		{name: "ca file without certificates", yaml: "jwks_url: https://idp.example/jwks.json\njwks_ca_file: " + notPEM, want: []string{"holds no PEM certificate"}},
		{name: "ca file unused", yaml: "verification_keys: [" + yamlQuote(k.RS.PubPEM) + "]\njwks_ca_file: " + ca, want: []string{"jwt.jwks_ca_file: is set but no JWKS is fetched"}},
		{name: "refresh too short", yaml: "jwks_url: https://idp.example/jwks.json\njwks_refresh: 500ms", want: []string{"jwt.jwks_refresh: 500ms is too short"}},
		{name: "cache settings", yaml: "jwks_url: https://idp.example/jwks.json\ncache_ttl: 1m\ncache_size: 10"},
		{name: "cache off", yaml: "jwks_url: https://idp.example/jwks.json\ncache_ttl: 0s\ncache_size: 0"},
		{name: "cache negative", yaml: "jwks_url: https://idp.example/jwks.json\ncache_ttl: -1s\ncache_size: -1",
			want: []string{"jwt.cache_ttl: must not be negative", "jwt.cache_size: -1 must be between 0 (no cache) and 100000000"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Load([]byte("os_id: test-os\njwt:\n"+indent(tc.yaml, "  ")), nil, LoadOptions{})
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Load = %v, want valid", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load = %+v, want errors %q", cfg.JWT, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load error = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

// problemsOf is the problems of the section alone, each a *FieldError.
func problemsOf(t testing.TB, c *JWTConfig) []error {
	t.Helper()
	_, _, errs := c.compile()
	for _, e := range errs {
		if _, ok := e.(*FieldError); !ok {
			t.Errorf("problem %v is a %T, not a *FieldError", e, e)
		}
	}
	return errs
}
