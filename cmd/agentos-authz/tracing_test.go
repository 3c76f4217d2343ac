package main

import (
	"context"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/agentos-authz/agentos-authz/authz"
	"github.com/agentos-authz/agentos-authz/envoy"
	"github.com/agentos-authz/agentos-authz/internal/serveconfig"
)

const (
	testTraceID     = "4bf92f3577b34da6a3ce929d0e0e4736"
	testParentSpan  = "00f067aa0ba902b7"
	testTraceparent = "00-" + testTraceID + "-" + testParentSpan + "-01"
	testUnsampled   = "00-" + testTraceID + "-" + testParentSpan + "-00"
)

// TestTracerProviderSampling: the sampler serve builds from the tracing:
// section. A trace started here is kept with probability sample_ratio; a
// check carrying the caller's traceparent follows the caller's choice.
func TestTracerProviderSampling(t *testing.T) {
	ratio := func(r float64) *float64 { return &r }
	tests := []struct {
		name        string
		ratio       *float64
		traceparent string
		wantSpans   int
	}{
		{name: "default ratio keeps a new trace", ratio: nil, wantSpans: 1},
		{name: "ratio 1 keeps a new trace", ratio: ratio(1), wantSpans: 1},
		{name: "ratio 0: sampling off, no span", ratio: ratio(0), wantSpans: 0},
		{name: "ratio 0, caller sampled: span", ratio: ratio(0), traceparent: testTraceparent, wantSpans: 1},
		{name: "ratio 1, caller not sampled: no span", ratio: ratio(1), traceparent: testUnsampled, wantSpans: 0},
	}
	cfg, err := loadText([]byte("security_key: test-static-key-0123456789abcdef\n"), nil, serveconfig.Flags{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := authz.New(cfg.Config, authz.Options{Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			tp := newTracerProvider(serveconfig.TracingConfig{OTLPEndpoint: "unused:4317", SampleRatio: tc.ratio}, sdktrace.WithSyncer(exp))
			defer func() { _ = tp.Shutdown(context.WithoutCancel(t.Context())) }()
			h := envoy.NewHTTPHandler(envoy.TraceDecider(a, tp), envoy.HTTPOptions{})
			req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/agents", nil)
			if tc.traceparent != "" {
				req.Header.Set("Traceparent", tc.traceparent)
			}
			h.ServeHTTP(httptest.NewRecorder(), req)
			if got := len(exp.GetSpans()); got != tc.wantSpans {
				t.Errorf("spans = %d, want %d", got, tc.wantSpans)
			}
		})
	}
}

// collector is an OTLP gRPC trace collector on loopback, recording what
// it is sent.
type collector struct {
	collectortrace.UnimplementedTraceServiceServer
	mu   sync.Mutex
	reqs []*collectortrace.ExportTraceServiceRequest
	addr string
}

func startCollector(t *testing.T) *collector {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{addr: lis.Addr().String()}
	gs := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(gs, c)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return c
}

func (c *collector) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reqs = append(c.reqs, req)
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func (c *collector) spans() (spans []*tracepb.Span, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, r := range c.reqs {
		b.WriteString(prototext.Format(r))
		for _, rs := range r.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				spans = append(spans, ss.GetSpans()...)
			}
		}
	}
	return spans, b.String()
}

// TestServeTracingOTLP runs serve with tracing on: a check that carries a
// traceparent is exported to the OTLP collector as a child of the
// caller's span when serve stops (the exporter is flushed on exit), with
// its decision attributes and no token, claim or user id.
func TestServeTracingOTLP(t *testing.T) {
	col := startCollector(t)
	h := newHarness(t)
	prefix, pub := keyPair(t, h)
	tok := h.mint("--key", prefix+".key.pem", "--alg", "ES256", "--aud", "test-os", "--sub", "alice-sub-4242", "--scopes", "agents:read")
	cfg := keyConfig(pub, "ES256")
	cfg["tracing"] = map[string]any{"otlp_endpoint": col.addr, "insecure": true}
	r := startServe(t, newHarness(t), nil, 0, "--config", writeConfig(t, cfg))
	r.waitServing(t)

	headers := []authz.Header{{Name: "authorization", Value: "Bearer " + tok}, {Name: "traceparent", Value: testTraceparent}}
	resp, err := r.checkHeaders(t.Context(), "GET", "/agents", headers)
	if err != nil || resp.GetStatus().GetCode() != 0 {
		t.Fatalf("Check = %v, %v; want OK", resp.GetStatus(), err)
	}
	if code := r.stop(t); code != exitOK {
		t.Fatalf("serve exit = %d, want 0", code)
	}

	spans, text := col.spans()
	if len(spans) != 1 {
		t.Fatalf("collector received %d spans, want 1 (flushed at exit)\n%s\nserve stderr: %s", len(spans), text, r.h.stderr)
	}
	s := spans[0]
	if s.GetName() != envoy.SpanCheck {
		t.Errorf("span name = %q, want %q", s.GetName(), envoy.SpanCheck)
	}
	if got := hex.EncodeToString(s.GetTraceId()); got != testTraceID {
		t.Errorf("trace id = %s, want the caller's %s", got, testTraceID)
	}
	if got := hex.EncodeToString(s.GetParentSpanId()); got != testParentSpan {
		t.Errorf("parent span = %s, want the caller's %s", got, testParentSpan)
	}
	attrs := map[string]string{}
	for _, kv := range s.GetAttributes() {
		attrs[kv.GetKey()] = prototext.Format(kv.GetValue())
	}
	for k, want := range map[string]string{
		envoy.AttrDecision: `"allow"`, envoy.AttrStatus: "200", envoy.AttrReason: `"allowed"`, envoy.AttrRule: `"GET /agents"`,
	} {
		if !strings.Contains(attrs[k], want) {
			t.Errorf("attribute %s = %s, want %s", k, attrs[k], want)
		}
	}
	if !strings.Contains(text, serviceName) {
		t.Errorf("export has no service.name %q:\n%s", serviceName, text)
	}
	for _, secret := range []string{tok, tok[strings.LastIndex(tok, ".")+1:], "alice-sub-4242", "agents:read", "Bearer"} {
		if strings.Contains(text, secret) {
			t.Errorf("the exported spans hold %q", secret)
		}
	}
}

// checkHeaders sends the CheckRequest Envoy would send
// (envoy.NewCheckRequest) for method and path with these header lines.
func (r *running) checkHeaders(ctx context.Context, method, path string, headers []authz.Header) (*authv3.CheckResponse, error) {
	return authv3.NewAuthorizationClient(r.conn).Check(ctx, envoy.NewCheckRequest(envoy.RequestSpec{Method: method, Path: path, Headers: headers}))
}
