#!/usr/bin/env bash
# The load run: reportctl bench submits JOBS jobs at CONCURRENCY against one all-in-one reportd on a real
# redis-server and follows each to its result. It fails unless every accepted job reached done (lost 0),
# no job was computed to completion twice (each id has exactly one "report done" log line), and reportd
# answered no 5xx and logged no error.
#
#   bash .ci/load.sh [JOBS] [CONCURRENCY]      # defaults 10000 64; needs redis-server on PATH
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
jobs=${1:-10000}
conc=${2:-64}

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/reportd" ./cmd/reportd
go build -o "$tmp/reportctl" ./cmd/reportctl

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done

REDIS_URL="redis://127.0.0.1:$port" REPORTD_ADDR=127.0.0.1:0 REPORTD_ROWS_PER_DAY=2000 \
	REPORTD_RATE_LIMIT=0 REPORTD_MAX_OPEN_JOBS=0 REPORTD_CONCURRENCY=8 \
	"$tmp/reportd" 2>"$tmp/reportd.log" &
reportd_pid=$!
pids+=($reportd_pid)
addr=$(listening_addr "$tmp/reportd.log" "load.sh: reportd")

"$tmp/reportctl" --server "http://$addr" --timeout 20m bench -n "$jobs" -c "$conc" --range 2026-01-01..2026-01-07 | tee "$tmp/bench.txt"

# Stop reportd before reading its log: to a file it writes lines in batches, the last within 50 ms, and
# writes what it holds as it stops.
kill -INT "$reportd_pid"
wait "$reportd_pid" || true
done_lines=$(grep -c '"msg":"report done"' "$tmp/reportd.log" || true)
distinct=$(grep '"msg":"report done"' "$tmp/reportd.log" | grep -o '"job":"[^"]*"' | sort -u | wc -l)
errors=$(grep -c '"level":"ERROR"' "$tmp/reportd.log" || true)
fivexx=$(grep -c '"status":5[0-9][0-9]' "$tmp/reportd.log" || true)
echo "load.sh: $done_lines completions of $distinct distinct jobs (want $jobs and $jobs), $errors errors logged, $fivexx 5xx logged"
fail=0
grep -q '^lost: 0$' "$tmp/bench.txt" || { echo "load.sh: jobs were lost" >&2; fail=1; }
[ "$done_lines" -eq "$jobs" ] && [ "$distinct" -eq "$jobs" ] || { echo "load.sh: completions do not match jobs one to one" >&2; fail=1; }
[ "$errors" -eq 0 ] && [ "$fivexx" -eq 0 ] || { echo "load.sh: reportd logged errors or 5xx" >&2; grep '"level":"ERROR"' "$tmp/reportd.log" | head -5 >&2; fail=1; }
if [ "$fail" -ne 0 ]; then
	echo "0 passed, 1 failed"
	exit 1
fi
echo "load: 1 passed, 0 failed"
