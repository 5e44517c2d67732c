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

// ClaimIdempotencyKey records sub under client's key for ttl unless the key already has a record. It
// returns the record the key holds after the call, and whether that is sub: exactly one of any number of
// concurrent claims wins.
func (s *Store) ClaimIdempotencyKey(ctx context.Context, client, key string, sub Submission, ttl time.Duration) (Submission, bool, error) {
	b, err := json.Marshal(sub)
	if err != nil {
		return Submission{}, false, fmt.Errorf("encode submission: %w", err)
	}
	k := idempotencyKey(client, key)
	// The loop covers a record that expires between the failed SET NX and the GET.
	for range 3 {
		ok, err := s.rdb.SetNX(ctx, k, b, ttl).Result()
		if err != nil {
			return Submission{}, false, fmt.Errorf("claim idempotency key: %w", err)
		}
		if ok {
			return sub, true, nil
		}
		held, err := s.rdb.Get(ctx, k).Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return Submission{}, false, fmt.Errorf("read idempotency key: %w", err)
		}
		var got Submission
		if err := json.Unmarshal(held, &got); err != nil {
			return Submission{}, false, fmt.Errorf("decode idempotency key record: %w", err)
		}
		return got, false, nil
	}
	return Submission{}, false, errors.New("claim idempotency key: the record kept expiring")
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

// ReleaseIdempotencyKey forgets client's key, when the request that claimed it was refused before its
// job was created (a limit): the client's retry must be able to claim it again.
func (s *Store) ReleaseIdempotencyKey(ctx context.Context, client, key string) error {
	if err := s.rdb.Del(ctx, idempotencyKey(client, key)).Err(); err != nil {
		return fmt.Errorf("release idempotency key: %w", err)
	}
	return nil
}
