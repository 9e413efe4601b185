#!/usr/bin/env bash
#
# test_write_limits.sh - limits and hostile input on the synced paths of a
# (writable by default) mount: a clear errno and a log line, nothing
# half-written committed.
#
# Covers:
#   - --max-file-size: a write past the limit (sequential, and one write at
#     a far offset) is EFBIG; truncate past it is EFBIG; a file whose write
#     failed is not committed (not even its first part), fsync on it is
#     EIO; rewritten whole it is committed again; a new file whose write
#     failed (never saved: one write at a far offset, or 1 MiB written
#     then a write refused) goes back to the empty file its creation made,
#     on the mount and in PostgreSQL; a write that fails after a save not
#     yet committed reverts the file to that save;
#   - a full cache dir (a 8 MiB tmpfs): a large write is ENOSPC, nothing of
#     it reaches PostgreSQL; rm -rf of the files works on the full volume;
#     once space is freed, writes are committed again;
#   - names PostgreSQL cannot store (a newline, a tab, invalid UTF-8) are
#     EINVAL on synced paths, by create, mkdir, symlink and rename, with a
#     log line; the same names are fine in local-only node_modules/;
#   - a path over 4096 bytes (directories of 250-byte names) is
#     ENAMETOOLONG and leaves no entry behind;
#   - a 3,903-byte path of random hex names is stored in PostgreSQL, and a
#     write and fsync after it are committed at once (an index on the bare
#     path once refused it and held back all write-back behind it);
#   - a path of exactly 4096 bytes is stored, one more byte is
#     ENAMETOOLONG, and so is a move of a directory that would put a path
#     under it past 4096 bytes;
#   - PostgreSQL equals the mount afterwards.
#
# Needs /dev/fuse (else exit 77), root (tmpfs), PostgreSQL (started here).
set -u

# shellcheck source=tests/lib/servers.sh
. "$(dirname "$0")/../lib/servers.sh"

vs_need_fuse
if ((EUID != 0)); then
	echo "test_write_limits: needs root to mount a small tmpfs; skipped" >&2
	exit 77
fi
CTL=$VSYNC_BUILD_DIR/agent/vsyncctl
vs_deadline 300
vs_pg_fixture || exit 1
pgcat() { "$CTL" cat l "$1" 2>/dev/null; }
gone() { ! "$CTL" cat l "$1" >/dev/null 2>&1; }
committed() { [[ "$(pgcat "$1")" == "$2" ]]; }

# expect_errno DESC MESSAGE CMD...: CMD fails and says MESSAGE.
expect_errno() {
	local desc=$1 want=$2 out
	shift 2
	if out=$("$@" 2>&1); then
		vs_fail "$desc: expected '$want', saw success"
	elif [[ $out == *"$want"* ]]; then
		vs_pass "$desc"
	else
		vs_fail "$desc: expected '$want', saw '$out'"
	fi
}

SRC=$W/src
mkdir -p "$SRC/src"
printf 'keep\n' >"$SRC/src/keep.txt"
vs_check "init and import" sh -c '"$1" -q init && "$1" -q import l "$2"' _ "$CTL" "$SRC"
ID=$(vs_sql "SELECT vsync_project_id('l')")

# The cache dir on its own small file system.
SMALL=$W/small
mkdir -p "$SMALL"
if ! mount -t tmpfs -o size=8m,mode=0700 vsync-test-small "$SMALL"; then
	echo "test_write_limits: cannot mount a tmpfs; skipped" >&2
	exit 77
fi
vs_on_exit "umount $(printf '%q' "$SMALL")"

MNT=$W/mnt
mkdir -p "$MNT"
vs_mount l "$MNT" --cache-dir "$SMALL/cache" --max-file-size 1048576 \
	--author limits || exit 1

# ---------------------------------------------------------------- EFBIG
expect_errno "a write past --max-file-size is EFBIG" "File too large" \
	sh -c 'head -c 2097152 /dev/zero >"$1"' _ "$MNT/big.bin"
# a new file: 1 MiB written, a write past the limit, fsync, back to back
# in one process (before the file's revert, due at its close or 5 s
# after the failed write; two commands could leave a quiet period
# between the writes, and the 1 MiB would be saved)
expect_errno "fsync of the file whose write failed is EIO" "Input/output error" \
	perl -e 'use IO::Handle; open(my $f, ">", $ARGV[0]) or die "$!\n";
		syswrite($f, "a" x 1048576) == 1048576 or die "$!\n";
		defined(syswrite($f, "x")) and die "written past the limit\n";
		$!{EFBIG} or die "not EFBIG: $!\n"; $f->sync and exit 0;
		die "$!\n"' "$MNT/part.bin"
expect_errno "one write at a far offset is EFBIG" "File too large" \
	dd if=/dev/zero of="$MNT/far.bin" bs=1 count=1 seek=4M status=none
expect_errno "truncate past the limit is EFBIG" "File too large" \
	truncate -s 2M "$MNT/src/keep.txt"
printf 'small now\n' >"$MNT/small.txt"
sync "$MNT/small.txt"
vs_check "a later file is committed (the committer is not stuck)" committed small.txt 'small now'
# never saved, a file whose write failed goes back to what its creation
# made, the empty file, and that is saved (write.c, revert_locked): the
# failed writes are dropped, the creation is kept, as on a local disk
pg_size() {
	vs_sql "SELECT file_size FROM project_files WHERE project_id = '$ID' AND file_path = '$1' AND kind = 'file' AND is_current AND NOT is_deleted"
}
empty_in_pg() { [[ "$(pg_size "$1")" == 0 ]]; }
vs_check "far.bin (its one write refused) ends in PostgreSQL, empty" \
	vs_poll 20 empty_in_pg far.bin
vs_check "part.bin (1 MiB written, then a write refused) ends in PostgreSQL, empty" \
	vs_poll 20 empty_in_pg part.bin
vs_check_eq "no version of either holds the failed writes' bytes" 0 \
	"$(vs_sql "SELECT count(*) FROM project_files WHERE project_id = '$ID' AND file_path IN ('far.bin', 'part.bin') AND file_size > 0")"
vs_check "both are empty on the mount" sh -c \
	'test -f "$1/far.bin" && test ! -s "$1/far.bin" && test -f "$1/part.bin" && test ! -s "$1/part.bin"' _ "$MNT"
# A new file whose only writes failed, renamed over a committed file
# before its close (a rename is a save point): PostgreSQL never had it,
# so the rename moves nothing there (a RENAME of it was refused for good,
# and the file it replaced came back over it); the replaced file is
# deleted there and the renamed one saved at its new name, empty.
printf 'old\n' >"$MNT/over.bin"
sync "$MNT/over.bin"
vs_check "over.bin is committed" vs_poll 10 committed over.bin old
vs_check "a new file, its write refused, renamed over over.bin before its close" \
	perl -e 'open(my $f, ">", $ARGV[0]) or die "$!\n";
		syswrite($f, "a" x 1048576) == 1048576 or die "$!\n";
		defined(syswrite($f, "x")) and die "written past the limit\n";
		rename($ARGV[0], $ARGV[1]) or die "rename: $!\n"; close($f)' \
	"$MNT/new.bin" "$MNT/over.bin"
vs_check "over.bin ends in PostgreSQL empty" vs_poll 20 empty_in_pg over.bin
vs_check "over.bin is empty on the mount" sh -c 'test -f "$1" && test ! -s "$1"' _ "$MNT/over.bin"
vs_check "new.bin is not in PostgreSQL" gone new.bin
vs_check "no rename of new.bin was refused" sh -c '! grep -q "refused.*new\.bin" "$1"' _ "$VS_MOUNT_LOG"
vs_check "the revert to empty is logged" grep -q "now empty, as created" "$VS_MOUNT_LOG"
vs_check_eq "the truncated file is unchanged" keep "$(pgcat src/keep.txt)"
printf 'rewritten\n' >"$MNT/big.bin"
sync "$MNT/big.bin"
vs_check_eq "rewritten whole, it is committed" rewritten "$(pgcat big.bin)"
vs_check "the refusal is logged" grep -q "past the 1048576-byte limit" "$VS_MOUNT_LOG"

# A write fails after a save that is not committed yet (PostgreSQL
# stopped): the file goes back to that save, the newest, whether the save
# is committed before the revert or after it; not to the bytes before it
# (which the mount then served while PostgreSQL had the save, and a later
# edit was committed on top of them, dropping the save).
printf 'AAAA\n' >"$MNT/src/rv.txt"
sync "$MNT/src/rv.txt"
vs_check "rv.txt committed" committed src/rv.txt AAAA
vs_check "PostgreSQL stopped" vs_pg_stop
printf 'BBBB\n' >"$MNT/src/rv.txt"
rv_journaled() {
	grep -qs "^hash=$(printf 'BBBB\n' | sha256sum | cut -d' ' -f1)\$" \
		"$SMALL/cache/projects/$ID/journal/"[0-9]*
}
vs_check "its save is journaled" vs_poll 10 rv_journaled
# a byte written at 0, then a write past the limit, back to back in one
# process (two commands could leave the quiet period between them, and
# the byte would be saved as the newest save)
expect_errno "a write past the limit after that save is EFBIG" "File too large" \
	perl -e 'open(my $f, "+<", $ARGV[0]) or die "$!\n";
		syswrite($f, "C") == 1 or die "$!\n"; sysseek($f, 2097152, 0);
		defined(syswrite($f, "x")) and exit 0; die "$!\n"' "$MNT/src/rv.txt"
vs_check "PostgreSQL started again" vs_pg_start_again
vs_check "PostgreSQL has the save" vs_poll 30 committed src/rv.txt BBBB
rv_reverted() { [[ "$(cat "$MNT/src/rv.txt" 2>/dev/null)" == BBBB ]]; }
vs_check "the file goes back to its newest save, not to the bytes before it" \
	vs_poll 20 rv_reverted
printf 'EEEE\n' >>"$MNT/src/rv.txt"
sync "$MNT/src/rv.txt"
vs_check_eq "a later edit is committed on top of that save" \
	"$(printf 'BBBB\nEEEE')" "$(pgcat src/rv.txt)"

# ---------------------------------------------------------------- ENOSPC
mkdir "$MNT/full"
expect_errno "a write that fills the cache dir is ENOSPC" "No space left on device" \
	sh -c 'head -c 900000 /dev/urandom >"$1/a.bin" && head -c 900000 /dev/urandom >"$1/b.bin" &&
	       head -c 900000 /dev/urandom >"$1/c.bin" && head -c 900000 /dev/urandom >"$1/d.bin" &&
	       head -c 900000 /dev/urandom >"$1/e.bin" && head -c 900000 /dev/urandom >"$1/f.bin" &&
	       head -c 900000 /dev/urandom >"$1/g.bin" && head -c 900000 /dev/urandom >"$1/h.bin" &&
	       head -c 900000 /dev/urandom >"$1/i.bin" && head -c 900000 /dev/urandom >"$1/j.bin"' _ "$MNT/full"
vs_log "ENOSPC after $(find "$MNT/full" -type f 2>/dev/null | wc -l) files"
# the one whose write failed (a writer's pause may have had a prefix of
# another saved, whole as of that pause: that is the save policy)
failed=$(cd "$MNT" && find full -type f -size -900000c 2>/dev/null | head -n 1)
vs_check "the file whose write failed is shorter on the mount" test -n "$failed"
vs_check "rm -rf of the files on the full volume" rm -rf "$MNT/full"
# the room of removed files returns as their commits end and the kernel
# forgets them (milliseconds; a write in between waits for the commits,
# or fails with ENOSPC if what holds the room is not the cache's)
write_after() { printf 'after\n' >"$MNT/after.txt" 2>/dev/null && sync "$MNT/after.txt" 2>/dev/null; }
vs_check "once space is freed, a write and fsync succeed (within 10 s)" vs_poll 10 write_after
vs_check "and it is committed" committed after.txt after
# no version of the file whose write failed reached PostgreSQL
partial() {
	vs_sql "SELECT file_path || ' v' || version || ': ' || file_size FROM project_files WHERE project_id = '$ID' AND file_path = '$failed' AND kind = 'file' AND NOT is_deleted"
}
vs_check_eq "nothing of the file whose write failed reached PostgreSQL" "" "$(partial)"

# ---------------------------------------------------------------- EINVAL
expect_errno "a name with a newline is EINVAL" "Invalid argument" touch "$MNT/src/bad"$'\n'"name"
expect_errno "a name with a tab is EINVAL (mkdir)" "Invalid argument" mkdir "$MNT/src/bad"$'\t'"dir"
expect_errno "a name that is not UTF-8 is EINVAL" "Invalid argument" touch "$MNT/src/"$'\xff'".js"
expect_errno "a symlink with such a name is EINVAL" "Invalid argument" ln -s keep.txt "$MNT/src/l"$'\n'
# (perl: mv reads rename's EINVAL as "a subdirectory of itself")
expect_errno "a rename to such a name is EINVAL" "Invalid argument" \
	perl -e 'rename($ARGV[0], $ARGV[1]) or die "$!\n"' "$MNT/src/keep.txt" "$MNT/src/k"$'\x01'
vs_check "the renamed file is still there" test -f "$MNT/src/keep.txt"
vs_check "the refusal is logged" grep -q "refusing the name" "$VS_MOUNT_LOG"
vs_check "such names are fine in local-only node_modules/" sh -c \
	'mkdir -p "$1/node_modules" && touch "$1/node_modules/a"$(printf "\\t")"b" "$1/node_modules/"$(printf "\\377")' _ "$MNT"

# ---------------------------------------------------------------- ENAMETOOLONG
long=$(printf 'd%.0s' {1..250})
depth=$(
	cd "$MNT" || exit 1
	for i in $(seq 1 20); do
		mkdir "$long" 2>"$W/deep.err" && cd "$long" || break
	done
	echo "$((i - 1))"
)
vs_check_eq "directories deeper than 4096 bytes of path: refused at depth 17" 16 "$depth"
vs_check "with ENAMETOOLONG" grep -q "File name too long" "$W/deep.err"
vs_check_eq "and no entry left behind" "" "$(cd "$MNT" && for i in $(seq 1 16); do cd "$long" || exit 1; done && ls -A)"

# ---------------------------------------------------------------- long paths are stored
# 16 levels of 243-byte random hex names (3,903 bytes of path, which no
# index entry on the bare path could hold), a file at the bottom, then a
# write and fsync of another file: everything is committed, nothing waits.
hexname() { { echo "a$1" | sha512sum; echo "b$1" | sha512sum; } | tr -dc 0-9a-f | head -c 243; }
deep=src
for ((i = 0; i < 16; i++)); do deep+=/$(hexname "$i"); done
vs_check "16 levels of 243-byte hex names: mkdir -p" mkdir -p "$MNT/$deep"
vs_check "a file at the bottom" sh -c 'echo bottom >"$1"' _ "$MNT/$deep/f.txt"
echo after >"$MNT/src/after.txt"
t0=$(vs_now_ms)
vs_check "fsync of another file afterwards (sync FILE)" sync "$MNT/src/after.txt"
t1=$(vs_now_ms)
vs_check "that fsync did not wait for a deadline ($((t1 - t0)) ms)" test $((t1 - t0)) -lt 5000
vs_check "the file after the long path is committed" vs_poll 10 committed src/after.txt after
vs_check "the file at the bottom of the long path is committed" \
	vs_poll 10 committed "$deep/f.txt" bottom
vs_check "no refusal logged" sh -c '! grep -q "refused for good" "$1"' _ "$VS_MOUNT_LOG"

# ---------------------------------------------------------------- exactly 4096
# A path of exactly 4096 bytes (PostgreSQL's limit) is made and stored; one
# byte more is ENAMETOOLONG. Moving a directory so that a path under it
# would pass 4096 bytes is ENAMETOOLONG too (PostgreSQL would refuse the
# move for good), and moves nothing.
# ("src", 16 levels of 250 bytes: 4019; then a 76-byte name)
edge=src
for ((i = 0; i < 15; i++)); do edge+=/$long; done
edge+=/$(printf 'e%.0s' {1..250})
vs_check_eq "the directory for the 4096-byte paths: 4019 bytes" 4019 "${#edge}"
last76=$(printf 'x%.0s' {1..76})
vs_check "mkdir -p of it" sh -c 'cd "$1" && for c in $(echo "$2" | tr / " "); do mkdir -p "$c" && cd "$c" || exit 1; done' _ "$MNT" "$edge"
vs_check "a file at exactly 4096 bytes of path" sh -c 'cd "$1" && for c in $(echo "$2" | tr / " "); do cd "$c" || exit 1; done && echo edge >"$3"' _ "$MNT" "$edge" "$last76"
expect_errno "one byte more is ENAMETOOLONG" "File name too long" \
	sh -c 'cd "$1" && for c in $(echo "$2" | tr / " "); do cd "$c" || exit 1; done && echo edge >"$3"' _ "$MNT" "$edge" "${last76}y"
vs_check "the 4096-byte path is committed" vs_poll 10 committed "$edge/$last76" edge
mkdir -p "$MNT/src/mv/$long" && echo x >"$MNT/src/mv/$long/f"
expect_errno "moving a directory so a path under it passes 4096 bytes is ENAMETOOLONG" \
	"File name too long" sh -c 'cd "$1" && for c in $(echo "$2" | tr / " "); do cd "$c" || exit 1; done && mv -T "$3" mv' _ "$MNT" "$edge" "$MNT/src/mv"
vs_check "and moves nothing" test -f "$MNT/src/mv/$long/f"
# (the tools comparing the tree with PostgreSQL take absolute paths)
vs_check "rm -rf of the tree with the 4096-byte path" rm -rf "$MNT/src/$long"
vs_check "its removal is committed" vs_poll 10 gone "$edge/$last76"

# ---------------------------------------------------------------- the end
# (far.bin, part.bin and over.bin included: empty on both sides)
equal_tree() { vs_mount_equals_pg l "$MNT"; }
vs_check "the mount equals PostgreSQL" vs_poll 15 equal_tree
vs_umount "$MNT"
vs_summary
