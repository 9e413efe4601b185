#!/usr/bin/env bash
#
# tsan.sh - an extra check, not part of the test command (tests/run.sh):
# build vsync with ThreadSanitizer in its own build dir (build-tsan/,
# -DVSYNC_TSAN=ON) and run the unit tests and the integration tests that
# exercise concurrency under it. A data race, lock-order inversion or other
# TSan report in any vsync program the tests start (vsync-mount, vsyncctl,
# wb_driver ...) fails the run: every report is written to
# build-tsan/tsan/<prog>.<pid> (TSAN_OPTIONS log_path) and printed at the
# end, and halt_on_error=1 makes the reporting program exit at once, so the
# test that started it fails too.
#
# usage: tests/tsan.sh [CTEST ARGS...]
#   default: -L unit, then integration_writable, integration_live,
#   integration_writeback, integration_conflicts, integration_fsx and
#   integration_posix; with arguments, only `ctest ARGS` (e.g.
#   tests/tsan.sh -R integration_live)
#
# In this build vsync-mount takes no splice on /dev/fuse (fuse/fs.c
# vs_init): TSan sees the kernel's ordering of requests and replies only
# through read(2) and writev(2) on it.
#
# Suppressions: tests/tsan.supp, for races inside libraries that are not
# built with TSan (libfuse's, glibc's internals) only; a race with a vsync
# frame in it is a bug to fix, never to suppress.
#
# Exits 0 when everything passed with no report, 1 otherwise. Takes several
# times as long as the plain tests (about 5 minutes on 2 cores, plus the
# build).

set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
# shellcheck source=tests/lib/build.sh
. "$root/tests/lib/build.sh"

build=$root/build-tsan
reports=$build/tsan

echo "# tsan: building into build-tsan/ (VSYNC_TSAN=ON)"
if ! vs_build build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVSYNC_TSAN=ON; then
	echo "tsan: FAILED: the TSan build failed"
	exit 1
fi

rm -rf "$reports"
mkdir -p "$reports"
# second_deadlock_stack: both stacks of a lock-order report
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 history_size=4 log_path=$reports/tsan suppressions=$root/tests/tsan.supp"

status=0
cd "$build" || exit 1
if (($# > 0)); then
	ctest --output-on-failure --timeout 1200 "$@" || status=1
else
	ctest --output-on-failure -L unit || status=1
	ctest --output-on-failure --timeout 1200 \
		-R '^integration_(writable|live|writeback|conflicts|fsx|posix)$' || status=1
fi

shopt -s nullglob
logs=("$reports"/tsan.*)
if ((${#logs[@]} > 0)); then
	status=1
	echo "tsan: ${#logs[@]} report file(s) in $reports:"
	for f in "${logs[@]}"; do
		printf '\n==== %s\n' "$f"
		head -n 80 "$f"
	done
fi
if ((status == 0)); then
	echo "tsan: all tests passed with no ThreadSanitizer report"
else
	echo "tsan: FAILED"
fi
exit "$status"
