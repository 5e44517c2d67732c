package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/reportd/reportd/internal/jobs/jobstest"

	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/tasks"
)

// TestEndAttemptOnRedis: the end of a job's last attempt, on a real store, reaches the subscribers of
// the finish events, takes the job out of its client's unfinished jobs, stores its report, and writes
// the attempt's progress as its task's result and as the job's end record; a done job whose cancel
// came first ends canceled.
func TestEndAttemptOnRedis(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		rdb := b.Client(t)
		st := store.NewStore(rdb, time.Hour, time.Hour)
		s := New(Deps{Store: st, Policy: testPolicy})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		events := st.SubscribeFinished(ctx)
		defer events.Close()
		if _, missed, err := events.Next(ctx); err != nil || !missed {
			t.Fatalf("subscribe: %v, %v", missed, err)
		}
		id, canceled := uuid.NewString(), uuid.NewString()
		for _, j := range []string{id, canceled} {
			if _, err := st.Admit(ctx, store.Admission{Client: "acme", ID: j, At: time.Now(), Keep: time.Hour}); err != nil {
				t.Fatal(err)
			}
		}
		attempt := tasks.Attempt{ID: id, Client: "acme", Number: 1, StartedAt: time.Now().UTC(), DaysDone: 1, DaysTotal: 1, Final: true, Report: []byte(`{"orders":1}`)}
		if canceled, err := s.EndAttempt(ctx, attempt); err != nil || canceled {
			t.Fatalf("EndAttempt = %v, %v; want done", canceled, err)
		}
		if got, _, err := events.Next(ctx); err != nil || got != id {
			t.Errorf("finish event = %q, %v; want %s", got, err, id)
		}
		if open, err := st.OpenJobs(ctx, "acme"); err != nil || slices.Contains(open, id) {
			t.Errorf("acme's unfinished jobs after the end: %v, %v; want %s gone", open, err, id)
		}
		if rep, err := st.Report(ctx, id); err != nil || string(rep.Body) != `{"orders":1}` || rep.Owner != "acme" {
			t.Errorf("report = %+v, %v; want acme's {\"orders\":1}", rep, err)
		}
		res, err := rdb.HGet(ctx, "asynq:{"+store.ReportQueue+"}:t:"+id, "result").Result()
		if p, perr := ParseProgress([]byte(res)); err != nil || perr != nil || p.DaysDone != 1 || p.Share != 1 || p.Outcome != "" || p.FinishedAt.IsZero() {
			t.Errorf("task result = %q, %v; want the progress, finished, with no outcome for a done job", res, err)
		}
		if tomb, ok, err := st.Tombstone(ctx, id); err != nil || !ok || tomb.Owner != "acme" || tomb.Outcome != "done" || string(tomb.Progress) != res {
			t.Errorf("tombstone = %+v, %v, %v; want acme's, with the end record done and the task's result", tomb, ok, err)
		}

		if err := st.RequestCancel(ctx, canceled, time.Hour); err != nil {
			t.Fatal(err)
		}
		attempt.ID, attempt.Report = canceled, []byte(`{}`)
		if wasCanceled, err := s.EndAttempt(ctx, attempt); err != nil || !wasCanceled {
			t.Fatalf("EndAttempt of a job canceled as it finished = %v, %v; want canceled", wasCanceled, err)
		}
		res, _ = rdb.HGet(ctx, "asynq:{"+store.ReportQueue+"}:t:"+canceled, "result").Result()
		if p, err := ParseProgress([]byte(res)); err != nil || p.Outcome != OutcomeCanceled {
			t.Errorf("task result = %q, %v; want the outcome canceled", res, err)
		}
		if tomb, _, err := st.Tombstone(ctx, canceled); err != nil || tomb.Outcome != "canceled" {
			t.Errorf("tombstone = %+v, %v; want the end record canceled", tomb, err)
		}
	})
}

// TestOutcomeOf: the lifecycle decides an attempt's outcome from what it came to.
func TestOutcomeOf(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		err  error
		want Outcome
	}{
		{nil, OutcomeDone},
		{tasks.ErrCanceled, OutcomeCanceled},
		{fmt.Errorf("stop: %w: %w", tasks.ErrCanceled, asynq.SkipRetry), OutcomeCanceled},
		{fmt.Errorf("summarize: %w: %w", tasks.ErrTimedOut, context.DeadlineExceeded), OutcomeTimedOut},
		{fmt.Errorf("%w: bad json", tasks.ErrUnreadable), OutcomeUnreadable},
		{errors.New("ledger unreachable"), OutcomeFailed},
		{context.DeadlineExceeded, OutcomeFailed},
	} {
		if got := outcomeOf(tt.err); got != tt.want {
			t.Errorf("outcomeOf(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// TestWaitComesJustAfterTheFinish: the worker records a job's end and publishes its finish event a
// moment before asynq shows the task terminal, so a request may start waiting after the event yet read
// the task as running. Its wait must still answer the end at once, by construction: it reads the end
// record the event left (and a woken wait reads it too), without waiting for asynq or a timer.
func TestWaitComesJustAfterTheFinish(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		st := store.NewStore(b.Client(t), testPolicy.Retention, testPolicy.Tombstone)
		ctx := context.Background()
		for _, tt := range []struct {
			name  string
			err   error
			want  State
			share float64
		}{
			{"done", nil, Done, 1},
			{"failed", errors.New("ledger unreachable"), Failed, 0.5},
			{"canceled", tasks.ErrCanceled, Canceled, 0.5},
		} {
			id := uuid.NewString()
			// asynq still shows the task running, as it does for a moment after the end.
			ins := &countedTask{info: jobstest.TaskInfo(id, testCreated, asynq.TaskStateActive, testPolicy.MaxRetry, testPolicy.JobTimeout,
				testPolicy.Retention, jobstest.WithProgress(Progress{Share: 0.2, Attempt: 1}))}
			s := New(Deps{Store: st, Inspector: ins, Policy: testPolicy})
			a := tasks.Attempt{ID: id, Number: 1, StartedAt: time.Now().UTC(), DaysDone: 5, DaysTotal: 10, Final: true, Err: tt.err}
			if tt.err == nil {
				a.DaysDone, a.Report = 10, []byte(`{}`)
			}
			if _, err := s.EndAttempt(ctx, a); err != nil {
				t.Fatal(err)
			}
			// No event will come, and no timer may stand in: the wait is as long as the test's timeout.
			j, err := s.Status(ctx, Anonymous, id, ptrTo(time.Hour))
			if err != nil || j.State != tt.want || j.Progress.Share != tt.share || j.FinishedAt.IsZero() || j.ExpiresAt.IsZero() {
				t.Errorf("%s: a wait that starts after the finish = %+v, %v; want %s at once, with its end", tt.name, j, err, tt.want)
			}
			if tt.want == Failed && j.Progress.Outcome != OutcomeFailed {
				t.Errorf("%s: outcome %q, want failed", tt.name, j.Progress.Outcome)
			}
			// And one woken by the event reads the end record, not asynq's task again.
			before := ins.reads.Load()
			running := Job{ID: id, State: Running, Client: Anonymous}
			if j, err := s.withEnd(ctx, running); err != nil || j.State != tt.want || ins.reads.Load() != before {
				t.Errorf("%s: woken wait = %+v, %v, %d task reads; want %s from the end record alone", tt.name, j, err, ins.reads.Load()-before, tt.want)
			}
		}
	})
}

func ptrTo[T any](v T) *T { return &v }
