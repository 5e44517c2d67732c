package impl_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/report"
)

// checkNotStartedOrStarted fails t unless s is a job no attempt has started (pending: no attempt, no
// started_at, progress 0) or one whose first attempt has started and done nothing yet (running, with
// attempt 1 and its started_at): never running without them.
func checkNotStartedOrStarted(t *testing.T, what string, s gen.JobStatus) {
	t.Helper()
	switch {
	case s.Status == gen.Pending && s.Attempt == nil && s.StartedAt == nil && s.Progress == 0:
	case s.Status == gen.Running && s.Attempt != nil && *s.Attempt == 1 && s.StartedAt != nil && s.Progress == 0:
	default:
		t.Errorf("%s: status %s, attempt %v, started_at %v, progress %v; want pending with none of them, or running with attempt 1 and started_at",
			what, s.Status, s.Attempt, s.StartedAt, s.Progress)
	}
}

// TestStatusRightAfterPost reads a job from its 202 on, and its Idempotency-Key replays, while a worker
// takes it and blocks on its first day: it reads pending until the worker has recorded its attempt's
// start, and running with that attempt and its start from then on.
func TestStatusRightAfterPost(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		gate := make(chan struct{})
		h := newHarness(t, b, setup{Worker: true, Ledger: gateLedger{inner: report.NewSyntheticLedger(smallRows), gate: gate}})
		t.Cleanup(func() { close(gate) }) // before the harness stops: the job may finish
		key := uuid.NewString()
		r := h.post(t, `{"range":"2026-Q1"}`, "Idempotency-Key", key)
		if r.Status != http.StatusAccepted {
			t.Fatalf("POST: %s", r)
		}
		created := r.jobStatus(t)
		checkNotStartedOrStarted(t, "the 202", created)
		id := created.Id.String()
		replay := func(what string) {
			t.Helper()
			r := h.post(t, `{"range":"2026-Q1"}`, "Idempotency-Key", key)
			if r.Status != http.StatusAccepted || r.Header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("%s: %s, want a 202 replay", what, r)
			}
			checkNotStartedOrStarted(t, what, r.jobStatus(t))
		}
		replay("a replay just after the 202")
		running := h.poll(t, id, 5*time.Millisecond, 10*time.Second, func(r *response) bool {
			s := r.jobStatus(t)
			checkNotStartedOrStarted(t, "a poll", s)
			return s.Status == gen.Running
		}).jobStatus(t)
		if running.StartedAt != nil && running.StartedAt.Before(created.CreatedAt) {
			t.Errorf("started_at %s is before created_at %s", running.StartedAt, created.CreatedAt)
		}
		replay("a replay once it runs")
	})
}

// TestFinishedAtAsRecorded: a job's finished_at is the instant the lifecycle recorded as its end (to
// the nanosecond, as created_at and started_at are), whether it is done, failed, or canceled before or
// while it ran; a failed job's is not asynq's whole second of archiving.
func TestFinishedAtAsRecorded(t *testing.T) {
	t.Parallel()
	// recorded is the finish the end record of job id holds.
	recorded := func(t *testing.T, h *harness, id string) time.Time {
		t.Helper()
		tomb, ok, err := h.Store.Tombstone(context.Background(), id)
		if err != nil || !ok {
			t.Fatalf("the end record of job %s: %v, %v", id, ok, err)
		}
		p, err := jobs.ParseProgress(tomb.Progress)
		if err != nil || p.FinishedAt.IsZero() {
			t.Fatalf("the end record of job %s holds no finish: %q, %v", id, tomb.Progress, err)
		}
		return p.FinishedAt
	}
	check := func(t *testing.T, h *harness, id string, s gen.JobStatus) {
		t.Helper()
		if s.FinishedAt == nil {
			t.Fatalf("job %s (%s) has no finished_at", id, s.Status)
		}
		if want := recorded(t, h, id); !s.FinishedAt.Equal(want) {
			t.Errorf("job %s (%s): finished_at %s, want the recorded finish %s", id, s.Status,
				s.FinishedAt.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
		}
	}
	t.Run("done", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, redistest.Embedded(t), setup{Worker: true})
		id := h.create(t, "2026-02")
		h.poll(t, id, 10*time.Millisecond, 10*time.Second, is303)
		// A done job's status is a 303: its list entry shows it.
		r := h.get(t, "/v1/reports?status=done")
		var list gen.JobList
		if err := json.Unmarshal(r.Body, &list); err != nil || len(list.Items) != 1 {
			t.Fatalf("the list of done jobs: %s, %v", r, err)
		}
		check(t, h, id, list.Items[0])
	})
	t.Run("failed", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, redistest.Embedded(t), setup{Worker: true, Ledger: failingLedger{err: errors.New("no ledger")}, Policy: jobs.Policy{MaxRetry: 0}})
		id := h.create(t, "2026-02")
		s := h.poll(t, id, 10*time.Millisecond, 10*time.Second, hasState(t, gen.Failed)).jobStatus(t)
		check(t, h, id, s)
		if want := s.FinishedAt.Add(h.Policy.Retention); !s.ExpiresAt.Equal(want) {
			t.Errorf("expires_at %s, want finished_at plus the retention, %s", s.ExpiresAt, want)
		}
	})
	t.Run("canceled-before-it-ran", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, redistest.Embedded(t), setup{})
		id := h.create(t, "2026-02")
		if r := h.cancel(t, id); r.Status != http.StatusOK {
			t.Fatalf("cancel: %s", r)
		}
		check(t, h, id, h.poll(t, id, 10*time.Millisecond, 10*time.Second, hasState(t, gen.Canceled)).jobStatus(t))
	})
	t.Run("canceled-while-it-ran", func(t *testing.T) {
		t.Parallel()
		gate := make(chan struct{})
		h := newHarness(t, redistest.Embedded(t), setup{Worker: true, Ledger: gateLedger{inner: report.NewSyntheticLedger(smallRows), gate: gate}})
		t.Cleanup(func() { close(gate) })
		id := h.create(t, "2026-02")
		h.poll(t, id, 10*time.Millisecond, 10*time.Second, hasState(t, gen.Running))
		h.cancel(t, id)
		check(t, h, id, h.poll(t, id, 10*time.Millisecond, 10*time.Second, hasState(t, gen.Canceled)).jobStatus(t))
	})
}
