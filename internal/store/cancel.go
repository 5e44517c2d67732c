package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Canceled is the record of a canceled job, kept for the retention period like a finished job's.
type Canceled struct {
	CreatedAt  time.Time `json:"created_at"`
	Range      string    `json:"range"`
	CanceledAt time.Time `json:"canceled_at"`
	// StartedAt, Attempt and Progress are those of the attempt that was stopped, if one was running.
	StartedAt time.Time `json:"started_at,omitzero"`
	Attempt   int       `json:"attempt,omitempty"`
	Progress  float64   `json:"progress"`
	// CallbackURL is the job's, so that its webhook stays readable.
	CallbackURL string `json:"callback_url,omitempty"`
	// Client owns the job.
	Client string `json:"client,omitempty"`
}

// RequestCancel marks job id as canceled for lifetime (the job's bound on how long it may live), so
// that an attempt that starts or finishes after this point gives up without a report, even when asynq's
// cancel message does not reach its worker.
func (s *Store) RequestCancel(ctx context.Context, id string, lifetime time.Duration) error {
	if err := s.rdb.Set(ctx, cancelKey(id), "1", lifetime).Err(); err != nil {
		return fmt.Errorf("request cancel of job %s: %w", id, err)
	}
	return nil
}

// RequestCancelPending marks pending job id canceled, as RequestCancel does, and writes c, the record
// its cancel will leave, in the same round trip, before the job's task is taken out of the queue: a read
// that finds no task in between finds the record (a job being canceled reads canceled, not gone). If the
// task cannot be deleted (a worker took it meanwhile), the record is never read: a read finds the task.
func (s *Store) RequestCancelPending(ctx context.Context, id string, lifetime time.Duration, c Canceled) error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode canceled job %s: %w", id, err)
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, cancelKey(id), "1", lifetime)
		p.Set(ctx, canceledKey(id), b, s.retention)
		return nil
	})
	if err != nil {
		return fmt.Errorf("request cancel of job %s: %w", id, err)
	}
	return nil
}

// ForgetCanceled removes the canceled record RequestCancelPending wrote for job id, when its task could
// not be taken out of the queue after all: the job runs, and ends as a running job's cancel ends it.
func (s *Store) ForgetCanceled(ctx context.Context, id string) error {
	if err := s.rdb.Del(ctx, canceledKey(id)).Err(); err != nil {
		return fmt.Errorf("forget canceled record of job %s: %w", id, err)
	}
	return nil
}

// CancelRequested reports whether job id was marked canceled.
func (s *Store) CancelRequested(ctx context.Context, id string) (bool, error) {
	n, err := s.rdb.Exists(ctx, cancelKey(id)).Result()
	if err != nil {
		return false, fmt.Errorf("read cancel of job %s: %w", id, err)
	}
	return n == 1, nil
}

// CanceledJob returns the record of canceled job id, and false when there is none.
func (s *Store) CanceledJob(ctx context.Context, id string) (Canceled, bool, error) {
	b, ok, err := s.get(ctx, canceledKey(id), "canceled job", id)
	if !ok {
		return Canceled{}, false, err
	}
	var c Canceled
	if err := json.Unmarshal(b, &c); err != nil {
		return Canceled{}, false, fmt.Errorf("decode canceled job %s: %w", id, err)
	}
	return c, true, nil
}

// DeleteJob deletes everything kept of client's finished job id but its tombstone, which it writes
// anew to live for keep, so that the id answers 410 Gone until then (the caller's keep is until its
// tombstone would have run out had the job not been deleted); a keep of zero or less deletes the
// tombstone too, and the id answers 404 at once.
func (s *Store) DeleteJob(ctx context.Context, id, client string, keep time.Duration) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, reportKey(id), canceledKey(id), cancelKey(id), webhookKey(id))
		if keep > 0 {
			p.Set(ctx, tombstoneKey(id), client, max(keep, time.Millisecond))
		} else {
			p.Del(ctx, tombstoneKey(id))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("forget job %s: %w", id, err)
	}
	return nil
}
