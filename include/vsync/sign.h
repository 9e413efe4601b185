/*
 * sign.h - the relay's Ed25519 signatures on what it puts in Redis
 * (sync/sign.c; docs/protocol.md, "Signatures").
 *
 * The relay signs every stream entry and every manifest:{id} value with
 * its private key; mounts given the public key verify them and treat
 * anything unsigned or badly signed as absent (they read PostgreSQL
 * instead). What is signed is a canonical byte string, built here and
 * only here, from the parsed datum (not from its Redis text), so every
 * field a mount acts on is covered whatever its spelling:
 *
 *   message = item*            item = <u32 big-endian length> <bytes>
 *
 *   stream entry:  "vsync-change-v1", project id, seq, op, path,
 *                  old_path, kind, mode, size, hash, version, mtime_ns,
 *                  target, author, conflict, delta_base
 *   manifest value: "vsync-manifest-v1", project id, path, kind, mode,
 *                  size, version, mtime_ns, hash, target
 *   name value:    "vsync-name-v1", project name, project id
 *                  (name:{<name>}, what a mount resolves a name with)
 *   tree:          "vsync-tree-v1", project id, seq, manifest length,
 *                  index length, SHA-256 of manifest + index (tree:{id},
 *                  the whole tree in one value: tree.h)
 *
 * Numbers are decimal text (mode octal), names as in change.h, absent
 * fields empty. The length prefixes make the encoding injective (no two
 * data give the same bytes); the leading tag keeps a manifest signature
 * from passing as a stream entry's and the project id keeps one
 * project's data from being replayed into another.
 *
 * Keys are OpenSSL EVP_PKEYs (EVP_PKEY_ED25519, EVP_DigestSign with no
 * digest). A struct vs_sign_key is read-only after loading and may be
 * shared between threads (each call makes its own EVP_MD_CTX).
 */
#ifndef VSYNC_SIGN_H
#define VSYNC_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "vsync/change.h"
#include "vsync/manifest.h"

struct vs_sign_key;

/* A signature in base64: 64 bytes -> 88 characters (with "=="). */
#define VS_SIGN_B64_LEN 88
/* Size limit of a canonical message (paths, a target, the author ...). */
#define VS_SIGN_MSG_MAX (4 * (VS_PATH_MAX + 1) + 1024)

/* The stream field that carries an entry's signature. */
#define VS_SIGN_FIELD "sig"
/* A signed manifest value is VS_SIGN_PREFIX <base64 sig> ' ' <value>. */
#define VS_SIGN_PREFIX	   "sig1:"
#define VS_SIGN_PREFIX_LEN 5

/*
 * Canonical messages (pure). Write at most @size bytes to @out; return
 * the length, or -ENOSPC when @size is too small (VS_SIGN_MSG_MAX always
 * suffices for data that passed vs_change_parse() / the manifest checks).
 */
long vs_sign_change_msg(uint8_t *out, size_t size, const char *project_id,
			const struct vs_change *c);
/* @e->path is the manifest field (the path). */
long vs_sign_manifest_msg(uint8_t *out, size_t size, const char *project_id,
			  const struct vs_manifest_entry *e);

/* A name message is at most 3 * 4 + 13 + 64 + 36 bytes (a name is at
 * most 64 characters); -ENOSPC past @size. */
long vs_sign_name_msg(uint8_t *out, size_t size, const char *name,
		      const char *project_id);

/* The message of a tree snapshot (tree.h): at most 5 * 4 + 13 + 36 + 3 *
 * 20 + 64 bytes; -ENOSPC past @size. */
long vs_sign_tree_msg(uint8_t *out, size_t size, const char *project_id,
		      int64_t seq, uint64_t manifest_len, uint64_t index_len,
		      const char *sha256_hex);

/*
 * Load a private key (PEM, PKCS#8, as `vsyncctl keygen` writes) from
 * @file, or a public key from @spec: a PEM file's path, or the raw 32-byte
 * key in base64 (what `vsyncctl keygen` prints). 0, -ENOENT (no such
 * file), -EINVAL (not an Ed25519 key of that kind; logged) or -ENOMEM.
 */
int vs_sign_key_load_private(struct vs_sign_key **out, const char *file);
int vs_sign_key_load_public(struct vs_sign_key **out, const char *spec);
void vs_sign_key_free(struct vs_sign_key *k);

/*
 * A new key pair: the private key as PEM (malloc'd, NUL-terminated) and
 * the public key as base64 of its 32 raw bytes (44 chars + NUL). 0 or
 * -ENOMEM / -EIO.
 */
int vs_sign_keygen(char **private_pem, char public_b64[45]);

/* Sign @len bytes: @sig gets the base64 signature and a NUL. The key must
 * be a private one. 0 or -EIO. */
int vs_sign(const struct vs_sign_key *k, const uint8_t *msg, size_t len,
	    char sig[VS_SIGN_B64_LEN + 1]);
/* 0 when @sig (base64, @siglen chars) is a valid signature of @msg by
 * @k; -EBADMSG otherwise (malformed, truncated, wrong key, altered). */
int vs_sign_verify(const struct vs_sign_key *k, const uint8_t *msg, size_t len,
		   const char *sig, size_t siglen);

/* Both at once for a parsed stream entry / manifest value. */
int vs_sign_change(const struct vs_sign_key *k, const char *project_id,
		   const struct vs_change *c, char sig[VS_SIGN_B64_LEN + 1]);
int vs_sign_change_verify(const struct vs_sign_key *k, const char *project_id,
			  const struct vs_change *c, const char *sig,
			  size_t siglen);
int vs_sign_manifest(const struct vs_sign_key *k, const char *project_id,
		     const struct vs_manifest_entry *e,
		     char sig[VS_SIGN_B64_LEN + 1]);
int vs_sign_manifest_verify(const struct vs_sign_key *k, const char *project_id,
			    const struct vs_manifest_entry *e, const char *sig,
			    size_t siglen);

/* The same for the name -> id mapping of project @name (-ENOSPC, from
 * signing, for a name over 200 bytes; -EBADMSG, from verifying). */
int vs_sign_name(const struct vs_sign_key *k, const char *name,
		 const char *project_id, char sig[VS_SIGN_B64_LEN + 1]);
int vs_sign_name_verify(const struct vs_sign_key *k, const char *name,
			const char *project_id, const char *sig, size_t siglen);

/* The same for a tree snapshot (vs_sign_tree_msg()). */
int vs_sign_tree(const struct vs_sign_key *k, const char *project_id,
		 int64_t seq, uint64_t manifest_len, uint64_t index_len,
		 const char *sha256_hex, char sig[VS_SIGN_B64_LEN + 1]);
int vs_sign_tree_verify(const struct vs_sign_key *k, const char *project_id,
			int64_t seq, uint64_t manifest_len, uint64_t index_len,
			const char *sha256_hex, const char *sig, size_t siglen);

/* The value of the VS_SIGN_FIELD field among @n stream fields (as given
 * to vs_change_parse()), its length in *len; NULL when absent. Pure. */
const char *vs_sign_field(const char *const *names, const char *const *values,
			  const size_t *lengths, size_t n, size_t *len);

/*
 * The index of content @hash (@size bytes) of project @id stored in
 * chunks (chunks:{id}:<hash>, docs/protocol.md "Chunks"): the SHA-256 of
 * each chunk in hex, @n * 64 characters in @shas (no NUL), signed with
 * "vsync-chunks-v1", project id, content hash, size, SHA-256 of that
 * list. Encode: a malloc'd value, signed when @k is not NULL. Decode: 0
 * and @shas (the caller's, @n * 64 bytes: n = chunks of @size) filled;
 * -EBADMSG when the value does not hold that many lowercase hex digits,
 * or (@verify given) is unsigned or not signed for exactly this content
 * by that key.
 */
int vs_sign_chunks_encode(uint8_t **out, size_t *out_len,
			  const struct vs_sign_key *k, const char *id,
			  const char *hash, uint64_t size, const char *shas,
			  size_t n);
int vs_sign_chunks_decode(const char *value, size_t len,
			  const struct vs_sign_key *verify, const char *id,
			  const char *hash, uint64_t size, char *shas,
			  size_t n);

/*
 * Split a manifest:{id} value into its signature and the plain value
 * (vs_relay_entry_parse()'s input). Pure. A value without the prefix gets
 * *sig NULL and is returned whole; -EBADMSG when the prefix is there but
 * not followed by VS_SIGN_B64_LEN characters and a space.
 */
int vs_sign_value_split(const char *value, size_t len, const char **sig,
			const char **plain, size_t *plain_len);

#endif
