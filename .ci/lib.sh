# Shared by the .ci scripts that start a reportd process (source it; it defines functions only).

# listening_addr LOG WHAT: waits up to 20 s for reportd's "listening" line in LOG and prints its address;
# if none comes, it prints LOG to stderr and exits, naming WHAT.
listening_addr() {
	local log=$1 what=$2 addr=""
	for _ in $(seq 200); do
		addr=$(grep -o '"msg":"listening","addr":"[^"]*"' "$log" | sed 's/.*"addr":"\([^"]*\)"/\1/' || true)
		[ -n "$addr" ] && break
		sleep 0.1
	done
	[ -n "$addr" ] || { echo "$what did not start" >&2; cat "$log" >&2; exit 1; }
	echo "$addr"
}
