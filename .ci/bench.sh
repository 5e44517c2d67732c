#!/usr/bin/env bash
# Every performance figure in docs/performance.md (and the README's Performance section), in one run (a few minutes on 2 cores;
# needs redis-server on PATH): the report loop beside its PRNG floor, the API on redis-server beside a
# bare-HGET floor (status reads, POST accepts, each also with every request traced, pickup latency), the
# 10,000-job load run, report queue shards on a capped cluster and on one redis-server, and reportd's
# memory with 1,000 and 100,000 jobs queued, and the drain of one worker beside the asynq and BullMQ
# baselines (../shared/baselines). Compare ratios within the run, not figures across runs.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
echo "=== the report loop beside its floor"
go test ./internal/report -run '^$' -bench 'Summarize|PRNGFloor' -benchtime 3x -count 5
echo "=== the API on redis-server beside its floor"
go test ./impl -run '^$' -bench 'Status|Floor|Create|Pickup' -benchtime 3000x -count 1
echo "=== Redis round trips: a POST, a status read, a short job's run"
REPORTD_REQUIRE_REDIS=1 go test ./internal/jobs -run '^TestRedisBudget$' -count=1 -v | grep -E 'PASS|FAIL|round trips'
echo "=== drain: one reportd worker beside asynq alone and BullMQ, on one redis-server"
bash .ci/drain.sh
echo "=== load"
bash .ci/load.sh 10000 64
echo "=== report queue shards: a 3-master cluster with capped masters (as root; skipped otherwise), and 16 shards vs 1"
REPORTD_MEASURE=1 go test ./cmd/reportd -run TestShardScaling -count=1 -v | grep -E '^(cluster|single|one)|SKIP|ok|FAIL'
echo "=== memory with the queue"
REPORTD_MEASURE=1 go test ./internal/faults -run TestMemoryFlatWithQueuedJobs -count=1 -v | grep -E 'RSS|ok|FAIL'
echo "=== two workers against one"
REPORTD_MEASURE=1 go test ./internal/faults -run TestTwoAPIsTwoWorkers -count=1 -v | grep -E 'jobs/s|throughput|ok|FAIL'
