package client

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultRetryAfter is the delay before the next poll when the server gave no usable Retry-After.
const DefaultRetryAfter = time.Second

// parseRetryAfter reads a Retry-After header (RFC 9110 section 10.2.3): delay-seconds, or an HTTP-date
// that now is subtracted from (a date in the past means no delay). ok is false for an absent or
// unreadable header.
func parseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseUint(v, 10, 31); err == nil {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
