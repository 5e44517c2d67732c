package store

import (
	"context"
	"errors"
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

		for range 2 {
			if exists("reports") {
				t.Error("a queue asynq does not know exists")
			}
		}
		if n := sent["sismember"]; n != 2 {
			t.Errorf("%d of 2 checks of a queue asynq does not know reached Redis, want every one", n)
		}
		if err := rdb.SAdd(ctx, asynqQueuesKey, "reports").Err(); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if !exists("reports") {
				t.Error("a queue asynq knows does not exist")
			}
		}
		if n := sent["sismember"]; n != 3 {
			t.Errorf("%d checks reached Redis after three of a queue asynq knows, want 3 (the 2 before, and 1)", n)
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

// TestQueueChecksWhenRedisCannotAnswer: a check that fails is answered yes for a queue Redis said yes to
// before, and fails for any other, or when the caller gave up.
func TestQueueChecksWhenRedisCannotAnswer(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	c := &queueCheckCache{now: func() time.Time { return now }, seen: map[string]time.Time{}}
	down := errors.New("dial tcp 127.0.0.1:7000: connect: connection refused")
	answer := func(val bool, err error) redis.ProcessHook {
		return func(_ context.Context, cmd redis.Cmder) error {
			cmd.(*redis.BoolCmd).SetVal(val)
			cmd.SetErr(err)
			return err
		}
	}
	check := func(ctx context.Context, next redis.ProcessHook, q string) (bool, error) {
		cmd := redis.NewBoolCmd(ctx, "sismember", asynqQueuesKey, q)
		err := c.ProcessHook(next)(ctx, cmd)
		if err != cmd.Err() {
			t.Fatalf("the hook returned %v, and the command's error is %v", err, cmd.Err())
		}
		return cmd.Val(), err
	}
	ctx := context.Background()
	if ok, err := check(ctx, answer(false, down), "reports"); ok || err == nil {
		t.Errorf("a check of a queue never seen, Redis down = %v, %v; want the error", ok, err)
	}
	if ok, err := check(ctx, answer(true, nil), "reports"); !ok || err != nil {
		t.Fatalf("check = %v, %v", ok, err)
	}
	now = now.Add(time.Hour)
	if ok, err := check(ctx, answer(false, down), "reports"); !ok || err != nil {
		t.Errorf("a check of a queue seen before, Redis down = %v, %v; want true, nil", ok, err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := check(canceled, answer(false, context.Canceled), "reports"); !errors.Is(err, context.Canceled) {
		t.Errorf("a check its caller gave up on = %v; want context.Canceled", err)
	}
	if ok, err := check(ctx, answer(false, nil), "reports"); ok || err != nil {
		t.Fatalf("check = %v, %v", ok, err)
	}
	if ok, err := check(ctx, answer(false, down), "reports"); ok || err == nil {
		t.Errorf("a check of a queue Redis last said was gone, Redis down = %v, %v; want the error", ok, err)
	}
}
