package telemetry

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// RepeatInterval is how often, at most, reportd logs a failure that goes on: when Redis is away,
// asynq's loops and go-redis's pool would otherwise log the same failure hundreds of times a second.
const RepeatInterval = 5 * time.Second

// Repeats is a slog.Handler that keeps a failure that recurs from flooding the log. A warning or an
// error is passed on the first time. The same one again (the same level, message and attributes,
// compared as failureKey says) is held back and counted until the failure ends: until it has not
// recurred for two intervals. Once an interval, a failure that was held back is logged again, its
// latest occurrence with "repeats":{"count":N,"over":D}: N occurrences held back in the D since its
// previous line. When it ends, its latest occurrence is logged a last time with
// "repeats":{...,"ended":true,"lasted":D} (a failure that never recurred gets no such line). So two
// lines of one failure less than an interval apart have its ended line between them. Two intervals,
// not one: asynq's loops fail every 5 s or so while Redis is away, and each would otherwise end and
// begin again every time, two lines where one does.
//
// Lines below Warn pass straight on: a flood is of failures, and reportd's lines for each job cost
// nothing more. A Repeats logs its held-back counts only while Start's loop runs (or when Sweep is
// called); Close writes what it holds and turns it into a plain pass-through.
type Repeats struct {
	next slog.Handler
	// prefix is the attributes and groups of WithAttrs and WithGroup, as failureKey writes them.
	prefix string
	s      *repeatState
}

// repeatState is what a Repeats and the handlers derived from it share.
type repeatState struct {
	interval time.Duration
	now      func() time.Time
	mu       sync.Mutex
	runs     map[string]*run
	runsMade uint64 // how many runs were made: each run's number, by which a sweep writes in order
	closed   bool
}

// run is one failure while it recurs.
type run struct {
	next     slog.Handler // the handler it was logged through (WithAttrs and WithGroup applied)
	n        uint64       // its number: runs begun earlier have smaller ones
	latest   slog.Record  // its latest occurrence
	first    time.Time    // when it was first logged
	seen     time.Time    // when it last occurred
	shown    time.Time    // when a line of it was last written
	held     int          // occurrences held back since shown
	repeated bool         // whether any occurrence was held back at all
}

// NewRepeats returns a Repeats in front of next, with interval (RepeatInterval when zero) and the
// clock now (time.Now when nil).
func NewRepeats(next slog.Handler, interval time.Duration, now func() time.Time) *Repeats {
	if interval <= 0 {
		interval = RepeatInterval
	}
	if now == nil {
		now = time.Now
	}
	return &Repeats{next: next, s: &repeatState{interval: interval, now: now, runs: map[string]*run{}}}
}

// Enabled is next's.
func (h *Repeats) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// WithAttrs keeps the limit around the derived handler, and the attributes in the key.
func (h *Repeats) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	var b strings.Builder
	b.WriteString(h.prefix)
	for _, a := range attrs {
		writeAttr(&b, a)
	}
	return &Repeats{next: h.next.WithAttrs(attrs), prefix: b.String(), s: h.s}
}

// WithGroup keeps the limit around the derived handler, and the group in the key.
func (h *Repeats) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &Repeats{next: h.next.WithGroup(name), prefix: h.prefix + name + "{", s: h.s}
}

// Handle passes r on unless it is a failure that has not ended. An occurrence's time is
// the record's own (the clock's when it has none), so that the log's times keep the interval.
func (h *Repeats) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return h.next.Handle(ctx, r)
	}
	at := r.Time
	if at.IsZero() {
		at = h.s.now()
	}
	key := h.prefix + failureKey(r)
	s := h.s
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return h.next.Handle(ctx, r)
	}
	var ended *pending
	if ru := s.runs[key]; ru != nil {
		if !s.over(ru, at) {
			ru.held++
			ru.repeated = true
			if at.After(ru.seen) { // lines of several goroutines may come out of order
				ru.seen = at
			}
			ru.latest = r.Clone()
			s.mu.Unlock()
			return nil
		}
		// It ended, and the sweep has not said so yet.
		ended = s.end(key, ru, at)
	}
	s.runsMade++
	s.runs[key] = &run{next: h.next, n: s.runsMade, latest: r.Clone(), first: at, seen: at, shown: at}
	s.mu.Unlock()
	if ended != nil {
		ended.write()
	}
	return h.next.Handle(ctx, r)
}

// over reports whether ru has ended by at: it has not occurred for two intervals.
func (s *repeatState) over(ru *run, at time.Time) bool { return at.Sub(ru.seen) >= 2*s.interval }

// pending is a line to write once the lock is released.
type pending struct {
	next slog.Handler
	r    slog.Record
	n    uint64 // its run's number
}

func (p pending) write() { _ = p.next.Handle(context.Background(), p.r) }

// writeAll writes ps in the order their failures began.
func writeAll(ps []pending) {
	slices.SortFunc(ps, func(a, b pending) int { return cmp.Compare(a.n, b.n) })
	for _, p := range ps {
		p.write()
	}
}

// line is ru's latest occurrence again, at now, with what was held back since its last line.
func (ru *run) line(now time.Time, extra ...slog.Attr) pending {
	r := ru.latest.Clone()
	r.Time = now
	attrs := append([]slog.Attr{slog.Int("count", ru.held), slog.Duration("over", now.Sub(ru.shown))}, extra...)
	r.AddAttrs(slog.Attr{Key: "repeats", Value: slog.GroupValue(attrs...)})
	return pending{next: ru.next, r: r, n: ru.n}
}

// end forgets the run at key and returns its ended line, or nil if nothing of it was held back.
func (s *repeatState) end(key string, ru *run, now time.Time) *pending {
	delete(s.runs, key)
	if !ru.repeated {
		return nil
	}
	p := ru.line(now, slog.Bool("ended", true), slog.Duration("lasted", ru.seen.Sub(ru.first)))
	return &p
}

// locked calls take under the lock with the clock's now, then writes the lines it returned once the
// lock is released, in the order their failures began.
func (s *repeatState) locked(take func(now time.Time) []pending) {
	now := s.now()
	s.mu.Lock()
	out := take(now)
	s.mu.Unlock()
	writeAll(out)
}

// Sweep writes, as of the clock's now, the counts that are due and the ends of the failures that
// ended.
func (h *Repeats) Sweep() {
	s := h.s
	s.locked(func(now time.Time) (out []pending) {
		for key, ru := range s.runs {
			switch {
			case s.over(ru, now):
				if p := s.end(key, ru, now); p != nil {
					out = append(out, *p)
				}
			case ru.held > 0 && now.Sub(ru.shown) >= s.interval:
				out = append(out, ru.line(now))
				ru.held, ru.shown = 0, now
			}
		}
		return out
	})
}

// Close writes the counts of what is held back (not ended: the process stops first) and passes every
// later line straight on.
func (h *Repeats) Close() {
	s := h.s
	s.locked(func(now time.Time) (out []pending) {
		for key, ru := range s.runs {
			if ru.held > 0 {
				out = append(out, ru.line(now))
			}
			delete(s.runs, key)
		}
		s.closed = true
		return out
	})
}

// Start sweeps five times an interval until stop is called, which then closes h.
func (h *Repeats) Start() (stop func()) {
	t := time.NewTicker(h.s.interval / 5)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				h.Sweep()
			}
		}
	}()
	return sync.OnceFunc(func() {
		t.Stop()
		close(quit)
		<-done
		h.Close()
	})
}

// failureKey is what makes two records the same failure: their level, their message with every run
// of digits read as one (a port, an address, a count of attempts in a library's sentence), and their
// attributes, where an error value counts by its text read the same way, and durations, times and
// floats, which measure each occurrence (a retry's backoff, a timestamp), do not count.
func failureKey(r slog.Record) string {
	var b strings.Builder
	b.WriteString(r.Level.String())
	b.WriteByte(0x1f)
	writeDigitless(&b, r.Message)
	b.WriteByte(0x1f)
	r.Attrs(func(a slog.Attr) bool {
		writeAttr(&b, a)
		return true
	})
	return b.String()
}

func writeAttr(b *strings.Builder, a slog.Attr) {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindDuration, slog.KindTime, slog.KindFloat64:
		return
	case slog.KindGroup:
		b.WriteString(a.Key)
		b.WriteByte('{')
		for _, g := range v.Group() {
			writeAttr(b, g)
		}
		b.WriteByte('}')
		return
	}
	b.WriteString(a.Key)
	b.WriteByte('=')
	if err, ok := v.Any().(error); ok && v.Kind() == slog.KindAny {
		writeDigitless(b, err.Error())
	} else {
		b.WriteString(v.String())
	}
	b.WriteByte(0x1f)
}

// writeDigitless writes s with every run of ASCII digits as one '#'.
func writeDigitless(b *strings.Builder, s string) {
	digits := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' {
			if !digits {
				b.WriteByte('#')
			}
			digits = true
			continue
		}
		digits = false
		b.WriteByte(c)
	}
}
