package impl_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
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

// TestMeasurePollsDefaultLedger measures, and does not judge, how a client that sleeps exactly
// Retry-After between polls fares with one 2026-Q1 report on the default synthetic ledger (about 3 s of
// work on one core): how many status polls it makes and how long it takes. Set REPORTD_MEASURE=1.
func TestMeasurePollsDefaultLedger(t *testing.T) {
	if os.Getenv("REPORTD_MEASURE") != "1" {
		t.Skip("a measurement, not a test: set REPORTD_MEASURE=1 to run it")
	}
	backends := redistest.Backends(t)
	b := backends[len(backends)-1] // redis-server when there is one
	rdb := redis.NewClient(&redis.Options{Addr: b.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
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
	h := newHarness(t, b, setup{Worker: true, Handler: timed})

	start := time.Now()
	r := h.post(t, `{"range":"2026-Q1"}`)
	if r.Status != http.StatusAccepted {
		t.Fatalf("POST: %s", r)
	}
	id := jobIDOf(t, r.Header.Get("Location"))
	ra, err := retryAfter(r.Header)
	if err != nil {
		t.Fatal(err)
	}
	trace := []string{fmt.Sprintf("202 ra=%d", ra)}
	polls := 0
	for {
		time.Sleep(time.Duration(ra) * time.Second)
		polls++
		r = h.get(t, "/v1/reports/"+id)
		at := time.Since(start).Round(10 * time.Millisecond)
		if r.Status == http.StatusSeeOther {
			trace = append(trace, fmt.Sprintf("%s 303", at))
			break
		}
		if r.Status != http.StatusOK || polls > 100 {
			t.Fatalf("poll %d: %s", polls, r)
		}
		s := r.jobStatus(t)
		if ra, err = retryAfter(r.Header); err != nil {
			t.Fatal(err)
		}
		trace = append(trace, fmt.Sprintf("%s %s %.2f ra=%d", at, s.Status, s.Progress, ra))
	}
	total := time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%s: %d status polls; the client saw the 303 %s after its POST; the job started %s after the POST, ran %s and was done %s before the client looked; polls: %s",
		b.Name, polls, total.Round(10*time.Millisecond), began.Sub(start).Round(time.Millisecond), ended.Sub(began).Round(10*time.Millisecond),
		start.Add(total).Sub(ended).Round(10*time.Millisecond), strings.Join(trace, " | "))
}
