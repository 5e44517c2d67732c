package tasks_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/testkit"
	"github.com/reportd/reportd/tasks"
)

var _ tasks.Lifecycle = (*fakeSaver)(nil)

// fakeSaver is a Lifecycle that keeps saved reports by job id; err, when set, fails every save (or
// only the first failures saves, when that is set). It records the jobs announced as finished and the
// attempts that ended, and cancels the jobs in canceled.
type fakeSaver struct {
	mu        sync.Mutex
	err       error
	failures  int
	saved     map[string][]byte
	calls     int
	canceled  map[string]bool
	announced []string
	ended     []tasks.Attempt
}

func (s *fakeSaver) CancelRequested(_ context.Context, id string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.canceled[id], nil
}

// StartAttempt records nothing, and answers as CancelRequested does.
func (s *fakeSaver) StartAttempt(ctx context.Context, a tasks.Attempt) (bool, error) {
	return s.CancelRequested(ctx, a.ID)
}

// WriteProgress accepts a running attempt's progress, and keeps none: the tests of progress run on the
// production lifecycle, which writes it as the task's result.
func (s *fakeSaver) WriteProgress(context.Context, tasks.Attempt) error { return nil }

// EndAttempt saves a done attempt's report (unless the job was canceled, as the real store's script
// does: then the job ends canceled), and announces a final attempt's job. Like internal/jobs's, it
// reports a canceled attempt, or a done one whose job was canceled first, as canceled.
func (s *fakeSaver) EndAttempt(_ context.Context, a tasks.Attempt) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended = append(s.ended, a)
	canceled := errors.Is(a.Err, tasks.ErrCanceled)
	if a.Err == nil {
		s.calls++
		switch {
		case s.err != nil && (s.failures == 0 || s.calls <= s.failures):
			return false, s.err
		case s.canceled[a.ID]:
			canceled = true
		default:
			if s.saved == nil {
				s.saved = map[string][]byte{}
			}
			s.saved[a.ID] = append([]byte(nil), a.Report...)
		}
	}
	if a.Final {
		s.announced = append(s.announced, a.ID)
	}
	return canceled, nil
}

// attempt is the last attempt of job id that ended.
func (s *fakeSaver) attempt(id string) (tasks.Attempt, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.ended) - 1; i >= 0; i-- {
		if s.ended[i].ID == id {
			return s.ended[i], true
		}
	}
	return tasks.Attempt{}, false
}

func (s *fakeSaver) report(id string) ([]byte, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saved[id], s.calls
}

// worker is an in-process asynq server on one backend, serving the report queue with one handler, with
// a real Store on the same Redis.
type worker struct {
	rdb       *redis.Client
	store     *store.Store
	client    *asynq.Client
	inspector *asynq.Inspector
	// errs receives what the handler returned, once per attempt.
	errs chan error
}

// newWorker returns a worker on backend b that serves nothing yet: start serves.
func newWorker(t *testing.T, b redistest.Backend) *worker {
	t.Helper()
	rdb := b.Client(t)
	return &worker{
		rdb:       rdb,
		store:     store.NewStore(rdb, 24*time.Hour, 720*time.Hour),
		client:    asynq.NewClientFromRedisClient(rdb),
		inspector: asynq.NewInspectorFromRedisClient(rdb),
		errs:      make(chan error, 16),
	}
}

// start serves TypeReport with h, one task at a time, until the test ends. A failed attempt is
// retried after retryDelay; nil is asynq's default (15 s and more), so that no retry comes within a
// test.
func (w *worker) start(t *testing.T, h asynq.HandlerFunc, retryDelay asynq.RetryDelayFunc) {
	t.Helper()
	srv := asynq.NewServerFromRedisClient(w.rdb, asynq.Config{
		Concurrency:              1,
		Queues:                   map[string]int{store.ReportQueue: 1},
		TaskCheckInterval:        10 * time.Millisecond,
		DelayedTaskCheckInterval: 50 * time.Millisecond,
		RetryDelayFunc:           retryDelay,
		ShutdownTimeout:          2 * time.Second,
		Logger:                   tasks.NewLogger(slog.New(slog.DiscardHandler)),
	})
	mux := asynq.NewServeMux()
	mux.HandleFunc(tasks.TypeReport, func(ctx context.Context, task *asynq.Task) error {
		err := h(ctx, task)
		w.errs <- err
		return err
	})
	if err := srv.Start(mux); err != nil {
		t.Fatalf("start asynq server: %v", err)
	}
	t.Cleanup(srv.Shutdown)
}

// startWorker serves TypeReport with h on a fresh embedded Redis, and stops when the test ends. A task
// built by asynq's client has no ResultWriter, which ProcessTask needs, so ProcessTask can only be
// exercised on tasks that an asynq server hands it.
func startWorker(t *testing.T, h asynq.HandlerFunc) *worker {
	t.Helper()
	w := newWorker(t, redistest.Embedded(t))
	w.start(t, h, nil)
	return w
}

// enqueue puts a report job on the queue, kept an hour once finished, with opts added.
func (w *worker) enqueue(t *testing.T, task *asynq.Task, opts ...asynq.Option) {
	t.Helper()
	if _, err := w.client.Enqueue(task, append([]asynq.Option{asynq.Retention(time.Hour)}, opts...)...); err != nil {
		t.Fatalf("enqueue: %v", err)
	}
}

// wait returns the task's info once it is completed or archived.
func (w *worker) wait(t *testing.T, id string) *asynq.TaskInfo {
	t.Helper()
	var info *asynq.TaskInfo
	testkit.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		var err error
		info, err = w.inspector.GetTaskInfo(store.ReportQueue, id)
		if err != nil || info.State != asynq.TaskStateCompleted && info.State != asynq.TaskStateArchived {
			return fmt.Errorf("task %s did not finish: %+v, %v", id, info, err)
		}
		return nil
	})
	return info
}

// cancelUntilReturned cancels the running task id through asynq until its handler returns, and returns
// what it returned. asynq's cancel is a pub/sub message, delivered at most once: one sent before the
// server has subscribed (it does so in the background as it starts) is lost.
func (w *worker) cancelUntilReturned(t *testing.T, id string) error {
	t.Helper()
	var returned error
	cancels := 0
	// Each try waits up to 300 ms for the handler after its cancel, so no interval is needed between them.
	testkit.Eventually(t, 10*time.Second, 0, func() error {
		if err := w.inspector.CancelProcessing(id); err != nil {
			t.Fatalf("CancelProcessing: %v", err)
		}
		cancels++
		select {
		case returned = <-w.errs:
			return nil
		case <-time.After(300 * time.Millisecond):
			return fmt.Errorf("the handler did not return after %d cancels", cancels)
		}
	})
	return returned
}

// handlerErr returns what the handler returned on its (only) attempt.
func (w *worker) handlerErr(t *testing.T) error {
	t.Helper()
	select {
	case err := <-w.errs:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not return in 10s")
		return nil
	}
}

// canceledIf is h, given a context that has already ended when canceled is set, as at a worker's
// shutdown.
func canceledIf(canceled bool, h asynq.HandlerFunc) asynq.HandlerFunc {
	return func(ctx context.Context, task *asynq.Task) error {
		if canceled {
			c, cancel := context.WithCancel(ctx)
			cancel()
			ctx = c
		}
		return h(ctx, task)
	}
}

func newProcessor(l report.Ledger, s tasks.Lifecycle) *tasks.ReportProcessor {
	return &tasks.ReportProcessor{Ledger: l, Jobs: s, Now: time.Now, Log: slog.New(slog.DiscardHandler)}
}

// day is midnight, UTC, of y-m-d: the days a ledger is asked for.
func day(y int, m time.Month, d int) time.Time {
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

var tenDays = report.DateRange{From: day(2026, 1, 1), To: day(2026, 1, 10)}

func TestReportProcessorDone(t *testing.T) {
	t.Parallel()
	const id = "6ba7b810-9dad-41d1-80b4-00c04fd430c8"
	ledger := report.NewSyntheticLedger(200)
	saver := &fakeSaver{}
	w := startWorker(t, newProcessor(ledger, saver).ProcessTask)
	task, opts, err := tasks.NewReportTask(id, store.QueueOf(id), tenDays, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	w.enqueue(t, task, append(opts, asynq.MaxRetry(0))...)
	if err := w.handlerErr(t); err != nil {
		t.Fatalf("ProcessTask: %v", err)
	}
	info := w.wait(t, id)
	if info.State != asynq.TaskStateCompleted {
		t.Fatalf("task state = %v (%s), want completed", info.State, info.LastErr)
	}

	body, calls := saver.report(id)
	if calls != 1 {
		t.Errorf("SaveReport called %d times, want 1", calls)
	}
	var got report.Report
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("saved report does not decode: %v\n%s", err, body)
	}
	want, err := report.Summarize(context.Background(), ledger, tenDays, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want.ID = id
	if got.GeneratedAt.IsZero() {
		t.Error("saved report has no generated_at")
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(report.Report{}, "GeneratedAt")); diff != "" {
		t.Errorf("saved report (-want +got):\n%s", diff)
	}
	var days []string
	for _, d := range got.ByDay {
		days = append(days, d.Date)
	}
	wantDays := []string{"2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05",
		"2026-01-06", "2026-01-07", "2026-01-08", "2026-01-09", "2026-01-10"}
	if diff := cmp.Diff(wantDays, days); diff != "" {
		t.Errorf("by_day dates (-want +got):\n%s", diff)
	}

	a, ok := saver.attempt(id)
	if !ok || a.Err != nil || !a.Final {
		t.Fatalf("ended attempt = %+v, %v; want the job's last attempt done", a, ok)
	}
	if a.StartedAt.IsZero() {
		t.Error("the attempt has no start")
	}
	// Its progress (the lifecycle makes the share of it) is all 10 days, in attempt 1.
	wantAttempt := tasks.Attempt{ID: id, Number: 1, DaysDone: 10, DaysTotal: 10, Final: true, Report: body, Orders: want.Orders}
	if diff := cmp.Diff(wantAttempt, a, cmpopts.IgnoreFields(tasks.Attempt{}, "StartedAt")); diff != "" {
		t.Errorf("ended attempt (-want +got):\n%s", diff)
	}
}

// gatedLedger blocks on one day until released (or its context is done), so that a test can look at a
// job in the middle of its run.
type gatedLedger struct {
	inner   report.Ledger
	at      time.Time
	reached chan struct{}
	release chan struct{}
}

func (g *gatedLedger) Day(ctx context.Context, d time.Time, buf []report.Order) ([]report.Order, error) {
	if d.Equal(g.at) {
		close(g.reached)
		select {
		case <-g.release:
		case <-ctx.Done():
			return buf, ctx.Err()
		}
	}
	return g.inner.Day(ctx, d, buf)
}

func newGatedLedger(at time.Time) *gatedLedger {
	return &gatedLedger{inner: report.NewSyntheticLedger(100), at: at, reached: make(chan struct{}), release: make(chan struct{})}
}

func awaitGate(t *testing.T, g *gatedLedger) {
	t.Helper()
	select {
	case <-g.reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the job did not reach the gated day in 10s")
	}
}

func TestReportProcessorProgressWhileRunning(t *testing.T) {
	t.Parallel()
	const id = "6ba7b811-9dad-41d1-80b4-00c04fd430c8"
	ledger := newGatedLedger(day(2026, 1, 5))
	// The production lifecycle, so that the progress is the task's result that a status read sees.
	w := newWorker(t, redistest.Embedded(t))
	w.start(t, newProcessor(ledger, w.lifecycle()).ProcessTask, nil)
	task, opts, err := tasks.NewReportTask(id, store.QueueOf(id), tenDays, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	w.enqueue(t, task, append(opts, asynq.MaxRetry(0))...)
	awaitGate(t, ledger)

	info, err := w.inspector.GetTaskInfo(store.ReportQueue, id)
	if err != nil {
		t.Fatal(err)
	}
	p, err := jobs.ParseProgress(info.Result)
	if err != nil {
		t.Fatalf("task result is not progress: %v (%q)", err, info.Result)
	}
	if info.State != asynq.TaskStateActive {
		t.Errorf("state = %v, want active", info.State)
	}
	if diff := cmp.Diff(jobs.Progress{Share: 0.4, DaysDone: 4, DaysTotal: 10, Attempt: 1}, p, cmpopts.IgnoreFields(jobs.Progress{}, "StartedAt")); diff != "" {
		t.Errorf("progress with 4 of 10 days done (-want +got):\n%s", diff)
	}
	close(ledger.release)
	if err := w.handlerErr(t); err != nil {
		t.Fatalf("ProcessTask: %v", err)
	}
	if info := w.wait(t, id); info.State != asynq.TaskStateCompleted {
		t.Errorf("state = %v, want completed", info.State)
	}
}

func TestReportProcessorFailures(t *testing.T) {
	t.Parallel()
	saveErr := errors.New("save report: i/o timeout")
	tests := []struct {
		name      string
		payload   string
		saveErr   error
		cancelCtx bool
		// cancelAt, when set, cancels the running job through asynq when it reaches that day.
		cancelAt  time.Time
		saveFails int   // with saveErr: how many saves fail before one succeeds; 0: all
		wantErr   error // what the handler's error must wrap
		wantSaves int   // -1: more than one
	}{
		{name: "payload-not-json", payload: "not json", wantErr: asynq.SkipRetry},
		{name: "payload-bad-range", payload: `{"range":"2026-Q9"}`, wantErr: asynq.SkipRetry},
		{name: "payload-unservable-range", payload: `{"range":"2026-02-30..2026-03-01"}`, wantErr: asynq.SkipRetry},
		{name: "canceled-before-start", payload: `{"range":"2026-01-01..2026-01-10"}`, cancelCtx: true, wantErr: context.Canceled},
		{name: "canceled-while-running", payload: `{"range":"2026-01-01..2026-01-10"}`, cancelAt: day(2026, 1, 3), wantErr: context.Canceled},
		// A save that keeps failing is tried again for SaveRetryFor, then fails the attempt.
		{name: "save-fails", payload: `{"range":"2026-01-01..2026-01-02"}`, saveErr: saveErr, wantErr: saveErr, wantSaves: -1},
		// A save that fails while Redis is briefly away succeeds once it is back, in the same attempt.
		{name: "save-recovers", payload: `{"range":"2026-01-01..2026-01-02"}`, saveErr: saveErr, saveFails: 2, wantSaves: 3},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := "6ba7b812-9dad-41d1-80b4-00c04fd430c" + string(rune('0'+i))
			saver := &fakeSaver{err: tt.saveErr, failures: tt.saveFails}
			var ledger report.Ledger = report.NewSyntheticLedger(100)
			var gate *gatedLedger
			if !tt.cancelAt.IsZero() {
				gate = newGatedLedger(tt.cancelAt)
				ledger = gate
			}
			p := newProcessor(ledger, saver)
			p.SaveRetryFor = time.Second
			w := startWorker(t, canceledIf(tt.cancelCtx, p.ProcessTask))
			// Several retries are allowed: only an error wrapping SkipRetry archives the task at once.
			w.enqueue(t, asynq.NewTask(tasks.TypeReport, []byte(tt.payload), asynq.TaskID(id), asynq.Queue(store.ReportQueue), asynq.MaxRetry(3)))
			var err error
			if gate != nil {
				awaitGate(t, gate)
				err = w.cancelUntilReturned(t, id)
			} else {
				err = w.handlerErr(t)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("ProcessTask = %v, want an error wrapping %v", err, tt.wantErr)
			}
			if _, saves := saver.report(id); tt.wantSaves >= 0 && saves != tt.wantSaves || tt.wantSaves < 0 && saves < 2 {
				t.Errorf("SaveReport called %d times, want %d (-1: more than once)", saves, tt.wantSaves)
			}
			if tt.wantErr == nil {
				if info := w.wait(t, id); info.State != asynq.TaskStateCompleted {
					t.Errorf("task state = %v (%s), want completed", info.State, info.LastErr)
				}
				if body, _ := saver.report(id); len(body) == 0 {
					t.Error("no report saved")
				}
			}
			if tt.wantErr == asynq.SkipRetry {
				info := w.wait(t, id)
				if info.State != asynq.TaskStateArchived || info.Retried != 0 {
					t.Errorf("task state = %v after %d retries, want archived after none", info.State, info.Retried)
				}
				if a, ok := saver.attempt(id); !ok || !errors.Is(a.Err, tasks.ErrUnreadable) || !a.Final {
					t.Errorf("ended attempt = %+v, %v; want the last attempt, ended with %q", a, ok, tasks.ErrUnreadable)
				}
			}
		})
	}
}

// TestReportProcessorTimesOut: an attempt that runs into the job's time limit stops itself just before
// asynq's deadline, so that it can still record that it timed out; the status read decodes that.
func TestReportProcessorTimesOut(t *testing.T) {
	t.Parallel()
	gate := newGatedLedger(day(2026, 1, 3)) // never released: the job runs until its time limit
	saver := &fakeSaver{}
	p := newProcessor(gate, saver)
	w := startWorker(t, p.ProcessTask)
	id := "6ba7b812-9dad-41d1-80b4-00c04fd430d0"
	w.enqueue(t, asynq.NewTask(tasks.TypeReport, []byte(`{"range":"2026-01-01..2026-01-10"}`), asynq.TaskID(id),
		asynq.Queue(store.ReportQueue), asynq.MaxRetry(0), asynq.Timeout(time.Second)))
	if err := w.handlerErr(t); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ProcessTask = %v, want an error wrapping context.DeadlineExceeded", err)
	}
	info := w.wait(t, id)
	if info.State != asynq.TaskStateArchived {
		t.Fatalf("task state = %v, want archived", info.State)
	}
	if a, ok := saver.attempt(id); !ok || !errors.Is(a.Err, tasks.ErrTimedOut) || a.DaysDone != 2 || !a.Final {
		t.Errorf("ended attempt = %+v, %v; want the last attempt, ended with %q after 2 days", a, ok, tasks.ErrTimedOut)
	}
}
