package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/reportd/reportd/impl"
	"github.com/reportd/reportd/internal/httpapi"
	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/telemetry"
	"github.com/reportd/reportd/internal/webhook"
	"github.com/reportd/reportd/tasks"
)

// run starts what args ask for and blocks until ctx is done or a part fails, then drains, within one
// REPORTD_SHUTDOWN_TIMEOUT: the HTTP server stops accepting and finishes its requests while the
// workers finish or requeue their jobs. Every part started is stopped on every way out, Redis last.
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
	log.Info("starting", "api", m.api, "worker", m.worker, "go", builtWith, "config", cfg.redacted())
	if oldToolchain(builtWith) {
		log.Warn("built with a Go that has known vulnerabilities in net/http and crypto/x509: build with "+
			patchedGo+" or later (GOTOOLCHAIN="+patchedGo+"), as go.mod's toolchain line asks", "go", builtWith)
	}
	defer log.Info("stopped")

	// Bind first: a taken address stops reportd before it starts Redis, workers or anything else.
	var apiLn, opsLn net.Listener
	if m.api {
		if apiLn, err = listenAPI(cfg, log); err != nil {
			return err
		}
		defer apiLn.Close() // on the ways out before the API serves it; a second Close does nothing
	}
	if cfg.OpsAddr != "" {
		if opsLn, err = net.Listen("tcp", cfg.OpsAddr); err != nil {
			return fmt.Errorf("listen on REPORTD_OPS_ADDR=%s: %w", cfg.OpsAddr, err)
		}
		defer opsLn.Close()
	}

	tp, on, shutdownTraces, err := telemetry.Setup(ctx, getenv)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdownTraces(sctx); err != nil {
			log.Warn("traces not all sent", "err", err)
		}
	}()
	tel := telemetrySetup{tp: tp, on: on}
	if on {
		log.Info("tracing on: spans go over OTLP/HTTP as the OTEL_ variables say")
	}

	rdb, closeRedis, err := connectRedis(cfg, log)
	if err != nil {
		return err
	}
	defer closeRedis()
	st := store.NewStore(rdb, cfg.Retention, cfg.Tombstone)
	queues, err := setUpQueues(ctx, cfg, rdb, st, log)
	if err != nil {
		return err
	}
	ready := readyz(rdb, st, queues.shards.Queues(), m.worker)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cfg.AdminToken == "" {
		cfg.AdminToken = rand.Text()
		log.Warn("REPORTD_ADMIN_TOKEN is not set: generated an admin token for /monitoring and /metrics; it is logged only here", "admin_token", cfg.AdminToken)
	}

	errc := make(chan error, 2)
	if cfg.OpsAddr != "" {
		// Stopped last of all (defers run in reverse), so that it answers while the rest drains.
		stopOps, err := startOps(cfg, opsLn, rdb, reg, ready, log, errc)
		if err != nil {
			return err
		}
		defer stopOps()
	}
	// One lifecycle serves the API and the worker of this process.
	var apiMetrics *httpapi.Metrics
	deps := jobs.Deps{
		Queue:     asynq.NewClientFromRedisClient(rdb),
		Inspector: asynq.NewInspectorFromRedisClient(rdb),
		Store:     st,
		Policy:    jobs.Policy{Retention: cfg.Retention, Tombstone: cfg.Tombstone, JobTimeout: cfg.JobTimeout, MaxRetry: cfg.MaxRetry},
		Limits:    jobs.Limits{SubmitsPerSecond: cfg.SubmitsPerSecond, SubmitBurst: cfg.SubmitBurst, MaxOpenJobs: cfg.MaxOpenJobs},
		Log:       log,
		Waiters:   jobs.NewWaiters(),
		Followers: jobs.NewFollowers(),
		Shards:    queues.shards,
		Queues:    queues.served,
	}
	if cfg.WebhookSecret != "" {
		deps.Webhooks = &jobs.Webhooks{Policy: webhookPolicy(cfg), Resolver: net.DefaultResolver, Event: impl.WebhookEvent}
	}
	if m.api {
		apiMetrics = httpapi.NewMetrics(reg)
		deps.Accepted = apiMetrics.Accepted
	}
	lifecycle := jobs.New(deps)

	stopWorkers := func() {}
	if m.worker {
		stop, err := startWorkers(ctx, cfg, rdb, st, queues.served, lifecycle, tasks.NewJobMetrics(reg), tel, log)
		if err != nil {
			return err
		}
		stopWorkers = sync.OnceFunc(stop)
		defer stopWorkers() // on the ways out before the drain below
	}
	var api *apiServer
	if m.api {
		if api, err = startAPI(ctx, cfg, apiLn, rdb, st, lifecycle, deps.Waiters, deps.Followers, apiMetrics, reg, ready, tel, log, errc); err != nil {
			return err
		}
		defer api.close()
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	case runErr = <-errc:
		log.Error("stopping after failure", "err", runErr)
	}
	// The API drains while the workers finish or requeue their jobs: an all-in-one process stops
	// within one REPORTD_SHUTDOWN_TIMEOUT, not one for each.
	var wg sync.WaitGroup
	wg.Go(stopWorkers)
	if api != nil {
		runErr = errors.Join(runErr, api.drain(cfg.ShutdownTimeout))
	}
	wg.Wait()
	return runErr
}

// telemetrySetup is how this process traces: its tracer provider (a no-op one when tracing is off).
type telemetrySetup struct {
	tp trace.TracerProvider
	on bool
}

// subscribe runs consume on a subscription until the returned stop is called, which also waits for it.
func subscribe[E io.Closer](ctx context.Context, sub func(context.Context) E, consume func(context.Context, E)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	events := sub(ctx)
	done := make(chan struct{})
	go func() { defer close(done); consume(ctx, events) }()
	return func() { cancel(); _ = events.Close(); <-done }
}

// readyz answers 200 when the Redis nodes of the report queues answer and a worker serves every one of
// them (in this process, or any other: asynq's servers register themselves in Redis), 503 otherwise,
// saying which is missing.
func readyz(rdb redis.UniversalClient, st *store.Store, queues []string, localWorker bool) http.HandlerFunc {
	inspector := asynq.NewInspectorFromRedisClient(rdb)
	return func(w http.ResponseWriter, r *http.Request) {
		// Reads in the queues' hash slots, not a PING: on a Redis Cluster any live node answers a PING,
		// while a master that holds a queue may be down.
		if err := st.QueuesReachable(r.Context(), queues); err != nil {
			notReady(w, "redis unreachable")
			return
		}
		if !localWorker {
			if q := unserved(inspector, queues); q != "" {
				notReady(w, "no worker serves the report queue "+q)
				return
			}
		}
		_, _ = io.WriteString(w, "ready\n")
	}
}

// notReady answers 503, with the Retry-After every 503 of reportd's carries.
func notReady(w http.ResponseWriter, why string) {
	w.Header().Set("Retry-After", "2")
	http.Error(w, why, http.StatusServiceUnavailable)
}

// unserved is one of queues that no active asynq server registered in Redis serves, or "" when each
// has one.
func unserved(inspector *asynq.Inspector, queues []string) string {
	servers, err := inspector.Servers()
	if err != nil {
		return queues[0]
	}
	served := map[string]bool{}
	for _, s := range servers {
		if s.Status != "active" {
			continue
		}
		for q := range s.Queues {
			served[q] = true
		}
	}
	for _, q := range queues {
		if !served[q] {
			return q
		}
	}
	return ""
}

// webhookPolicy is where the configuration lets webhooks go.
func webhookPolicy(cfg config) webhook.Policy {
	return webhook.Policy{AllowInsecure: cfg.WebhookAllowInsecure, AllowPrivate: cfg.WebhookAllowPrivate}
}
