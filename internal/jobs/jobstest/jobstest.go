// Package jobstest builds the asynq task records of report jobs, as asynq's inspector returns them, for
// the tests of the job lifecycle and of its callers.
package jobstest

import (
	"encoding/json"
	"time"

	"github.com/hibiken/asynq"

	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/tasks"
)

// TaskInfo is the record of report job id over Q1 2026, accepted at created, in state, run with at
// most maxRetry retries, each within timeout, and kept for retention once done; mods change it.
func TaskInfo(id string, created time.Time, state asynq.TaskState, maxRetry int, timeout, retention time.Duration, mods ...func(*asynq.TaskInfo)) *asynq.TaskInfo {
	info := &asynq.TaskInfo{
		ID:        id,
		Queue:     store.QueueOf(id),
		Type:      tasks.TypeReport,
		Payload:   []byte(`{"range":"2026-01-01..2026-03-31"}`),
		Headers:   map[string]string{tasks.HeaderCreatedAt: created.Format(time.RFC3339Nano)},
		State:     state,
		MaxRetry:  maxRetry,
		Timeout:   timeout,
		Retention: retention,
	}
	for _, m := range mods {
		m(info)
	}
	return info
}

// WithProgress sets the task's result to the progress p (a jobs.Progress).
func WithProgress(p any) func(*asynq.TaskInfo) {
	return func(info *asynq.TaskInfo) {
		b, err := json.Marshal(p)
		if err != nil {
			panic(err)
		}
		info.Result = b
	}
}
