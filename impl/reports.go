package impl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/tasks"
)

// CreateReport validates the range, records the job's tombstone, and enqueues the job; the 202 is only
// written once asynq has the task in Redis.
func (s *Server) CreateReport(ctx context.Context, req gen.CreateReportRequestObject) (gen.CreateReportResponseObject, error) {
	rng, err := tasks.ParseRange(req.Body.Range)
	switch {
	case errors.Is(err, tasks.ErrRangeSyntax):
		return nil, &Error{Kind: KindInvalid, Detail: "/range: " + err.Error(), Err: err}
	case err != nil:
		return nil, &Error{Kind: KindUnprocessable, Detail: "/range: " + err.Error(), Err: err}
	}
	id := s.newID().String()
	now := s.now()
	task, err := tasks.NewReportTask(id, rng, now,
		asynq.MaxRetry(s.policy.MaxRetry), asynq.Timeout(s.policy.JobTimeout), asynq.Retention(s.policy.Retention))
	if err != nil {
		return nil, err
	}
	if err := s.store.CreateTombstone(ctx, id, s.policy.lifetime()); err != nil {
		return nil, unavailable(err)
	}
	info, err := s.queue.EnqueueContext(ctx, task)
	if err != nil {
		return nil, unavailable(fmt.Errorf("enqueue job %s: %w", id, err))
	}
	body, err := toJobStatus(viewOf(info, s.policy.Retention), s.policy.JobTimeout)
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "job accepted", "job", id, "range", rng.String())
	return gen.CreateReport202JSONResponse{
		Body:    body,
		Headers: gen.CreateReport202ResponseHeaders{Location: statusPath(id), RetryAfter: minRetryAfter},
	}, nil
}

// GetReportStatus answers 200 with the status of a pending, running or failed job, and 303 to the
// result of a done one.
func (s *Server) GetReportStatus(ctx context.Context, req gen.GetReportStatusRequestObject) (gen.GetReportStatusResponseObject, error) {
	v, err := s.job(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	if v.state == gen.Done {
		return gen.GetReportStatus303Response{Headers: gen.GetReportStatus303ResponseHeaders{
			Location: resultPath(v.id), CacheControl: ptr("no-store"),
		}}, nil
	}
	body, err := toJobStatus(v, s.policy.JobTimeout)
	if err != nil {
		return nil, err
	}
	h := gen.GetReportStatus200ResponseHeaders{CacheControl: ptr("no-store")}
	if v.state == gen.Pending || v.state == gen.Running {
		h.RetryAfter = ptr(v.retryAfter(s.now()))
	}
	return gen.GetReportStatus200JSONResponse{Body: body, Headers: h}, nil
}

// GetReportResult answers with a done job's report, as JSON or as CSV by the request's Accept.
func (s *Server) GetReportResult(ctx context.Context, req gen.GetReportResultRequestObject) (gen.GetReportResultResponseObject, error) {
	v, err := s.job(ctx, req.Id)
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
	body, err := s.store.Report(ctx, v.id)
	if errors.Is(err, tasks.ErrNoReport) {
		return nil, errorf(KindGone, "job %s has expired", v.id)
	}
	if err != nil {
		return nil, unavailable(err)
	}
	var rep tasks.Report
	if err := json.Unmarshal(body, &rep); err != nil {
		return nil, fmt.Errorf("decode report of job %s: %w", v.id, err)
	}
	if media == mediaCSV {
		var buf bytes.Buffer
		if err := rep.WriteCSV(&buf); err != nil {
			return nil, fmt.Errorf("render CSV of job %s: %w", v.id, err)
		}
		return gen.GetReportResult200TextcsvResponse{
			Body:          &buf,
			ContentLength: int64(buf.Len()),
			Headers: gen.GetReportResult200ResponseHeaders{
				ContentDisposition: ptr(fmt.Sprintf("attachment; filename=%q", rep.CSVFilename())),
			},
		}, nil
	}
	out, err := toReport(rep)
	if err != nil {
		return nil, err
	}
	return gen.GetReportResult200JSONResponse{Body: out}, nil
}

// job reads job id: 404 if it was never issued, 410 if it expired.
func (s *Server) job(ctx context.Context, id uuid.UUID) (jobView, error) {
	sid := id.String()
	info, err := s.tasks.GetTaskInfo(tasks.Queue, sid)
	if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
		issued, terr := s.store.TombstoneExists(ctx, sid)
		switch {
		case terr != nil:
			return jobView{}, unavailable(terr)
		case issued:
			return jobView{}, errorf(KindGone, "job %s has expired: finished jobs are kept for %s", sid, s.policy.Retention)
		default:
			return jobView{}, errorf(KindNotFound, "no job %s was issued here", sid)
		}
	}
	if err != nil {
		return jobView{}, unavailable(fmt.Errorf("read job %s: %w", sid, err))
	}
	v := viewOf(info, s.policy.Retention)
	now := s.now()
	if v.expired(now) {
		// asynq keeps failed (archived) tasks for months: past the tombstone period such an id answers
		// 404 like any other whose tombstone ran out.
		if !now.Before(v.expiresAt.Add(s.policy.Tombstone)) {
			return jobView{}, errorf(KindNotFound, "no job %s was issued here", sid)
		}
		return jobView{}, errorf(KindGone, "job %s has expired: finished jobs are kept for %s", sid, s.policy.Retention)
	}
	return v, nil
}

// toReport converts a stored report to the API's Report.
func toReport(r tasks.Report) (gen.Report, error) {
	id, err := parseID(r.ID)
	if err != nil {
		return gen.Report{}, err
	}
	from, err := parseDate(r.Range.From)
	if err != nil {
		return gen.Report{}, err
	}
	to, err := parseDate(r.Range.To)
	if err != nil {
		return gen.Report{}, err
	}
	out := gen.Report{
		Id:           id,
		Range:        gen.DateRange{From: from, To: to},
		GeneratedAt:  r.GeneratedAt.UTC(),
		Orders:       r.Orders,
		Units:        r.Units,
		RevenueCents: r.RevenueCents,
		ByRegion:     make([]gen.RegionTotals, 0, len(r.ByRegion)),
		ByProduct:    make([]gen.ProductTotals, 0, len(r.ByProduct)),
		ByDay:        make([]gen.DayTotals, 0, len(r.ByDay)),
	}
	for _, t := range r.ByRegion {
		out.ByRegion = append(out.ByRegion, gen.RegionTotals{Region: t.Region, Orders: t.Orders, Units: t.Units, RevenueCents: t.RevenueCents})
	}
	for _, t := range r.ByProduct {
		out.ByProduct = append(out.ByProduct, gen.ProductTotals{Product: t.Product, Orders: t.Orders, Units: t.Units, RevenueCents: t.RevenueCents})
	}
	for _, t := range r.ByDay {
		d, err := parseDate(t.Date)
		if err != nil {
			return gen.Report{}, err
		}
		out.ByDay = append(out.ByDay, gen.DayTotals{Date: d, Orders: t.Orders, Units: t.Units, RevenueCents: t.RevenueCents})
	}
	return out, nil
}
