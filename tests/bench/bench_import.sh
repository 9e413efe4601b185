#!/usr/bin/env bash
#
# bench_import.sh - how long `vsyncctl import` and `vsyncctl export` of a
# tree take, beside `cp -a` of the same tree to local disk and PostgreSQL's
# own COPY of the same bytes into a plain table (the cost of moving the
# bytes into the server, with nothing vsync does on top). Not part of ctest.
#
# usage: tests/bench/bench_import.sh [-n FILES] [-d DIR] [-t MS]
#   -n FILES  generate a project of FILES files (default 18290) with
#             bench_coldstart.sh's generator
#   -d DIR    import this tree instead (e.g. a real npm project; imported
#             with --no-default-excludes, so node_modules/ counts)
#   -t MS     vsyncctl --timeout (default: vsyncctl's own default)
#
# One run on a throwaway PostgreSQL (tests/lib/servers.sh): the tree is
# read once to warm the page cache, then timed in turn: cp -a to a local
# directory; COPY of every file's path and bytes (binary format, one row
# a file) into an unlogged table; vsyncctl import into a fresh project;
# vsyncctl export of it into an empty directory, compared with the tree
# (diff -r). Prints one table, the ratios to cp -a, and the target
# (import <= 3 x cp -a + COPY).
# Environment: VSYNC_BUILD_DIR (default build/), VSYNC_CTL (the vsyncctl
# to time, default the build's: e.g. an older build for a before/after),
# VS_KEEP_LOGS=1.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/servers.sh
. "$here/../lib/servers.sh"
# shellcheck source=tests/lib/bench.sh
. "$here/../lib/bench.sh"

NFILES=18290
TREE=
TIMEOUT=()
usage() {
	echo "usage: $0 [-n FILES] [-d DIR] [-t MS]" >&2
	exit 2
}
while getopts 'n:d:t:h' opt; do
	case $opt in
	n) NFILES=$OPTARG ;;
	d) TREE=$OPTARG ;;
	t) TIMEOUT=(--timeout "$OPTARG") ;;
	*) usage ;;
	esac
done
if [[ ! $NFILES =~ ^[0-9]+$ ]] || ((NFILES < 10)); then
	usage
fi
[[ -z $TREE || -d $TREE ]] || usage
CTL_BIN=${VSYNC_CTL:-$VSYNC_BUILD_DIR/agent/vsyncctl}
[[ -x $CTL_BIN ]] || {
	echo "bench_import: $CTL_BIN is missing (build first)" >&2
	exit 1
}
command -v perl >/dev/null || {
	echo "bench_import: perl is needed" >&2
	exit 1
}
vs_deadline 3600

vs_servers_start pg >/dev/null
W=$VS_SERVERS_DIR/work
mkdir -p "$W"
CTL() { "$CTL_BIN" --pg "$VSYNC_PG_URL" "${TIMEOUT[@]}" -q "$@"; }

if [[ -z $TREE ]]; then
	TREE=$W/tree
	"$here/bench_coldstart.sh" --gen "$NFILES" "$TREE"
fi
FILES=$(find "$TREE" \( -type f -o -type l \) | wc -l)
DIRS=$(find "$TREE" -mindepth 1 -type d | wc -l)
BYTES=$(find "$TREE" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
log "tree: $FILES files and symlinks, $DIRS dirs, $((BYTES / 1048576)) MiB"
tar -cf - -C "$TREE" . >/dev/null # page cache warm for every reader

CTL init

t0=$(now_us)
cp -a "$TREE" "$W/copy"
t1=$(now_us)
T_CP=$(secs "$t0" "$t1")
rm -rf "$W/copy"

# COPY (FORMAT binary): header, then per file (path text, bytes bytea).
"$VS_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$VSYNC_PG_URL" \
	-c "CREATE UNLOGGED TABLE bench_copy (path text, content bytea)"
t0=$(now_us)
(cd "$TREE" && find . -type f -print0) | perl -0 -e '
use strict;
use warnings;
binmode STDOUT;
print "PGCOPY\n\xff\r\n\0", pack("NN", 0, 0);
my $root = shift;
local $/ = "\0";
while (my $f = <STDIN>) {
	chomp $f;
	open(my $fh, "<:raw", "$root/$f") or die "$f: $!\n";
	local $/;
	my $b = <$fh> // "";
	close $fh;
	print pack("nN", 2, length $f), $f, pack("N", length $b), $b;
}
print pack("n", 0xffff);
' "$TREE" | "$VS_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$VSYNC_PG_URL" \
	-c "COPY bench_copy FROM STDIN (FORMAT binary)"
t1=$(now_us)
T_COPY=$(secs "$t0" "$t1")

rc=0
t0=$(now_us)
CTL import --no-default-excludes bench "$TREE" || rc=$?
t1=$(now_us)
T_IMP=$(secs "$t0" "$t1")
if ((rc != 0)); then
	log "import failed (exit $rc) after $T_IMP s"
	T_EXP=-
	SAME="-"
else
	t0=$(now_us)
	erc=0
	CTL export bench "$W/export" || erc=$?
	t1=$(now_us)
	T_EXP=$(secs "$t0" "$t1")
	if ((erc != 0)); then
		log "export failed (exit $erc)"
		SAME=NO
	elif diff -r --no-dereference "$TREE" "$W/export" >/dev/null; then
		SAME=yes
	else
		SAME=NO
	fi
fi

TARGET=$(awk -v c="$T_CP" -v p="$T_COPY" 'BEGIN { printf "%.2f", 3 * c + p }')
printf '%-44s %10s %8s\n' "($FILES files, $((BYTES / 1048576)) MiB)" seconds "/cp -a"
printf '%-44s %10s %8s\n' "cp -a of the tree" "$T_CP" 1.00
printf '%-44s %10s %8s\n' "PostgreSQL COPY of the bytes" "$T_COPY" "$(ratio "$T_COPY" "$T_CP")"
printf '%-44s %10s %8s\n' "vsyncctl import (exit $rc)" "$T_IMP" "$(ratio "$T_IMP" "$T_CP")"
R_EXP=-
[[ $T_EXP == - ]] || R_EXP=$(ratio "$T_EXP" "$T_CP")
printf '%-44s %10s %8s\n' "vsyncctl export (tree equal: $SAME)" "$T_EXP" "$R_EXP"
printf '%-44s %10s %8s\n' "target for import: 3 x cp -a + COPY" "$TARGET" "$(ratio "$TARGET" "$T_CP")"
