package tasks

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// eventsChannel is the Redis pub/sub channel on which workers announce that a job reached a terminal
// status (done, failed, canceled). API processes subscribe once each and wake their waiting requests.
const eventsChannel = "reportd:events"

// PublishFinished announces that job id reached a terminal status.
func (s *Store) PublishFinished(ctx context.Context, id string) error {
	if err := s.rdb.Publish(ctx, eventsChannel, id).Err(); err != nil {
		return fmt.Errorf("publish finish of job %s: %w", id, err)
	}
	return nil
}

// Events is a subscription to finished jobs' ids.
type Events struct{ ps *redis.PubSub }

// SubscribeFinished subscribes to the ids of jobs that finish. Close the subscription when done.
func (s *Store) SubscribeFinished(ctx context.Context) *Events {
	return &Events{ps: s.rdb.Subscribe(ctx, eventsChannel)}
}

// Next blocks until the next event and returns the id of the job that finished, or "" when the
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
