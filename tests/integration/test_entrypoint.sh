#!/usr/bin/env bash
#
# test_entrypoint.sh - container/entrypoint.sh run directly (no docker)
# against container/example imported with vsyncctl and the project's
# credentials from `vsyncctl grant`, with a fake dev server
# (a bash script) and a fake npm on PATH, so no registry is needed:
#
#   - the dev server starts only once vsync-mount's --ready-file exists, in
#     the mount (its cwd, package.json readable and equal to the source), in
#     its own process group, without VSYNC_PG_URL in its environment; the
#     dependencies were installed first (npm install --no-package-lock in the
#     mount, into the local-only node_modules/)
#   - `entrypoint.sh --healthcheck` answers 0 from /readyz while it runs
#   - run as root, it raises the hard limit of open files to fs.nr_open
#     (where the test could, logged): vsync-mount runs with soft = hard =
#     that limit, the dev server keeps the test's soft limit
#   - SIGTERM to the entrypoint: the dev server gets TERM (and its group is
#     gone), the project is unmounted, vsync-mount has exited, the entrypoint
#     exits 0, all within 15 s
#   - the dev server exiting on its own (status 3): the entrypoint unmounts
#     and exits 3; vsync-mount killed under it: the dev server is stopped,
#     nothing stays mounted, the exit status is non-zero
#   - a process outside the dev server (a terminal) keeping the mount busy:
#     SIGTERM still leaves nothing mounted and exits 0
#   - VSYNC_PROJECT unset, or an unknown project: a non-zero exit within
#     30 s, a message naming the cause, no mount, no dev server started
#
# Needs /dev/fuse (else exit 77). Environment: VSYNC_BUILD_DIR (default
# build/), VS_KEEP_LOGS=1 keeps the private directory with the logs.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/servers.sh
. "$here/../lib/servers.sh"

vs_need_fuse
vs_deadline 300

ENTRY=$VS_REPO_ROOT/container/entrypoint.sh
CTL_BIN=$VSYNC_BUILD_DIR/agent/vsyncctl
for b in "$VSYNC_BUILD_DIR/agent/vsync-mount" "$CTL_BIN" "$ENTRY"; do
	if [[ ! -x "$b" ]]; then
		vs_fail "prerequisites: expected an executable $b, saw none"
		vs_summary
		exit 1
	fi
done

unset VSYNC_REDIS_URL VSYNC_PROJECT VSYNC_MOUNT VSYNC_CACHE_DIR VSYNC_USER \
	VSYNC_MOUNT_ARGS VSYNC_NPM_INSTALL VSYNC_READY_FILE
vs_servers_start pg
W=$VS_SERVERS_DIR/work
VS_LOG_DIR=$W/logs
mkdir -p "$VS_LOG_DIR" "$W/bin"
MNT=$W/mnt
CACHE=$W/cache
READY=$W/ready
DEV_OUT=$W/dev.out

vs_logs_on_failure "$VS_LOG_DIR/*.log"

ctl() {
	timeout -k 5 60 "$CTL_BIN" --pg "$VSYNC_PG_URL" -q "$@"
}

# ---------------------------------------------------------------- fakes

# The fake dev server: records when it started, whether the ready file was
# there, where it runs and what it sees, then sleeps (a child in its group)
# until TERM; FAKE_DEV_EXIT=N makes it exit N after 0.5 s instead.
cat >"$W/bin/fake-dev" <<'EOF'
#!/usr/bin/env bash
out=$FAKE_DEV_OUT
t=${EPOCHREALTIME/./}
stat=$(cat /proc/$$/stat)
stat=${stat##*) }
read -r _ _ pgid _ <<<"$stat"
{
	echo "start_ms=$((t / 1000))"
	if [[ -n ${VSYNC_READY_FILE:-} && -e $VSYNC_READY_FILE ]]; then
		echo "ready_file=present"
	else
		echo "ready_file=absent(${VSYNC_READY_FILE:-unset})"
	fi
	echo "cwd=$PWD"
	echo "pid=$$"
	echo "pgid=$pgid"
	echo "pg_url=${VSYNC_PG_URL:+set}"
	echo "nofile_soft=$(ulimit -Sn)"
	echo "args=$*"
} >"$out.tmp"
cp package.json "$out.package.json" 2>"$out.err" || true
if [[ -n ${FAKE_DEV_EXIT:-} ]]; then
	mv "$out.tmp" "$out"
	sleep 0.5
	exit "$FAKE_DEV_EXIT"
fi
trap 'echo "term_ms=$(( ${EPOCHREALTIME/./} / 1000 ))" >>"$out.term"; kill "$s" 2>/dev/null; exit 0' TERM
sleep 1000 &
s=$!
echo "sleeper=$s" >>"$out.tmp"
mv "$out.tmp" "$out"
wait "$s"
EOF
# The fake npm: `install` records its cwd and arguments and fills
# node_modules/; anything else fails.
cat >"$W/bin/npm" <<'EOF'
#!/usr/bin/env bash
echo "cwd=$PWD args=$*" >>"$FAKE_NPM_LOG"
[[ ${1:-} == install ]] || exit 9
mkdir -p node_modules/fake-dep && echo 'module.exports = 1;' >node_modules/fake-dep/index.js
EOF
chmod +x "$W/bin/fake-dev" "$W/bin/npm"

mount_pid() {
	local p
	p=$(vs_pids_of "$MNT" vsync-mount | head -n 1)
	[[ -n $p ]] && echo "$p"
}

val() { # val KEY FILE
	sed -n "s/^$1=//p" "$2" 2>/dev/null | head -n 1
}

ENTRY_SEQ=0
# start_entry [ENV=VALUE...] -- [CMD...]: run the entrypoint in the
# background with the test's settings; sets ENTRY_PID and ENTRY_LOG.
start_entry() {
	local envs=()
	while (($# > 0)) && [[ $1 != -- ]]; do
		envs+=("$1")
		shift
	done
	(($# > 0)) && shift
	ENTRY_SEQ=$((ENTRY_SEQ + 1))
	ENTRY_LOG=$VS_LOG_DIR/entry.$ENTRY_SEQ.log
	rm -f "$DEV_OUT" "$DEV_OUT".*
	env PATH="$W/bin:$PATH" VSYNC_PG_URL="$GRANT_PG" \
		VSYNC_PROJECT=example VSYNC_MOUNT="$MNT" \
		VSYNC_CACHE_DIR="$CACHE" VSYNC_BIN_DIR="$VSYNC_BUILD_DIR/agent" \
		VSYNC_CONTROL="127.0.0.1:$PORT" VSYNC_READY_FILE="$READY" \
		VSYNC_STOP_GRACE=5 VSYNC_READY_TIMEOUT=60 \
		FAKE_DEV_OUT="$DEV_OUT" FAKE_NPM_LOG="$W/npm.log" "${envs[@]}" \
		"$ENTRY" "$@" >"$ENTRY_LOG" 2>&1 </dev/null &
	ENTRY_PID=$!
	vs_on_exit "stop_entry $ENTRY_PID"
}

# stop_entry PID: cleanup at exit: TERM, then KILL, then unmount.
stop_entry() {
	if ! vs__pid_gone "$1"; then
		kill -TERM "$1" 2>/dev/null
		vs_poll 20 vs__pid_gone "$1" || kill -KILL "$1" 2>/dev/null
	fi
	wait "$1" 2>/dev/null
	local p
	for p in $(vs_pids_of "$W/bin/fake-dev") $(mount_pid); do
		kill -KILL "$p" 2>/dev/null
	done
	vs__cleanup_mount "$MNT"
	return 0
}

# entry_exit SECS: wait up to SECS for the entrypoint to exit; sets ENTRY_RC
# (124 on timeout) and ENTRY_MS (time taken).
entry_exit() {
	vs_wait_exit "$ENTRY_PID" "$1"
	ENTRY_RC=$VS_EXIT_RC ENTRY_MS=$VS_EXIT_MS
}

# ---------------------------------------------------------------- setup

vs_check "vsyncctl init" ctl init
vs_check "vsyncctl import example" ctl import example "$VS_REPO_ROOT/container/example"
if ! vs_last_ok; then
	vs_summary || true
	exit 1
fi
# the container runs with the project's granted credentials, not the
# administrator's (docs/security.md)
vs_check "vsyncctl grant example" sh -c '"$1" --pg "$2" grant example >"$3" 2>/dev/null' \
	_ "$CTL_BIN" "$VSYNC_PG_URL" "$W/grant.env"
GRANT_PG=$(. "$W/grant.env" && echo "$VSYNC_PG_URL")
vs_check "the grant is a role of its own" grep -q "user='vsync_c_" <<<"$GRANT_PG"
mkdir -p "$MNT" "$CACHE"
PORT=$(vs_free_port)

# ---------------------------------------------------------------- main case

t_start=$(vs_now_ms)
start_entry -- "$W/bin/fake-dev" --port 5173
if vs_poll 60 test -s "$DEV_OUT"; then
	vs_pass "the dev server started ($(($(vs_now_ms) - t_start)) ms after the entrypoint)"
else
	vs_fail "the dev server started: expected $DEV_OUT within 60 s, saw none (entrypoint $(vs__pid_gone "$ENTRY_PID" && echo exited || echo running))"
fi
vs_check_eq "the ready file existed when the dev server started (--ready-file)" \
	present "$(val ready_file "$DEV_OUT")"
vs_check_eq "the dev server runs in the mount" "$MNT" "$(val cwd "$DEV_OUT")"
vs_check "the dev server read package.json in its cwd, equal to the source" \
	cmp "$DEV_OUT.package.json" "$VS_REPO_ROOT/container/example/package.json"
vs_check "the mount is up while the dev server runs" vs_is_mounted "$MNT"
dev_pid=$(val pid "$DEV_OUT")
vs_check_eq "the dev server leads its own process group" "$dev_pid" "$(val pgid "$DEV_OUT")"
vs_check_eq "the dev server got its arguments" "--port 5173" "$(val args "$DEV_OUT")"
vs_check_eq "VSYNC_PG_URL is kept from the dev server" "" "$(val pg_url "$DEV_OUT")"
vs_check_eq "npm install ran once, in the mount, with --no-package-lock" \
	"cwd=$MNT args=install --no-package-lock" "$(cat "$W/npm.log" 2>/dev/null)"
vs_check "node_modules/ (local-only) was filled through the mount" \
	test -f "$MNT/node_modules/fake-dep/index.js"
vs_check "entrypoint.sh --healthcheck: /readyz answers 200" \
	env VSYNC_CONTROL="127.0.0.1:$PORT" "$ENTRY" --healthcheck
# the open-file limits: what this shell could raise its hard limit to
nr_open=$(cat /proc/sys/fs/nr_open)
want_hard=$( (ulimit -Hn "$nr_open" 2>/dev/null && ulimit -Hn) || ulimit -Hn)
mpid=$(mount_pid || true)
got=$(awk '/^Max open files/ { print $4 " " $5 }' "/proc/${mpid:-0}/limits" 2>/dev/null)
vs_check_eq "vsync-mount's open-file limit: soft and hard at $want_hard" \
	"$want_hard $want_hard" "$got"
if [[ $want_hard != "$(ulimit -Hn)" ]]; then
	vs_check "the raise is logged" grep -q "hard limit of open files raised" "$ENTRY_LOG"
fi
vs_check_eq "the dev server keeps the soft limit it was given" \
	"$(ulimit -Sn)" "$(val nofile_soft "$DEV_OUT")"

sleeper=$(val sleeper "$DEV_OUT")
t0=$(vs_now_ms)
kill -TERM "$ENTRY_PID"
entry_exit 15
vs_check_eq "SIGTERM: the entrypoint exits 0 within 15 s (took $ENTRY_MS ms)" 0 "$ENTRY_RC"
vs_check "SIGTERM: the dev server was sent TERM" test -s "$DEV_OUT.term"
if [[ -n $dev_pid ]] && ! kill -0 -- "-$dev_pid" 2>/dev/null &&
	! kill -0 "${sleeper:-$dev_pid}" 2>/dev/null; then
	vs_pass "SIGTERM: the dev server's process group is gone"
else
	vs_fail "SIGTERM: expected no process left in group $dev_pid, saw some (sleeper $sleeper)"
fi
vs_check "SIGTERM: nothing is mounted at the mountpoint (/proc/mounts)" vs__not_mounted "$MNT"
vs_check_eq "SIGTERM: vsync-mount has exited" "" "$(mount_pid || true)"
if [[ -s $DEV_OUT.term ]]; then
	term_ms=$(val term_ms "$DEV_OUT.term")
	vs_log "SIGTERM to dev server TERM: $((term_ms - t0)) ms; to exit: $ENTRY_MS ms"
fi
vs_check "the ready file is removed at exit" test ! -e "$READY"

# ---------------------------------------------------------------- dev server exits

start_entry FAKE_DEV_EXIT=3 -- "$W/bin/fake-dev"
entry_exit 60
vs_check_eq "dev server exits 3 on its own: the entrypoint exits 3" 3 "$ENTRY_RC"
vs_check "dev server exits on its own: nothing stays mounted" vs__not_mounted "$MNT"
vs_check_eq "dev server exits on its own: vsync-mount has exited" "" "$(mount_pid || true)"
vs_check "npm install is not run again (node_modules/ is kept in the cache dir)" \
	test "$(wc -l <"$W/npm.log")" -eq 1

# ---------------------------------------------------------------- vsync-mount dies

start_entry -- "$W/bin/fake-dev"
if vs_poll 60 test -s "$DEV_OUT"; then
	dev_pid=$(val pid "$DEV_OUT")
	mp=$(mount_pid || true)
	if [[ -n $mp ]]; then
		kill -KILL "$mp"
		entry_exit 20
		if ((ENTRY_RC != 0 && ENTRY_RC != 124)); then
			vs_pass "vsync-mount killed: the entrypoint exits non-zero ($ENTRY_RC)"
		else
			vs_fail "vsync-mount killed: expected a non-zero exit within 20 s, saw $ENTRY_RC"
		fi
		vs_check "vsync-mount killed: the dev server was stopped" test -s "$DEV_OUT.term"
		vs_check "vsync-mount killed: nothing stays mounted" vs__not_mounted "$MNT"
		vs_check "vsync-mount killed: the log names the cause" \
			grep -q 'vsync-mount exited' "$ENTRY_LOG"
	else
		vs_fail "vsync-mount killed: expected a vsync-mount process for $MNT, saw none"
	fi
else
	vs_fail "vsync-mount killed: expected the dev server to start, saw $(tail -n 3 "$ENTRY_LOG")"
fi

# ---------------------------------------------------------------- busy mount

# A process outside the dev server's group (an IDE terminal) keeps the
# mount busy: fusermount3 -u fails, the entrypoint stops vsync-mount instead.
start_entry -- "$W/bin/fake-dev"
if vs_poll 60 test -s "$DEV_OUT"; then
	(cd "$MNT" && exec sleep 60) &
	holder=$!
	vs_on_exit "kill $holder 2>/dev/null; wait $holder 2>/dev/null; true"
	kill -TERM "$ENTRY_PID"
	entry_exit 30
	vs_check_eq "busy mount: SIGTERM still ends the entrypoint with 0 (took $ENTRY_MS ms)" 0 "$ENTRY_RC"
	vs_check "busy mount: nothing stays mounted" vs__not_mounted "$MNT"
	vs_check_eq "busy mount: vsync-mount has exited" "" "$(mount_pid || true)"
	kill "$holder" 2>/dev/null || true
	wait "$holder" 2>/dev/null || true
else
	vs_fail "busy mount: expected the dev server to start, saw $(tail -n 3 "$ENTRY_LOG")"
fi

# ---------------------------------------------------------------- fail fast

# expect_fail DESC NEEDLE [ENV=VALUE...]: the entrypoint exits non-zero
# within 30 s saying NEEDLE, leaving no mount, no dev server, no vsync-mount.
expect_fail() {
	local desc=$1 needle=$2
	shift 2
	start_entry "$@" -- "$W/bin/fake-dev"
	entry_exit 30
	if ((ENTRY_RC == 124)); then
		vs_fail "$desc: expected a failure within 30 s, saw the entrypoint still running"
	elif ((ENTRY_RC == 0)); then
		vs_fail "$desc: expected a non-zero exit, saw 0"
	elif ! grep -q -- "$needle" "$ENTRY_LOG"; then
		vs_fail "$desc: expected a message with '$needle', saw: $(head -n 3 "$ENTRY_LOG")"
	else
		vs_pass "$desc (exit $ENTRY_RC after $ENTRY_MS ms: $(grep -m1 -- "$needle" "$ENTRY_LOG"))"
	fi
	vs_check "$desc: no mount left" vs__not_mounted "$MNT"
	vs_check "$desc: the dev server never started" test ! -e "$DEV_OUT"
	vs_check_eq "$desc: no vsync-mount left" "" "$(mount_pid || true)"
}

expect_fail "VSYNC_PROJECT unset" "VSYNC_PROJECT is not set" VSYNC_PROJECT=
expect_fail "unknown project" "unknown project" VSYNC_PROJECT=no-such-project
vs_check "unknown project: the entrypoint says vsync-mount exited before ready" \
	grep -q 'vsync-mount exited (status [1-9][0-9]*) before the project was ready' "$ENTRY_LOG"

vs_summary
