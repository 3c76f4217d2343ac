package test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/agentos-authz/agentos-authz/internal/conformance"
	"github.com/agentos-authz/agentos-authz/internal/poll"
	"github.com/agentos-authz/agentos-authz/test/harness"
)

// Black-box checks of what docs/CONTRACT.md and the README promise beyond the
// conformance vectors: commands and exit codes, flag > environment > file,
// the environment variables, validate naming every problem, keygen and
// token against serve, the HTTP ext_authz mode (§6), the security key
// (§7) and draining readiness. Every test runs the real binary.

// cliResult is one finished run of the binary.
type cliResult struct {
	code           int
	stdout, stderr string
}

// runCLI runs the binary with args in dir, the suite's cleared
// environment plus env, and stdin; it fails the test if the process does
// not exit by itself.
func runCLI(t *testing.T, dir string, env map[string]string, stdin string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Dir = dir
	cmd.Env = harness.Environ(os.Environ(), withQuickExit(env))
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("agentos-authz %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("agentos-authz %s did not exit within the deadline", strings.Join(args, " "))
	}
	return cliResult{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errOut.String()}
}

// withQuickExit is env plus GORACE=atexit_sleep_ms=0: a -race binary
// otherwise sleeps a second before every successful exit.
func withQuickExit(env map[string]string) map[string]string {
	out := map[string]string{"GORACE": "atexit_sleep_ms=0"}
	maps.Copy(out, env)
	return out
}

// randomSecret is a fresh HMAC secret, distinctive enough to grep for.
func randomSecret(prefix string) string {
	var raw [24]byte
	_, _ = rand.Read(raw[:])
	return prefix + hex.EncodeToString(raw[:])
}

// writeFile writes text to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// hsConfig is a configuration verifying HS256 tokens with secret, with
// extra YAML lines appended at the top level.
func hsConfig(secret string, extra ...string) string {
	return fmt.Sprintf("jwt:\n  algorithms: [HS256]\n  verification_keys: [%q]\n", secret) + strings.Join(extra, "\n") + "\n"
}

// hsToken mints an HS256 token signed with secret carrying claims (exp
// "+1h" unless claims set one).
func hsToken(t *testing.T, secret string, claims map[string]any) string {
	t.Helper()
	if _, ok := claims["exp"]; !ok {
		claims["exp"] = "+1h"
	}
	raw, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := conformance.Minter{}.Mint(conformance.TokenSpec{Alg: "HS256", Secret: &secret, Claims: raw})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// noLeak fails when the process output holds any of secrets.
func noLeak(t *testing.T, what, output string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(output, s) {
			t.Errorf("%s holds a secret or token (%.12s...)", what, s)
		}
	}
}

// TestContractExitCodes: every command's exit status (docs/CONTRACT.md §2: check
// 0 allow / 1 deny; a configuration error 2 naming the field; validate 0
// or 2) and the usage errors.
func TestContractExitCodes(t *testing.T) {
	dir := t.TempDir()
	secret := randomSecret("ec-")
	good := writeFile(t, dir, "good.yaml", hsConfig(secret))
	bad := writeFile(t, dir, "bad.yaml", "os_id: x\nbogus_field: true\n")
	writeFile(t, dir, "hs.secret", secret+"\n")
	if r := runCLI(t, dir, nil, "", "keygen", "--alg", "ES256", "--out", "es"); r.code != 0 {
		t.Fatalf("keygen --alg ES256 = exit %d, want 0\n%s", r.code, r.stderr)
	}
	reader := hsToken(t, secret, map[string]any{"sub": "u", "scopes": []string{"agents:read"}})

	tests := []struct {
		name       string
		env        map[string]string
		stdin      string
		args       []string
		code       int
		stdout     []string
		stderr     []string
		notInStdio []string
	}{
		{name: "no command", args: nil, code: 2, stderr: []string{"Usage"}},
		{name: "help", args: []string{"help"}, code: 0, stdout: []string{"serve", "check", "token", "keygen", "validate"}},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, stderr: []string{`unknown command "frobnicate"`}},
		{name: "validate ok", args: []string{"validate", "--config", good}, code: 0, stdout: []string{"configuration OK"}},
		{name: "validate invalid", args: []string{"validate", "--config", bad}, code: 2, stderr: []string{"bogus_field"}},
		{name: "validate missing file", args: []string{"validate", "--config", filepath.Join(dir, "nope.yaml")}, code: 2, stderr: []string{"nope.yaml"}},
		{name: "validate stray argument", args: []string{"validate", "extra"}, code: 2, stderr: []string{`unexpected argument "extra"`}},
		{name: "validate no source at all", args: []string{"validate"}, code: 2, stderr: []string{"no credential source"}},
		{name: "check allow", args: []string{"check", "--config", good, "--token", reader, "--method", "GET", "--path", "/agents"}, code: 0,
			stdout: []string{"decision: allow"}, notInStdio: []string{reader}},
		{name: "check deny 403", args: []string{"check", "--config", good, "--token", reader, "--method", "POST", "--path", "/agents/web/runs"}, code: 1,
			stdout:     []string{"decision: deny", "status:   403", "Required scope(s): agents:run", "rule:     POST /agents/*/runs", "missing:  agents:run"},
			notInStdio: []string{reader}},
		{name: "check deny 401", args: []string{"check", "--config", good, "--path", "/agents"}, code: 1,
			stdout: []string{"status:   401", "Authorization header missing"}},
		{name: "check token from stdin", stdin: reader + "\n", args: []string{"check", "--config", good, "--token", "-", "--path", "/agents"}, code: 0,
			stdout: []string{"decision: allow"}, notInStdio: []string{reader}},
		{name: "check empty stdin", args: []string{"check", "--config", good, "--token", "-"}, code: 2, stderr: []string{"no token"}},
		{name: "check invalid config", args: []string{"check", "--config", bad, "--token", reader}, code: 2, stderr: []string{"bogus_field"}},
		{name: "check AUTHZ_CONFIG", env: map[string]string{"AUTHZ_CONFIG": good}, args: []string{"check", "--token", reader, "--path", "/agents"}, code: 0,
			stdout: []string{"decision: allow"}},
		{name: "check config and server", args: []string{"check", "--config", good, "--server", "127.0.0.1:1"}, code: 2, stderr: []string{"alternatives"}},
		{name: "check unknown flag", args: []string{"check", "--bogus"}, code: 2, stderr: []string{"bogus"}},
		{name: "token without key", args: []string{"token"}, code: 2, stderr: []string{"--key is required"}},
		{name: "token alg none", args: []string{"token", "--key", "hs.secret", "--alg", "none"}, code: 2, stderr: []string{`unsupported algorithm "none"`}},
		{name: "token key of another type", args: []string{"token", "--key", "es.key.pem", "--alg", "RS256"}, code: 2, stderr: []string{"cannot sign RS256"}},
		{name: "token public key", args: []string{"token", "--key", "es.pub.pem", "--alg", "ES256"}, code: 2, stderr: []string{"want a private key"}},
		{name: "token missing key file", args: []string{"token", "--key", "nope.pem", "--alg", "ES256"}, code: 2, stderr: []string{"nope.pem"}},
		{name: "keygen without out", args: []string{"keygen", "--alg", "ES256"}, code: 2, stderr: []string{"--out is required"}},
		{name: "keygen HMAC", args: []string{"keygen", "--alg", "HS256", "--out", "h"}, code: 2, stderr: []string{"shared secret"}},
		{name: "keygen unknown alg", args: []string{"keygen", "--alg", "ES999", "--out", "x"}, code: 2, stderr: []string{"ES999"}},
		{name: "keygen never overwrites", args: []string{"keygen", "--alg", "ES256", "--out", "es"}, code: 1, stderr: []string{"already exists"}},
		{name: "serve invalid config", args: []string{"serve", "--config", bad, "--grpc-addr", "127.0.0.1:0", "--http-addr", "off", "--admin-addr", "127.0.0.1:0"}, code: 2,
			stderr: []string{"bogus_field"}},
		{name: "serve unknown flag", args: []string{"serve", "--bogus"}, code: 2, stderr: []string{"bogus"}},
		{name: "serve bad drain timeout", args: []string{"serve", "--config", good, "--drain-timeout", "0s"}, code: 2, stderr: []string{"drain-timeout"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, dir, tc.env, tc.stdin, tc.args...)
			call := "agentos-authz " + strings.Join(tc.args, " ")
			if r.code != tc.code {
				t.Errorf("%.120s = exit %d, want %d\nstdout:\n%s\nstderr:\n%s", call, r.code, tc.code, r.stdout, r.stderr)
			}
			for _, s := range tc.stdout {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("%.120s: stdout lacks %q\n%s", call, s, r.stdout)
				}
			}
			for _, s := range tc.stderr {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("%.120s: stderr lacks %q\n%s", call, s, r.stderr)
				}
			}
			noLeak(t, "check's output", r.stdout+r.stderr, tc.notInStdio...)
		})
	}
	// The serve listener failing is exit 1 (a fault), not 2.
	t.Run("serve port taken", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		r := runCLI(t, dir, nil, "", "serve", "--config", good, "--grpc-addr", l.Addr().String(), "--http-addr", "off", "--admin-addr", "127.0.0.1:0")
		if r.code != 1 || !strings.Contains(r.stderr, "cannot listen") {
			t.Errorf("serve on a taken port = exit %d, want 1 and \"cannot listen\"\n%s", r.code, r.stderr)
		}
	})
}

// TestContractValidateNamesEveryProblem: one validate run names every
// problem of the file by its field (docs/CONTRACT.md §2, §4), HEAD keys in
// scope_mappings included (§5), and never prints a secret.
func TestContractValidateNamesEveryProblem(t *testing.T) {
	dir := t.TempDir()
	key := randomSecret("sk-")
	hmac := randomSecret("hs-")
	cfg := writeFile(t, dir, "bad.yaml", fmt.Sprintf(`os_id: x
bogus_field: 1
unmapped_routes: maybe
security_key: %q
jwt:
  algorithms: [HS256, RS257]
  verification_keys: [%q]
  leeway: tenseconds
  token_source: body
  jwks_file: %q
scope_mappings:
  "HEAD /x": []
  "GET /y": ["not a scope"]
  "get /z": []
cors_allowed_origins: ["https://a.example/"]
grpc_addr: "nocolon"
`, key, hmac, filepath.Join(dir, "missing-jwks.json")))
	r := runCLI(t, dir, nil, "", "validate", "--config", cfg)
	if r.code != 2 {
		t.Fatalf("validate = exit %d, want 2\n%s", r.code, r.stderr)
	}
	for _, field := range []string{
		"bogus_field:", "unmapped_routes:", "security_key:", "jwt.algorithms[1]:", "jwt.leeway:",
		"jwt.token_source:", "jwt.jwks_file:", `scope_mappings["HEAD /x"]:`, `scope_mappings["GET /y"][0]:`,
		`scope_mappings["get /z"]:`, "cors_allowed_origins[0]:", "grpc_addr:",
	} {
		if !strings.Contains(r.stderr, "  - "+field) {
			t.Errorf("validate does not name %s\n%s", field, r.stderr)
		}
	}
	if !strings.Contains(r.stderr, "(12 problems)") {
		t.Errorf("validate's count of problems, want 12\n%s", r.stderr)
	}
	// The security key beside a JWT source gives the migration steps.
	for _, step := range []string{"security_key_migration: true", "unset OS_SECURITY_KEY"} {
		if !strings.Contains(r.stderr, step) {
			t.Errorf("the security key problem lacks the migration step %q\n%s", step, r.stderr)
		}
	}
	noLeak(t, "validate's output", r.stdout+r.stderr, key, hmac)

	// The same file through serve: exit 2, the same problems but one: the
	// --grpc-addr flag replaces the file's bad grpc_addr (flags win).
	s := runCLI(t, dir, nil, "", "serve", "--config", cfg, "--grpc-addr", "127.0.0.1:0", "--http-addr", "off", "--admin-addr", "127.0.0.1:0")
	if s.code != 2 || !strings.Contains(s.stderr, "(11 problems)") || strings.Contains(s.stderr, "grpc_addr") {
		t.Errorf("serve --grpc-addr with the invalid file = exit %d, want 2 naming 11 problems, not grpc_addr\n%s", s.code, s.stderr)
	}
	noLeak(t, "serve's output", s.stdout+s.stderr, key, hmac)
}

// TestContractKeygenTokenServe: keygen writes PEM pairs (the private key
// 0600, never overwritten); token mints, for each algorithm, a token that
// validate's configuration accepts offline (check --config) and the
// running service accepts over gRPC (check --server); nothing secret
// reaches the service's log.
func TestContractKeygenTokenServe(t *testing.T) {
	dir := t.TempDir()
	secret := randomSecret("kt-")
	writeFile(t, dir, "hs.secret", secret+"\n")
	algs := []string{"RS256", "ES256", "EdDSA"}
	var keys strings.Builder
	for _, alg := range algs {
		r := runCLI(t, dir, nil, "", "keygen", "--alg", alg, "--out", alg)
		if r.code != 0 {
			t.Fatalf("keygen --alg %s = exit %d\n%s", alg, r.code, r.stderr)
		}
		priv, err := os.Stat(filepath.Join(dir, alg+".key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		if priv.Mode().Perm() != 0o600 {
			t.Errorf("keygen: %s.key.pem has mode %v, want 0600", alg, priv.Mode().Perm())
		}
		pub, err := os.ReadFile(filepath.Join(dir, alg+".pub.pem"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(pub, []byte("-----BEGIN PUBLIC KEY-----")) {
			t.Errorf("keygen: %s.pub.pem is not a PEM public key:\n%s", alg, pub)
		}
		keys.WriteString("    - |\n")
		for line := range strings.Lines(string(pub)) {
			keys.WriteString("      " + line)
		}
	}
	cfg := writeFile(t, dir, "config.yaml", fmt.Sprintf(
		"os_id: kt-os\njwt:\n  algorithms: [RS256, ES256, EdDSA, HS256]\n  verify_audience: true\n  verification_keys:\n%s    - %q\n",
		keys.String(), secret))
	if r := runCLI(t, dir, nil, "", "validate", "--config", cfg); r.code != 0 {
		t.Fatalf("validate = exit %d\n%s", r.code, r.stderr)
	}
	srv, err := harness.Start(t.Context(), harness.Options{Binary: binary(t), ConfigPath: cfg, Env: withQuickExit(nil)})
	if err != nil {
		t.Fatalf("the server did not start: %v", err)
	}
	t.Cleanup(srv.Kill)

	var minted []string
	for _, alg := range append(algs, "HS256") {
		t.Run(alg, func(t *testing.T) {
			keyFile := alg + ".key.pem"
			if alg == "HS256" {
				keyFile = "hs.secret"
			}
			mint := func(args ...string) string {
				t.Helper()
				r := runCLI(t, dir, nil, "", append([]string{"token", "--key", keyFile, "--alg", alg, "--aud", "kt-os"}, args...)...)
				if r.code != 0 {
					t.Fatalf("token --alg %s = exit %d\n%s", alg, r.code, r.stderr)
				}
				tok := strings.TrimSpace(r.stdout)
				minted = append(minted, tok)
				return tok
			}
			runner := mint("--sub", "ann", "--scopes", "agents:web:run", "--session-id", "s-1")
			expired := mint("--sub", "ann", "--scopes", "agents:web:run", "--ttl", "-1h")
			tests := []struct {
				name   string
				via    []string
				token  string
				method string
				path   string
				code   int
				want   []string
			}{
				{name: "offline allow", via: []string{"--config", cfg}, token: runner, method: "POST", path: "/agents/web/runs", code: 0,
					want: []string{"decision: allow", "matched:  agents:run (by agents:web:run)", "upstream: x-agentos-user-id: ann", "upstream: x-agentos-session-id: s-1"}},
				{name: "server allow", via: []string{"--server", srv.GRPCAddr}, token: runner, method: "POST", path: "/agents/web/runs", code: 0,
					want: []string{"decision: allow", "x-agentos-user-id: ann", "x-agentos-auth: jwt", "x-agentos-scopes: agents:web:run"}},
				{name: "server deny other agent", via: []string{"--server", srv.GRPCAddr}, token: runner, method: "POST", path: "/agents/api/runs", code: 1,
					want: []string{"status:   403", "Required scope(s): agents:run", "grpc:     PermissionDenied"}},
				{name: "server expired", via: []string{"--server", srv.GRPCAddr}, token: expired, method: "GET", path: "/agents", code: 1,
					want: []string{"status:   401", "Token has expired", "www-authenticate: Bearer"}},
			}
			for _, tc := range tests {
				args := append([]string{"check"}, tc.via...)
				args = append(args, "--token", tc.token, "--method", tc.method, "--path", tc.path)
				r := runCLI(t, dir, nil, "", args...)
				if r.code != tc.code {
					t.Errorf("%s: check %s %s = exit %d, want %d\n%s%s", tc.name, tc.method, tc.path, r.code, tc.code, r.stdout, r.stderr)
				}
				for _, w := range tc.want {
					if !strings.Contains(r.stdout, w) {
						t.Errorf("%s: check's output lacks %q\n%s", tc.name, w, r.stdout)
					}
				}
				noLeak(t, "check's output", r.stdout+r.stderr, tc.token)
			}
		})
	}
	if code, err := srv.Stop(harness.DefaultStopTimeout); err != nil || code != 0 {
		t.Errorf("after SIGTERM: exit %d, %v, want 0", code, err)
	}
	noLeak(t, "the service's log", srv.Output(), append(minted, secret)...)
	noPanics(t, srv)
}

// TestContractServeAddressPrecedence: a flag beats the file (docs/CONTRACT.md §2):
// --grpc-addr over grpc_addr, --http-addr off over http_addr, while the
// file's admin_addr (no flag) is used.
func TestContractServeAddressPrecedence(t *testing.T) {
	dir := t.TempDir()
	addrs, err := harness.FreeAddrs(4)
	if err != nil {
		t.Fatal(err)
	}
	fileGRPC, fileHTTP, fileAdmin, flagGRPC := addrs[0], addrs[1], addrs[2], addrs[3]
	cfg := writeFile(t, dir, "config.yaml", hsConfig(randomSecret("ap-"),
		fmt.Sprintf("grpc_addr: %q\nhttp_addr: %q\nadmin_addr: %q", fileGRPC, fileHTTP, fileAdmin)))
	out := &harness.LockedBuffer{}
	cmd := exec.Command(binary(t), "serve", "--config", cfg, "--grpc-addr", flagGRPC, "--http-addr", "off")
	cmd.Env = harness.Environ(os.Environ(), withQuickExit(nil))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("server output:\n%s", out.String())
		}
	})
	conn, err := harness.Dial(flagGRPC)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), harness.DefaultStartTimeout)
	err = harness.WaitServing(ctx, conn)
	cancel() // ends the health Watch, which would hold the drain
	_ = conn.Close()
	if err != nil {
		t.Fatalf("no SERVING on the --grpc-addr %s: %v", flagGRPC, err)
	}
	var listening map[string]any
	for line := range strings.Lines(out.String()) {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "listening" {
			listening = m
		}
	}
	want := map[string]string{"grpc_addr": flagGRPC, "http_addr": "off", "admin_addr": fileAdmin}
	for k, v := range want {
		if listening[k] != v {
			t.Errorf("listening %s = %v, want %s", k, listening[k], v)
		}
	}
	for _, a := range []string{fileGRPC, fileHTTP} {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			_ = c.Close()
			t.Errorf("%s (from the file, overridden by a flag) accepts connections", a)
		}
	}
	if got := httpStatus(t, "http://"+fileAdmin+"/readyz"); got != http.StatusOK {
		t.Errorf("GET /readyz on the file's admin_addr = %d, want 200", got)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		if code := cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("after SIGTERM: exit %d, want 0", code)
		}
	case <-time.After(harness.DefaultStopTimeout):
		t.Fatal("the server did not stop after SIGTERM")
	}
}

// httpStatus is the status of GET url, 0 when it does not answer.
func httpStatus(t *testing.T, url string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	_ = res.Body.Close()
	return res.StatusCode
}

// ecKeys makes an EC P-256 key pair named name in the harness's key
// format (NAME.key.pem PKCS#8, NAME.pub.pem SPKI), added to files.
func ecKeys(t *testing.T, files map[string][]byte, name string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	files[name+".key.pem"] = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	files[name+".pub.pem"] = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
}

// TestContractEnvironment: the environment over the file (docs/CONTRACT.md §2, §3)
// for AGENT_OS_ID, JWT_JWKS_FILE, AUTHZ_CONFIG (and --config over it) and
// JWT_JWKS_URL, an empty variable counting as unset.
func TestContractEnvironment(t *testing.T) {
	dir := t.TempDir()
	files := map[string][]byte{}
	ecKeys(t, files, "file")
	ecKeys(t, files, "env")
	keys := conformance.NewKeys(files)
	minter := conformance.Minter{Keys: keys}
	token := func(key, aud string) string {
		t.Helper()
		claims, _ := json.Marshal(map[string]any{"sub": "u", "aud": aud, "exp": "+1h", "scopes": []string{"agents:read"}})
		tok, err := minter.Mint(conformance.TokenSpec{Alg: "ES256", Key: key, Claims: claims,
			Header: map[string]json.RawMessage{"kid": json.RawMessage(`"` + key + `"`)}})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	jwks := func(name string) []byte {
		b, err := conformance.JWKS(keys, name, true)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	fileJWKS := writeFile(t, dir, "file-jwks.json", string(jwks("file")))
	envJWKS := writeFile(t, dir, "env-jwks.json", string(jwks("env")))
	cfg := writeFile(t, dir, "config.yaml", fmt.Sprintf(
		"os_id: file-os\njwt:\n  algorithms: [ES256]\n  verify_audience: true\n  jwks_file: %q\n", fileJWKS))
	bad := writeFile(t, dir, "bad.yaml", "bogus_field: 1\n")
	noSource := writeFile(t, dir, "nosource.yaml", "os_id: file-os\njwt:\n  algorithms: [ES256]\n  verify_audience: true\n")

	const audDetail = "Invalid token audience - token not valid for this AgentOS instance"
	tests := []struct {
		name   string
		env    map[string]string
		config string // --config, "" for none
		token  string
		code   int
		detail string
	}{
		{name: "file alone", config: cfg, token: token("file", "file-os"), code: 0},
		{name: "AGENT_OS_ID replaces os_id", config: cfg, env: map[string]string{"AGENT_OS_ID": "env-os"}, token: token("file", "env-os"), code: 0},
		{name: "AGENT_OS_ID: the file's os_id no longer accepted", config: cfg, env: map[string]string{"AGENT_OS_ID": "env-os"}, token: token("file", "file-os"), code: 1, detail: audDetail},
		{name: "empty AGENT_OS_ID is unset", config: cfg, env: map[string]string{"AGENT_OS_ID": ""}, token: token("file", "file-os"), code: 0},
		{name: "JWT_JWKS_FILE replaces jwks_file", config: cfg, env: map[string]string{"JWT_JWKS_FILE": envJWKS}, token: token("env", "file-os"), code: 0},
		{name: "JWT_JWKS_FILE: the file's JWKS no longer used", config: cfg, env: map[string]string{"JWT_JWKS_FILE": envJWKS}, token: token("file", "file-os"), code: 1, detail: "Invalid token: "},
		{name: "JWT_JWKS_FILE as the only source", config: noSource, env: map[string]string{"JWT_JWKS_FILE": envJWKS}, token: token("env", "file-os"), code: 0},
		{name: "AUTHZ_CONFIG without --config", env: map[string]string{"AUTHZ_CONFIG": cfg}, token: token("file", "file-os"), code: 0},
		{name: "--config over AUTHZ_CONFIG", config: cfg, env: map[string]string{"AUTHZ_CONFIG": bad}, token: token("file", "file-os"), code: 0},
		{name: "AUTHZ_CONFIG invalid", env: map[string]string{"AUTHZ_CONFIG": bad}, token: token("file", "file-os"), code: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"check", "--token", tc.token, "--path", "/agents"}
			vargs := []string{"validate"}
			if tc.config != "" {
				args = append(args, "--config", tc.config)
				vargs = append(vargs, "--config", tc.config)
			}
			r := runCLI(t, dir, tc.env, "", args...)
			if r.code != tc.code {
				t.Errorf("check GET /agents = exit %d, want %d\n%s%s", r.code, tc.code, r.stdout, r.stderr)
			}
			if tc.detail != "" && !strings.Contains(r.stdout, "detail:   "+tc.detail) {
				t.Errorf("check's detail, want %q\n%s", tc.detail, r.stdout)
			}
			wantValid := 0
			if tc.code == 2 {
				wantValid = 2
			}
			if v := runCLI(t, dir, tc.env, "", vargs...); v.code != wantValid {
				t.Errorf("validate = exit %d, want %d\n%s", v.code, wantValid, v.stderr)
			}
		})
	}

	// serve: AUTHZ_CONFIG names the file, JWT_JWKS_URL supplies the keys,
	// AGENT_OS_ID the audience.
	t.Run("serve", func(t *testing.T) {
		body := jwks("env")
		idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
		}))
		defer idp.Close()
		srv, err := harness.Start(t.Context(), harness.Options{Binary: binary(t), Env: withQuickExit(map[string]string{
			"AUTHZ_CONFIG": noSource, "JWT_JWKS_URL": idp.URL + "/jwks.json", "AGENT_OS_ID": "env-os",
		})})
		if err != nil {
			t.Fatalf("the server did not start: %v", err)
		}
		t.Cleanup(srv.Kill)
		for _, c := range []struct {
			tok  string
			want int
		}{
			{token("env", "env-os"), 200},
			{token("env", "file-os"), 401},
			{token("file", "env-os"), 401},
		} {
			b, err := harness.BuildRequest(conformance.Request{Method: "GET", Path: "/agents"}, map[string]string{"token": c.tok})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			resp, err := srv.Check(ctx, b.Check)
			cancel()
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if o := harness.Interpret(b, resp); o.Status != c.want || len(o.Problems) > 0 {
				t.Errorf("Check(GET /agents) = %s %v, want %d", o, o.Problems, c.want)
			}
		}
		if code, err := srv.Stop(harness.DefaultStopTimeout); err != nil || code != 0 {
			t.Errorf("after SIGTERM: exit %d, %v, want 0", code, err)
		}
		noPanics(t, srv)
	})
}

// httpReply is one answer of the HTTP ext_authz listener.
type httpReply struct {
	status int
	header http.Header
	detail string
}

// httpCheck sends method path with headers to the HTTP ext_authz listener
// at addr.
func httpCheck(t *testing.T, addr, method, path string, headers map[string]string) httpReply {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := httpReply{status: res.StatusCode, header: res.Header}
	if res.StatusCode != http.StatusOK && method != http.MethodHead {
		var d struct {
			Detail string `json:"detail"`
		}
		if err := json.Unmarshal(body, &d); err != nil {
			t.Errorf("%s %s = %d with a body that is not JSON: %q", method, path, res.StatusCode, body)
		}
		r.detail = d.Detail
		if ct := res.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s = %d with content-type %q, want application/json", method, path, res.StatusCode, ct)
		}
	}
	return r
}

// TestContractHTTPMode: the HTTP ext_authz listener (docs/CONTRACT.md §6) gives
// section 5's decisions: listing filters, HEAD as GET, forwarded claims,
// client x-agentos-* never trusted, nginx and Traefik headers, CORS on
// errors, excluded routes and preflights without identity, and a log
// without query strings, tokens or secrets.
func TestContractHTTPMode(t *testing.T) {
	dir := t.TempDir()
	secret := randomSecret("hm-")
	cfg := writeFile(t, dir, "config.yaml", hsConfig(secret,
		"  forward_claims: [email, org, groups, absent]",
		`cors_allowed_origins: ["https://app.example"]`,
		"scope_mappings:",
		`  "GET /public/stats": []`))
	srv, err := harness.Start(t.Context(), harness.Options{Binary: binary(t), ConfigPath: cfg, Env: withQuickExit(nil), Args: []string{"--http-addr", "127.0.0.1:0"}})
	if err != nil {
		t.Fatalf("the server did not start: %v", err)
	}
	t.Cleanup(srv.Kill)
	addr := listeningAddr(t, srv, "http_addr")

	lister := hsToken(t, secret, map[string]any{"sub": "lia", "scopes": []string{"agents:web:read", "agents:api:read", "teams:t1:read"}})
	claims := hsToken(t, secret, map[string]any{
		"sub": "cid", "session_id": "s-7", "scopes": "agents:read agents:web:run",
		"email": "c@x.io", "org": map[string]any{"id": 7}, "groups": []string{"a", "b"},
	})
	bearer := func(tok string) string { return "Bearer " + tok }
	const querySecret = "query-secret-4f1d"

	tests := []struct {
		name    string
		method  string
		path    string
		headers map[string]string
		status  int
		detail  string
		want    map[string]string // response headers; "" = absent
		remove  []string          // in x-envoy-auth-headers-to-remove
	}{
		{name: "filtered listing", method: "GET", path: "/agents", status: 200,
			headers: map[string]string{"Authorization": bearer(lister), "X-Agentos-Accessible-Ids": `["*"]`},
			want:    map[string]string{"X-Agentos-Accessible-Ids": `["web","api"]`, "X-Agentos-User-Id": "lia", "X-Agentos-Auth": "jwt", "X-Agentos-Session-Id": ""}},
		{name: "HEAD listing as GET", method: "HEAD", path: "/agents", status: 200,
			headers: map[string]string{"Authorization": bearer(lister)},
			want:    map[string]string{"X-Agentos-Accessible-Ids": `["web","api"]`}},
		{name: "nginx HEAD listing with a trailing slash", method: "GET", path: "/auth", status: 200,
			headers: map[string]string{"Authorization": bearer(lister), "X-Original-Method": "HEAD", "X-Original-Uri": "/teams/"},
			want:    map[string]string{"X-Agentos-Accessible-Ids": `["t1"]`}},
		{name: "listing without a scope of the family", method: "GET", path: "/workflows", status: 403,
			headers: map[string]string{"Authorization": bearer(lister)},
			detail:  "Insufficient permissions. Required scope(s): workflows:read"},
		{name: "forwarded claims, client values dropped", method: "GET", path: "/agents", status: 200,
			headers: map[string]string{
				"Authorization": bearer(claims), "X-Agentos-Claim-Email": "spoof", "X-Agentos-Claim-Other": "spoof",
				"X-Agentos-Session-Id": "spoof", "X-Agentos-Accessible-Ids": "[1]", "X-Agentos-User-Id": "spoof",
			},
			want: map[string]string{
				"X-Agentos-User-Id": "cid", "X-Agentos-Session-Id": "s-7", "X-Agentos-Scopes": "agents:read agents:web:run",
				"X-Agentos-Claim-Email": "c@x.io", "X-Agentos-Claim-Org": `{"id":7}`, "X-Agentos-Claim-Groups": `["a","b"]`,
				"X-Agentos-Claim-Absent": "", "X-Agentos-Accessible-Ids": "", "X-Agentos-Claim-Other": "",
			},
			remove: []string{"x-agentos-accessible-ids", "x-agentos-claim-other"}},
		{name: "nginx auth_request allow", method: "GET", path: "/auth", status: 200,
			headers: map[string]string{"Authorization": bearer(claims), "X-Original-Method": "POST", "X-Original-Uri": "/agents/web/runs?token=" + querySecret},
			want:    map[string]string{"X-Agentos-User-Id": "cid"}},
		{name: "nginx auth_request deny", method: "GET", path: "/auth", status: 403,
			headers: map[string]string{"Authorization": bearer(claims), "X-Original-Method": "POST", "X-Original-Uri": "/agents/api/runs"},
			detail:  "Insufficient permissions. Required scope(s): agents:run"},
		{name: "nginx ambiguous path", method: "GET", path: "/auth", status: 400,
			headers: map[string]string{"Authorization": bearer(claims), "X-Original-Uri": "/agents/%2e%2e/config"},
			detail:  "Malformed request path"},
		{name: "Traefik deny with CORS", method: "GET", path: "/", status: 403,
			headers: map[string]string{"Authorization": bearer(claims), "X-Forwarded-Method": "POST", "X-Forwarded-Uri": "/teams/t1/runs", "Origin": "https://app.example"},
			detail:  "Insufficient permissions. Required scope(s): teams:run",
			want: map[string]string{
				"Access-Control-Allow-Origin": "https://app.example", "Access-Control-Allow-Credentials": "true",
				"Access-Control-Allow-Methods": "*", "Access-Control-Allow-Headers": "*", "Access-Control-Expose-Headers": "*",
			}},
		{name: "Traefik 401, origin not allowed", method: "GET", path: "/", status: 401,
			headers: map[string]string{"X-Forwarded-Method": "POST", "X-Forwarded-Uri": "/teams/t1/runs", "Origin": "https://evil.example"},
			detail:  "Authorization header missing",
			want:    map[string]string{"Www-Authenticate": "Bearer", "Access-Control-Allow-Origin": ""}},
		{name: "preflight carries no identity", method: "OPTIONS", path: "/agents/web/runs", status: 200,
			headers: map[string]string{"Authorization": bearer(claims), "X-Agentos-User-Id": "spoof"},
			want:    map[string]string{"X-Agentos-Auth": "none", "X-Agentos-User-Id": "", "X-Agentos-Scopes": ""}},
		{name: "excluded route with a token", method: "GET", path: "/health/", status: 200,
			headers: map[string]string{"Authorization": bearer(claims)},
			want:    map[string]string{"X-Agentos-Auth": "none", "X-Agentos-User-Id": ""}},
		{name: "empty mapping still needs a credential", method: "GET", path: "/public/stats", status: 401,
			detail: "Authorization header missing"},
		{name: "bare token", method: "GET", path: "/public/stats", status: 200,
			headers: map[string]string{"Authorization": lister},
			want:    map[string]string{"X-Agentos-User-Id": "lia"}},
		{name: "expired", method: "GET", path: "/agents", status: 401,
			headers: map[string]string{"Authorization": bearer(hsToken(t, secret, map[string]any{"sub": "x", "exp": "-1h"}))},
			detail:  "Token has expired"},
		{name: "reserved subject", method: "GET", path: "/agents", status: 401,
			headers: map[string]string{"Authorization": bearer(hsToken(t, secret, map[string]any{"sub": "sa:robot", "scopes": []string{"agents:read"}}))},
			detail:  "Invalid token subject"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httpCheck(t, addr, tc.method, tc.path, tc.headers)
			call := fmt.Sprintf("%s %s", tc.method, tc.path)
			if r.status != tc.status {
				t.Fatalf("%s = %d %q, want %d", call, r.status, r.detail, tc.status)
			}
			if r.detail != tc.detail {
				t.Errorf("%s detail = %q, want %q", call, r.detail, tc.detail)
			}
			for k, v := range tc.want {
				got := r.header.Values(k)
				switch {
				case v == "" && len(got) > 0:
					t.Errorf("%s: %s = %q, want it absent", call, k, got)
				case v != "" && (len(got) != 1 || got[0] != v):
					t.Errorf("%s: %s = %q, want %q", call, k, got, v)
				}
			}
			removed := strings.Split(r.header.Get("X-Envoy-Auth-Headers-To-Remove"), ",")
			for _, h := range tc.remove {
				if !slices.Contains(removed, h) {
					t.Errorf("%s: x-envoy-auth-headers-to-remove = %q, want it to hold %s", call, removed, h)
				}
			}
		})
	}
	if code, err := srv.Stop(harness.DefaultStopTimeout); err != nil || code != 0 {
		t.Errorf("after SIGTERM: exit %d, %v, want 0", code, err)
	}
	out := srv.Output()
	noLeak(t, "the service's log", out, secret, lister, claims, querySecret)
	if !strings.Contains(out, `"path":"/agents/api/runs"`) {
		t.Errorf("no denial log line with the checked path /agents/api/runs\n%s", srv.Tail(30))
	}
	noPanics(t, srv)
}

// TestContractSecurityKey: docs/CONTRACT.md §7 over the HTTP mode: the key alone
// (Bearer or bare) passes as the admin principal; wrong and missing keys
// get their messages; each use is logged as deprecated and counted in
// /metrics; the key is never logged. Migration accepts both credentials,
// with the JWT messages for anything else.
func TestContractSecurityKey(t *testing.T) {
	dir := t.TempDir()
	key := randomSecret("sk-")
	plain := writeFile(t, dir, "plain.yaml", "os_id: sk-os\n")
	srv, err := harness.Start(t.Context(), harness.Options{Binary: binary(t), ConfigPath: plain,
		Env: withQuickExit(map[string]string{"OS_SECURITY_KEY": key}), Args: []string{"--http-addr", "127.0.0.1:0"}})
	if err != nil {
		t.Fatalf("the server did not start: %v", err)
	}
	t.Cleanup(srv.Kill)
	addr := listeningAddr(t, srv, "http_addr")
	tests := []struct {
		name   string
		auth   string
		path   string
		status int
		detail string
	}{
		{name: "bearer key", auth: "Bearer " + key, path: "/config", status: 200},
		{name: "bare key", auth: key, path: "/agents/x/runs", status: 200},
		{name: "wrong key", auth: "Bearer " + key + "x", path: "/agents", status: 401, detail: "Invalid authentication token"},
		{name: "no key", path: "/agents", status: 401, detail: "Authorization header required"},
	}
	for _, tc := range tests {
		h := map[string]string{"X-Agentos-User-Id": "spoof"}
		if tc.auth != "" {
			h["Authorization"] = tc.auth
		}
		r := httpCheck(t, addr, "POST", tc.path, h)
		if r.status != tc.status || r.detail != tc.detail {
			t.Errorf("%s: POST %s = %d %q, want %d %q", tc.name, tc.path, r.status, r.detail, tc.status, tc.detail)
		}
		if r.status == 200 {
			for k, v := range map[string]string{"X-Agentos-Auth": "security-key", "X-Agentos-Scopes": "agent_os:admin", "X-Agentos-User-Id": ""} {
				if got := r.header.Get(k); got != v {
					t.Errorf("%s: %s = %q, want %q", tc.name, k, got, v)
				}
			}
		}
	}
	// The metric and the deprecated-key log line, one per use.
	fams := scrape(t, srv)
	if v, ok := value(fams, "agentos_authz_security_key_uses_total", nil); !ok || v != 2 {
		t.Errorf("agentos_authz_security_key_uses_total = %v (present %v), want 2", v, ok)
	}
	if code, err := srv.Stop(harness.DefaultStopTimeout); err != nil || code != 0 {
		t.Errorf("after SIGTERM: exit %d, %v, want 0", code, err)
	}
	deprecated := 0
	for line := range strings.Lines(srv.Output()) {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["level"] == "warn" && strings.Contains(fmt.Sprint(m["msg"]), "deprecated security key") {
			deprecated++
		}
	}
	if deprecated != 2 {
		t.Errorf("%d deprecated-key log lines, want 2 (one per use)\n%s", deprecated, srv.Tail(20))
	}
	noLeak(t, "the service's log", srv.Output(), key)

	t.Run("migration", func(t *testing.T) {
		hmac := randomSecret("mg-")
		cfg := writeFile(t, dir, "migration.yaml", hsConfig(hmac, "security_key_migration: true"))
		srv, err := harness.Start(t.Context(), harness.Options{Binary: binary(t), ConfigPath: cfg,
			Env: withQuickExit(map[string]string{"OS_SECURITY_KEY": key}), Args: []string{"--http-addr", "127.0.0.1:0"}})
		if err != nil {
			t.Fatalf("the server did not start: %v", err)
		}
		t.Cleanup(srv.Kill)
		addr := listeningAddr(t, srv, "http_addr")
		reader := hsToken(t, hmac, map[string]any{"sub": "mia", "scopes": []string{"agents:read"}})
		for _, c := range []struct {
			auth, detail, via string
			status            int
		}{
			{auth: "Bearer " + key, status: 200, via: "security-key"},
			{auth: "Bearer " + reader, status: 200, via: "jwt"},
			{auth: "Bearer not-the-key", status: 401, detail: "Invalid token: "},
			{auth: "", status: 401, detail: "Authorization header missing"},
		} {
			h := map[string]string{}
			if c.auth != "" {
				h["Authorization"] = c.auth
			}
			r := httpCheck(t, addr, "GET", "/agents", h)
			if r.status != c.status || !strings.HasPrefix(r.detail, c.detail) || (c.detail == "" && r.detail != "") {
				t.Errorf("GET /agents with %.20q = %d %q, want %d %q", c.auth, r.status, r.detail, c.status, c.detail)
			}
			if c.via != "" && r.header.Get("X-Agentos-Auth") != c.via {
				t.Errorf("x-agentos-auth = %q, want %q", r.header.Get("X-Agentos-Auth"), c.via)
			}
		}
		if code, err := srv.Stop(harness.DefaultStopTimeout); err != nil || code != 0 {
			t.Errorf("after SIGTERM: exit %d, %v, want 0", code, err)
		}
		noLeak(t, "the service's log", srv.Output(), key, hmac, reader)
	})
}

// TestContractDrainReadiness: health answers for both service names; on
// SIGTERM, /readyz turns 503 while a check is still in flight, that check
// is answered, and the process exits 0 (docs/CONTRACT.md §2; README "Operating").
func TestContractDrainReadiness(t *testing.T) {
	h := startHS256(t)
	srv := h.srv
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	hc := healthpb.NewHealthClient(srv.Conn())
	for _, name := range []string{"", "envoy.service.auth.v3.Authorization"} {
		res, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: name})
		if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health Check(%q) = %v, %v, want SERVING", name, res.GetStatus(), err)
		}
	}
	if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "no.such.Service"}); status.Code(err) != codes.NotFound {
		t.Errorf("health Check(no.such.Service) = %v, want NotFound", err)
	}
	readyz := "http://" + srv.AdminAddr + "/readyz"
	if got := httpStatus(t, readyz); got != http.StatusOK {
		t.Fatalf("GET /readyz before SIGTERM = %d, want 200", got)
	}

	// A Check whose headers the server has received but whose message is
	// held back: in flight across SIGTERM (the health Check on the same
	// connection is the barrier).
	st, err := srv.Conn().NewStream(ctx, &grpc.StreamDesc{StreamName: "Check", ClientStreams: true}, "/envoy.service.auth.v3.Authorization/Check")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	poll.For(t, "/readyz 503 while draining", func() bool { return httpStatus(t, readyz) == http.StatusServiceUnavailable })
	b := h.request(t, "/agents", tokenSpec("drainer", "agents:read"))
	var resp authv3.CheckResponse
	err = st.SendMsg(b.Check)
	if err == nil {
		err = st.CloseSend()
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = st.RecvMsg(&resp)
	}
	if err != nil {
		t.Fatalf("the in-flight Check = %v, want an answer", err)
	}
	if o := harness.Interpret(b, &resp); !o.Allowed || len(o.Problems) > 0 {
		t.Errorf("the in-flight Check = %s %v, want 200", o, o.Problems)
	}
	if code, err := srv.Wait(harness.DefaultStopTimeout); err != nil || code != 0 {
		t.Errorf("after SIGTERM: exit %d, %v, want 0", code, err)
	}
	noPanics(t, srv)
}
