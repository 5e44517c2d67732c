package tasks

import (
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"
)

// MaxRetryDelay caps the wait between two attempts of a job.
const MaxRetryDelay = time.Minute

// RetryDelay is the asynq RetryDelayFunc for reportd's jobs: exponential from 1 s (1, 2, 4, ... s),
// capped at MaxRetryDelay, with up to 50% jitter so that jobs that failed together do not retry together.
// asynq's default (n^4 s and more) would leave a client polling for minutes after a blip.
func RetryDelay(n int, _ error, _ *asynq.Task) time.Duration {
	d := MaxRetryDelay
	if n < 6 {
		d = time.Second << n
	}
	return d + rand.N(d/2+1)
}
