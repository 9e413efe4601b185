/*
 * banned.h - libc calls vsync does not use, made to fail at compile time.
 *
 * Each of these writes into a buffer without being told its size, or
 * (strncpy, strncat) is told a size but may leave the result without its
 * NUL or silently cut it. Use snprintf with the buffer's size and check
 * the result for truncation, or memcpy with a length checked beforehand.
 *
 * Include it as the LAST include of a .c file in agent/, fuse/ and sync/:
 * it #defines the names, so a system header read after it would break.
 * A banned call fails to compile with an error naming
 * "sorry_<name>_is_banned_in_vsync".
 */
#ifndef VSYNC_BANNED_H
#define VSYNC_BANNED_H

#define VS_BANNED(func) sorry_##func##_is_banned_in_vsync

#undef strcpy
#define strcpy(dst, src) VS_BANNED(strcpy)
#undef strcat
#define strcat(dst, src) VS_BANNED(strcat)
#undef strncpy
#define strncpy(dst, src, n) VS_BANNED(strncpy)
#undef strncat
#define strncat(dst, src, n) VS_BANNED(strncat)

#undef sprintf
#define sprintf(...) VS_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) VS_BANNED(vsprintf)

#endif
