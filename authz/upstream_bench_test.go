//go:build !race

package authz

import (
	"context"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"
)

// identityBench is cachedBench's decision (an RS256 caller token with five
// scopes, a per-resource route, Envoy-like headers) with
// upstream.identity_token on, signed with an alg key; cacheOff sets
// jwt.cache_size: 0, so every decision verifies and signs.
func identityBench(t testing.TB, alg string, cacheOff bool) (*Authorizer, *Request) {
	rsaKey, rsaPEM := rsaKeyPEM(t)
	cache := ""
	if cacheOff {
		cache = "  cache_size: 0\n"
	}
	a := cachedAuthorizer(t, "os_id: test-os\njwt:\n"+cache+"  algorithms: [RS256]\n  verification_keys:\n    - |\n"+indent(rsaPEM, "      ")+"\n"+
		upstreamYAML(signingKeyFile(t, alg)), testClock, nil)
	tok := mint(t, jwa.RS256, rsaKey, user("agents:a1:run", "agents:read", "teams:read", "workflows:*:run", "sessions:read"))
	r := &Request{Method: "POST", Path: "/agents/a1/runs?stream=true", Headers: map[string]string{
		"authorization": "Bearer " + tok, "x-request-id": "bench", ":authority": "agentos.test",
		"user-agent": "bench", "content-type": "application/json", "x-forwarded-proto": "https",
	}}
	d := a.Decide(context.Background(), r)
	if _, n := identityHeader(&d); !d.Allowed() || n != 1 {
		t.Fatalf("Decide = %d %q with %d authorization headers", d.Status, d.Detail, n)
	}
	return a, r
}

// TestIdentityTokenCachedAllocs: with identity tokens on, a cached
// decision whose token is fresh stays within the cached budget. (Not built
// with -race, which changes allocation counts.)
func TestIdentityTokenCachedAllocs(t *testing.T) {
	a, r := identityBench(t, "RS256", false)
	ctx := context.Background()
	allocs := testing.AllocsPerRun(200, func() { decisionSink = a.Decide(ctx, r) })
	if allocs > maxCachedAllocs {
		t.Errorf("a cached decision with an identity token allocates %.1f times, budget %d", allocs, maxCachedAllocs)
	}
}

// BenchmarkDecideIdentityToken is the allowed-decision cost with identity
// tokens: "cached" is BenchmarkDecideCached/serial's decision plus the
// kept token (the common path); "uncached/<alg>" verifies the caller's
// RS256 token and signs a new identity token on every decision (cache
// off), for each signing key type.
func BenchmarkDecideIdentityToken(b *testing.B) {
	ctx := context.Background()
	b.Run("cached/off", func(b *testing.B) {
		a, r := cachedBench(b)
		b.ReportAllocs()
		for b.Loop() {
			decisionSink = a.Decide(ctx, r)
		}
	})
	b.Run("cached/on", func(b *testing.B) {
		a, r := identityBench(b, "RS256", false)
		b.ReportAllocs()
		for b.Loop() {
			decisionSink = a.Decide(ctx, r)
		}
	})
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		b.Run("uncached/"+alg, func(b *testing.B) {
			a, r := identityBench(b, alg, true)
			b.ReportAllocs()
			for b.Loop() {
				decisionSink = a.Decide(ctx, r)
			}
		})
	}
}
