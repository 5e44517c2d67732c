package impl_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/testkit"
)

// awaitWaiters waits until requests wait for n jobs.
func awaitWaiters(t *testing.T, h *harness, n int) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
		if got := h.Waiters.Len(); got < n {
			return fmt.Errorf("requests wait for %d jobs, want %d", got, n)
		}
		return nil
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
		// From the finish event, not from the release: the job's last days take their own time after the
		// release (1.2 s once, under the race detector on a busy machine), and that is not the wait's.
		// Woken, the answer comes in milliseconds; a re-read without the event would come 5-15 s later.
		sinceFinish := a.at.Sub(finished)
		t.Logf("answered %s after the finish event, %s after the job's release", sinceFinish.Round(100*time.Microsecond), a.at.Sub(released).Round(100*time.Microsecond))
		if !finished.IsZero() && sinceFinish > time.Second {
			t.Errorf("the waiting GET was answered %s after the job's finish event, want well under 1 s", sinceFinish)
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
		prev := stats()
		// Each try counts the commands of the 250 ms it waits, so no interval is needed between them.
		testkit.Eventually(t, 10*time.Second, 0, func() error {
			time.Sleep(250 * time.Millisecond)
			cur := stats()
			quiet, _ := total(prev, cur)
			prev = cur
			if reads := cur["sismember"] - launched["sismember"]; reads < jobs*perJob || quiet != 0 {
				return fmt.Errorf("Redis did not go quiet: %d job reads for %d waiting requests, %d commands in the last 250 ms (they keep reading)",
					reads, jobs*perJob, quiet)
			}
			return nil
		})

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
		h.startWorker(t, setup{})
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
