package envoy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentos-authz/agentos-authz/authz"
)

// Metric names (Prometheus conventions: the agentos_authz_ namespace, base
// units, _total on counters). Every label value comes from a closed set: a
// path, a user id or a header value is never a label.
const (
	MetricChecks        = "agentos_authz_checks_total"
	MetricCheckDuration = "agentos_authz_check_duration_seconds"
	MetricSecurityKey   = "agentos_authz_security_key_uses_total"
	MetricConfigLoads   = "agentos_authz_config_loads_total"
	MetricJWKSFetches   = "agentos_authz_jwks_fetches_total"
	MetricJWKSKeys      = "agentos_authz_jwks_keys"
	MetricJWKSLastLoad  = "agentos_authz_jwks_last_success_timestamp_seconds"
	MetricJWKSLimited   = "agentos_authz_jwks_refetches_limited_total"
	MetricCacheLookups  = "agentos_authz_token_cache_lookups_total"
	MetricCacheEntries  = "agentos_authz_token_cache_entries"
	resultHit           = "hit"
	resultMiss          = "miss"
	resultError         = "error"
	decisionAllow       = "allow"
	decisionDeny        = "deny"
	resultSuccess       = "success"
	resultFailure       = "failure"
	labelDecision       = "decision"
	labelStatus         = "status"
	labelReason         = "reason"
	labelResult         = "result"
	// labelMode is how the decision was applied: enforce, or shadow
	// (reported, let through: authz.Decision.Shadow).
	labelMode = "mode"
)

// checkBuckets are the latency buckets of a check, from 10µs (a denial
// before any credential) to 2.5s (a JWKS refetch on a kid miss).
func checkBuckets() []float64 {
	return []float64{
		10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
		1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3,
		100e-3, 250e-3, 500e-3, 1, 2.5,
	}
}

// Metrics are the service's Prometheus metrics. They are registered on the
// Registerer given to NewMetrics (never the global one) and are safe for
// concurrent use.
type Metrics struct {
	checks      *prometheus.CounterVec   // decision, status, reason, mode
	duration    *prometheus.HistogramVec // decision
	securityKey prometheus.Counter
	configLoads *prometheus.CounterVec // result
	jwksFetches *prometheus.CounterVec // result: success or a fetch fault
	jwksKeys    prometheus.Gauge
	jwksLoaded  prometheus.Gauge
	jwksLimited prometheus.Counter
	cacheHit    prometheus.Counter
	cacheMiss   prometheus.Counter
	reg         prometheus.Registerer

	// byReason caches the counter of each reason at its usual status, so
	// recording a check does no label lookup.
	byReason [reasonSlots]reasonCounter
	allowDur prometheus.Observer
	denyDur  prometheus.Observer

	now func() time.Time
}

// reasonSlots bounds the reasons cached in Metrics.byReason; a Reason past
// it (added to authz later) is still counted, through a label lookup.
const reasonSlots = 64

type reasonCounter struct {
	status  int
	counter prometheus.Counter
}

// NewMetrics creates the metrics and registers them on reg. Every
// (decision, status, reason) series a decision can produce starts at 0, so
// rates and alerts work before the first occurrence.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("envoy: NewMetrics needs a Registerer")
	}
	m := &Metrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricChecks,
			Help: "Authorization checks answered (gRPC and HTTP), by decision (allow, deny), HTTP status, reason and mode (enforce; shadow: the decision was reported, the request let through).",
		}, []string{labelDecision, labelStatus, labelReason, labelMode}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricCheckDuration,
			Help:    "Time to decide one authorization check, by decision (allow, deny).",
			Buckets: checkBuckets(),
		}, []string{labelDecision}),
		securityKey: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricSecurityKey,
			Help: "Checks authenticated with the deprecated static security key (OS_SECURITY_KEY); migrate them to JWTs.",
		}),
		configLoads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricConfigLoads,
			Help: "Configuration loads, by result (success, failure).",
		}, []string{labelResult}),
		jwksFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricJWKSFetches,
			Help: "Fetches of the JWKS URL and of the OIDC discovery document, by result (success, or the fault: timeout, network, status, too_large, malformed, refused, canceled, error).",
		}, []string{labelResult}),
		jwksKeys: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricJWKSKeys,
			Help: "Usable keys in the JWKS last fetched from the JWKS URL.",
		}),
		jwksLoaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricJWKSLastLoad,
			Help: "Unix time of the last successful JWKS fetch (0: none yet); alert when it grows old.",
		}),
		jwksLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricJWKSLimited,
			Help: "JWKS refetches on an unknown kid refused by the rate limit (one per 10s per URL).",
		}),
		now: time.Now,
		reg: reg,
	}
	lookups := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricCacheLookups,
		Help: "Verified-token cache lookups, by result (hit, miss).",
	}, []string{labelResult})
	m.cacheHit = lookups.WithLabelValues(resultHit)
	m.cacheMiss = lookups.WithLabelValues(resultMiss)
	for _, c := range []prometheus.Collector{m.checks, m.duration, m.securityKey, m.configLoads,
		m.jwksFetches, m.jwksKeys, m.jwksLoaded, m.jwksLimited, lookups} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("envoy: registering metrics: %w", err)
		}
	}
	for _, r := range authz.Reasons() {
		status := r.Status()
		c := m.checks.WithLabelValues(decisionLabel(status), strconv.Itoa(status), r.String(), authz.ModeEnforce)
		m.checks.WithLabelValues(decisionLabel(status), strconv.Itoa(status), r.String(), authz.ModeShadow)
		if int(r) < reasonSlots {
			m.byReason[r] = reasonCounter{status: status, counter: c}
		}
	}
	m.allowDur = m.duration.WithLabelValues(decisionAllow)
	m.denyDur = m.duration.WithLabelValues(decisionDeny)
	for _, res := range []string{resultSuccess, resultFailure} {
		m.configLoads.WithLabelValues(res)
	}
	for _, res := range fetchResults() {
		m.jwksFetches.WithLabelValues(res)
	}
	return m, nil
}

// fetchResults are the label values of agentos_authz_jwks_fetches_total.
func fetchResults() []string {
	return []string{resultSuccess,
		string(authz.FaultTimeout), string(authz.FaultNetwork), string(authz.FaultStatus), string(authz.FaultTooLarge),
		string(authz.FaultMalformed), string(authz.FaultRefused), string(authz.FaultCanceled), resultError}
}

func decisionLabel(status int) string {
	if status == http.StatusOK {
		return decisionAllow
	}
	return decisionDeny
}

// renderedStatus is the HTTP status the adapters send for d: 200 on
// allow, else httpStatus's (403 for the zero Decision).
func renderedStatus(d *authz.Decision) int {
	if d.Allowed() {
		return http.StatusOK
	}
	return httpStatus(d.Status)
}

// ObserveCheck records one decided check: its series in
// agentos_authz_checks_total, its latency, and a use of the security key.
func (m *Metrics) ObserveCheck(d *authz.Decision, elapsed time.Duration) {
	status := renderedStatus(d)
	switch {
	case d.Shadow:
		// Counted as the decision enforce mode would have made.
		m.checks.WithLabelValues(decisionLabel(status), strconv.Itoa(status), d.Reason.String(), authz.ModeShadow).Inc()
	case int(d.Reason) < reasonSlots && m.byReason[d.Reason].counter != nil && m.byReason[d.Reason].status == status:
		m.byReason[d.Reason].counter.Inc()
	default:
		m.checks.WithLabelValues(decisionLabel(status), strconv.Itoa(status), d.Reason.String(), authz.ModeEnforce).Inc()
	}
	if status == http.StatusOK {
		m.allowDur.Observe(elapsed.Seconds())
	} else {
		m.denyDur.Observe(elapsed.Seconds())
	}
	if d.Auth == authz.AuthSecurityKey {
		m.securityKey.Inc()
	}
}

// ConfigLoaded counts one configuration load: success when err is nil.
func (m *Metrics) ConfigLoaded(err error) {
	res := resultSuccess
	if err != nil {
		res = resultFailure
	}
	m.configLoads.WithLabelValues(res).Inc()
}

// Metrics count the JWKS fetches and the verified-token cache lookups.
var _ authz.JWKSObserver = (*Metrics)(nil)

// Fetch counts one JWKS (or OIDC discovery) fetch by result: success, the
// *authz.JWKSFetchError's fault, or error for any other failure. The URL
// is not a label. A successful fetch of keys (keys > 0; a discovery
// document has none) sets the key count and the last-success time.
func (m *Metrics) Fetch(_ string, err error, keys int) {
	if err == nil {
		m.jwksFetches.WithLabelValues(resultSuccess).Inc()
		if keys > 0 {
			m.jwksKeys.Set(float64(keys))
			m.jwksLoaded.Set(float64(m.now().UnixNano()) / 1e9)
		}
		return
	}
	res := resultError
	var fe *authz.JWKSFetchError
	if errors.As(err, &fe) {
		for _, known := range fetchResults() {
			if string(fe.Fault) == known {
				res = known
			}
		}
	}
	m.jwksFetches.WithLabelValues(res).Inc()
}

// RefetchLimited counts a kid-miss refetch refused by the rate limit.
func (m *Metrics) RefetchLimited(string) { m.jwksLimited.Inc() }

// CacheHit counts a verified-token cache hit (one atomic add).
func (m *Metrics) CacheHit() { m.cacheHit.Inc() }

// CacheMiss counts a verified-token cache miss (one atomic add).
func (m *Metrics) CacheMiss() { m.cacheMiss.Inc() }

// TrackCacheSize exports entries(), read at each scrape, as
// agentos_authz_token_cache_entries. entries must be safe for concurrent
// use. Call it once.
func (m *Metrics) TrackCacheSize(entries func() int) error {
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: MetricCacheEntries,
		Help: "Entries in the verified-token cache.",
	}, func() float64 { return float64(entries()) })
	if err := m.reg.Register(g); err != nil {
		return fmt.Errorf("envoy: registering %s: %w", MetricCacheEntries, err)
	}
	return nil
}

// Decider wraps d so that every decision is recorded (ObserveCheck), in
// one place for the gRPC and the HTTP listener alike.
func (m *Metrics) Decider(d Decider) Decider {
	return &measured{next: d, m: m}
}

// measured is a Decider that records what its next Decider decides.
type measured struct {
	next Decider
	m    *Metrics
}

var _ Decider = (*measured)(nil)

func (x *measured) Decide(ctx context.Context, r *authz.Request) authz.Decision {
	start := x.m.now()
	d := x.next.Decide(ctx, r)
	x.m.ObserveCheck(&d, x.m.now().Sub(start))
	return d
}
