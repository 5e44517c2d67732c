package webhook

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reportd/reportd/internal/webhook/webhooktest"
)

func TestNewEvent(t *testing.T) {
	t.Parallel()
	const id = "6ba7b810-9dad-41d1-80b4-00c04fd430c8"
	at := time.Date(2026, 4, 1, 12, 30, 0, 5, time.FixedZone("CEST", 2*3600))
	tests := []struct {
		status string
		want   string // the event as JSON
	}{
		{"done", `{"type":"report.done","timestamp":"2026-04-01T10:30:00.000000005Z","data":{"id":"` + id + `","status":"done",` +
			`"links":{"status":"/v1/reports/` + id + `","result":"/v1/reports/` + id + `/result"}}}`},
		{"failed", `{"type":"report.failed","timestamp":"2026-04-01T10:30:00.000000005Z","data":{"id":"` + id + `","status":"failed",` +
			`"links":{"status":"/v1/reports/` + id + `"}}}`},
		{"canceled", `{"type":"report.canceled","timestamp":"2026-04-01T10:30:00.000000005Z","data":{"id":"` + id + `","status":"canceled",` +
			`"links":{"status":"/v1/reports/` + id + `"}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.status, func(t *testing.T) {
			t.Parallel()
			got, err := json.Marshal(NewEvent(id, tt.status, at))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("NewEvent(%s) as JSON (-want +got):\n%s", tt.status, diff)
			}
			webhooktest.CheckEventSchema(t, got)
		})
	}
}
