#!/usr/bin/env bash
#
# test_isolation.sh - a container's credentials reach its own project and
# nothing else (docs/security.md).
#
# Two projects, A and B; `vsyncctl grant` makes the credentials of A's
# containers (a PostgreSQL role that must give its password, a Redis ACL
# user), and B's. With A's:
#   - PostgreSQL: B's tree, files, history, changes and seq are refused
#     with 42501 through every function; writes to B (put, mkdir, delete,
#     rename) are 42501; tables are not readable at all (not even A's
#     rows); the admin functions (create project, list projects, grant)
#     are refused; B's name does not resolve; nothing of B changed;
#   - Redis: B's keys are neither read nor written; A's stream, manifest
#     and relay cursor cannot be written, nor can KEYS list anything;
#   - vsync-mount of B with A's credentials fails with a clear error;
#   - A's own mount works end to end with A's credentials only: mount,
#     read, a remote edit arrives, a local save is committed;
#   - a wrong password is refused; after `vsyncctl revoke A` the
#     credentials no longer log in (PostgreSQL, Redis), B's still do;
#   - a grant with --ttl expires: the role's VALID UNTIL is set;
#     `vsyncctl revoke --expired` ends an expired grant (role, sessions,
#     Redis user and connections) and no other, and never a Redis
#     password that a grant of the same project set since;
#   - A's Redis user reads the relay's name:{proja} (to mount by name
#     without PostgreSQL), not name:{projb}, and writes neither;
#   - vsync-relay runs with its own credentials (`vsyncctl grant --relay`)
#     and signs; A's mount verifies with the key its grant carries.
#   - A's role setting its own defaults (read-only) breaks no write
#     through the grant's conninfo, and a re-grant drops them;
#   - A cannot replace the chunk list of a large content that a version
#     names (22023; the version still reads its bytes); the same list, or
#     the true list of content A named with wrong chunks, is taken;
#
# Needs /dev/fuse (else exit 77); starts PostgreSQL, Redis and vsync-relay.
set -u

# shellcheck source=tests/lib/servers.sh
. "$(dirname "$0")/../lib/servers.sh"

vs_need_fuse
CTL=$VSYNC_BUILD_DIR/agent/vsyncctl
vs_deadline 300
vs_servers_start all || exit 1
export VS_LOG_DIR=$VS_SERVERS_DIR
W=$VS_SERVERS_DIR/work
mkdir -p "$W"
PSQL=$VS_PG_BIN/psql
ADMIN_PG=$VSYNC_PG_URL
ADMIN_REDIS=$VSYNC_REDIS_URL

ctl() { "$CTL" --pg "$ADMIN_PG" --redis "$ADMIN_REDIS" "$@"; }
# as CREDS-FILE SQL: one statement with the granted PostgreSQL role;
# prints rows, or the error's first line
as() {
	(
		# shellcheck disable=SC1090
		. "$1"
		"$PSQL" -X -At -w "$VSYNC_PG_URL" -c "$2" 2>&1 | head -n 1
	)
}
# redis_as CREDS-FILE ARGS...: redis-cli with the granted Redis user
redis_as() {
	(
		# shellcheck disable=SC1090
		. "$1"
		local userpass=${VSYNC_REDIS_URL#redis://}
		userpass=${userpass%%@*}
		REDISCLI_AUTH=${userpass#*:} timeout -k 2 10 redis-cli --no-auth-warning \
			--user "vsync-c-$VSYNC_PROJECT" \
			-p "$VS_REDIS_PORT" -h 127.0.0.1 "${@:2}" 2>&1
	)
}
denied() { [[ $1 == *"permission denied"* ]]; }

for p in A B; do
	mkdir -p "$W/src$p/src"
	echo "secret of $p" >"$W/src$p/src/secret.txt"
	echo "export const x = 1;" >"$W/src$p/src/app.js"
done
vs_check "init" ctl -q init
vs_check "import A and B" sh -c '"$1" --pg "$2" -q import proja "$3" && "$1" --pg "$2" -q import projb "$4"' \
	_ "$CTL" "$ADMIN_PG" "$W/srcA" "$W/srcB"
A=$(vs_sql "SELECT vsync_project_id('proja')")
B=$(vs_sql "SELECT vsync_project_id('projb')")
vs_check "PostgreSQL asks other roles for a password" vs_pg_require_passwords

# the relay signs; the containers' grants carry its public key
VERIFY=$("$CTL" keygen "$W/relay.key")
export VSYNC_VERIFY_KEY=${VERIFY#VSYNC_VERIFY_KEY=}

# the relay with its own credentials
vs_check "grant --relay" sh -c '"$1" --pg "$2" --redis "$3" grant --relay >"$4"' \
	_ "$CTL" "$ADMIN_PG" "$ADMIN_REDIS" "$W/relay.env"
RELAY_PG=$(. "$W/relay.env" && echo "$VSYNC_PG_URL")
RELAY_REDIS=$(. "$W/relay.env" && echo "$VSYNC_REDIS_URL")
vs_check "the relay's Redis user is its own" grep -q "^redis://vsync-relay:" <<<"$RELAY_REDIS"
VSYNC_PG_URL=$RELAY_PG VSYNC_REDIS_URL=$RELAY_REDIS vs_relay_start \
	--sign-key "$W/relay.key" || exit 1

vs_check "grant A" sh -c '"$1" --pg "$2" --redis "$3" grant proja >"$4"' \
	_ "$CTL" "$ADMIN_PG" "$ADMIN_REDIS" "$W/a.env"
vs_check "grant B (--ttl 2h)" sh -c '"$1" --pg "$2" --redis "$3" grant projb --ttl 2h >"$4"' \
	_ "$CTL" "$ADMIN_PG" "$ADMIN_REDIS" "$W/b.env"
vs_check "the grant prints shell lines" grep -q "^VSYNC_PG_URL='" "$W/a.env"
vs_check "with the relay's public key" grep -q "^VSYNC_VERIFY_KEY='$VSYNC_VERIFY_KEY'" "$W/a.env"
vs_check "with a Redis URL of its own" grep -q "^VSYNC_REDIS_URL='redis://vsync-c-$A:" "$W/a.env"
vs_check "and no admin credentials" sh -c '! grep -q "user=.postgres" "$1"' _ "$W/a.env"
vs_check_eq "--ttl sets VALID UNTIL (about 2 h)" t \
	"$(vs_sql "SELECT rolvaliduntil BETWEEN now() + interval '119 minutes' AND now() + interval '121 minutes' FROM pg_roles WHERE rolname = 'vsync_c_${B//-/}'")"

seqB=$(vs_sql "SELECT vsync_project_seq('$B')")

# ---------------------------------------------------------------- PostgreSQL
vs_check_eq "A reads its own tree" 3 "$(as "$W/a.env" "SELECT count(*) FROM vsync_manifest('$A')")"
for f in "vsync_manifest('$B')" "vsync_read_file('$B', 'src/secret.txt', NULL)" \
	"vsync_history('$B', 'src/secret.txt')" "vsync_changes('$B', 0, NULL)" \
	"vsync_change_feed('$B', 0, NULL)" "vsync_change_rows('$B', 0, 100)" \
	"vsync_project_seq('$B')" "vsync_blob('$B', repeat('0', 64))" \
	"vsync_conflicts('$B')"; do
	out=$(as "$W/a.env" "SELECT * FROM $f")
	vs_check "A reading B: $f is refused ($out)" denied "$out"
done
for f in "vsync_write_file('$B', 'src/evil.js', '\\x41'::bytea, NULL, NULL, NULL, 'evil')" \
	"vsync_mkdir('$B', 'evil', NULL, NULL, 'evil')" \
	"vsync_delete('$B', 'src/secret.txt', NULL, NULL, 'evil', true)" \
	"vsync_rename('$B', 'src/secret.txt', 'src/x.txt', NULL, NULL, 'evil')"; do
	out=$(as "$W/a.env" "SELECT * FROM $f")
	vs_check "A writing B: ${f%%(*} is refused ($out)" denied "$out"
done
for t in projects project_files file_operations vsync_grants; do
	out=$(as "$W/a.env" "SELECT count(*) FROM $t")
	vs_check "table $t is not readable ($out)" denied "$out"
done
for f in "vsync_create_project('evil')" "vsync_projects()" "vsync_grant('$A', 'xxxxxxxxxxxxxxxxxxxx', NULL)" "vsync_revoke('$B')"; do
	out=$(as "$W/a.env" "SELECT * FROM $f")
	vs_check "admin function ${f%%(*} is refused ($out)" denied "$out"
done
out=$(as "$W/a.env" "SELECT vsync_project_id('projb')")
vs_check "B's name does not resolve for A ($out)" grep -q "unknown project" <<<"$out"
vs_check_eq "nothing of B changed (seq)" "$seqB" "$(vs_sql "SELECT vsync_project_seq('$B')")"
vs_check_eq "nothing of B changed (files)" "src/app.js src/secret.txt" \
	"$(vs_sql "SELECT string_agg(path, ' ' ORDER BY path) FROM vsync_manifest('$B') WHERE kind = 'file'")"
out=$(
	sed "s/[0-9a-f]\{64\}/$(printf 'f%.0s' {1..64})/g" "$W/a.env" >"$W/wrong.env"
	as "$W/wrong.env" "SELECT 1"
)
vs_check "a wrong password is refused ($out)" grep -q "password authentication failed" <<<"$out"

# ---------------------------------------------------------------- Redis
vs_check "the relay filled B's manifest" vs_poll 10 sh -c '[ "$(timeout 5 redis-cli -p "$1" hlen "manifest:{$2}")" -gt 0 ]' _ "$VS_REDIS_PORT" "$B"
hashB=$(vs_sql "SELECT content_hash FROM vsync_manifest('$B') WHERE path = 'src/secret.txt'")
out=$(redis_as "$W/a.env" GET "blob:{$B}:$hashB")
vs_check "A reading B's blob is refused ($out)" grep -q NOPERM <<<"$out"
out=$(redis_as "$W/a.env" HGETALL "manifest:{$B}")
vs_check "A reading B's manifest is refused ($out)" grep -q NOPERM <<<"$out"
out=$(redis_as "$W/a.env" SET "blob:{$B}:$hashB" forged)
vs_check "A writing B's blob is refused ($out)" grep -q NOPERM <<<"$out"
out=$(redis_as "$W/a.env" XADD "events:{$B}" '*' op create path src/evil.js)
vs_check "A appending to B's stream is refused ($out)" grep -q NOPERM <<<"$out"
out=$(redis_as "$W/a.env" XADD "events:{$A}" '*' op create path src/evil.js)
vs_check "A appending to its own stream is refused ($out)" grep -q NOPERM <<<"$out"
out=$(redis_as "$W/a.env" HSET "manifest:{$A}" src/evil.js x)
vs_check "A writing its own manifest is refused ($out)" grep -q NOPERM <<<"$out"
out=$(redis_as "$W/a.env" SET "relay:{$A}:cursor" 999)
vs_check "A moving the relay's cursor is refused ($out)" grep -q NOPERM <<<"$out"
out=$(redis_as "$W/a.env" KEYS '*')
vs_check "A listing keys is refused ($out)" grep -q NOPERM <<<"$out"
hashA=$(vs_sql "SELECT content_hash FROM vsync_manifest('$A') WHERE path = 'src/secret.txt'")
out=$(redis_as "$W/a.env" HGETALL "manifest:{$A}")
vs_check "A reads its own manifest" grep -q "src/secret.txt" <<<"$out"
vs_check_eq "B's blob unchanged" 0 "$(timeout 5 redis-cli -p "$VS_REDIS_PORT" exists "blob:{$B}:forged")"
vs_check "the relay published A's name" vs_poll 10 sh -c '[ -n "$(timeout 5 redis-cli -p "$1" get "name:{proja}")" ]' _ "$VS_REDIS_PORT"
out=$(redis_as "$W/a.env" GET "name:{proja}")
vs_check "A reads its own name's id" grep -q "$A" <<<"$out"
out=$(redis_as "$W/a.env" GET "name:{projb}")
vs_check "A reading B's name is refused ($out)" grep -q NOPERM <<<"$out"
out=$(redis_as "$W/a.env" SET "name:{proja}" "$B")
vs_check "A writing its own name is refused ($out)" grep -q NOPERM <<<"$out"

# ---------------------------------------------------------------- mounts
MA=$W/mnt-a
MB=$W/mnt-b
mkdir -p "$MA" "$MB"
(
	# shellcheck disable=SC1090
	. "$W/a.env"
	"$VSYNC_BUILD_DIR/agent/vsync-mount" projb "$MB" -f --pg "$VSYNC_PG_URL" \
		--redis "$VSYNC_REDIS_URL" --cache-dir "$W/cache-b" \
		>"$W/mount-b.log" 2>&1 </dev/null
)
rc=$?
vs_check "mounting B with A's credentials fails (exit $rc)" test "$rc" -ne 0
vs_check "with a clear error" grep -q "unknown project" "$W/mount-b.log"
vs_check "and nothing mounted" sh -c '! grep -q " $1 " /proc/mounts' _ "$MB"

# shellcheck disable=SC1090
(. "$W/a.env" && export VSYNC_PG_URL VSYNC_REDIS_URL VSYNC_VERIFY_KEY &&
	vs_mount proja "$MA" --cache-dir "$W/cache-a" \
	&& echo "$VS_MOUNT_PID" >"$W/mount-a.pid") || vs_fail "mount A with A's credentials"
if [[ -s $W/mount-a.pid ]]; then
	vs_on_exit "vs__cleanup_mount $(printf '%q' "$MA") $(cat "$W/mount-a.pid")"
	vs_check_eq "A's mount reads A's file" "secret of A" "$(cat "$MA/src/secret.txt")"
	echo "remote edit" >"$W/edit"
	vs_check "a remote edit is committed" ctl -q put proja src/app.js "$W/edit"
	vs_check "and arrives in A's mount" vs_poll 10 grep -q "remote edit" "$MA/src/app.js"
	echo "saved in the container" >"$MA/src/local.js"
	vs_check "a local save: fsync returns" sync "$MA/src/local.js"
	vs_check_eq "and is committed" "saved in the container" \
		"$("$CTL" --pg "$ADMIN_PG" cat proja src/local.js)"
	vs_check "A's mount logged no permission error" sh -c '! grep -qi "permission denied\|NOPERM" "$1"' _ "$VS_LOG_DIR/mount.1.log"
	vs_check "and verified what it read from Redis (no unverified data)" \
		sh -c '! grep -qi "unverified\|not using the manifest" "$1"' _ "$VS_LOG_DIR/mount.1.log"
	vs_umount "$MA"
fi

# ---------------------------------------------------------------- chunk lists
# as CREDS-FILE SQL, printing the SQLSTATE of an error ("ERROR:  22023: ...")
as_state() {
	(
		# shellcheck disable=SC1090
		. "$1"
		"$PSQL" -X -At -w -v VERBOSITY=verbose "$VSYNC_PG_URL" -c "$2" 2>&1 | head -n 1
	)
}
# content of 9,000,000 bytes in two chunks (8 MiB, 611,392 bytes) of
# bytes $1 and $2 (hex): the SQL of a chunk; the names of both chunks and
# the hash of the whole
chunk_sql() { echo "decode(repeat('$1', $2), 'hex')"; }
big_content() { # BYTE0 BYTE1
	local c0 c1
	c0=$(chunk_sql "$1" 8388608)
	c1=$(chunk_sql "$2" 611392)
	vs_sql "SELECT encode(sha256($c0), 'hex'), encode(sha256($c1), 'hex'),
		       encode(sha256($c0 || $c1), 'hex')" | tr '|' ' '
}
write_chunked() { # CREDS-FILE|admin PATH HASH S0 S1 AUTHOR
	local q="SELECT version FROM vsync_write_chunked('$A', '$2', '$3', 9000000,
		ARRAY['$4', '$5'], NULL, NULL, NULL, NULL, '$6')"
	if [[ $1 == admin ]]; then vs_sql "$q" 2>&1; else as_state "$1" "$q"; fi
}
read_hash() { # PATH [VERSION]
	vs_sql "SELECT encode(sha256(vsync_read_file('$A', '$1', ${2:-NULL})), 'hex')"
}
read -r OWN_S0 OWN_S1 OWN_H <<<"$(big_content ab cd)"
read -r EVIL_S0 EVIL_S1 _ <<<"$(big_content 00 00)"
vs_sql "SELECT vsync_chunk_put('$A', '$OWN_S0', $(chunk_sql ab 8388608)),
	       vsync_chunk_put('$A', '$OWN_S1', $(chunk_sql cd 611392))" >/dev/null
as "$W/a.env" "SELECT vsync_chunk_put('$A', '$EVIL_S0', $(chunk_sql 00 8388608)),
		      vsync_chunk_put('$A', '$EVIL_S1', $(chunk_sql 00 611392))" >/dev/null
vs_check_eq "the owner writes a chunked file" 1 \
	"$(write_chunked admin assets/video.bin "$OWN_H" "$OWN_S0" "$OWN_S1" owner)"
out=$(write_chunked "$W/a.env" tmp/x.bin "$OWN_H" "$EVIL_S0" "$EVIL_S1" evil)
vs_check "A naming the owner's content with other chunks is refused with 22023 ($out)" \
	grep -q "^ERROR:  22023:" <<<"$out"
vs_check_eq "the committed version still reads its own bytes" "$OWN_H" \
	"$(read_hash assets/video.bin 1)"
vs_check_eq "and its chunk list is unchanged" "$OWN_S0 $OWN_S1" \
	"$(vs_sql "SELECT string_agg(sha, ' ' ORDER BY idx) FROM vsync_chunk_list('$A', '$OWN_H')")"
vs_check_eq "A writing the same content with the same chunks succeeds" 1 \
	"$(write_chunked "$W/a.env" tmp/copy.bin "$OWN_H" "$OWN_S0" "$OWN_S1" a)"
vs_check_eq "and so does a retry of the owner's write" 1 \
	"$(write_chunked admin assets/copy.bin "$OWN_H" "$OWN_S0" "$OWN_S1" owner)"
# content no version names yet: A's list (wrong bytes) is taken, then the
# owner's true list replaces it (the server checks it against the hash)
read -r TWO_S0 TWO_S1 TWO_H <<<"$(big_content ef 01)"
vs_sql "SELECT vsync_chunk_put('$A', '$TWO_S0', $(chunk_sql ef 8388608)),
	       vsync_chunk_put('$A', '$TWO_S1', $(chunk_sql 01 611392))" >/dev/null
vs_check_eq "A names content no version has with its own chunks" 1 \
	"$(write_chunked "$W/a.env" tmp/first.bin "$TWO_H" "$EVIL_S0" "$EVIL_S1" evil)"
vs_check_eq "the owner's true chunks of it are not refused" 1 \
	"$(write_chunked admin assets/two.bin "$TWO_H" "$TWO_S0" "$TWO_S1" owner)"
vs_check_eq "and every version of that content reads its bytes" "$TWO_H $TWO_H" \
	"$(read_hash assets/two.bin) $(read_hash tmp/first.bin)"
for p in assets tmp; do vs_sql "SELECT seq FROM vsync_delete('$A', '$p', NULL, NULL, 'test', true)" >/dev/null; done

# ---------------------------------------------------------------- role settings
# A's role can set its own defaults, for every container of A: a
# read-only default makes their writes fail. The grant's conninfo
# overrides it (connection options), and a re-grant drops the settings.
# as_url URL SQL: one statement with conninfo URL
as_url() { "$PSQL" -X -At -w "$1" -c "$2" 2>&1 | head -n 1; }
write_sql() { echo "SELECT seq FROM vsync_write_file('$A', 'src/$1', '\\x41'::bytea, NULL, NULL, NULL, 'a')"; }
A_URL=$(. "$W/a.env" && echo "$VSYNC_PG_URL")
DB=$(vs_sql "SELECT current_database()")
vs_check_eq "A sets its role's default read-only" "ALTER ROLE" \
	"$(as "$W/a.env" "ALTER ROLE CURRENT_USER SET default_transaction_read_only = on")"
vs_check_eq "and in its database" "ALTER ROLE" \
	"$(as "$W/a.env" "ALTER ROLE CURRENT_USER IN DATABASE \"$DB\" SET default_transaction_read_only = on")"
out=$(as_url "${A_URL% options=*}" "$(write_sql ro1.txt)")
vs_check "without the grant's options, A's writes are refused ($out)" grep -q "read-only transaction" <<<"$out"
out=$(as "$W/a.env" "$(write_sql ro2.txt)")
vs_check "the grant's conninfo overrides the role's default ($out)" grep -qx "[0-9][0-9]*" <<<"$out"
vs_check "re-grant A" sh -c '"$1" --pg "$2" --redis "$3" grant proja >"$4"' \
	_ "$CTL" "$ADMIN_PG" "$ADMIN_REDIS" "$W/a.env"
vs_check_eq "the re-grant dropped the role's settings" 0 \
	"$(vs_sql "SELECT count(*) FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname = 'vsync_c_${A//-/}'")"
out=$(as "$W/a.env" "$(write_sql ro3.txt)")
vs_check "a write through the new conninfo succeeds ($out)" grep -qx "[0-9][0-9]*" <<<"$out"
A_URL=$(. "$W/a.env" && echo "$VSYNC_PG_URL")
out=$(as_url "${A_URL% options=*}" "$(write_sql ro4.txt)")
vs_check "and without its options too ($out)" grep -qx "[0-9][0-9]*" <<<"$out"

# ---------------------------------------------------------------- revoke
vs_check "revoke A" ctl -q revoke proja
out=$(as "$W/a.env" "SELECT 1")
vs_check "A's PostgreSQL role no longer logs in ($out)" grep -q "password authentication failed" <<<"$out"
out=$(redis_as "$W/a.env" PING)
vs_check "A's Redis user no longer logs in ($out)" grep -qi "WRONGPASS\|invalid\|NOAUTH" <<<"$out"
vs_check_eq "B's credentials still work" 3 "$(as "$W/b.env" "SELECT count(*) FROM vsync_manifest('$B')")"

# ---------------------------------------------------------------- revoke --expired
# C's grant lives 1 s; a session of each kind is open when it expires
# (VALID UNTIL refuses new logins only, Redis has no expiry at all)
mkdir -p "$W/srcC"
echo c >"$W/srcC/c.txt"
vs_check "import C" "$CTL" --pg "$ADMIN_PG" -q import projc "$W/srcC"
C=$(vs_sql "SELECT vsync_project_id('projc')")
vs_check "grant C (--ttl 1s)" sh -c '"$1" --pg "$2" --redis "$3" grant projc --ttl 1s >"$4"' \
	_ "$CTL" "$ADMIN_PG" "$ADMIN_REDIS" "$W/c.env"
(
	. "$W/c.env"
	exec "$PSQL" -X -At -w "$VSYNC_PG_URL" -c "SELECT pg_sleep(600)"
) >"$W/c.psql" 2>&1 &
c_psql=$!
redis_as "$W/c.env" SUBSCRIBE "project.$C.changes" >"$W/c.sub" &
c_sub=$!
vs_on_exit "kill $c_psql $c_sub 2>/dev/null"
c_sessions() { (($(vs_sql "SELECT count(*) FROM pg_stat_activity WHERE usename = 'vsync_c_${C//-/}'") >= 1)); }
expired_grants() { (($(vs_sql "SELECT count(*) FROM vsync_grants WHERE expires_at <= now()") == $1)); }
vs_check "C's PostgreSQL session is open" vs_poll 10 c_sessions
vs_check "C's Redis subscription is open" vs_poll 10 grep -q "^subscribe" "$W/c.sub"
vs_check "C's grant expires" vs_poll 10 expired_grants 1
out=$(ctl revoke --expired 2>&1)
vs_check "revoke --expired ends C's grant only ($out)" grep -qx "1 expired grant revoked" <<<"$out"
vs_check "and says whose" grep -qx "revoked the expired grant of $C" <<<"$out"
vs_wait_exit "$c_psql" 10
vs_check "C's open PostgreSQL session was ended ($VS_EXIT_RC)" test "$VS_EXIT_RC" -ne 124
vs_wait_exit "$c_sub" 10
vs_check "C's open Redis connection was closed ($VS_EXIT_RC)" test "$VS_EXIT_RC" -ne 124
vs_check_eq "C's role is dropped" 0 "$(vs_sql "SELECT count(*) FROM pg_roles WHERE rolname = 'vsync_c_${C//-/}'")"
out=$(redis_as "$W/c.env" PING)
vs_check "C's Redis user no longer logs in ($out)" grep -qi "WRONGPASS\|invalid\|NOAUTH" <<<"$out"
vs_check_eq "B's grant (2 h) is left: PostgreSQL" 3 "$(as "$W/b.env" "SELECT count(*) FROM vsync_manifest('$B')")"
vs_check_eq "and Redis" PONG "$(redis_as "$W/b.env" PING)"
out=$(ctl revoke --expired 2>&1)
vs_check "a second run finds none ($out)" grep -qx "0 expired grants revoked" <<<"$out"

# A grant of C made again while a sweep runs: the sweep's PostgreSQL
# part took the expired row (here: the new row made to look expired,
# with the old password's hash), then the new grant set its Redis
# password. The sweep removes the expired password, not the new one.
vs_check "grant C (--ttl 1s) again" sh -c '"$1" --pg "$2" --redis "$3" grant projc --ttl 1s >"$4"' \
	_ "$CTL" "$ADMIN_PG" "$ADMIN_REDIS" "$W/c2.env"
old_hash=$(vs_sql "SELECT secret_sha256 FROM vsync_grants WHERE project_id = '$C'")
vs_check "the grant keeps its password's SHA-256" grep -qx "[0-9a-f]\{64\}" <<<"$old_hash"
vs_check "grant C (no --ttl)" sh -c '"$1" --pg "$2" --redis "$3" grant projc >"$4"' \
	_ "$CTL" "$ADMIN_PG" "$ADMIN_REDIS" "$W/c3.env"
vs_sql "UPDATE vsync_grants SET expires_at = now() - interval '1 s', secret_sha256 = '$old_hash' WHERE project_id = '$C'" >/dev/null
out=$(ctl revoke --expired 2>&1)
vs_check "revoke --expired takes the row ($out)" grep -qx "1 expired grant revoked" <<<"$out"
vs_check_eq "the new grant's Redis password still logs in" PONG "$(redis_as "$W/c3.env" PING)"

vs_summary
