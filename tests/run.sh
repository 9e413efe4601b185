#!/usr/bin/env bash
#
# run.sh - the test command: install what is missing (Debian 12, as root),
# build a plain build (build/) and an ASan+UBSan build (build-asan/), and run
# every unit and integration test in both with ctest, after the source checks
# of tests/lint/lint.sh (clang-format, banned.h), then the fuzz step: each
# libFuzzer target of tests/fuzz/ for a bounded time (tests/fuzz/run.sh;
# clang, its own build-fuzz/). Exits non-zero if anything fails.
# Integration tests start their own throwaway PostgreSQL and Redis and skip
# (exit 77) where /dev/fuse is missing; the fuzz step is skipped, with a
# message, where clang or its fuzzer runtime is missing.
#
# usage: tests/run.sh [CTEST ARGS...]     e.g. tests/run.sh -L unit
#   VSYNC_FUZZ_SECONDS=N  time per fuzz target (default 20; 0 skips the step)

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

step "tests: plain build"
(cd build && ctest --output-on-failure --timeout 600 "$@") || status=1

step "tests: ASan+UBSan build"
(
	cd build-asan
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	ctest --output-on-failure --timeout 600 "$@"
) || status=1

step "fuzz: libFuzzer targets (build-fuzz/, ${VSYNC_FUZZ_SECONDS:-20}s each)"
fuzz="fuzz step skipped"
if [[ ${VSYNC_FUZZ_SECONDS:-20} == 0 ]]; then
	echo "fuzz: SKIPPED: VSYNC_FUZZ_SECONDS=0"
else
	rc=0
	"$root/tests/fuzz/run.sh" || rc=$?
	((rc == 0)) && fuzz="fuzz targets clean"
	((rc == 0 || rc == 77)) || status=1
fi

if ((status == 0)); then
	step "all tests passed in both builds; $fuzz"
else
	step "FAILED: see the output above"
fi
exit "$status"
