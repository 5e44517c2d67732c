package redistest

import (
	"errors"
	"net"
	"strconv"
	"testing"
)

// TestStartReportsTakenPort checks that a redis-server that cannot listen because another process
// holds its port is told apart from other failures, so that StartServer picks another port.
func TestStartReportsTakenPort(t *testing.T) {
	bin := redisServer(t)
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	s := &Server{Dir: t.TempDir(), tb: t}
	s.Addr = held.Addr().String()
	t.Cleanup(s.Stop)
	if err := s.start(bin); !errors.Is(err, errPortTaken) {
		t.Fatalf("start on a held port: %v, want errPortTaken", err)
	}
	if s.cmd != nil {
		t.Fatal("the failed server is still recorded as running")
	}

	// The same for the cluster bus port.
	c := &Server{Dir: t.TempDir(), tb: t, args: []string{"cluster-enabled yes"}}
	c.Addr = "127.0.0.1:" + strconv.Itoa(freePort(t))
	c.clusterPort = held.Addr().(*net.TCPAddr).Port
	t.Cleanup(c.Stop)
	if err := c.start(bin); !errors.Is(err, errPortTaken) {
		t.Fatalf("start with a held cluster bus port: %v, want errPortTaken", err)
	}
}

// TestFreePortAvoidsEphemeralRange checks that ports are handed out below the kernel's ephemeral
// range, where the outgoing connections of other tests are not given ports, and never twice.
func TestFreePortAvoidsEphemeralRange(t *testing.T) {
	first := ephemeralFirst()
	seen := map[int]bool{}
	for range 50 {
		p := freePort(t)
		if first-10000 >= 1000 && (p < 10000 || p >= first) {
			t.Errorf("port %d is outside [10000, %d)", p, first)
		}
		if seen[p] {
			t.Errorf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}

// TestStartServerAnswers starts a real server and stops it, then restarts it on the same port.
func TestStartServerAnswers(t *testing.T) {
	s := StartServer(t)
	ctx := t.Context()
	if err := s.Client(t).Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	s.Restart()
	if err := s.Client(t).Ping(ctx).Err(); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}
