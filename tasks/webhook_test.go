package tasks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/reportd/reportd/impl"
	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/testkit"
	"github.com/reportd/reportd/internal/webhook"
	"github.com/reportd/reportd/internal/webhook/webhooktest"
	"github.com/reportd/reportd/tasks"
)

// hookAttempt is one run of WebhookProcessor.ProcessTask, as the asynq server saw it.
type hookAttempt struct {
	err  error
	took time.Duration
}

// hookRig is a webhook worker: a real asynq server on WebhookQueue running WebhookProcessor, on its own
// Redis, with the client that enqueues deliveries and the store they are recorded in (through the
// production lifecycle, internal/jobs's Service).
type hookRig struct {
	rdb       *redis.Client
	store     *store.Store
	client    *asynq.Client
	inspector *asynq.Inspector
	secret    string
	log       *testkit.Buffer

	mu       sync.Mutex
	attempts map[string][]hookAttempt // by job id
	changed  chan struct{}            // closed, and replaced, on every attempt
}

// hookRigConfig says how a hookRig runs; zero fields get defaults.
type hookRigConfig struct {
	backend  redistest.Backend // the embedded Redis when zero
	policy   *webhook.Policy   // private and insecure allowed when nil, as the receivers are on http://127.0.0.1
	timeout  time.Duration     // the client's, 5 s when zero
	schedule []time.Duration   // 1 s, 1 s when nil
}

func startHookRig(t *testing.T, cfg hookRigConfig) *hookRig {
	t.Helper()
	if cfg.backend.Addr == "" {
		cfg.backend = redistest.Embedded(t)
	}
	policy := webhook.Policy{AllowPrivate: true, AllowInsecure: true}
	if cfg.policy != nil {
		policy = *cfg.policy
	}
	if cfg.timeout == 0 {
		cfg.timeout = 5 * time.Second
	}
	if cfg.schedule == nil {
		cfg.schedule = []time.Duration{time.Second, time.Second}
	}
	rdb := cfg.backend.Client(t)
	r := &hookRig{
		rdb:       rdb,
		store:     store.NewStore(rdb, time.Hour, time.Hour),
		client:    asynq.NewClientFromRedisClient(rdb),
		inspector: asynq.NewInspectorFromRedisClient(rdb),
		secret:    webhooktest.NewSecret(t, 32),
		attempts:  map[string][]hookAttempt{},
		changed:   make(chan struct{}),
	}
	var log *slog.Logger
	r.log, log = testkit.NewLog(t, "webhook worker log")
	signer, err := webhook.ParseSecret(r.secret)
	if err != nil {
		t.Fatal(err)
	}
	p := &tasks.WebhookProcessor{
		Client: webhook.NewClient(policy, cfg.timeout),
		Signer: signer,
		Jobs:   jobs.New(jobs.Deps{Store: r.store, Log: slog.New(slog.DiscardHandler)}),
		Now:    time.Now,
		Log:    log,
	}
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:              4,
		Queues:                   map[string]int{store.WebhookQueue: 1},
		TaskCheckInterval:        10 * time.Millisecond,
		DelayedTaskCheckInterval: 100 * time.Millisecond,
		RetryDelayFunc:           tasks.WebhookRetryDelay(cfg.schedule),
		ShutdownTimeout:          2 * time.Second,
		Logger:                   tasks.NewLogger(slog.New(slog.DiscardHandler)),
	})
	mux := asynq.NewServeMux()
	mux.HandleFunc(tasks.TypeWebhook, func(ctx context.Context, task *asynq.Task) error {
		start := time.Now()
		err := p.ProcessTask(ctx, task)
		var wp tasks.WebhookPayload
		_ = json.Unmarshal(task.Payload(), &wp)
		r.mu.Lock()
		r.attempts[wp.JobID] = append(r.attempts[wp.JobID], hookAttempt{err: err, took: time.Since(start)})
		close(r.changed)
		r.changed = make(chan struct{})
		r.mu.Unlock()
		return err
	})
	if err := srv.Start(mux); err != nil {
		t.Fatalf("start webhook worker: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	return r
}

// schedule enqueues the webhook announcing that a new job reached status, to url, with the API's event
// as its body (impl.WebhookEvent, the lifecycle's in production), and returns the job id.
func (r *hookRig) schedule(t *testing.T, url, status string) string {
	t.Helper()
	id := uuid.NewString()
	body, err := impl.WebhookEvent(id, jobs.State(status), time.Now())
	if err != nil {
		t.Fatalf("WebhookEvent: %v", err)
	}
	task, opts, err := tasks.NewWebhookTask(id, url, body, store.WebhookQueue, time.Hour, nil)
	if err != nil {
		t.Fatalf("NewWebhookTask: %v", err)
	}
	if _, err := r.client.Enqueue(task, opts...); err != nil {
		t.Fatalf("enqueue the webhook: %v", err)
	}
	return id
}

// waitAttempts returns job id's first n attempts, failing t if they do not happen within timeout.
func (r *hookRig) waitAttempts(t *testing.T, id string, n int, timeout time.Duration) []hookAttempt {
	t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		got, changed := append([]hookAttempt(nil), r.attempts[id]...), r.changed
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("job %s: %d webhook attempts in %s, want %d", id, len(got), timeout, n)
		}
	}
}

// delivery returns what the store recorded of job id's webhook.
func (r *hookRig) delivery(t *testing.T, id string) store.Delivery {
	t.Helper()
	d, ok, err := r.store.WebhookDelivery(context.Background(), id)
	if err != nil || !ok {
		t.Fatalf("WebhookDelivery(%s) = %+v, %v, %v; want a recorded delivery", id, d, ok, err)
	}
	return d
}

// taskState returns the state of job id's delivery task, or false once asynq has none.
func (r *hookRig) taskState(t *testing.T, id string) (asynq.TaskState, bool) {
	t.Helper()
	info, err := r.inspector.GetTaskInfo(store.WebhookQueue, "webhook-"+id)
	if errors.Is(err, asynq.ErrTaskNotFound) {
		return 0, false
	}
	if err != nil {
		t.Fatalf("GetTaskInfo(webhook-%s): %v", id, err)
	}
	return info.State, true
}

// answer is a respond func that always answers status.
func answer(status int) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(status) }
}

// TestWebhookRetryDelayFollowsSchedule calls the delay function as asynq does: n is the number of times
// the task has been retried so far (asynq.RetryDelayFunc), so the first retry is asked for with n = 0.
// The k-th retry waits schedule[k-1], ±20%, and the schedule's last wait repeats past its end.
func TestWebhookRetryDelayFollowsSchedule(t *testing.T) {
	t.Parallel()
	schedule := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second}
	delay := tasks.WebhookRetryDelay(schedule)
	task := asynq.NewTask(tasks.TypeWebhook, nil)
	for retry := 1; retry <= 6; retry++ {
		want := schedule[min(retry, len(schedule))-1]
		t.Run(fmt.Sprintf("retry-%d", retry), func(t *testing.T) {
			t.Parallel()
			lo, hi := want, time.Duration(0)
			for range 500 {
				d := delay(retry-1, errors.New("receiver answered 500"), task)
				lo, hi = min(lo, d), max(hi, d)
			}
			if lo < want*8/10 || hi > want*12/10 {
				t.Errorf("retry %d (n=%d) waits %s..%s, want %s ±20%% (%s..%s)", retry, retry-1, lo, hi, want, want*8/10, want*12/10)
			}
			// Jitter spreads receivers that failed together.
			if lo > want*9/10 || hi < want*11/10 {
				t.Errorf("retry %d waits %s..%s over 500 draws, want a spread over most of %s ±20%%", retry, lo, hi, want)
			}
		})
	}
}

// TestWebhookRetryDelaySumsToSchedule: the default schedule's retries add up to what openapi.yaml
// promises (about 28 hours), as asynq would ask for them with MaxRetry 7.
func TestWebhookRetryDelaySumsToSchedule(t *testing.T) {
	t.Parallel()
	delay := tasks.WebhookRetryDelay(webhook.DefaultSchedule)
	var want, got time.Duration
	for _, d := range webhook.DefaultSchedule {
		want += d
	}
	for n := range tasks.MaxWebhookRetries {
		got += delay(n, errors.New("receiver answered 500"), nil)
	}
	if got < want*8/10 || got > want*12/10 {
		t.Errorf("the %d retries of the default schedule wait %s in all, want about %s (the schedule's sum, ±20%%)", tasks.MaxWebhookRetries, got.Round(time.Minute), want)
	}
}

func TestWebhookRetryDelayHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	delay := tasks.WebhookRetryDelay([]time.Duration{time.Hour})
	for _, after := range []time.Duration{0, time.Second, 90 * time.Second} {
		for n := range 3 {
			err := fmt.Errorf("attempt: %w", &webhook.RetryAfterError{Status: http.StatusTooManyRequests, After: after})
			// Up to a second more is fair: asynq keeps retry times in whole seconds, truncated.
			if got := delay(n, err, nil); got < after || got > after+time.Second {
				t.Errorf("delay(%d, retry after %s) = %s, want %s (or up to 1s more)", n, after, got, after)
			}
		}
	}
	if got := delay(0, errors.New("receiver answered 500"), nil); got < 48*time.Minute || got > 72*time.Minute {
		t.Errorf("delay without Retry-After = %s, want the schedule's 1h ±20%%", got)
	}
}

// event is the body of a webhook (openapi.yaml's WebhookEvent), as a receiver decodes it.
type event struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      eventData `json:"data"`
}

type eventData struct {
	ID     string     `json:"id"`
	Status string     `json:"status"`
	Links  eventLinks `json:"links"`
}

type eventLinks struct {
	Status string `json:"status"`
	Result string `json:"result,omitempty"`
}

// checkHit fails t unless h is a correctly signed and formed delivery of job id's event of status,
// sent between before and after.
func checkHit(t *testing.T, h webhooktest.Hit, id, status string, before, after time.Time) {
	t.Helper()
	if h.VerifyErr != nil {
		t.Errorf("the Standard Webhooks library refused the signature: %v (headers %v)", h.VerifyErr, h.Header)
	}
	if got := h.Header.Get("webhook-id"); got != "msg_"+id {
		t.Errorf("webhook-id = %q, want msg_%s", got, id)
	}
	ts, err := strconv.ParseInt(h.Header.Get("webhook-timestamp"), 10, 64)
	if err != nil || ts < before.Unix() || ts > after.Unix()+1 {
		t.Errorf("webhook-timestamp = %q, want the Unix seconds of the attempt (%d..%d)", h.Header.Get("webhook-timestamp"), before.Unix(), after.Unix())
	}
	if ct := h.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if sig := h.Header.Get("webhook-signature"); !strings.HasPrefix(sig, "v1,") {
		t.Errorf("webhook-signature = %q, want v1,<base64>", sig)
	}
	webhooktest.CheckEventSchema(t, h.Body)
	var ev event
	if err := json.Unmarshal(h.Body, &ev); err != nil {
		t.Fatalf("event %s: %v", h.Body, err)
	}
	want := event{
		Type:      "report." + status,
		Timestamp: ev.Timestamp,
		Data:      eventData{ID: id, Status: status, Links: eventLinks{Status: "/v1/reports/" + id}},
	}
	if status == "done" {
		want.Data.Links.Result = "/v1/reports/" + id + "/result"
	}
	if diff := cmp.Diff(want, ev); diff != "" {
		t.Errorf("event (-want +got):\n%s", diff)
	}
	if ev.Timestamp.Before(before.Add(-time.Second)) || ev.Timestamp.After(after) || ev.Timestamp.Location() != time.UTC {
		t.Errorf("event timestamp = %s, want when the job finished (%s..%s), in UTC", ev.Timestamp, before, after)
	}
	var raw map[string]map[string]map[string]any
	_ = json.Unmarshal(h.Body, &raw)
	if _, has := raw["data"]["links"]["result"]; has != (status == "done") {
		t.Errorf("event %s: has a result link: %v, want %v", h.Body, has, status == "done")
	}
}

// TestWebhookDelivery delivers the event of each terminal status to a receiver that checks it as a
// client following the Standard Webhooks specification would.
func TestWebhookDelivery(t *testing.T) {
	t.Parallel()
	rig := startHookRig(t, hookRigConfig{})
	for _, status := range []string{"done", "failed", "canceled"} {
		t.Run(status, func(t *testing.T) {
			t.Parallel()
			rc := webhooktest.NewReceiver(t, rig.secret, answer(http.StatusNoContent))
			before := time.Now()
			id := rig.schedule(t, rc.URL+"/hooks/reportd", status)
			hits := rc.Wait(t, 1, 10*time.Second)
			checkHit(t, hits[0], id, status, before, time.Now())
			rig.waitAttempts(t, id, 1, 5*time.Second)
			d := rig.delivery(t, id)
			if d.Attempts != 1 || d.LastStatus != http.StatusNoContent || d.LastError != "" || d.DeliveredAt.Before(before) || d.DeliveredAt.After(time.Now()) {
				t.Errorf("delivery = %+v, want 1 attempt, last status 204, delivered during the test", d)
			}
		})
	}
}

// TestWebhookDeliveryRetries: a receiver that fails twice gets the same message three times, under the
// same webhook-id and body, and nothing after it accepted one.
func TestWebhookDeliveryRetries(t *testing.T) {
	t.Parallel()
	for _, b := range redistest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			rig := startHookRig(t, hookRigConfig{backend: b})
			rc := webhooktest.NewReceiver(t, rig.secret, func(n int, w http.ResponseWriter, _ *http.Request) {
				if n <= 2 {
					http.Error(w, "try again", http.StatusInternalServerError)
					return
				}
				w.WriteHeader(http.StatusOK)
			})
			before := time.Now()
			id := rig.schedule(t, rc.URL, "done")
			hits := rc.Wait(t, 3, 15*time.Second)
			attempts := rig.waitAttempts(t, id, 3, 5*time.Second)
			for i, h := range hits {
				checkHit(t, h, id, "done", before, time.Now())
				if h.Header.Get("webhook-id") != hits[0].Header.Get("webhook-id") || !bytes.Equal(h.Body, hits[0].Body) {
					t.Errorf("attempt %d sent %s %s, want the first attempt's id and body (%s %s)", i+1,
						h.Header.Get("webhook-id"), h.Body, hits[0].Header.Get("webhook-id"), hits[0].Body)
				}
			}
			for i, a := range attempts[:2] {
				if a.err == nil {
					t.Errorf("attempt %d (answered 500) returned nil, want an error", i+1)
				}
			}
			if attempts[2].err != nil {
				t.Errorf("attempt 3 (answered 200) returned %v, want nil", attempts[2].err)
			}

			// Delivered: the task is done (and, without retention, deleted), and no attempt follows.
			testkit.Eventually(t, 5*time.Second, 20*time.Millisecond, func() error {
				if state, ok := rig.taskState(t, id); ok && state != asynq.TaskStateCompleted {
					return fmt.Errorf("delivery task is %s since the receiver accepted it, want completed or deleted", state)
				}
				return nil
			})
			time.Sleep(1500 * time.Millisecond) // longer than the schedule's 1 s ±20%
			if n := len(rc.Hits()); n != 3 {
				t.Errorf("receiver got %d requests, want exactly 3", n)
			}
			d := rig.delivery(t, id)
			if d.Attempts != 3 || d.LastStatus != http.StatusOK || d.LastError != "" || d.DeliveredAt.Before(hits[2].At.Add(-time.Second)) || d.DeliveredAt.After(time.Now()) {
				t.Errorf("delivery = %+v, want 3 attempts, last status 200, delivered at the third attempt (%s)", d, hits[2].At)
			}
		})
	}
}

// TestWebhookDeliveryRetriesFollowSchedule: the waits between attempts are the schedule's, in order.
// With a schedule of 1 s then 3 s, the second retry must come about 3 s after the first.
func TestWebhookDeliveryRetriesFollowSchedule(t *testing.T) {
	t.Parallel()
	rig := startHookRig(t, hookRigConfig{schedule: []time.Duration{time.Second, 3 * time.Second}})
	rc := webhooktest.NewReceiver(t, rig.secret, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= 2 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	rig.schedule(t, rc.URL, "done")
	hits := rc.Wait(t, 3, 15*time.Second)
	first, second := hits[1].At.Sub(hits[0].At), hits[2].At.Sub(hits[1].At)
	t.Logf("waits between attempts: %s, %s", first.Round(time.Millisecond), second.Round(time.Millisecond))
	// asynq keeps retry times in whole seconds, so a wait can come up to 1 s early (plus a forwarder tick late).
	if first > 1500*time.Millisecond {
		t.Errorf("first retry came %s after the first attempt, want the schedule's first wait, 1 s ±20%%", first)
	}
	if second < 3*time.Second*8/10-time.Second {
		t.Errorf("second retry came %s after the first retry, want the schedule's second wait, 3 s ±20%% (at least 1.4 s with asynq's whole seconds)", second)
	}
}

// TestWebhookDeliveryGone: a receiver answering 410 gets no more attempts, and the task is archived.
func TestWebhookDeliveryGone(t *testing.T) {
	t.Parallel()
	rig := startHookRig(t, hookRigConfig{})
	rc := webhooktest.NewReceiver(t, rig.secret, answer(http.StatusGone))
	id := rig.schedule(t, rc.URL, "failed")
	rc.Wait(t, 1, 10*time.Second)
	attempts := rig.waitAttempts(t, id, 1, 5*time.Second)
	if !errors.Is(attempts[0].err, asynq.SkipRetry) {
		t.Errorf("attempt answered 410 returned %v, want an error wrapping asynq.SkipRetry", attempts[0].err)
	}
	testkit.Eventually(t, 5*time.Second, 20*time.Millisecond, func() error {
		if state, ok := rig.taskState(t, id); !ok || state != asynq.TaskStateArchived {
			return fmt.Errorf("delivery task is %v (exists: %v) since a 410, want archived", state, ok)
		}
		return nil
	})
	time.Sleep(1500 * time.Millisecond) // longer than the schedule's 1 s ±20%
	if n := len(rc.Hits()); n != 1 {
		t.Errorf("receiver that answered 410 got %d requests, want 1", n)
	}
	d := rig.delivery(t, id)
	if d.Attempts != 1 || d.LastStatus != http.StatusGone || !d.DeliveredAt.IsZero() {
		t.Errorf("delivery = %+v, want 1 attempt, last status 410, not delivered", d)
	}
}

// TestWebhookDeliveryRetryAfter: a receiver answering 429 or 503 with Retry-After is next called no sooner
// than it asked, instead of on the schedule (1 s here).
func TestWebhookDeliveryRetryAfter(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			rig := startHookRig(t, hookRigConfig{})
			rc := webhooktest.NewReceiver(t, rig.secret, func(n int, w http.ResponseWriter, _ *http.Request) {
				if n == 1 {
					w.Header().Set("Retry-After", "3")
					w.WriteHeader(status)
					return
				}
				w.WriteHeader(http.StatusOK)
			})
			id := rig.schedule(t, rc.URL, "done")
			hits := rc.Wait(t, 2, 10*time.Second)
			rig.waitAttempts(t, id, 2, 5*time.Second)
			gap := hits[1].At.Sub(hits[0].At)
			// asynq keeps retry times in whole seconds: a wait of 3 s becomes 2 to 3 s.
			if gap < 2*time.Second {
				t.Errorf("after %d with Retry-After: 3 the next attempt came %s later, want about 3 s", status, gap)
			}
			d := rig.delivery(t, id)
			if d.Attempts != 2 || d.LastStatus != http.StatusOK {
				t.Errorf("delivery = %+v, want 2 attempts, last status 200", d)
			}
		})
	}
}

// TestWebhookDeliveryRetryAfterOneSecond: Retry-After: 1 means no sooner than a second later. asynq
// keeps retry times in whole Unix seconds (truncated), so a delay of exactly 1 s returned late in a
// second comes due at the start of the next one, a fraction of a second later. The receiver answers its
// 429 at 0.8 s into a second, where that shows.
func TestWebhookDeliveryRetryAfterOneSecond(t *testing.T) {
	t.Parallel()
	rig := startHookRig(t, hookRigConfig{})
	rc := webhooktest.NewReceiver(t, rig.secret, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			now := time.Now()
			frac := time.Duration(now.Nanosecond())
			wait := 800*time.Millisecond - frac
			if wait < 0 {
				wait += time.Second
			}
			time.Sleep(wait)
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	rig.schedule(t, rc.URL, "done")
	hits := rc.Wait(t, 2, 10*time.Second)
	answered := hits[0].At.Add(800*time.Millisecond - time.Duration(hits[0].At.Nanosecond()))
	if answered.Before(hits[0].At) {
		answered = answered.Add(time.Second)
	}
	if gap := hits[1].At.Sub(answered); gap < 900*time.Millisecond {
		t.Errorf("after a 429 with Retry-After: 1 the next attempt came %s later, want at least ~1 s", gap.Round(time.Millisecond))
	}
}

// TestWebhookDeliveryRedirectNotFollowed: a 3xx is a failed delivery; its Location is never requested.
func TestWebhookDeliveryRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	rig := startHookRig(t, hookRigConfig{schedule: []time.Duration{time.Minute}})
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			target := webhooktest.NewReceiver(t, rig.secret, answer(http.StatusOK))
			rc := webhooktest.NewReceiver(t, rig.secret, func(_ int, w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL+"/elsewhere", status)
			})
			id := rig.schedule(t, rc.URL, "done")
			attempts := rig.waitAttempts(t, id, 1, 10*time.Second)
			if attempts[0].err == nil {
				t.Errorf("attempt answered %d returned nil, want a failure", status)
			}
			time.Sleep(200 * time.Millisecond)
			if n := len(target.Hits()); n != 0 {
				t.Errorf("the redirect's Location got %d requests, want 0", n)
			}
			d := rig.delivery(t, id)
			if d.Attempts != 1 || d.LastStatus != status || !d.DeliveredAt.IsZero() {
				t.Errorf("delivery = %+v, want 1 attempt, last status %d, not delivered", d, status)
			}
			if state, ok := rig.taskState(t, id); !ok || state != asynq.TaskStateRetry {
				t.Errorf("delivery task after a %d is %v (exists: %v), want retry", status, state, ok)
			}
		})
	}
}

// TestWebhookDeliverySlowReceiver: an attempt ends at the client's timeout, as a failure that says so.
func TestWebhookDeliverySlowReceiver(t *testing.T) {
	t.Parallel()
	rig := startHookRig(t, hookRigConfig{timeout: 300 * time.Millisecond, schedule: []time.Duration{time.Minute}})
	rc := webhooktest.NewReceiver(t, rig.secret, func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		w.WriteHeader(http.StatusOK)
	})
	id := rig.schedule(t, rc.URL, "done")
	attempts := rig.waitAttempts(t, id, 1, 10*time.Second)
	if attempts[0].err == nil {
		t.Error("an attempt past the timeout returned nil, want a failure")
	}
	if attempts[0].took > 2*time.Second {
		t.Errorf("an attempt with a 300ms timeout took %s", attempts[0].took)
	}
	d := rig.delivery(t, id)
	if d.Attempts != 1 || d.LastStatus != 0 || d.LastError != "the receiver did not answer in time" || !d.DeliveredAt.IsZero() {
		t.Errorf("delivery = %+v, want 1 attempt, no status, the error saying the receiver did not answer in time", d)
	}
}

// TestWebhookDeliveryLargeResponse: a receiver's body is read up to 4 KiB and no further, and never
// logged. The receiver sends 10 MiB and then holds the body open: reading it whole would last until the
// client's timeout (5 s).
func TestWebhookDeliveryLargeResponse(t *testing.T) {
	t.Parallel()
	const marker = "RECEIVER-SECRET-BODY-"
	rig := startHookRig(t, hookRigConfig{schedule: []time.Duration{time.Minute}})
	chunk := []byte(strings.Repeat(marker, 64<<10/len(marker)))
	rc := webhooktest.NewReceiver(t, rig.secret, func(_ int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusInternalServerError)
		for sent := 0; sent < 10<<20; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
		}
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	id := rig.schedule(t, rc.URL, "done")
	attempts := rig.waitAttempts(t, id, 1, 15*time.Second)
	if attempts[0].err == nil {
		t.Error("an attempt answered 500 returned nil")
	}
	if attempts[0].took > 2*time.Second {
		t.Errorf("the attempt took %s: the 10 MiB body was read on", attempts[0].took)
	}
	log := rig.log.String()
	if strings.Contains(log, marker) {
		t.Errorf("the log holds the receiver's body")
	}
	if !strings.Contains(log, "body_bytes_read=4096") {
		t.Errorf("the log does not say 4096 bytes of the body were read:\n%s", log)
	}
	if d := rig.delivery(t, id); d.Attempts != 1 || d.LastStatus != http.StatusInternalServerError {
		t.Errorf("delivery = %+v, want 1 attempt, last status 500", d)
	}
}

// TestWebhookDeliveryForbiddenAddress: without AllowPrivate a delivery to 127.0.0.1 is refused at dial,
// the receiver is never reached, and the refusal is final: no retry (the task is archived at once, not
// left to the schedule's 28 hours), with the delivery record and the log saying the address guard
// refused it and what the address is.
func TestWebhookDeliveryForbiddenAddress(t *testing.T) {
	t.Parallel()
	rig := startHookRig(t, hookRigConfig{policy: &webhook.Policy{AllowInsecure: true}, schedule: []time.Duration{time.Second}})
	rc := webhooktest.NewReceiver(t, rig.secret, answer(http.StatusOK))
	for _, u := range []string{rc.URL, strings.Replace(rc.URL, "127.0.0.1", "localhost", 1)} {
		t.Run(u, func(t *testing.T) {
			t.Parallel()
			id := rig.schedule(t, u, "done")
			attempts := rig.waitAttempts(t, id, 1, 10*time.Second)
			if !errors.Is(attempts[0].err, asynq.SkipRetry) || !errors.Is(attempts[0].err, webhook.ErrForbiddenAddress) {
				t.Errorf("a delivery to a forbidden address returned %v, want an error wrapping asynq.SkipRetry and webhook.ErrForbiddenAddress", attempts[0].err)
			}
			testkit.Eventually(t, 5*time.Second, 20*time.Millisecond, func() error {
				if state, ok := rig.taskState(t, id); !ok || state != asynq.TaskStateArchived {
					return fmt.Errorf("the delivery task is %v (exists: %v), want archived: no retry", state, ok)
				}
				return nil
			})
			if n := len(rc.Hits()); n != 0 {
				t.Errorf("the receiver on 127.0.0.1 got %d requests, want 0", n)
			}
			d := rig.delivery(t, id)
			if d.Attempts != 1 || d.LastStatus != 0 || d.LastError != "refused: the address is loopback" || !d.DeliveredAt.IsZero() {
				t.Errorf("delivery = %+v, want 1 attempt, no status, refused: the address is loopback", d)
			}
			line := logLine(rig.log.String(), "job="+id)
			if !strings.Contains(line, `msg="webhook not sent: the address guard refused it; no more attempts"`) ||
				!strings.Contains(line, `err="refused: the address is loopback"`) || !strings.Contains(line, "level=WARN") {
				t.Errorf("log line of the refused delivery: %q, want a warning that the guard refused it as loopback, for good", line)
			}
		})
	}
}

// TestWebhookDeliveryNoAnswerIsRetried: a host that does not resolve, or that refuses the connection,
// may answer later: the attempt says which of the two it was, in the delivery record and the log, and
// the delivery waits for its next attempt.
func TestWebhookDeliveryNoAnswerIsRetried(t *testing.T) {
	t.Parallel()
	rig := startHookRig(t, hookRigConfig{schedule: []time.Duration{time.Minute}})
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close() // its port now refuses connections
	tests := []struct {
		name, url, want string
	}{
		{"could-not-resolve", "http://reportd-test.invalid/hook", "could not resolve the callback URL's host"}, // .invalid never resolves
		{"could-not-connect", closedURL + "/hook", "could not connect to the receiver"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := rig.schedule(t, tt.url, "done")
			attempts := rig.waitAttempts(t, id, 1, 10*time.Second)
			if err := attempts[0].err; err == nil || errors.Is(err, asynq.SkipRetry) || errors.Is(err, webhook.ErrForbiddenAddress) {
				t.Errorf("the attempt returned %v, want an error to retry", err)
			}
			testkit.Eventually(t, 5*time.Second, 20*time.Millisecond, func() error {
				if state, ok := rig.taskState(t, id); !ok || state != asynq.TaskStateRetry {
					return fmt.Errorf("the delivery task is %v (exists: %v), want retry", state, ok)
				}
				return nil
			})
			d := rig.delivery(t, id)
			if d.Attempts != 1 || d.LastStatus != 0 || !strings.HasPrefix(d.LastError, tt.want) {
				t.Errorf("delivery = %+v, want 1 attempt, no status, an error starting %q", d, tt.want)
			}
			line := logLine(rig.log.String(), "job="+id)
			if !strings.Contains(line, `msg="webhook delivery failed"`) || !strings.Contains(line, `err="`+tt.want) {
				t.Errorf("log line of the attempt: %q, want webhook delivery failed, saying %q", line, tt.want)
			}
		})
	}
}

// logLine is the first line of log that holds every one of has, or "".
func logLine(log string, has ...string) string {
	for line := range strings.Lines(log) {
		found := true
		for _, h := range has {
			found = found && strings.Contains(line, h)
		}
		if found {
			return strings.TrimSpace(line)
		}
	}
	return ""
}
