/*
 * hash.h - SHA-256 content identity (OpenSSL EVP) and hex codecs.
 * Content everywhere in vsync is named by the lowercase hex SHA-256 of its
 * bytes (64 chars + NUL).
 */
#ifndef VSYNC_HASH_H
#define VSYNC_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VS_HASH_LEN	32
#define VS_HASH_HEX_LEN 64

struct vs_sha256 {
	void *ctx; /* EVP_MD_CTX */
};

/* Returns 0, or -ENOMEM when OpenSSL cannot allocate a context. */
int vs_sha256_init(struct vs_sha256 *s);
void vs_sha256_update(struct vs_sha256 *s, const void *buf, size_t len);
/* Writes the hex digest (65 bytes with NUL) and releases the context. */
void vs_sha256_final_hex(struct vs_sha256 *s, char out[VS_HASH_HEX_LEN + 1]);
void vs_sha256_release(struct vs_sha256 *s);

/* One-shot hex digest of a buffer. Returns 0 or -ENOMEM. */
int vs_sha256_hex(char out[VS_HASH_HEX_LEN + 1], const void *buf, size_t len);

/* Hex digest of everything readable from @fd (from offset 0, with pread).
 * Returns 0, -errno on read failure, -ENOMEM. */
int vs_sha256_fd_hex(char out[VS_HASH_HEX_LEN + 1], int fd);

/* True if @s is exactly 64 lowercase hex digits followed by NUL. */
bool vs_hash_hex_valid(const char *s);

/* Bytes -> lowercase hex; @out must hold 2*len+1. */
void vs_hex_encode(char *out, const uint8_t *in, size_t len);

/* Hex (exactly 2*@len digits, then NUL) -> @len bytes in @out (OpenSSL's
 * OPENSSL_hexstr2buf_ex). 0, or -EINVAL for anything else. */
int vs_hex_decode(uint8_t *out, size_t len, const char *hex);

#endif
