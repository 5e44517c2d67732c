package main

import (
	"context"
	"testing"
	"time"

	"github.com/reportd/reportd/client"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/testkit/reportdproc"
)

// TestEventsE2E follows a job through the Go client's event stream on a real reportd (API and worker in
// separate processes' run calls, on one redis-server): progress as the worker writes it, through Redis
// pub/sub to the API, then done with the result's URL.
func TestEventsE2E(t *testing.T) {
	t.Parallel()
	rows := "20000000" // a quarter of about 2 s
	if raceDetector {
		rows = "2000000"
	}
	vars := reportdproc.Vars(map[string]string{"REDIS_URL": "redis://" + redistest.StartServer(t).Addr, "REPORTD_ROWS_PER_DAY": rows,
		"REPORTD_PROGRESS_EVERY": "50ms"})
	api := start(t, []string{"api"}, vars)
	start(t, []string{"worker"}, vars)
	c, err := client.New(api.base)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	job, err := c.Create(ctx, "2026-Q1", client.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var progress []float64
	var last client.Event
	for ev, err := range c.Events(ctx, job.ID) {
		if err != nil {
			t.Fatalf("events: %v", err)
		}
		if ev.Kind == client.EventStatus && ev.Status.Progress > 0 {
			progress = append(progress, ev.Status.Progress)
		}
		last = ev
	}
	if last.Kind != client.EventDone || last.ResultURL != api.base+"/v1/reports/"+job.ID+"/result" {
		t.Fatalf("the stream ended with %+v, want done with the result's URL", last)
	}
	if len(progress) < 2 {
		t.Errorf("progress seen: %v, want it rising over several events", progress)
	}
	t.Logf("progress seen: %v", progress)
}
