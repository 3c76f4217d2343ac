package authz

import (
	"strconv"
	"unicode/utf8"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Bounds of the request-supplied values a decision log line carries: a
// client picks them, so a 3 MB path must not become a 3 MB log line.
const (
	// logPathMax bounds the logged path (1 KiB).
	logPathMax = 1 << 10
	// logMethodMax bounds the logged method (HTTP mode reads it from a
	// header; a real method is a short token).
	logMethodMax = 64
	// logRequestIDMax bounds the logged x-request-id (Envoy's are UUIDs).
	logRequestIDMax = 128
)

// truncateForLog returns s when it is at most limit bytes long; otherwise
// its first limit bytes (fewer, to end on a whole UTF-8 character), marked
// with the original length, e.g. "/agents/aaaa…(truncated, 3145728 bytes)".
func truncateForLog(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	cut := limit
	for i := 0; i < utf8.UTFMax && cut > 0 && !utf8.RuneStart(s[cut]); i++ {
		cut--
	}
	return s[:cut] + "…(truncated, " + strconv.Itoa(len(s)) + " bytes)"
}

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
// request_id (the x-request-id correlation id, the one header value
// logged), transport (grpc or http), token_problem (a closed set, on
// token denials) and mode (shadow, on decisions shadow mode let through).
// Never another header value, a token, a key or a claim other
// than the user id. path is the normalised path, or "" when the request was
// denied before normalisation succeeded; the raw path is then logged
// without its query. The values a client chooses are bounded: the path to
// logPathMax, the method and request id shorter still, each marked with
// its full length when cut (truncateForLog).
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
		method, transport = truncateForLog(r.Method, logMethodMax), r.Transport
		requestID = truncateForLog(r.Headers["x-request-id"], logRequestIDMax)
		if path == "" {
			path = withoutQuery(r.Path)
		}
	}
	path = truncateForLog(path, logPathMax)
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
