package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/server"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/testkit"
)

// TestTraceShowsTheQueueWait: a job's trace shows how long it waited in the queue, as a report.queued
// span beside the attempt, under the POST's span: it starts at the job's acceptance, within the POST,
// and ends where the attempt starts. The worker starts only after the POST has been answered, so the
// job waits for certain, and the wait ends after the POST does.
func TestTraceShowsTheQueueWait(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Embedded(t).Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	policy := jobs.Policy{Retention: time.Hour, Tombstone: time.Hour, JobTimeout: time.Minute}
	svc := server.New(server.Options{
		Redis:  rdb,
		Store:  store.NewStore(rdb, policy.Retention, policy.Tombstone),
		Policy: policy,
		Log:    slog.New(slog.DiscardHandler),
		Tracer: tp,
		Worker: server.Worker{Ledger: report.NewSyntheticLedger(100), Concurrency: 1, CheckInterval: 10 * time.Millisecond,
			DelayedCheck: 50 * time.Millisecond, JanitorInterval: time.Second, ShutdownTimeout: 2 * time.Second, ProgressEvery: time.Second},
	})
	handler, err := svc.Handler(svc.Ready(true))
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(handler)
	t.Cleanup(api.Close)

	res, err := http.Post(api.URL+"/v1/reports", "application/json", strings.NewReader(`{"range":"2026-01-01..2026-01-02"}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("POST = %d", res.StatusCode)
	}
	status := res.Header.Get("Location")
	stop, err := svc.StartWorkers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	noRedirects := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	testkit.Eventually(t, 10*time.Second, 20*time.Millisecond, func() error {
		res, err := noRedirects.Get(api.URL + status)
		if err != nil {
			return err
		}
		_ = res.Body.Close()
		if res.StatusCode != http.StatusSeeOther {
			return fmt.Errorf("status read = %d, want 303", res.StatusCode)
		}
		return nil
	})

	named := func(name string) (sdktrace.ReadOnlySpan, error) {
		for _, s := range spans.Ended() {
			if s.Name() == name {
				return s, nil
			}
		}
		return nil, fmt.Errorf("no %s span among %d", name, len(spans.Ended()))
	}
	var post, queued, attempt sdktrace.ReadOnlySpan
	testkit.Eventually(t, 5*time.Second, 10*time.Millisecond, func() (err error) {
		if post, err = named("POST /v1/reports"); err != nil {
			return err
		}
		if queued, err = named("report.queued"); err != nil {
			return err
		}
		attempt, err = named("report.attempt")
		return err
	})
	id := strings.TrimPrefix(status, "/v1/reports/")
	if queued.Parent().SpanID() != post.SpanContext().SpanID() || attempt.Parent().SpanID() != post.SpanContext().SpanID() {
		t.Errorf("report.queued's parent %s and report.attempt's %s: want both the POST's %s",
			queued.Parent().SpanID(), attempt.Parent().SpanID(), post.SpanContext().SpanID())
	}
	if queued.StartTime().Before(post.StartTime()) || queued.StartTime().After(post.EndTime()) {
		t.Errorf("report.queued starts at %v, outside the POST (%v to %v)", queued.StartTime(), post.StartTime(), post.EndTime())
	}
	if !queued.EndTime().Equal(attempt.StartTime()) {
		t.Errorf("report.queued ends at %v, the attempt starts at %v: want the same instant", queued.EndTime(), attempt.StartTime())
	}
	if !queued.EndTime().After(post.EndTime()) {
		t.Errorf("report.queued ends at %v, not after the POST's end %v, though no worker ran until the POST was answered", queued.EndTime(), post.EndTime())
	}
	got := map[string]string{}
	for _, kv := range queued.Attributes() {
		got[string(kv.Key)] = kv.Value.String()
	}
	if got["reportd.job.id"] != id || got["reportd.job.queue"] != store.QueueOf(id) {
		t.Errorf("report.queued attributes %v: want the job id %s and its queue %s", got, id, store.QueueOf(id))
	}
}
