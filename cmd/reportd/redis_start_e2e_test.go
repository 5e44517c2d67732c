package main

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/testkit"
	"github.com/reportd/reportd/internal/testkit/reportdproc"
)

// TestRedisSettingsCheckedAtStart: a Redis that refuses reportd's password, or has no database of
// REDIS_URL's number, or is not the cluster REDIS_CLUSTER_ADDRS asks for, stops it from starting, with
// the reason and the setting to check and without the password; a Redis that does not answer yet does
// not: reportd serves, answering 503 until it does.
func TestRedisSettingsCheckedAtStart(t *testing.T) {
	t.Parallel()
	const password, wrong = "the-right-redis-pw", "not-the-redis-pw"
	srv := redistest.StartServer(t, "requirepass "+password)
	t.Run("wrong-password", func(t *testing.T) {
		t.Parallel()
		refusesToStart(t, reportdproc.Vars(map[string]string{"REDIS_URL": "redis://:" + wrong + "@" + srv.Addr}), "WRONGPASS", wrong)
	})
	t.Run("no-password", func(t *testing.T) {
		t.Parallel()
		refusesToStart(t, reportdproc.Vars(map[string]string{"REDIS_URL": srv.URL}), "NOAUTH", password)
	})
	t.Run("database-out-of-range", func(t *testing.T) {
		t.Parallel()
		// redis-server has 16 databases unless told otherwise.
		vars := reportdproc.Vars(map[string]string{"REDIS_URL": "redis://:" + password + "@" + srv.Addr + "/99"})
		if err := refusesToStart(t, vars, "DB index is out of range", password); err != nil && !strings.Contains(err.Error(), "REDIS_URL's database number") {
			t.Errorf("reportd refused to start with %q, want it to name REDIS_URL's database number", err)
		}
	})
	t.Run("cluster-addrs-of-one-redis", func(t *testing.T) {
		t.Parallel()
		vars := reportdproc.Vars(map[string]string{"REDIS_CLUSTER_ADDRS": srv.Addr, "REDIS_CLUSTER_PASSWORD": password})
		if err := refusesToStart(t, vars, "cluster support disabled", password); err != nil && !strings.Contains(err.Error(), "REDIS_CLUSTER_ADDRS") {
			t.Errorf("reportd refused to start with %q, want it to name REDIS_CLUSTER_ADDRS", err)
		}
	})
	t.Run("right-password", func(t *testing.T) {
		t.Parallel()
		in := start(t, nil, reportdproc.Vars(map[string]string{"REDIS_URL": "redis://:" + password + "@" + srv.Addr}))
		loc := submit(t, in.base, "2026-Q1")
		checkReport(t, in.base, loc, awaitDone(t, in.base, loc))
		checkNoPassword(t, in, password)
	})
	t.Run("redis-not-up-yet", func(t *testing.T) {
		t.Parallel()
		// A port nothing listens on: reportd starts, says so, and answers 503 with Retry-After.
		down := redistest.StartServer(t)
		addr := down.Addr
		down.Stop()
		in := start(t, nil, reportdproc.Vars(map[string]string{"REDIS_URL": "redis://" + addr}))
		if _, ok := in.log.WaitFor(0, nil, testkit.MsgIs("redis does not answer at start; serving 503 until it does")); !ok {
			t.Errorf("reportd did not say that Redis does not answer; log:\n%s", in.log)
		}
		res := mustTry(t, http.MethodPost, in.base+"/v1/reports", `{"range":"2026-01"}`)
		checkProblem(t, "POST with Redis down", res, http.StatusServiceUnavailable)
		if ra, err := strconv.Atoi(res.header.Get("Retry-After")); err != nil || ra < 1 {
			t.Errorf("503 with Retry-After %q, want whole seconds >= 1", res.header.Get("Retry-After"))
		}
		// And it recovers by itself once Redis is there.
		down.Restart()
		testkit.Eventually(t, 10*time.Second, 100*time.Millisecond, func() error {
			if res := mustTry(t, http.MethodPost, in.base+"/v1/reports", `{"range":"2026-01"}`); res.status != http.StatusAccepted {
				return fmt.Errorf("POST after Redis came up = %s, want 202", res)
			}
			return nil
		})
	})
}

// TestWarnsWhenRedisKeepsNothing: reportd warns at start when its Redis keeps nothing on disk, and not
// when it writes an append-only file.
func TestWarnsWhenRedisKeepsNothing(t *testing.T) {
	t.Parallel()
	const warning = "every queued job is lost when it restarts"
	for _, tc := range []struct {
		name string
		conf []string
		want bool
	}{
		{"no-persistence", nil, true},
		{"appendonly", []string{"appendonly yes"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := redistest.StartServer(t, tc.conf...)
			in := start(t, nil, reportdproc.Vars(map[string]string{"REDIS_URL": srv.URL}))
			if got := strings.Contains(in.log.String(), warning); got != tc.want {
				t.Errorf("warned that Redis keeps nothing: %v, want %v; log:\n%s", got, tc.want, in.log)
			}
		})
	}
}
