package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/proto"

	"github.com/agentos-authz/agentos-authz/proto/envoyfixtures"
)

// benchFixtures are the Envoy requests the load is made of: AgentOS routes
// behind the authorization header, as different proxies send them. With
// the default route table they need agents:read (GET /agents/research-bot),
// agents:run (POST /agents/research-bot/runs), teams:run (POST
// /teams/support/runs), workflows:read (GET /workflows, a listing) and
// teams:read (GET /teams, raw header map and joined repeated headers).
//
// They are replayed as recorded, not rebuilt with envoy.NewCheckRequest
// (which the soak's garbage requests use): the load is meant to cost the
// service what real proxies cost it, and a recording keeps what the
// builder does not make, the encode_raw_headers shape, a buffered body, an
// Istio peer's principal and TLS session. The builder is tested against the
// same recordings (envoy/checkrequest_test.go), so the two cannot drift.
func benchFixtures() []string {
	return []string{
		"http1-get-query",
		"http2-post-pseudo",
		"istio-sidecar-custom",
		"trailing-slash",
		"raw-header-map",
		"repeated-headers-joined",
	}
}

// grantingScopes are scope sets that satisfy every benchFixtures route:
// global, wildcard and per-resource forms, so the server's scope matching
// does its real work. A token is given one of them.
func grantingScopes() [][]string {
	return [][]string{
		{"agents:read", "agents:run", "teams:read", "teams:run", "workflows:read"},
		{"agents:*:read", "agents:*:run", "teams:*:read", "teams:*:run", "workflows:*:read", "sessions:read"},
		{"agents:research-bot:read", "agents:research-bot:run", "teams:support:run", "teams:read", "workflows:read", "memories:read"},
	}
}

// denyingScopes are scope sets that satisfy none of the benchFixtures
// routes: a token with one of them is answered 403 (insufficient scopes).
func denyingScopes() [][]string {
	return [][]string{
		{"sessions:read", "memories:read"},
		{"agents:other-bot:read", "agents:other-bot:run", "teams:other-team:run", "sessions:write"},
	}
}

// wireRequest is one CheckRequest, already encoded, and the outcome a
// correct service gives it.
type wireRequest struct {
	body  []byte // protobuf wire form of an authv3.CheckRequest
	allow bool   // true: allowed; false: denied (403, or 401 when invalid)
	// invalid: the token is refused (401) whatever its scopes: one of the
	// few invalid tokens replayed (invalidKinds).
	invalid bool
	// status, when not 0, is the denial a correct service gives (the
	// soak's garbage requests: 400 or 401).
	status int32
}

// wantStatus is the HTTP status a correct service answers r with.
func (r *wireRequest) wantStatus() int32 {
	switch {
	case r.status != 0:
		return r.status
	case r.allow:
		return 200
	case r.invalid:
		return 401
	}
	return 403
}

// workload is the set of requests a load run sends.
type workload struct {
	reqs []wireRequest
	// fresh: each request is sent once (a new token each time) and the run
	// ends early when they run out; otherwise they are sent round-robin.
	fresh bool
	// next, when set, picks the request of cursor position i instead (the
	// soak's mix of pooled, fresh and garbage requests); false ends the run.
	// Called concurrently by closed-loop callers.
	next func(i uint64) (*wireRequest, bool)
}

// poolSpec describes a pool of distinct tokens and their requests.
type poolSpec struct {
	Signers  []signer // token i uses Signers[(i/len(fixtures)) % len]
	Count    int      // number of tokens (and requests)
	Mix      float64  // share of tokens whose scopes allow the request
	Fixtures []string // fixture names; token i is sent with fixture i % len
	Claims   claimSpec
	Seed     uint64 // scope-set choice and order are reproducible per seed
	Workers  int    // signing goroutines; <= 0 means GOMAXPROCS
	// Invalid is the share of requests that carry one of a few invalid
	// tokens, replayed (401): with it, the pool holds Count valid tokens
	// and round(Count·Invalid/(1-Invalid)) requests more, cycling through
	// InvalidKinds (two tokens of each). Mix is then a share of all
	// requests; the valid tokens that do not fill it are denied 403.
	Invalid      float64
	InvalidKinds []string
}

// buildPool mints spec.Count tokens and encodes one CheckRequest per token,
// ahead of the run so that the load generator only sends bytes. The first
// round(Mix·Count) tokens carry granting scopes and the rest denying ones;
// the result is shuffled so that outcomes, fixtures and algorithms
// interleave.
func buildPool(ctx context.Context, spec poolSpec) ([]wireRequest, error) {
	if spec.Count <= 0 {
		return nil, fmt.Errorf("pool of %d tokens: want at least 1", spec.Count)
	}
	if math.IsNaN(spec.Mix) || spec.Mix < 0 || spec.Mix > 1 {
		return nil, fmt.Errorf("mix %v: want a share between 0 and 1", spec.Mix)
	}
	if math.IsNaN(spec.Invalid) || spec.Invalid < 0 || spec.Invalid >= 1 || spec.Mix+spec.Invalid > 1+1e-9 {
		return nil, fmt.Errorf("invalid share %v: want 0 or more, below 1, and mix + invalid at most 1", spec.Invalid)
	}
	if spec.Invalid > 0 && len(spec.InvalidKinds) == 0 {
		return nil, errors.New("invalid share without invalid kinds")
	}
	for _, k := range spec.InvalidKinds {
		if !slices.Contains(invalidKinds(), k) {
			return nil, fmt.Errorf("invalid kind %q: want one of %s", k, strings.Join(invalidKinds(), ", "))
		}
		if k == "audience" && spec.Claims.Audience == "" {
			return nil, errors.New(`invalid kind "audience" needs an audience (the tokens' aud, which the server must verify)`)
		}
	}
	if len(spec.Signers) == 0 || len(spec.Fixtures) == 0 {
		return nil, errors.New("pool: no signer or no fixture")
	}
	templates := make([]*authv3.CheckRequest, len(spec.Fixtures))
	for i, name := range spec.Fixtures {
		req, err := envoyfixtures.Load(name)
		if err != nil {
			return nil, err
		}
		if envoyfixtures.SetToken(proto.CloneOf(req), "t") == 0 {
			return nil, fmt.Errorf("fixture %q has no %s placeholder to carry a token", name, envoyfixtures.Placeholder)
		}
		templates[i] = req
	}

	invalidN := 0
	if spec.Invalid > 0 {
		invalidN = max(1, int(math.Round(float64(spec.Count)*spec.Invalid/(1-spec.Invalid))))
	}
	total := spec.Count + invalidN
	granted := min(spec.Count, int(math.Round(spec.Mix*float64(total))))
	grants, denies := grantingScopes(), denyingScopes()
	now := time.Now()
	out := make([]wireRequest, spec.Count, total)

	workers := spec.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, spec.Count)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < spec.Count; i += workers {
				if ctx.Err() != nil {
					return
				}
				// A per-token generator keeps the choice independent of
				// which worker mints the token.
				rng := rand.New(rand.NewPCG(spec.Seed, uint64(i)))
				allow := i < granted
				scopes := denies[rng.IntN(len(denies))]
				if allow {
					scopes = grants[rng.IntN(len(grants))]
				}
				fx := i % len(templates)
				s := spec.Signers[(i/len(templates))%len(spec.Signers)]
				tok, err := mintToken(s, i, scopes, spec.Claims, now)
				if err != nil {
					cancel(err)
					return
				}
				body, err := encodeWithToken(templates[fx], tok)
				if err != nil {
					cancel(fmt.Errorf("fixture %q: %w", spec.Fixtures[fx], err))
					return
				}
				out[i] = wireRequest{body: body, allow: allow}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	if invalidN > 0 {
		bad, err := invalidRequests(spec, templates, now)
		if err != nil {
			return nil, err
		}
		for i := range invalidN {
			out = append(out, bad[i%len(bad)])
		}
	}
	rng := rand.New(rand.NewPCG(spec.Seed, math.MaxUint64))
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out, nil
}

// encodeWithToken returns the wire form of a copy of tmpl carrying token.
func encodeWithToken(tmpl *authv3.CheckRequest, token string) ([]byte, error) {
	req := proto.CloneOf(tmpl)
	if envoyfixtures.SetToken(req, token) == 0 {
		return nil, fmt.Errorf("no %s placeholder", envoyfixtures.Placeholder)
	}
	return proto.Marshal(req)
}

// invalidKinds are the invalid tokens a pool can replay, each refused 401
// by a correct service whatever its scopes:
//   - expired: signed with the server's key, exp an hour ago;
//   - audience: signed, with an audience the server does not accept (the
//     server must verify it: jwt.verify_audience);
//   - signature: a valid token whose signature was altered (a forgery);
//   - algorithm: a valid token's payload and signature under a header
//     saying alg "none".
func invalidKinds() []string { return []string{"expired", "audience", "signature", "algorithm"} }

// wrongAudience is the aud of the "audience" invalid tokens.
const wrongAudience = "authz-bench-wrong-audience"

// invalidRequests mints two requests of each of spec.InvalidKinds, with
// granting scopes (the refusal is the token's, not the route's), each
// kind's two on different fixtures and signers.
func invalidRequests(spec poolSpec, templates []*authv3.CheckRequest, now time.Time) ([]wireRequest, error) {
	var out []wireRequest
	grants := grantingScopes()
	n := 0
	for _, kind := range spec.InvalidKinds {
		for j := range 2 {
			s := spec.Signers[n%len(spec.Signers)]
			claims := spec.Claims
			at := now
			switch kind {
			case "expired":
				at = now.Add(-claims.TTL - time.Hour)
			case "audience":
				claims.Audience = wrongAudience
			}
			tok, err := mintToken(s, 1_000_000+n, grants[j%len(grants)], claims, at)
			if err != nil {
				return nil, err
			}
			switch kind {
			case "signature":
				tok = alterSignature(tok)
			case "algorithm":
				tok = algNone(tok)
			}
			tmpl := templates[n%len(templates)]
			body, err := encodeWithToken(tmpl, tok)
			if err != nil {
				return nil, err
			}
			out = append(out, wireRequest{body: body, invalid: true})
			n++
		}
	}
	return out, nil
}

// alterSignature changes the first character of tok's signature: a token
// whose signature no key verifies.
func alterSignature(tok string) string {
	i := strings.LastIndexByte(tok, '.') + 1
	c := byte('A')
	if tok[i] == 'A' {
		c = 'B'
	}
	return tok[:i] + string(c) + tok[i+1:]
}

// algNone replaces tok's protected header with {"alg":"none","typ":"JWT"},
// keeping its payload and signature.
func algNone(tok string) string {
	i := strings.IndexByte(tok, '.')
	return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + tok[i:]
}
