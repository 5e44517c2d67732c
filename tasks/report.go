package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
)

// TypeReport is the asynq task type of a report job.
const TypeReport = "report:generate"

// ReportPayload is a report job's task payload.
type ReportPayload struct {
	// Range is the canonical day span, "YYYY-MM-DD..YYYY-MM-DD".
	Range string `json:"range"`
}

// NewReportTask returns the task of job id over r, accepted at createdAt. opts are added to the task's
// own (its id and queue): retention, timeout and retries are the caller's policy.
func NewReportTask(id string, r DateRange, createdAt time.Time, opts ...asynq.Option) (*asynq.Task, error) {
	payload, err := json.Marshal(ReportPayload{Range: r.String()})
	if err != nil {
		return nil, fmt.Errorf("encode report payload: %w", err)
	}
	headers := map[string]string{HeaderCreatedAt: createdAt.UTC().Format(time.RFC3339Nano)}
	opts = append([]asynq.Option{asynq.TaskID(id), asynq.Queue(Queue)}, opts...)
	return asynq.NewTaskWithHeaders(TypeReport, payload, headers, opts...), nil
}

// ParseReportPayload decodes a report task's payload and its range.
func ParseReportPayload(b []byte) (ReportPayload, DateRange, error) {
	var p ReportPayload
	if err := json.Unmarshal(b, &p); err != nil {
		return ReportPayload{}, DateRange{}, fmt.Errorf("decode report payload: %w", err)
	}
	r, err := ParseRange(p.Range)
	if err != nil {
		return ReportPayload{}, DateRange{}, fmt.Errorf("report payload: %w", err)
	}
	return p, r, nil
}

// ReportSaver stores a finished report; Store is the production one.
type ReportSaver interface {
	SaveReport(ctx context.Context, id string, body []byte) error
}

// ReportProcessor runs report jobs: it summarizes the job's range from the ledger, writing progress as
// it goes, and saves the report.
type ReportProcessor struct {
	Ledger  Ledger
	Reports ReportSaver
	// ProgressEvery bounds how often progress is written (each write is a Redis round trip).
	ProgressEvery time.Duration
	Now           func() time.Time
	Log           *slog.Logger
}

// ProcessTask runs one attempt of a report job. An undecodable payload can never succeed, so it is not
// retried. A canceled context ends the attempt at once, without a report.
func (p *ReportProcessor) ProcessTask(ctx context.Context, t *asynq.Task) error {
	id := t.ResultWriter().TaskID()
	log := p.Log.With("job", id)
	_, r, err := ParseReportPayload(t.Payload())
	if err != nil {
		log.Error("report job has a bad payload; not retrying", "err", err)
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	retried, _ := asynq.GetRetryCount(ctx)
	start := p.Now()
	pw := &progressWriter{w: t.ResultWriter(), now: p.Now, every: p.ProgressEvery,
		p: Progress{StartedAt: start.UTC(), Attempt: retried + 1}}
	total := r.Days()
	if err := pw.set(0, total, true); err != nil {
		log.Warn("progress not written", "err", err)
	}
	log.Info("report started", "range", r.String(), "attempt", retried+1)

	rep, err := Summarize(ctx, p.Ledger, r, func(done, total int) {
		if err := pw.set(done, total, false); err != nil {
			log.Warn("progress not written", "err", err)
		}
	})
	if err != nil {
		return fmt.Errorf("summarize %s: %w", r, err)
	}
	rep.ID = id
	rep.GeneratedAt = p.Now().UTC()
	body, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := p.Reports.SaveReport(ctx, id, body); err != nil {
		return err
	}
	if err := pw.set(total, total, true); err != nil {
		log.Warn("progress not written", "err", err)
	}
	log.Info("report done", "orders", rep.Orders, "took", p.Now().Sub(start).Round(time.Millisecond))
	return nil
}
