#!/usr/bin/env bash
#
# test_push_race.sh - a local write that lands between a pushed edit's
# rename and the push of its pages is what the file reads afterwards.
#
# A remote edit is applied as an atomic save: the new inode is renamed
# over the name, then its bytes are pushed into the kernel's page cache
# (fuse_lowlevel_notify_store). A process that writes the file in
# between writes the new inode's pages; the push, which comes after,
# must not leave the remote bytes over them, even once the kernel has
# the file's attributes after the write (so no change of mtime tells it
# to drop its pages later). The window is made wide and exact with gdb:
# the updater thread is held at push_pages (in calls of usleep) while the
# FUSE threads go on; the local change is made
# and the file stat'ed, then the updater goes on. For an in-place write
# of the whole file and for a truncation to nothing:
#   - once the change is applied (vsync_applied_seq), the file reads what
#     the local change left, not the remote bytes;
#   - the local change is saved: PostgreSQL ends up with it, and the
#     mount equals PostgreSQL.
#
# Needs /dev/fuse (else exit 77), gdb and ptrace of the mount (else exit
# 77), PostgreSQL (started here).
set -u

# shellcheck source=tests/lib/servers.sh
. "$(dirname "$0")/../lib/servers.sh"

vs_need_fuse
vs_need_cmd gdb "Debian package gdb: it stops vsync-mount at its page push"
CTL=$VSYNC_BUILD_DIR/agent/vsyncctl
vs_deadline 180
vs_pg_fixture || exit 1

SRC=$W/src
mkdir -p "$SRC/src"
head -c 4096 /dev/zero | tr '\0' a >"$SRC/src/f.txt"
vs_check "init and import" sh -c '"$1" -q init && "$1" -q import pr "$2"' _ "$CTL" "$SRC"
ctl() { timeout -k 5 60 "$CTL" -q "$@"; }

MNT=$W/mnt
PORT=$(vs_free_port)
mkdir -p "$MNT"
vs_mount pr "$MNT" --cache-dir "$W/cache" --control "127.0.0.1:$PORT" \
	--log-file "$W/mount.log" || exit 1
vs_logs_on_failure "$W/mount.log"
MPID=$VS_MOUNT_PID
metric() { curl -s --max-time 2 "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
vs_check "f.txt reads its imported bytes" cmp -s "$MNT/src/f.txt" "$SRC/src/f.txt"

# race NAME CMD...: a remote edit of f.txt (remote.NAME) while CMD runs
# in the window between its rename and its page push, then a stat; after
# it, f.txt must read local.NAME, in the mount and in PostgreSQL.
race() {
	local name=$1 seq gdb
	shift
	rm -f "$W/hit" "$W/done" "$W/gdb-ready" "$W/cmd.rc" "$W/stat.out"
	# Run by gdb at the breakpoint (every thread stopped): CMD (bounded:
	# a hang is a failure, not a stuck test), then a stat, which has the
	# kernel fetch the attributes after it, in the background.
	{
		echo '#!/usr/bin/env bash'
		echo '('
		printf 'timeout -k 2 20'
		printf ' %q' "$@"
		printf ' </dev/null 2>%q\n' "$W/cmd.err"
		printf 'echo "rc=$?" >%q\n' "$W/cmd.rc"
		printf 'timeout -k 2 20 stat -c %%s %q >%q 2>&1\n' "$MNT/src/f.txt" "$W/stat.out"
		printf 'touch %q\n' "$W/done"
		echo ') </dev/null >/dev/null 2>&1 &'
		printf 'touch %q\n' "$W/hit"
	} >"$W/at_push.sh"
	chmod +x "$W/at_push.sh"
	# The updater thread, stopped at push_pages, is kept there by calls
	# of usleep() in it (each lets every thread of the process run 10
	# ms) until CMD and the stat are done (20 s at most); then gdb
	# detaches and the updater pushes its pages.
	{
		echo 'set pagination off'
		echo 'set confirm off'
		echo 'break push_pages'
		echo 'commands 1'
		echo 'silent'
		echo 'delete 1'
		echo "shell $W/at_push.sh"
		echo 'set $i = 0'
		echo 'while $i < 2000'
		echo 'call (int)usleep(10000)'
		printf 'if (int)access("%s", 0) == 0\n' "$W/done"
		echo 'set $i = 2000'
		echo 'end'
		echo 'set $i = $i + 1'
		echo 'end'
		echo 'detach'
		echo 'quit'
		echo 'end'
		echo "shell touch $W/gdb-ready"
		echo 'continue'
	} >"$W/gdb.cmds"
	timeout -k 5 120 gdb -batch -nx -p "$MPID" -x "$W/gdb.cmds" >"$W/gdb.log" 2>&1 &
	gdb=$!
	vs_on_exit sh -c 'kill "$1" 2>/dev/null; true' _ "$gdb"
	if ! vs_poll 60 test -e "$W/gdb-ready"; then
		echo "SKIP: gdb cannot attach to vsync-mount (ptrace): $(tail -n 3 "$W/gdb.log")"
		exit 77
	fi
	if ! grep -q "^Breakpoint 1 at" "$W/gdb.log"; then
		vs_fail "gdb: expected a breakpoint at push_pages, saw: $(tail -n 3 "$W/gdb.log")"
		vs_summary
		exit 1
	fi

	vs_check "$name: a remote edit of f.txt" ctl put pr src/f.txt "$W/remote.$name"
	seq=$(vs_sql "SELECT change_seq FROM projects WHERE name = 'pr'")
	vs_check "$name: the updater stopped at the page push" vs_poll 60 test -e "$W/hit"
	vs_check "$name: made meanwhile, and a stat" vs_poll 30 test -e "$W/done"
	vs_check "$name: gdb let it go" vs_poll 30 vs__pid_gone "$gdb"
	vs_check_eq "$name: it succeeded" "rc=0" "$(cat "$W/cmd.rc" 2>/dev/null)"
	vs_check_eq "$name: the stat after it" "$(stat -c %s "$W/local.$name")" \
		"$(cat "$W/stat.out" 2>/dev/null)"
	applied() { [[ "$(metric vsync_applied_seq)" -ge $seq ]] 2>/dev/null; }
	vs_check "$name: the change is applied (vsync_applied_seq $seq)" vs_poll 30 applied
	if cmp -s "$MNT/src/f.txt" "$W/local.$name"; then
		vs_pass "$name: f.txt reads what it left, not the pushed bytes"
	else
		vs_fail "$name: f.txt: expected $(stat -c %s "$W/local.$name") bytes '$(head -c 8 "$W/local.$name")...', saw $(stat -c %s "$MNT/src/f.txt") '$(head -c 8 "$MNT/src/f.txt")...'"
	fi
	saved() { [[ "$(ctl cat pr src/f.txt)" == "$(cat "$W/local.$name")" ]]; }
	vs_check "$name: PostgreSQL gets it" vs_poll 30 saved
	vs_check "$name: the mount equals PostgreSQL" vs_poll 30 vs_mount_equals_pg pr "$MNT"
	vs_check "$name: f.txt still reads it" cmp -s "$MNT/src/f.txt" "$W/local.$name"
}

# an in-place write of the whole file
head -c 4096 /dev/zero | tr '\0' r >"$W/remote.write"
head -c 4096 /dev/zero | tr '\0' l >"$W/local.write"
race write dd if="$W/local.write" of="$MNT/src/f.txt" bs=4096 count=1 \
	conv=notrunc status=none
# a truncation to nothing
head -c 4096 /dev/zero | tr '\0' s >"$W/remote.truncate"
: >"$W/local.truncate"
race truncate truncate -s 0 "$MNT/src/f.txt"
vs_umount "$MNT"
vs_summary
