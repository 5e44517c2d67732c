package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
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

// Tombstone returns what is kept of job id once it ended (its owner, and its end record), and false
// when it never ended here (it was never issued, or has not ended yet) or its tombstone has run out.
func (s *Store) Tombstone(ctx context.Context, id string) (Tombstone, bool, error) {
	value, ok, err := s.get(ctx, tombstoneKey(id), "tombstone of job", id)
	if !ok {
		return Tombstone{}, false, err
	}
	return parseTombstone(string(value)), true, nil
}

// get returns key's value, and false when there is none or it cannot be read; the error of a failed
// read says "read <what> <id>".
func (s *Store) get(ctx context.Context, key, what, id string) ([]byte, bool, error) {
	value, err := s.rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %s %s: %w", what, id, err)
	}
	return value, true, nil
}

// Report is a done job's report as stored.
type Report struct {
	// Body is the report's JSON.
	Body []byte
	// Owner is the client whose job it is, and ReadableUntil the instant the job stops being readable
	// (its finish cut to the second, plus the retention): enough to answer a result read without
	// asynq. Both are zero for a report stored before reportd stored them with it.
	Owner         string
	ReadableUntil time.Time
}

// Report returns the stored report of job id, in one round trip, or an error wrapping ErrNoReport.
func (s *Store) Report(ctx context.Context, id string) (Report, error) {
	value, ok, err := s.get(ctx, reportKey(id), "report of job", id)
	if err != nil {
		return Report{}, err
	}
	if !ok {
		return Report{}, fmt.Errorf("job %s: %w", id, ErrNoReport)
	}
	return parseReport(value), nil
}

// ReadableUntil is when a job that finished at finished stops being readable: asynq records a task's
// completion in whole seconds, after reportd's end of the job, so cutting the finish to the second
// never puts this after asynq's own expiry of the task.
func ReadableUntil(finished time.Time, retention time.Duration) time.Time {
	return finished.Truncate(time.Second).Add(retention)
}

// reportHeaderTag begins the line a stored report starts with: "reportd-report 1 <readable until, Unix
// ms> <owner's length> <owner>\n", then the report's JSON. A value without it is a bare report, as
// reportd stored them before.
const reportHeaderTag = "reportd-report 1 "

func appendReportHeader(b []byte, owner string, until time.Time) []byte {
	b = append(b, reportHeaderTag...)
	b = strconv.AppendInt(b, until.UnixMilli(), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(owner)), 10)
	b = append(b, ' ')
	b = append(b, owner...)
	return append(b, '\n')
}

// parseReport reads a stored report; a value that does not start with a well-formed header is all body.
func parseReport(value []byte) Report {
	rest, ok := bytes.CutPrefix(value, []byte(reportHeaderTag))
	if !ok {
		return Report{Body: value}
	}
	ms, rest, ok1 := cutInt(rest)
	n, rest, ok2 := cutInt(rest)
	if !ok1 || !ok2 || n < 0 || int64(len(rest)) < n+1 || rest[n] != '\n' {
		return Report{Body: value}
	}
	return Report{Body: rest[n+1:], Owner: string(rest[:n]), ReadableUntil: time.UnixMilli(ms).UTC()}
}

// cutInt reads a decimal integer followed by a space.
func cutInt(b []byte) (int64, []byte, bool) {
	digits, rest, ok := bytes.Cut(b, []byte{' '})
	if !ok {
		return 0, nil, false
	}
	v, err := strconv.ParseInt(string(digits), 10, 64)
	return v, rest, err == nil
}
