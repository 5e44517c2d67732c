#!/usr/bin/env bash
# govulncheck against an offline copy of the Go vulnerability database.
#
#   bash .ci/govulncheck.sh                      # scan ./... (from anywhere; runs in the repo root)
#   bash .ci/govulncheck.sh -show verbose ./...  # any other govulncheck arguments replace ./...
#
# The database's usual host is not reachable here, but the Go module proxy serves its source as the module
# golang.org/x/vulndb (OSV files in data/osv). This script fetches that module at a pinned version, turns
# data/osv into a v1 database with the module's own cmd/indexdb, keeps the result in a cache directory, and
# runs govulncheck (pinned) with -db file://<that directory>. Its exit status is govulncheck's: 0 clean,
# 3 vulnerabilities your code calls, anything else an error.
#
# It uses whatever Go toolchain the environment selects (export GOTOOLCHAIN=... as the README says); the
# standard library that is checked is that toolchain's. The first run downloads ~25 MB for the database
# module plus indexdb's dependencies and takes 1-3 minutes; later runs reuse the cache (a few seconds).
#
# To move to newer vulnerability data, change VULNDB_VERSION to a newer pseudo-version of
# golang.org/x/vulndb (or set REPORTD_VULNDB_VERSION for one run).
set -euo pipefail
cd "$(dirname "$0")/.."

VULNDB_VERSION=${REPORTD_VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}
GOVULNCHECK_VERSION=v1.9.0

cache=${REPORTD_VULNDB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/reportd-vulndb}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd) # file:// needs an absolute path
db="$cache/$VULNDB_VERSION"

# Loading go.mod fails here, clearly, when it needs a newer Go than the environment selects.
if ! go list -m >/dev/null; then
	echo "govulncheck.sh: the selected Go toolchain cannot build this module; export GOTOOLCHAIN as the README says" >&2
	exit 1
fi
goversion=$(go env GOVERSION)
echo "govulncheck.sh: $goversion, golang.org/x/vulndb@$VULNDB_VERSION, govulncheck $GOVULNCHECK_VERSION" >&2

if [ ! -s "$db/index/modules.json" ]; then
	echo "govulncheck.sh: building the database in $db" >&2
	src=$(go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
	if [ -z "$src" ] || [ ! -d "$src/data/osv" ]; then
		echo "govulncheck.sh: golang.org/x/vulndb@$VULNDB_VERSION has no data/osv (got Dir '$src')" >&2
		exit 1
	fi
	# Build next to the final directory and rename it into place, so an interrupted or concurrent run
	# never leaves a half-written database behind.
	tmp=$(mktemp -d "$cache/.build.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	go run "golang.org/x/vulndb/cmd/indexdb@$VULNDB_VERSION" -vulns "$src/data/osv" -out "$tmp/db"
	if [ ! -s "$tmp/db/index/modules.json" ]; then
		echo "govulncheck.sh: indexdb wrote no index/modules.json" >&2
		exit 1
	fi
	mv -T "$tmp/db" "$db" 2>/dev/null || [ -s "$db/index/modules.json" ] # another run may have won
	rm -rf "$tmp"
	trap - EXIT
fi
echo "govulncheck.sh: database $db ($(find "$db/ID" -name '*.json' | wc -l) entries)" >&2

# go install, not go run: go run turns the tool's exit status 3 (vulnerabilities found) into 1. One binary
# per Go version, since govulncheck type-checks the code with the go/types it was built with.
bin="$cache/bin/govulncheck-$GOVULNCHECK_VERSION-$goversion"
GOBIN="$bin" go install "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION"

[ $# -gt 0 ] || set -- ./...
exec "$bin/govulncheck" -db "file://$db" "$@"
