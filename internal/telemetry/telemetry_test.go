package telemetry

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TestSetup: tracing is on only with an OTLP endpoint, and off again when the standard variables say so.
func TestSetup(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		env  map[string]string
		on   bool
	}{
		{"nothing set", nil, false},
		{"endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true},
		{"traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true},
		{"sdk disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}, false},
		{"exporter none", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tp, on, shutdown, err := Setup(context.Background(), func(k string) string { return tt.env[k] })
			if err != nil || on != tt.on {
				t.Fatalf("Setup: on %v, %v; want on %v", on, err, tt.on)
			}
			defer shutdown(context.Background())
			_, s := Tracer(tp).Start(context.Background(), "x")
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

// TestSetupServiceName: the service is reportd unless OTEL_SERVICE_NAME, read by the SDK from the
// process's environment, names it. Not parallel: it sets the process's environment.
func TestSetupServiceName(t *testing.T) {
	for _, tt := range []struct{ env, want string }{{"", "reportd"}, {"reportd-eu", "reportd-eu"}} {
		t.Setenv("OTEL_SERVICE_NAME", tt.env)
		tp, on, shutdown, err := Setup(context.Background(), func(k string) string {
			return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}[k]
		})
		if err != nil || !on {
			t.Fatalf("Setup: on %v, %v", on, err)
		}
		_, s := Tracer(tp).Start(context.Background(), "x")
		got, _ := s.(sdktrace.ReadOnlySpan).Resource().Set().Value("service.name")
		if got.AsString() != tt.want {
			t.Errorf("OTEL_SERVICE_NAME=%q: service.name %q, want %q", tt.env, got.AsString(), tt.want)
		}
		s.End()
		shutdown(context.Background())
	}
}
