package impl

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/report"
)

func TestToJobStatusDone(t *testing.T) {
	t.Parallel()
	completedAt := testNow.Add(-time.Hour)
	v := jobs.Job{ID: testID.String(), State: jobs.Done, CreatedAt: testCreated,
		Range:      report.DateRange{From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC)},
		Progress:   jobs.Progress{Share: 1, StartedAt: testCreated, Attempt: 1},
		FinishedAt: completedAt, ExpiresAt: completedAt.Add(24 * time.Hour)}
	s := newFixture().srv
	got, err := s.toJobStatus(v)
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
	if _, err := s.toJobStatus(jobs.Job{ID: "not-a-uuid"}); err == nil {
		t.Error("toJobStatus of a view with a malformed id succeeded")
	}
}
