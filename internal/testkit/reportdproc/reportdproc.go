// Package reportdproc runs reportd as a child process, for the tests that need a real one: a process
// they can SIGTERM, SIGKILL or SIGSTOP, or one that serves a package other than cmd/reportd. It builds
// the binary once per test binary, starts it with Vars (the one environment of reportd under test)
// plus a test's variables, waits until it is ready, and keeps its log.
//
// cmd/reportd's own end-to-end tests call run in-process instead, with the same Vars.
//
// Only tests import it. A package whose tests start reportd calls RemoveBinary in its TestMain after
// m.Run.
package reportdproc

import (
	"fmt"
	"go/version"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reportd/reportd/internal/testkit"
)

// Vars returns the environment of a quick reportd under test, with vars added over it: a free
// loopback port (the listening line names it), jobs of a few milliseconds, a worker that looks for
// tasks every 10 ms, and a short drain. Without REDIS_URL (or REDIS_CLUSTER_ADDRS) in vars, reportd
// runs its embedded Redis.
func Vars(vars map[string]string) map[string]string {
	out := map[string]string{
		"REPORTD_ADDR":             "127.0.0.1:0",
		"REPORTD_ROWS_PER_DAY":     "500",
		"REPORTD_CHECK_INTERVAL":   "10ms",
		"REPORTD_SHUTDOWN_TIMEOUT": "5s",
	}
	maps.Copy(out, vars)
	return out
}

// ReadyMsg is the log line that says reportd run with args is ready: "listening" once it serves
// HTTP, or, for a worker alone, "report worker running".
func ReadyMsg(args []string) string {
	if len(args) == 1 && args[0] == "worker" {
		return "report worker running"
	}
	return "listening"
}

var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// Binary returns the path of the reportd binary, built on the first call into a temporary directory
// by the Go release that built this test binary (so that go.mod's toolchain line, or the caller's
// GOTOOLCHAIN, decides both).
func Binary() (string, error) {
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "reportdproc-")
		if built.err != nil {
			return
		}
		bin := filepath.Join(built.dir, "reportd")
		cmd := exec.Command("go", "build", "-o", bin, "github.com/reportd/reportd/cmd/reportd")
		cmd.Env = os.Environ()
		if v := runtime.Version(); version.IsValid(v) {
			cmd.Env = append(cmd.Env, "GOTOOLCHAIN="+v)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("build reportd: %v\n%s", err, out)
			return
		}
		built.bin = bin
	})
	return built.bin, built.err
}

// RemoveBinary deletes the binary that Binary built, if it built one.
func RemoveBinary() {
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
}

// Proc is one reportd process.
type Proc struct {
	Name    string           // what messages call it: "api", "worker-2"
	URL     string           // http://host:port once it serves HTTP; "" for a worker alone
	Log     *testkit.LogSink // its stdout and stderr, as written: a pipe, so reportd writes each line at once
	Started time.Time

	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error // what Wait returned, once exited is closed
}

// readyTimeout is how long Launch waits for the ready line: a cold start on a busy machine.
const readyTimeout = 20 * time.Second

// Launch runs the reportd binary with args ("api", "worker", or none for both) and exactly the
// variables vars (see Vars; REPORTD_* and REDIS_* of this process's environment are not passed on),
// and waits until it logs that it is ready (ReadyMsg). If it is not ready in 20 s, Launch kills it
// and returns an error with the end of its log. The caller stops it; should the test binary die
// first, the process is killed with it.
func Launch(name string, args []string, vars map[string]string) (*Proc, error) {
	p, err := spawn(name, args, vars)
	if err != nil {
		return nil, err
	}
	ready := ReadyMsg(args)
	l, ok := p.Log.WaitFor(readyTimeout, p.exited, testkit.MsgIs(ready))
	if !ok {
		p.Kill()
		return nil, fmt.Errorf("reportd %s did not log %q in %s (%s); log:\n%s", name, ready, readyTimeout, p.ExitStatus(), p.Log.Tail(80))
	}
	if ready == "listening" {
		p.URL = "http://" + l.Str("addr")
	}
	return p, nil
}

// RunToExit runs the reportd binary as Launch does, for a reportd that is to exit by itself (one that
// refuses to start), and waits for it to exit. If it is still running after timeout, RunToExit kills
// it and fails tb.
func RunToExit(tb testing.TB, name string, args []string, vars map[string]string, timeout time.Duration) *Proc {
	tb.Helper()
	p, err := spawn(name, args, vars)
	if err != nil {
		tb.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(timeout):
		p.Kill()
		tb.Fatalf("reportd %s still ran %s after it started; killed it; log:\n%s", name, timeout, p.Log.Tail(40))
	}
	return p
}

// spawn starts the reportd binary with args and exactly vars, as Launch says.
func spawn(name string, args []string, vars map[string]string) (*Proc, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REPORTD_") && !strings.HasPrefix(kv, "REDIS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &Proc{Name: name, Log: testkit.NewLogSink(), cmd: cmd, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.Log, p.Log
	// Should the test binary die, its children die with it instead of holding ports and Redis.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start reportd %s: %w", name, err)
	}
	p.Started = time.Now()
	go func() { p.waitErr = cmd.Wait(); close(p.exited) }()
	return p, nil
}

// Start is Launch for one test: it fails tb if reportd does not get ready, and stops it (Stop, 15 s)
// when the test ends. Should the test fail, it logs the end of reportd's log and saves the whole of it
// to a file that outlives the test.
func Start(tb testing.TB, name string, args []string, vars map[string]string) *Proc {
	tb.Helper()
	p, err := Launch(name, args, vars)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if _, err := p.Stop(15 * time.Second); err != nil {
			tb.Error(err)
		}
		if tb.Failed() {
			tb.Logf("log of %s (%s), whole in %s:\n%s", name, p.ExitStatus(), p.SaveLog(tb.Name()), p.Log.Tail(40))
		}
	})
	return p
}

// Exited is closed once the process has exited.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Pid is the process's id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Running reports whether the process has not exited yet.
func (p *Proc) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Err returns what waiting for the process returned once it has exited: nil for exit 0, and nil
// while it runs.
func (p *Proc) Err() error {
	if p.Running() {
		return nil
	}
	return p.waitErr
}

// ExitStatus says how the process is: "running", "exit 0", or how it ended ("signal: killed").
func (p *Proc) ExitStatus() string {
	if p.Running() {
		return "running"
	}
	if p.waitErr == nil {
		return "exit 0"
	}
	return p.waitErr.Error()
}

// Stop sends SIGTERM (and SIGCONT, for a process a test has stopped) and waits up to timeout for
// the process to exit; it returns how long the process took. If the process outlives timeout, Stop
// kills it and returns an error that says so. A process that has exited already takes 0.
func (p *Proc) Stop(timeout time.Duration) (time.Duration, error) {
	if !p.Running() {
		return 0, nil
	}
	begin := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	select {
	case <-p.exited:
		return time.Since(begin), nil
	case <-time.After(timeout):
		p.Kill()
		return time.Since(begin), fmt.Errorf("reportd %s did not exit %s after SIGTERM; killed it", p.Name, timeout)
	}
}

// Kill sends SIGKILL, as a crash would, and waits for the process to be gone.
func (p *Proc) Kill() {
	if !p.Running() {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Signal sends sig (SIGSTOP, SIGCONT, SIGHUP...) to the process.
func (p *Proc) Signal(sig syscall.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %v to reportd %s: %w", sig, p.Name, err)
	}
	return nil
}

// SaveLog writes the whole log so far to a file under the system's temporary directory, named for
// test (a test's name) and the process, and returns its path, or why it could not.
func (p *Proc) SaveLog(test string) string {
	dir := filepath.Join(os.TempDir(), "reportd-test-logs", strings.ReplaceAll(test, "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err.Error()
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%d.log", p.Name, p.Pid()))
	if err := os.WriteFile(path, []byte(p.Log.String()), 0o644); err != nil {
		return err.Error()
	}
	return path
}
