package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNoReport is returned by Store.Report when no report is stored for a job: it never finished, or its
// report has expired or been deleted.
var ErrNoReport = errors.New("no report stored")

// Store keeps what reportd stores in Redis beside asynq's own keys: each job's tombstone and each
// finished job's report. The API and the worker both use it; it owns the key conventions.
type Store struct {
	rdb       redis.UniversalClient
	retention time.Duration
	tombstone time.Duration
}

// NewStore returns a Store on rdb. retention is how long a finished job stays readable; tombstone is how
// much longer after that its id answers 410 Gone.
func NewStore(rdb redis.UniversalClient, retention, tombstone time.Duration) *Store {
	return &Store{rdb: rdb, retention: retention, tombstone: tombstone}
}

// Tombstone returns the client job id was issued to, and false when it was never issued or its
// tombstone has run out.
func (s *Store) Tombstone(ctx context.Context, id string) (string, bool, error) {
	owner, err := s.rdb.Get(ctx, tombstoneKey(id)).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read tombstone of job %s: %w", id, err)
	}
	return owner, true, nil
}

// Report returns the stored report of job id, or an error wrapping ErrNoReport.
func (s *Store) Report(ctx context.Context, id string) ([]byte, error) {
	body, err := s.rdb.Get(ctx, reportKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("job %s: %w", id, ErrNoReport)
	}
	if err != nil {
		return nil, fmt.Errorf("read report of job %s: %w", id, err)
	}
	return body, nil
}
