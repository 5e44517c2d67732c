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
	// Rate, with a rate limit, is where the client stands after the verdict; nil without one.
	Rate *RateState
}

// RateState is where a client stands against its rate limit.
type RateState struct {
	// Available is how many submissions it may make at once now.
	Available int
	// FullIn is how long until it may make a whole burst again.
	FullIn time.Duration
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
	if err != nil {
		return Verdict{}, fmt.Errorf("admit job %s: %w", a.ID, err)
	}
	if len(res) < 3 {
		return Verdict{}, fmt.Errorf("admit job %s: unexpected answer %q", a.ID, res)
	}
	var v Verdict
	if res[1] != "" {
		avail, err1 := strconv.Atoi(res[1])
		full, err2 := strconv.ParseInt(res[2], 10, 64)
		if err1 != nil || err2 != nil {
			return Verdict{}, fmt.Errorf("admit job %s: unexpected rate state %q", a.ID, res[1:3])
		}
		v.Rate = &RateState{Available: avail, FullIn: time.Duration(full) * time.Microsecond}
	}
	rest := res[3:]
	switch res[0] {
	case "ok":
		v.Admitted = true
	case "held":
		var held Submission
		if len(rest) < 1 || json.Unmarshal([]byte(rest[0]), &held) != nil {
			return Verdict{}, fmt.Errorf("admit job %s: the idempotency key's record cannot be read", a.ID)
		}
		v.Held = &held
	case "rate":
		us, _ := strconv.ParseInt(rest[0], 10, 64)
		v.RetryIn = time.Duration(us) * time.Microsecond
	case "full":
		v.Open = rest
	default:
		return Verdict{}, fmt.Errorf("admit job %s: unexpected answer %q", a.ID, res[0])
	}
	return v, nil
}
