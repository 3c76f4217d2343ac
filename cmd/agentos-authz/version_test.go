package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestBuildFrom(t *testing.T) {
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	tests := []struct {
		name      string
		ldVersion string
		info      *debug.BuildInfo
		want      build
	}{
		{name: "linked version and VCS", ldVersion: "v1.2.0-3-gabc1234",
			info: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs("abc1234def", "false")},
			want: build{Version: "v1.2.0-3-gabc1234", Revision: "abc1234def", GoVersion: "go1.26.8"}},
		{name: "dirty tree", ldVersion: "v1.2.0-dirty",
			info: &debug.BuildInfo{GoVersion: "go1.26.8", Settings: vcs("abc1234def", "true")},
			want: build{Version: "v1.2.0-dirty", Revision: "abc1234def-dirty", GoVersion: "go1.26.8"}},
		{name: "go install of a tagged module", info: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.3.0"}},
			want: build{Version: "v1.3.0", Revision: "unknown", GoVersion: "go1.26.8"}},
		{name: "no VCS, no linked version (tarball, -buildvcs=false)", info: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			want: build{Version: "devel", Revision: "unknown", GoVersion: "go1.26.8"}},
		{name: "no build information at all", want: build{Version: "devel", Revision: "unknown", GoVersion: "unknown"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := buildFrom(tc.ldVersion, func() (*debug.BuildInfo, bool) { return tc.info, tc.info != nil })
			if got != tc.want {
				t.Errorf("buildFrom(%q, ...) = %+v, want %+v", tc.ldVersion, got, tc.want)
			}
		})
	}
}

// TestVersionCommand: `version` and `--version` print the same three
// lines, exit 0; a stray argument is a usage error.
func TestVersionCommand(t *testing.T) {
	var outputs []string
	for _, args := range [][]string{{"version"}, {"--version"}} {
		h := newHarness(t)
		if code := h.run(args...); code != exitOK {
			t.Fatalf("%s = exit %d, want 0\nstderr: %s", call(args), code, h.stderr)
		}
		out := h.stdout.String()
		for _, want := range []string{"agentos-authz ", "\nrevision: ", "\ngo:       " + runtime.Version()} {
			if !strings.Contains(out, want) {
				t.Errorf("%s printed %q, want %q in it", call(args), out, want)
			}
		}
		outputs = append(outputs, out)
	}
	if outputs[0] != outputs[1] {
		t.Errorf("version printed %q, --version %q: want the same", outputs[0], outputs[1])
	}
	h := newHarness(t)
	if code := h.run("version", "extra"); code != exitUsage {
		t.Errorf("version extra = exit %d, want %d", code, exitUsage)
	}
	h = newHarness(t)
	h.run("help")
	if !strings.Contains(h.stdout.String(), "version") {
		t.Errorf("usage lacks the version command:\n%s", h.stdout)
	}
}

// TestVersionLinked builds the binary as `make build` does, with
// -ldflags -X main.version, and runs --version.
func TestVersionLinked(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "agentos-authz")
	const v = "v9.8.7-test"
	build := exec.CommandContext(t.Context(), "go", "build", "-ldflags", "-X main.version="+v, "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.CommandContext(t.Context(), bin, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", bin, err)
	}
	if !strings.HasPrefix(string(out), "agentos-authz "+v+"\n") {
		t.Errorf("--version = %q, want the linked version %s first", out, v)
	}
}

// TestBuildInfoMetric: /metrics's registry holds
// agentos_authz_build_info{version,revision,goversion} 1.
func TestBuildInfoMetric(t *testing.T) {
	reg, _, err := newMetrics()
	if err != nil {
		t.Fatal(err)
	}
	b := readBuild()
	want := "# HELP " + MetricBuildInfo + " The running build: version, VCS revision and Go version, as labels; the value is always 1.\n" +
		"# TYPE " + MetricBuildInfo + " gauge\n" +
		MetricBuildInfo + `{goversion="` + b.GoVersion + `",revision="` + b.Revision + `",version="` + b.Version + `"} 1` + "\n"
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), MetricBuildInfo); err != nil {
		t.Error(err)
	}
}
