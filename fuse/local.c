/*
 * local.c - the FUSE handlers of local-only paths (local_i.h).
 *
 * DESIGN
 * Local-only paths (node_modules/, .git/, dist/ ...) are never synced:
 * they are passed through to the upper directory (the cache dir's,
 * upper_fd), as libfuse's passthrough_ll does. Every local inode holds an
 * O_PATH fd on its upper file (inode_i.h), taken at its first lookup and
 * closed when the kernel forgets it; every call goes through it: on the
 * inode itself with AT_EMPTY_PATH, or with "/proc/self/fd/N" for the few
 * calls that take no fd that way (open, chmod, truncate, utimensat,
 * link), and on an entry with *at() relative to its parent's fd. No path
 * is computed from the inode tree, so nothing goes stale when a parent is
 * renamed or a name is removed while the kernel still uses the inode (the
 * fd keeps the upper inode, open or not), and paths of any length work
 * as on the disk below. The one exception is a local name in a synced
 * directory (node_modules in the project's root): its parent has no fd,
 * and is reached by its path from the upper directory, whose missing
 * directories are created on the first creation there.
 *
 * Lookup counts are the kernel's: a reply with an entry counts one (a new
 * inode, or the one already known for the upper file's dev/ino: another
 * hard link, or a name it was renamed to), FORGET drops them.
 *
 * Runs on the FUSE threads. Locks: the table lock only, around the
 * inode table (finding or creating an inode, counting a lookup), never
 * across a call on the upper layer but the close() of a freed inode's
 * O_PATH fd (inode_forget), which does no I/O.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "local_i.h"
#include "owner_i.h"
#include "vsync/clock.h"
#include "vsync/log.h"
#include "vsync/banned.h"

/* An open local directory (fi->fh of an opendir). */
struct local_dir {
	DIR *dp;
	off_t offset;
	struct dirent *entry;
};

/* Where an entry is in the upper layer, for *at() calls (at_entry). */
struct local_at {
	int dirfd;
	const char *name;
	char buf[PATH_MAX]; /* a synced parent: the entry's upper path */
};

/* "/proc/self/fd/N": the path of fd N, for calls that need a path */
#define PROC_FD_SIZE 32

static const char *proc_fd(char buf[PROC_FD_SIZE], int fd)
{
	snprintf(buf, PROC_FD_SIZE, "/proc/self/fd/%d", fd);
	return buf;
}

static enum vs_kind mode_kind(mode_t m)
{
	if (S_ISDIR(m))
		return VS_KIND_DIR;
	if (S_ISLNK(m))
		return VS_KIND_SYMLINK;
	return VS_KIND_FILE; /* and FIFOs, sockets, devices */
}

int local_upper_mkdirs(struct vs_fs *fs, const char *path)
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
 * Where entry @name of @parent is in the upper layer: a local parent's fd
 * and @name; for a synced parent the upper directory and @name's path
 * there, whose leading directories are created first if @mkdirs (for a
 * creation). 0 or -errno (-ENAMETOOLONG: a synced path too long).
 */
static int at_entry(struct vs_fs *fs, struct vs_inode *parent, const char *name,
		    bool mkdirs, struct local_at *at)
{
	int r;

	if (parent->local) {
		at->dirfd = parent->fd;
		at->name = name;
		return 0;
	}
	at->dirfd = fs->cfg.upper_fd;
	at->name = at->buf;
	r = fs_upper_path(fs, parent, name, at->buf, sizeof(at->buf));
	if (r == 0 && mkdirs)
		r = local_upper_mkdirs(fs, at->buf);
	return r;
}

/* The attributes of local @in: of its open file if @fi has one. */
static int local_stat(struct vs_inode *in, struct fuse_file_info *fi,
		      struct stat *st)
{
	int r;

	if (fi && fi->fh && in->kind != VS_KIND_DIR)
		r = fstat((int)fi->fh, st);
	else
		r = fstatat(in->fd, "", st,
			    AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	if (r < 0)
		return -errno;
	st->st_ino = in->ino;
	return 0;
}

/*
 * The entry of the upper file that O_PATH fd *@fd is on, with one kernel
 * lookup counted on its inode; a new inode takes the fd (*@fd becomes
 * -1), else the caller still closes it. 0 or -errno.
 */
static int entry_of_fd(struct vs_fs *fs, int *fd, struct fuse_entry_param *e)
{
	struct vs_inode *in;
	struct stat st;
	uint64_t ino = 0;

	if (fstatat(*fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	pthread_mutex_lock(&fs->table.lock);
	in = inode_local_get(&fs->table, st.st_dev, st.st_ino,
			     mode_kind(st.st_mode), fd);
	if (in)
		ino = in->ino;
	pthread_mutex_unlock(&fs->table.lock);
	if (!in)
		return -ENOMEM;
	fs_fill_entry(fs, e, &st, ino);
	return 0;
}

/* Note a failure to take an inode's fd: out of fds (EMFILE, ENFILE) is
 * logged the first time. Returns @r. */
static int fd_failed(int r, const char *name)
{
	static atomic_bool told;

	if ((r == -EMFILE || r == -ENFILE) && !atomic_exchange(&told, true))
		vs_warn("cannot hold an fd for local-only '%s': %s: every "
			"local inode the kernel keeps holds one; raise the "
			"hard RLIMIT_NOFILE (logged once)",
			name, strerror(-r));
	return r;
}

/* openat(@dirfd, @name, @flags, @mode), once more when out of fds and
 * fs_fds_reclaim made room. An fd or -errno. */
static int open_room(struct vs_fs *fs, int dirfd, const char *name, int flags,
		     mode_t mode)
{
	int fd = openat(dirfd, name, flags, mode);

	if (fd < 0)
		fd = -errno;
	if (fs_fds_out(fd) && fs_fds_reclaim(fs, NULL)) {
		fd = openat(dirfd, name, flags, mode);
		if (fd < 0)
			fd = -errno;
	}
	return fd;
}

/* The entry of @at (one lookup counted). 0 or -errno. */
static int lookup_at(struct vs_fs *fs, const struct local_at *at,
		     struct fuse_entry_param *e)
{
	int fd = open_room(fs, at->dirfd, at->name,
			   O_PATH | O_NOFOLLOW | O_CLOEXEC, 0);
	int r;

	if (fd < 0)
		return fd_failed(fd, at->name);
	r = entry_of_fd(fs, &fd, e);
	if (fd >= 0)
		close(fd);
	return r;
}

void local_lookup(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		  const char *name)
{
	struct fuse_entry_param e;
	struct local_at at;
	int r;

	r = at_entry(fs, parent, name, false, &at);
	if (r == 0)
		r = lookup_at(fs, &at, &e);
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
		   struct fuse_file_info *fi)
{
	struct stat st;
	int r = local_stat(in, fi, &st);

	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, fs->cfg.attr_timeout);
}

void local_setattr(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in,
		   const struct stat *attr, int valid,
		   struct fuse_file_info *fi)
{
	bool has_fd = fi && fi->fh && in->kind != VS_KIND_DIR;
	char proc[PROC_FD_SIZE];
	struct stat st;
	int r;

	proc_fd(proc, in->fd);
	if (valid & FUSE_SET_ATTR_MODE) {
		mode_t mode = attr->st_mode & 07777;

		if ((has_fd ? fchmod((int)fi->fh, mode)
			    : fchmodat(AT_FDCWD, proc, mode, 0)) < 0)
			goto fail;
	}
	if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		uid_t uid =
		    valid & FUSE_SET_ATTR_UID ? attr->st_uid : (uid_t)-1;
		gid_t gid =
		    valid & FUSE_SET_ATTR_GID ? attr->st_gid : (gid_t)-1;

		if (fchownat(in->fd, "", uid, gid,
			     AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			goto fail;
	}
	if ((valid & FUSE_SET_ATTR_SIZE) &&
	    (has_fd ? ftruncate((int)fi->fh, attr->st_size)
		    : truncate(proc, attr->st_size)) < 0)
		goto fail;
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
		/* following the /proc link reaches the inode itself, also a
		 * symlink's (never what it points to) */
		if (utimensat(AT_FDCWD, proc, tv, 0) < 0)
			goto fail;
	}
	r = local_stat(in, fi, &st);
	goto out;
fail:
	r = -errno;
out:
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, fs->cfg.attr_timeout);
}

void local_readlink(fuse_req_t req, struct vs_inode *in)
{
	char target[PATH_MAX + 1];
	ssize_t n;

	n = readlinkat(in->fd, "", target, sizeof(target));
	if (n < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	if ((size_t)n >= sizeof(target)) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	target[n] = '\0';
	fuse_reply_readlink(req, target);
}

/*
 * The chown of a new non-directory @fd (by own_by_caller) cleared the
 * set-id bits of its mode @made (S_ISGID only if group executable) that
 * its caller's creation on a disk keeps: put them back. S_ISUID always
 * (the caller owns the file), S_ISGID if the file's group @gid is one of
 * the caller's (else the kernel strips it at creation, as it did for
 * this request already when the directory is setgid). 0 or -errno.
 */
static int setid_back(fuse_req_t req, int fd, mode_t made, gid_t gid)
{
	char proc[PROC_FD_SIZE];
	mode_t keep = made & S_ISUID;
	struct stat st;

	if ((made & S_ISGID) && owner_caller_in_group(req, gid))
		keep |= S_ISGID;
	if (!keep)
		return 0;
	if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if ((st.st_mode & keep) == keep)
		return 0;
	/* following the /proc link reaches the inode itself */
	if (fchmodat(AT_FDCWD, proc_fd(proc, fd), (st.st_mode & 07777) | keep,
		     0) < 0)
		return -errno;
	return 0;
}

/*
 * Give the upper file that @fd (O_PATH or open) is on, just created in
 * @parent for @req, to its caller, as a local disk does: the daemon runs
 * as root and would own everything. The group is the caller's, or the
 * directory's where that is setgid (the upper file system made a new
 * directory there setgid already). Nothing to do when the daemon is not
 * root (it cannot give files away, and a caller other than it only
 * reaches the mount with allow_other). The set-id bits the chown clears
 * are put back where the caller's own creation keeps them (setid_back).
 * 0 or -errno; on failure the caller removes what it created.
 */
static int own_by_caller(fuse_req_t req, struct vs_fs *fs,
			 struct vs_inode *parent, int fd)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	char dir[PATH_MAX];
	struct stat st;
	gid_t gid = ctx->gid;
	int r;

	if (geteuid() != 0 || (ctx->uid == 0 && ctx->gid == 0))
		return 0;
	if (parent->local)
		r = fstatat(parent->fd, "", &st, AT_EMPTY_PATH);
	else if (fs_upper_path(fs, parent, NULL, dir, sizeof(dir)) < 0)
		r = -1;
	else
		r = fstatat(fs->cfg.upper_fd, dir, &st, 0);
	if (r == 0 && (st.st_mode & S_ISGID))
		gid = st.st_gid;
	if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ||
	    fchownat(fd, "", ctx->uid, gid,
		     AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return setid_back(req, fd, st.st_mode, gid);
}

/*
 * Reply to the creation of @at in @parent (made by mknodat, mkdirat or
 * symlinkat; a directory if @dir): give it to the caller and reply with
 * its entry, or remove it again and reply with the error.
 */
static void reply_made(fuse_req_t req, struct vs_fs *fs,
		       struct vs_inode *parent, const struct local_at *at,
		       bool dir)
{
	struct fuse_entry_param e;
	int r, fd;

	fd = open_room(fs, at->dirfd, at->name, O_PATH | O_NOFOLLOW | O_CLOEXEC,
		       0);
	r = fd < 0 ? fd_failed(fd, at->name) : 0;
	if (r == 0)
		r = own_by_caller(req, fs, parent, fd);
	if (r == 0)
		r = entry_of_fd(fs, &fd, &e);
	if (r < 0) {
		unlinkat(at->dirfd, at->name, dir ? AT_REMOVEDIR : 0);
	} else if (!parent->local) {
		/* a special node or a local-only name made in a synced
		 * directory changes its entries, as a disk's mtime says */
		int64_t now = vs_wall_ns();

		pthread_mutex_lock(&fs->table.lock);
		inode_dir_changed(parent, now);
		pthread_mutex_unlock(&fs->table.lock);
	}
	if (fd >= 0)
		close(fd);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_entry(req, &e);
}

void local_mknod(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		 const char *name, mode_t mode, dev_t rdev)
{
	struct local_at at;
	int r;

	r = at_entry(fs, parent, name, true, &at);
	if (r == 0 && mknodat(at.dirfd, at.name, mode, rdev) < 0)
		r = -errno;
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		reply_made(req, fs, parent, &at, false);
}

void local_mkdir(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		 const char *name, mode_t mode)
{
	struct local_at at;
	int r;

	r = at_entry(fs, parent, name, true, &at);
	if (r == 0 && mkdirat(at.dirfd, at.name, mode) < 0)
		r = -errno;
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		reply_made(req, fs, parent, &at, true);
}

void local_symlink(fuse_req_t req, struct vs_fs *fs, const char *link,
		   struct vs_inode *parent, const char *name)
{
	struct local_at at;
	int r;

	r = at_entry(fs, parent, name, true, &at);
	if (r == 0 && symlinkat(link, at.dirfd, at.name) < 0)
		r = -errno;
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		reply_made(req, fs, parent, &at, false);
}

void local_link(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in,
		struct vs_inode *parent, const char *name)
{
	char proc[PROC_FD_SIZE];
	struct fuse_entry_param e;
	struct local_at at;
	struct stat st;
	int r;

	/* following the /proc link reaches the inode itself, also a
	 * symlink's; a new name of it: its owner stays */
	r = at_entry(fs, parent, name, true, &at);
	if (r == 0 && linkat(AT_FDCWD, proc_fd(proc, in->fd), at.dirfd, at.name,
			     AT_SYMLINK_FOLLOW) < 0)
		r = -errno;
	if (r == 0)
		r = local_stat(in, NULL, &st);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	pthread_mutex_lock(&fs->table.lock);
	in->nlookup++;
	pthread_mutex_unlock(&fs->table.lock);
	fs_fill_entry(fs, &e, &st, in->ino);
	fuse_reply_entry(req, &e);
}

void local_create(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		  const char *name, mode_t mode, struct fuse_file_info *fi)
{
	char proc[PROC_FD_SIZE];
	struct fuse_entry_param e;
	struct local_at at;
	bool created = false;
	int r, fd = -1, pfd = -1, flags = fi->flags & ~O_NOFOLLOW;

	/* no-open mode: the fd made here becomes the inode's own, which
	 * reads too; a file made here may be opened for both whatever its
	 * mode (0444 included: cp, tar), and a later open(2) of it could
	 * not be, by a daemon that is not root */
	if (fs_no_open_files(fs) && (flags & O_ACCMODE) == O_WRONLY)
		flags = (flags & ~O_ACCMODE) | O_RDWR;
	r = at_entry(fs, parent, name, true, &at);
	if (r == 0) {
		/* exclusively first: only a file made here is given to the
		 * caller, never one that was there already */
		fd = open_room(fs, at.dirfd, at.name,
			       flags | O_CREAT | O_EXCL | O_CLOEXEC, mode);
		created = fd >= 0;
		if (fd == -EEXIST && !(fi->flags & O_EXCL))
			fd = open_room(fs, at.dirfd, at.name,
				       (fi->flags & ~(O_NOFOLLOW | O_CREAT)) |
					   O_CLOEXEC,
				       0);
		if (fd < 0)
			r = fd;
	}
	/* the inode's O_PATH fd: on the file opened, whatever its name
	 * became since */
	if (r == 0 && (pfd = open_room(fs, AT_FDCWD, proc_fd(proc, fd),
				       O_PATH | O_CLOEXEC, 0)) < 0)
		r = fd_failed(pfd, at.name);
	if (r == 0 && created)
		r = own_by_caller(req, fs, parent, pfd);
	if (r == 0)
		r = entry_of_fd(fs, &pfd, &e);
	if (r < 0 && created)
		unlinkat(at.dirfd, at.name, 0);
	if (pfd >= 0)
		close(pfd);
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		fuse_reply_err(req, -r);
		return;
	}
	if (fs_no_open_files(fs)) {
		/* no RELEASE comes for this handle once the kernel knows
		 * OPEN is not implemented: its fd serves as the inode's own
		 * when it reads and writes at any offset (not O_APPEND, not
		 * O_DIRECT), and is closed otherwise */
		struct vs_inode *in;
		int none = -1;

		pthread_mutex_lock(&fs->table.lock);
		in = inode_table_get(&fs->table, e.ino);
		pthread_mutex_unlock(&fs->table.lock);
		if (!in ||
		    ((created ? flags : fi->flags) & O_ACCMODE) != O_RDWR ||
		    (fi->flags & (O_APPEND | O_DIRECT)) ||
		    !atomic_compare_exchange_strong(&inode_local(in)->iofd,
						    &none, fd))
			close(fd);
		fi->fh = 0;
	} else {
		fi->fh = (uint64_t)fd;
	}
	fuse_reply_create(req, &e, fi);
}

void local_remove(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		  const char *name, int flags)
{
	struct local_at at;
	int r;

	/* an inode the kernel still uses keeps its upper file by its fd */
	r = at_entry(fs, parent, name, false, &at);
	if (r == 0 && unlinkat(at.dirfd, at.name, flags) < 0)
		r = -errno;
	fuse_reply_err(req, -r);
}

void local_rename(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		  const char *name, struct vs_inode *newparent,
		  const char *newname, unsigned int flags)
{
	struct local_at from, to;
	int r;

	r = at_entry(fs, newparent, newname, true, &to);
	if (r == 0)
		r = at_entry(fs, parent, name, false, &from);
	/* inodes are reached by their fds: nothing to update */
	if (r == 0 &&
	    renameat2(from.dirfd, from.name, to.dirfd, to.name, flags) < 0)
		r = -errno;
	fuse_reply_err(req, -r);
}

void local_open(fuse_req_t req, struct vs_inode *in, struct fuse_file_info *fi)
{
	char proc[PROC_FD_SIZE];
	int fd;

	fd = open(proc_fd(proc, in->fd), (fi->flags & ~O_NOFOLLOW) | O_CLOEXEC);
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	fi->fh = (uint64_t)fd;
	fuse_reply_open(req, fi);
}

/* Open @in's upper file with @flags into slot @slot, once: the slot's fd
 * or -errno. */
static int iofd_open(struct vs_fs *fs, struct vs_inode *in, _Atomic int *slot,
		     int flags)
{
	char proc[PROC_FD_SIZE];
	int fd = atomic_load(slot), none = -1;

	if (fd >= 0)
		return fd;
	fd = open_room(fs, AT_FDCWD, proc_fd(proc, in->fd), flags | O_CLOEXEC,
		       0);
	if (fd < 0)
		return fd;
	if (!atomic_compare_exchange_strong(slot, &none, fd)) {
		close(fd); /* another request opened it first */
		fd = none;
	}
	return fd;
}

/*
 * The inode's own open fd on local file @in (inode_i.h, iofd, rofd),
 * opened on first use: O_RDWR; for a read, O_RDONLY where the upper layer
 * refuses writing (a file being executed, a read-only one when the daemon
 * is not root). A write where O_RDWR is refused gets that errno (EACCES,
 * ETXTBSY ...), and tries again at the next write: a read-only fd is
 * never what a write is served with. An fd or -errno.
 */
static int local_iofd(struct vs_fs *fs, struct vs_inode *in, bool write)
{
	int fd = iofd_open(fs, in, &inode_local(in)->iofd, O_RDWR);

	if (fd >= 0 || write ||
	    (fd != -EACCES && fd != -EPERM && fd != -EROFS && fd != -ETXTBSY))
		return fd < 0 ? fd_failed(fd, "(an open local file)") : fd;
	fd = iofd_open(fs, in, &inode_local(in)->rofd, O_RDONLY);
	return fd < 0 ? fd_failed(fd, "(an open local file)") : fd;
}

/* The fd to serve a request on @in with: the handle's, or the inode's
 * own (fh 0). An fd or -errno. */
static int io_fd(struct vs_fs *fs, struct vs_inode *in,
		 struct fuse_file_info *fi, bool write)
{
	return fi && fi->fh ? (int)fi->fh : local_iofd(fs, in, write);
}

void local_read(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in,
		size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	int fd = io_fd(fs, in, fi, false);

	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = fd;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

void local_write_buf(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in,
		     struct fuse_bufvec *in_buf, off_t off,
		     struct fuse_file_info *fi)
{
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in_buf));
	int fd = io_fd(fs, in, fi, true);
	ssize_t n;

	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = fd;
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

void local_fsync(fuse_req_t req, struct vs_inode *in, int datasync,
		 struct fuse_file_info *fi)
{
	int fd = fi->fh ? (int)fi->fh : atomic_load(&inode_local(in)->iofd);
	int r = 0;

	/* (no fd of its own yet: nothing was written without a handle) */
	if (fd >= 0)
		r = (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? errno : 0;
	fuse_reply_err(req, r);
}

/* Open local directory @in as a struct local_dir. 0 or -errno. */
static int dir_open(struct vs_inode *in, struct local_dir **out)
{
	struct local_dir *d = calloc(1, sizeof(*d));
	int r, fd;

	if (!d)
		return -ENOMEM;
	fd = openat(in->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(d->dp = fdopendir(fd))) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		free(d);
		return r;
	}
	*out = d;
	return 0;
}

static void local_readdir_stream(fuse_req_t req, struct local_dir *d,
				 struct fs_dirbuf *b, off_t off)
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
		if (!fs_dirbuf_add(req, b, d->entry->d_name, VS_UNKNOWN_INO,
				   (mode_t)DTTOIF(d->entry->d_type),
				   d->entry->d_off))
			return;
		d->offset = d->entry->d_off;
		d->entry = NULL;
	}
}

void local_opendir(fuse_req_t req, struct vs_inode *in,
		   struct fuse_file_info *fi)
{
	struct local_dir *d = NULL;
	int r = dir_open(in, &d);

	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	fuse_reply_open(req, fi);
}

void local_readdir(fuse_req_t req, struct vs_inode *in,
		   struct fuse_file_info *fi, struct fs_dirbuf *b, off_t off)
{
	struct local_dir *d = (struct local_dir *)(uintptr_t)fi->fh;

	/* fh 0 (no-open mode): a stream for this request, from @off on
	 * (the kernel caches the listing) */
	if (!d) {
		if (dir_open(in, &d) < 0)
			return; /* an empty reply: the end */
		local_readdir_stream(req, d, b, off);
		closedir(d->dp);
		free(d);
		return;
	}
	local_readdir_stream(req, d, b, off);
}

void local_fsyncdir(fuse_req_t req, struct vs_inode *in, int datasync,
		    struct fuse_file_info *fi)
{
	struct local_dir *d = (struct local_dir *)(uintptr_t)fi->fh;
	int fd = d ? dirfd(d->dp)
		   : openat(in->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = fd < 0 ? errno : 0;

	if (r == 0 && (datasync ? fdatasync(fd) : fsync(fd)) < 0)
		r = errno;
	if (!d && fd >= 0)
		close(fd);
	fuse_reply_err(req, r);
}

void local_releasedir(struct fuse_file_info *fi)
{
	struct local_dir *d = (struct local_dir *)(uintptr_t)fi->fh;

	closedir(d->dp);
	free(d);
}
