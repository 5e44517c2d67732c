package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// IndexJob adds job id, created at, to its client's index and unfinished set, and drops from the index
// the entries older than keep (jobs that cannot be readable any more).
func (s *Store) IndexJob(ctx context.Context, client, id string, at time.Time, keep time.Duration) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, clientJobsKey(client), redis.Z{Score: float64(at.UnixMicro()), Member: id})
		p.ZRemRangeByScore(ctx, clientJobsKey(client), "-inf", "("+strconv.FormatInt(at.Add(-keep).UnixMicro(), 10))
		p.SAdd(ctx, clientOpenKey(client), id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("index job %s: %w", id, err)
	}
	return nil
}

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

// OpenJobs returns the ids of client's unfinished jobs, as recorded.
func (s *Store) OpenJobs(ctx context.Context, client string) ([]string, error) {
	ids, err := s.rdb.SMembers(ctx, clientOpenKey(client)).Result()
	if err != nil {
		return nil, fmt.Errorf("read open jobs: %w", err)
	}
	return ids, nil
}

// AllowSubmit takes one submission from client's allowance of perSecond a second with bursts of burst.
// When it is spent it returns false and how long until the next submission is allowed.
func (s *Store) AllowSubmit(ctx context.Context, client string, perSecond float64, burst int) (bool, time.Duration, error) {
	interval := int64(1e6 / perSecond)
	res, err := rateScript.Run(ctx, s.rdb, []string{clientRateKey(client)}, interval, burst).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("rate limit: %w", err)
	}
	return res[0] == 1, time.Duration(res[1]) * time.Microsecond, nil
}
