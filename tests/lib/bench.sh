# shellcheck shell=bash
#
# bench.sh - the small helpers every script of tests/bench/ uses, in one
# place. Sourced after servers.sh.
#
#   log MSG...        "# MSG" on stderr (a bench's progress; stdout is its
#                     table)
#   now_us            microseconds of the wall clock (EPOCHREALTIME)
#   ms_since T0_US    milliseconds since T0_US, one decimal
#   secs T0_US T1_US  seconds from T0_US to T1_US, two decimals
#   median, p99       of the numbers on stdin (separated by spaces or
#                     newlines), two decimals; "-" when there are none
#   ratio A B         A / B, two decimals; "-" when either is "-" or B <= 0
#   bench_metric HOSTPORT NAME
#                     NAME's value from HOSTPORT's /metrics into METRIC
#                     (1 if absent or unreachable), with bash builtins only
#   bench_poll SECS CMD...
#                     vs_poll with naps of at most 20 ms, for a CMD whose
#                     success is timed (a function that forks nothing,
#                     e.g. bench_metric): vs_poll forks nothing itself. A
#                     poller that forks (curl, sleep, a subshell) every
#                     20 ms takes a good part of a core of a 2-core
#                     machine from the work it measures.

log() { printf '# %s\n' "$*" >&2; }

now_us() { echo "${EPOCHREALTIME/./}"; }

ms_since() {
	awk -v a="$1" -v b="$(now_us)" 'BEGIN { printf "%.1f", (b - a) / 1000 }'
}

secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e6 }'; }

bench__sorted() { tr ' ' '\n' | { grep . || true; } | sort -n; }

median() {
	bench__sorted | awk '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit } m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.2f", m }'
}

p99() {
	bench__sorted | awk '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit } i = int(NR * 0.99 + 0.999999); if (i > NR) i = NR; printf "%.2f", v[i] }'
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b <= 0) print "-"; else printf "%.2f", a / b }'
}

METRIC=
bench_metric() {
	local fd line
	METRIC=
	exec {fd}<>"/dev/tcp/${1%:*}/${1##*:}" 2>/dev/null || return 1
	printf 'GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&"$fd"
	while IFS= read -r -t 3 -u "$fd" line; do
		line=${line%$'\r'}
		if [[ $line == "$2 "* ]]; then
			METRIC=${line#"$2 "}
			break
		fi
	done
	exec {fd}>&-
	[[ -n $METRIC ]]
}

bench_poll() { VS_POLL_NAP_MAX=20 vs_poll "$@"; }
