package faults

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reportd/reportd/internal/redistest"
)

// logLine is one JSON line of a reportd log, and when the test read it.
type logLine struct {
	at     time.Time
	fields map[string]any
}

func (l logLine) str(k string) string { s, _ := l.fields[k].(string); return s }

// logSink collects a process's JSON log and lets a test wait for a line.
type logSink struct {
	mu      sync.Mutex
	partial []byte
	lines   []logLine
	raw     bytes.Buffer
	changed chan struct{} // closed, and replaced, whenever a line arrives
}

func newLogSink() *logSink { return &logSink{changed: make(chan struct{})} }

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.raw.Write(p)
	s.partial = append(s.partial, p...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		var f map[string]any
		if err := json.Unmarshal(s.partial[:i], &f); err != nil {
			f = map[string]any{"unparsed": string(s.partial[:i])}
		}
		s.lines = append(s.lines, logLine{at: now, fields: f})
		s.partial = s.partial[i+1:]
	}
	close(s.changed)
	s.changed = make(chan struct{})
	return len(p), nil
}

// all returns the lines that match accepts.
func (s *logSink) all(match func(logLine) bool) []logLine {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []logLine
	for _, l := range s.lines {
		if match(l) {
			out = append(out, l)
		}
	}
	return out
}

// waitFor returns the first line that match accepts, waiting up to timeout for it, or until stop is
// closed.
func (s *logSink) waitFor(timeout time.Duration, stop <-chan struct{}, match func(logLine) bool) (logLine, bool) {
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		changed := s.changed
		for _, l := range s.lines {
			if match(l) {
				s.mu.Unlock()
				return l, true
			}
		}
		s.mu.Unlock()
		select {
		case <-changed:
		case <-stop:
			stop = nil
			deadline = time.After(100 * time.Millisecond) // the last lines may still be on their way
		case <-deadline:
			return logLine{}, false
		}
	}
}

// tail returns the last n lines of the raw log.
func (s *logSink) tail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	lines := strings.Split(strings.TrimRight(s.raw.String(), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

func msgIs(msg string) func(logLine) bool {
	return func(l logLine) bool { return l.str("msg") == msg }
}

func jobMsg(msg, id string) func(logLine) bool {
	return func(l logLine) bool { return l.str("msg") == msg && l.str("job") == id }
}

// proc is one reportd process.
type proc struct {
	t       *testing.T
	name    string
	args    []string
	cmd     *exec.Cmd
	log     *logSink
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
	p := &proc{t: t, name: name, args: args, cmd: cmd, log: newLogSink(), exited: make(chan struct{})}
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
			t.Logf("log of %s (%s), whole in %s:\n%s", name, p.exitStatus(), p.saveLog(), p.log.tail(40))
		}
	})
	ready := "listening"
	if len(args) == 1 && args[0] == "worker" {
		ready = "report worker running"
	}
	l, ok := p.log.waitFor(20*time.Second, p.exited, msgIs(ready))
	if !ok {
		t.Fatalf("reportd %s did not log %q (%s); log:\n%s", name, ready, p.exitStatus(), p.log.tail(80))
	}
	if ready == "listening" {
		p.base = "http://" + l.str("addr")
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
	p.log.mu.Lock()
	defer p.log.mu.Unlock()
	if err := os.WriteFile(path, p.log.raw.Bytes(), 0o644); err != nil {
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
