package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/telemetry"
	"github.com/reportd/reportd/internal/webhook"
	"github.com/reportd/reportd/tasks"
)

// startWorkers starts the report worker (the asynq servers of reportServers) and, when webhooks are set
// up, the webhook worker, an asynq server of its own, so that slow webhook receivers never take a report
// job's place. stop shuts the servers down
// at once, each within REPORTD_SHUTDOWN_TIMEOUT, and then the cancel subscription, which running jobs
// listen to until they end.
func startWorkers(ctx context.Context, cfg config, rdb redis.UniversalClient, st *store.Store, queues []string, lifecycle *jobs.Service, jobMetrics *tasks.JobMetrics, tel telemetrySetup, log *slog.Logger) (stop func(), err error) {
	var (
		stopCancels func()
		servers     []*asynq.Server
	)
	stop = func() {
		var wg sync.WaitGroup
		for _, srv := range servers {
			wg.Go(srv.Shutdown)
		}
		wg.Wait()
		if stopCancels != nil {
			stopCancels()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	base := asynq.Config{
		TaskCheckInterval:        cfg.CheckInterval,
		DelayedTaskCheckInterval: cfg.DelayedCheck,
		JanitorInterval:          cfg.JanitorInterval,
		ShutdownTimeout:          cfg.ShutdownTimeout,
		Logger:                   tasks.NewLogger(log.With("component", "asynq")),
		LogLevel:                 asynq.WarnLevel,
	}

	processor := &tasks.ReportProcessor{
		Ledger:           report.NewSyntheticLedger(cfg.RowsPerDay),
		Jobs:             lifecycle,
		ProgressEvery:    cfg.ProgressEvery,
		Tracer:           telemetry.Tracer(tel.tp),
		CancelCheckEvery: time.Second,
		Metrics:          jobMetrics,
		Now:              time.Now,
		Log:              log,
	}
	stopCancels = subscribe(ctx, st.SubscribeCancels, func(ctx context.Context, ev *store.Events) { processor.RunCancels(ctx, ev) })
	plan := reportServers(queues, cfg.Concurrency)
	for _, rs := range plan {
		reports := base
		reports.Concurrency = rs.concurrency
		reports.Queues = map[string]int{rs.queue: 1}
		reports.RetryDelayFunc = tasks.RetryDelay
		srv, err := serve(rdb, reports, tasks.TypeReport, processor)
		if err != nil {
			return stop, err
		}
		servers = append(servers, srv)
	}
	log.Info("report worker running", "queues", len(queues), "asynq_servers", len(plan), "concurrency", totalConcurrency(plan))

	if cfg.WebhookSecret == "" {
		log.Info("webhooks are off: REPORTD_WEBHOOK_SECRET is not set")
		return stop, nil
	}
	signer, err := webhook.ParseSecret(cfg.WebhookSecret)
	if err != nil {
		return stop, fmt.Errorf("REPORTD_WEBHOOK_SECRET: %w", err)
	}
	policy := webhookPolicy(cfg)
	hooks := base
	hooks.Concurrency = cfg.WebhookConcurrency
	hooks.Queues = map[string]int{store.WebhookQueue: 1}
	hooks.RetryDelayFunc = tasks.WebhookRetryDelay(cfg.WebhookSchedule)
	hookClient := webhook.NewClient(policy, cfg.WebhookTimeout)
	if tel.on {
		// A client span per delivery, and the traceparent header the receiver sees.
		hookClient.Transport = otelhttp.NewTransport(hookClient.Transport, otelhttp.WithTracerProvider(tel.tp), otelhttp.WithPropagators(telemetry.Propagator))
	}
	srv, err := serve(rdb, hooks, tasks.TypeWebhook, &tasks.WebhookProcessor{
		Client: hookClient,
		Tracer: telemetry.Tracer(tel.tp),
		Signer: signer,
		Jobs:   lifecycle,
		Now:    time.Now,
		Log:    log,
	})
	if err != nil {
		return stop, err
	}
	servers = append(servers, srv)
	log.Info("webhook worker running", "queue", store.WebhookQueue, "concurrency", cfg.WebhookConcurrency,
		"allow_insecure", policy.AllowInsecure, "allow_private", policy.AllowPrivate)
	return stop, nil
}

// serve starts an asynq server with cfg that runs h for tasks of type typ.
func serve(rdb redis.UniversalClient, cfg asynq.Config, typ string, h asynq.Handler) (*asynq.Server, error) {
	srv := asynq.NewServerFromRedisClient(rdb, cfg)
	mux := asynq.NewServeMux()
	mux.Handle(typ, h)
	if err := srv.Start(mux); err != nil {
		return nil, fmt.Errorf("start %s worker: %w", typ, err)
	}
	return srv, nil
}

// dequeueLoops is how many asynq servers a worker process runs for its report queues at least. An asynq
// server takes its tasks one at a time, a round trip to Redis each (its processor's loop), however high its
// concurrency: with short jobs that loop, not the jobs, bounds a worker (one server drained about 9,000
// one-day jobs a second on this project's machine, four 11,000-11,900). Four loops take tasks side by side
// as BullMQ's workers do; more gained nothing there. Each server polls an empty queue every
// REPORTD_CHECK_INTERVAL, so an idle worker costs Redis four polls an interval instead of one.
const dequeueLoops = 4

// reportServer is one asynq server of the report worker: the queue it serves and its concurrency.
type reportServer struct {
	queue       string
	concurrency int
}

// reportServers plans the report worker's asynq servers: every queue gets an equal share of concurrency
// (rounded up), so that each shard has the same weight, and as many servers as it takes for dequeueLoops
// in all (rounded up: at least one), each with an equal part of its share (never none).
func reportServers(queues []string, concurrency int) []reportServer {
	share := (concurrency + len(queues) - 1) / len(queues)
	loops := max(1, min((dequeueLoops+len(queues)-1)/len(queues), share))
	var plan []reportServer
	for _, q := range queues {
		for i := range loops {
			// share split into loops parts that differ by one at most.
			plan = append(plan, reportServer{queue: q, concurrency: share/loops + btoi(i < share%loops)})
		}
	}
	return plan
}

func totalConcurrency(plan []reportServer) int {
	n := 0
	for _, rs := range plan {
		n += rs.concurrency
	}
	return n
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
