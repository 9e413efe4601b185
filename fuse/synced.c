/*
 * synced.c - the FUSE handlers of synced paths (synced_i.h), and the
 * learned list (fs.h, vs_fs_learn_start).
 *
 * DESIGN
 * Synced paths are served from the in-memory inode table (inode_i.h) and
 * the verified content cache; writes to them go through write.c (working
 * copies, the journal, the write-back) or, with --read-only, are refused
 * with EROFS. What is here answers the kernel: metadata from the table,
 * content from the cache (opened on first read), listings from the table
 * plus the local-only names present in the upper layer at the same path;
 * write.c changes the tree and journals, and replies to no one.
 *
 * Runs on the FUSE threads. A handler never holds table->lock while
 * waiting on the network: content is fetched under the inode's own
 * fd_lock only (the lock order is fs_i.h's and write.c's). Kernel caching
 * is long-lived (entry/attr timeouts, keep_cache, cached directory
 * listings) because nothing changes a synced path behind the kernel's
 * back without the mount invalidating it (update.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "local_i.h"
#include "owner_i.h"
#include "special_i.h"
#include "synced_i.h"
#include "vsync/clock.h"
#include "vsync/content.h"
#include "vsync/log.h"
#include "vsync/prefetch.h"
#include "vsync/banned.h"

/*
 * fi->fh of an open of a synced file that may write (not --read-only):
 * its RELEASE, the last close, saves at once (write.c, the save policy).
 * Other opens of synced files have fh 0, and so has every request in
 * no-open mode.
 */
#define SYNCED_WRITER 1

static mode_t kind_type(enum vs_kind k)
{
	switch (k) {
	case VS_KIND_DIR:
		return S_IFDIR;
	case VS_KIND_SYMLINK:
		return S_IFLNK;
	default:
		return S_IFREG;
	}
}

void synced_stat(const struct vs_fs *fs, const struct vs_inode *in,
		 struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = in->ino;
	st->st_mode = kind_type(in->kind) | (in->mode & 07777);
	/* an unlinked file still open somewhere has no links left; a
	 * directory has its own, its "." and each subdirectory's ".." */
	st->st_nlink = in->removed ? 0 : in->kind == VS_KIND_DIR ? 2 : 1;
	if (!in->removed && in->kind == VS_KIND_DIR)
		for (size_t i = 0; i < in->nchildren; i++)
			st->st_nlink += in->children[i]->kind == VS_KIND_DIR;
	st->st_uid = in->owned ? in->uid : fs->cfg.uid;
	st->st_gid = in->owned ? in->gid : fs->cfg.gid;
	st->st_size = (off_t)in->size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((in->size + 511) / 512);
	st->st_mtim.tv_sec = in->mtime_ns / 1000000000;
	st->st_mtim.tv_nsec = in->mtime_ns % 1000000000;
	st->st_atim = st->st_mtim;
	if (in->atime_set) {
		st->st_atim.tv_sec = in->atime_ns / 1000000000;
		st->st_atim.tv_nsec = in->atime_ns % 1000000000;
	}
	st->st_ctim = st->st_mtim;
	if (in->ctime_ns > in->mtime_ns) {
		st->st_ctim.tv_sec = in->ctime_ns / 1000000000;
		st->st_ctim.tv_nsec = in->ctime_ns % 1000000000;
	}
}

void synced_entry(struct vs_fs *fs, const struct vs_inode *in,
		  struct fuse_entry_param *e)
{
	struct stat st;

	synced_stat(fs, in, &st);
	fs_fill_entry(fs, e, &st, in->ino);
}

/* Reply with the attributes of @in. */
static void reply_attr(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in)
{
	struct stat st;

	pthread_mutex_lock(&fs->table.lock);
	synced_stat(fs, in, &st);
	pthread_mutex_unlock(&fs->table.lock);
	fuse_reply_attr(req, &st, fs->cfg.attr_timeout);
}

/* Reply with the entry of @in (its lookup already counted). */
static void reply_entry(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in)
{
	struct fuse_entry_param e;

	pthread_mutex_lock(&fs->table.lock);
	synced_entry(fs, in, &e);
	pthread_mutex_unlock(&fs->table.lock);
	fuse_reply_entry(req, &e);
}

void synced_lookup(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		   const char *name)
{
	struct fuse_entry_param e;
	struct vs_inode *in;

	pthread_mutex_lock(&fs->table.lock);
	in = inode_child_find(parent, name);
	if (!in) {
		pthread_mutex_unlock(&fs->table.lock);
		fs_reply_negative(req, fs);
		return;
	}
	in->nlookup++;
	synced_entry(fs, in, &e);
	pthread_mutex_unlock(&fs->table.lock);
	fuse_reply_entry(req, &e);
}

void synced_getattr(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in)
{
	reply_attr(req, fs, in);
}

void synced_setattr(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in,
		    const struct stat *attr, int valid,
		    struct fuse_file_info *fi)
{
	int r = fs->cfg.journal ? 0 : -EROFS;

	/* the owner is local metadata (owner.c); the rest goes to write.c */
	if (r == 0 && (valid & FUSE_SET_ATTR_MODE))
		r = owner_may_chmod(req, fs, in, attr->st_mode);
	if (r == 0 && (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))
		r = owner_chown(req, fs, in, attr, valid);
	valid &= ~(FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID);
	if (r == 0 && valid)
		r = fsw_setattr(fs, in, attr, valid);
	if (r == 0 && (valid & FUSE_SET_ATTR_MODE))
		owner_dir_chmod(fs, in);
	/* (a truncation is saved as a write is: when quiet, write.c) */
	if (r == 0) {
		/* any change of the inode's attributes is a status change */
		int64_t now = vs_wall_ns();

		pthread_mutex_lock(&fs->table.lock);
		in->ctime_ns = now;
		pthread_mutex_unlock(&fs->table.lock);
	}
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		reply_attr(req, fs, in);
}

void synced_readlink(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in)
{
	char target[PATH_MAX + 1];

	pthread_mutex_lock(&fs->table.lock);
	snprintf(target, sizeof(target), "%s", in->target);
	pthread_mutex_unlock(&fs->table.lock);
	fuse_reply_readlink(req, target);
}

/* Can @name be a synced path's component (PostgreSQL stores it as it is:
 * UTF-8, no control characters)? Logs a refusal. */
static bool synced_name_ok(const char *name)
{
	if (vs_path_syncable(name, strlen(name)) == 0)
		return true;
	vs_warn("refusing the name '%s' on a synced path: not UTF-8 or has "
		"control characters (EINVAL)",
		name);
	return false;
}

/*
 * Common start of the calls that create @name in synced @parent: 0 with
 * --writable (the caller creates it with fsw_create), EROFS without.
 */
static int may_create(struct vs_fs *fs, struct vs_inode *parent,
		      const char *name)
{
	bool exists;

	pthread_mutex_lock(&fs->table.lock);
	exists = inode_child_find(parent, name) != NULL;
	pthread_mutex_unlock(&fs->table.lock);
	if (exists || special_is(fs, parent, name))
		return -EEXIST;
	if (!fs->cfg.journal)
		return -EROFS;
	return synced_name_ok(name) ? 0 : -EINVAL;
}

/* Create @name in @parent (--writable, may_create said so) and reply. */
static void create_reply(fuse_req_t req, struct vs_fs *fs,
			 struct vs_inode *parent, const char *name,
			 enum vs_kind kind, mode_t mode, const char *target)
{
	struct vs_inode *in = NULL;
	int r = fsw_create(fs, parent, name, kind, mode, target, &in);

	if (r == 0 && kind == VS_KIND_FILE)
		r = fsw_save(fs, in); /* mknod: no close will follow */
	if (r < 0 && !in) {
		fuse_reply_err(req, -r);
		return;
	}
	owner_created(req, fs, in);
	reply_entry(req, fs, in);
}

void synced_mknod(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		  const char *name, mode_t mode, dev_t rdev)
{
	int r = may_create(fs, parent, name);

	if (r == 0 && special_mode(mode)) {
		/* kept local to the mount, never synced (special_i.h) */
		local_mknod(req, fs, parent, name, mode, rdev);
		return;
	}
	if (r == 0 && !S_ISREG(mode))
		r = -EINVAL;
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		create_reply(req, fs, parent, name, VS_KIND_FILE, mode, NULL);
}

void synced_mkdir(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		  const char *name, mode_t mode)
{
	int r = may_create(fs, parent, name);
	char path[PATH_MAX];
	bool setgid;

	/* as mkdir(2): a directory made in a setgid one is setgid too (and
	 * has its group: owner_created) */
	pthread_mutex_lock(&fs->table.lock);
	setgid = parent->mode & S_ISGID;
	pthread_mutex_unlock(&fs->table.lock);
	if (setgid)
		mode |= S_ISGID;
	if (r == 0 && fs_upper_path(fs, parent, name, path, sizeof(path)) == 0)
		special_dir_clear(fs, path); /* leftovers of an earlier one */
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		create_reply(req, fs, parent, name, VS_KIND_DIR, mode, NULL);
}

void synced_symlink(fuse_req_t req, struct vs_fs *fs, const char *link,
		    struct vs_inode *parent, const char *name)
{
	int r = may_create(fs, parent, name);

	if (r == 0 && strlen(link) > VS_PATH_MAX)
		r = -ENAMETOOLONG;
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		create_reply(req, fs, parent, name, VS_KIND_SYMLINK, 0777,
			     link);
}

void synced_link(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		 const char *name)
{
	int r = may_create(fs, parent, name);

	/* a local file linked into a synced directory */
	fuse_reply_err(req, r < 0 ? -r : EXDEV);
}

void synced_create(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		   const char *name, mode_t mode, struct fuse_file_info *fi)
{
	struct fuse_entry_param e;
	struct vs_inode *in = NULL;
	int r;

	r = may_create(fs, parent, name);
	if (r == 0)
		r = fsw_create(fs, parent, name, VS_KIND_FILE, mode, NULL, &in);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	owner_created(req, fs, in);
	pthread_mutex_lock(&fs->table.lock);
	synced_entry(fs, in, &e);
	pthread_mutex_unlock(&fs->table.lock);
	fi->fh = SYNCED_WRITER;
	fi->keep_cache = 1;
	fuse_reply_create(req, &e, fi);
}

/* Is @name of @parent a synced directory whose upper directory holds
 * local entries (listed by readdir, so not empty)? */
static bool dir_busy(struct vs_fs *fs, struct vs_inode *parent,
		     const char *name)
{
	struct vs_inode *in;
	bool dir;

	pthread_mutex_lock(&fs->table.lock);
	in = inode_child_find(parent, name);
	dir = in && in->kind == VS_KIND_DIR;
	pthread_mutex_unlock(&fs->table.lock);
	return dir && special_dir_busy(fs, parent, name);
}

void synced_remove(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		   const char *name, bool dir)
{
	bool exists;
	int r;

	if (fs->cfg.journal) {
		/* a directory with local entries in the upper layer is not
		 * empty (they are listed) */
		r = dir && dir_busy(fs, parent, name) ? -ENOTEMPTY : 0;
		if (r == 0)
			r = fsw_remove(fs, parent, name, dir);
		if (r == 0)
			owner_changed(fs);
		fuse_reply_err(req, -r);
		return;
	}
	pthread_mutex_lock(&fs->table.lock);
	exists = inode_child_find(parent, name) != NULL;
	pthread_mutex_unlock(&fs->table.lock);
	fuse_reply_err(req, exists ? EROFS : ENOENT);
}

void synced_rename(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		   const char *name, struct vs_inode *newparent,
		   const char *newname, unsigned int flags)
{
	char from[PATH_MAX], to[PATH_MAX];
	bool upper;
	int r = synced_name_ok(newname) ? 0 : -EINVAL;

	/* (no upper path: too long for the upper layer to hold anything) */
	upper = fs_upper_path(fs, parent, name, from, sizeof(from)) == 0 &&
		fs_upper_path(fs, newparent, newname, to, sizeof(to)) == 0;
	/* over a directory holding local entries: not empty */
	if (r == 0 && !(flags & RENAME_NOREPLACE) &&
	    dir_busy(fs, newparent, newname))
		r = -ENOTEMPTY;
	if (r == 0)
		r = fsw_rename(fs, parent, name, newparent, newname, flags);
	if (r == 0) {
		/* a directory's local entries go with it */
		if (upper)
			special_dir_moved(fs, from, to);
		owner_changed(fs);
	}
	fuse_reply_err(req, -r);
}

/* While learning, note the first open or read of synced file @in. */
static void learn_record(struct vs_fs *fs, struct vs_inode *in)
{
	char path[VS_PATH_MAX + 1];
	int64_t until;
	char *copy;

	/* unlocked first looks, so that an open after the learning takes no
	 * lock; both are decided again under learn_lock */
	if (atomic_load_explicit(&in->learned, memory_order_relaxed) ||
	    atomic_load_explicit(&fs->learn_until_ms, memory_order_relaxed) ==
		0)
		return;
	pthread_mutex_lock(&fs->learn_lock);
	until = atomic_load(&fs->learn_until_ms);
	if (!atomic_load(&in->learned) && until && vs_mono_ms() < until &&
	    fs->nlearned < VS_LEARN_MAX) {
		atomic_store(&in->learned, true);
		pthread_mutex_lock(&fs->table.lock);
		copy = inode_path(in, path, sizeof(path)) == 0 ? strdup(path)
							       : NULL;
		pthread_mutex_unlock(&fs->table.lock);
		if (copy)
			fs->learned[fs->nlearned++] = copy;
	}
	pthread_mutex_unlock(&fs->learn_lock);
}

void vs_fs_learn_start(struct vs_fs *fs, int seconds)
{
	pthread_mutex_lock(&fs->learn_lock);
	if (!fs->learned)
		fs->learned = calloc(VS_LEARN_MAX, sizeof(*fs->learned));
	if (fs->learned && seconds > 0)
		atomic_store(&fs->learn_until_ms,
			     vs_mono_ms() + (int64_t)seconds * 1000);
	pthread_mutex_unlock(&fs->learn_lock);
}

int vs_fs_learned(struct vs_fs *fs, char ***paths, size_t *n)
{
	pthread_mutex_lock(&fs->learn_lock);
	*paths = fs->learned;
	*n = fs->nlearned;
	fs->learned = NULL;
	fs->nlearned = 0;
	atomic_store(&fs->learn_until_ms, 0);
	pthread_mutex_unlock(&fs->learn_lock);
	return 0;
}

void synced_open(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in,
		 struct fuse_file_info *fi)
{
	bool writer =
	    (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC);
	int r = 0;

	/* nothing is set up here (write.c, DESIGN): content comes with the
	 * first read, a working copy with the first write */
	if (in->kind == VS_KIND_DIR)
		r = -EISDIR;
	else if (writer && !fs->cfg.journal)
		r = -EROFS;
	else if (writer)
		r = fsw_open_check(fs, in);
	if (r == 0 && (fi->flags & O_TRUNC)) {
		/* atomic_o_trunc: the open's truncation comes with it */
		struct stat st = {.st_size = 0};

		r = fsw_setattr(fs, in, &st, FUSE_SET_ATTR_SIZE);
	}
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	learn_record(fs, in);
	/* a writer's RELEASE is a save (the shortcut of the save policy) */
	fi->fh = fs->cfg.journal && writer ? SYNCED_WRITER : 0;
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

void synced_read(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in,
		 size_t size, off_t off)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	int r = 0;

	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].pos = off;
	/* shared: the updater cannot swap (and close) the fd under us */
	inode_fd_rdlock(&fs->table, in);
	while (in->fd < 0 && in->wfd < 0 && in->hash[0] && r == 0) {
		/* the first read fetches the content (exclusive, so one
		 * fetch for all readers; then look again) */
		inode_fd_unlock(&fs->table, in);
		inode_fd_wrlock(&fs->table, in);
		r = fsw_content(fs, in);
		inode_fd_unlock(&fs->table, in);
		inode_fd_rdlock(&fs->table, in);
	}
	buf.buf[0].fd = in->wfd >= 0 ? in->wfd : in->fd;
	/* used: kept by the next fd reclaim (inode_content_reclaim) */
	if (!atomic_load_explicit(&in->fd_used, memory_order_relaxed))
		atomic_store_explicit(&in->fd_used, true, memory_order_relaxed);
	/* nothing of @in after the reply: once the read is answered, its
	 * reader may close the file, and the kernel's FORGET free a removed
	 * @in on another thread */
	if (r == 0)
		learn_record(fs, in);
	if (r < 0 || buf.buf[0].fd < 0) {
		inode_fd_unlock(&fs->table, in);
		if (r < 0)
			fuse_reply_err(req, -r);
		else
			fuse_reply_buf(req, NULL, 0); /* no content: empty */
		return;
	}
	/* the fd is spliced from during the reply (fd_lock keeps the updater
	 * from swapping it): pinned until the lock is let go */
	inode_pin(&fs->table, in);
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
	inode_fd_unlock(&fs->table, in);
	inode_unpin(&fs->table, in);
}

void synced_write_buf(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in,
		      struct fuse_bufvec *in_buf, off_t off)
{
	size_t written = 0;
	int r =
	    fs->cfg.journal ? fsw_write(fs, in, in_buf, off, &written) : -EROFS;

	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_write(req, written);
}

void synced_release(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in)
{
	/* the last close of a synced file opened for writing: a commit point
	 * (journaled; committed behind) */
	int r = fsw_save(fs, in);

	fuse_reply_err(req, -r);
}

void synced_fsync(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in)
{
	int r = 0;

	/* returns once PostgreSQL has it (EIO if it cannot) */
	if (fs->cfg.journal && in->kind == VS_KIND_FILE)
		r = fsw_fsync(fs, in);
	fuse_reply_err(req, -r);
}

void synced_fsyncdir(fuse_req_t req, struct vs_fs *fs)
{
	fuse_reply_err(req, fs->cfg.journal ? -fsw_fsyncdir(fs) : 0);
}

void synced_opendir(fuse_req_t req, struct fuse_file_info *fi)
{
	fi->fh = 0;
	fi->keep_cache = 1;
	fi->cache_readdir = 1;
	fuse_reply_open(req, fi);
}

/*
 * ".", "..", the children in name order, then the local-only names present
 * in the upper layer at the same path. The offset of an entry is its
 * position plus one, stable while the tree is.
 */
void synced_readdir(fuse_req_t req, struct vs_fs *fs, struct vs_inode *dir,
		    struct fs_dirbuf *b, off_t off)
{
	char path[PATH_MAX];
	size_t n, k, nlocal = 0;
	off_t pos;

	pthread_mutex_lock(&fs->table.lock);
	n = dir->nchildren;
	for (pos = off; pos < (off_t)(2 + n); pos++) {
		bool ok;

		if (pos == 0)
			ok = fs_dirbuf_add(req, b, ".", dir->ino, S_IFDIR, 1);
		else if (pos == 1)
			ok = fs_dirbuf_add(req, b, "..",
					   dir->parent ? dir->parent->ino
						       : dir->ino,
					   S_IFDIR, 2);
		else if (b->plus) {
			struct vs_inode *c = dir->children[pos - 2];
			struct fuse_entry_param e;

			/* with its attributes: no LOOKUP follows; the kernel
			 * counts the lookup of each entry it is given */
			synced_entry(fs, c, &e);
			ok = fs_dirbuf_add_plus(req, b, c->name, &e, pos + 1);
			if (ok)
				c->nlookup++;
		} else {
			struct vs_inode *c = dir->children[pos - 2];

			ok = fs_dirbuf_add(req, b, c->name, c->ino,
					   kind_type(c->kind), pos + 1);
		}
		if (!ok) {
			pthread_mutex_unlock(&fs->table.lock);
			return;
		}
	}
	pthread_mutex_unlock(&fs->table.lock);
	while (fs->cfg.local.names && fs->cfg.local.names[nlocal])
		nlocal++;
	for (k = (size_t)(pos - (off_t)(2 + n)); k < nlocal; k++) {
		const char *name = fs->cfg.local.names[k];
		struct stat st;

		if (fs_upper_path(fs, dir, name, path, sizeof(path)) < 0 ||
		    fstatat(fs->cfg.upper_fd, path, &st, AT_SYMLINK_NOFOLLOW) <
			0)
			continue;
		/* the kernel looks the entry up before using the inode */
		if (!fs_dirbuf_add(req, b, name, VS_UNKNOWN_INO,
				   st.st_mode & S_IFMT, (off_t)(2 + n + k + 1)))
			return;
	}
	/* then FIFOs, sockets and devices kept local (special_i.h) */
	special_readdir(req, fs, dir, b, (off_t)(2 + n + nlocal), off);
}
