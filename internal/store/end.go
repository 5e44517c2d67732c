package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// End is how a job's attempt ended, to record.
type End struct {
	ID     string
	Client string
	// Outcome is the attempt's: done, canceled, timed_out, unreadable or failed.
	Outcome string
	// Final is set when the attempt was the job's last: the job's end is recorded (report, record,
	// tombstone, event, the client's count). Otherwise only TaskResult is written.
	Final bool
	// Report is a done job's report.
	Report []byte
	// Canceled is the record of a job canceled before it ran.
	Canceled *Canceled
	// TaskResult, if set, is written as the task's result in asynq (the attempt's progress).
	TaskResult []byte
	// FinishedAt is when the job ended (Final); zero means now. A done job's report is stored with the
	// instant it stops being readable: FinishedAt cut to the second, plus the retention.
	FinishedAt time.Time
}

// EndJob records e in one round trip: a pipeline of endScript in the job's slot (when final), the
// task's result in asynq's, and the client's count in the client's. It returns the outcome recorded,
// which is "canceled" for a done job whose cancel came first: its report was not stored, and its
// TaskResult, written as the attempt's, must be written again to say so.
func (s *Store) EndJob(ctx context.Context, e End) (string, error) {
	value, ttl := "", s.retention+resultSlack
	switch {
	case e.Outcome == "done":
		finished := e.FinishedAt
		if finished.IsZero() {
			finished = time.Now()
		}
		value = string(appendReportHeader(nil, e.Client, ReadableUntil(finished, s.retention))) + string(e.Report)
	case e.Canceled != nil:
		b, err := json.Marshal(e.Canceled)
		if err != nil {
			return "", fmt.Errorf("encode canceled job %s: %w", e.ID, err)
		}
		value, ttl = string(b), s.retention
	}
	var end *redis.Cmd
	run := func(p redis.Pipeliner, eval func(p redis.Pipeliner) *redis.Cmd) error {
		if e.Final {
			end = eval(p)
			p.SRem(ctx, clientOpenKey(e.Client), e.ID)
		}
		if e.TaskResult != nil {
			p.HSet(ctx, asynqTaskKey(QueueOf(e.ID), e.ID), "result", e.TaskResult)
		}
		return nil
	}
	keys := []string{reportKey(e.ID), tombstoneKey(e.ID), cancelKey(e.ID), canceledKey(e.ID)}
	args := []any{e.Outcome, value, e.Client, ttl.Milliseconds(), (s.retention + resultSlack + s.tombstone).Milliseconds(), eventsChannel, e.ID}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		return run(p, func(p redis.Pipeliner) *redis.Cmd { return endScript.EvalSha(ctx, p, keys, args...) })
	})
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// A Redis that has not seen the script yet (a restart, a new node): send it whole, once.
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			return run(p, func(p redis.Pipeliner) *redis.Cmd { return endScript.Eval(ctx, p, keys, args...) })
		})
	}
	if err != nil {
		return "", fmt.Errorf("record the end of job %s: %w", e.ID, err)
	}
	if end == nil {
		return e.Outcome, nil
	}
	outcome, err := end.Text()
	if err != nil {
		return "", fmt.Errorf("record the end of job %s: %w", e.ID, err)
	}
	return outcome, nil
}

// ErrCanceled is returned when a job was canceled: by the report processor's attempt that stops for
// it. It wraps no asynq error; the processor adds SkipRetry.
var ErrCanceled = errors.New("job canceled")
