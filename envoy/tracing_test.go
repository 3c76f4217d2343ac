package envoy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentos-authz/agentos-authz/authz"
)

// Secrets a check carries: none may appear in a span.
const (
	traceToken   = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZS11c2VyIn0.c2lnbmF0dXJl"
	traceUser    = "alice-user-7f3a"
	traceCookie  = "session=cookie-secret-91b2"
	traceOrigin  = "https://app.example.test"
	tracePath    = "/agents/private-agent-id/runs?secret_query=q1"
	traceParent  = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	traceParentN = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00" // not sampled
	traceState   = "vendor=opaque-state-value"
	traceID      = "4bf92f3577b34da6a3ce929d0e0e4736"
	traceSpanID  = "00f067aa0ba902b7"
)

// fixedDecider returns d for every request and keeps the context it was
// called with.
type fixedDecider struct {
	d   authz.Decision
	ctx context.Context
}

func (f *fixedDecider) Decide(ctx context.Context, _ *authz.Request) authz.Decision {
	f.ctx = ctx
	return f.d
}

// allowWithIdentity is an allow that carries what must never be traced.
func allowWithIdentity() authz.Decision {
	return authz.Decision{
		Status: 200, Reason: authz.ReasonAllowed, Rule: "POST /agents/*/runs",
		UserID: traceUser, Auth: "jwt",
		Upstream: []authz.Header{{Name: "x-agentos-user-id", Value: traceUser}},
	}
}

func newTestTracer(t *testing.T, sampler sdktrace.Sampler) (*tracetest.InMemoryExporter, trace.TracerProvider) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sampler))
	t.Cleanup(func() { _ = tp.Shutdown(context.WithoutCancel(t.Context())) })
	return exp, tp
}

// checkOverGRPC sends one check with headers through the gRPC adapter.
func checkOverGRPC(t *testing.T, d Decider, headers map[string]string) {
	t.Helper()
	if _, err := NewServer(d).Check(t.Context(), envoyRequest("POST", tracePath, headers)); err != nil {
		t.Fatalf("Check: %v", err)
	}
}

// checkOverHTTP sends one nginx-style check with headers through the HTTP
// adapter.
func checkOverHTTP(t *testing.T, d Decider, headers map[string]string) {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/auth", nil)
	req.Header.Set("X-Original-Method", "POST")
	req.Header.Set("X-Original-Uri", tracePath)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	NewHTTPHandler(d, HTTPOptions{}).ServeHTTP(rec, req)
}

func secretHeaders(traceparent string) map[string]string {
	h := map[string]string{
		"authorization": "Bearer " + traceToken,
		"cookie":        traceCookie,
		"origin":        traceOrigin,
		"x-request-id":  "req-id-secret-55",
	}
	if traceparent != "" {
		h["traceparent"] = traceparent
		h["tracestate"] = traceState
	}
	return h
}

func TestTraceDeciderContinuesTheCallersTrace(t *testing.T) {
	transports := []struct {
		name string
		send func(t *testing.T, d Decider, headers map[string]string)
	}{
		{name: "grpc", send: checkOverGRPC},
		{name: "http", send: checkOverHTTP},
	}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			exp, tp := newTestTracer(t, sdktrace.ParentBased(sdktrace.AlwaysSample()))
			inner := &fixedDecider{d: allowWithIdentity()}
			tr.send(t, TraceDecider(inner, tp), secretHeaders(traceParent))

			spans := exp.GetSpans()
			if len(spans) != 1 {
				t.Fatalf("%s check recorded %d spans, want 1", tr.name, len(spans))
			}
			s := spans[0]
			if s.Name != SpanCheck || s.SpanKind != trace.SpanKindServer {
				t.Errorf("span = %q kind %v, want %q server", s.Name, s.SpanKind, SpanCheck)
			}
			if got := s.SpanContext.TraceID().String(); got != traceID {
				t.Errorf("span trace id = %s, want the caller's %s", got, traceID)
			}
			if got := s.Parent.SpanID().String(); got != traceSpanID || !s.Parent.IsRemote() {
				t.Errorf("span parent = %s (remote %v), want the caller's span %s", got, s.Parent.IsRemote(), traceSpanID)
			}
			if got := s.SpanContext.TraceState().String(); got != traceState {
				t.Errorf("span tracestate = %q, want %q carried on", got, traceState)
			}
			// The Decider runs inside the span: work it traces is a child.
			if got := trace.SpanContextFromContext(inner.ctx).SpanID(); got != s.SpanContext.SpanID() {
				t.Errorf("Decider context span = %s, want the check span %s", got, s.SpanContext.SpanID())
			}
			want := map[attribute.Key]string{
				AttrDecision: "allow",
				AttrStatus:   "200",
				AttrReason:   authz.ReasonAllowed.String(),
				AttrRule:     "POST /agents/*/runs",
			}
			got := map[attribute.Key]string{}
			for _, a := range s.Attributes {
				got[a.Key] = a.Value.String()
			}
			if len(got) != len(want) {
				t.Errorf("attributes = %v, want exactly %v", got, want)
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("attribute %s = %q, want %q", k, got[k], v)
				}
			}
			if s.Status.Code == codes.Error {
				t.Errorf("an allow is an error span: %v", s.Status)
			}
		})
	}
}

func TestTraceDeciderNeverRecordsSecrets(t *testing.T) {
	decisions := []authz.Decision{
		allowWithIdentity(),
		{Status: 403, Reason: authz.ReasonInsufficientScopes, Detail: "Insufficient permissions", Rule: "POST /agents/*/runs",
			UserID: traceUser, Missing: []string{"agents:run"}},
		{Status: 401, Reason: authz.ReasonInvalidToken, Detail: "Invalid token"},
		{Status: 503, Reason: authz.ReasonKeysUnavailable},
	}
	secrets := []string{traceToken, "Bearer", traceUser, "cookie-secret", traceOrigin, "private-agent-id",
		"secret_query", "req-id-secret", "opaque-state-value"}
	for _, d := range decisions {
		t.Run(d.Reason.String(), func(t *testing.T) {
			exp, tp := newTestTracer(t, sdktrace.AlwaysSample())
			dec := TraceDecider(&fixedDecider{d: d}, tp)
			checkOverGRPC(t, dec, secretHeaders(traceParent))
			checkOverHTTP(t, dec, secretHeaders(""))
			spans := exp.GetSpans()
			if len(spans) != 2 {
				t.Fatalf("recorded %d spans, want 2", len(spans))
			}
			for _, s := range spans {
				var text strings.Builder
				text.WriteString(s.Name + " " + s.Status.Description)
				for _, a := range s.Attributes {
					text.WriteString(" " + string(a.Key) + "=" + a.Value.String())
				}
				for _, e := range s.Events {
					text.WriteString(" " + e.Name)
				}
				for _, secret := range secrets {
					if strings.Contains(text.String(), secret) {
						t.Errorf("span %q holds %q: %s", s.Name, secret, text.String())
					}
				}
				if wantErr := d.Status >= 500; (s.Status.Code == codes.Error) != wantErr {
					t.Errorf("%d decision: span status %v, want error %v", d.Status, s.Status.Code, wantErr)
				}
			}
		})
	}
}

func TestTraceDeciderRootsAndSampling(t *testing.T) {
	tests := []struct {
		name        string
		traceparent string
		sampler     sdktrace.Sampler
		wantSpans   int
		wantRoot    bool
	}{
		{name: "no traceparent starts a trace", sampler: sdktrace.ParentBased(sdktrace.AlwaysSample()), wantSpans: 1, wantRoot: true},
		{name: "malformed traceparent starts a trace", traceparent: "00-not-a-trace-01", sampler: sdktrace.ParentBased(sdktrace.AlwaysSample()), wantSpans: 1, wantRoot: true},
		{name: "all-zero trace id starts a trace", traceparent: "00-00000000000000000000000000000000-00f067aa0ba902b7-01", sampler: sdktrace.ParentBased(sdktrace.AlwaysSample()), wantSpans: 1, wantRoot: true},
		{name: "caller not sampled: no span", traceparent: traceParentN, sampler: sdktrace.ParentBased(sdktrace.AlwaysSample()), wantSpans: 0},
		{name: "ratio 0 and no parent: no span", sampler: sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0)), wantSpans: 0},
		{name: "ratio 0 but the caller sampled: span", traceparent: traceParent, sampler: sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0)), wantSpans: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exp, tp := newTestTracer(t, tc.sampler)
			inner := &fixedDecider{d: allowWithIdentity()}
			checkOverGRPC(t, TraceDecider(inner, tp), secretHeaders(tc.traceparent))
			spans := exp.GetSpans()
			if len(spans) != tc.wantSpans {
				t.Fatalf("recorded %d spans, want %d", len(spans), tc.wantSpans)
			}
			if tc.wantSpans == 0 {
				return
			}
			s := spans[0]
			if tc.wantRoot && (s.Parent.IsValid() || s.SpanContext.TraceID().String() == traceID) {
				t.Errorf("span parent %v trace %s, want a new root trace", s.Parent, s.SpanContext.TraceID())
			}
		})
	}
}
