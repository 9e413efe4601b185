#!/usr/bin/env bash
#
# bench_warm.sh - warm workloads on a vsync mount beside the same tree in a
# local directory, as ratios mount/local. Not part of ctest.
#
# usage: tests/bench/bench_warm.sh [-n FILES] [-M MODULES] [-r ROUNDS] [-V]
#                                  [-T] [-m MOUNT-OPTION]...
#
#   -n FILES    generated project files (default 5000; the size mix of
#               bench_coldstart.sh, which generates it)
#   -M MODULES  CommonJS modules under lib/ for the node case (default 2000)
#   -r ROUNDS   timed rounds (default 7)
#   -V          leave out the Vite build
#   -T          the local copy on a tmpfs of its own (issue 13's reference)
#               rather than in /tmp's file system
#   -m OPT      pass OPT to vsync-mount (repeatable), e.g. -m --read-only
#
# One run, on a throwaway PostgreSQL: the tree is imported and mounted
# (vsync-mount -f, PostgreSQL only: warm work never reaches a backend) and
# copied to a local directory under the same /tmp. Each workload runs twice
# on each side untimed (the first pass after a mount still costs a GETATTR
# per directory: see the kernel-caching notes), once more on the mount
# counting the FUSE requests the kernel sends to it (the fuse_request_send
# tracepoint, counted by `perf stat` for this mount's connection only;
# "-" without perf, root or a mounted tracefs), then ROUNDS times each, interleaved (mount
# then local on odd rounds, local then mount on even); the table shows the
# medians, their ratio and the requests of one warm pass:
#   find        find . (every name)
#   du -s       du -s . (every inode's attributes)
#   ls -lR      ls -lR . (listings and attributes)
#   read all    tar -cf - . | cat (every file's bytes; tar skips reading
#               when its archive is /dev/null, hence the pipe)
#   node        require() of MODULES modules under lib/ that require each
#               other by extension-less relative paths (so resolution
#               makes failed lookups too), timed inside node; skipped
#               without node
#   vite build  container/example imported as a second project, `npm
#               install --no-package-lock` on both sides (node_modules/ is
#               local-only on the mount), then `vite build` (dist/ is
#               local-only); skipped without node and npm, or when the npm
#               registry does not answer `npm ping` within 20 s
# Environment: VSYNC_BUILD_DIR (default build/), VS_KEEP_LOGS=1,
# VS_NPM_CACHE (npm's cache; default ~/.npm).

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/servers.sh
. "$here/../lib/servers.sh"
# shellcheck source=tests/lib/bench.sh
. "$here/../lib/bench.sh"

FILES=5000
MODULES=2000
ROUNDS=7
VITE=1
TMPFS=0
MOUNT_OPTS=()
usage() {
	echo "usage: $0 [-n FILES] [-M MODULES] [-r ROUNDS] [-V] [-T] [-m MOUNT-OPTION]..." >&2
	exit 2
}
while getopts 'n:M:r:VTm:h' opt; do
	case $opt in
	T) TMPFS=1 ;;
	m) MOUNT_OPTS+=("$OPTARG") ;;
	n) FILES=$OPTARG ;;
	M) MODULES=$OPTARG ;;
	r) ROUNDS=$OPTARG ;;
	V) VITE=0 ;;
	*) usage ;;
	esac
done
for v in "$FILES" "$MODULES" "$ROUNDS"; do
	if [[ ! $v =~ ^[0-9]+$ ]] || ((v == 0)); then
		usage
	fi
done
((FILES >= 10)) || usage

vs_need_fuse
for b in vsync-mount vsyncctl; do
	[[ -x $VSYNC_BUILD_DIR/agent/$b ]] || {
		echo "bench_warm: $VSYNC_BUILD_DIR/agent/$b is missing (build first)" >&2
		exit 1
	}
done
vs_deadline 3000

HAVE_NODE=0
command -v node >/dev/null 2>&1 && HAVE_NODE=1
if ((VITE)); then
	export npm_config_cache=${VS_NPM_CACHE:-$HOME/.npm}
	export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
	if ((!HAVE_NODE)) || ! command -v npm >/dev/null 2>&1; then
		log "no node or npm: the Vite build is left out"
		VITE=0
	elif ! timeout -k 2 20 npm ping >/dev/null 2>&1; then
		log "the npm registry does not answer: the Vite build is left out"
		VITE=0
	fi
fi

vs_servers_start pg >/dev/null
W=$VS_SERVERS_DIR/work
VS_LOG_DIR=$W/logs
mkdir -p "$VS_LOG_DIR"
CTL() { timeout -k 5 600 "$VSYNC_BUILD_DIR/agent/vsyncctl" --pg "$VSYNC_PG_URL" -q "$@"; }

# ---------------------------------------------------------------- trees

t0=$(vs_now_ms)
"$here/bench_coldstart.sh" --gen "$FILES" "$W/tree"
# lib/: MODULES CommonJS modules in groups of 100; each requires up to two
# lower-numbered ones through an extension-less relative path.
perl -e '
use strict;
use warnings;
my ($m, $dir) = @ARGV;
sub put { my ($p, $c) = @_; open(my $fh, ">", $p) or die "$p: $!\n"; print $fh $c; close $fh or die; }
mkdir "$dir/lib";
for my $i (0 .. $m - 1) {
	my $g = int($i / 100);
	mkdir "$dir/lib/g$g";
	my $src = "\x27use strict\x27;\n";
	for my $j (grep { $_ >= 0 } ($i - 1 - ($i * 7) % 50, $i - 101)) {
		$src .= sprintf("const d%d = require(\x27../g%d/m%d\x27);\n", $j, int($j / 100), $j);
	}
	$src .= "const table = [" . join(", ", map { ($i * 31 + $_) % 997 } 0 .. 40) . "];\n";
	$src .= "module.exports = { id: $i, sum: table.reduce((a, b) => a + b, 0) };\n";
	put("$dir/lib/g$g/m$i.js", $src);
}
my $idx = "\x27use strict\x27;\nlet n = 0;\n";
$idx .= "n += require(\x27./g" . int($_ / 100) . "/m$_\x27).id;\n" for 0 .. $m - 1;
put("$dir/lib/index.js", $idx . "module.exports = n;\n");
' "$MODULES" "$W/tree"
nfiles=$(find "$W/tree" -type f | wc -l)
log "generated $nfiles files ($(du -sm "$W/tree" | cut -f1) MiB) in $(($(vs_now_ms) - t0)) ms"

CTL init
t0=$(vs_now_ms)
CTL import warm "$W/tree"
log "imported in $(($(vs_now_ms) - t0)) ms"
if ((TMPFS)); then
	mkdir -p "$W/local"
	mount -t tmpfs -o size=4g,mode=0755 vsync-bench-local "$W/local" || exit 1
	vs_on_exit umount -l "$W/local"
	cp -a "$W/tree/." "$W/local"
	log "the local copy is on a tmpfs"
else
	cp -a "$W/tree" "$W/local"
fi
MNT=$W/mnt
mkdir -p "$MNT" "$W/cache"
vs_mount warm "$MNT" --pg "$VSYNC_PG_URL" --cache-dir "$W/cache" ${MOUNT_OPTS[@]+"${MOUNT_OPTS[@]}"} || exit 1

if ((VITE)); then
	CTL import example "$VS_REPO_ROOT/container/example"
	mkdir -p "$W/mnt-ex" "$W/cache-ex"
	vs_mount example "$W/mnt-ex" --pg "$VSYNC_PG_URL" --cache-dir "$W/cache-ex" ${MOUNT_OPTS[@]+"${MOUNT_OPTS[@]}"} || exit 1
	(cd "$VS_REPO_ROOT/container/example" && tar --exclude=node_modules --exclude=dist -cf - .) |
		(mkdir -p "$W/local-ex" && cd "$W/local-ex" && tar -xf -)
	for d in "$W/mnt-ex" "$W/local-ex"; do
		t0=$(vs_now_ms)
		if ! (cd "$d" && timeout -k 5 600 npm install --no-package-lock) \
			>>"$VS_LOG_DIR/npm.log" 2>&1; then
			log "npm install in $d failed (see $VS_LOG_DIR/npm.log): the Vite build is left out"
			VITE=0
			break
		fi
		log "npm install in $d: $(($(vs_now_ms) - t0)) ms"
	done
fi

# ---------------------------------------------------------------- workloads

NODE_REQ='const t = process.hrtime.bigint(); require(process.argv[1]);
console.log(Number(process.hrtime.bigint() - t) / 1e6);'

# work NAME DIR: run workload NAME in DIR; print its time in ms.
work() {
	local name=$1 dir=$2 t0 t1
	case $name in
	node)
		(cd "$dir" && node -e "$NODE_REQ" "$dir/lib/index.js")
		return
		;;
	esac
	t0=${EPOCHREALTIME/./}
	case $name in
	find) (cd "$dir" && find . >/dev/null) ;;
	du) (cd "$dir" && du -s . >/dev/null) ;;
	lsR) (cd "$dir" && ls -lR . >/dev/null) ;;
	read) (cd "$dir" && tar -cf - . | cat >/dev/null) ;;
	vite) (cd "$dir" && node node_modules/vite/bin/vite.js build --logLevel error) \
		>>"$VS_LOG_DIR/vite.log" 2>&1 ;;
	esac
	t1=${EPOCHREALTIME/./}
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", (b - a) / 1000 }'
}

names=(find du lsR read)
((HAVE_NODE)) && names+=(node)
((VITE)) && names+=(vite)
declare -A label=([find]="find" [du]="du -s" [lsR]="ls -lR" [read]="read all (tar | cat)"
	[node]="node: require $MODULES modules" [vite]="vite build (container/example)")
mdir() { [[ $1 == vite ]] && echo "$W/mnt-ex" || echo "$MNT"; }
ldir() { [[ $1 == vite ]] && echo "$W/local-ex" || echo "$W/local"; }

# reqs NAME: run workload NAME on the mount once more, printing the FUSE
# requests its mount's connection received meanwhile ("-" if perf cannot
# count them).
HAVE_PERF=1
if ! command -v perf >/dev/null 2>&1 ||
	! perf stat -e fuse:fuse_request_send -a -x, -- true >/dev/null 2>&1; then
	log "perf cannot count fuse:fuse_request_send (no perf, no rights, or tracefs not mounted: mount -t tracefs nodev /sys/kernel/tracing): no request counts"
	HAVE_PERF=0
fi
reqs() {
	local name=$1 dir conn out pid n
	dir=$(mdir "$name")
	if ((!HAVE_PERF)); then
		work "$name" "$dir" >/dev/null
		echo -
		return
	fi
	conn=$(stat -c %d "$dir")
	out=$VS_LOG_DIR/perf.$name.csv
	# no workload: perf counts until SIGINT (with one it would wait for it)
	perf stat -e fuse:fuse_request_send --filter "connection == $conn" -a -x, \
		-o "$out" &
	pid=$!
	sleep 0.5 # perf attaches
	work "$name" "$dir" >/dev/null
	kill -INT "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	n=$(awk -F, '$3 == "fuse:fuse_request_send" { print $1 }' "$out")
	echo "${n:--}"
}

declare -A TM=() TL=() RQ=()
for name in "${names[@]}"; do
	for _ in 1 2; do
		work "$name" "$(mdir "$name")" >/dev/null
		work "$name" "$(ldir "$name")" >/dev/null
	done
	RQ[$name]=$(reqs "$name")
done
log "warmed twice, requests counted; timing $ROUNDS rounds"
for ((r = 1; r <= ROUNDS; r++)); do
	for name in "${names[@]}"; do
		if ((r % 2)); then
			TM[$name]+="$(work "$name" "$(mdir "$name")") "
			TL[$name]+="$(work "$name" "$(ldir "$name")") "
		else
			TL[$name]+="$(work "$name" "$(ldir "$name")") "
			TM[$name]+="$(work "$name" "$(mdir "$name")") "
		fi
	done
done

# ---------------------------------------------------------------- report

echo
echo "warm workloads: $nfiles files ($FILES generated + $MODULES modules), $ROUNDS rounds interleaved, medians"
echo "mount: vsync-mount -f ${MOUNT_OPTS[*]+${MOUNT_OPTS[*]} }(PostgreSQL only), $("$VSYNC_BUILD_DIR/agent/vsync-mount" --version 2>&1 | head -n 1)"
echo "local: a copy on $(df -T "$W/local" | awk 'NR == 2 { print $2 }') under $W/local"
printf '%-34s%12s%12s%14s%10s  %s\n' workload "mount ms" "local ms" "mount/local" "requests" target
for name in "${names[@]}"; do
	m=$(median <<<"${TM[$name]}")
	l=$(median <<<"${TL[$name]}")
	printf '%-34s%12s%12s%14s%10s  %s\n' "${label[$name]}" "$m" "$l" \
		"$(awk -v a="$m" -v b="$l" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')" \
		"${RQ[$name]}" "<= 1.10"
done
echo "(requests: FUSE requests sent to the mount during one warm pass, after two)"
((HAVE_NODE)) || echo "(node: skipped, no node)"
