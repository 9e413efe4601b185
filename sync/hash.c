/*
 * hash.c - SHA-256 through OpenSSL's EVP interface, and hex helpers.
 */
#include "vsync/hash.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "vsync/banned.h"

int vs_sha256_init(struct vs_sha256 *s)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	s->ctx = NULL;
	if (!ctx)
		return -ENOMEM;
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		return -ENOMEM;
	}
	s->ctx = ctx;
	return 0;
}

void vs_sha256_update(struct vs_sha256 *s, const void *buf, size_t len)
{
	EVP_DigestUpdate(s->ctx, buf, len);
}

void vs_sha256_final_hex(struct vs_sha256 *s, char out[VS_HASH_HEX_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	EVP_DigestFinal_ex(s->ctx, md, &mdlen);
	vs_hex_encode(out, md, VS_HASH_LEN);
	vs_sha256_release(s);
}

void vs_sha256_release(struct vs_sha256 *s)
{
	EVP_MD_CTX_free(s->ctx);
	s->ctx = NULL;
}

int vs_sha256_hex(char out[VS_HASH_HEX_LEN + 1], const void *buf, size_t len)
{
	struct vs_sha256 s;
	int r = vs_sha256_init(&s);

	if (r < 0)
		return r;
	vs_sha256_update(&s, buf, len);
	vs_sha256_final_hex(&s, out);
	return 0;
}

int vs_sha256_fd_hex(char out[VS_HASH_HEX_LEN + 1], int fd)
{
	static const size_t chunk = 256 * 1024;
	struct vs_sha256 s;
	unsigned char *buf = NULL;
	off_t off = 0;
	int r;

	r = vs_sha256_init(&s);
	if (r < 0)
		return r;
	buf = malloc(chunk);
	if (!buf) {
		vs_sha256_release(&s);
		return -ENOMEM;
	}
	for (;;) {
		ssize_t n = pread(fd, buf, chunk, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			vs_sha256_release(&s);
			goto out;
		}
		if (n == 0)
			break;
		vs_sha256_update(&s, buf, (size_t)n);
		off += n;
	}
	vs_sha256_final_hex(&s, out);
	r = 0;
out:
	free(buf);
	return r;
}

bool vs_hash_hex_valid(const char *s)
{
	for (int i = 0; i < VS_HASH_HEX_LEN; i++) {
		char c = s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return s[VS_HASH_HEX_LEN] == '\0';
}

void vs_hex_encode(char *out, const uint8_t *in, size_t len)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

int vs_hex_decode(uint8_t *out, size_t len, const char *hex)
{
	size_t got = 0;

	if (strlen(hex) != 2 * len ||
	    OPENSSL_hexstr2buf_ex(out, len, &got, hex, '\0') != 1 || got != len)
		return -EINVAL;
	return 0;
}
