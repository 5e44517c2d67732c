package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/reportd/reportd/internal/store"
)

// queueSetup is where report jobs go and what a worker serves.
type queueSetup struct {
	// shards are the queues new jobs go to.
	shards store.Shards
	// served are shards' queues and every older report queue that still holds tasks.
	served []string
}

// setUpQueues decides the report queue's shards (REPORTD_QUEUE_SHARDS, or one per cluster master),
// registers them with asynq, and finds the report queues of an earlier REPORTD_QUEUE_SHARDS that still hold tasks, so that they are
// served (by a worker) and counted (by the API's estimate) until they are empty. It logs each queue,
// with its hash slot and, on a cluster, the master that holds it.
func setUpQueues(ctx context.Context, cfg config, rdb redis.UniversalClient, st *store.Store, log *slog.Logger) (queueSetup, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cluster, isCluster := rdb.(*redis.ClusterClient)
	var slots []redis.ClusterSlot
	if isCluster {
		var err error
		//lint:ignore SA1019 CLUSTER SHARDS needs Redis 7, and reportd (as asynq) runs on 6.2.
		if slots, err = cluster.ClusterSlots(ctx).Result(); err != nil {
			log.Warn("cannot read the cluster's slot map: report queue shards are not checked against its masters", "err", err)
		}
	}
	n := cfg.QueueShards
	if n == 0 {
		n = max(masters(slots), 1)
	}
	shards, err := store.NewShards(n)
	if err != nil {
		return queueSetup{}, fmt.Errorf("REPORTD_QUEUE_SHARDS: %w", err)
	}
	qs := queueSetup{shards: shards, served: shards.Queues()}
	// Known to asynq (and so to its web UI and queue metrics) before their first job.
	if err := st.RegisterQueues(ctx, shards.Queues()); err != nil {
		log.Warn("cannot register the report queue shards with asynq: the web UI lists each from its first job", "err", err)
	}

	// Queues of an earlier N: asynq lists every queue it ever enqueued to.
	inspector := asynq.NewInspectorFromRedisClient(rdb)
	all, err := inspector.Queues()
	if err == nil {
		qs.served, err = store.ReportQueues(shards, all, func(q string) (int, error) {
			info, err := inspector.GetQueueInfo(q)
			if err != nil {
				return 0, err
			}
			// Archived (failed) tasks need no worker; the others do, completed ones for the janitor.
			return info.Pending + info.Active + info.Scheduled + info.Retry + info.Completed, nil
		})
	}
	if err != nil {
		qs.served = shards.Queues()
		log.Warn("cannot list the report queues of an earlier REPORTD_QUEUE_SHARDS: only this one's are served; "+
			"restart with Redis up to serve jobs left on older shards", "err", err)
	}
	for _, q := range qs.served {
		slot := store.HashSlot(q)
		attrs := []any{"queue", q, "slot", slot}
		if m := masterOf(slots, slot); m != "" {
			attrs = append(attrs, "master", m)
		}
		if !slices.Contains(shards.Queues(), q) {
			attrs = append(attrs, "older", true)
		}
		log.Info("report queue", attrs...)
	}
	if spread := masters(slots); spread > 0 && n < spread {
		log.Warn("fewer report queue shards than cluster masters: some masters hold no report jobs", "shards", n, "masters", spread)
	}
	return qs, nil
}

// masters counts the masters that hold slots.
func masters(slots []redis.ClusterSlot) int {
	seen := map[string]bool{}
	for _, s := range slots {
		if len(s.Nodes) > 0 {
			seen[s.Nodes[0].Addr] = true
		}
	}
	return len(seen)
}

// masterOf is the address of the master that holds slot, or "".
func masterOf(slots []redis.ClusterSlot, slot int) string {
	for _, s := range slots {
		if s.Start <= slot && slot <= s.End && len(s.Nodes) > 0 {
			return s.Nodes[0].Addr
		}
	}
	return ""
}
