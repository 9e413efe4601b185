#!/usr/bin/env bash
#
# test_git.sh - git working in a writable mount: the repository (.git/,
# local-only: kept in the cache dir, never synced) over synced files.
#
# Covers: git init / add / commit in the mount; on a branch: an edit, a new
# file, a deletion, a rename into a new directory, a mode change (chmod -x),
# committed; `git checkout main` and back to the branch: each time the
# worktree equals the branch's tree, `git status --porcelain` is empty, and
# PostgreSQL (polled) holds exactly the branch's files with their bytes
# and modes and no directory git removed; a stash round trip (the stashed
# edit leaves PostgreSQL and comes back with `git stash pop`); git log;
# git fsck --strict, git gc and fsck again (the object store's rename,
# fsync, chmod and pack patterns on the local-only layer); no .git path in
# PostgreSQL at any point (vsyncctl ls and project_files, file_operations).
#
# Needs /dev/fuse (else exit 77), git, PostgreSQL (started here).
set -u

# shellcheck source=tests/lib/servers.sh
. "$(dirname "$0")/../lib/servers.sh"

vs_need_fuse
vs_need_cmd git "the repository this test works in"
CTL=$VSYNC_BUILD_DIR/agent/vsyncctl
vs_deadline 180
vs_pg_fixture || exit 1
umask 022

# git without the user's or the system's configuration, no background
# maintenance (nothing may outlive the test on the mount)
export GIT_CONFIG_NOSYSTEM=1 HOME=$W/home GIT_AUTHOR_DATE=@1700000000 \
	GIT_COMMITTER_DATE=@1700000000
mkdir -p "$HOME"
git config --global user.name vsync-test
git config --global user.email test@vsync.invalid
git config --global gc.auto 0
git config --global maintenance.auto false
git config --global init.defaultBranch main
git config --global advice.detachedHead false

SRC=$W/src
mkdir -p "$SRC/src" "$SRC/tools"
printf 'export const a = 1;\n' >"$SRC/src/a.js"
printf 'export const b = 2;\n' >"$SRC/src/b.js"
printf '# project\n\nsome words\n' >"$SRC/README.md"
printf '#!/bin/sh\necho run\n' >"$SRC/tools/run.sh"
chmod 755 "$SRC/tools/run.sh"
vs_check "init and import" sh -c '"$1" -q init && "$1" -q import w "$2"' _ "$CTL" "$SRC"
ID=$(vs_sql "SELECT vsync_project_id('w')")
MNT=$W/mnt
mkdir -p "$MNT"
vs_mount w "$MNT" --cache-dir "$W/cache" --writable --author git-test || exit 1

g() { git -C "$MNT" "$@"; }

# What PostgreSQL has: "mode hash path" for each live file (mode in
# decimal), and the live directories.
pg_files() {
	vs_sql "SELECT mode || ' ' || content_hash || ' ' || file_path FROM project_files
	     WHERE project_id = '$ID' AND is_current AND NOT is_deleted
	       AND kind = 'file' ORDER BY file_path"
}
pg_dirs() {
	vs_sql "SELECT file_path FROM project_files WHERE project_id = '$ID'
	     AND is_current AND NOT is_deleted AND kind = 'dir'
	     ORDER BY file_path"
}

# The same for the tree of REF, from git: 100644 -> 420, 100755 -> 493.
git_files() {
	local mode sha path hash
	while IFS=$' \t' read -r mode _ sha path; do
		hash=$(g cat-file blob "$sha" | sha256sum | cut -d' ' -f1)
		printf '%d %s %s\n' "$((8#${mode: -3}))" "$hash" "$path"
	done < <(g ls-tree -r "$1") | LC_ALL=C sort -k3
}
git_dirs() {
	g ls-tree -r -d --name-only "$1" | LC_ALL=C sort
}

pg_is() {
	[[ "$(pg_files)" == "$1" && "$(pg_dirs)" == "$2" ]]
}

# on_branch REF: the worktree, git status and PostgreSQL all equal REF.
on_branch() {
	local ref=$1 files dirs wt
	vs_check_eq "$ref: HEAD is $ref" "$ref" "$(g rev-parse --abbrev-ref HEAD)"
	vs_check_eq "$ref: git status --porcelain is empty" "" \
		"$(g status --porcelain --untracked-files=all 2>&1)"
	wt=$(cd "$MNT" && find . -path ./.git -prune -o -type f -print |
		sed 's|^\./||' | LC_ALL=C sort)
	vs_check_eq "$ref: the worktree has the branch's files" \
		"$(g ls-tree -r --name-only "$ref" | LC_ALL=C sort)" "$wt"
	vs_check "$ref: the worktree's bytes are the branch's" \
		g diff --quiet "$ref" --
	files=$(git_files "$ref")
	dirs=$(git_dirs "$ref")
	if vs_poll 20 pg_is "$files" "$dirs"; then
		vs_pass "$ref: PostgreSQL holds the branch's tree (bytes, modes, dirs)"
	else
		vs_fail "$ref: PostgreSQL holds the branch's tree: expected
$files
$dirs
saw
$(pg_files)
$(pg_dirs)"
	fi
}

no_git_in_pg() {
	local n
	n=$(vs_sql "SELECT (SELECT count(*) FROM project_files
	                 WHERE project_id = '$ID' AND (file_path = '.git'
	                   OR file_path LIKE '.git/%' OR file_path LIKE '%/.git'
	                   OR file_path LIKE '%/.git/%'))
	              + (SELECT count(*) FROM file_operations
	                 WHERE project_id = '$ID' AND (path LIKE '.git%'
	                   OR path LIKE '%/.git%'))")
	vs_check_eq "$1: no .git path in project_files or file_operations" 0 "$n"
	vs_check "$1: no .git path in vsyncctl ls" \
		sh -c '! "$1" ls w | grep -q "\.git"' _ "$CTL"
}

# ---------------------------------------------------------------- main
vs_check "git init" g init -q
vs_check "git add" g add -A
vs_check "git commit" g commit -q -m initial
no_git_in_pg "after the first commit"

# ---------------------------------------------------------------- feature
vs_check "git checkout -b feature" g checkout -q -b feature
printf 'export const a = 10;\nexport const a2 = 11;\n' >"$MNT/src/a.js"
printf 'export const c = 3;\n' >"$MNT/src/c.js"
vs_check "git rm src/b.js" g rm -q src/b.js
mkdir -p "$MNT/docs"
vs_check "git mv README.md docs/README.md" g mv README.md docs/README.md
chmod 644 "$MNT/tools/run.sh"
vs_check "git add" g add -A
vs_check "git commit on feature" g commit -q -m "feature: edit, add, delete, rename, chmod"
on_branch feature

vs_check "git checkout main" g checkout -q main
on_branch main
vs_check "git checkout feature" g checkout -q feature
on_branch feature
vs_check_eq "git log on feature" "feature: edit, add, delete, rename, chmod
initial" "$(g log --format=%s)"

# ---------------------------------------------------------------- stash
printf 'export const c = 30;\n' >"$MNT/src/c.js"
c_edit=$(sha256sum <"$MNT/src/c.js" | cut -d' ' -f1)
pg_c_is() {
	[[ "$(vs_sql "SELECT content_hash FROM project_files WHERE project_id = '$ID'
	           AND file_path = 'src/c.js' AND is_current")" == "$1" ]]
}
vs_check "the edit to stash reaches PostgreSQL" vs_poll 20 pg_c_is "$c_edit"
vs_check "git stash" g stash -q
on_branch feature
vs_check "git stash pop" g stash pop -q
vs_check_eq "the stashed edit is back in the worktree" \
	'export const c = 30;' "$(cat "$MNT/src/c.js")"
vs_check "and in PostgreSQL" vs_poll 20 pg_c_is "$c_edit"
vs_check "git checkout -- src/c.js" g checkout -q -- src/c.js
on_branch feature

# ---------------------------------------------------------------- objects
vs_check "git fsck --strict" g fsck --strict --no-progress
vs_check "git gc" g gc -q --prune=now
vs_check "git fsck --strict after gc" g fsck --strict --no-progress
vs_check "the objects are packed" test -n "$(ls "$MNT"/.git/objects/pack/*.pack 2>/dev/null)"
vs_check "git log after gc" g log -q --oneline -1
no_git_in_pg "at the end"
vs_check "the repository lives in the cache dir's local layer" \
	test -n "$(find "$W/cache" -path '*/local/.git/HEAD' -print -quit)"

vs_umount "$MNT"
vs_summary
