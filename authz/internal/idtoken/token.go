package idtoken

import (
	"math"
	"time"
)

// Token is a signed identity token as a verified-token cache keeps it,
// beside the principal of the caller token it was signed for: the cache's
// key, bounds and expiry rules are the caller token's, and Fresh says when
// this value must be signed again. The zero Token is never fresh.
type Token struct {
	// Value is the compact JWS. It is a credential: never log it.
	Value string
	// exp is the token's exp, in Unix seconds.
	exp int64
	// renew is the first Unix second at which Fresh is false.
	renew int64
}

// Expires is the token's exp.
func (t Token) Expires() time.Time { return time.Unix(t.exp, 0) }

// Fresh reports whether t can still be sent at now rather than a newly
// signed token.
//
// A token whose exp is the caller's own (the caller's token expires within
// the ttl) is fresh for its whole life: signing again gives the same exp.
// Any other token is fresh until Margin(ttl) before its exp, so that the
// upstream always receives a token with at least that much time left.
func (t Token) Fresh(now time.Time) bool {
	if t.Value == "" {
		return false
	}
	return t.renew == math.MaxInt64 || now.Unix() < t.renew
}

// Margin is how long before its exp a token is signed again: a quarter of
// ttl, at least 10 s, at most half of ttl, in whole seconds.
//
//   - 10 s is the clock skew both ends allow by default (jwt.leeway here,
//     the leeway of AgentOS's JWT validator): a token sent with at least
//     that much left is still valid on an upstream whose clock runs up to
//     10 s ahead, with time to spare for a slow request to reach it.
//   - A quarter of the ttl keeps that share of the lifetime as margin for
//     long ttls, and bounds the signing rate to one signature per active
//     caller token every three quarters of the ttl (45 s at the default 60 s).
//   - At most half of the ttl, so that even a very short ttl reuses each
//     token for half its life instead of signing on every request.
func Margin(ttl time.Duration) time.Duration {
	m := max(ttl/4, 10*time.Second)
	m = min(m, ttl/2)
	return m.Truncate(time.Second)
}
