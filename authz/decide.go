package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/agentos-authz/agentos-authz/authz/internal/jwtauth"
	"github.com/agentos-authz/agentos-authz/authz/serviceaccount"
	"github.com/agentos-authz/agentos-authz/scopes"
)

// Options are New's injected dependencies.
type Options struct {
	// Logger receives decision and deprecation logs; nil means zap.NewNop().
	Logger *zap.Logger
	// Clock is the time source for token validation; nil means time.Now.
	Clock func() time.Time
	// Observer counts JWKS fetches and verified-token cache lookups; nil
	// means nopJWKSObserver.
	Observer JWKSObserver
	// ServiceAccounts verifies agno_pat_ tokens (docs/CONTRACT.md §8);
	// required when service_accounts.db_url is set. The caller opened its
	// store and closes it after the Authorizer's last use (or after the
	// Reload that replaced it: ReloadOptions).
	ServiceAccounts *serviceaccount.Authenticator
}

// Authorizer decides requests (docs/CONTRACT.md §5). Its configuration, keys and
// route table form one immutable snapshot behind an atomic pointer: a
// decision loads the snapshot once and uses it to the end, so a future
// reload can build and swap a new snapshot without locking. Decide is safe
// for concurrent use and runs on the caller's goroutine.
type Authorizer struct {
	snap atomic.Pointer[snapshot]
	log  *zap.Logger
	// allowed counts allowed decisions while log.allow_sample_rate > 0,
	// for the deterministic sampling of their log lines (sampleAllowed).
	allowed atomic.Uint64
	// re is what Reload needs (reload.go).
	re reloader
	// ready is closed once a snapshot had its keys (ReadyC); readyOnce
	// closes it.
	ready     chan struct{}
	readyOnce sync.Once
}

// snapshot is everything a decision needs, compiled once by New and never
// modified afterwards.
type snapshot struct {
	table     *scopes.Table
	verifier  *jwtauth.Verifier // nil without a JWT source (security key only)
	authorize bool
	excluded  excludedRoutes
	corsAny   bool
	cors      []string
	creds     credentials
	key       securityKey
	// keyPrincipal / keySet are the security key's principal and its
	// parsed scopes: the admin scope (docs/CONTRACT.md §7).
	keyPrincipal principal
	keySet       scopes.Set
	// sets are the callers' parsed scopes, interned (scopesets.go).
	sets *scopeSets
	// cache remembers verified tokens (nil: jwt.cache_size or
	// jwt.cache_ttl is 0, or no verifier).
	cache *tokenCache
	// fails remembers settled verification failures (failcache.go); nil
	// when cache is.
	fails *failCache
	clock func() time.Time
	obs   JWKSObserver
	// allowSample is log.allow_sample_rate in millionths (0: none).
	allowSample uint64
	// up is the upstream: section (docs/CONTRACT.md §9, upstream.go).
	up upstreamPolicy
	// shadow: mode: shadow (shadow.go).
	shadow bool
	// sa is the service accounts' part (serviceaccounts.go).
	sa serviceAccounts
}

// New builds an Authorizer from cfg as Load compiled it (route table,
// excluded-route globs, credential source, parsed keys and JWKS file),
// reading no file again; a Config not made by Load, or changed since, is
// refused. Every
// other error is a configuration problem (exit status 2 in the commands)
// naming its field: what needs opts (the service-account authenticator).
func New(cfg *Config, opts Options) (*Authorizer, error) {
	if cfg == nil {
		return nil, errors.New("authz: nil configuration")
	}
	if _, err := cfg.loaded(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	a := &Authorizer{log: log, ready: make(chan struct{})}
	s, err := compileWith(cfg, opts, log, nil, nil, a.noteReady)
	if err != nil {
		return nil, err
	}
	a.re.opts = opts
	a.re.keysFP = cfg.compiled.keysFP
	a.snap.Store(s)
	a.noteReady()
	return a, nil
}

// compileWith builds a snapshot from what Load compiled of cfg (cfg.compiled
// is non-nil); a non-nil verifier (with its cache) is used instead of
// building one from the compiled jwt section (Reload: the keys did not
// change). A verifier it builds calls onReady when its JWKS URL's first key
// set is loaded.
func compileWith(cfg *Config, opts Options, log *zap.Logger, verifier *jwtauth.Verifier, cache *tokenCache, onReady func()) (*snapshot, error) {
	c := cfg.compiled
	table := c.table
	jwtSource := c.jwt != nil
	var err error
	s := &snapshot{
		table:     table,
		authorize: cfg.AuthorizationEnabled(),
		excluded:  c.excluded,
		creds:     newCredentials(c.source, cfg.JWT.Header, cfg.JWT.Cookie),
		key:       newSecurityKey(cfg.SecurityKey, jwtSource),
		clock:     opts.Clock,
		obs:       opts.Observer,
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.obs == nil {
		s.obs = nopJWKSObserver{}
	}
	s.keyPrincipal = newPrincipal(&jwtauth.Identity{Scopes: []string{table.AdminScope()}})
	s.keySet = s.keyPrincipal.parseScopes(table)
	s.sets = newScopeSets(scopeSetSlots)
	s.allowSample = cfg.Log.samplePPM()
	if s.up, err = compileUpstream(cfg); err != nil {
		return nil, err
	}
	s.shadow = cfg.Shadow()
	if s.sa, err = newServiceAccounts(cfg, opts); err != nil {
		return nil, err
	}
	for _, o := range cfg.CORSAllowedOrigins {
		if o == "*" {
			s.corsAny = true
		}
	}
	s.cors = slices.Clone(cfg.CORSAllowedOrigins)
	s.corsAny = s.corsAny || len(s.cors) == 0
	switch {
	case jwtSource && verifier != nil:
		s.verifier, s.cache = verifier, cache
	case jwtSource:
		aud := cfg.ExpectedAudience()
		s.verifier, err = jwtauth.NewCompiled(c.jwt, jwtauth.Options{Audience: aud, Clock: opts.Clock, Logger: log, Observer: s.obs, OnReady: onReady})
		if err != nil {
			var errs []error
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
			} else {
				errs = []error{err}
			}
			return nil, errors.Join(jwtFieldErrors(errs)...)
		}
		s.cache = newTokenCache(cfg.JWT.TokenCacheSize(), cfg.JWT.CacheTTL.Duration, cfg.JWT.Leeway.Duration)
	}
	if s.cache != nil {
		// A new one on every compile, a reload with the same keys too: a
		// replayed refusal costs one verification more, never a stale answer.
		s.fails = newFailCache(cfg.JWT.TokenCacheSize(), cfg.JWT.CacheTTL.Duration)
	}
	return s, nil
}

// ReadyC returns a channel closed once the Authorizer is ready to serve
// checks: a configuration is loaded and, with a JWKS URL (or OIDC
// discovery), its first key set is. Readiness is about the service having
// keys at all, so it is never withdrawn: a Reload to a new JWKS URL keeps a
// ready Authorizer ready while the new URL's first fetch is pending (its
// token checks answer 503 meanwhile, docs/CONTRACT.md §5), and a Reload
// before readiness makes it wait for the new snapshot's keys instead of the
// replaced ones. Nil (never ready) for an Authorizer not built by New.
func (a *Authorizer) ReadyC() <-chan struct{} { return a.ready }

// Ready reports whether ReadyC is closed.
func (a *Authorizer) Ready() bool {
	select {
	case <-a.ready:
		return true
	default:
		return false
	}
}

// noteReady closes ready when the current snapshot has its keys. It is
// called after every snapshot swap and by a JWKS URL's first load, so
// whichever of the two comes last finds both done.
func (a *Authorizer) noteReady() {
	s := a.snap.Load()
	if s == nil || (s.verifier != nil && !s.verifier.Ready()) {
		return
	}
	a.readyOnce.Do(func() { close(a.ready) })
}

// Start begins the background work of the current snapshot (fetching and
// refreshing a JWKS URL) under ctx, and returns at once; ReadyC is closed
// when the first key set is loaded. A second call does nothing.
func (a *Authorizer) Start(ctx context.Context) {
	a.re.mu.Lock()
	defer a.re.mu.Unlock()
	a.re.bg = ctx
	if s := a.snap.Load(); s != nil && s.verifier != nil {
		s.verifier.Start(ctx)
	}
}

// Close stops the background work and waits for it. Decide keeps
// answering, with the last key set loaded.
func (a *Authorizer) Close() {
	a.re.mu.Lock()
	defer a.re.mu.Unlock()
	a.re.stopped = true
	if s := a.snap.Load(); s != nil && s.verifier != nil {
		s.verifier.Close()
	}
}

// CacheLen returns the number of verified tokens cached now (0 without a
// cache), for the cache-size gauge. Safe for concurrent use.
func (a *Authorizer) CacheLen() int {
	if s := a.snap.Load(); s != nil && s.cache != nil {
		return s.cache.len()
	}
	return 0
}

// Decide authorizes r (docs/CONTRACT.md §5). Every outcome is a Decision, never an
// error: 200 allow, 400 malformed, 401 not authenticated, 403 forbidden,
// 503 an identity token not signed (docs/CONTRACT.md §9, upstream.go). A
// cancelled ctx denies (fail closed). Decide logs one line per decision:
// denials at info, allows at debug.
//
// Decide fills the explanation's Rule, Required and Missing, but not
// Matched (which costs allocations on the hot path); Explain does.
func (a *Authorizer) Decide(ctx context.Context, r *Request) Decision {
	return a.decide(ctx, r, false)
}

// Explain is Decide with the full explanation, Matched included: for the
// check command and debugging, not the hot path.
func (a *Authorizer) Explain(ctx context.Context, r *Request) Decision {
	return a.decide(ctx, r, true)
}

func (a *Authorizer) decide(ctx context.Context, r *Request, explain bool) Decision {
	return a.decideOn(ctx, a.snap.Load(), r, explain)
}

// decideOn decides r on s, the snapshot the check loaded.
func (a *Authorizer) decideOn(ctx context.Context, s *snapshot, r *Request, explain bool) Decision {
	var d Decision
	var path string
	switch {
	case s == nil:
		// An Authorizer not built by New: fail closed.
		d = Decision{Status: 403, Reason: ReasonUnknown, Detail: "Authorization service not configured"}
	default:
		d, path = s.decide(ctx, r, explain, a.log)
		if d.Reason == ReasonServiceAccountUnavailable {
			if cur := a.snap.Load(); cur != s {
				// A Reload replaced the service-account store after this
				// check loaded its snapshot, and the old store is being
				// closed (reload.go): the current snapshot answers, as it
				// would have a moment later.
				s = cur
				d, path = s.decide(ctx, r, explain, a.log)
			}
		}
	}
	if d.Allowed() && ctx.Err() != nil {
		// The caller gave up while we verified: fail closed rather than
		// hand out an allow nobody asked for any more.
		d = canceledDecision(detailCanceled)
	}
	if d.TokenProblem == "" && d.Status == 401 {
		d.TokenProblem = tokenProblemOf(d.Reason)
	}
	if s != nil && s.shadow {
		d = shadowed(r, d)
	}
	logDecision(a.log, r, path, &d, a.sampleAllowed(s, &d))
	return d
}

// Decision details of the contract (docs/CONTRACT.md §5 table) that are constants.
const (
	detailMalformedRequest = "Malformed check request"
	detailMalformedPath    = "Malformed request path"
	detailNoRule           = "Insufficient permissions. No permission rule for this route"
	// DetailUnavailable is the 503 of a dependency not available yet or any
	// more: the JWKS before its first fetch, the service-account database.
	DetailUnavailable  = "Authentication is temporarily unavailable"
	detailScopesPrefix = "Insufficient permissions. Required scope(s): "
	// detailCanceled is not a contract message: the caller is gone and
	// will not read it.
	detailCanceled = "Authorization check canceled"
)

// Values of x-agentos-auth (docs/CONTRACT.md §5).
const (
	authJWT  = "jwt"
	authNone = "none"
)

// Upstream header names (docs/CONTRACT.md §5 table).
const (
	HeaderUserID        = "x-agentos-user-id"
	headerSessionID     = "x-agentos-session-id"
	headerScopes        = "x-agentos-scopes"
	headerAuth          = "x-agentos-auth"
	headerAccessibleIDs = "x-agentos-accessible-ids"
	// headerClaimPrefix + claim name carries a forward_claims claim.
	headerClaimPrefix = "x-agentos-claim-"
	headerPrefix      = "x-agentos-"
)

func canceledDecision(detail string) Decision {
	return Decision{Status: ReasonCanceled.Status(), Reason: ReasonCanceled, Detail: detail}
}

// routeMethod is the method the route table is searched with: the request's
// method upper-cased. Methods are case-sensitive (RFC 9110 §9.1), but some
// upstream frameworks route them case-insensitively, so "delete" must need
// what DELETE needs rather than fall through to unmapped_routes. Only the
// exact "OPTIONS" is a preflight. It reports false for an empty method or one
// that is not an HTTP token. No allocation for an upper-case method.
func routeMethod(m string) (string, bool) {
	if !IsHTTPToken(m) {
		return "", false
	}
	for i := 0; i < len(m); i++ {
		if 'a' <= m[i] && m[i] <= 'z' {
			return strings.ToUpper(m), true
		}
	}
	return m, true
}

// decide runs the contract's steps in order; it returns the normalised path
// ("" when it was not reached or is ambiguous) for the log line.
func (s *snapshot) decide(ctx context.Context, r *Request, explain bool, log *zap.Logger) (Decision, string) {
	if ctx.Err() != nil {
		return canceledDecision(detailCanceled), ""
	}
	// 1. a check request without HTTP attributes, or whose method is not
	// an HTTP token (RFC 9110 §9.1): nothing sensible can be matched.
	if r == nil || r.Malformed {
		return s.deny(r, ReasonMalformedRequest, detailMalformedRequest), ""
	}
	method, ok := routeMethod(r.Method)
	if !ok {
		return s.deny(r, ReasonMalformedRequest, detailMalformedRequest), ""
	}
	// 2. an ambiguous path, before any credential is looked at.
	path, ok := normalizePath(r.Path)
	if !ok {
		return s.deny(r, ReasonMalformedPath, detailMalformedPath), ""
	}
	// 3. preflights and excluded routes pass without a credential and carry
	// no identity, whatever credential they hold.
	if r.Method == "OPTIONS" {
		return s.allowNone(r, ReasonAllowedPreflight), path
	}
	if s.excluded.match(path, hasTrailingSlash(r.Path)) {
		return s.allowNone(r, ReasonAllowedExcluded), path
	}
	// 4. authentication (with service accounts: serviceaccounts.go).
	id, auth, fail := s.authenticateAll(ctx, r, log)
	if fail != nil {
		d := s.deny(r, fail.Reason, fail.Detail)
		d.TokenProblem = fail.Problem
		if st := d.Status; st != 503 && st != 429 {
			// An authentication failure is a 401 whatever its reason: a
			// verification cancelled midway too (Reason.Status says 403
			// for a check cancelled before it started). A fault of ours
			// (keys not loaded, the service-account database not
			// answering) stays 503, a throttled service-account lookup 429.
			d.Status = 401
		}
		return d, path
	}
	if auth == AuthSecurityKey {
		// docs/CONTRACT.md §7: each use of the deprecated key is logged (and
		// counted by the service from Decision.Auth). Never the key itself.
		log.Warn("deprecated security key used; migrate to JWTs (docs/CONTRACT.md §7)",
			zap.String("method", truncateForLog(r.Method, logMethodMax)), zap.String("path", truncateForLog(path, logPathMax)),
			zap.String("request_id", truncateForLog(r.Headers["x-request-id"], logRequestIDMax)))
	}
	d := Decision{Status: 200, Reason: ReasonAllowed, Auth: auth, UserID: id.userID}
	// 5. authorization.
	var res scopes.Result
	// docs/CONTRACT.md §8: a service account's scopes are always enforced.
	if s.authorize || auth == authServiceAccount {
		set := &s.keySet
		if auth != AuthSecurityKey {
			set = s.sets.set(&id, s.table)
		}
		res = s.table.Check(method, path, set)
		if res.Rule != nil {
			d.Rule, d.Required = res.Rule.Key, res.Rule.Scopes
		}
		if explain {
			d.Matched = matchedScopes(&res)
		}
		if !res.Allowed {
			return s.forbid(r, d, &res), path
		}
		if res.Listing && s.up.listingDeny {
			return s.forbidListing(r, d, &res), path
		}
		switch {
		case res.Listing:
			d.Reason = ReasonAllowedListing
		case res.Unmapped:
			d.Reason = ReasonAllowedUnmapped
		}
	}
	d.Upstream = upstream(&id, auth, &res)
	d.Remove = removals(r.Headers, d.Upstream)
	if deny, ok := s.identityToken(r, &id, auth, &d, log); !ok {
		return deny, path
	}
	return d, path
}

// forbid turns a failed scope check into its 403.
func (s *snapshot) forbid(r *Request, d Decision, res *scopes.Result) Decision {
	reason, detail := ReasonNoRule, detailNoRule
	if !res.Unmapped {
		reason = ReasonInsufficientScopes
		detail = detailScopesPrefix + strings.Join(res.DeniedScopes(), ", ")
	}
	if d.Auth == authServiceAccount && !res.Unmapped {
		detail = detailSAForbidden // docs/CONTRACT.md §5 table
	}
	deny := s.deny(r, reason, detail)
	deny.Rule, deny.Required, deny.Matched = d.Rule, d.Required, d.Matched
	deny.Missing = res.Missing()
	deny.UserID, deny.Auth = d.UserID, d.Auth
	return deny
}

// authenticate finds and checks the credential (docs/CONTRACT.md §5 step 4, §7). It
// returns the principal and the x-agentos-auth value, or a 401 failure.
func (s *snapshot) authenticate(ctx context.Context, r *Request) (principal, string, *failure) {
	switch s.key.mode {
	case keyOnly:
		tok, ok := s.creds.headerToken(r.Headers)
		if !ok {
			return principal{}, "", &failure{Reason: ReasonMissingCredential, Detail: detailKeyRequired}
		}
		if !s.key.matches(tok) {
			return principal{}, "", &failure{Reason: ReasonInvalidSecurityKey, Detail: detailKeyInvalid}
		}
		return s.keyPrincipal, AuthSecurityKey, nil
	case keyMigration:
		// A bearer equal to the key passes as the key; anything else is a
		// JWT, with the JWT messages.
		if tok, ok := s.creds.headerToken(r.Headers); ok && s.key.matches(tok) {
			return s.keyPrincipal, AuthSecurityKey, nil
		}
	}
	tok, ok := s.creds.token(r.Headers)
	if !ok {
		return principal{}, "", &failure{Reason: ReasonMissingCredential, Detail: s.creds.missing}
	}
	if s.verifier == nil {
		// Unreachable with a validated configuration: fail closed.
		return principal{}, "", &failure{Reason: ReasonInvalidToken, Detail: "Invalid token: no verification key configured"}
	}
	if !s.verifier.Ready() {
		// docs/CONTRACT.md §5: until the keys are loaded (a JWKS URL
		// before its first fetch) no token can be judged; a valid one must
		// not be told it is invalid.
		return principal{}, "", &failure{Reason: ReasonKeysUnavailable, Detail: DetailUnavailable}
	}
	p, fail := s.verifyToken(ctx, tok)
	if fail != nil {
		return principal{}, "", fail
	}
	return p, authJWT, nil
}

// verifyToken verifies tok, or finds it in the verified-token cache. A hit
// is exactly what a verification would say now (see tokencache.go): the
// same key set, the clock inside the token's validity. A valid token is
// remembered there; a settled failure in the failed-verification cache
// (failcache.go), which answers a replayed refused token the same way.
func (s *snapshot) verifyToken(ctx context.Context, tok string) (principal, *failure) {
	if s.cache == nil {
		id, fail := s.verifier.Verify(ctx, tok)
		if fail != nil {
			return principal{}, tokenFailure(fail)
		}
		p := newPrincipal(&id)
		p.up = s.up.newReissued(&id)
		return p, nil
	}
	if ctx.Err() != nil {
		return principal{}, tokenFailure(&jwtauth.Failure{Kind: jwtauth.Canceled})
	}
	// The key set is read before verifying: should it change meanwhile,
	// the entry is stored under the older set and is never served.
	keys := s.verifier.Generation(ctx)
	d := s.cache.digest(tok)
	now := s.clock()
	if p, ok := s.cache.get(&d, keys, now); ok {
		s.obs.CacheHit()
		return p, nil
	}
	s.obs.CacheMiss()
	if f, ok := s.fails.get(&d, keys, now); ok {
		return principal{}, f
	}
	id, from, fail, settled := s.verifier.VerifySettled(ctx, tok)
	if fail != nil {
		f := tokenFailure(fail)
		s.fails.put(&d, keys, s.clock(), f, settled)
		return principal{}, f
	}
	p := s.sets.share(newPrincipal(&id), s.table)
	p.up = s.up.newReissued(&id)
	s.cache.put(&d, keys, now, &id, from, p)
	return p, nil
}

// deny builds a denial, with the status of its reason and the CORS
// headers an accepted Origin gets.
func (s *snapshot) deny(r *Request, reason Reason, detail string) Decision {
	d := Decision{Status: reason.Status(), Reason: reason, Detail: detail}
	if r != nil {
		if origin := r.Headers["origin"]; origin != "" && s.corsAllowed(origin) {
			d.Response = corsHeaders(origin)
		}
	}
	return d
}

// allowNone allows a preflight or an excluded route: x-agentos-auth: none and
// no identity; every inbound x-agentos-* header is removed.
func (s *snapshot) allowNone(r *Request, reason Reason) Decision {
	up := []Header{{Name: headerAuth, Value: authNone}}
	return Decision{Status: 200, Reason: reason, Auth: authNone, Upstream: up, Remove: removals(r.Headers, up)}
}

// corsAllowed reports whether origin is accepted: docs/CONTRACT.md §5, an exact,
// case-sensitive match with cors_allowed_origins, any origin when empty.
func (s *snapshot) corsAllowed(origin string) bool {
	return s.corsAny || slices.Contains(s.cors, origin)
}

func corsHeaders(origin string) []Header {
	return []Header{
		{Name: "access-control-allow-origin", Value: origin},
		{Name: "access-control-allow-credentials", Value: "true"},
		{Name: "access-control-allow-methods", Value: "*"},
		{Name: "access-control-allow-headers", Value: "*"},
		{Name: "access-control-expose-headers", Value: "*"},
	}
}

// upstream builds the docs/CONTRACT.md §5 headers of an allowed request, in the
// table's order.
func upstream(id *principal, auth string, res *scopes.Result) []Header {
	fwd := id.forward()
	up := make([]Header, 0, 5+len(fwd))
	if id.userID != "" {
		up = append(up, Header{Name: HeaderUserID, Value: id.userID})
	}
	if id.sessionID != "" {
		up = append(up, Header{Name: headerSessionID, Value: id.sessionID})
	}
	if id.scopes != "" {
		up = append(up, Header{Name: headerScopes, Value: id.scopes})
	}
	up = append(up, Header{Name: headerAuth, Value: auth})
	if res.Listing {
		up = append(up, Header{Name: headerAccessibleIDs, Value: jsonStrings(res.AccessibleIDs)})
	}
	return append(up, fwd...)
}

// jsonStrings renders ids as a JSON array.
func jsonStrings(ids []string) string {
	if ids == nil {
		ids = []string{}
	}
	b, err := json.Marshal(ids)
	if err != nil {
		// Strings always marshal; keep a valid, empty answer regardless.
		return "[]"
	}
	return string(b)
}

// removals lists the inbound x-agentos-* headers not set in up, sorted, so a
// client can never pass its own identity headers to the upstream.
//
// The work is O(n log n) in the number of headers, whatever they are (a
// preflight or an excluded route carrying 50 000 x-agentos-* headers costs
// one sort, not a quadratic scan): names are collected, sorted, and the
// duplicates that only differ in case removed in one pass. up is the short
// list of docs/CONTRACT.md §5 headers, plus the configured forward_claims.
func removals(h map[string]string, up []Header) []string {
	var out []string
	for name := range h {
		if len(name) < len(headerPrefix) || !strings.EqualFold(name[:len(headerPrefix)], headerPrefix) {
			continue
		}
		lower := strings.ToLower(name)
		if slices.ContainsFunc(up, func(u Header) bool { return u.Name == lower }) {
			continue
		}
		out = append(out, lower)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// excludedRoutes are the compiled excluded_routes globs. docs/CONTRACT.md
// §5: a glob is tried against the normalised path and, when the request's own
// path ended with "/", also against the normalised path with that "/" (AgentOS
// tries the path as sent and without its trailing slash): "/public/*"
// excludes "/public/" and "/public/x", never "/public". The "with" variant is
// built only when some glob could match a string ending in "/".
type excludedRoutes struct {
	globs []excludedGlob
}

type excludedGlob struct {
	glob scopes.Glob
	// slash: the glob may match a string ending in "/" (it ends with a
	// wildcard, a class, or a "/").
	slash bool
}

func compileExcluded(patterns []string) (excludedRoutes, error) {
	var errs []error
	var ex excludedRoutes
	for i, p := range patterns {
		field := fmt.Sprintf("excluded_routes[%d]", i)
		if p == "" || !strings.ContainsRune("/*?[{", rune(p[0])) {
			errs = append(errs, &FieldError{Field: field, Err: fmt.Errorf("%q must start with \"/\"", p)})
			continue
		}
		g, err := scopes.CompileGlob(p)
		if err != nil {
			errs = append(errs, &FieldError{Field: field, Err: err})
			continue
		}
		last := p[len(p)-1]
		ex.globs = append(ex.globs, excludedGlob{glob: g, slash: g.Literal() && last == '/' || !g.Literal() && strings.IndexByte("/*?]}", last) >= 0})
	}
	if len(errs) > 0 {
		return excludedRoutes{}, errors.Join(errs...)
	}
	return ex, nil
}

// match reports whether path (normalised) is excluded; slash says the
// request's path ended with "/" before normalisation.
func (e *excludedRoutes) match(path string, slash bool) bool {
	withSlash := ""
	for i := range e.globs {
		g := &e.globs[i]
		if g.glob.Match(path) {
			return true
		}
		if !slash || !g.slash || path == "/" {
			continue
		}
		if g.glob.Literal() {
			// "/x/" matches "/x" + "/" without building it.
			lit := g.glob.String()
			if len(lit) == len(path)+1 && lit[:len(path)] == path {
				return true
			}
			continue
		}
		if withSlash == "" {
			withSlash = path + "/"
		}
		if g.glob.Match(withSlash) {
			return true
		}
	}
	return false
}

// matchedScopes explains the met required scopes of res (Explain only: it
// allocates).
func matchedScopes(res *scopes.Result) []MatchedScope {
	var out []MatchedScope
	for _, g := range res.Grants() {
		if g.Met() {
			out = append(out, MatchedScope{Required: g.Required, By: g.By})
		}
	}
	return out
}
