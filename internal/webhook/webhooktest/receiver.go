package webhooktest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Hit is one request a Receiver got.
type Hit struct {
	At        time.Time
	Header    http.Header
	Body      []byte
	VerifyErr error // what the Standard Webhooks library said of its signature
}

// Receiver is a webhook receiver on 127.0.0.1 that verifies every request's signature with the
// Standard Webhooks library, records it, and answers it as the test says.
type Receiver struct {
	*httptest.Server
	mu      sync.Mutex
	hits    []Hit
	changed chan struct{} // closed, and replaced, on every request
}

// NewReceiver starts a Receiver for secret (whsec_...) that answers the n-th request (from 1) with
// respond, which may read the request's body again; nil answers 200. It is closed when the test ends.
func NewReceiver(tb testing.TB, secret string, respond func(n int, w http.ResponseWriter, r *http.Request)) *Receiver {
	tb.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		tb.Fatal(err)
	}
	if respond == nil {
		respond = func(int, http.ResponseWriter, *http.Request) {}
	}
	rc := &Receiver{changed: make(chan struct{})}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h := Hit{At: time.Now(), Header: r.Header.Clone(), Body: body, VerifyErr: wh.Verify(body, r.Header)}
		rc.mu.Lock()
		rc.hits = append(rc.hits, h)
		n := len(rc.hits)
		close(rc.changed)
		rc.changed = make(chan struct{})
		rc.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		respond(n, w, r)
	}))
	tb.Cleanup(rc.Close)
	return rc
}

// Hits returns the requests so far.
func (rc *Receiver) Hits() []Hit {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Hit(nil), rc.hits...)
}

// Count returns how many requests came so far.
func (rc *Receiver) Count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.hits)
}

// Wait returns the first n requests (and any after them), failing tb if they do not come within
// timeout.
func (rc *Receiver) Wait(tb testing.TB, n int, timeout time.Duration) []Hit {
	tb.Helper()
	deadline := time.After(timeout)
	for {
		rc.mu.Lock()
		got, changed := append([]Hit(nil), rc.hits...), rc.changed
		rc.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-changed:
		case <-deadline:
			tb.Fatalf("webhook receiver got %d requests in %s, want %d", len(got), timeout, n)
		}
	}
}
