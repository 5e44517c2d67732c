package tasks_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/testkit"
	"github.com/reportd/reportd/tasks"
)

// countingLedger is a small synthetic ledger, through the generic Ledger path, that counts the days it
// was asked for and runs hook (when set) before each.
type countingLedger struct {
	inner *report.SyntheticLedger
	days  atomic.Int64
	hook  func(day time.Time)
}

func (l *countingLedger) Day(ctx context.Context, day time.Time, buf []report.Order) ([]report.Order, error) {
	l.days.Add(1)
	if l.hook != nil {
		l.hook(day)
	}
	return l.inner.Day(ctx, day, buf)
}

// lifecycle is the production Lifecycle, internal/jobs's Service, on the worker's store (without
// webhooks): cancels and reports live in Redis, and the Service records how an attempt ended.
func (w *worker) lifecycle() *jobs.Service {
	return jobs.New(jobs.Deps{Store: w.store, Log: slog.New(slog.DiscardHandler)})
}

// enqueueJob puts job id over tenDays on the queue with retries left, so that only SkipRetry archives
// it.
func (w *worker) enqueueJob(t *testing.T, id string) {
	t.Helper()
	task, opts, err := tasks.NewReportTask(id, store.QueueOf(id), tenDays, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	w.enqueue(t, task, append(opts, asynq.MaxRetry(3))...)
}

// checkCanceledJob checks that job id was canceled for good: the attempt ends without an error, so that
// asynq completes the task (a user's cancel is no failure) and runs it no more; the task's result says
// canceled; no other attempt follows, and no report is stored.
func (w *worker) checkCanceledJob(t *testing.T, id string, err error) *asynq.TaskInfo {
	t.Helper()
	if err != nil {
		t.Errorf("ProcessTask = %v, want nil: a canceled job's task completes", err)
	}
	var info *asynq.TaskInfo
	testkit.Eventually(t, 5*time.Second, 10*time.Millisecond, func() error {
		var ierr error
		info, ierr = w.inspector.GetTaskInfo(store.ReportQueue, id)
		if ierr != nil || info.State == asynq.TaskStateActive {
			return fmt.Errorf("task still active (or unreadable) since its attempt ended: %v", ierr)
		}
		return nil
	})
	if p, perr := jobs.ParseProgress(info.Result); info.State != asynq.TaskStateCompleted || info.Retried != 0 || perr != nil || p.Outcome != jobs.OutcomeCanceled {
		t.Errorf("task: state %v, retried %d, result %q; want completed at once, with the outcome canceled", info.State, info.Retried, info.Result)
	}
	select {
	case err := <-w.errs:
		t.Errorf("another attempt ran after the cancel: %v", err)
	default:
	}
	if _, err := w.store.Report(context.Background(), id); !errors.Is(err, store.ErrNoReport) {
		t.Errorf("Report of a canceled job = %v, want store.ErrNoReport", err)
	}
	return info
}

func cancelProcessor(l report.Ledger, s tasks.Lifecycle) *tasks.ReportProcessor {
	return &tasks.ReportProcessor{Ledger: l, Jobs: s, Now: time.Now, Log: slog.New(slog.DiscardHandler),
		// Long, so that only the path under test can stop a job.
		CancelCheckEvery: time.Hour}
}

// runCancels runs p.RunCancels on src until the test ends. A Redis subscription is closed first: go-redis
// does not end a blocked receive when its context is canceled.
func runCancels(t *testing.T, p *tasks.ReportProcessor, src tasks.EventSource) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.RunCancels(ctx, src) }()
	t.Cleanup(func() {
		cancel()
		if c, ok := src.(io.Closer); ok {
			_ = c.Close()
		}
		<-done
	})
}

// startGatedJob runs a cancel-aware processor over a gated ledger (src, if not nil, feeds its cancel
// messages; tweak, if not nil, adjusts it before it starts), enqueues one job and returns once the job's
// attempt holds at the gate.
func (w *worker) startGatedJob(t *testing.T, src tasks.EventSource, tweak func(*tasks.ReportProcessor)) (*gatedLedger, string) {
	t.Helper()
	gate := newGatedLedger(day(2026, 1, 5))
	p := cancelProcessor(gate, w.lifecycle())
	if tweak != nil {
		tweak(p)
	}
	if src != nil {
		runCancels(t, p, src)
	}
	w.start(t, p.ProcessTask, tasks.RetryDelay)
	id := uuid.NewString()
	w.enqueueJob(t, id)
	awaitGate(t, gate)
	return gate, id
}

// TestReportProcessorCanceledBeforeStart: a job whose marker is set before a worker picks it up is
// archived without running, and announced.
func TestReportProcessorCanceledBeforeStart(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		w := newWorker(t, b)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		events := w.store.SubscribeFinished(ctx)
		defer events.Close()
		if _, _, err := events.Next(ctx); err != nil {
			t.Fatal(err)
		}

		id := uuid.NewString()
		if err := w.store.RequestCancel(ctx, id, time.Hour); err != nil {
			t.Fatal(err)
		}
		ledger := &countingLedger{inner: report.NewSyntheticLedger(100)}
		w.start(t, cancelProcessor(ledger, w.lifecycle()).ProcessTask, tasks.RetryDelay)
		w.enqueueJob(t, id)
		w.checkCanceledJob(t, id, w.handlerErr(t))
		if n := ledger.days.Load(); n != 0 {
			t.Errorf("the ledger was read for %d days of a job canceled before it started", n)
		}
		nctx, ncancel := context.WithTimeout(ctx, 2*time.Second)
		defer ncancel()
		if got, _, err := events.Next(nctx); err != nil || got != id {
			t.Errorf("finish event = %q, %v; want %s", got, err, id)
		}
	})
}

// TestReportProcessorCancelMessage: a running job is stopped by the cancel message that RunCancels
// receives, at once (its marker is looked at only every hour here).
func TestReportProcessorCancelMessage(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		w := newWorker(t, b)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		_, id := w.startGatedJob(t, w.store.SubscribeCancels(ctx), nil)
		if err := w.store.RequestCancel(ctx, id, time.Hour); err != nil {
			t.Fatal(err)
		}
		sent := time.Now()
		if err := w.store.PublishCancel(ctx, id); err != nil {
			t.Fatal(err)
		}
		err := w.handlerErr(t)
		took := time.Since(sent)
		info := w.checkCanceledJob(t, id, err)
		if took > time.Second {
			t.Errorf("the job stopped %s after the cancel message, want at once", took)
		}
		t.Logf("stopped %s after the cancel message", took.Round(100*time.Microsecond))
		if p, err := jobs.ParseProgress(info.Result); err != nil || p.DaysDone != 4 || p.Share != 0.4 {
			t.Errorf("progress of the stopped attempt = %+v, %v; want 4 of 10 days", p, err)
		}
	})
}

// TestReportProcessorCancelMessageForAnotherJob: a cancel message for another job leaves a running job
// alone.
func TestReportProcessorCancelMessageForAnotherJob(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		w := newWorker(t, b)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		src := &chanEvents{c: make(chan string)}
		gate, id := w.startGatedJob(t, src, nil)
		src.c <- uuid.NewString()
		src.c <- "" // RunCancels has handled the other job's message once it takes this one
		close(gate.release)
		if err := w.handlerErr(t); err != nil {
			t.Fatalf("ProcessTask = %v, want the job done", err)
		}
		if _, err := w.store.Report(ctx, id); err != nil {
			t.Errorf("Report: %v", err)
		}
	})
}

// chanEvents is an EventSource fed by a channel; an empty id stands for a resubscription, after which
// events may have been missed.
type chanEvents struct{ c chan string }

func (e *chanEvents) Next(ctx context.Context) (string, bool, error) {
	select {
	case id := <-e.c:
		return id, id == "", nil
	case <-ctx.Done():
		return "", false, ctx.Err()
	}
}

// TestReportProcessorCancelAfterResubscribe: when the cancel subscription is re-established (messages
// may have been lost), every running job looks at its marker.
func TestReportProcessorCancelAfterResubscribe(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		w := newWorker(t, b)
		src := &chanEvents{c: make(chan string)}
		_, id := w.startGatedJob(t, src, nil)
		if err := w.store.RequestCancel(context.Background(), id, time.Hour); err != nil {
			t.Fatal(err)
		}
		src.c <- "" // the message itself was lost
		w.checkCanceledJob(t, id, w.handlerErr(t))
	})
}

// TestReportProcessorCancelMarkerWhileRunning: without any message, a running job finds its marker
// within CancelCheckEvery.
func TestReportProcessorCancelMarkerWhileRunning(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		w := newWorker(t, b)
		_, id := w.startGatedJob(t, nil, func(p *tasks.ReportProcessor) { p.CancelCheckEvery = 20 * time.Millisecond })
		if err := w.store.RequestCancel(context.Background(), id, time.Hour); err != nil {
			t.Fatal(err)
		}
		marked := time.Now()
		err := w.handlerErr(t)
		if took := time.Since(marked); took > time.Second {
			t.Errorf("the job stopped %s after its marker was set, want within a few checks of 20ms", took)
		}
		w.checkCanceledJob(t, id, err)
	})
}

// TestReportProcessorCanceledAsItFinishes: a cancel that arrives after the last day but before the save
// wins: no report, and the job is canceled, not done.
func TestReportProcessorCanceledAsItFinishes(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		w := newWorker(t, b)
		id := uuid.NewString()
		ledger := &countingLedger{inner: report.NewSyntheticLedger(100), hook: func(d time.Time) {
			if d.Equal(tenDays.To) {
				if err := w.store.RequestCancel(context.Background(), id, time.Hour); err != nil {
					t.Error(err)
				}
			}
		}}
		w.start(t, cancelProcessor(ledger, w.lifecycle()).ProcessTask, tasks.RetryDelay)
		w.enqueueJob(t, id)
		w.checkCanceledJob(t, id, w.handlerErr(t))
		if n := ledger.days.Load(); n != 10 {
			t.Errorf("the ledger was read for %d days, want all 10", n)
		}
	})
}
