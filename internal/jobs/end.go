package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/reportd/reportd/internal/problem"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/telemetry"
	"github.com/reportd/reportd/tasks"
)

// The end of a job, in one place. An attempt ends (EndAttempt, called by the worker's processor with
// what the attempt came to); the lifecycle decides its Outcome and records it with the attempt's
// Progress as the task's result, and, for the job's last attempt, the job's end: a done job's report
// (unless a cancel came first), the tombstone with the job's end record, the finish event that wakes
// whoever waits for it, its client's count of unfinished jobs. A job canceled before it ran ends here
// too (endPending). Then its webhook, if it has one, is announced (announce). A woken wait or stream
// reads the end from the end record (withEnd), which is written before the event is published.

var _ tasks.Lifecycle = (*Service)(nil)
var _ tasks.Deliveries = (*Service)(nil)

// outcomeOf is the outcome of an attempt that ended with err (tasks.Attempt.Err).
func outcomeOf(err error) Outcome {
	switch {
	case err == nil:
		return OutcomeDone
	case errors.Is(err, tasks.ErrCanceled):
		return OutcomeCanceled
	case errors.Is(err, tasks.ErrTimedOut):
		return OutcomeTimedOut
	case errors.Is(err, tasks.ErrUnreadable):
		return OutcomeUnreadable
	}
	return OutcomeFailed
}

// progressOf is the progress attempt a shows.
func progressOf(a tasks.Attempt) Progress {
	p := Progress{DaysDone: a.DaysDone, DaysTotal: a.DaysTotal, StartedAt: a.StartedAt, Attempt: a.Number}
	if a.DaysTotal > 0 {
		p.Share = float64(a.DaysDone) / float64(a.DaysTotal)
	}
	return p
}

// StartAttempt records that attempt a is under way (its number and start, no days done yet), so that
// its job reads running from now, and reports whether the job was asked to stop: one round trip, the
// look at the cancel marker an attempt makes before it starts (store.StartAttempt).
func (s *Service) StartAttempt(ctx context.Context, a tasks.Attempt) (bool, error) {
	b, err := json.Marshal(progressOf(a))
	if err != nil {
		return false, fmt.Errorf("encode progress: %w", err)
	}
	return s.store.StartAttempt(ctx, a.ID, b)
}

// WriteProgress records running attempt a's progress as its task's result, and passes it on to the
// API processes' event streams, in one round trip.
func (s *Service) WriteProgress(ctx context.Context, a tasks.Attempt) error {
	b, err := json.Marshal(progressOf(a))
	if err != nil {
		return fmt.Errorf("encode progress: %w", err)
	}
	return s.store.WriteProgress(ctx, a.ID, b)
}

// EndAttempt records how attempt a ended, in one round trip (store.RecordEnd): the attempt's progress
// and outcome as its task's result and, when it was the job's last, the job's end (see above); then
// its webhook. It reports whether the job ended canceled, as a done job does whose cancel came first:
// its report is not kept.
func (s *Service) EndAttempt(ctx context.Context, a tasks.Attempt) (bool, error) {
	outcome := outcomeOf(a.Err)
	p := progressOf(a)
	e := store.EndRecord{ID: a.ID, Client: a.Client, Final: a.Final}
	if outcome == OutcomeDone {
		e.Report = a.Report
	}
	if a.Final {
		e.FinishedAt = s.now()
		// A done or canceled attempt's task completes (asynq's janitor deletes it after the retention);
		// any other last attempt's is archived.
		e.ExpiresAt = s.expiresAt(e.FinishedAt, outcome == OutcomeDone || outcome == OutcomeCanceled)
		p.FinishedAt = e.FinishedAt
	}
	recorded, err := s.recordEnd(ctx, e, outcome, p)
	if err != nil {
		return false, err
	}
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("reportd.job.outcome", string(recorded)))
	if a.Final {
		s.announce(ctx, a.ID, a.CallbackURL, recorded.State())
	}
	return recorded == OutcomeCanceled, nil
}

// recordEnd records end e of an attempt with outcome and progress p, and returns the outcome recorded.
// A done attempt whose job was canceled first is recorded canceled: its report is not kept, and its
// task's result is written again to say so before asynq completes the task, or the job would read done
// with no report.
func (s *Service) recordEnd(ctx context.Context, e store.EndRecord, outcome Outcome, p Progress) (Outcome, error) {
	if outcome != OutcomeDone {
		p.Outcome = outcome // a completed task says done by itself
	}
	var err error
	if e.Progress, err = json.Marshal(p); err != nil {
		return "", fmt.Errorf("encode progress: %w", err)
	}
	e.Outcome = string(outcome)
	recorded, err := s.store.RecordEnd(ctx, e)
	if err != nil {
		return "", err
	}
	if Outcome(recorded) == outcome {
		return outcome, nil
	}
	p.Outcome = Outcome(recorded)
	b, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("encode progress: %w", err)
	}
	if _, err := s.store.RecordEnd(ctx, store.EndRecord{ID: e.ID, Client: e.Client, Outcome: recorded, Progress: b}); err != nil {
		return "", err
	}
	return Outcome(recorded), nil
}

// canceledRecord is the record pending job j leaves when it is canceled at now.
func canceledRecord(j Job, now time.Time) store.Canceled {
	return store.Canceled{CreatedAt: j.CreatedAt, Range: j.Range.String(), CanceledAt: now.UTC(),
		StartedAt: j.Progress.StartedAt, Attempt: j.Progress.Attempt, Progress: j.Progress.Share, CallbackURL: j.CallbackURL, Client: j.Client}
}

// endPending records the end of pending job j, canceled (record c) as its task was taken out of the
// queue before it ran, and announces it.
func (s *Service) endPending(ctx context.Context, j Job, c store.Canceled) (Job, error) {
	p := j.Progress
	p.FinishedAt = c.CanceledAt
	e := store.EndRecord{ID: j.ID, Client: j.Client, Final: true, Canceled: &c, FinishedAt: c.CanceledAt, ExpiresAt: s.expiresAt(c.CanceledAt, false)}
	if _, err := s.recordEnd(ctx, e, OutcomeCanceled, p); err != nil {
		return Job{}, problem.Unavailable(err)
	}
	s.announce(ctx, j.ID, j.CallbackURL, Canceled)
	s.log.InfoContext(ctx, "job canceled before it ran", "job", j.ID)
	return fromCanceled(j.ID, c, s.policy.Retention), nil
}

// expiresAt is when a job that finished at finished stops being readable: the retention later. For a
// job whose asynq task completes (done, or canceled while it ran), the finish is cut to the second
// first (store.ReadableUntil): asynq records the completion in whole seconds, a moment after this
// finish, and its janitor deletes the task the retention after that, so the job is never readable
// longer than its task is kept. A failed job's task is archived for months, and a job canceled before
// it ran has none: theirs is exact.
func (s *Service) expiresAt(finished time.Time, completes bool) time.Time {
	if completes {
		return store.ReadableUntil(finished, s.policy.Retention)
	}
	return finished.Add(s.policy.Retention)
}

// announce schedules the webhook of job id, which ended in state, if it has one: the one step of a
// job's end that follows the store's record of it, whoever ended it. A second announcement of the same
// job within the retention is a no-op: the delivery's task id is the job's.
func (s *Service) announce(ctx context.Context, id, callbackURL string, state State) {
	if callbackURL == "" || s.webhooks == nil {
		return
	}
	if err := s.scheduleWebhook(ctx, id, callbackURL, state); err != nil {
		s.log.ErrorContext(ctx, "webhook not scheduled", "job", id, "err", err)
	}
}

func (s *Service) scheduleWebhook(ctx context.Context, id, callbackURL string, state State) error {
	body, err := s.webhooks.Event(id, state, s.now())
	if err != nil {
		return fmt.Errorf("webhook event of job %s: %w", id, err)
	}
	headers := map[string]string{}
	telemetry.Inject(ctx, headers) // the delivery's span joins the trace of the job's end
	task, opts, err := tasks.NewWebhookTask(id, callbackURL, body, store.WebhookQueue, s.policy.Retention, headers)
	if err != nil {
		return err
	}
	if _, err := s.queue.EnqueueContext(ctx, task, opts...); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue webhook of job %s: %w", id, err)
	}
	return nil
}

// RecordDelivery records a delivery attempt of job id's webhook, for its status to show
// (tasks.Deliveries).
func (s *Service) RecordDelivery(ctx context.Context, id string, d tasks.Delivery) error {
	return s.store.RecordDelivery(ctx, id, store.Delivery{Attempts: d.Attempts, LastStatus: d.Status, LastError: d.Error, DeliveredAt: d.DeliveredAt})
}

// withEnd is job j, read as unfinished, as its end record shows it once it has one. The worker records
// a job's end (with the record) and publishes its finish event a moment before asynq moves its task to
// its final state, so whoever the event wakes, or whoever starts waiting just after it, reads the end
// here, by construction, rather than asynq's task until it catches up. The job's lifetime is derived
// from the recorded finish (expiresAt), as a later read of its task derives it.
func (s *Service) withEnd(ctx context.Context, j Job) (Job, error) {
	t, ok, err := s.store.Tombstone(ctx, j.ID)
	if err != nil {
		return j, problem.Unavailable(err)
	}
	if !ok || t.Outcome == "" {
		return j, nil // not ended; or deleted, which a read answers
	}
	p, err := ParseProgress(t.Progress)
	if err != nil {
		return j, nil
	}
	o := Outcome(t.Outcome)
	p.Outcome = ""
	if o != OutcomeDone {
		p.Outcome = o
	}
	j.State, j.Progress, j.FinishedAt = o.State(), p, p.FinishedAt
	j.ExpiresAt = s.expiresAt(p.FinishedAt, j.State != Failed)
	return j, nil
}
