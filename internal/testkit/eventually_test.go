package testkit

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// fakeTB records what a helper makes of a test, and stops the helper's goroutine on Fatal as
// testing does.
type fakeTB struct {
	testing.TB
	failed string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	panic(f)
}

// run calls fn with f, and returns once fn has returned or failed f.
func (f *fakeTB) run(fn func(testing.TB)) {
	defer func() {
		if r := recover(); r != nil && r != f {
			panic(r)
		}
	}()
	fn(f)
}

func TestEventually(t *testing.T) {
	t.Parallel()
	t.Run("comes-true", func(t *testing.T) {
		t.Parallel()
		calls := 0
		f := &fakeTB{TB: t}
		f.run(func(tb testing.TB) {
			Eventually(tb, 5*time.Second, time.Millisecond, func() error {
				if calls++; calls < 3 {
					return errors.New("not yet")
				}
				return nil
			})
		})
		if f.failed != "" || calls != 3 {
			t.Errorf("Eventually failed with %q after %d calls, want success on the 3rd", f.failed, calls)
		}
	})
	t.Run("times-out-with-last-reason", func(t *testing.T) {
		t.Parallel()
		calls := 0
		f := &fakeTB{TB: t}
		f.run(func(tb testing.TB) {
			Eventually(tb, 30*time.Millisecond, 5*time.Millisecond, func() error {
				calls++
				return fmt.Errorf("attempt %d", calls)
			})
		})
		if want := fmt.Sprintf("after 30ms: attempt %d", calls); f.failed != want || calls < 2 {
			t.Errorf("Eventually failed with %q after %d calls, want %q", f.failed, calls, want)
		}
	})
	t.Run("checks-at-the-deadline", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		f := &fakeTB{TB: t}
		f.run(func(tb testing.TB) {
			// An interval longer than the timeout: the second call is at the deadline, not after it.
			Eventually(tb, 20*time.Millisecond, time.Hour, func() error {
				if time.Since(start) >= 20*time.Millisecond {
					return nil
				}
				return errors.New("early")
			})
		})
		if f.failed != "" {
			t.Errorf("Eventually failed with %q, want success at the deadline", f.failed)
		}
	})
}
