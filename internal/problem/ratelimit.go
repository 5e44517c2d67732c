package problem

import (
	"math"
	"net/http"
	"strconv"
	"time"
)

// RateLimitPolicyName names reportd's one quota policy, the submissions a client may make, in the
// RateLimit and RateLimit-Policy fields.
const RateLimitPolicyName = "submissions"

// RateLimit is a client's limit on submissions (PerSecond, with bursts of Burst) and where a request
// left it, as the RateLimit and RateLimit-Policy fields of draft-ietf-httpapi-ratelimit-headers-11
// (May 2026) describe it: structured-field lists of one item each, "submissions";q=50;w=3 and
// "submissions";r=12;t=1.
type RateLimit struct {
	PerSecond float64
	Burst     int
	// Available is how many submissions the client may make at once now.
	Available int
	// Window is the time within which it should make no more than Available: until it may make a
	// whole burst again, or, when it may make none, until it may make one.
	Window time.Duration
}

// Policy is the RateLimit-Policy field: a quota of a burst in the time a burst takes to refill. A
// client that keeps to it is never refused (the limit is a cell rate: it allows more, spread out).
func (l RateLimit) Policy() string {
	w := max(1, int64(math.Ceil(float64(l.Burst)/l.PerSecond)))
	return strconv.Quote(RateLimitPolicyName) + ";q=" + strconv.Itoa(l.Burst) + ";w=" + strconv.FormatInt(w, 10)
}

// Value is the RateLimit field: the submissions available now, and the effective window in whole
// seconds, rounded up.
func (l RateLimit) Value() string {
	t := int64(math.Ceil(l.Window.Seconds()))
	return strconv.Quote(RateLimitPolicyName) + ";r=" + strconv.Itoa(l.Available) + ";t=" + strconv.FormatInt(max(t, 0), 10)
}

// SetHeader sets both fields in h.
func (l RateLimit) SetHeader(h http.Header) {
	h.Set("RateLimit-Policy", l.Policy())
	h.Set("RateLimit", l.Value())
}

// Described is the limit in words, for a detail: "20 submissions a second, in bursts of up to 50".
func (l RateLimit) Described() string {
	return strconv.FormatFloat(l.PerSecond, 'f', -1, 64) + " submissions a second, in bursts of up to " + strconv.Itoa(l.Burst)
}
