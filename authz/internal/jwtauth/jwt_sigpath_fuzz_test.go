package jwtauth

import (
	"bytes"
	"context"
	"crypto"
	"slices"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/agentos-authz/agentos-authz/internal/jwttest"
)

// sigPathVerifier is a Verifier with keys of all four algorithm families:
// static PEM keys and an HMAC secret, plus a JWKS with kids (rs, es) and a
// kid-less Ed25519 key, so kid matches, kid misses and the kid-less
// fallback are all reachable.
func sigPathVerifier(t testing.TB, k *jwttest.Keys) *Verifier {
	t.Helper()
	pub := func(p jwttest.KeyPair) crypto.PublicKey { return p.Priv.Public() }
	ks, err := parseJWKS(jwttest.JWKS(t, []crypto.PublicKey{pub(k.RS2), pub(k.ES), pub(k.ED)}, []string{"rs", "es", ""}, []string{"RS256", "ES256", ""}))
	if err != nil {
		t.Fatal(err)
	}
	c := jtBaseConfig(k)
	return jtVerifier(t, c, Options{Audience: []string{"test-os"}, jwks: newStaticJWKS(ks)})
}

// refSelector is the reference key selection of the signature path
// comparison: written out naively from docs/CONTRACT.md §5 over the keys
// sigPathVerifier is given, sharing no code with keyRing. The token's alg
// must be one of allowed and crit and b64 are refused; the JWKS keys with
// the token's kid if the document has any (whatever their type), else its
// keys without a kid; then every static key without a kid or with the
// token's; of those, the keys whose algorithm list (written by hand
// below) names the alg.
type refSelector struct {
	allowed []string
	jwks    []refKey // in document order
	static  []refKey // in configuration order
}

// refKey is a key as the test configured it.
type refKey struct {
	kid  string
	algs []string // what it may verify
	raw  any
}

var (
	refRSA   = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	refHMAC  = []string{"HS256", "HS384", "HS512"}
	refP256  = []string{"ES256"}
	refEd    = []string{"EdDSA"}
	refRS256 = []string{"RS256"}
)

// newRefSelector describes sigPathVerifier's keys.
func newRefSelector(k *jwttest.Keys) *refSelector {
	return &refSelector{
		allowed: []string{"RS256", "PS256", "ES256", "EdDSA", "HS256"},
		jwks: []refKey{
			{kid: "rs", algs: refRS256, raw: k.RS2.Priv.Public()},
			{kid: "es", algs: refP256, raw: k.ES.Priv.Public()},
			{kid: "", algs: refEd, raw: k.ED.Priv.Public()},
		},
		static: []refKey{
			{algs: refRSA, raw: k.RS.Priv.Public()},
			{algs: refP256, raw: k.ES.Priv.Public()},
			{algs: refEd, raw: k.ED.Priv.Public()},
			{algs: refHMAC, raw: []byte(k.HS)},
		},
	}
}

func (r *refSelector) FetchKeys(_ context.Context, sink jws.KeySink, sig *jws.Signature, _ *jws.Message) error {
	h := sig.ProtectedHeaders()
	alg := string(h.Algorithm())
	if !slices.Contains(r.allowed, alg) {
		return errAlgNotAllowed
	}
	if _, ok := h.Get("crit"); ok {
		return errCritHeader
	}
	if _, ok := h.Get("b64"); ok {
		return errCritHeader
	}
	kid := h.KeyID()
	var candidates []refKey
	if kid != "" {
		for _, key := range r.jwks {
			if key.kid == kid {
				candidates = append(candidates, key)
			}
		}
	}
	if len(candidates) == 0 {
		for _, key := range r.jwks {
			if key.kid == "" {
				candidates = append(candidates, key)
			}
		}
	}
	for _, key := range r.static {
		if key.kid == "" || key.kid == kid {
			candidates = append(candidates, key)
		}
	}
	n := 0
	for _, key := range candidates {
		if slices.Contains(key.algs, alg) {
			sink.Key(jwa.SignatureAlgorithm(alg), key.raw)
			n++
		}
	}
	if n == 0 {
		return errNoKey
	}
	return nil
}

// sigPathSeeds are valid and tampered tokens of all four algorithms and
// headers of every shape verifySignature reads itself or hands to jwx.
func sigPathSeeds(t testing.TB, k *jwttest.Keys) []string {
	t.Helper()
	claims := jwttest.Claims(nil)
	signers := []struct {
		alg string
		key any
	}{
		{"HS256", k.HS}, {"RS256", k.RS.Priv}, {"ES256", k.ES.Priv}, {"EdDSA", k.ED.Priv},
		{"RS256", k.RS2.Priv}, {"PS256", k.RS.Priv},
	}
	headers := []map[string]any{
		nil,
		{"kid": "rs"}, {"kid": "es"}, {"kid": "gone"}, {"kid": ""}, {"typ": nil},
		{"kid": 7}, {"typ": 1}, {"cty": "JWT", "x5t": "abc", "x5t#S256": "abc"},
		{"jku": "https://127.0.0.1:1/jwks", "x5u": "https://127.0.0.1:1/x5u"},
		{"crit": []string{"exp"}}, {"crit": []string{}}, {"b64": true}, {"b64": false},
		{"x5c": []string{"bm90LWEtY2VydA"}}, {"jwk": map[string]any{"kty": "oct", "k": "c2VjcmV0"}},
		{"private": "x"}, {"kid": nil, "typ": nil, "cty": nil},
	}
	var out []string
	for _, s := range signers {
		for _, h := range headers {
			tok := jwttest.Mint(t, jwttest.Token{Alg: s.alg, Key: s.key, Header: h, Claims: claims})
			out = append(out, tok, jwttest.FlipSig(tok))
		}
	}
	// Headers written by hand: escapes, repeats, odd alg names, not an
	// object. Each is signed with the HMAC secret under its own bytes.
	for _, hdr := range []string{
		`{"alg":"HS256"}`, ` {"alg" : "HS256" } `, `{"\u0061lg":"HS256"}`, `{"alg":"HS\u0032\u0035\u0036"}`,
		`{"alg":"RS256","alg":"HS256"}`, `{"alg":"HS256","alg":"RS256"}`, `{"alg":1,"alg":"HS256"}`,
		`{"alg":"HS256","kid":"a","kid":"b"}`, `{"alg":"HS256","kid":"\u00e9"}`, "{\"alg\":\"HS256\",\"kid\":\"\xff\"}",
		`{"alg":"none"}`, `{"alg":"None"}`, `{"alg":"hs256"}`, `{"alg":"ES256K"}`, `{"alg":""}`, `{}`, `{"typ":"JWT"}`,
		`null`, `[]`, `"HS256"`, `{"alg":"HS256"`, `{"alg":"HS256"}x`, `{"alg":"HS256","typ":null}`,
	} {
		out = append(out, jtMintRawHeader(t, hdr, `{"sub":"x"}`, []byte(k.HS)))
	}
	return out
}

// jtMintRawHeader signs header.payload, both given as JSON text, with an
// HMAC-SHA256 secret.
func jtMintRawHeader(t testing.TB, header, payload string, secret []byte) string {
	t.Helper()
	input := jwttest.B64.EncodeToString([]byte(header)) + "." + jwttest.B64.EncodeToString([]byte(payload))
	sv, err := jws.NewSigner("HS256")
	if err != nil {
		t.Fatal(err)
	}
	sig, err := sv.Sign([]byte(input), secret)
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + jwttest.B64.EncodeToString(sig)
}

// sigPathCompare checks that verifySignature agrees on raw with jws.Verify
// under the same key provider (v.ring) and under the reference selection
// ref: all accept it with the same payload, or all refuse it with the same
// detail.
func sigPathCompare(t *testing.T, v *Verifier, ref *refSelector, raw string) (accepted bool) {
	t.Helper()
	if len(raw) > MaxTokenBytes || compactShape(raw) != "" {
		return false // verify never gets this far
	}
	got, gotErr := v.verifySignature(t.Context(), raw)
	for _, o := range []struct {
		name string
		kp   jws.KeyProvider
	}{{"jws.Verify", v.ring}, {"jws.Verify with the reference selection", ref}} {
		want, wantErr := jws.Verify([]byte(raw), jws.WithKeyProvider(o.kp), jws.WithCompact(), jws.WithContext(t.Context()))
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("verifySignature(%q) err = %v, %s err = %v", raw, gotErr, o.name, wantErr)
		}
		if gotErr != nil {
			if g, w := verifyFailure(gotErr).Detail(), verifyFailure(wantErr).Detail(); g != w {
				t.Fatalf("verifySignature(%q) detail %q, %s detail %q", raw, g, o.name, w)
			}
			continue
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("verifySignature(%q) payload %q, %s payload %q", raw, got, o.name, want)
		}
	}
	return gotErr == nil
}

// TestVerifySignatureMatchesJWS runs the seeds of FuzzVerifySignature and
// checks the expected ones verify, so the comparison is not vacuous.
func TestVerifySignatureMatchesJWS(t *testing.T) {
	k := jwttest.LoadKeys(t)
	v, ref := sigPathVerifier(t, k), newRefSelector(k)
	n := 0
	for _, raw := range sigPathSeeds(t, k) {
		if sigPathCompare(t, v, ref, raw) {
			n++
		}
	}
	// Per signer, the headers without crit/b64/jwk-mismatch problems that
	// a key fits: counted from the seed table, asserted as a floor.
	if n < 20 {
		t.Fatalf("only %d seeds verified; the comparison is too weak", n)
	}
	// The fast path must refuse what it refused before, with the details.
	for _, tc := range []struct {
		name, raw, detail string
	}{
		{"none", jtMintRawHeader(t, `{"alg":"none"}`, `{}`, []byte(k.HS)), "Invalid token: signing algorithm not allowed"},
		{"not allowed", jwttest.Mint(t, jwttest.Token{Alg: "HS512", Key: k.HS, Claims: jwttest.Claims(nil)}), "Invalid token: signing algorithm not allowed"},
		{"crit", jwttest.Mint(t, jwttest.Token{Alg: "HS256", Key: k.HS, Header: map[string]any{"crit": []string{"x"}}, Claims: jwttest.Claims(nil)}), "Invalid token: unsupported critical header"},
		{"b64", jwttest.Mint(t, jwttest.Token{Alg: "HS256", Key: k.HS, Header: map[string]any{"b64": true}, Claims: jwttest.Claims(nil)}), "Invalid token: unsupported critical header"},
		{"tampered", jwttest.FlipSig(jwttest.Mint(t, jwttest.Token{Alg: "HS256", Key: k.HS, Claims: jwttest.Claims(nil)})), "Invalid token: signature verification failed"},
		{"kid key is not the signer", jwttest.Mint(t, jwttest.Token{Alg: "RS256", Key: k.RS2.Priv, Header: map[string]any{"kid": "es"}, Claims: jwttest.Claims(nil)}), "Invalid token: signature verification failed"},
		{"header not an object", jtMintRawHeader(t, `[]`, `{}`, []byte(k.HS)), "Invalid token: malformed token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.verifySignature(t.Context(), tc.raw)
			if err == nil {
				t.Fatal("verified")
			}
			if got := verifyFailure(err).Detail(); got != tc.detail {
				t.Fatalf("detail %q, want %q", got, tc.detail)
			}
			sigPathCompare(t, v, ref, tc.raw)
		})
	}
}

// FuzzVerifySignature: verifySignature (our header reading, keyRing key
// selection, jwx's per-algorithm verifier) accepts exactly the tokens
// jws.Verify accepts, with the same key provider and with the reference
// selection (refSelector), with the same payload, and refuses the others
// with the same detail.
func FuzzVerifySignature(f *testing.F) {
	k := jwttest.LoadKeys(f)
	v, ref := sigPathVerifier(f, k), newRefSelector(k)
	for _, raw := range sigPathSeeds(f, k) {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		sigPathCompare(t, v, ref, raw)
	})
}

// TestCompactHeader: which headers verifySignature reads itself (ok) and
// which it leaves to jws.Verify.
func TestCompactHeader(t *testing.T) {
	for _, tc := range []struct {
		hdr string
		alg sigAlg
		kid string
		ok  bool
	}{
		{hdr: `{"alg":"HS256","typ":"JWT"}`, alg: algHS256, ok: true},
		{hdr: `{"typ":"JWT","kid":"k1","alg":"ES256"}`, alg: algES256, kid: "k1", ok: true},
		{hdr: `{"alg":"RS256","kid":"a","kid":"b"}`, alg: algRS256, kid: "b", ok: true},
		{hdr: `{"\u0061lg":"HS\u0032\u0035\u0036","kid":"\u00e9"}`, alg: algHS256, kid: "é", ok: true},
		{hdr: `{"alg":"EdDSA","jku":"https://127.0.0.1:1/","x5u":"u","cty":"c","x5t":"t","x5t#S256":"s"}`, alg: algEdDSA, ok: true},
		{hdr: ` {"alg":"HS256"}`},
		{hdr: `{"alg":"HS256"} `},
		{hdr: `{"alg":"none"}`},
		{hdr: `{"alg":"hs256"}`},
		{hdr: `{"typ":"JWT"}`},
		{hdr: `{"alg":"HS256","kid":1}`},
		{hdr: `{"alg":1,"alg":"HS256"}`},
		{hdr: `{"alg":"HS256","crit":["b64"]}`},
		{hdr: `{"alg":"HS256","b64":true}`},
		{hdr: `{"alg":"HS256","jwk":{}}`},
		{hdr: `{"alg":"HS256","x5c":[]}`},
		{hdr: `{"alg":"HS256","other":"x"}`},
		{hdr: `{"alg":"HS256",}`},
		{hdr: `{}`},
	} {
		alg, kid, ok := compactHeader([]byte(tc.hdr))
		if ok != tc.ok || (ok && (alg != tc.alg || kid != tc.kid)) {
			t.Errorf("compactHeader(%s) = %v, %q, %v; want %v, %q, %v", tc.hdr, alg, kid, ok, tc.alg, tc.kid, tc.ok)
		}
	}
}
