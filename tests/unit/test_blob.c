/*
 * test_blob.c - unit tests of sync/blob.c (include/vsync/blob.h).
 *
 * Covers:
 *  - round trips: empty, small (raw below the threshold), 1 MiB of
 *    compressible text (lz4, and much smaller), 1 MiB of incompressible
 *    bytes (raw: lz4 would not shrink it), a threshold of 0, every length
 *    around the threshold;
 *  - the format: method byte 'r' / 'z', the 8-byte little-endian length;
 *  - corrupt inputs: empty, unknown method, truncated lz4 header and
 *    block, a length that lies (too long, too short, absurdly large),
 *    garbage lz4 data -> -EBADMSG; nothing is returned on failure;
 *  - max_len: an original over it is -EFBIG (raw and lz4), at it is fine.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vsync/blob.h"

#include "unit_check.h"

#define MIB (1024 * 1024)

/* Deterministic pseudo-random bytes (xorshift64). */
static void fill_random(uint8_t *p, size_t len, uint64_t seed)
{
	uint64_t x = seed ? seed : 1;
	size_t i;

	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

/* Text that compresses well but is not one repeated byte. */
static void fill_text(uint8_t *p, size_t len)
{
	static const char words[] =
	    "import React from 'react';\nexport default function App() "
	    "{ return <div className=\"app\">hello</div>; }\n";
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)words[(i + i / 997) % (sizeof(words) - 1)];
}

/* Encode then decode @len bytes; check the bytes and return the encoded
 * size and method. */
static void round_trip(const uint8_t *data, size_t len, size_t threshold,
		       size_t *enc_len_out, char *method_out)
{
	uint8_t *enc = NULL, *dec = NULL;
	size_t enc_len = 0, dec_len = 0;

	check_ret(0, vs_blob_encode(&enc, &enc_len, data, len, threshold),
		  "vs_blob_encode(%zu bytes, threshold %zu)", len, threshold);
	assert_non_null(enc);
	check_ret(0, vs_blob_decode(&dec, &dec_len, enc, enc_len, len),
		  "vs_blob_decode(%zu encoded bytes, max %zu)", enc_len, len);
	assert_non_null(dec);
	check_int(len, dec_len, "decoded length of %zu bytes", len);
	if (len && memcmp(data, dec, len) != 0)
		fail_msg("decoded bytes of a %zu-byte blob differ", len);
	if (enc_len_out)
		*enc_len_out = enc_len;
	if (method_out)
		*method_out = (char)enc[0];
	free(enc);
	free(dec);
}

/* ------------------------------------------------------------ round trips */

static void test_empty(void **state)
{
	size_t enc_len;
	char m;

	(void)state;
	round_trip((const uint8_t *)"", 0, VS_BLOB_LZ4_THRESHOLD, &enc_len, &m);
	check_int('r', m, "method of an empty blob");
	check_int(1, enc_len, "encoded length of an empty blob");
	/* even with threshold 0, nothing to compress stays raw-decodable */
	round_trip((const uint8_t *)"", 0, 0, NULL, NULL);
}

static void test_small_raw(void **state)
{
	const char *s = "hello, world\n";
	size_t enc_len;
	char m;

	(void)state;
	round_trip((const uint8_t *)s, strlen(s), VS_BLOB_LZ4_THRESHOLD,
		   &enc_len, &m);
	check_int('r', m, "method of a small blob");
	check_int(strlen(s) + 1, enc_len, "encoded length of a small blob");
}

static void test_compressible_1mib(void **state)
{
	uint8_t *data = malloc(MIB);
	size_t enc_len;
	char m;

	(void)state;
	assert_non_null(data);
	fill_text(data, MIB);
	round_trip(data, MIB, VS_BLOB_LZ4_THRESHOLD, &enc_len, &m);
	check_int('z', m, "method of 1 MiB of text");
	if (enc_len > MIB / 4)
		fail_msg("1 MiB of text encoded to %zu bytes: expected under "
			 "a quarter",
			 enc_len);
	free(data);
}

static void test_incompressible(void **state)
{
	uint8_t *data = malloc(MIB);
	size_t enc_len;
	char m;

	(void)state;
	assert_non_null(data);
	fill_random(data, MIB, 42);
	round_trip(data, MIB, VS_BLOB_LZ4_THRESHOLD, &enc_len, &m);
	check_int('r', m, "method of 1 MiB of random bytes");
	check_int(MIB + 1, enc_len, "encoded length of random bytes");
	free(data);
}

static void test_around_threshold(void **state)
{
	uint8_t data[VS_BLOB_LZ4_THRESHOLD + 8];
	size_t len;
	char m;

	(void)state;
	memset(data, 'a', sizeof(data));
	for (len = VS_BLOB_LZ4_THRESHOLD - 4; len <= sizeof(data); len++) {
		round_trip(data, len, VS_BLOB_LZ4_THRESHOLD, NULL, &m);
		check_int(len < VS_BLOB_LZ4_THRESHOLD ? 'r' : 'z', m,
			  "method of %zu x 'a'", len);
	}
	/* threshold 0: everything that shrinks is compressed */
	round_trip(data, 64, 0, NULL, &m);
	check_int('z', m, "method of 64 x 'a' with threshold 0");
}

static void test_format(void **state)
{
	uint8_t data[4096], *enc = NULL;
	size_t enc_len = 0;
	uint64_t n = 0;
	int i;

	(void)state;
	memset(data, 'x', sizeof(data));
	check_ret(0, vs_blob_encode(&enc, &enc_len, data, sizeof(data), 1024),
		  "encode 4096 x 'x'");
	check_int('z', enc[0], "method byte");
	for (i = 0; i < 8; i++)
		n |= (uint64_t)enc[1 + i] << (8 * i);
	check_int(sizeof(data), n, "little-endian original length");
	free(enc);
}

/* ------------------------------------------------------------ corruption */

/* Decoding @enc must fail with @want and return nothing. */
static void expect_decode(int want, const void *enc, size_t enc_len,
			  size_t max_len, const char *what)
{
	uint8_t *out = (uint8_t *)"sentinel";
	size_t out_len = 99;

	check_ret(want, vs_blob_decode(&out, &out_len, enc, enc_len, max_len),
		  "decode %s", what);
	check_ptr(NULL, out, "output of a failed decode (%s)", what);
	check_int(0, out_len, "length of a failed decode (%s)", what);
}

/* A valid lz4 encoding of 8 KiB of text, for the tests to spoil. */
static uint8_t *good_lz4(size_t *enc_len, uint8_t *data, size_t len)
{
	uint8_t *enc = NULL;

	fill_text(data, len);
	check_ret(0, vs_blob_encode(&enc, enc_len, data, len, 1024),
		  "encode %zu bytes of text", len);
	check_int('z', enc[0], "method of %zu bytes of text", len);
	return enc;
}

static void set_len(uint8_t *enc, uint64_t n)
{
	int i;

	for (i = 0; i < 8; i++)
		enc[1 + i] = (uint8_t)(n >> (8 * i));
}

static void test_corrupt(void **state)
{
	uint8_t data[8192], *enc, garbage[64];
	size_t enc_len = 0;

	(void)state;
	expect_decode(-EBADMSG, "", 0, 100, "an empty buffer");
	expect_decode(-EBADMSG, "xabc", 4, 100, "unknown method 'x'");
	expect_decode(-EBADMSG, "\0abc", 4, 100, "method NUL");
	expect_decode(-EBADMSG, "z", 1, 100, "'z' without a length");
	expect_decode(-EBADMSG, "z\x05\0\0\0", 5, 100, "truncated length");
	expect_decode(-EBADMSG, "z\x05\0\0\0\0\0\0\0", 9, 100,
		      "'z' with a length and no block");

	enc = good_lz4(&enc_len, data, sizeof(data));
	expect_decode(-EBADMSG, enc, enc_len - 1, sizeof(data),
		      "lz4 block cut by one byte");
	expect_decode(-EBADMSG, enc, enc_len / 2, sizeof(data),
		      "lz4 block cut in half");
	set_len(enc, sizeof(data) + 1);
	expect_decode(-EBADMSG, enc, enc_len, sizeof(data) + 100,
		      "a length one byte too long");
	set_len(enc, sizeof(data) - 1);
	expect_decode(-EBADMSG, enc, enc_len, sizeof(data),
		      "a length one byte too short");
	set_len(enc, (uint64_t)1 << 40);
	expect_decode(-EBADMSG, enc, enc_len, SIZE_MAX,
		      "a length of 1 TiB (no allocation)");
	set_len(enc, (uint64_t)enc_len * 1000);
	expect_decode(-EBADMSG, enc, enc_len, SIZE_MAX,
		      "a length beyond what lz4 can expand to");
	free(enc);

	fill_random(garbage, sizeof(garbage), 7);
	garbage[0] = 'z';
	set_len(garbage, 1000);
	expect_decode(-EBADMSG, garbage, sizeof(garbage), 4096,
		      "garbage lz4 data");
}

static void test_max_len(void **state)
{
	uint8_t data[8192], *enc, *raw = NULL, *out = NULL;
	size_t enc_len = 0, raw_len = 0, out_len = 0;

	(void)state;
	enc = good_lz4(&enc_len, data, sizeof(data));
	expect_decode(-EFBIG, enc, enc_len, sizeof(data) - 1,
		      "lz4, 8192 bytes, max 8191");
	check_ret(0, vs_blob_decode(&out, &out_len, enc, enc_len, sizeof(data)),
		  "lz4, 8192 bytes, max 8192");
	free(out);
	free(enc);

	check_ret(0, vs_blob_encode(&raw, &raw_len, "abcdef", 6, 1024),
		  "encode 6 bytes");
	expect_decode(-EFBIG, raw, raw_len, 5, "raw, 6 bytes, max 5");
	check_ret(0, vs_blob_decode(&out, &out_len, raw, raw_len, 6),
		  "raw, 6 bytes, max 6");
	free(out);
	free(raw);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_small_raw),
	    cmocka_unit_test(test_compressible_1mib),
	    cmocka_unit_test(test_incompressible),
	    cmocka_unit_test(test_around_threshold),
	    cmocka_unit_test(test_format),
	    cmocka_unit_test(test_corrupt),
	    cmocka_unit_test(test_max_len),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
