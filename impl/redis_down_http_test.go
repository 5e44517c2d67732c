package impl_test

import (
	"context"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/reportd/reportd/gen"
	"github.com/reportd/reportd/internal/redistest"
	"github.com/reportd/reportd/internal/store"
)

// TestRedisUnavailable checks that an unreachable Redis is a 503 problem with Retry-After, quickly,
// and that requests the contract refuses are still refused without Redis.
func TestRedisUnavailable(t *testing.T) {
	t.Parallel()
	const within = 2 * time.Second
	check503 := func(t *testing.T, h *harness, what string, r *response) {
		t.Helper()
		got := errorOf(r)
		want := errorWant{Status: 503, ContentType: problemJSON, Type: "/problems/unavailable", ProblemStatus: 503}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s with Redis down (-want +got):\n%s\nbody: %s", what, diff, r.Body)
		}
		if _, err := retryAfter(r.Header); err != nil {
			t.Errorf("%s: %v", what, err)
		}
		if r.Took > within {
			t.Errorf("%s took %s with Redis down, want under %s", what, r.Took, within)
		}
	}
	post := func(t *testing.T, h *harness) *response {
		return h.doValid(t, h.request(t, http.MethodPost, "/v1/reports", strings.NewReader(`{"range":"2026-Q1"}`), "Content-Type", appJSON))
	}

	t.Run("closed-port", func(t *testing.T) {
		t.Parallel()
		// Built as cmd/reportd builds it: go-redis's own defaults (5 dial attempts 100 ms apart, 3
		// command retries with backoff) spend about 2 s on a refused connection before they give up.
		h := newHarness(t, redistest.Backend{}, setup{Redis: serviceClient(t, "127.0.0.1:1")})
		id := uuid.NewString()
		check503(t, h, "POST /v1/reports", post(t, h))
		check503(t, h, "GET status", h.get(t, "/v1/reports/"+id))
		check503(t, h, "GET result", h.get(t, "/v1/reports/"+id+"/result"))
		if r := h.do(t, h.request(t, http.MethodPost, "/v1/reports", strings.NewReader(`{"range":"2026-Q5"}`), "Content-Type", appJSON)); r.Status != http.StatusBadRequest {
			t.Errorf("a bad range with Redis down: %s, want 400", r)
		}
		if r := h.get(t, "/v1/reports/nope"); r.Status != http.StatusBadRequest {
			t.Errorf("a malformed id with Redis down: %s, want 400", r)
		}
	})

	t.Run("unreachable-host", func(t *testing.T) {
		t.Parallel()
		// A Redis host that is down or cut off drops packets instead of refusing them: connecting hangs
		// until DialTimeout. The client is built exactly as cmd/reportd builds it.
		addr, unblock := blackhole(t)
		h := newHarness(t, redistest.Backend{}, setup{Redis: serviceClient(t, addr)})
		t.Cleanup(unblock)            // first, so that the server's waiting handlers end before it closes
		h.client.Timeout = 2 * within // give up well before go-redis does
		req := h.request(t, http.MethodGet, "/v1/reports/"+uuid.NewString(), nil)
		start := time.Now()
		res, err := h.client.Do(req)
		if err != nil {
			t.Fatalf("GET status with Redis unreachable: no answer after %s (want a 503 within %s): %v",
				time.Since(start).Round(time.Millisecond), within, err)
		}
		res.Body.Close()
		if took := time.Since(start); res.StatusCode != http.StatusServiceUnavailable || took > within {
			t.Errorf("GET status with Redis unreachable: %d after %s, want 503 within %s", res.StatusCode, took, within)
		}
	})

	t.Run("redis-server-stopped", func(t *testing.T) {
		t.Parallel()
		srv := redistest.StartServer(t)
		h := newHarness(t, srv.Backend, setup{Redis: serviceClient(t, srv.Addr)})
		id := h.create(t, "2026-Q1")
		srv.Stop()
		check503(t, h, "GET status", h.get(t, "/v1/reports/"+id))
		check503(t, h, "GET result", h.get(t, "/v1/reports/"+id+"/result"))
		check503(t, h, "POST /v1/reports", post(t, h))
		srv.Restart()
		// Nothing persists across this restart: the job is gone, and the service is back.
		if r := h.get(t, "/v1/reports/"+id); r.Status != http.StatusNotFound {
			t.Errorf("status after a restart that lost the data: %s, want 404", r)
		}
		h.create(t, "2026-Q1")
	})

	t.Run("miniredis-stopped", func(t *testing.T) {
		t.Parallel()
		m := miniredis.RunT(t)
		h := newHarness(t, redistest.Backend{Name: "miniredis", Addr: m.Addr()}, setup{Redis: serviceClient(t, m.Addr())})
		id := h.create(t, "2026-Q1")
		m.Close()
		check503(t, h, "GET status", h.get(t, "/v1/reports/"+id))
		check503(t, h, "GET result", h.get(t, "/v1/reports/"+id+"/result"))
		check503(t, h, "POST /v1/reports", post(t, h))
		if err := m.Restart(); err != nil {
			t.Fatal(err)
		}
		// miniredis keeps its data across a restart: the job answers again.
		if r := h.get(t, "/v1/reports/"+id); r.Status != http.StatusOK || r.jobStatus(t).Status != gen.Pending {
			t.Errorf("status after Redis came back: %s, want 200 pending", r)
		}
	})
}

// blackhole returns the address of a listener whose accept queue is full, so that the kernel drops
// further connection attempts as a dead host would, and a func that closes it.
func blackhole(t *testing.T) (string, func()) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("filling an accept queue to drop SYNs is Linux behaviour")
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	in4, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		t.Fatalf("socket name %T", sa)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(in4.Port))
	// The first connection fills the queue (backlog 0 admits one); the next must hang.
	fill, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
		c.Close()
		t.Skip("the kernel accepted a connection past a full accept queue")
	}
	return addr, func() {
		fill.Close()
		_ = syscall.Close(fd)
	}
}

// serviceClient builds the go-redis client for addr exactly as cmd/reportd builds it.
func serviceClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	client, err := store.NewClient(asynq.RedisClientOpt{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	rdb, ok := client.(*redis.Client)
	if !ok {
		t.Fatal("asynq.RedisClientOpt did not make a *redis.Client")
	}
	return rdb
}

// TestRedisLostItsData: after Redis loses its data (a restart without persistence, here a FLUSHALL),
// a job submitted next is read as it is, not as missing: asynq's client registers a queue only at its
// first enqueue in a process, so the status read registers it again, and the asynq web UI lists it.
func TestRedisLostItsData(t *testing.T) {
	t.Parallel()
	redistest.EachBackend(t, func(t *testing.T, b redistest.Backend) {
		h := newHarness(t, b, setup{})
		h.create(t, "2026-Q1")
		if err := h.Redis.FlushAll(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		id := h.create(t, "2026-Q1")
		if r := h.get(t, "/v1/reports/"+id); r.Status != http.StatusOK || r.jobStatus(t).Status != gen.Pending {
			t.Fatalf("status of a job submitted after Redis lost its data: %s, want 200 pending", r)
		}
		queues, err := h.Inspector.Queues()
		if err != nil || !slices.Contains(queues, store.ReportQueue) {
			t.Errorf("asynq's queues = %v, %v; want %s listed again", queues, err, store.ReportQueue)
		}
	})
}
