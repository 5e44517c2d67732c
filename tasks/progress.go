package tasks

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Progress is what a report job writes as its asynq task result while it runs: small, so that every
// status read (which returns the whole result) stays cheap. The last write survives into the task's
// retry, archived and completed states.
type Progress struct {
	// Share is the share of the range's days done, 0..1.
	Share float64 `json:"progress"`
	// DaysDone and DaysTotal are the counts behind Share.
	DaysDone  int `json:"days_done"`
	DaysTotal int `json:"days_total"`
	// StartedAt is when this attempt started.
	StartedAt time.Time `json:"started_at"`
	// Attempt counts attempts from 1.
	Attempt int `json:"attempt"`
	// Outcome is how the attempt ended; empty while it runs.
	Outcome Outcome `json:"outcome,omitempty"`
	// FinishedAt is when the job's last attempt ended, as the worker recorded it; zero until then, and
	// in jobs finished before reportd recorded it. A done job stays readable until this instant, cut to
	// the second, plus the retention: the same instant its stored report names (store.End).
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// Outcome is why an attempt of a report job ended. The worker records it in the task's result as the
// attempt ends, so that a status read decodes it as data: asynq's last error is free text, and no state
// is ever derived from it.
type Outcome string

// The outcomes of an attempt.
const (
	// OutcomeDone: the report was computed and saved.
	OutcomeDone Outcome = "done"
	// OutcomeCanceled: the job was canceled, before or while it ran, or as it finished.
	OutcomeCanceled Outcome = "canceled"
	// OutcomeTimedOut: the attempt ran into the job's time limit.
	OutcomeTimedOut Outcome = "timed_out"
	// OutcomeUnreadable: the job's payload cannot be decoded by this version of reportd.
	OutcomeUnreadable Outcome = "unreadable"
	// OutcomeFailed: anything else went wrong (the ledger, encoding, saving).
	OutcomeFailed Outcome = "failed"
)

// ParseProgress decodes a task result written by a report job.
func ParseProgress(b []byte) (Progress, error) {
	var p Progress
	if err := json.Unmarshal(b, &p); err != nil {
		return Progress{}, fmt.Errorf("decode progress: %w", err)
	}
	return p, nil
}

// progressWriter writes a job's progress at a bounded rate: every write is a Redis round trip, and a
// quarter's report sees hundreds of days.
type progressWriter struct {
	w     io.Writer
	now   func() time.Time
	every time.Duration
	last  time.Time
	p     Progress
}

// set records done of total days and writes it if the last write is at least every ago, or if force is
// set. It returns the write's error, which the job may ignore: progress is advisory.
func (pw *progressWriter) set(done, total int, force bool) error {
	pw.p.DaysDone, pw.p.DaysTotal = done, total
	if total > 0 {
		pw.p.Share = float64(done) / float64(total)
	}
	now := pw.now()
	if !force && now.Sub(pw.last) < pw.every {
		return nil
	}
	pw.last = now
	return pw.write()
}

// write writes the progress as it is now.
func (pw *progressWriter) write() error {
	b, err := json.Marshal(pw.p)
	if err != nil {
		return fmt.Errorf("encode progress: %w", err)
	}
	if _, err := pw.w.Write(b); err != nil {
		return fmt.Errorf("write progress: %w", err)
	}
	return nil
}
