package faults

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/testkit"
)

// proc is one reportd process.
type proc struct {
	t       *testing.T
	name    string
	args    []string
	cmd     *exec.Cmd
	log     *testkit.LogSink
	base    string // http://host:port, when it serves the API
	started time.Time
	exited  chan struct{}
	waitErr error // what Wait returned, once exited is closed
}

// reportdVars are the variables every reportd of these tests runs with: a free loopback port, no
// per-client limits, a short drain, tiny jobs (REPORTD_ROWS_PER_DAY); vars override them.
func reportdVars(redisURL string, vars map[string]string) map[string]string {
	out := map[string]string{
		"REDIS_URL":                redisURL,
		"REPORTD_ADDR":             "127.0.0.1:0",
		"REPORTD_RATE_LIMIT":       "0",
		"REPORTD_MAX_OPEN_JOBS":    "0",
		"REPORTD_SHUTDOWN_TIMEOUT": "2s",
		"REPORTD_ROWS_PER_DAY":     "500",
		"REPORTD_ADMIN_TOKEN":      "faults-admin-token-0123456789",
	}
	for k, v := range vars {
		out[k] = v
	}
	return out
}

// startReportd runs the reportd binary with args ("api", "worker", or none for both) and vars, waits
// until it serves (a worker alone: until its worker runs), and stops it when the test ends.
func startReportd(t *testing.T, name string, args []string, vars map[string]string) *proc {
	t.Helper()
	cmd := exec.Command(reportdBin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REPORTD_") && !strings.HasPrefix(kv, "REDIS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &proc{t: t, name: name, args: args, cmd: cmd, log: testkit.NewLogSink(), exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	// Should the test binary die, its children die with it instead of holding ports and Redis.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start reportd %s: %v", name, err)
	}
	p.started = time.Now()
	go func() { p.waitErr = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.stop(15 * time.Second)
		if t.Failed() {
			t.Logf("log of %s (%s), whole in %s:\n%s", name, p.exitStatus(), p.saveLog(), p.log.Tail(40))
		}
	})
	ready := "listening"
	if len(args) == 1 && args[0] == "worker" {
		ready = "report worker running"
	}
	l, ok := p.log.WaitFor(20*time.Second, p.exited, testkit.MsgIs(ready))
	if !ok {
		t.Fatalf("reportd %s did not log %q (%s); log:\n%s", name, ready, p.exitStatus(), p.log.Tail(80))
	}
	if ready == "listening" {
		p.base = "http://" + l.Str("addr")
	}
	return p
}

// saveLog writes the whole log to a file that outlives the test, for a failed test, and returns its
// path.
func (p *proc) saveLog() string {
	dir := filepath.Join(os.TempDir(), "reportd-faults-logs", strings.ReplaceAll(p.t.Name(), "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err.Error()
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%d.log", p.name, p.cmd.Process.Pid))
	if err := os.WriteFile(path, []byte(p.log.String()), 0o644); err != nil {
		return err.Error()
	}
	return path
}

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func (p *proc) exitStatus() string {
	if p.running() {
		return "running"
	}
	if p.waitErr == nil {
		return "exit 0"
	}
	return p.waitErr.Error()
}

// stop sends SIGTERM and waits up to timeout for the process to exit, then kills it. It returns how
// long the process took to exit.
func (p *proc) stop(timeout time.Duration) time.Duration {
	if !p.running() {
		return 0
	}
	begin := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return time.Since(begin)
	case <-time.After(timeout):
		p.t.Errorf("reportd %s did not exit %s after SIGTERM; killing it", p.name, timeout)
		_ = p.cmd.Process.Kill()
		<-p.exited
		return time.Since(begin)
	}
}

// kill sends SIGKILL, as a crash would, and waits for the process to be gone.
func (p *proc) kill() {
	if !p.running() {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// redisProc is a redis-server that the test can signal as it likes.
type redisProc struct {
	*redistest.Server
	pidFile string
}

// durableConf is what makes every acknowledged write survive a restart of redis-server, SIGKILL
// included: the append-only file, written and fsynced before each reply.
var durableConf = []string{"appendonly yes", "appendfsync always"}

// startRedis starts a redis-server with the config lines conf, stopped when the test ends.
func startRedis(t *testing.T, conf ...string) *redisProc {
	t.Helper()
	pidFile := filepath.Join(t.TempDir(), "redis.pid")
	s := redistest.StartServer(t, append([]string{"pidfile " + pidFile}, conf...)...)
	r := &redisProc{Server: s, pidFile: pidFile}
	// Cleanups run last-registered first: a stopped (SIGSTOP) server is resumed before redistest stops it.
	t.Cleanup(func() {
		if pid, err := r.pid(); err == nil {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	})
	return r
}

func (r *redisProc) pid() (int, error) {
	b, err := os.ReadFile(r.pidFile)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// terminate stops redis-server with SIGTERM (a graceful shutdown, which writes its files) and waits
// until it has exited.
func (r *redisProc) terminate(t *testing.T) {
	t.Helper()
	pid, err := r.pid()
	if err != nil {
		t.Fatalf("redis-server pid: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !exitedPid(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server %d did not exit 10s after SIGTERM", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.Server.Stop() // reaps it: it has exited, so redistest's SIGINT reaches no one
}

// signal sends sig (SIGSTOP, SIGCONT) to redis-server.
func (r *redisProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	pid, err := r.pid()
	if err != nil {
		t.Fatalf("redis-server pid: %v", err)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatalf("signal %v to redis-server: %v", sig, err)
	}
}

// exitedPid reports whether process pid has exited (it is a zombie, or gone).
func exitedPid(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if errors.Is(err, os.ErrNotExist) {
		return true
	}
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces and parentheses, so look after the last ')'.
	rest := string(b[bytes.LastIndexByte(b, ')')+1:])
	f := strings.Fields(rest)
	return len(f) > 0 && (f[0] == "Z" || f[0] == "X")
}
