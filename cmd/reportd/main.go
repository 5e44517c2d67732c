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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "reportd:", err)
		os.Exit(1)
	}
}

// mode is which halves of reportd a process runs.
type mode struct{ api, worker bool }

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

// newLogger logs JSON, one object a line, to w.
func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
