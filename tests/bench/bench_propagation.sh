#!/usr/bin/env bash
#
# bench_propagation.sh - how long a change committed in PostgreSQL takes to
# reach a watcher on a vsync mount, beside the same edits saved to a local
# directory under the same watcher. Not part of ctest.
#
# usage: tests/bench/bench_propagation.sh [-n EDITS] [-w WARMUP]
#
# One run does, on throwaway PostgreSQL and Redis servers:
#   local   EDITS in-place saves (fs.writeFileSync) to a local directory
#   redis   EDITS commits (SELECT vsync_write_file, one psql session, one
#           statement at a time) to a project mounted with --redis and fed
#           by one vsync-relay
#   pg      the same with the mount in PostgreSQL-only mode (LISTEN)
# Each edit changes one of 50 files (round robin, sizes vary) in one
# directory watched by Node's fs.watch (inotify); the driver (Node) waits
# for that file's event before the next edit, and reads the file at once
# to count reads that did not see the new bytes. Times are
# performance.timeOrigin + performance.now() (ms, µs resolution):
#   "from send"    statement written to psql / writeFileSync called → event
#   "from commit"  psql printed the statement's result (the commit is done)
#                  / writeFileSync returned → event
# In the redis run a Redis client of the driver's own, blocked in XREAD on
# the project's stream, notes when each change's entry reaches it, which
# splits the path in hops: send → commit (psql and PostgreSQL: the write
# itself), commit → entry read (the relay woken by NOTIFY, its queries,
# XADD) and entry read → event (the mount reading, applying, the kernel).
# Prints median and p99 of each, the misses (no event within 5 s) and the
# stale reads, and the mount/local ratio and difference of the medians;
# then the CPU time the agent (and the relay) spent per applied change
# (utime + stime of the process over the run, all its threads: applying
# the change and serving the watcher's read of it), and that of each
# thread (the follower, vs-follow, which applies the change, against the
# FUSE workers, which serve the requests the apply and the read send).
# Then the floor: the same edits saved as an editor saves (a temporary
# renamed over the name) through the pg mount on a local-only path
# (.cache/b, no write-back), the agent's CPU per save plus the CPU the
# mount adds to the saving process (the driver's own, per save, through
# the mount less in the local directory); each run's agent CPU per
# applied change is printed as a ratio to it.
# The first WARMUP edits (default 20) of each run are not counted.
# The redis run signs and verifies (vsync-relay --sign-key, vsync-mount
# --verify-key, docs/protocol.md "Signatures") when the build has
# `vsyncctl keygen`; VS_BENCH_SIGN=0 runs it unsigned.
# Environment: VSYNC_BUILD_DIR (default build/), VS_KEEP_LOGS=1,
# VS_BENCH_PERF=DIR: perf record -g the agent during the redis run into
# DIR/agent.data, and during the pg run into DIR/agent-pg.data.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/servers.sh
. "$here/../lib/servers.sh"
# shellcheck source=tests/lib/bench.sh
. "$here/../lib/bench.sh"

N=1000
WARMUP=20
while getopts 'n:w:h' opt; do
	case $opt in
	n) N=$OPTARG ;;
	w) WARMUP=$OPTARG ;;
	*)
		echo "usage: $0 [-n EDITS] [-w WARMUP]" >&2
		exit 2
		;;
	esac
done
[[ $N =~ ^[0-9]+$ && $WARMUP =~ ^[0-9]+$ ]] || {
	echo "usage: $0 [-n EDITS] [-w WARMUP]" >&2
	exit 2
}

vs_need_fuse
command -v node >/dev/null 2>&1 || {
	echo "bench_propagation: node is needed (apt-get install nodejs)" >&2
	exit 1
}
for b in vsync-mount vsyncctl vsync-relay; do
	[[ -x $VSYNC_BUILD_DIR/agent/$b ]] || {
		echo "bench_propagation: $VSYNC_BUILD_DIR/agent/$b is missing (build first)" >&2
		exit 1
	}
done
vs_deadline 900

vs_servers_start all >/dev/null
W=$VS_SERVERS_DIR/work
VS_LOG_DIR=$W/logs
mkdir -p "$VS_LOG_DIR" "$W/tree/b" "$W/local/b"
PSQL=$VS_PG_BIN/psql
CTL() { timeout -k 5 60 "$VSYNC_BUILD_DIR/agent/vsyncctl" --pg "$VSYNC_PG_URL" -q "$@"; }

for ((i = 0; i < 50; i++)); do
	printf 'export const v%d = 0;\n' "$i" >"$W/tree/b/f$i.js"
	cp "$W/tree/b/f$i.js" "$W/local/b/f$i.js"
done
CTL init
CTL import bench "$W/tree"
UUID=$("$PSQL" -X -At -q "$VSYNC_PG_URL" -c "SELECT vsync_project_id('bench')")

cat >"$W/driver.js" <<'EOF'
// driver.js LABEL DIR N WARMUP OUT [PSQL CONNINFO UUID [REDIS_PORT]]
'use strict';
const fs = require('fs');
const net = require('net');
const path = require('path');
const { spawn } = require('child_process');
const { performance } = require('perf_hooks');
const [label, dir, nArg, warmArg, out, psqlBin, conninfo, uuid, redisPort] = process.argv.slice(2);
const N = Number(nArg), WARM = Number(warmArg);
const now = () => performance.timeOrigin + performance.now();

let pending = null; // { name, resolve }
const watcher = fs.watch(dir, (type, name) => {
	const t = now();
	if (pending && name === pending.name) {
		const p = pending;
		pending = null;
		p.resolve(t);
	}
});

// The hop in Redis: a client of its own blocked in XREAD on the project's
// stream, which notes when each entry (id <seq>-0) reaches it.
const inRedis = new Map(); // seq -> time the entry was read
let redisWait = null; // { seq, resolve }
if (redisPort) {
	let last = '$', rbuf = '';
	const key = `events:{${uuid}}`;
	const sock = net.connect(Number(redisPort), '127.0.0.1');
	const xread = () => sock.write(`XREAD COUNT 1000 BLOCK 0 STREAMS ${key} ${last}\r\n`);
	sock.setNoDelay(true);
	sock.on('connect', xread);
	sock.on('data', (d) => {
		const t = now();
		rbuf += d;
		// a reply is complete when it ends a line; entry ids are the
		// bulk strings "<seq>-0" (no field value of the bench looks so)
		if (!rbuf.endsWith('\r\n')) return;
		let got = false;
		for (const line of rbuf.split('\r\n')) {
			const m = /^(\d+)-0$/.exec(line);
			if (!m) continue;
			got = true;
			last = line;
			const seq = Number(m[1]);
			if (!inRedis.has(seq)) inRedis.set(seq, t);
			if (redisWait && redisWait.seq === seq) {
				const w = redisWait;
				redisWait = null;
				w.resolve(t);
			}
		}
		rbuf = '';
		if (got) xread();
	});
	sock.on('error', (e) => { console.error(`redis: ${e.message}`); process.exit(1); });
}

let psql = null, acks = [], buf = '';
if (psqlBin) {
	psql = spawn(psqlBin, ['-X', '-At', '-q', '-v', 'ON_ERROR_STOP=1', conninfo],
		{ stdio: ['pipe', 'pipe', 'inherit'] });
	psql.stdout.on('data', (d) => {
		const t = now();
		buf += d;
		let i;
		while ((i = buf.indexOf('\n')) >= 0) {
			const line = buf.slice(0, i);
			buf = buf.slice(i + 1);
			const a = acks.shift();
			if (a) a({ t, seq: Number(line) });
		}
	});
	psql.on('exit', (c) => { if (c) { console.error(`psql exited ${c}`); process.exit(1); } });
}

function content(k) {
	return `export const v = ${k}; // ${'x'.repeat((k * 7919) % 700)}\n`;
}

function waitEvent(name) {
	return new Promise((resolve) => {
		const timer = setTimeout(() => { pending = null; resolve(null); }, 5000);
		pending = { name, resolve: (t) => { clearTimeout(timer); resolve(t); } };
	});
}

async function main() {
	const send = [], ack = [], sendAck = [], toRedis = [], commitRedis = [], fromRedis = [];
	let missed = 0, stale = 0, cpu0 = null;
	for (let k = 0; k < WARM + N; k++) {
		if (k === WARM) cpu0 = process.cpuUsage();
		const name = `f${k % 50}.js`, body = content(k);
		const ev = waitEvent(name);
		let tSend, tAck, seq = 0;
		if (psql) {
			const acked = new Promise((r) => acks.push(r));
			tSend = now();
			psql.stdin.write(`SELECT seq FROM vsync_write_file('${uuid}', 'b/${name}', ` +
				`convert_to($c$${body}$c$, 'UTF8'), NULL, NULL, NULL, 'bench', 'file');\n`);
			({ t: tAck, seq } = await acked);
		} else if (process.env.VS_SAVE === 'atomic') {
			// an editor's atomic save: a temporary beside it, renamed
			const tmp = path.join(dir, `.${name}.tmp`);
			tSend = now();
			fs.writeFileSync(tmp, body);
			fs.renameSync(tmp, path.join(dir, name));
			tAck = now();
		} else {
			tSend = now();
			fs.writeFileSync(path.join(dir, name), body);
			tAck = now();
		}
		const tEv = await ev;
		let tRedis = null;
		if (redisPort && tEv !== null) {
			tRedis = inRedis.get(seq) ?? await new Promise((resolve) => {
				const timer = setTimeout(() => { redisWait = null; resolve(null); }, 5000);
				redisWait = { seq, resolve: (t) => { clearTimeout(timer); resolve(t); } };
			});
			inRedis.delete(seq);
		}
		if (tEv === null) {
			if (k >= WARM) missed++;
			continue;
		}
		let seen = '';
		try { seen = fs.readFileSync(path.join(dir, name), 'utf8'); } catch (e) { seen = e.code; }
		if (k < WARM) continue;
		if (seen !== body) stale++;
		send.push(tEv - tSend);
		ack.push(tEv - tAck);
		sendAck.push(tAck - tSend);
		if (tRedis !== null) {
			toRedis.push(tRedis - tSend);
			commitRedis.push(tRedis - tAck);
			fromRedis.push(tEv - tRedis);
		}
	}
	const cpu = process.cpuUsage(cpu0 ?? undefined); // the driver's own
	watcher.close();
	if (psql) psql.stdin.end();

	const pct = (a, p) => {
		if (!a.length) return NaN;
		const s = [...a].sort((x, y) => x - y);
		return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
	};
	const r = {
		label, n: N, events: send.length, missed, stale,
		send_p50: pct(send, 50), send_p99: pct(send, 99),
		ack_p50: pct(ack, 50), ack_p99: pct(ack, 99),
		send_ack_p50: pct(sendAck, 50), send_ack_p99: pct(sendAck, 99),
		to_redis_p50: pct(toRedis, 50), to_redis_p99: pct(toRedis, 99),
		commit_redis_p50: pct(commitRedis, 50), commit_redis_p99: pct(commitRedis, 99),
		from_redis_p50: pct(fromRedis, 50), from_redis_p99: pct(fromRedis, 99),
		driver_us: (cpu.user + cpu.system) / N,
	};
	fs.writeFileSync(out, JSON.stringify(r) + '\n');
	process.exit(0); // the Redis client would keep the loop alive
}
main().catch((e) => { console.error(e); process.exit(1); });
EOF

# cpu_ms PID: CPU time (user + system, all threads, ms) of process PID
# so far, from /proc/PID/stat (clock ticks)
cpu_ms() {
	local f
	read -ra f <"/proc/$1/stat"
	# fields 14 and 15 (utime, stime); comm (field 2) has no spaces here
	echo $(((f[13] + f[14]) * 1000 / $(getconf CLK_TCK)))
}

# thread_us PID: {"NAME": µs, ...}, the CPU time of PID's live threads
# summed by thread name (the agent names its own: vs-follow, vs-saver, ...;
# libfuse's request workers keep vsync-mount), from
# /proc/PID/task/*/schedstat (ns, exact); a thread that ended is not in it
thread_us() {
	local t comm ns rest sep=
	local -A sum=()
	for t in /proc/"$1"/task/*; do
		read -r comm <"$t/comm" 2>/dev/null || continue
		read -r ns rest <"$t/schedstat" 2>/dev/null || continue
		sum[$comm]=$((${sum[$comm]:-0} + ns / 1000))
	done
	printf '{'
	for comm in "${!sum[@]}"; do
		printf '%s"%s": %d' "$sep" "$comm" "${sum[$comm]}"
		sep=', '
	done
	printf '}'
}

# run LABEL DIR [remote [REDIS_PORT]]: with REDIS_PORT the driver also
# notes when each change's stream entry reaches a client of its own
run() {
	local label=$1 dir=$2
	shift 2
	if [[ $# -gt 0 ]]; then
		shift # "remote"; then the Redis port, if any
		timeout -k 5 600 node "$W/driver.js" "$label" "$dir" "$N" "$WARMUP" \
			"$W/$label.json" "$PSQL" "$VSYNC_PG_URL" "$UUID" "$@"
	else
		timeout -k 5 600 node "$W/driver.js" "$label" "$dir" "$N" "$WARMUP" "$W/$label.json"
	fi
}

echo "# $N edits per run (+$WARMUP warm-up), $(nproc) cores, kernel $(uname -r)" >&2
run local "$W/local/b"
VS_SAVE=atomic run save-local "$W/local/b"

mkdir -p "$W/mnt-redis" "$W/mnt-pg"
sign_args=() verify_args=()
if [[ ${VS_BENCH_SIGN:-1} != 0 ]] && key=$(CTL keygen "$W/relay.key" 2>/dev/null); then
	sign_args=(--sign-key "$W/relay.key")
	verify_args=(--verify-key "${key#VSYNC_VERIFY_KEY=}")
	echo "# redis run: the relay signs, the mount verifies" >&2
else
	echo "# redis run: unsigned" >&2
fi
vs_relay_start "${sign_args[@]}"
vs_mount bench "$W/mnt-redis" --pg "$VSYNC_PG_URL" --redis "$VSYNC_REDIS_URL" \
	"${verify_args[@]}" --cache-dir "$W/cache-redis" --log-file "$VS_LOG_DIR/agent-redis.log"
perf_pid=
# where the agent's CPU goes: perf report -i $VS_BENCH_PERF/FILE
perf_start() {
	[[ -n ${VS_BENCH_PERF:-} ]] || return 0
	mkdir -p "$VS_BENCH_PERF"
	perf record -q -g -p "$VS_MOUNT_PID" -o "$VS_BENCH_PERF/$1" \
		>/dev/null 2>&1 &
	perf_pid=$!
}
perf_stop() {
	[[ -n $perf_pid ]] || return 0
	kill -INT "$perf_pid"
	wait "$perf_pid" || true
	perf_pid=
}
perf_start agent.data
c0=$(cpu_ms "$VS_MOUNT_PID") r0=$(cpu_ms "$VS_RELAY_PID") t0=$(thread_us "$VS_MOUNT_PID")
run redis "$W/mnt-redis/b" remote "$VS_REDIS_PORT"
c1=$(cpu_ms "$VS_MOUNT_PID") r1=$(cpu_ms "$VS_RELAY_PID") t1=$(thread_us "$VS_MOUNT_PID")
perf_stop
echo "{\"agent_ms\": $((c1 - c0)), \"relay_ms\": $((r1 - r0)), \"t0\": $t0, \"t1\": $t1}" >"$W/redis.cpu"
vs_umount "$W/mnt-redis"

redis_url=$VSYNC_REDIS_URL
unset VSYNC_REDIS_URL # PostgreSQL only: the mount must not find Redis in its env
vs_mount bench "$W/mnt-pg" --pg "$VSYNC_PG_URL" --cache-dir "$W/cache-pg" \
	--log-file "$VS_LOG_DIR/agent-pg.log"
export VSYNC_REDIS_URL=$redis_url
perf_start agent-pg.data
c0=$(cpu_ms "$VS_MOUNT_PID") t0=$(thread_us "$VS_MOUNT_PID")
run pg "$W/mnt-pg/b" remote
c1=$(cpu_ms "$VS_MOUNT_PID") t1=$(thread_us "$VS_MOUNT_PID")
perf_stop
echo "{\"agent_ms\": $((c1 - c0)), \"t0\": $t0, \"t1\": $t1}" >"$W/pg.cpu"
# the floor: the same edits saved atomically through the mount by a local
# editor, on a local-only path (.cache/), so that the agent does only what
# any FUSE filesystem does for such a save (no write-back)
mkdir -p "$W/mnt-pg/.cache/b"
for ((i = 0; i < 50; i++)); do cp "$W/local/b/f$i.js" "$W/mnt-pg/.cache/b/"; done
c0=$(cpu_ms "$VS_MOUNT_PID") t0=$(thread_us "$VS_MOUNT_PID")
VS_SAVE=atomic run save "$W/mnt-pg/.cache/b"
c1=$(cpu_ms "$VS_MOUNT_PID") t1=$(thread_us "$VS_MOUNT_PID")
echo "{\"agent_ms\": $((c1 - c0)), \"t0\": $t0, \"t1\": $t1}" >"$W/save.cpu"
vs_umount "$W/mnt-pg"

WARMUP=$WARMUP CLK_TCK=$(getconf CLK_TCK) node - "$W/local.json" "$W/redis.json" "$W/pg.json" "$W/redis.cpu" "$W/pg.cpu" \
	"$W/save.json" "$W/save.cpu" "$W/save-local.json" <<'EOF'
const fs = require('fs');
const [l, r, p, rc, pc, sv, sc, sl] = process.argv.slice(2).map((f) => JSON.parse(fs.readFileSync(f, 'utf8')));
const num = (x) => (typeof x === 'number' ? x : NaN);
const f = (x) => (Number.isFinite(x) ? x.toFixed(2) : '-').padStart(8);
console.log(`propagation of ${l.n} edits to an fs.watch watcher (ms)`);
console.log('');
console.log('run      from send: p50      p99   from commit: p50      p99   events  missed  stale reads');
for (const x of [l, r, p]) {
	console.log(`${x.label.padEnd(8)}          ${f(x.send_p50)} ${f(x.send_p99)}              ${f(x.ack_p50)} ${f(x.ack_p99)}   ${String(x.events).padStart(6)}  ${String(x.missed).padStart(6)}  ${String(x.stale).padStart(11)}`);
}
console.log('');
console.log('mount vs local (medians)        ratio from send  ratio from commit  difference from commit');
for (const x of [r, p]) {
	console.log(`${x.label.padEnd(8)}                        ${f(num(x.send_p50) / num(l.send_p50))}           ${f(num(x.ack_p50) / num(l.ack_p50))}            ${f(num(x.ack_p50) - num(l.ack_p50))} ms`);
}
console.log('');
console.log('hop by hop, redis run (ms)                      p50      p99');
console.log(`send -> commit (psql printed the result)  ${f(r.send_ack_p50)} ${f(r.send_ack_p99)}`);
console.log(`send -> stream entry read by a client      ${f(r.to_redis_p50)} ${f(r.to_redis_p99)}`);
console.log(`commit -> stream entry read by a client    ${f(r.commit_redis_p50)} ${f(r.commit_redis_p99)}`);
console.log(`stream entry read -> event on the mount    ${f(r.from_redis_p50)} ${f(r.from_redis_p99)}`);
console.log('');
const per = (ms) => (ms / (l.n + Number(process.env.WARMUP))).toFixed(3);
// agent_ms is in clock ticks (10 ms at CLK_TCK 100: about 0.02 ms per
// change over 500), so two runs may print the same figure; the live
// threads' schedstat sum is exact (but misses a thread that ended)
const live = (c) => per(Object.keys(c.t1)
	.reduce((s, k) => s + c.t1[k] - (c.t0[k] || 0), 0) / 1000);
console.log(`CPU per applied change (ms, all threads, over ${l.n} + warm-up edits; target for the agent: <= 0.1)`);
console.log(`  from clock ticks (+/- ${per(1000 / Number(process.env.CLK_TCK)).trim()}), and in () the live threads' exact sum`);
console.log(`redis    agent ${per(rc.agent_ms)} (${live(rc)})  relay ${per(rc.relay_ms)}`);
console.log(`pg       agent ${per(pc.agent_ms)} (${live(pc)})`);
// the agent's share by thread (live threads, schedstat): which part of
// the work a change costs - the follower applying it, or the FUSE
// requests the apply and the watcher's read send
const split = (c) => Object.entries(c.t1)
	.map(([k, us]) => [k === 'vsync-mount' ? 'FUSE workers' : k, us - (c.t0[k] || 0)])
	.sort((a, b) => b[1] - a[1])
	.map(([k, us]) => [k, per(us / 1000)])
	.filter(([, ms]) => ms !== '0.000').map(([k, ms]) => `${k} ${ms}`).join(', ');
console.log(`agent by thread, redis: ${split(rc)}`);
console.log(`agent by thread, pg:    ${split(pc)}`);
// the floor: what one atomic save through the mount costs - the agent's
// FUSE work, and the kernel work the mount adds to the driver's own calls
// (its CPU per save through the mount less on the local directory: the
// save's calls, and its read after the event, which in the remote runs
// is not counted); the follower, which makes the remote save, pays both
const editor = (sv.driver_us - sl.driver_us) / 1000;
const floor = Number(per(sc.agent_ms)) + editor;
console.log(`floor, an editor's atomic save through the mount (local-only path): agent ${per(sc.agent_ms)} (${live(sc)}) + driver's extra ${editor.toFixed(3)} = ${floor.toFixed(3)}`);
console.log(`agent by thread, floor: ${split(sc)}`);
console.log(`agent per applied change / floor: redis ${f(Number(per(rc.agent_ms)) / floor).trim()}, pg ${f(Number(per(pc.agent_ms)) / floor).trim()}`);
console.log(`(the floor's own save -> event: p50 ${f(sv.send_p50).trim()} ms, p99 ${f(sv.send_p99).trim()} ms; events ${sv.events}, missed ${sv.missed}, stale ${sv.stale})`);
console.log('');
console.log('local: in-place fs.writeFileSync; "commit" = writeFileSync returned.');
console.log('floor: fs.writeFileSync of .NAME.tmp and fs.renameSync onto NAME in the pg mount\'s .cache/b;');
console.log('  the driver\'s extra: its CPU per such save (and read) there less per one in the local directory.');
console.log('redis/pg: one psql session, SELECT vsync_write_file per edit; "commit" = psql printed its result.');
EOF
