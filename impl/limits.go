package impl

import (
	"context"
	"errors"
	"math"

	"github.com/hibiken/asynq"

	"github.com/reportd/reportd/tasks"
)

// admit checks a new submission against the client's limits: its submit rate, then its number of
// unfinished jobs.
func (s *Server) admit(ctx context.Context, client string) error {
	l := s.limits
	if l.SubmitsPerSecond > 0 {
		ok, wait, err := s.store.AllowSubmit(ctx, client, l.SubmitsPerSecond, max(l.SubmitBurst, 1))
		if err != nil {
			return unavailable(err)
		}
		if !ok {
			return &Error{Kind: KindRateLimited, RetryAfter: int(math.Ceil(wait.Seconds())),
				Detail: "this client submits faster than its limit; retry after Retry-After seconds"}
		}
	}
	if l.MaxOpenJobs > 0 {
		n, err := s.openJobs(ctx, client)
		if err != nil {
			return err
		}
		if n >= l.MaxOpenJobs {
			return &Error{Kind: KindRateLimited, RetryAfter: s.pace.pendingWait(s.now(), s.tasks.GetQueueInfo, tasks.Queue),
				Detail: "this client has as many unfinished jobs as it may; retry when some have finished"}
		}
	}
	return nil
}

// openJobs counts client's unfinished jobs. The recorded set can only overcount (a worker that died
// before closing a job), so when it reaches the cap each member is checked and the finished or
// vanished ones are dropped: the check costs at most the cap's worth of reads, and only at the cap.
func (s *Server) openJobs(ctx context.Context, client string) (int, error) {
	ids, err := s.store.OpenJobs(ctx, client)
	if err != nil {
		return 0, unavailable(err)
	}
	if len(ids) < s.limits.MaxOpenJobs {
		return len(ids), nil
	}
	open := 0
	for _, id := range ids {
		info, err := s.tasks.GetTaskInfo(tasks.Queue, id)
		switch {
		case errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound):
		case err != nil:
			return 0, unavailable(err)
		case !viewOf(info, s.policy.Retention).terminal():
			open++
			continue
		}
		if err := s.store.JobClosed(ctx, client, id); err != nil {
			return 0, unavailable(err)
		}
	}
	return open, nil
}
