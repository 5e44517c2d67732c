package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"testing"
	"time"

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
	bin := chromium(t)
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

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.Headless)...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	defer cancelTimeout()
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
