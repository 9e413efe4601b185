#!/usr/bin/env bash
#
# test_permissions.sh - on a mount with -o allow_other, another user is
# refused exactly where a local disk would refuse it, and what it creates
# on local-only paths is its own.
#
# vsync-mount runs as root with -o allow_other (default_permissions is then
# added by vsync-mount). The same tree is laid out on a local directory
# owned by root. As user nobody, each case runs on both and must give the
# same outcome (exit status and the error's text): writing, truncating,
# removing and creating next to root's files, making a directory in root's
# node_modules/, chmod of root's file, removing root's file in a sticky
# directory; reading is allowed. In a world-writable local-only directory
# nobody's new file, directory, symlink and FIFO belong to nobody
# (uid and gid), as on the disk; new modes follow the caller's umask only
# (0 and 027), not the daemon's, and keep the set-id bits a disk keeps
# (setuid; setgid where the file's group is the caller's).
#
# Needs /dev/fuse and root (else exit 77); starts PostgreSQL.
set -u

# shellcheck source=tests/lib/servers.sh
. "$(dirname "$0")/../lib/servers.sh"

vs_need_fuse
if ((EUID != 0)); then
	echo "SKIP: test_permissions needs root (to act as another user)" >&2
	exit 77
fi
if ! id nobody >/dev/null 2>&1; then
	echo "SKIP: test_permissions needs the user nobody" >&2
	exit 77
fi
CTL=$VSYNC_BUILD_DIR/agent/vsyncctl
vs_deadline 240
vs_pg_fixture || exit 1
chmod 0755 "$W"
NOBODY_UID=$(id -u nobody)
NOBODY_GID=$(id -g nobody)

SRC=$W/src
mkdir -p "$SRC/src"
echo "export const x = 1;" >"$SRC/src/app.js"
vs_check "init and import" sh -c '"$1" -q init && "$1" -q import perm "$2"' _ "$CTL" "$SRC"

REF=$W/ref
MNT=$W/mnt
mkdir -p "$REF/src" "$MNT"
cp "$SRC/src/app.js" "$REF/src/app.js"
vs_mount perm "$MNT" --cache-dir "$W/cache" -o allow_other || {
	vs_fail "mount with -o allow_other"
	vs_summary
	exit 1
}
vs_check "the mount has default_permissions" grep -q "default_permissions" \
	<(grep " $MNT " /proc/mounts)
for d in "$REF" "$MNT"; do
	mkdir -p "$d/node_modules/shared" "$d/node_modules/sticky"
	chmod 0755 "$d/node_modules"
	chmod 1777 "$d/node_modules/shared" "$d/node_modules/sticky"
	echo root >"$d/node_modules/sticky/roots"
	chmod 0666 "$d/node_modules/sticky/roots"
done

# nobody_on DIR CMD: CMD (a shell string, with $D the directory) as
# nobody; prints "rc=N: message" with the directory taken out
nobody_on() {
	local out rc
	out=$(cd / && D=$1 setpriv --reuid=nobody --regid=nogroup --clear-groups \
		bash -c "$2" 2>&1)
	rc=$?
	out=${out//$1/D}
	printf 'rc=%s: %s\n' "$rc" "$out"
}
# same DESC CMD: CMD as nobody gives the same outcome on the disk and on
# the mount
same() {
	local want seen
	want=$(nobody_on "$REF" "$2")
	seen=$(nobody_on "$MNT" "$2")
	vs_check_eq "$1 ($want)" "$want" "$seen"
}

same "nobody reads root's 0644 file" 'cat "$D/src/app.js"'
same "nobody cannot append to it" 'echo evil >>"$D/src/app.js"'
same "nobody cannot truncate it" 'truncate -s 0 "$D/src/app.js"'
same "nobody cannot remove it" 'rm -f "$D/src/app.js"'
same "nobody cannot create next to it" 'touch "$D/src/evil.js"'
same "nobody cannot rename it" 'mv "$D/src/app.js" "$D/src/moved.js"'
same "nobody cannot chmod it" 'chmod 0777 "$D/src/app.js"'
same "nobody cannot make a dir in root's node_modules" 'mkdir "$D/node_modules/evil"'
same "nobody cannot remove root's file in a sticky dir" 'rm -f "$D/node_modules/sticky/roots"'
same "nobody writes a 0666 file of root's" 'echo ok >>"$D/node_modules/sticky/roots"'
same "nobody creates in a world-writable dir" 'echo mine >"$D/node_modules/shared/f" && mkdir "$D/node_modules/shared/d" && ln -s f "$D/node_modules/shared/l" && mkfifo "$D/node_modules/shared/p"'
for n in f d l p; do
	vs_check_eq "nobody's new $n is nobody's" "$NOBODY_UID:$NOBODY_GID" \
		"$(stat -c %u:%g "$MNT/node_modules/shared/$n")"
	vs_check_eq "and on the cache disk too" "$NOBODY_UID:$NOBODY_GID" \
		"$(find "$W/cache" -path "*/node_modules/shared/$n" -printf '%U:%G\n' | head -n 1)"
done
same "nobody removes its own file" 'rm "$D/node_modules/shared/f"'
# modes follow the caller's umask only, not the daemon's
same "umask 0: a new file is 0666, a new dir 0777" \
	'umask 0; touch "$D/node_modules/shared/u0" && mkdir "$D/node_modules/shared/d0" && stat -c %a "$D/node_modules/shared/u0" "$D/node_modules/shared/d0"'
same "umask 027: 0640 and 0750" \
	'umask 027; touch "$D/node_modules/shared/u1" && mkdir "$D/node_modules/shared/d1" && stat -c %a "$D/node_modules/shared/u1" "$D/node_modules/shared/d1"'
# set-id bits of a new file are the caller's to keep, as on the disk:
# setuid always (it owns the file), setgid where the file's group is one
# of the caller's (else a setgid directory's group strips it, if group
# executable); giving the daemon's new file to its caller must not clear
# them. mkdirs: sg_own setgid with nobody's group, sg_root with root's.
for d in "$REF" "$MNT"; do
	mkdir "$d/node_modules/sg_own" "$d/node_modules/sg_root"
	chgrp "$NOBODY_GID" "$d/node_modules/sg_own"
	chmod 3777 "$d/node_modules/sg_own" "$d/node_modules/sg_root"
done
# mk DIR NAME MODE: open(O_CREAT|O_EXCL, MODE) as is
mk='mk() { perl -MFcntl -e "sysopen(F, \$ARGV[0], O_CREAT|O_EXCL|O_WRONLY, oct \$ARGV[1]) or die \"\$!\n\"" "$D/node_modules/$1/$2" "$3"; }'
same "umask 0: open(O_CREAT) keeps 04755, 02755, 06745" \
	"$mk"'; umask 0; mk shared s1 04755 && mk shared s2 02755 && mk shared s3 06745 && stat -c %a "$D/node_modules/shared/"s[123]'
same "umask 027: open(O_CREAT, 06755) gives 6750" \
	"$mk"'; umask 027; mk shared s4 06755 && stat -c %a "$D/node_modules/shared/s4"'
same "install -m 4755 gives 4755" \
	'umask 022; install -m 4755 /dev/null "$D/node_modules/shared/s5" && stat -c %a "$D/node_modules/shared/s5"'
same "mkdir -m 2775 keeps setgid" \
	'umask 0; mkdir -m 2775 "$D/node_modules/shared/s6" && stat -c %a "$D/node_modules/shared/s6"'
same "in a setgid dir of nobody's group: 02755 kept" \
	"$mk"'; umask 0; mk sg_own s1 02755 && mk sg_own s2 06755 && stat -c "%a %G" "$D/node_modules/sg_own/"s[12]'
same "in a setgid dir of root's group: 02755 loses setgid, 02745 keeps it" \
	"$mk"'; umask 0; mk sg_root s1 06755 && mk sg_root s2 02745 && stat -c "%a %G" "$D/node_modules/sg_root/"s[12]'
same "chmod 4755 and 2755 of its own file" \
	'umask 0; touch "$D/node_modules/shared/s7" && chmod 4755 "$D/node_modules/shared/s7" && stat -c %a "$D/node_modules/shared/s7" && chmod 2755 "$D/node_modules/shared/s7" && stat -c %a "$D/node_modules/shared/s7"'
vs_check_eq "as root, umask 0: a synced file is 0666 as on the disk" \
	"$(umask 0 && touch "$REF/src/u2.js" && stat -c %a "$REF/src/u2.js")" \
	"$(umask 0 && touch "$MNT/src/u2.js" && stat -c %a "$MNT/src/u2.js")"
vs_check_eq "root's synced file is unchanged" "export const x = 1;" "$(cat "$MNT/src/app.js")"
vs_check_eq "and PostgreSQL has no change" "export const x = 1;" "$("$CTL" cat perm src/app.js)"
vs_umount "$MNT"
vs_summary
