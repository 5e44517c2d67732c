package main

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/reportd/reportd/client"
	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/testkit"
)

var (
	goldenID = uuid.MustParse("0f8fad5b-d9cb-469f-a165-70867728950e")
	t0       = time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC)
)

func date(s string) openapi_types.Date {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return openapi_types.Date{Time: d}
}

func TestSummaryGolden(t *testing.T) {
	t.Parallel()
	rep := &gen.Report{
		Id: goldenID, Range: gen.DateRange{From: date("2026-01-01"), To: date("2026-01-02")}, GeneratedAt: t0,
		Orders: 1234567, Units: 3456789, RevenueCents: 98765432101,
		ByRegion:  []gen.RegionTotals{{Region: "amer-east", Orders: 1, Units: 1, RevenueCents: 27000000000}},
		ByProduct: []gen.ProductTotals{{Product: "27in Monitor", Orders: 1, Units: 1, RevenueCents: 8200000000}},
		ByDay:     []gen.DayTotals{{Date: date("2026-01-01")}, {Date: date("2026-01-02")}},
	}
	var buf bytes.Buffer
	printSummary(&buf, rep, "http://localhost:8080/v1/reports/"+goldenID.String()+"/result")
	testkit.Golden(t, "testdata/summary.golden", buf.Bytes())
}

func TestStatusGolden(t *testing.T) {
	t.Parallel()
	attempt, started, finished, expires := 2, t0.Add(time.Second), t0.Add(9*time.Second), t0.Add(24*time.Hour)
	job := func(state gen.JobState, progress float64) *gen.JobStatus {
		return &gen.JobStatus{
			Id: goldenID, Status: state, Progress: progress, CreatedAt: t0, StartedAt: &started, Attempt: &attempt,
			Range: gen.DateRange{From: date("2026-01-01"), To: date("2026-03-31")},
			Links: gen.JobLinks{Self: "/v1/reports/" + goldenID.String()},
		}
	}
	failed := job(gen.Failed, 0.4)
	failed.FinishedAt, failed.ExpiresAt = &finished, &expires
	failed.Error = &gen.Problem{Type: "/problems/report-failed", Title: "Report failed", Status: 500,
		Detail: "The job failed on every attempt it was given. Submitting it again may help."}
	tests := []struct {
		name string
		st   *client.Status
	}{
		{name: "status-running", st: &client.Status{ID: goldenID.String(), State: gen.Running, Job: job(gen.Running, 0.42), RetryAfter: 3 * time.Second}},
		{name: "status-failed", st: &client.Status{ID: goldenID.String(), State: gen.Failed, Job: failed}},
		{name: "status-done", st: &client.Status{ID: goldenID.String(), State: gen.Done, Done: true,
			ResultURL: "http://localhost:8080/v1/reports/" + goldenID.String() + "/result", Expires: expires}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			printStatus(&buf, tt.st)
			testkit.Golden(t, filepath.Join("testdata", tt.name+".golden"), buf.Bytes())
		})
	}
}

func TestBenchGolden(t *testing.T) {
	t.Parallel()
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	b := &benchRun{jobs: 5, workers: 2, rng: "2026-Q1", server: "http://localhost:8080"}
	for _, o := range []outcome{
		{accepted: true, finished: true, accept: ms(2), toResult: ms(4100), polls: 1},
		{accepted: true, finished: true, accept: ms(3), toResult: ms(8300), polls: 2},
		{accepted: true, finished: true, accept: ms(5), toResult: ms(12400), polls: 3},
		{accepted: true, finished: true, accept: ms(4), err: &client.JobError{Job: gen.JobStatus{Id: goldenID, Status: gen.Failed},
			Problem: &gen.Problem{Type: "/problems/report-failed", Title: "Report failed"}}, phase: "job"},
		{accepted: true, accept: ms(2), err: context.DeadlineExceeded, phase: "wait"},
	} {
		b.add(o)
	}
	b.elapsed = 12500 * time.Millisecond
	var buf bytes.Buffer
	b.print(&buf)
	testkit.Golden(t, "testdata/bench.golden", buf.Bytes())
}

func TestListGolden(t *testing.T) {
	t.Parallel()
	other := uuid.MustParse("6ba7b810-9dad-41d1-80b4-00c04fd430c8")
	var buf bytes.Buffer
	printJobs(&buf, []gen.JobStatus{
		{Id: goldenID, Status: gen.Running, Progress: 0.42, CreatedAt: t0.Add(time.Minute),
			Range: gen.DateRange{From: date("2026-01-01"), To: date("2026-03-31")}},
		{Id: other, Status: gen.Done, Progress: 1, CreatedAt: t0,
			Range: gen.DateRange{From: date("2026-01-01"), To: date("2026-01-01")}},
	})
	testkit.Golden(t, "testdata/list.golden", buf.Bytes())
}
