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

// CreateTombstone records that id was issued to client, for lifetime: the caller's bound on how long
// the job may live before it finishes, plus retention and the tombstone period.
func (s *Store) CreateTombstone(ctx context.Context, id, client string, lifetime time.Duration) error {
	ttl := lifetime + s.retention + s.tombstone
	if err := s.rdb.Set(ctx, tombstoneKey(id), client, ttl).Err(); err != nil {
		return fmt.Errorf("create tombstone of job %s: %w", id, err)
	}
	return nil
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

// SaveReport stores a finished job's report for the retention period and restarts the job's tombstone
// from now, so that the id answers 410 for the whole tombstone period after the report expires. It
// returns ErrCanceled, storing nothing, when a cancel of the job was asked for.
func (s *Store) SaveReport(ctx context.Context, id string, body []byte) error {
	keep := s.retention + resultSlack
	saved, err := saveReportScript.Run(ctx, s.rdb,
		[]string{reportKey(id), tombstoneKey(id), cancelKey(id)},
		body, keep.Milliseconds(), (keep + s.tombstone).Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("save report of job %s: %w", id, err)
	}
	if saved == 0 {
		return fmt.Errorf("save report of job %s: %w", id, ErrCanceled)
	}
	return nil
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
