package jobs

import (
	"encoding/json"
	"fmt"
	"time"
)

// Progress is what a job's attempt records as its asynq task's result while it runs, and how it ended
// once it has: small, so that every status read (which returns the whole result) stays cheap. The last
// write survives into the task's retry, archived and completed states.
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
	// Outcome is how the attempt ended; empty while it runs (and, in the task's result, for a done
	// attempt: a completed task says so by itself).
	Outcome Outcome `json:"outcome,omitempty"`
	// FinishedAt is when the job's last attempt ended, as the worker recorded it; zero until then, and
	// in jobs finished before reportd recorded it. A done job stays readable until this instant, cut to
	// the second, plus the retention: the same instant its stored report names (store.ReadableUntil).
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// Outcome is why an attempt of a job ended. It is decided here, from what the attempt came to
// (EndAttempt), and recorded in the task's result as the attempt ends, so that a status read decodes it
// as data: asynq's last error is free text, and no state is ever derived from it.
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

// State is the terminal state a client sees for a job whose last attempt ended with o: done, canceled
// or failed.
func (o Outcome) State() State {
	switch o {
	case OutcomeDone:
		return Done
	case OutcomeCanceled:
		return Canceled
	}
	return Failed
}

// ParseProgress decodes a task result written by a job's attempt.
func ParseProgress(b []byte) (Progress, error) {
	var p Progress
	if err := json.Unmarshal(b, &p); err != nil {
		return Progress{}, fmt.Errorf("decode progress: %w", err)
	}
	return p, nil
}
