package tasks

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// JobMetrics are a worker's Prometheus series about report jobs.
type JobMetrics struct {
	finished *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewJobMetrics registers the job series on reg.
func NewJobMetrics(reg prometheus.Registerer) *JobMetrics {
	m := &JobMetrics{
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reportd_jobs_finished_total",
			Help: "Report jobs that reached a terminal status in this worker, by status (done, failed, canceled).",
		}, []string{"status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "reportd_job_duration_seconds",
			Help:    "Run time of a job's last attempt, by terminal status.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 16), // 10 ms to ~5 min
		}, []string{"status"}),
	}
	reg.MustRegister(m.finished, m.duration)
	return m
}

func (m *JobMetrics) observe(status string, took time.Duration) {
	if m == nil {
		return
	}
	m.finished.WithLabelValues(status).Inc()
	m.duration.WithLabelValues(status).Observe(took.Seconds())
}
