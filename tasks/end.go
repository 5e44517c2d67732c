package tasks

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/reportd/reportd/internal/store"
)

// EndRecorder records the end of a job's attempt; *store.Store is the production one.
type EndRecorder interface {
	EndJob(ctx context.Context, e store.End) (string, error)
}

// RecordEnd records ending e in one round trip (store.EndJob): the attempt's progress, and its outcome
// unless it is done (a completed task says so by itself), as the task's result, and for the job's last
// attempt the job's end. A done attempt whose job was canceled first is recorded canceled: its report
// is not kept, and its task's result is written again to say so before asynq completes the task, or
// the job would read done with no report. It returns the outcome recorded.
func RecordEnd(ctx context.Context, r EndRecorder, e Ending) (Outcome, error) {
	result := e.Progress
	if e.Outcome != OutcomeDone {
		result.Outcome = e.Outcome
	}
	if e.Final {
		result.FinishedAt = e.FinishedAt
	}
	b, err := json.Marshal(result)
	if err != nil {
		return "", fmt.Errorf("encode progress: %w", err)
	}
	recorded, err := r.EndJob(ctx, store.End{ID: e.ID, Client: e.Client, Outcome: string(e.Outcome), Final: e.Final, Report: e.Report, TaskResult: b,
		FinishedAt: e.FinishedAt})
	if err != nil {
		return "", err
	}
	outcome := Outcome(recorded)
	if outcome != e.Outcome {
		result.Outcome = outcome
		if b, err = json.Marshal(result); err != nil {
			return "", fmt.Errorf("encode progress: %w", err)
		}
		if _, err := r.EndJob(ctx, store.End{ID: e.ID, Client: e.Client, Outcome: recorded, TaskResult: b}); err != nil {
			return "", err
		}
	}
	return outcome, nil
}
