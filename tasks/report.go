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
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/telemetry"
)

// TypeReport is the asynq task type of a report job.
const TypeReport = "report:generate"

// HeaderCreatedAt is the task header that carries when the job was accepted (RFC 3339, UTC), because
// asynq's TaskInfo has no creation time.
const HeaderCreatedAt = "reportd-created-at"

// ReportPayload is a report job's task payload.
type ReportPayload struct {
	// Range is the canonical day span, "YYYY-MM-DD..YYYY-MM-DD".
	Range string `json:"range"`
	// CallbackURL, if set, receives a webhook when the job finishes.
	CallbackURL string `json:"callback_url,omitempty"`
	// Client names the client that owns the job (never its key); empty for a keyless deployment's.
	Client string `json:"client,omitempty"`
}

// ReportOption adds to a report job's payload or headers.
type ReportOption func(p *ReportPayload, headers map[string]string)

// WithClient records which client owns the job.
func WithClient(name string) ReportOption {
	return func(p *ReportPayload, _ map[string]string) { p.Client = name }
}

// WithCallback has the job announce its end to url by webhook.
func WithCallback(url string) ReportOption {
	return func(p *ReportPayload, _ map[string]string) { p.CallbackURL = url }
}

// WithTrace carries the span of ctx (the submitting request's) in the task's headers, so that each
// attempt's span belongs to the same trace.
func WithTrace(ctx context.Context) ReportOption {
	return func(_ *ReportPayload, headers map[string]string) { telemetry.Inject(ctx, headers) }
}

// NewReportTask returns the task of job id over r, accepted at createdAt, and the options that place it:
// its id and queue. Enqueue it with those and the caller's policy (retention, timeout, retries).
func NewReportTask(id, queue string, r report.DateRange, createdAt time.Time, opts ...ReportOption) (*asynq.Task, []asynq.Option, error) {
	p := ReportPayload{Range: r.String()}
	headers := map[string]string{HeaderCreatedAt: createdAt.UTC().Format(time.RFC3339Nano)}
	for _, o := range opts {
		o(&p, headers)
	}
	payload, err := json.Marshal(p)
	if err != nil {
		return nil, nil, fmt.Errorf("encode report payload: %w", err)
	}
	return asynq.NewTaskWithHeaders(TypeReport, payload, headers), []asynq.Option{asynq.TaskID(id), asynq.Queue(queue)}, nil
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

// Lifecycle is what a report job asks of the job lifecycle (internal/jobs's Service is the production
// one). The processor says what an attempt came to; the lifecycle decides what that makes of the job.
type Lifecycle interface {
	// CancelRequested reports whether the job was asked to stop.
	CancelRequested(ctx context.Context, id string) (bool, error)
	// StartAttempt records that attempt a is under way (its number and start), so that its job reads
	// running from then on, and reports, as CancelRequested does, whether the job was asked to stop
	// (then the attempt ends at once, and its end is recorded over the start).
	StartAttempt(ctx context.Context, a Attempt) (canceled bool, err error)
	// WriteProgress records a running attempt's progress, for status reads and event streams.
	WriteProgress(ctx context.Context, a Attempt) error
	// EndAttempt records how attempt a ended and, when it was the job's last (a.Final), the job's end:
	// its report, the finish event, its client's count, its webhook. It reports whether the job ended
	// canceled, which a done attempt does when its job was canceled first (its report is not kept).
	EndAttempt(ctx context.Context, a Attempt) (canceled bool, err error)
}

// Attempt is one attempt of a report job, as its processor knows it: what it is about while it runs,
// and what it came to once it has ended.
type Attempt struct {
	ID          string
	Client      string
	CallbackURL string
	// Number counts the job's attempts from 1; zero for one that never started (a payload that cannot
	// be read, a job canceled before it started).
	Number    int
	StartedAt time.Time
	DaysDone  int
	DaysTotal int

	// Final is set when the attempt was the job's last: it succeeded, was canceled, cannot be retried,
	// or used up its retries.
	Final bool
	// Report is a done attempt's report, encoded, and Orders its count of orders.
	Report []byte
	Orders int64
	// Err is why the attempt ended without a report: nil for a done one, else an error wrapping
	// ErrCanceled, ErrTimedOut, ErrUnreadable, or any other (a failure).
	Err error
}

// The causes of an attempt that ended without a report, other than a plain failure.
var (
	// ErrCanceled: the job was canceled, before or while the attempt ran.
	ErrCanceled = errors.New("job canceled")
	// ErrTimedOut: the attempt ran into the job's time limit.
	ErrTimedOut = errors.New("the job's time limit was reached")
	// ErrUnreadable: the job's payload cannot be decoded by this version of reportd.
	ErrUnreadable = errors.New("job payload unreadable")
)

// ReportProcessor runs report jobs: it summarizes the job's range from the ledger, reporting progress
// as it goes, and hands what the attempt came to to the lifecycle.
type ReportProcessor struct {
	Ledger report.Ledger
	Jobs   Lifecycle
	// ProgressEvery bounds how often progress is written (each write is a Redis round trip).
	ProgressEvery time.Duration
	// Tracer, if set, traces each attempt: a span a child of the submitting request's (whose context
	// the task's headers carry), with spans for the summary and the save.
	Tracer trace.Tracer
	// CancelCheckEvery is how often a running job looks for its cancel marker, in case the cancel
	// message (delivered by pub/sub, at most once) does not reach it. Zero means every second.
	CancelCheckEvery time.Duration
	// Metrics, if set, counts and times finished jobs.
	Metrics *JobMetrics
	// SaveRetryFor is how long a finished attempt keeps trying to save its report and record how it
	// ended while Redis fails (a restart, a failover); zero means DefaultSaveRetryFor.
	SaveRetryFor time.Duration
	Now          func() time.Time
	Log          *slog.Logger

	running sync.Map // job id -> context.CancelCauseFunc of its attempt in this process
}

// EventSource delivers job ids, or missed when some may have been lost; the store's subscription to
// cancel messages is the production one.
type EventSource interface {
	Next(ctx context.Context) (id string, missed bool, err error)
}

// RunCancels stops this process's running jobs whose ids arrive on src (the cancel messages), until
// ctx is done. When the subscription was re-established, and messages may have been lost, every
// running job looks for its cancel marker.
func (p *ReportProcessor) RunCancels(ctx context.Context, src EventSource) {
	for ctx.Err() == nil {
		id, missed, err := src.Next(ctx)
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
		case missed:
			p.running.Range(func(k, v any) bool {
				if canceled, err := p.Jobs.CancelRequested(ctx, k.(string)); err == nil && canceled {
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

// errCanceled ends the attempt of a canceled job for good, without a retry, when its end could not be
// recorded: asynq archives it, and the status read finds the cancel marker. Recorded, it completes.
var errCanceled = fmt.Errorf("%w: %w", ErrCanceled, asynq.SkipRetry)

// timeLimitMargin is how long before asynq's deadline an attempt stops itself, so that it can still
// record that it timed out: once asynq's deadline passes, the task's result can no longer be written.
const timeLimitMargin = 500 * time.Millisecond

// ProcessTask runs one attempt of a report job and hands what it came to to the lifecycle. An
// undecodable payload can never succeed, so it is not retried. A canceled job ends at once, without a
// report and without a retry; a job stopped by a shutdown returns its context's error, and asynq puts
// it back in the queue.
func (p *ReportProcessor) ProcessTask(ctx context.Context, t *asynq.Task) error {
	id := t.ResultWriter().TaskID()
	log := p.Log.With("job", id)
	begin := p.Now()
	ctx = telemetry.Extract(ctx, t.Headers())
	p.traceQueued(ctx, id, t.Headers(), begin)
	ctx, span := p.tracer().Start(ctx, "report.attempt", trace.WithSpanKind(trace.SpanKindConsumer), trace.WithTimestamp(begin),
		trace.WithAttributes(attribute.String("reportd.job.id", id)))
	defer span.End()
	if sc := span.SpanContext(); sc.IsValid() {
		log = log.With("trace_id", sc.TraceID().String(), "span_id", sc.SpanID().String())
	}
	payload, r, err := ParseReportPayload(t.Payload())
	a := Attempt{ID: id, Client: payload.Client, CallbackURL: payload.CallbackURL}
	if err != nil {
		log.Error("report job has a bad payload; not retrying", "err", err)
		a.Err = fmt.Errorf("%w: %w", ErrUnreadable, err)
		err = fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	} else {
		a, err = p.run(ctx, a, r, log)
	}
	retried, _ := asynq.GetRetryCount(ctx)
	span.SetAttributes(attribute.String("reportd.job.range", payload.Range), attribute.Int("reportd.job.attempt", retried+1),
		attribute.String("reportd.client", payload.Client))
	status, err := p.end(ctx, a, err, p.Now().Sub(begin), log)
	span.SetAttributes(attribute.String("reportd.job.status", status))
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}

// traceQueued records, for a job's first attempt, the time it waited in the queue: a report.queued
// span from the job's acceptance (the task's HeaderCreatedAt, taken while the POST was answered) to
// pickup, the start of the attempt's span, beside it under the POST's span. A retry waited out its
// backoff instead, which the gap between two attempt spans shows, so it records none.
func (p *ReportProcessor) traceQueued(ctx context.Context, id string, headers map[string]string, pickup time.Time) {
	if retried, _ := asynq.GetRetryCount(ctx); retried > 0 {
		return
	}
	accepted, err := time.Parse(time.RFC3339Nano, headers[HeaderCreatedAt])
	if err != nil || accepted.After(pickup) {
		return // no acceptance time, or a clock behind the API's: no wait to show
	}
	queue, _ := asynq.GetQueueName(ctx)
	_, span := p.tracer().Start(ctx, "report.queued", trace.WithTimestamp(accepted), trace.WithAttributes(
		attribute.String("reportd.job.id", id), attribute.String("reportd.job.queue", queue)))
	span.End(trace.WithTimestamp(pickup))
}

// tracer is p's Tracer, or a no-op one.
func (p *ReportProcessor) tracer() trace.Tracer {
	if p.Tracer == nil {
		return telemetry.Tracer(nil)
	}
	return p.Tracer
}

// errShutdown marks an attempt stopped by a shutdown: asynq puts its job back in the queue, and nothing
// is recorded.
var errShutdown = errors.New("stopped by a shutdown")

// run computes the report of attempt a over r. It returns the attempt as it ended (a.Err says why it
// has no report: errShutdown for one stopped by a shutdown) and the error to hand asynq.
func (p *ReportProcessor) run(ctx context.Context, a Attempt, r report.DateRange, log *slog.Logger) (Attempt, error) {
	retried, _ := asynq.GetRetryCount(ctx)
	start := p.Now()
	started := a
	started.Number, started.StartedAt, started.DaysTotal = retried+1, start.UTC(), r.Days()
	canceled, err := p.Jobs.StartAttempt(ctx, started)
	switch {
	case err != nil:
		// The job reads pending until its first progress; the cancel watcher looks at the marker again.
		log.Warn("the attempt's start not recorded", "err", err)
	case canceled:
		log.Info("report canceled before it started")
		a.Err = ErrCanceled
		return a, errCanceled
	}
	a = started
	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithDeadlineCause(runCtx, deadline.Add(-min(timeLimitMargin, time.Until(deadline)/10)), ErrTimedOut)
		defer cancel()
	}
	p.running.Store(a.ID, stop)
	defer p.running.Delete(a.ID)
	p.watchCancel(runCtx, a.ID, stop)

	// The first progress is written one interval in: a job that ends before then writes none.
	pt := &progressThrottle{jobs: p.Jobs, now: p.Now, every: p.ProgressEvery, last: start, a: a}
	log.Info("report started", "range", r.String(), "attempt", a.Number)

	sumCtx, sum := p.tracer().Start(runCtx, "report.summarize", trace.WithAttributes(attribute.Int("reportd.job.days", r.Days())))
	// The days after the attempt's start have not happened: they count no orders.
	rep, err := report.Summarize(sumCtx, p.Ledger, r, start, func(done, total int) {
		if err := pt.set(runCtx, done, total); err != nil && runCtx.Err() == nil {
			log.Warn("progress not written", "err", err)
		}
	})
	sum.End()
	a.DaysDone = pt.a.DaysDone
	switch {
	case err == nil:
	case p.canceled(runCtx, a.ID):
		log.Info("report canceled", "days_done", a.DaysDone, "days", r.Days())
		a.Err = ErrCanceled
		return a, errCanceled
	case errors.Is(context.Cause(runCtx), ErrTimedOut):
		a.Err = fmt.Errorf("summarize %s: %w: %w", r, ErrTimedOut, err)
		return a, a.Err
	case ctx.Err() != nil:
		a.Err = errShutdown
		return a, fmt.Errorf("summarize %s: %w", r, err)
	default:
		a.Err = fmt.Errorf("summarize %s: %w", r, err)
		return a, a.Err
	}
	rep.ID = a.ID
	rep.GeneratedAt = p.Now().UTC()
	a.Report = rep.AppendJSON(make([]byte, 0, 4096))
	a.DaysDone, a.Orders = r.Days(), rep.Orders
	return a, nil
}

// end hands attempt a, which returned err, to the lifecycle (Lifecycle.EndAttempt), trying again while
// Redis fails (see DefaultSaveRetryFor). It returns the job's status as the attempt leaves it (done,
// canceled, failed, or pending for one that is retried) and the error to hand asynq. A shutdown records
// nothing: asynq puts the job back in the queue by itself.
func (p *ReportProcessor) end(ctx context.Context, a Attempt, err error, took time.Duration, log *slog.Logger) (string, error) {
	if errors.Is(a.Err, errShutdown) || ctx.Err() != nil {
		return "pending", err
	}
	a.Final = p.final(ctx, err)
	done := a.Err == nil
	retrying, recovered := "the attempt's end not recorded; trying again", "the attempt's end recorded after Redis failed"
	if done {
		retrying, recovered = "report not saved; trying again", "report saved after Redis failed"
	}
	ctx, save := p.tracer().Start(ctx, "report.save", trace.WithAttributes(attribute.Bool("reportd.job.final", a.Final)))
	var canceled bool
	rerr := p.retryRedis(ctx, log, retrying, recovered, func() (err error) { canceled, err = p.Jobs.EndAttempt(ctx, a); return err })
	save.End()
	status := "failed"
	switch {
	case rerr != nil && done:
		return status, fmt.Errorf("save the report: %w", rerr) // no report: the attempt failed
	case rerr != nil:
		// A canceled job is archived then, and its status read finds the cancel marker.
		log.Warn("the attempt's end not recorded; the status reads it from asynq", "err", rerr)
		canceled = errors.Is(a.Err, ErrCanceled)
	case canceled:
		// Recorded as canceled: asynq completes the task, for a user's cancel is no failure (an archived
		// task counts as failed in asynq's web UI and metrics, and asynq warns that retries ran out).
		if done {
			log.Info("report canceled as it finished; not saved")
		}
		err = nil
	case done:
		log.Info("report done", "orders", a.Orders, "took", took.Round(time.Millisecond))
	}
	switch {
	case canceled:
		status = "canceled"
	case done:
		status = "done"
	case !a.Final:
		status = "pending"
	}
	if a.Final {
		p.Metrics.observe(status, took)
	}
	return status, err
}

// final reports whether an attempt that ended with err was the job's last: it succeeded, was
// canceled, cannot be retried, or used up its retries.
func (p *ReportProcessor) final(ctx context.Context, err error) bool {
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	return err == nil || errors.Is(err, asynq.SkipRetry) || retried >= maxRetry
}

// DefaultSaveRetryFor is how long a finished attempt keeps trying to record its end (and save its
// report) while Redis fails. An attempt that ends while Redis is away is worse off
// than one that waits: asynq v0.26.0 cannot move such a task to completed or to its retry while Redis
// is down and gives up on it for good (its syncer's context is canceled when the processor returns),
// so the job reads "running" until asynq's recoverer takes it, 60-120 s later. Waiting here lets the
// attempt end, and asynq record it, once Redis is back. It stays well under asynq's 30 s task lease,
// which cannot be extended while Redis is away.
const DefaultSaveRetryFor = 15 * time.Second

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

// watchCancel stops the attempt (through stop) when the job's cancel marker appears, looking every
// CancelCheckEvery until ctx ends. It starts no goroutine until the first look is due: most jobs end
// before that.
func (p *ReportProcessor) watchCancel(ctx context.Context, id string, stop context.CancelCauseFunc) {
	every := p.CancelCheckEvery
	if every <= 0 {
		every = time.Second
	}
	var look func()
	look = func() {
		if ctx.Err() != nil {
			return
		}
		if canceled, err := p.Jobs.CancelRequested(ctx, id); err == nil && canceled {
			stop(ErrCanceled)
			return
		}
		time.AfterFunc(every, look)
	}
	t := time.AfterFunc(every, look)
	context.AfterFunc(ctx, func() { t.Stop() })
}

// canceled reports whether an attempt that stopped early stopped because the job was canceled (and not
// for a shutdown or its time limit), asking Redis when asynq's cancel reached it first.
func (p *ReportProcessor) canceled(ctx context.Context, id string) bool {
	if errors.Is(context.Cause(ctx), ErrCanceled) {
		return true
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	canceled, err := p.Jobs.CancelRequested(rctx, id)
	return err == nil && canceled
}
