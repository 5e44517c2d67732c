package impl

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reportd/reportd/gen"
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
			got.Wait, got.OK = preferWait(tt.header)
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
		if got := preferenceApplied(tc.wait); got == nil || *got != tc.want {
			t.Errorf("preferenceApplied(%s) = %v, want %q", tc.wait, got, tc.want)
		}
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("k", 255)
	tests := []struct {
		name, raw string
		want      string
		ok        bool
	}{
		{name: "plain", raw: "abc", want: "abc", ok: true},
		{name: "quoted-equals-plain", raw: `"abc"`, want: "abc", ok: true},
		{name: "uuid", raw: "8e03978e-40d5-43e8-bc93-6894a57f9324", want: "8e03978e-40d5-43e8-bc93-6894a57f9324", ok: true},
		{name: "one-char", raw: "x", want: "x", ok: true},
		{name: "255-chars", raw: long, want: long, ok: true},
		{name: "255-chars-quoted", raw: `"` + long + `"`, want: long, ok: true},
		{name: "printable-punctuation", raw: "a b~!#$%&'()*+,-./:;<=>?@[]^_`{|}", want: "a b~!#$%&'()*+,-./:;<=>?@[]^_`{|}", ok: true},
		{name: "empty", raw: ""},
		{name: "empty-quoted", raw: `""`},
		{name: "256-chars", raw: long + "k"},
		{name: "256-chars-quoted", raw: `"` + long + `k"`},
		{name: "control-char", raw: "ab\x01cd"},
		{name: "tab", raw: "ab\tcd"},
		{name: "newline", raw: "ab\ncd"},
		{name: "del", raw: "ab\x7fcd"},
		{name: "non-ascii", raw: "clé"},
		{name: "quote-inside-quotes", raw: `"a"b"`},
		{name: "backslash-inside-quotes", raw: `"a\b"`},
		// A key that starts a quoted string must end it: `"unterminated` is neither a token nor a string.
		{name: "unterminated-quote", raw: `"unterminated`},
		{name: "lone-quote", raw: `"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := idempotencyKey(tt.raw)
			if ok != tt.ok || got != tt.want {
				t.Errorf("idempotencyKey(%q) = %q, %v; want %q, %v", tt.raw, got, ok, tt.want, tt.ok)
			}
		})
	}
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

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
