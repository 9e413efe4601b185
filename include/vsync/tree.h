/*
 * tree.h - the tree snapshot: a project's whole manifest at one change,
 * in one Redis value (tree:{<id>}) signed once by the relay, so that a
 * cold mount takes its tree in one GET and one signature check instead of
 * an HGETALL and a signature per entry (docs/protocol.md, "Redis").
 * Pure: encoding and decoding do no I/O.
 *
 * Format: one header line, then the body as a blob (blob.h, lz4):
 *
 *   "vsync-tree 1 <seq> <manifest_len> <index_len> <sha256> <sig|->\n"
 *   body = manifest (vs_manifest_serialize(), manifest_len bytes)
 *          index    (index_len bytes, the bundle index, bundle.h; may
 *                    be empty)
 *
 * <sha256> is the hex SHA-256 of the decoded body; <sig> the relay's
 * signature of vs_sign_tree_msg() over the project id, seq, both lengths
 * and that hash (sign.h), "-" when the relay has no key. The manifest's
 * own header must name the same project and seq.
 */
#ifndef VSYNC_TREE_H
#define VSYNC_TREE_H

#include <stddef.h>
#include <stdint.h>

#include "vsync/manifest.h"

struct vs_sign_key;

/* The largest decoded body accepted (a 50,000-file manifest is ~6 MiB). */
#define VS_TREE_MAX ((size_t)256 << 20)
/* The header line is at most this long (its parse bound). */
#define VS_TREE_HEADER_MAX 256

/*
 * Encode the tree of project @id: @m (its project id and seq are
 * written as given) and @index (@index_len bytes, may be NULL and 0),
 * signed with @sign when not NULL. A malloc'd value in *out. 0, -ENOMEM,
 * -EFBIG (over VS_TREE_MAX) or the signer's error.
 */
int vs_tree_encode(uint8_t **out, size_t *out_len, const char *id,
		   const struct vs_manifest *m, const char *index,
		   size_t index_len, const struct vs_sign_key *sign);

/*
 * Decode a tree:{@id} value into @m (initialised, empty) and the index
 * (a malloc'd, NUL-terminated copy in *index, NULL when empty; may be
 * NULL if unwanted). With @verify, the signature must be there and
 * verify. 0; -EBADMSG (malformed, corrupt, hash mismatch, another
 * project or a seq that disagrees: @m left empty); -EKEYREJECTED
 * (unsigned or badly signed with @verify); -ENOMEM.
 */
int vs_tree_decode(struct vs_manifest *m, char **index, size_t *index_len,
		   const char *id, const void *val, size_t len,
		   const struct vs_sign_key *verify);

#endif
