package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/reportd/reportd/internal/problem"
	"github.com/reportd/reportd/internal/store"
)

// Get reads client's job id: 404 if it was never issued (or is another client's), 410 if it expired
// or was deleted. It is one asynq task read on the common path.
func (s *Service) Get(ctx context.Context, client, id string) (Job, error) {
	queue := store.QueueOf(id)
	info, err := s.inspector.GetTaskInfo(queue, id)
	if errors.Is(err, asynq.ErrQueueNotFound) {
		// reportd's queues always exist. asynq's set of them lacks one only when Redis lost its data (a
		// restart without persistence, a FLUSHALL), and asynq's client adds a queue to it only at its
		// first enqueue in a process: nothing else would add it back, every job of the queue would read
		// as missing, and the asynq web UI would not list it. Add it again, and look once more.
		if err := s.store.RegisterQueues(ctx, []string{queue}); err != nil {
			return Job{}, problem.Unavailable(err)
		}
		info, err = s.inspector.GetTaskInfo(queue, id)
	}
	if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
		return s.missing(ctx, client, id)
	}
	if err != nil {
		return Job{}, problem.Unavailable(fmt.Errorf("read job %s: %w", id, err))
	}
	j := fromTask(info, s.policy.Retention)
	if j.Client != client {
		// Another client's job: its existence is not revealed.
		return Job{}, problem.Errorf(problem.KindNotFound, "Job %s was not found.", id)
	}
	now := s.now()
	if j.expired(now) {
		// asynq keeps failed (archived) tasks for months: past the tombstone period such an id answers
		// 404 like any other whose tombstone ran out.
		if !now.Before(j.ExpiresAt.Add(s.policy.Tombstone)) {
			return Job{}, problem.Errorf(problem.KindNotFound, "Job %s was not found.", id)
		}
		return Job{}, problem.Errorf(problem.KindGone, "Job %s has expired; finished jobs are kept for %s.", id, spoken(s.policy.Retention))
	}
	if j.State == Failed && j.Progress.Outcome == "" {
		// An attempt that could not record how it ended (asynq's own cancel reached it first, or
		// Redis failed): the cancel marker says whether it was canceled.
		canceled, err := s.store.CancelRequested(ctx, id)
		if err != nil {
			return Job{}, problem.Unavailable(err)
		}
		if canceled {
			j.State = Canceled
		}
	}
	if j.State == Done && j.Progress.Attempt > 0 {
		s.estimate.observe(j.ID, j.FinishedAt.Sub(j.Progress.StartedAt))
	}
	return j, nil
}

// missing answers for an id asynq has no task for: a job canceled before it ran, an expired or deleted
// one (its tombstone remains), or one never issued.
func (s *Service) missing(ctx context.Context, client, id string) (Job, error) {
	c, ok, err := s.store.CanceledJob(ctx, id)
	if err != nil {
		return Job{}, problem.Unavailable(err)
	}
	if ok && ownerOf(c.Client) == client {
		if j := fromCanceled(id, c, s.policy.Retention); !j.expired(s.now()) {
			return j, nil
		}
		// Its record outlives its retention by the moment it took to write: the tombstone answers.
	}
	tomb, issued, err := s.store.Tombstone(ctx, id)
	switch {
	case err != nil:
		return Job{}, problem.Unavailable(err)
	case issued && ownerOf(tomb.Owner) == client:
		return Job{}, problem.Errorf(problem.KindGone, "Job %s has expired or was deleted; finished jobs are kept for %s.", id, spoken(s.policy.Retention))
	default:
		return Job{}, problem.Errorf(problem.KindNotFound, "Job %s was not found.", id)
	}
}

// Status reads client's job id, as Get does, holding the answer up to *wait (when wait is not nil)
// until the job is terminal. An unfinished job comes with its RetryAfter; a finished one with a callback, with
// its webhook's state.
func (s *Service) Status(ctx context.Context, client, id string, wait *time.Duration) (Job, error) {
	j, err := s.Get(ctx, client, id)
	if err != nil {
		return Job{}, err
	}
	if wait != nil && !j.Terminal() {
		if j, err = s.waitFor(ctx, client, id, *wait); err != nil {
			return Job{}, err
		}
		j.Waited = true
	}
	if j.State == Done {
		return j, nil
	}
	if j, err = s.withDelivery(ctx, j); err != nil {
		return Job{}, err
	}
	if !j.Terminal() {
		j.RetryAfter = s.retryAfter(j)
	}
	return j, nil
}

// Report returns the stored report of done job j, or 410 if its report is gone.
func (s *Service) Report(ctx context.Context, j Job) ([]byte, error) {
	rep, err := s.store.Report(ctx, j.ID)
	if errors.Is(err, store.ErrNoReport) {
		return nil, problem.Errorf(problem.KindGone, "Job %s has expired.", j.ID)
	}
	if err != nil {
		return nil, problem.Unavailable(err)
	}
	return rep.Body, nil
}

// Result reads client's job id for a result read, answering a done job's from its stored report alone:
// one round trip, with no asynq read. The report names its owner and until when it is readable, the
// instant a status read derives from the task. Any other job is read as Get reads it, with no report
// (nil): a done one's is read by Report; any other has none. Errors are Get's.
func (s *Service) Result(ctx context.Context, client, id string) (Job, []byte, error) {
	rep, err := s.store.Report(ctx, id)
	switch {
	case errors.Is(err, store.ErrNoReport):
	case err != nil:
		return Job{}, nil, problem.Unavailable(err)
	case !rep.ReadableUntil.IsZero() && ownerOf(rep.Owner) == client && s.now().Before(rep.ReadableUntil):
		return Job{ID: id, State: Done, Client: client, ExpiresAt: rep.ReadableUntil}, rep.Body, nil
	}
	j, err := s.Get(ctx, client, id)
	if err != nil {
		return Job{}, nil, err
	}
	if j.State == Done && rep.Body != nil && rep.ReadableUntil.IsZero() {
		return j, rep.Body, nil // stored before reports named their owner: asynq's task did
	}
	return j, nil, nil
}

// Webhook reads client's job id with the state of its webhook: 404 if it has none.
func (s *Service) Webhook(ctx context.Context, client, id string) (Job, error) {
	j, err := s.Get(ctx, client, id)
	if err != nil {
		return Job{}, err
	}
	if j.CallbackURL == "" || s.webhooks == nil {
		return Job{}, problem.Errorf(problem.KindNotFound, "Job %s was submitted without a callback_url, so it has no webhook.", j.ID)
	}
	return s.withDelivery(ctx, j)
}

// withDelivery reads the state of a finished job's webhook into j. Only jobs with a callback pay the
// extra lookup, and only once they are finished (before that nothing was sent).
func (s *Service) withDelivery(ctx context.Context, j Job) (Job, error) {
	if j.CallbackURL == "" || s.webhooks == nil {
		return j, nil
	}
	j.Delivery = &store.Delivery{}
	if !j.Terminal() {
		return j, nil
	}
	d, ok, err := s.store.WebhookDelivery(ctx, j.ID)
	if err != nil {
		return j, problem.Unavailable(err)
	}
	if ok {
		j.Delivery = &d
	}
	return j, nil
}

// retryAfter is the Retry-After of a job that is not finished: for a running job, the time its progress
// says it still needs; for a pending one, the time the queue ahead of it will take.
func (s *Service) retryAfter(j Job) int {
	if j.State == Running {
		return j.runningWait(s.now())
	}
	return s.estimate.pendingWait()
}
