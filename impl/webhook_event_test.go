package impl_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reportd/reportd/impl"
	"github.com/reportd/reportd/internal/jobs"
	"github.com/reportd/reportd/internal/webhook/webhooktest"
)

func TestWebhookEvent(t *testing.T) {
	t.Parallel()
	const id = "6ba7b810-9dad-41d1-80b4-00c04fd430c8"
	at := time.Date(2026, 4, 1, 12, 30, 0, 5, time.FixedZone("CEST", 2*3600))
	tests := []struct {
		state jobs.State
		want  string // the event as JSON
	}{
		{jobs.Done, `{"type":"report.done","timestamp":"2026-04-01T10:30:00.000000005Z","data":{"id":"` + id + `","status":"done",` +
			`"links":{"status":"/v1/reports/` + id + `","result":"/v1/reports/` + id + `/result"}}}`},
		{jobs.Failed, `{"type":"report.failed","timestamp":"2026-04-01T10:30:00.000000005Z","data":{"id":"` + id + `","status":"failed",` +
			`"links":{"status":"/v1/reports/` + id + `"}}}`},
		{jobs.Canceled, `{"type":"report.canceled","timestamp":"2026-04-01T10:30:00.000000005Z","data":{"id":"` + id + `","status":"canceled",` +
			`"links":{"status":"/v1/reports/` + id + `"}}}`},
	}
	for _, tt := range tests {
		t.Run(string(tt.state), func(t *testing.T) {
			t.Parallel()
			got, err := impl.WebhookEvent(id, tt.state, at)
			if err != nil {
				t.Fatal(err)
			}
			var gotV, wantV any
			if err := json.Unmarshal(got, &gotV); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tt.want), &wantV); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wantV, gotV); diff != "" {
				t.Errorf("WebhookEvent(%s) (-want +got):\n%s", tt.state, diff)
			}
			webhooktest.CheckEventSchema(t, got)
		})
	}
	if _, err := impl.WebhookEvent(id, jobs.Running, at); err == nil {
		t.Error("WebhookEvent of a running job succeeded; only a job that ended is announced")
	}
}
