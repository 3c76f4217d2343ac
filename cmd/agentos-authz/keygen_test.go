package main

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// readJWKS parses a JWK Set file and returns its keys' kids in order.
func readJWKS(t *testing.T, path string) (jwk.Set, []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	set, err := jwk.Parse(data)
	if err != nil {
		t.Fatalf("jwk.Parse(%s): %v", path, err)
	}
	var kids []string
	for i := range set.Len() {
		k, _ := set.Key(i)
		kids = append(kids, k.KeyID())
	}
	return set, kids
}

// thumbprint is jwx's RFC 7638 SHA-256 thumbprint of a PEM public key.
func thumbprint(t *testing.T, pubPEMFile string) string {
	t.Helper()
	data, err := os.ReadFile(pubPEMFile)
	if err != nil {
		t.Fatal(err)
	}
	k, err := jwk.ParseKey(data, jwk.WithPEM(true))
	if err != nil {
		t.Fatal(err)
	}
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// TestKeygenJWKS: keygen --jwks writes the new public key as a JWK Set
// with its thumbprint kid, alg and use; the set verifies the key's tokens
// as this service's jwt.jwks_file; --key writes the same bytes for an
// existing key, and both keys of a rotation, the newest first.
func TestKeygenJWKS(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			h := newHarness(t)
			dir := t.TempDir()
			prefix, jwksFile := filepath.Join(dir, "up"), filepath.Join(dir, "jwks.json")
			if code := h.run("keygen", "--alg", alg, "--out", prefix, "--jwks", jwksFile); code != 0 {
				t.Fatalf("keygen --alg %s --jwks = exit %d\nstderr: %s", alg, code, h.stderr)
			}
			kid := thumbprint(t, prefix+".pub.pem")
			if out := h.stdout.String(); !strings.Contains(out, jwksFile) || !strings.Contains(out, "kid "+kid) {
				t.Errorf("keygen stdout %q, want it to name %s and kid %s", out, jwksFile, kid)
			}
			set, kids := readJWKS(t, jwksFile)
			if !slices.Equal(kids, []string{kid}) {
				t.Fatalf("JWK Set kids %q, want [%s] (jwx's thumbprint of the public key)", kids, kid)
			}
			pub, _ := set.Key(0)
			if pub.Algorithm().String() != alg || pub.KeyUsage() != "sig" {
				t.Errorf("JWK alg %v use %q, want %s sig", pub.Algorithm(), pub.KeyUsage(), alg)
			}
			raw, _ := os.ReadFile(jwksFile)
			if bytes.Contains(raw, []byte(`"d"`)) {
				t.Error("the JWK Set holds private key material")
			}

			// The set is a working JWKS: a token with that kid, signed by
			// the private key, passes this service's own check with
			// jwt.jwks_file pointing at it; the same token without the
			// right key does not.
			tok := h.mint("--key", prefix+".key.pem", "--alg", alg, "--kid", kid, "--aud", "test-os", "--sub", "alice", "--scopes", "agents:read")
			cfg := writeConfig(t, map[string]any{
				"os_id": "test-os",
				"jwt":   map[string]any{"jwks_file": jwksFile, "algorithms": []string{alg}, "verify_audience": true},
			})
			h.runChecks(cfg, []checkCase{
				{name: "token of the key", token: tok, method: "GET", path: "/agents", wantCode: 0, want: []string{"decision: allow", "user:     alice"}},
			})

			// --key: the same set, byte for byte, from the existing file.
			again := filepath.Join(dir, "again.json")
			if code := h.run("keygen", "--key", prefix+".key.pem", "--jwks", again); code != 0 {
				t.Fatalf("keygen --key --jwks = exit %d\nstderr: %s", code, h.stderr)
			}
			if b, _ := os.ReadFile(again); !bytes.Equal(b, raw) {
				t.Errorf("keygen --key wrote\n%s\nwant the set keygen --jwks wrote\n%s", b, raw)
			}
			// Never overwritten.
			if code := h.run("keygen", "--key", prefix+".key.pem", "--jwks", again); code != exitFault || !strings.Contains(h.stderr.String(), "already exists") {
				t.Errorf("keygen --jwks over an existing file = exit %d, stderr %q; want 1, already exists", code, h.stderr)
			}
		})
	}

	t.Run("rotation", func(t *testing.T) {
		h := newHarness(t)
		dir := t.TempDir()
		oldP, newP := filepath.Join(dir, "old"), filepath.Join(dir, "new")
		for _, p := range []string{oldP, newP} {
			if code := h.run("keygen", "--alg", "ES256", "--out", p); code != 0 {
				t.Fatalf("keygen = %d: %s", code, h.stderr)
			}
		}
		both := filepath.Join(dir, "both.json")
		if code := h.run("keygen", "--key", newP+".key.pem", "--key", oldP+".key.pem", "--jwks", both); code != 0 {
			t.Fatalf("keygen --key new --key old = exit %d\nstderr: %s", code, h.stderr)
		}
		_, kids := readJWKS(t, both)
		if want := []string{thumbprint(t, newP+".pub.pem"), thumbprint(t, oldP+".pub.pem")}; !slices.Equal(kids, want) {
			t.Errorf("rotation JWK Set kids %q, want %q (newest first)", kids, want)
		}
	})

	t.Run("errors", func(t *testing.T) {
		h := newHarness(t)
		dir := t.TempDir()
		prefix := filepath.Join(dir, "k")
		if code := h.run("keygen", "--alg", "ES384", "--out", prefix); code != 0 {
			t.Fatalf("keygen = %d: %s", code, h.stderr)
		}
		jwksFile := filepath.Join(dir, "jwks.json")
		for _, c := range []struct {
			name     string
			args     []string
			wantCode int
			want     string
		}{
			{name: "PS256 with --jwks", args: []string{"--alg", "PS256", "--out", filepath.Join(dir, "ps"), "--jwks", jwksFile}, wantCode: exitUsage, want: "identity tokens are signed with RS256, ES256 or EdDSA, not PS256"},
			{name: "--key without --jwks", args: []string{"--key", prefix + ".key.pem"}, wantCode: exitUsage, want: "--key needs --jwks FILE"},
			{name: "--key with --out", args: []string{"--key", prefix + ".key.pem", "--out", filepath.Join(dir, "x"), "--jwks", jwksFile}, wantCode: exitUsage, want: "give one of them"},
			{name: "--key with --alg", args: []string{"--key", prefix + ".key.pem", "--alg", "ES256", "--jwks", jwksFile}, wantCode: exitUsage, want: "--alg is for a new key"},
			{name: "P-384 key", args: []string{"--key", prefix + ".key.pem", "--jwks", jwksFile}, wantCode: exitFault, want: prefix + ".key.pem: the file holds an EC key on P-384"},
			{name: "public key", args: []string{"--key", prefix + ".pub.pem", "--jwks", jwksFile}, wantCode: exitFault, want: "holds a public key"},
			{name: "missing key file", args: []string{"--key", filepath.Join(dir, "none.pem"), "--jwks", jwksFile}, wantCode: exitFault, want: "none.pem"},
		} {
			args := append([]string{"keygen"}, c.args...)
			if code := h.run(args...); code != c.wantCode || !strings.Contains(h.stderr.String(), c.want) {
				t.Errorf("%s: %s = exit %d, stderr %q; want %d and %q", c.name, call(args), code, h.stderr, c.wantCode, c.want)
			}
			if _, err := os.Stat(jwksFile); err == nil {
				t.Fatalf("%s: %s wrote %s", c.name, call(args), jwksFile)
			}
		}
		// A failing --jwks leaves no half-written key pair behind.
		if _, err := os.Stat(filepath.Join(dir, "ps.key.pem")); err == nil {
			t.Error("keygen --alg PS256 --jwks left a private key behind")
		}
		// An existing --jwks target stops keygen before it writes the pair.
		if err := os.WriteFile(jwksFile, []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"keygen", "--alg", "EdDSA", "--out", filepath.Join(dir, "ed"), "--jwks", jwksFile}
		if code := h.run(args...); code != exitFault || !strings.Contains(h.stderr.String(), "already exists") {
			t.Errorf("%s = exit %d, stderr %q; want 1, already exists", call(args), code, h.stderr)
		}
		if _, err := os.Stat(filepath.Join(dir, "ed.key.pem")); err == nil {
			t.Error("keygen wrote the key pair although the --jwks file exists")
		}
	})
}
