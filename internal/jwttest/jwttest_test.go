package jwttest

import (
	"crypto"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// TestMint: a minted token verifies under jws.Verify with the key it was
// signed by, carries the header as given, and FlipSig breaks it.
func TestMint(t *testing.T) {
	k := LoadKeys(t)
	for _, tc := range []struct {
		alg    string
		sign   any
		verify any
	}{
		{"HS256", k.HS, []byte(k.HS)},
		{"RS256", k.RS.Priv, k.RS.Priv.Public()},
		{"ES256", k.ES.Priv, k.ES.Priv.Public()},
		{"EdDSA", k.ED.Priv, k.ED.Priv.Public()},
		{"ES384", k.ES384.Priv, k.ES384.Priv.Public()},
	} {
		tok := Mint(t, Token{Alg: tc.alg, Key: tc.sign, Header: map[string]any{"kid": "k1", "typ": nil}, Claims: Claims(nil)})
		payload, err := jws.Verify([]byte(tok), jws.WithKey(jwa.SignatureAlgorithm(tc.alg), tc.verify))
		if err != nil {
			t.Fatalf("%s: jws.Verify: %v", tc.alg, err)
		}
		var claims map[string]any
		if err := json.Unmarshal(payload, &claims); err != nil || claims["sub"] != "test_user" || claims["exp"] != float64(Unix(time.Hour)) {
			t.Errorf("%s: payload %s (%v)", tc.alg, payload, err)
		}
		msg, err := jws.Parse([]byte(tok))
		if err != nil {
			t.Fatal(err)
		}
		h := msg.Signatures()[0].ProtectedHeaders()
		if _, hasTyp := h.Get("typ"); h.KeyID() != "k1" || hasTyp {
			t.Errorf("%s: header kid %q, typ present %v; want k1 and no typ", tc.alg, h.KeyID(), hasTyp)
		}
		if _, err := jws.Verify([]byte(FlipSig(tok)), jws.WithKey(jwa.SignatureAlgorithm(tc.alg), tc.verify)); err == nil {
			t.Errorf("%s: FlipSig(token) still verifies", tc.alg)
		}
	}
	if tok := Mint(t, Token{Alg: "none", Payload: []byte(`{"sub":"x"}`)}); !strings.HasSuffix(tok, ".") || strings.Count(tok, ".") != 2 {
		t.Errorf("alg none: %q, want header.payload.", tok)
	}
}

// TestJWKS: the documents hold the keys with the kids and algs asked for.
func TestJWKS(t *testing.T) {
	k := LoadKeys(t)
	doc := JWKS(t, []crypto.PublicKey{k.RS.Priv.Public(), k.ES.Priv.Public()}, []string{"a", ""}, []string{"RS256", ""})
	set, err := jwk.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	if set.Len() != 2 {
		t.Fatalf("JWKS has %d keys, want 2", set.Len())
	}
	first, _ := set.Key(0)
	second, _ := set.Key(1)
	if first.KeyID() != "a" || first.Algorithm().String() != "RS256" || first.KeyUsage() != "sig" {
		t.Errorf("first key: kid %q alg %q use %q", first.KeyID(), first.Algorithm(), first.KeyUsage())
	}
	if second.KeyID() != "" || second.Algorithm().String() != "" {
		t.Errorf("second key: kid %q alg %q, want neither", second.KeyID(), second.Algorithm())
	}
	one, err := jwk.ParseKey([]byte(JWK(t, k.ED.Priv.Public(), "e", "enc", "EdDSA")))
	if err != nil || one.KeyID() != "e" || one.KeyUsage() != "enc" || one.Algorithm().String() != "EdDSA" {
		t.Errorf("JWK: %v (%v)", one, err)
	}
}

// TestFakeClock: After fires exactly when Advance or Set reaches it.
func TestFakeClock(t *testing.T) {
	c := NewFakeClock(Now)
	ch := c.After(10 * time.Second)
	if c.Waiting() != 1 {
		t.Fatalf("Waiting() = %d, want 1", c.Waiting())
	}
	c.Advance(9 * time.Second)
	select {
	case <-ch:
		t.Fatal("After(10s) fired after 9s")
	default:
	}
	c.Advance(time.Second)
	select {
	case got := <-ch:
		if !got.Equal(Now.Add(10 * time.Second)) {
			t.Errorf("After fired with %v", got)
		}
	default:
		t.Fatal("After(10s) did not fire after 10s")
	}
	ch = c.After(time.Minute)
	c.Set(Now.Add(time.Hour))
	if _, ok := <-ch; !ok || c.Waiting() != 0 || !c.Now().Equal(Now.Add(time.Hour)) {
		t.Errorf("Set: waiting %d, now %v", c.Waiting(), c.Now())
	}
	if now := <-c.After(0); !now.Equal(c.Now()) {
		t.Errorf("After(0) = %v, want at once %v", now, c.Now())
	}
}
