#!/usr/bin/env bash
#
# bench_idle.sh - what idle mounts cost Redis: connections per mount,
# Redis CPU per mount per second and commands per mount per second
# (issue 14's figures). Not part of ctest.
#
# usage: tests/bench/bench_idle.sh [-n MOUNTS] [-d SECONDS]
#
#   -n MOUNTS   idle mounts of one small project (default 20)
#   -d SECONDS  length of each measurement window (default 60)
#
# One throwaway PostgreSQL and Redis; a 50-file project is imported and
# published once (`vsync-relay --once`, signed when the build has
# `vsyncctl keygen`: the mounts verify), so no relay runs while Redis is
# measured. Then:
#   base   Redis alone for SECONDS: its own CPU (serverCron ...);
#   idle   MOUNTS mounts (--pg and --redis, each its own cache dir),
#          started one after another, left alone for 15 s (the learned
#          list is saved after 10 s), then measured for SECONDS.
# Redis CPU is used_cpu_sys + used_cpu_user of INFO cpu (getrusage, µs);
# commands are total_commands_processed of INFO stats; connections are
# the established TCP connections of each vsync-mount process to the
# Redis port (ss -tnp). Per mount per second: (idle - base) / MOUNTS.
# Environment: VSYNC_BUILD_DIR (default build/), VS_KEEP_LOGS=1.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/servers.sh
. "$here/../lib/servers.sh"
# shellcheck source=tests/lib/bench.sh
. "$here/../lib/bench.sh"

MOUNTS=20
SECS=60
usage() {
	echo "usage: $0 [-n MOUNTS] [-d SECONDS]" >&2
	exit 2
}
while getopts 'n:d:h' opt; do
	case $opt in
	n) MOUNTS=$OPTARG ;;
	d) SECS=$OPTARG ;;
	*) usage ;;
	esac
done
for v in "$MOUNTS" "$SECS"; do
	[[ $v =~ ^[0-9]+$ ]] && ((v > 0)) || usage
done

vs_need_fuse
command -v ss >/dev/null 2>&1 || {
	echo "bench_idle: ss is needed (apt-get install iproute2)" >&2
	exit 1
}
for b in vsync-mount vsyncctl vsync-relay; do
	[[ -x $VSYNC_BUILD_DIR/agent/$b ]] || {
		echo "bench_idle: $VSYNC_BUILD_DIR/agent/$b is missing (build first)" >&2
		exit 1
	}
done
vs_deadline $((3 * SECS + 20 * MOUNTS + 120))

vs_servers_start all >/dev/null
W=$VS_SERVERS_DIR/work
VS_LOG_DIR=$W/logs
mkdir -p "$VS_LOG_DIR" "$W/tree/src"
CTL() { timeout -k 5 120 "$VSYNC_BUILD_DIR/agent/vsyncctl" --pg "$VSYNC_PG_URL" -q "$@"; }

for ((i = 0; i < 50; i++)); do
	printf 'export const v%d = 0;\n' "$i" >"$W/tree/src/f$i.js"
done
CTL init
CTL import idle "$W/tree"
UUID=$("$VS_PG_BIN/psql" -X -At -q "$VSYNC_PG_URL" -c "SELECT vsync_project_id('idle')")
sign_args=() verify_args=()
if key=$(CTL keygen "$W/relay.key" 2>/dev/null); then
	sign_args=(--sign-key "$W/relay.key")
	verify_args=(--verify-key "${key#VSYNC_VERIFY_KEY=}")
fi
timeout -k 5 120 "$VSYNC_BUILD_DIR/agent/vsync-relay" --pg "$VSYNC_PG_URL" \
	--redis "$VSYNC_REDIS_URL" "${sign_args[@]}" --once >"$VS_LOG_DIR/relay.log" 2>&1

# cpu_us: Redis' own CPU so far (user + system, µs); cmds: commands so far
cpu_us() {
	vs_redis_cli INFO cpu | tr -d '\r' | awk -F: '
		$1 == "used_cpu_sys" || $1 == "used_cpu_user" { s += $2 }
		END { printf "%d\n", s * 1000000 }'
}
cmds() {
	vs_redis_cli INFO stats | tr -d '\r' | awk -F: '$1 == "total_commands_processed" { print $2 }'
}
# window: "cpu_us cmds" spent by Redis over SECS seconds (minus the INFO
# calls themselves: 2 commands)
window() {
	local c0 k0 c1 k1
	c0=$(cpu_us) k0=$(cmds)
	sleep "$SECS"
	c1=$(cpu_us) k1=$(cmds)
	echo "$((c1 - c0)) $((k1 - k0 - 2))"
}

log "base: Redis alone for $SECS s"
read -r base_cpu base_cmds < <(window)

log "starting $MOUNTS idle mounts of project idle ($UUID)"
pids=()
for ((i = 0; i < MOUNTS; i++)); do
	mkdir -p "$W/m/$i" "$W/c/$i"
	vs_mount "$UUID" "$W/m/$i" --cache-dir "$W/c/$i" --pg "$VSYNC_PG_URL" \
		--redis "$VSYNC_REDIS_URL" "${verify_args[@]}" \
		--log-file "$VS_LOG_DIR/agent.$i.log"
	pids+=("$VS_MOUNT_PID")
done
sleep 15 # past --learn-seconds (10): the steady idle state

conns=$(ss -Htnp state established "( dport = :$VS_REDIS_PORT )" 2>/dev/null |
	grep -o 'pid=[0-9]*' | sort | uniq -c | awk '{ print $2 " " $1 }')
total=0 maxc=0
for p in "${pids[@]}"; do
	n=$(awk -v p="pid=$p" '$1 == p { print $2 }' <<<"$conns")
	n=${n:-0}
	total=$((total + n))
	((n > maxc)) && maxc=$n
done

log "idle: $MOUNTS mounts for $SECS s"
read -r idle_cpu idle_cmds < <(window)

for ((i = 0; i < MOUNTS; i++)); do
	vs_umount "$W/m/$i"
done

awk -v n="$MOUNTS" -v s="$SECS" -v bc="$base_cpu" -v bk="$base_cmds" \
	-v ic="$idle_cpu" -v ik="$idle_cmds" -v tc="$total" -v mc="$maxc" 'BEGIN {
	printf "idle Redis cost of %d mounts over %d s\n\n", n, s
	printf "                               Redis alone   with the mounts   per mount\n"
	printf "Redis CPU (us/s)              %12.1f  %16.1f  %10.2f   (target <= 5)\n", bc / s, ic / s, (ic - bc) / s / n
	printf "commands (/s)                 %12.2f  %16.2f  %10.3f\n", bk / s, ik / s, (ik - bk) / s / n
	printf "connections to Redis          %12s  %16d  %10.2f   (max %d; target 1)\n", "-", tc, tc / n, mc
}'
