package jobs

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/reportd/reportd/internal/jobs/jobstest"
	"github.com/reportd/reportd/internal/problem"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/store"
)

// countedTask is an Inspector that holds one task and counts its reads.
type countedTask struct {
	Inspector
	info  *asynq.TaskInfo
	reads atomic.Int32
}

func (c *countedTask) GetTaskInfo(string, string) (*asynq.TaskInfo, error) {
	c.reads.Add(1)
	info := *c.info
	return &info, nil
}

// TestResultFromTheReport: a result read of a done job is answered from its stored report alone, with
// the lifetime a status read derives from the task; anything the report cannot vouch for (another
// client's job, a lifetime run out, a report stored before reports named their owner) is read from
// asynq's task as before, with the same answers.
func TestResultFromTheReport(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		rdb := b.Client(t)
		st := store.NewStore(rdb, testPolicy.Retention, testPolicy.Tombstone)
		ctx := context.Background()
		finished := testNow.Add(-time.Minute).Add(300 * time.Millisecond) // not a whole second
		completed := finished.Add(time.Second).Truncate(time.Second)      // asynq's, a moment later
		body := []byte(`{"orders":1}`)
		done := func(id string, p Progress) *countedTask {
			return &countedTask{info: jobstest.TaskInfo(id, testCreated, asynq.TaskStateCompleted, testPolicy.MaxRetry, testPolicy.JobTimeout,
				testPolicy.Retention, jobstest.WithProgress(p), func(i *asynq.TaskInfo) { i.CompletedAt = completed })}
		}
		now := testNow
		service := func(ins Inspector) *Service {
			return New(Deps{Store: st, Inspector: ins, Policy: testPolicy, Now: func() time.Time { return now }})
		}

		id := uuid.NewString()
		// Recorded with no owner: the anonymous client's, as the tasks jobstest.TaskInfo makes.
		if _, err := st.RecordEnd(ctx, store.EndRecord{ID: id, Outcome: "done", Final: true, Report: body, FinishedAt: finished}); err != nil {
			t.Fatal(err)
		}
		ins := done(id, Progress{Share: 1, Attempt: 1, FinishedAt: finished})
		s := service(ins)
		status, err := s.Get(ctx, Anonymous, id)
		if err != nil {
			t.Fatal(err)
		}
		if want := finished.Truncate(time.Second).Add(testPolicy.Retention); !status.ExpiresAt.Equal(want) {
			t.Errorf("status read: expires at %s, want the finish cut to the second plus the retention, %s", status.ExpiresAt, want)
		}
		ins.reads.Store(0)
		j, got, err := s.Result(ctx, Anonymous, id)
		if err != nil || string(got) != string(body) || j.State != Done || !j.ExpiresAt.Equal(status.ExpiresAt) {
			t.Errorf("Result = %+v, %s, %v; want done, the report, expiring with the status read's %s", j, got, err, status.ExpiresAt)
		}
		if n := ins.reads.Load(); n != 0 {
			t.Errorf("Result read asynq's task %d times, want none", n)
		}

		// Another client's job: asynq's task says whose it is, and the answer is the usual 404.
		if _, _, err := s.Result(ctx, "other", id); !isKind(err, problem.KindNotFound) || ins.reads.Load() != 1 {
			t.Errorf("another client's Result = %v after %d task reads; want 404 from the task", err, ins.reads.Load())
		}
		// Past its lifetime the task's read answers 410, at the very instant the status read's does.
		now = status.ExpiresAt
		if _, _, err := s.Result(ctx, Anonymous, id); !isKind(err, problem.KindGone) {
			t.Errorf("Result at its expiry = %v, want 410", err)
		}
		if _, err := s.Get(ctx, Anonymous, id); !isKind(err, problem.KindGone) {
			t.Errorf("status read at its expiry = %v, want 410", err)
		}
		now = status.ExpiresAt.Add(-time.Nanosecond)
		if _, got, err := s.Result(ctx, Anonymous, id); err != nil || got == nil {
			t.Errorf("Result just before its expiry = %v; want the report", err)
		}

		// A report stored before reports named their owner: served, with the task's lifetime.
		old := uuid.NewString()
		if err := rdb.Set(ctx, "reportd:{"+old+"}:report", body, time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		ins = done(old, Progress{Share: 1, Attempt: 1})
		j, got, err = service(ins).Result(ctx, Anonymous, old)
		if err != nil || string(got) != string(body) || !j.ExpiresAt.Equal(completed.Add(testPolicy.Retention)) || ins.reads.Load() != 1 {
			t.Errorf("Result of an older report = %+v, %s, %v after %d task reads; want the report, expiring at asynq's completion plus the retention",
				j, got, err, ins.reads.Load())
		}
	})
}

// isKind reports whether err is a problem of kind k.
func isKind(err error, k problem.Kind) bool {
	var e *problem.Error
	return errors.As(err, &e) && e.Kind == k
}
