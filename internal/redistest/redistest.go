// Package redistest starts Redis servers for tests: a real redis-server on a free loopback port when one
// is on PATH, and an embedded miniredis always. Setting REPORTD_REQUIRE_REDIS=1 turns the skip of a test
// that needs redis-server, when it is missing, into a failure, so that CI cannot pass without it.
package redistest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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
	Dir string
	// TLSAddr is the host:port of its TLS port, for a server started with one; empty otherwise.
	TLSAddr string

	clusterPort int  // the cluster bus port, for a cluster node; 0 otherwise
	wantTLS     bool // give it a TLS port (the caller's args configure its certificates)
	tlsPort     int
	sentinel    bool // a Sentinel (redis-server --sentinel), not a data server
	cmd         *exec.Cmd
	exited      chan struct{} // closed when cmd has exited and been waited for
	args        []string
	tb          testing.TB
}

// errPortTaken is start's answer when redis-server could not listen because another process holds
// the port: the caller picks another port and tries again.
var errPortTaken = errors.New("port already in use")

// StartServer starts a redis-server on a free loopback port, with its data in a temporary directory and
// extra config lines args ("appendonly yes", ...), and stops it when the test ends. Without redis-server
// on PATH it skips the test, or fails it when REPORTD_REQUIRE_REDIS=1.
func StartServer(tb testing.TB, args ...string) *Server {
	tb.Helper()
	return startServer(tb, false, args...)
}

func startServer(tb testing.TB, clusterNode bool, args ...string) *Server {
	tb.Helper()
	return startProcess(tb, &Server{Dir: tb.TempDir(), args: args, tb: tb}, clusterNode)
}

// startProcess starts s (its Dir, args and kind set) on free ports.
func startProcess(tb testing.TB, s *Server, clusterNode bool) *Server {
	tb.Helper()
	bin := redisServer(tb)
	s.Name = "redis-server"
	tb.Cleanup(s.Stop)
	// A port that was free when it was picked can be taken before redis-server binds it, by another
	// test process doing the same: pick again, a few times, rather than fail the test.
	for attempt := 1; ; attempt++ {
		s.Addr = "127.0.0.1:" + strconv.Itoa(freePort(tb))
		s.URL = "redis://" + s.Addr
		if clusterNode {
			s.clusterPort = freePort(tb)
		}
		if s.wantTLS {
			s.tlsPort = freePort(tb)
			s.TLSAddr = "127.0.0.1:" + strconv.Itoa(s.tlsPort)
		}
		err := s.start(bin)
		if err == nil {
			return s
		}
		if !errors.Is(err, errPortTaken) || attempt == 5 {
			tb.Fatalf("%v", err)
		}
		tb.Logf("redistest: %v; picking other ports", err)
	}
}

func redisServer(tb testing.TB) string {
	tb.Helper()
	return lookPath(tb, "redis-server", "install it, e.g. apt-get install redis-server")
}

// lookPath returns where program is on PATH. Without it, it skips tb, saying how to get it (install),
// or fails tb when RequireEnv is 1.
func lookPath(tb testing.TB, program, install string) string {
	tb.Helper()
	path, err := exec.LookPath(program)
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			tb.Fatalf("%s is not on PATH and %s=1: %v", program, RequireEnv, err)
		}
		tb.Skipf("%s is not on PATH (%s; %s=1 makes this a failure)", program, install, RequireEnv)
	}
	return path
}

// start runs redis-server on s.Addr and waits until it answers PING. It returns errPortTaken when
// the server exited because a port it was to listen on was in use.
func (s *Server) start(bin string) error {
	_, port, _ := net.SplitHostPort(s.Addr)
	conf := []string{"port " + port, "bind 127.0.0.1", "dir " + s.Dir}
	if !s.sentinel {
		conf = append(conf, "save \"\"", "appendonly no", "protected-mode yes")
	}
	if s.clusterPort != 0 {
		// The cluster bus listens on port+10000 unless told otherwise: give it a free port of its own.
		conf = append(conf, "cluster-port "+strconv.Itoa(s.clusterPort))
	}
	if s.tlsPort != 0 {
		conf = append(conf, "tls-port "+strconv.Itoa(s.tlsPort))
	}
	conf = append(conf, s.args...)
	confPath := filepath.Join(s.Dir, "redis.conf")
	if err := os.WriteFile(confPath, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		return fmt.Errorf("write redis.conf: %w", err)
	}
	logPath := filepath.Join(s.Dir, "redis.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("create redis.log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, confPath)
	if s.sentinel {
		cmd.Args = append(cmd.Args, "--sentinel") // Sentinel rewrites its config file: it is s.Dir's
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited
	if err := waitPing(s.Addr, exited, 10*time.Second); err != nil {
		s.Kill()
		log, _ := os.ReadFile(logPath)
		if bytes.Contains(log, []byte("Address already in use")) {
			return fmt.Errorf("redis-server on %s: %w", s.Addr, errPortTaken)
		}
		return fmt.Errorf("redis-server on %s did not answer: %v\n%s", s.Addr, err, log)
	}
	return nil
}

// Stop stops the server (SIGTERM, then SIGKILL after 5 s); stopping a stopped server does nothing.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

// Kill stops the server with SIGKILL, as a crash would.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart starts a stopped server again on the same ports and data directory. Should another process
// have taken a port meanwhile, it tries again for up to 10 s before failing the test: its clients know
// only this address.
func (s *Server) Restart() {
	s.tb.Helper()
	bin := redisServer(s.tb)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.start(bin)
		if err == nil {
			return
		}
		if !errors.Is(err, errPortTaken) || time.Now().After(deadline) {
			s.tb.Fatalf("restart: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
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

// freePort returns a loopback port that no one was listening on a moment ago. It picks at random
// below the kernel's ephemeral range, where neither the outgoing connections of the many clients
// these tests run nor other tests' listeners on port 0 are given ports, and never hands out the same
// port twice in one process. It can still lose a race with another process; start detects that.
func freePort(tb testing.TB) int {
	tb.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	const lowest = 10000
	if first := ephemeralFirst(); first-lowest >= 1000 {
		for range 100 {
			p := lowest + rand.IntN(first-lowest)
			if portsGiven[p] {
				continue
			}
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				continue
			}
			_ = l.Close()
			portsGiven[p] = true
			return p
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	p := l.Addr().(*net.TCPAddr).Port
	portsGiven[p] = true
	return p
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// ephemeralFirst is the first port of the kernel's ephemeral range (Linux's
// /proc/sys/net/ipv4/ip_local_port_range), or 32768 where that cannot be read.
func ephemeralFirst() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}

// waitPing waits until the server on addr answers PING, it exits (exited is closed), or timeout passes.
func waitPing(addr string, exited <-chan struct{}, timeout time.Duration) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond, ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil || strings.HasPrefix(err.Error(), "NOAUTH") { // a server with a password answers too
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
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

// MeasureEnv is the variable that runs the measurements (a drain, shard scaling, memory), which time
// or size reportd rather than test it; .ci/bench.sh sets it.
const MeasureEnv = "REPORTD_MEASURE"

// Measurement skips the test unless REPORTD_MEASURE=1, saying what kind of measurement it is.
func Measurement(tb testing.TB, what string) {
	tb.Helper()
	if os.Getenv(MeasureEnv) != "1" {
		tb.Skipf("%s; set %s=1 to run it", what, MeasureEnv)
	}
}

// EachBackend runs fn in a parallel subtest per Redis backend, each with its own Redis.
func EachBackend(t *testing.T, fn func(t *testing.T, b Backend)) {
	t.Helper()
	for _, b := range Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, b)
		})
	}
}

// Pid is the process id of the running server, or 0.
func (s *Server) Pid() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}
