package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/reportd/reportd/internal/redistest"
)

// TestAllowSubmit runs the per-client GCRA limiter against every Redis backend.
func TestAllowSubmit(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		s := NewStore(b.Client(t), testRetention, testTombstone)
		ctx := context.Background()
		allow := func(client string, perSecond float64, burst int) (bool, time.Duration) {
			t.Helper()
			ok, wait, err := allowOnce(ctx, s, client, perSecond, burst)
			if err != nil {
				t.Fatalf("Admit(%s): %v", client, err)
			}
			if ok && wait != 0 || !ok && wait <= 0 {
				t.Fatalf("Admit(%s) = %v with wait %s: an allowed call waits 0, a refused one more", client, ok, wait)
			}
			return ok, wait
		}

		t.Run("burst", func(t *testing.T) {
			for i := 1; i <= 5; i++ {
				if ok, _ := allow("burst", 1, 5); !ok {
					t.Fatalf("call %d of a burst of 5 refused", i)
				}
			}
			ok, wait := allow("burst", 1, 5)
			if ok {
				t.Fatal("6th call of a burst of 5 allowed")
			}
			if wait > time.Second || wait < 800*time.Millisecond {
				t.Errorf("wait after the burst at 1/s: %s, want just under 1s", wait)
			}
			// Refused calls take nothing: the wait only shrinks.
			for range 5 {
				if ok, again := allow("burst", 1, 5); ok || again > wait {
					t.Fatalf("refused call: %v, wait %s after %s", ok, again, wait)
				}
			}
			// Another client has its own allowance.
			for i := 1; i <= 5; i++ {
				if ok, _ := allow("other", 1, 5); !ok {
					t.Fatalf("other client's call %d refused", i)
				}
			}
			// The state expires once it no longer limits anything.
			ttl, err := s.rdb.PTTL(ctx, clientRateKey("burst")).Result()
			if err != nil || ttl <= 0 || ttl > 6*time.Second+time.Second {
				t.Errorf("TTL of the limiter state: %s, %v; want at most the 5 s it limits plus a second", ttl, err)
			}
		})

		t.Run("state", func(t *testing.T) {
			// Every verdict says where the client stands after it: how many it may submit at once, and
			// when it may submit a whole burst again. At 1/s, the calls here take no measurable share.
			admit := func(key string) Verdict {
				t.Helper()
				v, err := s.Admit(ctx, Admission{Client: "state", ID: uuid.NewString(), At: time.Now(), Keep: time.Hour,
					PerSecond: 1, Burst: 3, Key: key, Record: Submission{JobID: "j", Fingerprint: "f"}, KeyTTL: time.Hour})
				if err != nil || v.Rate == nil {
					t.Fatalf("Admit = %+v, %v; want a verdict with the rate state", v, err)
				}
				return v
			}
			check := func(what string, v Verdict, available int, fullIn time.Duration) {
				t.Helper()
				if v.Rate.Available != available || v.Rate.FullIn > fullIn || v.Rate.FullIn <= fullIn-time.Second {
					t.Errorf("%s: %+v, want %d available and a whole burst again in just under %s", what, *v.Rate, available, fullIn)
				}
			}
			check("the first of a burst of 3", admit(""), 2, time.Second)
			check("the second, claiming a key", admit("k"), 1, 2*time.Second)
			check("the key's replay takes nothing", admit("k"), 1, 2*time.Second)
			check("the third", admit(""), 0, 3*time.Second)
			v := admit("")
			if v.Admitted || v.RetryIn <= 0 {
				t.Fatalf("the fourth: %+v, want refused", v)
			}
			check("refused", v, 0, 3*time.Second)
			if v, err := s.Admit(ctx, Admission{Client: "state", ID: uuid.NewString(), At: time.Now(), Keep: time.Hour}); err != nil || v.Rate != nil {
				t.Errorf("Admit without a rate limit = %+v, %v; want no rate state", v, err)
			}
		})

		t.Run("burst-of-one", func(t *testing.T) {
			if ok, _ := allow("one", 0.5, 1); !ok {
				t.Fatal("first call refused")
			}
			ok, wait := allow("one", 0.5, 1)
			if ok || wait > 2*time.Second || wait < 1800*time.Millisecond {
				t.Errorf("second call at 0.5/s: %v, wait %s; want refused for just under 2s", ok, wait)
			}
		})

		t.Run("refill", func(t *testing.T) {
			const perSecond, burst = 20, 2 // one every 50 ms
			for range burst {
				allow("refill", perSecond, burst)
			}
			ok, wait := allow("refill", perSecond, burst)
			if ok || wait > 50*time.Millisecond {
				t.Fatalf("call after the burst: %v, wait %s; want refused for at most 50ms", ok, wait)
			}
			// Calling whenever allowed for 500 ms gets one call every 50 ms, no more.
			start := time.Now()
			allowed := 0
			for time.Since(start) < 500*time.Millisecond {
				ok, wait := allow("refill", perSecond, burst)
				if ok {
					allowed++
					continue
				}
				time.Sleep(wait)
			}
			// At most the 10 the rate gives plus one at the edge; at least half of them, however late the
			// sleeps of a loaded machine wake.
			if allowed < 5 || allowed > 11 {
				t.Errorf("%d calls allowed in 500ms at 20/s, want about 10", allowed)
			}
		})
	})
}

// TestClientIndex runs a client's job index and unfinished set against every Redis backend.
func TestClientIndex(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		s := NewStore(b.Client(t), testRetention, testTombstone)
		ctx := context.Background()
		base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Minute) }
		ids := []string{"j0", "j1", "j2", "j3", "j4"}
		// Indexed out of order: the index orders them by creation time.
		for _, i := range []int{2, 0, 4, 1, 3} {
			if err := index(ctx, s, "acme", ids[i], at(i), 24*time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		if err := index(ctx, s, "globex", "g0", at(10), 24*time.Hour); err != nil {
			t.Fatal(err)
		}
		list := func(client string, after IndexedJob, n int) []IndexedJob {
			t.Helper()
			got, err := s.ListJobs(ctx, client, after, n)
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		entry := func(i int) IndexedJob { return IndexedJob{ID: ids[i], Score: at(i).UnixMicro()} }

		if diff := cmp.Diff([]IndexedJob{entry(4), entry(3), entry(2), entry(1), entry(0)}, list("acme", IndexedJob{}, 10)); diff != "" {
			t.Errorf("ListJobs newest first (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]IndexedJob{entry(4), entry(3)}, list("acme", IndexedJob{}, 2)); diff != "" {
			t.Errorf("ListJobs n=2 (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]IndexedJob{entry(2), entry(1)}, list("acme", entry(3), 2)); diff != "" {
			t.Errorf("ListJobs before j3 (-want +got):\n%s", diff)
		}
		if got := list("acme", entry(0), 10); len(got) != 0 {
			t.Errorf("ListJobs before the oldest: %v, want none", got)
		}
		if diff := cmp.Diff([]IndexedJob{{ID: "g0", Score: at(10).UnixMicro()}}, list("globex", IndexedJob{}, 10)); diff != "" {
			t.Errorf("globex's index (-want +got):\n%s", diff)
		}
		if got := list("nobody", IndexedJob{}, 10); len(got) != 0 {
			t.Errorf("an unknown client's index: %v", got)
		}

		open := func(client string) []string {
			t.Helper()
			got, err := s.OpenJobs(ctx, client)
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			return got
		}
		if diff := cmp.Diff(ids, open("acme")); diff != "" {
			t.Errorf("acme's open jobs (-want +got):\n%s", diff)
		}
		if err := s.MarkFinished(ctx, "acme", "j1"); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkFinished(ctx, "acme", "g0"); err != nil { // another client's job: no effect
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"j0", "j2", "j3", "j4"}, open("acme")); diff != "" {
			t.Errorf("acme's open jobs after j1 closed (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"g0"}, open("globex")); diff != "" {
			t.Errorf("globex's open jobs (-want +got):\n%s", diff)
		}
		if got := list("acme", IndexedJob{}, 10); len(got) != 5 {
			t.Errorf("a closed job left the index: %v", got)
		}

		if err := s.Unindex(ctx, "acme", "j2", "j3", "no-such-job"); err != nil {
			t.Fatal(err)
		}
		if err := s.Unindex(ctx, "acme"); err != nil {
			t.Fatalf("Unindex of nothing: %v", err)
		}
		if diff := cmp.Diff([]IndexedJob{entry(4), entry(1), entry(0)}, list("acme", IndexedJob{}, 10)); diff != "" {
			t.Errorf("index after Unindex (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"j0", "j4"}, open("acme")); diff != "" {
			t.Errorf("open jobs after Unindex (-want +got):\n%s", diff)
		}

		// Indexing a job trims the entries older than keep.
		if err := index(ctx, s, "acme", "late", at(0).Add(3*time.Hour), 3*time.Hour-3*time.Minute); err != nil {
			t.Fatal(err)
		}
		want := []IndexedJob{{ID: "late", Score: at(0).Add(3 * time.Hour).UnixMicro()}, entry(4)}
		if diff := cmp.Diff(want, list("acme", IndexedJob{}, 10)); diff != "" {
			t.Errorf("index after trimming what is older than keep (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]IndexedJob{{ID: "g0", Score: at(10).UnixMicro()}}, list("globex", IndexedJob{}, 10)); diff != "" {
			t.Errorf("trimming acme's index touched globex's (-want +got):\n%s", diff)
		}

		// At the cap, a job is refused with the unfinished jobs as recorded, and nothing is indexed.
		v, err := s.Admit(ctx, Admission{Client: "acme", ID: "capped", At: at(0).Add(4 * time.Hour), Keep: time.Hour, MaxOpen: 3})
		if err != nil || v.Admitted {
			t.Fatalf("Admit at the cap = %+v, %v; want refused", v, err)
		}
		slices.Sort(v.Open)
		if diff := cmp.Diff([]string{"j0", "j4", "late"}, v.Open); diff != "" {
			t.Errorf("unfinished jobs of a refusal at the cap (-want +got):\n%s", diff)
		}
		if got := list("acme", IndexedJob{}, 10); slices.ContainsFunc(got, func(j IndexedJob) bool { return j.ID == "capped" }) {
			t.Errorf("a job refused at the cap was indexed: %v", got)
		}
	})
}
