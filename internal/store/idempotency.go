package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Submission is what an Idempotency-Key stands for: the request it first came with and the job that
// request was given.
type Submission struct {
	// Fingerprint identifies the request's content; a replay with another fingerprint is refused.
	Fingerprint string    `json:"fingerprint"`
	JobID       string    `json:"job_id"`
	CreatedAt   time.Time `json:"created_at"`
	// Enqueued is set once the job is in the queue: from then on, a replay that finds no job knows it
	// was deleted or expired, not still on its way.
	Enqueued bool `json:"enqueued,omitempty"`
}

// MarkEnqueued records that the job client's key names is in the queue, keeping the record's expiry.
func (s *Store) MarkEnqueued(ctx context.Context, client, key string, sub Submission) error {
	sub.Enqueued = true
	b, err := json.Marshal(sub)
	if err != nil {
		return fmt.Errorf("encode submission: %w", err)
	}
	if err := s.rdb.SetArgs(ctx, idempotencyKey(client, key), b, redis.SetArgs{Mode: "XX", KeepTTL: true}).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("mark idempotency key: %w", err)
	}
	return nil
}
