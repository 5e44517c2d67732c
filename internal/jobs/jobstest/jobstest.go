// Package jobstest builds the asynq task records of report jobs, as asynq's inspector returns them, and
// reads a job's webhook tasks from a live queue, for the tests of the job lifecycle and of its callers.
package jobstest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/testkit"
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

// AwaitWebhookTaskCompleted waits up to timeout for the task that delivers job id's webhook, once
// delivered, to complete, and returns its record. It fails tb at once should the task be unreadable or
// leave active for another state.
func AwaitWebhookTaskCompleted(tb testing.TB, inspector *asynq.Inspector, id string, timeout time.Duration) *asynq.TaskInfo {
	tb.Helper()
	var info *asynq.TaskInfo
	testkit.Eventually(tb, timeout, 10*time.Millisecond, func() error {
		var err error
		if info, err = inspector.GetTaskInfo(store.WebhookQueue, "webhook-"+id); err != nil {
			tb.Fatalf("the webhook task of job %s: %v", id, err)
		}
		switch info.State {
		case asynq.TaskStateCompleted:
			return nil
		case asynq.TaskStateActive:
			return fmt.Errorf("the webhook task of delivered job %s is still active, want completed", id)
		default:
			tb.Fatalf("the webhook task of delivered job %s is %s, want completed", id, info.State)
			return nil
		}
	})
	return info
}

// WebhookTasksOf counts the tasks on the webhook queue, in any state, that deliver job id's event,
// failing tb if a list cannot be read.
func WebhookTasksOf(tb testing.TB, inspector *asynq.Inspector, id string) int {
	tb.Helper()
	n := 0
	for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
		inspector.ListPendingTasks, inspector.ListActiveTasks, inspector.ListScheduledTasks,
		inspector.ListRetryTasks, inspector.ListArchivedTasks, inspector.ListCompletedTasks,
	} {
		infos, err := list(store.WebhookQueue)
		if err != nil {
			tb.Fatalf("list webhook tasks: %v", err)
		}
		for _, info := range infos {
			var p tasks.WebhookPayload
			if json.Unmarshal(info.Payload, &p) == nil && p.JobID == id {
				n++
			}
		}
	}
	return n
}
