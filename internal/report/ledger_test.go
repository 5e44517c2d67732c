package report

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSyntheticLedgerDeterministic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		day  time.Time
		rows int
	}{
		{name: "weekday", day: day(2026, 1, 7), rows: 1000},
		{name: "weekend", day: day(2026, 1, 10), rows: 1000},
		{name: "leap-day", day: day(2024, 2, 29), rows: 500},
		{name: "year-0001", day: day(1, 1, 1), rows: 100},
		{name: "year-9999", day: day(9999, 12, 31), rows: 100},
		{name: "one-row", day: day(2026, 6, 7), rows: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			a, err := NewSyntheticLedger(tt.rows).Day(ctx, tt.day, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := NewSyntheticLedger(tt.rows).Day(ctx, tt.day, make([]Order, 0, 7))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(a, b); diff != "" {
				t.Errorf("two ledgers disagree on %s (-first +second):\n%s", tt.day.Format(time.DateOnly), diff)
			}
			// The same calendar date given at another time of day, or in
			// another zone, is the same UTC date.
			noon := tt.day.Add(12*time.Hour + 34*time.Minute).In(time.FixedZone("UTC+1", 3600))
			c, err := NewSyntheticLedger(tt.rows).Day(ctx, noon, nil)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(a, c); diff != "" {
				t.Errorf("Day(%v) differs from Day(%v) (-midnight +noon):\n%s", tt.day, noon, diff)
			}
			prev, err := NewSyntheticLedger(tt.rows).Day(ctx, tt.day.AddDate(0, 0, -1), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(a) > 10 && cmp.Equal(a[:10], prev[:min(10, len(prev))]) {
				t.Errorf("%s starts with the same orders as the day before", tt.day.Format(time.DateOnly))
			}
		})
	}
}

func TestSyntheticLedgerOrdersValid(t *testing.T) {
	t.Parallel()
	l := NewSyntheticLedger(1000)
	var buf []Order
	var err error
	var regionOrders [numRegions]int
	var productOrders [numProducts]int
	discounted, total := 0, 0
	for d := day(2026, 1, 1); d.Year() == 2026; d = d.AddDate(0, 0, 1) {
		buf, err = l.Day(context.Background(), d, buf[:0])
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range buf {
			if int(o.Region) >= len(Regions) || int(o.Product) >= len(Products) {
				t.Fatalf("%s: order %+v out of range", d.Format(time.DateOnly), o)
			}
			if o.Units < 1 || o.Units > 10 {
				t.Fatalf("%s: order %+v has units out of 1..10", d.Format(time.DateOnly), o)
			}
			list := productSpecs[o.Product].priceCents
			if o.UnitPriceCents <= 0 || o.UnitPriceCents > list || o.UnitPriceCents < list*85/100 {
				t.Fatalf("%s: order %+v price not within 15%% under list %d", d.Format(time.DateOnly), o, list)
			}
			if o.UnitPriceCents < list {
				discounted++
			}
			regionOrders[o.Region]++
			productOrders[o.Product]++
			total++
		}
	}
	for p, n := range productOrders {
		if n == 0 {
			t.Errorf("product %q never sold in a year", Products[p])
		}
	}
	// Skewed, not uniform: the busiest region has well over the quietest's
	// orders, and so does the best-selling product.
	if lo, hi := minMax(regionOrders[:]); hi < 3*lo {
		t.Errorf("region orders %v are not skewed (min %d, max %d)", regionOrders, lo, hi)
	}
	if lo, hi := minMax(productOrders[:]); hi < 5*lo {
		t.Errorf("product orders %v are not skewed (min %d, max %d)", productOrders, lo, hi)
	}
	if share := float64(discounted) / float64(total); share < 0.1 || share > 0.3 {
		t.Errorf("%.3f of orders discounted, want sometimes (0.1..0.3)", share)
	}
}

func minMax(s []int) (lo, hi int) {
	lo, hi = s[0], s[0]
	for _, v := range s {
		lo, hi = min(lo, v), max(hi, v)
	}
	return lo, hi
}

func TestSyntheticLedgerDaySizes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		rows int
	}{
		{name: "one-row", rows: 1},
		{name: "ten-rows", rows: 10},
		{name: "thousand-rows", rows: 1000},
		{name: "default-rows", rows: DefaultRowsPerDay},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := NewSyntheticLedger(tt.rows)
			var weekday, weekend, days, sum int
			for d := day(2025, 1, 1); d.Year() == 2025; d = d.AddDate(0, 0, 1) {
				n := l.dayGen(d).left
				if n < 1 {
					t.Fatalf("%s has %d orders, want at least 1", d.Format(time.DateOnly), n)
				}
				// Weekday, season and jitter together stay within about ±35%.
				if tt.rows >= 1000 && (n < tt.rows*64/100 || n > tt.rows*134/100) {
					t.Errorf("%s has %d orders, want within -36%%..+34%% of %d", d.Format(time.DateOnly), n, tt.rows)
				}
				if wd := d.Weekday(); wd == time.Saturday || wd == time.Sunday {
					weekend += n
				} else {
					weekday += n
				}
				days++
				sum += n
			}
			if tt.rows < 1000 {
				return
			}
			if mean := sum / days; mean < tt.rows*9/10 || mean > tt.rows*11/10 {
				t.Errorf("mean day has %d orders, want within 10%% of %d", mean, tt.rows)
			}
			if weekend*5 >= weekday*2 { // weekend day mean >= weekday mean
				t.Errorf("weekends (%d orders) not lower than weekdays (%d orders)", weekend, weekday)
			}
			june, december := l.dayGen(day(2025, 6, 4)).left, l.dayGen(day(2025, 12, 3)).left
			if june >= december { // both Wednesdays
				t.Errorf("early June has %d orders, early December %d; want a seasonal swing", june, december)
			}
		})
	}
}

func TestSyntheticLedgerDefaults(t *testing.T) {
	t.Parallel()
	d := day(2026, 3, 4)
	want := NewSyntheticLedger(DefaultRowsPerDay).dayGen(d)
	for _, l := range []*SyntheticLedger{{}, NewSyntheticLedger(0), NewSyntheticLedger(-5)} {
		if diff := cmp.Diff(want, l.dayGen(d), cmp.AllowUnexported(orderGen{})); diff != "" {
			t.Errorf("ledger %+v does not default to DefaultRowsPerDay (-want +got):\n%s", l, diff)
		}
	}
}

func TestSyntheticLedgerDayAppends(t *testing.T) {
	t.Parallel()
	l := NewSyntheticLedger(50)
	prefix := []Order{{Region: 1, Product: 2, Units: 3, UnitPriceCents: 4}}
	got, err := l.Day(context.Background(), day(2026, 1, 1), prefix)
	if err != nil {
		t.Fatal(err)
	}
	alone, err := l.Day(context.Background(), day(2026, 1, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(append(prefix[:1:1], alone...), got); diff != "" {
		t.Errorf("Day did not append to buf (-want +got):\n%s", diff)
	}
}

func TestSyntheticLedgerDayCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := NewSyntheticLedger(50).Day(ctx, day(2026, 1, 1), nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Day with a canceled context: error %v, want context.Canceled", err)
	}
}

func TestCatalog(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		names    []string
		min, max int
	}{
		{name: "regions", names: Regions, min: 5, max: 6},
		{name: "products", names: Products, min: 30, max: 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if n := len(tt.names); n < tt.min || n > tt.max {
				t.Errorf("%d %s, want %d..%d", n, tt.name, tt.min, tt.max)
			}
			seen := map[string]bool{}
			for _, n := range tt.names {
				if n == "" || seen[n] {
					t.Errorf("name %q empty or repeated", n)
				}
				seen[n] = true
			}
		})
	}
	for p, spec := range productSpecs {
		if spec.priceCents <= 0 {
			t.Errorf("product %q has list price %d", spec.name, spec.priceCents)
		}
		if Products[p] != spec.name {
			t.Errorf("Products[%d] = %q, want %q", p, Products[p], spec.name)
		}
	}
}

func TestDrawTable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		weights []int
		want    [64]uint8
	}{
		{name: "equal", weights: []int{1, 1}, want: func() (t [64]uint8) {
			for i := 32; i < 64; i++ {
				t[i] = 1
			}
			return t
		}()},
		{name: "one", weights: []int{5}},
		{name: "skewed", weights: []int{48, 0, 16}, want: func() (t [64]uint8) {
			for i := 48; i < 64; i++ {
				t[i] = 2
			}
			return t
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got [64]uint8
			drawTable(got[:], tt.weights)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("drawTable(%v) mismatch (-want +got):\n%s", tt.weights, diff)
			}
		})
	}
}

// TestOrderTableMarginals checks orderByDraw gives each region, product,
// units count and discount its share of the slots.
func TestOrderTableMarginals(t *testing.T) {
	t.Parallel()
	var regions [numRegions]int
	var products [numProducts]int
	var units [11]int
	discounted := 0
	for j, o := range orderByDraw {
		if int(o.Region) >= numRegions || int(o.Product) >= numProducts || o.Units < 1 || o.Units > 10 {
			t.Fatalf("slot %d holds invalid order %+v", j, o)
		}
		list := productSpecs[o.Product].priceCents
		switch o.UnitPriceCents {
		case list:
		case list * 95 / 100, list * 90 / 100, list * 85 / 100:
			discounted++
		default:
			t.Errorf("slot %d: order %+v is not at list price %d or 5, 10 or 15%% off", j, o, list)
		}
		regions[o.Region]++
		products[o.Product]++
		units[o.Units]++
	}
	const perRegionWeight = orderSlots / 256 // region weights sum to 256
	for r, spec := range regionSpecs {
		if want := spec.weight * perRegionWeight; regions[r] != want {
			t.Errorf("region %q has %d of %d slots, want %d", spec.name, regions[r], orderSlots, want)
		}
	}
	total := 0
	for _, p := range productSpecs {
		total += p.weight
	}
	for p, spec := range productSpecs {
		want := spec.weight * orderSlots / total
		if products[p] < want-1 || products[p] > want+1 || products[p] == 0 {
			t.Errorf("product %q has %d of %d slots, want about %d", spec.name, products[p], orderSlots, want)
		}
	}
	for u, w := range []int{26, 14, 8, 5, 4, 3, 1, 1, 1, 1} {
		if want := w * orderSlots / 64; units[u+1] != want {
			t.Errorf("%d units in %d of %d slots, want %d", u+1, units[u+1], orderSlots, want)
		}
	}
	if want := 3 * orderSlots / 16; discounted != want {
		t.Errorf("%d of %d slots discounted, want %d", discounted, orderSlots, want)
	}
}

// TestOrderTableIndependent checks the columns of orderByDraw are paired
// without correlation: within each region, each product, units count and
// discount has close to its overall share of the region's slots; within
// each product, so has each units count.
func TestOrderTableIndependent(t *testing.T) {
	t.Parallel()
	var regionSlots [numRegions]int
	var productSlots [numProducts]int
	var unitSlots, discountSlots [11]int
	var regionProduct [numRegions][numProducts]int
	var regionUnits, regionDiscount [numRegions][11]int
	var productUnits [numProducts][11]int
	discountOf := func(o Order) int {
		return int(100-o.UnitPriceCents*100/productSpecs[o.Product].priceCents) / 5 // 0..3
	}
	for _, o := range orderByDraw {
		d := discountOf(o)
		regionSlots[o.Region]++
		productSlots[o.Product]++
		unitSlots[o.Units]++
		discountSlots[d]++
		regionProduct[o.Region][o.Product]++
		regionUnits[o.Region][o.Units]++
		regionDiscount[o.Region][d]++
		productUnits[o.Product][o.Units]++
	}
	// check compares the joint count of a pair of values with what
	// independent columns give. The region and product columns are
	// stratified, so their pairs are off by rounding only (2.5 slots at
	// most); a shuffled column is allowed about four standard deviations of
	// a random pairing.
	check := func(what string, got, a, b int, stratified bool) {
		t.Helper()
		want := float64(a) * float64(b) / orderSlots
		tol := 1.5 + 4*math.Sqrt(want)
		if stratified {
			tol = 2.5
		}
		if math.Abs(float64(got)-want) > tol {
			t.Errorf("%s: %d slots, want %.1f ± %.1f for independent columns", what, got, want, tol)
		}
	}
	for r := range numRegions {
		for p := range numProducts {
			check(fmt.Sprintf("region %d product %d", r, p), regionProduct[r][p], regionSlots[r], productSlots[p], true)
		}
		for u := 1; u <= 10; u++ {
			check(fmt.Sprintf("region %d units %d", r, u), regionUnits[r][u], regionSlots[r], unitSlots[u], false)
		}
		for d := range 4 {
			check(fmt.Sprintf("region %d discount %d", r, d), regionDiscount[r][d], regionSlots[r], discountSlots[d], false)
		}
	}
	for p := range numProducts {
		for u := 1; u <= 10; u++ {
			check(fmt.Sprintf("product %d units %d", p, u), productUnits[p][u], productSlots[p], unitSlots[u], false)
		}
	}
}

// TestSyntheticDayUsesOrderTable checks the orders of a day are
// orderByDraw at the low bits of the day's draws, the ones Summarize
// counts.
func TestSyntheticDayUsesOrderTable(t *testing.T) {
	t.Parallel()
	l := NewSyntheticLedger(10_000)
	d := day(2026, 3, 4)
	orders, err := l.Day(context.Background(), d, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := l.dayGen(d)
	if len(orders) != g.left {
		t.Fatalf("Day gave %d orders, dayGen %d", len(orders), g.left)
	}
	var counts [orderSlots]uint32
	for i, o := range orders {
		x := g.rng.next()
		if want := orderByDraw[x&orderSlotMask]; o != want {
			t.Fatalf("order %d is %+v, want %+v", i, o, want)
		}
		counts[x&orderSlotMask]++
	}
	g = l.dayGen(d)
	var got [orderSlots]uint32
	g.count(&got, g.left/3)
	g.count(&got, g.left)
	if g.left != 0 || got != counts {
		t.Errorf("count in two pieces left %d orders and counted differently from Day's draws", g.left)
	}
}

// TestWyrandKnownValues pins the generator: a change to it would change
// every synthetic report.
func TestWyrandKnownValues(t *testing.T) {
	t.Parallel()
	s := wyrand(0)
	got := []uint64{s.next(), s.next(), s.next()}
	// From the reference wyrand (wyhash.h): seed += 0xa0761d6478bd642f,
	// then the xor of the halves of seed * (seed ^ 0xe7037ed1a0b428db).
	want := []uint64{0x111cb3a78f59a58e, 0xceabd938ff4e856d, 0x61fb51318f47d2a4}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("wyrand from 0 mismatch (-want +got):\n%s", diff)
	}
	if got, want := splitmix64(0), uint64(0xe220a8397b1dcdaf); got != want {
		t.Errorf("splitmix64(0) = %#x, want %#x", got, want)
	}
}
