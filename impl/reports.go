package impl

import (
	"context"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/httpapi"
	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/problem"
)

// CreateReport submits a job and answers 202 once asynq has it in Redis, or 303 when Prefer: wait saw
// it done. An Idempotency-Key replay answers with the job the key first created.
func (s *Server) CreateReport(ctx context.Context, req gen.CreateReportRequestObject) (gen.CreateReportResponseObject, error) {
	wait := preferWait(req.Params.Prefer)
	j, err := s.jobs.Submit(ctx, jobs.Submission{Client: httpapi.Client(ctx), Range: req.Body.Range, CallbackURL: deref(req.Body.CallbackUrl),
		IdempotencyKey: deref(req.Params.IdempotencyKey), Fingerprint: fingerprint(req.Body), Wait: wait})
	if err != nil {
		return nil, err
	}
	applied, replayed := preferenceApplied(j, wait), idempotentReplayed(j)
	limit, policy := rateLimitFields(j.RateLimit)
	if j.State == jobs.Done {
		return gen.CreateReport303Response{Headers: gen.CreateReport303ResponseHeaders{
			Location: resultPath(j.ID), Expires: httpDate(j.ExpiresAt), PreferenceApplied: applied, IdempotentReplayed: replayed,
			RateLimit: limit, RateLimitPolicy: policy}}, nil
	}
	body, err := s.toJobStatus(j)
	if err != nil {
		return nil, err
	}
	return gen.CreateReport202JSONResponse{Body: body, Headers: gen.CreateReport202ResponseHeaders{
		Location: statusPath(j.ID), RetryAfter: j.RetryAfter, PreferenceApplied: applied, IdempotentReplayed: replayed,
		RateLimit: limit, RateLimitPolicy: policy}}, nil
}

// rateLimitFields are the RateLimit and RateLimit-Policy fields of a submission under limit l; none
// without one.
func rateLimitFields(l *problem.RateLimit) (limit, policy *string) {
	if l == nil {
		return nil, nil
	}
	return ptr(l.Value()), ptr(l.Policy())
}

// GetReportStatus answers 200 with the status of a pending, running, failed or canceled job, and 303 to
// the result of a done one. Prefer: wait holds the answer until the job is terminal or the wait is over.
func (s *Server) GetReportStatus(ctx context.Context, req gen.GetReportStatusRequestObject) (gen.GetReportStatusResponseObject, error) {
	wait := preferWait(req.Params.Prefer)
	j, err := s.jobs.Status(ctx, httpapi.Client(ctx), req.Id.String(), wait)
	if err != nil {
		return nil, err
	}
	applied := preferenceApplied(j, wait)
	if j.State == jobs.Done {
		return gen.GetReportStatus303Response{Headers: gen.GetReportStatus303ResponseHeaders{
			Location: resultPath(j.ID), CacheControl: ptr("no-store"), Expires: httpDate(j.ExpiresAt), PreferenceApplied: applied}}, nil
	}
	body, err := s.toJobStatus(j)
	if err != nil {
		return nil, err
	}
	h := gen.GetReportStatus200ResponseHeaders{CacheControl: ptr("no-store"), PreferenceApplied: applied}
	if !j.Terminal() {
		h.RetryAfter = ptr(j.RetryAfter)
	}
	return gen.GetReportStatus200JSONResponse{Body: body, Headers: h}, nil
}

// CancelReport cancels a pending or running job for good and keeps its record.
func (s *Server) CancelReport(ctx context.Context, req gen.CancelReportRequestObject) (gen.CancelReportResponseObject, error) {
	j, err := s.jobs.Cancel(ctx, httpapi.Client(ctx), req.Id.String())
	if err != nil {
		return nil, err
	}
	body, err := s.toJobStatus(j)
	switch {
	case err != nil:
		return nil, err
	case j.State == jobs.Canceled:
		return gen.CancelReport200JSONResponse(body), nil
	}
	// Still running: its worker has not confirmed the cancel yet.
	body.CancelRequested = ptr(true)
	return gen.CancelReport202JSONResponse{Body: body, Headers: gen.CancelReport202ResponseHeaders{RetryAfter: problem.MinRetryAfter}}, nil
}

// DeleteReport deletes a finished job and its report.
func (s *Server) DeleteReport(ctx context.Context, req gen.DeleteReportRequestObject) (gen.DeleteReportResponseObject, error) {
	if err := s.jobs.Delete(ctx, httpapi.Client(ctx), req.Id.String()); err != nil {
		return nil, err
	}
	return gen.DeleteReport204Response{}, nil
}

// GetReportResult answers with a done job's report, as JSON or as CSV by the request's Accept, with an
// ETag and a lifetime so that clients and caches can keep it until it expires.
func (s *Server) GetReportResult(ctx context.Context, req gen.GetReportResultRequestObject) (gen.GetReportResultResponseObject, error) {
	j, stored, err := s.jobs.Result(ctx, httpapi.Client(ctx), req.Id.String())
	if err != nil {
		return nil, err
	}
	media, ok := negotiate(httpapi.Accept(ctx))
	if !ok {
		return nil, problem.Errorf(problem.KindNotAcceptable, "This report is served as application/json or text/csv; the Accept header allows neither.")
	}
	if stored == nil {
		if j.State != jobs.Done {
			return nil, noReport(j)
		}
		if stored, err = s.jobs.Report(ctx, j); err != nil {
			return nil, err
		}
	}
	return resultResponse(j, stored, media, req.Params.IfNoneMatch, s.jobs.Now())
}

// noReport is why job j, which is not done, has no report to read: polling would never see a 303 for a
// failed or canceled one, so say so instead.
func noReport(j jobs.Job) error {
	switch j.State {
	case jobs.Failed:
		return problem.Errorf(problem.KindNotDone, "Job %s failed, so it has no report and never will; its status at %s says why.", j.ID, statusPath(j.ID))
	case jobs.Canceled:
		return problem.Errorf(problem.KindNotDone, "Job %s was canceled, so it has no report and never will.", j.ID)
	}
	return problem.Errorf(problem.KindNotDone, "Job %s is %s, so it has no report yet; poll %s until it answers 303.", j.ID, j.State, statusPath(j.ID))
}

// ListReports lists the caller's jobs, newest first, a page at a time.
func (s *Server) ListReports(ctx context.Context, req gen.ListReportsRequestObject) (gen.ListReportsResponseObject, error) {
	q := jobs.ListQuery{Client: httpapi.Client(ctx), Cursor: deref(req.Params.Cursor), Limit: deref(req.Params.Limit)}
	if f := req.Params.Status; f != nil {
		q.Status = ptr(jobs.State(*f))
	}
	page, err := s.jobs.List(ctx, q)
	if err != nil {
		return nil, err
	}
	return s.toJobList(page, q)
}

// GetReportWebhook answers with the delivery state of a job's webhook.
func (s *Server) GetReportWebhook(ctx context.Context, req gen.GetReportWebhookRequestObject) (gen.GetReportWebhookResponseObject, error) {
	j, err := s.jobs.Webhook(ctx, httpapi.Client(ctx), req.Id.String())
	if err != nil {
		return nil, err
	}
	return gen.GetReportWebhook200JSONResponse{Body: *toWebhookDelivery(j), Headers: gen.GetReportWebhook200ResponseHeaders{CacheControl: ptr("no-store")}}, nil
}
