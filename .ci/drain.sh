#!/usr/bin/env bash
# The drain benchmark: the `reportd worker` binary as it ships, beside ../shared/baselines' asynq-drain
# (one asynq server, each task writing its result once) and bullmq-drain (one BullMQ worker, each job
# writing its progress once), each draining the same number of one-day jobs at the same concurrency on
# one redis-server, round after round (reportd, asynq-drain, bullmq-drain); it prints each drain's
# jobs/s and the median and range of reportd's ratios to the two. Needs redis-server, Go and npm.
#
#   bash .ci/drain.sh [JOBS] [CONCURRENCY] [ROUNDS]     # defaults 20000 32 9: 2-3 minutes on 2 idle cores
#
# Each drain starts on a flushed redis-server with all JOBS queued and no worker running:
#   - reportd: a `reportd api` takes JOBS POSTs of a one-day range (drainbench submit, the API clients
#     use) and stops; then the `reportd worker` binary starts, its JSON log going to a file, as in
#     production (so through its batched file writer). Both run with REPORTD_CONCURRENCY=CONCURRENCY,
#     REPORTD_ROWS_PER_DAY=1000 (a one-day report is then a small job, as the baselines' are) and
#     REPORTD_RETENTION=1h (asynq-drain's); the rest is reportd's defaults, so a 20 ms check interval,
#     asynq-drain's too. After the drain the worker is stopped (SIGINT) and its log must hold exactly
#     JOBS "report done" lines, one per job, and no error.
#   - asynq-drain and bullmq-drain, unchanged (built and installed in copies: shared/ is read-only), each
#     enqueue with their own client (asynq's Enqueue one task at a time; BullMQ's addBulk, 1,000 at a
#     time) before they start their worker in the same process.
# One timer for all three: drainbench watch polls the queue's pending and active lists and completed set
# on one Redis connection every millisecond, from before the worker starts (every worker is held at a
# gate until the watch's first poll is answered), and times from the first pickup (the first poll that
# sees a job taken) to the last completion (the first that sees all JOBS completed). The baselines' own
# figures (timed from their worker's start) are printed beside it, not used. Compare ratios within one
# run; the figures move with whatever else the machine runs.
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
jobs=${1:-20000}
conc=${2:-32}
rounds=${3:-9}
baselines=${BASELINES:-../shared/baselines}
[ -d "$baselines" ] || { echo "drain.sh: no baselines at $baselines (set BASELINES)" >&2; exit 1; }

tmp=$(mktemp -d)
# At exit, stop what this script started and is still running (its background jobs: redis-server, and a
# drain's processes if it failed midway), then remove the temporary directory.
cleanup() {
	local running
	running=$(jobs -pr)
	[ -z "$running" ] || kill $running 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "building reportd, drainbench and asynq-drain; installing bullmq-drain's pinned packages"
go build -o "$tmp/reportd" ./cmd/reportd
go build -o "$tmp/drainbench" ./internal/cmd/drainbench
cp -r "$baselines/asynq-drain" "$tmp/asynq-drain" && chmod -R u+w "$tmp/asynq-drain"
cp -r "$baselines/bullmq-drain" "$tmp/bullmq-drain" && chmod -R u+w "$tmp/bullmq-drain"
(cd "$tmp/asynq-drain" && go build -o "$tmp/asynq-drain-bin" .)
(cd "$tmp/bullmq-drain" && npm ci --silent --no-audit --no-fund >/dev/null)

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis="127.0.0.1:$port"

export REDIS_URL="redis://$redis" REPORTD_CONCURRENCY="$conc" REPORTD_ROWS_PER_DAY=1000 \
	REPORTD_RETENTION=1h REPORTD_ADMIN_TOKEN=drain-benchmark-admin-token

flush() { redis-cli -p "$port" flushall >/dev/null; }

# Every worker starts held at a gate (a fifo), so that the watch is polling before anything can take a
# job: gated DIR CMD... starts CMD in DIR in the background, held until release; gated_pid is the pid CMD
# runs as (the baselines name their queue for it).
mkfifo "$tmp/gate"
gated() {
	local dir=$1
	shift
	(cd "$dir" && read -r _ <"$tmp/gate" && exec "$@") &
	gated_pid=$!
}

# watch_then_release KEYPREFIX PENDING: drainbench watch on one queue's keys, in the background; once
# its first poll is answered, the gate opens. Sets watch_pid.
watch_then_release() {
	rm -f "$tmp/watching"
	"$tmp/drainbench" watch -redis "$redis" -n "$jobs" -pending "$1:$2" -active "$1:active" -completed "$1:completed" \
		-ready "$tmp/watching" >"$tmp/watch.txt" &
	watch_pid=$!
	until [ -e "$tmp/watching" ]; do
		kill -0 "$watch_pid" 2>/dev/null || { wait "$watch_pid"; exit 1; }
		sleep 0.01
	done
	# (a bounded wait: should the held process have died, nothing reads the gate)
	timeout 10 bash -c 'echo go >"$1"' _ "$tmp/gate" || { echo "drain.sh: the worker held at the gate is gone" >&2; exit 1; }
}
rate() { sed -n 's/.* = \([0-9]*\) jobs\/s.*/\1/p' "$tmp/watch.txt"; }

# stop_proc PID: SIGINT, and wait for it to exit.
stop_proc() { kill -INT "$1" && wait "$1"; }

reportd_drain() {
	flush
	REPORTD_ADDR=127.0.0.1:0 "$tmp/reportd" api 2>"$tmp/api.log" &
	local api=$! addr
	addr=$(listening_addr "$tmp/api.log" "drain.sh: reportd api")
	local submitted
	submitted=$("$tmp/drainbench" submit -server "http://$addr" -n "$jobs" -c "$conc")
	echo "  reportd api:    $submitted"
	stop_proc "$api"
	gated . "$tmp/reportd" worker 2>"$tmp/worker.log"
	local worker=$gated_pid
	watch_then_release 'asynq:{reports}' pending
	wait "$watch_pid"
	stop_proc "$worker"
	local done errors
	done=$(grep '"msg":"report done"' "$tmp/worker.log" | grep -o '"job":"[^"]*"' | sort -u | wc -l)
	errors=$(grep -c '"level":"ERROR"' "$tmp/worker.log" || true)
	if [ "$done" -ne "$jobs" ] || [ "$(grep -c '"msg":"report done"' "$tmp/worker.log")" -ne "$jobs" ] || [ "$errors" -ne 0 ]; then
		echo "drain.sh: the worker's log has $done distinct jobs done (want $jobs, once each) and $errors errors" >&2
		exit 1
	fi
	echo "  reportd worker: $(tail -n1 "$tmp/watch.txt")"
}

asynq_drain() {
	flush
	gated . "$tmp/asynq-drain-bin" -redis "$redis" -n "$jobs" -c "$conc" >"$tmp/own.txt"
	local p=$gated_pid
	watch_then_release "asynq:{drain-baseline-$p}" pending # its queue is named for its pid
	wait "$watch_pid"
	wait "$p"
	echo "  asynq-drain:    $(tail -n1 "$tmp/watch.txt") [its own: $(cat "$tmp/own.txt")]"
}

bullmq_drain() {
	flush
	gated "$tmp/bullmq-drain" node drain.mjs --redis "$redis" --n "$jobs" --c "$conc" >"$tmp/own.txt"
	local p=$gated_pid
	watch_then_release "bull:drain-baseline-$p" wait # its queue is named for its pid
	wait "$watch_pid"
	wait "$p"
	echo "  bullmq-drain:   $(tail -n1 "$tmp/watch.txt") [its own: $(cat "$tmp/own.txt")]"
}

echo "$rounds rounds of $jobs one-day jobs at concurrency $conc on redis-server $(redis-server --version | grep -o 'v=[^ ]*')"
results=()
for round in $(seq "$rounds"); do
	echo "round $round ($SECONDS s since the start)"
	reportd_drain
	r=$(rate)
	asynq_drain
	a=$(rate)
	bullmq_drain
	b=$(rate)
	results+=("$r $a $b")
done

echo "$rounds rounds in $SECONDS s, the build included"
printf '%s\n' "${results[@]}" | python3 -c '
import statistics, sys
rows = [[int(x) for x in line.split()] for line in sys.stdin]
print("round  reportd  asynq-drain  bullmq-drain  reportd/asynq  reportd/bullmq")
for i, (r, a, b) in enumerate(rows, 1):
    print(f"{i:5}  {r:7}  {a:11}  {b:12}  {r/a:12.2f}x  {r/b:13.2f}x")
for name, col in (("reportd", 0), ("asynq-drain", 1), ("bullmq-drain", 2)):
    v = [row[col] for row in rows]
    print(f"{name}: median {statistics.median(v):.0f} jobs/s, range {min(v)}-{max(v)}")
for name, col in (("asynq-drain", 1), ("bullmq-drain", 2)):
    v = [row[0] / row[col] for row in rows]
    print(f"reportd / {name}: median {statistics.median(v):.2f}x, range {min(v):.2f}-{max(v):.2f}x over {len(v)} rounds")
'
