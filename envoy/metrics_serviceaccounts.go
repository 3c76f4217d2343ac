package envoy

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentos-authz/agentos-authz/authz/serviceaccount"
)

// Service-account metrics (docs/CONTRACT.md §8), registered only when
// service accounts are configured.
const (
	MetricSALookups        = "agentos_authz_service_account_lookups_total"
	MetricSALookupDuration = "agentos_authz_service_account_lookup_duration_seconds"
	MetricSADatabaseUp     = "agentos_authz_service_account_database_up"
)

// saObserver exports what the service-account authenticator and its store
// report. Every method is one atomic operation on a pre-resolved series.
type saObserver struct {
	results  [serviceaccount.KindThrottled + 1]prometheus.Counter
	duration prometheus.Observer
	up       prometheus.Gauge
}

var _ serviceaccount.Observer = (*saObserver)(nil)

// ServiceAccountObserver registers the service-account metrics on m's
// registry and returns the observer to hand to serviceaccount.Open and
// NewAuthenticator: lookups by result (ok, cached, invalid, throttled,
// error), the latency of each database query, and whether the database
// answered the last one (1) or not (0). Call it once.
func (m *Metrics) ServiceAccountObserver() (serviceaccount.Observer, error) {
	lookups := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricSALookups,
		Help: "Service-account token verifications, by result (ok, cached, invalid, throttled, error).",
	}, []string{labelResult})
	duration := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    MetricSALookupDuration,
		Help:    "Time of one query to the service-account database (a lookup or a ping).",
		Buckets: checkBuckets(),
	})
	up := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: MetricSADatabaseUp,
		Help: "1 when the service-account database answered the last query, else 0 (service-account tokens then get 503).",
	})
	for _, c := range []prometheus.Collector{lookups, duration, up} {
		if err := m.reg.Register(c); err != nil {
			return nil, fmt.Errorf("envoy: registering service-account metrics: %w", err)
		}
	}
	o := &saObserver{duration: duration, up: up}
	for k := serviceaccount.KindError; k <= serviceaccount.KindThrottled; k++ {
		o.results[k] = lookups.WithLabelValues(k.String())
	}
	return o, nil
}

// ObserveQuery records one database query.
func (o *saObserver) ObserveQuery(elapsed time.Duration, up bool) {
	o.duration.Observe(elapsed.Seconds())
	if up {
		o.up.Set(1)
	} else {
		o.up.Set(0)
	}
}

// ObserveResult counts one verification by its result.
func (o *saObserver) ObserveResult(k serviceaccount.Kind) {
	if int(k) < len(o.results) {
		o.results[k].Inc()
	}
}
