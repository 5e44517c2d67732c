package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/redistest"
)

// e2eHit is one callback the e2e receiver got.
type e2eHit struct {
	webhookID string
	body      []byte
	verifyErr error
}

// TestE2EWebhookSurvivesWorkerRestart: a delivery that failed is retried by whichever worker runs next.
// The receiver fails the first attempt; the worker that made it stops right away (its retry is due 2 s
// later); a new worker, started afterwards, delivers the same message.
func TestE2EWebhookSurvivesWorkerRestart(t *testing.T) {
	t.Parallel()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu   sync.Mutex
		hits []e2eHit
	)
	firstHit := make(chan struct{})
	delivered := make(chan e2eHit, 4)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h := e2eHit{webhookID: r.Header.Get("webhook-id"), body: body, verifyErr: wh.Verify(body, r.Header)}
		mu.Lock()
		hits = append(hits, h)
		n := len(hits)
		mu.Unlock()
		if n == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			close(firstHit)
			return
		}
		w.WriteHeader(http.StatusNoContent)
		delivered <- h
	}))
	defer rc.Close()

	vars := e2eVars(map[string]string{
		"REDIS_URL":                      redistest.StartServer(t).URL,
		"REPORTD_ROWS_PER_DAY":           "50",
		"REPORTD_WEBHOOK_SECRET":         secret,
		"REPORTD_WEBHOOK_ALLOW_PRIVATE":  "true",
		"REPORTD_WEBHOOK_ALLOW_INSECURE": "true",
		"REPORTD_WEBHOOK_SCHEDULE":       "2s,2s",
		"REPORTD_DELAYED_CHECK_INTERVAL": "100ms",
	})
	api := start(t, []string{"api"}, vars)
	first := start(t, []string{"worker"}, vars)

	res := do(t, http.MethodPost, api.base+"/v1/reports", "", `{"range":"2026-01","callback_url":"`+rc.URL+`/hook"}`)
	if res.status != http.StatusAccepted {
		t.Fatalf("POST with callback_url = %s, want 202", res)
	}
	m := statusPath.FindStringSubmatch(res.header.Get("Location"))
	if m == nil {
		t.Fatalf("202 Location = %q", res.header.Get("Location"))
	}
	id := m[1]

	select {
	case <-firstHit:
	case <-time.After(15 * time.Second):
		t.Fatalf("no callback 15s after the job was submitted; worker log:\n%s", first.log)
	}
	first.cancel()
	select {
	case <-first.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("the first worker did not stop in 10s; log:\n%s", first.log)
	}
	mu.Lock()
	attemptsBeforeRestart := len(hits)
	mu.Unlock()
	if attemptsBeforeRestart != 1 {
		t.Fatalf("the receiver got %d requests before the first worker stopped, want 1 (the retry came too soon for this test)", attemptsBeforeRestart)
	}
	if _, ok := first.log.waitFor(0, nil, func(l map[string]any) bool {
		return l["msg"] == "webhook delivery refused" && l["job"] == id
	}); !ok {
		t.Errorf("the first worker did not log the failed attempt; log:\n%s", first.log)
	}

	second := start(t, []string{"worker"}, vars)
	var got e2eHit
	select {
	case got = <-delivered:
	case <-time.After(15 * time.Second):
		t.Fatalf("the restarted worker did not deliver in 15s; its log:\n%s", second.log)
	}
	mu.Lock()
	firstAttempt := hits[0]
	mu.Unlock()
	if got.webhookID != "msg_"+id || firstAttempt.webhookID != got.webhookID {
		t.Errorf("webhook-id %q then %q, want msg_%s on both attempts", firstAttempt.webhookID, got.webhookID, id)
	}
	if string(got.body) != string(firstAttempt.body) {
		t.Errorf("the retry sent %s, the first attempt %s; want the same body", got.body, firstAttempt.body)
	}
	if got.verifyErr != nil || firstAttempt.verifyErr != nil {
		t.Errorf("signatures: first attempt %v, retry %v; want both valid", firstAttempt.verifyErr, got.verifyErr)
	}
	var ev gen.WebhookEvent
	if err := json.Unmarshal(got.body, &ev); err != nil || ev.Type != "report.done" || ev.Data.Id.String() != id {
		t.Errorf("event %s (%v), want report.done of job %s", got.body, err, id)
	}
	if _, ok := second.log.waitFor(5*time.Second, second.done, func(l map[string]any) bool {
		return l["msg"] == "webhook delivered" && l["job"] == id
	}); !ok {
		t.Errorf("the second worker did not log the delivery; log:\n%s", second.log)
	}

	// The API reads the delivery as the new worker recorded it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := do(t, http.MethodGet, api.base+"/v1/reports/"+id+"/webhook", "", "")
		var d gen.WebhookDelivery
		if r.status != http.StatusOK || json.Unmarshal(r.body, &d) != nil {
			t.Fatalf("GET webhook = %s, want 200 with the delivery", r)
		}
		if d.DeliveredAt != nil {
			if d.Attempts != 2 || d.LastStatus == nil || *d.LastStatus != http.StatusNoContent || !strings.HasPrefix(d.Url, rc.URL) {
				t.Errorf("delivery = %s, want 2 attempts, last_status 204", r.body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the delivery is not recorded 5s after it happened: %s", r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(hits) != 2 {
		t.Errorf("the receiver got %d requests, want 2", len(hits))
	}
}
