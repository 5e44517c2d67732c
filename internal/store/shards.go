package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// Report queue shards. asynq keeps all of a queue's keys in one Redis Cluster hash slot, so one queue
// is one master's work however many masters a cluster has. reportd therefore spreads its report jobs
// over N asynq queues, its shards, each of whose hash slots is chosen to fall in its own part of the
// cluster's slot space.
//
// A job's shard is written in its id, so that the status read goes straight to the right queue, and an
// id issued under one N is still found under another:
//
//   - With one shard (the default), ids are random (version 4) UUIDs and the one queue is ReportQueue,
//     "reports", as before shards existed.
//   - With N > 1, an id is a version 8 UUID (RFC 9562's layout for custom ids: 122 bits of its own,
//     all random here but the first byte) whose first byte is its shard's code, 0 to 255. The code names
//     a fixed 64-slot range of the 16,384 slots (code c: slots 64c to 64c+63) and a queue whose hash
//     slot lies in that range: "reports-<c>" with a suffix found once and for all (queueName). N shards
//     use N codes spread evenly over 0-255, and so N slots spread evenly over the slot space: with the
//     contiguous, equal slot ranges a cluster gets from `redis-cli --cluster create`, each of M masters
//     holds N/M shards (give or take one).
//
// Every id read back names its queue (QueueOf) whatever N is now; a worker serves the shards of its N
// and every other report queue that still holds tasks (Store.ReportQueues), until they are empty.

// MaxShards is the most report queue shards there can be: one per code.
const MaxShards = 256

// slotsPerCode is the width of a code's range of hash slots.
const slotsPerCode = clusterSlots / MaxShards

const clusterSlots = 16384

// Shards is the set of report queues new jobs go to. The zero value is one shard: ReportQueue.
type Shards struct {
	codes []byte // nil: one shard, ReportQueue
}

// NewShards returns n shards, 1 to MaxShards.
func NewShards(n int) (Shards, error) {
	if n < 1 || n > MaxShards {
		return Shards{}, fmt.Errorf("%d report queue shards: want 1 to %d", n, MaxShards)
	}
	if n == 1 {
		return Shards{}, nil
	}
	codes := make([]byte, n)
	for k := range codes {
		// The middle of the k-th of n equal parts of 0-255: evenly spread, and the same for every
		// process with the same n.
		codes[k] = byte((2*k + 1) * MaxShards / (2 * n))
	}
	return Shards{codes: codes}, nil
}

// N is the number of shards.
func (s Shards) N() int { return max(len(s.codes), 1) }

// Queues are the shards' asynq queues, in code order.
func (s Shards) Queues() []string {
	if s.codes == nil {
		return []string{ReportQueue}
	}
	qs := make([]string, len(s.codes))
	for i, c := range s.codes {
		qs[i] = queueName(c)
	}
	return qs
}

// NewID returns the id of a new job on a shard chosen at random: a random UUID with one shard, and
// otherwise one that carries its shard's code (see QueueOf).
func (s Shards) NewID() uuid.UUID {
	id := uuid.New()
	if s.codes == nil {
		return id
	}
	id[0] = s.codes[rand.IntN(len(s.codes))]
	id[6] = id[6]&0x0f | 0x80 // version 8; uuid.New's variant bits (10) stay
	return id
}

// QueueOf is the asynq queue of job id, from the id alone: the queue its code names for a version 8
// id, and ReportQueue for any other (the ids of one shard, and those issued before shards existed).
func QueueOf(id string) string {
	u, err := uuid.Parse(id)
	if err != nil || u.Version() != 8 {
		return ReportQueue
	}
	return queueName(u[0])
}

// IsReportQueue reports whether asynq queue name is one of reportd's report queues, of any N.
func IsReportQueue(name string) bool {
	if name == ReportQueue {
		return true
	}
	names := queueNames()
	return slices.Contains(names[:], name)
}

// queueName is the name of code c's queue: the first of "reports-<c>", "reports-<c>-1", "reports-<c>-2",
// ... whose hash slot lies in c's range. The names are part of the id format: changing how they are
// found would strand every job in a queue no worker serves (TestQueueNamesAreFixed pins them).
func queueName(c byte) string { return queueNames()[c] }

var queueNames = sync.OnceValue(func() (names [MaxShards]string) {
	for c := range MaxShards {
		base := fmt.Sprintf("%s-%d", ReportQueue, c)
		name := base
		for i := 1; HashSlot(name)/slotsPerCode != c; i++ {
			name = fmt.Sprintf("%s-%d", base, i)
		}
		names[c] = name
	}
	return names
})

// HashSlot is the Redis Cluster hash slot of key: of its hash tag, the part between the first '{' and
// the first '}' after it, when that part is not empty; of the whole key otherwise.
func HashSlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16([]byte(key)) % clusterSlots)
}

// crc16 is the CRC16 of the Redis Cluster spec (CCITT/XMODEM: polynomial 0x1021, initial value 0).
func crc16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// ReportQueues are the report queues a process of shards s serves: its own, and every other report
// queue asynq knows (of an earlier N) that still holds a task, so that changing N strands no job. size
// returns how many tasks a queue holds, in any state.
func ReportQueues(s Shards, all []string, size func(queue string) (int, error)) ([]string, error) {
	qs := s.Queues()
	for _, q := range all {
		if !IsReportQueue(q) || slices.Contains(qs, q) {
			continue
		}
		n, err := size(q)
		if err != nil {
			return nil, fmt.Errorf("size of queue %s: %w", q, err)
		}
		if n > 0 {
			qs = append(qs, q)
		}
	}
	return qs, nil
}

// RegisterQueues adds queues to asynq's set of known queues, as asynq's first enqueue to each would.
func (s *Store) RegisterQueues(ctx context.Context, queues []string) error {
	if err := s.rdb.SAdd(ctx, asynqQueuesKey, queues).Err(); err != nil {
		return fmt.Errorf("register queues: %w", err)
	}
	return nil
}

// QueueProbe is a key in queue's hash slot that is never written: reading it tells whether the Redis
// node that holds the queue answers (a PING would be answered by any node of a Cluster). Owner:
// readiness and the worker's end of an attempt; lifetime: none.
func QueueProbe(queue string) string { return "asynq:{" + queue + "}:probe" }

// QueuesReachable returns nil when the Redis nodes that hold queues all answer: a read in each queue's
// hash slot, at once (a single Redis is read once). Each read has the timing of any one command, so
// that a hung Redis is an error within two seconds.
func (s *Store) QueuesReachable(ctx context.Context, queues []string) error {
	if _, cluster := s.rdb.(*redis.ClusterClient); !cluster {
		queues = queues[:min(len(queues), 1)]
	}
	errs := make([]error, len(queues))
	var wg sync.WaitGroup
	for i, q := range queues {
		wg.Go(func() {
			if err := s.rdb.Get(ctx, QueueProbe(q)).Err(); err != nil && !errors.Is(err, redis.Nil) {
				errs[i] = fmt.Errorf("reach queue %s: %w", q, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
