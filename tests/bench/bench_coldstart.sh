#!/usr/bin/env bash
#
# bench_coldstart.sh - how fast a fresh container gets a project: mount →
# ready, mount → whole tree local, and the first read of a file that is not
# local yet (from Redis, and from PostgreSQL when Redis misses), beside the
# same work on a local directory. Not part of ctest.
#
# usage: tests/bench/bench_coldstart.sh [-s "SIZES"] [-r ROUNDS] [-k SAMPLE]
#                                       [-m "MOUNT ARGS"]
#        tests/bench/bench_coldstart.sh --gen FILES DIR   (only generate)
#
#   -s SIZES   project sizes in files (default "1000 10000")
#   -r ROUNDS  rounds, interleaved over the sizes (default 7)
#   -k SAMPLE  files read one by one for the first-read latency (default 200)
#   -m ARGS    more vsync-mount options for every mount (split on blanks)
#
# One run, on throwaway PostgreSQL and Redis servers:
#   1. generates one project per size (a realistic size mix: ~80 % under
#      4 KiB, ~17 % 4-32 KiB, ~2 % 32-256 KiB, a few random files over
#      1 MiB; ~20 files a directory), imports each with vsyncctl and runs
#      `vsync-relay --once` so Redis holds every manifest and blob;
#   2. per round and size, with a fresh cache dir: times `vsync-mount`
#      in daemon mode (it returns once ready) = "mount → ready"; then
#      "mount → whole tree local": with a control endpoint, until /metrics
#      says vsync_prefetch_pending 0 and the cache holds every object of
#      the project; without one, until `tar` has read every file;
#   3. per round, on the first size: a mount with --prefetch 0 and a fresh
#      cache, then SAMPLE files (none of them critical) read one at a time
#      (open + read all + close, timed in perl): from Redis; then Redis is
#      flushed and the same again: from PostgreSQL (Redis is warmed again
#      by `vsync-relay --once` afterwards).
# The local-directory reference is `cp -a` of the same tree (tree local)
# and the same reads on a local copy (page cache warm): ratios are
# mount/local. Medians over the rounds; first-read median and p99 over all
# the samples of all rounds.
# Environment: VSYNC_BUILD_DIR (default build/), VS_KEEP_LOGS=1.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# ---------------------------------------------------------------- generator

# gen_project FILES DIR: a Vite-like project of FILES files (perl: bash
# takes minutes for 10,000). Sizes: 80 % 150 B-4 KiB, 17 % 4-16 KiB, 2.5 %
# 16-128 KiB, and 2 + FILES/2500 random binary files of 1-2 MiB (images,
# fonts, wasm) spread over the tree; 20 files a directory. The text is
# deterministic and each file starts with its own index, so no two files
# share content.
gen_project() {
	if [[ -e $2 ]] && [[ -n "$(ls -A "$2")" ]]; then
		echo "gen_project: $2 exists and is not empty" >&2
		return 1
	fi
	mkdir -p "$2"
	perl -e '
use strict;
use warnings;
my ($n, $dir) = @ARGV;
chdir $dir or die "$dir: $!\n";
my $base = "";
$base .= sprintf("  const v%d = compute(%d, \x27the quick brown fox jumps over the lazy dog\x27);\n",
		 $_, $_ * 7919 % 100003) for 0 .. 1999;
my $blen = length $base;
sub put { my ($p, $c) = @_; open(my $fh, ">", $p) or die "$p: $!\n"; print $fh $c; close $fh or die; }
mkdir "src";
put("package.json", "{ \"name\": \"bench-$n\", \"private\": true, \"version\": \"1.0.0\",\n  \"scripts\": { \"dev\": \"vite\" } }\n");
put("index.html", "<!doctype html>\n<html><body><div id=\"root\"></div>\n<script type=\"module\" src=\"/src/main.jsx\"></script></body></html>\n");
put("vite.config.js", "import { defineConfig } from \x27vite\x27\nexport default defineConfig({})\n");
put("src/main.jsx", "import \x27./App.jsx\x27\nconsole.log(\x27main\x27)\n");
put("src/App.jsx", "export default function App() { return null }\n");
my $nbig = 2 + int($n / 2500);
my %big = map { (5 + int((2 * $_ + 1) * ($n - 5) / (2 * $nbig))) => 1 } 0 .. $nbig - 1;
open(my $rnd, "<:raw", "/dev/urandom") or die;
my %made;
for my $i (5 .. $n - 1) {
	my $d = sprintf("src/m%d/d%d", int($i / 200), int($i / 20) % 10);
	unless ($made{$d}++) { my $p = ""; for (split m{/}, $d) { $p .= "$_/"; mkdir $p; } }
	if ($big{$i}) {
		my $size = 1048576 + ($i * 65537) % 1048576;
		read($rnd, my $bytes, $size) == $size or die;
		put("$d/asset-$i.bin", $bytes);
		next;
	}
	my $r = ($i * 7919) % 1000;
	my $size = $r < 800 ? 150 + ($i * 131) % 3900
		 : $r < 970 ? 4096 + ($i * 977) % 12288
		 : 16384 + ($i * 4099) % 114688;
	my $off = ($i * 8191) % ($blen - $size);
	put("$d/f$i.js", "// file $i\n" . substr($base, $off, $size));
}
' "$1" "$2"
}

if [[ ${1:-} == --gen ]]; then
	if (($# != 3)) || [[ ! $2 =~ ^[0-9]+$ ]] || (($2 < 10)); then
		echo "usage: $0 --gen FILES DIR" >&2
		exit 2
	fi
	gen_project "$2" "$3"
	exit
fi

# ---------------------------------------------------------------- options

# shellcheck source=tests/lib/servers.sh
. "$here/../lib/servers.sh"
# shellcheck source=tests/lib/bench.sh
. "$here/../lib/bench.sh"

SIZES="1000 10000"
ROUNDS=7
SAMPLE=200
EXTRA=
usage() {
	echo "usage: $0 [-s \"SIZES\"] [-r ROUNDS] [-k SAMPLE] [-m \"MOUNT ARGS\"]" >&2
	exit 2
}
while getopts 's:r:k:m:h' opt; do
	case $opt in
	s) SIZES=$OPTARG ;;
	r) ROUNDS=$OPTARG ;;
	k) SAMPLE=$OPTARG ;;
	m) EXTRA=$OPTARG ;;
	*) usage ;;
	esac
done
read -r -a SIZES <<<"$SIZES"
read -r -a EXTRA <<<"$EXTRA"
for v in "${SIZES[@]}" "$ROUNDS" "$SAMPLE"; do
	if [[ ! $v =~ ^[0-9]+$ ]] || ((v == 0)); then
		usage
	fi
done

vs_need_fuse
MOUNT_BIN=$VSYNC_BUILD_DIR/agent/vsync-mount
RELAY_BIN=$VSYNC_BUILD_DIR/agent/vsync-relay
for b in "$MOUNT_BIN" "$RELAY_BIN" "$VSYNC_BUILD_DIR/agent/vsyncctl"; do
	[[ -x $b ]] || {
		echo "bench_coldstart: $b is missing (build first)" >&2
		exit 1
	}
done
command -v perl >/dev/null || {
	echo "bench_coldstart: perl is needed" >&2
	exit 1
}
vs_deadline 3000

# What this vsync-mount has (the cold-start options arrive in steps).
HELP=$("$MOUNT_BIN" --help 2>&1 || true)
has_opt() { [[ $HELP == *"$1"* ]]; }

vs_servers_start all >/dev/null
W=$VS_SERVERS_DIR/work
VS_LOG_DIR=$W/logs
mkdir -p "$VS_LOG_DIR"
CTL() { timeout -k 5 600 "$VSYNC_BUILD_DIR/agent/vsyncctl" --pg "$VSYNC_PG_URL" -q "$@"; }

# ---------------------------------------------------------------- helpers

# http_get HOSTPORT PATH: the body (status line in HTTP_STATUS).
HTTP_STATUS=
http_get() {
	local out
	# shellcheck disable=SC2016 # $1/$2 belong to the inner shell
	out=$(timeout 3 bash -c '
		exec 3<>"/dev/tcp/${1%:*}/${1##*:}" || exit 1
		printf "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" "$2" >&3
		cat <&3' _ "$1" "$2" 2>/dev/null) || {
		HTTP_STATUS=none
		return 1
	}
	HTTP_STATUS=$(printf '%s' "$out" | head -n 1 | awk '{ print $2 }')
	printf '%s\n' "${out#*$'\r\n\r\n'}"
}


# daemon_pids MNT: vsync-mount processes serving MNT.
daemon_pids() {
	local f args cmd
	for f in /proc/[0-9]*; do
		args=()
		{ mapfile -d '' args <"$f/cmdline"; } 2>/dev/null || continue
		cmd=" ${args[*]} "
		[[ $cmd == *vsync-mount*" $1 "* ]] || continue
		echo "${f#/proc/}"
	done
	return 0
}
no_daemon() { [[ -z $(daemon_pids "$1") ]]; }

# umount_wait MNT: unmount and wait until its daemon is gone.
umount_wait() {
	local p
	if vs_is_mounted "$1"; then
		timeout -k 2 20 fusermount3 -u "$1" 2>/dev/null ||
			timeout -k 2 10 fusermount3 -uz "$1" 2>/dev/null || true
	fi
	if ! vs_poll 20 no_daemon "$1"; then
		for p in $(daemon_pids "$1"); do kill -KILL "$p" 2>/dev/null; done
		vs_poll 5 no_daemon "$1" || true
	fi
	vs_poll 5 vs__not_mounted "$1"
}

CONTROL_PORT=$(vs_free_port)
MOUNTS=()
vs_on_exit cleanup_mounts
cleanup_mounts() {
	local m
	for m in "${MOUNTS[@]}"; do
		umount_wait "$m" || true
	done
}

# mount_daemon P MNT CACHE [ARGS...]: vsync-mount in daemon mode; MOUNT_MS
# is how long it took to return. 1 if it failed (its log is shown).
MOUNT_SEQ=0
mount_daemon() {
	local p=$1 mnt=$2 cache=$3 t0 ms rc=0 args=()
	shift 3
	MOUNT_SEQ=$((MOUNT_SEQ + 1))
	MOUNT_LOG=$VS_LOG_DIR/mount.$MOUNT_SEQ.log
	has_opt --control && args+=(--control "127.0.0.1:$CONTROL_PORT")
	mkdir -p "$mnt" "$cache"
	MOUNTS+=("$mnt")
	t0=${EPOCHREALTIME/./}
	# shellcheck disable=SC2094 # both append: vsync-mount logs, the shell stderr
	timeout -k 5 120 "$MOUNT_BIN" "$p" "$mnt" --pg "$VSYNC_PG_URL" \
		--redis "$VSYNC_REDIS_URL" --cache-dir "$cache" --log-file "$MOUNT_LOG" \
		"${args[@]}" "${EXTRA[@]}" "$@" </dev/null >>"$MOUNT_LOG" 2>&1 || rc=$?
	ms=$(ms_since "$t0")
	if ((rc != 0)) || ! vs_is_mounted "$mnt"; then
		echo "bench_coldstart: vsync-mount $p failed (exit $rc):" >&2
		tail -n 10 "$MOUNT_LOG" | sed 's/^/#   /' >&2
		return 1
	fi
	MOUNT_MS=$ms
}

# objects CACHE: content objects in the cache dir.
objects() {
	find "$1/objects" -type f -name '[0-9a-f]*' 2>/dev/null | wc -l
}

# metric NAME: its value from /metrics (empty if none).
metric() {
	http_get "127.0.0.1:$CONTROL_PORT" /metrics 2>/dev/null |
		awk -v n="$1" '$1 == n { print $2; exit }'
}

# ---------------------------------------------------------------- setup

perl_reader=$W/reader.pl
cat >"$perl_reader" <<'EOF'
# reader.pl: read each path on stdin (open, read all, close); print µs.
use strict;
use warnings;
use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC);
my $buf;
while (my $f = <STDIN>) {
	chomp $f;
	my $t0 = clock_gettime(CLOCK_MONOTONIC);
	open(my $fh, '<:raw', $f) or die "open $f: $!\n";
	while (sysread($fh, $buf, 131072)) { }
	close $fh;
	printf "%.1f\n", (clock_gettime(CLOCK_MONOTONIC) - $t0) * 1e6;
}
EOF

CTL init
declare -A OBJS=() BYTES=()
for n in "${SIZES[@]}"; do
	t0=${EPOCHREALTIME/./}
	gen_project "$n" "$W/tree$n"
	BYTES[$n]=$(du -sb "$W/tree$n" | cut -f1)
	OBJS[$n]=$(cd "$W/tree$n" && find . -type f -print0 | xargs -0 sha256sum |
		cut -d' ' -f1 | sort -u | wc -l)
	log "generated $n files ($((BYTES[$n] / 1048576)) MiB, ${OBJS[$n]} distinct contents) in $(ms_since "$t0") ms"
	t0=${EPOCHREALTIME/./}
	CTL import "p$n" "$W/tree$n"
	log "imported p$n in $(ms_since "$t0") ms"
done
# signed, as deployed (and as bench_fleet.sh runs), when the build has
# `vsyncctl keygen`: the mounts verify what they read from Redis
# (VS_BENCH_SIGN=0: unsigned)
SIGN_ARGS=()
if [[ ${VS_BENCH_SIGN:-1} != 0 ]] && key=$(CTL keygen "$W/relay.key" 2>/dev/null); then
	SIGN_ARGS=(--sign-key "$W/relay.key")
	EXTRA+=(--verify-key "${key#VSYNC_VERIFY_KEY=}")
fi
warm_redis() {
	timeout -k 5 600 "$RELAY_BIN" --pg "$VSYNC_PG_URL" --redis "$VSYNC_REDIS_URL" \
		"${SIGN_ARGS[@]}" --once >>"$VS_LOG_DIR/relay.log" 2>&1
}
t0=${EPOCHREALTIME/./}
warm_redis
log "vsync-relay --once (Redis warm) in $(ms_since "$t0") ms; Redis holds $(vs_redis_cli dbsize) keys"

# The first-read sample: files of the first size under 1 MiB, spread over
# the tree, none of the top-level (critical) ones.
N1=${SIZES[0]}
(cd "$W/tree$N1" && find src -mindepth 3 -type f -size -1024k | LC_ALL=C sort |
	awk -v k="$SAMPLE" '{ a[NR] = $0 } END { s = NR / k; if (s < 1) s = 1; for (i = 1; i <= NR && c < k; i += s) { print a[int(i)]; c++ } }') \
	>"$W/sample"
SAMPLE=$(wc -l <"$W/sample")

if has_opt --control; then
	method="prefetch"
	log "whole tree local: /metrics vsync_prefetch_pending 0 and every object cached"
else
	method="read"
	log "this vsync-mount has no --control: whole tree local = tar reads every file"
fi
has_opt --prefetch || log "this vsync-mount has no --prefetch: first reads may race a prefetcher (none yet)"

# ---------------------------------------------------------------- rounds

declare -A R_READY=() R_ALL=() R_CP=() R_INT=()
: >"$W/lat.redis"
: >"$W/lat.pg"
: >"$W/lat.local"
# tree_local N CACHE MNT: wait until the whole tree is local; TREE_T1 is
# when it was seen to be (before the check that counts the objects)
tree_local() {
	local n=$1 cache=$2 mnt=$3
	if [[ $method == read ]]; then
		tar -C "$mnt" -cf - . | cat >/dev/null
		TREE_T1=$(now_us)
		return
	fi
	if ! bench_poll 120 prefetch_pending_0; then
		log "p$n: not all local after 120 s (pending=$(metric vsync_prefetch_pending), objects $(objects "$cache")/${OBJS[$n]})"
		return 1
	fi
	TREE_T1=$(now_us)
	prefetch_done "$cache" "$n" || {
		log "p$n: the prefetch is done but the cache has $(objects "$cache") of ${OBJS[$n]} objects"
		return 1
	}
}
# (polled with builtins only: bench_poll)
prefetch_pending_0() {
	bench_metric "127.0.0.1:$CONTROL_PORT" vsync_prefetch_pending && [[ $METRIC == 0 ]]
}
prefetch_done() {
	(($(objects "$1") >= OBJS[$2]))
}

for ((r = 1; r <= ROUNDS; r++)); do
	for n in "${SIZES[@]}"; do
		# local reference: copy the tree
		# (each timed part starts with nothing left to write back from
		# the one before: a sync, untimed)
		rm -rf "$W/copy"
		sync
		t0=${EPOCHREALTIME/./}
		cp -a "$W/tree$n" "$W/copy"
		R_CP[$n]+="$(ms_since "$t0") "
		rm -rf "$W/copy"
		sync

		mnt=$W/mnt.$n.$r cache=$W/cache.$n.$r
		t0=${EPOCHREALTIME/./}
		mount_daemon "p$n" "$mnt" "$cache" || exit 1
		R_READY[$n]+="$MOUNT_MS "
		if [[ $r == 1 ]] && has_opt --control; then
			http_get "127.0.0.1:$CONTROL_PORT" /readyz >/dev/null || true
			log "p$n: /readyz right after vsync-mount returned: ${HTTP_STATUS:-none}"
		fi
		TREE_T1=
		tree_local "$n" "$cache" "$mnt" || true
		R_ALL[$n]+="$(awk -v a="$t0" -v b="${TREE_T1:-$(now_us)}" 'BEGIN { printf "%.1f", (b - a) / 1000 }') "
		if [[ $method == prefetch ]]; then
			http_get "127.0.0.1:$CONTROL_PORT" /metrics >"$W/metrics.txt" 2>/dev/null || true
			R_INT[$n]+="$(awk '$1 == "vsync_time_to_ready_seconds" { printf "%.1f", $2 * 1000 }' "$W/metrics.txt") "
			[[ $r == 1 ]] && cp "$W/metrics.txt" "$VS_LOG_DIR/metrics.p$n.txt"
		fi
		umount_wait "$mnt"
		rm -rf "$cache"
	done

	# first reads: Redis, then PostgreSQL (Redis flushed)
	pf=()
	has_opt --prefetch && pf=(--prefetch 0)
	for src in redis pg; do
		if [[ $src == pg ]]; then
			vs_redis_cli flushall >/dev/null
		fi
		mnt=$W/mnt.read.$src.$r cache=$W/cache.read.$src.$r
		mount_daemon "p$N1" "$mnt" "$cache" "${pf[@]}" || exit 1
		sed "s|^|$mnt/|" "$W/sample" | perl "$perl_reader" >>"$W/lat.$src"
		umount_wait "$mnt"
		rm -rf "$cache"
	done
	warm_redis
	sed "s|^|$W/tree$N1/|" "$W/sample" | perl "$perl_reader" >>"$W/lat.local"
	log "round $r/$ROUNDS done"
done

# ---------------------------------------------------------------- report

med() { tr ' ' '\n' | grep . | median; }
echo
echo "cold start: $ROUNDS rounds, medians; local = the same tree on $(df -T "$W" | awk 'NR == 2 { print $2 }') under $W"
echo "vsync-mount: $("$MOUNT_BIN" --version 2>&1 | head -n 1); extra options: ${EXTRA[*]:-none}; whole tree local by: $method"
printf '%-44s' "files (MiB)"
for n in "${SIZES[@]}"; do printf '%22s' "$n ($((BYTES[$n] / 1048576)))"; done
echo
row() { # row LABEL ARRAY-NAME [ratio]
	local label=$1 n m c
	local -n arr=$2
	printf '%-44s' "$label"
	for n in "${SIZES[@]}"; do
		m=$(med <<<"${arr[$n]}")
		if [[ ${3:-} == ratio ]]; then
			c=$(med <<<"${R_CP[$n]}")
			printf '%22s' "$m ms ($(ratio "$m" "$c"))"
		else
			printf '%22s' "$m ms"
		fi
	done
	echo
}
row "local: cp -a of the tree" R_CP
row "mount -> ready: daemon returned (/cp -a)" R_READY ratio
[[ $method == prefetch ]] && row "  vsync_time_to_ready_seconds (internal)" R_INT
row "mount -> whole tree local (/cp -a)" R_ALL ratio
echo
echo "first read of a file not yet local ($N1-file project, $SAMPLE files x $ROUNDS rounds, open+read+close)"
printf '%-44s%12s%12s%16s\n' "" "median us" "p99 us" "median/local"
lm=$(median <"$W/lat.local")
for src in redis pg local; do
	m=$(median <"$W/lat.$src")
	case $src in
	redis) label="from Redis (--prefetch 0)" ;;
	pg) label="from PostgreSQL (Redis flushed)" ;;
	local) label="local directory (page cache warm)" ;;
	esac
	printf '%-44s%12s%12s%16s\n' "$label" "$m" "$(p99 <"$W/lat.$src")" "$(ratio "$m" "$lm")"
done
echo
echo "targets (DESIGN.md section 7): ready <= 50 ms (1,000 files, warm Redis); whole tree local <= 1 s (10,000 files); first read from Redis <= 0.5 ms median"
echo "(local reference: cp -a of the same tree for the first two rows; the same reads, page cache warm, for first reads)"
