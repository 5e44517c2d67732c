package store

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// PublishCancel asks the worker running job id to stop it. The job's cancel marker must be set first:
// a worker that misses the message (or starts the job later) finds the marker.
func (s *Store) PublishCancel(ctx context.Context, id string) error {
	if err := s.rdb.Publish(ctx, cancelChannel, id).Err(); err != nil {
		return fmt.Errorf("publish cancel of job %s: %w", id, err)
	}
	return nil
}

// Events is a subscription to job ids: of jobs that finished, or of jobs to cancel.
type Events struct{ ps *redis.PubSub }

// SubscribeFinished subscribes to the ids of jobs that finish. Close the subscription when done.
func (s *Store) SubscribeFinished(ctx context.Context) *Events {
	return &Events{ps: s.rdb.Subscribe(ctx, eventsChannel)}
}

// SubscribeCancels subscribes to the ids of jobs to cancel. Close the subscription when done.
func (s *Store) SubscribeCancels(ctx context.Context) *Events {
	return &Events{ps: s.rdb.Subscribe(ctx, cancelChannel)}
}

// Next blocks until the next event and returns its job id. It returns missed instead when the
// subscription was (re)established: events published while it was down are lost, so whoever waits on
// them must look again.
func (e *Events) Next(ctx context.Context) (id string, missed bool, err error) {
	msg, err := e.ps.Receive(ctx)
	if err != nil {
		return "", false, fmt.Errorf("receive job events: %w", err)
	}
	switch m := msg.(type) {
	case *redis.Message:
		return m.Payload, false, nil
	default: // *redis.Subscription after (re)subscribing, *redis.Pong
		return "", true, nil
	}
}

// Close ends the subscription.
func (e *Events) Close() error { return e.ps.Close() }
