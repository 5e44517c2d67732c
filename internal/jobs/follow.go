package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/reportd/reportd/internal/problem"
)

// Streams of a job's events (GET /v1/reports/{id}/events): the job's status at once, every change of
// its state or progress, at most every EventGap, and one terminal event. Progress reaches the API
// processes as the worker writes it, by pub/sub (one subscription a process, Followers.Run), and the
// finish event wakes the stream as it wakes a waiting request: a stream costs Redis nothing a progress
// tick, a read when its job ends, and one every Deps.Fallback in case a message was lost.

// EventGap is the shortest time between two status events of one stream.
const EventGap = 250 * time.Millisecond

// DefaultHeartbeat is how often a stream with nothing to say sends a comment, so that proxies do not
// close it as idle.
const DefaultHeartbeat = 15 * time.Second

// DefaultMaxStreams bounds the event streams one client may have open at once on one API process.
const DefaultMaxStreams = 100

// Event is one event of a job's stream: the job as it shows it, and the event's id.
type Event struct {
	// ID identifies the event for Last-Event-ID: a terminal event's is the job's terminal state, a
	// status event's says the state, attempt and progress it shows, so that a resumed stream does not
	// repeat it.
	ID string
	// Job is the job as the event shows it.
	Job Job
}

// TerminalEventID reports whether a Last-Event-ID names a terminal event: the stream it resumes has
// ended, and has nothing more to send.
func TerminalEventID(id string) bool {
	switch State(id) {
	case Done, Failed, Canceled:
		return true
	}
	return false
}

// eventOf is the event that shows job j.
func eventOf(j Job) Event {
	if j.Terminal() {
		return Event{ID: string(j.State), Job: j}
	}
	return Event{ID: fmt.Sprintf("%s.%d.%d", j.State, j.Progress.Attempt, int(j.Progress.Share*10000)), Job: j}
}

// Followers fans running jobs' progress out to the streams that follow them. The zero value is not
// usable; call NewFollowers.
type Followers struct {
	mu      sync.Mutex
	by      map[string]map[chan []byte]struct{}
	clients map[string]int // open streams by client
}

// NewFollowers returns a Followers with no streams.
func NewFollowers() *Followers {
	return &Followers{by: map[string]map[chan []byte]struct{}{}, clients: map[string]int{}}
}

// ProgressSource delivers running jobs' progress; *store.ProgressEvents is the production one.
type ProgressSource interface {
	// Next blocks for the next progress of a job, or returns missed when some may have been lost.
	Next(ctx context.Context) (id string, progress []byte, missed bool, err error)
}

// Run feeds progress from src to the streams until ctx is done. When progress may have been lost, every
// stream re-reads its job.
func (f *Followers) Run(ctx context.Context, src ProgressSource, log *slog.Logger) {
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		id, p, missed, err := src.Next(ctx)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			log.Warn("job progress interrupted; event streams fall back to re-reading", "err", err, "retry_in", backoff)
			f.send("", nil)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 2*time.Second)
		case missed:
			f.send("", nil)
		default:
			backoff = 50 * time.Millisecond
			f.send(id, p)
		}
	}
}

// send hands progress p to job id's streams, or, with no id, nil (re-read) to every stream. A stream
// keeps only the latest progress it has not taken yet.
func (f *Followers) send(id string, p []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	deliver := func(c chan []byte) {
		select {
		case <-c: // drop the stale one
		default:
		}
		c <- p
	}
	if id != "" {
		for c := range f.by[id] {
			deliver(c)
		}
		return
	}
	for _, set := range f.by {
		for c := range set {
			deliver(c)
		}
	}
}

// open registers a stream of client's following job id, at most max at once a client.
func (f *Followers) open(client, id string, max int) (<-chan []byte, func(), bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.clients[client] >= max {
		return nil, nil, false
	}
	f.clients[client]++
	c := make(chan []byte, 1)
	if f.by[id] == nil {
		f.by[id] = map[chan []byte]struct{}{}
	}
	f.by[id][c] = struct{}{}
	return c, sync.OnceFunc(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.by[id], c)
		if len(f.by[id]) == 0 {
			delete(f.by, id)
		}
		if f.clients[client]--; f.clients[client] <= 0 {
			delete(f.clients, client)
		}
	}), true
}

// Stream is an open stream of a job's events, admitted but not yet sent: Follow sends it.
type Stream struct {
	s        *Service
	job      Job
	progress <-chan []byte
	close    func()
}

// OpenStream admits a stream of client's job id: the usual 404 or 410 for an id it cannot read, and
// 429 when the client has as many streams open on this process as it may. Follow sends it.
func (s *Service) OpenStream(ctx context.Context, client, id string) (*Stream, error) {
	progress, closeStream, ok := s.followers.open(client, id, s.limits.maxStreams())
	if !ok {
		return nil, &problem.Error{Kind: problem.KindRateLimited, RetryAfter: problem.MaxRetryAfter,
			Detail: fmt.Sprintf("This client has %d event streams open, as many as it may; close one, or poll.", s.limits.maxStreams())}
	}
	j, err := s.Get(ctx, client, id)
	if err != nil {
		closeStream()
		return nil, err
	}
	return &Stream{s: s, job: j, progress: progress, close: closeStream}, nil
}

// Heartbeat is how often a stream with nothing to say should send a comment.
func (s *Service) Heartbeat() time.Duration { return s.heartbeat }

// Follow sends the stream's events to emit until the job's terminal event (and returns nil), emit
// fails, or ctx is done: the status at once (unless it is the one lastEventID names), then every
// change, at most every EventGap, then the terminal event. It closes the stream.
func (st *Stream) Follow(ctx context.Context, lastEventID string, emit func(Event) error) error {
	defer st.close()
	s, j := st.s, st.job
	woken, stopWatch := s.waiters.Watch(j.ID)
	defer stopWatch()
	// Read again now that the stream listens, so that nothing can fall between the first read and here.
	j, err := s.getWithEnd(ctx, j.Client, j.ID)
	if err != nil {
		return err
	}
	sent := lastEventID
	var lastSent time.Time
	gap := time.NewTimer(0)
	<-gap.C
	pending := false // a change waits for the gap to pass
	send := func() error {
		ev := eventOf(j)
		if ev.ID == sent {
			return nil
		}
		if !ev.Job.Terminal() {
			if wait := EventGap - time.Since(lastSent); wait > 0 {
				if !pending {
					pending = true
					gap.Reset(wait)
				}
				return nil
			}
		}
		if err := emit(ev); err != nil {
			return err
		}
		sent, lastSent = ev.ID, time.Now()
		return nil
	}
	for {
		if err := send(); err != nil || j.Terminal() {
			return err
		}
		fallback := time.NewTimer(s.fallback/2 + rand.N(s.fallback))
		select {
		case p := <-st.progress:
			if p == nil {
				j, err = s.Get(ctx, j.Client, j.ID)
			} else {
				j = withProgress(j, p)
			}
		case <-woken:
			j, err = s.getWithEnd(ctx, j.Client, j.ID)
		case <-fallback.C:
			j, err = s.Get(ctx, j.Client, j.ID)
		case <-gap.C:
			pending = false
		case <-s.waiters.Draining():
			// The server shuts down: the client reconnects (to another process) with Last-Event-ID.
			fallback.Stop()
			return nil
		case <-ctx.Done():
			fallback.Stop()
			return ctx.Err()
		}
		fallback.Stop()
		if err != nil {
			return err
		}
	}
}

// withProgress is job j as progress p, just written by its worker, shows it: running, unless j has
// ended meanwhile or p is older than what j shows.
func withProgress(j Job, b []byte) Job {
	var p Progress
	if json.Unmarshal(b, &p) != nil || j.Terminal() || p.Outcome != "" || p.Attempt < j.Progress.Attempt {
		return j
	}
	if p.Attempt == j.Progress.Attempt && p.Share < j.Progress.Share {
		return j
	}
	j.State, j.Progress = Running, p
	return j
}
