#!/usr/bin/env bash
#
# test_remote_delete.sh - a remote deletion of a file with local changes
# not saved yet keeps the file, and its save re-creates it in PostgreSQL.
#
# Covers: with a long quiet period (--save-quiet-ms 4000) a written file
# is dirty for seconds. `vsyncctl rm` of it, and `rm -r` of a directory
# holding one dirty file and one clean one, and `vsyncctl mv` of a dirty
# file, arrive meanwhile: the dirty
# files stay in the mount with their local bytes (so does the directory
# above one), the clean one goes, the move's new path gets the committed
# bytes, and the log says why. Once the quiet period ends, the saves
# re-create the three files at their old paths in PostgreSQL with the
# local bytes (a conflict over the deletion), and the mount shows what
# PostgreSQL has. Before, the mount removed the dirty files: the writes
# made after were lost and PostgreSQL's re-created file never came back
# to the mount (the mount's own change).
# Then a local save merged with a remote edit while the file was written
# again (PostgreSQL stopped meanwhile, so the merge comes after the
# second write): the second save is merged in turn, and PostgreSQL and
# the mount end with all three edits, no conflict.
# A dirty file replaced remotely by a directory or a symlink, and a
# directory a remote rm -r left for a dirty file replaced by a file, go
# aside to NAME.vsync-conflict, where their saves put them in PostgreSQL.
# So does a dirty file a remote rename moves another file onto (the
# rename's handler removed it with its writes), and the rename is shown;
# one whose save is journaled already stays, as that save is committed
# there over the rename.
# Last, a file replaced remotely by a directory while its save is
# journaled and held back (not committed): the save PostgreSQL refuses at
# the old path is made again aside, and the mount ends in sync; so is one
# refused before the updater applies the remote change (held back).
# And a remote rename of a directory onto a file with local changes (one
# PostgreSQL no longer has, one it never had, one whose save is
# journaled) moves the file aside as a remote mkdir there does. A local
# mv of a synced file to a path a remote change makes a directory (mkdir,
# a directory moved there) before the rename is committed: the file goes
# aside, PostgreSQL refuses the rename, and the file is saved aside and
# its old path deleted there. One whose old path a remote delete removes
# first is saved at its new path (PostgreSQL refuses the rename: no such
# file); one refused at a directory and deleted here since has its old
# path deleted there all the same. One with no free name beside it stays,
# and its save is refused less and less often.
#
# Needs /dev/fuse (else exit 77), PostgreSQL (started here).
set -u
# shellcheck source=tests/lib/servers.sh
. "$(dirname "$0")/../lib/servers.sh"

vs_need_fuse
CTL=$VSYNC_BUILD_DIR/agent/vsyncctl
vs_deadline 480
vs_pg_fixture || exit 1
ctl() { timeout -k 5 60 "$CTL" -q "$@"; }

SRC=$W/src
mkdir -p "$SRC/src/d"
printf 'a v1\n' >"$SRC/src/a.js"
printf 'b v1\n' >"$SRC/src/d/b.js"
printf 'c v1\n' >"$SRC/src/d/c.js"
printf 'keep\n' >"$SRC/src/other.js"
printf 'r v1\n' >"$SRC/src/r.js"
mkdir -p "$SRC/src/mv/sub" "$SRC/src/mv/deep"
printf 'j v1\n' >"$SRC/src/mv/j.js"
printf 'c v1\n' >"$SRC/src/mv/c.js"
printf 'k v1\n' >"$SRC/src/mv/sub/k.js"
printf 's v1\n' >"$SRC/src/mv/sub/s.js"
printf 'x v1\n' >"$SRC/src/mv/deep/x.js"
mkdir -p "$SRC/src/hv"
printf 'h v1\n' >"$SRC/src/hv/h.js"
printf 'c v1\n' >"$SRC/src/hv/c.js"
printf 'o v1\n' >"$SRC/src/o.js"
mkdir -p "$SRC/src/ke/sub" "$SRC/src/kd/sub"
printf 'g v1\n' >"$SRC/src/ke/sub/g.js"
printf 'h v1\n' >"$SRC/src/kd/h.js"
printf 'i v1\n' >"$SRC/src/kd/sub/i.js"
# (the deep trees are put where their sections use them, and removed
# after: every vs_mount_equals_pg walks them, about 1 s for 1,100 levels)
DEEP=src/dp$(printf '/a%.0s' $(seq 1 400)) # 400 levels
mkdir -p "$SRC/src/dp"
printf 'c v1\n' >"$SRC/src/dp/c.js"
mkdir -p "$SRC/src/lg" "$SRC/src/many"
printf 'l v1\n' >"$SRC/src/lg/l.js"
printf 'c v1\n' >"$SRC/src/lg/c.js"
mkdir -p "$SRC/src/sp/m"
for f in a b z; do printf '%s v1\n' "$f" >"$SRC/src/sp/$f.js"; done
printf 'q v1\n' >"$SRC/src/sp/m/q.js"
mkdir -p "$SRC/src/b1" "$SRC/src/b2"
printf 'x v1\n' >"$SRC/src/b1/x.js"
printf 'c v1\n' >"$SRC/src/b2/c.js"
printf 'o4 v1\n' >"$SRC/src/o4.js"
DEEPER=src/dq$(printf '/a%.0s' $(seq 1 1100)) # 1100 levels
mkdir -p "$SRC/src/dq"
printf 'c v1\n' >"$SRC/src/dq/c.js"
printf 'fb v1\n' >"$SRC/src/fb"
printf 'fc v1\n' >"$SRC/src/fc"
mkdir -p "$SRC/src/od"
printf 'b v1\n' >"$SRC/src/od/b.js"
printf 'c v1\n' >"$SRC/src/od/c.js"
printf 'oa v1\n' >"$SRC/src/oa.js"
mkdir -p "$SRC/src/w"
printf 'w v1\n' >"$SRC/src/w/w.js"
printf 'c v1\n' >"$SRC/src/w/c.js"
printf 'o6 v1\n' >"$SRC/src/o6.js"
printf 'sl v1\n' >"$SRC/src/sl"
mkdir -p "$SRC/src/kf"
printf 'f v1\n' >"$SRC/src/kf/f.js"
printf 'c v1\n' >"$SRC/src/kf/c.js"
printf 'rx v1\n' >"$SRC/src/rx.js"
printf 'ry v1\n' >"$SRC/src/ry.js"
printf 'qx v1\n' >"$SRC/src/qx.js"
printf 'qy v1\n' >"$SRC/src/qy.js"
printf 'o8 v1\n' >"$SRC/src/o8.js"
printf 'gd v1\n' >"$SRC/src/gd"
printf 'gj v1\n' >"$SRC/src/gj"
mkdir -p "$SRC/src/gs" "$SRC/src/gt" "$SRC/src/gk"
printf 'x v1\n' >"$SRC/src/gs/x.js"
printf 'y v1\n' >"$SRC/src/gt/y.js"
printf 'z v1\n' >"$SRC/src/gk/z.js"
printf 'o10 v1\n' >"$SRC/src/o10.js"
printf 'gz v1\n' >"$SRC/src/gz"
printf 'taken\n' >"$SRC/src/gz.vsync-conflict"
for i in $(seq 1 15); do printf 'taken\n' >"$SRC/src/gz.vsync-conflict-$i"; done
printf 'mx v1\n' >"$SRC/src/mx"
printf 'my v1\n' >"$SRC/src/my"
mkdir -p "$SRC/src/mr"
printf 'z v1\n' >"$SRC/src/mr/z.js"
printf 'o12 v1\n' >"$SRC/src/o12.js"
printf 'nx v1\n' >"$SRC/src/nx"
printf 'kx v1\n' >"$SRC/src/kx"
printf 'o14 v1\n' >"$SRC/src/o14.js"
mkdir -p "$SRC/src/kq"
printf 'z v1\n' >"$SRC/src/kq/z.js"
vs_check "vsyncctl init" ctl init
vs_check "import" ctl import rd "$SRC"
MNT=$W/mnt
mkdir -p "$MNT"
PORT=$(vs_free_port) || exit 1
if ! vs_mount rd "$MNT" --cache-dir "$W/cache" --writable \
	--save-quiet-ms 4000 --control "127.0.0.1:$PORT"; then
	vs_fail "mount: expected it mounted, saw none (log: $VS_MOUNT_LOG)"
	vs_summary
	exit 1
fi

# local writes, not saved for the next 4 s
printf 'a local edit\n' >>"$MNT/src/a.js"
printf 'b local edit\n' >>"$MNT/src/d/b.js"
printf 'r local edit\n' >>"$MNT/src/r.js"
vs_check "vsyncctl rm of a dirty file" ctl rm rd src/a.js
vs_check "vsyncctl rm -r of a directory holding a dirty file" ctl rm -r rd src/d
vs_check "vsyncctl mv of a dirty file" ctl mv rd src/r.js src/r2.js

kept_logged() {
	grep -q "'src/a.js' deleted remotely while it has local changes: kept" "$VS_MOUNT_LOG" &&
		grep -q "'src/d/b.js' deleted remotely while it has local changes: kept" "$VS_MOUNT_LOG" &&
		grep -q "'src/r.js' moved remotely to 'src/r2.js' while it has local changes: kept" "$VS_MOUNT_LOG"
}
vs_check "the mount says the three dirty files were kept" vs_poll 10 kept_logged
vs_check "the clean file under the deleted directory is gone" \
	vs_poll 10 test ! -e "$MNT/src/d/c.js"
vs_check_eq "the dirty file keeps its local bytes" \
	"$(printf 'a v1\na local edit')" "$(cat "$MNT/src/a.js" 2>&1)"
vs_check_eq "the dirty file under the deleted directory keeps its bytes" \
	"$(printf 'b v1\nb local edit')" "$(cat "$MNT/src/d/b.js" 2>&1)"
vs_check "an unrelated file stays" test -f "$MNT/src/other.js"
vs_check_eq "the dirty file moved remotely stays with its local bytes" \
	"$(printf 'r v1\nr local edit')" "$(cat "$MNT/src/r.js" 2>&1)"
vs_check_eq "the new path of the move has the committed bytes" \
	"r v1" "$(cat "$MNT/src/r2.js" 2>&1)"

# the saves re-create them in PostgreSQL, with the local bytes
saved() { # PATH EXPECTED
	[[ "$(ctl cat rd "$1" 2>/dev/null)" == "$2" ]]
}
vs_check "PostgreSQL re-created src/a.js with the local bytes" \
	vs_poll 20 saved src/a.js "$(printf 'a v1\na local edit')"
vs_check "PostgreSQL re-created src/d/b.js with the local bytes" \
	vs_poll 20 saved src/d/b.js "$(printf 'b v1\nb local edit')"
vs_check "PostgreSQL re-created src/r.js with the local bytes" \
	vs_poll 20 saved src/r.js "$(printf 'r v1\nr local edit')"
vs_check "PostgreSQL keeps the moved version at src/r2.js" saved src/r2.js "r v1"
vs_check "PostgreSQL no longer has src/d/c.js" \
	bash -c "! '$CTL' -q cat rd src/d/c.js >/dev/null 2>&1"
vs_check "the mount shows what PostgreSQL has" vs_poll 10 vs_mount_equals_pg rd "$MNT"

# --- a save merged with a remote edit while the file was written again:
# the next save is based on the version its own bytes are based on, not
# on the merge's (which holds the remote edit its bytes lack), so it is
# merged in turn and the remote edit stays
ID=$(vs_sql "SELECT vsync_project_id('rd')")
for i in 1 2 3 4 5 6 7 8 9; do echo "line $i"; done >"$W/m1"
cp "$W/m1" "$MNT/src/m.js"
# save_now PATH...: fsync(2) each file, which saves it at once (the save
# policy), rather than at the end of the 4 s quiet period: where a check
# is on what the save does, not on when it comes (the first section's
# saves do come at the end of the quiet period; so do the last
# section's, whose refusals are timed)
save_now() {
	sync -- "${@/#/$MNT/}" 2>/dev/null || true
}
# save_bg PATH: the same in the background, where the commit is held back
# (the project's row held): the save is journaled at once, and fsync
# returns once it is committed. Only where nothing touches the file
# before that: the kernel holds the file's inode lock across FSYNC, so a
# write to it, or the updater's change of it, would wait for the commit
# (or fsync's deadline, 10 s); those saves come at the quiet period
save_bg() {
	sync -- "$MNT/$1" 2>/dev/null &
	vs_on_exit "kill $! 2>/dev/null; wait $! 2>/dev/null; true"
}
save_now src/m.js
vs_check "m.js committed" vs_poll 20 saved src/m.js "$(cat "$W/m1")"
# (written in place, as cp does: sed -i would rename, a save at once)
sed 's/^line 5$/line 5 local/' "$W/m1" >"$W/mA"
cp "$W/mA" "$MNT/src/m.js" # dirty for 4 s
sed 's/^line 2$/line 2 remote/' "$W/m1" >"$W/m_remote"
vs_check "a remote edit of the dirty file" ctl put rd src/m.js "$W/m_remote"
vs_check "PostgreSQL stopped" vs_pg_stop
bytes_journaled() { vs_journaled "$W/cache" "$ID" "$1"; }
vs_check "the first local save is journaled" vs_poll 15 bytes_journaled "$W/mA"
sed 's/^line 8$/line 8 local/' "$W/mA" >"$W/mB"
cp "$W/mB" "$MNT/src/m.js" # written again
vs_check "PostgreSQL started again" vs_pg_start_again
save_now src/m.js
sed -e 's/^line 2$/line 2 remote/' -e 's/^line 5$/line 5 local/' \
	-e 's/^line 8$/line 8 local/' "$W/m1" >"$W/m_want"
vs_check "both local saves merged with the remote edit" \
	vs_poll 30 saved src/m.js "$(cat "$W/m_want")"
vs_check_eq "no conflict recorded" 0 \
	"$(vs_sql "SELECT count(*) FROM vsync_conflicts('$ID', 'src/m.js')")"
vs_check "the mount reads the merge" vs_poll 10 cmp -s "$MNT/src/m.js" "$W/m_want"

# held NAME DESC SQL: SQL (a remote change) made in a held transaction
# (vs_held_begin): it holds the project's row, so the mount's commits
# wait for it; DESC checks that it returned its change's seq
held() {
	vs_held_begin "$1" "$3"
	vs_check "$2" vs_poll 10 grep -qx '[0-9][0-9]*' "$W/$1.out"
}
# hold_row NAME FROM TO: the same with an unrelated change, a remote
# rename of FROM to TO
hold_row() {
	held "$1" "an unrelated change holds the project's row" \
		"SELECT vsync_rename('$ID', '$2', '$3', NULL, NULL, 'test');"
}
# commit_held [DESC]: COMMIT the held transaction (vs_held_begin) and
# wait for it; with DESC, check that it committed (psql's exit status 0)
commit_held() {
	local rc=0
	vs_held_commit || rc=$?
	(($# == 0)) || vs_check_eq "$1" 0 "$rc"
}

# --- a remote rename of a directory holding files with local changes
printf 'j local edit\n' >>"$MNT/src/mv/j.js" # saved after the rename
# the rename, made and not committed yet: it holds the project's row, so
# the committer's save of j.js waits for it and lands just after it
held rename "the remote rename is made" \
	"SELECT vsync_rename('$ID', 'src/mv', 'src/mv2', NULL, NULL, 'test');"
save_bg src/mv/j.js
printf 'j v1\nj local edit\n' >"$W/j_local"
vs_check "the save of src/mv/j.js is journaled" \
	vs_poll 15 bytes_journaled "$W/j_local"
vs_check "its commit waits for the rename" vs_poll 15 vs_pg_lock_waits
printf 'k local edit\n' >>"$MNT/src/mv/sub/k.js" # not saved for 4 s
commit_held "the remote rename is committed"

dir_kept_logged() {
	grep -q "'src/mv/j.js' moved remotely to 'src/mv2/j.js' while it has local changes: kept" "$VS_MOUNT_LOG" &&
		grep -q "'src/mv/sub/k.js' moved remotely to 'src/mv2/sub/k.js' while it has local changes: kept" "$VS_MOUNT_LOG"
}
vs_check "the mount says the two files with local changes were kept" \
	vs_poll 10 dir_kept_logged
vs_check "the clean files moved with the directory" \
	vs_poll 10 test -f "$MNT/src/mv2/c.js" -a -f "$MNT/src/mv2/sub/s.js" \
	-a -f "$MNT/src/mv2/deep/x.js"
vs_check "the clean files are gone from the old directory" \
	test ! -e "$MNT/src/mv/c.js" -a ! -e "$MNT/src/mv/sub/s.js" \
	-a ! -e "$MNT/src/mv/deep"
vs_check_eq "the journaled file stays with its local bytes" \
	"$(printf 'j v1\nj local edit')" "$(cat "$MNT/src/mv/j.js" 2>&1)"
vs_check_eq "the file not saved yet stays with its local bytes" \
	"$(printf 'k v1\nk local edit')" "$(cat "$MNT/src/mv/sub/k.js" 2>&1)"
vs_check_eq "the new directory has the committed bytes of the first" \
	"j v1" "$(cat "$MNT/src/mv2/j.js" 2>&1)"
vs_check_eq "the new directory has the committed bytes of the second" \
	"k v1" "$(cat "$MNT/src/mv2/sub/k.js" 2>&1)"
save_now src/mv/sub/k.js
vs_check "PostgreSQL re-created src/mv/j.js with the local bytes" \
	vs_poll 20 saved src/mv/j.js "$(printf 'j v1\nj local edit')"
vs_check "PostgreSQL re-created src/mv/sub/k.js with the local bytes" \
	vs_poll 20 saved src/mv/sub/k.js "$(printf 'k v1\nk local edit')"
vs_check "PostgreSQL keeps the moved versions" \
	bash -c "[[ \"\$('$CTL' -q cat rd src/mv2/j.js)\" == 'j v1' &&
		\"\$('$CTL' -q cat rd src/mv2/sub/k.js)\" == 'k v1' ]]"
vs_check "the mount shows what PostgreSQL has" vs_poll 10 vs_mount_equals_pg rd "$MNT"

# --- a file whose save was committed without the file taking its bytes
# (written again meanwhile), under a directory renamed remotely: the new
# path gets that save's bytes (PostgreSQL's), not the version before it
# an unrelated change holds the project's row: the save waits for it
hold_row hold src/o.js src/o2.js
printf 'h save\n' >>"$MNT/src/hv/h.js" # journaled in 4 s
printf 'h v1\nh save\n' >"$W/h_saved"
vs_check "the save of src/hv/h.js is journaled" \
	vs_poll 15 bytes_journaled "$W/h_saved"
vs_check "its commit waits" vs_poll 15 vs_pg_lock_waits
printf 'h again\n' >>"$MNT/src/hv/h.js" # written again: dirty for 4 s
commit_held
vs_check "the save is committed" vs_poll 10 saved src/hv/h.js "$(cat "$W/h_saved")"
vs_check "a remote rename of its directory" ctl mv rd src/hv src/hv2
vs_check "the rename is applied" vs_poll 10 test -f "$MNT/src/hv2/c.js"
vs_check_eq "the new path shows the committed save" \
	"$(cat "$W/h_saved")" "$(cat "$MNT/src/hv2/h.js" 2>&1)"
save_now src/hv/h.js
vs_check "the mount shows what PostgreSQL has (the save re-creates the old path)" \
	vs_poll 20 vs_mount_equals_pg rd "$MNT"

# --- a remote rename of a directory to a path that a remote delete left
# in the mount (a file under it with local changes, kept): the file stays
# with its local bytes, the moved entries join it
printf 'g local edit\n' >>"$MNT/src/ke/sub/g.js" # dirty for 4 s
vs_check "vsyncctl rm -r of its directory" ctl rm -r rd src/ke
vs_check "the dirty file is kept" vs_poll 10 grep -q \
	"'src/ke/sub/g.js' deleted remotely while it has local changes: kept" \
	"$VS_MOUNT_LOG"
vs_check "vsyncctl mv of another directory to that path" ctl mv rd src/kd src/ke
vs_check "the moved entries are there" \
	vs_poll 10 test -f "$MNT/src/ke/h.js" -a -f "$MNT/src/ke/sub/i.js"
vs_check "the old directory is gone" test ! -e "$MNT/src/kd"
vs_check_eq "the kept file keeps its local bytes" \
	"$(printf 'g v1\ng local edit')" "$(cat "$MNT/src/ke/sub/g.js" 2>&1)"
save_now src/ke/sub/g.js
vs_check "PostgreSQL re-created src/ke/sub/g.js with the local bytes" \
	vs_poll 20 saved src/ke/sub/g.js "$(printf 'g v1\ng local edit')"
vs_check "the mount shows what PostgreSQL has" vs_poll 10 vs_mount_equals_pg rd "$MNT"

# --- the same four hundred levels down: the split recurses once a level
# (it overflowed the updater's stack: the mount died)
printf 'f v1\n' >"$W/f_v1"
vs_check "a file four hundred levels down" ctl put rd "$DEEP/f.js" "$W/f_v1"
vs_check "the mount has it" vs_poll 20 test -f "$MNT/$DEEP/f.js"
printf 'f local edit\n' >>"$MNT/$DEEP/f.js" # dirty for 4 s
vs_check "vsyncctl mv of a deep directory" ctl mv rd src/dp src/dp2
vs_check "the rest of it moved" vs_poll 10 test -f "$MNT/src/dp2/c.js"
vs_check_eq "the deep file stays with its local bytes" \
	"$(printf 'f v1\nf local edit')" "$(cat "$MNT/$DEEP/f.js" 2>&1)"
vs_check_eq "the new path has its committed bytes" \
	"f v1" "$(cat "$MNT/src/dp2/${DEEP#src/dp/}/f.js" 2>&1)"

# PATH: does PostgreSQL have it (a live entry)?
pg_has() { vs_pg_has "$ID" "$1"; }
# PATH: has PostgreSQL no live entry there?
pg_lacks() { ! pg_has "$1"; }
# The updater held back: DIR, an empty directory made here, has a bind
# mount on it, so the remote rm -r of it fails in the mount (rmdir: EBUSY)
# and is retried until release_updater DIR unmounts it; the changes after
# it wait.
hold_updater() { # DIR
	mkdir "$MNT/$1" && vs_poll 15 pg_has "$1" || return 1
	mkdir -p "$W/hold" && mount --bind "$W/hold" "$MNT/$1" || return 1
	vs_on_exit "umount $(printf '%q' "$MNT/$1") 2>/dev/null; true"
	ctl rm -r rd "$1" && vs_poll 10 grep -q \
		"'$1'): Device or resource busy; will retry" "$VS_MOUNT_LOG"
}
release_updater() { # DIR
	umount "$MNT/$1" && vs_poll 20 test ! -e "$MNT/$1"
}

# --- a save that lands after a remote rename of its directory, followed
# by more than 64 commits of ours before the updater applies the rename
# (it is held back): the file still stays at its old path, where
# PostgreSQL has it (the mount remembered only its newest 64 commits)
vs_check "the updater is held back" hold_updater src/blk1
vs_check "a remote rename of a directory" ctl mv rd src/lg src/lg2
printf 'l local edit\n' >>"$MNT/src/lg/l.js" # saved in 4 s, after the rename
save_now src/lg/l.js
vs_check "the save lands after the rename" \
	vs_poll 20 saved src/lg/l.js "$(printf 'l v1\nl local edit')"
for i in $(seq 1 70); do printf 'n %s\n' "$i" >"$MNT/src/many/n$i.js"; done
save_now src/many/n{1..70}.js
many_saved() {
	[[ "$(vs_sql "SELECT count(*) FROM project_files WHERE project_id = '$ID'
		AND file_path LIKE 'src/many/n%' AND is_current
		AND NOT is_deleted")" == 70 ]]
}
vs_check "70 more saves land" vs_poll 30 many_saved
vs_check "the updater goes on" release_updater src/blk1
vs_check "the rename is applied" vs_poll 20 test -f "$MNT/src/lg2/c.js"
vs_check_eq "the saved file stays at its old path" \
	"$(printf 'l v1\nl local edit')" "$(cat "$MNT/src/lg/l.js" 2>&1)"
vs_check_eq "the new path has the version the rename moved" \
	"l v1" "$(cat "$MNT/src/lg2/l.js" 2>&1)"
vs_check "the mount shows what PostgreSQL has" vs_poll 10 vs_mount_equals_pg rd "$MNT"

# --- a file moved here into a directory and saved, both committed after
# a remote rename of that directory (the updater held back meanwhile):
# PostgreSQL never had the file under the directory's new path, so the
# mount shows nothing there (only the save was remembered, with the
# version the file had before its move: a copy appeared there)
vs_check "the updater is held back" hold_updater src/blk2
vs_check "a remote rename of a directory" ctl mv rd src/b2 src/b3
# an unrelated change holds the project's row: the commits wait
hold_row hold2 src/o4.js src/o5.js
vs_check "a local move into the directory" mv "$MNT/src/b1/x.js" "$MNT/src/b2/x.js"
printf 'x local edit\n' >>"$MNT/src/b2/x.js"
save_bg src/b2/x.js
printf 'x v1\nx local edit\n' >"$W/x_saved"
vs_check "its save is journaled behind the move" \
	vs_poll 15 bytes_journaled "$W/x_saved"
commit_held
vs_check "the move and the save land after the rename" \
	vs_poll 20 saved src/b2/x.js "$(cat "$W/x_saved")"
vs_check "the updater goes on" release_updater src/blk2
vs_check "the rename is applied" vs_poll 20 test -f "$MNT/src/b3/c.js"
vs_check_eq "the moved file stays with its local bytes" \
	"$(cat "$W/x_saved")" "$(cat "$MNT/src/b2/x.js" 2>&1)"
vs_check "PostgreSQL has nothing at src/b3/x.js" \
	bash -c "! '$CTL' -q cat rd src/b3/x.js >/dev/null 2>&1"
vs_check "nor does the mount" test ! -e "$MNT/src/b3/x.js"
vs_check "the mount shows what PostgreSQL has" vs_poll 10 vs_mount_equals_pg rd "$MNT"

# --- a directory split that fails part-way (a clean subdirectory cannot
# be moved: a bind mount on it) is retried: what it moved to the new path
# stays there (the retry took it for what a remote delete left there and
# removed it: gone from the mount, which PostgreSQL has)
printf 'b local edit\n' >>"$MNT/src/sp/b.js" # dirty for 4 s
mkdir -p "$W/hold_m" && cp "$SRC/src/sp/m/q.js" "$W/hold_m/"
vs_check "a bind mount on src/sp/m" mount --bind "$W/hold_m" "$MNT/src/sp/m"
vs_on_exit "umount $(printf '%q' "$MNT/src/sp/m") 2>/dev/null; true"
vs_check "vsyncctl mv of its directory" ctl mv rd src/sp src/sp2
split_failed() { # TIMES
	(($(grep -c "'src/sp2'): Device or resource busy; will retry" \
		"$VS_MOUNT_LOG") >= $1))
}
vs_check "the split fails part-way, and is retried" vs_poll 15 split_failed 2
vs_check "the bind mount goes" umount "$MNT/src/sp/m"
vs_check "the split is done" vs_poll 20 test -f "$MNT/src/sp2/z.js" \
	-a -f "$MNT/src/sp2/m/q.js"
vs_check_eq "the entry moved before the failure is still there" \
	"a v1" "$(cat "$MNT/src/sp2/a.js" 2>&1)"
vs_check_eq "the dirty file stays with its local bytes" \
	"$(printf 'b v1\nb local edit')" "$(cat "$MNT/src/sp/b.js" 2>&1)"
vs_check_eq "its new path has its committed bytes" \
	"b v1" "$(cat "$MNT/src/sp2/b.js" 2>&1)"
save_now src/sp/b.js
vs_check "PostgreSQL re-created src/sp/b.js with the local bytes" \
	vs_poll 20 saved src/sp/b.js "$(printf 'b v1\nb local edit')"
vs_check "the mount shows what PostgreSQL has" vs_poll 10 vs_mount_equals_pg rd "$MNT"
rm_deep() { ctl rm -r rd src/dp && ctl rm -r rd src/dp2; }
vs_check "the deep trees removed" rm_deep
vs_check "from the mount too" \
	vs_poll 20 test ! -e "$MNT/src/dp" -a ! -e "$MNT/src/dp2"

# --- a remote rm -r of a directory with a file with local changes eleven
# hundred levels down: the deletion recurses once a level (its frames
# held a mountpoint path each, 8 KB: the updater's stack overflowed, the
# mount died)
printf 'e v1\n' >"$W/e_v1"
vs_check "a file eleven hundred levels down" \
	ctl put rd "$DEEPER/e.js" "$W/e_v1"
vs_check "the mount has it" vs_poll 30 test -f "$MNT/$DEEPER/e.js"
printf 'e local edit\n' >>"$MNT/$DEEPER/e.js" # dirty for 4 s
vs_check "vsyncctl rm -r of a deep directory" ctl rm -r rd src/dq
vs_check "the rest of it is gone" vs_poll 10 test ! -e "$MNT/src/dq/c.js"
vs_check_eq "the deep file stays with its local bytes" \
	"$(printf 'e v1\ne local edit')" "$(cat "$MNT/$DEEPER/e.js" 2>&1)"
save_now "$DEEPER/e.js"
vs_check "PostgreSQL re-creates it with the local bytes" \
	vs_poll 20 saved "$DEEPER/e.js" "$(printf 'e v1\ne local edit')"
vs_check "the deep tree removed" ctl rm -r rd src/dq
vs_check "from the mount too" vs_poll 20 test ! -e "$MNT/src/dq"

# --- a file with local changes replaced remotely by a directory (rm,
# then a file under its path; rm, then mkdir): PostgreSQL refuses its
# save there, and making the directory removed it with its writes (lost
# everywhere). It goes aside, beside it, and its save creates that path.
printf 'fb local edit\n' >>"$MNT/src/fb" # dirty for 4 s
printf 'fc local edit\n' >>"$MNT/src/fc"
vs_check "vsyncctl rm of the first dirty file" ctl rm rd src/fb
printf 'x remote\n' >"$W/fb_x"
vs_check "vsyncctl put of a file under its path" ctl put rd src/fb/x.js "$W/fb_x"
vs_check "vsyncctl rm of the second dirty file" ctl rm rd src/fc
vs_check "vsyncctl mkdir at its path" ctl mkdir rd src/fc
vs_check "the file under the new directory is there" \
	vs_poll 10 test -f "$MNT/src/fb/x.js"
vs_check "the new directory is there" vs_poll 10 test -d "$MNT/src/fc"
vs_check_eq "the first dirty file is aside with its local bytes" \
	"$(printf 'fb v1\nfb local edit')" "$(cat "$MNT/src/fb.vsync-conflict" 2>&1)"
vs_check_eq "the second dirty file is aside with its local bytes" \
	"$(printf 'fc v1\nfc local edit')" "$(cat "$MNT/src/fc.vsync-conflict" 2>&1)"
vs_check "the mount says so" grep -q \
	"'src/fb' replaced remotely while it has local changes: moved to 'src/fb.vsync-conflict'" \
	"$VS_MOUNT_LOG"
save_now src/fb.vsync-conflict src/fc.vsync-conflict
vs_check "PostgreSQL has the first file's local bytes aside" \
	vs_poll 20 saved src/fb.vsync-conflict "$(printf 'fb v1\nfb local edit')"
vs_check "PostgreSQL has the second file's local bytes aside" \
	vs_poll 20 saved src/fc.vsync-conflict "$(printf 'fc v1\nfc local edit')"
# the conflicts the remote deletes marked went aside with the files: once
# their saves are committed, no divergence is left
in_sync() { vs_in_sync "$PORT"; }
vs_check "the mount is in sync again (GET /status)" vs_poll 10 in_sync
vs_check "the mount shows what PostgreSQL has" vs_poll 10 vs_mount_equals_pg rd "$MNT"

# --- a file with local changes replaced remotely by a symlink (rm, then a
# symlink at its path), and a directory holding one, kept by a remote
# rm -r, replaced by a file (a put at its path): making room for the
# change removed the file, or the whole directory, with the writes (lost
# everywhere). The file goes aside as above, and so does the directory
# (with what it still holds: the files that must stay and the
# directories above them); their saves create those paths, under which
# PostgreSQL has nothing, and the change is shown.
printf 'sl local edit\n' >>"$MNT/src/sl" # dirty for 4 s
printf 'f local edit\n' >>"$MNT/src/kf/f.js"
vs_check "vsyncctl rm of the dirty file" ctl rm rd src/sl
vs_check "a symlink at its path (SQL)" vs_sql "SELECT seq FROM vsync_write_file('$ID',
	'src/sl', convert_to('other.js', 'UTF8'), NULL, NULL, NULL, 'test', 'symlink')"
vs_check "vsyncctl rm -r of a directory holding a dirty file" ctl rm -r rd src/kf
printf 'kf remote\n' >"$W/kf"
vs_check "vsyncctl put of a file at the directory's path" ctl put rd src/kf "$W/kf"
vs_check "the symlink is there" vs_poll 10 test -L "$MNT/src/sl"
vs_check "the file is there" vs_poll 10 test -f "$MNT/src/kf"
vs_check_eq "the symlink's target" other.js "$(readlink "$MNT/src/sl" 2>&1)"
vs_check_eq "the file's bytes" "kf remote" "$(cat "$MNT/src/kf" 2>&1)"
vs_check_eq "the dirty file is aside with its local bytes" \
	"$(printf 'sl v1\nsl local edit')" "$(cat "$MNT/src/sl.vsync-conflict" 2>&1)"
vs_check_eq "the dirty file under the directory is aside with it" \
	"$(printf 'f v1\nf local edit')" "$(cat "$MNT/src/kf.vsync-conflict/f.js" 2>&1)"
vs_check "the clean file under it is gone" \
	test ! -e "$MNT/src/kf.vsync-conflict/c.js"
aside_logged() {
	grep -q "'src/sl' replaced remotely while it has local changes: moved to 'src/sl.vsync-conflict'" "$VS_MOUNT_LOG" &&
		grep -q "'src/kf' replaced remotely while files under it have local changes: moved to 'src/kf.vsync-conflict'" "$VS_MOUNT_LOG"
}
vs_check "the mount says so" aside_logged
save_now src/sl.vsync-conflict src/kf.vsync-conflict/f.js
vs_check "PostgreSQL has the file's local bytes aside" \
	vs_poll 20 saved src/sl.vsync-conflict "$(printf 'sl v1\nsl local edit')"
vs_check "PostgreSQL has the local bytes of the file under the directory aside" \
	vs_poll 20 saved src/kf.vsync-conflict/f.js "$(printf 'f v1\nf local edit')"
vs_check "the mount is in sync again (GET /status)" vs_poll 10 in_sync
vs_check "the mount shows what PostgreSQL has" vs_poll 10 vs_mount_equals_pg rd "$MNT"

# --- a local rename over an existing file, committed after a remote
# rename of its directory (the updater held back): the file stays at its
# path, where PostgreSQL has it, and the directory's new path gets the
# version the remote rename moved (the rename's record said the path had
# nothing before it: the new path was left without the file)
vs_check "the updater is held back" hold_updater src/blk3
vs_check "a remote rename of a directory" ctl mv rd src/od src/od2
vs_check "a local rename over a file in it" \
	mv "$MNT/src/oa.js" "$MNT/src/od/b.js"
vs_check "the local rename lands after the remote one" \
	vs_poll 20 saved src/od/b.js "oa v1"
vs_check "the updater goes on" release_updater src/blk3
vs_check "the remote rename is applied" vs_poll 20 test -f "$MNT/src/od2/c.js"
vs_check_eq "the renamed file stays at its path" \
	"oa v1" "$(cat "$MNT/src/od/b.js" 2>&1)"
vs_check_eq "the new path has the version the remote rename moved" \
	"b v1" "$(cat "$MNT/src/od2/b.js" 2>&1)"
vs_check "the mount shows what PostgreSQL has" vs_poll 10 vs_mount_equals_pg rd "$MNT"

# --- a save committed without the file taking its bytes (written again
# meanwhile), then another save committed after a remote rename of its
# directory (the updater held back): the file stays at its path, and the
# new path gets the first save's bytes, which PostgreSQL moved there (the
# second save's record named the version before the first one's bytes)
vs_check "the updater is held back" hold_updater src/blk4
# an unrelated change holds the project's row: the first save waits
hold_row hold3 src/o6.js src/o7.js
printf 'w save\n' >>"$MNT/src/w/w.js" # journaled in 4 s
printf 'w v1\nw save\n' >"$W/w_saved"
vs_check "the first save is journaled" vs_poll 15 bytes_journaled "$W/w_saved"
vs_check "its commit waits" vs_poll 15 vs_pg_lock_waits
printf 'w again\n' >>"$MNT/src/w/w.js" # written again: not taken
commit_held
vs_check "the first save is committed" vs_poll 10 saved src/w/w.js "$(cat "$W/w_saved")"
printf 'w third\n' >>"$MNT/src/w/w.js" # dirty for 4 s more
vs_check "a remote rename of its directory" ctl mv rd src/w src/w2
save_now src/w/w.js
vs_check "the second save lands after the rename" \
	vs_poll 20 saved src/w/w.js "$(printf 'w v1\nw save\nw again\nw third')"
vs_check "the updater goes on" release_updater src/blk4
vs_check "the rename is applied" vs_poll 20 test -f "$MNT/src/w2/c.js"
vs_check_eq "the new path has the first save's bytes" \
	"$(cat "$W/w_saved")" "$(cat "$MNT/src/w2/w.js" 2>&1)"
vs_check "the mount shows what PostgreSQL has" vs_poll 10 vs_mount_equals_pg rd "$MNT"

# --- a remote rename of a file onto a file with local changes (mv over
# an existing file: PostgreSQL allows it): the rename's handler removed
# the file with its writes (lost everywhere). It goes aside as above, and
# the rename is shown.
printf 'rx local edit\n' >>"$MNT/src/rx.js" # dirty for 4 s
vs_check "vsyncctl mv of a file onto the dirty file" ctl mv rd src/ry.js src/rx.js
vs_check "the rename is applied" vs_poll 10 test ! -e "$MNT/src/ry.js"
vs_check_eq "the new path has the moved file's bytes" \
	"ry v1" "$(cat "$MNT/src/rx.js" 2>&1)"
vs_check_eq "the dirty file is aside with its local bytes" \
	"$(printf 'rx v1\nrx local edit')" "$(cat "$MNT/src/rx.js.vsync-conflict" 2>&1)"
vs_check "the mount says so" grep -q \
	"'src/rx.js' replaced remotely while it has local changes: moved to 'src/rx.js.vsync-conflict'" \
	"$VS_MOUNT_LOG"
save_now src/rx.js.vsync-conflict
vs_check "PostgreSQL has the local bytes aside" \
	vs_poll 20 saved src/rx.js.vsync-conflict "$(printf 'rx v1\nrx local edit')"
vs_check "PostgreSQL keeps the moved file at the new path" saved src/rx.js "ry v1"
vs_check "the mount is in sync again (GET /status)" vs_poll 10 in_sync
vs_check "the mount shows what PostgreSQL has" vs_poll 10 vs_mount_equals_pg rd "$MNT"

# --- the same with the dirty file's save journaled, its commit waiting
# (the project's row held), when the updater applies the rename (held
# back until then): that save is committed at the path over the rename,
# so the file stays there, and the rename is not shown there (the mount
# showed the moved file, PostgreSQL the save)
vs_check "the updater is held back" hold_updater src/blk5
vs_check "vsyncctl mv of a file onto another" ctl mv rd src/qy.js src/qx.js
# an unrelated change holds the project's row: the save waits
hold_row hold4 src/o8.js src/o9.js
printf 'qx local edit\n' >>"$MNT/src/qx.js" # journaled in 4 s
printf 'qx v1\nqx local edit\n' >"$W/qx_saved"
vs_check "its save is journaled" vs_poll 15 bytes_journaled "$W/qx_saved"
vs_check "its commit waits" vs_poll 15 vs_pg_lock_waits
vs_check "the updater goes on" release_updater src/blk5
vs_check "the rename is applied" vs_poll 20 test ! -e "$MNT/src/qy.js"
vs_check "the mount says so" vs_poll 10 grep -q \
	"'src/qy.js' moved remotely to 'src/qx.js', where local changes stay: not shown there" \
	"$VS_MOUNT_LOG"
vs_check_eq "the file stays with its local bytes" \
	"$(cat "$W/qx_saved")" "$(cat "$MNT/src/qx.js" 2>&1)"
commit_held "the unrelated change is committed"
vs_check "PostgreSQL has the save at the path" \
	vs_poll 20 saved src/qx.js "$(cat "$W/qx_saved")"
vs_check_eq "the moved file stays in its history" \
	"qy v1" "$(ctl cat rd src/qx.js --version 2 2>&1)"
vs_check "the mount is in sync again (GET /status)" vs_poll 10 in_sync
vs_check "the mount shows what PostgreSQL has" vs_poll 10 vs_mount_equals_pg rd "$MNT"

# --- a file with local changes replaced remotely by a directory (as
# above), its save journaled before the remote change and committed
# after it: PostgreSQL refuses that save at the old path (a
# directory now), and it was dropped with its bytes (on the mount only,
# aside, and /status said refused). It is saved again where the file is.
# The save is held back: the file is larger than a chunk (8 MiB), and a
# session holds the chunk table, which only the committer's chunk waits
# for (the remote changes go on)
printf 'fe v1\n' >"$W/fe_v1"
vs_check "a file in PostgreSQL" ctl put rd src/fe "$W/fe_v1"
vs_check "the mount has it" vs_poll 10 cmp -s "$MNT/src/fe" "$W/fe_v1"
vs_held_begin chunks "LOCK TABLE vsync_chunks IN SHARE MODE;"
vs_check "a session holds the chunk table" \
	vs_poll 10 grep -qx held "$W/chunks.out"
seq 1 1500000 >"$W/fe_local" # 10 MB: two chunks
cp "$W/fe_local" "$MNT/src/fe" # journaled in 4 s
vs_check "the save of src/fe is journaled" \
	vs_poll 15 bytes_journaled "$W/fe_local"
vs_check "its commit waits" vs_poll 15 vs_pg_lock_waits
vs_check "vsyncctl rm of the journaled file" ctl rm rd src/fe
printf 'x remote\n' >"$W/fe_x"
vs_check "vsyncctl put of a file under its path" ctl put rd src/fe/x.js "$W/fe_x"
vs_check "the file under the new directory is there" \
	vs_poll 10 test -f "$MNT/src/fe/x.js"
vs_check "the journaled file is aside with its local bytes" \
	cmp -s "$MNT/src/fe.vsync-conflict" "$W/fe_local"
commit_held
saved_as() { # PATH FILE
	ctl cat rd "$1" 2>/dev/null | cmp -s - "$2"
}
# NAME FILE: the save of src/NAME, refused there (a directory now), is
# made again aside, where PostgreSQL gets FILE's bytes
resaved_aside() {
	vs_check "PostgreSQL refuses the save at the old path" vs_poll 30 grep -q \
		"local change to 'src/$1' was refused by PostgreSQL" "$VS_MOUNT_LOG"
	vs_check "the mount says it saves the edit aside" grep -q \
		"local edit of 'src/$1' is saved at 'src/$1.vsync-conflict'" \
		"$VS_MOUNT_LOG"
	vs_check "PostgreSQL has the local bytes aside" \
		vs_poll 30 saved_as "src/$1.vsync-conflict" "$2"
}
resaved_aside fe "$W/fe_local"
vs_check "PostgreSQL has the remote directory" saved src/fe/x.js "x remote"
vs_check "the mount is in sync again (GET /status)" vs_poll 10 in_sync
vs_check "the mount shows what PostgreSQL has" vs_poll 10 vs_mount_equals_pg rd "$MNT"

# --- the same, with the refusal first: the remote rm and put are
# committed, and the save refused, before the updater applies them (it is
# held back). The file was still at the refused path, so it counted as
# clean then, and the updater's rm deleted it with its bytes (PostgreSQL
# never had them). It stays a local change: the remote change moves it
# aside, where its save is made.
printf 'ff v1\n' >"$W/ff_v1"
vs_check "a file in PostgreSQL" ctl put rd src/ff "$W/ff_v1"
vs_check "the mount has it" vs_poll 10 cmp -s "$MNT/src/ff" "$W/ff_v1"
vs_check "the updater is held back" hold_updater src/blk5
vs_check "vsyncctl rm of the file" ctl rm rd src/ff
printf 'x remote\n' >"$W/ff_x"
vs_check "vsyncctl put of a file under its path" ctl put rd src/ff/x.js "$W/ff_x"
printf 'ff local edit\n' >>"$MNT/src/ff"
printf 'ff v1\nff local edit\n' >"$W/ff_local"
save_now src/ff # journaled at once, refused: src/ff is a directory there
vs_check "PostgreSQL refuses the save" vs_poll 30 grep -q \
	"local change to 'src/ff' was refused by PostgreSQL" "$VS_MOUNT_LOG"
vs_check "the mount says the edit stays a local change" grep -q \
	"local edit of 'src/ff' stays a local change" "$VS_MOUNT_LOG"
refused_n() { # N: was the save of src/ff refused N times or more?
	[[ "$(grep -c "local change to 'src/ff' was refused" "$VS_MOUNT_LOG")" -ge "$1" ]]
}
vs_check "saved again there, after the quiet period: refused again" \
	vs_poll 20 refused_n 2
vs_check "the mount has not applied the remote change yet" \
	cmp -s "$MNT/src/ff" "$W/ff_local"
vs_check "the updater goes on" release_updater src/blk5
vs_check "the file under the new directory is there" \
	vs_poll 20 test -f "$MNT/src/ff/x.js"
vs_check "the refused file is aside with its local bytes" \
	cmp -s "$MNT/src/ff.vsync-conflict" "$W/ff_local"
vs_check "PostgreSQL has the local bytes aside" \
	vs_poll 30 saved_as src/ff.vsync-conflict "$W/ff_local"
vs_check "PostgreSQL has the remote directory" saved src/ff/x.js "x remote"
# saved again after the backoff (and quiet period), not at once in a loop
refused_few() { ! refused_n 5; }
vs_check "the save was refused only a few times" refused_few
vs_check "the mount is in sync again (GET /status)" vs_poll 10 in_sync
vs_check "the mount shows what PostgreSQL has" vs_poll 10 vs_mount_equals_pg rd "$MNT"

# --- a remote rename of a directory onto a file with local changes
# (PostgreSQL moves a directory only where it has nothing: a file removed
# remotely and kept here, a file made here and not saved yet): the file
# stayed and the rename was not shown there, so the mount had a file
# where PostgreSQL has a directory, and the file's save was refused there
# again and again. It goes aside, as for a remote mkdir there.
printf 'gd local edit\n' >>"$MNT/src/gd" # dirty for 4 s
printf 'gn local\n' >"$MNT/src/gn"       # new, not saved for 4 s
vs_check "vsyncctl rm of the dirty file" ctl rm rd src/gd
vs_check "vsyncctl mv of a directory to its path" ctl mv rd src/gs src/gd
vs_check "vsyncctl mv of a directory to the new file's path" \
	ctl mv rd src/gt src/gn
vs_check "the moved directories are there" \
	vs_poll 10 test -f "$MNT/src/gd/x.js" -a -f "$MNT/src/gn/y.js"
vs_check "the old directories are gone" \
	test ! -e "$MNT/src/gs" -a ! -e "$MNT/src/gt"
vs_check_eq "the dirty file is aside with its local bytes" \
	"$(printf 'gd v1\ngd local edit')" "$(cat "$MNT/src/gd.vsync-conflict" 2>&1)"
vs_check_eq "the new file is aside with its bytes" \
	"gn local" "$(cat "$MNT/src/gn.vsync-conflict" 2>&1)"
dir_over_logged() {
	grep -q "'src/gd' replaced remotely while it has local changes: moved to 'src/gd.vsync-conflict'" "$VS_MOUNT_LOG" &&
		grep -q "'src/gn' replaced remotely while it has local changes: moved to 'src/gn.vsync-conflict'" "$VS_MOUNT_LOG"
}
vs_check "the mount says so" dir_over_logged
save_now src/gd.vsync-conflict src/gn.vsync-conflict
vs_check "PostgreSQL has the dirty file's local bytes aside" \
	vs_poll 20 saved src/gd.vsync-conflict "$(printf 'gd v1\ngd local edit')"
vs_check "PostgreSQL has the new file aside" \
	vs_poll 20 saved src/gn.vsync-conflict "gn local"
vs_check "PostgreSQL has the moved directories" \
	bash -c "[[ \"\$('$CTL' -q cat rd src/gd/x.js)\" == 'x v1' &&
		\"\$('$CTL' -q cat rd src/gn/y.js)\" == 'y v1' ]]"
vs_check "the mount is in sync again (GET /status)" vs_poll 10 in_sync
vs_check "the mount shows what PostgreSQL has" vs_poll 10 vs_mount_equals_pg rd "$MNT"

# --- the same with the file's save journaled, its commit waiting (the
# project's row held), when the updater applies the rename (held back
# until then): PostgreSQL refuses that save at the directory, so the file
# goes aside all the same, where the save is made again (it stayed, and
# its save was refused at the directory for ever)
vs_check "the updater is held back" hold_updater src/blk6
vs_check "vsyncctl rm of a file" ctl rm rd src/gj
vs_check "vsyncctl mv of a directory to its path" ctl mv rd src/gk src/gj
# an unrelated change holds the project's row: the save waits
hold_row hold5 src/o10.js src/o11.js
printf 'gj local edit\n' >>"$MNT/src/gj" # journaled in 4 s
printf 'gj v1\ngj local edit\n' >"$W/gj_saved"
vs_check "its save is journaled" vs_poll 15 bytes_journaled "$W/gj_saved"
vs_check "its commit waits" vs_poll 15 vs_pg_lock_waits
vs_check "the updater goes on" release_updater src/blk6
vs_check "the rename is applied" vs_poll 20 test -f "$MNT/src/gj/z.js"
vs_check "the journaled file is aside with its local bytes" \
	cmp -s "$MNT/src/gj.vsync-conflict" "$W/gj_saved"
commit_held "the unrelated change is committed"
resaved_aside gj "$W/gj_saved"
vs_check "PostgreSQL has the moved directory" saved src/gj/z.js "z v1"
vs_check "the mount is in sync again (GET /status)" vs_poll 10 in_sync
vs_check "the mount shows what PostgreSQL has" vs_poll 10 vs_mount_equals_pg rd "$MNT"
gj_refused_once() {
	[[ "$(grep -c "local change to 'src/gj' was refused" "$VS_MOUNT_LOG")" == 1 ]]
}
vs_check "the save was refused once" gj_refused_once

# --- a local mv of a synced file, journaled and not committed yet (the
# project's row held), to a path where a remote change puts a directory
# (a remote mkdir there; a remote rename of a directory there, the file
# written after the mv, its save chained after the rename): the updater
# moves the file aside, PostgreSQL refuses the rename (a directory is
# there). The rename was dropped: the file aside stayed clean, never
# saved, and PostgreSQL kept the old path, which the mount no longer had.
# What the user did is carried out as far as PostgreSQL allows: the file
# is saved aside, the old path deleted there
vs_check "the updater is held back" hold_updater src/blk7
vs_check "vsyncctl mkdir at the path a file is moved to" ctl mkdir rd src/mp
vs_check "vsyncctl mv of a directory to the path another is moved to" \
	ctl mv rd src/mr src/mq
hold_row hold6 src/o12.js src/o13.js
vs_check "a local mv of a synced file" mv "$MNT/src/mx" "$MNT/src/mp"
vs_check "a local mv of another" mv "$MNT/src/my" "$MNT/src/mq"
printf 'my local edit\n' >>"$MNT/src/mq" # journaled in 4 s
printf 'my v1\nmy local edit\n' >"$W/my_saved"
vs_check "its save is journaled" vs_poll 15 bytes_journaled "$W/my_saved"
vs_check "their commits wait" vs_poll 15 vs_pg_lock_waits
vs_check "the updater goes on" release_updater src/blk7
vs_check "the remote changes are applied" \
	vs_poll 20 test -d "$MNT/src/mp" -a -f "$MNT/src/mq/z.js"
vs_check_eq "the first moved file is aside" \
	"mx v1" "$(cat "$MNT/src/mp.vsync-conflict" 2>&1)"
vs_check "the second is aside with its local bytes" \
	cmp -s "$MNT/src/mq.vsync-conflict" "$W/my_saved"
commit_held "the unrelated change is committed"
renames_refused() {
	grep -q "rename refused for good: .*'src/mx' -> 'src/mp'" "$VS_MOUNT_LOG" &&
		grep -q "rename refused for good: .*'src/my' -> 'src/mq'" "$VS_MOUNT_LOG"
}
vs_check "PostgreSQL refuses the renames" vs_poll 30 renames_refused
renames_carried_logged() {
	grep -q "rename of 'src/mx' to 'src/mp' is refused .*: 'src/mx' is deleted there, the file is saved at 'src/mp.vsync-conflict'" "$VS_MOUNT_LOG" &&
		grep -q "rename of 'src/my' to 'src/mq' is refused .*: 'src/my' is deleted there" "$VS_MOUNT_LOG"
}
vs_check "the mount says it carries the renames out aside" \
	vs_poll 10 renames_carried_logged
vs_check "PostgreSQL has the first file aside" \
	vs_poll 30 saved src/mp.vsync-conflict "mx v1"
vs_check "PostgreSQL has the second's local bytes aside" \
	vs_poll 30 saved_as src/mq.vsync-conflict "$W/my_saved"
old_gone() { ! pg_has src/mx && ! pg_has src/my; }
vs_check "PostgreSQL no longer has the old paths" vs_poll 30 old_gone
dirs_there() { pg_has src/mp && saved src/mq/z.js "z v1"; }
vs_check "PostgreSQL has the remote directories" dirs_there
vs_check "the mount is in sync again (GET /status)" vs_poll 10 in_sync
vs_check "the mount shows what PostgreSQL has" vs_poll 10 vs_mount_equals_pg rd "$MNT"

# --- a local mv of a synced file, journaled and not committed yet, whose
# old path a remote change deletes first: PostgreSQL refuses the rename
# (no such file). It was dropped: the mount had the file at its new
# path, clean, PostgreSQL had nothing there, for ever. It is saved where
# it is, a new file there
# the remote delete holds the project's row: the rename waits for it
held hold7 "a remote delete holds the project's row" \
	"SELECT vsync_delete('$ID', 'src/nx', NULL, NULL, 'test');"
vs_check "a local mv of the file" mv "$MNT/src/nx" "$MNT/src/np"
vs_check "its commit waits" vs_poll 15 vs_pg_lock_waits
commit_held "the remote delete is committed"
vs_check "PostgreSQL refuses the rename" vs_poll 30 grep -q \
	"rename refused for good: .*'src/nx' -> 'src/np'" "$VS_MOUNT_LOG"
vs_check "the mount says it saves the file where it is" vs_poll 10 grep -q \
	"the rename of 'src/nx' to 'src/np' is refused there: 'src/nx' was deleted there first; the file is saved at 'src/np', where it is" \
	"$VS_MOUNT_LOG"
save_now src/np
vs_check "PostgreSQL has the file at its new path" \
	vs_poll 30 saved src/np "nx v1"
vs_check "PostgreSQL has nothing at the old path" pg_lacks src/nx
vs_check "the mount is in sync again (GET /status)" vs_poll 10 in_sync
vs_check "the mount shows what PostgreSQL has" vs_poll 10 vs_mount_equals_pg rd "$MNT"

# --- a local mv of a synced file into a directory that a remote change
# has made a file (rm -r, then a file there: committed first, the updater
# held back), then a local rm of it, both journaled and not committed yet
# (the project's row held): PostgreSQL refuses the rename (a parent is a
# file), and the file is no longer in the mount. PostgreSQL kept its old
# path, which the mount did not have, for ever. It is deleted there, as
# the rename would have done
vs_check "the updater is held back" hold_updater src/blk8
vs_check "vsyncctl rm -r of a directory" ctl rm -r rd src/kq
printf 'kq remote\n' >"$W/kq_file"
vs_check "vsyncctl put of a file at its path" ctl put rd src/kq "$W/kq_file"
# an unrelated change holds the project's row: the rename and rm wait
hold_row hold8 src/o14.js src/o15.js
vs_check "a local mv of a file into the directory" mv "$MNT/src/kx" "$MNT/src/kq/kp"
vs_check "a local rm of it" rm "$MNT/src/kq/kp"
vs_check "their commits wait" vs_poll 15 vs_pg_lock_waits
commit_held "the unrelated change is committed"
vs_check "PostgreSQL refuses the rename" vs_poll 30 grep -q \
	"rename refused for good: .*'src/kx' -> 'src/kq/kp'" "$VS_MOUNT_LOG"
vs_check "the mount says it deletes the old path there" vs_poll 10 grep -q \
	"the rename of 'src/kx' to 'src/kq/kp' is refused there (a directory, or a file above it): 'src/kx' is deleted there; the file was deleted here since" \
	"$VS_MOUNT_LOG"
vs_check "PostgreSQL no longer has the old path" vs_poll 30 pg_lacks src/kx
vs_check "the updater goes on" release_updater src/blk8
vs_check "the remote changes are applied" vs_poll 20 test -f "$MNT/src/kq"
vs_check "the mount is in sync again (GET /status)" vs_poll 10 in_sync
vs_check "the mount shows what PostgreSQL has" vs_poll 10 vs_mount_equals_pg rd "$MNT"

# --- a file with local changes where a remote change puts a directory,
# with no free name beside it (NAME.vsync-conflict and -1 to -15 taken):
# it stays with its bytes, its save refused there. The wait between two
# refusals never grew (a second, or the quiet period: a snapshot cleared
# it), nor did the log say why the file stayed
printf 'gz local edit\n' >>"$MNT/src/gz" # dirty for 4 s
printf 'gz v1\ngz local edit\n' >"$W/gz_local"
vs_check "vsyncctl rm of the dirty file" ctl rm rd src/gz
vs_check "vsyncctl mkdir at its path" ctl mkdir rd src/gz
vs_check "the mount says it cannot move it aside" vs_poll 10 grep -q \
	"'src/gz' cannot be moved aside: 'src/gz.vsync-conflict' and '-1' to '-15' are taken" \
	"$VS_MOUNT_LOG"
vs_check "nor show the change" grep -q \
	"'src/gz' replaced remotely while it has local changes: kept, the change is not shown" \
	"$VS_MOUNT_LOG"
gz_refusals() { # the time of each refusal of src/gz's save (ms in the day)
	sed -n "s/^ts=[0-9-]*T\([0-9]*\):\([0-9]*\):\([0-9.]*\)Z.*local change to 'src\/gz' was refused.*/\1 \2 \3/p" \
		"$VS_MOUNT_LOG" | awk '{ printf "%d\n", ($1 * 3600 + $2 * 60 + $3) * 1000 }'
}
refused_gz() { # N: refused N times or more?
	(($(gz_refusals | wc -l) >= $1))
}
vs_check "its save is refused, again and again" vs_poll 40 refused_gz 3
# the wait it names after each refusal: up to 1, 2, 4 s (at least half of
# it; the quiet period, 4 s here, is the least wait between two saves of
# a file, so the refusals themselves come 4 s apart at first: seeing the
# waits grow past it would take six refusals, 30 s)
gz_waits() { # the waits named, in ms, one a line
	sed -n "s/.*local edit of 'src\/gz' stays a local change.*(next try in \([0-9]*\)\.\([0-9]\) s, later after each refusal, up to 30 s).*/\1 \2/p" \
		"$VS_MOUNT_LOG" | awk '{ printf "%d\n", $1 * 1000 + $2 * 100 }'
}
gz_waits_grow() { # never shorter than the one before, the third over
	# twice the first (printed to 0.1 s: 1.0 and 1.0 may be 1 and 1.09)
	gz_waits | awk 'NR > 1 && $1 < last { bad = 1 } NR == 1 { first = $1 }
		NR == 3 { third = $1 } { last = $1 }
		END { exit bad || NR < 3 || third < 2 * first }'
}
vs_check "the wait named after each refusal grows (1 s, 2 s, 4 s at most)" \
	gz_waits_grow
gz_refusals_apart() { # the first three refusals, the quiet period apart
	gz_refusals | awk 'NR > 1 && NR <= 3 && $1 - t < 3900 { bad = 1 }
		{ t = $1 } END { exit bad || NR < 3 }'
}
vs_check "the refusals come the quiet period apart at least" gz_refusals_apart
vs_check "the file keeps its local bytes" cmp -s "$MNT/src/gz" "$W/gz_local"

vs_umount "$MNT"
vs_summary
