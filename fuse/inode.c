/*
 * inode.c - the inode table (inode_i.h): hash by ino, the synced tree
 * built from the manifest, local inodes created on lookup (keyed by their
 * upper file's dev/ino, each holding an O_PATH fd on it).
 */
#include "inode_i.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vsync/cache.h"
#include "vsync/log.h"
#include "vsync/path.h"
#include "vsync/banned.h"

#define HT_INITIAL 1024

static size_t hash_u64(uint64_t v, size_t size)
{
	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdULL;
	v ^= v >> 33;
	return (size_t)(v & (size - 1));
}

#ifndef NDEBUG
/* the inode whose fd_lock this thread holds (inode_fd_rdlock), NULL */
static _Thread_local const struct vs_inode *fd_held;
#endif

/* (a build without NDEBUG) Is this thread free to take @in's fd_lock? */
static void fd_lock_check(const struct vs_inode *in)
{
#ifndef NDEBUG
	if (fd_held)
		vs_bug("fd_lock of inode %llu taken while holding that of "
		       "inode %llu (they may be one lock)",
		       (unsigned long long)in->ino,
		       (unsigned long long)fd_held->ino);
	fd_held = in;
#else
	(void)in;
#endif
}

void inode_fd_rdlock(struct vs_inode_table *t, const struct vs_inode *in)
{
	fd_lock_check(in);
	pthread_rwlock_rdlock(inode_fd_lock(t, in));
}

void inode_fd_wrlock(struct vs_inode_table *t, const struct vs_inode *in)
{
	fd_lock_check(in);
	pthread_rwlock_wrlock(inode_fd_lock(t, in));
}

void inode_fd_unlock(struct vs_inode_table *t, const struct vs_inode *in)
{
#ifndef NDEBUG
	if (fd_held != in)
		vs_bug("fd_lock of inode %llu let go, not held",
		       (unsigned long long)in->ino);
	fd_held = NULL;
#endif
	pthread_rwlock_unlock(inode_fd_lock(t, in));
}

/* A new inode, local (with its struct vs_inode_local) or synced. */
static struct vs_inode *inode_new(struct vs_inode_table *t, const char *name,
				  enum vs_kind kind, bool local)
{
	struct vs_inode *in =
	    calloc(1, local ? sizeof(struct vs_inode_with_local)
			    : sizeof(struct vs_inode));

	if (!in)
		return NULL;
	in->name = strdup(name);
	if (!in->name) {
		free(in);
		return NULL;
	}
	in->kind = kind;
	in->local = local;
	in->fd = -1;
	in->wfd = -1;
	if (local) {
		inode_local(in)->iofd = -1;
		inode_local(in)->rofd = -1;
	}
	in->ino = t->next_ino++;
	return in;
}

void inode_content_set(struct vs_inode *in, int fd)
{
	bool mem;

	if (fd >= 0 && fd == in->fd)
		return; /* the same fd: counted already if it is a memfd */
	mem = fd >= 0 && vs_cache_fd_in_memory(fd);
	vs_cache_mem_hold(-(int64_t)in->fd_mem * 4096);
	in->fd = fd;
	/* its pages, and about a page for its tmpfs inode and file */
	in->fd_mem =
	    mem && fd >= 0 ? (uint32_t)((in->size + 4095) / 4096 + 1) : 0;
	vs_cache_mem_hold((int64_t)in->fd_mem * 4096);
}

/* Take @in out of the table's list of inodes with a pending op. */
static void pending_unlink(struct vs_inode *in)
{
	struct vs_inode_save *s = inode_save(in);

	if (!s || !s->pprev)
		return;
	*s->pprev = s->pnext;
	if (s->pnext)
		inode_save(s->pnext)->pprev = s->pprev;
	s->pnext = NULL;
	s->pprev = NULL;
}

const struct vs_inode_save inode_save_none;

struct vs_inode_save *inode_save_get(struct vs_inode *in)
{
	struct vs_inode_save *s = inode_save(in);

	if (s)
		return s;
	s = calloc(1, sizeof(*s));
	if (s) /* (readers without the table lock load it: acquire) */
		atomic_store_explicit(&in->save, s, memory_order_release);
	return s;
}

static void inode_free(struct vs_inode *in)
{
	pending_unlink(in); /* (forgotten before its commit) */
	vs_cache_mem_hold(-(int64_t)in->fd_mem * 4096);
	if (in->fd >= 0)
		close(in->fd);
	if (in->wfd >= 0)
		close(in->wfd);
	if (in->local && inode_local(in)->iofd >= 0)
		close(inode_local(in)->iofd);
	if (in->local && inode_local(in)->rofd >= 0)
		close(inode_local(in)->rofd);
	free(inode_save(in));
	free(in->kind == VS_KIND_DIR ? (void *)in->children
				     : (void *)in->target);
	free(in->name);
	free(in);
}

static int ht_grow(struct vs_inode_table *t)
{
	size_t size = t->ht_size * 2;
	struct vs_inode **ht = calloc(size, sizeof(*ht));

	if (!ht)
		return -ENOMEM;
	for (size_t i = 0; i < t->ht_size; i++) {
		struct vs_inode *in = t->ht[i], *next;

		for (; in; in = next) {
			size_t h = hash_u64(in->ino, size);

			next = in->hnext;
			in->hnext = ht[h];
			ht[h] = in;
		}
	}
	free(t->ht);
	t->ht = ht;
	t->ht_size = size;
	return 0;
}

static int ht_insert(struct vs_inode_table *t, struct vs_inode *in)
{
	size_t h;

	if (t->count + 1 > t->ht_size && ht_grow(t) < 0)
		return -ENOMEM;
	h = hash_u64(in->ino, t->ht_size);
	in->hnext = t->ht[h];
	t->ht[h] = in;
	t->count++;
	return 0;
}

static void ht_remove(struct vs_inode_table *t, struct vs_inode *in)
{
	struct vs_inode **p = &t->ht[hash_u64(in->ino, t->ht_size)];

	for (; *p; p = &(*p)->hnext) {
		if (*p == in) {
			*p = in->hnext;
			t->count--;
			return;
		}
	}
	vs_bug("inode %llu missing from the table",
	       (unsigned long long)in->ino);
}

int inode_table_init(struct vs_inode_table *t)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	for (size_t i = 0; i < INODE_FD_LOCKS; i++)
		pthread_rwlock_init(&t->fd_locks[i], NULL);
	t->next_ino = 1;
	t->ht_size = HT_INITIAL;
	t->lht_size = HT_INITIAL;
	t->ht = calloc(t->ht_size, sizeof(*t->ht));
	t->lht = calloc(t->lht_size, sizeof(*t->lht));
	if (!t->ht || !t->lht)
		goto nomem;
	t->root = inode_new(t, "", VS_KIND_DIR, false);
	if (!t->root)
		goto nomem;
	ht_insert(t, t->root); /* cannot fail: the table is empty */
	t->root->mode = 0755;
	t->root->nlookup = 1; /* the kernel holds the root forever */
	return 0;
nomem:
	free(t->ht);
	free(t->lht);
	pthread_mutex_destroy(&t->lock);
	for (size_t i = 0; i < INODE_FD_LOCKS; i++)
		pthread_rwlock_destroy(&t->fd_locks[i]);
	return -ENOMEM;
}

void inode_table_release(struct vs_inode_table *t)
{
	for (size_t i = 0; i < t->ht_size; i++) {
		struct vs_inode *in = t->ht[i], *next;

		for (; in; in = next) {
			next = in->hnext;
			inode_free(in);
		}
	}
	free(t->ht);
	free(t->lht);
	pthread_mutex_destroy(&t->lock);
	for (size_t i = 0; i < INODE_FD_LOCKS; i++)
		pthread_rwlock_destroy(&t->fd_locks[i]);
	memset(t, 0, sizeof(*t));
}

struct vs_inode *inode_table_get(struct vs_inode_table *t, uint64_t ino)
{
	struct vs_inode *in = t->ht[hash_u64(ino, t->ht_size)];

	while (in && in->ino != ino)
		in = in->hnext;
	return in;
}

/* Binary search in the sorted children; *pos gets the insertion point. */
static struct vs_inode *child_search(const struct vs_inode *dir,
				     const char *name, size_t *pos)
{
	size_t lo = 0, hi = dir->nchildren;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, dir->children[mid]->name);

		if (c == 0) {
			if (pos)
				*pos = mid;
			return dir->children[mid];
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (pos)
		*pos = lo;
	return NULL;
}

struct vs_inode *inode_child_find(const struct vs_inode *dir, const char *name)
{
	return child_search(dir, name, NULL);
}

/* Make room for one more child of @dir. 0 or -ENOMEM. */
static int child_reserve(struct vs_inode *dir)
{
	if (dir->nchildren == dir->children_alloc) {
		size_t alloc =
		    dir->children_alloc ? (size_t)dir->children_alloc * 2 : 4;
		struct vs_inode **p;

		if (alloc > UINT32_MAX)
			return -ENOMEM;
		p = realloc(dir->children, alloc * sizeof(*p));
		if (!p)
			return -ENOMEM;
		dir->children = p;
		dir->children_alloc = (uint32_t)alloc;
	}
	return 0;
}

static int child_insert(struct vs_inode *dir, struct vs_inode *child,
			size_t pos)
{
	if (child_reserve(dir) < 0)
		return -ENOMEM;
	memmove(dir->children + pos + 1, dir->children + pos,
		(dir->nchildren - pos) * sizeof(*dir->children));
	dir->children[pos] = child;
	dir->nchildren++;
	child->parent = dir;
	return 0;
}

int inode_synced_child(struct vs_inode_table *t, struct vs_inode *dir,
		       const char *name, enum vs_kind kind,
		       struct vs_inode **out)
{
	struct vs_inode *in;
	size_t pos;

	in = child_search(dir, name, &pos);
	if (in) {
		*out = in;
		return 0;
	}
	in = inode_new(t, name, kind, false);
	if (!in)
		return -ENOMEM;
	in->mode = kind == VS_KIND_DIR ? 0755 : 0644;
	if (ht_insert(t, in) < 0) {
		inode_free(in);
		return -ENOMEM;
	}
	if (child_insert(dir, in, pos) < 0) {
		ht_remove(t, in); /* else the table keeps a freed inode */
		inode_free(in);
		return -ENOMEM;
	}
	*out = in;
	return 0;
}

int inode_synced_at(struct vs_inode_table *t, const char *path,
		    enum vs_kind kind, struct vs_inode **out)
{
	struct vs_inode *dir = t->root, *in = NULL;
	char *copy = strdup(path), *p, *slash;
	int r = 0;

	if (!copy)
		return -ENOMEM;
	for (p = copy; (slash = strchr(p, '/')); p = slash + 1) {
		*slash = '\0';
		r = inode_synced_child(t, dir, p, VS_KIND_DIR, &dir);
		if (r < 0)
			goto out;
		if (dir->kind != VS_KIND_DIR) {
			r = -ENOTDIR;
			goto out;
		}
	}
	r = inode_synced_child(t, dir, p, kind, &in);
	if (r == 0) {
		*out = in;
		if (in->kind != kind)
			r = -EEXIST;
	}
out:
	free(copy);
	return r;
}

static int add_entry(struct vs_inode_table *t,
		     const struct vs_manifest_entry *e)
{
	struct vs_inode *in = NULL;
	int r = inode_synced_at(t, e->path, e->kind, &in);

	if (r == -ENOTDIR) {
		vs_warn("skipping '%s': a parent is not a directory", e->path);
		return 0;
	}
	if (r == -EEXIST) {
		vs_warn("skipping '%s': listed twice with different kinds",
			e->path);
		return 0;
	}
	if (r < 0)
		return r;
	in->mode = e->mode & 07777;
	in->size = e->kind == VS_KIND_DIR ? 0 : e->size;
	in->mtime_ns = e->mtime_ns;
	in->version = e->version;
	memcpy(in->hash, e->hash, sizeof(in->hash));
	if (e->kind == VS_KIND_SYMLINK) {
		free(in->target);
		in->target = strdup(e->target ? e->target : "");
		if (!in->target)
			return -ENOMEM;
		in->size = strlen(in->target);
	}
	return 0;
}

int inode_table_build(struct vs_inode_table *t, const struct vs_manifest *m,
		      const struct vs_local_rules *local)
{
	int64_t newest = 0;

	for (size_t i = 0; i < m->n; i++) {
		const struct vs_manifest_entry *e = &m->entries[i];
		int r;

		if (vs_path_check(e->path, strlen(e->path)) < 0 ||
		    !e->path[0]) {
			vs_warn("skipping invalid path '%s' from the manifest",
				e->path);
			continue;
		}
		if (vs_path_is_local(local, e->path)) {
			vs_info("skipping '%s': local-only path, not synced",
				e->path);
			continue;
		}
		r = add_entry(t, e);
		if (r < 0)
			return r;
		if (e->mtime_ns > newest)
			newest = e->mtime_ns;
	}
	t->root->mtime_ns = newest;
	return 0;
}

static size_t lhash(dev_t dev, ino_t ino, size_t size)
{
	return hash_u64((uint64_t)ino ^ ((uint64_t)dev << 32 | dev >> 32),
			size);
}

struct vs_inode *inode_local_find(struct vs_inode_table *t, dev_t dev,
				  ino_t ino)
{
	struct vs_inode *in = t->lht[lhash(dev, ino, t->lht_size)];

	while (in && (inode_local(in)->upper_ino != ino ||
		      inode_local(in)->upper_dev != dev))
		in = inode_local(in)->lhnext;
	return in;
}

/* Double the local hash when it holds more inodes than buckets; on
 * ENOMEM it stays as it is (longer chains, still correct). */
static void lht_grow(struct vs_inode_table *t)
{
	size_t size = t->lht_size * 2;
	struct vs_inode **lht;

	if (t->lcount < t->lht_size)
		return;
	lht = calloc(size, sizeof(*lht));
	if (!lht)
		return;
	for (size_t i = 0; i < t->lht_size; i++) {
		struct vs_inode *in = t->lht[i], *next;

		for (; in; in = next) {
			struct vs_inode_local *lo = inode_local(in);
			size_t h = lhash(lo->upper_dev, lo->upper_ino, size);

			next = lo->lhnext;
			lo->lhnext = lht[h];
			lht[h] = in;
		}
	}
	free(t->lht);
	t->lht = lht;
	t->lht_size = size;
}

struct vs_inode *inode_local_get(struct vs_inode_table *t, dev_t dev, ino_t ino,
				 enum vs_kind kind, int *fd)
{
	struct vs_inode *in = inode_local_find(t, dev, ino);
	size_t h;

	if (in) {
		in->nlookup++;
		return in;
	}
	lht_grow(t);
	h = lhash(dev, ino, t->lht_size);
	in = inode_new(t, "", kind, true);
	if (!in)
		return NULL;
	inode_local(in)->upper_dev = dev;
	inode_local(in)->upper_ino = ino;
	if (ht_insert(t, in) < 0) {
		inode_free(in);
		return NULL;
	}
	in->fd = *fd;
	*fd = -1;
	in->nlookup = 1;
	inode_local(in)->lhnext = t->lht[h];
	t->lht[h] = in;
	t->lcount++;
	return in;
}

void inode_forget(struct vs_inode_table *t, struct vs_inode *in, uint64_t n)
{
	struct vs_inode **p;

	if (n > in->nlookup)
		vs_bug("forget %llu of inode %llu with only %llu lookups",
		       (unsigned long long)n, (unsigned long long)in->ino,
		       (unsigned long long)in->nlookup);
	in->nlookup -= n;
	if (in->nlookup > 0 || !(in->local || in->removed))
		return;
	if (in->local) {
		struct vs_inode_local *lo = inode_local(in);

		p = &t->lht[lhash(lo->upper_dev, lo->upper_ino, t->lht_size)];
		while (*p && *p != in)
			p = &inode_local(*p)->lhnext;
		if (!*p)
			vs_bug("local inode %llu missing from the table",
			       (unsigned long long)in->ino);
		*p = lo->lhnext;
		t->lcount--;
	}
	ht_remove(t, in);
	inode_free(in); /* closes a local inode's O_PATH fd */
}

void inode_pin(struct vs_inode_table *t, struct vs_inode *in)
{
	pthread_mutex_lock(&t->lock);
	in->nlookup++;
	pthread_mutex_unlock(&t->lock);
}

void inode_unpin(struct vs_inode_table *t, struct vs_inode *in)
{
	pthread_mutex_lock(&t->lock);
	inode_forget(t, in, 1);
	pthread_mutex_unlock(&t->lock);
}

int inode_path(const struct vs_inode *in, char *buf, size_t size)
{
	const struct vs_inode *p;
	size_t len = 0, pos;

	for (p = in; p->parent; p = p->parent)
		len += strlen(p->name) + 1;
	if (len == 0) {
		if (size < 1)
			return -ENAMETOOLONG;
		buf[0] = '\0';
		return 0;
	}
	if (len > size) /* len counts one '/' too many: room for the NUL */
		return -ENAMETOOLONG;
	pos = len - 1;
	buf[pos] = '\0';
	for (p = in; p->parent; p = p->parent) {
		size_t n = strlen(p->name);

		pos -= n;
		memcpy(buf + pos, p->name, n);
		if (pos > 0)
			buf[--pos] = '/';
	}
	return 0;
}

/* Remove @in from its parent's sorted children. */
static void child_detach(struct vs_inode *in)
{
	struct vs_inode *dir = in->parent;
	size_t pos;

	if (!dir || child_search(dir, in->name, &pos) != in)
		vs_bug("inode %llu ('%s') missing from its directory",
		       (unsigned long long)in->ino, in->name);
	memmove(dir->children + pos, dir->children + pos + 1,
		(dir->nchildren - pos - 1) * sizeof(*dir->children));
	dir->nchildren--;
	in->parent = NULL;
}

void inode_synced_remove(struct vs_inode_table *t, struct vs_inode *in)
{
	child_detach(in);
	in->removed = true;
	if (in->nlookup == 0) {
		ht_remove(t, in);
		inode_free(in);
	}
}

void inode_dir_changed(struct vs_inode *dir, int64_t now)
{
	if (dir && now > dir->mtime_ns)
		dir->mtime_ns = now;
}

int inode_remove_check(const struct vs_inode *in, bool dir)
{
	if (!in)
		return -ENOENT;
	if (dir && in->kind != VS_KIND_DIR)
		return -ENOTDIR;
	if (!dir && in->kind == VS_KIND_DIR)
		return -EISDIR;
	if (in->nchildren)
		return -ENOTEMPTY;
	return 0;
}

int inode_rename_check(const struct vs_inode *in,
		       const struct vs_inode *newparent,
		       const struct vs_inode *old, bool noreplace)
{
	if (!in)
		return -ENOENT;
	if (old && noreplace)
		return -EEXIST;
	if (old && old->kind == VS_KIND_DIR && in->kind != VS_KIND_DIR)
		return -EISDIR;
	if (old && old->kind != VS_KIND_DIR && in->kind == VS_KIND_DIR)
		return -ENOTDIR;
	if (old && old->nchildren)
		return -ENOTEMPTY;
	for (const struct vs_inode *p = newparent; p; p = p->parent)
		if (p == in)
			return -EINVAL;
	return 0;
}

int inode_synced_move(struct vs_inode *in, struct vs_inode *dir,
		      const char *name)
{
	char *copy = strdup(name);
	size_t pos;

	if (!copy || child_reserve(dir) < 0) {
		free(copy);
		return -ENOMEM;
	}
	child_detach(in);
	free(in->name);
	in->name = copy;
	if (child_search(dir, name, &pos))
		vs_bug("moving '%s' over an existing entry", name);
	child_insert(dir, in, pos); /* cannot fail: room was reserved */
	return 0;
}

void inode_forget_versions(struct vs_inode *dir)
{
	for (size_t i = 0; i < dir->nchildren; i++) {
		struct vs_inode *c = dir->children[i];

		if (c->kind == VS_KIND_DIR)
			inode_forget_versions(c);
		else
			c->version = -1;
	}
}

int inode_pending_set(struct vs_inode_table *t, struct vs_inode *in,
		      const char *op, uint64_t lseq)
{
	struct vs_inode_save *s;

	if (!op || !op[0]) {
		s = inode_save(in);
		if (!s) /* (none pending already) */
			return 0;
		s->pending_op[0] = '\0';
		s->pending_lseq = 0;
		s->pending_moved = 0;
		pending_unlink(in);
		return 0;
	}
	s = inode_save_get(in);
	if (!s)
		return -ENOMEM;
	snprintf(s->pending_op, sizeof(s->pending_op), "%s", op);
	s->pending_lseq = lseq;
	if (s->pprev)
		return 0;
	s->pnext = t->pending;
	if (s->pnext)
		inode_save(s->pnext)->pprev = &s->pnext;
	s->pprev = &t->pending;
	t->pending = in;
	return 0;
}

struct vs_inode *inode_pending_find(struct vs_inode_table *t, const char *op)
{
	for (struct vs_inode *in = t->pending; in; in = inode_save(in)->pnext)
		if (strcmp(inode_save(in)->pending_op, op) == 0)
			return in;
	return NULL;
}

const char *inode_committed_hash(const struct vs_inode *in)
{
	const struct vs_inode_save *s = inode_save_r(in);

	return !s->pending_op[0] && s->saved_hash[0] ? s->saved_hash : in->hash;
}

struct vs_inode *inode_moved_find(struct vs_inode_table *t, uint64_t lseq)
{
	if (!lseq)
		return NULL;
	for (struct vs_inode *in = t->pending; in; in = inode_save(in)->pnext)
		if (inode_save(in)->pending_moved == lseq)
			return in;
	return NULL;
}

/* Close @in's content fd if it may go (inode_content_reclaim; t->lock
 * held, then its fd_lock tried: never waited for, against the lock
 * order). */
static bool content_reclaim_one(struct vs_inode_table *t, struct vs_inode *in,
				struct vs_inode *keep)
{
	bool closed = false;

	if (in == keep || in->local || in->kind != VS_KIND_FILE ||
	    atomic_exchange(&in->fd_used, false) ||
	    pthread_rwlock_trywrlock(inode_fd_lock(t, in)) != 0)
		return false;
	if (in->fd >= 0 && in->wfd < 0 && !in->fd_mem) {
		close(in->fd);
		inode_content_set(in, -1);
		closed = true;
	}
	pthread_rwlock_unlock(inode_fd_lock(t, in));
	return closed;
}

size_t inode_content_reclaim(struct vs_inode_table *t, struct vs_inode *keep,
			     size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&t->lock);
	/* twice round at most: the first may only take the second
	 * chances away */
	for (size_t k = 0; k < 2 * t->ht_size && n < max; k++) {
		size_t i = (t->reclaim_at + k) % t->ht_size;

		for (struct vs_inode *in = t->ht[i]; in && n < max;
		     in = in->hnext)
			n += content_reclaim_one(t, in, keep);
		t->reclaim_at = (i + 1) % t->ht_size;
	}
	pthread_mutex_unlock(&t->lock);
	return n;
}

struct vs_inode *inode_lookup_path(struct vs_inode_table *t, const char *path)
{
	struct vs_inode *in = t->root;
	char name[VS_NAME_MAX + 1];

	while (in && *path) {
		const char *slash = strchr(path, '/');
		size_t len = slash ? (size_t)(slash - path) : strlen(path);

		if (len > VS_NAME_MAX || in->kind != VS_KIND_DIR)
			return NULL;
		memcpy(name, path, len);
		name[len] = '\0';
		in = inode_child_find(in, name);
		path += len + (slash ? 1 : 0);
	}
	return in;
}
