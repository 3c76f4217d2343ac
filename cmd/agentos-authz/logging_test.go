package main

import (
	"bufio"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/agentos-authz/agentos-authz/authz"
)

// newTestAuthorizer is the real authorizer of testConfig, logging to log.
func newTestAuthorizer(t *testing.T, log *zap.Logger) *authz.Authorizer {
	t.Helper()
	a, err := authz.New(testConfig(t).Config, authz.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// deny makes n denials: a missing credential (401) over gRPC.
func deny(t *testing.T, a *authz.Authorizer, n int) {
	t.Helper()
	for range n {
		d := a.Decide(t.Context(), &authz.Request{Method: "GET", Path: "/agents", Transport: authz.TransportGRPC})
		if d.Status != 401 {
			t.Fatalf("Decide(GET /agents, no credential) = %d, want 401", d.Status)
		}
	}
}

// TestDenialLinesNotSampled: the production logger writes one line per
// denial for a burst under the limit (zap's sampler alone gave 105 lines
// for 600), with the transport field, while other repeated messages keep
// zap's sampler.
func TestDenialLinesNotSampled(t *testing.T) {
	var buf syncBuffer
	log := newLogger(&buf, false, zapcore.InfoLevel)
	deny(t, newTestAuthorizer(t, log), 600)
	for range 600 {
		log.Info("some repeated message")
	}
	counts := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(buf.String()))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		msg, _ := line["msg"].(string)
		counts[msg]++
		if msg == authz.MsgDenied && line["transport"] != authz.TransportGRPC {
			t.Errorf("denial line %v lacks transport grpc", line)
		}
	}
	if counts[authz.MsgDenied] != 600 {
		t.Errorf("600 denials gave %d lines, want 600", counts[authz.MsgDenied])
	}
	if n := counts["some repeated message"]; n >= 600 {
		t.Errorf("600 repeats of another message gave %d lines, want them sampled", n)
	}
	if counts[msgSuppressed] != 0 {
		t.Errorf("a suppressed report under the limit: %d", counts[msgSuppressed])
	}
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestDenialFlood: a flood of denials logs the burst, then the refill
// rate; the rest is counted in a "denial log lines suppressed" line, due
// after the report interval or on flush.
func TestDenialFlood(t *testing.T) {
	const rate, burst = 100, 1000
	obsCore, logs := observer.New(zapcore.InfoLevel)
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	lim := newLineLimiter(rate, burst, clock.now, obsCore)
	log := zap.New(newDenialCore(zapcore.NewSamplerWithOptions(obsCore, time.Second, 100, 100), obsCore, lim))
	a := newTestAuthorizer(t, log)

	deny(t, a, 5000)
	if n := logs.FilterMessage(authz.MsgDenied).Len(); n != burst {
		t.Errorf("5000 denials at once gave %d lines, want the burst %d", n, burst)
	}
	if n := logs.FilterMessage(msgSuppressed).Len(); n != 0 {
		t.Errorf("a suppressed report before the interval: %d", n)
	}
	clock.add(2 * time.Second) // refills 200 lines
	deny(t, a, 300)
	if n := logs.FilterMessage(authz.MsgDenied).Len(); n != burst+2*rate {
		t.Errorf("after 2s and 300 more denials: %d lines, want %d", n, burst+2*rate)
	}
	lim.flush()
	reports := logs.FilterMessage(msgSuppressed).All()
	if len(reports) != 1 {
		t.Fatalf("%d suppressed reports after flush, want 1", len(reports))
	}
	f := reports[0].ContextMap()
	if f["suppressed"] != uint64(5000+300-burst-2*rate) || reports[0].Level != zapcore.WarnLevel {
		t.Errorf("suppressed report = %s %v, want warn with suppressed=%d", reports[0].Level, f, 5000+300-burst-2*rate)
	}
	if f["limit_per_second"] != float64(rate) || f["burst"] != int64(burst) {
		t.Errorf("suppressed report names the limit %v, want %d/s burst %d", f, rate, burst)
	}
	lim.flush()
	if n := logs.FilterMessage(msgSuppressed).Len(); n != 1 {
		t.Errorf("a second flush with nothing suppressed wrote a report (%d)", n)
	}

	// Within the flood, the report comes on its own once the interval has
	// passed since the first suppressed line.
	deny(t, a, 5) // the bucket is empty: 5 suppressed
	clock.add(suppressedReportInterval)
	deny(t, a, 1) // refilled: logged; the report is due
	reports = logs.FilterMessage(msgSuppressed).All()
	if len(reports) != 2 || reports[1].ContextMap()["suppressed"] != uint64(5) {
		t.Errorf("periodic report = %v, want a second one with suppressed=5", reports)
	}
}

// TestDenialNoLimit: denials_per_second 0 logs every denial.
func TestDenialNoLimit(t *testing.T) {
	obsCore, logs := observer.New(zapcore.InfoLevel)
	lim := newLineLimiter(0, 0, time.Now, obsCore)
	a := newTestAuthorizer(t, zap.New(newDenialCore(obsCore, obsCore, lim)))
	deny(t, a, 3000)
	if n := logs.FilterMessage(authz.MsgDenied).Len(); n != 3000 {
		t.Errorf("3000 denials without a limit gave %d lines", n)
	}
}

// TestDecisionLineFields: the transport and, for a refused token, the
// token problem from the closed set.
func TestDecisionLineFields(t *testing.T) {
	obsCore, logs := observer.New(zapcore.InfoLevel)
	a := newTestAuthorizer(t, zap.New(obsCore))
	d := a.Decide(t.Context(), &authz.Request{Method: "GET", Path: "/agents", Transport: authz.TransportHTTP,
		Headers: map[string]string{"authorization": "Bearer not.a.jwt", "x-request-id": "bad-token"}})
	if d.Status != 401 || d.TokenProblem == "" {
		t.Fatalf("Decide(garbage token) = %d %q, want 401 with a token problem", d.Status, d.TokenProblem)
	}
	lines := logs.FilterField(zap.String("request_id", "bad-token")).All()
	if len(lines) != 1 {
		t.Fatalf("%d lines for the request, want 1", len(lines))
	}
	f := lines[0].ContextMap()
	known := false
	for _, p := range authz.TokenProblems() {
		known = known || f["token_problem"] == string(p)
	}
	if f["transport"] != authz.TransportHTTP || !known {
		t.Errorf("denial line = %v, want transport http and a token_problem of the closed set", f)
	}
	if strings.Contains(lines[0].Message, "not.a.jwt") || strings.Contains(f["token_problem"].(string), "not.a.jwt") {
		t.Error("the token reached the log")
	}
}
