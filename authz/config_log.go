package authz

import (
	"fmt"
	"math"
)

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
