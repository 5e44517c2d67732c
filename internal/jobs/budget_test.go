package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/testkit"
	"github.com/reportd/reportd/tasks"
)

// roundTrips counts the round trips a Redis client makes: a command, or a pipeline, is one.
type roundTrips struct {
	mu   sync.Mutex
	n    int
	cmds []string
}

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.add(cmd.Name())
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		names := ""
		for i, c := range cmds {
			if i > 0 {
				names += "+"
			}
			names += c.Name()
		}
		r.add("pipeline(" + names + ")")
		return next(ctx, cmds)
	}
}

func (r *roundTrips) add(what string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	r.cmds = append(r.cmds, what)
}

// since runs f and returns the round trips it made, and what they were.
func (r *roundTrips) during(f func()) (int, []string) {
	r.mu.Lock()
	n0, c0 := r.n, len(r.cmds)
	r.mu.Unlock()
	f()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n - n0, append([]string(nil), r.cmds[c0:]...)
}

// TestRedisBudget holds reportd to its Redis budget (docs/performance.md, "The Redis budget"): the round trips of a
// submit, a status read and a short job's run, counted on the clients they use. A change that adds a
// round trip to any of them fails here.
func TestRedisBudget(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		count := &roundTrips{}
		rdb := redis.NewClient(&redis.Options{Addr: b.Addr})
		t.Cleanup(func() { _ = rdb.Close() })
		store.CacheQueueChecks(rdb) // as store.NewClient does
		rdb.AddHook(count)
		policy := Policy{Retention: time.Hour, Tombstone: time.Hour, JobTimeout: time.Minute, MaxRetry: 3}
		st := store.NewStore(rdb, policy.Retention, policy.Tombstone)
		svc := New(Deps{Queue: asynq.NewClientFromRedisClient(rdb), Inspector: asynq.NewInspectorFromRedisClient(rdb),
			Store: st, Policy: policy, Limits: Limits{SubmitsPerSecond: 1000, SubmitBurst: 1000, MaxOpenJobs: 1000}})
		submit := func() Job {
			j, err := svc.Submit(ctx, Submission{Client: "acme", Range: "2026-01-01..2026-01-01"})
			if err != nil {
				t.Fatalf("Submit: %v", err)
			}
			return j
		}
		// The first of each loads the scripts.
		if _, err := svc.Status(ctx, "acme", submit().ID, nil); err != nil {
			t.Fatal(err)
		}

		check := func(what string, n int, cmds []string, want int) {
			t.Helper()
			if n != want {
				t.Errorf("%s: %d round trips (%v), want %d", what, n, cmds, want)
			}
		}
		var j Job
		n, cmds := count.during(func() { j = submit() })
		check("a POST with limits on (the admission script, and asynq's enqueue script)", n, cmds, 2)
		// Any read within the last second answers asynq's queue check (TestQueueChecksCached): under
		// load, every read but one a second per queue.
		warm := func() {
			if _, err := svc.Get(ctx, "acme", j.ID); err != nil {
				t.Fatal(err)
			}
		}
		warm()
		n, cmds = count.during(func() {
			if _, err := svc.Status(ctx, "acme", j.ID, nil); err != nil {
				t.Fatal(err)
			}
		})
		check("a status read (asynq's GetTaskInfo: its script; its SISMEMBER answered by the queue check cache)", n, cmds, 1)

		// The worker: asynq's server on a client of its own, the lifecycle on the counted one.
		wdb := redis.NewClient(&redis.Options{Addr: b.Addr})
		t.Cleanup(func() { _ = wdb.Close() })
		done := make(chan error, 4)
		proc := &tasks.ReportProcessor{Ledger: report.NewSyntheticLedger(100), Jobs: svc, ProgressEvery: time.Minute,
			Now: time.Now, Log: slog.New(slog.DiscardHandler)}
		srv := asynq.NewServerFromRedisClient(wdb, asynq.Config{Concurrency: 1, Queues: map[string]int{store.ReportQueue: 1},
			TaskCheckInterval: 10 * time.Millisecond, Logger: tasks.NewLogger(slog.New(slog.DiscardHandler))})
		var ran int
		var ranCmds []string
		handler := asynq.HandlerFunc(func(ctx context.Context, task *asynq.Task) error {
			var err error
			n, cmds := count.during(func() { err = proc.ProcessTask(ctx, task) })
			if task.ResultWriter().TaskID() == j.ID {
				ran, ranCmds = n, cmds
			}
			done <- err
			return err
		})
		if err := srv.Start(handler); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Shutdown)
		for range 2 {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("ProcessTask: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the jobs did not run in 10 s")
			}
		}
		check("a short job's run beyond asynq's own (the start's pipeline with the cancel check, and the end's pipeline)", ran, ranCmds, 2)
		// asynq completes the task just after the handler returns.
		testkit.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
			if got, err := svc.Get(ctx, "acme", j.ID); err != nil || got.State != Done {
				return fmt.Errorf("the job is not done since its run: %v, %v", got.State, err)
			}
			return nil
		})
		warm()
		n, cmds = count.during(func() {
			var err error
			if j, err = svc.Status(ctx, "acme", j.ID, nil); err != nil || j.State != Done {
				t.Fatalf("Status = %v, %v; want done", j.State, err)
			}
		})
		check("a status read of a done job (the 303)", n, cmds, 1)
		n, cmds = count.during(func() {
			r, body, err := svc.Result(ctx, "acme", j.ID)
			if err != nil || body == nil || !r.ExpiresAt.Equal(j.ExpiresAt) {
				t.Fatalf("Result = %+v, %d bytes, %v; want the report, readable until the status read's %s", r, len(body), err, j.ExpiresAt)
			}
		})
		check("a result read of a done job (GET of the report, which names its owner and lifetime; no asynq read)", n, cmds, 1)
	})
}
