package redistest

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// StartSentinel starts a Sentinel (redis-server --sentinel) on a free loopback port that monitors the
// master at masterAddr as name, alone (quorum 1), deeming it down after downAfter unanswered, waits
// until it knows the master and the replicas named in replicas, and stops it when the test ends.
func StartSentinel(tb testing.TB, masterAddr, name string, downAfter time.Duration, replicas ...string) *Server {
	tb.Helper()
	host, port, err := net.SplitHostPort(masterAddr)
	if err != nil {
		tb.Fatalf("StartSentinel: master %q: %v", masterAddr, err)
	}
	ms := strconv.FormatInt(downAfter.Milliseconds(), 10)
	s := startProcess(tb, &Server{Dir: tb.TempDir(), tb: tb, sentinel: true, args: []string{
		fmt.Sprintf("sentinel monitor %s %s %s 1", name, host, port),
		"sentinel down-after-milliseconds " + name + " " + ms,
		// A failover that does not complete is tried again after twice this.
		"sentinel failover-timeout " + name + " 10000",
	}}, false)
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer sc.Close()
	var last string
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		got, err := sc.GetMasterAddrByName(ctx, name).Result()
		known := map[string]bool{}
		if err == nil && len(got) == 2 && net.JoinHostPort(got[0], got[1]) == masterAddr {
			rs, rerr := sc.Replicas(ctx, name).Result()
			err = rerr
			for _, r := range rs {
				known[net.JoinHostPort(r["ip"], r["port"])] = true
			}
		}
		cancel()
		missing := 0
		for _, r := range replicas {
			if !known[r] {
				missing++
			}
		}
		if err == nil && len(got) == 2 && missing == 0 {
			return s
		}
		last = fmt.Sprintf("master %v, %d of %d replicas unknown, err %v", got, missing, len(replicas), err)
		if time.Now().After(deadline) {
			tb.Fatalf("sentinel on %s does not know master %s and replicas %v after 15 s: %s", s.Addr, masterAddr, replicas, last)
		}
	}
}

// SentinelMaster returns the address of the master that the Sentinel at addr names for name.
func SentinelMaster(ctx context.Context, addr, name string) (string, error) {
	sc := redis.NewSentinelClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer sc.Close()
	got, err := sc.GetMasterAddrByName(ctx, name).Result()
	if err != nil {
		return "", err
	}
	if len(got) != 2 {
		return "", fmt.Errorf("sentinel answered %v", got)
	}
	return net.JoinHostPort(got[0], got[1]), nil
}
