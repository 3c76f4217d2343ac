package serviceaccount

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// testThrottling: failures count per client address over a sliding window; past
// MaxFailures a failing token is throttled, a valid one never is, and the client recovers
// as its failures leave the window.
func testThrottling(t *testing.T, e env) {
	valid, revoked := newToken(t), newToken(t)
	e.insert(t, Seed{Name: "thr-valid", Token: valid, Scopes: []string{"agents:run"}},
		Seed{Name: "thr-revoked", Token: revoked, RevokedAt: base.Add(-time.Hour)})
	obs := newCounting()
	o := DefaultOptions()
	o.CacheTTL = 0 // every valid use is a lookup, so "never throttled" is really tested
	o.MaxFailures = 3
	o.FailureWindow = time.Minute
	a := newAuth(t, e.open(t, obs), o, obs)

	at := func(d time.Duration) time.Time { return base.Add(d) }
	check := func(step string, token, client string, now time.Time, want Kind, wantReason Reason) {
		t.Helper()
		res := a.Authenticate(t.Context(), token, client, now)
		noSecret(t, token, res)
		if res.Kind != want || res.Reason != wantReason {
			t.Fatalf("%s: Authenticate = %v/%q (err %v), want %v/%q", step, res.Kind, res.Reason, res.Err, want, wantReason)
		}
	}
	const client = "198.51.100.7"
	for i := 0; i < 3; i++ {
		// one client, several source ports: one counter
		check(fmt.Sprintf("failure %d", i+1), newToken(t), fmt.Sprintf("%s:%d", client, 40000+i), at(time.Duration(i)*time.Second), KindInvalid, ReasonUnknown)
	}
	check("fourth failure", newToken(t), client, at(3*time.Second), KindThrottled, ReasonUnknown)
	check("revoked, throttled", revoked, client, at(4*time.Second), KindThrottled, ReasonRevoked)
	for i := 0; i < 5; i++ {
		check("valid from the throttled client", valid, client, at(5*time.Second), KindOK, ReasonNone)
	}
	check("another client", newToken(t), "198.51.100.8", at(5*time.Second), KindInvalid, ReasonUnknown)
	check("same client as IPv4-mapped IPv6", newToken(t), "[::ffff:198.51.100.7]:9", at(6*time.Second), KindThrottled, ReasonUnknown)
	check("59s after the first failure", newToken(t), client, at(59*time.Second), KindThrottled, ReasonUnknown)
	// At 60s the failure at 0s has left the window (AgentOS keeps t > now - window): one
	// more failure is let through, and counted.
	check("60s after the first failure", newToken(t), client, at(60*time.Second), KindInvalid, ReasonUnknown)
	check("right after", newToken(t), client, at(60*time.Second), KindThrottled, ReasonUnknown)
	// Throttled failures were never recorded: at 62s only the failure at 60s remains.
	check("62s", newToken(t), client, at(62*time.Second), KindInvalid, ReasonUnknown)
	check("62s again", revoked, client, at(62*time.Second), KindInvalid, ReasonRevoked)
	check("62s third", newToken(t), client, at(62*time.Second), KindThrottled, ReasonUnknown)
	check("a window later", newToken(t), client, at(123*time.Second), KindInvalid, ReasonUnknown)

	got, _, _ := obs.snapshot()
	if got[KindOK] != 5 || got[KindThrottled] != 6 || got[KindInvalid] != 8 || got[KindError] != 0 {
		t.Fatalf("observed results = %v", got)
	}
}

// testCacheRevocation: a verified token is served from the cache for CacheTTL, so a
// revocation takes effect after at most CacheTTL; expiry is re-checked on every use; a
// TTL of 0 makes revocation immediate.
func testCacheRevocation(t *testing.T, e env) {
	tok, short := newToken(t), newToken(t)
	e.insert(t, Seed{Name: "cache-me", Token: tok, Scopes: []string{"agents:run"}},
		Seed{Name: "short-lived", Token: short, ExpiresAt: base.Add(5 * time.Second)})
	obs := newCounting()
	o := DefaultOptions() // 30s
	a := newAuth(t, e.open(t, obs), o, obs)
	step := func(name, token string, now time.Time, want Kind, wantReason Reason, wantQueries int) {
		t.Helper()
		res := a.Authenticate(t.Context(), token, "203.0.113.5", now)
		noSecret(t, token, res)
		_, q, _ := obs.snapshot()
		if res.Kind != want || res.Reason != wantReason || q != wantQueries {
			t.Fatalf("%s: Authenticate = %v/%q after %d queries (err %v), want %v/%q after %d",
				name, res.Kind, res.Reason, q, res.Err, want, wantReason, wantQueries)
		}
	}
	step("first use", tok, base, KindOK, ReasonNone, 1)
	step("10s later", tok, base.Add(10*time.Second), KindCached, ReasonNone, 1)
	if err := e.admin.Revoke(t.Context(), "cache-me", base.Add(11*time.Second)); err != nil {
		t.Fatal(err)
	}
	step("revoked, still cached", tok, base.Add(20*time.Second), KindCached, ReasonNone, 1)
	step("exactly the TTL after verification", tok, base.Add(30*time.Second), KindCached, ReasonNone, 1)
	step("just past the TTL", tok, base.Add(30*time.Second+time.Nanosecond), KindInvalid, ReasonRevoked, 2)
	step("stays revoked", tok, base.Add(31*time.Second), KindInvalid, ReasonRevoked, 3)

	step("short-lived first use", short, base, KindOK, ReasonNone, 4)
	step("short-lived cached", short, base.Add(4*time.Second), KindCached, ReasonNone, 4)
	step("short-lived expires inside the TTL", short, base.Add(5*time.Second), KindInvalid, ReasonExpired, 5)

	t.Run("ttl 0", func(t *testing.T) {
		tk := newToken(t)
		e.insert(t, Seed{Name: "no-cache", Token: tk})
		o := DefaultOptions()
		o.CacheTTL = 0
		a := newAuth(t, e.open(t, nil), o, nil)
		if res := a.Authenticate(t.Context(), tk, "", base); res.Kind != KindOK {
			t.Fatalf("first = %v", res.Kind)
		}
		if res := a.Authenticate(t.Context(), tk, "", base); res.Kind != KindOK {
			t.Fatalf("second = %v, want ok (no cache)", res.Kind)
		}
		if err := e.admin.Revoke(t.Context(), "no-cache", base); err != nil {
			t.Fatal(err)
		}
		if res := a.Authenticate(t.Context(), tk, "", base); res.Kind != KindInvalid || res.Reason != ReasonRevoked {
			t.Fatalf("right after revocation = %v/%v, want invalid/revoked", res.Kind, res.Reason)
		}
	})
}

// testConcurrent hammers one authenticator from many goroutines (run under -race): valid
// tokens always pass, others never do, nothing is an error.
func testConcurrent(t *testing.T, e env) {
	const accounts = 4
	var valid []string
	for i := 0; i < accounts; i++ {
		tok := newToken(t)
		valid = append(valid, tok)
		e.insert(t, Seed{Name: fmt.Sprintf("conc-%d", i), Token: tok, Scopes: []string{"agents:run"}})
	}
	revoked := newToken(t)
	e.insert(t, Seed{Name: "conc-revoked", Token: revoked, RevokedAt: base})
	o := DefaultOptions()
	o.CacheTTL = 2 * time.Second
	o.CacheSize = 2 // smaller than the accounts: eviction under contention
	o.MaxFailures = 5
	o.MaxClients = 3
	obs := newCounting()
	a := newAuth(t, e.open(t, obs), o, obs)

	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				now := base.Add(time.Duration(i) * 100 * time.Millisecond)
				client := fmt.Sprintf("10.0.%d.%d", g, i%5)
				switch i % 3 {
				case 0:
					if res := a.Authenticate(t.Context(), valid[(g+i)%accounts], client, now); !res.Authenticated() {
						errs <- fmt.Sprintf("valid token: %v (%v)", res.Kind, res.Err)
						return
					}
				case 1:
					if res := a.Authenticate(t.Context(), revoked, client, now); res.Kind != KindInvalid && res.Kind != KindThrottled {
						errs <- fmt.Sprintf("revoked token: %v (%v)", res.Kind, res.Err)
						return
					}
				default:
					if res := a.Authenticate(t.Context(), "agno_pat_nope", client, now); res.Kind != KindInvalid && res.Kind != KindThrottled {
						errs <- fmt.Sprintf("unknown token: %v (%v)", res.Kind, res.Err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if n := a.cache.len(); n > 2 {
		t.Errorf("cache holds %d entries, bound 2", n)
	}
	if n := a.limiter.len(); n > 3 {
		t.Errorf("limiter holds %d clients, bound 3", n)
	}
	got, _, _ := obs.snapshot()
	if got[KindError] != 0 || got[KindOK]+got[KindCached]+got[KindInvalid]+got[KindThrottled] != 8*40 {
		t.Errorf("observed results = %v", got)
	}
}
