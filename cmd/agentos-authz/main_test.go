package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a serving
// command and the reads of the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness runs commands in process with captured streams, an environment
// of its own (never the test process's) and a fixed clock.
type harness struct {
	t      *testing.T
	env    map[string]string
	now    time.Time
	stdout *syncBuffer
	stderr *syncBuffer
}

func newHarness(t *testing.T) *harness {
	return &harness{t: t, env: map[string]string{}, now: time.Now().Truncate(time.Second)}
}

func (h *harness) sys(stdin string) sys {
	h.stdout, h.stderr = &syncBuffer{}, &syncBuffer{}
	env := h.env
	now := h.now
	return sys{
		stdin:  strings.NewReader(stdin),
		stdout: h.stdout,
		stderr: h.stderr,
		lookupEnv: func(k string) (string, bool) {
			v, ok := env[k]
			return v, ok
		},
		now: func() time.Time { return now },
	}
}

// run runs the command line args and returns its exit code; h.stdout and
// h.stderr hold its output.
func (h *harness) run(args ...string) int {
	return h.runIn(h.t.Context(), "", args...)
}

func (h *harness) runIn(ctx context.Context, stdin string, args ...string) int {
	h.t.Helper()
	return run(ctx, args, h.sys(stdin))
}

// call is "agentos-authz args...", for failure messages, with the value of
// --token shortened (a failure message is no place for a whole token).
func call(args []string) string {
	shown := make([]string, len(args))
	for i, a := range args {
		shown[i] = a
		if i > 0 && args[i-1] == "--token" && len(a) > 12 {
			shown[i] = a[:8] + "..."
		}
	}
	return "agentos-authz " + strings.Join(shown, " ")
}

func TestRunUsage(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr []string
	}{
		{name: "no command", args: nil, wantCode: 2, wantStderr: []string{"Usage: agentos-authz <command>", "validate"}},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: 2, wantStderr: []string{`unknown command "frobnicate"`, "Commands:"}},
		{name: "help", args: []string{"help"}, wantCode: 0, wantStdout: "Commands:"},
		{name: "serve -h", args: []string{"serve", "-h"}, wantCode: 0, wantStderr: []string{"Usage: agentos-authz serve", "-grpc-addr", "-drain-timeout"}},
		{name: "check -h", args: []string{"check", "-h"}, wantCode: 0, wantStderr: []string{"Usage: agentos-authz check", "-token"}},
		{name: "token -h", args: []string{"token", "-h"}, wantCode: 0, wantStderr: []string{"Usage: agentos-authz token", "-ttl"}},
		{name: "keygen -h", args: []string{"keygen", "-h"}, wantCode: 0, wantStderr: []string{"Usage: agentos-authz keygen", "-out"}},
		{name: "validate -h", args: []string{"validate", "-h"}, wantCode: 0, wantStderr: []string{"Usage: agentos-authz validate", "-config"}},
		{name: "test -h", args: []string{"test", "-h"}, wantCode: 0, wantStderr: []string{"Usage: agentos-authz test", "-junit", "-json"}},
		{name: "routes -h", args: []string{"routes", "-h"}, wantCode: 0, wantStderr: []string{"Usage: agentos-authz routes", "-config"}},
		{name: "test bad flag", args: []string{"test", "--bogus"}, wantCode: 2, wantStderr: []string{"-bogus"}},
		{name: "test missing file", args: []string{"test", filepath.Join(dir, "nope.yaml")}, wantCode: 2, wantStderr: []string{"nope.yaml"}},
		{name: "unknown flag", args: []string{"check", "--bogus"}, wantCode: 2, wantStderr: []string{"flag provided but not defined: -bogus", "Usage: agentos-authz check"}},
		{name: "stray argument", args: []string{"validate", "extra"}, wantCode: 2, wantStderr: []string{`unexpected argument "extra"`}},
		{name: "keygen without --out", args: []string{"keygen"}, wantCode: 2, wantStderr: []string{"--out is required"}},
		{name: "keygen HS256", args: []string{"keygen", "--alg", "HS256", "--out", filepath.Join(dir, "x")}, wantCode: 2, wantStderr: []string{"shared secret"}},
		{name: "keygen bad alg", args: []string{"keygen", "--alg", "RS257", "--out", filepath.Join(dir, "x")}, wantCode: 2, wantStderr: []string{`unsupported algorithm "RS257"`}},
		{name: "token without --key", args: []string{"token"}, wantCode: 2, wantStderr: []string{"--key is required"}},
		{name: "token alg none", args: []string{"token", "--key", "k", "--alg", "none"}, wantCode: 2, wantStderr: []string{`unsupported algorithm "none"`}},
		{name: "token missing key file", args: []string{"token", "--key", filepath.Join(dir, "nope.pem")}, wantCode: 2, wantStderr: []string{"--key:", "nope.pem"}},
		{name: "serve bad log level", args: []string{"serve", "--log-level", "loud"}, wantCode: 2, wantStderr: []string{"--log-level"}},
		{name: "serve --dev with --config", args: []string{"serve", "--dev", "--config", "x.yaml"}, wantCode: 2, wantStderr: []string{"drop --config"}},
		{name: "serve bad drain timeout", args: []string{"serve", "--drain-timeout", "0s"}, wantCode: 2, wantStderr: []string{"--drain-timeout must be positive"}},
		{name: "check config and server", args: []string{"check", "--config", "a", "--server", "b"}, wantCode: 2, wantStderr: []string{"alternatives"}},
		{name: "check bad header", args: []string{"check", "--header", "nocolon"}, wantCode: 2, wantStderr: []string{`"nocolon" is not "name: value"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if got := h.run(tc.args...); got != tc.wantCode {
				t.Errorf("%s = exit %d, want %d\nstderr: %s", call(tc.args), got, tc.wantCode, h.stderr)
			}
			if !strings.Contains(h.stdout.String(), tc.wantStdout) {
				t.Errorf("%s stdout = %q, want it to contain %q", call(tc.args), h.stdout, tc.wantStdout)
			}
			for _, want := range tc.wantStderr {
				if !strings.Contains(h.stderr.String(), want) {
					t.Errorf("%s stderr = %q, want it to contain %q", call(tc.args), h.stderr, want)
				}
			}
		})
	}
}

// writeConfig writes v (JSON, which is YAML) as a configuration file.
func writeConfig(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// keyConfig is a configuration verifying alg tokens with the public key
// (or HMAC secret) text key, audience checked against test-os.
func keyConfig(key, alg string) map[string]any {
	return map[string]any{
		"os_id":         "test-os",
		"authorization": true,
		"jwt": map[string]any{
			"verification_keys": []string{key},
			"algorithms":        []string{alg},
			"verify_audience":   true,
		},
	}
}
