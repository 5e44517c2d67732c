package impl

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/jobs"
)

func TestPreferWaitHeader(t *testing.T) {
	t.Parallel()
	type answer struct {
		Wait time.Duration
		OK   bool
	}
	none := answer{}
	tests := []struct {
		name   string
		header *string
		want   answer
	}{
		{name: "absent", header: nil, want: none},
		{name: "empty", header: ptr(""), want: none},
		{name: "wait-0", header: ptr("wait=0"), want: answer{0, true}},
		{name: "wait-5", header: ptr("wait=5"), want: answer{5 * time.Second, true}},
		{name: "name-is-case-insensitive", header: ptr("WAIT=5"), want: answer{5 * time.Second, true}},
		{name: "with-respond-async", header: ptr("respond-async, wait=10"), want: answer{10 * time.Second, true}},
		{name: "after-other-preferences", header: ptr("handling=lenient, respond-async,wait=3"), want: answer{3 * time.Second, true}},
		{name: "at-the-cap", header: ptr("wait=60"), want: answer{60 * time.Second, true}},
		{name: "capped-at-60s", header: ptr("wait=999"), want: answer{60 * time.Second, true}},
		// A valid delta-seconds too large for 32 bits is still a long wait, capped like any other
		// (preferWait's doc: "wait=N", N delta-seconds, capped at maxWait).
		{name: "huge-capped-at-60s", header: ptr("wait=4294967296"), want: answer{60 * time.Second, true}},
		{name: "negative-ignored", header: ptr("wait=-1"), want: none},
		{name: "not-a-number-ignored", header: ptr("wait=abc"), want: none},
		{name: "fraction-ignored", header: ptr("wait=1.5"), want: none},
		{name: "no-value-ignored", header: ptr("wait"), want: none},
		{name: "empty-value-ignored", header: ptr("wait="), want: none},
		{name: "only-respond-async", header: ptr("respond-async"), want: none},
		{name: "first-of-several-wins", header: ptr("wait=5, wait=10"), want: answer{5 * time.Second, true}},
		// RFC 7240: only the first instance of a preference counts, even when it is malformed.
		{name: "first-malformed-ignores-later", header: ptr("wait=abc, wait=5"), want: none},
		{name: "quoted-value", header: ptr(`wait="5"`), want: answer{5 * time.Second, true}},
		{name: "with-parameters", header: ptr("wait=5;foo=bar"), want: answer{5 * time.Second, true}},
		{name: "spaces-around-equals", header: ptr(" wait = 5 "), want: answer{5 * time.Second, true}},
		{name: "other-name-with-wait-prefix", header: ptr("waiting=5"), want: none},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got answer
			got.Wait, got.OK = waitOf(tt.header)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("preferWait(%q) (-want +got):\n%s", deref(tt.header), diff)
			}
		})
	}
}

func TestPreferenceApplied(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		wait time.Duration
		want string
	}{{0, "wait=0"}, {time.Second, "wait=1"}, {60 * time.Second, "wait=60"}} {
		if got := preferenceApplied(jobs.Job{Waited: true}, &tc.wait); got == nil || *got != tc.want {
			t.Errorf("preferenceApplied(%s) = %v, want %q", tc.wait, got, tc.want)
		}
		if got := preferenceApplied(jobs.Job{}, &tc.wait); got != nil {
			t.Errorf("preferenceApplied(%s) of a read that did not wait = %q, want none", tc.wait, *got)
		}
	}
}

// waitOf is preferWait's answer as a wait and whether there is one.
func waitOf(header *string) (time.Duration, bool) {
	if w := preferWait(header); w != nil {
		return *w, true
	}
	return 0, false
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	a := fingerprint(&gen.ReportRequest{Range: "2026-Q1"})
	if a != fingerprint(&gen.ReportRequest{Range: "2026-Q1"}) {
		t.Error("one request has two fingerprints")
	}
	if a == fingerprint(&gen.ReportRequest{Range: "2026-Q2"}) {
		t.Error("two requests share a fingerprint")
	}
}

func TestNoneMatch(t *testing.T) {
	t.Parallel()
	const etag = `"0123456789abcdef0123456789abcdef-json"`
	tests := []struct {
		name   string
		header *string
		want   bool
	}{
		{name: "absent", header: nil, want: false},
		{name: "empty", header: ptr(""), want: false},
		{name: "same", header: ptr(etag), want: true},
		{name: "other", header: ptr(`"0123456789abcdef0123456789abcdef-csv"`), want: false},
		{name: "star", header: ptr("*"), want: true},
		{name: "in-a-list", header: ptr(`"a", ` + etag + `, "b"`), want: true},
		{name: "in-a-list-without-spaces", header: ptr(`"a",` + etag), want: true},
		{name: "not-in-a-list", header: ptr(`"a", "b"`), want: false},
		{name: "weak-form-matches", header: ptr("W/" + etag), want: true},
		{name: "weak-form-in-a-list", header: ptr(`"a", W/` + etag), want: true},
		{name: "unquoted-does-not-match", header: ptr(strings.Trim(etag, `"`)), want: false},
		{name: "prefix-does-not-match", header: ptr(`"0123456789abcdef"`), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := noneMatch(tt.header, etag); got != tt.want {
				t.Errorf("noneMatch(%q, %s) = %v, want %v", deref(tt.header), etag, got, tt.want)
			}
		})
	}
}

func TestEtagOf(t *testing.T) {
	t.Parallel()
	report := []byte(`{"id":"x","orders":3}`)
	strong := regexp.MustCompile(`^"[0-9a-f]{32}-(json|csv)"$`)
	j, c := etagOf(report, mediaJSON), etagOf(report, mediaCSV)
	for _, tag := range []string{j, c} {
		if !strong.MatchString(tag) {
			t.Errorf("ETag %s is not a strong, quoted tag of the expected form", tag)
		}
	}
	if j == c {
		t.Errorf("JSON and CSV share the ETag %s", j)
	}
	if etagOf(report, mediaJSON) != j {
		t.Error("one report has two JSON ETags")
	}
	if other := etagOf([]byte(`{"id":"x","orders":4}`), mediaJSON); other == j {
		t.Errorf("two reports share the ETag %s", j)
	}
}

func TestHTTPDate(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 4, 2, 12, 30, 45, 999, time.FixedZone("CEST", 2*3600))
	if got := *httpDate(at); got != "Thu, 02 Apr 2026 10:30:45 GMT" {
		t.Errorf("httpDate = %q, want Thu, 02 Apr 2026 10:30:45 GMT", got)
	}
}
