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
