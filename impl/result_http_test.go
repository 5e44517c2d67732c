package impl_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/report"
	"github.com/reportd/reportd/internal/testkit"
)

// TestResultCSVGolden pins the CSV the result URL serves, byte for byte, over a ledger whose orders are
// fixed by the test (so that the file changes only when the rendering does). Run with -update to rewrite it.
func TestResultCSVGolden(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		h := newHarness(t, b, setup{Worker: true, Ledger: fixedLedger{}})
		id, _ := h.createDone(t, "2024-02-27..2024-03-02")
		r := h.get(t, "/v1/reports/"+id+"/result", "Accept", "text/csv")
		if r.Status != http.StatusOK || r.mediaType() != "text/csv" {
			t.Fatalf("CSV answered %s", r)
		}
		testkit.Golden(t, "testdata/result-2024-02-27_2024-03-02.csv.golden", r.Body)
		if got, want := r.Header.Get("Content-Disposition"), `attachment; filename="report-2024-02-27_2024-03-02.csv"`; got != want {
			t.Errorf("Content-Disposition %q, want %q", got, want)
		}
	})
}

// checkSummary fails t unless body is exactly the report Summarize makes of rng from the synthetic
// ledger (smallRows) as of now, but for its id and the moment it was generated.
func checkSummary(t *testing.T, body []byte, rng string, now time.Time) {
	t.Helper()
	r, err := report.ParseRange(rng)
	if err != nil {
		t.Fatal(err)
	}
	want, err := report.Summarize(t.Context(), report.NewSyntheticLedger(smallRows), r, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got report.Report
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(report.Report{}, "ID", "GeneratedAt")); diff != "" {
		t.Errorf("report differs from Summarize of %s as of %s (-want +got):\n%s", rng, now, diff)
	}
}

// checkReport checks a report against the contract's prose: one by_day entry a day, ascending, and
// totals equal to the sums of every breakdown, which are ordered by revenue.
func checkReport(t *testing.T, rep gen.Report, id, from string, days int, before time.Time) {
	t.Helper()
	if rep.Id.String() != id {
		t.Errorf("report id %s, want %s", rep.Id, id)
	}
	if rep.GeneratedAt.Before(before.Add(-time.Second)) || rep.GeneratedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("generated_at %s is not during the test", rep.GeneratedAt)
	}
	if len(rep.ByDay) != days {
		t.Fatalf("by_day has %d entries, want %d", len(rep.ByDay), days)
	}
	first, _ := time.Parse(time.DateOnly, from)
	var day, region, product gen.Totals
	for i, d := range rep.ByDay {
		if want := first.AddDate(0, 0, i).Format(time.DateOnly); d.Date.String() != want {
			t.Errorf("by_day[%d] is %s, want %s", i, d.Date, want)
		}
		day.Orders += d.Orders
		day.Units += d.Units
		day.RevenueCents += d.RevenueCents
	}
	if rep.Range.From.String() != from || rep.Range.To.String() != rep.ByDay[days-1].Date.String() {
		t.Errorf("range %s..%s does not match by_day", rep.Range.From, rep.Range.To)
	}
	for _, r := range rep.ByRegion {
		region.Orders += r.Orders
		region.Units += r.Units
		region.RevenueCents += r.RevenueCents
	}
	for _, p := range rep.ByProduct {
		product.Orders += p.Orders
		product.Units += p.Units
		product.RevenueCents += p.RevenueCents
	}
	total := gen.Totals{Orders: rep.Orders, Units: rep.Units, RevenueCents: rep.RevenueCents}
	if total.Orders == 0 {
		t.Errorf("the report has no orders")
	}
	for name, sum := range map[string]gen.Totals{"by_day": day, "by_region": region, "by_product": product} {
		if diff := cmp.Diff(total, sum); diff != "" {
			t.Errorf("totals differ from the sum of %s (-totals +sum):\n%s", name, diff)
		}
	}
	if !slices.IsSortedFunc(rep.ByRegion, func(a, b gen.RegionTotals) int {
		return cmpRevenueThenName(a.RevenueCents, b.RevenueCents, a.Region, b.Region)
	}) {
		t.Errorf("by_region is not by revenue, highest first: %+v", rep.ByRegion)
	}
	if !slices.IsSortedFunc(rep.ByProduct, func(a, b gen.ProductTotals) int {
		return cmpRevenueThenName(a.RevenueCents, b.RevenueCents, a.Product, b.Product)
	}) {
		t.Errorf("by_product is not by revenue, highest first: %+v", rep.ByProduct)
	}
}

func cmpRevenueThenName(ra, rb int64, na, nb string) int {
	switch {
	case ra != rb && ra > rb:
		return -1
	case ra != rb:
		return 1
	}
	return strings.Compare(na, nb)
}

// checkCSV checks the CSV against the JSON report it renders.
func checkCSV(t *testing.T, body []byte, rep gen.Report) {
	t.Helper()
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	want := []string{"date,orders,units,revenue_cents"}
	for _, d := range rep.ByDay {
		want = append(want, fmt.Sprintf("%s,%d,%d,%d", d.Date, d.Orders, d.Units, d.RevenueCents))
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("CSV does not render by_day (-want +got):\n%s", diff)
	}
	if !bytes.HasSuffix(body, []byte("\n")) {
		t.Errorf("CSV does not end with a newline")
	}
}

// TestResultNotDone asks for the result of a job that is pending, then running: 409, naming the status.
func TestResultNotDone(t *testing.T) {
	t.Parallel()
	t.Run("result-409-pending", func(t *testing.T) {
		t.Parallel()
		redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
			h := newHarness(t, b, setup{}) // no worker: the job stays pending
			id := h.create(t, "2026-Q1")
			checkNotDone(t, h, id, "pending")
		})
	})
	t.Run("result-409-running", func(t *testing.T) {
		t.Parallel()
		redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
			gate := make(chan struct{})
			h := newHarness(t, b, setup{Worker: true, Ledger: gateLedger{inner: report.NewSyntheticLedger(smallRows), gate: gate}})
			id := h.create(t, "2026-02")
			h.poll(t, id, 20*time.Millisecond, 10*time.Second, hasState(t, gen.Running))
			checkNotDone(t, h, id, "running")
			close(gate)
			h.poll(t, id, 20*time.Millisecond, 10*time.Second, is303)
			if r := h.get(t, "/v1/reports/"+id+"/result"); r.Status != http.StatusOK {
				t.Errorf("result after done: %s", r)
			}
		})
	})
}

func checkNotDone(t *testing.T, h *harness, id, state string) {
	t.Helper()
	for _, accept := range []string{"", "text/csv"} {
		r := h.get(t, "/v1/reports/"+id+"/result", "Accept", accept)
		got := errorWant{Status: r.Status, ContentType: r.mediaType()}
		p := r.problem(t)
		got.Type, got.ProblemStatus = p.Type, p.Status
		want := errorWant{Status: 409, ContentType: problemJSON, Type: "/problems/job-not-done", ProblemStatus: 409}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("result of a %s job, Accept %q (-want +got):\n%s", state, accept, diff)
		}
		if !strings.Contains(p.Detail, state) {
			t.Errorf("409 detail %q does not name the status %q", p.Detail, state)
		}
	}
}
