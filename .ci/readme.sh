#!/usr/bin/env bash
# CI check: the examples of the README and docs/ run as written, on the embedded default, in the order a
# new user meets them. It starts the service with the README's first command (`go run ./cmd/reportd`, so
# port 8080 must be free), then runs the ```sh blocks listed below as they stand, with only the
# placeholders filled in:
#
#   6f1c...  the id of a job that is done (the walk-through's elided id)
#   ID       in a line that cancels or deletes, a job that is still running (its block cancels it
#            first, then deletes it); in any other line, a job that is done
#
# Each block must exit 0 and print what it promises (the checks below). What runs, and how, file by file
# (a block is one whose opening fence is "```sh", indented or not):
#
#   README.md            every block but the opening one, against the embedded default (the opening's
#                        run command is that service; its test command is what .ci/run runs)
#   docs/api.md          every block, against the embedded default, after the README's
#   docs/operations.md   the block of "## Running it" is the split deployment (`reportd api` and
#                        `reportd worker` on REDIS_URL): its two lines run against a redis-server started
#                        here on port 6379, and a job goes through them
#   docs/webhooks.md     every block, on that split deployment, with REPORTD_WEBHOOK_SECRET made as the
#                        page says
#
# Not run here, on purpose (CI runs them in other forms, or they take minutes or need what CI lacks):
#
#   docs/performance.md    benchmarks and measurements (`.ci/bench.sh`, `.ci/drain.sh`, `go test -bench`)
#   docs/development.md    development commands (`go generate`, vet, the stricter `go test` runs, .ci/run)
#   docs/configuration.md  the generated reference of the settings
#   docs/operations.md     every block outside "## Running it" (the Jaeger example: it needs Docker; the
#                          crash walk-through: asynq's recovery takes over a minute, and
#                          internal/faults's TestWorkerSIGKILLMidJob runs the same steps)
#
# A ```sh block in any other file of README.md and docs/*.md fails this script: a new example must be
# run here or listed above as not run.
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

# The files whose blocks run, in the order they run, and those whose blocks are not run (see the top).
embedded=(README.md docs/api.md) # against the embedded default
split_doc=docs/operations.md     # its "## Running it" block is the split deployment
on_split=(docs/webhooks.md)      # on the split deployment, with a webhook secret
not_run=(docs/performance.md docs/development.md docs/configuration.md)

# sh_blocks FILE: how many ```sh blocks FILE has.
sh_blocks() { grep -cE '^ *```sh$' "$1" || true; }

# Every file with a ```sh block is one of those.
for f in README.md docs/*.md; do
	[ "$(sh_blocks "$f")" -gt 0 ] || continue
	case " ${embedded[*]} $split_doc ${on_split[*]} ${not_run[*]} " in
	*" $f "*) ;;
	*) fail "$f has \`\`\`sh blocks, but .ci/readme.sh neither runs them nor lists them as not run" ;;
	esac
done

# blocks FILE: writes each ```sh block of FILE to a file of its own under $tmp/blocks, numbered on from
# the blocks before, whose first two lines name FILE and the section ("## ") the block is in, with the
# block's indentation taken off; prints their paths, in order.
mkdir "$tmp/blocks"
blocks() {
	awk -v dir="$tmp/blocks" -v doc="$1" -v n="$(find "$tmp/blocks" -name '*.sh' | wc -l)" '
		/^## / { section = substr($0, 4) }
		/^ *```sh$/ {
			n++; out = sprintf("%s/%03d.sh", dir, n); indent = index($0, "`") - 1; inblock = 1
			print "# file: " doc > out; print "# section: " section > out; next
		}
		/^ *```$/ && inblock { inblock = 0; close(out); print out; next }
		inblock { print substr($0, indent + 1) > out }
	' "$1"
}

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

# run_block BLOCK WHERE RUNNING: runs one block as written, placeholders filled in, and checks its
# output against expect.
run_block() {
	local block=$1 where=$2 running=$3 script pattern key patterns
	script="$tmp/run-$(basename "$block")"
	{
		echo 'set -e' # as typed: a pipe's status is its last command's
		sed -E -e "s/6f1c\.\.\./$done_id/g" \
			-e "/cancel|delete|DELETE/s/\bID\b/$running/g" \
			-e "s/\bID\b/$done_id/g" "$block"
	} >"$script"
	step "block $(basename "$block" .sh): $where"
	tail -n +3 "$block" | sed 's/^/    /'
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

# where BLOCK: the file and section a block is in.
where() {
	local section
	section=$(sed -n '2s/^# section: //p' "$1")
	printf '%s%s' "$(sed -n '1s/^# file: //p' "$1")" "${section:+, \"$section\"}"
}

ran=0
for doc in "${embedded[@]}"; do
	n=0
	for block in $(blocks "$doc"); do
		n=$((n + 1))
		# The README's opening (the run command is the service all of this runs against, and its test
		# command is what .ci/run runs).
		[ "$doc:$n" != README.md:1 ] || continue
		# A job still running for the lines that cancel or delete: a year of the default rows a day.
		running=
		if grep -qE 'cancel|delete|DELETE' "$block"; then
			running=$(submit 2026-01-01..2026-12-31)
		fi
		run_block "$block" "$(where "$block")" "$running"
		# Leave no job of ours running into the next block.
		[ -z "$running" ] || curl -s -o /dev/null -X POST "localhost:8080/v1/reports/$running/cancel"
		ran=$((ran + 1))
	done
	[ "$n" -gt 0 ] || fail "no \`\`\`sh block found in $doc; the extraction is broken"
done
[ "$ran" -ge 5 ] || fail "only $ran blocks ran on the embedded default; the extraction is broken"
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
split=$(sed -n '/^## Running it/,/^## /p' "$split_doc" | sed -n '/^```sh$/,/^```$/p' | grep -v '^```')
[ "$(echo "$split" | wc -l)" = 2 ] || fail "\"Running it\" in $split_doc should show two commands, api and worker:\n$split"
# The webhook page's own way to make a secret.
secret_cmd=$(grep -o 'echo whsec_[^`]*' docs/webhooks.md | head -1)
[ -n "$secret_cmd" ] || fail "docs/webhooks.md no longer says how to make a secret"
REPORTD_WEBHOOK_SECRET=$(eval "$secret_cmd")
export REPORTD_WEBHOOK_SECRET
start api bash -c "$(echo "$split" | sed -n 1p)"
start worker bash -c "$(echo "$split" | sed -n 2p)"
await_listening "$tmp/api.log"
go run ./cmd/reportctl create --range 2026-02 --wait | tee "$tmp/split.txt"
grep -q 'orders' "$tmp/split.txt" || fail "the split deployment gave no report"
webhooks=0
for doc in "${on_split[@]}"; do
	for block in $(blocks "$doc"); do
		if grep -q callback_url "$block"; then webhooks=$((webhooks + 1)); fi
		run_block "$block" "$(where "$block") on the split deployment, with REPORTD_WEBHOOK_SECRET set" ""
		ran=$((ran + 1))
	done
done
[ "$webhooks" -gt 0 ] || fail "no block of ${on_split[*]} submits with a callback_url"

# What was not run, as listed at the top.
skipped=()
for f in "${not_run[@]}"; do
	if [ -e "$f" ] && [ "$(sh_blocks "$f")" -gt 0 ]; then skipped+=("$f $(sh_blocks "$f")"); fi
done
outside=$(($(sh_blocks "$split_doc") - $(sed -n '/^## Running it/,/^## /p' "$split_doc" | grep -cE '^ *```sh$')))
[ "$outside" = 0 ] || skipped+=("$split_doc outside \"Running it\" $outside")
step "done: $ran blocks and the split deployment ran as written; not run, as listed (file, blocks): $(IFS=,; echo "${skipped[*]}")"
