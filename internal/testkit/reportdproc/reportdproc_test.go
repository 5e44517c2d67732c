package reportdproc

import (
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestMain(m *testing.M) {
	code := m.Run()
	RemoveBinary()
	os.Exit(code)
}

func TestVarsOverride(t *testing.T) {
	t.Parallel()
	got := Vars(map[string]string{"REPORTD_ROWS_PER_DAY": "7", "REDIS_URL": "redis://127.0.0.1:1"})
	want := map[string]string{
		"REPORTD_ADDR":             "127.0.0.1:0",
		"REPORTD_ROWS_PER_DAY":     "7",
		"REPORTD_CHECK_INTERVAL":   "10ms",
		"REPORTD_SHUTDOWN_TIMEOUT": "5s",
		"REDIS_URL":                "redis://127.0.0.1:1",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Vars (-want +got):\n%s", diff)
	}
}

// TestStopAfterSIGSTOP: a reportd that serves is stopped by SIGSTOP, and Stop still ends it cleanly
// (exit 0), since it resumes the process to hear its SIGTERM.
func TestStopAfterSIGSTOP(t *testing.T) {
	t.Parallel()
	p := Start(t, "reportd", nil, Vars(nil))
	res, err := http.Get(p.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz = %d, want 200", res.StatusCode)
	}
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if p.Running() || p.Err() != nil || p.ExitStatus() != "exit 0" {
		t.Errorf("after Stop: running %v, %v (%s); want exit 0", p.Running(), p.Err(), p.ExitStatus())
	}
}

func TestKill(t *testing.T) {
	t.Parallel()
	p := Start(t, "worker", []string{"worker"}, Vars(nil))
	if p.URL != "" {
		t.Errorf("a worker alone has URL %q, want none", p.URL)
	}
	p.Kill()
	if got := p.ExitStatus(); got != "signal: killed" {
		t.Errorf("after Kill: %s, want signal: killed", got)
	}
}
