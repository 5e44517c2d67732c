package faults

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/testkit/reportdproc"
	"github.com/reportd/reportd/tasks"
)

// TestMemoryFlatWithQueuedJobs measures reportd's RSS with 1,000 and with 100,000 jobs queued in Redis
// (no worker runs them), after serving status reads and list pages at each size. The API holds no
// per-job state, so its memory must not grow with the queue: within 20%. It takes about a minute, so it
// runs with REPORTD_MEASURE=1 (.ci/bench.sh does).
func TestMemoryFlatWithQueuedJobs(t *testing.T) {
	redistest.Measurement(t, "a measurement of about a minute")
	redisSrv := startRedis(t)
	api := reportdproc.Start(t, "api", []string{"api"}, reportdVars(redisSrv.URL, nil))
	rdb := redis.NewClient(&redis.Options{Addr: strings.TrimPrefix(redisSrv.URL, "redis://")})
	t.Cleanup(func() { _ = rdb.Close() })
	client := asynq.NewClientFromRedisClient(rdb)
	c := newClient()

	rng, _ := report.ParseRange("2026-01")
	enqueue := func(from, to int) {
		for i := from; i < to; i++ {
			task, opts, err := tasks.NewReportTask(fmt.Sprintf("00000000-0000-4000-8000-%012d", i), store.ReportQueue, rng, time.Now(), tasks.WithClient("anonymous"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := client.Enqueue(task, opts...); err != nil {
				t.Fatalf("enqueue %d: %v", i, err)
			}
		}
	}
	exercise := func() {
		for i := range 2000 {
			id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i%1000)
			res, err := c.Get(api.URL + "/v1/reports/" + id)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status of queued job %s = %d", id, res.StatusCode)
			}
		}
		for range 50 {
			res, err := c.Post(api.URL+"/v1/reports", "application/json", strings.NewReader(`{"range":"2026-01"}`))
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
		}
	}
	enqueue(0, 1000)
	exercise()
	small := rss(t, api.Pid())
	enqueue(1000, 100_000)
	exercise()
	large := rss(t, api.Pid())
	t.Logf("reportd RSS: %d KiB with 1,000 jobs queued, %d KiB with 100,000 (%.2fx)", small, large, float64(large)/float64(small))
	if float64(large) > 1.2*float64(small) {
		t.Errorf("RSS grew from %d KiB to %d KiB (more than 20%%) with the queue", small, large)
	}
}

// rss is a process's resident set size in KiB.
func rss(t *testing.T, pid int) int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
