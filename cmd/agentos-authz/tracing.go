package main

import (
	"context"
	"crypto/tls"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.uber.org/zap"
	"google.golang.org/grpc/credentials"

	"github.com/agentos-authz/agentos-authz/authz"
	"github.com/agentos-authz/agentos-authz/internal/serveconfig"
)

// tracingShutdownWait bounds the flush of the spans still buffered when
// serve stops.
const tracingShutdownWait = 5 * time.Second

// serviceName is the OpenTelemetry service.name of the spans.
const serviceName = "agentos-authz"

// newTracing builds the OpenTelemetry tracer provider of the tracing:
// section (README, "Tracing"): spans batched to the OTLP gRPC collector at
// tracing.otlp_endpoint. nil when tracing is off (the default). The
// exporter connects lazily: an unreachable collector never delays or
// fails a check, its spans are dropped (and logged by the SDK).
func newTracing(c serveconfig.TracingConfig, log *zap.Logger) (*sdktrace.TracerProvider, error) {
	if !c.Enabled() {
		return nil, nil
	}
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(c.OTLPEndpoint)}
	if c.Insecure {
		opts = append(opts, otlptracegrpc.WithInsecure())
	} else {
		// Explicit, so that OTEL_EXPORTER_OTLP_INSECURE cannot turn
		// the configured TLS off.
		opts = append(opts, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})))
	}
	// otlptracegrpc.New does not connect; its context only bounds setup.
	exp, err := otlptracegrpc.New(context.Background(), opts...)
	if err != nil {
		return nil, &authz.FieldError{Field: "tracing.otlp_endpoint", Err: err}
	}
	// The SDK reports export failures (collector down) to the global
	// handler; route them to our log rather than its default stderr line.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("tracing: span export failed", zap.Error(err))
	}))
	log.Info("tracing on",
		zap.String("otlp_endpoint", c.OTLPEndpoint),
		zap.Float64("sample_ratio", c.Ratio()),
		zap.Bool("insecure", c.Insecure))
	return newTracerProvider(c, sdktrace.WithBatcher(exp)), nil
}

// newTracerProvider is the provider around an exporter option (the OTLP
// batcher; tests give an in-memory syncer). Sampling: a check that carries
// the caller's traceparent follows the caller's decision; a trace started
// here is kept with probability tracing.sample_ratio.
func newTracerProvider(c serveconfig.TracingConfig, export sdktrace.TracerProviderOption) *sdktrace.TracerProvider {
	return sdktrace.NewTracerProvider(
		export,
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(c.Ratio()))),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", serviceName))),
	)
}

// closeTracing flushes the spans still buffered and stops the exporter.
func closeTracing(ctx context.Context, tp *sdktrace.TracerProvider, log *zap.Logger) {
	if tp == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tracingShutdownWait)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		log.Warn("tracing shutdown: spans may be lost", zap.Error(err))
	}
}
