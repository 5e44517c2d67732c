package report

import (
	"context"
	"fmt"
	"math/bits"
	"slices"
	"time"
)

// Order is one order line of the ledger. Money is in integer cents.
type Order struct {
	Region         uint8 // index into Regions
	Product        uint8 // index into Products
	Units          int64 // small positive integer
	UnitPriceCents int64
}

// Ledger is the source of orders; a SQL or file ledger can replace the
// synthetic one.
type Ledger interface {
	// Day appends the orders of one calendar day (00:00 UTC) to buf and returns it.
	Day(ctx context.Context, day time.Time, buf []Order) ([]Order, error)
}

// regionSpec is a sales region and its share of orders out of 256.
type regionSpec struct {
	name   string
	weight int
}

var regionSpecs = [...]regionSpec{
	{"emea-north", 60},
	{"emea-south", 30},
	{"amer-east", 70},
	{"amer-west", 50},
	{"apac-north", 30},
	{"apac-south", 16},
}

// productSpec is a product, its list price, and its relative popularity.
type productSpec struct {
	name       string
	priceCents int64
	weight     int
}

var productSpecs = [...]productSpec{
	{"USB-C Cable 1m", 999, 90},
	{"USB-C Cable 2m", 1499, 60},
	{"Wireless Mouse", 2999, 70},
	{"Ergonomic Mouse", 5999, 25},
	{"Mechanical Keyboard", 11999, 30},
	{"Compact Keyboard", 6999, 28},
	{"27in Monitor", 32999, 22},
	{"32in 4K Monitor", 54999, 10},
	{"Laptop Stand", 4499, 32},
	{"Monitor Arm", 8999, 16},
	{"Webcam 1080p", 6999, 26},
	{"Webcam 4K", 17999, 9},
	{"Noise-Cancelling Headphones", 29999, 18},
	{"Wireless Earbuds", 14999, 34},
	{"USB Headset", 4999, 24},
	{"Desk Lamp", 3999, 20},
	{"Standing Desk", 49999, 8},
	{"Office Chair", 34999, 10},
	{"Docking Station", 19999, 14},
	{"USB-C Hub", 4999, 40},
	{"Portable SSD 1TB", 11999, 22},
	{"Portable SSD 2TB", 19999, 12},
	{"microSD Card 128GB", 1999, 45},
	{"Power Bank 20000mAh", 4999, 30},
	{"65W USB-C Charger", 3999, 48},
	{"HDMI Cable 2m", 1299, 50},
	{"Ethernet Cable 5m", 899, 38},
	{"Wi-Fi 6 Router", 15999, 12},
	{"Mesh Wi-Fi Kit", 29999, 6},
	{"Smart Plug", 1999, 30},
	{"Mouse Pad XL", 2499, 36},
	{"Cable Organizer", 1499, 26},
	{"Laptop Sleeve 14in", 2999, 22},
	{"Backpack", 7999, 18},
	{"Label Printer", 8999, 7},
	{"Document Scanner", 27999, 5},
}

const (
	numRegions  = len(regionSpecs)
	numProducts = len(productSpecs)
)

// Regions lists the sales regions; Order.Region indexes it. Treat it as
// read-only: reports name regions from the package's own copy.
var Regions = func() []string {
	s := make([]string, numRegions)
	for i, r := range regionSpecs {
		s[i] = r.name
	}
	return s
}()

// Products lists the products; Order.Product indexes it. Each has a fixed
// list price in cents that the synthetic ledger sells it at, less an
// occasional discount. Treat it as read-only: reports name products from the
// package's own copy.
var Products = func() []string {
	s := make([]string, numProducts)
	for i, p := range productSpecs {
		s[i] = p.name
	}
	return s
}()

// DefaultRowsPerDay is the mean number of orders a day that the service's
// synthetic ledger holds. It is sized so that summarizing a quarter takes
// 2-4 s on one core. Measured on the development machine (AMD EPYC, 2 cores,
// Go 1.26) by timing Summarize over each quarter of 2026 with
// time.Now/time.Since in a throwaway test run under GOMAXPROCS=1: Q1 2.9 s
// (3.31G orders), Q2 2.6 s (3.00G), Q3 2.8 s (3.24G), Q4 3.2 s (3.61G),
// about 0.88 ns an order, which agrees with BenchmarkSummarize (about 1.1G
// orders/s). Summarize's memory does not grow with it, but a consumer of
// Ledger.Day holds a whole day at once: up to about 48M orders, 1.1 GB.
const DefaultRowsPerDay = 36_000_000

// maxRowsPerDay bounds rowsPerDay so the day-size arithmetic cannot overflow
// and the count fits an int on 32-bit platforms.
const maxRowsPerDay = 1 << 30

// syntheticSeedSalt is mixed into each day number before it seeds the day's
// generator. Changing it changes every synthetic order.
const syntheticSeedSalt = 0x5eed_0f7e_d6e5_0001

// SyntheticLedger is a deterministic, made-up Ledger. The orders of a
// calendar day depend only on that date and the ledger's rows per day: two
// ledgers, processes or Go versions give the same orders for the same day.
// Its zero value is a ledger with DefaultRowsPerDay.
type SyntheticLedger struct {
	rowsPerDay int
}

// NewSyntheticLedger returns a synthetic ledger whose days hold about
// rowsPerDay orders each: fewer at weekends and in early summer, more before
// Christmas, within about ±35% in all, and never fewer than one. rowsPerDay < 1
// means DefaultRowsPerDay.
func NewSyntheticLedger(rowsPerDay int) *SyntheticLedger {
	return &SyntheticLedger{rowsPerDay: rowsPerDay}
}

// Day appends the orders of day's UTC calendar date to buf and returns it.
// It returns ctx.Err(), wrapped, if ctx is done while it works. A day holds
// up to about 1.3 times the rows per day, 24 bytes each. Summarize does not
// call Day for a SyntheticLedger: it makes the same draws and counts them
// per slot of orderByDraw, which gives the totals of the same orders.
func (l *SyntheticLedger) Day(ctx context.Context, day time.Time, buf []Order) ([]Order, error) {
	g := l.dayGen(day)
	buf = slices.Grow(buf, g.left)
	for g.left > 0 {
		if err := ctx.Err(); err != nil {
			return buf, fmt.Errorf("synthetic ledger %s: %w", day.UTC().Format(rangeDateLayout), err)
		}
		n := min(g.left, syntheticChunk)
		start := len(buf)
		buf = buf[:start+n]
		g.fill(buf[start:])
	}
	return buf, nil
}

// syntheticChunk is how many orders SyntheticLedger.Day generates between
// looks at its context.
const syntheticChunk = 4096

// orderGen generates the orders of one synthetic day, in order, in pieces.
type orderGen struct {
	rng  wyrand
	left int // orders still to generate
}

// dayGen starts the generator for day's UTC calendar date.
func (l *SyntheticLedger) dayGen(day time.Time) orderGen {
	rows := l.rowsPerDay
	if rows < 1 {
		rows = DefaultRowsPerDay
	}
	rows = min(rows, maxRowsPerDay)
	y, m, d := day.UTC().Date()
	date := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	epochDay := date.Unix() / secondsPerDay
	g := orderGen{rng: wyrand(splitmix64(uint64(epochDay) ^ syntheticSeedSalt))}

	// Day size: weekday and season in integer per-mille, then a ±5% jitter
	// that is the day's first draw.
	n := int64(rows)
	n = n * weekdayPermille[date.Weekday()] / 1000
	n = n * seasonPermille(date.YearDay()) / 1000
	n = n * int64(950+g.rng.next()%101) / 1000
	g.left = int(max(n, 1))
	return g
}

// fill generates the next len(buf) orders of the day into buf (which must
// not be longer than g.left). Each order is one draw, whose low bits pick
// the order's slot of orderByDraw.
func (g *orderGen) fill(buf []Order) {
	s := uint64(g.rng) // a local, so the generator state stays in a register
	for i := range buf {
		var x uint64
		s, x = wyrandNext(s)
		buf[i] = orderByDraw[x&orderSlotMask]
	}
	g.rng = wyrand(s)
	g.left -= len(buf)
}

// count makes the next n draws of the day (n must not exceed g.left), the
// draws fill would turn into orders, and adds one to counts at each draw's
// slot of orderByDraw.
func (g *orderGen) count(counts *[orderSlots]uint32, n int) {
	s := uint64(g.rng) // a local, so the generator state stays in a register
	for range n {
		var x uint64
		s, x = wyrandNext(s)
		counts[x&orderSlotMask]++
	}
	g.rng = wyrand(s)
	g.left -= n
}

// weekdayPermille scales a day's size by weekday (Sunday first); the mean is
// 1000.
var weekdayPermille = [7]int64{780, 1030, 1050, 1060, 1060, 1120, 900}

// seasonPermille scales a day's size by day of year: 1130 around 1 December,
// falling linearly to 870 half a year away (early June).
func seasonPermille(yearDay int) int64 {
	const peak = 335 // 1 December in a common year
	dist := ((yearDay-peak)%365 + 365) % 365
	dist = min(dist, 365-dist) // 0..182
	return 1130 - int64(260*dist/182)
}

// orderSlots is the number of slots of orderByDraw, a power of two so the
// low bits of a draw index it without a bounds check. A day's count of draws
// per slot, orderSlots uint32 counters, is 16 KiB and stays in the L1 cache.
const (
	orderSlots    = 4096
	orderSlotMask = orderSlots - 1
)

// orderByDraw is the order each value of a draw's low bits stands for. Its
// slots follow the catalog's weights: each region holds its weight in 256
// of the slots, each product its weight's share of the products' total
// weight (to within a slot), 1 to 10 units hold 26, 14, 8, 5, 4, 3, 1, 1, 1
// and 1 in 64, and 13 slots in 16 sell at list price, the others 5%, 10%
// or 15% off (rounded down). See buildOrderTable for how the columns are
// paired.
var orderByDraw = buildOrderTable()

// Seeds of the fixed shuffles of buildOrderTable. Changing one changes
// every synthetic order.
const (
	unitsShuffleSeed    = 0x0001_5eed_0f00_0001
	discountShuffleSeed = 0x0001_5eed_0f00_0002
)

// buildOrderTable builds orderByDraw deterministically, with integer
// arithmetic only. Each column (region, product, units, discount) is its
// weights spread over the slots by drawTable, so each marginal holds
// exactly. The columns are then paired so they are not correlated: slot j
// takes the region of row j and the product of row j*g mod orderSlots, with
// g an odd integer next to orderSlots/φ (φ the golden ratio), so each
// region's slots (a run of rows) sample the product column evenly; the
// units and discount columns are shuffled by Fisher-Yates with fixed-seed
// wyrand generators.
func buildOrderTable() (t [orderSlots]Order) {
	var region, product, units, discount [orderSlots]uint8
	drawTable(region[:], weightsOf(regionSpecs[:], func(r regionSpec) int { return r.weight }))
	drawTable(product[:], weightsOf(productSpecs[:], func(p productSpec) int { return p.weight }))
	drawTable(units[:], []int{26, 14, 8, 5, 4, 3, 1, 1, 1, 1}) // index 0 is 1 unit
	drawTable(discount[:], []int{13, 1, 1, 1})                 // index k is 5k% off
	shuffle(units[:], unitsShuffleSeed)
	shuffle(discount[:], discountShuffleSeed)
	g := orderSlots*6_180_339_887/10_000_000_000 | 1 // orderSlots/φ, made odd
	for j := range t {
		p := product[j*g&orderSlotMask]
		list := productSpecs[p].priceCents
		t[j] = Order{
			Region:         region[j],
			Product:        p,
			Units:          int64(units[j]) + 1,
			UnitPriceCents: list * (100 - 5*int64(discount[j])) / 100,
		}
	}
	return t
}

func weightsOf[T any](specs []T, weight func(T) int) []int {
	w := make([]int, len(specs))
	for i, s := range specs {
		w[i] = weight(s)
	}
	return w
}

// drawTable spreads the indices of weights over the slots of t in
// proportion to the weights, using integer arithmetic only: slot j holds
// the index whose cumulative interval contains the midpoint of slot j.
func drawTable(t []uint8, weights []int) {
	total := 0
	for _, w := range weights {
		total += w
	}
	slots := len(t)
	i, cum := 0, weights[0]
	for j := range slots {
		mid := (2*j + 1) * total / (2 * slots)
		for mid >= cum {
			i++
			cum += weights[i]
		}
		t[j] = uint8(i)
	}
}

// shuffle permutes t by a Fisher-Yates shuffle driven by a wyrand generator
// seeded with seed, so the permutation is the same everywhere.
func shuffle(t []uint8, seed uint64) {
	rng := wyrand(seed)
	for i := len(t) - 1; i > 0; i-- {
		j, _ := bits.Mul64(rng.next(), uint64(i+1)) // uniform enough in 0..i
		t[i], t[j] = t[j], t[i]
	}
}

// wyrand is the wyrand generator (Wang Yi's wyhash PRNG): a 64-bit counter
// mixed by one 128-bit multiply. It is written here, not taken from a
// library, so its sequence can never change under us.
type wyrand uint64

func (s *wyrand) next() uint64 {
	var x uint64
	*(*uint64)(s), x = wyrandNext(uint64(*s))
	return x
}

// wyrandNext advances state s and returns it with the next draw.
func wyrandNext(s uint64) (uint64, uint64) {
	s += 0xa0761d6478bd642f
	hi, lo := bits.Mul64(s, s^0xe7037ed1a0b428db)
	return s, hi ^ lo
}

// splitmix64 is the SplitMix64 finalizer; it turns a day number into a
// well-spread generator seed.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}
