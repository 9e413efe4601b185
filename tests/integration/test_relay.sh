#!/usr/bin/env bash
#
# test_relay.sh - vsync-relay against a throwaway PostgreSQL and Redis
# (no FUSE needed).
#
# Covers: --once publishes every change of an imported tree: XLEN equals
# the number of changes and the ids are exactly 1-0..N-0; the fields of a
# create; manifest:{id} equals vsync_manifest() entry for entry (paths and
# values); blobs are there, raw ('r') or lz4 ('z'), a small one byte for
# byte, with a TTL both when they came with the change feed (16 KiB or
# less, SET by the publish script) and when not. Two relays at once while 200 puts happen, one of them killed with
# SIGKILL half-way and restarted: every seq exactly once, in order, no
# gap, cursor = change_seq. Directory rename and recursive delete: the
# manifest matches the tree again. PUBLISH: a subscriber sees the JSON
# event with its seq. Redis frozen (SIGSTOP) then resumed: the relay logs
# one "unreachable" and one "back" line and catches up. SIGTERM: exit 0.
# Redis losing a project's keys between two changes: the next NOTIFY's
# round (which trusts the cursor the relay remembers) is refused by the
# script, and the relay republishes the project from the cursor in Redis.
# Inline content: the entry of a 4-byte file carries it (data), a 200 KiB
# file's does not.
# Deltas: a one-line edit of a 200 KiB file has delta_base = the previous
# content's hash and a small delta:{P}:<base>:<new> (with a TTL); a new
# file and a small file's edit have no delta_base. Two signing relays,
# one of which puts no deltas, so that their entries' signatures differ:
# neither takes the other's entries for forged ones, and each event is
# published once.
# Junk NOTIFYs from a container's role (malformed, made-up projects, more
# than the relay keeps hints for): at most one full scan more for five
# bursts, and a real change after each still published within 5 s.
# A container's learned list of 300,000 lines for a project of 3000
# files: the relay's bundle build of it holds up no other project's change
# for more than 3 s.
#
# Needs: $VSYNC_BUILD_DIR/agent/{vsyncctl,vsync-relay} (ctest sets it).
set -u

# shellcheck source=tests/lib/servers.sh
. "$(dirname "$0")/../lib/servers.sh"

CTL=$VSYNC_BUILD_DIR/agent/vsyncctl
RELAY=$VSYNC_BUILD_DIR/agent/vsync-relay
for b in "$CTL" "$RELAY"; do
	if [[ ! -x "$b" ]]; then
		echo "test_relay: $b is missing (build first)" >&2
		exit 1
	fi
done

vs_deadline 450
vs_servers_start all || exit 1
PSQL=$VS_PG_BIN/psql
W=$VS_SERVERS_DIR/work
mkdir -p "$W"
export VS_LOG_DIR=$VS_SERVERS_DIR

ctl() { "$CTL" -q "$@"; }
sql() { "$PSQL" -X -At -v ON_ERROR_STOP=1 "$VSYNC_PG_URL" -c "$1"; }
rcli() { vs_redis_cli "$@"; }

# The ids of events:{P}, space-separated.
stream_ids() {
	rcli EVAL "local o = {} for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do o[#o + 1] = e[1] end return table.concat(o, ' ')" 1 "events:{$1}"
}
# "1-0 2-0 ... N-0"
expected_ids() {
	local i out=
	for ((i = 1; i <= $1; i++)); do out+="${out:+ }$i-0"; done
	printf '%s' "$out"
}
# manifest:{P} as sorted "path<TAB>value" lines.
# (a signing relay's values start with "sig1:<signature> ": left out)
redis_manifest() {
	rcli EVAL "local r = redis.call('HGETALL', KEYS[1]) local o = {} for i = 1, #r, 2 do o[#o + 1] = r[i] .. '\t' .. r[i + 1] end return table.concat(o, '\n')" 1 "manifest:{$1}" |
		sed 's/\tsig1:[^ ]* /\t/' | LC_ALL=C sort
}
# vsync_manifest() in the same format (docs/protocol.md, "Redis").
pg_manifest() {
	sql "SELECT path || E'\t' || kind || ' ' ||
		coalesce(nullif(ltrim(((mode >> 9) & 7)::text || ((mode >> 6) & 7)::text ||
		((mode >> 3) & 7)::text || (mode & 7)::text, '0'), ''), '0') || ' ' ||
		size || ' ' || version || ' ' || mtime_ns || ' ' ||
		coalesce(content_hash, '-') || coalesce(' ' || link_target, '')
	     FROM vsync_manifest('$1')" | LC_ALL=C sort
}
project_seq() { sql "SELECT change_seq FROM projects WHERE id = '$1'"; }
cursor() { rcli GET "relay:{$1}:cursor"; }
caught_up() { [[ "$(cursor "$1")" == "$(project_seq "$1")" ]]; }

# ---------------------------------------------------------------- --once

vs_check "init" ctl init
SRC=$W/src
mkdir -p "$SRC/src/lib/deep" "$SRC/public" "$SRC/empty"
printf 'console.log("hi");\n' >"$SRC/src/main.js"
printf 'export const x = 1;\n' >"$SRC/src/lib/x.js"
printf 'deep\n' >"$SRC/src/lib/deep/d.txt"
for i in $(seq 1 400); do echo "line $i of a compressible file"; done >"$SRC/src/big.txt"
head -c 3000 /dev/urandom >"$SRC/public/noise.bin"
# over 16 KiB: not read with the change feed, put by EXPIRE, fetch and SET
head -c 20000 /dev/urandom >"$SRC/public/large.bin"
ln -s "src/main.js" "$SRC/link to main"
vs_check "import" ctl import demo "$SRC"
P=$(sql "SELECT id FROM projects WHERE name = 'demo'")
N=$(project_seq "$P")

vs_check "relay --once" "$RELAY" --once
vs_check_eq "XLEN = number of changes ($N)" "$N" "$(rcli XLEN "events:{$P}")"
vs_check_eq "stream ids are 1-0..$N-0" "$(expected_ids "$N")" "$(stream_ids "$P")"
vs_check_eq "cursor = change_seq" "$N" "$(cursor "$P")"

# the create of src/main.js
seq_main=$(sql "SELECT seq FROM file_operations WHERE project_id = '$P' AND path = 'src/main.js'")
entry=$(rcli XRANGE "events:{$P}" "$seq_main-0" "$seq_main-0" | tail -n +2 | paste -sd' ')
hash_main=$(sha256sum <"$SRC/src/main.js" | cut -d' ' -f1)
size_main=$(stat -c %s "$SRC/src/main.js")
for want in "seq $seq_main" "op create" "path src/main.js" "kind file" \
	"mode 644" "size $size_main" "hash $hash_main" "version 1" "author vsyncctl"; do
	case " $entry " in
	*" $want "*) vs_pass "create event has '$want'" ;;
	*) vs_fail "create event has '$want': saw '$entry'" ;;
	esac
done
case " $entry " in
*" mtime_ns "[0-9]*) vs_pass "create event has mtime_ns" ;;
*) vs_fail "create event has mtime_ns: saw '$entry'" ;;
esac

vs_check_eq "the manifest has the 12 live paths" 12 "$(redis_manifest "$P" | wc -l)"
vs_check_eq "manifest:{id} = vsync_manifest()" "$(pg_manifest "$P")" "$(redis_manifest "$P")"
vs_check_eq "a symlink's entry ends with its target" 1 \
	"$(redis_manifest "$P" | grep -Ec $'^link to main\tsymlink 777 11 1 [0-9]+ [0-9a-f]{64} src/main.js$')"
vs_check_eq "manifest paths = vsyncctl ls" \
	"$(ctl ls demo | awk '{ $1 = $2 = $3 = $4 = ""; sub(/^ +/, ""); sub(/ -> .*/, ""); print }' | LC_ALL=C sort)" \
	"$(rcli HKEYS "manifest:{$P}" | LC_ALL=C sort)"

missing=0
for h in $(sql "SELECT content_hash FROM vsync_manifest('$P') WHERE content_hash IS NOT NULL"); do
	m=$(rcli GET "blob:{$P}:$h" | head -c 1)
	[[ $m == r || $m == z ]] || missing=$((missing + 1))
done
vs_check_eq "every blob is in Redis, 'r' or 'z'" 0 "$missing"
vs_check_eq "a small blob is 'r' + its bytes" "r$(cat "$SRC/src/main.js")" \
	"$(rcli GET "blob:{$P}:$hash_main")"
hash_big=$(sha256sum <"$SRC/src/big.txt" | cut -d' ' -f1)
vs_check_eq "a compressible blob is lz4 ('z')" z \
	"$(rcli GET "blob:{$P}:$hash_big" | head -c 1)"
ttl=$(rcli TTL "blob:{$P}:$hash_main")
if ((ttl > 0 && ttl <= 86400)); then vs_pass "blobs have a TTL ($ttl s)"; else vs_fail "blob TTL: saw $ttl"; fi
hash_large=$(sha256sum <"$SRC/public/large.bin" | cut -d' ' -f1)
ttl=$(rcli TTL "blob:{$P}:$hash_large")
if ((ttl > 0 && ttl <= 86400)); then vs_pass "a blob over 16 KiB has a TTL too ($ttl s)"; else vs_fail "TTL of the blob over 16 KiB: saw $ttl"; fi

vs_check "a second --once publishes nothing new" "$RELAY" --once
vs_check_eq "still $N entries" "$N" "$(rcli XLEN "events:{$P}")"

# ---------------------------------------------------------------- deltas
#
# "small edits travel small": an edit of a file of 64 KiB or more carries
# delta_base (the previous content's hash), and delta:{P}:<base>:<new>
# holds a librsync delta much smaller than the file.

# the field of entry $2 of project $1 named $3 ("" if absent)
entry_field() {
	rcli XRANGE "events:{$1}" "$2-0" "$2-0" | tail -n +2 | paste -sd' ' |
		awk -v f="$3" '{ for (i = 1; i < NF; i += 2) if ($i == f) print $(i + 1) }'
}
for i in $(seq 1 5000); do printf 'export const value%d = %d; // a line of a large file\n' "$i" "$((i * 7))"; done |
	head -c 204800 >"$W/large.js"
ctl put demo src/large.js "$W/large.js" || vs_fail "put large.js"
vs_check "relay --once (large.js v1)" "$RELAY" --once
seq1=$(project_seq "$P")
vs_check_eq "a new file's entry has no delta_base" "" "$(entry_field "$P" "$seq1" delta_base)"
sed 's/^export const value1500 = .*/export const value1500 = 42; \/\/ edited/' "$W/large.js" >"$W/large2.js"
ctl put demo src/large.js "$W/large2.js" || vs_fail "put large.js v2"
vs_check "relay --once (large.js v2)" "$RELAY" --once
seq2=$(project_seq "$P")
base=$(sha256sum <"$W/large.js" | cut -d' ' -f1)
new=$(sha256sum <"$W/large2.js" | cut -d' ' -f1)
vs_check_eq "the edit's entry has delta_base = sha256 of v1" "$base" \
	"$(entry_field "$P" "$seq2" delta_base)"
vs_check_eq "delta:{P}:<base>:<new> exists" 1 "$(rcli EXISTS "delta:{$P}:$base:$new")"
dlen=$(rcli STRLEN "delta:{$P}:$base:$new")
if ((dlen > 0 && dlen * 20 < 204800)); then
	vs_pass "the delta is much smaller than the file ($dlen bytes)"
else
	vs_fail "delta size: $dlen bytes for 204800"
fi
ttl=$(rcli TTL "delta:{$P}:$base:$new")
if ((ttl > 0 && ttl <= 86400)); then vs_pass "deltas have a TTL ($ttl s)"; else vs_fail "delta TTL: saw $ttl"; fi
vs_check_eq "the full blob is there too" 1 "$(rcli EXISTS "blob:{$P}:$new")"
printf 'small\n' >"$W/small.txt"
ctl put demo src/small.txt "$W/small.txt" && printf 'small 2\n' >"$W/small.txt" &&
	ctl put demo src/small.txt "$W/small.txt" || vs_fail "put small.txt"
vs_check "relay --once (small.txt)" "$RELAY" --once
vs_check_eq "a small file's edit has no delta_base" "" \
	"$(entry_field "$P" "$(project_seq "$P")" delta_base)"
# content up to 1 KiB travels in the entry (field data); larger does not
printf 'tiny' >"$W/tiny.txt"
ctl put demo src/tiny.txt "$W/tiny.txt" || vs_fail "put tiny.txt"
vs_check "relay --once (tiny.txt)" "$RELAY" --once
vs_check_eq "a small file's entry carries its content (data)" "tiny" \
	"$(entry_field "$P" "$(project_seq "$P")" data)"
vs_check_eq "a large file's entry does not" "" "$(entry_field "$P" "$seq2" data)"
N=$(project_seq "$P")
vs_check_eq "cursor = change_seq after the deltas" "$N" "$(cursor "$P")"

# ---------------------------------------------------------------- two relays, SIGKILL

vs_relay_start --poll-interval 200 --timeout 2000
R1=$VS_RELAY_PID
vs_relay_start --poll-interval 200 --timeout 2000
R2=$VS_RELAY_PID
# subscribe OUT: a subscriber of project.$P.files writing to OUT (ended
# at exit), once it is subscribed
subscribe() {
	local pid
	timeout 240 redis-cli -h 127.0.0.1 -p "$VS_REDIS_PORT" SUBSCRIBE "project.$P.files" >"$1" 2>&1 &
	pid=$!
	vs_on_exit "kill $pid 2>/dev/null; wait $pid 2>/dev/null; true"
	vs_poll 10 grep -q "project.$P.files" "$1" || vs_log "subscriber not ready"
}
SUB_OUT=$W/sub.out
subscribe "$SUB_OUT"

# puts FROM TO: writes FROM..TO (v<i> into src/gen/f<i % 17>.txt), each
# its own committed change, from one psql session (a vsyncctl per write
# cost most of this test's time)
puts() {
	local i
	for ((i = $1; i <= $2; i++)); do
		printf "SELECT 1 FROM vsync_write_file('%s'::uuid, 'src/gen/f%d.txt', convert_to(E'v%d\\n', 'UTF8'), NULL, NULL, NULL, 'test_relay', 'file');\n" \
			"$P" $((i % 17)) "$i"
	done | timeout -k 5 120 "$PSQL" -X -q -At -v ON_ERROR_STOP=1 "$VSYNC_PG_URL" >/dev/null
}
puts 1 100 || vs_fail "puts 1-100"
kill -KILL "$R1" 2>/dev/null
wait "$R1" 2>/dev/null
vs_relay_start --poll-interval 200 --timeout 2000
R1=$VS_RELAY_PID
puts 101 200 || vs_fail "puts 101-200"
N=$(project_seq "$P")
if vs_poll 60 caught_up "$P"; then
	vs_pass "two relays (one killed and restarted) catch up to $N"
else
	vs_fail "caught up: cursor $(cursor "$P"), change_seq $N"
fi
vs_check_eq "XLEN = $N after 200 puts" "$N" "$(rcli XLEN "events:{$P}")"
vs_check_eq "every seq exactly once, in order" "$(expected_ids "$N")" "$(stream_ids "$P")"
vs_check_eq "manifest = vsync_manifest() after the puts" "$(pg_manifest "$P")" "$(redis_manifest "$P")"
if vs_poll 10 grep -q '"seq":'"$N"'}' "$SUB_OUT"; then
	vs_pass "PUBLISH: a subscriber saw the event of seq $N"
else
	vs_fail "PUBLISH: no event with seq $N: $(tail -n 3 "$SUB_OUT")"
fi
ev=$(grep '"seq":'"$N"'}' "$SUB_OUT" | head -n 1)
case $ev in
'{"type":"file.'*'"project_id":"'"$P"'"'*'"path":"src/gen/'*'"checksum":"'*) vs_pass "event is the seed's JSON" ;;
*) vs_fail "event is the seed's JSON: saw '$ev'" ;;
esac
dups=$(grep -c '"seq":'"$N"'}' "$SUB_OUT")
vs_check_eq "the event was published once" 1 "$dups"

# ---------------------------------------------------------------- two signing relays, different deltas

# A relay that puts no delta (here: --blob-max below the file, so it
# neither reads the contents nor puts one) signs its entry without
# delta_base, so its signature differs from that of a relay that puts
# one. The one that comes second must take the other's entry as
# published (the cursor is past it), not as forged: removing entries
# and moving the stream back republishes every change after it, and
# each republished event is a second hot reload in every container.
"$CTL" keygen "$W/relay.key" >/dev/null || vs_fail "keygen"
vs_relay_start --poll-interval 200 --timeout 2000 --sign-key "$W/relay.key"
R5=$VS_RELAY_PID
R5_LOG=$VS_RELAY_LOG
vs_relay_start --poll-interval 200 --timeout 2000 --sign-key "$W/relay.key" --blob-max 65536
R6=$VS_RELAY_PID
R6_LOG=$VS_RELAY_LOG
SUB2_OUT=$W/sub2.out
subscribe "$SUB2_OUT"
deltas_before=$(rcli --scan --pattern "delta:{$P}:*" | wc -l)
# 40 one-line edits of a 200 KiB file, each its own change (a delta each)
for ((i = 1; i <= 40; i++)); do
	printf "SELECT 1 FROM vsync_write_file('%s'::uuid, 'src/large.js', convert_to(repeat(E'export const a = 1; // a line of a large file\\n', 4400) || 'edit %d', 'UTF8'), NULL, NULL, NULL, 'test_relay', 'file');\n" "$P" "$i"
done | timeout -k 5 120 "$PSQL" -X -q -At -v ON_ERROR_STOP=1 "$VSYNC_PG_URL" >/dev/null ||
	vs_fail "40 edits of large.js"
N=$(project_seq "$P")
vs_check "two relays with different deltas catch up to $N" vs_poll 60 caught_up "$P"
vs_check_eq "every seq exactly once, in order" "$(expected_ids "$N")" "$(stream_ids "$P")"
deltas_after=$(rcli --scan --pattern "delta:{$P}:*" | wc -l)
# (whichever relay published each entry, the one with deltas put them)
if ((deltas_after > deltas_before)); then
	vs_pass "one relay put deltas ($((deltas_after - deltas_before)))"
else
	vs_fail "no delta was put: the relays' entries did not differ"
fi
forged=$(cat "$R5_LOG" "$R6_LOG" | grep -c 'forged')
vs_check_eq "neither relay took the other's entries for forged ones" 0 "$forged"
vs_poll 10 grep -q '"seq":'"$N"'}' "$SUB2_OUT" || vs_log "no event of seq $N yet"
dups=$(grep -o '"seq":[0-9]*}' "$SUB2_OUT" | sort | uniq -d | wc -l)
vs_check_eq "each change's event was published once" 0 "$dups"
vs_relay_stop "$R5"
vs_relay_stop "$R6"

# ---------------------------------------------------------------- directories

vs_check "mv a directory" ctl mv demo src/lib src/moved
vs_check "rm -r a directory" ctl rm -r demo src/gen
vs_check "put into a new deep directory" sh -c "echo new | '$CTL' -q put demo a/b/c/new.txt -"
N=$(project_seq "$P")
vs_poll 30 caught_up "$P" || vs_fail "caught up after directory changes"
vs_check_eq "manifest = vsync_manifest() after mv/rm -r/parents" "$(pg_manifest "$P")" "$(redis_manifest "$P")"
vs_check_eq "manifest paths = vsyncctl ls after mv/rm -r" \
	"$(ctl ls demo | awk '{ $1 = $2 = $3 = $4 = ""; sub(/^ +/, ""); sub(/ -> .*/, ""); print }' | LC_ALL=C sort)" \
	"$(rcli HKEYS "manifest:{$P}" | LC_ALL=C sort)"
vs_check_eq "rename event" "rename src/lib src/moved" \
	"$(rcli XRANGE "events:{$P}" "$((N - 2))-0" "$((N - 2))-0" | tail -n +2 | paste -sd' ' | awk '{
		for (i = 1; i < NF; i += 2) f[$i] = $(i + 1)
		print f["op"], f["old_path"], f["path"] }')"

# ---------------------------------------------------------------- Redis frozen

# frozen until both relays (R1, R2: each scans every 200 ms) have given
# up on it (their --timeout, 2 s) and said so
relays_saw_down() { (($(cat "$VS_LOG_DIR"/relay.*.log | grep -c 'redis unreachable') >= 2)); }
kill -STOP "$VS_REDIS_PID"
printf 'while frozen\n' | ctl put demo frozen.txt -
vs_poll 10 relays_saw_down || vs_log "the two relays did not both say Redis was unreachable within 10 s"
kill -CONT "$VS_REDIS_PID"
N=$(project_seq "$P")
vs_poll 30 caught_up "$P" || vs_fail "caught up after Redis froze"
vs_check_eq "stream complete after Redis froze" "$(expected_ids "$N")" "$(stream_ids "$P")"
logs="$VS_LOG_DIR"/relay.*.log
down=$(cat $logs | grep -c 'redis unreachable')
back=$(cat $logs | grep -c 'redis back')
if ((down >= 1 && down <= 3 && back == down)); then
	vs_pass "one 'unreachable' and one 'back' line per relay ($down, $back)"
else
	vs_fail "state-change log lines: $down unreachable, $back back"
	grep -h 'redis' $logs | head -n 10
fi

# ---------------------------------------------------------------- SIGTERM

kill -TERM "$R1" "$R2"
rc1=0 rc2=0
wait "$R1" || rc1=$?
wait "$R2" || rc2=$?
vs_check_eq "SIGTERM: both relays exit 0" "0 0" "$rc1 $rc2"

# ---------------------------------------------------------------- Redis lost the project, then a NOTIFY

# A hinted round starts from the cursor the relay remembers, without a
# GET; when Redis no longer has it, the publish script refuses the change
# (the cursor is below it - 1) and the relay reads the cursor and publishes
# the project again from there. No poll meanwhile (--poll-interval 10 min).
vs_relay_start --poll-interval 600000 --timeout 2000
R3=$VS_RELAY_PID
printf 'before the loss\n' | ctl put demo lost/a.txt -
vs_poll 30 caught_up "$P" || vs_fail "caught up before the loss"
rcli DEL "relay:{$P}:cursor" "events:{$P}" "manifest:{$P}" >/dev/null
printf 'after the loss\n' | ctl put demo lost/a.txt -
N=$(project_seq "$P")
if vs_poll 30 caught_up "$P"; then
	vs_pass "Redis lost the project: the next change's NOTIFY republishes it up to $N"
else
	vs_fail "republished after the loss: expected cursor $N, saw '$(cursor "$P")'"
fi
vs_check_eq "every seq again, in order" "$(expected_ids "$N")" "$(stream_ids "$P")"
vs_check_eq "manifest = vsync_manifest() after the loss" "$(pg_manifest "$P")" "$(redis_manifest "$P")"
vs_check "the relay said why it read the cursor again" \
	grep -q 'reading it again' "$VS_RELAY_LOG"
kill -TERM "$R3"
wait "$R3" || vs_fail "relay 3: expected exit 0 at SIGTERM"

# ---------------------------------------------------------------- junk NOTIFYs
#
# Any role may NOTIFY on file_changes, and that cannot be revoked: here a
# container's own role (vsyncctl grant) sends bursts of 300 malformed
# payloads and 1000 well-formed ones naming made-up projects - more
# projects at once than the relay keeps hints for - and one naming a
# real other project at a seq far ahead. Each burst is followed by a real
# change. The relay polls every 10 min only, so what publishes the change
# is its NOTIFY; its "full scan N" debug lines (one at start) may grow by
# one at most (one scan for lost hints per poll interval, should a burst
# bring more than 256 at once: libpq hands them over in smaller reads
# here), however many bursts come.

vs_check "import a second project" ctl import other "$SRC"
O=$(sql "SELECT id FROM projects WHERE name = 'other'")
CPG=$(eval "$("$CTL" grant "$P")" && echo "$VSYNC_PG_URL")
vs_relay_start -v --poll-interval 600000 --timeout 2000
R4=$VS_RELAY_PID
full_scans() { grep -c 'full scan' "$VS_RELAY_LOG"; }
ignored() { grep -q "; $1 so far)" "$VS_RELAY_LOG"; }
vs_poll 30 caught_up "$O" || vs_fail "the second project published"
vs_poll 30 caught_up "$P" || vs_fail "caught up before the junk"
scans0=$(full_scans)
vs_check_eq "one full scan at start" 1 "$scans0"
junk() {
	"$PSQL" -X -q -v ON_ERROR_STOP=1 "$CPG" -c "DO \$\$ BEGIN
		FOR i IN 1..300 LOOP
			PERFORM pg_notify('file_changes', 'junk' || i);
		END LOOP;
		FOR i IN 1..1000 LOOP
			PERFORM pg_notify('file_changes', json_build_object(
				'project_id', md5(random()::text)::uuid,
				'seq', i)::text);
		END LOOP;
		PERFORM pg_notify('file_changes', json_build_object(
			'project_id', '$O'::uuid, 'seq', 1000000)::text);
	END \$\$" >/dev/null
}
# every command Redis runs meanwhile: a full scan GETs each project's
# cursor, and a hinted round of a project the relay has not seen (a
# made-up one) did too; a hinted round of a known project does not
MON=$W/monitor.out
timeout 240 redis-cli -h 127.0.0.1 -p "$VS_REDIS_PORT" MONITOR >"$MON" 2>&1 &
MONPID=$!
vs_on_exit "kill $MONPID 2>/dev/null; wait $MONPID 2>/dev/null; true"
vs_poll 10 grep -q OK "$MON" || vs_log "MONITOR not ready"
slow=0
for b in 1 2 3 4 5; do
	junk || vs_fail "junk NOTIFYs $b as the container's role"
	printf 'after burst %d\n' "$b" | ctl put demo junk/after.txt -
	vs_poll 5 caught_up "$P" || slow=$((slow + 1))
done
vs_check_eq "a real change after each burst is published within 5 s" 0 "$slow"
vs_poll 30 ignored 1500 || vs_fail "the relay ignored the 1500 malformed payloads"
kill "$MONPID" 2>/dev/null
wait "$MONPID" 2>/dev/null
# (the script reads the cursor too, and caught_up P's: not counted)
gets=$(grep '"GET" "relay:{' "$MON" | grep -v ' \[0 lua\] ' | grep -vc "relay:{$P}")
if ((gets <= 1)); then
	vs_pass "5 bursts of junk NOTIFYs: $gets GETs of other cursors"
else
	vs_fail "5 bursts of junk NOTIFYs: $gets GETs of other cursors (at most 1: one full scan)"
	grep '"GET" "relay:{' "$MON" | grep -v ' \[0 lua\] ' | grep -v "relay:{$P}" | head -n 5
fi
scans=$(full_scans)
if ((scans - scans0 <= 1)); then
	vs_pass "5 bursts of junk NOTIFYs: $((scans - scans0)) full scans more"
else
	vs_fail "5 bursts of junk NOTIFYs: $((scans - scans0)) full scans more (at most 1)"
	grep 'full scan' "$VS_RELAY_LOG" | tail -n 5
fi
vs_check_eq "the project named at a seq ahead is still caught up" \
	"$(project_seq "$O")" "$(cursor "$O")"
vs_check_eq "stream complete after the junk" "$(expected_ids "$(project_seq "$P")")" \
	"$(stream_ids "$P")"

# A hostile learned list: learned:{P} is any container of P's to write,
# and the relay, which serves every project from one thread, orders P's
# bundles by it at each tree build of P. 300,000 lines (63 MB) that share
# a 200-byte directory with the 3000 files of the project must not hold
# up another project's changes (it took lines x files: seconds each).
WIDE=$W/wide
D=$(printf 'd%.0s' $(seq 1 200))
mkdir -p "$WIDE/$D"
for i in $(seq 1 3000); do printf '%d\n' "$i" >"$WIDE/$D/f$i.txt"; done
vs_check "import a project of 3000 files" ctl import wide "$WIDE"
WID=$(sql "SELECT id FROM projects WHERE name = 'wide'")
vs_poll 60 caught_up "$WID" || vs_fail "the wide project published"
CREDIS=$(eval "$("$CTL" grant "$WID")" && echo "$VSYNC_REDIS_URL")
seq 1 300000 | sed "s|^|$D/x|" >"$W/learned.txt"
vs_check "a container of the project stores a 300k-line learned list" \
	sh -c 'redis-cli -u "$1" --no-auth-warning -x SET "learned:{$2}" <"$3" | grep -q OK' \
	_ "$CREDIS" "$WID" "$W/learned.txt"
bundles() { rcli KEYS "bundle:{$1}:*" | wc -l; }
tree_seq() { rcli GETRANGE "tree:{$1}" 0 40 | awk '{ print $3 }'; }
tree_built() { [[ "$(tree_seq "$1")" == "$(project_seq "$1")" ]]; }
vs_poll 30 tree_built "$WID" || vs_fail "the wide project's tree is built"
NB0=$(bundles "$WID")
# a change of the wide project, then one of the other, until the relay has
# rebuilt the wide project's bundles (with a tree build, at most every
# 10 s: a new bundle holds new.txt), and once after: each change of the
# other project is published within 3 s
slow=0 rounds=0 t_end=$(($(vs_now_ms) + 40000))
while :; do
	built=0
	(($(bundles "$WID") > NB0)) && built=1
	printf 'round %d\n' "$rounds" | ctl put wide "$D/new.txt" -
	printf 'round %d\n' "$rounds" | ctl put demo hostile/after.txt -
	t0=$(vs_now_ms)
	vs_poll 3 caught_up "$P" || slow=$((slow + 1))
	vs_log "round $rounds: demo's change published in $(($(vs_now_ms) - t0)) ms"
	rounds=$((rounds + 1))
	((built || $(vs_now_ms) > t_end)) && break
done
vs_check "the relay rebuilt the bundles of the project with the hostile list" \
	test "$(bundles "$WID")" -gt "$NB0"
vs_check_eq "another project's changes published within 3 s meanwhile ($rounds rounds)" 0 "$slow"
kill -TERM "$R4"
wait "$R4" || vs_fail "relay 4: expected exit 0 at SIGTERM"

# ---------------------------------------------------------------- the mount's Redis tier
#
# Needs FUSE; without it this part is skipped (the rest has run).

mount_redis_tier() {
	local mnt=$W/mnt cache=$W/cache h
	mkdir -p "$mnt" "$cache"
	# a file no relay has seen (they are stopped): its blob is not in Redis
	printf 'written after the relays stopped\n' >"$W/later.txt"
	ctl put demo notes/later.txt "$W/later.txt"
	# the tree from PostgreSQL (Redis's is one change behind, the relays
	# being stopped): without the relay's name -> id mapping, a mount by
	# name with a fresh cache dir asks PostgreSQL
	rcli DEL "name:{demo}" >/dev/null
	# --prefetch 0: files other than the critical ones (package.json,
	# src/main.*, ...) are fetched only when read, so each read below
	# goes to the backend it names
	vs_mount demo "$mnt" --cache-dir "$cache" --timeout 1000 \
		--prefetch 0 --redis "$VSYNC_REDIS_URL" || {
		vs_fail "mount with --redis"
		return
	}
	h=$(sha256sum <"$W/later.txt" | cut -d' ' -f1)
	vs_check_eq "a blob no relay has seen is not in Redis" 0 \
		"$(rcli EXISTS "blob:{$P}:$h")"
	vs_check "read of a file not in Redis (from PostgreSQL)" \
		cmp "$mnt/notes/later.txt" "$W/later.txt"
	vs_check_eq "PostgreSQL's bytes were put back into Redis" 1 \
		"$(rcli EXISTS "blob:{$P}:$h")"
	kill -STOP "$VS_REDIS_PID"
	vs_check "Redis frozen: a read is served by PostgreSQL" \
		cmp "$mnt/src/big.txt" "$SRC/src/big.txt"
	kill -CONT "$VS_REDIS_PID"
	sleep 1.2 # Redis is left alone for 1 s after a failure
	h=$(sha256sum <"$SRC/public/noise.bin" | cut -d' ' -f1)
	vs_check_eq "noise.bin's blob is in Redis" 1 "$(rcli EXISTS "blob:{$P}:$h")"
	vs_pg_stop
	vs_check "PostgreSQL down: a read is served by Redis" \
		cmp "$mnt/public/noise.bin" "$SRC/public/noise.bin"
	vs_umount "$mnt" || vs_fail "unmount"
}

if [[ -c /dev/fuse ]] && command -v fusermount3 >/dev/null 2>&1; then
	mount_redis_tier
else
	vs_log "no /dev/fuse: the mount's Redis tier is not tested here"
fi

vs_summary
