package impl_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/httpapi"
	"github.com/reportd/reportd/internal/redistest"
)

// errorWant is what an error case is compared on.
type errorWant struct {
	Status        int
	ContentType   string
	Type          string
	ProblemStatus int
	Allow         string
}

// errorOf is what r is compared on as an error, but for Allow; a body that is not a problem leaves Type
// and ProblemStatus empty.
func errorOf(r *response) errorWant {
	got := errorWant{Status: r.Status, ContentType: r.mediaType()}
	var p gen.Problem
	_ = json.Unmarshal(r.Body, &p)
	got.Type, got.ProblemStatus = p.Type, p.Status
	return got
}

// TestErrorResponses drives every refusal the API makes without a job, on each Redis backend. Each answer
// is a problem of its own status; a 400's detail starts with the JSON pointer of the offending member,
// or with "The body" when the whole document is at fault (its pointer, "", would read as nothing).
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
		{name: "create-400-unknown-field", body: `{"range":"2026-Q1","format":"pdf"}`, want: bad, detail: "/format "},
		// RFC 6901: a "/" in a member name is written "~1" in its pointer.
		{name: "create-400-unknown-field-escaped-pointer", body: `{"range":"2026-Q1","a/b":1}`, want: bad, detail: "/a~1b "},
		{name: "create-400-wrong-type", body: `{"range":2026}`, want: bad, detail: "/range "},
		{name: "create-400-null-range", body: `{"range":null}`, want: bad, detail: "/range "},
		{name: "create-400-missing-range", body: `{}`, want: bad, detail: "/range "},
		{name: "create-400-not-an-object", body: `["2026-Q1"]`, want: bad, detail: "The body "},
		{name: "create-400-malformed-json", body: `{"range":`, want: bad, detail: "The body "},
		{name: "create-400-trailing-data", body: `{"range":"2026-Q1"} {"range":"2026-Q2"}`, want: bad, detail: "The body "},
		{name: "create-400-empty-body", body: ``, want: bad, detail: "The body "},
		{name: "create-400-bad-range-syntax", body: `{"range":"2026-Q5"}`, want: bad, detail: "/range "},
		{name: "create-400-month-13", body: `{"range":"2026-13"}`, want: bad, detail: "/range "},
		{name: "create-400-month-00-in-span", body: `{"range":"2026-00-01..2026-01-31"}`, want: bad, detail: "/range "},
		{name: "create-400-year-0000", body: `{"range":"0000-Q1"}`, want: bad, detail: "/range "},
		{name: "create-400-day-32", body: `{"range":"2026-01-32..2026-02-01"}`, want: bad, detail: "/range "},
		// A day off the calendar is not a date, as month 13 is not: the same 400, whether the spec's
		// pattern or the handler finds it.
		{name: "create-400-feb-30", body: `{"range":"2026-02-30..2026-03-01"}`, want: bad, detail: "/range "},
		{name: "create-400-single-day-feb-30", body: `{"range":"2026-02-30"}`, want: bad, detail: "/range "},
		{name: "create-400-single-day-month-13", body: `{"range":"2026-13-01"}`, want: bad, detail: "/range "},
		{name: "create-400-quarter-5-lower-case", body: `{"range":"2026-q5"}`, want: bad, detail: "/range "},
		{name: "create-422-starts-after-today", body: `{"range":"9999-Q4"}`, want: unservable, detail: `/range "9999-Q4" cannot be served: starts on 9999-10-01, after today (`},
		{name: "create-422-end-before-start", body: `{"range":"2026-03-01..2026-02-01"}`, want: unservable, detail: "/range "},
		{name: "create-422-367-days", body: `{"range":"2026-01-01..2027-01-02"}`, want: unservable, detail: "/range "},
		// A callback_url that is not an absolute URI is malformed, like any mistyped field (one the
		// service will not call is a 422: TestCallbackURLRefused).
		{name: "create-400-callback-not-a-uri", body: `{"range":"2026-Q1","callback_url":"not a url"}`, want: bad, detail: "/callback_url "},
		{name: "create-400-callback-relative", body: `{"range":"2026-Q1","callback_url":"/hooks/reportd"}`, want: bad, detail: "/callback_url "},
		{name: "create-400-callback-bad-host", body: `{"range":"2026-Q1","callback_url":"https://exa mple.com/"}`, want: bad, detail: "/callback_url "},
		{name: "create-413", body: big, want: tooLarge},
		{name: "create-413-one-byte-over", body: padded(httpapi.MaxBodyBytes + 1), want: tooLarge},
		{name: "create-413-chunked", body: big, chunked: true, want: tooLarge},
		{name: "create-415", contentType: "text/plain", body: `{"range":"2026-Q1"}`, want: unsupported},
		{name: "create-415-form", contentType: "application/x-www-form-urlencoded", body: `range=2026-Q1`, want: unsupported},
		{name: "create-415-no-content-type", contentType: "-", body: `{"range":"2026-Q1"}`, want: unsupported},
		{name: "status-400-malformed-id", method: "GET", path: "/v1/reports/not-a-uuid", want: bad, detail: "Path parameter \"id\" "},
		{name: "status-400-short-id", method: "GET", path: "/v1/reports/0123", want: bad, detail: "Path parameter \"id\" "},
		{name: "status-404-unknown", method: "GET", path: "/v1/reports/{id}", want: notFound},
		{name: "result-400-malformed-id", method: "GET", path: "/v1/reports/not-a-uuid/result", want: bad, detail: "Path parameter \"id\" "},
		{name: "result-404-unknown", method: "GET", path: "/v1/reports/{id}/result", want: notFound},
		// A problem is a problem whatever representation was asked for.
		{name: "result-404-unknown-csv", method: "GET", path: "/v1/reports/{id}/result", header: []string{"Accept", "text/csv"}, want: notFound},
		{name: "route-404", method: "GET", path: "/v1/nothing-here", want: noRoute},
		{name: "route-404-top-level", method: "GET", path: "/nothing-here", want: noRoute}, // "/" itself redirects to /docs
		{name: "route-404-trailing-slash", method: "GET", path: "/v1/reports/", want: noRoute},
		{name: "route-404-under-job", method: "GET", path: "/v1/reports/{id}/nothing", want: noRoute},
		{name: "route-404-unknown-problem-type", method: "GET", path: "/problems/no-such-type", want: noRoute},
		{name: "method-405-post-problem-type", method: "POST", path: "/problems/invalid-request", want: notAllowed("GET, HEAD")},
		{name: "method-405", method: "DELETE", path: "/v1/reports", want: notAllowed("GET, HEAD, POST")},
		{name: "method-405-put-collection", method: "PUT", path: "/v1/reports", want: notAllowed("GET, HEAD, POST")},
		{name: "method-405-put-status", method: "PUT", path: "/v1/reports/{id}", want: notAllowed("GET, HEAD, DELETE")},
		{name: "method-405-post-result", method: "POST", path: "/v1/reports/{id}/result", want: notAllowed("GET, HEAD")},
		{name: "method-405-get-cancel", method: "GET", path: "/v1/reports/{id}/cancel", want: notAllowed("POST")},
		{name: "cancel-404-unknown", method: "POST", path: "/v1/reports/{id}/cancel", want: notFound},
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

// TestErrorDetailsInWords: a refusal's detail says what is wrong in words a person reads, not the
// spec's regular expressions and limits, nor an error class repeated at its end.
func TestErrorDetailsInWords(t *testing.T) {
	t.Parallel()
	h := newHarness(t, redistest.Embedded(t), setup{})
	long := strings.Repeat("k", 300)
	for _, tc := range []struct {
		name, method, path, body string
		header                   []string
		want                     string
	}{
		{"range-not-a-range", http.MethodPost, "/v1/reports", `{"range":"2026-Q5"}`, nil,
			`/range "2026-Q5" is not a range; send a quarter (2026-Q1), a month (2026-01), a day (2026-01-15) or days (2026-01-01..2026-02-15).`},
		{"range-not-a-day", http.MethodPost, "/v1/reports", `{"range":"2026-02-30..2026-03-01"}`, nil,
			`/range "2026-02-30..2026-03-01" is not a range: 2026-02-30 is not a calendar date (February 2026 has 28 days).`},
		{"range-null", http.MethodPost, "/v1/reports", `{"range":null}`, nil, `/range must not be null.`},
		{"json-syntax", http.MethodPost, "/v1/reports", "{\n  \"range\": 2026-Q1\n}", nil,
			`The body is not valid JSON at line 2, column 16 (byte offset 17): invalid character '-' after object key:value pair.`},
		{"range-missing", http.MethodPost, "/v1/reports", `{}`, nil, `/range is missing.`},
		{"unknown-member", http.MethodPost, "/v1/reports", `{"range":"2026-Q1","format":"pdf"}`, nil,
			`/format is not a member of this request (see /openapi.yaml).`},
		{"id-not-a-uuid", http.MethodGet, "/v1/reports/not-a-uuid", "", nil,
			`Path parameter "id" is not a job id: "not-a-uuid"; job ids are UUIDs, such as 0f8fad5b-d9cb-469f-a165-70867728950e.`},
		{"callback-not-a-uri", http.MethodPost, "/v1/reports", `{"range":"2026-01","callback_url":"//user:pw@8.8.8.8/hook"}`, nil,
			`/callback_url is not an absolute URI; send one such as https://example.com/hooks/reportd.`},
		{"key-too-long", http.MethodPost, "/v1/reports", `{"range":"2026-01"}`, []string{"Idempotency-Key", long},
			`Header parameter "Idempotency-Key" must be 1 to 255 characters, plain or between quotes.`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var body io.Reader
			header := tc.header
			if tc.body != "" {
				body = strings.NewReader(tc.body)
				header = append(header, "Content-Type", "application/json")
			}
			r := h.do(t, h.request(t, tc.method, tc.path, body, header...))
			if p := r.problem(t); p.Detail != tc.want {
				t.Errorf("detail = %q\nwant     %q", p.Detail, tc.want)
			}
		})
	}
}
