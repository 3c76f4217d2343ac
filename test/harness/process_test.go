package harness

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentos-authz/agentos-authz/internal/conformance"
)

// fakeBuild is internal/fakeauthz, built on first use and removed by
// TestMain.
var fakeBuild struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fakeBuild.dir != "" {
		_ = os.RemoveAll(fakeBuild.dir)
	}
	os.Exit(code)
}

func fake(t *testing.T, config string) Options {
	t.Helper()
	fakeBuild.once.Do(func() {
		fakeBuild.dir, fakeBuild.err = os.MkdirTemp("", "fakeauthz-")
		if fakeBuild.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		fakeBuild.path, fakeBuild.err = BuildBinary(ctx, "./internal/fakeauthz", fakeBuild.dir, false)
	})
	if fakeBuild.err != nil {
		t.Fatal(fakeBuild.err)
	}
	opts := Options{Binary: fakeBuild.path, StartTimeout: 30 * time.Second}
	if config != "" {
		opts.ConfigPath = filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(opts.ConfigPath, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return opts
}

func TestStartCheckStop(t *testing.T) {
	s, err := Start(t.Context(), fake(t, `{}`))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Kill()
	// The addresses are the bound ones (Start passes port 0).
	for _, addr := range []string{s.GRPCAddr, s.AdminAddr} {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host != "127.0.0.1" || port == "0" {
			t.Errorf("address %q: want a bound 127.0.0.1 port", addr)
		}
	}
	if s.HTTPAddr != "off" {
		t.Errorf("HTTPAddr = %q, want off", s.HTTPAddr)
	}
	for _, tt := range []struct {
		doc, expect string
	}{
		{`{"path": "/a", "headers": {"authorization": "x", "x-agentos-user-id": "admin", "x-agentos-scopes": "s"}}`, `{"status": 200, "headers": {"x-agentos-user-id": "fake"}, "absent_headers": ["x-agentos-scopes"]}`},
		{`{"path": "/a", "headers": {}}`, `{"status": 401, "detail": "Authorization header missing"}`},
	} {
		b, err := BuildRequest(mustRequest(t, tt.doc), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := s.Check(t.Context(), b.Check)
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		if p := Compare(expectJSON(t, tt.expect), b, Interpret(b, resp)); len(p) > 0 {
			t.Errorf("fake answer: %q", p)
		}
	}
	code, err := s.Stop(DefaultStopTimeout)
	if err != nil || code != 0 {
		t.Errorf("Stop = %d, %v, want 0", code, err)
	}
	if !s.Exited() {
		t.Error("Exited() = false after Stop")
	}
}

func TestRunToExit(t *testing.T) {
	code, out, err := RunToExit(t.Context(), fake(t, `{"fake_exit": 2}`))
	if err != nil || code != 2 || !strings.Contains(out, "fake_exit") {
		t.Errorf("RunToExit(fake_exit 2) = %d, %q, %v; want 2 and the field named", code, out, err)
	}
	code, _, err = RunToExit(t.Context(), fake(t, `{}`))
	if err == nil || !strings.Contains(err.Error(), "serving") {
		t.Errorf("RunToExit(valid config) = %d, %v; want an error saying it served", code, err)
	}
	if _, err := Start(t.Context(), fake(t, `{"fake_exit": 3}`)); err == nil || !strings.Contains(err.Error(), "fake_exit") {
		t.Errorf("Start(fake_exit 3) error = %v, want the exit and its output", err)
	}
}

func TestExerciseDrainOnFake(t *testing.T) {
	s, err := Start(t.Context(), fake(t, `{}`))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Kill()
	rep := ExerciseDrain(t.Context(), s, DrainOptions{
		Request: func() (Built, error) {
			return BuildRequest(conformance.Request{Path: "/agents", Headers: conformance.HeaderList{{Key: "authorization", Value: "x"}}}, nil)
		},
		Expect:  conformance.Expect{Status: conformance.StatusSet{200}, Headers: map[string]conformance.HeaderExpect{"x-agentos-user-id": {Exact: ptr("fake")}}},
		Timeout: 20 * time.Second,
	})
	if len(rep.Problems) > 0 {
		t.Errorf("drain problems: %q", rep.Problems)
	}
	if rep.HeldAnswered != 8 || !rep.SawNotServing || rep.ExitCode != 0 || rep.LoadAnswered == 0 {
		t.Errorf("report = %+v, want 8 held answered, NOT_SERVING seen, exit 0, loop answers", rep)
	}
}

// TestExerciseDrainCatches shows that ExerciseDrain fails a server that
// drops in-flight checks or never reports NOT_SERVING.
func TestExerciseDrainCatches(t *testing.T) {
	for _, tt := range []struct{ mode, want string }{
		{"hard", "want a real answer"},
		{"silent", "never reported NOT_SERVING"},
	} {
		opts := fake(t, `{}`)
		opts.Env = map[string]string{"FAKEAUTHZ_STOP": tt.mode}
		s, err := Start(t.Context(), opts)
		if err != nil {
			t.Fatal(err)
		}
		rep := ExerciseDrain(t.Context(), s, DrainOptions{
			Request: func() (Built, error) {
				return BuildRequest(conformance.Request{Path: "/agents", Headers: conformance.HeaderList{{Key: "authorization", Value: "x"}}}, nil)
			},
			Expect:  conformance.Expect{Status: conformance.StatusSet{200}},
			Timeout: 3 * time.Second,
		})
		s.Kill()
		t.Logf("FAKEAUTHZ_STOP=%s: %q", tt.mode, rep.Problems)
		if !strings.Contains(strings.Join(rep.Problems, "\n"), tt.want) {
			t.Errorf("FAKEAUTHZ_STOP=%s: problems = %q, want one saying %q", tt.mode, rep.Problems, tt.want)
		}
	}
}

func TestEnviron(t *testing.T) {
	base := []string{"PATH=/bin", "OS_SECURITY_KEY=old", "AUTHZ_CONFIG=/x", "AGENT_OS_ID=o", "KEEP=1", "OVER=1"}
	got := Environ(base, map[string]string{"OS_SECURITY_KEY": "new", "OVER": "2"})
	slices.Sort(got)
	want := []string{"KEEP=1", "OS_SECURITY_KEY=new", "OVER=2", "PATH=/bin"}
	if !slices.Equal(got, want) {
		t.Errorf("Environ = %q, want %q", got, want)
	}
}

func TestListeningAddrs(t *testing.T) {
	out := "starting\n" +
		`{"level":"info","msg":"config"}` + "\n" +
		`{"level":"info","msg":"listening","grpc_addr":"127.0.0.1:4001","http_addr":"off","admin_addr":"127.0.0.1:4002"}` + "\n" +
		`{"level":"info","msg":"listening","grpc_addr":"127.0.0.1:1","http_addr":"off","admin_addr":"127.0.0.1:2"}` + "\n"
	got, ok := ListeningAddrs(out)
	if want := (Addrs{GRPC: "127.0.0.1:4001", HTTP: "off", Admin: "127.0.0.1:4002"}); !ok || got != want {
		t.Errorf("ListeningAddrs = %+v, %v; want the first line's %+v", got, ok, want)
	}
	for _, partial := range []string{
		"",
		`{"msg":"listening","grpc_addr":"127.0.0.1:4001"`, // cut short
		`{"msg":"listening","grpc_addr":"127.0.0.1:4001","http_addr":"off"}`,
		`{"msg":"ready","grpc_addr":"127.0.0.1:4001","admin_addr":"127.0.0.1:4002"}`,
	} {
		if got, ok := ListeningAddrs(partial); ok {
			t.Errorf("ListeningAddrs(%q) = %+v, want none", partial, got)
		}
	}
}

func TestFreeAddrs(t *testing.T) {
	addrs, err := FreeAddrs(3)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		if !strings.HasPrefix(a, "127.0.0.1:") || seen[a] {
			t.Errorf("FreeAddrs = %v: not loopback or repeated", addrs)
		}
		seen[a] = true
	}
}
