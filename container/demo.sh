#!/usr/bin/env bash
#
# demo.sh - try vsync on this machine: install and build (as tests/run.sh
# does), start a throwaway PostgreSQL and Redis, import container/example as
# project "example" and mount it at ./mnt.
#
# usage: container/demo.sh [start]   set everything up and print what to try
#        container/demo.sh stop      unmount and stop everything it started
#
# State lives in ./.demo/ (env holds the servers' paths, ports and PIDs so
# `stop` works from any later shell; cache/ is the mount's cache dir;
# mount.log its log). The servers keep running after this script exits.

set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
state=$root/.demo
mnt=$root/mnt
project=example

say() {
	printf 'demo: %s\n' "$*"
}

# stop_all: unmount, stop the servers from .demo/env, remove the state.
stop_all() {
	if [[ -f "$state/env" ]]; then
		# shellcheck disable=SC1091
		. "$state/env"
	fi
	# shellcheck source=tests/lib/servers.sh
	. "$root/tests/lib/servers.sh"
	if vs_is_mounted "$mnt"; then
		if ! fusermount3 -u "$mnt" 2>/dev/null; then
			say "$mnt is busy (a shell or dev server inside it?): detaching it;" \
				"vsync-mount exits when the last user leaves"
			fusermount3 -uz "$mnt" 2>/dev/null || true
		fi
		vs_poll 10 vs__not_mounted "$mnt" || say "warning: $mnt is still mounted"
	fi
	if [[ -n "${VS_DEMO_RELAY_PID:-}" ]] && kill "$VS_DEMO_RELAY_PID" 2>/dev/null; then
		vs_poll 10 sh -c '! kill -0 "$1" 2>/dev/null' _ "$VS_DEMO_RELAY_PID" ||
			say "warning: vsync-relay did not stop"
	fi
	vs_servers_stop || say "warning: a server did not stop cleanly"
	rm -rf "$state"
	rmdir "$mnt" 2>/dev/null || true
}

die() {
	say "$*" >&2
	say "cleaning up" >&2
	stop_all
	exit 1
}

start() {
	if [[ -f "$state/env" ]]; then
		say "already running (state in $state); run: container/demo.sh stop"
		exit 1
	fi
	if [[ -e "$mnt" ]] && [[ -n "$(ls -A "$mnt" 2>/dev/null)" ]]; then
		say "$mnt exists and is not empty; move it away first" >&2
		exit 1
	fi

	# shellcheck source=tests/lib/build.sh
	. "$root/tests/lib/build.sh"
	vs_install_deps || {
		say "installing the dependencies failed" >&2
		exit 1
	}
	vs_build build || {
		say "the build failed" >&2
		exit 1
	}

	# shellcheck source=tests/lib/servers.sh
	. "$root/tests/lib/servers.sh"
	mkdir -p "$state"
	VS_KEEP_SERVERS=1 vs_servers_start all || die "starting PostgreSQL and Redis failed"
	{
		echo "# written by container/demo.sh; read by container/demo.sh stop"
		vs_servers_env
		printf 'export VS_DEMO_MNT=%q\n' "$mnt"
	} >"$state/env"

	local ctl=$root/build/agent/vsyncctl mount_bin=$root/build/agent/vsync-mount
	timeout 60 "$ctl" --pg "$VSYNC_PG_URL" init || die "vsyncctl init failed"
	timeout 120 "$ctl" --pg "$VSYNC_PG_URL" import "$project" "$root/container/example" ||
		die "vsyncctl import failed"

	# the relay signs what it puts in Redis with a key of its own; the
	# mount is given the public half and believes only signed data
	local verify_key
	rm -f "$state/relay.key"
	verify_key=$(timeout 30 "$ctl" keygen "$state/relay.key") || die "vsyncctl keygen failed"
	verify_key=${verify_key#VSYNC_VERIFY_KEY=}
	printf 'export VSYNC_VERIFY_KEY=%q\n' "$verify_key" >>"$state/env"

	# credentials of their own for the relay and for the container (the
	# admin's above stay with vsyncctl): docs/security.md
	timeout 30 "$ctl" --pg "$VSYNC_PG_URL" --redis "$VSYNC_REDIS_URL" grant --relay \
		>"$state/relay.env" || die "vsyncctl grant --relay failed"
	VSYNC_VERIFY_KEY=$verify_key timeout 30 "$ctl" --pg "$VSYNC_PG_URL" \
		--redis "$VSYNC_REDIS_URL" grant "$project" \
		>"$state/container.env" || die "vsyncctl grant $project failed"
	chmod 0600 "$state/relay.env" "$state/container.env"

	# the relay moves committed changes into Redis, where the mount
	# follows them
	(
		# shellcheck disable=SC1091
		. "$state/relay.env"
		exec "$root/build/agent/vsync-relay" --pg "$VSYNC_PG_URL" \
			--redis "$VSYNC_REDIS_URL" --sign-key "$state/relay.key" \
			>>"$state/relay.log" 2>&1 </dev/null
	) &
	printf 'export VS_DEMO_RELAY_PID=%q\n' "$!" >>"$state/env"

	mkdir -p "$mnt" "$state/cache"
	# Background mode: vsync-mount detaches once the mount is up. It has
	# the container's granted credentials (this project only) and the
	# relay's public key, from its environment, so they are not on its
	# command line.
	(
		# shellcheck disable=SC1091
		. "$state/container.env"
		export VSYNC_PG_URL VSYNC_REDIS_URL VSYNC_VERIFY_KEY
		timeout 30 "$mount_bin" "$project" "$mnt" --cache-dir "$state/cache" \
			--log-file "$state/mount.log"
	) || die "vsync-mount failed (see $state/mount.log)"
	vs_poll 10 vs_is_mounted "$mnt" || die "$mnt is not mounted after 10 s (see $state/mount.log)"

	cat <<EOF

vsync demo is running: project '$project' (from container/example) is mounted at ./mnt
  PostgreSQL: $VSYNC_PG_URL (the administrator's, for vsyncctl)
  Redis:      $VSYNC_REDIS_URL
  the mount and the relay run with credentials of their own:
  .demo/container.env (project '$project' only) and .demo/relay.env
  mount log:  .demo/mount.log      relay log: .demo/relay.log      cache: .demo/cache/

Look around:
  ls -la mnt mnt/src
  cat mnt/src/App.jsx

Edit a file (a new version in PostgreSQL; the mount shows it within
milliseconds, as if saved locally):
  source .demo/env        # sets VSYNC_PG_URL and VSYNC_REDIS_URL
  sed 's/Hello from a vsync mount/Edited through vsync/' mnt/src/App.jsx >/tmp/App.jsx
  build/agent/vsyncctl --pg "\$VSYNC_PG_URL" put example src/App.jsx /tmp/App.jsx
  build/agent/vsyncctl --pg "\$VSYNC_PG_URL" log example src/App.jsx

Edit inside the mount (saved as a new version, author container:<host>;
sync waits until PostgreSQL has it):
  echo '/* edited in the container */' >>mnt/src/main.jsx && sync mnt/src/main.jsx
  build/agent/vsyncctl --pg "\$VSYNC_PG_URL" log example src/main.jsx

Run the app on the mount (node_modules/ and dist/ stay local to this
machine; --no-package-lock keeps npm from committing a lock file):
  cd mnt && npm install --no-package-lock && PORT=5173 npm run dev

Stop everything (unmount, stop PostgreSQL and Redis, remove .demo/):
  container/demo.sh stop
EOF
}

case ${1:-start} in
start) start ;;
stop)
	if [[ ! -f "$state/env" ]] && ! grep -qF " $mnt " /proc/mounts; then
		say "nothing to stop"
		exit 0
	fi
	stop_all
	say "stopped"
	;;
*)
	echo "usage: $0 [start|stop]" >&2
	exit 2
	;;
esac
