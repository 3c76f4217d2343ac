package envoy

import (
	"context"
	"io"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/agentos-authz/agentos-authz/authz"
	"github.com/agentos-authz/agentos-authz/proto/envoyfixtures"
)

// checkBenchCase is one Check of the gRPC benchmark: an Envoy fixture
// carrying an HS256 token with scopes, and the outcome it must get.
type checkBenchCase struct {
	name    string
	fixture string
	scopes  []string
	allow   bool
}

// checkBenchCases are requests as the load tool (cmd/authz-bench) sends
// them: AgentOS routes from the Envoy fixtures, tokens already verified
// (the cache hit every pooled token gets), allowed and denied.
func checkBenchCases() []checkBenchCase {
	grant := []string{"agents:read", "agents:*:run", "teams:read", "teams:run", "workflows:read"}
	return []checkBenchCase{
		{name: "allow/http1-get-query", fixture: "http1-get-query", scopes: grant, allow: true},
		{name: "allow/http2-post-pseudo", fixture: "http2-post-pseudo", scopes: grant, allow: true},
		{name: "allow/raw-header-map", fixture: "raw-header-map", scopes: grant, allow: true},
		{name: "deny403/http1-get-query", fixture: "http1-get-query", scopes: []string{"sessions:read", "memories:read"}},
	}
}

// benchLogger is the service's production logger (JSON, info, sampled as
// cmd/agentos-authz builds it) writing to io.Discard, so that the
// benchmark pays for the decision logs the service writes.
func benchLogger() *zap.Logger {
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zapcore.InfoLevel)
	return zap.New(zapcore.NewSamplerWithOptions(core, time.Second, 100, 100))
}

// benchServer is the Check service as cmd/agentos-authz wires it: the real
// authorizer (HS256 key, verified-token cache) measured by Metrics.
func benchServer(b testing.TB) authv3.AuthorizationServer {
	b.Helper()
	text := "os_id: test-os\njwt:\n  algorithms: [HS256]\n  verification_keys: [\"" + httpSecret + "\"]\n"
	cfg, err := authz.Load([]byte(text), nil, authz.LoadOptions{})
	if err != nil {
		b.Fatalf("authz.Load: %v", err)
	}
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	a, err := authz.New(cfg, authz.Options{Logger: benchLogger(), Observer: m})
	if err != nil {
		b.Fatalf("authz.New: %v", err)
	}
	return NewServer(m.Decider(a))
}

// benchRequest is the fixture with a token for scopes, checked once so
// that its token is cached and its outcome is the expected one.
func benchRequest(b testing.TB, srv authv3.AuthorizationServer, c checkBenchCase) *authv3.CheckRequest {
	b.Helper()
	cr, err := envoyfixtures.Load(c.fixture)
	if err != nil {
		b.Fatal(err)
	}
	if envoyfixtures.SetToken(cr, benchToken(b, c.scopes)) == 0 {
		b.Fatalf("fixture %s has no token placeholder", c.fixture)
	}
	resp, err := srv.Check(context.Background(), cr)
	if err != nil {
		b.Fatalf("Check(%s) error = %v", c.fixture, err)
	}
	if allowed := resp.GetStatus().GetCode() == int32(codes.OK); allowed != c.allow {
		b.Fatalf("Check(%s) status = %v, want allowed %v", c.fixture, resp.GetStatus(), c.allow)
	}
	return cr
}

// benchToken signs an HS256 token for the HTTP-mode tests' secret (as
// mintHS does), valid for an hour, with scopes.
func benchToken(b testing.TB, scopes []string) string {
	b.Helper()
	now := time.Now()
	tok, err := jwt.NewBuilder().Subject("alice@example.com").Audience([]string{"test-os"}).
		IssuedAt(now).Expiration(now.Add(time.Hour)).
		Claim("scopes", scopes).Claim("session_id", "s-1").Build()
	if err != nil {
		b.Fatal(err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.HS256, []byte(httpSecret)))
	if err != nil {
		b.Fatal(err)
	}
	return string(signed)
}

var checkSink *authv3.CheckResponse

// BenchmarkCheck is the gRPC adapter in process: CheckRequest (an Envoy
// fixture) → Check → CheckResponse, through the real authorizer with a
// cached token, metrics and logging. The wire variant adds what gRPC's
// codec does around it, unmarshalling the request and marshalling the
// response; set it beside the no-op server's reply (BenchmarkCheck/noop)
// to see the decision's share of the server's work.
func BenchmarkCheck(b *testing.B) {
	srv := benchServer(b)
	ctx := context.Background()
	for _, c := range checkBenchCases() {
		cr := benchRequest(b, srv, c)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				checkSink, _ = srv.Check(ctx, cr)
			}
		})
		wire, err := proto.Marshal(cr)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("wire/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				benchWire(b, wire, func(req *authv3.CheckRequest) *authv3.CheckResponse {
					resp, _ := srv.Check(ctx, req)
					return resp
				})
			}
		})
	}
	// The no-op server's answer (cmd/authz-bench), for scale.
	wire, err := proto.Marshal(benchRequest(b, srv, checkBenchCases()[0]))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("wire/noop", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			benchWire(b, wire, func(*authv3.CheckRequest) *authv3.CheckResponse {
				return &authv3.CheckResponse{HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}}}
			})
		}
	})
}

var wireSink []byte

// benchWire decodes a CheckRequest, answers it with check and encodes the
// answer, as the gRPC server's codec does.
func benchWire(b *testing.B, wire []byte, check func(*authv3.CheckRequest) *authv3.CheckResponse) {
	req := new(authv3.CheckRequest)
	if err := proto.Unmarshal(wire, req); err != nil {
		b.Fatal(err)
	}
	out, err := proto.Marshal(check(req))
	if err != nil {
		b.Fatal(err)
	}
	wireSink = out
}

// TestCheckAllocs locks the allocations of a whole Check with a cached
// token (README, Performance): the decision's upstream headers, the request passed to
// the Decider, and the response (its messages, headers' storage and list,
// and the metadata's map); a denial builds its detail and body instead.
func TestCheckAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	budgets := map[string]float64{
		"allow/http1-get-query":   7,
		"allow/http2-post-pseudo": 7,
		"allow/raw-header-map":    14,
		"deny403/http1-get-query": 9,
	}
	srv := benchServer(t)
	ctx := context.Background()
	for _, c := range checkBenchCases() {
		t.Run(c.name, func(t *testing.T) {
			cr := benchRequest(t, srv, c)
			got := testing.AllocsPerRun(100, func() { checkSink, _ = srv.Check(ctx, cr) })
			if want, ok := budgets[c.name]; !ok || got > want {
				t.Errorf("Check(%s) allocates %.0f times, budget %v", c.name, got, want)
			}
		})
	}
}
