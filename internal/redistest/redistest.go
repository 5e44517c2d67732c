// Package redistest starts Redis servers for tests: a real redis-server on a free loopback port when one
// is on PATH, and an embedded miniredis always. Setting REPORTD_REQUIRE_REDIS=1 turns the skip of a test
// that needs redis-server, when it is missing, into a failure, so that CI cannot pass without it.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// RequireEnv is the variable that makes a missing redis-server fail the tests instead of skipping them.
const RequireEnv = "REPORTD_REQUIRE_REDIS"

// Backend is a Redis that a test can use.
type Backend struct {
	// Name says which kind it is: "redis-server" or "miniredis".
	Name string
	// URL is its redis:// URL.
	URL string
	// Addr is its host:port.
	Addr string
}

// Client returns a go-redis client on b, closed when the test ends.
func (b Backend) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: b.Addr})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// Server is a redis-server process started by StartServer.
type Server struct {
	Backend
	Dir  string
	cmd  *exec.Cmd
	args []string
	tb   testing.TB
}

// StartServer starts a redis-server on a free loopback port, with its data in a temporary directory and
// extra config lines args ("appendonly yes", ...), and stops it when the test ends. Without redis-server
// on PATH it skips the test, or fails it when REPORTD_REQUIRE_REDIS=1.
func StartServer(tb testing.TB, args ...string) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			tb.Fatalf("redis-server is not on PATH and %s=1: %v", RequireEnv, err)
		}
		tb.Skipf("redis-server is not on PATH (install it, e.g. apt-get install redis-server; %s=1 makes this a failure)", RequireEnv)
	}
	s := &Server{Dir: tb.TempDir(), args: args, tb: tb}
	s.Addr = "127.0.0.1:" + strconv.Itoa(freePort(tb))
	s.URL = "redis://" + s.Addr
	s.Name = "redis-server"
	s.start(bin)
	tb.Cleanup(s.Stop)
	return s
}

func (s *Server) start(bin string) {
	s.tb.Helper()
	_, port, _ := net.SplitHostPort(s.Addr)
	conf := []string{"port " + port, "bind 127.0.0.1", "dir " + s.Dir, "save \"\"", "appendonly no", "protected-mode yes"}
	conf = append(conf, s.args...)
	confPath := filepath.Join(s.Dir, "redis.conf")
	if err := os.WriteFile(confPath, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		s.tb.Fatalf("write redis.conf: %v", err)
	}
	s.cmd = exec.Command(bin, confPath)
	logf, err := os.Create(filepath.Join(s.Dir, "redis.log"))
	if err != nil {
		s.tb.Fatalf("create redis.log: %v", err)
	}
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		s.tb.Fatalf("start redis-server: %v", err)
	}
	if err := waitPing(s.Addr, 10*time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
		s.tb.Fatalf("redis-server on %s did not answer: %v\n%s", s.Addr, err, log)
	}
}

// Stop stops the server (SIGTERM, then SIGKILL after 5 s); stopping a stopped server does nothing.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

// Kill stops the server with SIGKILL, as a crash would.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart starts a stopped server again on the same port and data directory.
func (s *Server) Restart() {
	s.tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		s.tb.Fatalf("redis-server: %v", err)
	}
	s.start(bin)
}

// Embedded starts a miniredis, with TTLs that run on the wall clock, and closes it when the test ends.
func Embedded(tb testing.TB) Backend {
	tb.Helper()
	m := miniredis.NewMiniRedis()
	m.ClockTTL(true)
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		tb.Fatalf("start miniredis: %v", err)
	}
	tb.Cleanup(m.Close)
	return Backend{Name: "miniredis", URL: "redis://" + m.Addr(), Addr: m.Addr()}
}

// Backends returns every Redis the contract suites run against: the embedded one, and a real
// redis-server when there is one (see StartServer for when its absence fails the test).
func Backends(tb testing.TB) []Backend {
	tb.Helper()
	out := []Backend{Embedded(tb)}
	if _, err := exec.LookPath("redis-server"); err == nil || os.Getenv(RequireEnv) == "1" {
		out = append(out, StartServer(tb).Backend)
	} else {
		tb.Logf("redis-server is not on PATH: running against miniredis only")
	}
	return out
}

// CommandStats returns the calls per command from INFO commandstats, e.g. {"get": 12, "evalsha": 3}.
func CommandStats(ctx context.Context, c redis.UniversalClient) (map[string]int64, error) {
	info, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, fmt.Errorf("info commandstats: %w", err)
	}
	out := map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":calls=")
		if !ok || !strings.HasPrefix(line, "cmdstat_") {
			continue
		}
		calls, _, _ := strings.Cut(rest, ",")
		n, err := strconv.ParseInt(calls, 10, 64)
		if err == nil {
			out[name] = n
		}
	}
	return out, nil
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitPing(addr string, timeout time.Duration) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// LongEnv is the variable that runs the tests that take minutes (failovers, crash recovery); CI sets it.
const LongEnv = "REPORTD_LONG_TESTS"

// Long skips the test unless REPORTD_LONG_TESTS=1, saying why it is long.
func Long(tb testing.TB, why string) {
	tb.Helper()
	if os.Getenv(LongEnv) != "1" {
		tb.Skipf("%s; set %s=1 to run it", why, LongEnv)
	}
}
