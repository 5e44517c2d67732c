// Package testkit holds the helpers that the tests of several packages share: a buffer that one
// goroutine writes while a test reads it, a logger whose lines are shown when a test fails, a sink
// that parses a JSON log as it is written and lets a test wait for a line, golden files, and
// Eventually, which polls a condition until it holds. Running reportd as a process is
// reportdproc's.
//
// Only tests import it. Redis processes are internal/redistest's, webhook receivers
// internal/webhook/webhooktest's.
package testkit

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"
)

// Buffer is a bytes.Buffer that a writer (a logger, a redraw loop) and a test may share.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// NewLog returns a debug-level text logger and the Buffer it writes to. The log is shown, headed by
// what, only when the test fails, and never written to tb after the test ends.
func NewLog(tb testing.TB, what string) (*Buffer, *slog.Logger) {
	tb.Helper()
	buf := &Buffer{}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("%s:\n%s", what, buf)
		}
	})
	return buf, slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
