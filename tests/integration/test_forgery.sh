#!/usr/bin/env bash
#
# test_forgery.sh - with the relay signing (vsync-relay --sign-key) and the
# mounts verifying (vsync-mount --verify-key), forged Redis data is
# treated as absent and PostgreSQL is believed instead (docs/protocol.md,
# "Signatures"; issue 10, item 4):
#
#   1. Keys: `vsyncctl keygen` writes a private key (mode 0600) and prints
#      VSYNC_VERIFY_KEY=<base64>; a mount given it loads the relay's
#      signed manifest from Redis, and a relay change arrives signed.
#   2. Stream: a well-formed entry XADDed at exactly applied+1 (the seq
#      PostgreSQL will give the next change), with a matching blob, is
#      ignored: the forged file never appears, the mount counts it in
#      vsync_redis_unverified_total, and the real change committed
#      afterwards with that seq arrives.
#   2b. Inline content: an entry whose data field (not signed) was
#      changed puts nothing wrong in the file: the bytes are checked
#      against the signed hash, the mismatch logged, the blob fetched.
#   3. Manifest: a tree:{id} snapshot with a changed byte is refused, and
#      forged manifest:{id} fields - an extra file (with a matching
#      blob), a 99 TB st_size, a symlink retargeted to /etc/shadow, a name
#      with a newline - are not shown by a new mount (empty cache): it
#      falls back to PostgreSQL and shows PostgreSQL's tree.
#   4. Pure updates: the manifest rows of a batch of in-place edits, which
#      the relay takes from the change feed alone (no vsync_change_rows),
#      are the same signed bytes as those the general path writes when
#      the project is published again from scratch.
#   5. Size: 150 MB that a container stored under the blob key of a real
#      5-byte file is refused (read no further than the file's encoding)
#      and the file read from PostgreSQL, in the critical set's batch and
#      on a first read, with the mount's peak memory (VmHWM) growing by
#      under 100 MB.
#
# Every wait polls with a deadline; every process and mount is stopped at
# exit. Needs /dev/fuse (else exit 77).
# Environment: VSYNC_BUILD_DIR (default build/), VS_KEEP_LOGS=1 keeps logs.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/servers.sh
. "$here/../lib/servers.sh"

vs_need_fuse
vs_deadline 150

CTL_BIN=$VSYNC_BUILD_DIR/agent/vsyncctl
vs_servers_start all
W=$VS_SERVERS_DIR/work
VS_LOG_DIR=$W/logs
mkdir -p "$VS_LOG_DIR" "$W/tree/src" "$W/m1" "$W/m2" "$W/c1" "$W/c2"
PSQL=$VS_PG_BIN/psql
P=forgery

vs_logs_on_failure "$VS_LOG_DIR/*.log"

ctl() { timeout -k 5 60 "$CTL_BIN" --pg "$VSYNC_PG_URL" -q "$@"; }
sql() { timeout -k 2 30 "$PSQL" -X -At -q -v ON_ERROR_STOP=1 "$VSYNC_PG_URL" -c "$1"; }
free_port() {
	local p
	for p in $(shuf -i 20000-40000 -n 20); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
}
metric() { curl -s --max-time 2 "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }

# pg_state / mnt_state: "f MODE SIZE PATH SHA" / "d MODE PATH" /
# "l PATH TARGET", sorted (paths here have no blanks).
pg_state() {
	sql "SELECT kind, mode, size, path, coalesce(content_hash, ''), coalesce(link_target, '')
	       FROM vsync_manifest('$UUID'::uuid)" |
		awk -F'|' '
			$1 == "file" { printf "f %o %s %s %s\n", $2, $3, $4, $5; next }
			$1 == "dir" { printf "d %o %s\n", $2, $4; next }
			$1 == "symlink" { printf "l %s %s\n", $4, $6; next }
			{ print "? " $0 }' | LC_ALL=C sort
}
mnt_state() {
	local mnt=$1
	(
		cd "$mnt" || exit 1
		timeout -k 2 30 find . -mindepth 1 \( -type d -printf 'd %m %P\n' \) -o \
			\( -type l -printf 'l %P %l\n' \) -o \( -type f -printf 'f %m %s %P\n' \) |
			while read -r k a b c; do
				if [[ $k == f ]]; then
					echo "f $a $b $c $(sha256sum <"$c" | cut -d' ' -f1)"
				else
					echo "$k $a${b:+ $b}${c:+ $c}"
				fi
			done
	) | LC_ALL=C sort
}

# ---------------------------------------------------------------- 1. keys

for i in 1 2 3; do printf 'file %d\n' "$i" >"$W/tree/src/f$i.txt"; done
printf 'a big file, as imported\n' >"$W/tree/big.txt"
ln -s src/f1.txt "$W/tree/lnk"
vs_check "vsyncctl init" ctl init
vs_check "vsyncctl import $P" ctl import "$P" "$W/tree"
UUID=$(sql "SELECT vsync_project_id('$P')")

out=$("$CTL_BIN" keygen "$W/relay.key" 2>&1) || true
VERIFY=${out#VSYNC_VERIFY_KEY=}
vs_check "keygen prints VSYNC_VERIFY_KEY=<44 base64 chars> (saw '${out:0:80}')" \
	test "${#VERIFY}" -eq 44 -a "$out" = "VSYNC_VERIFY_KEY=$VERIFY"
vs_check_eq "keygen: the private key file is mode 600" 600 "$(stat -c %a "$W/relay.key" 2>&1)"
vs_check "keygen refuses to overwrite a key" sh -c '! "$1" keygen "$2" >/dev/null 2>&1' _ "$CTL_BIN" "$W/relay.key"
if ! vs_relay_start --sign-key "$W/relay.key"; then
	vs_fail "relay: expected vsync-relay --sign-key running, saw it exit"
	vs_summary || true
	exit 1
fi
SEQ=$(sql "SELECT vsync_project_seq('$UUID')")
published() { [[ "$(vs_redis_cli GET "relay:{$UUID}:cursor")" == "$1" ]]; }
vs_check "the relay published change $SEQ" vs_poll 20 published "$SEQ"
val=$(vs_redis_cli HGET "manifest:{$UUID}" src/f1.txt)
vs_check_eq "the relay's manifest values are signed ('${val:0:40}...')" "sig1:" "${val:0:5}"

PORT=$(free_port)
if ! vs_mount "$UUID" "$W/m1" --pg "$VSYNC_PG_URL" --redis "$VSYNC_REDIS_URL" \
	--verify-key "$VERIFY" --cache-dir "$W/c1" --control "127.0.0.1:$PORT" \
	--log-file "$VS_LOG_DIR/m1.log"; then
	vs_fail "mount with --verify-key: expected $W/m1 mounted, saw none"
	vs_summary || true
	exit 1
fi
M1_PID=$VS_MOUNT_PID
vs_check "mount 1 loaded the signed manifest from Redis" \
	grep -q "entries at change $SEQ from Redis" "$VS_LOG_DIR/m1.log"
printf 'signed change\n' >"$W/real0"
vs_check "a real change (vsyncctl put src/f2.txt)" ctl put "$P" src/f2.txt "$W/real0"
arrived() { cmp -s "$W/m1/$1" "$2"; }
vs_check "the relay's signed entry arrives" vs_poll 10 arrived src/f2.txt "$W/real0"
vs_check_eq "no entry counted as unverified so far" 0 "$(metric vsync_redis_unverified_total)"

# ---------------------------------------------------------------- 2. a forged stream entry at applied+1

SEQ=$(sql "SELECT vsync_project_seq('$UUID')")
vs_poll 10 published "$SEQ" || true
N=$((SEQ + 1))
printf 'forged content\n' >"$W/forged"
H=$(sha256sum <"$W/forged" | cut -d' ' -f1)
mt=$(($(date +%s) * 1000000000))
{ printf r; cat "$W/forged"; } | vs_redis_cli -x SET "blob:{$UUID}:$H" >/dev/null
vs_check_eq "XADD a forged entry at applied+1" "$N-0" \
	"$(vs_redis_cli XADD "events:{$UUID}" "$N-0" seq "$N" op create \
		path src/forged.txt kind file mode 644 size 15 hash "$H" \
		version 1 mtime_ns "$mt" author mallory 2>&1)"
unverified() { [[ "$(metric vsync_redis_unverified_total)" -ge 1 ]]; }
vs_check "the mount counts the forged entry in vsync_redis_unverified_total" vs_poll 10 unverified
vs_check "the mount logs the unverified entry" \
	grep -q "unverified stream entry $N " "$VS_LOG_DIR/m1.log"
vs_check "the forged file does not appear" test ! -e "$W/m1/src/forged.txt"
vs_check_eq "the mount is still at change $SEQ" "$SEQ" "$(metric vsync_applied_seq)"

printf 'the real change %d\n' "$N" >"$W/real1"
vs_check "the real change that takes seq $N (vsyncctl put src/real.txt)" ctl put "$P" src/real.txt "$W/real1"
vs_check_eq "PostgreSQL gave it seq $N" "$N" "$(sql "SELECT vsync_project_seq('$UUID')")"
vs_check "the real change $N arrives" vs_poll 10 arrived src/real.txt "$W/real1"
vs_check "the forged file still does not appear" test ! -e "$W/m1/src/forged.txt"
printf 'and one more\n' >"$W/real2"
vs_check "a later change (vsyncctl put src/f3.txt)" ctl put "$P" src/f3.txt "$W/real2"
vs_check "the later change arrives" vs_poll 10 arrived src/f3.txt "$W/real2"
pg_state >"$W/pg.state"
mnt_state "$W/m1" >"$W/m1.state"
vs_check "mount 1 equals PostgreSQL ($(wc -l <"$W/pg.state") entries)" cmp -s "$W/pg.state" "$W/m1.state"

# ---------------------------------------------------------------- 2b. tampered inline content

# The relay's entry of a small file carries its bytes (data), which are
# not signed: the mount checks them against the signed hash. An entry
# whose data was changed (signature still valid) must not put those bytes
# in the file: the mount logs it and fetches the real content.
# (the mount is frozen and its blocked XREAD killed first: a blocked
# XREAD would be sent the relay's entry the moment it is added)
kill -STOP "$M1_PID"
for xid in $(vs_redis_cli CLIENT LIST | tr ' ' '\n' | awk -F= '$1 == "id" { id = $2 } $1 == "cmd" && $2 == "xread" { print id }'); do
	vs_redis_cli CLIENT KILL ID "$xid" >/dev/null
done
printf 'genuine' >"$W/genuine"
if ctl put "$P" src/tamper.txt "$W/genuine"; then
	T=$(sql "SELECT vsync_project_seq('$UUID')")
	vs_check "the relay published change $T" vs_poll 20 published "$T"
	vs_check_eq "its entry carries the bytes (data)" genuine \
		"$(vs_redis_cli EVAL "for _, e in ipairs(redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])) do for i = 1, #e[2], 2 do if e[2][i] == 'data' then return e[2][i + 1] end end end return ''" 1 "events:{$UUID}" "$T-0")"
	vs_check_eq "the entry is replaced by one with other data" "$T-0" \
		"$(vs_redis_cli EVAL "local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])[1][2] for i = 1, #e, 2 do if e[i] == 'data' then e[i + 1] = ARGV[3] end end redis.call('XDEL', KEYS[1], ARGV[1]) redis.call('XSETID', KEYS[1], ARGV[2]) return redis.call('XADD', KEYS[1], ARGV[1], unpack(e))" 1 "events:{$UUID}" "$T-0" "$((T - 1))-0" forgedX)"
else
	vs_fail "put src/tamper.txt"
fi
kill -CONT "$M1_PID"
vs_check "the real bytes arrive, not the tampered ones" vs_poll 10 arrived src/tamper.txt "$W/genuine"
vs_check "the mount logs the mismatch" \
	grep -q "content of 'src/tamper.txt' given with its change does not match" "$VS_LOG_DIR/m1.log"

# ---------------------------------------------------------------- 3. forged manifest fields

SEQ=$(sql "SELECT vsync_project_seq('$UUID')")
vs_check "the relay published change $SEQ" vs_poll 20 published "$SEQ"
# the relay's tree snapshot (one signature for the whole tree) is
# rebuilt behind the changes: once it is at $SEQ, change one of its
# bytes (past the header: the body, covered by its hash and signature)
TK="tree:{$UUID}"
tree_at() { [[ "$(vs_redis_cli GETRANGE "$TK" 0 40)" == "vsync-tree 1 $1 "* ]]; }
vs_check "the relay rebuilt the tree at $SEQ" vs_poll 20 tree_at "$SEQ"
vs_redis_cli SETRANGE "$TK" 200 XXXX >/dev/null
MK="manifest:{$UUID}"
LEN=$(vs_redis_cli HLEN "$MK")
vs_redis_cli HSET "$MK" src/extra.txt "file 644 15 1 $mt $H" >/dev/null
vs_redis_cli HSET "$MK" big.txt "file 644 108851651149824 1 $mt $H" >/dev/null
vs_redis_cli HSET "$MK" lnk "symlink 777 11 1 $mt $H /etc/shadow" >/dev/null
printf 'file 644 15 1 %s %s' "$mt" "$H" | vs_redis_cli -x HSET "$MK" "$(printf 'src/evil\nname')" >/dev/null
vs_check_eq "forged: two more fields in $MK" $((LEN + 2)) "$(vs_redis_cli HLEN "$MK")"
vs_check_eq "forged: big.txt says 99 TB" "file 644 108851651149824 1 $mt $H" "$(vs_redis_cli HGET "$MK" big.txt)"

if ! vs_mount "$UUID" "$W/m2" --pg "$VSYNC_PG_URL" --redis "$VSYNC_REDIS_URL" \
	--verify-key "$VERIFY" --cache-dir "$W/c2" --no-follow \
	--log-file "$VS_LOG_DIR/m2.log"; then
	vs_fail "mount 2: expected $W/m2 mounted, saw none"
	vs_summary || true
	exit 1
fi
vs_check "mount 2 refused the tampered tree" \
	grep -q "the tree of project $UUID is malformed or corrupt" "$VS_LOG_DIR/m2.log"
vs_check "mount 2 refused the forged manifest" \
	grep -q "not using the manifest of project $UUID" "$VS_LOG_DIR/m2.log"
vs_check "mount 2 loaded PostgreSQL's tree" \
	grep -q "entries at change $SEQ from PostgreSQL" "$VS_LOG_DIR/m2.log"
vs_check "no extra file" test ! -e "$W/m2/src/extra.txt"
vs_check_eq "big.txt has PostgreSQL's size, not 99 TB" \
	"$(sql "SELECT size FROM vsync_manifest('$UUID') WHERE path = 'big.txt'")" \
	"$(stat -c %s "$W/m2/big.txt" 2>&1)"
vs_check_eq "lnk points where PostgreSQL says" src/f1.txt "$(readlink "$W/m2/lnk" 2>&1)"
vs_check "no name with a newline" sh -c '! ls -A "$1/src" | grep -q evil' _ "$W/m2"
pg_state >"$W/pg.state"
mnt_state "$W/m2" >"$W/m2.state"
vs_check "mount 2 equals PostgreSQL ($(wc -l <"$W/pg.state") entries)" cmp -s "$W/pg.state" "$W/m2.state"

# ---------------------------------------------------------------- 4. pure updates: the same signed manifest rows

mkdir -p "$W/tree4/d"
for i in 1 2 3; do printf 'plain %d\n' "$i" >"$W/tree4/d/p$i.txt"; done
ln -s d/p1.txt "$W/tree4/ln"
vs_check "vsyncctl import plain" ctl import plain "$W/tree4"
U4=$(sql "SELECT vsync_project_id('plain')")
at_seq() { [[ "$(vs_redis_cli GET "relay:{$U4}:cursor")" == "$(sql "SELECT vsync_project_seq('$U4')")" ]]; }
vs_check "the relay published project plain" vs_poll 20 at_seq
# one transaction: the relay reads the three updates in one batch
sql "BEGIN;
     SELECT 1 FROM vsync_write_file('$U4', 'd/p1.txt', convert_to('edited 1', 'UTF8'), NULL, NULL, NULL, 't4', 'file');
     SELECT 1 FROM vsync_write_file('$U4', 'd/p2.txt', convert_to('edited 2', 'UTF8'), 493, NULL, NULL, 't4', 'file');
     SELECT 1 FROM vsync_write_file('$U4', 'ln', convert_to('d/p3.txt', 'UTF8'), NULL, NULL, NULL, 't4', 'symlink');
     COMMIT;" >/dev/null
vs_check_eq "three updates committed" "update update update" \
	"$(sql "SELECT string_agg(op, ' ' ORDER BY seq) FROM vsync_change_feed('$U4', vsync_project_seq('$U4') - 3, NULL)")"
vs_check "the relay published the updates" vs_poll 20 at_seq
manifest4() { vs_redis_cli HGETALL "manifest:{$U4}" | paste - - | LC_ALL=C sort; }
manifest4 >"$W/m4.fast"
vs_check "the updated rows are signed" grep -q $'^d/p2.txt\tsig1:[^ ]* file 755 8 2 ' "$W/m4.fast"
vs_redis_cli DEL "relay:{$U4}:cursor" "events:{$U4}" "manifest:{$U4}" >/dev/null
vs_check "the relay published project plain again from scratch" vs_poll 30 at_seq
manifest4 >"$W/m4.general"
vs_check "pure updates: manifest rows from the feed = from vsync_change_rows ($(wc -l <"$W/m4.fast") rows)" \
	cmp -s "$W/m4.fast" "$W/m4.general"

# ---------------------------------------------------------------- 5. a huge value under a real file's blob key
#
# A container can SET blob:{P}:<hash of a real file> to anything. Readers
# take no more of it than the file's encoding (GETRANGE), refuse it, and
# read the file from PostgreSQL, without the mount's memory growing by
# the value's size: once in the critical set's batch (--critical), once
# on a first read.

H1=$(sha256sum <"$W/tree/src/f1.txt" | cut -d' ' -f1)
CRED=$(ctl --redis "$VSYNC_REDIS_URL" grant "$P")
C_REDIS=$(eval "$CRED" && echo "$VSYNC_REDIS_URL")
# big_set: the container's SET, as RESP on a socket of bash's own
# (/dev/tcp; redis-cli -x reads its stdin 1 KiB at a time, 8-10 s for the
# 150 MB, and --pipe ends with an ECHO the container may not send)
resp() { # resp ARG...: one command on fd 9
	local a
	printf '*%d\r\n' $# >&9
	for a; do printf '$%d\r\n%s\r\n' "${#a}" "$a" >&9; done
}
resp_ok() {
	local reply
	read -r -t 60 -u 9 reply && [[ $reply == "+OK"$'\r' ]]
}
big_set() {
	local key="blob:{$UUID}:$H1" a up hp db=0
	a=${C_REDIS#redis://}
	up=${a%@*} hp=${a##*@}
	if [[ $hp == */* ]]; then
		db=${hp#*/} hp=${hp%%/*}
	fi
	exec 9<>"/dev/tcp/${hp%:*}/${hp##*:}" || return 1
	resp AUTH "${up%%:*}" "${up#*:}" && resp_ok &&
		resp SELECT "$db" && resp_ok &&
		printf '*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\nr' \
			"${#key}" "$key" 150000001 >&9 &&
		head -c 150000000 /dev/zero >&9 && printf '\r\n' >&9 && resp_ok
	local rc=$?
	exec 9>&-
	return "$rc"
}
vs_check "a container stores 150 MB under the blob key of src/f1.txt" big_set
hwm_kb() { awk '$1 == "VmHWM:" { print $2 }' "/proc/$1/status"; }
mkdir -p "$W/m3" "$W/c3" "$W/m4" "$W/c4"
vs_redis_cli DEL "learned:{$UUID}" >/dev/null
if vs_mount "$UUID" "$W/m3" --pg "$VSYNC_PG_URL" --redis "$C_REDIS" \
	--verify-key "$VERIFY" --cache-dir "$W/c3" --prefetch 0 \
	--critical src/f1.txt --ready-file "$W/ready3" \
	--log-file "$VS_LOG_DIR/m3.log"; then
	vs_check "mount 3 is ready" vs_poll 60 test -e "$W/ready3"
	hwm=$(hwm_kb "$VS_MOUNT_PID")
	vs_log "mount 3 (huge blob in its critical set): VmHWM $hwm kB at ready"
	vs_check "critical set: under 100 MB of peak memory at ready (saw $hwm kB)" \
		test "$hwm" -lt 100000
	vs_check "critical set: src/f1.txt has PostgreSQL's bytes" \
		cmp "$W/m3/src/f1.txt" "$W/tree/src/f1.txt"
	vs_check "critical set: the value is refused, logged" \
		grep -q "corrupt blob of 'src/f1.txt'" "$VS_LOG_DIR/m3.log"
else
	vs_fail "mount 3 with the container's Redis user: expected $W/m3 mounted"
fi
# no learned list (mount 3 saves one at the latest when unmounted):
# src/f1.txt is read on its own, not in a batch; and the value again
# (mount 3 put the right one back after reading PostgreSQL)
# (every other mount first: each saves its learned list, mount 2's
# holding src/f1.txt, at the latest when unmounted, which could land
# after the DEL and make the file critical in mount 4, read in a batch)
vs_check "unmount mount 3" vs_umount "$W/m3"
vs_check "unmount mount 1" vs_umount "$W/m1"
vs_check "unmount mount 2" vs_umount "$W/m2"
vs_redis_cli DEL "learned:{$UUID}" >/dev/null
vs_check "the container stores the 150 MB again" big_set
if vs_mount "$UUID" "$W/m4" --pg "$VSYNC_PG_URL" --redis "$C_REDIS" \
	--verify-key "$VERIFY" --cache-dir "$W/c4" --prefetch 0 \
	--ready-file "$W/ready4" --log-file "$VS_LOG_DIR/m4.log"; then
	vs_check "mount 4 is ready" vs_poll 60 test -e "$W/ready4"
	hwm0=$(hwm_kb "$VS_MOUNT_PID")
	vs_check "first read: src/f1.txt has PostgreSQL's bytes" \
		cmp "$W/m4/src/f1.txt" "$W/tree/src/f1.txt"
	hwm=$(hwm_kb "$VS_MOUNT_PID")
	vs_log "mount 4: VmHWM $hwm0 kB at ready, $hwm kB after the read"
	vs_check "first read: peak memory grew by under 100 MB ($hwm0 -> $hwm kB)" \
		test $((hwm - hwm0)) -lt 100000
	vs_check "first read: the value is refused, logged" \
		grep -q "larger than" "$VS_LOG_DIR/m4.log"
else
	vs_fail "mount 4 with the container's Redis user: expected $W/m4 mounted"
fi
vs_redis_cli DEL "blob:{$UUID}:$H1" >/dev/null

for m in m1 m2 m3 m4; do
	if vs_umount "$W/$m"; then
		vs_pass "unmounted $m"
	else
		vs_fail "unmount: expected no mount at $W/$m, saw one left"
	fi
done
vs_summary
