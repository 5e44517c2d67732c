package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/telemetry"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
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
func NewReportTask(id string, r report.DateRange, createdAt time.Time, opts ...ReportOption) (*asynq.Task, []asynq.Option, error) {
	p := ReportPayload{Range: r.String()}
	headers := map[string]string{HeaderCreatedAt: createdAt.UTC().Format(time.RFC3339Nano)}
	for _, o := range opts {
		o(&p, headers)
	}
	payload, err := json.Marshal(p)
	if err != nil {
		return nil, nil, fmt.Errorf("encode report payload: %w", err)
	}
	return asynq.NewTaskWithHeaders(TypeReport, payload, headers), []asynq.Option{asynq.TaskID(id), asynq.Queue(store.QueueOf(id))}, nil
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
// one): whether it was canceled, and to record how an attempt ended.
type Lifecycle interface {
	// CancelRequested reports whether the job was asked to stop.
	CancelRequested(ctx context.Context, id string) (bool, error)
	// End records how an attempt ended and, for the job's last attempt, the job's end: its report, the
	// finish event, its client's count, its webhook. It returns the outcome recorded, which is
	// OutcomeCanceled for a done attempt whose job was canceled first (its report is not kept).
	End(ctx context.Context, e Ending) (Outcome, error)
}

// Ending is how an attempt of a report job ended.
type Ending struct {
	ID          string
	Client      string
	CallbackURL string
	Outcome     Outcome
	// Final is set when the attempt was the job's last: it succeeded, was canceled, cannot be retried,
	// or used up its retries.
	Final bool
	// Report is a done job's report, encoded.
	Report []byte
	// Progress is the attempt's last progress.
	Progress Progress
	// FinishedAt is when the job ended, for its last attempt (Final).
	FinishedAt time.Time
}

// Status is the terminal status a client sees for the outcome of a job's last attempt: done, canceled
// or failed.
func (o Outcome) Status() string {
	switch o {
	case OutcomeDone, OutcomeCanceled:
		return string(o)
	}
	return "failed"
}

// ReportProcessor runs report jobs: it summarizes the job's range from the ledger, writing progress as
// it goes, and saves the report.
type ReportProcessor struct {
	Ledger report.Ledger
	Jobs   Lifecycle
	// ProgressEvery bounds how often progress is written (each write is a Redis round trip).
	ProgressEvery time.Duration
	// Tracer, if set, traces each attempt: a span a child of the submitting request's (whose context
	// the task's headers carry), with spans for the summary and the save.
	Tracer trace.Tracer
	// Progress, if set, writes a job's progress (and publishes it to whoever follows the job) in place
	// of asynq's ResultWriter; *store.Store is the production one.
	Progress ProgressWriter
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

// ProgressWriter records a running job's progress, its JSON, as its task's result.
type ProgressWriter interface {
	WriteProgress(ctx context.Context, id string, b []byte) error
}

// progressTo writes job id's progress to a ProgressWriter.
type progressTo struct {
	ctx context.Context
	id  string
	w   ProgressWriter
}

func (p progressTo) Write(b []byte) (int, error) {
	if err := p.w.WriteProgress(p.ctx, p.id, b); err != nil {
		return 0, err
	}
	return len(b), nil
}

// EventSource delivers job ids, or missed when some may have been lost; *store.Events is the
// production one.
type EventSource interface {
	Next(ctx context.Context) (id string, missed bool, err error)
}

// RunCancels stops this process's running jobs whose ids arrive on src (store.SubscribeCancels), until
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
					v.(context.CancelCauseFunc)(store.ErrCanceled)
				}
				return true
			})
		default:
			if stop, ok := p.running.Load(id); ok {
				stop.(context.CancelCauseFunc)(store.ErrCanceled)
			}
		}
	}
}

// errCanceled ends the attempt of a canceled job for good, without a retry, when its end could not be
// recorded: asynq archives it, and the status read finds the cancel marker. Recorded, it completes.
var errCanceled = fmt.Errorf("%w: %w", store.ErrCanceled, asynq.SkipRetry)

// errTimedOut is the cause of an attempt stopped by its time limit.
var errTimedOut = errors.New("the job's time limit was reached")

// timeLimitMargin is how long before asynq's deadline an attempt stops itself, so that it can still
// record that it timed out: once asynq's deadline passes, the task's result can no longer be written.
const timeLimitMargin = 500 * time.Millisecond

// ProcessTask runs one attempt of a report job and records how it ended (its Outcome). An
// undecodable payload can never succeed, so it is not retried. A canceled job ends at once, without a
// report and without a retry; a job stopped by a shutdown returns its context's error, and asynq puts
// it back in the queue.
func (p *ReportProcessor) ProcessTask(ctx context.Context, t *asynq.Task) error {
	id := t.ResultWriter().TaskID()
	log := p.Log.With("job", id)
	begin := p.Now()
	ctx, span := p.tracer().Start(telemetry.Extract(ctx, t.Headers()), "report.attempt", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("reportd.job.id", id)))
	defer span.End()
	if sc := span.SpanContext(); sc.IsValid() {
		log = log.With("trace_id", sc.TraceID().String(), "span_id", sc.SpanID().String())
	}
	var w io.Writer = t.ResultWriter()
	if p.Progress != nil {
		w = progressTo{ctx: ctx, id: id, w: p.Progress}
	}
	pw := &progressWriter{w: w, now: p.Now, every: p.ProgressEvery}
	payload, r, err := ParseReportPayload(t.Payload())
	a := attempt{outcome: OutcomeUnreadable}
	if err != nil {
		log.Error("report job has a bad payload; not retrying", "err", err)
		err = fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	} else {
		a, err = p.run(ctx, id, r, pw, log)
	}
	retried, _ := asynq.GetRetryCount(ctx)
	span.SetAttributes(attribute.String("reportd.job.range", payload.Range), attribute.Int("reportd.job.attempt", retried+1),
		attribute.String("reportd.client", payload.Client))
	err = p.end(ctx, id, payload, pw, a, err, p.Now().Sub(begin), log)
	span.SetAttributes(attribute.String("reportd.job.outcome", string(a.outcome)))
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}

// tracer is p's Tracer, or a no-op one.
func (p *ReportProcessor) tracer() trace.Tracer {
	if p.Tracer == nil {
		return telemetry.Tracer(nil)
	}
	return p.Tracer
}

// attempt is what an attempt came to.
type attempt struct {
	// outcome is how it ended; empty for a shutdown.
	outcome Outcome
	// report is a done attempt's report, encoded, with its count of orders.
	report []byte
	orders int64
}

// run computes the report of job id over r. It returns what the attempt came to and the error to hand
// asynq.
func (p *ReportProcessor) run(ctx context.Context, id string, r report.DateRange, pw *progressWriter, log *slog.Logger) (attempt, error) {
	if yes, err := p.Jobs.CancelRequested(ctx, id); err == nil && yes {
		log.Info("report canceled before it started")
		return attempt{outcome: OutcomeCanceled}, errCanceled
	}
	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithDeadlineCause(runCtx, deadline.Add(-min(timeLimitMargin, time.Until(deadline)/10)), errTimedOut)
		defer cancel()
	}
	p.running.Store(id, stop)
	defer p.running.Delete(id)
	p.watchCancel(runCtx, id, stop)

	retried, _ := asynq.GetRetryCount(ctx)
	start := p.Now()
	// The first progress is written one interval in: a job that ends before then writes none.
	pw.p, pw.last = Progress{StartedAt: start.UTC(), Attempt: retried + 1, DaysTotal: r.Days()}, start
	log.Info("report started", "range", r.String(), "attempt", retried+1)

	sumCtx, sum := p.tracer().Start(runCtx, "report.summarize", trace.WithAttributes(attribute.Int("reportd.job.days", r.Days())))
	rep, err := report.Summarize(sumCtx, p.Ledger, r, func(done, total int) {
		if err := pw.set(done, total, false); err != nil && runCtx.Err() == nil {
			log.Warn("progress not written", "err", err)
		}
	})
	sum.End()
	switch {
	case err == nil:
	case p.canceled(runCtx, id):
		log.Info("report canceled", "days_done", pw.p.DaysDone, "days", r.Days())
		return attempt{outcome: OutcomeCanceled}, errCanceled
	case errors.Is(context.Cause(runCtx), errTimedOut):
		return attempt{outcome: OutcomeTimedOut}, fmt.Errorf("summarize %s: %w", r, err)
	case ctx.Err() != nil:
		return attempt{}, fmt.Errorf("summarize %s: %w", r, err)
	default:
		return attempt{outcome: OutcomeFailed}, fmt.Errorf("summarize %s: %w", r, err)
	}
	rep.ID = id
	rep.GeneratedAt = p.Now().UTC()
	body := rep.AppendJSON(make([]byte, 0, 4096))
	pw.p.DaysDone, pw.p.DaysTotal, pw.p.Share = r.Days(), r.Days(), 1
	return attempt{outcome: OutcomeDone, report: body, orders: rep.Orders}, nil
}

// end records how the attempt ended (Lifecycle.End), trying again while Redis fails (see
// DefaultSaveRetryFor), and returns the error to hand asynq. A shutdown records nothing: asynq puts
// the job back in the queue by itself.
func (p *ReportProcessor) end(ctx context.Context, id string, payload ReportPayload, pw *progressWriter, a attempt, err error, took time.Duration, log *slog.Logger) error {
	if a.outcome == "" || ctx.Err() != nil {
		return err
	}
	final := p.final(ctx, err)
	e := Ending{ID: id, Client: payload.Client, CallbackURL: payload.CallbackURL, Outcome: a.outcome, Final: final,
		Report: a.report, Progress: pw.p}
	recorded := a.outcome
	retrying, recovered := "the attempt's end not recorded; trying again", "the attempt's end recorded after Redis failed"
	if a.outcome == OutcomeDone {
		retrying, recovered = "report not saved; trying again", "report saved after Redis failed"
	}
	ctx, save := p.tracer().Start(ctx, "report.save", trace.WithAttributes(attribute.Bool("reportd.job.final", final)))
	rerr := p.retryRedis(ctx, log, retrying, recovered, func() (err error) { recorded, err = p.Jobs.End(ctx, e); return err })
	save.End()
	switch {
	case rerr != nil && a.outcome == OutcomeDone:
		return fmt.Errorf("save the report: %w", rerr) // no report: the attempt failed
	case rerr != nil:
		// A canceled job is archived then, and its status read finds the cancel marker.
		log.Warn("the attempt's end not recorded; the status reads it from asynq", "err", rerr)
	case recorded == OutcomeCanceled:
		// Recorded as canceled: asynq completes the task, for a user's cancel is no failure (an archived
		// task counts as failed in asynq's web UI and metrics, and asynq warns that retries ran out).
		if a.outcome == OutcomeDone {
			log.Info("report canceled as it finished; not saved")
		}
		a.outcome, err = recorded, nil
	case a.outcome == OutcomeDone:
		log.Info("report done", "orders", a.orders, "took", took.Round(time.Millisecond))
	}
	if final {
		p.Metrics.observe(a.outcome.Status(), took)
	}
	return err
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
		if errors.Is(err, store.ErrCanceled) || ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
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
			stop(store.ErrCanceled)
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
	if errors.Is(context.Cause(ctx), store.ErrCanceled) {
		return true
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	canceled, err := p.Jobs.CancelRequested(rctx, id)
	return err == nil && canceled
}
