package deploy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The Dockerfile and .dockerignore live at the repository root.
const (
	dockerfilePath   = "../../Dockerfile"
	dockerignorePath = "../../.dockerignore"
	goModPath        = "../../go.mod"
	// repoRoot is the service's module, the one the image builds; these tests
	// are a module of their own (envoy/deploy/go.mod), so the go commands
	// that look at the service run there.
	repoRoot = "../.."
)

// dockerInstr is one Dockerfile instruction, continuation lines joined.
type dockerInstr struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
	line int
}

// parseDockerfile splits a Dockerfile into instructions: comments and blank lines dropped,
// lines ending in "\" joined with the next (the default escape character).
func parseDockerfile(data []byte) ([]dockerInstr, error) {
	var out []dockerInstr
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		body, cont := strings.CutSuffix(line, `\`)
		cur.WriteString(body)
		if cont {
			cur.WriteByte(' ')
			continue
		}
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, dockerInstr{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if cur.Len() > 0 {
		return nil, fmt.Errorf("line %d: the last instruction ends with a line continuation", start)
	}
	return out, nil
}

// dockerStage is one FROM and the instructions after it.
type dockerStage struct {
	image, name string
	instrs      []dockerInstr
}

func stagesOf(instrs []dockerInstr) ([]dockerStage, error) {
	var stages []dockerStage
	for _, in := range instrs {
		if in.cmd == "FROM" {
			var fields []string
			for _, f := range strings.Fields(in.args) {
				if !strings.HasPrefix(f, "--") {
					fields = append(fields, f)
				}
			}
			st := dockerStage{}
			switch {
			case len(fields) == 1:
				st.image = fields[0]
			case len(fields) == 3 && strings.EqualFold(fields[1], "AS"):
				st.image, st.name = fields[0], fields[2]
			default:
				return nil, fmt.Errorf("line %d: FROM %s: want FROM image [AS name]", in.line, in.args)
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			if in.cmd == "ARG" {
				continue // an ARG before the first FROM is allowed
			}
			return nil, fmt.Errorf("line %d: %s before the first FROM", in.line, in.cmd)
		}
		stages[len(stages)-1].instrs = append(stages[len(stages)-1].instrs, in)
	}
	if len(stages) == 0 {
		return nil, errors.New("no FROM")
	}
	return stages, nil
}

var (
	secretName  = regexp.MustCompile(`(?i)(key|secret|token|password)`)
	buildOutput = regexp.MustCompile(`-o\s+(\S+)`)
	goDirective = regexp.MustCompile(`(?m)^go\s+(\d+\.\d+)`)
)

// checkDockerfile checks the image the project promises: a multi-stage build of a static
// Go binary (toolchain from go.mod) onto a distroless or scratch base, run as a numeric
// non-root user with "serve" as the entrypoint.
func checkDockerfile(data []byte, goVersion string) error {
	instrs, err := parseDockerfile(data)
	if err != nil {
		return err
	}
	stages, err := stagesOf(instrs)
	if err != nil {
		return err
	}
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(stages) < 2 {
		fail("single stage: build in one stage, copy the binary into a minimal one")
	}
	final := stages[len(stages)-1]
	if !strings.HasPrefix(final.image, "gcr.io/distroless/static") && final.image != "scratch" {
		fail("final base %q: want gcr.io/distroless/static* or scratch", final.image)
	}

	// The build stage: go build with CGO_ENABLED=0 and -trimpath, Go from go.mod.
	var builtBinary string
	for _, st := range stages[:len(stages)-1] {
		if repo, tag, _ := strings.Cut(st.image, ":"); repo == "golang" && !strings.HasPrefix(tag, goVersion) {
			fail("build base %q: go.mod says go %s", st.image, goVersion)
		}
		for _, in := range st.instrs {
			if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
				if !strings.Contains(in.args, "CGO_ENABLED=0") && !slices.ContainsFunc(st.instrs, func(i dockerInstr) bool {
					return i.cmd == "ENV" && strings.Contains(i.args, "CGO_ENABLED=0")
				}) {
					fail("line %d: go build without CGO_ENABLED=0: the binary would need libc", in.line)
				}
				if !strings.Contains(in.args, "-trimpath") {
					fail("line %d: go build without -trimpath", in.line)
				}
				if !strings.Contains(in.args, "./cmd/agentos-authz") {
					fail("line %d: go build does not build ./cmd/agentos-authz", in.line)
				}
				if m := buildOutput.FindStringSubmatch(in.args); m != nil {
					builtBinary = m[1]
				}
			}
		}
		for _, in := range st.instrs {
			if in.cmd == "ENV" || in.cmd == "ARG" {
				if name, _, _ := strings.Cut(in.args, "="); secretName.MatchString(name) {
					fail("line %d: %s %s: build arguments and env end up in the image history", in.line, in.cmd, name)
				}
			}
		}
	}
	if builtBinary == "" {
		fail("no build stage runs go build -o <binary>")
	}

	var user, entrypoint string
	var copied []string
	var exposed []string
	for _, in := range final.instrs {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		case "EXPOSE":
			exposed = append(exposed, strings.Fields(in.args)...)
		case "COPY":
			f := strings.Fields(in.args)
			if len(f) == 3 && strings.HasPrefix(f[0], "--from=") && f[1] == builtBinary {
				copied = append(copied, f[2])
			}
		case "ENV", "ARG":
			if name, _, _ := strings.Cut(in.args, "="); secretName.MatchString(name) {
				fail("line %d: %s %s: build arguments and env end up in the image history", in.line, in.cmd, name)
			}
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		fail("final stage USER %q: want a numeric non-root uid (Kubernetes runAsNonRoot can only verify a number)", user)
	}
	var argv []string
	if err := json.Unmarshal([]byte(entrypoint), &argv); err != nil {
		fail("ENTRYPOINT %s: want the exec form [\"/agentos-authz\", \"serve\"] so SIGTERM reaches the binary", entrypoint)
	} else if len(argv) < 2 || argv[1] != "serve" || !slices.Contains(copied, argv[0]) {
		fail("ENTRYPOINT %v: want [<the binary copied from the build stage>, \"serve\"] (copied: %v)", argv, copied)
	}
	for _, port := range []string{"9191", "8181", "9090"} {
		if !slices.Contains(exposed, port) && !slices.Contains(exposed, port+"/tcp") {
			fail("EXPOSE: port %s (contract §2) is missing", port)
		}
	}
	return errors.Join(errs...)
}

// goModVersion returns the "go" directive's major.minor (1.26 for "go 1.26.0").
func goModVersion(data []byte) (string, error) {
	m := goDirective.FindSubmatch(data)
	if m == nil {
		return "", errors.New("go.mod has no go directive")
	}
	return string(m[1]), nil
}

func TestDockerfile(t *testing.T) {
	goVersion, err := goModVersion(readDeployFile(t, goModPath))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkDockerfile(readDeployFile(t, dockerfilePath), goVersion); err != nil {
		t.Errorf("Dockerfile:\n%v", err)
	}
}

func TestDockerfileValidatorsReject(t *testing.T) {
	base := string(readDeployFile(t, dockerfilePath))
	tests := []struct {
		name    string
		mutate  func(t *testing.T, s string) string
		wantErr string
	}{
		{
			name: "single stage",
			mutate: func(_ *testing.T, _ string) string {
				return "FROM golang:1.26\nCOPY . .\nRUN CGO_ENABLED=0 go build -trimpath -o /agentos-authz ./cmd/agentos-authz\nUSER 65532\nENTRYPOINT [\"/agentos-authz\", \"serve\"]\n"
			},
			wantErr: "single stage",
		},
		{
			name: "full OS base",
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "FROM gcr.io/distroless/static-debian12:nonroot", "FROM debian:bookworm-slim")
			},
			wantErr: `final base "debian:bookworm-slim"`,
		},
		{
			name:    "root user",
			mutate:  func(t *testing.T, s string) string { return mustReplace(t, s, "USER 65532:65532", "USER 0") },
			wantErr: `USER "0"`,
		},
		{
			name:    "named user",
			mutate:  func(t *testing.T, s string) string { return mustReplace(t, s, "USER 65532:65532", "USER nonroot") },
			wantErr: "numeric non-root uid",
		},
		{
			name:    "no user",
			mutate:  func(t *testing.T, s string) string { return mustReplace(t, s, "USER 65532:65532\n", "") },
			wantErr: `USER ""`,
		},
		{
			name:    "cgo enabled",
			mutate:  func(t *testing.T, s string) string { return mustReplace(t, s, "CGO_ENABLED=0 ", "") },
			wantErr: "without CGO_ENABLED=0",
		},
		{
			name: "shell-form entrypoint",
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, `ENTRYPOINT ["/agentos-authz", "serve"]`, "ENTRYPOINT /agentos-authz serve")
			},
			wantErr: "want the exec form",
		},
		{
			name: "entrypoint without serve",
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, `ENTRYPOINT ["/agentos-authz", "serve"]`, `ENTRYPOINT ["/agentos-authz"]`)
			},
			wantErr: "ENTRYPOINT [/agentos-authz]",
		},
		{
			name: "entrypoint not the copied binary",
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, `ENTRYPOINT ["/agentos-authz", "serve"]`, `ENTRYPOINT ["/bin/agentos-authz", "serve"]`)
			},
			wantErr: "copied from the build stage",
		},
		{
			name:    "port not exposed",
			mutate:  func(t *testing.T, s string) string { return mustReplace(t, s, "EXPOSE 9191 8181 9090", "EXPOSE 9191") },
			wantErr: "port 8181",
		},
		{
			name: "other Go toolchain",
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "golang:1.26 AS build", "golang:1.25 AS build")
			},
			wantErr: "go.mod says go 1.26",
		},
		{
			name: "secret in a build argument",
			mutate: func(t *testing.T, s string) string {
				return mustReplace(t, s, "ARG TARGETOS\n", "ARG TARGETOS\nARG GITHUB_TOKEN\n")
			},
			wantErr: "ARG GITHUB_TOKEN",
		},
		{
			name:    "dangling continuation",
			mutate:  func(_ *testing.T, s string) string { return s + "RUN true \\\n" },
			wantErr: "line continuation",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkDockerfile([]byte(tt.mutate(t, base)), "1.26")
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("checkDockerfile(%s) = %v, want an error containing %q", tt.name, err, tt.wantErr)
			}
			t.Logf("rejected: %v", err)
		})
	}
}

// dockerignored reports whether the .dockerignore patterns exclude a path of the build
// context, with Docker's rules: the last matching pattern wins, "!" re-includes, "**"
// spans directories, and a pattern that matches a directory excludes what is under it.
func dockerignored(patterns []string, p string) bool {
	excluded := false
	for _, pat := range patterns {
		negate := strings.HasPrefix(pat, "!")
		pat = path.Clean(strings.TrimPrefix(strings.TrimPrefix(pat, "!"), "/"))
		re := dockerignoreRegexp(pat)
		for dir := p; dir != "." && dir != "/"; dir = path.Dir(dir) {
			if re.MatchString(dir) {
				excluded = !negate
				break
			}
		}
	}
	return excluded
}

func dockerignoreRegexp(pat string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(pat); i++ {
		switch c := pat[i]; {
		case strings.HasPrefix(pat[i:], "**/"):
			b.WriteString("(?:.*/)?")
			i += 2
		case strings.HasPrefix(pat[i:], "**"):
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func dockerignorePatterns(data []byte) []string {
	var out []string
	for line := range strings.SplitSeq(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}

// buildInputs returns the files of this module that building the server reads, relative to
// the module root: go.mod, go.sum, and the Go and embedded files of every package of the
// module that cmd/agentos-authz imports.
func buildInputs(t *testing.T) []string {
	t.Helper()
	root, err := rootGo(t, "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	prefix := strings.TrimSpace(string(root)) + "/"
	out, err := rootGo(t, "list", "-e", "-deps", "-json=Dir,GoFiles,EmbedFiles,Standard",
		"github.com/agentos-authz/agentos-authz/cmd/agentos-authz").Output()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/agentos-authz: %v", err)
	}
	files := []string{"go.mod", "go.sum"}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var pkg struct {
			Dir                 string
			GoFiles, EmbedFiles []string
			Standard            bool
		}
		if err := dec.Decode(&pkg); err != nil {
			t.Fatalf("go list output: %v", err)
		}
		rel, ok := strings.CutPrefix(pkg.Dir+"/", prefix)
		if pkg.Standard || !ok {
			continue
		}
		for _, f := range slices.Concat(pkg.GoFiles, pkg.EmbedFiles) {
			files = append(files, path.Join(rel, f))
		}
	}
	if !slices.Contains(files, "cmd/agentos-authz/main.go") {
		t.Fatalf("go list found no cmd/agentos-authz/main.go among the build inputs: %v", files)
	}
	return files
}

// TestDockerignore checks that the build context keeps every file the build reads and
// leaves out the repository history, tests and key material.
func TestDockerignore(t *testing.T) {
	patterns := dockerignorePatterns(readDeployFile(t, dockerignorePath))
	for _, p := range buildInputs(t) {
		if dockerignored(patterns, p) {
			t.Errorf(".dockerignore excludes %s, which the build reads", p)
		}
	}
	for _, p := range []string{".git/config", "keys/private.pem", "authz/testdata/rsa.key", "authz/decide_test.go", "envoy/deploy/README.md"} {
		if !dockerignored(patterns, p) {
			t.Errorf(".dockerignore lets %s into the build context", p)
		}
	}
}

func TestDockerignoreMatching(t *testing.T) {
	tests := []struct {
		patterns []string
		path     string
		want     bool
	}{
		{patterns: []string{".git"}, path: ".git/config", want: true},
		{patterns: []string{"**/*.pem"}, path: "a/b/c.pem", want: true},
		{patterns: []string{"**/*.pem"}, path: "c.pem", want: true},
		{patterns: []string{"*.pem"}, path: "a/c.pem", want: false},
		{patterns: []string{"test"}, path: "test/e2e_test.go", want: true},
		{patterns: []string{"test"}, path: "authz/test.go", want: false},
		{patterns: []string{"/agentos-authz"}, path: "agentos-authz", want: true},
		{patterns: []string{"/agentos-authz"}, path: "cmd/agentos-authz/main.go", want: false},
		{patterns: []string{"**/*_test.go", "!authz/keep_test.go"}, path: "authz/keep_test.go", want: false},
		{patterns: []string{"envoy/deploy"}, path: "envoy/server.go", want: false},
	}
	for _, tt := range tests {
		if got := dockerignored(tt.patterns, tt.path); got != tt.want {
			t.Errorf("dockerignored(%q, %q) = %v, want %v", tt.patterns, tt.path, got, tt.want)
		}
	}
}

// rootGo is `go ARGS` run in the service's module (repoRoot).
func rootGo(t *testing.T, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(t.Context(), "go", args...)
	cmd.Dir = repoRoot
	return cmd
}

// TestServerBinaryExcludesDeployDeps keeps the validation-only modules out of the server
// and out of its go.mod: they are required by this test module alone.
func TestServerBinaryExcludesDeployDeps(t *testing.T) {
	out, err := rootGo(t, "list", "-e", "-deps", "-f", "{{.ImportPath}}",
		"github.com/agentos-authz/agentos-authz/cmd/agentos-authz").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/agentos-authz: %v\n%s", err, out)
	}
	forbidden := []string{
		"istio.io/",
		"k8s.io/",
		"sigs.k8s.io/",
		"github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/",
		"helm.sh/",
		"github.com/prometheus-operator/",
		"github.com/agentos-authz/agentos-authz/envoy/deploy",
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/agentos-authz/agentos-authz/cmd/agentos-authz") {
		t.Fatalf("go list -deps did not list the command itself:\n%s", out)
	}
	for _, dep := range deps {
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) {
				t.Errorf("the server binary depends on %s: validation-only dependencies must stay in envoy/deploy's tests", dep)
			}
		}
	}
	for line := range strings.Lines(string(readDeployFile(t, goModPath))) {
		fields := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(fields) == 0 {
			continue
		}
		for _, f := range forbidden[:len(forbidden)-1] {
			if strings.HasPrefix(fields[0], f) {
				t.Errorf("go.mod requires %s: validation-only modules belong in envoy/deploy/go.mod", fields[0])
			}
		}
	}
}
