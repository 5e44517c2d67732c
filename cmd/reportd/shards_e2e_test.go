package main

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/testkit"
	"github.com/reportd/reportd/internal/testkit/reportdproc"
)

// stop ends a reportd started by start, as a SIGTERM would, and waits for it.
func (in *instance) stop(t *testing.T) {
	t.Helper()
	in.cancel()
	select {
	case <-in.done:
	case <-time.After(30 * time.Second):
		t.Fatal("reportd did not stop within 30 s")
	}
}

// TestChangeShards changes REPORTD_QUEUE_SHARDS between two processes' lifetimes on one redis-server:
// jobs submitted under N=3 (to an API with no worker, so they wait) all finish under N=2, whose shards
// are other queues; so do jobs submitted under N=2 and, after another change, under N=1. A status read
// finds each job from its id alone.
func TestChangeShards(t *testing.T) {
	t.Parallel()
	redisURL := "redis://" + redistest.StartServer(t).Addr
	vars := func(shards string) map[string]string {
		return reportdproc.Vars(map[string]string{"REDIS_URL": redisURL, "REPORTD_QUEUE_SHARDS": shards})
	}

	var before []string // status paths of the jobs submitted under N=3
	queues := map[string]bool{}
	api := start(t, []string{"api"}, vars("3"))
	for range 12 {
		loc := submit(t, api.base, "2026-01-01..2026-01-02")
		id := statusPath.FindStringSubmatch(loc)[1]
		if u := uuid.MustParse(id); u.Version() != 8 {
			t.Errorf("job %s under 3 shards: version %d, want 8", id, u.Version())
		}
		queues[store.QueueOf(id)] = true
		before = append(before, loc)
	}
	three, _ := store.NewShards(3)
	for q := range queues {
		if !slices.Contains(three.Queues(), q) {
			t.Errorf("a job went to queue %s, not one of the 3 shards %v", q, three.Queues())
		}
	}
	if len(queues) < 2 {
		t.Errorf("12 jobs went to %d queue(s), want them spread over the 3 shards", len(queues))
	}
	api.stop(t)

	// N=2: other queues. The old ones still hold jobs, so they are served too.
	two := start(t, nil, vars("2"))
	older := len(two.log.All(func(l testkit.LogLine) bool { return l.Fields["msg"] == "report queue" && l.Fields["older"] == true }))
	if older != len(queues) {
		t.Errorf("reportd under N=2 logged %d older report queues, want the %d that hold jobs; log:\n%s", older, len(queues), two.log)
	}
	for _, loc := range before {
		awaitDone(t, two.base, loc)
	}
	var during []string
	for range 4 {
		during = append(during, submit(t, two.base, "2026-01-01..2026-01-02"))
	}
	for _, loc := range during {
		awaitDone(t, two.base, loc)
	}
	// Jobs left pending under N=2 finish under N=1 (the queue of before shards existed).
	two.stop(t)
	api = start(t, []string{"api"}, vars("2"))
	left := submit(t, api.base, "2026-01-01..2026-01-02")
	api.stop(t)
	one := start(t, nil, vars("1"))
	awaitDone(t, one.base, left)
	plain := submit(t, one.base, "2026-01-01..2026-01-02")
	if u := uuid.MustParse(statusPath.FindStringSubmatch(plain)[1]); u.Version() != 4 {
		t.Errorf("a job under one shard has a version %d id, want 4", u.Version())
	}
	awaitDone(t, one.base, plain)
	// Every id, of every N, still reads as done.
	for _, loc := range append(append(before, during...), left) {
		if res := do(t, http.MethodGet, one.base+loc, "", ""); res.status != http.StatusSeeOther {
			t.Errorf("GET %s under N=1 = %s, want 303", loc, res)
		}
	}
	if _, ok := one.log.WaitFor(0, nil, testkit.MsgIs("report queue")); !ok {
		t.Errorf("no report queue logged under N=1")
	}
}
