/*
 * delta.h - binary deltas between two versions of a file (librsync), so
 * that a small edit of a large file travels small (Redis keys
 * delta:{<id>}:<base sha256>:<new sha256>, see docs/protocol.md).
 *
 * Pure apart from memory and temporary stdio streams. A delta is only a
 * transport optimisation: whoever applies one checks the result against
 * the SHA-256 of the new version, and falls back to the full content when
 * anything fails.
 */
#ifndef VSYNC_DELTA_H
#define VSYNC_DELTA_H

#include <stddef.h>
#include <stdint.h>

/*
 * Compute the delta that turns @base (@blen bytes, may be 0) into
 * @target (@tlen bytes). On success *@delta (malloc'd, free() it) holds
 * *@dlen bytes. 0, -ENOMEM or -EIO.
 */
int vs_delta_make(const void *base, size_t blen, const void *target,
		  size_t tlen, uint8_t **delta, size_t *dlen);

/*
 * Apply @delta (@dlen bytes) to the content readable at @base_fd (a
 * seekable file, read from offset 0 through a dup of it: the file offset
 * it shares is moved). The result goes to *@out (malloc'd, free() it;
 * non-NULL even when empty), *@olen bytes. 0; -EBADMSG for a corrupt or
 * truncated delta; -EFBIG if the result would exceed @max_len bytes;
 * -ENOMEM; -EIO (reading the base). Nothing is returned on failure.
 */
int vs_delta_apply(int base_fd, const void *delta, size_t dlen, size_t max_len,
		   uint8_t **out, size_t *olen);

#endif
