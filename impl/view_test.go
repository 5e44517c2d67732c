package impl

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/tasks"
)

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := testNow
	running := func(share float64, elapsed time.Duration) jobView {
		return jobView{state: gen.Running, progress: tasks.Progress{Share: share, StartedAt: now.Add(-elapsed), Attempt: 1}}
	}
	tests := []struct {
		name string
		v    jobView
		want int
	}{
		{name: "pending", v: jobView{state: gen.Pending}, want: 1},
		{name: "pending-with-old-progress", v: jobView{state: gen.Pending, progress: tasks.Progress{Share: 0.1, StartedAt: now.Add(-time.Minute)}}, want: 1},
		{name: "running-no-progress", v: running(0, 10*time.Second), want: 1},
		{name: "running-half-after-10s", v: running(0.5, 10*time.Second), want: 10},
		{name: "running-three-quarters-after-9s", v: running(0.75, 9*time.Second), want: 3},
		{name: "running-rounds-up", v: running(0.5, 1500*time.Millisecond), want: 2},
		{name: "running-nearly-done", v: running(0.99, 10*time.Second), want: 1},
		{name: "running-clamped-to-30", v: running(0.1, time.Minute), want: 30},
		{name: "running-all-days-done", v: running(1, time.Minute), want: 1},
		{name: "running-no-start-time", v: jobView{state: gen.Running, progress: tasks.Progress{Share: 0.5}}, want: 1},
		{name: "running-clock-skew", v: running(0.5, -5*time.Second), want: 1},
		{name: "done", v: jobView{state: gen.Done, progress: tasks.Progress{Share: 1}}, want: 1},
	}
	srv := New(Deps{Tasks: &fakeTasks{}, Now: func() time.Time { return now }})
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
	queue := func(pending, active int) func(string) (*asynq.QueueInfo, error) {
		return func(q string) (*asynq.QueueInfo, error) {
			return &asynq.QueueInfo{Queue: q, Pending: pending, Active: active}, nil
		}
	}
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
			p := &pace{}
			for i, r := range tt.runs {
				p.observe(fmt.Sprint("job-", i), r)
			}
			if got := p.pendingWait(testNow, queue(tt.pending, tt.active), tasks.Queue); got != tt.want {
				t.Errorf("pendingWait = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestPendingWaitReadsQueueAtMostOnceASecond(t *testing.T) {
	t.Parallel()
	reads := 0
	read := func(q string) (*asynq.QueueInfo, error) { reads++; return &asynq.QueueInfo{Queue: q}, nil }
	p := &pace{}
	for i := range 100 {
		p.pendingWait(testNow.Add(time.Duration(i)*20*time.Millisecond), read, tasks.Queue) // 2 s of polls
	}
	if reads != 2 {
		t.Errorf("queue read %d times in 2 s of polls, want 2", reads)
	}
}

func TestViewOf(t *testing.T) {
	t.Parallel()
	completedAt := testNow.Add(-time.Hour).Truncate(time.Second)
	failedAt := testNow.Add(-2 * time.Hour).Truncate(time.Second)
	started := testNow.Add(-3 * time.Hour)
	q1 := report.DateRange{From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC)}
	progress := tasks.Progress{Share: 0.5, DaysDone: 45, DaysTotal: 90, StartedAt: started, Attempt: 2}
	view := func(state gen.JobState) jobView {
		return jobView{id: testID.String(), state: state, rng: q1, createdAt: testCreated, maxRetry: testPolicy.MaxRetry, task: true, client: Anonymous}
	}
	const retention = 6 * time.Hour // the policy's, for failed jobs; completed ones keep their task's own
	tests := []struct {
		name string
		info *asynq.TaskInfo
		want jobView
	}{
		{name: "pending", info: reportInfo(asynq.TaskStatePending), want: view(gen.Pending)},
		{name: "scheduled", info: reportInfo(asynq.TaskStateScheduled), want: view(gen.Pending)},
		{name: "aggregating", info: reportInfo(asynq.TaskStateAggregating), want: view(gen.Pending)},
		{
			name: "retry",
			info: reportInfo(asynq.TaskStateRetry, withProgress(progress), func(i *asynq.TaskInfo) { i.LastErr = "boom" }),
			want: func() jobView { v := view(gen.Pending); v.progress, v.lastErr = progress, "boom"; return v }(),
		},
		{
			name: "active",
			info: reportInfo(asynq.TaskStateActive, withProgress(progress)),
			want: func() jobView { v := view(gen.Running); v.progress = progress; return v }(),
		},
		{
			name: "completed",
			info: reportInfo(asynq.TaskStateCompleted, withProgress(progress), func(i *asynq.TaskInfo) { i.CompletedAt = completedAt }),
			want: func() jobView {
				v := view(gen.Done)
				v.progress, v.finishedAt, v.expiresAt = progress, completedAt, completedAt.Add(testPolicy.Retention)
				return v
			}(),
		},
		{
			name: "archived",
			info: reportInfo(asynq.TaskStateArchived, withProgress(progress), func(i *asynq.TaskInfo) { i.LastErr, i.LastFailedAt = "boom", failedAt }),
			want: func() jobView {
				v := view(gen.Failed)
				v.progress, v.lastErr, v.finishedAt, v.expiresAt = progress, "boom", failedAt, failedAt.Add(retention)
				return v
			}(),
		},
		{
			name: "no-created-at-header",
			info: reportInfo(asynq.TaskStatePending, func(i *asynq.TaskInfo) { i.Headers = nil }),
			want: func() jobView { v := view(gen.Pending); v.createdAt = time.Time{}; return v }(),
		},
		{
			name: "unreadable-progress-is-none",
			info: reportInfo(asynq.TaskStateActive, func(i *asynq.TaskInfo) { i.Result = []byte("garbage") }),
			want: view(gen.Running),
		},
		{
			// The worker archives such a job; its status must say failed, not fail to answer.
			name: "bad-payload-archived",
			info: reportInfo(asynq.TaskStateArchived, func(i *asynq.TaskInfo) {
				i.Payload, i.LastErr, i.LastFailedAt = []byte("nope"), "report payload: bad", failedAt
			}),
			want: func() jobView {
				v := view(gen.Failed)
				v.rng, v.lastErr, v.finishedAt, v.expiresAt = report.DateRange{}, "report payload: bad", failedAt, failedAt.Add(retention)
				return v
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := viewOf(tt.info, retention)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(jobView{})); diff != "" {
				t.Errorf("viewOf (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExpired(t *testing.T) {
	t.Parallel()
	at := testNow
	tests := []struct {
		name string
		v    jobView
		want bool
	}{
		{name: "never-expires-unfinished", v: jobView{state: gen.Running}, want: false},
		{name: "before", v: jobView{expiresAt: at.Add(time.Second)}, want: false},
		{name: "at", v: jobView{expiresAt: at}, want: true},
		{name: "after", v: jobView{expiresAt: at.Add(-time.Second)}, want: true},
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

func TestFailureProblem(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		lastErr    string
		wantType   string
		wantDetail string
	}{
		{name: "timeout", lastErr: "summarize 2026-01-01..2026-03-31: day 2026-02-11: context deadline exceeded",
			wantType: "/problems/report-timeout", wantDetail: "10m0s"},
		{name: "other", lastErr: "save report of job x: dial tcp 10.0.0.7:6379: connection refused",
			wantType: "/problems/report-failed", wantDetail: "4 attempts"},
		{name: "lease-expired", lastErr: "asynq: task lease expired",
			wantType: "/problems/report-failed", wantDetail: "4 attempts"},
		{name: "unreadable", lastErr: `decode report payload: invalid character 'x' looking for beginning of value: skip retry for the task`,
			wantType: "/problems/report-unreadable", wantDetail: "submit it again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := failureProblem(jobView{state: gen.Failed, lastErr: tt.lastErr, maxRetry: 3}, 10*time.Minute)
			if p.Type != tt.wantType || p.Title == "" || p.Status != 500 && p.Status != 422 {
				t.Errorf("problem = %+v, want type %s with a title and status", p, tt.wantType)
			}
			if !strings.Contains(p.Detail, tt.wantDetail) {
				t.Errorf("detail = %q, want it to mention %q", p.Detail, tt.wantDetail)
			}
			if strings.Contains(p.Detail, "10.0.0.7") || strings.Contains(p.Detail, "asynq") || strings.Contains(p.Detail, "invalid character") {
				t.Errorf("detail leaks the task's last error: %q", p.Detail)
			}
		})
	}
}

func TestToJobStatusDone(t *testing.T) {
	t.Parallel()
	completedAt := testNow.Add(-time.Hour)
	v := jobView{id: testID.String(), state: gen.Done, createdAt: testCreated,
		rng:        report.DateRange{From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC)},
		progress:   tasks.Progress{Share: 1, StartedAt: testCreated, Attempt: 1},
		finishedAt: completedAt, expiresAt: completedAt.Add(24 * time.Hour)}
	got, err := toJobStatus(v, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	want := baseStatus(gen.Done)
	want.Progress = 1
	want.Links.Result = ptr("/v1/reports/" + testID.String() + "/result")
	want.StartedAt, want.Attempt = ptr(testCreated), ptr(1)
	want.FinishedAt, want.ExpiresAt = ptr(completedAt), ptr(completedAt.Add(24*time.Hour))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("toJobStatus (-want +got):\n%s", diff)
	}
	if _, err := toJobStatus(jobView{id: "not-a-uuid"}, time.Minute); err == nil {
		t.Error("toJobStatus of a view with a malformed id succeeded")
	}
}
