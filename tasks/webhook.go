package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
)

// TypeWebhook is the asynq task type of one webhook delivery.
const TypeWebhook = "webhook:deliver"

// WebhookQueue is the queue of webhook deliveries. Workers serve it with a server of its own, so that
// slow receivers never hold up report jobs.
const WebhookQueue = "webhooks"

// Event types, one per terminal status.
const (
	EventDone     = "report.done"
	EventFailed   = "report.failed"
	EventCanceled = "report.canceled"
)

// Event is the body of a webhook: thin, so that the report itself is fetched from its result URL.
type Event struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      EventData `json:"data"`
}

// EventData names the job and where to read it.
type EventData struct {
	ID     string     `json:"id"`
	Status string     `json:"status"`
	Links  EventLinks `json:"links"`
}

// EventLinks are the job's URLs, relative to the service.
type EventLinks struct {
	Status string `json:"status"`
	Result string `json:"result,omitempty"`
}

// NewEvent returns the event announcing that job id reached status ("done", "failed" or "canceled").
func NewEvent(id, status string, at time.Time) Event {
	ev := Event{Timestamp: at.UTC(), Data: EventData{ID: id, Status: status, Links: EventLinks{Status: "/v1/reports/" + id}}}
	switch status {
	case "done":
		ev.Type = EventDone
		ev.Data.Links.Result = "/v1/reports/" + id + "/result"
	case "canceled":
		ev.Type = EventCanceled
	default:
		ev.Type = EventFailed
	}
	return ev
}

// WebhookPayload is a delivery task's payload: the message is fixed when the job finishes, so that
// every attempt sends the same body under the same webhook-id.
type WebhookPayload struct {
	MessageID string          `json:"message_id"`
	JobID     string          `json:"job_id"`
	URL       string          `json:"url"`
	Body      json.RawMessage `json:"body"`
}

// NewWebhookTask returns the delivery of ev to url, and the options that place it. Its task id is
// derived from the job's, and the task is kept for retention after it is delivered, so that one job
// has one logical event however often its end is announced (a job is delivered at least once).
func NewWebhookTask(url string, ev Event, retention time.Duration) (*asynq.Task, []asynq.Option, error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, nil, fmt.Errorf("encode webhook event: %w", err)
	}
	p := WebhookPayload{MessageID: "msg_" + ev.Data.ID, JobID: ev.Data.ID, URL: url, Body: body}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, nil, fmt.Errorf("encode webhook payload: %w", err)
	}
	return asynq.NewTask(TypeWebhook, b), []asynq.Option{asynq.TaskID("webhook-" + ev.Data.ID), asynq.Queue(WebhookQueue),
		asynq.Retention(retention)}, nil
}

// DefaultWebhookSchedule is the wait before each retry of a failed delivery: the Standard Webhooks
// schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; about 28 hours in all).
var DefaultWebhookSchedule = []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// maxWebhookRetries bounds a delivery's retries; the schedule's last wait repeats past its end.
const maxWebhookRetries = 7

// retryAfterError is a failed delivery whose receiver said when to come back (429 or 503 with
// Retry-After).
type retryAfterError struct {
	status int
	after  time.Duration
}

func (e *retryAfterError) Error() string {
	return fmt.Sprintf("receiver answered %d, retry after %s", e.status, e.after)
}

// WebhookRetryDelay returns the asynq RetryDelayFunc for deliveries on schedule: the n-th retry waits
// schedule[n] with ±20% jitter (so receivers that failed together are not hit together), or what the
// receiver asked for in Retry-After.
func WebhookRetryDelay(schedule []time.Duration) asynq.RetryDelayFunc {
	return func(n int, err error, _ *asynq.Task) time.Duration {
		var ra *retryAfterError
		if errors.As(err, &ra) {
			// asynq keeps retry times in whole seconds, rounding down: a second more keeps the wait at
			// least as long as the receiver asked.
			return ra.after + time.Second
		}
		d := schedule[min(max(n, 0), len(schedule)-1)] // asynq passes the retries so far: 0 on the first failure
		return d*8/10 + rand.N(d*4/10+1)
	}
}

// maxReceiverBody is as much of a receiver's response as is read; the rest is dropped unread.
const maxReceiverBody = 4 << 10

// maxRetryAfter caps the wait a receiver's Retry-After can ask for.
const maxReceiverRetryAfter = 12 * time.Hour

// WebhookStore records deliveries; Store is the production one.
type WebhookStore interface {
	RecordDelivery(ctx context.Context, jobID string, d Delivery) error
}

// WebhookProcessor delivers webhooks: signed, with a bounded timeout, never following redirects.
type WebhookProcessor struct {
	Client *http.Client
	Signer *Signer
	Store  WebhookStore
	Now    func() time.Time
	Log    *slog.Logger
}

// NewWebhookClient returns the HTTP client for deliveries: its dialer refuses forbidden addresses, it
// uses no proxy (a proxy would dial for it, unchecked), does not follow redirects (a 3xx is a failed
// delivery) and gives up on an attempt after timeout.
func NewWebhookClient(p WebhookPolicy, timeout time.Duration) *http.Client {
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

// ProcessTask makes one delivery attempt. 2xx delivers; 410 means the receiver wants no more and stops
// the retries; 429 and 503 are retried after the receiver's Retry-After; anything else, a 3xx, a
// timeout or a refused address is retried on the schedule.
func (p *WebhookProcessor) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var wp WebhookPayload
	if err := json.Unmarshal(t.Payload(), &wp); err != nil {
		return fmt.Errorf("decode webhook payload: %w: %w", err, asynq.SkipRetry)
	}
	retried, _ := asynq.GetRetryCount(ctx)
	log := p.Log.With("job", wp.JobID, "webhook", wp.MessageID, "attempt", retried+1)
	now := p.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, wp.URL, bytesReader(wp.Body))
	if err != nil {
		return fmt.Errorf("webhook request: %w: %w", err, asynq.SkipRetry)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "reportd-webhooks/1")
	req.Header.Set("webhook-id", wp.MessageID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", p.Signer.Sign(wp.MessageID, now, wp.Body))

	d := Delivery{Attempts: retried + 1}
	resp, err := p.Client.Do(req)
	if err != nil {
		d.LastError = deliveryError(err)
		p.record(ctx, wp.JobID, d, log)
		log.Warn("webhook delivery failed", "err", d.LastError)
		return fmt.Errorf("deliver webhook: %s", d.LastError)
	}
	n, _ := io.Copy(io.Discard, io.LimitReader(resp.Body, maxReceiverBody))
	_ = resp.Body.Close()
	d.LastStatus = resp.StatusCode
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		d.DeliveredAt = p.Now().UTC()
		p.record(ctx, wp.JobID, d, log)
		log.Info("webhook delivered", "status", resp.StatusCode)
		return nil
	case resp.StatusCode == http.StatusGone:
		p.record(ctx, wp.JobID, d, log)
		log.Info("webhook receiver is gone (410); no more attempts")
		return fmt.Errorf("receiver answered 410 Gone: %w", asynq.SkipRetry)
	}
	p.record(ctx, wp.JobID, d, log)
	log.Warn("webhook delivery refused", "status", resp.StatusCode, "body_bytes_read", n)
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		if after, ok := parseRetryAfter(resp.Header.Get("Retry-After"), p.Now()); ok {
			return &retryAfterError{status: resp.StatusCode, after: min(after, maxReceiverRetryAfter)}
		}
	}
	return fmt.Errorf("receiver answered %d", resp.StatusCode)
}

func (p *WebhookProcessor) record(ctx context.Context, jobID string, d Delivery, log *slog.Logger) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := p.Store.RecordDelivery(rctx, jobID, d); err != nil {
		log.Warn("webhook delivery not recorded", "err", err)
	}
}

// deliveryError says why an attempt got no answer, without echoing anything the receiver sent.
func deliveryError(err error) string {
	switch {
	case errors.Is(err, ErrForbiddenAddress):
		return "the callback URL leads to an address webhooks may not be sent to"
	case errors.Is(err, context.DeadlineExceeded):
		return "the receiver did not answer in time"
	default:
		return "the receiver could not be reached"
	}
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
