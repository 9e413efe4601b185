#!/usr/bin/env bash
#
# test_writeback.sh - the write-back journal and committer (sync/journal.c,
# sync/writeback.c) against a throwaway PostgreSQL, driven by
# $VSYNC_BUILD_DIR/tests/wb_driver (no FUSE, no Redis needed).
#
# Covers:
#   - a write with the current base commits a new version (cat equals the
#     file, the reported hash is its SHA-256);
#   - a stale base with edits on different lines is merged: both edits in
#     the committed version, merged=1, the merged bytes in the cache;
#   - edits of the same line: the local version committed over the other,
#     conflict=1, both versions in `vsyncctl log`, the overwritten one
#     readable with `cat --version`, the conflict in vsync_conflicts();
#     (these two need vsync_write_file_over; skipped with a line if the
#     schema does not have it);
#   - a version that moves under every round of the resolution (a trigger
#     refusing every write as stale): the entry stays journaled, is not
#     dropped, and is committed by a replay once the path is quiet;
#   - a crash before the commit (append-only) then replay commits it, and a
#     replay of the same entry again (a crash after the commit, before the
#     entry was removed) changes nothing: one file_operations row for the
#     op id, one version;
#   - a crash after a burst of saves was committed as its newest, before
#     its entries left the journal: the replay finishes the older ones
#     (no new version, no conflict), also with a save journaled behind it;
#   - a burst whose newest save lost its content object: the older saves
#     are committed one by one, only the newest is refused;
#   - out of file descriptors (EMFILE) at the open of the content object:
#     the entry waits, and is committed once descriptors are back;
#   - a stale save merged on a full cache volume (a tmpfs, skipped if it
#     cannot be mounted): the store of the merged bytes fails with ENOSPC,
#     the entry waits (not refused), and is committed merged once room
#     returns;
#   - PostgreSQL stopped: the entry stays journaled and the wait times out
#     with ETIMEDOUT; PostgreSQL started again: replay commits it;
#   - PostgreSQL frozen (SIGSTOP) during the committer's query: the
#     driver returns after its wait (the query's cancel does not hold the
#     committer), the entry stays journaled, and is committed once thawed;
#   - two transactions writing the same chunked content at once
#     (vsync_write_chunked): the second waits for the first, then succeeds;
#   - mkdir (twice: the second is done as is), mkdir over a file refused
#     (EEXIST), delete (and of a missing path: done), rename, rename of a
#     missing source refused (ENOENT), a path PostgreSQL refuses (a newline)
#     dropped with EINVAL, a symlink;
#   - poison entries (refused for good by PostgreSQL with SQLSTATEs the C
#     code cannot foresee: 54000 from an index, 23514 from a CHECK), each
#     followed by good ones: the poison is dropped, logged with its reason,
#     and everything behind it committed at once; a 2.9 KB path is stored.
#
# Prints "N passed, M failed".
set -u

# shellcheck source=tests/lib/servers.sh
. "$(dirname "$0")/../lib/servers.sh"

CTL=$VSYNC_BUILD_DIR/agent/vsyncctl
WB=$VSYNC_BUILD_DIR/tests/wb_driver
for b in "$CTL" "$WB"; do
	if [[ ! -x "$b" ]]; then
		echo "test_writeback: $b is missing (build it first)" >&2
		exit 1
	fi
done

vs_deadline 240
vs_servers_start pg || exit 1
PSQL=$VS_PG_BIN/psql
W=$VS_SERVERS_DIR/work
CACHE=$W/cache
JOURNAL=$W/journal
mkdir -p "$W"
export WB_TIMEOUT_MS=1000

ctl() { "$CTL" "$@"; }
sql() { "$PSQL" -X -At -v ON_ERROR_STOP=1 "$VSYNC_PG_URL" -c "$1"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

# wb ARGS...: run the driver; its stdout in $OUT, exit status in $RC.
wb() {
	RC=0
	OUT=$("$WB" "$CACHE" "$JOURNAL" "$PID" "$@" 2>>"$W/wb.log") || RC=$?
	echo "wb_driver $*: rc=$RC $OUT" >>"$W/wb.log"
}

# field NAME: the value of NAME=... in $OUT.
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$OUT" | head -n 1; }

# entries and temp files (not the pooled files kept for reuse and as the
# room for a full disk, "free.<k>")
journal_count() { find "$JOURNAL" -mindepth 1 -maxdepth 1 ! -name 'free.*' | wc -l; }

# lines N: a file of N numbered lines.
lines() {
	local i
	for ((i = 1; i <= $1; i++)); do echo "line $i"; done
}

# ---------------------------------------------------------------- setup

vs_check "init" ctl -q init
HAVE_004=0
if [[ "$(sql "select count(*) from pg_proc where proname = 'vsync_write_file_over'")" == 1 ]]; then
	HAVE_004=1
fi

SRC=$W/src
mkdir -p "$SRC/src"
lines 10 >"$SRC/src/a.js"
echo "b" >"$SRC/src/b.js"
echo "# readme" >"$SRC/README.md"
vs_check "import" ctl -q import wbtest "$SRC"
PID=$(sql "select id from projects where name = 'wbtest'")
vs_check_eq "project id" 36 "${#PID}"

# ---------------------------------------------------------------- write

lines 10 | sed 's/^line 3$/line 3 local/' >"$W/a2"
wb write src/a.js "$W/a2" 1
vs_check_eq "write with base 1: exit" 0 "$RC"
vs_check_eq "write with base 1: version 2, not merged" \
	"version=2 merged=0 conflict=0" \
	"$(grep -o 'version=.* conflict=[01]' <<<"$OUT")"
vs_check_eq "write: hash reported" "$(sha "$W/a2")" "$(field hash)"
vs_check_eq "write: cat is the local content" "$(cat "$W/a2")" \
	"$(ctl cat wbtest src/a.js)"
vs_check_eq "write: journal empty" 0 "$(journal_count)"

# ---------------------------------------------------------------- merge

# theirs: line 2 edited by someone else (v3); ours: line 9, based on v2
sed 's/^line 2$/line 2 theirs/' "$W/a2" >"$W/a3"
vs_check "put v3 (another writer)" ctl -q put wbtest src/a.js "$W/a3" --base 2
sed 's/^line 9$/line 9 ours/' "$W/a2" >"$W/a4"
if ((HAVE_004)); then
	wb write src/a.js "$W/a4" 2
	vs_check_eq "stale base, other lines: exit" 0 "$RC"
	vs_check_eq "stale base, other lines: merged as v4" \
		"version=4 merged=1 conflict=0" \
		"$(grep -o 'version=.* conflict=[01]' <<<"$OUT")"
	sed 's/^line 9$/line 9 ours/' "$W/a3" >"$W/merged"
	vs_check_eq "merge: cat has both edits" "$(cat "$W/merged")" \
		"$(ctl cat wbtest src/a.js)"
	vs_check_eq "merge: hash of the merged bytes" "$(sha "$W/merged")" \
		"$(field hash)"
	h=$(field hash)
	vs_check "merge: merged bytes in the cache" \
		cmp -s "$W/merged" "$CACHE/objects/${h:0:2}/$h"
	vs_check "merge: logged" grep -q \
		"merged concurrent edits of 'src/a.js' (v3 + local) as v4" \
		"$W/wb.log"
else
	vs_log "SKIP merge checks: vsync_write_file_over is not in the schema (vsyncctl init did not apply it)"
	ctl -q put wbtest src/a.js "$W/a4" >/dev/null
fi

# ---------------------------------------------------------------- conflict

cur=$(ctl log wbtest src/a.js | tail -n 1 | sed 's/^v\([0-9]*\).*/\1/')
ctl cat wbtest src/a.js | sed 's/^line 5$/line 5 theirs/' >"$W/t5"
vs_check "put the other side's line 5" ctl -q put wbtest src/a.js "$W/t5" \
	--base "$cur"
ctl cat --version "$cur" wbtest src/a.js | sed 's/^line 5$/line 5 ours/' \
	>"$W/o5"
if ((HAVE_004)); then
	wb write src/a.js "$W/o5" "$cur"
	theirs=$((cur + 1))
	ours=$((cur + 2))
	vs_check_eq "same line: exit" 0 "$RC"
	vs_check_eq "same line: conflict, local committed as v$ours" \
		"version=$ours merged=0 conflict=1" \
		"$(grep -o 'version=.* conflict=[01]' <<<"$OUT")"
	vs_check_eq "conflict: cat is the local version" "$(cat "$W/o5")" \
		"$(ctl cat wbtest src/a.js)"
	vs_check_eq "conflict: the other version kept in history" \
		"$(cat "$W/t5")" "$(ctl cat --version "$theirs" wbtest src/a.js)"
	vs_check "conflict: both versions in vsyncctl log" \
		bash -c "ctl() { \"$CTL\" \"\$@\"; }; out=\$(ctl log wbtest src/a.js); grep -q '^v$theirs ' <<<\"\$out\" && grep -q '^v$ours ' <<<\"\$out\""
	vs_check_eq "conflict: recorded (based_on, overwrote)" "$cur|$theirs|$ours" \
		"$(sql "select based_on || '|' || overwrote || '|' || version from vsync_conflicts('$PID', 'src/a.js')")"
	vs_check "conflict: logged" grep -q \
		"conflict on 'src/a.js': local edit based on v$cur committed over v$theirs (kept in history)" \
		"$W/wb.log"
else
	vs_log "SKIP conflict checks: vsync_write_file_over is not in the schema"
fi

# ---------------------------------------------------------------- a version that keeps moving

# Another writer commits between every round of the resolution (merge, or
# commit over): here, deterministically, a trigger refuses every write of
# the path as stale (P0004, as vsync_write_file does). After its rounds the
# committer backs off and tries again: the entry stays journaled, the
# local edit is not dropped; once the path is quiet, it is committed.
printf 'h1\nh2\n' >"$W/h1"
vs_check "put src/hot.js v1" ctl -q put wbtest src/hot.js "$W/h1"
sql "CREATE FUNCTION hot_stale() RETURNS trigger LANGUAGE plpgsql AS
	\$\$BEGIN RAISE EXCEPTION USING ERRCODE = 'P0004',
	MESSAGE = 'hot.js moved (test)'; END\$\$"
sql "CREATE TRIGGER hot_stale BEFORE INSERT ON project_files FOR EACH ROW
	WHEN (NEW.file_path = 'src/hot.js') EXECUTE FUNCTION hot_stale()"
printf 'h1\nh2 local\n' >"$W/h2"
WB_WAIT_MS=3000 wb write src/hot.js "$W/h2" 1
vs_check_eq "moving version: not refused, still journaled (exit 5)" \
	"5 error=-110 (ETIMEDOUT) pending=1" "$RC $OUT"
vs_check_eq "moving version: entry kept" 1 "$(journal_count)"
sql "DROP TRIGGER hot_stale ON project_files"
sql "DROP FUNCTION hot_stale()"
wb replay
vs_check_eq "moving version: replay once quiet" "0 pending=0" "$RC $(tail -n 1 <<<"$OUT")"
vs_check_eq "moving version: the local edit committed" "$(cat "$W/h2")" \
	"$(ctl cat wbtest src/hot.js)"

# ---------------------------------------------------------------- crash and replay

echo "c content" >"$W/c"
wb append-only write src/c.js "$W/c"
vs_check_eq "append-only: exit" 0 "$RC"
op=$(field op_id)
vs_check_eq "append-only: one entry journaled" 1 "$(journal_count)"
vs_check_eq "append-only: nothing committed" 0 \
	"$(sql "select count(*) from file_operations where operation_id = '$op'")"
entry=$(ls "$JOURNAL" | grep -E '^[0-9]{20}$')
cp -p "$JOURNAL/$entry" "$W/entry.copy"
wb replay
vs_check_eq "replay: exit" 0 "$RC"
vs_check "replay: committed src/c.js" grep -q "committed lseq=.* op=write path=src/c.js .*error=0" <<<"$OUT"
vs_check_eq "replay: cat" "c content" "$(ctl cat wbtest src/c.js)"
vs_check_eq "replay: journal empty" 0 "$(journal_count)"
# a crash after the commit but before the entry was removed: replay again
cp -p "$W/entry.copy" "$JOURNAL/$entry"
wb replay
vs_check_eq "second replay: exit" 0 "$RC"
vs_check_eq "second replay: one file_operations row for the op id" 1 \
	"$(sql "select count(*) from file_operations where operation_id = '$op'")"
vs_check_eq "second replay: still one version" 1 \
	"$(ctl log wbtest src/c.js | wc -l)"
vs_check_eq "second replay: journal empty" 0 "$(journal_count)"

# A burst (saves of one path, each chained after the one before) is
# committed as its newest op on the first one's base; a crash before its
# entries left the journal leaves them all there. The replay must finish
# the older ones as superseded, not commit them over the newest (which
# would leave PostgreSQL at an older save than the mount's).
burst_save() { # NAME [BASE AFTER_OP]: journal a save of src/burst.js
	echo "burst $1" >"$W/burst.$1"
	wb append-only write src/burst.js "$W/burst.$1" "${@:2}"
	field op_id
}
burst_keep() { # copy the journal's entries aside (what a crash leaves)
	rm -rf "$W/burst.copy"
	mkdir "$W/burst.copy"
	find "$JOURNAL" -maxdepth 1 -regextype egrep -regex '.*/[0-9]{20}' \
		-exec cp -p {} "$W/burst.copy/" \;
}
burst_state() { # content|versions|conflicts of src/burst.js
	echo "$(ctl cat wbtest src/burst.js)|$(ctl log wbtest src/burst.js | wc -l)|$(sql "select count(*) from vsync_conflicts('$PID', 'src/burst.js')")"
}
echo "burst 0" >"$W/burst.0"
wb write src/burst.js "$W/burst.0"
op=$(burst_save a 1)
op=$(burst_save b -1 "$op")
op=$(burst_save c -1 "$op")
burst_keep
wb replay
vs_check_eq "burst: a, b, c committed as c (v2)" "burst c|2|0" "$(burst_state)"
cp -p "$W/burst.copy/"* "$JOURNAL/" # the crash: all three still there
wb replay
vs_check_eq "burst after a crash: replay exit" "0 pending=0" \
	"$RC $(tail -n 1 <<<"$OUT")"
vs_check_eq "burst after a crash: still c, no new version, no conflict" \
	"burst c|2|0" "$(burst_state)"
# the newest op in PostgreSQL is in the middle of the journaled chain: a
# crash after d and e were committed as e, with f saved behind them
op=$(burst_save d -1 "$op")
op=$(burst_save e -1 "$op")
burst_keep
wb replay
vs_check_eq "burst: d, e committed as e (v3)" "burst e|3|0" "$(burst_state)"
cp -p "$W/burst.copy/"* "$JOURNAL/"
burst_save f -1 "$op" >/dev/null
wb replay
vs_check_eq "burst after a crash, a save behind: replay exit" "0 pending=0" \
	"$RC $(tail -n 1 <<<"$OUT")"
vs_check_eq "burst after a crash, a save behind: f after e (v4), no conflict" \
	"burst f|4|0" "$(burst_state)"

# A save chained after one that was committed as a merge (another
# writer's edit came between): its bytes lack that edit, so it is merged
# in turn, not committed on the merge's version (which would drop the
# other edit with no conflict). A save of another file comes between the
# two, so they are not one burst.
lines 10 >"$W/m1"
wb write src/m.js "$W/m1"
lines 10 | sed 's/^line 2$/line 2 remote/' >"$W/m_remote"
ctl -q put wbtest src/m.js "$W/m_remote"
lines 10 | sed 's/^line 5$/line 5 local/' >"$W/mA"
wb append-only write src/m.js "$W/mA" 1
op=$(field op_id)
echo "between" >"$W/m_between"
wb append-only write src/m_between.js "$W/m_between"
sed 's/^line 9$/line 9 local/' "$W/mA" >"$W/mB"
wb append-only write src/m.js "$W/mB" 1 "$op"
wb replay
vs_check_eq "merge, then a chained save: replay exit" "0 pending=0" \
	"$RC $(tail -n 1 <<<"$OUT")"
lines 10 | sed -e 's/^line 2$/line 2 remote/' -e 's/^line 5$/line 5 local/' \
	-e 's/^line 9$/line 9 local/' >"$W/m_want"
vs_check_eq "merge, then a chained save: the other writer's edit stays" \
	"$(cat "$W/m_want")" "$(ctl cat wbtest src/m.js)"
vs_check_eq "merge, then a chained save: both saves merged, no conflict" \
	"2 0" "$(grep -c "op=write path=src/m.js .*merged=1 conflict=0 error=0" <<<"$OUT") $(sql "select count(*) from vsync_conflicts('$PID', 'src/m.js')")"

# a crash before the journal's sync: the entry survived, its content
# object did not (torn; nothing fsync'd either): refused, never committed
echo "t content" >"$W/t"
wb append-only write src/t.js "$W/t"
vs_check_eq "torn object: appended" 0 "$RC"
h=$(sha256sum <"$W/t" | cut -d' ' -f1)
: >"$CACHE/objects/${h:0:2}/$h"
wb replay
vs_check "torn object: the entry is refused" grep -q "committed lseq=.* op=write path=src/t.js .*error=-" <<<"$OUT"
vs_check "torn object: nothing committed" sh -c '! "$1" -q cat wbtest src/t.js >/dev/null 2>&1' _ "$CTL"
vs_check_eq "torn object: journal empty" 0 "$(journal_count)"

# a burst whose newest save lost its content object (torn): only that
# save is lost; the older ones, whose bytes are fine, are committed one by
# one (before: the burst was finished as refused with its newest)
echo "torn burst 0" >"$W/tb.0"
wb write src/tb.js "$W/tb.0"
tb_save() { # NAME [BASE AFTER_OP]: journal a save of src/tb.js
	echo "torn burst $1" >"$W/tb.$1"
	wb append-only write src/tb.js "$W/tb.$1" "${@:2}"
	field op_id
}
op=$(tb_save a 1)
op=$(tb_save b -1 "$op")
tb_save c -1 "$op" >/dev/null
h=$(sha256sum <"$W/tb.c" | cut -d' ' -f1)
: >"$CACHE/objects/${h:0:2}/$h"
wb replay
vs_check_eq "torn burst: replay exit" "0 pending=0" "$RC $(tail -n 1 <<<"$OUT")"
vs_check_eq "torn burst: a and b committed, c refused" "0 0 -5" \
	"$(sed -n 's/^committed .* path=src\/tb.js .* error=\(-*[0-9]*\)$/\1/p' <<<"$OUT" | xargs)"
vs_check_eq "torn burst: PostgreSQL has b, after a (v3)" "torn burst b|3" \
	"$(ctl cat wbtest src/tb.js)|$(ctl log wbtest src/tb.js | wc -l)"

# out of file descriptors (EMFILE) when the committer opens the content
# object: not the object's fault, so the entry waits and is committed
# later, not dropped. The save is chained after a committed one, so the
# committer's first call connects to PostgreSQL before it opens the
# object. Two spare descriptors: a cache-dir file is opened through an
# O_PATH fd first (vs_open_regular: two at once), which the journal
# entry's read has, and the object's, after the socket took one, has not.
echo "e1" >"$W/e1"
wb append-only write src/e.js "$W/e1"
op=$(field op_id)
wb replay
vs_check_eq "EMFILE: first save committed" "e1" "$(ctl cat wbtest src/e.js)"
echo "e2" >"$W/e2"
wb append-only write src/e.js "$W/e2" -1 "$op"
vs_check_eq "EMFILE: chained save journaled" 0 "$RC"
WB_SPARE_FDS=2 WB_WAIT_MS=2000 wb replay
vs_check_eq "EMFILE: the entry waits (exit 5, pending=1)" "5 pending=1" \
	"$RC $(tail -n 1 <<<"$OUT")"
vs_check "EMFILE: the object open failed for want of descriptors" grep -q \
	"cannot commit write now: Too many open files.*'src/e.js'" "$W/wb.log"
vs_check_eq "EMFILE: still e1 in PostgreSQL" "e1" "$(ctl cat wbtest src/e.js)"
wb replay
vs_check_eq "EMFILE: with descriptors again, replay commits it" "0 pending=0" \
	"$RC $(tail -n 1 <<<"$OUT")"
vs_check_eq "EMFILE: the local edit committed" "e2" "$(ctl cat wbtest src/e.js)"

# ---------------------------------------------------------------- backend down

vs_check "stop PostgreSQL" vs_pg_stop
echo "d content" >"$W/d"
t0=$(vs_now_ms)
WB_WAIT_MS=2500 wb write src/d.js "$W/d"
t1=$(vs_now_ms)
vs_check_eq "PostgreSQL down: wait times out (exit 5)" 5 "$RC"
vs_check "PostgreSQL down: ETIMEDOUT" grep -q "error=-110 (ETIMEDOUT) pending=1" <<<"$OUT"
vs_check "PostgreSQL down: returned after the wait (2.5 s), not hung" \
	test $((t1 - t0)) -lt 8000
vs_check_eq "PostgreSQL down: entry stays journaled" 1 "$(journal_count)"
vs_check "PostgreSQL down: logged once" test \
	"$(grep -c "cannot commit write now: .*retrying: 'src/d.js'" "$W/wb.log")" -eq 1
vs_check "start PostgreSQL again" vs_pg_start_again
wb replay
vs_check_eq "PostgreSQL back: replay exit" 0 "$RC"
vs_check_eq "PostgreSQL back: committed" "d content" "$(ctl cat wbtest src/d.js)"
vs_check_eq "PostgreSQL back: journal empty" 0 "$(journal_count)"

# ---------------------------------------------------------------- backend frozen

# PostgreSQL frozen (SIGSTOP: a hung host, a VM paused) in the middle of
# the committer's query: the deadline passes, the query is abandoned, and
# its cancel (a new connection to the frozen server, no deadline in libpq)
# must not hold the committer: the wait ends, the driver stops and exits.
# The query is made to be in flight by a lock another session holds.
vs_held_begin hold "SELECT 1 FROM projects WHERE id = '$PID' FOR UPDATE;"
vs_check_eq "frozen: project locked by another session" 0 "$?"
echo "f content" >"$W/f"
t0=$(vs_now_ms)
WB_WAIT_MS=2000 "$WB" "$CACHE" "$JOURNAL" "$PID" write src/f.js "$W/f" \
	>"$W/frozen.out" 2>>"$W/wb.log" &
frozen=$!
vs_on_exit "kill -KILL $frozen 2>/dev/null; wait $frozen 2>/dev/null; :"
commit_waits() {
	[[ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'vsync' AND wait_event_type = 'Lock'")" == 1 ]]
}
vs_check "frozen: the committer's write waits for the lock" vs_poll 10 commit_waits
pm=$(head -n 1 "$VS_PG_DATA/postmaster.pid")
pg_pids="$pm $(ps -o pid= --ppid "$pm" | tr '\n' ' ')"
# shellcheck disable=SC2086 # a list of pids
vs_on_exit "kill -CONT $pg_pids 2>/dev/null; :"
# shellcheck disable=SC2086
kill -STOP $pg_pids
frozen_gone() { ! kill -0 "$frozen" 2>/dev/null; }
vs_check "frozen: the driver returns (wait 2 s, deadline 1 s), not hung" \
	vs_poll 10 frozen_gone
t1=$(vs_now_ms)
frozen_gone || kill -KILL "$frozen" # hung: the check above failed
wait "$frozen"
rc=$?
vs_check "frozen: returned within 8 s ($((t1 - t0)) ms)" test $((t1 - t0)) -lt 8000
vs_check_eq "frozen: wait timed out, entry journaled" \
	"5 error=-110 (ETIMEDOUT) pending=1" "$rc $(cat "$W/frozen.out")"
# shellcheck disable=SC2086
kill -CONT $pg_pids
vs_held_commit
wb replay
vs_check_eq "frozen: thawed, replay commits it" "0 pending=0" "$RC $(tail -n 1 <<<"$OUT")"
vs_check_eq "frozen: committed" "f content" "$(ctl cat wbtest src/f.js)"

# ---------------------------------------------------------------- chunked writes racing

# Two transactions write the same large content (the same hash, so the
# same chunk list in vsync_content_chunks) to two paths at once: the first
# holds its transaction open after vsync_write_chunked, the second must
# wait for it and then succeed, not fail on the list's primary key
# (23505, refused for good: the save would be dropped).
printf 'race chunk' >"$W/rc"
rh=$(sha "$W/rc")
wc_call() { # PATH: the vsync_write_chunked call of content $rh
	echo "SELECT version FROM vsync_write_chunked('$PID', '$1', '$rh', 10,
		ARRAY['$rh'], NULL, NULL, NULL, NULL, 'test');"
}
sql "SELECT vsync_chunk_put('$PID', '$rh', '\\x$(xxd -p "$W/rc")'::bytea)" >/dev/null
vs_held_begin race1 "$(wc_call race_a.bin)"
vs_check_eq "chunked race: first transaction holds its write" 0 "$?"
PGAPPNAME=race2 "$PSQL" -X -At -v ON_ERROR_STOP=1 "$VSYNC_PG_URL" \
	-c "$(wc_call race_b.bin)" >"$W/race2.out" 2>&1 &
race2=$!
vs_on_exit "kill $race2 2>/dev/null; wait $race2 2>/dev/null; :"
race2_waits() {
	[[ "$(sql "SELECT wait_event_type FROM pg_stat_activity WHERE application_name = 'race2'")" == Lock ]]
}
vs_check "chunked race: the second waits for the first" vs_poll 10 race2_waits
vs_held_commit
vs_check_eq "chunked race: the first committed" 0 "$?"
wait "$race2"
vs_check_eq "chunked race: the second succeeded too (no 23505)" "0 1" \
	"$? $(cat "$W/race2.out")"
vs_check_eq "chunked race: both paths have the content" "$rh $rh" \
	"$(sql "SELECT string_agg(content_hash, ' ') FROM vsync_manifest('$PID') WHERE path LIKE 'race_%'")"
vs_check_eq "chunked race: one chunk list" "0|$rh|10" \
	"$(sql "SELECT * FROM vsync_chunk_list('$PID', '$rh')")"

# ---------------------------------------------------------------- other ops

wb mkdir newdir
vs_check_eq "mkdir: exit" 0 "$RC"
vs_check "mkdir: a dir" grep -q '^dir ' <<<"$(ctl ls wbtest newdir 2>&1; ctl ls wbtest | grep newdir)"
wb mkdir newdir
vs_check_eq "mkdir of an existing dir: done" 0 "$RC"
wb mkdir README.md
vs_check_eq "mkdir over a file: refused" "1 error=-17 (EEXIST) pending=0" "$RC $OUT"
wb delete src/b.js
vs_check_eq "delete: exit" 0 "$RC"
ctl cat wbtest src/b.js >/dev/null 2>&1
vs_check_eq "delete: gone (cat exit 3)" 3 "$?"
wb delete src/b.js
vs_check_eq "delete of a missing path: done" 0 "$RC"
wb rename src/c.js lib/c.js
vs_check_eq "rename: exit" 0 "$RC"
vs_check_eq "rename: at the new path" "c content" "$(ctl cat wbtest lib/c.js)"
ctl cat wbtest src/c.js >/dev/null 2>&1
vs_check_eq "rename: not at the old path" 3 "$?"
wb rename src/nothere.js lib/x.js
vs_check_eq "rename of a missing source: refused" "1 error=-2 (ENOENT) pending=0" \
	"$RC $OUT"
wb write $'bad\nname.js' "$W/d"
vs_check_eq "a path PostgreSQL refuses: dropped" "1 error=-22 (EINVAL) pending=0" \
	"$RC $OUT"
vs_check_eq "refusals leave the journal empty" 0 "$(journal_count)"
wb symlink link.js src/a.js
vs_check_eq "symlink: exit" 0 "$RC"
vs_check "symlink: listed as a symlink" grep -q 'symlink.*link.js' <<<"$(ctl ls wbtest)"

# ---------------------------------------------------------------- poison entries

# Entries PostgreSQL refuses for good, each followed by good ones: each is
# dropped with its reason, and the ones behind it are committed. The
# refusals come from what the C code cannot foresee: an index on the bare
# path (as the schema had before 004_path_index.sql) refuses a 3 KB path
# with SQLSTATE 54000, a CHECK constraint refuses a name with 23514.
sql "CREATE INDEX poison_path ON project_files (project_id, file_path)"
sql "ALTER TABLE project_files ADD CONSTRAINT poison_name
	CHECK (file_path NOT LIKE '%poison%') NOT VALID"
# hex names: random, so PostgreSQL cannot compress the index entry
hexname() { { echo "a$1" | sha512sum; echo "b$1" | sha512sum; } | tr -dc 0-9a-f | head -c 243; }
long=p
for ((i = 0; i < 12; i++)); do long+=/$(hexname "$i"); done
echo "g1" >"$W/g1"
echo "g2" >"$W/g2"
echo "poison" >"$W/pz"
for args in "mkdir $long" "write src/g1.js $W/g1" "write src/poison.js $W/pz" \
	"mkdir gdir" "write gdir/g2.js $W/g2"; do
	# shellcheck disable=SC2086 # words on purpose
	wb append-only $args
	vs_check_eq "poison: journaled: ${args:0:40}" 0 "$RC"
done
t0=$(vs_now_ms)
wb replay
t1=$(vs_now_ms)
vs_check_eq "poison: replay empties the journal" "0 pending=0" "$RC $(tail -n 1 <<<"$OUT")"
vs_check "poison: the long mkdir refused (error -7, E2BIG)" \
	grep -q "op=mkdir path=p/.* error=-7\$" <<<"$OUT"
vs_check "poison: the CHECK refusal reported (EINVAL)" \
	grep -q "op=write path=src/poison.js .* error=-22\$" <<<"$OUT"
vs_check_eq "poison: the good entries behind them committed" "g1 g2" \
	"$(ctl cat wbtest src/g1.js) $(ctl cat wbtest gdir/g2.js)"
vs_check_eq "poison: nothing of the refused entries in PostgreSQL" 0 \
	"$(sql "SELECT count(*) FROM project_files WHERE file_path LIKE 'p/%' OR file_path LIKE '%poison%'")"
vs_check "poison: no backoff, no retry (replay took $((t1 - t0)) ms)" \
	test $((t1 - t0)) -lt 5000
vs_check "poison: logged with the reason and SQLSTATE 54000" grep -q \
	"mkdir refused for good: .*SQLSTATE 54000); dropped, the entries after it go on: 'p/" \
	"$W/wb.log"
vs_check "poison: logged with SQLSTATE 23514" grep -q \
	"write refused for good: .*SQLSTATE 23514); dropped, the entries after it go on: 'src/poison.js'" \
	"$W/wb.log"
sql "DROP INDEX poison_path"
sql "ALTER TABLE project_files DROP CONSTRAINT poison_name"

# Without the poison, the same 12 levels of 243-byte names (a 2,929-byte
# path) are stored: every path the mount accepts is one PostgreSQL takes.
wb mkdir "$long"
vs_check_eq "long path: mkdir committed" 0 "$RC"
wb write "$long/f.txt" "$W/g1"
vs_check_eq "long path: a file under it committed" 0 "$RC"
vs_check_eq "long path: read back" "g1" "$(ctl cat wbtest "$long/f.txt")"

# ---------------------------------------------------------------- full cache
# A stale save is merged, and the merged bytes are stored in the cache
# before they are committed. On a full cache volume (a tmpfs of its own,
# filled) that store fails with ENOSPC: a failure of this machine, not a
# refusal by PostgreSQL, so the entry stays journaled and is committed,
# merged, once room returns (before: dropped as "refused for good", the
# local edit lost).
VOLW=$(mktemp -d "${TMPDIR:-/tmp}/vsync-wbfull.XXXXXX")
if mount -t tmpfs -o size=2m,mode=0700 vsync-wbfull "$VOLW" 2>/dev/null; then
	vs_on_exit sh -c 'umount -l "$1" 2>/dev/null; rmdir "$1"' _ "$VOLW"
	wb_full() { CACHE=$VOLW/cache wb "$@"; }
	lines 10 >"$W/f1"
	wb_full write src/full.js "$W/f1"
	v1=$(field version)
	vs_check_eq "full cache: v1 committed" "0 1" "$RC $v1"
	sed 's/^line 2$/line 2 theirs/' "$W/f1" >"$W/f2"
	vs_check "full cache: put v2 (another writer)" \
		ctl -q put wbtest src/full.js "$W/f2" --base "$v1"
	sed 's/^line 9$/line 9 ours/' "$W/f1" >"$W/f3"
	wb_full append-only write src/full.js "$W/f3" "$v1"
	vs_check_eq "full cache: a save based on v1 journaled" 0 "$RC"
	dd if=/dev/zero of="$VOLW/filler" bs=4k status=none 2>/dev/null
	vs_check "full cache: the volume is full" \
		sh -c '! dd if=/dev/zero of="$1/filler2" bs=4k count=1 status=none 2>/dev/null' _ "$VOLW"
	rm -f "$VOLW/filler2"
	WB_WAIT_MS=2000 wb_full replay
	vs_check_eq "full cache: the merge waits (exit 5, pending=1)" "5 pending=1" \
		"$RC $(tail -n 1 <<<"$OUT")"
	vs_check "full cache: kept journaled, logged as this machine's failure" grep -q \
		"cannot commit write now: No space left on device.*'src/full.js'" "$W/wb.log"
	vs_check "full cache: not reported as refused" \
		sh -c '! grep -q "refused for good.*src/full.js" "$1"' _ "$W/wb.log"
	vs_check_eq "full cache: PostgreSQL still has v2" "$(cat "$W/f2")" \
		"$(ctl cat wbtest src/full.js)"
	rm -f "$VOLW/filler"
	wb_full replay
	vs_check_eq "full cache: room again, replay commits it" "0 pending=0" \
		"$RC $(tail -n 1 <<<"$OUT")"
	vs_check "full cache: committed as a merge" \
		grep -q "op=write path=src/full.js .* merged=1 conflict=0 error=0\$" <<<"$OUT"
	sed 's/^line 9$/line 9 ours/' "$W/f2" >"$W/fm"
	vs_check_eq "full cache: PostgreSQL has both edits" "$(cat "$W/fm")" \
		"$(ctl cat wbtest src/full.js)"
	h=$(sha "$W/fm")
	vs_check "full cache: the merged bytes in the cache" \
		cmp -s "$W/fm" "$VOLW/cache/objects/${h:0:2}/$h"
else
	rmdir "$VOLW"
	vs_log "SKIP full cache checks: cannot mount a tmpfs (needs CAP_SYS_ADMIN)"
fi

if ((VS_FAILED > 0)); then
	echo "--- wb_driver log (last 40 lines):"
	tail -n 40 "$W/wb.log"
fi
vs_summary
