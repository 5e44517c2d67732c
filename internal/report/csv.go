package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// WriteCSV writes the report's by_day table to w: the header
// "date,orders,units,revenue_cents", then one row a day, lines ending "\n".
func (r Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"date", "orders", "units", "revenue_cents"}); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	row := make([]string, 4)
	for _, d := range r.ByDay {
		row[0] = d.Date
		row[1] = strconv.FormatInt(d.Orders, 10)
		row[2] = strconv.FormatInt(d.Units, 10)
		row[3] = strconv.FormatInt(d.RevenueCents, 10)
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("write csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

// CSVFilename returns the file name for the report's CSV, such as
// "report-2026-01-01_2026-03-31.csv". Only letters, digits and '-' of the
// range are kept, so the name is safe in a Content-Disposition header; a
// report without a range gets "report.csv".
func (r Report) CSVFilename() string {
	from, to := filenameSafe(r.Range.From), filenameSafe(r.Range.To)
	if from == "" || to == "" {
		return "report.csv"
	}
	return "report-" + from + "_" + to + ".csv"
}

func filenameSafe(s string) string {
	return strings.Map(func(c rune) rune {
		if c == '-' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' {
			return c
		}
		return -1
	}, s)
}
