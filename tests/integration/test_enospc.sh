#!/usr/bin/env bash
#
# test_enospc.sh - a mount recovers from a full cache volume (issue 14).
#
# Covers: a --writable mount whose cache dir is on a small tmpfs of its
# own. The volume is filled by a file outside vsync; then, on the mount,
# a synced file is rewritten (open with O_TRUNC, then write: the write
# fails with ENOSPC, as on a full disk). Once its writer is done with it
# (its close; in no-open mode 5 s without a write),
# even before space returns, the file is back to PostgreSQL's version
# (the write failed and was reported: nothing half written is saved or
# left on the mount), vsync_writeback_total{outcome="reverted"} counts it
# and vsync_files_diverged is 0. So is a file whose write failed and
# which was then truncated to a size other than 0 (only a truncation to
# 0 rewrites it whole). Once the filler is removed (space
# returns), within the deadline:
#   - a file written whole is saved;
#   - a remote edit of the rewritten file (vsyncctl put) is applied on the
#     mount, as for any clean file;
#   - a file whose write failed while a remote edit of it was committed
#     (kept diverged meanwhile by a writer that goes on writing) gets
#     that remote version, not its last saved one, once its writer is
#     done and the version can be fetched;
#   - the mount equals PostgreSQL (vs_mount_equals_pg).
# A file written while its volume had room, whose save at its quiet point
# finds the volume full (a second volume, room for working copies in
# memory), is saved once room returns, though no write or close follows.
# On that volume, a save journaled while PostgreSQL is down, then made
# stale by a remote edit of another line, is merged once PostgreSQL is
# back while the volume is full: the merge's bytes find no room, the save
# is not refused (kept journaled), and once room returns PostgreSQL and
# the mount have both edits.
# While the volume is full, a file created remotely (not local yet) reads
# its bytes: they are kept in memory when the cache cannot store them
# (counted in vsync_cache_memory_bytes), up to --cache-mem-max (20 MiB
# here): three files of 5.5 MiB are, then the small content of a remote
# edit, past the 16 MiB pushed content may keep in memory of its own,
# is kept there too and counted; a 4 MiB file past the bound is not
# applied while the volume is full (logged), and reads its bytes once
# space returns;
# and 12 unlinks, renames and mkdirs of synced paths succeed, each after
# a filler took whatever room the one before freed (the journal's room
# is its own, never given back to the volume), and are committed once
# space returns.
# On a third volume, full but holding evictable objects (files read by an
# earlier mount, --cache-max 40M), the first read of a synced 12-MiB file
# (stored in chunks) gets its bytes: its fetch (through the streaming
# writer of content over 8 MiB) has objects evicted for it.
#
# Needs /dev/fuse (else exit 77), mount(2) of a tmpfs (else exit 77),
# PostgreSQL (started here).
set -u

# shellcheck source=tests/lib/servers.sh
. "$(dirname "$0")/../lib/servers.sh"

vs_need_fuse
CTL=$VSYNC_BUILD_DIR/agent/vsyncctl
vs_deadline 240

VOL=$(mktemp -d "${TMPDIR:-/tmp}/vsync-enospc.XXXXXX")
if ! mount -t tmpfs -o size=24m,mode=0700 vsync-enospc "$VOL" 2>/dev/null; then
	rmdir "$VOL"
	echo "SKIP: cannot mount a tmpfs for the cache volume (needs root and CAP_SYS_ADMIN)"
	exit 77
fi
vs_on_exit sh -c 'umount -l "$1" 2>/dev/null; rmdir "$1"' _ "$VOL"

vs_pg_fixture || exit 1

SRC=$W/src
mkdir -p "$SRC/src"
printf 'original A\n' >"$SRC/src/a.txt"
printf 'original B\n' >"$SRC/src/b.txt"
printf 'original C\n' >"$SRC/src/c.txt"
printf 'original H\n' >"$SRC/src/h.txt"
mkdir -p "$SRC/meta"
for i in $(seq 1 12); do printf 'meta %s\n' "$i" >"$SRC/meta/m$i.txt"; done
vs_check "init and import" sh -c '"$1" -q init && "$1" -q import full "$2"' _ "$CTL" "$SRC"
ctl() { timeout -k 5 60 "$CTL" -q "$@"; }

CACHE=$VOL/cache
MNT=$W/mnt
PORT=$(vs_free_port)
mkdir -p "$MNT"
vs_mount full "$MNT" --cache-dir "$CACHE" --writable --cache-max 16M \
	--cache-mem-max 20M \
	--control "127.0.0.1:$PORT" --log-file "$W/mount.log" || exit 1
vs_logs_on_failure "$W/mount.log"

metric() { curl -s --max-time 2 "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
# poll_check DESC SECONDS CMD...: CMD succeeds within SECONDS
poll_check() {
	local desc=$1 secs=$2
	shift 2
	if vs_poll "$secs" "$@"; then
		vs_pass "$desc"
	else
		vs_fail "$desc: expected within $secs s, saw not (a.txt: '$(head -c 40 "$MNT/src/a.txt" | tr -c '[:print:]' '?')', diverged: '$(metric vsync_files_diverged)', listed: $(listed))"
	fi
}
# the diverged paths /status lists, on one line
listed() { curl -s --max-time 2 "http://127.0.0.1:$PORT/status" | tr -d '\n' | grep -o '"diverged": *[[][^]]*[]]'; }
diverged_is() { [[ "$(metric vsync_files_diverged)" == "$1" ]]; }
reads() { [[ "$(cat "$MNT/$1" 2>/dev/null)" == "$2" ]]; }

vs_check_eq "a.txt reads PostgreSQL's bytes" "original A" "$(cat "$MNT/src/a.txt")"

# ---------------------------------------------------------------- full
# fill the volume: what is left for vsync is what a filler cannot take
dd if=/dev/zero of="$VOL/filler" bs=64k status=none 2>/dev/null
vs_check "the cache volume is full" sh -c '! dd if=/dev/zero of="$1/filler2" bs=4k count=1 status=none 2>/dev/null' _ "$VOL"
rm -f "$VOL/filler2"

# an editor's non-atomic save: O_TRUNC, then a write bigger than what is
# left (256 KiB, more than the reclaim it asks for can free by evicting
# every object, 16 small ones; memory working copies are not used on a
# nearly full disk)
rewrite() { head -c 262144 /dev/urandom | dd of="$MNT/src/a.txt" bs=64k conv=fsync status=none; }
if rewrite 2>"$W/rewrite.err"; then
	vs_fail "a write on a full cache volume: expected ENOSPC, saw success"
else
	vs_check "a write on a full cache volume fails with ENOSPC" grep -q 'No space left on device' "$W/rewrite.err"
fi
poll_check "a.txt is back to PostgreSQL's version once its writer closed it" 30 reads src/a.txt "original A"
vs_check_eq "a.txt's size is PostgreSQL's again" 11 "$(stat -c %s "$MNT/src/a.txt")"
poll_check "vsync_files_diverged is 0 again" 30 diverged_is 0
vs_check_eq "vsync_writeback_total{outcome=\"reverted\"} counts it" 1 \
	"$(metric 'vsync_writeback_total{outcome="reverted"}')"

# h.txt: rewritten (O_TRUNC), its write fails, then truncated to 5 bytes
# (not to 0: the failed write's bytes, here none, are what it keeps). It
# is not rewritten whole, so it is still not saved: it goes back to
# PostgreSQL's version, as a.txt did (before, any truncation made it
# savable: 5 NUL bytes were committed)
if head -c 262144 /dev/urandom | dd of="$MNT/src/h.txt" bs=64k conv=fsync status=none 2>/dev/null; then
	vs_fail "h.txt: a write on a full cache volume: expected ENOSPC, saw success"
fi
vs_check "h.txt is truncated to 5 bytes after its failed write" truncate -s 5 "$MNT/src/h.txt"
poll_check "h.txt is back to PostgreSQL's version, not saved truncated" 30 reads src/h.txt "original H"
vs_check_eq "PostgreSQL keeps h.txt's version" "original H" "$(ctl cat full src/h.txt)"
vs_check_eq "vsync_writeback_total{outcome=\"reverted\"} counts h.txt" 2 \
	"$(metric 'vsync_writeback_total{outcome="reverted"}')"

# ---------------------------------------------------------------- theirs
# c.txt: its write fails; while its writer goes on writing (so it is not
# reverted yet) a remote edit of it is committed, which the mount can
# fetch once space returns and then leaves unapplied (local changes);
# when the writer is done, the file goes back to that version, not to
# 'original C'
vs_check_eq "c.txt reads PostgreSQL's bytes" "original C" "$(cat "$MNT/src/c.txt")"
if head -c 262144 /dev/urandom | dd of="$MNT/src/c.txt" bs=64k conv=fsync status=none 2>/dev/null; then
	vs_fail "c.txt: a write on a full cache volume: expected ENOSPC, saw success"
fi
(
	exec 5>>"$MNT/src/c.txt"
	# (pacing the writer, not waiting for anything)
	while [[ ! -e $W/stop-c ]]; do
		printf x >&5 2>/dev/null
		sleep 0.2
	done
) &
WRITER=$!
vs_on_exit sh -c 'touch "$1"; kill "$2" 2>/dev/null; true' _ "$W/stop-c" "$WRITER"
printf 'remote C\n' >"$W/remote-c.txt"
vs_check "a remote edit of c.txt is committed while its write failed" ctl put full src/c.txt "$W/remote-c.txt"

# a file that is not local yet still reads on a full volume: its bytes
# are kept in memory (vs_cache_store_open), not refused. It is larger
# than what the change feed carries (VS_FEED_CONTENT_MAX, 16 KiB; that
# goes to memory whatever the volume), so the mount fetches it.
{
	printf 'remote D\n'
	head -c 20000 /dev/zero | tr '\0' d
} >"$W/remote-d.txt"
vs_check "a file is created remotely while the volume is full" ctl put full src/d.txt "$W/remote-d.txt"
poll_check "it reads PostgreSQL's bytes on the full volume" 30 cmp -s "$MNT/src/d.txt" "$W/remote-d.txt"
vs_check "its content is kept in memory (logged)" grep -q "is kept in memory" "$W/mount.log"
mem=$(metric vsync_cache_memory_bytes)
if [[ $mem =~ ^[0-9]+$ ]] && ((mem >= 20480)); then
	vs_pass "vsync_cache_memory_bytes counts it ($mem)"
else
	vs_fail "vsync_cache_memory_bytes: expected >= 20480, saw '$mem'"
fi
for g in 1 2 3; do
	head -c 5767168 /dev/urandom >"$W/remote-g$g.bin"
	vs_check "a 5.5-MiB file g$g is created remotely while the volume is full" \
		ctl put full "src/g$g.bin" "$W/remote-g$g.bin"
done
for g in 1 2 3; do
	poll_check "g$g reads its bytes on the full volume" 30 cmp -s "$MNT/src/g$g.bin" "$W/remote-g$g.bin"
done
mem=$(metric vsync_cache_memory_bytes)
if [[ $mem =~ ^[0-9]+$ ]] && ((mem > 16 << 20)); then
	vs_pass "vsync_cache_memory_bytes is past 16 MiB ($mem)"
else
	vs_fail "vsync_cache_memory_bytes: expected > 16 MiB, saw '$mem'"
fi
printf 'small remote\n' >"$W/remote-f.txt"
vs_check "a small file is created remotely" ctl put full src/f.txt "$W/remote-f.txt"
poll_check "it reads its bytes on the full volume" 30 reads src/f.txt "small remote"
mem2=$(metric vsync_cache_memory_bytes)
if [[ $mem2 =~ ^[0-9]+$ ]] && ((mem2 >= mem + 4096)); then
	vs_pass "its content in memory is counted too ($mem -> $mem2)"
else
	vs_fail "vsync_cache_memory_bytes after the small file: expected >= $mem + 4096, saw '$mem2'"
fi
head -c 4194304 /dev/urandom >"$W/remote-e.txt"
vs_check "a 4-MiB file is created remotely while the volume is full" ctl put full src/e.txt "$W/remote-e.txt"
poll_check "past --cache-mem-max its content is not kept in memory (logged)" 30 \
	grep -q "is at --cache-mem-max" "$W/mount.log"
if cmp -s "$MNT/src/e.txt" "$W/remote-e.txt" 2>/dev/null; then
	vs_fail "e.txt: expected no bytes while the volume is full past --cache-mem-max, saw them"
else
	vs_pass "e.txt does not read as its bytes while the volume is full"
fi

# ---------------------------------------------------------------- metadata
# unlink, rename and mkdir of synced paths still work on the full volume,
# again and again: each needs a journal entry, and whatever space one of
# them frees is taken at once by a filler, as a busy writer would
meta_ok=0
for i in $(seq 1 12); do
	dd if=/dev/zero of="$VOL/filler.$i" bs=4k status=none 2>/dev/null
	case $((i % 3)) in
	0) op=(rm "$MNT/meta/m$i.txt") ;;
	1) op=(mv "$MNT/meta/m$i.txt" "$MNT/meta/moved$i.txt") ;;
	2) op=(mkdir "$MNT/meta/d$i") ;;
	esac
	if "${op[@]}" 2>"$W/meta.err"; then
		meta_ok=$((meta_ok + 1))
	else
		vs_log "on the full volume: ${op[*]}: $(cat "$W/meta.err")"
	fi
done
vs_check_eq "12 unlinks, renames and mkdirs on the full volume, refilled after each, all succeed" 12 "$meta_ok"

# ---------------------------------------------------------------- space returns
rm -f "$VOL"/filler.*
rm -f "$VOL/filler"

poll_check "the remote edit of c.txt is left unapplied while it is diverged" 30 \
	grep -q "'src/c.txt' changed remotely" "$W/mount.log"
touch "$W/stop-c"
wait "$WRITER"
poll_check "c.txt has the remote version once its writer is done" 30 reads src/c.txt "remote C"
poll_check "e.txt reads its bytes once space returned" 30 cmp -s "$MNT/src/e.txt" "$W/remote-e.txt"

vs_check "a file written whole after space returned is saved (fsync)" \
	sh -c 'printf "written after\n" | dd of="$1" conv=fsync status=none' _ "$MNT/src/b.txt"
vs_check_eq "PostgreSQL has b.txt's new bytes" "written after" "$(ctl cat full src/b.txt)"

printf 'remote edit\n' >"$W/remote.txt"
vs_check "a remote edit of a.txt is committed" ctl put full src/a.txt "$W/remote.txt"
poll_check "the remote edit of a.txt is applied on the mount" 30 reads src/a.txt "remote edit"

vs_check_eq "vsync_writeback_total{outcome=\"reverted\"} counts all three" 3 \
	"$(metric 'vsync_writeback_total{outcome="reverted"}')"
poll_check "vsync_files_diverged is 0 at the end" 30 diverged_is 0
poll_check "the metadata changes are committed once space returns" 30 vs_mount_equals_pg full "$MNT"
vs_check "the mount equals PostgreSQL after the recovery" vs_mount_equals_pg full "$MNT"
vs_umount "$MNT"

# ---------------------------------------------------------------- a failed save
# a save that fails is tried again: b.txt is rewritten while its volume
# (a second one, with room for a working copy in memory: 256 MiB) has
# room, and the volume fills before its quiet point, so the save finds no
# room. Nothing else happens to the file (no RELEASE in no-open mode, no
# write, no close): once the filler is removed, PostgreSQL gets the edit.
VOL2=$(mktemp -d "${TMPDIR:-/tmp}/vsync-enospc2.XXXXXX")
if mount -t tmpfs -o size=272m,mode=0700 vsync-enospc2 "$VOL2"; then
	vs_on_exit sh -c 'umount -l "$1" 2>/dev/null; rmdir "$1"' _ "$VOL2"
	vs_mount full "$MNT" --cache-dir "$VOL2/cache" --writable \
		--save-quiet-ms 4000 --log-file "$W/mount2.log" || exit 1
	vs_logs_on_failure "$W/mount2.log"
	saved_is() { [[ "$(ctl cat full src/b.txt)" == "$1" ]]; }
	printf 'saved once room returns\n' >"$MNT/src/b.txt"
	dd if=/dev/zero of="$VOL2/filler" bs=1M status=none 2>/dev/null
	if vs_poll 30 grep -q "cannot save local changes" "$W/mount2.log"; then
		vs_pass "b.txt's save on the full volume fails (logged)"
	else
		vs_fail "b.txt's save on the full volume: expected a failure logged within 30 s, saw none"
	fi
	vs_check_eq "PostgreSQL has not b.txt's edit yet" "written after" "$(ctl cat full src/b.txt)"
	rm -f "$VOL2/filler"
	if vs_poll 30 saved_is "saved once room returns"; then
		vs_pass "b.txt's edit is saved once room returns, with no write or close"
	else
		vs_fail "b.txt's edit after room returned: expected in PostgreSQL within 30 s, saw '$(ctl cat full src/b.txt)'"
	fi
	vs_check_eq "the mount reads b.txt's edit" "saved once room returns" "$(cat "$MNT/src/b.txt")"

	# a save merged on a full volume: m.txt is edited on the mount (line
	# 5) and remotely (line 2); its save is journaled while PostgreSQL is
	# down; the volume fills; PostgreSQL comes back and the save, stale,
	# is merged, but the merge's bytes find no room in the cache. That is
	# not a refusal by PostgreSQL: the save stays journaled (before: it
	# was dropped as refused and the file made clean, the local edit
	# lost) and is committed, merged, once room returns.
	ID=$(vs_sql "select id from projects where name = 'full'")
	for i in $(seq 1 10); do echo "line $i"; done >"$W/m1"
	sed 's/^line 5$/line 5 local/' "$W/m1" >"$W/m_local"
	sed 's/^line 2$/line 2 remote/' "$W/m1" >"$W/m_remote"
	sed -e 's/^line 2$/line 2 remote/' -e 's/^line 5$/line 5 local/' "$W/m1" >"$W/m_want"
	vs_check "m.txt is created remotely" ctl put full src/m.txt "$W/m1"
	poll_check "the mount reads m.txt" 30 cmp -s "$MNT/src/m.txt" "$W/m1"
	cp "$W/m_local" "$MNT/src/m.txt" # saved at its quiet point, 4 s on
	vs_check "a remote edit of m.txt" ctl put full src/m.txt "$W/m_remote"
	vs_check "PostgreSQL stopped" vs_pg_stop
	m_journaled() {
		grep -qs "^hash=$(sha256sum <"$W/m_local" | cut -d' ' -f1)\$" \
			"$VOL2/cache/projects/$ID/journal/"[0-9]*
	}
	poll_check "m.txt's local save is journaled" 30 m_journaled
	dd if=/dev/zero of="$VOL2/filler" bs=1M status=none 2>/dev/null
	vs_check "PostgreSQL started again" vs_pg_start_again
	# (the failure is logged as it begins: a local step's, after the
	# PostgreSQL one logged while the server was down)
	m_kept() {
		grep -q "cannot commit write now: No space left on device (the content in the cache); [0-9]* entr[a-z]* kept journaled, retrying: 'src/m.txt'" \
			"$W/mount2.log"
	}
	poll_check "m.txt's merge on the full volume is kept journaled (logged)" 30 m_kept
	vs_check "and not refused" bash -c \
		"! grep -q \"local change to 'src/m.txt' was refused\" '$W/mount2.log'"
	vs_check_eq "PostgreSQL has the remote edit only meanwhile" "$(cat "$W/m_remote")" \
		"$(ctl cat full src/m.txt)"
	rm -f "$VOL2/filler"
	m_saved() { [[ "$(ctl cat full src/m.txt)" == "$(cat "$W/m_want")" ]]; }
	poll_check "m.txt's save is committed, merged, once room returns" 30 m_saved
	poll_check "the mount reads the merge" 30 cmp -s "$MNT/src/m.txt" "$W/m_want"
	poll_check "the mount equals PostgreSQL" 30 vs_mount_equals_pg full "$MNT"
	vs_umount "$MNT"
else
	rmdir "$VOL2"
	vs_fail "cannot mount a second tmpfs for the cache volume"
fi

# ---------------------------------------------------------------- a large read
# content over 8 MiB (imported: stored in chunks) is fetched through the
# cache's streaming writer, never whole in memory (so never kept in memory
# on a full volume): on a full volume holding evictable objects, the
# writer asks for reclaims as a small store does, and the first read of
# a synced 12-MiB file gets its bytes (before: EIO). A first mount (no
# prefetch) of project "big" reads its four small files (20.5 MiB of
# objects, no longer open once it is unmounted); the volume is filled; a
# second mount reads the 12-MiB file. --cache-max 40M: a reclaim evicts a
# tenth of it (one object), so what the reclaims of other writes free
# (the mount's own files) is not enough: the read needs its own.
VOL3=$(mktemp -d "${TMPDIR:-/tmp}/vsync-enospc3.XXXXXX")
if mount -t tmpfs -o size=48m,mode=0700 vsync-enospc3 "$VOL3"; then
	vs_on_exit sh -c 'umount -l "$1" 2>/dev/null; rmdir "$1"' _ "$VOL3"
	SRC3=$W/src3
	mkdir -p "$SRC3"
	for k in 1 2 3; do head -c 5767168 /dev/urandom >"$SRC3/k$k.bin"; done
	head -c 4194304 /dev/urandom >"$SRC3/k4.bin"
	head -c 12582912 /dev/urandom >"$SRC3/big.bin"
	vs_check "project big is imported" ctl import big "$SRC3"
	vs_mount big "$MNT" --cache-dir "$VOL3/cache" --cache-max 40M \
		--prefetch 0 --log-file "$W/mount3.log" || exit 1
	vs_logs_on_failure "$W/mount3.log"
	for k in 1 2 3 4; do
		vs_check "k$k.bin is read into the cache" cmp -s "$MNT/k$k.bin" "$SRC3/k$k.bin"
	done
	vs_umount "$MNT"
	dd if=/dev/zero of="$VOL3/filler" bs=64k status=none 2>/dev/null
	vs_check "the third cache volume is full" sh -c '! dd if=/dev/zero of="$1/filler2" bs=4k count=1 status=none 2>/dev/null' _ "$VOL3"
	rm -f "$VOL3/filler2"
	vs_mount big "$MNT" --cache-dir "$VOL3/cache" --cache-max 40M \
		--prefetch 0 --log-file "$W/mount4.log" || exit 1
	vs_logs_on_failure "$W/mount4.log"
	vs_check "the 12-MiB file reads its bytes on the full volume (objects evicted for it)" \
		cmp "$MNT/big.bin" "$SRC3/big.bin"
	vs_umount "$MNT"
else
	rmdir "$VOL3"
	vs_fail "cannot mount a third tmpfs for the cache volume"
fi
vs_summary
