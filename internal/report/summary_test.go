package report

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/reportd/reportd/internal/testkit"
)

// smallRows is the rows per day of the ledger the property tests use.
const smallRows = 500

// plainLedger hides a SyntheticLedger's type, so Summarize reads it through
// Ledger.Day like any other ledger.
type plainLedger struct{ l *SyntheticLedger }

func (p plainLedger) Day(ctx context.Context, day time.Time, buf []Order) ([]Order, error) {
	return p.l.Day(ctx, day, buf)
}

// funcLedger is a Ledger whose day's orders come from a function.
type funcLedger func(day time.Time) ([]Order, error)

func (f funcLedger) Day(_ context.Context, day time.Time, buf []Order) ([]Order, error) {
	orders, err := f(day)
	return append(buf, orders...), err
}

// counted is the time the tests' reports are computed at: after every range they summarize, so that
// every day counts.
var counted = time.Date(9999, 12, 31, 12, 0, 0, 0, time.UTC)

func mustRange(t testing.TB, s string) DateRange {
	t.Helper()
	r, err := ParseRange(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func summarize(t testing.TB, l Ledger, r DateRange) Report {
	t.Helper()
	rep, err := Summarize(context.Background(), l, r, counted, nil)
	if err != nil {
		t.Fatalf("Summarize(%s): %v", r, err)
	}
	return rep
}

// checkReport checks the invariants every report of r has.
func checkReport(t *testing.T, rep Report, r DateRange) {
	t.Helper()
	want := Totals{rep.Orders, rep.Units, rep.RevenueCents}
	var days, regions, products Totals
	for _, d := range rep.ByDay {
		days.add(d.Totals)
	}
	for _, x := range rep.ByRegion {
		regions.add(x.Totals)
	}
	for _, x := range rep.ByProduct {
		products.add(x.Totals)
	}
	for name, got := range map[string]Totals{"by_day": days, "by_region": regions, "by_product": products} {
		if diff := gocmp.Diff(want, got); diff != "" {
			t.Errorf("report totals differ from the sum of %s (-totals +sum):\n%s", name, diff)
		}
	}

	var dates []string
	for d := r.From; !d.After(r.To); d = d.AddDate(0, 0, 1) {
		dates = append(dates, d.Format(time.DateOnly))
	}
	var gotDates []string
	for _, d := range rep.ByDay {
		gotDates = append(gotDates, d.Date)
	}
	if diff := gocmp.Diff(dates, gotDates); diff != "" {
		t.Errorf("by_day dates do not cover %s in order (-want +got):\n%s", r, diff)
	}
	if diff := gocmp.Diff(ReportRange{From: dates[0], To: dates[len(dates)-1]}, rep.Range); diff != "" {
		t.Errorf("range mismatch (-want +got):\n%s", diff)
	}

	checkRanked(t, "by_region", rep.ByRegion, func(x RegionTotal) (string, Totals) { return x.Region, x.Totals })
	checkRanked(t, "by_product", rep.ByProduct, func(x ProductTotal) (string, Totals) { return x.Product, x.Totals })
	if rep.ID != "" || !rep.GeneratedAt.IsZero() {
		t.Errorf("Summarize set ID %q, GeneratedAt %v; want them zero", rep.ID, rep.GeneratedAt)
	}
}

// checkRanked checks a breakdown is sorted by revenue descending then name,
// with unique names, each of which sold.
func checkRanked[T any](t *testing.T, what string, rows []T, key func(T) (string, Totals)) {
	t.Helper()
	if rows == nil {
		t.Errorf("%s is nil, want a (possibly empty) slice", what)
	}
	sorted := slices.IsSortedFunc(rows, func(a, b T) int {
		an, at := key(a)
		bn, bt := key(b)
		return cmp.Or(cmp.Compare(bt.RevenueCents, at.RevenueCents), cmp.Compare(an, bn))
	})
	if !sorted {
		t.Errorf("%s not sorted by revenue descending, then name: %+v", what, rows)
	}
	seen := map[string]bool{}
	for _, x := range rows {
		name, tot := key(x)
		if seen[name] {
			t.Errorf("%s lists %q twice", what, name)
		}
		seen[name] = true
		if tot.Orders <= 0 {
			t.Errorf("%s lists %q with %d orders", what, name, tot.Orders)
		}
	}
}

func TestSummarizeProperties(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
	}{
		{name: "quarter", in: "2026-Q1"},
		{name: "month", in: "2026-02"},
		{name: "leap-day-span", in: "2024-02-28..2024-03-01"},
		{name: "one-day", in: "2026-07-04..2026-07-04"},
		{name: "366-days", in: "2024-01-01..2024-12-31"},
		{name: "year-0001", in: "0001-01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := mustRange(t, tt.in)
			rep := summarize(t, NewSyntheticLedger(smallRows), r)
			checkReport(t, rep, r)
			if len(rep.ByRegion) != len(Regions) && r.Days() > 7 {
				t.Errorf("%d regions sold over %s, want all %d", len(rep.ByRegion), r, len(Regions))
			}

			again := summarize(t, NewSyntheticLedger(smallRows), r)
			if diff := gocmp.Diff(rep, again); diff != "" {
				t.Errorf("the same range twice gave different reports (-first +second):\n%s", diff)
			}
			generic := summarize(t, plainLedger{NewSyntheticLedger(smallRows)}, r)
			if diff := gocmp.Diff(rep, generic); diff != "" {
				t.Errorf("the synthetic fast path and Ledger.Day disagree (-fast +Day):\n%s", diff)
			}
		})
	}
}

// TestSummarizeFastPathMatchesDay checks Summarize's fast paths for a
// SyntheticLedger, which add each draw's slot of orderByDraw or count draws
// per slot, give byte for byte the JSON report that aggregating the orders of
// Ledger.Day gives: days of one order, on both sides of directDraws, and of
// less than and of more than one count chunk.
func TestSummarizeFastPathMatchesDay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		rows int
		in   string
	}{
		{name: "one-row", rows: 1, in: "2026-01"},
		{name: "ten-rows", rows: 10, in: "2026-02-27..2026-03-02"},
		{name: "slot-count-rows", rows: orderSlots, in: "2026-06-01..2026-06-07"},
		// Days on both sides of directDraws: added draw by draw, and counted per slot.
		{name: "around-direct-draws", rows: directDraws, in: "2026-03-01..2026-03-14"},
		{name: "over-a-chunk", rows: countChunk + countChunk/8, in: "2026-12-03..2026-12-05"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := mustRange(t, tt.in)
			fast := summarize(t, NewSyntheticLedger(tt.rows), r)
			generic := summarize(t, plainLedger{NewSyntheticLedger(tt.rows)}, r)
			checkReport(t, fast, r)
			if tt.name == "over-a-chunk" && fast.ByDay[0].Orders <= countChunk {
				t.Errorf("first day has %d orders, want over a count chunk (%d)", fast.ByDay[0].Orders, countChunk)
			}
			if tt.name == "around-direct-draws" {
				i := slices.IndexFunc(fast.ByDay, func(d DayTotal) bool { return d.Orders <= directDraws })
				j := slices.IndexFunc(fast.ByDay, func(d DayTotal) bool { return d.Orders > directDraws })
				if i < 0 || j < 0 {
					t.Errorf("want days of at most and of over %d orders, got %+v", directDraws, fast.ByDay)
				}
			}
			fastJSON, err := json.Marshal(fast)
			if err != nil {
				t.Fatal(err)
			}
			genericJSON, err := json.Marshal(generic)
			if err != nil {
				t.Fatal(err)
			}
			if diff := gocmp.Diff(string(genericJSON), string(fastJSON)); diff != "" {
				t.Errorf("fast path report differs from Ledger.Day's (-Day +fast):\n%s", diff)
			}
		})
	}
}

// TestSummarizeDayConsistent checks a day's entry is the same in a month's
// report, in the quarter's report containing it, and in its own report.
func TestSummarizeDayConsistent(t *testing.T) {
	t.Parallel()
	l := NewSyntheticLedger(smallRows)
	quarter := summarize(t, l, mustRange(t, "2026-Q2"))
	month := summarize(t, l, mustRange(t, "2026-05"))
	tests := []struct {
		name string
		date string
	}{
		{name: "first-of-month", date: "2026-05-01"},
		{name: "mid-month-saturday", date: "2026-05-16"},
		{name: "last-of-month", date: "2026-05-31"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			one := summarize(t, l, mustRange(t, tt.date+".."+tt.date))
			if len(one.ByDay) != 1 {
				t.Fatalf("one-day report has %d days", len(one.ByDay))
			}
			want := one.ByDay[0]
			if diff := gocmp.Diff(Totals{one.Orders, one.Units, one.RevenueCents}, want.Totals); diff != "" {
				t.Errorf("one-day report totals differ from its day (-report +day):\n%s", diff)
			}
			for name, rep := range map[string]Report{"month": month, "quarter": quarter} {
				i := slices.IndexFunc(rep.ByDay, func(d DayTotal) bool { return d.Date == tt.date })
				if i < 0 {
					t.Fatalf("%s report has no %s", name, tt.date)
				}
				if diff := gocmp.Diff(want, rep.ByDay[i]); diff != "" {
					t.Errorf("%s in the %s report differs from its one-day report (-one-day +%s):\n%s", tt.date, name, name, diff)
				}
			}
		})
	}
}

func TestSummarizeLedgers(t *testing.T) {
	t.Parallel()
	weekdaysOnly := funcLedger(func(day time.Time) ([]Order, error) {
		if wd := day.Weekday(); wd == time.Saturday || wd == time.Sunday {
			return nil, nil
		}
		return []Order{
			{Region: 0, Product: 0, Units: 2, UnitPriceCents: 500},
			{Region: 1, Product: 1, Units: 1, UnitPriceCents: 1000},
			{Region: 1, Product: 2, Units: 10, UnitPriceCents: 1},
		}, nil
	})
	day := func(date string, orders, units, revenue int64) DayTotal {
		return DayTotal{Date: date, Totals: Totals{orders, units, revenue}}
	}
	tests := []struct {
		name string
		l    Ledger
		in   string
		want Report
	}{{
		name: "zero-order-days-kept",
		l:    weekdaysOnly,
		in:   "2026-01-09..2026-01-12", // Friday to Monday
		want: Report{
			Range:          ReportRange{From: "2026-01-09", To: "2026-01-12"},
			CountedThrough: "2026-01-12",
			Orders:         6, Units: 26, RevenueCents: 4020,
			// Ties on revenue go by name.
			ByRegion: []RegionTotal{
				{Region: Regions[1], Totals: Totals{4, 22, 2020}},
				{Region: Regions[0], Totals: Totals{2, 4, 2000}},
			},
			ByProduct: []ProductTotal{
				{Product: Products[0], Totals: Totals{2, 4, 2000}},
				{Product: Products[1], Totals: Totals{2, 2, 2000}},
				{Product: Products[2], Totals: Totals{2, 20, 20}},
			},
			ByDay: []DayTotal{
				day("2026-01-09", 3, 13, 2010),
				day("2026-01-10", 0, 0, 0),
				day("2026-01-11", 0, 0, 0),
				day("2026-01-12", 3, 13, 2010),
			},
		},
	}, {
		name: "nothing-sold",
		l:    funcLedger(func(time.Time) ([]Order, error) { return nil, nil }),
		in:   "2026-01-01..2026-01-02",
		want: Report{
			Range:          ReportRange{From: "2026-01-01", To: "2026-01-02"},
			CountedThrough: "2026-01-02",
			ByRegion:       []RegionTotal{},
			ByProduct:      []ProductTotal{},
			ByDay:          []DayTotal{day("2026-01-01", 0, 0, 0), day("2026-01-02", 0, 0, 0)},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := mustRange(t, tt.in)
			got := summarize(t, tt.l, r)
			if diff := gocmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Summarize mismatch (-want +got):\n%s", diff)
			}
			checkReport(t, got, r)
		})
	}
}

// dayRecorder is a Ledger that records the days it is asked for.
type dayRecorder struct {
	l    Ledger
	mu   sync.Mutex
	days []string
}

func (d *dayRecorder) Day(ctx context.Context, day time.Time, buf []Order) ([]Order, error) {
	d.mu.Lock()
	d.days = append(d.days, day.Format(time.DateOnly))
	d.mu.Unlock()
	return d.l.Day(ctx, day, buf)
}

// TestSummarizeCountsOnlyDaysThatHappened: the days of a range after the day it is computed on hold
// no orders (the ledger is not even asked for them, so the synthetic one invents none), the report says
// which day it counted through, and the days it counted are those a report made later would count.
func TestSummarizeCountsOnlyDaysThatHappened(t *testing.T) {
	t.Parallel()
	r := mustRange(t, "2026-12-05..2026-12-10")
	tests := []struct {
		name        string
		asOf        time.Time
		wantThrough string
		wantCounted int // days of r with orders
	}{
		{name: "partly-future", asOf: time.Date(2026, 12, 7, 23, 59, 59, 0, time.UTC), wantThrough: "2026-12-07", wantCounted: 3},
		{name: "first-day", asOf: time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC), wantThrough: "2026-12-05", wantCounted: 1},
		// Today is the UTC date, whatever the zone of the clock's reading.
		{name: "utc-date", asOf: time.Date(2026, 12, 8, 1, 0, 0, 0, time.FixedZone("UTC+2", 2*3600)), wantThrough: "2026-12-07", wantCounted: 3},
		{name: "last-day", asOf: time.Date(2026, 12, 10, 12, 0, 0, 0, time.UTC), wantThrough: "2026-12-10", wantCounted: 6},
		{name: "long-after", asOf: counted, wantThrough: "2026-12-10", wantCounted: 6},
	}
	full := summarize(t, NewSyntheticLedger(smallRows), r)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for name, l := range map[string]Ledger{"synthetic": NewSyntheticLedger(smallRows), "generic": plainLedger{NewSyntheticLedger(smallRows)}} {
				rec := &dayRecorder{l: l}
				var ledger Ledger = rec
				if name == "synthetic" {
					ledger = l // the fast path, which is not asked through Day
				}
				var calls int
				rep, err := Summarize(context.Background(), ledger, r, tt.asOf, func(done, total int) { calls++ })
				if err != nil {
					t.Fatalf("%s: Summarize: %v", name, err)
				}
				checkReport(t, rep, r)
				if rep.CountedThrough != tt.wantThrough {
					t.Errorf("%s: counted through %q, want %q", name, rep.CountedThrough, tt.wantThrough)
				}
				if calls != r.Days() {
					t.Errorf("%s: onDay called %d times, want once a day of the range (%d)", name, calls, r.Days())
				}
				for i, d := range rep.ByDay {
					if i < tt.wantCounted {
						if diff := gocmp.Diff(full.ByDay[i], d); diff != "" || d.Orders == 0 {
							t.Errorf("%s: %s, a day that happened, differs from a later report's (-later +this):\n%s", name, d.Date, diff)
						}
					} else if d.Totals != (Totals{}) {
						t.Errorf("%s: %s, after %s, holds %+v, want no orders", name, d.Date, tt.wantThrough, d.Totals)
					}
				}
				if name == "generic" {
					var want []string
					for _, d := range full.ByDay[:tt.wantCounted] {
						want = append(want, d.Date)
					}
					if diff := gocmp.Diff(want, rec.days); diff != "" {
						t.Errorf("the ledger was asked for other days than those that happened (-want +got):\n%s", diff)
					}
				}
			}
		})
	}
	t.Run("starts-after", func(t *testing.T) {
		t.Parallel()
		rec := &dayRecorder{l: NewSyntheticLedger(smallRows)}
		_, err := Summarize(context.Background(), rec, r, time.Date(2026, 12, 4, 23, 59, 0, 0, time.UTC), nil)
		if !errors.Is(err, ErrRangeUnservable) {
			t.Errorf("Summarize of a range that starts tomorrow: %v, want an error wrapping ErrRangeUnservable", err)
		}
		if len(rec.days) != 0 {
			t.Errorf("the ledger was asked for %v", rec.days)
		}
	})
}

func TestSummarizeErrors(t *testing.T) {
	t.Parallel()
	errLedger := errors.New("ledger down")
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	ok := mustRange(t, "2026-01-01..2026-01-03")
	tests := []struct {
		name    string
		ctx     context.Context
		l       Ledger
		r       DateRange
		wantErr error // nil: any error
	}{
		{name: "canceled-synthetic", ctx: canceled, l: NewSyntheticLedger(smallRows), r: ok, wantErr: context.Canceled},
		{name: "canceled-default-rows", ctx: canceled, l: NewSyntheticLedger(DefaultRowsPerDay), r: ok, wantErr: context.Canceled},
		{name: "canceled-generic", ctx: canceled, l: plainLedger{NewSyntheticLedger(smallRows)}, r: ok, wantErr: context.Canceled},
		{name: "ledger-error", ctx: context.Background(), r: ok, wantErr: errLedger,
			l: funcLedger(func(time.Time) ([]Order, error) { return nil, errLedger })},
		{name: "bad-region", ctx: context.Background(), r: ok,
			l: funcLedger(func(time.Time) ([]Order, error) { return []Order{{Region: uint8(len(Regions)), Units: 1}}, nil })},
		{name: "bad-product", ctx: context.Background(), r: ok,
			l: funcLedger(func(time.Time) ([]Order, error) { return []Order{{Product: 255, Units: 1}}, nil })},
		{name: "end-before-start", ctx: context.Background(), l: NewSyntheticLedger(smallRows), wantErr: ErrRangeUnservable,
			r: DateRange{From: day(2026, 2, 1), To: day(2026, 1, 1)}},
		{name: "367-days", ctx: context.Background(), l: NewSyntheticLedger(smallRows), wantErr: ErrRangeUnservable,
			r: DateRange{From: day(2024, 1, 1), To: day(2025, 1, 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep, err := Summarize(tt.ctx, tt.l, tt.r, counted, nil)
			if err == nil {
				t.Fatalf("Summarize succeeded with %+v, want an error", rep)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Summarize error %v, want one wrapping %v", err, tt.wantErr)
			}
			t.Logf("error: %v", err)
		})
	}
}

func TestSummarizeProgress(t *testing.T) {
	t.Parallel()
	r := mustRange(t, "2026-02")
	var got [][2]int
	if _, err := Summarize(context.Background(), NewSyntheticLedger(10), r, counted, func(done, total int) {
		got = append(got, [2]int{done, total})
	}); err != nil {
		t.Fatal(err)
	}
	var want [][2]int
	for i := 1; i <= 28; i++ {
		want = append(want, [2]int{i, 28})
	}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("onDay calls mismatch (-want +got):\n%s", diff)
	}
}

// TestSummarizeCancelLatency cancels a quarter at the default rows per day
// partway through its second day and checks Summarize returns promptly. The
// goal is 100 ms; the test allows 500 ms so a busy machine does not flake.
func TestSummarizeCancelLatency(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		ledger Ledger
	}{
		{name: "synthetic", ledger: NewSyntheticLedger(DefaultRowsPerDay)},
		// Day holds a whole day, so the generic ledger is kept to about
		// 2M orders a day (50 MB).
		{name: "generic", ledger: plainLedger{NewSyntheticLedger(DefaultRowsPerDay / 18)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			firstDay := make(chan struct{})
			canceledAt := make(chan time.Time, 1)
			go func() {
				<-firstDay
				time.Sleep(15 * time.Millisecond) // into the second day
				canceledAt <- time.Now()
				cancel()
			}()
			rep, err := Summarize(ctx, tt.ledger, mustRange(t, "2026-Q4"), counted, func(done, _ int) {
				if done == 1 {
					close(firstDay)
				}
			})
			returned := time.Now()
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Summarize error %v (report of %d orders), want context.Canceled", err, rep.Orders)
			}
			latency := returned.Sub(<-canceledAt)
			t.Logf("returned %v after cancel", latency)
			if latency > 500*time.Millisecond {
				t.Errorf("returned %v after cancel, want well under 500ms (goal 100ms)", latency)
			}
		})
	}
}

func TestSummarizeDeadline(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := Summarize(ctx, NewSyntheticLedger(DefaultRowsPerDay), mustRange(t, "2026-Q1"), counted, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Summarize error %v, want context.DeadlineExceeded", err)
	}
}

// goldenReport is the small report the golden files hold.
func goldenReport(t *testing.T) Report {
	t.Helper()
	rep := summarize(t, NewSyntheticLedger(50), mustRange(t, "2026-01-01..2026-01-03"))
	rep.ID = "00000000-0000-4000-8000-000000000000"
	rep.GeneratedAt = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return rep
}

func TestSummaryJSONGolden(t *testing.T) {
	t.Parallel()
	rep := goldenReport(t)
	got, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	testkit.Golden(t, "testdata/summary.json.golden", append(got, '\n'))

	var back Report
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if diff := gocmp.Diff(rep, back); diff != "" {
		t.Errorf("JSON round trip mismatch (-want +got):\n%s", diff)
	}
	// The embedded Totals are flat in JSON.
	var generic map[string]any
	if err := json.Unmarshal(got, &generic); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"by_region", "by_product", "by_day"} {
		rows, _ := generic[key].([]any)
		if len(rows) == 0 {
			t.Fatalf("%s empty in %s", key, got)
		}
		row, _ := rows[0].(map[string]any)
		for _, field := range []string{"orders", "units", "revenue_cents"} {
			if _, ok := row[field]; !ok {
				t.Errorf("%s row %v has no %q", key, row, field)
			}
		}
	}
}
