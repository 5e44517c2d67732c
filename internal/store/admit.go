package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Admission asks for a job to be admitted for a client: one round trip, whatever it asks.
type Admission struct {
	Client string
	ID     string
	At     time.Time
	// Keep is how long index entries stay: entries older than At-Keep are trimmed.
	Keep time.Duration
	// PerSecond and Burst bound the client's submissions; zero PerSecond means no limit.
	PerSecond float64
	Burst     int
	// MaxOpen bounds the client's unfinished jobs; zero means no bound.
	MaxOpen int
	// Key, if set, is the client's Idempotency-Key, claimed for Record for KeyTTL.
	Key    string
	Record Submission
	KeyTTL time.Duration
}

// Verdict is how an Admission was answered.
type Verdict struct {
	// Admitted: the job is indexed, counted as unfinished, and the key (if any) claimed.
	Admitted bool
	// Held is the key's record when the key was used before; nothing else was done.
	Held *Submission
	// RetryIn is set when the rate limit refused: how long until the client may submit again.
	RetryIn time.Duration
	// Open is set when the cap refused: the ids of the unfinished jobs, as recorded.
	Open []string
}

// Admit runs the submit's one script: the key's claim, the client's limits, its index and its count
// of unfinished jobs (see admitScript).
func (s *Store) Admit(ctx context.Context, a Admission) (Verdict, error) {
	record := ""
	if a.Key != "" {
		b, err := json.Marshal(a.Record)
		if err != nil {
			return Verdict{}, fmt.Errorf("encode submission: %w", err)
		}
		record = string(b)
	}
	interval := int64(0)
	if a.PerSecond > 0 {
		interval = int64(1e6 / a.PerSecond)
	}
	keys := []string{clientJobsKey(a.Client), clientOpenKey(a.Client), clientRateKey(a.Client), idempotencyKey(a.Client, a.Key)}
	res, err := admitScript.Run(ctx, s.rdb, keys, a.ID, a.At.UnixMicro(), a.At.Add(-a.Keep).UnixMicro(),
		interval, max(a.Burst, 1), a.MaxOpen, record, a.KeyTTL.Milliseconds()).StringSlice()
	if err != nil || len(res) == 0 {
		return Verdict{}, fmt.Errorf("admit job %s: %w", a.ID, err)
	}
	switch res[0] {
	case "ok":
		return Verdict{Admitted: true}, nil
	case "held":
		var held Submission
		if len(res) < 2 || json.Unmarshal([]byte(res[1]), &held) != nil {
			return Verdict{}, fmt.Errorf("admit job %s: the idempotency key's record cannot be read", a.ID)
		}
		return Verdict{Held: &held}, nil
	case "rate":
		us, _ := strconv.ParseInt(res[1], 10, 64)
		return Verdict{RetryIn: time.Duration(us) * time.Microsecond}, nil
	case "full":
		return Verdict{Open: res[1:]}, nil
	}
	return Verdict{}, fmt.Errorf("admit job %s: unexpected answer %q", a.ID, res[0])
}
