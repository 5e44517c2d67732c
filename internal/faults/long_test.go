package faults

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/testkit"
	"github.com/reportd/reportd/internal/testkit/reportdproc"
)

// TestAllInOneSIGKILLMidJob (REPORTD_LONG_TESTS=1): the all-in-one reportd killed mid-job and
// restarted at once. The job finishes once asynq's recoverer in the new process hands it out again
// (60-120 s); from the restart on, its status never reads 404 or 410.
func TestAllInOneSIGKILLMidJob(t *testing.T) {
	redistest.Long(t, "takes minutes")
	t.Parallel()
	const rng, rows = "2026-Q1", 20_000_000
	redis := startRedis(t, durableConf...)
	vars := reportdVars(redis.URL, map[string]string{"REPORTD_ROWS_PER_DAY": strconv.Itoa(rows), "REPORTD_CONCURRENCY": "1"})
	first := reportdproc.Start(t, "reportd-1", nil, vars)
	c := newClient()
	id := submit(t, c, first.URL, rng)
	awaitRunning(t, c, first.URL, id, 0.1)
	first.Kill()
	killed := time.Now()
	second := reportdproc.Start(t, "reportd-2", nil, vars)
	polls := startPoller(t, func() string { return second.URL }, id, 500*time.Millisecond)
	const limit = 130 * time.Second
	select {
	case <-polls.done:
	case <-time.After(limit - time.Since(killed)):
		t.Fatalf("job %s not done %s after the kill; polls: %s", id, limit, transitions(polls.record(), killed))
	}
	polls.halt()
	record := polls.record()
	t.Logf("all-in-one SIGKILL: restarted in %.1fs, job done %.1fs after the kill; polls: %s; transitions: %s",
		second.Started.Sub(killed).Seconds(), record[len(record)-1].at.Sub(killed).Seconds(), summarize(record), transitions(record, killed))
	for _, p := range record {
		if p.err == nil && p.status != http.StatusOK && p.status != http.StatusSeeOther {
			t.Errorf("status of job %s read %d after the restart", id, p.status)
		}
	}
	checkResult(t, c, second.URL, id, rng, rows)
}

// TestRedisOutageLongerThanLease (REPORTD_LONG_TESTS=1): Redis away for 40 s, longer than asynq's
// 30 s lease, while jobs run and wait. reportd stays up, answers 503 meanwhile, and once Redis is
// back every accepted job finishes (those whose attempt ended during the outage after asynq's
// recoverer takes them, up to two minutes later).
func TestRedisOutageLongerThanLease(t *testing.T) {
	redistest.Long(t, "takes minutes")
	t.Parallel()
	const rng, rows, n = "2026-Q1", 8_000_000, 6 // about 0.7 s a job on an idle core
	redis := startRedis(t, durableConf...)
	rd := reportdproc.Start(t, "reportd", nil, reportdVars(redis.URL, map[string]string{
		"REPORTD_ROWS_PER_DAY": strconv.Itoa(rows), "REPORTD_CONCURRENCY": "2",
	}))
	c := newClient()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = submit(t, c, rd.URL, rng)
	}
	testkit.Eventually(t, 20*time.Second, 20*time.Millisecond, func() error {
		if s, ok := statusOf(getStatus(c, rd.URL, ids[0])); !ok || s.Status != "running" || s.Progress <= 0 {
			return fmt.Errorf("job %s not caught running (last %+v)", ids[0], s)
		}
		return nil
	})
	redis.terminate(t)
	down := time.Now()
	time.Sleep(40 * time.Second)
	if e := do(c, http.MethodGet, rd.URL+"/readyz", nil, "", 5*time.Second); e.status != http.StatusServiceUnavailable {
		t.Errorf("/readyz with Redis down for 40s: %s", e)
	}
	if !rd.Running() {
		t.Fatalf("reportd exited while Redis was down: %s", rd.ExitStatus())
	}
	redis.Restart()
	up := time.Now()
	doneAt := awaitAllDone(t, c, func() string { return rd.URL }, ids, 150*time.Second)
	var after []string
	for _, id := range ids {
		after = append(after, strconv.FormatFloat(doneAt[id].Sub(up).Seconds(), 'f', 1, 64)+"s")
	}
	t.Logf("Redis down %.0fs; jobs done after it was back: %v", up.Sub(down).Seconds(), after)
	for _, id := range ids {
		checkResult(t, c, rd.URL, id, rng, rows)
	}
}
