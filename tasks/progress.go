package tasks

import (
	"context"
	"time"
)

// progressThrottle reports a running attempt's progress to the lifecycle at a bounded rate: every
// report is a Redis round trip, and a quarter's report sees hundreds of days.
type progressThrottle struct {
	jobs  Lifecycle
	now   func() time.Time
	every time.Duration
	last  time.Time
	a     Attempt
}

// set records done of total days and reports them if the last report is at least every ago. It returns
// the report's error, which the job may ignore: progress is advisory.
func (t *progressThrottle) set(ctx context.Context, done, total int) error {
	t.a.DaysDone, t.a.DaysTotal = done, total
	now := t.now()
	if now.Sub(t.last) < t.every {
		return nil
	}
	t.last = now
	return t.jobs.WriteProgress(ctx, t.a)
}
