package impl_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/httpapi"
	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/testkit"
	"github.com/reportd/reportd/tasks"
)

const (
	problemJSON = "application/problem+json"
	appJSON     = "application/json"
)

var locationRE = regexp.MustCompile(`^/v1/reports/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$`)

// errorWant is what an error case is compared on.
type errorWant struct {
	Status        int
	ContentType   string
	Type          string
	ProblemStatus int
	Allow         string
}

// TestErrorResponses drives every refusal the API makes without a job, on each Redis backend. Each answer
// is a problem of its own status; a 400's detail starts with the JSON pointer of the offending member,
// or with "the body" when the whole document is at fault (its pointer, "", would read as nothing).
func TestErrorResponses(t *testing.T) {
	t.Parallel()
	big := `{"range":"2026-Q1","pad":"` + strings.Repeat("x", httpapi.MaxBodyBytes) + `"}`
	// A valid body padded with whitespace to exactly n bytes.
	padded := func(n int) string {
		b := `{"range":"2026-Q1"}`
		return b + strings.Repeat(" ", n-len(b))
	}
	type errorCase struct {
		name        string
		method      string
		path        string // "{id}" becomes a fresh job id that was never issued
		contentType string
		body        string
		chunked     bool // send the body without a Content-Length
		header      []string
		want        errorWant
		detail      string // the detail starts with this
	}
	bad := errorWant{Status: 400, ContentType: problemJSON, Type: "/problems/invalid-request", ProblemStatus: 400}
	unservable := errorWant{Status: 422, ContentType: problemJSON, Type: "/problems/range-unservable", ProblemStatus: 422}
	tooLarge := errorWant{Status: 413, ContentType: problemJSON, Type: "/problems/payload-too-large", ProblemStatus: 413}
	unsupported := errorWant{Status: 415, ContentType: problemJSON, Type: "/problems/unsupported-media-type", ProblemStatus: 415}
	notFound := errorWant{Status: 404, ContentType: problemJSON, Type: "/problems/job-not-found", ProblemStatus: 404}
	noRoute := errorWant{Status: 404, ContentType: problemJSON, Type: "/problems/no-route", ProblemStatus: 404}
	notAllowed := func(allow string) errorWant {
		return errorWant{Status: 405, ContentType: problemJSON, Type: "/problems/method-not-allowed", ProblemStatus: 405, Allow: allow}
	}
	cases := []errorCase{
		{name: "create-400-unknown-field", body: `{"range":"2026-Q1","format":"pdf"}`, want: bad, detail: "/format: "},
		// RFC 6901: a "/" in a member name is written "~1" in its pointer.
		{name: "create-400-unknown-field-escaped-pointer", body: `{"range":"2026-Q1","a/b":1}`, want: bad, detail: "/a~1b: "},
		{name: "create-400-wrong-type", body: `{"range":2026}`, want: bad, detail: "/range: "},
		{name: "create-400-null-range", body: `{"range":null}`, want: bad, detail: "/range: "},
		{name: "create-400-missing-range", body: `{}`, want: bad, detail: "/range: "},
		{name: "create-400-not-an-object", body: `["2026-Q1"]`, want: bad, detail: "the body"},
		{name: "create-400-malformed-json", body: `{"range":`, want: bad, detail: "the body"},
		{name: "create-400-trailing-data", body: `{"range":"2026-Q1"} {"range":"2026-Q2"}`, want: bad, detail: "the body"},
		{name: "create-400-empty-body", body: ``, want: bad, detail: "the body"},
		{name: "create-400-bad-range-syntax", body: `{"range":"2026-Q5"}`, want: bad, detail: "/range: "},
		{name: "create-400-lower-case-quarter", body: `{"range":"2026-q1"}`, want: bad, detail: "/range: "},
		{name: "create-400-month-13", body: `{"range":"2026-13"}`, want: bad, detail: "/range: "},
		{name: "create-400-month-00-in-span", body: `{"range":"2026-00-01..2026-01-31"}`, want: bad, detail: "/range: "},
		{name: "create-400-year-0000", body: `{"range":"0000-Q1"}`, want: bad, detail: "/range: "},
		{name: "create-400-day-32", body: `{"range":"2026-01-32..2026-02-01"}`, want: bad, detail: "/range: "},
		{name: "create-422-feb-30", body: `{"range":"2026-02-30..2026-03-01"}`, want: unservable, detail: "/range: "},
		{name: "create-422-end-before-start", body: `{"range":"2026-03-01..2026-02-01"}`, want: unservable, detail: "/range: "},
		{name: "create-422-367-days", body: `{"range":"2026-01-01..2027-01-02"}`, want: unservable, detail: "/range: "},
		{name: "create-413", body: big, want: tooLarge},
		{name: "create-413-one-byte-over", body: padded(httpapi.MaxBodyBytes + 1), want: tooLarge},
		{name: "create-413-chunked", body: big, chunked: true, want: tooLarge},
		{name: "create-415", contentType: "text/plain", body: `{"range":"2026-Q1"}`, want: unsupported},
		{name: "create-415-form", contentType: "application/x-www-form-urlencoded", body: `range=2026-Q1`, want: unsupported},
		{name: "create-415-no-content-type", contentType: "-", body: `{"range":"2026-Q1"}`, want: unsupported},
		{name: "status-400-malformed-id", method: "GET", path: "/v1/reports/not-a-uuid", want: bad, detail: "path parameter \"id\""},
		{name: "status-400-short-id", method: "GET", path: "/v1/reports/0123", want: bad, detail: "path parameter \"id\""},
		{name: "status-404-unknown", method: "GET", path: "/v1/reports/{id}", want: notFound},
		{name: "result-400-malformed-id", method: "GET", path: "/v1/reports/not-a-uuid/result", want: bad, detail: "path parameter \"id\""},
		{name: "result-404-unknown", method: "GET", path: "/v1/reports/{id}/result", want: notFound},
		// A problem is a problem whatever representation was asked for.
		{name: "result-404-unknown-csv", method: "GET", path: "/v1/reports/{id}/result", header: []string{"Accept", "text/csv"}, want: notFound},
		{name: "route-404", method: "GET", path: "/v1/nothing-here", want: noRoute},
		{name: "route-404-root", method: "GET", path: "/", want: noRoute},
		{name: "route-404-trailing-slash", method: "GET", path: "/v1/reports/", want: noRoute},
		{name: "route-404-under-job", method: "GET", path: "/v1/reports/{id}/nothing", want: noRoute},
		{name: "route-404-unknown-problem-type", method: "GET", path: "/problems/no-such-type", want: noRoute},
		{name: "method-405", method: "DELETE", path: "/v1/reports", want: notAllowed("GET, HEAD, POST")},
		{name: "method-405-put-collection", method: "PUT", path: "/v1/reports", want: notAllowed("GET, HEAD, POST")},
		{name: "method-405-put-status", method: "PUT", path: "/v1/reports/{id}", want: notAllowed("GET, HEAD, DELETE")},
		{name: "method-405-post-result", method: "POST", path: "/v1/reports/{id}/result", want: notAllowed("GET, HEAD")},
	}
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		h := newHarness(t, b, setup{})
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				method, path := tc.method, tc.path
				if method == "" {
					method, path = http.MethodPost, "/v1/reports"
				}
				path = strings.ReplaceAll(path, "{id}", uuid.NewString())
				var body io.Reader
				if tc.body != "" || method == http.MethodPost {
					body = strings.NewReader(tc.body)
				}
				if tc.chunked {
					body = struct{ io.Reader }{body} // hides the length
				}
				req := h.request(t, method, path, body, tc.header...)
				if tc.chunked {
					req.ContentLength = -1
				}
				switch tc.contentType {
				case "":
					if method == http.MethodPost {
						req.Header.Set("Content-Type", appJSON)
					}
				case "-":
				default:
					req.Header.Set("Content-Type", tc.contentType)
				}

				r := h.do(t, req)
				got := errorWant{Status: r.Status, ContentType: r.mediaType(), Allow: r.Header.Get("Allow")}
				var p gen.Problem
				_ = json.Unmarshal(r.Body, &p)
				got.Type, got.ProblemStatus = p.Type, p.Status
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("%s %s: answer mismatch (-want +got):\n%s\nbody: %s", method, path, diff, r.Body)
				}
				if !strings.HasPrefix(p.Detail, tc.detail) {
					t.Errorf("detail %q does not start with %q", p.Detail, tc.detail)
				}
				if p.Instance == nil || *p.Instance != path {
					t.Errorf("instance is %v, want %q", p.Instance, path)
				}
				if p.Type != "" {
					d := h.get(t, p.Type)
					if d.Status != http.StatusOK || !bytes.Contains(d.Body, []byte(p.Title)) {
						t.Errorf("GET %s (the problem type) answered %s, want 200 describing %q", p.Type, d, p.Title)
					}
				}
			})
		}
	})
}

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
		{name: "create-202-span-over-new-year", body: `{"range":"2026-12-31..2027-01-01"}`, want: want{"2026-12-31", "2027-01-01"}},
		{name: "create-202-one-day", body: `{"range":"2026-05-05..2026-05-05"}`, want: want{"2026-05-05", "2026-05-05"}},
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
				m := locationRE.FindStringSubmatch(loc)
				if m == nil {
					t.Fatalf("Location %q is not /v1/reports/{id}", loc)
				}
				if n, err := retryAfter(r.Header); err != nil || n < 1 {
					t.Errorf("Retry-After: %v", err)
				}
				if mt := r.mediaType(); mt != appJSON {
					t.Errorf("Content-Type %q, want %s", mt, appJSON)
				}
				s := r.jobStatus(t)
				checkNewJob(t, s, m[1], loc, tc.want.From, tc.want.To, before, after)

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
		m := locationRE.FindStringSubmatch(loc)
		if m == nil {
			t.Fatalf("Location %q", loc)
		}
		id := m[1]
		if n, err := retryAfter(cr.HTTPResponse.Header); err != nil || n < 1 {
			t.Errorf("202 Retry-After: %v", err)
		}
		if cr.JSON202.Status != gen.Pending || cr.JSON202.Id.String() != id {
			t.Errorf("202 body: status %q id %s, want pending %s", cr.JSON202.Status, cr.JSON202.Id, id)
		}

		// Poll through the generated client, honouring Retry-After (capped), until the 303.
		var done *gen.GetReportStatusResponse
		deadline := time.Now().Add(15 * time.Second)
		for done == nil {
			sr, err := c.GetReportStatusWithResponse(ctx, uuid.MustParse(id), nil)
			if err != nil {
				t.Fatal(err)
			}
			switch sr.StatusCode() {
			case http.StatusSeeOther:
				done = sr
				continue
			case http.StatusOK:
				if s := sr.JSON200.Status; s != gen.Pending && s != gen.Running {
					t.Fatalf("status %q before done: %s", s, sr.Body)
				}
			default:
				t.Fatalf("status answered %d %s", sr.StatusCode(), sr.Body)
			}
			if time.Now().After(deadline) {
				t.Fatalf("job %s not done after 15 s", id)
			}
			n, _ := retryAfter(sr.HTTPResponse.Header)
			time.Sleep(min(time.Duration(n)*time.Second, 200*time.Millisecond))
		}
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
		rng, err := report.ParseRange("2026-Q1")
		if err != nil {
			t.Fatal(err)
		}
		want, err := report.Summarize(ctx, report.NewSyntheticLedger(smallRows), rng, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got report.Report
		if err := json.Unmarshal(rr.Body, &got); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(report.Report{}, "ID", "GeneratedAt")); diff != "" {
			t.Errorf("report differs from Summarize (-want +got):\n%s", diff)
		}

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

// TestResultCSVGolden pins the CSV the result URL serves, byte for byte, over a ledger whose orders are
// fixed by the test (so that the file changes only when the rendering does). Run with -update to rewrite it.
func TestResultCSVGolden(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		h := newHarness(t, b, setup{Worker: true, Ledger: fixedLedger{}})
		id := h.create(t, "2024-02-27..2024-03-02")
		h.poll(t, id, 20*time.Millisecond, 10*time.Second, is303)
		r := h.get(t, "/v1/reports/"+id+"/result", "Accept", "text/csv")
		if r.Status != http.StatusOK || r.mediaType() != "text/csv" {
			t.Fatalf("CSV answered %s", r)
		}
		testkit.Golden(t, "testdata/result-2024-02-27_2024-03-02.csv.golden", r.Body)
		if got, want := r.Header.Get("Content-Disposition"), `attachment; filename="report-2024-02-27_2024-03-02.csv"`; got != want {
			t.Errorf("Content-Disposition %q, want %q", got, want)
		}
	})
}

// checkReport checks a report against the contract's prose: one by_day entry a day, ascending, and
// totals equal to the sums of every breakdown, which are ordered by revenue.
func checkReport(t *testing.T, rep gen.Report, id, from string, days int, before time.Time) {
	t.Helper()
	if rep.Id.String() != id {
		t.Errorf("report id %s, want %s", rep.Id, id)
	}
	if rep.GeneratedAt.Before(before.Add(-time.Second)) || rep.GeneratedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("generated_at %s is not during the test", rep.GeneratedAt)
	}
	if len(rep.ByDay) != days {
		t.Fatalf("by_day has %d entries, want %d", len(rep.ByDay), days)
	}
	first, _ := time.Parse(time.DateOnly, from)
	var day, region, product gen.Totals
	for i, d := range rep.ByDay {
		if want := first.AddDate(0, 0, i).Format(time.DateOnly); d.Date.String() != want {
			t.Errorf("by_day[%d] is %s, want %s", i, d.Date, want)
		}
		day.Orders += d.Orders
		day.Units += d.Units
		day.RevenueCents += d.RevenueCents
	}
	if rep.Range.From.String() != from || rep.Range.To.String() != rep.ByDay[days-1].Date.String() {
		t.Errorf("range %s..%s does not match by_day", rep.Range.From, rep.Range.To)
	}
	for _, r := range rep.ByRegion {
		region.Orders += r.Orders
		region.Units += r.Units
		region.RevenueCents += r.RevenueCents
	}
	for _, p := range rep.ByProduct {
		product.Orders += p.Orders
		product.Units += p.Units
		product.RevenueCents += p.RevenueCents
	}
	total := gen.Totals{Orders: rep.Orders, Units: rep.Units, RevenueCents: rep.RevenueCents}
	if total.Orders == 0 {
		t.Errorf("the report has no orders")
	}
	for name, sum := range map[string]gen.Totals{"by_day": day, "by_region": region, "by_product": product} {
		if diff := cmp.Diff(total, sum); diff != "" {
			t.Errorf("totals differ from the sum of %s (-totals +sum):\n%s", name, diff)
		}
	}
	if !slices.IsSortedFunc(rep.ByRegion, func(a, b gen.RegionTotals) int {
		return cmpRevenueThenName(a.RevenueCents, b.RevenueCents, a.Region, b.Region)
	}) {
		t.Errorf("by_region is not by revenue, highest first: %+v", rep.ByRegion)
	}
	if !slices.IsSortedFunc(rep.ByProduct, func(a, b gen.ProductTotals) int {
		return cmpRevenueThenName(a.RevenueCents, b.RevenueCents, a.Product, b.Product)
	}) {
		t.Errorf("by_product is not by revenue, highest first: %+v", rep.ByProduct)
	}
}

func cmpRevenueThenName(ra, rb int64, na, nb string) int {
	switch {
	case ra != rb && ra > rb:
		return -1
	case ra != rb:
		return 1
	}
	return strings.Compare(na, nb)
}

// checkCSV checks the CSV against the JSON report it renders.
func checkCSV(t *testing.T, body []byte, rep gen.Report) {
	t.Helper()
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	want := []string{"date,orders,units,revenue_cents"}
	for _, d := range rep.ByDay {
		want = append(want, fmt.Sprintf("%s,%d,%d,%d", d.Date, d.Orders, d.Units, d.RevenueCents))
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("CSV does not render by_day (-want +got):\n%s", diff)
	}
	if !bytes.HasSuffix(body, []byte("\n")) {
		t.Errorf("CSV does not end with a newline")
	}
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

// TestResultNotDone asks for the result of a job that is pending, then running: 409, naming the status.
func TestResultNotDone(t *testing.T) {
	t.Parallel()
	t.Run("result-409-pending", func(t *testing.T) {
		t.Parallel()
		redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
			h := newHarness(t, b, setup{}) // no worker: the job stays pending
			id := h.create(t, "2026-Q1")
			checkNotDone(t, h, id, "pending")
		})
	})
	t.Run("result-409-running", func(t *testing.T) {
		t.Parallel()
		redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
			gate := make(chan struct{})
			h := newHarness(t, b, setup{Worker: true, Ledger: gateLedger{inner: report.NewSyntheticLedger(smallRows), gate: gate}})
			id := h.create(t, "2026-02")
			h.poll(t, id, 20*time.Millisecond, 10*time.Second, hasState(t, gen.Running))
			checkNotDone(t, h, id, "running")
			close(gate)
			h.poll(t, id, 20*time.Millisecond, 10*time.Second, is303)
			if r := h.get(t, "/v1/reports/"+id+"/result"); r.Status != http.StatusOK {
				t.Errorf("result after done: %s", r)
			}
		})
	})
}

func checkNotDone(t *testing.T, h *harness, id, state string) {
	t.Helper()
	for _, accept := range []string{"", "text/csv"} {
		r := h.get(t, "/v1/reports/"+id+"/result", "Accept", accept)
		got := errorWant{Status: r.Status, ContentType: r.mediaType()}
		p := r.problem(t)
		got.Type, got.ProblemStatus = p.Type, p.Status
		want := errorWant{Status: 409, ContentType: problemJSON, Type: "/problems/job-not-done", ProblemStatus: 409}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("result of a %s job, Accept %q (-want +got):\n%s", state, accept, diff)
		}
		if !strings.Contains(p.Detail, state) {
			t.Errorf("409 detail %q does not name the status %q", p.Detail, state)
		}
	}
}

// TestFailedJob makes jobs fail for real in the worker: the status says failed, with an error problem
// that names the cause without leaking internals, and no Retry-After; the result is a 409; the failed
// status expires at its expires_at.
func TestFailedJob(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		policy      jobs.Policy
		ledger      report.Ledger
		rng         string
		want        gen.Problem
		detailHas   string
		attempts    int
		seePending  bool // the first attempt's failure is retried: the job reads pending in between
		detailLacks string
	}{
		{
			name:   "failed-timeout",
			policy: jobs.Policy{JobTimeout: time.Second, MaxRetry: 0, Retention: time.Hour},
			// Blocks every day until the job's context ends: asynq's timeout ends it after 1 s.
			ledger:    gateLedger{inner: report.NewSyntheticLedger(smallRows), gate: make(chan struct{})},
			rng:       "2026-01-01..2026-12-31",
			want:      gen.Problem{Type: "/problems/report-timeout", Title: "Report took too long", Status: 500},
			detailHas: "1s",
			attempts:  1,
		},
		{
			name:        "failed-ledger-error",
			policy:      jobs.Policy{JobTimeout: time.Minute, MaxRetry: 0, Retention: time.Hour},
			ledger:      failingLedger{err: errors.New("dial tcp 10.9.8.7:5432: connect: connection refused")},
			rng:         "2026-Q1",
			want:        gen.Problem{Type: "/problems/report-failed", Title: "Report failed", Status: 500},
			detailHas:   "1 attempt",
			detailLacks: "10.9.8.7",
			attempts:    1,
		},
		{
			name:        "failed-after-retry",
			policy:      jobs.Policy{JobTimeout: time.Minute, MaxRetry: 1, Retention: time.Hour},
			ledger:      failingLedger{err: errors.New("ledger unavailable")},
			rng:         "2026-Q1",
			want:        gen.Problem{Type: "/problems/report-failed", Title: "Report failed", Status: 500},
			detailHas:   "2 attempts",
			detailLacks: "ledger unavailable",
			attempts:    2,
			seePending:  true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
				clk := &clock{}
				h := newHarness(t, b, setup{Worker: true, Ledger: tc.ledger, Policy: tc.policy, Clock: clk})
				id := h.create(t, tc.rng)

				sawRetryWait := false
				r := h.poll(t, id, 50*time.Millisecond, 15*time.Second, func(r *response) bool {
					if r.Status != http.StatusOK {
						t.Fatalf("status answered %s", r)
					}
					s := r.jobStatus(t)
					if s.Status == gen.Pending && s.Attempt != nil && *s.Attempt == 1 {
						sawRetryWait = true
					}
					return s.Status == gen.Failed
				})
				if tc.seePending && !sawRetryWait {
					t.Errorf("never saw the job pending with attempt 1 between its attempts")
				}
				s := r.jobStatus(t)
				if s.Error == nil {
					t.Fatalf("failed without an error: %s", r.Body)
				}
				got := gen.Problem{Type: s.Error.Type, Title: s.Error.Title, Status: s.Error.Status}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("error problem (-want +got):\n%s", diff)
				}
				if !strings.Contains(s.Error.Detail, tc.detailHas) {
					t.Errorf("error detail %q does not say %q", s.Error.Detail, tc.detailHas)
				}
				if tc.detailLacks != "" && strings.Contains(string(r.Body), tc.detailLacks) {
					t.Errorf("the failed status leaks the internal error %q: %s", tc.detailLacks, r.Body)
				}
				if s.Attempt == nil || *s.Attempt != tc.attempts {
					t.Errorf("attempt %v, want %d", s.Attempt, tc.attempts)
				}
				if s.StartedAt == nil || s.FinishedAt == nil || s.ExpiresAt == nil {
					t.Fatalf("a failed job needs started_at, finished_at and expires_at: %s", r.Body)
				}
				if want := s.FinishedAt.Add(tc.policy.Retention); !s.ExpiresAt.Equal(want) {
					t.Errorf("expires_at %s, want finished_at + retention = %s", s.ExpiresAt, want)
				}
				if s.Progress < 0 || s.Progress > 1 || s.Links.Result != nil {
					t.Errorf("progress %v, links %+v", s.Progress, s.Links)
				}
				if d := h.get(t, s.Error.Type); d.Status != http.StatusOK {
					t.Errorf("GET %s (the error's type) answered %s", s.Error.Type, d)
				}
				checkNotDone(t, h, id, "failed")

				// A failed job is readable until its expires_at, then gone.
				clk.Set(s.ExpiresAt.Add(-time.Millisecond))
				if r := h.get(t, "/v1/reports/"+id); r.Status != http.StatusOK {
					t.Errorf("just before expires_at: %s", r)
				}
				clk.Set(*s.ExpiresAt)
				checkGone(t, h, id)
			})
		})
	}
}

// TestUnreadableJobFails enqueues a job whose payload this version cannot read, as an older or newer
// reportd would have left it. The worker refuses it without retrying; the status must then say failed
// with the report-unreadable problem the server defines for this case.
func TestUnreadableJobFails(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		h := newHarness(t, b, setup{Worker: true})
		id := uuid.NewString()
		task := asynq.NewTask(tasks.TypeReport, []byte(`{"from":"2026-01-01","to":"2026-03-31"}`),
			asynq.TaskID(id), asynq.Queue(store.ReportQueue), asynq.MaxRetry(3), asynq.Retention(time.Hour))
		if _, err := asynq.NewClientFromRedisClient(h.Redis).Enqueue(task); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			info, err := h.Inspector.GetTaskInfo(store.ReportQueue, id)
			if err != nil {
				t.Fatal(err)
			}
			if info.State == asynq.TaskStateArchived {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the worker did not archive the unreadable job: %s", info.State)
			}
			time.Sleep(20 * time.Millisecond)
		}
		r := h.get(t, "/v1/reports/"+id)
		if r.Status != http.StatusOK {
			t.Fatalf("status of an unreadable failed job: %s, want 200 failed with /problems/report-unreadable", r)
		}
		s := r.jobStatus(t)
		if s.Status != gen.Failed || s.Error == nil || s.Error.Type != "/problems/report-unreadable" {
			t.Errorf("status %s, want failed with /problems/report-unreadable", r.Body)
		}
	})
}

// checkGone checks that job id answers 410 on its status and its result.
func checkGone(t *testing.T, h *harness, id string) {
	t.Helper()
	for _, path := range []string{"/v1/reports/" + id, "/v1/reports/" + id + "/result"} {
		r := h.get(t, path)
		got := errorWant{Status: r.Status, ContentType: r.mediaType()}
		var p gen.Problem
		_ = json.Unmarshal(r.Body, &p)
		got.Type, got.ProblemStatus = p.Type, p.Status
		want := errorWant{Status: 410, ContentType: problemJSON, Type: "/problems/job-expired", ProblemStatus: 410}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GET %s of an expired job (-want +got):\n%s\nbody: %s", path, diff, r.Body)
		}
	}
}

// TestExpiredJob checks 410 for a done job whose retention passed, two ways: a server clock moved past
// the retention (the precise boundary, with asynq still holding the task), and asynq's janitor deleting
// the task for real (then only the tombstone tells 410 from 404).
func TestExpiredJob(t *testing.T) {
	t.Parallel()
	t.Run("expired-by-clock", func(t *testing.T) {
		t.Parallel()
		redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
			clk := &clock{}
			const retention = time.Hour
			h := newHarness(t, b, setup{Worker: true, Clock: clk, Policy: jobs.Policy{Retention: retention}})
			// asynq stores completion times in whole seconds.
			before := time.Now().Truncate(time.Second)
			id := h.create(t, "2026-Q1")
			h.poll(t, id, 20*time.Millisecond, 10*time.Second, is303)
			after := time.Now()

			clk.Set(before.Add(retention - time.Nanosecond))
			if r := h.get(t, "/v1/reports/"+id); r.Status != http.StatusSeeOther {
				t.Errorf("before the retention ran out: %s", r)
			}
			if r := h.get(t, "/v1/reports/"+id+"/result"); r.Status != http.StatusOK {
				t.Errorf("result before the retention ran out: %d", r.Status)
			}
			clk.Set(after.Add(retention))
			checkGone(t, h, id)
			clk.Reset()
			if r := h.get(t, "/v1/reports/"+id); r.Status != http.StatusSeeOther {
				t.Errorf("back on the real clock: %s", r)
			}
		})
	})
	t.Run("expired-by-janitor", func(t *testing.T) {
		t.Parallel()
		redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
			h := newHarness(t, b, setup{Worker: true, Policy: jobs.Policy{Retention: 2 * time.Second}})
			id := h.create(t, "2026-02")
			h.poll(t, id, 10*time.Millisecond, 10*time.Second, is303)
			h.poll(t, id, 100*time.Millisecond, 10*time.Second, func(r *response) bool { return r.Status == http.StatusGone })
			// Once the janitor has deleted the task, the tombstone alone answers.
			waitDeleted(t, h, id)
			checkGone(t, h, id)
		})
	})
}

// TestTombstoneRunsOut follows ids past the end of their tombstones: 410 for the tombstone period after
// the retention, then 404. Only miniredis can move its TTL clock forward, so only it runs this.
func TestTombstoneRunsOut(t *testing.T) {
	t.Parallel()
	t.Run("done", func(t *testing.T) {
		t.Parallel()
		m := miniredis.RunT(t) // without ClockTTL: TTLs move only with FastForward
		h := newHarness(t, redistest.Backend{Name: "miniredis", Addr: m.Addr()}, setup{Worker: true, Policy: jobs.Policy{Retention: time.Second}})
		id := h.create(t, "2026-02")
		h.poll(t, id, 10*time.Millisecond, 10*time.Second, is303)
		waitDeleted(t, h, id)
		checkGone(t, h, id)

		// The harness's store keeps tombstones for an hour after the retention (plus a minute of slack).
		m.FastForward(time.Hour)
		checkGone(t, h, id)
		m.FastForward(2 * time.Minute)
		checkNotFound(t, h, id)
	})
	t.Run("failed", func(t *testing.T) {
		t.Parallel()
		m := miniredis.RunT(t)
		clk := &clock{}
		h := newHarness(t, redistest.Backend{Name: "miniredis", Addr: m.Addr()}, setup{
			Worker: true, Clock: clk, Ledger: failingLedger{err: errors.New("no ledger")},
			Policy: jobs.Policy{MaxRetry: 0, Retention: time.Hour},
		})
		id := h.create(t, "2026-02")
		h.poll(t, id, 20*time.Millisecond, 10*time.Second, hasState(t, gen.Failed))

		// Sixty days on, every tombstone this harness writes has run out (in production, with a 30-day
		// tombstone period, too), while asynq keeps archived tasks for 90 days.
		const later = 60 * 24 * time.Hour
		clk.Set(time.Now().Add(later))
		m.FastForward(later)
		checkNotFound(t, h, id)
	})
}

// waitDeleted waits for asynq's janitor to delete job id's task.
func waitDeleted(t *testing.T, h *harness, id string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := h.Inspector.GetTaskInfo(store.ReportQueue, id)
		if errors.Is(err, asynq.ErrTaskNotFound) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the janitor did not delete the task of job %s: %v", id, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkNotFound checks that job id answers 404 on its status and its result.
func checkNotFound(t *testing.T, h *harness, id string) {
	t.Helper()
	for _, path := range []string{"/v1/reports/" + id, "/v1/reports/" + id + "/result"} {
		r := h.get(t, path)
		if p := r.problem(t); r.Status != http.StatusNotFound || p.Type != "/problems/job-not-found" {
			t.Errorf("GET %s after the tombstone ran out: %s, want 404 job-not-found", path, r)
		}
	}
}

// TestRedisUnavailable checks that an unreachable Redis is a 503 problem with Retry-After, quickly,
// and that requests the contract refuses are still refused without Redis.
func TestRedisUnavailable(t *testing.T) {
	t.Parallel()
	const within = 2 * time.Second
	check503 := func(t *testing.T, h *harness, what string, r *response) {
		t.Helper()
		got := errorWant{Status: r.Status, ContentType: r.mediaType()}
		var p gen.Problem
		_ = json.Unmarshal(r.Body, &p)
		got.Type, got.ProblemStatus = p.Type, p.Status
		want := errorWant{Status: 503, ContentType: problemJSON, Type: "/problems/unavailable", ProblemStatus: 503}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s with Redis down (-want +got):\n%s\nbody: %s", what, diff, r.Body)
		}
		if _, err := retryAfter(r.Header); err != nil {
			t.Errorf("%s: %v", what, err)
		}
		if r.Took > within {
			t.Errorf("%s took %s with Redis down, want under %s", what, r.Took, within)
		}
	}
	post := func(t *testing.T, h *harness) *response {
		return h.doValid(t, h.request(t, http.MethodPost, "/v1/reports", strings.NewReader(`{"range":"2026-Q1"}`), "Content-Type", appJSON))
	}

	t.Run("closed-port", func(t *testing.T) {
		t.Parallel()
		rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: time.Second, ReadTimeout: time.Second})
		h := newHarness(t, redistest.Backend{}, setup{Redis: rdb})
		id := uuid.NewString()
		check503(t, h, "POST /v1/reports", post(t, h))
		check503(t, h, "GET status", h.get(t, "/v1/reports/"+id))
		check503(t, h, "GET result", h.get(t, "/v1/reports/"+id+"/result"))
		if r := h.do(t, h.request(t, http.MethodPost, "/v1/reports", strings.NewReader(`{"range":"2026-Q5"}`), "Content-Type", appJSON)); r.Status != http.StatusBadRequest {
			t.Errorf("a bad range with Redis down: %s, want 400", r)
		}
		if r := h.get(t, "/v1/reports/nope"); r.Status != http.StatusBadRequest {
			t.Errorf("a malformed id with Redis down: %s, want 400", r)
		}
	})

	t.Run("unreachable-host", func(t *testing.T) {
		t.Parallel()
		// A Redis host that is down or cut off drops packets instead of refusing them: connecting hangs
		// until DialTimeout. The client is built exactly as cmd/reportd builds it.
		addr, unblock := blackhole(t)
		client, err := store.NewClient(asynq.RedisClientOpt{Addr: addr})
		if err != nil {
			t.Fatal(err)
		}
		rdb, ok := client.(*redis.Client)
		if !ok {
			t.Fatal("asynq.RedisClientOpt did not make a *redis.Client")
		}
		h := newHarness(t, redistest.Backend{}, setup{Redis: rdb})
		t.Cleanup(unblock)            // first, so that the server's waiting handlers end before it closes
		h.client.Timeout = 2 * within // give up well before go-redis does
		req := h.request(t, http.MethodGet, "/v1/reports/"+uuid.NewString(), nil)
		start := time.Now()
		res, err := h.client.Do(req)
		if err != nil {
			t.Fatalf("GET status with Redis unreachable: no answer after %s (want a 503 within %s): %v",
				time.Since(start).Round(time.Millisecond), within, err)
		}
		res.Body.Close()
		if took := time.Since(start); res.StatusCode != http.StatusServiceUnavailable || took > within {
			t.Errorf("GET status with Redis unreachable: %d after %s, want 503 within %s", res.StatusCode, took, within)
		}
	})

	t.Run("redis-server-stopped", func(t *testing.T) {
		t.Parallel()
		srv := redistest.StartServer(t)
		h := newHarness(t, srv.Backend, setup{})
		id := h.create(t, "2026-Q1")
		srv.Stop()
		check503(t, h, "GET status", h.get(t, "/v1/reports/"+id))
		check503(t, h, "GET result", h.get(t, "/v1/reports/"+id+"/result"))
		check503(t, h, "POST /v1/reports", post(t, h))
		srv.Restart()
		// Nothing persists across this restart: the job is gone, and the service is back.
		if r := h.get(t, "/v1/reports/"+id); r.Status != http.StatusNotFound {
			t.Errorf("status after a restart that lost the data: %s, want 404", r)
		}
		h.create(t, "2026-Q1")
	})

	t.Run("miniredis-stopped", func(t *testing.T) {
		t.Parallel()
		m := miniredis.RunT(t)
		h := newHarness(t, redistest.Backend{Name: "miniredis", Addr: m.Addr()}, setup{})
		id := h.create(t, "2026-Q1")
		m.Close()
		check503(t, h, "GET status", h.get(t, "/v1/reports/"+id))
		check503(t, h, "GET result", h.get(t, "/v1/reports/"+id+"/result"))
		check503(t, h, "POST /v1/reports", post(t, h))
		if err := m.Restart(); err != nil {
			t.Fatal(err)
		}
		// miniredis keeps its data across a restart: the job answers again.
		if r := h.get(t, "/v1/reports/"+id); r.Status != http.StatusOK || r.jobStatus(t).Status != gen.Pending {
			t.Errorf("status after Redis came back: %s, want 200 pending", r)
		}
	})
}

// blackhole returns the address of a listener whose accept queue is full, so that the kernel drops
// further connection attempts as a dead host would, and a func that closes it.
func blackhole(t *testing.T) (string, func()) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("filling an accept queue to drop SYNs is Linux behaviour")
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	in4, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		t.Fatalf("socket name %T", sa)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(in4.Port))
	// The first connection fills the queue (backlog 0 admits one); the next must hang.
	fill, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
		c.Close()
		t.Skip("the kernel accepted a connection past a full accept queue")
	}
	return addr, func() {
		fill.Close()
		_ = syscall.Close(fd)
	}
}

// TestContractCheckerCatchesViolations proves the harness's checker is not vacuous: responses that break
// the contract in the ways the suite relies on it to notice are refused.
func TestContractCheckerCatchesViolations(t *testing.T) {
	t.Parallel()
	c := mustContract(t)
	id := uuid.NewString()
	status := func(s string) string {
		return `{"id":"` + id + `","status":"` + s + `","progress":0,"range":{"from":"2026-01-01","to":"2026-03-31"},` +
			`"created_at":"2026-01-01T00:00:00Z","links":{"self":"/v1/reports/` + id + `"}}`
	}
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	problem := func(status int) string {
		return `{"type":"/problems/x","title":"X","status":` + strconv.Itoa(status) + `,"detail":"d"}`
	}
	cases := []struct {
		name   string
		method string
		path   string
		status int
		header http.Header
		body   string
		ok     bool
	}{
		{"ok-303", "GET", "/v1/reports/" + id, 303, hdr("Location", "/v1/reports/"+id+"/result", "Cache-Control", "no-store"), "", true},
		{"ok-200-pending", "GET", "/v1/reports/" + id, 200, hdr("Content-Type", appJSON, "Retry-After", "1", "Cache-Control", "no-store"), status("pending"), true},
		{"ok-404-route", "GET", "/nope", 404, hdr("Content-Type", problemJSON), problem(404), true},
		{"303-without-location", "GET", "/v1/reports/" + id, 303, hdr("Cache-Control", "no-store"), "", false},
		{"303-elsewhere", "GET", "/v1/reports/" + id, 303, hdr("Location", "/elsewhere", "Cache-Control", "no-store"), "", false},
		{"200-retry-after-not-integer", "GET", "/v1/reports/" + id, 200, hdr("Content-Type", appJSON, "Retry-After", "soon", "Cache-Control", "no-store"), status("pending"), false},
		{"200-pending-without-retry-after", "GET", "/v1/reports/" + id, 200, hdr("Content-Type", appJSON, "Cache-Control", "no-store"), status("pending"), false},
		{"200-unknown-state", "GET", "/v1/reports/" + id, 200, hdr("Content-Type", appJSON, "Retry-After", "1", "Cache-Control", "no-store"), status("finished"), false},
		{"200-without-no-store", "GET", "/v1/reports/" + id, 200, hdr("Content-Type", appJSON, "Retry-After", "1"), status("pending"), false},
		{"202-without-retry-after", "POST", "/v1/reports", 202, hdr("Content-Type", appJSON, "Location", "/v1/reports/"+id), status("pending"), false},
		{"404-problem-without-detail", "GET", "/v1/reports/" + id, 404, hdr("Content-Type", problemJSON), `{"type":"/problems/x","title":"X","status":404}`, false},
		{"404-problem-wrong-status", "GET", "/v1/reports/" + id, 404, hdr("Content-Type", problemJSON), problem(400), false},
		{"404-route-plain-text", "GET", "/nope", 404, hdr("Content-Type", "text/plain"), "404 page not found", false},
		{"405-without-allow", "DELETE", "/v1/reports", 405, hdr("Content-Type", problemJSON), problem(405), false},
		{"503-without-retry-after", "GET", "/v1/reports/" + id, 503, hdr("Content-Type", problemJSON), problem(503), false},
		{"200-outside-contract", "GET", "/nope", 200, hdr("Content-Type", "text/plain"), "hi", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest(tc.method, "http://127.0.0.1:1"+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = c.checkExchange(req, tc.status, tc.header, []byte(tc.body))
			if tc.ok && err != nil {
				t.Errorf("a conforming response was refused: %v", err)
			}
			if !tc.ok && err == nil {
				t.Errorf("a response that breaks the contract passed")
			}
		})
	}
}
