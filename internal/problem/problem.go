// Package problem is reportd's one error vocabulary: the kinds of failure a client can act on, and
// the one table from each kind to an HTTP status and an RFC 9457 problem type. The lifecycle, the HTTP
// plumbing and the handlers all fail with an *Error, and only Write turns one into a response.
package problem

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kind is a class of failure that a client can act on. Each maps to one HTTP status and one problem type.
type Kind int

// The kinds of failure reportd reports.
const (
	KindInternal Kind = iota
	KindInvalid
	KindUnprocessable
	KindNotFound
	KindGone
	KindNotDone
	KindFinished
	KindNotFinished
	KindNotAcceptable
	KindUnavailable
	KindTooLarge
	KindUnsupportedMediaType
	KindNoRoute
	KindMethodNotAllowed
	KindIdempotencyMismatch
	KindWebhooksOff
	KindCallbackRefused
	KindUnauthorized
	KindRateLimited
	KindClientGone
)

// Type is what every occurrence of a Kind has in common.
type Type struct {
	Status int
	Slug   string
	Title  string
	About  string
}

// problemTypes is the one table from failure to HTTP. A problem's type URI is /problems/{slug}, and
// GET on it describes the problem.
//
// Every detail, wherever it is written, is in one style: one sentence for a person, ending with a
// period, that starts with what is at fault and says what is wrong with it, then, after a semicolon,
// what to do, if anything can be done. What is at fault comes first, by name: a job by its id ("Job
// 6f1c... has expired; ..."), a member of the body by its JSON pointer ("/range is not a range: ..."),
// a parameter or header by where it is and its name (`Path parameter "id" ...`), else the body, this
// client, this service or the resource ("The body ...", "This client ..."). A detail starts with a
// capital letter unless it starts with a JSON pointer. For applies the capital and the period to a
// detail made of an error's text, which Go writes lower-case and without the period (a validator's
// reason, a range's, the body check's).
var problemTypes = map[Kind]Type{
	KindInternal: {http.StatusInternalServerError, "internal",
		"Internal server error", "reportd failed in a way it did not expect. The error is logged with the request id; retrying may help."},
	KindInvalid: {http.StatusBadRequest, "invalid-request",
		"Request does not match the API contract", "The request was refused by the OpenAPI contract: malformed JSON, a missing, unknown or mistyped field (a range that is not one, or names a day not on the calendar, included), or a malformed id. The detail names the field by its JSON pointer."},
	KindUnprocessable: {http.StatusUnprocessableEntity, "range-unservable",
		"Range cannot be served", "The range is made of calendar days but ends before it starts, spans more than 366 days, or starts after today (UTC), when none of its days has happened."},
	KindNotFound: {http.StatusNotFound, "job-not-found",
		"Job not found", "No job with this id was ever issued here, or it expired so long ago that even its tombstone is gone."},
	KindGone: {http.StatusGone, "job-expired",
		"Job expired", "The job existed but its retention period has passed: its status and report are gone for good. Submit it again."},
	KindNotDone: {http.StatusConflict, "job-not-done",
		"Job is not done", "The report is only readable once the job is done. Poll the job's status URL, honouring Retry-After; a job that failed or was canceled has no report."},
	KindFinished: {http.StatusConflict, "job-finished",
		"Job already finished", "The job finished as done or failed before it could be canceled, so there is nothing to cancel; it and its report are unchanged. DELETE the job to delete it."},
	KindNotFinished: {http.StatusConflict, "job-not-finished",
		"Job not finished", "Only a finished job (done, failed or canceled) can be deleted. Cancel a pending or running job first (POST /v1/reports/{id}/cancel), then delete it."},
	KindNotAcceptable: {http.StatusNotAcceptable, "not-acceptable",
		"No acceptable representation", "The Accept header allows none of the media types this resource has: application/json and text/csv."},
	KindUnavailable: {http.StatusServiceUnavailable, "unavailable",
		"Service unavailable", "reportd cannot reach its job store (Redis) right now. Retry after the number of seconds in Retry-After."},
	KindTooLarge: {http.StatusRequestEntityTooLarge, "payload-too-large",
		"Request body too large", "Request bodies are limited to 64 KiB."},
	KindUnsupportedMediaType: {http.StatusUnsupportedMediaType, "unsupported-media-type",
		"Unsupported media type", "Request bodies must be application/json."},
	KindNoRoute: {http.StatusNotFound, "no-route",
		"No such resource", "Nothing is served at this path. The API is described at /openapi.yaml."},
	KindMethodNotAllowed: {http.StatusMethodNotAllowed, "method-not-allowed",
		"Method not allowed", "This resource does not support this method; the Allow header lists those it does."},
	KindUnauthorized: {http.StatusUnauthorized, "unauthorized",
		"Authentication required", "This resource needs credentials that the request did not carry, or carried wrong."},
	KindClientGone: {499, "client-closed-request",
		"Client closed the request", "The client went away before the answer was ready (for example during a Prefer: wait); nothing failed on the server."},
	KindRateLimited: {http.StatusTooManyRequests, "rate-limited",
		"Too many requests", "This client submits faster than its limit, or has as many unfinished jobs as it may have. Retry after the number of seconds in Retry-After."},
	KindWebhooksOff: {http.StatusUnprocessableEntity, "webhooks-not-set-up",
		"Webhooks are not set up", "This service has no webhook secret configured (REPORTD_WEBHOOK_SECRET), so it cannot sign callbacks. Submit without callback_url and poll, or ask the operator to set webhooks up."},
	KindCallbackRefused: {http.StatusUnprocessableEntity, "callback-url-refused",
		"Callback URL refused", "The service will not call this callback_url: it must be an absolute https URL of a public address (not loopback, private, link-local, multicast or otherwise special)."},
	KindIdempotencyMismatch: {http.StatusUnprocessableEntity, "idempotency-key-reused",
		"Idempotency-Key reused", "This Idempotency-Key was first sent with a different request body. A key stands for one request: retry with the same body, or use a new key for a new request."},
}

// The problems a failed job's status carries in its error member.
var (
	ReportFailed = Type{http.StatusInternalServerError, "report-failed",
		"Report failed", "The job failed on every attempt it was given. Submitting it again may help."}
	ReportTimedOut = Type{http.StatusInternalServerError, "report-timeout",
		"Report took too long", "The job ran longer than the job time limit. Ask for a shorter range."}
	ReportUnreadable = Type{http.StatusUnprocessableEntity, "report-unreadable",
		"Job unreadable", "The job's stored request cannot be read by this version of reportd. Submit it again."}
)

// Retry-After bounds, in seconds, as the spec declares them.
const (
	MinRetryAfter = 1
	MaxRetryAfter = 30
)

// unavailableRetryAfter is the Retry-After, in seconds, of a 503: long enough not to hammer a Redis that
// is restarting, short enough that a client notices its return.
const unavailableRetryAfter = 2

// Error is reportd's one error vocabulary: a Kind, what to tell the client, and the cause to log.
type Error struct {
	Kind   Kind
	Detail string
	Err    error
	// RetryAfter, in seconds, is sent as Retry-After with a 429 (a 503 always gets one).
	RetryAfter int
	// RateLimit, if set, is the client's rate limit where the refused request stood against it, sent
	// as its RateLimit and RateLimit-Policy fields.
	RateLimit *RateLimit
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Detail + ": " + e.Err.Error()
	}
	return e.Detail
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of kind k whose detail is formatted for the client.
func Errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Detail: fmt.Sprintf(format, args...)}
}

// Unavailable wraps a failure to reach Redis.
func Unavailable(err error) *Error {
	return &Error{Kind: KindUnavailable, Detail: "The job store cannot be reached; retry shortly.", Err: err}
}

// problem is the RFC 9457 body.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance,omitempty"`
}

// For turns err into the problem a client sees, and its HTTP status. An error outside the
// vocabulary is internal, and its details never reach the client.
func For(err error, instance string) (problem, int) {
	var e *Error
	switch {
	case errors.As(err, &e):
	case errors.Is(err, context.Canceled):
		e = &Error{Kind: KindClientGone, Err: err}
	default:
		e = &Error{Kind: KindInternal, Err: err}
	}
	pt, ok := problemTypes[e.Kind]
	if !ok {
		pt = problemTypes[KindInternal]
	}
	detail := sentence(e.Detail)
	if pt.Status == http.StatusInternalServerError || detail == "" {
		detail = pt.About
	}
	return problem{Type: "/problems/" + pt.Slug, Title: pt.Title, Status: pt.Status, Detail: detail, Instance: instance}, pt.Status
}

// sentence is detail as the table's style writes it: starting with a capital letter (a JSON pointer
// stays as it is) and ending with a period.
func sentence(detail string) string {
	if detail == "" {
		return ""
	}
	if r, n := utf8.DecodeRuneInString(detail); unicode.IsLower(r) {
		detail = string(unicode.ToUpper(r)) + detail[n:]
	}
	if !strings.HasSuffix(detail, ".") && !strings.HasSuffix(detail, "?") && !strings.HasSuffix(detail, "!") {
		detail += "."
	}
	return detail
}

// Write writes err as application/problem+json. Internal errors are logged with their cause;
// the client is told only what it can act on.
func Write(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	p, status := For(err, r.URL.Path)
	if status >= 500 {
		log.ErrorContext(r.Context(), "request failed", "status", status, "err", err,
			"method", r.Method, "path", r.URL.Path)
	}
	var e *Error
	switch {
	case status == http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", strconv.Itoa(unavailableRetryAfter))
	case status == http.StatusTooManyRequests && errors.As(err, &e):
		w.Header().Set("Retry-After", strconv.Itoa(min(max(e.RetryAfter, MinRetryAfter), MaxRetryAfter)))
	case status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "":
		w.Header().Set("WWW-Authenticate", `Bearer realm="reportd"`)
	}
	if errors.As(err, &e) && e.RateLimit != nil {
		e.RateLimit.SetHeader(w.Header())
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Del("Content-Length")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // a problem is JSON, not HTML: "<key>" reads better than "\u003ckey\u003e"
	_ = enc.Encode(p)
}

// Describe is the description of the problem type slug names, for a person reading its type URI
// (/problems/{slug}), and false for a slug that names none.
func Describe(slug string) (string, bool) {
	all := []Type{ReportFailed, ReportTimedOut, ReportUnreadable}
	for _, pt := range problemTypes {
		all = append(all, pt)
	}
	for _, pt := range all {
		if pt.Slug == slug {
			return fmt.Sprintf("%s (HTTP %d)\n\n%s\n", pt.Title, pt.Status, pt.About), true
		}
	}
	return "", false
}
