/*
 * write.c - writes to synced paths (--writable): local first, journaled,
 * committed behind.
 *
 * DESIGN
 * A synced file that is written gets a working copy (in memory, or an
 * O_TMPFILE in the cache dir, filled from its content at the first write
 * unless truncated): reads and writes go to it, the kernel sees it like
 * any local file. Nothing is set up at open(2): the working copy comes
 * with the first write or truncating setattr, the content with the first
 * read (synced.c), so the mount works the same whether the kernel sends
 * OPEN and RELEASE or not (no-open mode, fs.c).
 *
 * The save policy. A file written is put in the set of dirty files
 * (fs_i.h) with the time of its last write; the saver thread saves it
 * once it has had no write for --save-quiet-ms (1 s when the last change
 * left it empty: FSW_EMPTY_QUIET_MS). The save snapshots the
 * working copy under the inode's fd_lock, so it has the bytes as of that
 * quiet point, never a write half applied. Saved at once, as before:
 * fsync, a rename of the file, a chmod (of a file with no save pending:
 * otherwise the mode goes with that save), the stop (fsw_save_all) and, when
 * the kernel sends it, the RELEASE of a descriptor that may have written
 * (the last close(2); close() does not wait for it). A snapshot makes
 * the working copy a content object (linked into the cache as it is,
 * then frozen: the next write copies it to a new working copy; or its
 * bytes stored when it cannot be linked) and appends a WRITE entry to the
 * journal. Neither is fsync'd there: a save costs no disk wait, so
 * close() waits neither for PostgreSQL nor for the disk, and the saves of
 * many files do not queue behind each other's fsyncs. Durability is owed
 * to fsync(2) only (and to the stop): fsync snapshots and then waits
 * until the committer has committed that entry (EIO if it cannot within
 * the deadline), so what fsync returned for is in PostgreSQL; the
 * committer syncs the journal in groups, with the objects, for what waits
 * (writeback.c, Durability), and what was synced before a crash is
 * replayed (journal.c, DURABILITY). FLUSH is not used (fs.c answers
 * ENOSYS: one round trip less per close). Saves of one path made before
 * the previous one is committed are chained (after_op), so they never
 * conflict with each other; a save with nothing written since the last
 * one journals nothing.
 *
 * Directories, symlinks, deletions and renames change the inode table at
 * once (the kernel sees the result immediately) and append one journal
 * entry each (not fsync'd either), committed in order behind. A renamed
 * file's next save is chained after the rename.
 *
 * Our own changes come back through the change stream once committed; the
 * tree has them already, so the updater skips them (fsw_own_change): the
 * committer's callback records the change seq of each of our entries.
 *
 * Locks, in this order: fd_lock exclusive to create or snapshot the
 * working copy and to swap content; dirty_lock around the set of dirty
 * files; ns_lock across a change of the synced tree and its journal
 * entry, and across a snapshot's path and its WRITE entry (fs_i.h), so
 * the journal's order is the tree's; the table lock for metadata only,
 * never across journal I/O (the snapshot copies the bytes first and
 * stores them before taking ns_lock). A snapshot only reserves its
 * entry's place under ns_lock (vs_journal_reserve: the journal's order is
 * still the tree's) and writes the entry after it; changes of the tree
 * append under ns_lock (they undo the change if that fails). An entry is
 * renamed in its turn, so one appended under ns_lock may wait for a
 * snapshot's entry reserved before it, which needs no lock of ours.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "fs_i.h"
#include "vsync/cache.h"
#include "vsync/clock.h"
#include "vsync/content.h"
#include "vsync/hash.h"
#include "vsync/journal.h"
#include "vsync/log.h"
#include "vsync/metrics.h"
#include "vsync/status.h"
#include "vsync/util.h"
#include "vsync/writeback.h"
#include "vsync/banned.h"

/* a working copy in memory (memfd) moves to the cache dir's disk when it
 * grows past this */
#define FSW_WMEM_MAX ((off_t)1 << 20)
/* ... or as soon as the cache dir's file system has less room than this
 * (so that a write that cannot be saved fails with ENOSPC, as on disk) */
#define FSW_WMEM_MIN_FREE ((uint64_t)256 << 20)
/* a file made empty (created, truncated to 0) and not written since is
 * saved after this long with no change, or the quiet period if longer:
 * an open(O_TRUNC) or a creation is followed by its writes at once, but
 * on a loaded machine the writer may not run again within the quiet
 * period, and an empty version must not be published in between */
#define FSW_EMPTY_QUIET_MS 1000
/* a file whose last write ended at its end on a page boundary (more
 * likely follows: a streaming writer's buffer, the kernel's write-back
 * of a large file in pages) is saved after this long with no change, or
 * the quiet period if longer. A source file saved by an editor ends
 * anywhere but there (its last page is partial), so it keeps the quiet
 * period; a large file's prefix is not published at a writer's pause. */
#define FSW_STREAM_QUIET_MS 250
/* that boundary: what stdio's and copy tools' buffers are multiples of
 * (BUFSIZ 8192, cp's 128 KiB), and the kernel's write-back page on x86-64;
 * the writers' unit rather than this machine's page size, hence a
 * constant */
#define FSW_STREAM_UNIT 4096
/* a file one of whose writes failed (wfailed) goes back to its saved
 * version after this long with no write when the kernel sends no
 * RELEASE (no-open mode): the writer is taken to be done with it (see
 * revert_locked) */
#define FSW_FAILED_QUIET_MS 5000
/* a file whose save failed (no room on the cache volume ...) is tried
 * again after this long, doubled at each failure up to the max; sooner
 * (but not more often than the min) once the cache volume has more room
 * than at the failure (dirty_mark_retry) */
#define FSW_RETRY_MIN_MS 1000
#define FSW_RETRY_MAX_MS 30000
/* fsync() waits this long for its commit before failing with EIO, plus
 * what the file's bytes take at VS_MIN_RATE (vs_size_timeout_ms) */
#define FSW_FSYNC_TIMEOUT_MS 10000
/* the updater waits at most this long for the committer to report the
 * entries in flight before deciding whether a change is ours */
#define FSW_OWN_WAIT_MS 2000
/* what vs_fs_committed logs it did: three paths and some words */
#define FSW_WHAT_MAX (3 * VS_PATH_MAX + 128)

static int path_of(struct vs_fs *fs, struct vs_inode *in, char *buf,
		   size_t size)
{
	int r;

	pthread_mutex_lock(&fs->table.lock);
	r = in->removed ? -ENOENT : inode_path(in, buf, size);
	pthread_mutex_unlock(&fs->table.lock);
	return r;
}

/* Append @e to the journal (reserved already if e->lseq is set) and wake
 * the committer. An entry not reserved that finds no room on the volume
 * is tried once more after a reclaim (a reserved one keeps its place in
 * the order only once: its caller tries again later). */
static int journal(struct vs_fs *fs, struct vs_jentry *e)
{
	bool reserved = e->lseq != 0;
	int r = reserved ? vs_journal_append_reserved(fs->cfg.journal, e)
			 : vs_journal_append(fs->cfg.journal, e);

	if (!reserved && vs_cache_no_room(r) &&
	    vs_cache_reclaim(fs->cfg.cache)) {
		e->lseq = 0;
		r = vs_journal_append(fs->cfg.journal, e);
	}
	if (r < 0) {
		vs_error("cannot journal %s of '%s': %s",
			 e->op == VS_JOP_DELETE ? "delete" : "change", e->path,
			 strerror(-r));
		return r == -ENOSPC ? r : -EIO;
	}
	if (e->op == VS_JOP_DELETE)
		vs_cache_room_changed(fs->cfg.cache); /* its object unused */
	/* the range of entries this process appended (fs_i.h) */
	for (uint64_t first = atomic_load(&fs->first_lseq);
	     (!first || e->lseq < first) &&
	     !atomic_compare_exchange_weak(&fs->first_lseq, &first, e->lseq);)
		;
	for (uint64_t last = atomic_load(&fs->last_lseq);
	     e->lseq > last &&
	     !atomic_compare_exchange_weak(&fs->last_lseq, &last, e->lseq);)
		;
	if (fs->wb)
		vs_wb_kick(fs->wb);
	return 0;
}

int fsw_content(struct vs_fs *fs, struct vs_inode *in)
{
	char path[VS_PATH_MAX + 1];
	int r, fd;

	if (in->fd >= 0 || in->wfd >= 0 || !in->hash[0])
		return 0;
	r = path_of(fs, in, path, sizeof(path));
	if (r < 0)
		snprintf(path, sizeof(path), "(ino %llu)",
			 (unsigned long long)in->ino);
	r = vs_content_open(fs->cfg.content, in->hash, in->size, path, &fd);
	if (fs_fds_out(r) && fs_fds_reclaim(fs, in))
		r = vs_content_open(fs->cfg.content, in->hash, in->size, path,
				    &fd);
	if (r == 0)
		inode_content_set(in, fd);
	return r;
}

/* The bytes free on the cache dir's volume (0 if it cannot be told). */
static uint64_t volume_room(struct vs_fs *fs)
{
	struct statvfs sv;

	return fstatvfs(fs->cfg.work_fd, &sv) == 0
		   ? (uint64_t)sv.f_bavail * sv.f_frsize
		   : 0;
}

/* Room for working copies in memory (see FSW_WMEM_MIN_FREE)? */
static bool wmem_room(struct vs_fs *fs)
{
	return volume_room(fs) >= FSW_WMEM_MIN_FREE;
}

/* A new, empty working copy: in memory (a memfd: making one costs no
 * inode on the cache dir's file system, whose allocator can take a
 * millisecond per file) or, failing that, an O_TMPFILE. *wmem tells
 * which. An fd or -errno. */
static int working_copy_open(struct vs_fs *fs, bool *wmem)
{
	int fd = wmem_room(fs) ? memfd_create("vsync-wc", MFD_CLOEXEC) : -1;

	*wmem = fd >= 0;
	if (fd < 0)
		fd = openat(fs->cfg.work_fd, ".",
			    O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	return fd < 0 ? -errno : fd;
}

/* working_copy_open, once more when out of fds and fs_fds_reclaim made
 * room (as every open of the mount's: fsw_content, local.c open_room) */
static int working_copy_new(struct vs_fs *fs, bool *wmem)
{
	int fd = working_copy_open(fs, wmem);

	if (fs_fds_out(fd) && fs_fds_reclaim(fs, NULL))
		fd = working_copy_open(fs, wmem);
	return fd;
}

/*
 * Copy all of @src, from its offset 0, to new file @dst, at its offset 0:
 * copy_file_range (a reflink or a copy in the kernel on one file system),
 * else sendfile (across file systems, where copy_file_range says EXDEV:
 * a memfd's bytes to the cache dir). 0 or -errno.
 */
static int copy_all(int dst, int src)
{
	loff_t in_off = 0, out_off = 0;
	off_t off = 0;
	bool range = true;

	for (;;) {
		ssize_t n;

		if (range) {
			n = copy_file_range(src, &in_off, dst, &out_off,
					    1 << 20, 0);
			if (n < 0 && in_off == 0 &&
			    (errno == EXDEV || errno == EINVAL ||
			     errno == EOPNOTSUPP || errno == ENOSYS)) {
				range = false;
				continue;
			}
		} else {
			n = sendfile(dst, src, &off, 1 << 20);
		}
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
	}
}

/* Move @in's working copy from memory to an O_TMPFILE in the cache dir
 * (it grows large). Called with fd_lock exclusive. 0 or -errno. */
static int working_copy_to_disk(struct vs_fs *fs, struct vs_inode *in)
{
	struct stat st;
	int fd, r = 0;

	fd = openat(fs->cfg.work_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (fstat(in->wfd, &st) < 0)
		r = -errno;
	if (r == 0)
		r = copy_all(fd, in->wfd);
	if (r == 0 && ftruncate(fd, st.st_size) < 0)
		r = -errno;
	if (r < 0) {
		close(fd);
		return r;
	}
	close(in->wfd);
	in->wfd = fd;
	in->wmem = false;
	return 0;
}

/* Give @in a working copy that may be written (with its current bytes
 * unless @empty): a frozen one (a cache object now) is copied. Called
 * with fd_lock exclusive. */
static int working_copy(struct vs_fs *fs, struct vs_inode *in, bool empty)
{
	int fd, r = 0, src;

	bool wmem = false;

	if (in->wfd >= 0 && !in->wfrozen)
		return empty && ftruncate(in->wfd, 0) < 0 ? -errno : 0;
	if (empty)
		fd = working_copy_new(fs, &wmem);
	else
		fd = openat(fs->cfg.work_fd, ".",
			    O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return empty ? fd : -errno;
	if (!empty) {
		if (in->wfd < 0)
			r = fsw_content(fs, in);
		src = in->wfd >= 0 ? in->wfd : in->fd;
		if (r == 0 && src >= 0)
			r = copy_all(fd, src); /* in->fd: a memfd, maybe */
		if (r < 0) {
			close(fd);
			return r;
		}
	}
	if (in->wfd >= 0)
		close(in->wfd); /* the frozen one: the object stays */
	in->wfd = fd;
	in->wfrozen = false;
	in->wmem = wmem;
	return 0;
}

int fsw_open_check(struct vs_fs *fs, struct vs_inode *in)
{
	bool replaced;

	if (in->kind == VS_KIND_DIR)
		return -EISDIR;
	/* the kernel's dentry still names an inode a remote edit has just
	 * replaced (the entry is invalidated right after): ESTALE makes it
	 * look the name up again and open the new one - writes to the old
	 * one would be saved nowhere */
	pthread_mutex_lock(&fs->table.lock);
	replaced = in->replaced;
	pthread_mutex_unlock(&fs->table.lock);
	return replaced ? -ESTALE : 0;
}

/* ---- the set of dirty files and the saver (fs_i.h) ---- */

/* The quiet period after which a file with no write is saved (ms). */
static int saver_quiet(const struct vs_fs *fs)
{
	return fs->cfg.save_quiet_ms > 0 ? fs->cfg.save_quiet_ms : 1;
}

static int64_t dirty_due(const struct vs_inode *in, int quiet);

/* Put @in in the set of dirty files, or note a new write of it: its
 * quiet period starts again (a longer one when the change left it
 * @empty). Called with in->fd_lock exclusive. */
static void dirty_mark_as(struct vs_fs *fs, struct vs_inode *in, bool empty,
			  bool stream)
{
	int64_t now = vs_mono_ms();

	pthread_mutex_lock(&fs->dirty_lock);
	if (!in->dirty_ms && fs->ndirty == fs->dirty_cap) {
		size_t c = fs->dirty_cap ? 2 * fs->dirty_cap : 64;
		struct vs_inode **d = realloc(fs->dirty, c * sizeof(*d));

		if (!d) {
			/* saved at its release, rename, fsync or the stop */
			pthread_mutex_unlock(&fs->dirty_lock);
			vs_warn("no memory to track inode %llu for saving",
				(unsigned long long)in->ino);
			return;
		}
		fs->dirty = d;
		fs->dirty_cap = c;
	}
	if (!in->dirty_ms) {
		pthread_mutex_lock(&fs->table.lock);
		in->nlookup++; /* pinned while in the set */
		pthread_mutex_unlock(&fs->table.lock);
		fs->dirty[fs->ndirty++] = in;
	}
	in->dirty_ms = now ? now : 1;
	in->dirty_empty = empty;
	in->dirty_stream = stream;
	in->dirty_now = false;
	/* the saver sleeps until the first file it knows is due: wake it if
	 * this one is due sooner - a first file, a new one while the others
	 * wait longer, one no longer empty (FSW_EMPTY_QUIET_MS: an
	 * open(O_TRUNC) and its write once waited a whole second) */
	if (dirty_due(in, saver_quiet(fs)) < fs->saver_wake_ms) {
		pthread_cond_signal(&fs->dirty_cond);
		fs->saver_wake_ms = 0; /* it looks at the set again */
	}
	pthread_mutex_unlock(&fs->dirty_lock);
}

/* dirty_mark_as() for anything but a write: no more bytes expected. */
static void dirty_mark(struct vs_fs *fs, struct vs_inode *in, bool empty)
{
	dirty_mark_as(fs, in, empty, false);
}

/* @in, whose write failed, is due for revert_locked at once (its writer
 * closed it), not after FSW_FAILED_QUIET_MS. fd_lock exclusive. */
static void dirty_mark_revert(struct vs_fs *fs, struct vs_inode *in)
{
	dirty_mark(fs, in, false);
	pthread_mutex_lock(&fs->dirty_lock);
	if (in->dirty_ms) {
		in->dirty_now = true;
		pthread_cond_signal(&fs->dirty_cond);
		fs->saver_wake_ms = 0;
	}
	pthread_mutex_unlock(&fs->dirty_lock);
}

/* @in back in the set, due again after @ms at least, or sooner once the
 * cache volume has more room than @room (saver_main; UINT64_MAX: never
 * sooner). fd_lock exclusive. */
static void dirty_mark_after(struct vs_fs *fs, struct vs_inode *in, uint32_t ms,
			     uint64_t room)
{
	pthread_mutex_lock(&fs->dirty_lock);
	in->save_retry_ms = ms;
	in->save_retry_room = room;
	pthread_mutex_unlock(&fs->dirty_lock);
	dirty_mark(fs, in, false);
}

/* @in's save (or revert) just failed (saver_save): back in the set, due
 * again after a backoff (FSW_RETRY_MIN_MS, doubled at each failure up to
 * FSW_RETRY_MAX_MS), or sooner once the volume has more room than now
 * (saver_main). No RELEASE may come (no-open mode), and no write: without
 * this the change would wait for the unmount. fd_lock exclusive. */
static void dirty_mark_retry(struct vs_fs *fs, struct vs_inode *in)
{
	dirty_mark_after(fs, in,
			 !in->save_retry_ms ? FSW_RETRY_MIN_MS
			 : in->save_retry_ms >= FSW_RETRY_MAX_MS / 2
			     ? FSW_RETRY_MAX_MS
			     : 2 * in->save_retry_ms,
			 volume_room(fs));
}

/* @in's save was refused where the file stays a local change (its path
 * a directory in PostgreSQL: vs_fs_committed): back in the set, due
 * again after its refusal backoff (vs_backoff, in its save state, which
 * a snapshot does not reset, unlike save_retry_ms: FSW_RETRY_MIN_MS
 * doubled at each refusal up to FSW_RETRY_MAX_MS), never sooner (room on
 * the volume changes nothing). The wait (ms). fd_lock exclusive, a
 * pending op just cleared (so it has a save state). */
static int dirty_mark_refused(struct vs_fs *fs, struct vs_inode *in)
{
	struct vs_backoff *b = &inode_save(in)->refused;
	int ms;

	if (!b->next_ms)
		vs_backoff_init(b, FSW_RETRY_MIN_MS, FSW_RETRY_MAX_MS);
	ms = vs_backoff_next(b);
	dirty_mark_after(fs, in, (uint32_t)ms, UINT64_MAX);
	return ms;
}

/* @in was saved (or reverted): no backoff for its next save. fd_lock
 * exclusive. */
static void dirty_retry_clear(struct vs_fs *fs, struct vs_inode *in)
{
	if (!in->save_retry_ms)
		return;
	pthread_mutex_lock(&fs->dirty_lock);
	in->save_retry_ms = 0;
	pthread_mutex_unlock(&fs->dirty_lock);
}

/* Take @in out of the set (dirty_lock held): it is unpinned by the
 * caller once no lock is held. */
static void dirty_remove_locked(struct vs_fs *fs, struct vs_inode *in)
{
	for (size_t i = 0; i < fs->ndirty; i++) {
		if (fs->dirty[i] == in) {
			fs->dirty[i] = fs->dirty[--fs->ndirty];
			break;
		}
	}
	in->dirty_ms = 0;
	in->dirty_empty = false;
	in->dirty_stream = false;
	in->dirty_now = false;
}

/* When @in (in the set) is due for saving, for quiet period @quiet.
 * dirty_lock held. */
static int64_t dirty_due(const struct vs_inode *in, int quiet)
{
	int wait = in->dirty_empty && quiet < FSW_EMPTY_QUIET_MS
		       ? FSW_EMPTY_QUIET_MS
		       : quiet;

	if (in->dirty_now)
		return in->dirty_ms;
	if (in->dirty_stream && wait < FSW_STREAM_QUIET_MS)
		wait = FSW_STREAM_QUIET_MS;

	if (atomic_load(&in->wfailed) && wait < FSW_FAILED_QUIET_MS)
		wait = FSW_FAILED_QUIET_MS;
	if ((int64_t)in->save_retry_ms > wait)
		wait = (int)in->save_retry_ms; /* its save failed */

	return in->dirty_ms + wait;
}

void fsw_removed_unpin(struct vs_fs *fs, struct vs_inode *in)
{
	pthread_mutex_lock(&fs->dirty_lock);
	if (in->dirty_ms) {
		in->dirty_now = true;
		pthread_cond_signal(&fs->dirty_cond);
		fs->saver_wake_ms = 0;
	}
	pthread_mutex_unlock(&fs->dirty_lock);
	inode_unpin(&fs->table, in);
}

struct vs_inode *fsw_removed_pin(struct vs_inode *in)
{
	if (!in || in->kind != VS_KIND_FILE || !in->nlookup)
		return NULL; /* neither the kernel nor the set holds it */
	in->nlookup++;
	return in;
}

static int snapshot_locked(struct vs_fs *fs, struct vs_inode *in, bool force,
			   uint64_t *lseq);
static int revert_locked(struct vs_fs *fs, struct vs_inode *in, bool *inval);

/*
 * Save @in if it is still quiet: under its fd_lock no write can come
 * between the look and the snapshot, so what is saved is the file as of
 * its quiet point. @in is pinned by the set until taken out of it here.
 * A file whose write failed is put back to its saved version instead
 * (revert_locked; it is due after FSW_FAILED_QUIET_MS), or, never saved,
 * made empty and saved so. A save or revert that cannot be done now is
 * tried again later (dirty_mark_retry).
 */
static void saver_save(struct vs_fs *fs, struct vs_inode *in, int quiet)
{
	bool due, removed, inval = false;
	uint64_t lseq;
	int r = 0;

	inode_fd_wrlock(&fs->table, in);
	pthread_mutex_lock(&fs->dirty_lock);
	due = in->dirty_ms && dirty_due(in, quiet) <= vs_mono_ms();
	if (due)
		dirty_remove_locked(fs, in);
	pthread_mutex_unlock(&fs->dirty_lock);
	if (due && in->wfailed) {
		/* a removed file is not put back (fsw_removed_unpin) */
		pthread_mutex_lock(&fs->table.lock);
		removed = in->removed;
		pthread_mutex_unlock(&fs->table.lock);
		if (!removed)
			r = revert_locked(fs, in, &inval);
		/* a file never saved, now empty as created: saved (a file
		 * reverted to a version has nothing to save) */
		if (r == 0 && !in->wfailed && in->wgen != in->jgen)
			r = snapshot_locked(fs, in, false, &lseq); /* logs */
	} else if (due) {
		/* (a removed file: snapshot_locked saves nothing) */
		r = snapshot_locked(fs, in, false, &lseq); /* logs */
	}
	if (r < 0)
		dirty_mark_retry(fs, in); /* no room, backend down: later */
	else if (due)
		dirty_retry_clear(fs, in);
	inode_fd_unlock(&fs->table, in);
	if (inval)
		fs_inval_inode(fs, in->ino);
	if (due)
		inode_unpin(&fs->table, in);
}

static void *saver_main(void *arg)
{
	struct vs_fs *fs = arg;
	int quiet = saver_quiet(fs);
	struct vs_inode **due = NULL;
	size_t ndue_cap = 0;

	pthread_setname_np(pthread_self(), "vs-saver");
	pthread_mutex_lock(&fs->dirty_lock);
	while (!fs->saver_stop) {
		int64_t now = vs_mono_ms(), next = INT64_MAX;
		uint64_t room = UINT64_MAX; /* volume_room(), once if needed */
		size_t ndue = 0;

		if (ndue_cap < fs->ndirty) {
			struct vs_inode **d =
			    realloc(due, fs->ndirty * sizeof(*d));

			if (d) {
				due = d;
				ndue_cap = fs->ndirty;
			}
		}
		for (size_t i = 0; i < fs->ndirty; i++) {
			struct vs_inode *in = fs->dirty[i];
			int64_t at = dirty_due(in, quiet);

			if (at > now && in->save_retry_ms &&
			    in->save_retry_room != UINT64_MAX) {
				/* its save failed: once a second, due at once
				 * if the volume has more room than then */
				if (now >= in->dirty_ms + FSW_RETRY_MIN_MS) {
					if (room == UINT64_MAX)
						room = volume_room(fs);
					if (room > in->save_retry_room) {
						in->dirty_now = true;
						at = in->dirty_ms;
					}
				}
				if (at > now && now + FSW_RETRY_MIN_MS < next)
					next = now + FSW_RETRY_MIN_MS;
			}
			if (at <= now && ndue < ndue_cap)
				due[ndue++] = in;
			else if (at < next)
				next = at;
		}
		if (ndue) {
			/* (still in the set, so pinned, until saved) */
			pthread_mutex_unlock(&fs->dirty_lock);
			for (size_t i = 0; i < ndue; i++)
				saver_save(fs, due[i], quiet);
			pthread_mutex_lock(&fs->dirty_lock);
		} else if (next == INT64_MAX) {
			fs->saver_wake_ms = INT64_MAX;
			pthread_cond_wait(&fs->dirty_cond, &fs->dirty_lock);
			fs->saver_wake_ms = 0;
		} else {
			struct timespec ts;

			vs_mono_ts(&ts, next);
			fs->saver_wake_ms = next;
			pthread_cond_timedwait(&fs->dirty_cond, &fs->dirty_lock,
					       &ts);
			fs->saver_wake_ms = 0;
		}
	}
	pthread_mutex_unlock(&fs->dirty_lock);
	free(due);
	return NULL;
}

int fsw_saver_start(struct vs_fs *fs)
{
	int r;

	if (!fs->cfg.journal || fs->saver_running)
		return 0;
	fs->saver_stop = false;
	r = pthread_create(&fs->saver, NULL, saver_main, fs);
	if (r != 0) {
		vs_error("cannot start the saver thread: %s", strerror(r));
		return -r;
	}
	fs->saver_running = true;
	return 0;
}

void fsw_saver_stop(struct vs_fs *fs)
{
	if (!fs->saver_running)
		return;
	pthread_mutex_lock(&fs->dirty_lock);
	fs->saver_stop = true;
	pthread_cond_signal(&fs->dirty_cond);
	pthread_mutex_unlock(&fs->dirty_lock);
	pthread_join(fs->saver, NULL);
	fs->saver_running = false;
}

int fsw_write(struct vs_fs *fs, struct vs_inode *in, struct fuse_bufvec *buf,
	      off_t off, size_t *written)
{
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(buf));
	ssize_t n;
	int r = 0;

	inode_fd_wrlock(&fs->table, in);
	if (fs->cfg.max_file_size &&
	    (uint64_t)off + fuse_buf_size(buf) > fs->cfg.max_file_size) {
		vs_warn("refusing a write past the %llu-byte limit (inode "
			"%llu)",
			(unsigned long long)fs->cfg.max_file_size,
			(unsigned long long)in->ino);
		r = -EFBIG;
	} else if (in->wfd < 0 || in->wfrozen) {
		r = working_copy(fs, in, false);
	}
	if (r == 0 && in->wmem &&
	    (off + (off_t)fuse_buf_size(buf) > FSW_WMEM_MAX || !wmem_room(fs)))
		r = working_copy_to_disk(fs, in);
	if (r == 0) {
		out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		out.buf[0].fd = in->wfd;
		out.buf[0].pos = off;
		n = fuse_buf_copy(&out, buf, 0);
		if (vs_cache_no_room((int)n) && vs_cache_reclaim(fs->cfg.cache))
			n = fuse_buf_copy(&out, buf, 0);
		if (n < 0) {
			r = (int)n;
		} else {
			uint64_t end = (uint64_t)off + (uint64_t)n;
			bool stream;

			*written = (size_t)n;
			in->wgen++;
			pthread_mutex_lock(&fs->table.lock);
			if (end > in->size)
				in->size = end;
			stream = n > 0 && end == in->size &&
				 end % FSW_STREAM_UNIT == 0;
			in->mtime_ns = vs_wall_ns();
			pthread_mutex_unlock(&fs->table.lock);
			dirty_mark_as(fs, in, false, stream);
		}
	}
	if (r < 0 && !in->wfailed) {
		/* what is in the working copy now is not what the writer
		 * meant: it is not saved until rewritten */
		in->wfailed = true;
		vs_warn("a write failed (%s): inode %llu is not saved; once "
			"its writer is done (closed, or quiet) it goes back to "
			"its last saved version, unless rewritten whole first",
			strerror(-r), (unsigned long long)in->ino);
	}
	if (r < 0)
		dirty_mark(fs, in, false); /* quiet from here: revert_locked */
	inode_fd_unlock(&fs->table, in);
	return r;
}

/*
 * Snapshot the working copy of @in and journal it as a WRITE (nothing to
 * do if it has not changed since the last snapshot). *lseq gets the entry
 * to wait for (0 if none is pending). Called with in->fd_lock exclusive.
 */
static int snapshot_locked(struct vs_fs *fs, struct vs_inode *in, bool force,
			   uint64_t *lseq)
{
	struct vs_jentry *e;
	struct vs_inode_save *save;
	char *buf = NULL;
	uint64_t gen;
	size_t len = 0;
	bool pinned = false, removed;
	int r = 0;

	*lseq = inode_save_r(in)->pending_lseq;
	if ((in->wgen == in->jgen && !force) || in->kind != VS_KIND_FILE)
		return 0;
	if (in->wfailed)
		return -ECANCELED; /* nothing half-written is committed */
	pthread_mutex_lock(&fs->table.lock);
	removed = in->removed;
	/* where the save is recorded (saved_hash ...), had before anything
	 * is journaled */
	save = removed ? NULL : inode_save_get(in);
	pthread_mutex_unlock(&fs->table.lock);
	if (removed)
		return 0; /* unlinked: nothing to save, and no object made
			     (checked again below: it may be meanwhile) */
	if (!save)
		return -ENOMEM;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	if (in->wfd < 0)
		r = working_copy(fs, in, false); /* e.g. a chmod: same bytes */
	if (r == 0 && in->wmem) {
		/* a small copy in memory: read, hashed and stored at once */
		r = vs_pread_fd_whole(&buf, &len, in->wfd,
				      (size_t)FSW_WMEM_MAX);
	} else if (r == 0) {
		/* a file of any size: hashed and linked (or copied) from its
		 * fd, never read whole into memory */
		struct stat st;

		if (fstat(in->wfd, &st) < 0)
			r = -errno;
		else
			len = (size_t)st.st_size;
	}
	gen = in->wgen;
	if (r == 0) {
		e->op = VS_JOP_WRITE;
		/* a chmod changes mode under the table lock alone */
		pthread_mutex_lock(&fs->table.lock);
		e->mode = in->mode & 07777;
		pthread_mutex_unlock(&fs->table.lock);
		e->size = len;
		/* version -1: unknown here (moved with its directory); a
		 * save still pending was one of the old path */
		if (save->pending_op[0] && in->version >= 0)
			memcpy(e->after_op, save->pending_op,
			       sizeof(e->after_op));
		e->base_version = in->version;
	}
	/* the object the entry names (made durable with it by the journal's
	 * sync): the working copy itself when it can be linked into the
	 * cache - no copy, no new inode; it is frozen then (the next write
	 * makes a new one) */
	if (r == 0) {
		r = in->wmem ? vs_journal_put_content(fs->cfg.cache, buf, len,
						      -1, e->hash)
			     : vs_journal_put_content_fd(fs->cfg.cache, in->wfd,
							 !in->wfrozen, e->hash);
		if (r == 1)
			in->wfrozen = true;
		pinned = r >= 0; /* kept from the evictor until journaled */
		r = r < 0 ? r : 0;
	}
	if (r == 0 && in->wmem) {
		/* stored: the object replaces the copy in memory (frozen,
		 * read-only: the next write copies it) */
		int fd;

		if (vs_cache_open_unchecked(fs->cfg.cache, e->hash, &fd) == 0) {
			close(in->wfd);
			in->wfd = fd;
			in->wmem = false;
			in->wfrozen = true;
		}
	}
	if (r == 0) {
		/* the path it has now, journaled before the tree moves on */
		pthread_mutex_lock(&fs->ns_lock);
		r = path_of(fs, in, e->path, sizeof(e->path));
		if (r == 0)
			r = vs_journal_reserve(fs->cfg.journal, e);
		pthread_mutex_unlock(&fs->ns_lock);
		/* its place is taken: written outside ns_lock */
		if (r == 0)
			r = journal(fs, e);
	}
	if (pinned) /* journaled (the journal keeps it now) or given up */
		vs_cache_unpin(fs->cfg.cache, e->hash);
	if (r == 0) {
		/* journaled (durable with the committer's next sync, or
		 * fsync's): the next save is chained after it */
		in->jgen = gen;
		pthread_mutex_lock(&fs->table.lock);
		/* (chained after a save: based on what that one is; after a
		 * rename: on the version it makes, with hash's bytes) */
		if (!save->pending_op[0])
			memcpy(save->base_hash, inode_committed_hash(in),
			       sizeof(save->base_hash));
		else if (save->pending_moved)
			save->base_hash[0] = '\0';
		memcpy(save->saved_hash, e->hash, sizeof(save->saved_hash));
		save->saved_size = e->size;
		/* (cannot fail: it has its save state) */
		(void)inode_pending_set(&fs->table, in, e->op_id, e->lseq);
		pthread_mutex_unlock(&fs->table.lock);
		*lseq = e->lseq;
		dirty_retry_clear(fs, in); /* saved (by fsync, a rename ...) */
	}
	if (r < 0 && r != -ENOENT)
		vs_warn("cannot save local changes of inode %llu%s%s%s: %s",
			(unsigned long long)in->ino, e->path[0] ? " ('" : "",
			e->path, e->path[0] ? "')" : "", strerror(-r));
	if (r == -ENOENT && in->replaced)
		vs_error("writes made through a descriptor opened before a "
			 "remote edit replaced the file (inode %llu) are not "
			 "saved",
			 (unsigned long long)in->ino);
	free(buf);
	free(e);
	return r == -ENOENT ? 0 : r; /* unlinked meanwhile: nothing to save */
}

static int snapshot(struct vs_fs *fs, struct vs_inode *in, bool force,
		    uint64_t *lseq)
{
	int r;

	inode_fd_wrlock(&fs->table, in);
	r = snapshot_locked(fs, in, force, lseq);
	inode_fd_unlock(&fs->table, in);
	return r;
}

/* revert_locked of a file never saved: a new, empty working copy (the
 * failed one dropped, which frees its space), size 0, and a change to
 * save (wgen): saver_save saves it at once, so that the file its
 * creation made reaches PostgreSQL. fd_lock exclusive. */
static int revert_to_created(struct vs_fs *fs, struct vs_inode *in,
			     const char *path, bool *inval)
{
	bool wmem;
	int fd = working_copy_new(fs, &wmem), old_fd = in->fd, wfd = in->wfd;

	if (fd < 0)
		return fd; /* no room even for that: tried again later */
	in->wfd = fd;
	in->wfrozen = false;
	in->wmem = wmem;
	in->wfailed = false;
	in->wgen++; /* the empty file is a change to save */
	pthread_mutex_lock(&fs->table.lock);
	in->size = 0;
	in->mtime_ns = vs_wall_ns();
	pthread_mutex_unlock(&fs->table.lock);
	inode_content_set(in, -1); /* (none: it has no version) */
	if (old_fd >= 0)
		close(old_fd);
	if (wfd >= 0)
		close(wfd);
	*inval = true;
	vs_metrics_writeback(VS_WB_REVERTED);
	vs_warn("'%s': a write to it failed; its changes are dropped and, "
		"never saved before, it is now empty, as created",
		path);
	return 0;
}

/*
 * A full disk. A write that failed (ENOSPC, EFBIG, EIO ...) left the
 * working copy of @in with bytes the writer did not mean (wfailed), and
 * the writer was told. Once the writer is done with the file (its last
 * close: fsw_save makes it due at once; with no RELEASE from the kernel,
 * FSW_FAILED_QUIET_MS without a write), the saver thread (saver_save:
 * never a request handler), unless it rewrote it whole since (O_TRUNC,
 * truncate(2) to 0),
 * the file goes back to its last saved version: the working copy is
 * dropped (which frees its space), the content of @in->hash is opened
 * again (from the cache, else the backends) and the kernel's pages and
 * attributes are invalidated. Nothing is journaled, so a half-written
 * file never reaches PostgreSQL, and the file is clean again: remote
 * edits of it apply as to any other. A remote version that came while
 * it was diverged (left unapplied: update.c records it as theirs) is
 * what it goes back to instead, unless a save of it is still to be
 * committed (the committer merges with that version then). A file
 * never saved (made here, no save of it journaled, no remote version)
 * goes back to the empty file its creation made (revert_to_created:
 * then saved, so PostgreSQL has the file, as a local disk keeps a file
 * whose write failed; the creation is kept, the failed writes dropped).
 * If the version cannot be had now (backend down, no room in the cache),
 * the file stays diverged until its next save point. fd_lock exclusive;
 * *@inval: the kernel's caches of @in must be dropped (after the lock).
 */
static int revert_locked(struct vs_fs *fs, struct vs_inode *in, bool *inval)
{
	char path[VS_PATH_MAX + 1], hash[VS_HASH_HEX_LEN + 1];
	struct vs_manifest_entry theirs = {.version = 0};
	const struct vs_inode_save *save;
	struct vs_inode_save *clear;
	struct stat st;
	bool saved;
	int r, fd = in->fd, wfd = -1, old_fd;

	if (!in->wfailed)
		return 0;
	pthread_mutex_lock(&fs->table.lock);
	save = inode_save_r(in);
	if (save->theirs_version > in->version && !save->pending_op[0]) {
		theirs.version = save->theirs_version;
		theirs.mtime_ns = save->theirs_mtime_ns;
		theirs.size = save->theirs_size;
		theirs.mode = save->theirs_mode;
		memcpy(theirs.hash, save->theirs_hash, sizeof(theirs.hash));
	}
	/* the newest save, not the bytes before it, unless theirs */
	saved = !theirs.version && save->saved_hash[0];
	memcpy(hash,
	       theirs.version ? theirs.hash
	       : saved	      ? save->saved_hash
			      : in->hash,
	       sizeof(hash));
	pthread_mutex_unlock(&fs->table.lock);
	if (path_of(fs, in, path, sizeof(path)) < 0)
		snprintf(path, sizeof(path), "(ino %llu)",
			 (unsigned long long)in->ino);
	if (!hash[0])
		return revert_to_created(fs, in, path, inval);
	if (fd < 0 || theirs.version || saved) {
		r = vs_content_open(fs->cfg.content, hash,
				    theirs.version ? theirs.size
				    : saved	   ? save->saved_size
						   : in->size,
				    path, &fd);
		if (r < 0)
			return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		if (fd != in->fd)
			close(fd);
		return r;
	}
	old_fd = in->fd;
	wfd = in->wfd;
	in->wfd = -1;
	in->wfrozen = false;
	in->wmem = false;
	in->jgen = in->wgen; /* nothing to save */
	in->wfailed = false;
	pthread_mutex_lock(&fs->table.lock);
	if (theirs.version) {
		memcpy(in->hash, theirs.hash, sizeof(in->hash));
		in->version = theirs.version;
		in->mode = theirs.mode;
	} else if (saved) {
		memcpy(in->hash, save->saved_hash, sizeof(in->hash));
	}
	clear = inode_save(in); /* (none: both read as 0 already) */
	if (clear) {
		clear->saved_hash[0] = '\0';
		clear->theirs_version = 0;
	}
	in->size = (uint64_t)st.st_size;
	in->mtime_ns = theirs.version ? theirs.mtime_ns : vs_wall_ns();
	pthread_mutex_unlock(&fs->table.lock);
	/* after the size: a memfd is counted by the content's, not by the
	 * failed working copy's */
	inode_content_set(in, fd);
	if (old_fd >= 0 && old_fd != fd)
		close(old_fd);
	if (wfd >= 0)
		close(wfd);
	*inval = true;
	vs_metrics_writeback(VS_WB_REVERTED);
	if (theirs.version) {
		/* as PostgreSQL has it now: no longer diverged (the conflict
		 * marked when the version was left unapplied included) */
		vs_status_saved(path, NULL, 0, false);
		vs_warn("'%s': a write to it failed; its changes are dropped "
			"and it has the version committed meanwhile (v%lld)",
			path, (long long)theirs.version);
	} else {
		vs_warn("'%s': a write to it failed; its changes are dropped "
			"and it is back to its last saved version",
			path);
	}
	return 0;
}

int fsw_save(struct vs_fs *fs, struct vs_inode *in)
{
	uint64_t lseq;
	int r = snapshot(fs, in, false, &lseq);

	if (r == -ECANCELED) {
		/* a failed write was reported by write(2): close() does not
		 * report it again. Its writer is done with it: the saver puts
		 * it back now (revert_locked), off the request path, since
		 * that may fetch from the backends and notifies the kernel */
		inode_fd_wrlock(&fs->table, in);
		if (in->wfailed)
			dirty_mark_revert(fs, in);
		inode_fd_unlock(&fs->table, in);
		r = 0;
	}
	return r;
}

int fsw_fsync(struct vs_fs *fs, struct vs_inode *in)
{
	uint64_t lseq, size;
	int r = snapshot(fs, in, false, &lseq);

	if (r == -ECANCELED)
		return -EIO; /* a failed write: not saved */
	if (r < 0 || !lseq)
		return r;
	if (!fs->wb)
		return -EIO;
	pthread_mutex_lock(&fs->table.lock);
	size = in->size;
	pthread_mutex_unlock(&fs->table.lock);
	r = vs_wb_wait(fs->wb, lseq,
		       vs_size_timeout_ms(FSW_FSYNC_TIMEOUT_MS, size));
	if (r < 0)
		vs_warn("fsync: change not committed: %s", strerror(-r));
	return r < 0 ? -EIO : 0;
}

int fsw_fsyncdir(struct vs_fs *fs)
{
	/* the names made, removed and moved (mkdir, unlink, rename ...)
	 * are journal entries like saves: committed in order, so waiting
	 * for the newest covers them all */
	uint64_t lseq = atomic_load(&fs->last_lseq);
	int r;

	if (!lseq)
		return 0;
	if (!fs->wb)
		return -EIO;
	r = vs_wb_wait(fs->wb, lseq, FSW_FSYNC_TIMEOUT_MS);
	if (r < 0)
		vs_warn("fsync of a directory: changes not committed: %s",
			strerror(-r));
	return r < 0 ? -EIO : 0;
}

/*
 * A chmod of a file whose save is still pending (written, not yet quiet)
 * goes with that save, which takes the mode at its snapshot: one version
 * rather than two, and no save in the caller's system call. That is
 * tar's and cp's pattern: create, write, fchmod. True when it did; a
 * clean file, one being saved now or one whose write failed is saved at
 * once by the caller, as before.
 */
static bool mode_joins_save(struct vs_fs *fs, struct vs_inode *in)
{
	bool pending, empty;

	inode_fd_wrlock(&fs->table, in);
	pthread_mutex_lock(&fs->dirty_lock);
	/* a write not yet snapshotted: the saver's snapshot will be made */
	pending = in->dirty_ms && !in->wfailed && in->wgen != in->jgen;
	empty = in->dirty_empty;
	pthread_mutex_unlock(&fs->dirty_lock);
	if (pending)
		dirty_mark(fs, in, empty);
	inode_fd_unlock(&fs->table, in);
	return pending;
}

int fsw_setattr(struct vs_fs *fs, struct vs_inode *in, const struct stat *attr,
		int valid)
{
	uint64_t lseq;
	int r = 0;

	if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))
		return -EPERM; /* synced files have no owner to change */
	if (valid & FUSE_SET_ATTR_SIZE) {
		if (in->kind != VS_KIND_FILE)
			return -EISDIR;
		if (fs->cfg.max_file_size &&
		    (uint64_t)attr->st_size > fs->cfg.max_file_size)
			return -EFBIG;
		inode_fd_wrlock(&fs->table, in);
		r = working_copy(fs, in, attr->st_size == 0);
		if (r == 0 && in->wmem && attr->st_size > FSW_WMEM_MAX)
			r = working_copy_to_disk(fs, in);
		if (r == 0 && ftruncate(in->wfd, attr->st_size) < 0)
			r = -errno;
		if (r == 0) {
			/* truncated to 0, the file is rewritten whole: the
			 * writer chooses all its bytes again. Any other size
			 * keeps what the failed write left (revert_locked) */
			if (attr->st_size == 0)
				in->wfailed = false;
			in->wgen++;
			pthread_mutex_lock(&fs->table.lock);
			in->size = (uint64_t)attr->st_size;
			in->mtime_ns = vs_wall_ns();
			pthread_mutex_unlock(&fs->table.lock);
			/* saved when quiet (an open's O_TRUNC is followed by
			 * its writes) */
			dirty_mark(fs, in, attr->st_size == 0);
		}
		inode_fd_unlock(&fs->table, in);
		if (r < 0)
			return r;
	}
	pthread_mutex_lock(&fs->table.lock);
	if (valid & FUSE_SET_ATTR_MODE)
		in->mode = attr->st_mode & 07777;
	if (valid & FUSE_SET_ATTR_MTIME_NOW)
		in->mtime_ns = vs_wall_ns();
	else if (valid & FUSE_SET_ATTR_MTIME)
		in->mtime_ns = (int64_t)attr->st_mtim.tv_sec * 1000000000 +
			       attr->st_mtim.tv_nsec;
	if (valid & FUSE_SET_ATTR_ATIME_NOW) {
		in->atime_ns = vs_wall_ns();
		in->atime_set = true;
	} else if (valid & FUSE_SET_ATTR_ATIME) {
		in->atime_ns = (int64_t)attr->st_atim.tv_sec * 1000000000 +
			       attr->st_atim.tv_nsec;
		in->atime_set = true;
	}
	pthread_mutex_unlock(&fs->table.lock);
	/* a new mode is a change to commit; times are local only */
	if ((valid & FUSE_SET_ATTR_MODE) && in->kind == VS_KIND_FILE &&
	    !mode_joins_save(fs, in))
		r = snapshot(fs, in, true, &lseq);
	return r == -ECANCELED ? 0 : r; /* saved with the next good save */
}

/* Journal an entry about @path (mkdir, symlink, delete, rename), based on
 * @base_version (-1: none); its op id and lseq into @op_out and @lseq_out
 * when not NULL. */
static int journal_path(struct vs_fs *fs, enum vs_jop op, const char *path,
			const char *old_path, const char *target, uint32_t mode,
			int64_t base_version, int64_t seen_seq,
			char op_out[VS_UUID_BUFSZ], uint64_t *lseq_out)
{
	struct vs_jentry *e = calloc(1, sizeof(*e));
	int r;

	if (!e)
		return -ENOMEM;
	e->op = op;
	e->base_version = base_version;
	e->seen_seq = seen_seq;
	e->mode = mode & 07777;
	snprintf(e->path, sizeof(e->path), "%s", path);
	if (old_path)
		snprintf(e->old_path, sizeof(e->old_path), "%s", old_path);
	if (target)
		snprintf(e->target, sizeof(e->target), "%s", target);
	r = journal(fs, e);
	if (r == 0 && op_out)
		memcpy(op_out, e->op_id, sizeof(e->op_id));
	if (r == 0 && lseq_out)
		*lseq_out = e->lseq;
	free(e);
	return r;
}

int fsw_create(struct vs_fs *fs, struct vs_inode *parent, const char *name,
	       enum vs_kind kind, mode_t mode, const char *target,
	       struct vs_inode **out)
{
	char path[VS_PATH_MAX + 1], *link = NULL;
	struct vs_inode *in = NULL;
	bool wmem = false;
	int r, wfd = -1;

	if (kind == VS_KIND_FILE) {
		wfd = working_copy_new(fs, &wmem);
		if (wfd < 0)
			return wfd;
	} else if (kind == VS_KIND_SYMLINK && !(link = strdup(target))) {
		return -ENOMEM;
	}
	pthread_mutex_lock(&fs->ns_lock);
	pthread_mutex_lock(&fs->table.lock);
	if (inode_child_find(parent, name)) {
		r = -EEXIST;
		goto out_locked;
	}
	/* the path must fit before the inode exists */
	r = inode_path(parent, path, sizeof(path));
	if (r == 0 && strlen(path) + 1 + strlen(name) > VS_PATH_MAX)
		r = -ENAMETOOLONG;
	if (r == 0)
		r = inode_synced_child(&fs->table, parent, name, kind, &in);
	if (r < 0)
		goto out_locked;
	in->mode = mode & 07777;
	in->mtime_ns = vs_wall_ns();
	inode_dir_changed(parent, in->mtime_ns);
	in->version = 0; /* not in PostgreSQL yet */
	in->wfd = wfd;
	in->wmem = wmem;
	wfd = -1;
	if (kind == VS_KIND_SYMLINK) {
		in->target = link;
		link = NULL;
		in->size = strlen(target);
		in->mode = 0777;
		/* what PostgreSQL will say, so the change coming back from
		 * the stream is recognised as ours */
		vs_sha256_hex(in->hash, target, strlen(target));
	}
	in->nlookup++;
	r = inode_path(in, path, sizeof(path));
out_locked:
	pthread_mutex_unlock(&fs->table.lock);
	free(link);
	if (wfd >= 0)
		close(wfd);
	if (r == 0 && kind == VS_KIND_DIR)
		r = journal_path(fs, VS_JOP_MKDIR, path, NULL, NULL, mode, -1,
				 0, NULL, NULL);
	else if (r == 0 && kind == VS_KIND_SYMLINK)
		r = journal_path(fs, VS_JOP_SYMLINK, path, NULL, target, 0777,
				 -1, 0, NULL, NULL);
	else if (r == 0)
		in->wgen++; /* an empty file is a change too: saved when
			     * quiet, or at its release */
	if (r < 0 && in) {
		/* not journaled: it must not exist here either */
		pthread_mutex_lock(&fs->table.lock);
		if (inode_child_find(parent, name) == in)
			inode_synced_remove(&fs->table, in);
		inode_forget(&fs->table, in, 1);
		pthread_mutex_unlock(&fs->table.lock);
		in = NULL;
	}
	pthread_mutex_unlock(&fs->ns_lock);
	if (r == 0 && kind == VS_KIND_FILE) {
		inode_fd_wrlock(&fs->table, in);
		dirty_mark(fs, in, true);
		inode_fd_unlock(&fs->table, in);
	}
	*out = in;
	return r;
}

int fsw_remove(struct vs_fs *fs, struct vs_inode *parent, const char *name,
	       bool dir)
{
	char path[VS_PATH_MAX + 1];
	struct vs_inode *in, *gone = NULL;
	int r = 0;

	/* journaled first: if that fails (ENOSPC), nothing changed (the
	 * kernel holds the directory for the length of the unlink) */
	pthread_mutex_lock(&fs->ns_lock);
	pthread_mutex_lock(&fs->table.lock);
	in = inode_child_find(parent, name);
	r = inode_remove_check(in, dir);
	if (r == 0)
		r = inode_path(in, path, sizeof(path));
	pthread_mutex_unlock(&fs->table.lock);
	/* of what the mount has: someone else's change the updater takes
	 * up after this stays (vsync_delete's p_seen_seq) */
	if (r == 0)
		r = journal_path(fs, VS_JOP_DELETE, path, NULL, NULL, 0, -1,
				 atomic_load(&fs->seen_seq), NULL, NULL);
	if (r == 0) {
		/* what is there now: a remote edit may have put a new inode
		 * in its place meanwhile (the DELETE covers it too) */
		struct vs_inode *cur;

		pthread_mutex_lock(&fs->table.lock);
		cur = inode_child_find(parent, name);
		if (cur && cur->kind == in->kind && !cur->nchildren) {
			gone = fsw_removed_pin(cur);
			inode_synced_remove(&fs->table, cur);
		}
		inode_dir_changed(parent, vs_wall_ns());
		pthread_mutex_unlock(&fs->table.lock);
	}
	pthread_mutex_unlock(&fs->ns_lock);
	if (gone)
		fsw_removed_unpin(fs, gone);
	return r;
}

/* The length of the longest path under @in, relative to it with a
 * leading '/' ("/a/b": 4), 0 for a leaf. Table locked. */
static size_t subtree_len(const struct vs_inode *in)
{
	size_t max = 0;

	for (size_t i = 0; i < in->nchildren; i++) {
		const struct vs_inode *c = in->children[i];
		size_t len = 1 + strlen(c->name) + subtree_len(c);

		if (len > max)
			max = len;
	}
	return max;
}

/* Has PostgreSQL never had file @in (made here, nothing of it journaled,
 * no version of it known: what revert_locked makes empty)? fd_lock held. */
static bool never_saved(struct vs_fs *fs, struct vs_inode *in)
{
	const struct vs_inode_save *save;
	bool never;

	pthread_mutex_lock(&fs->table.lock);
	save = inode_save_r(in);
	never = in->version == 0 && !in->hash[0] && !save->pending_op[0] &&
		!save->saved_hash[0] && !save->theirs_version;
	pthread_mutex_unlock(&fs->table.lock);
	return never;
}

/* The version of file @in a rename of it journaled now moves from its
 * path, for the RENAME entry's base_version: its own, unless a save of it
 * is pending (then not known: -1). Table locked. */
static int64_t moved_from_version(const struct vs_inode *in)
{
	return in->kind == VS_KIND_FILE && in->version > 0 &&
		       !inode_save_r(in)->pending_op[0]
		   ? in->version
		   : -1;
}

int fsw_rename(struct vs_fs *fs, struct vs_inode *parent, const char *name,
	       struct vs_inode *newparent, const char *newname,
	       unsigned int flags)
{
	char from[VS_PATH_MAX + 1], to[VS_PATH_MAX + 1], op[VS_UUID_BUFSZ];
	struct vs_inode *in, *old, *file = NULL, *gone = NULL;
	struct vs_landed over = {0}; /* a file it replaces (version 0: none) */
	bool over_dir = false, unsaved = false;
	int64_t moved = -1; /* the version it moves (-1: not known) */
	uint64_t lseq;
	int r = 0;

	if (flags & ~RENAME_NOREPLACE)
		return -EINVAL; /* RENAME_EXCHANGE is not supported */
	/*
	 * A file is renamed under its fd_lock (the kernel holds the inode
	 * for the length of the rename), so that no snapshot of it comes
	 * between the move and the RENAME entry: its WRITE would name the
	 * new path ahead of the rename in the journal.
	 */
	pthread_mutex_lock(&fs->table.lock);
	in = inode_child_find(parent, name);
	if (in && in->kind != VS_KIND_DIR)
		file = in;
	pthread_mutex_unlock(&fs->table.lock);
	if (file) {
		inode_fd_wrlock(&fs->table, file);
		/* a rename is a commit point: what was written under the old
		 * name is saved there first (an editor's temp file renamed
		 * over the original right after close(), whose RELEASE may
		 * come later) */
		r = snapshot_locked(fs, file, false, &lseq);
		if (r == -ECANCELED) {
			/* a failed write: still not saved. If it is all the
			 * file ever had, PostgreSQL has no file to move */
			r = 0;
			unsaved = never_saved(fs, file);
		}
		if (r < 0) {
			inode_fd_unlock(&fs->table, file);
			return r;
		}
	}
	/* journaled first, then the tree changes: if journaling fails
	 * (ENOSPC), nothing moved (the kernel holds both directories for
	 * the length of the rename) */
	pthread_mutex_lock(&fs->ns_lock);
	pthread_mutex_lock(&fs->table.lock);
	in = inode_child_find(parent, name);
	old = inode_child_find(newparent, newname);
	if (!in) {
		r = -ENOENT;
		goto out;
	}
	if (in != file && (file || in->kind != VS_KIND_DIR)) {
		r = -EAGAIN; /* changed between the two looks: cannot be */
		goto out;
	}
	if (old == in)
		goto out;
	r = inode_rename_check(in, newparent, old, flags & RENAME_NOREPLACE);
	if (r == 0)
		r = inode_path(in, from, sizeof(from));
	/* the new path must fit before anything moves */
	if (r == 0)
		r = inode_path(newparent, to, sizeof(to));
	if (r == 0 && (strlen(to) + 1 + strlen(newname) > VS_PATH_MAX ||
		       strlen(to) + 1 + strlen(newname) >= sizeof(to)))
		r = -ENAMETOOLONG;
	if (r == 0) {
		size_t len = strlen(to);

		snprintf(to + len, sizeof(to) - len, "%s%s",
			 newparent != fs->table.root ? "/" : "", newname);
	}
	/* and every path under a directory: PostgreSQL would refuse the
	 * move for good (a limit a local disk does not have) */
	if (r == 0 && strlen(to) + subtree_len(in) > VS_PATH_MAX)
		r = -ENAMETOOLONG;
	if (r == 0 && old)
		over_dir = old->kind == VS_KIND_DIR;
	/* a committed file replaced: PostgreSQL's version of it is what
	 * the new path had before the rename (not known with an op of it
	 * pending) */
	if (r == 0 && old && old != in && old->kind == VS_KIND_FILE &&
	    old->version > 0 && !inode_save_r(old)->pending_op[0]) {
		over.version = old->version;
		over.mtime_ns = old->mtime_ns;
		over.mode = old->mode;
		memcpy(over.hash, inode_committed_hash(old), sizeof(over.hash));
	}
	/* where it is recorded (pending_op, over_version ...), had before
	 * anything is journaled */
	if (r == 0 && file && !unsaved && !inode_save_get(file))
		r = -ENOMEM;
	if (r == 0 && file)
		moved = moved_from_version(file);
out:
	pthread_mutex_unlock(&fs->table.lock);
	if (r < 0 || !in || old == in)
		goto unlock;
	/* PostgreSQL moves a directory only to a free path: the empty one
	 * replaced goes first. A file PostgreSQL never had (unsaved) moves
	 * in the tree alone: what it replaces is deleted there, and the file
	 * is saved at its new path once reverted (revert_locked: empty) */
	if (over_dir || (unsaved && old))
		r = journal_path(fs, VS_JOP_DELETE, to, NULL, NULL, 0, -1,
				 atomic_load(&fs->seen_seq), NULL, NULL);
	if (r == 0 && !unsaved)
		r = journal_path(fs, VS_JOP_RENAME, to, from, NULL, 0, moved, 0,
				 op, &lseq);
	if (r < 0)
		goto unlock;
	pthread_mutex_lock(&fs->table.lock);
	old = inode_child_find(newparent, newname);
	if (old && old != in) {
		gone = fsw_removed_pin(old);
		inode_synced_remove(&fs->table, old);
	}
	r = inode_synced_move(in, newparent, newname);
	if (r == 0) {
		int64_t now = vs_wall_ns();

		inode_dir_changed(parent, now);
		inode_dir_changed(newparent, now);
		in->ctime_ns = now; /* a rename changes the inode's status */
	}
	if (r == 0 && in->kind == VS_KIND_DIR)
		inode_forget_versions(in);
	pthread_mutex_unlock(&fs->table.lock);
	if (r < 0) {
		vs_error("rename of '%s' to '%s' is journaled but the tree "
			 "could not follow: %s",
			 from, to, strerror(-r));
		goto unlock;
	}
	if (file && !unsaved) {
		/* the next save of this file is based on the version the
		 * rename makes at the new path (not on one of the old path,
		 * nor unconditional): it names the rename as its after_op,
		 * and vs_fs_committed() takes that version. A save still
		 * pending under the old path is committed there first, and
		 * the rename moves it. */
		struct vs_inode_save *save = inode_save(file); /* had above */

		pthread_mutex_lock(&fs->table.lock);
		(void)inode_pending_set(&fs->table, file, op, lseq);
		save->pending_moved = lseq;
		save->over_version = over.version;
		save->over_mtime_ns = over.mtime_ns;
		save->over_mode = over.mode;
		memcpy(save->over_hash, over.hash, sizeof(save->over_hash));
		pthread_mutex_unlock(&fs->table.lock);
	}
unlock:
	pthread_mutex_unlock(&fs->ns_lock);
	if (file)
		inode_fd_unlock(&fs->table, file);
	if (gone)
		fsw_removed_unpin(fs, gone);
	return r;
}

/* ---- a restart: what is journaled, over the tree of the manifest */

/* Split @path into its parent directory (found or created) and last name. */
static int overlay_parent(struct vs_inode_table *t, const char *path,
			  struct vs_inode **dir, const char **name)
{
	char parent[VS_PATH_MAX + 1];
	const char *slash = strrchr(path, '/');

	*name = slash ? slash + 1 : path;
	*dir = t->root;
	if (!slash)
		return 0;
	snprintf(parent, sizeof(parent), "%.*s", (int)(slash - path), path);
	return inode_synced_at(t, parent, VS_KIND_DIR, dir);
}

/* Apply journal entry @e to the tree (table lock held). 0, 1 if it does
 * not fit the tree (left to the committer and the change coming back),
 * or -ENOMEM. */
static int overlay_apply(struct vs_inode_table *t, const struct vs_jentry *e)
{
	struct vs_inode *in = NULL, *dir, *old;
	const char *name;
	int r;

	switch (e->op) {
	case VS_JOP_WRITE:
	case VS_JOP_SYMLINK:
		r = inode_synced_at(t, e->path,
				    e->op == VS_JOP_WRITE ? VS_KIND_FILE
							  : VS_KIND_SYMLINK,
				    &in);
		if (r < 0)
			return r == -ENOMEM ? r : 1;
		if (e->op == VS_JOP_SYMLINK) {
			char *target = strdup(e->target);

			if (!target)
				return -ENOMEM;
			free(in->target);
			in->target = target;
			in->size = strlen(target);
			in->mode = 0777;
			vs_sha256_hex(in->hash, target, in->size);
			return 0;
		}
		memcpy(in->hash, e->hash, sizeof(in->hash));
		in->size = e->size;
		in->mode = e->mode & 07777;
		in->mtime_ns = vs_wall_ns();
		/* not committed: the next save chains after it, the updater
		 * leaves the file alone, the commit makes it clean */
		return inode_pending_set(t, in, e->op_id, e->lseq);
	case VS_JOP_MKDIR:
		r = inode_synced_at(t, e->path, VS_KIND_DIR, &in);
		if (r == 0)
			in->mode = e->mode & 07777;
		return r == -ENOMEM ? r : r < 0;
	case VS_JOP_DELETE:
		in = inode_lookup_path(t, e->path);
		if (!in || in == t->root)
			return !!in;
		if (inode_remove_check(in, in->kind == VS_KIND_DIR) < 0)
			return 1;
		inode_synced_remove(t, in);
		return 0;
	case VS_JOP_RENAME:
		in = inode_lookup_path(t, e->old_path);
		if (!in || in == t->root)
			return 1;
		r = overlay_parent(t, e->path, &dir, &name);
		if (r < 0)
			return r == -ENOMEM ? r : 1;
		old = inode_child_find(dir, name);
		if (old == in)
			return 0;
		if (inode_rename_check(in, dir, old, false) < 0)
			return 1;
		if (old)
			inode_synced_remove(t, old);
		r = inode_synced_move(in, dir, name);
		if (r == 0 && in->kind != VS_KIND_DIR)
			r = inode_pending_set(t, in, e->op_id, e->lseq);
		if (r == 0 && in->kind != VS_KIND_DIR) {
			inode_save(in)->pending_moved = e->lseq;
			inode_save(in)->over_version = 0; /* not known */
		}
		return r;
	}
	return 1;
}

struct overlay_ctx {
	struct vs_fs *fs;
	uint64_t first, last; /* lseqs applied */
	bool misfit;	      /* one did not fit the tree */
};

static int overlay_entry(void *arg, const struct vs_jentry *e)
{
	struct overlay_ctx *c = arg;
	int r, fd;

	/* a save journaled after the last sync before a crash may name an
	 * object that did not survive it whole (journal.c, DURABILITY): not
	 * shown, and the committer refuses it (the same check) */
	if (e->op == VS_JOP_WRITE) {
		r = vs_cache_open(c->fs->cfg.cache, e->hash, &fd);
		if (r < 0) {
			vs_warn("journaled save of '%s' has lost its content "
				"%.12s (%s; a crash before it was synced): not "
				"shown",
				e->path, e->hash, strerror(-r));
			c->misfit = true;
			return r == -ENOMEM ? r : 0;
		}
		close(fd);
	}
	pthread_mutex_lock(&c->fs->table.lock);
	r = overlay_apply(&c->fs->table, e);
	pthread_mutex_unlock(&c->fs->table.lock);
	if (r == 1) {
		vs_warn("journaled %s of '%s' does not fit the tree; it is "
			"shown once committed",
			e->op == VS_JOP_RENAME ? "rename" : "change", e->path);
		c->misfit = true;
	}
	if (!c->first)
		c->first = e->lseq;
	c->last = e->lseq;
	return r < 0 ? r : 0;
}

int fsw_overlay_journal(struct vs_fs *fs)
{
	struct overlay_ctx c = {.fs = fs};
	size_t n = vs_journal_pending(fs->cfg.journal);
	int r;

	if (!n)
		return 0;
	vs_info("showing %zu journaled local changes over the manifest", n);
	r = vs_journal_each(fs->cfg.journal, overlay_entry, &c);
	if (r == 0 && c.first && !c.misfit) {
		/* the tree has them: when they come back they are our own
		 * (fsw_own_change), like the ones this process makes */
		atomic_store(&fs->first_lseq, c.first);
		atomic_store(&fs->last_lseq, c.last);
	}
	return r;
}

/* Remember change @seq as ours (the committer's thread). */
static void own_push(struct vs_fs *fs, int64_t seq)
{
	pthread_mutex_lock(&fs->own_lock);
	if (fs->own_count == VS_OWN_MAX) {
		fs->own_head = (fs->own_head + 1) % VS_OWN_MAX;
		fs->own_count--;
	}
	fs->own_seqs[(fs->own_head + fs->own_count) % VS_OWN_MAX] = seq;
	fs->own_count++;
	if (seq > fs->own_newest)
		fs->own_newest = seq;
	pthread_mutex_unlock(&fs->own_lock);
}

bool fsw_own_change(struct vs_fs *fs, int64_t seq)
{
	int64_t until = vs_mono_ms() + FSW_OWN_WAIT_MS;
	bool own = false;

	if (!fs->cfg.journal || !atomic_load(&fs->first_lseq))
		return false;
	/*
	 * PostgreSQL announces a change before the committer reports it:
	 * wait until the committer has reported a later change of ours (so
	 * any of ours up to @seq is known), or has nothing in flight.
	 */
	for (;;) {
		uint64_t last = atomic_load(&fs->last_lseq);
		int64_t now = vs_mono_ms();
		int64_t newest;
		int slice;

		pthread_mutex_lock(&fs->own_lock);
		newest = fs->own_newest;
		pthread_mutex_unlock(&fs->own_lock);
		if (newest >= seq || !fs->wb || now >= until)
			break;
		slice = until - now < 20 ? (int)(until - now) : 20;
		if (vs_wb_wait(fs->wb, last, slice) != -ETIMEDOUT)
			break; /* nothing in flight */
	}
	pthread_mutex_lock(&fs->own_lock);
	while (fs->own_count && fs->own_seqs[fs->own_head] <= seq && !own) {
		/* older ones never came back (or came before we knew them) */
		own = fs->own_seqs[fs->own_head] == seq;
		fs->own_head = (fs->own_head + 1) % VS_OWN_MAX;
		fs->own_count--;
	}
	pthread_mutex_unlock(&fs->own_lock);
	return own;
}

int fsw_save_all(struct vs_fs *fs)
{
	struct vs_inode **list = NULL;
	size_t n = 0, cap = 0, saved = 0;
	int r = 0;

	if (!fs->cfg.journal)
		return 0;
	/* files with a working copy (a hint, read without their fd_lock:
	 * snapshot() decides), pinned while they are saved */
	pthread_mutex_lock(&fs->table.lock);
	for (size_t b = 0; b < fs->table.ht_size && r == 0; b++) {
		for (struct vs_inode *in = fs->table.ht[b]; in;
		     in = in->hnext) {
			if (in->local || in->removed ||
			    in->kind != VS_KIND_FILE || in->wfd < 0)
				continue;
			if (n == cap) {
				size_t c = cap ? 2 * cap : 64;
				struct vs_inode **l =
				    realloc(list, c * sizeof(*l));

				if (!l) {
					r = -ENOMEM;
					break;
				}
				list = l;
				cap = c;
			}
			in->nlookup++;
			list[n++] = in;
		}
	}
	pthread_mutex_unlock(&fs->table.lock);
	for (size_t i = 0; i < n; i++) {
		uint64_t lseq;
		uint64_t before = list[i]->jgen;

		if (snapshot(fs, list[i], false, &lseq) == 0 &&
		    list[i]->jgen != before)
			saved++;
	}
	pthread_mutex_lock(&fs->table.lock);
	for (size_t i = 0; i < n; i++)
		inode_forget(&fs->table, list[i], 1);
	pthread_mutex_unlock(&fs->table.lock);
	free(list);
	/* all saved: the set of dirty files is empty (the saver stopped) */
	for (;;) {
		struct vs_inode *in = NULL;

		pthread_mutex_lock(&fs->dirty_lock);
		if (fs->ndirty) {
			in = fs->dirty[fs->ndirty - 1];
			dirty_remove_locked(fs, in);
		}
		pthread_mutex_unlock(&fs->dirty_lock);
		if (!in)
			break;
		inode_unpin(&fs->table, in);
	}
	if (saved)
		vs_info("saved %zu files still open for writing or not yet "
			"quiet at the stop "
			"(journaled; committed now or by the next mount)",
			saved);
	/* the stop owes durability to what is journaled (the saves made at
	 * close(2) were not synced one by one) */
	if (vs_journal_sync(fs->cfg.journal, 0) < 0 && r == 0)
		r = -EIO;
	return r;
}

/*
 * Remember that a save (@saved) or rename (journal entry @e) of file @in,
 * at the path it has, became change @seq, and what the path had before:
 * the version the save was based on, or the file the rename replaced
 * (over_version) (table lock). A commit the updater is past already is
 * not kept; the others are until it is (fsw_landed_prune).
 */
static void landed_note(struct vs_fs *fs, const struct vs_inode *in,
			const struct vs_jentry *e, int64_t seq, bool saved)
{
	const struct vs_inode_save *save = inode_save_r(in);
	struct vs_landed *l;

	if (seq <= 0 || seq <= fs->landed_applied)
		return;
	if (fs->nlanded == fs->landed_cap) {
		size_t cap = fs->landed_cap ? 2 * fs->landed_cap : 16;
		struct vs_landed *n = realloc(fs->landed, cap * sizeof(*n));

		if (!n && !fs->nlanded)
			return;
		if (!n) {
			/* the oldest goes: a remote change still to apply
			 * may then move or remove that file */
			vs_warn("out of memory: a commit of ours before change "
				"%lld is forgotten",
				(long long)fs->landed[0].seq);
			memmove(fs->landed, fs->landed + 1,
				--fs->nlanded * sizeof(*fs->landed));
		} else {
			fs->landed = n;
			fs->landed_cap = cap;
		}
	}
	l = &fs->landed[fs->nlanded++];
	*l = (struct vs_landed){.ino = in->ino, .seq = seq};
	if (saved && in->kind == VS_KIND_FILE && in->version != 0) {
		l->version = in->version;
		l->mtime_ns = in->mtime_ns;
		l->mode = in->mode;
		/* (a save before it committed without the file taking its
		 * bytes: in->version is that one's, hash the one before) */
		memcpy(l->hash, save->base_hash[0] ? save->base_hash : in->hash,
		       sizeof(l->hash));
	} else if (!saved && e->op == VS_JOP_RENAME &&
		   save->pending_moved == e->lseq && save->over_version > 0) {
		l->version = save->over_version;
		l->mtime_ns = save->over_mtime_ns;
		l->mode = save->over_mode;
		memcpy(l->hash, save->over_hash, sizeof(l->hash));
	}
}

bool fsw_landed_after(struct vs_fs *fs, uint64_t ino, int64_t seq,
		      struct vs_landed *out)
{
	const struct vs_landed *first = NULL;

	for (size_t i = 0; i < fs->nlanded; i++) {
		const struct vs_landed *l = &fs->landed[i];

		if (l->ino == ino && l->seq > seq &&
		    (!first || l->seq < first->seq))
			first = l;
	}
	if (first)
		*out = *first;
	return first != NULL;
}

void fsw_landed_prune(struct vs_fs *fs, int64_t seq)
{
	size_t n = 0;

	if (seq <= fs->landed_applied)
		return;
	fs->landed_applied = seq;
	for (size_t i = 0; i < fs->nlanded; i++)
		if (fs->landed[i].seq > seq)
			fs->landed[n++] = fs->landed[i];
	fs->nlanded = n;
	if (n == 0 && fs->landed_cap > 64) {
		/* (a burst is over: its room goes back) */
		free(fs->landed);
		fs->landed = NULL;
		fs->landed_cap = 0;
	}
}

void vs_fs_set_writeback(struct vs_fs *fs, struct vs_writeback *wb)
{
	fs->wb = wb;
}

/* Was rename @e of a file refused because its target is a directory in
 * PostgreSQL, or a parent of it a file? */
static bool rename_refused_at_dir(const struct vs_jentry *e,
				  const struct vs_wb_result *res)
{
	return e->op == VS_JOP_RENAME &&
	       (res->error == -EEXIST || res->error == -EISDIR ||
		res->error == -ENOTDIR);
}

bool vs_fs_has_path(struct vs_fs *fs, const char *path)
{
	bool there;

	pthread_mutex_lock(&fs->table.lock);
	there = inode_lookup_path(&fs->table, path) != NULL;
	pthread_mutex_unlock(&fs->table.lock);
	return there;
}

/*
 * Rename @e of a file was refused (rename_refused_at_dir): the file is
 * saved where it is now (vs_fs_committed), and its old path, which the
 * mount no longer has, is deleted in PostgreSQL, as the rename would have
 * done: a DELETE based on the version the rename moved (its entry's
 * base_version; -1: not known, unconditional as the rename). Not if the
 * mount has something there again (made since, or a remote change applied
 * there): that one stays. What was done, for the log, into @what.
 */
static void rename_refused_delete(struct vs_fs *fs, const struct vs_jentry *e,
				  char *what, size_t size)
{
	bool there;
	int r = 0;

	pthread_mutex_lock(&fs->ns_lock);
	there = vs_fs_has_path(fs, e->old_path);
	if (!there)
		r = journal_path(fs, VS_JOP_DELETE, e->old_path, NULL, NULL, 0,
				 e->base_version, 0, NULL, NULL);
	pthread_mutex_unlock(&fs->ns_lock);
	snprintf(what, size,
		 "the rename of '%s' to '%s' is refused there (a directory, or "
		 "a file above it): '%s' %s",
		 e->old_path, e->path, e->old_path,
		 there	  ? "stays (the mount has it again)"
		 : r == 0 ? "is deleted there"
			  : "stays there (its delete not journaled)");
}

/* Rename @e of a file was refused (rename_refused_at_dir), and the file
 * is no longer in the mount (deleted here since): its old path is deleted
 * in PostgreSQL all the same (rename_refused_delete), and logged. */
static void rename_refused_gone(struct vs_fs *fs, const struct vs_jentry *e)
{
	char what[FSW_WHAT_MAX];

	rename_refused_delete(fs, e, what, sizeof(what));
	vs_warn("%s; the file was deleted here since", what);
}

bool vs_fs_committed(struct vs_fs *fs, const struct vs_jentry *e,
		     const struct vs_wb_result *res)
{
	struct vs_inode *in, *moved;
	int fd = -1, old_fd = -1, old_wfd = -1;
	bool clean = false, again = false, undone = false, gone = false;
	bool dropped = false;

	if (res->error && !vs_wb_delete_overtaken(e, res->error)) {
		vs_error("local change to '%s' was refused by PostgreSQL: %s; "
			 "it is not synced",
			 e->path, strerror(-res->error));
		/* (a WRITE or RENAME still clears the file's pending op
		 * below: it is not waited for any more) */
	}
	/* made by this process: the tree has it (replayed ones come back) */
	if (res->seq > 0 && atomic_load(&fs->first_lseq) &&
	    e->lseq >= atomic_load(&fs->first_lseq))
		own_push(fs, res->seq);
	if (e->op != VS_JOP_WRITE && e->op != VS_JOP_RENAME)
		return false;
	pthread_mutex_lock(&fs->table.lock);
	in = inode_lookup_path(&fs->table, e->path);
	/* the file whose entry this is, wherever it is now: its parent
	 * directory may have been renamed since the entry was journaled
	 * (the path then names nothing, or another file). Its version at
	 * the new path is not known here (inode_forget_versions) */
	moved = !in || strcmp(inode_save_r(in)->pending_op, e->op_id) != 0
		    ? inode_pending_find(&fs->table, e->op_id)
		    : NULL;
	if (moved)
		in = moved;
	else if (e->op == VS_JOP_RENAME &&
		 (!in || strcmp(inode_save_r(in)->pending_op, e->op_id) != 0) &&
		 (moved = inode_moved_find(&fs->table, e->lseq))) {
		/* the file this rename moved, saved since (that save is its
		 * pending op): PostgreSQL has it at its path now, over
		 * nothing there before the rename or the file it replaced (a
		 * save of it committed later is based on what the rename
		 * moved, landed_note) */
		if (!res->error)
			landed_note(fs, moved, e, res->seq, false);
		/* refused at a directory: that save is refused there too,
		 * and made again where the file is (below, for its WRITE);
		 * its old path goes, as it does for a file deleted here
		 * since */
		undone = rename_refused_at_dir(e, res) &&
			 moved->kind == VS_KIND_FILE;
		dropped = undone && moved->removed;
		inode_save(moved)->pending_moved = 0; /* (listed: it has one) */
		pthread_mutex_unlock(&fs->table.lock);
		if (dropped) {
			rename_refused_gone(fs, e);
		} else if (undone) {
			char what[FSW_WHAT_MAX];

			rename_refused_delete(fs, e, what, sizeof(what));
			vs_warn("%s, the save made since follows the file",
				what);
		}
		return undone;
	}
	if (in && in->kind != VS_KIND_DIR)
		in->nlookup++; /* pinned: not freed while we use it */
	else
		in = NULL;
	pthread_mutex_unlock(&fs->table.lock);
	if (!in) {
		/* refused at a directory, the file it moved no longer in
		 * the mount (deleted here since): its old path goes all the
		 * same, as the rename would have done. Only with the version
		 * it moved known, which only a file's rename records: the
		 * entry does not say whether it moved a directory */
		if (!rename_refused_at_dir(e, res) || e->base_version <= 0)
			return false;
		rename_refused_gone(fs, e);
		return true;
	}
	if (e->op == VS_JOP_RENAME || in->kind != VS_KIND_FILE || res->error) {
		char now[VS_PATH_MAX + 1], what[FSW_WHAT_MAX];
		int ms = 0;

		/* a renamed file: the version at its new path, and it is
		 * clean again unless saved since (so is a file whose change
		 * was refused: the updater may replace it again) */
		inode_fd_wrlock(&fs->table, in);
		pthread_mutex_lock(&fs->table.lock);
		if (strcmp(inode_save_r(in)->pending_op, e->op_id) == 0) {
			if (!res->error) {
				landed_note(fs, in, e, res->seq, false);
				vs_backoff_reset(&inode_save(in)->refused);
			}
			inode_pending_set(&fs->table, in, NULL, 0);
			if (!res->error && res->version > 0 && !moved)
				in->version = res->version;
			/* but a save refused because its path became a
			 * directory (or a parent a file) stays a local
			 * change, saved again: of a file moved since
			 * (aside: update.c, keep_aside), at the path it
			 * has now; of one still there (the updater has not
			 * applied that remote change yet, or could not move
			 * the file aside), after a backoff that grows at
			 * each refusal, so that the remote change keeps it and
			 * moves it aside rather than deleting it as clean
			 * (refused again until then). So is a file whose
			 * rename is refused so: what the user did, as far
			 * as PostgreSQL allows (its old path deleted there,
			 * rename_refused_delete) */
			undone = rename_refused_at_dir(e, res);
			/* a rename refused because PostgreSQL no longer has
			 * the file (deleted remotely before it was
			 * committed): the file stays where the user put it,
			 * a new file there, saved (as a save of a file
			 * deleted remotely re-creates it) */
			gone = e->op == VS_JOP_RENAME && res->error == -ENOENT;
			again = (undone || gone ||
				 (e->op == VS_JOP_WRITE &&
				  (res->error == -EISDIR ||
				   res->error == -ENOTDIR))) &&
				in->kind == VS_KIND_FILE && !in->removed &&
				inode_path(in, now, sizeof(now)) == 0;
			if (again && gone)
				in->version = 0; /* none at its path */
			/* (here the mount knows it was a file: the old path
			 * goes without a known version too, as above) */
			dropped = undone && in->removed;
		}
		pthread_mutex_unlock(&fs->table.lock);
		if (again) {
			in->wgen++; /* a change to save (the saver's) */
			if (moved || gone)
				dirty_mark(fs, in, false);
			else
				ms = dirty_mark_refused(fs, in);
		}
		inode_fd_unlock(&fs->table, in);
		if (dropped)
			rename_refused_gone(fs, e);
		if (!again)
			goto out;
		if (gone) {
			vs_warn("the rename of '%s' to '%s' is refused there: "
				"'%s' was deleted there first; the file is "
				"saved at '%s', where it is",
				e->old_path, e->path, e->old_path, now);
			goto out;
		}
		if (undone) {
			size_t n;

			rename_refused_delete(fs, e, what, sizeof(what));
			n = strlen(what);
			snprintf(what + n, sizeof(what) - n, ", the file");
		} else {
			snprintf(what, sizeof(what), "the local edit of '%s'",
				 e->path);
		}
		if (moved)
			vs_warn("%s is saved at '%s', where the file is now",
				what, now);
		else
			vs_warn(
			    "%s stays a local change, saved again where "
			    "the file is once the remote change there is "
			    "applied (next try in %d.%d s, later after each "
			    "refusal, up to %d s)",
			    what, ms / 1000, ms % 1000 / 100,
			    FSW_RETRY_MAX_MS / 1000);
		goto out;
	}
	/* the committed content, to serve once the working copy goes */
	if (e->op == VS_JOP_WRITE &&
	    vs_cache_open(fs->cfg.cache, res->hash, &fd) < 0)
		fd = -1;
	inode_fd_wrlock(&fs->table, in);
	pthread_mutex_lock(&fs->table.lock);
	/* only the file whose save (or rename) this was: the path may name
	 * another one by now (vim: renamed to a backup, a new file made) */
	if (strcmp(inode_save_r(in)->pending_op, e->op_id) == 0) {
		struct stat st;
		/* nothing written since this snapshot: serve what PostgreSQL
		 * now has (for a merge, that includes the other edit) */
		bool take = e->op == VS_JOP_WRITE && in->wgen == in->jgen &&
			    fd >= 0 && fstat(fd, &st) == 0;

		/* (moved since: what its path had before is not known) */
		if (!res->error) {
			landed_note(fs, in, e, res->seq, !moved);
			vs_backoff_reset(&inode_save(in)->refused);
		}
		inode_pending_set(&fs->table, in, NULL, 0);
		/* a merge's version holds another writer's edit: the next
		 * save is based on it only if the file takes its bytes; a
		 * file written since keeps the version its own bytes are
		 * based on, so that save is merged in turn rather than
		 * committed over the other edit */
		if (!moved && (!res->merged || take))
			in->version = res->version;
		/* (saved_hash: never PostgreSQL's after an error; the file's
		 * bytes if it takes them. No save state: "" already) */
		if ((res->error || take) && inode_save(in))
			inode_save(in)->saved_hash[0] = '\0';
		if (take) {
			memcpy(in->hash, res->hash, sizeof(in->hash));
			in->size = (uint64_t)st.st_size; /* a merge differs */
			old_fd = in->fd;
			old_wfd = in->wfd;
			inode_content_set(in, fd);
			in->wfd = -1;
			in->wfrozen = false;
			in->wmem = false;
			fd = -1;
			clean = true;
		}
	}
	pthread_mutex_unlock(&fs->table.lock);
	inode_fd_unlock(&fs->table, in);
	if (fd >= 0)
		close(fd);
	if (old_fd >= 0)
		close(old_fd);
	if (old_wfd >= 0)
		close(old_wfd);
	if (clean && res->merged)
		/* the bytes changed under the kernel */
		fs_inval_inode(fs, in->ino);
out:
	inode_unpin(&fs->table, in);
	return again || dropped;
}
