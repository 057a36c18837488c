/*
 * fmt.c: snprintf for the conversions pop3d uses; see fmt.h.
 */
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fmt.h"

/* The result so far: len counts every octet, stored or cut. */
struct out {
	char	*buf;
	size_t	 size;
	size_t	 len;
};

/* What one conversion asked for. */
struct spec {
	int	left;		/* '-': pad on the right */
	int	zero;		/* '0': pad a number with zeros */
	size_t	width;
	size_t	prec;		/* %s only; SIZE_MAX when none was given */
	int	longs;		/* 'l' or "ll" */
	int	z;		/* 'z': a size_t */
};

static int	conversion(struct out *, const char **, va_list *);
static const char *number(const char *, size_t *);
static void	field(struct out *, const struct spec *, const char *,
		    size_t, int);
static void	pad(struct out *, char, size_t);
static void	put(struct out *, const char *, size_t);

int
fmt_buf(char *buf, size_t size, const char *f, ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = fmt_vbuf(buf, size, f, ap);
	va_end(ap);
	return n;
}

int
fmt_vbuf(char *buf, size_t size, const char *f, va_list ap)
{
	struct out o = { buf, size, 0 };
	const char *pct;
	va_list aq;
	int r = 0;

	va_copy(aq, ap);
	while (*f != '\0' && r == 0) {
		if ((pct = strchr(f, '%')) == NULL)
			pct = f + strlen(f);
		put(&o, f, (size_t)(pct - f));
		if (*pct == '\0')
			break;
		f = pct + 1;
		r = conversion(&o, &f, &aq);
	}
	va_end(aq);
	if (size > 0)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return r == -1 || o.len > INT_MAX ? -1 : (int)o.len;
}

/*
 * The conversion at *f, just after its '%': parse it, take its
 * argument, append the result, and move *f past it.  0, or -1 for a
 * conversion fmt_buf() does not know.
 */
static int
conversion(struct out *o, const char **fp, va_list *ap)
{
	static const char lower[] = "0123456789abcdef";
	static const char upper[] = "0123456789ABCDEF";
	struct spec sp = { 0, 0, 0, SIZE_MAX, 0, 0 };
	char digits[3 * sizeof(unsigned long long)], c;
	const char *f = *fp, *s;
	unsigned long long u;
	long long d;
	size_t n;
	int w, neg = 0;

	for (;; f++)
		if (*f == '-')
			sp.left = 1;
		else if (*f == '0')
			sp.zero = 1;
		else
			break;
	if (*f == '*') {
		w = va_arg(*ap, int);
		sp.left |= w < 0;
		sp.width = w < 0 ? (size_t)-(long long)w : (size_t)w;
		f++;
	} else
		f = number(f, &sp.width);
	if (*f == '.' && f[1] == '*') {
		w = va_arg(*ap, int);
		sp.prec = w < 0 ? SIZE_MAX : (size_t)w;
		f += 2;
	} else if (*f == '.')
		f = number(f + 1, &sp.prec);
	for (; *f == 'l' && sp.longs < 2; f++)
		sp.longs++;
	if (sp.longs == 0 && *f == 'z') {
		sp.z = 1;
		f++;
	}
	if ((c = *f) == '\0' || sp.width > INT_MAX ||
	    (sp.prec != SIZE_MAX && (c != 's' || sp.prec > INT_MAX)))
		return -1;
	*fp = f + 1;

	switch (c) {
	case '%':
		put(o, "%", 1);
		return 0;
	case 'c':
	case 's':
		if (sp.longs || sp.z)
			return -1;
		if (c == 'c') {
			digits[0] = (char)va_arg(*ap, int);
			s = digits;
			n = 1;
		} else {
			if ((s = va_arg(*ap, const char *)) == NULL)
				s = "(null)";
			n = sp.prec == SIZE_MAX ? strlen(s) :
			    strnlen(s, sp.prec);
		}
		sp.zero = 0;
		field(o, &sp, s, n, 0);
		return 0;
	case 'd':
	case 'i':
		if (sp.z)
			return -1;
		d = sp.longs == 2 ? va_arg(*ap, long long) :
		    sp.longs == 1 ? va_arg(*ap, long) : va_arg(*ap, int);
		neg = d < 0;
		u = neg ? 0 - (unsigned long long)d : (unsigned long long)d;
		break;
	case 'u':
	case 'x':
	case 'X':
		u = sp.longs == 2 ? va_arg(*ap, unsigned long long) :
		    sp.longs == 1 ? va_arg(*ap, unsigned long) :
		    sp.z ? va_arg(*ap, size_t) : va_arg(*ap, unsigned);
		break;
	default:
		return -1;
	}

	n = sizeof(digits);
	if (c == 'x' || c == 'X') {
		do {
			digits[--n] = (c == 'x' ? lower : upper)[u & 15];
			u >>= 4;
		} while (u != 0);
	} else {
		do {
			digits[--n] = (char)('0' + u % 10);
			u /= 10;
		} while (u != 0);
	}
	field(o, &sp, digits + n, sizeof(digits) - n, neg);
	return 0;
}

/* The decimal digits at f into *v, or INT_MAX + 1 when more. */
static const char *
number(const char *f, size_t *v)
{
	*v = 0;
	for (; *f >= '0' && *f <= '9'; f++)
		*v = *v > INT_MAX / 10 ? (size_t)INT_MAX + 1 :
		    *v * 10 + (size_t)(*f - '0');
	return f;
}

/* One converted field: its padding, its sign, its text. */
static void
field(struct out *o, const struct spec *sp, const char *s, size_t n,
    int neg)
{
	size_t fill = sp->width > n + (size_t)neg ?
	    sp->width - n - (size_t)neg : 0;

	if (!sp->left && !sp->zero)
		pad(o, ' ', fill);
	if (neg)
		put(o, "-", 1);
	if (!sp->left && sp->zero)
		pad(o, '0', fill);
	put(o, s, n);
	if (sp->left)
		pad(o, ' ', fill);
}

/* Append n octets c, as many as fit before the terminating NUL. */
static void
pad(struct out *o, char c, size_t n)
{
	size_t room = o->len < o->size ? o->size - 1 - o->len : 0;

	if (room > 0)
		memset(o->buf + o->len, c, n < room ? n : room);
	o->len += n;
}

/* Append n octets, as many as fit before the terminating NUL. */
static void
put(struct out *o, const char *s, size_t n)
{
	size_t room = o->len < o->size ? o->size - 1 - o->len : 0;

	if (room > 0)
		memcpy(o->buf + o->len, s, n < room ? n : room);
	o->len += n;
}
