#!/usr/bin/env bash
#
# test_posix.sh - POSIX conformance of a --writable mount: the cases of
# posix_conf.c, run first on a plain local directory (they must pass there:
# the expectations are POSIX, not vsync's), then on a synced directory and
# on a local-only one (node_modules/) of the mount.
#
# Covers: create (mode minus umask, O_CREAT on an existing file), O_EXCL on
# an existing name (EEXIST), writes at any offset, pwrite past EOF (a hole
# of zeros), O_APPEND from two descriptors, truncate and ftruncate (shrink,
# grow, EISDIR/ENOENT/EINVAL/ENOTDIR, EINVAL or EBADF on a read-only fd),
# unlink (ENOENT, EISDIR, ENOTDIR) and unlink of an open file (readable and
# writable through its descriptor, st_nlink 0), mkdir (EEXIST, ENOTDIR
# under a file, ENOENT), rmdir (ENOTEMPTY, ENOENT, ENOTDIR, EINVAL), rename
# of files and directories (to a new name, over an existing file while a
# descriptor holds it, across directories, a directory over an empty one,
# to itself) and its refusals (a directory over a non-empty one ENOTEMPTY,
# a file over a directory EISDIR, a directory over a file ENOTDIR, into
# itself EINVAL, ENOENT), chmod and fchmod, utimensat with both times, each
# alone, UTIME_NOW, UTIME_OMIT, NULL and futimens, a write and a truncate
# moving mtime, symlink and readlink (EEXIST, EINVAL), fsync and fdatasync
# (also of a read-only fd and of a directory), statvfs, hard links (POSIX
# semantics in node_modules/, refused with EPERM on synced paths), 256-byte
# names (ENAMETOOLONG; 255 bytes work), ENOTDIR through a file and EISDIR
# for a directory opened for writing, readdir (exact entries and d_type),
# three editors' saves: temp + fsync + rename over, vim's backup~
# rename + new file + unlink, and write in place with O_TRUNC; and shared
# writable mmap (stores through MAP_SHARED, in a part grown by ftruncate
# and through a mapping that outlives its descriptor, then msync and
# fsync: read(2) and a fresh mapping see them, and on a synced path
# `vsyncctl cat` has them right after the fsync).
# The cases run only when named - 255-byte names at every level of a path
# of about 4,000 bytes (and past PATH_MAX with *at() calls), the top of it
# renamed; FIFOs (mkfifo, mknod), a unix socket bound, connected to and
# renamed; a character device (mknod as root; opened unless the file
# system is nodev) - run on the plain directory and on the local-only one
# (synced paths take neither yet).
# The cross cases: renames (files, directories, over an existing file) and
# hard links between a synced and a local-only directory are EXDEV and
# leave both sides intact - checked first between two
# local file systems (/tmp and /dev/shm) for the same reason as above.
# Afterwards PostgreSQL equals the mount for everything the cases left in
# the synced directory (kinds, file bytes and modes, symlink targets), and
# nothing of the local-only run reached PostgreSQL, and no save of the
# cases was committed as a conflict (each is based on the version before);
# a change made elsewhere afterwards still reaches the mount.
# Ownership (chown, lchown, fchown; a non-root owner's chmod and chgrp;
# EPERM for the rest, as another user on a remount with allow_other),
# FIFOs, unix sockets and device nodes (kept local on synced paths: never
# in PostgreSQL), 15 levels of 243-byte names with a 255-byte file (a
# 3,915-byte path, compared with PostgreSQL); after a remount the owners,
# a directory's mode, the FIFO and the deep file are still there.
#
# Needs /dev/fuse (else exit 77), PostgreSQL (started here).

# The sh -c snippets take their arguments as $1...: single quotes are meant.
# shellcheck disable=SC2016
set -u

# shellcheck source=tests/lib/servers.sh
. "$(dirname "$0")/../lib/servers.sh"

vs_need_fuse
CTL=$VSYNC_BUILD_DIR/agent/vsyncctl
CONF=$VSYNC_BUILD_DIR/tests/posix_conf
if [[ ! -x "$CONF" ]]; then
	echo "test_posix: $CONF is missing (build first)" >&2
	exit 1
fi
vs_deadline 300
vs_pg_fixture || exit 1

# Run posix_conf with ARGS; each of its lines becomes a check named
# "LABEL: CASE". Fails (1) if it exited non-zero.
conf() {
	local label=$1 line out rc=0
	shift
	out=$("$CONF" "$@" 2>&1) || rc=$?
	while IFS= read -r line; do
		case $line in
		"ok "*) vs_pass "$label: ${line#ok }" ;;
		"FAIL "*) vs_fail "$label: ${line#FAIL }" ;;
		?*) vs_fail "$label: unexpected output: $line" ;;
		esac
	done <<<"$out"
	((rc == 0)) || vs_fail "$label: posix_conf exited $rc"
	CONF_OUT=$out
	return "$rc"
}

# ---------------------------------------------------------------- local
# The same cases on plain directories: the expectations are POSIX.
mkdir -p "$W/local" "$W/cross"
conf "local dir" "$W/local"
NAMED=(long_path_at fifo socket mknod_dev)
conf "local dir" "$W/local" "${NAMED[@]}"
SHM=$(mktemp -d /dev/shm/vsync-posix.XXXXXX) && vs_on_exit rm -rf "$SHM"
if [[ -n "$SHM" ]]; then
	conf "local /tmp <-> /dev/shm" -x "$W/cross" "$SHM"
fi

# ---------------------------------------------------------------- mount
SRC=$W/src
mkdir -p "$SRC/src"
printf 'readme\n' >"$SRC/README.md"
printf 'a\n' >"$SRC/src/a.js"
vs_check "init and import" sh -c '"$1" -q init && "$1" -q import w "$2"' _ "$CTL" "$SRC"
MNT=$W/mnt
mkdir -p "$MNT"
vs_mount w "$MNT" --cache-dir "$W/cache" --writable --author posix || exit 1

mkdir "$MNT/conf" "$MNT/cross" && mkdir -p "$MNT/node_modules/conf" "$MNT/node_modules/cross"
conf "synced dir" "$MNT/conf"
vs_check "synced dir: hard links are refused with EPERM" grep -qx 'ok link (refused: EPERM)' <<<"$CONF_OUT"
# Shared writable mmap on a synced path: the case's fsync returned, so
# PostgreSQL has what was stored through the mappings at once (no poll),
# byte for byte what the same case left on the plain directory.
mkdir "$MNT/mmap"
conf "synced dir, mmap alone" "$MNT/mmap" mmap_shared
vs_check "mmap_shared: PostgreSQL has the mapped writes right after fsync (vsyncctl cat)" \
	sh -c '"$1" cat w mmap/mmap_shared/mapped.bin | cmp - "$2"' _ "$CTL" "$W/local/mmap_shared/mapped.bin"
conf "local-only dir" "$MNT/node_modules/conf"
vs_check "local-only dir: hard links work" grep -qx 'ok link' <<<"$CONF_OUT"
conf "local-only dir" "$MNT/node_modules/conf" "${NAMED[@]}"
conf "synced <-> local-only" -x "$MNT/cross" "$MNT/node_modules/cross"
# RENAME_EXCHANGE (renameat2) of a local-only entry with a FIFO in a
# synced directory: the entry would take the FIFO's synced name, where no
# listing shows it. EXDEV, as between a local-only and a synced path.
mkdir -p "$MNT/xchg/node_modules"
printf 'kept\n' >"$MNT/xchg/node_modules/f"
mkfifo "$MNT/xchg/p"
exchange() {
	perl -e 'require "syscall.ph";
		print syscall(&SYS_renameat2, -100, $ARGV[0], -100, $ARGV[1], 2) == 0
			? "exchanged" : "$!"' "$1" "$2"
}
vs_check_eq "RENAME_EXCHANGE of a local-only dir with a FIFO: EXDEV" \
	"Invalid cross-device link" "$(exchange "$MNT/xchg/node_modules" "$MNT/xchg/p")"
vs_check_eq "RENAME_EXCHANGE of the FIFO with the local-only dir: EXDEV" \
	"Invalid cross-device link" "$(exchange "$MNT/xchg/p" "$MNT/xchg/node_modules")"
vs_check "both stay where they were, listed" sh -c \
	'test "$(ls "$1")" = "$(printf "node_modules\np")" && test "$(cat "$1/node_modules/f")" = kept && test -p "$1/p"' \
	_ "$MNT/xchg"
rm -rf "$MNT/xchg"

# ---------------------------------------------------------------- PostgreSQL
# One line per entry under DIR: kind and path; a file's mode and sha256; a
# symlink's target. Directory modes and times are local only.
listing() {
	(
		cd "$1" || exit 1
		find . -mindepth 1 \( -type d -printf 'd %P\n' \) -o \
			\( -type l -printf 'l %P -> %l\n' \) -o \
			\( -type f -printf 'f %P %m\n' \)
		find . -type f -print0 | xargs -0r sha256sum
	) | LC_ALL=C sort
}
EXP=$W/export
pg_equals_mount() {
	rm -rf "$EXP" && mkdir "$EXP" &&
		"$CTL" -q export w "$EXP" >/dev/null 2>&1 &&
		[[ "$(listing "$MNT/conf")" == "$(listing "$EXP/conf")" ]] &&
		[[ "$(listing "$MNT/cross")" == "$(listing "$EXP/cross")" ]]
}
if vs_poll 20 pg_equals_mount; then
	vs_pass "PostgreSQL equals the mount for what the cases left"
else
	vs_fail "PostgreSQL equals the mount for what the cases left: diff (< mount, > PostgreSQL): $(diff <(listing "$MNT/conf" && listing "$MNT/cross") <(listing "$EXP/conf" && listing "$EXP/cross") 2>&1 | head -n 20)"
fi
vs_check "nothing of node_modules/ reached PostgreSQL" test ! -e "$EXP/node_modules"
# saves chained after renames are based on the right versions
vs_check_eq "no change of the cases was committed as a conflict" 0 \
	"$(vs_sql "SELECT count(*) FROM file_operations WHERE project_id = vsync_project_id('w') AND operation_data ? 'conflict'")"

# a change made elsewhere still reaches the mount (only our own are
# skipped when they come back)
printf 'from elsewhere\n' | "$CTL" -q --author elsewhere put w conf/remote.txt -
vs_check "a change made elsewhere reaches the mount" \
	vs_poll 10 grep -qx 'from elsewhere' "$MNT/conf/remote.txt"

# special nodes stay local: PostgreSQL has the file the case left, not
# the FIFO, nor the file a FIFO was renamed over
pgcat() { "$CTL" cat w "$1" 2>/dev/null; }
vs_check_eq "special: the file renamed over a FIFO is in PostgreSQL" regular \
	"$(pgcat conf/special/p2)"
vs_check "special: no FIFO reached PostgreSQL" sh -c '! "$1" cat w conf/special/keep >/dev/null 2>&1' _ "$CTL"
vs_check "special: a file a FIFO replaced left PostgreSQL" \
	vs_poll 10 sh -c '! "$1" cat w conf/special/f >/dev/null 2>&1' _ "$CTL"
DEEP=$(cd "$MNT/conf/long_path" && find . -type f -printf '%P\n')
vs_check_eq "long_path: the 3,915-byte path is in PostgreSQL" deeper \
	"$(pgcat "conf/long_path/$DEEP")"

# ---------------------------------------------------------------- remount
# Owners (local metadata in the cache dir) and special nodes (in the upper
# layer) are kept across a remount; this time with -o allow_other, so that
# another user reaches the mount and the owner checks are the kernel's.
vs_umount "$MNT"
vs_mount w "$MNT" --cache-dir "$W/cache" --writable --author posix -o allow_other || exit 1
vs_check_eq "after a remount: the owner and mode of a chown'd file" "1234:42 640" \
	"$(stat -c '%u:%g %a' "$MNT/conf/chown/g")"
vs_check_eq "after a remount: the owner of a chown'd directory" 3456:3456 \
	"$(stat -c '%u:%g' "$MNT/conf/chown/d")"
vs_check_eq "after a remount: the owner of an lchown'd symlink" 2345:6789 \
	"$(stat -c '%u:%g' "$MNT/conf/chown/l")"
vs_check_eq "after a remount: a file root kept" 0:0 \
	"$(stat -c '%u:%g' "$MNT/conf/chown/h")"
vs_check_eq "after a remount: the mode of a chmod'd directory (kept locally)" 700 \
	"$(stat -c '%a' "$MNT/conf/chmod/d")"
vs_check "after a remount: the FIFO is still there" test -p "$MNT/conf/special/keep"
vs_check "after a remount: listed" sh -c 'ls "$1" | grep -qx keep' _ "$MNT/conf/special"
vs_check "after a remount: removed" rm "$MNT/conf/special/keep"
vs_check_eq "after a remount: the deep file" deeper \
	"$(cat "$MNT/conf/long_path/$DEEP")"
mkdir "$MNT/other"
conf "synced dir, allow_other" "$MNT/other" chown special
vs_check "synced dir, allow_other: another user was checked" grep -qx 'ok chown' <<<"$CONF_OUT"
mkdir -p "$MNT/node_modules/other"
conf "local-only dir, allow_other" "$MNT/node_modules/other" chown special

vs_umount "$MNT"
vs_summary
