package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunUsage(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string // in stderr
	}{
		{name: "help", args: []string{"help"}, wantCode: 0},
		{name: "-h", args: []string{"-h"}, wantCode: 0},
		{name: "unknown command", args: []string{"bench"}, wantCode: 2, wantErr: `unknown command "bench"`},
		{name: "load without key", args: []string{"--target", "127.0.0.1:1"}, wantCode: 2, wantErr: "--key: required"},
		{name: "load bad mix", args: []string{"--key", "k", "--mix", "2"}, wantCode: 2, wantErr: "--mix 2"},
		{name: "load bad tokens", args: []string{"--key", "k", "--tokens", "0"}, wantCode: 2, wantErr: "--tokens 0"},
		{name: "load bad cpu", args: []string{"--key", "k", "--cpu", "100000"}, wantCode: 2, wantErr: "--cpu 100000"},
		{name: "load extra argument", args: []string{"load", "--key", "k", "extra"}, wantCode: 2, wantErr: `unexpected argument "extra"`},
		{name: "load missing key file", args: []string{"--key", "/nonexistent/k"}, wantCode: 2, wantErr: "--key /nonexistent/k"},
		{name: "noop bad flag", args: []string{"noop", "--bogus"}, wantCode: 2, wantErr: "flag provided but not defined: -bogus"},
		{name: "noop extra argument", args: []string{"noop", "x"}, wantCode: 2, wantErr: `unexpected argument "x"`},
		{name: "noop bad address", args: []string{"noop", "--addr", "256.0.0.1:0"}, wantCode: 1, wantErr: "no-op server"},
		{name: "compare bad scenario", args: []string{"compare", "--scenarios", "pooled-es256"}, wantCode: 2, wantErr: `unknown "pooled-es256"`},
		{name: "compare bad duration", args: []string{"compare", "--duration", "0s"}, wantCode: 2, wantErr: "--duration 0s"},
		{name: "compare missing binary", args: []string{"compare", "--bin", "/nonexistent/agentos-authz"}, wantCode: 1, wantErr: "not a file (run make build)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), tc.args, &stdout, &stderr)
			if code != tc.wantCode {
				t.Errorf("run(%q) = %d, want %d; stderr:\n%s", tc.args, code, tc.wantCode, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.wantErr) {
				t.Errorf("run(%q) stderr = %q, want it to contain %q", tc.args, stderr.String(), tc.wantErr)
			}
		})
	}
}

func TestLoadCommand(t *testing.T) {
	addr := startTestNoop(t)
	const secret = "cli-test-secret-cli-test-secret-0123"
	key := filepath.Join(t.TempDir(), "hs.key")
	if err := os.WriteFile(key, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"load", "--target", addr, "--key", key, "--tokens", "12", "--warmup", "50ms", "--duration", "200ms", "--concurrency", "4", "--conns", "1"}

	t.Run("json", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), append(base, "--json"), &stdout, &stderr); code != 0 {
			t.Fatalf("run = %d; stderr:\n%s", code, stderr.String())
		}
		var res struct {
			Workload string `json:"workload"`
			Result
		}
		if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
			t.Fatalf("--json output does not parse: %v\n%s", err, stdout.String())
		}
		checkCounts(t, &res.Result)
		if want := "HS256, pool of 12 tokens + 6% replayed invalid (expired, signature, algorithm)"; res.Workload != want || res.Target != addr {
			t.Errorf("workload %q target %q, want %q to %s", res.Workload, res.Target, want, addr)
		}
		if strings.Contains(stdout.String()+stderr.String(), secret) || strings.Contains(stdout.String(), "eyJ") {
			t.Error("output shows the secret or a token")
		}
	})
	t.Run("text", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), base, &stdout, &stderr); code != 0 {
			t.Fatalf("run = %d; stderr:\n%s", code, stderr.String())
		}
		for _, want := range []string{"workload   HS256, pool of 12 tokens", " rps\n", "p99.9 ", "allowed ", "client  "} {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("text output lacks %q:\n%s", want, stdout.String())
			}
		}
	})
}
