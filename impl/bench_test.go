package impl_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/reportd/reportd/impl"
	"github.com/reportd/reportd/internal/httpapi"
	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/telemetry"
	"github.com/reportd/reportd/tasks"
)

// The benchmarks here measure the API on a real redis-server, each beside its floor, in one run:
//
//	go test ./impl -run '^$' -bench 'Status|Floor|Create|Pickup' -benchtime 5000x -count 3
//
// They report requests per second and latency percentiles as metrics; compare the ratios, not the
// absolute figures, which depend on the machine and its load.

// benchConns is the number of connections the load uses, as in the README's figures.
const benchConns = 32

// benchAPI is reportd's API over a real redis-server, with one job held running.
type benchAPI struct {
	url     string
	rdb     *redis.Client
	running string // status path of a job held running (its ledger blocks)
	release func()
}

// newBenchAPI starts the API, with a worker holding one job running if worker is set, and with every
// request traced (full sampling, spans batched to an exporter that drops them) if traced is set: the
// cost of tracing's spans without a collector's network.
func newBenchAPI(b *testing.B, worker bool, traced ...bool) *benchAPI {
	b.Helper()
	srv := redistest.StartServer(b)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: 2 * benchConns})
	b.Cleanup(func() { _ = rdb.Close() })
	store.CacheQueueChecks(rdb) // as store.NewClient, which cmd/reportd uses, does
	log := slog.New(slog.DiscardHandler)
	policy := jobs.Policy{Retention: time.Hour, Tombstone: time.Hour, JobTimeout: time.Minute, MaxRetry: 0}
	st := store.NewStore(rdb, policy.Retention, policy.Tombstone)
	h, err := httpapi.New(impl.New(jobs.New(jobs.Deps{
		Queue: asynq.NewClientFromRedisClient(rdb), Inspector: asynq.NewInspectorFromRedisClient(rdb),
		Store: st, Policy: policy, Log: log,
	})), nil, log, nil)
	if err != nil {
		b.Fatal(err)
	}
	if len(traced) > 0 && traced[0] {
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardSpans{}), sdktrace.WithSampler(sdktrace.AlwaysSample()))
		b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		h = otelhttp.NewHandler(h, "reportd", otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(telemetry.Propagator))
	}
	ts := httptest.NewServer(h)
	b.Cleanup(ts.Close)
	api := &benchAPI{url: ts.URL, rdb: rdb, release: func() {}}
	if !worker {
		return api
	}
	gate := make(chan struct{})
	started := make(chan struct{}, 1)
	ws := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: 1, Queues: map[string]int{store.ReportQueue: 1},
		TaskCheckInterval: 20 * time.Millisecond, LogLevel: asynq.FatalLevel, Logger: tasks.NewLogger(log)})
	mux := asynq.NewServeMux()
	mux.Handle(tasks.TypeReport, &tasks.ReportProcessor{
		Ledger: blockingLedger{gate: gate, started: started}, Jobs: jobs.New(jobs.Deps{Store: st, Log: log}),
		ProgressEvery: time.Millisecond, Now: time.Now, Log: log,
	})
	if err := ws.Start(mux); err != nil {
		b.Fatal(err)
	}
	var once sync.Once
	api.release = func() { once.Do(func() { close(gate) }) }
	b.Cleanup(func() { api.release(); ws.Shutdown() })
	api.running = api.post(b)
	<-started
	return api
}

// blockingLedger serves a day's orders after gate is closed, saying when it was first asked.
type blockingLedger struct {
	gate    chan struct{}
	started chan struct{}
}

func (l blockingLedger) Day(ctx context.Context, _ time.Time, buf []report.Order) ([]report.Order, error) {
	select {
	case l.started <- struct{}{}:
	default:
	}
	select {
	case <-l.gate:
		return buf, nil
	case <-ctx.Done():
		return buf, ctx.Err()
	}
}

var benchClient = &http.Client{
	Transport:     &http.Transport{MaxIdleConnsPerHost: benchConns, MaxConnsPerHost: benchConns},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func (a *benchAPI) post(b *testing.B) string {
	res, err := benchClient.Post(a.url+"/v1/reports", "application/json", strings.NewReader(`{"range":"2026-Q1"}`))
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		b.Fatalf("POST = %d", res.StatusCode)
	}
	return res.Header.Get("Location")
}

// load sends b.N requests made by req over benchConns connections and reports throughput and latency
// percentiles.
func load(b *testing.B, want int, req func() (*http.Request, error)) {
	b.Helper()
	lat := make([]time.Duration, b.N)
	var next int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range benchConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= int64(b.N) {
					return
				}
				r, err := req()
				if err != nil {
					b.Error(err)
					return
				}
				t0 := time.Now()
				res, err := benchClient.Do(r)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				lat[i] = time.Since(t0)
				if res.StatusCode != want {
					b.Errorf("status %d, want %d", res.StatusCode, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkStatusRunning is a status read of a running job: the API's hot path.
func BenchmarkStatusRunning(b *testing.B) {
	api := newBenchAPI(b, true)
	before := commandCount(b, api.rdb)
	load(b, http.StatusOK, func() (*http.Request, error) { return http.NewRequest(http.MethodGet, api.url+api.running, nil) })
	b.ReportMetric(float64(commandCount(b, api.rdb)-before)/float64(b.N), "redis-cmds/req")
}

// BenchmarkStatusRunningTraced is BenchmarkStatusRunning with every request traced.
func BenchmarkStatusRunningTraced(b *testing.B) {
	api := newBenchAPI(b, true, true)
	load(b, http.StatusOK, func() (*http.Request, error) { return http.NewRequest(http.MethodGet, api.url+api.running, nil) })
}

// discardSpans is a span exporter that drops what it is given.
type discardSpans struct{}

func (discardSpans) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardSpans) Shutdown(context.Context) error                             { return nil }

// BenchmarkFloorHGET is the floor under BenchmarkStatusRunning: a bare net/http handler that answers
// with one Redis HGET, on the same redis-server setup and load.
func BenchmarkFloorHGET(b *testing.B) {
	srv := redistest.StartServer(b)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: 2 * benchConns})
	b.Cleanup(func() { _ = rdb.Close() })
	if err := rdb.HSet(context.Background(), "floor", "state", `{"status":"running","progress":0.5}`).Err(); err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := rdb.HGet(r.Context(), "floor", "state").Result()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, v)
	}))
	b.Cleanup(ts.Close)
	load(b, http.StatusOK, func() (*http.Request, error) { return http.NewRequest(http.MethodGet, ts.URL+"/floor", nil) })
}

// BenchmarkCreate is a POST, answered once the job is durably enqueued.
func BenchmarkCreate(b *testing.B) { benchCreate(b, false) }

// BenchmarkCreateTraced is BenchmarkCreate with every request traced.
func BenchmarkCreateTraced(b *testing.B) { benchCreate(b, true) }

func benchCreate(b *testing.B, traced bool) {
	api := newBenchAPI(b, false, traced)
	load(b, http.StatusAccepted, func() (*http.Request, error) {
		r, err := http.NewRequest(http.MethodPost, api.url+"/v1/reports", strings.NewReader(`{"range":"2026-01"}`))
		if err == nil {
			r.Header.Set("Content-Type", "application/json")
		}
		return r, err
	})
}

// BenchmarkPickup is the time from a 202 to the job running, on an idle worker with reportd's default
// check interval (20 ms).
func BenchmarkPickup(b *testing.B) {
	srv := redistest.StartServer(b)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	b.Cleanup(func() { _ = rdb.Close() })
	log := slog.New(slog.DiscardHandler)
	started := make(chan time.Time, 1)
	ws := asynq.NewServerFromRedisClient(rdb, asynq.Config{Concurrency: 1, Queues: map[string]int{store.ReportQueue: 1},
		TaskCheckInterval: 20 * time.Millisecond, LogLevel: asynq.FatalLevel, Logger: tasks.NewLogger(log)})
	mux := asynq.NewServeMux()
	mux.HandleFunc(tasks.TypeReport, func(context.Context, *asynq.Task) error { started <- time.Now(); return nil })
	if err := ws.Start(mux); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(ws.Shutdown)
	client := asynq.NewClientFromRedisClient(rdb)
	rng, _ := report.ParseRange("2026-01")
	lat := make([]time.Duration, 0, b.N)
	for i := 0; b.Loop(); i++ {
		task, opts, _ := tasks.NewReportTask(fmt.Sprintf("pickup-%d-%d", i, time.Now().UnixNano()), store.ReportQueue, rng, time.Now())
		t0 := time.Now()
		if _, err := client.Enqueue(task, opts...); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, (<-started).Sub(t0))
		// An idle worker: wait a random part of a check interval, as a real client's arrival would.
		time.Sleep(time.Duration(i%20) * time.Millisecond)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// commandCount is how many commands rdb's server has run, its INFO calls aside.
func commandCount(tb testing.TB, rdb *redis.Client) int64 {
	tb.Helper()
	stats, err := redistest.CommandStats(context.Background(), rdb)
	if err != nil {
		tb.Fatal(err)
	}
	var n int64
	for name, calls := range stats {
		if name != "info" {
			n += calls
		}
	}
	return n
}
