package tasks

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/report"
)

// next reads the next event within two seconds.
func next(t *testing.T, e *Events) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return e.Next(ctx)
}

// subscribed returns a subscription whose confirmation has arrived, so that nothing published after it
// is missed; it is closed when the test ends.
func subscribed(t *testing.T, subscribe func(context.Context) *Events) *Events {
	t.Helper()
	e := subscribe(context.Background())
	t.Cleanup(func() { _ = e.Close() })
	// The first event of a subscription is its confirmation: "" (look again), not a job.
	if id, err := next(t, e); err != nil || id != "" {
		t.Fatalf("first event of a new subscription = %q, %v; want \"\", nil", id, err)
	}
	return e
}

// TestEvents runs the finish and cancel channels against every Redis backend: each subscription gets
// the ids published on its own channel, in order, and nothing of the other's.
func TestEvents(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b redistest.Backend) {
		s := NewStore(b.Client(t), testRetention, testTombstone)
		ctx := context.Background()
		finished := subscribed(t, s.SubscribeFinished)
		cancels := subscribed(t, s.SubscribeCancels)
		also := subscribed(t, s.SubscribeFinished) // every API process has its own

		done1, done2, stop := uuid.NewString(), uuid.NewString(), uuid.NewString()
		for _, publish := range []func() error{
			func() error { return s.PublishFinished(ctx, done1) },
			func() error { return s.PublishCancel(ctx, stop) },
			func() error { return s.PublishFinished(ctx, done2) },
		} {
			if err := publish(); err != nil {
				t.Fatalf("publish: %v", err)
			}
		}
		for _, tc := range []struct {
			name string
			e    *Events
			want []string
		}{
			{"finished", finished, []string{done1, done2}},
			{"finished-second-subscriber", also, []string{done1, done2}},
			{"cancels", cancels, []string{stop}},
		} {
			for _, want := range tc.want {
				if got, err := next(t, tc.e); err != nil || got != want {
					t.Errorf("%s: next event = %q, %v; want %s", tc.name, got, err, want)
				}
			}
		}

		if err := finished.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if _, err := next(t, finished); err == nil {
			t.Error("Next after Close succeeded")
		}
	})
}

// failingLedger is a ledger that cannot be reached.
type failingLedger struct{ err error }

func (l failingLedger) Day(_ context.Context, _ time.Time, buf []report.Order) ([]report.Order, error) {
	return buf, l.err
}

// TestReportProcessorAnnounces checks when a job's attempt announces a finish: when it is the job's
// last (done, canceled, unretryable, out of retries), and not when a retry follows or a shutdown
// stopped it.
func TestReportProcessorAnnounces(t *testing.T) {
	t.Parallel()
	failing := failingLedger{errors.New("ledger unreachable")}
	tests := []struct {
		name     string
		ledger   report.Ledger
		payload  string // "" means tenDays
		maxRetry int
		canceled bool // the job's marker is set
		shutdown bool // the attempt's context is canceled, as asynq does on shutdown
		want     bool
	}{
		{name: "done", ledger: report.NewSyntheticLedger(100), want: true},
		{name: "canceled", ledger: report.NewSyntheticLedger(100), canceled: true, want: true},
		{name: "bad-payload", ledger: report.NewSyntheticLedger(100), payload: "not json", maxRetry: 3, want: true},
		{name: "last-retry-failed", ledger: failing, maxRetry: 0, want: true},
		{name: "failed-with-retries-left", ledger: failing, maxRetry: 3, want: false},
		{name: "shutdown", ledger: report.NewSyntheticLedger(100), maxRetry: 3, shutdown: true, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := uuid.NewString()
			saver := &fakeSaver{canceled: map[string]bool{id: tt.canceled}}
			p := newProcessor(tt.ledger, saver)
			w := startWorker(t, func(ctx context.Context, task *asynq.Task) error {
				if tt.shutdown {
					c, cancel := context.WithCancel(ctx)
					cancel()
					ctx = c
				}
				return p.ProcessTask(ctx, task)
			})
			task, opts, err := NewReportTask(id, tenDays, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if tt.payload != "" {
				task = asynq.NewTask(TypeReport, []byte(tt.payload))
			}
			w.enqueue(t, task, append(opts, asynq.MaxRetry(tt.maxRetry))...)
			w.handlerErr(t) // the announcement is made before the handler returns
			saver.mu.Lock()
			announced := slices.Clone(saver.announced)
			saver.mu.Unlock()
			if got := slices.Equal(announced, []string{id}); got != tt.want || (!tt.want && len(announced) != 0) {
				t.Errorf("announced %v, want the job announced: %v", announced, tt.want)
			}
		})
	}
}

// TestReportProcessorAnnouncesOnRedis: a real Store's subscriber learns that a job finished.
func TestReportProcessorAnnouncesOnRedis(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b redistest.Backend) {
		w := newStoreWorker(t, b)
		events := subscribed(t, w.store.SubscribeFinished)
		w.start(t, cancelProcessor(report.NewSyntheticLedger(100), w.store))
		id := uuid.NewString()
		w.enqueue(t, id)
		if err := w.handlerErr(t); err != nil {
			t.Fatalf("ProcessTask: %v", err)
		}
		if got, err := next(t, events); err != nil || got != id {
			t.Errorf("finish event = %q, %v; want %s", got, err, id)
		}
	})
}
