package authz

import (
	"crypto"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"

	"github.com/agentos-authz/agentos-authz/authz/internal/jwtauth"
)

// failCached reports whether tok's refusal is in a's failed-verification
// cache under the current key set at the clock's time.
func failCached(t *testing.T, a *Authorizer, tok string) bool {
	t.Helper()
	s := a.snap.Load()
	d := s.cache.digest(tok)
	_, ok := s.fails.get(&d, s.verifier.Generation(t.Context()), s.clock())
	return ok
}

// TestFailCacheSameDecisions: for each kind of settled refusal, the
// decision served from the failed-verification cache is the decision of a
// fresh verification (status, reason, detail, everything), and it is
// served from the cache; the refusals time can undo or that cost nothing
// to find again are not remembered.
func TestFailCacheSameDecisions(t *testing.T) {
	k := jtLoadKeys(t)
	cfg := "os_id: test-os\njwt:\n  algorithms: [HS256, RS256]\n  issuer: https://issuer.test\n  verify_audience: true\n" +
		"  verification_keys:\n    - \"" + hsKey + "\"\n    - |\n" + indent(k.rs.pubPEM, "      ")
	cached := cachedAuthorizer(t, cfg, testClock, nil)
	plain := cachedAuthorizer(t, strings.Replace(cfg, "jwt:\n", "jwt:\n  cache_size: 0\n", 1), testClock, nil)

	ok := func(over claims) claims {
		c := claims{"sub": "u1", "aud": "test-os", "iss": "https://issuer.test", "scopes": []string{"agents:read"}}
		for key, v := range over {
			if v == nil {
				delete(c, key)
			} else {
				c[key] = v
			}
		}
		return c
	}
	rs := func(c claims) string { return mint(t, jwa.RS256, k.rs.priv, c) }
	hs := func(c claims) string { return mint(t, jwa.HS256, []byte(hsKey), c) }
	goodRS, goodHS := rs(ok(nil)), hs(ok(nil))
	cases := []struct {
		name    string
		tok     string
		settled bool
	}{
		{"bad RS256 signature", jtFlipSig(goodRS), true},
		{"RS256 signed by another key", mint(t, jwa.RS256, k.rs2.priv, ok(nil)), true},
		{"bad HS256 signature", jtFlipSig(goodHS), true},
		{"expired", rs(ok(claims{"exp": testNow.Add(-time.Hour).Unix()})), true},
		{"wrong audience", rs(ok(claims{"aud": "another-os"})), true},
		{"wrong issuer", rs(ok(claims{"iss": "https://evil.test"})), true},
		{"reserved subject", rs(ok(claims{"sub": "sa:robot"})), true},
		{"exp not a date", jtMint(t, jtToken{alg: "RS256", key: k.rs.priv, claims: ok(claims{"exp": "tomorrow"})}), true},
		{"missing audience", hs(ok(claims{"aud": nil})), true},
		// Time undoes these: never remembered.
		{"not valid yet (nbf)", rs(ok(claims{"nbf": testNow.Add(time.Hour).Unix()})), false},
		{"issued in the future (iat)", rs(ok(claims{"iat": testNow.Add(time.Hour).Unix()})), false},
		// Found before any key is tried: cheap, not remembered.
		{"algorithm not allowed", mint(t, jwa.HS384, []byte(hsKey), ok(nil)), false},
		{"unsigned", jtMint(t, jtToken{alg: "none", claims: ok(nil)}), false},
		{"not a JWT", "not-a-jwt", false},
	}
	for _, tc := range cases {
		req := &Request{Method: "GET", Path: "/agents", Headers: with(bearerH(tc.tok), "origin", "https://app.test")}
		want := plain.Explain(t.Context(), req)
		if want.Status != 401 {
			t.Fatalf("%s: a fresh verification gives %d %q, want a 401", tc.name, want.Status, want.Detail)
		}
		for i := range 3 { // a verification, then the cache
			if got := cached.Explain(t.Context(), req); !reflect.DeepEqual(got, want) {
				t.Errorf("%s #%d: decision\n%+v\nwant (fresh verification)\n%+v", tc.name, i, got, want)
			}
			if got := failCached(t, cached, tc.tok); got != tc.settled {
				t.Errorf("%s #%d: remembered = %v, want %v", tc.name, i, got, tc.settled)
			}
		}
	}
	if n := cached.snap.Load().cache.len(); n != 0 {
		t.Errorf("%d verified-token cache entries after refused tokens only", n)
	}
	// A valid token is still allowed, and a valid token never lands in
	// the failed-verification cache.
	for _, tok := range []string{goodRS, goodHS} {
		if d := cached.Decide(t.Context(), getAgents(tok)); d.Status != 200 || failCached(t, cached, tok) {
			t.Errorf("valid token: Decide = %d %q (remembered as refused: %v)", d.Status, d.Detail, failCached(t, cached, tok))
		}
	}
}

// TestFailCacheTime: a remembered refusal never outlives the answer a
// verification would give: a wrong-audience token is refused as expired
// once it expires, an expired token is verified again under a clock set
// back before its exp, and entries last at most cache_ttl.
func TestFailCacheTime(t *testing.T) {
	clock := newFakeClock(testNow)
	a := cachedAuthorizer(t, hsConfig("  verify_audience: true\n  cache_ttl: 1m\n"), clock.Now, nil) // leeway 10s
	wrongAud := user("agents:read")
	wrongAud["aud"] = "another-os"
	wrongAud["exp"] = testNow.Add(30 * time.Second).Unix()
	wa := mintHS(t, wrongAud)
	expiredC := user("agents:read")
	expiredC["exp"] = testNow.Add(-time.Minute).Unix()
	expiredC["iat"] = testNow.Add(-time.Hour).Unix()
	ex := mintHS(t, expiredC)
	longAud := user("agents:read")
	longAud["aud"] = "another-os"
	la := mintHS(t, longAud) // exp in an hour

	at := func(d time.Duration) {
		clock.mu.Lock()
		clock.t = testNow.Add(d)
		clock.mu.Unlock()
	}
	check := func(what, tok, detail string, cachedBefore bool) {
		t.Helper()
		if got := failCached(t, a, tok); got != cachedBefore {
			t.Errorf("%s: remembered before the decision = %v, want %v", what, got, cachedBefore)
		}
		d := a.Decide(t.Context(), getAgents(tok))
		if d.Status != 401 && detail != "" || d.Status == 401 && d.Detail != detail || detail == "" && d.Status != 200 {
			t.Errorf("%s: Decide = %d %q, want %q (\"\" = 200)", what, d.Status, d.Detail, detail)
		}
	}
	at(0)
	check("wrong audience", wa, detailInvalidAudience, false)
	check("wrong audience again", wa, detailInvalidAudience, true)
	at(39 * time.Second)
	check("wrong audience before exp + leeway", wa, detailInvalidAudience, true)
	at(40 * time.Second)
	check("wrong audience at exp + leeway", wa, detailExpired, false)
	check("the same token, expired, again", wa, detailExpired, true)

	at(0)
	check("expired", ex, detailExpired, false)
	check("expired again", ex, detailExpired, true)
	at(-2 * time.Minute) // the clock set back before its exp: it is valid
	check("expired token, clock set back", ex, "", false)

	at(0)
	check("wrong audience (1h)", la, detailInvalidAudience, false)
	at(59 * time.Second)
	check("wrong audience within cache_ttl", la, detailInvalidAudience, true)
	at(60 * time.Second)
	check("wrong audience past cache_ttl", la, detailInvalidAudience, false)
}

// TestFailCacheKeyRotation: a bad signature is remembered under the
// current key set only: once the JWKS changes, the token is verified
// again (and here, signed by the new key, allowed). A token whose kid the
// fetched set lacks is never remembered (a refetch may bring its key).
func TestFailCacheKeyRotation(t *testing.T) {
	k := jtLoadKeys(t)
	pub1, pub2 := k.rs.priv.Public(), k.rs2.priv.Public()
	only1 := jtJWKS(t, []crypto.PublicKey{pub1}, []string{""}, []string{"RS256"})
	both := jtJWKS(t, []crypto.PublicKey{pub1, pub2}, []string{"", ""}, []string{"RS256", "RS256"})
	srv := newJWKSServer(t, only1)
	clock, obs := newFakeClock(jtNow), &recObserver{}
	a := cachedAuthorizer(t, "os_id: test-os\njwt:\n  jwks_url: "+srv.URL+"\n", clock.Now, obs)
	a.Start(t.Context())
	t.Cleanup(a.Close)
	waitFor(t, "the first key set", a.Ready)

	tok2 := jtMint(t, jtToken{alg: "RS256", key: k.rs2.priv, claims: jtClaims(nil)}) // no kid
	unknownKid := jtMint(t, jtToken{alg: "RS256", key: k.rs2.priv, header: map[string]any{"kid": "k9"}, claims: jtClaims(nil)})
	for i := range 2 {
		if d := a.Decide(t.Context(), getAgents(tok2)); d.Status != 401 || d.Detail != "Invalid token: signature verification failed" {
			t.Fatalf("k2 token under [k1] #%d: Decide = %d %q, want 401 signature verification failed", i, d.Status, d.Detail)
		}
		if !failCached(t, a, tok2) {
			t.Fatalf("k2 token under [k1] #%d: not remembered", i)
		}
	}
	gen := a.snap.Load().verifier.Generation(t.Context())

	// The key set changes (k2 added): a kid-miss refetch brings it.
	srv.set("ok", both)
	clock.Advance(jwksRefetchGap)
	if d := a.Decide(t.Context(), getAgents(unknownKid)); d.Status != 200 {
		t.Fatalf("unknown-kid token after the rotation = %d %q, want 200 (the refetch brought k2)", d.Status, d.Detail)
	}
	if a.snap.Load().verifier.Generation(t.Context()) == gen {
		t.Fatal("the key set generation did not change with the new JWKS")
	}
	if failCached(t, a, tok2) {
		t.Error("the k2 token's refusal is still remembered under the new key set")
	}
	if d := a.Decide(t.Context(), getAgents(tok2)); d.Status != 200 {
		t.Errorf("k2 token after the rotation: Decide = %d %q, want 200 (verified again)", d.Status, d.Detail)
	}

	// A bad signature under a kid the fetched set lacks: not remembered.
	srv.set("ok", only1)
	clock.Advance(jwksRefetchGap)
	a.Decide(t.Context(), getAgents(unknownKid)) // refetch: back to [k1]
	forged := jtMint(t, jtToken{alg: "RS256", key: k.rs2.priv, header: map[string]any{"kid": "k7"}, claims: jtClaims(nil)})
	for i := range 2 {
		if d := a.Decide(t.Context(), getAgents(forged)); d.Status != 401 {
			t.Fatalf("unknown-kid forged token #%d: Decide = %d %q, want 401", i, d.Status, d.Detail)
		}
		if failCached(t, a, forged) {
			t.Errorf("unknown-kid forged token #%d remembered: a later refetch could bring its key", i)
		}
	}
}

// TestFailCacheBounded: the cache holds at most its size, evicting the
// unreferenced entries first, and answers exactly per digest.
func TestFailCacheBounded(t *testing.T) {
	c := newFailCache(64, time.Hour)
	f := &Failure{Reason: ReasonInvalidToken, Detail: "Invalid token: signature verification failed"}
	st := jwtauth.Settled{OK: true}
	var keep [32]byte
	keep[0], keep[8] = 0xff, 3
	c.put(&keep, jwtauth.Generation{}, testNow, f, st)
	for i := range 10000 {
		var d [32]byte
		d[0], d[1], d[8] = byte(i), byte(i>>8), byte(i%failCacheShards)
		if i%50 == 0 {
			// keep is in use: its reference bit saves it from eviction.
			if got, ok := c.get(&keep, jwtauth.Generation{}, testNow); !ok || got != f {
				t.Fatalf("after %d puts: the referenced entry was evicted", i)
			}
		}
		c.put(&d, jwtauth.Generation{}, testNow, f, st)
	}
	if n := c.len(); n > 64 {
		t.Errorf("%d entries, want at most 64", n)
	}
	other := keep
	other[31] ^= 1 // same index key, another digest
	if _, ok := c.get(&other, jwtauth.Generation{}, testNow); ok {
		t.Error("a different digest sharing the index key was answered")
	}
	if newFailCache(0, time.Hour) != nil || newFailCache(10, 0) != nil {
		t.Error("a zero size or ttl must give no cache")
	}
	var nilCache *failCache
	nilCache.put(&keep, jwtauth.Generation{}, testNow, f, st)
	if _, ok := nilCache.get(&keep, jwtauth.Generation{}, testNow); ok {
		t.Error("a nil cache answered")
	}
	if !(newFailCache(1<<20, time.Hour).shards[0].limit*failCacheShards <= failCacheMax) {
		t.Error("the cache is not bounded by failCacheMax")
	}
}

// BenchmarkDecideReplayedInvalid: a refused RS256 token sent again, with
// the failed-verification cache ("remembered") and without it ("verified":
// every replay verified again, as before the cache).
func BenchmarkDecideReplayedInvalid(b *testing.B) {
	k := jtLoadKeys(b)
	cfg := "os_id: test-os\njwt:\n  algorithms: [RS256]\n  verify_audience: true\n  verification_keys:\n    - |\n" + indent(k.rs.pubPEM, "      ")
	good := claims{"sub": "u1", "aud": "test-os", "scopes": []string{"agents:read"}}
	toks := map[string]string{
		"bad-signature":  jtFlipSig(mint(b, jwa.RS256, k.rs.priv, good)),
		"expired":        mint(b, jwa.RS256, k.rs.priv, claims{"sub": "u1", "aud": "test-os", "exp": testNow.Add(-time.Hour).Unix()}),
		"wrong-audience": mint(b, jwa.RS256, k.rs.priv, claims{"sub": "u1", "aud": "another-os"}),
	}
	for _, name := range []string{"bad-signature", "expired", "wrong-audience"} {
		for _, mode := range []string{"remembered", "verified"} {
			b.Run(name+"/"+mode, func(b *testing.B) {
				a := cachedAuthorizer(b, cfg, testClock, nil)
				if mode == "verified" {
					a.snap.Load().fails = nil
				}
				req := getAgents(toks[name])
				if d := a.Decide(b.Context(), req); d.Status != 401 {
					b.Fatalf("Decide = %d %q, want 401", d.Status, d.Detail)
				}
				b.ReportAllocs()
				for b.Loop() {
					a.Decide(b.Context(), req)
				}
			})
		}
	}
}
