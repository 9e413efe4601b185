#!/usr/bin/env bash
#
# test_cache_bound.sh - the content cache stays under --cache-max (issue 14).
#
# Covers: a --writable mount with --cache-max 2M and a write loop of 200
# saves of 65,000 bytes (12.4 MiB of distinct content, over six times the max)
# spread over 8 files: once the loop is over and the saves are committed,
# the content objects (regular files under objects/, st_blocks) come under
# the max within the deadline, with no slack. While writing, objects/ is
# sampled every 10 saves: the peak stays under twice the max (the slack:
# the objects of saves not yet committed and of the last 250 ms, the
# grace period VS_EVICT_GRACE_MS, are kept; 2.0-2.2 MiB seen). Every
# file reads its latest bytes; PostgreSQL equals the mount;
# vsync_cache_evictions_total > 0 and vsync_cache_bytes <= the max on
# /metrics; the journal dir (projects/) is untouched by eviction.
# Remounted on the same cache dir with --cache-max 256K (below the 8
# current contents, 508 KiB) and no prefetch: current contents are
# evicted, then fetched again from PostgreSQL when read, and every file
# still reads its latest bytes.
#
# Needs /dev/fuse (else exit 77), PostgreSQL (started here).
set -u

# shellcheck source=tests/lib/servers.sh
. "$(dirname "$0")/../lib/servers.sh"

vs_need_fuse
CTL=$VSYNC_BUILD_DIR/agent/vsyncctl
vs_deadline 300
vs_pg_fixture || exit 1

MAX=$((2 * 1024 * 1024))
NFILES=8
NSAVES=200
# not a multiple of the page: a file whose write ends on a page boundary
# waits 250 ms for its save (FSW_STREAM_QUIET_MS), and each file here is
# rewritten every ~200 ms: each cp must be a save of its own
SIZE=65000

SRC=$W/src
mkdir -p "$SRC/src"
for ((k = 0; k < NFILES; k++)); do
	printf 'file %d\n' "$k" >"$SRC/src/f$k.bin"
done
vs_check "init and import" sh -c '"$1" -q init && "$1" -q import cb "$2"' _ "$CTL" "$SRC"

CACHE=$W/cache
MNT=$W/mnt
PORT=$(vs_free_port)
mkdir -p "$MNT" "$W/expect"
vs_mount cb "$MNT" --cache-dir "$CACHE" --writable --cache-max 2M \
	--control "127.0.0.1:$PORT" --log-file "$W/mount.log" || exit 1

# bytes allocated by the content objects (what --cache-max bounds)
objects_bytes() {
	find "$CACHE/objects" -type f -printf '%b\n' | awk '{ s += $1 * 512 } END { print s + 0 }'
}
metric() { curl -s --max-time 2 "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }

# ---------------------------------------------------------------- the loop
peak=0
t0=$(vs_now_ms)
for ((i = 0; i < NSAVES; i++)); do
	k=$((i % NFILES))
	# distinct content each time: random bytes
	head -c "$SIZE" /dev/urandom >"$W/expect/f$k.bin"
	cp "$W/expect/f$k.bin" "$MNT/src/f$k.bin"
	if ((i % 10 == 9)); then
		b=$(objects_bytes)
		((b > peak)) && peak=$b
	fi
done
t1=$(vs_now_ms)
echo "# $NSAVES saves of $SIZE bytes in $((t1 - t0)) ms; objects/ peak seen while writing: $peak bytes (max $MAX)"
vs_check "while writing, objects/ stays under twice --cache-max (peak $peak bytes)" test "$peak" -le $((2 * MAX))

vs_check "PostgreSQL equals the mount once the saves are committed" vs_poll 120 vs_mount_equals_pg cb "$MNT"

under_max() { (($(objects_bytes) <= MAX)); }
vs_check "objects/ comes under --cache-max ($MAX bytes)" vs_poll 60 under_max
settled=$(objects_bytes)
t2=$(vs_now_ms)
echo "# objects/ $settled bytes ($(find "$CACHE/objects" -type f | wc -l) objects) $((t2 - t1)) ms after the loop"

same_as_expected() {
	local k
	for ((k = 0; k < NFILES; k++)); do
		cmp -s "$W/expect/f$k.bin" "$MNT/src/f$k.bin" || {
			echo "src/f$k.bin differs from its last write" >&2
			return 1
		}
	done
}
vs_check "every file reads its latest bytes" same_as_expected

ev=$(metric vsync_cache_evictions_total)
vs_check "vsync_cache_evictions_total > 0 (saw '$ev')" test "${ev:-0}" -gt 0
vs_check "objects were evicted, logged" grep -q 'cache: evicted' "$W/mount.log"
gauge_ok() {
	local g
	g=$(metric vsync_cache_bytes)
	[[ -n "$g" ]] && ((g <= MAX))
}
vs_check "vsync_cache_bytes <= the max" vs_poll 10 gauge_ok
vs_check "the journal dir is still there" test -d "$CACHE/projects/$(vs_sql "SELECT vsync_project_id('cb')")/journal"

# ---------------------------------------------------------------- refetch
# remounted with a bound below the 8 current contents (508 KiB): the
# first pass evicts some of them (they are committed: PostgreSQL has
# them), and reading the files fetches them again
vs_check "unmount" vs_umount "$MNT"
SMALL=$((256 * 1024))
vs_mount cb "$MNT" --cache-dir "$CACHE" --writable --cache-max 256K \
	--prefetch 0 --log-file "$W/mount2.log" || exit 1
under_small() { (($(objects_bytes) <= SMALL)); }
vs_check "remounted with --cache-max 256K: objects/ comes under it" vs_poll 30 under_small
evicted=0
for ((k = 0; k < NFILES; k++)); do
	h=$(sha256sum "$W/expect/f$k.bin" | cut -c1-64)
	[[ -f "$CACHE/objects/${h:0:2}/$h" ]] || evicted=$((evicted + 1))
done
echo "# $evicted of $NFILES current contents evicted before they are read again"
vs_check "current contents were evicted ($evicted of $NFILES)" test "$evicted" -gt 0
vs_check "evicted contents are fetched again: every file reads its latest bytes" same_as_expected
vs_check "and PostgreSQL equals the mount" vs_mount_equals_pg cb "$MNT"
vs_check "objects/ comes under 256K again" vs_poll 30 under_small
vs_check "unmount again" vs_umount "$MNT"

vs_summary
