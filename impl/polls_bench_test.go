package impl_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/tasks"
)

// BenchmarkPollsDefaultLedger measures how a client that sleeps exactly Retry-After between polls fares
// with one 2026-Q1 report on the default synthetic ledger (about 3 s of work on one core): how many
// status polls it makes and how long it takes, on redis-server when there is one. Each op is one job:
//
//	go test ./impl -run '^$' -bench PollsDefaultLedger -benchtime 3x
func BenchmarkPollsDefaultLedger(b *testing.B) {
	backends := redistest.Backends(b)
	be := backends[len(backends)-1] // redis-server when there is one
	rdb := redis.NewClient(&redis.Options{Addr: be.Addr})
	b.Cleanup(func() { _ = rdb.Close() })
	// The worker as cmd/reportd configures it by default.
	proc := &tasks.ReportProcessor{
		Ledger:           report.NewSyntheticLedger(report.DefaultRowsPerDay),
		Jobs:             jobs.New(jobs.Deps{Store: store.NewStore(rdb, 24*time.Hour, time.Hour)}),
		ProgressEvery:    250 * time.Millisecond,
		CancelCheckEvery: time.Second,
		Now:              time.Now,
		Log:              slog.New(slog.DiscardHandler),
	}
	var mu sync.Mutex
	var began, ended time.Time
	timed := asynq.HandlerFunc(func(ctx context.Context, task *asynq.Task) error {
		mu.Lock()
		began = time.Now()
		mu.Unlock()
		err := proc.ProcessTask(ctx, task)
		mu.Lock()
		ended = time.Now()
		mu.Unlock()
		return err
	})
	h := newHarness(b, be, setup{Worker: true, Handler: timed})

	var polls, jobsRun int
	var seen, ran, late time.Duration
	for b.Loop() {
		start := time.Now()
		r := h.post(b, `{"range":"2026-Q1"}`)
		if r.Status != http.StatusAccepted {
			b.Fatalf("POST: %s", r)
		}
		id := locationID(b, r.Header.Get("Location"))
		ra, err := retryAfter(r.Header)
		if err != nil {
			b.Fatal(err)
		}
		trace := []string{fmt.Sprintf("202 ra=%d", ra)}
		n := 0
		for {
			time.Sleep(time.Duration(ra) * time.Second)
			n++
			r = h.get(b, "/v1/reports/"+id)
			at := time.Since(start).Round(10 * time.Millisecond)
			if r.Status == http.StatusSeeOther {
				trace = append(trace, fmt.Sprintf("%s 303", at))
				break
			}
			if r.Status != http.StatusOK || n > 100 {
				b.Fatalf("poll %d: %s", n, r)
			}
			s := r.jobStatus(b)
			if ra, err = retryAfter(r.Header); err != nil {
				b.Fatal(err)
			}
			trace = append(trace, fmt.Sprintf("%s %s %.2f ra=%d", at, s.Status, s.Progress, ra))
		}
		total := time.Since(start)
		mu.Lock()
		b.Logf("%s: %d status polls; the client saw the 303 %s after its POST; the job started %s after the POST, ran %s and was done %s before the client looked; polls: %s",
			be.Name, n, total.Round(10*time.Millisecond), began.Sub(start).Round(time.Millisecond), ended.Sub(began).Round(10*time.Millisecond),
			start.Add(total).Sub(ended).Round(10*time.Millisecond), strings.Join(trace, " | "))
		polls, jobsRun, seen, ran, late = polls+n, jobsRun+1, seen+total, ran+ended.Sub(began), late+start.Add(total).Sub(ended)
		mu.Unlock()
	}
	per := float64(jobsRun)
	b.ReportMetric(float64(polls)/per, "polls/op")
	b.ReportMetric(seen.Seconds()/per, "seen-303-s/op")
	b.ReportMetric(ran.Seconds()/per, "work-s/op")
	b.ReportMetric(late.Seconds()/per, "done-to-seen-s/op")
}
