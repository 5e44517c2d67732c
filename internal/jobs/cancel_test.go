package jobs

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/tasks"
)

// TestEndOnRedis: the end of a job's last attempt, on a real store, reaches the subscribers of the
// finish events, takes the job out of its client's unfinished jobs, stores its report, and writes the
// attempt's progress as its task's result; a done job whose cancel came first ends canceled.
func TestEndOnRedis(t *testing.T) {
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
		progress := tasks.Progress{Share: 1, DaysDone: 1, DaysTotal: 1, Attempt: 1, StartedAt: time.Now().UTC()}
		o, err := s.End(ctx, tasks.Ending{ID: id, Client: "acme", Outcome: tasks.OutcomeDone, Final: true, Report: []byte(`{"orders":1}`), Progress: progress})
		if err != nil || o != tasks.OutcomeDone {
			t.Fatalf("End = %q, %v; want done", o, err)
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
		if p, perr := tasks.ParseProgress([]byte(res)); err != nil || perr != nil || p.DaysDone != 1 || p.Outcome != "" {
			t.Errorf("task result = %q, %v; want the progress, with no outcome for a done job", res, err)
		}

		if err := st.RequestCancel(ctx, canceled, time.Hour); err != nil {
			t.Fatal(err)
		}
		o, err = s.End(ctx, tasks.Ending{ID: canceled, Client: "acme", Outcome: tasks.OutcomeDone, Final: true, Report: []byte(`{}`), Progress: progress})
		if err != nil || o != tasks.OutcomeCanceled {
			t.Fatalf("End of a job canceled as it finished = %q, %v; want canceled", o, err)
		}
		res, _ = rdb.HGet(ctx, "asynq:{"+store.ReportQueue+"}:t:"+canceled, "result").Result()
		if p, err := tasks.ParseProgress([]byte(res)); err != nil || p.Outcome != tasks.OutcomeCanceled {
			t.Errorf("task result = %q, %v; want the outcome canceled", res, err)
		}
	})
}
