package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/jobs/jobstest"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/testkit"
	"github.com/reportd/reportd/internal/testkit/reportdproc"
	"github.com/reportd/reportd/internal/webhook/webhooktest"
)

// TestE2EWebhookSurvivesWorkerRestart: a delivery that failed is retried by whichever worker runs next.
// The receiver fails the first attempt; the worker that made it stops right away (its retry is due 2 s
// later); a new worker, started afterwards, delivers the same message.
func TestE2EWebhookSurvivesWorkerRestart(t *testing.T) {
	t.Parallel()
	secret := webhooktest.NewSecret(t, 32)
	firstHit := make(chan struct{})
	delivered := make(chan webhooktest.Hit, 4)
	var rc *webhooktest.Receiver
	rc = webhooktest.NewReceiver(t, secret, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			close(firstHit)
			return
		}
		w.WriteHeader(http.StatusNoContent)
		delivered <- rc.Hits()[n-1]
	})

	srv := redistest.StartServer(t)
	vars := reportdproc.Vars(map[string]string{
		"REDIS_URL":                      srv.URL,
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
	attemptsBeforeRestart := rc.Count()
	if attemptsBeforeRestart != 1 {
		t.Fatalf("the receiver got %d requests before the first worker stopped, want 1 (the retry came too soon for this test)", attemptsBeforeRestart)
	}
	if _, ok := first.log.WaitFor(0, nil, testkit.JobMsg("webhook delivery refused", id)); !ok {
		t.Errorf("the first worker did not log the failed attempt; log:\n%s", first.log)
	}

	second := start(t, []string{"worker"}, vars)
	var got webhooktest.Hit
	select {
	case got = <-delivered:
	case <-time.After(15 * time.Second):
		t.Fatalf("the restarted worker did not deliver in 15s; its log:\n%s", second.log)
	}
	firstAttempt := rc.Hits()[0]
	if got.Header.Get("webhook-id") != "msg_"+id || firstAttempt.Header.Get("webhook-id") != got.Header.Get("webhook-id") {
		t.Errorf("webhook-id %q then %q, want msg_%s on both attempts", firstAttempt.Header.Get("webhook-id"), got.Header.Get("webhook-id"), id)
	}
	if string(got.Body) != string(firstAttempt.Body) {
		t.Errorf("the retry sent %s, the first attempt %s; want the same body", got.Body, firstAttempt.Body)
	}
	if got.VerifyErr != nil || firstAttempt.VerifyErr != nil {
		t.Errorf("signatures: first attempt %v, retry %v; want both valid", firstAttempt.VerifyErr, got.VerifyErr)
	}
	var ev gen.WebhookEvent
	if err := json.Unmarshal(got.Body, &ev); err != nil || ev.Type != "report.done" || ev.Data.Id.String() != id {
		t.Errorf("event %s (%v), want report.done of job %s", got.Body, err, id)
	}
	if _, ok := second.log.WaitFor(5*time.Second, second.done, testkit.JobMsg("webhook delivered", id)); !ok {
		t.Errorf("the second worker did not log the delivery; log:\n%s", second.log)
	}

	// The API reads the delivery as the new worker recorded it.
	testkit.Eventually(t, 5*time.Second, 20*time.Millisecond, func() error {
		r := do(t, http.MethodGet, api.base+"/v1/reports/"+id+"/webhook", "", "")
		var d gen.WebhookDelivery
		if r.status != http.StatusOK || json.Unmarshal(r.body, &d) != nil {
			t.Fatalf("GET webhook = %s, want 200 with the delivery", r)
		}
		if d.DeliveredAt == nil {
			return fmt.Errorf("the delivery is not recorded since it happened: %s", r.body)
		}
		if d.Attempts != 2 || d.LastStatus == nil || *d.LastStatus != http.StatusNoContent || !strings.HasPrefix(d.Url, rc.URL) {
			t.Errorf("delivery = %s, want 2 attempts, last_status 204", r.body)
		}
		return nil
	})
	// Two requests and no more, judged from asynq's record rather than by waiting: the delivery's task
	// completed at its second attempt (a completed task never runs again), and it is the job's only one.
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	inspector := asynq.NewInspectorFromRedisClient(rdb)
	if info := jobstest.AwaitWebhookTaskCompleted(t, inspector, id, 10*time.Second); info.Retried != 1 {
		t.Errorf("the webhook task completed after %d retries, want 1", info.Retried)
	}
	if n := jobstest.WebhookTasksOf(t, inspector, id); n != 1 {
		t.Errorf("%d webhook tasks for job %s, want 1", n, id)
	}
	if n := rc.Count(); n != 2 {
		t.Errorf("the receiver got %d requests, want 2", n)
	}
}
