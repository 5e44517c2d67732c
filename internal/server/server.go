// Package server wires reportd's parts from one Options: the job lifecycle, the HTTP API with the
// subscriptions that feed its waits and streams, the report and webhook workers with the subscription
// that stops canceled jobs, and the ops address. cmd/reportd runs it on its configuration; the tests
// that need a running service run it on theirs, so that what they test is what ships.
package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/reportd/reportd/impl"
	"github.com/reportd/reportd/internal/httpapi"
	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/webhook"
)

// Options is what a reportd process is made of. The zero value of each optional field is what
// cmd/reportd would do with its default configuration, unless the field says otherwise.
type Options struct {
	// Redis and Store are the connection every part shares and the store over it.
	Redis redis.UniversalClient
	Store *store.Store
	// Shards are the report queues new jobs go to; Queues the report queues served and counted (Shards'
	// and any older ones that still hold tasks). Zero values: the one default queue.
	Shards store.Shards
	Queues []string

	Policy jobs.Policy
	Limits jobs.Limits
	// Webhooks, when set, lets jobs carry a callback_url and, with a Secret, runs a webhook worker beside
	// the report worker. Nil: webhooks are off.
	Webhooks *Webhooks

	API    API
	Worker Worker

	Log *slog.Logger
	// Registry gets the API's and the worker's series; nil means a registry of the process's own
	// (Service.Registry).
	Registry *prometheus.Registry
	// Tracer, when set, traces requests, jobs and deliveries; nil means tracing is off.
	Tracer trace.TracerProvider

	// Now is the clock of the lifecycle (jobs.Deps) and of the report worker, whose reports count the
	// days up to its today; Heartbeat and Fallback are jobs.Deps'. Nil and zero mean the real clock and
	// the defaults.
	Now       func() time.Time
	Heartbeat time.Duration
	Fallback  time.Duration
	// WrapInspector, if set, wraps the lifecycle's reader of asynq's task info (a test counts its
	// reads with it).
	WrapInspector func(jobs.Inspector) jobs.Inspector
}

// API is how the HTTP API serves.
type API struct {
	// Keys are the API keys; none means an open API, one anonymous client.
	Keys []httpapi.APIKey
	// CORSOrigins may call the API from a browser.
	CORSOrigins []string
	// AdminToken guards /metrics and /monitoring.
	AdminToken string
	// SkipEvents leaves the finish and progress subscriptions off, so that waits and event streams
	// notice a change only by re-reading now and then (tests of that path; a reportd always subscribes).
	SkipEvents bool
	// SkipEstimates leaves the once-a-second refresh of the queue counts behind a pending job's
	// Retry-After off (tests that count Redis commands; a reportd always refreshes).
	SkipEstimates bool
}

// Worker is how the report worker runs.
type Worker struct {
	// Ledger is what reports are computed over.
	Ledger report.Ledger
	// Concurrency is how many report jobs run at once, over all report queues.
	Concurrency int
	// CheckInterval is how often an idle worker looks for a job, DelayedCheck how often due retries go
	// back to the queue, JanitorInterval how often tasks past their retention are deleted.
	CheckInterval, DelayedCheck, JanitorInterval time.Duration
	// ShutdownTimeout bounds a worker's drain.
	ShutdownTimeout time.Duration
	// ProgressEvery is the least time between two progress writes of a job; CancelCheckEvery how often
	// a running job looks for its cancel marker (zero: every second).
	ProgressEvery, CancelCheckEvery time.Duration
	// Handler, if set, runs the report tasks instead of reportd's processor (a test's stand-in); the
	// cancel subscription is then not run.
	Handler asynq.Handler
}

// Webhooks is where webhooks may go and how they are delivered.
type Webhooks struct {
	Policy webhook.Policy
	// Secret signs deliveries (webhook.ParseSecret's form). Empty: jobs accept a callback_url and
	// schedule its delivery, but no worker of this process delivers it.
	Secret      string
	Concurrency int
	// Timeout bounds one delivery; Schedule is the delay before each retry.
	Timeout  time.Duration
	Schedule []time.Duration
}

// Service is a wired reportd: its lifecycle, ready to serve the API, run the workers, or both.
type Service struct {
	opts      Options
	jobs      *jobs.Service
	waiters   *jobs.Waiters
	followers *jobs.Followers
	registry  *prometheus.Registry
	// apiMetrics are the API's series, made with the lifecycle (which counts accepted jobs) and
	// registered when the API starts.
	apiMetrics *httpapi.Metrics
}

// New wires a Service on o; nothing runs until StartAPI or StartWorkers.
func New(o Options) *Service {
	s := &Service{opts: o, registry: o.Registry}
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
	}
	if s.opts.Queues == nil {
		s.opts.Queues = s.opts.Shards.Queues()
	}
	s.apiMetrics = httpapi.NewMetrics()
	deps := jobs.Deps{
		Queue:     asynq.NewClientFromRedisClient(o.Redis),
		Inspector: asynq.NewInspectorFromRedisClient(o.Redis),
		Store:     o.Store,
		Policy:    o.Policy,
		Limits:    o.Limits,
		Log:       o.Log,
		Shards:    o.Shards,
		Queues:    s.opts.Queues,
		Accepted:  s.apiMetrics.Accepted,
		Heartbeat: o.Heartbeat,
		Fallback:  o.Fallback,
		Now:       o.Now,
	}
	if o.WrapInspector != nil {
		deps.Inspector = o.WrapInspector(deps.Inspector)
	}
	if !o.API.SkipEvents {
		s.waiters, s.followers = jobs.NewWaiters(), jobs.NewFollowers()
		deps.Waiters, deps.Followers = s.waiters, s.followers
	}
	if o.Webhooks != nil {
		deps.Webhooks = &jobs.Webhooks{Policy: o.Webhooks.Policy, Resolver: net.DefaultResolver, Event: impl.WebhookEvent}
	}
	// One lifecycle serves the API and the workers of this process.
	s.jobs = jobs.New(deps)
	return s
}

// Jobs is the Service's lifecycle.
func (s *Service) Jobs() *jobs.Service { return s.jobs }

// Registry is where the Service's series are.
func (s *Service) Registry() *prometheus.Registry { return s.registry }

// subscribe runs consume on a subscription until the returned stop is called, which also waits for it.
func subscribe[E io.Closer](ctx context.Context, sub func(context.Context) E, consume func(context.Context, E)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	events := sub(ctx)
	done := make(chan struct{})
	go func() { defer close(done); consume(ctx, events) }()
	return func() { cancel(); _ = events.Close(); <-done }
}

// Ready answers 200 when the Redis nodes of the report queues answer and a worker serves every one of
// them (in this process when localWorker, or any other: asynq's servers register themselves in
// Redis), 503 otherwise, saying which is missing.
func (s *Service) Ready(localWorker bool) http.HandlerFunc {
	inspector := asynq.NewInspectorFromRedisClient(s.opts.Redis)
	queues := s.opts.Shards.Queues()
	return func(w http.ResponseWriter, r *http.Request) {
		// Reads in the queues' hash slots, not a PING: on a Redis Cluster any live node answers a PING,
		// while a master that holds a queue may be down.
		if err := s.opts.Store.QueuesReachable(r.Context(), queues); err != nil {
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

// Waiters are the requests waiting for a job (Prefer: wait); nil when API.SkipEvents.
func (s *Service) Waiters() *jobs.Waiters { return s.waiters }
