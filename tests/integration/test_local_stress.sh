#!/usr/bin/env bash
#
# test_local_stress.sh - concurrent namespace operations on a local-only
# directory (node_modules/) of a mount leave a tree as consistent as the
# disk below it.
#
# local_stress (tests/integration/local_stress.c) runs LS_PROCS (4)
# processes of LS_OPS (2,000) random create, write, truncate, link, unlink,
# mkdir, rmdir and rename (across directories, over existing entries) on a
# shared set of names, first on a plain directory (the control: the same
# checks must pass there), then LS_ROUNDS (3) times, each with the next
# seed, in a fresh node_modules/stressN/ of a --writable mount (one round
# does not always hit a race). No call may fail with an errno a local disk
# does not give. Then, with nothing running:
#   - two `find` walks give the same entries (kind, size, link count);
#   - the walk equals the one of the upper directory below the mount;
#   - `find -exec stat`, `tar -c` (reading every file) and `du` report no
#     error;
#   - `rm -rf` of the tree succeeds and leaves nothing, above or below.
# Each run prints its seed (LS_SEED=N repeats the choices) and its counts.
#
# Needs /dev/fuse (else exit 77), PostgreSQL (started here).
# shellcheck disable=SC2016
set -u

# shellcheck source=tests/lib/servers.sh
. "$(dirname "$0")/../lib/servers.sh"

vs_need_fuse
CTL=$VSYNC_BUILD_DIR/agent/vsyncctl
LS=$VSYNC_BUILD_DIR/tests/local_stress
for b in "$CTL" "$LS"; do
	if [[ ! -x "$b" ]]; then
		echo "test_local_stress: $b is missing (build it first)" >&2
		exit 1
	fi
done
: "${LS_PROCS:=4}"
: "${LS_OPS:=2000}"
: "${LS_ROUNDS:=3}"
: "${LS_SEED:=$(((RANDOM << 15) | RANDOM))}"
vs_deadline 120
vs_pg_fixture || exit 1
vs_log "local_stress seed $LS_SEED (LS_SEED=$LS_SEED repeats the choices)"

# walk DIR: one line per entry below DIR, sorted: kind, path, and for a
# file its size and link count
walk() {
	(cd "$1" && find . -mindepth 1 \( -type f -printf 'f %P %s %n\n' \) \
		-o -printf '%y %P\n') | LC_ALL=C sort
}

# stress LABEL SEED DIR [UPPER]: run local_stress in DIR, then the idle
# checks (against UPPER, the same tree below the mount, if given)
stress() {
	local label=$1 seed=$2 dir=$3 upper=${4:-} rc=0 w1 w2 err
	mkdir -p "$dir"
	"$LS" -p "$LS_PROCS" -n "$LS_OPS" -S "$seed" "$dir" \
		>"$W/$label.log" 2>&1 || rc=$?
	grep -E '^local_stress: [0-9]+ ops' "$W/$label.log" | sed "s/^/# $label: /" >&2
	vs_check_eq "$label: no unexpected errno in $((LS_PROCS * LS_OPS)) ops" \
		0 "$rc$( ((rc == 0)) || grep -m 3 UNEXPECTED "$W/$label.log")"

	w1=$(walk "$dir" 2>"$W/$label.walk1.err")
	w2=$(walk "$dir" 2>"$W/$label.walk2.err")
	printf '# %s: walks of %d and %d entries\n' "$label" \
		"$(grep -c . <<<"$w1")" "$(grep -c . <<<"$w2")" >&2
	vs_check_eq "$label: the first walk reports no error" "" \
		"$(head -n 3 "$W/$label.walk1.err")"
	if [[ "$w1" == "$w2" ]]; then
		vs_pass "$label: two walks of the idle tree agree"
	else
		vs_fail "$label: two walks of the idle tree agree: $(diff <(echo "$w1") <(echo "$w2") | head -n 10)"
	fi
	if [[ -n "$upper" ]]; then
		if [[ "$w1" == "$(walk "$upper")" ]]; then
			vs_pass "$label: the walk equals the upper directory's"
		else
			vs_fail "$label: the walk equals the upper directory's (< mount, > upper): $(diff <(echo "$w1") <(walk "$upper") | head -n 10)"
		fi
	fi
	err=$(find "$dir" -exec stat -c '%n %s' {} + 2>&1 >/dev/null)
	vs_check_eq "$label: find -exec stat reports no error" "" "$(head -n 3 <<<"$err")"
	err=$(tar -C "$dir" -cf - . 2>&1 >/dev/null)
	vs_check_eq "$label: tar -c of the tree reports no error" "" "$(head -n 3 <<<"$err")"
	err=$(tar -C "$dir" -cf /dev/null . 2>&1)
	vs_check_eq "$label: tar -cf /dev/null reports no error" "" "$(head -n 3 <<<"$err")"
	err=$(du -s "$dir" 2>&1 >/dev/null)
	vs_check_eq "$label: du reports no error" "" "$(head -n 3 <<<"$err")"
	vs_check "$label: rm -rf of the tree succeeds" rm -rf "$dir"
	vs_check "$label: nothing is left" test ! -e "$dir"
	if [[ -n "$upper" ]]; then
		vs_check "$label: nothing is left below the mount" test ! -e "$upper"
	fi
}

# ---------------------------------------------------------------- control
stress "plain directory" "$LS_SEED" "$W/plain"

# ---------------------------------------------------------------- mount
SRC=$W/src
mkdir -p "$SRC/src"
printf 'readme\n' >"$SRC/README.md"
vs_check "init and import" sh -c '"$1" -q init && "$1" -q import w "$2"' _ "$CTL" "$SRC"
MNT=$W/mnt
mkdir -p "$MNT"
vs_mount w "$MNT" --cache-dir "$W/cache" --writable --author stress || exit 1
for ((round = 1; round <= LS_ROUNDS; round++)); do
	mkdir -p "$MNT/node_modules/stress$round"
	# the upper directory: where the cache dir keeps node_modules/stressN
	UPPER=$(find "$W/cache" -type d -path "*/local/node_modules/stress$round" -print -quit)
	vs_check "node_modules/stress$round is in the upper directory" test -n "$UPPER"
	stress "node_modules round $round" $((LS_SEED + round)) \
		"$MNT/node_modules/stress$round" "$UPPER"
done
vs_check "the mount is still mounted" vs_is_mounted "$MNT"

vs_umount "$MNT"
vs_summary
