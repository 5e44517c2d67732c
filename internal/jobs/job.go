package jobs

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/reportd/reportd/internal/problem"
	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/tasks"
)

// State is a job's status as its client sees it.
type State string

// The states of a job. Done, Failed and Canceled are terminal.
const (
	Pending  State = "pending"
	Running  State = "running"
	Done     State = "done"
	Failed   State = "failed"
	Canceled State = "canceled"
)

// Job is a job as its client sees it, read from its asynq task (or, for a job canceled before it ran,
// from its record).
type Job struct {
	ID    string
	State State
	Range report.DateRange
	// Progress is the last progress its attempt wrote, with how the attempt ended once it did.
	Progress   Progress
	CreatedAt  time.Time
	FinishedAt time.Time
	// ExpiresAt is when a finished job stops being readable; zero while it is unfinished.
	ExpiresAt time.Time
	// MaxRetry is how many times a failed attempt is retried.
	MaxRetry int
	// Client owns the job.
	Client string
	// CallbackURL is the job's, if it has one; Delivery is its webhook's state once read.
	CallbackURL string
	Delivery    *store.Delivery
	// RetryAfter is, for an unfinished job read by Status or Submit, how many seconds a poller should
	// wait before it looks again.
	RetryAfter int
	// Waited says whether the read waited for the job (a wait is only made for an unfinished job).
	Waited bool
	// Replayed says that Submit answered with the job its Idempotency-Key first created.
	Replayed bool
	// RateLimit is, for a job Submit answered with under a rate limit, where its client stands against
	// the limit; nil without one.
	RateLimit *problem.RateLimit

	// inQueue says whether asynq still has the job's task (a job canceled before it ran has none).
	inQueue bool
}

// Terminal reports whether the job will not change any more.
func (j Job) Terminal() bool {
	return j.State == Done || j.State == Failed || j.State == Canceled
}

// Failure says why a failed job failed, and what the client can do, without leaking internal errors:
// only causes the client can act on are named, decoded from the outcome the worker recorded.
func (j Job) Failure(jobTimeout time.Duration) (problem.Type, string) {
	switch j.Progress.Outcome {
	case OutcomeTimedOut:
		return problem.ReportTimedOut, fmt.Sprintf("The report ran longer than the job time limit of %s; ask for a shorter range.", spoken(jobTimeout))
	case OutcomeUnreadable:
		return problem.ReportUnreadable, "The job's stored request cannot be read by this version of reportd; submit it again."
	}
	attempts := "1 attempt"
	if j.MaxRetry > 0 {
		attempts = fmt.Sprintf("%d attempts", j.MaxRetry+1)
	}
	return problem.ReportFailed, "The report could not be computed in " + attempts + "; submitting it again may help."
}

// fromTask reads a job from its task. retention is how long a failed job stays readable (asynq keeps
// archived tasks for months, whatever the task's own retention says).
func fromTask(info *asynq.TaskInfo, retention time.Duration) Job {
	// An unreadable payload is not an error here: the worker archives such a job, and its status must
	// say so (failed, report-unreadable) rather than fail to answer.
	payload, rng, _ := tasks.ParseReportPayload(info.Payload)
	j := Job{ID: info.ID, Range: rng, MaxRetry: info.MaxRetry, inQueue: true,
		CallbackURL: payload.CallbackURL, Client: ownerOf(payload.Client)}
	if ts, ok := info.Headers[tasks.HeaderCreatedAt]; ok {
		j.CreatedAt, _ = time.Parse(time.RFC3339Nano, ts)
	}
	progressRead := len(info.Result) == 0
	if len(info.Result) > 0 {
		var err error
		j.Progress, err = ParseProgress(info.Result)
		progressRead = err == nil
	}
	switch info.State {
	case asynq.TaskStateActive:
		j.State = Running
		switch o := j.Progress.Outcome; {
		case progressRead && j.Progress.Attempt < info.Retried+1:
			// A worker took the task from the queue but its attempt has not recorded its start yet
			// (tasks.Lifecycle.StartAttempt): no attempt is under way as far as a client can tell, and
			// the progress shown, if any, is the attempt before's.
			j.State, j.Progress = Pending, Progress{}
		case o != "" && !j.Progress.FinishedAt.IsZero():
			// The job's last attempt has ended and recorded how (EndAttempt writes its result before it
			// publishes the finish event); asynq completes (canceled) or archives (failed) the task a
			// moment later, and the job reads then as it reads now. So a job that one read showed ended
			// (a woken wait, a cancel's answer) does not show running to the next. A done end is not
			// taken from here: recordEnd may yet rewrite it canceled, so a done job reads running until
			// asynq completes it (or, for a woken wait, its end record says done: withEnd).
			j.State, j.FinishedAt = o.State(), j.Progress.FinishedAt
			j.ExpiresAt = j.FinishedAt.Add(retention)
			if o == OutcomeCanceled {
				j.ExpiresAt = store.ReadableUntil(j.FinishedAt, info.Retention)
			}
		}
	case asynq.TaskStateCompleted:
		j.State = Done
		if j.Progress.Outcome == OutcomeCanceled {
			j.State = Canceled // a canceled job's task completes: a user's cancel is no failure
		}
		// The worker's record of the finish, which the stored report's readable-until is made from (see
		// Progress.FinishedAt); asynq's completion comes a moment later, in whole seconds.
		j.FinishedAt = info.CompletedAt
		if !j.Progress.FinishedAt.IsZero() {
			j.FinishedAt = j.Progress.FinishedAt
		}
		j.ExpiresAt = store.ReadableUntil(j.FinishedAt, info.Retention)
	case asynq.TaskStateArchived:
		j.State = Failed
		if j.Progress.Outcome == OutcomeCanceled {
			j.State = Canceled
		}
		// The worker's record of the finish, as for a completed task; asynq's own (LastFailedAt, whole
		// seconds) for a job that ended before reportd recorded it.
		j.FinishedAt = info.LastFailedAt
		if !j.Progress.FinishedAt.IsZero() {
			j.FinishedAt = j.Progress.FinishedAt
		}
		if !j.FinishedAt.IsZero() {
			j.ExpiresAt = j.FinishedAt.Add(retention)
		}
	case asynq.TaskStatePending:
		// Never run, or put back in the queue by a worker's shutdown: no attempt is under way, and the
		// interrupted one's progress would read as if it were.
		j.State, j.Progress = Pending, Progress{}
	default: // scheduled, retry (waiting for its next attempt, whose predecessor's progress it shows), aggregating
		j.State = Pending
	}
	return j
}

// fromCanceled reads a job canceled before it ran from its record.
func fromCanceled(id string, c store.Canceled, retention time.Duration) Job {
	rng, _ := report.ParseRange(c.Range)
	return Job{
		ID: id, State: Canceled, Range: rng, CreatedAt: c.CreatedAt, CallbackURL: c.CallbackURL, Client: ownerOf(c.Client),
		Progress:   Progress{Share: c.Progress, StartedAt: c.StartedAt, Attempt: c.Attempt, Outcome: OutcomeCanceled},
		FinishedAt: c.CanceledAt, ExpiresAt: c.CanceledAt.Add(retention),
	}
}

// expired reports whether a finished job's retention has passed at now. asynq's janitor deletes expired
// tasks only every few seconds; the answer must not depend on when it last ran.
func (j Job) expired(now time.Time) bool {
	return !j.ExpiresAt.IsZero() && !now.Before(j.ExpiresAt)
}

// runningWait estimates, in whole seconds, how long a running job still needs: the time its progress so
// far says; the minimum before it has any progress to go by.
func (j Job) runningWait(now time.Time) int {
	secs := float64(problem.MinRetryAfter)
	p := j.Progress
	if p.Share > 0 && p.Share < 1 && !p.StartedAt.IsZero() {
		elapsed := now.Sub(p.StartedAt).Seconds()
		secs = math.Ceil(elapsed * (1 - p.Share) / p.Share)
	}
	return int(min(max(secs, problem.MinRetryAfter), problem.MaxRetryAfter))
}

// Anonymous is the one client of a deployment with no API keys, and the owner of jobs recorded with
// none.
const Anonymous = "anonymous"

// ownerOf is the client a recorded owner names; a job recorded with none is the anonymous client's.
func ownerOf(recorded string) string {
	if recorded == "" {
		return Anonymous
	}
	return recorded
}

// spoken is d as a person writes it in a sentence: 24h, not 24h0m0s; 1h30m, 90s as 1m30s.
func spoken(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
