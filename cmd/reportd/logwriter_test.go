package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reportd/reportd/internal/testkit"
)

// countedWriter records what reaches it and in how many writes.
type countedWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (c *countedWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	return c.buf.Write(p)
}

func (c *countedWriter) state() (string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String(), c.writes
}

// TestBatchWriter: lines written together reach the file in one write, whole and in order, within the
// delay and without a Flush; a Flush writes what is held at once; a burst past the limit is written
// without waiting.
func TestBatchWriter(t *testing.T) {
	t.Parallel()
	t.Run("batches-within-the-delay", func(t *testing.T) {
		t.Parallel()
		var c countedWriter
		b := newBatchWriter(&c, 20*time.Millisecond)
		var want strings.Builder
		for i := range 100 {
			line := fmt.Sprintf("{\"msg\":\"line %d\"}\n", i)
			want.WriteString(line)
			if _, err := b.Write([]byte(line)); err != nil {
				t.Fatal(err)
			}
		}
		testkit.Eventually(t, 5*time.Second, time.Millisecond, func() error {
			if got, _ := c.state(); got == "" {
				return errors.New("the batch writer has written nothing after its delay")
			}
			return nil
		})
		got, writes := c.state()
		if got != want.String() || writes != 1 {
			t.Errorf("after the delay: %d writes of %q, want 1 of the 100 lines in order", writes, got)
		}
	})
	t.Run("flush", func(t *testing.T) {
		t.Parallel()
		var c countedWriter
		b := newBatchWriter(&c, time.Hour)
		_, _ = b.Write([]byte("one\n"))
		_, _ = b.Write([]byte("two\n"))
		if got, _ := c.state(); got != "" {
			t.Fatalf("before the Flush: %q reached the file", got)
		}
		if err := b.Flush(); err != nil {
			t.Fatal(err)
		}
		if got, writes := c.state(); got != "one\ntwo\n" || writes != 1 {
			t.Errorf("after the Flush: %d writes of %q", writes, got)
		}
		if err := b.Flush(); err != nil {
			t.Fatal(err)
		}
		if _, writes := c.state(); writes != 1 {
			t.Errorf("a Flush with nothing held wrote: %d writes", writes)
		}
	})
	t.Run("limit", func(t *testing.T) {
		t.Parallel()
		var c countedWriter
		b := newBatchWriter(&c, time.Hour)
		line := []byte(strings.Repeat("x", 1023) + "\n")
		for range batchLimit / len(line) {
			_, _ = b.Write(line)
		}
		if got, writes := c.state(); len(got) != batchLimit || writes != 1 {
			t.Errorf("at the limit: %d writes of %d bytes, want 1 of %d", writes, len(got), batchLimit)
		}
	})
}
