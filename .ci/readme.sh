#!/usr/bin/env bash
# CI check: the README's examples run as written, on the embedded default, in the order a new user meets
# them. It starts the service with the README's first command (`go run ./cmd/reportd`, so port 8080 must
# be free), then runs every ```sh block of the user's part of the README (everything before
# "## Running it") as it stands, with only the placeholders filled in:
#
#   6f1c...  the id of a job that is done (the walk-through's elided id)
#   ID       in a line that cancels or deletes, a job that is still running (its block cancels it
#            first, then deletes it); in any other line, a job that is done
#
# Each block must exit 0 and print what it promises (the checks below). Then the split deployment of
# "## Running it" (`reportd api` and `reportd worker` on REDIS_URL) runs against a redis-server started
# here on port 6379, and a job goes through it.
#
# Not run here, on purpose: the blocks after "Running it" are benchmarks and development commands
# (`.ci/bench.sh`, `.ci/drain.sh`, `go test ...`), which CI runs in other forms or which take minutes.
#
#   bash .ci/readme.sh          # from anywhere; needs Go, curl and redis-server
set -euo pipefail
export GOTOOLCHAIN=go1.27.3
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

tmp=$(mktemp -d)
pids=()
created=() # files the README's commands write into the repo, removed at the end
for f in jan.csv out.csv; do [ -e "$f" ] || created+=("$f"); done
cleanup() {
	local rc=$?
	for pid in "${pids[@]}"; do
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL -- "-$pid" 2>/dev/null || true
	done
	if [ "$rc" != 0 ]; then
		for log in "$tmp"/*.log; do
			[ -e "$log" ] || continue
			echo "--- $(basename "$log") ---" >&2
			tail -n 40 "$log" >&2
		done
	fi
	for f in "${created[@]}"; do rm -f "$f"; done
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step() { printf '\n--- readme: %s (%ss)\n' "$*" "$SECONDS"; }
fail() {
	echo "readme: $*" >&2
	exit 1
}

# start NAME CMD...: runs CMD in its own process group (so that `go run` and the binary it starts stop
# together), logging to $tmp/NAME.log.
start() {
	local name=$1
	shift
	setsid "$@" >"$tmp/$name.log" 2>&1 &
	pids+=($!)
}

# await_listening LOG: waits until the log has a "listening" line.
await_listening() {
	for _ in $(seq 1 600); do
		grep -q '"msg":"listening"\|msg=listening' "$1" && return 0
		sleep 0.1
	done
	fail "no \"listening\" in $1 within 60 s"
}

# submit RANGE: the id of a new job over RANGE.
submit() {
	curl -sf -X POST localhost:8080/v1/reports -H 'Content-Type: application/json' -d "{\"range\":\"$1\"}" |
		grep -oE '"id":"[0-9a-f-]{36}"' | cut -d'"' -f4
}

# The README's blocks, each in a file, numbered in order, with the section it is in.
awk -v dir="$tmp" '
	/^## / { section = substr($0, 4) }
	/^```sh$/ { n++; file = sprintf("%s/block-%02d.sh", dir, n); print "# section: " section > file; inblock = 1; next }
	/^```$/ && inblock { inblock = 0; close(file); next }
	inblock { print > file }
' README.md

step "the README's first command: go run ./cmd/reportd"
opening=$(sed -n '/^```sh$/,/^```$/p' README.md | sed -n 2p | sed 's/ *#.*//')
[[ "$opening" == *"go run ./cmd/reportd" ]] || fail "the README's first line of code is not the run command: $opening"
start reportd bash -c "$opening"
await_listening "$tmp/reportd.log"

step "a job done before the examples start, for their placeholders"
done_id=$(submit 2026-01)
curl -sf -o /dev/null -H 'Prefer: wait=60' "localhost:8080/v1/reports/$done_id"
[ "$(curl -s -o /dev/null -w '%{http_code}' "localhost:8080/v1/reports/$done_id")" = 303 ] || fail "job $done_id is not done"

# What a block must print (extended regexes, ";;" between those that must all match), by a piece of its
# code; a block not named here must only exit 0.
declare -A expect=(
	["loc=\$(curl"]='"orders":[0-9]+,"units":[0-9]+,"revenue_cents":[0-9]+'
	["-d '{\"range\":\"2026-Q1\"}'"]='HTTP/1.1 202 Accepted'
	["reportctl create --range 2026-Q1 --wait"]='orders '
	["bench -n 200"]='reports +200 in ;;lost: 0;;errors +0'
	["/cancel"]='"status":"canceled"'
	["wait=30"]='HTTP/1.1 (303 See Other|202 Accepted)'
	["callback_url"]='"status":"pending"'
	["/events"]='event: done;;retry: 2000'
)

# run_block FILE SECTION RUNNING: runs one README block as written, placeholders filled in, and checks
# its output against expect.
run_block() {
	local block=$1 section=$2 running=$3 script pattern key patterns
	script="$tmp/run-$(basename "$block")"
	{
		echo 'set -e' # as typed: a pipe's status is its last command's
		sed -E -e "s/6f1c\.\.\./$done_id/g" \
			-e "/cancel|delete|DELETE/s/\bID\b/$running/g" \
			-e "s/\bID\b/$done_id/g" "$block"
	} >"$script"
	step "README block $(basename "$block" .sh) in \"$section\""
	sed 's/^/    /' "$block" | tail -n +2
	if ! bash "$script" >"$tmp/out.txt" 2>&1; then
		cat "$tmp/out.txt" >&2
		fail "the block above failed"
	fi
	for key in "${!expect[@]}"; do
		grep -qF -- "$key" "$block" || continue
		IFS=$'\n' read -r -d '' -a patterns < <(printf '%s\0' "${expect[$key]//;;/$'\n'}") || true
		for pattern in "${patterns[@]}"; do
			if ! grep -qE -- "$pattern" "$tmp/out.txt"; then
				cat "$tmp/out.txt" >&2
				fail "the block above ran, but its output has no match for $pattern"
			fi
		done
	done
	tail -n 5 "$tmp/out.txt" | cut -c1-160 | sed 's/^/  > /'
}

ran=0
webhook_block=
for block in "$tmp"/block-*.sh; do
	section=$(sed -n '1s/^# section: //p' "$block")
	# The opening's run command is the service all of this runs against, and its test command is what
	# .ci/run runs; the user's part ends where "Running it" starts.
	[ -n "$section" ] || continue
	[ "$section" != "Running it" ] || break
	# The webhook example needs REPORTD_WEBHOOK_SECRET, as its section says: it runs below.
	if grep -q callback_url "$block"; then
		webhook_block=$block
		continue
	fi
	# A job still running for the lines that cancel or delete: a year of the default rows a day.
	running=
	if grep -qE 'cancel|delete|DELETE' "$block"; then
		running=$(submit 2026-01-01..2026-12-31)
	fi
	run_block "$block" "$section" "$running"
	# Leave no job of ours running into the next block.
	[ -z "$running" ] || curl -s -o /dev/null -X POST "localhost:8080/v1/reports/$running/cancel"
	ran=$((ran + 1))
done
[ "$ran" -ge 5 ] || fail "only $ran README blocks ran; the extraction is broken"
for f in jan.csv out.csv; do
	[ -s "$f" ] && head -1 "$f" | grep -q '^date,orders,units,revenue_cents$' || fail "$f was not written as a CSV report"
done

step "stop the embedded service"
kill -TERM -- "-${pids[0]}"
for _ in $(seq 1 300); do kill -0 "${pids[0]}" 2>/dev/null || break; sleep 0.1; done
! kill -0 "${pids[0]}" 2>/dev/null || fail "reportd did not stop within 30 s of SIGTERM"

step "\"Running it\": reportd api and reportd worker on REDIS_URL"
redis-cli -p 6379 ping >/dev/null 2>&1 && fail "a Redis already listens on port 6379; this step starts its own"
start redis redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no
for _ in $(seq 1 50); do redis-cli -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
split=$(sed -n '/^## Running it/,/^## /p' README.md | sed -n '/^```sh$/,/^```$/p' | grep -v '^```')
[ "$(echo "$split" | wc -l)" = 2 ] || fail "\"Running it\" should show two commands, api and worker:\n$split"
# The webhook section's own way to make a secret.
secret_cmd=$(grep -o 'echo whsec_[^`]*' README.md | head -1)
[ -n "$secret_cmd" ] || fail "the webhook section no longer says how to make a secret"
REPORTD_WEBHOOK_SECRET=$(eval "$secret_cmd")
export REPORTD_WEBHOOK_SECRET
start api bash -c "$(echo "$split" | sed -n 1p)"
start worker bash -c "$(echo "$split" | sed -n 2p)"
await_listening "$tmp/api.log"
go run ./cmd/reportctl create --range 2026-02 --wait | tee "$tmp/split.txt"
grep -q 'orders' "$tmp/split.txt" || fail "the split deployment gave no report"
[ -n "$webhook_block" ] || fail "no README block submits with a callback_url"
run_block "$webhook_block" "Webhooks, with REPORTD_WEBHOOK_SECRET set" ""
ran=$((ran + 1))

step "done: $ran README blocks and the split deployment ran as written"
