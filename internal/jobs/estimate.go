package jobs

import (
	"math"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/reportd/reportd/internal/problem"
)

// waitEstimate estimates how long a pending job will wait, from the queue ahead of it and how long jobs
// have recently taken. One API process shares one waitEstimate; the queue's counts are read at most once a second,
// so that many clients polling pending jobs cost Redis one extra lookup a second, not one a poll.
type waitEstimate struct {
	mu       sync.Mutex
	readAt   time.Time
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

// queueEvery is how stale the queue's counts may be.
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

// pendingWait estimates, in whole seconds, how long a pending job will wait for a worker: the jobs
// queued ahead of it (on average half the queue) spread over the workers busy now (all of them, when
// there is a queue), at the recent run time. With no queue it is the minimum.
func (p *waitEstimate) pendingWait(now time.Time, read func(string) (*asynq.QueueInfo, error), queue string) int {
	p.mu.Lock()
	stale := now.Sub(p.readAt) >= queueEvery
	if stale {
		p.readAt = now // claim the read, so concurrent requests use the old counts meanwhile
	}
	p.mu.Unlock()
	if stale {
		// Outside the lock: a slow Redis must not stall every request that estimates a wait.
		if qi, err := read(queue); err == nil {
			p.mu.Lock()
			p.pending, p.active = qi.Pending, qi.Active
			p.mu.Unlock()
		}
	}
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
