/*
 * check_main.c: the runner of the pop3d unit tests, and the fixture
 * helpers every suite shares (see check_pop3d.h).
 *
 * Select suites and test cases with CK_RUN_SUITE and CK_RUN_CASE; run
 * under valgrind with CK_FORK=no.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "check_pop3d.h"

/*
 * Every fixture directory of a run is made under this one, which main()
 * removes at the end: a test that fails ends its process before its
 * teardown can run.
 */
static char	fixture_root[FIXTURE_PATH_MAX];
/* The ids fixture_chown_tree() gives, for its nftw() callback. */
static uid_t	chown_uid;
static gid_t	chown_gid;

static int	rmtree_one(const char *, const struct stat *, int,
		    struct FTW *);
static int	chown_one(const char *, const struct stat *, int,
		    struct FTW *);
static int	name_cmp(const void *, const void *);






const char *
tbuf_escape(const char *s, size_t len, char *buf, size_t buflen)
{
	size_t i, o = 0;
	unsigned char c;
	int n;

	if (buflen < 8)
		return "";
	/* Each octet takes at most 4; keep room for "..." and the NUL. */
	for (i = 0; i < len && o + 8 < buflen; i++) {
		c = (unsigned char)s[i];
		if (c == '\r')
			n = snprintf(buf + o, buflen - o, "\\r");
		else if (c == '\n')
			n = snprintf(buf + o, buflen - o, "\\n");
		else if (c == '\\')
			n = snprintf(buf + o, buflen - o, "\\\\");
		else if (c < 0x20 || c > 0x7e)
			n = snprintf(buf + o, buflen - o, "\\x%02x", c);
		else
			n = snprintf(buf + o, buflen - o, "%c", c);
		if (n < 0 || (size_t)n >= buflen - o)
			break;
		o += (size_t)n;
	}
	buf[o] = '\0';
	if (i < len)
		memcpy(buf + o, "...", 4);
	return buf;
}

void
fixture_mkdtemp(char *dir, size_t len, const char *tag)
{
	int n;

	n = snprintf(dir, len, "%s/%s.XXXXXX", fixture_root, tag);
	ck_assert(n > 0 && (size_t)n < len);
	ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp %s: %s", dir,
	    strerror(errno));
}

static int
rmtree_one(const char *path, const struct stat *sb, int type,
    struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (type == FTW_DP)
		return rmdir(path);
	return unlink(path);
}

void
fixture_rmtree(const char *dir)
{
	if (dir[0] == '\0')
		return;
	if (nftw(dir, rmtree_one, 16, FTW_DEPTH | FTW_PHYS) == -1 &&
	    errno != ENOENT)
		ck_abort_msg("rm -r %s: %s", dir, strerror(errno));
}

static int
chown_one(const char *path, const struct stat *sb, int type,
    struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return lchown(path, chown_uid, chown_gid);
}

void
fixture_chown_tree(const char *dir, uid_t uid, gid_t gid)
{
	chown_uid = uid;
	chown_gid = gid;
	ck_assert_msg(nftw(dir, chown_one, 16, FTW_PHYS) == 0,
	    "chown -R %s: %s", dir, strerror(errno));
}

const char *
fixture_path(char *buf, size_t len, const char *dir, const char *name)
{
	int n;

	n = snprintf(buf, len, "%s/%s", dir, name);
	ck_assert_msg(n > 0 && (size_t)n < len, "path %s/%s too long", dir,
	    name);
	return buf;
}

void
fixture_write(const char *dir, const char *name, const void *data,
    size_t len)
{
	char path[FIXTURE_PATH_MAX];
	const char *p = data;
	ssize_t n;
	int fd;

	fixture_path(path, sizeof(path), dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_msg(fd != -1, "open %s: %s", path, strerror(errno));
	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		ck_assert_msg(n > 0, "write %s: %s", path, strerror(errno));
		p += n;
		len -= (size_t)n;
	}
	ck_assert_int_eq(close(fd), 0);
}

void
fixture_writestr(const char *dir, const char *name, const char *s)
{
	fixture_write(dir, name, s, strlen(s));
}

void
fixture_read(const char *dir, const char *name, struct tbuf *b)
{
	char path[FIXTURE_PATH_MAX], buf[8192];
	ssize_t n;
	int fd;

	fixture_path(path, sizeof(path), dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_msg(fd != -1, "open %s: %s", path, strerror(errno));
	tbuf_reset(b);
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		ck_assert_msg(n > 0, "read %s: %s", path, strerror(errno));
		tbuf_add(b, buf, (size_t)n);
	}
	(void)close(fd);
}

int
fixture_exists(const char *dir, const char *name)
{
	char path[FIXTURE_PATH_MAX];
	struct stat sb;

	fixture_path(path, sizeof(path), dir, name);
	return lstat(path, &sb) == 0;
}

void
fixture_mkdir(const char *dir, const char *name)
{
	char path[FIXTURE_PATH_MAX];

	fixture_path(path, sizeof(path), dir, name);
	ck_assert_msg(mkdir(path, 0700) == 0, "mkdir %s: %s", path,
	    strerror(errno));
}

void
fixture_maildir(const char *dir, const char *name)
{
	char path[FIXTURE_PATH_MAX];

	fixture_mkdir(dir, name);
	fixture_path(path, sizeof(path), dir, name);
	fixture_mkdir(path, "cur");
	fixture_mkdir(path, "new");
	fixture_mkdir(path, "tmp");
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

const char *
fixture_listing(const char *dir, char *buf, size_t len)
{
	char *names[FIXTURE_LISTING_NAMES];
	struct dirent *de;
	size_t n = 0, i, pos = 0;
	DIR *d;
	int r;

	d = opendir(dir);
	ck_assert_msg(d != NULL, "opendir %s: %s", dir, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		ck_assert_uint_lt(n, FIXTURE_LISTING_NAMES);
		names[n] = strdup(de->d_name);
		ck_assert_ptr_nonnull(names[n]);
		n++;
	}
	(void)closedir(d);
	qsort(names, n, sizeof(names[0]), name_cmp);
	buf[0] = '\0';
	for (i = 0; i < n; i++) {
		r = snprintf(buf + pos, len - pos, "%s%s", i ? "|" : "",
		    names[i]);
		ck_assert(r >= 0 && (size_t)r < len - pos);
		pos += (size_t)r;
		free(names[i]);
	}
	return buf;
}

void
fixture_mail_ids(uid_t *uid, gid_t *gid)
{
	struct passwd *pw;

	if (geteuid() != 0) {
		*uid = getuid();
		*gid = getgid();
		return;
	}
	if ((pw = getpwnam("nobody")) != NULL && pw->pw_uid != 0) {
		*uid = pw->pw_uid;
		*gid = pw->pw_gid;
		return;
	}
	*uid = 65534;
	*gid = 65534;
}

int
main(void)
{
	SRunner *sr;
	int failed;

	/* Traversable, so that a session serving as "nobody" gets in. */
	(void)snprintf(fixture_root, sizeof(fixture_root),
	    "/tmp/pop3d-check.XXXXXX");
	if (mkdtemp(fixture_root) == NULL || chmod(fixture_root, 0711) == -1) {
		fprintf(stderr, "check_pop3d: %s: %s\n", fixture_root,
		    strerror(errno));
		return EXIT_FAILURE;
	}
	sr = srunner_create(stream_suite());
	srunner_add_suite(sr, md5_suite());
	srunner_add_suite(sr, store_suite());
	srunner_add_suite(sr, auth_suite());
	srunner_add_suite(sr, session_suite());
	srunner_add_suite(sr, proxy_suite());
	srunner_add_suite(sr, sasl_suite());
	srunner_add_suite(sr, mbox_suite());
	srunner_add_suite(sr, uidl_suite());
	srunner_add_suite(sr, fmt_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (nftw(fixture_root, rmtree_one, 16, FTW_DEPTH | FTW_PHYS) == -1)
		fprintf(stderr, "check_pop3d: rm -r %s: %s\n", fixture_root,
		    strerror(errno));
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}


/* A stream_emit that always fails. */
int
fail_emit(void *ctx, const char *buf, size_t len)
{
	(void)ctx;
	(void)buf;
	(void)len;
	return -1;
}

/* Succeeds as many times as *ctx says, then fails. */
int
countdown_emit(void *ctx, const char *buf, size_t len)
{
	int *left = ctx;

	(void)buf;
	(void)len;
	return (*left)-- > 0 ? 0 : -1;
}
