package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/reportd/reportd/internal/redistest"
)

// TestStoreCancel runs the Store's cancel contract against every Redis backend: the marker, the record
// of a job canceled before it ran, SaveReport's refusal, and Forget.
func TestStoreCancel(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		rdb := b.Client(t)
		s := NewStore(rdb, testRetention, testTombstone)
		ctx := context.Background()

		t.Run("marker", func(t *testing.T) {
			t.Parallel()
			id := uuid.NewString()
			if ok, err := s.CancelRequested(ctx, id); err != nil || ok {
				t.Fatalf("CancelRequested before RequestCancel = %v, %v; want false, nil", ok, err)
			}
			const lifetime = 7 * time.Hour
			if err := s.RequestCancel(ctx, id, lifetime); err != nil {
				t.Fatalf("RequestCancel: %v", err)
			}
			if ok, err := s.CancelRequested(ctx, id); err != nil || !ok {
				t.Fatalf("CancelRequested after RequestCancel = %v, %v; want true, nil", ok, err)
			}
			checkTTL(t, rdb, cancelKey(id), lifetime)
			if err := s.RequestCancel(ctx, id, lifetime); err != nil {
				t.Errorf("a second RequestCancel: %v", err)
			}
			if ok, err := s.CancelRequested(ctx, uuid.NewString()); err != nil || ok {
				t.Errorf("CancelRequested of another job = %v, %v; want false, nil", ok, err)
			}
		})

		t.Run("canceled-record", func(t *testing.T) {
			t.Parallel()
			id := uuid.NewString()
			if _, ok, err := s.CanceledJob(ctx, id); err != nil || ok {
				t.Fatalf("CanceledJob before the cancel = %v, %v; want false, nil", ok, err)
			}
			at := time.Date(2026, 4, 2, 10, 0, 0, 123456789, time.UTC)
			for _, want := range []Canceled{
				{CreatedAt: at.Add(-time.Minute), Range: "2026-01-01..2026-03-31", CanceledAt: at},
				{CreatedAt: at.Add(-time.Minute), Range: "2026-01-01..2026-03-31", CanceledAt: at, StartedAt: at.Add(-30 * time.Second), Attempt: 2, Progress: 0.25},
			} {
				if got, err := s.RecordEnd(ctx, EndRecord{ID: id, Client: "acme", Outcome: "canceled", Final: true, Canceled: &want}); err != nil || got != "canceled" {
					t.Fatalf("RecordEnd canceled = %q, %v", got, err)
				}
				got, ok, err := s.CanceledJob(ctx, id)
				if err != nil || !ok {
					t.Fatalf("CanceledJob = %v, %v; want the record", ok, err)
				}
				if diff := cmp.Diff(want, got, cmpopts.EquateApproxTime(0)); diff != "" {
					t.Errorf("CanceledJob (-want +got):\n%s", diff)
				}
				checkTTL(t, rdb, canceledKey(id), testRetention)
			}
			if err := rdb.Set(ctx, canceledKey(id), "{not json", time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.CanceledJob(ctx, id); err == nil {
				t.Error("CanceledJob of a corrupt record succeeded")
			}
		})

		t.Run("save-report-refused-after-cancel", func(t *testing.T) {
			t.Parallel()
			id := uuid.NewString()
			const lifetime = 5 * time.Hour
			if err := s.RequestCancel(ctx, id, lifetime); err != nil {
				t.Fatal(err)
			}
			if got, err := endDone(ctx, s, id, "acme", []byte(`{"orders":3}`)); err != nil || got != "canceled" {
				t.Fatalf("RecordEnd done of a canceled job = %q, %v; want it ended canceled", got, err)
			}
			if _, err := s.Report(ctx, id); !errors.Is(err, ErrNoReport) {
				t.Errorf("Report after a refused save = %v, want ErrNoReport", err)
			}
			if n, err := rdb.Exists(ctx, reportKey(id)).Result(); err != nil || n != 0 {
				t.Errorf("report key exists after a refused save: %d, %v", n, err)
			}
			// The job ended all the same: its id answers 410 once it expires.
			checkTTL(t, rdb, tombstoneKey(id), testRetention+testTombstone)
		})

		t.Run("forget", func(t *testing.T) {
			t.Parallel()
			id := uuid.NewString()
			if _, err := endDone(ctx, s, id, "acme", []byte(`{"orders":3}`)); err != nil {
				t.Fatal(err)
			}
			if err := s.RequestCancel(ctx, id, time.Hour); err != nil {
				t.Fatal(err)
			}
			if err := rdb.Set(ctx, canceledKey(id), `{"range":"2026-01-01..2026-01-31"}`, time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteJob(ctx, id, "acme", testTombstone); err != nil {
				t.Fatalf("Forget: %v", err)
			}
			if _, err := s.Report(ctx, id); !errors.Is(err, ErrNoReport) {
				t.Errorf("Report after Forget = %v, want ErrNoReport", err)
			}
			if _, ok, err := s.CanceledJob(ctx, id); err != nil || ok {
				t.Errorf("CanceledJob after Forget = %v, %v; want false, nil", ok, err)
			}
			if ok, err := s.CancelRequested(ctx, id); err != nil || ok {
				t.Errorf("CancelRequested after Forget = %v, %v; want false, nil", ok, err)
			}
			// The id answers 410 for as long as it was told to keep the tombstone.
			if ok, err := tombstoneExists(ctx, s, id); err != nil || !ok {
				t.Errorf("TombstoneExists after Forget = %v, %v; want true, nil", ok, err)
			}
			checkTTL(t, rdb, tombstoneKey(id), testTombstone)
			if err := s.DeleteJob(ctx, id, "acme", testTombstone); err != nil {
				t.Errorf("a second Forget: %v", err)
			}
			if err := s.DeleteJob(ctx, uuid.NewString(), "acme", testTombstone); err != nil {
				t.Errorf("Forget of a job never seen: %v", err)
			}
			// Nothing left to keep (a tombstone period of zero): the tombstone goes too, and is never
			// written without a TTL.
			if err := s.DeleteJob(ctx, id, "acme", 0); err != nil {
				t.Fatalf("Forget with nothing to keep: %v", err)
			}
			if ok, err := tombstoneExists(ctx, s, id); err != nil || ok {
				t.Errorf("TombstoneExists after Forget with nothing to keep = %v, %v; want false, nil", ok, err)
			}
		})
	})
}
