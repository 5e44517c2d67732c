package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/reportd/reportd/internal/telemetry"
	"github.com/reportd/reportd/internal/webhook"
)

// TypeWebhook is the asynq task type of one webhook delivery.
const TypeWebhook = "webhook:deliver"

// WebhookPayload is a delivery task's payload: the message is fixed when the job finishes, so that
// every attempt sends the same body under the same webhook-id.
type WebhookPayload struct {
	MessageID string          `json:"message_id"`
	JobID     string          `json:"job_id"`
	URL       string          `json:"url"`
	Body      json.RawMessage `json:"body"`
}

// NewWebhookTask returns the delivery to url of body, the event that announces job jobID's end, and
// the options that place it on queue and bound its retries; headers, if set, are the task's (a trace's
// context). Its task id is derived from the job's, and the task is kept for retention after it is
// delivered, so that one job has one logical event however often its end is announced (a job is
// delivered at least once). Workers serve its queue with a server of their own, so that slow
// receivers never hold up report jobs.
func NewWebhookTask(jobID, url string, body []byte, queue string, retention time.Duration, headers map[string]string) (*asynq.Task, []asynq.Option, error) {
	p := WebhookPayload{MessageID: "msg_" + jobID, JobID: jobID, URL: url, Body: body}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, nil, fmt.Errorf("encode webhook payload: %w", err)
	}
	return asynq.NewTaskWithHeaders(TypeWebhook, b, headers), []asynq.Option{asynq.TaskID("webhook-" + jobID), asynq.Queue(queue),
		asynq.Retention(retention), asynq.MaxRetry(maxWebhookRetries)}, nil
}

// maxWebhookRetries bounds a delivery's retries; the schedule's last wait repeats past its end.
const maxWebhookRetries = 7

// WebhookRetryDelay returns the asynq RetryDelayFunc for deliveries on schedule: the n-th retry waits
// schedule[n] with ±20% jitter (so receivers that failed together are not hit together), or what the
// receiver asked for in Retry-After.
func WebhookRetryDelay(schedule []time.Duration) asynq.RetryDelayFunc {
	return func(n int, err error, _ *asynq.Task) time.Duration {
		var ra *webhook.RetryAfterError
		if errors.As(err, &ra) {
			// asynq keeps retry times in whole seconds, rounding down: a second more keeps the wait at
			// least as long as the receiver asked.
			return ra.After + time.Second
		}
		d := schedule[min(max(n, 0), len(schedule)-1)] // asynq passes the retries so far: 0 on the first failure
		return d*8/10 + rand.N(d*4/10+1)
	}
}

// Deliveries is what a webhook delivery asks of the job lifecycle (internal/jobs's Service is the
// production one): to record each attempt, for the job's status to show.
type Deliveries interface {
	RecordDelivery(ctx context.Context, jobID string, d Delivery) error
}

// Delivery is a delivery attempt of a job's webhook.
type Delivery struct {
	// Attempts counts the attempts so far, this one included.
	Attempts int
	// Status is the receiver's HTTP status; 0 when it gave none, and Error says why.
	Status int
	Error  string
	// DeliveredAt is when the receiver accepted the event; zero unless it did.
	DeliveredAt time.Time
}

// WebhookProcessor delivers webhooks: signed, with a bounded timeout, never following redirects.
type WebhookProcessor struct {
	// Client makes the deliveries; with tracing on, its transport sends each request's traceparent.
	Client *http.Client
	// Tracer, if set, traces each delivery attempt, in the trace of the job's end.
	Tracer trace.Tracer
	Signer *webhook.Signer
	Jobs   Deliveries
	Now    func() time.Time
	Log    *slog.Logger
}

// ProcessTask makes one delivery attempt. 2xx delivers; 410 means the receiver wants no more and stops
// the retries; an address the guard refuses stops them too (no later attempt would be let through, and
// the delivery says "refused: the address is <class>"); 429 and 503 are retried after the receiver's
// Retry-After; anything else, a 3xx, a timeout, a host that did not resolve or could not be connected
// to, is retried on the schedule.
func (p *WebhookProcessor) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var wp WebhookPayload
	if err := json.Unmarshal(t.Payload(), &wp); err != nil {
		return fmt.Errorf("decode webhook payload: %w: %w", err, asynq.SkipRetry)
	}
	retried, _ := asynq.GetRetryCount(ctx)
	log := p.Log.With("job", wp.JobID, "webhook", wp.MessageID, "attempt", retried+1)
	tracer := p.Tracer
	if tracer == nil {
		tracer = telemetry.Tracer(nil)
	}
	ctx, span := tracer.Start(telemetry.Extract(ctx, t.Headers()), "webhook.deliver", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("reportd.job.id", wp.JobID), attribute.Int("reportd.webhook.attempt", retried+1)))
	defer span.End()
	res, err := webhook.Deliver(ctx, p.Client, p.Signer, webhook.Message{ID: wp.MessageID, URL: wp.URL, Body: wp.Body}, p.Now)
	if !res.Attempted {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	p.record(ctx, wp.JobID, Delivery{Attempts: retried + 1, Status: res.Status, Error: res.Error, DeliveredAt: res.DeliveredAt}, log)
	span.SetAttributes(attribute.Int("http.response.status_code", res.Status))
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	switch {
	case err == nil:
		log.Info("webhook delivered", "status", res.Status)
	case errors.Is(err, webhook.ErrForbiddenAddress):
		log.Warn("webhook not sent: the address guard refused it; no more attempts", "err", res.Error)
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	case res.Status == 0:
		log.Warn("webhook delivery failed", "err", res.Error)
	case errors.Is(err, webhook.ErrGone):
		log.Info("webhook receiver is gone (410); no more attempts")
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	default:
		log.Warn("webhook delivery refused", "status", res.Status, "body_bytes_read", res.BodyRead)
	}
	return err
}

func (p *WebhookProcessor) record(ctx context.Context, jobID string, d Delivery, log *slog.Logger) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := p.Jobs.RecordDelivery(rctx, jobID, d); err != nil {
		log.Warn("webhook delivery not recorded", "err", err)
	}
}
