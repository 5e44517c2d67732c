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
		{name: "invalid", err: Errorf(KindInvalid, "/range: bad"), wantStatus: 400, wantType: "/problems/invalid-request", wantDetail: "/range: bad"},
		{name: "unprocessable", err: Errorf(KindUnprocessable, "/range: feb 30"), wantStatus: 422, wantType: "/problems/range-unservable", wantDetail: "/range: feb 30"},
		{name: "not-found", err: Errorf(KindNotFound, "no job"), wantStatus: 404, wantType: "/problems/job-not-found", wantDetail: "no job"},
		{name: "gone", err: Errorf(KindGone, "expired"), wantStatus: 410, wantType: "/problems/job-expired", wantDetail: "expired"},
		{name: "not-done", err: Errorf(KindNotDone, "pending"), wantStatus: 409, wantType: "/problems/job-not-done", wantDetail: "pending"},
		{name: "not-acceptable", err: Errorf(KindNotAcceptable, "png"), wantStatus: 406, wantType: "/problems/not-acceptable", wantDetail: "png"},
		{name: "unavailable-hides-cause", err: Unavailable(errors.New(secret)), wantStatus: 503, wantType: "/problems/unavailable", wantDetail: "the job store cannot be reached; retry shortly"},
		{name: "too-large", err: Errorf(KindTooLarge, "big"), wantStatus: 413, wantType: "/problems/payload-too-large", wantDetail: "big"},
		{name: "unsupported-media-type", err: Errorf(KindUnsupportedMediaType, "xml"), wantStatus: 415, wantType: "/problems/unsupported-media-type", wantDetail: "xml"},
		{name: "no-route", err: Errorf(KindNoRoute, "nothing"), wantStatus: 404, wantType: "/problems/no-route", wantDetail: "nothing"},
		{name: "method-not-allowed", err: Errorf(KindMethodNotAllowed, "PUT"), wantStatus: 405, wantType: "/problems/method-not-allowed", wantDetail: "PUT"},
		{name: "wrapped-error", err: fmt.Errorf("read job: %w", Errorf(KindGone, "expired")), wantStatus: 410, wantType: "/problems/job-expired", wantDetail: "expired"},
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
