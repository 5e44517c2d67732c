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

// CancelConfirmWait is how long a cancel waits for a running job's worker to confirm it.
const CancelConfirmWait = time.Second

// Cancel cancels client's job id for good if it is pending or running, and keeps its record: it reads
// canceled until it expires or is deleted. It returns the job as the cancel leaves it: canceled, or
// still running when its worker has not confirmed the cancel within CancelConfirmWait (it stops on its
// own soon after). Canceling a canceled job is harmless and answers the same; a job that finished as
// done or failed is left as it is (problem.KindFinished).
func (s *Service) Cancel(ctx context.Context, client, id string) (Job, error) {
	j, err := s.Get(ctx, client, id)
	if err != nil {
		return Job{}, err
	}
	if j.Terminal() {
		return j, cannotCancel(j)
	}
	// The marker first: whatever happens next (the job starts, finishes, or the cancel message is
	// lost), the job checks it and gives up without a report. A pending job's canceled record comes
	// with it, before its task goes, so that no read in between finds the job gone.
	if j.State == Pending {
		c := canceledRecord(j, s.now())
		if err := s.store.RequestCancelPending(ctx, id, s.policy.lifetime(), c); err != nil {
			return Job{}, problem.Unavailable(err)
		}
		if err := s.inspector.DeleteTask(store.QueueOf(id), id); err == nil {
			return s.endPending(ctx, j, c)
		}
		// It became active in the meantime (asynq refuses to delete an active task): stop it below,
		// without the record of a job that never ran.
		if err := s.store.ForgetCanceled(ctx, id); err != nil {
			return Job{}, problem.Unavailable(err)
		}
	} else if err := s.store.RequestCancel(ctx, id, s.policy.lifetime()); err != nil {
		return Job{}, problem.Unavailable(err)
	}
	if err := s.store.PublishCancel(ctx, id); err != nil {
		return Job{}, problem.Unavailable(err)
	}
	j, err = s.waitFor(ctx, client, id, CancelConfirmWait)
	switch {
	case err != nil:
		return Job{}, err
	case j.State == Canceled:
		s.log.InfoContext(ctx, "job canceled", "job", id)
	case j.Terminal():
		return j, cannotCancel(j) // it finished before the cancel reached it
	}
	return j, nil
}

// cannotCancel is the answer to a cancel of terminal job j: nil for a canceled job (canceling again
// changes nothing), and problem.KindFinished for one that ended otherwise.
func cannotCancel(j Job) error {
	if j.State == Canceled {
		return nil
	}
	return problem.Errorf(problem.KindFinished, "Job %s is already %s, so there is nothing to cancel; it is unchanged.", j.ID, j.State)
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
		return problem.Errorf(problem.KindNotFinished, "Job %s is %s, so it is not deleted; cancel it first.", j.ID, j.State)
	}
	return s.delete(ctx, j)
}

// delete deletes finished job j: its task and everything kept of it but the tombstone, so that its id
// answers 410 from now on, and 404 once the tombstone period after its retention has passed, as it
// would have had it not been deleted.
func (s *Service) delete(ctx context.Context, j Job) error {
	if j.inQueue {
		if err := s.inspector.DeleteTask(store.QueueOf(j.ID), j.ID); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
			return problem.Unavailable(fmt.Errorf("delete job %s: %w", j.ID, err))
		}
	}
	// The id answers 410 until its tombstone would have run out had the job not been deleted.
	keep := s.policy.Tombstone
	if !j.ExpiresAt.IsZero() {
		keep = j.ExpiresAt.Add(s.policy.Tombstone).Sub(s.now())
	}
	if err := s.store.DeleteJob(ctx, j.ID, j.Client, keep); err != nil {
		return problem.Unavailable(err)
	}
	if err := s.store.Unindex(ctx, j.Client, j.ID); err != nil {
		return problem.Unavailable(err)
	}
	s.log.InfoContext(ctx, "job deleted", "job", j.ID, "status", j.State)
	return nil
}

// CancelRequested reports whether job id was asked to stop.
func (s *Service) CancelRequested(ctx context.Context, id string) (bool, error) {
	return s.store.CancelRequested(ctx, id)
}
