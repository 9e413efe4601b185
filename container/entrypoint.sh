#!/usr/bin/env bash
#
# entrypoint.sh - a preview container's PID-1 child: mount the project with
# vsync-mount, wait until its critical files are local, then run the dev
# server inside the mount, and take both down in order on SIGTERM/SIGINT.
#
# usage: entrypoint.sh [DEV SERVER COMMAND [ARGS...]]   (default: npm run dev)
#        entrypoint.sh --healthcheck    exit 0 iff the control endpoint's
#                                       /readyz answers 200 (HEALTHCHECK)
#
# Environment
#   VSYNC_PROJECT        project name or UUID (required)
#   VSYNC_MOUNT          mountpoint (default /project)
#   VSYNC_CACHE_DIR      vsync-mount's cache dir (default: vsync-mount's,
#                        /var/cache/vsync); keep it on a volume so a restart
#                        finds its content and local-only node_modules/
#   VSYNC_PG_URL, VSYNC_REDIS_URL
#                        read by vsync-mount from the environment (never put
#                        on a command line, where ps would show them) and
#                        removed from the dev server's environment. For TLS
#                        to PostgreSQL, put sslmode=verify-full and
#                        sslrootcert=FILE in VSYNC_PG_URL (libpq does it).
#                        A rediss:// VSYNC_REDIS_URL is carried by a stunnel
#                        client this script starts and supervises (below)
#   VSYNC_REDIS_CA       with rediss://: the CA file that verifies the Redis
#                        server's certificate (default: the system CAs,
#                        /etc/ssl/certs/ca-certificates.crt)
#   VSYNC_REDIS_CERT, VSYNC_REDIS_KEY
#                        with rediss://: a client certificate and key, for a
#                        server that asks for one (tls-auth-clients yes)
#   VSYNC_REDIS_TUNNEL_PORT
#                        with rediss://: stunnel's loopback port (default
#                        16379); vsync-mount is given redis://127.0.0.1:PORT
#   VSYNC_VERIFY_KEY     the relay's public key (`vsyncctl keygen` prints
#                        it), read by vsync-mount from the environment:
#                        with it, stream entries and manifests from Redis
#                        count only when the relay signed them (anything
#                        else is read from PostgreSQL). Without it the
#                        mount trusts Redis and logs a warning; set it
#                        wherever the relay runs with --sign-key
#   VSYNC_CONTROL        control endpoint ADDR:PORT (default 127.0.0.1:9090):
#                        /healthz, /readyz, /metrics
#   VSYNC_BIN_DIR        where vsync-mount is (default: found on PATH)
#   VSYNC_MOUNT_ARGS     more vsync-mount options, split on blanks
#                        (e.g. "--critical src/** --prefetch 8 -o allow_other")
#   VSYNC_READY_FILE     the file vsync-mount creates once ready (default
#                        ${TMPDIR:-/tmp}/vsync-ready.PID); exported to the
#                        dev server
#   VSYNC_READY_TIMEOUT  seconds to wait for ready (default 120)
#   VSYNC_STOP_GRACE     seconds between TERM and KILL when stopping the dev
#                        server or vsync-mount (default 10)
#   VSYNC_NPM_INSTALL    auto (default): `npm install --no-package-lock` when
#                        package.json exists and node_modules/ does not;
#                        never: skip it
#   VSYNC_USER           when started as root: prepare the mountpoint and the
#                        cache dir for this user, then run everything as it
#                        (setpriv); empty: stay as the current user
#
# Order of events: check /dev/fuse; as root, raise the hard limit of open
# files to fs.nr_open (vsync-mount holds an fd per cached local-only file)
# and drop to VSYNC_USER; start `vsync-mount -f` (in its own
# session, so a terminal's ^C reaches only this script); wait for the ready
# file (failing at once if vsync-mount exits first, or after the timeout);
# cd into the mount; install dependencies; start the dev server in its own
# session (process group). Then supervise: on SIGTERM/SIGINT/SIGHUP stop
# the dev server (TERM to its group, KILL after the grace period), unmount
# (fusermount3 -u, else TERM to vsync-mount, then KILL and a lazy unmount),
# exit 0. If the dev server or vsync-mount exits on its own, the other is
# stopped the same way and the script exits non-zero (the dev server's
# status, or 1): a restart policy then starts a fresh container.
#
# Redis over TLS: hiredis 0.14 (Debian 12) has no TLS and vsync-mount
# refuses rediss://. Given one, the script starts `stunnel` in client mode
# on 127.0.0.1:VSYNC_REDIS_TUNNEL_PORT (verifyChain against VSYNC_REDIS_CA,
# checkHost/checkIP against the URL's host, TLS 1.2 or later), sends one
# PING through it, and mounts with redis://[user:password@]127.0.0.1:PORT
# (the password stays in vsync-mount's environment, never in stunnel's
# files). A certificate stunnel refuses ends the script (exit 2, with
# stunnel's reason); a server that is only unreachable is left to
# vsync-mount's retries. If stunnel exits later it is restarted and the
# log says so; five exits within 60 s stop everything (exit 1). stunnel is
# stopped after the unmount.
#
# Exit status: 0 stopped by a signal; 2 bad configuration (VSYNC_PROJECT
# unset, no /dev/fuse, no vsync-mount, a bad rediss:// setting or a refused
# Redis certificate); 1 anything else.

set -euo pipefail

log() {
	printf 'entrypoint: %s\n' "$*" >&2
}

# ---------------------------------------------------------------- healthcheck

# A HEALTHCHECK without curl or wget: bash's /dev/tcp, one GET /readyz.
healthcheck() {
	local control=${VSYNC_CONTROL:-127.0.0.1:9090} host port status
	host=127.0.0.1
	port=$control
	if [[ $control == *:* ]]; then
		host=${control%:*}
		port=${control##*:}
	fi
	case $host in
	'' | 0.0.0.0) host=127.0.0.1 ;;
	'[::]') host=::1 ;;
	'['*']')
		host=${host#"["}
		host=${host%"]"}
		;;
	esac
	# shellcheck disable=SC2016 # $1/$2 belong to the inner shell
	status=$(timeout 3 bash -c '
		exec 3<>"/dev/tcp/$1/$2" || exit 1
		printf "GET /readyz HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" "$1" >&3
		IFS= read -r line <&3 || exit 1
		printf "%s\n" "$line"' _ "$host" "$port" 2>/dev/null) || return 1
	[[ $status == HTTP/1.[01]\ 200* ]]
}

if [[ ${1:-} == --healthcheck ]]; then
	healthcheck
	exit
fi

# ---------------------------------------------------------------- settings

if [[ -z ${VSYNC_PROJECT:-} ]]; then
	log "error: VSYNC_PROJECT is not set (the name or UUID of the project to mount)"
	exit 2
fi
project=$VSYNC_PROJECT
mnt=${VSYNC_MOUNT:-/project}
control=${VSYNC_CONTROL:-127.0.0.1:9090}
ready_timeout=${VSYNC_READY_TIMEOUT:-120}
grace=${VSYNC_STOP_GRACE:-10}
npm_install=${VSYNC_NPM_INSTALL:-auto}
for v in ready_timeout grace; do
	if [[ ! ${!v} =~ ^[0-9]+$ ]]; then
		log "error: ${v^^} must be a number of seconds, not '${!v}'"
		exit 2
	fi
done
case $mnt in
/*) ;;
*) mnt=$PWD/$mnt ;;
esac
if (($# == 0)); then
	set -- npm run dev
fi

if [[ -n ${VSYNC_BIN_DIR:-} ]]; then
	mount_bin=$VSYNC_BIN_DIR/vsync-mount
else
	mount_bin=$(command -v vsync-mount || true)
fi
if [[ -z $mount_bin || ! -x $mount_bin ]]; then
	log "error: vsync-mount not found (${VSYNC_BIN_DIR:+in \$VSYNC_BIN_DIR=$VSYNC_BIN_DIR, }on PATH)"
	exit 2
fi

if [[ ! -c /dev/fuse ]]; then
	log "error: /dev/fuse is missing: run the container with" \
		"'--device /dev/fuse --cap-add SYS_ADMIN' (docker) or on a Fly Machine"
	exit 2
fi
if [[ ! -r /dev/fuse || ! -w /dev/fuse ]]; then
	log "error: /dev/fuse is not readable and writable by uid $EUID"
	exit 2
fi

# /proc/mounts escapes space, tab, newline and backslash in octal.
is_mounted() {
	local want=$1
	want=${want//\\/\\134}
	want=${want// /\\040}
	want=${want//$'\t'/\\011}
	want=${want//$'\n'/\\012}
	awk -v m="$want" '$2 == m { found = 1 } END { exit !found }' /proc/mounts
}

# A mount left by a process that died (same mount namespace, e.g. the
# script was restarted in place) makes every stat of it fail.
if is_mounted "$mnt"; then
	log "$mnt is still mounted from an earlier run: detaching it"
	fusermount3 -uz "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
fi

# ---------------------------------------------------------------- privileges

# Every local-only file the kernel keeps cached (node_modules/ ...) holds
# an fd of vsync-mount's (docs/architecture.md), and a VM's init may leave
# the hard limit of open files at 4096. As root, raise the hard limit to
# the kernel's ceiling (fs.nr_open) before dropping to VSYNC_USER:
# vsync-mount raises its own soft limit to it; the dev server and npm keep
# the soft limit they had.
if ((EUID == 0)); then
	nr_open=$(cat /proc/sys/fs/nr_open 2>/dev/null || true)
	hard=$(ulimit -Hn)
	if [[ $nr_open =~ ^[0-9]+$ && $hard =~ ^[0-9]+$ ]] && ((nr_open > hard)); then
		if ulimit -Hn "$nr_open" 2>/dev/null; then
			log "hard limit of open files raised from $hard to $nr_open (vsync-mount holds an fd per cached local-only file)"
		else
			log "cannot raise the hard limit of open files above $hard (no CAP_SYS_RESOURCE?); vsync-mount warns if that is low"
		fi
	fi
fi

if ((EUID == 0)) && [[ -n ${VSYNC_USER:-} ]]; then
	if ! id -u "$VSYNC_USER" >/dev/null 2>&1; then
		log "error: VSYNC_USER '$VSYNC_USER' does not exist"
		exit 2
	fi
	user=$VSYNC_USER
	as_user() {
		setpriv --reuid="$(id -u "$user")" --regid="$(id -g "$user")" \
			--init-groups -- "$@"
	}
	# Distributions give /dev/fuse mode 0666 (udev); a bare devtmpfs (a
	# VM's init without udev) may leave it 0600.
	if ! as_user test -r /dev/fuse -a -w /dev/fuse; then
		log "/dev/fuse is not usable by $user: setting mode 0666 (the usual one)"
		chmod 0666 /dev/fuse || true
	fi
	if ! as_user test -r /dev/fuse -a -w /dev/fuse; then
		log "warning: /dev/fuse is still not usable by $user: staying root"
		user=
	fi
fi
if ((EUID == 0)) && [[ -n ${user:-} ]]; then
	# A volume is mounted root-owned: hand the cache dir and the
	# mountpoint to the user, then run as it.
	mkdir -p "$mnt"
	chown "$user:" "$mnt"
	mkdir -p "${VSYNC_CACHE_DIR:-/var/cache/vsync}"
	chown "$user:" "${VSYNC_CACHE_DIR:-/var/cache/vsync}"
	log "running as $user"
	HOME=$(getent passwd "$user" | cut -d: -f6)
	export HOME
	VSYNC_USER='' exec setpriv --reuid="$(id -u "$user")" \
		--regid="$(id -g "$user")" --init-groups -- "$0" "$@"
fi

if ! mkdir -p "$mnt" 2>/dev/null || [[ -n "$(ls -A "$mnt" 2>/dev/null)" ]]; then
	log "error: mountpoint $mnt cannot be created or is not empty"
	exit 1
fi
if [[ -n ${VSYNC_CACHE_DIR:-} ]] && ! mkdir -p "$VSYNC_CACHE_DIR"; then
	log "error: cannot create VSYNC_CACHE_DIR $VSYNC_CACHE_DIR"
	exit 1
fi

ready_file=${VSYNC_READY_FILE:-${TMPDIR:-/tmp}/vsync-ready.$$}
export VSYNC_READY_FILE=$ready_file
rm -f "$ready_file"

# ---------------------------------------------------------------- processes

mount_pid=
dev_pid=
stop_signal=
trap 'stop_signal=TERM' TERM
trap 'stop_signal=INT' INT
trap 'stop_signal=HUP' HUP

now_ms() {
	local t=${EPOCHREALTIME/./}
	printf '%s\n' "$((t / 1000))"
}

# gone PID: no such process, or a zombie not reaped yet.
gone() {
	local stat
	[[ -n $1 ]] || return 0
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	stat=${stat##*) }
	[[ ${stat%% *} == Z ]]
}

# group_gone PGID: no process left in the process group.
group_gone() {
	! kill -0 -- "-$1" 2>/dev/null
}

# wait_until SECS CMD...: poll CMD every 50 ms; 1 on timeout.
wait_until() {
	local deadline=$(($(now_ms) + $1 * 1000))
	shift
	until "$@"; do
		(($(now_ms) >= deadline)) && return 1
		sleep 0.05
	done
}

# status_of PID: reap PID and set status to its exit status (bash keeps
# the status of a background job it reaped already).
status=
status_of() {
	status=0
	wait "$1" 2>/dev/null || status=$?
}

# tick [SECS]: sleep SECS (default 0.2) in a way a trapped signal
# interrupts at once (a trap runs only once a foreground command has
# finished, but `wait` returns).
tick() {
	local t
	sleep "${1:-0.2}" &
	t=$!
	wait "$t" 2>/dev/null || kill "$t" 2>/dev/null || true
}

# stop_group PID NAME: TERM PID's process group (it leads one: setsid), KILL
# what is left after the grace period, reap PID.
stop_group() {
	local pid=$1 name=$2
	[[ -n $pid ]] || return 0
	if ! group_gone "$pid"; then
		log "stopping $name (pid $pid)"
		kill -TERM -- "-$pid" 2>/dev/null || true
		if ! wait_until "$grace" group_gone "$pid"; then
			log "$name still running after ${grace}s: killing it"
			kill -KILL -- "-$pid" 2>/dev/null || true
			wait_until 5 group_gone "$pid" || true
		fi
	fi
	wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317 # called through wait_until
not_mounted() {
	! is_mounted "$mnt"
}

# unmount: fusermount3 -u (vsync-mount then exits by itself); if the mount
# is busy, TERM vsync-mount; KILL and detach as the last resort.
unmount() {
	if [[ -n $mount_pid ]] && ! gone "$mount_pid"; then
		if is_mounted "$mnt"; then
			log "unmounting $mnt"
			if ! timeout -k 2 10 fusermount3 -u "$mnt" 2>/dev/null; then
				log "fusermount3 -u $mnt failed (busy?): stopping vsync-mount instead"
				kill -TERM "$mount_pid" 2>/dev/null || true
			fi
		fi
		if ! wait_until "$grace" gone "$mount_pid"; then
			kill -TERM "$mount_pid" 2>/dev/null || true
			if ! wait_until "$grace" gone "$mount_pid"; then
				log "vsync-mount still running after TERM: killing it"
				kill -KILL "$mount_pid" 2>/dev/null || true
				wait_until 5 gone "$mount_pid" || true
			fi
		fi
		wait "$mount_pid" 2>/dev/null || true
	fi
	if is_mounted "$mnt"; then
		timeout -k 2 10 fusermount3 -uz "$mnt" 2>/dev/null || true
		wait_until 5 not_mounted || true
	fi
	! is_mounted "$mnt"
}

# finish STATUS: stop the dev server, then unmount; exit STATUS (1 if the
# mount would not go away).
finish() {
	local rc=$1
	trap '' TERM INT HUP # a second signal does not cut the shutdown short
	cd /
	stop_group "$dev_pid" "the dev server"
	dev_pid=
	if ! unmount; then
		log "error: $mnt is still mounted"
		rc=1
	fi
	tunnel_stop
	rm -f "$ready_file"
	log "stopped (exit $rc)"
	exit "$rc"
}

# check_children: 0 while both children run; otherwise log which one
# exited and set exit_rc.
exit_rc=
check_children() {
	if ! tunnel_check; then
		exit_rc=1
		return 1
	fi
	if [[ -n $mount_pid ]] && gone "$mount_pid"; then
		status_of "$mount_pid"
		mount_pid=
		log "error: vsync-mount exited (status $status)${1:+ $1}"
		exit_rc=1
		return 1
	fi
	if [[ -n $dev_pid ]] && gone "$dev_pid"; then
		status_of "$dev_pid"
		dev_pid=
		log "error: the dev server exited on its own (status $status)"
		exit_rc=$status
		((exit_rc != 0)) || exit_rc=1
		return 1
	fi
	return 0
}

# ---------------------------------------------------------------- Redis over TLS

tunnel_pid=
tunnel_dir=
tunnel_conf=
tunnel_log=
tunnel_port=
tunnel_target=
tunnel_exits=() # when (ms) stunnel exited lately

# tunnel_setup: check the rediss:// URL and the files, write stunnel's
# configuration, point VSYNC_REDIS_URL at the loopback end. Exits 2 on a
# bad setting (nothing is running yet).
tunnel_setup() {
	local url=${VSYNC_REDIS_URL#rediss://} auth='' rest='' hostport host port
	local ca=${VSYNC_REDIS_CA:-/etc/ssl/certs/ca-certificates.crt} f check
	if ! command -v stunnel >/dev/null 2>&1; then
		log "error: VSYNC_REDIS_URL is rediss:// but stunnel is not installed (Debian: stunnel4)"
		exit 2
	fi
	if [[ $url == *@* ]]; then
		auth=${url%@*}@
		url=${url##*@}
	fi
	if [[ $url == */* ]]; then
		rest=/${url#*/}
		url=${url%%/*}
	fi
	hostport=$url
	if [[ $hostport == \[*\]* ]]; then
		host=${hostport%%]*}
		host=${host#[}
		port=${hostport#*]}
		port=${port#:}
	else
		host=${hostport%%:*}
		port=
		[[ $hostport == *:* ]] && port=${hostport#*:}
	fi
	port=${port:-6379}
	tunnel_port=${VSYNC_REDIS_TUNNEL_PORT:-16379}
	if [[ ! $host =~ ^[A-Za-z0-9._-]+$ && ! $host =~ ^[0-9A-Fa-f:.]+$ ]] ||
		[[ ! $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
		log "error: VSYNC_REDIS_URL: expected rediss://[[user]:password@]host[:port][/db], saw a bad host or port"
		exit 2
	fi
	if [[ ! $tunnel_port =~ ^[0-9]+$ ]] || ((tunnel_port < 1 || tunnel_port > 65535)); then
		log "error: VSYNC_REDIS_TUNNEL_PORT must be a port number, not '$tunnel_port'"
		exit 2
	fi
	for f in "$ca" ${VSYNC_REDIS_CERT:+"$VSYNC_REDIS_CERT"} ${VSYNC_REDIS_KEY:+"$VSYNC_REDIS_KEY"}; do
		if [[ $f == *$'\n'* || ! -r $f ]]; then
			log "error: Redis over TLS: cannot read '$f' (VSYNC_REDIS_CA, VSYNC_REDIS_CERT, VSYNC_REDIS_KEY)"
			exit 2
		fi
	done
	if [[ -n ${VSYNC_REDIS_CERT:-} && -z ${VSYNC_REDIS_KEY:-} ]] ||
		[[ -z ${VSYNC_REDIS_CERT:-} && -n ${VSYNC_REDIS_KEY:-} ]]; then
		log "error: Redis over TLS: set both VSYNC_REDIS_CERT and VSYNC_REDIS_KEY, or neither"
		exit 2
	fi
	# an address is checked against the certificate's IP SAN, a name
	# against its DNS names (and sent as SNI)
	if [[ $host =~ ^[0-9.]+$ || $host == *:* ]]; then
		check="checkIP = $host"
	else
		check="checkHost = $host"$'\n'"sni = $host"
	fi
	tunnel_target=$host:$port
	[[ $host == *:* ]] && tunnel_target=[$host]:$port
	tunnel_dir=$(mktemp -d "${TMPDIR:-/tmp}/vsync-stunnel.XXXXXX")
	tunnel_conf=$tunnel_dir/stunnel.conf
	tunnel_log=$tunnel_dir/stunnel.log
	cat >"$tunnel_conf" <<EOF
; written by entrypoint.sh: Redis over TLS for vsync-mount
foreground = yes
pid =
debug = warning
output = $tunnel_log
[redis]
client = yes
accept = 127.0.0.1:$tunnel_port
connect = $host:$port
delay = yes
CAfile = $ca
verifyChain = yes
$check
sslVersionMin = TLSv1.2
${VSYNC_REDIS_CERT:+cert = $VSYNC_REDIS_CERT}
${VSYNC_REDIS_KEY:+key = $VSYNC_REDIS_KEY}
EOF
	export VSYNC_REDIS_URL="redis://${auth}127.0.0.1:$tunnel_port$rest"
}

# tunnel_listening: stunnel's port is in LISTEN state (/proc/net/tcp; no
# connection is made), or stunnel is gone.
tunnel_listening() {
	local hex
	gone "$tunnel_pid" && return 0
	hex=$(printf '%04X' "$tunnel_port")
	awk -v p=":$hex" '$2 ~ p "$" && $4 == "0A" { f = 1 } END { exit !f }' \
		/proc/net/tcp
}

# tunnel_start: start stunnel (its own session, in /: a restart happens
# after the cd into the mount, which it must not keep busy) and wait until
# it listens. 0 (also when it is still not listening after 10 s: a warning),
# or 1 if it exited (status in $status).
tunnel_start() {
	(cd / && exec setsid stunnel "$tunnel_conf") </dev/null &
	tunnel_pid=$!
	wait_until 10 tunnel_listening || true
	if gone "$tunnel_pid"; then
		status_of "$tunnel_pid"
		tunnel_pid=
		log "error: stunnel exited at start (status $status); is 127.0.0.1:$tunnel_port free (VSYNC_REDIS_TUNNEL_PORT)?"
		return 1
	fi
	if ! tunnel_listening; then
		log "warning: stunnel does not listen on 127.0.0.1:$tunnel_port after 10 s"
	fi
	return 0
}

# tunnel_probe: one PING through stunnel. Any Redis reply (+PONG, or
# -NOAUTH before vsync-mount's AUTH) means TLS works. A certificate stunnel
# refused ends the script (exit 2); an unreachable server only warns:
# vsync-mount retries, and reads PostgreSQL meanwhile.
tunnel_probe() {
	local reply why
	# shellcheck disable=SC2016 # $1 belongs to the inner shell
	reply=$(timeout 10 bash -c '
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf "PING\r\n" >&3
		IFS= read -r line <&3 || exit 1
		printf "%s\n" "$line"' _ "$tunnel_port" 2>/dev/null) || reply=
	case $reply in
	+* | -*)
		log "Redis over TLS: $tunnel_target verified; vsync-mount uses 127.0.0.1:$tunnel_port (stunnel)"
		return 0
		;;
	esac
	why=$(grep -E 'CERT|certificate|[Vv]erif' "$tunnel_log" 2>/dev/null |
		sed 's/^[0-9. :]*LOG[0-9]\[[^]]*\]: //' | head -n 3 | paste -sd ';' -)
	if [[ -n $why ]]; then
		log "error: Redis over TLS: stunnel refused the certificate of $tunnel_target (CA ${VSYNC_REDIS_CA:-the system CAs}): $why"
		finish 2
	fi
	log "warning: Redis at $tunnel_target does not answer through stunnel now: vsync-mount will retry"
	return 0
}

# tunnel_check: restart stunnel if it exited (and again if the restart
# exits at once). 1 once it has exited five times within 60 s.
tunnel_check() {
	local now t recent
	[[ -n $tunnel_pid ]] || return 0
	gone "$tunnel_pid" || return 0
	status_of "$tunnel_pid"
	tunnel_pid=
	while :; do
		now=$(now_ms)
		recent=()
		for t in "${tunnel_exits[@]}"; do
			((now - t < 60000)) && recent+=("$t")
		done
		tunnel_exits=("${recent[@]}" "$now")
		if ((${#tunnel_exits[@]} >= 5)); then
			log "error: stunnel exited (status $status), the 5th time within 60 s: giving up"
			return 1
		fi
		log "stunnel exited (status $status): restarting it"
		tunnel_start && return 0
	done
}

tunnel_stop() {
	stop_group "$tunnel_pid" stunnel
	tunnel_pid=
	[[ -n $tunnel_dir ]] && rm -rf "$tunnel_dir"
	tunnel_dir=
}

if [[ ${VSYNC_REDIS_URL:-} == rediss://* ]]; then
	tunnel_setup
	tunnel_start || finish 1
	tunnel_probe
fi

# ---------------------------------------------------------------- mount

mount_args=(-f --ready-file "$ready_file" --control "$control")
if [[ -n ${VSYNC_CACHE_DIR:-} ]]; then
	mount_args+=(--cache-dir "$VSYNC_CACHE_DIR")
fi
if [[ -n ${VSYNC_MOUNT_ARGS:-} ]]; then
	read -r -a extra <<<"$VSYNC_MOUNT_ARGS"
	mount_args+=("${extra[@]}")
fi

log "mounting project '$project' at $mnt (control $control)"
t0=$(now_ms)
setsid "$mount_bin" "${mount_args[@]}" "$project" "$mnt" &
mount_pid=$!

ready() {
	[[ -e $ready_file ]] || [[ -n $stop_signal ]] || gone "$mount_pid"
}
deadline=$(($(now_ms) + ready_timeout * 1000))
until ready; do
	if (($(now_ms) >= deadline)); then
		log "error: project '$project' not ready after ${ready_timeout}s"
		finish 1
	fi
	tunnel_check || finish 1
	tick 0.05
done
if [[ -n $stop_signal ]]; then
	log "SIG$stop_signal before the project was ready"
	finish 0
fi
if ! check_children "before the project was ready"; then
	finish "$exit_rc"
fi
log "project '$project' ready in $(($(now_ms) - t0)) ms"

if ! cd "$mnt"; then
	log "error: cannot enter $mnt"
	finish 1
fi

# run_supervised NAME CMD...: run CMD in its own session and wait for it,
# or for a signal, or for vsync-mount to exit. Sets child_rc.
child_rc=
run_supervised() {
	local name=$1 pid
	shift
	setsid "$@" &
	pid=$!
	dev_pid=$pid
	while [[ -z $stop_signal ]] && ! gone "$pid"; do
		if [[ -n $mount_pid ]] && gone "$mount_pid"; then
			check_children "during $name" || true
			finish "$exit_rc"
		fi
		tunnel_check || finish 1
		tick
	done
	if [[ -n $stop_signal ]]; then
		log "SIG$stop_signal during $name"
		finish 0
	fi
	status_of "$pid"
	child_rc=$status
	dev_pid=
}

if [[ $npm_install != never && -f package.json && ! -e node_modules ]]; then
	log "installing dependencies: npm install --no-package-lock"
	run_supervised "npm install" env -u VSYNC_PG_URL -u VSYNC_REDIS_URL \
		npm install --no-package-lock
	if ((child_rc != 0)); then
		log "error: npm install failed (status $child_rc)"
		finish 1
	fi
fi

# ---------------------------------------------------------------- dev server

log "starting the dev server in $mnt: $*"
setsid env -u VSYNC_PG_URL -u VSYNC_REDIS_URL "$@" &
dev_pid=$!

while [[ -z $stop_signal ]] && check_children; do
	tick
done
if [[ -n $stop_signal ]]; then
	log "SIG$stop_signal: shutting down"
	finish 0
fi
finish "$exit_rc"
