package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/reportd/reportd/internal/redistest"
)

func TestKeySlotFollowsTheSpec(t *testing.T) {
	t.Parallel()
	// The check value of CRC16/XMODEM, and the examples of the cluster spec's "Hash tags" section.
	if got := crc16([]byte("123456789")); got != 0x31C3 {
		t.Fatalf("crc16(123456789) = %#x, want 0x31c3", got)
	}
	same := [][2]string{
		{"{user1000}.following", "{user1000}.followers"},
		{"foo{{bar}}zap", "{bar"},    // the tag is "{bar"
		{"foo{bar}{zap}", "bar"},     // only the first tag counts
		{"foo{}{bar}", "foo{}{bar}"}, // an empty tag: the whole key
	}
	for _, p := range same {
		if HashSlot(p[0]) != HashSlot(p[1]) {
			t.Errorf("slot(%q) = %d, slot(%q) = %d; want equal", p[0], HashSlot(p[0]), p[1], HashSlot(p[1]))
		}
	}
	if HashSlot("foo{}{bar}") == HashSlot("bar") {
		t.Errorf(`slot("foo{}{bar}") = slot("bar"): an empty tag must not count`)
	}
}

// ids and clients are the shapes the key functions are called with: job ids are UUIDs, client names
// are 1-64 of [A-Za-z0-9_.-] (impl.validClient) or "anonymous".
func slotTestIDs() []string {
	ids := []string{"00000000-0000-4000-8000-000000000000"}
	for range 200 {
		ids = append(ids, uuid.NewString())
	}
	return ids
}

var slotTestClients = []string{"anonymous", "acme", "a", "A.b-c_9", strings.Repeat("z", 64), "globex.eu-west_1"}

// TestKeysTouchedTogetherShareASlot checks the key conventions: every set of keys one command or one
// MULTI touches hashes to one Redis Cluster slot.
func TestKeysTouchedTogetherShareASlot(t *testing.T) {
	t.Parallel()
	groups := map[string]func(id, client string) []string{
		"saveReportScript (SaveReport)": func(id, _ string) []string {
			return []string{reportKey(id), tombstoneKey(id), cancelKey(id)}
		},
		"Forget (MULTI: DEL + PEXPIRE)": func(id, _ string) []string {
			return []string{reportKey(id), canceledKey(id), cancelKey(id), webhookKey(id), tombstoneKey(id)}
		},
		"IndexJob, Unindex (MULTI)": func(_, client string) []string {
			return []string{clientJobsKey(client), clientOpenKey(client)}
		},
		"a client's keys (jobs, open, rate)": func(_, client string) []string {
			return []string{clientJobsKey(client), clientOpenKey(client), clientRateKey(client)}
		},
	}
	for name, keys := range groups {
		for _, id := range slotTestIDs() {
			for _, client := range slotTestClients {
				ks := keys(id, client)
				for _, k := range ks[1:] {
					if HashSlot(k) != HashSlot(ks[0]) {
						t.Fatalf("%s: %s is in slot %d, %s in slot %d", name, ks[0], HashSlot(ks[0]), k, HashSlot(k))
					}
				}
			}
		}
	}
	// The tags spread: jobs do not all land on one node.
	seen := map[int]bool{}
	for _, id := range slotTestIDs() {
		seen[HashSlot(reportKey(id))] = true
	}
	if len(seen) < 150 {
		t.Errorf("201 job ids hash to only %d slots", len(seen))
	}
}

// slotRecorder is a go-redis hook that records, for every command and every MULTI it sees, the set of
// slots of the keys it touches.
type slotRecorder struct {
	mu    sync.Mutex
	units []recordedUnit
}

type recordedUnit struct {
	what  string
	keys  []string
	slots []int
}

// commandKeys are the keys of the commands reportd's Store sends (the positions of COMMAND INFO).
func commandKeys(cmd redis.Cmder) []string {
	args := cmd.Args()
	str := func(a []any) []string {
		out := make([]string, 0, len(a))
		for _, v := range a {
			out = append(out, fmt.Sprint(v))
		}
		return out
	}
	switch name := cmd.Name(); name {
	case "multi", "exec", "ping", "hello", "client", "publish", "subscribe", "time":
		return nil
	case "eval", "evalsha", "eval_ro", "evalsha_ro":
		n, _ := strconv.Atoi(fmt.Sprint(args[2]))
		return str(args[3 : 3+n])
	case "del", "unlink", "exists", "mget", "touch":
		return str(args[1:])
	default:
		if len(args) < 2 {
			return nil
		}
		return str(args[1:2])
	}
}

func (r *slotRecorder) record(what string, cmds []redis.Cmder) {
	u := recordedUnit{what: what}
	for _, c := range cmds {
		for _, k := range commandKeys(c) {
			u.keys = append(u.keys, k)
			if s := HashSlot(k); !slices.Contains(u.slots, s) {
				u.slots = append(u.slots, s)
			}
		}
	}
	r.mu.Lock()
	r.units = append(r.units, u)
	r.mu.Unlock()
}

func (r *slotRecorder) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *slotRecorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.record(cmd.Name(), []redis.Cmder{cmd})
		return next(ctx, cmd)
	}
}

func (r *slotRecorder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) == 0 || cmds[0].Name() != "multi" {
			// A plain pipeline is commands sent together, each checked alone (a cluster client sends
			// each to its slot's node); only a MULTI must stay in one slot.
			for _, c := range cmds {
				r.record(c.Name(), []redis.Cmder{c})
			}
			return next(ctx, cmds)
		}
		names := make([]string, len(cmds))
		for i, c := range cmds {
			names[i] = c.Name()
		}
		r.record(strings.Join(names, " "), cmds)
		return next(ctx, cmds)
	}
}

// exerciseStore calls every Store method that writes or reads Redis, for one job of one client.
func exerciseStore(t *testing.T, s *Store, id, client string) {
	t.Helper()
	ctx := context.Background()
	check := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	now := time.Now()
	sub := Submission{Fingerprint: "f", JobID: id, CreatedAt: now}
	admit := Admission{Client: client, ID: id, At: now, Keep: time.Hour, PerSecond: 100, Burst: 10, MaxOpen: 10, Key: "key-" + id, Record: sub, KeyTTL: time.Minute}
	check("Admit", func() error { _, err := s.Admit(ctx, admit); return err }())
	check("Admit again", func() error { _, err := s.Admit(ctx, admit); return err }())
	check("Admit at the cap", func() error { a := admit; a.Key, a.MaxOpen = "", 1; _, err := s.Admit(ctx, a); return err }())
	check("MarkEnqueued", s.MarkEnqueued(ctx, client, "key-"+id, sub))
	check("ListJobs", func() error { _, err := s.ListJobs(ctx, client, IndexedJob{}, 10); return err }())
	check("Tombstone", func() error { _, _, err := s.Tombstone(ctx, id); return err }())
	check("CancelRequested", func() error { _, err := s.CancelRequested(ctx, id); return err }())
	check("QueueCounts", func() error { _, _, err := s.QueueCounts(ctx, []string{ReportQueue}); return err }())
	check("RecordEnd attempt", func() error {
		_, err := s.RecordEnd(ctx, EndRecord{ID: id, Client: client, Outcome: "failed", Progress: []byte(`{}`)})
		return err
	}())
	check("RecordEnd done", func() error { _, err := endDone(ctx, s, id, client, []byte(`{}`)); return err }())
	check("Report", func() error { _, err := s.Report(ctx, id); return err }())
	check("RecordDelivery", s.RecordDelivery(ctx, id, Delivery{Attempts: 1, LastStatus: 200, DeliveredAt: now}))
	check("WebhookDelivery", func() error { _, _, err := s.WebhookDelivery(ctx, id); return err }())
	check("MarkFinished", s.MarkFinished(ctx, client, id))
	check("RequestCancel", s.RequestCancel(ctx, id, time.Hour))
	if got, err := endDone(ctx, s, id, client, []byte(`{}`)); err != nil || got != "canceled" {
		t.Fatalf("RecordEnd done after RequestCancel = %q, %v; want canceled", got, err)
	}
	check("RecordEnd canceled before it ran", func() error {
		_, err := s.RecordEnd(ctx, EndRecord{ID: id, Client: client, Outcome: "canceled", Final: true, Canceled: &Canceled{CanceledAt: now, Client: client}})
		return err
	}())
	check("CanceledJob", func() error { _, _, err := s.CanceledJob(ctx, id); return err }())
	check("PublishCancel", s.PublishCancel(ctx, id))
	check("DeleteJob", s.DeleteJob(ctx, id, client, time.Hour))
	check("Unindex", s.Unindex(ctx, client, id, uuid.NewString()))
}

// TestStoreCommandsStayInOneSlot runs every Store method and checks that no command, script or MULTI
// it sends touches keys of two slots: what a Redis Cluster refuses with CROSSSLOT.
func TestStoreCommandsStayInOneSlot(t *testing.T) {
	t.Parallel()
	rdb := redistest.Embedded(t).Client(t)
	rec := &slotRecorder{}
	rdb.AddHook(rec)
	s := NewStore(rdb, testRetention, testTombstone)
	for _, client := range slotTestClients {
		exerciseStore(t, s, uuid.NewString(), client)
	}
	// The recorder itself must see a cross-slot MULTI: one over two jobs' keys.
	ctx := context.Background()
	a, b := uuid.NewString(), uuid.NewString()
	for HashSlot(reportKey(a)) == HashSlot(reportKey(b)) {
		b = uuid.NewString()
	}
	if _, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, reportKey(a))
		p.PExpire(ctx, tombstoneKey(b), time.Minute)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	probe := rec.units[len(rec.units)-1]
	rec.units = rec.units[:len(rec.units)-1]
	if len(probe.slots) != 2 {
		t.Fatalf("the recorder saw %s over %v in slots %v, want 2 slots", probe.what, probe.keys, probe.slots)
	}

	multi := 0
	for _, u := range rec.units {
		if len(u.slots) > 1 {
			t.Errorf("%s touches keys %v in slots %v", u.what, u.keys, u.slots)
		}
		if len(u.keys) > 1 {
			multi++
		}
	}
	// The recorder saw the multi-key units (the scripts, DeleteJob, Unindex, RecordDelivery).
	if multi < 5*len(slotTestClients) {
		t.Errorf("saw %d units of several keys, want at least %d: is the recorder blind?", multi, 5*len(slotTestClients))
	}
}

// TestSlotsOnCluster runs every Store method on a real 3-master Redis Cluster through the cluster client
// reportd builds, and checks the slot computation of these tests against CLUSTER KEYSLOT.
func TestSlotsOnCluster(t *testing.T) {
	t.Parallel()
	c := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3})
	cc := c.Client(t)
	ctx := context.Background()
	id := uuid.NewString()
	for _, k := range []string{reportKey(id), tombstoneKey(id), cancelKey(id), canceledKey(id), webhookKey(id),
		clientJobsKey("acme"), clientOpenKey("acme"), clientRateKey("acme"), idempotencyKey("acme", "k"),
		"asynq:{reports}:pending", "foo{}{bar}", "123456789"} {
		got, err := cc.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			t.Fatalf("CLUSTER KEYSLOT %s: %v", k, err)
		}
		if int(got) != HashSlot(k) {
			t.Errorf("CLUSTER KEYSLOT %s = %d, keySlot = %d", k, got, HashSlot(k))
		}
	}

	rdb, err := NewClient(asynq.RedisClusterClientOpt{Addrs: c.Addrs})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if _, ok := rdb.(*redis.ClusterClient); !ok {
		t.Fatalf("NewClient(RedisClusterClientOpt) = %T, want *redis.ClusterClient", rdb)
	}
	s := NewStore(rdb, testRetention, testTombstone)

	// Pub/sub through the cluster client (the end script publishes): classic PUBLISH is broadcast to every node, so the subscription
	// may be on any node (go-redis picks the channel's slot's master).
	for name, ch := range map[string]struct {
		sub func(context.Context) *Events
		pub func(context.Context, string) error
	}{
		"finished": {s.SubscribeFinished, func(ctx context.Context, id string) error {
			_, err := s.RecordEnd(ctx, EndRecord{ID: id, Client: "acme", Outcome: "done", Final: true})
			return err
		}},
		"cancel": {s.SubscribeCancels, s.PublishCancel},
	} {
		ev := ch.sub(ctx)
		recvCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if got, missed, err := ev.Next(recvCtx); err != nil || got != "" || !missed {
			t.Fatalf("%s: first event = %q, %v, %v; want the subscription's confirmation", name, got, missed, err)
		}
		want := uuid.NewString()
		if err := ch.pub(ctx, want); err != nil {
			t.Fatalf("%s: publish: %v", name, err)
		}
		got, _, err := ev.Next(recvCtx)
		cancel()
		_ = ev.Close()
		if err != nil || got != want {
			t.Errorf("%s: event = %q, %v; want %q", name, got, err, want)
		}
	}

	// Jobs of many ids land on all three masters.
	for i := range 30 {
		exerciseStore(t, s, uuid.NewString(), slotTestClients[i%len(slotTestClients)])
	}

	// And what a cross-slot MULTI would meet, for contrast: the convention is what makes the above work.
	a, b := uuid.NewString(), uuid.NewString()
	for HashSlot(reportKey(a)) == HashSlot(reportKey(b)) {
		b = uuid.NewString()
	}
	_, err = rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, reportKey(a), reportKey(b))
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Errorf("a MULTI over two jobs' keys = %v, want CROSSSLOT", err)
	}
}

// TestQueuesReachable checks that a queue's probe reads in the slot of asynq's keys of the queue,
// answers nil while Redis answers, and an error when it does not.
func TestQueuesReachable(t *testing.T) {
	t.Parallel()
	shards, _ := NewShards(3)
	queues := append(shards.Queues(), ReportQueue)
	for _, q := range queues {
		if got, want := HashSlot(QueueProbe(q)), HashSlot(asynqPendingKey(q)); got != want {
			t.Errorf("QueueProbe(%s) is in slot %d, asynq's queue in slot %d", q, got, want)
		}
	}
	b := redistest.Embedded(t)
	rdb := redis.NewClient(&redis.Options{Addr: b.Addr, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	s := NewStore(rdb, time.Hour, time.Hour)
	ctx := context.Background()
	if err := s.QueuesReachable(ctx, queues); err != nil {
		t.Fatalf("QueuesReachable with Redis up: %v", err)
	}
	_ = rdb.Close()
	if err := s.QueuesReachable(ctx, queues); err == nil {
		t.Error("QueuesReachable on a closed client: nil, want an error")
	}
}
