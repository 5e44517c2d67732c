package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/testkit"
	"github.com/reportd/reportd/internal/testkit/reportdproc"
)

// TestShutdownWithinOneTimeout stops an all-in-one reportd while the API has a request in flight that
// will not finish (a body that never comes) and the worker has a job that will not either: both run
// out of REPORTD_SHUTDOWN_TIMEOUT together, so run returns after about one timeout, not one for the
// API and then one for the worker.
func TestShutdownWithinOneTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 3 * time.Second
	vars := reportdproc.Vars(map[string]string{
		"REDIS_URL":                redistest.StartServer(t).URL,
		"REPORTD_SHUTDOWN_TIMEOUT": timeout.String(),
		"REPORTD_ROWS_PER_DAY":     "1000000000", // a quarter takes a minute or more
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sink := testkit.NewLogSink()
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, env(vars), logTo(t, sink)) }()
	l, ok := sink.WaitFor(10*time.Second, nil, testkit.MsgIs("listening"))
	if !ok {
		t.Fatalf("reportd did not start; log:\n%s", sink)
	}
	base := "http://" + l.Fields["addr"].(string)

	loc := submit(t, base, "2026-Q1")
	testkit.Eventually(t, 10*time.Second, 20*time.Millisecond, func() error {
		if res := do(t, "GET", base+loc, "", ""); res.status != 200 || jobStatus(t, res).Status != gen.Running {
			return fmt.Errorf("job %s not running: %s", loc, res)
		}
		return nil
	})
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /v1/reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"range\":"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the request is being read

	stopped := time.Now()
	cancel()
	select {
	case err := <-done:
		took := time.Since(stopped)
		t.Logf("run returned %v %s after the stop, with REPORTD_SHUTDOWN_TIMEOUT=%s", err, took.Round(time.Millisecond), timeout)
		// One timeout plus slack for a loaded machine; the API's and then the worker's would be two.
		if took > timeout+timeout*2/3 {
			t.Errorf("run took %s to stop, more than one REPORTD_SHUTDOWN_TIMEOUT (%s): the API and the worker drained one after the other", took, timeout)
		}
	case <-time.After(4 * timeout):
		t.Fatalf("run did not return %s after the stop", 4*timeout)
	}
}
