package impl

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/jobs/jobstest"
	"github.com/reportd/reportd/internal/problem"
	"github.com/reportd/reportd/internal/store"
)

// activeOnDelete is a fakeTasks whose pending task becomes active just as DELETE tries to delete it: a
// worker picked it up between the read and the delete.
type activeOnDelete struct{ *fakeTasks }

func (a activeOnDelete) DeleteTask(queue, id string) error {
	info, err := a.GetTaskInfo(store.ReportQueue, id)
	if err == nil && info.State == asynq.TaskStatePending {
		info.State = asynq.TaskStateActive
		a.put(info)
	}
	return a.fakeTasks.DeleteTask(queue, id)
}

// TestCancelReport cancels and deletes jobs in every state: a cancel keeps the record and is
// idempotent, a delete deletes a finished job only.
func TestCancelReport(t *testing.T) {
	t.Parallel()
	started := testNow.Add(-10 * time.Second)
	stoppedAt := testNow.Add(-time.Second).Truncate(time.Second)
	id := testID.String()
	progress := func(share float64) func(*asynq.TaskInfo) {
		return jobstest.WithProgress(jobs.Progress{Share: share, StartedAt: started, Attempt: 1})
	}
	// The worker's part, played by the fake store's PublishCancel.
	stops := func(f *fixture) {
		f.tasks.put(reportInfo(asynq.TaskStateArchived, jobstest.WithProgress(jobs.Progress{Share: 0.4, StartedAt: started, Attempt: 1, Outcome: jobs.OutcomeCanceled}),
			func(i *asynq.TaskInfo) {
				i.LastErr, i.LastFailedAt = "job canceled: skip retry for the task", stoppedAt
			}))
	}
	finishes := func(f *fixture) {
		f.tasks.put(reportInfo(asynq.TaskStateCompleted, progress(1), func(i *asynq.TaskInfo) { i.CompletedAt = stoppedAt }))
	}

	canceledNow := baseStatus(gen.Canceled)
	canceledNow.FinishedAt, canceledNow.ExpiresAt = ptr(testNow), ptr(testNow.Add(testPolicy.Retention))
	retriedCanceled := canceledNow
	retriedCanceled.Progress, retriedCanceled.StartedAt, retriedCanceled.Attempt = 0.25, ptr(started), ptr(1)
	stopped := baseStatus(gen.Canceled)
	stopped.Progress, stopped.StartedAt, stopped.Attempt = 0.4, ptr(started), ptr(1)
	stopped.FinishedAt, stopped.ExpiresAt = ptr(stoppedAt), ptr(stoppedAt.Add(testPolicy.Retention))
	canceledEarlier := baseStatus(gen.Canceled)
	canceledEarlier.FinishedAt, canceledEarlier.ExpiresAt = ptr(stoppedAt), ptr(stoppedAt.Add(testPolicy.Retention))
	canceledWhileRunning := reportInfo(asynq.TaskStateArchived, func(i *asynq.TaskInfo) {
		i.LastErr, i.LastFailedAt = "job canceled: skip retry for the task", stoppedAt
		i.Result = []byte(`{"outcome":"canceled"}`)
	})
	canceledBeforeItRan := func(f *fixture) {
		f.store.canceled = map[string]store.Canceled{id: {CreatedAt: testCreated, Range: "2026-01-01..2026-03-31", CanceledAt: stoppedAt}}
	}
	stillRunning := baseStatus(gen.Running)
	stillRunning.Progress, stillRunning.StartedAt, stillRunning.Attempt, stillRunning.CancelRequested = 0.4, ptr(started), ptr(1), ptr(true)

	tests := []struct {
		name string
		// del sends DELETE; otherwise the test cancels.
		del   bool
		info  *asynq.TaskInfo
		setup func(*fixture)
		// worker, when set, is what the worker does when it gets the cancel message.
		worker      func(*fixture)
		activeOnDel bool
		want        any // a gen.CancelReportResponseObject or gen.DeleteReportResponseObject
		wantKind    problem.Kind
		// wantCalls is the order of the cancel marker and the cancel message.
		wantCalls     []string
		wantDeleted   []string
		wantForgotten []string
		wantRecord    *store.Canceled
		wantFinished  []string // finish events published by the API
		wantMinTook   time.Duration
	}{
		{
			name: "cancel-200-pending", info: reportInfo(asynq.TaskStatePending),
			want:      gen.CancelReport200JSONResponse(canceledNow),
			wantCalls: []string{"cancel-marker"}, wantDeleted: []string{id},
			wantRecord:   &store.Canceled{CreatedAt: testCreated, Range: "2026-01-01..2026-03-31", CanceledAt: testNow, Client: jobs.Anonymous},
			wantFinished: []string{id},
		},
		{
			// Waiting for its next attempt: the record keeps the attempt that failed.
			name: "cancel-200-retry",
			info: reportInfo(asynq.TaskStateRetry, jobstest.WithProgress(jobs.Progress{Share: 0.25, StartedAt: started, Attempt: 1}),
				func(i *asynq.TaskInfo) { i.LastErr, i.Retried = "boom", 1 }),
			want:      gen.CancelReport200JSONResponse(retriedCanceled),
			wantCalls: []string{"cancel-marker"}, wantDeleted: []string{id},
			wantRecord: &store.Canceled{CreatedAt: testCreated, Range: "2026-01-01..2026-03-31", CanceledAt: testNow, Client: jobs.Anonymous,
				StartedAt: started, Attempt: 1, Progress: 0.25},
			wantFinished: []string{id},
		},
		{
			name: "cancel-200-running-confirmed", info: reportInfo(asynq.TaskStateActive, progress(0.4)), worker: stops,
			want:      gen.CancelReport200JSONResponse(stopped),
			wantCalls: []string{"cancel-marker", "publish-cancel"},
		},
		{
			name: "cancel-200-pending-became-active", info: reportInfo(asynq.TaskStatePending), activeOnDel: true, worker: stops,
			want:      gen.CancelReport200JSONResponse(stopped),
			wantCalls: []string{"cancel-marker", "publish-cancel"},
		},
		{
			name: "cancel-202-running-unconfirmed", info: reportInfo(asynq.TaskStateActive, progress(0.4)),
			want: gen.CancelReport202JSONResponse{Body: stillRunning,
				Headers: gen.CancelReport202ResponseHeaders{RetryAfter: 1}},
			wantCalls:   []string{"cancel-marker", "publish-cancel"},
			wantMinTook: jobs.CancelConfirmWait,
		},
		{
			// It finished before the cancel reached it: it stays done, report and all.
			name: "cancel-409-done-during-cancel", info: reportInfo(asynq.TaskStateActive, progress(0.9)), worker: finishes,
			wantKind: problem.KindFinished, wantCalls: []string{"cancel-marker", "publish-cancel"},
		},
		{
			name: "cancel-409-done", info: reportInfo(asynq.TaskStateCompleted, progress(1), func(i *asynq.TaskInfo) { i.CompletedAt = stoppedAt }),
			wantKind: problem.KindFinished,
		},
		{
			name:     "cancel-409-failed",
			info:     reportInfo(asynq.TaskStateArchived, func(i *asynq.TaskInfo) { i.LastErr, i.LastFailedAt = "boom", stoppedAt }),
			wantKind: problem.KindFinished,
		},
		{
			// Canceling again changes nothing and answers as the first cancel did.
			name: "cancel-200-canceled-while-running", info: canceledWhileRunning,
			want: gen.CancelReport200JSONResponse(canceledEarlier),
		},
		{
			name: "cancel-200-canceled-before-it-ran", setup: canceledBeforeItRan,
			want: gen.CancelReport200JSONResponse(canceledEarlier),
		},
		{
			name: "delete-204-done", del: true, info: reportInfo(asynq.TaskStateCompleted, progress(1), func(i *asynq.TaskInfo) { i.CompletedAt = stoppedAt }),
			want:        gen.DeleteReport204Response{},
			wantDeleted: []string{id}, wantForgotten: []string{id},
		},
		{
			name: "delete-204-failed", del: true,
			info: reportInfo(asynq.TaskStateArchived, func(i *asynq.TaskInfo) { i.LastErr, i.LastFailedAt = "boom", stoppedAt }),
			want: gen.DeleteReport204Response{}, wantDeleted: []string{id}, wantForgotten: []string{id},
		},
		{
			name: "delete-204-canceled-while-running", del: true, info: canceledWhileRunning,
			want: gen.DeleteReport204Response{}, wantDeleted: []string{id}, wantForgotten: []string{id},
		},
		{
			name: "delete-204-canceled-before-it-ran", del: true, setup: canceledBeforeItRan,
			want: gen.DeleteReport204Response{}, wantForgotten: []string{id},
		},
		// An unfinished job is neither deleted nor canceled by a DELETE.
		{name: "delete-409-pending", del: true, info: reportInfo(asynq.TaskStatePending), wantKind: problem.KindNotFinished},
		{name: "delete-409-running", del: true, info: reportInfo(asynq.TaskStateActive, progress(0.4)), wantKind: problem.KindNotFinished},
		{name: "delete-410-tombstone", del: true, setup: func(f *fixture) { f.store.tombstones = map[string]bool{id: true} }, wantKind: problem.KindGone},
		{name: "delete-404-unknown", del: true, wantKind: problem.KindNotFound},
		{
			name:     "cancel-410-done-past-retention",
			info:     reportInfo(asynq.TaskStateCompleted, func(i *asynq.TaskInfo) { i.CompletedAt = testNow.Add(-25 * time.Hour) }),
			wantKind: problem.KindGone,
		},
		{name: "cancel-410-tombstone", setup: func(f *fixture) { f.store.tombstones = map[string]bool{id: true} }, wantKind: problem.KindGone},
		{name: "cancel-404-unknown", wantKind: problem.KindNotFound},
		{name: "cancel-503-inspector-fails", setup: func(f *fixture) { f.tasks.err = errors.New("i/o timeout") }, wantKind: problem.KindUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture()
			if tt.activeOnDel {
				f.srv = New(jobs.New(jobs.Deps{Queue: f.queue, Inspector: activeOnDelete{f.tasks}, Store: f.store, Policy: testPolicy,
					Now: func() time.Time { return testNow }, NewID: func() uuid.UUID { return testID }}))
			}
			if tt.info != nil {
				f.tasks.put(tt.info)
			}
			if tt.setup != nil {
				tt.setup(f)
			}
			f.store.onCancel = func(string) {
				f.calls.add("publish-cancel")
				if tt.worker != nil {
					tt.worker(f)
				}
			}

			start := time.Now()
			var got any
			var err error
			if tt.del {
				got, err = f.srv.DeleteReport(context.Background(), gen.DeleteReportRequestObject{Id: testID})
			} else {
				got, err = f.srv.CancelReport(context.Background(), gen.CancelReportRequestObject{Id: testID})
			}
			took := time.Since(start)
			if tt.want == nil {
				checkKind(t, err, tt.wantKind)
			} else {
				if err != nil {
					t.Fatalf("%s: %v", tt.name, err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("response (-want +got):\n%s", diff)
				}
			}
			if took < tt.wantMinTook || took > tt.wantMinTook+time.Second {
				t.Errorf("%s took %s, want %s to %s", tt.name, took, tt.wantMinTook, tt.wantMinTook+time.Second)
			}

			f.store.mu.Lock()
			defer f.store.mu.Unlock()
			f.tasks.mu.Lock()
			defer f.tasks.mu.Unlock()
			type effects struct {
				Calls, Deleted, Forgotten, Finished []string
				Record                              *store.Canceled
			}
			want := effects{Calls: tt.wantCalls, Deleted: tt.wantDeleted, Forgotten: tt.wantForgotten, Finished: tt.wantFinished, Record: tt.wantRecord}
			gotFx := effects{Calls: f.calls.list(), Deleted: f.tasks.deleted, Forgotten: f.store.forgotten, Finished: f.store.published}
			if c, ok := f.store.canceled[id]; ok && tt.setup == nil {
				gotFx.Record = &c
			}
			if diff := cmp.Diff(want, gotFx, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("effects (-want +got):\n%s", diff)
			}
			// Whatever the path, a job that was pending or running keeps its cancel marker: an attempt
			// that starts or finishes later finds it. A deleted job keeps nothing.
			marked := f.store.cancels[id]
			if wantMarker := len(tt.wantCalls) > 0 && len(tt.wantForgotten) == 0; marked != wantMarker {
				t.Errorf("cancel marker set = %v, want %v", marked, wantMarker)
			}
		})
	}
}

// TestCancelReportStoreFails: when the marker cannot be set, nothing else is tried, and the answer is 503.
func TestCancelReportStoreFails(t *testing.T) {
	t.Parallel()
	for _, state := range []asynq.TaskState{asynq.TaskStatePending, asynq.TaskStateActive} {
		t.Run(fmt.Sprint(state), func(t *testing.T) {
			t.Parallel()
			f := newFixture()
			f.tasks.put(reportInfo(state))
			f.srv = New(jobs.New(jobs.Deps{Queue: f.queue, Inspector: f.tasks, Store: failingMarker{f.store}, Policy: testPolicy,
				Now: func() time.Time { return testNow }, NewID: func() uuid.UUID { return testID }}))
			_, err := f.srv.CancelReport(context.Background(), gen.CancelReportRequestObject{Id: testID})
			checkKind(t, err, problem.KindUnavailable)
			f.tasks.mu.Lock()
			defer f.tasks.mu.Unlock()
			f.store.mu.Lock()
			defer f.store.mu.Unlock()
			if len(f.tasks.deleted) != 0 || len(f.store.cancelsSent) != 0 {
				t.Errorf("without a marker, the job was deleted (%v) or told to stop (%v)", f.tasks.deleted, f.store.cancelsSent)
			}
		})
	}
}

// failingMarker is a fakeStore that cannot set cancel markers.
type failingMarker struct{ *fakeStore }

func (failingMarker) RequestCancel(context.Context, string, time.Duration) error {
	return errors.New("dial tcp 10.0.0.7:6379: i/o timeout")
}

func (failingMarker) RequestCancelPending(context.Context, string, time.Duration, store.Canceled) error {
	return errors.New("dial tcp 10.0.0.7:6379: i/o timeout")
}

// readOnDelete is a task inspector that, the moment a task is deleted, reads the job as a concurrent
// status read would, before the cancel that deleted it has recorded the job's end.
type readOnDelete struct {
	*fakeTasks
	read func() (jobs.Job, error)
	got  *jobs.Job
	err  *error
}

func (r readOnDelete) DeleteTask(queue, id string) error {
	if err := r.fakeTasks.DeleteTask(queue, id); err != nil {
		return err
	}
	*r.got, *r.err = r.read()
	return nil
}

// TestCancelPendingReadInBetween: a status read that comes after a pending job's task was taken out of
// the queue, and before its cancel recorded the end, reads the job canceled, not gone (410).
func TestCancelPendingReadInBetween(t *testing.T) {
	t.Parallel()
	f := newFixture()
	f.tasks.put(reportInfo(asynq.TaskStatePending))
	var got jobs.Job
	var err error
	var svc *jobs.Service
	inspector := readOnDelete{fakeTasks: f.tasks, got: &got, err: &err,
		read: func() (jobs.Job, error) { return svc.Get(context.Background(), jobs.Anonymous, testID.String()) }}
	svc = jobs.New(jobs.Deps{Queue: f.queue, Inspector: inspector, Store: f.store, Policy: testPolicy,
		Now: func() time.Time { return testNow }, NewID: func() uuid.UUID { return testID }})
	if _, cerr := svc.Cancel(context.Background(), jobs.Anonymous, testID.String()); cerr != nil {
		t.Fatalf("Cancel: %v", cerr)
	}
	if err != nil || got.State != jobs.Canceled {
		t.Errorf("a read between the task's deletion and the cancel's record: %v, %v; want canceled", got.State, err)
	}
}
