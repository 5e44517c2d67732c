// Package telemetry sets up OpenTelemetry tracing from the standard environment variables, and carries
// a trace's context across asynq's task headers. With no OTLP endpoint configured, tracing is off: the
// tracer provider is a no-op one, no exporter runs, and nothing is wrapped.
package telemetry

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Propagator carries a span's context as W3C traceparent and tracestate: in HTTP headers, and in the
// headers of asynq tasks.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Name is the instrumentation scope of reportd's own spans.
const Name = "github.com/reportd/reportd"

// Setup returns the tracer provider the environment asks for, read through getenv:
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (the full URL) or OTEL_EXPORTER_OTLP_ENDPOINT (its base, to which
// /v1/traces is added) turns tracing on, exporting over OTLP/HTTP; OTEL_SDK_DISABLED=true or
// OTEL_TRACES_EXPORTER=none turns it off again. OTEL_SERVICE_NAME names the service (default reportd),
// OTEL_BSP_SCHEDULE_DELAY (ms) is how long spans wait to be sent, and the exporter and the sampler read
// their other variables (OTEL_EXPORTER_OTLP_HEADERS, OTEL_TRACES_SAMPLER, ...) from the process's
// environment as the SDK does. on says whether tracing is on; shutdown sends what is left.
func Setup(ctx context.Context, getenv func(string) string) (tp trace.TracerProvider, on bool, shutdown func(context.Context) error, err error) {
	off := noop.NewTracerProvider()
	nothing := func(context.Context) error { return nil }
	endpoint := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if endpoint == "" {
		if base := getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); base != "" {
			endpoint = strings.TrimSuffix(base, "/") + "/v1/traces"
		}
	}
	if endpoint == "" || strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") || getenv("OTEL_TRACES_EXPORTER") == "none" {
		return off, false, nothing, nil
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
	if err != nil {
		return off, false, nothing, fmt.Errorf("OTLP trace exporter for %s: %w", endpoint, err)
	}
	name := getenv("OTEL_SERVICE_NAME")
	if name == "" {
		name = "reportd"
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", name)))
	if err != nil {
		return off, false, nothing, fmt.Errorf("trace resource: %w", err)
	}
	var batch []sdktrace.BatchSpanProcessorOption
	if ms, err := strconv.Atoi(getenv("OTEL_BSP_SCHEDULE_DELAY")); err == nil && ms > 0 {
		batch = append(batch, sdktrace.WithBatchTimeout(time.Duration(ms)*time.Millisecond))
	}
	sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, batch...), sdktrace.WithResource(res))
	return sdk, true, sdk.Shutdown, nil
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
