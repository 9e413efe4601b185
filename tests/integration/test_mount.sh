#!/usr/bin/env bash
#
# test_mount.sh - end-to-end test of the foundation: import a generated tree
# into a throwaway PostgreSQL with vsyncctl, mount it with vsync-mount, and
# check what a dev server would rely on:
#
#   - every file's bytes, mode and size, and every symlink's target, equal
#     the source; node_modules/ and .git/ were not imported
#   - a name longer than 255 bytes is ENAMETOOLONG
#   - with --read-only, writes to synced paths are EROFS (the default is
#     writable: test_writable.sh)
#   - the local-only node_modules/ takes a 2000-file tar -x (and an offline
#     npm install when npm exists), reads back, and survives a remount
#   - a remount with the same cache dir, then with PostgreSQL stopped: what
#     was read before is served byte-identical from the cache, and a file
#     never read fails with EIO within 2 s (Never hang)
#   - SIGTERM to vsync-mount and fusermount3 -u both leave no mount
#   - a failed start (mountpoint not empty, unknown project, PostgreSQL
#     unreachable with no cached manifest, the cache dir in use by the
#     running mount: exit 1 naming its pid, and the running mount unharmed)
#     exits non-zero with a reason and leaves no mount
#
# Every step has a deadline; everything mounted or started is unmounted and
# killed at exit (tests/lib/servers.sh). Needs /dev/fuse (else exit 77).
# Environment: VSYNC_BUILD_DIR (default build/), VS_KEEP_LOGS=1 keeps the
# private directory with the logs.

# The sh -c snippets take their arguments as $1...: single quotes are meant.
# shellcheck disable=SC2016

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/servers.sh
. "$here/../lib/servers.sh"

vs_need_fuse
vs_deadline 560

MOUNT_BIN=$VSYNC_BUILD_DIR/agent/vsync-mount
CTL_BIN=$VSYNC_BUILD_DIR/agent/vsyncctl
for b in "$MOUNT_BIN" "$CTL_BIN"; do
	if [[ ! -x "$b" ]]; then
		vs_fail "binaries built: expected an executable $b, saw none"
		vs_summary
		exit 1
	fi
done

vs_servers_start pg
W=$VS_SERVERS_DIR/work
VS_LOG_DIR=$W/logs
mkdir -p "$VS_LOG_DIR"
TREE=$W/tree
CACHE=$W/cache
MNT=$W/mnt
NEVER=late/never-read.txt
PROJECT=proj

vs_logs_on_failure "$VS_LOG_DIR/mount.*.log"

ctl() {
	timeout -k 5 120 "$CTL_BIN" --pg "$VSYNC_PG_URL" "$@"
}

# ---------------------------------------------------------------- helpers

# listing DIR: one line per synced file or symlink: path, type, mode and
# size (files) or target (symlinks). The excluded and local-only trees at
# the top are left out on both sides (the fixture has none but node_modules/
# and .git/; the test writes into the local-only ones on the mount).
listing() {
	(cd "$1" && timeout -k 5 120 find . \
		\( -path ./node_modules -o -path ./.git -o -path ./.vite -o \
		-path ./.next -o -path ./dist -o -path ./build -o -path ./.cache \) \
		-prune -o \
		-type f -printf '%P\tf\t%m\t%s\n' -o \
		-type l -printf '%P\tl\t%l\n') | LC_ALL=C sort
}

# compare_listing DESC: the mount's listing equals the source's.
compare_listing() {
	local desc=$1 d
	listing "$MNT" >"$W/mnt.list" || true
	if d=$(diff "$W/src.list" "$W/mnt.list"); then
		vs_pass "$desc ($(wc -l <"$W/src.list") entries)"
	else
		vs_fail "$desc: expected the source's names, types, modes, sizes and targets, saw differences (< source, > mount): $(printf '%s\n' "$d" | head -n 8)"
	fi
}

# compare_bytes DESC LIST: every file of LIST (NUL-separated relative
# paths) has the same bytes in source and mount, within 180 s: one SHA-256
# pass per side (a handful of processes, not one cmp per file), and the
# files whose digests differ, or that cannot be read, are named.
compare_bytes() {
	local desc=$1 list=$2 bad rc=0
	sums() {
		(cd "$1" && timeout -k 5 180 xargs -0 -r sha256sum -- <"$2" 2>&1)
	}
	bad=$(diff <(sums "$TREE" "$list") <(sums "$MNT" "$list")) || rc=$?
	if ((rc == 0)); then
		vs_pass "$desc ($(tr -cd '\0' <"$list" | wc -c) files)"
	else
		vs_fail "$desc: expected identical bytes, saw differences (< source, > mount), e.g.:
$(printf '%s\n' "$bad" | grep '^[<>]' | head -n 6 | sed 's/^/#   /')"
	fi
}

# digest DIR: sorted "sha256  path" of every file under DIR.
digest() {
	(cd "$1" && timeout -k 5 120 find . -type f -print0 | LC_ALL=C sort -z |
		timeout -k 5 120 xargs -0 -r sha256sum)
}

# expect_error DESC NEEDLE CMD...: CMD fails (within 10 s) and says NEEDLE.
expect_error() {
	local desc=$1 needle=$2 out rc=0
	shift 2
	out=$(timeout -k 2 10 "$@" 2>&1) || rc=$?
	if ((rc == 124 || rc == 137)); then
		vs_fail "$desc: expected '$needle' within 10 s, saw a timeout"
	elif ((rc != 0)) && [[ $out == *"$needle"* ]]; then
		vs_pass "$desc"
	else
		vs_fail "$desc: expected failure with '$needle', saw exit $rc: $(printf '%s' "$out" | head -n 2)"
	fi
}

# gone MNT PID: no mount at MNT and PID has exited.
gone() {
	vs__not_mounted "$1" && vs__pid_gone "$2"
}

# expect_start_failure DESC NEEDLE_REGEX MNT ARGS...: vsync-mount exits
# non-zero within 30 s, prints a line matching NEEDLE_REGEX, leaves no mount.
expect_start_failure() {
	local desc=$1 needle=$2 mnt=$3 out rc=0 t0 ms
	shift 3
	vs_on_exit "vs__cleanup_mount $(printf '%q' "$mnt")"
	t0=$(vs_now_ms)
	out=$(timeout -k 5 30 "$MOUNT_BIN" "$@" 2>&1 </dev/null) || rc=$?
	ms=$(($(vs_now_ms) - t0))
	printf '%s\n' "$out" >"$VS_LOG_DIR/start-failure.$RANDOM.log"
	START_RC=$rc
	if ((rc == 124 || rc == 137)); then
		vs_fail "$desc: expected a failed start within 30 s, saw it still running"
	elif ((rc == 0)); then
		vs_fail "$desc: expected a non-zero exit, saw 0 (output: $(printf '%s' "$out" | head -n 2))"
	elif ! grep -Eiq -- "$needle" <<<"$out"; then
		vs_fail "$desc: expected a line matching /$needle/, saw: $(printf '%s' "$out" | head -n 3)"
	else
		vs_pass "$desc (exit $rc after $ms ms: $(grep -Ei -m1 -- "$needle" <<<"$out"))"
	fi
	if vs_is_mounted "$mnt"; then
		vs_fail "$desc: expected no mount left at $mnt, saw one"
		vs__cleanup_mount "$mnt"
	fi
}

# ---------------------------------------------------------------- setup

t0=$(vs_now_ms)
"$here/gen_tree.sh" -n 1000 -b 50 "$TREE"
mkdir -p "$TREE/late"
printf 'imported, listed, never read before PostgreSQL stops: %s\n' "$RANDOM$RANDOM" \
	>"$TREE/$NEVER"
vs_log "tree generated in $(($(vs_now_ms) - t0)) ms"

vs_check "vsyncctl init" ctl init
t0=$(vs_now_ms)
vs_check "vsyncctl import $PROJECT" ctl import "$PROJECT" "$TREE"
if ! vs_last_ok; then
	vs_summary || true
	exit 1
fi
vs_log "import took $(($(vs_now_ms) - t0)) ms"

listing "$TREE" >"$W/src.list"
# Files to compare byte for byte: all synced files but the never-read one.
awk -F'\t' -v n="$NEVER" '$2 == "f" && $1 != n { printf "%s%c", $1, 0 }' \
	"$W/src.list" >"$W/read.list"
mkdir -p "$MNT" "$CACHE"

# mount_main DESC [ARGS...]: mount the project at $MNT with the shared cache.
mount_main() {
	local desc=$1 t0
	shift
	t0=$(vs_now_ms)
	if ! vs_mount "$PROJECT" "$MNT" --pg "$VSYNC_PG_URL" --cache-dir "$CACHE" "$@"; then
		vs_fail "$desc: expected $MNT mounted within 10 s, saw no mount (log: $VS_MOUNT_LOG)"
		return 1
	fi
	vs_pass "$desc: mounted in $(($(vs_now_ms) - t0)) ms"
}

# umount_main DESC: unmount $MNT (in this shell, so the daemon is reaped).
umount_main() {
	if vs_umount "$MNT"; then
		vs_pass "$1"
	else
		vs_fail "$1: expected no mount at $MNT and vsync-mount exited, saw a mount left"
	fi
}

# ---------------------------------------------------------------- pass 1

if ! mount_main "first mount (--read-only)" --read-only; then
	vs_summary || true
	exit 1
fi

compare_listing "first mount: names, modes, sizes, symlink targets equal the source"
t0=$(vs_now_ms)
compare_bytes "first mount: every file's bytes equal the source (sha256)" "$W/read.list"
vs_log "first read of all files took $(($(vs_now_ms) - t0)) ms"

vs_check "symlink docs/link-to-readme points to ../docs/README.md" \
	test "$(readlink "$MNT/docs/link-to-readme")" = ../docs/README.md
vs_check "symlink is followed" cmp "$MNT/README.link" "$TREE/docs/README.md"
vs_check "scripts/run.sh is executable (0755) and runs" \
	sh -c '[ "$(stat -c %a "$1")" = 755 ] && [ "$("$1")" = "hello from scripts/run.sh" ]' _ "$MNT/scripts/run.sh"
vs_check "node_modules/ content of the source was not imported" \
	test ! -e "$MNT/node_modules/left-pad/index.js"
vs_check ".git/ of the source was not imported" test ! -e "$MNT/.git/HEAD"

long=$(printf 'x%.0s' {1..300})
expect_error "a 300-byte name is ENAMETOOLONG" "File name too long" stat "$MNT/$long"
expect_error "a 300-byte name in a subdirectory is ENAMETOOLONG" "File name too long" \
	stat "$MNT/src/$long"
expect_error "a missing file is ENOENT" "No such file or directory" stat "$MNT/no-such-file"

expect_error "appending to a synced file is EROFS" "Read-only file system" \
	sh -c 'echo change >>"$1"' _ "$MNT/docs/README.md"
expect_error "truncating a synced file is EROFS" "Read-only file system" \
	truncate -s 0 "$MNT/package.json"
expect_error "creating a file in a synced directory is EROFS" "Read-only file system" \
	touch "$MNT/src/new-file.js"
expect_error "mkdir in a synced directory is EROFS" "Read-only file system" \
	mkdir "$MNT/src/new-dir"
expect_error "unlinking a synced file is EROFS" "Read-only file system" \
	rm -f "$MNT/package.json"
expect_error "renaming a synced file is EROFS" "Read-only file system" \
	mv "$MNT/package.json" "$MNT/package2.json"
vs_check "synced files unchanged after the refused writes" \
	sh -c 'cmp "$1/docs/README.md" "$2/docs/README.md" && cmp "$1/package.json" "$2/package.json"' \
	_ "$MNT" "$TREE"

# Local-only node_modules/: 2000 small files through tar, and npm.
HAVE_NPM_PKG=
check_npm() {
	[[ -n "$HAVE_NPM_PKG" ]] || return 0
	vs_check "$1" sh -c 'cd "$1" &&
		[ "$(timeout 30 node -e "process.stdout.write(require(\"tinypkg\")())")" = "tiny ok" ]' _ "$MNT"
}
# npm first: `npm install` prunes packages it does not know of, so it would
# remove the tar's pkg-* directories if it ran after them.
if command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then
	mkdir -p "$W/tinypkg"
	printf '{ "name": "tinypkg", "version": "1.0.0", "main": "index.js" }\n' >"$W/tinypkg/package.json"
	printf 'module.exports = () => "tiny ok";\n' >"$W/tinypkg/index.js"
	export npm_config_cache=$W/npm-cache npm_config_update_notifier=false
	if (cd "$W/tinypkg" && timeout -k 5 60 npm pack --offline --pack-destination "$W" >"$VS_LOG_DIR/npm-pack.log" 2>&1); then
		vs_check "npm install --offline of a local package into the mount" \
			sh -c 'cd "$1" && timeout -k 5 120 npm install --offline --no-save --no-package-lock --no-audit --no-fund --ignore-scripts "$2"' \
			_ "$MNT" "$W/tinypkg-1.0.0.tgz"
		HAVE_NPM_PKG=1
		check_npm "node loads the npm-installed package from the mount"
	else
		vs_fail "npm pack of a local package: expected success, saw: $(tail -n 2 "$VS_LOG_DIR/npm-pack.log")"
	fi
else
	vs_log "npm not installed: the npm install case is left out"
fi

NMSRC=$W/nm-src
for ((p = 0; p < 20; p++)); do
	mkdir -p "$NMSRC/pkg-$p/lib/deep"
	for ((f = 0; f < 100; f++)); do
		case $((f % 3)) in
		0) d=$NMSRC/pkg-$p ;;
		1) d=$NMSRC/pkg-$p/lib ;;
		*) d=$NMSRC/pkg-$p/lib/deep ;;
		esac
		printf 'module.exports = "%d/%d";\n' "$p" "$f" >"$d/m$f.js"
	done
done
tar -C "$NMSRC" -cf "$W/nm.tar" .
digest "$NMSRC" >"$W/nm.digest"

write_node_modules() {
	mkdir -p "$MNT/node_modules" &&
		timeout -k 5 120 tar -C "$MNT/node_modules" -xf "$W/nm.tar"
}
t0=$(vs_now_ms)
vs_check "tar -x of 2000 files into the local-only node_modules/" write_node_modules
vs_log "tar -x into node_modules took $(($(vs_now_ms) - t0)) ms"
# digest of node_modules restricted to the tar's packages
nm_digest() {
	local p out=
	for ((p = 0; p < 20; p++)); do
		out+=$(cd "$MNT/node_modules" && timeout -k 5 60 find "./pkg-$p" -type f -print0 |
			LC_ALL=C sort -z | timeout -k 5 60 xargs -0 -r sha256sum)$'\n'
	done
	printf '%s' "$out"
}
check_nm() {
	local got
	got=$(nm_digest 2>&1 | LC_ALL=C sort)
	if [[ "$got" == "$(LC_ALL=C sort "$W/nm.digest")" ]]; then
		vs_pass "$1"
	else
		vs_fail "$1: expected the 2000 files written to node_modules/, saw: $(diff <(LC_ALL=C sort "$W/nm.digest") <(printf '%s\n' "$got") | head -n 4)"
	fi
}
check_nm "node_modules/ reads back what tar wrote"

# The other local-only directories take writes too.
for d in .vite .next dist build .cache; do
	vs_check "$d/ is local-only and writable" sh -c '
		mkdir -p "$1/$2/sub" && printf "built %s\n" "$2" >"$1/$2/sub/out.js" &&
		[ "$(cat "$1/$2/sub/out.js")" = "built $2" ]' _ "$MNT" "$d"
done
vs_check "removing a file in node_modules/ works" rm "$MNT/node_modules/pkg-0/m0.js"
vs_check "rewriting a file in node_modules/ works" \
	sh -c 'printf "module.exports = \"0/0\";\n" >"$1"' _ "$MNT/node_modules/pkg-0/m0.js"

# ---------------------------------------------------------------- failed starts (PostgreSQL up)

FULL=$W/not-empty
mkdir -p "$FULL"
echo occupied >"$FULL/file"
expect_start_failure "start on a non-empty mountpoint fails" "empty" "$FULL" \
	"$PROJECT" "$FULL" -f --pg "$VSYNC_PG_URL" --cache-dir "$W/cache-fail1"

mkdir -p "$W/mnt-unknown"
expect_start_failure "start of an unknown project fails (foreground)" \
	"no-such-project|unknown|not found" "$W/mnt-unknown" \
	no-such-project "$W/mnt-unknown" -f --pg "$VSYNC_PG_URL" --cache-dir "$W/cache-fail2"
expect_start_failure "start of an unknown project fails (background mode)" \
	"no-such-project|unknown|not found" "$W/mnt-unknown" \
	no-such-project "$W/mnt-unknown" --pg "$VSYNC_PG_URL" --cache-dir "$W/cache-fail2"

# A second agent on the cache dir of the running mount: refused before it
# mounts (it would clobber the first one's journal), the first one intact.
mkdir -p "$W/mnt-second"
expect_start_failure "a second mount on the same cache dir fails" \
	"cache dir '$CACHE' is in use by another vsync-mount \(pid $VS_MOUNT_PID\)" \
	"$W/mnt-second" "$PROJECT" "$W/mnt-second" -f --pg "$VSYNC_PG_URL" --cache-dir "$CACHE"
vs_check_eq "a second mount on the same cache dir: exit status" 1 "$START_RC"
vs_check "the first mount still serves after the refused second one" \
	cmp "$MNT/docs/README.md" "$TREE/docs/README.md"
vs_check "the first mount still writes node_modules/ after the refused second one" \
	sh -c 'echo again >"$1/node_modules/second.txt" && [ "$(cat "$1/node_modules/second.txt")" = again ]' _ "$MNT"

mkdir -p "$W/mnt-nopg"
expect_start_failure "start with PostgreSQL unreachable and no cached manifest fails" \
	"postgres|pg|connect|unreachable|database|manifest" "$W/mnt-nopg" \
	"$PROJECT" "$W/mnt-nopg" -f --pg "host=$W/no-such-socket-dir port=5432 user=postgres dbname=postgres connect_timeout=2" \
	--cache-dir "$W/cache-fail3"

# ---------------------------------------------------------------- pass 2: remount, same cache

umount_main "unmount (fusermount3 -u) leaves no mount"
if mount_main "remount with the same cache dir"; then
	compare_listing "remount: listing equals the source"
	compare_bytes "remount: every file's bytes equal the source" "$W/read.list"
	check_nm "remount: node_modules/ survived the unmount"
	check_npm "remount: the npm-installed package survived the unmount"
	umount_main "unmount after the remount leaves no mount"
fi

# ---------------------------------------------------------------- pass 3: PostgreSQL stopped

vs_check "PostgreSQL stopped" vs_pg_stop
vs_check "PostgreSQL is really down" sh -c '! "$1/pg_isready" -q -h "$2" -t 1' _ "$VS_PG_BIN" "$VS_PG_SOCKDIR"

# The never-read file must not be in the cache. A prefetcher may have
# fetched it anyway; then take its blob out (the cache is content-addressed)
# so that the miss case below is still tested.
never_sha=$(sha256sum <"$TREE/$NEVER" | cut -d' ' -f1)
mapfile -t blobs < <(find "$CACHE" -name "*$never_sha*" 2>/dev/null)
if ((${#blobs[@]} > 0)); then
	vs_log "the never-read file was prefetched into the cache; removing ${blobs[*]}"
	rm -f -- "${blobs[@]}"
fi

if mount_main "mount with PostgreSQL down, from the cache"; then
	compare_listing "PostgreSQL down: listing equals the source (cached manifest)"
	compare_bytes "PostgreSQL down: every file read before is served byte-identical" "$W/read.list"
	check_nm "PostgreSQL down: node_modules/ still there"
	check_npm "PostgreSQL down: the npm-installed package still loads"

	t0=$(vs_now_ms)
	rc=0
	out=$(timeout -k 2 10 cat "$MNT/$NEVER" 2>&1) || rc=$?
	ms=$(($(vs_now_ms) - t0))
	if ((rc != 0)) && [[ $out == *"Input/output error"* ]] && ((ms <= 2000)); then
		vs_pass "PostgreSQL down: a never-read file fails with EIO in $ms ms"
	else
		vs_fail "PostgreSQL down: a never-read file: expected 'Input/output error' within 2000 ms, saw exit $rc after $ms ms: $(printf '%s' "$out" | head -c 200)"
	fi
	vs_check "PostgreSQL down: the mount still serves after the EIO" \
		cmp "$MNT/docs/README.md" "$TREE/docs/README.md"

	# Clean unmount via SIGTERM.
	pid=$VS_MOUNT_PID
	kill -TERM "$pid" 2>/dev/null || true
	if vs_poll 10 gone "$MNT" "$pid"; then
		vs_pass "SIGTERM: vsync-mount exits and leaves no mount"
		rc=0
		wait "$pid" || rc=$?
		vs_check_eq "SIGTERM: exit status of a clean shutdown" 0 "$rc"
	else
		vs_fail "SIGTERM: expected vsync-mount gone and no mount within 10 s, saw $(vs_is_mounted "$MNT" && echo 'a mount' || echo 'the process')"
	fi
	vs_umount "$MNT" || true
fi

# Clean unmount via fusermount3 -u (still without PostgreSQL).
if mount_main "second mount with PostgreSQL down"; then
	vs_check "second mount without PostgreSQL reads cached files" \
		cmp "$MNT/big/random.bin" "$TREE/big/random.bin"
	pid=$VS_MOUNT_PID
	timeout -k 2 10 fusermount3 -u "$MNT" || true
	if vs_poll 10 gone "$MNT" "$pid"; then
		vs_pass "fusermount3 -u: vsync-mount exits and leaves no mount"
		rc=0
		wait "$pid" || rc=$?
		vs_check_eq "fusermount3 -u: exit status of a clean shutdown" 0 "$rc"
	else
		vs_fail "fusermount3 -u: expected vsync-mount gone and no mount within 10 s, saw $(vs_is_mounted "$MNT" && echo 'a mount' || echo 'the process')"
	fi
	vs_umount "$MNT" || true
fi

vs_check "nothing of this test is left in /proc/mounts" \
	sh -c '! grep -qF -- "$1" /proc/mounts' _ "$W"

vs_summary
