#!/usr/bin/env bash
#
# test_bigfile.sh - a file far larger than one chunk (300 MiB; chunks are
# 8 MiB, include/vsync/pg.h VS_CHUNK_SIZE) round-trips byte-identical
# through PostgreSQL's chunks (sql/006_chunks.sql): import, a cold mount's
# first read, an edit saved with fsync(2), and a read back.
#
# Covers: `vsyncctl import` stores it as chunks (its row's encoding is
# 'chunks', 38 rows in vsync_chunks whose sizes add up); `vsyncctl cat`
# (vsync_read_file) still returns it whole; a mount with an empty cache
# dir reads it byte for byte, chunk by chunk; 6 bytes overwritten in the
# middle with `dd conv=notrunc,fsync` on the mount are in PostgreSQL when
# dd returns, as a new version stored in chunks, equal to a local copy
# edited the same way; a second cold mount reads the new version; a chunk
# whose bytes were changed in PostgreSQL is refused (EIO to the reader,
# the log says why), never served.
#
# VS_BIGFILE_MIB overrides the size (default 300, the issue's figure).
# Needs /dev/fuse (else exit 77) and PostgreSQL (started here).
set -u

# shellcheck source=tests/lib/servers.sh
. "$(dirname "$0")/../lib/servers.sh"

vs_need_fuse
CTL=$VSYNC_BUILD_DIR/agent/vsyncctl
MIB=${VS_BIGFILE_MIB:-300}
vs_deadline 900
vs_pg_fixture || exit 1

mkdir -p "$W/src/assets" "$W/local"
printf 'export const x = 1;\n' >"$W/src/index.js"
# random bytes: nothing for PostgreSQL or lz4 to compress
head -c $((MIB << 20)) /dev/urandom >"$W/src/assets/big.bin"
cp "$W/src/assets/big.bin" "$W/local/big.bin"
want=$(sha256sum <"$W/src/assets/big.bin" | cut -d' ' -f1)
nchunks=$(((MIB * 1048576 + 8388607) / 8388608))

vs_check "vsyncctl init" "$CTL" -q init
t0=$(vs_now_ms)
vs_check "import of a $MIB MiB file" "$CTL" -q import big "$W/src"
vs_log "import took $(($(vs_now_ms) - t0)) ms"
ID=$(vs_sql "SELECT vsync_project_id('big')")
vs_check_eq "its row is stored in chunks" "chunks|$want" \
	"$(vs_sql "SELECT encoding, content_hash FROM project_files
		    WHERE project_id = '$ID' AND file_path = 'assets/big.bin'
		      AND is_current")"
vs_check_eq "$nchunks chunks of it, $MIB MiB in all" "$nchunks|$((MIB << 20))" \
	"$(vs_sql "SELECT count(*), sum(octet_length(data)) FROM vsync_chunks
		    WHERE project_id = '$ID' AND content_hash = '$want'")"
vs_check_eq "vsyncctl cat returns it whole" "$want" \
	"$("$CTL" cat big assets/big.bin | sha256sum | cut -d' ' -f1)"

# ---------------------------------------------------------------- cold read
mkdir -p "$W/m1"
if vs_mount big "$W/m1" --pg "$VSYNC_PG_URL" --cache-dir "$W/c1" --prefetch 0; then
	t0=$(vs_now_ms)
	got=$(sha256sum <"$W/m1/assets/big.bin" | cut -d' ' -f1)
	ms=$(($(vs_now_ms) - t0))
	vs_check_eq "a cold mount reads it byte for byte ($ms ms, $((MIB * 1000 / (ms ? ms : 1))) MiB/s)" \
		"$want" "$got"

	# ------------------------------------------------------------ edit
	printf 'EDITED' | dd of="$W/local/big.bin" bs=1 seek=$((MIB << 19)) \
		conv=notrunc status=none
	vs_check "6 bytes overwritten in the middle, dd conv=notrunc,fsync" \
		sh -c 'printf EDITED | dd of="$1" bs=1 seek="$2" conv=notrunc,fsync status=none' \
		_ "$W/m1/assets/big.bin" $((MIB << 19))
	want2=$(sha256sum <"$W/local/big.bin" | cut -d' ' -f1)
	vs_check_eq "PostgreSQL has the new version when fsync returns, in chunks" \
		"2|chunks|$want2" \
		"$(vs_sql "SELECT version, encoding, content_hash FROM project_files
			    WHERE project_id = '$ID' AND file_path = 'assets/big.bin'
			      AND is_current")"
	vs_check_eq "its bytes are the local copy's" "$want2" \
		"$("$CTL" cat big assets/big.bin | sha256sum | cut -d' ' -f1)"
	vs_umount "$W/m1"
else
	vs_fail "mount: expected it mounted, saw it exit"
	want2=none
fi

mkdir -p "$W/m2"
if vs_mount big "$W/m2" --pg "$VSYNC_PG_URL" --cache-dir "$W/c2" --prefetch 0; then
	vs_check_eq "a second cold mount reads the new version" "$want2" \
		"$(sha256sum <"$W/m2/assets/big.bin" | cut -d' ' -f1)"
	vs_umount "$W/m2"
else
	vs_fail "second mount: expected it mounted, saw it exit"
fi

# ---------------------------------------------------------------- corrupt
vs_sql "UPDATE vsync_chunks SET data = overlay(data placing '\\x00ff'::bytea from 100)
	 WHERE project_id = '$ID' AND content_hash = '$want2' AND idx = 1" >/dev/null
mkdir -p "$W/m3"
if vs_mount big "$W/m3" --pg "$VSYNC_PG_URL" --cache-dir "$W/c3" --prefetch 0; then
	if cat "$W/m3/assets/big.bin" >/dev/null 2>"$W/cat.err"; then
		vs_fail "a corrupt chunk: expected the read refused, saw it served"
	else
		vs_check "a corrupt chunk is refused with EIO" grep -q "Input/output error" "$W/cat.err"
	fi
	vs_check "the log says why" grep -q "chunks do not make up checksum $want2" "$VS_MOUNT_LOG"
	vs_check "the cache holds nothing of it" \
		test ! -e "$W/c3/objects/${want2:0:2}/$want2"
	vs_umount "$W/m3"
else
	vs_fail "third mount: expected it mounted, saw it exit"
fi

vs_summary
