#!/usr/bin/env bash
#
# test_fsx.sh - random operations on one file (tests/integration/fsx.c)
# checked against fsx's in-memory model, on a writable mount.
#
# Covers, each run with the seed printed (FSX_SEED=N repeats them all):
#   - sanity: fsx on a plain local directory (the exerciser itself);
#   - a synced file of the mount (--writable, imported with content):
#     reads, writes past EOF (holes), mmap reads and writes (MAP_SHARED,
#     msync), ftruncate and truncate(2) up and down, close/reopen and
#     O_TRUNC rewrites, fsync/fdatasync every FSX_FSYNC (100) of FSX_OPS
#     (3000) operations; at each fsync point PostgreSQL (`vsyncctl cat`)
#     must equal the model: fsync returns only once PostgreSQL has the
#     bytes;
#   - a small synced file fsx creates, fsync'd every 8 of 400 operations:
#     saves committed back to back, so our own commits come back through
#     the change feed while newer ones are on the way (they must not be
#     applied over the file: that put old bytes back and orphaned fsx's
#     open inode);
#   - at the end PostgreSQL holds both final models (the sizes it records
#     too), and so does a fresh remount (new cache dir: the bytes come from
#     PostgreSQL);
#   - a local-only path of the mount (node_modules/x/): the same run as the
#     first, each fsync point checked against the file itself; nothing of
#     it reaches PostgreSQL.
#
# Needs /dev/fuse (else exit 77), PostgreSQL (started here).
set -u

# shellcheck source=tests/lib/servers.sh
. "$(dirname "$0")/../lib/servers.sh"

vs_need_fuse
CTL=$VSYNC_BUILD_DIR/agent/vsyncctl
FSX=$VSYNC_BUILD_DIR/tests/fsx
for b in "$CTL" "$FSX"; do
	if [[ ! -x "$b" ]]; then
		echo "test_fsx: $b is missing (build it first)" >&2
		exit 1
	fi
done
: "${FSX_OPS:=3000}"
: "${FSX_FSYNC:=100}"
: "${FSX_SEED:=$(((RANDOM << 15) | RANDOM))}"
vs_deadline 240
vs_pg_fixture || exit 1
vs_log "fsx seed $FSX_SEED (FSX_SEED=$FSX_SEED repeats this run)"

# fsx_check DESC NAME FILE CHECK [FSX ARGS...]: run fsx on FILE (default
# -N FSX_OPS -f FSX_FSYNC; ARGS come after), CHECK run at each fsync point
# with the model's path appended; the model ends in $W/NAME.good, fsx's
# output in $W/NAME.log. A failure shows fsx's report (the op log).
fsx_check() {
	local desc=$1 name=$2 file=$3 check=$4 rc=0
	shift 4
	"$FSX" -N "$FSX_OPS" -f "$FSX_FSYNC" -S "$FSX_SEED" "$@" \
		-g "$W/$name.good" -c "$check" "$file" >"$W/$name.log" 2>&1 ||
		rc=$?
	if ((rc == 0)); then
		vs_pass "$desc"
		grep '^fsx: .* passed' "$W/$name.log" | sed 's/^/# /' >&2
		return 0
	fi
	vs_fail "$desc: fsx exit $rc: $(grep -m 1 'FAILED' "$W/$name.log")"
	sed 's/^/#   /' "$W/$name.log" | head -n 60 >&2
}

# ---------------------------------------------------------------- local
mkdir -p "$W/plain"
fsx_check "fsx on a local directory (sanity)" plain "$W/plain/data.bin" \
	"cmp $W/plain/data.bin"

# ---------------------------------------------------------------- synced
SRC=$W/src
mkdir -p "$SRC/fsx"
printf 'readme\n' >"$SRC/README.md"
head -c 5000 /dev/urandom >"$SRC/fsx/data.bin"
vs_check "init and import" sh -c '"$1" -q init && "$1" -q import w "$2"' _ "$CTL" "$SRC"
ID=$(vs_sql "SELECT vsync_project_id('w')")
MNT=$W/mnt
mkdir -p "$MNT"
vs_mount w "$MNT" --cache-dir "$W/cache" --writable --author fsx || exit 1

# pg_equals PATH GOOD: PostgreSQL has GOOD's bytes at PATH
cat >"$W/pg_equals" <<EOF
#!/bin/sh
"$CTL" cat w "\$1" >"$W/pg.out" && cmp "$W/pg.out" "\$2"
EOF
chmod +x "$W/pg_equals"
fsx_check "fsx on a synced file, PostgreSQL checked at each fsync" synced \
	"$MNT/fsx/data.bin" "$W/pg_equals fsx/data.bin"
fsx_check "fsx on a new small synced file, fsync every 8 ops" small \
	"$MNT/fsx/small.bin" "$W/pg_equals fsx/small.bin" \
	-N 400 -f 8 -l 16k -o 4k

pg_is() {
	"$CTL" cat w "$1" >"$W/pg.final" 2>/dev/null &&
		cmp -s "$W/pg.final" "$2"
}
for f in data small; do
	[[ $f == data ]] && good=$W/synced.good || good=$W/small.good
	vs_check "PostgreSQL holds the final model of fsx/$f.bin" \
		vs_poll 15 pg_is "fsx/$f.bin" "$good"
	vs_check_eq "the size PostgreSQL records for fsx/$f.bin is the model's" \
		"$(stat -c %s "$good")" \
		"$(vs_sql "SELECT file_size FROM project_files WHERE project_id = '$ID' AND file_path = 'fsx/$f.bin' AND is_current")"
done

# ---------------------------------------------------------------- local-only
mkdir -p "$MNT/node_modules/x"
fsx_check "fsx on a local-only path of the mount (node_modules/x)" \
	localonly "$MNT/node_modules/x/data.bin" \
	"cmp $MNT/node_modules/x/data.bin"
vs_check "the local-only file is not in PostgreSQL" \
	sh -c '! "$1" cat w node_modules/x/data.bin >/dev/null 2>&1' _ "$CTL"
vs_check_eq "no node_modules path in project_files" 0 \
	"$(vs_sql "SELECT count(*) FROM project_files WHERE project_id = '$ID' AND file_path LIKE 'node_modules%'")"

# ---------------------------------------------------------------- remount
vs_umount "$MNT"
vs_mount w "$MNT" --cache-dir "$W/cache2" || exit 1
vs_check "a fresh remount (new cache dir) reads the final model" \
	cmp "$MNT/fsx/data.bin" "$W/synced.good"
vs_check "and the small file's" cmp "$MNT/fsx/small.bin" "$W/small.good"
vs_umount "$MNT"

vs_summary
