package problem

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestProblemFor(t *testing.T) {
	t.Parallel()
	const secret = "dial tcp 10.0.0.7:6379: connect: connection refused (password hunter2)"
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantType   string
		wantDetail string // "" means the problem type's own description
	}{
		{name: "internal-plain-error", err: errors.New(secret), wantStatus: 500, wantType: "/problems/internal"},
		{name: "internal-kind-with-detail", err: &Error{Kind: KindInternal, Detail: secret, Err: errors.New(secret)}, wantStatus: 500, wantType: "/problems/internal"},
		{name: "unknown-kind", err: &Error{Kind: Kind(99), Detail: "whatever"}, wantStatus: 500, wantType: "/problems/internal"},
		{name: "invalid", err: Errorf(KindInvalid, "/range is bad."), wantStatus: 400, wantType: "/problems/invalid-request", wantDetail: "/range is bad."},
		{name: "unprocessable", err: Errorf(KindUnprocessable, "/range cannot be served: feb 30."), wantStatus: 422, wantType: "/problems/range-unservable", wantDetail: "/range cannot be served: feb 30."},
		{name: "not-found", err: Errorf(KindNotFound, "Job 1234 was not found."), wantStatus: 404, wantType: "/problems/job-not-found", wantDetail: "Job 1234 was not found."},
		{name: "gone", err: Errorf(KindGone, "Job 1234 has expired."), wantStatus: 410, wantType: "/problems/job-expired", wantDetail: "Job 1234 has expired."},
		{name: "not-done", err: Errorf(KindNotDone, "Job 1234 is pending."), wantStatus: 409, wantType: "/problems/job-not-done", wantDetail: "Job 1234 is pending."},
		{name: "not-acceptable", err: Errorf(KindNotAcceptable, "This report is not png."), wantStatus: 406, wantType: "/problems/not-acceptable", wantDetail: "This report is not png."},
		{name: "unavailable-hides-cause", err: Unavailable(errors.New(secret)), wantStatus: 503, wantType: "/problems/unavailable", wantDetail: "The job store cannot be reached; retry shortly."},
		{name: "too-large", err: Errorf(KindTooLarge, "The body is big."), wantStatus: 413, wantType: "/problems/payload-too-large", wantDetail: "The body is big."},
		{name: "unsupported-media-type", err: Errorf(KindUnsupportedMediaType, "The body is xml."), wantStatus: 415, wantType: "/problems/unsupported-media-type", wantDetail: "The body is xml."},
		{name: "no-route", err: Errorf(KindNoRoute, "Nothing is here."), wantStatus: 404, wantType: "/problems/no-route", wantDetail: "Nothing is here."},
		{name: "method-not-allowed", err: Errorf(KindMethodNotAllowed, "Method PUT is not allowed."), wantStatus: 405, wantType: "/problems/method-not-allowed", wantDetail: "Method PUT is not allowed."},
		{name: "wrapped-error", err: fmt.Errorf("read job: %w", Errorf(KindGone, "Job 1234 has expired.")), wantStatus: 410, wantType: "/problems/job-expired", wantDetail: "Job 1234 has expired."},
		// A detail made of an error's text, which Go writes lower-case and without a period, is given both.
		{name: "error-text-made-a-sentence", err: &Error{Kind: KindInvalid, Detail: "the body is not valid UTF-8"}, wantStatus: 400, wantType: "/problems/invalid-request", wantDetail: "The body is not valid UTF-8."},
		{name: "pointer-stays", err: &Error{Kind: KindInvalid, Detail: "/range must be a string"}, wantStatus: 400, wantType: "/problems/invalid-request", wantDetail: "/range must be a string."},
		{name: "question-kept", err: &Error{Kind: KindInvalid, Detail: "Is this a range?"}, wantStatus: 400, wantType: "/problems/invalid-request", wantDetail: "Is this a range?"},
		{name: "non-ascii-capital", err: &Error{Kind: KindInvalid, Detail: "état inconnu"}, wantStatus: 400, wantType: "/problems/invalid-request", wantDetail: "État inconnu."},
		{name: "empty-detail", err: &Error{Kind: KindGone}, wantStatus: 410, wantType: "/problems/job-expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, status := For(tt.err, "/v1/reports/x")
			if status != tt.wantStatus || p.Status != tt.wantStatus {
				t.Errorf("status = %d, body status %d, want %d", status, p.Status, tt.wantStatus)
			}
			if p.Type != tt.wantType || p.Instance != "/v1/reports/x" || p.Title == "" {
				t.Errorf("problem = %+v, want type %s, instance /v1/reports/x and a title", p, tt.wantType)
			}
			want := tt.wantDetail
			if want == "" {
				want = problemTypes[KindInternal].About
				var e *Error
				if errors.As(tt.err, &e) {
					if pt, ok := problemTypes[e.Kind]; ok {
						want = pt.About
					}
				}
			}
			if p.Detail != want {
				t.Errorf("detail = %q, want %q", p.Detail, want)
			}
			if strings.Contains(p.Detail, "10.0.0.7") || strings.Contains(p.Detail, "hunter2") {
				t.Errorf("detail leaks the internal error: %q", p.Detail)
			}
		})
	}
}

// TestProblemTypesComplete checks that every Kind has its own row in the one table, with a status that
// is an error, and that no two kinds share a type URI.
func TestProblemTypesComplete(t *testing.T) {
	t.Parallel()
	slugs := map[string]Kind{}
	for k := KindInternal; k <= KindMethodNotAllowed; k++ {
		pt, ok := problemTypes[k]
		if !ok {
			t.Errorf("Kind %d has no problem type", k)
			continue
		}
		if pt.Status < 400 || pt.Status > 599 || pt.Slug == "" || pt.Title == "" || pt.About == "" {
			t.Errorf("Kind %d: incomplete problem type %+v", k, pt)
		}
		if other, dup := slugs[pt.Slug]; dup {
			t.Errorf("Kinds %d and %d share the type /problems/%s", other, k, pt.Slug)
		}
		slugs[pt.Slug] = k
	}
}
