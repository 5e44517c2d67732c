// Package faults holds fault-injection tests of reportd: real redis-server and reportd processes,
// killed, stopped and restarted while they work. They need redis-server on PATH (they skip without
// it, or fail with REPORTD_REQUIRE_REDIS=1); the worker-SIGKILL test waits for asynq's crash
// recovery (60-120 s). REPORTD_LONG_TESTS=1 adds the slower tests.
package faults

import (
	"fmt"
	"os"
	"testing"

	"github.com/reportd/reportd/internal/testkit/reportdproc"
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	defer reportdproc.RemoveBinary()
	// Built before the tests, so that no test's timings include the build.
	if _, err := reportdproc.Binary(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// skipShort skips a test that takes long, why, under go test -short.
func skipShort(t *testing.T, why string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("-short: this test %s", why)
	}
}
