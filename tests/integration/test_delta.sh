#!/usr/bin/env bash
#
# test_delta.sh - "small edits travel small": a mount fed by a relay
# through Redis applies the delta of an edit of a large file when it has
# the previous version, and fetches the full content when it does not.
#
# Covers: a 200 KiB file read through the mount (so its content is local),
# then edited (one line, vsyncctl put): the mount shows the new bytes and
# its log says "applied delta for 'src/large.js'"; a second edit on top of
# the first (whose content the delta made) is applied from a delta too; a
# large file never read (its base is not local) is edited: the mount shows
# the new bytes, fetched in full (no "applied delta" line for it). The
# relay logs no error. Corrupt deltas are covered by tests/unit/test_delta.c.
#
# Needs /dev/fuse (else exit 77), PostgreSQL and Redis (throwaway ones).
# Environment: VSYNC_BUILD_DIR (default build/), VS_KEEP_LOGS=1 keeps logs.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/servers.sh
. "$here/../lib/servers.sh"

vs_need_fuse
vs_deadline 200

CTL=$VSYNC_BUILD_DIR/agent/vsyncctl
for b in "$CTL" "$VSYNC_BUILD_DIR/agent/vsync-mount" "$VSYNC_BUILD_DIR/agent/vsync-relay"; do
	if [[ ! -x "$b" ]]; then
		echo "test_delta: $b is missing (build first)" >&2
		exit 1
	fi
done
vs_servers_start all || exit 1
W=$VS_SERVERS_DIR/work
mkdir -p "$W/src/src" "$W/mnt" "$W/cache"
export VS_LOG_DIR=$VS_SERVERS_DIR

ctl() { "$CTL" -q "$@"; }

# 200 KiB of distinct lines
large_file() {
	local i
	for i in $(seq 1 5000); do
		printf 'export const %s%d = %d; // a line of a large file\n' "$1" "$i" "$((i * 7))"
	done | head -c 204800
}
mtime_changed() { [[ "$(stat -c %y "$1")" != "$2" ]]; }
# $1 with line "$2" replaced by "$3"
edit_line() {
	sed "s|^export const $2 = .*|$3|" "$1"
}

large_file value >"$W/src/src/large.js"
large_file other >"$W/src/src/other.js"
printf '{"name": "delta-test"}\n' >"$W/src/package.json"
vs_check "init" ctl init
vs_check "import" ctl import delta "$W/src"
vs_relay_start --poll-interval 200 || {
	vs_fail "relay: expected it running (log: $VS_RELAY_LOG)"
	vs_summary
	exit 1
}
# --prefetch 0: only what is read becomes local
if ! vs_mount delta "$W/mnt" --pg "$VSYNC_PG_URL" --redis "$VSYNC_REDIS_URL" \
	--cache-dir "$W/cache" --prefetch 0; then
	vs_fail "mount with --redis (log: $VS_MOUNT_LOG)"
	vs_summary
	exit 1
fi
vs_check "read large.js (its content becomes local)" \
	cmp "$W/mnt/src/large.js" "$W/src/src/large.js"

# one line edited
edit_line "$W/src/src/large.js" value2500 'export const value2500 = 1; // edited' >"$W/v2.js"
vs_check "put large.js v2" ctl put delta src/large.js "$W/v2.js"
if vs_poll 20 cmp -s "$W/mnt/src/large.js" "$W/v2.js"; then
	vs_pass "the mount shows large.js v2"
else
	vs_fail "the mount shows large.js v2: still $(sha256sum <"$W/mnt/src/large.js")"
fi
vs_check_eq "the mount log has one 'applied delta' for large.js" 1 \
	"$(grep -c "applied delta for 'src/large.js'" "$VS_MOUNT_LOG")"

# a second edit, on top of the content the delta made
edit_line "$W/v2.js" value10 'export const value10 = 2; // edited again' >"$W/v3.js"
vs_check "put large.js v3" ctl put delta src/large.js "$W/v3.js"
if vs_poll 20 cmp -s "$W/mnt/src/large.js" "$W/v3.js"; then
	vs_pass "the mount shows large.js v3"
else
	vs_fail "the mount shows large.js v3"
fi
vs_check_eq "v3 came from a delta too" 2 \
	"$(grep -c "applied delta for 'src/large.js'" "$VS_MOUNT_LOG")"

# a large file whose previous content is not local: fetched in full
edit_line "$W/src/src/other.js" other100 'export const other100 = 3; // edited' >"$W/o2.js"
# wait on its mtime (stat reads no content: reading the old bytes while
# the change is on its way would make them local)
mt=$(stat -c %y "$W/mnt/src/other.js")
vs_check "put other.js v2 (never read here)" ctl put delta src/other.js "$W/o2.js"
vs_poll 20 mtime_changed "$W/mnt/src/other.js" "$mt" ||
	vs_log "other.js: mtime unchanged after 20 s"
if cmp -s "$W/mnt/src/other.js" "$W/o2.js"; then
	vs_pass "the mount shows other.js v2 (full content)"
else
	vs_fail "the mount shows other.js v2"
fi
vs_check_eq "no delta applied for other.js" 0 \
	"$(grep -c "applied delta for 'src/other.js'" "$VS_MOUNT_LOG")"
vs_check_eq "the relay logged no error" 0 "$(grep -ci "error" "$VS_RELAY_LOG")"

vs_umount "$W/mnt" || vs_fail "unmount"
vs_summary
