package main

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestServiceConfig(t *testing.T) {
	dir := t.TempDir()
	keys, path, err := writeServiceConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("config mode %v, want 0600 (it holds a secret)", st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		OSID string `yaml:"os_id"`
		JWT  struct {
			VerifyAudience   bool     `yaml:"verify_audience"`
			Algorithms       []string `yaml:"algorithms"`
			VerificationKeys []string `yaml:"verification_keys"`
		} `yaml:"jwt"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("generated config is not the YAML we meant: %v", err)
	}
	if cfg.OSID != benchOSID || strings.Join(cfg.JWT.Algorithms, ",") != "HS256,RS256" || !cfg.JWT.VerifyAudience {
		t.Errorf("os_id %q algorithms %q verify_audience %v; want %s, HS256 and RS256, true (the wrong-audience tokens are refused)",
			cfg.OSID, cfg.JWT.Algorithms, cfg.JWT.VerifyAudience, benchOSID)
	}
	if len(cfg.JWT.VerificationKeys) != 2 {
		t.Fatalf("%d verification keys, want 2", len(cfg.JWT.VerificationKeys))
	}
	if cfg.JWT.VerificationKeys[0] != string(keys.hmac) || len(keys.hmac) != 64 {
		t.Error("verification_keys[0] is not the 64-character HMAC secret the load signs with")
	}
	block, _ := pem.Decode([]byte(cfg.JWT.VerificationKeys[1]))
	if block == nil {
		t.Fatal("verification_keys[1] is not PEM")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !keys.rsa.PublicKey.Equal(pub) {
		t.Error("verification_keys[1] is not the public half of the RS256 signing key")
	}
}

func TestBudgetChecks(t *testing.T) {
	res := func(rps, p99, cpu float64) *Result {
		return &Result{RPS: rps, Latency: Latency{P99: p99}, ServerCPU: cpu}
	}
	tests := []struct {
		name      string
		svc, noop *Result
		want      map[string]bool // metric -> pass
	}{
		{name: "all pass", svc: res(90, 190, 12), noop: res(100, 100, 10), want: map[string]bool{"rps": true, "p99": true, "server CPU per check": true}},
		{name: "on the limits", svc: res(85, 200, 12.5), noop: res(100, 100, 10), want: map[string]bool{"rps": true, "p99": true, "server CPU per check": true}},
		{name: "all miss", svc: res(84, 201, 12.6), noop: res(100, 100, 10), want: map[string]bool{"rps": false, "p99": false, "server CPU per check": false}},
		{name: "no CPU figure", svc: res(90, 100, 0), noop: res(100, 100, 0), want: map[string]bool{"rps": true, "p99": true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := make(map[string]bool)
			for _, c := range budgetChecks(tc.svc, tc.noop) {
				got[c.Metric] = c.Pass
			}
			if len(got) != len(tc.want) {
				t.Fatalf("budgetChecks = %v, want %v", got, tc.want)
			}
			for m, pass := range tc.want {
				if got[m] != pass {
					t.Errorf("budgetChecks %s pass = %v, want %v", m, got[m], pass)
				}
			}
		})
	}
}

func TestJudgeAndPrint(t *testing.T) {
	good := &Result{Requests: 100, Allowed: 80, Denied: 20, DeniedByStatus: map[string]int64{"403": 20}, RPS: 1000, Latency: Latency{P99: 100}, ServerCPU: 10, LoadUtil: 0.5}
	noop := &Result{Requests: 120, Allowed: 120, Unexpected: 24, RPS: 1200, Latency: Latency{P99: 80}, ServerCPU: 9, LoadUtil: 0.97}
	busy := &Result{Requests: 120, Allowed: 120, Unexpected: 24, RPS: 1200, Latency: Latency{P99: 80}, ServerCPU: 9, OtherOnServerCore: 0.3}
	bad := &Result{Requests: 100, Allowed: 0, Denied: 90, Errors: 10, DeniedByStatus: map[string]int64{"401": 90}, Unexpected: 90, FirstError: "Unavailable: gone"}
	rep := &compareReport{
		Service: serverInfo{Bin: "bin/agentos-authz", PID: 10}, Noop: serverInfo{PID: 11},
		Pinning: "servers on CPU 0 (taskset), load on CPU 1", Concurrency: 64, Conns: 2, Warmup: 2, Duration: 10, Mix: 0.8,
		Scenarios: []scenarioReport{
			{Name: "pooled-hs256", Workload: "HS256, pool of 1000 tokens", Service: good, Noop: noop, Checks: budgetChecks(good, noop)},
			{Name: "pooled-rs256", Workload: "RS256, pool of 1000 tokens", Service: bad, Noop: busy},
		},
		BareVerify: 30, FreshExtra: 36, FreshOverNoop: 50,
		FreshCheck: &check{Metric: "(fresh - no-op) server CPU / bare verify", Ratio: 1.2, Target: "<= 1.10"},
		ServiceRSS: 20 << 20, ServicePeakRSS: 24 << 20, DistinctTokens: 2000,
	}
	judge(rep)
	if len(rep.Problems) != 2 {
		t.Errorf("judge found %d problems, want 2 (errors and wrong outcomes of the RS256 run): %q", len(rep.Problems), rep.Problems)
	}
	if len(rep.Notes) != 2 || !strings.Contains(rep.Notes[0], "0.97 cores") ||
		!strings.Contains(rep.Notes[1], "pooled-rs256 against the no-op server: other work kept the servers' CPU busy 30%") {
		t.Errorf("judge notes = %q, want the saturated load generator and the busy server CPU", rep.Notes)
	}
	var out bytes.Buffer
	printCompare(&out, rep)
	for _, want := range []string{
		"pooled-hs256", "1000", "1200", "0.833", ">= 0.85", "MISS", // rps 1000/1200
		"1.250", "<= 2.00", "pass", // p99 100/80
		"1.111", "<= 1.25", // CPU 10/9
		"allowed 80   denied 20 (403: 20)",
		"36.00 µs more than pooled RS256, 50.00 µs more than the no-op server; one bare RS256 verification: 30.00 µs",
		"fresh RS256 budget: (fresh - no-op) server CPU / bare verify = 1.200 (target <= 1.10) MISS",
		"service RSS after the runs: 20.0 MiB (peak 24.0 MiB), 2000 distinct tokens",
		"PROBLEM: pooled-rs256, service: 10 calls failed (first: Unavailable: gone)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("printCompare output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestFreshBudget(t *testing.T) {
	keys := testKeys(t)
	cpu := func(c float64) *Result { return &Result{ServerCPU: c} }
	rep := &compareReport{Scenarios: []scenarioReport{
		{Name: "pooled-hs256", Service: cpu(40), Noop: cpu(30)},
		{Name: "pooled-rs256", Service: cpu(41), Noop: cpu(30)},
		{Name: "fresh-rs256", Service: cpu(91), Noop: cpu(31)},
	}}
	if err := freshBudget(rep, keys); err != nil {
		t.Fatal(err)
	}
	if rep.BareVerify <= 0 || rep.FreshExtra != 50 || rep.FreshOverNoop != 60 {
		t.Errorf("bare %v µs, fresh-pooled %v, fresh-noop %v; want > 0, 50, 60", rep.BareVerify, rep.FreshExtra, rep.FreshOverNoop)
	}
	c := rep.FreshCheck
	if c == nil || c.Ratio != 60/rep.BareVerify || c.Pass != (c.Ratio <= targetFresh) {
		t.Errorf("fresh check = %+v, want ratio 60/%v", c, rep.BareVerify)
	}

	none := &compareReport{Scenarios: rep.Scenarios[:2]}
	if err := freshBudget(none, keys); err != nil || none.FreshCheck != nil || none.BareVerify != 0 {
		t.Errorf("without a fresh scenario: check %+v, bare %v, err %v; want none", none.FreshCheck, none.BareVerify, err)
	}
}

// TestCompareSmoke runs a short comparison against the real service
// binary, built from this module.
func TestCompareSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries and starts servers")
	}
	dir := t.TempDir()
	svc := filepath.Join(dir, "agentos-authz")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", svc, "./cmd/agentos-authz")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building agentos-authz: %v\n%s", err, out)
	}
	bench := filepath.Join(dir, "authz-bench")
	build = exec.CommandContext(t.Context(), "go", "build", "-o", bench, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building authz-bench: %v\n%s", err, out)
	}
	cmd := exec.CommandContext(t.Context(), bench, "compare", "--bin", svc, "--json",
		"--warmup", "100ms", "--duration", "300ms", "--tokens", "30", "--fresh-pool", "150",
		"--concurrency", "8", "--conns", "1", "--start-timeout", "30s")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("compare: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	var rep compareReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("compare --json output does not parse: %v\n%s", err, stdout.String())
	}
	if len(rep.Scenarios) != 3 {
		t.Fatalf("%d scenarios, want 3", len(rep.Scenarios))
	}
	for _, s := range rep.Scenarios {
		checkCounts(t, s.Service)
		checkCounts(t, s.Noop)
		by := s.Service.DeniedByStatus
		if s.Service.Errors != 0 || s.Service.Unexpected != 0 || by["403"] == 0 || by["401"]+by["403"] != s.Service.Denied || (by["401"] == 0) != s.Service.Fresh {
			t.Errorf("%s, service: %s; want allowed, 403-denied and (pooled) 401-denied requests as the tokens say", s.Name, outcomeLine(s.Service))
		}
		if s.Noop.Allowed != s.Noop.Requests {
			t.Errorf("%s, no-op: %s; want everything allowed", s.Name, outcomeLine(s.Noop))
		}
		if s.Service.ServerPID != rep.Service.PID || s.Noop.ServerPID != rep.Noop.PID || rep.Service.PID == rep.Noop.PID {
			t.Errorf("%s: server pids %d/%d, want the service's %d and the no-op's %d", s.Name, s.Service.ServerPID, s.Noop.ServerPID, rep.Service.PID, rep.Noop.PID)
		}
		if wantChecks := map[bool]int{false: 3, true: 0}[s.Service.Fresh]; len(s.Checks) != wantChecks {
			t.Errorf("%s: %d budget checks, want %d", s.Name, len(s.Checks), wantChecks)
		}
	}
	if rep.ServiceRSS == 0 || rep.DistinctTokens != 30+30+150 {
		t.Errorf("service RSS %d, distinct tokens %d; want RSS > 0 and 210 tokens", rep.ServiceRSS, rep.DistinctTokens)
	}
	if rep.FreshCheck == nil || rep.BareVerify <= 0 {
		t.Errorf("fresh check %v, bare verify %v µs; want both", rep.FreshCheck, rep.BareVerify)
	}
	if len(rep.Problems) != 0 {
		t.Errorf("problems: %q", rep.Problems)
	}
}
