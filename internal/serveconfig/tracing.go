package serveconfig

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strings"

	"github.com/agentos-authz/agentos-authz/authz"
)

// TracingConfig is the tracing: section: OpenTelemetry spans, one per
// check, exported over OTLP gRPC (README, "Tracing"). It is not part of
// docs/CONTRACT.md §4; an empty OTLPEndpoint (the default) turns tracing
// off entirely.
type TracingConfig struct {
	// OTLPEndpoint is the OTLP gRPC collector as host:port (no scheme),
	// e.g. otel-collector.observability:4317. "" disables tracing.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// SampleRatio is the share of traces started here that are recorded,
	// from 0 to 1 (nil: 1). A check that carries the caller's W3C
	// traceparent follows the caller's sampling decision instead.
	SampleRatio *float64 `yaml:"sample_ratio"`
	// Insecure sends spans to the collector in plaintext; by default the
	// connection uses TLS verified against the system roots.
	Insecure bool `yaml:"insecure"`
}

// DefaultSampleRatio is tracing.sample_ratio when unset: every trace
// started here is recorded (OpenTelemetry's own default).
const DefaultSampleRatio = 1.0

// Enabled reports whether spans are exported.
func (t *TracingConfig) Enabled() bool { return t.OTLPEndpoint != "" }

// Ratio is SampleRatio with its default.
func (t *TracingConfig) Ratio() float64 {
	if t.SampleRatio == nil {
		return DefaultSampleRatio
	}
	return *t.SampleRatio
}

// check validates the section; each problem names its field.
func (t *TracingConfig) check() []error {
	var errs []error
	if r := t.SampleRatio; r != nil && (math.IsNaN(*r) || *r < 0 || *r > 1) {
		errs = append(errs, &authz.FieldError{Field: "tracing.sample_ratio",
			Err: fmt.Errorf("%v must be between 0 and 1", *r)})
	}
	if t.OTLPEndpoint == "" {
		if t.SampleRatio != nil || t.Insecure {
			errs = append(errs, &authz.FieldError{Field: "tracing.otlp_endpoint",
				Err: errors.New("is empty, so tracing is off: set it (host:port of an OTLP gRPC collector) or drop the tracing section")})
		}
		return errs
	}
	if strings.Contains(t.OTLPEndpoint, "://") {
		errs = append(errs, &authz.FieldError{Field: "tracing.otlp_endpoint",
			Err: fmt.Errorf("%q must be host:port without a scheme (tracing.insecure chooses plaintext)", t.OTLPEndpoint)})
		return errs
	}
	if host, port, err := net.SplitHostPort(t.OTLPEndpoint); err != nil || host == "" || port == "" {
		errs = append(errs, &authz.FieldError{Field: "tracing.otlp_endpoint",
			Err: fmt.Errorf("%q is not host:port", t.OTLPEndpoint)})
	}
	return errs
}
