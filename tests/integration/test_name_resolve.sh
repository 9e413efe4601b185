#!/usr/bin/env bash
#
# test_name_resolve.sh - a mount by project name resolves the name from
# Redis (the relay's name:{<name>}), so with Redis warm it needs no
# PostgreSQL at all; and a mount that verifies believes only a mapping
# signed by the relay for exactly that name.
#
# Covers: vsync-relay --sign-key publishes name:{<name>} -> id, signed;
# with PostgreSQL stopped and a fresh cache dir, a mount by name (with
# --verify-key) comes up from Redis and serves the tree byte for byte, and
# says it took the id from Redis; an unsigned mapping, another project's
# signature put beside this id, another project's signed mapping copied
# under this name, and a mapping signed with another key are each refused
# by a verifying mount (which then needs PostgreSQL: with it stopped, the
# mount fails, and its log says why); a mount without --verify-key takes
# an unsigned mapping.
#
# Needs /dev/fuse (else exit 77), PostgreSQL and Redis (started here).
set -u

# shellcheck source=tests/lib/servers.sh
. "$(dirname "$0")/../lib/servers.sh"

vs_need_fuse
CTL=$VSYNC_BUILD_DIR/agent/vsyncctl
RELAY=$VSYNC_BUILD_DIR/agent/vsync-relay
vs_deadline 300
vs_servers_start all || exit 1
export VS_LOG_DIR=$VS_SERVERS_DIR
W=$VS_SERVERS_DIR/work
mkdir -p "$W"
rcli() { vs_redis_cli "$@"; }

# ---------------------------------------------------------------- projects
for p in named other; do
	mkdir -p "$W/src-$p/src"
	for i in $(seq 1 40); do
		printf '%s file %d\n' "$p" "$i" >"$W/src-$p/src/f$i.js"
	done
	printf '{"name":"%s"}\n' "$p" >"$W/src-$p/package.json"
done
vs_check "vsyncctl init" "$CTL" -q init
vs_check "import two projects" sh -c '"$1" -q import named "$2" && "$1" -q import other "$3"' \
	_ "$CTL" "$W/src-named" "$W/src-other"
ID=$(vs_sql "SELECT vsync_project_id('named')")
OTHER=$(vs_sql "SELECT vsync_project_id('other')")
VERIFY=$("$CTL" keygen "$W/relay.key")
VERIFY=${VERIFY#VSYNC_VERIFY_KEY=}
"$CTL" keygen "$W/wrong.key" >/dev/null
vs_check "relay --once --sign-key fills Redis" "$RELAY" --once --sign-key "$W/relay.key"
SIGNED=$(rcli GET "name:{named}")
vs_check "the relay published name:{named} -> its id, signed ('${SIGNED:0:12}...')" \
	test "${SIGNED:0:5}" = "sig1:" -a "${SIGNED: -36}" = "$ID"
val=$(rcli GET "name:{other}")
vs_check_eq "and name:{other} -> the other id" "$OTHER" "${val: -36}"

# ---------------------------------------------------------------- PostgreSQL stopped
vs_check "PostgreSQL stopped" vs_pg_stop

# mount_named N [ARGS...]: mount 'named' at $W/mN with a fresh cache dir
mount_named() {
	local n=$1
	shift
	mkdir -p "$W/m$n"
	vs_mount named "$W/m$n" --pg "$VSYNC_PG_URL" --redis "$VSYNC_REDIS_URL" \
		--cache-dir "$W/c$n" "$@"
}

t0=$(vs_now_ms)
if mount_named 1 --verify-key "$VERIFY"; then
	vs_pass "a mount by name comes up with PostgreSQL stopped ($(($(vs_now_ms) - t0)) ms)"
	vs_check "it serves the tree" diff -r "$W/src-named" "$W/m1"
	vs_check "it took the id from Redis" grep -q "project 'named' ($ID):.*from Redis" "$VS_MOUNT_LOG"
	vs_umount "$W/m1"
else
	vs_fail "a mount by name with PostgreSQL stopped: expected it mounted, saw it exit"
fi

# refused_named N DESC: with PostgreSQL stopped, a verifying mount must
# not come up on a mapping it may not believe
refused_named() {
	local n=$1 desc=$2
	if mount_named "$n" --verify-key "$VERIFY" 2>/dev/null; then
		vs_fail "$desc: expected the mount refused, saw it mounted"
		vs_umount "$W/m$n"
	elif grep -q "not using the id of project 'named'" "$VS_MOUNT_LOG"; then
		vs_pass "$desc: refused"
	else
		vs_fail "$desc: expected 'not using the id' in the log, saw: $(tail -n 3 "$VS_MOUNT_LOG")"
	fi
}

rcli SET "name:{named}" "$ID" >/dev/null
refused_named 2 "an unsigned mapping"
val=$(rcli GET "name:{other}")
rcli SET "name:{named}" "${val%"$OTHER"}$ID" >/dev/null
refused_named 3 "the other project's signature with this id"
rcli SET "name:{named}" "$val" >/dev/null
refused_named 4 "the other project's signed mapping under this name"

# a mapping signed with another key (by a relay with that key, which needs
# PostgreSQL for it: started again, then stopped)
vs_check "PostgreSQL started again" vs_pg_start_again
rcli DEL "name:{named}" >/dev/null
vs_check "a relay with another key signs the mapping" "$RELAY" --once --sign-key "$W/wrong.key"
vs_check "PostgreSQL stopped again" vs_pg_stop
refused_named 5 "a mapping signed with another key"

# without --verify-key, an unsigned mapping is taken (the unverified mode)
rcli SET "name:{named}" "$ID" >/dev/null
if mount_named 6; then
	vs_pass "without --verify-key an unsigned mapping is used"
	vs_check "and the tree is served" diff -r "$W/src-named" "$W/m6"
	vs_umount "$W/m6"
else
	vs_fail "without --verify-key: expected mounted from the unsigned mapping, saw it exit"
fi
rcli SET "name:{named}" "$SIGNED" >/dev/null

vs_summary
