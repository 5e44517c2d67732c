package store

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/google/uuid"
)

// TestQueueNamesAreFixed pins the queue names of the shard codes: they are part of the id format, and
// a change would strand every job on a queue no worker serves. Every code's queue hashes into its own
// 64-slot range.
func TestQueueNamesAreFixed(t *testing.T) {
	t.Parallel()
	pinned := map[byte]string{}
	for _, c := range []byte{0, 42, 64, 128, 192, 213, 255} {
		pinned[c] = queueName(c)
	}
	want := map[byte]string{0: "reports-0-74", 42: "reports-42-158", 64: "reports-64-35", 128: "reports-128-26",
		192: "reports-192-251", 213: "reports-213-144", 255: "reports-255-148"}
	for c, w := range want {
		if pinned[c] != w {
			t.Errorf("queueName(%d) = %q, want %q", c, pinned[c], w)
		}
	}
	seen := map[string]bool{}
	for c := range MaxShards {
		q := queueName(byte(c))
		if slot := HashSlot(q); slot < c*slotsPerCode || slot >= (c+1)*slotsPerCode {
			t.Errorf("queue %s of code %d is in slot %d, outside %d-%d", q, c, slot, c*slotsPerCode, (c+1)*slotsPerCode-1)
		}
		if HashSlot("asynq:{"+q+"}:pending") != HashSlot(q) {
			t.Errorf("asynq's keys of %s are not in its slot", q)
		}
		if seen[q] || q == ReportQueue || !IsReportQueue(q) {
			t.Errorf("queue %s of code %d is not a distinct report queue", q, c)
		}
		seen[q] = true
	}
	for _, q := range []string{ReportQueue} {
		if !IsReportQueue(q) {
			t.Errorf("IsReportQueue(%q) = false", q)
		}
	}
	for _, q := range []string{WebhookQueue, "default", "reports-1", "reports-0-154", ""} {
		if IsReportQueue(q) {
			t.Errorf("IsReportQueue(%q) = true", q)
		}
	}
}

// TestShards: N shards have N distinct queues spread evenly over the slot space; a new job's id names
// its shard's queue, whatever N is when it is read; one shard is the queue and the ids of before shards.
func TestShards(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, -1, MaxShards + 1} {
		if _, err := NewShards(n); err == nil {
			t.Errorf("NewShards(%d): no error", n)
		}
	}
	one, err := NewShards(1)
	if err != nil || one.N() != 1 || !slices.Equal(one.Queues(), []string{ReportQueue}) || !slices.Equal(Shards{}.Queues(), []string{ReportQueue}) {
		t.Fatalf("one shard: %v, %v, %v", one.Queues(), one.N(), err)
	}
	if id := one.NewID(); id.Version() != 4 || QueueOf(id.String()) != ReportQueue {
		t.Errorf("one shard's id %s: version %d, queue %s; want a random UUID in %s", id, id.Version(), QueueOf(id.String()), ReportQueue)
	}
	for n := 2; n <= MaxShards; n++ {
		s, err := NewShards(n)
		if err != nil {
			t.Fatal(err)
		}
		qs := s.Queues()
		slices.Sort(qs)
		if s.N() != n || len(slices.Compact(qs)) != n {
			t.Fatalf("NewShards(%d) has %d distinct queues", n, len(slices.Compact(qs)))
		}
		// Evenly spread: the k-th shard's slot lies in the k-th of n equal parts of the slot space (for
		// n up to 128, where a part is at least two codes' ranges wide).
		for k, q := range s.Queues() {
			if n > MaxShards/2 {
				break
			}
			if part := HashSlot(q) * n / clusterSlots; part != k {
				t.Errorf("NewShards(%d): shard %d (%s, slot %d) lies in part %d", n, k, q, HashSlot(q), part)
			}
		}
	}
	three, _ := NewShards(3)
	hits := map[string]int{}
	for range 3000 {
		id := three.NewID()
		if id.Version() != 8 || id.Variant() != uuid.RFC4122 {
			t.Fatalf("id %s: version %d, variant %v; want 8, RFC 4122", id, id.Version(), id.Variant())
		}
		hits[QueueOf(id.String())]++
	}
	for _, q := range three.Queues() {
		if hits[q] < 800 {
			t.Errorf("3000 new ids over 3 shards: %v", hits)
		}
	}
	if len(hits) != 3 {
		t.Errorf("new ids went to %v, want the 3 shards' queues %v", hits, three.Queues())
	}
	// Ids from before shards, and anything that is not an id, are the one queue's.
	for _, id := range []string{"6f1c2b1e-5d0a-4c3b-9a8f-0123456789ab", "not-an-id", ""} {
		if q := QueueOf(id); q != ReportQueue {
			t.Errorf("QueueOf(%q) = %s, want %s", id, q, ReportQueue)
		}
	}
}

// TestReportQueues: a process serves its shards and every other report queue that still holds tasks.
func TestReportQueues(t *testing.T) {
	t.Parallel()
	two, _ := NewShards(2)
	three, _ := NewShards(3)
	sizes := map[string]int{ReportQueue: 4, three.Queues()[0]: 1, three.Queues()[1]: 0, three.Queues()[2]: 2, WebhookQueue: 9}
	all := append([]string{ReportQueue, WebhookQueue, "default"}, three.Queues()...)
	size := func(q string) (int, error) {
		if q == "default" || q == WebhookQueue {
			return 0, fmt.Errorf("size of %s asked", q)
		}
		return sizes[q], nil
	}
	got, err := ReportQueues(two, all, size)
	want := append(two.Queues(), ReportQueue, three.Queues()[0], three.Queues()[2])
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("ReportQueues = %v, %v; want %v", got, err, want)
	}
	if _, err := ReportQueues(two, all, func(string) (int, error) { return 0, errors.New("down") }); err == nil {
		t.Error("ReportQueues with Redis down: no error")
	}
}
