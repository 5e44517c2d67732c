package impl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/hibiken/asynq"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/jobs/jobstest"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/testkit"
	"github.com/reportd/reportd/internal/webhook"
	"github.com/reportd/reportd/internal/webhook/webhooktest"
)

// webhookSetup says how a harness with webhooks set up is built.
type webhookSetup struct {
	// Policy is which callback URLs the API accepts and the webhook worker may call.
	Policy webhook.Policy
	// Worker runs a report worker whose processor schedules the webhooks of the jobs it finishes.
	Worker bool
	// Ledger is the report worker's ledger; nil means a small synthetic one.
	Ledger report.Ledger
	// Deliveries runs a webhook worker: an asynq server on store.WebhookQueue running
	// tasks.WebhookProcessor, as cmd/reportd runs it.
	Deliveries bool
	// MaxRetry is the job policy's.
	MaxRetry int
}

// webhookHarness is a harness whose API has jobs.Deps.Webhooks set, and the secret its worker signs with.
type webhookHarness struct {
	*harness
	Secret string
}

// newWebhookHarness builds the real API with webhooks set up on backend b, as cmd/reportd wires it,
// and stops it when the test ends. Every exchange still goes through the harness's contract checks.
func newWebhookHarness(tb testing.TB, b redistest.Backend, ws webhookSetup) *webhookHarness {
	tb.Helper()
	secret := webhooktest.NewSecret(tb, 32)
	s := setup{Policy: jobs.Policy{MaxRetry: ws.MaxRetry}, Worker: ws.Worker, Ledger: ws.Ledger, WebhookPolicy: &ws.Policy}
	if ws.Deliveries {
		s.WebhookSecret = secret
	}
	return &webhookHarness{harness: newHarness(tb, b, s), Secret: secret}
}

// postWithCallback submits a job over rng with callback_url u.
func (h *harness) postWithCallback(tb testing.TB, rng, u string) *response {
	tb.Helper()
	body, _ := json.Marshal(map[string]string{"range": rng, "callback_url": u})
	return h.doValid(tb, h.request(tb, http.MethodPost, "/v1/reports", bytes.NewReader(body), "Content-Type", appJSON))
}

// createWithCallback submits a job with a callback and returns its id, failing unless it is accepted.
func (h *harness) createWithCallback(tb testing.TB, rng, u string) string {
	tb.Helper()
	r := h.postWithCallback(tb, rng, u)
	if r.Status != http.StatusAccepted {
		tb.Fatalf("POST %s with callback_url %s: %s", rng, u, r)
	}
	return locationID(tb, r.Header.Get("Location"))
}

// noJobs fails tb if anything was put on the report queue.
func noJobs(tb testing.TB, h *harness) {
	tb.Helper()
	queues, err := h.Inspector.Queues()
	if err != nil {
		tb.Fatalf("list queues: %v", err)
	}
	for _, q := range queues {
		if q != store.ReportQueue {
			continue
		}
		qi, err := h.Inspector.GetQueueInfo(q)
		if err != nil {
			tb.Fatalf("GetQueueInfo: %v", err)
		}
		if qi.Size != 0 {
			tb.Errorf("%d jobs were queued by refused submissions", qi.Size)
		}
	}
}

// TestCallbackWithoutWebhooks: with no webhook secret configured, a submission with a callback is
// refused rather than accepted and never called back.
func TestCallbackWithoutWebhooks(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		h := newHarness(t, b, setup{})
		r := h.postWithCallback(t, "2026-Q1", "https://8.8.8.8/hooks/reportd")
		p := r.problem(t)
		if r.Status != http.StatusUnprocessableEntity || p.Type != "/problems/webhooks-not-set-up" {
			t.Errorf("POST with callback_url and webhooks off = %s, want 422 /problems/webhooks-not-set-up", r)
		}
		if d := h.get(t, p.Type); d.Status != http.StatusOK {
			t.Errorf("GET %s = %s, want the problem type described", p.Type, d)
		}
		noJobs(t, h)
	})
}

// TestCallbackURLRefused: callback URLs the service must not call are refused at submission, with the
// detail pointing at the member.
func TestCallbackURLRefused(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		url  string
	}{
		{"create-422-http", "http://8.8.8.8/hook"},
		{"create-422-loopback", "https://127.0.0.1/x"},
		{"create-422-loopback-v6", "https://[::1]/x"},
		{"create-422-private", "https://10.0.0.1/"},
		{"create-422-metadata", "https://169.254.169.254/"},
		{"create-422-metadata-path", "https://169.254.169.254/latest/meta-data"},
		{"create-422-localhost", "https://localhost/"},
		{"create-422-credentials", "https://user:pw@8.8.8.8/hook"},
		{"create-422-ftp", "ftp://8.8.8.8/hook"},
		// Other spellings of refused addresses, as browsers, curl and the C library read them.
		{"create-422-loopback-hex", "https://0x7f000001/x"},
		{"create-422-loopback-decimal", "https://2130706433/x"},
		{"create-422-loopback-octal", "https://0177.0.0.1/x"},
		{"create-422-loopback-short", "https://127.1/x"},
		{"create-422-loopback-mixed", "https://0x7f.1/x"},
		{"create-422-mapped-loopback", "https://[::ffff:127.0.0.1]/x"},
		{"create-422-mapped-loopback-hex", "https://[::ffff:7f00:1]/x"},
		{"create-422-metadata-decimal", "https://2852039166/latest/meta-data"},
		{"create-422-not-an-address", "https://1.2.3.4.5/x"},
	}
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		h := newWebhookHarness(t, b, webhookSetup{})
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				r := h.postWithCallback(t, "2026-Q1", tc.url)
				p := r.problem(t)
				if r.Status != http.StatusUnprocessableEntity || p.Type != "/problems/callback-url-refused" {
					t.Errorf("POST with callback_url %s = %s, want 422 /problems/callback-url-refused", tc.url, r)
				}
				if !strings.HasPrefix(p.Detail, "/callback_url") {
					t.Errorf("detail %q does not start with /callback_url", p.Detail)
				}
				if strings.Contains(tc.name, "loopback") && !strings.Contains(p.Detail, "127.0.0.1 is loopback") && !strings.Contains(p.Detail, "::1 is loopback") {
					t.Errorf("detail %q does not say the address is loopback", p.Detail)
				}
				if strings.Contains(p.Detail, "pw@") {
					t.Errorf("detail %q echoes the URL's password", p.Detail)
				}
			})
		}
		// Not a URI at all is a malformed field, 400 like any other, not a refusal by policy.
		for _, u := range []string{"not a url", "/hooks/reportd", "//8.8.8.8/hook"} {
			t.Run("create-400-not-a-uri", func(t *testing.T) {
				t.Parallel()
				body, _ := json.Marshal(map[string]string{"range": "2026-Q1", "callback_url": u})
				r := h.do(t, h.request(t, http.MethodPost, "/v1/reports", bytes.NewReader(body), "Content-Type", appJSON))
				p := r.problem(t)
				if r.Status != http.StatusBadRequest || p.Type != "/problems/invalid-request" || !strings.HasPrefix(p.Detail, "/callback_url ") {
					t.Errorf("POST with callback_url %q = %s, want 400 /problems/invalid-request naming /callback_url", u, r)
				}
			})
		}
		t.Run("create-202-public-https", func(t *testing.T) {
			t.Parallel()
			const u = "https://8.8.8.8/hooks/reportd"
			id := h.createWithCallback(t, "2026-Q1", u)
			st := h.get(t, "/v1/reports/"+id)
			if st.Status != http.StatusOK {
				t.Fatalf("GET status = %s", st)
			}
			if w := st.jobStatus(t).Webhook; w == nil || w.Url != u || w.Attempts != 0 || w.LastStatus != nil || w.DeliveredAt != nil {
				t.Errorf("pending job's webhook = %+v, want %s with 0 attempts", w, u)
			}
			wr := h.get(t, "/v1/reports/"+id+"/webhook")
			var d gen.WebhookDelivery
			if wr.Status != http.StatusOK || json.Unmarshal(wr.Body, &d) != nil || d.Url != u || d.Attempts != 0 {
				t.Errorf("GET webhook of a pending job = %s, want 200 %s with 0 attempts", wr, u)
			}
			if cc := wr.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("GET webhook: Cache-Control = %q, want no-store", cc)
			}
		})
	})
	t.Run("refused-submissions-queue-nothing", func(t *testing.T) {
		t.Parallel()
		h := newWebhookHarness(t, redistest.Embedded(t), webhookSetup{})
		for _, tc := range cases {
			h.postWithCallback(t, "2026-Q1", tc.url)
		}
		noJobs(t, h.harness)
	})
}

// hookEvent is one request a callback receiver got.
type hookEvent struct {
	Header    http.Header
	Body      []byte
	VerifyErr error
	Event     gen.WebhookEvent
}

// hookReceiver is a callback receiver on 127.0.0.1 that verifies each request's signature with the
// Standard Webhooks library, checks it against the reportFinished callback in openapi.yaml, and
// answers 200.
type hookReceiver struct{ *webhooktest.Receiver }

func newHookReceiver(t *testing.T, secret string) *hookReceiver {
	t.Helper()
	check := callbackValidator(t)
	return &hookReceiver{webhooktest.NewReceiver(t, secret, func(_ int, w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := check(r, body); err != nil {
			t.Errorf("the callback request breaks the contract: %v", err)
		}
		w.WriteHeader(http.StatusOK)
	})}
}

// wait returns the first n requests, their events decoded, failing t if they do not come within
// timeout.
func (rc *hookReceiver) wait(t *testing.T, n int, timeout time.Duration) []hookEvent {
	t.Helper()
	var events []hookEvent
	for _, h := range rc.Wait(t, n, timeout) {
		ev := hookEvent{Header: h.Header, Body: h.Body, VerifyErr: h.VerifyErr}
		if err := json.Unmarshal(h.Body, &ev.Event); err != nil {
			t.Errorf("callback body %s: %v", h.Body, err)
		}
		events = append(events, ev)
	}
	return events
}

// callbackValidator returns a check of a callback request against the reportFinished callback of
// POST /v1/reports in openapi.yaml: its headers and its body.
func callbackValidator(t *testing.T) func(r *http.Request, body []byte) error {
	t.Helper()
	spec := mustContract(t).spec
	create := spec.Paths.Find("/v1/reports")
	if create == nil || create.Post == nil {
		t.Fatal("openapi.yaml has no POST /v1/reports")
	}
	cb := create.Post.Callbacks["reportFinished"]
	if cb == nil || cb.Value == nil {
		t.Fatal("POST /v1/reports has no reportFinished callback")
	}
	var item *openapi3.PathItem
	for _, pi := range cb.Value.Map() {
		item = pi
	}
	if item == nil || item.Post == nil {
		t.Fatal("the reportFinished callback has no POST")
	}
	return func(r *http.Request, body []byte) error {
		req := r.Clone(context.Background())
		req.Body = io.NopCloser(bytes.NewReader(body))
		in := &openapi3filter.RequestValidationInput{
			Request: req,
			Route:   &routers.Route{Spec: spec, Path: r.URL.Path, PathItem: item, Method: http.MethodPost, Operation: item.Post},
			Options: &openapi3filter.Options{MultiError: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		}
		return openapi3filter.ValidateRequest(context.Background(), in)
	}
}

// checkHookEvent fails t unless ev is job id's signed event of status.
func checkHookEvent(t *testing.T, ev hookEvent, id string, status gen.JobState) {
	t.Helper()
	if ev.VerifyErr != nil {
		t.Errorf("the Standard Webhooks library refused the callback's signature: %v", ev.VerifyErr)
	}
	if got := ev.Header.Get("webhook-id"); got != "msg_"+id {
		t.Errorf("webhook-id = %q, want msg_%s", got, id)
	}
	e := ev.Event
	if string(e.Type) != "report."+string(status) || e.Data.Id.String() != id || e.Data.Status != status ||
		e.Data.Links.Status != "/v1/reports/"+id {
		t.Errorf("event = %s, want report.%s of job %s linking to its status", ev.Body, status, id)
	}
	wantResult := status == gen.Done
	if (e.Data.Links.Result != nil) != wantResult || wantResult && *e.Data.Links.Result != "/v1/reports/"+id+"/result" {
		t.Errorf("event %s: result link %v, want one only for a done job", ev.Body, e.Data.Links.Result)
	}
}

// awaitDelivered polls GET /v1/reports/{id}/webhook until the receiver's acceptance is recorded.
func awaitDelivered(t *testing.T, h *harness, id string) gen.WebhookDelivery {
	t.Helper()
	var d gen.WebhookDelivery
	testkit.Eventually(t, 10*time.Second, 20*time.Millisecond, func() error {
		r := h.get(t, "/v1/reports/"+id+"/webhook")
		if r.Status != http.StatusOK {
			t.Fatalf("GET webhook of job %s = %s", id, r)
		}
		if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("GET webhook: Cache-Control = %q, want no-store", cc)
		}
		d = gen.WebhookDelivery{}
		if err := json.Unmarshal(r.Body, &d); err != nil {
			t.Fatalf("GET webhook: %v: %s", err, r.Body)
		}
		if d.DeliveredAt == nil {
			return fmt.Errorf("job %s's webhook not delivered: %s", id, r.Body)
		}
		return nil
	})
	return d
}

// checkDelivered fails t unless d is one accepted attempt to url, between before and now.
func checkDelivered(t *testing.T, d gen.WebhookDelivery, url string, before time.Time) {
	t.Helper()
	if d.Url != url || d.Attempts != 1 || d.LastStatus == nil || *d.LastStatus != http.StatusOK || d.LastError != nil ||
		d.DeliveredAt == nil || d.DeliveredAt.Before(before) || d.DeliveredAt.After(time.Now()) {
		b, _ := json.Marshal(d)
		t.Errorf("webhook delivery = %s, want 1 attempt to %s, last_status 200, delivered during the test", b, url)
	}
}

// TestWebhookFlow: a job submitted with a callback is announced once to the receiver, whose result
// link serves the report, and the job's webhook resource says how the delivery went.
func TestWebhookFlow(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		h := newWebhookHarness(t, b, webhookSetup{
			Policy: webhook.Policy{AllowPrivate: true, AllowInsecure: true}, Worker: true, Deliveries: true,
		})
		rc := newHookReceiver(t, h.Secret)
		url := rc.URL + "/hooks/reportd"
		before := time.Now()
		id := h.createWithCallback(t, "2026-01", url)

		ev := rc.wait(t, 1, 15*time.Second)[0]
		checkHookEvent(t, ev, id, gen.Done)
		if ev.Event.Data.Links.Result != nil {
			res := h.get(t, *ev.Event.Data.Links.Result)
			var rep gen.Report
			if res.Status != http.StatusOK || json.Unmarshal(res.Body, &rep) != nil || rep.Id.String() != id {
				t.Errorf("GET the event's result link %s = %d, want 200 with job %s's report", *ev.Event.Data.Links.Result, res.Status, id)
			}
		}
		if st := h.get(t, "/v1/reports/"+id); st.Status != http.StatusSeeOther {
			t.Errorf("GET status of the announced job = %s, want 303", st)
		}
		checkDelivered(t, awaitDelivered(t, h.harness, id), url, before)

		plain := h.create(t, "2026-01")
		h.poll(t, plain, 50*time.Millisecond, 15*time.Second, is303)
		r := h.get(t, "/v1/reports/"+plain+"/webhook")
		if r.Status != http.StatusNotFound || r.problem(t).Type != "/problems/job-not-found" {
			t.Errorf("GET webhook of a job without callback_url = %s, want 404 /problems/job-not-found", r)
		}
		checkDeliveredOnce(t, h.harness, id, rc)
	})
}

// checkDeliveredOnce fails t unless job id's webhook was delivered exactly once, judged from the records
// rather than by waiting: its one delivery task completed at its first attempt (a completed task never
// runs again, and a second schedule within its retention is a no-op), no other task on the webhook queue
// is this job's, and the receiver counted one request.
func checkDeliveredOnce(t *testing.T, h *harness, id string, rc *hookReceiver) {
	t.Helper()
	if info := jobstest.AwaitWebhookTaskCompleted(t, h.Inspector, id, 10*time.Second); info.Retried != 0 {
		t.Errorf("the webhook task completed after %d retries, want at its first attempt", info.Retried)
	}
	if n := jobstest.WebhookTasksOf(t, h.Inspector, id); n != 1 {
		t.Errorf("%d webhook tasks for job %s, want 1", n, id)
	}
	if n := rc.Count(); n != 1 {
		t.Errorf("the receiver got %d requests, want 1", n)
	}
}

// TestWebhookFailedJob: a job that fails for good is announced as report.failed, and its status shows
// the webhook's delivery.
func TestWebhookFailedJob(t *testing.T) {
	t.Parallel()
	h := newWebhookHarness(t, redistest.Embedded(t), webhookSetup{
		Policy: webhook.Policy{AllowPrivate: true, AllowInsecure: true}, Worker: true, Deliveries: true,
		Ledger: failingLedger{err: errors.New("ledger unreachable")},
	})
	rc := newHookReceiver(t, h.Secret)
	before := time.Now()
	id := h.createWithCallback(t, "2026-01", rc.URL)
	checkHookEvent(t, rc.wait(t, 1, 15*time.Second)[0], id, gen.Failed)
	checkDelivered(t, awaitDelivered(t, h.harness, id), rc.URL, before)
	st := h.get(t, "/v1/reports/"+id)
	if st.Status != http.StatusOK {
		t.Fatalf("GET status of the failed job = %s", st)
	}
	s := st.jobStatus(t)
	if s.Status != gen.Failed || s.Webhook == nil {
		t.Fatalf("status = %s, want failed with its webhook", st.Body)
	}
	checkDelivered(t, *s.Webhook, rc.URL, before)
}

// TestWebhookCanceledJob: canceling a job with a callback, pending or running, announces report.canceled.
func TestWebhookCanceledJob(t *testing.T) {
	t.Parallel()
	policy := webhook.Policy{AllowPrivate: true, AllowInsecure: true}
	t.Run("pending", func(t *testing.T) {
		t.Parallel()
		// No report worker: the job stays pending until canceled.
		h := newWebhookHarness(t, redistest.Embedded(t), webhookSetup{Policy: policy, Deliveries: true})
		rc := newHookReceiver(t, h.Secret)
		before := time.Now()
		id := h.createWithCallback(t, "2026-01", rc.URL)
		del := h.cancel(t, id)
		if del.Status != http.StatusOK || del.jobStatus(t).Status != gen.Canceled {
			t.Fatalf("cancel of a pending job = %s, want 200 canceled", del)
		}
		checkHookEvent(t, rc.wait(t, 1, 10*time.Second)[0], id, gen.Canceled)
		checkDelivered(t, awaitDelivered(t, h.harness, id), rc.URL, before)
		st := h.get(t, "/v1/reports/"+id)
		if s := st.jobStatus(t); st.Status != http.StatusOK || s.Status != gen.Canceled || s.Webhook == nil {
			t.Errorf("status of the canceled job = %s, want 200 canceled with its webhook", st)
		} else {
			checkDelivered(t, *s.Webhook, rc.URL, before)
		}
	})
	t.Run("running", func(t *testing.T) {
		t.Parallel()
		h := newWebhookHarness(t, redistest.Embedded(t), webhookSetup{
			Policy: policy, Worker: true, Deliveries: true,
			Ledger: gateLedger{inner: report.NewSyntheticLedger(smallRows), gate: make(chan struct{})},
		})
		rc := newHookReceiver(t, h.Secret)
		before := time.Now()
		id := h.createWithCallback(t, "2026-01", rc.URL)
		h.poll(t, id, 20*time.Millisecond, 10*time.Second, hasState(t, gen.Running))
		del := h.cancel(t, id)
		if del.Status != http.StatusOK && del.Status != http.StatusAccepted {
			t.Fatalf("cancel of a running job = %s, want 200 or 202", del)
		}
		checkHookEvent(t, rc.wait(t, 1, 10*time.Second)[0], id, gen.Canceled)
		checkDelivered(t, awaitDelivered(t, h.harness, id), rc.URL, before)
		checkDeliveredOnce(t, h.harness, id, rc)
	})
}

// TestWebhookRefusedAtDelivery: a callback the submission let through (this API allows private
// addresses) but the delivering worker's guard refuses is not retried, and the job's status, its webhook
// resource and the worker's log say the guard refused it and what the address is.
func TestWebhookRefusedAtDelivery(t *testing.T) {
	t.Parallel()
	h := newHarness(t, redistest.Embedded(t), setup{WebhookPolicy: &webhook.Policy{AllowPrivate: true, AllowInsecure: true}})
	secret := webhooktest.NewSecret(t, 32)
	h.startWorker(t, setup{Ledger: failingLedger{err: errors.New("no ledger")},
		WebhookPolicy: &webhook.Policy{AllowInsecure: true}, WebhookSecret: secret})
	rc := newHookReceiver(t, secret)
	id := h.createWithCallback(t, "2026-01", rc.URL)

	const refused = "refused: the address is loopback"
	var st *response
	testkit.Eventually(t, 10*time.Second, 20*time.Millisecond, func() error {
		st = h.get(t, "/v1/reports/"+id)
		if s := st.jobStatus(t); s.Status != gen.Failed || s.Webhook == nil || s.Webhook.Attempts == 0 {
			return fmt.Errorf("status %s, want failed with a delivery attempt", st.Body)
		}
		return nil
	})
	for name, d := range map[string]gen.WebhookDelivery{"status": *st.jobStatus(t).Webhook, "webhook": awaitAttempted(t, h, id)} {
		if d.Url != rc.URL || d.Attempts != 1 || d.LastStatus != nil || d.DeliveredAt != nil || d.LastError == nil || *d.LastError != refused {
			b, _ := json.Marshal(d)
			t.Errorf("%s's webhook = %s, want 1 attempt to %s, no status, last_error %q", name, b, rc.URL, refused)
		}
	}
	testkit.Eventually(t, 5*time.Second, 20*time.Millisecond, func() error {
		if info, err := h.Inspector.GetTaskInfo(store.WebhookQueue, "webhook-"+id); err != nil || info.State != asynq.TaskStateArchived {
			return fmt.Errorf("the webhook task is %v (%v), want archived: not retried", info, err)
		}
		return nil
	})
	if n := rc.Count(); n != 0 {
		t.Errorf("the receiver on 127.0.0.1 got %d requests, want 0", n)
	}
	if n := h.logged(id, "webhook not sent: the address guard refused it; no more attempts"); n != 1 {
		t.Errorf("%d log lines say the guard refused job %s's webhook, want 1:\n%s", n, id, h.Log)
	}
}

// awaitAttempted returns job id's webhook resource once an attempt was made.
func awaitAttempted(t *testing.T, h *harness, id string) gen.WebhookDelivery {
	t.Helper()
	var d gen.WebhookDelivery
	testkit.Eventually(t, 10*time.Second, 20*time.Millisecond, func() error {
		r := h.get(t, "/v1/reports/"+id+"/webhook")
		if r.Status != http.StatusOK || json.Unmarshal(r.Body, &d) != nil || d.Attempts == 0 {
			return fmt.Errorf("GET webhook of job %s = %s, want 200 with an attempt", id, r)
		}
		return nil
	})
	return d
}

// TestCallbackValidator: the check the receivers make refuses callbacks the contract does not allow,
// so that the webhook tests cannot pass on requests it would not notice.
func TestCallbackValidator(t *testing.T) {
	t.Parallel()
	check := callbackValidator(t)
	const good = `{"type":"report.done","timestamp":"2026-04-01T10:00:00Z","data":{"id":"6ba7b810-9dad-41d1-80b4-00c04fd430c8","status":"done","links":{"status":"/v1/reports/6ba7b810-9dad-41d1-80b4-00c04fd430c8"}}}`
	req := func(body string, drop string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/hook", strings.NewReader(body))
		r.Header.Set("Content-Type", appJSON)
		r.Header.Set("webhook-id", "msg_6ba7b810-9dad-41d1-80b4-00c04fd430c8")
		r.Header.Set("webhook-timestamp", "1775037600")
		r.Header.Set("webhook-signature", "v1,AAAA")
		r.Header.Del(drop)
		return r
	}
	if err := check(req(good, ""), []byte(good)); err != nil {
		t.Fatalf("a valid callback was refused: %v", err)
	}
	bad := map[string]*http.Request{
		"no-webhook-id":      req(good, "webhook-id"),
		"no-timestamp":       req(good, "webhook-timestamp"),
		"no-signature":       req(good, "webhook-signature"),
		"unknown-event-type": req(strings.Replace(good, "report.done", "report.exploded", 1), ""),
		"no-data":            req(`{"type":"report.done","timestamp":"2026-04-01T10:00:00Z"}`, ""),
	}
	for name, r := range bad {
		body, _ := io.ReadAll(r.Body)
		if err := check(r, body); err == nil {
			t.Errorf("%s: the callback check accepted it", name)
		}
	}
}
