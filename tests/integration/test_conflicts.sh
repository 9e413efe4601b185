#!/usr/bin/env bash
#
# test_conflicts.sh - recorded conflicts (sql/functions.sql) against a
# throwaway PostgreSQL and Redis (no FUSE needed).
#
# Covers: `vsyncctl init` applies 004. vsync_write_file_over() commits a
# local edit based on v1 over the concurrent v2: a new version 3 (an
# "update"), operation_data.conflict = {"based_on": 1, "overwrote": 2},
# vsync_conflicts() lists it (also per path; an unknown path gives
# nothing, an invalid one 22023), both sides stay in history (vsyncctl
# log shows v1..v3, cat --version 2 is the overwritten edit). A retry with
# the same operation id returns the first result and changes nothing. A
# stale p_current_version, or a current version that was deleted since,
# is P0004 and commits nothing; impossible versions are 22023. The NOTIFY
# payload is {"project_id", "seq"} only (no path, no conflict: any role
# may LISTEN).
# vsync_write_file keeps its behaviour (P0004 on a stale base, no conflict
# recorded). vsync_change_feed() keeps its columns and adds conflict (2 on
# that change, NULL elsewhere). vsync-relay --once publishes the stream
# field conflict=2 on that entry only and the pub/sub event
# "conflict":2 (seq still the last key). `vsyncctl init --reapply` keeps
# all of it.
#
# Needs: $VSYNC_BUILD_DIR/agent/{vsyncctl,vsync-relay} (ctest sets it).
set -u

# shellcheck source=tests/lib/servers.sh
. "$(dirname "$0")/../lib/servers.sh"

CTL=$VSYNC_BUILD_DIR/agent/vsyncctl
RELAY=$VSYNC_BUILD_DIR/agent/vsync-relay
for b in "$CTL" "$RELAY"; do
	if [[ ! -x "$b" ]]; then
		echo "test_conflicts: $b is missing (build first)" >&2
		exit 1
	fi
done

vs_deadline 240
vs_servers_start all || exit 1
PSQL=$VS_PG_BIN/psql
W=$VS_SERVERS_DIR/work
mkdir -p "$W"
export VS_LOG_DIR=$VS_SERVERS_DIR

ctl() { "$CTL" -q "$@"; }
# sql QUERY [psql -v assignments...]: one row per line, '|'-separated
sql() {
	local q=$1
	shift
	printf '%s\n' "$q" | "$PSQL" -X -At -v ON_ERROR_STOP=1 "$@" "$VSYNC_PG_URL"
}
# sqlstate QUERY [psql -v ...]: the SQLSTATE the query fails with, or "ok"
sqlstate() {
	local q=$1 out
	shift
	if out=$(printf '\\set VERBOSITY sqlstate\n%s\n' "$q" |
		"$PSQL" -X -At -v ON_ERROR_STOP=1 "$@" "$VSYNC_PG_URL" 2>&1); then
		echo ok
	else
		printf '%s\n' "$out" | sed -n 's/^ERROR: *\([0-9A-Z]\{5\}\).*/\1/p' | head -n 1
	fi
}
rcli() { vs_redis_cli "$@"; }
# Fields of stream entry <seq>-0 as "name=value" words, in order.
entry() {
	rcli XRANGE "events:{$P}" "$1-0" "$1-0" | tail -n +2 | paste -sd' ' |
		awk '{ o = ""; for (i = 1; i < NF; i += 2) o = o (o ? " " : "") $i "=" $(i + 1); print o }'
}

OVER="SELECT seq || ' ' || version || ' ' || content_hash FROM vsync_write_file_over(:'p', 'src/a.js', convert_to(:'c', 'UTF8'), NULL, :base, :cur, :'op', 'container:c1')"
OP1=11111111-1111-4111-8111-111111111111

# ---------------------------------------------------------------- setup

vs_check "vsyncctl init" ctl init
vs_check_eq "vsync_write_file_over and vsync_conflicts exist" 2 \
	"$(sql "SELECT count(*) FROM pg_proc WHERE proname IN ('vsync_write_file_over', 'vsync_conflicts')")"
P=$(sql "SELECT vsync_create_project('conf')")
printf 'line 1\nline 2\nline 3\n' >"$W/v1"
vs_check "v1 by alice (vsyncctl put)" ctl --author alice put conf src/a.js "$W/v1"
vs_check "v2 by bob (vsync_write_file, base 1)" \
	sql "SELECT 1 FROM vsync_write_file(:'p', 'src/a.js', convert_to(E'line 1\nbob 2\nline 3\n', 'UTF8'), NULL, 1, NULL, 'bob')" -v "p=$P"

# ---------------------------------------------------------------- the conflict

res=$(sql "$OVER" -v "p=$P" -v base=1 -v cur=2 -v "op=$OP1" -v "c=line 1
container 2
line 3
")
want_hash=$(printf 'line 1\ncontainer 2\nline 3\n' | sha256sum | cut -d' ' -f1)
vs_check_eq "vsync_write_file_over(base 1, current 2) commits v3" "3 3 $want_hash" "$res"
vs_check_eq "an update" update \
	"$(sql "SELECT operation_type FROM file_operations WHERE project_id = :'p' AND seq = 3" -v "p=$P")"
vs_check_eq "operation_data records the conflict" '{"based_on": 1, "overwrote": 2}' \
	"$(sql "SELECT operation_data->'conflict' FROM file_operations WHERE operation_id = :'op'" -v "op=$OP1")"
vs_check_eq "operation_data keeps the usual keys" "src/a.js 3 $want_hash file 420 26" \
	"$(sql "SELECT concat_ws(' ', d->>'path', d->>'version', d->>'checksum', d->>'kind', d->>'mode', d->>'size') FROM (SELECT operation_data d FROM file_operations WHERE operation_id = :'op') s" -v "op=$OP1")"
vs_check_eq "vsync_conflicts lists it" "3|src/a.js|1|2|3|container:c1" \
	"$(sql "SELECT seq, path, based_on, overwrote, version, author FROM vsync_conflicts(:'p')" -v "p=$P")"
vs_check_eq "vsync_conflicts(path)" "3|src/a.js|1|2|3|container:c1" \
	"$(sql "SELECT seq, path, based_on, overwrote, version, author FROM vsync_conflicts(:'p', 'src/a.js')" -v "p=$P")"
vs_check_eq "vsync_conflicts(other path) is empty" "" \
	"$(sql "SELECT seq FROM vsync_conflicts(:'p', 'src/b.js')" -v "p=$P")"
vs_check_eq "vsync_conflicts(invalid path) is 22023" 22023 \
	"$(sqlstate "SELECT * FROM vsync_conflicts(:'p', '../x')" -v "p=$P")"
vs_check_eq "vsync_conflicts has a created_at" t \
	"$(sql "SELECT created_at IS NOT NULL FROM vsync_conflicts(:'p')" -v "p=$P")"

# ---------------------------------------------------------------- history

vs_check_eq "vsyncctl log: both sides stay in history" "v1 alice|v2 bob|v3 container:c1" \
	"$(ctl log conf src/a.js | awk '{ print $1, $2 }' | paste -sd'|')"
vs_check_eq "the overwritten version is readable" "line 1|bob 2|line 3" \
	"$(ctl cat --version 2 conf src/a.js | paste -sd'|')"
vs_check_eq "the local side is current" "line 1|container 2|line 3" \
	"$(ctl cat conf src/a.js | paste -sd'|')"

# ---------------------------------------------------------------- retry

seq_before=$(sql "SELECT change_seq FROM projects WHERE id = :'p'" -v "p=$P")
res=$(sql "$OVER" -v "p=$P" -v base=1 -v cur=2 -v "op=$OP1" -v "c=something else")
vs_check_eq "a retry with the same op id returns the first result" "3 3 $want_hash" "$res"
vs_check_eq "... and commits nothing" "$seq_before" \
	"$(sql "SELECT change_seq FROM projects WHERE id = :'p'" -v "p=$P")"
vs_check_eq "... nor records a second conflict" 1 \
	"$(sql "SELECT count(*) FROM vsync_conflicts(:'p')" -v "p=$P")"
vs_check_eq "... and the content is the first call's" "line 1|container 2|line 3" \
	"$(ctl cat conf src/a.js | paste -sd'|')"

# ---------------------------------------------------------------- refusals

vs_check_eq "a stale p_current_version (2, now 3) is P0004" P0004 \
	"$(sqlstate "$OVER" -v "p=$P" -v base=1 -v cur=2 -v op=22222222-2222-4222-8222-222222222222 -v c=x)"
vs_check_eq "... and commits nothing" "$seq_before" \
	"$(sql "SELECT change_seq FROM projects WHERE id = :'p'" -v "p=$P")"
vs_check_eq "p_current_version 0 is 22023" 22023 \
	"$(sqlstate "$OVER" -v "p=$P" -v base=0 -v cur=0 -v op=22222222-2222-4222-8222-222222222223 -v c=x)"
vs_check_eq "p_base_version = p_current_version is 22023" 22023 \
	"$(sqlstate "$OVER" -v "p=$P" -v base=3 -v cur=3 -v op=22222222-2222-4222-8222-222222222224 -v c=x)"
vs_check_eq "p_base_version NULL is 22023" 22023 \
	"$(sqlstate "$OVER" -v "p=$P" -v base=NULL -v cur=3 -v op=22222222-2222-4222-8222-222222222225 -v c=x)"
vs_check_eq "an unknown project is P0002" P0002 \
	"$(sqlstate "$OVER" -v p=00000000-0000-4000-8000-000000000000 -v base=1 -v cur=3 -v op=22222222-2222-4222-8222-222222222226 -v c=x)"
vs_check_eq "nothing was committed by the refusals" "$seq_before" \
	"$(sql "SELECT change_seq FROM projects WHERE id = :'p'" -v "p=$P")"

vs_check "a file deleted since (rm)" ctl put conf src/gone.js "$W/v1"
vs_check "... then rm" ctl rm conf src/gone.js
vs_check_eq "overwriting the deleted version is P0004" P0004 \
	"$(sqlstate "SELECT * FROM vsync_write_file_over(:'p', 'src/gone.js', convert_to('x', 'UTF8'), NULL, 0, 1, NULL, 'c')" -v "p=$P")"

# vsync_write_file is unchanged
vs_check_eq "vsync_write_file with a stale base is still P0004" P0004 \
	"$(sqlstate "SELECT * FROM vsync_write_file(:'p', 'src/a.js', convert_to('x', 'UTF8'), NULL, 2, NULL, 'c')" -v "p=$P")"
vs_check_eq "vsync_write_file base 0 on an existing file is still P0004" P0004 \
	"$(sqlstate "SELECT * FROM vsync_write_file(:'p', 'src/a.js', convert_to('x', 'UTF8'), NULL, 0, NULL, 'c')" -v "p=$P")"
vs_check_eq "vsync_write_file records no conflict" 1 \
	"$(sql "SELECT count(*) FROM file_operations WHERE project_id = :'p' AND operation_data ? 'conflict'" -v "p=$P")"

# ---------------------------------------------------------------- NOTIFY

notify=$(printf '%s\n' "LISTEN file_changes;" \
	"SELECT 1 FROM vsync_write_file(:'p', 'src/b.js', convert_to('b', 'UTF8'), NULL, 0, NULL, 'bob');" \
	"SELECT 1 FROM vsync_write_file(:'p', 'src/b.js', convert_to('b2', 'UTF8'), NULL, 1, NULL, 'bob');" \
	"SELECT 1 FROM vsync_write_file_over(:'p', 'src/b.js', convert_to('b3', 'UTF8'), NULL, 0, 2, NULL, 'container:c1');" \
	"SELECT 1;" | "$PSQL" -X -At -v ON_ERROR_STOP=1 -v "p=$P" "$VSYNC_PG_URL" 2>&1)
vs_check_eq "three NOTIFYs, each {project_id, seq} only, nothing else" 3 \
	"$(grep -cE "^Asynchronous notification \"file_changes\" with payload \"\\{\"project_id\" : \"$P\", \"seq\" : [0-9]+\\}\"" <<<"$notify")"
vs_check "no path in a NOTIFY payload" bash -c '! grep -q "src/b.js" <<<"$1"' _ "$notify"
B_SEQ=$(sql "SELECT seq FROM vsync_conflicts(:'p', 'src/b.js')" -v "p=$P")
vs_check_eq "vsync_conflicts(src/b.js): based on 0 (created on both sides)" "0|2|3" \
	"$(sql "SELECT based_on, overwrote, version FROM vsync_conflicts(:'p', 'src/b.js')" -v "p=$P")"

# ---------------------------------------------------------------- feed

vs_check_eq "vsync_change_feed's columns" \
	"TABLE(seq bigint, op text, path text, old_path text, kind text, mode integer, size bigint, hash text, version integer, mtime_ns bigint, target text, author text, conflict integer)" \
	"$(sql "SELECT pg_get_function_result('vsync_change_feed(uuid, bigint, int)'::regprocedure)")"
N=$(sql "SELECT change_seq FROM projects WHERE id = :'p'" -v "p=$P")
vs_check_eq "feed: conflict on the two conflicts only" "3:2 $B_SEQ:2" \
	"$(sql "SELECT string_agg(seq || ':' || conflict, ' ' ORDER BY seq) FROM vsync_change_feed(:'p', 0, NULL) WHERE conflict IS NOT NULL" -v "p=$P")"
vs_check_eq "feed: one row per change" "$N" \
	"$(sql "SELECT count(*) FROM vsync_change_feed(:'p', 0, NULL)" -v "p=$P")"
vs_check_eq "feed row of the conflict" "update|src/a.js|file|420|3|container:c1|2" \
	"$(sql "SELECT op, path, kind, mode, version, author, conflict FROM vsync_change_feed(:'p', 2, 1)" -v "p=$P")"
vs_check_eq "vsync_changes shows it in operation_data" '{"based_on": 1, "overwrote": 2}' \
	"$(sql "SELECT operation_data->'conflict' FROM vsync_changes(:'p', 2, 1)" -v "p=$P")"

# ---------------------------------------------------------------- relay

SUB_OUT=$W/sub.out
timeout 60 redis-cli -h 127.0.0.1 -p "$VS_REDIS_PORT" SUBSCRIBE "project.$P.files" >"$SUB_OUT" 2>&1 &
SUB=$!
vs_on_exit "kill $SUB 2>/dev/null; wait $SUB 2>/dev/null; true"
vs_poll 10 grep -q "project.$P.files" "$SUB_OUT" || vs_log "subscriber not ready"
vs_check "vsync-relay --once" "$RELAY" --pg "$VSYNC_PG_URL" --redis "$VSYNC_REDIS_URL" --once
vs_check_eq "the stream has every change" "$N" "$(rcli XLEN "events:{$P}")"
e3=$(entry 3)
# (small content may follow, inline: the data field)
vs_check_eq "stream entry 3: conflict=2, right after author" "author=container:c1 conflict=2" \
	"$(printf '%s' "$e3" | grep -o 'author=[^ ]* conflict=[0-9]*')"
vs_check_eq "stream entry 2 has no conflict field" "" \
	"$(entry 2 | grep -o 'conflict=[0-9]*')"
vs_check_eq "stream entry $B_SEQ: conflict=2" "conflict=2" \
	"$(entry "$B_SEQ" | grep -o 'conflict=[0-9]*')"
if vs_poll 10 grep -q '"seq":3}' "$SUB_OUT"; then
	ev=$(grep '"seq":3}' "$SUB_OUT" | head -n 1)
	case $ev in
	'{"type":"file.updated","project_id":"'"$P"'","path":"src/a.js"'*'"author":"container:c1","conflict":2,"timestamp":"'*'","seq":3}')
		vs_pass "pub/sub event 3 has \"conflict\":2" ;;
	*) vs_fail "pub/sub event 3 has \"conflict\":2: saw '$ev'" ;;
	esac
else
	vs_fail "pub/sub: no event 3: $(tail -n 3 "$SUB_OUT")"
fi
if vs_poll 10 grep -q '"seq":2}' "$SUB_OUT"; then
	vs_check_eq "pub/sub event 2 has no conflict" 0 "$(grep '"seq":2}' "$SUB_OUT" | grep -c conflict)"
else
	vs_fail "pub/sub: no event 2"
fi
vs_check_eq "the relay skipped nothing" 0 "$(grep -c skipping "$VS_SERVERS_DIR"/relay.*.log 2>/dev/null | awk -F: '{ s += $NF } END { print s + 0 }')"

# ---------------------------------------------------------------- reapply

vs_check "vsyncctl init --reapply" ctl init --reapply
vs_check_eq "after --reapply the feed still has conflict" "3:2 $B_SEQ:2" \
	"$(sql "SELECT string_agg(seq || ':' || conflict, ' ' ORDER BY seq) FROM vsync_change_feed(:'p', 0, NULL) WHERE conflict IS NOT NULL" -v "p=$P")"
notify=$(printf '%s\n' "LISTEN file_changes;" \
	"SELECT 1 FROM vsync_write_file_over(:'p', 'src/b.js', convert_to('b4', 'UTF8'), NULL, 2, 3, NULL, 'container:c1');" \
	"SELECT 1;" | "$PSQL" -X -At -v ON_ERROR_STOP=1 -v "p=$P" "$VSYNC_PG_URL" 2>&1)
vs_check "after --reapply a change is still announced" grep -q "\"seq\" : " <<<"$notify"

vs_summary
