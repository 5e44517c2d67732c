package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reportd/reportd/internal/testkit"
)

// fakeClock is a clock a test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// repeatsLog is a Repeats over a JSON handler into a buffer, on a fake clock.
type repeatsLog struct {
	clock *fakeClock
	h     *Repeats
	out   *bytes.Buffer
}

func newRepeatsLog(interval time.Duration) *repeatsLog {
	clock := newFakeClock()
	out := &bytes.Buffer{}
	// No time in the lines: the tests compare them whole; repeats.over says the times that matter.
	opts := &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		switch {
		case a.Key == slog.TimeKey && len(groups) == 0:
			return slog.Attr{}
		case a.Value.Kind() == slog.KindDuration:
			return slog.String(a.Key, a.Value.Duration().String())
		}
		return a
	}}
	return &repeatsLog{clock: clock, h: NewRepeats(slog.NewJSONHandler(out, opts), interval, clock.Now), out: out}
}

// log logs msg at level through h at the clock's now, as slog.Logger does.
func (l *repeatsLog) log(h slog.Handler, level slog.Level, msg string, args ...any) {
	r := slog.NewRecord(l.clock.Now(), level, msg, 0)
	r.Add(args...)
	if err := h.Handle(context.Background(), r); err != nil {
		panic(err)
	}
}

// lines returns what was written since the last call, one string a line.
func (l *repeatsLog) lines() []string {
	s := strings.TrimRight(l.out.String(), "\n")
	l.out.Reset()
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

var errRefused = errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")

// TestRepeatsOutage: a failure is logged when it starts, then once an interval with the count held
// back, then once when it has not recurred for two intervals; another failure, an info line, and the
// same failure of another job pass on as they come.
func TestRepeatsOutage(t *testing.T) {
	t.Parallel()
	l := newRepeatsLog(5 * time.Second)
	asynq := l.h.WithAttrs([]slog.Attr{slog.String("component", "asynq")})
	step := func(d time.Duration) {
		l.clock.Advance(d)
		l.h.Sweep()
	}
	var got []string
	for i := range 12 { // 12 s of a failure logged 4 times a second
		for range 4 {
			l.log(asynq, slog.LevelError, "Dequeue error: redis eval error: "+errRefused.Error())
			l.log(l.h, slog.LevelWarn, "job events interrupted", "err", fmt.Errorf("receive job events: dial tcp 127.0.0.1:%d: connect: connection refused", 50000+i), "retry_in", time.Duration(i)*time.Second)
			step(250 * time.Millisecond)
		}
		l.log(l.h, slog.LevelInfo, "job accepted", "job", fmt.Sprint("j", i))
		if i == 3 {
			l.log(l.h, slog.LevelWarn, "progress not written", "job", "a", "err", errRefused)
			l.log(l.h, slog.LevelWarn, "progress not written", "job", "b", "err", errRefused)
		}
		got = append(got, l.lines()...)
	}
	for range 50 { // and 12.5 s after it stopped
		step(250 * time.Millisecond)
	}
	got = append(got, l.lines()...)
	want := []string{
		`{"level":"ERROR","msg":"Dequeue error: redis eval error: dial tcp 127.0.0.1:6379: connect: connection refused","component":"asynq"}`,
		`{"level":"WARN","msg":"job events interrupted","err":"receive job events: dial tcp 127.0.0.1:50000: connect: connection refused","retry_in":"0s"}`,
		`{"level":"INFO","msg":"job accepted","job":"j0"}`,
		`{"level":"INFO","msg":"job accepted","job":"j1"}`,
		`{"level":"INFO","msg":"job accepted","job":"j2"}`,
		`{"level":"INFO","msg":"job accepted","job":"j3"}`,
		`{"level":"WARN","msg":"progress not written","job":"a","err":"dial tcp 127.0.0.1:6379: connect: connection refused"}`,
		`{"level":"WARN","msg":"progress not written","job":"b","err":"dial tcp 127.0.0.1:6379: connect: connection refused"}`,
		// At 5 s: the 19 held back since the first, the latest of them written.
		`{"level":"ERROR","msg":"Dequeue error: redis eval error: dial tcp 127.0.0.1:6379: connect: connection refused","component":"asynq","repeats":{"count":19,"over":"5s"}}`,
		`{"level":"WARN","msg":"job events interrupted","err":"receive job events: dial tcp 127.0.0.1:50004: connect: connection refused","retry_in":"4s","repeats":{"count":19,"over":"5s"}}`,
		`{"level":"INFO","msg":"job accepted","job":"j4"}`,
		`{"level":"INFO","msg":"job accepted","job":"j5"}`,
		`{"level":"INFO","msg":"job accepted","job":"j6"}`,
		`{"level":"INFO","msg":"job accepted","job":"j7"}`,
		`{"level":"INFO","msg":"job accepted","job":"j8"}`,
		`{"level":"ERROR","msg":"Dequeue error: redis eval error: dial tcp 127.0.0.1:6379: connect: connection refused","component":"asynq","repeats":{"count":20,"over":"5s"}}`,
		`{"level":"WARN","msg":"job events interrupted","err":"receive job events: dial tcp 127.0.0.1:50009: connect: connection refused","retry_in":"9s","repeats":{"count":20,"over":"5s"}}`,
		`{"level":"INFO","msg":"job accepted","job":"j9"}`,
		`{"level":"INFO","msg":"job accepted","job":"j10"}`,
		`{"level":"INFO","msg":"job accepted","job":"j11"}`,
		// At 15 s, an interval after the last line: the 8 held back since, up to 11.75 s.
		`{"level":"ERROR","msg":"Dequeue error: redis eval error: dial tcp 127.0.0.1:6379: connect: connection refused","component":"asynq","repeats":{"count":8,"over":"5s"}}`,
		`{"level":"WARN","msg":"job events interrupted","err":"receive job events: dial tcp 127.0.0.1:50011: connect: connection refused","retry_in":"11s","repeats":{"count":8,"over":"5s"}}`,
		// Not seen since 11.75 s: ended at 21.75 s.
		`{"level":"ERROR","msg":"Dequeue error: redis eval error: dial tcp 127.0.0.1:6379: connect: connection refused","component":"asynq","repeats":{"count":0,"over":"6.75s","ended":true,"lasted":"11.75s"}}`,
		`{"level":"WARN","msg":"job events interrupted","err":"receive job events: dial tcp 127.0.0.1:50011: connect: connection refused","retry_in":"11s","repeats":{"count":0,"over":"6.75s","ended":true,"lasted":"11.75s"}}`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
	// And the same failure later is a new one, logged at once.
	l.log(asynq, slog.LevelError, "Dequeue error: redis eval error: "+errRefused.Error())
	if got := l.lines(); len(got) != 1 || strings.Contains(got[0], "repeats") {
		t.Errorf("the failure again after it ended: %q, want its line as it came", got)
	}
}

// TestRepeatsKey: what makes two lines the same failure.
func TestRepeatsKey(t *testing.T) {
	t.Parallel()
	// line is one line to log, through the handler in derives from the Repeats (itself when in is nil).
	type line struct {
		in    func(*Repeats) slog.Handler
		level slog.Level
		msg   string
		args  []any
	}
	warn := func(msg string, args ...any) line { return line{level: slog.LevelWarn, msg: msg, args: args} }
	component := func(name string) func(*Repeats) slog.Handler {
		return func(h *Repeats) slog.Handler { return h.WithAttrs([]slog.Attr{slog.String("component", name)}) }
	}
	for _, tt := range []struct {
		name string
		a, b line
		same bool
	}{
		{"digits in the message",
			warn("redis: connection pool: failed to dial after 1 attempts: dial tcp 10.0.0.1:6379: i/o timeout"),
			warn("redis: connection pool: failed to dial after 3 attempts: dial tcp 10.0.0.2:6379: i/o timeout"), true},
		{"another message", warn("Dequeue error"), warn("Failed to forward scheduled tasks"), false},
		{"another level", warn("x"), line{level: slog.LevelError, msg: "x"}, false},
		{"another job",
			warn("progress not written", "job", "0b3f", "err", errRefused),
			warn("progress not written", "job", "9c1e", "err", errRefused), false},
		{"an error of another kind",
			warn("progress not written", "err", errRefused),
			warn("progress not written", "err", errors.New("read tcp 127.0.0.1:6379: i/o timeout")), false},
		{"an error's port",
			warn("x", "err", errors.New("read tcp 127.0.0.1:51234->127.0.0.1:6379: read: connection reset by peer")),
			warn("x", "err", errors.New("read tcp 127.0.0.1:40001->127.0.0.1:6379: read: connection reset by peer")), true},
		{"a string that is not an error", warn("x", "queue", "reports-1"), warn("x", "queue", "reports-2"), false},
		{"an int", warn("webhook delivery refused", "status", 500), warn("webhook delivery refused", "status", 404), false},
		{"durations, times and floats",
			warn("x", "in", time.Second, "at", time.Unix(1, 0), "ratio", 0.5),
			warn("x", "in", 2*time.Second, "at", time.Unix(2, 0), "ratio", 0.7), true},
		{"in another group",
			line{in: func(h *Repeats) slog.Handler { return h.WithGroup("g") }, level: slog.LevelWarn, msg: "x", args: []any{"k", "v"}},
			warn("x", "k", "v"), false},
		{"with other attributes",
			line{in: component("asynq"), level: slog.LevelWarn, msg: "x"},
			line{in: component("go-redis"), level: slog.LevelWarn, msg: "x"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := newRepeatsLog(5 * time.Second)
			for _, ln := range []line{tt.a, tt.b} {
				var h slog.Handler = l.h
				if ln.in != nil {
					h = ln.in(l.h)
				}
				l.log(h, ln.level, ln.msg, ln.args...)
			}
			n := len(l.lines())
			if got := n == 1; got != tt.same {
				t.Errorf("lines written: %d; the same failure: %v, want %v", n, got, tt.same)
			}
		})
	}
}

// TestRepeatsPeriodic: a failure that recurs a little less often than the interval, as asynq's
// loops do, is one failure: a line an interval or so, not an end and a beginning each time.
func TestRepeatsPeriodic(t *testing.T) {
	t.Parallel()
	l := newRepeatsLog(5 * time.Second)
	for range 10 { // every 5.5 s, twice (two asynq servers)
		l.log(l.h, slog.LevelError, "Failed to write server state data")
		l.log(l.h, slog.LevelError, "Failed to write server state data")
		for range 11 {
			l.clock.Advance(500 * time.Millisecond)
			l.h.Sweep()
		}
	}
	got := l.lines()
	var ends int
	for _, line := range got {
		if strings.Contains(line, `"ended":true`) {
			ends++
		}
	}
	if len(got) > 11 || ends != 0 {
		t.Errorf("20 occurrences over 55 s: %d lines, %d of them ends; want at most 11 (the first, then one each 5.5 s) and none:\n%s", len(got), ends, strings.Join(got, "\n"))
	}
}

// TestRepeatsInfo: lines below Warn are never held back.
func TestRepeatsInfo(t *testing.T) {
	t.Parallel()
	l := newRepeatsLog(5 * time.Second)
	for range 10 {
		l.log(l.h, slog.LevelInfo, "report done")
	}
	if n := len(l.lines()); n != 10 {
		t.Errorf("10 info lines at once: %d written, want 10", n)
	}
}

// TestRepeatsOnce: a failure that does not recur is one line, and no end.
func TestRepeatsOnce(t *testing.T) {
	t.Parallel()
	l := newRepeatsLog(5 * time.Second)
	l.log(l.h, slog.LevelWarn, "redis unreachable", "err", errRefused)
	for range 20 {
		l.clock.Advance(time.Second)
		l.h.Sweep()
	}
	if got := l.lines(); len(got) != 1 {
		t.Errorf("one failure: %q, want one line", got)
	}
}

// TestRepeatsEndWithoutSweep: a failure that comes back after it ended, before any sweep said so, is
// logged as new, after the end of the one before.
func TestRepeatsEndWithoutSweep(t *testing.T) {
	t.Parallel()
	l := newRepeatsLog(5 * time.Second)
	l.log(l.h, slog.LevelWarn, "x")
	l.log(l.h, slog.LevelWarn, "x")
	l.clock.Advance(10 * time.Second)
	l.log(l.h, slog.LevelWarn, "x")
	want := []string{
		`{"level":"WARN","msg":"x"}`,
		`{"level":"WARN","msg":"x","repeats":{"count":1,"over":"10s","ended":true,"lasted":"0s"}}`,
		`{"level":"WARN","msg":"x"}`,
	}
	if diff := cmp.Diff(want, l.lines()); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
}

// TestRepeatsClose: Close writes what is held back, and later lines pass straight on.
func TestRepeatsClose(t *testing.T) {
	t.Parallel()
	l := newRepeatsLog(5 * time.Second)
	for range 3 {
		l.log(l.h, slog.LevelWarn, "x")
	}
	l.clock.Advance(time.Second)
	l.h.Close()
	l.log(l.h, slog.LevelWarn, "x")
	l.log(l.h, slog.LevelWarn, "x")
	want := []string{
		`{"level":"WARN","msg":"x"}`,
		`{"level":"WARN","msg":"x","repeats":{"count":2,"over":"1s"}}`,
		`{"level":"WARN","msg":"x"}`,
		`{"level":"WARN","msg":"x"}`,
	}
	if diff := cmp.Diff(want, l.lines()); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
}

// TestRepeatsRandom: under failures at random times, with sweeps now and then, two lines of one
// failure less than an interval apart have its ended line between them, and, once closed, every occurrence is
// accounted for: written, or counted in a later line.
func TestRepeatsRandom(t *testing.T) {
	t.Parallel()
	const interval = 5 * time.Second
	rnd := rand.New(rand.NewPCG(1, 2))
	clock := newFakeClock()
	var out bytes.Buffer
	h := NewRepeats(slog.NewJSONHandler(&out, nil), interval, clock.Now)
	msgs := []string{"a", "b", "c"}
	occurred := map[string]int{}
	for range 5000 {
		clock.Advance(time.Duration(rnd.ExpFloat64() * float64(time.Second) * []float64{0.05, 1, 4}[rnd.IntN(3)]))
		if rnd.IntN(4) == 0 {
			h.Sweep()
			continue
		}
		m := msgs[rnd.IntN(len(msgs))]
		occurred[m]++
		_ = h.Handle(context.Background(), slog.NewRecord(clock.Now(), slog.LevelWarn, m, 0))
	}
	h.Close()
	accounted := map[string]int{}
	last := map[string]time.Time{}
	lines := 0
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		lines++
		var l struct {
			Time    time.Time
			Msg     string
			Repeats *struct {
				Count int
				Ended bool
			}
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if l.Repeats == nil {
			accounted[l.Msg]++
		} else {
			accounted[l.Msg] += l.Repeats.Count
		}
		if l.Repeats != nil && l.Repeats.Ended {
			delete(last, l.Msg) // a new run of it may start at once
			continue
		}
		if prev, ok := last[l.Msg]; ok && l.Time.Sub(prev) < interval {
			t.Errorf("%q written at %s and again %s later, within the interval", l.Msg, prev.Format(time.TimeOnly), l.Time.Sub(prev))
		}
		last[l.Msg] = l.Time
	}
	if diff := cmp.Diff(occurred, accounted); diff != "" {
		t.Errorf("occurrences (-occurred +accounted for in the log):\n%s", diff)
	}
	t.Logf("%d occurrences of %d failures written as %d lines", occurred["a"]+occurred["b"]+occurred["c"], len(msgs), lines)
}

// TestRepeatsStart: Start's loop writes the counts without a hand-made sweep, and its stop closes.
func TestRepeatsStart(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var out bytes.Buffer
	h := NewRepeats(slog.NewJSONHandler(lockedWriter{&mu, &out}, nil), 50*time.Millisecond, nil)
	log := slog.New(h)
	stop := h.Start()
	log.Warn("x")
	log.Warn("x")
	testkit.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		mu.Lock()
		defer mu.Unlock()
		if !strings.Contains(out.String(), `"ended":true`) {
			return fmt.Errorf("no ended line, with an interval of 50ms:\n%s", out.String())
		}
		return nil
	})
	stop()
	log.Warn("x")
	log.Warn("x")
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(out.String(), "\n"); n != 5 {
		t.Errorf("after stop: %d lines, want 5 (the first, the count of the second, the end, and two passed on):\n%s", n, out.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}
