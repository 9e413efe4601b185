#!/usr/bin/env bash
#
# run.sh - the fuzz step of the test command: build the libFuzzer targets
# of tests/fuzz/ in their own build dir (build-fuzz/, CC=clang,
# -DVSYNC_FUZZ=ON) and run each for a bounded time, two at a time, on a
# temporary copy of its seed corpus (tests/fuzz/corpus/<target>/ is never
# written to). A crash, leak, sanitizer report or broken property fails
# the step; the input that caused it is kept in
# build-fuzz/crashes/<target>/ (emptied when the target starts) and the log
# in build-fuzz/logs/<target>.log.
#
# usage: tests/fuzz/run.sh [TARGET...]      e.g. tests/fuzz/run.sh fuzz_blob
#   VSYNC_FUZZ_SECONDS  time per target (default 10)
#   VSYNC_FUZZ_JOBS     targets run at once (default: 2, at most nproc)
#
# Exits 0 when every target ran clean, 1 on a failure, 77 (skipped, with
# a message) when clang or its fuzzer runtime (libclang-rt-*-dev) is
# missing.

set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
seconds=${VSYNC_FUZZ_SECONDS:-10}
jobs=${VSYNC_FUZZ_JOBS:-2}
build=$root/build-fuzz
((jobs > $(nproc))) && jobs=$(nproc)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vsync-fuzz.XXXXXX") || exit 1
pids=()
# shellcheck disable=SC2317 # run by the trap
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

# clang and libFuzzer's runtime: probe with a one-line target.
if ! command -v clang >/dev/null 2>&1; then
	echo "fuzz: SKIPPED: clang is not installed (Debian: apt-get install clang libclang-rt-14-dev)"
	exit 77
fi
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)\n{ (void)d; (void)n; return 0; }\n' >"$tmp/probe.c"
if ! clang -fsanitize=fuzzer,address,undefined "$tmp/probe.c" -o "$tmp/probe" >"$tmp/probe.log" 2>&1; then
	echo "fuzz: SKIPPED: clang cannot link -fsanitize=fuzzer (the fuzzer runtime is missing; Debian: apt-get install libclang-rt-14-dev):"
	sed 's/^/    /' "$tmp/probe.log" | head -5
	exit 77
fi

echo "# fuzz: building into build-fuzz/ (clang, VSYNC_FUZZ=ON)"
if ! CC=clang cmake -S "$root" -B "$build" -DVSYNC_FUZZ=ON \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo >"$tmp/cmake.log" 2>&1 ||
	! cmake --build "$build" -j "$(nproc)" >>"$tmp/cmake.log" 2>&1; then
	cat "$tmp/cmake.log"
	echo "fuzz: FAILED: the fuzz build failed"
	exit 1
fi

targets=("$@")
if ((${#targets[@]} == 0)); then
	for src in "$root"/tests/fuzz/fuzz_*.c; do
		targets+=("$(basename "$src" .c)")
	done
fi

mkdir -p "$build/logs"
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# run_one TARGET (in a subshell: it becomes the fuzzer): exit 0 clean,
# non-zero failed (the log says why)
run_one() {
	local t=$1 corpus=$tmp/corpus/$1 crashes=$build/crashes/$1
	rm -rf "$crashes"
	mkdir -p "$corpus" "$crashes"
	if [[ -d $root/tests/fuzz/corpus/$t ]]; then
		cp -R "$root/tests/fuzz/corpus/$t/." "$corpus/"
	fi
	exec "$build/tests/fuzz/$t" -max_total_time="$seconds" -timeout=10 \
		-rss_limit_mb=1024 -print_final_stats=1 \
		-artifact_prefix="$crashes/" "$corpus" >"$build/logs/$t.log" 2>&1
}

# summary TARGET RC: one line per target
summary() {
	local t=$1 rc=$2 log=$build/logs/$1.log last execs cov ft input
	last=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)
	execs=$(grep -E '^stat::number_of_executed_units:' "$log" | awk '{print $2}')
	cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
	ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
	if ((rc == 0)); then
		printf 'fuzz: %-18s ok      %ss, %s runs, %s exec/s, cov %s, ft %s\n' \
			"$t" "$seconds" "${execs:-?}" \
			"$(sed -nE 's/.*exec\/s: ([0-9]+).*/\1/p' <<<"$last")" \
			"${cov:-?}" "${ft:-?}"
	else
		printf 'fuzz: %-18s FAILED (exit %s); log: %s\n' "$t" "$rc" "$log"
		grep -E 'ERROR: |property failed|SUMMARY: |Test unit written to' "$log" |
			head -8 | sed 's/^/    /'
		input=$(find "$build/crashes/$t" -type f 2>/dev/null | head -1)
		echo "    the failing input is kept in ${input:-$build/crashes/$t/ (none written)}"
		echo "    replay it with: $build/tests/fuzz/$t ${input:-<input>}"
	fi
}

echo "# fuzz: ${#targets[@]} targets, ${seconds}s each, $jobs at a time"
status=0
declare -A pid_target=()
for t in "${targets[@]}"; do
	if [[ ! -x $build/tests/fuzz/$t ]]; then
		echo "fuzz: no such target: $t"
		status=1
		continue
	fi
	while ((${#pid_target[@]} >= jobs)); do
		wait -n -p done_pid
		rc=$?
		summary "${pid_target[$done_pid]}" "$rc"
		((rc == 0)) || status=1
		unset "pid_target[$done_pid]"
	done
	run_one "$t" &
	pid_target[$!]=$t
	pids+=("$!")
done
while ((${#pid_target[@]} > 0)); do
	wait -n -p done_pid
	rc=$?
	summary "${pid_target[$done_pid]}" "$rc"
	((rc == 0)) || status=1
	unset "pid_target[$done_pid]"
done
pids=()
((status == 0)) && echo "fuzz: all targets ran clean" || echo "fuzz: FAILED: see above"
exit "$status"
