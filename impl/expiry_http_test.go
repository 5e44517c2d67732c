package impl_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/testkit"
)

// everyURL is what job id answers on each of its URLs: its status, its result and its cancel, by request.
func everyURL(t *testing.T, h *harness, id string) map[string]*response {
	t.Helper()
	return map[string]*response{
		"GET /v1/reports/" + id:              h.get(t, "/v1/reports/"+id),
		"GET /v1/reports/" + id + "/result":  h.get(t, "/v1/reports/"+id+"/result"),
		"POST /v1/reports/" + id + "/cancel": h.cancel(t, id),
	}
}

// checkGone checks that job id answers 410 on its status, its result and its cancel.
func checkGone(t *testing.T, h *harness, id string) {
	t.Helper()
	for path, r := range everyURL(t, h, id) {
		got := errorOf(r)
		want := errorWant{Status: 410, ContentType: problemJSON, Type: "/problems/job-expired", ProblemStatus: 410}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s of an expired job (-want +got):\n%s\nbody: %s", path, diff, r.Body)
		}
	}
}

// TestExpiredJob checks 410 for a done job whose retention passed, two ways: a server clock moved past
// the retention (the precise boundary, with asynq still holding the task), and asynq's janitor deleting
// the task for real (then only the tombstone tells 410 from 404).
func TestExpiredJob(t *testing.T) {
	t.Parallel()
	t.Run("expired-by-clock", func(t *testing.T) {
		t.Parallel()
		redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
			clk := &clock{}
			const retention = time.Hour
			h := newHarness(t, b, setup{Worker: true, Clock: clk, Policy: jobs.Policy{Retention: retention}})
			// asynq stores completion times in whole seconds.
			before := time.Now().Truncate(time.Second)
			id, _ := h.createDone(t, "2026-Q1")
			after := time.Now()

			clk.Set(before.Add(retention - time.Nanosecond))
			if r := h.get(t, "/v1/reports/"+id); r.Status != http.StatusSeeOther {
				t.Errorf("before the retention ran out: %s", r)
			}
			if r := h.get(t, "/v1/reports/"+id+"/result"); r.Status != http.StatusOK {
				t.Errorf("result before the retention ran out: %d", r.Status)
			}
			clk.Set(after.Add(retention))
			checkGone(t, h, id)
			clk.Reset()
			if r := h.get(t, "/v1/reports/"+id); r.Status != http.StatusSeeOther {
				t.Errorf("back on the real clock: %s", r)
			}
		})
	})
	t.Run("expired-by-janitor", func(t *testing.T) {
		t.Parallel()
		redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
			h := newHarness(t, b, setup{Worker: true, Policy: jobs.Policy{Retention: 2 * time.Second}})
			id := h.create(t, "2026-02")
			h.poll(t, id, 10*time.Millisecond, 10*time.Second, is303)
			h.poll(t, id, 100*time.Millisecond, 10*time.Second, func(r *response) bool { return r.Status == http.StatusGone })
			// Once the janitor has deleted the task, the tombstone alone answers.
			waitDeleted(t, h, id)
			checkGone(t, h, id)
		})
	})
}

// TestTombstoneRunsOut follows ids past the end of their tombstones: 410 for the tombstone period after
// the retention, then 404. Only miniredis can move its TTL clock forward, so only it runs this.
func TestTombstoneRunsOut(t *testing.T) {
	t.Parallel()
	t.Run("done", func(t *testing.T) {
		t.Parallel()
		m := miniredis.RunT(t) // without ClockTTL: TTLs move only with FastForward
		h := newHarness(t, redistest.Backend{Name: "miniredis", Addr: m.Addr()}, setup{Worker: true, Policy: jobs.Policy{Retention: time.Second}})
		id := h.create(t, "2026-02")
		h.poll(t, id, 10*time.Millisecond, 10*time.Second, is303)
		waitDeleted(t, h, id)
		checkGone(t, h, id)

		// The harness's store keeps tombstones for an hour after the retention.
		m.FastForward(time.Hour)
		checkGone(t, h, id)
		m.FastForward(2 * time.Minute)
		checkNotFound(t, h, id)
	})
	t.Run("failed", func(t *testing.T) {
		t.Parallel()
		m := miniredis.RunT(t)
		clk := &clock{}
		h := newHarness(t, redistest.Backend{Name: "miniredis", Addr: m.Addr()}, setup{
			Worker: true, Clock: clk, Ledger: failingLedger{err: errors.New("no ledger")},
			Policy: jobs.Policy{MaxRetry: 0, Retention: time.Hour},
		})
		id := h.create(t, "2026-02")
		h.poll(t, id, 20*time.Millisecond, 10*time.Second, hasState(t, gen.Failed))

		// Sixty days on, every tombstone this harness writes has run out (in production, with a 30-day
		// tombstone period, too), while asynq keeps archived tasks for 90 days.
		const later = 60 * 24 * time.Hour
		clk.Set(time.Now().Add(later))
		m.FastForward(later)
		checkNotFound(t, h, id)
	})
}

// TestLifetimesAsDocumented follows finished jobs through the lifetimes docs/api.md gives them, on
// clocks moved by hand: readable until their expiry (the 303's Expires, a status's expires_at), then
// 410 for the tombstone period, then 404, whether asynq still holds their task (the API's clock decides)
// or not (the tombstone's TTL does: miniredis moves it only with FastForward).
func TestLifetimesAsDocumented(t *testing.T) {
	t.Parallel()
	const tombstone = 10 * time.Second
	// timeline checks the answers around job id's expiry on the API's clock: readable (by readable)
	// just before it, 410 from it, 404 from the tombstone period after it.
	timeline := func(t *testing.T, h *harness, clk *clock, id string, expires time.Time, readable func(*response) bool) {
		t.Helper()
		clk.Set(expires.Add(-time.Nanosecond))
		if r := h.get(t, "/v1/reports/"+id); !readable(r) {
			t.Errorf("just before its expiry %s: %s", expires, r)
		}
		clk.Set(expires)
		checkGone(t, h, id)
		clk.Set(expires.Add(tombstone - time.Nanosecond))
		checkGone(t, h, id)
		clk.Set(expires.Add(tombstone))
		checkNotFound(t, h, id)
	}
	pttl := func(t *testing.T, h *harness, key string) time.Duration {
		t.Helper()
		d, err := h.Redis.PTTL(context.Background(), key).Result()
		if err != nil {
			t.Fatalf("PTTL %s: %v", key, err)
		}
		return d
	}
	t.Run("done-task-kept", func(t *testing.T) {
		t.Parallel()
		clk := &clock{}
		h := newHarness(t, redistest.Embedded(t), setup{Worker: true, Clock: clk, Policy: jobs.Policy{Retention: time.Hour, Tombstone: tombstone}})
		id := h.create(t, "2026-02")
		done := h.poll(t, id, 10*time.Millisecond, 10*time.Second, is303)
		expires, err := http.ParseTime(done.Header.Get("Expires"))
		if err != nil {
			t.Fatalf("the 303's Expires: %v", err)
		}
		timeline(t, h, clk, id, expires, is303)
	})
	t.Run("failed-task-kept", func(t *testing.T) {
		t.Parallel()
		clk := &clock{}
		h := newHarness(t, redistest.Embedded(t), setup{Worker: true, Clock: clk, Ledger: failingLedger{err: errors.New("no ledger")},
			Policy: jobs.Policy{MaxRetry: 0, Retention: time.Hour, Tombstone: tombstone}})
		id := h.create(t, "2026-02")
		s := h.poll(t, id, 10*time.Millisecond, 10*time.Second, hasState(t, gen.Failed)).jobStatus(t)
		timeline(t, h, clk, id, *s.ExpiresAt, hasState(t, gen.Failed))
	})
	t.Run("done-task-deleted", func(t *testing.T) {
		t.Parallel()
		m := miniredis.RunT(t) // without ClockTTL: TTLs move only with FastForward
		h := newHarness(t, redistest.Backend{Name: "miniredis", Addr: m.Addr()}, setup{Worker: true,
			Policy: jobs.Policy{Retention: 2 * time.Second, Tombstone: tombstone}})
		before := time.Now()
		id := h.create(t, "2026-02")
		done := h.poll(t, id, 10*time.Millisecond, 10*time.Second, is303)
		after := time.Now()
		expires, err := http.ParseTime(done.Header.Get("Expires"))
		if err != nil {
			t.Fatalf("the 303's Expires: %v", err)
		}
		waitDeleted(t, h, id)
		// The tombstone was written when the job finished, between before and after, to run out the
		// tombstone period after its expiry.
		left := pttl(t, h, "reportd:{"+id+"}:tomb")
		if lo, hi := time.Until(expires.Add(tombstone))-time.Until(after), expires.Add(tombstone).Sub(before); left < lo || left > hi {
			t.Fatalf("the tombstone's TTL is %s, want it to run out %s after the expiry %s: between %s and %s", left, tombstone, expires, lo, hi)
		}
		m.FastForward(left - time.Millisecond)
		checkGone(t, h, id)
		m.FastForward(time.Millisecond)
		checkNotFound(t, h, id)
	})
	t.Run("canceled-before-it-ran", func(t *testing.T) {
		t.Parallel()
		m := miniredis.RunT(t)
		clk := &clock{}
		const retention = 2 * time.Second
		h := newHarness(t, redistest.Backend{Name: "miniredis", Addr: m.Addr()}, setup{Clock: clk,
			Policy: jobs.Policy{Retention: retention, Tombstone: tombstone}})
		id := h.create(t, "2026-02")
		r := h.cancel(t, id)
		s := r.jobStatus(t)
		if r.Status != http.StatusOK || s.Status != gen.Canceled || s.ExpiresAt == nil {
			t.Fatalf("cancel of a pending job: %s", r)
		}
		// Both written as it was canceled: the record for the retention, the tombstone the tombstone
		// period longer.
		if got := pttl(t, h, "reportd:{"+id+"}:canceled"); got != retention {
			t.Errorf("the canceled record's TTL is %s, want the retention, %s", got, retention)
		}
		if got := pttl(t, h, "reportd:{"+id+"}:tomb"); got != retention+tombstone {
			t.Errorf("the tombstone's TTL is %s, want %s", got, retention+tombstone)
		}
		expires := *s.ExpiresAt
		clk.Set(expires.Add(-time.Millisecond))
		m.FastForward(retention - time.Millisecond)
		if r := h.get(t, "/v1/reports/"+id); !hasState(t, gen.Canceled)(r) {
			t.Errorf("just before its expiry: %s", r)
		}
		clk.Set(expires)
		m.FastForward(time.Millisecond)
		checkGone(t, h, id)
		clk.Set(expires.Add(tombstone - time.Millisecond))
		m.FastForward(tombstone - time.Millisecond)
		checkGone(t, h, id)
		clk.Set(expires.Add(tombstone))
		m.FastForward(time.Millisecond)
		checkNotFound(t, h, id)
	})
}

// waitDeleted waits for asynq's janitor to delete job id's task.
func waitDeleted(t *testing.T, h *harness, id string) {
	t.Helper()
	testkit.Eventually(t, 5*time.Second, 50*time.Millisecond, func() error {
		if _, err := h.Inspector.GetTaskInfo(store.ReportQueue, id); !errors.Is(err, asynq.ErrTaskNotFound) {
			return fmt.Errorf("the janitor did not delete the task of job %s: %v", id, err)
		}
		return nil
	})
}

// checkNotFound checks that job id answers 404 on its status, its result and its cancel.
func checkNotFound(t *testing.T, h *harness, id string) {
	t.Helper()
	for path, r := range everyURL(t, h, id) {
		if p := r.problem(t); r.Status != http.StatusNotFound || p.Type != "/problems/job-not-found" {
			t.Errorf("%s after the tombstone ran out: %s, want 404 job-not-found", path, r)
		}
	}
}
