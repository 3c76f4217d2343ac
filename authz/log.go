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
// at debug (CONTRACT: issue 3 logging). The fields are an allowlist:
// reason, status, method, path (never the query), rule, user_id and
// request_id. Never a header value, a token, a key or a claim other than
// the user id. path is the normalised path, or "" when the request was
// denied before normalisation succeeded; the raw path is then logged
// without its query.
func logDecision(log *zap.Logger, r *Request, path string, d *Decision) {
	level, msg := zapcore.InfoLevel, msgDenied
	if d.Allowed() {
		level, msg = zapcore.DebugLevel, msgAllowed
	}
	ce := log.Check(level, msg)
	if ce == nil {
		return
	}
	var method, requestID string
	if r != nil {
		method = r.Method
		requestID = r.Headers["x-request-id"]
		if path == "" {
			path = withoutQuery(r.Path)
		}
	}
	ce.Write(
		zap.Stringer("reason", d.Reason),
		zap.Int("status", d.Status),
		zap.String("method", method),
		zap.String("path", path),
		zap.String("rule", d.Rule),
		zap.String("user_id", d.UserID),
		zap.String("request_id", requestID),
	)
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
