package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/reportd/reportd/internal/httpapi"
)

// StartOps serves, on ln (bound to REPORTD_OPS_ADDR), what an orchestrator and Prometheus need of any reportd process:
// /healthz, /readyz and /metrics (behind the admin token), and nothing else. It is how a worker-only
// process, which serves no API, is probed and scraped; in the other modes it keeps those off the
// API's address. A failure to serve later is sent on errc. The returned stop closes it.
func (s *Service) StartOps(ln net.Listener, ready http.HandlerFunc, errc chan<- error) (stop func(), err error) {
	log := s.opts.Log
	r := chi.NewRouter()
	r.Get("/healthz", healthz)
	r.Get("/readyz", ready)
	r.With(httpapi.AdminOnly(s.opts.API.AdminToken, log)).Method(http.MethodGet, "/metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "this address serves only /healthz, /readyz and /metrics", http.StatusNotFound)
	})
	srv := newHTTPServer(r, 10*time.Second, 30*time.Second, 16<<10)
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serve ops http: %w", err)
		}
	}()
	log.Info("ops listening", "addr", ln.Addr().String(), "paths", []string{"/healthz", "/readyz", "/metrics"})
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
	}, nil
}

// healthz answers while the process runs.
func healthz(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") }
