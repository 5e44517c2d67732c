package store

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestReportHeader checks the line a stored report starts with: a report reads back with its owner and
// readable-until whatever the owner holds, and a value without a well-formed header (a report stored
// before reportd wrote one, or a damaged line) reads as all body, so that a result read falls back to
// asynq's task rather than trust it.
func TestReportHeader(t *testing.T) {
	t.Parallel()
	until := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	body := `{"id":"x","orders":3}`
	for _, owner := range []string{"acme", "", "two words", "line\nbreak", "reportd-report 1 9 9 x\n"} {
		value := string(appendReportHeader(nil, owner, until)) + body
		want := Report{Body: []byte(body), Owner: owner, ReadableUntil: until}
		if diff := cmp.Diff(want, parseReport([]byte(value))); diff != "" {
			t.Errorf("owner %q: (-want +got)\n%s", owner, diff)
		}
	}
	for _, value := range []string{
		body, // stored before the header
		"reportd-report 1 " + body,
		"reportd-report 1 1764410400000 4 acme" + body, // no newline after the owner
		"reportd-report 1 1764410400000 40 acme\n" + body,
		"reportd-report 1 1764410400000 -1 acme\n" + body,
		"reportd-report 1 soon 4 acme\n" + body,
		"reportd-report 2 1764410400000 4 acme\n" + body,
		"",
	} {
		if diff := cmp.Diff(Report{Body: []byte(value)}, parseReport([]byte(value))); diff != "" {
			t.Errorf("%q: (-want +got)\n%s", value, diff)
		}
	}
}
