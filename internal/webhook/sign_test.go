package webhook

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/reportd/reportd/internal/webhook/webhooktest"
)

// TestSignerStandardVector signs the test vector published with the Standard Webhooks specification
// (and used by every reference library's tests).
func TestSignerStandardVector(t *testing.T) {
	t.Parallel()
	s, err := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatalf("ParseSecret: %v", err)
	}
	got := s.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	const want = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	if got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
}

// signedHeaders are the headers a delivery attempt carries, signed by s.
func signedHeaders(s *Signer, id string, ts time.Time, body []byte) http.Header {
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	h.Set("webhook-signature", s.Sign(id, ts, body))
	return h
}

// TestSignerVerifiesWithStandardLibrary: what we sign, the independent Standard Webhooks library accepts
// under the same secret, and refuses once anything signed is changed.
func TestSignerVerifiesWithStandardLibrary(t *testing.T) {
	t.Parallel()
	secret := webhooktest.NewSecret(t, 32)
	s, err := ParseSecret(secret)
	if err != nil {
		t.Fatalf("ParseSecret: %v", err)
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatalf("standardwebhooks.NewWebhook: %v", err)
	}
	body := []byte(`{"type":"report.done","timestamp":"2026-04-01T10:00:00Z","data":{"id":"6ba7b810-9dad-41d1-80b4-00c04fd430c8"}}`)
	now := time.Now()
	h := signedHeaders(s, "msg_6ba7b810-9dad-41d1-80b4-00c04fd430c8", now, body)
	if err := wh.Verify(body, h); err != nil {
		t.Fatalf("the standard library refuses our signature %q: %v", h.Get("webhook-signature"), err)
	}

	other, err := standardwebhooks.NewWebhook(webhooktest.NewSecret(t, 32))
	if err != nil {
		t.Fatal(err)
	}
	tampered := func(mod func(h http.Header)) http.Header {
		c := h.Clone()
		mod(c)
		return c
	}
	refusals := []struct {
		name string
		wh   *standardwebhooks.Webhook
		body []byte
		h    http.Header
	}{
		{"other-secret", other, body, h},
		{"other-body", wh, []byte(strings.Replace(string(body), "done", "failed", 1)), h},
		{"other-id", wh, body, tampered(func(h http.Header) { h.Set("webhook-id", "msg_other") })},
		{"other-timestamp", wh, body, tampered(func(h http.Header) {
			h.Set("webhook-timestamp", strconv.FormatInt(now.Unix()+1, 10))
		})},
	}
	for _, r := range refusals {
		if err := r.wh.Verify(r.body, r.h); err == nil {
			t.Errorf("%s: the standard library accepted a signature it should refuse", r.name)
		}
	}
}

func TestParseSecret(t *testing.T) {
	t.Parallel()
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	tests := []struct {
		name    string
		secret  string
		wantErr string // "" for a valid secret
	}{
		{name: "no-prefix", secret: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", wantErr: "whsec_"},
		{name: "other-prefix", secret: "whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", wantErr: "whsec_"},
		{name: "empty", secret: "", wantErr: "whsec_"},
		{name: "bad-base64", secret: "whsec_not*base64!", wantErr: "not base64"},
		{name: "url-safe-base64", secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La-_Sw", wantErr: "not base64"},
		{name: "no-key", secret: "whsec_", wantErr: "at least 16"},
		{name: "too-short", secret: "whsec_" + b64(15), wantErr: "at least 16"},
		{name: "shortest", secret: "whsec_" + b64(16)},
		{name: "usual", secret: "whsec_" + b64(32)},
		{name: "spec-vector", secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := ParseSecret(tt.secret)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("ParseSecret(%q) = %v, want a signer", tt.secret, err)
			case tt.wantErr == "" && s == nil:
				t.Fatalf("ParseSecret(%q) returned no signer", tt.secret)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("ParseSecret(%q) succeeded, want an error about %q", tt.secret, tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("ParseSecret(%q) = %v, want an error about %q", tt.secret, err, tt.wantErr)
			}
		})
	}
}
