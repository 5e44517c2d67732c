package report

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/reportd/reportd/internal/testkit"
)

func TestSummaryCSVGolden(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := goldenReport(t).WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	testkit.Golden(t, "testdata/summary.csv.golden", buf.Bytes())
}

func TestWriteCSV(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		rep  Report
		want string
	}{
		{name: "no-days", rep: Report{}, want: "date,orders,units,revenue_cents\n"},
		{name: "days", rep: Report{ByDay: []DayTotal{
			{Date: "2026-01-01", Totals: Totals{Orders: 2, Units: 3, RevenueCents: 4599}},
			{Date: "2026-01-02"},
		}}, want: "date,orders,units,revenue_cents\n2026-01-01,2,3,4599\n2026-01-02,0,0,0\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			if err := tt.rep.WriteCSV(&buf); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, buf.String()); diff != "" {
				t.Errorf("WriteCSV mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

func TestWriteCSVError(t *testing.T) {
	t.Parallel()
	errDisk := errors.New("disk full")
	err := goldenReport(t).WriteCSV(failingWriter{errDisk})
	if !errors.Is(err, errDisk) {
		t.Errorf("WriteCSV error %v, want one wrapping %v", err, errDisk)
	}
}

func TestCSVFilename(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		rng  ReportRange
		want string
	}{
		{name: "quarter", rng: ReportRange{From: "2026-01-01", To: "2026-03-31"}, want: "report-2026-01-01_2026-03-31.csv"},
		{name: "one-day", rng: ReportRange{From: "2026-07-04", To: "2026-07-04"}, want: "report-2026-07-04_2026-07-04.csv"},
		{name: "no-range", want: "report.csv"},
		{name: "header-injection", rng: ReportRange{From: "2026-01-01\"\r\nX: y", To: "../2026-01-02"}, want: "report-2026-01-01Xy_2026-01-02.csv"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Report{Range: tt.rng}.CSVFilename()
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("CSVFilename mismatch (-want +got):\n%s", diff)
			}
			if strings.ContainsAny(got, "\"\r\n/\\") {
				t.Errorf("CSVFilename %q has an unsafe character", got)
			}
		})
	}
}
