package server

import (
	"context"
	"time"
)

// WatchRedis reads, every interval, a key in the hash slot of each report queue (as /readyz does),
// and logs when those reads start failing ("redis unreachable", with the error) and when they
// succeed again ("redis reachable", with how long it was away): one line each way however long
// Redis is away, to mark the outage in a log where the libraries' own lines about it are held back
// (telemetry.Repeats). reachable is whether Redis answered at start. stop ends it and waits for it.
func (s *Service) WatchRedis(ctx context.Context, interval time.Duration, reachable bool) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	queues := s.opts.Shards.Queues()
	log := s.opts.Log
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		var away time.Time // when the reads started failing; zero while they succeed
		if !reachable {
			away = time.Now()
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			err := s.opts.Store.QueuesReachable(ctx, queues)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil && away.IsZero():
				away = time.Now()
				log.Warn("redis unreachable", "err", err)
			case err == nil && !away.IsZero():
				log.Info("redis reachable", "away", time.Since(away))
				away = time.Time{}
			}
		}
	}()
	return func() { cancel(); <-done }
}
