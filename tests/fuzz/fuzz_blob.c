/*
 * fuzz_blob.c - the blob codec (sync/blob.c, blob.h).
 *
 * Input: an encoded blob, as read from Redis. Properties:
 *  - decoding never reads or allocates past what the header and the bytes
 *    allow (ASan), and what decodes stays under max_len;
 *  - encode -> decode gives the input back, both for the decoded bytes and
 *    for the raw input itself (first byte: 0 = always try lz4, else the
 *    default threshold), and an encoding is never longer than raw.
 */
#include "vsync/blob.h"

#include <errno.h>

#include "fuzz.h"

#define MAX_LEN (1u << 20)

static void round_trip(const uint8_t *data, size_t len, size_t threshold)
{
	uint8_t *enc, *dec;
	size_t enc_len, dec_len;

	FUZZ_CHECK(vs_blob_encode(&enc, &enc_len, data, len, threshold) == 0);
	FUZZ_CHECK(enc_len >= 1 && enc_len <= len + 1);
	FUZZ_CHECK(vs_blob_decode(&dec, &dec_len, enc, enc_len, len) == 0);
	FUZZ_CHECK(dec_len == len);
	FUZZ_CHECK(len == 0 || memcmp(dec, data, len) == 0);
	free(dec);
	free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *out = NULL;
	size_t out_len = 0;
	int r;

	r = vs_blob_decode(&out, &out_len, data, size, MAX_LEN);
	FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -EFBIG);
	if (r == 0) {
		FUZZ_CHECK(out != NULL && out_len <= MAX_LEN);
		round_trip(out, out_len, 0);
		free(out);
	} else {
		FUZZ_CHECK(out == NULL && out_len == 0);
	}
	if (size >= 1)
		round_trip(data + 1, size - 1,
			   data[0] == 0 ? 0 : VS_BLOB_LZ4_THRESHOLD);
	return 0;
}
