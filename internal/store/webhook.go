package store

import (
	"context"
	"errors"
	"fmt"

	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Delivery is the state of a job's webhook, as its status shows it.
type Delivery struct {
	Attempts    int
	LastStatus  int // the receiver's HTTP status; 0 when it gave none
	LastError   string
	DeliveredAt time.Time
}

// RecordDelivery records the latest delivery attempt of job id's webhook, for as long as the job is
// readable.
func (s *Store) RecordDelivery(ctx context.Context, id string, d Delivery) error {
	fields := map[string]any{"attempts": d.Attempts, "last_status": d.LastStatus, "last_error": d.LastError}
	if !d.DeliveredAt.IsZero() {
		fields["delivered_at"] = d.DeliveredAt.UTC().Format(time.RFC3339Nano)
	}
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, webhookKey(id), fields)
		p.Expire(ctx, webhookKey(id), s.retention+resultSlack)
		return nil
	})
	if err != nil {
		return fmt.Errorf("record webhook of job %s: %w", id, err)
	}
	return nil
}

// WebhookDelivery returns the state of job id's webhook, and false when no attempt was made yet.
func (s *Store) WebhookDelivery(ctx context.Context, id string) (Delivery, bool, error) {
	m, err := s.rdb.HGetAll(ctx, webhookKey(id)).Result()
	if errors.Is(err, redis.Nil) || err == nil && len(m) == 0 {
		return Delivery{}, false, nil
	}
	if err != nil {
		return Delivery{}, false, fmt.Errorf("read webhook of job %s: %w", id, err)
	}
	var d Delivery
	d.Attempts, _ = strconv.Atoi(m["attempts"])
	d.LastStatus, _ = strconv.Atoi(m["last_status"])
	d.LastError = m["last_error"]
	if v := m["delivered_at"]; v != "" {
		d.DeliveredAt, _ = time.Parse(time.RFC3339Nano, v)
	}
	return d, true, nil
}
