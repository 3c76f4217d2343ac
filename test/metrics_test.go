package test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc/codes"

	"github.com/agentos-authz/agentos-authz/internal/conformance"
	"github.com/agentos-authz/agentos-authz/test/harness"
)

// scrape reads /metrics from the admin listener and parses it.
func scrape(t *testing.T, srv *harness.Server) map[string]*dto.MetricFamily {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+srv.AdminAddr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics = %d %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics is not the Prometheus text format: %v", err)
	}
	return fams
}

// value is the sample of family name whose labels are exactly labels
// (counter, gauge or histogram count); ok is false when there is none.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	for _, m := range fams[name].GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		match := true
		for _, l := range m.GetLabel() {
			if labels[l.GetName()] != l.GetValue() {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// TestMetricsEndpoint: the real binary serves /metrics on the admin
// listener; the check counters move with checks over gRPC and HTTP alike,
// and no label carries a path or a user id.
func TestMetricsEndpoint(t *testing.T) {
	h := startHS256(t, "--http-addr", "127.0.0.1:0")
	httpAddr := listeningAddr(t, h.srv, "http_addr")

	before := scrape(t, h.srv)
	for _, f := range []string{"agentos_authz_checks_total", "agentos_authz_check_duration_seconds",
		"agentos_authz_security_key_uses_total", "agentos_authz_config_loads_total", "agentos_authz_jwks_fetches_total",
		"go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := before[f]; !ok {
			t.Errorf("/metrics lacks %s", f)
		}
	}
	if v, _ := value(before, "agentos_authz_config_loads_total", map[string]string{"result": "success"}); v != 1 {
		t.Errorf(`agentos_authz_config_loads_total{result="success"} = %v, want 1`, v)
	}

	// gRPC: one allowed, one 401.
	for _, c := range []struct {
		b    harness.Built
		want codes.Code
	}{
		{b: h.request(t, "/agents/secret-agent-42", tokenSpec("user-metrics-7", "agents:read")), want: codes.OK},
		{b: func() harness.Built {
			b, err := harness.BuildRequest(conformance.Request{Method: "GET", Path: "/agents"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}(), want: codes.Unauthenticated},
	} {
		resp, err := h.srv.Check(t.Context(), c.b.Check)
		if err != nil {
			t.Fatalf("Check(%s): %v", c.b.Describe(), err)
		}
		if got := codes.Code(resp.GetStatus().GetCode()); got != c.want {
			t.Fatalf("Check(%s) = %v, want %v", c.b.Describe(), got, c.want)
		}
	}
	// HTTP: one allowed, one 401, one 403.
	tok, err := h.minter.Mint(tokenSpec("user-metrics-7", "agents:read"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		method, path, auth string
		want               int
	}{
		{method: "GET", path: "/agents/secret-agent-42", auth: "Bearer " + tok, want: 200},
		{method: "GET", path: "/agents"},
		{method: "POST", path: "/agents/secret-agent-42/runs", auth: "Bearer " + tok, want: 403},
	} {
		if c.want == 0 {
			c.want = 401
		}
		req, err := http.NewRequestWithContext(t.Context(), c.method, "http://"+httpAddr+c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("HTTP check %s %s: %v", c.method, c.path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Fatalf("HTTP check %s %s = %d, want %d", c.method, c.path, resp.StatusCode, c.want)
		}
	}

	after := scrape(t, h.srv)
	for _, w := range []struct {
		name   string
		labels map[string]string
		delta  float64
	}{
		{"agentos_authz_checks_total", map[string]string{"decision": "allow", "status": "200", "reason": "allowed", "mode": "enforce"}, 2},
		{"agentos_authz_checks_total", map[string]string{"decision": "deny", "status": "401", "reason": "missing_credential", "mode": "enforce"}, 2},
		{"agentos_authz_checks_total", map[string]string{"decision": "deny", "status": "403", "reason": "insufficient_scopes", "mode": "enforce"}, 1},
		{"agentos_authz_checks_total", map[string]string{"decision": "deny", "status": "400", "reason": "malformed_path", "mode": "enforce"}, 0},
		{"agentos_authz_check_duration_seconds", map[string]string{"decision": "allow"}, 2},
		{"agentos_authz_check_duration_seconds", map[string]string{"decision": "deny"}, 3},
		{"agentos_authz_security_key_uses_total", map[string]string{}, 0},
	} {
		v0, ok0 := value(before, w.name, w.labels)
		v1, ok1 := value(after, w.name, w.labels)
		if !ok0 || !ok1 {
			t.Errorf("%s%v is missing (before %v, after %v): every series is pre-registered", w.name, w.labels, ok0, ok1)
			continue
		}
		if v1-v0 != w.delta {
			t.Errorf("%s%v moved by %v, want %v", w.name, w.labels, v1-v0, w.delta)
		}
	}
	if got, want := len(after["agentos_authz_checks_total"].GetMetric()), len(before["agentos_authz_checks_total"].GetMetric()); got != want {
		t.Errorf("agentos_authz_checks_total has %d series after the checks, %d before", got, want)
	}
	for name, f := range after {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				for _, bad := range []string{"/", "user-metrics-7", "secret-agent-42"} {
					if strings.Contains(l.GetValue(), bad) && strings.HasPrefix(name, "agentos_authz_") {
						t.Errorf("%s{%s=%q} carries request data", name, l.GetName(), l.GetValue())
					}
				}
			}
		}
	}
	noPanics(t, h.srv)
}
