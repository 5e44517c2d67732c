package client

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/reportd/reportd/gen"
)

// gap is the time between the arrivals of requests i-1 and i.
func gap(t *testing.T, reqs []seen, i int) time.Duration {
	t.Helper()
	if len(reqs) <= i {
		t.Fatalf("the fake saw %d requests, want at least %d", len(reqs), i+1)
	}
	return reqs[i].at.Sub(reqs[i-1].at)
}

// TestWaitHonoursRetryAfter: the second status read comes no earlier than the first answer asked, with
// Retry-After as delay-seconds, as an HTTP-date, or absent or unreadable (then DefaultRetryAfter).
func TestWaitHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	date := time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		retryAfter string
		now        time.Time // the client's clock, for the HTTP-date
		want       time.Duration
	}{
		{name: "seconds", retryAfter: "1", want: time.Second},
		{name: "http-date", retryAfter: date.Format(http.TimeFormat), now: date.Add(-1500 * time.Millisecond), want: 1500 * time.Millisecond},
		{name: "absent", want: DefaultRetryAfter},
		{name: "unreadable", retryAfter: "soon", want: DefaultRetryAfter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, status("running", 0.5, tt.retryAfter), seeOther, report)
			c := f.client()
			if !tt.now.IsZero() {
				c.now = func() time.Time { return tt.now }
			}
			res, err := c.Wait(context.Background(), "/v1/reports/"+jobID, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Polls != 2 {
				t.Errorf("Polls = %d, want 2", res.Polls)
			}
			const slack = 700 * time.Millisecond
			if got := gap(t, f.seen(), 1); got < tt.want || got > tt.want+slack {
				t.Errorf("second read came %s after the first, want %s (Retry-After %q), and not much later", got, tt.want, tt.retryAfter)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header string
		want   time.Duration
		ok     bool
	}{
		{name: "seconds", header: "2", want: 2 * time.Second, ok: true},
		{name: "seconds-spaced", header: " 30 ", want: 30 * time.Second, ok: true},
		{name: "zero", header: "0", want: 0, ok: true},
		{name: "imf-fixdate", header: "Wed, 01 Apr 2026 10:01:30 GMT", want: 90 * time.Second, ok: true},
		{name: "rfc850-date", header: "Wednesday, 01-Apr-26 10:00:05 GMT", want: 5 * time.Second, ok: true},
		{name: "asctime-date", header: "Wed Apr  1 10:00:07 2026", want: 7 * time.Second, ok: true},
		{name: "past-date", header: "Wed, 01 Apr 2026 09:00:00 GMT", want: 0, ok: true},
		{name: "absent", header: "", ok: false},
		{name: "negative", header: "-1", ok: false},
		{name: "signed", header: "+1", ok: false},
		{name: "fraction", header: "1.5", ok: false},
		{name: "word", header: "soon", ok: false},
		{name: "huge", header: "99999999999999999999", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := parseRetryAfter(tt.header, now)
			if got != tt.want || ok != tt.ok {
				t.Errorf("parseRetryAfter(%q) = %s, %v; want %s, %v", tt.header, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestWaitSendsPreferWait: every read asks the server to hold it, as long as the deadline (or the HTTP
// client's timeout) allows, in whole seconds.
func TestWaitSendsPreferWait(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		deadline time.Duration // 0: none
		timeout  time.Duration // the http.Client's; 0: the default
		opts     []Option
		want     string
	}{
		{name: "no-deadline", want: "wait=30"},
		{name: "far-deadline", deadline: time.Hour, want: "wait=60"},
		{name: "near-deadline", deadline: 5500 * time.Millisecond, want: "wait=5"},
		{name: "imminent-deadline", deadline: 800 * time.Millisecond, want: ""},
		{name: "short-client-timeout", timeout: 12 * time.Second, want: "wait=7"},
		{name: "max-hold", opts: []Option{WithMaxHold(2 * time.Second)}, want: "wait=2"},
		{name: "max-hold-with-deadline", deadline: time.Hour, opts: []Option{WithMaxHold(2 * time.Second)}, want: "wait=2"},
		{name: "max-hold-zero", opts: []Option{WithMaxHold(0)}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, seeOther, report)
			opts := tt.opts
			if tt.timeout > 0 {
				opts = append(opts, WithHTTPClient(&http.Client{Timeout: tt.timeout}))
			}
			ctx := context.Background()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			if _, err := f.client(opts...).Wait(ctx, "/v1/reports/"+jobID, nil); err != nil {
				t.Fatal(err)
			}
			if got := f.seen()[0].header.Get("Prefer"); got != tt.want {
				t.Errorf("Prefer = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestWaitFollowsSeeOtherToReport: the 303 is read as "done" (never followed by the HTTP client, which
// would decode the report as a status) and Wait GETs the report's JSON itself, once.
func TestWaitFollowsSeeOtherToReport(t *testing.T) {
	t.Parallel()
	var progress []gen.JobState
	f := newFake(t, status("pending", 0, "1"), seeOther, report)
	c := f.client()
	res, err := c.Wait(context.Background(), c.StatusURL(jobID), func(s gen.JobStatus) { progress = append(progress, s.Status) })
	if err != nil {
		t.Fatal(err)
	}
	if res.ID != jobID || res.URL != f.srv.URL+"/v1/reports/"+jobID+"/result" || res.Polls != 2 {
		t.Errorf("Result = {ID %s, URL %s, Polls %d}, want job %s's result after 2 polls", res.ID, res.URL, res.Polls, jobID)
	}
	if res.Report.Orders != 30 || res.Report.RevenueCents != 123456 || len(res.Report.ByDay) != 2 {
		t.Errorf("Report = %+v, want the fake's", res.Report)
	}
	if diff := cmp.Diff([]gen.JobState{gen.Pending}, progress); diff != "" {
		t.Errorf("onProgress calls (-want +got):\n%s", diff)
	}
	type req struct{ Method, Path, Accept string }
	var got []req
	for _, s := range f.seen() {
		got = append(got, req{s.method, s.path, s.header.Get("Accept")})
	}
	want := []req{
		{"GET", "/v1/reports/" + jobID, ""},
		{"GET", "/v1/reports/" + jobID, ""},
		{"GET", "/v1/reports/" + jobID + "/result", "application/json"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

// TestStatusReadsSeeOther: one status read of a done job is a Status that says so, not the report
// decoded as a status, and the report is not fetched.
func TestStatusReadsSeeOther(t *testing.T) {
	t.Parallel()
	f := newFake(t, seeOther, report)
	st, err := f.client().Status(context.Background(), jobID)
	if err != nil {
		t.Fatal(err)
	}
	want := &Status{
		ID: jobID, URL: f.srv.URL + "/v1/reports/" + jobID, State: gen.Done, Done: true,
		ResultURL: f.srv.URL + "/v1/reports/" + jobID + "/result",
		Expires:   time.Date(2026, 4, 2, 10, 0, 0, 0, time.UTC),
	}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("Status (-want +got):\n%s", diff)
	}
	if n := len(f.seen()); n != 1 {
		t.Errorf("the fake saw %d requests, want 1 (the 303 must not be followed)", n)
	}
}

// TestWaitStopsAtDeadline: Wait returns ctx's error at its deadline, whether it is sleeping out a long
// Retry-After or waiting for an answer the server holds back.
func TestWaitStopsAtDeadline(t *testing.T) {
	t.Parallel()
	held := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		status("running", 0.1, "1")(w, r)
	}
	tests := []struct {
		name   string
		script []http.HandlerFunc
	}{
		{name: "long-retry-after", script: []http.HandlerFunc{status("running", 0.1, "30")}},
		{name: "held-answer", script: []http.HandlerFunc{held}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, tt.script...)
			const deadline = 300 * time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			res, err := f.client().Wait(ctx, "/v1/reports/"+jobID, nil)
			took := time.Since(start)
			if err != context.DeadlineExceeded {
				t.Errorf("Wait = %+v, %v; want context.DeadlineExceeded", res, err)
			}
			if took > deadline+200*time.Millisecond {
				t.Errorf("Wait returned %s after it started, want about %s (its deadline)", took, deadline)
			}
		})
	}
}

// TestWaitEndsWithJobError: a job that failed or was canceled ends Wait with a *JobError carrying its
// status and, for a failure, its problem; onProgress sees that status too.
func TestWaitEndsWithJobError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		end       http.HandlerFunc
		state     gen.JobState
		wantError string
	}{
		{name: "failed", end: failed, state: gen.Failed,
			wantError: "job " + jobID + " failed: Report failed: The job failed on every attempt it was given. Submitting it again may help."},
		{name: "canceled", end: status("canceled", 0.3, ""), state: gen.Canceled, wantError: "job " + jobID + " was canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, status("running", 0.2, "0"), tt.end)
			var last gen.JobState
			_, err := f.client().Wait(context.Background(), "/v1/reports/"+jobID, func(s gen.JobStatus) { last = s.Status })
			var je *JobError
			if !errors.As(err, &je) {
				t.Fatalf("Wait = %v, want a *JobError", err)
			}
			if je.Job.Status != tt.state || err.Error() != tt.wantError {
				t.Errorf("JobError = %s (%q), want %s (%q)", je.Job.Status, err, tt.state, tt.wantError)
			}
			if (tt.state == gen.Failed) != (je.Problem != nil) || (je.Problem != nil && je.Problem.Type != "/problems/report-failed") {
				t.Errorf("JobError.Problem = %+v", je.Problem)
			}
			if last != tt.state {
				t.Errorf("onProgress last saw %s, want %s", last, tt.state)
			}
			var pe *ProblemError
			if errors.As(err, &pe) {
				t.Errorf("a job's failure is also a *ProblemError (%v): callers could not tell it from an API error", pe)
			}
		})
	}
}

// TestWaitRetriesUnavailable: a 503 is sat out for its Retry-After, a few times, and then given up on.
func TestWaitRetriesUnavailable(t *testing.T) {
	t.Parallel()
	unavailable := problem(http.StatusServiceUnavailable, "unavailable", "Service unavailable", "The job store cannot be reached; retry shortly.")
	t.Run("recovers", func(t *testing.T) {
		t.Parallel()
		f := newFake(t, unavailable, seeOther, report)
		res, err := f.client().Wait(context.Background(), "/v1/reports/"+jobID, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Polls != 2 {
			t.Errorf("Polls = %d, want 2", res.Polls)
		}
		if got := gap(t, f.seen(), 1); got < time.Second {
			t.Errorf("the read after a 503 with Retry-After: 1 came %s later", got)
		}
	})
	t.Run("gives-up", func(t *testing.T) {
		t.Parallel()
		f := newFake(t, unavailable)
		c := f.client()
		var slept []time.Duration
		c.sleep = func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }
		_, err := c.Wait(context.Background(), "/v1/reports/"+jobID, nil)
		var pe *ProblemError
		if !errors.As(err, &pe) || pe.Status != http.StatusServiceUnavailable {
			t.Fatalf("Wait = %v, want the 503's problem", err)
		}
		if n := len(f.seen()); n != maxUnavailable+1 {
			t.Errorf("the fake saw %d reads, want %d", n, maxUnavailable+1)
		}
		if diff := cmp.Diff([]time.Duration{time.Second, time.Second, time.Second, time.Second, time.Second}, slept); diff != "" {
			t.Errorf("sleeps between reads (-want +got):\n%s", diff)
		}
	})
}

// TestWaitProgressPolling: with WithProgressPolling, Wait reads a running job again as soon as a held
// read returns, so a display sees it move every hold, not once a Retry-After (30 s here); without it,
// Wait sleeps the Retry-After between reads.
func TestWaitProgressPolling(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		opts      []Option
		wantHold  string
		wantSleep []time.Duration
	}{
		{"progress", []Option{WithProgressPolling(time.Second)}, "wait=1", nil},
		{"plain", []Option{WithMaxHold(time.Second)}, "wait=1", []time.Duration{30 * time.Second, 30 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, status("running", 0.2, "30"), status("running", 0.5, "30"), seeOther, report)
			c := f.client(tc.opts...)
			var slept []time.Duration
			c.sleep = func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }
			var seen []float64
			if _, err := c.Wait(context.Background(), "/v1/reports/"+jobID, func(s gen.JobStatus) { seen = append(seen, s.Progress) }); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantSleep, slept, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("sleeps between reads (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]float64{0.2, 0.5}, seen); diff != "" {
				t.Errorf("progress seen (-want +got):\n%s", diff)
			}
			if got := f.seen()[0].header.Get("Prefer"); got != tc.wantHold {
				t.Errorf("Prefer = %q, want %q", got, tc.wantHold)
			}
		})
	}
}
