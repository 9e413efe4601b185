# shellcheck shell=bash
#
# servers.sh - throwaway servers and helpers for vsync's integration tests.
#
# Source it from a bash script (`. tests/lib/servers.sh`); it works with or
# without `set -euo pipefail` in the caller: every function returns its
# status instead of relying on errexit, and none of them exits the shell
# except vs_need_fuse and vs_need_cmd (exit 77 = skip) and the signal traps.
#
# Servers
#   vs_servers_start pg|redis|all
#       Makes a private directory (VS_SERVERS_DIR, mode 0711 so the postgres
#       user can reach its socket sub-directory) and starts
#       - PostgreSQL (Debian's /usr/lib/postgresql/*/bin, as user postgres via
#         runuser when run as root), trust auth, listening only on a unix
#         socket in $VS_SERVERS_DIR/pg-run, fsync off. Exports VSYNC_PG_URL
#         ("host=... user=postgres dbname=postgres"), PGHOST, PGUSER,
#         PGDATABASE, PGPORT, and VS_PG_BIN / VS_PG_DATA.
#       - Redis on 127.0.0.1 and a free port in 20000-40000, no persistence.
#         Exports VSYNC_REDIS_URL=redis://127.0.0.1:PORT, VS_REDIS_PORT and
#         VS_REDIS_PID.
#       Each one is polled until ready with a deadline (no fixed sleeps).
#       Registers vs_servers_stop with vs_on_exit unless VS_KEEP_SERVERS=1
#       (the demo keeps them and writes `vs_servers_env` to a file).
#   vs_servers_stop      stop what was started and remove the directory;
#                        driven only by the exported VS_* variables, so it
#                        also works from another process that sourced them.
#   vs_pg_stop           stop PostgreSQL only (pg_ctl stop -m fast); the
#                        "backend is down" cases of the tests use it.
#   vs_pg_start_again    start it again after vs_pg_stop (same socket and
#                        data); returns once it accepts connections (30 s).
#   vs_pg_require_passwords
#                        every role but postgres must give its password
#                        (SCRAM) from now on, as on a real server.
#   vs_pg_fixture        the start of a test that needs PostgreSQL only:
#                        vs_servers_start pg, no Redis URL (mounts follow
#                        changes with LISTEN), mount logs in the servers
#                        dir, a work directory $W. 0, or 1 if PostgreSQL
#                        did not start.
#   vs_sql SQL           one statement on the test's PostgreSQL: rows
#                        unaligned, fields separated by '|'.
#   vs_mount_equals_pg PROJECT MNT
#                        MNT (node_modules/ left out) holds what PostgreSQL
#                        has, no more, no less: files byte for byte,
#                        directories, symlinks' targets (one `vsyncctl
#                        export PROJECT`, one diff -r).
#   vs_servers_env       print `export NAME=value` lines for the above.
#
# TLS (tests/integration/test_tls.sh; the default servers above stay plain)
#   vs_tls_ca DIR        a throwaway CA: DIR/ca.crt and DIR/ca.key (openssl).
#   vs_tls_cert CADIR NAME
#                        a server certificate for CN localhost with SAN
#                        DNS:localhost and IP:127.0.0.1, signed by CADIR's
#                        CA: CADIR/NAME.crt and CADIR/NAME.key.
#   vs_pg_tls CERT KEY   restart the running PostgreSQL with ssl = on and
#                        also listening on 127.0.0.1 TCP (a free port),
#                        where only TLS is accepted (pg_hba: hostnossl
#                        reject). The unix socket stays (trust), so
#                        VSYNC_PG_URL and vs_sql keep working; PGPORT and
#                        VSYNC_PG_URL are exported again with the new port.
#                        Exports VS_PG_TLS_PORT.
#   vs_redis_tls_start CERT KEY CA [PASSWORD]
#                        a second redis-server that listens only with TLS
#                        (port 0, tls-port on 127.0.0.1, clients need no
#                        certificate), with requirepass PASSWORD if given.
#                        Exports VS_REDIS_TLS_PORT and VS_REDIS_TLS_PID;
#                        vs_servers_stop stops it.
#   vs_stunnel_client NAME ACCEPT_PORT CONNECT_PORT CAFILE
#                        stunnel in client mode (verifyChain, checkHost
#                        localhost) from 127.0.0.1:ACCEPT_PORT to
#                        127.0.0.1:CONNECT_PORT; stopped at exit. Sets
#                        VS_STUNNEL_PID; the log is $VS_SERVERS_DIR/NAME.log.
#   vs_free_port         print a port in 20000-40000 nothing listens on.
#   vs_pids_of NEEDLE... pids whose command line contains every NEEDLE.
#   vs_wait_exit PID SECS  wait for child PID to exit; VS_EXIT_RC (124 on
#                        timeout) and VS_EXIT_MS.
#
# Test helpers
#   vs_on_exit CMD...    run CMD at exit (LIFO). One argument is eval'd as a
#                        shell string; several are quoted as one command.
#                        An EXIT trap installed before is kept (runs last);
#                        after sourcing, use vs_on_exit, not `trap ... EXIT`.
#                        INT, TERM and HUP exit through the same cleanup.
#   vs_deadline SECS     send SIGTERM to this script after SECS (a watchdog
#                        so the exit cleanup runs before ctest's kill).
#   vs_need_fuse         exit 77 with "SKIP: ..." if FUSE cannot be used.
#   vs_need_cmd CMD WHAT exit 77 with "SKIP: ..." if CMD is not on PATH.
#   vs_poll SECS CMD...  re-run CMD until it succeeds (naps of 5 ms up to
#                        $VS_POLL_NAP_MAX, default 50, in between, and at
#                        least twice what CMD took, up to 250 ms); 1 on
#                        timeout.
#   vs_nap MS            sleep MS milliseconds without forking.
#   vs_now_ms            milliseconds since the epoch.
#   vs_is_mounted DIR    DIR is a mount point per /proc/mounts (no stat(2),
#                        so a hung FUSE daemon cannot hang the caller).
#   vs_mount PROJECT MNT [ARGS...]
#                        start $VSYNC_BUILD_DIR/agent/vsync-mount PROJECT MNT
#                        -f ARGS in the background, log in $VS_LOG_DIR;
#                        wait (10 s) until mounted. Sets VS_MOUNT_PID and
#                        VS_MOUNT_LOG; cleanup at exit is registered.
#   vs_umount MNT        fusermount3 -u, wait for the daemon to exit (then
#                        TERM/KILL and -uz as fallbacks); 0 if nothing is
#                        left mounted at MNT.
#   vs_pass DESC / vs_fail MSG / vs_check DESC CMD... / vs_check_eq DESC
#   EXPECTED SEEN        print "ok - DESC" or "not ok - DESC: expected ...
#                        saw ..." and count. They return 0 either way, so a
#                        failed check does not end a `set -e` script;
#                        vs_last_ok tells whether the last one passed.
#   vs_summary           print "N passed, M failed"; non-zero if M > 0.
#
# Binaries come from $VSYNC_BUILD_DIR (default: build/ under the repo root).

if [[ -n "${VS_SERVERS_SH_LOADED:-}" ]]; then
	return 0
fi
VS_SERVERS_SH_LOADED=1

VS_REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
: "${VSYNC_BUILD_DIR:=$VS_REPO_ROOT/build}"
export VSYNC_BUILD_DIR

# vsyncctl is a tool in every integration test but test_vsyncctl.sh (which
# sets VS_CTL_LEAKS=1 before sourcing this file), run hundreds of times a
# test: in the ASan build, LeakSanitizer's check at exit costs each run
# 50 ms of CPU, a tenth of the whole suite's. Its leaks are checked in
# test_vsyncctl.sh, which runs every command; tests/lib/asan-vsyncctl.opts
# turns the check off elsewhere (ASan reads it for the binary named
# vsyncctl only; the daemons keep theirs). The file holds flags only: ASan
# takes no comments there.
if [[ ${VS_CTL_LEAKS:-0} != 1 && $VS_REPO_ROOT != *:* ]]; then
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}include_if_exists=$VS_REPO_ROOT/tests/lib/asan-%b.opts"
fi

VS_PASSED=0
VS_FAILED=0
VS_LAST_OK=1
VS_LAST_CHECK_MS=${EPOCHREALTIME/./}
VS_LAST_CHECK_MS=$((VS_LAST_CHECK_MS / 1000))
VS_EXIT_CMDS=()
VS_EXIT_TRAP_SET=
declare -A VS_MOUNT_PIDS=()

# ---------------------------------------------------------------- basics

vs_log() {
	printf '# %s\n' "$*" >&2
}

vs_now_ms() {
	local t=${EPOCHREALTIME/./}
	printf '%s\n' "$((t / 1000))"
}

# fsync(2) of PATH (a file or a directory) through a read-only fd, as an
# editor's or a build tool's durable save does; fails with fsync's errno.
vs_fsync() { # PATH
	perl -MFcntl -MIO::Handle -e \
		'sysopen(my $h, $ARGV[0], O_RDONLY) or die "$!\n"; $h->sync or die "$!\n"' "$1"
}

# Run the registered cleanups, newest first. Failures are reported, not
# fatal: every cleanup gets its chance.
vs__run_exit() {
	local rc=$? i t
	set +e
	trap - EXIT
	for ((i = ${#VS_EXIT_CMDS[@]} - 1; i >= 0; i--)); do
		t=${EPOCHREALTIME/./}
		eval "${VS_EXIT_CMDS[i]}" || vs_log "cleanup failed: ${VS_EXIT_CMDS[i]}"
		t=$(((${EPOCHREALTIME/./} - t) / 1000))
		((t < 1000)) || vs_log "cleanup took $t ms: ${VS_EXIT_CMDS[i]}"
	done
	VS_EXIT_CMDS=()
	exit "$rc"
}

vs_on_exit() {
	local cmd prev
	if (($# == 1)); then
		cmd=$1
	else
		cmd=$(printf '%q ' "$@")
	fi
	if [[ -z "$VS_EXIT_TRAP_SET" ]]; then
		# Keep a trap the caller installed before us: it runs last.
		prev=$(trap -p EXIT)
		if [[ -n "$prev" ]]; then
			eval "set -- $prev"
			VS_EXIT_CMDS+=("$3")
		fi
		trap vs__run_exit EXIT
		trap 'exit 130' INT
		trap 'exit 143' TERM
		trap 'exit 129' HUP
		VS_EXIT_TRAP_SET=1
	fi
	VS_EXIT_CMDS+=("$cmd")
}

# vs_logs_on_failure PATTERN...: at exit, when a check has failed, print
# the last 20 lines of every file matching a PATTERN (a glob, expanded at
# exit, so that logs made later count: quote it), for the CI log.
vs_logs_on_failure() {
	vs_on_exit vs__dump_logs "$@"
}

vs__dump_logs() {
	local pat f
	((VS_FAILED > 0)) || return 0
	for pat in "$@"; do
		while IFS= read -r f; do
			[[ -f "$f" ]] || continue
			echo "# ---- last lines of ${f##*/}"
			tail -n 20 "$f" | sed 's/^/#   /'
		done < <(compgen -G "$pat")
	done
}

vs_deadline() {
	local secs=$1 me=$$
	(
		trap 'kill "$s" 2>/dev/null; exit 0' TERM
		sleep "$secs" &
		s=$!
		if wait "$s" && kill -0 "$me" 2>/dev/null; then
			echo "# deadline of ${secs}s passed: stopping the test" >&2
			kill -TERM "$me"
		fi
	) </dev/null &
	local wd=$!
	vs_on_exit "kill $wd 2>/dev/null; wait $wd 2>/dev/null"
}

# vs_nap MS: sleep MS milliseconds without a fork: `read -t` on a pipe this
# shell holds both ends of, which never has data nor reaches EOF (a
# poll's naps would otherwise fork a sleep(1) 50 times a second).
vs_nap() {
	[[ -n "${VS_NAP_FD:-}" ]] || exec {VS_NAP_FD}<> <(:)
	local t
	printf -v t '%d.%03d' $(($1 / 1000)) $(($1 % 1000))
	read -r -t "$t" -u "$VS_NAP_FD" || true
}

# vs_poll SECS CMD...: re-run CMD until it succeeds, naps of 5 ms doubling
# to VS_POLL_NAP_MAX ms (default 50) in between (most conditions hold at
# once or within a few ms; a slow one is not re-checked more than 20
# times a second, so that polling does not take the CPU the code under
# test needs). A nap is at least twice what CMD took, up to 250 ms: a
# CMD that starts a process (a vsyncctl of the ASan build takes 90 ms of
# CPU to start, and a PostgreSQL backend to connect to) then takes a
# third of a core while it waits, not most of one.
vs_poll() {
	local t=${EPOCHREALTIME/./} t0 deadline nap=5 max=${VS_POLL_NAP_MAX:-50}
	deadline=$((t / 1000 + $1 * 1000))
	shift
	while :; do
		t0=${EPOCHREALTIME/./}
		if "$@"; then
			return 0
		fi
		t=${EPOCHREALTIME/./}
		if ((t / 1000 >= deadline)); then
			return 1
		fi
		t0=$(((t - t0) / 500)) # twice what CMD took, in ms, up to 250
		((t0 < 250)) || t0=250
		vs_nap "$((t0 > nap ? t0 : nap))"
		((nap < max)) && nap=$((nap * 2 > max ? max : nap * 2))
	done
}

# ---------------------------------------------------------------- results

# vs__took: set VS_TOOK to the time since the last check ended (or the
# script began), as " [1.2 s]", so that a slow step shows in the output
vs__took() {
	local t=${EPOCHREALTIME/./} ms
	t=$((t / 1000))
	ms=$((t - VS_LAST_CHECK_MS))
	VS_LAST_CHECK_MS=$t
	printf -v VS_TOOK ' [%d.%d s]' $((ms / 1000)) $((ms % 1000 / 100))
}

vs_pass() {
	VS_PASSED=$((VS_PASSED + 1))
	VS_LAST_OK=1
	vs__took
	printf 'ok - %s%s\n' "$*" "$VS_TOOK"
}

vs_fail() {
	VS_FAILED=$((VS_FAILED + 1))
	VS_LAST_OK=0
	vs__took
	printf 'not ok - %s%s\n' "$*" "$VS_TOOK"
}

vs_last_ok() {
	((VS_LAST_OK == 1))
}

# vs_check DESC CMD...: CMD must exit 0; on failure show its exit status and
# the first lines of its output.
vs_check() {
	local desc=$1 out rc
	shift
	rc=0
	out=$("$@" 2>&1) || rc=$?
	if ((rc == 0)); then
		vs_pass "$desc"
		return 0
	fi
	out=$(printf '%s\n' "$out" | head -n 5)
	vs_fail "$desc: expected success of '$*', saw exit $rc${out:+: $out}"
}

vs_check_eq() {
	local desc=$1 expected=$2 seen=$3
	if [[ "$expected" == "$seen" ]]; then
		vs_pass "$desc"
		return 0
	fi
	vs_fail "$desc: expected '$expected', saw '$seen'"
}

vs_summary() {
	printf '%d passed, %d failed\n' "$VS_PASSED" "$VS_FAILED"
	((VS_FAILED == 0))
}

# ---------------------------------------------------------------- FUSE

vs_need_fuse() {
	if [[ ! -c /dev/fuse ]]; then
		echo "SKIP: /dev/fuse not available"
		exit 77
	fi
	if ! command -v fusermount3 >/dev/null 2>&1; then
		echo "SKIP: /dev/fuse not available (fusermount3 is not installed)"
		exit 77
	fi
}

# vs_need_cmd CMD WHAT: exit 77 (a skip), saying so, unless CMD is on PATH.
vs_need_cmd() {
	if ! command -v "$1" >/dev/null 2>&1; then
		echo "SKIP: no $1 ($2)"
		exit 77
	fi
}

# /proc/mounts escapes space, tab, newline and backslash as octal.
vs__mounts_escape() {
	local s=$1
	s=${s//\\/\\134}
	s=${s// /\\040}
	s=${s//$'\t'/\\011}
	s=${s//$'\n'/\\012}
	printf '%s' "$s"
}

vs_is_mounted() {
	local want
	want=$(vs__mounts_escape "$1")
	awk -v m="$want" '$2 == m { found = 1 } END { exit !found }' /proc/mounts
}

vs__not_mounted() {
	! vs_is_mounted "$1"
}

# Gone = no such process, or a zombie waiting for us to reap it.
vs__pid_gone() {
	local stat
	kill -0 "$1" 2>/dev/null || return 0
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	stat=${stat##*) }
	[[ ${stat%% *} == Z ]]
}

# Absolute path without resolving through a (possibly hung) mount.
vs__abspath() {
	case $1 in
	/*) printf '%s\n' "$1" ;;
	*) printf '%s\n' "$PWD/$1" ;;
	esac
}

vs__mount_ready() {
	local mnt=$1 pid=$2
	vs_is_mounted "$mnt" && return 0
	if vs__pid_gone "$pid"; then
		return 2
	fi
	return 1
}

vs_mount() {
	local project=$1 mnt bin pid deadline st
	mnt=$(vs__abspath "$2")
	shift 2
	bin=$VSYNC_BUILD_DIR/agent/vsync-mount
	if [[ ! -x "$bin" ]]; then
		echo "vs_mount: $bin is missing (build first)" >&2
		return 1
	fi
	: "${VS_LOG_DIR:=${VS_SERVERS_DIR:-${TMPDIR:-/tmp}}}"
	VS_MOUNT_SEQ=$((${VS_MOUNT_SEQ:-0} + 1))
	VS_MOUNT_LOG=$VS_LOG_DIR/mount.$VS_MOUNT_SEQ.log
	# VS_MOUNT_WRAP: an array of words to run vsync-mount under (setpriv)
	${VS_MOUNT_WRAP[@]+"${VS_MOUNT_WRAP[@]}"} "$bin" "$project" "$mnt" -f "$@" \
		>"$VS_MOUNT_LOG" 2>&1 </dev/null &
	pid=$!
	# shellcheck disable=SC2034 # for the caller
	VS_MOUNT_PID=$pid
	VS_MOUNT_PIDS[$mnt]=$pid
	vs_on_exit "vs__cleanup_mount $(printf '%q' "$mnt") $pid"
	deadline=$(($(vs_now_ms) + 10000))
	while :; do
		st=0
		vs__mount_ready "$mnt" "$pid" || st=$?
		((st == 0)) && return 0
		if ((st == 2)); then
			echo "vs_mount: vsync-mount exited before mounting $mnt; log:" >&2
			sed 's/^/#   /' "$VS_MOUNT_LOG" | tail -n 20 >&2
			wait "$pid" 2>/dev/null
			return 1
		fi
		if (($(vs_now_ms) >= deadline)); then
			echo "vs_mount: $mnt not mounted after 10 s; log:" >&2
			sed 's/^/#   /' "$VS_MOUNT_LOG" | tail -n 20 >&2
			vs__cleanup_mount "$mnt" "$pid"
			return 1
		fi
		vs_nap 20
	done
}

# Unmount MNT and make sure daemon PID (if any) is gone. Always returns 0
# when nothing is left mounted and the daemon has exited.
vs__cleanup_mount() {
	local mnt=$1 pid=${2:-}
	if vs_is_mounted "$mnt"; then
		timeout -k 2 10 fusermount3 -u "$mnt" 2>/dev/null ||
			timeout -k 2 10 fusermount3 -uz "$mnt" 2>/dev/null || true
	fi
	if [[ -n "$pid" ]] && ! vs__pid_gone "$pid"; then
		if ! vs_poll 5 vs__pid_gone "$pid"; then
			kill -TERM "$pid" 2>/dev/null
			if ! vs_poll 5 vs__pid_gone "$pid"; then
				kill -KILL "$pid" 2>/dev/null
			fi
		fi
	fi
	if [[ -n "$pid" ]]; then
		wait "$pid" 2>/dev/null || true
	fi
	if vs_is_mounted "$mnt"; then
		timeout -k 2 10 fusermount3 -uz "$mnt" 2>/dev/null || true
	fi
	! vs_is_mounted "$mnt"
}

vs_umount() {
	local mnt pid
	mnt=$(vs__abspath "$1")
	pid=${VS_MOUNT_PIDS[$mnt]:-}
	unset 'VS_MOUNT_PIDS[$mnt]'
	vs__cleanup_mount "$mnt" "$pid"
}

# ---------------------------------------------------------------- servers

vs__mkdir_private() {
	local base=${VS_TMP:-/tmp} dir
	dir=$(mktemp -d "$base/vsync-test.XXXXXX") || return 1
	# Others (the postgres user) may traverse but not list it.
	chmod 0711 "$dir" || return 1
	printf '%s\n' "$dir"
}

vs__as_postgres() {
	if ((EUID == 0)); then
		(cd / && runuser -u postgres -- "$@")
	else
		(cd / && "$@")
	fi
}

vs__pg_bin() {
	local d
	for d in /usr/lib/postgresql/*/bin; do
		[[ -x "$d/initdb" ]] && VS_PG_BIN=$d
	done
	[[ -n "${VS_PG_BIN:-}" ]]
}

vs__pg_ready() {
	"$VS_PG_BIN/pg_isready" -q -h "$VS_PG_SOCKDIR" -U postgres -d postgres \
		-t 1 2>/dev/null
}

# vs__pg_initdb DATA LOG: make DATA a fresh cluster (superuser postgres,
# trust, UTF8, C locale). initdb runs once per build dir and PostgreSQL
# version, into $VSYNC_BUILD_DIR/tests/pg-template-VERSION (made under a
# temporary name, then renamed, so two runs at once never see half of
# one); each cluster after is a copy of it: a copy costs a fifth of the
# CPU of an initdb, which every integration test would pay.
vs__pg_initdb() {
	local data=$1 log=$2 tmpl tmp
	tmpl=$VSYNC_BUILD_DIR/tests/pg-template-${VS_PG_BIN//[^0-9]/}
	if [[ ! -f "$tmpl/PG_VERSION" ]]; then
		mkdir -p "$VSYNC_BUILD_DIR/tests" || return 1
		tmp=$(mktemp -d "$tmpl.XXXXXX") || return 1
		((EUID == 0)) && chown postgres: "$tmp"
		if ! vs__as_postgres "$VS_PG_BIN/initdb" -D "$tmp" -U postgres \
			-A trust -E UTF8 --no-locale --no-sync >"$log" 2>&1; then
			echo "vs_servers_start: initdb failed:" >&2
			tail -n 20 "$log" >&2
			rm -rf "$tmp"
			return 1
		fi
		# a run that lost the race keeps the winner's template
		mv -T "$tmp" "$tmpl" 2>/dev/null || rm -rf "$tmp"
	fi
	cp -a "$tmpl/." "$data/"
}

vs__pg_start() {
	local dir=$VS_SERVERS_DIR data run log
	if ! vs__pg_bin; then
		echo "vs_servers_start: no PostgreSQL in /usr/lib/postgresql/*/bin (apt-get install postgresql)" >&2
		return 1
	fi
	data=$dir/pg-data
	run=$dir/pg-run
	log=$dir/pg.log
	mkdir -p "$data" "$run" || return 1
	touch "$log" || return 1
	if ((EUID == 0)); then
		chown postgres: "$data" "$run" "$log" || return 1
	fi
	chmod 0700 "$data"
	vs__pg_initdb "$data" "$dir/initdb.log" || return 1
	cat >>"$data/postgresql.conf" <<EOF || return 1
# vsync tests: private, unix socket only, no durability.
listen_addresses = ''
unix_socket_directories = '$run'
unix_socket_permissions = 0777
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 100
EOF
	VS_PG_DATA=$data
	VS_PG_SOCKDIR=$run
	export VS_PG_BIN VS_PG_DATA VS_PG_SOCKDIR
	if ! vs__as_postgres "$VS_PG_BIN/pg_ctl" -D "$data" -l "$log" -W \
		start >/dev/null 2>&1; then
		echo "vs_servers_start: pg_ctl start failed:" >&2
		tail -n 20 "$log" >&2
		return 1
	fi
	if ! vs_poll 30 vs__pg_ready; then
		echo "vs_servers_start: PostgreSQL not ready after 30 s:" >&2
		tail -n 20 "$log" >&2
		return 1
	fi
	export PGHOST=$run PGPORT=5432 PGUSER=postgres PGDATABASE=postgres
	export VSYNC_PG_URL="host=$run port=5432 user=postgres dbname=postgres"
	return 0
}

# Make PostgreSQL ask every role but postgres for its password (SCRAM), as
# a real server does: the isolation tests log in with granted credentials.
vs_pg_require_passwords() {
	local hba=$VS_PG_DATA/pg_hba.conf
	{
		echo "local all postgres trust"
		echo "local all all scram-sha-256"
		echo "host all all 127.0.0.1/32 scram-sha-256"
		grep -v '^\s*#' "$hba" | grep -v '^\s*$'
	} >"$hba.new" && mv "$hba.new" "$hba" || return 1
	[[ $EUID -eq 0 ]] && chown postgres: "$hba"
	vs__as_postgres "$VS_PG_BIN/pg_ctl" -D "$VS_PG_DATA" reload >/dev/null 2>&1 || return 1
	vs_poll 10 vs__pg_asks_password
}

# A login as another role is asked for a password (the reload took).
vs__pg_asks_password() {
	"$VS_PG_BIN/psql" -X -w -h "$VS_PG_SOCKDIR" -U vsync_nobody -d postgres \
		-c 'SELECT 1' 2>&1 | grep -q 'password'
}

vs_pg_stop() {
	[[ -n "${VS_PG_DATA:-}" && -d "$VS_PG_DATA" ]] || return 0
	if [[ -f "$VS_PG_DATA/postmaster.pid" ]]; then
		vs__as_postgres "$VS_PG_BIN/pg_ctl" -D "$VS_PG_DATA" -m fast \
			-t 30 -w stop >/dev/null 2>&1 || {
			# Last resort: the postmaster's pid is the first line.
			local pid
			pid=$(head -n 1 "$VS_PG_DATA/postmaster.pid" 2>/dev/null)
			[[ -n "$pid" ]] && kill -KILL "$pid" 2>/dev/null
			return 1
		}
	fi
	return 0
}

vs_pg_fixture() {
	vs_servers_start pg || return 1
	unset VSYNC_REDIS_URL
	export VS_LOG_DIR=$VS_SERVERS_DIR
	W=$VS_SERVERS_DIR/work
	mkdir -p "$W"
}

# vs_held_begin NAME SQL: a psql session runs "BEGIN; SQL" and keeps the
# transaction open (input: the fifo $W/NAME.in on fd $VS_HELD_FD; pid
# $VS_HELD_PID; output $W/NAME.out). 0 once SQL has run. One at a time;
# not in a subshell (vs_check): the session would end with it.
vs_held_begin() {
	mkfifo "$W/$1.in" || return 1
	"$VS_PG_BIN/psql" -X -At -v ON_ERROR_STOP=1 "$VSYNC_PG_URL" \
		<"$W/$1.in" >"$W/$1.out" 2>&1 &
	VS_HELD_PID=$!
	exec {VS_HELD_FD}>"$W/$1.in"
	vs_on_exit "exec $VS_HELD_FD>&-; kill $VS_HELD_PID 2>/dev/null; wait $VS_HELD_PID 2>/dev/null; :"
	echo "BEGIN; $2 SELECT 'held';" >&"$VS_HELD_FD"
	vs_poll 10 grep -qx held "$W/$1.out"
}

# vs_held_commit: COMMIT the held transaction, end its session; psql's
# exit status.
vs_held_commit() {
	echo "COMMIT;" >&"$VS_HELD_FD"
	exec {VS_HELD_FD}>&-
	wait "$VS_HELD_PID"
}

# vs_pg_has PROJECT_ID PATH: has PostgreSQL a live entry at PATH?
vs_pg_has() {
	[[ "$(vs_sql "SELECT count(*) FROM project_files WHERE project_id = '$1'
		AND file_path = '$2' AND is_current AND NOT is_deleted")" == 1 ]]
}

# vs_journaled CACHE_DIR PROJECT_ID FILE: does an entry of the mount's
# journal name FILE's bytes (a save of them journaled, not committed yet)?
vs_journaled() {
	grep -qs "^hash=$(sha256sum <"$3" | cut -d' ' -f1)\$" \
		"$1/projects/$2/journal/"[0-9]*
}

# vs_in_sync PORT: does the mount's control endpoint on PORT say that it
# is in sync with PostgreSQL (GET /status)?
vs_in_sync() {
	curl -s --max-time 5 "http://127.0.0.1:$1/status" |
		grep -q '"in_sync":true'
}

# vs_pg_lock_waits: does a session wait for a lock (a commit held back by
# vs_held_begin)?
vs_pg_lock_waits() {
	[[ "$(vs_sql "SELECT count(*) FROM pg_stat_activity
		WHERE wait_event_type = 'Lock'")" -ge 1 ]]
}

vs_sql() {
	"$VS_PG_BIN/psql" -X -At -v ON_ERROR_STOP=1 "$VSYNC_PG_URL" -c "$1"
}

vs_mount_equals_pg() {
	local project=$1 mnt=$2 exp rc=0
	# one export (one connection) and one diff(1), both ways: every file,
	# directory and symlink PostgreSQL has is on the mount with the same
	# bytes or target, and the mount has nothing else (node_modules/ left
	# out). The last difference seen is kept in $VS_SERVERS_DIR/equals.last.
	exp=$(mktemp -d "${VS_SERVERS_DIR:-${TMPDIR:-/tmp}}/equals.XXXXXX") || return 1
	if "$VSYNC_BUILD_DIR/agent/vsyncctl" -q export "$project" "$exp/t" >"$exp/out" 2>&1; then
		diff -rq --no-dereference -x node_modules "$exp/t" "$mnt" >"$exp/out" 2>&1 || rc=1
	else
		rc=1
	fi
	((rc == 0)) || [[ -z "${VS_SERVERS_DIR:-}" ]] ||
		cp "$exp/out" "$VS_SERVERS_DIR/equals.last" 2>/dev/null
	rm -rf "$exp"
	return "$rc"
}

vs_pg_start_again() {
	vs__as_postgres "$VS_PG_BIN/pg_ctl" -D "$VS_PG_DATA" \
		-l "$VS_SERVERS_DIR/pg.log" -W start >/dev/null 2>&1 &&
		vs_poll 30 vs__pg_ready
}

vs__redis_ping() {
	[[ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" == PONG ]]
}

vs__port_in_use() {
	command -v ss >/dev/null 2>&1 || return 1
	[[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]]
}

vs__redis_start() {
	local dir=$VS_SERVERS_DIR port pid st deadline
	if ! command -v redis-server >/dev/null 2>&1; then
		echo "vs_servers_start: redis-server not found (apt-get install redis-server)" >&2
		return 1
	fi
	mkdir -p "$dir/redis" || return 1
	for _ in 1 2 3 4 5 6 7 8; do
		port=$(vs__random_port)
		vs__port_in_use "$port" && continue
		redis-server --bind 127.0.0.1 --port "$port" --save '' \
			--appendonly no --daemonize no --dir "$dir/redis" \
			--logfile "$dir/redis.log" </dev/null >/dev/null 2>&1 &
		pid=$!
		deadline=$(($(vs_now_ms) + 10000))
		st=1
		while (($(vs_now_ms) < deadline)); do
			if vs__redis_ping "$port"; then
				# The port might answer for someone else's server.
				if ! vs__pid_gone "$pid"; then
					st=0
				fi
				break
			fi
			if vs__pid_gone "$pid"; then
				break # bind failed: try another port
			fi
			vs_nap 20
		done
		if ((st == 0)); then
			VS_REDIS_PID=$pid
			VS_REDIS_PORT=$port
			export VS_REDIS_PID VS_REDIS_PORT
			export VSYNC_REDIS_URL=redis://127.0.0.1:$port
			return 0
		fi
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	echo "vs_servers_start: redis-server did not start (tried 8 ports):" >&2
	tail -n 10 "$dir/redis.log" >&2 2>/dev/null
	return 1
}

# Stop child PID (may be empty): TERM, 10 s, then KILL; reaped.
vs__stop_pid() {
	[[ -n "${1:-}" ]] || return 0
	if kill -TERM "$1" 2>/dev/null; then
		vs_poll 10 vs__pid_gone "$1" || kill -KILL "$1" 2>/dev/null
	fi
	wait "$1" 2>/dev/null
	return 0
}

vs__redis_stop() {
	vs__stop_pid "${VS_REDIS_PID:-}"
	VS_REDIS_PID=
}

vs_servers_start() {
	local what=${1:-all}
	case $what in
	pg | redis | all) ;;
	*)
		echo "usage: vs_servers_start pg|redis|all" >&2
		return 2
		;;
	esac
	if [[ -z "${VS_SERVERS_DIR:-}" ]]; then
		VS_SERVERS_DIR=$(vs__mkdir_private) || return 1
		export VS_SERVERS_DIR
		if [[ "${VS_KEEP_SERVERS:-0}" != 1 ]]; then
			vs_on_exit vs_servers_stop
		fi
	fi
	if [[ $what == pg || $what == all ]]; then
		vs__pg_start || return 1
	fi
	if [[ $what == redis || $what == all ]]; then
		vs__redis_start || return 1
	fi
	return 0
}

vs_servers_stop() {
	local rc=0
	vs__redis_stop || rc=1
	vs__redis_tls_stop || rc=1
	vs_pg_stop || rc=1
	if [[ -n "${VS_SERVERS_DIR:-}" && -d "$VS_SERVERS_DIR" ]]; then
		if [[ "${VS_KEEP_LOGS:-0}" == 1 ]]; then
			vs_log "logs kept in $VS_SERVERS_DIR"
		else
			rm -rf --one-file-system "$VS_SERVERS_DIR" || rc=1
		fi
	fi
	VS_SERVERS_DIR=
	return "$rc"
}

vs_servers_env() {
	local v
	for v in VS_SERVERS_DIR VS_PG_BIN VS_PG_DATA VS_PG_SOCKDIR PGHOST PGPORT \
		PGUSER PGDATABASE VSYNC_PG_URL VS_REDIS_PID VS_REDIS_PORT \
		VSYNC_REDIS_URL; do
		if [[ -n "${!v:-}" ]]; then
			printf 'export %s=%q\n' "$v" "${!v}"
		fi
	done
}

# ---------------------------------------------------------------- relay, Redis restarts
#
#   vs_relay_start [ARGS...]
#       start $VSYNC_BUILD_DIR/agent/vsync-relay --pg $VSYNC_PG_URL
#       --redis $VSYNC_REDIS_URL ARGS in the background (log in
#       $VS_LOG_DIR/relay.N.log). Sets VS_RELAY_PID and VS_RELAY_LOG;
#       several may run at once; each is stopped at exit. Returns 1 if the
#       binary is missing or the relay exits at once (its log is shown).
#   vs_relay_stop [PID [SIGNAL]]
#       send SIGNAL (default TERM) to PID (default $VS_RELAY_PID), wait up
#       to 10 s (then KILL) and reap it. 0 once it is gone.
#   vs_redis_stop        stop Redis (SIGTERM, then KILL), keeping
#                        VS_REDIS_PORT so vs_redis_start can reuse it.
#   vs_redis_start       start Redis again on $VS_REDIS_PORT (the same
#                        port, so clients reconnect to the same URL), or on
#                        a free port as vs_servers_start does if none was
#                        chosen yet. Polls until PONG (10 s).
#   vs_redis_cli ARGS... redis-cli against the test's Redis (2 s deadline
#                        to connect, 10 s overall).

vs_relay_start() {
	local bin pid
	bin=$VSYNC_BUILD_DIR/agent/vsync-relay
	if [[ ! -x "$bin" ]]; then
		echo "vs_relay_start: $bin is missing (build first)" >&2
		return 1
	fi
	: "${VS_LOG_DIR:=${VS_SERVERS_DIR:-${TMPDIR:-/tmp}}}"
	VS_RELAY_SEQ=$((${VS_RELAY_SEQ:-0} + 1))
	VS_RELAY_LOG=$VS_LOG_DIR/relay.$VS_RELAY_SEQ.log
	"$bin" --pg "$VSYNC_PG_URL" --redis "$VSYNC_REDIS_URL" "$@" \
		>"$VS_RELAY_LOG" 2>&1 </dev/null &
	pid=$!
	VS_RELAY_PID=$pid
	vs_on_exit "vs_relay_stop $pid"
	# An immediate failure (bad option, unreachable server at start) shows
	# up as an exit within a moment; a running relay is not waited for.
	local deadline=$(($(vs_now_ms) + 300))
	while ! vs__pid_gone "$pid" && (($(vs_now_ms) < deadline)); do
		vs_nap 20
	done
	if vs__pid_gone "$pid"; then
		echo "vs_relay_start: vsync-relay exited at once; log:" >&2
		sed 's/^/#   /' "$VS_RELAY_LOG" | tail -n 20 >&2
		wait "$pid" 2>/dev/null || true
		return 1
	fi
	return 0
}

vs_relay_stop() {
	local pid=${1:-${VS_RELAY_PID:-}} sig=${2:-TERM}
	[[ -n "$pid" ]] || return 0
	if [[ $sig == KILL || $sig == 9 ]] && kill -KILL "$pid" 2>/dev/null; then
		# dies at once: reap it now, so that bash does not report "Killed"
		wait "$pid" 2>/dev/null || true
	fi
	if ! vs__pid_gone "$pid"; then
		kill "-$sig" "$pid" 2>/dev/null || true
		if ! vs_poll 10 vs__pid_gone "$pid"; then
			kill -KILL "$pid" 2>/dev/null || true
			vs_poll 5 vs__pid_gone "$pid" || true
		fi
	fi
	wait "$pid" 2>/dev/null || true
	vs__pid_gone "$pid"
}

vs_redis_stop() {
	vs__redis_stop
}

vs_redis_start() {
	local dir=$VS_SERVERS_DIR port=${VS_REDIS_PORT:-} pid
	if [[ -z "$port" ]]; then
		vs__redis_start
		return
	fi
	if [[ -n "${VS_REDIS_PID:-}" ]] && ! vs__pid_gone "$VS_REDIS_PID"; then
		return 0 # already running
	fi
	mkdir -p "$dir/redis" || return 1
	redis-server --bind 127.0.0.1 --port "$port" --save '' \
		--appendonly no --daemonize no --dir "$dir/redis" \
		--logfile "$dir/redis.log" </dev/null >/dev/null 2>&1 &
	pid=$!
	if ! vs_poll 10 vs__redis_ping "$port" || vs__pid_gone "$pid"; then
		echo "vs_redis_start: redis-server did not start on port $port:" >&2
		tail -n 10 "$dir/redis.log" >&2 2>/dev/null
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		return 1
	fi
	VS_REDIS_PID=$pid
	export VS_REDIS_PID
	return 0
}

vs_redis_cli() {
	timeout -k 2 10 redis-cli -h 127.0.0.1 -p "$VS_REDIS_PORT" "$@"
}

# ---------------------------------------------------------------- TLS

# vs_wait_exit PID SECS: wait up to SECS for child PID to exit; sets
# VS_EXIT_RC (its status, 124 on timeout) and VS_EXIT_MS (time taken).
vs_wait_exit() {
	local t0
	t0=$(vs_now_ms)
	VS_EXIT_RC=0
	if vs_poll "$2" vs__pid_gone "$1"; then
		wait "$1" || VS_EXIT_RC=$?
	else
		VS_EXIT_RC=124
	fi
	VS_EXIT_MS=$(($(vs_now_ms) - t0))
}

# vs_pids_of NEEDLE...: pids whose command line contains every NEEDLE
# (observation only; the caller's own shell is left out).
vs_pids_of() {
	local f pid n args line
	for f in /proc/[0-9]*; do
		pid=${f#/proc/}
		[[ $pid != "$$" && $pid != "$BASHPID" ]] || continue
		args=()
		{ mapfile -d '' args <"/proc/$pid/cmdline"; } 2>/dev/null || continue
		line="${args[*]}"
		for n in "$@"; do
			[[ $line == *"$n"* ]] || continue 2
		done
		echo "$pid"
	done
	return 0
}

# vs__random_port: a loopback port between 20000 and the start of the
# kernel's ephemeral range (ip_local_port_range, 32768 by default), so
# that no outgoing connection of another process takes it between our
# check and the bind.
vs__random_port() {
	local lo=32768 hi
	read -r lo hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
	((lo > 21000)) || lo=32768
	echo $((20000 + (RANDOM * 32768 + RANDOM) % (lo - 20000)))
}

vs_free_port() {
	local p
	for _ in 1 2 3 4 5 6 7 8; do
		p=$(vs__random_port)
		if ! vs__port_in_use "$p"; then
			printf '%s\n' "$p"
			return 0
		fi
	done
	return 1
}

vs_tls_ca() {
	local dir=$1
	mkdir -p "$dir" || return 1
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
		-keyout "$dir/ca.key" -out "$dir/ca.crt" \
		-subj "/CN=vsync test CA $RANDOM" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" \
		>"$dir/openssl.log" 2>&1 || {
		echo "vs_tls_ca: openssl failed:" >&2
		tail -n 5 "$dir/openssl.log" >&2
		return 1
	}
}

vs_tls_cert() {
	local dir=$1 name=$2
	printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" \
		"basicConstraints=CA:FALSE" \
		"keyUsage=critical,digitalSignature,keyEncipherment" \
		"extendedKeyUsage=serverAuth" >"$dir/$name.ext" || return 1
	if ! openssl req -newkey rsa:2048 -nodes -keyout "$dir/$name.key" \
		-out "$dir/$name.csr" -subj "/CN=localhost" \
		>>"$dir/openssl.log" 2>&1 ||
		! openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" \
			-CAkey "$dir/ca.key" -CAcreateserial -days 2 \
			-extfile "$dir/$name.ext" -out "$dir/$name.crt" \
			>>"$dir/openssl.log" 2>&1; then
		echo "vs_tls_cert: openssl failed:" >&2
		tail -n 5 "$dir/openssl.log" >&2
		return 1
	fi
}

vs_pg_tls() {
	local cert=$1 key=$2 tls=$VS_SERVERS_DIR/pg-tls port hba
	[[ -n "${VS_PG_DATA:-}" ]] || {
		echo "vs_pg_tls: start PostgreSQL first (vs_servers_start pg)" >&2
		return 1
	}
	mkdir -p "$tls" || return 1
	cp "$cert" "$tls/server.crt" && cp "$key" "$tls/server.key" || return 1
	chmod 0600 "$tls/server.key"
	if ((EUID == 0)); then
		chown -R postgres: "$tls" || return 1
	fi
	vs_pg_stop || return 1
	# Only TLS on TCP; the unix socket keeps the trust line initdb wrote.
	hba=$VS_PG_DATA/pg_hba.conf
	{
		echo "hostnossl all all 0.0.0.0/0 reject"
		echo "hostnossl all all ::/0 reject"
		cat "$hba"
	} >"$hba.new" && cat "$hba.new" >"$hba" && rm -f "$hba.new" || return 1
	for _ in 1 2 3 4 5; do
		port=$(vs_free_port) || return 1
		cat >>"$VS_PG_DATA/postgresql.conf" <<EOF || return 1
# vs_pg_tls: TLS on 127.0.0.1 (the last setting of a name wins)
ssl = on
ssl_cert_file = '$tls/server.crt'
ssl_key_file = '$tls/server.key'
listen_addresses = '127.0.0.1'
port = $port
EOF
		export PGPORT=$port
		export VSYNC_PG_URL="host=$VS_PG_SOCKDIR port=$port user=postgres dbname=postgres"
		if vs_pg_start_again; then
			export VS_PG_TLS_PORT=$port
			return 0
		fi
		vs_pg_stop
	done
	echo "vs_pg_tls: PostgreSQL did not start with TLS:" >&2
	tail -n 10 "$VS_SERVERS_DIR/pg.log" >&2
	return 1
}

vs__redis_tls_ping() {
	[[ "$(REDISCLI_AUTH=$3 timeout 2 redis-cli --tls --cacert "$2" -h 127.0.0.1 -p "$1" ping 2>/dev/null)" == PONG ]]
}

vs_redis_tls_start() {
	local cert=$1 key=$2 ca=$3 pass=${4:-} dir=$VS_SERVERS_DIR port pid
	local auth=()
	[[ -n $pass ]] && auth=(--requirepass "$pass")
	mkdir -p "$dir/redis-tls" || return 1
	for _ in 1 2 3 4 5; do
		port=$(vs_free_port) || return 1
		redis-server "${auth[@]}" --bind 127.0.0.1 --port 0 --tls-port "$port" \
			--tls-cert-file "$cert" --tls-key-file "$key" \
			--tls-ca-cert-file "$ca" --tls-auth-clients no \
			--save '' --appendonly no --daemonize no \
			--dir "$dir/redis-tls" --logfile "$dir/redis-tls.log" \
			</dev/null >/dev/null 2>&1 &
		pid=$!
		if vs_poll 10 vs__redis_tls_ping "$port" "$ca" "$pass" &&
			! vs__pid_gone "$pid"; then
			VS_REDIS_TLS_PID=$pid
			VS_REDIS_TLS_PORT=$port
			export VS_REDIS_TLS_PID VS_REDIS_TLS_PORT
			return 0
		fi
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	echo "vs_redis_tls_start: redis-server did not start with TLS:" >&2
	tail -n 10 "$dir/redis-tls.log" >&2 2>/dev/null
	return 1
}

vs__redis_tls_stop() {
	vs__stop_pid "${VS_REDIS_TLS_PID:-}"
	VS_REDIS_TLS_PID=
}

vs_stunnel_client() {
	local name=$1 accept=$2 connect=$3 ca=$4 conf pid
	conf=$VS_SERVERS_DIR/$name.conf
	cat >"$conf" <<EOF || return 1
foreground = yes
pid =
debug = notice
output = $VS_SERVERS_DIR/$name.log
[redis]
client = yes
accept = 127.0.0.1:$accept
connect = 127.0.0.1:$connect
CAfile = $ca
verifyChain = yes
checkHost = localhost
EOF
	stunnel "$conf" </dev/null >/dev/null 2>&1 &
	pid=$!
	export VS_STUNNEL_PID=$pid
	vs_on_exit "vs_relay_stop $pid"
	if ! vs_poll 10 vs__port_in_use "$accept" || vs__pid_gone "$pid"; then
		echo "vs_stunnel_client: stunnel is not listening on $accept:" >&2
		tail -n 10 "$VS_SERVERS_DIR/$name.log" >&2 2>/dev/null
		return 1
	fi
	return 0
}
