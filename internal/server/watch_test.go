package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"

	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/testkit"
)

// TestWatchRedis: an outage is one "redis unreachable" line when it starts and one "redis reachable"
// when it ends, however many reads fail in between; a Redis away at start is said back once.
func TestWatchRedis(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		reachable bool // at start
	}{
		{"up-at-start", true},
		{"away-at-start", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := miniredis.RunT(t)
			g := newGate(t, m.Addr())
			rdb, err := store.NewClient(asynq.RedisClientOpt{Addr: g.addr()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = rdb.Close() })
			sink := testkit.NewLogSink()
			s := New(Options{Redis: rdb, Store: store.NewStore(rdb, time.Hour, time.Hour), Log: slog.New(slog.NewJSONHandler(sink, nil))})
			g.set(tc.reachable)
			stop := s.WatchRedis(context.Background(), 10*time.Millisecond, tc.reachable)
			t.Cleanup(stop)
			unreachable, reachable := testkit.MsgIs("redis unreachable"), testkit.MsgIs("redis reachable")
			if tc.reachable {
				g.set(false)
				if l, ok := sink.WaitFor(10*time.Second, nil, unreachable); !ok || l.Str("err") == "" {
					t.Fatalf("no redis unreachable line with its error once Redis was away: %v; log:\n%s", l.Fields, sink)
				}
			}
			// Many reads fail: each dials (and is refused) at least once.
			refusedBefore := g.refusedCount()
			testkit.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
				if n := g.refusedCount() - refusedBefore; n < 30 {
					return fmt.Errorf("%d connections refused since, want 30", n)
				}
				return nil
			})
			g.set(true)
			l, ok := sink.WaitFor(10*time.Second, nil, reachable)
			if !ok {
				t.Fatalf("no redis reachable line once Redis was back; log:\n%s", sink)
			}
			if ns, ok := l.Fields["away"].(float64); !ok || ns <= 0 { // slog's JSON: nanoseconds
				t.Errorf("redis reachable line without the time away: %v", l.Fields)
			}
			// And many reads succeed, said nothing of.
			commandsBefore := m.CommandCount()
			testkit.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
				if n := m.CommandCount() - commandsBefore; n < 30 {
					return fmt.Errorf("%d commands since, want 30", n)
				}
				return nil
			})
			stop()
			wantAway := 0
			if tc.reachable {
				wantAway = 1
			}
			if away, back := len(sink.All(unreachable)), len(sink.All(reachable)); away != wantAway || back != 1 {
				t.Errorf("redis unreachable %d times, reachable %d times; want %d and 1; log:\n%s", away, back, wantAway, sink)
			}
		})
	}
}

// gate is a TCP address in front of a Redis that, while shut, closes every connection at once (and
// the ones it let through), as a Redis that is away would.
type gate struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	open    bool
	refused int
	conns   map[net.Conn]bool
}

func newGate(t *testing.T, target string) *gate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { _ = ln.Close(); g.set(false) })
	go g.serve()
	return g
}

func (g *gate) addr() string { return g.ln.Addr().String() }

func (g *gate) refusedCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.refused
}

// set opens or shuts g; shutting it closes the connections it let through.
func (g *gate) set(open bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = open
	if !open {
		for c := range g.conns {
			_ = c.Close()
			delete(g.conns, c)
		}
	}
}

func (g *gate) serve() {
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		g.mu.Lock()
		if !g.open {
			g.refused++
			g.mu.Unlock()
			_ = c.Close()
			continue
		}
		up, err := net.Dial("tcp", g.target)
		if err != nil {
			g.mu.Unlock()
			_ = c.Close()
			continue
		}
		g.conns[c], g.conns[up] = true, true
		g.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
		go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
	}
}
