package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// verifiedToken checks tok's signature with the PEM public key file and returns its
// protected header and its claims as JSON values.
func verifiedToken(t *testing.T, tok, pubFile string) (jws.Headers, map[string]any) {
	t.Helper()
	pem, err := os.ReadFile(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	key, err := jwk.ParseKey(pem, jwk.WithPEM(true))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := jws.Verify([]byte(tok), jws.WithKey(jwa.RS256, key))
	if err != nil {
		t.Fatalf("the minted token does not verify: %v", err)
	}
	msg, err := jws.Parse([]byte(tok))
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return msg.Signatures()[0].ProtectedHeaders(), claims
}

// TestTokenClaims: --claim adds claims, JSON values as JSON and anything else as the
// string given; it replaces what the other flags set; --kid names the key.
func TestTokenClaims(t *testing.T) {
	h := newHarness(t)
	prefix := filepath.Join(t.TempDir(), "rs")
	if code := h.run("keygen", "--alg", "RS256", "--out", prefix); code != 0 {
		t.Fatalf("keygen = %d: %s", code, h.stderr)
	}
	tok := h.mint("--key", prefix+".key.pem", "--sub", "erin", "--scopes", "agents:read", "--kid", "issuer-2026",
		"--claim", "n=3",
		"--claim", "big=12345678901234567890",
		"--claim", "admin=true",
		"--claim", `roles=["a","b"]`,
		"--claim", `org={"id":7,"name":"acme"}`,
		"--claim", `quoted="x y"`,
		"--claim", "email=erin@example.com",
		"--claim", "query=a=b",
		"--claim", "empty=",
		"--claim", "nothing=null",
		"--claim", "session_id=s-1",
		"--claim", `scopes=["teams:read","teams:write"]`,
		"--claim", "sub=frank",
	)
	hdr, claims := verifiedToken(t, tok, prefix+".pub.pem")
	if hdr.KeyID() != "issuer-2026" {
		t.Errorf("kid = %q, want issuer-2026", hdr.KeyID())
	}
	want := map[string]any{
		"n":          float64(3),
		"admin":      true,
		"roles":      []any{"a", "b"},
		"org":        map[string]any{"id": float64(7), "name": "acme"},
		"quoted":     "x y",
		"email":      "erin@example.com",
		"query":      "a=b",
		"empty":      "",
		"nothing":    nil,
		"session_id": "s-1",
		"scopes":     []any{"teams:read", "teams:write"},
		"sub":        "frank",
	}
	for k, v := range want {
		got, ok := claims[k]
		if !ok || !reflect.DeepEqual(got, v) {
			t.Errorf("claim %s = %#v (present %v), want %#v", k, got, ok, v)
		}
	}
	// A large integer stays exact (a JSON number, not a float64 rounding).
	if !strings.Contains(decodePayload(t, tok), `"big":12345678901234567890`) {
		t.Errorf("claim big is not the exact number: %s", decodePayload(t, tok))
	}
	if _, ok := claims["exp"]; !ok {
		t.Error("exp missing: --claim must not drop the other claims")
	}
}

func decodePayload(t *testing.T, tok string) string {
	t.Helper()
	msg, err := jws.Parse([]byte(tok))
	if err != nil {
		t.Fatal(err)
	}
	return string(msg.Payload())
}

func TestTokenClaimErrors(t *testing.T) {
	h := newHarness(t)
	prefix := filepath.Join(t.TempDir(), "rs")
	if code := h.run("keygen", "--alg", "RS256", "--out", prefix); code != 0 {
		t.Fatalf("keygen = %d: %s", code, h.stderr)
	}
	tests := []struct {
		claims []string
		want   string
	}{
		{claims: []string{"role"}, want: `"role": want name=value`},
		{claims: []string{"=x"}, want: "the claim name is empty"},
		{claims: []string{"a=1", "a=2"}, want: `claim "a" given twice`},
		{claims: []string{"exp=soon"}, want: "--claim exp:"},
		{claims: []string{`aud={"x":1}`}, want: "--claim aud:"},
	}
	for _, tt := range tests {
		args := []string{"token", "--key", prefix + ".key.pem"}
		for _, c := range tt.claims {
			args = append(args, "--claim", c)
		}
		code := h.run(args...)
		if code != exitUsage || !strings.Contains(h.stderr.String(), tt.want) {
			t.Errorf("%s = exit %d, stderr %q; want 2 and %q", call(args), code, h.stderr, tt.want)
		}
		if h.stdout.String() != "" {
			t.Errorf("%s printed %q on stdout", call(args), h.stdout)
		}
	}
}
