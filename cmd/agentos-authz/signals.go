package main

import (
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/agentos-authz/agentos-authz/authz"
	"github.com/agentos-authz/agentos-authz/envoy"
)

// Operators' signals: the Prometheus registry behind /metrics, and the
// HTTP ext_authz listener's gate.

// newMetrics builds this process's registry (never the global one): the
// Go runtime and process collectors and the service's own metrics.
func newMetrics() (*prometheus.Registry, *envoy.Metrics, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfoGauge(readBuild()),
	} {
		if err := reg.Register(c); err != nil {
			return nil, nil, fmt.Errorf("metrics: %w", err)
		}
	}
	m, err := envoy.NewMetrics(reg)
	if err != nil {
		return nil, nil, err
	}
	return reg, m, nil
}

// metricsHandler serves reg at /metrics; gathering errors are logged and
// the series that could be gathered are still served.
func metricsHandler(reg *prometheus.Registry, log *zap.Logger) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      zap.NewStdLog(log.Named("metrics")),
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      reg,
	})
}

// httpGate is the HTTP ext_authz listener's handler: 503 until the
// authorizer is ready (a 5xx is an error to Envoy, nginx and Traefik alike,
// so they deny; never an allow), then the envoy HTTP handler. Once set, it
// stays: while draining, in-flight and late checks are still answered.
type httpGate struct {
	h atomic.Pointer[http.Handler]
}

func (g *httpGate) set(h http.Handler) { g.h.Store(&h) }

func (g *httpGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := g.h.Load()
	if h == nil {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		// docs/CONTRACT.md §5: the 503 of keys not loaded yet.
		_, _ = w.Write([]byte(`{"detail": "` + authz.DetailUnavailable + `"}`))
		return
	}
	(*h).ServeHTTP(w, r)
}
