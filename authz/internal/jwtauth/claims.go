package jwtauth

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lestrrat-go/jwx/v2/jwt"
)

// This file owns claim validation: the times (jwt.Validate's rules), the
// issuer and audience, and the identity claims read from the payload.

// validate decodes and checks the claims of a verified (or, with
// validate: false, merely decoded) payload.
//
// The payload is indexed once, into raw claims on the stack, and only the
// claims we use are read from it: jwx's own token decoding (a streaming
// decoder that also decodes every private claim into interface values)
// cost more than the RS256 signature check. exp, nbf, iat and iss are
// checked here with jwt.Validate's rules (see checkTimes), on the values
// already read, rather than by building a jwt.Token for it.
//
// st is filled for VerifySettled: a failure found before the time checks
// depends on the payload and the configuration alone; one of the time
// checks is settled only when the token expired (time runs one way: an
// nbf or iat in the future passes later); one found after them holds
// until the token expires, when the time checks fail first.
func (v *Verifier) validate(payload []byte, st *Settled) (Identity, time.Time, *Failure) {
	*st = Settled{OK: true}
	var buf [claimsBuf]rawClaim
	claims, ok := scanClaims(buf[:0], payload)
	if !ok {
		return Identity{}, time.Time{}, invalid(CauseMalformed, "malformed claims")
	}

	exp, hasExp, f := dateClaim(claims, jwt.ExpirationKey)
	if f != nil {
		return Identity{}, time.Time{}, f
	}
	nbf, _, f := dateClaim(claims, jwt.NotBeforeKey)
	if f != nil {
		return Identity{}, time.Time{}, f
	}
	iat, _, f := dateClaim(claims, jwt.IssuedAtKey)
	if f != nil {
		return Identity{}, time.Time{}, f
	}
	issRaw, hasIss := claims.get(jwt.IssuerKey)
	// docs/CONTRACT.md §5: iss, sub, session_id and jti, when present, are
	// strings, whichever claims carry the identity.
	// (The configured user and session id claims are read, with their own
	// messages, by stringClaim below.)
	for _, name := range [...]string{jwt.IssuerKey, jwt.SubjectKey, "session_id", jwt.JwtIDKey} {
		if name == v.claims.UserID || name == v.claims.SessionID {
			continue
		}
		if raw, ok := claims.get(name); ok && (len(raw) == 0 || raw[0] != '"') {
			return Identity{}, time.Time{}, invalid(CauseClaims, name+" claim is not a string")
		}
	}
	// jwx treats exp 0 as "no exp"; for us it is a token that expired in
	// 1970, like any exp before it.
	if hasExp && exp.Unix() <= 0 {
		return Identity{}, time.Time{}, failExpired
	}
	audRaw, _ := claims.get(v.claims.Audience)
	hasAud, audOK, audMatch := audienceClaim(audRaw, v.audience)
	if !audOK {
		// docs/CONTRACT.md §5: an empty or non-string aud is an invalid token.
		return Identity{}, time.Time{}, invalid(CauseAudience, "malformed audience claim")
	}
	if f := v.checkTimes(exp, nbf, iat); f != nil {
		st.OK = f == failExpired
		return Identity{}, time.Time{}, f
	}
	if hasExp {
		st.Until = exp.Add(v.leeway)
	}
	if v.requireExp && !hasExp {
		return Identity{}, time.Time{}, invalid(CauseMissingExp, "token has no expiry (exp)")
	}
	if v.issuer != "" && (!hasIss || !jsonStringIs(issRaw, v.issuer)) {
		return Identity{}, time.Time{}, invalid(CauseIssuer, "issuer missing or not accepted")
	}
	if v.verifyAud {
		if !hasAud {
			return Identity{}, time.Time{}, invalid(CauseAudience, "missing audience claim")
		}
		if !audMatch {
			return Identity{}, time.Time{}, failWrongAudience
		}
	}

	var id Identity
	text := payloadText{b: payload}
	if id.UserID, f = stringClaim(claims, &text, v.claims.UserID, "user id"); f != nil {
		return Identity{}, time.Time{}, f
	}
	if reservedSubject(id.UserID) {
		return Identity{}, time.Time{}, failReservedSubject
	}
	if id.SessionID, f = stringClaim(claims, &text, v.claims.SessionID, "session id"); f != nil {
		return Identity{}, time.Time{}, f
	}
	if c := claims.find(v.claims.Scopes); c != nil {
		id.Scopes = scopeList(c, &text)
	}
	if len(v.forward) > 0 {
		id.Forward = v.forwardHeaders(claims)
	}
	if hasExp {
		id.Expires = exp
	}
	// jwx ignores an nbf or iat of 0, as it does exp.
	var from time.Time
	for _, t := range [...]time.Time{nbf, iat} {
		if t.Unix() != 0 && t.After(from) {
			from = t
		}
	}
	return id, from, nil
}

// dateClaim reads the time claim name: absent gives the zero time (as a
// jwt.Token's Expiration, NotBefore and IssuedAt do), anything but a
// NumericDate is an invalid token.
func dateClaim(claims rawClaims, name string) (time.Time, bool, *Failure) {
	raw, ok := claims.get(name)
	if !ok {
		return time.Time{}, false, nil
	}
	t, ok := numericDate(raw)
	if !ok {
		return time.Time{}, false, invalid(CauseClaims, name+" claim is not a date")
	}
	return t, true, nil
}

// checkTimes applies jwt.Validate's default validators, in its order (iat,
// exp, nbf), with its rules: jwt.WithClock(v.clock),
// jwt.WithAcceptableSkew(v.leeway) and the default one-second truncation;
// a zero time or one at the epoch is not checked. The dates are whole
// seconds already (numericDate), so only the clock needs truncating.
func (v *Verifier) checkTimes(exp, nbf, iat time.Time) *Failure {
	unset := func(t time.Time) bool { return t.IsZero() || t.Unix() == 0 }
	if unset(exp) && unset(nbf) && unset(iat) {
		return nil
	}
	now := v.clock().Truncate(time.Second)
	if !unset(iat) && now.Before(iat.Add(-v.leeway)) {
		return invalid(CauseNotYetValid, "token is issued in the future (iat)")
	}
	if !unset(exp) && !now.Before(exp.Add(v.leeway)) {
		return failExpired
	}
	if !unset(nbf) && now.Before(nbf.Add(-v.leeway)) {
		return invalid(CauseNotYetValid, "token is not valid yet (nbf)")
	}
	return nil
}

// NumericDate bounds (RFC 7519 §2): years 1 to 9999.
const (
	minNumericDate = -62135596800
	maxNumericDate = 253402300799
)

// numericDate reads a JSON number of seconds since the epoch (the fraction
// is dropped, as jwx does). Strings, null and out-of-range values are not
// dates.
func numericDate(raw []byte) (time.Time, bool) {
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return time.Time{}, false
	}
	// Fast path: an integer of up to 15 digits, which a float64 holds
	// exactly, so this is what ParseFloat and int64 below would give.
	if n, ok := smallInt(raw); ok {
		if n < minNumericDate || n > maxNumericDate {
			return time.Time{}, false
		}
		return time.Unix(n, 0).UTC(), true
	}
	// raw is a valid JSON number (scanClaims checked it), which ParseFloat
	// reads exactly.
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f < minNumericDate || f > maxNumericDate {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0).UTC(), true
}

// smallInt reads raw as -?[0-9]{1,15}; ok is false for anything else.
func smallInt(raw []byte) (int64, bool) {
	digits := raw
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 15 {
		return 0, false
	}
	n := int64(0)
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if raw[0] == '-' {
		n = -n
	}
	return n, true
}

// audienceClaim reads the audience claim, a non-empty string or a
// non-empty list of non-empty strings, and matches it against want. ok is
// false for any other value (null included); present is false when the
// claim is absent; match is whether an audience of the claim is in want.
func audienceClaim(raw []byte, want []string) (present, ok, match bool) {
	if raw == nil {
		return false, true, false
	}
	if raw[0] == '"' {
		// scanClaims checked the string; it is empty only as "".
		return true, len(raw) > 2, audienceIn(raw, want)
	}
	n, bad := 0, false
	isArray := arrayElems(raw, func(e []byte, _ int) {
		if e[0] != '"' || len(e) <= 2 {
			bad = true
			return
		}
		n++
		if !match && audienceIn(e, want) {
			match = true
		}
	})
	return true, isArray && !bad && n > 0, match
}

// audienceIn reports whether the JSON string raw is one of want.
func audienceIn(raw []byte, want []string) bool {
	for _, w := range want {
		if jsonStringIs(raw, w) {
			return true
		}
	}
	return false
}

// jsonStringIs reports whether raw, a JSON string validated by
// scanClaims, has the value want; it unescapes (and allocates) only when
// raw has escapes or non-ASCII.
func jsonStringIs(raw []byte, want string) bool {
	if inner, ok := plainJSONString(raw); ok {
		return string(inner) == want
	}
	s, ok := jsonString(raw)
	return ok && s == want
}

// stringClaim reads an identity claim: absent or "" gives "". A value with
// leading or trailing white space or a control character, or anything but
// a string (null included), is an invalid token (docs/CONTRACT.md §5,
// "Identity values"): it would reach the upstream as a different id, or not
// fit a header, on one transport or the other.
func stringClaim(claims rawClaims, text *payloadText, name, what string) (string, *Failure) {
	c := claims.find(name)
	if c == nil {
		return "", nil
	}
	var s string
	if c.plain {
		s = text.slice(c.at+1, c.at+len(c.raw)-1) // printable ASCII
	} else {
		var isString bool
		if s, isString = jsonString(c.raw); !isString {
			return "", invalid(CauseSubject, what+" claim is not a string")
		}
		if !identitySafe(s) {
			return "", invalid(CauseSubject, what+" claim has control characters")
		}
	}
	if s != "" && (isSpace(s[0]) || isSpace(s[len(s)-1])) {
		return "", invalid(CauseSubject, what+" claim has leading or trailing white space")
	}
	return s, nil
}

// isSpace reports an ASCII white-space byte (a multi-byte space is not a
// control character and stays part of the id).
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// identitySafe reports whether s is valid UTF-8 without any control
// character, tab included.
func identitySafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return utf8.ValidString(s)
}

// reservedSubject reports user ids AgentOS keeps for itself (docs/CONTRACT.md §5).
func reservedSubject(id string) bool {
	return strings.HasPrefix(id, "sa:") || strings.HasPrefix(id, "__oauth__:") || id == "__scheduler__"
}

// scopeList reads the scope claim (docs/CONTRACT.md §5): a list of strings
// or one space-separated string. Only entries that are non-empty strings
// without control characters and without leading or trailing white space
// are kept: any other entry (a padded one) matches nothing and is left out
// of x-agentos-scopes. A space inside an entry stays: a per-resource id may
// hold one ("agents:sales bot:run", as the conformance vectors require).
func scopeList(c *rawClaim, text *payloadText) []string {
	raw := c.raw
	if len(raw) == 0 {
		return nil
	}
	switch raw[0] {
	case '"':
		s, _ := jsonString(raw)
		out := strings.Fields(s)
		n := 0
		for _, f := range out {
			if oneScope(f) {
				out[n] = f
				n++
			}
		}
		if n == 0 {
			return nil
		}
		return out[:n]
	case '[':
		// One pass over the list (scanClaims validated it): the scanner
		// says which strings are plain. Plain entries are slices of the
		// payload's one copy, collected on the stack and then copied out
		// at their size.
		var buf [16]string
		out := buf[:0]
		sc := jsonScanner{b: raw, i: 1}
		for {
			sc.ws()
			if sc.consume(']') {
				break
			}
			start := sc.i
			isString := sc.i < len(sc.b) && sc.b[sc.i] == '"'
			if !sc.value(1) {
				return nil // unreachable: scanClaims validated raw
			}
			switch {
			case isString && sc.plain:
				// Printable ASCII: only padding can disqualify it.
				if e := text.slice(c.at+start+1, c.at+sc.i-1); e != "" && e[0] != ' ' && e[len(e)-1] != ' ' {
					out = append(out, e)
				}
			case isString:
				if s, ok := jsonString(sc.b[start:sc.i]); ok && oneScope(s) {
					out = append(out, s)
				}
			}
			sc.ws()
			sc.consume(',')
		}
		if len(out) == 0 {
			return nil
		}
		return append([]string(nil), out...)
	}
	return nil
}

// oneScope reports whether an entry is kept as a scope: non-empty, valid
// UTF-8, without control characters or leading or trailing white space.
func oneScope(s string) bool {
	if s == "" || !identitySafe(s) {
		return false
	}
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	return !unicode.IsSpace(first) && !unicode.IsSpace(last)
}

// headerSafe reports whether s can be an HTTP header value as is: valid
// UTF-8 without control characters (tab aside).
func headerSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return utf8.ValidString(s)
}

// forwardHeaders builds the x-agentos-claim-* headers from the raw claims,
// so values keep their exact JSON (large numbers included).
func (v *Verifier) forwardHeaders(claims rawClaims) []Header {
	var out []Header
	for _, fc := range v.forward {
		raw, ok := claims.get(fc.claim)
		if !ok {
			continue
		}
		if s, isString := jsonString(raw); isString && headerSafe(s) {
			out = append(out, Header{Name: fc.header, Value: s})
			continue
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil || !headerSafe(buf.String()) {
			continue
		}
		out = append(out, Header{Name: fc.header, Value: buf.String()})
	}
	return out
}
