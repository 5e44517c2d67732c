package impl

import (
	"math"
	"sync"
	"time"

	"github.com/hibiken/asynq"
)

// pace estimates how long a pending job will wait, from the queue ahead of it and how long jobs have
// recently taken. One API process shares one pace; the queue's counts are read at most once a second,
// so that many clients polling pending jobs cost Redis one extra lookup a second, not one a poll.
type pace struct {
	mu       sync.Mutex
	readAt   time.Time
	pending  int
	active   int
	avgRun   time.Duration // moving average of recent jobs' run time
	observed bool
}

// queueEvery is how stale the queue's counts may be.
const queueEvery = time.Second

// observe records how long a finished job ran.
func (p *pace) observe(run time.Duration) {
	if run <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.observed {
		p.avgRun, p.observed = run, true
		return
	}
	p.avgRun = (p.avgRun*7 + run) / 8
}

// pendingWait estimates, in whole seconds, how long a pending job will wait for a worker: the jobs
// queued ahead of it (on average half the queue) spread over the workers busy now (all of them, when
// there is a queue), at the recent run time. With no queue it is the minimum.
func (p *pace) pendingWait(now time.Time, read func(string) (*asynq.QueueInfo, error), queue string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Sub(p.readAt) >= queueEvery {
		if qi, err := read(queue); err == nil {
			p.pending, p.active = qi.Pending, qi.Active
		}
		p.readAt = now
	}
	if p.pending <= 1 || !p.observed {
		return minRetryAfter
	}
	workers := max(p.active, 1)
	ahead := float64(p.pending) / 2
	secs := math.Ceil(ahead / float64(workers) * p.avgRun.Seconds())
	return int(min(max(secs, minRetryAfter), maxRetryAfter))
}
