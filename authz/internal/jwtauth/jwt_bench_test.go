package jwtauth

import (
	"context"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
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
	k := jtLoadKeys(b)
	v := jtVerifier(b, jtBaseConfig(k), Options{Audience: []string{"test-os"}})
	// Claims as a real IdP issues them: the standard set plus scopes.
	c := jtClaims(map[string]any{"scopes": []any{"agents:read", "agents:*:run", "teams:read"}, "iss": "https://idp.example", "jti": "7f3c2a"})
	cases := []benchCase{
		{name: "RS256", alg: jwa.RS256, key: k.rs.priv.Public()},
		{name: "ES256", alg: jwa.ES256, key: k.es.priv.Public()},
		{name: "EdDSA", alg: jwa.EdDSA, key: k.ed.priv.Public()},
		{name: "HS256", alg: jwa.HS256, key: []byte(k.hs)},
	}
	for i := range cases {
		var signKey any = []byte(k.hs)
		switch cases[i].alg {
		case jwa.RS256:
			signKey = k.rs.priv
		case jwa.ES256:
			signKey = k.es.priv
		case jwa.EdDSA:
			signKey = k.ed.priv
		}
		cases[i].tok = jtMint(b, jtToken{alg: string(cases[i].alg), key: signKey, claims: c})
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
