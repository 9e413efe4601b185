/*
 * fs.c - the FUSE low-level operations of vsync-mount (fs.h).
 *
 * DESIGN
 * Synced paths are served from the in-memory inode table (inode_i.h) and
 * the verified content cache; writes to them go through write.c (working
 * copies, the journal, the write-back) or, with --read-only, are refused
 * with EROFS. Local-only paths (node_modules/, dist/ ...) are passed
 * through to the upper directory with *at() calls on paths computed from
 * the inode tree, so no fd is held per inode (but for a file whose name
 * went while the kernel still used it: local_detach).
 *
 * Every handler replies exactly once. A handler never holds table->lock
 * while waiting on the network: content is fetched under the inode's own
 * fd_lock only. Kernel caching is long-lived (entry/attr timeouts,
 * keep_cache, cached directory listings) because nothing changes a synced
 * path behind the kernel's back without the mount invalidating it.
 */
#include "vsync/clock.h"
#include "vsync/fs.h"

#include <dirent.h>
#include <stdatomic.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "fs_i.h"
#include "vsync/content.h"
#include "vsync/log.h"

/* d_ino of a listed entry whose inode the kernel will look up itself */
#define VS_UNKNOWN_INO 0xffffffffu

/* An open local directory (opendir on a local-only path). */
struct local_dir {
	DIR *dp;
	off_t offset;
	struct dirent *entry;
};

static struct vs_fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* Look @ino up under the lock; NULL if the kernel names an unknown inode. */
static struct vs_inode *get_locked(struct vs_fs *fs, fuse_ino_t ino)
{
	return inode_table_get(&fs->table, ino);
}

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

static enum vs_kind mode_kind(mode_t m)
{
	if (S_ISDIR(m))
		return VS_KIND_DIR;
	if (S_ISLNK(m))
		return VS_KIND_SYMLINK;
	return VS_KIND_FILE;
}

void fs_synced_stat(const struct vs_fs *fs, const struct vs_inode *in,
		    struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = in->ino;
	st->st_mode = kind_type(in->kind) | (in->mode & 07777);
	/* an unlinked file still open somewhere has no links left */
	st->st_nlink = in->removed ? 0 : in->kind == VS_KIND_DIR ? 2 : 1;
	st->st_uid = fs->cfg.uid;
	st->st_gid = fs->cfg.gid;
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
}

/*
 * Path of @in (plus "/@name" if @name) relative to the upper layer, "."
 * for the root. Takes the table lock. 0 or -ENAMETOOLONG.
 */
static int upper_path(struct vs_fs *fs, struct vs_inode *in, const char *name,
		      char *buf, size_t size)
{
	size_t len;
	int r;

	pthread_mutex_lock(&fs->table.lock);
	r = inode_path(in, buf, size);
	pthread_mutex_unlock(&fs->table.lock);
	if (r < 0)
		return r;
	len = strlen(buf);
	if (name) {
		int n = snprintf(buf + len, size - len, "%s%s", len ? "/" : "",
				 name);

		if (n < 0 || (size_t)n >= size - len)
			return -ENAMETOOLONG;
	} else if (len == 0) {
		strcpy(buf, ".");
	}
	return 0;
}

/* Create the directories leading to upper path @path (mkdir -p of its
 * parent), copying the synced directories' modes. */
static int upper_mkdirs(struct vs_fs *fs, const char *path)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = strchr(buf, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdirat(fs->cfg.upper_fd, buf, 0755) < 0 &&
		    errno != EEXIST) {
			int r = -errno;

			*p = '/';
			return r;
		}
		*p = '/';
	}
	return 0;
}

/* Is the entry @name of @parent a local-only one? */
static bool is_local_target(struct vs_fs *fs, struct vs_inode *parent,
			    const char *name)
{
	return parent->local ||
	       vs_name_is_local(&fs->cfg.local, name, strlen(name));
}

static void fill_entry(struct vs_fs *fs, struct fuse_entry_param *e,
		       const struct stat *st, fuse_ino_t ino)
{
	memset(e, 0, sizeof(*e));
	e->ino = ino;
	e->attr = *st;
	e->attr.st_ino = ino;
	e->attr_timeout = fs->cfg.attr_timeout;
	e->entry_timeout = fs->cfg.entry_timeout;
}

/* The entry of synced inode @in. Caller holds table.lock. */
static void synced_entry(struct vs_fs *fs, const struct vs_inode *in,
			 struct fuse_entry_param *e)
{
	struct stat st;

	fs_synced_stat(fs, in, &st);
	fill_entry(fs, e, &st, in->ino);
}

/* A negative entry (ino 0), cached like a positive one: module resolution
 * probes many names that do not exist. */
static void reply_negative(fuse_req_t req, struct vs_fs *fs)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.entry_timeout = fs->cfg.entry_timeout;
	fuse_reply_entry(req, &e);
}

/* Look up (and count a lookup of) local entry @name of @parent, whose
 * upper path is @path. Replies to nothing. */
static int local_lookup(struct vs_fs *fs, struct vs_inode *parent,
			const char *name, const char *path,
			struct fuse_entry_param *e)
{
	struct vs_inode *in;
	struct stat st;

	if (fstatat(fs->cfg.upper_fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	pthread_mutex_lock(&fs->table.lock);
	in = inode_local_get(&fs->table, parent, name, st.st_ino,
			     mode_kind(st.st_mode));
	if (in)
		in->nlookup++;
	pthread_mutex_unlock(&fs->table.lock);
	if (!in)
		return -ENOMEM;
	fill_entry(fs, e, &st, in->ino);
	return 0;
}

bool fs_own_request(struct vs_fs *fs, fuse_req_t req)
{
	int tid = atomic_load(&fs->updater_tid);

	return tid != 0 && fuse_req_ctx(req)->pid == tid;
}

/*
 * The updater's mknod/mkdir/symlink of a remote creation: make the synced
 * inode from fs->pending and reply with its entry.
 */
static void remote_create(fuse_req_t req, struct vs_fs *fs,
			  fuse_ino_t parent_ino, const char *name,
			  enum vs_kind kind)
{
	struct vs_pending *p = &fs->pending;
	struct fuse_entry_param e;
	struct vs_inode *dir, *in = NULL;
	int r = -EIO;

	pthread_mutex_lock(&fs->table.lock);
	dir = get_locked(fs, parent_ino);
	if (!p->active || p->parent_ino != parent_ino ||
	    strcmp(p->name, name) != 0 || p->st.kind != kind || !dir) {
		vs_error("internal error: updater created '%s' with no "
			 "matching pending change",
			 name);
		goto out;
	}
	if (inode_child_find(dir, name)) {
		r = -EEXIST;
		goto out;
	}
	r = inode_synced_child(&fs->table, dir, name, kind, &in);
	if (r < 0)
		goto out;
	in->mode = p->st.mode & 07777;
	in->size = kind == VS_KIND_DIR ? 0 : p->st.size;
	in->mtime_ns = p->st.mtime_ns;
	in->version = p->st.version;
	memcpy(in->hash, p->st.hash, sizeof(in->hash));
	if (kind == VS_KIND_SYMLINK) {
		in->target = strdup(p->target);
		in->size = strlen(p->target);
	}
	in->fd = p->fd; /* no reader can hold fd_lock on a new inode */
	p->fd = -1;
	p->active = false;
	in->nlookup++;
	synced_entry(fs, in, &e);
	r = 0;
out:
	pthread_mutex_unlock(&fs->table.lock);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_entry(req, &e);
}

/* The updater's unlink/rmdir of a remote deletion. */
static void remote_remove(fuse_req_t req, struct vs_fs *fs,
			  fuse_ino_t parent_ino, const char *name, bool dir)
{
	struct vs_inode *parent, *in = NULL;
	int r = 0;

	pthread_mutex_lock(&fs->table.lock);
	parent = get_locked(fs, parent_ino);
	if (parent && !parent->local)
		in = inode_child_find(parent, name);
	if (!in)
		r = -ENOENT;
	else if (dir && in->kind != VS_KIND_DIR)
		r = -ENOTDIR;
	else if (!dir && in->kind == VS_KIND_DIR)
		r = -EISDIR;
	else if (in->nchildren)
		r = -ENOTEMPTY;
	else
		inode_synced_remove(&fs->table, in);
	pthread_mutex_unlock(&fs->table.lock);
	fuse_reply_err(req, -r);
}

/* The updater's rename of a remote move (replacing a file at the target). */
static void remote_rename(fuse_req_t req, struct vs_fs *fs,
			  fuse_ino_t parent_ino, const char *name,
			  fuse_ino_t newparent_ino, const char *newname)
{
	struct vs_inode *parent, *newparent, *in = NULL, *old;
	int r = 0;

	pthread_mutex_lock(&fs->table.lock);
	parent = get_locked(fs, parent_ino);
	newparent = get_locked(fs, newparent_ino);
	if (parent && newparent && !parent->local && !newparent->local)
		in = inode_child_find(parent, name);
	if (!in) {
		r = -ENOENT;
		goto out;
	}
	old = inode_child_find(newparent, newname);
	if (old == in)
		goto out;
	if (old && (old->kind == VS_KIND_DIR || in->kind == VS_KIND_DIR)) {
		r = old->kind == VS_KIND_DIR && !old->nchildren &&
			    in->kind == VS_KIND_DIR
			? 0
			: -EEXIST;
		if (r < 0)
			goto out;
	}
	for (struct vs_inode *p = newparent; p; p = p->parent)
		if (p == in) {
			r = -EINVAL; /* into itself */
			goto out;
		}
	if (old)
		inode_synced_remove(&fs->table, old);
	r = inode_synced_move(in, newparent, newname);
out:
	pthread_mutex_unlock(&fs->table.lock);
	fuse_reply_err(req, -r);
}

static void vs_lookup(fuse_req_t req, fuse_ino_t parent_ino, const char *name)
{
	struct vs_fs *fs = fs_of(req);
	struct fuse_entry_param e;
	struct vs_inode *parent, *in;
	char path[PATH_MAX];
	int r;

	if (strlen(name) > VS_NAME_MAX) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	pthread_mutex_lock(&fs->table.lock);
	parent = get_locked(fs, parent_ino);
	if (!parent || parent->kind != VS_KIND_DIR) {
		pthread_mutex_unlock(&fs->table.lock);
		fuse_reply_err(req, parent ? ENOTDIR : ESTALE);
		return;
	}
	if (!is_local_target(fs, parent, name)) {
		in = inode_child_find(parent, name);
		if (!in) {
			pthread_mutex_unlock(&fs->table.lock);
			reply_negative(req, fs);
			return;
		}
		in->nlookup++;
		synced_entry(fs, in, &e);
		pthread_mutex_unlock(&fs->table.lock);
		fuse_reply_entry(req, &e);
		return;
	}
	pthread_mutex_unlock(&fs->table.lock);
	r = upper_path(fs, parent, name, path, sizeof(path));
	if (r == 0)
		r = local_lookup(fs, parent, name, path, &e);
	if (r == -ENOENT) {
		reply_negative(req, fs);
		return;
	}
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_entry(req, &e);
}

static void vs_forget_one(struct vs_fs *fs, fuse_ino_t ino, uint64_t n)
{
	struct vs_inode *in = get_locked(fs, ino);

	if (in)
		inode_forget(&fs->table, in, n);
	else
		vs_warn("kernel forgot unknown inode %llu",
			(unsigned long long)ino);
}

static void vs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct vs_fs *fs = fs_of(req);

	pthread_mutex_lock(&fs->table.lock);
	vs_forget_one(fs, ino, nlookup);
	pthread_mutex_unlock(&fs->table.lock);
	fuse_reply_none(req);
}

static void vs_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	struct vs_fs *fs = fs_of(req);

	pthread_mutex_lock(&fs->table.lock);
	for (size_t i = 0; i < count; i++)
		vs_forget_one(fs, forgets[i].ino, forgets[i].nlookup);
	pthread_mutex_unlock(&fs->table.lock);
	fuse_reply_none(req);
}

/*
 * Resolve @ino for a request: 0 and *in, with *local telling which layer.
 * For a local inode @path receives its upper path.
 */
static int resolve(struct vs_fs *fs, fuse_ino_t ino, struct vs_inode **in_out,
		   char *path, size_t size)
{
	struct vs_inode *in;
	int detached = -1;

	pthread_mutex_lock(&fs->table.lock);
	in = get_locked(fs, ino);
	if (in && in->local)
		detached = in->fd;
	pthread_mutex_unlock(&fs->table.lock);
	if (!in)
		return -ESTALE;
	*in_out = in;
	if (in->local && path && detached >= 0) {
		snprintf(path, size, "/proc/self/fd/%d", detached);
		return 0;
	}
	if (in->local && path)
		return upper_path(fs, in, NULL, path, size);
	return 0;
}

/*
 * The *at() flag for a local path from resolve(): an upper path is not
 * followed; the /proc path of a detached file (absolute, so upper_fd is
 * ignored) must be, and following it reaches the file itself (only
 * regular files are detached).
 */
static int nofollow(const char *path)
{
	return path[0] == '/' ? 0 : AT_SYMLINK_NOFOLLOW;
}

static int local_stat(struct vs_fs *fs, const char *path, fuse_ino_t ino,
		      struct stat *st)
{
	if (fstatat(fs->cfg.upper_fd, path, st, nofollow(path)) < 0)
		return -errno;
	st->st_ino = ino;
	return 0;
}

/*
 * Local regular file @path (@name in @parent) is about to lose that name
 * (unlink, or a rename over it). If it is the name its inode is known by,
 * the kernel may still use that inode - through an open descriptor, or
 * through another hard link's dentry - so the inode keeps an O_PATH fd on
 * the file (in->fd, otherwise unused by local inodes; closed when the
 * inode is freed) and resolve() reaches it through that from now on.
 * Best effort: without the fd, such requests fail with ENOENT as before.
 */
static void local_detach(struct vs_fs *fs, struct vs_inode *parent,
			 const char *name, const char *path)
{
	struct vs_inode *in;
	struct stat st;
	int fd;

	if (fstatat(fs->cfg.upper_fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode))
		return;
	pthread_mutex_lock(&fs->table.lock);
	in = inode_local_find(&fs->table, st.st_ino);
	if (in && (in->fd >= 0 || in->parent != parent ||
		   strcmp(in->name, name) != 0))
		in = NULL;
	if (in)
		in->nlookup++; /* pinned while we open */
	pthread_mutex_unlock(&fs->table.lock);
	if (!in)
		return;
	fd = openat(fs->cfg.upper_fd, path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	pthread_mutex_lock(&fs->table.lock);
	if (fd >= 0 && in->fd < 0) {
		in->fd = fd;
		fd = -1;
	}
	inode_forget(&fs->table, in, 1);
	pthread_mutex_unlock(&fs->table.lock);
	if (fd >= 0)
		close(fd);
}

static void vs_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct vs_fs *fs = fs_of(req);
	char path[PATH_MAX];
	struct vs_inode *in;
	struct stat st;
	int r;

	r = resolve(fs, ino, &in, path, sizeof(path));
	if (r == 0 && in->local) {
		if (fi && fi->fh && !S_ISDIR(kind_type(in->kind))) {
			r = fstat((int)fi->fh, &st) < 0 ? -errno : 0;
			st.st_ino = ino;
		} else {
			r = local_stat(fs, path, ino, &st);
		}
	} else if (r == 0) {
		pthread_mutex_lock(&fs->table.lock);
		fs_synced_stat(fs, in, &st);
		pthread_mutex_unlock(&fs->table.lock);
	}
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, fs->cfg.attr_timeout);
}

static void vs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int valid, struct fuse_file_info *fi)
{
	struct vs_fs *fs = fs_of(req);
	int ufd = fs->cfg.upper_fd;
	char path[PATH_MAX];
	struct vs_inode *in;
	struct stat st;
	int r;

	r = resolve(fs, ino, &in, path, sizeof(path));
	if (r < 0)
		goto out;
	if (!in->local && fs_own_request(fs, req)) {
		/* the updater touching a changed file: apply, sync nothing */
		pthread_mutex_lock(&fs->table.lock);
		if (valid & FUSE_SET_ATTR_MODE)
			in->mode = attr->st_mode & 07777;
		if ((valid & FUSE_SET_ATTR_MTIME) &&
		    !(valid & FUSE_SET_ATTR_MTIME_NOW))
			in->mtime_ns =
			    (int64_t)attr->st_mtim.tv_sec * 1000000000 +
			    attr->st_mtim.tv_nsec;
		in->atime_set = false; /* a new version: atime follows */
		fs_synced_stat(fs, in, &st);
		pthread_mutex_unlock(&fs->table.lock);
		goto out;
	}
	if (!in->local) {
		r = fs->cfg.journal ? fsw_setattr(fs, in, attr, valid) : -EROFS;
		/* truncate(2) of a path: no close follows to journal it (an
		 * open's O_TRUNC comes with the open, atomic_o_trunc) */
		if (r == 0 && (valid & FUSE_SET_ATTR_SIZE) && !(fi && fi->fh))
			r = fsw_flush(fs, in);
		if (r == 0) {
			pthread_mutex_lock(&fs->table.lock);
			fs_synced_stat(fs, in, &st);
			pthread_mutex_unlock(&fs->table.lock);
		}
		goto out;
	}
	if ((valid & FUSE_SET_ATTR_MODE) &&
	    fchmodat(ufd, path, attr->st_mode & 07777, 0) < 0)
		goto fail;
	if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		uid_t uid =
		    valid & FUSE_SET_ATTR_UID ? attr->st_uid : (uid_t)-1;
		gid_t gid =
		    valid & FUSE_SET_ATTR_GID ? attr->st_gid : (gid_t)-1;

		if (fchownat(ufd, path, uid, gid, nofollow(path)) < 0)
			goto fail;
	}
	if (valid & FUSE_SET_ATTR_SIZE) {
		if (fi && fi->fh) {
			if (ftruncate((int)fi->fh, attr->st_size) < 0)
				goto fail;
		} else {
			int fd = openat(ufd, path, O_WRONLY | O_CLOEXEC);

			if (fd < 0)
				goto fail;
			r = ftruncate(fd, attr->st_size) < 0 ? -errno : 0;
			close(fd);
			if (r < 0)
				goto out;
		}
	}
	if (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
		struct timespec tv[2] = {{.tv_nsec = UTIME_OMIT},
					 {.tv_nsec = UTIME_OMIT}};

		if (valid & FUSE_SET_ATTR_ATIME_NOW)
			tv[0].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_ATIME)
			tv[0] = attr->st_atim;
		if (valid & FUSE_SET_ATTR_MTIME_NOW)
			tv[1].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_MTIME)
			tv[1] = attr->st_mtim;
		if (utimensat(ufd, path, tv, nofollow(path)) < 0)
			goto fail;
	}
	r = local_stat(fs, path, ino, &st);
	goto out;
fail:
	r = -errno;
out:
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, fs->cfg.attr_timeout);
}

static void vs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct vs_fs *fs = fs_of(req);
	char path[PATH_MAX], target[PATH_MAX + 1];
	struct vs_inode *in;
	ssize_t n;
	int r;

	r = resolve(fs, ino, &in, path, sizeof(path));
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	if (in->kind != VS_KIND_SYMLINK) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (!in->local) {
		pthread_mutex_lock(&fs->table.lock);
		snprintf(target, sizeof(target), "%s", in->target);
		pthread_mutex_unlock(&fs->table.lock);
		fuse_reply_readlink(req, target);
		return;
	}
	n = readlinkat(fs->cfg.upper_fd, path, target, sizeof(target) - 1);
	if (n < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	target[n] = '\0';
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
 * Common start of the calls that create @name in @parent: check the name;
 * for a local-only target compute the upper path and create the
 * directories leading to it (0); a synced target is 1 with --writable (the
 * caller creates it with fsw_create) and EROFS without.
 */
static int prepare_create(struct vs_fs *fs, fuse_ino_t parent_ino,
			  const char *name, struct vs_inode **parent,
			  char *path, size_t size)
{
	int r;

	r = vs_name_check(name, strlen(name));
	if (r < 0)
		return r;
	r = resolve(fs, parent_ino, parent, NULL, 0);
	if (r < 0)
		return r;
	if ((*parent)->kind != VS_KIND_DIR)
		return -ENOTDIR;
	if (!is_local_target(fs, *parent, name)) {
		bool exists;

		pthread_mutex_lock(&fs->table.lock);
		exists = inode_child_find(*parent, name) != NULL;
		pthread_mutex_unlock(&fs->table.lock);
		if (exists)
			return -EEXIST;
		if (!fs->cfg.journal)
			return -EROFS;
		return synced_name_ok(name) ? 1 : -EINVAL; /* 1: synced */
	}
	r = upper_path(fs, *parent, name, path, size);
	if (r < 0)
		return r;
	return (*parent)->local ? 0 : upper_mkdirs(fs, path);
}

/* Reply with the entry of synced inode @in (its lookup already counted). */
static void reply_synced_entry(fuse_req_t req, struct vs_fs *fs,
			       struct vs_inode *in)
{
	struct fuse_entry_param e;

	pthread_mutex_lock(&fs->table.lock);
	synced_entry(fs, in, &e);
	pthread_mutex_unlock(&fs->table.lock);
	fuse_reply_entry(req, &e);
}

/* Create @name in synced @parent (--writable) and reply. */
static void synced_create(fuse_req_t req, struct vs_fs *fs,
			  struct vs_inode *parent, const char *name,
			  enum vs_kind kind, mode_t mode, const char *target)
{
	struct vs_inode *in = NULL;
	int r = fsw_create(fs, parent, name, kind, mode, target, &in);

	if (r == 0 && kind == VS_KIND_FILE)
		r = fsw_flush(fs, in); /* mknod: no close will follow */
	if (r < 0 && !in) {
		fuse_reply_err(req, -r);
		return;
	}
	reply_synced_entry(req, fs, in);
}

static void reply_created(fuse_req_t req, struct vs_fs *fs,
			  struct vs_inode *parent, const char *name,
			  const char *path)
{
	struct fuse_entry_param e;
	int r = local_lookup(fs, parent, name, path, &e);

	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_entry(req, &e);
}

static void vs_mknod(fuse_req_t req, fuse_ino_t parent_ino, const char *name,
		     mode_t mode, dev_t rdev)
{
	struct vs_fs *fs = fs_of(req);
	struct vs_inode *parent;
	char path[PATH_MAX];
	int r;

	if (fs_own_request(fs, req)) {
		remote_create(req, fs, parent_ino, name, VS_KIND_FILE);
		return;
	}
	r = prepare_create(fs, parent_ino, name, &parent, path, sizeof(path));
	if (r == 1) {
		if (!S_ISREG(mode)) {
			fuse_reply_err(req, EPERM); /* no fifos or devices */
			return;
		}
		synced_create(req, fs, parent, name, VS_KIND_FILE, mode, NULL);
		return;
	}
	if (r == 0 && mknodat(fs->cfg.upper_fd, path, mode, rdev) < 0)
		r = -errno;
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		reply_created(req, fs, parent, name, path);
}

static void vs_mkdir(fuse_req_t req, fuse_ino_t parent_ino, const char *name,
		     mode_t mode)
{
	struct vs_fs *fs = fs_of(req);
	struct vs_inode *parent;
	char path[PATH_MAX];
	int r;

	if (fs_own_request(fs, req)) {
		remote_create(req, fs, parent_ino, name, VS_KIND_DIR);
		return;
	}
	r = prepare_create(fs, parent_ino, name, &parent, path, sizeof(path));
	if (r == 1) {
		synced_create(req, fs, parent, name, VS_KIND_DIR, mode, NULL);
		return;
	}
	if (r == 0 && mkdirat(fs->cfg.upper_fd, path, mode) < 0)
		r = -errno;
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		reply_created(req, fs, parent, name, path);
}

static void vs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent_ino,
		       const char *name)
{
	struct vs_fs *fs = fs_of(req);
	struct vs_inode *parent;
	char path[PATH_MAX];
	int r;

	if (fs_own_request(fs, req)) {
		remote_create(req, fs, parent_ino, name, VS_KIND_SYMLINK);
		return;
	}
	r = prepare_create(fs, parent_ino, name, &parent, path, sizeof(path));
	if (r == 1) {
		if (strlen(link) > VS_PATH_MAX) {
			fuse_reply_err(req, ENAMETOOLONG);
			return;
		}
		synced_create(req, fs, parent, name, VS_KIND_SYMLINK, 0777,
			      link);
		return;
	}
	if (r == 0 && symlinkat(link, fs->cfg.upper_fd, path) < 0)
		r = -errno;
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		reply_created(req, fs, parent, name, path);
}

static void vs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent_ino,
		    const char *name)
{
	struct vs_fs *fs = fs_of(req);
	char path[PATH_MAX], from[PATH_MAX];
	struct vs_inode *parent, *in;
	int r;

	r = resolve(fs, ino, &in, from, sizeof(from));
	if (r == 0 && !in->local)
		r = fs->cfg.journal ? -EPERM : -EROFS; /* no synced links */
	if (r == 0)
		r = prepare_create(fs, parent_ino, name, &parent, path,
				   sizeof(path));
	if (r == 1)
		r = -EXDEV; /* a local file linked into a synced directory */
	if (r == 0 && linkat(fs->cfg.upper_fd, from, fs->cfg.upper_fd, path,
			     nofollow(from) ? 0 : AT_SYMLINK_FOLLOW) < 0)
		r = -errno;
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		reply_created(req, fs, parent, name, path);
}

/* Unlink or rmdir @name of @parent (local entries only). */
static void remove_entry(fuse_req_t req, fuse_ino_t parent_ino,
			 const char *name, int flags)
{
	struct vs_fs *fs = fs_of(req);
	struct vs_inode *parent;
	char path[PATH_MAX];
	int r;

	if (fs_own_request(fs, req)) {
		remote_remove(req, fs, parent_ino, name, flags & AT_REMOVEDIR);
		return;
	}
	r = resolve(fs, parent_ino, &parent, NULL, 0);
	if (r == 0 && !is_local_target(fs, parent, name)) {
		bool exists;

		if (fs->cfg.journal) {
			r = fsw_remove(fs, parent, name, flags & AT_REMOVEDIR);
			fuse_reply_err(req, -r);
			return;
		}
		pthread_mutex_lock(&fs->table.lock);
		exists = inode_child_find(parent, name) != NULL;
		pthread_mutex_unlock(&fs->table.lock);
		r = exists ? -EROFS : -ENOENT;
	}
	if (r == 0)
		r = upper_path(fs, parent, name, path, sizeof(path));
	if (r == 0 && !(flags & AT_REMOVEDIR))
		local_detach(fs, parent, name, path);
	if (r == 0 && unlinkat(fs->cfg.upper_fd, path, flags) < 0)
		r = -errno;
	fuse_reply_err(req, -r);
}

static void vs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, 0);
}

static void vs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, AT_REMOVEDIR);
}

static void vs_rename(fuse_req_t req, fuse_ino_t parent_ino, const char *name,
		      fuse_ino_t newparent_ino, const char *newname,
		      unsigned int flags)
{
	struct vs_fs *fs = fs_of(req);
	struct vs_inode *parent, *newparent, *in = NULL;
	char from[PATH_MAX], to[PATH_MAX];
	struct stat st;
	int r;

	if (fs_own_request(fs, req)) {
		remote_rename(req, fs, parent_ino, name, newparent_ino,
			      newname);
		return;
	}
	r = resolve(fs, parent_ino, &parent, NULL, 0);
	if (r == 0 && fs->cfg.journal &&
	    resolve(fs, newparent_ino, &newparent, NULL, 0) == 0) {
		bool src_local = is_local_target(fs, parent, name);
		bool dst_local = is_local_target(fs, newparent, newname);

		if (!src_local && !dst_local) {
			r = synced_name_ok(newname)
				? fsw_rename(fs, parent, name, newparent,
					     newname, flags)
				: -EINVAL;
			fuse_reply_err(req, -r);
			return;
		}
		if (src_local != dst_local) {
			fuse_reply_err(req, EXDEV); /* local-only <-> synced */
			return;
		}
	}
	if (r == 0)
		r = prepare_create(fs, newparent_ino, newname, &newparent, to,
				   sizeof(to));
	if (r == -EEXIST || r == 1)
		r = -EROFS; /* renaming over or into a synced entry */
	if (r == 0 && !is_local_target(fs, parent, name))
		r = -EROFS;
	if (r == 0)
		r = upper_path(fs, parent, name, from, sizeof(from));
	if (r == 0 && !(flags & RENAME_EXCHANGE))
		local_detach(fs, newparent, newname, to);
	if (r == 0 &&
	    renameat2(fs->cfg.upper_fd, from, fs->cfg.upper_fd, to, flags) < 0)
		r = -errno;
	if (r == 0 &&
	    fstatat(fs->cfg.upper_fd, to, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		/* keep a known inode's name in step with the upper layer */
		pthread_mutex_lock(&fs->table.lock);
		in = inode_local_get(&fs->table, newparent, newname, st.st_ino,
				     mode_kind(st.st_mode));
		if (in && in->nlookup == 0)
			inode_forget(&fs->table, in, 0);
		pthread_mutex_unlock(&fs->table.lock);
	}
	fuse_reply_err(req, -r);
}

/*
 * fi->fh of an open of a synced file that may write (not --read-only):
 * its RELEASE, the last close, is a commit point. Other opens of synced
 * files have fh 0.
 */
#define SYNCED_WRITER 1

#define VS_LEARN_MAX 4096

/* While learning, note the first open of synced file @in. */
static void learn_record(struct vs_fs *fs, struct vs_inode *in)
{
	char path[PATH_MAX];
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

static void vs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct vs_fs *fs = fs_of(req);
	char path[PATH_MAX], spath[PATH_MAX];
	struct vs_inode *in;
	int r, fd;

	r = resolve(fs, ino, &in, path, sizeof(path));
	if (r < 0)
		goto fail;
	if (in->local) {
		fd = openat(fs->cfg.upper_fd, path,
			    (fi->flags & ~O_NOFOLLOW) | O_CLOEXEC);
		if (fd < 0) {
			r = -errno;
			goto fail;
		}
		fi->fh = (uint64_t)fd;
		fuse_reply_open(req, fi);
		return;
	}
	if (in->kind == VS_KIND_DIR) {
		r = -EISDIR;
		goto fail;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		/* (fsw_open: ESTALE for an inode a remote edit has just
		 * replaced; a reader reads the old version whole) */
		r = fs->cfg.journal ? fsw_open(fs, in, fi->flags) : -EROFS;
		if (r < 0)
			goto fail;
	}
	pthread_rwlock_wrlock(&in->fd_lock);
	if (in->fd < 0 && in->wfd < 0 && in->hash[0]) {
		pthread_mutex_lock(&fs->table.lock);
		r = inode_path(in, spath, sizeof(spath));
		pthread_mutex_unlock(&fs->table.lock);
		if (r == 0)
			r = vs_content_open(fs->cfg.content, in->hash, in->size,
					    spath, &fd);
		if (r == 0)
			in->fd = fd;
	}
	pthread_rwlock_unlock(&in->fd_lock);
	if (r < 0)
		goto fail;
	learn_record(fs, in);
	fi->fh = 0;
	if (fs->cfg.journal &&
	    ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))) {
		fi->fh = SYNCED_WRITER;
	}
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
	return;
fail:
	fuse_reply_err(req, -r);
}

static void vs_create(fuse_req_t req, fuse_ino_t parent_ino, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct vs_fs *fs = fs_of(req);
	struct fuse_entry_param e;
	struct vs_inode *parent;
	char path[PATH_MAX];
	int r, fd = -1;

	r = prepare_create(fs, parent_ino, name, &parent, path, sizeof(path));
	if (r == 1) {
		struct vs_inode *in = NULL;

		r = fsw_create(fs, parent, name, VS_KIND_FILE, mode, NULL, &in);
		if (r < 0) {
			fuse_reply_err(req, -r);
			return;
		}
		pthread_mutex_lock(&fs->table.lock);
		synced_entry(fs, in, &e);
		pthread_mutex_unlock(&fs->table.lock);
		fi->fh = SYNCED_WRITER;
		fi->keep_cache = 1;
		fuse_reply_create(req, &e, fi);
		return;
	}
	if (r == 0) {
		fd = openat(fs->cfg.upper_fd, path,
			    (fi->flags & ~O_NOFOLLOW) | O_CREAT | O_CLOEXEC,
			    mode);
		if (fd < 0)
			r = -errno;
	}
	if (r == 0)
		r = local_lookup(fs, parent, name, path, &e);
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uint64_t)fd;
	fuse_reply_create(req, &e, fi);
}

static void vs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct vs_fs *fs = fs_of(req);
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	struct vs_inode *in;

	if (resolve(fs, ino, &in, NULL, 0) < 0) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].pos = off;
	if (in->local) {
		buf.buf[0].fd = (int)fi->fh;
		fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
		return;
	}
	/* shared: the updater cannot swap (and close) the fd under us */
	pthread_rwlock_rdlock(&in->fd_lock);
	buf.buf[0].fd = in->wfd >= 0 ? in->wfd : in->fd;
	if (buf.buf[0].fd < 0)
		fuse_reply_err(req, EIO);
	else
		fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
	pthread_rwlock_unlock(&in->fd_lock);
}

static void vs_write_buf(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_bufvec *in_buf, off_t off,
			 struct fuse_file_info *fi)
{
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in_buf));
	struct vs_fs *fs = fs_of(req);
	struct vs_inode *in = NULL;
	ssize_t n;

	if (resolve(fs, ino, &in, NULL, 0) < 0) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	if (!in->local) {
		size_t written = 0;
		int r = fs->cfg.journal
			    ? fsw_write(fs, in, in_buf, off, &written)
			    : -EROFS;

		if (r < 0)
			fuse_reply_err(req, -r);
		else
			fuse_reply_write(req, written);
		return;
	}
	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = (int)fi->fh;
	out.buf[0].pos = off;
	n = fuse_buf_copy(&out, in_buf, 0);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void vs_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct vs_fs *fs = fs_of(req);
	struct vs_inode *in;
	int r = 0;

	if (!fi->fh || resolve(fs, ino, &in, NULL, 0) < 0) {
		fuse_reply_err(req, 0);
		return;
	}
	if (in->local) {
		close((int)fi->fh);
	} else {
		/* the last close of a synced file opened for writing: a
		 * commit point (journaled; committed behind) */
		r = fsw_flush(fs, in);
	}
	fuse_reply_err(req, -r);
}

static void vs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	/*
	 * ENOSYS stops the kernel sending FLUSH for the life of the mount:
	 * one round trip less in every close(). The commit points of synced
	 * files are RELEASE (the last close, which close() does not wait
	 * for), rename, fsync and chmod (write.c).
	 */
	fuse_reply_err(req, ENOSYS);
}

static void vs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	struct vs_fs *fs = fs_of(req);
	struct vs_inode *in;
	int r = 0;

	if (fs->cfg.journal && resolve(fs, ino, &in, NULL, 0) == 0 &&
	    !in->local) {
		/* returns once PostgreSQL has it (EIO if it cannot) */
		r = in->kind == VS_KIND_FILE ? fsw_fsync(fs, in) : 0;
		fuse_reply_err(req, -r);
		return;
	}
	if (fi->fh && (resolve(fs, ino, &in, NULL, 0) < 0 || !in->local)) {
		fuse_reply_err(req, 0);
		return;
	}

	if (fi->fh)
		r = (datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh)) < 0
			? errno
			: 0;
	fuse_reply_err(req, r);
}

static void vs_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct vs_fs *fs = fs_of(req);
	struct local_dir *d = NULL;
	char path[PATH_MAX];
	struct vs_inode *in;
	int r, fd;

	r = resolve(fs, ino, &in, path, sizeof(path));
	if (r < 0)
		goto fail;
	if (in->kind != VS_KIND_DIR) {
		r = -ENOTDIR;
		goto fail;
	}
	if (!in->local) {
		fi->fh = 0;
		fi->keep_cache = 1;
		fi->cache_readdir = 1;
		fuse_reply_open(req, fi);
		return;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		r = -ENOMEM;
		goto fail;
	}
	fd = openat(fs->cfg.upper_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(d->dp = fdopendir(fd))) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		free(d);
		goto fail;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	fuse_reply_open(req, fi);
	return;
fail:
	fuse_reply_err(req, -r);
}

/* A reply buffer for readdir. */
struct dirbuf {
	char *p;
	size_t size, len;
};

/* Add one entry; false when the buffer is full. */
static bool dirbuf_add(fuse_req_t req, struct dirbuf *b, const char *name,
		       fuse_ino_t ino, mode_t type, off_t next)
{
	struct stat st = {.st_ino = ino, .st_mode = type};
	size_t n = fuse_add_direntry(req, b->p + b->len, b->size - b->len, name,
				     &st, next);

	if (n > b->size - b->len)
		return false;
	b->len += n;
	return true;
}

/*
 * Synced directory: ".", "..", the children in name order, then the
 * local-only names present in the upper layer at the same path. The offset
 * of an entry is its position plus one, stable while the tree is.
 */
static void readdir_synced(fuse_req_t req, struct vs_fs *fs,
			   struct vs_inode *dir, struct dirbuf *b, off_t off)
{
	char path[PATH_MAX];
	size_t n, k;
	off_t pos;

	pthread_mutex_lock(&fs->table.lock);
	n = dir->nchildren;
	for (pos = off; pos < (off_t)(2 + n); pos++) {
		bool ok;

		if (pos == 0)
			ok = dirbuf_add(req, b, ".", dir->ino, S_IFDIR, 1);
		else if (pos == 1)
			ok = dirbuf_add(req, b, "..",
					dir->parent ? dir->parent->ino
						    : dir->ino,
					S_IFDIR, 2);
		else {
			struct vs_inode *c = dir->children[pos - 2];

			ok = dirbuf_add(req, b, c->name, c->ino,
					kind_type(c->kind), pos + 1);
		}
		if (!ok) {
			pthread_mutex_unlock(&fs->table.lock);
			return;
		}
	}
	pthread_mutex_unlock(&fs->table.lock);
	for (k = (size_t)(pos - (off_t)(2 + n));
	     fs->cfg.local.names && fs->cfg.local.names[k]; k++) {
		const char *name = fs->cfg.local.names[k];
		struct stat st;

		if (upper_path(fs, dir, name, path, sizeof(path)) < 0 ||
		    fstatat(fs->cfg.upper_fd, path, &st, AT_SYMLINK_NOFOLLOW) <
			0)
			continue;
		/* the kernel looks the entry up before using the inode */
		if (!dirbuf_add(req, b, name, VS_UNKNOWN_INO,
				st.st_mode & S_IFMT, (off_t)(2 + n + k + 1)))
			return;
	}
}

static void readdir_local(fuse_req_t req, struct local_dir *d, struct dirbuf *b,
			  off_t off)
{
	if (off != d->offset) {
		seekdir(d->dp, off);
		d->entry = NULL;
		d->offset = off;
	}
	for (;;) {
		if (!d->entry) {
			errno = 0;
			d->entry = readdir(d->dp);
			if (!d->entry)
				return;
		}
		if (!dirbuf_add(req, b, d->entry->d_name, VS_UNKNOWN_INO,
				(mode_t)DTTOIF(d->entry->d_type),
				d->entry->d_off))
			return;
		d->offset = d->entry->d_off;
		d->entry = NULL;
	}
}

static void vs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct vs_fs *fs = fs_of(req);
	struct dirbuf b = {.size = size};
	struct vs_inode *in;

	if (resolve(fs, ino, &in, NULL, 0) < 0) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	b.p = malloc(size);
	if (!b.p) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (in->local)
		readdir_local(req, (struct local_dir *)(uintptr_t)fi->fh, &b,
			      off);
	else
		readdir_synced(req, fs, in, &b, off);
	fuse_reply_buf(req, b.p, b.len);
	free(b.p);
}

static void vs_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct local_dir *d = (struct local_dir *)(uintptr_t)fi->fh;

	if (d) {
		closedir(d->dp);
		free(d);
	}
	fuse_reply_err(req, 0);
}

static void vs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct vs_fs *fs = fs_of(req);
	struct statvfs sv;

	if (fstatvfs(fs->cfg.upper_fd, &sv) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	sv.f_namemax = VS_NAME_MAX;
	fuse_reply_statfs(req, &sv);
}

static void vs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	/* no xattrs: ENOSYS makes the kernel stop asking (one round trip
	 * less per file for ls -l) */
	fuse_reply_err(req, ENOSYS);
}

static void vs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	fuse_reply_err(req, ENOSYS);
}

static void vs_init(void *userdata, struct fuse_conn_info *conn)
{
	/* O_TRUNC comes with the open (fsw_open), not as a setattr without
	 * a handle, which would be journaled as a truncate(2) */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

static const struct fuse_lowlevel_ops vs_ops = {
    .init = vs_init,
    .lookup = vs_lookup,
    .forget = vs_forget,
    .forget_multi = vs_forget_multi,
    .getattr = vs_getattr,
    .setattr = vs_setattr,
    .readlink = vs_readlink,
    .mknod = vs_mknod,
    .mkdir = vs_mkdir,
    .symlink = vs_symlink,
    .link = vs_link,
    .unlink = vs_unlink,
    .rmdir = vs_rmdir,
    .rename = vs_rename,
    .open = vs_open,
    .create = vs_create,
    .read = vs_read,
    .write_buf = vs_write_buf,
    .flush = vs_flush,
    .release = vs_release,
    .fsync = vs_fsync,
    .opendir = vs_opendir,
    .readdir = vs_readdir,
    .releasedir = vs_releasedir,
    .statfs = vs_statfs,
    .getxattr = vs_getxattr,
    .listxattr = vs_listxattr,
};

int vs_fs_new(struct vs_fs **out, const struct vs_fs_config *cfg,
	      const struct vs_manifest *m)
{
	struct vs_fs *fs = calloc(1, sizeof(*fs));
	int r;

	if (!fs)
		return -ENOMEM;
	fs->cfg = *cfg;
	fs->pending.fd = -1;
	pthread_mutex_init(&fs->learn_lock, NULL);
	pthread_mutex_init(&fs->own_lock, NULL);
	pthread_mutex_init(&fs->ns_lock, NULL);
	r = inode_table_init(&fs->table);
	if (r < 0) {
		free(fs);
		return r;
	}
	r = inode_table_build(&fs->table, m, &cfg->local);
	if (r == 0 && cfg->journal)
		r = fsw_overlay_journal(fs);
	if (r < 0) {
		vs_fs_free(fs);
		return r;
	}
	*out = fs;
	return 0;
}

void vs_fs_free(struct vs_fs *fs)
{
	if (!fs)
		return;
	if (fs->pending.fd >= 0)
		close(fs->pending.fd);
	for (size_t i = 0; i < fs->nlearned; i++)
		free(fs->learned[i]);
	free(fs->learned);
	pthread_mutex_destroy(&fs->learn_lock);
	pthread_mutex_destroy(&fs->own_lock);
	pthread_mutex_destroy(&fs->ns_lock);
	inode_table_release(&fs->table);
	free(fs);
}

int vs_fs_run(struct vs_fs *fs, struct fuse_args *args,
	      void (*ready_cb)(void *arg), void (*stop_cb)(void *arg),
	      void *cb_arg)
{
	struct fuse_loop_config loop = {.clone_fd = 0, .max_idle_threads = 16};
	struct fuse_session *se;
	int r = -EIO;

	se = fuse_session_new(args, &vs_ops, sizeof(vs_ops), fs);
	if (!se) {
		vs_error("cannot start FUSE session (bad -o option?)");
		return -EINVAL;
	}
	fs->se = se;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_destroy;
	if (fuse_session_mount(se, fs->cfg.mountpoint) != 0) {
		vs_error("cannot mount on '%s'", fs->cfg.mountpoint);
		goto out_signals;
	}
	if (fuse_daemonize(fs->cfg.foreground) != 0)
		goto out_unmount;
	if (ready_cb)
		ready_cb(cb_arg);
	if (fs->cfg.single_thread)
		r = fuse_session_loop(se);
	else
		r = fuse_session_loop_mt(se, &loop);
	r = r < 0 ? r : 0; /* a positive value is the signal that ended it */
	/* no RELEASE comes for what is still open: save it now */
	fsw_save_all(fs);
out_unmount:
	/* unmounting fails any call the updater still has on the mount */
	fuse_session_unmount(se);
	if (stop_cb)
		stop_cb(cb_arg);
out_signals:
	fuse_remove_signal_handlers(se);
out_destroy:
	fs->se = NULL;
	fuse_session_destroy(se);
	return r;
}
