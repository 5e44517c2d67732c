package impl

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// waitFallback is how often a waiting request re-reads its job without being woken, so that a lost
// event cannot strand it; with jitter, so that waiters spread out. A thousand waiters cost Redis
// about a hundred reads a second this way, not a thousand a tick.
const waitFallback = 10 * time.Second

// settleDelays are the re-reads after a job's finish event: the worker announces a finish just before
// asynq moves the task to its final state, so the first read may still see it running.
var settleDelays = []time.Duration{0, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond,
	20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}

// waitFor reads job id until it is terminal or d has passed, and returns the last view. It is woken by
// the job's finish event; it reads Redis once at the start, after each event, and every waitFallback.
func (s *Server) waitFor(ctx context.Context, id string, d time.Duration) (jobView, error) {
	woken, stop := s.waiters.Watch(id) // before the first read, so that no event can fall between
	defer stop()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	v, err := s.job(ctx, id)
	for err == nil && !v.terminal() {
		fallback := time.NewTimer(waitFallback/2 + rand.N(waitFallback))
		select {
		case <-woken:
			v, err = s.settle(ctx, id)
		case <-fallback.C:
			v, err = s.job(ctx, id)
		case <-deadline.C:
			fallback.Stop()
			return s.job(ctx, id)
		case <-s.waiters.Draining():
			fallback.Stop()
			return s.job(ctx, id)
		case <-ctx.Done():
			fallback.Stop()
			return v, ctx.Err()
		}
		fallback.Stop()
	}
	return v, err
}

// settle re-reads a job that announced its finish until asynq shows it terminal, for a moment.
func (s *Server) settle(ctx context.Context, id string) (jobView, error) {
	var v jobView
	var err error
	for _, d := range settleDelays {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return v, ctx.Err()
		}
		v, err = s.job(ctx, id)
		if err != nil || v.terminal() {
			return v, err
		}
	}
	return v, err
}

// isGoneOrUnknown reports whether err says the job does not exist (any more).
func isGoneOrUnknown(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.Kind == KindGone || e.Kind == KindNotFound)
}
