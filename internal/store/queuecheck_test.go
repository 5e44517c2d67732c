package store

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/reportd/reportd/internal/redistest"
)

// sentCommands counts the commands that reach Redis, by name.
type sentCommands map[string]int

func (s sentCommands) DialHook(next redis.DialHook) redis.DialHook { return next }
func (s sentCommands) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (s sentCommands) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		s[cmd.Name()]++
		return next(ctx, cmd)
	}
}

// TestQueueChecksCached: asynq's check that a queue exists reaches Redis once a queueCheckFresh while
// the answer is yes, every time while it is no, and answers what Redis said.
func TestQueueChecksCached(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		rdb := redis.NewClient(&redis.Options{Addr: b.Addr})
		t.Cleanup(func() { _ = rdb.Close() })
		now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
		rdb.AddHook(&queueCheckCache{now: func() time.Time { return now }, seen: map[string]time.Time{}})
		sent := sentCommands{}
		rdb.AddHook(sent)
		exists := func(q string) bool {
			t.Helper()
			ok, err := rdb.SIsMember(ctx, asynqQueuesKey, q).Result()
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}

		if exists("reports") || exists("reports") || sent["sismember"] != 2 {
			t.Errorf("a queue asynq does not know: exists, or %d checks of 2 reached Redis", sent["sismember"])
		}
		if err := rdb.SAdd(ctx, asynqQueuesKey, "reports").Err(); err != nil {
			t.Fatal(err)
		}
		if !exists("reports") || !exists("reports") || !exists("reports") || sent["sismember"] != 3 {
			t.Errorf("a queue asynq knows: missing, or %d checks of 3 reached Redis (want 1 for 3)", sent["sismember"])
		}
		now = now.Add(queueCheckFresh)
		if !exists("reports") || sent["sismember"] != 4 {
			t.Errorf("after %s: %d checks reached Redis, want 4", queueCheckFresh, sent["sismember"])
		}
		// Other commands, and SISMEMBER of other sets, pass through.
		if err := rdb.SAdd(ctx, "other", "reports").Err(); err != nil {
			t.Fatal(err)
		}
		if ok, err := rdb.SIsMember(ctx, "other", "reports").Result(); err != nil || !ok || sent["sismember"] != 5 {
			t.Errorf("SISMEMBER of another set = %v, %v with %d sent, want true, nil, 5", ok, err, sent["sismember"])
		}
		// A queue removed from asynq's list (the web UI's delete) is seen within queueCheckFresh.
		if err := rdb.SRem(ctx, asynqQueuesKey, "reports").Err(); err != nil {
			t.Fatal(err)
		}
		now = now.Add(queueCheckFresh)
		if exists("reports") {
			t.Errorf("a deleted queue still exists %s after its last check", queueCheckFresh)
		}
	})
}
