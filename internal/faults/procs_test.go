package faults

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/testkit"
	"github.com/reportd/reportd/internal/testkit/reportdproc"
)

// adminToken is the admin token of every reportd of these tests.
const adminToken = "faults-admin-token-0123456789"

// reportdVars are the variables every reportd of these tests runs with: reportdproc.Vars, on the
// redis-server at redisURL, with a 2 s drain and adminToken; vars override them.
func reportdVars(redisURL string, vars map[string]string) map[string]string {
	out := map[string]string{
		"REDIS_URL":                redisURL,
		"REPORTD_SHUTDOWN_TIMEOUT": "2s",
		"REPORTD_ADMIN_TOKEN":      adminToken,
	}
	maps.Copy(out, vars)
	return reportdproc.Vars(out)
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
	testkit.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !exitedPid(pid) {
			return fmt.Errorf("redis-server %d did not exit after SIGTERM", pid)
		}
		return nil
	})
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
