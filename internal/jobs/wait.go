package jobs

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/reportd/reportd/internal/problem"
)

// DefaultFallback is how often a waiting request or an event stream re-reads its job without being
// woken, so that a lost event cannot strand it; with jitter (from half of it to one and a half), so
// that waiters spread out. A thousand waiters cost Redis about a hundred reads a second this way, not a
// thousand a tick.
const DefaultFallback = 10 * time.Second

// waitFor reads client's job id until it is terminal or d has passed, and returns the last read. It is
// woken by the job's finish event; it reads the job at the start, after each event, and every
// Deps.Fallback, and at the start and after an event its end record too while asynq still shows the job
// unfinished (getWithEnd): an event published just before Watch, or just now, has left one.
func (s *Service) waitFor(ctx context.Context, client, id string, d time.Duration) (Job, error) {
	woken, stop := s.waiters.Watch(id) // before the first read, so that no event can fall between
	defer stop()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	v, err := s.getWithEnd(ctx, client, id)
	for err == nil && !v.Terminal() {
		fallback := time.NewTimer(s.fallback/2 + rand.N(s.fallback))
		select {
		case <-woken:
			v, err = s.getWithEnd(ctx, client, id)
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

// getWithEnd reads client's job id, as Get does, and an unfinished one's end record (withEnd): for whoever
// starts to wait, or to follow the job, after registering for its finish event.
func (s *Service) getWithEnd(ctx context.Context, client, id string) (Job, error) {
	j, err := s.Get(ctx, client, id)
	if err != nil || j.Terminal() {
		return j, err
	}
	return s.withEnd(ctx, j)
}

// isGoneOrUnknown reports whether err says the job does not exist (any more).
func isGoneOrUnknown(err error) bool {
	var e *problem.Error
	return errors.As(err, &e) && (e.Kind == problem.KindGone || e.Kind == problem.KindNotFound)
}
