package impl_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/httpapi"
	"github.com/reportd/reportd/internal/redistest"
)

// TestCreateAccepted submits well-formed ranges with no worker running: each is accepted as a pending job
// whose status URL answers the same job.
func TestCreateAccepted(t *testing.T) {
	t.Parallel()
	type want struct{ From, To string }
	cases := []struct {
		name        string
		body        string
		contentType string
		want        want
	}{
		{name: "create-202", body: `{"range":"2026-Q1"}`, want: want{"2026-01-01", "2026-03-31"}},
		{name: "create-202-q4", body: `{"range":"2026-Q4"}`, want: want{"2026-10-01", "2026-12-31"}},
		{name: "create-202-month", body: `{"range":"2026-02"}`, want: want{"2026-02-01", "2026-02-28"}},
		{name: "create-202-leap-month", body: `{"range":"2024-02"}`, want: want{"2024-02-01", "2024-02-29"}},
		{name: "create-202-span-over-new-year", body: `{"range":"2025-12-31..2026-01-01"}`, want: want{"2025-12-31", "2026-01-01"}},
		{name: "create-202-one-day", body: `{"range":"2026-05-05..2026-05-05"}`, want: want{"2026-05-05", "2026-05-05"}},
		{name: "create-202-single-day", body: `{"range":"2025-01-01"}`, want: want{"2025-01-01", "2025-01-01"}},
		{name: "create-202-lower-case-quarter", body: `{"range":"2026-q1"}`, want: want{"2026-01-01", "2026-03-31"}},
		{name: "create-202-366-days", body: `{"range":"2026-01-01..2027-01-01"}`, want: want{"2026-01-01", "2027-01-01"}},
		{name: "create-202-charset", body: `{"range":"2026-Q1"}`, contentType: "application/json; charset=utf-8", want: want{"2026-01-01", "2026-03-31"}},
		{name: "create-202-exactly-64KiB", body: `{"range":"2026-Q1"}` + strings.Repeat(" ", httpapi.MaxBodyBytes-len(`{"range":"2026-Q1"}`)), want: want{"2026-01-01", "2026-03-31"}},
	}
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		h := newHarness(t, b, setup{})
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				ct := tc.contentType
				if ct == "" {
					ct = appJSON
				}
				before := time.Now().Add(-time.Second)
				r := h.doValid(t, h.request(t, http.MethodPost, "/v1/reports", strings.NewReader(tc.body), "Content-Type", ct))
				after := time.Now().Add(time.Second)
				if r.Status != http.StatusAccepted {
					t.Fatalf("answered %s", r)
				}
				loc := r.Header.Get("Location")
				id := locationID(t, loc)
				if n, err := retryAfter(r.Header); err != nil || n < 1 {
					t.Errorf("Retry-After: %v", err)
				}
				if mt := r.mediaType(); mt != appJSON {
					t.Errorf("Content-Type %q, want %s", mt, appJSON)
				}
				s := r.jobStatus(t)
				checkNewJob(t, s, id, loc, tc.want.From, tc.want.To, before, after)

				st := h.get(t, loc)
				if st.Status != http.StatusOK {
					t.Fatalf("GET %s answered %s", loc, st)
				}
				s2 := st.jobStatus(t)
				if diff := cmp.Diff(s, s2); diff != "" {
					t.Errorf("the status URL answers another job than the 202 (-202 +status):\n%s", diff)
				}
			})
		}
		t.Run("create-202-ids-unique", func(t *testing.T) {
			t.Parallel()
			a, b := h.create(t, "2026-Q1"), h.create(t, "2026-Q1")
			if a == b {
				t.Errorf("two jobs got the same id %s", a)
			}
		})
	})
}

// checkNewJob checks a job that no worker has touched.
func checkNewJob(t *testing.T, s gen.JobStatus, id, loc, from, to string, before, after time.Time) {
	t.Helper()
	if s.Id.String() != id {
		t.Errorf("id %s, Location names %s", s.Id, id)
	}
	if s.Status != gen.Pending {
		t.Errorf("status %q, want pending", s.Status)
	}
	if s.Progress != 0 {
		t.Errorf("progress %v, want 0", s.Progress)
	}
	if got := [2]string{s.Range.From.String(), s.Range.To.String()}; got != [2]string{from, to} {
		t.Errorf("range %v, want %s..%s", got, from, to)
	}
	if s.CreatedAt.Before(before) || s.CreatedAt.After(after) {
		t.Errorf("created_at %s is not about now (%s..%s)", s.CreatedAt, before, after)
	}
	if s.Links.Self != loc || s.Links.Result != nil {
		t.Errorf("links %+v, want self %s and no result", s.Links, loc)
	}
	if s.StartedAt != nil || s.FinishedAt != nil || s.ExpiresAt != nil || s.Attempt != nil || s.Error != nil {
		t.Errorf("a job that never ran has started_at/finished_at/expires_at/attempt/error: %+v", s)
	}
}
