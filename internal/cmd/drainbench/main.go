// Command drainbench is .ci/drain.sh's helper (not shipped): it submits reportd's jobs before its
// worker starts, and times a drain, reportd's or a baseline's, the same way from outside.
//
//	drainbench submit -server URL -n N [-c C] [-range R]
//	drainbench watch -redis ADDR -n N -pending KEY -active KEY -completed KEY [-every D] [-ready FILE]
//
// submit POSTs N jobs to a reportd API (the path every client's jobs take), C at a time, and returns
// once all N are accepted. watch polls one queue's three counts (the lengths of its pending and active
// lists and the size of its completed set, which asynq and BullMQ both keep) in one MULTI/EXEC, on one
// Redis connection, every D. It starts before the worker does (it creates FILE once its first poll is
// answered, for the caller to start the worker then), takes the first pickup as the first poll that sees
// a job taken (active or completed non-zero, pending below N), and the last completion as the
// first that sees all N completed; it prints N over the time between the two, on its last line. It fails if it started
// after a job was taken, if a poll does not account for exactly N jobs once the drain has begun, or if
// the drain takes longer than -timeout.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/reportd/reportd/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "drainbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: drainbench submit|watch [flags]")
	}
	fs := flag.NewFlagSet("drainbench "+args[0], flag.ContinueOnError)
	n := fs.Int("n", 10000, "jobs")
	switch args[0] {
	case "submit":
		server := fs.String("server", "", "the reportd API's base URL")
		c := fs.Int("c", 32, "submissions at once")
		rng := fs.String("range", "2026-01-01..2026-01-01", "every job's range")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return submit(ctx, *server, *n, *c, *rng)
	case "watch":
		addr := fs.String("redis", "127.0.0.1:6379", "Redis address")
		var q queueKeys
		fs.StringVar(&q.pending, "pending", "", "the queue's list of pending jobs")
		fs.StringVar(&q.active, "active", "", "the queue's list of active jobs")
		fs.StringVar(&q.completed, "completed", "", "the queue's sorted set of completed jobs")
		every := fs.Duration("every", time.Millisecond, "time between two polls")
		timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
		ready := fs.String("ready", "", "a file to create once the first poll is answered")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if q.pending == "" || q.active == "" || q.completed == "" {
			return errors.New("watch: -pending, -active and -completed are required")
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		return watch(ctx, os.Stdout, *addr, q, *n, *every, *ready)
	}
	return fmt.Errorf("unknown command %q: want submit or watch", args[0])
}

// submit posts n jobs over rng to the reportd API at server, c at a time.
func submit(ctx context.Context, server string, n, c int, rng string) error {
	if n < 1 || c < 1 {
		return errors.New("submit: -n and -c must be at least 1")
	}
	cl, err := client.New(server)
	if err != nil {
		return err
	}
	start := time.Now()
	var (
		left    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	left.Store(int64(n))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range min(c, n) {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				if _, err := cl.Create(ctx, rng, client.CreateOptions{}); err != nil {
					errOnce.Do(func() { first = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return fmt.Errorf("submit: %w", first)
	}
	took := time.Since(start)
	fmt.Printf("submitted %d jobs in %.2f s (%.0f a second)\n", n, took.Seconds(), float64(n)/took.Seconds())
	return nil
}

// queueKeys are the Redis keys of one queue's counts.
type queueKeys struct{ pending, active, completed string }

// counts is one poll's reading.
type counts struct{ pending, active, completed int64 }

func (c counts) taken() bool  { return c.active > 0 || c.completed > 0 }
func (c counts) total() int64 { return c.pending + c.active + c.completed }

// watch times the drain of n jobs from q (see the package comment) and writes the figure to w.
func watch(ctx context.Context, w io.Writer, addr string, q queueKeys, n int, every time.Duration, ready string) error {
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 1, MaxIdleConns: 1})
	defer rdb.Close()
	poll := func() (counts, time.Time, error) {
		var p, a, c *redis.IntCmd
		_, err := rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			p, a, c = pipe.LLen(ctx, q.pending), pipe.LLen(ctx, q.active), pipe.ZCard(ctx, q.completed)
			return nil
		})
		if err != nil {
			return counts{}, time.Time{}, err
		}
		return counts{p.Val(), a.Val(), c.Val()}, time.Now(), nil
	}
	want := int64(n)
	polls := 0 // since the first pickup
	var start time.Time
	for first := true; ; first = false {
		got, at, err := poll()
		if err != nil {
			return fmt.Errorf("watch: poll: %w", err)
		}
		polls++
		switch {
		case first && got.taken():
			return fmt.Errorf("watch: started after the drain had begun (%+v)", got)
		case first && ready != "":
			if err := os.WriteFile(ready, nil, 0o644); err != nil {
				return fmt.Errorf("watch: %w", err)
			}
		case start.IsZero() && got.taken():
			if got.total() != want {
				return fmt.Errorf("watch: a job was taken with %d of %d queued (%+v): the worker started before the submissions ended", got.total(), want, got)
			}
			start, polls = at, 0
			fmt.Fprintf(w, "watch: first pickup, %+v\n", got)
		case !start.IsZero() && got.total() != want:
			return fmt.Errorf("watch: %d jobs accounted for, want %d (%+v): the queue changed beside the drain", got.total(), want, got)
		case !start.IsZero() && got.completed == want:
			took := at.Sub(start)
			fmt.Fprintf(w, "watch: %d jobs from the first pickup to the last completion in %.3f s = %.0f jobs/s (%d polls in it, one every %s)\n",
				n, took.Seconds(), float64(n)/took.Seconds(), polls, every)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("watch: %w with %+v", ctx.Err(), got)
		case <-time.After(every):
		}
	}
}
