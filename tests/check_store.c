/*
 * check_store.c: tests of store.c (Maildir mailboxes) and of md5.c, which
 * gives the store its fallback UIDLs.
 *
 * Every store test runs on a fresh Maildir under a mkdtemp() directory
 * (a checked fixture) and looks at the files store.c leaves behind.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "../md5.h"
#include "../pop3d.h"
#include "../store.h"
#include "check_pop3d.h"

#define LISTING_MAX	4096

static char	tmpdir[FIXTURE_PATH_MAX];
static char	maildir[FIXTURE_PATH_MAX];
static char	curdir[FIXTURE_PATH_MAX];
static char	newdir[FIXTURE_PATH_MAX];

static void	store_setup(void);
static void	store_teardown(void);
static struct store *open_ok(void);
static void	expect_uidl(struct store *, size_t, const char *);
static void	expect_hex_uidl(struct store *, size_t, const char *);
static void	read_fd(int, struct tbuf *);
static size_t	find_uidl(struct store *, const char *);

static void
store_setup(void)
{
	fixture_mkdtemp(tmpdir, sizeof(tmpdir), "store");
	fixture_maildir(tmpdir, "Maildir");
	fixture_path(maildir, sizeof(maildir), tmpdir, "Maildir");
	fixture_path(curdir, sizeof(curdir), maildir, "cur");
	fixture_path(newdir, sizeof(newdir), maildir, "new");
}

static void
store_teardown(void)
{
	fixture_rmtree(tmpdir);
}

static struct store *
open_ok(void)
{
	struct store *st = NULL;
	char err[512] = "";
	enum store_result r;

	r = store_open(&st, maildir, NULL, err, sizeof(err));
	ck_assert_msg(r == STORE_OK, "store_open %s: %d, %s", maildir, r,
	    err);
	ck_assert_ptr_nonnull(st);
	return st;
}

static void
expect_uidl(struct store *st, size_t i, const char *want)
{
	const char *uidl;
	size_t len;

	uidl = store_uidl(st, i, &len);
	ck_assert_msg(len == strlen(want) && memcmp(uidl, want, len) == 0,
	    "UIDL of %zu: \"%.*s\", want \"%s\"", i, (int)len, uidl, want);
}

/* The UIDL of message i is the MD5 of base, in 32 lower-case hex. */
static void
expect_hex_uidl(struct store *st, size_t i, const char *base)
{
	char hex[2 * MD5_DIGEST_LEN + 1];
	const char *uidl;
	size_t len, k;

	md5_hex(base, strlen(base), hex);
	uidl = store_uidl(st, i, &len);
	ck_assert_uint_eq(len, 32);
	for (k = 0; k < len; k++)
		ck_assert((uidl[k] >= '0' && uidl[k] <= '9') ||
		    (uidl[k] >= 'a' && uidl[k] <= 'f'));
	expect_uidl(st, i, hex);
}

static size_t
find_uidl(struct store *st, const char *want)
{
	const char *uidl;
	size_t i, len;

	for (i = 0; i < store_count(st); i++) {
		uidl = store_uidl(st, i, &len);
		if (len == strlen(want) && memcmp(uidl, want, len) == 0)
			return i;
	}
	ck_abort_msg("no message with UIDL %s", want);
	return 0;
}

static void
read_fd(int fd, struct tbuf *b)
{
	char buf[4096];
	ssize_t n;

	tbuf_reset(b);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		tbuf_add(b, buf, (size_t)n);
	ck_assert_int_eq((int)n, 0);
}

/* MD5. */

static const struct {
	const char	*in;
	const char	*hex;
} md5_vectors[] = {
	/* RFC 1321, appendix A.5. */
	{ "", "d41d8cd98f00b204e9800998ecf8427e" },
	{ "a", "0cc175b9c0f1b6a831c399e269772661" },
	{ "abc", "900150983cd24fb0d6963f7d28e17f72" },
	{ "message digest", "f96b697d7cb7938d525a2f31aaf161d0" },
	{ "abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b" },
	{ "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
	  "d174ab98d277d9f5a5611c2c9f419d9f" },
	{ "1234567890123456789012345678901234567890123456789012345678901234"
	  "5678901234567890", "57edf4a22be3c955ac49da2e2107b67a" },
};

START_TEST(test_md5_rfc1321_vectors)
{
	char hex[2 * MD5_DIGEST_LEN + 1];

	md5_hex(md5_vectors[_i].in, strlen(md5_vectors[_i].in), hex);
	ck_assert_str_eq(hex, md5_vectors[_i].hex);
}
END_TEST

START_TEST(test_md5_padding_edges)
{
	static const struct {
		size_t		 len;
		const char	*hex;
	} v[] = {
		{ 55, "ef1772b6dff9a122358552954ad0df65" },
		{ 56, "3b0c8ac703f828b04c6c197006d17218" },
		{ 63, "b06521f39153d618550606be297466d5" },
		{ 64, "014842d480b571495a4a0363793f7367" },
		{ 65, "c743a45e0d2e6a95cb859adae0248435" },
		{ 1000, "cabe45dcc9ae5b66ba86600cca6b8ba8" },
	};
	char buf[1000], hex[2 * MD5_DIGEST_LEN + 1];
	size_t i;

	memset(buf, 'a', sizeof(buf));
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		md5_hex(buf, v[i].len, hex);
		ck_assert_msg(strcmp(hex, v[i].hex) == 0, "md5 of %zu a: %s",
		    v[i].len, hex);
	}
}
END_TEST

START_TEST(test_md5_incremental_equals_one_shot)
{
	unsigned char one[MD5_DIGEST_LEN], inc[MD5_DIGEST_LEN];
	char buf[3001];
	struct md5 m;
	size_t i, off, piece, step;

	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (char)(i * 7 + i / 13);
	md5_init(&m);
	md5_update(&m, buf, sizeof(buf));
	md5_final(&m, one);
	/* Odd pieces of every size from 1 to 129, then the rest. */
	for (step = 1; step <= 129; step += 2) {
		md5_init(&m);
		for (off = 0; off < sizeof(buf); off += piece) {
			piece = sizeof(buf) - off < step ? sizeof(buf) - off :
			    step;
			md5_update(&m, buf + off, piece);
		}
		md5_final(&m, inc);
		ck_assert_msg(memcmp(one, inc, sizeof(one)) == 0,
		    "pieces of %zu differ", step);
	}
	/* Empty updates change nothing. */
	md5_init(&m);
	md5_update(&m, buf, 0);
	md5_update(&m, "abc", 3);
	md5_update(&m, buf, 0);
	md5_final(&m, inc);
	md5_init(&m);
	md5_update(&m, "abc", 3);
	md5_final(&m, one);
	ck_assert_int_eq(memcmp(one, inc, sizeof(one)), 0);
}
END_TEST

/* Names. */

START_TEST(test_store_maildir_base)
{
	ck_assert_uint_eq(store_maildir_base("123.abc"), 7);
	ck_assert_uint_eq(store_maildir_base("123.abc:2,S"), 7);
	ck_assert_uint_eq(store_maildir_base("123.abc,S=5:2,S"), 7);
	ck_assert_uint_eq(store_maildir_base("123.abc,S=5,W=7"), 7);
	ck_assert_uint_eq(store_maildir_base(""), 0);
	ck_assert_uint_eq(store_maildir_base(":2,"), 0);
	ck_assert_uint_eq(store_maildir_base("a b:2,"), 3);
}
END_TEST

static const struct {
	const char	*name;
	int		 ok;
	uint64_t	 size;
} wsize_cases[] = {
	{ ",W=123", 0, 123 },
	{ "1.a,W=123", 0, 123 },
	{ "1.a,W=123:2,S", 0, 123 },
	{ "1.a,S=5,W=7:2,S", 0, 7 },
	{ "1.a,W=7,S=5:2,", 0, 7 },
	{ "1.a,W=0", 0, 0 },
	{ "1.a,W=18446744073709551", 0, 18446744073709551ULL },
	{ "1.a", -1, 0 },
	{ "1.a,W=", -1, 0 },
	{ "1.a,W=:2,", -1, 0 },
	{ "1.a,W=12x", -1, 0 },
	{ "1.a,W=12 ", -1, 0 },
	{ "1.a,W=-5", -1, 0 },
	{ "1.a,W=+5", -1, 0 },
	{ "1.a,W= 5", -1, 0 },
	{ "1.a,w=5", -1, 0 },
	{ "1.a,XW=5", -1, 0 },
	{ "1.aW=5", -1, 0 },
	{ "1.a,W=99999999999999999999", -1, 0 },
	{ "1.a,W=184467440737095516160", -1, 0 },
	/* W after ':' is a flag field, not a size. */
	{ "1.a:2,W=5", -1, 0 },
	{ "1.a,S=5:2,W=5", -1, 0 },
	{ "1.a:2,,W=5", -1, 0 },
};

START_TEST(test_store_maildir_wsize)
{
	uint64_t size = 4242;
	int r;

	r = store_maildir_wsize(wsize_cases[_i].name, &size);
	ck_assert_msg(r == wsize_cases[_i].ok, "%s: %d",
	    wsize_cases[_i].name, r);
	if (r == 0)
		ck_assert_msg(size == wsize_cases[_i].size, "%s: %llu",
		    wsize_cases[_i].name, (unsigned long long)size);
}
END_TEST

/* store_path(). */

static const struct {
	const char	*spec;
	const char	*user;
	const char	*home;
	const char	*path;		/* NULL: must fail */
} path_cases[] = {
	{ "maildir:~/Maildir", "alice", "/home/alice", "/home/alice/Maildir" },
	{ "~/Maildir", "alice", "/home/alice", "/home/alice/Maildir" },
	{ "maildir:~", "alice", "/home/alice", "/home/alice" },
	{ "maildir:%h/Mail", "alice", "/home/alice", "/home/alice/Mail" },
	{ "maildir:/var/mail/%u", "alice", "", "/var/mail/alice" },
	{ "maildir:/m/%d/%n", "bob@example.org", "/h", "/m/example.org/bob" },
	{ "maildir:/m/%u", "bob@example.org", "/h", "/m/bob@example.org" },
	{ "maildir:/m/%n/x%d", "bob", "/h", "/m/bob/x" },
	{ "maildir:/m/%%u%%", "bob", "/h", "/m/%u%" },
	{ "maildir:/m/a~b", "bob", "/h", "/m/a~b" },
	{ "maildir:/m/%x", "bob", "/h", NULL },
	{ "maildir:/m/%", "bob", "/h", NULL },
	{ "maildir:~/Maildir", "bob", "", NULL },
	{ "maildir:%h/Maildir", "bob", "", NULL },
	{ "maildir:Maildir", "bob", "/h", NULL },
	{ "maildir:~bob/Maildir", "bob", "/h", NULL },
	{ "maildir:%u/Maildir", "bob", "/h", NULL },
	{ "maildir:", "bob", "/h", NULL },
	{ "", "bob", "/h", NULL },
	{ "maildir:~/Maildir", "bob", "relative", NULL },
};

START_TEST(test_store_path_expansions)
{
	char buf[PATH_MAX_POP3], err[256];
	int r;

	err[0] = '\0';
	r = store_path(path_cases[_i].spec, path_cases[_i].user,
	    path_cases[_i].home, buf, sizeof(buf), err, sizeof(err));
	if (path_cases[_i].path == NULL) {
		ck_assert_msg(r == -1, "\"%s\" for %s gave %s",
		    path_cases[_i].spec, path_cases[_i].user, buf);
		ck_assert_msg(err[0] != '\0', "\"%s\": no reason given",
		    path_cases[_i].spec);
		return;
	}
	ck_assert_msg(r == 0, "\"%s\" for %s failed: %s",
	    path_cases[_i].spec, path_cases[_i].user, err);
	ck_assert_str_eq(buf, path_cases[_i].path);
}
END_TEST

START_TEST(test_store_path_too_long)
{
	char buf[8], big[PATH_MAX_POP3 + 1], out[PATH_MAX_POP3], err[256];

	/* Seven octets and the NUL fit in eight; eight do not. */
	ck_assert_int_eq(store_path("/abcdef", "u", "/h", buf, sizeof(buf),
	    err, sizeof(err)), 0);
	ck_assert_str_eq(buf, "/abcdef");
	err[0] = '\0';
	ck_assert_int_eq(store_path("/abcdefg", "u", "/h", buf, sizeof(buf),
	    err, sizeof(err)), -1);
	ck_assert(err[0] != '\0');
	ck_assert_int_eq(store_path("/ab%u", "user", "/h", buf, sizeof(buf),
	    err, sizeof(err)), 0);
	ck_assert_str_eq(buf, "/abuser");
	ck_assert_int_eq(store_path("/abc%u", "user", "/h", buf, sizeof(buf),
	    err, sizeof(err)), -1);
	ck_assert_int_eq(store_path("~", "u", "/home/ab", buf, sizeof(buf),
	    err, sizeof(err)), -1);
	ck_assert_int_eq(store_path("~", "u", "/home/a", buf, sizeof(buf),
	    err, sizeof(err)), 0);
	ck_assert_int_eq(store_path("/x", "u", "/h", buf, 0, err,
	    sizeof(err)), -1);

	/* A home as long as a whole path leaves no room for more. */
	memset(big, 'h', sizeof(big));
	big[0] = '/';
	big[PATH_MAX_POP3 - 1] = '\0';
	ck_assert_int_eq(store_path("~", "u", big, out, sizeof(out), err,
	    sizeof(err)), 0);
	ck_assert_uint_eq(strlen(out), PATH_MAX_POP3 - 1);
	ck_assert_int_eq(store_path("~/M", "u", big, out, sizeof(out), err,
	    sizeof(err)), -1);
}
END_TEST

/* Scan. */

START_TEST(test_store_scan_moves_new_to_cur)
{
	char buf[LISTING_MAX];
	struct store *st;

	fixture_writestr(newdir, "100.a", "a\n");
	fixture_writestr(newdir, "101.b:2,F", "b\n");
	fixture_writestr(newdir, ".hidden", "h\n");
	st = open_ok();
	ck_assert_uint_eq(store_count(st), 2);
	ck_assert_str_eq(fixture_listing(curdir, buf, sizeof(buf)),
	    "100.a:2,|101.b:2,F");
	ck_assert_str_eq(fixture_listing(newdir, buf, sizeof(buf)), ".hidden");
	expect_uidl(st, 0, "100.a");
	expect_uidl(st, 1, "101.b");
	ck_assert_int_eq(store_seen(st, 0), 0);
	ck_assert_int_eq(store_seen(st, 1), 0);
	store_close(st);
}
END_TEST

START_TEST(test_store_scan_order_by_time_then_name)
{
	static const char *const names[] = {
		"10.x:2,", "9.x:2,", "abc:2,", "9.a:2,", "1000000000.z:2,",
		"999999999.y:2,", "0.q:2,", "09.b:2,"
	};
	static const char *const order[] = {
		"0.q", "abc", "09.b", "9.a", "9.x", "10.x", "999999999.y",
		"1000000000.z"
	};
	struct store *st;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		fixture_writestr(curdir, names[i], "x\n");
	st = open_ok();
	ck_assert_uint_eq(store_count(st), sizeof(order) / sizeof(order[0]));
	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		expect_uidl(st, i, order[i]);
	store_close(st);
}
END_TEST

/* Enough messages for the quicksort, with runs of equal times, written
 * in a scrambled order: the numbering is by time, then name, on the
 * first login (sizes read) and on the next (sizes from the cache). */
START_TEST(test_store_scan_order_many)
{
	char name[64], want[64];
	struct store *st;
	size_t i, k, n = 3000;
	int pass;

	for (i = 0; i < n; i++) {
		k = (i * 7919) % n;	/* 7919 is prime: a permutation */
		(void)snprintf(name, sizeof(name), "%zu.m%04zu:2,",
		    1700000000 + k / 5, k);
		fixture_writestr(curdir, name, "x\n");
	}
	for (pass = 0; pass < 2; pass++) {
		st = open_ok();
		ck_assert_uint_eq(store_count(st), n);
		for (k = 0; k < n; k++) {
			(void)snprintf(want, sizeof(want), "%zu.m%04zu",
			    1700000000 + k / 5, k);
			expect_uidl(st, k, want);
			ck_assert_uint_eq(store_size(st, k), 3);
		}
		store_close(st);
	}
}
END_TEST

/* The delivery time that starts a name is kept as a number, not in the
 * names: names with leading zeros, with more digits than 32 bits hold,
 * and with nothing after the digits must come back whole, in order, on
 * the first login and from the cache, when opened and at UPDATE. */
START_TEST(test_store_scan_names_without_their_time)
{
	static const char *const names[] = {
		"123.b:2,", "0123.a:2,", "4294967296.y:2,", "5", "abc:2,",
		"99999999999.z:2,", "123.a:2,", "77:2,", "0.q:2,",
		"4294967295.x:2,"
	};
	static const char *const order[] = {
		"0.q:2,", "abc:2,", "5", "77:2,", "0123.a:2,", "123.a:2,",
		"123.b:2,", "4294967295.x:2,", "4294967296.y:2,",
		"99999999999.z:2,"
	};
	char want[64], buf[LISTING_MAX], err[256];
	struct tbuf b = { 0 };
	struct store *st;
	size_t i, n = sizeof(order) / sizeof(order[0]), failed = 99;
	int fd, pass;

	for (i = 0; i < n; i++) {
		(void)snprintf(want, sizeof(want), "%s\n", names[i]);
		fixture_writestr(curdir, names[i], want);
	}
	for (pass = 0; pass < 2; pass++) {
		st = open_ok();
		ck_assert_uint_eq(store_count(st), n);
		for (i = 0; i < n; i++) {
			(void)snprintf(want, sizeof(want), "%.*s",
			    (int)strcspn(order[i], ":"), order[i]);
			expect_uidl(st, i, want);
			fd = store_msg_open(st, i, err, sizeof(err));
			ck_assert_msg(fd != -1, "%s: %s", order[i], err);
			read_fd(fd, &b);
			(void)close(fd);
			(void)snprintf(want, sizeof(want), "%s\n", order[i]);
			ck_assert_str_eq(b.data, want);
			ck_assert_uint_eq(store_size(st, i), strlen(want) + 1);
		}
		if (pass == 0)
			store_close(st);
	}
	store_set_deleted(st, find_uidl(st, "123.b"), 1);
	store_set_deleted(st, find_uidl(st, "4294967296.y"), 1);
	store_set_deleted(st, find_uidl(st, "5"), 1);
	store_set_retrieved(st, find_uidl(st, "0123.a"));
	store_set_retrieved(st, find_uidl(st, "77"));
	store_set_retrieved(st, find_uidl(st, "123.a"));
	ck_assert_msg(store_commit(st, &failed, err, sizeof(err)) == 0,
	    "store_commit: %s", err);
	ck_assert_uint_eq(failed, 0);
	store_close(st);
	tbuf_free(&b);
	ck_assert_str_eq(fixture_listing(curdir, buf, sizeof(buf)),
	    "0.q:2,|0123.a:2,S|123.a:2,S|4294967295.x:2,|77:2,S|"
	    "99999999999.z:2,|abc:2,");
}
END_TEST

START_TEST(test_store_scan_skips_dot_dir_symlink)
{
	char target[FIXTURE_PATH_MAX], link[FIXTURE_PATH_MAX];
	char buf[LISTING_MAX];
	struct store *st;

	fixture_writestr(tmpdir, "outside", "secret\n");
	fixture_writestr(curdir, "1.a:2,", "a\n");
	fixture_writestr(curdir, ".2.hidden:2,", "h\n");
	fixture_mkdir(curdir, "3.dir:2,");
	fixture_path(target, sizeof(target), tmpdir, "outside");
	fixture_path(link, sizeof(link), curdir, "4.link:2,");
	ck_assert_int_eq(symlink(target, link), 0);
	fixture_path(link, sizeof(link), curdir, "5.dangling:2,");
	ck_assert_int_eq(symlink("/nonexistent/pop3d", link), 0);
	fixture_mkdir(newdir, "6.newdir");
	fixture_path(link, sizeof(link), newdir, "7.newlink");
	ck_assert_int_eq(symlink(target, link), 0);
	fixture_writestr(curdir, "8.b:2,", "b\n");

	st = open_ok();
	ck_assert_uint_eq(store_count(st), 2);
	expect_uidl(st, 0, "1.a");
	expect_uidl(st, 1, "8.b");
	store_close(st);
	/* What was skipped is still there. */
	ck_assert(fixture_exists(curdir, ".2.hidden:2,"));
	ck_assert(fixture_exists(curdir, "3.dir:2,"));
	ck_assert(fixture_exists(curdir, "4.link:2,"));
	ck_assert_str_eq(fixture_listing(newdir, buf, sizeof(buf)),
	    "6.newdir|7.newlink");
	ck_assert_str_eq(fixture_listing(tmpdir, buf, sizeof(buf)),
	    "Maildir|outside");
}
END_TEST

START_TEST(test_store_open_creates_missing_maildir)
{
	char path[FIXTURE_PATH_MAX], sub[FIXTURE_PATH_MAX], err[256];
	const char *const subs[] = { "cur", "new", "tmp" };
	struct store *st = NULL;
	struct stat sb;
	size_t i;

	fixture_path(path, sizeof(path), tmpdir, "home/deep/Maildir");
	ck_assert_int_eq(store_open(&st, path, NULL, err, sizeof(err)), STORE_OK);
	ck_assert_ptr_nonnull(st);
	ck_assert_uint_eq(store_count(st), 0);
	for (i = 0; i < 3; i++) {
		fixture_path(sub, sizeof(sub), path, subs[i]);
		ck_assert_int_eq(lstat(sub, &sb), 0);
		ck_assert(S_ISDIR(sb.st_mode));
		ck_assert_uint_eq(sb.st_mode & 077, 0);
	}
	ck_assert_int_eq(lstat(path, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 077, 0);
	store_close(st);
}
END_TEST

START_TEST(test_store_open_completes_partial_maildir)
{
	char path[FIXTURE_PATH_MAX], err[256], buf[LISTING_MAX];
	struct store *st = NULL;

	fixture_mkdir(tmpdir, "partial");
	fixture_path(path, sizeof(path), tmpdir, "partial");
	ck_assert_int_eq(store_open(&st, path, NULL, err, sizeof(err)), STORE_OK);
	ck_assert_uint_eq(store_count(st), 0);
	store_close(st);
	ck_assert_str_eq(fixture_listing(path, buf, sizeof(buf)),
	    "cur|new|pop3d.lock|tmp");
}
END_TEST

START_TEST(test_store_open_regular_file_is_perm)
{
	char path[FIXTURE_PATH_MAX], err[256];
	struct store *st = (struct store *)1;

	fixture_writestr(tmpdir, "file", "not a maildir\n");
	fixture_path(path, sizeof(path), tmpdir, "file");
	err[0] = '\0';
	ck_assert_int_eq(store_open(&st, path, NULL, err, sizeof(err)), STORE_PERM);
	ck_assert_ptr_null(st);
	ck_assert(err[0] != '\0');

	/* A regular file on the way is no better. */
	fixture_path(path, sizeof(path), tmpdir, "file/Maildir");
	st = (struct store *)1;
	ck_assert_int_eq(store_open(&st, path, NULL, err, sizeof(err)), STORE_PERM);
	ck_assert_ptr_null(st);
}
END_TEST

START_TEST(test_store_open_relative_path_is_perm)
{
	struct store *st = (struct store *)1;
	char err[256];

	err[0] = '\0';
	ck_assert_int_eq(store_open(&st, "Maildir", NULL, err, sizeof(err)),
	    STORE_PERM);
	ck_assert_ptr_null(st);
	ck_assert(err[0] != '\0');
}
END_TEST

START_TEST(test_store_open_cur_symlink_is_perm)
{
	char path[FIXTURE_PATH_MAX], link[FIXTURE_PATH_MAX], err[256];
	struct store *st = (struct store *)1;

	fixture_mkdir(tmpdir, "box");
	fixture_path(path, sizeof(path), tmpdir, "box");
	fixture_path(link, sizeof(link), path, "cur");
	ck_assert_int_eq(symlink(curdir, link), 0);
	ck_assert_int_eq(store_open(&st, path, NULL, err, sizeof(err)), STORE_PERM);
	ck_assert_ptr_null(st);
}
END_TEST

START_TEST(test_store_close_null)
{
	store_close(NULL);
}
END_TEST

/* Sizes. */

START_TEST(test_store_sizes_exact)
{
	static const struct {
		const char	*name;
		const char	*data;
		uint64_t	 size;
	} m[] = {
		{ "1.lf:2,", "a\nb\n", 6 },
		{ "2.crlf:2,", "a\r\nb\r\n", 6 },
		{ "3.nofinal:2,", "a\nb", 6 },
		{ "4.empty:2,", "", 0 },
		{ "5.dots:2,", ".\n..\n", 7 },
		{ "6.w,W=123:2,", "short\n", 123 },	/* W= trusted */
		{ "7.badw,W=12x:2,", "a\n", 3 },	/* W= not strict */
		{ "8.wflag:2,W=99", "a\n", 3 },		/* a flag, not W= */
		{ "9.cr:2,", "a\r", 4 },
		/* W= does not count the CRLF after a last line without LF. */
		{ "10.wnolf,W=10:2,", "no newline", 12 },
		{ "11.wempty,W=0:2,", "", 0 },
	};
	struct store *st;
	size_t i;

	for (i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		fixture_writestr(curdir, m[i].name, m[i].data);
	st = open_ok();
	ck_assert_uint_eq(store_count(st), sizeof(m) / sizeof(m[0]));
	for (i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		ck_assert_msg(store_size(st, i) == m[i].size,
		    "%s: size %llu, want %llu", m[i].name,
		    (unsigned long long)store_size(st, i),
		    (unsigned long long)m[i].size);
	store_close(st);
}
END_TEST

START_TEST(test_store_msg_open_reads_the_file)
{
	struct tbuf b = { 0 };
	struct store *st;
	char err[256];
	int fd;

	fixture_writestr(curdir, "1.a:2,", "first\n");
	fixture_writestr(newdir, "2.b", "second\r\n");
	st = open_ok();
	fd = store_msg_open(st, 1, err, sizeof(err));
	ck_assert_msg(fd != -1, "store_msg_open: %s", err);
	read_fd(fd, &b);
	ck_assert_str_eq(b.data, "second\r\n");
	(void)close(fd);
	fd = store_msg_open(st, 0, err, sizeof(err));
	ck_assert_int_ne(fd, -1);
	read_fd(fd, &b);
	ck_assert_str_eq(b.data, "first\n");
	(void)close(fd);
	store_close(st);
	tbuf_free(&b);
}
END_TEST

START_TEST(test_store_msg_open_gone)
{
	char path[FIXTURE_PATH_MAX], err[256];
	struct store *st;

	fixture_writestr(curdir, "1.a:2,", "first\n");
	st = open_ok();
	ck_assert_int_eq(unlink(fixture_path(path, sizeof(path), curdir,
	    "1.a:2,")), 0);
	err[0] = '\0';
	errno = 0;
	ck_assert_int_eq(store_msg_open(st, 0, err, sizeof(err)), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert(err[0] != '\0');
	store_close(st);
}
END_TEST

/* UIDL. */

START_TEST(test_store_uidl_is_base_name)
{
	struct store *st;

	fixture_writestr(curdir, "1.abc:2,S", "x\n");
	fixture_writestr(curdir, "2.def,S=2:2,", "x\n");
	fixture_writestr(curdir, "3.ghi", "x\n");
	st = open_ok();
	expect_uidl(st, 0, "1.abc");
	expect_uidl(st, 1, "2.def");
	expect_uidl(st, 2, "3.ghi");
	store_close(st);
}
END_TEST

START_TEST(test_store_uidl_length_limit)
{
	char n70[80], n71[80], name[96];
	struct store *st;

	memset(n70, 'x', 70);
	n70[0] = '1';
	n70[70] = '\0';
	memset(n71, 'y', 71);
	n71[0] = '2';
	n71[71] = '\0';
	(void)snprintf(name, sizeof(name), "%s:2,", n70);
	fixture_writestr(curdir, name, "x\n");
	(void)snprintf(name, sizeof(name), "%s:2,", n71);
	fixture_writestr(curdir, name, "x\n");
	st = open_ok();
	expect_uidl(st, 0, n70);
	expect_hex_uidl(st, 1, n71);
	store_close(st);
}
END_TEST

START_TEST(test_store_uidl_rejects_space_and_non_ascii)
{
	struct store *st;

	fixture_writestr(curdir, "1.has space:2,", "x\n");
	fixture_writestr(curdir, "2.caf\xc3\xa9:2,", "x\n");
	fixture_writestr(curdir, "3.tab\there:2,", "x\n");
	fixture_writestr(curdir, "4.del\x7f:2,", "x\n");
	st = open_ok();
	ck_assert_uint_eq(store_count(st), 4);
	expect_hex_uidl(st, 0, "1.has space");
	expect_hex_uidl(st, 1, "2.caf\xc3\xa9");
	expect_hex_uidl(st, 2, "3.tab\there");
	expect_hex_uidl(st, 3, "4.del\x7f");
	store_close(st);
}
END_TEST

START_TEST(test_store_uidl_stable_across_opens)
{
	char path[FIXTURE_PATH_MAX], to[FIXTURE_PATH_MAX];
	char hex[2 * MD5_DIGEST_LEN + 1];
	struct store *st;

	fixture_writestr(newdir, "1.new msg", "x\n");
	fixture_writestr(curdir, "2.old msg:2,", "y\n");
	st = open_ok();
	expect_hex_uidl(st, 0, "1.new msg");
	expect_hex_uidl(st, 1, "2.old msg");
	store_close(st);

	/* Another client changes the flags: the UIDLs stay. */
	fixture_path(path, sizeof(path), curdir, "2.old msg:2,");
	fixture_path(to, sizeof(to), curdir, "2.old msg:2,RS");
	ck_assert_int_eq(rename(path, to), 0);
	st = open_ok();
	md5_hex("1.new msg", 9, hex);
	expect_uidl(st, 0, hex);
	expect_hex_uidl(st, 1, "2.old msg");
	store_close(st);
}
END_TEST

/* Update. */

START_TEST(test_store_commit_deletes_and_flags)
{
	static const char *const names[] = {
		"1.del:2,", "2.fr:2,FR", "3.t:2,T", "4.keep:2,", "5.seen:2,S",
		"6.kw:2,a", "7.noinfo", "8.other:1,x", "9.delretr:2,",
		"10.plain:2,"
	};
	char buf[LISTING_MAX], err[256];
	struct store *st;
	size_t i, failed = 99;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		fixture_writestr(curdir, names[i], "x\n");
	st = open_ok();
	ck_assert_uint_eq(store_count(st), 10);
	store_set_deleted(st, find_uidl(st, "1.del"), 1);
	store_set_retrieved(st, find_uidl(st, "2.fr"));
	store_set_retrieved(st, find_uidl(st, "3.t"));
	store_set_retrieved(st, find_uidl(st, "5.seen"));
	store_set_retrieved(st, find_uidl(st, "6.kw"));
	store_set_retrieved(st, find_uidl(st, "7.noinfo"));
	store_set_retrieved(st, find_uidl(st, "8.other"));
	store_set_retrieved(st, find_uidl(st, "9.delretr"));
	store_set_deleted(st, find_uidl(st, "9.delretr"), 1);
	store_set_retrieved(st, find_uidl(st, "10.plain"));
	/* Marked, then unmarked: kept. */
	store_set_deleted(st, find_uidl(st, "4.keep"), 1);
	store_set_deleted(st, find_uidl(st, "4.keep"), 0);
	err[0] = '\0';
	ck_assert_msg(store_commit(st, &failed, err, sizeof(err)) == 0,
	    "store_commit: %s", err);
	ck_assert_uint_eq(failed, 0);
	store_close(st);
	ck_assert_str_eq(fixture_listing(curdir, buf, sizeof(buf)),
	    "10.plain:2,S|2.fr:2,FRS|3.t:2,ST|4.keep:2,|5.seen:2,S|"
	    "6.kw:2,Sa|7.noinfo:2,S|8.other:1,x");
}
END_TEST

START_TEST(test_store_commit_nothing_marked)
{
	char before[LISTING_MAX], after[LISTING_MAX], err[256];
	struct store *st;
	size_t failed = 99;

	fixture_writestr(curdir, "1.a:2,", "a\n");
	fixture_writestr(newdir, "2.b", "b\n");
	st = open_ok();
	fixture_listing(curdir, before, sizeof(before));
	ck_assert_int_eq(store_commit(st, &failed, err, sizeof(err)), 0);
	ck_assert_uint_eq(failed, 0);
	store_close(st);
	ck_assert_str_eq(fixture_listing(curdir, after, sizeof(after)), before);
	ck_assert_str_eq(after, "1.a:2,|2.b:2,");
}
END_TEST

START_TEST(test_store_close_without_commit_keeps_all)
{
	char buf[LISTING_MAX];
	struct store *st;

	fixture_writestr(curdir, "1.a:2,", "a\n");
	fixture_writestr(curdir, "2.b:2,", "b\n");
	st = open_ok();
	store_set_deleted(st, 0, 1);
	store_set_retrieved(st, 1);
	store_close(st);
	ck_assert_str_eq(fixture_listing(curdir, buf, sizeof(buf)),
	    "1.a:2,|2.b:2,");
}
END_TEST

START_TEST(test_store_deleted_marks)
{
	struct store *st;

	fixture_writestr(curdir, "1.a:2,", "a\n");
	fixture_writestr(curdir, "2.b:2,", "b\n");
	st = open_ok();
	ck_assert_int_eq(store_deleted(st, 0), 0);
	ck_assert_int_eq(store_deleted(st, 1), 0);
	store_set_deleted(st, 1, 1);
	ck_assert_int_eq(store_deleted(st, 0), 0);
	ck_assert_int_ne(store_deleted(st, 1), 0);
	store_set_retrieved(st, 1);
	ck_assert_int_ne(store_deleted(st, 1), 0);
	store_set_deleted(st, 1, 0);
	ck_assert_int_eq(store_deleted(st, 1), 0);
	store_close(st);
}
END_TEST

START_TEST(test_store_seen_flag)
{
	struct store *st;

	fixture_writestr(curdir, "1.s:2,S", "x\n");
	fixture_writestr(curdir, "2.fs:2,FS", "x\n");
	fixture_writestr(curdir, "3.f:2,F", "x\n");
	fixture_writestr(curdir, "4.none", "x\n");
	fixture_writestr(curdir, "5.empty:2,", "x\n");
	fixture_writestr(curdir, "6.v1:1,S", "x\n");
	fixture_writestr(newdir, "7.new", "x\n");
	st = open_ok();
	ck_assert_int_ne(store_seen(st, 0), 0);
	ck_assert_int_ne(store_seen(st, 1), 0);
	ck_assert_int_eq(store_seen(st, 2), 0);
	ck_assert_int_eq(store_seen(st, 3), 0);
	ck_assert_int_eq(store_seen(st, 4), 0);
	ck_assert_int_eq(store_seen(st, 5), 0);
	ck_assert_int_eq(store_seen(st, 6), 0);
	/* Marking retrieved changes nothing before the commit. */
	store_set_retrieved(st, 2);
	ck_assert_int_eq(store_seen(st, 2), 0);
	store_close(st);
}
END_TEST

START_TEST(test_store_renamed_after_open_is_found)
{
	char from[FIXTURE_PATH_MAX], to[FIXTURE_PATH_MAX], err[256];
	char buf[LISTING_MAX];
	struct tbuf b = { 0 };
	struct store *st;
	size_t failed = 99;
	int fd;

	fixture_writestr(curdir, "1.a:2,", "one\n");
	fixture_writestr(curdir, "2.b:2,", "two\n");
	fixture_writestr(curdir, "3.c:2,", "three\n");
	st = open_ok();
	/* Another client flags all three after our scan. */
	ck_assert_int_eq(rename(fixture_path(from, sizeof(from), curdir,
	    "1.a:2,"), fixture_path(to, sizeof(to), curdir, "1.a:2,F")), 0);
	ck_assert_int_eq(rename(fixture_path(from, sizeof(from), curdir,
	    "2.b:2,"), fixture_path(to, sizeof(to), curdir, "2.b:2,T")), 0);
	ck_assert_int_eq(rename(fixture_path(from, sizeof(from), curdir,
	    "3.c:2,"), fixture_path(to, sizeof(to), curdir, "3.c:2,R")), 0);

	/* RETR 1 still reads it, and QUIT then flags it seen. */
	fd = store_msg_open(st, 0, err, sizeof(err));
	ck_assert_msg(fd != -1, "store_msg_open: %s", err);
	read_fd(fd, &b);
	ck_assert_str_eq(b.data, "one\n");
	(void)close(fd);
	store_set_retrieved(st, 0);
	/* RETR 2, DELE 2; DELE 3 without reading it. */
	fd = store_msg_open(st, 1, err, sizeof(err));
	ck_assert_msg(fd != -1, "store_msg_open: %s", err);
	(void)close(fd);
	store_set_retrieved(st, 1);
	store_set_deleted(st, 1, 1);
	store_set_deleted(st, 2, 1);
	expect_uidl(st, 0, "1.a");
	expect_uidl(st, 1, "2.b");

	err[0] = '\0';
	ck_assert_msg(store_commit(st, &failed, err, sizeof(err)) == 0,
	    "store_commit: %s", err);
	ck_assert_uint_eq(failed, 0);
	store_close(st);
	ck_assert_str_eq(fixture_listing(curdir, buf, sizeof(buf)), "1.a:2,FS");
	tbuf_free(&b);
}
END_TEST

/* A message removed by another process meanwhile is gone, as asked. */
START_TEST(test_store_commit_vanished_is_deleted)
{
	char path[FIXTURE_PATH_MAX], buf[LISTING_MAX], err[256];
	struct store *st;
	size_t failed = 99;

	fixture_writestr(curdir, "1.a:2,", "a\n");
	fixture_writestr(curdir, "2.b:2,", "b\n");
	fixture_writestr(curdir, "3.c:2,", "c\n");
	st = open_ok();
	store_set_deleted(st, 0, 1);
	store_set_deleted(st, 2, 1);
	ck_assert_int_eq(unlink(fixture_path(path, sizeof(path), curdir,
	    "1.a:2,")), 0);
	err[0] = '\0';
	ck_assert_int_eq(store_commit(st, &failed, err, sizeof(err)), 0);
	ck_assert_uint_eq(failed, 0);
	store_close(st);
	ck_assert_str_eq(fixture_listing(curdir, buf, sizeof(buf)), "2.b:2,");
}
END_TEST

/* Lock. */

START_TEST(test_store_lock_second_open_in_use)
{
	struct store *st, *st2 = (struct store *)1;
	char err[256];

	fixture_writestr(curdir, "1.a:2,", "a\n");
	st = open_ok();
	err[0] = '\0';
	ck_assert_int_eq(store_open(&st2, maildir, NULL, err, sizeof(err)),
	    STORE_INUSE);
	ck_assert_ptr_null(st2);
	ck_assert(err[0] != '\0');
	store_close(st);
	st = open_ok();
	ck_assert_uint_eq(store_count(st), 1);
	store_close(st);
}
END_TEST

START_TEST(test_store_lock_held_by_other_process)
{
	struct store *st = NULL;
	int ready[2], hold[2], status;
	char c, err[256];
	pid_t pid;

	ck_assert_int_eq(pipe(ready), 0);
	ck_assert_int_eq(pipe(hold), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		(void)close(ready[0]);
		(void)close(hold[1]);
		if (store_open(&st, maildir, NULL, err, sizeof(err)) != STORE_OK)
			_exit(1);
		if (write(ready[1], "x", 1) != 1)
			_exit(2);
		/* Hold the lock until the parent closes its end. */
		if (read(hold[0], &c, 1) == -1)
			_exit(3);
		_exit(0);	/* no store_close: the lock goes with us */
	}
	(void)close(ready[1]);
	(void)close(hold[0]);
	ck_assert_int_eq((int)read(ready[0], &c, 1), 1);
	ck_assert_int_eq(store_open(&st, maildir, NULL, err, sizeof(err)),
	    STORE_INUSE);
	(void)close(hold[1]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	st = open_ok();
	store_close(st);
	(void)close(ready[0]);
}
END_TEST

Suite *
md5_suite(void)
{
	Suite *s = suite_create("md5");
	TCase *tc;

	tc = tcase_create("digest");
	tcase_add_loop_test(tc, test_md5_rfc1321_vectors, 0,
	    (int)(sizeof(md5_vectors) / sizeof(md5_vectors[0])));
	tcase_add_test(tc, test_md5_padding_edges);
	tcase_add_test(tc, test_md5_incremental_equals_one_shot);
	suite_add_tcase(s, tc);
	return s;
}

Suite *
store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc;

	tc = tcase_create("names");
	tcase_add_test(tc, test_store_maildir_base);
	tcase_add_loop_test(tc, test_store_maildir_wsize, 0,
	    (int)(sizeof(wsize_cases) / sizeof(wsize_cases[0])));
	tcase_add_loop_test(tc, test_store_path_expansions, 0,
	    (int)(sizeof(path_cases) / sizeof(path_cases[0])));
	tcase_add_test(tc, test_store_path_too_long);
	suite_add_tcase(s, tc);

	tc = tcase_create("scan");
	tcase_add_checked_fixture(tc, store_setup, store_teardown);
	/* Thousands of files written: seconds on a busy machine. */
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_store_scan_moves_new_to_cur);
	tcase_add_test(tc, test_store_scan_order_by_time_then_name);
	tcase_add_test(tc, test_store_scan_order_many);
	tcase_add_test(tc, test_store_scan_names_without_their_time);
	tcase_add_test(tc, test_store_scan_skips_dot_dir_symlink);
	tcase_add_test(tc, test_store_open_creates_missing_maildir);
	tcase_add_test(tc, test_store_open_completes_partial_maildir);
	tcase_add_test(tc, test_store_open_regular_file_is_perm);
	tcase_add_test(tc, test_store_open_relative_path_is_perm);
	tcase_add_test(tc, test_store_open_cur_symlink_is_perm);
	tcase_add_test(tc, test_store_close_null);
	suite_add_tcase(s, tc);

	tc = tcase_create("sizes");
	tcase_add_checked_fixture(tc, store_setup, store_teardown);
	tcase_add_test(tc, test_store_sizes_exact);
	tcase_add_test(tc, test_store_msg_open_reads_the_file);
	tcase_add_test(tc, test_store_msg_open_gone);
	suite_add_tcase(s, tc);

	tc = tcase_create("uidl");
	tcase_add_checked_fixture(tc, store_setup, store_teardown);
	tcase_add_test(tc, test_store_uidl_is_base_name);
	tcase_add_test(tc, test_store_uidl_length_limit);
	tcase_add_test(tc, test_store_uidl_rejects_space_and_non_ascii);
	tcase_add_test(tc, test_store_uidl_stable_across_opens);
	suite_add_tcase(s, tc);

	tc = tcase_create("update");
	tcase_add_checked_fixture(tc, store_setup, store_teardown);
	tcase_add_test(tc, test_store_commit_deletes_and_flags);
	tcase_add_test(tc, test_store_commit_nothing_marked);
	tcase_add_test(tc, test_store_close_without_commit_keeps_all);
	tcase_add_test(tc, test_store_deleted_marks);
	tcase_add_test(tc, test_store_seen_flag);
	tcase_add_test(tc, test_store_renamed_after_open_is_found);
	tcase_add_test(tc, test_store_commit_vanished_is_deleted);
	suite_add_tcase(s, tc);

	tc = tcase_create("lock");
	tcase_add_checked_fixture(tc, store_setup, store_teardown);
	tcase_add_test(tc, test_store_lock_second_open_in_use);
	tcase_add_test(tc, test_store_lock_held_by_other_process);
	suite_add_tcase(s, tc);
	return s;
}
