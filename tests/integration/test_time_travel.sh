#!/usr/bin/env bash
#
# test_time_travel.sh - the project as it was at a change or a time:
# vsync_manifest_at / vsync_seq_at in PostgreSQL and `vsyncctl diff`.
#
# A project is imported (seq S1: an import may take one seq per entry) and
# changed by vsyncctl: an edit, a chmod,
# a new file in a new directory, a delete, a directory rename with a file
# in it, a symlink. Checked:
#  - vsync_manifest_at at the last seq equals vsync_manifest, row for row,
#    and at every seq equals the tree replayed by hand (spot checks: the
#    renamed directory's file is at its old path before the rename, at the
#    new one after; the deleted file is there before its delete);
#  - `vsyncctl diff P FROM TO` by seq prints exactly the expected A/D/M
#    lines in path order (content, mode, kind changes named), and nothing
#    for a seq against itself; reversed, A and D swap;
#  - by time: times taken between changes give the same lines as the seqs
#    they fall after; a time before the first change is seq 0 (everything
#    added);
#  - a seq past the last change exits 3 with a clear message, a time
#    PostgreSQL cannot read exits 6;
#  - vsync-mount --at SEQ and --at TIME beside a live mount of the same
#    project, all on one cache dir: the --at mounts show the old tree and
#    bytes while the live one shows the new (and follows a later edit the
#    --at mounts do not see); --at is read-only (EROFS, on synced and
#    local-only paths); its /status says "pinned" (vsync-mount --status
#    finds it, and still finds the live mount, during and after); each
#    has its own state dir and lock (a second
#    --at of the same version is refused, naming the holder); the live
#    mount's cached manifest is untouched; a bad --at fails the mount
#    with a clear error; --at with --writable is refused.
#
# Needs /dev/fuse (else exit 77); starts PostgreSQL.
set -u

# shellcheck source=tests/lib/servers.sh
. "$(dirname "$0")/../lib/servers.sh"

vs_need_fuse
CTL=$VSYNC_BUILD_DIR/agent/vsyncctl
MOUNT=$VSYNC_BUILD_DIR/agent/vsync-mount
vs_deadline 180
vs_pg_fixture || exit 1

SRC=$W/src
mkdir -p "$SRC/src/lib" "$SRC/bin"
echo "export const a = 1;" >"$SRC/src/a.js"
echo "export const gone = 1;" >"$SRC/src/gone.js"
echo "export const l = 1;" >"$SRC/src/lib/l.js"
echo "#!/bin/sh" >"$SRC/bin/run.sh"
chmod 0644 "$SRC/bin/run.sh"

# stamp: a time between two changes (PostgreSQL's clock is this machine's)
stamp() { date -u +%Y-%m-%dT%H:%M:%S.%6NZ; }

T0=$(stamp)
vs_check "init and import" sh -c '"$1" -q init && "$1" -q import tt "$2"' _ "$CTL" "$SRC"
ID=$(vs_sql "SELECT id FROM projects WHERE name = 'tt'")
head_seq() { vs_sql "SELECT vsync_project_seq('$ID')"; }
S1=$(head_seq)
T1=$(stamp)
echo "export const a = 2; // longer" >"$W/a2"
vs_check "edit src/a.js" "$CTL" -q put tt src/a.js "$W/a2"
S2=$(head_seq)
vs_check "chmod bin/run.sh" "$CTL" -q put tt bin/run.sh "$SRC/bin/run.sh" --mode 0755
S3=$(head_seq)
T3=$(stamp)
echo "new" | vs_check "a new file in a new dir" "$CTL" -q put tt docs/new.md -
vs_check "rm src/gone.js" "$CTL" -q rm tt src/gone.js
S5=$(head_seq)
vs_check "mv src/lib src/util" "$CTL" -q mv tt src/lib src/util
S6=$(head_seq)
vs_check "a symlink through SQL" vs_sql \
	"SELECT vsync_write_file('$ID', 'latest', convert_to('src/a.js', 'UTF8'), NULL, NULL, NULL, 'test', 'symlink')"
S7=$(head_seq)
vs_check_eq "one seq per change after the import" "1 2 4 5 6" \
	"$((S2 - S1)) $((S3 - S1)) $((S5 - S1)) $((S6 - S1)) $((S7 - S1))"

# --- vsync_manifest_at
vs_check_eq "vsync_manifest_at(last) is vsync_manifest, row for row" 0 \
	"$(vs_sql "SELECT count(*) FROM ((SELECT * FROM vsync_manifest('$ID') EXCEPT ALL SELECT * FROM vsync_manifest_at('$ID', $S7)) UNION ALL (SELECT * FROM vsync_manifest_at('$ID', $S7) EXCEPT ALL SELECT * FROM vsync_manifest('$ID'))) d")"
paths_at() { vs_sql "SELECT string_agg(path, ' ' ORDER BY path) FROM vsync_manifest_at('$ID', $1) WHERE kind = 'file'"; }
vs_check_eq "at seq 0: nothing" "" "$(paths_at 0)"
vs_check_eq "after the import: its files" "bin/run.sh src/a.js src/gone.js src/lib/l.js" "$(paths_at "$S1")"
vs_check_eq "after the rm: gone.js gone, docs/new.md there" "bin/run.sh docs/new.md src/a.js src/lib/l.js" "$(paths_at "$S5")"
vs_check_eq "after the mv: lib renamed to util" "bin/run.sh docs/new.md src/a.js src/util/l.js" "$(paths_at "$S6")"
vs_check_eq "src/a.js after the import is version 1, after the edit version 2" "1 2" \
	"$(vs_sql "SELECT (SELECT version FROM vsync_manifest_at('$ID', $S1) WHERE path = 'src/a.js') || ' ' || (SELECT version FROM vsync_manifest_at('$ID', $S2) WHERE path = 'src/a.js')")"

# --- vsyncctl diff by seq
want_1_7="A docs (dir)
A docs/new.md (file, 4 bytes)
M bin/run.sh (mode 0644 -> 0755)
A latest (symlink -> src/a.js)
M src/a.js (v1 -> v2, 20 -> 30 bytes)
D src/gone.js (file, 23 bytes)
D src/lib (dir)
D src/lib/l.js (file, 20 bytes)
A src/util (dir)
A src/util/l.js (file, 20 bytes)"
sorted() { LC_ALL=C sort -k2,2; }
out=$("$CTL" -q diff tt "$S1" "$S7")
vs_check_eq "diff from the import to the last change" "$(sorted <<<"$want_1_7")" "$out"
vs_check_eq "diff in path order" "$(sorted <<<"$out")" "$out"
vs_check_eq "a seq against itself: no difference" "" "$("$CTL" -q diff tt "$S7" "$S7")"
vs_check_eq "reversed: A and D swap" \
	"$(sed -e 's/^A /X /' -e 's/^D /A /' -e 's/^X /D /' <<<"$out" | sed -e 's/^M src\/a.js .*/M src\/a.js (v2 -> v1, 30 -> 20 bytes)/' -e 's/^M bin\/run.sh .*/M bin\/run.sh (mode 0755 -> 0644)/')" \
	"$("$CTL" -q diff tt "$S7" "$S1")"
vs_check "diff prints its summary on stderr" sh -c '"$1" diff tt "$2" "$3" 2>&1 >/dev/null | grep -qx "5 added, 3 deleted, 2 changed"' _ "$CTL" "$S1" "$S7"
vs_check_eq "a file that became a directory" "M src/a.js (file -> dir)" \
	"$("$CTL" -q rm tt src/a.js && "$CTL" -q mkdir tt src/a.js && "$CTL" -q diff tt "$S7" "$(head_seq)")"

# --- by time
vs_check_eq "diff by times (after the import, after the chmod) = by their seqs" \
	"$("$CTL" -q diff tt "$S1" "$S3")" "$("$CTL" -q diff tt "$T1" "$T3")"
vs_check_eq "a time before the import is seq 0: everything added" \
	"$("$CTL" -q diff tt 0 "$S1")" "$("$CTL" -q diff tt "$T0" "$T1")"
vs_check "diff from 0 adds the import" sh -c '"$1" -q diff tt 0 "$2" | grep -qx "A src/gone.js (file, 23 bytes)"' _ "$CTL" "$S1"

# --- errors
out=$("$CTL" diff tt 1 999 2>&1)
vs_check_eq "a seq past the last change exits 3" 3 "$?"
vs_check "and says so" grep -q "no change 999 yet (the last is $(head_seq))" <<<"$out"
out=$("$CTL" diff tt 1 "not a time" 2>&1)
vs_check_eq "a time PostgreSQL cannot read exits 6" 6 "$?"
vs_check_eq "usage" 2 "$("$CTL" diff tt 1 >/dev/null 2>&1; echo $?)"

# --- vsync-mount --at beside a live mount, one cache dir
LIVE=$W/live AT=$W/at ATT=$W/att AT2=$W/at2
mkdir -p "$LIVE" "$AT" "$ATT" "$AT2"
S_LIVE=$(head_seq)
P_LIVE=$(vs_free_port)
vs_mount tt "$LIVE" --cache-dir "$W/cache" --control "127.0.0.1:$P_LIVE" || vs_fail "live mount"
P_AT=$(vs_free_port)
vs_mount tt "$AT" --cache-dir "$W/cache" --at "$S1" --control "127.0.0.1:$P_AT" || vs_fail "mount --at $S1 beside it"
vs_mount tt "$ATT" --cache-dir "$W/cache" --at "$T3" || vs_fail "mount --at TIME beside them"
vs_check_eq "--at: the old bytes of src/a.js" "export const a = 1;" "$(cat "$AT/src/a.js")"
vs_check "the live mount: src/a.js is a directory now" test -d "$LIVE/src/a.js"
vs_check "--at: src/gone.js and src/lib are there, src/util is not" \
	test -f "$AT/src/gone.js" -a -f "$AT/src/lib/l.js" -a ! -e "$AT/src/util"
vs_check_eq "--at: the old mode of bin/run.sh" 644 "$(stat -c %a "$AT/bin/run.sh")"
vs_check_eq "--at TIME (after the chmod): the new mode, the edit, no docs/ yet" "755 export const a = 2; // longer no" \
	"$(stat -c %a "$ATT/bin/run.sh") $(cat "$ATT/src/a.js") $([[ -e $ATT/docs ]] && echo yes || echo no)"
out=$(echo x 2>&1 >"$AT/src/a.js")
vs_check "--at is read-only on a synced path" grep -q "Read-only file system" <<<"$out"
out=$(mkdir "$AT/node_modules" 2>&1)
vs_check "and on a local-only path" grep -q "Read-only file system" <<<"$out"
out=$("$MOUNT" tt "$AT2" --cache-dir "$W/cache" --at "$S1" -f 2>&1)
vs_check "a second --at of the same version on the cache dir is refused" \
	grep -qF "is in use by another vsync-mount (pid ${VS_MOUNT_PIDS[$AT]})" <<<"$out"
echo "export const l = 3;" >"$W/l3"
vs_check "an edit after the mounts" "$CTL" -q put tt src/util/l.js "$W/l3"
vs_check "the live mount follows it" vs_poll 10 grep -q "l = 3" "$LIVE/src/util/l.js"
vs_check_eq "the --at mount does not" "export const l = 1;" "$(cat "$AT/src/lib/l.js")"
vs_check "each --at has its own state dir" test -d "$W/cache/projects/$ID@$S1" -a -d "$W/cache/projects/$ID@$S3"
out=$("$MOUNT" --status --cache-dir "$W/cache" "$AT" 2>&1)
vs_check_eq "--status of the --at mount: not in sync (exit 1)" 1 "$?"
vs_check "and says pinned" grep -q "pinned" <<<"$out"
out=$("$MOUNT" --status --cache-dir "$W/cache" "$LIVE" 2>&1)
vs_check "--status of the live mount still finds it" grep -qv "no mount with a control endpoint" <<<"$out"
vs_umount "$AT"
out=$("$MOUNT" --status --cache-dir "$W/cache" "$LIVE" 2>&1)
vs_check "and after the --at mount stopped" grep -qv "no mount with a control endpoint" <<<"$out"
vs_umount "$ATT"
vs_check_eq "the live mount's cached manifest is still its own" "$S_LIVE" \
	"$(head -n 1 "$W/cache/projects/$ID/manifest" | awk '{print $4}')"
vs_umount "$LIVE"
out=$("$MOUNT" tt "$AT2" --cache-dir "$W/cache" --at 99999 -f 2>&1)
vs_check_eq "--at a seq past the last change: the mount fails" 1 "$?"
vs_check "saying why" grep -q "no change 99999 yet" <<<"$out"
out=$("$MOUNT" tt "$AT2" --cache-dir "$W/cache" --at "not a time" -f 2>&1)
vs_check "--at a bad time: neither a change seq nor a time" grep -q "neither a change seq nor a time" <<<"$out"
out=$("$MOUNT" tt "$AT2" --cache-dir "$W/cache" --at 1 --writable -f 2>&1)
vs_check_eq "--at with --writable: usage error" 2 "$?"
vs_check "naming it" grep -q "read-only" <<<"$out"
vs_check "nothing is left mounted" sh -c '! grep -q " $1 " /proc/mounts' _ "$AT2"
vs_summary
