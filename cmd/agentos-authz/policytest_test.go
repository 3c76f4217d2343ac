package main

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFile writes text to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const passingTests = `
config:
  os_id: test-os
  authorization: true
  jwt:
    verify_audience: true
    # A key the runner replaces with its ephemeral one.
    jwks_url: https://idp.example/jwks.json
cases:
  - name: reader lists agents
    request: {method: GET, path: /agents}
    claims: {sub: alice, scopes: ["agents:read"]}
    expect: {status: 200, upstream: {x-agentos-user-id: alice, x-agentos-auth: jwt, x-agentos-session-id: null}}
  - name: reader cannot run
    request: {method: POST, path: /agents/web/runs}
    claims: {sub: alice, scopes: ["agents:read"]}
    expect: {status: 403, detail: "Insufficient permissions. Required scope(s): agents:run"}
  - name: expired
    request: {path: /agents}
    claims: {sub: alice, scopes: ["agents:read"], exp: "-2h"}
    expect: {status: 401, detail: "Token has expired"}
  - name: raw credential
    request: {path: /agents}
    credential: garbage
    expect: {status: 401}
`

// failingTests expects the wrong thing in two of three cases.
const failingTests = `
config_file: cfg.yaml
cases:
  - name: custom route needs reports:read
    request: {method: GET, path: /reports/q3}
    claims: {sub: bob, scopes: ["agents:read"]}
    expect: {status: 200}
  - name: wrong upstream
    request: {path: /agents}
    claims: {sub: bob, scopes: ["agents:read"]}
    expect: {status: 200, upstream: {x-agentos-user-id: carol}}
  - name: passes
    request: {path: /health}
    expect: {status: 200}
`

const customConfig = `
authorization: true
scope_mappings:
  "GET /reports/*": [reports:read]
`

func TestPolicyTestRunner(t *testing.T) {
	dir := t.TempDir()
	pass := writeFile(t, dir, "pass.yaml", passingTests)
	writeFile(t, dir, "cfg.yaml", customConfig)
	fail := writeFile(t, dir, "fail.yaml", failingTests)

	h := newHarness(t)
	if code := h.run("test", pass); code != exitOK {
		t.Fatalf("test pass.yaml = %d, want 0\n%s%s", code, h.stdout, h.stderr)
	}
	if got := h.stdout.String(); got != "4 passed, 0 failed\n" {
		t.Errorf("test pass.yaml output = %q", got)
	}

	junit := filepath.Join(dir, "report.xml")
	if code := h.run("test", "--junit", junit, pass, fail); code != exitDenied {
		t.Fatalf("test pass.yaml fail.yaml = %d, want 1\n%s%s", code, h.stdout, h.stderr)
	}
	out := h.stdout.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || lines[2] != "5 passed, 2 failed" {
		t.Fatalf("output = %q, want two FAIL lines and the summary", out)
	}
	for _, want := range []string{
		`FAIL ` + fail + `: custom route needs reports:read: want status 200; got 403 "Insufficient permissions. Required scope(s): reports:read" (reason insufficient_scopes, step 5 (authorization), rule "GET /reports/*", required [reports:read], missing [reports:read])`,
		`FAIL ` + fail + `: wrong upstream: want upstream x-agentos-user-id: "carol" (got "bob"); got 200 (reason allowed, step 5 (authorization), rule "GET /agents", required [agents:read], matched [agents:read=agents:read])`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("output lacks the line\n%s\ngot:\n%s", want, out)
		}
	}

	// The JUnit report, parsed back.
	b, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var doc junitSuites
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("the JUnit report does not parse: %v\n%s", err, b)
	}
	if doc.Tests != 7 || doc.Failures != 2 || len(doc.Suites) != 2 {
		t.Fatalf("JUnit: %d tests, %d failures, %d suites; want 7, 2, 2\n%s", doc.Tests, doc.Failures, len(doc.Suites), b)
	}
	fs := doc.Suites[1]
	if fs.Name != fail || fs.Tests != 3 || fs.Failures != 2 || len(fs.Cases) != 3 {
		t.Errorf("JUnit suite = %+v", fs)
	}
	if fs.Cases[0].Failure == nil || !strings.Contains(fs.Cases[0].Failure.Message, "want status 200") ||
		!strings.Contains(fs.Cases[0].Failure.Text, "reports:read") || fs.Cases[2].Failure != nil {
		t.Errorf("JUnit cases = %+v", fs.Cases)
	}

	// --json
	if code := h.run("test", "--json", fail); code != exitDenied {
		t.Fatalf("test --json = %d\n%s", code, h.stderr)
	}
	var js struct {
		Passed, Failed int
		Results        []struct {
			Name     string
			Passed   bool
			Failures []string
			Decision struct {
				Status int    `json:"status"`
				Rule   string `json:"rule"`
				Step   string `json:"step"`
			}
		}
	}
	if err := json.Unmarshal([]byte(h.stdout.String()), &js); err != nil {
		t.Fatalf("--json output: %v\n%s", err, h.stdout)
	}
	if js.Passed != 1 || js.Failed != 2 || len(js.Results) != 3 || js.Results[0].Decision.Status != 403 ||
		js.Results[0].Decision.Rule != "GET /reports/*" || js.Results[0].Decision.Step != "STEP_AUTHORIZATION" || js.Results[2].Passed != true {
		t.Errorf("--json = %+v", js)
	}
}

func TestPolicyTestRunnerErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, text, want string
	}{
		{"no config", "cases: [{request: {path: /}, expect: {status: 200}}]", "no configuration"},
		{"both configs", "config: {}\nconfig_file: x.yaml\ncases: []", "alternatives"},
		{"unknown field", "config: {}\nbogus: 1\ncases: []", "bogus"},
		{"invalid configuration", "config: {unmapped_routes: maybe}\ncases: [{request: {path: /}, expect: {status: 200}}]", "unmapped_routes"},
		{"no cases", "config: {}\n", "no cases"},
		{"no expected status", "config: {}\ncases: [{request: {path: /}}]", "expect.status is required"},
		{"claims and credential", "config: {}\ncases: [{claims: {sub: a}, credential: x, expect: {status: 200}}]", "alternatives"},
		{"bad exp", "config: {}\ncases: [{claims: {exp: soon}, expect: {status: 200}}]", "duration"},
		{"claims without JWTs", "config: {security_key: k}\ncases: [{claims: {sub: a}, expect: {status: 200}}]", "verifies no JWTs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml", tc.text)
			h := newHarness(t)
			if code := h.run("test", p); code != exitUsage {
				t.Errorf("test = %d, want 2\n%s%s", code, h.stdout, h.stderr)
			}
			if !strings.Contains(h.stderr.String(), tc.want) {
				t.Errorf("stderr = %q, want it to name %q", h.stderr, tc.want)
			}
		})
	}
	h := newHarness(t)
	if code := h.run("test"); code != exitUsage || !strings.Contains(h.stderr.String(), "at least one test file") {
		t.Errorf("test without files = %d %s", code, h.stderr)
	}
}

// TestPolicyTestExamples runs the shipped examples: they must pass.
func TestPolicyTestExamples(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.policy-test.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example policy tests found (%v)", err)
	}
	h := newHarness(t)
	if code := h.run(append([]string{"test"}, files...)...); code != exitOK {
		t.Errorf("test examples = %d\n%s%s", code, h.stdout, h.stderr)
	}
}

func TestRoutes(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "cfg.yaml", `
authorization: true
scope_mappings:
  "DELETE /agents/*": [agent_os:admin]
  "GET /reports/*": [reports:read]
  "GET /agents/*/secret": [agents:admin_read]
interfaces:
  - type: a2a
  - type: slack
excluded_routes: [/health]
`)
	h := newHarness(t)
	if code := h.run("routes", "--config", cfg); code != exitOK {
		t.Fatalf("routes = %d\n%s", code, h.stderr)
	}
	out := h.stdout.String()
	lineOf := func(key string) string {
		for _, l := range strings.Split(out, "\n") {
			f := strings.Fields(l)
			if len(f) >= 3 && f[1]+" "+f[2] == key {
				return l
			}
		}
		t.Errorf("routes output has no line for %q:\n%s", key, out)
		return ""
	}
	for key, want := range map[string][]string{
		"GET /agents":                        {"default", "agents:read"},
		"DELETE /agents/*":                   {"custom", "agent_os:admin", "[OVERRIDES the default route]"},
		"GET /reports/*":                     {"custom", "reports:read"},
		"GET /agents/*/secret":               {"custom", "SHADOWED by GET /agents/*"},
		"POST /a2a/agents/*/v1/message:send": {"interface:a2a", "agents:run"},
	} {
		l := lineOf(key)
		for _, w := range want {
			if !strings.Contains(l, w) {
				t.Errorf("routes line for %q = %q, want %q", key, l, w)
			}
		}
	}
	if strings.Contains(lineOf("GET /reports/*"), "OVERRIDES") {
		t.Error("a new custom route marked as an override")
	}
	for _, want := range []string{"excluded routes (no credential needed): /health /slack/*", "authorization: on; unmapped_routes: allow; admin_scope: agent_os:admin", "(1 override, 1 shadowed)"} {
		if !strings.Contains(out, want) {
			t.Errorf("routes output lacks %q:\n%s", want, out)
		}
	}
	// The order is the match order: the default GET /agents/* before the
	// custom keys, which come last.
	if strings.Index(out, "GET /agents/* ") > strings.Index(out, "GET /agents/*/secret") {
		t.Error("routes not in match order")
	}

	if code := h.run("routes", "--config", cfg, "--json"); code != exitOK {
		t.Fatalf("routes --json = %d\n%s", code, h.stderr)
	}
	var js struct {
		Routes []struct {
			Key        string `json:"key"`
			Origin     string `json:"origin"`
			Overrides  bool   `json:"overrides"`
			Shadowed   bool   `json:"shadowed"`
			ShadowedBy string `json:"shadowedBy"`
		} `json:"routes"`
		ExcludedRoutes []string `json:"excludedRoutes"`
	}
	if err := json.Unmarshal([]byte(h.stdout.String()), &js); err != nil {
		t.Fatalf("routes --json: %v\n%s", err, h.stdout)
	}
	last := js.Routes[len(js.Routes)-1]
	if last.Key != "GET /agents/*/secret" || !last.Shadowed || last.ShadowedBy != "GET /agents/*" || last.Origin != "ORIGIN_CUSTOM" {
		t.Errorf("routes --json last route = %+v", last)
	}

	if code := h.run("routes", "--config", writeFile(t, dir, "bad.yaml", "unmapped_routes: maybe\n")); code != exitUsage || !strings.Contains(h.stderr.String(), "unmapped_routes") {
		t.Errorf("routes with a bad configuration = %d %s", code, h.stderr)
	}
}
