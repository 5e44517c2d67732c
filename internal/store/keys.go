package store

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/redis/go-redis/v9"
)

// This file names every Redis key, channel and script reportd uses, with the owner that writes it and
// how long it lives, so that the whole key space (and which keys share a Redis Cluster hash slot) reads
// in one place. Keys written together by one command or script share a hash tag: {id} for a job's
// keys, {client} for a client's, {queue} for asynq's.

// asynq's own keys. asynq keeps each queue under "asynq:{queue}:..." (pending and active lists, the
// task hashes with their results, retry, archived and completed sets), plus "asynq:queues" and its
// servers' and workers' records; asynq owns them all and reportd never writes them directly.
const (
	// ReportQueue is the asynq queue of report jobs when there is one shard, and of every job whose id
	// names no shard (QueueOf). A job's id is its task id in its queue, and the task lives as long as
	// asynq keeps it: until it is completed plus its retention, or archived.
	ReportQueue = "reports"
	// WebhookQueue is the asynq queue of webhook deliveries; a delivery's task id is derived from its
	// job's id, and it is kept for the retention once delivered.
	WebhookQueue = "webhooks"
)

// The report queue's shards (one, ReportQueue, by default), their names and QueueProbe are in
// shards.go.

// asynq keys reportd touches itself, by asynq v0.26.0's layout (internal/base): the hash of a task,
// whose "result" field the worker's end of an attempt writes, in the same round trip as the job's own
// keys, exactly as asynq's ResultWriter would; and the lists of pending and active tasks, whose lengths
// the API reads, once a second off the request path, for its Retry-After estimate (asynq's
// GetQueueInfo would also sample the memory of the queue's keys).
func asynqTaskKey(queue, id string) string { return "asynq:{" + queue + "}:t:" + id }
func asynqPendingKey(queue string) string  { return "asynq:{" + queue + "}:pending" }
func asynqActiveKey(queue string) string   { return "asynq:{" + queue + "}:active" }

// asynqQueuesKey is asynq's set of the queues it knows, which asynq adds a queue to at its first
// enqueue. reportd adds its report queue shards at start, so that the asynq web UI and the queue metrics
// list every shard before its first job; asynq's Inspector checks it before every task lookup, which
// reportd's client answers from a cache (CacheQueueChecks).
const asynqQueuesKey = "asynq:queues"

// tombstoneKey records that a job id was issued, and to which client, once the job has ended, with the
// job's end record (Tombstone). Owner: whoever ends the job (endScript: the worker's last attempt, the
// API's cancel of a pending job) and the API's delete. Lifetime: until the tombstone period after the
// job stops being readable (EndRecord.ExpiresAt), counted from its end, and kept so by a delete, so
// that an expired id answers 410 Gone rather than 404 Not Found, which asynq alone cannot tell apart,
// and 404 from then on. An unfinished job needs none: asynq has its task.
func tombstoneKey(id string) string { return "reportd:{" + id + "}:tomb" }

// reportKey holds a finished report's JSON, apart from the task's result, which asynq returns whole
// on every status read, so that a status poll stays one cheap lookup. A line before the JSON names the
// job's owner and when it stops being readable (appendReportHeader), so that a result read needs
// nothing else. Owner: the worker's end (endScript). Lifetime: the retention plus resultSlack.
func reportKey(id string) string { return "reportd:{" + id + "}:report" }

// cancelKey is the marker that a cancel of the job was asked for. The job's attempt checks it, so a
// cancel holds even when the cancel message is lost or the job had not started yet. Owner: the API's
// cancel. Lifetime: the job's longest possible life.
func cancelKey(id string) string { return "reportd:{" + id + "}:cancel" }

// canceledKey holds the record of a job canceled before it ran (asynq then has no task for it), which
// shows as canceled for the retention. Owner: the API's cancel (endScript). Lifetime: the retention.
func canceledKey(id string) string { return "reportd:{" + id + "}:canceled" }

// webhookKey is the hash recording a job's latest webhook delivery attempt. Owner: the webhook worker.
// Lifetime: the retention plus resultSlack.
func webhookKey(id string) string { return "reportd:{" + id + "}:webhook" }

// idempotencyKey holds the record (a Submission) of a client's Idempotency-Key, in the client's slot so
// that the submit's one script claims it with the client's limits and index. The key is hashed, so
// that any bytes a client sends make a safe, bounded Redis key. Owner: the API's submit (admitScript).
// Lifetime: as long as its job can be readable.
func idempotencyKey(client, key string) string {
	sum := sha256.Sum256([]byte(key))
	return "reportd:client:{" + client + "}:idem:" + hex.EncodeToString(sum[:])
}

// clientJobsKey is a client's index of its jobs: a sorted set of job ids scored by creation time in
// microseconds, for listing newest first without scanning the queue. Owner: the API (submit adds and
// trims in admitScript, list and delete drop). Lifetime: no TTL; entries older than a job can be readable are trimmed
// on every submit.
func clientJobsKey(client string) string { return "reportd:client:{" + client + "}:jobs" }

// clientOpenKey is the set of a client's unfinished jobs, for its cap. Owner: the API adds on submit
// (admitScript); whoever ends the job (the worker, or the API's cancel of a pending job) removes. Lifetime: no TTL;
// the API drops members that are finished or gone when the set reaches the cap.
func clientOpenKey(client string) string { return "reportd:client:{" + client + "}:open" }

// clientRateKey holds a client's rate limiter state (admitScript). Owner: the API's submit. Lifetime:
// until the limiter's theoretical arrival time has passed, plus a second.
func clientRateKey(client string) string { return "reportd:client:{" + client + "}:rate" }

// resultSlack is how much longer a report's key (and a webhook's record) lives than its job is
// readable. Whether a job is readable is judged from the instant recorded with it (the report's
// header, the task's completion), never from a key's TTL, so the slack changes no answer: it only
// keeps the report there for an API process whose clock runs behind the worker's. The tombstone has
// none: its TTL is when the id starts answering 404.
const resultSlack = time.Minute

// Pub/sub channels: nothing is stored, and a message reaches only the subscribers of the moment.
const (
	// eventsChannel carries the ids of jobs that reached a terminal status (done, failed, canceled).
	// Published by whoever finishes a job; API processes subscribe once each and wake their waiting
	// requests.
	eventsChannel = "reportd:events"
	// cancelChannel carries the ids of jobs the API asks workers to stop. asynq's own CancelProcessing
	// cannot be used for that: it cancels the handler's context, and asynq then records the context's
	// error and retries the task, whatever the handler returns (asynq v0.26.0, processor.go: the select
	// on ctx.Done() wins over the handler's result).
	cancelChannel = "reportd:cancel"
	// progressChannel carries a running job's progress each time its worker writes it: the job's id, a
	// space, and the progress JSON it wrote as the task's result. Published by the worker in the same
	// round trip as that write; API processes subscribe once each and feed their event streams, so a
	// stream costs Redis nothing per progress tick.
	progressChannel = "reportd:progress"
)

// admitScript is a submit's one round trip of reportd's own, in the client's slot. In order: an
// Idempotency-Key already held answers with its record ({"held", record}); the client's rate limit, a
// generic cell rate algorithm (GCRA) whose one key holds the theoretical arrival time in microseconds
// on Redis's clock, so that every API process agrees, refuses with the wait ({"rate", µs}); the cap on
// unfinished jobs refuses with their ids ({"full", ids...}), for the API to check them and try again
// without the rate limit; otherwise the key is claimed, the job indexed (trimming entries too old to be
// readable) and counted as unfinished ({"ok"}). With a rate limit, every answer then carries where the
// client stands after it, in its second and third elements: how many submissions it may make at once,
// and in how many µs it may make a whole burst again (a held key's answer consumes nothing); both are ""
// without one.
// KEYS: clientJobsKey, clientOpenKey, clientRateKey, idempotencyKey (ignored without a key).
// ARGV: job id, its index score, the oldest score to keep, the rate interval in µs (0: no limit),
// the burst, the cap (0: none), the key's record ("" without a key), its TTL in ms.
var admitScript = redis.NewScript(`
local interval = tonumber(ARGV[4])
local burst = tonumber(ARGV[5])
local now, tat = 0, 0
if interval > 0 then
  local t = redis.call("TIME")
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  tat = tonumber(redis.call("GET", KEYS[3]) or now)
  if tat < now then tat = now end
end
local function answer(kind, rest)
  local out = {kind, "", ""}
  if interval > 0 then
    out[2] = tostring(math.max(0, math.min(burst, math.floor((now + interval * burst - tat) / interval))))
    out[3] = tostring(tat - now)
  end
  for _, v in ipairs(rest or {}) do table.insert(out, v) end
  return out
end
if ARGV[7] ~= "" then
  local held = redis.call("GET", KEYS[4])
  if held then return answer("held", {held}) end
end
if interval > 0 then
  local allow_at = tat - interval * (burst - 1)
  if now < allow_at then return answer("rate", {tostring(allow_at - now)}) end
  tat = tat + interval
  redis.call("SET", KEYS[3], tat, "PX", math.ceil((tat - now) / 1000) + 1000)
end
local cap = tonumber(ARGV[6])
if cap > 0 and redis.call("SCARD", KEYS[2]) >= cap then
  return answer("full", redis.call("SMEMBERS", KEYS[2]))
end
if ARGV[7] ~= "" then redis.call("SET", KEYS[4], ARGV[7], "PX", ARGV[8]) end
redis.call("ZADD", KEYS[1], ARGV[2], ARGV[1])
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", "(" .. ARGV[3])
redis.call("SADD", KEYS[2], ARGV[1])
return answer("ok")`)

// endScript records a job's end in its slot: a done job's report is stored unless a cancel was asked
// for (then the job ends canceled, and no report is ever stored), a job canceled before it ran gets its
// record, the tombstone is written, and the end is published on eventsChannel. It returns the outcome
// recorded. The tombstone holds the job's end record (the outcome recorded and the last attempt's
// progress, parseTombstone) before the end is published, so that whoever the event wakes finds it.
// KEYS: reportKey, tombstoneKey, cancelKey, canceledKey (one job, one slot). ARGV: the outcome, the
// report (done) or the canceled record (canceled before it ran) or "", the owner, the report's and the
// record's TTL in ms, the tombstone's TTL in ms, eventsChannel, the job id, endRecordTag, the progress
// ("": a tombstone of the owner alone).
var endScript = redis.NewScript(`
local outcome = ARGV[1]
if outcome == "done" then
  if redis.call("EXISTS", KEYS[3]) == 1 then
    outcome = "canceled"
  else
    redis.call("SET", KEYS[1], ARGV[2], "PX", ARGV[4])
  end
elseif outcome == "canceled" and ARGV[2] ~= "" then
  redis.call("SET", KEYS[4], ARGV[2], "PX", ARGV[4])
end
local tomb = ARGV[3]
if ARGV[9] ~= "" then
  tomb = ARGV[8] .. outcome .. " " .. string.len(ARGV[3]) .. " " .. ARGV[3] .. "\n" .. ARGV[9]
end
redis.call("SET", KEYS[2], tomb, "PX", ARGV[5])
redis.call("PUBLISH", ARGV[6], ARGV[7])
return outcome`)
