package impl_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/testkit"
	"github.com/reportd/reportd/tasks"
)

// TestFailedJob makes jobs fail for real in the worker: the status says failed, with an error problem
// that names the cause without leaking internals, and no Retry-After; the result is a 409; the failed
// status expires at its expires_at.
func TestFailedJob(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		policy      jobs.Policy
		ledger      report.Ledger
		rng         string
		want        gen.Problem
		detailHas   string
		attempts    int
		seePending  bool // the first attempt's failure is retried: the job reads pending in between
		detailLacks string
	}{
		{
			name:   "failed-timeout",
			policy: jobs.Policy{JobTimeout: time.Second, MaxRetry: 0, Retention: time.Hour},
			// Blocks every day until the job's context ends: asynq's timeout ends it after 1 s.
			ledger:    gateLedger{inner: report.NewSyntheticLedger(smallRows), gate: make(chan struct{})},
			rng:       "2026-01-01..2026-12-31",
			want:      gen.Problem{Type: "/problems/report-timeout", Title: "Report took too long", Status: 500},
			detailHas: "1s",
			attempts:  1,
		},
		{
			name:        "failed-ledger-error",
			policy:      jobs.Policy{JobTimeout: time.Minute, MaxRetry: 0, Retention: time.Hour},
			ledger:      failingLedger{err: errors.New("dial tcp 10.9.8.7:5432: connect: connection refused")},
			rng:         "2026-Q1",
			want:        gen.Problem{Type: "/problems/report-failed", Title: "Report failed", Status: 500},
			detailHas:   "1 attempt",
			detailLacks: "10.9.8.7",
			attempts:    1,
		},
		{
			name:        "failed-after-retry",
			policy:      jobs.Policy{JobTimeout: time.Minute, MaxRetry: 1, Retention: time.Hour},
			ledger:      failingLedger{err: errors.New("ledger unavailable")},
			rng:         "2026-Q1",
			want:        gen.Problem{Type: "/problems/report-failed", Title: "Report failed", Status: 500},
			detailHas:   "2 attempts",
			detailLacks: "ledger unavailable",
			attempts:    2,
			seePending:  true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
				clk := &clock{}
				h := newHarness(t, b, setup{Worker: true, Ledger: tc.ledger, Policy: tc.policy, Clock: clk})
				id := h.create(t, tc.rng)

				sawRetryWait := false
				r := h.poll(t, id, 50*time.Millisecond, 15*time.Second, func(r *response) bool {
					if r.Status != http.StatusOK {
						t.Fatalf("status answered %s", r)
					}
					s := r.jobStatus(t)
					if s.Status == gen.Pending && s.Attempt != nil && *s.Attempt == 1 {
						sawRetryWait = true
					}
					return s.Status == gen.Failed
				})
				if tc.seePending && !sawRetryWait {
					t.Errorf("never saw the job pending with attempt 1 between its attempts")
				}
				s := r.jobStatus(t)
				if s.Error == nil {
					t.Fatalf("failed without an error: %s", r.Body)
				}
				got := gen.Problem{Type: s.Error.Type, Title: s.Error.Title, Status: s.Error.Status}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("error problem (-want +got):\n%s", diff)
				}
				if !strings.Contains(s.Error.Detail, tc.detailHas) {
					t.Errorf("error detail %q does not say %q", s.Error.Detail, tc.detailHas)
				}
				if tc.detailLacks != "" && strings.Contains(string(r.Body), tc.detailLacks) {
					t.Errorf("the failed status leaks the internal error %q: %s", tc.detailLacks, r.Body)
				}
				if s.Attempt == nil || *s.Attempt != tc.attempts {
					t.Errorf("attempt %v, want %d", s.Attempt, tc.attempts)
				}
				if s.StartedAt == nil || s.FinishedAt == nil || s.ExpiresAt == nil {
					t.Fatalf("a failed job needs started_at, finished_at and expires_at: %s", r.Body)
				}
				if want := s.FinishedAt.Add(tc.policy.Retention); !s.ExpiresAt.Equal(want) {
					t.Errorf("expires_at %s, want finished_at + retention = %s", s.ExpiresAt, want)
				}
				if s.Progress < 0 || s.Progress > 1 || s.Links.Result != nil {
					t.Errorf("progress %v, links %+v", s.Progress, s.Links)
				}
				if d := h.get(t, s.Error.Type); d.Status != http.StatusOK {
					t.Errorf("GET %s (the error's type) answered %s", s.Error.Type, d)
				}
				checkNotDone(t, h, id, "failed")

				// A failed job is readable until its expires_at, then gone.
				clk.Set(s.ExpiresAt.Add(-time.Millisecond))
				if r := h.get(t, "/v1/reports/"+id); r.Status != http.StatusOK {
					t.Errorf("just before expires_at: %s", r)
				}
				clk.Set(*s.ExpiresAt)
				checkGone(t, h, id)
			})
		})
	}
}

// TestUnreadableJobFails enqueues a job whose payload this version cannot read, as an older or newer
// reportd would have left it. The worker refuses it without retrying; the status must then say failed
// with the report-unreadable problem the server defines for this case.
func TestUnreadableJobFails(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		h := newHarness(t, b, setup{Worker: true})
		id := uuid.NewString()
		task := asynq.NewTask(tasks.TypeReport, []byte(`{"from":"2026-01-01","to":"2026-03-31"}`),
			asynq.TaskID(id), asynq.Queue(store.ReportQueue), asynq.MaxRetry(3), asynq.Retention(time.Hour))
		if _, err := asynq.NewClientFromRedisClient(h.Redis).Enqueue(task); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 5*time.Second, 20*time.Millisecond, func() error {
			info, err := h.Inspector.GetTaskInfo(store.ReportQueue, id)
			if err != nil {
				t.Fatal(err)
			}
			if info.State != asynq.TaskStateArchived {
				return fmt.Errorf("the worker did not archive the unreadable job: %s", info.State)
			}
			return nil
		})
		r := h.get(t, "/v1/reports/"+id)
		if r.Status != http.StatusOK {
			t.Fatalf("status of an unreadable failed job: %s, want 200 failed with /problems/report-unreadable", r)
		}
		s := r.jobStatus(t)
		if s.Status != gen.Failed || s.Error == nil || s.Error.Type != "/problems/report-unreadable" {
			t.Errorf("status %s, want failed with /problems/report-unreadable", r.Body)
		}
	})
}
