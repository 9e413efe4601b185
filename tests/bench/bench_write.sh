#!/usr/bin/env bash
#
# bench_write.sh - writes on a --writable vsync mount beside the same work
# on a local directory: many small files written (an npm install), their
# commit to PostgreSQL, and how long an edit made in one container takes to
# reach a watcher in another. Not part of ctest.
#
# usage: tests/bench/bench_write.sh [-n FILES] [-r ROUNDS] [-m EDITS]
#                                   [-w WARMUP] [-N] [-P] [-o MOUNT-OPTION]...
#
#   -n FILES   files of the npm-install-like tree (default 1000)
#   -r ROUNDS  timed rounds of the file workloads (default 3)
#   -m EDITS   edits timed per mode for the mount-to-mount latency
#              (default 300)
#   -w WARMUP  uncounted warm-up edits per mode (default 20)
#   -N         leave out the real `npm install`
#   -P         leave out the PostgreSQL LISTEN mode of the latency part
#   -o OPT     pass OPT to every vsync-mount (repeatable), e.g.
#              -o --open-mode=none -o --save-quiet-ms=20
#
# One run, on throwaway PostgreSQL and Redis servers and one vsync-relay:
#
# 1. Many small files. A generated node_modules-like tree: FILES files of
#    1-8 KiB in packages of 8-32 files (package.json, README.md, index.js,
#    lib/, lib/internal/ for the larger ones, every fifth one under an
#    @scope/ directory); no two files alike, and every round writes other
#    bytes (the cache and PostgreSQL deduplicate by hash). In three places:
#      synced      a synced path of `vsync-mount --writable --redis`
#      local-only  under node_modules/ of the same mount (never synced)
#      local       a directory on the file system of the cache dir
#    each round in a fresh directory of each place, interleaved (synced,
#    local-only, local on odd rounds; the reverse on even ones):
#      create   perl makes every package's directories (mkdir) and writes
#               its files (open, write, close system calls), timed inside
#               perl
#      tar -x   `tar --no-same-owner -xf` of such a tree (another one per
#               round)
#      npm      `npm install --no-package-lock --prefer-offline` of
#               container/example (about 2,200 files) into a fresh copy
#               (its node_modules/ is local-only on the mount: no synced
#               figure), in the first min(3, ROUNDS) rounds; skipped with
#               -N, without npm, or when the registry does not answer `npm
#               ping` within 20 s. npm's cache is $VS_NPM_CACHE (default
#               ~/.npm); --prefer-offline keeps the registry's round trips
#               out of the figure once the cache is warm (the first run
#               warms it).
#    For the synced place, after the work returns (every close(2) done; a
#    file is journaled at its release, just after), the bench polls (10 ms)
#    until the mount's
#    journal (<cache-dir>/projects/<id>/journal) is empty - every change
#    committed to PostgreSQL - before going on; then checks in SQL that
#    the FILES files are current and counts their versions (more versions
#    than files = a file committed twice).
#
# 2. Edit in one container -> event in another. Two --writable mounts of
#    a second project (50 files in b/), separate cache dirs; a Node driver
#    writes one of the 50 files on the first mount (open O_TRUNC, write,
#    close; round robin, sizes vary) and waits for fs.watch (inotify) on
#    the second mount to report the file with the new bytes readable (it
#    reads the file in the event handler); EDITS edits after WARMUP
#    uncounted ones. Times are from close() returning to that event: once
#    with both mounts on Redis (fed by the relay), once in PostgreSQL-only
#    mode (LISTEN; the relay stopped). The local reference writes and
#    watches one local directory. Also shown: how long the write (open to
#    close) took, misses (no such event within 5 s), events that came
#    before the new bytes were readable, and writes that failed (counted
#    and shown on stderr; the run goes on).
#
# It prints medians (and p99 for the latencies) and the ratios
# mount/local. Environment: VSYNC_BUILD_DIR (default build/),
# VS_KEEP_LOGS=1, VS_NPM_CACHE.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/servers.sh
. "$here/../lib/servers.sh"
# shellcheck source=tests/lib/bench.sh
. "$here/../lib/bench.sh"

FILES=1000
ROUNDS=3
EDITS=300
WARMUP=20
NPM=1
PGMODE=1
MOUNT_OPTS=()
usage() {
	echo "usage: $0 [-n FILES] [-r ROUNDS] [-m EDITS] [-w WARMUP] [-N] [-P] [-o MOUNT-OPTION]..." >&2
	exit 2
}
while getopts 'n:r:m:w:NPo:h' opt; do
	case $opt in
	o) MOUNT_OPTS+=("$OPTARG") ;;
	n) FILES=$OPTARG ;;
	r) ROUNDS=$OPTARG ;;
	m) EDITS=$OPTARG ;;
	w) WARMUP=$OPTARG ;;
	N) NPM=0 ;;
	P) PGMODE=0 ;;
	*) usage ;;
	esac
done
for v in "$FILES" "$ROUNDS" "$EDITS" "$WARMUP"; do
	[[ $v =~ ^[0-9]+$ ]] || usage
done
((FILES >= 10 && ROUNDS >= 1 && EDITS >= 1)) || usage

vs_need_fuse
for c in node perl tar; do
	command -v "$c" >/dev/null 2>&1 || {
		echo "bench_write: $c is needed" >&2
		exit 1
	}
done
for b in vsync-mount vsyncctl vsync-relay; do
	[[ -x $VSYNC_BUILD_DIR/agent/$b ]] || {
		echo "bench_write: $VSYNC_BUILD_DIR/agent/$b is missing (build first)" >&2
		exit 1
	}
done
vs_deadline 1200
# Commands run under `timeout --foreground`: plain timeout puts its command
# in a process group of its own, which a Ctrl-C at the terminal misses (the
# script would wait for it before cleaning up).

if ((NPM)); then
	export npm_config_cache=${VS_NPM_CACHE:-$HOME/.npm}
	export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
	if ! command -v npm >/dev/null 2>&1; then
		log "no npm: npm install is left out"
		NPM=0
	elif ! timeout --foreground -k 2 20 npm ping >/dev/null 2>&1; then
		log "the npm registry does not answer: npm install is left out"
		NPM=0
	fi
fi

vs_servers_start all >/dev/null
W=$VS_SERVERS_DIR/work
VS_LOG_DIR=$W/logs
mkdir -p "$VS_LOG_DIR" "$W/src" "$W/local"
PSQL=$VS_PG_BIN/psql
CTL() { timeout --foreground -k 5 120 "$VSYNC_BUILD_DIR/agent/vsyncctl" --pg "$VSYNC_PG_URL" -q "$@"; }
sql() { timeout --foreground -k 5 60 "$PSQL" -X -At -q -v ON_ERROR_STOP=1 "$VSYNC_PG_URL" -c "$1"; }
# µs since the epoch

# ---------------------------------------------------------------- generator

# gen.pl SEED FILES ROOT: write the node_modules-like tree under ROOT
# (which must exist); print the milliseconds the writing took (the content
# is made in memory first) and when it started (µs since the epoch). Files
# are written with open/write/close system calls (POSIX::), as node and tar
# do: perl's own open() asks isatty() of every file it opens, an ioctl that
# is one more round trip to the daemon on FUSE.
cat >"$W/gen.pl" <<'EOF'
use strict;
use warnings;
use Time::HiRes qw(time);
use POSIX ();
use Fcntl qw(O_WRONLY O_CREAT O_TRUNC);
my ($seed, $n, $root) = @ARGV;
my $base = '';
for (my $i = 0; length($base) < 96 * 1024; $i++) {
	$base .= "export function f$i(a, b) { return a * " . (($i * 7919) % 1000) .
		" + b - " . (($i * 104729) % 997) . "; }\n";
}
my (@ops, %made);
my $dir = sub { my $d = shift; push @ops, [$d] unless $made{$d}++; };
my ($files, $k) = (0, 0);
while ($files < $n) {
	my $name = $k % 5 == 0 ? "\@scope$k/pkg$k" : "pkg$k";
	$dir->("\@scope$k") if $k % 5 == 0;
	$dir->($name);
	$dir->("$name/lib");
	my $count = 8 + ($k * 37) % 25;
	$dir->("$name/lib/internal") if $count > 16;
	for my $j (0 .. $count - 1) {
		last if $files >= $n;
		my $p = $j == 0 ? "$name/package.json" : $j == 1 ? "$name/README.md" :
			$j == 2 ? "$name/index.js" :
			($count > 16 && $j % 3 == 0) ? "$name/lib/internal/m$j.js" : "$name/lib/m$j.js";
		my $size = 1024 + ($k * 131 + $j * 977 + $files * 7) % 7169;
		my $head = "// $seed $p\n";
		my $off = ($files * 4099) % (length($base) - 8192);
		push @ops, [$p, $head . substr($base, $off, $size - length($head))];
		$files++;
	}
	$k++;
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
	my $n = POSIX::write($fd, $op->[1], length $op->[1]);
	defined $n && $n == length $op->[1] or die "$op->[0]: $!\n";
	defined POSIX::close($fd) or die "$op->[0]: $!\n";
}
printf "%.1f %.0f\n", (time - $t0) * 1000, $t0 * 1e6;
EOF

# ---------------------------------------------------------------- setup

t0=$(vs_now_ms)
for ((r = 1; r <= ROUNDS; r++)); do
	mkdir -p "$W/src/x$r"
	perl "$W/gen.pl" "x$r" "$FILES" "$W/src/x$r" >/dev/null
	tar -C "$W/src/x$r" -cf "$W/x$r.tar" .
	rm -rf "$W/src/x$r"
done
log "generated $ROUNDS trees of $FILES files for tar in $(($(vs_now_ms) - t0)) ms"

mkdir -p "$W/src/files/b"
printf '{ "name": "bench-write" }\n' >"$W/src/files/package.json"
for ((i = 0; i < 50; i++)); do
	printf 'export const v%d = 0;\n' "$i" >"$W/src/files/b/f$i.js"
done
CTL init
CTL import files "$W/src/files"
CTL import edits "$W/src/files"
FILES_ID=$(sql "SELECT vsync_project_id('files')")

# shellcheck disable=SC2119 # vs_relay_start with its default options
vs_relay_start
RELAY_PID=$VS_RELAY_PID
MNT=$W/mnt
mkdir -p "$MNT" "$W/cache"
vs_mount files "$MNT" --writable --author bench --pg "$VSYNC_PG_URL" \
	--redis "$VSYNC_REDIS_URL" --cache-dir "$W/cache" \
	--log-file "$VS_LOG_DIR/agent-files.log" ${MOUNT_OPTS[@]+"${MOUNT_OPTS[@]}"} || exit 1
JOURNAL=$W/cache/projects/$FILES_ID/journal
[[ -d $JOURNAL ]] || {
	echo "bench_write: no journal at $JOURNAL" >&2
	exit 1
}
mkdir "$MNT/node_modules"

# place directory of round R and workload NAME
pdir() {
	case $1 in
	synced) echo "$MNT/$3$2" ;;
	lonly) echo "$MNT/node_modules/$3$2" ;;
	local) echo "$W/local/$3$2" ;;
	esac
}

# No entry (a name of 20 digits; the journal's pooled "free.<k>" files are
# not).
journal_empty() {
	local e
	e=$(find "$JOURNAL" -mindepth 1 -maxdepth 1 -regextype posix-extended \
		-regex '.*/[0-9]{20}' -print -quit)
	[[ -z $e ]]
}

# wait_committed START_US R NAME: poll until the journal is empty and the
# FILES files of round R's NAME are current in PostgreSQL (a file is
# journaled at its release, just after its close: an empty journal alone
# may come before the last releases); at most 300 s. Print ms from
# START_US (µs) to then.
wait_committed() {
	local start=$1 deadline=$((SECONDS + 300))
	while ! journal_empty ||
		[[ "$(check_synced "$2" "$3" | cut -d' ' -f1)" != "$FILES" ]]; do
		if ((SECONDS >= deadline)); then
			echo "bench_write: journal not empty after 300 s" >&2
			exit 1
		fi
		sleep 0.01
	done
	ms_since "$start"
}

# work NAME PLACE R: run workload NAME in a fresh directory of PLACE; print
# its time in ms (for synced also "closed_ms committed_ms").
work() {
	local name=$1 place=$2 r=$3 dir t0 t
	dir=$(pdir "$place" "$r" "${name:0:1}")
	t0=$(now_us)
	case $name in
	create)
		mkdir "$dir"
		read -r t t0 <<<"$(perl "$W/gen.pl" "c$r-$place" "$FILES" "$dir")"
		;;
	tar)
		mkdir "$dir"
		tar --no-same-owner -C "$dir" -xf "$W/x$r.tar"
		t=$(ms_since "$t0")
		;;
	npm)
		mkdir "$dir"
		cp "$VS_REPO_ROOT/container/example/package.json" "$dir/"
		(cd "$dir" && timeout --foreground -k 5 600 npm install --no-package-lock --prefer-offline) \
			>>"$VS_LOG_DIR/npm.log" 2>&1 || {
			echo "bench_write: npm install in $dir failed (see $VS_LOG_DIR/npm.log)" >&2
			return 1
		}
		t=$(ms_since "$t0")
		;;
	esac
	if [[ $place == synced ]]; then
		echo "$t $(wait_committed "$t0" "$r" "$name")"
	else
		echo "$t"
	fi
}

# check_synced R NAME: the FILES files under NAME's directory of round R
# are current in PostgreSQL; print their number and their versions.
check_synced() {
	local p=${2:0:1}$1/
	sql "SELECT count(*) FILTER (WHERE is_current AND NOT is_deleted),
	            count(*)
	     FROM project_files
	     WHERE project_id = '$FILES_ID' AND kind = 'file'
	       AND file_path LIKE '$p%'" | tr '|' ' '
}

# ---------------------------------------------------------------- part 1

names=(create tar)
((NPM)) && names+=(npm)
NPM_ROUNDS=$((ROUNDS < 3 ? ROUNDS : 3))
declare -A T=() CL=() CM=() VER=()
log "part 1: $FILES files, $ROUNDS rounds (npm: $((NPM ? NPM_ROUNDS : 0)))"
for ((r = 1; r <= ROUNDS; r++)); do
	if ((r % 2)); then places=(synced lonly local); else places=(local lonly synced); fi
	for name in "${names[@]}"; do
		[[ $name == npm ]] && ((r > NPM_ROUNDS)) && continue
		for place in "${places[@]}"; do
			[[ $name == npm && $place == synced ]] && continue
			out=$(work "$name" "$place" "$r")
			if [[ $place == synced ]]; then
				read -r closed committed <<<"$out"
				T[$name.$place]+="$closed "
				CL[$name]+="$closed "
				CM[$name]+="$committed "
				read -r cur all <<<"$(check_synced "$r" "$name")"
				VER[$name]+="$cur/$all "
				if ((cur != FILES)); then
					log "round $r $name: $cur of $FILES files current in PostgreSQL"
				fi
				log "round $r $name synced: closed $closed ms, committed $committed ms ($cur files, $all versions)"
			else
				T[$name.$place]+="$out "
				log "round $r $name $place: $out ms"
			fi
		done
	done
done
vs_umount "$MNT"

# ---------------------------------------------------------------- part 2

cat >"$W/edit.js" <<'EOF'
// edit.js LABEL WDIR RDIR N WARMUP OUT: write files in WDIR, wait for the
// event with the new bytes in RDIR.
'use strict';
const fs = require('fs');
const path = require('path');
const { performance } = require('perf_hooks');
const [label, wdir, rdir, nArg, warmArg, out] = process.argv.slice(2);
const N = Number(nArg), WARM = Number(warmArg);
const now = () => performance.now();

let pending = null; // { name, body, early, resolve }
const watcher = fs.watch(rdir, (type, name) => {
	const t = now();
	if (!pending || name !== pending.name) return;
	let seen;
	try { seen = fs.readFileSync(path.join(rdir, name), 'utf8'); } catch (e) { seen = e.code; }
	if (seen === pending.body) {
		const p = pending;
		pending = null;
		p.resolve(t);
	} else {
		pending.early++;
	}
});

// the label makes every run's bytes differ from the last run's: a change to
// bytes a file already has is no change (no event)
function content(k) {
	return `export const v = ${k}; // ${label} ${'x'.repeat((k * 7919) % 700)}\n`;
}

async function main() {
	const lat = [], wr = [];
	let missed = 0, early = 0, errors = 0;
	for (let k = 0; k < WARM + N; k++) {
		const name = `f${k % 50}.js`, body = content(k);
		const p = { name, body, early: 0 };
		const ev = new Promise((resolve) => {
			const timer = setTimeout(() => { pending = null; resolve(null); }, 5000);
			p.resolve = (t) => { clearTimeout(timer); resolve(t); };
		});
		pending = p;
		const t0 = now();
		let failed = false;
		try {
			const fd = fs.openSync(path.join(wdir, name), 'w'); // O_WRONLY|O_CREAT|O_TRUNC
			try { fs.writeSync(fd, body); } finally { fs.closeSync(fd); }
		} catch (e) {
			// counted and shown, not fatal: the run goes on
			failed = true;
			console.error(`edit.js: ${label} edit ${k} at ${new Date().toISOString()}: ${e.message}`);
		}
		const t1 = now();
		if (failed) { pending = null; p.resolve(null); }
		const t2 = await ev;
		if (failed) { if (k >= WARM) errors++; continue; }
		if (k < WARM) continue;
		early += p.early;
		wr.push(t1 - t0);
		if (t2 === null) missed++;
		else lat.push(t2 - t1);
	}
	watcher.close();
	const pct = (a, q) => {
		if (!a.length) return null;
		const s = [...a].sort((x, y) => x - y);
		return s[Math.min(s.length - 1, Math.ceil((q / 100) * s.length) - 1)];
	};
	fs.writeFileSync(out, JSON.stringify({
		label, n: N, events: lat.length, missed, early, errors,
		p50: pct(lat, 50), p99: pct(lat, 99), max: pct(lat, 100),
		w50: pct(wr, 50), w99: pct(wr, 99),
	}) + '\n');
}
main().catch((e) => { console.error(e); process.exit(1); });
EOF

edits() {
	timeout --foreground -k 5 600 node "$W/edit.js" "$@"
}

log "part 2: $EDITS edits per mode (+$WARMUP warm-up)"
mkdir -p "$W/local-edits"
cp -a "$W/src/files/b" "$W/local-edits/"
edits local "$W/local-edits/b" "$W/local-edits/b" "$EDITS" "$WARMUP" "$W/lat-local.json"

modes=(redis)
((PGMODE)) && modes+=(pg)
for mode in "${modes[@]}"; do
	redis_url=$VSYNC_REDIS_URL
	margs=()
	if [[ $mode == redis ]]; then
		margs=(--redis "$VSYNC_REDIS_URL")
	else
		vs_relay_stop "$RELAY_PID"
		unset VSYNC_REDIS_URL # PostgreSQL only: the mounts must not find Redis in the env
	fi
	for s in a b; do
		mkdir -p "$W/mnt-$mode-$s"
		vs_mount edits "$W/mnt-$mode-$s" --writable --author "bench-$s" \
			--pg "$VSYNC_PG_URL" "${margs[@]}" --cache-dir "$W/cache-$mode-$s" \
			--log-file "$VS_LOG_DIR/agent-$mode-$s.log" \
			${MOUNT_OPTS[@]+"${MOUNT_OPTS[@]}"} || exit 1
	done
	export VSYNC_REDIS_URL=$redis_url
	edits "$mode" "$W/mnt-$mode-a/b" "$W/mnt-$mode-b/b" "$EDITS" "$WARMUP" "$W/lat-$mode.json"
	vs_umount "$W/mnt-$mode-a"
	vs_umount "$W/mnt-$mode-b"
done

# ---------------------------------------------------------------- report


echo
echo "many small files: $FILES files (1-8 KiB, mkdir per package), $ROUNDS rounds interleaved, medians"
echo "mount: vsync-mount --writable --redis ${MOUNT_OPTS[*]+${MOUNT_OPTS[*]} }$("$VSYNC_BUILD_DIR/agent/vsync-mount" --version 2>&1 | head -n 1)"
echo "local: a directory on $(df -T "$W" | awk 'NR == 2 { print $2 }') under $W (the cache dir's file system); $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A label=([create]="create $FILES files (perl)" [tar]="tar -x $FILES files" [npm]="npm install (container/example)")
printf '%-34s%11s%12s%11s%14s%18s\n' workload "synced ms" "l-only ms" "local ms" "synced/local" "local-only/local"
for name in "${names[@]}"; do
	s=$(median <<<"${T[$name.synced]:-}")
	o=$(median <<<"${T[$name.lonly]}")
	l=$(median <<<"${T[$name.local]}")
	printf '%-34s%11s%12s%11s%14s%18s\n' "${label[$name]}" "$s" "$o" "$l" "$(ratio "$s" "$l")" "$(ratio "$o" "$l")"
done
echo "target: local-only <= 1.2 x local"
echo
echo "synced path: close -> committed to PostgreSQL (medians; times from the start of the work)"
printf '%-34s%11s%13s%15s%14s  %s\n' workload "closed ms" "ms/file" "committed ms" "files/s" "rounds x current/versions in PostgreSQL"
for name in create tar; do
	c=$(median <<<"${CL[$name]}")
	m=$(median <<<"${CM[$name]}")
	printf '%-34s%11s%13s%15s%14s  %s\n' "${label[$name]}" "$c" \
		"$(awk -v n="$FILES" -v c="$c" 'BEGIN { printf "%.2f", c / n }')" "$m" \
		"$(awk -v n="$FILES" -v m="$m" 'BEGIN { printf "%.0f", n * 1000 / m }')" \
		"$(tr ' ' '\n' <<<"${VER[$name]}" | { grep . || true; } | sort | uniq -c | awk '{ printf "%s%d x %s", s, $1, $2; s = ", " }')"
done
echo "closed: the work returned (every close(2) done); committed: the journal"
echo "was empty (every change in PostgreSQL); files/s = files / committed time."

echo
echo "edit in one mount -> fs.watch event with the new bytes in another (ms; from close() returning)"
files=("$W/lat-local.json")
for mode in "${modes[@]}"; do files+=("$W/lat-$mode.json"); done
node - "${files[@]}" <<'EOF'
const fs = require('fs');
const rs = process.argv.slice(2).map((f) => JSON.parse(fs.readFileSync(f, 'utf8')));
const l = rs[0];
const f = (x, w = 8) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(2) : '-').padStart(w);
console.log('run         event p50  event p99  event max   write p50  write p99  events  missed  early  errors  p50/local  p50-local');
for (const x of rs) {
	console.log(`${x.label.padEnd(10)}${f(x.p50, 11)}${f(x.p99, 11)}${f(x.max, 11)}${f(x.w50, 12)}${f(x.w99, 11)}` +
		`${String(x.events).padStart(8)}${String(x.missed).padStart(8)}${String(x.early).padStart(7)}${String(x.errors).padStart(8)}` +
		`${f(x === l ? null : x.p50 / l.p50, 11)}${f(x === l ? null : x.p50 - l.p50, 11)}`);
}
console.log(`${l.n} edits each; target: <= 20 ms median. "early": events before the new bytes were readable;`);
console.log('"errors": writes that failed (open, write or close; shown on stderr, not timed).');
console.log('local: write and watch one local directory; redis: two mounts + vsync-relay; pg: two mounts on LISTEN.');
EOF
