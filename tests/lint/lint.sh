#!/usr/bin/env bash
#
# lint.sh - source checks that need no build; a step of tests/run.sh, also
# run alone: tests/lint/lint.sh. Exits non-zero when a check fails.
#
#   format   every tracked *.c / *.h passes `clang-format --dry-run --Werror`
#            with the repo's .clang-format (skipped, saying so, when
#            clang-format is missing; the tree is formatted with Debian 12's
#            clang-format 14, and other versions may disagree)
#   banned   every tracked .c file in agent/, fuse/ and sync/ has
#            #include "vsync/banned.h" as its last include, and that header
#            does make each banned call fail to compile (skipped when no C
#            compiler is found)

set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root" || exit 1
status=0

# tracked files still present (a deletion not yet committed is not checked)
if ! files=$(git ls-files -- '*.c' '*.h' 2>/dev/null |
	while IFS= read -r f; do [[ -f $f ]] && printf '%s\n' "$f"; done) ||
	[[ -z $files ]]; then
	echo "lint: not a git checkout (git ls-files found no C files); nothing checked" >&2
	exit 1
fi

# ---------------------------------------------------------------- format
if ! command -v clang-format >/dev/null 2>&1; then
	echo "lint: format: SKIPPED, clang-format is not installed (Debian: apt-get install clang-format)"
else
	# one run over all files; its messages name each file that differs
	if ! out=$(xargs -d '\n' clang-format --dry-run --Werror <<<"$files" 2>&1); then
		mapfile -t bad < <(sed -nE 's/^([^: ]+):[0-9]+:[0-9]+: (warning|error):.*/\1/p' <<<"$out" | sort -u)
		echo "lint: format: FAILED ($(clang-format --version)); not clang-formatted:"
		printf '  %s\n' "${bad[@]:-?}"
		((${#bad[@]})) && echo "  fix with: clang-format -i ${bad[*]}"
		head -n 40 <<<"$out"
		status=1
	else
		echo "lint: format: ok ($(wc -l <<<"$files") files)"
	fi
fi

# ---------------------------------------------------------------- banned
bad=()
while IFS= read -r f; do
	[[ $f == agent/*.c || $f == fuse/*.c || $f == sync/*.c ]] || continue
	last=$(grep -E '^[[:space:]]*#[[:space:]]*include' "$f" | tail -n 1)
	[[ $last == '#include "vsync/banned.h"' ]] || bad+=("$f (last include: ${last:-none})")
done <<<"$files"
if ((${#bad[@]})); then
	echo 'lint: banned: FAILED, #include "vsync/banned.h" is not the last include of:'
	printf '  %s\n' "${bad[@]}"
	status=1
else
	echo 'lint: banned: ok (every agent/ fuse/ sync/ .c file ends its includes with vsync/banned.h)'
fi

cc=${CC:-cc}
if ! command -v "$cc" >/dev/null 2>&1; then
	echo "lint: banned calls: SKIPPED, no C compiler ($cc)"
else
	tmp=$(mktemp -d) || exit 1
	trap 'rm -rf "$tmp"' EXIT
	declare -A calls=(
		[strcpy]='strcpy(d, s)' [strcat]='strcat(d, s)'
		[strncpy]='strncpy(d, s, 4)' [strncat]='strncat(d, s, 4)'
		[sprintf]='sprintf(d, "%s", s)' [vsprintf]='vsprintf(d, s, ap)'
	)
	refused=0
	for name in "${!calls[@]}"; do
		printf '%s\n' '#include <stdarg.h>' '#include <stdio.h>' \
			'#include <string.h>' '#include "vsync/banned.h"' \
			"void f(char *d, const char *s, va_list ap)" \
			"{ (void)s; (void)ap; ${calls[$name]}; }" >"$tmp/$name.c"
		if "$cc" -std=c11 -fsyntax-only -Iinclude "$tmp/$name.c" \
			>"$tmp/$name.out" 2>&1 ||
			! grep -q "sorry_${name}_is_banned_in_vsync" "$tmp/$name.out"; then
			echo "lint: banned calls: FAILED, $name compiles or fails for another reason:"
			sed 's/^/  /' "$tmp/$name.out" | head -10
			status=1
		else
			refused=$((refused + 1))
		fi
	done
	((refused == ${#calls[@]})) && echo "lint: banned calls: ok (${!calls[*]} refused)"
fi

exit "$status"
