#!/usr/bin/env bash
#
# test_no_open.sh - vsync-mount --open-mode=none: the kernel is told OPEN
# and OPENDIR are not implemented, so it sends no OPEN, RELEASE, OPENDIR,
# RELEASEDIR or FLUSH, keeps pages and listings itself, and every READ,
# WRITE, SETATTR and READDIR comes without a file handle.
#
# Covers, on one mount (PostgreSQL only, --save-quiet-ms 50):
#  - reads of synced files (content fetched by the first read), a listing
#    and a symlink;
#  - open(O_TRUNC) truncates (the FUSE_CAP_ATOMIC_O_TRUNC trap of
#    ../shared/notes/kernel-caching.md) on a synced and on a local-only
#    path, and the synced file is committed as the bytes written after
#    the truncation, never empty;
#  - local-only files written, appended to and read with no handle;
#  - a file written and kept open is committed once quiet (no close);
#  - a file truncated by open(O_TRUNC) and then written is saved after
#    the quiet period, while one only truncated waits its second (a
#    truncation's 1 s wait once held the saver asleep for the file
#    written after it too), and so is a file appended to meanwhile;
#  - fsync() returns once PostgreSQL has the bytes;
#  - a name looked up while missing (a cached negative entry) is found once
#    a remote commit creates it; a warm reader of a file sees the bytes
#    and size of a remote edit, and a warm listing sees remote creations
#    and deletions, as soon as the watcher's event for them has come;
#  - the mount's log: no OPEN or OPENDIR after the first of each (-d).
# Then the same cache dir mounted with --open-mode=kernel (the kernel
# opens and releases files): reads, open(O_TRUNC) truncating, a save at
# the last close committed, and the OPENs in its log. Then no-open mode
# again with a daemon that is not root: a local-only file created 0444
# is written through its descriptor, and a read-only file read, made
# writable and written (EACCES both, before).
#
# Needs /dev/fuse (else exit 77), PostgreSQL (started here).
set -u

# shellcheck source=tests/lib/servers.sh
. "$(dirname "$0")/../lib/servers.sh"

vs_need_fuse
CTL=$VSYNC_BUILD_DIR/agent/vsyncctl
vs_deadline 240
vs_pg_fixture || exit 1
ctl() { "$CTL" -q "$@"; }
pgcat() { "$CTL" cat n "$1" 2>/dev/null; }
committed() { [[ "$(pgcat "$1")" == "$2" ]]; }

SRC=$W/src
mkdir -p "$SRC/src" "$SRC/docs"
printf 'hello world\n' >"$SRC/src/a.txt"
printf 'export const x = 1;\n' >"$SRC/src/m.js"
printf 'readme\n' >"$SRC/docs/README.md"
printf 'one\n' >"$SRC/docs/t1.txt"
printf 'two\n' >"$SRC/docs/t2.txt"
printf 'three\n' >"$SRC/docs/t3.txt"
ln -s src/a.txt "$SRC/link"
vs_check "init and import" sh -c '"$1" -q init && "$1" -q import n "$2"' _ "$CTL" "$SRC"

MNT=$W/mnt
mkdir -p "$MNT"
vs_mount n "$MNT" --cache-dir "$W/cache" --open-mode=none --save-quiet-ms 50 -d || exit 1

# ---------------------------------------------------------------- reads
vs_check_eq "a synced file reads (fetched by its first read)" 'hello world' "$(cat "$MNT/src/a.txt")"
vs_check_eq "a listing" 'a.txt m.js' "$(ls "$MNT/src" | tr '\n' ' ' | sed 's/ $//')"
vs_check_eq "a symlink" 'hello world' "$(cat "$MNT/link")"

# ---------------------------------------------------------------- O_TRUNC
printf 'x' >"$MNT/src/a.txt"
vs_check_eq "open(O_TRUNC) truncates a synced file" 'x' "$(cat "$MNT/src/a.txt")"
vs_check_eq "its size" 1 "$(stat -c %s "$MNT/src/a.txt")"
vs_check "it is committed as written after the truncation" vs_poll 10 committed src/a.txt x
vs_check_eq "no empty version in between" '' \
	"$(vs_sql "SELECT string_agg(version::text, ',') FROM project_files f JOIN projects p ON p.id = f.project_id WHERE p.name = 'n' AND f.file_path = 'src/a.txt' AND f.file_size = 0")"

mkdir -p "$MNT/node_modules/pkg"
printf 'hello world\n' >"$MNT/node_modules/pkg/f"
printf 'x' >"$MNT/node_modules/pkg/f"
vs_check_eq "open(O_TRUNC) truncates a local-only file" 'x' "$(cat "$MNT/node_modules/pkg/f")"
printf 'y\n' >>"$MNT/node_modules/pkg/f"
vs_check_eq "an append to a local-only file" 'xy' "$(cat "$MNT/node_modules/pkg/f")"
ID=$(vs_sql "SELECT vsync_project_id('n')")
vs_check_eq "the local-only file in the upper layer" 'xy' \
	"$(cat "$W/cache/projects/$ID/local/node_modules/pkg/f")"
vs_check "local-only stays local" sh -c '! "$1" -q cat n node_modules/pkg/f >/dev/null 2>&1' _ "$CTL"

# ---------------------------------------------------------------- saves
exec 7>"$MNT/docs/open.txt"
printf 'kept open\n' >&7
vs_check "a file kept open is committed once quiet" vs_poll 10 committed docs/open.txt 'kept open'
exec 7>&-

# t1 left empty (saved after 1 s); t2 truncated, then written at once:
# saved after the quiet period, so committed while t1 still waits
: >"$MNT/docs/t1.txt"
printf 'rewritten\n' >"$MNT/docs/t2.txt"
vs_check "a file written after its truncation is committed once quiet" \
	vs_poll 10 committed docs/t2.txt rewritten
vs_check_eq "meanwhile a file left empty still waits its second" one "$(pgcat docs/t1.txt)"
vs_check "and is committed (empty) after it" vs_poll 10 committed docs/t1.txt ''
# t3 left empty; t2 appended to while t3 waits: saved once quiet too
: >"$MNT/docs/t3.txt"
printf 'more\n' >>"$MNT/docs/t2.txt"
vs_check "a file appended to while another waits its second is committed once quiet" \
	vs_poll 10 committed docs/t2.txt $'rewritten\nmore'
vs_check_eq "meanwhile the other still waits" three "$(pgcat docs/t3.txt)"
vs_check "and is committed after it" vs_poll 10 committed docs/t3.txt ''

fsync_saves() {
	printf 'synced\n' >"$MNT/docs/fsync.txt" && vs_fsync "$MNT/docs/fsync.txt" &&
		[ "$("$CTL" -q cat n docs/fsync.txt)" = synced ]
}
vs_check "fsync returns once PostgreSQL has the bytes" fsync_saves

# ------------------------------------------------------- remote changes
put() { printf '%s' "$2" >"$W/put.tmp" && ctl put n "$1" "$W/put.tmp"; }
vs_check "a missing name is ENOENT (a negative entry cached)" sh -c '! stat "$1" 2>/dev/null' _ "$MNT/src/new.js"
put src/new.js 'export const y = 2;'
vs_check "the name appears once created remotely" vs_poll 10 test -e "$MNT/src/new.js"
vs_check_eq "with its bytes" 'export const y = 2;' "$(cat "$MNT/src/new.js")"
vs_check_eq "a warm listing shows it" 'a.txt m.js new.js' "$(ls "$MNT/src" | tr '\n' ' ' | sed 's/ $//')"

cat "$MNT/src/m.js" >/dev/null
put src/m.js 'export const x = 1234567;'
vs_check "a warm reader sees the remote edit" vs_poll 10 sh -c '[ "$(cat "$1")" = "export const x = 1234567;" ]' _ "$MNT/src/m.js"
vs_check_eq "and its size" 25 "$(stat -c %s "$MNT/src/m.js")"

ctl rm n src/new.js
vs_check "a warm listing loses a remote deletion" vs_poll 10 sh -c '[ "$(ls "$1" | tr "\n" " ")" = "a.txt m.js " ]' _ "$MNT/src"

# ---------------------------------------------------------------- requests
opens=$(grep -c 'opcode: OPEN (' "$VS_MOUNT_LOG" || true)
opendirs=$(grep -c 'opcode: OPENDIR (' "$VS_MOUNT_LOG" || true)
releases=$(grep -c 'opcode: RELEASE (' "$VS_MOUNT_LOG" || true)
vs_check "at most one OPEN and one OPENDIR (ENOSYS), and no RELEASE of them" \
	test "$opens" -le 1 -a "$opendirs" -le 1 -a "$releases" -le 1

vs_umount "$MNT"

# ---------------------------------------------------------------- kernel
vs_mount n "$MNT" --cache-dir "$W/cache" --open-mode=kernel -d || exit 1
vs_check_eq "kernel mode: a synced file reads" 'readme' "$(cat "$MNT/docs/README.md")"
printf 'k' >"$MNT/src/a.txt"
vs_check_eq "kernel mode: open(O_TRUNC) truncates" 'k' "$(cat "$MNT/src/a.txt")"
vs_check "kernel mode: it is committed" vs_poll 10 committed src/a.txt k
opens=$(grep -c 'opcode: OPEN (' "$VS_MOUNT_LOG" || true)
vs_check "kernel mode: the kernel sends OPEN" test "$opens" -ge 2
vs_umount "$MNT"

# A daemon that is not root (the container's entrypoint drops to
# VSYNC_USER; here root without CAP_DAC_OVERRIDE stands in for it), in
# no-open mode: a local-only file created read-only and written through
# the same descriptor (cp, tar, node-tar with a 0444 entry), and one
# read while read-only, then made writable and written.
VS_MOUNT_WRAP=(setpriv --bounding-set -dac_override,-dac_read_search)
vs_mount n "$MNT" --cache-dir "$W/cache" --open-mode=none || exit 1
VS_MOUNT_WRAP=()
mkdir -p "$MNT/node_modules/ro"
vs_check "not root: a file created 0444 is written through its descriptor" \
	sh -c 'umask 0222 && printf "data\n" >"$1"' _ "$MNT/node_modules/ro/f"
vs_check_eq "not root: and it has the bytes" "data" "$(cat "$MNT/node_modules/ro/f" 2>&1)"
# (made read-only in the upper layer, as an earlier mount left it: the
# mount's first open of it is then for reading only)
printf 'q\n' >"$W/cache/projects/$ID/local/node_modules/ro/q"
chmod 0444 "$W/cache/projects/$ID/local/node_modules/ro/q"
vs_check_eq "not root: a read-only file reads" "q" "$(cat "$MNT/node_modules/ro/q" 2>&1)"
chmod 0644 "$MNT/node_modules/ro/q"
vs_check "not root: made writable again, it is written" \
	sh -c 'printf "more\n" >>"$1"' _ "$MNT/node_modules/ro/q"
vs_check_eq "not root: with the bytes appended" "$(printf 'q\nmore')" \
	"$(cat "$MNT/node_modules/ro/q" 2>&1)"
vs_umount "$MNT"
vs_summary
