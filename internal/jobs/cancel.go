package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/reportd/reportd/internal/problem"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/webhook"
	"github.com/reportd/reportd/tasks"
)

// CancelConfirmWait is how long a cancel waits for a running job's worker to confirm it.
const CancelConfirmWait = time.Second

// Ended is what Cancel did to a job.
type Ended int

// What Cancel can do.
const (
	// EndedCanceled: the job is canceled; the returned Job shows it.
	EndedCanceled Ended = iota
	// EndedCancelRequested: the job runs, and its worker has not confirmed the cancel yet.
	EndedCancelRequested
	// EndedDeleted: the job had finished (or finished as the cancel arrived) and was deleted.
	EndedDeleted
)

// Cancel ends client's job id: a pending or running job is canceled for good, and a finished one is
// deleted, as a DELETE of the job asks.
func (s *Service) Cancel(ctx context.Context, client, id string) (Job, Ended, error) {
	j, err := s.Get(ctx, client, id)
	if err != nil {
		return Job{}, 0, err
	}
	if j.Terminal() {
		return Job{}, EndedDeleted, s.delete(ctx, j)
	}
	// The marker first: whatever happens next (the job starts, finishes, or the cancel message is
	// lost), the job checks it and gives up without a report.
	if err := s.store.RequestCancel(ctx, id, s.policy.lifetime()); err != nil {
		return Job{}, 0, problem.Unavailable(err)
	}
	if j.State == Pending {
		if err := s.inspector.DeleteTask(store.ReportQueue, id); err == nil {
			j, err := s.cancelPending(ctx, j)
			return j, EndedCanceled, err
		}
		// It became active in the meantime (asynq refuses to delete an active task): stop it below.
	}
	if err := s.store.PublishCancel(ctx, id); err != nil {
		return Job{}, 0, problem.Unavailable(err)
	}
	j, err = s.waitFor(ctx, client, id, CancelConfirmWait)
	switch {
	case err != nil:
		return Job{}, 0, err
	case j.State == Done:
		return Job{}, EndedDeleted, s.delete(ctx, j) // it finished before the cancel reached it: the job is gone all the same
	case j.State == Canceled:
		s.log.InfoContext(ctx, "job canceled", "job", id)
		return j, EndedCanceled, nil
	}
	return j, EndedCancelRequested, nil
}

// cancelPending records the cancel of job j, whose task was just taken out of the queue before it ran,
// and finishes it.
func (s *Service) cancelPending(ctx context.Context, j Job) (Job, error) {
	c := store.Canceled{CreatedAt: j.CreatedAt, Range: j.Range.String(), CanceledAt: s.now().UTC(),
		StartedAt: j.Progress.StartedAt, Attempt: j.Progress.Attempt, Progress: j.Progress.Share, CallbackURL: j.CallbackURL, Client: j.Client}
	if err := s.store.SaveCanceled(ctx, j.ID, c); err != nil {
		return Job{}, problem.Unavailable(err)
	}
	s.finish(ctx, tasks.Finished{ID: j.ID, Client: j.Client, CallbackURL: j.CallbackURL, Outcome: tasks.OutcomeCanceled})
	s.log.InfoContext(ctx, "job canceled before it ran", "job", j.ID)
	return fromCanceled(j.ID, c, s.policy.Retention), nil
}

// delete deletes finished job j: its task and everything kept of it but the tombstone, so that its id
// answers 410 from now on.
func (s *Service) delete(ctx context.Context, j Job) error {
	if j.inQueue {
		if err := s.inspector.DeleteTask(store.ReportQueue, j.ID); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
			return problem.Unavailable(fmt.Errorf("delete job %s: %w", j.ID, err))
		}
	}
	if err := s.store.DeleteJob(ctx, j.ID); err != nil {
		return problem.Unavailable(err)
	}
	if err := s.store.Unindex(ctx, j.Client, j.ID); err != nil {
		return problem.Unavailable(err)
	}
	s.log.InfoContext(ctx, "job deleted", "job", j.ID, "status", j.State)
	return nil
}

// Finish records that a job reached a terminal status; the worker calls it after a job's last attempt.
func (s *Service) Finish(ctx context.Context, f tasks.Finished) { s.finish(ctx, f) }

// finish is the one place a job's end is announced, whoever ends it: whoever waits for the job wakes,
// it leaves its client's unfinished jobs, and its webhook, if it has one, is scheduled. Each step is
// best effort: waiters also re-read now and then, and the API recounts a client's jobs at its cap.
func (s *Service) finish(ctx context.Context, f tasks.Finished) {
	if err := s.store.PublishFinished(ctx, f.ID); err != nil {
		s.log.WarnContext(ctx, "finish not announced; waiters will notice on their next look", "job", f.ID, "err", err)
	}
	if err := s.store.MarkFinished(ctx, f.Client, f.ID); err != nil {
		s.log.WarnContext(ctx, "job not closed in its client's count; the API recounts when the cap is reached", "job", f.ID, "err", err)
	}
	if f.CallbackURL == "" || s.webhooks == nil {
		return
	}
	if err := tasks.ScheduleWebhook(ctx, s.queue, f.CallbackURL, webhook.NewEvent(f.ID, f.Outcome.Status(), s.now()), s.policy.Retention); err != nil {
		s.log.ErrorContext(ctx, "webhook not scheduled", "job", f.ID, "err", err)
	}
}

// SaveReport stores job id's report, unless a cancel came first (an error wrapping store.ErrCanceled).
func (s *Service) SaveReport(ctx context.Context, id string, body []byte) error {
	return s.store.SaveReport(ctx, id, body)
}

// CancelRequested reports whether job id was asked to stop.
func (s *Service) CancelRequested(ctx context.Context, id string) (bool, error) {
	return s.store.CancelRequested(ctx, id)
}
