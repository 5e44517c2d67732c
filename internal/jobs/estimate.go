package jobs

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/reportd/reportd/internal/problem"
)

// waitEstimate estimates how long a pending job will wait, from the queue ahead of it and how long jobs
// have recently taken. One API process shares one waitEstimate, whose queue counts are refreshed once a
// second off the request path, so that many clients polling pending jobs cost Redis nothing more.
type waitEstimate struct {
	mu       sync.Mutex
	pending  int
	active   int
	avgRun   time.Duration // moving average of recent jobs' run time
	observed bool
	// seen are the jobs already observed, so that a job read many times counts once.
	seen     map[string]struct{}
	seenRing []string
}

// seenCap bounds the memory of observed jobs.
const seenCap = 1024

// queueEvery is how often the queue's counts are refreshed.
const queueEvery = time.Second

// observe records how long finished job id ran, once per job.
func (p *waitEstimate) observe(id string, run time.Duration) {
	if run <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.seen[id]; ok {
		return
	}
	if p.seen == nil {
		p.seen = map[string]struct{}{}
	}
	if len(p.seenRing) >= seenCap {
		delete(p.seen, p.seenRing[0])
		p.seenRing = p.seenRing[1:]
	}
	p.seen[id] = struct{}{}
	p.seenRing = append(p.seenRing, id)
	if !p.observed {
		p.avgRun, p.observed = run, true
		return
	}
	p.avgRun = (p.avgRun*7 + run) / 8
}

// setQueue records the queue's counts: jobs waiting and jobs running.
func (p *waitEstimate) setQueue(pending, active int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending, p.active = int(pending), int(active)
}

// pendingWait estimates, in whole seconds, how long a pending job will wait for a worker: the jobs
// queued ahead of it (on average half the queue) spread over the workers busy now (all of them, when
// there is a queue), at the recent run time. With no queue it is the minimum. It reads no Redis: the
// queue's counts are refreshed off the request path (Service.RunEstimates).
func (p *waitEstimate) pendingWait() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending <= 1 || !p.observed {
		return problem.MinRetryAfter
	}
	workers := max(p.active, 1)
	ahead := float64(p.pending) / 2
	secs := math.Ceil(ahead / float64(workers) * p.avgRun.Seconds())
	return int(min(max(secs, problem.MinRetryAfter), problem.MaxRetryAfter))
}

// RunEstimates refreshes the queue counts behind pending jobs' Retry-After once a second until ctx is
// done; an API process runs it. A failed read keeps the last counts.
func (s *Service) RunEstimates(ctx context.Context) {
	t := time.NewTicker(queueEvery)
	defer t.Stop()
	for {
		s.refreshEstimate(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// refreshEstimate reads the queues' counts once.
func (s *Service) refreshEstimate(ctx context.Context) {
	if pending, active, err := s.store.QueueCounts(ctx, s.queues); err == nil {
		s.estimate.setQueue(pending, active)
	}
}
