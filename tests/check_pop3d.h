/*
 * check_pop3d.h: the unit test suites of pop3d and the helpers they share.
 *
 * Each module has its suite in tests/check_<module>.c; check_main.c runs
 * them all.  The helpers below live in check_main.c: they build and
 * remove the temporary directories the checked fixtures use, and collect
 * output in a growing buffer.  A helper that fails aborts the test.
 */
#ifndef CHECK_POP3D_H
#define CHECK_POP3D_H

#include <sys/types.h>

#include <check.h>

#include <stddef.h>

#include "ref.h"

/* Room for any path a fixture builds. */
#define FIXTURE_PATH_MAX	4096
/* Most entries fixture_listing() takes in one directory. */
#define FIXTURE_LISTING_NAMES	64

Suite	*stream_suite(void);
Suite	*md5_suite(void);
Suite	*store_suite(void);
Suite	*auth_suite(void);
Suite	*session_suite(void);
Suite	*proxy_suite(void);
Suite	*sasl_suite(void);
Suite	*mbox_suite(void);
Suite	*uidl_suite(void);
Suite	*fmt_suite(void);

/* stream_emits that fail: always, or once *ctx (an int) runs out. */
int	fail_emit(void *ctx, const char *, size_t);
int	countdown_emit(void *ctx, const char *, size_t);

/* "%s" of buf with CR, LF, NUL and other controls shown as escapes. */
const char *tbuf_escape(const char *, size_t, char *buf, size_t buflen);

/* Create <run directory>/<tag>.XXXXXX (mode 0700) into dir. */
void	fixture_mkdtemp(char *dir, size_t len, const char *tag);
/* Remove dir and everything under it, symbolic links not followed. */
void	fixture_rmtree(const char *dir);
/* dir "/" name into buf; aborts when it does not fit. */
const char *fixture_path(char *buf, size_t len, const char *dir,
	    const char *name);
/* Create (or truncate) dir/name with exactly len octets of data. */
void	fixture_write(const char *dir, const char *name, const void *data,
	    size_t len);
void	fixture_writestr(const char *dir, const char *name, const char *);
/* Read all of dir/name into b (replacing its contents). */
void	fixture_read(const char *dir, const char *name, struct tbuf *b);
/* 1 when dir/name exists (lstat), 0 when not. */
int	fixture_exists(const char *dir, const char *name);
/* The names in dir but "." and "..", sorted, joined by "|", into buf. */
const char *fixture_listing(const char *dir, char *buf, size_t len);
/* mkdir dir/name with mode 0700. */
void	fixture_mkdir(const char *dir, const char *name);
/* dir/name as a Maildir: the directory and its cur/, new/ and tmp/. */
void	fixture_maildir(const char *dir, const char *name);
/* lchown everything under dir, dir included. */
void	fixture_chown_tree(const char *dir, uid_t, gid_t);
/*
 * The ids a test mailbox belongs to: the current ones, or when running
 * as root those of "nobody" (pop3d refuses to serve as uid 0).
 */
void	fixture_mail_ids(uid_t *, gid_t *);

#endif
