package impl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/report"
)

func statusPath(id string) string { return "/v1/reports/" + id }
func resultPath(id string) string { return "/v1/reports/" + id + "/result" }

// toJobStatus converts a job to the API's JobStatus.
func (s *Server) toJobStatus(j jobs.Job) (gen.JobStatus, error) {
	id, err := parseID(j.ID)
	if err != nil {
		return gen.JobStatus{}, err
	}
	out := gen.JobStatus{
		Id:        id,
		Status:    gen.JobState(j.State),
		Range:     toDateRange(j.Range),
		CreatedAt: j.CreatedAt.UTC(),
		Links:     gen.JobLinks{Self: statusPath(j.ID)},
	}
	if j.State == jobs.Running || j.State == jobs.Failed || j.State == jobs.Canceled {
		out.Progress = j.Progress.Share
	}
	if j.State == jobs.Done {
		out.Progress = 1
		out.Links.Result = ptr(resultPath(j.ID))
	}
	if j.Progress.Attempt > 0 {
		out.StartedAt = ptr(j.Progress.StartedAt.UTC())
		out.Attempt = ptr(j.Progress.Attempt)
	}
	if !j.FinishedAt.IsZero() {
		out.FinishedAt = ptr(j.FinishedAt.UTC())
	}
	if !j.ExpiresAt.IsZero() {
		out.ExpiresAt = ptr(j.ExpiresAt.UTC())
	}
	if j.State == jobs.Failed {
		pt, detail := j.Failure(s.jobs.Policy().JobTimeout)
		out.Error = &gen.Problem{Type: "/problems/" + pt.Slug, Title: pt.Title, Status: pt.Status, Detail: detail}
	}
	out.Webhook = toWebhookDelivery(j)
	return out, nil
}

// toJobList converts a page of jobs to the API's JobList, with the next page's link.
func (s *Server) toJobList(page jobs.Page, q jobs.ListQuery) (gen.ListReports200JSONResponse, error) {
	items := make([]gen.JobStatus, 0, len(page.Jobs))
	for _, j := range page.Jobs {
		st, err := s.toJobStatus(j)
		if err != nil {
			return gen.ListReports200JSONResponse{}, err
		}
		items = append(items, st)
	}
	out := gen.ListReports200JSONResponse{Body: gen.JobList{Items: items}, Headers: gen.ListReports200ResponseHeaders{CacheControl: ptr("no-store")}}
	if page.Next != "" {
		limit := q.Limit
		if limit == 0 {
			limit = jobs.DefaultListLimit
		}
		v := url.Values{"cursor": {page.Next}, "limit": {strconv.Itoa(limit)}}
		if q.Status != nil {
			v.Set("status", string(*q.Status))
		}
		next := "/v1/reports?" + v.Encode()
		out.Body.Next = &next
		out.Headers.Link = ptr("<" + next + `>; rel="next"`)
	}
	return out, nil
}

// toWebhookDelivery converts a job's webhook state to the API's WebhookDelivery.
func toWebhookDelivery(j jobs.Job) *gen.WebhookDelivery {
	d := j.Delivery
	if d == nil {
		return nil
	}
	out := &gen.WebhookDelivery{Url: j.CallbackURL, Attempts: d.Attempts}
	if d.LastStatus != 0 {
		out.LastStatus = ptr(d.LastStatus)
	}
	if d.LastError != "" {
		out.LastError = ptr(d.LastError)
	}
	if !d.DeliveredAt.IsZero() {
		out.DeliveredAt = ptr(d.DeliveredAt.UTC())
	}
	return out
}

// resultResponse is the answer to a read of done job j's stored report in media: 304 when the
// client's If-None-Match holds its ETag, else the report as JSON or CSV, cacheable until it expires.
func resultResponse(j jobs.Job, stored []byte, media string, ifNoneMatch *string, now time.Time) (gen.GetReportResultResponseObject, error) {
	etag := etagOf(stored, media)
	cache := fmt.Sprintf("private, max-age=%d", max(int(j.ExpiresAt.Sub(now)/time.Second), 0))
	if noneMatch(ifNoneMatch, etag) {
		return gen.GetReportResult304Response{Headers: gen.GetReportResult304ResponseHeaders{
			ETag: etag, CacheControl: cache, Expires: httpDate(j.ExpiresAt), Vary: ptr("Accept"),
		}}, nil
	}
	headers := gen.GetReportResult200ResponseHeaders{ETag: etag, CacheControl: cache, Expires: httpDate(j.ExpiresAt), Vary: ptr("Accept")}
	if media != mediaCSV {
		if !json.Valid(stored) {
			return nil, fmt.Errorf("report of job %s: stored JSON is not valid", j.ID)
		}
		return storedReport{body: stored, headers: headers}, nil
	}
	var rep report.Report
	if err := json.Unmarshal(stored, &rep); err != nil {
		return nil, fmt.Errorf("decode report of job %s: %w", j.ID, err)
	}
	var buf bytes.Buffer
	if err := rep.WriteCSV(&buf); err != nil {
		return nil, fmt.Errorf("render CSV of job %s: %w", j.ID, err)
	}
	headers.ContentDisposition = ptr(fmt.Sprintf("attachment; filename=%q", rep.CSVFilename()))
	return gen.GetReportResult200TextcsvResponse{Body: &buf, ContentLength: int64(buf.Len()), Headers: headers}, nil
}

// storedReport answers 200 with a done job's report as it was stored: the stored JSON is the API's
// Report (report.Report's JSON is the spec's schema), so it is sent as it is rather than decoded and
// encoded again, which was most of a result read's time.
type storedReport struct {
	body    []byte
	headers gen.GetReportResult200ResponseHeaders
}

// VisitGetReportResultResponse writes the answer as gen.GetReportResult200JSONResponse would.
func (r storedReport) VisitGetReportResultResponse(w http.ResponseWriter) error {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", r.headers.CacheControl)
	h.Set("ETag", r.headers.ETag)
	if r.headers.Expires != nil {
		h.Set("Expires", *r.headers.Expires)
	}
	if r.headers.Vary != nil {
		h.Set("Vary", *r.headers.Vary)
	}
	h.Set("Content-Length", strconv.Itoa(len(r.body)+1))
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(r.body); err != nil {
		return err
	}
	_, err := w.Write([]byte{'\n'}) // as json.Encoder ends a value
	return err
}

func toDateRange(r report.DateRange) gen.DateRange {
	return gen.DateRange{From: openapi_types.Date{Time: r.From}, To: openapi_types.Date{Time: r.To}}
}

func ptr[T any](v T) *T { return &v }

// deref is the value p points to, or T's zero value for nil.
func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}
