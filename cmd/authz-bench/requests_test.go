package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"google.golang.org/protobuf/proto"

	"github.com/agentos-authz/agentos-authz/proto/envoyfixtures"
)

// testKeys returns an HMAC secret and an RSA key made for one test.
func testKeys(t *testing.T) signingKeys {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return signingKeys{hmac: []byte("0123456789abcdef0123456789abcdef-bench-secret"), rsa: k}
}

// tokenOf returns the token a built request carries, from the headers map
// or the raw header map.
func tokenOf(t *testing.T, req *authv3.CheckRequest) string {
	t.Helper()
	h := req.GetAttributes().GetRequest().GetHttp()
	auth := h.GetHeaders()["authorization"]
	for _, hv := range h.GetHeaderMap().GetHeaders() {
		if hv.GetKey() == "authorization" {
			auth = string(hv.GetRawValue())
		}
	}
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || tok == "" {
		t.Fatalf("request %s has authorization %q, want Bearer <token>", h.GetPath(), auth)
	}
	return tok
}

func TestBuildPool(t *testing.T) {
	keys := testKeys(t)
	signers, err := signersFor("mixed", keys)
	if err != nil {
		t.Fatal(err)
	}
	verifyKey := map[jwa.SignatureAlgorithm]any{jwa.HS256: keys.hmac, jwa.RS256: &keys.rsa.PublicKey}
	isGranting := func(scopes []string) bool {
		for _, s := range grantingScopes() {
			if slices.Equal(s, scopes) {
				return true
			}
		}
		return false
	}
	const count = 60
	spec := poolSpec{
		Signers:  signers,
		Count:    count,
		Mix:      0.8,
		Fixtures: benchFixtures(),
		Claims:   claimSpec{Issuer: "https://issuer.example", Audience: "authz-bench", TTL: time.Hour},
		Seed:     3,
	}
	reqs, err := buildPool(t.Context(), spec)
	if err != nil {
		t.Fatalf("buildPool: %v", err)
	}
	if len(reqs) != count {
		t.Fatalf("buildPool made %d requests, want %d", len(reqs), count)
	}
	var allowed int
	seen := make(map[string]bool)
	paths := make(map[string]int)
	algs := make(map[string]int)
	for i, r := range reqs {
		if bytes.Contains(r.body, []byte(envoyfixtures.Placeholder)) {
			t.Fatalf("request %d still holds %s", i, envoyfixtures.Placeholder)
		}
		req := new(authv3.CheckRequest)
		if err := proto.Unmarshal(r.body, req); err != nil {
			t.Fatalf("request %d does not parse: %v", i, err)
		}
		if err := req.ValidateAll(); err != nil {
			t.Errorf("request %d is not a valid CheckRequest: %v", i, err)
		}
		paths[req.GetAttributes().GetRequest().GetHttp().GetPath()]++
		raw := tokenOf(t, req)
		if seen[raw] {
			t.Errorf("request %d repeats a token", i)
		}
		seen[raw] = true
		alg := jwa.HS256
		if strings.HasPrefix(raw, "eyJhbGciOiJSUzI1NiI") {
			alg = jwa.RS256
		}
		algs[alg.String()]++
		tok, err := jwt.Parse([]byte(raw), jwt.WithKey(alg, verifyKey[alg]),
			jwt.WithIssuer("https://issuer.example"), jwt.WithAudience("authz-bench"), jwt.WithRequiredClaim("exp"))
		if err != nil {
			t.Fatalf("request %d: token does not verify and validate: %v", i, err)
		}
		if tok.Expiration().Sub(tok.IssuedAt()) != time.Hour {
			t.Errorf("request %d: exp - iat = %v, want 1h", i, tok.Expiration().Sub(tok.IssuedAt()))
		}
		scopesClaim, _ := tok.Get("scopes")
		var scopes []string
		for _, s := range scopesClaim.([]any) {
			scopes = append(scopes, s.(string))
		}
		if isGranting(scopes) != r.allow {
			t.Errorf("request %d: scopes %q, but allow = %v", i, scopes, r.allow)
		}
		if r.allow {
			allowed++
		}
	}
	if allowed != 48 {
		t.Errorf("%d of %d requests allowed, want 48 (mix 0.8)", allowed, count)
	}
	// Ten requests per fixture; two fixtures (raw and joined headers) send
	// the same path.
	wantPaths := map[string]int{
		"/agents/research-bot?include=tools&limit=5": 10,
		"/agents/research-bot/runs":                  10,
		"/teams/support/runs":                        10,
		"/workflows/?limit=10":                       10,
		"/teams?limit=10":                            20,
	}
	if !maps.Equal(paths, wantPaths) {
		t.Errorf("requests per path %v, want %v", paths, wantPaths)
	}
	if algs["HS256"] != count/2 || algs["RS256"] != count/2 {
		t.Errorf("algorithms %v, want half HS256 and half RS256", algs)
	}
	// Outcomes are interleaved, not 48 allows then 12 denies.
	if firstDeny := slices.IndexFunc(reqs, func(r wireRequest) bool { return !r.allow }); firstDeny >= 48 {
		t.Errorf("first denied request at %d: the pool is not shuffled", firstDeny)
	}
}

func TestBuildPoolErrors(t *testing.T) {
	keys := testKeys(t)
	hs, err := signersFor("HS256", keys)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		spec    poolSpec
		wantErr string
	}{
		{name: "no tokens", spec: poolSpec{Signers: hs, Count: 0, Mix: 0.5, Fixtures: benchFixtures()}, wantErr: "pool of 0 tokens"},
		{name: "mix above 1", spec: poolSpec{Signers: hs, Count: 5, Mix: 1.5, Fixtures: benchFixtures()}, wantErr: "mix 1.5"},
		{name: "unknown fixture", spec: poolSpec{Signers: hs, Count: 5, Mix: 0.5, Fixtures: []string{"nope"}}, wantErr: `no fixture "nope"`},
		{name: "fixture without placeholder", spec: poolSpec{Signers: hs, Count: 5, Mix: 0.5, Fixtures: []string{"cors-preflight"}}, wantErr: "no ${TOKEN} placeholder"},
		{name: "no signer", spec: poolSpec{Count: 5, Mix: 0.5, Fixtures: benchFixtures()}, wantErr: "no signer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := buildPool(t.Context(), tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("buildPool(%s) error = %v, want it to contain %q", tc.name, err, tc.wantErr)
			}
		})
	}
}

func TestBuildPoolMixEdges(t *testing.T) {
	keys := testKeys(t)
	hs, err := signersFor("HS256", keys)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mix  float64
		want int
	}{{0, 0}, {1, 10}, {0.25, 3}} { // round(2.5) = 3
		reqs, err := buildPool(t.Context(), poolSpec{Signers: hs, Count: 10, Mix: tc.mix, Fixtures: benchFixtures(), Claims: claimSpec{TTL: time.Hour}})
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for _, r := range reqs {
			if r.allow {
				got++
			}
		}
		if got != tc.want {
			t.Errorf("buildPool(mix %v, 10 tokens) allows %d, want %d", tc.mix, got, tc.want)
		}
	}
}

func TestReadSigningKeys(t *testing.T) {
	dir := t.TempDir()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	const secret = "s3cr3t-value-never-printed"
	files := map[string][]byte{
		"hs.key":    []byte("  " + secret + "\n"),
		"hs2.key":   []byte(secret + "-other"),
		"empty.key": []byte(" \n"),
		"rsa8.pem":  pkcs8(rk),
		"rsa1.pem":  pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)}),
		"ec.pem":    pkcs8(ek),
		"pub.pem":   pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("x")}),
		"bad.pem":   []byte("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n"),
		"junk.pem":  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("junk")}),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, filepath.Join(dir, n))
		}
		return out
	}
	tests := []struct {
		name     string
		paths    []string
		wantHMAC string
		wantRSA  bool
		wantErr  string
	}{
		{name: "HMAC secret, white space trimmed", paths: p("hs.key"), wantHMAC: secret},
		{name: "PKCS #8 RSA", paths: p("rsa8.pem"), wantRSA: true},
		{name: "PKCS #1 RSA", paths: p("rsa1.pem"), wantRSA: true},
		{name: "both", paths: p("hs.key", "rsa8.pem"), wantHMAC: secret, wantRSA: true},
		{name: "missing file", paths: p("nope.key"), wantErr: "nope.key"},
		{name: "empty secret", paths: p("empty.key"), wantErr: "empty HMAC secret"},
		{name: "two secrets", paths: p("hs.key", "hs2.key"), wantErr: "a second HMAC secret"},
		{name: "two RSA keys", paths: p("rsa8.pem", "rsa1.pem"), wantErr: "a second RSA key"},
		{name: "EC key", paths: p("ec.pem"), wantErr: "want an RSA private key"},
		{name: "public key", paths: p("pub.pem"), wantErr: `PEM block "PUBLIC KEY"`},
		{name: "undecodable PEM", paths: p("bad.pem"), wantErr: "no PEM block"},
		{name: "junk DER", paths: p("junk.pem"), wantErr: "PKCS #8 private key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ks, err := readSigningKeys(tc.paths)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("readSigningKeys(%s) error = %v, want it to contain %q", tc.name, err, tc.wantErr)
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("readSigningKeys(%s) error shows the secret", tc.name)
				}
				return
			}
			if err != nil {
				t.Fatalf("readSigningKeys(%s): %v", tc.name, err)
			}
			if string(ks.hmac) != tc.wantHMAC {
				t.Errorf("readSigningKeys(%s) HMAC secret of %d bytes, want %d", tc.name, len(ks.hmac), len(tc.wantHMAC))
			}
			if (ks.rsa != nil) != tc.wantRSA {
				t.Errorf("readSigningKeys(%s) RSA key present = %v, want %v", tc.name, ks.rsa != nil, tc.wantRSA)
			}
		})
	}
}

func TestSignersFor(t *testing.T) {
	keys := testKeys(t)
	tests := []struct {
		alg     string
		keys    signingKeys
		want    []jwa.SignatureAlgorithm
		wantErr string
	}{
		{alg: "HS256", keys: keys, want: []jwa.SignatureAlgorithm{jwa.HS256}},
		{alg: "RS256", keys: keys, want: []jwa.SignatureAlgorithm{jwa.RS256}},
		{alg: "mixed", keys: keys, want: []jwa.SignatureAlgorithm{jwa.HS256, jwa.RS256}},
		{alg: "HS256", keys: signingKeys{rsa: keys.rsa}, wantErr: "HS256 needs --key with an HMAC secret"},
		{alg: "RS256", keys: signingKeys{hmac: keys.hmac}, wantErr: "RS256 needs --key with a PEM RSA private key"},
		{alg: "mixed", keys: signingKeys{hmac: keys.hmac}, wantErr: "RS256 needs"},
		{alg: "ES256", keys: keys, wantErr: `--alg "ES256": want HS256, RS256 or mixed`},
	}
	for _, tc := range tests {
		t.Run(tc.alg+"/"+tc.wantErr, func(t *testing.T) {
			got, err := signersFor(tc.alg, tc.keys)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("signersFor(%q) error = %v, want it to contain %q", tc.alg, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var algs []jwa.SignatureAlgorithm
			for _, s := range got {
				algs = append(algs, s.alg)
			}
			if !slices.Equal(algs, tc.want) {
				t.Errorf("signersFor(%q) = %v, want %v", tc.alg, algs, tc.want)
			}
		})
	}
}

// TestBuildPoolInvalid: the default mix of the load (80% allowed, 14% 403,
// 6% 401) over 1000 valid tokens: 64 more requests replay eight invalid
// tokens, two of each kind, each refused by a verifier for its reason.
func TestBuildPoolInvalid(t *testing.T) {
	keys := testKeys(t)
	signers, err := signersFor("mixed", keys)
	if err != nil {
		t.Fatal(err)
	}
	const aud = "authz-bench"
	spec := poolSpec{
		Signers: signers, Count: 1000, Mix: 0.8, Invalid: 0.06, InvalidKinds: invalidKinds(),
		Fixtures: benchFixtures(), Claims: claimSpec{Audience: aud, TTL: time.Hour}, Seed: 5,
	}
	reqs, err := buildPool(t.Context(), spec)
	if err != nil {
		t.Fatalf("buildPool: %v", err)
	}
	if len(reqs) != 1064 {
		t.Fatalf("%d requests, want 1064 (1000 valid tokens + 64 invalid replays)", len(reqs))
	}
	verifyKey := map[jwa.SignatureAlgorithm]any{jwa.HS256: keys.hmac, jwa.RS256: &keys.rsa.PublicKey}
	status := map[int32]int{}
	valid := map[string]bool{}
	invalid := map[string]int{}
	kinds := map[string]int{}
	firstInvalid := -1
	for i, r := range reqs {
		status[r.wantStatus()]++
		req := new(authv3.CheckRequest)
		if err := proto.Unmarshal(r.body, req); err != nil {
			t.Fatalf("request %d does not parse: %v", i, err)
		}
		raw := tokenOf(t, req)
		alg := jwa.HS256
		if strings.HasPrefix(raw, "eyJhbGciOiJSUzI1NiI") {
			alg = jwa.RS256
		}
		_, verr := jwt.Parse([]byte(raw), jwt.WithKey(alg, verifyKey[alg]), jwt.WithAudience(aud))
		if !r.invalid {
			if verr != nil {
				t.Fatalf("request %d: a valid token does not verify: %v", i, verr)
			}
			if valid[raw] {
				t.Errorf("request %d repeats a valid token", i)
			}
			valid[raw] = true
			continue
		}
		if firstInvalid < 0 {
			firstInvalid = i
		}
		if r.allow {
			t.Errorf("request %d: invalid and allowed", i)
		}
		invalid[raw]++
		if invalid[raw] > 1 {
			continue
		}
		switch {
		case strings.HasPrefix(raw, "eyJhbGciOiJub25lIi"):
			kinds["algorithm"]++
			if verr == nil {
				t.Errorf("request %d: the alg none token verifies", i)
			}
		case verr == nil:
			t.Errorf("request %d: an invalid token verifies", i)
		case strings.Contains(verr.Error(), `"exp" not satisfied`):
			kinds["expired"]++
		case strings.Contains(verr.Error(), `"aud" not satisfied`):
			kinds["audience"]++
		default:
			if _, perr := jwt.Parse([]byte(raw), jwt.WithVerify(false)); perr != nil {
				t.Errorf("request %d: the altered-signature token does not even parse: %v", i, perr)
			}
			kinds["signature"]++
		}
	}
	if want := map[int32]int{200: 851, 403: 149, 401: 64}; !maps.Equal(status, want) {
		t.Errorf("outcomes %v, want %v (80%% / 14%% / 6%% of 1064)", status, want)
	}
	if len(invalid) != 8 {
		t.Errorf("%d distinct invalid tokens, want 8 (two of each kind)", len(invalid))
	}
	for _, n := range invalid {
		if n != 8 {
			t.Errorf("an invalid token is replayed %d times, want 8 (64 over 8)", n)
		}
	}
	if want := map[string]int{"expired": 2, "audience": 2, "signature": 2, "algorithm": 2}; !maps.Equal(kinds, want) {
		t.Errorf("invalid kinds %v, want %v", kinds, want)
	}
	if firstInvalid >= 1000 {
		t.Errorf("first invalid request at %d: not interleaved", firstInvalid)
	}
}

func TestBuildPoolInvalidErrors(t *testing.T) {
	keys := testKeys(t)
	hs, err := signersFor("HS256", keys)
	if err != nil {
		t.Fatal(err)
	}
	base := poolSpec{Signers: hs, Count: 5, Mix: 0.5, Fixtures: benchFixtures(), Claims: claimSpec{TTL: time.Hour}}
	for _, tc := range []struct {
		name    string
		edit    func(*poolSpec)
		wantErr string
	}{
		{"share of 1", func(s *poolSpec) { s.Invalid, s.InvalidKinds = 1, []string{"expired"} }, "invalid share 1"},
		{"mix + invalid above 1", func(s *poolSpec) { s.Mix, s.Invalid, s.InvalidKinds = 0.9, 0.2, []string{"expired"} }, "mix + invalid"},
		{"no kinds", func(s *poolSpec) { s.Invalid = 0.1 }, "without invalid kinds"},
		{"unknown kind", func(s *poolSpec) { s.Invalid, s.InvalidKinds = 0.1, []string{"stale"} }, `invalid kind "stale"`},
		{"audience without aud", func(s *poolSpec) { s.Invalid, s.InvalidKinds = 0.1, []string{"audience"} }, "needs an audience"},
	} {
		spec := base
		tc.edit(&spec)
		if _, err := buildPool(t.Context(), spec); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: error %v, want it to contain %q", tc.name, err, tc.wantErr)
		}
	}
	if k, err := parseInvalidKinds("", ""); err != nil || slices.Contains(k, "audience") || len(k) != 3 {
		t.Errorf(`parseInvalidKinds("", no aud) = %v, %v; want the three kinds without audience`, k, err)
	}
	if k, err := parseInvalidKinds("", "x"); err != nil || len(k) != 4 {
		t.Errorf(`parseInvalidKinds("", aud) = %v, %v; want all four`, k, err)
	}
	if _, err := parseInvalidKinds("audience", ""); err == nil {
		t.Error(`parseInvalidKinds("audience", no aud): no error`)
	}
}
