package envoy

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics of live reload (docs/CONTRACT.md §4; README "Reload").
const (
	MetricConfigLastReload = "agentos_authz_config_last_reload_success_timestamp_seconds"
	MetricConfigCurrent    = "agentos_authz_config_current"
)

// ReloadMetrics are the gauges of live reload: when the last reload
// succeeded, and whether the running configuration is what the files say
// now (0 after a failed reload: the service runs an older snapshot).
type ReloadMetrics struct {
	last    prometheus.Gauge
	current prometheus.Gauge
}

// NewReloadMetrics registers the reload gauges with reg.
func NewReloadMetrics(reg prometheus.Registerer) (*ReloadMetrics, error) {
	r := &ReloadMetrics{
		last: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricConfigLastReload,
			Help: "Unix time of the last successful configuration load or reload.",
		}),
		current: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricConfigCurrent,
			Help: "1 when the running configuration is the current content of its files, 0 when a reload failed and an older one runs.",
		}),
	}
	for _, c := range []prometheus.Collector{r.last, r.current} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("envoy: registering reload metrics: %w", err)
		}
	}
	return r, nil
}

// Loaded records a load or reload at unix time now: success sets the
// timestamp; current says whether the running configuration matches the
// files.
func (r *ReloadMetrics) Loaded(success bool, now float64) {
	if success {
		r.last.Set(now)
		r.current.Set(1)
		return
	}
	r.current.Set(0)
}
