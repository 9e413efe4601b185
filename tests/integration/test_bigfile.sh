#!/usr/bin/env bash
#
# test_bigfile.sh - a file far larger than one chunk (128 MiB; chunks are
# 8 MiB, include/vsync/pg.h VS_CHUNK_SIZE) round-trips byte-identical
# through PostgreSQL's chunks (sql/006_chunks.sql): import, a cold mount's
# first read, an edit saved with fsync(2), and a read back.
#
# Covers:
#   - `vsyncctl import` stores it as chunks (its row's encoding is
#     'chunks', 16 chunks whose sizes add up);
#   - `vsyncctl cat` streams it whole, chunk by chunk (its peak RSS under
#     96 MiB), and so does `vsyncctl export` into a file;
#   - `vsync-relay --once --sign-key` puts it in Redis as 1 MiB pieces
#     named by their own SHA-256, with a signed index; with PostgreSQL
#     stopped a verifying mount with an empty cache reads it from there
#     byte for byte, but not with the index's signature stripped, nor with
#     a piece changed (each piece is checked against the index);
#   - with PostgreSQL back, a mount with an empty cache dir reads it byte
#     for byte, chunk by chunk, and meanwhile a small file's first read
#     from PostgreSQL returns with the large one's backend stopped (not
#     held up behind it);
#   - 6 bytes overwritten in the middle with `dd conv=notrunc,fsync` on
#     the mount are in PostgreSQL when dd returns, as a new version stored
#     in chunks (one new chunk: the rest are shared with the first
#     version), equal to a local copy edited the same way; the relay reads
#     that one chunk from PostgreSQL and puts one new piece of it in
#     Redis (the rest are shared too: it cut them before), and a mount
#     that follows through Redis with the file local gets the new version
#     taking the unchanged pieces from its cache (one from Redis);
#   - a second cold mount reads the new version;
#   - a chunk whose bytes were changed in PostgreSQL is refused (EIO to
#     the reader, the log says which), never served.
#
# VS_BIGFILE_MIB overrides the size (default 128: 16 chunks, 128 pieces;
# the issue's figure was 300 MiB, but every path here is chunk by chunk,
# the same for 16 chunks as for 38, and the RSS bound of 96 MiB needs
# only a file larger than it: a cat or export holding the file whole
# peaked at twice its size, docs/benchmarks.md). The RSS checks are made
# from 128 MiB up.
# Needs /dev/fuse (else exit 77), PostgreSQL and Redis (started here).
set -u

# shellcheck source=tests/lib/servers.sh
. "$(dirname "$0")/../lib/servers.sh"

vs_need_fuse
CTL=$VSYNC_BUILD_DIR/agent/vsyncctl
RELAY=$VSYNC_BUILD_DIR/agent/vsync-relay
MIB=${VS_BIGFILE_MIB:-128}
vs_deadline 900
vs_servers_start all || exit 1
export VS_LOG_DIR=$VS_SERVERS_DIR
W=$VS_SERVERS_DIR/work

mkdir -p "$W/src/assets" "$W/local"
printf 'export const x = 1;\n' >"$W/src/index.js"
mkdir -p "$W/src/docs"
printf 'not critical\n' >"$W/src/docs/notes.txt"
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
	"$(vs_sql "SELECT count(*), sum(octet_length(k.data))
		    FROM vsync_content_chunks c JOIN vsync_chunks k USING (project_id, sha)
		    WHERE c.project_id = '$ID' AND c.content_hash = '$want'")"
# streamed chunk by chunk: its peak RSS stays far below the file (GNU
# time's %M, KiB; ASan's quarantine of freed chunks kept small)
vs_check_eq "vsyncctl cat returns it whole" "$want" \
	"$(ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8 \
		/usr/bin/time -f %M -o "$W/cat.rss" "$CTL" cat big assets/big.bin |
		sha256sum | cut -d' ' -f1)"
rss=$(tail -n 1 "$W/cat.rss")
if ((MIB >= 128)); then
	vs_check "without holding it in memory (peak RSS $((rss / 1024)) MiB, under 96)" \
		test "$rss" -lt $((96 << 10))
fi
vs_check "vsyncctl export of the project" env \
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8 \
	/usr/bin/time -f %M -o "$W/export.rss" "$CTL" -q export big "$W/export"
vs_check_eq "writes it byte for byte" "$want" \
	"$(sha256sum <"$W/export/assets/big.bin" | cut -d' ' -f1)"
vs_check_eq "with its small files" "not critical" "$(cat "$W/export/docs/notes.txt")"
rss=$(tail -n 1 "$W/export.rss")
if ((MIB >= 128)); then
	vs_check "chunk by chunk (peak RSS $((rss / 1024)) MiB, under 96)" \
		test "$rss" -lt $((96 << 10))
fi
rm -rf "$W/export"

# ---------------------------------------------------------------- Redis
VERIFY=$("$CTL" keygen "$W/relay.key")
VERIFY=${VERIFY#VSYNC_VERIFY_KEY=}
vs_check "relay --once --sign-key puts it in Redis" "$RELAY" --once --sign-key "$W/relay.key"
IDX=$(vs_redis_cli GET "chunks:{$ID}:$want")
# in Redis the pieces are of 1 MiB (VS_REDIS_CHUNK_SIZE)
vs_check "its chunk index is signed, one SHA-256 a 1 MiB piece" \
	test "${IDX:0:5}" = "sig1:" -a "${#IDX}" -eq $((5 + 88 + 1 + MIB * 64))
# piece i is piece:{id}:<its SHA-256>, the i-th of the index's list
piece_key() { echo "piece:{$ID}:${IDX:$((94 + $1 * 64)):64}"; }
pieces() { vs_redis_cli --scan --pattern "piece:{$ID}:*" | wc -l; }
vs_check_eq "its last piece is in Redis, 1 MiB (raw: random bytes do not shrink)" 1048577 \
	"$(vs_redis_cli STRLEN "$(piece_key $((MIB - 1)))")"
vs_check_eq "$MIB pieces in all" "$MIB" "$(pieces)"
vs_check "PostgreSQL stopped" vs_pg_stop
mkdir -p "$W/r1"
if vs_mount big "$W/r1" --pg "$VSYNC_PG_URL" --redis "$VSYNC_REDIS_URL" \
	--verify-key "$VERIFY" --cache-dir "$W/rc1" --prefetch 0; then
	t0=$(vs_now_ms)
	got=$(sha256sum <"$W/r1/assets/big.bin" | cut -d' ' -f1)
	ms=$(($(vs_now_ms) - t0))
	vs_check_eq "with PostgreSQL stopped, a cold mount reads it from Redis's chunks ($ms ms, $((MIB * 1000 / (ms ? ms : 1))) MiB/s)" \
		"$want" "$got"
	vs_umount "$W/r1"
else
	vs_fail "mount from Redis: expected it mounted, saw it exit"
fi
# an index not signed by the relay: refused, and with PostgreSQL stopped
# the read fails rather than serve what it cannot verify
vs_redis_cli SET "chunks:{$ID}:$want" "${IDX:94}" >/dev/null
mkdir -p "$W/r2"
if vs_mount big "$W/r2" --pg "$VSYNC_PG_URL" --redis "$VSYNC_REDIS_URL" \
	--verify-key "$VERIFY" --cache-dir "$W/rc2" --prefetch 0; then
	vs_check "an unsigned chunk index is not believed (EIO with PostgreSQL stopped)" \
		sh -c '! cat "$1" >/dev/null 2>&1' _ "$W/r2/assets/big.bin"
	vs_check "the log says why" grep -q "refusing the chunk index of 'assets/big.bin'" "$VS_MOUNT_LOG"
	vs_umount "$W/r2"
else
	vs_fail "mount from Redis: expected it mounted, saw it exit"
fi
vs_redis_cli SET "chunks:{$ID}:$want" "$IDX" >/dev/null
# a piece whose bytes are not the ones the signed index names: refused
{ printf r; head -c 1048576 /dev/zero; } >"$W/zeros.piece"
vs_redis_cli -x SET "$(piece_key 5)" <"$W/zeros.piece" >/dev/null
mkdir -p "$W/r3"
if vs_mount big "$W/r3" --pg "$VSYNC_PG_URL" --redis "$VSYNC_REDIS_URL" \
	--verify-key "$VERIFY" --cache-dir "$W/rc3" --prefetch 0; then
	vs_check "a piece that does not match the index is not served (EIO with PostgreSQL stopped)" \
		sh -c '! cat "$1" >/dev/null 2>&1' _ "$W/r3/assets/big.bin"
	vs_check "the log says which piece" grep -q "refusing chunk 5 of 'assets/big.bin'" "$VS_MOUNT_LOG"
	vs_umount "$W/r3"
else
	vs_fail "mount from Redis: expected it mounted, saw it exit"
fi
vs_redis_cli DEL "$(piece_key 5)" >/dev/null
vs_check "PostgreSQL started again" vs_pg_start_again
# the mounts below read PostgreSQL alone (but the follower)
unset VSYNC_REDIS_URL

# ---------------------------------------------------------------- follower
# a mount that follows the project through Redis (a relay runs from here
# on), with the file local before the edit below
REDIS_URL=redis://127.0.0.1:$VS_REDIS_PORT
FOLLOW=
if VSYNC_REDIS_URL=$REDIS_URL vs_relay_start --sign-key "$W/relay.key"; then
	mkdir -p "$W/f1"
	if vs_mount big "$W/f1" --pg "$VSYNC_PG_URL" --redis "$REDIS_URL" \
		--verify-key "$VERIFY" --cache-dir "$W/fc1" --prefetch 0; then
		FOLLOW=$VS_MOUNT_LOG
		vs_check_eq "a mount following through Redis has it local" "$want" \
			"$(sha256sum <"$W/f1/assets/big.bin" | cut -d' ' -f1)"
	else
		vs_fail "following mount: expected it mounted, saw it exit"
	fi
else
	vs_fail "relay: expected it running, saw it exit"
fi
redis_in() { vs_redis_cli INFO stats | tr -d '\r' | awk -F: '$1 == "total_net_input_bytes" { print $2 }'; }

# ---------------------------------------------------------------- cold read
mkdir -p "$W/m1"
if vs_mount big "$W/m1" --pg "$VSYNC_PG_URL" --cache-dir "$W/c1" --prefetch 0; then
	t0=$(vs_now_ms)
	sha256sum <"$W/m1/assets/big.bin" >"$W/m1.sum" &
	bigpid=$!
	vs_on_exit kill "$bigpid"
	# while it is being fetched, a small file's first read, also from
	# PostgreSQL, is not held up behind it (the large fetch has a
	# connection of its own): the backend sending the chunks is stopped
	# (SIGSTOP) meanwhile, so the large read cannot end first
	chunk_backend() {
		vs_sql "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND state = 'active' AND query LIKE '%vsync_chunk(%' LIMIT 1"
	}
	has_chunk_backend() { [[ -n $(chunk_backend) ]]; }
	bpid=
	vs_poll 60 has_chunk_backend && bpid=$(chunk_backend)
	if [[ $bpid =~ ^[0-9]+$ ]] && kill -STOP "$bpid"; then
		vs_on_exit kill -CONT "$bpid"
		vs_check_eq "a small file's first read while the large one's backend is stopped" \
			"not critical" "$(timeout -k 1 5 cat "$W/m1/docs/notes.txt")"
		kill -CONT "$bpid"
	else
		vs_fail "no backend sending the chunks seen (pg_stat_activity)"
	fi
	wait "$bigpid"
	got=$(cut -d' ' -f1 <"$W/m1.sum")
	ms=$(($(vs_now_ms) - t0))
	vs_check_eq "a cold mount reads it byte for byte ($ms ms, $((MIB * 1000 / (ms ? ms : 1))) MiB/s)" \
		"$want" "$got"

	# ------------------------------------------------------------ edit
	printf 'EDITED' | dd of="$W/local/big.bin" bs=1 seek=$((MIB << 19)) \
		conv=notrunc status=none
	# the index of the last chunk (neither the edited one nor chunk 0)
	# altered in Redis: its signature no longer matches, so the relay
	# must read that chunk again rather than believe the list
	nchunks=$(((MIB + 7) / 8)) last_key= last_idx=
	if ((nchunks - 1 != 0 && nchunks - 1 != MIB / 16)); then
		last_key="chunks:{$ID}:$(vs_sql "SELECT sha FROM vsync_content_chunks
			WHERE project_id = '$ID' AND content_hash = '$want' AND idx = $((nchunks - 1))")"
		last_idx=$(vs_redis_cli GET "$last_key")
		vs_check "the last chunk's own index is in Redis, signed" test "${last_idx:0:5}" = "sig1:"
		# its first piece named as its second: the list no longer
		# has the signed digest
		vs_redis_cli SET "$last_key" "${last_idx:0:94}${last_idx:158:64}${last_idx:158}" >/dev/null
	fi
	stored=$(vs_sql "SELECT count(*) FROM vsync_chunks WHERE project_id = '$ID'")
	in0=$(redis_in)
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
	vs_check_eq "the edit stored one new chunk (the versions share the rest)" \
		$((stored + 1)) \
		"$(vs_sql "SELECT count(*) FROM vsync_chunks WHERE project_id = '$ID'")"
	# in Redis too: the pieces are named by their own hash, and the
	# follower takes those it has from its cache
	if [[ -n $FOLLOW ]]; then
		f1_has() { [[ "$(sha256sum <"$W/f1/assets/big.bin" | cut -d' ' -f1)" == "$1" ]]; }
		vs_check "the following mount gets the new version" vs_poll 120 f1_has "$want2"
		in1=$(redis_in)
		vs_check "with its signed index in Redis" test -n "$(vs_redis_cli GET "chunks:{$ID}:$want2")"
		vs_check_eq "and one new piece (the 6 bytes' own: the rest are shared)" \
			$((MIB + 1)) "$(pieces)"
		vs_check "the relay sent Redis one piece or two, not the file ($(((in1 - in0) >> 10)) KiB, under 4 MiB)" \
			test $((in1 - in0)) -lt $((4 << 20))
		# chunk 0 is read again too: its piece 5 was removed above;
		# and the last, whose index was altered
		nread=$((MIB / 16 == 0 ? 1 : 2))
		[[ -n $last_key ]] && nread=$((nread + 1))
		vs_check "the relay read from PostgreSQL the changed chunk, the one missing a piece and the one whose index was altered ($nread of $nchunks)" \
			grep -q "'assets/big.bin': $nread of $nchunks chunks read from PostgreSQL" "$VS_RELAY_LOG"
		if [[ -n $last_key ]]; then
			vs_check_eq "the altered index is put again, signed" "$last_idx" \
				"$(vs_redis_cli GET "$last_key")"
		fi
		line=$(grep "'assets/big.bin': .* pieces taken from the previous version" "$FOLLOW" | tail -n 1)
		vs_log "follower: ${line##*msg=}"
		from_redis=$(sed -n 's/.*version, \([0-9]*\) bytes from Redis.*/\1/p' <<<"$line")
		vs_check "the follower took the unchanged pieces from its cache, one from Redis (${from_redis:-?} bytes)" \
			test -n "$from_redis" -a "${from_redis:-0}" -le $((2 << 20))
		vs_umount "$W/f1"
	fi
	vs_relay_stop
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
	 WHERE project_id = '$ID' AND sha = (SELECT sha FROM vsync_content_chunks
	     WHERE project_id = '$ID' AND content_hash = '$want2' AND idx = 1)" >/dev/null
mkdir -p "$W/m3"
if vs_mount big "$W/m3" --pg "$VSYNC_PG_URL" --cache-dir "$W/c3" --prefetch 0; then
	if cat "$W/m3/assets/big.bin" >/dev/null 2>"$W/cat.err"; then
		vs_fail "a corrupt chunk: expected the read refused, saw it served"
	else
		vs_check "a corrupt chunk is refused with EIO" grep -q "Input/output error" "$W/cat.err"
	fi
	vs_check "the log says which chunk" grep -q "chunk 1 of content ${want2:0:12} is corrupt" "$VS_MOUNT_LOG"
	vs_check "the cache holds nothing of it" \
		test ! -e "$W/c3/objects/${want2:0:2}/$want2"
	vs_umount "$W/m3"
else
	vs_fail "third mount: expected it mounted, saw it exit"
fi

vs_summary
