package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/reportd/reportd"
	"github.com/reportd/reportd/internal/httpapi"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/testkit"
	"github.com/reportd/reportd/internal/testkit/reportdproc"
)

// get sends a GET with optional credentials and reads the answer whole.
func get(t *testing.T, url string, auth func(*http.Request)) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != nil {
		auth(req)
	}
	res, err := noRedirects.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: b.Bytes()}
}

func bearer(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

func basic(pass string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth("anyone", pass) }
}

func TestOperatorPages(t *testing.T) {
	t.Parallel()
	const token = "op-token-for-tests"
	in := start(t, nil, reportdproc.Vars(map[string]string{"REPORTD_ADMIN_TOKEN": token}))
	loc := submit(t, in.base, "2026-01")
	awaitDone(t, in.base, loc)

	guarded := []string{"/monitoring/", "/monitoring/api/queues", "/metrics"}
	for _, path := range guarded {
		for name, auth := range map[string]func(*http.Request){
			"none": nil, "wrong-bearer": bearer("nope"), "wrong-basic": basic("nope"), "empty-bearer": bearer(""),
		} {
			res := get(t, in.base+path, auth)
			if res.status != http.StatusUnauthorized {
				t.Errorf("GET %s with %s credentials = %d, want 401", path, name, res.status)
			}
			if !strings.Contains(strings.Join(res.header.Values("WWW-Authenticate"), ","), "Basic") {
				t.Errorf("GET %s 401 has no Basic challenge (a browser could not log in): %v", path, res.header)
			}
			checkProblem(t, "GET "+path, res, http.StatusUnauthorized)
		}
	}

	ui := get(t, in.base+"/monitoring/", basic(token))
	if ui.status != http.StatusOK || !bytes.Contains(ui.body, []byte("<div id=\"root\">")) {
		t.Errorf("GET /monitoring/ with basic auth = %d, want the asynqmon page:\n%.300s", ui.status, ui.body)
	}
	var queues struct {
		Queues []struct {
			Queue     string `json:"queue"`
			Completed int    `json:"completed"`
		} `json:"queues"`
	}
	api := get(t, in.base+"/monitoring/api/queues", bearer(token))
	if err := json.Unmarshal(api.body, &queues); err != nil || api.status != http.StatusOK {
		t.Fatalf("GET /monitoring/api/queues = %d %v:\n%s", api.status, err, api.body)
	}
	found := false
	for _, q := range queues.Queues {
		if q.Queue == "reports" && q.Completed >= 1 {
			found = true
		}
	}
	if !found {
		t.Errorf("asynqmon does not show the reports queue with the completed job: %s", api.body)
	}

	m := get(t, in.base+"/metrics", bearer(token))
	if m.status != http.StatusOK {
		t.Fatalf("GET /metrics = %d", m.status)
	}
	for _, series := range []string{
		`reportd_http_requests_total{method="POST",route="/v1/reports",status="202"} 1`,
		`reportd_http_request_duration_seconds_bucket{method="GET",route="/v1/reports/{id}",status="303"`,
		`reportd_jobs_accepted_total 1`,
		`reportd_jobs_finished_total{status="done"} 1`,
		`reportd_job_duration_seconds_count{status="done"} 1`,
		`asynq_tasks_processed_total{queue="reports"}`,
		`asynq_queue_size{queue="reports"}`,
	} {
		if !bytes.Contains(m.body, []byte(series)) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
	if bytes.Contains(m.body, []byte(strings.TrimPrefix(loc, "/v1/reports/"))) {
		t.Errorf("/metrics labels a series with a job id (one series per job):\n%s", m.body)
	}

	spec := get(t, in.base+"/openapi.yaml", nil)
	if spec.status != http.StatusOK || !bytes.Equal(spec.body, reportd.OpenAPI) {
		t.Errorf("GET /openapi.yaml = %d, %d bytes; want the committed openapi.yaml (%d bytes)", spec.status, len(spec.body), len(reportd.OpenAPI))
	}
	if res := get(t, in.base+"/", nil); res.status != http.StatusFound || res.header.Get("Location") != "/docs" {
		t.Errorf("GET / = %d Location %q, want 302 to /docs", res.status, res.header.Get("Location"))
	}
	// /docs is Swagger UI rendering /openapi.yaml (TestBrowserDocsTryItOut reads the rendered page): the
	// page loads its assets from this service only, under its CSP, and what it renders is the spec.
	docs := get(t, in.base+"/docs", nil)
	if docs.status != http.StatusOK || !strings.HasPrefix(docs.header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /docs = %d %s", docs.status, docs.header.Get("Content-Type"))
	}
	if csp := docs.header.Get("Content-Security-Policy"); csp != httpapi.DocsCSP {
		t.Errorf("GET /docs: Content-Security-Policy %q, want %q", csp, httpapi.DocsCSP)
	}
	if bytes.Contains(docs.body, []byte("http://")) || bytes.Contains(docs.body, []byte("https://")) {
		t.Errorf("/docs loads something from elsewhere:\n%s", docs.body)
	}
	for _, asset := range []string{"/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/docs/reportd.js"} {
		if !bytes.Contains(docs.body, []byte(`"`+asset+`"`)) {
			t.Errorf("/docs does not load %s", asset)
		}
		if res := get(t, in.base+asset, nil); res.status != http.StatusOK || len(res.body) == 0 {
			t.Errorf("GET %s = %d, %d bytes", asset, res.status, len(res.body))
		}
	}
	if js := get(t, in.base+"/docs/reportd.js", nil); !bytes.Contains(js.body, []byte(`url: "/openapi.yaml"`)) {
		t.Errorf("/docs/reportd.js does not point Swagger UI at /openapi.yaml:\n%s", js.body)
	}
	for _, want := range []string{"createReport", "/v1/reports/{id}/result", "Retry-After", "JobStatus", "WebhookEvent",
		"GET /healthz", "GET /readyz", "GET /metrics", "GET /monitoring/", "/problems/{slug}", "GET /openapi.yaml", "REPORTD_OPS_ADDR"} {
		if !bytes.Contains(spec.body, []byte(want)) {
			t.Errorf("the spec /docs renders does not mention %s", want)
		}
	}

	res := get(t, in.base+"/healthz", func(r *http.Request) { r.Header.Set("X-Request-Id", "trace-42") })
	if res.status != http.StatusOK || res.header.Get("X-Request-Id") != "trace-42" {
		t.Errorf("GET /healthz = %d, X-Request-Id %q; want 200 echoing trace-42", res.status, res.header.Get("X-Request-Id"))
	}
	if _, ok := in.log.Find(func(l testkit.LogLine) bool {
		return l.Fields["msg"] == "job accepted" && l.Fields["request_id"] != nil && l.Fields["job"] != nil
	}); !ok {
		t.Errorf("the job accepted log line has no request_id or job:\n%s", in.log)
	}
}

func TestAdminTokenGeneratedWhenUnset(t *testing.T) {
	t.Parallel()
	in := start(t, nil, reportdproc.Vars(nil))
	l, ok := in.log.Find(func(l testkit.LogLine) bool { return l.Fields["admin_token"] != nil })
	if !ok {
		t.Fatalf("no generated admin token logged:\n%s", in.log)
	}
	tok, _ := l.Fields["admin_token"].(string)
	if len(tok) < 20 {
		t.Fatalf("generated admin token %q is too short", tok)
	}
	if res := get(t, in.base+"/metrics", nil); res.status != http.StatusUnauthorized {
		t.Errorf("GET /metrics without the generated token = %d, want 401", res.status)
	}
	if res := get(t, in.base+"/metrics", bearer(tok)); res.status != http.StatusOK {
		t.Errorf("GET /metrics with the generated token = %d, want 200", res.status)
	}
	if n := strings.Count(in.log.String(), tok); n != 1 {
		t.Errorf("the generated token appears %d times in the log, want exactly once", n)
	}
}

func TestReadyzNeedsAWorker(t *testing.T) {
	t.Parallel()
	srv := redistest.StartServer(t)
	vars := reportdproc.Vars(map[string]string{"REDIS_URL": srv.URL})
	api := start(t, []string{"api"}, vars)
	if res := get(t, api.base+"/readyz", nil); res.status != http.StatusServiceUnavailable || !bytes.Contains(res.body, []byte("no worker")) {
		t.Errorf("GET /readyz of an API with no worker anywhere = %d %s, want 503 naming the missing worker", res.status, res.body)
	}
	start(t, []string{"worker"}, vars)
	// asynq registers a server on its first heartbeat.
	testkit.Eventually(t, 10*time.Second, 100*time.Millisecond, func() error {
		if res := get(t, api.base+"/readyz", nil); res.status != http.StatusOK {
			return fmt.Errorf("GET /readyz with a worker running = %d %s, want 200", res.status, res.body)
		}
		return nil
	})
	if res := get(t, api.base+"/healthz", nil); res.status != http.StatusOK {
		t.Errorf("GET /healthz = %d, want 200", res.status)
	}
}

// TestWorkerOpsAddr runs a worker alone with REPORTD_OPS_ADDR: it serves health, readiness and its own
// job metrics there (metrics behind the admin token), and nothing of the API.
func TestWorkerOpsAddr(t *testing.T) {
	t.Parallel()
	const token = "op-token-for-tests"
	srv := redistest.StartServer(t)
	vars := reportdproc.Vars(map[string]string{"REDIS_URL": srv.URL, "REPORTD_ADMIN_TOKEN": token})
	workerVars := reportdproc.Vars(map[string]string{"REDIS_URL": srv.URL, "REPORTD_ADMIN_TOKEN": token, "REPORTD_OPS_ADDR": "127.0.0.1:0"})
	worker := start(t, []string{"worker"}, workerVars)
	l, ok := worker.log.WaitFor(0, nil, testkit.MsgIs("ops listening"))
	if !ok {
		t.Fatalf("the worker did not log where its ops address listens; log:\n%s", worker.log)
	}
	ops := "http://" + l.Fields["addr"].(string)
	if _, ok := worker.log.WaitFor(0, nil, testkit.MsgIs("listening")); ok {
		t.Error("the worker alone serves the API")
	}

	if res := get(t, ops+"/healthz", nil); res.status != http.StatusOK {
		t.Errorf("GET /healthz = %s, want 200", res)
	}
	if res := get(t, ops+"/readyz", nil); res.status != http.StatusOK {
		t.Errorf("GET /readyz of a worker with Redis up = %s, want 200", res)
	}
	for _, path := range []string{"/v1/reports", "/monitoring/", "/docs"} {
		if res := get(t, ops+path, bearer(token)); res.status != http.StatusNotFound {
			t.Errorf("GET %s on the ops address = %s, want 404", path, res)
		}
	}
	if res := get(t, ops+"/metrics", nil); res.status != http.StatusUnauthorized {
		t.Errorf("GET /metrics without the admin token = %s, want 401", res)
	}

	// A job done by this worker is counted in its metrics.
	api := start(t, []string{"api"}, vars)
	awaitDone(t, api.base, submit(t, api.base, "2026-01"))
	want := []byte(`reportd_jobs_finished_total{status="done"} 1`)
	testkit.Eventually(t, 10*time.Second, 50*time.Millisecond, func() error {
		res := get(t, ops+"/metrics", bearer(token))
		if res.status != http.StatusOK {
			t.Fatalf("GET /metrics with the admin token = %s, want 200", res)
		}
		if !bytes.Contains(res.body, want) {
			return fmt.Errorf("the worker's metrics lack %s since the job was done:\n%s", want, res.body)
		}
		return nil
	})
}
