package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/testkit/reportdproc"
)

// eventsPage is a browser app's page that follows a job with EventSource, the API every browser has,
// and records what it sees in window.seen until the done event.
const eventsPage = `<!doctype html>
<meta charset="utf-8">
<title>reportd events</title>
<script>
window.seen = [];
const es = new EventSource(new URLSearchParams(location.search).get("events"));
es.addEventListener("status", (e) => {
  const s = JSON.parse(e.data);
  window.seen.push({kind: "status", id: e.lastEventId, status: s.status, progress: s.progress});
});
es.addEventListener("done", (e) => {
  window.seen.push({kind: "done", id: e.lastEventId, result: JSON.parse(e.data).result});
  es.close();
  window.finished = true;
});
es.onerror = () => window.seen.push({kind: "error", state: es.readyState});
</script>`

// browserEvent is one entry of window.seen.
type browserEvent struct {
	Kind, ID, Status, Result string
	Progress                 float64
	State                    int
}

// chromium finds headless Chromium, skipping the test without it (failing it when
// REPORTD_REQUIRE_BROWSER=1, as CI sets, which installs Debian's chromium).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("REPORTD_REQUIRE_BROWSER") == "1" {
		t.Fatal("no chromium on PATH, and REPORTD_REQUIRE_BROWSER=1 (apt-get install chromium)")
	}
	t.Skip("no chromium on PATH (apt-get install chromium); REPORTD_REQUIRE_BROWSER=1 makes this a failure")
	return ""
}

// TestBrowserEventSource: headless Chromium opens an EventSource, from a page of another origin (a
// browser app, allowed by REPORTD_CORS_ORIGINS), on a running job's event stream; it sees the progress
// rise and the done event arrive, with the result's URL.
func TestBrowserEventSource(t *testing.T) {
	t.Parallel()
	chromium(t)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, eventsPage)
	}))
	t.Cleanup(app.Close)
	// A quarter of about 2 s: long enough for several progress events, short enough for a test.
	rows := "20000000"
	if raceDetector {
		rows = "2000000"
	}
	in := start(t, nil, reportdproc.Vars(map[string]string{"REDIS_URL": "redis://" + redistest.StartServer(t).Addr,
		"REPORTD_ROWS_PER_DAY": rows, "REPORTD_PROGRESS_EVERY": "50ms", "REPORTD_CORS_ORIGINS": app.URL}))
	loc := submit(t, in.base, "2026-Q1")

	ctx := browser(t, 60*time.Second)
	page := app.URL + "/?events=" + url.QueryEscape(in.base+loc+"/events")
	if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatalf("open the page: %v", err)
	}
	_, waitErr := chromedp.Run(ctx, chromedp.Poll[bool]("window.finished === true", chromedp.WithPollingTimeout(45*time.Second)))
	seen, err := chromedp.Run(ctx, chromedp.Evaluate[[]browserEvent]("window.seen"))
	if waitErr != nil || err != nil {
		t.Fatalf("the browser did not see the done event: %v, %v; it saw %+v", waitErr, err, seen)
	}
	var progress []float64
	for i, ev := range seen {
		switch ev.Kind {
		case "status":
			if ev.ID == "" {
				t.Errorf("status event %d without an id: %+v", i, ev)
			}
			if n := len(progress); n > 0 && ev.Progress < progress[n-1] {
				t.Errorf("progress went back in the browser: %v after %v", ev.Progress, progress)
			}
			progress = append(progress, ev.Progress)
		case "done":
			if i != len(seen)-1 || ev.Result != loc+"/result" || ev.ID != "done" {
				t.Errorf("done event %+v at %d of %d, want last, with the result %s", ev, i, len(seen), loc+"/result")
			}
		default:
			t.Errorf("the browser met %+v", ev)
		}
	}
	rising := 0
	for _, p := range progress {
		if p > 0 && p < 1 {
			rising++
		}
	}
	if rising < 2 {
		t.Errorf("the browser saw progress %v, want it rising over several events", progress)
	}
	t.Logf("the browser saw progress %v, then done", progress)
}

// cspRecorder runs in the docs page before its own scripts (from the test, so the page's CSP does not
// apply to it) and records every violation of the page's Content-Security-Policy in window.csp.
const cspRecorder = `window.csp = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.csp.push(e.effectiveDirective + " blocked " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber));`

// browser starts headless Chromium for a test; the context ends with the test, at the latest after
// timeout.
func browser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)), chromedp.NoSandbox, chromedp.Headless)...)
	ctx, cancel := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

// TestBrowserDocsTryItOut: headless Chromium opens /docs on a reportd with API keys, and the page is
// Swagger UI rendering the spec; a person's steps work: "Authorize" with the key, then "Try it out" on
// POST /v1/reports with the example body it offers, "Execute", and the answer shown is the 202 of a
// real job of that client. Nothing on the page is blocked by its Content-Security-Policy, and the
// console shows no error.
func TestBrowserDocsTryItOut(t *testing.T) {
	t.Parallel()
	ctx := browser(t, 90*time.Second)
	const key = "docs-browser-key-0123456789"
	in := start(t, nil, reportdproc.Vars(map[string]string{"REPORTD_API_KEYS": "docs-reader:" + key}))

	var (
		mu      sync.Mutex
		console []chromedp.ConsoleMessage
	)
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			mu.Lock()
			console = append(console, m)
			mu.Unlock()
		}
	}()
	if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
		_, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspRecorder})
		return err
	})); err != nil {
		t.Fatalf("add the CSP recorder: %v", err)
	}

	// Waits query the DOM through DevTools; chromedp.Poll would run its predicate with new Function,
	// which the page's CSP refuses (no eval), and count as a violation.
	op := "#operations-reports-createReport"
	if err := chromedp.Do(ctx, chromedp.Navigate(in.base+"/docs"), chromedp.WaitVisible(chromedp.CSS(op))); err != nil {
		t.Fatalf("open /docs and see POST /v1/reports: %v", err)
	}
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body.innerText"))
	if err != nil {
		t.Fatal(err)
	}
	// What the hand-written page used to show is on Swagger UI's page too.
	for _, want := range []string{"createReport", "/v1/reports/{id}/result", "getProblemType", "JobStatus", "WebhookEvent",
		"GET /healthz", "GET /readyz", "GET /metrics", "GET /monitoring/", "GET /openapi.yaml", "REPORTD_OPS_ADDR"} {
		if !strings.Contains(text, want) {
			t.Errorf("the rendered /docs does not show %s", want)
		}
	}

	// The list's parameters show the spec's range and default.
	list := "#operations-reports-listReports"
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(list+" .opblock-summary-control")), chromedp.WaitVisible(chromedp.CSS(list+" .parameters"))); err != nil {
		t.Fatalf("open GET /v1/reports: %v", err)
	}
	params, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(list+" .parameters")))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Default value : 20", "minimum: 1", "maximum: 100", "Available values : pending, running, done, failed, canceled"} {
		if !strings.Contains(params, want) {
			t.Errorf("the parameters of GET /v1/reports do not show %q:\n%s", want, params)
		}
	}

	authorize := chromedp.Steps(
		chromedp.Click(chromedp.CSS(".auth-wrapper .btn.authorize")),
		chromedp.WaitVisible(chromedp.CSS("#auth-bearer-value")),
		chromedp.SendKeys(chromedp.CSS("#auth-bearer-value"), key),
		chromedp.Click(chromedp.CSS(".auth-btn-wrapper .btn.modal-btn.auth.authorize")),
		chromedp.Click(chromedp.CSS(".auth-btn-wrapper .btn-done")),
		chromedp.WaitVisible(chromedp.CSS(".auth-wrapper .btn.authorize.locked")),
	)
	if err := chromedp.Do(ctx, authorize); err != nil {
		t.Fatalf("authorize with the API key: %v", err)
	}
	tryItOut := chromedp.Steps(
		chromedp.Click(chromedp.CSS(op+" .opblock-summary-control")),
		chromedp.Click(chromedp.CSS(op+" .try-out__btn")),
		chromedp.WaitVisible(chromedp.CSS(op+" textarea.body-param__text")),
	)
	if err := chromedp.Do(ctx, tryItOut); err != nil {
		t.Fatalf("try out POST /v1/reports: %v", err)
	}
	body, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(op+" textarea.body-param__text")))
	if err != nil || !strings.Contains(body, `"range": "2026-Q1"`) {
		t.Errorf("the request body offered = %q (%v), want the spec's first example", body, err)
	}
	status := op + " .live-responses-table tr.response .response-col_status"
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(op+" .btn.execute")), chromedp.WaitVisible(chromedp.CSS(status))); err != nil {
		t.Fatalf("execute POST /v1/reports: %v", err)
	}
	code, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(status)))
	if err != nil {
		t.Fatal(err)
	}
	answer, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(op+" .live-responses-table tr.response .response-col_description")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(code) != "202" {
		t.Fatalf("Try it out answered %q, want 202:\n%s", code, answer)
	}
	// The job is real, and the key's: its status answers with the key and refuses without one.
	id := regexp.MustCompile(`"id": "([0-9a-f-]{36})"`).FindStringSubmatch(answer)
	if id == nil {
		t.Fatalf("the 202 shown names no job id:\n%s", answer)
	}
	if res := get(t, in.base+"/v1/reports/"+id[1], bearer(key)); res.status != http.StatusOK && res.status != http.StatusSeeOther {
		t.Errorf("GET the job created in the browser, with its key = %s, want 200 or 303", res)
	}
	if res := get(t, in.base+"/v1/reports/"+id[1], nil); res.status != http.StatusUnauthorized {
		t.Errorf("GET the job without a key = %s, want 401", res)
	}

	violations, err := chromedp.Run(ctx, chromedp.Evaluate[[]string]("window.csp"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range violations {
		t.Errorf("the page's CSP blocked: %s", v)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, m := range console {
		if m.Type == chromedp.ConsoleError || m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
			t.Errorf("the console shows %s (%s:%d)", m, m.URL, m.Line)
		} else {
			t.Logf("console: %s", m)
		}
	}
}
