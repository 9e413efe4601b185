#!/usr/bin/env bash
#
# test_fd_limit.sh - a mount that runs out of file descriptors says so and
# stops cleanly.
#
# Every inode the kernel keeps holds an fd in the mount (a local-only one
# its O_PATH and read-write fds, a synced one read its content's), so a
# tree larger than RLIMIT_NOFILE allows can use them all (the mount raises
# its soft limit to the hard one; here the hard one is 400). Covers: 600
# synced files read (twice) all get their bytes, the content fds of files
# not read lately being closed when the fds run out, and the log says so;
# local-only files, whose fds cannot be closed, are then made until the
# fds run out; the files made before are saved and served; what needs an
# fd then fails
# with EMFILE, and the log says why, once; a SIGTERM then stops the mount
# with status 0 - before, glibc aborted it (status 134: "libgcc_s.so.1
# must be installed for pthread_cancel to work": libfuse's threads end
# with pthread_cancel, and glibc loads libgcc_s for it at that moment).
#
# Needs /dev/fuse (else exit 77) and PostgreSQL (started here).
set -u

# shellcheck source=tests/lib/servers.sh
. "$(dirname "$0")/../lib/servers.sh"

vs_need_fuse
CTL=$VSYNC_BUILD_DIR/agent/vsyncctl
vs_deadline 300
vs_pg_fixture || exit 1
mkdir -p "$W/src/many" "$W/mnt"
printf '{}\n' >"$W/src/package.json"
for i in $(seq 1 600); do printf 'file %d\n' "$i" >"$W/src/many/f$i.txt"; done
vs_check "vsyncctl init" "$CTL" -q init
vs_check "import" "$CTL" -q import p "$W/src"

ulimit -n 400
if ! vs_mount p "$W/mnt" --pg "$VSYNC_PG_URL" --cache-dir "$W/cache"; then
	vs_fail "mount: expected it mounted, saw it exit"
	vs_summary
	exit 1
fi
PID=$VS_MOUNT_PID
# 600 synced files read, each holding its content's fd while the kernel
# keeps it cached: past the 400, the fds of files not read lately are
# closed (opened again at their next read)
read_all() {
	local i line
	for ((i = 1; i <= 600; i++)); do
		read -r line <"$W/mnt/many/f$i.txt" && [[ $line == "file $i" ]] ||
			return 1
	done
}
vs_check "600 synced files read with 400 fds: each has its bytes" read_all
# the kernel's pages of the first 100 dropped, so that their reads reach
# the mount again, where their fds were closed
for ((i = 1; i <= 100; i++)); do
	dd if="$W/mnt/many/f$i.txt" iflag=nocache count=0 status=none
done
vs_check "and read again, from the mount" read_all
vs_check "the log says fds were closed" grep -q "out of file descriptors: closed" "$VS_MOUNT_LOG"
printf 'saved\n' >"$W/mnt/first.txt"
vs_check "a synced file saved with fsync before the fds run out" \
	vs_fsync "$W/mnt/first.txt"
mkdir -p "$W/mnt/node_modules/a"
n=0
for i in $(seq 1 600); do
	if ! printf 'x\n' 2>"$W/err" >"$W/mnt/node_modules/a/f$i"; then
		break
	fi
	n=$i
done
vs_check "local-only files are made until the fds run out ($n of 600)" test "$n" -gt 50 -a "$n" -lt 600
vs_check "then the caller gets EMFILE" grep -q "Too many open files" "$W/err"
# more of what needs fds, while there are none
mkdir -p "$W/mnt/src" 2>/dev/null
for i in 1 2 3; do printf 'y\n' >"$W/mnt/src/f$i" 2>/dev/null; done
ls "$W/mnt/node_modules/a" >/dev/null 2>&1
vs_check "and the log says why, once" test "$(grep -c "cannot hold an fd for local-only" "$VS_MOUNT_LOG")" -eq 1
vs_check_eq "PostgreSQL has the file saved before" "saved" "$("$CTL" cat p first.txt)"
kill "$PID"
vs_wait_exit "$PID" 30
vs_check_eq "SIGTERM stops the mount with status 0 (not an abort)" 0 "$VS_EXIT_RC"
vs_check "no abort in its log" sh -c '! grep -q "libgcc_s" "$1"' _ "$VS_MOUNT_LOG"
vs_poll 10 sh -c '! mountpoint -q "$1"' _ "$W/mnt" || fusermount3 -u "$W/mnt" 2>/dev/null
vs_summary
