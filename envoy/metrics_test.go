package envoy

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/agentos-authz/agentos-authz/authz"
)

func newTestMetrics(t *testing.T) (*prometheus.Registry, *Metrics) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatalf("NewMetrics: %v", err)
	}
	return reg, m
}

// series returns every gathered sample of family name as "k=v,k=v" label
// strings mapped to their value (counter, gauge or histogram count).
func series(t *testing.T, reg prometheus.Gatherer, name string) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			out[labelString(m)] = sampleValue(m)
		}
	}
	return out
}

func labelString(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	return strings.Join(parts, ",")
}

func sampleValue(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetHistogram() != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return 0
}

// TestMetricsPreRegistered: every series a decision can produce exists at
// 0 before the first check, with the status its reason carries.
func TestMetricsPreRegistered(t *testing.T) {
	reg, _ := newTestMetrics(t)
	checks := series(t, reg, MetricChecks)
	if len(checks) != 2*len(authz.Reasons()) {
		t.Errorf("%s has %d series, want one per reason and mode (%d)", MetricChecks, len(checks), 2*len(authz.Reasons()))
	}
	for _, want := range []string{
		"decision=allow,mode=enforce,reason=allowed,status=200",
		"decision=allow,mode=enforce,reason=allowed_excluded,status=200",
		"decision=deny,mode=enforce,reason=malformed_path,status=400",
		"decision=deny,mode=enforce,reason=missing_credential,status=401",
		"decision=deny,mode=enforce,reason=token_expired,status=401",
		"decision=deny,mode=enforce,reason=invalid_security_key,status=401",
		"decision=deny,mode=enforce,reason=insufficient_scopes,status=403",
		"decision=deny,mode=enforce,reason=no_rule,status=403",
		"decision=deny,mode=enforce,reason=unknown,status=403",
	} {
		if v, ok := checks[want]; !ok || v != 0 {
			t.Errorf("%s{%s} = %v (present %v), want 0", MetricChecks, want, v, ok)
		}
	}
	for _, r := range authz.Reasons() {
		if strings.HasPrefix(r.String(), "reason_") {
			t.Errorf("reason %d has no name: add it to authz's reason names", r)
		}
	}
	if got := len(series(t, reg, MetricJWKSFetches)); got != len(fetchResults()) {
		t.Errorf("%s has %d series, want %d", MetricJWKSFetches, got, len(fetchResults()))
	}
	const wantLoads = `
# HELP agentos_authz_config_loads_total Configuration loads, by result (success, failure).
# TYPE agentos_authz_config_loads_total counter
agentos_authz_config_loads_total{result="failure"} 0
agentos_authz_config_loads_total{result="success"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(wantLoads), MetricConfigLoads); err != nil {
		t.Error(err)
	}
}

// TestMetricsBothTransports: one measured Decider behind the gRPC server
// and the HTTP handler counts the checks of both, with their latency and
// the security-key uses, and creates no series from paths or users.
func TestMetricsBothTransports(t *testing.T) {
	reg, m := newTestMetrics(t)
	before := len(series(t, reg, MetricChecks))
	dec := m.Decider(newKeyAuthorizer(t))
	gs := NewServer(dec)
	hh := NewHTTPHandler(dec, HTTPOptions{})

	type check struct {
		method, path, auth string
	}
	checks := []check{
		{method: "GET", path: "/agents/user-7781/runs?secret=1", auth: "Bearer " + securityKey}, // allowed, security key
		{method: "GET", path: "/agents"},                                       // 401 missing
		{method: "GET", path: "/agents", auth: "Bearer wrong-key"},             // 401 invalid key
		{method: "GET", path: "/a%2Fb", auth: "Bearer " + securityKey},         // 400 path
		{method: "GET", path: "/health"},                                       // allowed, excluded
		{method: "DELETE", path: "/teams/t-99", auth: "Bearer " + securityKey}, // allowed, security key
	}
	for _, c := range checks {
		headers := map[string]string{}
		if c.auth != "" {
			headers["authorization"] = c.auth
		}
		if _, err := gs.Check(t.Context(), envoyRequest(c.method, c.path, headers)); err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequestWithContext(t.Context(), c.method, "http://authz.test/", nil)
		r.RequestURI = c.path
		if c.auth != "" {
			r.Header.Set("Authorization", c.auth)
		}
		serveCheck(t, hh, r)
	}

	got := series(t, reg, MetricChecks)
	want := map[string]float64{
		"decision=allow,mode=enforce,reason=allowed,status=200":             4,
		"decision=deny,mode=enforce,reason=missing_credential,status=401":   2,
		"decision=deny,mode=enforce,reason=invalid_security_key,status=401": 2,
		"decision=deny,mode=enforce,reason=malformed_path,status=400":       2,
		"decision=allow,mode=enforce,reason=allowed_excluded,status=200":    2,
		"decision=deny,mode=enforce,reason=insufficient_scopes,status=403":  0,
		"decision=allow,mode=enforce,reason=allowed_preflight,status=200":   0,
		"decision=deny,mode=enforce,reason=malformed_request,status=400":    0,
		"decision=deny,mode=enforce,reason=invalid_token,status=401":        0,
		"decision=allow,mode=enforce,reason=allowed_unmapped,status=200":    0,
		"decision=allow,mode=enforce,reason=allowed_listing,status=200":     0,
		"decision=deny,mode=enforce,reason=canceled,status=403":             0,
		"decision=deny,mode=enforce,reason=no_rule,status=403":              0,
		"decision=deny,mode=enforce,reason=unknown,status=403":              0,
		"decision=deny,mode=enforce,reason=token_expired,status=401":        0,
		"decision=deny,mode=enforce,reason=invalid_audience,status=401":     0,
		"decision=deny,mode=enforce,reason=invalid_subject,status=401":      0,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s{%s} = %v, want %v", MetricChecks, k, got[k], w)
		}
	}
	if len(got) != before {
		t.Errorf("%s has %d series after the checks, %d before: a label took a request's value", MetricChecks, len(got), before)
	}
	if v := testutil.ToFloat64(m.securityKey); v != 4 {
		t.Errorf("%s = %v, want 4", MetricSecurityKey, v)
	}
	dur := series(t, reg, MetricCheckDuration)
	if dur["decision=allow"] != 6 || dur["decision=deny"] != 6 {
		t.Errorf("%s counts = %v, want 6 allow and 6 deny", MetricCheckDuration, dur)
	}

	// No label anywhere holds a path, a user id, a key or a query.
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	allowedLabels := map[string]bool{labelDecision: true, labelStatus: true, labelReason: true, labelResult: true, labelMode: true}
	for _, f := range fams {
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if !allowedLabels[l.GetName()] {
					t.Errorf("%s has label %q, want only decision, status, reason, result", f.GetName(), l.GetName())
				}
				for _, bad := range []string{"/", "user-7781", "t-99", securityKey, "secret", "wrong-key"} {
					if strings.Contains(l.GetValue(), bad) {
						t.Errorf("%s{%s=%q} holds request data %q", f.GetName(), l.GetName(), l.GetValue(), bad)
					}
				}
			}
		}
	}
}

// TestObserveCheckUnexpectedPair: a reason at a status it does not usually
// carry (or the zero Decision) is still counted, at the status rendered.
func TestObserveCheckUnexpectedPair(t *testing.T) {
	reg, m := newTestMetrics(t)
	m.ObserveCheck(&authz.Decision{}, time.Millisecond)                                          // zero: renders 403
	m.ObserveCheck(&authz.Decision{Status: 401, Reason: authz.ReasonCanceled}, time.Millisecond) // unusual pair
	got := series(t, reg, MetricChecks)
	for k, w := range map[string]float64{
		"decision=deny,mode=enforce,reason=unknown,status=403":  1,
		"decision=deny,mode=enforce,reason=canceled,status=401": 1,
		"decision=deny,mode=enforce,reason=canceled,status=403": 0,
	} {
		if got[k] != w {
			t.Errorf("%s{%s} = %v, want %v", MetricChecks, k, got[k], w)
		}
	}
}

func TestMetricsJWKSAndCache(t *testing.T) {
	reg, m := newTestMetrics(t)
	m.now = func() time.Time { return time.Unix(1_700_000_000, 0) }
	m.Fetch("https://idp.example.com/.well-known/openid-configuration", nil, 0) // discovery
	m.Fetch("https://idp.example.com/jwks", nil, 3)
	m.Fetch("https://idp.example.com/jwks", &authz.JWKSFetchError{URL: "https://idp.example.com/jwks", Fault: authz.FaultTimeout, Err: errors.New("slow")}, 0)
	m.Fetch("https://idp.example.com/jwks", fmt.Errorf("wrapped: %w", &authz.JWKSFetchError{Fault: authz.FaultStatus, Err: errors.New("503")}), 0)
	m.Fetch("https://idp.example.com/jwks", errors.New("something else"), 0)
	m.Fetch("https://idp.example.com/jwks", &authz.JWKSFetchError{Fault: "novel", Err: errors.New("x")}, 0)
	m.RefetchLimited("https://idp.example.com/jwks")
	for range 3 {
		m.CacheHit()
	}
	m.CacheMiss()

	fetches := series(t, reg, MetricJWKSFetches)
	for k, w := range map[string]float64{"result=success": 2, "result=timeout": 1, "result=status": 1, "result=error": 2, "result=network": 0} {
		if fetches[k] != w {
			t.Errorf("%s{%s} = %v, want %v", MetricJWKSFetches, k, fetches[k], w)
		}
	}
	if len(fetches) != len(fetchResults()) {
		t.Errorf("%s has %d series, want %d (an unknown fault must not add one)", MetricJWKSFetches, len(fetches), len(fetchResults()))
	}
	if v := testutil.ToFloat64(m.jwksKeys); v != 3 {
		t.Errorf("%s = %v, want 3", MetricJWKSKeys, v)
	}
	if v := testutil.ToFloat64(m.jwksLoaded); v != 1_700_000_000 {
		t.Errorf("%s = %v, want 1700000000", MetricJWKSLastLoad, v)
	}
	if v := testutil.ToFloat64(m.jwksLimited); v != 1 {
		t.Errorf("%s = %v, want 1", MetricJWKSLimited, v)
	}
	lookups := series(t, reg, MetricCacheLookups)
	if lookups["result=hit"] != 3 || lookups["result=miss"] != 1 {
		t.Errorf("%s = %v, want 3 hits and 1 miss", MetricCacheLookups, lookups)
	}

	entries := 0
	if err := m.TrackCacheSize(func() int { return entries }); err != nil {
		t.Fatal(err)
	}
	entries = 42
	if got := series(t, reg, MetricCacheEntries)[""]; got != 42 {
		t.Errorf("%s = %v, want 42 (read at scrape)", MetricCacheEntries, got)
	}
	if err := m.TrackCacheSize(func() int { return 0 }); err == nil {
		t.Error("TrackCacheSize twice succeeded, want a duplicate registration error")
	}
}

func TestNewMetricsErrors(t *testing.T) {
	if _, err := NewMetrics(nil); err == nil {
		t.Error("NewMetrics(nil) succeeded")
	}
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil || !strings.Contains(err.Error(), "registering metrics") {
		t.Errorf("NewMetrics on the same registry twice = %v, want a registration error", err)
	}
}

// TestObserveCheckNoAllocs: recording a check of a usual (reason, status)
// pair allocates nothing: it runs on every check.
func TestObserveCheckNoAllocs(t *testing.T) {
	_, m := newTestMetrics(t)
	d := authz.Decision{Status: 401, Reason: authz.ReasonMissingCredential}
	if n := testing.AllocsPerRun(100, func() { m.ObserveCheck(&d, time.Microsecond) }); n != 0 {
		t.Errorf("ObserveCheck allocates %v times per call, want 0", n)
	}
}

func BenchmarkMeasuredDecide(b *testing.B) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		b.Fatal(err)
	}
	d := m.Decider(&stubDecider{d: authz.Decision{Status: 200, Reason: authz.ReasonAllowed}})
	r := &authz.Request{Method: "GET", Path: "/agents"}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		sinkDecision = d.Decide(ctx, r)
	}
}

var sinkDecision authz.Decision
