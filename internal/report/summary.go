package report

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"
)

// Report is the sales summary of a date range; its JSON form is the Report
// schema of openapi.yaml.
type Report struct {
	ID          string      `json:"id"`
	Range       ReportRange `json:"range"`
	GeneratedAt time.Time   `json:"generated_at"`
	// CountedThrough is the last day, "YYYY-MM-DD", whose orders the report
	// counts: the range's last day, or the day it was computed when the range
	// ends after that (later days have not happened and hold no orders).
	// Reports made before it was recorded have none.
	CountedThrough string         `json:"counted_through,omitempty"`
	Orders         int64          `json:"orders"`
	Units          int64          `json:"units"`
	RevenueCents   int64          `json:"revenue_cents"`
	ByRegion       []RegionTotal  `json:"by_region"`
	ByProduct      []ProductTotal `json:"by_product"`
	ByDay          []DayTotal     `json:"by_day"`
}

// ReportRange is the inclusive range of a Report, as "YYYY-MM-DD" days.
type ReportRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Totals counts orders, units and revenue in cents.
type Totals struct {
	Orders       int64 `json:"orders"`
	Units        int64 `json:"units"`
	RevenueCents int64 `json:"revenue_cents"`
}

// RegionTotal is the Totals of one region; Totals is embedded so the JSON
// object is flat.
type RegionTotal struct {
	Region string `json:"region"`
	Totals
}

// ProductTotal is the Totals of one product; Totals is embedded so the JSON
// object is flat.
type ProductTotal struct {
	Product string `json:"product"`
	Totals
}

// DayTotal is the Totals of one "YYYY-MM-DD" day; Totals is embedded so the
// JSON object is flat.
type DayTotal struct {
	Date string `json:"date"`
	Totals
}

// Summarize computes the report over r from l, as of asOf: the days of r
// after asOf's UTC date have not happened, so Summarize does not ask l for
// them and they count no orders (a ledger that invents orders, as
// SyntheticLedger does, invents none for them), and the report's
// CountedThrough says the last day it counted. A range that starts after
// asOf's date gives an error wrapping ErrRangeUnservable. It calls
// onDay(done, total) after each day, counted or not (onDay may be nil).
// When ctx is done it stops within milliseconds and returns an error
// wrapping ctx.Err(), so errors.Is(err, context.Canceled) or
// context.DeadlineExceeded holds.
//
// The report's ID and GeneratedAt are left zero for the caller to fill.
// ByDay has one entry per day of r in ascending order, days without orders
// included; ByRegion and ByProduct have every region and product that sold,
// by revenue descending, then by name. The report's totals equal the sums of
// each breakdown exactly. A range that is empty, reversed or longer than
// MaxRangeDays gives an error wrapping ErrRangeUnservable; an order whose
// region or product is out of range gives an error.
func Summarize(ctx context.Context, l Ledger, r DateRange, asOf time.Time, onDay func(done, total int)) (Report, error) {
	from, days, err := checkRange(r)
	if err != nil {
		return Report{}, err
	}
	today := dayOf(asOf)
	if from.After(today) {
		return Report{}, fmt.Errorf("summarize %s: it starts after %s, the day it is computed on: %w", r, today.Format(rangeDateLayout), ErrRangeUnservable)
	}
	if err := ctx.Err(); err != nil {
		return Report{}, fmt.Errorf("summarize %s: %w", r, err)
	}
	var agg aggregator
	agg.done = ctx.Done()
	byDay := make([]DayTotal, days)
	synth, _ := l.(*SyntheticLedger)
	var buf []Order
	for i := range days {
		day := from.AddDate(0, 0, i)
		var t Totals
		switch {
		case day.After(today): // it has not happened: no orders
		case synth != nil:
			agg.addSynthetic(&t, synth.dayGen(day))
		default:
			buf, err = l.Day(ctx, day, buf[:0])
			if err != nil {
				return Report{}, fmt.Errorf("summarize %s: ledger day %s: %w", r, day.Format(rangeDateLayout), err)
			}
			for rest := buf; len(rest) > 0 && !agg.canceled(); {
				n := min(len(rest), genericChunk)
				if bad := agg.add(&t, rest[:n]); bad >= 0 {
					o := rest[bad]
					return Report{}, fmt.Errorf("summarize %s: ledger day %s: order with region %d of %d, product %d of %d",
						r, day.Format(rangeDateLayout), o.Region, numRegions, o.Product, numProducts)
				}
				rest = rest[n:]
			}
		}
		if err := ctx.Err(); err != nil {
			return Report{}, fmt.Errorf("summarize %s: day %s: %w", r, day.Format(rangeDateLayout), err)
		}
		byDay[i] = DayTotal{Date: day.Format(rangeDateLayout), Totals: t}
		if onDay != nil {
			onDay(i+1, days)
		}
	}
	to := from.AddDate(0, 0, days-1)
	rep := agg.report(from, to, byDay)
	rep.CountedThrough = to.Format(rangeDateLayout)
	if to.After(today) {
		rep.CountedThrough = today.Format(rangeDateLayout)
	}
	return rep, nil
}

// genericChunk is how many orders of a Ledger's day Summarize aggregates
// between looks at its context.
const genericChunk = 1 << 16

// countChunk is how many draws of a SyntheticLedger's day Summarize counts
// between looks at its context: about half a millisecond.
const countChunk = 1 << 19

// checkRange returns r's first day and its number of days, or an error
// wrapping ErrRangeUnservable.
func checkRange(r DateRange) (from time.Time, days int, err error) {
	y, m, d := r.From.UTC().Date()
	from = time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	y, m, d = r.To.UTC().Date()
	to := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	days = DateRange{From: from, To: to}.Days()
	if days < 1 || days > MaxRangeDays {
		return time.Time{}, 0, fmt.Errorf("summarize %s: %d days is not 1..%d: %w", r, days, MaxRangeDays, ErrRangeUnservable)
	}
	return from, days, nil
}

// aggregator accumulates the orders of a range by (region, product) cell;
// the region and product totals are sums of cells at the end.
type aggregator struct {
	cells [numRegions * numProducts]Totals
	done  <-chan struct{}
	// counts holds, while addSynthetic works, the day's number of draws
	// per slot of orderByDraw; it is all zero between calls.
	counts [orderSlots]uint32
}

// addSynthetic adds the orders g generates to day and to the cells, or
// some of them if the context is done (the caller then gives up). It makes
// the draws Day would but only counts them per slot of orderByDraw, then
// adds each slot's order times its count: the same totals, exactly, as
// aggregating the day's orders one by one. A day has fewer than 2^32
// orders, so no count overflows. A day of at most directDraws orders is
// added one draw at a time instead (addDirect), with the same totals.
func (a *aggregator) addSynthetic(day *Totals, g orderGen) {
	if g.left <= directDraws {
		a.addDirect(day, g)
		return
	}
	for g.left > 0 {
		g.count(&a.counts, min(g.left, countChunk))
		if a.canceled() {
			break
		}
	}
	var units, revenue int64
	for j, c := range &a.counts {
		if c == 0 {
			continue
		}
		a.counts[j] = 0
		n := int64(c)
		o := &orderByDraw[j]
		u, rev := n*o.Units, n*o.Units*o.UnitPriceCents
		units += u
		revenue += rev
		cell := &a.cells[int(o.Region)*numProducts+int(o.Product)]
		cell.Orders += n
		cell.Units += u
		cell.RevenueCents += rev
		day.Orders += n
	}
	day.Units += units
	day.RevenueCents += revenue
}

// directDraws is the most draws a day can have for addSynthetic to add each draw's order as it comes
// rather than count the draws per slot first: below it, the scan of all orderSlots counts costs more
// than the draws themselves.
const directDraws = 2 * orderSlots

// addDirect adds the orders of g's whole day to day and to the cells, one draw at a time; a day this
// small takes microseconds, so it does not look at the context.
func (a *aggregator) addDirect(day *Totals, g orderGen) {
	s := uint64(g.rng)
	var units, revenue int64
	for range g.left {
		var x uint64
		s, x = wyrandNext(s)
		d := &drawCells[x&orderSlotMask]
		units += int64(d.units)
		revenue += int64(d.revenue)
		c := &a.cells[d.cell]
		c.Orders++
		c.Units += int64(d.units)
		c.RevenueCents += int64(d.revenue)
	}
	day.Orders += int64(g.left)
	day.Units += units
	day.RevenueCents += revenue
}

// drawCell is a slot of orderByDraw as addDirect needs it: its cell and one order's units and revenue,
// 8 bytes where an Order is 24, so that the table stays in the cache.
type drawCell struct {
	cell    uint16
	units   uint16
	revenue uint32
}

var drawCells = func() (t [orderSlots]drawCell) {
	for j, o := range &orderByDraw {
		if o.Units > math.MaxUint16 || o.Units*o.UnitPriceCents > math.MaxUint32 {
			panic(fmt.Sprintf("report: order slot %d does not fit a drawCell: %+v", j, o))
		}
		t[j] = drawCell{cell: uint16(int(o.Region)*numProducts + int(o.Product)), units: uint16(o.Units), revenue: uint32(o.Units * o.UnitPriceCents)}
	}
	return t
}()

// add adds orders to day and to the cells. It returns the index of the
// first order with a region or product out of range, and -1 if there is none.
func (a *aggregator) add(day *Totals, orders []Order) int {
	var units, revenue int64
	for i := range orders {
		o := &orders[i]
		if int(o.Region) >= numRegions || int(o.Product) >= numProducts {
			// Keep what was added so far consistent; the caller gives up.
			day.Orders += int64(i)
			day.Units += units
			day.RevenueCents += revenue
			return i
		}
		rev := o.Units * o.UnitPriceCents
		units += o.Units
		revenue += rev
		c := &a.cells[int(o.Region)*numProducts+int(o.Product)]
		c.Orders++
		c.Units += o.Units
		c.RevenueCents += rev
	}
	day.Orders += int64(len(orders))
	day.Units += units
	day.RevenueCents += revenue
	return -1
}

// canceled reports, without blocking, whether the context is done.
func (a *aggregator) canceled() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// report assembles the Report from the cells and the days.
func (a *aggregator) report(from, to time.Time, byDay []DayTotal) Report {
	var regions [numRegions]Totals
	var products [numProducts]Totals
	for r := range numRegions {
		for p := range numProducts {
			c := a.cells[r*numProducts+p]
			regions[r].add(c)
			products[p].add(c)
		}
	}
	rep := Report{
		Range:     ReportRange{From: from.Format(rangeDateLayout), To: to.Format(rangeDateLayout)},
		ByRegion:  []RegionTotal{},
		ByProduct: []ProductTotal{},
		ByDay:     byDay,
	}
	for r, t := range regions {
		if t.Orders > 0 {
			rep.ByRegion = append(rep.ByRegion, RegionTotal{Region: regionSpecs[r].name, Totals: t})
		}
	}
	for p, t := range products {
		if t.Orders > 0 {
			rep.ByProduct = append(rep.ByProduct, ProductTotal{Product: productSpecs[p].name, Totals: t})
		}
	}
	slices.SortFunc(rep.ByRegion, func(a, b RegionTotal) int {
		return cmp.Or(cmp.Compare(b.RevenueCents, a.RevenueCents), cmp.Compare(a.Region, b.Region))
	})
	slices.SortFunc(rep.ByProduct, func(a, b ProductTotal) int {
		return cmp.Or(cmp.Compare(b.RevenueCents, a.RevenueCents), cmp.Compare(a.Product, b.Product))
	})
	var total Totals
	for _, d := range byDay {
		total.add(d.Totals)
	}
	rep.Orders, rep.Units, rep.RevenueCents = total.Orders, total.Units, total.RevenueCents
	return rep
}

func (t *Totals) add(u Totals) {
	t.Orders += u.Orders
	t.Units += u.Units
	t.RevenueCents += u.RevenueCents
}
