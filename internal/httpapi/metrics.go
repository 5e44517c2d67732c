package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the API's Prometheus series.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// Accepted counts accepted jobs; the job lifecycle, which accepts them, increments it.
	Accepted prometheus.Counter
}

// NewMetrics makes the API's series; Register puts them on a registry, so that the lifecycle can count
// accepted jobs from the start while only a process that serves the API exports them.
func NewMetrics() *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reportd_http_requests_total",
			Help: "HTTP requests answered, by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "reportd_http_request_duration_seconds",
			Help: "Time to answer HTTP requests, by route pattern, method and status (Prefer: wait included).",
			// From sub-millisecond status reads to minute-long waits.
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route", "method", "status"}),
		Accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reportd_jobs_accepted_total",
			Help: "Report jobs accepted (202, or 303 for a wait that saw the job done), replays excluded.",
		}),
	}
	return m
}

// Register puts the series on reg.
func (m *Metrics) Register(reg prometheus.Registerer) {
	reg.MustRegister(m.requests, m.duration, m.Accepted)
}

// Instrument counts and times every request h answers, labelled by its route pattern (never the raw
// path: ids would make a series per job).
func (m *Metrics) Instrument(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// chi fills a route context that is already in the request, so the pattern can be read here.
		rctx := chi.NewRouteContext()
		r = r.WithContext(context.WithValue(r.Context(), chi.RouteCtxKey, rctx))
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		route := rctx.RoutePattern()
		if route == "" {
			route = "unmatched"
		}
		labels := []string{route, r.Method, strconv.Itoa(sw.status)}
		m.requests.WithLabelValues(labels...).Inc()
		m.duration.WithLabelValues(labels...).Observe(time.Since(start).Seconds())
	})
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer (flushes, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
