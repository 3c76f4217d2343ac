package conformance

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
)

var fixedNow = time.Unix(1_800_000_000, 0)

// parts splits a compact JWS into its decoded header and payload and its
// signature text.
func parts(t *testing.T, tok string) (header, payload map[string]any, sig string) {
	t.Helper()
	p := strings.Split(tok, ".")
	if len(p) != 3 {
		t.Fatalf("token has %d parts, want 3", len(p))
	}
	for i, dst := range []*map[string]any{&header, &payload} {
		b, err := base64.RawURLEncoding.DecodeString(p[i])
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatalf("part %d %s: %v", i, b, err)
		}
	}
	return header, payload, p[2]
}

func claimsJSON(t *testing.T, v map[string]any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMintVerifies(t *testing.T) {
	ks := testKeys(t)
	m := Minter{Keys: ks.keys, Now: func() time.Time { return fixedNow }}
	claims := claimsJSON(t, map[string]any{"sub": "u1", "aud": "test-os", "exp": "+1h", "iat": "now", "nbf": "-30s", "scopes": []string{"agents:read"}})
	secret := []byte("test-hmac-secret-0123456789")
	pem, _ := ks.keys.PublicPEM("rs")
	tests := []struct {
		spec      TokenSpec
		verifyKey any
	}{
		{TokenSpec{Claims: claims}, secret}, // defaults: HS256 with hs
		{TokenSpec{Alg: "HS256", Key: "hs", Claims: claims}, secret},
		{TokenSpec{Alg: "HS512", Key: "hs", Claims: claims}, secret},
		{TokenSpec{Alg: "HS256", Secret: ptr("literal"), Claims: claims}, []byte("literal")},
		{TokenSpec{Alg: "HS256", Key: "pem:rs", Claims: claims}, []byte(pem)},
		{TokenSpec{Alg: "RS256", Key: "rs", Claims: claims}, ks.pub["rs"]},
		{TokenSpec{Alg: "PS256", Key: "rs", Claims: claims}, ks.pub["rs"]},
		{TokenSpec{Alg: "ES256", Key: "es", Claims: claims}, ks.pub["es"]},
		{TokenSpec{Alg: "EdDSA", Key: "ed", Claims: claims}, ks.pub["ed"]},
	}
	for _, tt := range tests {
		alg := tt.spec.Alg
		if alg == "" {
			alg = "HS256"
		}
		tok, err := m.Mint(tt.spec)
		if err != nil {
			t.Errorf("Mint(%s, %s): %v", alg, tt.spec.Key, err)
			continue
		}
		payload, err := jws.Verify([]byte(tok), jws.WithKey(jwa.SignatureAlgorithm(alg), tt.verifyKey))
		if err != nil {
			t.Errorf("Mint(%s, %s): does not verify: %v", alg, tt.spec.Key, err)
			continue
		}
		var got map[string]any
		if err := json.Unmarshal(payload, &got); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{
			"sub": "u1", "aud": "test-os", "scopes": []any{"agents:read"},
			"exp": float64(fixedNow.Unix() + 3600), "iat": float64(fixedNow.Unix()), "nbf": float64(fixedNow.Unix() - 30),
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Mint(%s) claims = %v, want %v", alg, got, want)
		}
		header, _, _ := parts(t, tok)
		if header["alg"] != alg || header["typ"] != "JWT" || len(header) != 2 {
			t.Errorf("Mint(%s) header = %v, want alg %s and typ JWT only", alg, header, alg)
		}
	}
}

func TestMintShapes(t *testing.T) {
	ks := testKeys(t)
	m := Minter{Keys: ks.keys, Now: func() time.Time { return fixedNow }}
	claims := claimsJSON(t, map[string]any{"sub": "u1", "exp": "+1h", "scopes": []string{"agents:read"}})
	secret := []byte("test-hmac-secret-0123456789")

	t.Run("raw", func(t *testing.T) {
		if got, _ := m.Mint(TokenSpec{Raw: ptr("invalid.token.here"), Alg: "RS256"}); got != "invalid.token.here" {
			t.Errorf("Mint(raw) = %q", got)
		}
	})
	t.Run("alg none in any case", func(t *testing.T) {
		for _, alg := range []string{"none", "None", "NONE"} {
			tok, err := m.Mint(TokenSpec{Alg: alg, Claims: claims})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(tok, ".") {
				t.Errorf("Mint(%s) = %q, want an empty signature", alg, tok)
			}
			header, payload, _ := parts(t, tok)
			if header["alg"] != alg || payload["sub"] != "u1" {
				t.Errorf("Mint(%s) = %v %v", alg, header, payload)
			}
		}
		tok, _ := m.Mint(TokenSpec{Alg: "none", Claims: claims, Header: map[string]json.RawMessage{"alg": json.RawMessage(`"nOnE"`)}})
		if header, _, _ := parts(t, tok); header["alg"] != "nOnE" {
			t.Errorf("alg none with header alg nOnE: header = %v", header)
		}
	})
	t.Run("header fields", func(t *testing.T) {
		tok, err := m.Mint(TokenSpec{Claims: claims, Header: map[string]json.RawMessage{
			"kid": json.RawMessage(`"rs"`), "jku": json.RawMessage(`"http://127.0.0.1:9/jwks.json"`), "typ": json.RawMessage(`null`),
		}})
		if err != nil {
			t.Fatal(err)
		}
		header, _, _ := parts(t, tok)
		want := map[string]any{"alg": "HS256", "kid": "rs", "jku": "http://127.0.0.1:9/jwks.json"}
		if !reflect.DeepEqual(header, want) {
			t.Errorf("header = %v, want %v", header, want)
		}
		if _, err := jws.Verify([]byte(tok), jws.WithKey(jwa.HS256, secret)); err != nil {
			t.Errorf("does not verify: %v", err)
		}
	})
	t.Run("header null decodes as a removal", func(t *testing.T) {
		var spec TokenSpec
		if err := json.Unmarshal([]byte(`{"header": {"typ": null, "kid": "k"}, "claims": {"sub": "u"}}`), &spec); err != nil {
			t.Fatal(err)
		}
		tok, err := m.Mint(spec)
		if err != nil {
			t.Fatal(err)
		}
		if header, _, _ := parts(t, tok); !reflect.DeepEqual(header, map[string]any{"alg": "HS256", "kid": "k"}) {
			t.Errorf("header = %v", header)
		}
	})
	t.Run("payload_raw", func(t *testing.T) {
		tok, err := m.Mint(TokenSpec{PayloadRaw: ptr("not json")})
		if err != nil {
			t.Fatal(err)
		}
		payload, err := jws.Verify([]byte(tok), jws.WithKey(jwa.HS256, secret))
		if err != nil || string(payload) != "not json" {
			t.Errorf("payload_raw: Verify = %q, %v", payload, err)
		}
	})
	t.Run("tamper signature", func(t *testing.T) {
		good, _ := m.Mint(TokenSpec{Claims: claims})
		bad, err := m.Mint(TokenSpec{Claims: claims, Tamper: &Tamper{Signature: true}})
		if err != nil {
			t.Fatal(err)
		}
		gi, bi := strings.LastIndex(good, "."), strings.LastIndex(bad, ".")
		if good[:gi] != bad[:bi] || good[gi+2:] != bad[bi+2:] || good[gi+1] == bad[bi+1] {
			t.Errorf("tamper.signature: %q vs %q, want only the signature's first character changed", good, bad)
		}
		if _, err := jws.Verify([]byte(bad), jws.WithKey(jwa.HS256, secret)); err == nil {
			t.Error("tampered signature verifies")
		}
	})
	t.Run("tamper claims", func(t *testing.T) {
		good, _ := m.Mint(TokenSpec{Claims: claims})
		bad, err := m.Mint(TokenSpec{Claims: claims, Tamper: &Tamper{Claims: json.RawMessage(`{"scopes": ["agent_os:admin"], "exp": "+2h"}`)}})
		if err != nil {
			t.Fatal(err)
		}
		_, payload, sig := parts(t, bad)
		_, _, goodSig := parts(t, good)
		if sig != goodSig {
			t.Error("tamper.claims changed the signature")
		}
		want := map[string]any{"sub": "u1", "scopes": []any{"agent_os:admin"}, "exp": float64(fixedNow.Unix() + 7200)}
		if !reflect.DeepEqual(payload, want) {
			t.Errorf("tampered payload = %v, want %v", payload, want)
		}
		if _, err := jws.Verify([]byte(bad), jws.WithKey(jwa.HS256, secret)); err == nil {
			t.Error("tampered payload verifies")
		}
	})
	t.Run("time values that are not relative stay", func(t *testing.T) {
		tok, _ := m.Mint(TokenSpec{Claims: json.RawMessage(`{"exp": "tomorrow", "iat": 12, "nbf": "+1x"}`)})
		_, payload, _ := parts(t, tok)
		want := map[string]any{"exp": "tomorrow", "iat": float64(12), "nbf": "+1x"}
		if !reflect.DeepEqual(payload, want) {
			t.Errorf("payload = %v, want %v", payload, want)
		}
	})
	t.Run("errors", func(t *testing.T) {
		for name, spec := range map[string]TokenSpec{
			"RS256 without a key":        {Alg: "RS256", Claims: claims},
			"unknown algorithm":          {Alg: "XS256", Key: "hs", Claims: claims},
			"unknown key":                {Alg: "ES256", Key: "nope", Claims: claims},
			"RSA key for ES256":          {Alg: "ES256", Key: "rs", Claims: claims},
			"tampered unsigned":          {Alg: "none", Claims: claims, Tamper: &Tamper{Signature: true}},
			"claims not an object":       {Claims: json.RawMessage(`[1]`)},
			"secret with an RSA alg":     {Alg: "RS256", Key: "rs", Secret: ptr("x"), Claims: claims},
			"tamper claims, raw payload": {PayloadRaw: ptr("x"), Tamper: &Tamper{Claims: json.RawMessage(`{}`)}},
		} {
			if tok, err := m.Mint(spec); err == nil {
				t.Errorf("Mint(%s) = %q, want an error", name, tok)
			}
		}
	})
}

func TestRelativeTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"now", 0, true},
		{"+1h", time.Hour, true},
		{"-2h", -2 * time.Hour, true},
		{"+30s", 30 * time.Second, true},
		{"+5m", 5 * time.Minute, true},
		{"-1d", -24 * time.Hour, true},
		{"1h", 0, false},
		{"+1w", 0, false},
		{"tomorrow", 0, false},
		{"+", 0, false},
	}
	for _, tt := range tests {
		got, ok := RelativeTime(tt.in, fixedNow)
		if ok != tt.ok || (ok && !got.Equal(fixedNow.Add(tt.want))) {
			t.Errorf("RelativeTime(%q) = %v, %v, want now%+v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func ptr[T any](v T) *T { return &v }
