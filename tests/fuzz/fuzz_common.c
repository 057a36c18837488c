/*
 * fuzz_common.c: helpers of the libFuzzer harnesses (see fuzz_common.h).
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"

/* Directories fuzz_tempdir() made, removed at exit. */
#define TEMPDIRS	4
#define TEMPDIR_LEN	4096

static char	tempdirs[TEMPDIRS][TEMPDIR_LEN];
static size_t	ntempdirs;

static void	remove_tempdirs(void);

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

int
tbuf_equal(const struct tbuf *a, const struct tbuf *b)
{
	return a->len == b->len &&
	    (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

void
tbuf_expect(const char *what, const struct tbuf *got, const struct tbuf *want)
{
	size_t i;

	if (tbuf_equal(got, want))
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

static void
remove_tempdirs(void)
{
	size_t i;

	for (i = 0; i < ntempdirs; i++)
		fuzz_remove_tree(tempdirs[i]);
}

void
fuzz_tempdir(const char *tag, char *buf, size_t len)
{
	const char *dir = getenv("TMPDIR");
	int n;

	FUZZ_CHECK(ntempdirs < TEMPDIRS, "more than %d directories", TEMPDIRS);
	if (dir == NULL || dir[0] == '\0')
		dir = "/tmp";
	n = snprintf(buf, len, "%s/pop3d-fuzz-%s.XXXXXX", dir, tag);
	FUZZ_CHECK(n > 0 && (size_t)n < len && (size_t)n < TEMPDIR_LEN,
	    "%s: too long", dir);
	FUZZ_CHECK(mkdtemp(buf) != NULL, "mkdtemp %s: %s", buf,
	    strerror(errno));
	memcpy(tempdirs[ntempdirs], buf, (size_t)n + 1);
	if (ntempdirs++ == 0)
		(void)atexit(remove_tempdirs);
}

void
fuzz_remove_tree(const char *path)
{
	char sub[TEMPDIR_LEN];
	struct dirent *de;
	struct stat sb;
	DIR *d;

	if (lstat(path, &sb) == -1)
		return;
	if (!S_ISDIR(sb.st_mode) || (d = opendir(path)) == NULL) {
		(void)unlink(path);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		fuzz_path(sub, sizeof(sub), path, de->d_name);
		fuzz_remove_tree(sub);
	}
	(void)closedir(d);
	(void)rmdir(path);
}

void
fuzz_path(char *buf, size_t len, const char *dir, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);

	FUZZ_CHECK(n > 0 && (size_t)n < len, "%s/%s: too long", dir, name);
}

void
fuzz_write_file(const char *dir, const char *name, const void *data,
    size_t len)
{
	char path[TEMPDIR_LEN];
	int fd;

	fuzz_path(path, sizeof(path), dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	FUZZ_CHECK(fd != -1, "%s: %s", path, strerror(errno));
	fuzz_rewrite(fd, data, len);
	FUZZ_CHECK(close(fd) == 0, "%s: %s", path, strerror(errno));
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
fuzz_readall(int fd, struct tbuf *b)
{
	char buf[65536];
	off_t off = 0;
	ssize_t n;

	tbuf_reset(b);
	for (;;) {
		n = pread(fd, buf, sizeof(buf), off);
		if (n == -1 && errno == EINTR)
			continue;
		FUZZ_CHECK(n >= 0, "pread: %s", strerror(errno));
		if (n == 0)
			break;
		tbuf_add(b, buf, (size_t)n);
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
fuzz_unstuff(const char *in, size_t len, struct tbuf *out)
{
	size_t i;
	int bol = 1;

	tbuf_reset(out);
	for (i = 0; i < len; i++) {
		if (!(bol && in[i] == '.'))
			tbuf_add(out, &in[i], 1);
		bol = in[i] == '\n';
	}
}

void
fuzz_check_wire(const char *what, const struct tbuf *b)
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
