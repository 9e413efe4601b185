/*
 * merge.c - three-way merge of text content (merge.h), on libgit2's
 * git_merge_file (git's own xdiff merge, default options: conflicts are
 * whole hunks that both sides changed; identical changes on both sides are
 * not a conflict). Pure: no repository, no I/O.
 *
 * Binary content (a NUL byte in any input) is never handed to libgit2: it
 * is a conflict, as git treats binary files. libgit2's global state is
 * set up once (pthread_once) and never torn down; git_merge_file itself is
 * safe to call from several threads at once.
 */
#include "vsync/merge.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <git2.h>
#include "vsync/banned.h"

static pthread_once_t git_once = PTHREAD_ONCE_INIT;
static int git_init_result;

static void git_init(void)
{
	git_init_result = git_libgit2_init();
}

static void set_input(git_merge_file_input *in, const char *p, size_t len)
{
	git_merge_file_input_init(in, GIT_MERGE_FILE_INPUT_VERSION);
	in->ptr = len ? p : "";
	in->size = len;
	in->mode = 0100644; /* modes take no part in a content merge */
}

static int binary(const char *p, size_t len)
{
	return len && memchr(p, '\0', len) != NULL;
}

int vs_merge3(const char *base, size_t base_len, const char *ours,
	      size_t ours_len, const char *theirs, size_t theirs_len,
	      char **out, size_t *out_len)
{
	git_merge_file_input in_base, in_ours, in_theirs;
	git_merge_file_result res;
	char *buf;
	int r;

	*out = NULL;
	*out_len = 0;
	if ((!base && base_len) || (!ours && ours_len) ||
	    (!theirs && theirs_len))
		return -EINVAL;
	if (binary(base, base_len) || binary(ours, ours_len) ||
	    binary(theirs, theirs_len))
		return VS_MERGE_CONFLICT;
	if (pthread_once(&git_once, git_init) != 0 || git_init_result < 0)
		return -EIO;
	set_input(&in_base, base, base_len);
	set_input(&in_ours, ours, ours_len);
	set_input(&in_theirs, theirs, theirs_len);
	memset(&res, 0, sizeof(res));
	if (git_merge_file(&res, &in_base, &in_ours, &in_theirs, NULL) < 0) {
		const git_error *e = git_error_last();

		r = e && e->klass == GIT_ERROR_NOMEMORY ? -ENOMEM : -EIO;
		git_merge_file_result_free(&res);
		return r;
	}
	if (!res.automergeable) {
		git_merge_file_result_free(&res);
		return VS_MERGE_CONFLICT;
	}
	buf = malloc(res.len ? res.len : 1);
	if (!buf) {
		git_merge_file_result_free(&res);
		return -ENOMEM;
	}
	if (res.len)
		memcpy(buf, res.ptr, res.len);
	*out = buf;
	*out_len = res.len;
	git_merge_file_result_free(&res);
	return VS_MERGE_CLEAN;
}
