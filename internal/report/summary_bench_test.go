package report

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// benchRange is the week BenchmarkSummarize and BenchmarkPRNGFloor cover:
// Monday to Sunday, so it has weekday and weekend days.
var benchRange = DateRange{
	From: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC),
	To:   time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC),
}

// BenchmarkSummarize measures Summarize over a week of the synthetic ledger
// at DefaultRowsPerDay, in orders aggregated per second. Compare it with
// BenchmarkPRNGFloor, which only makes the same draws.
func BenchmarkSummarize(b *testing.B) { benchSummarize(b, DefaultRowsPerDay) }

// benchSummarize summarizes benchRange of a synthetic ledger of rows a day, reporting orders/s.
func benchSummarize(b *testing.B, rows int) {
	l := NewSyntheticLedger(rows)
	ctx := context.Background()
	var orders int64
	for b.Loop() {
		rep, err := Summarize(ctx, l, benchRange, counted, nil)
		if err != nil {
			b.Fatal(err)
		}
		orders += rep.Orders
	}
	b.ReportMetric(float64(orders)/b.Elapsed().Seconds(), "orders/s")
}

// BenchmarkPRNGFloor is the floor under BenchmarkSummarize: it makes only
// the random draws the synthetic ledger makes for the same week (the same
// generator, seeds and number of draws: one per day, then one per order) and
// reports them in the same unit, orders per second.
func BenchmarkPRNGFloor(b *testing.B) {
	l := NewSyntheticLedger(DefaultRowsPerDay)
	var orders int64
	var sink uint64
	for b.Loop() {
		for day := benchRange.From; !day.After(benchRange.To); day = day.AddDate(0, 0, 1) {
			g := l.dayGen(day) // the day's seed and its first draw
			rng := g.rng
			for range g.left {
				sink ^= rng.next()
			}
			orders += int64(g.left)
		}
	}
	if sink == 42 {
		b.Log("unlikely")
	}
	b.ReportMetric(float64(orders)/b.Elapsed().Seconds(), "orders/s")
}

// BenchmarkSyntheticGenerate measures what SyntheticLedger.Day does for the
// same week, not aggregated: each order looked up in orderByDraw and written
// to a reusable buffer. Summarize's fast path skips this and only counts
// draws per slot, so this is the cost it saves over reading Day.
func BenchmarkSyntheticGenerate(b *testing.B) {
	l := NewSyntheticLedger(DefaultRowsPerDay)
	buf := make([]Order, syntheticChunk)
	var orders int64
	for b.Loop() {
		for day := benchRange.From; !day.After(benchRange.To); day = day.AddDate(0, 0, 1) {
			g := l.dayGen(day)
			orders += int64(g.left)
			for g.left > 0 {
				g.fill(buf[:min(g.left, len(buf))])
			}
		}
	}
	b.ReportMetric(float64(orders)/b.Elapsed().Seconds(), "orders/s")
}

// BenchmarkSummarizeSmallDays measures Summarize over the same week at a few thousand orders a day, the
// size of the load test's jobs (REPORTD_ROWS_PER_DAY=2000): there, the per-day work around the draws
// counts as much as the draws.
func BenchmarkSummarizeSmallDays(b *testing.B) {
	for _, rows := range []int{100, 2000, 8000} {
		b.Run(fmt.Sprintf("rows-%d", rows), func(b *testing.B) { benchSummarize(b, rows) })
	}
}
