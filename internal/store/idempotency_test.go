package store

import (
	"context"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/reportd/reportd/internal/redistest"
)

// submission is a Submission of a new job id.
func submission(fp string) Submission {
	return Submission{Fingerprint: fp, JobID: uuid.NewString(), CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
}

// TestClaimIdempotencyKey runs the key's contract against every Redis backend: the first claim wins and
// every later one gets its record, however many arrive at once.
func TestClaimIdempotencyKey(t *testing.T) {
	t.Parallel()
	equate := cmpopts.EquateApproxTime(0)
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		rdb := b.Client(t)
		s := NewStore(rdb, testRetention, testTombstone)
		ctx := context.Background()

		t.Run("first-wins", func(t *testing.T) {
			t.Parallel()
			key := "k-" + uuid.NewString()
			first, second := submission("fp-1"), submission("fp-2")
			const ttl = 3 * time.Hour
			got, mine, err := claimKey(ctx, s, "alice", key, first, ttl)
			if err != nil || !mine {
				t.Fatalf("first claim = %v, %v; want it won", mine, err)
			}
			if diff := cmp.Diff(first, got, equate); diff != "" {
				t.Errorf("first claim's record (-want +got):\n%s", diff)
			}
			checkTTL(t, rdb, idempotencyKey("alice", key), ttl)

			got, mine, err = claimKey(ctx, s, "alice", key, second, ttl)
			if err != nil || mine {
				t.Fatalf("second claim = %v, %v; want it lost", mine, err)
			}
			if diff := cmp.Diff(first, got, equate); diff != "" {
				t.Errorf("second claim gets the first's record (-want +got):\n%s", diff)
			}

			// Keys are per client, and per key.
			if _, mine, err := claimKey(ctx, s, "bob", key, second, ttl); err != nil || !mine {
				t.Errorf("another client's claim of the same key = %v, %v; want it won", mine, err)
			}
			if _, mine, err := claimKey(ctx, s, "alice", key+"x", second, ttl); err != nil || !mine {
				t.Errorf("a claim of another key = %v, %v; want it won", mine, err)
			}
		})

		t.Run("concurrent", func(t *testing.T) {
			t.Parallel()
			key := "k-" + uuid.NewString()
			const n = 50
			type claim struct {
				sub, got Submission
				mine     bool
				err      error
			}
			claims := make([]claim, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range claims {
				claims[i].sub = submission("fp")
				wg.Go(func() {
					<-start
					c := &claims[i]
					c.got, c.mine, c.err = claimKey(ctx, s, "alice", key, c.sub, time.Hour)
				})
			}
			close(start)
			wg.Wait()
			var winners []Submission
			for _, c := range claims {
				if c.err != nil {
					t.Fatalf("claim: %v", c.err)
				}
				if c.mine {
					winners = append(winners, c.sub)
				}
			}
			if len(winners) != 1 {
				t.Fatalf("%d of %d concurrent claims won, want exactly 1", len(winners), n)
			}
			for i, c := range claims {
				if diff := cmp.Diff(winners[0], c.got, equate); diff != "" {
					t.Errorf("claim %d's record is not the winner's (-want +got):\n%s", i, diff)
				}
			}
		})

		t.Run("claimable-again-once-expired", func(t *testing.T) {
			t.Parallel()
			key := "k-" + uuid.NewString()
			if _, mine, err := claimKey(ctx, s, "alice", key, submission("fp-1"), 100*time.Millisecond); err != nil || !mine {
				t.Fatalf("first claim = %v, %v", mine, err)
			}
			time.Sleep(250 * time.Millisecond)
			next := submission("fp-2")
			got, mine, err := claimKey(ctx, s, "alice", key, next, time.Hour)
			if err != nil || !mine || got.JobID != next.JobID {
				t.Errorf("claim after the record expired = %+v, %v, %v; want it won", got, mine, err)
			}
		})

		t.Run("any-key-is-a-safe-redis-key", func(t *testing.T) {
			t.Parallel()
			key := "a key: with {braces}, spaces and \x00 bytes " + uuid.NewString()
			if _, mine, err := claimKey(ctx, s, "alice", key, submission("fp"), time.Hour); err != nil || !mine {
				t.Fatalf("claim = %v, %v", mine, err)
			}
			name := idempotencyKey("alice", key)
			if !regexp.MustCompile(`^reportd:client:\{alice\}:idem:[0-9a-f]{64}$`).MatchString(name) {
				t.Errorf("Redis key %q is not the client and a hash of the key", name)
			}
			if n, err := rdb.Exists(ctx, name).Result(); err != nil || n != 1 {
				t.Errorf("record %s: %d, %v", name, n, err)
			}
		})

		t.Run("corrupt-record", func(t *testing.T) {
			t.Parallel()
			key := "k-" + uuid.NewString()
			if err := rdb.Set(ctx, idempotencyKey("alice", key), "{not json", time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
			if _, mine, err := claimKey(ctx, s, "alice", key, submission("fp"), time.Hour); err == nil || mine {
				t.Errorf("claim over a corrupt record = %v, %v; want an error", mine, err)
			}
		})
	})
}

func TestClaimIdempotencyKeyUnreachable(t *testing.T) {
	t.Parallel()
	s := unreachableStore(t)
	if _, mine, err := claimKey(context.Background(), s, "alice", "k", submission("fp"), time.Hour); err == nil || mine {
		t.Errorf("claim without a Redis = %v, %v; want an error", mine, err)
	}
}
