package testkit

import (
	"testing"
	"time"
)

// Eventually calls cond every interval until it returns nil, and fails tb (Fatal) with cond's last
// error, "after <timeout>: <error>", should timeout pass first. cond is called at once, and once more
// at the deadline, so a condition met just in time passes. It runs on the caller's goroutine, so cond
// may call tb.Fatal to give up at once on a state from which the condition cannot come true.
//
// It is for a condition that comes to hold; one that must hold throughout a period needs a loop of
// its own.
func Eventually(tb testing.TB, timeout, interval time.Duration, cond func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		left := time.Until(deadline)
		if left <= 0 {
			tb.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(min(interval, left))
	}
}
