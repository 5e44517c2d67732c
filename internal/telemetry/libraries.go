package telemetry

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/go-logr/logr"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
)

// RouteLibraryLogs makes log the logger of every library in reportd that logs on its own, which would
// otherwise write plain text to stderr beside reportd's JSON:
//
//   - the standard library's log package, as warnings: net/http's server errors, asynq's queue metrics
//     collector ("Failed to collect metrics data" when a scrape finds Redis away), asynqmon, asynq's
//     internal errors;
//   - slog's own default logger;
//   - go-redis, whose connection pool logs every failed dial (component go-redis);
//   - OpenTelemetry's errors (a span export that failed) and its internal logger (component
//     opentelemetry).
//
// asynq's servers get their logger in their asynq.Config (tasks.NewLogger). Of the rest, gRPC is
// linked (by the OTLP protocol's generated service code) but never opens a connection, so its logger
// never speaks. It is process-wide: a process calls it once, before it logs.
func RouteLibraryLogs(log *slog.Logger) {
	slog.SetLogLoggerLevel(slog.LevelWarn)
	slog.SetDefault(log)
	redis.SetLogger(redisLogger{log.With("component", "go-redis")})
	ot := log.With("component", "opentelemetry")
	otel.SetLogger(logr.FromSlogHandler(ot.Handler()))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { ot.Warn("opentelemetry error", "err", err) }))
}

// redisLogger logs go-redis's lines as warnings: it logs only what went wrong.
type redisLogger struct{ log *slog.Logger }

// Printf logs one line. go-redis's context is left out: a dial that failed under a request is the
// pool's failure, the same for every request, and held back as one (the request's own lines carry
// its id).
func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Warn(fmt.Sprintf(format, v...))
}
