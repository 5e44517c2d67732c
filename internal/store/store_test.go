package store

import (
	"context"
	"errors"
	"github.com/google/go-cmp/cmp"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/reportd/reportd/internal/redistest"
)

const (
	testRetention = 24 * time.Hour
	testTombstone = 720 * time.Hour
)

// checkTTL fails t unless key's TTL is want, less at most a few seconds for the time the test took.
func checkTTL(t *testing.T, rdb redis.UniversalClient, key string, want time.Duration) {
	t.Helper()
	got, err := rdb.TTL(context.Background(), key).Result()
	if err != nil {
		t.Fatalf("TTL %s: %v", key, err)
	}
	if got > want || got < want-5*time.Second {
		t.Errorf("TTL of %s = %s, want %s", key, got, want)
	}
}

// unreachableStore is a Store on a Redis that cannot be reached, whose client gives up at once.
func unreachableStore(t *testing.T) *Store {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1,
		DialerRetries: 1, DialerRetryTimeout: time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	return NewStore(rdb, testRetention, testTombstone)
}

// TestStore runs the Store's contract against every Redis backend.
func TestStore(t *testing.T) {
	t.Parallel()
	for _, b := range redistest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			rdb := b.Client(t)
			s := NewStore(rdb, testRetention, testTombstone)
			ctx := context.Background()

			t.Run("tombstone", func(t *testing.T) {
				t.Parallel()
				id := uuid.NewString()
				if ok, err := tombstoneExists(ctx, s, id); err != nil || ok {
					t.Fatalf("TombstoneExists before the job ended = %v, %v; want false, nil", ok, err)
				}
				progress := `{"progress":0.5,"outcome":"failed"}`
				if _, err := s.RecordEnd(ctx, EndRecord{ID: id, Client: "acme", Outcome: "failed", Final: true, Progress: []byte(progress)}); err != nil {
					t.Fatalf("RecordEnd: %v", err)
				}
				want := Tombstone{Owner: "acme", Outcome: "failed", Progress: []byte(progress)}
				if tomb, ok, err := s.Tombstone(ctx, id); err != nil || !ok || !cmp.Equal(tomb, want) {
					t.Fatalf("Tombstone after the job ended = %+v, %v, %v; want acme's, with the end record %+v", tomb, ok, err, want)
				}
				// Without the attempt's progress (and as a delete writes it): the owner alone.
				bare := uuid.NewString()
				if _, err := s.RecordEnd(ctx, EndRecord{ID: bare, Client: "a b\nc", Outcome: "failed", Final: true}); err != nil {
					t.Fatalf("RecordEnd: %v", err)
				}
				if tomb, ok, err := s.Tombstone(ctx, bare); err != nil || !ok || !cmp.Equal(tomb, Tombstone{Owner: "a b\nc"}) {
					t.Fatalf("Tombstone without an end record = %+v, %v, %v; want the owner alone", tomb, ok, err)
				}
				checkTTL(t, rdb, tombstoneKey(id), testRetention+testTombstone)
				if ok, err := tombstoneExists(ctx, s, uuid.NewString()); err != nil || ok {
					t.Errorf("TombstoneExists of another id = %v, %v; want false, nil", ok, err)
				}
			})

			t.Run("tombstone-lifetime", func(t *testing.T) {
				t.Parallel()
				// The tombstone runs out the tombstone period after the job stops being readable, counted
				// from the finish: whenever the end is written, and however long the job was readable.
				id := uuid.NewString()
				finished := time.Now().Add(-time.Hour)
				e := EndRecord{ID: id, Client: "acme", Outcome: "failed", Final: true, FinishedAt: finished, ExpiresAt: finished.Add(2 * time.Hour)}
				if _, err := s.RecordEnd(ctx, e); err != nil {
					t.Fatalf("RecordEnd: %v", err)
				}
				checkTTL(t, rdb, tombstoneKey(id), 2*time.Hour+testTombstone)
			})

			t.Run("report-round-trip", func(t *testing.T) {
				t.Parallel()
				id := uuid.NewString()
				body := []byte(`{"id":"` + id + `","orders":3}`)
				before := time.Now()
				if got, err := endDone(ctx, s, id, "acme", body); err != nil || got != "done" {
					t.Fatalf("RecordEnd done = %q, %v", got, err)
				}
				got, err := s.Report(ctx, id)
				if err != nil {
					t.Fatalf("Report: %v", err)
				}
				if string(got.Body) != string(body) || got.Owner != "acme" {
					t.Errorf("Report = %s of %q, want %s of acme", got.Body, got.Owner, body)
				}
				// Readable until the finish, cut to the second, plus the retention.
				if lo, hi := before.Truncate(time.Second).Add(testRetention), time.Now().Add(testRetention); got.ReadableUntil.Before(lo) ||
					got.ReadableUntil.After(hi) || !got.ReadableUntil.Equal(got.ReadableUntil.Truncate(time.Second)) {
					t.Errorf("Report readable until %s, want a whole second in [%s, %s]", got.ReadableUntil, lo, hi)
				}
				checkTTL(t, rdb, reportKey(id), testRetention+resultSlack)
				// The end writes the tombstone: the id answers 410 for the tombstone period after the job
				// stops being readable, and no longer (the report's slack is not the tombstone's).
				checkTTL(t, rdb, tombstoneKey(id), testRetention+testTombstone)
				if ok, err := tombstoneExists(ctx, s, id); err != nil || !ok {
					t.Errorf("TombstoneExists after the end = %v, %v; want true, nil", ok, err)
				}
			})

			t.Run("report-saved-twice", func(t *testing.T) {
				t.Parallel()
				id := uuid.NewString()
				for _, body := range []string{`{"attempt":1}`, `{"attempt":2}`} {
					if _, err := endDone(ctx, s, id, "acme", []byte(body)); err != nil {
						t.Fatalf("RecordEnd: %v", err)
					}
				}
				if got, err := s.Report(ctx, id); err != nil || string(got.Body) != `{"attempt":2}` {
					t.Errorf("Report = %s, %v; want the last save", got, err)
				}
			})

			t.Run("report-unknown", func(t *testing.T) {
				t.Parallel()
				_, err := s.Report(ctx, uuid.NewString())
				if !errors.Is(err, ErrNoReport) {
					t.Errorf("Report of an unknown id = %v, want an error wrapping ErrNoReport", err)
				}
			})
		})
	}
}

// TestStoreUnreachable checks that a Redis that cannot be reached is an error, and never reads as
// "no report" or "no tombstone".
func TestStoreUnreachable(t *testing.T) {
	t.Parallel()
	s := unreachableStore(t)
	ctx := context.Background()
	if _, err := s.Report(ctx, "x"); err == nil || errors.Is(err, ErrNoReport) {
		t.Errorf("Report = %v, want an error that is not ErrNoReport", err)
	}
	if _, err := tombstoneExists(ctx, s, "x"); err == nil {
		t.Error("TombstoneExists succeeded without a Redis")
	}
	if _, err := endDone(ctx, s, "x", "acme", []byte("{}")); err == nil {
		t.Error("RecordEnd succeeded without a Redis")
	}
}

// tombstoneExists is Store.Tombstone without the owner.
func tombstoneExists(ctx context.Context, s *Store, id string) (bool, error) {
	_, ok, err := s.Tombstone(ctx, id)
	return ok, err
}
