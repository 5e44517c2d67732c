// Package telemetry sets up OpenTelemetry tracing from the standard environment variables, and carries
// a trace's context across asynq's task headers. With no OTLP endpoint configured, tracing is off: the
// tracer provider is a no-op one, no exporter runs, and nothing is wrapped. It also keeps the log
// readable when things fail: Repeats holds back a failure that recurs, and RouteLibraryLogs sends every
// library's own logger through reportd's.
package telemetry

import (
	"context"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
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

// ServiceName is the service.name of reportd's spans unless OTEL_SERVICE_NAME (or service.name in
// OTEL_RESOURCE_ATTRIBUTES) says otherwise.
const ServiceName = "reportd"

// RoleKey is the resource attribute that says which part of reportd a process runs: RoleAPI,
// RoleWorker or RoleAll. OpenTelemetry's semantic conventions have no attribute for a process's part
// in a service, so it is reportd's own, in reportd's namespace.
const RoleKey = attribute.Key("reportd.role")

// The roles of a reportd process, as `reportd`, `reportd api` and `reportd worker` run them.
const (
	RoleAll    = "all"
	RoleAPI    = "api"
	RoleWorker = "worker"
)

// Process is what the trace resource says of this process beyond what the SDK finds out itself.
type Process struct {
	// Role is which part of reportd the process runs (RoleAPI, RoleWorker or RoleAll).
	Role string
	// Version is reportd's version, service.version.
	Version string
}

// Tracing is what Setup set up.
type Tracing struct {
	// Provider is the tracer provider: the SDK's when On, a no-op one otherwise.
	Provider trace.TracerProvider
	// On says whether spans are exported, and Endpoint where to (the OTLP/HTTP URL of traces).
	On       bool
	Endpoint string
	// Resource is what every span says of the process that made it (nil when off).
	Resource *resource.Resource
	// Shutdown sends the spans not yet sent.
	Shutdown func(context.Context) error
}

// Setup returns the tracing the environment asks for. reportd decides only whether tracing is on,
// through getenv: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT turns it on (the
// SDK's exporter would otherwise send to localhost:4318 unasked), and OTEL_SDK_DISABLED=true or
// OTEL_TRACES_EXPORTER=none turns it off again (the Go SDK reads neither). Everything else is the SDK's
// own reading of the process's environment: the exporter's endpoint, headers and timeouts
// (OTEL_EXPORTER_OTLP_*), the batching (OTEL_BSP_*), the sampler (OTEL_TRACES_SAMPLER) and the resource
// (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES), which override what NewResource says of p.
func Setup(ctx context.Context, getenv func(string) string, p Process) (Tracing, error) {
	off := Tracing{Provider: noop.NewTracerProvider(), Shutdown: func(context.Context) error { return nil }}
	if !wanted(getenv) {
		return off, nil
	}
	endpoint, err := tracesEndpoint(getenv)
	if err != nil {
		return off, err
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return off, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	res, err := NewResource(ctx, p)
	if err != nil {
		return off, err
	}
	sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return Tracing{Provider: sdk, On: true, Endpoint: endpoint, Resource: res, Shutdown: sdk.Shutdown}, nil
}

// NewResource describes this process to a trace backend, so that the API and the workers of one
// deployment read as distinct processes of one service: service.name (ServiceName), service.version
// (p.Version), a service.instance.id new to each process, the role (RoleKey), the SDK, the host's name,
// and the process's id, executable and Go runtime. Not its command line (process.command_args): an
// argument may hold a secret. OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, read by the SDK from the
// process's environment, override any of these.
func NewResource(ctx context.Context, p Process) (*resource.Resource, error) {
	own := []attribute.KeyValue{semconv.ServiceName(ServiceName), semconv.ServiceInstanceID(uuid.NewString()), RoleKey.String(p.Role)}
	if p.Version != "" {
		own = append(own, semconv.ServiceVersion(p.Version))
	}
	// Later options win: the environment's attributes come last.
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithProcessPID(),
		resource.WithProcessExecutableName(),
		resource.WithProcessRuntimeName(),
		resource.WithProcessRuntimeVersion(),
		resource.WithAttributes(own...),
		resource.WithFromEnv(),
	)
	if err != nil {
		return nil, fmt.Errorf("trace resource (OTEL_RESOURCE_ATTRIBUTES?): %w", err)
	}
	return res, nil
}

// wanted says whether the environment asks for tracing: an OTLP endpoint, and not turned off.
func wanted(getenv func(string) string) bool {
	if getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" {
		return false
	}
	return !strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") && getenv("OTEL_TRACES_EXPORTER") != "none"
}

// tracesEndpoint is the URL the SDK's OTLP/HTTP exporter sends spans to, read from the variables as
// the exporter reads them: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is (with the path / if it has
// none), else OTEL_EXPORTER_OTLP_ENDPOINT with /v1/traces added to its path. Credentials in it are
// masked. A URL that does not parse is refused: the exporter would drop it and send to localhost.
func tracesEndpoint(getenv func(string) string) (string, error) {
	name := "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	v := getenv(name)
	if v == "" {
		name = "OTEL_EXPORTER_OTLP_ENDPOINT"
		v = getenv(name)
	}
	u, err := url.Parse(v)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	switch {
	case name == "OTEL_EXPORTER_OTLP_ENDPOINT":
		u.Path = path.Join(u.Path, "/v1/traces")
	case u.Path == "":
		u.Path = "/"
	}
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	return u.Redacted(), nil
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
