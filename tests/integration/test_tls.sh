#!/usr/bin/env bash
#
# test_tls.sh - transport encryption against real TLS servers whose CA the
# test makes with openssl (server certificate for CN localhost, SAN
# DNS:localhost and IP:127.0.0.1), and a second, wrong CA.
#
# PostgreSQL (ssl = on, TCP on 127.0.0.1 accepts only TLS):
#   - vsyncctl with `sslmode=verify-full sslrootcert=CA` imports a project;
#     a connection without TLS is refused by the server
#   - vsync-mount with that conninfo: mounts, reads the files, every vsync
#     connection in pg_stat_ssl uses TLS, a remote edit (vsyncctl put)
#     arrives, a local save is committed (vsyncctl cat)
#   - the wrong CA: vsyncctl exits 5 naming "certificate verify failed";
#     vsync-mount exits (no hang, no mount) with a message naming the
#     certificate, with a fresh cache dir and with one that holds the
#     project's manifest (a refused certificate is not "unreachable": the
#     cached manifest is not served)
# Redis (redis-server with port 0 and tls-port: only TLS):
#   - vsync-mount and vsync-relay refuse a rediss:// URL at once, pointing at
#     the stunnel client and docs/operations.md
#   - the relay through a stunnel client (verifyChain, checkHost) publishes;
#     container/entrypoint.sh given VSYNC_REDIS_URL=rediss://:PASSWORD@
#     localhost:PORT/0 (checkHost, SNI; requirepass) and VSYNC_REDIS_CA
#     starts its own stunnel client (its files hold no password), the
#     mount follows the Redis stream and a remote edit arrives; stunnel
#     killed under it: the entrypoint says so and restarts it (in /, so the
#     unmount is not kept busy), and the next edit arrives too; SIGTERM:
#     exit 0, nothing mounted, no stunnel left; stunnel killed five times
#     within 60 s: the entrypoint gives up (exit 1), nothing left
#   - the wrong CA (rediss://127.0.0.1:PORT: checkIP): the entrypoint exits
#     2 within 30 s naming the refused certificate, nothing mounted, no dev
#     server, no stunnel left
#
# Needs /dev/fuse (else exit 77), openssl and stunnel (stunnel4).
# Environment: VSYNC_BUILD_DIR (default build/), VS_KEEP_LOGS=1.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/servers.sh
. "$here/../lib/servers.sh"

vs_need_fuse
vs_deadline 300

ENTRY=$VS_REPO_ROOT/container/entrypoint.sh
CTL_BIN=$VSYNC_BUILD_DIR/agent/vsyncctl
MOUNT_BIN=$VSYNC_BUILD_DIR/agent/vsync-mount
RELAY_BIN=$VSYNC_BUILD_DIR/agent/vsync-relay
for b in "$MOUNT_BIN" "$CTL_BIN" "$RELAY_BIN" "$ENTRY"; do
	if [[ ! -x "$b" ]]; then
		vs_fail "prerequisites: expected an executable $b, saw none"
		vs_summary
		exit 1
	fi
done
for c in openssl stunnel redis-server redis-cli; do
	if ! command -v "$c" >/dev/null 2>&1; then
		vs_fail "prerequisites: expected $c on PATH (tests/lib/build.sh installs it), saw none"
		vs_summary
		exit 1
	fi
done

unset VSYNC_REDIS_URL VSYNC_REDIS_CA VSYNC_PROJECT VSYNC_MOUNT \
	VSYNC_CACHE_DIR VSYNC_USER VSYNC_MOUNT_ARGS VSYNC_READY_FILE
vs_servers_start pg
W=$VS_SERVERS_DIR/work
export VS_LOG_DIR=$W/logs
mkdir -p "$VS_LOG_DIR" "$W/bin" "$W/tree/src" "$W/tmp"
MNT=$W/mnt
mkdir -p "$MNT"

vs_logs_on_failure "$VS_LOG_DIR/*.log" "$VS_SERVERS_DIR/*.log"

T=$W/tls
if ! vs_tls_ca "$T" || ! vs_tls_cert "$T" server || ! vs_tls_ca "$T/wrong"; then
	vs_fail "setup: expected a CA and a server certificate from openssl, saw a failure"
	vs_summary
	exit 1
fi
if ! vs_pg_tls "$T/server.crt" "$T/server.key"; then
	vs_fail "setup: expected PostgreSQL to restart with ssl = on, saw a failure"
	vs_summary
	exit 1
fi

PG_TCP="host=127.0.0.1 port=$VS_PG_TLS_PORT user=postgres dbname=postgres"
PG_TLS="$PG_TCP sslmode=verify-full sslrootcert=$T/ca.crt"
PG_WRONG="$PG_TCP sslmode=verify-full sslrootcert=$T/wrong/ca.crt"

ctl() {
	timeout -k 5 60 "$CTL_BIN" --pg "$PG_TLS" -q "$@"
}

# mount_has FILE CONTENT
mount_has() {
	[[ "$(cat "$1" 2>/dev/null)" == "$2" ]]
}

# pg_has PROJECT PATH CONTENT
pg_has() {
	[[ "$(ctl cat "$1" "$2" 2>/dev/null)" == "$3" ]]
}

# ---------------------------------------------------------------- PostgreSQL

printf 'export const a = 1;\n' >"$W/tree/src/a.js"
printf 'b\n' >"$W/tree/src/b.txt"
vs_check "vsyncctl over TLS (verify-full): init" ctl init
vs_check "vsyncctl over TLS (verify-full): import" ctl import tls "$W/tree"
if ! vs_last_ok; then
	vs_summary || true
	exit 1
fi
if "$VS_PG_BIN/psql" -X -At "$PG_TCP sslmode=disable" -c 'select 1' \
	>"$W/plain.out" 2>&1; then
	vs_fail "TCP without TLS: expected the server to refuse it, saw it accepted"
else
	vs_check "TCP without TLS is refused by the server (so TLS is what works)" \
		grep -q 'no encryption' "$W/plain.out"
fi

if vs_mount tls "$MNT" --pg "$PG_TLS" --cache-dir "$W/cache1"; then
	vs_pass "vsync-mount with sslmode=verify-full mounts"
	vs_check "the mount reads src/a.js" mount_has "$MNT/src/a.js" 'export const a = 1;'
	n=$(vs_sql "select count(*) filter (where s.ssl), count(*) filter (where not s.ssl)
		from pg_stat_activity a join pg_stat_ssl s using (pid)
		where a.application_name = 'vsync'")
	if [[ $n =~ ^([0-9]+)\|0$ ]] && ((BASH_REMATCH[1] > 0)); then
		vs_pass "every vsync connection uses TLS (pg_stat_ssl: $n)"
	else
		vs_fail "every vsync connection uses TLS: expected 'N|0' with N > 0, saw '$n'"
	fi
	printf 'export const a = 2;\n' | ctl put tls src/a.js - ||
		vs_fail "remote edit: vsyncctl put failed"
	vs_check "a remote edit arrives in the mount" \
		vs_poll 20 mount_has "$MNT/src/a.js" 'export const a = 2;'
	printf 'saved here\n' >"$MNT/src/b.txt"
	vs_check "a local save is committed to PostgreSQL" \
		vs_poll 20 pg_has tls src/b.txt 'saved here'
	vs_check "unmount" vs_umount "$MNT"
else
	vs_fail "vsync-mount with sslmode=verify-full: expected a mount, saw $(tail -n 3 "$VS_MOUNT_LOG")"
fi

rc=0
out=$(timeout -k 5 60 "$CTL_BIN" --pg "$PG_WRONG" status tls 2>&1) || rc=$?
vs_check_eq "wrong CA: vsyncctl exits 5 (backend refused)" 5 "$rc"
vs_check "wrong CA: vsyncctl says 'certificate verify failed'" \
	grep -q 'certificate verify failed' <<<"$out"

# wrong_ca_mount DESC CACHE: vsync-mount must exit by itself, not mount, and
# say why.
wrong_ca_mount() {
	local desc=$1 cache=$2 t0
	t0=$(vs_now_ms)
	if vs_mount tls "$MNT" --pg "$PG_WRONG" --cache-dir "$cache" 2>/dev/null; then
		vs_fail "wrong CA, $desc: expected vsync-mount to refuse, saw it mounted"
		vs_umount "$MNT"
		return 0
	fi
	if vs_is_mounted "$MNT" || ! vs__pid_gone "$VS_MOUNT_PID"; then
		vs_fail "wrong CA, $desc: expected vsync-mount to exit, saw it still running"
		return 0
	fi
	vs_pass "wrong CA, $desc: vsync-mount exits without mounting ($(($(vs_now_ms) - t0)) ms)"
	vs_check "wrong CA, $desc: the error names the certificate" \
		grep -q 'level=error.*certificate verify failed' "$VS_MOUNT_LOG"
}
wrong_ca_mount "fresh cache dir" "$W/cache-fresh"
wrong_ca_mount "the cache dir holds the manifest" "$W/cache1"

# ---------------------------------------------------------------- Redis

RPASS=tls-$RANDOM$RANDOM
redis_tls() {
	REDISCLI_AUTH=$RPASS timeout -k 2 10 redis-cli --tls \
		--cacert "$T/ca.crt" -h 127.0.0.1 -p "$VS_REDIS_TLS_PORT" "$@"
}

if ! vs_redis_tls_start "$T/server.crt" "$T/server.key" "$T/ca.crt" "$RPASS"; then
	vs_fail "setup: expected redis-server with tls-port, saw a failure"
	vs_summary
	exit 1
fi
if [[ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$VS_REDIS_TLS_PORT" ping 2>/dev/null)" == PONG ]]; then
	vs_fail "Redis without TLS: expected no answer on the TLS port, saw PONG"
else
	vs_pass "Redis answers only over TLS"
fi
RTLS="rediss://127.0.0.1:$VS_REDIS_TLS_PORT"

rc=0
out=$(timeout 10 "$MOUNT_BIN" --redis "$RTLS" --pg "$PG_TLS" \
	--cache-dir "$W/cache-r" tls "$MNT" -f 2>&1) || rc=$?
vs_check_eq "vsync-mount --redis rediss://: refused at once (exit 2)" 2 "$rc"
vs_check "vsync-mount --redis rediss://: the message points at stunnel and the docs" \
	grep -q 'rediss://.*stunnel.*docs/operations.md' <<<"$out"
vs_check "vsync-mount --redis rediss://: nothing mounted" vs__not_mounted "$MNT"
rc=0
out=$(timeout 10 "$RELAY_BIN" --redis "$RTLS" --pg "$PG_TLS" 2>&1) || rc=$?
if ((rc != 0 && rc != 124)); then
	vs_pass "vsync-relay --redis rediss://: refused (exit $rc)"
else
	vs_fail "vsync-relay --redis rediss://: expected a non-zero exit, saw $rc"
fi
vs_check "vsync-relay --redis rediss://: the message points at stunnel and the docs" \
	grep -q 'rediss://.*stunnel.*docs/operations.md' <<<"$out"

# The relay reaches Redis through its own stunnel client (the documented
# way outside the container image).
RELAY_PORT=$(vs_free_port)
if vs_stunnel_client relay-stunnel "$RELAY_PORT" "$VS_REDIS_TLS_PORT" "$T/ca.crt" &&
	VSYNC_PG_URL=$PG_TLS VSYNC_REDIS_URL=redis://:$RPASS@127.0.0.1:$RELAY_PORT \
		vs_relay_start --poll-interval 200; then
	vs_pass "vsync-relay runs through a stunnel client"
else
	vs_fail "vsync-relay through stunnel: expected it to start, saw a failure"
fi
ID=$(ctl status tls | sed -n 's/^id[: ]*//p' | tr -d ' \t')
seq_now=$(vs_sql "select change_seq from projects where name = 'tls'")
relay_caught_up() {
	[[ "$(redis_tls GET "relay:{$ID}:cursor" 2>/dev/null)" == "$seq_now" ]]
}
vs_check "the relay publishes over TLS (cursor = $seq_now)" vs_poll 30 relay_caught_up

# The fake dev server: records its pid, sleeps until TERM.
cat >"$W/bin/fake-dev" <<'EOF'
#!/usr/bin/env bash
trap 'kill "$s" 2>/dev/null; exit 0' TERM
sleep 1000 &
s=$!
echo "$$" >"$FAKE_DEV_OUT"
wait "$s"
EOF
chmod +x "$W/bin/fake-dev"
DEV_OUT=$W/dev.out

entry_stunnel() {
	vs_pids_of stunnel "$W/tmp/" | head -n 1
}
no_entry_stunnel() {
	[[ -z "$(entry_stunnel)" ]]
}
entry_stunnel_runs() {
	[[ -n "$(entry_stunnel)" ]]
}
# dev_started_or_entry_gone: the fake dev server wrote its pid, or the
# entrypoint exited (no point in waiting longer).
dev_started_or_entry_gone() {
	[[ -s $DEV_OUT ]] || vs__pid_gone "$ENTRY_PID"
}

ENTRY_SEQ=0
# start_entry [ENV=VALUE...]: the entrypoint in the background with the
# fake dev server; sets ENTRY_PID and ENTRY_LOG.
start_entry() {
	ENTRY_SEQ=$((ENTRY_SEQ + 1))
	ENTRY_LOG=$VS_LOG_DIR/entry.$ENTRY_SEQ.log
	rm -f "$DEV_OUT"
	env TMPDIR="$W/tmp" VSYNC_PROJECT=tls VSYNC_MOUNT="$MNT" \
		VSYNC_CACHE_DIR="$W/cache-e" VSYNC_BIN_DIR="$VSYNC_BUILD_DIR/agent" \
		VSYNC_CONTROL="127.0.0.1:$(vs_free_port)" VSYNC_STOP_GRACE=5 \
		VSYNC_READY_TIMEOUT=60 VSYNC_NPM_INSTALL=never \
		VSYNC_PG_URL="$PG_TLS" VSYNC_REDIS_URL="$RTLS" \
		VSYNC_REDIS_TUNNEL_PORT="$(vs_free_port)" \
		FAKE_DEV_OUT="$DEV_OUT" "$@" \
		"$ENTRY" "$W/bin/fake-dev" >"$ENTRY_LOG" 2>&1 </dev/null &
	ENTRY_PID=$!
	vs_on_exit "stop_entry $ENTRY_PID"
}
stop_entry() {
	local p
	if ! vs__pid_gone "$1"; then
		kill -TERM "$1" 2>/dev/null
		vs_poll 20 vs__pid_gone "$1" || kill -KILL "$1" 2>/dev/null
	fi
	wait "$1" 2>/dev/null
	for p in $(vs_pids_of "$W/bin/fake-dev") $(vs_pids_of vsync-mount "$MNT") \
		$(entry_stunnel); do
		kill -KILL "$p" 2>/dev/null
	done
	vs__cleanup_mount "$MNT"
	return 0
}
entry_exit() {
	vs_wait_exit "$ENTRY_PID" "$1"
	ENTRY_RC=$VS_EXIT_RC ENTRY_MS=$VS_EXIT_MS
}
# remote_edit N: vsyncctl put src/a.js, then poll the mount for it.
remote_edit() {
	printf 'export const a = %s;\n' "$1" | ctl put tls src/a.js - &&
		vs_poll 20 mount_has "$MNT/src/a.js" "export const a = $1;"
}

# A host name (checkHost, SNI) and a password (through the tunnel; the
# PING before the mount gets -NOAUTH, which proves TLS works).
start_entry VSYNC_REDIS_CA="$T/ca.crt" \
	VSYNC_REDIS_URL="rediss://:$RPASS@localhost:$VS_REDIS_TLS_PORT/0"
vs_poll 60 dev_started_or_entry_gone || true
if [[ -s $DEV_OUT ]]; then
	vs_pass "entrypoint with rediss://:PASSWORD@localhost and VSYNC_REDIS_CA: the dev server started"
	vs_check "entrypoint: the password is not in stunnel's files" \
		test -z "$(grep -rl -- "$RPASS" "$W/tmp" 2>/dev/null)"
	vs_check "entrypoint: stunnel runs" entry_stunnel_runs
	vs_check "entrypoint: the mount follows the Redis stream" \
		grep -q 'following changes .* via the Redis stream' "$ENTRY_LOG"
	vs_check "entrypoint: a remote edit arrives (relay -> TLS Redis -> mount)" \
		remote_edit 3
	st=$(entry_stunnel)
	if [[ -n $st ]]; then
		kill -KILL "$st"
		vs_check "stunnel killed: the entrypoint says so and restarts it" \
			vs_poll 20 grep -q 'stunnel exited.*restart' "$ENTRY_LOG"
		vs_check "stunnel killed: a new stunnel runs" \
			vs_poll 20 entry_stunnel_runs
		vs_check "stunnel killed: the next remote edit arrives" remote_edit 4
	fi
	vs_check "entrypoint: the dev server runs on" test -s "$DEV_OUT"
	kill -TERM "$ENTRY_PID"
	entry_exit 30
	vs_check_eq "SIGTERM: the entrypoint exits 0 (took $ENTRY_MS ms)" 0 "$ENTRY_RC"
	vs_check "SIGTERM: the restarted stunnel did not keep the mount busy" \
		test -z "$(grep 'failed (busy?)' "$ENTRY_LOG")"
	vs_check "SIGTERM: nothing is mounted" vs__not_mounted "$MNT"
	vs_check "SIGTERM: no stunnel left" vs_poll 5 no_entry_stunnel
else
	vs_fail "entrypoint with rediss://: expected the dev server to start, saw $(tail -n 5 "$ENTRY_LOG")"
fi

# stunnel that keeps dying: the fifth exit within 60 s stops everything.
start_entry VSYNC_REDIS_CA="$T/ca.crt" \
	VSYNC_REDIS_URL="rediss://:$RPASS@localhost:$VS_REDIS_TLS_PORT"
vs_poll 60 dev_started_or_entry_gone || true
if [[ -s $DEV_OUT ]]; then
	for i in 1 2 3 4 5; do
		vs_poll 20 entry_stunnel_runs || break
		kill -KILL "$(entry_stunnel)" 2>/dev/null || true
		vs_poll 20 eval "((\$(grep -c 'stunnel exited' '$ENTRY_LOG') >= $i))" || break
	done
	entry_exit 30
	vs_check_eq "stunnel killed 5 times within 60 s: the entrypoint exits 1" 1 "$ENTRY_RC"
	vs_check "stunnel killed 5 times: the log says it gave up" \
		grep -q 'stunnel exited .*giving up' "$ENTRY_LOG"
	vs_check "stunnel killed 5 times: nothing is mounted" vs__not_mounted "$MNT"
	vs_check "stunnel killed 5 times: no stunnel left" vs_poll 5 no_entry_stunnel
else
	vs_fail "entrypoint (second run): expected the dev server to start, saw $(tail -n 5 "$ENTRY_LOG")"
fi

start_entry VSYNC_REDIS_CA="$T/wrong/ca.crt"
entry_exit 30
vs_check_eq "wrong CA: the entrypoint exits 2 within 30 s (took $ENTRY_MS ms)" 2 "$ENTRY_RC"
vs_check "wrong CA: the entrypoint names the refused certificate" \
	grep -q 'error: .*certificate' "$ENTRY_LOG"
vs_check "wrong CA: nothing is mounted" vs__not_mounted "$MNT"
vs_check "wrong CA: the dev server never started" test ! -e "$DEV_OUT"
vs_check "wrong CA: no stunnel left" vs_poll 5 no_entry_stunnel

vs_summary
