package impl

import (
	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/report"
)

// toReport converts a stored report to the API's Report.
func toReport(r report.Report) (gen.Report, error) {
	id, err := parseID(r.ID)
	if err != nil {
		return gen.Report{}, err
	}
	from, err := parseDate(r.Range.From)
	if err != nil {
		return gen.Report{}, err
	}
	to, err := parseDate(r.Range.To)
	if err != nil {
		return gen.Report{}, err
	}
	out := gen.Report{
		Id:           id,
		Range:        gen.DateRange{From: from, To: to},
		GeneratedAt:  r.GeneratedAt.UTC(),
		Orders:       r.Orders,
		Units:        r.Units,
		RevenueCents: r.RevenueCents,
		ByRegion:     make([]gen.RegionTotals, 0, len(r.ByRegion)),
		ByProduct:    make([]gen.ProductTotals, 0, len(r.ByProduct)),
		ByDay:        make([]gen.DayTotals, 0, len(r.ByDay)),
	}
	for _, t := range r.ByRegion {
		out.ByRegion = append(out.ByRegion, gen.RegionTotals{Region: t.Region, Orders: t.Orders, Units: t.Units, RevenueCents: t.RevenueCents})
	}
	for _, t := range r.ByProduct {
		out.ByProduct = append(out.ByProduct, gen.ProductTotals{Product: t.Product, Orders: t.Orders, Units: t.Units, RevenueCents: t.RevenueCents})
	}
	for _, t := range r.ByDay {
		d, err := parseDate(t.Date)
		if err != nil {
			return gen.Report{}, err
		}
		out.ByDay = append(out.ByDay, gen.DayTotals{Date: d, Orders: t.Orders, Units: t.Units, RevenueCents: t.RevenueCents})
	}
	return out, nil
}
