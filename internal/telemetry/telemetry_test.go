package telemetry

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

var worker = Process{Role: RoleWorker, Version: "v1.2.3"}

// TestSetup: tracing is on only with an OTLP endpoint, and off again when the standard variables say so;
// on, it says where the spans go.
func TestSetup(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		env      map[string]string
		on       bool
		endpoint string
	}{
		{"nothing set", nil, false, ""},
		{"endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true, "http://127.0.0.1:4318/v1/traces"},
		{"endpoint with a path", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector.example/otlp/"}, true, "https://collector.example/otlp/v1/traces"},
		{"traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true, "http://127.0.0.1:4318/v1/traces"},
		{"traces endpoint wins, as is", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:4318/spans"}, true, "http://b:4318/spans"},
		{"traces endpoint without a path", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:4318"}, true, "http://b:4318/"},
		{"credentials masked", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://user:secret@collector.example"}, true, "https://user:xxxxx@collector.example/v1/traces"},
		{"sdk disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}, false, ""},
		{"exporter none", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"}, false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr, err := Setup(context.Background(), func(k string) string { return tt.env[k] }, worker)
			if err != nil || tr.On != tt.on || tr.Endpoint != tt.endpoint {
				t.Fatalf("Setup: on %v, endpoint %q, %v; want on %v, endpoint %q", tr.On, tr.Endpoint, err, tt.on, tt.endpoint)
			}
			defer tr.Shutdown(context.Background())
			_, s := Tracer(tr.Provider).Start(context.Background(), "x")
			if s.IsRecording() != tt.on {
				t.Errorf("a span records: %v, want %v", s.IsRecording(), tt.on)
			}
			s.End()
		})
	}
	// The context crosses a task's headers.
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled}))
	h := map[string]string{}
	Inject(ctx, h)
	if got := trace.SpanContextFromContext(Extract(context.Background(), h)); got.TraceID() != (trace.TraceID{1}) || got.SpanID() != (trace.SpanID{2}) {
		t.Errorf("headers %v carried %v", h, got)
	}
}

// TestSetupBadEndpoint: an endpoint that is no URL stops the start, naming the variable, instead of
// the exporter's quiet fallback to localhost.
func TestSetupBadEndpoint(t *testing.T) {
	t.Parallel()
	_, err := Setup(context.Background(), func(k string) string {
		return map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://[::1"}[k]
	}, worker)
	if err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
		t.Fatalf("Setup = %v, want an error naming OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", err)
	}
}

// attrs is a resource's attributes by key.
func attrs(set attribute.Set) map[string]string {
	out := map[string]string{}
	for _, kv := range set.ToSlice() {
		out[string(kv.Key)] = kv.Value.String()
	}
	return out
}

// TestResource: a process's spans say which service, version, instance, role, host and process made
// them, and not its command line. Not parallel: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES are read
// from the process's environment, so it empties them.
func TestResource(t *testing.T) {
	t.Setenv("OTEL_SERVICE_NAME", "")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "")
	res, err := NewResource(context.Background(), worker)
	if err != nil {
		t.Fatal(err)
	}
	got := attrs(*res.Set())
	host, _ := os.Hostname()
	exe, _ := os.Executable()
	for k, want := range map[string]string{
		"service.name":            "reportd",
		"service.version":         "v1.2.3",
		"reportd.role":            "worker",
		"host.name":               host,
		"process.pid":             attribute.IntValue(os.Getpid()).String(),
		"process.runtime.name":    "go",
		"telemetry.sdk.language":  "go",
		"process.executable.name": filepath.Base(exe),
	} {
		if got[k] != want {
			t.Errorf("%s = %q, want %q (resource %v)", k, got[k], want, got)
		}
	}
	for _, k := range []string{"service.instance.id", "process.runtime.version", "telemetry.sdk.version"} {
		if got[k] == "" {
			t.Errorf("no %s in the resource %v", k, got)
		}
	}
	for _, k := range []string{"process.command_args", "process.command_line", "process.command"} {
		if v, ok := got[k]; ok {
			t.Errorf("the resource has %s = %q: a command line may hold a secret", k, v)
		}
	}
	// Each process is an instance of its own.
	other, err := NewResource(context.Background(), worker)
	if err != nil {
		t.Fatal(err)
	}
	if id := attrs(*other.Set())["service.instance.id"]; id == got["service.instance.id"] {
		t.Errorf("two resources share service.instance.id %q", id)
	}
}

// TestResourceFromEnv: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, read by the SDK from the
// process's environment, override reportd's own attributes. Not parallel: it sets the environment.
func TestResourceFromEnv(t *testing.T) {
	for _, tt := range []struct {
		name, service, attrs string
		want                 map[string]string
	}{
		{"defaults", "", "", map[string]string{"service.name": "reportd", "reportd.role": "worker", "service.version": "v1.2.3"}},
		{"service name", "reportd-eu", "", map[string]string{"service.name": "reportd-eu", "reportd.role": "worker"}},
		{"resource attributes", "", "service.name=billing,service.version=v9,reportd.role=batch,service.instance.id=w-1",
			map[string]string{"service.name": "billing", "service.version": "v9", "reportd.role": "batch", "service.instance.id": "w-1"}},
		{"service name over the attributes' one", "reportd-eu", "service.name=billing", map[string]string{"service.name": "reportd-eu"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("OTEL_SERVICE_NAME", tt.service)
			t.Setenv("OTEL_RESOURCE_ATTRIBUTES", tt.attrs)
			tr, err := Setup(context.Background(), func(k string) string {
				return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}[k]
			}, worker)
			if err != nil || !tr.On {
				t.Fatalf("Setup: on %v, %v", tr.On, err)
			}
			defer tr.Shutdown(context.Background())
			_, s := Tracer(tr.Provider).Start(context.Background(), "x")
			defer s.End()
			all := attrs(*s.(sdktrace.ReadOnlySpan).Resource().Set())
			got := map[string]string{}
			for k := range tt.want {
				got[k] = all[k]
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("span resource (-want +got):\n%s", diff)
			}
		})
	}
}
