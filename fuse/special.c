/*
 * special.c - FIFOs, sockets and device nodes on synced paths
 * (special_i.h): where they are in the upper layer.
 *
 * Runs on the FUSE threads, with no lock of its own: it reads the upper
 * layer, and takes table.lock only to compute paths (fs_upper_path).
 */
#include "special_i.h"

#include "local_i.h"
#include "synced_i.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vsync/log.h"
#include "vsync/util.h"
#include "vsync/banned.h"

bool special_mode(mode_t mode)
{
	return S_ISFIFO(mode) || S_ISSOCK(mode) || S_ISCHR(mode) ||
	       S_ISBLK(mode);
}

bool special_is(struct vs_fs *fs, struct vs_inode *parent, const char *name)
{
	char path[PATH_MAX];
	bool synced;

	if (parent->local)
		return false;
	pthread_mutex_lock(&fs->table.lock);
	synced = inode_child_find(parent, name) != NULL;
	pthread_mutex_unlock(&fs->table.lock);
	return !synced &&
	       fs_upper_path(fs, parent, name, path, sizeof(path)) == 0 &&
	       special_at(fs, path);
}

bool special_inode(struct vs_inode *in)
{
	struct stat st;

	return in->local && in->fd >= 0 &&
	       fstatat(in->fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) ==
		   0 &&
	       special_mode(st.st_mode);
}

bool special_at(struct vs_fs *fs, const char *path)
{
	struct stat st;

	return fstatat(fs->cfg.upper_fd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       special_mode(st.st_mode);
}

/* Open the upper directory at synced @dir (plus "/@name"), or -1. */
static DIR *upper_dir(struct vs_fs *fs, struct vs_inode *dir, const char *name)
{
	char path[PATH_MAX];
	DIR *d;

	if (fs_upper_path(fs, dir, name, path, sizeof(path)) < 0)
		return NULL;
	(void)vs_opendirat(fs->cfg.upper_fd, path, true, &d);
	return d;
}

static bool special_type(unsigned char t)
{
	return t == DT_FIFO || t == DT_SOCK || t == DT_CHR || t == DT_BLK;
}

bool special_dir_busy(struct vs_fs *fs, struct vs_inode *parent,
		      const char *name)
{
	DIR *d = upper_dir(fs, parent, name);
	struct dirent *de;
	bool busy = false;

	if (!d)
		return false;
	while (!busy && (de = readdir(d))) {
		busy = special_type(de->d_type) ||
		       (strcmp(de->d_name, ".") != 0 &&
			strcmp(de->d_name, "..") != 0 &&
			vs_name_is_local(&fs->cfg.local, de->d_name,
					 strlen(de->d_name)));
	}
	closedir(d);
	return busy;
}

/* Remove entry @name of directory @at, and all it holds if it is a
 * directory (not following symlinks). 0 or -errno. */
static int remove_tree_at(int at, const char *name)
{
	struct dirent *de;
	DIR *d;
	int fd, r = 0;

	if (unlinkat(at, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR)
		return -errno;
	r = vs_opendirat(at, name, true, &d);
	if (r < 0)
		return r;
	fd = dirfd(d);
	while (r == 0 && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			r = remove_tree_at(fd, de->d_name);
	}
	closedir(d);
	if (r == 0 && unlinkat(at, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		r = -errno;
	return r;
}

void special_dir_clear(struct vs_fs *fs, const char *path)
{
	int r = remove_tree_at(fs->cfg.upper_fd, path);

	if (r < 0)
		vs_warn("cannot remove the local entries at '%s': %s", path,
			strerror(-r));
}

void special_dir_moved(struct vs_fs *fs, const char *from, const char *to)
{
	struct stat st;
	int r;

	if (fstatat(fs->cfg.upper_fd, from, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISDIR(st.st_mode))
		return;
	special_dir_clear(fs, to); /* a leftover at @to */
	r = local_upper_mkdirs(fs, to);
	if (r == 0 &&
	    renameat(fs->cfg.upper_fd, from, fs->cfg.upper_fd, to) < 0)
		r = -errno;
	if (r < 0)
		vs_warn("cannot move the local entries of '%s' to '%s': %s",
			from, to, strerror(-r));
}

bool special_readdir(fuse_req_t req, struct vs_fs *fs, struct vs_inode *dir,
		     struct fs_dirbuf *b, off_t base, off_t off)
{
	DIR *d = upper_dir(fs, dir, NULL);
	struct dirent *de;
	off_t i = 0;
	bool ok = true;

	if (!d)
		return true;
	while (ok && (de = readdir(d))) {
		if (!special_type(de->d_type) ||
		    vs_name_is_local(&fs->cfg.local, de->d_name,
				     strlen(de->d_name)))
			continue; /* listed with the local-only names */
		if (base + i >= off)
			ok = fs_dirbuf_add(req, b, de->d_name, VS_UNKNOWN_INO,
					   (mode_t)DTTOIF(de->d_type),
					   base + i + 1);
		i++;
	}
	closedir(d);
	return ok;
}

/* Is @parent/@name an entry of the upper layer that is not a special
 * node (a local-only one, by its name), and @to not a local-only name?
 * Moved to @to, it would sit in a synced directory where no listing
 * shows it (special_readdir lists special nodes, and local-only names). */
static bool local_entry_hidden(struct vs_fs *fs, struct vs_inode *parent,
			       const char *name, const char *to)
{
	char path[PATH_MAX];
	struct stat st;

	return !vs_name_is_local(&fs->cfg.local, to, strlen(to)) &&
	       fs_upper_path(fs, parent, name, path, sizeof(path)) == 0 &&
	       fstatat(fs->cfg.upper_fd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       !special_mode(st.st_mode);
}

void special_rename(fuse_req_t req, struct vs_fs *fs, struct vs_inode *parent,
		    const char *name, struct vs_inode *newparent,
		    const char *newname, unsigned int flags)
{
	struct vs_inode *src, *dst;
	enum vs_kind src_kind = VS_KIND_FILE, dst_kind = VS_KIND_FILE;
	char path[PATH_MAX];
	int r = 0;

	pthread_mutex_lock(&fs->table.lock);
	src = inode_child_find(parent, name);
	dst = inode_child_find(newparent, newname);
	if (src)
		src_kind = src->kind;
	if (dst)
		dst_kind = dst->kind;
	pthread_mutex_unlock(&fs->table.lock);
	if (!src) {
		/* a special node moves in the upper layer, over a synced
		 * file as rename(2) would */
		if (dst && (flags & RENAME_NOREPLACE))
			r = -EEXIST;
		else if (dst && (flags & RENAME_EXCHANGE))
			r = -EXDEV;
		/* a local-only entry moves only to a local-only name (as
		 * between a local-only and a synced path) */
		else if (local_entry_hidden(fs, parent, name, newname) ||
			 ((flags & RENAME_EXCHANGE) &&
			  local_entry_hidden(fs, newparent, newname, name)))
			r = -EXDEV;
		else if (dst && dst_kind == VS_KIND_DIR)
			r = -EISDIR;
		else if (dst && !fs->cfg.journal)
			r = -EROFS;
		else if (dst)
			r = fsw_remove(fs, newparent, newname, false);
		if (r < 0)
			fuse_reply_err(req, -r);
		else
			local_rename(req, fs, parent, name, newparent, newname,
				     flags);
		return;
	}
	/* a synced entry over a special node */
	if (flags & RENAME_NOREPLACE)
		r = -EEXIST;
	else if (flags & RENAME_EXCHANGE)
		r = -EXDEV;
	else if (src_kind == VS_KIND_DIR)
		r = -ENOTDIR;
	else if (!fs->cfg.journal)
		r = -EROFS;
	else
		r = fs_upper_path(fs, newparent, newname, path, sizeof(path));
	if (r == 0 && unlinkat(fs->cfg.upper_fd, path, 0) < 0)
		r = -errno;
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		synced_rename(req, fs, parent, name, newparent, newname, flags);
}
