#!/usr/bin/env bash
#
# bench_fleet.sh - a fleet start: many containers mounting one project at
# once with cold caches and Redis warm (issue 14's table), beside the same
# number of `cp -a` of the tree on the local disk, in one run. Not part of
# ctest.
#
# usage: tests/bench/bench_fleet.sh [-n MOUNTS] [-f FILES] [-r ROUNDS]
#
#   -n MOUNTS  mounts started at once (default 50)
#   -f FILES   files of the project (default 1000; bench_coldstart.sh --gen)
#   -r ROUNDS  rounds of the single-mount figures (default 7)
#
# One throwaway PostgreSQL and Redis; the project is imported and
# `vsync-relay --once` publishes it (signed when the build has `vsyncctl
# keygen`: the mounts verify). Then:
#   single  ROUNDS mounts one after another, each with a fresh cache dir,
#           by UUID and by name: spawn -> ready (vsync-mount returns in
#           daemon mode once the critical files are local), median;
#   fleet   MOUNTS mounts spawned at once, each with its own fresh cache
#           dir and mountpoint, by UUID and by name: spawn -> ready of each,
#           p50 / p90 / max, and the PostgreSQL sessions they opened
#           (pg_stat_database.sessions, per mount);
#   local   the same number of `cp -a` of the tree to fresh local
#           directories, at once: p50 / p90 / max.
# Prints the table and the ratios mount/local. Environment: VSYNC_BUILD_DIR
# (default build/), VS_KEEP_LOGS=1.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/servers.sh
. "$here/../lib/servers.sh"
# shellcheck source=tests/lib/bench.sh
. "$here/../lib/bench.sh"

MOUNTS=50
FILES=1000
ROUNDS=7
usage() {
	echo "usage: $0 [-n MOUNTS] [-f FILES] [-r ROUNDS]" >&2
	exit 2
}
while getopts 'n:f:r:h' opt; do
	case $opt in
	n) MOUNTS=$OPTARG ;;
	f) FILES=$OPTARG ;;
	r) ROUNDS=$OPTARG ;;
	*) usage ;;
	esac
done
for v in "$MOUNTS" "$FILES" "$ROUNDS"; do
	[[ $v =~ ^[0-9]+$ ]] && ((v > 0)) || usage
done
((FILES >= 10)) || usage

vs_need_fuse
MOUNT_BIN=$VSYNC_BUILD_DIR/agent/vsync-mount
for b in vsync-mount vsyncctl vsync-relay; do
	[[ -x $VSYNC_BUILD_DIR/agent/$b ]] || {
		echo "bench_fleet: $VSYNC_BUILD_DIR/agent/$b is missing (build first)" >&2
		exit 1
	}
done
vs_deadline 1800

vs_servers_start all >/dev/null
W=$VS_SERVERS_DIR/work
VS_LOG_DIR=$W/logs
mkdir -p "$VS_LOG_DIR"
CTL() { timeout -k 5 600 "$VSYNC_BUILD_DIR/agent/vsyncctl" --pg "$VSYNC_PG_URL" -q "$@"; }

# p PCT: the PCT percentile of the numbers on stdin (nearest rank)
p() { sort -n | awk -v p="$1" '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit } i = int(NR * p / 100 + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; printf "%.1f", v[i] }'; }
sessions() { "$VS_PG_BIN/psql" -X -At -q "$VSYNC_PG_URL" -c "SELECT sum(sessions) FROM pg_stat_database"; }

log "generating and importing a $FILES-file project"
bash "$here/bench_coldstart.sh" --gen "$FILES" "$W/tree" >/dev/null
CTL init
CTL import fleet "$W/tree"
UUID=$("$VS_PG_BIN/psql" -X -At -q "$VSYNC_PG_URL" -c "SELECT vsync_project_id('fleet')")
sign_args=() verify_args=()
if key=$(CTL keygen "$W/relay.key" 2>/dev/null); then
	sign_args=(--sign-key "$W/relay.key")
	verify_args=(--verify-key "${key#VSYNC_VERIFY_KEY=}")
fi
timeout -k 5 600 "$VSYNC_BUILD_DIR/agent/vsync-relay" --pg "$VSYNC_PG_URL" \
	--redis "$VSYNC_REDIS_URL" "${sign_args[@]}" --once >"$VS_LOG_DIR/relay.log" 2>&1

MNTS=()
cleanup_mounts() {
	local m
	for m in "${MNTS[@]}"; do
		vs_is_mounted "$m" && fusermount3 -u "$m" 2>/dev/null
	done
	MNTS=()
	return 0
}
vs_on_exit cleanup_mounts

# start_one ID PROJECT OUT: spawn one mount (fresh cache dir and
# mountpoint, named after ID), append "ms status" to OUT when vsync-mount
# returns (ready, or failed)
start_one() {
	local id=$1 project=$2 out=$3 t0 rc=0
	mkdir -p "$W/m/$id" "$W/c/$id"
	MNTS+=("$W/m/$id")
	(
		t0=$(now_us)
		"$MOUNT_BIN" "$project" "$W/m/$id" --cache-dir "$W/c/$id" \
			--pg "$VSYNC_PG_URL" --redis "$VSYNC_REDIS_URL" "${verify_args[@]}" \
			--log-file "$VS_LOG_DIR/mount.$id.log" || rc=$?
		echo "$((($(now_us) - t0) / 100))e-1 $rc" >>"$out"
	) &
}

# fleet BY PROJECT: MOUNTS mounts at once; prints "p50 p90 max failed
# sessions-per-mount"
fleet() {
	local by=$1 project=$2 out=$W/fleet.$1 s0 s1 i failed
	: >"$out"
	s0=$(sessions)
	for ((i = 0; i < MOUNTS; i++)); do
		start_one "f$by$i" "$project" "$out"
	done
	wait
	s1=$(sessions) # (counts the session that read s0: 1 less below)
	failed=$(awk '$2 != 0' "$out" | wc -l)
	# (the mountpoints are made in this subshell: unmount them here)
	echo "$(awk '{ print $1 + 0 }' "$out" | p 50) $(awk '{ print $1 + 0 }' "$out" | p 90) $(awk '{ print $1 + 0 }' "$out" | p 100) $failed $(awk -v a="$s0" -v b="$s1" -v n="$MOUNTS" 'BEGIN { printf "%.2f", (b - a - 1) / n }')"
	cleanup_mounts
}

# single BY PROJECT: ROUNDS mounts one at a time; prints the median
single() {
	local by=$1 project=$2 out=$W/single.$1 i
	: >"$out"
	for ((i = 0; i < ROUNDS; i++)); do
		start_one "s$by$i" "$project" "$out"
		wait
		cleanup_mounts
	done
	if awk '$2 != 0 { bad = 1 } END { exit !bad }' "$out"; then
		echo "failed"
		return 0
	fi
	awk '{ print $1 + 0 }' "$out" | p 50
}

# local copies at once; prints "p50 p90 max"
copies() {
	local out=$W/local i
	: >"$out"
	for ((i = 0; i < MOUNTS; i++)); do
		(
			t0=$(now_us)
			cp -a "$W/tree" "$W/copy.$i"
			echo "$((($(now_us) - t0) / 100))e-1" >>"$out"
		) &
	done
	wait
	echo "$(awk '{ print $1 + 0 }' "$out" | p 50) $(awk '{ print $1 + 0 }' "$out" | p 90) $(awk '{ print $1 + 0 }' "$out" | p 100)"
	rm -rf "$W"/copy.*
}

log "$ROUNDS single mounts by UUID and by name"
s_uuid=$(single uuid "$UUID")
s_name=$(single name fleet)
log "$MOUNTS mounts at once, by UUID, by name; $MOUNTS cp -a at once"
read -r fu50 fu90 fumax fufail fusess <<<"$(fleet uuid "$UUID")"
read -r fn50 fn90 fnmax fnfail fnsess <<<"$(fleet name fleet)"
read -r l50 l90 lmax <<<"$(copies)"

echo "fleet start of a $FILES-file project, cold caches, Redis warm ($(nproc) cores, kernel $(uname -r))"
echo ""
printf '%-34s %8s %8s %8s %7s %14s\n' "spawn -> ready (ms)" p50 p90 max failed "PG sessions/mount"
printf '%-34s %8s %8s %8s %7s %14s\n' "1 mount by UUID (median of $ROUNDS)" "$s_uuid" - - - -
printf '%-34s %8s %8s %8s %7s %14s\n' "1 mount by name (median of $ROUNDS)" "$s_name" - - - -
printf '%-34s %8s %8s %8s %7s %14s\n' "$MOUNTS mounts at once, by UUID" "$fu50" "$fu90" "$fumax" "$fufail" "$fusess"
printf '%-34s %8s %8s %8s %7s %14s\n' "$MOUNTS mounts at once, by name" "$fn50" "$fn90" "$fnmax" "$fnfail" "$fnsess"
printf '%-34s %8s %8s %8s %7s %14s\n' "local: $MOUNTS cp -a at once" "$l50" "$l90" "$lmax" - -
echo ""
echo "ratios mount/local (p50, p90): by UUID $(ratio "$fu50" "$l50"), $(ratio "$fu90" "$l90"); by name $(ratio "$fn50" "$l50"), $(ratio "$fn90" "$l90")"
echo "targets: p90 <= 200 ms for the fleet; a single mount by name <= 50 ms; no PostgreSQL session by name when Redis is warm"
