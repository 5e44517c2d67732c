package jobs

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/reportd/reportd/internal/problem"
)

// waitFallback is how often a waiting request re-reads its job without being woken, so that a lost
// event cannot strand it; with jitter, so that waiters spread out. A thousand waiters cost Redis
// about a hundred reads a second this way, not a thousand a tick.
const waitFallback = 10 * time.Second

// finishRereads are the re-reads after a job's finish event: the worker announces a finish (in the
// same round trip that saves the report) just before asynq moves the task to its final state, so a
// read at once would still see it running; the first re-read waits a millisecond, which is about what
// asynq takes.
var finishRereads = []time.Duration{time.Millisecond, time.Millisecond, 3 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond,
	20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}

// waitFor reads client's job id until it is terminal or d has passed, and returns the last read. It is woken by
// the job's finish event; it reads Redis once at the start, after each event, and every waitFallback.
func (s *Service) waitFor(ctx context.Context, client, id string, d time.Duration) (Job, error) {
	woken, stop := s.waiters.Watch(id) // before the first read, so that no event can fall between
	defer stop()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	v, err := s.Get(ctx, client, id)
	for err == nil && !v.Terminal() {
		fallback := time.NewTimer(waitFallback/2 + rand.N(waitFallback))
		select {
		case <-woken:
			v, err = s.readUntilTerminal(ctx, client, id)
		case <-fallback.C:
			v, err = s.Get(ctx, client, id)
		case <-deadline.C:
			fallback.Stop()
			return s.Get(ctx, client, id)
		case <-s.waiters.Draining():
			fallback.Stop()
			return s.Get(ctx, client, id)
		case <-ctx.Done():
			fallback.Stop()
			return v, ctx.Err()
		}
		fallback.Stop()
	}
	return v, err
}

// readUntilTerminal re-reads a job that announced its finish until asynq shows it terminal, for a
// moment.
func (s *Service) readUntilTerminal(ctx context.Context, client, id string) (Job, error) {
	var v Job
	var err error
	for _, d := range finishRereads {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return v, ctx.Err()
		}
		v, err = s.Get(ctx, client, id)
		if err != nil || v.Terminal() {
			return v, err
		}
	}
	return v, err
}

// isGoneOrUnknown reports whether err says the job does not exist (any more).
func isGoneOrUnknown(err error) bool {
	var e *problem.Error
	return errors.As(err, &e) && (e.Kind == problem.KindGone || e.Kind == problem.KindNotFound)
}
