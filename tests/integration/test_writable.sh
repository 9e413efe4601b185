#!/usr/bin/env bash
#
# test_writable.sh - writes inside the container become versions in
# PostgreSQL (vsync-mount --writable).
#
# Covers: an editor's write (O_TRUNC + close) is committed with the
# container as author; fsync returns only once PostgreSQL has the bytes;
# create in a new nested directory, atomic save (temp file + rename over
# the original), rename of a file and of a directory, unlink, rmdir of a
# non-empty directory (ENOTEMPTY) and of an empty one, chmod, symlink,
# truncate, a write at an offset, an unlinked file still readable through
# its descriptor, hard links refused (EPERM), local-only paths still local;
# the mount equals PostgreSQL afterwards. Concurrent edits: a remote edit
# and a local edit of different lines merge; of the same line, the local
# one becomes current, the other stays in history and the conflict is
# recorded. SIGKILL of the agent during 1,000 writes with an fsync of every
# tenth: after a restart every fsync'ed write is in PostgreSQL exactly once,
# and nothing half-written is. A save of a
# renamed file is based on the version the rename made (a remote edit
# after the rename is merged, not overwritten). Restart with uncommitted changes: PostgreSQL stopped, changes
# made (closed, so journaled), the agent SIGKILLed and mounted again (by
# default, without --writable) from its saved manifest: the mount shows
# the changes at once; PostgreSQL started again: they are committed.
# 20 saves of one file while PostgreSQL is down are committed as one
# version. A save journaled while PostgreSQL is down, then its directory
# renamed: once committed, a remote edit of the file at its new path is
# applied on the mount. A file still open for writing when the agent gets SIGTERM is
# saved.
#
# Needs /dev/fuse (else exit 77), PostgreSQL (started here).
set -u

# shellcheck source=tests/lib/servers.sh
. "$(dirname "$0")/../lib/servers.sh"

vs_need_fuse
CTL=$VSYNC_BUILD_DIR/agent/vsyncctl
vs_deadline 400
vs_pg_fixture || exit 1
ctl() { "$CTL" -q "$@"; }
pgcat() { "$CTL" cat w "$1" 2>/dev/null; }

SRC=$W/src
mkdir -p "$SRC/src/old" "$SRC/docs"
printf 'line one\nline two\nline three\n' >"$SRC/src/three.txt"
printf 'a\n' >"$SRC/src/a.js"
printf 'old\n' >"$SRC/src/old/x.js"
printf 'readme\n' >"$SRC/docs/README.md"
printf '#!/bin/sh\necho hi\n' >"$SRC/run.sh"
vs_check "init and import" sh -c '"$1" -q init && "$1" -q import w "$2"' _ "$CTL" "$SRC"
ID=$(vs_sql "SELECT vsync_project_id('w')")

MNT=$W/mnt
mkdir -p "$MNT"
vs_mount w "$MNT" --cache-dir "$W/cache" --writable --author test-container || exit 1

committed() { [[ "$(pgcat "$1")" == "$2" ]]; }

# ---------------------------------------------------------------- edits
printf 'edited in the container\n' >"$MNT/src/a.js"
vs_check "an editor's write is committed" vs_poll 10 committed src/a.js 'edited in the container'
vs_check_eq "with the container as author" test-container \
	"$(vs_sql "SELECT created_by FROM project_files WHERE project_id = '$ID' AND file_path = 'src/a.js' AND is_current")"
vs_check_eq "the mount reads its own write" 'edited in the container' "$(cat "$MNT/src/a.js")"

printf 'synced\n' >"$MNT/docs/README.md"
sync "$MNT/docs/README.md"
vs_check_eq "fsync returns only once PostgreSQL has it" synced "$(pgcat docs/README.md)"

mkdir -p "$MNT/new/deep"
printf 'fresh\n' >"$MNT/new/deep/file.txt"
vs_check "a file in new nested directories is committed" vs_poll 10 committed new/deep/file.txt fresh

printf 'atomic\n' >"$MNT/src/.three.txt.tmp"
mv "$MNT/src/.three.txt.tmp" "$MNT/src/three.txt"
vs_check "an atomic save (temp + rename over) is committed" vs_poll 10 committed src/three.txt atomic
vs_check "the temp file is gone from PostgreSQL" vs_poll 10 sh -c '! "$1" cat w src/.three.txt.tmp >/dev/null 2>&1' _ "$CTL"

mv "$MNT/src/a.js" "$MNT/src/b.js"
vs_check "a rename is committed" vs_poll 10 committed src/b.js 'edited in the container'
mv "$MNT/src/old" "$MNT/src/moved"
vs_check "a directory rename is committed" vs_poll 10 committed src/moved/x.js old

out=$(rmdir "$MNT/src/moved" 2>&1)
vs_check "rmdir of a non-empty directory is ENOTEMPTY" grep -q "not empty" <<<"$out"
rm "$MNT/src/moved/x.js"
rmdir "$MNT/src/moved"
gone() { ! "$CTL" cat w "$1" >/dev/null 2>&1; }
vs_check "unlink is committed" vs_poll 10 gone src/moved/x.js
vs_check "rmdir is committed" vs_poll 10 sh -c '! "$1" ls w src/moved >/dev/null 2>&1 || [ -z "$("$1" ls w src/moved 2>/dev/null)" ]' _ "$CTL"

chmod 755 "$MNT/run.sh"
vs_check "chmod is committed" vs_poll 10 sh -c '"$1" ls w run.sh | grep -q 755' _ "$CTL"
ln -s ../docs/README.md "$MNT/src/readme.link"
vs_check "a symlink is committed" vs_poll 10 committed src/readme.link ../docs/README.md

printf '0123456789' >"$MNT/src/offsets.txt"
printf 'XY' | dd of="$MNT/src/offsets.txt" bs=1 seek=4 conv=notrunc status=none
vs_check "a write at an offset is committed" vs_poll 10 committed src/offsets.txt 0123XY6789
truncate -s 4 "$MNT/src/offsets.txt"
vs_check "truncate is committed" vs_poll 10 committed src/offsets.txt 0123

# a new file's working copy is in memory until it grows past 1 MiB, then
# on disk; once saved it is the content object itself (frozen), and the
# next write copies it
head -c 3145728 /dev/urandom >"$W/big"
dd if="$W/big" of="$MNT/src/big.bin" bs=65536 status=none
pgsha() { "$CTL" cat w "$1" 2>/dev/null | sha256sum | cut -d' ' -f1; }
sha_is() { [[ "$(pgsha "$1")" == "$2" ]]; }
vs_check "a new file grown past 1 MiB is committed whole" \
	vs_poll 15 sha_is src/big.bin "$(sha256sum <"$W/big" | cut -d' ' -f1)"
vs_check "and reads back whole" cmp -s "$W/big" "$MNT/src/big.bin"
printf 'tail\n' >>"$W/big"
printf 'tail\n' >>"$MNT/src/big.bin"
vs_check "a write after its save is committed too" \
	vs_poll 15 sha_is src/big.bin "$(sha256sum <"$W/big" | cut -d' ' -f1)"
vs_check "and reads back" cmp -s "$W/big" "$MNT/src/big.bin"
printf 'small\n' >"$MNT/src/small.txt"
vs_check "a small new file is committed" vs_poll 10 committed src/small.txt small
printf 'more\n' >>"$MNT/src/small.txt"
vs_check "and a write after its save" vs_poll 10 committed src/small.txt "$(printf 'small\nmore')"

# fsync(2) of a synced directory returns once the changes journaled
# before it are committed (a careful save: write, fsync, rename, fsync
# the directory)
mkdir "$MNT/fsd"
printf 'x\n' >"$MNT/fsd/a.txt"
mv "$MNT/fsd/a.txt" "$MNT/fsd/b.txt"
vs_check "fsync of a synced directory" vs_fsync "$MNT/fsd"
vs_check "then the rename is in PostgreSQL (not polled)" sh -c \
	'"$1" -q cat w fsd/b.txt >/dev/null 2>&1 && ! "$1" -q cat w fsd/a.txt >/dev/null 2>&1' _ "$CTL"
mkdir -p "$MNT/node_modules/fsd"
vs_check "fsync of a local-only directory" vs_fsync "$MNT/node_modules/fsd"

printf 'still here\n' >"$MNT/src/open.txt"
exec 3<"$MNT/src/open.txt"
rm "$MNT/src/open.txt"
vs_check_eq "an unlinked file stays readable through its descriptor" 'still here' "$(cat <&3)"
exec 3<&-

out=$(ln "$MNT/run.sh" "$MNT/hard" 2>&1)
vs_check "hard links are refused" grep -q "not permitted" <<<"$out"
mkdir -p "$MNT/node_modules/pkg"
printf 'local\n' >"$MNT/node_modules/pkg/index.js"
vs_check "local-only paths are still local (not in PostgreSQL)" gone node_modules/pkg/index.js

# the mount equals PostgreSQL (every file's bytes)
equal_tree() { vs_mount_equals_pg w "$MNT"; }
vs_check "the mount equals PostgreSQL" vs_poll 15 equal_tree

# ---------------------------------------------------------------- conflicts
vs_umount "$MNT"
printf 'l1\nl2\nl3\nl4\nl5\n' >"$W/five"
ctl put w merge.txt "$W/five"
ctl put w same.txt "$W/five"
# the mount does not follow changes: its edits are based on old versions
vs_mount w "$MNT" --cache-dir "$W/cache" --writable --no-follow --author test-container || exit 1
cat "$MNT/merge.txt" "$MNT/same.txt" >/dev/null
printf 'l1\nl2\nl3\nl4\nl5 remote\n' | "$CTL" -q put w merge.txt -
printf 'l1\nl2 remote\nl3\nl4\nl5\n' | "$CTL" -q put w same.txt -
printf 'l1 local\nl2\nl3\nl4\nl5\n' >"$MNT/merge.txt"
printf 'l1\nl2 local\nl3\nl4\nl5\n' >"$MNT/same.txt"
sync "$MNT/merge.txt" "$MNT/same.txt"
vs_check_eq "edits of different lines merge" "$(printf 'l1 local\nl2\nl3\nl4\nl5 remote')" "$(pgcat merge.txt)"
vs_check_eq "the mount serves the merge" "$(printf 'l1 local\nl2\nl3\nl4\nl5 remote')" "$(cat "$MNT/merge.txt")"
vs_check_eq "edits of the same line: the local one is current" "$(printf 'l1\nl2 local\nl3\nl4\nl5')" "$(pgcat same.txt)"
vs_check_eq "and the remote one stays in history" "$(printf 'l1\nl2 remote\nl3\nl4\nl5')" \
	"$("$CTL" cat w same.txt --version 2 2>&1)"
vs_check "the conflict is recorded" test "$(vs_sql "SELECT count(*) FROM file_operations WHERE project_id = '$ID' AND path = 'same.txt' AND operation_data ? 'conflict'")" -ge 1
vs_umount "$MNT"

# ---------------------------------------------------------------- SIGKILL
# 1,000 writes to 100 files, an fsync of every tenth; the agent is killed
# once 40 fsyncs have returned. Every fsync'ed write must be in PostgreSQL
# exactly once (one version with its bytes), and every version of these
# files must be one whole write.
vs_mount w "$MNT" --cache-dir "$W/cache" --writable --author test-container || exit 1
mkdir -p "$MNT/kill"
: >"$W/acked"
(
	for i in $(seq 1 1000); do
		f=$MNT/kill/f$((i % 100))
		printf 'write %d\n' "$i" >"$f" 2>/dev/null || exit 0
		if ((i % 10 == 0)); then
			sync "$f" 2>/dev/null || exit 0
			echo "$i" >>"$W/acked"
		fi
	done
) &
writer=$!
vs_on_exit "kill $writer 2>/dev/null; wait $writer 2>/dev/null; true"
vs_check "40 fsyncs returned" vs_poll 120 sh -c '[ "$(wc -l <"$1")" -ge 40 ]' _ "$W/acked"
kill -KILL "$VS_MOUNT_PID"
vs_check "the agent died (SIGKILL) during the writes" vs_poll 10 sh -c '! kill -0 "$1" 2>/dev/null' _ "$VS_MOUNT_PID"
wait "$writer" 2>/dev/null
acked=$(wc -l <"$W/acked")
vs_umount "$MNT" >/dev/null 2>&1
vs_mount w "$MNT" --cache-dir "$W/cache" --writable --author test-container || exit 1
# (path, SHA-256) of every fsync'ed write
pairs=$(while read -r i; do
	printf "('kill/f%d','%s')," $((i % 100)) "$(printf 'write %d\n' "$i" | sha256sum | cut -d' ' -f1)"
done <"$W/acked")
not_once() {
	vs_sql "SELECT count(*) FROM (VALUES ${pairs%,}) v(p, h) WHERE (SELECT count(*) FROM project_files f WHERE f.project_id = '$ID' AND f.file_path = v.p AND f.content_hash = v.h) <> 1"
}
once_all() { [[ "$(not_once)" == 0 ]]; }
vs_check "after a restart each of the $acked fsync'ed writes is in PostgreSQL exactly once" \
	vs_poll 20 once_all
vs_check_eq "every version of these files is one whole write" 0 \
	"$(vs_sql "SELECT count(*) FROM project_files WHERE project_id = '$ID' AND file_path LIKE 'kill/f%' AND kind = 'file' AND NOT is_deleted AND content !~ '^write [0-9]+\n$'")"
vs_umount "$MNT"

# ---------------------------------------------------------------- rename, then save
# (--no-follow: the rename never comes back, so only the journal chain
# tells the save which version of the new path it is based on)
vs_mount w "$MNT" --cache-dir "$W/cache" --no-follow --author test-container || exit 1
printf 'r1\nr2\nr3\nr4\n' >"$MNT/ren.txt"
sync "$MNT/ren.txt"
mv "$MNT/ren.txt" "$MNT/ren2.txt"
sync "$MNT/ren2.txt"
vs_check "the rename is committed" committed ren2.txt "$(printf 'r1\nr2\nr3\nr4')"
printf 'r1\nr2\nr3\nr4 remote\n' | "$CTL" -q put w ren2.txt -
printf 'r1 local\nr2\nr3\nr4\n' >"$MNT/ren2.txt"
sync "$MNT/ren2.txt"
vs_check_eq "a save of the renamed file merges with a remote edit made after the rename" \
	"$(printf 'r1 local\nr2\nr3\nr4 remote')" "$(pgcat ren2.txt)"
vs_umount "$MNT"

# ---------------------------------------------------------------- restart with uncommitted changes
CPORT=$(vs_free_port)
vs_mount w "$MNT" --cache-dir "$W/cache" --author test-container --control "127.0.0.1:$CPORT" || exit 1
cat "$MNT/docs/README.md" "$MNT/run.sh" >/dev/null
vs_check "PostgreSQL stopped" vs_pg_stop
printf 'while down\n' >"$MNT/docs/README.md"
mkdir "$MNT/down"
printf 'new while down\n' >"$MNT/down/new.txt"
mv "$MNT/run.sh" "$MNT/run2.sh"
rm "$MNT/src/three.txt"
# close() does not wait for the journal (the release that saves a file
# comes just after): kill once the five changes are journaled
journaled() {
	[[ "$(curl -s --max-time 2 "http://127.0.0.1:$CPORT/metrics" | awk '$1 == "vsync_journal_pending" { print $2 }')" -ge 5 ]]
}
vs_check "the five changes are journaled" vs_poll 10 journaled
kill -KILL "$VS_MOUNT_PID"
vs_check "the agent died (SIGKILL) with changes not committed" vs_poll 10 sh -c '! kill -0 "$1" 2>/dev/null' _ "$VS_MOUNT_PID"
vs_umount "$MNT" >/dev/null 2>&1
vs_mount w "$MNT" --cache-dir "$W/cache" --author test-container || exit 1
vs_check_eq "the remount (PostgreSQL down) shows a journaled edit" 'while down' "$(cat "$MNT/docs/README.md")"
vs_check_eq "a journaled new file in a new directory" 'new while down' "$(cat "$MNT/down/new.txt" 2>&1)"
vs_check "a journaled rename" sh -c '[ -x "$1/run2.sh" ] && [ ! -e "$1/run.sh" ]' _ "$MNT"
vs_check "a journaled unlink" test ! -e "$MNT/src/three.txt"
vs_check "PostgreSQL started again" vs_pg_start_again
vs_check "the edit is committed" vs_poll 15 committed docs/README.md 'while down'
vs_check "the new file is committed" vs_poll 15 committed down/new.txt 'new while down'
vs_check "the rename is committed" vs_poll 15 sh -c '"$1" cat w run2.sh >/dev/null 2>&1 && ! "$1" cat w run.sh >/dev/null 2>&1' _ "$CTL"
vs_check "the unlink is committed" vs_poll 15 gone src/three.txt
vs_check "the mount equals PostgreSQL" vs_poll 15 equal_tree
h=$(printf 'while down\n' | sha256sum | cut -d' ' -f1)
vs_check_eq "the edit once" 1 \
	"$(vs_sql "SELECT count(*) FROM file_operations WHERE project_id = '$ID' AND path = 'docs/README.md' AND user_id = 'test-container' AND (operation_data::text || coalesce(result::text, '')) LIKE '%$h%'")"
vs_umount "$MNT"

# ---------------------------------------------------------------- a burst of saves
vs_mount w "$MNT" --cache-dir "$W/cache" --author test-container || exit 1
printf 'save 0\n' >"$MNT/burst.txt"
sync "$MNT/burst.txt"
mkdir "$MNT/dm"
printf 'dm one\n' >"$MNT/dm/f.txt"
sync "$MNT/dm/f.txt"
vs_check "PostgreSQL stopped" vs_pg_stop
# bytes_journaled BYTES: a save of BYTES is in the journal
bytes_journaled() {
	grep -qs "^hash=$(printf '%s' "$1" | sha256sum | cut -d' ' -f1)\$" \
		"$W/cache/projects/$ID/journal/"[0-9]*
}
for i in $(seq 1 20); do printf 'save %d\n' "$i" >"$MNT/burst.txt"; done
# each save is journaled at its release, after its close (a release that
# comes after the next open and write journals that save's bytes: fewer
# entries, the last one the last save's)
vs_check "the 20 saves are journaled (the last one's bytes)" vs_poll 10 bytes_journaled $'save 20\n'
# a save journaled, then its directory renamed before the save is
# committed: the commit must still find the file (at its new path), or
# it stays "with local changes" for good and remote edits of it are
# never applied
printf 'saved before its directory moved\n' >"$MNT/dm/f.txt"
vs_check "f.txt's save is journaled" vs_poll 10 bytes_journaled $'saved before its directory moved\n'
mv "$MNT/dm" "$MNT/dm2"
vs_check "PostgreSQL started again" vs_pg_start_again
vs_check "the last of 20 saves made while PostgreSQL was down is committed" vs_poll 15 committed burst.txt 'save 20'
vs_check_eq "as one version (the saves are coalesced)" 2 \
	"$(vs_sql "SELECT count(*) FROM project_files WHERE project_id = '$ID' AND file_path = 'burst.txt'")"
vs_check "the save and the directory's rename are committed" vs_poll 15 committed dm2/f.txt 'saved before its directory moved'
printf 'remote after the move\n' | "$CTL" -q put w dm2/f.txt -
reads_f() { [[ "$(cat "$MNT/dm2/f.txt")" == 'remote after the move' ]]; }
vs_check "a remote edit of it at its new path is applied on the mount" vs_poll 15 reads_f
vs_umount "$MNT"

# ---------------------------------------------------------------- open at the stop
# no release comes for a file still open for writing when the agent stops
vs_mount w "$MNT" --cache-dir "$W/cache" --author test-container || exit 1
exec 3>"$MNT/open-at-stop.txt"
printf 'kept open\n' >&3
kill -TERM "$VS_MOUNT_PID"
vs_check "the agent stops on SIGTERM with a file open for writing" vs_poll 15 sh -c '! kill -0 "$1" 2>/dev/null' _ "$VS_MOUNT_PID"
exec 3>&-
vs_umount "$MNT" >/dev/null 2>&1
vs_mount w "$MNT" --cache-dir "$W/cache" --author test-container || exit 1
vs_check "what it wrote is saved (committed at the stop or by the next mount)" vs_poll 15 committed open-at-stop.txt 'kept open'
vs_umount "$MNT"

vs_summary
