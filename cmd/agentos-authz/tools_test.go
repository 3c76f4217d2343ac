package main

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// mint runs the token command and returns the token.
func (h *harness) mint(args ...string) string {
	h.t.Helper()
	args = append([]string{"token"}, args...)
	if code := h.run(args...); code != 0 {
		h.t.Fatalf("%s = exit %d, want 0\nstderr: %s", call(args), code, h.stderr)
	}
	tok := strings.TrimSpace(h.stdout.String())
	if strings.Count(tok, ".") != 2 {
		h.t.Fatalf("%s printed %q, want a compact JWS", call(args), tok)
	}
	return tok
}

// checkCase is one check command and what it must print.
type checkCase struct {
	name     string
	token    string // "-" with stdin
	stdin    string
	method   string
	path     string
	wantCode int
	want     []string // lines (or parts of lines) stdout must contain
}

func (h *harness) runChecks(cfgPath string, cases []checkCase) {
	h.t.Helper()
	for _, c := range cases {
		h.t.Run(c.name, func(t *testing.T) {
			args := []string{"check", "--config", cfgPath, "--method", c.method, "--path", c.path}
			if c.token != "" {
				args = append(args, "--token", c.token)
			}
			code := h.runIn(t.Context(), c.stdin, args...)
			out := h.stdout.String()
			if code != c.wantCode {
				t.Errorf("%s = exit %d, want %d\nstdout: %s\nstderr: %s", call(args), code, c.wantCode, out, h.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("%s stdout = %q, want it to contain %q", call(args), out, w)
				}
			}
			for _, tok := range []string{c.token, strings.TrimSpace(c.stdin)} {
				if len(tok) > 1 && strings.Contains(out+h.stderr.String(), tok) {
					t.Errorf("%s printed the token", call(args))
				}
			}
		})
	}
}

// TestKeygenTokenCheck: keygen, then token with the private key, then an
// offline check with the public key in the configuration, per algorithm.
func TestKeygenTokenCheck(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256", "EdDSA", "PS256"} {
		t.Run(alg, func(t *testing.T) {
			h := newHarness(t)
			prefix := filepath.Join(t.TempDir(), "k")
			if code := h.run("keygen", "--alg", alg, "--out", prefix); code != 0 {
				t.Fatalf("keygen --alg %s = exit %d\nstderr: %s", alg, code, h.stderr)
			}
			st, err := os.Stat(prefix + ".key.pem")
			if err != nil {
				t.Fatal(err)
			}
			if perm := st.Mode().Perm(); perm != 0o600 {
				t.Errorf("private key mode = %v, want 0600", perm)
			}
			pub, err := os.ReadFile(prefix + ".pub.pem")
			if err != nil {
				t.Fatal(err)
			}
			if block, _ := pem.Decode(pub); block == nil || block.Type != "PUBLIC KEY" {
				t.Fatalf("public key file is not a PUBLIC KEY PEM: %q", pub)
			} else if _, err := x509.ParsePKIXPublicKey(block.Bytes); err != nil {
				t.Fatalf("public key does not parse: %v", err)
			}
			if strings.Contains(h.stdout.String(), "PRIVATE") {
				t.Error("keygen printed the private key")
			}
			if code := h.run("keygen", "--alg", alg, "--out", prefix); code != exitFault ||
				!strings.Contains(h.stderr.String(), "already exists") {
				t.Errorf("keygen over existing files = exit %d, stderr %q; want 1, already exists", code, h.stderr)
			}

			key := prefix + ".key.pem"
			base := []string{"--key", key, "--alg", alg, "--aud", "test-os"}
			reader := h.mint(append(base, "--sub", "alice", "--scopes", "agents:read")...)
			runner := h.mint(append(base, "--sub", "bob", "--scopes", "agents:web:run,teams:read")...)
			expired := h.mint(append(base, "--sub", "carol", "--scopes", "agents:read", "--ttl", "-1h")...)
			otherAud := h.mint("--key", key, "--alg", alg, "--aud", "other-os", "--sub", "dave", "--scopes", "agents:read")

			cfg := writeConfig(t, keyConfig(string(pub), alg))
			h.runChecks(cfg, []checkCase{
				{name: "reader lists agents", token: reader, method: "GET", path: "/agents?limit=5", wantCode: 0,
					want: []string{"decision: allow", "status:   200", "rule:     GET /agents", "matched:  agents:read (by agents:read)", "user:     alice", "upstream: x-agentos-user-id: alice"}},
				{name: "reader cannot run", token: reader, method: "POST", path: "/agents/web/runs", wantCode: 1,
					want: []string{"decision: deny", "status:   403", "detail:   Insufficient permissions. Required scope(s): agents:run", "missing:  agents:run"}},
				{name: "runner runs its agent", token: runner, method: "POST", path: "/agents/web/runs", wantCode: 0,
					want: []string{"decision: allow", "matched:  agents:run (by agents:web:run)"}},
				{name: "runner cannot run another", token: runner, method: "POST", path: "/agents/other/runs", wantCode: 1,
					want: []string{"status:   403"}},
				{name: "token from stdin", token: "-", stdin: reader + "\n", method: "GET", path: "/agents", wantCode: 0,
					want: []string{"decision: allow"}},
				{name: "no token", method: "GET", path: "/agents", wantCode: 1,
					want: []string{"status:   401", "detail:   Authorization header missing"}},
				{name: "expired", token: expired, method: "GET", path: "/agents", wantCode: 1,
					want: []string{"status:   401", "detail:   Token has expired"}},
				{name: "wrong audience", token: otherAud, method: "GET", path: "/agents", wantCode: 1,
					want: []string{"status:   401", "detail:   Invalid token audience"}},
				{name: "excluded route", method: "GET", path: "/health", wantCode: 0,
					want: []string{"decision: allow", "auth:     none"}},
				{name: "ambiguous path", token: reader, method: "GET", path: "/health/../agents", wantCode: 1,
					want: []string{"status:   400", "detail:   Malformed request path"}},
			})
		})
	}
}

func TestTokenCheckHS256(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "hs.secret")
	secret := "a-development-secret-of-32-bytes!"
	if err := os.WriteFile(secretFile, []byte("  "+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tok := h.mint("--key", secretFile, "--alg", "HS256", "--aud", "test-os", "--sub", "erin", "--scopes", "teams:read")
	wrong := filepath.Join(dir, "wrong.secret")
	if err := os.WriteFile(wrong, []byte("another-secret-entirely-32-bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	forged := h.mint("--key", wrong, "--alg", "HS256", "--aud", "test-os", "--sub", "erin", "--scopes", "teams:read")
	cfg := writeConfig(t, keyConfig(secret, "HS256"))
	h.runChecks(cfg, []checkCase{
		{name: "valid", token: tok, method: "GET", path: "/teams", wantCode: 0, want: []string{"decision: allow", "user:     erin"}},
		{name: "other secret", token: forged, method: "GET", path: "/teams", wantCode: 1, want: []string{"status:   401", "detail:   Invalid token: "}},
	})
}

func TestTokenKeyMismatch(t *testing.T) {
	h := newHarness(t)
	prefix := filepath.Join(t.TempDir(), "ec")
	if code := h.run("keygen", "--alg", "ES256", "--out", prefix); code != 0 {
		t.Fatalf("keygen = %d: %s", code, h.stderr)
	}
	tests := []struct {
		alg, want string
	}{
		{alg: "RS256", want: "a ECDSA key cannot sign RS256"},
		{alg: "ES384", want: "ES384 needs a P-384 key, this one is P-256"},
		{alg: "EdDSA", want: "a ECDSA key cannot sign EdDSA"},
	}
	for _, tc := range tests {
		args := []string{"token", "--key", prefix + ".key.pem", "--alg", tc.alg}
		if code := h.run(args...); code != exitUsage || !strings.Contains(h.stderr.String(), tc.want) {
			t.Errorf("%s = exit %d, stderr %q; want 2 and %q", call(args), code, h.stderr, tc.want)
		}
	}
	// A public key is not a signing key.
	args := []string{"token", "--key", prefix + ".pub.pem", "--alg", "ES256"}
	if code := h.run(args...); code != exitUsage || !strings.Contains(h.stderr.String(), `PEM block is "PUBLIC KEY"`) {
		t.Errorf("%s = exit %d, stderr %q", call(args), code, h.stderr)
	}
}

func TestValidate(t *testing.T) {
	h := newHarness(t)
	prefix := filepath.Join(t.TempDir(), "rs")
	if code := h.run("keygen", "--alg", "RS256", "--out", prefix); code != 0 {
		t.Fatalf("keygen = %d: %s", code, h.stderr)
	}
	pub, err := os.ReadFile(prefix + ".pub.pem")
	if err != nil {
		t.Fatal(err)
	}
	good := writeConfig(t, keyConfig(string(pub), "RS256"))
	bad := keyConfig(string(pub), "RS256")
	bad["unmapped_routes"] = "maybe"
	bad["bogus_field"] = 1
	withKey := keyConfig(string(pub), "RS256")
	withKey["security_key"] = "s3cr3t-static-key"
	weak := keyConfig(string(pub), "RS256")
	weak["authorization"] = false
	weak["excluded_routes"] = []string{"/*"}
	weakFile := writeConfig(t, weak)
	// docs/CONTRACT.md §9: an AgentOS that keeps its own middleware
	// filters listings itself; saying so silences the listing warning.
	verifies := keyConfig(string(pub), "RS256")
	verifies["upstream"] = map[string]any{"agentos_verifies": true}
	verifiesFile := writeConfig(t, verifies)

	tests := []struct {
		name       string
		env        map[string]string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr []string
		never      []string // must not appear anywhere
	}{
		{name: "good file", args: []string{"--config", good}, wantCode: 0, wantStdout: "configuration OK: " + good},
		{name: "file from AUTHZ_CONFIG", env: map[string]string{"AUTHZ_CONFIG": good}, wantCode: 0, wantStdout: "configuration OK"},
		{name: "environment only", env: map[string]string{"JWT_VERIFICATION_KEY": string(pub)}, wantCode: 0, wantStdout: "configuration OK"},
		{name: "every problem named", args: []string{"--config", writeConfig(t, bad)}, wantCode: 2,
			wantStderr: []string{"invalid configuration", "unmapped_routes", "bogus_field"}},
		{name: "no credential source", args: []string{"--config", writeConfig(t, map[string]any{"os_id": "x"})}, wantCode: 2,
			wantStderr: []string{"jwt", "no credential source"}},
		{name: "security key beside JWT", args: []string{"--config", writeConfig(t, withKey)}, wantCode: 2,
			wantStderr: []string{"security_key", "security_key_migration"}, never: []string{"s3cr3t-static-key"}},
		{name: "warnings printed", args: []string{"--config", weakFile}, wantCode: 0, wantStdout: "configuration OK",
			wantStderr: []string{"warning: authorization: false with a JWT source", `warning: excluded_routes[0]: "/*" matches routes`}},
		{name: "warnings refused with --strict", args: []string{"--strict", "--config", weakFile}, wantCode: 2,
			wantStderr: []string{"warning: authorization", "2 warning(s) and --strict"}},
		{name: "listing filter warned", args: []string{"--strict", "--config", good}, wantCode: 2,
			wantStderr: []string{"warning: upstream.listing_filter: upstream, but nothing makes AgentOS filter listings", "1 warning(s) and --strict"}},
		{name: "strict without warnings", args: []string{"--strict", "--config", verifiesFile}, wantCode: 0, wantStdout: "configuration OK"},
		{name: "missing file", args: []string{"--config", filepath.Join(t.TempDir(), "missing.yaml")}, wantCode: 2,
			wantStderr: []string{"missing.yaml"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			for k, v := range tc.env {
				h.env[k] = v
			}
			args := append([]string{"validate"}, tc.args...)
			if code := h.run(args...); code != tc.wantCode {
				t.Errorf("%s = exit %d, want %d\nstderr: %s", call(args), code, tc.wantCode, h.stderr)
			}
			if !strings.Contains(h.stdout.String(), tc.wantStdout) {
				t.Errorf("%s stdout = %q, want %q", call(args), h.stdout, tc.wantStdout)
			}
			for _, w := range tc.wantStderr {
				if !strings.Contains(h.stderr.String(), w) {
					t.Errorf("%s stderr = %q, want it to name %q", call(args), h.stderr, w)
				}
			}
			for _, n := range tc.never {
				if strings.Contains(h.stdout.String()+h.stderr.String(), n) {
					t.Errorf("%s printed the secret %q", call(args), n)
				}
			}
		})
	}
}
