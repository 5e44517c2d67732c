package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/reportd/reportd/gen"
)

// maxHold is the longest the server holds a request for Prefer: wait; it ignores more.
const maxHold = 60 * time.Second

// answerMargin is the time left, within an HTTP client's Timeout, for an answer after a hold.
const answerMargin = 5 * time.Second

// CreateOptions are the optional parts of a submission.
type CreateOptions struct {
	// IdempotencyKey makes the submission safe to retry: a retry with the same key and range gets the
	// same job, never a second one. 1 to 255 printable ASCII characters.
	IdempotencyKey string
	// CallbackURL asks the service to POST a signed event there when the job finishes (it must be an
	// https URL the service may call, and the service must have webhooks set up).
	CallbackURL string
	// Wait, when at least a second, asks the service to hold the answer up to Wait (whole seconds, at
	// most 60, and no longer than ctx allows) with Prefer: respond-async, wait=N: a job done by then
	// answers 303 to its result (Job.Done), any other the usual 202.
	Wait time.Duration
}

// Job is a submitted job, as the submission's answer describes it.
type Job struct {
	// ID is the job's id.
	ID string
	// StatusURL is the job's status URL, absolute: Wait on it.
	StatusURL string
	// Status is the job's status from a 202; nil when Done.
	Status *gen.JobStatus
	// RetryAfter is when the service suggests reading StatusURL first (DefaultRetryAfter when it did not
	// say); zero when Done.
	RetryAfter time.Duration
	// Done says the answer was 303 See Other: the job is done and its report is at ResultURL.
	Done bool
	// ResultURL is the report's URL, absolute, when Done.
	ResultURL string
	// Replayed says the service answered with the job this submission's Idempotency-Key first created
	// (Idempotent-Replayed: true).
	Replayed bool
	// RateLimited counts the times the service refused the submission with 429 Too Many Requests
	// before it accepted it, and Throttled is how long Create waited for them (see
	// WithMaxRateLimitWait).
	RateLimited int
	Throttled   time.Duration
}

// Status is one reading of a job's status URL.
type Status struct {
	// ID is the job's id.
	ID string
	// URL is the status URL that was read, absolute.
	URL string
	// State is the job's status: gen.Done when the status URL answered 303.
	State gen.JobState
	// Done says the status URL answered 303 See Other: the report is at ResultURL.
	Done bool
	// ResultURL is the report's URL, absolute, when Done.
	ResultURL string
	// Expires is when a done job's report expires (the 303's Expires), or zero.
	Expires time.Time
	// RetryAfter is when to read the status URL again, for a pending or running job: the Retry-After
	// the service sent (delay-seconds or HTTP-date), or DefaultRetryAfter when it sent none it could
	// read. Zero for a finished job.
	RetryAfter time.Duration
	// Job is the status the service sent (its 200 body); nil for a 303, which has none.
	Job *gen.JobStatus
}

// Create submits a report job over rng (a quarter "2026-Q1", a month "2026-01", a day "2026-01-15",
// or a day span "2026-01-01..2026-02-15"). The job is durably queued when Create returns; Wait on Job.StatusURL
// follows it to its report. A submission refused with 429 Too Many Requests (the client's rate limit,
// or its cap on unfinished jobs) created nothing, so Create submits it again after the Retry-After the
// service sent, for as long as WithMaxRateLimitWait allows in all (a minute by default); past that it
// returns the 429's *ProblemError.
func (c *Client) Create(ctx context.Context, rng string, opts CreateOptions) (*Job, error) {
	var limited int
	var waited time.Duration
	for {
		job, err := c.create(ctx, rng, opts)
		var pe *ProblemError
		if !errors.As(err, &pe) || pe.Status != http.StatusTooManyRequests {
			if job != nil {
				job.RateLimited, job.Throttled = limited, waited
			}
			return job, err
		}
		wait := max(pe.RetryAfter, time.Second)
		if waited+wait > c.maxRateWait {
			return nil, err
		}
		if err := c.sleep(ctx, wait); err != nil {
			return nil, err
		}
		limited, waited = limited+1, waited+wait
	}
}

// create makes one submission.
func (c *Client) create(ctx context.Context, rng string, opts CreateOptions) (*Job, error) {
	params := &gen.CreateReportParams{}
	if opts.IdempotencyKey != "" {
		params.IdempotencyKey = &opts.IdempotencyKey
	}
	if hold := c.hold(ctx, min(opts.Wait, maxHold)); hold > 0 {
		prefer := fmt.Sprintf("respond-async, wait=%d", int(hold/time.Second))
		params.Prefer = &prefer
	}
	body := gen.ReportRequest{Range: rng}
	if opts.CallbackURL != "" {
		body.CallbackUrl = &opts.CallbackURL
	}
	resp, err := c.api.CreateReport(ctx, params, body)
	resp, data, err := exchange(ctx, resp, err)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusAccepted:
		var st gen.JobStatus
		if err := decodeJSON(resp, data, &st); err != nil {
			return nil, err
		}
		loc, err := location(resp)
		if err != nil {
			return nil, err
		}
		return &Job{ID: st.Id.String(), StatusURL: loc.String(), Status: &st, RetryAfter: c.retryAfter(resp), Replayed: replayed(resp)}, nil
	case http.StatusSeeOther:
		loc, err := location(resp)
		if err != nil {
			return nil, err
		}
		status := *loc
		status.Path = strings.TrimSuffix(status.Path, "/result")
		status.RawPath = ""
		return &Job{ID: jobIDOf(loc), StatusURL: status.String(), Done: true, ResultURL: loc.String(), Replayed: replayed(resp)}, nil
	}
	return nil, problemFrom(resp, data, c.now())
}

// Status reads job id's status once. A done job is a Status with Done set and the result's URL: the
// 303 is read, not followed.
func (c *Client) Status(ctx context.Context, id string) (*Status, error) {
	jid, err := parseID(id)
	if err != nil {
		return nil, err
	}
	resp, err := c.api.GetReportStatus(ctx, jid, nil)
	return c.readStatus(exchange(ctx, resp, err))
}

// readStatus makes a Status of a status URL's answer.
func (c *Client) readStatus(resp *http.Response, body []byte, err error) (*Status, error) {
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		var js gen.JobStatus
		if err := decodeJSON(resp, body, &js); err != nil {
			return nil, err
		}
		st := &Status{ID: js.Id.String(), URL: resp.Request.URL.String(), State: js.Status, Job: &js}
		switch js.Status {
		case gen.Pending, gen.Running:
			st.RetryAfter = c.retryAfter(resp)
		case gen.Done: // the service answers 303 for a done job; a 200 saying done is read the same way
			if js.Links.Result != nil {
				u, err := resp.Request.URL.Parse(*js.Links.Result)
				if err != nil {
					return nil, fmt.Errorf("client: job %s: bad result link %q: %w", st.ID, *js.Links.Result, err)
				}
				st.Done, st.ResultURL = true, u.String()
			}
		}
		return st, nil
	case http.StatusSeeOther:
		loc, err := location(resp)
		if err != nil {
			return nil, err
		}
		st := &Status{ID: jobIDOf(resp.Request.URL), URL: resp.Request.URL.String(), State: gen.Done, Done: true, ResultURL: loc.String()}
		if t, err := http.ParseTime(resp.Header.Get("Expires")); err == nil {
			st.Expires = t
		}
		return st, nil
	}
	return nil, problemFrom(resp, body, c.now())
}

// Cancel cancels job id for good if it is pending or running: State canceled, or, when the worker has
// not confirmed yet, the current status with Job.CancelRequested set and RetryAfter. The job's record
// stays (Delete removes it). Canceling a canceled job is harmless and answers the same; a job that
// already finished as done or failed is left as it is, and Cancel returns a 409 *ProblemError of type
// /problems/job-finished.
func (c *Client) Cancel(ctx context.Context, id string) (*Status, error) {
	jid, err := parseID(id)
	if err != nil {
		return nil, err
	}
	resp, err := c.api.CancelReport(ctx, jid)
	resp, body, err := exchange(ctx, resp, err)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusAccepted:
		var js gen.JobStatus
		if err := decodeJSON(resp, body, &js); err != nil {
			return nil, err
		}
		st := &Status{ID: js.Id.String(), URL: statusURL(resp.Request.URL, &js), State: js.Status, Job: &js}
		if resp.StatusCode == http.StatusAccepted {
			st.RetryAfter = c.retryAfter(resp)
		}
		return st, nil
	}
	return nil, problemFrom(resp, body, c.now())
}

// Delete deletes finished job id (done, failed or canceled) and its report; the id answers 410 Gone from
// then on. A pending or running job is not deleted: Delete returns a 409 *ProblemError of type
// /problems/job-not-finished, and the job must be canceled first.
func (c *Client) Delete(ctx context.Context, id string) error {
	jid, err := parseID(id)
	if err != nil {
		return err
	}
	resp, err := c.api.DeleteReport(ctx, jid)
	resp, body, err := exchange(ctx, resp, err)
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusNoContent {
		return nil
	}
	return problemFrom(resp, body, c.now())
}

// statusURL is job js's status URL, absolute: its self link, resolved against the URL that answered.
func statusURL(answered *url.URL, js *gen.JobStatus) string {
	if self, err := url.Parse(js.Links.Self); err == nil && js.Links.Self != "" {
		return answered.ResolveReference(self).String()
	}
	return answered.String()
}

// replayed reports whether a submission's answer is an idempotent replay.
func replayed(resp *http.Response) bool { return resp.Header.Get("Idempotent-Replayed") == "true" }

// retryAfter is the Retry-After of resp, or DefaultRetryAfter when it has none that can be read.
func (c *Client) retryAfter(resp *http.Response) time.Duration {
	if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), c.now()); ok {
		return d
	}
	return DefaultRetryAfter
}

// hold is how long to ask the server to hold a request (Prefer: wait): up to limit, no longer than ctx
// has left or the HTTP client waits for an answer, in whole seconds. Zero means do not ask.
func (c *Client) hold(ctx context.Context, limit time.Duration) time.Duration {
	d := limit
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl))
	}
	if t := c.http.Timeout; t > 0 {
		d = min(d, t-answerMargin)
	}
	return max(d.Truncate(time.Second), 0)
}
