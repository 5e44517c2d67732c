package store

import (
	"context"
	"fmt"
	"strings"

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

// WriteProgress records running job id's progress b (its JSON) as its task's result, exactly as asynq's
// ResultWriter would, and publishes it to the API processes' event streams, in one round trip.
func (s *Store) WriteProgress(ctx context.Context, id string, b []byte) error {
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, asynqTaskKey(QueueOf(id), id), "result", b)
		p.Publish(ctx, progressChannel, id+" "+string(b))
		return nil
	})
	if err != nil {
		return fmt.Errorf("write progress of job %s: %w", id, err)
	}
	return nil
}

// StartAttempt records that an attempt of job id is under way, its progress b (its JSON: no days done
// yet) as its task's result, as WriteProgress does, and reports whether the job was asked to stop: in
// one round trip, the one an attempt makes before it starts. The record is written either way; an
// attempt that stops at once writes its end over it.
func (s *Store) StartAttempt(ctx context.Context, id string, b []byte) (bool, error) {
	var canceled *redis.IntCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		canceled = p.Exists(ctx, cancelKey(id))
		p.HSet(ctx, asynqTaskKey(QueueOf(id), id), "result", b)
		p.Publish(ctx, progressChannel, id+" "+string(b))
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("record the start of job %s: %w", id, err)
	}
	return canceled.Val() == 1, nil
}

// ProgressEvents is a subscription to running jobs' progress.
type ProgressEvents struct{ ps *redis.PubSub }

// SubscribeProgress subscribes to the progress of running jobs. Close the subscription when done.
func (s *Store) SubscribeProgress(ctx context.Context) *ProgressEvents {
	return &ProgressEvents{ps: s.rdb.Subscribe(ctx, progressChannel)}
}

// Next blocks until the next progress and returns its job's id and the progress JSON. It returns
// missed instead when the subscription was (re)established, and progress may have been lost.
func (e *ProgressEvents) Next(ctx context.Context) (id string, progress []byte, missed bool, err error) {
	msg, err := e.ps.Receive(ctx)
	if err != nil {
		return "", nil, false, fmt.Errorf("receive job progress: %w", err)
	}
	m, ok := msg.(*redis.Message)
	if !ok { // *redis.Subscription after (re)subscribing, *redis.Pong
		return "", nil, true, nil
	}
	id, rest, _ := strings.Cut(m.Payload, " ")
	return id, []byte(rest), false, nil
}

// Close ends the subscription.
func (e *ProgressEvents) Close() error { return e.ps.Close() }
