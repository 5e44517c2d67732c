package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/reportd/reportd/tasks"
)

// connectRedis returns the Redis client that asynq, the API and the worker share, and a func that
// releases it: a cluster client for REDIS_CLUSTER_ADDRS, else one for REDIS_URL. With neither it starts
// an embedded in-memory Redis and says, once, that nothing is durable.
func connectRedis(cfg config, log *slog.Logger) (redis.UniversalClient, func(), error) {
	if len(cfg.RedisClusterAddrs) > 0 {
		tlsConfig, err := clusterTLSConfig(cfg)
		if err != nil {
			return nil, nil, err
		}
		rdb, err := tasks.NewRedisClient(asynq.RedisClusterClientOpt{
			Addrs:    cfg.RedisClusterAddrs,
			Username: cfg.RedisClusterUsername,
			Password: cfg.RedisClusterPassword,
			// Every node's client gets it; with no ServerName, Go's TLS checks each node's
			// certificate against the host of that node's address.
			TLSConfig: tlsConfig,
		})
		if err != nil {
			return nil, nil, err
		}
		return rdb, func() { _ = rdb.Close() }, nil
	}
	url := cfg.RedisURL
	stopEmbedded := func() {}
	if url == "" {
		m := miniredis.NewMiniRedis()
		// Without ClockTTL, TTLs in miniredis never run out: retention and tombstones would never expire.
		m.ClockTTL(true)
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return nil, nil, fmt.Errorf("start embedded redis: %w", err)
		}
		stopEmbedded = m.Close
		url = "redis://" + m.Addr()
		log.Warn("REDIS_URL is not set: using an embedded in-memory Redis; NOTHING IS DURABLE, every job is lost when reportd stops. Set REDIS_URL for real use.", "addr", m.Addr())
	}
	opt, err := asynq.ParseRedisURI(url)
	if err != nil {
		stopEmbedded()
		// The parse error quotes the URL, password and all: say only what is wrong with it.
		return nil, nil, fmt.Errorf("REDIS_URL=%s is not a URL asynq accepts (redis://[:password@]host:port/db, rediss://, redis-sentinel://, unix://); check its escaping", cfg.redacted().RedisURL)
	}
	rdb, err := tasks.NewRedisClient(opt)
	if err != nil {
		stopEmbedded()
		return nil, nil, err
	}
	return rdb, func() { _ = rdb.Close(); stopEmbedded() }, nil
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

// asynqLogger hands asynq's log lines to slog.
type asynqLogger struct{ log *slog.Logger }

func (l asynqLogger) Debug(args ...any) { l.log.Debug(fmt.Sprint(args...)) }
func (l asynqLogger) Info(args ...any)  { l.log.Info(fmt.Sprint(args...)) }
func (l asynqLogger) Warn(args ...any)  { l.log.Warn(fmt.Sprint(args...)) }
func (l asynqLogger) Error(args ...any) { l.log.Error(fmt.Sprint(args...)) }
func (l asynqLogger) Fatal(args ...any) { l.log.Error(fmt.Sprint(args...)) }
