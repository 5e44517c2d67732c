package store

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/reportd/reportd/internal/redistest"
)

// next reads the next event within two seconds.
func next(t *testing.T, e *Events) (string, bool, error) {
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
	// The first event of a subscription is its confirmation: missed (look again), not a job.
	if id, missed, err := next(t, e); err != nil || id != "" || !missed {
		t.Fatalf("first event of a new subscription = %q, %v, %v; want \"\", missed, nil", id, missed, err)
	}
	return e
}

// TestEvents runs the finish and cancel channels against every Redis backend: each subscription gets
// the ids published on its own channel, in order, and nothing of the other's.
func TestEvents(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		s := NewStore(b.Client(t), testRetention, testTombstone)
		ctx := context.Background()
		finished := subscribed(t, s.SubscribeFinished)
		cancels := subscribed(t, s.SubscribeCancels)
		also := subscribed(t, s.SubscribeFinished) // every API process has its own

		done1, done2, stop := uuid.NewString(), uuid.NewString(), uuid.NewString()
		for _, publish := range []func() error{
			func() error {
				_, err := s.RecordEnd(ctx, EndRecord{ID: done1, Client: "acme", Outcome: "done", Final: true})
				return err
			},
			func() error { return s.PublishCancel(ctx, stop) },
			func() error {
				_, err := s.RecordEnd(ctx, EndRecord{ID: done2, Client: "acme", Outcome: "failed", Final: true})
				return err
			},
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
				if got, _, err := next(t, tc.e); err != nil || got != want {
					t.Errorf("%s: next event = %q, %v; want %s", tc.name, got, err, want)
				}
			}
		}

		if err := finished.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if _, _, err := next(t, finished); err == nil {
			t.Error("Next after Close succeeded")
		}
	})
}
