/*
 * fs.c - the FUSE low-level operations of vsync-mount (fs.h): the
 * operations table, the dispatch, and what the handlers share.
 *
 * DESIGN
 * A request is for one of three kinds of path, each served by its own
 * file; the handlers here only resolve the inode(s) and dispatch:
 *  - the updater's own call through the mountpoint (fs_own_request: a
 *    remote change being made visible) goes to update.c (update_*), which
 *    applies it to the inode table;
 *  - a local-only path (node_modules/, dist/ ...: a local inode, or a name
 *    that vs_name_is_local() says is local in a synced directory) goes to
 *    local.c (local_*), passed through to the upper directory;
 *  - any other path is synced and goes to synced.c (synced_*), served from
 *    the inode table and the content cache; its writes go through write.c
 *    (fsw_*) with --writable and are EROFS without.
 * A request across kinds (a rename or a hard link between a local-only and
 * a synced path) is refused here: EXDEV, or EROFS with --read-only.
 *
 * Every handler replies exactly once. A handler never holds table->lock
 * while waiting on the network, nor while calling into the upper layer.
 */
#include "vsync/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fs_i.h"
#include "local_i.h"
#include "owner_i.h"
#include "special_i.h"
#include "synced_i.h"
#include "vsync/clock.h"
#include "vsync/log.h"
#include "vsync/banned.h"

static struct vs_fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

int fs_upper_path(struct vs_fs *fs, struct vs_inode *in, const char *name,
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
		snprintf(buf, size, ".");
	}
	return 0;
}

void fs_fill_entry(struct vs_fs *fs, struct fuse_entry_param *e,
		   const struct stat *st, fuse_ino_t ino)
{
	memset(e, 0, sizeof(*e));
	e->ino = ino;
	e->attr = *st;
	e->attr.st_ino = ino;
	e->attr_timeout = fs->cfg.attr_timeout;
	e->entry_timeout = fs->cfg.entry_timeout;
}

/* content fds closed by one fs_fds_reclaim: enough that a reader of a
 * whole tree does not pass the table every few files */
#define FS_FDS_RECLAIM 1024

bool fs_fds_reclaim(struct vs_fs *fs, struct vs_inode *keep)
{
	static atomic_int_least64_t told;
	size_t n = inode_content_reclaim(&fs->table, keep, FS_FDS_RECLAIM);

	if (vs_log_due(&told, 60000))
		vs_warn("out of file descriptors: closed %zu content fds of "
			"files not read lately (opened again at their next "
			"read); each file read holds one while the kernel "
			"keeps it cached: raise the hard RLIMIT_NOFILE "
			"(logged once a minute)",
			n);
	return n > 0;
}

void fs_inval_inode(struct vs_fs *fs, uint64_t ino)
{
	int e;

	if (!fs->se)
		return;
	e = fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0);
	if (e < 0 && e != -ENOENT)
		vs_warn("cannot invalidate inode %llu: %s",
			(unsigned long long)ino, strerror(-e));
}

void fs_reply_negative(fuse_req_t req, struct vs_fs *fs)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.entry_timeout = fs->cfg.entry_timeout;
	fuse_reply_entry(req, &e);
}

bool fs_dirbuf_add(fuse_req_t req, struct fs_dirbuf *b, const char *name,
		   fuse_ino_t ino, mode_t type, off_t next)
{
	struct stat st = {.st_ino = ino, .st_mode = type};
	size_t n;

	if (b->plus) {
		/* ino 0: no attributes, no lookup counted */
		struct fuse_entry_param e = {.attr = st};

		return fs_dirbuf_add_plus(req, b, name, &e, next);
	}
	n = fuse_add_direntry(req, b->p + b->len, b->size - b->len, name, &st,
			      next);
	if (n > b->size - b->len)
		return false;
	b->len += n;
	return true;
}

bool fs_dirbuf_add_plus(fuse_req_t req, struct fs_dirbuf *b, const char *name,
			const struct fuse_entry_param *e, off_t next)
{
	size_t n = fuse_add_direntry_plus(req, b->p + b->len, b->size - b->len,
					  name, e, next);

	if (n > b->size - b->len)
		return false;
	b->len += n;
	return true;
}

bool fs_own_request(struct vs_fs *fs, fuse_req_t req)
{
	int tid = atomic_load(&fs->updater_tid);

	return tid != 0 && fuse_req_ctx(req)->pid == tid;
}

/* ---- dispatch ---- */

/* Resolve @ino for a request: 0 and *in_out (in->local tells which kind
 * of path it is), or -ESTALE. */
static int resolve(struct vs_fs *fs, fuse_ino_t ino, struct vs_inode **in_out)
{
	struct vs_inode *in;

	pthread_mutex_lock(&fs->table.lock);
	in = inode_table_get(&fs->table, ino);
	pthread_mutex_unlock(&fs->table.lock);
	if (!in)
		return -ESTALE;
	*in_out = in;
	return 0;
}

/* Is the entry @name of @parent on a local-only path, or a special node
 * kept local in a synced directory (special_i.h)? */
static bool is_local_target(struct vs_fs *fs, struct vs_inode *parent,
			    const char *name)
{
	return parent->local ||
	       vs_name_is_local(&fs->cfg.local, name, strlen(name)) ||
	       special_is(fs, parent, name);
}

/*
 * Common start of the calls that create @name in @parent_ino: check the
 * name and the parent. 0 with *parent, and *local telling which kind of
 * path the new entry is on; or -errno.
 */
static int resolve_new(struct vs_fs *fs, fuse_ino_t parent_ino,
		       const char *name, struct vs_inode **parent, bool *local)
{
	int r;

	r = vs_name_check(name, strlen(name));
	if (r < 0)
		return r;
	r = resolve(fs, parent_ino, parent);
	if (r < 0)
		return r;
	if ((*parent)->kind != VS_KIND_DIR)
		return -ENOTDIR;
	*local = is_local_target(fs, *parent, name);
	return 0;
}

static void vs_lookup(fuse_req_t req, fuse_ino_t parent_ino, const char *name)
{
	struct vs_fs *fs = fs_of(req);
	struct vs_inode *parent;
	int r;

	if (strlen(name) > VS_NAME_MAX) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	r = resolve(fs, parent_ino, &parent);
	if (r == 0 && parent->kind != VS_KIND_DIR)
		r = -ENOTDIR;
	if (r < 0)
		fuse_reply_err(req, -r);
	else if (is_local_target(fs, parent, name))
		local_lookup(req, fs, parent, name);
	else
		synced_lookup(req, fs, parent, name);
}

static void vs_forget_one(struct vs_fs *fs, fuse_ino_t ino, uint64_t n)
{
	struct vs_inode *in = inode_table_get(&fs->table, ino);

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

static void vs_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct vs_fs *fs = fs_of(req);
	struct vs_inode *in;
	int r;

	r = resolve(fs, ino, &in);
	if (r < 0)
		fuse_reply_err(req, -r);
	else if (in->local)
		local_getattr(req, fs, in, fi);
	else
		synced_getattr(req, fs, in);
}

static void vs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int valid, struct fuse_file_info *fi)
{
	struct vs_fs *fs = fs_of(req);
	struct vs_inode *in;
	int r;

	r = resolve(fs, ino, &in);
	if (r < 0)
		fuse_reply_err(req, -r);
	else if (in->local)
		local_setattr(req, fs, in, attr, valid, fi);
	else if (fs_own_request(fs, req))
		update_setattr(req, fs, in, attr, valid);
	else
		synced_setattr(req, fs, in, attr, valid, fi);
}

static void vs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct vs_fs *fs = fs_of(req);
	struct vs_inode *in;
	int r;

	r = resolve(fs, ino, &in);
	if (r == 0 && in->kind != VS_KIND_SYMLINK)
		r = -EINVAL;
	if (r < 0)
		fuse_reply_err(req, -r);
	else if (in->local)
		local_readlink(req, in);
	else
		synced_readlink(req, fs, in);
}

static void vs_mknod(fuse_req_t req, fuse_ino_t parent_ino, const char *name,
		     mode_t mode, dev_t rdev)
{
	struct vs_fs *fs = fs_of(req);
	struct vs_inode *parent;
	bool local;
	int r;

	if (fs_own_request(fs, req)) {
		update_create(req, fs, parent_ino, name, VS_KIND_FILE);
		return;
	}
	r = resolve_new(fs, parent_ino, name, &parent, &local);
	if (r < 0)
		fuse_reply_err(req, -r);
	else if (local)
		local_mknod(req, fs, parent, name, mode, rdev);
	else
		synced_mknod(req, fs, parent, name, mode, rdev);
}

static void vs_mkdir(fuse_req_t req, fuse_ino_t parent_ino, const char *name,
		     mode_t mode)
{
	struct vs_fs *fs = fs_of(req);
	struct vs_inode *parent;
	bool local;
	int r;

	if (fs_own_request(fs, req)) {
		update_create(req, fs, parent_ino, name, VS_KIND_DIR);
		return;
	}
	r = resolve_new(fs, parent_ino, name, &parent, &local);
	if (r < 0)
		fuse_reply_err(req, -r);
	else if (local)
		local_mkdir(req, fs, parent, name, mode);
	else
		synced_mkdir(req, fs, parent, name, mode);
}

static void vs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent_ino,
		       const char *name)
{
	struct vs_fs *fs = fs_of(req);
	struct vs_inode *parent;
	bool local;
	int r;

	if (fs_own_request(fs, req)) {
		update_create(req, fs, parent_ino, name, VS_KIND_SYMLINK);
		return;
	}
	r = resolve_new(fs, parent_ino, name, &parent, &local);
	if (r < 0)
		fuse_reply_err(req, -r);
	else if (local)
		local_symlink(req, fs, link, parent, name);
	else
		synced_symlink(req, fs, link, parent, name);
}

static void vs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent_ino,
		    const char *name)
{
	struct vs_fs *fs = fs_of(req);
	struct vs_inode *parent, *in;
	bool local;
	int r;

	r = resolve(fs, ino, &in);
	if (r == 0)
		r = resolve_new(fs, parent_ino, name, &parent, &local);
	/* no links of synced files (one row per path): EPERM, or EXDEV into
	 * a local-only directory, as between two file systems */
	if (r == 0 && !in->local)
		r = local ? -EXDEV : fs->cfg.journal ? -EPERM : -EROFS;
	if (r < 0)
		fuse_reply_err(req, -r);
	else if (local || special_inode(in))
		local_link(req, fs, in, parent, name); /* a special node's
							* link stays local */
	else
		synced_link(req, fs, parent, name); /* refused */
}

/* Unlink (@flags 0) or rmdir (AT_REMOVEDIR) @name of @parent_ino. */
static void remove_entry(fuse_req_t req, fuse_ino_t parent_ino,
			 const char *name, int flags)
{
	struct vs_fs *fs = fs_of(req);
	struct vs_inode *parent;
	int r;

	if (fs_own_request(fs, req)) {
		update_remove(req, fs, parent_ino, name, flags & AT_REMOVEDIR);
		return;
	}
	r = resolve(fs, parent_ino, &parent);
	if (r < 0)
		fuse_reply_err(req, -r);
	else if (is_local_target(fs, parent, name))
		local_remove(req, fs, parent, name, flags);
	else
		synced_remove(req, fs, parent, name, flags & AT_REMOVEDIR);
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
	struct vs_inode *parent, *newparent;
	bool src_local, dst_local;
	int r;

	if (fs_own_request(fs, req)) {
		update_rename(req, fs, parent_ino, name, newparent_ino,
			      newname);
		return;
	}
	r = resolve(fs, parent_ino, &parent);
	if (r == 0 && fs->cfg.journal &&
	    resolve(fs, newparent_ino, &newparent) == 0) {
		src_local = is_local_target(fs, parent, name);
		dst_local = is_local_target(fs, newparent, newname);
		if (!parent->local && !newparent->local &&
		    (special_is(fs, parent, name) ||
		     special_is(fs, newparent, newname))) {
			special_rename(req, fs, parent, name, newparent,
				       newname, flags);
			return;
		}
		if (!src_local && !dst_local) {
			synced_rename(req, fs, parent, name, newparent, newname,
				      flags);
			return;
		}
		if (src_local != dst_local) {
			fuse_reply_err(req, EXDEV); /* local-only <-> synced */
			return;
		}
	}
	/* both local-only; or --read-only, where nothing synced moves */
	if (r == 0)
		r = resolve_new(fs, newparent_ino, newname, &newparent,
				&dst_local);
	if (r == 0 && (!dst_local || !is_local_target(fs, parent, name)))
		r = -EROFS; /* renaming from, over or into a synced entry */
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		local_rename(req, fs, parent, name, newparent, newname, flags);
}

static void vs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct vs_fs *fs = fs_of(req);
	struct vs_inode *in;
	int r;

	/* no-open mode: the kernel stops sending OPEN and RELEASE for the
	 * life of the mount (fs.h) */
	if (fs_no_open_files(fs)) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	r = resolve(fs, ino, &in);
	if (r < 0)
		fuse_reply_err(req, -r);
	else if (in->local)
		local_open(req, in, fi);
	else
		synced_open(req, fs, in, fi);
}

static void vs_create(fuse_req_t req, fuse_ino_t parent_ino, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct vs_fs *fs = fs_of(req);
	struct vs_inode *parent;
	bool local;
	int r;

	/* (the updater creates files with mknod) */
	r = resolve_new(fs, parent_ino, name, &parent, &local);
	if (r < 0)
		fuse_reply_err(req, -r);
	else if (local)
		local_create(req, fs, parent, name, mode, fi);
	else
		synced_create(req, fs, parent, name, mode, fi);
}

static void vs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct vs_fs *fs = fs_of(req);
	struct vs_inode *in;

	if (resolve(fs, ino, &in) < 0)
		fuse_reply_err(req, ESTALE);
	else if (in->local)
		local_read(req, fs, in, size, off, fi);
	else
		synced_read(req, fs, in, size, off);
}

static void vs_write_buf(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_bufvec *in_buf, off_t off,
			 struct fuse_file_info *fi)
{
	struct vs_fs *fs = fs_of(req);
	struct vs_inode *in;

	if (resolve(fs, ino, &in) < 0)
		fuse_reply_err(req, ESTALE);
	else if (in->local)
		local_write_buf(req, fs, in, in_buf, off, fi);
	else
		synced_write_buf(req, fs, in, in_buf, off);
}

static void vs_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct vs_fs *fs = fs_of(req);
	struct vs_inode *in;

	/* fh 0: an open of a synced file that could not write */
	if (!fi->fh || resolve(fs, ino, &in) < 0)
		fuse_reply_err(req, 0);
	else if (in->local)
		local_release(req, fi);
	else
		synced_release(req, fs, in);
}

static void vs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	/*
	 * ENOSYS stops the kernel sending FLUSH for the life of the mount:
	 * one round trip less in every close(). Synced files are saved by
	 * the save policy of write.c (quiet period, fsync, rename, chmod,
	 * RELEASE when it comes).
	 */
	fuse_reply_err(req, ENOSYS);
}

static void vs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	struct vs_fs *fs = fs_of(req);
	struct vs_inode *in;

	if (resolve(fs, ino, &in) < 0)
		fuse_reply_err(req, 0);
	else if (in->local)
		local_fsync(req, in, datasync, fi);
	else
		synced_fsync(req, fs, in);
}

static void vs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	struct vs_fs *fs = fs_of(req);
	struct vs_inode *in;

	/* never ENOSYS: the kernel would stop asking for every directory */
	if (resolve(fs, ino, &in) < 0)
		fuse_reply_err(req, 0);
	else if (in->local)
		local_fsyncdir(req, in, datasync, fi);
	else
		synced_fsyncdir(req, fs);
}

static void vs_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct vs_fs *fs = fs_of(req);
	struct vs_inode *in;
	int r;

	/* no-open mode: OPENDIR and RELEASEDIR stop too (libfuse would
	 * answer success without this handler) */
	if (fs->cfg.no_open) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	r = resolve(fs, ino, &in);
	if (r == 0 && in->kind != VS_KIND_DIR)
		r = -ENOTDIR;
	if (r < 0)
		fuse_reply_err(req, -r);
	else if (in->local)
		local_opendir(req, in, fi);
	else
		synced_opendir(req, fi);
}

/* readdir, or readdirplus (@plus): synced entries come with their
 * attributes, so a cold listing costs one round trip, not one LOOKUP per
 * entry besides */
static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi, bool plus)
{
	struct vs_fs *fs = fs_of(req);
	struct fs_dirbuf b = {.size = size, .plus = plus};
	struct vs_inode *in;

	if (resolve(fs, ino, &in) < 0) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	b.p = malloc(size);
	if (!b.p) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (in->local)
		local_readdir(req, in, fi, &b, off);
	else
		synced_readdir(req, fs, in, &b, off);
	fuse_reply_buf(req, b.p, b.len);
	free(b.p);
}

static void vs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, false);
}

static void vs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, true);
}

static void vs_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	/* a synced directory's handle is 0 (synced_opendir) */
	if (fi->fh)
		local_releasedir(fi);
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

/* Built with ThreadSanitizer (gcc says so with __SANITIZE_THREAD__,
 * clang with __has_feature) */
#if defined(__SANITIZE_THREAD__)
#define FS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FS_TSAN 1
#endif
#endif
#ifndef FS_TSAN
#define FS_TSAN 0
#endif

static void vs_init(void *userdata, struct fuse_conn_info *conn)
{
	struct vs_fs *fs = userdata;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	/* O_TRUNC comes with the open (synced_open truncates), one round
	 * trip less than a SETATTR after it; but with no OPEN it would not
	 * come at all (open(O_TRUNC) would not truncate): then it comes as
	 * a SETATTR of the size */
	if (fs_no_open_files(fs))
		conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
	else if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/*
	 * Background requests (RELEASE, the commit point of a save, and
	 * readahead) in flight at once: half the CPUs, at least one (the
	 * kernel's default is 12). The requests a process waits for (CREATE,
	 * WRITE, SETATTR ...) then do not queue for threads and CPUs behind
	 * a dozen saves: `tar -x` of 1,000 small files into a synced
	 * directory went from 1.2-2.7 s to 0.4-0.6 s on 2 CPUs
	 * (docs/benchmarks.md); the saves follow behind it.
	 */
	conn->max_background = cpus >= 4 ? (unsigned)(cpus / 2) : 1;
	conn->congestion_threshold = conn->max_background;
#if FS_TSAN
	/* The kernel orders requests after the replies they depend on (a
	 * RELEASE comes after the last READ of its handle is answered).
	 * ThreadSanitizer sees that order through read(2) and writev(2) on
	 * /dev/fuse, not through splice: without splice in a TSan build, it
	 * does not report a close in RELEASE as racing with that READ. */
	conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE |
			FUSE_CAP_SPLICE_MOVE);
#endif
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
    .readdirplus = vs_readdirplus,
    .releasedir = vs_releasedir,
    .fsyncdir = vs_fsyncdir,
    .statfs = vs_statfs,
    .getxattr = vs_getxattr,
    .listxattr = vs_listxattr,
};

int vs_fs_dirty_walk(void *arg,
		     void (*cb)(void *ctx, const char *path, bool failed),
		     void *ctx)
{
	struct vs_fs *fs = arg;
	struct vs_inode_table *t = &fs->table;
	char path[VS_PATH_MAX + 1], **paths = NULL;
	bool *failed = NULL;
	size_t n = 0, cap = 0;
	int r = 0;

	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->ht_size && r == 0; i++) {
		for (struct vs_inode *in = t->ht[i]; in && r == 0;
		     in = in->hnext) {
			bool f = atomic_load(&in->wfailed);

			if (in->local || in->removed ||
			    in->kind != VS_KIND_FILE ||
			    (!f && atomic_load(&in->wgen) ==
				       atomic_load(&in->jgen)) ||
			    inode_path(in, path, sizeof(path)) < 0)
				continue;
			if (n == cap) {
				size_t c = cap ? cap * 2 : 16;
				char **p = realloc(paths, c * sizeof(*p));
				bool *b =
				    p ? realloc(failed, c * sizeof(*b)) : NULL;

				if (p)
					paths = p;
				if (b)
					failed = b;
				if (!p || !b) {
					r = -ENOMEM;
					break;
				}
				cap = c;
			}
			if (!(paths[n] = strdup(path))) {
				r = -ENOMEM;
				break;
			}
			failed[n++] = f;
		}
	}
	pthread_mutex_unlock(&t->lock);
	for (size_t i = 0; i < n; i++) {
		if (r == 0)
			cb(ctx, paths[i], failed[i]);
		free(paths[i]);
	}
	free(paths);
	free(failed);
	return r;
}

int vs_fs_new(struct vs_fs **out, const struct vs_fs_config *cfg,
	      const struct vs_manifest *m)
{
	struct vs_fs *fs = calloc(1, sizeof(*fs));
	int r;

	if (!fs)
		return -ENOMEM;
	fs->cfg = *cfg;
	fs->pending.fd = -1;
	atomic_init(&fs->seen_seq, m->seq);
	pthread_mutex_init(&fs->learn_lock, NULL);
	pthread_mutex_init(&fs->own_lock, NULL);
	pthread_mutex_init(&fs->ns_lock, NULL);
	pthread_mutex_init(&fs->owner_lock, NULL);
	pthread_mutex_init(&fs->dirty_lock, NULL);
	vs_cond_init_mono(&fs->dirty_cond);
	r = inode_table_init(&fs->table);
	if (r < 0) {
		free(fs);
		return r;
	}
	r = inode_table_build(&fs->table, m, &cfg->local);
	if (r == 0 && cfg->journal)
		r = fsw_overlay_journal(fs);
	if (r == 0)
		r = owner_load(fs);
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
	free(fs->landed);
	pthread_mutex_destroy(&fs->learn_lock);
	pthread_mutex_destroy(&fs->own_lock);
	pthread_mutex_destroy(&fs->ns_lock);
	pthread_mutex_destroy(&fs->owner_lock);
	pthread_mutex_destroy(&fs->dirty_lock);
	pthread_cond_destroy(&fs->dirty_cond);
	free(fs->dirty);
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
	if (fsw_saver_start(fs) < 0)
		goto out_unmount;
	if (ready_cb)
		ready_cb(cb_arg);
	if (fs->cfg.single_thread)
		r = fuse_session_loop(se);
	else
		r = fuse_session_loop_mt(se, &loop);
	r = r < 0 ? r : 0; /* a positive value is the signal that ended it */
	/* no RELEASE comes for what is still open, and what is dirty may not
	 * be quiet yet: save it all now */
	fsw_saver_stop(fs);
	fsw_save_all(fs);
	owner_flush(fs);
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
