package impl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/webhook"
	"github.com/reportd/reportd/tasks"
)

// replayGrace is how long after an Idempotency-Key was first claimed a replay may still enqueue its job:
// the first request may have failed between claiming the key and enqueueing. Past it, a key whose job
// is gone names an expired or deleted job.
const replayGrace = 10 * time.Second

// cancelConfirmWait is how long DELETE waits for a running job's worker to confirm the cancel.
const cancelConfirmWait = time.Second

// CreateReport validates the range, records the job's tombstone, and enqueues the job; the 202 is only
// written once asynq has the task in Redis. An Idempotency-Key replay answers with the job it first
// created; Prefer: wait holds the answer until the job is done (then 303) or the wait is over.
func (s *Server) CreateReport(ctx context.Context, req gen.CreateReportRequestObject) (gen.CreateReportResponseObject, error) {
	rng, err := report.ParseRange(req.Body.Range)
	switch {
	case errors.Is(err, report.ErrRangeSyntax):
		return nil, &Error{Kind: KindInvalid, Detail: "/range: " + err.Error(), Err: err}
	case err != nil:
		return nil, &Error{Kind: KindUnprocessable, Detail: "/range: " + err.Error(), Err: err}
	}
	client := clientFrom(ctx)
	wait, waiting := preferWait(req.Params.Prefer)
	var callback string
	if u := req.Body.CallbackUrl; u != nil {
		if s.webhooks == nil {
			return nil, errorf(KindWebhooksOff, "this service has no webhook secret configured, so it cannot send callbacks; submit without callback_url and poll")
		}
		if err := webhook.CheckCallbackURL(ctx, *u, s.webhooks.Policy, s.webhooks.Resolver); err != nil {
			return nil, &Error{Kind: KindCallbackRefused, Detail: "/callback_url: " + err.Error(), Err: err}
		}
		callback = *u
	}

	id, createdAt := s.newID().String(), s.now()
	var key string
	var held *tasks.Submission // the key's record, when the key was used before
	if raw := req.Params.IdempotencyKey; raw != nil {
		var ok bool
		if key, ok = idempotencyKey(*raw); !ok {
			return nil, errorf(KindInvalid, "header Idempotency-Key: must be 1 to 255 printable ASCII characters, plain or as a quoted string")
		}
		fp := fingerprint(req.Body)
		sub, mine, err := s.store.ClaimIdempotencyKey(ctx, client, key,
			tasks.Submission{Fingerprint: fp, JobID: id, CreatedAt: createdAt}, s.policy.idempotencyTTL())
		if err != nil {
			return nil, unavailable(err)
		}
		if !mine {
			if sub.Fingerprint != fp {
				return nil, errorf(KindIdempotencyMismatch, "Idempotency-Key %q was first used with a different body (for job %s)", key, sub.JobID)
			}
			id, createdAt, held = sub.JobID, sub.CreatedAt, &sub
		}
	}

	if held == nil {
		if err := s.admit(ctx, client); err != nil {
			if key != "" {
				// Refused before a job existed: the key must not name a job that never will.
				if rerr := s.store.ReleaseIdempotencyKey(ctx, client, key); rerr != nil {
					return nil, unavailable(rerr)
				}
			}
			return nil, err
		}
	}
	v, err := s.submit(ctx, client, id, rng, createdAt, callback, held)
	if err != nil {
		return nil, err
	}
	if key != "" && (held == nil || !held.Enqueued) {
		sub := tasks.Submission{Fingerprint: fingerprint(req.Body), JobID: id, CreatedAt: createdAt}
		if err := s.store.MarkEnqueued(ctx, client, key, sub); err != nil {
			return nil, unavailable(err)
		}
	}
	var applied *string
	if waiting && !v.terminal() {
		if v, err = s.waitFor(ctx, id, wait); err != nil {
			return nil, err
		}
		applied = preferenceApplied(wait)
	}
	if v.state == gen.Done {
		return gen.CreateReport303Response{Headers: gen.CreateReport303ResponseHeaders{
			Location: resultPath(id), Expires: httpDate(v.expiresAt), PreferenceApplied: applied,
		}}, nil
	}
	body, err := toJobStatus(v, s.policy.JobTimeout)
	if err != nil {
		return nil, err
	}
	return gen.CreateReport202JSONResponse{
		Body: body,
		Headers: gen.CreateReport202ResponseHeaders{
			Location: statusPath(id), RetryAfter: s.retryAfter(v), PreferenceApplied: applied,
		},
	}, nil
}

// submit enqueues job id, or, for an idempotent replay (held is the key's record), finds the job the
// first request enqueued. Any number of requests may submit one id at once: asynq's TaskID lets exactly
// one enqueue through.
func (s *Server) submit(ctx context.Context, client, id string, rng report.DateRange, createdAt time.Time, callback string, held *tasks.Submission) (jobView, error) {
	if held != nil {
		v, err := s.job(ctx, id)
		if err == nil || !isGoneOrUnknown(err) {
			return v, err
		}
		if held.Enqueued || s.now().Sub(createdAt) > replayGrace {
			return jobView{}, errorf(KindGone, "the job this Idempotency-Key submitted (%s) has expired or was deleted; use a new key", id)
		}
		// The first request claimed the key but has not enqueued yet, or failed to: enqueue it here.
	}
	jobOpts := []tasks.ReportOption{tasks.WithClient(client)}
	if callback != "" {
		jobOpts = append(jobOpts, tasks.WithCallback(callback))
	}
	task, opts, err := tasks.NewReportTask(id, rng, createdAt, jobOpts...)
	if err != nil {
		return jobView{}, err
	}
	opts = append(opts, asynq.MaxRetry(s.policy.MaxRetry), asynq.Timeout(s.policy.JobTimeout), asynq.Retention(s.policy.Retention))
	if err := s.store.CreateTombstone(ctx, id, client, s.policy.lifetime()); err != nil {
		return jobView{}, unavailable(err)
	}
	if err := s.store.IndexJob(ctx, client, id, createdAt, s.policy.idempotencyTTL()); err != nil {
		return jobView{}, unavailable(err)
	}
	info, err := s.queue.EnqueueContext(ctx, task, opts...)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return s.job(ctx, id) // another request for the same key enqueued it first
	}
	if err != nil {
		return jobView{}, unavailable(fmt.Errorf("enqueue job %s: %w", id, err))
	}
	s.log.InfoContext(ctx, "job accepted", "job", id, "range", rng.String())
	if s.metrics != nil {
		s.metrics.accepted.Inc()
	}
	return viewOf(info, s.policy.Retention), nil
}

// GetReportStatus answers 200 with the status of a pending, running, failed or canceled job, and 303 to
// the result of a done one. Prefer: wait holds the answer until the job is terminal or the wait is over.
func (s *Server) GetReportStatus(ctx context.Context, req gen.GetReportStatusRequestObject) (gen.GetReportStatusResponseObject, error) {
	id := req.Id.String()
	v, err := s.job(ctx, id)
	if err != nil {
		return nil, err
	}
	var applied *string
	if wait, ok := preferWait(req.Params.Prefer); ok && !v.terminal() {
		if v, err = s.waitFor(ctx, id, wait); err != nil {
			return nil, err
		}
		applied = preferenceApplied(wait)
	}
	if v.state == gen.Done {
		return gen.GetReportStatus303Response{Headers: gen.GetReportStatus303ResponseHeaders{
			Location: resultPath(v.id), CacheControl: ptr("no-store"), Expires: httpDate(v.expiresAt), PreferenceApplied: applied,
		}}, nil
	}
	if v, err = s.withDelivery(ctx, v); err != nil {
		return nil, err
	}
	body, err := toJobStatus(v, s.policy.JobTimeout)
	if err != nil {
		return nil, err
	}
	h := gen.GetReportStatus200ResponseHeaders{CacheControl: ptr("no-store"), PreferenceApplied: applied}
	if !v.terminal() {
		h.RetryAfter = ptr(s.retryAfter(v))
	}
	return gen.GetReportStatus200JSONResponse{Body: body, Headers: h}, nil
}

// CancelReport cancels a pending or running job for good, or deletes a finished one.
func (s *Server) CancelReport(ctx context.Context, req gen.CancelReportRequestObject) (gen.CancelReportResponseObject, error) {
	id := req.Id.String()
	v, err := s.job(ctx, id)
	if err != nil {
		return nil, err
	}
	if v.terminal() {
		return s.forget(ctx, v)
	}
	// The marker first: whatever happens next (the job starts, finishes, or asynq's cancel message is
	// lost), the job checks it and gives up without a report.
	if err := s.store.RequestCancel(ctx, id, s.policy.lifetime()); err != nil {
		return nil, unavailable(err)
	}
	if v.state == gen.Pending {
		err := s.tasks.DeleteTask(tasks.Queue, id)
		if err == nil {
			c := tasks.Canceled{CreatedAt: v.createdAt, Range: v.rng.String(), CanceledAt: s.now().UTC(),
				StartedAt: v.progress.StartedAt, Attempt: v.progress.Attempt, Progress: v.progress.Share, CallbackURL: v.callback, Client: v.client}
			if err := s.store.SaveCanceled(ctx, id, c); err != nil {
				return nil, unavailable(err)
			}
			if err := s.store.PublishFinished(ctx, id); err != nil {
				s.log.WarnContext(ctx, "cancel not announced", "job", id, "err", err)
			}
			if err := s.store.JobClosed(ctx, v.client, id); err != nil {
				s.log.WarnContext(ctx, "canceled job not closed in its client's count", "job", id, "err", err)
			}
			if v.callback != "" {
				if err := tasks.ScheduleWebhook(ctx, s.queue, v.callback, webhook.NewEvent(id, "canceled", s.now()), s.policy.Retention); err != nil {
					s.log.ErrorContext(ctx, "webhook not scheduled", "job", id, "err", err)
				}
			}
			s.log.InfoContext(ctx, "job canceled before it ran", "job", id)
			body, err := toJobStatus(canceledView(id, c, s.policy.Retention), s.policy.JobTimeout)
			if err != nil {
				return nil, err
			}
			return gen.CancelReport200JSONResponse(body), nil
		}
		// It became active in the meantime (asynq refuses to delete an active task): stop it below.
	}
	if err := s.store.PublishCancel(ctx, id); err != nil {
		return nil, unavailable(err)
	}
	v, err = s.waitFor(ctx, id, cancelConfirmWait)
	switch {
	case err != nil:
		return nil, err
	case v.state == gen.Done:
		return s.forget(ctx, v) // it finished before the cancel reached it: the job is gone all the same
	case v.state == gen.Canceled:
		s.log.InfoContext(ctx, "job canceled", "job", id)
		body, err := toJobStatus(v, s.policy.JobTimeout)
		if err != nil {
			return nil, err
		}
		return gen.CancelReport200JSONResponse(body), nil
	}
	body, err := toJobStatus(v, s.policy.JobTimeout)
	if err != nil {
		return nil, err
	}
	body.CancelRequested = ptr(true)
	return gen.CancelReport202JSONResponse{Body: body, Headers: gen.CancelReport202ResponseHeaders{RetryAfter: minRetryAfter}}, nil
}

// forget deletes a finished job: its task and everything reportd keeps of it but the tombstone, so its
// id answers 410 from now on.
func (s *Server) forget(ctx context.Context, v jobView) (gen.CancelReportResponseObject, error) {
	if v.task {
		if err := s.tasks.DeleteTask(tasks.Queue, v.id); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
			return nil, unavailable(fmt.Errorf("delete job %s: %w", v.id, err))
		}
	}
	if err := s.store.Forget(ctx, v.id); err != nil {
		return nil, unavailable(err)
	}
	if err := s.store.Unindex(ctx, v.client, v.id); err != nil {
		return nil, unavailable(err)
	}
	s.log.InfoContext(ctx, "job deleted", "job", v.id, "status", v.state)
	return gen.CancelReport204Response{}, nil
}

// GetReportResult answers with a done job's report, as JSON or as CSV by the request's Accept, with an
// ETag and a lifetime so that clients and caches can keep it until it expires.
func (s *Server) GetReportResult(ctx context.Context, req gen.GetReportResultRequestObject) (gen.GetReportResultResponseObject, error) {
	v, err := s.job(ctx, req.Id.String())
	if err != nil {
		return nil, err
	}
	media, ok := negotiate(acceptFrom(ctx))
	if !ok {
		return nil, errorf(KindNotAcceptable, "this report is served as application/json or text/csv; the Accept header allows neither")
	}
	if v.state != gen.Done {
		return nil, errorf(KindNotDone, "the job is %s; poll %s until it answers 303", v.state, statusPath(v.id))
	}
	stored, err := s.store.Report(ctx, v.id)
	if errors.Is(err, tasks.ErrNoReport) {
		return nil, errorf(KindGone, "job %s has expired", v.id)
	}
	if err != nil {
		return nil, unavailable(err)
	}
	etag := etagOf(stored, media)
	maxAge := max(int(v.expiresAt.Sub(s.now())/time.Second), 0)
	cache := fmt.Sprintf("private, max-age=%d", maxAge)
	if noneMatch(req.Params.IfNoneMatch, etag) {
		return gen.GetReportResult304Response{Headers: gen.GetReportResult304ResponseHeaders{
			ETag: etag, CacheControl: cache, Expires: httpDate(v.expiresAt), Vary: ptr("Accept"),
		}}, nil
	}
	var rep report.Report
	if err := json.Unmarshal(stored, &rep); err != nil {
		return nil, fmt.Errorf("decode report of job %s: %w", v.id, err)
	}
	headers := gen.GetReportResult200ResponseHeaders{ETag: etag, CacheControl: cache, Expires: httpDate(v.expiresAt), Vary: ptr("Accept")}
	if media == mediaCSV {
		var buf bytes.Buffer
		if err := rep.WriteCSV(&buf); err != nil {
			return nil, fmt.Errorf("render CSV of job %s: %w", v.id, err)
		}
		headers.ContentDisposition = ptr(fmt.Sprintf("attachment; filename=%q", rep.CSVFilename()))
		return gen.GetReportResult200TextcsvResponse{Body: &buf, ContentLength: int64(buf.Len()), Headers: headers}, nil
	}
	out, err := toReport(rep)
	if err != nil {
		return nil, err
	}
	return gen.GetReportResult200JSONResponse{Body: out, Headers: headers}, nil
}

// retryAfter is the Retry-After of a job that is not finished: for a running job, the time its progress
// says it still needs; for a pending one, the time the queue ahead of it will take.
func (s *Server) retryAfter(v jobView) int {
	if v.state == gen.Running {
		return v.runningWait(s.now())
	}
	return s.pace.pendingWait(s.now(), s.tasks.GetQueueInfo, tasks.Queue)
}

// job reads job id: 404 if it was never issued, 410 if it expired or was deleted.
func (s *Server) job(ctx context.Context, sid string) (jobView, error) {
	info, err := s.tasks.GetTaskInfo(tasks.Queue, sid)
	if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
		return s.missingJob(ctx, sid)
	}
	if err != nil {
		return jobView{}, unavailable(fmt.Errorf("read job %s: %w", sid, err))
	}
	v := viewOf(info, s.policy.Retention)
	if v.client != clientFrom(ctx) {
		// Another client's job: its existence is not revealed.
		return jobView{}, errorf(KindNotFound, "no job %s was issued here", sid)
	}
	now := s.now()
	if v.expired(now) {
		// asynq keeps failed (archived) tasks for months: past the tombstone period such an id answers
		// 404 like any other whose tombstone ran out.
		if !now.Before(v.expiresAt.Add(s.policy.Tombstone)) {
			return jobView{}, errorf(KindNotFound, "no job %s was issued here", sid)
		}
		return jobView{}, errorf(KindGone, "job %s has expired: finished jobs are kept for %s", sid, s.policy.Retention)
	}
	if v.state == gen.Done && v.progress.Attempt > 0 {
		s.pace.observe(v.id, v.finishedAt.Sub(v.progress.StartedAt))
	}
	return v, nil
}

// missingJob answers for an id asynq has no task for: a job canceled before it ran, an expired or
// deleted one (its tombstone remains), or one never issued.
func (s *Server) missingJob(ctx context.Context, id string) (jobView, error) {
	c, ok, err := s.store.CanceledJob(ctx, id)
	if err != nil {
		return jobView{}, unavailable(err)
	}
	caller := clientFrom(ctx)
	if ok && ownerOf(c.Client) == caller {
		return canceledView(id, c, s.policy.Retention), nil
	}
	owner, issued, err := s.store.Tombstone(ctx, id)
	switch {
	case err != nil:
		return jobView{}, unavailable(err)
	case issued && ownerOf(owner) == caller:
		return jobView{}, errorf(KindGone, "job %s has expired or was deleted: finished jobs are kept for %s", id, s.policy.Retention)
	default:
		return jobView{}, errorf(KindNotFound, "no job %s was issued here", id)
	}
}
