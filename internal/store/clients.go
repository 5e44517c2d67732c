package store

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// IndexedJob is one entry of a client's index.
type IndexedJob struct {
	ID string
	// Score is the job's creation time in microseconds, the position in the index.
	Score int64
}

// sameMicrosecondSlack is how many jobs of one client created in the same microsecond a page can step
// over; more would need a client submitting faster than Redis can take its writes.
const sameMicrosecondSlack = 64

// ListJobs returns up to n of client's jobs that come after the entry after in the index's order
// (newest first, and by id, descending, among jobs created in the same microsecond); a zero after
// starts at the newest.
func (s *Store) ListJobs(ctx context.Context, client string, after IndexedJob, n int) ([]IndexedJob, error) {
	hi := "+inf"
	if after.Score > 0 {
		hi = strconv.FormatInt(after.Score, 10) // inclusive: entries of the same microsecond are filtered below
	}
	zs, err := s.rdb.ZRevRangeByScoreWithScores(ctx, clientJobsKey(client),
		&redis.ZRangeBy{Max: hi, Min: "-inf", Count: int64(n + sameMicrosecondSlack)}).Result()
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	out := make([]IndexedJob, 0, n)
	for _, z := range zs {
		id, _ := z.Member.(string)
		j := IndexedJob{ID: id, Score: int64(z.Score)}
		if after.Score > 0 && j.Score == after.Score && j.ID >= after.ID {
			continue // at or before the cursor
		}
		if len(out) == n {
			break
		}
		out = append(out, j)
	}
	return out, nil
}

// Unindex drops jobs that are gone from client's index and unfinished set.
func (s *Store) Unindex(ctx context.Context, client string, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	members := make([]any, len(ids))
	for i, id := range ids {
		members[i] = id
	}
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, clientJobsKey(client), members...)
		p.SRem(ctx, clientOpenKey(client), members...)
		return nil
	})
	if err != nil {
		return fmt.Errorf("unindex jobs: %w", err)
	}
	return nil
}

// MarkFinished drops job id from client's unfinished jobs.
func (s *Store) MarkFinished(ctx context.Context, client, id string) error {
	if err := s.rdb.SRem(ctx, clientOpenKey(client), id).Err(); err != nil {
		return fmt.Errorf("close job %s: %w", id, err)
	}
	return nil
}

// QueueCounts returns how many report jobs wait in asynq's queues and how many run, from the lengths of
// asynq's lists, in one round trip (one per node on a Cluster).
func (s *Store) QueueCounts(ctx context.Context, queues []string) (pending, active int64, err error) {
	var ps, as []*redis.IntCmd
	_, err = s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for _, q := range queues {
			ps = append(ps, pipe.LLen(ctx, asynqPendingKey(q)))
			as = append(as, pipe.LLen(ctx, asynqActiveKey(q)))
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("count the queues: %w", err)
	}
	for i := range ps {
		pending, active = pending+ps[i].Val(), active+as[i].Val()
	}
	return pending, active, nil
}

// OpenJobs returns the ids of client's unfinished jobs, as recorded.
func (s *Store) OpenJobs(ctx context.Context, client string) ([]string, error) {
	ids, err := s.rdb.SMembers(ctx, clientOpenKey(client)).Result()
	if err != nil {
		return nil, fmt.Errorf("read open jobs: %w", err)
	}
	return ids, nil
}
