package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/testkit/reportdproc"
)

// The reportd services the end-to-end tests run against, started by TestMain.
var (
	// service runs the API and a worker: its jobs finish in milliseconds.
	service string
	// idle runs the API alone, with no worker: its jobs stay pending until canceled.
	idle string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	defer reportdproc.RemoveBinary()
	for _, s := range []struct {
		url  *string
		name string
		args []string
	}{{&service, "service", nil}, {&idle, "idle", []string{"api"}}} {
		p, err := reportdproc.Launch(s.name, s.args, reportdproc.Vars(nil))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer func() {
			if _, err := p.Stop(10 * time.Second); err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
		}()
		*s.url = p.URL
	}
	return m.Run()
}

// result is what one run of reportctl did.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// reportctl runs reportctl in-process against server with args.
func reportctl(t *testing.T, server string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	env := func(k string) string {
		if k == "REPORTD_URL" {
			return server
		}
		return ""
	}
	code := run(ctx, args, env, &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// mustRun runs reportctl and fails t unless it exits 0.
func mustRun(t *testing.T, server string, args ...string) result {
	t.Helper()
	r := reportctl(t, server, args...)
	if r.code != 0 {
		t.Fatalf("reportctl %s: %s", strings.Join(args, " "), r)
	}
	return r
}

var reportLine = regexp.MustCompile(`(?m)^report\s+([0-9a-f-]{36})$`)

// checkCSV fails t unless file holds the daily table of January 2026.
func checkCSV(t *testing.T, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 32 || lines[0] != "date,orders,units,revenue_cents" || !strings.HasPrefix(lines[1], "2026-01-01,") {
		t.Errorf("%s has %d lines starting %q, want a header and the 31 days of January 2026", file, len(lines), lines[0])
	}
}

// TestCreateWaitAndResult: create --wait follows a job to its report, prints its totals and writes the
// CSV; result writes the same table again, and prints the JSON report; status shows the job done.
func TestCreateWaitAndResult(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	created := filepath.Join(dir, "created.csv")
	r := mustRun(t, service, "create", "--range", "2026-01", "--wait", "-o", created)
	m := reportLine.FindStringSubmatch(r.stdout)
	if m == nil || !strings.Contains(r.stdout, "range    2026-01-01..2026-01-31 (31 days)") || !strings.Contains(r.stdout, "orders   ") {
		t.Fatalf("create --wait printed no summary of January's report:\n%s", r)
	}
	if !strings.Contains(r.stderr, "done 100%") || strings.Contains(r.stderr, "\r") {
		t.Errorf("create --wait off a terminal: want plain progress lines ending done 100%%:\n%s", r.stderr)
	}
	checkCSV(t, created)
	id := m[1]

	downloaded := filepath.Join(dir, "result.txt")
	mustRun(t, service, "result", id, "--csv", "-o", downloaded)
	checkCSV(t, downloaded)
	a, _ := os.ReadFile(created)
	b, _ := os.ReadFile(downloaded)
	if !bytes.Equal(a, b) {
		t.Errorf("result --csv wrote another table than create --wait -o")
	}

	r = mustRun(t, "http://127.0.0.1:1", "--server", service, "result", id)
	var rep gen.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Id.String() != id || len(rep.ByDay) != 31 {
		t.Errorf("result printed no JSON report of job %s (%v):\n%s", id, err, r)
	}
	// What the service sent, byte for byte (keys in its order: id first, by_day last), and with
	// --indent the same indented.
	res, err := http.Get(service + "/v1/reports/" + id + "/result")
	if err != nil {
		t.Fatal(err)
	}
	sent, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if r.stdout != string(sent) || !strings.HasPrefix(r.stdout, `{"id":"`+id+`",`) {
		t.Errorf("result printed\n%.300s\nwant what the service sent\n%.300s", r.stdout, sent)
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, bytes.TrimSpace(sent), "", "  "); err != nil {
		t.Fatal(err)
	}
	if r := mustRun(t, service, "result", id, "--indent"); r.stdout != indented.String()+"\n" {
		t.Errorf("result --indent printed\n%.300s\nwant the service's JSON indented\n%.300s", r.stdout, indented.String())
	}
	jsonFile := filepath.Join(dir, "report.json")
	mustRun(t, service, "result", id, "-o", jsonFile)
	if b, _ := os.ReadFile(jsonFile); string(b) != string(sent) {
		t.Errorf("result -o %s wrote another JSON than the service sent", jsonFile)
	}

	r = mustRun(t, service, "status", id)
	if !strings.Contains(r.stdout, "status       done") || !strings.Contains(r.stdout, "/v1/reports/"+id+"/result") {
		t.Errorf("status of a done job:\n%s", r)
	}

	// A done job cannot be canceled, and trying leaves its report alone.
	if r := reportctl(t, service, "cancel", id); r.code != 1 || !strings.Contains(r.stderr, "Job already finished: Job "+id+" is already done") || r.stdout != "" {
		t.Errorf("cancel of a done job: want exit 1 and the 409's problem:\n%s", r)
	}
	if r := mustRun(t, service, "status", id); !strings.Contains(r.stdout, "status       done") {
		t.Errorf("status of a done job after a refused cancel:\n%s", r)
	}
}

// TestCancel: a pending job (the idle service has no worker) cannot be deleted; it is canceled, twice
// to no further effect, then deleted; its id then answers 410, which status reports as an error.
func TestCancel(t *testing.T) {
	t.Parallel()
	r := mustRun(t, idle, "create", "--range", "2026-Q1")
	id := strings.SplitN(r.stdout, "\n", 2)[0]
	if !regexp.MustCompile(`^[0-9a-f-]{36}$`).MatchString(id) || !strings.Contains(r.stdout, "status     pending") {
		t.Fatalf("create did not print the id first, and the job pending:\n%s", r)
	}
	if r := reportctl(t, idle, "delete", id); r.code != 1 || !strings.Contains(r.stderr, "Job not finished") || r.stdout != "" {
		t.Errorf("delete of a pending job: want exit 1 and the 409's problem:\n%s", r)
	}
	if r := mustRun(t, idle, "cancel", id); r.stdout != "canceled "+id+"\n" {
		t.Errorf("cancel of a pending job:\n%s", r)
	}
	if r := mustRun(t, idle, "status", id); !strings.Contains(r.stdout, "status       canceled") {
		t.Errorf("status of a canceled job:\n%s", r)
	}
	if r := mustRun(t, idle, "cancel", id); r.stdout != "canceled "+id+"\n" {
		t.Errorf("cancel of a canceled job:\n%s", r)
	}
	if r := mustRun(t, idle, "status", id); !strings.Contains(r.stdout, "status       canceled") {
		t.Errorf("status of a job canceled twice:\n%s", r)
	}
	if r := mustRun(t, idle, "delete", id); r.stdout != "deleted "+id+": it and its report are gone\n" {
		t.Errorf("delete of a canceled job:\n%s", r)
	}
	if r := reportctl(t, idle, "status", id); r.code != 1 || !strings.Contains(r.stderr, "Job expired") {
		t.Errorf("status of a deleted job: want exit 1 and the 410's problem:\n%s", r)
	}
}

func TestErrorsPrintTheProblem(t *testing.T) {
	t.Parallel()
	const unknown = "00000000-0000-4000-8000-000000000000"
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{name: "status-unknown", args: []string{"status", unknown}, want: "Job not found: Job " + unknown + " was not found. (HTTP 404"},
		{name: "result-unknown", args: []string{"result", unknown, "--csv"}, want: "Job not found: Job " + unknown + " was not found."},
		{name: "cancel-unknown", args: []string{"cancel", unknown}, want: "Job not found"},
		{name: "delete-unknown", args: []string{"delete", unknown}, want: "Job not found"},
		{name: "create-unservable", args: []string{"create", "--range", "2026-03-01..2026-02-01"}, want: "Range cannot be served: /range "},
		{name: "create-not-on-the-calendar", args: []string{"create", "--range", "2026-02-01..2026-02-30"}, want: "(HTTP 400, /problems/invalid-request)"},
		{name: "create-malformed", args: []string{"create", "--range", "2026-13"}, want: "(HTTP 400, /problems/invalid-request)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := reportctl(t, service, tt.args...)
			if r.code != 1 || !strings.Contains(r.stderr, tt.want) || r.stdout != "" {
				t.Errorf("want exit 1 and %q on stderr, nothing on stdout; got %s", tt.want, r)
			}
		})
	}
}

// TestCreateWaitTimeout: a job that does not finish in --timeout ends reportctl with exit 1.
func TestCreateWaitTimeout(t *testing.T) {
	t.Parallel()
	start := time.Now()
	r := reportctl(t, idle, "--timeout", "1500ms", "create", "--range", "2026-01", "--wait")
	if r.code != 1 || !strings.Contains(r.stderr, "gave up after --timeout 1.5s") || !strings.Contains(r.stderr, "pending 0%") {
		t.Errorf("want exit 1 after the timeout, with progress:\n%s", r)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("reportctl took %s to give up after 1.5s", took)
	}
	if m := regexp.MustCompile(`job ([0-9a-f-]{36}) accepted`).FindStringSubmatch(r.stderr); m != nil {
		mustRun(t, idle, "cancel", m[1])
	}
}

func TestBench(t *testing.T) {
	t.Parallel()
	r := mustRun(t, service, "bench", "-n", "20", "-c", "4")
	for _, want := range []string{"reports      20 in ", "accept       p50 ", "to result    p50 ", "polls/job    p50 ", "errors       0\n", "lost: 0\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("bench output lacks %q:\n%s", want, r)
		}
	}
}

// TestBenchCountsLostJobs: jobs that never finish within --timeout are lost, and bench fails.
func TestBenchCountsLostJobs(t *testing.T) {
	t.Parallel()
	r := reportctl(t, idle, "--timeout", "1s", "bench", "-n", "3", "-c", "3", "--range", "2026-02")
	if r.code != 1 || !strings.Contains(r.stdout, "lost: 3\n") || !strings.Contains(r.stdout, "wait: timed out") {
		t.Errorf("want exit 1 and 3 lost jobs:\n%s", r)
	}
}

// TestWatchAndList: watch follows a job someone else submitted to its report; list shows the caller's
// jobs newest first, filtered by status, a page at a time.
func TestWatchAndList(t *testing.T) {
	t.Parallel()
	r := mustRun(t, service, "create", "--range", "2026-01-01..2026-01-03")
	id := strings.SplitN(r.stdout, "\n", 2)[0]
	r = mustRun(t, service, "watch", id)
	if !strings.Contains(r.stdout, "range    2026-01-01..2026-01-03 (3 days)") || !strings.Contains(r.stderr, "done 100%") {
		t.Errorf("watch of job %s:\n%s", id, r)
	}
	// watch submitted nothing: it says what the job is as it starts, never that it was accepted.
	if !regexp.MustCompile(`^job `+id+` is (pending|running, \d+% done|done)[^;]*; following http://\S+/v1/reports/`+id+`\n`).MatchString(r.stderr) ||
		strings.Contains(r.stderr, "accepted") {
		t.Errorf("watch of job %s: want its state first, and no word of acceptance:\n%s", id, r)
	}
	// A job that is done reads done at once, and watch still prints its totals.
	if r := mustRun(t, service, "watch", id); !strings.HasPrefix(r.stderr, "job "+id+" is done; following ") || !strings.Contains(r.stdout, "orders   ") {
		t.Errorf("watch of the done job %s:\n%s", id, r)
	}
	// An unknown job is its problem, not a wait.
	if r := reportctl(t, service, "watch", "00000000-0000-4000-8000-000000000000"); r.code != 1 || !strings.Contains(r.stderr, "Job not found") {
		t.Errorf("watch of an unknown job: want exit 1 and the 404's problem:\n%s", r)
	}
	r = mustRun(t, service, "list", "--status", "done", "--limit", "100")
	if !regexp.MustCompile(id + `  done +100%  2026-01-01\.\.2026-01-03  `).MatchString(r.stdout) {
		t.Errorf("list --status done does not show job %s done:\n%s", id, r)
	}
	if header := strings.SplitN(r.stdout, "\n", 2)[0]; strings.Join(strings.Fields(header), " ") != "JOB STATUS PROGRESS RANGE CREATED" {
		t.Errorf("list's first line is %q, want the header row", header)
	}
	first := strings.SplitN(mustRun(t, idle, "create", "--range", "2026-02").stdout, "\n", 2)[0]
	second := strings.SplitN(mustRun(t, idle, "create", "--range", "2026-03").stdout, "\n", 2)[0]
	// Page through the pending jobs (other tests add their own) one at a time: both appear, newest first.
	var order []string
	args := []string{"list", "--status", "pending", "--limit", "1"}
	for range 50 {
		r := mustRun(t, idle, args...)
		rows := strings.Split(r.stdout, "\n")
		if id, _, _ := strings.Cut(rows[min(1, len(rows)-1)], "  "); id == first || id == second {
			order = append(order, id)
		}
		// The next page's command as printed, filter and limit included, is what runs next.
		const hint = "next page: reportctl "
		i := strings.LastIndex(r.stdout, hint)
		if i < 0 || len(order) == 2 {
			break
		}
		args = strings.Fields(r.stdout[i+len(hint):])
		if want := []string{"list", "--status", "pending", "--limit", "1", "--cursor"}; !slices.Equal(args[:min(len(args), 6)], want) || len(args) != 7 {
			t.Fatalf("next page hint %q, want %s CURSOR", r.stdout[i:], strings.Join(want, " "))
		}
	}
	if diff := cmp.Diff([]string{second, first}, order); diff != "" {
		t.Errorf("pending jobs paged one at a time (-want +got):\n%s", diff)
	}
}

// TestCreateWaitFallsBackToPolling: create --wait draws its progress from the job's event stream, and
// polls when the service refuses the stream (here a proxy answers /events as a reportd without streams
// would: 404 no-route).
func TestCreateWaitFallsBackToPolling(t *testing.T) {
	t.Parallel()
	target, err := url.Parse(service)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/events") {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"type":"/problems/no-route","title":"No such resource","status":404}`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(old.Close)
	r := mustRun(t, old.URL, "create", "--range", "2026-01-01..2026-01-02", "--wait")
	if !strings.Contains(r.stderr, "no event stream (No such resource") || !strings.Contains(r.stderr, "done 100%") || !strings.Contains(r.stdout, "orders ") {
		t.Errorf("create --wait without event streams: want the fallback said, and the job followed to its report:\n%s", r)
	}
	if r := mustRun(t, service, "create", "--range", "2026-01-01..2026-01-02", "--wait"); strings.Contains(r.stderr, "no event stream") {
		t.Errorf("create --wait against reportd did not use its event stream:\n%s", r)
	}
}
