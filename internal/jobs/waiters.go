package jobs

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// EventSource delivers the ids of jobs that reached a terminal status; *store.Events is the production
// one (one Redis pub/sub subscription per API process).
type EventSource interface {
	// Next blocks for the next event: a finished job's id, or missed when events may have been missed
	// (the subscription was re-established), so that every waiter should look again.
	Next(ctx context.Context) (id string, missed bool, err error)
}

// Waiters lets requests wait for jobs to finish without polling Redis: one subscription wakes them.
// The zero value is not usable; call NewWaiters.
type Waiters struct {
	mu       sync.Mutex
	by       map[string]map[chan struct{}]struct{}
	draining chan struct{}
	drain    sync.Once
}

// NewWaiters returns an empty set of waiters.
func NewWaiters() *Waiters {
	return &Waiters{by: map[string]map[chan struct{}]struct{}{}, draining: make(chan struct{})}
}

// Drain makes every wait, current and future, end at once with the job's current status, so that a
// server shutting down is not held up by requests waiting for jobs.
func (w *Waiters) Drain() { w.drain.Do(func() { close(w.draining) }) }

// Draining is closed once Drain was called.
func (w *Waiters) Draining() <-chan struct{} { return w.draining }

// Run feeds events from src to the waiters until ctx is done. After an error it backs off and, since
// events may have been lost meanwhile, wakes every waiter to look again.
func (w *Waiters) Run(ctx context.Context, src EventSource, log *slog.Logger) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		id, missed, err := src.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("job events interrupted; waiters fall back to re-reading", "err", err, "retry_in", backoff)
			w.wakeAll()
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 2*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		if missed {
			w.wakeAll()
			continue
		}
		w.Notify(id)
	}
}

// Watch registers interest in job id: the returned channel receives a value when the job may have
// reached a terminal status. Register before reading the job: a finish event published before Watch
// leaves the job's end record, which that read finds (Service.getWithEnd). Call stop when done waiting.
func (w *Waiters) Watch(id string) (ch <-chan struct{}, stop func()) {
	c := make(chan struct{}, 1)
	w.mu.Lock()
	set := w.by[id]
	if set == nil {
		set = map[chan struct{}]struct{}{}
		w.by[id] = set
	}
	set[c] = struct{}{}
	w.mu.Unlock()
	return c, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.by[id], c)
		if len(w.by[id]) == 0 {
			delete(w.by, id)
		}
	}
}

// Len is the number of jobs being waited on.
func (w *Waiters) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.by)
}

// Notify wakes the requests waiting for job id; Run calls it for every finish event.
func (w *Waiters) Notify(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for c := range w.by[id] {
		notify(c)
	}
}

func (w *Waiters) wakeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, set := range w.by {
		for c := range set {
			notify(c)
		}
	}
}

// notify sends on c without blocking: one pending wake-up is as good as many.
func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
