package tasks_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/tasks"
)

// failingLedger is a ledger that cannot be reached.
type failingLedger struct{ err error }

func (l failingLedger) Day(_ context.Context, _ time.Time, buf []report.Order) ([]report.Order, error) {
	return buf, l.err
}

// TestReportProcessorAnnounces checks when a job's attempt announces a finish: when it is the job's
// last (done, canceled, unretryable, out of retries), and not when a retry follows or a shutdown
// stopped it.
func TestReportProcessorAnnounces(t *testing.T) {
	t.Parallel()
	failing := failingLedger{errors.New("ledger unreachable")}
	tests := []struct {
		name     string
		ledger   report.Ledger
		payload  string // "" means tenDays
		maxRetry int
		canceled bool // the job's marker is set
		shutdown bool // the attempt's context is canceled, as asynq does on shutdown
		want     bool
	}{
		{name: "done", ledger: report.NewSyntheticLedger(100), want: true},
		{name: "canceled", ledger: report.NewSyntheticLedger(100), canceled: true, want: true},
		{name: "bad-payload", ledger: report.NewSyntheticLedger(100), payload: "not json", maxRetry: 3, want: true},
		{name: "last-retry-failed", ledger: failing, maxRetry: 0, want: true},
		{name: "failed-with-retries-left", ledger: failing, maxRetry: 3, want: false},
		{name: "shutdown", ledger: report.NewSyntheticLedger(100), maxRetry: 3, shutdown: true, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := uuid.NewString()
			saver := &fakeSaver{canceled: map[string]bool{id: tt.canceled}}
			p := newProcessor(tt.ledger, saver)
			w := startWorker(t, canceledIf(tt.shutdown, p.ProcessTask))
			task, opts, err := tasks.NewReportTask(id, store.QueueOf(id), tenDays, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if tt.payload != "" {
				task = asynq.NewTask(tasks.TypeReport, []byte(tt.payload))
			}
			w.enqueue(t, task, append(opts, asynq.MaxRetry(tt.maxRetry))...)
			w.handlerErr(t) // the announcement is made before the handler returns
			saver.mu.Lock()
			announced := slices.Clone(saver.announced)
			saver.mu.Unlock()
			if got := slices.Equal(announced, []string{id}); got != tt.want || (!tt.want && len(announced) != 0) {
				t.Errorf("announced %v, want the job announced: %v", announced, tt.want)
			}
		})
	}
}
