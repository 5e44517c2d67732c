package tasks

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Queue is the asynq queue every report job runs on. A job's id is its asynq task id in this queue.
const Queue = "reports"

// QueueProbeKey is a key that is never written, in the hash slot of asynq's keys of Queue: reading it
// tells whether the Redis node that holds the queue answers.
const QueueProbeKey = "asynq:{" + Queue + "}:probe"

// HeaderCreatedAt is the task header that carries when the job was accepted (RFC 3339, UTC), because
// asynq's TaskInfo has no creation time.
const HeaderCreatedAt = "reportd-created-at"

// reportKey names the key that holds a finished report's JSON. It is kept apart from the task's result,
// which asynq returns whole on every status read, so that a status poll stays one cheap lookup.
// The {id} hash tag keeps a job's keys in one Redis Cluster slot, so they can be written together.
func reportKey(id string) string { return "reportd:{" + id + "}:report" }

// tombstoneKey names the key that records that a job id was issued. It outlives the job, so that an
// expired id answers 410 Gone rather than 404 Not Found, which asynq alone cannot tell apart.
func tombstoneKey(id string) string { return "reportd:{" + id + "}:tomb" }

// cancelKey names the marker that a cancel of the job was asked for. The job's attempt checks it, so a
// cancel holds even when asynq's cancel message is lost or the job had not started yet.
func cancelKey(id string) string { return "reportd:{" + id + "}:cancel" }

// canceledKey names the record of a canceled job, which shows as canceled for the retention period.
func canceledKey(id string) string { return "reportd:{" + id + "}:canceled" }

// idempotencyKey names the record of a client's Idempotency-Key: the key is hashed, so that any bytes
// a client sends make a safe, bounded Redis key.
func idempotencyKey(client, key string) string {
	sum := sha256.Sum256([]byte(key))
	return "reportd:idem:" + client + ":" + hex.EncodeToString(sum[:])
}

// resultSlack is how much longer a report's key lives than the task's retention, so that the report is
// never gone while asynq still shows its task as completed (asynq's janitor runs every few seconds).
const resultSlack = time.Minute
