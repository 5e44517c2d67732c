package store

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// queueCheckFresh is how long a "yes, the queue exists" from Redis answers asynq's next checks.
const queueCheckFresh = time.Second

// CacheQueueChecks makes rdb answer asynq's check that a queue exists from what Redis last said, for
// queueCheckFresh. asynq's Inspector checks it (SISMEMBER asynq:queues, to tell "no such queue" from
// "no such task") before every task lookup, so a status read, asynq's GetTaskInfo, took two round trips
// where one, its script, reads the task. Only a yes is kept, and only for a second: a queue that exists
// hardly ever stops existing (an operator's forced delete in the web UI), and if it did, the lookup
// would still find no task, which reportd treats as it treats no queue. When Redis cannot answer the
// check, a queue it said yes to before is taken to exist: on a cluster, asynq:queues lives on one master,
// and without this its failover would stop the status reads of every job on every master. Everything
// else passes through.
// NewClient calls it; hooks added after it (a test's command counter) see only what reaches Redis.
func CacheQueueChecks(rdb redis.UniversalClient) {
	rdb.AddHook(&queueCheckCache{now: time.Now, seen: map[string]time.Time{}})
}

// queueCheckCache is the go-redis hook of CacheQueueChecks.
type queueCheckCache struct {
	now  func() time.Time
	mu   sync.Mutex
	seen map[string]time.Time // queue -> when Redis last said it is in asynq:queues
}

func (c *queueCheckCache) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *queueCheckCache) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (c *queueCheckCache) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		check, ok := cmd.(*redis.BoolCmd)
		queue, isCheck := queueChecked(cmd)
		if !ok || !isCheck {
			return next(ctx, cmd)
		}
		if c.fresh(queue) {
			check.SetVal(true)
			return nil
		}
		err := next(ctx, cmd)
		switch {
		case err == nil:
			c.saw(queue, check.Val())
		case c.known(queue) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded):
			// Redis cannot answer (the master of asynq:queues is down, say), but it said yes before:
			// the task lookup goes on, to the master of the job's own queue, which may well be up.
			check.SetErr(nil)
			check.SetVal(true)
			return nil
		}
		return err
	}
}

// queueChecked is the queue of an "SISMEMBER asynq:queues <queue>", asynq's check that it exists.
func queueChecked(cmd redis.Cmder) (string, bool) {
	args := cmd.Args()
	if len(args) != 3 || cmd.Name() != "sismember" || args[1] != asynqQueuesKey {
		return "", false
	}
	queue, ok := args[2].(string)
	return queue, ok
}

func (c *queueCheckCache) fresh(queue string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.seen[queue]
	return ok && c.now().Sub(at) < queueCheckFresh
}

// known reports whether Redis ever said queue exists and has not said otherwise since.
func (c *queueCheckCache) known(queue string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.seen[queue]
	return ok
}

func (c *queueCheckCache) saw(queue string, exists bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if exists {
		c.seen[queue] = c.now()
	} else {
		delete(c.seen, queue)
	}
}
