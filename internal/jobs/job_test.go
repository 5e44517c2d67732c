package jobs

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"

	"github.com/reportd/reportd/internal/jobs/jobstest"
	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/store"
)

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := testNow
	running := func(share float64, elapsed time.Duration) Job {
		return Job{State: Running, Progress: Progress{Share: share, StartedAt: now.Add(-elapsed), Attempt: 1}}
	}
	tests := []struct {
		name string
		v    Job
		want int
	}{
		{name: "pending", v: Job{State: Pending}, want: 1},
		{name: "pending-with-old-progress", v: Job{State: Pending, Progress: Progress{Share: 0.1, StartedAt: now.Add(-time.Minute)}}, want: 1},
		{name: "running-no-progress", v: running(0, 10*time.Second), want: 1},
		{name: "running-half-after-10s", v: running(0.5, 10*time.Second), want: 10},
		{name: "running-three-quarters-after-9s", v: running(0.75, 9*time.Second), want: 3},
		{name: "running-rounds-up", v: running(0.5, 1500*time.Millisecond), want: 2},
		{name: "running-nearly-done", v: running(0.99, 10*time.Second), want: 1},
		{name: "running-clamped-to-30", v: running(0.1, time.Minute), want: 30},
		{name: "running-all-days-done", v: running(1, time.Minute), want: 1},
		{name: "running-no-start-time", v: Job{State: Running, Progress: Progress{Share: 0.5}}, want: 1},
		{name: "running-clock-skew", v: running(0.5, -5*time.Second), want: 1},
		{name: "done", v: Job{State: Done, Progress: Progress{Share: 1}}, want: 1},
	}
	srv := New(Deps{Now: func() time.Time { return now }})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := srv.retryAfter(tt.v); got != tt.want {
				t.Errorf("retryAfter = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestPendingWait(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name            string
		pending, active int
		runs            []time.Duration
		want            int
	}{
		{name: "empty-queue", pending: 0, active: 0, runs: []time.Duration{10 * time.Second}, want: 1},
		{name: "no-runs-observed", pending: 100, active: 2, want: 1},
		// 10 ahead on average (half of 20), 2 workers, 3 s a job: 15 s.
		{name: "queue-of-20-on-2-workers", pending: 20, active: 2, runs: []time.Duration{3 * time.Second}, want: 15},
		{name: "clamped-to-30", pending: 1000, active: 1, runs: []time.Duration{3 * time.Second}, want: 30},
		{name: "short-jobs", pending: 4, active: 4, runs: []time.Duration{100 * time.Millisecond}, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := &waitEstimate{}
			for i, r := range tt.runs {
				p.observe(fmt.Sprint("job-", i), r)
			}
			p.setQueue(int64(tt.pending), int64(tt.active))
			if got := p.pendingWait(); got != tt.want {
				t.Errorf("pendingWait = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestPendingWaitReadsNothing: the Retry-After of pending jobs costs the request path no Redis read;
// the queue's counts are read once a refresh, off it.
func TestPendingWaitReadsNothing(t *testing.T) {
	t.Parallel()
	counts := &countingQueue{pending: 20, active: 2}
	s := New(Deps{Store: counts, Now: func() time.Time { return testNow }})
	s.estimate.observe("job", 3*time.Second)
	for range 100 {
		if got := s.retryAfter(Job{State: Pending}); got != 1 {
			t.Fatalf("retryAfter before any refresh = %d, want 1", got)
		}
	}
	if counts.reads != 0 {
		t.Errorf("100 estimates read the queue %d times, want none", counts.reads)
	}
	s.refreshEstimate(context.Background())
	if got := s.retryAfter(Job{State: Pending}); counts.reads != 1 || got != 15 {
		t.Errorf("after one refresh: %d reads, retryAfter %d; want 1 read and 15 s", counts.reads, got)
	}
}

// countingQueue is a Store whose queue holds pending and active jobs, and which counts its reads.
type countingQueue struct {
	Store
	pending, active int64
	reads           int
}

func (c *countingQueue) QueueCounts(context.Context, []string) (int64, int64, error) {
	c.reads++
	return c.pending, c.active, nil
}

func TestFromTask(t *testing.T) {
	t.Parallel()
	completedAt := testNow.Add(-time.Hour).Truncate(time.Second)
	failedAt := testNow.Add(-2 * time.Hour).Truncate(time.Second)
	started := testNow.Add(-3 * time.Hour)
	q1 := report.DateRange{From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC)}
	progress := Progress{Share: 0.5, DaysDone: 45, DaysTotal: 90, StartedAt: started, Attempt: 2}
	recordedFinish := failedAt.Add(-time.Second + 123456789*time.Nanosecond)
	finishedProgress := progress
	finishedProgress.Outcome, finishedProgress.FinishedAt = OutcomeFailed, recordedFinish
	failedAttempt := progress
	failedAttempt.Outcome = OutcomeFailed
	view := func(state State) Job {
		return Job{ID: testID, State: state, Range: q1, CreatedAt: testCreated, MaxRetry: testPolicy.MaxRetry, inQueue: true, Client: Anonymous}
	}
	viewWith := func(state State, p Progress) Job { v := view(state); v.Progress = p; return v }
	// finished is the view of a job that finished at at, readable until expires.
	finished := func(state State, p Progress, at, expires time.Time) Job {
		v := viewWith(state, p)
		v.FinishedAt, v.ExpiresAt = at, expires
		return v
	}
	const retention = 6 * time.Hour // the policy's, for failed jobs; completed ones keep their task's own
	endedAt := testNow.Add(-time.Minute)
	ended := func(p Progress, o Outcome) Progress { p.Outcome, p.FinishedAt = o, endedAt; return p }
	tests := []struct {
		name string
		info *asynq.TaskInfo
		want Job
	}{
		{name: "pending", info: taskInfo(asynq.TaskStatePending), want: view(Pending)},
		// Put back in the queue by a worker's shutdown: the interrupted attempt is not under way.
		{name: "pending-requeued", info: taskInfo(asynq.TaskStatePending, jobstest.WithProgress(progress)), want: view(Pending)},
		{name: "scheduled", info: taskInfo(asynq.TaskStateScheduled), want: view(Pending)},
		{name: "aggregating", info: taskInfo(asynq.TaskStateAggregating), want: view(Pending)},
		{
			name: "retry",
			info: taskInfo(asynq.TaskStateRetry, jobstest.WithProgress(progress), func(i *asynq.TaskInfo) { i.LastErr = "boom" }),
			want: viewWith(Pending, progress),
		},
		{
			name: "active",
			info: taskInfo(asynq.TaskStateActive, jobstest.WithProgress(progress)),
			want: viewWith(Running, progress),
		},
		// Taken by a worker whose attempt has not recorded its start yet: nothing is under way yet.
		{name: "active-not-started", info: taskInfo(asynq.TaskStateActive), want: view(Pending)},
		{
			// A retry taken by a worker, still showing the attempt before's progress.
			name: "active-retry-not-started",
			info: taskInfo(asynq.TaskStateActive, jobstest.WithProgress(progress), func(i *asynq.TaskInfo) { i.Retried = 2 }),
			want: view(Pending),
		},
		{
			name: "active-retry-started",
			info: taskInfo(asynq.TaskStateActive, jobstest.WithProgress(progress), func(i *asynq.TaskInfo) { i.Retried = 1 }),
			want: viewWith(Running, progress),
		},
		{
			// The last attempt was canceled and said so; asynq has not completed the task yet.
			name: "active-ended-canceled",
			info: taskInfo(asynq.TaskStateActive, jobstest.WithProgress(ended(progress, OutcomeCanceled))),
			want: finished(Canceled, ended(progress, OutcomeCanceled), endedAt, store.ReadableUntil(endedAt, testPolicy.Retention)),
		},
		{
			name: "active-ended-failed",
			info: taskInfo(asynq.TaskStateActive, jobstest.WithProgress(ended(progress, OutcomeFailed))),
			want: finished(Failed, ended(progress, OutcomeFailed), endedAt, endedAt.Add(retention)),
		},
		{
			// A done end may yet be rewritten canceled (a cancel that came first): running until asynq completes it.
			name: "active-ended-done",
			info: taskInfo(asynq.TaskStateActive, jobstest.WithProgress(ended(progress, ""))),
			want: viewWith(Running, ended(progress, "")),
		},
		{
			// A failed attempt that will be retried has no FinishedAt: still running until asynq retries it.
			name: "active-attempt-failed-not-last",
			info: taskInfo(asynq.TaskStateActive, jobstest.WithProgress(failedAttempt)),
			want: viewWith(Running, failedAttempt),
		},
		{
			name: "completed",
			info: taskInfo(asynq.TaskStateCompleted, jobstest.WithProgress(progress), func(i *asynq.TaskInfo) { i.CompletedAt = completedAt }),
			want: finished(Done, progress, completedAt, completedAt.Add(testPolicy.Retention)),
		},
		{
			name: "archived",
			info: taskInfo(asynq.TaskStateArchived, jobstest.WithProgress(progress), func(i *asynq.TaskInfo) { i.LastErr, i.LastFailedAt = "boom", failedAt }),
			want: finished(Failed, progress, failedAt, failedAt.Add(retention)),
		},
		{
			// The worker's record of the finish, not asynq's whole seconds, as for a completed task.
			name: "archived-with-recorded-finish",
			info: taskInfo(asynq.TaskStateArchived, jobstest.WithProgress(finishedProgress), func(i *asynq.TaskInfo) { i.LastErr, i.LastFailedAt = "boom", failedAt }),
			want: finished(Failed, finishedProgress, recordedFinish, recordedFinish.Add(retention)),
		},
		{
			name: "no-created-at-header",
			info: taskInfo(asynq.TaskStatePending, func(i *asynq.TaskInfo) { i.Headers = nil }),
			want: func() Job { v := view(Pending); v.CreatedAt = time.Time{}; return v }(),
		},
		{
			name: "unreadable-progress-is-none",
			info: taskInfo(asynq.TaskStateActive, func(i *asynq.TaskInfo) { i.Result = []byte("garbage") }),
			want: view(Running),
		},
		{
			// The worker archives such a job; its status must say failed, not fail to answer.
			name: "bad-payload-archived",
			info: taskInfo(asynq.TaskStateArchived, func(i *asynq.TaskInfo) {
				i.Payload, i.LastErr, i.LastFailedAt = []byte("nope"), "report payload: bad", failedAt
				i.Result = []byte(`{"outcome":"unreadable"}`)
			}),
			want: func() Job {
				v := finished(Failed, Progress{Outcome: OutcomeUnreadable}, failedAt, failedAt.Add(retention))
				v.Range = report.DateRange{}
				return v
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := fromTask(tt.info, retention)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(Job{})); diff != "" {
				t.Errorf("fromTask (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExpired(t *testing.T) {
	t.Parallel()
	at := testNow
	tests := []struct {
		name string
		v    Job
		want bool
	}{
		{name: "never-expires-unfinished", v: Job{State: Running}, want: false},
		{name: "before", v: Job{ExpiresAt: at.Add(time.Second)}, want: false},
		{name: "at", v: Job{ExpiresAt: at}, want: true},
		{name: "after", v: Job{ExpiresAt: at.Add(-time.Second)}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.v.expired(at); got != tt.want {
				t.Errorf("expired = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFailure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		outcome    Outcome
		lastErr    string // asynq's last error, which must not leak or decide anything
		wantType   string
		wantDetail string
	}{
		{name: "timeout", outcome: OutcomeTimedOut, lastErr: "summarize 2026-01-01..2026-03-31: day 2026-02-11: context deadline exceeded",
			wantType: "/problems/report-timeout", wantDetail: "time limit of 10m;"},
		{name: "other", outcome: OutcomeFailed, lastErr: "save report of job x: dial tcp 10.0.0.7:6379: connection refused",
			wantType: "/problems/report-failed", wantDetail: "4 attempts"},
		{name: "lease-expired", lastErr: "asynq: task lease expired",
			wantType: "/problems/report-failed", wantDetail: "4 attempts"},
		{name: "unreadable", outcome: OutcomeUnreadable, lastErr: `decode report payload: invalid character 'x' looking for beginning of value: skip retry for the task`,
			wantType: "/problems/report-unreadable", wantDetail: "submit it again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			info := taskInfo(asynq.TaskStateArchived, func(i *asynq.TaskInfo) {
				i.LastErr, i.MaxRetry, i.Result = tt.lastErr, 3, []byte(`{"outcome":"`+tt.outcome+`"}`)
			})
			pt, detail := fromTask(info, time.Hour).Failure(10 * time.Minute)
			if "/problems/"+pt.Slug != tt.wantType || pt.Title == "" || pt.Status != 500 && pt.Status != 422 {
				t.Errorf("problem type = %+v, want %s with a title and status", pt, tt.wantType)
			}
			if !strings.Contains(detail, tt.wantDetail) {
				t.Errorf("detail = %q, want it to mention %q", detail, tt.wantDetail)
			}
			if strings.Contains(detail, "10.0.0.7") || strings.Contains(detail, "asynq") || strings.Contains(detail, "invalid character") {
				t.Errorf("detail leaks the task's last error: %q", detail)
			}
		})
	}
}

var (
	testNow     = time.Date(2026, 4, 2, 10, 0, 0, 0, time.UTC)
	testCreated = testNow.Add(-time.Minute)
	testID      = "0f8fad5b-d9cb-469f-a165-70867728950e"
	testPolicy  = Policy{Retention: 24 * time.Hour, Tombstone: 720 * time.Hour, JobTimeout: 10 * time.Minute, MaxRetry: 3}
)

// taskInfo is the TaskInfo of job testID over Q1 2026 in state, changed by mods.
func taskInfo(state asynq.TaskState, mods ...func(*asynq.TaskInfo)) *asynq.TaskInfo {
	return jobstest.TaskInfo(testID, testCreated, state, testPolicy.MaxRetry, testPolicy.JobTimeout, testPolicy.Retention, mods...)
}

// markerStore answers whether a job was asked to stop from its set of canceled ids.
type markerStore struct {
	Store
	canceled map[string]bool
}

func (m markerStore) CancelRequested(_ context.Context, id string) (bool, error) {
	return m.canceled[id], nil
}

// oneTask is an Inspector that holds one task.
type oneTask struct {
	Inspector
	info *asynq.TaskInfo
}

func (o oneTask) GetTaskInfo(string, string) (*asynq.TaskInfo, error) { c := *o.info; return &c, nil }

// TestGetCanceledWithoutOutcome: an archived job whose attempt could not record how it ended (asynq's
// own cancel reached it first, or Redis failed) reads canceled when its cancel marker is set, and
// failed otherwise; the status never looks at asynq's last error.
func TestGetCanceledWithoutOutcome(t *testing.T) {
	t.Parallel()
	failedAt := testNow.Add(-time.Minute).Truncate(time.Second)
	for _, tc := range []struct {
		name   string
		marker bool
		want   State
	}{{"marker-set", true, Canceled}, {"no-marker", false, Failed}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			info := taskInfo(asynq.TaskStateArchived, jobstest.WithProgress(Progress{Share: 0.3, Attempt: 1, StartedAt: failedAt}),
				func(i *asynq.TaskInfo) { i.LastErr, i.LastFailedAt = "job canceled: skip retry for the task", failedAt })
			s := New(Deps{Inspector: oneTask{info: info}, Store: markerStore{canceled: map[string]bool{testID: tc.marker}},
				Policy: testPolicy, Now: func() time.Time { return testNow }})
			j, err := s.Get(context.Background(), Anonymous, testID)
			if err != nil || j.State != tc.want {
				t.Errorf("Get = %v, %v; want %s", j.State, err, tc.want)
			}
		})
	}
}

func TestSpoken(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		24 * time.Hour: "24h", 90 * time.Minute: "1h30m", 90 * time.Second: "1m30s", time.Second: "1s",
		1500 * time.Millisecond: "1.5s", time.Hour + time.Second: "1h0m1s", 10 * time.Minute: "10m",
	} {
		if got := spoken(d); got != want {
			t.Errorf("spoken(%v) = %q, want %q", d, got, want)
		}
	}
}
