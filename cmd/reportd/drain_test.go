package main

import (
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/store"
)

// TestDrain drains one-day report jobs with a worker run in this process, to profile the worker: N jobs
// are submitted through the job lifecycle with no worker running, then cmd/reportd's run, "worker" mode,
// is timed from its start until the queue is empty, its log discarded. Its figure is not the shipped
// worker's: .ci/drain.sh times the `reportd worker` binary, logging to a file, beside the baselines. A
// measurement, not a test: REPORTD_MEASURE=1 runs it; REPORTD_DRAIN_REDIS=host:port puts it on a given
// redis-server, REPORTD_DRAIN_JOBS and REPORTD_DRAIN_CONCURRENCY change N and the worker's concurrency
// (10,000 and 32), and REPORTD_DRAIN_CPUPROFILE=FILE profiles the drain.
func TestDrain(t *testing.T) {
	redistest.Measurement(t, "a measurement, not a test")
	addr := os.Getenv("REPORTD_DRAIN_REDIS")
	if addr == "" {
		addr = redistest.StartServer(t).Addr
	}
	n, c := envInt(t, "REPORTD_DRAIN_JOBS", 10000), envInt(t, "REPORTD_DRAIN_CONCURRENCY", 32)
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 64})
	t.Cleanup(func() { _ = rdb.Close() })
	r := drainRun{rdb: rdb, vars: map[string]string{"REDIS_URL": "redis://" + addr}, shards: 1, jobs: n, concurrency: c}
	if path := os.Getenv("REPORTD_DRAIN_CPUPROFILE"); path != "" {
		// The drain alone, not the submissions before it.
		r.beforeStart = func() func() {
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				t.Fatal(err)
			}
			return func() { pprof.StopCPUProfile(); _ = f.Close() }
		}
	}
	rate := drain(t, r)
	fmt.Printf("reportd drain: %d jobs in %.2f s = %.0f jobs/s (concurrency %d)\n", n, float64(n)/rate, rate, c)
	if os.Getenv("REPORTD_DRAIN_REDIS") != "" {
		// A shared redis-server: leave it as found.
		// asynq's DeleteQueue leaves the completed tasks behind (its script does not name their set).
		inspector := asynq.NewInspectorFromRedisClient(rdb)
		if _, err := inspector.DeleteAllCompletedTasks(store.ReportQueue); err != nil {
			t.Errorf("delete the completed tasks: %v", err)
		}
		if err := inspector.DeleteQueue(store.ReportQueue, true); err != nil {
			t.Errorf("delete the queue: %v", err)
		}
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
