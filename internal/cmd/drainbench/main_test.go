package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/testkit"
)

var keys = queueKeys{pending: "q:pending", active: "q:active", completed: "q:completed"}

// queue puts jobs 0..n-1 on the pending list.
func queue(t *testing.T, rdb *redis.Client, n int) {
	t.Helper()
	for i := range n {
		if err := rdb.RPush(context.Background(), keys.pending, strconv.Itoa(i)).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// take moves a job from pending to active, and finish one from active to completed, each in one
// transaction, as asynq's and BullMQ's scripts do.
func take(t *testing.T, rdb *redis.Client) string {
	t.Helper()
	job, err := rdb.LMove(context.Background(), keys.pending, keys.active, "RIGHT", "LEFT").Result()
	if err != nil {
		t.Fatal(err)
	}
	return job
}

func finish(t *testing.T, rdb *redis.Client, job string) {
	t.Helper()
	ctx := context.Background()
	if _, err := rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.LRem(ctx, keys.active, 1, job)
		pipe.ZAdd(ctx, keys.completed, redis.Z{Score: 1, Member: job})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// startWatch runs watch on b for n jobs and waits for its first poll; the error comes on the channel.
func startWatch(t *testing.T, b redistest.Backend, n int, out *testkit.Buffer) <-chan error {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- watch(ctx, out, b.Addr, keys, n, time.Millisecond, ready) }()
	testkit.Eventually(t, 10*time.Second, time.Millisecond, func() error {
		select {
		case err := <-done:
			t.Fatalf("watch ended before a job was taken: %v", err)
		default:
		}
		_, err := os.Stat(ready)
		return err
	})
	return done
}

func TestWatchTimesTheDrain(t *testing.T) {
	t.Parallel()
	b := redistest.Embedded(t)
	rdb := b.Client(t)
	const n = 40
	queue(t, rdb, n)
	var out testkit.Buffer
	done := startWatch(t, b, n, &out)
	for range n {
		finish(t, rdb, take(t, rdb))
	}
	if err := <-done; err != nil {
		t.Fatalf("watch: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "watch: first pickup, {pending:") ||
		!strings.HasPrefix(lines[1], "watch: 40 jobs from the first pickup to the last completion in ") || !strings.Contains(lines[1], " jobs/s ") {
		t.Errorf("watch wrote %q", out.String())
	}
}

func TestWatchRefuses(t *testing.T) {
	t.Parallel()
	const n = 10
	tests := []struct {
		name string
		// before runs before the watch starts, during after its first poll; out is what it has written.
		before func(t *testing.T, rdb *redis.Client)
		during func(t *testing.T, rdb *redis.Client, out *testkit.Buffer)
		want   string
	}{
		{
			name:   "started-late",
			before: func(t *testing.T, rdb *redis.Client) { queue(t, rdb, n); take(t, rdb) },
			want:   "started after the drain had begun",
		},
		{
			name:   "taken-before-all-queued",
			before: func(t *testing.T, rdb *redis.Client) { queue(t, rdb, n-1) },
			during: func(t *testing.T, rdb *redis.Client, _ *testkit.Buffer) { take(t, rdb) },
			want:   "with 9 of 10 queued",
		},
		{
			name:   "job-lost",
			before: func(t *testing.T, rdb *redis.Client) { queue(t, rdb, n) },
			during: func(t *testing.T, rdb *redis.Client, out *testkit.Buffer) {
				job := take(t, rdb)
				testkit.Eventually(t, 10*time.Second, time.Millisecond, func() error {
					if !strings.Contains(out.String(), "first pickup") {
						return errors.New("the watch has not seen the pickup")
					}
					return nil
				})
				if err := rdb.LRem(context.Background(), keys.active, 1, job).Err(); err != nil {
					t.Fatal(err)
				}
			},
			want: "9 jobs accounted for, want 10",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := redistest.Embedded(t)
			rdb := b.Client(t)
			tt.before(t, rdb)
			var err error
			if tt.during == nil {
				err = watch(context.Background(), &testkit.Buffer{}, b.Addr, keys, n, time.Millisecond, "")
			} else {
				var out testkit.Buffer
				done := startWatch(t, b, n, &out)
				tt.during(t, rdb, &out)
				err = <-done
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("watch = %v, want an error saying %q", err, tt.want)
			}
		})
	}
}
