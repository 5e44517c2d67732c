package tasks

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/report"
)

// forEachBackend runs fn in a parallel subtest per Redis backend, each with its own Redis.
func forEachBackend(t *testing.T, fn func(t *testing.T, b redistest.Backend)) {
	t.Helper()
	for _, b := range redistest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, b)
		})
	}
}

// TestStoreCancel runs the Store's cancel contract against every Redis backend: the marker, the record
// of a job canceled before it ran, SaveReport's refusal, and Forget.
func TestStoreCancel(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b redistest.Backend) {
		rdb := b.Client(t)
		s := NewStore(rdb, testRetention, testTombstone)
		ctx := context.Background()

		t.Run("marker", func(t *testing.T) {
			t.Parallel()
			id := uuid.NewString()
			if ok, err := s.CancelRequested(ctx, id); err != nil || ok {
				t.Fatalf("CancelRequested before RequestCancel = %v, %v; want false, nil", ok, err)
			}
			const lifetime = 7 * time.Hour
			if err := s.RequestCancel(ctx, id, lifetime); err != nil {
				t.Fatalf("RequestCancel: %v", err)
			}
			if ok, err := s.CancelRequested(ctx, id); err != nil || !ok {
				t.Fatalf("CancelRequested after RequestCancel = %v, %v; want true, nil", ok, err)
			}
			checkTTL(t, rdb, cancelKey(id), lifetime)
			if err := s.RequestCancel(ctx, id, lifetime); err != nil {
				t.Errorf("a second RequestCancel: %v", err)
			}
			if ok, err := s.CancelRequested(ctx, uuid.NewString()); err != nil || ok {
				t.Errorf("CancelRequested of another job = %v, %v; want false, nil", ok, err)
			}
		})

		t.Run("canceled-record", func(t *testing.T) {
			t.Parallel()
			id := uuid.NewString()
			if _, ok, err := s.CanceledJob(ctx, id); err != nil || ok {
				t.Fatalf("CanceledJob before SaveCanceled = %v, %v; want false, nil", ok, err)
			}
			at := time.Date(2026, 4, 2, 10, 0, 0, 123456789, time.UTC)
			for _, want := range []Canceled{
				{CreatedAt: at.Add(-time.Minute), Range: "2026-01-01..2026-03-31", CanceledAt: at},
				{CreatedAt: at.Add(-time.Minute), Range: "2026-01-01..2026-03-31", CanceledAt: at, StartedAt: at.Add(-30 * time.Second), Attempt: 2, Progress: 0.25},
			} {
				if err := s.SaveCanceled(ctx, id, want); err != nil {
					t.Fatalf("SaveCanceled: %v", err)
				}
				got, ok, err := s.CanceledJob(ctx, id)
				if err != nil || !ok {
					t.Fatalf("CanceledJob = %v, %v; want the record", ok, err)
				}
				if diff := cmp.Diff(want, got, cmpopts.EquateApproxTime(0)); diff != "" {
					t.Errorf("CanceledJob (-want +got):\n%s", diff)
				}
				checkTTL(t, rdb, canceledKey(id), testRetention)
			}
			if err := rdb.Set(ctx, canceledKey(id), "{not json", time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.CanceledJob(ctx, id); err == nil {
				t.Error("CanceledJob of a corrupt record succeeded")
			}
		})

		t.Run("save-report-refused-after-cancel", func(t *testing.T) {
			t.Parallel()
			id := uuid.NewString()
			const lifetime = 5 * time.Hour
			if err := s.CreateTombstone(ctx, id, "acme", lifetime); err != nil {
				t.Fatal(err)
			}
			if err := s.RequestCancel(ctx, id, lifetime); err != nil {
				t.Fatal(err)
			}
			err := s.SaveReport(ctx, id, []byte(`{"orders":3}`))
			if !errors.Is(err, ErrCanceled) {
				t.Fatalf("SaveReport of a canceled job = %v, want an error wrapping ErrCanceled", err)
			}
			if _, err := s.Report(ctx, id); !errors.Is(err, ErrNoReport) {
				t.Errorf("Report after a refused save = %v, want ErrNoReport", err)
			}
			if n, err := rdb.Exists(ctx, reportKey(id)).Result(); err != nil || n != 0 {
				t.Errorf("report key exists after a refused save: %d, %v", n, err)
			}
			// Nothing stored: the tombstone was not restarted either.
			checkTTL(t, rdb, tombstoneKey(id), lifetime+testRetention+testTombstone)
		})

		t.Run("forget", func(t *testing.T) {
			t.Parallel()
			id := uuid.NewString()
			if err := s.CreateTombstone(ctx, id, "acme", 5*time.Hour); err != nil {
				t.Fatal(err)
			}
			if err := s.SaveReport(ctx, id, []byte(`{"orders":3}`)); err != nil {
				t.Fatal(err)
			}
			if err := s.RequestCancel(ctx, id, time.Hour); err != nil {
				t.Fatal(err)
			}
			if err := s.SaveCanceled(ctx, id, Canceled{Range: "2026-01-01..2026-01-31", CanceledAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			if err := s.Forget(ctx, id); err != nil {
				t.Fatalf("Forget: %v", err)
			}
			if _, err := s.Report(ctx, id); !errors.Is(err, ErrNoReport) {
				t.Errorf("Report after Forget = %v, want ErrNoReport", err)
			}
			if _, ok, err := s.CanceledJob(ctx, id); err != nil || ok {
				t.Errorf("CanceledJob after Forget = %v, %v; want false, nil", ok, err)
			}
			if ok, err := s.CancelRequested(ctx, id); err != nil || ok {
				t.Errorf("CancelRequested after Forget = %v, %v; want false, nil", ok, err)
			}
			// The id answers 410 for the whole tombstone period from now.
			if ok, err := tombstoneExists(ctx, s, id); err != nil || !ok {
				t.Errorf("TombstoneExists after Forget = %v, %v; want true, nil", ok, err)
			}
			checkTTL(t, rdb, tombstoneKey(id), testTombstone+resultSlack)
			if err := s.Forget(ctx, id); err != nil {
				t.Errorf("a second Forget: %v", err)
			}
			if err := s.Forget(ctx, uuid.NewString()); err != nil {
				t.Errorf("Forget of a job never seen: %v", err)
			}
		})
	})
}

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

// storeWorker is an asynq server on one backend whose report jobs use a real Store.
type storeWorker struct {
	rdb       *redis.Client
	store     *Store
	client    *asynq.Client
	inspector *asynq.Inspector
	// errs receives what the handler returned, once per attempt.
	errs chan error
}

func newStoreWorker(t *testing.T, b redistest.Backend) *storeWorker {
	t.Helper()
	rdb := b.Client(t)
	return &storeWorker{
		rdb:       rdb,
		store:     NewStore(rdb, testRetention, testTombstone),
		client:    asynq.NewClientFromRedisClient(rdb),
		inspector: asynq.NewInspectorFromRedisClient(rdb),
		errs:      make(chan error, 16),
	}
}

// start serves report jobs with p until the test ends.
func (w *storeWorker) start(t *testing.T, p *ReportProcessor) {
	t.Helper()
	srv := asynq.NewServerFromRedisClient(w.rdb, asynq.Config{
		Concurrency:              1,
		Queues:                   map[string]int{Queue: 1},
		TaskCheckInterval:        10 * time.Millisecond,
		DelayedTaskCheckInterval: 50 * time.Millisecond,
		RetryDelayFunc:           RetryDelay,
		ShutdownTimeout:          2 * time.Second,
		Logger:                   quietLogger{},
	})
	mux := asynq.NewServeMux()
	mux.HandleFunc(TypeReport, func(ctx context.Context, task *asynq.Task) error {
		err := p.ProcessTask(ctx, task)
		w.errs <- err
		return err
	})
	if err := srv.Start(mux); err != nil {
		t.Fatalf("start asynq server: %v", err)
	}
	t.Cleanup(srv.Shutdown)
}

// enqueue puts job id over tenDays on the queue with retries left, so that only SkipRetry archives it.
func (w *storeWorker) enqueue(t *testing.T, id string) {
	t.Helper()
	task, opts, err := NewReportTask(id, tenDays, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.client.Enqueue(task, append(opts, asynq.MaxRetry(3), asynq.Retention(time.Hour))...); err != nil {
		t.Fatalf("enqueue: %v", err)
	}
}

// handlerErr returns what the handler returned on its next attempt.
func (w *storeWorker) handlerErr(t *testing.T) error {
	t.Helper()
	select {
	case err := <-w.errs:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not return in 10s")
		return nil
	}
}

// checkCanceledJob checks that job id was canceled for good: the attempt's error wraps ErrCanceled and
// SkipRetry, the task is archived at once with a last error that says canceled, no other attempt
// follows, and no report is stored.
func (w *storeWorker) checkCanceledJob(t *testing.T, id string, err error) *asynq.TaskInfo {
	t.Helper()
	if !errors.Is(err, ErrCanceled) || !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("ProcessTask = %v, want an error wrapping ErrCanceled and asynq.SkipRetry", err)
	}
	var info *asynq.TaskInfo
	deadline := time.Now().Add(5 * time.Second)
	for {
		var ierr error
		info, ierr = w.inspector.GetTaskInfo(Queue, id)
		if ierr == nil && info.State != asynq.TaskStateActive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("task still active (or unreadable) 5 s after its attempt ended: %v", ierr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if info.State != asynq.TaskStateArchived || info.Retried != 0 || !strings.HasPrefix(info.LastErr, ErrCanceled.Error()) {
		t.Errorf("task: state %v, retried %d, last error %q; want archived at once with a last error starting %q",
			info.State, info.Retried, info.LastErr, ErrCanceled.Error())
	}
	select {
	case err := <-w.errs:
		t.Errorf("another attempt ran after the cancel: %v", err)
	default:
	}
	if _, err := w.store.Report(context.Background(), id); !errors.Is(err, ErrNoReport) {
		t.Errorf("Report of a canceled job = %v, want ErrNoReport", err)
	}
	return info
}

func cancelProcessor(l report.Ledger, s ReportStore) *ReportProcessor {
	return &ReportProcessor{Ledger: l, Reports: s, Now: time.Now, Log: slog.New(slog.DiscardHandler),
		// Long, so that only the path under test can stop a job.
		CancelCheckEvery: time.Hour}
}

// runCancels runs p.RunCancels on src until the test ends. A Redis subscription is closed first: go-redis
// does not end a blocked receive when its context is canceled.
func runCancels(t *testing.T, p *ReportProcessor, src EventSource) {
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

// TestReportProcessorCanceledBeforeStart: a job whose marker is set before a worker picks it up is
// archived without running, and announced.
func TestReportProcessorCanceledBeforeStart(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b redistest.Backend) {
		w := newStoreWorker(t, b)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		events := w.store.SubscribeFinished(ctx)
		defer events.Close()
		if _, err := events.Next(ctx); err != nil {
			t.Fatal(err)
		}

		id := uuid.NewString()
		if err := w.store.RequestCancel(ctx, id, time.Hour); err != nil {
			t.Fatal(err)
		}
		ledger := &countingLedger{inner: report.NewSyntheticLedger(100)}
		w.start(t, cancelProcessor(ledger, w.store))
		w.enqueue(t, id)
		w.checkCanceledJob(t, id, w.handlerErr(t))
		if n := ledger.days.Load(); n != 0 {
			t.Errorf("the ledger was read for %d days of a job canceled before it started", n)
		}
		nctx, ncancel := context.WithTimeout(ctx, 2*time.Second)
		defer ncancel()
		if got, err := events.Next(nctx); err != nil || got != id {
			t.Errorf("finish event = %q, %v; want %s", got, err, id)
		}
	})
}

// TestReportProcessorCancelMessage: a running job is stopped by the cancel message that RunCancels
// receives, at once (its marker is looked at only every hour here).
func TestReportProcessorCancelMessage(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b redistest.Backend) {
		w := newStoreWorker(t, b)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		gate := newGatedLedger(day(2026, 1, 5))
		p := cancelProcessor(gate, w.store)
		runCancels(t, p, w.store.SubscribeCancels(ctx))
		w.start(t, p)

		id := uuid.NewString()
		w.enqueue(t, id)
		awaitGate(t, gate)
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
		if p, err := ParseProgress(info.Result); err != nil || p.DaysDone != 4 || p.Share != 0.4 {
			t.Errorf("progress of the stopped attempt = %+v, %v; want 4 of 10 days", p, err)
		}
	})
}

// TestReportProcessorCancelMessageForAnotherJob: a cancel message for another job leaves a running job
// alone.
func TestReportProcessorCancelMessageForAnotherJob(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b redistest.Backend) {
		w := newStoreWorker(t, b)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		gate := newGatedLedger(day(2026, 1, 5))
		p := cancelProcessor(gate, w.store)
		src := &chanEvents{c: make(chan string)}
		runCancels(t, p, src)
		w.start(t, p)

		id := uuid.NewString()
		w.enqueue(t, id)
		awaitGate(t, gate)
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

// chanEvents is an EventSource fed by a channel.
type chanEvents struct{ c chan string }

func (e *chanEvents) Next(ctx context.Context) (string, error) {
	select {
	case id := <-e.c:
		return id, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// TestReportProcessorCancelAfterResubscribe: when the cancel subscription is re-established (messages
// may have been lost), every running job looks at its marker.
func TestReportProcessorCancelAfterResubscribe(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b redistest.Backend) {
		w := newStoreWorker(t, b)
		gate := newGatedLedger(day(2026, 1, 5))
		p := cancelProcessor(gate, w.store)
		src := &chanEvents{c: make(chan string)}
		runCancels(t, p, src)
		w.start(t, p)

		id := uuid.NewString()
		w.enqueue(t, id)
		awaitGate(t, gate)
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
	forEachBackend(t, func(t *testing.T, b redistest.Backend) {
		w := newStoreWorker(t, b)
		gate := newGatedLedger(day(2026, 1, 5))
		p := cancelProcessor(gate, w.store)
		p.CancelCheckEvery = 20 * time.Millisecond
		w.start(t, p)

		id := uuid.NewString()
		w.enqueue(t, id)
		awaitGate(t, gate)
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
	forEachBackend(t, func(t *testing.T, b redistest.Backend) {
		w := newStoreWorker(t, b)
		id := uuid.NewString()
		ledger := &countingLedger{inner: report.NewSyntheticLedger(100), hook: func(d time.Time) {
			if d.Equal(tenDays.To) {
				if err := w.store.RequestCancel(context.Background(), id, time.Hour); err != nil {
					t.Error(err)
				}
			}
		}}
		w.start(t, cancelProcessor(ledger, w.store))
		w.enqueue(t, id)
		w.checkCanceledJob(t, id, w.handlerErr(t))
		if n := ledger.days.Load(); n != 10 {
			t.Errorf("the ledger was read for %d days, want all 10", n)
		}
	})
}
