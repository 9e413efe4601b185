/*
 * json.c - shared JSON helpers (include/vsync/json.h) over jansson.
 */
#include "vsync/json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vsync/banned.h"

/* Length of the valid UTF-8 sequence at @s (at most @n bytes), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned int cp;

	if (s[0] < 0x80)
		return s[0] ? 1 : 0; /* NUL: jansson's strings hold none */
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

json_t *vs_json_text(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	json_t *v;
	char *copy;
	size_t i = 0;

	v = json_stringn(s, len); /* valid UTF-8 without NUL: as it is */
	if (v)
		return v;
	copy = malloc(len + 1);
	if (!copy)
		return NULL;
	while (i < len) {
		size_t n = utf8_seq(u + i, len - i);

		if (n == 0) {
			copy[i++] = '?';
			continue;
		}
		memcpy(copy + i, s + i, n);
		i += n;
	}
	v = json_stringn(copy, len);
	free(copy);
	return v;
}

json_t *vs_json_str(const char *s)
{
	return s ? vs_json_text(s, strlen(s)) : json_null();
}

int vs_json_dump(const json_t *v, char **out, size_t *len)
{
	char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	*out = NULL;
	*len = 0;
	if (!text)
		return -ENOMEM;
	*out = text;
	*len = strlen(text);
	return 0;
}
