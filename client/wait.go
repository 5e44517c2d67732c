package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/reportd/reportd/gen"
)

// defaultHold is how long Wait asks the server to hold each read when ctx has no deadline.
const defaultHold = 30 * time.Second

// maxUnavailable is how many answers in a row that ask for a retry (503, 429) Wait sits out before it
// gives up with the last one.
const maxUnavailable = 5

// Result is the end of a job that is done: its report.
type Result struct {
	// ID is the job's id.
	ID string
	// URL is the report's URL, absolute.
	URL string
	// Report is the report.
	Report *gen.Report
	// JSON is the report as the service sent it, byte for byte (its keys in the service's order, which
	// Report, re-encoded, would not keep).
	JSON []byte
	// Polls is how many times Wait read the status URL.
	Polls int
}

// Wait follows the job at statusURL (Job.StatusURL, or a path such as "/v1/reports/{id}") until it
// ends, and returns its report.
//
// Each read asks the server to hold it until the job ends (Prefer: wait=N, N the time ctx has left up
// to 60 s, or 30 s without a deadline; see WithMaxHold), so a job that finishes is seen at once;
// between reads Wait sleeps as long as the answer's Retry-After says (delay-seconds or HTTP-date;
// DefaultRetryAfter if it has none). The 303 See Other of a done job is read, not followed: Wait then
// GETs the report's JSON. onProgress, if not nil, is called with every status read, on Wait's
// goroutine; with WithProgressPolling it sees the job about once a hold instead of once a Retry-After.
//
// A job that failed or was canceled ends Wait with a *JobError; an error answer with a *ProblemError
// (a 503 or 429 is retried after its Retry-After a few times first). When ctx ends, Wait returns
// ctx.Err() at once.
func (c *Client) Wait(ctx context.Context, statusURL string, onProgress func(gen.JobStatus)) (*Result, error) {
	ref, err := url.Parse(statusURL)
	if err != nil {
		return nil, fmt.Errorf("client: status URL: %w", err)
	}
	limit := min(defaultHold, c.maxHold)
	if _, ok := ctx.Deadline(); ok {
		limit = min(maxHold, c.maxHold)
	}
	polls, unavailable := 0, 0
	for {
		req, err := c.get(ctx, ref, "")
		if err != nil {
			return nil, err
		}
		if hold := c.hold(ctx, limit); hold > 0 {
			req.Header.Set("Prefer", fmt.Sprintf("wait=%d", int(hold/time.Second)))
		}
		polls++
		resp, err := c.http.Do(req)
		st, err := c.readStatus(exchange(ctx, resp, err))
		var pe *ProblemError
		switch {
		case errors.As(err, &pe) && retryable(pe.Status) && unavailable < maxUnavailable:
			unavailable++
			if err := c.sleep(ctx, orDefault(pe.RetryAfter, DefaultRetryAfter)); err != nil {
				return nil, err
			}
			continue
		case err != nil:
			return nil, err
		}
		unavailable = 0
		if st.Job != nil && onProgress != nil {
			onProgress(*st.Job)
		}
		if st.Done {
			res, err := c.report(ctx, st.ResultURL)
			if err != nil {
				return nil, err
			}
			res.Polls = polls
			return res, nil
		}
		if st.State == gen.Failed || st.State == gen.Canceled || st.State == gen.Done {
			return nil, &JobError{Job: *st.Job, Problem: st.Job.Error}
		}
		if c.progressPolling {
			continue // the read was held up to maxHold: the next follows at once
		}
		if err := c.sleep(ctx, st.RetryAfter); err != nil {
			return nil, err
		}
	}
}

// report GETs a done job's report at resultURL.
func (c *Client) report(ctx context.Context, resultURL string) (*Result, error) {
	ref, err := url.Parse(resultURL)
	if err != nil {
		return nil, fmt.Errorf("client: result URL: %w", err)
	}
	req, err := c.get(ctx, ref, "application/json")
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	resp, body, err := exchange(ctx, resp, err)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, problemFrom(resp, body, c.now())
	}
	var rep gen.Report
	if err := decodeJSON(resp, body, &rep); err != nil {
		return nil, err
	}
	return &Result{ID: rep.Id.String(), URL: resp.Request.URL.String(), Report: &rep, JSON: body}, nil
}

// retryable reports whether an error answer asks to be retried later.
func retryable(status int) bool {
	return status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests
}

// orDefault is d, or fallback when d is zero.
func orDefault(d, fallback time.Duration) time.Duration {
	if d == 0 {
		return fallback
	}
	return d
}

// sleep waits d, or until ctx ends (then it returns ctx.Err()).
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
