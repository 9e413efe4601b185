/*
 * journal.c - the write-back journal: local changes not yet committed to
 * PostgreSQL, one small file per operation (journal.h).
 *
 * FORMAT
 *
 * An entry file is named by its lseq, zero-padded to 20 digits
 * ("00000000000000000042"), and holds exactly these lines, in this order:
 *
 *   vsync-journal 1
 *   lseq=42
 *   op=write                  write symlink mkdir delete rename
 *   op_id=0f8fad5b-d9cb-469f-a165-70867728950e
 *   mode=0644                 4 octal digits
 *   base=-1                   -1 (none) or 0..2147483647
 *   after_op=<uuid>|(empty)   write/symlink: base on what that op made
 *   seen=1234                 delete only, and only when > 0: the newest
 *                             change the mount had applied (an entry
 *                             without it deletes unconditionally)
 *   size=123                  write: the content's length; else 0
 *   hash=<64 hex>             write: the content object; else empty
 *   path=10:src/a b.js        <length>:<bytes>, then '\n'
 *   old_path=0:               rename: the source
 *   target=0:                 symlink: the target
 *
 * Numbers are decimal without sign (base allows "-1"), without leading
 * zeros, and bounded; strings are length-prefixed, so a path may hold
 * spaces, newlines or any UTF-8. The parser accepts nothing else: a
 * missing, extra or reordered line, trailing bytes, or a field that does
 * not belong to the op (a hash on a mkdir, an old_path on a write) makes
 * the file malformed. The lseq line must match the file name.
 *
 * DURABILITY
 *
 * An entry gets its lseq (vs_journal_reserve), is written without the
 * lock and without an fsync to a file kept from a done entry
 * ("free.<k>", see the pool below) or a new "<name>.tmp" (O_EXCL), and
 * renamed to <name> under it (RENAME_NOREPLACE: an existing entry is never
 * overwritten; a reservation skips an lseq whose entry or temp file is there
 * already, made by another handle on the same directory, which vsync-mount's
 * cache-dir lock rules out) once every entry reserved before it is renamed
 * or given up (its turn: cond turn) by vs_journal_append[_reserved](). So
 * an append costs no disk wait: a save at close(2) returns at page-cache
 * speed (POSIX promises nothing of a file not fsync'd).
 *
 * Durability is vs_journal_sync()'s (a group commit), for every entry
 * renamed before it started: it starts the write-back of their content
 * objects and entry files (sync_file_range), fsyncs the objects, the
 * objects' fan-out directories, the entries, then the journal directory -
 * objects before the entries that name them, so an entry made durable
 * never names an object that is not. Appenders that sync at the same time
 * share one, and the one who runs it does not hold the lock meanwhile.
 * The committer commits entries to PostgreSQL without waiting for their
 * local fsync (a committed entry is durable there, and its replay after a
 * crash is a no-op by its operation id, so a sync skips the object and
 * the file of every entry committed before it started); it syncs the
 * journal when an entry has to wait (PostgreSQL unreachable) and at least
 * once a second while it works, and fsync(2) on the mount waits for the commit.
 * At open, the entries found are taken as not durable (a stop by SIGKILL leaves
 * them in the page cache only) and the first sync covers them.
 *
 * After a crash, the synced entries are there whole, with their objects.
 * Entries appended after the last sync may be there or not, whole or torn
 * (not necessarily a prefix: the file system may have committed some of
 * their names and not their bytes): a torn entry fails to parse and is
 * renamed to "<name>.bad" (kept for inspection, never replayed), and an
 * entry whose object did not survive is refused by the committer (the
 * object is checked against its hash) and not shown by the mount
 * (fsw_overlay_journal). An append that fails leaves a gap in the lseqs
 * (or none, if it was the newest reservation). A leftover "*.tmp" is
 * removed at open. An entry committed before it was synced may be lost,
 * torn or replayed after a crash: it is in PostgreSQL already, and a
 * replay is a no-op by its operation id (if its object was torn, the
 * replay is refused with a log line instead, harmlessly).
 *
 * The pool: a done entry's file is renamed to "free.<k>" (up to POOL_MAX,
 * else unlinked) and reused by the next append, so that a save neither
 * frees nor allocates an inode (on a journal-less ext4 an allocation
 * skips every recently freed inode of its group: up to a millisecond
 * each). Neither is fsync'd: if the rename is lost in a crash the entry
 * is replayed, a no-op. "free.*" files are never entries; those found at
 * open are pooled again.
 *
 * The pool is also the room kept for a full disk: vs_journal_keep_room
 * (the committer's first step, off the mount's way to ready: 64 creates
 * cost 1-3 ms) and done keep at least POOL_ROOM_FILES files in it, each
 * with POOL_ROOM_BYTES allocated, and an entry is written over a
 * pooled file's bytes, then cut to its length - never truncated to 0 first,
 * which would give the room back for any writer on the volume to take. So an
 * unlink, rename or mkdir (an entry well under POOL_ROOM_BYTES) is journaled,
 * and can free space, when the cache dir's file system is full, as long as
 * fewer than POOL_ROOM_FILES entries wait for the committer. A torn overwrite
 * is an entry torn as above: its lseq line names the old entry, or its
 * bytes do not parse.
 *
 * THREADS
 *
 * One mutex (lock) protects the list of pending lseqs, next_lseq and the
 * reservations and the sync state (the unsynced list, synced_upto); it is
 * held across the file I/O of peek and done and the rename of append (not
 * across an entry's write), so lseq order is the order entries were
 * renamed and peek always sees the oldest. The pool's files are made
 * with it free (vs_journal_keep_room). It is not held across the
 * fsyncs of vs_journal_sync(): one thread at a time runs them (syncing),
 * the others wait on cond synced and find their entry covered, or run the
 * next one. vs_journal_peek() does not sync (see DURABILITY).
 */
#include "vsync/journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "vsync/cache.h"
#include "vsync/log.h"
#include "vsync/metrics.h"
#include "vsync/util.h"
#include "vsync/banned.h"

#define LSEQ_DIGITS 20
#define HEADER	    "vsync-journal 1\n"

struct vs_journal {
	int dir_fd; /* borrowed */
	pthread_mutex_t lock;
	/* under lock: */
	uint64_t *pending; /* sorted ascending */
	size_t n, alloc;
	uint64_t next_lseq;
	uint64_t *res; /* reserved lseqs not yet renamed, ascending */
	size_t nres, ares;
	pthread_cond_t turn;   /* res[0] changed */
	uint64_t renamed_upto; /* the newest entry renamed */
	uint64_t synced_upto;  /* every entry <= this is durable */
	bool syncing;	       /* a directory fsync is running */
	pthread_cond_t synced; /* syncing ended */
	/* renamed entries not yet made durable, in lseq order (above
	 * synced_upto), with the content object each names */
	struct unsynced *uns;
	size_t nuns, auns;
	struct vs_cache *cache; /* where the objects are */
	/* done entries' files kept for reuse ("free.<k>"; see FILES) */
	unsigned *pool;
	size_t npool;
	unsigned next_free;
	bool room_short; /* vs_journal_keep_room made fewer than POOL_ROOM_FILES
			  * (each done then tries again) */
};

struct unsynced {
	uint64_t lseq;
	char hash[VS_HASH_HEX_LEN + 1]; /* "" if it names no object */
	bool done; /* committed since: nothing to make durable */
};

/* Files synced at once by sync_files() (two per entry at most). */
#define SYNC_CHUNK 128
/* Done entries' files kept for reuse at most. */
#define POOL_MAX    1024
#define POOL_PREFIX "free."

/* Pooled files kept at least, each with room for an entry allocated:
 * the room journaling has on a full disk (see the pool above). */
#define POOL_ROOM_FILES VS_JOURNAL_ROOM_ENTRIES
#define POOL_ROOM_BYTES 4096
/* a full volume's warning is logged at most this often: every appender
 * would hit it (write.c logs each operation that fails) */
#define JOURNAL_FULL_WARN_MS 10000
static atomic_int_least64_t full_warned_ms;
/* What older versions kept that room in: removed at open. */
#define JOURNAL_OLD_RESERVE "reserve"

static const char *const op_names[] = {"write", "symlink", "mkdir", "delete",
				       "rename"};

/* ------------------------------------------------------------ the format */

/* A non-empty project path (the root cannot be written). */
static bool path_valid(const char *p)
{
	size_t len = strnlen(p, VS_PATH_MAX + 1);

	return len > 0 && len <= VS_PATH_MAX && vs_path_check(p, len) == 0;
}

/* The rules shared by format and parse. 0 or -EINVAL. */
static int entry_check(const struct vs_jentry *e)
{
	bool write = e->op == VS_JOP_WRITE;

	if ((unsigned)e->op > VS_JOP_RENAME || !vs_uuid_valid(e->op_id) ||
	    (e->after_op[0] && !vs_uuid_valid(e->after_op)) ||
	    !path_valid(e->path) || e->mode > 07777 || e->base_version < -1 ||
	    e->base_version > INT32_MAX || e->size > (uint64_t)INT64_MAX ||
	    e->seen_seq < 0 || (e->seen_seq && e->op != VS_JOP_DELETE))
		return -EINVAL;
	if (write != (e->hash[0] != '\0') ||
	    (write && !vs_hash_hex_valid(e->hash)) || (!write && e->size))
		return -EINVAL;
	if (e->op == VS_JOP_RENAME) {
		if (!path_valid(e->old_path) || !strcmp(e->old_path, e->path))
			return -EINVAL;
	} else if (e->old_path[0]) {
		return -EINVAL;
	}
	if (e->op == VS_JOP_SYMLINK) {
		/* PostgreSQL takes 1..4095 bytes */
		if (!e->target[0] ||
		    strnlen(e->target, VS_PATH_MAX + 1) >= VS_PATH_MAX)
			return -EINVAL;
	} else if (e->target[0]) {
		return -EINVAL;
	}
	return 0;
}

int vs_jentry_format(char *out, size_t size, const struct vs_jentry *e)
{
	char seen[32] = "";
	int n;

	if (entry_check(e) < 0)
		return -EINVAL;
	if (e->seen_seq > 0)
		snprintf(seen, sizeof(seen), "seen=%" PRId64 "\n", e->seen_seq);
	n = snprintf(out, size,
		     HEADER "lseq=%" PRIu64 "\nop=%s\nop_id=%s\nmode=%04o\n"
			    "base=%" PRId64 "\nafter_op=%s\n%ssize=%" PRIu64
			    "\nhash=%s\n"
			    "path=%zu:%s\nold_path=%zu:%s\ntarget=%zu:%s\n",
		     e->lseq, op_names[e->op], e->op_id, (unsigned)e->mode,
		     e->base_version, e->after_op, seen, e->size, e->hash,
		     strlen(e->path), e->path, strlen(e->old_path), e->old_path,
		     strlen(e->target), e->target);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= size)
		return -ENOBUFS;
	return n;
}

struct cursor {
	const char *pos, *end;
};

/* Consume "@key=" at the cursor. */
static bool take_key(struct cursor *c, const char *key)
{
	size_t k = strlen(key);

	if ((size_t)(c->end - c->pos) < k + 1 || memcmp(c->pos, key, k) ||
	    c->pos[k] != '=')
		return false;
	c->pos += k + 1;
	return true;
}

/* Decimal digits up to @stop: no sign, no leading zero, <= @max. */
static bool take_u64(struct cursor *c, char stop, uint64_t max, uint64_t *out)
{
	const char *p = c->pos;
	uint64_t v = 0;

	if (p == c->end || *p < '0' || *p > '9' ||
	    (*p == '0' && p + 1 < c->end && p[1] != stop))
		return false;
	for (; p < c->end && *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (p == c->end || *p != stop)
		return false;
	c->pos = p + 1;
	*out = v;
	return true;
}

/* "@key=<value>\n" with the value copied into @out (< @size bytes). */
static bool take_line(struct cursor *c, const char *key, char *out, size_t size)
{
	const char *nl;
	size_t n;

	if (!take_key(c, key))
		return false;
	nl = memchr(c->pos, '\n', (size_t)(c->end - c->pos));
	if (!nl)
		return false;
	n = (size_t)(nl - c->pos);
	if (n >= size || memchr(c->pos, '\0', n))
		return false;
	memcpy(out, c->pos, n);
	out[n] = '\0';
	c->pos = nl + 1;
	return true;
}

/* "@key=<len>:<bytes>\n" into @out (a path-sized buffer). */
static bool take_string(struct cursor *c, const char *key, char *out)
{
	uint64_t len;

	if (!take_key(c, key) || !take_u64(c, ':', VS_PATH_MAX, &len) ||
	    (uint64_t)(c->end - c->pos) < len + 1 || c->pos[len] != '\n' ||
	    memchr(c->pos, '\0', len))
		return false;
	memcpy(out, c->pos, len);
	out[len] = '\0';
	c->pos += len + 1;
	return true;
}

int vs_jentry_parse(struct vs_jentry *e, const char *buf, size_t len)
{
	struct cursor c = {buf, buf + len};
	char op[16], mode[8], base[24];
	uint64_t v;
	size_t i;

	memset(e, 0, sizeof(*e));
	if (len < sizeof(HEADER) - 1 || memcmp(buf, HEADER, sizeof(HEADER) - 1))
		return -EBADMSG;
	c.pos += sizeof(HEADER) - 1;
	if (!take_key(&c, "lseq") ||
	    !take_u64(&c, '\n', UINT64_MAX, &e->lseq) ||
	    !take_line(&c, "op", op, sizeof(op)) ||
	    !take_line(&c, "op_id", e->op_id, sizeof(e->op_id)) ||
	    !take_line(&c, "mode", mode, sizeof(mode)) ||
	    !take_line(&c, "base", base, sizeof(base)))
		return -EBADMSG;
	for (i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
		if (!strcmp(op, op_names[i]))
			break;
	if (i == sizeof(op_names) / sizeof(op_names[0]))
		return -EBADMSG;
	e->op = (enum vs_jop)i;
	if (strlen(mode) != 4 || strspn(mode, "01234567") != 4)
		return -EBADMSG;
	e->mode = (uint32_t)strtoul(mode, NULL, 8);
	if (!strcmp(base, "-1")) {
		e->base_version = -1;
	} else {
		struct cursor b = {base, base + strlen(base) + 1};

		/* the copied value is NUL-terminated: parse up to the NUL */
		if (!take_u64(&b, '\0', INT32_MAX, &v))
			return -EBADMSG;
		e->base_version = (int64_t)v;
	}
	if (!take_line(&c, "after_op", e->after_op, sizeof(e->after_op)))
		return -EBADMSG;
	if (take_key(&c, "seen")) { /* (never 0: absent then) */
		if (!take_u64(&c, '\n', INT64_MAX, &v) || v == 0)
			return -EBADMSG;
		e->seen_seq = (int64_t)v;
	}
	if (!take_key(&c, "size") || !take_u64(&c, '\n', INT64_MAX, &e->size) ||
	    !take_line(&c, "hash", e->hash, sizeof(e->hash)) ||
	    !take_string(&c, "path", e->path) ||
	    !take_string(&c, "old_path", e->old_path) ||
	    !take_string(&c, "target", e->target) || c.pos != c.end)
		return -EBADMSG;
	return entry_check(e) < 0 ? -EBADMSG : 0;
}

int vs_uuid_random(char out[VS_UUID_BUFSZ])
{
	unsigned char b[16];
	char hex[33];

	if (RAND_bytes(b, sizeof(b)) != 1)
		return -EIO;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	vs_hex_encode(hex, b, sizeof(b));
	snprintf(out, VS_UUID_BUFSZ, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8,
		 hex + 12, hex + 16, hex + 20);
	return 0;
}

/* ------------------------------------------------------------ files */

static void entry_name(char out[LSEQ_DIGITS + 5], uint64_t lseq,
		       const char *suffix)
{
	snprintf(out, LSEQ_DIGITS + 5, "%020" PRIu64 "%s", lseq, suffix);
}

/* The lseq of a name that is 20 digits followed by @suffix, or 0. */
static uint64_t name_lseq(const char *name, const char *suffix)
{
	uint64_t v = 0;

	if (strspn(name, "0123456789") != LSEQ_DIGITS ||
	    strcmp(name + LSEQ_DIGITS, suffix))
		return 0;
	for (int i = 0; i < LSEQ_DIGITS; i++) {
		unsigned d = (unsigned)(name[i] - '0');

		if (v > (UINT64_MAX - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	return v;
}

/* Read entry file @name (at most VS_JENTRY_MAX bytes) and parse it.
 * 0, -EBADMSG (malformed, too big, not a regular file) or -errno. */
static int entry_read(int dir_fd, const char *name, struct vs_jentry *e)
{
	char *buf = NULL;
	struct stat st;
	size_t got = 0;
	int fd, r;

	r = vs_open_regular(dir_fd, name, O_RDONLY, &fd);
	if (r != 0)
		return r == 1 ? -EBADMSG : r;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (st.st_size > VS_JENTRY_MAX) {
		r = -EBADMSG;
		goto out;
	}
	r = vs_read_fd_whole(&buf, &got, fd, VS_JENTRY_MAX);
	if (r == -EFBIG)
		r = -EBADMSG; /* grew since the fstat */
	if (r < 0)
		goto out;
	r = vs_jentry_parse(e, buf, got);
out:
	free(buf);
	close(fd);
	return r;
}

/* Rename @tmp to @name, never over an existing entry (another journal
 * handle on this directory may have taken the lseq): 0, -EEXIST if @name
 * exists (@tmp is left), or -errno. A file system without
 * RENAME_NOREPLACE gets a hard link and an unlink instead. */
static int entry_publish(int dir_fd, const char *tmp, const char *name)
{
	if (renameat2(dir_fd, tmp, dir_fd, name, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	if (linkat(dir_fd, tmp, dir_fd, name, 0) < 0)
		return -errno;
	unlinkat(dir_fd, tmp, 0);
	return 0;
}

/* Move a malformed entry aside to <name>.bad, with a log line. */
static void entry_quarantine(int dir_fd, const char *name, const char *why)
{
	char bad[LSEQ_DIGITS + 5];

	snprintf(bad, sizeof(bad), "%s.bad", name);
	if (renameat(dir_fd, name, dir_fd, bad) < 0) {
		vs_error("journal entry %s is %s and cannot be moved aside: %s",
			 name, why, strerror(errno));
		return;
	}
	vs_warn("journal entry %s is %s: moved to %s, not replayed", name, why,
		bad);
}

static int pending_reserve(struct vs_journal *j, size_t n)
{
	uint64_t *p;
	size_t alloc;

	if (n <= j->alloc)
		return 0;
	alloc = j->alloc ? j->alloc : 64;
	while (alloc < n)
		alloc *= 2;
	p = realloc(j->pending, alloc * sizeof(*p));
	if (!p)
		return -ENOMEM;
	j->pending = p;
	j->alloc = alloc;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Remove pending[i]. */
static void pending_remove(struct vs_journal *j, size_t i)
{
	memmove(&j->pending[i], &j->pending[i + 1],
		(j->n - i - 1) * sizeof(j->pending[0]));
	j->n--;
	vs_metrics_journal_pending((int64_t)j->n);
}

/* Room for one more unsynced entry. */
static int unsynced_reserve(struct vs_journal *j)
{
	struct unsynced *p;
	size_t a;

	if (j->nuns < j->auns)
		return 0;
	a = j->auns ? 2 * j->auns : 64;
	p = realloc(j->uns, a * sizeof(*p));
	if (!p)
		return -ENOMEM;
	j->uns = p;
	j->auns = a;
	return 0;
}

/* Remember renamed entry @e as not durable yet (room reserved). */
static void unsynced_add(struct vs_journal *j, const struct vs_jentry *e)
{
	struct unsynced *u = &j->uns[j->nuns++];

	u->lseq = e->lseq;
	u->done = false;
	memcpy(u->hash, e->op == VS_JOP_WRITE ? e->hash : "",
	       e->op == VS_JOP_WRITE ? sizeof(u->hash) : 1);
}

/* Start writing back the bytes of the file at @name (relative to
 * @dir_fd): its fd into fds[*n], or nothing if it is gone (an entry done
 * since, an object a check removed) or is not a file of ours any more
 * (a FIFO or a symlink put in its place: whatever did that could as
 * well have removed it). 0 or -errno. */
static int sync_open(int dir_fd, const char *name, int *fds, size_t *n)
{
	int fd, r = vs_open_regular(dir_fd, name, O_RDONLY, &fd);

	if (r != 0)
		return r == 1 || r == -ENOENT ? 0 : r;
	/* all of a group's data first, so that the fsyncs below find it
	 * written and share the file system's commits */
	sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	fds[(*n)++] = fd;
	return 0;
}

/*
 * Make @k renamed entries durable (see DURABILITY): their content
 * objects, the objects' directories, the entries, then the journal
 * directory. Called without the lock by the one thread syncing. 0 or
 * -errno.
 */
static int sync_files(int dir_fd, struct vs_cache *c,
		      const struct unsynced *items, size_t k)
{
	char name[8 + 3 + VS_HASH_HEX_LEN + 1];
	int fds[2 * SYNC_CHUNK];
	int r = 0;

	for (size_t at = 0; at < k && r == 0; at += SYNC_CHUNK) {
		size_t m = k - at < SYNC_CHUNK ? k - at : SYNC_CHUNK;
		size_t nf = 0, nobj;
		bool fanout[256] = {false};

		for (size_t i = at; i < at + m && r == 0 && c; i++) {
			if (!items[i].hash[0] || items[i].done)
				continue;
			vs_cache_object_name(name, items[i].hash);
			r = sync_open(c->dir_fd, name, fds, &nf);
			fanout[strtoul((char[3]){name[8], name[9], '\0'}, NULL,
				       16)] = true;
		}
		nobj = nf;
		for (size_t i = at; i < at + m && r == 0; i++) {
			if (items[i].done)
				continue;
			entry_name(name, items[i].lseq, "");
			r = sync_open(dir_fd, name, fds, &nf);
		}
		for (size_t i = 0; i < nobj && r == 0; i++)
			if (fsync(fds[i]) < 0)
				r = -errno;
		for (unsigned d = 0; d < 256 && r == 0 && c; d++) {
			int fd;

			if (!fanout[d])
				continue;
			snprintf(name, sizeof(name), "objects/%02x", d);
			fd = openat(c->dir_fd, name,
				    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (fd < 0 || fsync(fd) < 0)
				r = -errno;
			if (fd >= 0)
				close(fd);
		}
		for (size_t i = nobj; i < nf && r == 0; i++)
			if (fsync(fds[i]) < 0)
				r = -errno;
		for (size_t i = 0; i < nf; i++)
			close(fds[i]);
	}
	if (r == 0 && fsync(dir_fd) < 0)
		r = -errno;
	return r;
}

/* A file "free.<k>" found at open, or given back by an append that
 * failed: kept for reuse, or removed. */
static void pool_found(struct vs_journal *j, const char *name)
{
	const char *k = name + strlen(POOL_PREFIX);
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(k, &end, 10);
	if (*k < '0' || *k > '9' || *end || errno || v >= UINT_MAX ||
	    j->npool == POOL_MAX) {
		unlinkat(j->dir_fd, name, 0);
		return;
	}
	j->pool[j->npool++] = (unsigned)v;
	if (v >= j->next_free)
		j->next_free = (unsigned)v + 1;
}

/* A pooled file's name into @out (LSEQ_DIGITS + 5 bytes), taken out of
 * the pool: false if the pool is empty. */
static bool pool_take(struct vs_journal *j, char *out)
{
	bool got;

	pthread_mutex_lock(&j->lock);
	got = j->npool > 0;
	if (got)
		snprintf(out, LSEQ_DIGITS + 5, POOL_PREFIX "%u",
			 j->pool[--j->npool]);
	pthread_mutex_unlock(&j->lock);
	return got;
}

/* Open the file an entry is written to before its rename: a pooled one
 * when there is one (*@pooled: its old bytes are there, to be written
 * over and cut), else a new "<name>.tmp" (@tmp gets the name used). An fd
 * or -errno. */
static int entry_create(struct vs_journal *j, uint64_t lseq, char *tmp,
			bool *pooled)
{
	int fd;

	*pooled = pool_take(j, tmp);
	if (*pooled) {
		if (vs_open_regular(j->dir_fd, tmp, O_WRONLY, &fd) == 0)
			return fd;
		unlinkat(j->dir_fd, tmp, 0);
		*pooled = false;
	}
	entry_name(tmp, lseq, ".tmp");
	fd = openat(j->dir_fd, tmp,
		    O_WRONLY | O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC, 0600);
	return fd < 0 ? -errno : fd;
}

/* ------------------------------------------------------------ the journal */

/* Scan the directory: collect valid entries, remove leftovers, quarantine
 * malformed ones, and find the highest lseq ever used. */
static int journal_scan(struct vs_journal *j)
{
	struct vs_jentry *e = NULL;
	struct dirent *d;
	uint64_t max = 0, lseq;
	DIR *dir = NULL;
	int fd, r = 0;

	e = malloc(sizeof(*e));
	fd = dup(j->dir_fd);
	if (!e || fd < 0) {
		r = e ? -errno : -ENOMEM;
		if (fd >= 0)
			close(fd);
		goto out;
	}
	dir = fdopendir(fd);
	if (!dir) {
		r = -errno;
		close(fd);
		goto out;
	}
	rewinddir(dir);
	while ((errno = 0, d = readdir(dir))) {
		if ((lseq = name_lseq(d->d_name, ".tmp"))) {
			/* a crash before the rename: never acknowledged */
			unlinkat(j->dir_fd, d->d_name, 0);
			continue;
		}
		if ((lseq = name_lseq(d->d_name, ".bad"))) {
			max = lseq > max ? lseq : max;
			continue;
		}
		if (!strncmp(d->d_name, POOL_PREFIX, strlen(POOL_PREFIX))) {
			pool_found(j, d->d_name);
			continue;
		}
		lseq = name_lseq(d->d_name, "");
		if (!lseq)
			continue;
		max = lseq > max ? lseq : max;
		r = entry_read(j->dir_fd, d->d_name, e);
		if (r == 0 && e->lseq != lseq)
			r = -EBADMSG;
		if (r == -EBADMSG) {
			entry_quarantine(j->dir_fd, d->d_name, "malformed");
			r = 0;
			continue;
		}
		if (r < 0) {
			vs_error("cannot read journal entry %s: %s", d->d_name,
				 strerror(-r));
			goto out;
		}
		r = pending_reserve(j, j->n + 1);
		if (r == 0)
			r = unsynced_reserve(j);
		if (r < 0)
			goto out;
		j->pending[j->n++] = lseq;
		unsynced_add(j, e);
	}
	if (errno) {
		r = -errno;
		goto out;
	}
	if (j->n > 1) {
		qsort(j->pending, j->n, sizeof(j->pending[0]), cmp_u64);
		/* by lseq, their first member */
		qsort(j->uns, j->nuns, sizeof(j->uns[0]), cmp_u64);
	}
	j->next_lseq = max + 1;
	vs_metrics_journal_pending((int64_t)j->n);
out:
	if (dir)
		closedir(dir);
	free(e);
	return r;
}

/* Top the pool up to POOL_ROOM_FILES files with room allocated (best
 * effort: on a full disk, as many as fit; room_short says so, and the
 * next done tries again). Files in use by pending entries come back at
 * their done, so a pool short only for that is not topped up. Called
 * without the lock: each name is taken, and each file pooled, under it,
 * but the creates (1-3 ms for 64) are made with it free, so that
 * appenders do not wait for them. */
void vs_journal_keep_room(struct vs_journal *j)
{
	char name[LSEQ_DIGITS + 5];
	unsigned k;
	int fd, r;

	for (;;) {
		pthread_mutex_lock(&j->lock);
		if (j->npool >= POOL_ROOM_FILES || j->next_free == UINT_MAX)
			break;
		k = j->next_free++;
		pthread_mutex_unlock(&j->lock);
		snprintf(name, sizeof(name), POOL_PREFIX "%u", k);
		fd = openat(j->dir_fd, name,
			    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 && errno == EEXIST)
			continue; /* not ours (another handle's) */
		if (fd < 0) {
			pthread_mutex_lock(&j->lock);
			break;
		}
		r = posix_fallocate(fd, 0, POOL_ROOM_BYTES);
		close(fd);
		pthread_mutex_lock(&j->lock);
		if (r || j->npool == POOL_MAX) {
			/* no room; or done filled the pool meanwhile */
			unlinkat(j->dir_fd, name, 0);
			break;
		}
		j->pool[j->npool++] = k;
		pthread_mutex_unlock(&j->lock);
	}
	j->room_short = j->npool < POOL_ROOM_FILES;
	pthread_mutex_unlock(&j->lock);
}

int vs_journal_open(struct vs_journal **out, int dir_fd, struct vs_cache *cache)
{
	struct vs_journal *j;
	int r;

	*out = NULL;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->dir_fd = dir_fd;
	j->cache = cache;
	j->pool = malloc(POOL_MAX * sizeof(*j->pool));
	if (!j->pool) {
		free(j);
		return -ENOMEM;
	}
	r = pthread_mutex_init(&j->lock, NULL);
	if (r) {
		free(j->pool);
		free(j);
		return -r;
	}
	r = pthread_cond_init(&j->synced, NULL);
	if (r == 0 && (r = pthread_cond_init(&j->turn, NULL)))
		pthread_cond_destroy(&j->synced);
	if (r) {
		pthread_mutex_destroy(&j->lock);
		free(j->pool);
		free(j);
		return -r;
	}
	r = journal_scan(j);
	if (r < 0) {
		vs_journal_free(j);
		return r;
	}
	/* the names a crash left renamed but not synced are made durable
	 * now; their bytes (and objects) by the first sync, which covers
	 * every entry found (a stop by SIGKILL leaves them in the page
	 * cache only). No entry, nothing to make durable: a cold start
	 * does not wait for the disk (an fsync costs 3-30 ms there) */
	if (j->n && fsync(j->dir_fd) < 0) {
		r = -errno;
		vs_journal_free(j);
		return r;
	}
	j->renamed_upto = j->next_lseq - 1;
	j->synced_upto = j->n ? j->pending[0] - 1 : j->renamed_upto;
	(void)unlinkat(dir_fd, JOURNAL_OLD_RESERVE, 0);
	if (j->n)
		vs_info("journal: %zu entr%s to replay (lseq %" PRIu64
			"..%" PRIu64 ")",
			j->n, j->n == 1 ? "y" : "ies", j->pending[0],
			j->pending[j->n - 1]);
	*out = j;
	return 0;
}

void vs_journal_free(struct vs_journal *j)
{
	if (!j)
		return;
	pthread_cond_destroy(&j->synced);
	pthread_cond_destroy(&j->turn);
	pthread_mutex_destroy(&j->lock);
	free(j->pending);
	free(j->res);
	free(j->uns);
	free(j->pool);
	free(j);
}

/* Remove reservation @lseq and pass the turn on. Called with the lock. */
static void reservation_end(struct vs_journal *j, uint64_t lseq, bool renamed)
{
	size_t i;

	for (i = 0; i < j->nres && j->res[i] != lseq; i++)
		;
	if (i == j->nres)
		return;
	memmove(&j->res[i], &j->res[i + 1],
		(j->nres - i - 1) * sizeof(*j->res));
	j->nres--;
	if (renamed)
		j->renamed_upto = lseq;
	else if (lseq == j->next_lseq - 1)
		j->next_lseq--; /* the last one: the next append takes it */
	pthread_cond_broadcast(&j->turn);
}

/* Is @lseq's entry or temp file in the directory already (made by another
 * handle on it)? Lock held. */
static bool lseq_taken(struct vs_journal *j, uint64_t lseq)
{
	char name[LSEQ_DIGITS + 5];

	entry_name(name, lseq, "");
	if (faccessat(j->dir_fd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return true;
	entry_name(name, lseq, ".tmp");
	return faccessat(j->dir_fd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

int vs_journal_reserve(struct vs_journal *j, struct vs_jentry *e)
{
	uint64_t *p;
	int r = 0;

	pthread_mutex_lock(&j->lock);
	if (j->nres == j->ares) {
		size_t a = j->ares ? 2 * j->ares : 16;

		p = realloc(j->res, a * sizeof(*p));
		if (!p) {
			r = -ENOMEM;
			goto out;
		}
		j->res = p;
		j->ares = a;
	}
	while (lseq_taken(j, j->next_lseq))
		j->next_lseq++;
	e->lseq = j->next_lseq++;
	j->res[j->nres++] = e->lseq;
out:
	pthread_mutex_unlock(&j->lock);
	return r;
}

int vs_journal_append(struct vs_journal *j, struct vs_jentry *e)
{
	int r = vs_journal_reserve(j, e);

	return r < 0 ? r : vs_journal_append_reserved(j, e);
}

int vs_journal_append_reserved(struct vs_journal *j, struct vs_jentry *e)
{
	char name[LSEQ_DIGITS + 5], tmp[LSEQ_DIGITS + 5];
	bool renamed = false, locked = false, pooled;
	char *buf = NULL;
	int fd = -1, n, r;

	if (!e->op_id[0] && (r = vs_uuid_random(e->op_id)) < 0)
		goto out;
	buf = malloc(VS_JENTRY_MAX);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	n = vs_jentry_format(buf, VS_JENTRY_MAX, e);
	if (n < 0) {
		r = n;
		goto out;
	}
	entry_name(name, e->lseq, "");
	/* written without the lock, by appenders at the same time, and not
	 * fsync'd (vs_journal_sync does that, for a group); the rename waits
	 * for its turn (lseq order) */
	fd = entry_create(j, e->lseq, tmp, &pooled);
	if (fd < 0) {
		r = fd;
		goto out;
	}
	r = vs_write_in_full(fd, buf, (size_t)n);
	if (r == 0 && pooled && ftruncate(fd, n) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	fd = -1;
	pthread_mutex_lock(&j->lock);
	locked = true;
	while (r == 0 && j->res[0] != e->lseq)
		pthread_cond_wait(&j->turn, &j->lock);
	/* room in the lists first (after the wait, which drops the lock):
	 * once renamed, the entry must be listed */
	if (r == 0)
		r = pending_reserve(j, j->n + 1);
	if (r == 0)
		r = unsynced_reserve(j);
	if (r == 0)
		r = entry_publish(j->dir_fd, tmp, name);
	renamed = r == 0;
	if (r < 0) {
		/* not renamed, so never replayed behind the caller's back; a
		 * pooled file goes back to the pool with its room */
		if (pooled)
			pool_found(j, tmp);
		else
			unlinkat(j->dir_fd, tmp, 0);
		goto out;
	}
	j->pending[j->n++] = e->lseq;
	unsynced_add(j, e);
	vs_metrics_journal_pending((int64_t)j->n);
out:
	if (!locked)
		pthread_mutex_lock(&j->lock);
	reservation_end(j, e->lseq, renamed);
	pthread_mutex_unlock(&j->lock);
	if (r == -ENOSPC && vs_log_due(&full_warned_ms, JOURNAL_FULL_WARN_MS))
		vs_warn("journal: the cache dir's volume is full and the room "
			"kept for %d entries is in use by entries waiting for "
			"the committer (the next such line in %d s at the "
			"earliest)",
			POOL_ROOM_FILES, JOURNAL_FULL_WARN_MS / 1000);
	free(buf);
	return r;
}

/*
 * Make every entry up to @lseq durable: sync the entries renamed so far
 * (sync_files) unless a sync that started after its rename has ended (see
 * THREADS). Called with the lock held; drops it across the I/O. 0 or
 * -errno (nothing is undone: the entries stay listed and unsynced, and
 * the next sync tries again).
 */
static int sync_locked(struct vs_journal *j, uint64_t lseq)
{
	struct unsynced *items;
	uint64_t target;
	size_t k;
	int r = 0;

	while (j->synced_upto < lseq) {
		if (j->syncing) {
			pthread_cond_wait(&j->synced, &j->lock);
			continue;
		}
		target = j->renamed_upto; /* every entry renamed so far */
		k = j->nuns;		  /* those of them not synced yet */
		items = k ? malloc(k * sizeof(*items)) : NULL;
		if (k && !items) {
			r = -ENOMEM;
			break;
		}
		if (k)
			memcpy(items, j->uns, k * sizeof(*items));
		j->syncing = true;
		pthread_mutex_unlock(&j->lock);
		r = sync_files(j->dir_fd, j->cache, items, k);
		free(items);
		pthread_mutex_lock(&j->lock);
		j->syncing = false;
		if (r == 0) {
			/* appends came only at the end meanwhile */
			memmove(j->uns, j->uns + k,
				(j->nuns - k) * sizeof(*j->uns));
			j->nuns -= k;
			if (target > j->synced_upto)
				j->synced_upto = target;
		}
		pthread_cond_broadcast(&j->synced);
		if (r < 0)
			break;
	}
	return r;
}

int vs_journal_sync(struct vs_journal *j, uint64_t lseq)
{
	int r;

	pthread_mutex_lock(&j->lock);
	if (!lseq || lseq > j->renamed_upto)
		lseq = j->renamed_upto; /* one still being written: not yet */
	r = sync_locked(j, lseq);
	pthread_mutex_unlock(&j->lock);
	if (r < 0)
		vs_error("journal: cannot make entries durable: %s",
			 strerror(-r));
	return r;
}

uint64_t vs_journal_synced(struct vs_journal *j)
{
	uint64_t v;

	pthread_mutex_lock(&j->lock);
	v = j->synced_upto;
	pthread_mutex_unlock(&j->lock);
	return v;
}

int vs_journal_peek(struct vs_journal *j, struct vs_jentry *e)
{
	char name[LSEQ_DIGITS + 5];
	int r = -ENOENT;

	/* durable or not: an entry committed to PostgreSQL needs no local
	 * fsync (its replay is a no-op); one that waits is synced by
	 * vs_journal_sync() */
	pthread_mutex_lock(&j->lock);
	while (j->n > 0) {
		entry_name(name, j->pending[0], "");
		r = entry_read(j->dir_fd, name, e);
		if (r == 0 && e->lseq != j->pending[0])
			r = -EBADMSG;
		if (r == 0)
			break;
		if (r == -EBADMSG) {
			entry_quarantine(j->dir_fd, name, "malformed");
		} else if (r == -ENOENT) {
			vs_warn("journal entry %s vanished", name);
		} else {
			vs_error("cannot read journal entry %s: %s", name,
				 strerror(-r));
			break;
		}
		pending_remove(j, 0);
		r = -ENOENT;
	}
	pthread_mutex_unlock(&j->lock);
	return r;
}

/* Entry @lseq is committed: if it waits for a sync, that sync has
 * nothing to do for it (neither its object nor its file; see
 * DURABILITY). The list is in lseq order. Lock held. */
static void unsynced_done(struct vs_journal *j, uint64_t lseq)
{
	size_t lo = 0, hi = j->nuns;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (j->uns[mid].lseq < lseq)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < j->nuns && j->uns[lo].lseq == lseq)
		j->uns[lo].done = true;
}

int vs_journal_done(struct vs_journal *j, uint64_t lseq)
{
	char name[LSEQ_DIGITS + 5];
	size_t i;
	bool fill = false;
	int r = 0;

	pthread_mutex_lock(&j->lock);
	for (i = 0; i < j->n && j->pending[i] != lseq; i++)
		;
	if (i == j->n) {
		r = -ENOENT;
		goto out;
	}
	entry_name(name, lseq, "");
	if (j->npool < POOL_MAX) {
		/* kept for the next append: no inode freed and made again */
		char free_name[LSEQ_DIGITS + 5];

		snprintf(free_name, sizeof(free_name), POOL_PREFIX "%u",
			 j->next_free);
		if (renameat(j->dir_fd, name, j->dir_fd, free_name) == 0) {
			j->pool[j->npool++] = j->next_free++;
			goto removed;
		}
	}
	if (unlinkat(j->dir_fd, name, 0) < 0 && errno != ENOENT) {
		r = -errno;
		vs_error("cannot remove journal entry %s: %s", name,
			 strerror(-r));
		goto out;
	}
removed:
	pending_remove(j, i);
	unsynced_done(j, lseq);
	fill = j->room_short; /* short of room before: again if room now */
out:
	pthread_mutex_unlock(&j->lock);
	if (fill)
		vs_journal_keep_room(j);
	if (r == 0 && j->cache)
		vs_cache_room_changed(j->cache); /* its object evictable */
	return r;
}

int vs_journal_each(struct vs_journal *j,
		    int (*fn)(void *arg, const struct vs_jentry *e), void *arg)
{
	char name[LSEQ_DIGITS + 5];
	struct vs_jentry *e = malloc(sizeof(*e));
	uint64_t *lseqs = NULL;
	size_t n;
	int r = 0;

	if (!e)
		return -ENOMEM;
	/* a copy of the list: @fn runs without the lock */
	pthread_mutex_lock(&j->lock);
	n = j->n;
	if (n && !(lseqs = malloc(n * sizeof(*lseqs))))
		r = -ENOMEM;
	else if (n)
		memcpy(lseqs, j->pending, n * sizeof(*lseqs));
	pthread_mutex_unlock(&j->lock);
	for (size_t i = 0; r == 0 && i < n; i++) {
		int rr;

		entry_name(name, lseqs[i], "");
		rr = entry_read(j->dir_fd, name, e);
		if (rr == 0 && e->lseq != lseqs[i])
			rr = -EBADMSG;
		if (rr < 0) {
			/* vs_journal_peek() deals with it when it comes up */
			vs_warn("skipping journal entry %s: %s", name,
				strerror(-rr));
			continue;
		}
		r = fn(arg, e);
	}
	free(lseqs);
	free(e);
	return r;
}

int vs_journal_dir_hashes(int dir_fd, int (*fn)(void *arg, const char *hash),
			  void *arg)
{
	struct vs_jentry *e = malloc(sizeof(*e));
	struct dirent *d;
	DIR *dir = NULL;
	int fd, r = 0;

	if (!e)
		return -ENOMEM;
	fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(dir = fdopendir(fd))) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		goto out;
	}
	while (r == 0 && (d = readdir(dir))) {
		if (!name_lseq(d->d_name, "") && !name_lseq(d->d_name, ".tmp"))
			continue;
		int rr = entry_read(dir_fd, d->d_name, e);

		if (rr == 0 && e->op == VS_JOP_WRITE)
			r = fn(arg, e->hash);
		else if (rr < 0 && rr != -ENOENT && rr != -EBADMSG)
			r = rr; /* unread: it might name anything */
	}
	closedir(dir);
out:
	free(e);
	return r;
}

size_t vs_journal_pending(struct vs_journal *j)
{
	size_t n;

	pthread_mutex_lock(&j->lock);
	n = j->n;
	pthread_mutex_unlock(&j->lock);
	return n;
}

uint64_t vs_journal_low_water(struct vs_journal *j)
{
	uint64_t v;

	pthread_mutex_lock(&j->lock);
	/* renamed entries are below reserved ones (renames are in turn) */
	v = j->n ? j->pending[0] : j->nres ? j->res[0] : j->next_lseq;
	pthread_mutex_unlock(&j->lock);
	return v;
}

int vs_journal_oldest_ms(struct vs_journal *j, int64_t *ms)
{
	char name[LSEQ_DIGITS + 5];
	struct stat st;
	int r = -ENOENT;

	pthread_mutex_lock(&j->lock);
	if (j->n) {
		entry_name(name, j->pending[0], "");
		r = fstatat(j->dir_fd, name, &st, 0) < 0 ? -errno : 0;
	}
	pthread_mutex_unlock(&j->lock);
	if (r == 0)
		*ms = (int64_t)st.st_mtim.tv_sec * 1000 +
		      st.st_mtim.tv_nsec / 1000000;
	return r;
}

/* The body of vs_journal_put_content(_fd) once the hash is known: pin,
 * then link @link_fd, else store @buf (@len bytes) or, @buf NULL, copy
 * @fd. */
static int put_hashed(struct vs_cache *c, const char *hash, const void *buf,
		      size_t len, int fd, int link_fd)
{
	int r;

	/* pinned before it is there: the evictor cannot take it before the
	 * entry that names it is in the journal (the caller unpins) */
	r = vs_cache_pin(c, hash);
	if (r < 0)
		return r;
	/* not fsync'd here: vs_journal_sync() makes it durable before the
	 * entry that names it (the journal knows the cache) */
	if (link_fd >= 0) {
		r = vs_cache_link(c, hash, link_fd);
		if (r == 0)
			return 1;
		if (r == -EEXIST)
			return 0; /* the same bytes are there */
	}
	r = buf ? vs_cache_store(c, hash, buf, len)
		: vs_cache_store_fd(c, hash, fd);
	if (r < 0)
		vs_cache_unpin(c, hash);
	return r;
}

int vs_journal_put_content(struct vs_cache *c, const void *buf, size_t len,
			   int fd, char hash_out[VS_HASH_HEX_LEN + 1])
{
	int r = vs_sha256_hex(hash_out, buf, len);

	return r < 0 ? r : put_hashed(c, hash_out, buf, len, -1, fd);
}

int vs_journal_put_content_fd(struct vs_cache *c, int fd, bool linkable,
			      char hash_out[VS_HASH_HEX_LEN + 1])
{
	int r = vs_sha256_fd_hex(hash_out, fd);

	return r < 0 ? r
		     : put_hashed(c, hash_out, NULL, 0, fd, linkable ? fd : -1);
}
