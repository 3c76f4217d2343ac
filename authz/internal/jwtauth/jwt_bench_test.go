package jwtauth

import (
	"context"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/agentos-authz/agentos-authz/internal/jwttest"
)

// Benchmark sinks.
var (
	sinkIdentity Identity
	sinkFailure  *Failure
	sinkPayload  []byte
)

// benchCase is one algorithm: a valid token and the key that verifies it.
type benchCase struct {
	name string
	alg  jwa.SignatureAlgorithm
	tok  string
	key  any // the raw public key or secret, for the bare signature check
}

func benchCases(b *testing.B) (*Verifier, []benchCase) {
	k := jwttest.LoadKeys(b)
	v := jtVerifier(b, jtBaseConfig(k), Options{Audience: []string{"test-os"}})
	// Claims as a real IdP issues them: the standard set plus scopes.
	c := jwttest.Claims(map[string]any{"scopes": []any{"agents:read", "agents:*:run", "teams:read"}, "iss": "https://idp.example", "jti": "7f3c2a"})
	cases := []benchCase{
		{name: "RS256", alg: jwa.RS256, key: k.RS.Priv.Public()},
		{name: "ES256", alg: jwa.ES256, key: k.ES.Priv.Public()},
		{name: "EdDSA", alg: jwa.EdDSA, key: k.ED.Priv.Public()},
		{name: "HS256", alg: jwa.HS256, key: []byte(k.HS)},
	}
	for i := range cases {
		var signKey any = []byte(k.HS)
		switch cases[i].alg {
		case jwa.RS256:
			signKey = k.RS.Priv
		case jwa.ES256:
			signKey = k.ES.Priv
		case jwa.EdDSA:
			signKey = k.ED.Priv
		}
		cases[i].tok = jwttest.Mint(b, jwttest.Token{Alg: string(cases[i].alg), Key: signKey, Claims: c})
	}
	return v, cases
}

// BenchmarkVerify is the whole pipeline for one token: shape check, key
// selection, signature, claims decoding and validation, identity.
func BenchmarkVerify(b *testing.B) {
	v, cases := benchCases(b)
	ctx := context.Background()
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			if _, f := v.Verify(ctx, bc.tok); f != nil {
				b.Fatalf("Verify: %s", f.Detail())
			}
			b.ReportAllocs()
			for b.Loop() {
				sinkIdentity, sinkFailure = v.Verify(ctx, bc.tok)
			}
		})
	}
}

// BenchmarkBareSignature is jws.Verify with the right key given directly:
// the floor the pipeline is measured against.
func BenchmarkBareSignature(b *testing.B) {
	_, cases := benchCases(b)
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			if _, err := jws.Verify([]byte(bc.tok), jws.WithKey(bc.alg, bc.key)); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				sinkPayload, _ = jws.Verify([]byte(bc.tok), jws.WithKey(bc.alg, bc.key))
			}
		})
	}
}
