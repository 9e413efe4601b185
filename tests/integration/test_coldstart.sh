#!/usr/bin/env bash
#
# test_coldstart.sh - cold start from a warm Redis: critical files first,
# readiness, the learned list, and Redis being empty or lying.
#
# Covers: vsync-mount in daemon mode (no -f) returns only once ready, with
# the ready file created and /readyz 200; at that moment the cache holds the
# critical files and nothing else (prefetch off); a file that is not local
# yet is fetched on first read with the right bytes; with prefetch on, the
# whole tree becomes local; the files read first are recorded (learned
# list, in Redis and the cache dir) and the next cold mount fetches them
# before ready; a learned list of a million lines in Redis: the mount is
# ready within 10 s and takes only its first 4096 paths; Redis flushed -> the mount still comes up (from
# PostgreSQL) and serves; corrupted Redis blobs (bad checksum, truncated
# lz4) are detected, logged, and the right bytes come from PostgreSQL; a
# daemon that cannot start exits non-zero and leaves no mount.
#
# Needs /dev/fuse (else exit 77), PostgreSQL and Redis (started here).
set -u

# shellcheck source=tests/lib/servers.sh
. "$(dirname "$0")/../lib/servers.sh"

vs_need_fuse
CTL=$VSYNC_BUILD_DIR/agent/vsyncctl
RELAY=$VSYNC_BUILD_DIR/agent/vsync-relay
MOUNT=$VSYNC_BUILD_DIR/agent/vsync-mount
vs_deadline 300
vs_servers_start all || exit 1
export VS_LOG_DIR=$VS_SERVERS_DIR
W=$VS_SERVERS_DIR/work
mkdir -p "$W"
PSQL=$VS_PG_BIN/psql
sql() { "$PSQL" -X -At -v ON_ERROR_STOP=1 "$VSYNC_PG_URL" -c "$1"; }
rcli() { vs_redis_cli "$@"; }

# ---------------------------------------------------------------- a project
SRC=$W/src
mkdir -p "$SRC/src" "$SRC/lib/a" "$SRC/lib/b"
printf '{"name":"cold","scripts":{"dev":"vite"}}\n' >"$SRC/package.json"
printf '<!doctype html><div id=root></div>\n' >"$SRC/index.html"
printf 'export default {}\n' >"$SRC/vite.config.js"
printf 'import App from "./App.jsx"\n' >"$SRC/src/main.jsx"
printf 'export default function App() { return "cold" }\n' >"$SRC/src/App.jsx"
# 120 modules of 200 random bytes each (base64), from one read of
# /dev/urandom: two processes, not two a file
i=0
while IFS= read -r b64; do
	i=$((i + 1))
	printf 'module %d %s\n' "$i" "$b64" >"$SRC/lib/a/m$i.js"
	printf 'other %d\n' "$i" >"$SRC/lib/b/o$i.txt"
done < <(head -c 24000 /dev/urandom | base64 -w 268)
head -c 300000 /dev/zero | tr '\0' 'x' >"$SRC/lib/big.txt" # compressible: lz4 in Redis
CRITICAL="package.json index.html vite.config.js src/main.jsx src/App.jsx"
NCRIT=5

vs_check "vsyncctl init" "$CTL" -q init
vs_check "import the project" "$CTL" -q import cold "$SRC"
ID=$(sql "SELECT vsync_project_id('cold')")
vs_check "relay --once fills Redis" "$RELAY" --once
vs_check_eq "Redis has the manifest" "$(find "$SRC" -type f | wc -l | tr -d ' ')" \
	"$(rcli EVAL "local n = 0 for _, v in ipairs(redis.call('HVALS', KEYS[1])) do if v:sub(1, 5) == 'file ' then n = n + 1 end end return n" 1 "manifest:{$ID}")"

# Start vsync-mount in daemon mode (MNT last) and register its cleanup.
# Sets rc (its exit status), ms (how long it took) and DAEMON_PID. Not to
# be run in a subshell: the cleanup must be registered in this shell.
daemon_mount() {
	local mnt=$1 t0
	shift
	mkdir -p "$mnt"
	t0=$(vs_now_ms)
	rc=0
	timeout 30 "$MOUNT" "$@" "$mnt" >"$W/daemon.out" 2>&1 </dev/null || rc=$?
	ms=$(($(vs_now_ms) - t0))
	DAEMON_PID=$(pgrep -f -- "vsync-mount .*$mnt" | tail -n 1)
	vs_on_exit "vs__cleanup_mount $(printf '%q' "$mnt") $DAEMON_PID"
}
objects() { find "$1/objects" -type f 2>/dev/null | wc -l | tr -d ' '; }
metric() { curl -s --max-time 2 "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
free_port() {
	local p
	for p in $(shuf -i 20000-40000 -n 20); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
}

# ---------------------------------------------------------------- ready
C1=$W/cache1
M1=$W/mnt1
PORT=$(free_port)
daemon_mount "$M1" "$ID" --cache-dir "$C1" --ready-file "$W/ready1" --control "127.0.0.1:$PORT" --prefetch 0 --learn-seconds 3 --log-file "$W/mount1.log"
vs_check_eq "daemon mode returns 0 once ready" 0 "$rc"
vs_log "mount -> ready (daemon returned) in $ms ms"
vs_check "the ready file exists when the daemon returns" test -e "$W/ready1"
vs_check "the manifest came from Redis" grep -q "from Redis" "$W/mount1.log"
# shellcheck disable=SC2086
vs_check_eq "at ready the cache holds the critical files and nothing else" \
	"$NCRIT" "$(objects "$C1")"
vs_check_eq "/readyz answers 200" 200 \
	"$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PORT/readyz")"
vs_check_eq "/metrics: vsync_ready 1" 1 "$(metric vsync_ready)"
vs_check_eq "/metrics: the critical files came from Redis" "$NCRIT" \
	"$(metric 'vsync_fetch_files_total{source="redis"}')"

# a file that is not local yet, read on demand
t0=$(vs_now_ms)
vs_check "first read of a file not yet local returns its bytes" cmp "$M1/lib/a/m7.js" "$SRC/lib/a/m7.js"
vs_log "first read of lib/a/m7.js: $(($(vs_now_ms) - t0)) ms"
vs_check "the 300 kB compressible file reads back (lz4 from Redis)" cmp "$M1/lib/big.txt" "$SRC/lib/big.txt"
vs_check "lib/b/o3.txt reads back" cmp "$M1/lib/b/o3.txt" "$SRC/lib/b/o3.txt"

# learned list: what was read first is saved after --learn-seconds
learned_saved() { grep -q "lib/a/m7.js" "$C1/projects/$ID/learned" 2>/dev/null; }
vs_check "the learned list is saved in the cache dir" vs_poll 10 learned_saved
learned_in_redis() { vs_redis_cli GET "learned:{$ID}" | grep -q lib/b/o3.txt; }
vs_check "the learned list is in Redis" learned_in_redis
vs_check "unmount" vs__cleanup_mount "$M1" "$DAEMON_PID"

# ---------------------------------------------------------------- learned first
C2=$W/cache2
M2=$W/mnt2
daemon_mount "$M2" "$ID" --cache-dir "$C2" --ready-file "$W/ready2" --prefetch 0 --log-file "$W/mount2.log"
vs_check_eq "second cold mount is ready" 0 "$rc"
has_object() { test -e "$1/objects/${2:0:2}/$2"; }
h7=$(sha256sum "$SRC/lib/a/m7.js" | cut -c1-64)
h3=$(sha256sum "$SRC/lib/b/o3.txt" | cut -c1-64)
h9=$(sha256sum "$SRC/lib/a/m9.js" | cut -c1-64)
vs_check "learned file lib/a/m7.js was fetched before ready" has_object "$C2" "$h7"
vs_check "learned file lib/b/o3.txt was fetched before ready" has_object "$C2" "$h3"
vs_check "a file nobody read (lib/a/m9.js) was not" sh -c '! test -e "$1"' _ "$C2/objects/${h9:0:2}/$h9"
vs_check "unmount" vs__cleanup_mount "$M2" "$DAEMON_PID"

# ---------------------------------------------------------------- hostile learned list
# learned:{id} is any container's of the project to write: a million lines
# (about 9 MB). The mount reads at most VS_LEARN_BYTES_MAX (1 MiB) of it
# and keeps its first VS_LEARN_MAX (4096) paths: lib/b/o8.txt, first, is
# fetched before ready, lib/b/o9.txt, after 4096 other paths, is not. The
# mount is still ready at once (its plan was lines x files).
{
	echo lib/b/o8.txt
	seq 1 4096 | sed 's|^|x/|'
	echo lib/b/o9.txt
	seq 4097 1000000 | sed 's|^|x/|'
} >"$W/learned.txt"
vs_check "store a 1M-line learned list" sh -c 'redis-cli -h 127.0.0.1 -p "$1" -x SET "learned:{$2}" <"$3" | grep -q OK' \
	_ "$VS_REDIS_PORT" "$ID" "$W/learned.txt"
C7=$W/cache7
M7=$W/mnt7
daemon_mount "$M7" "$ID" --cache-dir "$C7" --prefetch 0 --log-file "$W/mount7.log"
vs_check_eq "a cold mount with a 1M-line learned list is ready" 0 "$rc"
vs_log "mount with the hostile learned list -> ready in $ms ms"
vs_check "... within 10 s" test "$ms" -lt 10000
h8=$(sha256sum "$SRC/lib/b/o8.txt" | cut -c1-64)
ho9=$(sha256sum "$SRC/lib/b/o9.txt" | cut -c1-64)
vs_check "the first learned path was fetched before ready" has_object "$C7" "$h8"
vs_check "a path after the first 4096 was not" sh -c '! test -e "$1"' _ "$C7/objects/${ho9:0:2}/$ho9"
vs_check "unmount" vs__cleanup_mount "$M7" "$DAEMON_PID"

# ---------------------------------------------------------------- prefetch
C3=$W/cache3
M3=$W/mnt3
daemon_mount "$M3" "$ID" --cache-dir "$C3" --prefetch 4 --log-file "$W/mount3.log"
vs_check_eq "mount with prefetch is ready" 0 "$rc"
all_local() { [[ "$(objects "$C3")" -ge "$(find "$SRC" -type f -exec sha256sum {} + | cut -c1-64 | sort -u | wc -l)" ]]; }
vs_check "prefetch makes the whole tree local" vs_poll 20 all_local
vs_check "unmount" vs__cleanup_mount "$M3" "$DAEMON_PID"

# ---------------------------------------------------------------- Redis lies
hb=$(sha256sum "$SRC/lib/big.txt" | cut -c1-64)
h5=$(sha256sum "$SRC/lib/b/o5.txt" | cut -c1-64)
rcli SET "blob:{$ID}:$h5" "rthis is not the content" >/dev/null
rcli EVAL "redis.call('SETRANGE', KEYS[1], 20, 'garbage-garbage') return redis.call('STRLEN', KEYS[1])" 1 "blob:{$ID}:$hb" >/dev/null
C4=$W/cache4
M4=$W/mnt4
daemon_mount "$M4" "$ID" --cache-dir "$C4" --prefetch 0 --log-file "$W/mount4.log"
vs_check_eq "mount with corrupted Redis blobs is ready" 0 "$rc"
vs_check "a blob with a bad checksum in Redis: right bytes from PostgreSQL" cmp "$M4/lib/b/o5.txt" "$SRC/lib/b/o5.txt"
vs_check "a corrupt lz4 blob in Redis: right bytes from PostgreSQL" cmp "$M4/lib/big.txt" "$SRC/lib/big.txt"
vs_check "the bad blob is logged" grep -Eq "(corrupt|do not match).*$(printf '%.12s' "$h5")|$h5" "$W/mount4.log"
vs_check "the corrupt blob is logged" grep -Eq "(corrupt|do not match).*$(printf '%.12s' "$hb")|$hb" "$W/mount4.log"
vs_check "unmount" vs__cleanup_mount "$M4" "$DAEMON_PID"

# ---------------------------------------------------------------- Redis empty
rcli FLUSHALL >/dev/null
C5=$W/cache5
M5=$W/mnt5
daemon_mount "$M5" cold --cache-dir "$C5" --prefetch 0 --log-file "$W/mount5.log"
vs_check_eq "Redis flushed: the mount still comes up" 0 "$rc"
vs_check "Redis flushed: the manifest came from PostgreSQL" grep -q "from PostgreSQL" "$W/mount5.log"
vs_check "Redis flushed: files read back" cmp "$M5/src/App.jsx" "$SRC/src/App.jsx"
vs_check "unmount" vs__cleanup_mount "$M5" "$DAEMON_PID"

# ---------------------------------------------------------------- failed start
M6=$W/mnt6
mkdir -p "$M6"
rc=0
timeout 20 "$MOUNT" 00000000-0000-0000-0000-000000000000 "$M6" --cache-dir "$W/cache6" >"$W/fail.out" 2>&1 || rc=$?
vs_check "daemon mode: an unknown project exits non-zero" test "$rc" -ne 0
vs_check "daemon mode: the reason is printed" grep -q "unknown project" "$W/fail.out"
vs_check "daemon mode: nothing is left mounted" sh -c '! grep -q " $1 " /proc/mounts' _ "$M6"

vs_summary
