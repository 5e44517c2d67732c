#!/usr/bin/env bash
# The drain benchmark: one reportd worker against ../shared/baselines' asynq-drain (asynq alone, each
# task writing its result once) and bullmq-drain (one BullMQ worker, each job writing its progress once),
# each draining the same number of one-day jobs at the same concurrency, on one redis-server, in one
# run; it prints each figure and reportd's ratios to the two baselines. Needs redis-server, Go and npm.
#
#   bash .ci/drain.sh [JOBS] [CONCURRENCY] [ROUNDS]     # defaults 10000 32 1
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
jobs=${1:-10000}
conc=${2:-32}
rounds=${3:-1}
baselines=${BASELINES:-../shared/baselines}
[ -d "$baselines" ] || { echo "drain.sh: no baselines at $baselines (set BASELINES)" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

# shared/ is read-only: build and install in copies.
cp -r "$baselines/asynq-drain" "$tmp/asynq-drain" && chmod -R u+w "$tmp/asynq-drain"
cp -r "$baselines/bullmq-drain" "$tmp/bullmq-drain" && chmod -R u+w "$tmp/bullmq-drain"
(cd "$tmp/asynq-drain" && go build -o "$tmp/asynq-drain-bin" .)
(cd "$tmp/bullmq-drain" && npm ci --silent --no-audit --no-fund >/dev/null)
go test -c -o "$tmp/reportd-drain.test" ./cmd/reportd

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done

rate() { sed -n 's/.* = \([0-9]*\) jobs\/s.*/\1/p'; }
for round in $(seq "$rounds"); do
	a=$("$tmp/asynq-drain-bin" -redis "127.0.0.1:$port" -n "$jobs" -c "$conc")
	echo "$a"
	b=$(cd "$tmp/bullmq-drain" && node drain.mjs --redis "127.0.0.1:$port" --n "$jobs" --c "$conc")
	echo "$b"
	r=$(REPORTD_MEASURE=1 REPORTD_DRAIN_REDIS="127.0.0.1:$port" REPORTD_DRAIN_JOBS="$jobs" REPORTD_DRAIN_CONCURRENCY="$conc" \
		"$tmp/reportd-drain.test" -test.run '^TestDrain$' -test.count=1 | grep '^reportd drain')
	echo "$r"
	ra=$(echo "$a" | rate) rb=$(echo "$b" | rate) rr=$(echo "$r" | rate)
	python3 -c "print(f'round $round: reportd {$rr} jobs/s = {$rr/$ra:.2f}x asynq-drain ({$ra}), {$rr/$rb:.2f}x bullmq-drain ({$rb})')"
done
