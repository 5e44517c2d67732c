package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/hibiken/asynq"

	"github.com/reportd/reportd/impl"
	"github.com/reportd/reportd/tasks"
)

// run starts what args ask for and blocks until ctx is done or a part fails, then drains: the HTTP
// server stops accepting and finishes its requests, the worker finishes or requeues its jobs.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	log := newLogger(stderr)
	m, err := parseMode(args)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	log.Info("starting", "api", m.api, "worker", m.worker, "config", cfg.redacted())
	defer log.Info("stopped")

	rdb, closeRedis, err := connectRedis(cfg, log)
	if err != nil {
		return err
	}
	defer closeRedis()
	store := tasks.NewStore(rdb, cfg.Retention, cfg.Tombstone)
	errc := make(chan error, 2)

	if m.worker {
		worker := asynq.NewServerFromRedisClient(rdb, asynq.Config{
			Concurrency:       cfg.Concurrency,
			Queues:            map[string]int{tasks.Queue: 1},
			TaskCheckInterval: cfg.CheckInterval,
			RetryDelayFunc:    tasks.RetryDelay,
			JanitorInterval:   cfg.JanitorInterval,
			ShutdownTimeout:   cfg.ShutdownTimeout,
			Logger:            asynqLogger{log.With("component", "asynq")},
			LogLevel:          asynq.WarnLevel,
		})
		mux := asynq.NewServeMux()
		processor := &tasks.ReportProcessor{
			Ledger:           tasks.NewSyntheticLedger(cfg.RowsPerDay),
			Reports:          store,
			ProgressEvery:    cfg.ProgressEvery,
			CancelCheckEvery: time.Second,
			Now:              time.Now,
			Log:              log,
		}
		mux.Handle(tasks.TypeReport, processor)
		cctx, stopCancels := context.WithCancel(ctx)
		cancels := store.SubscribeCancels(cctx)
		cancelsDone := make(chan struct{})
		go func() { defer close(cancelsDone); processor.RunCancels(cctx, cancels) }()
		defer func() { stopCancels(); _ = cancels.Close(); <-cancelsDone }()
		if err := worker.Start(mux); err != nil {
			return fmt.Errorf("start worker: %w", err)
		}
		// Deferred, so that the worker stops before Redis is closed under it on every way out of run,
		// a failure to listen included; it runs after the HTTP server has drained.
		defer worker.Shutdown()
		log.Info("worker running", "queue", tasks.Queue, "concurrency", cfg.Concurrency)
	}

	var srv *http.Server
	waiters := impl.NewWaiters()
	if m.api {
		// One subscription per API process wakes every request waiting for a job (Prefer: wait).
		wctx, stopWaiters := context.WithCancel(ctx)
		events := store.SubscribeFinished(wctx)
		waitersDone := make(chan struct{})
		go func() { defer close(waitersDone); waiters.Run(wctx, events, log) }()
		// Stopped before Redis is closed under it, on every way out of run.
		defer func() { stopWaiters(); _ = events.Close(); <-waitersDone }()

		client := asynq.NewClientFromRedisClient(rdb)
		inspector := asynq.NewInspectorFromRedisClient(rdb)
		server := impl.New(impl.Deps{
			Queue: client, Tasks: inspector, Store: store, Log: log, Waiters: waiters,
			Policy: impl.Policy{Retention: cfg.Retention, Tombstone: cfg.Tombstone, JobTimeout: cfg.JobTimeout, MaxRetry: cfg.MaxRetry},
		})
		handler, err := impl.Handler(server, log, func(r chi.Router) {
			r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
			r.Get("/readyz", func(w http.ResponseWriter, r *http.Request) {
				ctx, cancel := context.WithTimeout(r.Context(), time.Second)
				defer cancel()
				if err := rdb.Ping(ctx).Err(); err != nil {
					http.Error(w, "redis unreachable", http.StatusServiceUnavailable)
					return
				}
				_, _ = io.WriteString(w, "ready\n")
			})
		})
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", cfg.Addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
		}
		srv = &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      90 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
		}
		go func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve http: %w", err)
			}
		}()
		log.Info("listening", "addr", ln.Addr().String(), "url", "http://"+ln.Addr().String())
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	case runErr = <-errc:
		log.Error("stopping after failure", "err", runErr)
	}
	if srv != nil {
		waiters.Drain() // requests waiting for jobs answer now, with the status as it is
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			runErr = errors.Join(runErr, fmt.Errorf("drain http: %w", err))
		}
	}
	return runErr
}
