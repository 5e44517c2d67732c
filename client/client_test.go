package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reportd/reportd/gen"
)

func TestNewRefusesBadBaseURL(t *testing.T) {
	t.Parallel()
	for _, base := range []string{"", "localhost:8080", "ftp://example.com", "http://", "http://[::1"} {
		if _, err := New(base); err == nil {
			t.Errorf("New(%q) succeeded, want an error", base)
		}
	}
}

// TestWithHTTPClientNeverFollows: a caller's http.Client is used, but a copy that does not follow
// redirects, and the caller's own is left as it was.
func TestWithHTTPClientNeverFollows(t *testing.T) {
	t.Parallel()
	f := newFake(t, seeOther, report)
	hc := &http.Client{Timeout: 20 * time.Second}
	st, err := f.client(WithHTTPClient(hc)).Status(context.Background(), jobID)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Done || len(f.seen()) != 1 {
		t.Errorf("Status = %+v after %d requests, want the 303 read as done after 1", st, len(f.seen()))
	}
	if hc.CheckRedirect != nil {
		t.Error("WithHTTPClient changed the caller's http.Client")
	}
}

func TestRequestsCarryUserAgentAndAPIKey(t *testing.T) {
	t.Parallel()
	f := newFake(t, status("running", 0.5, "1"))
	if _, err := f.client(WithUserAgent("reportctl/test"), WithAPIKey("k3y")).Status(context.Background(), jobID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.client().Status(context.Background(), jobID); err != nil {
		t.Fatal(err)
	}
	reqs := f.seen()
	if ua, auth := reqs[0].header.Get("User-Agent"), reqs[0].header.Get("Authorization"); ua != "reportctl/test" || auth != "Bearer k3y" {
		t.Errorf("with options: User-Agent %q, Authorization %q; want reportctl/test, Bearer k3y", ua, auth)
	}
	if ua, auth := reqs[1].header.Get("User-Agent"), reqs[1].header.Get("Authorization"); ua != DefaultUserAgent || auth != "" {
		t.Errorf("without options: User-Agent %q, Authorization %q; want %s and none", ua, auth, DefaultUserAgent)
	}
}

func TestCreate(t *testing.T) {
	t.Parallel()
	accepted := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Location", "/v1/reports/"+jobID)
		w.Header().Set("Retry-After", "2")
		writeJSON(w, http.StatusAccepted, "application/json", jobStatus("pending", 0, nil))
	}
	tests := []struct {
		name       string
		answer     http.HandlerFunc
		opts       CreateOptions
		want       func(base string) *Job
		wantHeader map[string]string
		wantBody   string
		wantErr    string
	}{
		{
			name: "202", answer: accepted,
			want: func(base string) *Job {
				return &Job{ID: jobID, StatusURL: base + "/v1/reports/" + jobID, RetryAfter: 2 * time.Second}
			},
			wantHeader: map[string]string{"Content-Type": "application/json", "Prefer": "", "Idempotency-Key": ""},
			wantBody:   `{"range":"2026-01"}`,
		},
		{
			name: "202-with-options", answer: accepted,
			opts: CreateOptions{IdempotencyKey: "order-42", CallbackURL: "https://example.com/hook", Wait: 5 * time.Second},
			want: func(base string) *Job {
				return &Job{ID: jobID, StatusURL: base + "/v1/reports/" + jobID, RetryAfter: 2 * time.Second}
			},
			wantHeader: map[string]string{"Prefer": "respond-async, wait=5", "Idempotency-Key": "order-42"},
			wantBody:   `{"callback_url":"https://example.com/hook","range":"2026-01"}`,
		},
		{
			name: "303", answer: seeOther, opts: CreateOptions{Wait: 90 * time.Second},
			want: func(base string) *Job {
				return &Job{ID: jobID, StatusURL: base + "/v1/reports/" + jobID, Done: true, ResultURL: base + "/v1/reports/" + jobID + "/result"}
			},
			wantHeader: map[string]string{"Prefer": "respond-async, wait=60"},
			wantBody:   `{"range":"2026-01"}`,
		},
		{
			name:    "422",
			answer:  problem(http.StatusUnprocessableEntity, "range-unservable", "Range cannot be served", "/range cannot be served: month 13 does not exist."),
			wantErr: "Range cannot be served: /range cannot be served: month 13 does not exist.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, tt.answer)
			job, err := f.client().Create(context.Background(), "2026-01", tt.opts)
			if tt.wantErr != "" {
				var pe *ProblemError
				if !errors.As(err, &pe) || err.Error() != tt.wantErr {
					t.Fatalf("Create = %+v, %v; want a *ProblemError %q", job, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (job.Status != nil) != !job.Done || (job.Status != nil && job.Status.Status != gen.Pending) {
				t.Errorf("Job.Status = %+v, want the 202's pending status (nil for a 303)", job.Status)
			}
			job.Status = nil
			if diff := cmp.Diff(tt.want(f.srv.URL), job); diff != "" {
				t.Errorf("Job (-want +got):\n%s", diff)
			}
			req := f.seen()[0]
			if req.method != http.MethodPost || req.path != "/v1/reports" {
				t.Errorf("request = %s %s, want POST /v1/reports", req.method, req.path)
			}
			for k, v := range tt.wantHeader {
				if got := req.header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if got := strings.TrimSpace(req.body); got != tt.wantBody {
				t.Errorf("body = %s, want %s", got, tt.wantBody)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	stopping := func(w http.ResponseWriter, _ *http.Request) {
		st := jobStatus("running", 0.5, nil)
		st["cancel_requested"] = true
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusAccepted, "application/json", st)
	}
	finished := func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusConflict, "application/problem+json", map[string]any{
			"type": "/problems/job-finished", "title": "Job already finished", "status": 409, "detail": "Job " + jobID + " is already done, so there is nothing to cancel; it is unchanged."})
	}
	tests := []struct {
		name        string
		answer      http.HandlerFunc
		wantState   gen.JobState
		wantRetry   time.Duration
		wantCancel  bool
		wantProblem string
	}{
		{name: "200-canceled", answer: status("canceled", 0.5, ""), wantState: gen.Canceled},
		{name: "202-stopping", answer: stopping, wantState: gen.Running, wantRetry: time.Second, wantCancel: true},
		{name: "409-finished", answer: finished, wantProblem: "/problems/job-finished"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, tt.answer)
			st, err := f.client().Cancel(context.Background(), jobID)
			if req := f.seen()[0]; req.method != http.MethodPost || req.path != "/v1/reports/"+jobID+"/cancel" {
				t.Errorf("request = %s %s", req.method, req.path)
			}
			if tt.wantProblem != "" {
				var pe *ProblemError
				if !errors.As(err, &pe) || pe.Status != http.StatusConflict || pe.Type != tt.wantProblem {
					t.Fatalf("Cancel = %+v, %v; want a 409 %s problem", st, err, tt.wantProblem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.ID != jobID || st.State != tt.wantState || st.RetryAfter != tt.wantRetry {
				t.Errorf("Cancel = %+v, want state %q, retry after %s", st, tt.wantState, tt.wantRetry)
			}
			if want := f.srv.URL + "/v1/reports/" + jobID; st.URL != want {
				t.Errorf("Cancel's status URL = %s, want %s", st.URL, want)
			}
			if got := st.Job != nil && st.Job.CancelRequested != nil && *st.Job.CancelRequested; got != tt.wantCancel {
				t.Errorf("cancel_requested = %v, want %v", got, tt.wantCancel)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	deleted := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }
	running := func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusConflict, "application/problem+json", map[string]any{
			"type": "/problems/job-not-finished", "title": "Job not finished", "status": 409, "detail": "Job " + jobID + " is running, so it is not deleted; cancel it first."})
	}
	for name, tt := range map[string]struct {
		answer      http.HandlerFunc
		wantProblem string
	}{
		"204-deleted":      {answer: deleted},
		"409-not-finished": {answer: running, wantProblem: "/problems/job-not-finished"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, tt.answer)
			err := f.client().Delete(context.Background(), jobID)
			if req := f.seen()[0]; req.method != http.MethodDelete || req.path != "/v1/reports/"+jobID {
				t.Errorf("request = %s %s", req.method, req.path)
			}
			var pe *ProblemError
			switch {
			case tt.wantProblem == "" && err != nil:
				t.Errorf("Delete = %v, want nil", err)
			case tt.wantProblem != "" && (!errors.As(err, &pe) || pe.Type != tt.wantProblem):
				t.Errorf("Delete = %v, want a %s problem", err, tt.wantProblem)
			}
		})
	}
}

func TestResult(t *testing.T) {
	t.Parallel()
	f := newFake(t, report)
	rep, err := f.client().Result(context.Background(), jobID)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Id.String() != jobID || rep.Orders != 30 || len(rep.ByDay) != 2 || rep.ByDay[1].Date.String() != "2026-01-02" {
		t.Errorf("Result = %+v", rep)
	}
	if got := f.seen()[0].header.Get("Accept"); got != "application/json" {
		t.Errorf("Accept = %q, want application/json", got)
	}
}

// TestResultJSON: the report is written as the service sent it, its keys in the service's order and
// its spacing kept, not re-encoded from the decoded report (whose fields go in another order).
func TestResultJSON(t *testing.T) {
	t.Parallel()
	const body = `{"id":"` + jobID + `","range":{"from":"2026-01-01","to":"2026-01-01"},"orders":30,` +
		`"generated_at":"2026-01-02T00:00:00Z", "units":1,"revenue_cents":2,"by_region":[],"by_product":[],"by_day":[]}` + "\n"
	sent := raw(http.StatusOK, "application/json", body)
	f := newFake(t, sent)
	var buf bytes.Buffer
	if err := f.client().ResultJSON(context.Background(), jobID, &buf); err != nil {
		t.Fatal(err)
	}
	if buf.String() != body {
		t.Errorf("ResultJSON wrote\n%s\nwant, as sent,\n%s", &buf, body)
	}
	if got := f.seen()[0].header.Get("Accept"); got != "application/json" {
		t.Errorf("Accept = %q, want application/json", got)
	}
	// Wait's Result carries the same bytes.
	f = newFake(t, seeOther, sent)
	res, err := f.client().Wait(context.Background(), "/v1/reports/"+jobID, nil)
	if err != nil || string(res.JSON) != body || res.Report.Orders != 30 {
		t.Errorf("Wait = %+v, %v: want the report decoded, and its JSON as sent", res, err)
	}
}

func TestResultCSV(t *testing.T) {
	t.Parallel()
	const table = "date,orders,units,revenue_cents\n2026-01-01,10,20,23456\n2026-01-02,20,50,100000\n"
	f := newFake(t, raw(http.StatusOK, "text/csv; charset=utf-8", table))
	var buf bytes.Buffer
	if err := f.client().ResultCSV(context.Background(), jobID, &buf); err != nil {
		t.Fatal(err)
	}
	if buf.String() != table {
		t.Errorf("CSV = %q, want %q", buf.String(), table)
	}
	if got := f.seen()[0].header.Get("Accept"); got != "text/csv" {
		t.Errorf("Accept = %q, want text/csv", got)
	}
}

func TestResultCSVRefusesOtherMedia(t *testing.T) {
	t.Parallel()
	f := newFake(t, report)
	var buf bytes.Buffer
	err := f.client().ResultCSV(context.Background(), jobID, &buf)
	if err == nil || !strings.Contains(err.Error(), "want text/csv") || buf.Len() != 0 {
		t.Errorf("ResultCSV of a JSON answer = %v, wrote %d bytes; want an error and nothing written", err, buf.Len())
	}
}

// TestProblemErrors: every operation turns an error answer into a *ProblemError carrying its problem,
// and an answer that is no problem into one made from its status.
func TestProblemErrors(t *testing.T) {
	t.Parallel()
	notFound := problem(http.StatusNotFound, "job-not-found", "Job not found", "Job "+jobID+" was not found.")
	notDone := problem(http.StatusConflict, "job-not-done", "Job is not done", "Job "+jobID+" is running, so it has no report yet; poll /v1/reports/"+jobID+" until it answers 303.")
	badGateway := raw(http.StatusBadGateway, "text/html", "<html><body>upstream   down</body></html>")
	ops := map[string]func(*Client) error{
		"create": func(c *Client) error {
			_, err := c.Create(context.Background(), "2026-Q1", CreateOptions{})
			return err
		},
		"status": func(c *Client) error { _, err := c.Status(context.Background(), jobID); return err },
		"wait": func(c *Client) error {
			_, err := c.Wait(context.Background(), "/v1/reports/"+jobID, nil)
			return err
		},
		"result":      func(c *Client) error { _, err := c.Result(context.Background(), jobID); return err },
		"result-csv":  func(c *Client) error { return c.ResultCSV(context.Background(), jobID, &bytes.Buffer{}) },
		"result-json": func(c *Client) error { return c.ResultJSON(context.Background(), jobID, &bytes.Buffer{}) },
		"cancel":      func(c *Client) error { _, err := c.Cancel(context.Background(), jobID); return err },
		"delete":      func(c *Client) error { return c.Delete(context.Background(), jobID) },
	}
	tests := []struct {
		name   string
		answer http.HandlerFunc
		want   gen.Problem
		text   string
	}{
		{name: "404", answer: notFound,
			want: gen.Problem{Type: "/problems/job-not-found", Title: "Job not found", Status: 404, Detail: "Job " + jobID + " was not found."},
			text: "Job not found: Job " + jobID + " was not found."},
		{name: "409", answer: notDone,
			want: gen.Problem{Type: "/problems/job-not-done", Title: "Job is not done", Status: 409, Detail: "Job " + jobID + " is running, so it has no report yet; poll /v1/reports/" + jobID + " until it answers 303."},
			text: "Job is not done: Job " + jobID + " is running, so it has no report yet; poll /v1/reports/" + jobID + " until it answers 303."},
		{name: "502-not-a-problem", answer: badGateway,
			want: gen.Problem{Type: "about:blank", Title: "Bad Gateway", Status: 502},
			text: `Bad Gateway: `},
	}
	for _, tt := range tests {
		for op, call := range ops {
			t.Run(tt.name+"/"+op, func(t *testing.T) {
				t.Parallel()
				f := newFake(t, tt.answer)
				err := call(f.client())
				var pe *ProblemError
				if !errors.As(err, &pe) {
					t.Fatalf("%s = %v, want a *ProblemError", op, err)
				}
				got := pe.Problem
				got.Instance = nil
				if tt.want.Detail == "" {
					if !strings.Contains(got.Detail, `answered "<html><body>upstream down</body></html>"`) {
						t.Errorf("detail = %q, want the answer's method, URL and body", got.Detail)
					}
					got.Detail = ""
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("problem (-want +got):\n%s", diff)
				}
				if !strings.HasPrefix(err.Error(), tt.text) {
					t.Errorf("Error() = %q, want %q", err, tt.text)
				}
			})
		}
	}
}

func TestProblemErrorCarriesRetryAfter(t *testing.T) {
	t.Parallel()
	f := newFake(t, problem(http.StatusServiceUnavailable, "unavailable", "Service unavailable", "The job store cannot be reached; retry shortly."))
	_, err := f.client().Status(context.Background(), jobID)
	var pe *ProblemError
	if !errors.As(err, &pe) || pe.Status != 503 || pe.RetryAfter != time.Second {
		t.Fatalf("Status = %v, want a 503 problem asking to retry after 1s", err)
	}
	b, _ := json.Marshal(pe.Problem)
	if !strings.Contains(string(b), `"instance":"/v1/reports/`+jobID+`"`) {
		t.Errorf("problem lost its instance: %s", b)
	}
}

func TestBadJobIDIsRefusedBeforeSending(t *testing.T) {
	t.Parallel()
	f := newFake(t, report)
	c := f.client()
	for name, call := range map[string]func() error{
		"status": func() error { _, err := c.Status(context.Background(), "../admin"); return err },
		"result": func() error { _, err := c.Result(context.Background(), "42"); return err },
		"csv":    func() error { return c.ResultCSV(context.Background(), "", &bytes.Buffer{}) },
		"cancel": func() error { _, err := c.Cancel(context.Background(), "x"); return err },
		"delete": func() error { return c.Delete(context.Background(), "x") },
	} {
		if err := call(); err == nil || !strings.Contains(err.Error(), "not a job id") {
			t.Errorf("%s with a bad id = %v, want an error saying it is not a job id", name, err)
		}
	}
	if n := len(f.seen()); n != 0 {
		t.Errorf("the fake saw %d requests, want none", n)
	}
}

// TestCreateWaitsOutRateLimits: a submission refused with 429 is submitted again after the Retry-After
// the service sent, as long as WithMaxRateLimitWait allows in all; the Job says how often and how long.
func TestCreateWaitsOutRateLimits(t *testing.T) {
	t.Parallel()
	limited := func(ra string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", ra)
			problem(http.StatusTooManyRequests, "rate-limited", "Too many requests", "this client submits faster than its limit")(w, r)
		}
	}
	accepted := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Location", "/v1/reports/"+jobID)
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusAccepted, "application/json", jobStatus("pending", 0, nil))
	}
	t.Run("retried", func(t *testing.T) {
		t.Parallel()
		f := newFake(t, limited("2"), limited("3"), accepted)
		c := f.client()
		var slept []time.Duration
		c.sleep = func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }
		job, err := c.Create(context.Background(), "2026-Q1", CreateOptions{})
		if err != nil {
			t.Fatalf("Create = %v, want the job accepted on the third try", err)
		}
		if job.RateLimited != 2 || job.Throttled != 5*time.Second || len(f.seen()) != 3 {
			t.Errorf("job %+v after %d submissions; want 2 refusals waited out for 5s in all", job, len(f.seen()))
		}
		if diff := cmp.Diff([]time.Duration{2 * time.Second, 3 * time.Second}, slept); diff != "" {
			t.Errorf("waits (-want +got):\n%s", diff)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		t.Parallel()
		f := newFake(t, limited("20"))
		c := f.client(WithMaxRateLimitWait(30 * time.Second))
		c.sleep = func(context.Context, time.Duration) error { return nil }
		_, err := c.Create(context.Background(), "2026-Q1", CreateOptions{})
		var pe *ProblemError
		if !errors.As(err, &pe) || pe.Status != http.StatusTooManyRequests || pe.RetryAfter != 20*time.Second {
			t.Fatalf("Create = %v, want the 429 once waiting would pass the bound", err)
		}
		if n := len(f.seen()); n != 2 {
			t.Errorf("%d submissions, want 2: one wait of 20s fits in 30s, a second does not", n)
		}
	})
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		f := newFake(t, limited("1"), accepted)
		_, err := f.client(WithMaxRateLimitWait(0)).Create(context.Background(), "2026-Q1", CreateOptions{})
		if !errors.As(err, new(*ProblemError)) || len(f.seen()) != 1 {
			t.Errorf("Create with retrying off = %v after %d submissions, want the first 429", err, len(f.seen()))
		}
	})
}

// TestCreateSaysReplayed: a submission answered with Idempotent-Replayed: true is a replay.
func TestCreateSaysReplayed(t *testing.T) {
	t.Parallel()
	f := newFake(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Location", "/v1/reports/"+jobID)
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Idempotent-Replayed", "true")
		writeJSON(w, http.StatusAccepted, "application/json", jobStatus("pending", 0, nil))
	})
	job, err := f.client().Create(context.Background(), "2026-Q1", CreateOptions{IdempotencyKey: "k"})
	if err != nil || !job.Replayed {
		t.Errorf("Create = %+v, %v; want a replay", job, err)
	}
}
