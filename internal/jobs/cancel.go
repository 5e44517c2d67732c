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
)

// Cancel cancels client's job id for good if it is pending or running, and keeps its record: it reads
// canceled until it expires or is deleted. Canceling a canceled job is harmless and answers the same;
// a job that finished as done or failed is left as it is (problem.KindFinished).
func (s *Service) Cancel(ctx context.Context, client, id string) (Job, Ended, error) {
	j, err := s.Get(ctx, client, id)
	if err != nil {
		return Job{}, 0, err
	}
	if j.Terminal() {
		return j, EndedCanceled, cannotCancel(j)
	}
	// The marker first: whatever happens next (the job starts, finishes, or the cancel message is
	// lost), the job checks it and gives up without a report.
	if err := s.store.RequestCancel(ctx, id, s.policy.lifetime()); err != nil {
		return Job{}, 0, problem.Unavailable(err)
	}
	if j.State == Pending {
		if err := s.inspector.DeleteTask(store.QueueOf(id), id); err == nil {
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
	case j.State == Canceled:
		s.log.InfoContext(ctx, "job canceled", "job", id)
		return j, EndedCanceled, nil
	case j.Terminal():
		return j, EndedCanceled, cannotCancel(j) // it finished before the cancel reached it
	}
	return j, EndedCancelRequested, nil
}

// cannotCancel is the answer to a cancel of terminal job j: nil for a canceled job (canceling again
// changes nothing), and problem.KindFinished for one that ended otherwise.
func cannotCancel(j Job) error {
	if j.State == Canceled {
		return nil
	}
	return problem.Errorf(problem.KindFinished, "The job is already %s, so there is nothing to cancel; it is unchanged.", j.State)
}

// Delete deletes client's finished job id (done, failed or canceled) and its report now; its id answers
// 410 from then on. A pending or running job is not deleted (problem.KindNotFinished): it must be
// canceled first.
func (s *Service) Delete(ctx context.Context, client, id string) error {
	j, err := s.Get(ctx, client, id)
	if err != nil {
		return err
	}
	if !j.Terminal() {
		return problem.Errorf(problem.KindNotFinished, "The job is %s, so it is not deleted; cancel it first (POST %s/cancel).", j.State, "/v1/reports/"+id)
	}
	return s.delete(ctx, j)
}

// cancelPending records the end of job j, canceled as its task was taken out of the queue before it
// ran.
func (s *Service) cancelPending(ctx context.Context, j Job) (Job, error) {
	c := store.Canceled{CreatedAt: j.CreatedAt, Range: j.Range.String(), CanceledAt: s.now().UTC(),
		StartedAt: j.Progress.StartedAt, Attempt: j.Progress.Attempt, Progress: j.Progress.Share, CallbackURL: j.CallbackURL, Client: j.Client}
	if _, err := s.store.EndJob(ctx, store.End{ID: j.ID, Client: j.Client, Outcome: string(tasks.OutcomeCanceled), Final: true, Canceled: &c}); err != nil {
		return Job{}, problem.Unavailable(err)
	}
	s.ended(ctx, j.ID, j.CallbackURL, tasks.OutcomeCanceled)
	s.log.InfoContext(ctx, "job canceled before it ran", "job", j.ID)
	return fromCanceled(j.ID, c, s.policy.Retention), nil
}

// delete deletes finished job j: its task and everything kept of it but the tombstone, so that its id
// answers 410 from now on.
func (s *Service) delete(ctx context.Context, j Job) error {
	if j.inQueue {
		if err := s.inspector.DeleteTask(store.QueueOf(j.ID), j.ID); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
			return problem.Unavailable(fmt.Errorf("delete job %s: %w", j.ID, err))
		}
	}
	if err := s.store.DeleteJob(ctx, j.ID, j.Client); err != nil {
		return problem.Unavailable(err)
	}
	if err := s.store.Unindex(ctx, j.Client, j.ID); err != nil {
		return problem.Unavailable(err)
	}
	s.log.InfoContext(ctx, "job deleted", "job", j.ID, "status", j.State)
	return nil
}

// End records how an attempt of a job ended, in one round trip (store.EndJob): the attempt's progress
// and outcome as its task's result and, when it was the job's last, the job's end: a done job's report
// (unless a cancel came first), the tombstone, the finish event that wakes whoever waits for it, its
// client's count of unfinished jobs; then its webhook, if it has one. It returns the outcome recorded:
// OutcomeCanceled for a job done as its cancel arrived.
func (s *Service) End(ctx context.Context, e tasks.Ending) (tasks.Outcome, error) {
	if e.Final && e.FinishedAt.IsZero() {
		e.FinishedAt = s.now()
	}
	outcome, err := tasks.RecordEnd(ctx, s.store, e)
	if err != nil {
		return "", err
	}
	if e.Final {
		s.ended(ctx, e.ID, e.CallbackURL, outcome)
	}
	return outcome, nil
}

// ended schedules the webhook of a job that ended, if it has one: the one step of a job's end that
// follows the store's record of it, whoever ended it.
func (s *Service) ended(ctx context.Context, id, callbackURL string, o tasks.Outcome) {
	if callbackURL == "" || s.webhooks == nil {
		return
	}
	if err := tasks.ScheduleWebhook(ctx, s.queue, callbackURL, webhook.NewEvent(id, o.Status(), s.now()), s.policy.Retention); err != nil {
		s.log.ErrorContext(ctx, "webhook not scheduled", "job", id, "err", err)
	}
}

// CancelRequested reports whether job id was asked to stop.
func (s *Service) CancelRequested(ctx context.Context, id string) (bool, error) {
	return s.store.CancelRequested(ctx, id)
}
