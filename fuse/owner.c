/*
 * owner.c - owners of synced paths (owner_i.h).
 *
 * DESIGN
 * PostgreSQL has no owner for a path, and needs none: a container is one
 * machine. chown(2) of a synced entry is kept here, per mount, as local
 * metadata that is never synced. The record is on the inode (table.lock),
 * so a rename moves it and a removal drops it with the entry; a remote
 * edit that replaces a file keeps it (update.c, update_rename).
 *
 * A directory's mode is not synced either (PostgreSQL keeps the mode of
 * files), so a chmod of a synced directory is recorded the same way.
 *
 * The records are saved as one text file in the mount's meta directory
 * (cfg.meta_fd): a header line, then "UID GID MODE PATH" per record, "-"
 * for a field not recorded (a synced path has no control characters, so
 * no newline). It is written whole to
 * a temporary file and renamed over the old one, so a crash leaves the old
 * or the new snapshot, never a mix. To keep chown -R of a big tree linear,
 * a save within OWNER_FLUSH_MS of the last one is left pending and done
 * by the next change of the tree or at unmount: a crash loses at most the
 * changes of that window, as a local disk may lose metadata not synced.
 *
 * Runs on the FUSE threads; owner_lock serialises the saves and guards
 * owner_dirty/owner_saved_ms. Order: owner_lock -> table.lock.
 */
#include "owner_i.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vsync/clock.h"
#include "vsync/log.h"
#include "vsync/util.h"
#include "vsync/banned.h"

#define OWNER_FILE     "owners"
#define OWNER_TMP      "owners.tmp"
#define OWNER_HEADER   "vsync-owners 1\n"
#define OWNER_FLUSH_MS 200
/* the snapshot's size: a line per synced entry, each under a path's size */
#define OWNER_FILE_MAX ((size_t)256 << 20)

/*
 * Parse "UID GID MODE PATH" (each of the three "-" when not recorded:
 * @set says which are) into @v; the path, or NULL for a bad line.
 */
static char *parse_fields(char *line, uint64_t v[3], bool set[3])
{
	static const uint64_t max[3] = {UINT32_MAX - 1, UINT32_MAX - 1, 07777};
	char *p = line;

	for (int i = 0; i < 3; i++) {
		char *sp = strchr(p, ' ');

		if (!sp)
			return NULL;
		set[i] = !(sp - p == 1 && *p == '-');
		if (set[i] && vs_parse_u64_n(&v[i], p, (size_t)(sp - p),
					     i == 2 ? 8 : 10, 0, max[i]) < 0)
			return NULL;
		p = sp + 1;
	}
	return *p ? p : NULL;
}

int owner_load(struct vs_fs *fs)
{
	char *buf = NULL, *line, *next;
	size_t len, hl = strlen(OWNER_HEADER);
	int fd, r;

	if (fs->cfg.meta_fd < 0)
		return 0;
	r = vs_open_regular(fs->cfg.meta_fd, OWNER_FILE, O_RDONLY, &fd);
	if (r == -ENOENT)
		return 0; /* none yet */
	if (r == 1)
		r = -EBADMSG; /* not a regular file */
	if (r == 0) {
		r = vs_read_fd_whole(&buf, &len, fd, OWNER_FILE_MAX);
		close(fd);
	}
	if (r < 0) {
		vs_warn("cannot read the owners of synced paths: %s; they "
			"show as the mount's",
			strerror(-r));
		return r == -ENOMEM ? r : 0;
	}
	if (len < hl || memcmp(buf, OWNER_HEADER, hl) != 0) {
		vs_warn("ignoring the owners file: not '%.*s'", (int)hl - 1,
			OWNER_HEADER);
		free(buf);
		return 0;
	}
	pthread_mutex_lock(&fs->table.lock);
	for (line = buf + hl; *line; line = next) {
		char *nl = strchr(line, '\n'), *path;
		uint64_t v[3];
		bool set[3];
		struct vs_inode *in;

		next = nl ? nl + 1 : line + strlen(line);
		if (nl)
			*nl = '\0';
		path = parse_fields(line, v, set);
		if (!path) {
			vs_warn("ignoring a bad line in the owners file");
			continue;
		}
		in = inode_lookup_path(&fs->table, path);
		if (!in || in->local)
			continue; /* gone while unmounted */
		if (set[0] && set[1]) {
			in->owned = true;
			in->uid = (uint32_t)v[0];
			in->gid = (uint32_t)v[1];
		}
		if (set[2] && in->kind == VS_KIND_DIR) {
			in->mode = (uint32_t)v[2];
			in->dir_mode_local = true;
		}
		atomic_store(&fs->owner_any, true);
	}
	pthread_mutex_unlock(&fs->table.lock);
	free(buf);
	return 0;
}

/* Append the records of the tree under @in to @out (the table locked).
 * 0 or -ENOMEM. */
static int owner_dump(struct vs_inode *in, char *path, FILE *out)
{
	if ((in->owned || in->dir_mode_local) && !in->local && !in->removed &&
	    in->parent && inode_path(in, path, VS_PATH_MAX + 1) == 0) {
		if (in->owned)
			fprintf(out, "%u %u ", in->uid, in->gid);
		else
			fputs("- - ", out);
		if (in->dir_mode_local)
			fprintf(out, "%o %s\n", in->mode & 07777, path);
		else
			fprintf(out, "- %s\n", path);
	}
	for (size_t i = 0; i < in->nchildren; i++)
		owner_dump(in->children[i], path, out);
	return ferror(out) ? -ENOMEM : 0;
}

/* Write the snapshot (owner_lock held). 0 or -errno (logged). */
static int owner_save(struct vs_fs *fs)
{
	char *path = malloc(VS_PATH_MAX + 1), *buf = NULL;
	size_t len = 0;
	FILE *out = NULL;
	int r = -ENOMEM;

	if (!path)
		goto out;
	out = open_memstream(&buf, &len);
	if (!out)
		goto out;
	fputs(OWNER_HEADER, out);
	pthread_mutex_lock(&fs->table.lock);
	r = owner_dump(fs->table.root, path, out);
	pthread_mutex_unlock(&fs->table.lock);
	if (fclose(out) != 0 && r == 0)
		r = -ENOMEM;
	out = NULL;
	if (r < 0)
		goto out;
	r = vs_write_file_at(fs->cfg.meta_fd, OWNER_TMP, OWNER_FILE, buf, len,
			     0600);
out:
	if (out)
		fclose(out);
	free(buf);
	free(path);
	if (r < 0)
		vs_warn("cannot save the owners of synced paths: %s",
			strerror(-r));
	return r;
}

/* Save now, or leave it pending if the last save was just now. */
static void owner_touch(struct vs_fs *fs, bool force)
{
	int64_t now = vs_mono_ms();

	if (fs->cfg.meta_fd < 0)
		return;
	pthread_mutex_lock(&fs->owner_lock);
	fs->owner_dirty = true;
	if (force || now - fs->owner_saved_ms >= OWNER_FLUSH_MS) {
		if (owner_save(fs) == 0)
			fs->owner_dirty = false;
		fs->owner_saved_ms = now;
	}
	pthread_mutex_unlock(&fs->owner_lock);
}

bool owner_caller_in_group(fuse_req_t req, gid_t gid)
{
	gid_t groups[64];
	int n;

	if (fuse_req_ctx(req)->gid == gid)
		return true;
	n = fuse_req_getgroups(req, 64, groups);
	for (int i = 0; i < n && i < 64; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

int owner_chown(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in,
		const struct stat *attr, int valid)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	uid_t uid, new_uid;
	gid_t gid, new_gid;

	pthread_mutex_lock(&fs->table.lock);
	uid = in->owned ? in->uid : fs->cfg.uid;
	gid = in->owned ? in->gid : fs->cfg.gid;
	pthread_mutex_unlock(&fs->table.lock);
	new_uid = valid & FUSE_SET_ATTR_UID ? attr->st_uid : uid;
	new_gid = valid & FUSE_SET_ATTR_GID ? attr->st_gid : gid;
	/* chown(2): only root gives a file away; the owner may change the
	 * group to one it is in */
	if (ctx->uid != 0 &&
	    (ctx->uid != uid || new_uid != uid ||
	     (new_gid != gid && !owner_caller_in_group(req, new_gid))))
		return -EPERM;
	pthread_mutex_lock(&fs->table.lock);
	in->uid = new_uid;
	in->gid = new_gid;
	in->owned = new_uid != fs->cfg.uid || new_gid != fs->cfg.gid;
	/* (the set-id bits a chown clears come as a mode change in the
	 * same request, from the kernel: synced like any chmod) */
	pthread_mutex_unlock(&fs->table.lock);
	atomic_store(&fs->owner_any, true);
	owner_touch(fs, false);
	return 0;
}

int owner_may_chmod(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in,
		    mode_t mode)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	uint32_t cur, drop = S_ISUID | S_ISGID;
	uid_t uid;

	pthread_mutex_lock(&fs->table.lock);
	uid = in->owned ? in->uid : fs->cfg.uid;
	cur = in->mode & 07777;
	pthread_mutex_unlock(&fs->table.lock);
	if (ctx->uid == 0 || ctx->uid == uid)
		return 0;
	/* only set-id bits dropped: what the kernel asks when anyone who may
	 * write the file writes it (it checked the write permission) */
	mode &= 07777;
	return mode != cur && (mode | drop) == (cur | drop) && !(mode & ~cur)
		   ? 0
		   : -EPERM;
}

void owner_created(fuse_req_t req, struct vs_fs *fs, struct vs_inode *in)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	gid_t gid = ctx->gid;

	pthread_mutex_lock(&fs->table.lock);
	/* a setgid directory gives its group, as mkdir(2) and open(2) do */
	if (in->parent && (in->parent->mode & S_ISGID))
		gid = in->parent->owned ? in->parent->gid : fs->cfg.gid;
	if (ctx->uid == fs->cfg.uid && gid == fs->cfg.gid) {
		pthread_mutex_unlock(&fs->table.lock);
		return;
	}
	in->owned = true;
	in->uid = ctx->uid;
	in->gid = gid;
	pthread_mutex_unlock(&fs->table.lock);
	atomic_store(&fs->owner_any, true);
	owner_touch(fs, false);
}

void owner_dir_chmod(struct vs_fs *fs, struct vs_inode *in)
{
	if (in->kind != VS_KIND_DIR)
		return;
	pthread_mutex_lock(&fs->table.lock);
	in->dir_mode_local = true;
	pthread_mutex_unlock(&fs->table.lock);
	atomic_store(&fs->owner_any, true);
	owner_touch(fs, false);
}

void owner_changed(struct vs_fs *fs)
{
	if (atomic_load(&fs->owner_any))
		owner_touch(fs, false);
}

void owner_flush(struct vs_fs *fs)
{
	bool dirty;

	pthread_mutex_lock(&fs->owner_lock);
	dirty = fs->owner_dirty;
	pthread_mutex_unlock(&fs->owner_lock);
	if (dirty)
		owner_touch(fs, true);
}
