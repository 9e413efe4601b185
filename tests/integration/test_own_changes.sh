#!/usr/bin/env bash
#
# test_own_changes.sh - the agent's own commits come back through the
# stream (Redis with vsync-relay, and PostgreSQL LISTEN) exactly once and
# quietly.
#
# For each mode, on a (writable by default) mount watched by
# `inotifywait -m -r`:
#   - a new file, an edit of an existing file, a chmod, a mkdir, a symlink,
#     a rename and an unlink made in the mount are committed;
#   - once the agent has applied the changes they became (vsync_applied_seq
#     on /metrics reaches the project's seq), the inotify events seen on
#     the mount are exactly those the same operations give on a local
#     directory (the echo is not applied again: no ATTRIB, CREATE, MODIFY,
#     MOVED_*, DELETE from it);
#   - two quick saves of one file (the second before the first comes back):
#     the first's echo does not overwrite the second; the mount and
#     PostgreSQL end with the second;
#   - a file's inode number does not change when its own edit comes back
#     (the updater replaces inodes only for remote edits);
#   - /metrics counts the commits and shows nothing left journaled.
# Events are flushed before they are read: a file touched in node_modules/
# (local-only on the mount) is the last event, so every earlier one has
# been written.
#
# Needs /dev/fuse (else exit 77), PostgreSQL, Redis, inotifywait, curl.
set -u

# shellcheck source=tests/lib/servers.sh
. "$(dirname "$0")/../lib/servers.sh"

vs_need_fuse
for t in inotifywait curl; do
	if ! command -v "$t" >/dev/null 2>&1; then
		vs_fail "$t installed: expected it in PATH, saw none"
		vs_summary
		exit 1
	fi
done
CTL=$VSYNC_BUILD_DIR/agent/vsyncctl
vs_deadline 300
vs_servers_start all || exit 1
export VS_LOG_DIR=$VS_SERVERS_DIR
W=$VS_SERVERS_DIR/work
mkdir -p "$W"
vs_check "vsyncctl init" "$CTL" -q --pg "$VSYNC_PG_URL" init
vs_relay_start || exit 1

SRC=$W/src
mkdir -p "$SRC/src"
printf 'one\n' >"$SRC/src/edit.txt"
printf 'two\n' >"$SRC/src/mode.sh"
printf 'three\n' >"$SRC/src/old.txt"
printf 'four\n' >"$SRC/src/gone.txt"
printf 'five\n' >"$SRC/src/quick.txt"

# metric NAME PORT: the value of an unlabelled metric.
metric() {
	curl -s --max-time 2 "http://127.0.0.1:$2/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}

# applied ID PORT: the agent has applied every change of project ID.
applied() {
	local seq have
	seq=$(vs_sql "SELECT vsync_project_seq('$1')")
	have=$(metric vsync_applied_seq "$2")
	[[ -n "$have" && "${have%.*}" -ge "$seq" ]]
}

run_mode() {
	local mode=$1
	local p=own-$mode id mnt cache port ino args pid after
	mnt=$W/mnt-$mode
	cache=$W/cache-$mode
	ino=$W/inotify.$mode.log
	mkdir -p "$mnt" "$cache"
	vs_check "$mode: import" "$CTL" -q --pg "$VSYNC_PG_URL" import "$p" "$SRC"
	id=$(vs_sql "SELECT vsync_project_id('$p')")
	port=$(vs_free_port)
	args=(--pg "$VSYNC_PG_URL" --cache-dir "$cache" --control "127.0.0.1:$port" --author own-test)
	if [[ $mode == redis ]]; then
		args+=(--redis "$VSYNC_REDIS_URL")
		vs_mount "$p" "$mnt" "${args[@]}" || return 0
	else
		# without Redis: PostgreSQL LISTEN and the change feed
		local redis=$VSYNC_REDIS_URL
		unset VSYNC_REDIS_URL
		vs_mount "$p" "$mnt" "${args[@]}" || return 0
		export VSYNC_REDIS_URL=$redis
	fi
	vs_check "$mode: /metrics answers" vs_poll 10 curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$port/metrics"
	mkdir -p "$mnt/node_modules"

	: >"$ino"
	stdbuf -oL inotifywait -m -r --format '%e %w%f' "$mnt" >"$ino" 2>"$ino.err" </dev/null &
	pid=$!
	vs_on_exit "kill $pid 2>/dev/null; wait $pid 2>/dev/null; true"
	vs_check "$mode: inotifywait is watching" vs_poll 10 grep -q 'Watches established' "$ino.err"

	local ino_before
	ino_before=$(stat -c %i "$mnt/src/edit.txt")
	local_ops "$mnt"

	committed_all() {
		[[ "$("$CTL" -q --pg "$VSYNC_PG_URL" cat "$p" src/new.txt 2>/dev/null)" == new &&
			"$("$CTL" -q --pg "$VSYNC_PG_URL" cat "$p" src/edit.txt 2>/dev/null)" == "one, edited" &&
			"$("$CTL" -q --pg "$VSYNC_PG_URL" cat "$p" src/renamed.txt 2>/dev/null)" == three ]] &&
			! "$CTL" -q --pg "$VSYNC_PG_URL" cat "$p" src/gone.txt >/dev/null 2>&1 &&
			"$CTL" -q --pg "$VSYNC_PG_URL" ls "$p" src/mode.sh | grep -q 755 &&
			"$CTL" -q --pg "$VSYNC_PG_URL" ls "$p" src/link | grep -q symlink &&
			"$CTL" -q --pg "$VSYNC_PG_URL" ls "$p" src/dir | grep -q dir
	}
	vs_check "$mode: the seven changes are committed" vs_poll 15 committed_all
	vs_check "$mode: the agent has applied them as they came back" vs_poll 15 applied "$id" "$port"
	vs_check "$mode: /metrics: commits counted, nothing left journaled" vs_poll 10 sh -c \
		'curl -s --max-time 2 "http://127.0.0.1:$1/metrics" | grep -q "^vsync_writeback_total{outcome=\"committed\"} [1-9]" &&
		 curl -s --max-time 2 "http://127.0.0.1:$1/metrics" | grep -qx "vsync_journal_pending 0"' _ "$port"
	touch "$mnt/node_modules/mark2"
	vs_check "$mode: events flushed" vs_poll 10 grep -q "mark2" "$ino"
	after=$(grep -v "/node_modules" "$ino" | grep -Ev "$SCAN" | sed "s|$mnt/||" | uniq)
	vs_check_eq "$mode: the events are those of the same operations on a local directory (none from the changes coming back)" \
		"$REF_EVENTS" "$after"
	vs_check_eq "$mode: an edited file keeps its inode number when its own edit comes back" \
		"$ino_before" "$(stat -c %i "$mnt/src/edit.txt")"
	vs_check_eq "$mode: the mount serves the edit" "one, edited" "$(cat "$mnt/src/edit.txt")"

	# two quick saves: the first comes back after the second was made
	printf 'quick 1\n' >"$mnt/src/quick.txt"
	printf 'quick 2\n' >"$mnt/src/quick.txt"
	sync "$mnt/src/quick.txt"
	vs_check "$mode: both saves applied back" vs_poll 15 applied "$id" "$port"
	vs_check_eq "$mode: the first save's echo did not overwrite the second (mount)" \
		"quick 2" "$(cat "$mnt/src/quick.txt")"
	vs_check_eq "$mode: PostgreSQL has the second" "quick 2" \
		"$("$CTL" -q --pg "$VSYNC_PG_URL" cat "$p" src/quick.txt)"
	vs_check_eq "$mode: no conflict recorded" 0 \
		"$(vs_sql "SELECT count(*) FROM file_operations WHERE project_id = '$id' AND operation_data ? 'conflict'")"

	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	vs_umount "$mnt"
}

# local_ops DIR: the operations made in the mount (also on a local
# directory, for the reference events).
local_ops() {
	printf 'new\n' >"$1/src/new.txt"
	printf 'one, edited\n' >"$1/src/edit.txt"
	chmod 755 "$1/src/mode.sh"
	mkdir "$1/src/dir"
	ln -s new.txt "$1/src/link"
	mv "$1/src/old.txt" "$1/src/renamed.txt"
	rm "$1/src/gone.txt"
	sync "$1/src/new.txt" "$1/src/edit.txt" "$1/src/mode.sh"
}

# The events inotifywait -m -r reports for local_ops on a local copy.
REF=$W/ref
cp -a "$SRC" "$REF"
stdbuf -oL inotifywait -m -r --format '%e %w%f' "$REF" >"$W/ref.log" 2>"$W/ref.err" </dev/null &
refpid=$!
vs_on_exit "kill $refpid 2>/dev/null; wait $refpid 2>/dev/null; true"
vs_check "reference: inotifywait is watching" vs_poll 10 grep -q 'Watches established' "$W/ref.err"
mkdir -p "$REF/node_modules"
local_ops "$REF"
touch "$REF/node_modules/mark"
vs_check "reference: events flushed" vs_poll 10 grep -q "node_modules/mark" "$W/ref.log"
kill "$refpid" 2>/dev/null
wait "$refpid" 2>/dev/null
# (uniq: the kernel merges an event with an identical one still unread,
# so two MODIFY of one write may be one or two lines; SCAN: inotifywait's
# own listing of a new directory, to watch it, which comes before or after
# the next operation as the two race)
SCAN='^(OPEN|ACCESS|CLOSE_NOWRITE,CLOSE),ISDIR '
REF_EVENTS=$(grep -v "/node_modules" "$W/ref.log" | grep -Ev "$SCAN" | sed "s|$REF/||" | uniq)
vs_log "reference events: $(wc -l <<<"$REF_EVENTS")"

run_mode redis
run_mode pg
vs_summary
