package report

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func day(y int, m time.Month, d int) time.Time {
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func TestParseRange(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       string
		want     DateRange
		wantDays int
		wantErr  error  // sentinel the error must wrap; nil for success
		wantMsg  string // substring the error text must contain
	}{
		{name: "quarter", in: "2026-Q1", want: DateRange{day(2026, 1, 1), day(2026, 3, 31)}, wantDays: 90},
		{name: "quarter-2", in: "2026-Q2", want: DateRange{day(2026, 4, 1), day(2026, 6, 30)}, wantDays: 91},
		{name: "quarter-4", in: "2026-Q4", want: DateRange{day(2026, 10, 1), day(2026, 12, 31)}, wantDays: 92},
		{name: "leap-quarter", in: "2024-Q1", want: DateRange{day(2024, 1, 1), day(2024, 3, 31)}, wantDays: 91},
		{name: "month", in: "2026-02", want: DateRange{day(2026, 2, 1), day(2026, 2, 28)}, wantDays: 28},
		{name: "leap-month", in: "2024-02", want: DateRange{day(2024, 2, 1), day(2024, 2, 29)}, wantDays: 29},
		{name: "december", in: "2026-12", want: DateRange{day(2026, 12, 1), day(2026, 12, 31)}, wantDays: 31},
		{name: "span", in: "2026-01-05..2026-01-07", want: DateRange{day(2026, 1, 5), day(2026, 1, 7)}, wantDays: 3},
		{name: "one-day-span", in: "2026-01-05..2026-01-05", want: DateRange{day(2026, 1, 5), day(2026, 1, 5)}, wantDays: 1},
		{name: "leap-day-span", in: "2024-02-28..2024-03-01", want: DateRange{day(2024, 2, 28), day(2024, 3, 1)}, wantDays: 3},
		{name: "year-end-span", in: "2025-12-31..2026-01-01", want: DateRange{day(2025, 12, 31), day(2026, 1, 1)}, wantDays: 2},
		{name: "366-days-ok", in: "2024-01-01..2024-12-31", want: DateRange{day(2024, 1, 1), day(2024, 12, 31)}, wantDays: 366},
		{name: "year-0001", in: "0001-01", want: DateRange{day(1, 1, 1), day(1, 1, 31)}, wantDays: 31},
		{name: "year-9999", in: "9999-Q4", want: DateRange{day(9999, 10, 1), day(9999, 12, 31)}, wantDays: 92},
		{name: "lower-case-q", in: "2026-q1", want: DateRange{day(2026, 1, 1), day(2026, 3, 31)}, wantDays: 90},
		{name: "lower-case-q4", in: "2026-q4", want: DateRange{day(2026, 10, 1), day(2026, 12, 31)}, wantDays: 92},
		{name: "single-day", in: "2025-01-01", want: DateRange{day(2025, 1, 1), day(2025, 1, 1)}, wantDays: 1},
		{name: "single-leap-day", in: "2024-02-29", want: DateRange{day(2024, 2, 29), day(2024, 2, 29)}, wantDays: 1},
		{name: "single-day-year-0001", in: "0001-01-01", want: DateRange{day(1, 1, 1), day(1, 1, 1)}, wantDays: 1},

		// A day off the calendar is not a day: malformed, as month 13 is (one status for both).
		{name: "feb-30-syntax", in: "2026-02-30..2026-03-01", wantErr: ErrRangeSyntax, wantMsg: "2026-02-30 is not a calendar date"},
		{name: "feb-29-non-leap", in: "2025-02-29..2025-03-01", wantErr: ErrRangeSyntax, wantMsg: "2025-02-29 is not a calendar date"},
		{name: "apr-31-end", in: "2026-04-01..2026-04-31", wantErr: ErrRangeSyntax, wantMsg: "2026-04-31 is not a calendar date (April 2026 has 30 days)"},
		{name: "single-day-feb-30", in: "2026-02-30", wantErr: ErrRangeSyntax, wantMsg: "2026-02-30 is not a calendar date (February 2026 has 28 days)"},
		{name: "single-day-feb-29-non-leap", in: "2025-02-29", wantErr: ErrRangeSyntax, wantMsg: "2025-02-29 is not a calendar date"},
		{name: "end-before-start", in: "2026-03-01..2026-02-01", wantErr: ErrRangeUnservable, wantMsg: "end 2026-02-01 is before start 2026-03-01"},
		{name: "367-days", in: "2024-01-01..2025-01-01", wantErr: ErrRangeUnservable, wantMsg: "spans 367 days, more than the maximum of 366"},
		{name: "years-long", in: "0001-01-01..9999-12-31", wantErr: ErrRangeUnservable, wantMsg: "more than the maximum of 366"},

		{name: "q5-syntax", in: "2026-Q5", wantErr: ErrRangeSyntax, wantMsg: `quarter "Q5" is not Q1..Q4`},
		{name: "q0-syntax", in: "2026-Q0", wantErr: ErrRangeSyntax, wantMsg: "is not Q1..Q4"},
		{name: "lower-case-q5", in: "2026-q5", wantErr: ErrRangeSyntax, wantMsg: `quarter "q5" is not Q1..Q4`},
		{name: "other-letter", in: "2026-W1", wantErr: ErrRangeSyntax, wantMsg: `month "W1" is not 01..12`},
		{name: "month-13", in: "2026-13", wantErr: ErrRangeSyntax, wantMsg: `month "13" is not 01..12`},
		{name: "month-00", in: "2026-00", wantErr: ErrRangeSyntax, wantMsg: `month "00" is not 01..12`},
		{name: "year-0000", in: "0000-01", wantErr: ErrRangeSyntax, wantMsg: "year 0000 is not 0001..9999"},
		{name: "year-0000-quarter", in: "0000-Q1", wantErr: ErrRangeSyntax, wantMsg: "year 0000"},
		{name: "year-0000-span", in: "0000-12-31..0001-01-01", wantErr: ErrRangeSyntax, wantMsg: "year 0000"},
		{name: "day-32", in: "2026-01-32..2026-02-01", wantErr: ErrRangeSyntax, wantMsg: `day "32" is not 01..31`},
		{name: "single-day-month-13", in: "2026-13-01", wantErr: ErrRangeSyntax, wantMsg: `month "13" is not 01..12`},
		{name: "single-day-32", in: "2026-01-32", wantErr: ErrRangeSyntax, wantMsg: `day "32" is not 01..31`},
		{name: "single-day-slashes", in: "2026/01/01", wantErr: ErrRangeSyntax, wantMsg: "want YYYY-Qn, YYYY-MM, YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD"},
		{name: "single-day-trailing-space", in: "2026-01-1 ", wantErr: ErrRangeSyntax, wantMsg: `day "1 " is not 01..31`},
		{name: "day-00", in: "2026-01-01..2026-01-00", wantErr: ErrRangeSyntax, wantMsg: `end "2026-01-00": day "00"`},
		{name: "field-outranks-calendar", in: "2026-02-30..2026-13-01", wantErr: ErrRangeSyntax, wantMsg: "month"},
		{name: "calendar-outranks-order", in: "2026-03-01..2026-02-30", wantErr: ErrRangeSyntax, wantMsg: "2026-02-30 is not a calendar date"},
		{name: "empty", in: "", wantErr: ErrRangeSyntax, wantMsg: "empty"},
		{name: "leading-space", in: " 2026-01", wantErr: ErrRangeSyntax, wantMsg: "whitespace"},
		{name: "trailing-newline", in: "2026-01\n", wantErr: ErrRangeSyntax, wantMsg: "whitespace"},
		{name: "inner-space", in: "2026-01-01 ..2026-01-02", wantErr: ErrRangeSyntax, wantMsg: "whitespace"},
		{name: "trailing-garbage", in: "2026-01x", wantErr: ErrRangeSyntax, wantMsg: "want YYYY-Qn, YYYY-MM, YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD"},
		{name: "span-trailing-garbage", in: "2026-01-01..2026-01-02Z", wantErr: ErrRangeSyntax},
		{name: "half-span", in: "2026-01-01..", wantErr: ErrRangeSyntax, wantMsg: `two YYYY-MM-DD days around ".."`},
		{name: "slash-month", in: "2026/01", wantErr: ErrRangeSyntax, wantMsg: "want YYYY-Qn, YYYY-MM, YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD"},
		{name: "two-digit-month-field", in: "2026-1-", wantErr: ErrRangeSyntax, wantMsg: `month "1-"`},
		{name: "span-wrong-separator", in: "2026-01-01__2026-01-02", wantErr: ErrRangeSyntax},
		{name: "span-slashes", in: "2026/01/01..2026/01/02", wantErr: ErrRangeSyntax, wantMsg: `start "2026/01/01" is not YYYY-MM-DD`},
		{name: "signed-year", in: "+026-01", wantErr: ErrRangeSyntax, wantMsg: "four digits"},
		{name: "five-digit-year", in: "10000-01", wantErr: ErrRangeSyntax},
		{name: "fullwidth-digits", in: "２０２６-01", wantErr: ErrRangeSyntax},
		{name: "long-input", in: strings.Repeat("9", 1000), wantErr: ErrRangeSyntax, wantMsg: `..."`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseRange(tt.in)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("ParseRange(%q) error: %v", tt.in, err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("ParseRange(%q) mismatch (-want +got):\n%s", tt.in, diff)
				}
				if got.Days() != tt.wantDays {
					t.Errorf("ParseRange(%q).Days() = %d, want %d", tt.in, got.Days(), tt.wantDays)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseRange(%q) error = %v, want one wrapping %v", tt.in, err, tt.wantErr)
			}
			other := ErrRangeSyntax
			if tt.wantErr == ErrRangeSyntax {
				other = ErrRangeUnservable
			}
			if errors.Is(err, other) {
				t.Errorf("ParseRange(%q) error %v wraps both sentinels", tt.in, err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("ParseRange(%q) error %q does not contain %q", tt.in, err, tt.wantMsg)
			}
			if diff := cmp.Diff(DateRange{}, got); diff != "" {
				t.Errorf("ParseRange(%q) returned a range with its error (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// TestParseRangeAt: a range asked for at a moment may not start after that moment's UTC date; one that
// starts by then is accepted, however far it runs on.
func TestParseRangeAt(t *testing.T) {
	t.Parallel()
	// 23:30 on 7 December 2026 in UTC is already 8 December east of it: today is the UTC date.
	now := time.Date(2026, 12, 7, 23, 30, 0, 0, time.UTC)
	tests := []struct {
		name    string
		in      string
		now     time.Time
		want    DateRange
		wantErr error
		wantMsg string
	}{
		{name: "past-quarter", in: "2026-Q1", now: now, want: DateRange{day(2026, 1, 1), day(2026, 3, 31)}},
		{name: "current-quarter", in: "2026-Q4", now: now, want: DateRange{day(2026, 10, 1), day(2026, 12, 31)}},
		{name: "current-quarter-lower-case", in: "2026-q4", now: now, want: DateRange{day(2026, 10, 1), day(2026, 12, 31)}},
		{name: "current-month", in: "2026-12", now: now, want: DateRange{day(2026, 12, 1), day(2026, 12, 31)}},
		{name: "today", in: "2026-12-07", now: now, want: DateRange{day(2026, 12, 7), day(2026, 12, 7)}},
		{name: "span-into-the-future", in: "2026-12-01..2027-01-31", now: now, want: DateRange{day(2026, 12, 1), day(2027, 1, 31)}},
		{name: "today-in-another-zone", in: "2026-12-07", now: now.In(time.FixedZone("UTC+2", 2*3600)), want: DateRange{day(2026, 12, 7), day(2026, 12, 7)}},

		{name: "tomorrow", in: "2026-12-08", now: now, wantErr: ErrRangeUnservable,
			wantMsg: `range "2026-12-08": starts on 2026-12-08, after today (2026-12-07, UTC); a report can only cover days that have begun`},
		{name: "tomorrow-already-elsewhere", in: "2026-12-08", now: now.In(time.FixedZone("UTC+2", 2*3600)), wantErr: ErrRangeUnservable, wantMsg: "after today (2026-12-07, UTC)"},
		{name: "next-quarter", in: "2027-Q1", now: now, wantErr: ErrRangeUnservable, wantMsg: "starts on 2027-01-01"},
		{name: "year-9999", in: "9999-Q4", now: now, wantErr: ErrRangeUnservable, wantMsg: "starts on 9999-10-01, after today"},
		{name: "future-span", in: "2027-01-01..2027-01-02", now: now, wantErr: ErrRangeUnservable, wantMsg: "starts on 2027-01-01"},
		// What ParseRange refuses is refused the same way.
		{name: "syntax-first", in: "9999-13", now: now, wantErr: ErrRangeSyntax, wantMsg: `month "13"`},
		{name: "calendar-first", in: "9999-02-30", now: now, wantErr: ErrRangeSyntax, wantMsg: "not a calendar date"},
		{name: "order-first", in: "2027-03-01..2027-02-01", now: now, wantErr: ErrRangeUnservable, wantMsg: "is before start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseRangeAt(tt.in, tt.now)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("ParseRangeAt(%q, %s) error: %v", tt.in, tt.now, err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("ParseRangeAt(%q, %s) mismatch (-want +got):\n%s", tt.in, tt.now, diff)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || !strings.Contains(fmt.Sprint(err), tt.wantMsg) {
				t.Errorf("ParseRangeAt(%q, %s) error = %v, want one wrapping %v that says %q", tt.in, tt.now, err, tt.wantErr, tt.wantMsg)
			}
			if diff := cmp.Diff(DateRange{}, got); diff != "" {
				t.Errorf("ParseRangeAt(%q) returned a range with its error (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// TestParseRangeNotADateIsOneKind: a month that does not exist and a day the month does not have are
// both not dates, so both are the same kind of error, and so answer the same status.
func TestParseRangeNotADateIsOneKind(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"2026-13", "2026-02-30..2026-03-01", "2026-02-30", "2026-13-01", "2026-00"} {
		_, err := ParseRange(in)
		if !errors.Is(err, ErrRangeSyntax) || errors.Is(err, ErrRangeUnservable) {
			t.Errorf("ParseRange(%q) error = %v, want one wrapping ErrRangeSyntax alone", in, err)
		}
	}
}

func TestDateRangeString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		r    DateRange
		want string
	}{
		{name: "quarter", r: DateRange{day(2026, 1, 1), day(2026, 3, 31)}, want: "2026-01-01..2026-03-31"},
		{name: "one-day", r: DateRange{day(2026, 7, 4), day(2026, 7, 4)}, want: "2026-07-04..2026-07-04"},
		{name: "year-0001", r: DateRange{day(1, 1, 1), day(1, 1, 2)}, want: "0001-01-01..0001-01-02"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, tt.r.String()); diff != "" {
				t.Errorf("String() mismatch (-want +got):\n%s", diff)
			}
			back, err := ParseRange(tt.r.String())
			if err != nil {
				t.Fatalf("ParseRange(String()) error: %v", err)
			}
			if diff := cmp.Diff(tt.r, back); diff != "" {
				t.Errorf("ParseRange(String()) mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{
		"2026-Q1", "2026-Q4", "2026-Q5", "2026-q1", "0000-Q1", "9999-Q4",
		"2026-02", "2024-02", "2026-13", "0001-01", "0000-01", "2026-01-01", "2026-02-30", "2026-q4",
		"2024-02-28..2024-03-01", "2026-02-30..2026-03-01", "2026-03-01..2026-02-01",
		"2024-01-01..2024-12-31", "2024-01-01..2025-01-01", "0001-01-01..0001-12-31",
		"9999-12-31..9999-12-31", "2026-01-32..2026-02-01", "", " ", "2026-01 ",
		"2026-01-01..2026-01-0\xff", "２０２６-01", "2026-01-01..", "..",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRange(s)
		if err != nil {
			syntax, unservable := errors.Is(err, ErrRangeSyntax), errors.Is(err, ErrRangeUnservable)
			if syntax == unservable {
				t.Fatalf("ParseRange(%q) error %v: wraps ErrRangeSyntax %v, ErrRangeUnservable %v; want exactly one", s, err, syntax, unservable)
			}
			return
		}
		if n := r.Days(); n < 1 || n > MaxRangeDays {
			t.Fatalf("ParseRange(%q) = %v with %d days, want 1..%d", s, r, n, MaxRangeDays)
		}
		back, err := ParseRange(r.String())
		if err != nil {
			t.Fatalf("ParseRange(%q) = %v, but ParseRange(%q) error: %v", s, r, r.String(), err)
		}
		if diff := cmp.Diff(r, back); diff != "" {
			t.Fatalf("ParseRange(%q) does not round-trip through %q (-first +second):\n%s", s, r.String(), diff)
		}
	})
}
