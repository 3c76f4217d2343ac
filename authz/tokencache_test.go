package authz

import (
	"context"
	"crypto/sha256"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"go.uber.org/zap"

	"github.com/agentos-authz/agentos-authz/authz/internal/jwtauth"
	"github.com/agentos-authz/agentos-authz/internal/jwttest"
	"github.com/agentos-authz/agentos-authz/internal/poll"
)

// cachedAuthorizer builds an Authorizer from yamlText with an injected
// clock and observer.
func cachedAuthorizer(t testing.TB, yamlText string, clock func() time.Time, obs JWKSObserver) *Authorizer {
	t.Helper()
	cfg, err := Load([]byte(yamlText), nil, LoadOptions{})
	if err != nil {
		t.Fatalf("Load(%q) = %v", yamlText, err)
	}
	a, err := New(cfg, Options{Logger: zap.NewNop(), Clock: clock, Observer: obs})
	if err != nil {
		t.Fatalf("New(%q) = %v", yamlText, err)
	}
	return a
}

func getAgents(tok string) *Request {
	return &Request{Method: "GET", Path: "/agents", Headers: bearerH(tok)}
}

// step is one decision at a moment of a cache test.
type step struct {
	at     time.Duration // from testNow
	tok    string
	status int
	detail string
	hit    bool // served from the cache
}

func runSteps(t *testing.T, a *Authorizer, clock *jwttest.FakeClock, obs *jwttest.Observer, steps []step) {
	t.Helper()
	for i, st := range steps {
		clock.Set(testNow.Add(st.at))
		hits := obs.Hits.Load()
		d := a.Decide(t.Context(), getAgents(st.tok))
		if d.Status != st.status || (st.detail != "" && d.Detail != st.detail) {
			t.Errorf("step %d: Decide(GET /agents) at +%s = %d %q, want %d %q", i, st.at, d.Status, d.Detail, st.status, st.detail)
		}
		if hit := obs.Hits.Load() > hits; hit != st.hit {
			t.Errorf("step %d: at +%s served from the cache = %v, want %v", i, st.at, hit, st.hit)
		}
	}
}

func TestTokenCacheNeverPastExp(t *testing.T) {
	clock, obs := jwttest.NewFakeClock(testNow), &jwttest.Observer{}
	a := cachedAuthorizer(t, hsConfig(""), clock.Now, obs) // leeway 10s, cache_ttl 5m
	c := user("agents:read")
	c["exp"] = testNow.Add(time.Minute).Unix()
	tok := mintHS(t, c)
	later := user("agents:read")
	later["iat"] = testNow.Add(30 * time.Second).Unix()
	iat := mintHS(t, later)
	runSteps(t, a, clock, obs, []step{
		{at: 0, tok: tok, status: 200, hit: false},
		{at: 0, tok: tok, status: 200, hit: true},
		{at: time.Minute, tok: tok, status: 200, hit: true},
		// jwx accepts until exp + leeway (10s): so does the cache.
		{at: time.Minute + 9*time.Second, tok: tok, status: 200, hit: true},
		{at: time.Minute + 10*time.Second, tok: tok, status: 401, detail: detailExpired},
		{at: time.Hour, tok: tok, status: 401, detail: detailExpired},
		// iat in the future (beyond the leeway) is refused; once valid it is
		// cached; a clock set back before it is a miss, and refused again.
		{at: 0, tok: iat, status: 401, detail: "Invalid token: token is issued in the future (iat)"},
		{at: 25 * time.Second, tok: iat, status: 200},
		{at: 25 * time.Second, tok: iat, status: 200, hit: true},
		{at: 0, tok: iat, status: 401, detail: "Invalid token: token is issued in the future (iat)"},
	})
}

func TestTokenCacheTTL(t *testing.T) {
	clock, obs := jwttest.NewFakeClock(testNow), &jwttest.Observer{}
	a := cachedAuthorizer(t, hsConfig("  cache_ttl: 30s\n"), clock.Now, obs)
	tok := mintHS(t, user("agents:read")) // exp in an hour
	runSteps(t, a, clock, obs, []step{
		{at: 0, tok: tok, status: 200},
		{at: 29 * time.Second, tok: tok, status: 200, hit: true},
		{at: 30 * time.Second, tok: tok, status: 200, hit: false}, // verified again
		{at: 59 * time.Second, tok: tok, status: 200, hit: true},
	})
}

func TestTokenCacheDisabled(t *testing.T) {
	for _, extra := range []string{"  cache_size: 0\n", "  cache_ttl: 0s\n"} {
		clock, obs := jwttest.NewFakeClock(testNow), &jwttest.Observer{}
		a := cachedAuthorizer(t, hsConfig(extra), clock.Now, obs)
		tok := mintHS(t, user("agents:read"))
		for range 3 {
			if d := a.Decide(t.Context(), getAgents(tok)); d.Status != 200 {
				t.Fatalf("%sDecide = %d %q", extra, d.Status, d.Detail)
			}
		}
		if obs.Hits.Load()+obs.Misses.Load() != 0 || a.snap.Load().cache != nil {
			t.Errorf("%s: cache used (hits %d, misses %d)", strings.TrimSpace(extra), obs.Hits.Load(), obs.Misses.Load())
		}
	}
}

func TestTokenCacheInvalidatedOnKeyChange(t *testing.T) {
	keys := jwttest.NewRotation(t, jwttest.LoadKeys(t))
	srv := jwttest.NewJWKSServer(t, keys.Both)
	clock, obs := jwttest.NewFakeClock(jwttest.Now), &jwttest.Observer{}
	a := cachedAuthorizer(t, "os_id: test-os\njwt:\n  jwks_url: "+srv.URL+"\n", clock.Now, obs)
	a.Start(t.Context())
	t.Cleanup(a.Close)
	poll.For(t, "the first key set", a.Ready)
	// refetch moves past the refetch rate limit and sends a token whose
	// kid no key has: the verifier refetches the JWKS once, and the
	// token itself is refused.
	refetch := func() {
		t.Helper()
		clock.Advance(jwksRefetchGap)
		if d := a.Decide(t.Context(), getAgents(keys.TokX)); d.Status != 401 {
			t.Fatalf("Decide(unknown kid) = %d %q, want 401", d.Status, d.Detail)
		}
	}

	for i, want := range []bool{false, true} {
		if d := a.Decide(t.Context(), getAgents(keys.Tok1)); d.Status != 200 {
			t.Fatalf("Decide(k1 token) #%d = %d %q, want 200", i, d.Status, d.Detail)
		}
		if hit := obs.Hits.Load() == 1; hit != want {
			t.Fatalf("Decide(k1 token) #%d from the cache = %v, want %v", i, hit, want)
		}
	}
	// An unchanged document keeps the entries.
	refetch()
	if d := a.Decide(t.Context(), getAgents(keys.Tok1)); d.Status != 200 || obs.Hits.Load() != 2 {
		t.Fatalf("after an unchanged refetch: Decide = %d, hits %d; want 200 from the cache", d.Status, obs.Hits.Load())
	}
	// k1 is removed: the cached k1 token must not outlive its key.
	srv.Set("ok", keys.Only2)
	refetch()
	if d := a.Decide(t.Context(), getAgents(keys.Tok1)); d.Status != 401 {
		t.Fatalf("Decide(k1 token) after k1 was removed = %d, want 401", d.Status)
	}
	if obs.Hits.Load() != 2 {
		t.Errorf("hits = %d, want 2: the k1 token was served from the cache after the key set changed", obs.Hits.Load())
	}
}

func TestTokenCacheNeverCachesInvalid(t *testing.T) {
	clock, obs := jwttest.NewFakeClock(testNow), &jwttest.Observer{}
	a := cachedAuthorizer(t, hsConfig("  verify_audience: true\n"), clock.Now, obs)
	expired := user("agents:read")
	expired["exp"] = testNow.Add(-time.Hour).Unix()
	wrongAud := user("agents:read")
	wrongAud["aud"] = "another-os"
	reserved := user("agents:read")
	reserved["sub"] = "sa:robot"
	good := mintHS(t, user("agents:read"))
	cases := []struct {
		name, tok, detail string
	}{
		{"bad signature", good[:len(good)-4] + "AAAA", "Invalid token: signature verification failed"},
		{"other secret", mint(t, jwa.HS256, []byte("another-secret-of-32-bytes-length!"), user("agents:read")), "Invalid token: signature verification failed"},
		{"expired", mintHS(t, expired), detailExpired},
		{"wrong audience", mintHS(t, wrongAud), detailInvalidAudience},
		{"reserved subject", mintHS(t, reserved), detailInvalidSubject},
	}
	for _, tc := range cases {
		for i := range 2 {
			if d := a.Decide(t.Context(), getAgents(tc.tok)); d.Status != 401 || d.Detail != tc.detail {
				t.Errorf("%s #%d: Decide = %d %q, want 401 %q", tc.name, i, d.Status, d.Detail, tc.detail)
			}
		}
	}
	if n := a.snap.Load().cache.len(); n != 0 || obs.Hits.Load() != 0 {
		t.Errorf("after invalid tokens only: %d cache entries, %d hits; want none", n, obs.Hits.Load())
	}
}

// TestTokenCacheSameDecisions: a cached decision is the decision the
// uncached pipeline makes, for allowed and denied routes alike.
func TestTokenCacheSameDecisions(t *testing.T) {
	cfg := hsConfig("  forward_claims: [org]\nunmapped_routes: deny\n")
	cached := cachedAuthorizer(t, cfg, testClock, nil)
	plain := cachedAuthorizer(t, strings.Replace(cfg, "jwt:\n", "jwt:\n  cache_size: 0\n", 1), testClock, nil)
	toks := []string{
		mintHS(t, user("agents:read", "agents:a1:run")),
		mintHS(t, claims{"sub": "u2", "aud": "test-os", "scopes": "teams:read agents:*:run", "org": map[string]any{"id": 7}}),
		mintHS(t, claims{"sub": "u3", "aud": "test-os", "scopes": []any{"agents:sales bot:run", 7, ""}}),
		mintHS(t, claims{"sub": "admin", "aud": "test-os", "scopes": []any{"agent_os:admin"}}),
		mintHS(t, claims{"aud": "test-os"}),
	}
	reqs := []struct{ method, path string }{
		{"GET", "/agents"}, {"POST", "/agents/a1/runs"}, {"POST", "/agents/sales bot/runs"}, {"GET", "/teams"},
		{"DELETE", "/unmapped"}, {"GET", "/workflows"},
	}
	for _, tok := range toks {
		for _, r := range reqs {
			req := &Request{Method: r.method, Path: r.path, Headers: with(bearerH(tok), "x-agentos-user-id", "spoof")}
			want := plain.Explain(t.Context(), req)
			for i := range 2 { // a miss, then a hit
				if got := cached.Explain(t.Context(), req); !reflect.DeepEqual(got, want) {
					t.Errorf("%s %s #%d: cached decision\n%+v\nwant\n%+v", r.method, r.path, i, got, want)
				}
			}
		}
	}
}

func TestTokenCacheDigestCollision(t *testing.T) {
	c := newTokenCache(64, time.Hour, 0)
	now := testNow
	d1 := c.digest("token-one")
	// d2 shares the index (first 8 bytes) and the shard of d1: only the
	// full digest tells them apart.
	d2 := d1
	d2[31] ^= 0xff
	p := newPrincipal(&jwtauth.Identity{UserID: "one"})
	c.put(&d1, jwtauth.Generation{}, now, &jwtauth.Identity{}, time.Time{}, p)
	if _, ok := c.get(&d2, jwtauth.Generation{}, now); ok {
		t.Fatal("get(d2) found the entry of d1: a different token would be authenticated")
	}
	if got, ok := c.get(&d1, jwtauth.Generation{}, now); !ok || got.userID != "one" {
		t.Fatalf("get(d1) = %q, %v; want one", got.userID, ok)
	}
	c.put(&d2, jwtauth.Generation{}, now, &jwtauth.Identity{}, time.Time{}, newPrincipal(&jwtauth.Identity{UserID: "two"}))
	if _, ok := c.get(&d1, jwtauth.Generation{}, now); ok {
		t.Fatal("get(d1) after d2 took its slot = hit")
	}
	if got, ok := c.get(&d2, jwtauth.Generation{}, now); !ok || got.userID != "two" {
		t.Fatalf("get(d2) = %q, %v; want two", got.userID, ok)
	}
	if d := c.digest("token-one"); d != sha256.Sum256([]byte("token-one")) {
		t.Fatal("digest is not the token's SHA-256")
	}
}

func TestTokenCacheEviction(t *testing.T) {
	c := newTokenCache(64, time.Hour, 0)
	if len(c.shards) != 1 {
		t.Fatalf("a 64-entry cache has %d shards, want 1", len(c.shards))
	}
	now := testNow
	digests := make([][sha256.Size]byte, 70)
	for i := range digests {
		digests[i] = c.digest(fmt.Sprint("tok-", i))
	}
	put := func(i int) {
		c.put(&digests[i], jwtauth.Generation{}, now, &jwtauth.Identity{}, time.Time{}, newPrincipal(&jwtauth.Identity{UserID: fmt.Sprint(i)}))
	}
	has := func(i int) bool { _, ok := c.get(&digests[i], jwtauth.Generation{}, now); return ok }
	for i := range 64 {
		put(i)
	}
	// Entry 5 is used: it gets a second chance; the unused 0..4 do not.
	if !has(5) {
		t.Fatal("entry 5 missing before any eviction")
	}
	for i := 64; i < 70; i++ {
		put(i)
	}
	if n := c.len(); n != 64 {
		t.Errorf("len = %d, want the bound 64", n)
	}
	if !has(5) {
		t.Error("the recently used entry 5 was evicted")
	}
	for _, i := range []int{0, 1, 2, 3, 4, 6} {
		if has(i) {
			t.Errorf("entry %d survived; the CLOCK hand should have taken it", i)
		}
	}
	for i := 64; i < 70; i++ {
		if !has(i) {
			t.Errorf("new entry %d missing", i)
		}
	}
}

func TestTokenCacheShards(t *testing.T) {
	for _, tc := range []struct{ size, shards int }{{1, 1}, {100, 1}, {128, 2}, {5000, 64}, {100000, 64}} {
		c := newTokenCache(tc.size, time.Minute, 0)
		total := 0
		for i := range c.shards {
			total += c.shards[i].limit
		}
		if len(c.shards) != tc.shards || total != tc.size {
			t.Errorf("newTokenCache(%d): %d shards holding %d, want %d holding %d", tc.size, len(c.shards), total, tc.shards, tc.size)
		}
	}
}

func TestTokenCacheConcurrent(t *testing.T) {
	clock, obs := jwttest.NewFakeClock(testNow), &jwttest.Observer{}
	a := cachedAuthorizer(t, hsConfig("  cache_size: 8\n"), clock.Now, obs)
	toks := make([]string, 20)
	for i := range toks {
		toks[i] = mintHS(t, claims{"sub": fmt.Sprint("u", i), "aud": "test-os", "scopes": []any{"agents:read"}})
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 300 {
				n := (g*7 + i) % len(toks)
				if i%3 == 0 {
					n %= 4 // a hot set
				}
				d := a.Decide(t.Context(), getAgents(toks[n]))
				if d.Status != 200 || d.UserID != fmt.Sprint("u", n) {
					t.Errorf("Decide(token of u%d) = %d user %q", n, d.Status, d.UserID)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := a.snap.Load().cache.len(); n > 8 {
		t.Errorf("cache holds %d entries, bound 8", n)
	}
	if obs.Hits.Load() == 0 || obs.Misses.Load() == 0 {
		t.Errorf("hits %d, misses %d; want both", obs.Hits.Load(), obs.Misses.Load())
	}
}

// cachedBench is the decision BenchmarkDecideCached measures: an RS256
// token with five scopes, a per-resource route, Envoy-like headers.
func cachedBench(t testing.TB) (*Authorizer, *Request) {
	rsaKey, rsaPEM := rsaKeyPEM(t)
	a := cachedAuthorizer(t, "os_id: test-os\njwt:\n  algorithms: [RS256]\n  verification_keys:\n    - |\n"+indent(rsaPEM, "      "), testClock, nil)
	tok := mint(t, jwa.RS256, rsaKey, user("agents:a1:run", "agents:read", "teams:read", "workflows:*:run", "sessions:read"))
	r := &Request{Method: "POST", Path: "/agents/a1/runs?stream=true", Headers: map[string]string{
		"authorization": "Bearer " + tok, "x-request-id": "bench", ":authority": "agentos.test",
		"user-agent": "bench", "content-type": "application/json", "x-forwarded-proto": "https",
	}}
	if d := a.Decide(context.Background(), r); !d.Allowed() {
		t.Fatalf("Decide = %d %q", d.Status, d.Detail)
	}
	return a, r
}

// maxCachedAllocs is the budget of a cached decision (README, Performance).
const maxCachedAllocs = 5

func TestDecideCachedAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	a, r := cachedBench(t)
	ctx := context.Background()
	allocs := testing.AllocsPerRun(200, func() { decisionSink = a.Decide(ctx, r) })
	if allocs > maxCachedAllocs {
		t.Errorf("a cached decision allocates %.1f times, budget %d", allocs, maxCachedAllocs)
	}
	t.Logf("cached decision: %.1f allocs", allocs)
}

// BenchmarkDecideCached is a whole decision for a token already verified:
// cache lookup, scopes check, upstream headers. Budget: 2 µs, 5 allocs.
func BenchmarkDecideCached(b *testing.B) {
	a, r := cachedBench(b)
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			decisionSink = a.Decide(ctx, r)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var d Decision
			for pb.Next() {
				d = a.Decide(ctx, r)
			}
			_ = d
		})
	})
}

// TestTokenCacheMemory fills a default-sized cache (100 000 entries) with
// realistic principals and reports the heap it holds. Budget: the service
// must stay under 64 MiB RSS with it full.
func TestTokenCacheMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("fills 100 000 entries")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := newTokenCache(defaultCacheSize, defaultCacheTTL, jwtauth.DefaultLeeway)
	exp := testNow.Add(time.Hour)
	for i := range defaultCacheSize {
		// A token as an IdP issues it; only its digest is kept.
		tok := fmt.Sprintf("eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.%040d.%0342d", i, i)
		id := jwtauth.Identity{
			UserID:    fmt.Sprintf("user-%06d@example.com", i),
			SessionID: fmt.Sprintf("sess-%012d", i),
			Scopes:    []string{"agents:read", "agents:a1:run", "teams:read"},
			Expires:   exp,
		}
		d := c.digest(tok)
		c.put(&d, jwtauth.Generation{}, testNow, &id, testNow, newPrincipal(&id))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	// Shards fill unevenly: a full shard evicts while others have room.
	n := c.len()
	if n > defaultCacheSize || n < defaultCacheSize*97/100 {
		t.Fatalf("len = %d, want about %d", n, defaultCacheSize)
	}
	held := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("%d cached tokens (3 scopes): heap in use +%.1f MiB (%d B per entry), total heap in use %.1f MiB",
		n, float64(held)/(1<<20), held/int64(n), float64(after.HeapInuse)/(1<<20))
	// 48 MiB leaves the rest of the 64 MiB RSS budget to the runtime,
	// gRPC and the binary.
	if held > 48<<20 {
		t.Errorf("the full cache holds %.1f MiB of heap, budget 48 MiB", float64(held)/(1<<20))
	}
	runtime.KeepAlive(c)
}
