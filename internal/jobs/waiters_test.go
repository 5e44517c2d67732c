package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/reportd/reportd/internal/testkit"
)

var _ EventSource = (*fakeEvents)(nil)

// fakeEvent is what fakeEvents.Next returns once.
type fakeEvent struct {
	id     string
	missed bool
	err    error
}

// fakeEvents hands out the events sent on its channel, and blocks until ctx is done otherwise.
type fakeEvents struct{ c chan fakeEvent }

func newFakeEvents() *fakeEvents { return &fakeEvents{c: make(chan fakeEvent)} }

func (f *fakeEvents) Next(ctx context.Context) (string, bool, error) {
	select {
	case e := <-f.c:
		return e.id, e.missed, e.err
	case <-ctx.Done():
		return "", false, ctx.Err()
	}
}

// send hands e to Run, failing the test if Run does not take it within a second.
func (f *fakeEvents) send(t *testing.T, e fakeEvent) {
	t.Helper()
	select {
	case f.c <- e:
	case <-time.After(time.Second):
		t.Fatalf("Run did not take the event %+v within 1 s", e)
	}
}

// runWaiters runs w on a fresh fakeEvents until the test ends, and returns the events.
func runWaiters(t *testing.T, w *Waiters) *fakeEvents {
	t.Helper()
	src := newFakeEvents()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx, src, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(time.Second):
			t.Error("Run did not return within 1 s of its context's end")
		}
	})
	return src
}

// watch watches job id on w until the test ends.
func watch(t *testing.T, w *Waiters, id string) <-chan struct{} {
	t.Helper()
	c, stop := w.Watch(id)
	t.Cleanup(stop)
	return c
}

// woken reports whether c receives within d.
func woken(c <-chan struct{}, d time.Duration) bool {
	select {
	case <-c:
		return true
	case <-time.After(d):
		return false
	}
}

func TestWaitersWakeTheJobsWaiters(t *testing.T) {
	t.Parallel()
	w := NewWaiters()
	src := runWaiters(t, w)
	a1 := watch(t, w, "a")
	a2 := watch(t, w, "a")
	b := watch(t, w, "b")

	src.send(t, fakeEvent{id: "a"})
	if !woken(a1, time.Second) || !woken(a2, time.Second) {
		t.Error("an event of job a did not wake both of its waiters")
	}
	if woken(b, 50*time.Millisecond) {
		t.Error("an event of job a woke a waiter of job b")
	}
	src.send(t, fakeEvent{id: "b"})
	if !woken(b, time.Second) {
		t.Error("an event of job b did not wake its waiter")
	}
}

func TestWaitersWakeAllWhenEventsMayBeLost(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ev   fakeEvent
	}{
		{name: "resubscribed", ev: fakeEvent{missed: true}},
		{name: "error", ev: fakeEvent{err: errors.New("read tcp: connection reset by peer")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := NewWaiters()
			src := runWaiters(t, w)
			a := watch(t, w, "a")
			b := watch(t, w, "b")
			src.send(t, tc.ev)
			if !woken(a, time.Second) || !woken(b, time.Second) {
				t.Errorf("%s did not wake every waiter", tc.name)
			}
			// Run goes on after it: the next event is delivered (after the back-off of an error).
			src.send(t, fakeEvent{id: "a"})
			if !woken(a, time.Second) {
				t.Errorf("after %s, an event of job a did not wake its waiter", tc.name)
			}
		})
	}
}

func TestWaitersWakeUpIsKeptUntilRead(t *testing.T) {
	t.Parallel()
	w := NewWaiters()
	src := runWaiters(t, w)
	a := watch(t, w, "a")
	// Several events before the waiter looks: none blocks Run, and one wake-up is pending.
	for range 3 {
		src.send(t, fakeEvent{id: "a"})
	}
	src.send(t, fakeEvent{id: "other"}) // Run has handled the three by the time it takes this one
	select {
	case <-a:
	default:
		t.Error("a wake-up sent before the waiter looked was lost")
	}
	if woken(a, 20*time.Millisecond) {
		t.Error("three wake-ups queued more than one")
	}
}

func TestWaitersLen(t *testing.T) {
	t.Parallel()
	w := NewWaiters()
	if n := w.Len(); n != 0 {
		t.Fatalf("Len of new waiters = %d", n)
	}
	_, stopA1 := w.Watch("a")
	_, stopA2 := w.Watch("a")
	_, stopB := w.Watch("b")
	if n := w.Len(); n != 2 {
		t.Errorf("Len with two waiters of a and one of b = %d, want 2 jobs", n)
	}
	stopA1()
	if n := w.Len(); n != 2 {
		t.Errorf("Len after one of a's two waiters stopped = %d, want 2", n)
	}
	stopA2()
	stopB()
	if n := w.Len(); n != 0 {
		t.Errorf("Len after every waiter stopped = %d, want 0 (no job left behind)", n)
	}
	stopA1() // a second stop is harmless
	if n := w.Len(); n != 0 {
		t.Errorf("Len after a second stop = %d, want 0", n)
	}
}

func TestWaitersNoLeak(t *testing.T) {
	t.Parallel()
	w := NewWaiters()
	src := runWaiters(t, w)
	for i := range 1000 {
		_, stop := w.Watch(uuid.NewString())
		if i%2 == 0 {
			src.send(t, fakeEvent{id: ""})
		}
		stop()
	}
	if n := w.Len(); n != 0 {
		t.Errorf("Len after 1000 waits that ended = %d, want 0", n)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.by); n != 0 {
		t.Errorf("%d jobs are still kept after their waiters stopped", n)
	}
}

func TestWaitersRunStops(t *testing.T) {
	// Not parallel: it counts the process's goroutines, and parallel tests start theirs at any time (it
	// failed once in CI under the race detector so).
	before := runtime.NumGoroutine()
	for range 20 {
		w := NewWaiters()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); w.Run(ctx, newFakeEvents(), slog.New(slog.DiscardHandler)) }()
		cancel()
		select {
		case <-done:
		case <-time.After(time.Second):
			t.Fatal("Run did not return within 1 s of its context's end")
		}
	}
	// Allow for goroutines of the runtime and of tests that ran before, still ending.
	testkit.Eventually(t, time.Second, 10*time.Millisecond, func() error {
		if after := runtime.NumGoroutine(); after > before+10 {
			return fmt.Errorf("goroutines: %d before, %d after 20 runs that stopped", before, after)
		}
		return nil
	})
}

func TestWaitersDrain(t *testing.T) {
	t.Parallel()
	w := NewWaiters()
	select {
	case <-w.Draining():
		t.Fatal("Draining is closed before Drain")
	default:
	}
	w.Drain()
	w.Drain() // a second Drain is harmless
	select {
	case <-w.Draining():
	default:
		t.Fatal("Draining is open after Drain")
	}
}
