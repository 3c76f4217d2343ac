package jwtauth

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentos-authz/agentos-authz/internal/boundedfile"
	"go.uber.org/zap"
)

// This file owns fetching a JWKS over HTTP(S): the transport
// rules (HTTPS with the system roots plus jwt.jwks_ca_file; plain HTTP only
// to loopback or with jwt.jwks_allow_insecure), the limits of one fetch
// (5 s, 1 MiB, a JWK Set with a usable key), OIDC discovery, the background
// refresh (a loop on the injected clock) and the rate-limited refetch on an
// unknown kid. Every fault keeps the last good key set.

// Limits of the JWKS URL source.
const (
	// jwksFetchTimeout bounds one fetch, body included.
	jwksFetchTimeout = 5 * time.Second
	// jwksRefetchGap is the least time between two kid-miss refetches of
	// one URL: a flood of forged kids must not turn the service into a
	// request amplifier against the identity provider.
	jwksRefetchGap = 10 * time.Second
	// A server's Cache-Control max-age is honoured within these bounds.
	jwksMinMaxAge = time.Minute
	jwksMaxAgeMax = 24 * time.Hour
	// jwksRetryMax bounds the wait before retrying a failed fetch (or
	// discovery); the configured refresh interval bounds it too.
	jwksRetryMax     = 10 * time.Second
	jwksMaxRedirects = 3
)

// FetchObserver receives what operators count about a JWKS URL: its
// fetches and the refetches the rate limit refused. A metrics exporter
// implements it (authz.JWKSObserver includes it). Implementations must be
// safe for concurrent use and must not block.
type FetchObserver interface {
	// Fetch reports one fetch of a JWKS URL or of an OIDC discovery
	// document (first load, background refresh or kid-miss refetch): err
	// is nil and keys the number of usable keys on success (0 for a
	// discovery document), else a *FetchError whose Fault is a stable
	// label. Called from background goroutines and, for a refetch, from a
	// goroutine a request waits for.
	Fetch(url string, err error, keys int)
	// RefetchLimited reports a kid-miss refetch refused by the rate limit
	// (at most one per 10 s per URL).
	RefetchLimited(url string)
}

// nopObserver counts nothing.
type nopObserver struct{}

var _ FetchObserver = nopObserver{}

func (nopObserver) Fetch(string, error, int) {}
func (nopObserver) RefetchLimited(string)    {}

// FetchFault is the kind of a failed JWKS fetch: a stable label for logs
// and metrics.
type FetchFault string

// The fetch faults.
const (
	FaultTimeout   FetchFault = "timeout"   // no complete answer within 5 s
	FaultNetwork   FetchFault = "network"   // connection, TLS or HTTP failure
	FaultStatus    FetchFault = "status"    // an HTTP status other than 200
	FaultTooLarge  FetchFault = "too_large" // a body over 1 MiB
	FaultMalformed FetchFault = "malformed" // not a JWK Set with a usable key, or a bad discovery document
	FaultRefused   FetchFault = "refused"   // a redirect or jwks_uri the transport rules forbid
	FaultCanceled  FetchFault = "canceled"  // the source was closed
)

// FetchError is a failed fetch of a JWKS URL or discovery document.
type FetchError struct {
	// URL is the URL fetched, without user information.
	URL   string
	Fault FetchFault
	Err   error
}

func (e *FetchError) Error() string {
	return "fetching " + e.URL + ": " + e.Err.Error()
}

func (e *FetchError) Unwrap() error { return e.Err }

// remoteJWKSOptions configure newRemoteJWKS.
type remoteJWKSOptions struct {
	// URL is the JWKS URL. Empty: discovered from Issuer.
	URL string
	// Issuer, with no URL, is where OIDC discovery starts: jwks_uri of
	// <Issuer>/.well-known/openid-configuration, whose issuer must equal
	// Issuer.
	Issuer string
	// Refresh is the refresh interval when the server sends no
	// Cache-Control max-age (default DefaultJWKSRefresh).
	Refresh time.Duration
	// RootCAs are the roots trusted (Config.JWKSCAFile read by Compile);
	// nil: the system roots.
	RootCAs *x509.CertPool
	// AllowInsecure allows plain HTTP to hosts other than loopback.
	AllowInsecure bool
	// Timeout bounds one fetch (default 5 s).
	Timeout time.Duration
	// RefetchGap is the least time between two kid-miss refetches
	// (default 10 s).
	RefetchGap time.Duration
	// Clock is the time source of the refetch rate limit; nil: time.Now.
	Clock func() time.Time
	// After waits on the same clock as Clock, as time.After does: the
	// refresh and retry delays. Nil: time.After.
	After func(time.Duration) <-chan time.Time
	// Logger receives the fetch outcomes (URLs and errors, never key
	// material); nil: zap.NewNop().
	Logger *zap.Logger
	// Observer counts the fetches; nil: nopObserver.
	Observer FetchObserver
	// OnFirstLoad, when set, is called once, outside any lock, after the
	// first key set is stored (Ready is true by then).
	OnFirstLoad func()
}

// remoteJWKS is a jwksSource that fetches a JWKS URL and keeps it fresh:
// a background loop refreshes it (every Refresh, or as the
// server's Cache-Control max-age says, within [1m, 24h]), and a token whose
// kid no key has triggers one immediate refetch, at most one per 10 s. A
// failed, slow, oversized or malformed fetch keeps the last good key set.
//
// Nothing is fetched before Start; Ready reports when the first key set is
// loaded. Keys is a lock-free snapshot read. Safe for concurrent use.
type remoteJWKS struct {
	issuer        string
	refresh       time.Duration
	retry         time.Duration
	timeout       time.Duration
	gap           time.Duration
	allowInsecure bool
	client        *http.Client
	clock         func() time.Time
	after         func(time.Duration) <-chan time.Time
	log           *zap.Logger
	obs           FetchObserver
	onFirstLoad   func() // nil: nobody to tell

	set atomic.Pointer[keySet]   // the last good key set; nil until loaded
	url atomic.Pointer[string]   // the JWKS URL; nil until discovered
	gen atomic.Uint64            // key set changes, for tests and logs
	fp  atomic.Pointer[[32]byte] // fingerprint of set

	mu          sync.Mutex // guards what follows
	life        context.Context
	stop        context.CancelFunc
	closed      bool
	lastRefetch time.Time
	inflight    *refetchCall
	wg          sync.WaitGroup
}

var _ jwksSource = (*remoteJWKS)(nil)

// refetchCall is one kid-miss refetch; concurrent misses wait for it.
type refetchCall struct {
	done chan struct{}
	err  error
}

// newRemoteJWKS checks the URL (or issuer) against the transport rules and
// builds the HTTP client. It fetches nothing. The error is a *Problem.
func newRemoteJWKS(o remoteJWKSOptions) (*remoteJWKS, error) {
	r := &remoteJWKS{
		issuer:        o.Issuer,
		refresh:       o.Refresh,
		timeout:       o.Timeout,
		gap:           o.RefetchGap,
		allowInsecure: o.AllowInsecure,
		clock:         o.Clock,
		after:         o.After,
		log:           o.Logger,
		obs:           o.Observer,
		onFirstLoad:   o.OnFirstLoad,
	}
	switch {
	case o.URL != "":
		if _, err := checkFetchURL(o.URL, o.AllowInsecure); err != nil {
			return nil, &Problem{Field: "jwks_url", Err: err}
		}
		u := o.URL
		r.url.Store(&u)
	case o.Issuer != "":
		if _, err := checkFetchURL(o.Issuer, o.AllowInsecure); err != nil {
			return nil, &Problem{Field: "issuer", Err: fmt.Errorf("OIDC discovery: %w", err)}
		}
	default:
		return nil, &Problem{Field: "jwks_url", Err: errors.New("no JWKS URL and no issuer to discover it from")}
	}
	if r.refresh <= 0 {
		r.refresh = DefaultJWKSRefresh
	}
	r.retry = min(r.refresh, jwksRetryMax)
	if r.timeout <= 0 {
		r.timeout = jwksFetchTimeout
	}
	if r.gap <= 0 {
		r.gap = jwksRefetchGap
	}
	if r.clock == nil {
		r.clock = time.Now
	}
	if r.after == nil {
		r.after = time.After
	}
	if r.log == nil {
		r.log = zap.NewNop()
	}
	if r.obs == nil {
		r.obs = nopObserver{}
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: o.RootCAs}
	base, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return nil, &Problem{Field: "jwks_url", Err: errors.New("http.DefaultTransport is not an *http.Transport")}
	}
	tr := base.Clone()
	tr.TLSClientConfig = tlsConf
	tr.MaxIdleConnsPerHost = 1
	r.client = &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= jwksMaxRedirects {
				return fmt.Errorf("more than %d redirects", jwksMaxRedirects)
			}
			if _, err := checkFetchURL(req.URL.String(), r.allowInsecure); err != nil {
				return &FetchError{URL: redact(req.URL.String()), Fault: FaultRefused, Err: fmt.Errorf("redirect refused: %w", err)}
			}
			return nil
		},
	}
	return r, nil
}

// Keys returns the last good key set: nil (and no error) until the first
// one is loaded.
func (r *remoteJWKS) Keys(context.Context) (*keySet, error) { return r.set.Load(), nil }

// Ready reports whether a key set is loaded.
func (r *remoteJWKS) Ready() bool { return r.set.Load() != nil }

// URL is the JWKS URL, "" while discovery has not found it.
func (r *remoteJWKS) URL() string {
	if u := r.url.Load(); u != nil {
		return *u
	}
	return ""
}

// Generation counts the changes of the key set: 0 before the first load,
// then one more each time a fetch brings different keys.
func (r *remoteJWKS) Generation() uint64 { return r.gen.Load() }

// Start begins the background work under ctx: discovery when needed, the
// first load, then the refreshes. It returns at once; a second
// call does nothing. Close (or cancelling ctx) stops it.
func (r *remoteJWKS) Start(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.life != nil || r.closed {
		return
	}
	r.life, r.stop = context.WithCancel(ctx)
	r.wg.Add(1)
	go r.run(r.life)
}

// Close stops the background work and waits for the fetches it started.
// The last good key set stays served.
func (r *remoteJWKS) Close() {
	r.mu.Lock()
	r.closed = true
	stop := r.stop
	r.mu.Unlock()
	if stop != nil {
		stop()
	}
	r.wg.Wait()
}

// run discovers the URL if needed, then fetches it for ever: the first
// load at once, then each fetch after the wait the last one chose (the
// refresh interval or the server's max-age after a success, the retry
// delay after a failure). Every fetch runs here, on a goroutine Close
// waits for, and ends with ctx.
func (r *remoteJWKS) run(ctx context.Context) {
	defer r.wg.Done()
	u := r.URL()
	if u == "" {
		if u = r.discoverLoop(ctx); u == "" {
			return // closed
		}
	}
	for {
		_, next, err := r.fetch(ctx, u)
		if err != nil {
			next = r.retry
		}
		if !r.wait(ctx, next) {
			return
		}
	}
}

// wait waits d on the injected clock; false when ctx ends first.
func (r *remoteJWKS) wait(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-r.after(d):
		return true
	}
}

// Refetch is the kid-miss refetch (docs/CONTRACT.md §5): one immediate fetch, at
// most one per RefetchGap; misses that arrive while it runs wait for it
// (bounded by their ctx), misses within the gap get nil at once. It
// returns the key set after the fetch, or nil when nothing was fetched.
func (r *remoteJWKS) Refetch(ctx context.Context, _ string) (*keySet, error) {
	u := r.URL()
	r.mu.Lock()
	if r.life == nil || r.closed || u == "" {
		r.mu.Unlock()
		return nil, nil
	}
	c := r.inflight
	if c == nil {
		now := r.clock()
		if !r.lastRefetch.IsZero() && now.Sub(r.lastRefetch) < r.gap && now.Sub(r.lastRefetch) >= 0 {
			r.mu.Unlock()
			r.obs.RefetchLimited(redact(u))
			return nil, nil
		}
		r.lastRefetch = now
		c = &refetchCall{done: make(chan struct{})}
		r.inflight = c
		life := r.life
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			// The fetch outlives the request that asked for it (the next
			// ones wait for it too); Close ends it.
			_, _, err := r.fetch(life, u)
			r.mu.Lock()
			r.inflight = nil
			r.mu.Unlock()
			c.err = err
			close(c.done)
		}()
	}
	r.mu.Unlock()
	select {
	case <-c.done:
		if c.err != nil {
			return nil, c.err
		}
		return r.set.Load(), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// fetch GETs the JWKS at u, parses it, and on success makes it the key
// set. It reports the outcome (log, observer) and returns the body and the
// interval until the next refresh.
func (r *remoteJWKS) fetch(ctx context.Context, u string) ([]byte, time.Duration, error) {
	body, hdr, err := r.get(ctx, u)
	var ks *keySet
	if err == nil {
		var perr error
		if ks, perr = parseJWKS(body); perr != nil {
			err = &FetchError{URL: redact(u), Fault: FaultMalformed, Err: fmt.Errorf("the document %w", perr)}
		}
	}
	if err != nil {
		r.failed(u, err)
		return nil, 0, err
	}
	r.obs.Fetch(redact(u), nil, ks.Len())
	r.accept(u, ks)
	return body, refreshInterval(hdr.Get("Cache-Control"), r.refresh), nil
}

// failed logs and counts a failed fetch. Before the first key set the
// service is not ready, and the line says so.
func (r *remoteJWKS) failed(u string, err error) {
	var fe *FetchError
	fault := FaultNetwork
	if errors.As(err, &fe) {
		fault = fe.Fault
	}
	r.obs.Fetch(redact(u), err, 0)
	if fault == FaultCanceled {
		r.log.Debug("JWKS fetch canceled", zap.String("url", redact(u)))
		return
	}
	if r.set.Load() == nil {
		r.log.Error("JWKS not loaded: not ready until a key set is fetched",
			zap.String("url", redact(u)), zap.String("fault", string(fault)), zap.Error(err))
		return
	}
	r.log.Warn("JWKS fetch failed: keeping the last good key set",
		zap.String("url", redact(u)), zap.String("fault", string(fault)), zap.Error(err))
}

// accept makes ks the key set if its keys differ from the current ones, so
// that an unchanged document keeps the generation (and the token cache).
// The first key set is announced to onFirstLoad, after the lock is released
// (the callback may read Ready, or anything else of r).
func (r *remoteJWKS) accept(u string, ks *keySet) {
	if r.store(u, ks) && r.onFirstLoad != nil {
		r.onFirstLoad()
	}
}

// store is accept under the lock; it reports whether ks is the first key
// set.
func (r *remoteJWKS) store(u string, ks *keySet) (first bool) {
	fp := keySetFingerprint(ks)
	r.mu.Lock()
	defer r.mu.Unlock()
	if old := r.fp.Load(); old != nil && *old == fp {
		r.log.Debug("JWKS refreshed, keys unchanged", zap.String("url", redact(u)))
		return false
	}
	first = r.set.Load() == nil
	r.fp.Store(&fp)
	r.set.Store(ks)
	gen := r.gen.Add(1)
	r.log.Info("JWKS key set loaded",
		zap.String("url", redact(u)), zap.Bool("first", first), zap.Uint64("generation", gen),
		zap.Int("keys", ks.Len()), zap.Int("skipped", ks.Skipped()), zap.Strings("kids", ks.kids()))
	return first
}

// get fetches u within the timeout and the size limit.
func (r *remoteJWKS) get(ctx context.Context, u string) ([]byte, http.Header, error) {
	shown := redact(u)
	fail := func(f FetchFault, err error) ([]byte, http.Header, error) {
		return nil, nil, &FetchError{URL: shown, Fault: f, Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fail(FaultNetwork, errors.New("not a valid URL"))
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	res, err := r.client.Do(req)
	if err != nil {
		return fail(classify(ctx, err, r.timeout))
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4<<10))
		return fail(FaultStatus, fmt.Errorf("HTTP status %s", res.Status))
	}
	if res.ContentLength > maxJWKSBytes {
		return fail(FaultTooLarge, fmt.Errorf("the body (%d bytes) is larger than 1 MiB", res.ContentLength))
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxJWKSBytes+1))
	if err != nil {
		return fail(classify(ctx, err, r.timeout))
	}
	if len(body) > maxJWKSBytes {
		return fail(FaultTooLarge, errors.New("the body is larger than 1 MiB"))
	}
	return body, res.Header, nil
}

// classify names a transport error.
func classify(ctx context.Context, err error, timeout time.Duration) (FetchFault, error) {
	var fe *FetchError
	if errors.As(err, &fe) {
		return fe.Fault, fe.Err
	}
	var ne net.Error
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return FaultCanceled, errors.New("the JWKS source was closed")
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return FaultTimeout, fmt.Errorf("no complete answer within %s", timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the URL is already in the message
	}
	return FaultNetwork, err
}

// discoverLoop runs OIDC discovery until it succeeds (returning the JWKS
// URL) or ctx ends (returning ""), waiting longer after each failure.
func (r *remoteJWKS) discoverLoop(ctx context.Context) string {
	wait := min(time.Second, r.retry)
	for {
		u, err := r.discover(ctx)
		if err == nil {
			r.url.Store(&u)
			r.log.Info("JWKS URL discovered", zap.String("issuer", redact(r.issuer)), zap.String("url", redact(u)))
			return u
		}
		r.failed(discoveryURL(r.issuer), err)
		if !r.wait(ctx, wait) {
			return ""
		}
		wait = min(2*wait, r.retry)
	}
}

func discoveryURL(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
}

// discover reads jwks_uri from the issuer's discovery document (OpenID
// Connect Discovery 1.0 §4): its issuer must be ours (§4.3), and jwks_uri
// must obey the transport rules.
func (r *remoteJWKS) discover(ctx context.Context) (string, error) {
	du := discoveryURL(r.issuer)
	body, _, err := r.get(ctx, du)
	if err != nil {
		return "", err
	}
	bad := func(f FetchFault, format string, args ...any) (string, error) {
		return "", &FetchError{URL: redact(du), Fault: f, Err: fmt.Errorf(format, args...)}
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return bad(FaultMalformed, "the discovery document is not JSON with issuer and jwks_uri")
	}
	if strings.TrimSuffix(doc.Issuer, "/") != strings.TrimSuffix(r.issuer, "/") {
		return bad(FaultMalformed, "the discovery document is for issuer %q, not jwt.issuer %q", doc.Issuer, r.issuer)
	}
	if doc.JWKSURI == "" {
		return bad(FaultMalformed, "the discovery document has no jwks_uri")
	}
	if _, err := checkFetchURL(doc.JWKSURI, r.allowInsecure); err != nil {
		return bad(FaultRefused, "jwks_uri %q: %w", redact(doc.JWKSURI), err)
	}
	r.obs.Fetch(redact(du), nil, 0)
	return doc.JWKSURI, nil
}

// refreshInterval is the wait until the next refresh: the server's
// Cache-Control max-age kept within [1m, 24h], else the configured
// interval.
func refreshInterval(cacheControl string, configured time.Duration) time.Duration {
	for part := range strings.SplitSeq(cacheControl, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "max-age") {
			continue
		}
		secs, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(value), `"`), 10, 64)
		if err != nil || secs < 0 {
			break
		}
		if secs > int64(jwksMaxAgeMax/time.Second) {
			return jwksMaxAgeMax
		}
		return max(time.Duration(secs)*time.Second, jwksMinMaxAge)
	}
	return configured
}

// checkFetchURL applies the transport rules to a JWKS URL or an issuer:
// an absolute https URL, or http to a loopback host (or anywhere with
// allowInsecure); no user information (it would end up in logs) and no
// fragment.
func checkFetchURL(raw string, allowInsecure bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("%q is not an absolute http(s) URL", redact(raw))
	}
	if u.User != nil {
		return nil, errors.New("must not carry user information (credentials would be logged)")
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("%q must not have a fragment", redact(raw))
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !allowInsecure && !isLoopbackHost(u.Hostname()) {
			return nil, fmt.Errorf("%q is plain HTTP to a host that is not loopback: use https, or set jwt.jwks_allow_insecure: true (development only)", redact(raw))
		}
	default:
		return nil, fmt.Errorf("%q is not an http(s) URL", redact(raw))
	}
	return u, nil
}

// isLoopbackHost reports localhost and loopback addresses.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redact drops the user information of a URL for messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// maxCAFileBytes bounds jwt.jwks_ca_file: a CA bundle, even a whole
// system one, is a few hundred KiB.
const maxCAFileBytes = 4 << 20

// loadCAFile reads PEM CA certificates and adds them to the system roots;
// the file's bytes go to files.
func loadCAFile(path string, files io.Writer) (*x509.CertPool, error) {
	data, err := boundedfile.Read(path, maxCAFileBytes)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%q does not exist", path)
		}
		return nil, fmt.Errorf("%q cannot be read: %w", path, err)
	}
	digestFile(files, path, data)
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%q holds no PEM certificate", path)
	}
	return pool, nil
}

// checkRemote checks the fields of a fetched JWKS: the URL (or the issuer
// it is discovered from) against the transport rules, and reads the CA
// file (its pool is returned; nil without one or on a problem).
func (c *Config) checkRemote(files io.Writer) (*x509.CertPool, []error) {
	var errs []error
	fail := func(path, format string, args ...any) {
		errs = append(errs, &Problem{Field: path, Err: fmt.Errorf(format, args...)})
	}
	var pool *x509.CertPool
	if c.JWKSURL != "" {
		if _, err := checkFetchURL(c.JWKSURL, c.JWKSAllowInsecure); err != nil {
			fail("jwks_url", "%v", err)
		}
	}
	if c.discoversJWKS() {
		if _, err := checkFetchURL(c.Issuer, c.JWKSAllowInsecure); err != nil {
			fail("issuer", "with no other key source the JWKS is found by OIDC discovery from the issuer, which must be a URL: %v", err)
		}
	}
	if c.JWKSCAFile != "" {
		if !c.RemoteJWKS() {
			fail("jwks_ca_file", "is set but no JWKS is fetched (set jwks_url, or issuer alone for OIDC discovery)")
		} else if p, err := loadCAFile(c.JWKSCAFile, files); err != nil {
			fail("jwks_ca_file", "%v", err)
		} else {
			pool = p
		}
	}
	return pool, errs
}

// kids lists the key ids of s, sorted, for logs (key ids are public).
func (s *keySet) kids() []string {
	out := make([]string, 0, len(s.byKID))
	for kid := range s.byKID {
		out = append(out, kid)
	}
	slices.Sort(out)
	return out
}

// keySetFingerprint digests the usable keys of s (kid, algorithms,
// public key or secret), independent of their order in the document.
func keySetFingerprint(s *keySet) [32]byte {
	var lines []string
	add := func(k verifyKey) {
		var material []byte
		switch raw := k.raw.(type) {
		case []byte:
			material = raw
		default:
			der, err := x509.MarshalPKIXPublicKey(raw)
			if err != nil {
				der = fmt.Appendf(nil, "%T %v", raw, raw)
			}
			material = der
		}
		lines = append(lines, k.kid+"\x00"+strconv.Itoa(int(k.algs))+"\x00"+string(material))
	}
	for _, k := range s.kidless {
		add(k)
	}
	for _, keys := range s.byKID {
		for _, k := range keys {
			add(k)
		}
	}
	slices.Sort(lines)
	return sha256.Sum256([]byte(strings.Join(lines, "\x01")))
}
