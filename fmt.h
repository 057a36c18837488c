/*
 * fmt.h: the part of snprintf that pop3d formats with.
 *
 * fmt_buf() is snprintf(3) for the conversions pop3d uses: %d %i %u
 * %x %X %c %s %%, with the lengths l and ll (and z for the unsigned
 * ones), the flags '-' and '0', a width, and a precision for %s only;
 * a width or precision may be '*'.  It returns what snprintf would: the
 * length of the whole result, which was cut to fit when that is size or
 * more.  A conversion it does not know (%n among them) returns -1.  The
 * result is terminated whenever size > 0.  Callers check for truncation
 * as with snprintf: ret < 0 || (size_t)ret >= size.
 *
 * Why not snprintf: glibc's printf is some 300 KiB of code and tables,
 * and its first call maps much of that into the process.  A session
 * formats a few numbers and names; with fmt_buf() it maps none of it.
 * The command-line tools (--hash-password, --check-user, --check-config)
 * print with stdio.
 */
#ifndef FMT_H
#define FMT_H

#include <stdarg.h>
#include <stddef.h>

int	fmt_buf(char *buf, size_t size, const char *f, ...)
	    __attribute__((format(printf, 3, 4)));
int	fmt_vbuf(char *buf, size_t size, const char *f, va_list ap)
	    __attribute__((format(printf, 3, 0)));

#endif
