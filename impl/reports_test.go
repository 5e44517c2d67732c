package impl

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	openapi_types "github.com/oapi-codegen/runtime/types"
	"github.com/redis/go-redis/v9"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/httpapi"
	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/jobs/jobstest"
	"github.com/reportd/reportd/internal/problem"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/tasks"
)

var (
	// testNow is the fixture's clock; testCreated is when its jobs were accepted.
	testNow     = time.Date(2026, 4, 2, 10, 0, 0, 0, time.UTC)
	testCreated = testNow.Add(-time.Minute)
	testID      = uuid.MustParse("0f8fad5b-d9cb-469f-a165-70867728950e")
	testPolicy  = jobs.Policy{Retention: 24 * time.Hour, Tombstone: 720 * time.Hour, JobTimeout: 10 * time.Minute, MaxRetry: 3}
)

// fixture is a Server on fakes, with a fixed clock and id.
type fixture struct {
	srv   *Server
	calls *callLog
	queue *fakeQueue
	tasks *fakeTasks
	store *fakeStore
}

func newFixture() *fixture {
	calls := &callLog{}
	f := &fixture{
		calls: calls,
		queue: &fakeQueue{calls: calls},
		tasks: &fakeTasks{},
		store: &fakeStore{calls: calls},
	}
	f.srv = New(jobs.New(jobs.Deps{
		Queue: f.queue, Inspector: f.tasks, Store: f.store, Policy: testPolicy,
		Now: func() time.Time { return testNow }, NewID: func() uuid.UUID { return testID },
	}))
	return f
}

// newFixtureWith is a newFixture that holds info (if not nil) and is then changed by setup (if not nil).
func newFixtureWith(info *asynq.TaskInfo, setup func(*fixture)) *fixture {
	f := newFixture()
	if info != nil {
		f.tasks.put(info)
	}
	if setup != nil {
		setup(f)
	}
	return f
}

// reportInfo is the TaskInfo of job testID over Q1 2026 in state, changed by mods.
func reportInfo(state asynq.TaskState, mods ...func(*asynq.TaskInfo)) *asynq.TaskInfo {
	return jobstest.TaskInfo(testID.String(), testCreated, state, testPolicy.MaxRetry, testPolicy.JobTimeout, testPolicy.Retention, mods...)
}

func withPayloadRange(r string) func(*asynq.TaskInfo) {
	return func(info *asynq.TaskInfo) { info.Payload = []byte(`{"range":"` + r + `"}`) }
}

func date(y int, m time.Month, d int) openapi_types.Date {
	return openapi_types.Date{Time: time.Date(y, m, d, 0, 0, 0, 0, time.UTC)}
}

// baseStatus is the JobStatus of job testID over Q1 2026 in state, with nothing optional set.
func baseStatus(state gen.JobState) gen.JobStatus {
	return gen.JobStatus{
		Id:        testID,
		Status:    state,
		Range:     gen.DateRange{From: date(2026, 1, 1), To: date(2026, 3, 31)},
		CreatedAt: testCreated,
		Links:     gen.JobLinks{Self: "/v1/reports/" + testID.String()},
	}
}

// checkKind fails t unless err is an *problem.Error of kind want; for problem.KindInternal, unless err is an error
// outside the vocabulary (or of kind internal).
func checkKind(t *testing.T, err error, want problem.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want an error of kind %d", want)
	}
	var e *problem.Error
	if !errors.As(err, &e) {
		if want != problem.KindInternal {
			t.Fatalf("err = %v (%T), want an *problem.Error of kind %d", err, err, want)
		}
		return
	}
	if e.Kind != want {
		t.Fatalf("err kind = %d (%v), want %d", e.Kind, err, want)
	}
}

func TestCreateReport(t *testing.T) {
	t.Parallel()
	wantHeaders := map[string]string{tasks.HeaderCreatedAt: testNow.Format(time.RFC3339Nano)}
	accepted := func(from, to openapi_types.Date) gen.CreateReportResponseObject {
		body := baseStatus(gen.Pending)
		body.CreatedAt = testNow
		body.Range = gen.DateRange{From: from, To: to}
		return gen.CreateReport202JSONResponse{
			Body:    body,
			Headers: gen.CreateReport202ResponseHeaders{Location: "/v1/reports/" + testID.String(), RetryAfter: 1},
		}
	}
	type createCase struct {
		name         string
		rng          string
		setup        func(*fixture)
		want         gen.CreateReportResponseObject
		wantKind     problem.Kind
		wantEnqueued []enqueuedTask
		wantCalls    []string
	}
	// created is the case of a range accepted as from..to: a 202, and its task enqueued once admitted.
	created := func(name, rng string, from, to openapi_types.Date) createCase {
		task := enqueuedTask{
			Type:    tasks.TypeReport,
			Payload: `{"range":"` + from.String() + ".." + to.String() + `","client":"anonymous"}`,
			Headers: wantHeaders,
			Options: map[asynq.OptionType]any{
				asynq.TaskIDOpt:    testID.String(),
				asynq.QueueOpt:     store.ReportQueue,
				asynq.MaxRetryOpt:  testPolicy.MaxRetry,
				asynq.TimeoutOpt:   testPolicy.JobTimeout,
				asynq.RetentionOpt: testPolicy.Retention,
			},
		}
		return createCase{name: name, rng: rng, want: accepted(from, to), wantEnqueued: []enqueuedTask{task}, wantCalls: []string{"admit", "enqueue"}}
	}
	tests := []createCase{
		created("create-202-quarter", "2026-Q1", date(2026, 1, 1), date(2026, 3, 31)),
		created("create-202-leap-month", "2024-02", date(2024, 2, 1), date(2024, 2, 29)),
		created("create-202-span", "2025-12-31..2026-01-02", date(2025, 12, 31), date(2026, 1, 2)),
		{name: "create-400-quarter-5", rng: "2026-Q5", wantKind: problem.KindInvalid},
		{name: "create-400-words", rng: "last quarter", wantKind: problem.KindInvalid},
		{name: "create-400-empty", rng: "", wantKind: problem.KindInvalid},
		created("create-202-day", "2025-06-30", date(2025, 6, 30), date(2025, 6, 30)),
		created("create-202-lower-case-quarter", "2026-q1", date(2026, 1, 1), date(2026, 3, 31)),
		{name: "create-400-feb-30", rng: "2026-02-30..2026-03-01", wantKind: problem.KindInvalid},
		{name: "create-400-day-feb-30", rng: "2026-02-30", wantKind: problem.KindInvalid},
		{name: "create-422-starts-after-today", rng: testNow.AddDate(0, 0, 1).Format(time.DateOnly), wantKind: problem.KindUnprocessable},
		{name: "create-422-year-9999", rng: "9999-Q4", wantKind: problem.KindUnprocessable},
		{name: "create-422-reversed", rng: "2026-03-01..2026-02-01", wantKind: problem.KindUnprocessable},
		{name: "create-422-too-long", rng: "2024-01-01..2025-01-01", wantKind: problem.KindUnprocessable},
		{
			name: "create-503-enqueue-fails", rng: "2026-Q1",
			setup:     func(f *fixture) { f.queue.err = errors.New("dial tcp 10.0.0.7:6379: connection refused") },
			wantKind:  problem.KindUnavailable,
			wantCalls: []string{"admit", "enqueue"},
		},
		{
			name: "create-503-tombstone-fails", rng: "2026-Q1",
			setup:     func(f *fixture) { f.store.admitErr = errors.New("dial tcp 10.0.0.7:6379: i/o timeout") },
			wantKind:  problem.KindUnavailable,
			wantCalls: []string{"admit"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture()
			if tt.setup != nil {
				tt.setup(f)
			}
			got, err := f.srv.CreateReport(context.Background(), gen.CreateReportRequestObject{Body: &gen.ReportRequest{Range: tt.rng}})
			if tt.want != nil {
				if err != nil {
					t.Fatalf("CreateReport: %v", err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("response (-want +got):\n%s", diff)
				}
			} else {
				checkKind(t, err, tt.wantKind)
				if got != nil {
					t.Errorf("response = %#v alongside an error", got)
				}
			}
			if diff := cmp.Diff(tt.wantEnqueued, f.queue.enqueued(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("enqueued (-want +got):\n%s", diff)
			}
			// The admission comes first: a job in the queue is always in its client's index and count.
			if diff := cmp.Diff(tt.wantCalls, f.calls.list(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("calls in order (-want +got):\n%s", diff)
			}
			for _, a := range f.store.admissions() {
				if a.ID != testID.String() {
					t.Errorf("admission of %q, want %q", a.ID, testID)
				}
				// The index entry outlives everything the job can live.
				if min := testPolicy.JobTimeout*time.Duration(testPolicy.MaxRetry+1) + testPolicy.Retention; a.Keep < min {
					t.Errorf("index entry kept %s, want at least JobTimeout*(MaxRetry+1)+Retention = %s", a.Keep, min)
				}
			}
		})
	}
}

// TestCreateReportRangeDetail checks that a refused range is named by its JSON pointer.
func TestCreateReportRangeDetail(t *testing.T) {
	t.Parallel()
	for _, rng := range []string{"2026-Q5", "2026-02-30..2026-03-01"} {
		_, err := newFixture().srv.CreateReport(context.Background(), gen.CreateReportRequestObject{Body: &gen.ReportRequest{Range: rng}})
		var e *problem.Error
		if !errors.As(err, &e) || !strings.HasPrefix(e.Detail, "/range ") || !strings.Contains(e.Detail, rng) {
			t.Errorf("CreateReport(%q) error = %#v, want a detail starting with /range that quotes the range", rng, err)
		}
	}
}

// TestCreateReportWithAsynq runs CreateReport on asynq's real client and inspector, so that the options
// the fake queue reads are checked against what asynq stores.
func TestCreateReportWithAsynq(t *testing.T) {
	t.Parallel()
	b := redistest.Embedded(t)
	rdb := redis.NewClient(&redis.Options{Addr: b.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	client := asynq.NewClientFromRedisClient(rdb)
	inspector := asynq.NewInspectorFromRedisClient(rdb)
	st := &fakeStore{}
	s := New(jobs.New(jobs.Deps{Queue: client, Inspector: inspector, Store: st, Policy: testPolicy,
		Now: func() time.Time { return testNow }, NewID: func() uuid.UUID { return testID }}))

	if _, err := s.CreateReport(context.Background(), gen.CreateReportRequestObject{Body: &gen.ReportRequest{Range: "2026-Q1"}}); err != nil {
		t.Fatalf("CreateReport: %v", err)
	}
	info, err := inspector.GetTaskInfo(store.ReportQueue, testID.String())
	if err != nil {
		t.Fatalf("GetTaskInfo: %v", err)
	}
	type stored struct {
		Type, Payload, CreatedAt string
		State                    asynq.TaskState
		MaxRetry                 int
		Timeout, Retention       time.Duration
	}
	want := stored{
		Type: tasks.TypeReport, Payload: `{"range":"2026-01-01..2026-03-31","client":"anonymous"}`, CreatedAt: testNow.Format(time.RFC3339Nano),
		State: asynq.TaskStatePending, MaxRetry: testPolicy.MaxRetry, Timeout: testPolicy.JobTimeout, Retention: testPolicy.Retention,
	}
	got := stored{
		Type: info.Type, Payload: string(info.Payload), CreatedAt: info.Headers[tasks.HeaderCreatedAt],
		State: info.State, MaxRetry: info.MaxRetry, Timeout: info.Timeout, Retention: info.Retention,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("task in Redis (-want +got):\n%s", diff)
	}

	status, err := s.GetReportStatus(context.Background(), gen.GetReportStatusRequestObject{Id: testID})
	if err != nil {
		t.Fatalf("GetReportStatus: %v", err)
	}
	wantStatus := gen.GetReportStatus200JSONResponse{
		Body:    baseStatus(gen.Pending),
		Headers: gen.GetReportStatus200ResponseHeaders{CacheControl: ptr("no-store"), RetryAfter: ptr(1)},
	}
	wantStatus.Body.CreatedAt = testNow
	if diff := cmp.Diff(gen.GetReportStatusResponseObject(wantStatus), status); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}

func TestGetReportStatus(t *testing.T) {
	t.Parallel()
	started := testNow.Add(-10 * time.Second)
	failedAt := testNow.Add(-time.Hour).Truncate(time.Second)
	ok := func(body gen.JobStatus, retryAfter *int) gen.GetReportStatusResponseObject {
		return gen.GetReportStatus200JSONResponse{
			Body:    body,
			Headers: gen.GetReportStatus200ResponseHeaders{CacheControl: ptr("no-store"), RetryAfter: retryAfter},
		}
	}
	running := func(share float64, attempt int) gen.JobStatus {
		s := baseStatus(gen.Running)
		s.Progress, s.StartedAt, s.Attempt = share, ptr(started), ptr(attempt)
		return s
	}
	failed := func(problemType string) gen.JobStatus {
		s := baseStatus(gen.Failed)
		s.Progress, s.StartedAt, s.Attempt = 0.25, ptr(started), ptr(4)
		s.FinishedAt, s.ExpiresAt = ptr(failedAt), ptr(failedAt.Add(testPolicy.Retention))
		s.Error = &gen.Problem{Type: problemType, Status: http.StatusInternalServerError}
		return s
	}
	retried := func() gen.JobStatus {
		s := baseStatus(gen.Pending)
		s.StartedAt, s.Attempt = ptr(started), ptr(1)
		return s
	}
	// archived is a job whose last attempt ended with outcome o at at, asynq recording lastErr, which must
	// neither leak nor decide anything.
	archived := func(lastErr string, o jobs.Outcome, at time.Time) func(*asynq.TaskInfo) {
		return func(info *asynq.TaskInfo) {
			info.LastErr, info.LastFailedAt, info.Retried = lastErr, at, testPolicy.MaxRetry
			jobstest.WithProgress(jobs.Progress{Share: 0.25, DaysDone: 22, DaysTotal: 90, StartedAt: started, Attempt: 4, Outcome: o})(info)
		}
	}
	completed := func(at time.Time) func(*asynq.TaskInfo) {
		return func(info *asynq.TaskInfo) {
			info.CompletedAt = at
			jobstest.WithProgress(jobs.Progress{Share: 1, DaysDone: 90, DaysTotal: 90, StartedAt: started, Attempt: 1})(info)
		}
	}
	active := func(share float64) func(*asynq.TaskInfo) {
		return jobstest.WithProgress(jobs.Progress{Share: share, StartedAt: started, Attempt: 1})
	}
	tests := []struct {
		name     string
		info     *asynq.TaskInfo // the job's task, if asynq has it
		setup    func(*fixture)
		want     gen.GetReportStatusResponseObject
		wantKind problem.Kind
	}{
		{name: "status-200-pending", info: reportInfo(asynq.TaskStatePending), want: ok(baseStatus(gen.Pending), ptr(1))},
		{name: "status-200-scheduled", info: reportInfo(asynq.TaskStateScheduled), want: ok(baseStatus(gen.Pending), ptr(1))},
		{
			name: "status-200-retry-is-pending",
			info: reportInfo(asynq.TaskStateRetry, jobstest.WithProgress(jobs.Progress{Share: 0.5, StartedAt: started, Attempt: 1}),
				func(i *asynq.TaskInfo) { i.LastErr, i.Retried = "boom", 1 }),
			want: ok(retried(), ptr(1)),
		},
		{name: "status-200-running-half", info: reportInfo(asynq.TaskStateActive, active(0.5)), want: ok(running(0.5, 1), ptr(10))},
		{name: "status-200-running-quarter", info: reportInfo(asynq.TaskStateActive, active(0.25)), want: ok(running(0.25, 1), ptr(30))},
		{name: "status-200-running-clamped-high", info: reportInfo(asynq.TaskStateActive, active(0.01)), want: ok(running(0.01, 1), ptr(30))},
		{name: "status-200-running-clamped-low", info: reportInfo(asynq.TaskStateActive, active(0.999)), want: ok(running(0.999, 1), ptr(1))},
		{name: "status-200-running-no-progress-yet", info: reportInfo(asynq.TaskStateActive, active(0)), want: ok(running(0, 1), ptr(1))},
		// Taken from the queue by a worker whose attempt has not recorded its start: not running yet.
		{name: "status-200-taken-not-started-is-pending", info: reportInfo(asynq.TaskStateActive), want: ok(baseStatus(gen.Pending), ptr(1))},
		{
			name: "status-303-completed",
			info: reportInfo(asynq.TaskStateCompleted, completed(testNow.Add(-time.Hour))),
			want: gen.GetReportStatus303Response{Headers: gen.GetReportStatus303ResponseHeaders{
				Location: "/v1/reports/" + testID.String() + "/result", CacheControl: ptr("no-store"),
				Expires: httpDate(testNow.Add(-time.Hour).Add(testPolicy.Retention)),
			}},
		},
		{name: "status-410-completed-past-retention", info: reportInfo(asynq.TaskStateCompleted, completed(testNow.Add(-25*time.Hour))), wantKind: problem.KindGone},
		{name: "status-410-completed-at-retention", info: reportInfo(asynq.TaskStateCompleted, completed(testNow.Add(-24*time.Hour))), wantKind: problem.KindGone},
		{
			name: "status-200-failed-timeout",
			info: reportInfo(asynq.TaskStateArchived, archived("summarize 2026-01-01..2026-03-31: day 2026-01-23: context deadline exceeded", jobs.OutcomeTimedOut, failedAt)),
			want: ok(failed("/problems/report-timeout"), nil),
		},
		{
			name: "status-200-failed-other",
			info: reportInfo(asynq.TaskStateArchived, archived("save report of job x: dial tcp 10.0.0.7:6379: connection refused", jobs.OutcomeFailed, failedAt)),
			want: ok(failed("/problems/report-failed"), nil),
		},
		{name: "status-410-failed-past-retention", info: reportInfo(asynq.TaskStateArchived, archived("boom", jobs.OutcomeFailed, testNow.Add(-25*time.Hour))), wantKind: problem.KindGone},
		{name: "status-410-unknown-with-tombstone", setup: func(f *fixture) { f.store.tombstones = map[string]bool{testID.String(): true} }, wantKind: problem.KindGone},
		{name: "status-404-unknown", wantKind: problem.KindNotFound},
		{name: "status-404-fresh-redis", setup: func(f *fixture) { f.tasks.noQueue = true }, wantKind: problem.KindNotFound},
		{name: "status-503-inspector-fails", setup: func(f *fixture) { f.tasks.err = errors.New("asynq: dial tcp: i/o timeout") }, wantKind: problem.KindUnavailable},
		{name: "status-503-tombstone-read-fails", setup: func(f *fixture) { f.store.existsErr = errors.New("i/o timeout") }, wantKind: problem.KindUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixtureWith(tt.info, tt.setup)
			got, err := f.srv.GetReportStatus(context.Background(), gen.GetReportStatusRequestObject{Id: testID})
			if tt.want == nil {
				checkKind(t, err, tt.wantKind)
				return
			}
			if err != nil {
				t.Fatalf("GetReportStatus: %v", err)
			}
			// A failed job's problem is checked for its type and status here; its prose in
			// TestFailureProblem.
			opts := cmpopts.IgnoreFields(gen.Problem{}, "Title", "Detail")
			if diff := cmp.Diff(tt.want, got, opts); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
			if tt.info != nil && tt.info.LastErr != "" {
				b, _ := json.Marshal(got)
				if strings.Contains(string(b), "10.0.0.7") || strings.Contains(string(b), tt.info.LastErr) {
					t.Errorf("response leaks the task's last error %q: %s", tt.info.LastErr, b)
				}
			}
		})
	}
}

// TestGetReportStatusUnreadablePayload: a job whose stored request this version cannot read (a task
// enqueued by another version, whose handler gave up with SkipRetry) failed for good. Its status
// should say so with the report-unreadable problem that the worker recorded for it, not a 500.
func TestGetReportStatusUnreadablePayload(t *testing.T) {
	t.Parallel()
	f := newFixture()
	f.tasks.put(reportInfo(asynq.TaskStateArchived, func(i *asynq.TaskInfo) {
		i.Payload = []byte(`{"from":"2026-01-01","to":"2026-03-31"}`)
		i.LastErr = `report payload: range "": empty; want YYYY-Qn, YYYY-MM or YYYY-MM-DD..YYYY-MM-DD: range syntax: skip retry for the task`
		i.LastFailedAt = testNow.Add(-time.Minute).Truncate(time.Second)
		i.Result = []byte(`{"outcome":"unreadable"}`)
	}))
	got, err := f.srv.GetReportStatus(context.Background(), gen.GetReportStatusRequestObject{Id: testID})
	if err != nil {
		p, status := problem.For(err, "")
		t.Fatalf("GetReportStatus of a failed job with an unreadable payload = %d %s (%v), want 200 failed with a /problems/report-unreadable error", status, p.Type, err)
	}
	body, isOK := got.(gen.GetReportStatus200JSONResponse)
	if !isOK || body.Body.Status != gen.Failed || body.Body.Error == nil || body.Body.Error.Type != "/problems/report-unreadable" {
		t.Errorf("GetReportStatus = %#v, want 200 failed with a /problems/report-unreadable error", got)
	}
}

// sampleReport is a finished report of job testID over two days.
func sampleReport() report.Report {
	day := func(d string, o, u, r int64) report.DayTotal {
		return report.DayTotal{Date: d, Totals: report.Totals{Orders: o, Units: u, RevenueCents: r}}
	}
	return report.Report{
		ID:           testID.String(),
		Range:        report.ReportRange{From: "2026-01-01", To: "2026-01-02"},
		GeneratedAt:  testNow.Add(-time.Hour),
		Orders:       3,
		Units:        5,
		RevenueCents: 7000,
		ByRegion: []report.RegionTotal{
			{Region: "emea-north", Totals: report.Totals{Orders: 2, Units: 4, RevenueCents: 5000}},
			{Region: "amer-east", Totals: report.Totals{Orders: 1, Units: 1, RevenueCents: 2000}},
		},
		ByProduct: []report.ProductTotal{{Product: "Desk Lamp", Totals: report.Totals{Orders: 3, Units: 5, RevenueCents: 7000}}},
		ByDay:     []report.DayTotal{day("2026-01-01", 2, 3, 4000), day("2026-01-02", 1, 2, 3000)},
	}
}

func TestGetReportResult(t *testing.T) {
	t.Parallel()
	rep, err := json.Marshal(sampleReport())
	if err != nil {
		t.Fatal(err)
	}
	wantJSON := gen.GetReportResult200JSONResponse{Body: gen.Report{
		Id:           testID,
		Range:        gen.DateRange{From: date(2026, 1, 1), To: date(2026, 1, 2)},
		GeneratedAt:  testNow.Add(-time.Hour),
		Orders:       3,
		Units:        5,
		RevenueCents: 7000,
		ByRegion: []gen.RegionTotals{
			{Region: "emea-north", Orders: 2, Units: 4, RevenueCents: 5000},
			{Region: "amer-east", Orders: 1, Units: 1, RevenueCents: 2000},
		},
		ByProduct: []gen.ProductTotals{{Product: "Desk Lamp", Orders: 3, Units: 5, RevenueCents: 7000}},
		ByDay: []gen.DayTotals{
			{Date: date(2026, 1, 1), Orders: 2, Units: 3, RevenueCents: 4000},
			{Date: date(2026, 1, 2), Orders: 1, Units: 2, RevenueCents: 3000},
		},
	}}
	const wantCSV = "date,orders,units,revenue_cents\n2026-01-01,2,3,4000\n2026-01-02,1,2,3000\n"
	const wantDisposition = `attachment; filename="report-2026-01-01_2026-01-02.csv"`

	done := reportInfo(asynq.TaskStateCompleted, withPayloadRange("2026-01-01..2026-01-02"),
		func(i *asynq.TaskInfo) { i.CompletedAt = testNow.Add(-time.Hour) })
	stored := func(f *fixture) { f.store.reports = map[string][]byte{testID.String(): rep} }

	tests := []struct {
		name       string
		accept     string
		info       *asynq.TaskInfo
		setup      func(*fixture)
		want       gen.GetReportResultResponseObject // a JSON answer
		wantCSV    bool
		wantKind   problem.Kind
		wantDetail string // a substring of the error's detail
	}{
		{name: "result-200-json-no-accept", info: done, setup: stored, want: wantJSON},
		{name: "result-200-json", accept: "application/json", info: done, setup: stored, want: wantJSON},
		{name: "result-200-json-any", accept: "*/*", info: done, setup: stored, want: wantJSON},
		{name: "result-200-csv", accept: "text/csv", info: done, setup: stored, wantCSV: true},
		{name: "result-200-csv-preferred", accept: "application/json;q=0.5, text/csv", info: done, setup: stored, wantCSV: true},
		{name: "result-406-png", accept: "image/png", info: done, setup: stored, wantKind: problem.KindNotAcceptable},
		// The id is looked up first: an unknown job is 404 whatever the Accept header says.
		{name: "result-404-unknown-wins-over-406", accept: "image/png", wantKind: problem.KindNotFound},
		{name: "result-409-pending", info: reportInfo(asynq.TaskStatePending), wantKind: problem.KindNotDone, wantDetail: "pending"},
		{name: "result-409-running", info: reportInfo(asynq.TaskStateActive, jobstest.WithProgress(jobs.Progress{StartedAt: testNow, Attempt: 1})),
			wantKind: problem.KindNotDone, wantDetail: "running"},
		{
			name:     "result-409-failed",
			info:     reportInfo(asynq.TaskStateArchived, func(i *asynq.TaskInfo) { i.LastErr, i.LastFailedAt = "boom", testNow.Add(-time.Hour) }),
			wantKind: problem.KindNotDone, wantDetail: "failed, so it has no report and never will",
		},
		{
			// A canceled job is never done: the answer must not send the client polling for a 303.
			name: "result-409-canceled",
			info: reportInfo(asynq.TaskStateArchived, func(i *asynq.TaskInfo) {
				i.LastFailedAt, i.Result = testNow.Add(-time.Hour), []byte(`{"outcome":"canceled"}`)
			}),
			wantKind: problem.KindNotDone, wantDetail: "canceled, so it has no report and never will",
		},
		{name: "result-410-report-missing", info: done, wantKind: problem.KindGone},
		{
			name: "result-410-expired", setup: stored,
			info:     reportInfo(asynq.TaskStateCompleted, func(i *asynq.TaskInfo) { i.CompletedAt = testNow.Add(-25 * time.Hour) }),
			wantKind: problem.KindGone,
		},
		{name: "result-410-tombstone", setup: func(f *fixture) { f.store.tombstones = map[string]bool{testID.String(): true} }, wantKind: problem.KindGone},
		{name: "result-404-unknown", wantKind: problem.KindNotFound},
		{name: "result-503-report-read-fails", info: done, setup: func(f *fixture) { f.store.reportErr = errors.New("i/o timeout") }, wantKind: problem.KindUnavailable},
		{
			name: "result-500-corrupt-report", info: done,
			setup:    func(f *fixture) { f.store.reports = map[string][]byte{testID.String(): []byte("{not json")} },
			wantKind: problem.KindInternal,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixtureWith(tt.info, tt.setup)
			ctx := httpapi.WithAccept(context.Background(), tt.accept)
			got, err := f.srv.GetReportResult(ctx, gen.GetReportResultRequestObject{Id: testID})
			switch {
			case tt.want != nil:
				if err != nil {
					t.Fatalf("GetReportResult: %v", err)
				}
				// The cache headers are checked in TestResultCaching; the body is compared as the
				// client reads it.
				want := tt.want.(gen.GetReportResult200JSONResponse)
				if diff := cmp.Diff(want.Body, reportBody(t, got)); diff != "" {
					t.Errorf("report (-want +got):\n%s", diff)
				}
			case tt.wantCSV:
				if err != nil {
					t.Fatalf("GetReportResult: %v", err)
				}
				csv, isCSV := got.(gen.GetReportResult200TextcsvResponse)
				if !isCSV {
					t.Fatalf("response = %T, want GetReportResult200TextcsvResponse", got)
				}
				body, err := io.ReadAll(csv.Body)
				if err != nil {
					t.Fatal(err)
				}
				type answer struct {
					Body, Disposition string
					Length            int64
				}
				want := answer{Body: wantCSV, Disposition: wantDisposition, Length: int64(len(wantCSV))}
				gotA := answer{Body: string(body), Length: csv.ContentLength}
				if csv.Headers.ContentDisposition != nil {
					gotA.Disposition = *csv.Headers.ContentDisposition
				}
				if diff := cmp.Diff(want, gotA); diff != "" {
					t.Errorf("CSV answer (-want +got):\n%s", diff)
				}
			default:
				checkKind(t, err, tt.wantKind)
				var e *problem.Error
				if tt.wantDetail != "" && (!errors.As(err, &e) || !strings.Contains(e.Detail, tt.wantDetail)) {
					t.Errorf("error %v: detail does not name %q", err, tt.wantDetail)
				}
			}
		})
	}
}

// reportBody is the Report a JSON answer of GetReportResult sends.
func reportBody(t *testing.T, res gen.GetReportResultResponseObject) gen.Report {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := res.VisitGetReportResultResponse(rec); err != nil {
		t.Fatalf("write %T: %v", res, err)
	}
	if ct := rec.Header().Get("Content-Type"); rec.Code != http.StatusOK || ct != "application/json" {
		t.Fatalf("answer %d %s, want 200 application/json", rec.Code, ct)
	}
	var rep gen.Report
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	return rep
}
