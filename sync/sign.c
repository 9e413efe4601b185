/*
 * sign.c - Ed25519 signatures of stream entries and manifest values
 * (sign.h): the canonical encoding, key files, sign and verify through
 * OpenSSL 3's EVP interface.
 */
#include "vsync/sign.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "vsync/hash.h"
#include "vsync/log.h"
#include "vsync/banned.h"

struct vs_sign_key {
	EVP_PKEY *pkey;
	int private;
};

/* ---- canonical encoding (pure) ---------------------------------------- */

struct msg {
	uint8_t *out;
	size_t size, len;
	int full;
};

static void put(struct msg *m, const void *s, size_t n)
{
	if (m->full || m->len + 4 + n > m->size) {
		m->full = 1;
		return;
	}
	m->out[m->len++] = (uint8_t)(n >> 24);
	m->out[m->len++] = (uint8_t)(n >> 16);
	m->out[m->len++] = (uint8_t)(n >> 8);
	m->out[m->len++] = (uint8_t)n;
	if (n)
		memcpy(m->out + m->len, s, n);
	m->len += n;
}

static void put_str(struct msg *m, const char *s)
{
	put(m, s ? s : "", s ? strlen(s) : 0);
}

static void put_i64(struct msg *m, int64_t v)
{
	char b[24];

	put(m, b, (size_t)snprintf(b, sizeof(b), "%" PRId64, v));
}

static void put_u64(struct msg *m, uint64_t v)
{
	char b[24];

	put(m, b, (size_t)snprintf(b, sizeof(b), "%" PRIu64, v));
}

static void put_mode(struct msg *m, uint32_t mode)
{
	char b[16];

	put(m, b, (size_t)snprintf(b, sizeof(b), "%o", (unsigned)mode));
}

static long msg_end(const struct msg *m)
{
	return m->full ? -ENOSPC : (long)m->len;
}

long vs_sign_change_msg(uint8_t *out, size_t size, const char *project_id,
			const struct vs_change *c)
{
	struct msg m = {out, size, 0, 0};

	put_str(&m, "vsync-change-v1");
	put_str(&m, project_id);
	put_i64(&m, c->seq);
	put_str(&m, vs_change_op_name(c->op));
	put_str(&m, c->path);
	put_str(&m, c->old_path);
	put_str(&m, vs_kind_name(c->state.kind));
	put_mode(&m, c->state.mode);
	put_u64(&m, c->state.size);
	put_str(&m, c->state.hash);
	put_i64(&m, c->state.version);
	put_i64(&m, c->state.mtime_ns);
	put_str(&m, c->state.target);
	put_str(&m, c->author);
	put_i64(&m, c->conflict);
	put_str(&m, c->delta_base);
	return msg_end(&m);
}

long vs_sign_manifest_msg(uint8_t *out, size_t size, const char *project_id,
			  const struct vs_manifest_entry *e)
{
	struct msg m = {out, size, 0, 0};

	put_str(&m, "vsync-manifest-v1");
	put_str(&m, project_id);
	put_str(&m, e->path);
	put_str(&m, vs_kind_name(e->kind));
	put_mode(&m, e->mode);
	put_u64(&m, e->size);
	put_i64(&m, e->version);
	put_i64(&m, e->mtime_ns);
	put_str(&m, e->hash);
	put_str(&m, e->target);
	return msg_end(&m);
}

long vs_sign_name_msg(uint8_t *out, size_t size, const char *name,
		      const char *project_id)
{
	struct msg m = {out, size, 0, 0};

	put_str(&m, "vsync-name-v1");
	put_str(&m, name);
	put_str(&m, project_id);
	return msg_end(&m);
}

long vs_sign_tree_msg(uint8_t *out, size_t size, const char *project_id,
		      int64_t seq, uint64_t manifest_len, uint64_t index_len,
		      const char *sha256_hex)
{
	struct msg m = {out, size, 0, 0};

	put_str(&m, "vsync-tree-v1");
	put_str(&m, project_id);
	put_i64(&m, seq);
	put_u64(&m, manifest_len);
	put_u64(&m, index_len);
	put_str(&m, sha256_hex);
	return msg_end(&m);
}

int vs_sign_value_split(const char *value, size_t len, const char **sig,
			const char **plain, size_t *plain_len)
{
	size_t head = VS_SIGN_PREFIX_LEN + VS_SIGN_B64_LEN + 1;

	*sig = NULL;
	*plain = value;
	*plain_len = len;
	if (len < VS_SIGN_PREFIX_LEN ||
	    memcmp(value, VS_SIGN_PREFIX, VS_SIGN_PREFIX_LEN) != 0)
		return 0;
	if (len < head || value[head - 1] != ' ')
		return -EBADMSG;
	*sig = value + VS_SIGN_PREFIX_LEN;
	*plain = value + head;
	*plain_len = len - head;
	return 0;
}

const char *vs_sign_field(const char *const *names, const char *const *values,
			  const size_t *lengths, size_t n, size_t *len)
{
	for (size_t i = 0; i < n; i++) {
		if (names[i] && values[i] && !strcmp(names[i], VS_SIGN_FIELD)) {
			*len = lengths[i];
			return values[i];
		}
	}
	*len = 0;
	return NULL;
}

/* ---- keys --------------------------------------------------------------- */

static void log_openssl(const char *what, const char *subject)
{
	vs_error("%s '%s': not an Ed25519 key of that kind", what, subject);
}

int vs_sign_key_load_private(struct vs_sign_key **out, const char *file)
{
	struct vs_sign_key *k;
	EVP_PKEY *pkey = NULL;
	FILE *f;

	*out = NULL;
	f = fopen(file, "r");
	if (!f) {
		int e = errno;

		vs_error("cannot read signing key '%s': %s", file, strerror(e));
		return e == ENOENT ? -ENOENT : -EINVAL;
	}
	pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (!pkey || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(pkey);
		log_openssl("cannot use signing key", file);
		return -EINVAL;
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		EVP_PKEY_free(pkey);
		return -ENOMEM;
	}
	k->pkey = pkey;
	k->private = 1;
	*out = k;
	return 0;
}

int vs_sign_key_load_public(struct vs_sign_key **out, const char *spec)
{
	struct vs_sign_key *k;
	EVP_PKEY *pkey = NULL;
	unsigned char raw[48];
	size_t n = strlen(spec);
	FILE *f;

	*out = NULL;
	f = fopen(spec, "r");
	if (f) {
		pkey = PEM_read_PUBKEY(f, NULL, NULL, NULL);
		fclose(f);
	} else if (n == 44 && EVP_DecodeBlock(raw, (const unsigned char *)spec,
					      44) == 33) {
		/* 44 base64 chars decode to 33 bytes, the last a pad */
		pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw,
						   32);
	} else {
		int e = errno;

		vs_error("cannot read verify key '%s': %s", spec, strerror(e));
		return e == ENOENT ? -ENOENT : -EINVAL;
	}
	if (!pkey || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(pkey);
		log_openssl("cannot use verify key", n > 60 ? "(key)" : spec);
		return -EINVAL;
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		EVP_PKEY_free(pkey);
		return -ENOMEM;
	}
	k->pkey = pkey;
	*out = k;
	return 0;
}

void vs_sign_key_free(struct vs_sign_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

int vs_sign_keygen(char **private_pem, char public_b64[45])
{
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	BIO *bio = NULL;
	unsigned char raw[32];
	size_t rawlen = sizeof(raw);
	char *mem;
	long n;
	int r = -EIO;

	*private_pem = NULL;
	ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	if (!ctx || EVP_PKEY_keygen_init(ctx) != 1 ||
	    EVP_PKEY_keygen(ctx, &pkey) != 1)
		goto out;
	if (EVP_PKEY_get_raw_public_key(pkey, raw, &rawlen) != 1 ||
	    rawlen != 32)
		goto out;
	EVP_EncodeBlock((unsigned char *)public_b64, raw, 32);
	bio = BIO_new(BIO_s_mem());
	if (!bio ||
	    PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) != 1)
		goto out;
	n = BIO_get_mem_data(bio, &mem);
	*private_pem = malloc((size_t)n + 1);
	if (!*private_pem) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(*private_pem, mem, (size_t)n);
	(*private_pem)[n] = '\0';
	r = 0;
out:
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	return r;
}

/* ---- sign and verify ---------------------------------------------------- */

int vs_sign(const struct vs_sign_key *k, const uint8_t *msg, size_t len,
	    char sig[VS_SIGN_B64_LEN + 1])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char raw[64];
	size_t rawlen = sizeof(raw);
	int r = -EIO;

	if (!ctx || !k->private)
		goto out;
	if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) != 1 ||
	    EVP_DigestSign(ctx, raw, &rawlen, msg, len) != 1 || rawlen != 64)
		goto out;
	EVP_EncodeBlock((unsigned char *)sig, raw, 64);
	r = 0;
out:
	EVP_MD_CTX_free(ctx);
	return r;
}

int vs_sign_verify(const struct vs_sign_key *k, const uint8_t *msg, size_t len,
		   const char *sig, size_t siglen)
{
	EVP_MD_CTX *ctx = NULL;
	unsigned char raw[VS_SIGN_B64_LEN];
	int r = -EBADMSG;

	/* 88 base64 chars -> 66 bytes, the last two the "==" padding */
	if (!sig || siglen != VS_SIGN_B64_LEN || sig[86] != '=' ||
	    sig[87] != '=' ||
	    EVP_DecodeBlock(raw, (const unsigned char *)sig, VS_SIGN_B64_LEN) !=
		66)
		return -EBADMSG;
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return -ENOMEM;
	if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k->pkey) == 1 &&
	    EVP_DigestVerify(ctx, raw, 64, msg, len) == 1)
		r = 0;
	EVP_MD_CTX_free(ctx);
	return r;
}

/*
 * The message of change @c or manifest entry @e (exactly one of them) of
 * @project_id in a malloc'd buffer *buf (the caller frees it): its length,
 * -ENOMEM, or what the encoder refused with.
 */
static long sign_msg(uint8_t **buf, const char *project_id,
		     const struct vs_change *c,
		     const struct vs_manifest_entry *e)
{
	long n;

	*buf = malloc(VS_SIGN_MSG_MAX);
	if (!*buf)
		return -ENOMEM;
	n = c ? vs_sign_change_msg(*buf, VS_SIGN_MSG_MAX, project_id, c)
	      : vs_sign_manifest_msg(*buf, VS_SIGN_MSG_MAX, project_id, e);
	return n;
}

/* Sign the message of @c or @e into @out, or (@out NULL) verify it
 * against @sig of @siglen bytes. A message that cannot be encoded does not
 * verify (-EBADMSG). */
static int sign_or_verify(const struct vs_sign_key *k, const char *project_id,
			  const struct vs_change *c,
			  const struct vs_manifest_entry *e, char *out,
			  const char *sig, size_t siglen)
{
	uint8_t *buf = NULL;
	long n = sign_msg(&buf, project_id, c, e);
	int r;

	if (n == -ENOMEM)
		r = -ENOMEM;
	else if (n < 0)
		r = out ? (int)n : -EBADMSG;
	else if (out)
		r = vs_sign(k, buf, (size_t)n, out);
	else
		r = vs_sign_verify(k, buf, (size_t)n, sig, siglen);
	free(buf);
	return r;
}

int vs_sign_change(const struct vs_sign_key *k, const char *project_id,
		   const struct vs_change *c, char sig[VS_SIGN_B64_LEN + 1])
{
	return sign_or_verify(k, project_id, c, NULL, sig, NULL, 0);
}

int vs_sign_change_verify(const struct vs_sign_key *k, const char *project_id,
			  const struct vs_change *c, const char *sig,
			  size_t siglen)
{
	return sign_or_verify(k, project_id, c, NULL, NULL, sig, siglen);
}

int vs_sign_manifest(const struct vs_sign_key *k, const char *project_id,
		     const struct vs_manifest_entry *e,
		     char sig[VS_SIGN_B64_LEN + 1])
{
	return sign_or_verify(k, project_id, NULL, e, sig, NULL, 0);
}

int vs_sign_manifest_verify(const struct vs_sign_key *k, const char *project_id,
			    const struct vs_manifest_entry *e, const char *sig,
			    size_t siglen)
{
	return sign_or_verify(k, project_id, NULL, e, NULL, sig, siglen);
}

/* The name message is short (a name is at most 64 bytes): on the stack. */
int vs_sign_name(const struct vs_sign_key *k, const char *name,
		 const char *project_id, char sig[VS_SIGN_B64_LEN + 1])
{
	uint8_t buf[256];
	long n = vs_sign_name_msg(buf, sizeof(buf), name, project_id);

	return n < 0 ? (int)n : vs_sign(k, buf, (size_t)n, sig);
}

int vs_sign_name_verify(const struct vs_sign_key *k, const char *name,
			const char *project_id, const char *sig, size_t siglen)
{
	uint8_t buf[256];
	long n = vs_sign_name_msg(buf, sizeof(buf), name, project_id);

	return n < 0 ? -EBADMSG
		     : vs_sign_verify(k, buf, (size_t)n, sig, siglen);
}

/* The tree message is short (ids, numbers, a hash): on the stack. */
int vs_sign_tree(const struct vs_sign_key *k, const char *project_id,
		 int64_t seq, uint64_t manifest_len, uint64_t index_len,
		 const char *sha256_hex, char sig[VS_SIGN_B64_LEN + 1])
{
	uint8_t buf[256];
	long n = vs_sign_tree_msg(buf, sizeof(buf), project_id, seq,
				  manifest_len, index_len, sha256_hex);

	return n < 0 ? (int)n : vs_sign(k, buf, (size_t)n, sig);
}

int vs_sign_tree_verify(const struct vs_sign_key *k, const char *project_id,
			int64_t seq, uint64_t manifest_len, uint64_t index_len,
			const char *sha256_hex, const char *sig, size_t siglen)
{
	uint8_t buf[256];
	long n = vs_sign_tree_msg(buf, sizeof(buf), project_id, seq,
				  manifest_len, index_len, sha256_hex);

	return n < 0 ? -EBADMSG
		     : vs_sign_verify(k, buf, (size_t)n, sig, siglen);
}

/* The message of a chunk index: at most 5 * 4 + 15 + 36 + 64 + 20 + 64. */
static long chunks_msg(uint8_t *out, size_t size, const char *id,
		       const char *hash, uint64_t size_bytes, const char *shas,
		       size_t n)
{
	struct msg m = {out, size, 0, 0};
	uint8_t d[32];
	char hex[65];

	if (!EVP_Digest(shas, n * VS_HASH_HEX_LEN, d, NULL, EVP_sha256(), NULL))
		return -ENOMEM;
	vs_hex_encode(hex, d, sizeof(d));
	put_str(&m, "vsync-chunks-v1");
	put_str(&m, id);
	put_str(&m, hash);
	put_u64(&m, size_bytes);
	put_str(&m, hex);
	return msg_end(&m);
}

int vs_sign_chunks_encode(uint8_t **out, size_t *out_len,
			  const struct vs_sign_key *k, const char *id,
			  const char *hash, uint64_t size, const char *shas,
			  size_t n)
{
	char sig[VS_SIGN_B64_LEN + 1];
	size_t head = k ? VS_SIGN_PREFIX_LEN + VS_SIGN_B64_LEN + 1 : 0;
	uint8_t buf[256];
	long mlen;
	int r;

	*out = NULL;
	*out_len = 0;
	if (k) {
		mlen = chunks_msg(buf, sizeof(buf), id, hash, size, shas, n);
		if (mlen < 0)
			return (int)mlen;
		r = vs_sign(k, buf, (size_t)mlen, sig);
		if (r < 0)
			return r;
	}
	*out = malloc(head + n * VS_HASH_HEX_LEN + 1);
	if (!*out)
		return -ENOMEM;
	if (k) {
		memcpy(*out, VS_SIGN_PREFIX, VS_SIGN_PREFIX_LEN);
		memcpy(*out + VS_SIGN_PREFIX_LEN, sig, VS_SIGN_B64_LEN);
		(*out)[head - 1] = ' ';
	}
	memcpy(*out + head, shas, n * VS_HASH_HEX_LEN);
	*out_len = head + n * VS_HASH_HEX_LEN;
	return 0;
}

int vs_sign_chunks_decode(const char *value, size_t len,
			  const struct vs_sign_key *verify, const char *id,
			  const char *hash, uint64_t size, char *shas, size_t n)
{
	const char *sig, *plain;
	size_t plain_len;
	uint8_t buf[256];
	long mlen;

	if (vs_sign_value_split(value, len, &sig, &plain, &plain_len) < 0 ||
	    plain_len != n * VS_HASH_HEX_LEN)
		return -EBADMSG;
	if (verify) {
		if (!sig)
			return -EBADMSG;
		mlen = chunks_msg(buf, sizeof(buf), id, hash, size, plain, n);
		if (mlen < 0 || vs_sign_verify(verify, buf, (size_t)mlen, sig,
					       VS_SIGN_B64_LEN) < 0)
			return -EBADMSG;
	}
	for (size_t i = 0; i < n * VS_HASH_HEX_LEN; i++)
		if (!((plain[i] >= '0' && plain[i] <= '9') ||
		      (plain[i] >= 'a' && plain[i] <= 'f')))
			return -EBADMSG;
	memcpy(shas, plain, n * VS_HASH_HEX_LEN);
	return 0;
}
