package impl_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/testkit"
)

// del sends DELETE to job id's status URL.
func (h *harness) del(tb testing.TB, id string) *response {
	tb.Helper()
	return h.doValid(tb, h.request(tb, http.MethodDelete, "/v1/reports/"+id, nil))
}

// cancel sends POST to job id's cancel URL.
func (h *harness) cancel(tb testing.TB, id string) *response {
	tb.Helper()
	return h.doValid(tb, h.request(tb, http.MethodPost, "/v1/reports/"+id+"/cancel", nil))
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
		h := newHarness(t, b, setup{Worker: true, Ledger: ledger, Waiters: true, Policy: jobs.Policy{MaxRetry: 3}})
		id := h.create(t, "2026-Q1")
		h.poll(t, id, 20*time.Millisecond, 10*time.Second, func(r *response) bool {
			if r.Status != http.StatusOK {
				t.Fatalf("the job finished before the test could cancel it: %s", r)
			}
			s := r.jobStatus(t)
			return s.Status == gen.Running && s.Progress > 0
		})

		// A running job is not deleted: it must be canceled first.
		if r := h.del(t, id); r.Status != http.StatusConflict || r.problem(t).Type != "/problems/job-not-finished" {
			t.Fatalf("DELETE of a running job: %s, want 409 job-not-finished", r)
		}
		r := h.cancel(t, id)
		t.Logf("cancel of a running job answered %d in %s", r.Status, r.Took.Round(time.Millisecond))
		switch r.Status {
		case http.StatusOK:
			if s := r.jobStatus(t); s.Status != gen.Canceled {
				t.Errorf("cancel answered 200 with status %q, want canceled", s.Status)
			}
		case http.StatusAccepted:
			if s := r.jobStatus(t); s.CancelRequested == nil || !*s.CancelRequested {
				t.Errorf("cancel answered 202 without cancel_requested: %s", r.Body)
			}
			h.poll(t, id, 20*time.Millisecond, 1500*time.Millisecond, hasState(t, gen.Canceled))
		default:
			t.Fatalf("cancel of a running job: %s", r)
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

		// Judged from the task's record, not by outwaiting the first retry: once the handler has returned
		// the task is completed (asynq runs it no more) or waits for a retry, which fails here at once.
		var info *asynq.TaskInfo
		testkit.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
			var err error
			if info, err = h.Inspector.GetTaskInfo(store.ReportQueue, id); err != nil {
				t.Fatalf("GetTaskInfo: %v", err)
			}
			if info.State == asynq.TaskStateActive {
				return fmt.Errorf("task: state %v, retried %d, result %q; want completed at once, with the outcome canceled",
					info.State, info.Retried, info.Result)
			}
			return nil
		})
		// A user's cancel is no failure: the task completes, and asynq runs it no more.
		if p, perr := jobs.ParseProgress(info.Result); info.State != asynq.TaskStateCompleted || info.Retried != 0 || perr != nil || p.Outcome != jobs.OutcomeCanceled {
			t.Errorf("task: state %v, retried %d, result %q; want completed at once, with the outcome canceled",
				info.State, info.Retried, info.Result)
		}
		starts, stops, done := h.logged(id, "report started"), h.logged(id, "report canceled before it started"), h.logged(id, "report done")
		if starts != 1 || stops != 0 || done != 0 {
			t.Errorf("the worker started the job %d times, stopped it before it started %d times, finished it %d times; want 1, 0, 0",
				starts, stops, done)
		}
		if s := checkCanceledStatus(t, h.get(t, "/v1/reports/"+id)); s.Attempt == nil || *s.Attempt != 1 {
			t.Errorf("attempt after the retry delay = %v, want 1", s.Attempt)
		}

		// Canceling again changes nothing: 200 with the same status, the record kept.
		again := h.cancel(t, id)
		if s := checkCanceledStatus(t, again); s.Attempt == nil || *s.Attempt != 1 {
			t.Errorf("a second cancel answered %s", again.Body)
		}
		checkCanceledStatus(t, h.get(t, "/v1/reports/"+id))

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

		if r := h.del(t, victim); r.Status != http.StatusConflict || r.problem(t).Type != "/problems/job-not-finished" {
			t.Fatalf("DELETE of a pending job: %s, want 409 job-not-finished", r)
		}
		r := h.cancel(t, victim)
		if r.Status != http.StatusOK {
			t.Fatalf("cancel of a pending job: %s", r)
		}
		s := r.jobStatus(t)
		if s.Status != gen.Canceled || s.Progress != 0 || s.Attempt != nil || s.FinishedAt == nil || s.ExpiresAt == nil {
			t.Errorf("cancel of a pending job answered %s, want canceled with progress 0, no attempt, finished_at and expires_at", r.Body)
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

		h.startWorker(t, setup{})
		h.poll(t, other, 20*time.Millisecond, 10*time.Second, is303) // the worker runs the queue
		// The canceled job's task is gone (checked above), so nothing can run it later: no wait is needed.
		if _, err := h.Inspector.GetTaskInfo(store.ReportQueue, victim); !errors.Is(err, asynq.ErrTaskNotFound) {
			t.Errorf("the canceled job's task after the worker ran: %v, want it deleted", err)
		}
		if n, m := h.logged(victim, "report started"), h.logged(victim, "report canceled before it started"); n+m != 0 {
			t.Errorf("the worker picked up the canceled job (%d starts, %d stops)", n, m)
		}
		checkCanceledStatus(t, h.get(t, "/v1/reports/"+victim))
		checkNotDone(t, h, victim, "canceled")
		if _, err := h.Store.Report(context.Background(), victim); !errors.Is(err, store.ErrNoReport) {
			t.Errorf("Report of a canceled job = %v, want ErrNoReport", err)
		}
		if r := h.cancel(t, victim); r.Status != http.StatusOK || r.jobStatus(t).Status != gen.Canceled {
			t.Errorf("a second cancel of the canceled job: %s, want 200 canceled", r)
		}
		if r := h.del(t, victim); r.Status != http.StatusNoContent {
			t.Errorf("DELETE of the canceled job: %s", r)
		}
		checkGone(t, h, victim)
	})
}

// TestDeleteFinished deletes done and failed jobs: 204, then 410 on every URL of the job, DELETE and
// cancel included. A cancel before that is refused (409) and changes nothing.
func TestDeleteFinished(t *testing.T) {
	t.Parallel()
	t.Run("done", func(t *testing.T) {
		t.Parallel()
		redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
			h := newHarness(t, b, setup{Worker: true, Ledger: fixedLedger{}})
			id, done := h.createDone(t, "2026-01")
			expires, err := http.ParseTime(done.Header.Get("Expires"))
			if err != nil {
				t.Fatalf("the 303's Expires: %v", err)
			}

			// A done job cannot be canceled, and the attempt changes nothing: it keeps its report.
			if r := h.cancel(t, id); r.Status != http.StatusConflict || r.problem(t).Type != "/problems/job-finished" {
				t.Errorf("cancel of a done job: %s, want 409 job-finished", r)
			}
			h.poll(t, id, 20*time.Millisecond, time.Second, is303)

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
			// The id answers 410 until its tombstone would have run out had it not been deleted: the
			// tombstone period after its expiry.
			// want before the read, so the TTL read after it is no longer, but for Redis's whole
			// milliseconds (its clock and the expiry are in ms): up to 1 ms more.
			want := time.Until(expires.Add(h.Policy.Tombstone))
			ttl, err := h.Redis.PTTL(context.Background(), "reportd:{"+id+"}:tomb").Result()
			if err != nil || ttl > want+time.Millisecond || ttl < want-5*time.Second {
				t.Errorf("tombstone TTL after DELETE = %s, %v; want %s", ttl, err, want)
			}
			if r := h.cancel(t, id); r.Status != http.StatusGone {
				t.Errorf("cancel of a deleted job: %s, want 410", r)
			}
			if r := h.del(t, uuid.NewString()); r.Status != http.StatusNotFound || r.problem(t).Type != "/problems/job-not-found" {
				t.Errorf("DELETE of an unknown id: %s, want 404 job-not-found", r)
			}
			if r := h.cancel(t, uuid.NewString()); r.Status != http.StatusNotFound || r.problem(t).Type != "/problems/job-not-found" {
				t.Errorf("cancel of an unknown id: %s, want 404 job-not-found", r)
			}
		})
	})
	t.Run("failed", func(t *testing.T) {
		t.Parallel()
		redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
			h := newHarness(t, b, setup{Worker: true, Ledger: failingLedger{err: errors.New("no ledger")}})
			id := h.create(t, "2026-01")
			h.poll(t, id, 20*time.Millisecond, 10*time.Second, hasState(t, gen.Failed))
			if r := h.cancel(t, id); r.Status != http.StatusConflict || r.problem(t).Type != "/problems/job-finished" {
				t.Errorf("cancel of a failed job: %s, want 409 job-finished", r)
			}
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
