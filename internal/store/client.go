package store

import (
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Redis timeouts and retries: few and short, so that an unreachable or hung Redis is a 503 within two
// seconds, never a hang. go-redis's defaults (5 dial attempts of 5 s, 3 command retries) took 22 s to
// fail against a host that drops packets. One command retry stays, for the stale pooled connection
// that the first command after a Redis restart meets. The worst case is a wait for a pooled
// connection plus two timed-out attempts: 0.4 + 2 x 0.6 s. The pool is larger than go-redis's default
// (10 a CPU), so that a burst of requests against a hung Redis does not queue for connections.
const (
	redisDialTimeout   = 600 * time.Millisecond
	redisIOTimeout     = 600 * time.Millisecond
	redisDialAttempts  = 1
	redisCommandRetry  = 1
	redisPoolWaitLimit = 400 * time.Millisecond
	redisPoolSize      = 128

	// clusterMaxRedirects bounds a cluster command's attempts: one retry on a network error (as
	// redisCommandRetry), plus one for a MOVED or ASK met on the way, which costs no wait.
	clusterMaxRedirects = 2
	// clusterStateReload is how stale a cluster client's slot map may get: after a failover, clients
	// reach the new master at most this long after it took over.
	clusterStateReload = 2 * time.Second
)

// NewClient builds the go-redis client that reportd's API, worker and asynq share for what
// opt names (asynq.ParseRedisURI of REDIS_URL, or a RedisClusterClientOpt of REDIS_CLUSTER_ADDRS),
// with reportd's timeouts and retries (asynq's own MakeRedisClient cannot set the retries), answering
// asynq's checks that a queue exists from a short cache (CacheQueueChecks).
func NewClient(opt asynq.RedisConnOpt) (redis.UniversalClient, error) {
	rdb, err := newClient(opt)
	if err != nil {
		return nil, err
	}
	CacheQueueChecks(rdb)
	return rdb, nil
}

func newClient(opt asynq.RedisConnOpt) (redis.UniversalClient, error) {
	switch o := opt.(type) {
	case asynq.RedisClientOpt:
		return redis.NewClient(&redis.Options{
			Network: o.Network, Addr: o.Addr, Username: o.Username, Password: o.Password, DB: o.DB,
			TLSConfig:   o.TLSConfig,
			DialTimeout: redisDialTimeout, DialerRetries: redisDialAttempts,
			ReadTimeout: redisIOTimeout, WriteTimeout: redisIOTimeout,
			MaxRetries: redisCommandRetry, PoolTimeout: redisPoolWaitLimit, PoolSize: max(o.PoolSize, redisPoolSize),
		}), nil
	case asynq.RedisFailoverClientOpt:
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: o.MasterName, SentinelAddrs: o.SentinelAddrs,
			SentinelUsername: o.SentinelUsername, SentinelPassword: o.SentinelPassword,
			Username: o.Username, Password: o.Password, DB: o.DB, TLSConfig: o.TLSConfig,
			DialTimeout: redisDialTimeout, DialerRetries: redisDialAttempts,
			ReadTimeout: redisIOTimeout, WriteTimeout: redisIOTimeout,
			MaxRetries: redisCommandRetry, PoolTimeout: redisPoolWaitLimit, PoolSize: max(o.PoolSize, redisPoolSize),
		}), nil
	case asynq.RedisClusterClientOpt:
		maxRedirects := o.MaxRedirects
		if maxRedirects == 0 {
			maxRedirects = clusterMaxRedirects
		}
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: o.Addrs, Username: o.Username, Password: o.Password, TLSConfig: o.TLSConfig,
			DialTimeout: redisDialTimeout, DialerRetries: redisDialAttempts,
			ReadTimeout: redisIOTimeout, WriteTimeout: redisIOTimeout, PoolTimeout: redisPoolWaitLimit, PoolSize: redisPoolSize,
			// A cluster client retries by itself, per command, up to MaxRedirects times: on a network
			// error (the same node once, then the slot's node afresh) and on MOVED/ASK. Its node clients
			// keep go-redis's cluster default of no retries of their own, or the two would multiply.
			MaxRedirects: maxRedirects,
			// go-redis re-reads the slot map on MOVED, but a master that died answers nothing: until the
			// map is re-read, commands for its slots go to the dead address even after a replica took
			// over. The default of 60 s made a failover last a minute for clients; see clusterStateReload.
			ClusterStateReloadInterval: clusterStateReload,
		}), nil
	}
	return nil, fmt.Errorf("unsupported Redis connection type %T", opt)
}
