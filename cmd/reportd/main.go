// Command reportd serves the reportd API and runs its report jobs.
//
//	reportd          the API and a worker in one process
//	reportd api      the API alone
//	reportd worker   a worker alone
//
// With REDIS_URL unset it starts an embedded, in-memory Redis: fine to try it out, not durable.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/reportd/reportd/internal/console"
	"github.com/reportd/reportd/internal/httpapi"
	"github.com/reportd/reportd/internal/telemetry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// A file gets the log in batches (batchWriter); a terminal or a pipe (a supervisor, a log shipper, a
	// test harness reading as reportd runs) gets each line as it is logged.
	var stderr io.Writer = os.Stderr
	var flush func() error
	if isRegularFile(os.Stderr) {
		b := newBatchWriter(os.Stderr, logBatchDelay)
		stderr, flush = b, b.Flush
	}
	log, repeats := newLogger(stderr)
	stopRepeats := repeats.Start()
	// Every library's own logger too: every line reportd writes is one JSON object (on a terminal, one
	// text line), and a failure that recurs is held back as any other.
	telemetry.RouteLibraryLogs(log)
	err := run(ctx, os.Args[1:], os.Getenv, log)
	if err != nil {
		log.Error("reportd exits", "err", err)
	}
	stopRepeats()
	if flush != nil {
		_ = flush()
	}
	if err != nil {
		os.Exit(1)
	}
}

// logBatchDelay is how long a log line written to a file waits, at most, for the write that carries it:
// short enough that a tail -f sees it at once.
const logBatchDelay = 50 * time.Millisecond

// isRegularFile reports whether f is a plain file (not a terminal, pipe or socket).
func isRegularFile(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode().IsRegular()
}

// mode is which halves of reportd a process runs.
type mode struct{ api, worker bool }

// role is what the process's spans say it runs (the resource's reportd.role).
func (m mode) role() string {
	switch {
	case m.api && m.worker:
		return telemetry.RoleAll
	case m.api:
		return telemetry.RoleAPI
	default:
		return telemetry.RoleWorker
	}
}

func parseMode(args []string) (mode, error) {
	if len(args) == 0 {
		return mode{api: true, worker: true}, nil
	}
	if len(args) == 1 {
		switch args[0] {
		case "all":
			return mode{api: true, worker: true}, nil
		case "api":
			return mode{api: true}, nil
		case "worker":
			return mode{worker: true}, nil
		}
	}
	return mode{}, fmt.Errorf("usage: reportd [all|api|worker] (got %q)", args)
}

// newLogger logs to w: JSON, one object a line, unless w is a terminal, where text reads better.
// Lines logged with a request's context carry its request_id. Durations read as Go writes them
// ("1.5s"), not as the nanoseconds slog's JSON would give. A failure that recurs is held back by
// repeats (telemetry.Repeats), which writes its counts once started.
func newLogger(w io.Writer) (log *slog.Logger, repeats *telemetry.Repeats) {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		switch {
		case a.Value.Kind() == slog.KindDuration:
			return slog.String(a.Key, a.Value.Duration().String())
		case a.Key == slog.LevelKey && len(groups) == 0:
			// With a ReplaceAttr, slog hands the level over as an Any, which the JSON handler then
			// writes through encoding/json: that cost the worker a tenth of its CPU in a drain.
			if l, ok := a.Value.Any().(slog.Level); ok {
				return slog.String(a.Key, l.String())
			}
		}
		return a
	}}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if console.IsTerminal(w) {
		h = slog.NewTextHandler(w, opts)
	}
	repeats = telemetry.NewRepeats(h, telemetry.RepeatInterval, nil)
	return slog.New(httpapi.ContextHandler{Handler: repeats}), repeats
}
