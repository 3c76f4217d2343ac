package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/proto"
)

// TestOpenLoopRate: --rate sends on a fixed schedule: about rate × duration
// checks, none late against a fast server.
func TestOpenLoopRate(t *testing.T) {
	addr := startTestNoop(t)
	reqs := hsPool(t, 20, 1)
	opt := loadOptions{Target: addr, Conns: 1, Concurrency: 16, Duration: time.Second, Timeout: 5 * time.Second, Rate: 300, ServerCore: -1}
	res, err := runLoad(t.Context(), opt, &workload{reqs: reqs})
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, res)
	if sent := res.Requests + res.Late; sent < 250 || sent > 310 {
		t.Errorf("%d checks sent (+%d late) in 1 s at 300/s, want about 300", res.Requests, res.Late)
	}
	if res.Errors != 0 || res.Rate != 300 {
		t.Errorf("errors %d, rate %v; want 0 and 300", res.Errors, res.Rate)
	}
	if err := (loadOptions{Target: "x", Conns: 1, Concurrency: 1, Duration: time.Second, Timeout: time.Second, Rate: -1}).validate(); err == nil {
		t.Error("a negative --rate is accepted")
	}
}

func TestParseMetrics(t *testing.T) {
	text := "# HELP go_goroutines Number of goroutines.\n# TYPE go_goroutines gauge\ngo_goroutines 42\n" +
		"go_gc_duration_seconds{quantile=\"0\"} 1e-05\nprocess_resident_memory_bytes 2.5165824e+07\n"
	s, err := parseMetrics(strings.NewReader(text))
	if err != nil || s.Goroutines != 42 || s.RSS != 25165824 {
		t.Errorf("parseMetrics = %+v, %v; want 42 goroutines, 24 MiB", s, err)
	}
	if _, err := parseMetrics(strings.NewReader("go_goroutines 3\n")); err == nil {
		t.Error("metrics without process_resident_memory_bytes: no error")
	}
}

func TestJudgeSoak(t *testing.T) {
	f := &soakFlags{rssMargin: 0.25, rssSlack: 8, gorMargin: 0.5, gorSlack: 20}
	const mib = 1 << 20
	flat := []soakSample{{RSS: 30 * mib, Goroutines: 20}, {RSS: 32 * mib, Goroutines: 22}, {RSS: 33 * mib, Goroutines: 21},
		{RSS: 35 * mib, Goroutines: 25}, {RSS: 36 * mib, Goroutines: 22}, {RSS: 40 * mib, Goroutines: 40}}
	ok := &soakReport{Samples: flat, Result: &Result{Requests: 10, Allowed: 10}}
	judgeSoak(f, ok)
	if len(ok.Failures) != 0 {
		t.Errorf("bounded samples fail: %q", ok.Failures)
	}
	growing := make([]soakSample, 6)
	for i := range growing {
		growing[i] = soakSample{RSS: float64(30+10*i) * mib, Goroutines: float64(20 + 30*i)}
	}
	bad := &soakReport{Samples: growing, Result: &Result{Requests: 10, Allowed: 8, Denied: 1, Errors: 1, Unexpected: 1, FirstError: "Unavailable: x"}}
	judgeSoak(f, bad)
	got := strings.Join(bad.Failures, "\n")
	for _, want := range []string{"1 calls failed at the transport", "1 answers differ", "RSS grows: last third's max 80.0 MiB > 58.0 MiB", "goroutines grow: last third's max 170 > 95"} {
		if !strings.Contains(got, want) {
			t.Errorf("failures lack %q:\n%s", want, got)
		}
	}
	few := &soakReport{Samples: flat[:2], Result: &Result{Requests: 1, Allowed: 1}}
	if judgeSoak(f, few); len(few.Failures) != 1 {
		t.Errorf("two samples: failures %q, want one (too few to judge)", few.Failures)
	}
}

// TestSoakMix: the shares of the soak's checks hold, fresh tokens are each
// sent once, and every garbage request is a CheckRequest with the denial
// it calls for.
func TestSoakMix(t *testing.T) {
	garbage, err := garbageRequests()
	if err != nil {
		t.Fatal(err)
	}
	statuses := map[int32]int{}
	for i, g := range garbage {
		statuses[g.wantStatus()]++
		req := new(authv3.CheckRequest)
		if err := proto.Unmarshal(g.body, req); err != nil {
			t.Fatalf("garbage %d does not parse: %v", i, err)
		}
		if len(g.body) > 1<<20 {
			t.Errorf("garbage %d is %d bytes: over the service's 1 MiB gRPC limit, a transport error", i, len(g.body))
		}
	}
	if statuses[400] == 0 || statuses[401] == 0 || statuses[200]+statuses[403] != 0 {
		t.Errorf("garbage statuses %v, want 400s and 401s only", statuses)
	}
	m := &soakMix{pooled: hsPool(t, 10, 0.8), fresh: hsPool(t, 300, 0.8), garbage: garbage, freshShare: 0.2, garbShare: 0.01, seed: 7}
	seen := map[*wireRequest]bool{}
	for i := range uint64(10000) {
		r, ok := m.next(i)
		if !ok {
			t.Fatal("the mix ran out")
		}
		if i < 1000 && r.status == 0 && !r.invalid {
			for j := range m.fresh {
				if r == &m.fresh[j] {
					if seen[r] {
						t.Fatalf("fresh request %d sent twice", j)
					}
					seen[r] = true
				}
			}
		}
	}
	if g := m.sentGarbage.Load(); g < 60 || g > 140 {
		t.Errorf("%d garbage checks of 10000, want about 100", g)
	}
	if f := m.sentFresh.Load(); f != 300 {
		t.Errorf("%d fresh checks, want all 300 (then pooled)", f)
	}
}

// TestSoakSmoke runs a short soak against the real service binary.
func TestSoakSmoke(t *testing.T) {
	dir := t.TempDir()
	svc := filepath.Join(dir, "agentos-authz")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", svc, "./cmd/agentos-authz")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building agentos-authz: %v\n%s", err, out)
	}
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"soak", "--bin", svc, "--duration", "3s", "--sample", "1s", "--rate", "200", "--tokens", "20",
		"--garbage", "0.05", "--start-timeout", "30s"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("soak = %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{"RSS MiB", "soak summary: ", "401: ", "400: ", "403: ", "transport errors 0", "PASS"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("soak output lacks %q:\n%s", want, stdout.String())
		}
	}
}
