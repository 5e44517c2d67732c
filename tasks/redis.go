package tasks

import (
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Redis timeouts and retries: few and short, so that an unreachable or hung Redis is a 503 within
// about two seconds, never a hang. go-redis's defaults (5 dial attempts of 5 s, 3 command retries)
// took 22 s to fail against a host that drops packets. One command retry stays, for the stale pooled
// connection that the first command after a Redis restart meets.
const (
	redisDialTimeout   = 700 * time.Millisecond
	redisIOTimeout     = 800 * time.Millisecond
	redisDialAttempts  = 1
	redisCommandRetry  = 1
	redisPoolWaitLimit = time.Second
)

// NewRedisClient builds the go-redis client that reportd's API, worker and asynq share for what
// opt (asynq.ParseRedisURI of REDIS_URL) names, with reportd's timeouts and retries: asynq's own
// MakeRedisClient cannot set the retries.
func NewRedisClient(opt asynq.RedisConnOpt) (redis.UniversalClient, error) {
	switch o := opt.(type) {
	case asynq.RedisClientOpt:
		return redis.NewClient(&redis.Options{
			Network: o.Network, Addr: o.Addr, Username: o.Username, Password: o.Password, DB: o.DB,
			TLSConfig: o.TLSConfig, PoolSize: o.PoolSize,
			DialTimeout: redisDialTimeout, DialerRetries: redisDialAttempts,
			ReadTimeout: redisIOTimeout, WriteTimeout: redisIOTimeout,
			MaxRetries: redisCommandRetry, PoolTimeout: redisPoolWaitLimit,
		}), nil
	case asynq.RedisFailoverClientOpt:
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: o.MasterName, SentinelAddrs: o.SentinelAddrs,
			SentinelUsername: o.SentinelUsername, SentinelPassword: o.SentinelPassword,
			Username: o.Username, Password: o.Password, DB: o.DB, TLSConfig: o.TLSConfig, PoolSize: o.PoolSize,
			DialTimeout: redisDialTimeout, DialerRetries: redisDialAttempts,
			ReadTimeout: redisIOTimeout, WriteTimeout: redisIOTimeout,
			MaxRetries: redisCommandRetry, PoolTimeout: redisPoolWaitLimit,
		}), nil
	}
	return nil, fmt.Errorf("unsupported Redis connection type %T", opt)
}
