/*
 * local.c - the FUSE handlers of local-only paths (local_i.h).
 *
 * DESIGN
 * Local-only paths (node_modules/, .git/, dist/ ...) are never synced:
 * they are passed through to the upper directory (the cache dir's, upper_fd)
 * with *at() calls on paths computed from the inode tree (fs_upper_path),
 * so no fd is held per inode, but for a file whose name went while the
 * kernel still used it (local_detach). A local inode is keyed by the upper
 * file's st_ino and lives while the kernel knows it (inode_i.h). Local
 * names in a synced directory get the directories leading to them created
 * in the upper layer on their first creation.
 *
 * Runs on the FUSE threads. Locks: the table lock only, for the inode
 * tree, never across a call on the upper layer.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "local_i.h"
#include "vsync/banned.h"

/* An open local directory (fi->fh of an opendir). */
struct local_dir {
	DIR *dp;
	off_t offset;
	struct dirent *entry;
};

static enum vs_kind mode_kind(mode_t m)
{
	if (S_ISDIR(m))
		return VS_KIND_DIR;
	if (S_ISLNK(m))
		return VS_KIND_SYMLINK;
	return VS_KIND_FILE;
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

/* Look up (and count a lookup of) local entry @name of @parent, whose
 * upper path is @path. Replies to nothing. */
static int local_entry(struct vs_fs *fs, struct vs_inode *parent,
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
	fs_fill_entry(fs, e, &st, in->ino);
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

void local_lookup(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		  const char *name)
{
	struct fuse_entry_param e;
	char path[PATH_MAX];
	int r;

	r = fs_upper_path(fs, parent, name, path, sizeof(path));
	if (r == 0)
		r = local_entry(fs, parent, name, path, &e);
	if (r == -ENOENT) {
		fs_reply_negative(req, fs);
		return;
	}
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_entry(req, &e);
}

void local_getattr(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in,
		   const char *path, struct fuse_file_info *fi)
{
	struct stat st;
	int r;

	if (fi && fi->fh && in->kind != VS_KIND_DIR) {
		r = fstat((int)fi->fh, &st) < 0 ? -errno : 0;
		st.st_ino = in->ino;
	} else {
		r = local_stat(fs, path, in->ino, &st);
	}
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, fs->cfg.attr_timeout);
}

void local_setattr(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in,
		   const char *path, const struct stat *attr, int valid,
		   struct fuse_file_info *fi)
{
	int ufd = fs->cfg.upper_fd;
	struct stat st;
	int r;

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
	r = local_stat(fs, path, in->ino, &st);
	goto out;
fail:
	r = -errno;
out:
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, fs->cfg.attr_timeout);
}

void local_readlink(fuse_req_t req, struct vs_fs *fs, const char *path)
{
	char target[PATH_MAX + 1];
	ssize_t n;

	n = readlinkat(fs->cfg.upper_fd, path, target, sizeof(target) - 1);
	if (n < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	target[n] = '\0';
	fuse_reply_readlink(req, target);
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

/*
 * Common start of the calls that create @name in @parent: compute its
 * upper path and, in a synced directory, create the directories leading
 * to it.
 */
static int create_path(struct vs_fs *fs, struct vs_inode *parent,
		       const char *name, char *path, size_t size)
{
	int r = fs_upper_path(fs, parent, name, path, size);

	if (r < 0)
		return r;
	return parent->local ? 0 : upper_mkdirs(fs, path);
}

/*
 * Give upper path @path, just created for @req, to its caller, as a local
 * disk does: the daemon runs as root and would own everything. The group
 * is the caller's, or the directory's where that is setgid (and a
 * directory made there is setgid too, as mkdir(2) does). Nothing to do
 * when the daemon is not root (it cannot give files away, and a caller
 * other than it only reaches the mount with allow_other). 0 or -errno;
 * on failure the caller removes what it created.
 */
static int own_by_caller(fuse_req_t req, struct vs_fs *fs, const char *path)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	struct stat st;
	gid_t gid = ctx->gid;

	if (geteuid() != 0 || (ctx->uid == 0 && ctx->gid == 0))
		return 0;
	if (slash && (size_t)(slash - path) < sizeof(dir)) {
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = '\0';
	} else {
		snprintf(dir, sizeof(dir), "%s", ".");
	}
	if (fstatat(fs->cfg.upper_fd, dir, &st, 0) == 0 &&
	    (st.st_mode & S_ISGID))
		gid = st.st_gid;
	if (fchownat(fs->cfg.upper_fd, path, ctx->uid, gid,
		     AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

/* Undo the creation of @path (@dir: it is a directory). */
static void unmake(struct vs_fs *fs, const char *path, bool dir)
{
	unlinkat(fs->cfg.upper_fd, path, dir ? AT_REMOVEDIR : 0);
}

static void reply_created(fuse_req_t req, struct vs_fs *fs,
			  struct vs_inode *parent, const char *name,
			  const char *path, bool dir)
{
	struct fuse_entry_param e;
	int r = own_by_caller(req, fs, path);

	if (r < 0)
		unmake(fs, path, dir);
	else
		r = local_entry(fs, parent, name, path, &e);

	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_entry(req, &e);
}

void local_mknod(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		 const char *name, mode_t mode, dev_t rdev)
{
	char path[PATH_MAX];
	int r;

	r = create_path(fs, parent, name, path, sizeof(path));
	if (r == 0 && mknodat(fs->cfg.upper_fd, path, mode, rdev) < 0)
		r = -errno;
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		reply_created(req, fs, parent, name, path, false);
}

void local_mkdir(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		 const char *name, mode_t mode)
{
	char path[PATH_MAX];
	int r;

	r = create_path(fs, parent, name, path, sizeof(path));
	if (r == 0 && mkdirat(fs->cfg.upper_fd, path, mode) < 0)
		r = -errno;
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		reply_created(req, fs, parent, name, path, true);
}

void local_symlink(fuse_req_t req, struct vs_fs *fs, const char *link,
		   struct vs_inode *parent, const char *name)
{
	char path[PATH_MAX];
	int r;

	r = create_path(fs, parent, name, path, sizeof(path));
	if (r == 0 && symlinkat(link, fs->cfg.upper_fd, path) < 0)
		r = -errno;
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		reply_created(req, fs, parent, name, path, false);
}

void local_link(fuse_req_t req, struct vs_fs *fs, const char *from,
		struct vs_inode *parent, const char *name)
{
	char path[PATH_MAX];
	int r;

	r = create_path(fs, parent, name, path, sizeof(path));
	if (r == 0 && linkat(fs->cfg.upper_fd, from, fs->cfg.upper_fd, path,
			     nofollow(from) ? 0 : AT_SYMLINK_FOLLOW) < 0)
		r = -errno;
	if (r < 0) {
		fuse_reply_err(req, -r);
	} else {
		/* a new name of an inode: its owner stays */
		struct fuse_entry_param e;

		r = local_entry(fs, parent, name, path, &e);
		if (r < 0)
			fuse_reply_err(req, -r);
		else
			fuse_reply_entry(req, &e);
	}
}

void local_create(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		  const char *name, mode_t mode, struct fuse_file_info *fi)
{
	struct fuse_entry_param e;
	char path[PATH_MAX];
	bool created = false;
	int r, fd = -1;

	r = create_path(fs, parent, name, path, sizeof(path));
	if (r == 0) {
		/* exclusively first: only a file made here is given to the
		 * caller, never one that was there already */
		fd = openat(fs->cfg.upper_fd, path,
			    (fi->flags & ~O_NOFOLLOW) | O_CREAT | O_EXCL |
				O_CLOEXEC,
			    mode);
		created = fd >= 0;
		if (fd < 0 && errno == EEXIST && !(fi->flags & O_EXCL))
			fd = openat(fs->cfg.upper_fd, path,
				    (fi->flags & ~(O_NOFOLLOW | O_CREAT)) |
					O_CLOEXEC);
		if (fd < 0)
			r = -errno;
	}
	if (r == 0 && created) {
		r = own_by_caller(req, fs, path);
		if (r < 0) {
			close(fd);
			fd = -1;
			unmake(fs, path, false);
		}
	}
	if (r == 0)
		r = local_entry(fs, parent, name, path, &e);
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uint64_t)fd;
	fuse_reply_create(req, &e, fi);
}

void local_remove(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		  const char *name, int flags)
{
	char path[PATH_MAX];
	int r;

	r = fs_upper_path(fs, parent, name, path, sizeof(path));
	if (r == 0 && !(flags & AT_REMOVEDIR))
		local_detach(fs, parent, name, path);
	if (r == 0 && unlinkat(fs->cfg.upper_fd, path, flags) < 0)
		r = -errno;
	fuse_reply_err(req, -r);
}

void local_rename(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		  const char *name, struct vs_inode *newparent,
		  const char *newname, unsigned int flags)
{
	char from[PATH_MAX], to[PATH_MAX];
	struct vs_inode *in;
	struct stat st;
	int r;

	r = create_path(fs, newparent, newname, to, sizeof(to));
	if (r == 0)
		r = fs_upper_path(fs, parent, name, from, sizeof(from));
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

void local_open(fuse_req_t req, struct vs_fs *fs, const char *path,
		struct fuse_file_info *fi)
{
	int fd;

	fd = openat(fs->cfg.upper_fd, path,
		    (fi->flags & ~O_NOFOLLOW) | O_CLOEXEC);
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	fi->fh = (uint64_t)fd;
	fuse_reply_open(req, fi);
}

void local_read(fuse_req_t req, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = (int)fi->fh;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

void local_write_buf(fuse_req_t req, struct fuse_bufvec *in_buf, off_t off,
		     struct fuse_file_info *fi)
{
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in_buf));
	ssize_t n;

	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = (int)fi->fh;
	out.buf[0].pos = off;
	n = fuse_buf_copy(&out, in_buf, 0);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

void local_release(fuse_req_t req, struct fuse_file_info *fi)
{
	close((int)fi->fh);
	fuse_reply_err(req, 0);
}

void local_fsync(fuse_req_t req, int datasync, struct fuse_file_info *fi)
{
	int r = 0;

	if (fi->fh)
		r = (datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh)) < 0
			? errno
			: 0;
	fuse_reply_err(req, r);
}

void local_opendir(fuse_req_t req, struct vs_fs *fs, const char *path,
		   struct fuse_file_info *fi)
{
	struct local_dir *d;
	int r, fd;

	d = calloc(1, sizeof(*d));
	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fd = openat(fs->cfg.upper_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(d->dp = fdopendir(fd))) {
		r = errno;
		if (fd >= 0)
			close(fd);
		free(d);
		fuse_reply_err(req, r);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	fuse_reply_open(req, fi);
}

void local_readdir(fuse_req_t req, struct fuse_file_info *fi,
		   struct fs_dirbuf *b, off_t off)
{
	struct local_dir *d = (struct local_dir *)(uintptr_t)fi->fh;

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
		if (!fs_dirbuf_add(req, b, d->entry->d_name, VS_UNKNOWN_INO,
				   (mode_t)DTTOIF(d->entry->d_type),
				   d->entry->d_off))
			return;
		d->offset = d->entry->d_off;
		d->entry = NULL;
	}
}

void local_releasedir(struct fuse_file_info *fi)
{
	struct local_dir *d = (struct local_dir *)(uintptr_t)fi->fh;

	closedir(d->dp);
	free(d);
}
