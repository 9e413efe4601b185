/*
 * blob.c - the encoding of content stored in Redis (blob.h). Pure: no I/O.
 *
 * Format: one method byte, then
 *   'r'  the bytes as they are;
 *   'z'  the original length (8 bytes, little-endian) and one LZ4 block.
 * Content under the threshold, content LZ4 cannot take in one block, and
 * content that does not shrink are stored raw.
 *
 * Decoding trusts nothing: the length in the header is checked against
 * the caller's @max_len before anything is allocated, and against what
 * LZ4 can possibly produce from the bytes present (at most 255 output
 * bytes per input byte), so a 9-byte blob cannot make us allocate 4 GiB.
 * LZ4_decompress_safe() never writes past the buffer and must produce
 * exactly the announced length.
 */
#include "vsync/blob.h"

#include <errno.h>
#include <limits.h>
#include <lz4.h>
#include <stdlib.h>
#include <string.h>
#include "vsync/banned.h"

#define BLOB_RAW     'r'
#define BLOB_LZ4     'z'
#define BLOB_LZ4_HDR 9 /* method + 8-byte length */
/* LZ4's best ratio is ~255:1; anything announcing more is a lie. */
#define BLOB_LZ4_MAX_RATIO 255

static void put_le64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* The raw form of @data in a malloc'd *out. 0, -ENOMEM or -EFBIG. */
static int encode_raw(uint8_t **out, size_t *out_len, const void *data,
		      size_t len)
{
	uint8_t *p;

	if (len > SIZE_MAX - 1)
		return -EFBIG;
	p = malloc(len + 1);
	if (!p)
		return -ENOMEM;
	p[0] = BLOB_RAW;
	if (len)
		memcpy(p + 1, data, len);
	*out = p;
	*out_len = len + 1;
	return 0;
}

int vs_blob_encode(uint8_t **out, size_t *out_len, const void *data, size_t len,
		   size_t threshold)
{
	uint8_t *p = NULL, *shrunk;
	int bound, n;

	*out = NULL;
	*out_len = 0;
	if (len < threshold || len > LZ4_MAX_INPUT_SIZE)
		return encode_raw(out, out_len, data, len);
	bound = LZ4_compressBound((int)len);
	if (bound <= 0)
		return encode_raw(out, out_len, data, len);
	p = malloc(BLOB_LZ4_HDR + (size_t)bound);
	if (!p)
		return -ENOMEM;
	n = LZ4_compress_default(data, (char *)p + BLOB_LZ4_HDR, (int)len,
				 bound);
	if (n <= 0 || (size_t)n + BLOB_LZ4_HDR >= len + 1) {
		/* does not shrink: raw is smaller and cheaper to read */
		free(p);
		return encode_raw(out, out_len, data, len);
	}
	p[0] = BLOB_LZ4;
	put_le64(p + 1, len);
	/* give back the unused end of the bound-sized buffer */
	shrunk = realloc(p, BLOB_LZ4_HDR + (size_t)n);
	*out = shrunk ? shrunk : p;
	*out_len = BLOB_LZ4_HDR + (size_t)n;
	return 0;
}

/* The length of the original of @enc (@enc_len bytes), checked against
 * @max_len and the encoding. */
static int blob_orig_len(const uint8_t *e, size_t enc_len, size_t max_len,
			 size_t *orig_out)
{
	uint64_t orig;
	size_t clen;

	if (enc_len < 1)
		return -EBADMSG;
	if (e[0] == BLOB_RAW) {
		if (enc_len - 1 > max_len)
			return -EFBIG;
		*orig_out = enc_len - 1;
		return 0;
	}
	if (e[0] != BLOB_LZ4 || enc_len <= BLOB_LZ4_HDR)
		return -EBADMSG;
	orig = get_le64(e + 1);
	clen = enc_len - BLOB_LZ4_HDR;
	if (orig > max_len)
		return -EFBIG;
	if (orig > LZ4_MAX_INPUT_SIZE || clen > INT_MAX ||
	    orig > (uint64_t)clen * BLOB_LZ4_MAX_RATIO + 16)
		return -EBADMSG;
	*orig_out = (size_t)orig;
	return 0;
}

int vs_blob_decode_into(uint8_t *out, size_t cap, size_t *out_len,
			const void *enc, size_t enc_len)
{
	const uint8_t *e = enc;
	size_t orig;
	int r, n;

	*out_len = 0;
	r = blob_orig_len(e, enc_len, cap, &orig);
	if (r < 0)
		return r;
	if (e[0] == BLOB_RAW) {
		memcpy(out, e + 1, orig);
	} else {
		n = LZ4_decompress_safe(
		    (const char *)e + BLOB_LZ4_HDR, (char *)out,
		    (int)(enc_len - BLOB_LZ4_HDR), (int)orig);
		if (n < 0 || (size_t)n != orig)
			return -EBADMSG;
	}
	*out_len = orig;
	return 0;
}

int vs_blob_decode(uint8_t **out, size_t *out_len, const void *enc,
		   size_t enc_len, size_t max_len)
{
	size_t orig;
	uint8_t *p;
	int r;

	*out = NULL;
	*out_len = 0;
	r = blob_orig_len(enc, enc_len, max_len, &orig);
	if (r < 0)
		return r;
	p = malloc(orig ? orig : 1);
	if (!p)
		return -ENOMEM;
	r = vs_blob_decode_into(p, orig, out_len, enc, enc_len);
	if (r < 0) {
		free(p);
		return r;
	}
	*out = p;
	return 0;
}
