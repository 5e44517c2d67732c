package impl

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/tasks"
)

// jobView is a job as a client sees it, read from its asynq task.
type jobView struct {
	id         string
	state      gen.JobState
	rng        report.DateRange
	progress   tasks.Progress
	createdAt  time.Time
	finishedAt time.Time
	expiresAt  time.Time
	lastErr    string
	maxRetry   int
	// task says whether asynq still has the job's task (a canceled pending job has none).
	task bool
	// client owns the job.
	client string
	// callback is the job's callback URL, if it has one; delivery is its webhook's state once read.
	callback string
	delivery *tasks.Delivery
}

// canceledView reads a job canceled before it ran from its record.
func canceledView(id string, c tasks.Canceled, retention time.Duration) jobView {
	rng, _ := report.ParseRange(c.Range)
	return jobView{
		id: id, state: gen.Canceled, rng: rng, createdAt: c.CreatedAt, callback: c.CallbackURL, client: ownerOf(c.Client),
		progress:   tasks.Progress{Share: c.Progress, StartedAt: c.StartedAt, Attempt: c.Attempt},
		finishedAt: c.CanceledAt, expiresAt: c.CanceledAt.Add(retention),
	}
}

// terminal reports whether the job will not change any more.
func (v jobView) terminal() bool {
	return v.state == gen.Done || v.state == gen.Failed || v.state == gen.Canceled
}

// viewOf reads a job from its task. retention is how long a failed job stays readable (asynq keeps
// archived tasks for months, whatever the task's own retention says).
func viewOf(info *asynq.TaskInfo, retention time.Duration) jobView {
	// An unreadable payload is not an error here: the worker archives such a job, and its status must
	// say so (failed, report-unreadable) rather than fail to answer.
	payload, rng, _ := tasks.ParseReportPayload(info.Payload)
	v := jobView{id: info.ID, rng: rng, lastErr: info.LastErr, maxRetry: info.MaxRetry, task: true,
		callback: payload.CallbackURL, client: ownerOf(payload.Client)}
	if ts, ok := info.Headers[tasks.HeaderCreatedAt]; ok {
		v.createdAt, _ = time.Parse(time.RFC3339Nano, ts)
	}
	if len(info.Result) > 0 {
		v.progress, _ = tasks.ParseProgress(info.Result)
	}
	switch info.State {
	case asynq.TaskStateActive:
		v.state = gen.Running
	case asynq.TaskStateCompleted:
		v.state = gen.Done
		v.finishedAt = info.CompletedAt
		v.expiresAt = info.CompletedAt.Add(info.Retention)
	case asynq.TaskStateArchived:
		v.state = gen.Failed
		if strings.HasPrefix(info.LastErr, tasks.ErrCanceled.Error()) {
			v.state = gen.Canceled
		}
		v.finishedAt = info.LastFailedAt
		if !info.LastFailedAt.IsZero() {
			v.expiresAt = info.LastFailedAt.Add(retention)
		}
	default: // pending, scheduled, retry (waiting for its next attempt), aggregating
		v.state = gen.Pending
	}
	return v
}

// expired reports whether a finished job's retention has passed at now. asynq's janitor deletes expired
// tasks only every few seconds; the answer must not depend on when it last ran.
func (v jobView) expired(now time.Time) bool {
	return !v.expiresAt.IsZero() && !now.Before(v.expiresAt)
}

// Retry-After bounds, in seconds, as the spec declares them.
const (
	minRetryAfter = 1
	maxRetryAfter = 30
)

// runningWait estimates, in whole seconds, how long a running job still needs: the time its progress so
// far says; the minimum before it has any progress to go by.
func (v jobView) runningWait(now time.Time) int {
	secs := float64(minRetryAfter)
	p := v.progress
	if p.Share > 0 && p.Share < 1 && !p.StartedAt.IsZero() {
		elapsed := now.Sub(p.StartedAt).Seconds()
		secs = math.Ceil(elapsed * (1 - p.Share) / p.Share)
	}
	return int(min(max(secs, minRetryAfter), maxRetryAfter))
}

func statusPath(id string) string { return "/v1/reports/" + id }
func resultPath(id string) string { return "/v1/reports/" + id + "/result" }

// toJobStatus converts a job to the API's JobStatus.
func toJobStatus(v jobView, jobTimeout time.Duration) (gen.JobStatus, error) {
	id, err := parseID(v.id)
	if err != nil {
		return gen.JobStatus{}, err
	}
	s := gen.JobStatus{
		Id:        id,
		Status:    v.state,
		Range:     toDateRange(v.rng),
		CreatedAt: v.createdAt.UTC(),
		Links:     gen.JobLinks{Self: statusPath(v.id)},
	}
	if v.state == gen.Running || v.state == gen.Failed || v.state == gen.Canceled {
		s.Progress = v.progress.Share
	}
	if v.state == gen.Done {
		s.Progress = 1
		s.Links.Result = ptr(resultPath(v.id))
	}
	if v.progress.Attempt > 0 {
		s.StartedAt = ptr(v.progress.StartedAt.UTC())
		s.Attempt = ptr(v.progress.Attempt)
	}
	if !v.finishedAt.IsZero() {
		s.FinishedAt = ptr(v.finishedAt.UTC())
	}
	if !v.expiresAt.IsZero() {
		s.ExpiresAt = ptr(v.expiresAt.UTC())
	}
	if v.state == gen.Failed {
		s.Error = ptr(failureProblem(v, jobTimeout))
	}
	s.Webhook = toWebhookDelivery(v)
	return s, nil
}

// failureProblem explains why a job failed without leaking internal errors: asynq's LastErr can hold
// anything (addresses, driver messages), so only causes the client can act on are named.
func failureProblem(v jobView, jobTimeout time.Duration) gen.Problem {
	attempts := "1 attempt"
	if v.maxRetry > 0 {
		attempts = fmt.Sprintf("%d attempts", v.maxRetry+1)
	}
	pt, detail := failedType, fmt.Sprintf("the report could not be computed in %s; submitting it again may help", attempts)
	switch {
	case strings.Contains(v.lastErr, "context deadline exceeded"):
		pt, detail = timedOutType, fmt.Sprintf("the report ran longer than the job time limit of %s; ask for a shorter range", jobTimeout)
	case strings.Contains(v.lastErr, "report payload"):
		pt, detail = unreadableType, "the job's stored request cannot be read by this version of reportd; submit it again"
	}
	return gen.Problem{Type: "/problems/" + pt.slug, Title: pt.title, Status: pt.status, Detail: detail}
}

func toDateRange(r report.DateRange) gen.DateRange {
	return gen.DateRange{From: openapi_types.Date{Time: r.From}, To: openapi_types.Date{Time: r.To}}
}

func ptr[T any](v T) *T { return &v }

// ownerOf is the client a recorded owner names; a job recorded with none is the anonymous client's.
func ownerOf(recorded string) string {
	if recorded == "" {
		return Anonymous
	}
	return recorded
}
