package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
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
	allow bool   // true: allowed; false: denied 403
}

// workload is the set of requests a load run sends.
type workload struct {
	reqs []wireRequest
	// fresh: each request is sent once (a new token each time) and the run
	// ends early when they run out; otherwise they are sent round-robin.
	fresh bool
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

	granted := int(math.Round(spec.Mix * float64(spec.Count)))
	grants, denies := grantingScopes(), denyingScopes()
	now := time.Now()
	out := make([]wireRequest, spec.Count)

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
