package authz

import (
	"fmt"
	"math"
	"strings"
)

// HTTPConfig is the http: section: how the HTTP ext_authz listener
// (--http-addr, docs/CONTRACT.md §6) reads a check.
type HTTPConfig struct {
	// PathPrefix is Envoy's http_service.path_prefix: Envoy sends the
	// checked path as PathPrefix + path, and the HTTP listener strips it.
	// "" (the default) means no prefix. It applies only to Envoy's HTTP
	// service mode: a path from X-Original-URI (nginx) or X-Forwarded-Uri
	// (Traefik) is the client's own and is never stripped.
	PathPrefix string `yaml:"path_prefix"`
}

// check validates the section; each problem names its field.
func (h *HTTPConfig) check() []error {
	p := h.PathPrefix
	if p == "" {
		return nil
	}
	fail := func(format string, args ...any) []error {
		return []error{&FieldError{Field: "http.path_prefix", Err: fmt.Errorf(format, args...)}}
	}
	switch {
	case p[0] != '/':
		return fail("%q must start with \"/\"", p)
	case len(p) > 1 && p[len(p)-1] == '/':
		// Envoy concatenates: a prefix "/authz/" and the path "/agents"
		// give "/authz//agents"; write the prefix without the slash.
		return fail("%q must not end with \"/\" (Envoy adds the path, which starts with one)", p)
	case p == "/":
		return fail(`"/" is no prefix: leave path_prefix empty`)
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c <= ' ' || c == 0x7f || c == '?' || c == '#' || c == '%' || c == '\\' {
			return fail("%q holds %q: a prefix is plain path characters", p, string(c))
		}
	}
	if strings.Contains(p, "//") || strings.Contains(p+"/", "/./") || strings.Contains(p+"/", "/../") {
		return fail("%q must not hold empty, \".\" or \"..\" segments", p)
	}
	return nil
}

// LogConfig is the log: section: decision logging.
type LogConfig struct {
	// AllowSampleRate is the share of allowed decisions logged at info
	// ("check allowed"), from 0 to 1. Denials are always logged at info;
	// allowed decisions not sampled are logged at debug (--log-level
	// debug shows them all). 0, the default, logs no allowed decision at
	// info: on a busy proxy they would outnumber everything else. The
	// sampling is deterministic (every 1/rate-th allowed decision), so a
	// rate of 0.01 logs exactly one allowed check in a hundred; the rate is
	// kept in millionths (below 0.0000005 it rounds to 0). The service's
	// log sampler for repeated messages (per message: 100 a second, then 1
	// in 100) still applies to the allowed lines sampled; denial lines
	// have their own explicit limit (DenialsPerSecond).
	AllowSampleRate float64 `yaml:"allow_sample_rate"`
	// DenialsPerSecond and DenialBurst bound the denial log lines ("check
	// denied", one per denial at info) against floods: a token bucket of
	// DenialBurst lines refilled at DenialsPerSecond. Lines over the limit
	// are counted, never silently dropped: a "denial log lines
	// suppressed" line with the count follows within 10 seconds. Every
	// denial is still counted in agentos_authz_checks_total. 0 lines a
	// second logs every denial (no limit).
	DenialsPerSecond float64 `yaml:"denials_per_second"`
	DenialBurst      int     `yaml:"denial_burst"`
}

// Defaults of the denial-line limit (log.denials_per_second,
// log.denial_burst): bursts of a thousand denials are logged in full; a
// sustained flood costs at most a hundred lines a second.
const (
	DefaultDenialsPerSecond = 100
	DefaultDenialBurst      = 1000
)

// check validates the section; each problem names its field.
func (l *LogConfig) check() []error {
	r := l.AllowSampleRate
	var errs []error
	if math.IsNaN(r) || r < 0 || r > 1 {
		errs = append(errs, &FieldError{Field: "log.allow_sample_rate",
			Err: fmt.Errorf("%v must be between 0 and 1 (0: allowed decisions only at debug; 1: every one at info)", r)})
	}
	if d := l.DenialsPerSecond; math.IsNaN(d) || math.IsInf(d, 0) || d < 0 {
		errs = append(errs, &FieldError{Field: "log.denials_per_second",
			Err: fmt.Errorf("%v must be a number of lines a second, 0 or more (0: no limit)", d)})
	}
	if l.DenialsPerSecond > 0 && l.DenialBurst < 1 {
		errs = append(errs, &FieldError{Field: "log.denial_burst",
			Err: fmt.Errorf("%d must be 1 or more with a denial rate limit", l.DenialBurst)})
	}
	return errs
}
