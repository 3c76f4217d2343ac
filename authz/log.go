package authz

import (
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Decision log messages: constants, so that zap's sampler (which keys on
// the message) groups them.
const (
	msgDenied  = "check denied"
	msgAllowed = "check allowed"
)

// logDecision writes the decision's one log line: denials at info, allows
// at debug, or at info when sampleRate > 0 (log.allow_sample_rate picked
// this one; the line then carries sample_rate, so counts can be scaled
// back). The fields are an allowlist:
// reason, status, method, path (never the query), rule, user_id,
// request_id, transport (grpc or http), token_problem (a closed set, on
// token denials) and mode (shadow, on decisions shadow mode let through).
// Never a header value, a token, a key or a claim other than
// the user id. path is the normalised path, or "" when the request was
// denied before normalisation succeeded; the raw path is then logged
// without its query.
func logDecision(log *zap.Logger, r *Request, path string, d *Decision, sampleRate float64) {
	level, msg := zapcore.InfoLevel, msgDenied
	if d.Allowed() {
		level, msg = zapcore.DebugLevel, msgAllowed
		if sampleRate > 0 {
			level = zapcore.InfoLevel
		}
	}
	ce := log.Check(level, msg)
	if ce == nil {
		return
	}
	var method, requestID, transport string
	if r != nil {
		method, transport = r.Method, r.Transport
		requestID = r.Headers["x-request-id"]
		if path == "" {
			path = withoutQuery(r.Path)
		}
	}
	fields := [11]zap.Field{
		zap.Stringer("reason", d.Reason),
		zap.Int("status", d.Status),
		zap.String("method", method),
		zap.String("path", path),
		zap.String("rule", d.Rule),
		zap.String("user_id", d.UserID),
		zap.String("request_id", requestID),
	}
	n := 7
	if transport != "" { // "" outside the service (the check command)
		fields[n] = zap.String("transport", transport)
		n++
	}
	if d.TokenProblem != "" {
		fields[n] = zap.String("token_problem", string(d.TokenProblem))
		n++
	}
	if d.Shadow {
		// Shadow mode: this decision was reported, not enforced.
		fields[n] = zap.String("mode", ModeShadow)
		n++
	}
	if d.Allowed() && sampleRate > 0 {
		fields[n] = zap.Float64("sample_rate", sampleRate)
		n++
	}
	ce.Write(fields[:n]...)
}

// ppm is one million: log.allow_sample_rate is kept in millionths so that
// sampling is exact integer arithmetic.
const ppm = 1_000_000

// samplePPM is allow_sample_rate in millionths, rounded (a validated
// rate is within [0, 1]).
func (l *LogConfig) samplePPM() uint64 {
	r := l.AllowSampleRate
	if !(r > 0) {
		return 0
	}
	return uint64(min(r, 1)*ppm + 0.5)
}

// sampleAllowed returns the sample rate when d is an allowed decision whose
// log line log.allow_sample_rate selects for info, else 0. The k-th allowed
// decision is selected when floor(k*rate) grows, so exactly rate of them
// are, evenly spread, with no randomness and one atomic add (none at all
// when the rate is 0, the default).
func (a *Authorizer) sampleAllowed(s *snapshot, d *Decision) float64 {
	if s == nil || s.allowSample == 0 || !d.Allowed() {
		return 0
	}
	k := a.allowed.Add(1)
	// floor(k*rate) grew iff (k*rate mod 1) < rate; k is reduced first so
	// the product never overflows.
	if (k%ppm)*s.allowSample%ppm >= s.allowSample {
		return 0
	}
	return float64(s.allowSample) / ppm
}

// withoutQuery cuts the query and fragment off a raw request target.
func withoutQuery(p string) string {
	for i := 0; i < len(p); i++ {
		if p[i] == '?' || p[i] == '#' {
			return p[:i]
		}
	}
	return p
}
