package report

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// TestAppendJSONIsMarshal: AppendJSON writes exactly what encoding/json's Marshal writes, for reports
// of every shape the summary makes and for the odd ones it does not.
func TestAppendJSONIsMarshal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var reports []Report
	for _, s := range []string{"2026-01-01..2026-01-01", "2026-02", "2026-Q1", "2024-02-27..2024-03-02"} {
		r, err := ParseRange(s)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Summarize(ctx, NewSyntheticLedger(500), r, counted, nil)
		if err != nil {
			t.Fatal(err)
		}
		rep.ID, rep.GeneratedAt = "0f8fad5b-d9cb-469f-a165-70867728950e", time.Date(2026, 4, 2, 10, 0, 0, 123456789, time.UTC)
		reports = append(reports, rep)
	}
	reports = append(reports,
		Report{},
		Report{ID: `quote " backslash \ <tag> & é`, GeneratedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("X", 3600)),
			ByRegion: []RegionTotal{{Region: "ünïcode\n", Totals: Totals{Orders: -1}}}, ByProduct: []ProductTotal{}, ByDay: []DayTotal{}})
	for i, rep := range reports {
		want, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		if got := rep.AppendJSON(nil); string(got) != string(want) {
			t.Errorf("report %d:\nAppendJSON %s\nMarshal    %s", i, got, want)
		}
	}
}

func BenchmarkReportJSON(b *testing.B) {
	r, _ := ParseRange("2026-01-01..2026-01-01")
	rep, _ := Summarize(context.Background(), NewSyntheticLedger(1000), r, counted, nil)
	b.Run("Marshal", func(b *testing.B) {
		for b.Loop() {
			_, _ = json.Marshal(rep)
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		for b.Loop() {
			_ = rep.AppendJSON(make([]byte, 0, 4096))
		}
	})
}
