package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/go-chi/chi/v5"
	"github.com/hibiken/asynq"
	"github.com/hibiken/asynq/x/metrics"
	"github.com/hibiken/asynqmon"
	"github.com/prometheus/client_golang/prometheus"
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

// monitoringPath is where the asynq web UI is mounted.
const monitoringPath = "/monitoring"

// sharedRedis is an asynq connection option that hands out an existing client.
type sharedRedis struct{ rdb redis.UniversalClient }

func (s sharedRedis) MakeRedisClient() any { return s.rdb }

// apiServer is the running HTTP API.
type apiServer struct {
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
func (a *apiServer) track(c net.Conn, state http.ConnState) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if state == http.StateNew {
		a.fresh[c] = true
	} else {
		delete(a.fresh, c)
	}
}

// closeFresh closes the connections that have not sent a request: nothing is lost by it.
func (a *apiServer) closeFresh() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for c := range a.fresh {
		_ = c.Close()
		delete(a.fresh, c)
	}
}

// startAPI starts the HTTP API on cfg.Addr, on the lifecycle jobs, whose waiters it feeds with the
// finish events; a failure to serve later is sent on errc.
func startAPI(ctx context.Context, cfg config, ln net.Listener, rdb redis.UniversalClient, st *store.Store, lifecycle *jobs.Service, waiters *jobs.Waiters, followers *jobs.Followers, m *httpapi.Metrics, reg *prometheus.Registry, ready http.HandlerFunc, tel telemetrySetup, log *slog.Logger, errc chan<- error) (*apiServer, error) {
	reg.MustRegister(metrics.NewQueueMetricsCollector(asynq.NewInspectorFromRedisClient(rdb)))
	// The docs are rendered from openapi.yaml itself: the copy in gen/ has its operation ids renamed.
	spec, err := openapi3.NewLoader().LoadFromData(reportd.OpenAPI)
	if err != nil {
		return nil, fmt.Errorf("load openapi.yaml: %w", err)
	}
	docs, err := httpapi.DocsHandler(spec)
	if err != nil {
		return nil, fmt.Errorf("render docs: %w", err)
	}
	admin := httpapi.AdminOnly(cfg.AdminToken, log)
	// asynqmon makes its own client from a connection option; this one hands it the shared client, so
	// that the UI uses reportd's timeouts and, with the embedded Redis, the same server.
	mon := asynqmon.New(asynqmon.Options{RootPath: monitoringPath, RedisConnOpt: sharedRedis{rdb}})
	handler, err := httpapi.New(impl.New(lifecycle), cfg.APIKeys, log, func(r chi.Router) {
		r.Get("/healthz", healthz)
		r.Get("/readyz", ready)
		r.Get("/openapi.yaml", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/yaml")
			_, _ = w.Write(reportd.OpenAPI)
		})
		r.Get("/", http.RedirectHandler("/docs", http.StatusFound).ServeHTTP)
		r.Method(http.MethodGet, "/docs", docs)
		r.With(admin).Method(http.MethodGet, "/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		r.With(admin).Handle(monitoringPath, http.RedirectHandler(monitoringPath+"/", http.StatusMovedPermanently))
		r.With(admin).Handle(monitoringPath+"/*", mon)
	})
	if err != nil {
		return nil, err
	}
	handler = httpapi.RequestIDs(m.Instrument(httpapi.CORS(cfg.CORSOrigins)(handler)))
	if tel.on {
		// A server span per request, a child of the caller's traceparent when it sends one; the router
		// names it by its route.
		handler = otelhttp.NewHandler(handler, "reportd", otelhttp.WithTracerProvider(tel.tp), otelhttp.WithPropagators(telemetry.Propagator))
	}
	a := &apiServer{
		fresh:   map[net.Conn]bool{},
		waiters: waiters,
		// One subscription per API process wakes every request waiting for a job (Prefer: wait).
		stopWaiters: subscribe(ctx, st.SubscribeFinished, func(ctx context.Context, ev *store.Events) { waiters.Run(ctx, ev, log) }),
		// And one feeds the event streams the progress of running jobs.
		stopFollowers: subscribe(ctx, st.SubscribeProgress, func(ctx context.Context, ev *store.ProgressEvents) { followers.Run(ctx, ev, log) }),
		srv: &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       30 * time.Second,
			// The longest answer is a Prefer: wait of 60 s.
			WriteTimeout:   90 * time.Second,
			IdleTimeout:    2 * time.Minute,
			MaxHeaderBytes: 64 << 10,
		},
	}
	a.srv.ConnState = a.track
	ectx, stopEstimates := context.WithCancel(ctx)
	estimates := make(chan struct{})
	go func() { defer close(estimates); lifecycle.RunEstimates(ectx) }()
	a.stopEstimates = func() { stopEstimates(); <-estimates }
	go func() {
		if err := a.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serve http: %w", err)
		}
	}()
	log.Info("listening", "addr", ln.Addr().String(), "url", "http://"+ln.Addr().String())
	return a, nil
}

// listenAPI binds the API's address, refusing one other hosts can reach when the API is open (no keys)
// unless REPORTD_ALLOW_OPEN says so.
func listenAPI(cfg config, log *slog.Logger) (net.Listener, error) {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	if len(cfg.APIKeys) == 0 {
		if !isLoopback(ln.Addr()) && !cfg.AllowOpen {
			_ = ln.Close()
			return nil, fmt.Errorf("REPORTD_ADDR=%s is reachable from other hosts and no API keys are set: set REPORTD_API_KEYS (or REPORTD_API_KEYS_FILE), or REPORTD_ALLOW_OPEN=true to serve it open", cfg.Addr)
		}
		log.Warn("no API keys are set: the API is open, every request is one anonymous client", "addr", ln.Addr().String())
	} else {
		log.Info("API keys set", "clients", clientNames(cfg.APIKeys))
	}
	return ln, nil
}

// isLoopback reports whether a listener's address is reachable only from this host.
func isLoopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// drain stops accepting, ends the requests waiting for jobs with the status as it is, and waits up to
// timeout for the requests in flight.
func (a *apiServer) drain(timeout time.Duration) error {
	a.waiters.Drain()
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

// close stops what the API runs beside the HTTP server.
func (a *apiServer) close() { a.stopWaiters(); a.stopFollowers(); a.stopEstimates() }
