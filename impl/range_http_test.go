package impl_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/redistest"
)

// TestRangeAsOfToday runs the service on a fixed clock: a range that starts after its today is
// refused with a 422 that says so, and one that runs past today is computed with no orders on the days
// that have not happened, its report saying the day it counted through.
func TestRangeAsOfToday(t *testing.T) {
	t.Parallel()
	// The real moment, fixed (asynq and Redis keep the real time): today stays today through the test.
	now := time.Now().UTC()
	today := now.Truncate(24 * time.Hour)
	day := func(n int) string { return today.AddDate(0, 0, n).Format(time.DateOnly) }
	clk := &clock{}
	clk.Set(now)
	h := newHarness(t, redistest.Embedded(t), setup{Worker: true, Clock: clk})

	// Before the others, which queue jobs: the refusals queue none.
	t.Run("create-422-starts-tomorrow", func(t *testing.T) {
		for _, rng := range []string{day(1), day(1) + ".." + day(5), "9999-Q4"} {
			r := h.post(t, `{"range":"`+rng+`"}`)
			p := r.problem(t)
			want := "after today (" + day(0) + ", UTC); a report can only cover days that have begun"
			if r.Status != http.StatusUnprocessableEntity || p.Type != "/problems/range-unservable" ||
				!strings.HasPrefix(p.Detail, `/range "`+rng+`" cannot be served: `) || !strings.Contains(p.Detail, want) {
				t.Errorf("POST %s: %s, want 422 /problems/range-unservable saying %q", rng, r, want)
			}
		}
		noJobs(t, h)
	})

	t.Run("create-202-runs-past-today", func(t *testing.T) {
		t.Parallel()
		rng := day(-2) + ".." + day(3)
		id, _ := h.createDone(t, rng)
		res := h.get(t, "/v1/reports/"+id+"/result")
		if res.Status != http.StatusOK {
			t.Fatalf("result: %s", res)
		}
		var rep gen.Report
		if err := json.Unmarshal(res.Body, &rep); err != nil {
			t.Fatal(err)
		}
		if rep.CountedThrough == nil || rep.CountedThrough.String() != day(0) {
			t.Errorf("counted_through = %v, want today, %s", rep.CountedThrough, day(0))
		}
		if len(rep.ByDay) != 6 {
			t.Fatalf("by_day has %d days, want the range's 6", len(rep.ByDay))
		}
		for i, d := range rep.ByDay {
			if happened := i <= 2; happened != (d.Orders > 0) {
				t.Errorf("%s (today is %s) has %d orders", d.Date, day(0), d.Orders)
			}
		}
		// Exactly the summary of the days that happened, as of the service's today.
		checkSummary(t, res.Body, rng, now)
	})

	t.Run("create-202-today-alone", func(t *testing.T) {
		t.Parallel()
		id, _ := h.createDone(t, day(0))
		var rep gen.Report
		if err := json.Unmarshal(h.get(t, "/v1/reports/"+id+"/result").Body, &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Range.From.String() != day(0) || rep.Range.To.String() != day(0) || rep.Orders == 0 ||
			rep.CountedThrough == nil || rep.CountedThrough.String() != day(0) {
			t.Errorf("report of today alone: range %s..%s, %d orders, counted through %v; want today, with orders, counted through today",
				rep.Range.From, rep.Range.To, rep.Orders, rep.CountedThrough)
		}
	})

	// A month that does not exist and a day the month does not have are both not dates: the spec's
	// pattern finds the one and the service the other, and both answer the same 400, naming the field.
	t.Run("create-400-not-a-date", func(t *testing.T) {
		t.Parallel()
		var got []errorWant
		for _, rng := range []string{"2026-13", "2026-02-30..2026-03-01", "2026-02-30"} {
			r := h.do(t, h.request(t, http.MethodPost, "/v1/reports", strings.NewReader(`{"range":"`+rng+`"}`), "Content-Type", appJSON))
			got = append(got, errorOf(r))
			if p := r.problem(t); !strings.HasPrefix(p.Detail, `/range "`+rng+`" is not a range`) {
				t.Errorf("POST %s: detail %q does not start with the field's pointer", rng, p.Detail)
			}
		}
		bad := errorWant{Status: 400, ContentType: problemJSON, Type: "/problems/invalid-request", ProblemStatus: 400}
		if diff := cmp.Diff([]errorWant{bad, bad, bad}, got); diff != "" {
			t.Errorf("answers to ranges that are not dates (-want +got):\n%s", diff)
		}
	})
}
