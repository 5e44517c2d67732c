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
	finished recentIDs
	draining chan struct{}
	drain    sync.Once
}

// NewWaiters returns an empty set of waiters.
func NewWaiters() *Waiters {
	return &Waiters{by: map[string]map[chan struct{}]struct{}{}, finished: newRecentIDs(time.Now), draining: make(chan struct{})}
}

// recentFinish is how long a finish event is remembered for the waiters that register after it. The
// worker announces a job's finish just before asynq moves its task to its final state: a request that
// starts waiting between the two reads the job as running, and the event it needs has gone by. Without
// this memory it waited for its fallback re-read (5 to 15 s); a load of 10,000 short jobs met that race
// for a few jobs a run once a worker took tasks over several asynq servers.
const recentFinish = 2 * time.Second

// maxRecentFinish bounds the memory of finish events (about 5 MB) whatever the rate of jobs.
const maxRecentFinish = 1 << 16

// recentIDs remembers ids for recentFinish, maxRecentFinish at most, oldest forgotten first.
type recentIDs struct {
	now   func() time.Time
	at    map[string]time.Time
	order []recentID // oldest first
}

type recentID struct {
	id string
	at time.Time
}

func newRecentIDs(now func() time.Time) recentIDs {
	return recentIDs{now: now, at: map[string]time.Time{}}
}

// add remembers id from now on, and forgets what is too old or too many.
func (r *recentIDs) add(id string) {
	now := r.now()
	r.at[id] = now
	r.order = append(r.order, recentID{id, now})
	n := 0
	for n < len(r.order) && (len(r.order)-n > maxRecentFinish || now.Sub(r.order[n].at) > recentFinish) {
		if old := r.order[n]; r.at[old.id].Equal(old.at) {
			delete(r.at, old.id)
		}
		n++
	}
	if n > 0 {
		r.order = append(r.order[:0], r.order[n:]...)
	}
}

// has reports whether id was added within recentFinish.
func (r *recentIDs) has(id string) bool {
	at, ok := r.at[id]
	return ok && r.now().Sub(at) <= recentFinish
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
// reached a terminal status. Call stop when done waiting.
func (w *Waiters) Watch(id string) (ch <-chan struct{}, stop func()) {
	c := make(chan struct{}, 1)
	w.mu.Lock()
	set := w.by[id]
	if set == nil {
		set = map[chan struct{}]struct{}{}
		w.by[id] = set
	}
	set[c] = struct{}{}
	if w.finished.has(id) {
		notify(c) // it finished a moment ago: the waiter reads it again (readUntilTerminal)
	}
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
	w.finished.add(id)
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
