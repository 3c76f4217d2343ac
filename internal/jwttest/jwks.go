package jwttest

import (
	"crypto"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// JWKS builds a JWKS document of public keys; kids[i] == "" leaves key i
// without a kid. Each key gets use: sig and, when algs[i] is non-empty, alg.
func JWKS(t testing.TB, keys []crypto.PublicKey, kids, algs []string) []byte {
	t.Helper()
	set := jwk.NewSet()
	for i, pub := range keys {
		k, err := jwk.FromRaw(pub)
		if err != nil {
			t.Fatal(err)
		}
		if kids[i] != "" {
			mustSet(t, k, jwk.KeyIDKey, kids[i])
		}
		mustSet(t, k, jwk.KeyUsageKey, "sig")
		if algs != nil && algs[i] != "" {
			mustSet(t, k, jwk.AlgorithmKey, algs[i])
		}
		if err := set.AddKey(k); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// JWK is the JWK JSON of a public key with kid and use when non-empty and
// alg when given.
func JWK(t testing.TB, pub crypto.PublicKey, kid, use string, alg ...string) string {
	t.Helper()
	k, err := jwk.FromRaw(pub)
	if err != nil {
		t.Fatal(err)
	}
	if kid != "" {
		mustSet(t, k, jwk.KeyIDKey, kid)
	}
	if use != "" {
		mustSet(t, k, jwk.KeyUsageKey, use)
	}
	if len(alg) > 0 {
		mustSet(t, k, jwk.AlgorithmKey, alg[0])
	}
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustSet(t testing.TB, k jwk.Key, name string, v any) {
	t.Helper()
	if err := k.Set(name, v); err != nil {
		t.Fatalf("jwk %s: %v", name, err)
	}
}

// Rotation is the JWKS documents of a key rotation — RS alone under kid
// k1, RS and RS2 (k1, k2), RS2 alone — and tokens signed by each key.
type Rotation struct {
	Only1, Both, Only2 []byte
	Tok1, Tok2         string
	TokX               string // signed by RS under a kid no document has
}

// NewRotation builds the Rotation of k's RS and RS2 keys.
func NewRotation(t testing.TB, k *Keys) Rotation {
	t.Helper()
	pub1, pub2 := k.RS.Priv.Public(), k.RS2.Priv.Public()
	return Rotation{
		Only1: JWKS(t, []crypto.PublicKey{pub1}, []string{"k1"}, []string{"RS256"}),
		Both:  JWKS(t, []crypto.PublicKey{pub1, pub2}, []string{"k1", "k2"}, []string{"RS256", "RS256"}),
		Only2: JWKS(t, []crypto.PublicKey{pub2}, []string{"k2"}, []string{"RS256"}),
		Tok1:  Mint(t, Token{Alg: "RS256", Key: k.RS.Priv, Header: map[string]any{"kid": "k1"}, Claims: Claims(nil)}),
		Tok2:  Mint(t, Token{Alg: "RS256", Key: k.RS2.Priv, Header: map[string]any{"kid": "k2"}, Claims: Claims(nil)}),
		TokX:  Mint(t, Token{Alg: "RS256", Key: k.RS.Priv, Header: map[string]any{"kid": "x"}, Claims: Claims(nil)}),
	}
}

// The answers a JWKSServer can be switched to.
const (
	ModeOK      = "ok"      // the document, with CacheControl when set
	ModeDown    = "down"    // 503
	ModeSlow    = "slow"    // never answers: the client's timeout must end the fetch
	ModeGarbage = "garbage" // 200 with HTML
	ModeNoKeys  = "nokeys"  // a JWKS whose only key is for encryption
	ModeHuge    = "huge"    // a valid JSON document of more than HugeSize bytes
)

// HugeSize is the size ModeHuge exceeds: 1 MiB, the verifier's limit on a
// JWKS document (docs/CONTRACT.md §4).
const HugeSize = 1 << 20

// JWKSServer is a JWKS endpoint on loopback whose answer a test switches
// between a document and faults, counting the requests.
type JWKSServer struct {
	*httptest.Server
	Hits atomic.Int64

	mu           sync.Mutex
	mode         string
	body         []byte
	cacheControl string
}

// NewJWKSServer serves body until Set changes it; t's end closes it.
func NewJWKSServer(t testing.TB, body []byte) *JWKSServer {
	t.Helper()
	s := &JWKSServer{mode: ModeOK, body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.Close)
	return s
}

// Set switches the answer to mode and, when body is not nil, the document.
func (s *JWKSServer) Set(mode string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode = mode
	if body != nil {
		s.body = body
	}
}

// SetCacheControl sets the Cache-Control header of the document's answers.
func (s *JWKSServer) SetCacheControl(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cacheControl = v
}

func (s *JWKSServer) handle(w http.ResponseWriter, r *http.Request) {
	s.Hits.Add(1)
	s.mu.Lock()
	mode, body, cc := s.mode, s.body, s.cacheControl
	s.mu.Unlock()
	switch mode {
	case ModeDown:
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	case ModeSlow:
		<-r.Context().Done()
	case ModeGarbage:
		_, _ = w.Write([]byte("<html>this is not a JWKS</html>"))
	case ModeNoKeys:
		_, _ = w.Write([]byte(`{"keys":[{"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"}]}`))
	case ModeHuge:
		_, _ = w.Write([]byte(`{"keys":[],"pad":"` + strings.Repeat("a", HugeSize) + `"}`))
	default:
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}
}

// Observer records what a JWKS fetch observer is told (the methods of
// jwtauth.FetchObserver).
type Observer struct {
	mu      sync.Mutex
	fetches []error  // one per fetch, nil on success
	fetched []string // the URLs fetched successfully

	Limited atomic.Int64
	Hits    atomic.Int64
	Misses  atomic.Int64
}

// Fetch records one fetch of url.
func (o *Observer) Fetch(url string, err error, _ int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fetches = append(o.fetches, err)
	if err == nil {
		o.fetched = append(o.fetched, url)
	}
}

// RefetchLimited counts a refused kid-miss refetch.
func (o *Observer) RefetchLimited(string) { o.Limited.Add(1) }

// CacheHit counts a token cache hit.
func (o *Observer) CacheHit() { o.Hits.Add(1) }

// CacheMiss counts a token cache miss.
func (o *Observer) CacheMiss() { o.Misses.Add(1) }

// Errors is the result of every fetch so far, in order (nil: success).
func (o *Observer) Errors() []error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]error(nil), o.fetches...)
}

// Fetched is the URL of every successful fetch so far, in order.
func (o *Observer) Fetched() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.fetched...)
}

// FakeClock is an injected clock a test moves by hand; After waits on it.
type FakeClock struct {
	mu      sync.Mutex
	t       time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

// NewFakeClock is a FakeClock at t.
func NewFakeClock(t time.Time) *FakeClock { return &FakeClock{t: t} }

// Now is the clock's time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// After is time.After on c: the channel receives once Advance reaches d
// from now.
func (c *FakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.t
		return ch
	}
	c.waiters = append(c.waiters, waiter{at: c.t.Add(d), ch: ch})
	return ch
}

// Waiting is the number of After channels not yet fired.
func (c *FakeClock) Waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

// Advance moves the clock by d and fires the After channels it reaches.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setLocked(c.t.Add(d))
}

// Set moves the clock to t (backwards too) and fires the After channels it
// reaches.
func (c *FakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setLocked(t)
}

func (c *FakeClock) setLocked(t time.Time) {
	c.t = t
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.t) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.t
	}
	c.waiters = kept
}
