package impl_test

import (
	"context"
	"fmt"
	"mime"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/testkit"
)

// TestReportFlow is the whole client journey through the generated client: submit, poll honouring
// Retry-After until 303, then read the report as JSON and as CSV.
func TestReportFlow(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		h := newHarness(t, b, setup{Worker: true})
		ctx := context.Background()
		c := h.genClient(t)

		before := time.Now()
		cr, err := c.CreateReportWithResponse(ctx, nil, gen.CreateReportJSONRequestBody{Range: "2026-Q1"})
		if err != nil {
			t.Fatal(err)
		}
		if cr.StatusCode() != http.StatusAccepted || cr.JSON202 == nil {
			t.Fatalf("create answered %d %s", cr.StatusCode(), cr.Body)
		}
		loc := cr.HTTPResponse.Header.Get("Location")
		id := locationID(t, loc)
		if n, err := retryAfter(cr.HTTPResponse.Header); err != nil || n < 1 {
			t.Errorf("202 Retry-After: %v", err)
		}
		if cr.JSON202.Status != gen.Pending || cr.JSON202.Id.String() != id {
			t.Errorf("202 body: status %q id %s, want pending %s", cr.JSON202.Status, cr.JSON202.Id, id)
		}

		// Poll through the generated client until the 303, every 200 ms: Retry-After (whole seconds
		// from 1) capped there.
		var done *gen.GetReportStatusResponse
		testkit.Eventually(t, 15*time.Second, 200*time.Millisecond, func() error {
			sr, err := c.GetReportStatusWithResponse(ctx, uuid.MustParse(id), nil)
			if err != nil {
				t.Fatal(err)
			}
			switch sr.StatusCode() {
			case http.StatusSeeOther:
				done = sr
				return nil
			case http.StatusOK:
				if s := sr.JSON200.Status; s != gen.Pending && s != gen.Running {
					t.Fatalf("status %q before done: %s", s, sr.Body)
				}
				return fmt.Errorf("job %s not done: %s", id, sr.Body)
			default:
				t.Fatalf("status answered %d %s", sr.StatusCode(), sr.Body)
				return nil
			}
		})
		resultLoc := done.HTTPResponse.Header.Get("Location")
		if resultLoc != loc+"/result" {
			t.Errorf("303 Location %q, want %s/result", resultLoc, loc)
		}
		if ra := done.HTTPResponse.Header.Get("Retry-After"); ra != "" {
			t.Errorf("303 has Retry-After %q", ra)
		}

		// JSON, as the generated client reads it.
		rr, err := c.GetReportResultWithResponse(ctx, uuid.MustParse(id), nil)
		if err != nil {
			t.Fatal(err)
		}
		if rr.StatusCode() != http.StatusOK || rr.JSON200 == nil {
			t.Fatalf("result answered %d %s", rr.StatusCode(), rr.Body)
		}
		rep := *rr.JSON200
		checkReport(t, rep, id, "2026-01-01", 90, before)

		// The report is exactly the synthetic ledger's summary of the range.
		checkSummary(t, rr.Body, "2026-Q1", time.Now())

		// CSV: the by_day table, one line a day, as a named attachment.
		csv := h.get(t, resultLoc, "Accept", "text/csv")
		if csv.Status != http.StatusOK || csv.mediaType() != "text/csv" {
			t.Fatalf("CSV answered %s", csv)
		}
		checkCSV(t, csv.Body, rep)
		disp, params, err := mime.ParseMediaType(csv.Header.Get("Content-Disposition"))
		if err != nil || disp != "attachment" || params["filename"] != "report-2026-01-01_2026-03-31.csv" {
			t.Errorf("Content-Disposition %q (%v), want attachment with filename report-2026-01-01_2026-03-31.csv",
				csv.Header.Get("Content-Disposition"), err)
		}

		// Content negotiation on the result.
		for _, n := range []struct {
			accept string
			status int
			media  string
		}{
			{"", 200, appJSON},
			{"application/json", 200, appJSON},
			{"*/*", 200, appJSON},
			{"application/*", 200, appJSON},
			{"text/csv", 200, "text/csv"},
			{"text/*", 200, "text/csv"},
			{"application/json;q=0.5, text/csv", 200, "text/csv"},
			{"text/csv;q=0, */*", 200, appJSON},
			{"text/html, text/csv;q=0.1", 200, "text/csv"},
			{"image/png", 406, problemJSON},
			{"application/json;q=0, text/csv;q=0", 406, problemJSON},
		} {
			var hdr []string
			if n.accept != "" {
				hdr = []string{"Accept", n.accept}
			}
			r := h.get(t, resultLoc, hdr...)
			if r.Status != n.status || r.mediaType() != n.media {
				t.Errorf("Accept %q: answered %d %s, want %d %s", n.accept, r.Status, r.mediaType(), n.status, n.media)
			}
			if r.Status == http.StatusNotAcceptable {
				if p := r.problem(t); p.Type != "/problems/not-acceptable" {
					t.Errorf("Accept %q: problem type %q", n.accept, p.Type)
				}
			}
		}
	})
}

// TestProgressRises watches a job that takes about a second: while it runs the status says running, with
// progress in [0,1] that only rises, a Retry-After, and when the attempt started.
func TestProgressRises(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		ledger := slowLedger{inner: report.NewSyntheticLedger(20000), perDay: 20 * time.Millisecond}
		h := newHarness(t, b, setup{Worker: true, Ledger: ledger})
		id := h.create(t, "2026-Q1")

		var seen []float64
		h.poll(t, id, 50*time.Millisecond, 20*time.Second, func(r *response) bool {
			if r.Status != http.StatusOK {
				return r.Status == http.StatusSeeOther
			}
			s := r.jobStatus(t)
			if s.Status != gen.Running {
				if s.Status != gen.Pending {
					t.Fatalf("status %q while waiting for done", s.Status)
				}
				return false
			}
			if s.Progress < 0 || s.Progress > 1 {
				t.Errorf("progress %v is outside [0,1]", s.Progress)
			}
			if len(seen) > 0 && s.Progress < seen[len(seen)-1] {
				t.Errorf("progress fell from %v to %v", seen[len(seen)-1], s.Progress)
			}
			// Between asynq's dequeue and the attempt's first progress write, a running job has neither.
			if (s.StartedAt == nil) != (s.Attempt == nil) || s.Attempt != nil && *s.Attempt != 1 {
				t.Errorf("a running job has started_at %v and attempt %v, want both (attempt 1) or neither", s.StartedAt, s.Attempt)
			}
			if s.FinishedAt != nil || s.ExpiresAt != nil {
				t.Errorf("a running job has finished_at or expires_at: %+v", s)
			}
			seen = append(seen, s.Progress)
			return false
		})
		rising := 0
		for i := 1; i < len(seen); i++ {
			if seen[i] > seen[i-1] {
				rising++
			}
		}
		if rising < 2 {
			t.Errorf("progress did not rise while the job ran: %v", seen)
		}
	})
}
