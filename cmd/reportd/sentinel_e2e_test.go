package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/testkit"
	"github.com/reportd/reportd/internal/testkit/reportdproc"
)

// TestSentinelE2E runs reportd with REDIS_URL=redis-sentinel://... on a redis-server monitored by one
// Sentinel, through submit, 303 and the result.
func TestSentinelE2E(t *testing.T) {
	t.Parallel()
	master := redistest.StartServer(t)
	sentinel := redistest.StartSentinel(t, master.Addr, "reportd-master", time.Second)
	in := start(t, nil, reportdproc.Vars(map[string]string{"REDIS_URL": "redis-sentinel://" + sentinel.Addr + "?master=reportd-master"}))
	loc := submit(t, in.base, "2026-Q1")
	checkReport(t, in.base, loc, awaitDone(t, in.base, loc))
	// The job went through the master that the Sentinel named.
	n, err := master.Client(t).Exists(context.Background(), "asynq:{"+store.QueueOf(strings.TrimPrefix(loc, "/v1/reports/"))+"}:t:"+strings.TrimPrefix(loc, "/v1/reports/")).Result()
	if err != nil || n != 1 {
		t.Errorf("the job's task is not on the master the Sentinel monitors: %d %v", n, err)
	}
}

// TestSentinelFailover kills, with SIGKILL, the master of a master and its replica watched by one
// Sentinel, while clients submit and poll, and records what they see until the Sentinel has promoted
// the replica and reportd, through REDIS_URL=redis-sentinel://..., answers again. It asserts what
// failover asserts: no 500, recovery within 30 s, every accepted job ending.
func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	redistest.Long(t, "a Sentinel failover takes 10-20 s")
	const name, downAfter = "reportd-master", time.Second
	master := redistest.StartServer(t)
	host, port, _ := strings.Cut(master.Addr, ":")
	replica := redistest.StartServer(t, "replicaof "+host+" "+port)
	sentinel := redistest.StartSentinel(t, master.Addr, name, downAfter, replica.Addr)
	in := start(t, nil, reportdproc.Vars(map[string]string{
		"REDIS_URL":            "redis-sentinel://" + sentinel.Addr + "?master=" + name,
		"REPORTD_ROWS_PER_DAY": "2000000", "REPORTD_RATE_LIMIT": "0",
	}))
	failover(t, in, "", func() {
		// Replication is asynchronous: what the replica has not received when the master dies is lost.
		// Wait until it has everything, so that a job lost would be reportd's doing.
		awaitReplicated(t, master, replica)
		master.Kill()
		t.Logf("killed master %s with SIGKILL (down-after-milliseconds %d)", master.Addr, downAfter.Milliseconds())
	}, func() string {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if m, err := redistest.SentinelMaster(ctx, sentinel.Addr, name); err == nil && m != master.Addr {
			return m
		}
		return ""
	})
}

// awaitReplicated waits until replica has every write master has made so far.
func awaitReplicated(t *testing.T, master, replica *redistest.Server) {
	t.Helper()
	ctx := context.Background()
	mc, rc := master.Client(t), replica.Client(t)
	want, err := replOffset(ctx, mc, "master_repl_offset")
	if err != nil {
		t.Fatalf("master %s: %v", master.Addr, err)
	}
	testkit.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
		got, err := replOffset(ctx, rc, "slave_repl_offset")
		if err != nil || got < want {
			return fmt.Errorf("replica %s at offset %d (%v), master %s at %d", replica.Addr, got, err, master.Addr, want)
		}
		return nil
	})
}

// replOffset reads a replication offset from INFO replication.
func replOffset(ctx context.Context, c *redis.Client, field string) (int64, error) {
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in INFO replication", field)
}
