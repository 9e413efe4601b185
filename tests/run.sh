#!/usr/bin/env bash
#
# run.sh - the test command: install what is missing (Debian 12, as root),
# build a plain build (build/) and an ASan+UBSan build (build-asan/), and run
# every unit and integration test in both with ctest (the two suites side
# by side; VSYNC_TEST_SERIAL=1 runs them in turn), after the source checks
# of tests/lint/lint.sh (clang-format, banned.h), and the fuzz step: each
# libFuzzer target of tests/fuzz/ for a bounded time (tests/fuzz/run.sh;
# clang, its own build-fuzz/), once the plain suite is done, beside the
# ASan suite's last tests. Exits non-zero if anything fails.
# Integration tests start their own throwaway PostgreSQL and Redis and skip
# (exit 77) where /dev/fuse is missing; the fuzz step is skipped, with a
# message, where clang or its fuzzer runtime is missing.
#
# usage: tests/run.sh [CTEST ARGS...]     e.g. tests/run.sh -L unit
#   VSYNC_FUZZ_SECONDS=N  time per fuzz target (default 10; 0 skips the step)

set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=tests/lib/build.sh
. "$root/tests/lib/build.sh"

step() {
	printf '\n==== %s\n' "$*"
}

step "dependencies"
vs_install_deps

step "build: plain (build/)"
vs_build build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVSYNC_SANITIZE=OFF

step "build: ASan+UBSan (build-asan/)"
vs_build build-asan -DCMAKE_BUILD_TYPE=Debug -DVSYNC_SANITIZE=ON

status=0

step "lint: clang-format, banned.h (tests/lint/lint.sh)"
"$root/tests/lint/lint.sh" || status=1

# The two builds' suites run side by side (each test of a suite after the
# other, RUN_SERIAL): a test spends much of its time waiting on servers,
# mounts and child processes, so two at once fill 2 cores without
# starving either. The plain suite ends first (the ASan one is about a
# sixth longer): the fuzz step runs then, beside the ASan suite's last
# tests. Each step's output is shown whole, in order, when all are done.
# VSYNC_TEST_SERIAL=1 runs them one after the other, as on one core.
suite() { # suite BUILD_DIR LOG [CTEST ARGS...]
	local dir=$1 log=$2
	shift 2
	(
		cd "$dir"
		export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
		export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
		ctest --output-on-failure --timeout 600 "$@"
	) >"$log" 2>&1
}
fuzz() { # fuzz LOG: the fuzz step; its exit status (77: skipped)
	if [[ ${VSYNC_FUZZ_SECONDS:-10} == 0 ]]; then
		echo "fuzz: SKIPPED: VSYNC_FUZZ_SECONDS=0" >"$1"
		return 77
	fi
	"$root/tests/fuzz/run.sh" >"$1" 2>&1
}
logs=$(mktemp -d "${TMPDIR:-/tmp}/vsync-suites.XXXXXX")
pids=()
# shellcheck disable=SC2317 # run by the trap
end_suites() {
	((${#pids[@]} == 0)) || kill "${pids[@]}" 2>/dev/null || true
	rm -rf "$logs"
}
trap end_suites EXIT
if [[ ${VSYNC_TEST_SERIAL:-0} == 1 ]] || (($(nproc) < 2)); then
	suite build "$logs/plain" "$@" && rc_plain=0 || rc_plain=$?
	suite build-asan "$logs/asan" "$@" && rc_asan=0 || rc_asan=$?
	fuzz "$logs/fuzz" && rc_fuzz=0 || rc_fuzz=$?
else
	suite build "$logs/plain" "$@" &
	pid_plain=$!
	suite build-asan "$logs/asan" "$@" &
	pid_asan=$!
	pids=("$pid_plain" "$pid_asan")
	wait "$pid_plain" && rc_plain=0 || rc_plain=$?
	pids=("$pid_asan")
	fuzz "$logs/fuzz" && rc_fuzz=0 || rc_fuzz=$?
	wait "$pid_asan" && rc_asan=0 || rc_asan=$?
	pids=()
fi
step "tests: plain build"
cat "$logs/plain"
((rc_plain == 0)) || status=1
step "tests: ASan+UBSan build"
cat "$logs/asan"
((rc_asan == 0)) || status=1

step "fuzz: libFuzzer targets (build-fuzz/, ${VSYNC_FUZZ_SECONDS:-10}s each)"
cat "$logs/fuzz"
fuzz="fuzz step skipped"
((rc_fuzz == 0)) && fuzz="fuzz targets clean"
((rc_fuzz == 0 || rc_fuzz == 77)) || status=1

if ((status == 0)); then
	step "all tests passed in both builds; $fuzz"
else
	step "FAILED: see the output above"
fi
exit "$status"
