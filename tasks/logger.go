package tasks

import (
	"fmt"
	"log/slog"

	"github.com/hibiken/asynq"
)

// NewLogger returns an asynq.Logger that writes asynq's lines to log. asynq's Fatal, which would end
// the process, is logged as an error instead: a server stops through Shutdown, not by its logger.
func NewLogger(log *slog.Logger) asynq.Logger { return asynqLogger{log} }

// asynqLogger hands asynq's log lines to slog.
type asynqLogger struct{ log *slog.Logger }

func (l asynqLogger) Debug(args ...any) { l.log.Debug(fmt.Sprint(args...)) }
func (l asynqLogger) Info(args ...any)  { l.log.Info(fmt.Sprint(args...)) }
func (l asynqLogger) Warn(args ...any)  { l.log.Warn(fmt.Sprint(args...)) }
func (l asynqLogger) Error(args ...any) { l.log.Error(fmt.Sprint(args...)) }
func (l asynqLogger) Fatal(args ...any) { l.log.Error(fmt.Sprint(args...)) }
