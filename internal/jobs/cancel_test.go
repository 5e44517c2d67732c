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

// TestFinishOnRedis: a job's finish, on a real store, reaches the subscribers of the finish events
// and takes the job out of its client's unfinished jobs.
func TestFinishOnRedis(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		st := store.NewStore(b.Client(t), time.Hour, time.Hour)
		s := New(Deps{Store: st, Policy: testPolicy})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		events := st.SubscribeFinished(ctx)
		defer events.Close()
		if _, missed, err := events.Next(ctx); err != nil || !missed {
			t.Fatalf("subscribe: %v, %v", missed, err)
		}
		id := uuid.NewString()
		if err := st.IndexJob(ctx, "acme", id, time.Now(), time.Hour); err != nil {
			t.Fatal(err)
		}
		s.Finish(ctx, tasks.Finished{ID: id, Client: "acme", Outcome: tasks.OutcomeDone})
		if got, _, err := events.Next(ctx); err != nil || got != id {
			t.Errorf("finish event = %q, %v; want %s", got, err, id)
		}
		if open, err := st.OpenJobs(ctx, "acme"); err != nil || slices.Contains(open, id) {
			t.Errorf("acme's unfinished jobs after the finish: %v, %v; want %s gone", open, err, id)
		}
	})
}
