package faults

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/testkit"
	"github.com/reportd/reportd/internal/testkit/reportdproc"
)

// TestWorkerSIGKILLMidJob: a worker killed with SIGKILL in the middle of a job leaves the job active
// in Redis under a lease nobody renews. Once a worker is back, asynq's recoverer (30 s lease, a
// further 30 s cutoff, once a minute) hands it out again, and it finishes with the report an
// undisturbed run makes. Its status, polled every 500 ms throughout, never reads 404 or 410.
func TestWorkerSIGKILLMidJob(t *testing.T) {
	skipShort(t, "waits 60-120 s for asynq's crash recovery")
	t.Parallel()
	const rng, rows = "2026-Q1", 20_000_000 // about 1.8 G orders: 1.5-2 s on an idle core
	redis := startRedis(t)
	vars := reportdVars(redis.URL, map[string]string{
		"REPORTD_ROWS_PER_DAY": strconv.Itoa(rows), "REPORTD_CONCURRENCY": "1",
	})
	api := reportdproc.Start(t, "api", []string{"api"}, vars)
	w1 := reportdproc.Start(t, "worker-1", []string{"worker"}, vars)
	c := newClient()

	id := submit(t, c, api.URL, rng)
	submitted := time.Now()
	polls := startPoller(t, func() string { return api.URL }, id, 500*time.Millisecond)
	if _, ok := w1.Log.WaitFor(20*time.Second, w1.Exited(), testkit.JobMsg("report started", id)); !ok {
		t.Fatalf("worker-1 did not start job %s in 20s", id)
	}
	var before jobStatus
	testkit.Eventually(t, 20*time.Second, 20*time.Millisecond, func() error {
		s, ok := statusOf(getStatus(c, api.URL, id))
		if ok && s.Status == "done" {
			t.Fatalf("job %s was done before the worker could be killed mid-run: make it longer", id)
		}
		if !ok || s.Status != "running" || s.Progress < 0.1 {
			return fmt.Errorf("job %s did not make progress (last %+v)", id, s)
		}
		before = s
		return nil
	})
	w1.Kill()
	killed := time.Now()
	if _, ok := w1.Log.WaitFor(0, nil, testkit.JobMsg("report done", id)); ok {
		t.Fatalf("worker-1 finished job %s before it was killed: make the job longer", id)
	}
	t.Logf("worker-1 SIGKILLed %.1fs after the submission, the job %s at %.0f%% of attempt %d",
		killed.Sub(submitted).Seconds(), before.Status, before.Progress*100, before.Attempt)

	// A supervisor restarts the worker at once: asynq's recoverer in the new worker runs at its start
	// (too early: the lease is still valid) and once a minute after.
	w2 := reportdproc.Start(t, "worker-2", []string{"worker"}, vars)
	const limit = 130 * time.Second
	select {
	case <-polls.done:
	case <-time.After(limit - time.Since(killed)):
		t.Fatalf("job %s not done %s after the kill; polls: %s", id, limit, transitions(polls.record(), killed))
	}
	time.Sleep(time.Second) // a couple of polls of the done job
	polls.halt()
	record := polls.record()

	var doneAt time.Time
	bad := map[string]int{}
	unanswered := 0 // polls the API did not answer within 2 s: a busy machine, not a wrong answer
	for _, p := range record {
		if p.status == http.StatusSeeOther && doneAt.IsZero() {
			doneAt = p.at
		}
		switch {
		case p.err != nil:
			unanswered++
		case p.status != http.StatusOK && p.status != http.StatusSeeOther:
			bad[strconv.Itoa(p.status)]++
		}
	}
	restarted, _ := w2.Log.WaitFor(0, nil, testkit.JobMsg("report started", id))
	t.Logf("timeline from the kill: worker-2 up %+.1fs, job restarted by worker-2 %+.1fs (attempt %v), first 303 %+.1fs",
		w2.Started.Sub(killed).Seconds(), restarted.At.Sub(killed).Seconds(), restarted.Fields["attempt"], doneAt.Sub(killed).Seconds())
	t.Logf("SIGKILL recovery: %.1fs from the kill to the first 303 (%d polls: %s)", doneAt.Sub(killed).Seconds(), len(record), summarize(record))
	t.Logf("status transitions: %s", transitions(record, killed))
	if len(bad) > 0 {
		t.Errorf("status polls answered other than 200 or 303 while the job recovered: %s", formatCounts(bad))
	}
	if unanswered > 0 {
		t.Logf("%d of %d polls got no answer within their 2s timeout (the machine was busy)", unanswered, len(record))
	}
	if n := len(w2.Log.All(testkit.JobMsg("report done", id))); n != 1 {
		t.Errorf("worker-2 logged report done for job %s %d times, want once", id, n)
	}
	checkResult(t, c, api.URL, id, rng, rows)
}

// TestRedisRestart: with the append-only file fsynced on every write, every job that got a 202
// before redis-server was stopped (SIGTERM) or killed (SIGKILL) is still there when it comes back,
// and finishes. Without persistence (the control) a restart loses the jobs.
//
// A job whose attempt ends while Redis is down waits for it (tasks.DefaultSaveRetryFor, see
// TestRedisBlipAsJobEnds), so jobs end seconds after the restart; the test still allows 130 s, the
// time asynq's recoverer would take to hand out a job whose attempt was lost. So that the waits
// overlap (go test runs only GOMAXPROCS tests at once), the cases run side by side in this one test,
// and their subtests only check what came of them.
func TestRedisRestart(t *testing.T) {
	skipShort(t, "restarts redis-server with jobs in flight, and allows 130 s for them to finish")
	t.Parallel()
	const rng, rows, n = "2026-01", 8_000_000, 16 // about 0.25 s a job on an idle core
	type scenario struct {
		name     string
		conf     []string
		kill     bool
		durable  bool
		rd       *reportdproc.Proc
		ids      []string
		polls    *poller
		down, up time.Time
		during   exchange // a status read while Redis was down
		states   []string // the jobs' statuses just before the restart
	}
	scenarios := []*scenario{
		{name: "SIGTERM-aof-always", conf: durableConf, durable: true},
		{name: "SIGKILL-aof-always", conf: durableConf, kill: true, durable: true},
		{name: "SIGKILL-no-persistence", kill: true},
	}
	c := newClient()
	for _, sc := range scenarios {
		redis := startRedis(t, sc.conf...)
		sc.rd = reportdproc.Start(t, "reportd-"+sc.name, nil, reportdVars(redis.URL, map[string]string{
			"REPORTD_ROWS_PER_DAY": strconv.Itoa(rows), "REPORTD_CONCURRENCY": "2",
		}))
		for range n {
			sc.ids = append(sc.ids, submit(t, c, sc.rd.URL, rng))
		}
		sc.polls = startPoller(t, func() string { return sc.rd.URL }, sc.ids[n-1], 100*time.Millisecond)
		time.Sleep(400 * time.Millisecond)
		for _, id := range sc.ids {
			s, _ := statusOf(getStatus(c, sc.rd.URL, id))
			sc.states = append(sc.states, s.Status)
		}
		sc.down = time.Now()
		if sc.kill {
			redis.Kill()
		} else {
			redis.terminate(t)
		}
		time.Sleep(500 * time.Millisecond)
		sc.during = getStatus(c, sc.rd.URL, sc.ids[n-1])
		redis.Restart()
		sc.up = time.Now()
	}

	// Every job of the durable cases, polled together until done or 130 s after the last restart.
	var jobs []jobRef
	for _, sc := range scenarios {
		if sc.durable {
			for _, id := range sc.ids {
				jobs = append(jobs, jobRef{base: func() string { return sc.rd.URL }, id: id})
			}
		}
	}
	done, last, bad := awaitJobs(c, jobs, 130*time.Second)
	k := 0
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			how := "SIGTERM"
			if sc.kill {
				how = "SIGKILL"
			}
			t.Logf("redis-server %s with %q: jobs just before (%s); down %.0fms; a status read meanwhile: %d in %.0fms",
				how, sc.conf, formatCounts(countBy(sc.states)), sc.up.Sub(sc.down).Seconds()*1000,
				sc.during.status, sc.during.took().Seconds()*1000)
			if sc.during.status != http.StatusServiceUnavailable {
				t.Errorf("status read while Redis was down: %s; want 503", sc.during)
			}
			if !sc.durable {
				var after []string
				for _, id := range sc.ids {
					e := getStatus(c, sc.rd.URL, id)
					s, _ := statusOf(e)
					after = append(after, strings.TrimSpace(strconv.Itoa(e.status)+" "+s.Status))
				}
				lost := countBy(after)["404"]
				t.Logf("without persistence, after the restart: %s: %d of %d accepted jobs lost", formatCounts(countBy(after)), lost, n)
				if lost == 0 {
					t.Errorf("no job lost by a SIGKILL of a redis-server without persistence: the control shows nothing")
				}
				return
			}
			var open, stalled []string
			lastDone := sc.up
			for _, id := range sc.ids {
				d, l := done[k], last[k]
				k++
				if d.IsZero() {
					open = append(open, id+" ("+l+")")
					continue
				}
				lastDone = maxTime(lastDone, d)
				if d.Sub(sc.up) > 10*time.Second {
					stalled = append(stalled, fmt.Sprintf("%s %.0fs", id, d.Sub(sc.up).Seconds()))
				}
			}
			for _, b := range bad {
				t.Errorf("during or after the restart: %s", b)
			}
			if len(open) > 0 {
				t.Fatalf("%d of %d jobs accepted before the restart not done 130s after it: %s", len(open), n, strings.Join(open, "; "))
			}
			sc.polls.halt()
			record := sc.polls.record()
			t.Logf("all %d jobs done %.1fs after Redis was back; polls of the last job: %s", n, lastDone.Sub(sc.up).Seconds(), summarize(record))
			if len(stalled) > 0 {
				t.Logf("done more than 10s after Redis was back (left active by asynq, recovered by its recoverer): %s", strings.Join(stalled, ", "))
			}
			for _, p := range record {
				if p.status == http.StatusNotFound || p.status == http.StatusGone || p.status >= 500 && p.status != http.StatusServiceUnavailable {
					t.Errorf("status of job %s read %d during the restart (transitions: %s)", sc.ids[n-1], p.status, transitions(record, sc.down))
					break
				}
			}
			for _, id := range sc.ids {
				checkResult(t, c, sc.rd.URL, id, rng, rows)
			}
			runs := map[string]int{}
			for _, l := range sc.rd.Log.All(testkit.MsgIs("report done")) {
				runs[l.Str("job")]++
			}
			var twice []string
			for _, id := range sc.ids {
				switch runs[id] {
				case 0:
					t.Errorf("job %s is done, but no worker logged report done for it", id)
				case 1:
				default:
					twice = append(twice, fmt.Sprintf("%s x%d", id, runs[id]))
				}
			}
			if len(twice) > 0 {
				t.Logf("computed more than once (delivery is at least once): %s", strings.Join(twice, ", "))
			}
			if !sc.rd.Running() {
				t.Errorf("reportd exited during the Redis restart: %s", sc.rd.ExitStatus())
			}
		})
	}
}

// TestRedisUnreachable: while Redis is stopped (or hung: SIGSTOP), the API answers within 2 s, with
// 503 problem+json and a Retry-After, never a hang or a 500; /readyz answers 503, /healthz 200. When
// Redis is back on the same address, reportd recovers by itself: new jobs are accepted and finish.
func TestRedisUnreachable(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"stopped", "hung"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			const rng, rows = "2026-01", 500
			redis := startRedis(t, durableConf...)
			rd := reportdproc.Start(t, "reportd", nil, reportdVars(redis.URL, nil))
			base := func() string { return rd.URL }
			c := newClient()
			old := submit(t, c, rd.URL, rng)
			awaitAllDone(t, c, base, []string{old}, 20*time.Second)

			if how == "stopped" {
				redis.terminate(t)
			} else {
				redis.signal(t, syscall.SIGSTOP)
			}
			outage := time.Now()
			reqs := []struct {
				name, method, path, body string
				want                     int
				problem                  bool
			}{
				{name: "POST /v1/reports", method: http.MethodPost, path: "/v1/reports", body: `{"range":"2026-01"}`, want: 503, problem: true},
				{name: "GET status", method: http.MethodGet, path: "/v1/reports/" + old, want: 503, problem: true},
				{name: "GET status of an unknown id", method: http.MethodGet, path: "/v1/reports/" + uuid.NewString(), want: 503, problem: true},
				{name: "GET result", method: http.MethodGet, path: "/v1/reports/" + old + "/result", want: 503, problem: true},
				{name: "GET list", method: http.MethodGet, path: "/v1/reports", want: 503, problem: true},
				{name: "GET /readyz", method: http.MethodGet, path: "/readyz", want: 503},
				{name: "GET /healthz", method: http.MethodGet, path: "/healthz", want: 200},
			}
			const limit = 2 * time.Second
			slowest := map[string]time.Duration{}
			var mu sync.Mutex
			check := func(round string, i int) {
				r := reqs[i]
				e := do(c, r.method, rd.URL+r.path, nil, r.body, 10*time.Second)
				mu.Lock()
				slowest[round+": "+r.name] = max(slowest[round+": "+r.name], e.took())
				mu.Unlock()
				switch {
				case e.err != nil || e.status != r.want:
					t.Errorf("%s, %s, Redis %s: %s; want %d", round, r.name, how, e, r.want)
				case e.took() > limit:
					t.Errorf("%s, %s, Redis %s: answered %d after %s; want within %s", round, r.name, how, e.status, e.took().Round(time.Millisecond), limit)
				}
				if r.problem && e.err == nil && e.status == 503 {
					if ct := e.header.Get("Content-Type"); ct != "application/problem+json" {
						t.Errorf("%s, %s: 503 Content-Type %q, want application/problem+json", round, r.name, ct)
					}
					if ra, err := strconv.Atoi(e.header.Get("Retry-After")); err != nil || ra < 1 {
						t.Errorf("%s, %s: 503 Retry-After %q, want whole seconds", round, r.name, e.header.Get("Retry-After"))
					}
					if !strings.Contains(string(e.body), `"status":503`) {
						t.Errorf("%s, %s: 503 body is not its problem: %s", round, r.name, truncate(e.body, 200))
					}
				}
			}
			for i := range reqs {
				check("alone", i)
			}
			// Then 8 clients at once, each sending every request: the connection pool is under pressure.
			var wg sync.WaitGroup
			for range 8 {
				for i := range reqs {
					wg.Go(func() { check("8 at once", i) })
				}
			}
			wg.Wait()
			for _, round := range []string{"alone", "8 at once"} {
				var parts []string
				for _, r := range reqs {
					parts = append(parts, fmt.Sprintf("%s %dms", r.name, slowest[round+": "+r.name].Milliseconds()))
				}
				t.Logf("Redis %s, requests %s, slowest answers: %s", how, round, strings.Join(parts, ", "))
			}
			// Stay down a while, so that the worker's loops meet the outage too.
			time.Sleep(time.Until(outage.Add(4 * time.Second)))
			if !rd.Running() {
				t.Fatalf("reportd exited while Redis was %s: %s", how, rd.ExitStatus())
			}

			if how == "stopped" {
				redis.Restart()
			} else {
				redis.signal(t, syscall.SIGCONT)
			}
			back := time.Now()
			var newID string
			var accepted202, ready time.Duration
			testkit.Eventually(t, 15*time.Second, 50*time.Millisecond, func() error {
				if newID == "" {
					e := post(c, rd.URL, rng, nil)
					if newID = accepted(e); newID != "" {
						accepted202 = e.ended.Sub(back)
					} else if e.err != nil || e.status != 503 {
						t.Errorf("POST while Redis comes back: %s; want 202 or 503", e)
					}
				}
				if ready == 0 {
					if e := do(c, http.MethodGet, rd.URL+"/readyz", nil, "", 5*time.Second); e.status == 200 {
						ready = e.ended.Sub(back)
					}
				}
				if newID == "" || ready == 0 {
					return fmt.Errorf("reportd has not recovered since Redis was back: POST accepted %v, /readyz %v", newID != "", ready != 0)
				}
				return nil
			})
			doneAt := awaitAllDone(t, c, base, []string{newID, old}, 20*time.Second)
			// Prefer: wait relies on the pub/sub subscription reportd had before the outage.
			e := post(c, rd.URL, rng, map[string]string{"Prefer": "respond-async, wait=20"})
			if e.err != nil || e.status != http.StatusSeeOther {
				t.Errorf("POST with Prefer: wait after the outage: %s; want 303 to the result", e)
			}
			t.Logf("Redis %s for %.1fs; after it was back: first 202 in %dms, /readyz 200 in %dms, that job done in %dms; a POST with Prefer: respond-async, wait=20 answered %d in %dms",
				how, back.Sub(outage).Seconds(), accepted202.Milliseconds(), ready.Milliseconds(), doneAt[newID].Sub(back).Milliseconds(), e.status, e.took().Milliseconds())
			if e.took() > 5*time.Second {
				t.Errorf("POST with Prefer: wait took %s for a job of milliseconds: the finished-job subscription did not recover, waiters fell back to their periodic re-read", e.took())
			}
			checkResult(t, c, rd.URL, newID, rng, rows)
			checkResult(t, c, rd.URL, old, rng, rows)
		})
	}
}

// TestReportdSIGTERMUnderLoad: reportd stopped with SIGTERM while 8 clients submit and poll. Requests
// in flight are answered; a request refused (the listener closed) never reached reportd; no answer
// breaks off midway. After a restart every job that got a 202 finishes; the job running at SIGTERM
// was requeued (or finished) within the shutdown timeout.
func TestReportdSIGTERMUnderLoad(t *testing.T) {
	t.Parallel()
	for _, split := range []bool{false, true} {
		name := "all-in-one"
		if split {
			name = "api+worker"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			const rng, long, rows = "2026-01", "2025-01-01..2025-12-31", 8_000_000 // 0.25 s and 3 s jobs
			const shutdown = time.Second
			redis := startRedis(t, durableConf...)
			vars := reportdVars(redis.URL, map[string]string{
				"REPORTD_ROWS_PER_DAY": strconv.Itoa(rows), "REPORTD_CONCURRENCY": "2",
				"REPORTD_SHUTDOWN_TIMEOUT": shutdown.String(),
			})
			var procs []*reportdproc.Proc
			start := func() {
				procs = nil
				if split {
					procs = append(procs, reportdproc.Start(t, "worker", []string{"worker"}, vars), reportdproc.Start(t, "api", []string{"api"}, vars))
				} else {
					procs = append(procs, reportdproc.Start(t, "reportd", nil, vars))
				}
			}
			start()
			api := procs[len(procs)-1]
			firstBase := api.URL

			type rec struct {
				exchange
				worker int
				kind   string
				key    string // the Idempotency-Key of a POST
				rng    string // the range of a POST
			}
			var (
				mu           sync.Mutex
				recs         []rec
				acceptedJobs = map[string]string{} // job id -> range
				stop         = make(chan struct{})
				wg           sync.WaitGroup
			)
			add := func(r rec) {
				mu.Lock()
				recs = append(recs, r)
				if id := accepted(r.exchange); id != "" && r.kind == "POST" {
					acceptedJobs[id] = r.rng
				}
				mu.Unlock()
			}
			stopped := func() bool {
				select {
				case <-stop:
					return true
				default:
					return false
				}
			}
			c := newClient()
			for w := range 8 {
				wg.Go(func() {
					for !stopped() {
						key := uuid.NewString()
						e := post(c, firstBase, rng, map[string]string{"Idempotency-Key": key})
						add(rec{exchange: e, worker: w, kind: "POST", key: key, rng: rng})
						id := accepted(e)
						if id == "" {
							time.Sleep(50 * time.Millisecond)
							continue
						}
						for range 30 {
							time.Sleep(100 * time.Millisecond)
							e := getStatus(c, firstBase, id)
							add(rec{exchange: e, worker: w, kind: "GET status"})
							if e.status == http.StatusSeeOther {
								e := do(c, http.MethodGet, firstBase+"/v1/reports/"+id+"/result", nil, "", 10*time.Second)
								add(rec{exchange: e, worker: w, kind: "GET result"})
							}
							if e.status != http.StatusOK || stopped() {
								break
							}
						}
					}
				})
			}

			time.Sleep(time.Second)
			longKey := uuid.NewString()
			le := post(c, firstBase, long, map[string]string{"Idempotency-Key": longKey})
			add(rec{exchange: le, worker: -1, kind: "POST", key: longKey, rng: long})
			longID := accepted(le)
			if longID == "" {
				t.Fatalf("POST of the long job: %s", le)
			}
			var running jobStatus
			testkit.Eventually(t, 15*time.Second, 20*time.Millisecond, func() error {
				s, ok := statusOf(getStatus(c, firstBase, longID))
				if ok && s.Status == "done" {
					t.Fatalf("the long job %s was not seen running (last %+v)", longID, s)
				}
				if !ok || s.Status != "running" || s.Progress <= 0 {
					return fmt.Errorf("the long job %s was not seen running (last %+v)", longID, s)
				}
				running = s
				return nil
			})
			// A request held by Prefer: wait is in flight at SIGTERM: the drain must answer it.
			waited := make(chan exchange, 1)
			go func() {
				waited <- do(c, http.MethodGet, firstBase+"/v1/reports/"+longID, map[string]string{"Prefer": "wait=30"}, "", 40*time.Second)
			}()
			time.Sleep(300 * time.Millisecond)

			term := time.Now()
			exits := make([]time.Duration, len(procs))
			var stopWG sync.WaitGroup
			for i, p := range procs {
				stopWG.Go(func() {
					var err error
					if exits[i], err = p.Stop(30 * time.Second); err != nil {
						t.Error(err)
					}
				})
			}
			time.Sleep(1500 * time.Millisecond)
			close(stop)
			wg.Wait()
			stopWG.Wait()
			held := <-waited

			var exitsTxt []string
			for i, p := range procs {
				exitsTxt = append(exitsTxt, fmt.Sprintf("%s %s in %dms", p.Name, p.ExitStatus(), exits[i].Milliseconds()))
				if p.Err() != nil {
					l, _ := p.Log.WaitFor(0, nil, func(l testkit.LogLine) bool { _, ok := l.Fields["unparsed"]; return ok })
					t.Errorf("reportd %s after SIGTERM: %v (%s), want exit 0 (a drain that ran out of time for an unused client connection: see TestSIGTERMWithUnusedConnection)",
						p.Name, p.Err(), l.Str("unparsed"))
				}
				if _, ok := p.Log.WaitFor(0, nil, testkit.MsgIs("stopped")); !ok {
					t.Errorf("reportd %s did not log stopped", p.Name)
				}
				if exits[i] > 2*shutdown+time.Second {
					t.Errorf("reportd %s took %s to exit after SIGTERM, with REPORTD_SHUTDOWN_TIMEOUT=%s", p.Name, exits[i], shutdown)
				}
			}
			t.Logf("SIGTERM with the long job %s at %.0f%%: %s", longID, running.Progress*100, strings.Join(exitsTxt, ", "))
			if held.err != nil || held.status != http.StatusOK || held.header.Get("Preference-Applied") == "" {
				t.Errorf("the Prefer: wait request in flight at SIGTERM: %s; want 200 with the current status and Preference-Applied", held)
			} else {
				s, _ := statusOf(held)
				t.Logf("the Prefer: wait request in flight at SIGTERM answered %d (%s) %dms after SIGTERM", held.status, s.Status, held.ended.Sub(term).Milliseconds())
			}

			// What became of the long job: asynq requeues a job its worker gives up at shutdown.
			insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: redis.Addr})
			defer insp.Close()
			info, err := insp.GetTaskInfo(store.QueueOf(longID), longID)
			if err != nil {
				t.Fatalf("task of the long job %s after the shutdown: %v", longID, err)
			}
			t.Logf("the long job after the shutdown: %s, retried %d, last error %q", info.State, info.Retried, info.LastErr)
			if info.State != asynq.TaskStatePending && info.State != asynq.TaskStateCompleted {
				t.Errorf("the job running at SIGTERM is %s after the shutdown; want pending (requeued) or completed", info.State)
			}

			// Every exchange, by what came of it, and whether it was sent before SIGTERM.
			outcome := map[string]int{}
			var bad []string
			for _, r := range recs {
				when := "before"
				if !r.sent.Before(term) {
					when = "after"
				}
				what := strconv.Itoa(r.status)
				if f := r.failure(); f != "" {
					what = f
					if r.conns > 1 {
						what += " (retried)"
					}
				}
				outcome[fmt.Sprintf("%s %s SIGTERM: %s", r.kind, when, what)]++
				switch f := r.failure(); {
				case f == "mid-answer":
					bad = append(bad, "broke off mid-answer: "+r.String())
				case f != "" && f != "refused" && when == "before":
					bad = append(bad, fmt.Sprintf("sent before SIGTERM, failed (%s, %d connections, reused %v): %s", f, r.conns, r.reused, r))
				case f == "" && r.status >= 500:
					bad = append(bad, "server error: "+r.String())
				}
			}
			t.Logf("%d requests: %s", len(recs), formatCounts(outcome))
			for _, b := range bad {
				t.Error(b)
			}

			// reportd again (a new port): every accepted job finishes.
			start()
			api = procs[len(procs)-1]
			ids := make([]string, 0, len(acceptedJobs))
			for id := range acceptedJobs {
				ids = append(ids, id)
			}
			sort.Strings(ids)
			restarted := time.Now()
			doneAt := awaitAllDone(t, c, func() string { return api.URL }, ids, 60*time.Second)
			last := restarted
			for _, at := range doneAt {
				last = maxTime(last, at)
			}
			t.Logf("after the restart all %d accepted jobs were done in %.1fs", len(ids), last.Sub(restarted).Seconds())
			for _, id := range ids {
				checkResult(t, c, api.URL, id, acceptedJobs[id], rows)
			}
			// A POST that got no answer may or may not have made a job: its Idempotency-Key tells.
			for _, r := range recs {
				if r.kind != "POST" || r.failure() == "" || r.failure() == "refused" {
					continue
				}
				e := post(c, api.URL, r.rng, map[string]string{"Idempotency-Key": r.key})
				t.Logf("replay of an unanswered POST (%s): %s", r.failure(), e)
			}
		})
	}
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// TestTwoAPIsTwoWorkers: two API processes and two workers on one Redis. Jobs submitted to either
// API are processed exactly once each (one report done line across the workers, the report's id the
// job's), with one worker and with two. With REPORTD_MEASURE=1 it also measures the throughput of two
// workers against one (reported, not asserted): jobs/s from the first POST to the last report done line,
// alternating one and two workers twice, with one and with two jobs at once per worker; it then runs
// alone (not in parallel), so that the measurement has the machine to itself, as far as this package
// is concerned. Without it, one round at one job per worker checks the same, beside the other tests.
func TestTwoAPIsTwoWorkers(t *testing.T) {
	skipShort(t, "runs two APIs and two workers for seconds (half a minute when it measures)")
	concs, rounds := []int{1}, 1
	if os.Getenv(redistest.MeasureEnv) == "1" {
		concs, rounds = []int{1, 2}, 2
	} else {
		t.Parallel()
	}
	const rng, rows, n = "2026-01", 8_000_000, 16 // about 0.25 s a job on an idle core
	redis := startRedis(t)
	var apis, workers []*reportdproc.Proc
	for i := range 2 {
		apis = append(apis, reportdproc.Start(t, fmt.Sprintf("api-%d", i+1), []string{"api"}, reportdVars(redis.URL, nil)))
	}
	expectedReport(t, rng, rows) // computed now, so that it does not compete with the workers later
	c := newClient()

	type batch struct {
		label string
		ids   []string
		took  time.Duration
		rate  float64
	}
	var batches []batch
	// run submits n jobs, alternately to each API, waits for each through the other API (Prefer: wait),
	// and times them by the workers' report done lines.
	run := func(label string, active []*reportdproc.Proc) batch {
		t.Helper()
		b := batch{label: label, ids: make([]string, n)}
		begin := time.Now()
		for i := range b.ids {
			b.ids[i] = submit(t, c, apis[i%2].URL, rng)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		seen := map[string]time.Time{}
		for i, id := range b.ids {
			wg.Go(func() {
				other := apis[(i+1)%2].URL
				for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
					e := do(c, http.MethodGet, other+"/v1/reports/"+id, map[string]string{"Prefer": "wait=30"}, "", 40*time.Second)
					if e.status == http.StatusSeeOther {
						mu.Lock()
						seen[id] = e.ended
						mu.Unlock()
						return
					}
					if s, ok := statusOf(e); !ok || (s.Status != "pending" && s.Status != "running") {
						t.Errorf("job %s via the other API: %s", id, e)
						return
					}
				}
				t.Errorf("job %s not done in 60s", id)
			})
		}
		wg.Wait()
		end := begin
		var slowestWake time.Duration
		doneLine := func(id string) (testkit.LogLine, bool) {
			for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				for _, w := range active {
					if ls := w.Log.All(testkit.JobMsg("report done", id)); len(ls) > 0 {
						return ls[0], true
					}
				}
				if time.Now().After(deadline) {
					return testkit.LogLine{}, false
				}
			}
		}
		for _, id := range b.ids {
			if l, ok := doneLine(id); ok {
				at, _ := time.Parse(time.RFC3339Nano, l.Str("time"))
				end = maxTime(end, at)
				if t, ok := seen[id]; ok {
					slowestWake = max(slowestWake, t.Sub(at))
				}
			}
		}
		b.took = end.Sub(begin)
		b.rate = float64(n) / b.took.Seconds()
		t.Logf("%s: %d jobs in %.2fs: %.2f jobs/s (a Prefer: wait answered at most %dms after its job's report done line)",
			label, n, b.took.Seconds(), b.rate, slowestWake.Milliseconds())
		batches = append(batches, b)
		return b
	}

	for _, conc := range concs {
		vars := reportdVars(redis.URL, map[string]string{"REPORTD_ROWS_PER_DAY": strconv.Itoa(rows), "REPORTD_CONCURRENCY": strconv.Itoa(conc)})
		startWorker := func() *reportdproc.Proc {
			w := reportdproc.Start(t, fmt.Sprintf("worker-%d", len(workers)+1), []string{"worker"}, vars)
			workers = append(workers, w)
			return w
		}
		a := startWorker()
		var ratios []string
		for round := range rounds {
			one := run(fmt.Sprintf("concurrency %d, round %d, 1 worker", conc, round+1), []*reportdproc.Proc{a})
			b := startWorker()
			two := run(fmt.Sprintf("concurrency %d, round %d, 2 workers", conc, round+1), []*reportdproc.Proc{a, b})
			if _, err := b.Stop(15 * time.Second); err != nil {
				t.Error(err)
			}
			ratios = append(ratios, fmt.Sprintf("%.2f", two.rate/one.rate))
		}
		if _, err := a.Stop(15 * time.Second); err != nil {
			t.Error(err)
		}
		t.Logf("throughput of 2 workers / 1 worker at concurrency %d per worker (%d jobs of %s at %d rows a day, %d CPUs): %s",
			conc, n, rng, rows, runtime.NumCPU(), strings.Join(ratios, ", "))
	}

	// Exactly once: one report done line per job across every worker, and its report carries its id.
	runs := map[string][]string{}
	for _, w := range workers {
		for _, l := range w.Log.All(testkit.MsgIs("report done")) {
			runs[l.Str("job")] = append(runs[l.Str("job")], w.Name)
		}
	}
	for _, b := range batches {
		total := 0
		perWorker := map[string]int{}
		for _, id := range b.ids {
			total += len(runs[id])
			if len(runs[id]) != 1 {
				t.Errorf("%s: job %s was computed %d times (%v), want once", b.label, id, len(runs[id]), runs[id])
			}
			for _, w := range runs[id] {
				perWorker[w]++
			}
		}
		if total != n {
			t.Errorf("%s: %d report done lines for its %d jobs, want %d", b.label, total, n, n)
		}
		t.Logf("%s: report done lines by worker: %s", b.label, formatCounts(perWorker))
		for i, id := range b.ids {
			checkResult(t, c, apis[(i+1)%2].URL, id, rng, rows)
		}
	}
}

// TestRedisBlipAsJobEnds: a job whose attempt ends while Redis is unreachable for a moment (its report
// cannot be saved) is done within seconds of Redis being back, with the right report. An attempt that
// failed then would be worse off: asynq v0.26.0 cannot move a task to its retry while Redis is down and
// gives up on it (its syncer's context is canceled as processor.retry returns, since hibiken/asynq#926),
// so the job would read "running" until asynq's recoverer took it 60-120 s later. The worker keeps
// trying to save the report instead (tasks.DefaultSaveRetryFor), and the attempt ends once Redis is back.
func TestRedisBlipAsJobEnds(t *testing.T) {
	t.Parallel()
	const rng, rows = "2026-Q1", 10_000_000 // about 1 s on an idle core
	redis := startRedis(t, durableConf...)
	rd := reportdproc.Start(t, "reportd", nil, reportdVars(redis.URL, map[string]string{
		"REPORTD_ROWS_PER_DAY": strconv.Itoa(rows), "REPORTD_CONCURRENCY": "1",
	}))
	c := newClient()
	id := submit(t, c, rd.URL, rng)
	awaitRunning(t, c, rd.URL, id, 0.2)
	redis.terminate(t)
	down := time.Now()
	if _, ok := rd.Log.WaitFor(15*time.Second, nil, func(l testkit.LogLine) bool {
		return l.Str("msg") == "report not saved; trying again" && l.Str("job") == id
	}); !ok {
		t.Fatalf("job %s did not finish computing while Redis was down, or did not try to save its report again", id)
	}
	redis.Restart()
	up := time.Now()
	t.Logf("Redis down %.1fs while job %s finished computing", up.Sub(down).Seconds(), id)

	const limit = 20 * time.Second
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: redis.Addr})
	defer insp.Close()
	var last exchange
	testkit.Eventually(t, time.Until(up.Add(limit)).Round(time.Millisecond), 200*time.Millisecond, func() error {
		if last = getStatus(c, rd.URL, id); last.status == http.StatusSeeOther {
			return nil
		}
		info, err := insp.GetTaskInfo(store.QueueOf(id), id)
		state := fmt.Sprint(err)
		if err == nil {
			state = fmt.Sprintf("%s, retried %d, last error %q", info.State, info.Retried, info.LastErr)
		}
		return fmt.Errorf("job %s not done after a %.1fs Redis outage: its status reads %s; asynq's task: %s",
			id, up.Sub(down).Seconds(), truncate(last.body, 200), state)
	})
	t.Logf("job %s done %.1fs after Redis was back", id, last.ended.Sub(up).Seconds())
	checkResult(t, c, rd.URL, id, rng, rows)
	if _, ok := rd.Log.WaitFor(0, nil, func(l testkit.LogLine) bool {
		return l.Str("msg") == "report saved after Redis failed" && l.Str("job") == id
	}); !ok {
		t.Errorf("job %s was done without its attempt saving the report once Redis was back", id)
	}
}

// TestSIGTERMWithUnusedConnection: a client that has opened a connection without sending a request
// on it yet (a browser's preconnect, a connection pool's spare, a load balancer's TCP check) is not a
// request in flight, and must not hold up the drain. net/http's Shutdown counts such a connection as
// busy until it is 5 s old, so with REPORTD_SHUTDOWN_TIMEOUT under 5 s the drain runs out of time and
// reportd exits 1 ("drain http: context deadline exceeded"), having waited the whole timeout.
func TestSIGTERMWithUnusedConnection(t *testing.T) {
	t.Parallel()
	redis := startRedis(t)
	const shutdown = 2 * time.Second
	rd := reportdproc.Start(t, "reportd", nil, reportdVars(redis.URL, map[string]string{"REPORTD_SHUTDOWN_TIMEOUT": shutdown.String()}))
	conn, err := net.Dial("tcp", strings.TrimPrefix(rd.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	time.Sleep(200 * time.Millisecond)
	took, err := rd.Stop(15 * time.Second)
	if err != nil {
		t.Error(err)
	}
	t.Logf("SIGTERM with an unused connection open: %s after %dms", rd.ExitStatus(), took.Milliseconds())
	if rd.Err() != nil || took > time.Second {
		l, _ := rd.Log.WaitFor(0, nil, func(l testkit.LogLine) bool { _, ok := l.Fields["unparsed"]; return ok })
		t.Errorf("reportd with an unused client connection open took %s to exit after SIGTERM, and exited %s (%s); want exit 0 at once: no request was in flight",
			took.Round(time.Millisecond), rd.ExitStatus(), l.Str("unparsed"))
	}
}
