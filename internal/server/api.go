package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/hibiken/asynq"
	"github.com/hibiken/asynq/x/metrics"
	"github.com/hibiken/asynqmon"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/reportd/reportd"
	"github.com/reportd/reportd/impl"
	"github.com/reportd/reportd/internal/httpapi"
	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/telemetry"
)

// MonitoringPath is where the asynq web UI is mounted.
const MonitoringPath = "/monitoring"

// sharedRedis is an asynq connection option that hands out an existing client.
type sharedRedis struct{ rdb redis.UniversalClient }

func (s sharedRedis) MakeRedisClient() any { return s.rdb }

// APIServer is the running HTTP API.
type APIServer struct {
	srv           *http.Server
	waiters       *jobs.Waiters
	stopWaiters   func()
	stopFollowers func()
	// stopEstimates stops the refresh of the queue counts behind pending jobs' Retry-After.
	stopEstimates func()

	mu    sync.Mutex
	fresh map[net.Conn]bool // connections that have not sent a request yet
}

// track remembers which connections have not sent a request yet: net/http's Shutdown waits up to 5 s
// for such a connection as if it were busy, which a browser's preconnect or a load balancer's TCP
// check would turn into a slow, failed drain.
func (a *APIServer) track(c net.Conn, state http.ConnState) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if state == http.StateNew {
		a.fresh[c] = true
	} else {
		delete(a.fresh, c)
	}
}

// closeFresh closes the connections that have not sent a request: nothing is lost by it.
func (a *APIServer) closeFresh() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for c := range a.fresh {
		_ = c.Close()
		delete(a.fresh, c)
	}
}

// Handler is the HTTP API with everything reportd serves beside it (docs, the spec, health, metrics and
// the asynq web UI), and the middleware every request goes through: request ids, metrics, CORS and,
// when tracing is on, a server span. ready answers /readyz.
func (s *Service) Handler(ready http.HandlerFunc) (http.Handler, error) {
	o := s.opts
	// The docs render /openapi.yaml itself: the copy in gen/ has its operation ids renamed.
	docs := httpapi.Docs(o.Log)
	admin := httpapi.AdminOnly(o.API.AdminToken, o.Log)
	// asynqmon makes its own client from a connection option; this one hands it the shared client, so
	// that the UI uses reportd's timeouts and, with the embedded Redis, the same server.
	mon := asynqmon.New(asynqmon.Options{RootPath: MonitoringPath, RedisConnOpt: sharedRedis{o.Redis}})
	handler, err := httpapi.New(impl.New(s.jobs), o.API.Keys, o.Log, func(r chi.Router) {
		r.Get("/healthz", healthz)
		r.Get("/readyz", ready)
		r.Get("/openapi.yaml", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/yaml")
			_, _ = w.Write(reportd.OpenAPI)
		})
		r.Get("/", http.RedirectHandler(httpapi.DocsPath, http.StatusFound).ServeHTTP)
		r.Method(http.MethodGet, httpapi.DocsPath, docs)
		r.Method(http.MethodGet, httpapi.DocsPath+"/*", docs)
		r.With(admin).Method(http.MethodGet, "/metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
		r.With(admin).Handle(MonitoringPath, http.RedirectHandler(MonitoringPath+"/", http.StatusMovedPermanently))
		r.With(admin).Handle(MonitoringPath+"/*", mon)
	})
	if err != nil {
		return nil, err
	}
	handler = httpapi.RequestIDs(s.apiMetrics.Instrument(httpapi.CORS(o.API.CORSOrigins)(handler)))
	if o.Tracer != nil {
		// A server span per request, a child of the caller's traceparent when it sends one; the router
		// names it by its route.
		handler = otelhttp.NewHandler(handler, "reportd", otelhttp.WithTracerProvider(o.Tracer), otelhttp.WithPropagators(telemetry.Propagator))
	}
	return handler, nil
}

// StartAPI serves the HTTP API on ln, with the subscriptions that wake its waits and feed its event
// streams and the refresh of the estimates behind Retry-After; a failure to serve later is sent on
// errc. ready answers /readyz.
func (s *Service) StartAPI(ctx context.Context, ln net.Listener, ready http.HandlerFunc, errc chan<- error) (*APIServer, error) {
	o := s.opts
	handler, err := s.Handler(ready)
	if err != nil {
		return nil, err
	}
	s.apiMetrics.Register(s.registry)
	s.registry.MustRegister(metrics.NewQueueMetricsCollector(asynq.NewInspectorFromRedisClient(o.Redis)))
	a := &APIServer{
		fresh:         map[net.Conn]bool{},
		waiters:       s.waiters,
		stopWaiters:   func() {},
		stopFollowers: func() {},
		stopEstimates: func() {},
		// The longest answer is a Prefer: wait of 60 s.
		srv: newHTTPServer(handler, 30*time.Second, 90*time.Second, 64<<10),
	}
	if s.waiters != nil {
		// One subscription per API process wakes every request waiting for a job (Prefer: wait).
		a.stopWaiters = subscribe(ctx, o.Store.SubscribeFinished, func(ctx context.Context, ev *store.Events) { s.waiters.Run(ctx, ev, o.Log) })
		// And one feeds the event streams the progress of running jobs.
		a.stopFollowers = subscribe(ctx, o.Store.SubscribeProgress, func(ctx context.Context, ev *store.ProgressEvents) { s.followers.Run(ctx, ev, o.Log) })
	}
	a.srv.ConnState = a.track
	if !o.API.SkipEstimates {
		ectx, stopEstimates := context.WithCancel(ctx)
		estimates := make(chan struct{})
		go func() { defer close(estimates); s.jobs.RunEstimates(ectx) }()
		a.stopEstimates = func() { stopEstimates(); <-estimates }
	}
	go func() {
		if err := a.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serve http: %w", err)
		}
	}()
	o.Log.Info("listening", "addr", ln.Addr().String(), "url", "http://"+ln.Addr().String())
	return a, nil
}

// Drain stops accepting, ends the requests waiting for jobs with the status as it is, and waits up to
// timeout for the requests in flight.
func (a *APIServer) Drain(timeout time.Duration) error {
	if a.waiters != nil {
		a.waiters.Drain()
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.srv.Shutdown(ctx) }()
	// Shutdown closes the listener first, so no new connection arrives after this.
	time.Sleep(10 * time.Millisecond)
	a.closeFresh()
	if err := <-done; err != nil {
		return fmt.Errorf("drain http: %w", err)
	}
	return nil
}

// Close stops what the API runs beside the HTTP server; call it after Drain.
func (a *APIServer) Close() { a.stopWaiters(); a.stopFollowers(); a.stopEstimates() }

// newHTTPServer is an http.Server for h with the timeouts and header limit every listener of reportd
// has: a header within 5 s, an idle connection closed after 2 minutes, and the body's read and the
// answer's write bounded by read and write.
func newHTTPServer(h http.Handler, read, write time.Duration, maxHeader int) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       read,
		WriteTimeout:      write,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    maxHeader,
	}
}
