package jwtauth

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jws"
	"go.uber.org/zap"
)

// Options are what New needs beyond the Config.
type Options struct {
	// Audience are the expected audiences when verify_audience is on,
	// already defaulted by the caller (jwt.audience, else [os_id]).
	Audience []string
	// Clock is the time source; nil means time.Now.
	Clock func() time.Time
	// Logger receives the construction messages (never key material);
	// nil means zap.NewNop(). Verify itself does not log.
	Logger *zap.Logger
	// Observer counts the fetches of a JWKS URL; nil counts nothing.
	Observer FetchObserver
	// OnReady, when set, is called once, when the JWKS source loads its
	// first key set (from the fetching goroutine, after Ready turned
	// true): the way to be told rather than poll Ready. It must not
	// block. Never called for a Verifier that is ready from New (no JWKS
	// URL).
	OnReady func()

	// jwks, when set, is the JWKS source and replaces jwt.jwks_file and
	// jwt.jwks_url (the package's tests). Nil: jwt.jwks_file, read once
	// here, or for jwt.jwks_url (or OIDC discovery from jwt.issuer) a
	// remoteJWKS that Start starts.
	jwks jwksSource
}

// backgroundSource is a jwksSource with work of its own (a remoteJWKS).
type backgroundSource interface {
	jwksSource
	Start(ctx context.Context)
	Close()
	Ready() bool
}

// Verifier verifies (signature) and validates (claims) tokens — the
// terminology of JWX docs/01-jwt.md. It is immutable after New and safe
// for concurrent use.
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

// New compiles c (Compile) and builds a verifier from it: for the
// package's tests and tools; authz compiles once with Compile and builds
// with NewCompiled. With Options.jwks set, that source replaces
// jwt.jwks_file and jwt.jwks_url and is not checked for coverage. The
// error joins every problem, each a *Problem.
func New(c *Config, o Options) (*Verifier, error) {
	var k *Compiled
	var errs []error
	if o.jwks != nil {
		var keys compiledKeys
		if keys, errs = c.compile(true, o.jwks); len(errs) == 0 {
			k = &Compiled{cfg: *c, keys: keys}
		}
	} else {
		k, errs = Compile(c)
	}
	if len(errs) > 0 {
		return nil, errors.Join(append(errs, audienceProblems(c, o.Audience)...)...)
	}
	return NewCompiled(k, o)
}

// audienceProblems checks the expected audiences against c.
func audienceProblems(c *Config, audience []string) []error {
	var errs []error
	if c.VerifyAudience && len(audience) == 0 {
		errs = append(errs, &Problem{Field: "audience", Err: errors.New("verify_audience is true but no audience is expected: set jwt.audience or os_id")})
	}
	for _, a := range audience {
		if a == "" {
			errs = append(errs, &Problem{Field: "audience", Err: errors.New("an expected audience is empty")})
			break
		}
	}
	return errs
}

// NewCompiled builds a verifier from k, reading no file: the keys, the
// JWKS file and the CA roots are the ones Compile read. A JWKS URL (or
// OIDC discovery) gets a source that Start starts. The error joins every
// problem, each a *Problem: the expected audiences (Options.Audience) are
// the one thing Compile could not check.
func NewCompiled(k *Compiled, o Options) (*Verifier, error) {
	c, keys := &k.cfg, k.keys
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	clock := o.Clock
	if clock == nil {
		clock = time.Now
	}
	var errs []error
	jwks := o.jwks
	if jwks == nil && c.RemoteJWKS() {
		// Compile checked the URL (or issuer); a failure here repeats it.
		ro := c.remoteOptions(clock, log, o.Observer, keys.rootCAs)
		ro.OnFirstLoad = o.OnReady
		remote, err := newRemoteJWKS(ro)
		if err != nil {
			errs = append(errs, err)
		} else {
			jwks = remote
		}
	}
	errs = append(errs, audienceProblems(c, o.Audience)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	ring := &keyRing{allowed: keys.allowed, static: keys.static, jwks: jwks}
	if ring.jwks == nil && keys.jwks != nil {
		ring.jwks = staticJWKS{set: keys.jwks}
	}
	v := &Verifier{
		ring:       ring,
		verifyOpts: []jws.VerifyOption{jws.WithKeyProvider(ring), jws.WithCompact()},
		checkSig:   c.validatesSignature(),
		clock:      clock,
		leeway:     c.Leeway,
		requireExp: c.requiresExp(),
		issuer:     c.Issuer,
		verifyAud:  c.VerifyAudience,
		audience:   append([]string(nil), o.Audience...),
		claims:     c.Claims.withDefaults(),
	}
	for _, a := range keys.allowed.algs() {
		sv, err := jws.NewVerifier(a.jwa())
		if err != nil {
			return nil, &Problem{Field: "algorithms", Err: fmt.Errorf("%s has no verifier: %w", a, err)}
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
		zap.Bool("require_exp", c.requiresExp()),
		zap.Duration("leeway", c.Leeway))
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

// Generation identifies a JWKS key set: two are equal exactly when they
// are the same set. The zero Generation is no key set (no JWKS, or before
// the first load). Comparable, so the token cache keeps it in its entries.
type Generation struct{ set *keySet }

// Generation is the current JWKS key set's: the generation the token
// cache keys on, since a source replaces the set only when its keys
// change.
func (v *Verifier) Generation(ctx context.Context) Generation {
	if v.ring.jwks == nil {
		return Generation{}
	}
	ks, err := v.ring.jwks.Keys(ctx)
	if err != nil {
		return Generation{}
	}
	return Generation{set: ks}
}

// remoteOptions are the remoteJWKS options of c.
func (c *Config) remoteOptions(clock func() time.Time, log *zap.Logger, obs FetchObserver, roots *x509.CertPool) remoteJWKSOptions {
	o := remoteJWKSOptions{
		URL:           c.JWKSURL,
		Refresh:       c.JWKSRefresh,
		RootCAs:       roots,
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

// Header is one forwarded claim header: name (lower-case) and value.
type Header struct {
	Name  string
	Value string
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

// Verify checks raw, a compact JWS already stripped of "Bearer ": size and
// shape, signature (unless validate: false), claims. A nil Failure means
// the token is valid. ctx bounds any JWKS work and a cancelled ctx fails.
func (v *Verifier) Verify(ctx context.Context, raw string) (Identity, *Failure) {
	id, _, f := v.VerifyFrom(ctx, raw)
	return id, f
}

// VerifyFrom is Verify, also returning when the token became valid: the
// later of its nbf and iat (zero when it has neither), which the token
// cache needs to re-check a remembered token against the clock.
func (v *Verifier) VerifyFrom(ctx context.Context, raw string) (Identity, time.Time, *Failure) {
	var st Settled
	return v.verify(ctx, raw, &st)
}

// Settled says whether a failure is the lasting verdict on its token: a
// verification of the same token gives the same failure, detail and all,
// while the key set (the Generation read before verifying) and the
// configuration stay the same and the clock stays at or after the
// verification and before Until.
//
// Only failures found by trying a key are reported settled: a signature
// no candidate key verifies, or claims refused after the signature
// verified (or, with validate: false, after the payload was read). The
// failures found before any key is tried (size, shape, header, algorithm,
// no key) cost little to find again; a signature failure that involved a
// kid the fetched JWKS did not know is not settled either, since a later
// refetch may bring that key.
type Settled struct {
	OK bool
	// Until is when the verdict may change, zero for never: the token's
	// exp plus the leeway for a failure found after the time checks passed
	// (past it, a verification says the token expired).
	Until time.Time
}

// VerifySettled is VerifyFrom, also saying whether a failure is settled.
func (v *Verifier) VerifySettled(ctx context.Context, raw string) (Identity, time.Time, *Failure, Settled) {
	var st Settled
	id, from, f := v.verify(ctx, raw, &st)
	if f == nil {
		st = Settled{}
	}
	return id, from, f, st
}

func (v *Verifier) verify(ctx context.Context, raw string, st *Settled) (Identity, time.Time, *Failure) {
	if ctx.Err() != nil {
		return Identity{}, time.Time{}, failCanceled
	}
	if len(raw) > MaxTokenBytes {
		return Identity{}, time.Time{}, invalid(CauseMalformed, "token is larger than 8 KiB")
	}
	if msg := compactShape(raw); msg != "" {
		return Identity{}, time.Time{}, invalid(CauseMalformed, msg)
	}

	var payload []byte
	if v.checkSig {
		p, err := v.verifySignature(ctx, raw)
		if err != nil {
			f := verifyFailure(err)
			st.OK = f == failSignature && v.ring.kidSettled(ctx, raw)
			return Identity{}, time.Time{}, f
		}
		payload = p
	} else {
		// validate: false: the signature is skipped, the rest is not —
		// the alg must still be allowlisted (so "none" never passes).
		msg, err := jws.Parse([]byte(raw), jws.WithCompact())
		if err != nil {
			return Identity{}, time.Time{}, invalid(CauseMalformed, "malformed token")
		}
		sigs := msg.Signatures()
		if len(sigs) != 1 {
			return Identity{}, time.Time{}, invalid(CauseMalformed, "malformed token")
		}
		a, ok := parseAlg(string(sigs[0].ProtectedHeaders().Algorithm()))
		if !ok || !v.ring.allowed.has(a) {
			return Identity{}, time.Time{}, invalid(CauseAlgorithm, "signing algorithm not allowed")
		}
		payload = msg.Payload()
	}
	return v.validate(payload, st)
}
