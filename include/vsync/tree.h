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

/*
 * Bundles: the project's small files packed in a few values,
 * bundle:{<id>}:<bundle id>, so that a cold mount takes them in a
 * handful of GETs. The tree's index lists them, one line each:
 *
 *   "bundle <bundle id> <sha256 of the value> <files> <raw_len>\n"
 *
 * <bundle id> is the SHA-256 of its files' hashes (hex, concatenated in
 * order): the same files make the same key, so a rebuild reuses what did
 * not change. The value is a blob (blob.h, lz4) of raw_len bytes of
 * records, each "<sha256 hex> <len>\n" and <len> bytes of content. The
 * index is covered by the tree's signature, so a value whose SHA-256 is
 * not the index's is refused before it is decoded; every file is checked
 * against its own hash again when stored (cache.c).
 */
/* files up to this size go into bundles */
#define VS_BUNDLE_FILE_MAX (64 * 1024)
/* a bundle holds at most this many raw bytes (records included) */
#define VS_BUNDLE_RAW_MAX ((size_t)4 << 20)
/* the index of a tree lists at most this many bundles */
#define VS_BUNDLE_MAX_COUNT 4096

struct vs_bundle_ref {
	char id[VS_HASH_HEX_LEN + 1];  /* bundle:{<project>}:<id> */
	char sha[VS_HASH_HEX_LEN + 1]; /* SHA-256 of the stored value */
	uint32_t files;
	uint64_t raw_len;
};

/* Parse an index (@len bytes) into a malloc'd array *out of *n bundles
 * (NULL, 0 for an empty index). 0, -EBADMSG (a malformed line, too many
 * bundles, a raw length over VS_BUNDLE_RAW_MAX) or -ENOMEM. */
int vs_bundle_index_parse(struct vs_bundle_ref **out, size_t *n,
			  const char *text, size_t len);

/* One index line for @b into @out (VS_BUNDLE_LINE_MAX bytes); its
 * length. */
#define VS_BUNDLE_LINE_MAX (8 + 2 * (VS_HASH_HEX_LEN + 1) + 32)
int vs_bundle_index_line(char *out, const struct vs_bundle_ref *b);

/* The record header of @len bytes of content @hash into @out
 * (VS_BUNDLE_REC_MAX bytes); its length. */
#define VS_BUNDLE_REC_MAX (VS_HASH_HEX_LEN + 24)
int vs_bundle_record(char *out, const char *hash, size_t len);

/*
 * Call @fn for each record of the decoded bundle @raw (@len bytes), with
 * the record's hash (NUL-terminated, 64 hex digits, not checked against
 * the bytes) and its content. Stops at @fn's first non-zero return and
 * returns it; -EBADMSG if the records do not parse to the end.
 */
int vs_bundle_each(const uint8_t *raw, size_t len,
		   int (*fn)(void *arg, const char *hash, const uint8_t *data,
			     size_t n),
		   void *arg);

#endif
