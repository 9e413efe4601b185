#!/usr/bin/env bash
#
# test_live.sh - live updates: every committed change (vsyncctl put, rm, mv,
# mkdir, rollback, put --mode, SQL vsync_write_file incl. symlinks) shows up
# on a running mount as if it had been saved locally, in both modes:
#
#   pg      vsync-mount --pg only (LISTEN file_changes + the SQL change feed)
#   redis   vsync-mount --redis, fed by a vsync-relay through the stream
#
# For each kind of change the test waits (deadline) for the event a local
# save would give to `inotifywait -m -r` on the mount and to a Node
# fs.watch watcher, and then checks at once (no retry) what cat, stat,
# readlink and ls show:
#
#   edit (same size, bigger, smaller, rollback, SQL)  MOVED_TO (an atomic
#        save: made under a temporary name, renamed over the file), and a
#        reader reacting to the fs.watch event reads the new bytes
#   new file in an existing dir / in new nested dirs  CREATE / CREATE,ISDIR
#   mkdir                                             CREATE,ISDIR
#   delete file / directory (recursive)               DELETE / DELETE,ISDIR
#   rename file, across dirs, onto a file, dir        MOVED_FROM + MOVED_TO
#   put --mode with the same content                  ATTRIB, new mode
#   symlink created through SQL                       CREATE, readlink
#   delete then re-create the same name               DELETE, CREATE, new bytes
#   a name looked up (negative, cached) before it appears remotely
#   30 quick edits of one file while a reader loops: it never sees bytes
#   that are not one of the versions (no empty or partial file)
#   local writes on the (writable by default) mount among the remote
#   changes are committed; at the end the whole mount equals
#   vsync_manifest() (names, kinds, modes, hashes, targets)
#
# The time from the change command's return to the event is printed
# (informational, never asserted). Needs /dev/fuse (else exit 77),
# inotifywait, node (the fs.watch checks are left out without it).
# Environment: VSYNC_BUILD_DIR (default build/), VS_KEEP_LOGS=1 keeps logs.

# shellcheck disable=SC2016 # sh -c snippets take their arguments as $1...
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/servers.sh
. "$here/../lib/servers.sh"

# PostgreSQL-only mode runs first: no Redis URL may leak in from the
# environment (vsync-mount defaults --redis to $VSYNC_REDIS_URL).
unset VSYNC_REDIS_URL
vs_need_fuse
vs_deadline 280

MOUNT_BIN=$VSYNC_BUILD_DIR/agent/vsync-mount
CTL_BIN=$VSYNC_BUILD_DIR/agent/vsyncctl
RELAY_BIN=$VSYNC_BUILD_DIR/agent/vsync-relay
for b in "$MOUNT_BIN" "$CTL_BIN"; do
	if [[ ! -x "$b" ]]; then
		vs_fail "binaries built: expected an executable $b, saw none"
		vs_summary
		exit 1
	fi
done
if ! command -v inotifywait >/dev/null 2>&1; then
	vs_fail "inotifywait installed: expected it in PATH (apt-get install inotify-tools), saw none"
	vs_summary
	exit 1
fi
HAVE_NODE=
if command -v node >/dev/null 2>&1; then
	HAVE_NODE=1
else
	vs_log "node not installed: the fs.watch checks are left out"
fi

vs_servers_start pg
W=$VS_SERVERS_DIR/work
VS_LOG_DIR=$W/logs
mkdir -p "$VS_LOG_DIR"
PSQL=$VS_PG_BIN/psql
TREE=$W/tree
C=$W/content # files given to vsyncctl put
mkdir -p "$C"

vs_logs_on_failure "$VS_LOG_DIR/mount.*.log" "$VS_LOG_DIR/relay.*.log"

ctl() {
	timeout -k 5 60 "$CTL_BIN" --pg "$VSYNC_PG_URL" -q "$@"
}

sql() {
	timeout -k 2 30 "$PSQL" -X -At -q -v ON_ERROR_STOP=1 "$VSYNC_PG_URL" -c "$1"
}

# sql_write PROJECT_UUID PATH CONTENT [KIND]: vsync_write_file from SQL.
sql_write() {
	printf '%s\n' "SELECT seq FROM vsync_write_file(:'p'::uuid, :'path', convert_to(:'c', 'UTF8'), NULL, NULL, NULL, 'test_live', :'k');" |
		timeout -k 2 30 "$PSQL" -X -At -q -v ON_ERROR_STOP=1 \
			-v p="$1" -v path="$2" -v c="$3" -v k="${4:-file}" "$VSYNC_PG_URL" >/dev/null
}

sha_of() {
	local s
	s=$(sha256sum <"$1")
	printf '%s\n' "${s%% *}"
}

# ---------------------------------------------------------------- the project

make_tree() {
	local t=$1
	mkdir -p "$t/src/sub" "$t/docs/old/deeper" "$t/lib" "$t/rdir/inner" "$t/scripts"
	printf '{ "name": "live", "private": true }\n' >"$t/package.json"
	printf "export const a = 'AAAA';\n" >"$t/src/a.js"
	printf 'export const b = 1;\n' >"$t/src/b.js"
	printf 'export const c = 3;\n' >"$t/src/sub/c.js"
	printf 'export const hot = 0;\n' >"$t/src/hot.js"
	printf 'export const replaced = "old";\n' >"$t/src/replace-me.js"
	printf 'export const replaced = "by the renamed file";\n' >"$t/src/replacer.js"
	printf 'export const recreate = 1;\n' >"$t/src/recreate.js"
	printf '# docs\n' >"$t/docs/readme.md"
	printf 'x\n' >"$t/docs/old/x.txt"
	printf 'y\n' >"$t/docs/old/y.txt"
	printf 'z\n' >"$t/docs/old/deeper/z.txt"
	printf 'module.exports = "m";\n' >"$t/lib/m.js"
	printf 'f in rdir\n' >"$t/rdir/f.txt"
	printf 'g in rdir/inner\n' >"$t/rdir/inner/g.txt"
	printf '#!/bin/sh\necho tool\n' >"$t/scripts/tool.sh"
	chmod 0644 "$t/scripts/tool.sh"
}
make_tree "$TREE"

vs_check "vsyncctl init" ctl init
if ! vs_last_ok; then
	vs_summary || true
	exit 1
fi

# ---------------------------------------------------------------- state of the mount vs PostgreSQL

# pg_state UUID: "f MODE PATH SHA" / "d MODE PATH" / "l PATH TARGET", sorted.
pg_state() {
	sql "SELECT kind, mode, path, coalesce(content_hash, ''), coalesce(link_target, '')
	       FROM vsync_manifest('$1'::uuid)" |
		awk -F'|' '
			$1 == "file" { printf "f %o %s %s\n", $2, $3, $4; next }
			$1 == "dir" { printf "d %o %s\n", $2, $3; next }
			$1 == "symlink" { printf "l %s %s\n", $3, $5; next }
			{ print "? " $0 }' | LC_ALL=C sort
}

# mnt_state DIR: the same lines for the mount.
mnt_state() {
	(cd "$1" && timeout -k 2 30 find . -mindepth 1 \
		\( -type d -printf 'd %m %P\n' \) -o \
		\( -type l -printf 'l %P %l\n' \) -o \
		\( -type f -printf 'f %m %P ' -exec sh -c 'sha256sum <"$1" | cut -d" " -f1' _ {} \; \)) |
		LC_ALL=C sort
}

# state_equal UUID MNT: the mount shows exactly what PostgreSQL has.
state_equal() {
	pg_state "$1" >"$W/pg.state" 2>&1 || return 1
	mnt_state "$2" >"$W/mnt.state" 2>&1 || return 1
	cmp -s "$W/pg.state" "$W/mnt.state"
}

# ---------------------------------------------------------------- event helpers

INO='' NW='' INO_OFF=0 NW_OFF=0 T_DONE=0
EVENT_WAIT=5 MISSES=0
LAT_INO=() LAT_NW=()

# mark: later checks look only at events after this point.
mark() {
	INO_OFF=$(wc -l <"$INO")
	if [[ -n "$HAVE_NODE" ]]; then
		NW_OFF=$(wc -l <"$NW")
	fi
}

# change CMD...: mark, run the change, note when it returned (µs).
change() {
	local rc=0 out
	mark
	out=$("$@" 2>&1) || rc=$?
	T_DONE=${EPOCHREALTIME/./}
	if ((rc != 0)); then
		vs_fail "$MODE: change '${*#"$CTL_BIN "}': expected exit 0, saw $rc: $(head -n 2 <<<"$out")"
		return 1
	fi
	return 0
}

ms_since_done() {
	local now=${EPOCHREALTIME/./}
	printf '%d.%01d' $(((now - T_DONE) / 1000)) $((((now - T_DONE) % 1000) / 100))
}

# ino_all SPEC...: every SPEC ("LINE|ALTERNATIVE|...", whole lines of
# '%e %w%f') has a matching line since the mark.
ino_all() {
	local spec a alts gargs
	for spec; do
		IFS='|' read -ra alts <<<"$spec"
		gargs=()
		for a in "${alts[@]}"; do gargs+=(-e "$a"); done
		tail -n +$((INO_OFF + 1)) "$INO" | grep -Fxq "${gargs[@]}" || return 1
	done
}

ino_since() {
	tail -n +$((INO_OFF + 1)) "$INO" | head -n "${1:-8}" | tr '\n' ';'
}

# expect_ino DESC SPEC...: poll (EVENT_WAIT s) for the inotifywait lines.
# After three misses in a row the wait drops to 1 s (live
# updates look absent; keep the run short and the failures readable).
expect_ino() {
	local desc="$MODE: $1" lat
	shift
	local specs="${*//|/ or }"
	specs=${specs//"$W/"/}
	if vs_poll "$EVENT_WAIT" ino_all "$@"; then
		lat=$(ms_since_done)
		LAT_INO+=("$lat")
		vs_pass "$desc: inotify event(s) $specs (seen ≤ $lat ms after the change returned)"
		MISSES=0
	else
		vs_fail "$desc: expected inotify line(s) [$specs] within ${EVENT_WAIT} s, saw [$(ino_since 8)]"
		MISSES=$((MISSES + 1))
		if ((MISSES >= 3 && EVENT_WAIT > 1)); then
			vs_log "three events missed in a row: waiting 1 s per event from now on"
			EVENT_WAIT=1
		fi
	fi
}

# nw_line DIR NAME: the first fs.watch line since the mark for DIR/NAME.
nw_line() {
	awk -F'\t' -v off="$NW_OFF" -v d="$1" -v n="$2" \
		'NR > off && $2 == d && $4 == n { print; exit }' "$NW"
}

nw_has() {
	[[ -n "$(nw_line "$1" "$2")" ]]
}

# expect_nw DESC DIR NAME TYPE [WHAT]: Node's fs.watch saw TYPE for NAME in
# DIR, and (if given) what the handler read at once was WHAT.
expect_nw() {
	local desc="$MODE: $1" dir=$2 name=$3 type=$4 want=${5:-} line t lat seen_type seen_what
	[[ -n "$HAVE_NODE" ]] || return 0
	if ! vs_poll "$EVENT_WAIT" nw_has "$dir" "$name"; then
		vs_fail "$desc: expected a fs.watch '$type' event for $name in ${dir#"$W"/} within ${EVENT_WAIT} s, saw [$(tail -n +$((NW_OFF + 1)) "$NW" | head -n 4 | tr '\t\n' ' ;')]"
		return 0
	fi
	line=$(nw_line "$dir" "$name")
	IFS=$'\t' read -r t _ seen_type _ seen_what <<<"$line"
	t=${t/./}
	lat=$(((t - T_DONE) / 1000))
	LAT_NW+=("$lat")
	if [[ "$seen_type" != "$type" ]]; then
		vs_fail "$desc: expected fs.watch event '$type' for $name, saw '$seen_type'"
	elif [[ -n "$want" && "$seen_what" != "$want" ]]; then
		vs_fail "$desc: a reader reacting to the fs.watch event: expected '$want', saw '$seen_what'"
	else
		vs_pass "$desc: fs.watch '$type' $name${want:+ and the reader saw the new state} ($( ((lat >= 0)) && echo "+$lat" || echo "$lat") ms)"
	fi
}

# nw_no_other DESC DIR NAME WHAT: every fs.watch read of NAME since the
# mark saw WHAT (never an empty, partial or old file).
nw_no_other() {
	local desc="$MODE: $1" bad
	[[ -n "$HAVE_NODE" ]] || return 0
	bad=$(awk -F'\t' -v off="$NW_OFF" -v d="$2" -v n="$3" -v w="$4" \
		'NR > off && $2 == d && $4 == n && $5 != w { print $3 " " $5 }' "$NW" | head -n 3)
	if [[ -z "$bad" ]]; then
		vs_pass "$desc: every fs.watch-driven read saw only the new bytes"
	else
		vs_fail "$desc: expected every fs.watch-driven read to see '$4', saw: $bad"
	fi
}

# check_cat DESC FILE EXPECTED_FILE: cat now (no retry) equals.
check_cat() {
	local seen
	set -- "$MODE: $1" "${@:2}"
	if seen=$(timeout -k 2 10 cat -- "$2" 2>&1) && [[ "$seen" == "$(cat "$3")" ]] &&
		cmp -s -- "$2" "$3"; then
		vs_pass "$1: cat shows the new bytes"
	else
		vs_fail "$1: cat ${2#"$W"/}: expected '$(head -c 80 "$3")', saw '${seen:0:80}'"
	fi
}

check_stat() { # DESC PATH FORMAT EXPECTED
	local seen
	set -- "$MODE: $1" "${@:2}"
	seen=$(timeout -k 2 10 stat -c "$3" -- "$2" 2>&1) || true
	vs_check_eq "$1: stat -c '$3' ${2#"$W"/}" "$4" "$seen"
}

check_gone() { # DESC PATH
	local out rc=0
	set -- "$MODE: $1" "${@:2}"
	out=$(timeout -k 2 10 stat -- "$2" 2>&1) || rc=$?
	if ((rc != 0)) && [[ $out == *"No such file or directory"* ]]; then
		vs_pass "$1: ${2#"$W"/} is gone (ENOENT)"
	else
		vs_fail "$1: stat ${2#"$W"/}: expected ENOENT, saw exit $rc: ${out:0:120}"
	fi
}

check_ls() { # DESC DIR has|lacks NAME
	local names
	set -- "$MODE: $1" "${@:2}"
	names=$(timeout -k 2 10 ls -A1 -- "$2" 2>&1) || true
	if [[ $3 == has ]] && grep -Fxq -- "$4" <<<"$names"; then
		vs_pass "$1: ls ${2#"$W"/} lists $4"
	elif [[ $3 == lacks ]] && ! grep -Fxq -- "$4" <<<"$names"; then
		vs_pass "$1: ls ${2#"$W"/} no longer lists $4"
	else
		vs_fail "$1: ls ${2#"$W"/}: expected it to $([[ $3 == has ]] && echo list || echo 'not list') '$4', saw [$(tr '\n' ' ' <<<"$names")]"
	fi
}

what_file() { # FILE -> the --read form of watch.js
	printf 'file %s %s\n' "$(stat -c %s "$1")" "$(sha_of "$1")"
}

median() { # numbers on stdin
	grep -v "^$" | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "-" }'
}

# ---------------------------------------------------------------- one mode

start_watchers() {
	local mnt=$1 pid
	INO=$VS_LOG_DIR/inotify.$MODE.log
	NW=$VS_LOG_DIR/fswatch.$MODE.log
	: >"$INO"
	: >"$NW"
	stdbuf -oL inotifywait -m -r --format '%e %w%f' "$mnt" >"$INO" 2>"$INO.err" </dev/null &
	pid=$!
	vs_on_exit "kill $pid 2>/dev/null; wait $pid 2>/dev/null; true"
	WATCH_PIDS=("$pid")
	if ! vs_poll 10 grep -q 'Watches established' "$INO.err"; then
		vs_fail "$MODE: inotifywait -m -r on the mount: expected 'Watches established' within 10 s, saw: $(head -c 200 "$INO.err")"
		return 1
	fi
	if [[ -n "$HAVE_NODE" ]]; then
		node "$here/watch.js" --read "$mnt" "$mnt/src" "$mnt/src/sub" "$mnt/lib" \
			"$mnt/scripts" >"$NW" 2>"$NW.err" </dev/null &
		pid=$!
		vs_on_exit "kill $pid 2>/dev/null; wait $pid 2>/dev/null; true"
		WATCH_PIDS+=("$pid")
		if ! vs_poll 10 grep -qx ready "$NW"; then
			vs_fail "$MODE: node watch.js on the mount: expected 'ready' within 10 s, saw: $(head -c 200 "$NW.err")"
			return 1
		fi
	fi
	vs_pass "$MODE: inotifywait -m -r and fs.watch are watching the mount"
}

stop_watchers() {
	local p
	for p in "${WATCH_PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	WATCH_PIDS=()
}

# hot_reader FILE OUT STOPFILE: read FILE in a loop until STOPFILE exists;
# write "<sha256> <times seen> <length> <head>...<tail>" per distinct
# content (key "ERR <code>" for a failed read).
hot_reader() {
	node -e '
		const fs = require("fs"), crypto = require("crypto");
		const [file, out, stop] = process.argv.slice(1);
		const seen = new Map();
		let n = 0;
		const until = Date.now() + 60000;
		fs.writeFileSync(out + ".ready", "");
		while (!fs.existsSync(stop) && Date.now() < until) {
			let key, buf = Buffer.alloc(0);
			try {
				buf = fs.readFileSync(file);
				key = crypto.createHash("sha256").update(buf).digest("hex");
			} catch (e) {
				key = "ERR_" + e.code;
			}
			const o = seen.get(key);
			if (o) o.n++;
			else seen.set(key, { n: 1, len: buf.length, s: JSON.stringify(buf.subarray(0, 30).toString()) + "..." + JSON.stringify(buf.subarray(Math.max(0, buf.length - 12)).toString()) });
			n++;
		}
		let s = "";
		for (const [k, v] of seen) s += k + " " + v.n + " " + v.len + " " + v.s + "\n";
		fs.writeFileSync(out, s);
	' "$@"
}

run_mode() {
	MODE=$1
	local P=live-$MODE uuid mnt cache args=() m e i f
	mnt=$W/mnt-$MODE
	cache=$W/cache-$MODE
	mkdir -p "$mnt" "$cache"
	EVENT_WAIT=5 MISSES=0 LAT_INO=() LAT_NW=()

	vs_check "$MODE: import project $P" ctl import "$P" "$TREE"
	vs_last_ok || return 0
	uuid=$(sql "SELECT vsync_project_id('$P')")
	args=(--pg "$VSYNC_PG_URL" --cache-dir "$cache" --log-file "$VS_LOG_DIR/agent.$MODE.log")
	if [[ $MODE == redis ]]; then
		args+=(--redis "$VSYNC_REDIS_URL")
	fi
	if ! vs_mount "$P" "$mnt" "${args[@]}"; then
		vs_fail "$MODE: mount: expected $mnt mounted within 10 s, saw none (log: $VS_MOUNT_LOG)"
		return 0
	fi
	vs_pass "$MODE: mounted $P"
	vs_check "$MODE: the mount equals PostgreSQL before any change" state_equal "$uuid" "$mnt"
	start_watchers "$mnt" || return 0

	# --- edits of existing files
	printf "export const a = 'BBBB';\n" >"$C/a1"
	if change ctl put "$P" src/a.js "$C/a1"; then
		expect_ino "edit, same size" "MOVED_TO $mnt/src/a.js"
		check_cat "edit, same size" "$mnt/src/a.js" "$C/a1"
		expect_nw "edit, same size" "$mnt/src" a.js rename "$(what_file "$C/a1")"
		nw_no_other "edit, same size" "$mnt/src" a.js "$(what_file "$C/a1")"
	fi

	{
		printf 'export const b = [\n'
		for ((i = 0; i < 400; i++)); do printf '  "line %04d of a longer b.js",\n' "$i"; done
		printf '];\n'
	} >"$C/b1"
	if change ctl put "$P" src/b.js "$C/b1"; then
		expect_ino "edit, bigger ($(stat -c %s "$TREE/src/b.js") → $(stat -c %s "$C/b1") bytes)" "MOVED_TO $mnt/src/b.js"
		check_cat "edit, bigger" "$mnt/src/b.js" "$C/b1"
		check_stat "edit, bigger" "$mnt/src/b.js" %s "$(stat -c %s "$C/b1")"
		expect_nw "edit, bigger" "$mnt/src" b.js rename "$(what_file "$C/b1")"
	fi

	printf 'export const b = 22;\n' >"$C/b2"
	if change ctl put "$P" src/b.js "$C/b2"; then
		expect_ino "edit, smaller (no old tail)" "MOVED_TO $mnt/src/b.js"
		check_cat "edit, smaller" "$mnt/src/b.js" "$C/b2"
		check_stat "edit, smaller" "$mnt/src/b.js" %s "$(stat -c %s "$C/b2")"
		expect_nw "edit, smaller" "$mnt/src" b.js rename "$(what_file "$C/b2")"
	fi

	# the name the next save is made under was looked up before (the
	# kernel keeps a negative entry for it): the save still arrives
	printf 'export const b = 23;\n' >"$C/b3"
	stat "$mnt/src/.vsync-save-$(printf %x "$(stat -c %i "$mnt/src/b.js")")-0" >/dev/null 2>&1 || true
	if change ctl put "$P" src/b.js "$C/b3"; then
		expect_ino "edit, its temporary name looked up before" "MOVED_TO $mnt/src/b.js"
		check_cat "edit, its temporary name looked up before" "$mnt/src/b.js" "$C/b3"
	fi

	if change ctl rollback "$P" src/b.js 1; then
		expect_ino "rollback to version 1" "MOVED_TO $mnt/src/b.js"
		check_cat "rollback to version 1" "$mnt/src/b.js" "$TREE/src/b.js"
		expect_nw "rollback to version 1" "$mnt/src" b.js rename "$(what_file "$TREE/src/b.js")"
	fi

	printf "export const a = 'from SQL, not vsyncctl';\n" >"$C/a2"
	if change sql_write "$uuid" src/a.js "$(cat "$C/a2")"$'\n'; then
		expect_ino "edit through SQL vsync_write_file" "MOVED_TO $mnt/src/a.js"
		check_cat "edit through SQL" "$mnt/src/a.js" "$C/a2"
		expect_nw "edit through SQL" "$mnt/src" a.js rename "$(what_file "$C/a2")"
	fi

	printf '#!/bin/sh\necho tool\n' >"$C/tool"
	if change ctl put "$P" scripts/tool.sh "$C/tool" --mode 0755; then
		expect_ino "put --mode 0755, same content" "ATTRIB $mnt/scripts/tool.sh"
		check_stat "put --mode 0755" "$mnt/scripts/tool.sh" %a 755
		check_cat "put --mode 0755: content unchanged" "$mnt/scripts/tool.sh" "$C/tool"
		expect_nw "put --mode 0755" "$mnt/scripts" tool.sh change
	fi

	# --- new names
	printf 'export const n = "new";\n' >"$C/new"
	if change ctl put "$P" src/new.js "$C/new"; then
		expect_ino "new file in an existing dir" "CREATE $mnt/src/new.js"
		check_cat "new file" "$mnt/src/new.js" "$C/new"
		check_ls "new file" "$mnt/src" has new.js
		expect_nw "new file" "$mnt/src" new.js rename "$(what_file "$C/new")"
	fi

	printf 'nested\n' >"$C/nested"
	if change ctl put "$P" deep/er/n.js "$C/nested"; then
		expect_ino "new file in new nested dirs" "CREATE,ISDIR $mnt/deep"
		# the event is for the first directory of the chain; the file
		# is made after it (its own event may come before inotifywait
		# watches deep/er): wait for it
		vs_poll "$EVENT_WAIT" test -f "$mnt/deep/er/n.js"
		check_cat "new file in new nested dirs" "$mnt/deep/er/n.js" "$C/nested"
		check_ls "new nested dirs" "$mnt" has deep
		check_stat "new nested dirs: mode of the created parents" "$mnt/deep/er" '%F %a' 'directory 755'
		expect_nw "new nested dirs" "$mnt" deep rename dir
	fi

	if change ctl mkdir "$P" emptydir; then
		expect_ino "mkdir" "CREATE,ISDIR $mnt/emptydir"
		check_stat "mkdir" "$mnt/emptydir" %F directory
		vs_check_eq "$MODE: mkdir: the new directory is empty" "" "$(ls -A "$mnt/emptydir" 2>&1)"
	fi

	if change sql_write "$uuid" src/link.js a.js symlink; then
		expect_ino "symlink created through SQL" "CREATE $mnt/src/link.js"
		vs_check_eq "$MODE: symlink: readlink" a.js "$(readlink "$mnt/src/link.js" 2>&1)"
		check_cat "symlink: followed" "$mnt/src/link.js" "$C/a2"
		expect_nw "symlink" "$mnt/src" link.js rename "symlink a.js"
	fi

	# --- negative lookups cached before the name appears
	for i in 1 2; do stat "$mnt/src/later.js" >/dev/null 2>&1 || true; done
	stat "$mnt/newtop/q.txt" >/dev/null 2>&1 || true
	ls "$mnt/src" >/dev/null
	check_gone "negative lookup cached" "$mnt/src/later.js"
	printf 'later\n' >"$C/later"
	if change ctl put "$P" src/later.js "$C/later"; then
		expect_ino "a name looked up before it existed" "CREATE $mnt/src/later.js"
		check_stat "a name looked up before it existed: stat right after the event" \
			"$mnt/src/later.js" %s "$(stat -c %s "$C/later")"
		check_cat "a name looked up before it existed" "$mnt/src/later.js" "$C/later"
	fi
	printf 'q\n' >"$C/q"
	if change ctl put "$P" newtop/q.txt "$C/q"; then
		expect_ino "a path looked up before its dir existed" "CREATE,ISDIR $mnt/newtop"
		check_cat "a path looked up before its dir existed" "$mnt/newtop/q.txt" "$C/q"
	fi

	# --- deletes
	if change ctl rm "$P" src/sub/c.js; then
		expect_ino "delete a file" "DELETE $mnt/src/sub/c.js"
		check_gone "delete a file" "$mnt/src/sub/c.js"
		check_ls "delete a file" "$mnt/src/sub" lacks c.js
		expect_nw "delete a file" "$mnt/src/sub" c.js rename ENOENT
	fi

	cat "$mnt/docs/old/deeper/z.txt" >/dev/null 2>&1 || true # cached entries
	if change ctl rm -r "$P" docs/old; then
		expect_ino "delete a directory recursively" "DELETE,ISDIR $mnt/docs/old"
		check_gone "delete a directory recursively" "$mnt/docs/old"
		check_gone "delete a directory recursively: a file under it" "$mnt/docs/old/deeper/z.txt"
		check_ls "delete a directory recursively" "$mnt/docs" lacks old
	fi

	if change ctl rm "$P" src/recreate.js; then
		expect_ino "delete before re-create" "DELETE $mnt/src/recreate.js"
	fi
	printf 'export const recreate = "second life, longer than the first";\n' >"$C/recreate"
	if change ctl put "$P" src/recreate.js "$C/recreate"; then
		expect_ino "re-create a deleted name" "CREATE $mnt/src/recreate.js"
		check_cat "re-create a deleted name" "$mnt/src/recreate.js" "$C/recreate"
		expect_nw "re-create a deleted name" "$mnt/src" recreate.js rename "$(what_file "$C/recreate")"
	fi

	# --- renames
	if change ctl mv "$P" lib/m.js lib/m2.js; then
		expect_ino "rename a file" "MOVED_FROM $mnt/lib/m.js" "MOVED_TO $mnt/lib/m2.js"
		check_gone "rename a file: old name" "$mnt/lib/m.js"
		check_cat "rename a file" "$mnt/lib/m2.js" "$TREE/lib/m.js"
		check_ls "rename a file" "$mnt/lib" has m2.js
		check_ls "rename a file" "$mnt/lib" lacks m.js
		expect_nw "rename a file: old name" "$mnt/lib" m.js rename ENOENT
		expect_nw "rename a file: new name" "$mnt/lib" m2.js rename "$(what_file "$TREE/lib/m.js")"
	fi

	if change ctl mv "$P" lib/m2.js src/m3.js; then
		expect_ino "rename across dirs" "MOVED_FROM $mnt/lib/m2.js" "MOVED_TO $mnt/src/m3.js"
		check_gone "rename across dirs: old name" "$mnt/lib/m2.js"
		check_cat "rename across dirs" "$mnt/src/m3.js" "$TREE/lib/m.js"
		check_ls "rename across dirs" "$mnt/src" has m3.js
		expect_nw "rename across dirs" "$mnt/src" m3.js rename "$(what_file "$TREE/lib/m.js")"
	fi

	cat "$mnt/src/replace-me.js" >/dev/null 2>&1 || true # in the page cache
	if change ctl mv "$P" src/replacer.js src/replace-me.js; then
		expect_ino "rename onto an existing file" \
			"MOVED_FROM $mnt/src/replacer.js" "MOVED_TO $mnt/src/replace-me.js"
		check_cat "rename onto an existing file" "$mnt/src/replace-me.js" "$TREE/src/replacer.js"
		check_gone "rename onto an existing file: old name" "$mnt/src/replacer.js"
	fi

	cat "$mnt/rdir/inner/g.txt" >/dev/null 2>&1 || true
	if change ctl mv "$P" rdir rdir2; then
		expect_ino "rename a directory" "MOVED_FROM,ISDIR $mnt/rdir" "MOVED_TO,ISDIR $mnt/rdir2"
		check_gone "rename a directory: old name" "$mnt/rdir"
		check_gone "rename a directory: a file under the old name" "$mnt/rdir/inner/g.txt"
		check_cat "rename a directory: a file under the new name" "$mnt/rdir2/inner/g.txt" \
			"$TREE/rdir/inner/g.txt"
		check_ls "rename a directory" "$mnt" has rdir2
		check_ls "rename a directory" "$mnt" lacks rdir
		expect_nw "rename a directory" "$mnt" rdir2 rename dir
	fi

	# --- edits after a rename: PostgreSQL numbers versions per path (a
	# file renamed to a fresh path is v1 there), so the mount must not keep
	# the old path's version (v2 here) and take later edits for old ones
	printf 'ren v1\n' >"$C/ren1"
	printf 'ren v2, longer\n' >"$C/ren2"
	printf 'ren after the rename\n' >"$C/ren3"
	printf 'renx v1\n' >"$C/renx1"
	printf 'renx v2, longer\n' >"$C/renx2"
	printf 'renx after the directory rename\n' >"$C/renx3"
	if ctl put "$P" lib/ren.js "$C/ren1" && ctl put "$P" lib/ren.js "$C/ren2" &&
		ctl mv "$P" lib/ren.js lib/ren2.js &&
		ctl put "$P" rendir/x.js "$C/renx1" && ctl put "$P" rendir/x.js "$C/renx2" &&
		ctl mv "$P" rendir rendir2 &&
		vs_poll 10 cmp -s "$mnt/rendir2/x.js" "$C/renx2"; then
		if change ctl put "$P" lib/ren2.js "$C/ren3"; then
			expect_ino "edit after a file rename" "MOVED_TO $mnt/lib/ren2.js"
			check_cat "edit after a file rename" "$mnt/lib/ren2.js" "$C/ren3"
		fi
		if change ctl put "$P" rendir2/x.js "$C/renx3"; then
			expect_ino "edit after a directory rename" "MOVED_TO $mnt/rendir2/x.js"
			check_cat "edit after a directory rename" "$mnt/rendir2/x.js" "$C/renx3"
		fi
		# and a local save there is based on the new path's version
		printf 'saved in the mount after the rename\n' >"$C/ren4"
		cp "$C/ren4" "$mnt/lib/ren2.js"
		ren_saved() { [[ "$(ctl cat "$P" lib/ren2.js 2>/dev/null)" == "$(cat "$C/ren4")" ]]; }
		if vs_poll 10 ren_saved; then
			vs_pass "$MODE: local save after a remote rename reaches PostgreSQL"
		else
			vs_fail "$MODE: local save after a remote rename: expected PostgreSQL to have '$(cat "$C/ren4")' within 10 s, saw '$(ctl cat "$P" lib/ren2.js 2>&1 | head -c 80)' (log: $(grep -F ren2.js "$VS_MOUNT_LOG" | tail -n 2 | tr '\n' ' '))"
		fi
	else
		vs_fail "$MODE: edits after a rename: setup (two puts and a rename, applied) failed"
	fi

	# --- renames across the local-only boundary (build/ is local-only)
	printf 'moved out\n' >"$C/out"
	printf 'moved in\n' >"$C/in"
	if ctl put "$P" src/out.js "$C/out" && ctl put "$P" build/in.js "$C/in" &&
		vs_poll 10 cmp -s "$mnt/src/out.js" "$C/out"; then
		if change ctl mv "$P" src/out.js build/out.js; then
			expect_ino "rename into a local-only path" "DELETE $mnt/src/out.js"
			check_gone "rename into a local-only path" "$mnt/src/out.js"
		fi
		if change ctl mv "$P" build/in.js src/in.js; then
			expect_ino "rename from a local-only path" "CREATE $mnt/src/in.js|MOVED_TO $mnt/src/in.js"
			check_cat "rename from a local-only path" "$mnt/src/in.js" "$C/in"
		fi
	else
		vs_fail "$MODE: renames across the local-only boundary: setup failed"
	fi
	# (the mount does not show build/: the whole-mount check below would)
	ctl rm -r "$P" build || vs_fail "$MODE: rm -r build: failed"

	# --- 30 quick edits of one file while a reader loops on it
	if [[ -n "$HAVE_NODE" ]]; then
		local hot=$W/hot-$MODE sqlf last
		mkdir -p "$hot"
		sha_of "$TREE/src/hot.js" >"$hot/valid"
		stat -c %s "$TREE/src/hot.js" >"$hot/sizes"
		sqlf=$hot/edits.sql
		: >"$sqlf"
		for ((i = 1; i <= 30; i++)); do
			f=$hot/v$i
			{
				printf 'export const hot = %d; // ' "$i"
				head -c $(((i * 7919) % 3000 + 1)) /dev/zero | tr '\0' 'x'
				printf '\n'
			} >"$f"
			sha_of "$f" >>"$hot/valid"
			stat -c %s "$f" >>"$hot/sizes"
			printf "SELECT 1 FROM vsync_write_file('%s'::uuid, 'src/hot.js', convert_to(\$c\$%s\$c\$, 'UTF8'), NULL, NULL, NULL, 'hot', 'file');\n" \
				"$uuid" "$(cat "$f")"$'\n' >>"$sqlf"
		done
		last=$(tail -n 1 "$hot/valid")
		hot_reader "$mnt/src/hot.js" "$hot/seen" "$hot/stop" &
		local rpid=$!
		vs_on_exit "touch $hot/stop; wait $rpid 2>/dev/null; true"
		if ! vs_poll 10 test -e "$hot/seen.ready"; then
			vs_fail "$MODE: 30 quick edits: expected the reader loop started within 10 s, saw it not started"
		fi
		if change timeout -k 2 30 "$PSQL" -X -At -q -v ON_ERROR_STOP=1 "$VSYNC_PG_URL" -f "$sqlf"; then
			hot_current() { [[ "$(sha256sum <"$mnt/src/hot.js" 2>/dev/null | cut -d' ' -f1)" == "$last" ]]; }
			if vs_poll "$EVENT_WAIT" hot_current; then
				vs_pass "$MODE: 30 quick edits: the last one is visible ($(ms_since_done) ms after they were committed)"
			else
				# the error itself if the name cannot be read (open or read
				# failing is the case to diagnose), and what the directory holds
				vs_fail "$MODE: 30 quick edits: expected the last version (sha $last) within ${EVENT_WAIT} s, saw: $({ sha256sum <"$mnt/src/hot.js" | cut -d' ' -f1; } 2>&1); in src/: $(ls -lin "$mnt/src" 2>&1 | tr '\n' ';')"
			fi
		fi
		touch "$hot/stop"
		wait "$rpid" || true
		local bad reads
		# bad: "<sha> <times> <length> <bytes> (the length of version N)"
		bad=$(awk 'FILENAME == ARGV[1] { ok[$1] = 1; next }
			FILENAME == ARGV[2] { v[$1] = v[$1] " " (FNR - 1); next }
			!($1 in ok) { print $0 " (the length of version" ($3 in v ? v[$3] : " none") ")" }' \
			"$hot/valid" "$hot/sizes" "$hot/seen")
		reads=$(awk '{ n += $2 } END { print n + 0 }' "$hot/seen")
		if [[ -z "$bad" && $reads -gt 0 ]]; then
			vs_pass "$MODE: 30 quick edits: $reads reads in a loop saw only whole versions ($(wc -l <"$hot/seen") distinct)"
		else
			vs_fail "$MODE: 30 quick edits: expected $reads reads to see only whole versions, saw other contents (sha, times, length, bytes): $(head -n 3 <<<"$bad" | cut -d" " -f2- | tr '\n' ';')"
		fi
		vs_log "$MODE: ATTRIB/MODIFY lines for src/hot.js during the 30 edits: $(tail -n +$((INO_OFF + 1)) "$INO" | grep -cE "^(ATTRIB|MODIFY)[A-Z_,]* .*/src/hot\.js$" || true)"
	fi

	# --- local writes among the remote ones reach PostgreSQL
	vs_check "$MODE: a file created in a synced dir is committed" sh -c \
		'printf "local\n" >"$1/src/local-write.js" && sync "$1/src/local-write.js" &&
		 [ "$("$2" -q --pg "$3" cat "$4" src/local-write.js)" = local ]' \
		_ "$mnt" "$CTL_BIN" "$VSYNC_PG_URL" "$P"
	vs_check "$MODE: an append to a remotely changed file is committed" sh -c \
		'printf "local\n" >>"$1/src/a.js" && sync "$1/src/a.js" &&
		 "$2" -q --pg "$3" cat "$4" src/a.js | tail -n 1 | grep -qx local' \
		_ "$mnt" "$CTL_BIN" "$VSYNC_PG_URL" "$P"

	# --- the whole mount equals PostgreSQL
	if vs_poll "$EVENT_WAIT" state_equal "$uuid" "$mnt"; then
		vs_pass "$MODE: the whole mount equals vsync_manifest() ($(wc -l <"$W/pg.state") entries)"
	else
		vs_fail "$MODE: the whole mount: expected vsync_manifest()'s entries, saw differences (< PostgreSQL, > mount): $(diff "$W/pg.state" "$W/mnt.state" | grep '^[<>]' | head -n 8 | tr '\n' ';')"
	fi

	if [[ $MODE == redis ]]; then
		local seq lastid
		seq=$(sql "SELECT vsync_project_seq('$uuid')")
		lastid=$(vs_redis_cli XREVRANGE "events:{$uuid}" + - COUNT 1 2>&1 | head -n 1)
		vs_check_eq "redis: the stream's last entry id is the project's last change" "$seq-0" "$lastid"
	fi

	e=$(printf '%s\n' "${LAT_INO[@]}" | median)
	if [[ -n "$HAVE_NODE" ]]; then
		m=$(printf '%s\n' "${LAT_NW[@]}" | median)
	else
		m=-
	fi
	printf '# %s mode: change returned → event, median of %d changes: inotifywait seen ≤ %s ms (polled), fs.watch %s ms (negative: the event came before the command had exited)\n' \
		"$MODE" "${#LAT_INO[@]}" "$e" "$m"

	stop_watchers
	if vs_umount "$mnt"; then
		vs_pass "$MODE: unmounted"
	else
		vs_fail "$MODE: unmount: expected no mount at $mnt, saw one left"
	fi
}

# ---------------------------------------------------------------- run both modes

# PostgreSQL only first: Redis is not even running, so the mount cannot lean
# on it.
run_mode pg

# shellcheck disable=SC2119 # vs_relay_start with its default options
if vs_servers_start redis; then
	if [[ ! -x "$RELAY_BIN" ]]; then
		vs_fail "redis mode: expected an executable $RELAY_BIN, saw none"
	elif ! vs_relay_start; then
		vs_fail "redis mode: vsync-relay: expected it running, saw it exit (log: $VS_RELAY_LOG)"
	else
		run_mode redis
	fi
else
	vs_fail "redis mode: expected Redis started, saw a failure"
fi

vs_check "nothing of this test is left in /proc/mounts" \
	sh -c '! grep -qF -- "$1" /proc/mounts' _ "$W"

vs_summary
