package main

import (
	"io"
	"sync"
	"time"
)

// batchWriter passes what is written to it on to w in batches: a write waits at most delay for the one
// that carries it, so that at full load the log costs a system call per batch rather than per line
// (reportd logs three lines a job, and a write(2) here costs about as much as formatting the line).
// Lines stay whole and in order. What it holds when the process dies without Close is lost: at most
// delay's worth of lines.
type batchWriter struct {
	w     io.Writer
	delay time.Duration
	mu    sync.Mutex
	buf   []byte
	timer *time.Timer // armed while buf holds anything
}

// batchLimit is how much a batchWriter holds before it writes at once.
const batchLimit = 64 << 10

func newBatchWriter(w io.Writer, delay time.Duration) *batchWriter {
	b := &batchWriter{w: w, delay: delay}
	b.timer = time.AfterFunc(time.Hour, func() { _ = b.Flush() })
	b.timer.Stop()
	return b
}

// Write holds p for the next batch; it fails only with the error of a write it makes at once.
func (b *batchWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf) == 0 {
		b.timer.Reset(b.delay)
	}
	b.buf = append(b.buf, p...)
	if len(b.buf) >= batchLimit {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Flush writes what is held.
func (b *batchWriter) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked()
}

func (b *batchWriter) flushLocked() error {
	b.timer.Stop()
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}
