package authz

import (
	"fmt"
	"math"
	"strings"
)

// HTTPConfig is the http: section: how the HTTP ext_authz listener
// (--http-addr, CONTRACT §6) reads a check.
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
	// log rate limit (per message: 100 a second, then 1 in 100) still
	// applies to the lines sampled, as to denials.
	AllowSampleRate float64 `yaml:"allow_sample_rate"`
}

// check validates the section; each problem names its field.
func (l *LogConfig) check() []error {
	r := l.AllowSampleRate
	if math.IsNaN(r) || r < 0 || r > 1 {
		return []error{&FieldError{Field: "log.allow_sample_rate",
			Err: fmt.Errorf("%v must be between 0 and 1 (0: allowed decisions only at debug; 1: every one at info)", r)}}
	}
	return nil
}
