/*
 * json.h - the few helpers every JSON writer of vsync shares (sync/json.c).
 * The JSON itself is jansson's: nothing here formats JSON by hand.
 */
#ifndef VSYNC_JSON_H
#define VSYNC_JSON_H

#include <stddef.h>

#include <jansson.h>

/*
 * A JSON string of the @len bytes at @s, which may come from outside (a
 * path, a log message): valid UTF-8 is kept as it is, every byte of an
 * invalid sequence becomes '?', so the result is always a string and
 * never fails on input. NULL only when out of memory. The caller owns the
 * reference.
 */
json_t *vs_json_text(const char *s, size_t len);

/* vs_json_text() of a NUL-terminated @s; NULL @s gives JSON null. */
json_t *vs_json_str(const char *s);

/*
 * Serialise @v compactly, keys in insertion order, into a malloc'd
 * NUL-terminated buffer (*out, *len without the NUL). 0 or -ENOMEM. @v is
 * not consumed.
 */
int vs_json_dump(const json_t *v, char **out, size_t *len);

#endif
