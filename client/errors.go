package client

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/reportd/reportd/gen"
)

// ProblemError is an error answer of the API: the RFC 9457 problem it carried, or, for an answer that
// was no problem (a proxy's 502 page, say), one made from its HTTP status with type "about:blank".
type ProblemError struct {
	gen.Problem
	// RetryAfter is the delay the answer asked for before trying again (a 503 sends one), or zero.
	RetryAfter time.Duration
}

// Error is the problem's title and detail, which is what a person can act on.
func (e *ProblemError) Error() string {
	if e.Detail == "" {
		return e.Title
	}
	return e.Title + ": " + e.Detail
}

// JobError ends Wait for a job that finished without a report: it failed, or it was canceled.
type JobError struct {
	// Job is the status that said so; Job.Status is gen.Failed or gen.Canceled.
	Job gen.JobStatus
	// Problem is why a failed job failed (Job.Error), or nil.
	Problem *gen.Problem
}

func (e *JobError) Error() string {
	if e.Job.Status == gen.Failed && e.Problem != nil {
		return fmt.Sprintf("job %s failed: %s: %s", e.Job.Id, e.Problem.Title, e.Problem.Detail)
	}
	if e.Job.Status == gen.Canceled {
		return fmt.Sprintf("job %s was canceled", e.Job.Id)
	}
	return fmt.Sprintf("job %s %s", e.Job.Id, e.Job.Status)
}

// problemFrom turns an answer the caller did not expect into an error: a *ProblemError for 4xx and 5xx,
// a plain error for anything else (a 2xx or 3xx an operation does not define).
func problemFrom(resp *http.Response, body []byte, now time.Time) error {
	if resp.StatusCode < 400 {
		return fmt.Errorf("client: %s %s answered %s, which this operation does not define", resp.Request.Method, resp.Request.URL, resp.Status)
	}
	e := &ProblemError{}
	if isJSON(resp.Header.Get("Content-Type")) {
		_ = json.Unmarshal(body, &e.Problem) // an unreadable problem is filled in from the status below
	}
	if e.Title == "" {
		e.Type, e.Title = "about:blank", http.StatusText(resp.StatusCode)
		if e.Title == "" {
			e.Title = resp.Status
		}
		if e.Detail == "" {
			e.Detail = fmt.Sprintf("%s %s answered %s", resp.Request.Method, resp.Request.URL, snippet(body))
		}
	}
	if e.Status == 0 {
		e.Status = resp.StatusCode
	}
	if e.Type == "" {
		e.Type = "about:blank"
	}
	if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), now); ok {
		e.RetryAfter = d
	}
	return e
}

// isJSON reports whether a Content-Type is JSON (application/json, application/problem+json, ...).
func isJSON(contentType string) bool {
	media, _, err := mime.ParseMediaType(contentType)
	return err == nil && (media == "application/json" || strings.HasSuffix(media, "+json"))
}

// snippet is the start of a body that is not a problem, for a detail a person can read.
func snippet(body []byte) string {
	const limit = 200
	s := strings.Join(strings.Fields(string(body)), " ")
	if s == "" {
		return "an empty body"
	}
	if len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// decodeJSON decodes a JSON answer into v, saying which answer it was when it cannot.
// readOK finishes an exchange that must answer 200 with JSON: it decodes the body into a T, or turns
// any other answer into its error.
func readOK[T any](ctx context.Context, c *Client, resp *http.Response, err error) (*http.Response, *T, error) {
	resp, body, err := exchange(ctx, resp, err)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, problemFrom(resp, body, c.now())
	}
	var v T
	if err := decodeJSON(resp, body, &v); err != nil {
		return nil, nil, err
	}
	return resp, &v, nil
}

func decodeJSON(resp *http.Response, body []byte, v any) error {
	if !isJSON(resp.Header.Get("Content-Type")) {
		return fmt.Errorf("client: %s %s answered %s as %q, want JSON", resp.Request.Method, resp.Request.URL, resp.Status, resp.Header.Get("Content-Type"))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("client: decode %s of %s %s: %w", resp.Status, resp.Request.Method, resp.Request.URL, err)
	}
	return nil
}
