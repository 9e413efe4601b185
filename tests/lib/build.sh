# shellcheck shell=bash
#
# build.sh - install vsync's dependencies and build it; sourced by
# tests/run.sh (the test command) and container/demo.sh so both install and
# build the same way.
#
#   vs_install_deps          install the Debian packages that are missing
#                            (apt-get update first); a no-op when all are in
#   vs_build DIR [CMAKE...]  configure and build the repo into DIR
#                            (relative to the repo root) with -j$(nproc)
#
# Both return non-zero on failure (no exit), so the caller decides.

VS_REPO_ROOT=${VS_REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}

# What building and testing vsync needs on Debian 12. make and libc6-dev
# are listed because --no-install-recommends would leave them out (cmake
# and gcc only recommend them). clang and libclang-rt-14-dev (libFuzzer and
# the sanitizer runtimes for clang 14, Debian 12's clang) build the fuzz
# targets of tests/fuzz/.
VS_DEB_PACKAGES=(
	cmake make gcc libc6-dev pkg-config
	clang libclang-rt-14-dev
	libfuse3-dev fuse3
	libpq-dev postgresql
	redis-server libhiredis-dev stunnel4 openssl
	libwebsockets-dev liblz4-dev libssl-dev libjansson-dev
	libcmocka-dev libgit2-dev librsync-dev
	inotify-tools perl util-linux procps curl coreutils iproute2 git time gdb
	clang-format
)

vs__deb_installed() {
	[[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == installed ]]
}

vs_install_deps() {
	local p missing=()
	if ! command -v dpkg-query >/dev/null 2>&1; then
		echo "vs_install_deps: not a Debian system (no dpkg-query); install the packages by hand: ${VS_DEB_PACKAGES[*]}" >&2
		return 1
	fi
	for p in "${VS_DEB_PACKAGES[@]}"; do
		vs__deb_installed "$p" || missing+=("$p")
	done
	((${#missing[@]} == 0)) && return 0
	echo "# installing missing packages: ${missing[*]}" >&2
	if ((EUID != 0)); then
		echo "vs_install_deps: need root to install: ${missing[*]}" >&2
		return 1
	fi
	apt-get update || return 1
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		"${missing[@]}" || return 1
}

vs_build() {
	local dir=$1
	shift
	case $dir in
	/*) ;;
	*) dir=$VS_REPO_ROOT/$dir ;;
	esac
	cmake -S "$VS_REPO_ROOT" -B "$dir" "$@" || return 1
	cmake --build "$dir" -j "$(nproc)" || return 1
}
