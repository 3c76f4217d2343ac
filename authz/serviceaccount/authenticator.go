package serviceaccount

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Kind is the closed set of outcomes of [Authenticator.Authenticate]. Its String is the
// `result` label of the lookup metric. The zero Kind is KindError, so a zero [Result]
// denies.
type Kind uint8

// The outcomes. Only KindOK and KindCached authenticate.
const (
	// KindError: the database could not answer (docs/CONTRACT.md §5: 503). Never counted
	// as a failed lookup.
	KindError Kind = iota
	// KindOK: the database says the token is valid.
	KindOK
	// KindCached: a token verified within cache_ttl and not expired since.
	KindCached
	// KindInvalid: unknown, revoked or expired (401); [Result.Reason] says which.
	KindInvalid
	// KindThrottled: invalid, from a client past max_failures within failure_window
	// (429); [Result.Reason] still says why the token itself failed.
	KindThrottled
)

// String returns "error", "ok", "cached", "invalid" or "throttled".
func (k Kind) String() string {
	switch k {
	case KindOK:
		return "ok"
	case KindCached:
		return "cached"
	case KindInvalid:
		return "invalid"
	case KindThrottled:
		return "throttled"
	}
	return "error"
}

// Reason says why a token failed; ReasonNone otherwise. Its String is safe to log.
type Reason uint8

// The reasons a token fails (AgentOS's three, which it answers with one uniform 401).
const (
	ReasonNone Reason = iota
	ReasonUnknown
	ReasonRevoked
	ReasonExpired
)

// String returns "", "unknown", "revoked" or "expired".
func (r Reason) String() string {
	switch r {
	case ReasonUnknown:
		return "unknown"
	case ReasonRevoked:
		return "revoked"
	case ReasonExpired:
		return "expired"
	}
	return ""
}

// Result is the outcome of one authentication. It never holds the token or its hash.
type Result struct {
	Kind Kind
	// Reason is set for KindInvalid and KindThrottled.
	Reason Reason
	// Account is set for KindOK and KindCached.
	Account Account
	// Err is set for KindError: what failed (it wraps ErrUnavailable or ErrSchema), safe to log.
	Err error
}

// Authenticated reports whether the token passed.
func (r Result) Authenticated() bool { return r.Kind == KindOK || r.Kind == KindCached }

// Observer receives what the service exports as metrics. Its methods are called
// synchronously on the authenticating goroutine and must be safe for concurrent use.
type Observer interface {
	// ObserveQuery is called after every database query (a lookup or a ping) with its
	// duration and whether the database answered (the "database up" gauge).
	ObserveQuery(elapsed time.Duration, up bool)
	// ObserveResult is called once per Authenticate with its outcome.
	ObserveResult(kind Kind)
}

// NopObserver observes nothing.
type NopObserver struct{}

var _ Observer = NopObserver{}

// ObserveQuery does nothing.
func (NopObserver) ObserveQuery(time.Duration, bool) {}

// ObserveResult does nothing.
func (NopObserver) ObserveResult(Kind) {}

// Defaults of [Options] (docs/CONTRACT.md §4, and AgentOS's own limits in
// agno/os/service_accounts.py: a 2048-entry verification cache, 1024 limiter keys).
const (
	DefaultCacheTTL      = 30 * time.Second
	DefaultCacheSize     = 2048
	DefaultMaxFailures   = 20
	DefaultFailureWindow = 60 * time.Second
	DefaultMaxClients    = 1024
	// MaxMaxFailures caps max_failures: the failure counter keeps one timestamp per
	// failure per client, so its memory is MaxClients × MaxFailures timestamps.
	MaxMaxFailures = 10000
)

// Options tunes an [Authenticator]. The zero value of a field is not its default: use
// [DefaultOptions] and change what the configuration sets.
type Options struct {
	// CacheTTL is how long a verified token is served without a lookup; 0 disables the
	// cache (every use reads the database). A token is stale when older than CacheTTL.
	CacheTTL time.Duration
	// CacheSize bounds the cache (least recently used entries go first).
	CacheSize int
	// MaxFailures is the number of failed lookups a client may make within
	// FailureWindow; the next failing token gets KindThrottled. 0 disables throttling.
	MaxFailures int
	// FailureWindow is the sliding window of the failure count.
	FailureWindow time.Duration
	// MaxClients bounds the number of client addresses whose failures are remembered
	// (the least recently failing is forgotten first).
	MaxClients int
}

// DefaultOptions returns the defaults: 30s cache of 2048 tokens, 20 failures per 60s,
// 1024 clients.
func DefaultOptions() Options {
	return Options{
		CacheTTL:      DefaultCacheTTL,
		CacheSize:     DefaultCacheSize,
		MaxFailures:   DefaultMaxFailures,
		FailureWindow: DefaultFailureWindow,
		MaxClients:    DefaultMaxClients,
	}
}

// Check returns every problem of o, each named by its configuration field.
func (o Options) Check() error {
	var errs []error
	if o.CacheTTL < 0 {
		errs = append(errs, errors.New("service_accounts.cache_ttl: negative"))
	}
	if o.CacheSize < 1 {
		errs = append(errs, fmt.Errorf("cache size: %d, want at least 1", o.CacheSize))
	}
	if o.MaxFailures < 0 || o.MaxFailures > MaxMaxFailures {
		errs = append(errs, fmt.Errorf("service_accounts.max_failures: %d is not within 0..%d", o.MaxFailures, MaxMaxFailures))
	}
	if o.FailureWindow <= 0 {
		errs = append(errs, errors.New("service_accounts.failure_window: must be positive"))
	}
	if o.MaxClients < 1 {
		errs = append(errs, fmt.Errorf("client limit: %d, want at least 1", o.MaxClients))
	}
	return errors.Join(errs...)
}

// Authenticator verifies service-account tokens against a [Store] with AgentOS's cache
// and failed-lookup limiter (agno/os/service_accounts.py, ServiceAccountVerifier). It is
// safe for concurrent use; its memory is bounded by CacheSize and MaxClients.
type Authenticator struct {
	store    *Store
	observer Observer
	cache    *verifiedCache
	limiter  *failureLimiter
}

// NewAuthenticator builds an authenticator on store, which it does not own (close the
// store after the authenticator's last use). observer may be nil.
func NewAuthenticator(store *Store, o Options, observer Observer) (*Authenticator, error) {
	if store == nil {
		return nil, errors.New("service accounts: no store")
	}
	if err := o.Check(); err != nil {
		return nil, err
	}
	if observer == nil {
		observer = NopObserver{}
	}
	return &Authenticator{
		store:    store,
		observer: observer,
		cache:    newVerifiedCache(o.CacheTTL, o.CacheSize),
		limiter:  newFailureLimiter(o.MaxFailures, o.FailureWindow, o.MaxClients),
	}, nil
}

// Store returns the store the authenticator reads.
func (a *Authenticator) Store() *Store { return a.store }

// Authenticate verifies token (the whole `agno_pat_…` credential) for the client at
// clientAddr (its IP address; a host:port is reduced to the host, and "" is one shared
// client) at now (pass time.Now(): its monotonic reading times the cache and the failure
// window, its wall clock is compared with expires_at).
//
// The order is AgentOS's: a cached verification is served when younger than CacheTTL and
// not expired; otherwise the token is always looked up, so a valid token is never
// throttled; only a token the database calls invalid is counted against clientAddr, and
// past MaxFailures within FailureWindow it is KindThrottled instead of KindInvalid. A
// database error is KindError and is not counted.
func (a *Authenticator) Authenticate(ctx context.Context, token, clientAddr string, now time.Time) Result {
	res := a.authenticate(ctx, token, clientAddr, now)
	a.observer.ObserveResult(res.Kind)
	return res
}

func (a *Authenticator) authenticate(ctx context.Context, token, clientAddr string, now time.Time) Result {
	sum := sha256.Sum256([]byte(token))
	if acct, ok := a.cache.get(sum, now); ok {
		return Result{Kind: KindCached, Account: acct}
	}
	var res lookupResult
	if strings.HasPrefix(token, TokenPrefix) {
		var err error
		res, err = a.store.lookup(ctx, hex.EncodeToString(sum[:]), now)
		if err != nil {
			return Result{Kind: KindError, Err: err}
		}
	} else {
		res.reason = ReasonUnknown // AgentOS mints nothing else: no row can match
	}
	if res.reason == ReasonNone {
		a.cache.put(sum, res.account, now)
		return Result{Kind: KindOK, Account: cloneAccount(res.account)}
	}
	// A concurrent lookup may have cached this token before it was revoked: drop it, so
	// the revocation this lookup saw is not hidden for another TTL.
	a.cache.remove(sum)
	if a.limiter.fail(clientKey(clientAddr), now) {
		return Result{Kind: KindThrottled, Reason: res.reason}
	}
	return Result{Kind: KindInvalid, Reason: res.reason}
}

// clientKey reduces a client address to the IP it names, so that the ports of one
// client's connections do not make separate counters.
func clientKey(addr string) string {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap.Addr().Unmap().String()
	}
	if ip, err := netip.ParseAddr(addr); err == nil {
		return ip.Unmap().String()
	}
	return addr
}

func cloneAccount(a Account) Account {
	a.Scopes = slices.Clone(a.Scopes)
	return a
}
