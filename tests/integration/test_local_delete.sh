#!/usr/bin/env bash
#
# test_local_delete.sh - a delete made in the mount removes, in
# PostgreSQL, what the mount showed, never what someone else made there
# since.
#
# Covers: each case holds the project's row in a psql session with a
# remote change made and not committed yet, so the mount's DELETE is
# committed just after it:
#  - a remote edit of a file deleted here: the edit stays in PostgreSQL
#    (before, the DELETE removed it while the mount showed it: apart for
#    ever);
#  - a remote replacement of a file by a directory holding a file: it
#    stays (before, the DELETE removed the directory and its file there);
#  - a file added remotely to a directory removed here with rm -r: the
#    directory and that file stay, the file deleted here goes (before,
#    the recursive DELETE removed them all there);
# each time the mount shows what PostgreSQL has, /status says in sync,
# and the log says why the delete was not made.
# And with no remote change in between, what the mount had is deleted in
# PostgreSQL: a file deleted here while its save is journaled and not
# committed yet, a directory tree removed with rm -r, a file after a
# remote edit the mount applied, a file moved then deleted here, and 20
# files each written and deleted at once.
#
# Needs /dev/fuse (else exit 77), PostgreSQL (started here).
set -u
# shellcheck source=tests/lib/servers.sh
. "$(dirname "$0")/../lib/servers.sh"

vs_need_fuse
CTL=$VSYNC_BUILD_DIR/agent/vsyncctl
vs_deadline 240
vs_pg_fixture || exit 1
ctl() { timeout -k 5 60 "$CTL" -q "$@"; }

SRC=$W/src
mkdir -p "$SRC/src/ec" "$SRC/src/tree/sub"
printf 'ea v1\n' >"$SRC/src/ea.js"
printf 'eb v1\n' >"$SRC/src/eb.js"
printf 'c v1\n' >"$SRC/src/ec/c.js"
printf 'pd v1\n' >"$SRC/src/pd.js"
printf 're v1\n' >"$SRC/src/re.js"
printf 'mv v1\n' >"$SRC/src/mv.js"
printf 't v1\n' >"$SRC/src/tree/t.js"
printf 'u v1\n' >"$SRC/src/tree/sub/u.js"
vs_check "vsyncctl init" ctl init
vs_check "import" ctl import ld "$SRC"
ID=$(vs_sql "SELECT vsync_project_id('ld')")
MNT=$W/mnt
mkdir -p "$MNT"
PORT=$(vs_free_port) || exit 1
if ! vs_mount ld "$MNT" --cache-dir "$W/cache" --writable \
	--save-quiet-ms 100 --control "127.0.0.1:$PORT"; then
	vs_fail "mount: expected it mounted, saw none (log: $VS_MOUNT_LOG)"
	vs_summary
	exit 1
fi

# PATH: has PostgreSQL a live entry there?
pg_has() { vs_pg_has "$ID" "$1"; }
pg_lacks() { ! pg_has "$1"; }
# PATH: the log says the delete of PATH was not made
not_made() {
	grep -F "delete not made: " "$VS_MOUNT_LOG" | grep -qF "'$1'\""
}
in_sync() { vs_in_sync "$PORT"; }
# DESC SQL: the remote change SQL, made and held; the local command
# after it (the rest of the arguments) waits to be committed after it
# (the held session is not in a subshell: vs_check would end it)
race() {
	local desc=$1 sql=$2 rc=0
	shift 2
	vs_held_begin "r$RACES" "$sql" || rc=$?
	vs_check_eq "$desc: made there, not committed" 0 "$rc"
	RACES=$((RACES + 1))
	vs_check "$desc: done here" "$@"
	vs_check "$desc: its DELETE waits for the remote change" \
		vs_poll 15 vs_pg_lock_waits
	rc=0
	vs_held_commit || rc=$?
	vs_check_eq "$desc: the remote change is committed" 0 "$rc"
}
RACES=0
cat "$MNT/src/ea.js" "$MNT/src/eb.js" "$MNT/src/ec/c.js" >/dev/null

# --- a remote edit of a file deleted here
printf 'ea v2 remote\n' >"$W/ea_v2"
race "a remote edit" \
	"SELECT seq FROM vsync_write_file('$ID', 'src/ea.js', convert_to('ea v2 remote' || chr(10), 'UTF8'), NULL, NULL, NULL, 'other');" \
	rm "$MNT/src/ea.js"
vs_check "the delete is not made" vs_poll 15 not_made src/ea.js
vs_check "PostgreSQL keeps the remote edit" \
	bash -c "'$CTL' -q cat ld src/ea.js | cmp -s - '$W/ea_v2'"
vs_check "the mount shows it" vs_poll 10 cmp -s "$MNT/src/ea.js" "$W/ea_v2"
vs_check "the mount is in sync (GET /status)" vs_poll 10 in_sync
vs_check "the mount shows what PostgreSQL has" \
	vs_poll 10 vs_mount_equals_pg ld "$MNT"

# --- a file replaced remotely by a directory, deleted here
race "a file replaced by a directory" \
	"SELECT vsync_delete('$ID', 'src/eb.js', NULL, NULL, 'other'); SELECT vsync_mkdir('$ID', 'src/eb.js', NULL, NULL, 'other'); SELECT seq FROM vsync_write_file('$ID', 'src/eb.js/x.js', convert_to('x', 'UTF8'), NULL, NULL, NULL, 'other');" \
	rm "$MNT/src/eb.js"
vs_check "the delete is not made" vs_poll 15 not_made src/eb.js
vs_check "PostgreSQL keeps the directory's file" pg_has src/eb.js/x.js
vs_check "the mount shows it" vs_poll 10 test -f "$MNT/src/eb.js/x.js"
vs_check "the mount is in sync (GET /status)" vs_poll 10 in_sync
vs_check "the mount shows what PostgreSQL has" \
	vs_poll 10 vs_mount_equals_pg ld "$MNT"

# --- a file added remotely to a directory removed here
race "a file added to a directory" \
	"SELECT seq FROM vsync_write_file('$ID', 'src/ec/new.js', convert_to('new', 'UTF8'), NULL, NULL, NULL, 'other');" \
	rm -r "$MNT/src/ec"
vs_check "the directory's delete is not made" vs_poll 15 not_made src/ec
vs_check "PostgreSQL keeps the new file" pg_has src/ec/new.js
vs_check "the file deleted here is gone there" pg_lacks src/ec/c.js
vs_check "the mount shows the new file" vs_poll 10 test -f "$MNT/src/ec/new.js"
vs_check "the mount is in sync (GET /status)" vs_poll 10 in_sync
vs_check "the mount shows what PostgreSQL has" \
	vs_poll 10 vs_mount_equals_pg ld "$MNT"

# --- no remote change in between: a file deleted while its save is
# journaled, not committed (an unrelated change holds the project's row)
bytes_journaled() { vs_journaled "$W/cache" "$ID" "$1"; }
rc=0
vs_held_begin hold \
	"SELECT seq FROM vsync_write_file('$ID', 'src/other.js', convert_to('o', 'UTF8'), NULL, NULL, NULL, 'other');" ||
	rc=$?
vs_check_eq "an unrelated change holds the project's row" 0 "$rc"
printf 'pd local edit\n' >>"$MNT/src/pd.js"
printf 'pd v1\npd local edit\n' >"$W/pd_saved"
vs_check "the save of src/pd.js is journaled" \
	vs_poll 15 bytes_journaled "$W/pd_saved"
vs_check "and deleted here" rm "$MNT/src/pd.js"
rc=0
vs_held_commit || rc=$?
vs_check_eq "the unrelated change is committed" 0 "$rc"
vs_check "PostgreSQL deletes it (after the save)" vs_poll 15 pg_lacks src/pd.js
vs_check "its save was committed first" \
	test "$(vs_sql "SELECT max(version) FROM project_files WHERE project_id = '$ID' AND file_path = 'src/pd.js'")" = 3
vs_check "a tree removed with rm -r" rm -r "$MNT/src/tree"
vs_check "PostgreSQL deletes it" vs_poll 15 pg_lacks src/tree
vs_check "and what it held" pg_lacks src/tree/sub/u.js
# a remote edit the mount has applied is what a delete here removes
printf 're v2 remote\n' >"$W/re_v2"
vs_check "a remote edit" ctl put ld src/re.js "$W/re_v2"
vs_check "the mount shows it" vs_poll 10 cmp -s "$MNT/src/re.js" "$W/re_v2"
vs_check "deleted here" rm "$MNT/src/re.js"
vs_check "PostgreSQL deletes it" vs_poll 15 pg_lacks src/re.js
# a file moved, then deleted, here
vs_check "a file moved here" mv "$MNT/src/mv.js" "$MNT/src/mv2.js"
vs_check "then deleted" rm "$MNT/src/mv2.js"
vs_check "PostgreSQL has neither path" \
	vs_poll 15 eval 'pg_lacks src/mv2.js && pg_lacks src/mv.js'
# files written and deleted at once (a save may be journaled, or
# committed, just before the delete): all deleted there
for i in $(seq 1 20); do
	printf 'tmp %s\n' "$i" >"$MNT/src/tmp$i.js" && rm "$MNT/src/tmp$i.js"
done
no_tmp() {
	in_sync && [[ "$(vs_sql "SELECT count(*) FROM project_files
		WHERE project_id = '$ID' AND file_path LIKE 'src/tmp%'
		AND is_current AND NOT is_deleted")" == 0 ]]
}
vs_check "20 files written and deleted at once: none left there" \
	vs_poll 15 no_tmp
vs_check "the mount is in sync (GET /status)" vs_poll 10 in_sync
vs_check "the mount shows what PostgreSQL has" \
	vs_poll 10 vs_mount_equals_pg ld "$MNT"

vs_summary
