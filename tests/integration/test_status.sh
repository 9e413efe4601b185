#!/usr/bin/env bash
#
# test_status.sh - the sync state of a mount, told from the data
# (docs/operations.md, "Sync state"), against real PostgreSQL, Redis,
# vsync-relay and two FUSE mounts of one project:
#
#   - GET /status says in_sync once applied = head, nothing pending,
#     nothing diverged; `vsync-mount --status MOUNTPOINT` prints
#     "in sync at change N" and exits 0; /metrics has vsync_head_seq,
#     vsync_sync_lag_seconds, vsync_files_diverged, vsync_save_age_seconds
#   - with the relay stopped and changes committed: state "behind",
#     behind > 0 and lag_ms > 0 (the head read from PostgreSQL);
#     `vsync-mount --status` exits 1; `vsyncctl status` lists the two
#     mounts with their seqs, both BEHIND
#   - relay restarted: in sync again, the lag of the last change and the
#     histogram filled; `vsyncctl status` lists both at the head
#   - a save PostgreSQL refuses for good (a CHECK constraint the test
#     adds) makes the file diverged ("refused"), counted in
#     vsync_files_diverged; saved again once it is accepted, cleared
#   - a save made while PostgreSQL is down is pending, with an age, and
#     the file diverged "unsaved"; PostgreSQL back: in sync
#   - a save pending while an edit of the same line arrives from elsewhere:
#     the file is diverged, "conflict", until the save is committed (over
#     the other edit, recorded, announced as a conflict event)
#   - /readyz turns 503 while Redis is down (the change follower cannot
#     follow) and 200 again once it is back
#   - a malformed heartbeat in containers:{id} is ignored by vsyncctl
#   - --log-format json: every line of the mount's log is one JSON object
#     with the same keys
#   - GET /events (WebSocket, a Node.js client: tests/integration/
#     ws_events.js): a committed change arrives as change.applied with its
#     seq, path, op and lag; a client resumes after an event id and after
#     a change seq and gets exactly the changes it missed; replayed from
#     the start, the ring holds ready, backend.up/down, save.committed and
#     save.refused; a plain GET /events is 426
#
# Needs /dev/fuse (else exit 77), curl; node >= 20 for the /events checks
# (left out without it). Environment: VSYNC_BUILD_DIR.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/servers.sh
. "$here/../lib/servers.sh"

vs_need_fuse
vs_deadline 300

MOUNT_BIN=$VSYNC_BUILD_DIR/agent/vsync-mount
CTL_BIN=$VSYNC_BUILD_DIR/agent/vsyncctl
for b in "$MOUNT_BIN" "$CTL_BIN" "$VSYNC_BUILD_DIR/agent/vsync-relay"; do
	if [[ ! -x "$b" ]]; then
		echo "test_status: $b is missing (build first)" >&2
		exit 1
	fi
done
if ! command -v curl >/dev/null 2>&1; then
	echo "test_status: curl is missing (apt-get install curl)" >&2
	exit 1
fi

vs_servers_start all || exit 1
W=$VS_SERVERS_DIR/work
VS_LOG_DIR=$W/logs
mkdir -p "$VS_LOG_DIR" "$W/tree/src" "$W/ca" "$W/cb" "$W/ma" "$W/mb"
export VS_LOG_DIR

vs_logs_on_failure "$VS_LOG_DIR/mount.*.log" "$VS_LOG_DIR/relay.*.log"

ctl() { timeout -k 5 60 "$CTL_BIN" --pg "$VSYNC_PG_URL" -q "$@"; }
sql() {
	timeout -k 2 30 "$VS_PG_BIN/psql" -X -At -q -v ON_ERROR_STOP=1 \
		"$VSYNC_PG_URL" -c "$1"
}
project_seq() { sql "SELECT change_seq FROM projects WHERE name = 'st'"; }
cursor() { vs_redis_cli GET "relay:{$ID}:cursor"; }
relay_caught_up() { [[ "$(cursor)" == "$(project_seq)" ]]; }

# status PORT: the JSON of GET /status (one line, jansson's compact form)
status() { curl -s --max-time 5 "http://127.0.0.1:$1/status"; }
# field JSON KEY: a scalar field of that compact JSON
field() {
	local v
	v=$(printf '%s' "$1" | grep -o "\"$2\":[^,}]*" | head -n 1)
	printf '%s\n' "${v#*:}"
}
state_is() { # PORT STATE
	S=$(status "$1")
	[[ "$(field "$S" state)" == "\"$2\"" ]]
}
in_sync() { # PORT
	S=$(status "$1")
	[[ "$(field "$S" in_sync)" == true ]]
}
readyz() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$1/readyz"; }
metric() { # PORT NAME: its value
	curl -s --max-time 5 "http://127.0.0.1:$1/metrics" |
		awk -v n="$2" '$1 == n { print $2 }'
}

# ---------------------------------------------------------------- setup

printf 'export const a = 1;\n' >"$W/tree/src/a.js"
printf '{ "name": "st" }\n' >"$W/tree/package.json"
vs_check "vsyncctl init" ctl init
vs_check "import project st" ctl import st "$W/tree"
ID=$(ctl status st | awk '$1 == "id" { print $2 }')
vs_relay_start || exit 1
vs_check "relay publishes the import" vs_poll 20 relay_caught_up

PA=$(vs_free_port) && PB=$(vs_free_port) || exit 1
[[ "$PA" != "$PB" ]] || PB=$(vs_free_port)
MA=$W/ma
MB=$W/mb
vs_mount st "$MA" --pg "$VSYNC_PG_URL" --redis "$VSYNC_REDIS_URL" \
	--cache-dir "$W/ca" --control "127.0.0.1:$PA" || exit 1
vs_mount st "$MB" --pg "$VSYNC_PG_URL" --redis "$VSYNC_REDIS_URL" \
	--cache-dir "$W/cb" --control "127.0.0.1:$PB" --log-format json || exit 1
LOG_B=$VS_MOUNT_LOG

# ---------------------------------------------------------------- in sync

HEAD=$(project_seq)
if vs_poll 20 in_sync "$PA"; then
	vs_pass "mount A: /status in_sync at the import"
else
	vs_fail "mount A: /status in_sync at the import: expected in_sync true, saw $S"
fi
vs_check_eq "mount A: applied_seq = head = change_seq" "$HEAD $HEAD" \
	"$(field "$S" applied_seq) $(field "$S" head_seq)"
vs_check_eq "mount A: head read from PostgreSQL" '"postgres"' "$(field "$S" head_source)"
vs_check "mount B: /status in_sync too" vs_poll 20 in_sync "$PB"
out=$("$MOUNT_BIN" --status "$MA" --cache-dir "$W/ca" 2>&1)
rc=$?
vs_check_eq "vsync-mount --status MOUNTPOINT: one line, exit 0" \
	"0 in sync at change $HEAD" "$rc $out"
out=$("$MOUNT_BIN" --status "127.0.0.1:$PB" 2>&1)
rc=$?
vs_check_eq "vsync-mount --status ADDR:PORT (mount B)" \
	"0 in sync at change $HEAD" "$rc $out"
out=$("$MOUNT_BIN" --status "$W" --cache-dir "$W/ca" 2>&1)
rc=$?
vs_check_eq "vsync-mount --status on a directory that is not the mount: exit 3" 3 "$rc"
for m in vsync_head_seq vsync_files_diverged vsync_save_age_seconds \
	vsync_sync_lag_seconds_count; do
	v=$(metric "$PA" "$m")
	if [[ -n "$v" ]]; then
		vs_pass "/metrics has $m ($v)"
	else
		vs_fail "/metrics has $m: expected a value, saw none"
	fi
done
vs_check_eq "/readyz 200 while following" 200 "$(readyz "$PA")"

# ---------------------------------------------------------------- behind

vs_relay_stop || true
printf 'export const b = 2;\n' >"$W/b.js"
vs_check "put src/b.js with the relay stopped" ctl put st src/b.js "$W/b.js"
vs_check "put src/c.js with the relay stopped" ctl put st src/c.js "$W/b.js"
HEAD2=$(project_seq)
behind_with_lag() {
	state_is "$PA" behind || return 1
	(($(field "$S" lag_ms) > 0 && $(field "$S" behind) > 0))
}
if vs_poll 20 behind_with_lag; then
	vs_pass "relay stopped: /status says behind, lag_ms $(field "$S" lag_ms) > 0"
else
	vs_fail "relay stopped: expected state behind with lag_ms > 0, saw $S"
fi
vs_check_eq "behind by the changes committed" "$((HEAD2 - HEAD)) $HEAD2 false" \
	"$(field "$S" behind) $(field "$S" head_seq) $(field "$S" in_sync)"
vs_check_eq "lag from the commit time PostgreSQL gave (not estimated)" false \
	"$(field "$S" lag_estimated)"
out=$("$MOUNT_BIN" --status "$MA" --cache-dir "$W/ca" 2>&1)
rc=$?
case "$rc $out" in
"1 behind: change $HEAD of $HEAD2, lag "*) vs_pass "vsync-mount --status while behind: $out" ;;
*) vs_fail "vsync-mount --status while behind: expected exit 1 and 'behind: change $HEAD of $HEAD2, lag ...', saw $rc '$out'" ;;
esac
fleet() { VSYNC_REDIS_URL=$VSYNC_REDIS_URL ctl status st 2>&1; }
two_behind() {
	F=$(fleet)
	grep -q '^containers 2 live, 2 behind$' <<<"$F"
}
if vs_poll 30 two_behind; then
	vs_pass "vsyncctl status: two live containers, both behind"
else
	vs_fail "vsyncctl status: expected 'containers 2 live, 2 behind', saw: $F"
fi
n=$(grep -c "^container .*:$MA seq $HEAD behind $((HEAD2 - HEAD)) .* BEHIND$\|^container .*:$MB seq $HEAD behind $((HEAD2 - HEAD)) .* BEHIND$" <<<"$F")
vs_check_eq "vsyncctl status: each mount's seq and BEHIND" 2 "$n"

# ---------------------------------------------------------------- caught up

vs_relay_start || exit 1
if vs_poll 30 in_sync "$PA"; then
	vs_pass "relay back: mount A in sync again"
else
	vs_fail "relay back: expected in_sync true, saw $S"
fi
vs_check_eq "applied the head" "$HEAD2 $HEAD2" \
	"$(field "$S" applied_seq) $(field "$S" head_seq)"
lag=$(field "$S" last_change_lag_ms)
if [[ "$lag" =~ ^[0-9]+$ ]]; then
	vs_pass "last_change_lag_ms is a number ($lag ms)"
else
	vs_fail "last_change_lag_ms: expected a number, saw '$lag'"
fi
cnt=$(metric "$PA" vsync_sync_lag_seconds_count)
if [[ "$cnt" =~ ^[0-9]+$ ]] && ((cnt >= 2)); then
	vs_pass "vsync_sync_lag_seconds counts the applied changes ($cnt)"
else
	vs_fail "vsync_sync_lag_seconds_count: expected >= 2, saw '$cnt'"
fi
both_at_head() {
	F=$(fleet)
	grep -q '^containers 2 live, 0 behind$' <<<"$F" &&
		(($(grep -c "^container .* seq $HEAD2 behind 0 .* state in_sync " <<<"$F") == 2))
}
if vs_poll 30 both_at_head; then
	vs_pass "vsyncctl status: both mounts at seq $HEAD2, in sync"
else
	vs_fail "vsyncctl status: expected both at seq $HEAD2 in_sync, saw: $F"
fi

# ---------------------------------------------------------------- /events

WS_JS=$here/ws_events.js
HAVE_WS=
if command -v node >/dev/null 2>&1 &&
	node --experimental-websocket -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)' 2>/dev/null; then
	HAVE_WS=1
else
	vs_log "no node with a WebSocket client (node >= 20): the /events checks are left out"
fi
# events QUERY COUNT IDLE_MS: the events a client gets (one per line)
events() {
	timeout -k 2 30 node --experimental-websocket "$WS_JS" \
		"ws://127.0.0.1:$PA/events$1" "$2" "$3"
}
if [[ -n "$HAVE_WS" ]]; then
	rm -f "$W/opened"
	timeout -k 2 30 node --experimental-websocket "$WS_JS" \
		"ws://127.0.0.1:$PA/events" 1 0 "$W/opened" >"$W/ev1" 2>&1 &
	evpid=$!
	vs_check "/events: a client connects" vs_poll 10 test -e "$W/opened"
	vs_check "put src/e.js" ctl put st src/e.js "$W/b.js"
	SEQ_E=$(project_seq)
	wait "$evpid"
	rc=$?
	ev=$(cat "$W/ev1")
	case "$rc $ev" in
	"0 {\"id\":"*",\"type\":\"change.applied\",\"seq\":$SEQ_E,\"op\":\"create\",\"path\":\"src/e.js\",\"lag_ms\":"[0-9]*",\"ts\":"*)
		vs_pass "/events: change.applied with seq $SEQ_E, op, path and lag_ms" ;;
	*) vs_fail "/events: expected change.applied of src/e.js at seq $SEQ_E, saw exit $rc: $ev" ;;
	esac
	ID_E=$(field "$ev" id)
	vs_check "put src/f.js" ctl put st src/f.js "$W/b.js"
	vs_check "put src/g.js" ctl put st src/g.js "$W/b.js"
	vs_poll 30 in_sync "$PA" || true
	paths_of() { grep -o '"type":"change.applied","seq":[0-9]*,"op":"[a-z]*","path":"[^"]*"' | sed 's/.*"path"://' | tr '\n' ' '; }
	got=$(events "?after=$ID_E" 2 0 | paths_of)
	vs_check_eq "/events?after=ID: the two changes missed, in order" \
		'"src/f.js" "src/g.js" ' "$got"
	got=$(events "?seq=$SEQ_E" 2 0 | paths_of)
	vs_check_eq "/events?seq=N: the changes after seq $SEQ_E" \
		'"src/f.js" "src/g.js" ' "$got"
	vs_check_eq "plain GET /events: 426" 426 \
		"$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$PA/events")"
fi

# a hostile container's entry in containers:{id} is skipped, not shown
vs_redis_cli ZADD "containers:{$ID}" "$(($(date +%s) + 60))" '{"v":1,"host":"x\u0007y"}' >/dev/null
vs_redis_cli ZADD "containers:{$ID}" "$(($(date +%s) + 60))" 'not json' >/dev/null
F=$(fleet)
if grep -q '^containers 2 live, [0-9]* behind$' <<<"$F"; then
	vs_pass "malformed heartbeats ignored (still 2 containers)"
else
	vs_fail "malformed heartbeats: expected 'containers 2 live', saw: $F"
fi
vs_check_eq "and reported" 1 "$(grep -c 'ignored 2 malformed entries' <<<"$F")"

# ---------------------------------------------------------------- refused

# A CHECK constraint stands for any refusal for good (class 23): the save
# of src/refused.js is refused, the file stays as written here.
vs_check "a constraint that refuses src/refused.js" \
	sql "ALTER TABLE project_files ADD CONSTRAINT test_status_refuse CHECK (file_path <> 'src/refused.js') NOT VALID"
printf 'first\n' >"$MA/src/refused.js"
refused() {
	state_is "$PA" diverged &&
		[[ "$(field "$S" files_diverged)" == 1 ]] &&
		grep -q '"path":"src/refused.js","reason":"refused"' <<<"$S"
}
if vs_poll 30 refused; then
	vs_pass "a save PostgreSQL refuses: diverged, reason refused"
else
	vs_fail "a refused save: expected state diverged with src/refused.js refused, saw $S"
fi
vs_check_eq "vsync_files_diverged 1" 1 "$(metric "$PA" vsync_files_diverged)"
out=$("$MOUNT_BIN" --status "$MA" --cache-dir "$W/ca" 2>&1)
case "$out" in
*"1 file diverged (1 refused)"*) vs_pass "vsync-mount --status names it: $out" ;;
*) vs_fail "vsync-mount --status with a refused save: expected '1 file diverged (1 refused)', saw '$out'" ;;
esac
vs_check "the constraint dropped" \
	sql "ALTER TABLE project_files DROP CONSTRAINT test_status_refuse"
printf 'second\n' >"$MA/src/refused.js"
if vs_poll 30 in_sync "$PA"; then
	vs_pass "saved again and committed: in sync, nothing diverged"
else
	vs_fail "saved again: expected in_sync, saw $S"
fi
vs_check_eq "PostgreSQL has what the mount shows" second \
	"$(ctl cat st src/refused.js)"
vs_check_eq "vsync_files_diverged 0" 0 "$(metric "$PA" vsync_files_diverged)"

# ------------------------------------------------------- written, not saved

# A file being written, with no pause as long as the quiet period
# (--save-quiet-ms) yet, is a local edit nobody has saved: diverged
# (unsaved) until its writer pauses (or closes it) and the save is
# committed. The writer appends a line every 5 ms through a descriptor it
# keeps open; a save that slips in between two lines on a slow machine is
# followed by the next line's unsaved edit.
exec 7>"$MA/src/open.js"
printf 'export const o = 1;\n' >&7
(while printf '// more\n' >&7; do sleep 0.005; done) 2>/dev/null &
writer=$!
vs_on_exit kill "$writer"
open_unsaved() {
	S=$(status "$PA")
	state_is "$PA" saving &&
		grep -q '"path":"src/open.js","reason":"unsaved"' <<<"$S"
}
if vs_poll 10 open_unsaved; then
	vs_pass "a file being written: saving, src/open.js unsaved"
else
	vs_fail "a file being written: expected state saving with src/open.js unsaved, saw $S"
fi
counted() { [[ "$(metric "$PA" vsync_files_diverged)" == 1 ]]; }
vs_check "and counted in vsync_files_diverged" vs_poll 10 counted
kill "$writer"
wait "$writer" 2>/dev/null || true
exec 7>&-
if vs_poll 30 in_sync "$PA"; then
	vs_pass "the writer stopped: saved, committed, in sync"
else
	vs_fail "the writer stopped: expected in_sync, saw $S"
fi
vs_check_eq "PostgreSQL has src/open.js as the mount shows it" "$(sha256sum <"$MA/src/open.js")" \
	"$(ctl cat st src/open.js | sha256sum)"

# ---------------------------------------------------------------- pending

vs_pg_stop || exit 1
printf 'export const d = 4;\n' >"$MA/src/d.js"
pending() {
	S=$(status "$PA")
	[[ "$(field "$S" saves_pending)" == 1 ]] &&
		(($(field "$S" oldest_save_age_ms) > 0)) &&
		grep -q '"path":"src/d.js","reason":"unsaved"' <<<"$S"
}
if vs_poll 20 pending; then
	vs_pass "PostgreSQL down: 1 save pending, age $(field "$S" oldest_save_age_ms) ms, src/d.js unsaved"
else
	vs_fail "PostgreSQL down: expected 1 pending save of src/d.js with an age, saw $S"
fi
vs_check_eq "not in sync while a save is pending" false "$(field "$S" in_sync)"
vs_check_eq "head from the Redis cursor while PostgreSQL is down" '"redis"' \
	"$(field "$S" head_source)"
vs_pg_start_again || exit 1
if vs_poll 60 in_sync "$PA"; then
	vs_pass "PostgreSQL back: the save committed, in sync"
else
	vs_fail "PostgreSQL back: expected in_sync, saw $S"
fi

# ---------------------------------------------------------------- conflict
#
# Mount C reaches PostgreSQL through a proxy (tcp_proxy.js) the test can
# stop: with it stopped, C's save of src/a.js stays pending while an edit
# of the same line is committed elsewhere and reaches C through the
# stream: src/a.js is diverged, "conflict". The proxy back, C's save is
# committed over the other edit (recorded), and C is in sync again.

if [[ -n "$HAVE_WS" ]]; then
	PP=$(vs_free_port)
	PC=$(vs_free_port)
	# (not under vs_check: its $(...) would wait for the proxy's stdout)
	proxy_start() {
		node "$here/tcp_proxy.js" "$PP" "$VS_PG_SOCKDIR/.s.PGSQL.$PGPORT" \
			</dev/null >>"$VS_LOG_DIR/proxy.log" 2>&1 &
		PROXY_PID=$!
		vs_on_exit "kill $PROXY_PID 2>/dev/null; wait $PROXY_PID 2>/dev/null"
		if vs_poll 10 vs__port_in_use "$PP"; then
			vs_pass "$1"
		else
			vs_fail "$1: expected the proxy listening on $PP, saw nothing"
		fi
	}
	proxy_start "a proxy to PostgreSQL for mount C"
	mkdir -p "$W/mc" "$W/cc"
	vs_mount st "$W/mc" --pg "host=127.0.0.1 port=$PP user=$PGUSER dbname=$PGDATABASE sslmode=disable" \
		--redis "$VSYNC_REDIS_URL" --cache-dir "$W/cc" --control "127.0.0.1:$PC" || exit 1
	vs_check "mount C in sync" vs_poll 20 in_sync "$PC"
	kill "$PROXY_PID" && wait "$PROXY_PID" 2>/dev/null
	printf 'export const a = "C";\n' >"$W/mc/src/a.js"
	saving() { state_is "$PC" saving; }
	vs_check "mount C: its save pending while PostgreSQL is away" vs_poll 20 saving
	printf 'export const a = "elsewhere";\n' >"$W/a.js"
	vs_check "an edit of the same line committed elsewhere" ctl put st src/a.js "$W/a.js"
	conflict() {
		state_is "$PC" diverged &&
			grep -q '"path":"src/a.js","reason":"conflict"' <<<"$S"
	}
	if vs_poll 30 conflict; then
		vs_pass "mount C: src/a.js diverged, reason conflict"
	else
		vs_fail "mount C: expected src/a.js diverged for a conflict, saw $S"
	fi
	proxy_start "the proxy back"
	if vs_poll 60 in_sync "$PC"; then
		vs_pass "mount C: its save committed over the other edit: in sync"
	else
		vs_fail "mount C: expected in sync once PostgreSQL is back, saw $S"
	fi
	vs_check_eq "PostgreSQL has C's version" 'export const a = "C";' "$(ctl cat st src/a.js)"
	vs_check_eq "the conflict recorded" 1 \
		"$(sql "SELECT count(*) FROM vsync_conflicts((SELECT id FROM projects WHERE name = 'st'), 'src/a.js')")"
	got=$(timeout -k 2 30 node --experimental-websocket "$WS_JS" \
		"ws://127.0.0.1:$PC/events?after=0" 100000 1500 | grep -c '"type":"conflict","path":"src/a.js",.*"by":"this mount"')
	vs_check_eq "mount C: a conflict event" 1 "$got"
	vs_umount "$W/mc"
fi

# ---------------------------------------------------------------- /readyz

vs_redis_stop
not_ready() { [[ "$(readyz "$PA")" == 503 ]]; }
if vs_poll 20 not_ready; then
	vs_pass "Redis down: /readyz 503"
else
	vs_fail "Redis down: expected /readyz 503, saw $(readyz "$PA")"
fi
body=$(curl -s --max-time 5 "http://127.0.0.1:$PA/readyz")
vs_check_eq "/readyz says why" "not ready: not following changes (backends unreachable)" "$body"
vs_redis_start || exit 1
ready() { [[ "$(readyz "$PA")" == 200 ]]; }
if vs_poll 30 ready; then
	vs_pass "Redis back: /readyz 200"
else
	vs_fail "Redis back: expected /readyz 200, saw $(readyz "$PA")"
fi

if [[ -n "$HAVE_WS" ]]; then
	all=$(events "?after=0" 100000 1500)
	for t in ready backend.up backend.down change.applied save.committed save.refused; do
		if grep -q "\"type\":\"$t\"" <<<"$all"; then
			vs_pass "/events?after=0 replays a $t event"
		else
			vs_fail "/events?after=0: expected a $t event, saw: $(head -c 600 <<<"$all")"
		fi
	done
fi

# ---------------------------------------------------------------- JSON logs

json_lines_ok() {
	local n=0 bad=0 line
	while IFS= read -r line; do
		n=$((n + 1))
		[[ "$line" =~ ^\{\"ts\":\"[0-9T:.Z-]+\",\"prog\":\"vsync-mount\",\"pid\":[0-9]+,\"level\":\"(error|warn|info|debug)\",\"msg\":\".*\"\}$ ]] ||
			bad=$((bad + 1))
	done <"$LOG_B"
	printf '%d %d\n' "$n" "$bad"
}
read -r n bad < <(json_lines_ok)
if ((n > 0 && bad == 0)); then
	vs_pass "--log-format json: $n lines, each one object with ts prog pid level msg"
else
	vs_fail "--log-format json: expected every line an object with ts prog pid level msg, saw $bad of $n not"
fi
if command -v node >/dev/null 2>&1; then
	vs_check "--log-format json: node parses every line" \
		node -e 'const l = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean); for (const x of l) { const o = JSON.parse(x); if (Object.keys(o).join() !== "ts,prog,pid,level,msg") throw new Error(x); }' "$LOG_B"
fi

vs_umount "$MA"
vs_umount "$MB"
vs_summary
