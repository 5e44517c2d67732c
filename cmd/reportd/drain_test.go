package main

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/store"
)

// TestDrain measures how fast one reportd worker drains one-day report jobs, the way
// ../shared/baselines' asynq-drain and bullmq-drain measure their engines: N jobs are submitted
// through the job lifecycle with no worker running, then one worker process's run (cmd/reportd's
// run, "worker" mode) is timed from its start until the queue is empty. A measurement, not a test:
// REPORTD_MEASURE=1 runs it; REPORTD_DRAIN_REDIS=host:port puts it on a given redis-server (.ci/drain.sh
// runs it beside the baselines on one), REPORTD_DRAIN_JOBS and REPORTD_DRAIN_CONCURRENCY change N and
// the worker's concurrency (10,000 and 32), and REPORTD_DRAIN_CPUPROFILE=FILE profiles the drain.
func TestDrain(t *testing.T) {
	if os.Getenv("REPORTD_MEASURE") != "1" {
		t.Skip("a measurement, not a test: set REPORTD_MEASURE=1 to run it")
	}
	addr := os.Getenv("REPORTD_DRAIN_REDIS")
	if addr == "" {
		addr = redistest.StartServer(t).Addr
	}
	n, c := envInt(t, "REPORTD_DRAIN_JOBS", 10000), envInt(t, "REPORTD_DRAIN_CONCURRENCY", 32)
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 64})
	t.Cleanup(func() { _ = rdb.Close() })
	policy := jobs.Policy{Retention: time.Hour, Tombstone: time.Hour, JobTimeout: time.Minute, MaxRetry: 3}
	inspector := asynq.NewInspectorFromRedisClient(rdb)
	svc := jobs.New(jobs.Deps{Queue: asynq.NewClientFromRedisClient(rdb), Inspector: inspector,
		Store: store.NewStore(rdb, policy.Retention, policy.Tombstone), Policy: policy})
	ctx := context.Background()
	for range n {
		if _, err := svc.Submit(ctx, jobs.Submission{Client: jobs.Anonymous, Range: "2026-01-01..2026-01-01"}); err != nil {
			t.Fatalf("submit: %v", err)
		}
	}
	// The worker logs as a deployed one does, a line at a time to a file.
	logs, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	vars := map[string]string{"REDIS_URL": "redis://" + addr, "REPORTD_CONCURRENCY": strconv.Itoa(c),
		"REPORTD_ROWS_PER_DAY": "1000", "REPORTD_RETENTION": "1h", "REPORTD_ADMIN_TOKEN": "drain-measurement-token"}
	if path := os.Getenv("REPORTD_DRAIN_CPUPROFILE"); path != "" {
		// The drain alone, not the submissions before it.
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- run(wctx, []string{"worker"}, env(vars), logs) }()
	for {
		q, err := inspector.GetQueueInfo(store.ReportQueue)
		if err == nil && q.Pending == 0 && q.Active == 0 && q.Completed+q.Archived >= n {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the worker stopped: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	took := time.Since(start)
	stop()
	if err := <-done; err != nil {
		t.Errorf("worker: %v", err)
	}
	q, _ := inspector.GetQueueInfo(store.ReportQueue)
	fmt.Printf("reportd drain: %d jobs in %.2f s = %.0f jobs/s (concurrency %d; %d done, %d failed)\n",
		n, took.Seconds(), float64(n)/took.Seconds(), c, q.Completed, q.Archived)
	if os.Getenv("REPORTD_DRAIN_REDIS") != "" {
		// A shared redis-server: leave it as found.
		_ = inspector.DeleteQueue(store.ReportQueue, true)
	}
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive whole number", name, v)
	}
	return n
}
