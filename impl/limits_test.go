package impl_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/store"
)

// checkRateLimited fails t unless r is a 429 problem, and returns its Retry-After.
func checkRateLimited(t *testing.T, what string, r *response) int {
	t.Helper()
	if r.Status != http.StatusTooManyRequests {
		t.Fatalf("%s: %s, want 429", what, r)
	}
	if p := r.problem(t); p.Type != "/problems/rate-limited" {
		t.Errorf("%s: problem type %q, want /problems/rate-limited", what, p.Type)
	}
	n, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || n < 1 {
		t.Fatalf("%s: Retry-After %q, want a whole number of seconds, at least 1", what, r.Header.Get("Retry-After"))
	}
	return n
}

// TestSubmitRate: a client's burst of submissions is honoured exactly, the next is a 429 with a
// Retry-After that is enough, and another client is unaffected. Replays of a key are not submissions.
func TestSubmitRate(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		h := newHarness(t, b, setup{APIKeys: twoClients(), Limits: jobs.Limits{SubmitsPerSecond: 2, SubmitBurst: 3}})
		first := h.as(t, acmeKey, http.MethodPost, "/v1/reports", `{"range":"2026-Q1"}`, "Idempotency-Key", "replayed")
		if first.Status != http.StatusAccepted {
			t.Fatalf("1st POST: %s", first)
		}
		for i := 2; i <= 3; i++ {
			if r := h.as(t, acmeKey, http.MethodPost, "/v1/reports", `{"range":"2026-Q1"}`); r.Status != http.StatusAccepted {
				t.Fatalf("POST %d of a burst of 3: %s", i, r)
			}
		}
		wait := checkRateLimited(t, "4th POST", h.as(t, acmeKey, http.MethodPost, "/v1/reports", `{"range":"2026-Q1"}`))
		limited := time.Now()

		// A replay answers with its job, limit or not.
		if r := h.as(t, acmeKey, http.MethodPost, "/v1/reports", `{"range":"2026-Q1"}`, "Idempotency-Key", "replayed"); r.Status != http.StatusAccepted || r.jobStatus(t).Id != first.jobStatus(t).Id {
			t.Errorf("replay at the limit: %s, want 202 with job %s", r, first.jobStatus(t).Id)
		}
		// globex has an allowance of its own.
		for i := 1; i <= 3; i++ {
			if r := h.as(t, globexKey, http.MethodPost, "/v1/reports", `{"range":"2026-Q1"}`); r.Status != http.StatusAccepted {
				t.Errorf("globex's POST %d while acme is limited: %s", i, r)
			}
		}
		checkRateLimited(t, "globex's 4th POST", h.as(t, globexKey, http.MethodPost, "/v1/reports", `{"range":"2026-Q1"}`))

		// Retry-After (1 s, rounded up from 0.5 s) refills two submissions at 2 a second, not the burst
		// of 3 (a third only if the machine is slow enough for another half second to pass).
		time.Sleep(time.Until(limited.Add(time.Duration(wait) * time.Second)))
		accepted := 0
		for range 5 {
			r := h.as(t, acmeKey, http.MethodPost, "/v1/reports", `{"range":"2026-Q1"}`)
			if r.Status != http.StatusAccepted {
				checkRateLimited(t, "POST after the refill", r)
				break
			}
			accepted++
		}
		if accepted < 1 || accepted > 3 {
			t.Errorf("%d POSTs accepted after waiting Retry-After (%ds), want 2", accepted, wait)
		}
	})
}

// TestRefusedSubmissionLeavesNothing: a submission refused by the limit creates no job, index entry or
// open job.
func TestRefusedSubmissionLeavesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, redistest.Embedded(t), setup{APIKeys: twoClients(), Limits: jobs.Limits{SubmitsPerSecond: 0.001, SubmitBurst: 1}})
	id := h.createAs(t, acmeKey, "2026-Q1")
	checkRateLimited(t, "2nd POST", h.as(t, acmeKey, http.MethodPost, "/v1/reports", `{"range":"2026-Q2"}`, "Idempotency-Key", "refused"))
	if got := h.listAs(t, acmeKey, ""); len(got) != 1 || got[0] != id {
		t.Errorf("acme's jobs after a refused POST: %v, want only %s", got, id)
	}
	open, err := h.Store.OpenJobs(t.Context(), "acme")
	if err != nil || len(open) != 1 {
		t.Errorf("acme's open jobs after a refused POST: %v, %v; want only %s", open, err, id)
	}
	if q, err := h.Inspector.GetQueueInfo(store.ReportQueue); err != nil || q.Size != 1 {
		t.Errorf("queue after a refused POST: %+v, %v; want 1 task", q, err)
	}
}

// TestMaxOpenJobs: a client with as many unfinished jobs as it may have is refused a new one, until one
// finishes, is canceled, or turns out to be gone; another client is unaffected.
func TestMaxOpenJobs(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		h := newHarness(t, b, setup{APIKeys: twoClients(), Limits: jobs.Limits{MaxOpenJobs: 2}})
		a := h.createAs(t, acmeKey, "2026-Q1")
		h.createAs(t, acmeKey, "2026-Q2")
		checkRateLimited(t, "3rd open job", h.as(t, acmeKey, http.MethodPost, "/v1/reports", `{"range":"2026-Q3"}`))
		g1 := h.createAs(t, globexKey, "2026-Q1")
		h.createAs(t, globexKey, "2026-Q2")
		checkRateLimited(t, "globex's 3rd open job", h.as(t, globexKey, http.MethodPost, "/v1/reports", `{"range":"2026-Q3"}`))

		// The record says open, but the task is gone (deleted behind the API's back, or expired): the
		// count heals at the cap.
		if err := h.Inspector.DeleteTask(store.ReportQueue, a); err != nil {
			t.Fatal(err)
		}
		c := h.createAs(t, acmeKey, "2026-Q3")
		checkRateLimited(t, "acme at the cap again", h.as(t, acmeKey, http.MethodPost, "/v1/reports", `{"range":"2026-Q4"}`))
		open, err := h.Store.OpenJobs(t.Context(), "acme")
		if err != nil || len(open) != 2 {
			t.Errorf("acme's open jobs: %v, %v; want 2, without the deleted %s", open, err, a)
		}

		// A canceled job is not open.
		if r := h.as(t, acmeKey, http.MethodPost, "/v1/reports/"+c+"/cancel", ""); r.Status != http.StatusOK {
			t.Fatalf("cancel of a pending job: %s", r)
		}
		h.createAs(t, acmeKey, "2026-Q4")

		// globex is still at its cap, whatever acme did.
		checkRateLimited(t, "globex still at its cap", h.as(t, globexKey, http.MethodPost, "/v1/reports", `{"range":"2026-Q3"}`))
		if r := h.as(t, globexKey, http.MethodPost, "/v1/reports/"+g1+"/cancel", ""); r.Status != http.StatusOK {
			t.Fatalf("globex's cancel: %s", r)
		}
		h.createAs(t, globexKey, "2026-Q3")
	})
}

// TestMaxOpenJobsFinished: a job the worker finishes is no longer open.
func TestMaxOpenJobsFinished(t *testing.T) {
	t.Parallel()
	h := newHarness(t, redistest.Embedded(t), setup{Worker: true, Limits: jobs.Limits{MaxOpenJobs: 1}})
	for i := range 3 {
		id := h.create(t, "2026-02")
		h.poll(t, id, 10*time.Millisecond, 10*time.Second, is303)
		if i == 0 {
			// The worker closes the job as it finishes; the count must not even need healing.
			if open, err := h.Store.OpenJobs(t.Context(), jobs.Anonymous); err != nil || len(open) != 0 {
				t.Errorf("open jobs after the only one finished: %v, %v; want none", open, err)
			}
		}
	}
}

// TestLimitsHoldForRetriedKeys retries a refused submission with its Idempotency-Key, as a client should:
// at once it is still refused (the key's claim must not let it past the limit), and once the limit
// allows it, it is accepted as the new job it is (not answered as an expired one).
func TestLimitsHoldForRetriedKeys(t *testing.T) {
	t.Parallel()
	t.Run("rate", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, redistest.Embedded(t), setup{Limits: jobs.Limits{SubmitsPerSecond: 0.001, SubmitBurst: 1}})
		h.create(t, "2026-Q1")
		for i := range 3 {
			key := "retry-" + strconv.Itoa(i)
			checkRateLimited(t, "POST over the rate", h.as(t, "", http.MethodPost, "/v1/reports", `{"range":"2026-Q2"}`, "Idempotency-Key", key))
			r := h.as(t, "", http.MethodPost, "/v1/reports", `{"range":"2026-Q2"}`, "Idempotency-Key", key)
			if r.Status != http.StatusTooManyRequests {
				t.Errorf("the same POST retried at once with its key: %s, want 429", r)
			}
		}
		if got := h.listAs(t, "", ""); len(got) != 1 {
			t.Errorf("with a rate of one submission, the client has %d jobs: %v", len(got), got)
		}
	})
	t.Run("open-jobs", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, redistest.Embedded(t), setup{Limits: jobs.Limits{MaxOpenJobs: 1}})
		h.create(t, "2026-Q1")
		checkRateLimited(t, "2nd open job", h.as(t, "", http.MethodPost, "/v1/reports", `{"range":"2026-Q2"}`, "Idempotency-Key", "k"))
		if r := h.as(t, "", http.MethodPost, "/v1/reports", `{"range":"2026-Q2"}`, "Idempotency-Key", "k"); r.Status != http.StatusTooManyRequests {
			t.Errorf("the same POST retried at once with its key: %s, want 429", r)
		}
		if open, err := h.Store.OpenJobs(t.Context(), jobs.Anonymous); err != nil || len(open) != 1 {
			t.Errorf("open jobs with a cap of 1: %v, %v", open, err)
		}
	})
	t.Run("open-jobs-retried-later", func(t *testing.T) {
		t.Parallel()
		clk := &clock{}
		h := newHarness(t, redistest.Embedded(t), setup{Clock: clk, Limits: jobs.Limits{MaxOpenJobs: 1}})
		first := h.create(t, "2026-Q1")
		checkRateLimited(t, "2nd open job", h.as(t, "", http.MethodPost, "/v1/reports", `{"range":"2026-Q2"}`, "Idempotency-Key", "k"))
		// The client waits for its first job to end (here: cancels it), a minute later, then retries.
		clk.Set(time.Now().Add(time.Minute))
		if r := h.as(t, "", http.MethodPost, "/v1/reports/"+first+"/cancel", ""); r.Status != http.StatusOK {
			t.Fatalf("cancel: %s", r)
		}
		if r := h.as(t, "", http.MethodPost, "/v1/reports", `{"range":"2026-Q2"}`, "Idempotency-Key", "k"); r.Status != http.StatusAccepted {
			t.Errorf("the refused POST retried with its key once the client is under its cap: %s, want 202", r)
		}
	})
}

// TestRateLimitFields: every submission a rate limit applies to says where its client stands, in the
// RateLimit and RateLimit-Policy fields (draft-ietf-httpapi-ratelimit-headers-11), a refused one and an
// Idempotency-Key replay included; a refusal's detail names the limit that was met; without a rate
// limit, no such fields.
func TestRateLimitFields(t *testing.T) {
	t.Parallel()
	// One submission every 100 s, in bursts of 3: no call here takes a measurable share of that.
	h := newHarness(t, redistest.Embedded(t), setup{APIKeys: twoClients(), Limits: jobs.Limits{SubmitsPerSecond: 0.01, SubmitBurst: 3}})
	const policy = `"submissions";q=3;w=300`
	check := func(what string, r *response, available, window int) {
		t.Helper()
		if got := r.Header.Get("RateLimit-Policy"); got != policy {
			t.Errorf("%s: RateLimit-Policy %q, want %q", what, got, policy)
		}
		var gotAvailable, gotWindow int
		if n, err := fmt.Sscanf(r.Header.Get("RateLimit"), `"submissions";r=%d;t=%d`, &gotAvailable, &gotWindow); n != 2 || err != nil ||
			gotAvailable != available || gotWindow > window || gotWindow < window-2 {
			t.Errorf("%s: RateLimit %q, want %d available within just under %d s", what, r.Header.Get("RateLimit"), available, window)
		}
	}
	post := func(header ...string) *response {
		t.Helper()
		return h.as(t, acmeKey, http.MethodPost, "/v1/reports", `{"range":"2026-Q1"}`, header...)
	}
	first := post("Idempotency-Key", "first")
	if first.Status != http.StatusAccepted {
		t.Fatalf("1st POST: %s", first)
	}
	check("1st POST", first, 2, 100)
	check("2nd POST", post(), 1, 200)
	check("3rd POST", post(), 0, 300)
	refused := post()
	retry := checkRateLimited(t, "4th POST", refused)
	check("4th POST", refused, 0, retry)
	if d := refused.problem(t).Detail; !strings.Contains(d, "0.01 submissions a second, in bursts of up to 3") {
		t.Errorf("the 429's detail %q does not name the limit", d)
	}
	replay := post("Idempotency-Key", "first")
	if replay.Status != http.StatusAccepted || replay.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %s", replay)
	}
	check("a replay, which takes nothing", replay, 0, 300)
	// Other answers than a submission's carry none.
	if r := h.as(t, acmeKey, http.MethodGet, "/v1/reports/"+first.jobStatus(t).Id.String(), ""); r.Header.Get("RateLimit") != "" || r.Header.Get("RateLimit-Policy") != "" {
		t.Errorf("a status read carries RateLimit fields: %s", r)
	}

	t.Run("cap", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, redistest.Embedded(t), setup{APIKeys: twoClients(), Limits: jobs.Limits{MaxOpenJobs: 1}})
		h.createAs(t, acmeKey, "2026-Q1")
		r := h.as(t, acmeKey, http.MethodPost, "/v1/reports", `{"range":"2026-Q2"}`)
		checkRateLimited(t, "2nd open job", r)
		if d := r.problem(t).Detail; !strings.Contains(d, "as many unfinished jobs as it may have, 1;") {
			t.Errorf("the 429's detail %q does not name the limit", d)
		}
		if r.Header.Get("RateLimit") != "" || r.Header.Get("RateLimit-Policy") != "" {
			t.Errorf("RateLimit fields without a rate limit: %s", r)
		}
	})
}
