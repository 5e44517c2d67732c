package jobs

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/reportd/reportd/internal/problem"
	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/webhook"
	"github.com/reportd/reportd/tasks"
)

// replayGrace is how long after an Idempotency-Key was first claimed a replay may still enqueue its job:
// the first request may have failed between claiming the key and enqueueing. Past it, a key whose job
// is gone names an expired or deleted job.
const replayGrace = 10 * time.Second

// Submission is a request for a report job.
type Submission struct {
	// Client submits the job and owns it.
	Client string
	// Range is the range as the client wrote it.
	Range string
	// CallbackURL, if set, receives a webhook when the job finishes.
	CallbackURL string
	// IdempotencyKey, if set, makes the submission idempotent: every submission with the same key and
	// Fingerprint gets the job the first one created. It is taken as the client sent it: 1 to 255
	// printable ASCII characters, plain or as a quoted string.
	IdempotencyKey string
	// Fingerprint identifies the request's content, so that a key replayed with another one is caught.
	Fingerprint string
	// Wait, if not nil, holds the answer until the job is done or the wait is over.
	Wait *time.Duration
}

// Submit validates a submission, records the job's tombstone and index entry, and enqueues the job;
// it returns only once asynq has the task in Redis. An Idempotency-Key replay answers with the job the
// key first created.
func (s *Service) Submit(ctx context.Context, sub Submission) (Job, error) {
	rng, err := report.ParseRangeAt(sub.Range, s.now())
	if err != nil {
		return Job{}, rangeProblem(err)
	}
	if err := s.checkCallback(ctx, sub.CallbackURL); err != nil {
		return Job{}, err
	}
	if sub.IdempotencyKey != "" {
		key, ok := parseIdempotencyKey(sub.IdempotencyKey)
		if !ok {
			return Job{}, problem.Errorf(problem.KindInvalid, "Header parameter \"Idempotency-Key\" must be 1 to 255 printable ASCII characters, plain or as a quoted string.")
		}
		sub.IdempotencyKey = key
	}
	id, createdAt := s.newID().String(), s.now()
	prior, rate, err := s.admit(ctx, sub, id, createdAt)
	if err != nil {
		return Job{}, err
	}
	if prior != nil {
		id, createdAt = prior.JobID, prior.CreatedAt
	}
	j, err := s.enqueue(ctx, sub, id, rng, createdAt, prior)
	if err != nil {
		return Job{}, err
	}
	j.Replayed, j.RateLimit = prior != nil, rate
	if sub.IdempotencyKey != "" && (prior == nil || !prior.Enqueued) {
		rec := store.Submission{Fingerprint: sub.Fingerprint, JobID: id, CreatedAt: createdAt}
		if err := s.store.MarkEnqueued(ctx, sub.Client, sub.IdempotencyKey, rec); err != nil {
			return Job{}, problem.Unavailable(err)
		}
	}
	if sub.Wait != nil && !j.Terminal() {
		if j, err = s.waitFor(ctx, sub.Client, id, *sub.Wait); err != nil {
			return Job{}, err
		}
		j.Waited = true
	}
	if j.State != Done {
		j.RetryAfter = s.retryAfter(j)
	}
	return j, nil
}

// checkCallback refuses a callback URL the service will not call, or any when webhooks are off.
func (s *Service) checkCallback(ctx context.Context, url string) error {
	if url == "" {
		return nil
	}
	if s.webhooks == nil {
		return problem.Errorf(problem.KindWebhooksOff, "This service has no webhook secret configured, so it cannot send callbacks; submit without callback_url and poll.")
	}
	if err := webhook.CheckCallbackURL(ctx, url, s.webhooks.Policy, s.webhooks.Resolver); err != nil {
		return &problem.Error{Kind: problem.KindCallbackRefused, Detail: "/callback_url is refused: " + err.Error(), Err: err}
	}
	return nil
}

// admit admits job id, created at, for its client, in one round trip (store.Admit): the submission's
// Idempotency-Key is claimed, its client's limits are checked, and the job is indexed and counted as
// unfinished. It returns the key's earlier record, and admits nothing, when the key was used before
// with the same content; and, with a rate limit, where the client stands against it. A refusal by a
// limit says which limit was met, and carries the rate limit's state too.
func (s *Service) admit(ctx context.Context, sub Submission, id string, createdAt time.Time) (*store.Submission, *problem.RateLimit, error) {
	a := store.Admission{Client: sub.Client, ID: id, At: createdAt, Keep: s.policy.idempotencyTTL(),
		PerSecond: s.limits.SubmitsPerSecond, Burst: s.limits.SubmitBurst, MaxOpen: s.limits.MaxOpenJobs,
		Key: sub.IdempotencyKey, KeyTTL: s.policy.idempotencyTTL(),
		Record: store.Submission{Fingerprint: sub.Fingerprint, JobID: id, CreatedAt: createdAt}}
	var rate *problem.RateLimit
	full := func() error {
		return &problem.Error{Kind: problem.KindRateLimited, RetryAfter: s.estimate.pendingWait(), RateLimit: rate,
			Detail: fmt.Sprintf("This client has as many unfinished jobs as it may have, %d; retry when some have finished.", s.limits.MaxOpenJobs)}
	}
	for checked := false; ; checked = true {
		v, err := s.store.Admit(ctx, a)
		if err == nil && v.Rate != nil {
			rate = s.rateLimit(*v.Rate)
		}
		switch {
		case err != nil:
			return nil, nil, problem.Unavailable(err)
		case v.Admitted:
			return nil, rate, nil
		case v.Held != nil && v.Held.Fingerprint != sub.Fingerprint:
			return nil, nil, problem.Errorf(problem.KindIdempotencyMismatch, "Idempotency-Key %q was first used with a different body, for job %s; send that body, or use a new key.", sub.IdempotencyKey, v.Held.JobID)
		case v.Held != nil:
			return v.Held, rate, nil
		case v.Open == nil:
			retryAfter := min(max(int(math.Ceil(v.RetryIn.Seconds())), problem.MinRetryAfter), problem.MaxRetryAfter)
			rate.Available, rate.Window = 0, time.Duration(retryAfter)*time.Second
			return nil, nil, &problem.Error{Kind: problem.KindRateLimited, RetryAfter: retryAfter, RateLimit: rate,
				Detail: "This client submits faster than its limit of " + rate.Described() + "; retry after Retry-After seconds."}
		}
		// At the cap: the recorded set can only overcount (a worker that died before closing a job),
		// so each member is checked once, and the finished or vanished ones are dropped.
		if checked {
			return nil, nil, full()
		}
		if open, err := s.recount(ctx, sub.Client, v.Open); err != nil || open >= s.limits.MaxOpenJobs {
			if err != nil {
				return nil, nil, err
			}
			return nil, nil, full()
		}
		a.PerSecond = 0 // the rate limit was passed already
	}
}

// rateLimit is the client's rate limit standing at st.
func (s *Service) rateLimit(st store.RateState) *problem.RateLimit {
	return &problem.RateLimit{PerSecond: s.limits.SubmitsPerSecond, Burst: max(s.limits.SubmitBurst, 1), Available: st.Available, Window: st.FullIn}
}

// recount counts which of client's recorded unfinished jobs ids are still unfinished, and drops the
// others from the record: it costs at most the cap's worth of reads, and only at the cap.
func (s *Service) recount(ctx context.Context, client string, ids []string) (int, error) {
	open := 0
	for _, id := range ids {
		info, err := s.inspector.GetTaskInfo(store.QueueOf(id), id)
		switch {
		case errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound):
		case err != nil:
			return 0, problem.Unavailable(err)
		case !fromTask(info, s.policy.Retention).Terminal():
			open++
			continue
		}
		if err := s.store.MarkFinished(ctx, client, id); err != nil {
			return 0, problem.Unavailable(err)
		}
	}
	return open, nil
}

// enqueue enqueues job id, or, for an idempotent replay (prior is the key's record), finds the job the
// first submission enqueued. Any number of submissions may enqueue one id at once: asynq's TaskID lets
// exactly one through.
func (s *Service) enqueue(ctx context.Context, sub Submission, id string, rng report.DateRange, createdAt time.Time, prior *store.Submission) (Job, error) {
	if prior != nil {
		j, err := s.Get(ctx, sub.Client, id)
		if err == nil || !isGoneOrUnknown(err) {
			return j, err
		}
		if prior.Enqueued || s.now().Sub(createdAt) > replayGrace {
			return Job{}, problem.Errorf(problem.KindGone, "Job %s, which this Idempotency-Key submitted, has expired or was deleted; use a new key.", id)
		}
		// The first submission claimed the key but has not enqueued yet, or failed to: enqueue it here.
	}
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("reportd.job.id", id))
	jobOpts := []tasks.ReportOption{tasks.WithClient(sub.Client), tasks.WithTrace(ctx)}
	if sub.CallbackURL != "" {
		jobOpts = append(jobOpts, tasks.WithCallback(sub.CallbackURL))
	}
	task, opts, err := tasks.NewReportTask(id, store.QueueOf(id), rng, createdAt, jobOpts...)
	if err != nil {
		return Job{}, err
	}
	opts = append(opts, asynq.MaxRetry(s.policy.MaxRetry), asynq.Timeout(s.policy.JobTimeout), asynq.Retention(s.policy.Retention))
	info, err := s.queue.EnqueueContext(ctx, task, opts...)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return s.Get(ctx, sub.Client, id) // another submission with the same key enqueued it first
	}
	if err != nil {
		return Job{}, problem.Unavailable(fmt.Errorf("enqueue job %s: %w", id, err))
	}
	s.log.InfoContext(ctx, "job accepted", "job", id, "range", rng.String())
	if s.accepted != nil {
		s.accepted.Inc()
	}
	return fromTask(info, s.policy.Retention), nil
}

// parseIdempotencyKey checks an Idempotency-Key: 1 to 255 printable ASCII characters, sent as a token
// or as a Structured Field string ("..."), which the IETF draft specifies and some clients send.
func parseIdempotencyKey(raw string) (string, bool) {
	k := raw
	if strings.HasPrefix(k, `"`) || strings.HasSuffix(k, `"`) {
		if len(k) < 2 || k[0] != '"' || k[len(k)-1] != '"' {
			return "", false // a quoted string that does not end (or begin) with its quote
		}
		k = k[1 : len(k)-1]
		if strings.ContainsAny(k, `"\`) {
			return "", false
		}
	}
	if len(k) < 1 || len(k) > 255 {
		return "", false
	}
	for i := range len(k) {
		if k[i] < 0x20 || k[i] > 0x7e {
			return "", false
		}
	}
	return k, true
}

// rangeProblem is the problem of a range ParseRangeAt refused with err: a 400 for text that is not a
// range (a day off the calendar included), a 422 for calendar days that cannot be served; the detail
// names the field by its pointer, then the range, then why.
func rangeProblem(err error) error {
	kind, verdict := problem.KindUnprocessable, "cannot be served"
	if errors.Is(err, report.ErrRangeSyntax) {
		kind, verdict = problem.KindInvalid, "is not a range"
	}
	var re *report.RangeError
	if !errors.As(err, &re) {
		return &problem.Error{Kind: kind, Detail: "/range " + verdict + ": " + err.Error(), Err: err}
	}
	return &problem.Error{Kind: kind, Detail: fmt.Sprintf("/range %q %s: %s", re.Text, verdict, re.Reason), Err: err}
}
