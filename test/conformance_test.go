package test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentos-authz/agentos-authz/internal/conformance"
	"github.com/agentos-authz/agentos-authz/test/harness"
)

// maxProcesses bounds the servers running at once (make test runs on two
// cores; -parallel bounds the groups too).
const maxProcesses = 4

// checkTimeout bounds one Check RPC.
const checkTimeout = 15 * time.Second

// TestConformance runs every vector of the vendored conformance set
// (test/testdata/conformance, or $AGENTOS_CONFORMANCE_DIR) against the real
// binary: one server per configuration group, one subtest per vector, named
// by the vector. It prints "conformance: N vectors, N passed, N failed" at
// the end.
func TestConformance(t *testing.T) {
	_, files, keys, err := conformance.Load()
	if err != nil {
		t.Fatal(err)
	}
	bin := binary(t)

	var tally tally
	t.Cleanup(func() {
		fmt.Println(tally.summary()) // stdout: visible without -v
		fmt.Println(explainSummary())
	})
	slots := make(chan struct{}, maxProcesses)
	for _, f := range files {
		groups, err := f.Groups()
		if err != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
		t.Run(f.Name, func(t *testing.T) {
			t.Parallel()
			for i, g := range groups {
				r := groupRun{file: f, index: i, group: g, keys: keys, bin: bin, tally: &tally}
				func() {
					slots <- struct{}{}
					defer func() { <-slots }() // also when r.run ends the test
					r.run(t)
				}()
			}
		})
	}
}

type groupRun struct {
	file  conformance.File
	index int
	group conformance.Group
	keys  *conformance.Keys
	bin   string
	tally *tally
}

// subtestName is the vector's name without its file's prefix, so the full
// test name ends in the vector name: TestConformance/rbac/admin-lists-agents.
func (r groupRun) subtestName(v conformance.Vector) string {
	return strings.TrimPrefix(v.Name, r.file.Name+"/")
}

func (r groupRun) run(t *testing.T) {
	t.Helper()
	desc := fmt.Sprintf("%s group %d", r.file.Name, r.index+1)
	opts, err := r.options(t.TempDir())
	if err != nil {
		r.failAll(t, fmt.Sprintf("%s: setting up: %v", desc, err))
		return
	}
	if r.group.Startup {
		r.runStartup(t, opts)
		return
	}
	srv, err := harness.Start(t.Context(), opts)
	if err != nil {
		t.Errorf("%s: the server did not start: %v", desc, err)
		r.failAll(t, fmt.Sprintf("the server of %s did not start (see the error above)", desc))
		return
	}
	defer srv.Kill()
	minter := conformance.Minter{Keys: r.keys}
	for _, v := range r.group.Vectors {
		r.vectorTest(t, v, func(t *testing.T) {
			if srv.Exited() {
				t.Fatalf("the server of %s has exited\n%s", desc, srv.Tail(40))
			}
			runVector(t, srv, minter, v)
			if t.Failed() && v.Note != "" {
				t.Logf("vector note: %s", v.Note)
			}
		})
	}
	code, err := srv.Stop(harness.DefaultStopTimeout)
	if err != nil || code != 0 {
		r.tally.badStop(desc)
		t.Errorf("%s: after SIGTERM: exit %d, %v, want exit 0\n%s", desc, code, err, srv.Tail(40))
	}
}

// options writes the group's configuration file and resolves its
// environment, placeholders substituted.
func (r groupRun) options(dir string) (harness.Options, error) {
	sub := &conformance.Substituter{Keys: r.keys, Dir: dir, Accounts: r.group.ServiceAccounts}
	opts := harness.Options{Binary: r.bin}
	if r.group.Config != nil {
		cfg, err := sub.Config(r.group.Config)
		if err != nil {
			return opts, err
		}
		opts.ConfigPath = filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(opts.ConfigPath, cfg, 0o600); err != nil {
			return opts, err
		}
	}
	env, err := sub.Env(r.group.Env)
	if err != nil {
		return opts, err
	}
	opts.Env = env
	return opts, nil
}

func (r groupRun) failAll(t *testing.T, msg string) {
	t.Helper()
	for _, v := range r.group.Vectors {
		r.vectorTest(t, v, func(t *testing.T) { t.Fatal(msg) })
	}
}

// vectorTest runs fn as the vector's subtest and counts its result, unless
// -run filtered it out.
func (r groupRun) vectorTest(t *testing.T, v conformance.Vector, fn func(t *testing.T)) {
	t.Helper()
	ran := false
	ok := t.Run(r.subtestName(v), func(t *testing.T) {
		ran = true
		fn(t)
	})
	if ran {
		r.tally.add(v.Name, ok)
	}
}

// runStartup runs a startup vector: its own process must exit with
// expect.exit_code, its output holding each stderr_contains string.
func (r groupRun) runStartup(t *testing.T, opts harness.Options) {
	t.Helper()
	v := r.group.Vectors[0]
	r.vectorTest(t, v, func(t *testing.T) {
		call := "serve " + configSummary(r.group)
		code, out, err := harness.RunToExit(t.Context(), opts)
		if err != nil {
			t.Fatalf("%s: %v, want exit %d\n%s", call, err, *v.Expect.ExitCode, indent(out))
		}
		if code != *v.Expect.ExitCode {
			t.Errorf("%s = exit %d, want exit %d\n%s", call, code, *v.Expect.ExitCode, indent(out))
		}
		lower := strings.ToLower(out)
		for _, s := range v.Expect.StderrContains {
			if !strings.Contains(lower, strings.ToLower(s)) {
				t.Errorf("%s: output does not name %q\n%s", call, s, indent(out))
			}
		}
		if t.Failed() && v.Note != "" {
			t.Logf("vector note: %s", v.Note)
		}
	})
}

// runVector mints the vector's tokens, sends its CheckRequest and compares
// the answer with its expectation.
func runVector(t *testing.T, srv *harness.Server, minter conformance.Minter, v conformance.Vector) {
	t.Helper()
	tokens := map[string]string{}
	for name, spec := range map[string]*conformance.TokenSpec{"token": v.Token, "token2": v.Token2} {
		if spec == nil {
			continue
		}
		tok, err := minter.Mint(*spec)
		if err != nil {
			t.Fatalf("minting %s: %v", name, err)
		}
		tokens[name] = tok
	}
	b, err := harness.BuildRequest(v.Request, tokens)
	if err != nil {
		t.Fatalf("building the request: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), checkTimeout)
	defer cancel()
	resp, err := srv.Check(ctx, b.Check)
	if err != nil {
		t.Fatalf("%s: Check RPC failed: %v, want %s", b.Describe(), err, v.Expect.Status)
	}
	o := harness.Interpret(b, resp)
	for _, p := range harness.Compare(v.Expect, b, o) {
		t.Error(p)
	}
	// The policy API's Explain decides as Check does (explain_test.go).
	checkExplainAgrees(ctx, t, srv, b, o)
}

func configSummary(g conformance.Group) string {
	var parts []string
	if g.Config != nil {
		parts = append(parts, "config "+truncateStr(string(g.Config), 200))
	}
	var names []string
	for k := range g.Env {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(names) > 0 {
		parts = append(parts, "env "+strings.Join(names, ","))
	}
	if len(parts) == 0 {
		return "(no config, no env)"
	}
	return strings.Join(parts, " ")
}

func truncateStr(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func indent(out string) string {
	if out == "" {
		return "\t(no output)"
	}
	return "\t" + strings.ReplaceAll(strings.TrimRight(out, "\n"), "\n", "\n\t")
}

// tally counts vector results for the summary line.
type tally struct {
	mu       sync.Mutex
	passed   int
	failed   []string
	badStops []string // groups whose server did not exit 0 on SIGTERM
}

func (c *tally) badStop(group string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.badStops = append(c.badStops, group)
}

func (c *tally) add(name string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ok {
		c.passed++
		return
	}
	c.failed = append(c.failed, name)
}

func (c *tally) summary() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.passed + len(c.failed)
	line := fmt.Sprintf("conformance: %d vectors, %d passed, %d failed", n, c.passed, len(c.failed))
	if len(c.badStops) > 0 {
		line += fmt.Sprintf("; %d server(s) did not exit 0 on SIGTERM: %s", len(c.badStops), strings.Join(c.badStops, ", "))
	}
	if len(c.failed) > 0 {
		failed := append([]string(nil), c.failed...)
		sort.Strings(failed)
		line += "\nconformance failures:\n\t" + strings.Join(failed, "\n\t")
	}
	return line
}
