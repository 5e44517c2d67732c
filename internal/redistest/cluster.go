package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of redis-server processes on loopback ports, started by StartCluster.
type Cluster struct {
	// Nodes are the cluster's servers: the masters first, then the replicas, in the order given to
	// redis-cli --cluster create (which then picks each replica's master).
	Nodes []*Server
	// Addrs are every node's host:port, in the order of Nodes: the seed list for a client.
	Addrs []string
	tb    testing.TB
}

// ClusterOptions shape a Cluster.
type ClusterOptions struct {
	Masters  int // at least 3, as redis-cli --cluster create demands
	Replicas int // replicas per master
	// NodeTimeout is cluster-node-timeout: how long a master must be unreachable before it is failed
	// over. Default 15 s (Redis's own default).
	NodeTimeout time.Duration
	// Args are extra redis.conf lines for every node.
	Args []string
}

// StartCluster starts a Redis Cluster of o.Masters masters with o.Replicas replicas each, every node a
// redis-server on free loopback ports (client and cluster bus) with its data in a temporary directory,
// joins it with redis-cli --cluster create, waits until every node sees all slots served and every
// replica in sync, and stops every node when the test ends. Without redis-server or redis-cli on PATH it
// skips the test, or fails it when REPORTD_REQUIRE_REDIS=1.
func StartCluster(tb testing.TB, o ClusterOptions) *Cluster {
	tb.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			tb.Fatalf("redis-cli is not on PATH and %s=1: %v", RequireEnv, err)
		}
		tb.Skipf("redis-cli is not on PATH (it comes with redis-server; %s=1 makes this a failure)", RequireEnv)
	}
	if o.Masters < 3 {
		tb.Fatalf("StartCluster: %d masters; redis-cli --cluster create needs at least 3", o.Masters)
	}
	if o.NodeTimeout <= 0 {
		o.NodeTimeout = 15 * time.Second
	}
	c := &Cluster{tb: tb}
	for range o.Masters * (1 + o.Replicas) {
		args := append([]string{
			"cluster-enabled yes",
			"cluster-config-file nodes.conf",
			"cluster-node-timeout " + strconv.FormatInt(o.NodeTimeout.Milliseconds(), 10),
		}, o.Args...)
		s := startServer(tb, true, args...)
		c.Nodes = append(c.Nodes, s)
		c.Addrs = append(c.Addrs, s.Addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	create := append([]string{"--cluster", "create"}, c.Addrs...)
	create = append(create, "--cluster-replicas", strconv.Itoa(o.Replicas), "--cluster-yes")
	out, err := exec.CommandContext(ctx, cli, create...).CombinedOutput()
	if err != nil {
		tb.Fatalf("redis-cli %s: %v\n%s", strings.Join(create, " "), err, out)
	}
	if err := c.WaitHealthy(30 * time.Second); err != nil {
		tb.Fatalf("cluster on %v: %v\nredis-cli said:\n%s", c.Addrs, err, out)
	}
	return c
}

// Client returns a go-redis cluster client on c, closed when the test ends.
func (c *Cluster) Client(tb testing.TB) *redis.ClusterClient {
	tb.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	tb.Cleanup(func() { _ = cc.Close() })
	return cc
}

// Node returns the running node at addr, or nil.
func (c *Cluster) Node(addr string) *Server {
	for _, n := range c.Nodes {
		if n.Addr == addr && n.cmd != nil {
			return n
		}
	}
	return nil
}

// MasterOf returns the address of the master that serves slot, as the first running node that answers
// CLUSTER SHARDS sees it.
func (c *Cluster) MasterOf(slot int) (string, error) {
	var lastErr error
	for _, n := range c.Nodes {
		if n.cmd == nil {
			continue
		}
		m, err := masterOf(n.Addr, slot)
		if err == nil {
			return m, nil
		}
		lastErr = err
	}
	return "", fmt.Errorf("no running node knows the master of slot %d: %v", slot, lastErr)
}

func masterOf(addr string, slot int) (string, error) {
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 500 * time.Millisecond})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m, err := slotMasters(ctx, rdb)
	if err != nil {
		return "", err
	}
	for _, r := range m {
		if r.start <= slot && slot <= r.end {
			return r.master, nil
		}
	}
	return "", fmt.Errorf("%s: slot %d is not served", addr, slot)
}

// slotRange is a range of slots and the online master that serves it.
type slotRange struct {
	start, end int
	master     string
}

// slotMasters returns the slot ranges a node knows masters for, in slot order, from CLUSTER SHARDS.
func slotMasters(ctx context.Context, rdb *redis.Client) ([]slotRange, error) {
	shards, err := rdb.ClusterShards(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster shards: %w", err)
	}
	var out []slotRange
	for _, sh := range shards {
		for _, n := range sh.Nodes {
			if n.Role != "master" || n.Health != "online" {
				continue
			}
			for _, r := range sh.Slots {
				out = append(out, slotRange{int(r.Start), int(r.End), net.JoinHostPort(n.IP, strconv.FormatInt(n.Port, 10))})
			}
		}
	}
	slices.SortFunc(out, func(a, b slotRange) int { return a.start - b.start })
	return out, nil
}

// WaitHealthy waits until every running node reports cluster_state:ok with all 16384 slots ok, agrees
// on one slot map, and every running replica's link to its master is up.
func (c *Cluster) WaitHealthy(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := c.healthy()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *Cluster) healthy() error {
	var slotMap string
	for _, n := range c.Nodes {
		if n.cmd == nil {
			continue
		}
		err := func() error {
			rdb := redis.NewClient(&redis.Options{Addr: n.Addr, MaxRetries: -1, DialTimeout: 500 * time.Millisecond})
			defer rdb.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			info, err := rdb.ClusterInfo(ctx).Result()
			if err != nil {
				return fmt.Errorf("%s: cluster info: %w", n.Addr, err)
			}
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
				return fmt.Errorf("%s: not healthy yet:\n%s", n.Addr, info)
			}
			slots, err := slotMasters(ctx, rdb)
			if err != nil {
				return fmt.Errorf("%s: %w", n.Addr, err)
			}
			var b strings.Builder
			covered := 0
			for _, s := range slots {
				fmt.Fprintf(&b, "%d-%d:%s ", s.start, s.end, s.master)
				covered += s.end - s.start + 1
			}
			if covered != 16384 {
				return fmt.Errorf("%s: online masters serve %d slots: %s", n.Addr, covered, b.String())
			}
			if slotMap == "" {
				slotMap = b.String()
			} else if slotMap != b.String() {
				return fmt.Errorf("nodes disagree on the slot map: %q and %q (%s)", slotMap, b.String(), n.Addr)
			}
			repl, err := rdb.Info(ctx, "replication").Result()
			if err != nil {
				return fmt.Errorf("%s: info replication: %w", n.Addr, err)
			}
			if strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
				return fmt.Errorf("%s: replica not in sync yet:\n%s", n.Addr, repl)
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	return nil
}
