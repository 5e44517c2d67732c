package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// claimKey claims client's Idempotency-Key for sub through Admit, as a submit does: it returns the
// record the key holds after the call, and whether that is sub.
func claimKey(ctx context.Context, s *Store, client, key string, sub Submission, ttl time.Duration) (Submission, bool, error) {
	v, err := s.Admit(ctx, Admission{Client: client, ID: sub.JobID, At: sub.CreatedAt, Keep: time.Hour, Key: key, Record: sub, KeyTTL: ttl})
	switch {
	case err != nil:
		return Submission{}, false, err
	case v.Held != nil:
		return *v.Held, false, nil
	case v.Admitted:
		return sub, true, nil
	}
	return Submission{}, false, fmt.Errorf("unexpected verdict %+v", v)
}

// allowOnce takes one submission from client's allowance of perSecond a second with bursts of burst,
// through Admit: whether it was allowed, and else how long until the next one is.
func allowOnce(ctx context.Context, s *Store, client string, perSecond float64, burst int) (bool, time.Duration, error) {
	v, err := s.Admit(ctx, Admission{Client: client, ID: uuid.NewString(), At: time.Now(), Keep: time.Hour, PerSecond: perSecond, Burst: burst})
	return v.Admitted, v.RetryIn, err
}

// endDone records the end of client's job id as done with report body, as its last attempt does; it
// returns the outcome recorded.
func endDone(ctx context.Context, s *Store, id, client string, body []byte) (string, error) {
	return s.RecordEnd(ctx, EndRecord{ID: id, Client: client, Outcome: "done", Final: true, Report: body})
}

// index admits client's job id, created at, with no limits: its index entry (trimming those older
// than keep) and its count as unfinished.
func index(ctx context.Context, s *Store, client, id string, at time.Time, keep time.Duration) error {
	v, err := s.Admit(ctx, Admission{Client: client, ID: id, At: at, Keep: keep})
	if err == nil && !v.Admitted {
		err = fmt.Errorf("job %s not admitted: %+v", id, v)
	}
	return err
}
