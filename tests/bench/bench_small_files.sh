#!/usr/bin/env bash
#
# bench_small_files.sh - many small files into a synced directory of a
# --writable vsync mount beside the same work on the cache disk, in one
# run: `tar -x`, the time until every file is committed in PostgreSQL, and
# creation with an fsync(2) per file. Not part of ctest.
#
# usage: tests/bench/bench_small_files.sh [-n FILES] [-r ROUNDS]
#
#   -n FILES   files per tree (default 1000)
#   -r ROUNDS  timed rounds (default 3; medians are shown)
#
# One throwaway PostgreSQL, one `vsync-mount --writable` (PostgreSQL only:
# Redis plays no part in write-back), its cache dir and a local directory
# on the same file system. Trees: FILES files of 1-4 KiB, 20 a directory,
# no two alike, other bytes every round. Each round, in fresh directories
# (synced first on odd rounds, local first on even ones):
#
#   tar -x   `tar --no-same-owner -xf` of a tree; for the synced place the
#            bench then polls (10 ms) until the mount's journal holds no
#            entry and the FILES files are current in PostgreSQL
#            ("committed", from the start of the tar), and counts their
#            versions (one each) and the transactions that wrote them
#            (distinct xmin of their rows);
#   fsync    perl writes FILES files with open, write, fsync, close system
#            calls (an editor's or a package manager's careful save; on the
#            mount every fsync waits for its commit to PostgreSQL).
#
# Both also run in the mount's local-only node_modules/, a passthrough to
# the cache dir: what the FUSE round trips alone cost on this machine,
# beside which the synced path's own work (hashing, the journal) shows.
#
# Prints the medians, the ratios synced/local (target for tar -x: <= 3 x)
# and the versions found. Environment: VSYNC_BUILD_DIR (default build/),
# VS_KEEP_LOGS=1.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/servers.sh
. "$here/../lib/servers.sh"
# shellcheck source=tests/lib/bench.sh
. "$here/../lib/bench.sh"

FILES=1000
ROUNDS=3
usage() {
	echo "usage: $0 [-n FILES] [-r ROUNDS]" >&2
	exit 2
}
while getopts 'n:r:h' opt; do
	case $opt in
	n) FILES=$OPTARG ;;
	r) ROUNDS=$OPTARG ;;
	*) usage ;;
	esac
done
for v in "$FILES" "$ROUNDS"; do
	[[ $v =~ ^[0-9]+$ ]] || usage
done
((FILES >= 10 && ROUNDS >= 1)) || usage

vs_need_fuse
for c in perl tar; do
	command -v "$c" >/dev/null 2>&1 || {
		echo "bench_small_files: $c is needed" >&2
		exit 1
	}
done
for b in vsync-mount vsyncctl; do
	[[ -x $VSYNC_BUILD_DIR/agent/$b ]] || {
		echo "bench_small_files: $VSYNC_BUILD_DIR/agent/$b is missing (build first)" >&2
		exit 1
	}
done
vs_deadline 1200

vs_servers_start pg >/dev/null
W=$VS_SERVERS_DIR/work
VS_LOG_DIR=$W/logs
mkdir -p "$VS_LOG_DIR" "$W/src" "$W/local"
PSQL=$VS_PG_BIN/psql
CTL() { timeout --foreground -k 5 120 "$VSYNC_BUILD_DIR/agent/vsyncctl" --pg "$VSYNC_PG_URL" -q "$@"; }
sql() { timeout --foreground -k 5 60 "$PSQL" -X -At -q -v ON_ERROR_STOP=1 "$VSYNC_PG_URL" -c "$1"; }

# gen.pl SEED FILES ROOT SYNC: write a tree of FILES files under ROOT
# (which must exist), with an fsync per file when SYNC is 1; print the
# milliseconds the writing took (the content is made in memory first).
# open/write/fsync/close system calls (POSIX::, IO::Handle on the fd):
# perl's open() would ask isatty() of every file, one more round trip.
cat >"$W/gen.pl" <<'EOF'
use strict;
use warnings;
use Time::HiRes qw(time);
use POSIX ();
use IO::Handle;
use Fcntl qw(O_WRONLY O_CREAT O_TRUNC);
my ($seed, $n, $root, $sync) = @ARGV;
my $base = '';
for (my $i = 0; length($base) < 64 * 1024; $i++) {
	$base .= "export const k$i = " . (($i * 7919) % 1000) . ";\n";
}
my (@ops, %made);
for my $f (0 .. $n - 1) {
	my $d = sprintf "d%03d", int($f / 20);
	push @ops, [$d] unless $made{$d}++;
	my $p = "$d/f$f.js";
	my $size = 1024 + ($f * 977) % 3073;
	my $head = "// $seed $p\n";
	my $off = ($f * 4099) % (length($base) - 4096);
	push @ops, [$p, $head . substr($base, $off, $size - length($head))];
}
chdir $root or die "$root: $!\n";
my $t0 = time;
for my $op (@ops) {
	if (@$op == 1) {
		mkdir $op->[0] or die "mkdir $op->[0]: $!\n";
		next;
	}
	my $fd = POSIX::open($op->[0], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	defined $fd or die "$op->[0]: $!\n";
	my $w = POSIX::write($fd, $op->[1], length $op->[1]);
	defined $w && $w == length $op->[1] or die "$op->[0]: $!\n";
	if ($sync) {
		my $fh = IO::Handle->new_from_fd($fd, 'w') or die "$op->[0]: $!\n";
		$fh->sync or die "fsync $op->[0]: $!\n";
		$fh->close or die "$op->[0]: $!\n";
	} else {
		defined POSIX::close($fd) or die "$op->[0]: $!\n";
	}
}
printf "%.1f\n", (time - $t0) * 1000;
EOF

# ---------------------------------------------------------------- setup

for ((r = 1; r <= ROUNDS; r++)); do
	mkdir -p "$W/src/x$r"
	perl "$W/gen.pl" "x$r" "$FILES" "$W/src/x$r" 0 >/dev/null
	tar -C "$W/src/x$r" -cf "$W/x$r.tar" .
	rm -rf "$W/src/x$r"
done
mkdir -p "$W/src/files"
printf '{ "name": "bench-small-files" }\n' >"$W/src/files/package.json"
CTL init
CTL import files "$W/src/files"
FILES_ID=$(sql "SELECT vsync_project_id('files')")

MNT=$W/mnt
mkdir -p "$MNT" "$W/cache"
vs_mount files "$MNT" --writable --author bench --pg "$VSYNC_PG_URL" \
	--cache-dir "$W/cache" --log-file "$VS_LOG_DIR/agent-files.log" || exit 1
JOURNAL=$W/cache/projects/$FILES_ID/journal
[[ -d $JOURNAL ]] || {
	echo "bench_small_files: no journal at $JOURNAL" >&2
	exit 1
}

# No entry (a name of 20 digits).
journal_empty() {
	local e
	e=$(find "$JOURNAL" -mindepth 1 -maxdepth 1 -regextype posix-extended \
		-regex '.*/[0-9]{20}' -print -quit)
	[[ -z $e ]]
}

# check_synced PREFIX: the files under PREFIX/ current in PostgreSQL, all
# their versions, and the transactions that wrote them (distinct xmin).
check_synced() {
	sql "SELECT count(*) FILTER (WHERE is_current AND NOT is_deleted),
	            count(*), count(DISTINCT xmin::text)
	     FROM project_files
	     WHERE project_id = '$FILES_ID' AND kind = 'file'
	       AND file_path LIKE '$1/%'" | tr '|' ' '
}

# wait_committed START_US PREFIX: poll until the journal is empty and the
# FILES files are current; print ms since START_US.
wait_committed() {
	local start=$1 deadline=$((SECONDS + 300))
	while ! journal_empty ||
		[[ "$(check_synced "$2" | cut -d' ' -f1)" != "$FILES" ]]; do
		if ((SECONDS >= deadline)); then
			echo "bench_small_files: not committed after 300 s" >&2
			exit 1
		fi
		sleep 0.01
	done
	ms_since "$start"
}

# work NAME PLACE R: print the time of workload NAME in a fresh directory
# of PLACE (for synced also the committed time and "current/versions").
work() {
	local name=$1 place=$2 r=$3 base dir t0 t c
	case $place in
	synced) base=$MNT ;;
	local) base=$W/local ;;
	passthrough) base=$MNT/node_modules ;;
	esac
	dir=$base/$name$r
	mkdir "$dir"
	t0=$(now_us)
	case $name in
	tar)
		tar --no-same-owner -C "$dir" -xf "$W/x$r.tar"
		t=$(ms_since "$t0")
		;;
	fsync)
		t=$(perl "$W/gen.pl" "s$r-$place" "$FILES" "$dir" 1)
		;;
	esac
	if [[ $place == synced ]]; then
		c=$(wait_committed "$t0" "$name$r")
		echo "$t $c $(check_synced "$name$r" | awk '{ print $1 "/" $2, $3 }')"
	else
		echo "$t"
	fi
}

# ---------------------------------------------------------------- runs

declare -A T=() CM=() VER=() TX=() pt=()
mkdir "$MNT/node_modules" # local-only (the mount's default list)
log "$FILES files, $ROUNDS rounds"
for ((r = 1; r <= ROUNDS; r++)); do
	if ((r % 2)); then
		places=(synced local passthrough)
	else
		places=(passthrough local synced)
	fi
	for name in tar fsync; do
		for place in "${places[@]}"; do
			out=$(work "$name" "$place" "$r")
			read -r t c v x <<<"$out"
			T[$name.$place]+="$t "
			if [[ $place == synced ]]; then
				CM[$name]+="$c "
				VER[$name]+="$v "
				TX[$name]+="$x "
				log "round $r $name synced: $t ms, committed $c ms, current/versions $v, transactions $x"
			else
				log "round $r $name $place: $t ms"
			fi
		done
	done
done
vs_umount "$MNT"

# ---------------------------------------------------------------- report


echo
echo "small files: $FILES files (1-4 KiB, 20 a directory), $ROUNDS rounds interleaved, medians"
echo "mount: vsync-mount --writable (PostgreSQL only), $("$VSYNC_BUILD_DIR/agent/vsync-mount" --version 2>&1 | head -n 1)"
echo "local: a directory on $(df -T "$W" | awk 'NR == 2 { print $2 }') under $W (the cache dir's file system); $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-30s%11s%10s%14s%15s%14s%8s  %s\n' workload "synced ms" "local ms" "synced/local" "committed ms" "committed/s" "txns" "current/versions"
for name in tar fsync; do
	s=$(median <<<"${T[$name.synced]}")
	l=$(median <<<"${T[$name.local]}")
	pt[$name]=$(median <<<"${T[$name.passthrough]}")
	c=$(median <<<"${CM[$name]}")
	case $name in
	tar) label="tar -x $FILES files" ;;
	fsync) label="create+fsync $FILES files" ;;
	esac
	printf '%-30s%11s%10s%14s%15s%14s%8s  %s\n' "$label" "$s" "$l" "$(ratio "$s" "$l")" "$c" \
		"$(awk -v n="$FILES" -v m="$c" 'BEGIN { printf "%.0f", n * 1000 / m }')" \
		"$(median <<<"${TX[$name]}" | cut -d. -f1)" \
		"$(tr ' ' '\n' <<<"${VER[$name]}" | { grep . || true; } | sort | uniq -c | awk '{ printf "%s%d x %s", s, $1, $2; s = ", " }')"
done
echo
echo "the FUSE floor: the same work in the mount's local-only node_modules/ (a"
echo "passthrough to the cache dir: no content hashing, no journal, no"
echo "PostgreSQL), medians:"
for name in tar fsync; do
	printf '  %-28s passthrough %9s ms  synced/passthrough %6s  passthrough/local %6s\n' \
		"$name" "${pt[$name]}" "$(ratio "$(median <<<"${T[$name.synced]}")" "${pt[$name]}")" \
		"$(ratio "${pt[$name]}" "$(median <<<"${T[$name.local]}")")"
done
echo "target: tar -x synced <= 3 x local, every file one version."
echo "committed: from the start of the work until the journal was empty and"
echo "every file current in PostgreSQL; txns: PostgreSQL transactions that"
echo "wrote the files' rows (distinct xmin), median."
