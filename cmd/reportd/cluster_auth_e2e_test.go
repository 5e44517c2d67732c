package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/store"
	"github.com/reportd/reportd/internal/testkit"
	"github.com/reportd/reportd/internal/testkit/reportdproc"
)

// clusterPassword is the requirepass of the clusters below; no log line may carry it.
const clusterPassword = "cluster-s3cret-pw"

// TestClusterAuthE2E runs reportd on a 3-master Redis Cluster that requires a password: with
// REDIS_CLUSTER_PASSWORD (and with REDIS_CLUSTER_USERNAME and REDIS_CLUSTER_PASSWORD_FILE) a job goes
// 202, 303, result; with a wrong password, or none, or a REDIS_URL of one node with a database number,
// reportd refuses to start, saying why.
func TestClusterAuthE2E(t *testing.T) {
	t.Parallel()
	if raceDetector {
		t.Skip("cluster flows run in the plain pass, as TestClusterE2E does")
	}
	began := time.Now()
	c := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3, Password: clusterPassword})
	t.Logf("3-master cluster with a password on %v up in %s", c.Addrs, time.Since(began).Round(time.Millisecond))
	refusesWithoutPassword(t, c.Addrs, nil)
	addrs := strings.Join(c.Addrs, ",")

	t.Run("password", func(t *testing.T) {
		t.Parallel()
		in := start(t, nil, reportdproc.Vars(map[string]string{"REDIS_CLUSTER_ADDRS": addrs, "REDIS_CLUSTER_PASSWORD": clusterPassword}))
		checkLoggedCluster(t, in, "", false)
		loc := submit(t, in.base, "2026-Q1")
		checkReport(t, in.base, loc, awaitDone(t, in.base, loc))
		// The job is in the cluster that asked for the password (which c.Client gives).
		n, err := c.Client(t).Exists(context.Background(), "asynq:{"+store.QueueOf(strings.TrimPrefix(loc, "/v1/reports/"))+"}:t:"+strings.TrimPrefix(loc, "/v1/reports/")).Result()
		if err != nil || n != 1 {
			t.Errorf("the job's task is not in the cluster: %d %v", n, err)
		}
		if res := mustTry(t, http.MethodGet, in.base+"/readyz", ""); res.status != http.StatusOK {
			t.Errorf("GET /readyz = %s, want 200", res)
		}
		checkNoPassword(t, in, clusterPassword)
	})

	t.Run("user-and-password-file", func(t *testing.T) {
		t.Parallel()
		file := filepath.Join(t.TempDir(), "redis-password")
		if err := os.WriteFile(file, []byte(clusterPassword+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		in := start(t, nil, reportdproc.Vars(map[string]string{
			"REDIS_CLUSTER_ADDRS": addrs, "REDIS_CLUSTER_USERNAME": "default", "REDIS_CLUSTER_PASSWORD_FILE": file,
		}))
		checkLoggedCluster(t, in, "default", false)
		loc := submit(t, in.base, "2026-Q1")
		checkReport(t, in.base, loc, awaitDone(t, in.base, loc))
		checkNoPassword(t, in, clusterPassword)
	})

	t.Run("wrong-password", func(t *testing.T) {
		t.Parallel()
		const wrong = "not-the-cluster-pw"
		refusesToStart(t, reportdproc.Vars(map[string]string{"REDIS_CLUSTER_ADDRS": addrs, "REDIS_CLUSTER_PASSWORD": wrong}), "WRONGPASS", wrong)
	})

	t.Run("no-password", func(t *testing.T) {
		t.Parallel()
		refusesToStart(t, reportdproc.Vars(map[string]string{"REDIS_CLUSTER_ADDRS": addrs}), "NOAUTH", clusterPassword)
	})

	t.Run("url-of-a-node-with-a-database", func(t *testing.T) {
		t.Parallel()
		url := "redis://:" + clusterPassword + "@" + c.Addrs[0] + "/1"
		if err := refusesToStart(t, reportdproc.Vars(map[string]string{"REDIS_URL": url}), "SELECT is not allowed in cluster mode", clusterPassword); err != nil && !strings.Contains(err.Error(), "REDIS_URL") {
			t.Errorf("reportd refused to start with %q, want it to name REDIS_URL", err)
		}
	})
}

// TestClusterTLSE2E runs reportd on a 3-master Redis Cluster that serves TLS (with a CA of the test's
// own) and requires a password: with REDIS_CLUSTER_TLS_CA_FILE and the password a job goes 202, 303,
// result over TLS to every node; trusting the system's CAs only, reportd refuses to start; without TLS
// (the node closes the connection: no proof of a wrong setting) it serves 503 problem+json.
func TestClusterTLSE2E(t *testing.T) {
	t.Parallel()
	if raceDetector {
		t.Skip("cluster flows run in the plain pass, as TestClusterE2E does")
	}
	began := time.Now()
	c := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3, Password: clusterPassword, TLS: true})
	t.Logf("3-master TLS cluster with a password on %v up in %s", c.TLSAddrs, time.Since(began).Round(time.Millisecond))
	refusesWithoutPassword(t, c.TLSAddrs, c.TLSConfig())
	addrs := strings.Join(c.TLSAddrs, ",")

	// A TLS client is told of the nodes' TLS ports: a client seeded with one node, as reportd is below,
	// talks TLS to every master it learns of.
	tc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.TLSAddrs[:1], Password: clusterPassword, TLSConfig: c.TLSConfig()})
	defer tc.Close()
	var mu sync.Mutex
	var masters []string
	if err := tc.ForEachShard(context.Background(), func(ctx context.Context, n *redis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		masters = append(masters, n.Options().Addr)
		return n.Ping(ctx).Err()
	}); err != nil {
		t.Fatalf("a TLS client seeded with %s: %v", c.TLSAddrs[0], err)
	}
	for _, m := range masters {
		if !slices.Contains(c.TLSAddrs, m) {
			t.Errorf("a TLS client is told of master %s, not a TLS address (%v)", m, c.TLSAddrs)
		}
	}
	if len(masters) != 3 {
		t.Errorf("a TLS client learned of masters %v, want 3", masters)
	}

	t.Run("tls-ca-file", func(t *testing.T) {
		t.Parallel()
		// One seed: reportd learns of the other nodes, and their TLS ports, from it.
		in := start(t, nil, reportdproc.Vars(map[string]string{
			"REDIS_CLUSTER_ADDRS": c.TLSAddrs[0], "REDIS_CLUSTER_PASSWORD": clusterPassword, "REDIS_CLUSTER_TLS_CA_FILE": c.CAFile,
		}))
		checkLoggedCluster(t, in, "", true)
		loc := submit(t, in.base, "2026-Q1")
		checkReport(t, in.base, loc, awaitDone(t, in.base, loc))
		if res := mustTry(t, http.MethodGet, in.base+"/readyz", ""); res.status != http.StatusOK {
			t.Errorf("GET /readyz = %s, want 200", res)
		}
		checkNoPassword(t, in, clusterPassword)
	})

	t.Run("no-tls", func(t *testing.T) {
		t.Parallel()
		in := start(t, nil, reportdproc.Vars(map[string]string{"REDIS_CLUSTER_ADDRS": addrs, "REDIS_CLUSTER_PASSWORD": clusterPassword}))
		// A TLS port closes a connection that does not start with a TLS handshake.
		checkUnavailable(t, in, "EOF")
	})

	t.Run("system-roots", func(t *testing.T) {
		t.Parallel()
		// The nodes' CA is not among the system's: the certificates must be refused.
		refusesToStart(t, reportdproc.Vars(map[string]string{
			"REDIS_CLUSTER_ADDRS": addrs, "REDIS_CLUSTER_PASSWORD": clusterPassword, "REDIS_CLUSTER_TLS": "true",
		}), "certificate signed by unknown authority", clusterPassword)
	})
}

// refusesWithoutPassword fails t unless the cluster at addrs refuses a client that gives no password:
// otherwise the tests above would not show that reportd gives one.
func refusesWithoutPassword(t *testing.T, addrs []string, tc *tls.Config) {
	t.Helper()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, TLSConfig: tc, MaxRedirects: -1})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := rdb.Set(ctx, "probe", "x", time.Minute).Err()
	if err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("SET without a password = %v, want NOAUTH", err)
	}
}

// checkLoggedCluster fails t unless reportd's starting line logs the cluster's user and TLS, and the
// password as "xxxxx".
func checkLoggedCluster(t *testing.T, in *instance, user string, tls bool) {
	t.Helper()
	l, _ := in.log.WaitFor(0, nil, testkit.MsgIs("starting"))
	cfg, _ := l.Fields["config"].(map[string]any)
	// Settings at their defaults (no user, no TLS) are left out of the line.
	setting := func(name string, unset any) any {
		if v, ok := cfg[name]; ok {
			return v
		}
		return unset
	}
	if setting("REDIS_CLUSTER_PASSWORD", "") != "xxxxx" || setting("REDIS_CLUSTER_USERNAME", "") != user || setting("REDIS_CLUSTER_TLS", false) != tls {
		t.Errorf("the starting line logs REDIS_CLUSTER_PASSWORD=%v REDIS_CLUSTER_USERNAME=%v REDIS_CLUSTER_TLS=%v, want xxxxx, %q, %v",
			cfg["REDIS_CLUSTER_PASSWORD"], cfg["REDIS_CLUSTER_USERNAME"], cfg["REDIS_CLUSTER_TLS"], user, tls)
	}
}

// checkNoPassword fails t if reportd's log carries password.
// refusesToStart runs reportd with vars and fails t unless run returns, before serving, an error that
// says cause and not secret.
func refusesToStart(t *testing.T, vars map[string]string, cause, secret string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sink := testkit.NewLogSink()
	err := run(ctx, nil, env(vars), logTo(t, sink))
	switch {
	case err == nil:
		t.Fatalf("reportd started and ran until stopped, want it to refuse to start saying %q; log:\n%s", cause, sink)
	case !strings.Contains(err.Error(), cause):
		t.Errorf("reportd refused to start with %q, want it to say %q", err, cause)
	case strings.Contains(err.Error(), secret) || strings.Contains(sink.String(), secret):
		t.Errorf("reportd's error or log has the password: %v\n%s", err, sink)
	}
	if _, ok := sink.WaitFor(0, nil, testkit.MsgIs("listening")); ok {
		t.Errorf("reportd listened before it refused to start")
	}
	t.Logf("reportd refused to start: %v", err)
	return err
}

func checkNoPassword(t *testing.T, in *instance, password string) {
	t.Helper()
	if strings.Contains(in.log.String(), password) {
		t.Errorf("the log has the cluster's password:\n%s", in.log)
	}
}

// checkUnavailable fails t unless reportd, which could not use the cluster, answers a submission and a
// status read with 503 problem+json and Retry-After, each within the 2 s that reportd's Redis timeouts
// allow, and /readyz with 503; and its log says why: some line has cause.
func checkUnavailable(t *testing.T, in *instance, cause string) {
	t.Helper()
	for _, r := range []struct{ method, path, body string }{
		{http.MethodPost, "/v1/reports", `{"range":"2026-Q1"}`},
		{http.MethodGet, "/v1/reports/00000000-0000-4000-8000-000000000000", ""},
	} {
		sent := time.Now()
		res, err := try(r.method, in.base+r.path, r.body)
		if err != nil {
			t.Fatalf("%s %s: %v", r.method, r.path, err)
		}
		took := time.Since(sent)
		checkProblem(t, r.method+" "+r.path, res, http.StatusServiceUnavailable)
		if ra := res.header.Get("Retry-After"); ra == "" {
			t.Errorf("%s %s: 503 without Retry-After", r.method, r.path)
		}
		if took > 3*time.Second {
			t.Errorf("%s %s took %s, want the 503 within 3s", r.method, r.path, took.Round(time.Millisecond))
		}
		t.Logf("%s %s: %d in %s: %s", r.method, r.path, res.status, took.Round(time.Millisecond), strings.TrimSpace(string(res.body)))
	}
	if res := mustTry(t, http.MethodGet, in.base+"/readyz", ""); res.status != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz = %s, want 503", res)
	}
	if _, ok := in.log.WaitFor(5*time.Second, nil, func(l testkit.LogLine) bool {
		return l.Fields["level"] != "INFO" && strings.Contains(fmt.Sprint(l.Fields), cause)
	}); !ok {
		t.Errorf("no warning or error in the log says %q; log:\n%s", cause, in.log)
	}
}
