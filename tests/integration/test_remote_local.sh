#!/usr/bin/env bash
#
# test_remote_local.sh - a synced directory removed or renamed by a remote
# change takes its local entries with it, as rm -r and mv do on a disk.
#
# A --writable mount (PostgreSQL only) of a project with app/sub/a.js.
# Local entries are made in the synced directory app/sub: a local-only
# node_modules/ tree and a FIFO (kept in the cache dir's upper layer, never
# synced). Then, each checked on the mount and in the upper layer:
#  - vsyncctl mv app/sub app/moved: node_modules/ and the FIFO are in
#    app/moved, nothing is left at app/sub;
#  - vsyncctl rm -r app/moved: the directory and its local entries are
#    gone, from the mount and from the cache dir; a new app/moved (vsyncctl
#    mkdir) is empty;
#  - leftovers of a directory removed while the mount was down (put in the
#    upper layer by hand, as an older vsync left them) never turn up in a
#    directory made later at that path, by a local mkdir or a remote one.
#
# Needs /dev/fuse (else exit 77); starts PostgreSQL.
set -u

# shellcheck source=tests/lib/servers.sh
. "$(dirname "$0")/../lib/servers.sh"

vs_need_fuse
CTL=$VSYNC_BUILD_DIR/agent/vsyncctl
vs_deadline 180
vs_pg_fixture || exit 1

SRC=$W/src
mkdir -p "$SRC/app/sub"
echo "export const a = 1;" >"$SRC/app/sub/a.js"
vs_check "init and import" sh -c '"$1" -q init && "$1" -q import rl "$2"' _ "$CTL" "$SRC"
ID=$(vs_sql "SELECT id FROM projects WHERE name = 'rl'")
UPPER=$W/cache/projects/$ID/local
MNT=$W/mnt
mkdir -p "$MNT"

mount_rl() {
	vs_mount rl "$MNT" --cache-dir "$W/cache" --writable || {
		vs_fail "mount"
		vs_summary
		exit 1
	}
}
mount_rl
mkdir -p "$MNT/app/sub/node_modules/x"
echo "module.exports = 1;" >"$MNT/app/sub/node_modules/x/index.js"
mkfifo "$MNT/app/sub/pipe"
vs_check "the local entries are in the upper layer" \
	test -f "$UPPER/app/sub/node_modules/x/index.js" -a -p "$UPPER/app/sub/pipe"

# a remote rename moves them along
vs_check "vsyncctl mv app/sub app/moved" "$CTL" -q mv rl app/sub app/moved
vs_check "the mount has app/moved/a.js" vs_poll 10 test -f "$MNT/app/moved/a.js"
# (the local entries follow the synced directory's rename or removal at
# once, but not atomically with it: poll)
vs_check "node_modules moved along" vs_poll 10 test -f "$MNT/app/moved/node_modules/x/index.js"
vs_check "the FIFO moved along" vs_poll 10 test -p "$MNT/app/moved/pipe"
vs_check "nothing is left at app/sub" vs_poll 10 test ! -e "$MNT/app/sub" -a ! -e "$UPPER/app/sub"
vs_check_eq "the upper layer has them at app/moved" "index.js pipe" \
	"$(cd "$UPPER/app/moved" && echo "$(basename node_modules/x/*) pipe")"

# a remote removal takes them
vs_check "vsyncctl rm -r app/moved" "$CTL" -q rm -r rl app/moved
vs_check "app/moved is gone from the mount" vs_poll 10 test ! -e "$MNT/app/moved"
vs_check "and from the upper layer, local entries and all" vs_poll 10 test ! -e "$UPPER/app/moved"
vs_check "vsyncctl mkdir app/moved" "$CTL" -q mkdir rl app/moved
vs_check "the mount has app/moved again" vs_poll 10 test -d "$MNT/app/moved"
vs_check_eq "and it is empty" "" "$(ls -A "$MNT/app/moved")"
vs_check "the local app/ is listed as PostgreSQL has it" test "$(ls -A "$MNT/app")" = moved

# leftovers from an older session never turn up in a new directory
vs_umount "$MNT"
mkdir -p "$UPPER/app/old/node_modules/y" "$UPPER/app/older/node_modules/z"
mkfifo "$UPPER/app/old/stale"
mount_rl
vs_check "leftovers are not listed" test "$(ls -A "$MNT/app")" = moved
vs_check "a local mkdir app/old" mkdir "$MNT/app/old"
vs_check_eq "is empty" "" "$(ls -A "$MNT/app/old")"
vs_check "the upper layer has no leftover there" test ! -e "$UPPER/app/old/node_modules" -a ! -e "$UPPER/app/old/stale"
vs_check "vsyncctl mkdir app/older" "$CTL" -q mkdir rl app/older
vs_check "the mount has app/older" vs_poll 10 test -d "$MNT/app/older"
vs_check_eq "and it is empty" "" "$(ls -A "$MNT/app/older")"
vs_check "the upper layer has no leftover there" test ! -e "$UPPER/app/older/node_modules"
vs_check "app/old reaches PostgreSQL" vs_poll 10 sh -c '"$1" ls rl app | grep -q "app/old$"' _ "$CTL"
vs_umount "$MNT"
vs_summary
