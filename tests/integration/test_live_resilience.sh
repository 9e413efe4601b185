#!/usr/bin/env bash
#
# test_live_resilience.sh - a live mount (--redis, fed by vsync-relay) stays
# complete and correct through failures, and contains hostile stream input:
#
#   1. 1,000 changes committed from one psql session (updates of 50 files,
#      plus creates, renames and deletes) while the relay is killed (-9) and
#      restarted as two relays at once, and Redis is stopped and started
#      again on the same port (empty: no persistence). Afterwards the mount
#      catches up: every file on it equals PostgreSQL by SHA-256, none
#      missing, none extra (and dirs, modes, symlinks likewise). The mount
#      keeps serving reads while Redis is down.
#   2. 100 changes while the agent is stopped (unmounted); a remount with
#      the same cache dir catches up the same way.
#   3. Hostile entries XADDed straight into events:{<id>} with ids above the
#      last one: missing fields, unknown op, "../../etc/passwd", an absolute
#      path, a bad hash, a 1 MB value, a seq field that disagrees with the
#      id, and a well-formed entry for content PostgreSQL never had. The
#      mount keeps serving, nothing is created, changed or removed outside
#      the tree, and after a real change the mount equals PostgreSQL again.
#
# Every wait polls with a deadline; every process and mount is stopped at
# exit. Needs /dev/fuse (else exit 77).
# Environment: VSYNC_BUILD_DIR (default build/), VS_KEEP_LOGS=1 keeps logs.

# shellcheck disable=SC2016 # sh -c snippets take their arguments as $1...
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/servers.sh
. "$here/../lib/servers.sh"

vs_need_fuse
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
PSQL=$VS_PG_BIN/psql
TREE=$W/tree
MNT=$W/mnt
CACHE=$W/cache
P=resilience
NFILES=50
mkdir -p "$MNT" "$CACHE"

vs_logs_on_failure "$VS_LOG_DIR/mount.*.log" "$VS_LOG_DIR/agent.log" "$VS_LOG_DIR/relay.*.log"

ctl() {
	timeout -k 5 60 "$CTL_BIN" --pg "$VSYNC_PG_URL" -q "$@"
}

sql() {
	timeout -k 2 30 "$PSQL" -X -At -q -v ON_ERROR_STOP=1 "$VSYNC_PG_URL" -c "$1"
}

# ---------------------------------------------------------------- state of the mount vs PostgreSQL

# pg_state: "f MODE PATH SHA" / "d MODE PATH" / "l PATH TARGET", sorted.
pg_state() {
	sql "SELECT kind, mode, path, coalesce(content_hash, ''), coalesce(link_target, '')
	       FROM vsync_manifest('$UUID'::uuid)" |
		awk -F'|' '
			$1 == "file" { printf "f %o %s %s\n", $2, $3, $4; next }
			$1 == "dir" { printf "d %o %s\n", $2, $3; next }
			$1 == "symlink" { printf "l %s %s\n", $3, $5; next }
			{ print "? " $0 }' | LC_ALL=C sort
}

# mnt_state: the same lines for the mount (paths have no blanks here).
mnt_state() {
	(
		cd "$MNT" || exit 1
		timeout -k 2 60 find . -type f -print0 | timeout -k 2 60 xargs -0 -r sha256sum |
			sed 's/^\([0-9a-f]*\)  \.\//H \1 /'
		timeout -k 2 60 find . -mindepth 1 \( -type d -printf 'd %m %P\n' \) -o \
			\( -type l -printf 'l %P %l\n' \) -o \( -type f -printf 'f %m %P\n' \)
	) | awk '
		$1 == "H" { h[$3] = $2; next }
		$1 == "f" { f[NR] = $0; p[NR] = $3; next }
		{ print }
		END { for (i in f) print f[i] " " h[p[i]] }' | LC_ALL=C sort
}

state_equal() {
	pg_state >"$W/pg.state" 2>&1 || return 1
	mnt_state >"$W/mnt.state" 2>&1 || return 1
	cmp -s "$W/pg.state" "$W/mnt.state"
}

# expect_state DESC SECS: poll until the mount equals PostgreSQL.
expect_state() {
	local desc=$1 secs=$2 t0 d missing extra differ
	t0=$(vs_now_ms)
	if vs_poll "$secs" state_equal; then
		vs_pass "$desc: the mount equals PostgreSQL, $(grep -c '^f' "$W/pg.state") files by SHA-256 plus dirs and modes (after $(($(vs_now_ms) - t0)) ms)"
		return 0
	fi
	d=$(diff "$W/pg.state" "$W/mnt.state" || true)
	# by path: only in PostgreSQL, only on the mount, in both but different
	missing=$(comm -23 <(awk '{ print $1 == "l" ? $2 : $3 }' "$W/pg.state" | sort) \
		<(awk '{ print $1 == "l" ? $2 : $3 }' "$W/mnt.state" | sort) | wc -l)
	extra=$(comm -13 <(awk '{ print $1 == "l" ? $2 : $3 }' "$W/pg.state" | sort) \
		<(awk '{ print $1 == "l" ? $2 : $3 }' "$W/mnt.state" | sort) | wc -l)
	differ=$(($(grep -c '^<' <<<"$d" || true) - missing))
	vs_fail "$desc: expected the mount to equal PostgreSQL (seq $(sql "SELECT vsync_project_seq('$UUID')")) within $secs s, saw $missing missing, $extra extra, $differ different (< PostgreSQL, > mount): $(grep '^[<>]' <<<"$d" | head -n 6 | tr '\n' ';')"
	return 0
}

mount_main() {
	if vs_mount "$P" "$MNT" --pg "$VSYNC_PG_URL" --redis "$VSYNC_REDIS_URL" \
		--cache-dir "$CACHE" --log-file "$VS_LOG_DIR/agent.log"; then
		vs_pass "$1"
		return 0
	fi
	vs_fail "$1: expected $MNT mounted within 10 s, saw none (log: $VS_MOUNT_LOG)"
	return 1
}

seq_now() {
	sql "SELECT vsync_project_seq('$UUID')"
}

seq_at_least() {
	(($(seq_now) >= $1))
}

# ---------------------------------------------------------------- setup

for ((i = 0; i < NFILES; i++)); do
	d=$TREE/d$((i / 10))
	mkdir -p "$d"
	printf 'file %d, as imported\n' "$i" >"$d/f$i.txt"
done
mkdir -p "$TREE/new" "$TREE/moved"
printf 'keep\n' >"$TREE/new/.keep"
printf 'keep\n' >"$TREE/moved/.keep"
ln -s d0/f0.txt "$TREE/link"

vs_check "vsyncctl init" ctl init
vs_check "vsyncctl import $P" ctl import "$P" "$TREE"
if ! vs_last_ok; then
	vs_summary || true
	exit 1
fi
UUID=$(sql "SELECT vsync_project_id('$P')")

# gen_sql FIRST LAST [SLEEP]: the changes FIRST..LAST as SQL, one
# autocommitted statement each: mostly updates of the 50 files (changing
# size), and every 100th a create, a rename or a delete.
gen_sql() {
	local first=$1 last=$2 sleep=${3:-} k i pad
	pad=$(printf '%*s' 96 '' | tr ' ' .)
	for ((k = first; k <= last; k++)); do
		i=$((k % NFILES))
		if ((k % 100 == 0)); then
			printf "SELECT 1 FROM vsync_write_file('%s', 'new/n%d.txt', convert_to('created by change %d\n', 'UTF8'), NULL, NULL, NULL, 'res', 'file');\n" \
				"$UUID" "$k" "$k"
		elif ((k % 100 == 50 && k >= 150)); then
			printf "SELECT vsync_rename('%s', 'new/n%d.txt', 'moved/n%d.txt', NULL, NULL, 'res');\n" \
				"$UUID" $((k - 50)) $((k - 50))
		elif ((k % 200 == 25 && k >= 225)); then
			printf "SELECT vsync_delete('%s', 'moved/n%d.txt', NULL, NULL, 'res', false);\n" \
				"$UUID" $((k - 125))
		else
			printf "SELECT 1 FROM vsync_write_file('%s', 'd%d/f%d.txt', convert_to('file %d, change %d %s\n', 'UTF8'), NULL, NULL, NULL, 'res', 'file');\n" \
				"$UUID" $((i / 10)) "$i" "$i" "$k" "${pad:0:k % 97}"
		fi
		if [[ -n "$sleep" ]]; then
			printf 'SELECT pg_sleep(%s);\n' "$sleep"
		fi
	done
}

# shellcheck disable=SC2119 # vs_relay_start with its default options
if ! vs_relay_start; then
	vs_fail "relay: expected vsync-relay running, saw it exit"
	vs_summary || true
	exit 1
fi
RELAY1=$VS_RELAY_PID
mount_main "mounted with --redis" || {
	vs_summary || true
	exit 1
}
expect_state "before any change" 10

# ---------------------------------------------------------------- 1. 1,000 changes through failures

BASE=$(seq_now)
gen_sql 1 1000 0.004 >"$W/edits-1000.sql"
t0=$(vs_now_ms)
timeout -k 5 200 "$PSQL" -X -At -q -v ON_ERROR_STOP=1 "$VSYNC_PG_URL" \
	-f "$W/edits-1000.sql" >"$VS_LOG_DIR/writer.log" 2>&1 &
WRITER=$!
vs_on_exit "kill $WRITER 2>/dev/null; wait $WRITER 2>/dev/null; true"

# at_seq N WHAT: wait until change BASE+N is committed (the writer is
# running), then say so.
at_seq() {
	if ! vs_poll 60 seq_at_least $((BASE + $1)); then
		vs_fail "writer: expected change $((BASE + $1)) committed within 60 s, saw $(seq_now) ($(tail -n 2 "$VS_LOG_DIR/writer.log"))"
		return 1
	fi
	vs_log "at change $(($(seq_now) - BASE)) of 1000: $2"
}

at_seq 200 "kill -9 the relay" || true
if vs_relay_stop "$RELAY1" KILL; then
	vs_pass "relay killed with SIGKILL"
else
	vs_fail "relay kill -9: expected pid $RELAY1 gone, saw it running"
fi
at_seq 350 "start two relays" || true
for i in 1 2; do
	# shellcheck disable=SC2119 # default options
	if vs_relay_start; then
		vs_pass "relay $i of 2 started (both run at once)"
	else
		vs_fail "relay $i of 2: expected it running, saw it exit"
	fi
done
at_seq 500 "stop Redis" || true
if vs_redis_stop; then vs_pass "Redis stopped"; else vs_fail "Redis stop: expected it gone, saw a failure"; fi
rc=0
out=$(timeout -k 2 5 cat "$MNT/d1/f10.txt" 2>&1) || rc=$?
if ((rc == 0)) && [[ $out == "file 10, "* ]]; then
	vs_pass "Redis down: the mount still serves reads"
else
	vs_fail "Redis down: cat d1/f10.txt: expected 'file 10, ...' within 5 s, saw exit $rc: ${out:0:100}"
fi
at_seq 700 "start Redis again on port $VS_REDIS_PORT" || true
if vs_redis_start; then
	vs_pass "Redis started again on the same port"
else
	vs_fail "Redis restart on port $VS_REDIS_PORT: expected PONG, saw none"
fi
rc=0
wait "$WRITER" || rc=$?
vs_check_eq "writer: 1,000 changes committed (psql exit status)" 0 "$rc"
vs_log "1,000 changes committed in $(($(vs_now_ms) - t0)) ms; last seq $(seq_now)"
vs_check_eq "writer: the change sequence advanced by 1,000" $((BASE + 1000)) "$(seq_now)"
expect_state "after 1,000 changes through a relay kill and a Redis restart" 60
if vs__pid_gone "$VS_MOUNT_PID"; then
	vs_fail "vsync-mount: expected it running after the failures, saw it exit"
fi

# ---------------------------------------------------------------- 2. 100 changes while the agent is stopped

if vs_umount "$MNT"; then
	vs_pass "agent stopped (unmounted)"
else
	vs_fail "agent stop: expected no mount at $MNT, saw one left"
fi
gen_sql 1001 1100 >"$W/edits-100.sql"
vs_check "100 changes committed while the agent is stopped" \
	timeout -k 5 60 "$PSQL" -X -At -q -v ON_ERROR_STOP=1 "$VSYNC_PG_URL" -f "$W/edits-100.sql"
if mount_main "agent restarted with the same cache dir"; then
	expect_state "after 100 changes made while the agent was stopped" 30
fi

# ---------------------------------------------------------------- 3. hostile stream entries

if vs_is_mounted "$MNT"; then
	KEY="events:{$UUID}"
	S=$(seq_now)
	L=$(vs_redis_cli XREVRANGE "$KEY" + - COUNT 1 2>/dev/null | head -n 1)
	L=${L%-*}
	[[ $L =~ ^[0-9]+$ ]] || L=0
	TOP=$((S > L ? S : L))
	vs_log "hostile entries: PostgreSQL seq $S, stream's last id ${L}-0, adding from $((TOP + 1))-0"

	# Victims outside the tree: ../../etc/passwd from the mountpoint is
	# $VS_SERVERS_DIR/etc/passwd (never the machine's own), and an absolute
	# path into the test directory.
	printf 'a real change after the hostile entries\n' >"$W/real"
	mkdir -p "$VS_SERVERS_DIR/etc"
	printf 'victim, must survive\n' >"$VS_SERVERS_DIR/etc/passwd"
	printf 'victim, must survive\n' >"$VS_SERVERS_DIR/abs-victim.txt"
	outside() {
		find "$VS_SERVERS_DIR" \( -path "$MNT" -o -path "$VS_SERVERS_DIR/pg-data" -o \
			-path "$VS_SERVERS_DIR/pg-run" -o -path "$VS_SERVERS_DIR/redis" -o \
			-path "$VS_LOG_DIR" -o -path "$CACHE/objects" -o \
			-path "$CACHE/projects/$UUID" \) -prune -o -printf '%y %P\n' 2>/dev/null |
			grep -v -e '^f work/outside\.' -e '\.state$' | LC_ALL=C sort
	}
	outside >"$W/outside.before"
	evil_sha=$(printf 'evil\n' | sha256sum | cut -d' ' -f1)
	forged_sha=$(printf 'forged\n' | sha256sum | cut -d' ' -f1)
	mt=$(($(date +%s) * 1000000000))
	n=$TOP
	xadd() {
		local out
		n=$((n + 1))
		out=$(vs_redis_cli XADD "$KEY" "$n-0" "$@" 2>&1)
		[[ $out == "$n-0" ]] || vs_log "XADD $n-0 answered: ${out:0:80}"
	}
	xadd seq $((n + 1)) op update
	xadd seq $((n + 1)) op frobnicate path d0/f0.txt kind file mode 644 size 5 \
		hash "$evil_sha" version 99 mtime_ns "$mt"
	xadd seq $((n + 1)) op delete path ../../etc/passwd kind file version 2
	xadd seq $((n + 1)) op create path ../../etc/passwd kind file mode 644 size 5 \
		hash "$evil_sha" version 1 mtime_ns "$mt"
	xadd seq $((n + 1)) op delete path "$VS_SERVERS_DIR/abs-victim.txt" kind file version 2
	xadd seq $((n + 1)) op create path /abs-hostile.txt kind file mode 644 size 5 \
		hash "$evil_sha" version 1 mtime_ns "$mt"
	xadd seq $((n + 1)) op update path d0/f1.txt kind file mode 644 size 5 \
		hash not-a-sha256 version 99 mtime_ns "$mt"
	# a 1 MB path (redis-cli -x: the value comes from stdin)
	n=$((n + 1))
	head -c 1048576 /dev/zero | tr '\0' a |
		vs_redis_cli -x XADD "$KEY" "$n-0" seq "$n" op create kind file mode 644 size 5 \
			hash "$evil_sha" version 1 mtime_ns "$mt" path >/dev/null 2>&1 || true
	xadd seq 1 op update path d0/f2.txt kind file mode 644 size 5 \
		hash "$evil_sha" version 99 mtime_ns "$mt"
	xadd seq $((n + 1)) op create path d0/phantom.txt kind file mode 644 size 7 \
		hash "$forged_sha" version 1 mtime_ns "$mt"
	vs_log "added $((n - TOP)) hostile entries, ids $((TOP + 1))-0 .. $n-0"

	# The mount keeps serving.
	if vs__pid_gone "$VS_MOUNT_PID"; then
		vs_fail "hostile entries: expected vsync-mount running, saw it exit"
	fi
	vs_check "hostile entries: ls of the mount works" timeout -k 2 5 ls "$MNT/d0"
	exp=$(sql "SELECT convert_from(vsync_read_file('$UUID', 'd0/f1.txt'), 'UTF8')")
	vs_check_eq "hostile entries: cat d0/f1.txt still shows PostgreSQL's bytes" \
		"$exp" "$(timeout -k 2 5 cat "$MNT/d0/f1.txt" 2>&1)"
	exp=$(sql "SELECT convert_from(vsync_read_file('$UUID', 'd0/f0.txt'), 'UTF8')")
	vs_check_eq "hostile entries: cat d0/f0.txt still shows PostgreSQL's bytes" \
		"$exp" "$(timeout -k 2 5 cat "$MNT/d0/f0.txt" 2>&1)"

	# A real change afterwards: the mount must end up equal to PostgreSQL.
	vs_check "a real change after the hostile entries (vsyncctl put)" ctl put "$P" d0/f3.txt "$W/real"
	real_visible() { cmp -s "$MNT/d0/f3.txt" "$W/real"; }
	t0=$(vs_now_ms)
	if vs_poll 20 real_visible; then
		vs_pass "hostile entries: the real change that followed is visible ($(($(vs_now_ms) - t0)) ms)"
	else
		vs_fail "hostile entries: expected d0/f3.txt = 'a real change after the hostile entries' within 20 s, saw '$(head -c 80 "$MNT/d0/f3.txt" 2>&1)'"
	fi
	expect_state "after the hostile entries and a real change" 10
	# the relay removed the forged entries and published the real one
	real_seq=$(sql "SELECT change_seq FROM projects WHERE id = '$UUID'")
	relay_repaired() { vs_redis_cli XRANGE "$KEY" "$real_seq-0" "$real_seq-0" | grep -qx 'd0/f3.txt'; }
	vs_check "hostile entries: the stream holds the real change $real_seq, not a forged one" \
		vs_poll 10 relay_repaired
	vs_check_eq "hostile entries: no forged d0/phantom.txt on the mount" "ENOENT" \
		"$(stat "$MNT/d0/phantom.txt" >/dev/null 2>&1 && echo exists || echo ENOENT)"
	vs_check_eq "hostile entries: ../../etc/passwd (outside the mount) untouched" \
		"victim, must survive" "$(cat "$VS_SERVERS_DIR/etc/passwd" 2>&1)"
	vs_check_eq "hostile entries: the absolute path's victim untouched" \
		"victim, must survive" "$(cat "$VS_SERVERS_DIR/abs-victim.txt" 2>&1)"
	vs_check "hostile entries: no /abs-hostile.txt created" test ! -e /abs-hostile.txt
	outside >"$W/outside.after"
	if d=$(diff "$W/outside.before" "$W/outside.after"); then
		vs_pass "hostile entries: nothing outside the mount and its cache changed"
	else
		vs_fail "hostile entries: expected nothing outside the tree changed, saw: $(head -n 5 <<<"$d" | tr '\n' ';')"
	fi
	if vs__pid_gone "$VS_MOUNT_PID"; then
		vs_fail "hostile entries: expected vsync-mount still running, saw it exit"
	fi
	vs_log "agent log lines about rejected entries: $(grep -ciE 'reject|malformed|invalid|bad|ignor|gap|resync' "$VS_LOG_DIR/agent.log" 2>/dev/null || true)"
	grep -iE 'reject|malformed|invalid|bad|ignor|gap|resync' "$VS_LOG_DIR/agent.log" 2>/dev/null |
		head -n 5 | sed 's/^/#   /' | cut -c 1-200 || true
fi

if vs_umount "$MNT"; then
	vs_pass "unmounted"
else
	vs_fail "unmount: expected no mount at $MNT, saw one left"
fi
vs_check "nothing of this test is left in /proc/mounts" \
	sh -c '! grep -qF -- "$1" /proc/mounts' _ "$W"

vs_summary
