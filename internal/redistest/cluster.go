package redistest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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
	// TLSAddrs are every node's TLS host:port, in the order of Nodes, when ClusterOptions.TLS is set:
	// the seed list for a TLS client, which is then told of TLS ports only. Nil otherwise.
	TLSAddrs []string
	// CAFile is the PEM file of the CA that signed every node's certificate, when ClusterOptions.TLS
	// is set; TLSConfig trusts it.
	CAFile   string
	caPool   *x509.CertPool
	password string
	tb       testing.TB
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
	// Password, when set, is every node's requirepass (the default user's password) and masterauth
	// (what a replica gives its master). redis-cli --cluster create and the Cluster's own clients
	// (Client, MasterOf, WaitHealthy) give it.
	//
	// It is set with CONFIG SET once a node answers, not in redis.conf: the PING with which
	// startServer waits for a node does not authenticate. A node's redis.conf includes it from then on,
	// so that a Server.Restart of such a node fails (NOAUTH) rather than bring the node back without a
	// password: restarting the nodes of a cluster with a password is not supported.
	Password string
	// TLS, when set, makes every node serve TLS on a port of its own (Cluster.TLSAddrs) with a
	// certificate for 127.0.0.1 signed by a CA made for the test (Cluster.CAFile), and talk TLS on the
	// cluster bus and to its master (tls-cluster, tls-replication). Clients need no certificate. The
	// plain port (Cluster.Addrs) stays open: startServer waits for a node there, and the Cluster's
	// own helpers use it.
	TLS bool
}

// StartCluster starts a Redis Cluster of o.Masters masters with o.Replicas replicas each, every node a
// redis-server on free loopback ports (client and cluster bus) with its data in a temporary directory,
// joins it with redis-cli --cluster create, waits until every node sees all slots served and every
// replica in sync, and stops every node when the test ends. Without redis-server or redis-cli on PATH it
// skips the test, or fails it when REPORTD_REQUIRE_REDIS=1.
func StartCluster(tb testing.TB, o ClusterOptions) *Cluster {
	tb.Helper()
	cli := lookPath(tb, "redis-cli", "it comes with redis-server")
	if o.Masters < 3 {
		tb.Fatalf("StartCluster: %d masters; redis-cli --cluster create needs at least 3", o.Masters)
	}
	if o.NodeTimeout <= 0 {
		o.NodeTimeout = 15 * time.Second
	}
	c := &Cluster{tb: tb, password: o.Password}
	var tlsArgs []string
	if o.TLS {
		dir := tb.TempDir()
		ca, cert, key, err := writeTestCerts(dir)
		if err != nil {
			tb.Fatalf("StartCluster: make TLS certificates: %v", err)
		}
		caPEM, err := os.ReadFile(ca)
		if err != nil {
			tb.Fatal(err)
		}
		c.CAFile, c.caPool = ca, x509.NewCertPool()
		c.caPool.AppendCertsFromPEM(caPEM)
		tlsArgs = []string{
			"tls-cert-file " + cert, "tls-key-file " + key, "tls-ca-cert-file " + ca,
			"tls-auth-clients no", "tls-cluster yes", "tls-replication yes",
		}
	}
	var authConf string
	if o.Password != "" {
		// Empty until every node has started and been given the password; see ClusterOptions.Password.
		authConf = filepath.Join(tb.TempDir(), "auth.conf")
		if err := os.WriteFile(authConf, nil, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	for range o.Masters * (1 + o.Replicas) {
		args := append([]string{
			"cluster-enabled yes",
			"cluster-config-file nodes.conf",
			"cluster-node-timeout " + strconv.FormatInt(o.NodeTimeout.Milliseconds(), 10),
		}, tlsArgs...)
		if authConf != "" {
			args = append(args, "include "+authConf)
		}
		// A TLS node gets a TLS port of its own (Server.TLSAddr), picked again with the others when one
		// was taken.
		s := startProcess(tb, &Server{Dir: tb.TempDir(), args: append(args, o.Args...), tb: tb, wantTLS: o.TLS}, true)
		c.Nodes = append(c.Nodes, s)
		c.Addrs = append(c.Addrs, s.Addr)
		if o.TLS {
			c.TLSAddrs = append(c.TLSAddrs, s.TLSAddr)
		}
	}
	if o.Password != "" {
		for _, n := range c.Nodes {
			if err := setPassword(n.Addr, o.Password); err != nil {
				tb.Fatalf("StartCluster: %v", err)
			}
		}
		auth := "masterauth " + strconv.Quote(o.Password) + "\nrequirepass " + strconv.Quote(o.Password) + "\n"
		if err := os.WriteFile(authConf, []byte(auth), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var flags []string
	seeds := c.Addrs
	if o.Password != "" {
		flags = append(flags, "-a", o.Password, "--no-auth-warning")
	}
	if o.TLS {
		// Joined over TLS, as a TLS client sees it.
		flags = append(flags, "--tls", "--cacert", c.CAFile)
		seeds = c.TLSAddrs
	}
	create := append(append(flags, "--cluster", "create"), seeds...)
	create = append(create, "--cluster-replicas", strconv.Itoa(o.Replicas), "--cluster-yes")
	out, err := exec.CommandContext(ctx, cli, create...).CombinedOutput()
	if err != nil {
		shown := strings.Join(create, " ")
		if o.Password != "" {
			shown = strings.ReplaceAll(shown, o.Password, "xxxxx")
		}
		tb.Fatalf("redis-cli %s: %v\n%s", shown, err, out)
	}
	if err := c.WaitHealthy(30 * time.Second); err != nil {
		tb.Fatalf("cluster on %v: %v\nredis-cli said:\n%s", c.Addrs, err, out)
	}
	return c
}

// Client returns a go-redis cluster client on c's plain ports, with its password, closed when the
// test ends.
func (c *Cluster) Client(tb testing.TB) *redis.ClusterClient {
	tb.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs, Password: c.password})
	tb.Cleanup(func() { _ = cc.Close() })
	return cc
}

// TLSConfig returns a client TLS configuration that trusts c's CA alone, or nil when c has no TLS.
func (c *Cluster) TLSConfig() *tls.Config {
	if c.caPool == nil {
		return nil
	}
	return &tls.Config{RootCAs: c.caPool, MinVersion: tls.VersionTLS12}
}

// nodeClient returns a client of the node at addr that fails fast, with c's password.
func (c *Cluster) nodeClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, Password: c.password, MaxRetries: -1, DialTimeout: 500 * time.Millisecond})
}

// setPassword makes password the node's requirepass and masterauth; masterauth first, so that the
// node never lacks it while clients need the password.
func setPassword(addr, password string) error {
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 500 * time.Millisecond})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, name := range []string{"masterauth", "requirepass"} {
		if err := rdb.ConfigSet(ctx, name, password).Err(); err != nil {
			return fmt.Errorf("%s: config set %s: %w", addr, name, err)
		}
	}
	return nil
}

// writeTestCerts writes into dir a CA (ca.pem) and a certificate for 127.0.0.1 and localhost signed by
// it (cert.pem, key.pem), ECDSA P-256, valid for a day, good for a server and a client. It returns
// their paths.
func writeTestCerts(dir string) (caFile, certFile, keyFile string, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", "", err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "redistest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return "", "", "", err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return "", "", "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", "", err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "redistest node"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return "", "", "", err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", "", err
	}
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{caFile, "CERTIFICATE", caDER}, {certFile, "CERTIFICATE", leafDER}, {keyFile, "PRIVATE KEY", keyDER}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			return "", "", "", err
		}
	}
	return caFile, certFile, keyFile, nil
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
		m, err := c.masterOf(n.Addr, slot)
		if err == nil {
			return m, nil
		}
		lastErr = err
	}
	return "", fmt.Errorf("no running node knows the master of slot %d: %v", slot, lastErr)
}

func (c *Cluster) masterOf(addr string, slot int) (string, error) {
	rdb := c.nodeClient(addr)
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
			rdb := c.nodeClient(n.Addr)
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
