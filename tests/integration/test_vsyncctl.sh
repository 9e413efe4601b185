#!/usr/bin/env bash
#
# test_vsyncctl.sh - vsyncctl and the SQL functions of sql/ against a
# throwaway PostgreSQL (no FUSE, no Redis needed).
#
# Covers: init (twice, and concurrently), import of a tree with binary,
# empty, Unicode-named, symlinked, executable files, an empty dir and
# excluded dirs; export and diff -r; a bulk import of a few thousand
# files at the default deadline, recorded as the per-file path would; binary put/cat round trips (also 50 MB);
# conflicts (--base), invalid paths, unknown projects, idempotent retries
# (--op-id), rm, mv of a directory, rollback, log; the exit statuses; the
# change sequence being gap-free; deadlines (a blocked call times out);
# a writer's special mode bits not exported; a writer's author and
# symlink target printed with control characters escaped.
#
# Needs: $VSYNC_BUILD_DIR/agent/vsyncctl (ctest sets VSYNC_BUILD_DIR).
set -u

# every command of vsyncctl runs here: in the ASan build, with its leaks
# checked at exit (servers.sh turns that off elsewhere)
VS_CTL_LEAKS=1
# shellcheck source=tests/lib/servers.sh
. "$(dirname "$0")/../lib/servers.sh"

CTL=$VSYNC_BUILD_DIR/agent/vsyncctl
if [[ ! -x "$CTL" ]]; then
	echo "test_vsyncctl: $CTL is missing (build the vsyncctl target first)" >&2
	exit 1
fi

vs_deadline 300
vs_servers_start pg || exit 1
PSQL=$VS_PG_BIN/psql
W=$VS_SERVERS_DIR/work
mkdir -p "$W"

ctl() {
	"$CTL" "$@"
}

# expect_exit DESC STATUS CMD...: CMD must exit with STATUS.
expect_exit() {
	local desc=$1 want=$2 rc=0 out
	shift 2
	out=$("$@" 2>&1 </dev/null) || rc=$?
	if ((rc == want)); then
		vs_pass "$desc"
	else
		vs_fail "$desc: expected exit $want, saw $rc: $(head -n 3 <<<"$out")"
	fi
}

sql() {
	"$PSQL" -X -At -v ON_ERROR_STOP=1 "$VSYNC_PG_URL" -c "$1"
}

# ---------------------------------------------------------------- init

vs_check "init creates the schema" ctl init
out=$(ctl init 2>&1)
vs_check_eq "second init applies nothing" \
	"schema up to date (0 migrations applied, functions.sql applied)" "$out"
pids=()
for i in 1 2 3; do
	ctl -q init --reapply >"$W/init.$i.log" 2>&1 &
	pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
vs_check_eq "three concurrent init --reapply succeed" 0 "$rc"
expected_migrations=$(cd "$VS_REPO_ROOT/sql" && ls [0-9][0-9][0-9]_*.sql | paste -sd, -)
vs_check_eq "migrations recorded" "$expected_migrations" \
	"$(sql "select string_agg(name, ',' order by name) from vsync_schema_migrations")"

# ---------------------------------------------------------------- import

SRC=$W/src
mkdir -p "$SRC/src/components" "$SRC/empty-dir" "$SRC/node_modules/react" \
	"$SRC/.git" "$SRC/public"
# a real PNG header, NULs and bytes that are not UTF-8
printf '\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\xff\xfe\x00' \
	>"$SRC/public/logo.png"
: >"$SRC/empty.txt"
printf 'export const h = "héllo ✓";\n' >"$SRC/src/components/Ünïcödé ✓.tsx"
printf '{"name":"demo"}\n' >"$SRC/package.json"
printf '#!/bin/sh\necho run\n' >"$SRC/run.sh"
chmod 0755 "$SRC/run.sh"
ln -s public/logo.png "$SRC/logo-link"
printf 'module.exports = 1;\n' >"$SRC/node_modules/react/index.js"
printf 'ref: refs/heads/main\n' >"$SRC/.git/HEAD"

out=$(ctl import demo "$SRC" 2>&1)
rc=$?
vs_check_eq "import exits 0" 0 "$rc"
case $out in
*"into 'demo'"*) vs_pass "import prints a summary" ;;
*) vs_fail "import prints a summary: saw '$out'" ;;
esac
vs_check_eq "node_modules and .git are not imported" "" \
	"$(ctl ls demo | grep -E 'node_modules|\.git')"
vs_check_eq "empty dir imported" "dir 0755 empty-dir" \
	"$(ctl ls demo empty-dir | awk '{print $1, $2, $5}')"
vs_check_eq "exec file imported as 0755" "0755" \
	"$(ctl ls demo run.sh | awk '{print $2}')"
vs_check_eq "plain file imported as 0644" "0644" \
	"$(ctl ls demo package.json | awk '{print $2}')"
vs_check_eq "symlink imported as a symlink" "symlink logo-link -> public/logo.png" \
	"$(ctl ls demo logo-link | awk '{print $1, $5, $6, $7}')"
seq1=$(ctl status demo | awk '$1 == "seq" {print $2}')
out=$(ctl import demo "$SRC" 2>&1)
seq2=$(ctl status demo | awk '$1 == "seq" {print $2}')
vs_check_eq "re-importing an unchanged tree changes nothing" "$seq1" "$seq2"

# ---------------------------------------------------------------- export

OUT=$W/out
vs_check "export" ctl export demo "$OUT"
vs_check "export equals the source (except excluded)" \
	diff -r --no-dereference --exclude=node_modules --exclude=.git "$SRC" "$OUT"
vs_check_eq "exported exec bit" "755" "$(stat -c %a "$OUT/run.sh")"
vs_check_eq "exported symlink" "public/logo.png" "$(readlink "$OUT/logo-link")"
vs_check "PNG byte-exact" cmp "$SRC/public/logo.png" "$OUT/public/logo.png"
expect_exit "export into a non-empty dir refused" 6 ctl export demo "$OUT"

# a writer chooses the modes it stores (0..07777): the export applies the
# permission bits only, never setuid, setgid or sticky (an export as root
# would otherwise recreate a container's setuid binary)
SP=$(sql "select vsync_project_id('demo')")
sql "select seq from vsync_write_file('$SP', 'special/suid', convert_to('x', 'UTF8'),
	2541, NULL, NULL, 'evil')" >/dev/null # 04755
sql "select seq from vsync_mkdir('$SP', 'special/sgid', 1533, NULL, 'evil')" >/dev/null # 02775
sql "select seq from vsync_mkdir('$SP', 'special/sticky', 1023, NULL, 'evil')" >/dev/null # 01777
vs_check "export of special modes" ctl -q export demo "$W/out-special"
vs_check_eq "an exported file has no setuid bit" "755" \
	"$(stat -c %a "$W/out-special/special/suid")"
vs_check_eq "an exported dir has no setgid bit" "775" \
	"$(stat -c %a "$W/out-special/special/sgid")"
vs_check_eq "an exported dir has no sticky bit" "777" \
	"$(stat -c %a "$W/out-special/special/sticky")"
ctl -q rm -r demo special
rm -rf "$W/out-special"

# ---------------------------------------------------------------- bulk import

# a few thousand files in batches, at the default deadline: the tree in
# PostgreSQL equals the source, one change per entry, as the per-file
# path records them
BULK=$W/bulk
"$VS_REPO_ROOT/tests/integration/gen_tree.sh" -n 3000 -b 2 "$BULK" >/dev/null
nbulk=$(cd "$BULK" && find . -mindepth 1 \( -name node_modules -o -name .git \) -prune -o -print | wc -l)
out=$(ctl import bulk "$BULK" 2>&1)
rc=$?
vs_check_eq "import of $nbulk entries at the default timeout exits 0" 0 "$rc"
vs_check "export of the bulk project" ctl export bulk "$W/bulk.out"
vs_check "bulk export equals the source (except excluded)" \
	diff -r --no-dereference --exclude=node_modules --exclude=.git "$BULK" "$W/bulk.out"
vs_check_eq "one change per imported entry" "$nbulk $nbulk $nbulk" \
	"$(sql "select p.change_seq, count(distinct o.seq), count(distinct f.seq)
		  from projects p join file_operations o on o.project_id = p.id
		  join project_files f on f.project_id = p.id and f.seq = o.seq
		 where p.name = 'bulk' group by p.change_seq" | tr '|' ' ')"
vs_check_eq "each change's row matches its file_operations row" "0" \
	"$(sql "select count(*) from file_operations o
		  join project_files f on f.id = o.file_id
		 where o.project_id = (select id from projects where name = 'bulk')
		   and (f.seq <> o.seq or f.file_path <> o.path
			or (o.operation_data->>'version')::int <> f.version
			or o.operation_data->>'checksum' is distinct from f.content_hash
			or o.operation_type <> case f.kind when 'dir' then 'mkdir' else 'create' end)")"
vs_check_eq "versions are created in seq order" "0" \
	"$(sql "select count(*) from (select created_at, lag(created_at) over (order by seq) prev
		  from project_files where project_id = (select id from projects where name = 'bulk')) x
		 where created_at < prev")"
printf 'changed\n' >>"$BULK/package.json"
out=$(ctl import bulk "$BULK" 2>&1)
vs_check_eq "re-import after one edit makes one update" \
	"update 2" "$(sql "select o.operation_type, o.operation_data->>'version'
		  from file_operations o join projects p on p.id = o.project_id
		 where p.name = 'bulk' and o.seq = p.change_seq" | tr '|' ' ')"
mkdir -p "$W/clash/package.json"
seq1=$(ctl status bulk | awk '$1 == "seq" {print $2}')
expect_exit "import of a dir over a file is a conflict" 4 ctl import bulk "$W/clash"
vs_check_eq "the refused import changed nothing" "$seq1" \
	"$(ctl status bulk | awk '$1 == "seq" {print $2}')"
rm -rf "$BULK" "$W/bulk.out" "$W/clash"

# ---------------------------------------------------------------- put / cat

head -c 200000 /dev/urandom >"$W/rand.bin"
vs_check "put binary" ctl put demo assets/rand.bin "$W/rand.bin"
ctl cat demo assets/rand.bin >"$W/rand.out"
vs_check "cat binary round-trips" cmp "$W/rand.bin" "$W/rand.out"
printf 'a\0b\xff' | ctl -q put demo nul.bin
vs_check_eq "put from stdin with NUL" "610062ff" \
	"$(ctl cat demo nul.bin | od -An -tx1 | tr -d ' \n')"
head -c 50000000 /dev/urandom >"$W/big.bin"
vs_check "put 50 MB" ctl --timeout 60000 put demo big.bin "$W/big.bin"
ctl --timeout 60000 cat demo big.bin >"$W/big.out"
vs_check "cat 50 MB byte-exact" cmp "$W/big.bin" "$W/big.out"
rm -f "$W/big.bin" "$W/big.out"

# ---------------------------------------------------------------- conflicts

printf 'v1\n' | ctl -q put demo src/a.js
printf 'v2\n' | ctl -q put demo src/a.js --base 1
expect_exit "put with stale --base is a conflict" 4 \
	sh -c "printf 'v3\n' | '$CTL' put demo src/a.js --base 1"
out=$(printf 'v3\n' | ctl put demo src/a.js --base 1 2>&1)
vs_check_eq "conflict message" \
	"vsyncctl: conflict: 'src/a.js' is at version 2, not 1" "$out"
expect_exit "--base 0 on an existing file is a conflict" 4 \
	sh -c "printf x | '$CTL' put demo src/a.js --base 0"
expect_exit "mkdir of an existing path is a conflict" 4 ctl mkdir demo src

# ---------------------------------------------------------------- invalid / missing

expect_exit "invalid path ../x" 6 ctl put demo ../x /dev/null
out=$(ctl put demo ../x /dev/null 2>&1)
vs_check_eq "invalid path message" "vsyncctl: invalid path '../x'" "$out"
expect_exit "absolute path" 6 ctl put demo /etc/passwd /dev/null
expect_exit "empty component" 6 ctl put demo a//b /dev/null
expect_exit "control character (checked by SQL)" 6 \
	ctl put demo "$(printf 'a\tb')" /dev/null
expect_exit "name over 255 bytes" 6 ctl put demo "$(printf 'x%.0s' {1..256})" /dev/null
expect_exit "invalid --op-id" 6 ctl --op-id nope put demo x /dev/null
expect_exit "unknown project" 3 ctl cat nosuch a.js
out=$(ctl cat nosuch a.js 2>&1)
vs_check_eq "unknown project message" "vsyncctl: unknown project 'nosuch'" "$out"
expect_exit "missing path" 3 ctl cat demo no/such.js
expect_exit "usage error" 2 ctl put demo
expect_exit "unknown command" 2 ctl frobnicate
expect_exit "backend unreachable" 5 \
	ctl --pg "host=$W/nowhere user=postgres" status demo

# ---------------------------------------------------------------- retries

op=6f9d2c3e-8a41-4b7e-9c55-0d1e2f3a4b5c
printf 'retry\n' | ctl -q --op-id "$op" put demo retry.txt
printf 'retry\n' | ctl -q --op-id "$op" put demo retry.txt
rc=$?
vs_check_eq "retry with the same --op-id succeeds" 0 "$rc"
vs_check_eq "retry does not create a new version" 1 \
	"$(ctl log demo retry.txt | wc -l)"
seqa=$(ctl status demo | awk '$1 == "seq" {print $2}')
expect_exit "the same --op-id with other content is a conflict" 4 \
	ctl -q --op-id "$op" put demo retry.txt /dev/null
seqb=$(ctl status demo | awk '$1 == "seq" {print $2}')
vs_check_eq "a retry with other content changes nothing" "$seqa" "$seqb"

# ---------------------------------------------------------------- rm / mv / rollback / log

vs_check "rm a file" ctl rm demo empty.txt
expect_exit "cat of a removed file" 3 ctl cat demo empty.txt
expect_exit "rm of a missing path" 3 ctl rm demo empty.txt
expect_exit "rm of a non-empty dir without -r" 1 ctl rm demo public
vs_check "rollback to version 1" ctl rollback demo src/a.js 1
vs_check_eq "rollback content" "v1" "$(ctl cat demo src/a.js)"
vs_check_eq "cat --version 2" "v2" "$(ctl cat demo src/a.js --version 2)"
vs_check_eq "log shows three versions" "v1 v2 v3" \
	"$(ctl log demo src/a.js | awk '{print $1}' | xargs)"
vs_check "mv a directory" ctl mv demo src lib
vs_check_eq "the subtree moved" "v1" "$(ctl cat demo lib/a.js)"
vs_check_eq "the Unicode file moved with it" "1" \
	"$(ctl ls demo lib | grep -c 'Ünïcödé ✓.tsx')"
expect_exit "old directory is gone" 3 ctl ls demo src
vs_check_eq "old path's history ends in a deletion" "v4" \
	"$(ctl log demo src/a.js | grep '(deleted)' | awk '{print $1}')"
expect_exit "moving a dir into itself" 6 ctl mv demo lib lib/x
expect_exit "moving a dir over a file" 4 ctl mv demo lib package.json
vs_check "mv a file over a file replaces it" ctl mv demo run.sh package.json
vs_check_eq "replaced content and mode" "0755" \
	"$(ctl ls demo package.json | awk '{print $2}')"
vs_check "rm -r a directory" ctl rm -r demo lib
vs_check_eq "log marks the deletion" "1" \
	"$(ctl log demo lib/a.js | grep -c '(deleted)')"
printf 'again\n' | ctl -q put demo lib/a.js
vs_check_eq "a re-created file continues the numbering" "v3" \
	"$(ctl ls demo lib/a.js | awk '{print $4}')"
vs_check_eq "project log lists recent operations" "5" \
	"$(ctl log -n 5 demo | grep -c '^seq ')"

# the author and a symlink's target are the writer's text: printed with
# control characters escaped (ESC, CR, C1 CSI), never raw to a terminal
SP=$(sql "select vsync_project_id('demo')")
sql "select seq from vsync_write_file('$SP', 'esc.txt', convert_to('x', 'UTF8'),
	NULL, NULL, NULL, E'\\r\\x1b[2K\\x1b[1Aeve\\u009b2J')" >/dev/null
sql "select seq from vsync_write_file('$SP', 'esc-link', convert_to(E'a\\x1b]0;t\\x07b', 'UTF8'),
	NULL, NULL, NULL, 'test', 'symlink')" >/dev/null
want='\x0d\x1b[2K\x1b[1Aeve\xc2\x9b2J'
vs_check_eq "log PATH prints the author escaped" "$want" \
	"$(ctl log demo esc.txt | awk '{print $2}')"
vs_check_eq "log -n prints the author escaped" "$want" \
	"$(ctl log -n 2 demo | grep ' esc.txt$' | awk '{print $5}')"
vs_check_eq "ls prints a symlink's target escaped" 'a\x1b]0;t\x07b' \
	"$(ctl ls demo esc-link | awk '{print $7}')"
vs_check "no control character reaches the output" sh -c \
	'! { "$1" log -n 3 demo; "$1" log demo esc.txt; "$1" ls demo esc-link; } | LC_ALL=C grep -q "[[:cntrl:]]"' _ "$CTL"
ctl -q rm demo esc.txt
ctl -q rm demo esc-link

# ---------------------------------------------------------------- invariants

# concurrent writers of one project: every change gets its own seq
pids=()
for i in 1 2 3 4; do
	(for j in 1 2 3 4 5 6 7 8; do
		printf '%s %s\n' "$i" "$j" | ctl -q put demo "race/f$((j % 3))" || exit 1
	done) &
	pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
vs_check_eq "32 concurrent writes succeed" 0 "$rc"
vs_check_eq "32 concurrent writes make 32 versions" 32 \
	"$(sql "select count(*) from project_files where file_path like 'race/f_'")"

vs_check_eq "change seq is gap-free and matches file_operations" "t" \
	"$(sql "select count(*) = max(o.seq) and max(o.seq) = p.change_seq
		  from file_operations o join projects p on p.id = o.project_id
		 where p.name = 'demo' group by p.change_seq")"
vs_check_eq "one current row per path" "0" \
	"$(sql "select count(*) from (select file_path from project_files
		 where is_current group by project_id, file_path having count(*) > 1) d")"

# a call blocked by another session's lock hits its deadline; the lock
# is held until the write has given up (the locker's backend is then
# ended, which releases it: no fixed sleep to wait out)
"$PSQL" -X -q "$VSYNC_PG_URL" -c "begin; select 1 from projects
	where name = 'demo' for update; select pg_sleep(60); commit" \
	>/dev/null 2>&1 &
locker=$!
vs_on_exit "kill $locker 2>/dev/null; wait $locker 2>/dev/null; true"
locker_pids="select pid from pg_stat_activity
	where query like '%pg_sleep(60)%' and pid <> pg_backend_pid()"
locker_waiting() {
	[[ $(sql "select count(*) from ($locker_pids) l") == 1 ]]
}
vs_poll 5 locker_waiting
t0=$(vs_now_ms)
expect_exit "a blocked write times out" 5 \
	sh -c "printf x | '$CTL' --timeout 300 put demo blocked.txt"
t1=$(vs_now_ms)
if ((t1 - t0 < 2500)); then
	vs_pass "timeout honoured ($((t1 - t0)) ms for a 300 ms deadline)"
else
	vs_fail "timeout honoured: expected < 2500 ms, saw $((t1 - t0)) ms"
fi
sql "select pg_terminate_backend(pid) from ($locker_pids) l" >/dev/null
wait "$locker" 2>/dev/null
expect_exit "the timed-out write was not committed" 3 ctl cat demo blocked.txt

# a server that accepts but never answers: the connect deadline holds
perl -MIO::Socket::INET -e '
$| = 1;
my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0,
		       Listen => 8) or die "$!\n";
print $s->sockport, "\n";
sleep 30;
' >"$W/mute.port" &
mute=$!
vs_on_exit "kill $mute 2>/dev/null; wait $mute 2>/dev/null; true"
vs_poll 5 test -s "$W/mute.port"
port=$(cat "$W/mute.port")
t0=$(vs_now_ms)
expect_exit "connecting to a mute server times out" 5 \
	ctl --timeout 400 --pg "host=127.0.0.1 port=$port user=postgres sslmode=disable" status demo
t1=$(vs_now_ms)
if ((t1 - t0 < 2500)); then
	vs_pass "connect deadline honoured ($((t1 - t0)) ms for 400 ms)"
else
	vs_fail "connect deadline honoured: expected < 2500 ms, saw $((t1 - t0)) ms"
fi
kill "$mute" 2>/dev/null
wait "$mute" 2>/dev/null

vs_summary
