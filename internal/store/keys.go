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
	// ReportQueue is the asynq queue of report jobs. A job's id is its task id in this queue, and the
	// task lives as long as asynq keeps it: until it is completed plus its retention, or archived.
	ReportQueue = "reports"
	// WebhookQueue is the asynq queue of webhook deliveries; a delivery's task id is derived from its
	// job's id, and it is kept for the retention once delivered.
	WebhookQueue = "webhooks"
	// QueueProbeKey is never written: it is in the hash slot of asynq's keys of ReportQueue, so reading
	// it tells whether the Redis node that holds the queue answers (a PING would be answered by any
	// node of a Cluster). Owner: readiness and the worker's end of an attempt; lifetime: none.
	QueueProbeKey = "asynq:{" + ReportQueue + "}:probe"
)

// tombstoneKey records that a job id was issued, and to which client. Owner: the API's submit, and
// every step that ends a job's readable life (save, forget). Lifetime: the job's longest possible
// life, then its retention, then the tombstone period, so that an expired id answers 410 Gone rather
// than 404 Not Found, which asynq alone cannot tell apart.
func tombstoneKey(id string) string { return "reportd:{" + id + "}:tomb" }

// reportKey holds a finished report's JSON, apart from the task's result, which asynq returns whole
// on every status read, so that a status poll stays one cheap lookup. Owner: the worker's save.
// Lifetime: the retention plus resultSlack.
func reportKey(id string) string { return "reportd:{" + id + "}:report" }

// cancelKey is the marker that a cancel of the job was asked for. The job's attempt checks it, so a
// cancel holds even when the cancel message is lost or the job had not started yet. Owner: the API's
// cancel. Lifetime: the job's longest possible life.
func cancelKey(id string) string { return "reportd:{" + id + "}:cancel" }

// canceledKey holds the record of a job canceled before it ran (asynq then has no task for it), which
// shows as canceled for the retention. Owner: the API's cancel. Lifetime: the retention.
func canceledKey(id string) string { return "reportd:{" + id + "}:canceled" }

// webhookKey is the hash recording a job's latest webhook delivery attempt. Owner: the webhook worker.
// Lifetime: the retention plus resultSlack.
func webhookKey(id string) string { return "reportd:{" + id + "}:webhook" }

// idempotencyKey holds the record (a Submission) of a client's Idempotency-Key. The key is hashed, so
// that any bytes a client sends make a safe, bounded Redis key. Owner: the API's submit. Lifetime: as
// long as its job can be readable.
func idempotencyKey(client, key string) string {
	sum := sha256.Sum256([]byte(key))
	return "reportd:idem:" + client + ":" + hex.EncodeToString(sum[:])
}

// clientJobsKey is a client's index of its jobs: a sorted set of job ids scored by creation time in
// microseconds, for listing newest first without scanning the queue. Owner: the API (submit adds and
// trims, list and delete drop). Lifetime: no TTL; entries older than a job can be readable are trimmed
// on every submit.
func clientJobsKey(client string) string { return "reportd:client:{" + client + "}:jobs" }

// clientOpenKey is the set of a client's unfinished jobs, for its cap. Owner: the API adds on submit;
// whoever finishes the job (the worker, or the API's cancel of a pending job) removes. Lifetime: no TTL;
// the API drops members that are finished or gone when the set reaches the cap.
func clientOpenKey(client string) string { return "reportd:client:{" + client + "}:open" }

// clientRateKey holds a client's rate limiter state (rateScript). Owner: the API's submit. Lifetime:
// until the limiter's theoretical arrival time has passed, plus a second.
func clientRateKey(client string) string { return "reportd:client:{" + client + "}:rate" }

// resultSlack is how much longer a report's key lives than the task's retention, so that the report is
// never gone while asynq still shows its task as completed (asynq's janitor runs every few seconds).
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
)

// saveReportScript stores a report unless a cancel was asked for, in one step, so that a job canceled
// while it finishes never has a report, and restarts the tombstone. KEYS: reportKey, tombstoneKey,
// cancelKey (one job, one slot). Run by the worker.
var saveReportScript = redis.NewScript(`
if redis.call("EXISTS", KEYS[3]) == 1 then return 0 end
redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
redis.call("PEXPIRE", KEYS[2], ARGV[3])
return 1`)

// rateScript is a generic cell rate algorithm (GCRA) limiter: one key holding the theoretical arrival
// time, in microseconds; a request is allowed when it is not earlier than that time minus the burst.
// It returns {allowed, microseconds to wait}. The clock is Redis's, so every API process agrees.
// KEYS: clientRateKey. Run by the API's submit.
var rateScript = redis.NewScript(`
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call("GET", KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat - interval * (burst - 1)
if now < allow_at then return {0, allow_at - now} end
local new_tat = tat + interval
redis.call("SET", KEYS[1], new_tat, "PX", math.ceil((new_tat - now) / 1000) + 1000)
return {1, 0}`)
