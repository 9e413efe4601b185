/*
 * blob.h - the encoding of content stored in Redis. Pure.
 *
 * Format: one byte method, then
 *   'r' raw:  the bytes
 *   'z' lz4:  8-byte little-endian original length, then one LZ4 block
 * Content shorter than the threshold, or that does not shrink, is raw.
 */
#ifndef VSYNC_BLOB_H
#define VSYNC_BLOB_H

#include <stddef.h>
#include <stdint.h>

#define VS_BLOB_LZ4_THRESHOLD 1024

/* Encode @len bytes into a malloc'd *out. 0 or -ENOMEM / -EFBIG. */
int vs_blob_encode(uint8_t **out, size_t *out_len, const void *data, size_t len,
		   size_t threshold);
/* Decode; -EBADMSG for an unknown method, a bad length or corrupt lz4 data,
 * -EFBIG if the original is over @max_len. 0 and a malloc'd *out. */
int vs_blob_decode(uint8_t **out, size_t *out_len, const void *enc,
		   size_t enc_len, size_t max_len);
/* The same into the caller's @out of @cap bytes: -EFBIG if the original
 * is larger. */
int vs_blob_decode_into(uint8_t *out, size_t cap, size_t *out_len,
			const void *enc, size_t enc_len);

#endif
