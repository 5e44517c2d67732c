package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// EndRecord is how a job's attempt ended, to record.
type EndRecord struct {
	ID     string
	Client string
	// Outcome is the attempt's: done, canceled, timed_out, unreadable or failed.
	Outcome string
	// Final is set when the attempt was the job's last: the job's end is recorded (report, record,
	// tombstone, event, the client's count). Otherwise only Progress is written.
	Final bool
	// Report is a done job's report.
	Report []byte
	// Canceled is the record of a job canceled before it ran.
	Canceled *Canceled
	// Progress, if set, is the attempt's progress (its JSON), written as the task's result in asynq
	// unless the job has no task (Canceled). For the job's end (Final) it is also kept with the tombstone
	// as the job's end record, under the outcome recorded (Store.Tombstone), so that whoever the finish
	// event wakes can read the job's end there at once, before asynq has moved the task to its final
	// state.
	Progress []byte
	// FinishedAt is when the job ended (Final); zero means now.
	FinishedAt time.Time
	// ExpiresAt is when the job stops being readable (Final): a done job's report is stored with it,
	// and its tombstone lives the tombstone period beyond it. Zero means a done job's: FinishedAt cut
	// to the second, plus the retention (ReadableUntil).
	ExpiresAt time.Time
}

// RecordEnd records e in one round trip: a pipeline of endScript in the job's slot (when final), the
// task's result in asynq's, and the client's count in the client's. It returns the outcome recorded,
// which is "canceled" for a done job whose cancel came first: its report was not stored, and its
// Progress, written as the attempt's, must be written again to say so.
func (s *Store) RecordEnd(ctx context.Context, e EndRecord) (string, error) {
	finished, expires := e.FinishedAt, e.ExpiresAt
	if finished.IsZero() {
		finished = time.Now()
	}
	if expires.IsZero() {
		expires = ReadableUntil(finished, s.retention)
	}
	value, ttl := "", s.retention+resultSlack
	switch {
	case e.Outcome == "done":
		value = string(appendReportHeader(nil, e.Client, expires)) + string(e.Report)
	case e.Canceled != nil:
		b, err := json.Marshal(e.Canceled)
		if err != nil {
			return "", fmt.Errorf("encode canceled job %s: %w", e.ID, err)
		}
		value, ttl = string(b), s.retention
	}
	var end *redis.Cmd
	run := func(p redis.Pipeliner, eval func(p redis.Pipeliner) *redis.Cmd) error {
		// The task's result first: on one Redis, whoever the finish event wakes reads the ended attempt's
		// result from the task too, not only from the end record (jobs.fromTask). On a cluster the two
		// are on different nodes, written side by side: there a woken read takes the end record.
		if e.Progress != nil && e.Canceled == nil {
			p.HSet(ctx, asynqTaskKey(QueueOf(e.ID), e.ID), "result", e.Progress)
		}
		if e.Final {
			end = eval(p)
			p.SRem(ctx, clientOpenKey(e.Client), e.ID)
		}
		return nil
	}
	keys := []string{reportKey(e.ID), tombstoneKey(e.ID), cancelKey(e.ID), canceledKey(e.ID)}
	// The tombstone's lifetime is counted from the finish, so that it runs out the tombstone period
	// after the job stops being readable (give or take the moment between the finish and this write).
	tomb := expires.Add(s.tombstone).Sub(finished)
	args := []any{e.Outcome, value, e.Client, ttl.Milliseconds(), max(tomb, time.Millisecond).Milliseconds(), eventsChannel, e.ID,
		endRecordTag, e.Progress}
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

// Tombstone is what is kept of a job once it has ended: its owner and, from its end, the job's end
// record (its outcome and its last attempt's progress, the JSON of the task's result). A tombstone
// written by a delete, or before reportd kept end records, has no end record (Outcome "").
type Tombstone struct {
	Owner    string
	Outcome  string
	Progress []byte
}

// endRecordTag begins a tombstone that holds an end record: "reportd-end 1 <outcome> <owner's length>
// <owner>\n<progress JSON>" (endScript writes it). A value without it is the bare owner.
const endRecordTag = "reportd-end 1 "

// parseTombstone reads a tombstone's value; one that does not start with a well-formed end record is
// all owner.
func parseTombstone(value string) Tombstone {
	rest, ok := strings.CutPrefix(value, endRecordTag)
	if !ok {
		return Tombstone{Owner: value}
	}
	outcome, rest, ok1 := strings.Cut(rest, " ")
	n, tail, ok2 := cutInt([]byte(rest))
	if !ok1 || !ok2 || outcome == "" || n < 0 || int64(len(tail)) < n+1 || tail[n] != '\n' {
		return Tombstone{Owner: value}
	}
	return Tombstone{Owner: string(tail[:n]), Outcome: outcome, Progress: tail[n+1:]}
}
