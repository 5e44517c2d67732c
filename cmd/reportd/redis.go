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
		answered, err := checkAtStart(rdb, "REDIS_CLUSTER_ADDRS", log)
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
		if answered, err = checkAtStart(rdb, "REDIS_URL", log); err != nil {
			_ = rdb.Close()
			return nil, nil, false, err
		}
	}
	return rdb, func() { _ = rdb.Close(); stopEmbedded() }, answered, nil
}

// checkAtStart asks Redis for a PING before reportd serves, and says whether it answered. A Redis that refuses reportd's credentials
// or whose TLS certificate reportd refuses will go on refusing until reportd is restarted with other
// settings, so that stops it at once, with the reason; a Redis that does not answer yet (still
// starting, a network blip, a failover) is waited for as at any other time: reportd serves, answering
// 503 until it does.
func checkAtStart(rdb redis.UniversalClient, setting string, log *slog.Logger) (answered bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err = rdb.Ping(ctx).Err()
	switch {
	case err == nil:
		warnIfNotDurable(ctx, rdb, log)
		return true, nil
	case refusedSettings(err):
		// Neither Redis's nor Go's TLS error quotes a password.
		return false, fmt.Errorf("redis refuses reportd's settings (check %s and its password, user and TLS settings): %w", setting, err)
	default:
		log.Warn("redis does not answer at start; serving 503 until it does", "setting", setting, "err", err)
		return false, nil
	}
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

// refusedSettings reports whether err says that Redis refused reportd's credentials or permissions, or
// that a TLS handshake failed over a certificate or a server that does not speak TLS: errors that no
// wait mends.
func refusedSettings(err error) bool {
	msg := err.Error()
	for _, prefix := range []string{"WRONGPASS", "NOAUTH", "NOPERM"} {
		if strings.HasPrefix(msg, prefix) || strings.Contains(msg, ": "+prefix) {
			return true
		}
	}
	if strings.Contains(msg, "called without any password configured") {
		return true // AUTH sent to a Redis before 6 that has no password (later ones accept any)
	}
	var (
		unknownCA x509.UnknownAuthorityError
		wrongHost x509.HostnameError
		badCert   x509.CertificateInvalidError
		verifyErr *tls.CertificateVerificationError
		notTLS    tls.RecordHeaderError
	)
	return errors.As(err, &unknownCA) || errors.As(err, &wrongHost) || errors.As(err, &badCert) ||
		errors.As(err, &verifyErr) || errors.As(err, &notTLS)
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
