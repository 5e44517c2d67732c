package impl_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/store"
)

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
		h, key, id := submitTwice(t, b, "reuse-")

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
			if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/v1/reports/"+id+"/result" || r.Header.Get("Idempotent-Replayed") != "true" {
				t.Errorf("replay of %q once done: %s, want 303 to the job's result, Idempotent-Replayed: true", body, r)
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
		h, key, id := submitTwice(t, b, "deleted-")
		h.poll(t, id, 20*time.Millisecond, 10*time.Second, is303)
		if r := h.del(t, id); r.Status != http.StatusNoContent {
			t.Fatalf("DELETE: %s", r)
		}

		r := h.post(t, `{"range":"2026-01"}`, "Idempotency-Key", key)
		if r.Status != http.StatusGone {
			t.Errorf("replay of a deleted job's key: %d %s %s, want 410 (the job is gone; use a new key)", r.Status, r.Header.Get("Location"), r.Body)
		}
		// A replay that resurrected the job would have enqueued its task before answering, and the task
		// would stay in asynq (pending, active, or completed for the retention) whenever it ran: judged
		// from the queue, not by waiting for a run.
		if info, err := h.Inspector.GetTaskInfo(store.QueueOf(id), id); !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
			t.Errorf("after the replay of a deleted job's key, its task is %v (%v), want none", info, err)
		}
		checkGone(t, h, id)
		if n := h.logged(id, "report started"); n != 1 {
			t.Errorf("the deleted job ran %d times, want once", n)
		}
	})
}

// submitTwice starts a harness on b with a worker, submits January to it with a fresh Idempotency-Key
// (prefix and a UUID) and replays it at once: the first answer is a 202 that is no replay, the second
// names the same job with Idempotent-Replayed: true. It returns the harness, the key and the job's id.
func submitTwice(t *testing.T, b redistest.Backend, prefix string) (*harness, string, string) {
	t.Helper()
	h := newHarness(t, b, setup{Worker: true, Waiters: true, Ledger: fixedLedger{}})
	key := prefix + uuid.NewString()
	first := h.post(t, `{"range":"2026-01"}`, "Idempotency-Key", key)
	if first.Status != http.StatusAccepted {
		t.Fatalf("first submission: %s", first)
	}
	if got := first.Header.Get("Idempotent-Replayed"); got != "" {
		t.Errorf("first submission's Idempotent-Replayed = %q, want none", got)
	}
	// The same job: its status URL while it is unfinished, its result's once done (a worker may finish
	// a month of few rows between the two requests).
	r := h.post(t, `{"range":"2026-01"}`, "Idempotency-Key", key)
	sameJob := (r.Status == http.StatusAccepted && r.Header.Get("Location") == first.Header.Get("Location")) ||
		(r.Status == http.StatusSeeOther && r.Header.Get("Location") == first.Header.Get("Location")+"/result")
	if r.Header.Get("Idempotent-Replayed") != "true" || !sameJob {
		t.Errorf("replay at once: %s, want the first's job with Idempotent-Replayed: true", r)
	}
	return h, key, jobIDOf(t, first.Header.Get("Location"))
}
