package main

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/testkit"
	"github.com/reportd/reportd/internal/testkit/reportdproc"
	"github.com/reportd/reportd/internal/webhook/webhooktest"
)

// span is a span as an OTLP receiver decoded it.
type span struct {
	Service, Name     string
	Trace, ID, Parent string
	Kind              int32
	Attrs             map[string]string
	// Resource is what the span's resource says of the process that made it.
	Resource map[string]string
	// Start and End are Unix nanoseconds.
	Start, End uint64
}

// otlpReceiver is an OTLP/HTTP trace receiver: it decodes each export (protobuf) and keeps its spans.
type otlpReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	spans []span
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	rc := &otlpReceiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("OTLP export %s %s, Content-Type %q: want POST /v1/traces, protobuf", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				t.Errorf("OTLP export: %v", err)
				return
			}
			body = zr
		}
		b, _ := io.ReadAll(body)
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			t.Errorf("OTLP export: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		defer rc.mu.Unlock()
		for _, rs := range req.ResourceSpans {
			resource := map[string]string{}
			for _, a := range rs.Resource.Attributes {
				resource[a.Key] = a.Value.GetStringValue()
				if resource[a.Key] == "" {
					resource[a.Key] = strings.TrimPrefix(a.Value.String(), "int_value:")
				}
			}
			service := resource["service.name"]
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					attrs := map[string]string{}
					for _, a := range s.Attributes {
						v := a.Value.GetStringValue()
						if v == "" {
							v = strings.TrimPrefix(a.Value.String(), "int_value:")
						}
						attrs[a.Key] = v
					}
					rc.spans = append(rc.spans, span{Service: service, Name: s.Name, Trace: hex.EncodeToString(s.TraceId),
						ID: hex.EncodeToString(s.SpanId), Parent: hex.EncodeToString(s.ParentSpanId), Kind: int32(s.Kind), Attrs: attrs, Resource: resource,
						Start: s.StartTimeUnixNano, End: s.EndTimeUnixNano})
				}
			}
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	t.Cleanup(rc.Close)
	return rc
}

// find waits up to timeout for a span that match accepts.
func (rc *otlpReceiver) find(t *testing.T, timeout time.Duration, what string, match func(span) bool) span {
	t.Helper()
	var found span
	testkit.Eventually(t, timeout, 50*time.Millisecond, func() error {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		for _, s := range rc.spans {
			if match(s) {
				found = s
				return nil
			}
		}
		return fmt.Errorf("no span %s among the %d received: %+v", what, len(rc.spans), rc.spans)
	})
	return found
}

// TestTraceAcrossAPIWorkerAndWebhook: the API and the worker run as separate run calls, each exporting
// to an OTLP/HTTP receiver in the test. A POST that carries a traceparent makes one trace: the POST's
// span (a child of the caller's), the worker's report.queued span (the job's wait, from within the POST
// to the attempt's start) and its attempt span (both children of the POST's), the attempt's summary and
// save spans, and the webhook delivery's span, whose request carries a traceparent of the same trace
// to the receiver. Each run's resource names its role and an instance of its own. Log lines of the job
// carry its trace id, and the start names the endpoint.
//
// Not parallel: the OpenTelemetry SDK reads its OTEL_ variables from the process's environment, not
// through run's getenv, so the test sets them there, and names the service anew before each run starts
// (the SDK reads them once, at start). getenv carries the endpoint too: that is how run decides that
// tracing is on.
func TestTraceAcrossAPIWorkerAndWebhook(t *testing.T) {
	otlp := newOTLPReceiver(t)
	secret := "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	hooks := webhooktest.NewReceiver(t, secret, nil)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.URL)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
	vars := reportdproc.Vars(map[string]string{"REDIS_URL": "redis://" + redistest.StartServer(t).Addr, "REPORTD_WEBHOOK_SECRET": secret,
		"REPORTD_WEBHOOK_ALLOW_INSECURE": "true", "REPORTD_WEBHOOK_ALLOW_PRIVATE": "true",
		"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.URL})
	t.Setenv("OTEL_SERVICE_NAME", "reportd-api")
	api := start(t, []string{"api"}, vars)
	t.Setenv("OTEL_SERVICE_NAME", "reportd-worker")
	worker := start(t, []string{"worker"}, vars)

	const caller, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	res := mustTry(t, http.MethodPost, api.base+"/v1/reports", `{"range":"2026-01","callback_url":"`+hooks.URL+`/hook"}`,
		"traceparent", "00-"+caller+"-"+callerSpan+"-01")
	if res.status != http.StatusAccepted {
		t.Fatalf("POST = %s", res)
	}
	id := statusPath.FindStringSubmatch(res.header.Get("Location"))[1]
	hit := hooks.Wait(t, 1, 20*time.Second)[0]
	if tp := hit.Header.Get("traceparent"); !strings.HasPrefix(tp, "00-"+caller+"-") {
		t.Errorf("the webhook's traceparent = %q, want one of trace %s", tp, caller)
	}
	awaitDone(t, api.base, res.header.Get("Location"))

	inTrace := func(service, name string) func(span) bool {
		return func(s span) bool { return s.Trace == caller && s.Service == service && s.Name == name }
	}
	post := otlp.find(t, 10*time.Second, "POST /v1/reports of the API", inTrace("reportd-api", "POST /v1/reports"))
	if post.Parent != callerSpan || post.Attrs["reportd.job.id"] != id || post.Kind != 2 /* server */ {
		t.Errorf("POST span %+v: want a server span, child of the caller's %s, with the job id %s", post, callerSpan, id)
	}
	attempt := otlp.find(t, 10*time.Second, "report.attempt of the worker", inTrace("reportd-worker", "report.attempt"))
	if attempt.Parent != post.ID || attempt.Attrs["reportd.job.id"] != id || attempt.Attrs["reportd.job.attempt"] != "1" ||
		attempt.Attrs["reportd.job.status"] != "done" || attempt.Attrs["reportd.job.range"] != "2026-01-01..2026-01-31" ||
		attempt.Attrs["reportd.client"] != "anonymous" {
		t.Errorf("attempt span %+v: want a child of the POST's %s, with job id, attempt 1, status done, range and client", attempt, post.ID)
	}
	// The queue wait is a span beside the attempt, from the job's acceptance to the attempt's start.
	if queued := otlp.find(t, 10*time.Second, "report.queued of the worker", inTrace("reportd-worker", "report.queued")); queued.Parent != post.ID ||
		queued.Attrs["reportd.job.id"] != id || queued.Start > post.End || queued.End != attempt.Start {
		t.Errorf("report.queued span %+v: want a child of the POST's %s, from within the POST (ends %d) to the attempt's start %d", queued, post.ID, post.End, attempt.Start)
	}
	// The two run calls (two processes in production; here, two in the test's) read apart: their role, and
	// an instance id each; both say the host, the process and the version.
	if post.Resource["reportd.role"] != "api" || attempt.Resource["reportd.role"] != "worker" {
		t.Errorf("roles: the API's spans say %q, the worker's %q; want api and worker", post.Resource["reportd.role"], attempt.Resource["reportd.role"])
	}
	if a, w := post.Resource["service.instance.id"], attempt.Resource["service.instance.id"]; a == "" || a == w {
		t.Errorf("service.instance.id: the API's %q, the worker's %q; want two, distinct", a, w)
	}
	for _, s := range []span{post, attempt} {
		for _, k := range []string{"service.version", "host.name", "process.pid", "process.executable.name", "process.runtime.version"} {
			if s.Resource[k] == "" {
				t.Errorf("the %s span's resource has no %s: %v", s.Name, k, s.Resource)
			}
		}
		if _, ok := s.Resource["process.command_args"]; ok {
			t.Errorf("the %s span's resource has the command line: %v", s.Name, s.Resource)
		}
	}
	// The start says where the spans go.
	if _, ok := worker.log.WaitFor(0, nil, func(l testkit.LogLine) bool {
		return strings.HasPrefix(l.Str("msg"), "tracing on") && l.Str("endpoint") == otlp.URL+"/v1/traces" && l.Str("role") == "worker"
	}); !ok {
		t.Errorf("the worker's log has no tracing on line naming the endpoint %s/v1/traces:\n%s", otlp.URL, worker.log)
	}
	for _, name := range []string{"report.summarize", "report.save"} {
		if s := otlp.find(t, 10*time.Second, name, inTrace("reportd-worker", name)); s.Parent != attempt.ID {
			t.Errorf("%s span %+v: want a child of the attempt's %s", name, s, attempt.ID)
		}
	}
	deliver := otlp.find(t, 10*time.Second, "webhook.deliver", inTrace("reportd-worker", "webhook.deliver"))
	if deliver.Attrs["reportd.job.id"] != id || deliver.Attrs["http.response.status_code"] != "204" && deliver.Attrs["http.response.status_code"] != "200" {
		t.Errorf("webhook.deliver span %+v: want the job id and the receiver's status", deliver)
	}
	save := otlp.find(t, 0, "report.save", inTrace("reportd-worker", "report.save"))
	if deliver.Parent != save.ID {
		t.Errorf("webhook.deliver's parent is %s, want the save's %s (the job's end scheduled it)", deliver.Parent, save.ID)
	}
	otlp.find(t, 10*time.Second, "HTTP client span of the delivery", func(s span) bool {
		return s.Trace == caller && s.Parent == deliver.ID && s.Kind == 3 /* client */
	})
	t.Logf("trace %s: POST %s <- attempt %s <- save %s <- webhook.deliver %s", caller, post.ID, attempt.ID, save.ID, deliver.ID)
	// A status read is a span with the job id.
	otlp.find(t, 10*time.Second, "GET /v1/reports/{id}", func(s span) bool {
		return s.Service == "reportd-api" && s.Name == "GET /v1/reports/{id}" && s.Attrs["reportd.job.id"] == id
	})
	// Log lines carry the trace.
	if _, ok := worker.log.WaitFor(5*time.Second, nil, func(l testkit.LogLine) bool {
		return l.Fields["msg"] == "report done" && l.Fields["trace_id"] == caller
	}); !ok {
		t.Errorf("the worker's report done line has no trace_id %s; log:\n%s", caller, worker.log)
	}
	if _, ok := api.log.WaitFor(0, nil, func(l testkit.LogLine) bool {
		return l.Fields["msg"] == "job accepted" && l.Fields["trace_id"] == caller && l.Fields["span_id"] == post.ID
	}); !ok {
		t.Errorf("the API's job accepted line has no trace_id %s, span_id %s; log:\n%s", caller, post.ID, api.log)
	}
}
