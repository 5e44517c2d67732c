package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/store"
)

// drainRun is one timed drain: jobs submitted through the job lifecycle with no worker running, then
// one worker process's run timed from its start until every queue is empty.
type drainRun struct {
	rdb         redis.UniversalClient // to submit and to watch the queues
	vars        map[string]string     // the worker's Redis: REDIS_URL or REDIS_CLUSTER_ADDRS
	shards      int
	jobs        int
	concurrency int
	// beforeStart runs after the submissions, just before the worker starts (to cap the masters' CPU);
	// its result runs once the queues are empty.
	beforeStart func() (after func())
}

// drain runs r and returns the drain's rate in jobs a second.
func drain(t *testing.T, r drainRun) float64 {
	t.Helper()
	shards, err := store.NewShards(r.shards)
	if err != nil {
		t.Fatal(err)
	}
	policy := jobs.Policy{Retention: time.Hour, Tombstone: time.Hour, JobTimeout: time.Minute, MaxRetry: 3}
	st := store.NewStore(r.rdb, policy.Retention, policy.Tombstone)
	inspector := asynq.NewInspectorFromRedisClient(r.rdb)
	svc := jobs.New(jobs.Deps{Queue: asynq.NewClientFromRedisClient(r.rdb), Inspector: inspector, Store: st, Policy: policy, Shards: shards})
	ctx := context.Background()
	for range r.jobs {
		if _, err := svc.Submit(ctx, jobs.Submission{Client: jobs.Anonymous, Range: "2026-01-01..2026-01-01"}); err != nil {
			t.Fatalf("submit: %v", err)
		}
	}
	vars := map[string]string{"REPORTD_CONCURRENCY": strconv.Itoa(r.concurrency), "REPORTD_QUEUE_SHARDS": strconv.Itoa(r.shards),
		"REPORTD_ROWS_PER_DAY": "1000", "REPORTD_RETENTION": "1h", "REPORTD_ADMIN_TOKEN": "drain-measurement-token"}
	for k, v := range r.vars {
		vars[k] = v
	}
	// A shared redis-server may hold the completed tasks of an earlier run.
	completedBefore := completedTasks(inspector, shards.Queues())
	after := func() {}
	if r.beforeStart != nil {
		after = r.beforeStart()
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- run(wctx, []string{"worker"}, env(vars), logTo(t, discard{})) }()
	for {
		// Two LLENs a queue: the watching costs Redis little beside the drain.
		pending, active, err := st.QueueCounts(ctx, shards.Queues())
		if err == nil && pending == 0 && active == 0 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the worker stopped: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	took := time.Since(start)
	after()
	stop()
	if err := <-done; err != nil {
		t.Errorf("worker: %v", err)
	}
	if completed := completedTasks(inspector, shards.Queues()) - completedBefore; completed != r.jobs {
		t.Errorf("%d of %d jobs completed", completed, r.jobs)
	}
	return float64(r.jobs) / took.Seconds()
}

// completedTasks is the number of completed tasks asynq keeps in queues.
func completedTasks(inspector *asynq.Inspector, queues []string) int {
	completed := 0
	for _, q := range queues {
		if info, err := inspector.GetQueueInfo(q); err == nil {
			completed += info.Completed
		}
	}
	return completed
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestShardScaling measures what report queue shards buy and cost (a measurement, not a test:
// REPORTD_MEASURE=1 runs it; REPORTD_SHARDS_ROUNDS repeats each comparison):
//
//   - on a 3-master Redis Cluster whose masters are each capped to REPORTD_SHARDS_CPU percent of a core
//     (cgroup v1 cpu quotas: it needs root and /sys/fs/cgroup/cpu, and skips that part saying so
//     without them), the drain with 3 shards, one a master, against all jobs on one shard, and the
//     commands each master ran;
//   - on one uncapped redis-server, 16 shards against 1.
func TestShardScaling(t *testing.T) {
	redistest.Measurement(t, "a measurement, not a test")
	rounds := envInt(t, "REPORTD_SHARDS_ROUNDS", 2)
	t.Run("cluster", func(t *testing.T) {
		percent := envInt(t, "REPORTD_SHARDS_CPU", 5)
		if err := canCapCPU(); err != nil {
			t.Skipf("cannot cap the masters' CPU: %v (run as root where /sys/fs/cgroup/cpu is cgroup v1)", err)
		}
		c := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3})
		rdb, err := store.NewClient(asynq.RedisClusterClientOpt{Addrs: c.Addrs})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = rdb.Close() })
		n, conc := envInt(t, "REPORTD_SHARDS_JOBS", 3000), envInt(t, "REPORTD_SHARDS_CONCURRENCY", 128)
		masters := c.Nodes[:3]
		for round := 1; round <= rounds; round++ {
			rates := map[int]float64{}
			for _, shards := range []int{1, 3} {
				flushAll(t, rdb)
				var before []int64
				rates[shards] = drain(t, drainRun{rdb: rdb, vars: map[string]string{"REDIS_CLUSTER_ADDRS": strings.Join(c.Addrs, ",")},
					shards: shards, jobs: n, concurrency: conc, beforeStart: func() func() {
						before = commandCounts(t, masters)
						uncap := capCPU(t, masters, percent)
						return uncap
					}})
				counts := commandCounts(t, masters)
				for i := range counts {
					counts[i] -= before[i]
				}
				fmt.Printf("cluster, 3 masters at %d%% of a core each, %d shard(s), worker concurrency %d: %d jobs at %.0f jobs/s; commands per master %v (max/min %.2f)\n",
					percent, shards, conc, n, rates[shards], counts, spread(counts))
			}
			fmt.Printf("cluster round %d: 3 shards / 1 shard = %.2fx\n", round, rates[3]/rates[1])
		}
	})
	t.Run("single", func(t *testing.T) {
		addr := redistest.StartServer(t).Addr
		rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 64})
		t.Cleanup(func() { _ = rdb.Close() })
		n := envInt(t, "REPORTD_DRAIN_JOBS", 10000)
		for round := 1; round <= rounds; round++ {
			rates := map[int]float64{}
			for _, shards := range []int{1, 16} {
				flushAll(t, rdb)
				rates[shards] = drain(t, drainRun{rdb: rdb, vars: map[string]string{"REDIS_URL": "redis://" + addr}, shards: shards, jobs: n, concurrency: 32})
				fmt.Printf("one redis-server, %d shard(s): %d jobs at %.0f jobs/s\n", shards, n, rates[shards])
			}
			fmt.Printf("single round %d: 16 shards / 1 shard = %.2fx\n", round, rates[16]/rates[1])
		}
	})
}

// flushAll empties every master.
func flushAll(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	ctx := context.Background()
	var err error
	if c, ok := rdb.(*redis.ClusterClient); ok {
		err = c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return m.FlushAll(ctx).Err() })
	} else {
		err = rdb.FlushAll(ctx).Err()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// commandCounts are the commands each server has run, from INFO commandstats.
func commandCounts(t *testing.T, servers []*redistest.Server) []int64 {
	t.Helper()
	out := make([]int64, len(servers))
	for i, s := range servers {
		c := redis.NewClient(&redis.Options{Addr: s.Addr})
		info, err := c.Info(context.Background(), "commandstats").Result()
		_ = c.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(info, "\n") {
			if j := strings.Index(line, "calls="); j >= 0 {
				n, _ := strconv.ParseInt(strings.SplitN(line[j+len("calls="):], ",", 2)[0], 10, 64)
				out[i] += n
			}
		}
	}
	return out
}

func spread(counts []int64) float64 {
	lo, hi := counts[0], counts[0]
	for _, c := range counts {
		lo, hi = min(lo, c), max(hi, c)
	}
	if lo == 0 {
		return 0
	}
	return float64(hi) / float64(lo)
}

const cgroupCPU = "/sys/fs/cgroup/cpu"

// canCapCPU says why CPU quotas cannot be set here, or nil.
func canCapCPU() error {
	if os.Geteuid() != 0 {
		return errors.New("not root")
	}
	if _, err := os.Stat(filepath.Join(cgroupCPU, "cpu.cfs_quota_us")); err != nil {
		return fmt.Errorf("no cgroup v1 cpu controller: %w", err)
	}
	return nil
}

// capCPU caps each server to percent of one core, in a cgroup of its own, and returns what lifts it.
func capCPU(t *testing.T, servers []*redistest.Server, percent int) (uncap func()) {
	t.Helper()
	var dirs []string
	write := func(path, v string) {
		if err := os.WriteFile(path, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	uncap = func() {
		for i, dir := range dirs {
			write(filepath.Join(cgroupCPU, "cgroup.procs"), strconv.Itoa(servers[i].Pid()))
			if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("remove cgroup %s: %v", dir, err)
			}
		}
	}
	for i, s := range servers {
		dir := filepath.Join(cgroupCPU, fmt.Sprintf("reportd-bench-%d-%d", os.Getpid(), i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			uncap()
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
		// A short period (10 ms, or longer where the quota would be under the kernel's 1 ms minimum): a
		// throttled server waits at most that long, so the cap limits how much it does rather than
		// adding a long stall to every request that meets it throttled.
		period := max(10000, (100000+percent-1)/percent)
		write(filepath.Join(dir, "cpu.cfs_period_us"), strconv.Itoa(period))
		write(filepath.Join(dir, "cpu.cfs_quota_us"), strconv.Itoa(max(1000, period*percent/100)))
		write(filepath.Join(dir, "cgroup.procs"), strconv.Itoa(s.Pid()))
	}
	return uncap
}
