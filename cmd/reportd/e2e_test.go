package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/testkit"
	"github.com/reportd/reportd/internal/testkit/reportdproc"
)

// instance is one run of reportd in this process.
type instance struct {
	base   string // http://host:port, for an instance that serves the API
	log    *testkit.LogSink
	cancel context.CancelFunc
	done   chan struct{}
	err    error // what run returned, once done is closed
}

// logTo is reportd's logger as main makes it, writing to w, with the count of held-back failures
// written until the test ends.
func logTo(tb testing.TB, w io.Writer) *slog.Logger {
	log, repeats := newLogger(w)
	tb.Cleanup(repeats.Start())
	return log
}

// start runs reportd's run in this process with args and vars (reportdproc.Vars, as a process of
// reportdproc would get), waits until it is ready (reportdproc.ReadyMsg), and stops it when the test
// ends.
func start(t *testing.T, args []string, vars map[string]string) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{log: testkit.NewLogSink(), cancel: cancel, done: make(chan struct{})}
	log := logTo(t, in.log)
	go func() {
		defer close(in.done)
		in.err = run(ctx, args, env(vars), log)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-in.done:
			if in.err != nil {
				t.Errorf("run returned %v after its context was canceled", in.err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("run did not return 30s after its context was canceled")
		}
	})
	ready := reportdproc.ReadyMsg(args)
	l, ok := in.log.WaitFor(10*time.Second, in.done, testkit.MsgIs(ready))
	if !ok {
		select {
		case <-in.done:
			t.Fatalf("reportd %v returned %v before it logged %q; log:\n%s", args, in.err, ready, in.log)
		default:
			t.Fatalf("reportd %v did not log %q in 10s; log:\n%s", args, ready, in.log)
		}
	}
	if ready == "listening" {
		addr, _ := l.Fields["addr"].(string)
		if addr == "" || strings.HasSuffix(addr, ":0") {
			t.Fatalf("listening line has no bound addr: %v", l)
		}
		in.base = "http://" + addr
	}
	return in
}

// noRedirects is a client that shows a 303 instead of following it.
var noRedirects = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// response is an HTTP answer read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

// try sends a request with headers given as name, value pairs and reads the answer whole. Unlike do,
// it returns a transport error instead of failing the test, for tests that record what a client meets.
func try(method, url, body string, headers ...string) (response, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return response{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := noRedirects.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: res.StatusCode, header: res.Header, body: b}, nil
}

// mustTry is try that fails t on a transport error.
func mustTry(t *testing.T, method, url, body string, headers ...string) response {
	t.Helper()
	res, err := try(method, url, body, headers...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return res
}

// do sends a request with an Accept header (none for "") and a JSON body if body is not empty, and reads
// the answer whole.
func do(t *testing.T, method, url, accept, body string) response {
	t.Helper()
	var header []string
	if accept != "" {
		header = []string{"Accept", accept}
	}
	return mustTry(t, method, url, body, header...)
}

func (r response) String() string {
	return fmt.Sprintf("%d %v %s", r.status, r.header, r.body)
}

var statusPath = regexp.MustCompile(`^/v1/reports/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$`)

// submit POSTs a report job over rng and returns its status path.
func submit(t *testing.T, base, rng string) string {
	t.Helper()
	res := do(t, http.MethodPost, base+"/v1/reports", "", `{"range":"`+rng+`"}`)
	if res.status != http.StatusAccepted {
		t.Fatalf("POST /v1/reports = %s, want 202", res)
	}
	loc := res.header.Get("Location")
	m := statusPath.FindStringSubmatch(loc)
	if m == nil {
		t.Fatalf("202 Location = %q, want /v1/reports/{uuid}", loc)
	}
	if ra := res.header.Get("Retry-After"); ra != "1" {
		t.Errorf("202 Retry-After = %q, want 1", ra)
	}
	var st gen.JobStatus
	if err := json.Unmarshal(res.body, &st); err != nil {
		t.Fatalf("202 body: %v\n%s", err, res.body)
	}
	if st.Id.String() != m[1] || st.Status != gen.Pending || st.Links.Self != loc {
		t.Errorf("202 body = %+v, want pending job %s linking to itself", st, m[1])
	}
	return loc
}

// submitDone submits a job over rng to in and waits up to 10 s for in to log it done; it returns the
// job's status location, its id and when the log line was seen.
func (in *instance) submitDone(t *testing.T, rng string) (loc, id string, finished time.Time) {
	t.Helper()
	loc = submit(t, in.base, rng)
	id = strings.TrimPrefix(loc, "/v1/reports/")
	if _, ok := in.log.WaitFor(10*time.Second, in.done, testkit.JobMsg("report done", id)); !ok {
		t.Fatalf("job %s not done in 10s; log:\n%s", id, in.log)
	}
	return loc, id, time.Now()
}

// awaitDone polls a job's status, waiting Retry-After between polls, until it answers 303; it returns
// the 303's Location.
func awaitDone(t *testing.T, base, loc string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		res := do(t, http.MethodGet, base+loc, "", "")
		if cc := res.header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("GET %s: Cache-Control = %q, want no-store", loc, cc)
		}
		switch res.status {
		case http.StatusSeeOther:
			return res.header.Get("Location")
		case http.StatusOK:
			var st gen.JobStatus
			if err := json.Unmarshal(res.body, &st); err != nil {
				t.Fatalf("GET %s: %v\n%s", loc, err, res.body)
			}
			if st.Status != gen.Pending && st.Status != gen.Running {
				t.Fatalf("GET %s = %s, want the job pending or running", loc, res)
			}
			secs, err := strconv.Atoi(res.header.Get("Retry-After"))
			if err != nil || secs < 1 || secs > 30 {
				t.Fatalf("GET %s: Retry-After = %q, want 1..30", loc, res.header.Get("Retry-After"))
			}
			if time.Now().Add(time.Duration(secs) * time.Second).After(deadline) {
				t.Fatalf("job %s not done in 20s; last status %s", loc, res)
			}
			time.Sleep(time.Duration(secs) * time.Second)
		default:
			t.Fatalf("GET %s = %s, want 200 or 303", loc, res)
		}
	}
}

// awaitExpired polls loc, the status of a job done at finished with a retention of 1s, until it
// answers 410, failing t unless it does within limit of finished. The handler logs before asynq marks
// the task completed, so the job may read as running for a moment; then it answers 303 until its
// retention runs out, and 410 after that. on303, when set, is called on every 303.
func awaitExpired(t *testing.T, base, loc string, finished time.Time, limit time.Duration, on303 func()) {
	t.Helper()
	testkit.Eventually(t, time.Until(finished.Add(limit)).Round(time.Millisecond), 50*time.Millisecond, func() error {
		res := mustTry(t, http.MethodGet, base+loc, "")
		if res.status == http.StatusGone {
			checkProblem(t, "GET expired status", res, http.StatusGone)
			return nil
		}
		if res.status == http.StatusSeeOther && on303 != nil {
			on303()
		}
		if res.status != http.StatusSeeOther && !(res.status == http.StatusOK && bytes.Contains(res.body, []byte(`"status":"running"`))) {
			t.Fatalf("GET %s of a done job = %s, want running, 303 or 410", loc, res)
		}
		return fmt.Errorf("GET %s still answers %d %s after the job finished, with a retention of 1s", loc, res.status, time.Since(finished))
	})
}

// awaitDeleted waits until asynq's janitor has deleted the task of the job at loc, failing t unless it
// does within limit of finished, and checks that the job's status and result still say 410 (from
// its tombstone).
func awaitDeleted(t *testing.T, inspector *asynq.Inspector, base, loc string, finished time.Time, limit time.Duration) {
	t.Helper()
	id := strings.TrimPrefix(loc, "/v1/reports/")
	testkit.Eventually(t, time.Until(finished.Add(limit)).Round(time.Millisecond), 50*time.Millisecond, func() error {
		if _, err := inspector.GetTaskInfo(store.QueueOf(id), id); !errors.Is(err, asynq.ErrTaskNotFound) {
			return fmt.Errorf("the janitor has not deleted task %s %s after it finished: %v", id, time.Since(finished), err)
		}
		return nil
	})
	checkProblem(t, "GET deleted status", mustTry(t, http.MethodGet, base+loc, ""), http.StatusGone)
	checkProblem(t, "GET deleted result", mustTry(t, http.MethodGet, base+loc+"/result", ""), http.StatusGone)
}

// checkProblem fails t unless res is a problem+json of status want.
func checkProblem(t *testing.T, what string, res response, want int) {
	t.Helper()
	if res.status != want {
		t.Fatalf("%s = %s, want %d", what, res, want)
	}
	if ct := res.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s: Content-Type = %q, want application/problem+json", what, ct)
	}
	var p gen.Problem
	if err := json.Unmarshal(res.body, &p); err != nil || p.Status != want || p.Type == "" || p.Title == "" || p.Detail == "" {
		t.Errorf("%s: problem = %+v (%v), want a complete problem of status %d", what, p, err, want)
	}
}

// checkReport fails t unless the job at loc answered 303 to its result and the result is Q1 2026's
// report, as JSON and as CSV.
func checkReport(t *testing.T, base, loc, resultLoc string) {
	t.Helper()
	if resultLoc != loc+"/result" {
		t.Errorf("303 Location = %q, want %q", resultLoc, loc+"/result")
	}
	res := do(t, http.MethodGet, base+resultLoc, "", "")
	if res.status != http.StatusOK || res.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s = %s, want 200 application/json", resultLoc, res)
	}
	var rep gen.Report
	if err := json.Unmarshal(res.body, &rep); err != nil {
		t.Fatalf("GET %s: %v", resultLoc, err)
	}
	if "/v1/reports/"+rep.Id.String() != loc {
		t.Errorf("report id = %s, want the job's (%s)", rep.Id, loc)
	}
	if got := rep.Range.From.String() + ".." + rep.Range.To.String(); got != "2026-01-01..2026-03-31" {
		t.Errorf("report range = %s, want 2026-01-01..2026-03-31", got)
	}
	var orders, revenue int64
	for _, d := range rep.ByDay {
		orders += d.Orders
		revenue += d.RevenueCents
	}
	if len(rep.ByDay) != 90 || rep.Orders == 0 || orders != rep.Orders || revenue != rep.RevenueCents {
		t.Errorf("report has %d days, %d orders (by day %d), revenue %d (by day %d); want 90 days summing to the totals",
			len(rep.ByDay), rep.Orders, orders, rep.RevenueCents, revenue)
	}
	csv := do(t, http.MethodGet, base+resultLoc, "text/csv", "")
	if csv.status != http.StatusOK || !strings.HasPrefix(csv.header.Get("Content-Type"), "text/csv") {
		t.Fatalf("GET %s as CSV = %s, want 200 text/csv", resultLoc, csv)
	}
	if lines := strings.Split(strings.TrimSuffix(string(csv.body), "\n"), "\n"); len(lines) != 91 || lines[0] != "date,orders,units,revenue_cents" {
		t.Errorf("CSV has %d lines starting %q, want a header and 90 days", len(lines), lines[0])
	}
	if cd := csv.header.Get("Content-Disposition"); !strings.Contains(cd, "report-2026-01-01_2026-03-31.csv") {
		t.Errorf("CSV Content-Disposition = %q", cd)
	}
}

// backend is a Redis for reportd: REDIS_URL (empty for the embedded one).
type backend struct {
	name     string
	redisURL func(t *testing.T) string
}

var backends = []backend{
	{name: "embedded", redisURL: func(*testing.T) string { return "" }},
	{name: "redis-server", redisURL: func(t *testing.T) string { return redistest.StartServer(t).URL }},
}

// redisAddr is where an instance's Redis is: REDIS_URL's, or the embedded one's, from its warning.
func redisAddr(t *testing.T, in *instance, redisURL string) string {
	t.Helper()
	if redisURL != "" {
		return strings.TrimPrefix(redisURL, "redis://")
	}
	l, ok := in.log.WaitFor(0, nil, func(l testkit.LogLine) bool {
		msg, _ := l.Fields["msg"].(string)
		return strings.Contains(msg, "embedded in-memory Redis") && l.Fields["addr"] != nil
	})
	if !ok {
		t.Fatalf("no warning names the embedded Redis; log:\n%s", in.log)
	}
	return l.Fields["addr"].(string)
}

func TestE2E(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			t.Run("flow", func(t *testing.T) {
				t.Parallel()
				url := b.redisURL(t)
				in := start(t, nil, reportdproc.Vars(map[string]string{"REDIS_URL": url}))
				warned := func(l testkit.LogLine) bool {
					msg, _ := l.Fields["msg"].(string)
					return l.Fields["level"] == "WARN" && strings.Contains(msg, "NOTHING IS DURABLE")
				}
				if _, ok := in.log.WaitFor(0, nil, warned); ok != (url == "") {
					t.Errorf("warned that nothing is durable: %v, want %v; log:\n%s", ok, url == "", in.log)
				}

				loc := submit(t, in.base, "2026-Q1")
				checkReport(t, in.base, loc, awaitDone(t, in.base, loc))

				unknown := "/v1/reports/" + uuid.NewString()
				checkProblem(t, "GET unknown status", do(t, http.MethodGet, in.base+unknown, "", ""), http.StatusNotFound)
				checkProblem(t, "GET unknown result", do(t, http.MethodGet, in.base+unknown+"/result", "", ""), http.StatusNotFound)
			})
			t.Run("expiry", func(t *testing.T) {
				t.Parallel()
				url := b.redisURL(t)
				in := start(t, nil, reportdproc.Vars(map[string]string{
					"REDIS_URL": url, "REPORTD_RETENTION": "1s", "REPORTD_JANITOR_INTERVAL": "200ms",
				}))
				loc, _, finished := in.submitDone(t, "2026-Q1")
				awaitExpired(t, in.base, loc, finished, 3*time.Second, nil)
				rdb := redis.NewClient(&redis.Options{Addr: redisAddr(t, in, url)})
				defer rdb.Close()
				awaitDeleted(t, asynq.NewInspectorFromRedisClient(rdb), in.base, loc, finished, 5*time.Second)
			})
		})
	}
}

// TestE2ESplit runs the API and a worker as two runs on one Redis: the job is accepted by one and
// computed by the other.
func TestE2ESplit(t *testing.T) {
	t.Parallel()
	url := redistest.StartServer(t).URL
	worker := start(t, []string{"worker"}, reportdproc.Vars(map[string]string{"REDIS_URL": url}))
	api := start(t, []string{"api"}, reportdproc.Vars(map[string]string{"REDIS_URL": url}))
	if _, ok := worker.log.WaitFor(0, nil, testkit.MsgIs("listening")); ok {
		t.Error("the worker alone serves HTTP")
	}

	loc := submit(t, api.base, "2026-Q1")
	checkReport(t, api.base, loc, awaitDone(t, api.base, loc))
	id := strings.TrimPrefix(loc, "/v1/reports/")
	done := testkit.JobMsg("report done", id)
	if _, ok := worker.log.WaitFor(0, nil, done); !ok {
		t.Errorf("the worker did not log that it did job %s; log:\n%s", id, worker.log)
	}
	if _, ok := api.log.WaitFor(0, nil, done); ok {
		t.Errorf("the API alone ran job %s", id)
	}
}

func TestRunRefusesBadSetup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		vars map[string]string
		want string // what the error must name
	}{
		{name: "bad-retention", vars: map[string]string{"REPORTD_RETENTION": "abc"}, want: "REPORTD_RETENTION"},
		{name: "zero-concurrency", vars: map[string]string{"REPORTD_CONCURRENCY": "0"}, want: "REPORTD_CONCURRENCY"},
		{name: "fractional-retention", vars: map[string]string{"REPORTD_RETENTION": "1500ms"}, want: "REPORTD_RETENTION"},
		{name: "bad-redis-url", vars: map[string]string{"REDIS_URL": "http://localhost:6379"}, want: "REDIS_URL"},
		{name: "bad-mode", args: []string{"both"}, want: "usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := run(ctx, tt.args, env(tt.vars), logTo(t, io.Discard))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run = %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

// TestRunDoesNotLogRedisPassword: the configuration is logged at start, and a REDIS_URL that cannot be
// used is an error; neither may carry the password.
func TestRunDoesNotLogRedisPassword(t *testing.T) {
	t.Parallel()
	const password = "50%off"
	sink := testkit.NewLogSink()
	err := run(context.Background(), nil, env(map[string]string{"REDIS_URL": "redis://:" + password + "@127.0.0.1:1"}), logTo(t, sink))
	if err == nil {
		t.Fatal("run with an unparseable REDIS_URL succeeded")
	}
	if strings.Contains(sink.String(), password) {
		t.Errorf("the log has the Redis password:\n%s", sink)
	}
	if strings.Contains(err.Error(), password) {
		t.Errorf("run's error has the Redis password: %v", err)
	}
}

// childEnv makes the test binary, run again by TestRunListenFailureStopsWorker, play the child.
const childEnv = "REPORTD_TEST_LISTEN_FAILURE_CHILD"

// TestRunListenFailureStopsWorker: when the API cannot listen, run must return its error having stopped
// the worker it already started; a worker left running on the Redis client that run closes keeps
// logging, and crashes the process it shares. The run happens in a child process, so that a crash
// fails this test instead of the whole package.
func TestRunListenFailureStopsWorker(t *testing.T) {
	if os.Getenv(childEnv) == "1" {
		listenFailureChild()
		return
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestRunListenFailureStopsWorker$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("after run failed to listen, its leftovers broke the process (%v):\n%s", err, out)
	}
}

// listenFailureChild runs reportd on an address in use, and exits non-zero if anything logs after run
// has returned.
func listenFailureChild() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	defer ln.Close()
	sink := testkit.NewLogSink()
	log, repeats := newLogger(sink)
	defer repeats.Start()()
	err = run(context.Background(), nil, env(reportdproc.Vars(map[string]string{"REPORTD_ADDR": ln.Addr().String()})), log)
	if err == nil || !strings.Contains(err.Error(), "listen") {
		fmt.Printf("run on an address in use = %v, want a listen error\n", err)
		os.Exit(1)
	}
	returned := sink.String()
	// Bound first: nothing started before the address was found taken.
	for _, started := range []string{"report worker running", "embedded in-memory Redis", "admin_token"} {
		if strings.Contains(returned, started) {
			fmt.Printf("run on an address in use logged %q before it failed:\n%s\n", started, returned)
			os.Exit(1)
		}
	}
	time.Sleep(time.Second)
	if after := strings.TrimPrefix(sink.String(), returned); after != "" {
		fmt.Printf("run returned %q, but logged afterwards:\n%s\n", err, after)
		os.Exit(1)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	t.Parallel()
	const timeout = 2 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sink := testkit.NewLogSink()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, nil, env(reportdproc.Vars(map[string]string{"REPORTD_SHUTDOWN_TIMEOUT": timeout.String()})), logTo(t, sink))
	}()
	if _, ok := sink.WaitFor(10*time.Second, nil, testkit.MsgIs("listening")); !ok {
		t.Fatalf("reportd did not start; log:\n%s", sink)
	}
	cancel()
	canceled := time.Now()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run after cancel = %v, want nil", err)
		}
		if took := time.Since(canceled); took > timeout {
			t.Errorf("run took %s to return after cancel, more than its shutdown timeout of %s", took, timeout)
		}
	case <-time.After(timeout + 3*time.Second):
		t.Fatalf("run did not return %s after cancel; log:\n%s", timeout+3*time.Second, sink)
	}
	if _, ok := sink.WaitFor(0, nil, testkit.MsgIs("stopped")); !ok {
		t.Errorf("no stopped line; log:\n%s", sink)
	}
}

// TestCORSE2E: with REPORTD_CORS_ORIGINS a browser app on that origin gets its preflight answered and
// may read the 202's Location; without it, OPTIONS stays a 405.
func TestCORSE2E(t *testing.T) {
	t.Parallel()
	const app = "http://localhost:5173"
	for _, tc := range []struct {
		name      string
		origins   string
		wantAllow string
		wantPre   int
	}{{"configured", app, app, http.StatusNoContent}, {"off", "", "", http.StatusMethodNotAllowed}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := start(t, nil, reportdproc.Vars(map[string]string{"REPORTD_CORS_ORIGINS": tc.origins}))
			pre := mustTry(t, http.MethodOptions, in.base+"/v1/reports", "", "Origin", app, "Access-Control-Request-Method", "POST",
				"Access-Control-Request-Headers", "content-type, idempotency-key")
			if pre.status != tc.wantPre || pre.header.Get("Access-Control-Allow-Origin") != tc.wantAllow {
				t.Errorf("preflight: %d, Allow-Origin %q; want %d, %q", pre.status, pre.header.Get("Access-Control-Allow-Origin"), tc.wantPre, tc.wantAllow)
			}
			post := mustTry(t, http.MethodPost, in.base+"/v1/reports", `{"range":"2026-01"}`, "Content-Type", "application/json", "Origin", app)
			exposed := strings.Contains(post.header.Get("Access-Control-Expose-Headers"), "Location")
			if post.status != http.StatusAccepted || post.header.Get("Access-Control-Allow-Origin") != tc.wantAllow || exposed != (tc.wantAllow != "") {
				t.Errorf("POST from %s: %d, Allow-Origin %q, Location exposed %v", app, post.status, post.header.Get("Access-Control-Allow-Origin"), exposed)
			}
		})
	}
}
