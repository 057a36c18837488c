/*
 * fuzz_common.c: helpers of the libFuzzer harnesses (see fuzz_common.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"

void
fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;

	(void)fprintf(stderr, "%s:%d: check failed: %s: ", file, line, cond);
	va_start(ap, fmt);
	(void)vfprintf(stderr, fmt, ap);
	va_end(ap);
	(void)fputc('\n', stderr);
	abort();
}

void
fbuf_add(struct fbuf *b, const void *data, size_t len)
{
	size_t ncap;
	char *p;

	/* One octet into room there is: the references' common case. */
	if (len == 1 && b->data != NULL && b->len + 2 <= b->cap) {
		b->data[b->len++] = *(const char *)data;
		b->data[b->len] = '\0';
		return;
	}
	if (b->data == NULL || b->len + len + 1 > b->cap) {
		ncap = b->cap ? b->cap : 256;
		while (ncap < b->len + len + 1)
			ncap *= 2;
		if ((p = realloc(b->data, ncap)) == NULL)
			abort();
		b->data = p;
		b->cap = ncap;
	}
	if (len > 0)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void
fbuf_reset(struct fbuf *b)
{
	fbuf_add(b, "", 0);
	b->len = 0;
	b->data[0] = '\0';
}

void
fbuf_free(struct fbuf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int
fbuf_emit(void *ctx, const char *buf, size_t len)
{
	fbuf_add(ctx, buf, len);
	return 0;
}

int
fbuf_equal(const struct fbuf *a, const struct fbuf *b)
{
	return a->len == b->len &&
	    (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

void
fbuf_expect(const char *what, const struct fbuf *got, const struct fbuf *want)
{
	size_t i;

	if (fbuf_equal(got, want))
		return;
	for (i = 0; i < got->len && i < want->len &&
	    got->data[i] == want->data[i]; i++)
		;
	fuzz_fail(__FILE__, __LINE__, what, "%zu octets, want %zu; first "
	    "difference at octet %zu", got->len, want->len, i);
}

int
fuzz_tempfd(const char *tag)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	int fd, n;

	if (dir == NULL || dir[0] == '\0')
		dir = "/tmp";
	n = snprintf(path, sizeof(path), "%s/pop3d-fuzz-%s.XXXXXX", dir, tag);
	FUZZ_CHECK(n > 0 && (size_t)n < sizeof(path), "%s", dir);
	fd = mkstemp(path);
	FUZZ_CHECK(fd != -1, "mkstemp %s: %s", path, strerror(errno));
	FUZZ_CHECK(unlink(path) == 0, "unlink %s: %s", path, strerror(errno));
	return fd;
}

void
fuzz_rewrite(int fd, const void *data, size_t len)
{
	const char *p = data;
	size_t off = 0;
	ssize_t n;

	FUZZ_CHECK(ftruncate(fd, 0) == 0, "ftruncate: %s", strerror(errno));
	while (off < len) {
		n = pwrite(fd, p + off, len - off, (off_t)off);
		if (n == -1 && errno == EINTR)
			continue;
		FUZZ_CHECK(n > 0, "pwrite: %s", strerror(errno));
		off += (size_t)n;
	}
	FUZZ_CHECK(lseek(fd, 0, SEEK_SET) == 0, "lseek: %s", strerror(errno));
}

void
fuzz_readall(int fd, struct fbuf *b)
{
	char buf[65536];
	off_t off = 0;
	ssize_t n;

	fbuf_reset(b);
	for (;;) {
		n = pread(fd, buf, sizeof(buf), off);
		if (n == -1 && errno == EINTR)
			continue;
		FUZZ_CHECK(n >= 0, "pread: %s", strerror(errno));
		if (n == 0)
			break;
		fbuf_add(b, buf, (size_t)n);
		off += n;
	}
}

uint32_t
fuzz_rng(uint32_t *x)
{
	if (*x == 0)
		*x = 0x9e3779b9u;	/* xorshift stays at 0 */
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

void
fuzz_ref_convert(const char *in, size_t len, long lines, struct fbuf *out)
{
	size_t i, line_len = 0;
	int bol = 1, header = 1, blank;
	char prev = '\0';

	fbuf_reset(out);
	for (i = 0; i < len; i++) {
		if (bol && in[i] == '.')
			fbuf_add(out, ".", 1);
		bol = 0;
		if (in[i] != '\n') {
			fbuf_add(out, &in[i], 1);
			line_len++;
			prev = in[i];
			continue;
		}
		if (prev != '\r')
			fbuf_add(out, "\r", 1);
		fbuf_add(out, "\n", 1);
		blank = line_len == 0 || (line_len == 1 && prev == '\r');
		line_len = 0;
		prev = '\n';
		bol = 1;
		if (lines < 0)
			continue;
		if (header) {
			if (blank)
				header = 0;
			if (blank && lines == 0)
				return;
		} else if (--lines == 0)
			return;
	}
	if (!bol)
		fbuf_add(out, "\r\n", 2);
}

void
fuzz_unstuff(const char *in, size_t len, struct fbuf *out)
{
	size_t i;
	int bol = 1;

	fbuf_reset(out);
	for (i = 0; i < len; i++) {
		if (!(bol && in[i] == '.'))
			fbuf_add(out, &in[i], 1);
		bol = in[i] == '\n';
	}
}

void
fuzz_check_wire(const char *what, const struct fbuf *b)
{
	size_t i;

	for (i = 0; i < b->len; i++) {
		FUZZ_CHECK(b->data[i] != '\n' || (i > 0 &&
		    b->data[i - 1] == '\r'), "%s: bare LF at %zu", what, i);
		FUZZ_CHECK(!((i == 0 || b->data[i - 1] == '\n') &&
		    b->len - i >= 3 && memcmp(b->data + i, ".\r\n", 3) == 0),
		    "%s: a lone \".\" line at %zu", what, i);
	}
	FUZZ_CHECK(b->len == 0 || (b->len >= 2 &&
	    memcmp(b->data + b->len - 2, "\r\n", 2) == 0),
	    "%s: does not end in CRLF", what);
}
