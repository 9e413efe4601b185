#!/usr/bin/env bash
#
# gen_tree.sh - generate a project tree that exercises vsync's import and
# mount: many files in deep directories, Unicode and awkward names, empty
# files, a relative symlink, an executable script, a PNG, files sized around
# page and chunk boundaries, one large random file, an empty directory, and
# node_modules/ and .git/ trees that import must leave out.
#
# usage: gen_tree.sh [-n FILES] [-b BIG_MB] DIR
#   -n FILES   number of generated source files (default 1000); the fixed
#              special files come on top of these
#   -b BIG_MB  size of big/random.bin in MiB (default 50; 0 leaves it out)
#   DIR        must not exist, or be empty
#
# Uses only bash, coreutils and awk (no python: a fresh Debian has none). The
# text files are deterministic; the binary ones come from /dev/urandom.
# Prints one summary line.

set -euo pipefail

usage() {
	echo "usage: $0 [-n FILES] [-b BIG_MB] DIR" >&2
	exit 2
}

nfiles=1000
big_mb=50
while getopts 'n:b:h' opt; do
	case $opt in
	n) nfiles=$OPTARG ;;
	b) big_mb=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
(($# == 1)) || usage
[[ $nfiles =~ ^[0-9]+$ && $big_mb =~ ^[0-9]+$ ]] || usage
dir=$1

if [[ -e "$dir" ]] && [[ -n "$(ls -A "$dir")" ]]; then
	echo "gen_tree: $dir exists and is not empty" >&2
	exit 1
fi
mkdir -p "$dir"
cd "$dir"
umask 022

count=0
declare -A made=()

# parent PATH: create the directory PATH is in (once; no fork when known).
parent() {
	local d=.
	[[ $1 == */* ]] && d=${1%/*}
	if [[ -z "${made[$d]:-}" ]]; then
		mkdir -p -- "$d"
		made[$d]=1
	fi
}

# put PATH CONTENT: write a regular file (parents created), mode 0644.
put() {
	parent "$1"
	printf '%s' "$2" >"./$1"
	count=$((count + 1))
}

# rand PATH BYTES: a file of random bytes.
rand() {
	parent "$1"
	head -c "$2" /dev/urandom >"./$1"
	count=$((count + 1))
}

# ---------------------------------------------------------------- bulk

exts=(js ts jsx css json md txt html)
unames=("café" "naïve-日本語" "🚀-rocket" "Ωmega" "straße" "emoji-😀-face"
	"mixed ümlaut ñ" "한국어" "עברית" "العربية" "Ünïcödé-dir" "中文目录")
# bulk_dir I: the directory of generated file I, in $path.
bulk_dir() {
	local i=$1 k depth=$((1 + $1 % 10))
	path=src
	for ((k = 1; k < depth; k++)); do
		path+="/lvl$k-$(((i / (k + 1)) % 3))"
	done
	if ((i % 50 == 7)); then
		path+="/${unames[(i / 50) % ${#unames[@]}]}"
	fi
}
# Every directory first, in one mkdir, then every file by one awk: a
# mkdir a directory (a fork and an exec each) and bash's ${base:o:n}
# (which copies the whole 100 KiB block at each use) took most of the
# time of a few thousand files.
for ((i = 0; i < nfiles; i++)); do
	bulk_dir "$i"
	made[$path]=1
done
((nfiles == 0)) || mkdir -p -- "${!made[@]}"
# awk gets "I<TAB>PATH" (PATH empty-I.EXT: an empty file). Its block of
# text to cut file contents from: 1200 ASCII lines; file I is its header
# and SIZE bytes from OFF, both from I.
for ((i = 0; i < nfiles; i++)); do
	bulk_dir "$i"
	ext=${exts[i % ${#exts[@]}]}
	if ((i % 97 == 3)); then
		printf '%d\t%s\n' "$i" "$path/empty-$i.$ext"
	else
		printf '%d\t%s\n' "$i" "$path/file-$i.$ext"
	fi
done | awk -F '\t' -v n="$nfiles" '
BEGIN {
	for (l = 0; l < 1200; l++)
		base = base sprintf("line %d: the quick brown fox jumps over the lazy dog; const v%d = %d;\n", l, l, (l * 7919) % 100003)
}
{
	f = "./" $2
	if ($2 ~ /\/empty-[0-9]+\.[a-z]+$/) {
		printf "" >f
	} else {
		size = ($1 * 7919) % 6000
		off = ($1 * 131) % (length(base) - 6000)
		printf "// file %d of %d\n%s", $1, n, substr(base, off + 1, size) >f
	}
	close(f)
}'
count=$((count + nfiles))

# ---------------------------------------------------------------- specials

put "café/naïve-日本語.txt" "Unicode path, NFC é."$'\n'
put "café/naïve-nfd-cafe"$'\xcc\x81'".txt" "Same word, NFD e + U+0301: a different name."$'\n'
put "🚀/launch-🚀.md" "# emoji in a directory and a file name"$'\n'
put "with space/and 'quote' & (parens).txt" "awkward shell characters"$'\n'
put "-leading-dash.txt" "a name that looks like an option"$'\n'
put ".env" "VITE_API=http://localhost:3000"$'\n'
put ".hidden-dir/.config" "hidden file in a hidden directory"$'\n'
put "docs/README.md" "# Generated tree

Test fixture for vsync's integration tests.
"
put "package.json" '{ "name": "vsync-fixture", "version": "1.0.0", "private": true }
'
put "a/b/c/d/e/f/g/h/i/j/deep.txt" "ten directories deep"$'\n'

# Names of exactly 255 bytes (NAME_MAX): ASCII, and 85 three-byte characters.
long=$(printf 'n%.0s' {1..251})
put "long/$long.txt" "255-byte ASCII name"$'\n'
long=$(printf '日%.0s' {1..85})
put "long/$long" "255-byte UTF-8 name"$'\n'

# Empty files.
put "empty/zero.txt" ""
put "empty/.gitkeep" ""
put "empty/nested/also-empty.js" ""

# Relative symlink to a file.
ln -s ../docs/README.md "docs/link-to-readme"
ln -s docs/README.md "README.link"

# Executable script.
put "scripts/run.sh" '#!/bin/sh
echo "hello from scripts/run.sh"
'
chmod 0755 "scripts/run.sh"

# A 1x1 RGB PNG.
mkdir -p public
printf '\211\120\116\107\015\012\032\012\000\000\000\015\111\110\104\122\000\000\000\001\000\000\000\001\010\002\000\000\000\220\167\123\336\000\000\000\014\111\104\101\124\170\332\143\320\356\172\004\000\002\173\001\230\373\154\300\135\000\000\000\000\111\105\116\104\256\102\140\202' >public/pixel.png
count=$((count + 1))

# Sizes around page, FUSE request and chunk boundaries.
for s in 1 4095 4096 4097 65535 65536 131071 131072 131073 1048575 1048577; do
	rand "sizes/size-$s.bin" "$s"
done

if ((big_mb > 0)); then
	rand "big/random.bin" $((big_mb * 1024 * 1024))
fi

# An empty directory.
mkdir -p "empty-dir"

synced=$count

# ---------------------------------------------------------------- excluded

put "node_modules/left-pad/package.json" '{ "name": "left-pad", "version": "1.3.0", "main": "index.js" }
'
put "node_modules/left-pad/index.js" 'module.exports = (s, n, c) => String(s).padStart(n, c || " ");
'
put "node_modules/.package-lock.json" '{ "lockfileVersion": 3 }
'
put ".git/HEAD" "ref: refs/heads/main"$'\n'
put ".git/config" "[core]"$'\n'"	bare = false"$'\n'
rand ".git/objects/ab/cdef0123456789abcdef0123456789abcdef01" 300

echo "gen_tree: $dir: $synced files to sync, 2 symlinks, 1 empty directory," \
	"$((count - synced)) files in node_modules/ and .git/, big=${big_mb} MiB"
