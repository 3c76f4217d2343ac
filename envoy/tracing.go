package envoy

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentos-authz/agentos-authz/authz"
)

// OpenTelemetry tracing (README, "Tracing"): one span per check, around
// the Decider, so the gRPC and the HTTP listener trace alike. The span
// continues the trace of the checked request: its W3C traceparent (and
// tracestate), read from the request's headers (the CheckRequest's
// attributes.request.http headers, or the HTTP check's own headers, which
// nginx and Traefik copy from the client's request).

// Span name and attribute keys. Every attribute value comes from a closed
// set or the configuration (the route-table key): never a token, a claim
// value, a header value, a path or a user id.
const (
	SpanCheck     = "agentos_authz.check"
	AttrDecision  = "agentos_authz.decision" // allow | deny
	AttrStatus    = "agentos_authz.status"   // the HTTP status sent
	AttrReason    = "agentos_authz.reason"   // authz.Reason.String()
	AttrRule      = "agentos_authz.rule"     // the matched route-table key, absent when none
	tracerName    = "github.com/agentos-authz/agentos-authz/envoy"
	headerTraceID = "traceparent"
)

// TraceDecider wraps d so that every decision is one span of tp's tracer:
// a server span named SpanCheck, child of the checked request's
// traceparent when it carries a valid one, else the root of a new trace.
// Sampling is tp's (cmd configures ParentBased(TraceIDRatioBased)).
func TraceDecider(d Decider, tp trace.TracerProvider) Decider {
	if d == nil || tp == nil {
		panic("envoy: TraceDecider needs a Decider and a TracerProvider")
	}
	return &traced{
		next:   d,
		tracer: tp.Tracer(tracerName),
		prop:   propagation.TraceContext{},
	}
}

// traced is a Decider that records one span per decision.
type traced struct {
	next   Decider
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
}

var _ Decider = (*traced)(nil)

func (x *traced) Decide(ctx context.Context, r *authz.Request) authz.Decision {
	// Headers are lower-cased by both adapters, as TraceContext asks for.
	// Without a valid traceparent, Extract leaves ctx as it was.
	if _, ok := r.Headers[headerTraceID]; ok {
		ctx = x.prop.Extract(ctx, propagation.MapCarrier(r.Headers))
	}
	ctx, span := x.tracer.Start(ctx, SpanCheck, trace.WithSpanKind(trace.SpanKindServer))
	d := x.next.Decide(ctx, r)
	if span.IsRecording() {
		status := renderedStatus(&d)
		attrs := make([]attribute.KeyValue, 0, 4)
		attrs = append(attrs,
			attribute.String(AttrDecision, decisionLabel(status)),
			attribute.Int(AttrStatus, status),
			attribute.String(AttrReason, d.Reason.String()))
		if d.Rule != "" {
			attrs = append(attrs, attribute.String(AttrRule, d.Rule))
		}
		span.SetAttributes(attrs...)
		if status >= http.StatusInternalServerError {
			// A fault of ours (keys not loaded yet), not a client's
			// denial: the span is an error.
			span.SetStatus(codes.Error, d.Reason.String())
		}
	}
	span.End()
	return d
}
