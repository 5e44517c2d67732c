package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// DefaultSchedule is the wait before each retry of a failed delivery: the Standard Webhooks schedule
// (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; about 28 hours in all).
var DefaultSchedule = []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// maxReceiverBody is as much of a receiver's response as is read; the rest is dropped unread.
const maxReceiverBody = 4 << 10

// maxReceiverRetryAfter caps the wait a receiver's Retry-After can ask for.
const maxReceiverRetryAfter = 12 * time.Hour

// NewClient returns the HTTP client for deliveries: its dialer refuses forbidden addresses, it uses no
// proxy (a proxy would dial for it, unchecked), does not follow redirects (a 3xx is a failed delivery)
// and gives up on an attempt after timeout.
func NewClient(p Policy, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           GuardedDialer(p, 5*time.Second).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: timeout,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       time.Minute,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Message is one webhook message, fixed when the job finishes, so that every attempt sends the same
// body under the same ID (receivers drop repeats by the ID).
type Message struct {
	ID   string
	URL  string
	Body []byte
}

// Result is what one delivery attempt came to.
type Result struct {
	// Attempted is false when the message makes no HTTP request at all; nothing was sent.
	Attempted bool
	// Status is the receiver's HTTP status; 0 when it gave none.
	Status int
	// Error says why the receiver gave no answer, without echoing anything it sent.
	Error string
	// BodyRead is how much of the receiver's answer was read: at most 4 KiB, the rest is dropped.
	BodyRead int64
	// DeliveredAt is when a 2xx answer came; zero otherwise.
	DeliveredAt time.Time
}

// ErrGone is a receiver's 410 Gone: it wants no more attempts.
var ErrGone = errors.New("receiver answered 410 Gone")

// RetryAfterError is a failed attempt whose receiver said when to come back (429 or 503 with
// Retry-After).
type RetryAfterError struct {
	Status int
	After  time.Duration // at most 12 hours, whatever the receiver asked
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("receiver answered %d, retry after %s", e.Status, e.After)
}

// Deliver makes one attempt to deliver m with c, signed by s at now(). Its error is nil for a 2xx
// answer, ErrGone for a 410, a *RetryAfterError for a 429 or 503 with Retry-After, one wrapping
// ErrForbiddenAddress when the guard refused the address the URL led to (no later attempt can
// succeed), and otherwise (another status, a 3xx, a timeout, a host that did not resolve or could not
// be connected to) a plain error: a later attempt may succeed. A Result that is not Attempted means m
// makes no request at all, so no later attempt will either.
func Deliver(ctx context.Context, c *http.Client, s *Signer, m Message, now func() time.Time) (Result, error) {
	ts := now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.URL, bytes.NewReader(m.Body))
	if err != nil {
		return Result{}, fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "reportd-webhooks/1")
	req.Header.Set("webhook-id", m.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set("webhook-signature", s.Sign(m.ID, ts, m.Body))

	resp, err := c.Do(req)
	if err != nil {
		why, kind := deliveryError(err)
		return Result{Attempted: true, Error: why}, &noAnswerError{why: why, kind: kind}
	}
	n, _ := io.Copy(io.Discard, io.LimitReader(resp.Body, maxReceiverBody))
	_ = resp.Body.Close()
	res := Result{Attempted: true, Status: resp.StatusCode, BodyRead: n}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		res.DeliveredAt = now().UTC()
		return res, nil
	case resp.StatusCode == http.StatusGone:
		return res, ErrGone
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		if after, ok := parseRetryAfter(resp.Header.Get("Retry-After"), now()); ok {
			return res, &RetryAfterError{Status: resp.StatusCode, After: min(after, maxReceiverRetryAfter)}
		}
	}
	return res, fmt.Errorf("receiver answered %d", resp.StatusCode)
}

// noAnswerError is an attempt that got no answer: why says so in words the job's client may read, and
// kind (if not nil) is the class of error it is.
type noAnswerError struct {
	why  string
	kind error
}

func (e *noAnswerError) Error() string { return "deliver webhook: " + e.why }
func (e *noAnswerError) Unwrap() error { return e.kind }

// deliveryError says why an attempt got no answer, without echoing anything the receiver sent, nor the
// addresses a name resolved to (the client is told the kind of address the guard refused, not which):
// "refused: the address is <class>" when the guard refused it (the error's class is then
// ErrForbiddenAddress), "could not resolve ..." when DNS gave no address, "could not connect ..." when
// no connection was made, "the receiver did not answer in time", or what else became of it.
func deliveryError(err error) (string, error) {
	var (
		refused *AddressError
		dnsErr  *net.DNSError
		opErr   *net.OpError
	)
	switch {
	case errors.As(err, &refused):
		return "refused: the address is " + refused.Class, ErrForbiddenAddress
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return "could not resolve the callback URL's host: no such host", nil
		}
		return "could not resolve the callback URL's host", nil
	case errors.As(err, &opErr) && opErr.Op == "dial":
		if opErr.Timeout() {
			return "could not connect to the receiver in time", nil
		}
		return "could not connect to the receiver", nil
	case errors.Is(err, context.DeadlineExceeded):
		return "the receiver did not answer in time", nil
	case isTLSError(err):
		return "could not connect to the receiver: the TLS handshake failed", nil
	default:
		return "the connection to the receiver failed before it answered", nil
	}
}

// isTLSError reports whether err is a failed TLS handshake: a certificate not trusted, or a server
// that does not speak TLS or refuses the client's.
func isTLSError(err error) bool {
	var (
		verify  *tls.CertificateVerificationError
		header  tls.RecordHeaderError
		alert   tls.AlertError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &header) || errors.As(err, &alert) ||
		errors.As(err, &unknown) || errors.As(err, &host) || errors.As(err, &invalid)
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP-date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
