package report

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrRangeSyntax is wrapped by ParseRange errors for text that is not one of
// the accepted forms YYYY-Qn, YYYY-MM, YYYY-MM-DD and YYYY-MM-DD..YYYY-MM-DD,
// or that names a day not on the calendar (2026-02-30): either way the text
// is not a range, as a JSON Schema "date" that is not a date is malformed.
var ErrRangeSyntax = errors.New("range syntax")

// ErrRangeUnservable is wrapped by ParseRange, ParseRangeAt and Summarize
// errors for a range of calendar days that cannot be served: one that ends
// before it starts, is longer than MaxRangeDays days, or starts after today.
var ErrRangeUnservable = errors.New("range unservable")

// MaxRangeDays is the longest range, in days, that ParseRange accepts and
// Summarize computes.
const MaxRangeDays = 366

// rangeDateLayout is the time layout of one day in a range.
const rangeDateLayout = "2006-01-02"

// DateRange is an inclusive range of calendar days. From and To are both at
// 00:00 UTC and To is not before From.
type DateRange struct{ From, To time.Time }

// ParseRange parses a quarter "YYYY-Qn" (n 1 to 4, the Q in either case), a
// month "YYYY-MM", a day "YYYY-MM-DD" (a range of that one day) or an
// inclusive day span "YYYY-MM-DD..YYYY-MM-DD", with years 0001 to 9999.
// Nothing else is accepted: no whitespace, no other separators. An error
// wraps ErrRangeSyntax when the text has the wrong shape, a field out of its
// range (month 13, Q5, day 32, year 0000) or a day that is not on the
// calendar (2026-02-30), and ErrRangeUnservable when it is made of calendar
// days but ends before it starts or is longer than MaxRangeDays days. The
// error text names the problem; when both days of a span are wrong, a field
// out of its range is named before a day off the calendar.
func ParseRange(s string) (DateRange, error) {
	switch {
	case len(s) == len("2006-Q1") && s[4] == '-' && (s[5] == 'Q' || s[5] == 'q'):
		y, err := parseYear(s[0:4])
		if err != nil {
			return DateRange{}, rangeError(s, ErrRangeSyntax, "%v", err)
		}
		if s[6] < '1' || s[6] > '4' {
			return DateRange{}, rangeError(s, ErrRangeSyntax, "quarter %q is not Q1..Q4", s[5:])
		}
		q := int(s[6] - '0')
		from := time.Date(y, time.Month(3*q-2), 1, 0, 0, 0, 0, time.UTC)
		return DateRange{From: from, To: from.AddDate(0, 3, -1)}, nil
	case len(s) == len("2006-01") && s[4] == '-':
		y, err := parseYear(s[0:4])
		if err != nil {
			return DateRange{}, rangeError(s, ErrRangeSyntax, "%v", err)
		}
		m, err := parseMonth(s[5:7])
		if err != nil {
			return DateRange{}, rangeError(s, ErrRangeSyntax, "%v", err)
		}
		from := time.Date(y, time.Month(m), 1, 0, 0, 0, 0, time.UTC)
		return DateRange{From: from, To: from.AddDate(0, 1, -1)}, nil
	case len(s) == len("2006-01-02") && s[4] == '-' && s[7] == '-':
		d, err := parseDay(s)
		if err != nil {
			return DateRange{}, rangeError(s, ErrRangeSyntax, "%v", err)
		}
		return DateRange{From: d, To: d}, nil
	case len(s) == len("2006-01-02..2006-01-02") && s[10:12] == "..":
		from, fromErr := parseDay(s[0:10])
		to, toErr := parseDay(s[12:22])
		// A field out of its range on either side is named before a day off the calendar.
		switch {
		case fromErr != nil && !errors.Is(fromErr, errOffCalendar):
			return DateRange{}, rangeError(s, ErrRangeSyntax, "start %v", fromErr)
		case toErr != nil && !errors.Is(toErr, errOffCalendar):
			return DateRange{}, rangeError(s, ErrRangeSyntax, "end %v", toErr)
		case fromErr != nil:
			return DateRange{}, rangeError(s, ErrRangeSyntax, "%v", fromErr)
		case toErr != nil:
			return DateRange{}, rangeError(s, ErrRangeSyntax, "%v", toErr)
		}
		r := DateRange{From: from, To: to}
		if to.Before(from) {
			return DateRange{}, rangeError(s, ErrRangeUnservable, "end %s is before start %s", s[12:22], s[0:10])
		}
		if n := r.Days(); n > MaxRangeDays {
			return DateRange{}, rangeError(s, ErrRangeUnservable, "spans %d days, more than the maximum of %d", n, MaxRangeDays)
		}
		return r, nil
	}
	return DateRange{}, rangeError(s, ErrRangeSyntax, "%s", shapeHint(s))
}

// ParseRangeAt is ParseRange for a range asked for at now: it also refuses,
// with an error wrapping ErrRangeUnservable, a range that starts after now's
// UTC date, since none of its days has happened and there is nothing to
// report. A range that starts by then but ends later is accepted: its days
// after the date of its summary count no orders (Summarize).
func ParseRangeAt(s string, now time.Time) (DateRange, error) {
	r, err := ParseRange(s)
	if err != nil {
		return DateRange{}, err
	}
	if today := dayOf(now); r.From.After(today) {
		return DateRange{}, rangeError(s, ErrRangeUnservable, "starts on %s, after today (%s, UTC); a report can only cover days that have begun",
			r.From.Format(rangeDateLayout), today.Format(rangeDateLayout))
	}
	return r, nil
}

// dayOf is t's UTC calendar date, at 00:00 UTC.
func dayOf(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// Days returns the number of days in r, counting both ends.
func (r DateRange) Days() int {
	return int((r.To.Unix()-r.From.Unix())/secondsPerDay) + 1
}

// String returns r in the canonical form "YYYY-MM-DD..YYYY-MM-DD", which
// ParseRange accepts.
func (r DateRange) String() string {
	return r.From.Format(rangeDateLayout) + ".." + r.To.Format(rangeDateLayout)
}

const secondsPerDay = 24 * 60 * 60

// dayFieldError is a problem with one YYYY-MM-DD field; it wraps the
// sentinel that classifies it so the caller can rank syntax above calendar.
type dayFieldError struct {
	msg  string
	kind error
}

func (e *dayFieldError) Error() string { return e.msg }
func (e *dayFieldError) Unwrap() error { return e.kind }

// errOffCalendar classifies a parseDay error for a day number the month does
// not have, so that ParseRange can name a field out of its range first.
var errOffCalendar = errors.New("not a calendar date")

// parseDay parses one YYYY-MM-DD day. Errors wrap ErrRangeSyntax or, for a
// day number the month does not have, errOffCalendar.
func parseDay(s string) (time.Time, error) {
	if s[4] != '-' || s[7] != '-' {
		return time.Time{}, &dayFieldError{fmt.Sprintf("%q is not YYYY-MM-DD", s), ErrRangeSyntax}
	}
	y, err := parseYear(s[0:4])
	if err != nil {
		return time.Time{}, &dayFieldError{fmt.Sprintf("%q: %v", s, err), ErrRangeSyntax}
	}
	m, err := parseMonth(s[5:7])
	if err != nil {
		return time.Time{}, &dayFieldError{fmt.Sprintf("%q: %v", s, err), ErrRangeSyntax}
	}
	d, ok := parse2(s[8:10])
	if !ok || d < 1 || d > 31 {
		return time.Time{}, &dayFieldError{fmt.Sprintf("%q: day %q is not 01..31", s, s[8:10]), ErrRangeSyntax}
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if t.Day() != d {
		return time.Time{}, &dayFieldError{fmt.Sprintf("%s is not a calendar date (%s %d has %d days)",
			s, time.Month(m), y, daysIn(y, time.Month(m))), errOffCalendar}
	}
	return t, nil
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func parseYear(s string) (int, error) {
	if !isDigits(s) {
		return 0, fmt.Errorf("year %q is not four digits", s)
	}
	y := int(s[0]-'0')*1000 + int(s[1]-'0')*100 + int(s[2]-'0')*10 + int(s[3]-'0')
	if y < 1 {
		return 0, fmt.Errorf("year %s is not 0001..9999", s)
	}
	return y, nil
}

func parseMonth(s string) (int, error) {
	m, ok := parse2(s)
	if !ok || m < 1 || m > 12 {
		return 0, fmt.Errorf("month %q is not 01..12", s)
	}
	return m, nil
}

// parse2 parses exactly two ASCII digits.
func parse2(s string) (int, bool) {
	if !isDigits(s) {
		return 0, false
	}
	return int(s[0]-'0')*10 + int(s[1]-'0'), true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}

// shapeHint explains why s has none of the accepted shapes.
func shapeHint(s string) string {
	const forms = "want YYYY-Qn, YYYY-MM, YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD"
	switch {
	case s == "":
		return "empty; " + forms
	case strings.TrimSpace(s) != s || strings.ContainsAny(s, " \t\r\n"):
		return "contains whitespace; " + forms
	case strings.Contains(s, ".."):
		return "a span needs two YYYY-MM-DD days around \"..\"; " + forms
	}
	return forms
}

// rangeError builds a ParseRange error: the (possibly shortened) input, the
// detail, and the wrapped sentinel.
func rangeError(s string, sentinel error, format string, args ...any) error {
	const maxQuoted = 48
	if len(s) > maxQuoted {
		s = s[:maxQuoted] + "..."
	}
	// The sentinel classifies the error for callers; its own text would only repeat the class.
	return &RangeError{Text: s, Reason: fmt.Sprintf(format, args...), kind: sentinel}
}

// RangeError is why ParseRange or ParseRangeAt refused Text (cut to 48 bytes): Reason, in words,
// classified by the sentinel it wraps (ErrRangeSyntax or ErrRangeUnservable).
type RangeError struct {
	Text, Reason string
	kind         error
}

func (e *RangeError) Error() string { return fmt.Sprintf("range %q: %s", e.Text, e.Reason) }
func (e *RangeError) Unwrap() error { return e.kind }
