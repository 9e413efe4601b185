#!/usr/bin/env bash
#
# bench_memory.sh - the memory of one vsync-mount serving a large project
# (DESIGN.md §7: agent memory, 50,000-file project, <= 30 MB RSS). Not
# part of ctest.
#
# usage: tests/bench/bench_memory.sh [-n FILES]
#
#   -n FILES   generated source files (tests/integration/gen_tree.sh -n,
#              no large file; default 50000)
#
# One throwaway PostgreSQL; the tree is imported (vsyncctl import) and
# mounted --writable in PostgreSQL-only mode. The daemon's memory is read
# from /proc/PID/status at four points:
#   mounted     the mount is ready (every entry's metadata loaded)
#   walked      after `find` of the whole tree (every entry looked up by
#               the kernel)
#   read        after every file was read once (content fetched, the
#               prefetch done)
#   peak        VmHWM at the end: the most it ever held
# VmRSS is RssAnon (the daemon's own heap and stacks) + RssFile (the
# pages of its binary and shared libraries it touched, shared with any
# other process mapping them) + RssShmem. Beside each, RssAnon per entry
# of the tree. A local directory has no daemon: there is no ratio to
# print; the target is printed instead.
# Environment: VSYNC_BUILD_DIR (default build/), VS_KEEP_LOGS=1.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/servers.sh
. "$here/../lib/servers.sh"
# shellcheck source=tests/lib/bench.sh
. "$here/../lib/bench.sh"

FILES=50000
usage() {
	echo "usage: $0 [-n FILES]" >&2
	exit 2
}
while getopts 'n:h' opt; do
	case $opt in
	n) FILES=$OPTARG ;;
	*) usage ;;
	esac
done
[[ $FILES =~ ^[0-9]+$ ]] || usage

vs_need_fuse
CTL=$VSYNC_BUILD_DIR/agent/vsyncctl
vs_deadline 1800
vs_pg_fixture || exit 1
W=$VS_SERVERS_DIR
SRC=$W/src
MNT=$W/mnt

log "generating $FILES files"
bash "$here/../integration/gen_tree.sh" -n "$FILES" -b 0 "$SRC" >&2
log "importing"
"$CTL" -q init
"$CTL" -q import m "$SRC"
entries=$(vs_sql "SELECT count(*) FROM project_files WHERE project_id = vsync_project_id('m') AND is_current AND NOT is_deleted")
mkdir -p "$MNT"
vs_mount m "$MNT" --writable --author bench || exit 1
pid=$VS_MOUNT_PID

# field NAME: its kB in /proc/$pid/status
field() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$pid/status"; }
row() {
	local anon file shmem rss
	anon=$(field RssAnon)
	file=$(field RssFile)
	shmem=$(field RssShmem)
	rss=$(field VmRSS)
	printf '%-10s %9.1f %9.1f %9.1f %9.1f %12.0f\n' "$1" \
		"$(bc -l <<<"$rss / 1024")" "$(bc -l <<<"$anon / 1024")" \
		"$(bc -l <<<"$file / 1024")" "$(bc -l <<<"$shmem / 1024")" \
		"$(bc -l <<<"$anon * 1024 / $entries")"
}

printf '# %s entries (files, directories, symlinks) in PostgreSQL; the mount in --writable, PostgreSQL-only mode\n' "$entries"
printf '%-10s %9s %9s %9s %9s %12s\n' point "VmRSS MB" "anon MB" "file MB" "shmem MB" "anon B/entry"
row mounted
find "$MNT" >/dev/null
row walked
find "$MNT" -type f -exec cat {} + >/dev/null
row read
printf '%-10s %9.1f   (VmHWM)\n' peak "$(bc -l <<<"$(field VmHWM) / 1024")"
printf '\ntarget (DESIGN.md §7): <= 30 MB RSS for a 50,000-file project\n'
vs_umount "$MNT"
