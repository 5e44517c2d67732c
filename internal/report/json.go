package report

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends r's JSON to b: the same bytes as encoding/json's Marshal of r, written without
// reflection, since a worker encodes a report for every job it runs.
func (r Report) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, r.ID)
	b = append(b, `,"range":{"from":`...)
	b = appendString(b, r.Range.From)
	b = append(b, `,"to":`...)
	b = appendString(b, r.Range.To)
	b = append(b, `},"generated_at":"`...)
	b = r.GeneratedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if r.CountedThrough != "" {
		b = append(b, `,"counted_through":`...)
		b = appendString(b, r.CountedThrough)
	}
	b = appendTotals(b, Totals{Orders: r.Orders, Units: r.Units, RevenueCents: r.RevenueCents})
	b = append(b, `,"by_region":`...)
	b = appendList(b, r.ByRegion, func(b []byte, t RegionTotal) []byte {
		return appendTotals(appendString(append(b, `{"region":`...), t.Region), t.Totals)
	})
	b = append(b, `,"by_product":`...)
	b = appendList(b, r.ByProduct, func(b []byte, t ProductTotal) []byte {
		return appendTotals(appendString(append(b, `{"product":`...), t.Product), t.Totals)
	})
	b = append(b, `,"by_day":`...)
	b = appendList(b, r.ByDay, func(b []byte, t DayTotal) []byte {
		return appendTotals(appendString(append(b, `{"date":`...), t.Date), t.Totals)
	})
	return append(b, '}')
}

// appendTotals appends t's members, after a comma, and closes the object of a breakdown entry; the
// report's own totals are followed by more members, so its closing brace is left to the caller.
func appendTotals(b []byte, t Totals) []byte {
	b = append(b, `,"orders":`...)
	b = strconv.AppendInt(b, t.Orders, 10)
	b = append(b, `,"units":`...)
	b = strconv.AppendInt(b, t.Units, 10)
	b = append(b, `,"revenue_cents":`...)
	return strconv.AppendInt(b, t.RevenueCents, 10)
}

// appendList appends xs as a JSON array of objects, each closed after item appends its members; a nil
// slice is null, as encoding/json writes it.
func appendList[T any](b []byte, xs []T, item func([]byte, T) []byte) []byte {
	if xs == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, x := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(item(b, x), '}')
	}
	return append(b, ']')
}

// appendString appends s as a JSON string. Names and dates are plain ASCII; anything else takes
// encoding/json's path, so that escaping is always its own.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= utf8.RuneSelf {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
