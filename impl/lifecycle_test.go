package impl_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/tasks"
)

// The job lifecycle end to end: DELETE of a running, pending and finished job, Idempotency-Key,
// Prefer: wait, and the result's cache headers, through the harness on every Redis backend.

// send is do for goroutines other than the test's: it returns what do would fail the test for.
func (h *harness) send(req *http.Request) (*response, error) {
	start := time.Now()
	res, err := h.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read body: %w", req.Method, req.URL.Path, err)
	}
	r := &response{Status: res.StatusCode, Header: res.Header, Body: body, Took: time.Since(start)}
	if err := h.contract.checkExchange(req, r.Status, r.Header, r.Body); err != nil {
		return r, fmt.Errorf("%s %s answered %d, breaking the contract:\n%w\nresponse: %s", req.Method, req.URL.Path, r.Status, err, r)
	}
	return r, nil
}

// post submits body (a valid request) with header pairs.
func (h *harness) post(tb testing.TB, body string, header ...string) *response {
	tb.Helper()
	return h.doValid(tb, h.request(tb, http.MethodPost, "/v1/reports", strings.NewReader(body),
		append([]string{"Content-Type", "application/json"}, header...)...))
}

// del sends DELETE to job id's status URL.
func (h *harness) del(tb testing.TB, id string) *response {
	tb.Helper()
	return h.doValid(tb, h.request(tb, http.MethodDelete, "/v1/reports/"+id, nil))
}

// logged counts the server's and worker's log lines about job id with message msg.
func (h *harness) logged(id, msg string) int {
	n := 0
	for line := range strings.Lines(h.Log.String()) {
		if strings.Contains(line, `msg="`+msg+`"`) && strings.Contains(line, "job="+id) {
			n++
		}
	}
	return n
}

// logger is a logger into the harness's log, for parts a test starts itself.
func (h *harness) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(h.Log, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// awaitWaiters waits until requests wait for n jobs.
func awaitWaiters(t *testing.T, h *harness, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for h.Waiters.Len() < n {
		if time.Now().After(deadline) {
			t.Fatalf("requests wait for %d jobs after 10 s, want %d", h.Waiters.Len(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// jobIDOf returns the job id a Location names, failing the test if it names none.
func jobIDOf(t *testing.T, loc string) string {
	t.Helper()
	m := regexp.MustCompile(`^/v1/reports/([0-9a-f-]{36})(/result)?$`).FindStringSubmatch(loc)
	if m == nil {
		t.Fatalf("Location %q names no job", loc)
	}
	return m[1]
}

// checkCanceledStatus checks the status of a canceled job: no Retry-After, no result, no error, and
// finished_at and expires_at set.
func checkCanceledStatus(t *testing.T, r *response) gen.JobStatus {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("status of a canceled job: %s", r)
	}
	s := r.jobStatus(t)
	if s.Status != gen.Canceled {
		t.Fatalf("status %q, want canceled: %s", s.Status, r.Body)
	}
	if ra := r.Header.Get("Retry-After"); ra != "" {
		t.Errorf("a canceled job's status carries Retry-After %q", ra)
	}
	if s.Links.Result != nil || s.Error != nil {
		t.Errorf("a canceled job has a result link or an error: %s", r.Body)
	}
	if s.FinishedAt == nil || s.ExpiresAt == nil {
		t.Errorf("a canceled job has no finished_at or expires_at: %s", r.Body)
	}
	return s
}

// TestCancelRunning cancels a job halfway through its range: the worker stops the attempt at once, the
// job shows canceled with the progress it had, never runs again and never has a report.
func TestCancelRunning(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		// 90 days of 30 ms: 2.7 s if nothing stops it.
		ledger := slowLedger{inner: report.NewSyntheticLedger(smallRows), perDay: 30 * time.Millisecond}
		// Retries allowed: only the cancel's SkipRetry keeps asynq from running the job again.
		h := newHarness(t, b, setup{Worker: true, Ledger: ledger, Waiters: true, Cancels: true, Policy: jobs.Policy{MaxRetry: 3}})
		id := h.create(t, "2026-Q1")
		h.poll(t, id, 20*time.Millisecond, 10*time.Second, func(r *response) bool {
			if r.Status != http.StatusOK {
				t.Fatalf("the job finished before the test could cancel it: %s", r)
			}
			s := r.jobStatus(t)
			return s.Status == gen.Running && s.Progress > 0
		})

		r := h.del(t, id)
		t.Logf("DELETE of a running job answered %d in %s", r.Status, r.Took.Round(time.Millisecond))
		switch r.Status {
		case http.StatusOK:
			if s := r.jobStatus(t); s.Status != gen.Canceled {
				t.Errorf("DELETE answered 200 with status %q, want canceled", s.Status)
			}
		case http.StatusAccepted:
			if s := r.jobStatus(t); s.CancelRequested == nil || !*s.CancelRequested {
				t.Errorf("DELETE answered 202 without cancel_requested: %s", r.Body)
			}
			h.poll(t, id, 20*time.Millisecond, 1500*time.Millisecond, hasState(t, gen.Canceled))
		default:
			t.Fatalf("DELETE of a running job: %s", r)
		}

		s := checkCanceledStatus(t, h.get(t, "/v1/reports/"+id))
		if s.Progress <= 0 || s.Progress >= 1 {
			t.Errorf("progress of a job canceled halfway = %v, want in (0, 1)", s.Progress)
		}
		if s.Attempt == nil || *s.Attempt != 1 || s.StartedAt == nil {
			t.Errorf("attempt %v, started_at %v; want attempt 1 with its start", s.Attempt, s.StartedAt)
		}
		checkNotDone(t, h, id, "canceled")
		if _, err := h.Store.Report(context.Background(), id); !errors.Is(err, store.ErrNoReport) {
			t.Errorf("Report of a canceled job = %v, want ErrNoReport", err)
		}

		// The first retry would come 1 to 1.5 s after a failed attempt.
		time.Sleep(2 * time.Second)
		info, err := h.Inspector.GetTaskInfo(store.ReportQueue, id)
		if err != nil {
			t.Fatalf("GetTaskInfo: %v", err)
		}
		if info.State != asynq.TaskStateArchived || !strings.HasPrefix(info.LastErr, "job canceled") || info.Retried != 0 {
			t.Errorf("task: state %v, retried %d, last error %q; want archived at once, with a last error starting \"job canceled\"",
				info.State, info.Retried, info.LastErr)
		}
		starts, stops, done := h.logged(id, "report started"), h.logged(id, "report canceled before it started"), h.logged(id, "report done")
		if starts != 1 || stops != 0 || done != 0 {
			t.Errorf("the worker started the job %d times, stopped it before it started %d times, finished it %d times; want 1, 0, 0",
				starts, stops, done)
		}
		if s := checkCanceledStatus(t, h.get(t, "/v1/reports/"+id)); s.Attempt == nil || *s.Attempt != 1 {
			t.Errorf("attempt after the retry delay = %v, want 1", s.Attempt)
		}

		// A canceled job is finished: DELETE deletes it.
		if r := h.del(t, id); r.Status != http.StatusNoContent {
			t.Errorf("DELETE of the canceled job: %s", r)
		}
		checkGone(t, h, id)
	})
}

// TestCancelPending cancels a job before any worker runs: 200 canceled at once, a request waiting for it
// is answered, and a worker that starts later never runs it.
func TestCancelPending(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		h := newHarness(t, b, setup{Waiters: true}) // no worker yet: the jobs stay pending
		victim := h.create(t, "2026-Q1")
		other := h.create(t, "2026-02")

		type answer struct {
			r   *response
			err error
		}
		waiting := make(chan answer, 1)
		req := h.request(t, http.MethodGet, "/v1/reports/"+victim, nil, "Prefer", "wait=20")
		go func() {
			r, err := h.send(req)
			waiting <- answer{r, err}
		}()
		awaitWaiters(t, h, 1)

		r := h.del(t, victim)
		if r.Status != http.StatusOK {
			t.Fatalf("DELETE of a pending job: %s", r)
		}
		s := r.jobStatus(t)
		if s.Status != gen.Canceled || s.Progress != 0 || s.Attempt != nil || s.FinishedAt == nil || s.ExpiresAt == nil {
			t.Errorf("DELETE of a pending job answered %s, want canceled with progress 0, no attempt, finished_at and expires_at", r.Body)
		}
		if s.CancelRequested != nil && *s.CancelRequested {
			t.Errorf("a canceled job still says cancel_requested: %s", r.Body)
		}
		select {
		case a := <-waiting:
			if a.err != nil {
				t.Fatal(a.err)
			}
			checkCanceledStatus(t, a.r)
			if got := a.r.Header.Get("Preference-Applied"); got != "wait=20" {
				t.Errorf("Preference-Applied = %q, want wait=20", got)
			}
			t.Logf("the waiting GET answered %s after it was sent", a.r.Took.Round(time.Millisecond))
		case <-time.After(2 * time.Second):
			t.Error("a request waiting for the job was not answered within 2 s of its cancel")
		}
		if _, err := h.Inspector.GetTaskInfo(store.ReportQueue, victim); !errors.Is(err, asynq.ErrTaskNotFound) {
			t.Errorf("the canceled job's task: %v, want it deleted", err)
		}

		startWorker(t, h.Redis, h.Store, setup{Cancels: true}, h.logger().With("component", "worker"))
		h.poll(t, other, 20*time.Millisecond, 10*time.Second, is303) // the worker runs the queue
		time.Sleep(200 * time.Millisecond)
		if n, m := h.logged(victim, "report started"), h.logged(victim, "report canceled before it started"); n+m != 0 {
			t.Errorf("the worker picked up the canceled job (%d starts, %d stops)", n, m)
		}
		checkCanceledStatus(t, h.get(t, "/v1/reports/"+victim))
		checkNotDone(t, h, victim, "canceled")
		if _, err := h.Store.Report(context.Background(), victim); !errors.Is(err, store.ErrNoReport) {
			t.Errorf("Report of a canceled job = %v, want ErrNoReport", err)
		}
		if r := h.del(t, victim); r.Status != http.StatusNoContent {
			t.Errorf("DELETE of the canceled job: %s", r)
		}
		checkGone(t, h, victim)
	})
}

// TestDeleteFinished deletes done and failed jobs: 204, then 410 on every URL of the job, DELETE included.
func TestDeleteFinished(t *testing.T) {
	t.Parallel()
	t.Run("done", func(t *testing.T) {
		t.Parallel()
		redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
			h := newHarness(t, b, setup{Worker: true, Ledger: fixedLedger{}})
			id := h.create(t, "2026-01")
			h.poll(t, id, 20*time.Millisecond, 10*time.Second, is303)

			r := h.del(t, id)
			if r.Status != http.StatusNoContent || len(r.Body) != 0 {
				t.Fatalf("DELETE of a done job: %s", r)
			}
			checkGone(t, h, id)
			if r := h.del(t, id); r.Status != http.StatusGone || r.problem(t).Type != "/problems/job-expired" {
				t.Errorf("DELETE again: %s, want 410 job-expired", r)
			}
			if _, err := h.Store.Report(context.Background(), id); !errors.Is(err, store.ErrNoReport) {
				t.Errorf("Report of a deleted job = %v, want ErrNoReport", err)
			}
			if _, err := h.Inspector.GetTaskInfo(store.ReportQueue, id); !errors.Is(err, asynq.ErrTaskNotFound) {
				t.Errorf("the deleted job's task: %v, want it deleted", err)
			}
			// The id answers 410 for the whole tombstone period from now.
			ttl, err := h.Redis.TTL(context.Background(), "reportd:{"+id+"}:tomb").Result()
			if want := h.Policy.Tombstone + time.Minute; err != nil || ttl > want || ttl < want-5*time.Second {
				t.Errorf("tombstone TTL after DELETE = %s, %v; want %s", ttl, err, want)
			}
			if r := h.del(t, uuid.NewString()); r.Status != http.StatusNotFound || r.problem(t).Type != "/problems/job-not-found" {
				t.Errorf("DELETE of an unknown id: %s, want 404 job-not-found", r)
			}
		})
	})
	t.Run("failed", func(t *testing.T) {
		t.Parallel()
		redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
			h := newHarness(t, b, setup{Worker: true, Ledger: failingLedger{err: errors.New("no ledger")}})
			id := h.create(t, "2026-01")
			h.poll(t, id, 20*time.Millisecond, 10*time.Second, hasState(t, gen.Failed))
			if r := h.del(t, id); r.Status != http.StatusNoContent {
				t.Fatalf("DELETE of a failed job: %s", r)
			}
			checkGone(t, h, id)
			if r := h.del(t, id); r.Status != http.StatusGone {
				t.Errorf("DELETE again: %s, want 410", r)
			}
		})
	})
}

// TestIdempotentConcurrentSubmits sends one submission 50 times at once with one Idempotency-Key: one
// job, one task, one tombstone, and the same Location for all.
func TestIdempotentConcurrentSubmits(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		h := newHarness(t, b, setup{}) // no worker: the task stays where it can be counted
		const n = 50
		key := "submit-" + uuid.NewString()
		reqs := make([]*http.Request, n)
		for i := range reqs {
			reqs[i] = h.request(t, http.MethodPost, "/v1/reports", strings.NewReader(`{"range":"2026-Q1"}`),
				"Content-Type", "application/json", "Idempotency-Key", key)
		}
		start := make(chan struct{})
		answers := make([]*response, n)
		var wg sync.WaitGroup
		for i := range reqs {
			wg.Go(func() {
				<-start
				r, err := h.send(reqs[i])
				if err != nil {
					t.Error(err)
				}
				answers[i] = r
			})
		}
		close(start)
		wg.Wait()

		locations := map[string]int{}
		for _, r := range answers {
			if r == nil {
				continue
			}
			if r.Status != http.StatusAccepted && r.Status != http.StatusSeeOther {
				t.Errorf("a copy answered %s", r)
				continue
			}
			locations[r.Header.Get("Location")]++
		}
		if len(locations) != 1 {
			t.Fatalf("%d copies of one submission got %d different Locations: %v", n, len(locations), locations)
		}
		var loc string
		for l := range locations {
			loc = l
		}
		id := jobIDOf(t, loc)

		tasksIn := 0
		for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
			h.Inspector.ListPendingTasks, h.Inspector.ListActiveTasks, h.Inspector.ListCompletedTasks,
		} {
			infos, err := list(store.ReportQueue)
			if err != nil {
				t.Fatalf("list tasks: %v", err)
			}
			for _, info := range infos {
				if info.ID != id {
					t.Errorf("a task %s besides job %s", info.ID, id)
				}
			}
			tasksIn += len(infos)
		}
		if tasksIn != 1 {
			t.Errorf("%d tasks in the queue after %d copies of one submission, want 1", tasksIn, n)
		}
		ctx := context.Background()
		// One job's worth of state: one index entry (a job's tombstone is written when it ends) and one
		// record of the key.
		if indexed, err := h.Store.ListJobs(ctx, jobs.Anonymous, store.IndexedJob{}, 100); err != nil || len(indexed) != 1 {
			t.Errorf("index entries: %v, %v; want one", indexed, err)
		}
		if keys, err := h.Redis.Keys(ctx, "reportd:client:*:idem:*").Result(); err != nil || len(keys) != 1 {
			t.Errorf("idempotency records: %v, %v; want one", keys, err)
		}

		// The key as a quoted string is the same key.
		r := h.post(t, `{"range":"2026-Q1"}`, "Idempotency-Key", `"`+key+`"`)
		if r.Status != http.StatusAccepted || r.Header.Get("Location") != loc {
			t.Errorf("the key quoted: %s, want 202 to %s", r, loc)
		}
	})
}

// TestIdempotencyKeyReuse: the key with another body is refused with 422, and once the job is done a
// replay of the first request is a 303 to its result.
func TestIdempotencyKeyReuse(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		h := newHarness(t, b, setup{Worker: true, Waiters: true, Ledger: fixedLedger{}})
		key := "reuse-" + uuid.NewString()
		first := h.post(t, `{"range":"2026-01"}`, "Idempotency-Key", key)
		if first.Status != http.StatusAccepted {
			t.Fatalf("first submission: %s", first)
		}
		id := jobIDOf(t, first.Header.Get("Location"))

		checkReused := func(what string) {
			t.Helper()
			r := h.post(t, `{"range":"2026-02"}`, "Idempotency-Key", key)
			if r.Status != http.StatusUnprocessableEntity || r.problem(t).Type != "/problems/idempotency-key-reused" {
				t.Errorf("the key with another body, %s: %s, want 422 idempotency-key-reused", what, r)
			}
		}
		checkReused("while the job runs")

		done := h.poll(t, id, 20*time.Millisecond, 10*time.Second, is303)
		for _, body := range []string{`{"range":"2026-01"}`, " { \"range\" :\n \"2026-01\" } "} {
			r := h.post(t, body, "Idempotency-Key", key)
			if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/v1/reports/"+id+"/result" {
				t.Errorf("replay of %q once done: %s, want 303 to the job's result", body, r)
			}
			if got, want := r.Header.Get("Expires"), done.Header.Get("Expires"); got == "" || got != want {
				t.Errorf("replay's Expires = %q, want the job's %q", got, want)
			}
		}
		checkReused("once the job is done")
	})
}

// TestIdempotencyKeyMalformed sends keys that are not 1 to 255 printable ASCII characters, plain or as a
// quoted string: 400, and no job.
func TestIdempotencyKeyMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, key string
		want      int
	}{
		{name: "key-400-256-chars", key: strings.Repeat("k", 256), want: http.StatusBadRequest},
		{name: "key-400-control-char", key: "ab\tcd", want: http.StatusBadRequest},
		{name: "key-400-unterminated-quote", key: `"unterminated`, want: http.StatusBadRequest},
		{name: "key-400-empty-quoted", key: `""`, want: http.StatusBadRequest},
		{name: "key-400-quote-inside-quotes", key: `"a"b"`, want: http.StatusBadRequest},
		{name: "key-400-258-quoted", key: `"` + strings.Repeat("k", 256) + `"`, want: http.StatusBadRequest},
		{name: "key-202-255-chars", key: strings.Repeat("k", 255), want: http.StatusAccepted},
		{name: "key-202-255-quoted", key: `"` + strings.Repeat("q", 255) + `"`, want: http.StatusAccepted},
	}
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		h := newHarness(t, b, setup{})
		accepted := 0
		for _, tt := range tests {
			r := h.do(t, h.request(t, http.MethodPost, "/v1/reports", strings.NewReader(`{"range":"2026-Q1"}`),
				"Content-Type", "application/json", "Idempotency-Key", tt.key))
			if r.Status != tt.want {
				t.Errorf("%s: Idempotency-Key %q answered %s, want %d", tt.name, tt.key, r, tt.want)
			}
			if r.Status == http.StatusAccepted {
				accepted++
			}
			if tt.want == http.StatusBadRequest && r.Status == http.StatusBadRequest && r.problem(t).Type != "/problems/invalid-request" {
				t.Errorf("%s: problem type %s, want /problems/invalid-request", tt.name, r.problem(t).Type)
			}
		}
		infos, err := h.Inspector.ListPendingTasks(store.ReportQueue)
		if err != nil {
			t.Fatal(err)
		}
		if len(infos) != accepted {
			t.Errorf("%d jobs queued after %d accepted submissions", len(infos), accepted)
		}
	})
}

// TestReplayAfterDeleteStaysGone replays an Idempotency-Key whose job was deleted: the job is gone for
// good, so the replay must be a 410 ("use a new key"), and the id must keep answering 410.
func TestReplayAfterDeleteStaysGone(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		h := newHarness(t, b, setup{Worker: true, Waiters: true, Ledger: fixedLedger{}})
		key := "deleted-" + uuid.NewString()
		first := h.post(t, `{"range":"2026-01"}`, "Idempotency-Key", key)
		if first.Status != http.StatusAccepted {
			t.Fatalf("first submission: %s", first)
		}
		id := jobIDOf(t, first.Header.Get("Location"))
		h.poll(t, id, 20*time.Millisecond, 10*time.Second, is303)
		if r := h.del(t, id); r.Status != http.StatusNoContent {
			t.Fatalf("DELETE: %s", r)
		}

		r := h.post(t, `{"range":"2026-01"}`, "Idempotency-Key", key)
		if r.Status != http.StatusGone {
			t.Errorf("replay of a deleted job's key: %d %s %s, want 410 (the job is gone; use a new key)", r.Status, r.Header.Get("Location"), r.Body)
		}
		time.Sleep(300 * time.Millisecond) // time for a resurrected job to run
		checkGone(t, h, id)
		if n := h.logged(id, "report started"); n != 1 {
			t.Errorf("the deleted job ran %d times, want once", n)
		}
	})
}

// TestWaitWakesOnFinish holds a GET with Prefer: wait=30 on a running job and measures how soon after
// the job finishes it is answered: it is woken by the finish event, not by re-reading.
func TestWaitWakesOnFinish(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		gate := make(chan struct{})
		h := newHarness(t, b, setup{Worker: true, Waiters: true, Ledger: gateLedger{inner: report.NewSyntheticLedger(smallRows), gate: gate}})
		id := h.create(t, "2026-01")
		h.poll(t, id, 20*time.Millisecond, 10*time.Second, hasState(t, gen.Running))

		// The test's own subscription tells when the worker announced the finish, just after it saved
		// the report.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		events := h.Store.SubscribeFinished(ctx)
		defer events.Close()
		if _, _, err := events.Next(ctx); err != nil {
			t.Fatalf("subscribe: %v", err)
		}
		announced := make(chan time.Time, 1)
		go func() {
			for {
				got, _, err := events.Next(ctx)
				if err != nil {
					return
				}
				if got == id {
					announced <- time.Now()
					return
				}
			}
		}()

		type answer struct {
			r   *response
			err error
			at  time.Time
		}
		answered := make(chan answer, 1)
		req := h.request(t, http.MethodGet, "/v1/reports/"+id, nil, "Prefer", "wait=30")
		go func() {
			start := time.Now()
			r, err := h.send(req)
			a := answer{r: r, err: err, at: time.Now()}
			if r != nil {
				a.at = start.Add(r.Took)
			}
			answered <- a
		}()
		awaitWaiters(t, h, 1)
		select {
		case a := <-answered:
			t.Fatalf("the waiting GET answered before the job finished: %v %v", a.r, a.err)
		case <-time.After(100 * time.Millisecond):
		}

		released := time.Now()
		close(gate)
		var a answer
		select {
		case a = <-answered:
		case <-time.After(10 * time.Second):
			t.Fatal("the waiting GET was not answered within 10 s of the job's release")
		}
		if a.err != nil {
			t.Fatal(a.err)
		}
		if a.r.Status != http.StatusSeeOther || a.r.Header.Get("Preference-Applied") != "wait=30" || a.r.Header.Get("Expires") == "" {
			t.Errorf("the waiting GET answered %s, want 303 with Preference-Applied: wait=30 and Expires", a.r)
		}
		var finished time.Time
		select {
		case finished = <-announced:
		case <-time.After(2 * time.Second):
			t.Error("no finish event within 2 s of the answer")
		}
		sinceRelease := a.at.Sub(released)
		t.Logf("answered %s after the finish event, %s after the job's release", a.at.Sub(finished).Round(100*time.Microsecond), sinceRelease.Round(100*time.Microsecond))
		if sinceRelease > time.Second {
			t.Errorf("the waiting GET was answered %s after the job was released, want well under 1 s", sinceRelease)
		}
	})
}

// TestManyWaitersCheapOnRedis holds 1000 GETs with Prefer: wait=20 on 10 pending jobs and counts the
// Redis commands the waiting costs: a quiet subscription, not a poll per waiter. Only redis-server counts
// its commands exactly. The jobs are held by having no worker: a worker's own polling of the queue
// would swamp the count.
func TestManyWaitersCheapOnRedis(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		if b.Name != "redis-server" {
			t.Skip("only redis-server counts its commands (INFO commandstats)")
		}
		const jobs, perJob, window = 10, 100, 3 * time.Second
		h := newHarness(t, b, setup{Waiters: true})
		tr := &http.Transport{MaxIdleConnsPerHost: jobs * perJob}
		t.Cleanup(tr.CloseIdleConnections)
		h.client = &http.Client{Transport: tr, Timeout: time.Minute,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		ids := make([]string, jobs)
		for i := range ids {
			ids[i] = h.create(t, "2026-01")
		}

		ctx := context.Background()
		stats := func() map[string]int64 {
			t.Helper()
			s, err := redistest.CommandStats(ctx, h.Redis)
			if err != nil {
				t.Fatal(err)
			}
			delete(s, "info") // the test's own
			return s
		}
		total := func(before, after map[string]int64) (int64, map[string]int64) {
			var n int64
			by := map[string]int64{}
			for cmd, calls := range after {
				if d := calls - before[cmd]; d != 0 {
					n += d
					by[cmd] = d
				}
			}
			return n, by
		}

		type answer struct {
			r   *response
			err error
			at  time.Time
		}
		answers := make(chan answer, jobs*perJob)
		launched := stats()
		for i := range jobs * perJob {
			req := h.request(t, http.MethodGet, "/v1/reports/"+ids[i%jobs], nil, "Prefer", "wait=20")
			go func() {
				r, err := h.send(req)
				answers <- answer{r: r, err: err, at: time.Now()}
			}()
		}
		// Every waiting request reads its job once (SISMEMBER, EVALSHA) before it waits: wait until all
		// have, and Redis is quiet.
		awaitWaiters(t, h, jobs)
		deadline := time.Now().Add(10 * time.Second)
		for prev := stats(); ; {
			time.Sleep(250 * time.Millisecond)
			cur := stats()
			quiet, _ := total(prev, cur)
			if cur["sismember"]-launched["sismember"] >= jobs*perJob && quiet == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Redis did not go quiet within 10 s: %d job reads for %d waiting requests (they keep reading)",
					cur["sismember"]-launched["sismember"], jobs*perJob)
			}
			prev = cur
		}

		before := stats()
		time.Sleep(window)
		n, by := total(before, stats())
		t.Logf("%d requests waiting on %d jobs cost %d Redis commands in %s: %v", jobs*perJob, jobs, n, window, by)
		if n >= 200 {
			t.Errorf("%d waiting requests cost %d Redis commands in %s, want fewer than 200", jobs*perJob, n, window)
		}
		if early := len(answers); early > 0 {
			t.Errorf("%d waiting requests answered while their jobs were pending", early)
		}

		released := time.Now()
		startWorker(t, h.Redis, h.Store, setup{}, h.logger().With("component", "worker"))
		var last time.Time
		bad := 0
		for range jobs * perJob {
			var a answer
			select {
			case a = <-answers:
			case <-time.After(20 * time.Second):
				t.Fatal("waiting requests were not answered within 20 s of the worker's start")
			}
			switch {
			case a.err != nil:
				bad++
				if bad <= 3 {
					t.Error(a.err)
				}
			case a.r.Status != http.StatusSeeOther || a.r.Header.Get("Preference-Applied") != "wait=20":
				bad++
				if bad <= 3 {
					t.Errorf("a waiting request answered %s, want 303 with Preference-Applied: wait=20", a.r)
				}
			}
			if a.at.After(last) {
				last = a.at
			}
		}
		t.Logf("all %d answered within %s of the worker's start (%d bad)", jobs*perJob, last.Sub(released).Round(time.Millisecond), bad)
		if last.Sub(released) > 5*time.Second {
			t.Errorf("the last waiting request was answered %s after the worker started, want within 5 s", last.Sub(released))
		}
	})
}

// TestResultCaching checks the result's validators and lifetime: a strong ETag per representation,
// If-None-Match answered with 304, and a max-age that runs to the job's expiry.
func TestResultCaching(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		h := newHarness(t, b, setup{Worker: true, Ledger: fixedLedger{}})
		id := h.create(t, "2026-01")
		done := h.poll(t, id, 20*time.Millisecond, 10*time.Second, is303)
		expires := done.Header.Get("Expires")
		if expires == "" {
			t.Fatalf("the 303 has no Expires: %s", done)
		}
		exp, err := http.ParseTime(expires)
		if err != nil {
			t.Fatalf("the 303's Expires %q: %v", expires, err)
		}
		if until := time.Until(exp); until > h.Policy.Retention || until < h.Policy.Retention-time.Minute {
			t.Errorf("Expires is %s from now, want about the retention %s", until, h.Policy.Retention)
		}

		path := "/v1/reports/" + id + "/result"
		etagRE := regexp.MustCompile(`^"[!#-~]+"$`) // strong: no W/
		get := func(accept, inm string) *response {
			t.Helper()
			hdr := []string{"Accept", accept}
			if inm != "" {
				hdr = append(hdr, "If-None-Match", inm)
			}
			return h.doValid(t, h.request(t, http.MethodGet, path, nil, hdr...))
		}
		checkHeaders := func(what string, r *response) {
			t.Helper()
			if !etagRE.MatchString(r.Header.Get("ETag")) {
				t.Errorf("%s: ETag %q is not a strong entity tag", what, r.Header.Get("ETag"))
			}
			if r.Header.Get("Expires") != expires {
				t.Errorf("%s: Expires %q, want the 303's %q", what, r.Header.Get("Expires"), expires)
			}
			if r.Header.Get("Vary") != "Accept" {
				t.Errorf("%s: Vary %q, want Accept", what, r.Header.Get("Vary"))
			}
			cc := r.Header.Get("Cache-Control")
			secs, ok := strings.CutPrefix(cc, "private, max-age=")
			n, err := strconv.Atoi(secs)
			if !ok || err != nil {
				t.Errorf("%s: Cache-Control %q, want private, max-age=<seconds>", what, cc)
				return
			}
			if until := time.Until(exp).Seconds(); float64(n) > until+2 || float64(n) < until-2 {
				t.Errorf("%s: max-age=%d, want the %.0f s until Expires", what, n, until)
			}
		}

		jsonRes := get("application/json", "")
		if jsonRes.Status != http.StatusOK {
			t.Fatalf("result: %s", jsonRes)
		}
		checkHeaders("200 JSON", jsonRes)
		etag := jsonRes.Header.Get("ETag")
		csvRes := get("text/csv", "")
		if csvRes.Status != http.StatusOK {
			t.Fatalf("CSV result: %s", csvRes)
		}
		checkHeaders("200 CSV", csvRes)
		csvTag := csvRes.Header.Get("ETag")
		if csvTag == etag {
			t.Errorf("JSON and CSV share the ETag %s", etag)
		}
		if again := get("application/json", ""); again.Header.Get("ETag") != etag {
			t.Errorf("ETag changed between two reads: %s then %s", etag, again.Header.Get("ETag"))
		}

		for _, tc := range []struct {
			name, accept, inm string
			want              int
			wantTag           string
		}{
			{"json-304-same-etag", "application/json", etag, http.StatusNotModified, etag},
			{"json-304-weak-form", "application/json", "W/" + etag, http.StatusNotModified, etag},
			{"json-304-in-list", "application/json", `"nope", ` + etag, http.StatusNotModified, etag},
			{"json-304-star", "application/json", "*", http.StatusNotModified, etag},
			{"json-200-other-etag", "application/json", `"0123456789abcdef-json"`, http.StatusOK, etag},
			{"json-200-csv-etag", "application/json", csvTag, http.StatusOK, etag},
			{"csv-304-same-etag", "text/csv", csvTag, http.StatusNotModified, csvTag},
			{"csv-200-json-etag", "text/csv", etag, http.StatusOK, csvTag},
		} {
			r := get(tc.accept, tc.inm)
			if r.Status != tc.want || r.Header.Get("ETag") != tc.wantTag {
				t.Errorf("%s: %d with ETag %s, want %d with %s", tc.name, r.Status, r.Header.Get("ETag"), tc.want, tc.wantTag)
			}
			if r.Status == http.StatusNotModified {
				if len(r.Body) != 0 {
					t.Errorf("%s: a 304 with a body: %q", tc.name, r.Body)
				}
				checkHeaders(tc.name, r)
			}
		}
	})
}

// TestPreferWait holds requests with Prefer: wait: a submission answers 303 when its job is done in
// time and 202 when it is not, a status read answers when the wait is over, and each says so in
// Preference-Applied.
func TestPreferWait(t *testing.T) {
	t.Parallel()
	t.Run("create-303-done-in-time", func(t *testing.T) {
		t.Parallel()
		redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
			h := newHarness(t, b, setup{Worker: true, Waiters: true, Ledger: fixedLedger{}})
			r := h.post(t, `{"range":"2026-01"}`, "Prefer", "respond-async, wait=10")
			if r.Status != http.StatusSeeOther || r.Header.Get("Preference-Applied") != "wait=10" || r.Header.Get("Expires") == "" {
				t.Fatalf("POST with Prefer: respond-async, wait=10 on a fast job: %s, want 303 with Preference-Applied: wait=10 and Expires", r)
			}
			t.Logf("answered 303 in %s", r.Took.Round(time.Millisecond))
			id := jobIDOf(t, r.Header.Get("Location"))
			if !strings.HasSuffix(r.Header.Get("Location"), "/result") {
				t.Errorf("the 303's Location %q is not the result", r.Header.Get("Location"))
			}
			if res := h.get(t, r.Header.Get("Location")); res.Status != http.StatusOK {
				t.Errorf("the 303's Location: %s", res)
			}
			// A job that is done already is answered at once.
			st := h.get(t, "/v1/reports/"+id, "Prefer", "wait=10")
			if st.Status != http.StatusSeeOther || st.Took > time.Second {
				t.Errorf("GET with Prefer: wait=10 of a done job: %d in %s, want 303 at once", st.Status, st.Took)
			}
		})
	})
	t.Run("202-when-not-done", func(t *testing.T) {
		t.Parallel()
		redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
			gate := make(chan struct{})
			h := newHarness(t, b, setup{Worker: true, Waiters: true, Ledger: gateLedger{inner: report.NewSyntheticLedger(smallRows), gate: gate}})
			t.Cleanup(func() { close(gate) })
			r := h.post(t, `{"range":"2026-01"}`, "Prefer", "respond-async, wait=1")
			if r.Status != http.StatusAccepted || r.Header.Get("Preference-Applied") != "wait=1" {
				t.Fatalf("POST with Prefer: respond-async, wait=1 on a held job: %s, want 202 with Preference-Applied: wait=1", r)
			}
			if r.Took < 900*time.Millisecond || r.Took > 3*time.Second {
				t.Errorf("POST with wait=1 answered after %s, want about 1 s", r.Took)
			}
			id := jobIDOf(t, r.Header.Get("Location"))
			h.poll(t, id, 20*time.Millisecond, 10*time.Second, hasState(t, gen.Running))

			st := h.get(t, "/v1/reports/"+id, "Prefer", "wait=1")
			if st.Status != http.StatusOK || st.jobStatus(t).Status != gen.Running || st.Header.Get("Preference-Applied") != "wait=1" {
				t.Errorf("GET with Prefer: wait=1 on a held job: %s, want 200 running with Preference-Applied: wait=1", st)
			}
			if st.Took < 900*time.Millisecond || st.Took > 3*time.Second {
				t.Errorf("GET with wait=1 answered after %s, want about 1 s", st.Took)
			}
		})
	})
}

// TestPreferInTwoHeaderLines sends its preferences in two Prefer header lines, as RFC 7240 allows: they
// are one list, and the wait is honoured, not refused.
func TestPreferInTwoHeaderLines(t *testing.T) {
	t.Parallel()
	b := redistest.Embedded(t)
	h := newHarness(t, b, setup{Waiters: true})
	id := h.create(t, "2026-01")
	req := h.request(t, http.MethodGet, "/v1/reports/"+id, nil)
	req.Header.Add("Prefer", "respond-async")
	req.Header.Add("Prefer", "wait=1")
	r := h.do(t, req)
	if r.Status != http.StatusOK || r.Header.Get("Preference-Applied") != "wait=1" {
		t.Errorf("GET with Prefer: respond-async and Prefer: wait=1 on two lines: %d %s, want 200 with Preference-Applied: wait=1", r.Status, r.Body)
	}
}

// TestMeasurePollsDefaultLedger measures, and does not judge, how a client that sleeps exactly
// Retry-After between polls fares with one 2026-Q1 report on the default synthetic ledger (about 3 s of
// work on one core): how many status polls it makes and how long it takes. Set REPORTD_MEASURE=1.
func TestMeasurePollsDefaultLedger(t *testing.T) {
	if os.Getenv("REPORTD_MEASURE") != "1" {
		t.Skip("a measurement, not a test: set REPORTD_MEASURE=1 to run it")
	}
	backends := redistest.Backends(t)
	b := backends[len(backends)-1] // redis-server when there is one
	rdb := redis.NewClient(&redis.Options{Addr: b.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	// The worker as cmd/reportd configures it by default.
	proc := &tasks.ReportProcessor{
		Ledger:           report.NewSyntheticLedger(report.DefaultRowsPerDay),
		Jobs:             jobs.New(jobs.Deps{Store: store.NewStore(rdb, 24*time.Hour, time.Hour)}),
		ProgressEvery:    250 * time.Millisecond,
		CancelCheckEvery: time.Second,
		Now:              time.Now,
		Log:              slog.New(slog.DiscardHandler),
	}
	var mu sync.Mutex
	var began, ended time.Time
	timed := asynq.HandlerFunc(func(ctx context.Context, task *asynq.Task) error {
		mu.Lock()
		began = time.Now()
		mu.Unlock()
		err := proc.ProcessTask(ctx, task)
		mu.Lock()
		ended = time.Now()
		mu.Unlock()
		return err
	})
	h := newHarness(t, b, setup{Worker: true, Handler: timed})

	start := time.Now()
	r := h.post(t, `{"range":"2026-Q1"}`)
	if r.Status != http.StatusAccepted {
		t.Fatalf("POST: %s", r)
	}
	id := jobIDOf(t, r.Header.Get("Location"))
	ra, err := retryAfter(r.Header)
	if err != nil {
		t.Fatal(err)
	}
	trace := []string{fmt.Sprintf("202 ra=%d", ra)}
	polls := 0
	for {
		time.Sleep(time.Duration(ra) * time.Second)
		polls++
		r = h.get(t, "/v1/reports/"+id)
		at := time.Since(start).Round(10 * time.Millisecond)
		if r.Status == http.StatusSeeOther {
			trace = append(trace, fmt.Sprintf("%s 303", at))
			break
		}
		if r.Status != http.StatusOK || polls > 100 {
			t.Fatalf("poll %d: %s", polls, r)
		}
		s := r.jobStatus(t)
		if ra, err = retryAfter(r.Header); err != nil {
			t.Fatal(err)
		}
		trace = append(trace, fmt.Sprintf("%s %s %.2f ra=%d", at, s.Status, s.Progress, ra))
	}
	total := time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%s: %d status polls; the client saw the 303 %s after its POST; the job started %s after the POST, ran %s and was done %s before the client looked; polls: %s",
		b.Name, polls, total.Round(10*time.Millisecond), began.Sub(start).Round(time.Millisecond), ended.Sub(began).Round(10*time.Millisecond),
		start.Add(total).Sub(ended).Round(10*time.Millisecond), strings.Join(trace, " | "))
}
