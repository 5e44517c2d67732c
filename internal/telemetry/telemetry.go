// Package telemetry sets up OpenTelemetry tracing from the standard environment variables, and carries
// a trace's context across asynq's task headers. With no OTLP endpoint configured, tracing is off: the
// tracer provider is a no-op one, no exporter runs, and nothing is wrapped. It also keeps the log
// readable when things fail: Repeats holds back a failure that recurs, and RouteLibraryLogs sends every
// library's own logger through reportd's.
package telemetry

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Propagator carries a span's context as W3C traceparent and tracestate: in HTTP headers, and in the
// headers of asynq tasks.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Name is the instrumentation scope of reportd's own spans.
const Name = "github.com/reportd/reportd"

// Setup returns the tracer provider the environment asks for. reportd decides only whether tracing is
// on, through getenv: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT turns it on
// (the SDK's exporter would otherwise send to localhost:4318 unasked), and OTEL_SDK_DISABLED=true or
// OTEL_TRACES_EXPORTER=none turns it off again (the Go SDK reads neither). Everything else is the SDK's
// own reading of the process's environment: the exporter's endpoint, headers and timeouts
// (OTEL_EXPORTER_OTLP_*), the batching (OTEL_BSP_*), the sampler (OTEL_TRACES_SAMPLER) and the resource
// (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES), where reportd adds only the service name's default,
// reportd. on says whether tracing is on; shutdown sends what is left.
func Setup(ctx context.Context, getenv func(string) string) (tp trace.TracerProvider, on bool, shutdown func(context.Context) error, err error) {
	off := noop.NewTracerProvider()
	nothing := func(context.Context) error { return nil }
	if !wanted(getenv) {
		return off, false, nothing, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return off, false, nothing, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	// Later detectors win: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override the default name.
	res, err := resource.New(ctx, resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName("reportd")), resource.WithFromEnv())
	if err != nil {
		return off, false, nothing, fmt.Errorf("trace resource (OTEL_RESOURCE_ATTRIBUTES?): %w", err)
	}
	sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return sdk, true, sdk.Shutdown, nil
}

// wanted says whether the environment asks for tracing: an OTLP endpoint, and not turned off.
func wanted(getenv func(string) string) bool {
	if getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" {
		return false
	}
	return !strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") && getenv("OTEL_TRACES_EXPORTER") != "none"
}

// Inject writes ctx's span context into headers (asynq task headers), if it has one.
func Inject(ctx context.Context, headers map[string]string) {
	Propagator.Inject(ctx, propagation.MapCarrier(headers))
}

// Extract returns ctx with the span context headers carry, if any.
func Extract(ctx context.Context, headers map[string]string) context.Context {
	return Propagator.Extract(ctx, propagation.MapCarrier(headers))
}

// Tracer is reportd's tracer from tp, or a no-op one when tp is nil.
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer(Name)
}
