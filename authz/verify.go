package authz

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"go.uber.org/zap"
)

// VerifierOptions are what NewVerifier needs beyond the jwt: section.
type VerifierOptions struct {
	// Audience are the expected audiences when verify_audience is on,
	// already defaulted by the caller (jwt.audience, else [os_id]).
	Audience []string
	// Clock is the time source; nil means time.Now.
	Clock func() time.Time
	// Logger receives the construction messages (never key material);
	// nil means zap.NewNop(). Verify itself does not log.
	Logger *zap.Logger
	// JWKS, when set, is the JWKS source and replaces jwt.jwks_file and
	// jwt.jwks_url. Nil: jwt.jwks_file, read once here, or for
	// jwt.jwks_url (or OIDC discovery from jwt.issuer) a RemoteJWKS that
	// Start starts.
	JWKS JWKSource
	// Observer counts the fetches of a RemoteJWKS built here; nil means
	// NopJWKSObserver.
	Observer JWKSObserver
}

// backgroundSource is a JWKSource with work of its own (a RemoteJWKS).
type backgroundSource interface {
	JWKSource
	Start(ctx context.Context)
	Close()
	Ready() bool
}

// Verifier verifies (signature) and validates (claims) tokens — the
// terminology of JWX docs/01-jwt.md. It is immutable after NewVerifier and
// safe for concurrent use.
type Verifier struct {
	ring *keyRing
	// verifyOpts are the jws.Verify options, built once: the ring as key
	// provider, compact serialization only. jws.WithContext is added per
	// call only with a JWKS source, the one user of the context.
	verifyOpts []jws.VerifyOption
	// sigs are jwx's per-algorithm signature verifiers (stateless, so
	// shared), one for each allowed algorithm.
	sigs       [algCount]jws.Verifier
	checkSig   bool // false: validate: false
	clock      func() time.Time
	leeway     time.Duration
	requireExp bool
	issuer     string // "": not checked
	verifyAud  bool
	audience   []string
	claims     ClaimNames // with defaults
	forward    []forwardClaim
}

type forwardClaim struct {
	claim  string // the claim name in the token
	header string // x-agentos-claim-<lower-case name>
}

// NewVerifier compiles c: it parses the keys, reads jwt.jwks_file (unless
// o.JWKS is given) and pins the algorithms. Its error joins every problem,
// each prefixed by its field path as in Check.
func NewVerifier(c *JWTConfig, o VerifierOptions) (*Verifier, error) {
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	clock := o.Clock
	if clock == nil {
		clock = time.Now
	}
	jwks := o.JWKS
	var remoteErr error
	if jwks == nil && c.RemoteJWKS() {
		// Checked by compile below; a failure here repeats its message.
		remote, err := NewRemoteJWKS(c.remoteOptions(clock, log, o.Observer))
		if err != nil {
			remoteErr = err
		} else {
			jwks = remote
		}
	}
	keys, errs := c.compile(true, jwks)
	if remoteErr != nil && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("jwt.%w", remoteErr))
	}
	if c.VerifyAudience && len(o.Audience) == 0 {
		errs = append(errs, errors.New("jwt.audience: verify_audience is true but no audience is expected: set jwt.audience or os_id"))
	}
	for _, a := range o.Audience {
		if a == "" {
			errs = append(errs, errors.New("jwt.audience: an expected audience is empty"))
			break
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	ring := &keyRing{allowed: keys.allowed, static: keys.static, jwks: jwks}
	if ring.jwks == nil && keys.jwks != nil {
		ring.jwks = NewStaticJWKS(keys.jwks)
	}
	v := &Verifier{
		ring:       ring,
		verifyOpts: []jws.VerifyOption{jws.WithKeyProvider(ring), jws.WithCompact()},
		checkSig:   c.ValidatesSignature(),
		clock:      clock,
		leeway:     c.Leeway.Duration,
		requireExp: c.RequiresExp(),
		issuer:     c.Issuer,
		verifyAud:  c.VerifyAudience,
		audience:   append([]string(nil), o.Audience...),
		claims:     c.Claims.WithDefaults(),
	}
	for _, a := range keys.allowed.algs() {
		sv, err := jws.NewVerifier(a.jwa())
		if err != nil {
			return nil, fmt.Errorf("jwt.algorithms: %s has no verifier: %w", a, err)
		}
		v.sigs[a] = sv
	}
	for _, name := range c.ForwardClaims {
		v.forward = append(v.forward, forwardClaim{claim: name, header: "x-agentos-claim-" + strings.ToLower(name)})
	}

	names := make([]string, 0, algCount)
	for _, a := range keys.allowed.algs() {
		names = append(names, a.String())
	}
	jwksKeys := 0
	if keys.jwks != nil {
		jwksKeys = keys.jwks.Len()
	}
	log.Info("jwt verifier ready",
		zap.Strings("algorithms", names),
		zap.Int("static_keys", len(keys.static)),
		zap.Int("jwks_file_keys", jwksKeys),
		zap.Bool("jwks_source", jwks != nil),
		zap.Bool("verify_audience", v.verifyAud),
		zap.Bool("issuer_checked", c.Issuer != ""),
		zap.Bool("require_exp", c.RequiresExp()),
		zap.Duration("leeway", c.Leeway.Duration))
	if !v.checkSig {
		log.Warn("JWT SIGNATURES ARE NOT VERIFIED (jwt.validate: false): anyone can forge a token with any identity and scopes; " +
			"claims (exp, nbf, iat, audience, issuer) are still checked. Development only: never run this in production")
	}
	return v, nil
}

// Start starts the background work of the JWKS source (fetching and
// refreshing a JWKS URL) under ctx; nothing for other sources.
func (v *Verifier) Start(ctx context.Context) {
	if bg, ok := v.ring.jwks.(backgroundSource); ok {
		bg.Start(ctx)
	}
}

// Close stops the background work of the JWKS source.
func (v *Verifier) Close() {
	if bg, ok := v.ring.jwks.(backgroundSource); ok {
		bg.Close()
	}
}

// Ready reports whether the JWKS source has loaded its first key set
// (always true without a fetched JWKS).
func (v *Verifier) Ready() bool {
	if bg, ok := v.ring.jwks.(backgroundSource); ok {
		return bg.Ready()
	}
	return true
}

// jwksKeys is the current JWKS key set (nil without a JWKS or before the
// first load): its identity is the generation the token cache keys on,
// since a source replaces the set only when its keys change.
func (v *Verifier) jwksKeys(ctx context.Context) *KeySet {
	if v.ring.jwks == nil {
		return nil
	}
	ks, err := v.ring.jwks.Keys(ctx)
	if err != nil {
		return nil
	}
	return ks
}

// remoteOptions are the RemoteJWKS options of c.
func (c *JWTConfig) remoteOptions(clock func() time.Time, log *zap.Logger, obs JWKSObserver) RemoteJWKSOptions {
	o := RemoteJWKSOptions{
		URL:           c.JWKSURL,
		Refresh:       c.JWKSRefresh.Duration,
		CAFile:        c.JWKSCAFile,
		AllowInsecure: c.JWKSAllowInsecure,
		Clock:         clock,
		Logger:        log,
		Observer:      obs,
	}
	if c.JWKSURL == "" {
		o.Issuer = c.Issuer
	}
	return o
}

// Identity is what a valid token says about its caller.
type Identity struct {
	// UserID is the user id claim; "" when the token has none.
	UserID string
	// SessionID is the session id claim; "" when the token has none.
	SessionID string
	// Scopes is the scope claim in token order: a list (entries that are
	// not strings, empty, or hold control characters are dropped) or one
	// space-separated string. Nil when none.
	Scopes []string
	// Forward are the x-agentos-claim-<name> headers of the forward_claims
	// present in the token, in configuration order: a string claim as is,
	// anything else as compact JSON (a string with control characters too).
	Forward []Header
	// Expires is the token's exp; zero when it has none.
	Expires time.Time
}

// Failure is why a token was refused: the decision reason and the
// CONTRACT §5 detail. Details are our words; they never quote library
// errors or any part of the token.
type Failure struct {
	Reason Reason
	Detail string
}

// The CONTRACT §5 details.
const (
	detailExpired         = "Token has expired"
	detailInvalidAudience = "Invalid token audience - token not valid for this AgentOS instance"
	detailInvalidSubject  = "Invalid token subject"
	detailInvalidPrefix   = "Invalid token: "
)

func invalid(reason string) *Failure {
	return &Failure{Reason: ReasonInvalidToken, Detail: detailInvalidPrefix + reason}
}

// Verify checks raw, a compact JWS already stripped of "Bearer ": size and
// shape, signature (unless validate: false), claims. A nil Failure means
// the token is valid. ctx bounds any JWKS work and a cancelled ctx fails.
func (v *Verifier) Verify(ctx context.Context, raw string) (Identity, *Failure) {
	id, _, f := v.verify(ctx, raw)
	return id, f
}

// verify is Verify, also returning when the token became valid: the later
// of its nbf and iat (zero when it has neither), which the token cache
// needs to re-check a remembered token against the clock.
func (v *Verifier) verify(ctx context.Context, raw string) (Identity, time.Time, *Failure) {
	if ctx.Err() != nil {
		return Identity{}, time.Time{}, &Failure{Reason: ReasonCanceled, Detail: detailInvalidPrefix + "the check was cancelled"}
	}
	if len(raw) > MaxTokenBytes {
		return Identity{}, time.Time{}, invalid("token is larger than 8 KiB")
	}
	if msg := compactShape(raw); msg != "" {
		return Identity{}, time.Time{}, invalid(msg)
	}

	var payload []byte
	if v.checkSig {
		p, err := v.verifySignature(ctx, raw)
		if err != nil {
			return Identity{}, time.Time{}, verifyFailure(err)
		}
		payload = p
	} else {
		// validate: false: the signature is skipped, the rest is not —
		// the alg must still be allowlisted (so "none" never passes).
		msg, err := jws.Parse([]byte(raw), jws.WithCompact())
		if err != nil {
			return Identity{}, time.Time{}, invalid("malformed token")
		}
		sigs := msg.Signatures()
		if len(sigs) != 1 {
			return Identity{}, time.Time{}, invalid("malformed token")
		}
		a, ok := parseAlg(string(sigs[0].ProtectedHeaders().Algorithm()))
		if !ok || !v.ring.allowed.has(a) {
			return Identity{}, time.Time{}, invalid("signing algorithm not allowed")
		}
		payload = msg.Payload()
	}
	return v.validate(payload)
}

// verifySignature verifies raw, a token compactShape accepted, and returns
// its payload; its errors are jws.Verify's (verifyFailure maps both). The
// protected header is read here (compactHeader) rather than by jwx's
// generic header decoding, which cost as much as the HS256 signature
// itself; keys are selected by the same keyRing.appendKeys and checked
// with jwx's verifier of the algorithm, over the token's own signing
// input (the canonical base64url compactShape demands is what jws.Verify
// re-encodes). A header compactHeader does not take goes to jws.Verify
// whole, so both paths accept exactly the same tokens (FuzzVerifySignature).
func (v *Verifier) verifySignature(ctx context.Context, raw string) ([]byte, error) {
	hdrEnd := strings.IndexByte(raw, '.')
	sigStart := strings.LastIndexByte(raw, '.') + 1
	enc := base64.RawURLEncoding
	hl := enc.DecodedLen(hdrEnd)
	pl := enc.DecodedLen(sigStart - 1 - (hdrEnd + 1))
	// One allocation: the token's bytes (the signing input is a prefix),
	// then the decoded header, payload and signature.
	buf := make([]byte, len(raw)+hl+pl+enc.DecodedLen(len(raw)-sigStart))
	tok := buf[:copy(buf, raw)]
	hdr, payload, sig := buf[len(raw):len(raw)+hl], buf[len(raw)+hl:len(raw)+hl+pl], buf[len(raw)+hl+pl:]
	if _, err := enc.Decode(hdr, tok[:hdrEnd]); err != nil {
		return v.verifyJWS(ctx, raw)
	}
	alg, kid, ok := compactHeader(hdr)
	if !ok {
		return v.verifyJWS(ctx, raw)
	}
	if !v.ring.allowed.has(alg) {
		return nil, errAlgNotAllowed
	}
	input := tok[:sigStart-1]
	if _, err := enc.Decode(payload, input[hdrEnd+1:]); err != nil {
		return v.verifyJWS(ctx, raw)
	}
	if _, err := enc.Decode(sig, tok[sigStart:]); err != nil {
		return v.verifyJWS(ctx, raw)
	}
	var kbuf [8]any
	keys := v.ring.appendKeys(ctx, kbuf[:0], alg, kid)
	if len(keys) == 0 {
		return nil, errNoKey
	}
	sv := v.sigs[alg]
	for _, k := range keys {
		if sv.Verify(input, sig, k) == nil {
			return payload, nil
		}
	}
	return nil, errSignature
}

// verifyJWS is jws.Verify with the ring as key provider.
func (v *Verifier) verifyJWS(ctx context.Context, raw string) ([]byte, error) {
	opts := v.verifyOpts
	if v.ring.jwks != nil {
		opts = append(opts[:len(opts):len(opts)], jws.WithContext(ctx))
	}
	return jws.Verify([]byte(raw), opts...)
}

// compactHeader reads a decoded protected header of the common shape: a
// JSON object whose members are all among alg, kid, typ, cty, jku, x5u,
// x5t and x5t#S256, each a string, with an alg we implement. For such a
// header jwx's decoding gives the same alg and kid (the last of a repeated
// member, escapes decoded, invalid UTF-8 replaced as encoding/json does)
// and no crit, b64, jwk or x5c. ok is false for any other header (crit,
// b64, jwk, x5c, private parameters, a missing or unknown alg, a value of
// another type, not an object): jws.Verify then decides, as before.
// jku and x5u are read only to be ignored: keys are never fetched from them.
//
// White space around the object also sends the token to jws.Verify: jwx
// signs over the header re-encoded from the bytes encoding/json hands its
// decoder, which are the object without it, so it refuses such a token
// that RFC 7515 would accept, and so must we.
func compactHeader(hdr []byte) (alg sigAlg, kid string, ok bool) {
	if len(hdr) < 2 || hdr[0] != '{' || hdr[len(hdr)-1] != '}' {
		return 0, "", false
	}
	var buf [8]rawClaim
	members, isObject := scanClaims(buf[:0], hdr)
	if !isObject {
		return 0, "", false
	}
	for _, m := range members {
		switch string(m.name) {
		case "alg", "kid", "typ", "cty", "jku", "x5u", "x5t", "x5t#S256":
		default:
			return 0, "", false
		}
		if m.raw[0] != '"' {
			return 0, "", false
		}
	}
	algRaw := members.find("alg")
	if algRaw == nil {
		return 0, "", false
	}
	if algRaw.plain {
		alg, ok = parseAlg(string(algRaw.raw[1 : len(algRaw.raw)-1]))
	} else {
		name, _ := jsonString(algRaw.raw)
		alg, ok = parseAlg(name)
	}
	if !ok {
		return 0, "", false
	}
	if kidRaw := members.find("kid"); kidRaw != nil {
		if kid, ok = jsonString(kidRaw.raw); !ok {
			return 0, "", false
		}
	}
	return alg, kid, true
}

// compactShape checks that raw is header.payload.signature, each part
// non-empty, canonical unpadded base64url: the only form accepted (no JSON
// serialization, no unsigned token). Canonical matters: jws re-encodes what
// it decoded to compute the signing input, so a part whose unused low bits
// were changed would otherwise verify as a second spelling of the same
// token. It returns "" or the reason.
func compactShape(raw string) string {
	if raw == "" {
		return "empty token"
	}
	start := 0
	for parts := 1; ; parts++ {
		end := strings.IndexByte(raw[start:], '.')
		last := end < 0
		if last {
			end = len(raw)
		} else {
			end += start
		}
		if parts > 3 {
			return "not a JWT (expected three dot-separated parts)"
		}
		if end == start {
			if parts == 3 && last {
				return "token is not signed"
			}
			return "not a JWT (empty part)"
		}
		if !base64URLChars(raw[start:end]) || !canonicalTail(raw[start:end]) {
			return "not a JWT (not base64url)"
		}
		if last {
			if parts != 3 {
				return "not a JWT (expected three dot-separated parts)"
			}
			return ""
		}
		start = end + 1
	}
}

// canonicalTail reports whether s, non-empty and all base64url
// characters, has a length unpadded base64url can have and a last
// character without stray bits.
func canonicalTail(s string) bool {
	last, _ := base64URLValue(s[len(s)-1])
	switch len(s) % 4 {
	case 1:
		return false
	case 2:
		return last&0x0f == 0
	case 3:
		return last&0x03 == 0
	}
	return true
}

// The base64url alphabet as a 256-bit set, in four words of 64: '-' and
// '0'-'9' in the first; 'A'-'Z', '_' and 'a'-'z' in the second.
const (
	base64URLLow  uint64 = 1<<'-' | 0x3ff<<'0'
	base64URLHigh uint64 = 0x3ffffff<<('A'-64) | 1<<('_'-64) | 0x3ffffff<<('a'-64)
)

// base64URLChar reports whether c is in the base64url alphabet.
func base64URLChar(c byte) bool {
	set := [4]uint64{base64URLLow, base64URLHigh}
	return set[c>>6]>>(c&63)&1 != 0
}

// base64URLChars reports whether every byte of s is in the base64url
// alphabet, without a branch per byte (tokens are checked whole on every
// request).
func base64URLChars(s string) bool {
	set := [4]uint64{base64URLLow, base64URLHigh}
	ok := uint64(1)
	for i := 0; i < len(s); i++ {
		ok &= set[s[i]>>6] >> (s[i] & 63)
	}
	return ok&1 != 0
}

func base64URLValue(c byte) (byte, bool) {
	switch {
	case 'A' <= c && c <= 'Z':
		return c - 'A', true
	case 'a' <= c && c <= 'z':
		return c - 'a' + 26, true
	case '0' <= c && c <= '9':
		return c - '0' + 52, true
	case c == '-':
		return 62, true
	case c == '_':
		return 63, true
	}
	return 0, false
}

// verifyFailure maps a jws.Verify error to the detail, by identity.
func verifyFailure(err error) *Failure {
	switch {
	case errors.Is(err, errAlgNotAllowed):
		return invalid("signing algorithm not allowed")
	case errors.Is(err, errNoKey):
		return invalid("no verification key for this token")
	case errors.Is(err, errCritHeader):
		return invalid("unsupported critical header")
	case errors.Is(err, errSignature), jws.IsVerificationError(err):
		return invalid("signature verification failed")
	}
	return invalid("malformed token")
}

// validate decodes and checks the claims of a verified (or, with
// validate: false, merely decoded) payload.
//
// The payload is indexed once, into raw claims on the stack, and only the
// claims we use are read from it: jwx's own token decoding (a streaming
// decoder that also decodes every private claim into interface values)
// cost more than the RS256 signature check. exp, nbf, iat and iss are
// checked here with jwt.Validate's rules (see checkTimes), on the values
// already read, rather than by building a jwt.Token for it.
func (v *Verifier) validate(payload []byte) (Identity, time.Time, *Failure) {
	var buf [claimsBuf]rawClaim
	claims, ok := scanClaims(buf[:0], payload)
	if !ok {
		return Identity{}, time.Time{}, invalid("malformed claims")
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
	if hasIss && (len(issRaw) == 0 || issRaw[0] != '"') {
		return Identity{}, time.Time{}, invalid("iss claim is not a string")
	}
	// jwx treats exp 0 as "no exp"; for us it is a token that expired in
	// 1970, like any exp before it.
	if hasExp && exp.Unix() <= 0 {
		return Identity{}, time.Time{}, &Failure{Reason: ReasonTokenExpired, Detail: detailExpired}
	}
	audRaw, _ := claims.get(v.claims.Audience)
	hasAud, audOK, audMatch := audienceClaim(audRaw, v.audience)
	if !audOK {
		// CONTRACT §5: an empty or non-string aud is an invalid token.
		return Identity{}, time.Time{}, invalid("malformed audience claim")
	}
	if f := v.checkTimes(exp, nbf, iat); f != nil {
		return Identity{}, time.Time{}, f
	}
	if v.requireExp && !hasExp {
		return Identity{}, time.Time{}, invalid("token has no expiry (exp)")
	}
	if v.issuer != "" && (!hasIss || !jsonStringIs(issRaw, v.issuer)) {
		return Identity{}, time.Time{}, invalid("issuer missing or not accepted")
	}
	if v.verifyAud {
		if !hasAud {
			return Identity{}, time.Time{}, invalid("missing audience claim")
		}
		if !audMatch {
			return Identity{}, time.Time{}, &Failure{Reason: ReasonInvalidAudience, Detail: detailInvalidAudience}
		}
	}

	var id Identity
	text := payloadText{b: payload}
	if id.UserID, f = stringClaim(claims, &text, v.claims.UserID, "user id"); f != nil {
		return Identity{}, time.Time{}, f
	}
	if reservedSubject(id.UserID) {
		return Identity{}, time.Time{}, &Failure{Reason: ReasonInvalidSubject, Detail: detailInvalidSubject}
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
		return time.Time{}, false, invalid(name + " claim is not a date")
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
		return invalid("token is issued in the future (iat)")
	}
	if !unset(exp) && !now.Before(exp.Add(v.leeway)) {
		return &Failure{Reason: ReasonTokenExpired, Detail: detailExpired}
	}
	if !unset(nbf) && now.Before(nbf.Add(-v.leeway)) {
		return invalid("token is not valid yet (nbf)")
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

// stringClaim reads an identity claim: absent or "" gives "", a string
// with control characters or any other value (null included) is an invalid
// token (it would go into an upstream header).
func stringClaim(claims rawClaims, text *payloadText, name, what string) (string, *Failure) {
	c := claims.find(name)
	if c == nil {
		return "", nil
	}
	if c.plain {
		return text.slice(c.at+1, c.at+len(c.raw)-1), nil // printable ASCII: header-safe
	}
	s, isString := jsonString(c.raw)
	if !isString {
		return "", invalid(what + " claim is not a string")
	}
	if !headerSafe(s) {
		return "", invalid(what + " claim has control characters")
	}
	return s, nil
}

// reservedSubject reports user ids AgentOS keeps for itself (CONTRACT §5).
func reservedSubject(id string) bool {
	return strings.HasPrefix(id, "sa:") || strings.HasPrefix(id, "__oauth__:") || id == "__scheduler__"
}

// scopeList reads the scope claim (CONTRACT §5): a list of strings (other
// entries ignored) or one space-separated string. Empty entries and entries
// with control characters (which no header can carry) are dropped too.
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
			if headerSafe(f) {
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
				if sc.i-start > 2 { // printable ASCII: header-safe
					out = append(out, text.slice(c.at+start+1, c.at+sc.i-1))
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

// oneScope reports whether a list entry is kept as a scope: non-empty and
// header-safe. An entry with a space stays one scope (CONTRACT §5: a
// per-resource scope's id may hold one, "agents:sales bot:run").
func oneScope(s string) bool {
	return s != "" && headerSafe(s)
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
