#!/usr/bin/env bash
# CI check: a TypeScript client generated from openapi.yaml (openapi-typescript + openapi-fetch, pinned in
# .ci/ts/package-lock.json) type-checks and runs the whole flow against a freshly built reportd:
# submit, poll honouring Retry-After until the 303, the report as JSON and CSV, a 404 and a 400 problem,
# cancel and delete.
#
#   bash .ci/ts-client.sh          # from anywhere; needs Go, Node 20 and the npm registry
#
# reportd uses REDIS_URL if the caller exported one, and its embedded Redis otherwise. It listens on a free
# loopback port and is always stopped on exit; its log is printed if anything after its start fails.
set -euo pipefail
export GOTOOLCHAIN=go1.27.3 # go.mod's toolchain line; the machine's own Go is older and set to GOTOOLCHAIN=local (see the README)
root=$(cd "$(dirname "$0")/.." && pwd)
ts="$root/.ci/ts"

tmp=$(mktemp -d)
pid=
flow_ok=no
cleanup() {
	local rc=$?
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	if [ -n "$pid" ] && [ "$flow_ok" != yes ]; then
		echo "--- reportd log ($tmp/reportd.log) ---" >&2
		cat "$tmp/reportd.log" >&2 || true
		[ -s "$tmp/reportd.out" ] && { echo "--- reportd stdout ---" >&2; cat "$tmp/reportd.out" >&2; }
		echo "--- end of reportd log ---" >&2
	fi
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step() { printf '\n--- ts-client: %s (%ss)\n' "$*" "$SECONDS"; }

cd "$ts"
step "npm ci (node $(node --version), npm $(npm --version))"
npm ci --no-audit --no-fund

step "generate schema.d.ts from openapi.yaml"
# --no: the pinned local binaries only; never download another version.
npx --no -- openapi-typescript ../../openapi.yaml -o schema.d.ts

step "tsc --noEmit (strict)"
npx --no -- tsc --version
npx --no -- tsc --noEmit

step "build reportd"
(cd "$root" && go build -o "$tmp/reportd" ./cmd/reportd)

# (Never print REDIS_URL itself: it may hold a password.)
step "start reportd ($([ -n "${REDIS_URL:-}" ] && echo 'REDIS_URL from the environment' || echo 'embedded Redis'))"
REPORTD_ADDR=127.0.0.1:0 REPORTD_ROWS_PER_DAY=100000 "$tmp/reportd" >"$tmp/reportd.out" 2>"$tmp/reportd.log" &
pid=$!

# The bound address is the "addr" of the JSON log line whose msg is "listening" (other lines carry an
# "addr" too, e.g. the embedded Redis's).
addr=
deadline=$((SECONDS + 20))
while [ "$SECONDS" -lt "$deadline" ]; do
	addr=$(node -e '
		for (const line of require("fs").readFileSync(process.argv[1], "utf8").split("\n")) {
			try { const r = JSON.parse(line); if (r.msg === "listening" && r.addr) { console.log(r.addr); break; } } catch {}
		}' "$tmp/reportd.log")
	[ -n "$addr" ] && break
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "reportd exited before it was listening" >&2
		exit 1
	fi
	sleep 0.1
done
if [ -z "$addr" ]; then
	echo "reportd did not log \"listening\" within 20 s" >&2
	exit 1
fi
echo "reportd (pid $pid) listening on $addr"

step "run flow.ts"
REPORTD_URL="http://$addr" npx --no -- tsx flow.ts
flow_ok=yes

step "done"
