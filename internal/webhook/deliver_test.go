package webhook

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/reportd/reportd/internal/webhook/webhooktest"
)

// TestDeliver makes one attempt at receivers answering each way an attempt can end, and checks the
// request each got as a Standard Webhooks receiver would, and what the attempt came to.
func TestDeliver(t *testing.T) {
	t.Parallel()
	secret := webhooktest.NewSecret(t, 32)
	s, err := ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	clock := func() time.Time { return now }
	body := []byte(`{"type":"report.done"}`)
	client := NewClient(Policy{AllowInsecure: true, AllowPrivate: true}, 5*time.Second)

	tests := []struct {
		name       string
		status     int
		retryAfter string
		answer     int // bytes of answer body
		wantRead   int64
		wantErr    error // nil, ErrGone, a *RetryAfterError, or errPlain
	}{
		{name: "ok", status: http.StatusNoContent, wantErr: nil},
		{name: "gone", status: http.StatusGone, wantErr: ErrGone},
		{name: "too-many", status: http.StatusTooManyRequests, retryAfter: "30",
			wantErr: &RetryAfterError{Status: http.StatusTooManyRequests, After: 30 * time.Second}},
		{name: "unavailable-capped", status: http.StatusServiceUnavailable, retryAfter: "86400",
			wantErr: &RetryAfterError{Status: http.StatusServiceUnavailable, After: 12 * time.Hour}},
		{name: "unavailable", status: http.StatusServiceUnavailable, wantErr: errPlain},
		{name: "redirect-not-followed", status: http.StatusFound, wantErr: errPlain},
		{name: "large-answer", status: http.StatusInternalServerError, answer: 1 << 20, wantRead: 4 << 10, wantErr: errPlain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var (
				got       bool
				path      string
				header    http.Header
				verifyErr error
			)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b := new(bytes.Buffer)
				_, _ = b.ReadFrom(r.Body)
				got, path, header, verifyErr = true, r.URL.Path, r.Header.Clone(), wh.Verify(b.Bytes(), r.Header)
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				if tt.status == http.StatusFound {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write(make([]byte, tt.answer))
			}))
			t.Cleanup(srv.Close)

			res, err := Deliver(context.Background(), client, s, Message{ID: "msg_1", URL: srv.URL + "/hook", Body: body}, clock)
			if !got {
				t.Fatalf("the receiver got no request; Deliver = %+v, %v", res, err)
			}
			if verifyErr != nil {
				t.Errorf("the Standard Webhooks library refused the request: %v", verifyErr)
			}
			if path != "/hook" || header.Get("webhook-id") != "msg_1" ||
				header.Get("Content-Type") != "application/json" || header.Get("User-Agent") != "reportd-webhooks/1" {
				t.Errorf("request to %s with headers %v, want /hook with webhook-id msg_1, JSON and reportd's User-Agent", path, header)
			}
			want := Result{Attempted: true, Status: tt.status, BodyRead: tt.wantRead}
			if tt.wantErr == nil {
				want.DeliveredAt = now.UTC()
			}
			if res != want {
				t.Errorf("Deliver = %+v, want %+v", res, want)
			}
			var ra, wantRA *RetryAfterError
			switch {
			case tt.wantErr == nil || tt.wantErr == ErrGone:
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("Deliver error = %v, want %v", err, tt.wantErr)
				}
			case errors.As(tt.wantErr, &wantRA):
				if !errors.As(err, &ra) || *ra != *wantRA {
					t.Errorf("Deliver error = %v, want %v", err, wantRA)
				}
			default:
				if err == nil || errors.Is(err, ErrGone) || errors.As(err, &ra) {
					t.Errorf("Deliver error = %v, want a plain error (retry on the schedule)", err)
				}
			}
		})
	}
}

// errPlain stands, in TestDeliver, for an error that is neither ErrGone nor a *RetryAfterError.
var errPlain = errors.New("plain")

// TestDeliverNoAnswer: an attempt that gets no answer says why, telling apart an address the guard
// refused (which no later attempt can pass), a host that did not resolve and one that could not be
// connected to; and one whose message makes no request is not an attempt.
func TestDeliverNoAnswer(t *testing.T) {
	t.Parallel()
	s, err := ParseSecret(webhooktest.NewSecret(t, 32))
	if err != nil {
		t.Fatal(err)
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(closed.URL, "http://"))

	tests := []struct {
		name      string
		policy    Policy
		url       string
		want      string // the Result's Error, or its start when it ends in "..."
		forbidden bool   // the error wraps ErrForbiddenAddress
		attempted bool
	}{
		{"could-not-connect", Policy{AllowInsecure: true, AllowPrivate: true}, closed.URL, "could not connect to the receiver", false, true},
		// .invalid never resolves (RFC 6761).
		{"could-not-resolve", Policy{AllowInsecure: true, AllowPrivate: true}, "http://reportd-test.invalid/hook", "could not resolve the callback URL's host...", false, true},
		{"refused-loopback", Policy{AllowInsecure: true}, closed.URL, "refused: the address is loopback", true, true},
		{"refused-loopback-by-name", Policy{AllowInsecure: true}, "http://localhost:" + port + "/hook", "refused: the address is loopback", true, true},
		{"refused-mapped-loopback", Policy{AllowInsecure: true}, "http://[::ffff:127.0.0.1]:" + port + "/hook", "refused: the address is loopback", true, true},
		{"refused-unspecified", Policy{AllowInsecure: true}, "http://0.0.0.0:" + port + "/hook", "refused: the address is unspecified", true, true},
		{"no-request", Policy{}, "http://[::1", "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := Deliver(context.Background(), NewClient(tt.policy, 5*time.Second), s, Message{ID: "msg_1", URL: tt.url}, time.Now)
			if err == nil {
				t.Fatalf("Deliver to %s = %+v, nil; want an error", tt.url, res)
			}
			prefix, open := strings.CutSuffix(tt.want, "...")
			if res.Attempted != tt.attempted || res.Status != 0 || (open && !strings.HasPrefix(res.Error, prefix)) || (!open && res.Error != tt.want) {
				t.Errorf("Deliver to %s = %+v; want attempted %v, no status, error %q", tt.url, res, tt.attempted, tt.want)
			}
			if got := errors.Is(err, ErrForbiddenAddress); got != tt.forbidden {
				t.Errorf("Deliver to %s: errors.Is(%v, ErrForbiddenAddress) = %v, want %v", tt.url, err, got, tt.forbidden)
			}
			if tt.attempted && err.Error() != "deliver webhook: "+res.Error {
				t.Errorf("Deliver to %s: error %q, want it to say what the Result says (%q) and no more", tt.url, err, res.Error)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"1", time.Second, true},
		{"120", 2 * time.Minute, true},
		{"0", 0, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseRetryAfter(%q) = %s, %v; want %s, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
