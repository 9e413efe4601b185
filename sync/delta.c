/*
 * delta.c - librsync deltas in memory (delta.h).
 *
 * librsync's whole-file API works on stdio streams: in-memory inputs are
 * fmemopen()ed (an empty one is /dev/null: fmemopen of 0 bytes is not
 * portable), signatures and deltas go to open_memstream(), and a patch's
 * output goes to a fopencookie() stream that refuses to grow past the
 * caller's limit, so a hostile delta (copy commands repeat the basis at
 * will) cannot make us allocate without bound.
 */
#include "vsync/delta.h"

#include <errno.h>
#include <librsync.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
#include "vsync/banned.h"

/* A read stream on @len bytes at @buf. */
static FILE *mem_in(const void *buf, size_t len)
{
	if (len == 0)
		return fopen("/dev/null", "rb");
	return fmemopen((void *)buf, len, "rb");
}

static void quiet(void)
{
	/* librsync logs failures to stderr itself; ours are enough */
	rs_trace_set_level(RS_LOG_CRIT);
}

static int rs_errno(rs_result r)
{
	switch (r) {
	case RS_DONE:
		return 0;
	case RS_MEM_ERROR:
		return -ENOMEM;
	case RS_IO_ERROR:
		return -EIO;
	default: /* RS_BAD_MAGIC, RS_CORRUPT, RS_INPUT_ENDED, RS_PARAM_ERROR */
		return -EBADMSG;
	}
}

int vs_delta_make(const void *base, size_t blen, const void *target,
		  size_t tlen, uint8_t **delta, size_t *dlen)
{
	FILE *bf = NULL, *sigf = NULL, *sigin = NULL, *tf = NULL, *df = NULL;
	rs_signature_t *sums = NULL;
	rs_magic_number magic = 0;
	size_t block_len = 0, strong_len = 0, siglen = 0, len = 0;
	char *sig = NULL, *out = NULL;
	int r = -ENOMEM;

	*delta = NULL;
	*dlen = 0;
	quiet();
	bf = mem_in(base, blen);
	sigf = open_memstream(&sig, &siglen);
	if (!bf || !sigf)
		goto out;
	r = rs_errno(
	    rs_sig_args((rs_long_t)blen, &magic, &block_len, &strong_len));
	if (r == 0)
		r = rs_errno(
		    rs_sig_file(bf, sigf, block_len, strong_len, magic, NULL));
	if (fclose(sigf) != 0 && r == 0)
		r = -ENOMEM;
	sigf = NULL;
	if (r < 0)
		goto out;
	r = -ENOMEM;
	sigin = mem_in(sig, siglen);
	if (!sigin)
		goto out;
	r = rs_errno(rs_loadsig_file(sigin, &sums, NULL));
	if (r == 0)
		r = rs_errno(rs_build_hash_table(sums));
	if (r < 0)
		goto out;
	r = -ENOMEM;
	tf = mem_in(target, tlen);
	df = open_memstream(&out, &len);
	if (!tf || !df)
		goto out;
	r = rs_errno(rs_delta_file(sums, tf, df, NULL));
	if (fclose(df) != 0 && r == 0)
		r = -ENOMEM;
	df = NULL;
	if (r == 0) {
		*delta = (uint8_t *)out;
		*dlen = len;
		out = NULL;
	}
out:
	if (r < 0 && r != -ENOMEM)
		r = -EIO; /* our own inputs: never "corrupt" */
	if (sums)
		rs_free_sumset(sums);
	if (bf)
		fclose(bf);
	if (sigf)
		fclose(sigf);
	if (sigin)
		fclose(sigin);
	if (tf)
		fclose(tf);
	if (df)
		fclose(df);
	free(sig);
	free(out);
	return r;
}

/* The output of a patch: memory that refuses to grow past max. */
struct bounded {
	uint8_t *buf;
	size_t len, alloc, max;
	bool over, nomem;
};

static ssize_t bounded_write(void *cookie, const char *p, size_t n)
{
	struct bounded *b = cookie;
	size_t want;
	uint8_t *nb;

	if (n > b->max - b->len) {
		b->over = true;
		errno = EFBIG;
		return -1;
	}
	if (b->len + n > b->alloc) {
		want = b->alloc ? b->alloc : 65536;
		while (want < b->len + n)
			want *= 2;
		nb = realloc(b->buf, want);
		if (!nb) {
			b->nomem = true;
			errno = ENOMEM;
			return -1;
		}
		b->buf = nb;
		b->alloc = want;
	}
	memcpy(b->buf + b->len, p, n);
	b->len += n;
	return (ssize_t)n;
}

int vs_delta_apply(int base_fd, const void *delta, size_t dlen, size_t max_len,
		   uint8_t **out, size_t *olen)
{
	static const cookie_io_functions_t io = {.write = bounded_write};
	struct bounded b = {.max = max_len};
	FILE *basis = NULL, *df = NULL, *of = NULL;
	int fd = -1, r = -ENOMEM;

	*out = NULL;
	*olen = 0;
	if (dlen == 0)
		return -EBADMSG; /* not even a magic number */
	quiet();
	fd = dup(base_fd);
	if (fd < 0)
		return -errno;
	basis = fdopen(fd, "rb");
	if (!basis) {
		r = -errno;
		close(fd);
		return r;
	}
	if (fseeko(basis, 0, SEEK_SET) != 0) {
		r = -EIO;
		goto out;
	}
	df = mem_in(delta, dlen);
	of = fopencookie(&b, "wb", io);
	if (!df || !of)
		goto out;
	r = rs_errno(rs_patch_file(basis, df, of, NULL));
	if (fclose(of) != 0 && r == 0)
		r = -EIO;
	of = NULL;
	if (b.over)
		r = -EFBIG;
	else if (b.nomem)
		r = -ENOMEM;
	else if (r == -EIO && ferror(basis) == 0)
		r = -EBADMSG; /* librsync calls a short delta an I/O error */
	if (r == 0) {
		if (!b.buf && !(b.buf = malloc(1))) {
			r = -ENOMEM;
			goto out;
		}
		*out = b.buf;
		*olen = b.len;
		b.buf = NULL;
	}
out:
	if (basis)
		fclose(basis);
	if (df)
		fclose(df);
	if (of)
		fclose(of);
	free(b.buf);
	return r;
}
