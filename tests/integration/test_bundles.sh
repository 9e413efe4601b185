#!/usr/bin/env bash
#
# test_bundles.sh - a cold mount takes the project's small files from the
# relay's bundles (bundle:{id}:<bundle id>, listed in the signed tree's
# index; docs/protocol.md, "Bundles"), and falls back to the per-object
# path when they are tampered with or gone.
#
# Covers:
#   1. vsync-relay --once --sign-key writes tree:{id} with a bundle index
#      and the bundles it lists, one copy of each content (two files with
#      the same bytes are packed once).
#   2. With every blob:{id}:* deleted and PostgreSQL stopped, a cold mount
#      (--verify-key) gets the whole tree from the bundles alone: every
#      file local, byte-identical to the imported tree, and its log says
#      all bundles were used.
#   3. A bundle with a changed byte is refused (its SHA-256 is not the
#      signed index's: "refusing bundle", counted as unverified) and its
#      files come one by one (from PostgreSQL: Redis has no blobs): the
#      mount equals PostgreSQL.
#   4. No bundles at all (an old relay's tree, or evicted keys): the mount
#      uses none and still equals PostgreSQL.
#
# Every wait polls with a deadline; every mount is unmounted at exit.
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
PSQL=$VS_PG_BIN/psql
sql() { "$PSQL" -X -At -v ON_ERROR_STOP=1 "$VSYNC_PG_URL" -c "$1"; }
rcli() { vs_redis_cli "$@"; }

# ---------------------------------------------------------------- a project
SRC=$W/src
mkdir -p "$SRC/src" "$SRC/lib/a" "$SRC/lib/b"
printf '{"name":"bundles","scripts":{"dev":"vite"}}\n' >"$SRC/package.json"
printf '<!doctype html><div id=root></div>\n' >"$SRC/index.html"
printf 'import App from "./App.jsx"\n' >"$SRC/src/main.jsx"
# 150 modules of 300 random bytes each (base64), from one read of
# /dev/urandom: two processes, not two a file
i=0
while IFS= read -r b64; do
	i=$((i + 1))
	printf 'module %d %s\n' "$i" "$b64" >"$SRC/lib/a/m$i.js"
done < <(head -c 45000 /dev/urandom | base64 -w 400)
printf 'same bytes\n' >"$SRC/lib/b/one.txt"
printf 'same bytes\n' >"$SRC/lib/b/two.txt"
: >"$SRC/lib/b/empty.txt"
head -c 60000 /dev/urandom | base64 -w0 | head -c 60000 >"$SRC/lib/b/near-max.js"
NFILES=$(find "$SRC" -type f | wc -l | tr -d ' ')
NOBJ=$(find "$SRC" -type f -exec sha256sum {} + | awk '{ print $1 }' | sort -u | wc -l | tr -d ' ')

vs_check "vsyncctl init" "$CTL" -q init
vs_check "import the project ($NFILES files, $NOBJ contents)" "$CTL" -q import bundles "$SRC"
ID=$(sql "SELECT vsync_project_id('bundles')")
key=$("$CTL" keygen "$W/relay.key" 2>/dev/null)
VERIFY=${key#VSYNC_VERIFY_KEY=}
vs_check "relay --once --sign-key fills Redis" "$RELAY" --once --sign-key "$W/relay.key"

# ---------------------------------------------------------------- 1. the index
TK="tree:{$ID}"
HDR=$(rcli GETRANGE "$TK" 0 200 | head -n 1)
read -r _ _ SEQ MLEN ILEN _ <<<"$HDR"
vs_check "the tree is at the project's seq" test "$SEQ" = "$(sql "SELECT vsync_project_seq('$ID')")"
vs_check "the tree has a bundle index ($ILEN bytes)" test "${ILEN:-0}" -gt 0
mapfile -t BUNDLES < <(rcli KEYS "bundle:{$ID}:*")
NB=${#BUNDLES[@]}
vs_check "the relay wrote bundles ($NB)" test "$NB" -ge 1
vs_log "tree: manifest $MLEN bytes, index $ILEN bytes, $NB bundles"

# the mount equals PostgreSQL: vsyncctl export, then diff (one
# connection, not one per file as vs_mount_equals_pg)
equals_pg() {
	rm -rf "$W/export" && "$CTL" -q --pg "$VSYNC_PG_URL" export bundles "$W/export" &&
		diff -r "$W/export" "$1"
}
objects() { find "$1/objects" -type f 2>/dev/null | wc -l | tr -d ' '; }
all_local() { (($(objects "$1") >= NOBJ)); }
used() { grep -q "prefetch: [0-9]* files from $2 of $NB bundles" "$1"; }

# ---------------------------------------------------------------- 2. bundles alone
rcli EVAL "local n = 0 for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) n = n + 1 end return n" 0 "blob:{$ID}:*" >/dev/null
vs_check_eq "no blob of the project is left in Redis" 0 "$(rcli KEYS "blob:{$ID}:*" | grep -c .)"
vs_pg_stop
C1=$W/c1 M1=$W/m1
mkdir -p "$M1"
if ! vs_mount "$ID" "$M1" --redis "$VSYNC_REDIS_URL" --verify-key "$VERIFY" --cache-dir "$C1"; then
	vs_fail "mount 1: expected $M1 mounted (PostgreSQL stopped), saw none"
	vs_summary
	exit 1
fi
L1=$VS_MOUNT_LOG
vs_check "mount 1 read the tree from Redis" grep -q "entries at change $SEQ from Redis (the tree" "$L1"
vs_check "mount 1 used all $NB bundles" vs_poll 30 used "$L1" "$NB"
vs_check "every content is local ($NOBJ objects)" vs_poll 30 all_local "$C1"
vs_check "the mount equals the imported tree, from bundles alone" diff -r "$SRC" "$M1"
vs_check "unmount 1" vs_umount "$M1"
vs_pg_start_again || {
	vs_fail "PostgreSQL did not start again"
	vs_summary
	exit 1
}

# ---------------------------------------------------------------- 3. a tampered bundle
rcli SETRANGE "${BUNDLES[0]}" 40 XXXX >/dev/null
TAMPERED=${BUNDLES[0]##*:}
C2=$W/c2 M2=$W/m2
mkdir -p "$M2"
if vs_mount bundles "$M2" --pg "$VSYNC_PG_URL" --redis "$VSYNC_REDIS_URL" \
	--verify-key "$VERIFY" --cache-dir "$C2"; then
	L2=$VS_MOUNT_LOG
	vs_check "mount 2 refused the tampered bundle" \
		vs_poll 30 grep -q "refusing bundle ${TAMPERED:0:12}" "$L2"
	vs_check "mount 2 used the other bundles" vs_poll 30 used "$L2" "$((NB - 1))"
	vs_check "every content is local ($NOBJ objects)" vs_poll 30 all_local "$C2"
	vs_check "the mount equals PostgreSQL" equals_pg "$M2"
	vs_check "unmount 2" vs_umount "$M2"
else
	vs_fail "mount 2: expected $M2 mounted, saw none"
fi

# ---------------------------------------------------------------- 4. no bundles
for b in "${BUNDLES[@]}"; do rcli DEL "$b" >/dev/null; done
C3=$W/c3 M3=$W/m3
mkdir -p "$M3"
if vs_mount bundles "$M3" --pg "$VSYNC_PG_URL" --redis "$VSYNC_REDIS_URL" \
	--verify-key "$VERIFY" --cache-dir "$C3"; then
	L3=$VS_MOUNT_LOG
	vs_check "mount 3 found no bundle" vs_poll 30 used "$L3" 0
	vs_check "every content is local ($NOBJ objects)" vs_poll 30 all_local "$C3"
	vs_check "the mount equals PostgreSQL" equals_pg "$M3"
	vs_check "unmount 3" vs_umount "$M3"
else
	vs_fail "mount 3: expected $M3 mounted, saw none"
fi
vs_summary
