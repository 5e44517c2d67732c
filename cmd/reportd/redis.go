package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/reportd/reportd/internal/store"
)

// connectRedis returns the Redis client that asynq, the API and the worker share, a func that
// releases it, and whether Redis answered: a cluster client for REDIS_CLUSTER_ADDRS, else one for
// REDIS_URL. With neither it starts an embedded in-memory Redis and says, once, that nothing is
// durable.
func connectRedis(cfg config, log *slog.Logger) (rdb redis.UniversalClient, release func(), answered bool, err error) {
	if len(cfg.RedisClusterAddrs) > 0 {
		tlsConfig, err := clusterTLSConfig(cfg)
		if err != nil {
			return nil, nil, false, err
		}
		rdb, err := store.NewClient(asynq.RedisClusterClientOpt{
			Addrs:    cfg.RedisClusterAddrs,
			Username: cfg.RedisClusterUsername,
			Password: cfg.RedisClusterPassword,
			// Every node's client gets it; with no ServerName, Go's TLS checks each node's
			// certificate against the host of that node's address.
			TLSConfig: tlsConfig,
		})
		if err != nil {
			return nil, nil, false, err
		}
		answered, err := checkAtStart(rdb, clusterSettings, log)
		if err != nil {
			_ = rdb.Close()
			return nil, nil, false, err
		}
		return rdb, func() { _ = rdb.Close() }, answered, nil
	}
	url := cfg.RedisURL
	stopEmbedded := func() {}
	if url == "" {
		m := miniredis.NewMiniRedis()
		// Without ClockTTL, TTLs in miniredis never run out: retention and tombstones would never expire.
		m.ClockTTL(true)
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return nil, nil, false, fmt.Errorf("start embedded redis: %w", err)
		}
		stopEmbedded = m.Close
		url = "redis://" + m.Addr()
		log.Warn("REDIS_URL is not set: using an embedded in-memory Redis; NOTHING IS DURABLE, every job is lost when reportd stops. Set REDIS_URL for real use.", "addr", m.Addr())
	}
	opt, err := asynq.ParseRedisURI(url)
	if err != nil {
		stopEmbedded()
		// The parse error quotes the URL, password and all: say only what is wrong with it.
		return nil, nil, false, fmt.Errorf("REDIS_URL=%s is not a URL asynq accepts (redis://[:password@]host:port/db, rediss://, redis-sentinel://, unix://); check its escaping", cfg.redacted().RedisURL)
	}
	rdb, err = store.NewClient(opt)
	if err != nil {
		stopEmbedded()
		return nil, nil, false, err
	}
	answered = true
	if cfg.RedisURL != "" {
		if answered, err = checkAtStart(rdb, urlSettings, log); err != nil {
			_ = rdb.Close()
			return nil, nil, false, err
		}
	}
	return rdb, func() { _ = rdb.Close(); stopEmbedded() }, answered, nil
}

// redisSettings names the settings that say how reportd reaches its Redis, for the errors that ask
// to check them.
type redisSettings struct {
	addr        string // where Redis is, and its database
	credentials string
	tls         string
}

var (
	urlSettings     = redisSettings{addr: "REDIS_URL", credentials: "REDIS_URL's user and password", tls: "REDIS_URL's scheme (rediss:// is TLS)"}
	clusterSettings = redisSettings{addr: "REDIS_CLUSTER_ADDRS", credentials: "REDIS_CLUSTER_USERNAME and REDIS_CLUSTER_PASSWORD (or REDIS_CLUSTER_PASSWORD_FILE)",
		tls: "REDIS_CLUSTER_TLS and REDIS_CLUSTER_TLS_CA_FILE"}
)

// checkAtStart asks Redis for a PING before reportd serves, and says whether it answered. A Redis that
// refuses reportd's settings (see refusal) will go on refusing until reportd is restarted with other
// ones, so that stops it at once, naming the setting and with Redis's reason; a Redis that does not
// answer yet (still starting, a network blip, a failover) is waited for as at any other time: reportd
// serves, answering 503 until it does.
func checkAtStart(rdb redis.UniversalClient, settings redisSettings, log *slog.Logger) (answered bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err = rdb.Ping(ctx).Err()
	if err == nil {
		warnIfNotDurable(ctx, rdb, log)
		return true, nil
	}
	if check := refusal(err, settings); check != "" {
		// Neither Redis's nor Go's TLS error quotes a password.
		return false, fmt.Errorf("redis refuses reportd's settings: %w; check %s", err, check)
	}
	log.Warn("redis does not answer at start; serving 503 until it does", "setting", settings.addr, "err", err)
	return false, nil
}

// warnIfNotDurable warns when Redis keeps nothing on disk (no append-only file, no snapshots): every
// queued job would be lost when it restarts. A Redis that does not let reportd read its configuration
// (a managed one, often) is not judged.
func warnIfNotDurable(ctx context.Context, rdb redis.UniversalClient, log *slog.Logger) {
	aof, err := rdb.ConfigGet(ctx, "appendonly").Result()
	if err != nil {
		return
	}
	save, err := rdb.ConfigGet(ctx, "save").Result()
	if err != nil {
		return
	}
	if aof["appendonly"] == "no" && strings.TrimSpace(save["save"]) == "" {
		log.Warn("redis keeps nothing on disk (appendonly no, no save points): every queued job is lost when it restarts; " +
			"set appendonly yes (see docs/redis.md in reportd's repository)")
	}
}

// refusal says which of settings to check when err is one that no wait mends: Redis refused
// reportd's credentials or permissions; it has no database of the number asked for, or takes none but
// 0 (a Redis Cluster node behind REDIS_URL); it is no cluster node (behind REDIS_CLUSTER_ADDRS); or a
// TLS handshake failed over a certificate or a server that does not speak TLS. It is "" for any other
// error (a refused connection, a timeout, a Redis still loading its data), which reportd waits out.
func refusal(err error, settings redisSettings) string {
	msg := err.Error()
	said := func(reply string) bool { return strings.HasPrefix(msg, reply) || strings.Contains(msg, ": "+reply) }
	switch {
	case said("WRONGPASS"), said("NOAUTH"), said("NOPERM"),
		// AUTH sent to a Redis before 6 that has no password (later ones accept any).
		strings.Contains(msg, "called without any password configured"):
		return settings.credentials
	case said("ERR DB index is out of range"), said("ERR invalid DB index"):
		return settings.addr + "'s database number, the /N at its end: this Redis has fewer databases (its databases setting)"
	case said("ERR SELECT is not allowed in cluster mode"):
		return settings.addr + ": it names a Redis Cluster node, which has database 0 only; for a cluster, set REDIS_CLUSTER_ADDRS instead"
	case said("ERR This instance has cluster support disabled"):
		return settings.addr + ": it names a Redis that is not in a cluster; for one Redis, set REDIS_URL instead"
	}
	var (
		unknownCA x509.UnknownAuthorityError
		wrongHost x509.HostnameError
		badCert   x509.CertificateInvalidError
		verifyErr *tls.CertificateVerificationError
		notTLS    tls.RecordHeaderError
	)
	if errors.As(err, &unknownCA) || errors.As(err, &wrongHost) || errors.As(err, &badCert) ||
		errors.As(err, &verifyErr) || errors.As(err, &notTLS) {
		return settings.tls
	}
	return ""
}

// clusterTLSConfig is the TLS configuration of REDIS_CLUSTER_TLS and REDIS_CLUSTER_TLS_CA_FILE: nil
// without TLS; else TLS 1.2 or later, trusting the CA file's certificates, or the system's without one.
func clusterTLSConfig(cfg config) (*tls.Config, error) {
	if !cfg.RedisClusterTLS {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.RedisClusterCAFile != "" {
		pool, err := loadCAFile(cfg.RedisClusterCAFile)
		if err != nil {
			return nil, fmt.Errorf("REDIS_CLUSTER_TLS_CA_FILE: %w", err)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}
