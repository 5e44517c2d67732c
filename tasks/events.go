package tasks

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// eventsChannel is the Redis pub/sub channel on which workers announce that a job reached a terminal
// status (done, failed, canceled). API processes subscribe once each and wake their waiting requests.
const eventsChannel = "reportd:events"

// cancelChannel is the Redis pub/sub channel on which the API asks workers to stop a running job.
// asynq's own CancelProcessing cannot be used for that: it cancels the handler's context, and asynq
// then records the context's error and retries the task, whatever the handler returns (asynq v0.26.0,
// processor.go: the select on ctx.Done() wins over the handler's result).
const cancelChannel = "reportd:cancel"

// PublishFinished announces that job id reached a terminal status.
func (s *Store) PublishFinished(ctx context.Context, id string) error {
	if err := s.rdb.Publish(ctx, eventsChannel, id).Err(); err != nil {
		return fmt.Errorf("publish finish of job %s: %w", id, err)
	}
	return nil
}

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

// Next blocks until the next event and returns its job id, or "" when the
// subscription was (re)established: events published while it was down are lost, so every waiter must
// look again.
func (e *Events) Next(ctx context.Context) (string, error) {
	msg, err := e.ps.Receive(ctx)
	if err != nil {
		return "", fmt.Errorf("receive job events: %w", err)
	}
	switch m := msg.(type) {
	case *redis.Message:
		return m.Payload, nil
	default: // *redis.Subscription after (re)subscribing, *redis.Pong
		return "", nil
	}
}

// Close ends the subscription.
func (e *Events) Close() error { return e.ps.Close() }
