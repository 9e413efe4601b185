#!/usr/bin/env bash
#
# test_vite_hmr.sh - the end-to-end case vsync exists for: Vite's dev server
# runs unmodified on a mount (--redis, fed by vsync-relay) and hot-reloads a
# change committed in PostgreSQL.
#
#   container/example is imported as project "example" and mounted;
#   `npm install --no-package-lock` fills the local-only node_modules/;
#   `npx vite --port P --strictPort --debug hmr` serves it; /src/App.jsx is
#   fetched once so it is in Vite's module graph; then three times in a row
#   `vsyncctl put example src/App.jsx` with a new message: Vite must log
#   "hmr update /src/App.jsx" within 15 s, and the very next GET of
#   /src/App.jsx must carry the new message (never the old or an empty one).
#   The time from the put's return to Vite's log line is printed
#   (informational).
#
# Skips (exit 77) without /dev/fuse, without npm/node, or when the npm
# registry does not answer `npm ping` within 20 s. npm's cache is
# $VS_NPM_CACHE (default ~/.npm), so a second run installs from it.
# Environment: VSYNC_BUILD_DIR (default build/), VS_KEEP_LOGS=1 keeps logs.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/servers.sh
. "$here/../lib/servers.sh"

vs_need_fuse
for c in npm node curl; do
	vs_need_cmd "$c" "needed to run Vite"
done
export npm_config_cache=${VS_NPM_CACHE:-$HOME/.npm}
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
if ! timeout -k 2 20 npm ping >/dev/null 2>&1; then
	echo "SKIP: the npm registry is unreachable (npm ping failed within 20 s)"
	exit 77
fi
vs_deadline 280

MOUNT_BIN=$VSYNC_BUILD_DIR/agent/vsync-mount
CTL_BIN=$VSYNC_BUILD_DIR/agent/vsyncctl
RELAY_BIN=$VSYNC_BUILD_DIR/agent/vsync-relay
for b in "$MOUNT_BIN" "$CTL_BIN" "$RELAY_BIN"; do
	if [[ ! -x "$b" ]]; then
		vs_fail "binaries built: expected an executable $b, saw none"
		vs_summary
		exit 1
	fi
done

vs_servers_start all
W=$VS_SERVERS_DIR/work
VS_LOG_DIR=$W/logs
mkdir -p "$VS_LOG_DIR"
MNT=$W/mnt
CACHE=$W/cache
P=example
VITE_LOG=$VS_LOG_DIR/vite.log
mkdir -p "$MNT" "$CACHE"

vs_logs_on_failure "$VS_LOG_DIR/agent.log" "$VS_LOG_DIR/relay.*.log" "$VITE_LOG" "$VS_LOG_DIR/npm.log"

ctl() {
	timeout -k 5 60 "$CTL_BIN" --pg "$VSYNC_PG_URL" -q "$@"
}

stop() {
	vs_summary || true
	exit 1
}

vs_check "vsyncctl init" ctl init
vs_check "import container/example as $P" ctl import "$P" "$VS_REPO_ROOT/container/example"
vs_last_ok || stop
# shellcheck disable=SC2119 # vs_relay_start with its default options
if ! vs_relay_start; then
	vs_fail "relay: expected vsync-relay running, saw it exit"
	stop
fi
if ! vs_mount "$P" "$MNT" --pg "$VSYNC_PG_URL" --redis "$VSYNC_REDIS_URL" \
	--cache-dir "$CACHE" --log-file "$VS_LOG_DIR/agent.log"; then
	vs_fail "mount: expected $MNT mounted within 10 s, saw none"
	stop
fi
vs_pass "mounted $P with --redis"

t0=$(vs_now_ms)
rc=0
(cd "$MNT" && timeout -k 5 150 npm install --no-package-lock --no-audit --no-fund) \
	>"$VS_LOG_DIR/npm.log" 2>&1 </dev/null || rc=$?
if ((rc == 0)); then
	vs_pass "npm install --no-package-lock in the mount ($(($(vs_now_ms) - t0)) ms)"
else
	vs_fail "npm install in the mount: expected exit 0 within 150 s, saw $rc: $(tail -n 3 "$VS_LOG_DIR/npm.log" | tr '\n' ' ')"
	stop
fi

# A free port.
PORT=$(vs_free_port) || PORT=
[[ -n "$PORT" ]] || {
	vs_fail "a free port for Vite: expected one, saw none"
	stop
}
URL=http://127.0.0.1:$PORT

# Vite in its own process group (npx, sh, node, esbuild), killed at exit.
(cd "$MNT" && exec setsid npx vite --port "$PORT" --strictPort --host 127.0.0.1 \
	--debug hmr) >"$VITE_LOG" 2>&1 </dev/null &
VITE_PGID=$!
group_alive() { # a member of process group $1 that is not a zombie
	# shellcheck disable=SC2009 # pgrep cannot leave zombies out
	ps -o stat= -g "$1" 2>/dev/null | grep -qv '^Z'
}
group_gone() {
	! group_alive "$1"
}
stop_vite() {
	kill -TERM -- "-$VITE_PGID" 2>/dev/null || return 0
	if ! vs_poll 10 group_gone "$VITE_PGID"; then
		kill -KILL -- "-$VITE_PGID" 2>/dev/null || true
	fi
	wait "$VITE_PGID" 2>/dev/null || true
}
vs_on_exit stop_vite

serving() {
	curl -sf -o /dev/null --max-time 2 "$URL/"
}
t0=$(vs_now_ms)
if vs_poll 60 serving; then
	vs_pass "vite serves / from the mount ($(($(vs_now_ms) - t0)) ms)"
else
	vs_fail "vite: expected $URL/ to answer within 60 s, saw: $(tail -n 3 "$VITE_LOG" | tr '\n' ' ')"
	stop
fi

get_app() {
	curl -sf --max-time 10 "$URL/src/App.jsx"
}
OLD_MSG='Hello from a vsync mount'
body=$(get_app 2>&1) || true
if [[ $body == *"$OLD_MSG"* ]]; then
	vs_pass "GET /src/App.jsx (now in Vite's module graph) has the imported message"
else
	vs_fail "GET /src/App.jsx: expected '$OLD_MSG', saw '${body:0:120}'"
fi

# Vite's log without colours.
vite_log() {
	sed 's/\x1b\[[0-9;]*m//g' "$VITE_LOG"
}
hmr_count() {
	vite_log | grep -c 'hmr update .*/src/App\.jsx' || true
}
hmr_more_than() {
	(($(hmr_count) > $1))
}

HMR_WAIT=15
cur=$VS_REPO_ROOT/container/example/src/App.jsx
for i in 1 2 3; do
	msg="Hello from live change $i ($RANDOM$RANDOM)"
	sed "s/^const MESSAGE = .*/const MESSAGE = '$msg'/" "$cur" >"$W/App.$i.jsx"
	cur=$W/App.$i.jsx
	before=$(hmr_count)
	if ! ctl put "$P" src/App.jsx "$cur"; then
		vs_fail "edit $i: vsyncctl put: expected exit 0, saw a failure"
		continue
	fi
	t0=${EPOCHREALTIME/./}
	if vs_poll "$HMR_WAIT" hmr_more_than "$before"; then
		t1=${EPOCHREALTIME/./}
		vs_pass "edit $i: Vite logged 'hmr update /src/App.jsx' (seen ≤ $(((t1 - t0) / 1000)) ms after the put returned)"
	else
		vs_fail "edit $i: expected Vite to log 'hmr update /src/App.jsx' within $HMR_WAIT s, saw: $(vite_log | tail -n 3 | tr '\n' ' ')"
		HMR_WAIT=3 # keep a failing run short
		continue
	fi
	body=$(get_app 2>&1) || true
	if [[ $body == *"$msg"* ]]; then
		vs_pass "edit $i: the next GET /src/App.jsx has the new message"
	else
		seen=$(grep -o "const MESSAGE = [^;]*" <<<"$body" | head -n 1)
		vs_fail "edit $i: GET /src/App.jsx right after the HMR update: expected '$msg', saw '${seen:-${body:0:120}}'"
	fi
done

# Vite must not have given up on the file along the way.
errs=$(vite_log | grep -iE 'internal server error|failed to load|error:|page reload' | head -n 3 || true)
vs_check_eq "Vite's log shows no error or full reload" "" "$errs"

stop_vite
if vs_umount "$MNT"; then
	vs_pass "unmounted"
else
	vs_fail "unmount: expected no mount at $MNT, saw one left"
fi
vs_summary
