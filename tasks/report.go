package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/webhook"
)

// TypeReport is the asynq task type of a report job.
const TypeReport = "report:generate"

// ReportPayload is a report job's task payload.
type ReportPayload struct {
	// Range is the canonical day span, "YYYY-MM-DD..YYYY-MM-DD".
	Range string `json:"range"`
	// CallbackURL, if set, receives a webhook when the job finishes.
	CallbackURL string `json:"callback_url,omitempty"`
	// Client names the client that owns the job (never its key); empty for a keyless deployment's.
	Client string `json:"client,omitempty"`
}

// ReportOption adds to a report job's payload.
type ReportOption func(*ReportPayload)

// WithClient records which client owns the job.
func WithClient(name string) ReportOption {
	return func(p *ReportPayload) { p.Client = name }
}

// WithCallback has the job announce its end to url by webhook.
func WithCallback(url string) ReportOption {
	return func(p *ReportPayload) { p.CallbackURL = url }
}

// NewReportTask returns the task of job id over r, accepted at createdAt, and the options that place it:
// its id and queue. Enqueue it with those and the caller's policy (retention, timeout, retries).
func NewReportTask(id string, r report.DateRange, createdAt time.Time, opts ...ReportOption) (*asynq.Task, []asynq.Option, error) {
	p := ReportPayload{Range: r.String()}
	for _, o := range opts {
		o(&p)
	}
	payload, err := json.Marshal(p)
	if err != nil {
		return nil, nil, fmt.Errorf("encode report payload: %w", err)
	}
	headers := map[string]string{HeaderCreatedAt: createdAt.UTC().Format(time.RFC3339Nano)}
	return asynq.NewTaskWithHeaders(TypeReport, payload, headers), []asynq.Option{asynq.TaskID(id), asynq.Queue(Queue)}, nil
}

// ParseReportPayload decodes a report task's payload and its range.
func ParseReportPayload(b []byte) (ReportPayload, report.DateRange, error) {
	var p ReportPayload
	if err := json.Unmarshal(b, &p); err != nil {
		return ReportPayload{}, report.DateRange{}, fmt.Errorf("decode report payload: %w", err)
	}
	r, err := report.ParseRange(p.Range)
	if err != nil {
		return ReportPayload{}, report.DateRange{}, fmt.Errorf("report payload: %w", err)
	}
	return p, r, nil
}

// ReportStore is what a report job keeps in Redis besides its task; Store is the production one.
type ReportStore interface {
	// SaveReport stores the report, or returns ErrCanceled if a cancel came first.
	SaveReport(ctx context.Context, id string, body []byte) error
	// CancelRequested reports whether the job was asked to stop.
	CancelRequested(ctx context.Context, id string) (bool, error)
	// PublishFinished wakes whoever waits for the job to finish.
	PublishFinished(ctx context.Context, id string) error
	// JobClosed drops the job from its client's unfinished jobs.
	JobClosed(ctx context.Context, client, id string) error
	// QueueReachable returns nil when the Redis that holds asynq's queue answers.
	QueueReachable(ctx context.Context) error
}

// ReportProcessor runs report jobs: it summarizes the job's range from the ledger, writing progress as
// it goes, and saves the report.
type ReportProcessor struct {
	Ledger  report.Ledger
	Reports ReportStore
	// ProgressEvery bounds how often progress is written (each write is a Redis round trip).
	ProgressEvery time.Duration
	// CancelCheckEvery is how often a running job looks for its cancel marker, in case the cancel
	// message (delivered by pub/sub, at most once) does not reach it. Zero means every second.
	CancelCheckEvery time.Duration
	// Metrics, if set, counts and times finished jobs.
	Metrics *JobMetrics
	// Webhooks enqueues the webhook of a job submitted with a callback URL when it finishes; nil
	// means webhooks are off. A delivered webhook's task is kept for WebhookRetention.
	Webhooks         Enqueuer
	WebhookRetention time.Duration
	// SaveRetryFor is how long a finished attempt keeps trying to save its report, and then waits for
	// the queue's Redis to answer, while Redis fails (a restart, a failover); zero means
	// DefaultSaveRetryFor.
	SaveRetryFor time.Duration
	Now          func() time.Time
	Log          *slog.Logger

	running sync.Map // job id -> context.CancelCauseFunc of its attempt in this process
}

// Enqueuer puts tasks on a queue; *asynq.Client is the production one.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// EventSource delivers job ids; *Events is the production one.
type EventSource interface {
	Next(ctx context.Context) (string, error)
}

// RunCancels stops this process's running jobs whose ids arrive on src (Store.SubscribeCancels), until
// ctx is done. When the subscription was re-established, and messages may have been lost, every
// running job looks for its cancel marker.
func (p *ReportProcessor) RunCancels(ctx context.Context, src EventSource) {
	for ctx.Err() == nil {
		id, err := src.Next(ctx)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			p.Log.Warn("cancel messages interrupted; running jobs fall back to their markers", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		case id == "":
			p.running.Range(func(k, v any) bool {
				if canceled, err := p.Reports.CancelRequested(ctx, k.(string)); err == nil && canceled {
					v.(context.CancelCauseFunc)(ErrCanceled)
				}
				return true
			})
		default:
			if stop, ok := p.running.Load(id); ok {
				stop.(context.CancelCauseFunc)(ErrCanceled)
			}
		}
	}
}

// ProcessTask runs one attempt of a report job. An undecodable payload can never succeed, so it is not
// retried. A canceled job ends at once, without a report and without a retry; a job stopped by a
// shutdown returns its context's error, and asynq puts it back in the queue.
func (p *ReportProcessor) ProcessTask(ctx context.Context, t *asynq.Task) (err error) {
	id := t.ResultWriter().TaskID()
	log := p.Log.With("job", id)
	begin := p.Now()
	payload, r, err := ParseReportPayload(t.Payload())
	queueAnswered := false // the last progress write reached the queue's Redis: no need to ask it again
	defer func() {
		if !queueAnswered {
			p.awaitQueue(ctx, log)
		}
		p.announce(ctx, id, payload, err, p.Now().Sub(begin), log)
	}()

	if err != nil {
		log.Error("report job has a bad payload; not retrying", "err", err)
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	if canceled, cerr := p.Reports.CancelRequested(ctx, id); cerr == nil && canceled {
		log.Info("report canceled before it started")
		return fmt.Errorf("%w: %w", ErrCanceled, asynq.SkipRetry)
	}
	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	p.running.Store(id, stop)
	defer p.running.Delete(id)
	go p.watchCancel(runCtx, id, stop)

	retried, _ := asynq.GetRetryCount(ctx)
	start := p.Now()
	pw := &progressWriter{w: t.ResultWriter(), now: p.Now, every: p.ProgressEvery,
		p: Progress{StartedAt: start.UTC(), Attempt: retried + 1}}
	total := r.Days()
	if err := pw.set(0, total, true); err != nil {
		log.Warn("progress not written", "err", err)
	}
	log.Info("report started", "range", r.String(), "attempt", retried+1)

	rep, err := report.Summarize(runCtx, p.Ledger, r, func(done, total int) {
		if err := pw.set(done, total, false); err != nil && runCtx.Err() == nil {
			log.Warn("progress not written", "err", err)
		}
	})
	if err != nil {
		if p.canceled(runCtx, id) {
			log.Info("report canceled", "days_done", pw.p.DaysDone, "days", total)
			return fmt.Errorf("%w: %w", ErrCanceled, asynq.SkipRetry)
		}
		return fmt.Errorf("summarize %s: %w", r, err)
	}
	rep.ID = id
	rep.GeneratedAt = p.Now().UTC()
	body, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := p.save(ctx, id, body, log); err != nil {
		if errors.Is(err, ErrCanceled) {
			log.Info("report canceled as it finished; not saved")
			return fmt.Errorf("%w: %w", ErrCanceled, asynq.SkipRetry)
		}
		return err
	}
	// The task's result lives with asynq's queue: this write succeeding shows that asynq can record
	// the attempt's end now, so a done job costs no extra round trip for awaitQueue.
	if err := pw.set(total, total, true); err != nil {
		log.Warn("progress not written", "err", err)
	} else {
		queueAnswered = true
	}
	log.Info("report done", "orders", rep.Orders, "took", p.Now().Sub(start).Round(time.Millisecond))
	return nil
}

// DefaultSaveRetryFor is how long a finished attempt keeps trying to save its report, and waits for
// the queue to be reachable, while Redis fails. An attempt that ends while Redis is away is worse off
// than one that waits: asynq v0.26.0 cannot move such a task to completed or to its retry while Redis
// is down and gives up on it for good (its syncer's context is canceled when the processor returns),
// so the job reads "running" until asynq's recoverer takes it, 60-120 s later. Waiting here lets the
// attempt end, and asynq record it, once Redis is back. It stays well under asynq's 30 s task lease,
// which cannot be extended while Redis is away.
const DefaultSaveRetryFor = 15 * time.Second

// save saves the report, trying again while Redis fails (see DefaultSaveRetryFor). A cancel that came
// first (ErrCanceled) is final at once.
func (p *ReportProcessor) save(ctx context.Context, id string, body []byte, log *slog.Logger) error {
	return p.retryRedis(ctx, log, "report not saved; trying again", "report saved after Redis failed",
		func() error { return p.Reports.SaveReport(ctx, id, body) })
}

// awaitQueue waits, as save does, until the Redis that holds asynq's queue answers, so that asynq can
// record how the attempt ended as soon as the handler returns. On a Redis Cluster the report is saved
// in the job's own slot, which a failover of the queue's master does not touch. A shutdown does not
// wait: asynq puts the job back by itself.
func (p *ReportProcessor) awaitQueue(ctx context.Context, log *slog.Logger) {
	if ctx.Err() != nil {
		return
	}
	_ = p.retryRedis(ctx, log, "queue unreachable; waiting for it before ending the attempt", "queue reachable again",
		func() error { return p.Reports.QueueReachable(ctx) })
}

// retryRedis calls f until it succeeds, fails with ErrCanceled, ctx ends, or SaveRetryFor has passed,
// with waits from 100 ms doubling to 2 s, logging retrying before each wait and recovered on a late
// success. It returns f's last error.
func (p *ReportProcessor) retryRedis(ctx context.Context, log *slog.Logger, retrying, recovered string, f func() error) error {
	retryFor := p.SaveRetryFor
	if retryFor <= 0 {
		retryFor = DefaultSaveRetryFor
	}
	deadline := time.Now().Add(retryFor)
	wait := 100 * time.Millisecond
	for tries := 1; ; tries++ {
		err := f()
		if err == nil {
			if tries > 1 {
				log.Info(recovered, "tries", tries)
			}
			return nil
		}
		if errors.Is(err, ErrCanceled) || ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return err
		}
		log.Warn(retrying, "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// watchCancel stops the attempt (through stop) when the job's cancel marker appears, until ctx ends.
func (p *ReportProcessor) watchCancel(ctx context.Context, id string, stop context.CancelCauseFunc) {
	every := p.CancelCheckEvery
	if every <= 0 {
		every = time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if canceled, err := p.Reports.CancelRequested(ctx, id); err == nil && canceled {
				stop(ErrCanceled)
				return
			}
		}
	}
}

// canceled reports whether an attempt that stopped early stopped because the job was canceled (and not
// for a shutdown or its time limit), asking Redis when asynq's cancel reached it first.
func (p *ReportProcessor) canceled(ctx context.Context, id string) bool {
	if errors.Is(context.Cause(ctx), ErrCanceled) {
		return true
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	canceled, err := p.Reports.CancelRequested(rctx, id)
	return err == nil && canceled
}

// announce publishes that the job finished when this attempt was its last: it succeeded, was
// canceled, cannot be retried, or used up its retries. Waiting requests then answer at once, and the
// job's webhook, if it has one, is scheduled.
func (p *ReportProcessor) announce(ctx context.Context, id string, payload ReportPayload, err error, took time.Duration, log *slog.Logger) {
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	switch {
	case err == nil, errors.Is(err, asynq.SkipRetry):
	case errors.Is(ctx.Err(), context.Canceled):
		return // a shutdown: asynq puts the job back in the queue
	case retried < maxRetry:
		return // a retry follows
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if perr := p.Reports.PublishFinished(pctx, id); perr != nil {
		log.Warn("finish not announced; waiters will notice on their next look", "err", perr)
	}
	if cerr := p.Reports.JobClosed(pctx, payload.Client, id); cerr != nil {
		log.Warn("job not closed in its client's count; the API recounts when the cap is reached", "err", cerr)
	}
	status := "failed"
	switch {
	case err == nil:
		status = "done"
	case errors.Is(err, ErrCanceled):
		status = "canceled"
	}
	p.Metrics.observe(status, took)
	callbackURL := payload.CallbackURL
	if callbackURL == "" || p.Webhooks == nil {
		return
	}
	if werr := ScheduleWebhook(pctx, p.Webhooks, callbackURL, webhook.NewEvent(id, status, p.Now()), p.WebhookRetention); werr != nil {
		log.Error("webhook not scheduled", "err", werr)
	}
}

// ScheduleWebhook enqueues the delivery of ev to url, kept for retention once delivered. A second
// schedule for the same job within that time is a no-op: the delivery's task id is the job's.
func ScheduleWebhook(ctx context.Context, q Enqueuer, url string, ev webhook.Event, retention time.Duration) error {
	task, opts, err := NewWebhookTask(url, ev, retention)
	if err != nil {
		return err
	}
	if _, err := q.EnqueueContext(ctx, task, append(opts, asynq.MaxRetry(maxWebhookRetries))...); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue webhook of job %s: %w", ev.Data.ID, err)
	}
	return nil
}
