package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/telemetry"
	"github.com/reportd/reportd/internal/webhook"
	"github.com/reportd/reportd/tasks"
)

// StartWorkers starts the report worker (the asynq servers of reportServers), the subscription that
// stops canceled jobs, and, when webhooks are set up with a secret, the webhook worker, an asynq server
// of its own, so that slow webhook receivers never take a report job's place. stop shuts the servers
// down at once, each within Worker.ShutdownTimeout, and then the cancel subscription, which running
// jobs listen to until they end.
func (s *Service) StartWorkers(ctx context.Context) (stop func(), err error) {
	o, w := s.opts, s.opts.Worker
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
	base := s.asynqConfig()

	var tracer trace.Tracer
	if o.Tracer != nil {
		tracer = telemetry.Tracer(o.Tracer)
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	h := w.Handler
	if h == nil {
		// The service's clock: it says which days of a range have happened.
		processor := &tasks.ReportProcessor{
			Ledger:           w.Ledger,
			Jobs:             s.jobs,
			ProgressEvery:    w.ProgressEvery,
			Tracer:           tracer,
			CancelCheckEvery: w.CancelCheckEvery,
			Metrics:          tasks.NewJobMetrics(s.registry),
			Now:              now,
			Log:              o.Log,
		}
		stopCancels = subscribe(ctx, o.Store.SubscribeCancels, func(ctx context.Context, ev *store.Events) { processor.RunCancels(ctx, ev) })
		h = processor
	}
	plan := reportServers(s.opts.Queues, w.Concurrency)
	for _, rs := range plan {
		reports := base
		reports.Concurrency = rs.concurrency
		reports.Queues = map[string]int{rs.queue: 1}
		reports.RetryDelayFunc = tasks.RetryDelay
		srv, err := serve(o.Redis, reports, tasks.TypeReport, h)
		if err != nil {
			return stop, err
		}
		servers = append(servers, srv)
	}
	o.Log.Info("report worker running", "queues", len(s.opts.Queues), "asynq_servers", len(plan), "concurrency", totalConcurrency(plan))

	stopDeliveries, err := s.StartDeliveries()
	if err != nil {
		return stop, err
	}
	stopReports := stop
	return func() {
		var wg sync.WaitGroup
		wg.Go(stopReports)
		wg.Go(stopDeliveries)
		wg.Wait()
	}, nil
}

// StartDeliveries starts the webhook worker alone, when webhooks are set up with a secret (StartWorkers
// starts it beside the report worker); stop shuts it down within Worker.ShutdownTimeout.
func (s *Service) StartDeliveries() (stop func(), err error) {
	o := s.opts
	if o.Webhooks == nil || o.Webhooks.Secret == "" {
		o.Log.Info("webhooks are off: REPORTD_WEBHOOK_SECRET is not set")
		return func() {}, nil
	}
	var tracer trace.Tracer
	if o.Tracer != nil {
		tracer = telemetry.Tracer(o.Tracer)
	}
	wh := o.Webhooks
	signer, err := webhook.ParseSecret(wh.Secret)
	if err != nil {
		return nil, fmt.Errorf("REPORTD_WEBHOOK_SECRET: %w", err)
	}
	hooks := s.asynqConfig()
	hooks.Concurrency = wh.Concurrency
	hooks.Queues = map[string]int{store.WebhookQueue: 1}
	hooks.RetryDelayFunc = tasks.WebhookRetryDelay(wh.Schedule)
	hookClient := webhook.NewClient(wh.Policy, wh.Timeout)
	if o.Tracer != nil {
		// A client span per delivery, and the traceparent header the receiver sees.
		hookClient.Transport = otelhttp.NewTransport(hookClient.Transport, otelhttp.WithTracerProvider(o.Tracer), otelhttp.WithPropagators(telemetry.Propagator))
	}
	srv, err := serve(o.Redis, hooks, tasks.TypeWebhook, &tasks.WebhookProcessor{
		Client: hookClient,
		Tracer: tracer,
		Signer: signer,
		Jobs:   s.jobs,
		Now:    time.Now,
		Log:    o.Log,
	})
	if err != nil {
		return nil, err
	}
	o.Log.Info("webhook worker running", "queue", store.WebhookQueue, "concurrency", wh.Concurrency,
		"allow_insecure", wh.Policy.AllowInsecure, "allow_private", wh.Policy.AllowPrivate)
	return srv.Shutdown, nil
}

// asynqConfig is what every asynq server of the process shares.
func (s *Service) asynqConfig() asynq.Config {
	w := s.opts.Worker
	return asynq.Config{
		TaskCheckInterval:        w.CheckInterval,
		DelayedTaskCheckInterval: w.DelayedCheck,
		JanitorInterval:          w.JanitorInterval,
		ShutdownTimeout:          w.ShutdownTimeout,
		Logger:                   tasks.NewLogger(s.opts.Log.With("component", "asynq")),
		LogLevel:                 asynq.WarnLevel,
	}
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
// concurrency: with short jobs that loop, not the jobs, bounds a worker. Several loops take tasks side by
// side, as BullMQ's workers do; four is where more stopped helping (measured in docs/performance.md,
// Drain). Each server polls an empty queue every REPORTD_CHECK_INTERVAL, so an idle worker costs Redis
// four polls an interval instead of one.
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
