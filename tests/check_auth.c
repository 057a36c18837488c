/*
 * check_auth.c: tests of auth.c: user names, passwd-file lines, password
 * checks and the privilege drop.
 *
 * The passwd-file is written by a checked fixture with hashes made by
 * crypt(3) there; nothing needs root or /etc/shadow.  The root-only
 * checks of auth_become() run in a child process, so the runner keeps
 * its ids even with CK_FORK=no.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <crypt.h>
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "../auth.h"
#include "../pop3d.h"
#include "check_pop3d.h"

/* SHA-512 crypt is quick enough to make in every setup. */
#define BOB_PASSWORD	"hunter2"
#define BOB_SETTING	"$6$pop3dtest$"

static char	tmpdir[FIXTURE_PATH_MAX];
static char	passwd[FIXTURE_PATH_MAX];
static char	bob_hash[256];

static void	auth_setup(void);
static void	auth_teardown(void);
static void	make_hash(const char *, const char *, char *, size_t);
static void	add_long_line(struct tbuf *);
static enum auth_result lookup(const char *, const char *,
		    struct auth_user *, char *, size_t);
static int	become_as_root(void);

static void
make_hash(const char *password, const char *setting, char *out, size_t len)
{
	struct crypt_data *cd;
	const char *h;
	int n;

	cd = calloc(1, sizeof(*cd));
	ck_assert_ptr_nonnull(cd);
	h = crypt_r(password, setting, cd);
	ck_assert_msg(h != NULL && h[0] != '*', "crypt_r %s failed",
	    setting);
	n = snprintf(out, len, "%s", h);
	ck_assert(n > 0 && (size_t)n < len);
	free(cd);
}

/*
 * A line far over PASSWD_LINE_MAX, cut so that each piece the reader
 * could see on its own looks like an entry of its own.
 */
static void
add_long_line(struct tbuf *b)
{
	size_t start = b->len;

	tbuf_addstr(b, "mallory:{PLAIN}pw:1:1:");
	while (b->len - start < PASSWD_LINE_MAX - 1)
		tbuf_addstr(b, "x");
	tbuf_addstr(b, "trudy:{PLAIN}pw:1:1:");
	while (b->len - start < 2 * (PASSWD_LINE_MAX - 1))
		tbuf_addstr(b, "y");
	tbuf_addstr(b, "oscar:{PLAIN}pw\n");
}

static void
auth_setup(void)
{
	struct tbuf b = { 0 };

	make_hash(BOB_PASSWORD, BOB_SETTING, bob_hash, sizeof(bob_hash));
	fixture_mkdtemp(tmpdir, sizeof(tmpdir), "auth");
	fixture_path(passwd, sizeof(passwd), tmpdir, "passwd");
	tbuf_addstr(&b, "# users for the tests\n");
	tbuf_addstr(&b, "   # an indented comment\n");
	tbuf_addstr(&b, "\n");
	tbuf_addstr(&b, "alice:{PLAIN}secret:1001:1002:Alice:/home/alice:"
	    "/bin/sh\n");
	tbuf_addstr(&b, "bob:");
	tbuf_addstr(&b, bob_hash);
	tbuf_addstr(&b, ":1003:1004::/home/bob::extra:fields\n");
	tbuf_addstr(&b, "noids:{PLAIN}pw\n");
	tbuf_addstr(&b, "badids:{PLAIN}pw:12a:-1::/home/badids\n");
	tbuf_addstr(&b, "bigid:{PLAIN}pw:4294967296:1::/home/bigid\n");
	tbuf_addstr(&b, "malformed line\n");
	tbuf_addstr(&b, ":{PLAIN}noname\n");
	tbuf_addstr(&b, ".dot:{PLAIN}pw\n");
	tbuf_addstr(&b, "carol:\n");
	tbuf_addstr(&b, "alice:{PLAIN}second:2001:2002::/other\n");
	add_long_line(&b);
	tbuf_addstr(&b, "dave:{PLAIN}pass word:7:8::/home/dave\n");
	tbuf_addstr(&b, "zed:{PLAIN}last");	/* no final newline */
	fixture_write(tmpdir, "passwd", b.data, b.len);
	tbuf_free(&b);
}

static void
auth_teardown(void)
{
	fixture_rmtree(tmpdir);
}

static enum auth_result
lookup(const char *name, const char *password, struct auth_user *u,
    char *err, size_t errlen)
{
	memset(u, 0, sizeof(*u));
	err[0] = '\0';
	return auth_passwd_file(passwd, name, password, u, err, errlen);
}

/* Names. */

static const struct {
	const char	*name;
	int		 valid;
} names[] = {
	{ "alice", 1 },
	{ "a", 1 },
	{ "alice@example.org", 1 },
	{ "a.b-c_d+e=f", 1 },
	{ "~x!#$%&'*", 1 },
	{ "x.", 1 },
	{ "", 0 },
	{ ".x", 0 },
	{ ".", 0 },
	{ "..", 0 },
	{ "a/b", 0 },
	{ "/", 0 },
	{ "a:b", 0 },
	{ "a\\b", 0 },
	{ "a b", 0 },
	{ " a", 0 },
	{ "a\tb", 0 },
	{ "a\nb", 0 },
	{ "a\rb", 0 },
	{ "a\x01", 0 },
	{ "a\x1f", 0 },
	{ "a\x7f", 0 },
	/* UTF-8 (RFC 6856), valid and shortest only. */
	{ "caf\xc3\xa9", 1 },
	{ "\xe5\xbc\xa0\xe4\xbc\x9f", 1 },		/* U+5F20 U+4F1F */
	{ "\xf0\x9f\x93\xab", 1 },		/* U+1F4EB */
	{ "\xc2\xa0x", 1 },			/* U+00A0 */
	{ "\xc2\x85", 0 },			/* U+0085, a C1 control */
	{ "\xc0\xaf", 0 },			/* overlong '/' */
	{ "\xe0\x80\xaf", 0 },		/* overlong '/' */
	{ "\xc3", 0 },				/* cut */
	{ "caf\xc3", 0 },
	{ "\xc3\x28", 0 },
	{ "\xed\xa0\x80", 0 },		/* a surrogate */
	{ "\xf4\x90\x80\x80", 0 },		/* above U+10FFFF */
	{ "\xf8\x88\x80\x80\x80", 0 },
	{ "\x80", 0 },
	{ "\xff", 0 },
	{ ".\xc3\xa9", 0 },
};

START_TEST(test_auth_name_valid)
{
	ck_assert_msg(auth_name_valid(names[_i].name) == names[_i].valid,
	    "name %d (\"%s\"): want %d", _i, names[_i].name,
	    names[_i].valid);
}
END_TEST

START_TEST(test_auth_name_length_limit)
{
	char name[USER_NAME_MAX + 2];

	memset(name, 'n', sizeof(name));
	name[USER_NAME_MAX] = '\0';
	ck_assert_int_eq(auth_name_valid(name), 1);
	name[USER_NAME_MAX] = 'n';
	name[USER_NAME_MAX + 1] = '\0';
	ck_assert_int_eq(auth_name_valid(name), 0);
}
END_TEST

/* passwd-file lines. */

START_TEST(test_auth_parse_full_line)
{
	char line[] = "alice:{PLAIN}x:1000:1001:Alice A:/home/alice:/bin/sh";
	struct auth_entry e;

	ck_assert_int_eq(auth_parse_line(line, &e), 0);
	ck_assert_str_eq(e.name, "alice");
	ck_assert_str_eq(e.password, "{PLAIN}x");
	ck_assert_str_eq(e.uid, "1000");
	ck_assert_str_eq(e.gid, "1001");
	ck_assert_str_eq(e.home, "/home/alice");
}
END_TEST

START_TEST(test_auth_parse_comment_and_blank)
{
	char c1[] = "# a comment", c2[] = " \t# indented", b1[] = "";
	char b2[] = "  \t ", c3[] = "#alice:{PLAIN}x";
	struct auth_entry e;

	ck_assert_int_eq(auth_parse_line(c1, &e), 1);
	ck_assert_int_eq(auth_parse_line(c2, &e), 1);
	ck_assert_int_eq(auth_parse_line(c3, &e), 1);
	ck_assert_int_eq(auth_parse_line(b1, &e), 1);
	ck_assert_int_eq(auth_parse_line(b2, &e), 1);
}
END_TEST

START_TEST(test_auth_parse_name_and_password_only)
{
	char line[] = "bob:{CRYPT}$6$x$y";
	struct auth_entry e;

	ck_assert_int_eq(auth_parse_line(line, &e), 0);
	ck_assert_str_eq(e.name, "bob");
	ck_assert_str_eq(e.password, "{CRYPT}$6$x$y");
	ck_assert_str_eq(e.uid, "");
	ck_assert_str_eq(e.gid, "");
	ck_assert_str_eq(e.home, "");
}
END_TEST

START_TEST(test_auth_parse_partial_fields)
{
	char l1[] = "bob:pw:5", l2[] = "bob:pw:5:6:gecos:/h";
	struct auth_entry e;

	ck_assert_int_eq(auth_parse_line(l1, &e), 0);
	ck_assert_str_eq(e.uid, "5");
	ck_assert_str_eq(e.gid, "");
	ck_assert_str_eq(e.home, "");
	ck_assert_int_eq(auth_parse_line(l2, &e), 0);
	ck_assert_str_eq(e.uid, "5");
	ck_assert_str_eq(e.gid, "6");
	ck_assert_str_eq(e.home, "/h");
}
END_TEST

START_TEST(test_auth_parse_extra_fields)
{
	char line[] = "carol:pw:1:2:g:/home/carol:/bin/sh:userdb_x=1:more:x";
	struct auth_entry e;

	ck_assert_int_eq(auth_parse_line(line, &e), 0);
	ck_assert_str_eq(e.name, "carol");
	ck_assert_str_eq(e.password, "pw");
	ck_assert_str_eq(e.uid, "1");
	ck_assert_str_eq(e.gid, "2");
	ck_assert_str_eq(e.home, "/home/carol");
}
END_TEST

START_TEST(test_auth_parse_malformed)
{
	static const char *const bad[] = {
		"alice", "alice:", "alice::1:2::/h", ":pw", ".x:pw", "a/b:pw",
		"a b:pw", " alice:pw", "a\\b:pw", "caf\xc3:pw",
	};
	struct auth_entry e;
	char line[128];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		(void)snprintf(line, sizeof(line), "%s", bad[i]);
		ck_assert_msg(auth_parse_line(line, &e) == -1,
		    "\"%s\" accepted", bad[i]);
	}
}
END_TEST

/* Passwords. */

START_TEST(test_auth_password_plain)
{
	ck_assert_int_eq(auth_check_password("{PLAIN}secret", "secret"), 1);
	ck_assert_int_eq(auth_check_password("{PLAIN}secret", "secret2"), 0);
	ck_assert_int_eq(auth_check_password("{PLAIN}secret", "secre"), 0);
	ck_assert_int_eq(auth_check_password("{PLAIN}secret", "Secret"), 0);
	ck_assert_int_eq(auth_check_password("{PLAIN}secret", ""), 0);
	ck_assert_int_eq(auth_check_password("{PLAIN}two words",
	    "two words"), 1);
	/* The scheme is not the password, and its name is exact. */
	ck_assert_int_eq(auth_check_password("{PLAIN}secret",
	    "{PLAIN}secret"), 0);
	ck_assert_int_eq(auth_check_password("{plain}secret", "secret"), 0);
}
END_TEST

START_TEST(test_auth_password_hash_made_here)
{
	char hash[256], hash2[300], small[8];

	ck_assert_int_eq(auth_hash_password("letmein", hash, sizeof(hash)),
	    0);
	ck_assert_msg(hash[0] == '$', "not a crypt hash: %s", hash);
	ck_assert_int_eq(auth_check_password(hash, "letmein"), 1);
	ck_assert_int_eq(auth_check_password(hash, "letmeout"), 0);
	ck_assert_int_eq(auth_check_password(hash, ""), 0);

	/* {CRYPT} in front changes nothing. */
	(void)snprintf(hash2, sizeof(hash2), "{CRYPT}%s", hash);
	ck_assert_int_eq(auth_check_password(hash2, "letmein"), 1);
	ck_assert_int_eq(auth_check_password(hash2, "letmeout"), 0);

	/* A new salt each time. */
	ck_assert_int_eq(auth_hash_password("letmein", hash2, sizeof(hash2)),
	    0);
	ck_assert_str_ne(hash, hash2);
	ck_assert_int_eq(auth_check_password(hash2, "letmein"), 1);

	/* It does not fit: an error, not a cut hash. */
	ck_assert_int_eq(auth_hash_password("letmein", small, sizeof(small)),
	    -1);
}
END_TEST

START_TEST(test_auth_password_dovecot_schemes)
{
	char h[256], stored[300];

	make_hash("pw6", "$6$saltsalt$", h, sizeof(h));
	(void)snprintf(stored, sizeof(stored), "{SHA512-CRYPT}%s", h);
	ck_assert_int_eq(auth_check_password(stored, "pw6"), 1);
	ck_assert_int_eq(auth_check_password(stored, "pw5"), 0);
	ck_assert_int_eq(auth_check_password(h, "pw6"), 1);
	(void)snprintf(stored, sizeof(stored), "{CRYPT}%s", h);
	ck_assert_int_eq(auth_check_password(stored, "pw6"), 1);

	make_hash("pw5", "$5$saltsalt$", h, sizeof(h));
	(void)snprintf(stored, sizeof(stored), "{SHA256-CRYPT}%s", h);
	ck_assert_int_eq(auth_check_password(stored, "pw5"), 1);
	ck_assert_int_eq(auth_check_password(stored, "pw6"), 0);

	make_hash("pw1", "$1$saltsalt$", h, sizeof(h));
	(void)snprintf(stored, sizeof(stored), "{MD5-CRYPT}%s", h);
	ck_assert_int_eq(auth_check_password(stored, "pw1"), 1);
	ck_assert_int_eq(auth_check_password(stored, "pw2"), 0);

	make_hash("pwb", "$2b$04$abcdefghijklmnopqrstuu", h, sizeof(h));
	(void)snprintf(stored, sizeof(stored), "{BLF-CRYPT}%s", h);
	ck_assert_int_eq(auth_check_password(stored, "pwb"), 1);
	ck_assert_int_eq(auth_check_password(stored, "pwc"), 0);
}
END_TEST

START_TEST(test_auth_password_unknown_scheme)
{
	char h[256], stored[300];

	ck_assert_int_eq(auth_check_password("{FOO}x", "x"), 0);
	ck_assert_int_eq(auth_check_password("{FOO}x", "{FOO}x"), 0);
	ck_assert_int_eq(auth_check_password("{SSHA}x", "x"), 0);
	make_hash("pw", "$6$saltsalt$", h, sizeof(h));
	(void)snprintf(stored, sizeof(stored), "{FOO}%s", h);
	ck_assert_int_eq(auth_check_password(stored, "pw"), 0);
	(void)snprintf(stored, sizeof(stored), "{sha512-crypt}%s", h);
	ck_assert_int_eq(auth_check_password(stored, "pw"), 0);
}
END_TEST

START_TEST(test_auth_password_locked_or_broken)
{
	char h[256], stored[300];

	make_hash("pw", "$6$saltsalt$", h, sizeof(h));
	ck_assert_int_eq(auth_check_password("*", "pw"), 0);
	ck_assert_int_eq(auth_check_password("*", "*"), 0);
	ck_assert_int_eq(auth_check_password("!", "pw"), 0);
	ck_assert_int_eq(auth_check_password("!", "!"), 0);
	ck_assert_int_eq(auth_check_password("*LK*", "pw"), 0);
	ck_assert_int_eq(auth_check_password("", ""), 0);
	ck_assert_int_eq(auth_check_password("{CRYPT}", ""), 0);
	ck_assert_int_eq(auth_check_password("{CRYPT}*", "pw"), 0);
	(void)snprintf(stored, sizeof(stored), "!%s", h);
	ck_assert_int_eq(auth_check_password(stored, "pw"), 0);
	(void)snprintf(stored, sizeof(stored), "*%s", h);
	ck_assert_int_eq(auth_check_password(stored, "pw"), 0);
	/* A hash cut short does not match. */
	(void)snprintf(stored, sizeof(stored), "%.*s", (int)strlen(h) - 1, h);
	ck_assert_int_eq(auth_check_password(stored, "pw"), 0);
}
END_TEST

START_TEST(test_auth_wipe)
{
	char buf[16];
	size_t i;

	memset(buf, 'x', sizeof(buf));
	auth_wipe(buf, 8);
	for (i = 0; i < sizeof(buf); i++)
		ck_assert_int_eq(buf[i], i < 8 ? 0 : 'x');
}
END_TEST

/* The passwd-file. */

START_TEST(test_auth_file_ok)
{
	struct auth_user u;
	char err[256];

	ck_assert_int_eq(lookup("alice", "secret", &u, err, sizeof(err)),
	    AUTH_OK);
	ck_assert_str_eq(u.name, "alice");
	ck_assert_int_eq(u.have_ids, 1);
	ck_assert_uint_eq(u.uid, 1001);
	ck_assert_uint_eq(u.gid, 1002);
	ck_assert_str_eq(u.home, "/home/alice");

	ck_assert_int_eq(lookup("bob", BOB_PASSWORD, &u, err, sizeof(err)),
	    AUTH_OK);
	ck_assert_str_eq(u.name, "bob");
	ck_assert_int_eq(u.have_ids, 1);
	ck_assert_uint_eq(u.uid, 1003);
	ck_assert_uint_eq(u.gid, 1004);
	ck_assert_str_eq(u.home, "/home/bob");
}
END_TEST

START_TEST(test_auth_file_wrong_password_and_unknown_user_fail)
{
	struct auth_user u;
	char err[256];

	ck_assert_int_eq(lookup("alice", "wrong", &u, err, sizeof(err)),
	    AUTH_FAIL);
	ck_assert_str_eq(err, "wrong password");
	ck_assert_str_eq(u.name, "alice");
	ck_assert_int_eq(lookup("bob", "hunter3", &u, err, sizeof(err)),
	    AUTH_FAIL);
	ck_assert_str_eq(err, "wrong password");
	ck_assert_int_eq(lookup("nosuch", "secret", &u, err, sizeof(err)),
	    AUTH_FAIL);
	ck_assert_str_eq(err, "unknown user");
	/* Unknown names stay out of u: they may be mistyped passwords. */
	ck_assert_str_eq(u.name, "");
	/* Bob's password is no key to an unknown name. */
	ck_assert_int_eq(lookup("nosuch", BOB_PASSWORD, &u, err,
	    sizeof(err)), AUTH_FAIL);
	ck_assert_int_eq(lookup("Alice", "secret", &u, err, sizeof(err)),
	    AUTH_FAIL);
	ck_assert_int_eq(lookup("alic", "secret", &u, err, sizeof(err)),
	    AUTH_FAIL);
	ck_assert_int_eq(lookup("alice", "", &u, err, sizeof(err)),
	    AUTH_FAIL);
}
END_TEST

START_TEST(test_auth_file_first_entry_wins)
{
	struct auth_user u;
	char err[256];

	ck_assert_int_eq(lookup("alice", "second", &u, err, sizeof(err)),
	    AUTH_FAIL);
}
END_TEST

START_TEST(test_auth_file_malformed_lines_skipped)
{
	struct auth_user u;
	char err[256];

	ck_assert_int_eq(lookup("carol", "", &u, err, sizeof(err)),
	    AUTH_FAIL);
	ck_assert_int_eq(lookup(".dot", "pw", &u, err, sizeof(err)),
	    AUTH_FAIL);
	ck_assert_int_eq(lookup("", "{PLAIN}noname", &u, err, sizeof(err)),
	    AUTH_FAIL);
	ck_assert_int_eq(lookup("malformed line", "", &u, err, sizeof(err)),
	    AUTH_FAIL);
	/* The lines after them still count. */
	ck_assert_int_eq(lookup("dave", "pass word", &u, err, sizeof(err)),
	    AUTH_OK);
	ck_assert_uint_eq(u.uid, 7);
	ck_assert_uint_eq(u.gid, 8);
}
END_TEST

START_TEST(test_auth_file_long_line_skipped)
{
	struct auth_user u;
	char err[256];

	ck_assert_int_eq(lookup("mallory", "pw", &u, err, sizeof(err)),
	    AUTH_FAIL);
	ck_assert_int_eq(lookup("trudy", "pw", &u, err, sizeof(err)),
	    AUTH_FAIL);
	ck_assert_int_eq(lookup("oscar", "pw", &u, err, sizeof(err)),
	    AUTH_FAIL);
	ck_assert_int_eq(lookup("dave", "pass word", &u, err, sizeof(err)),
	    AUTH_OK);
}
END_TEST

/*
 * auth_read_line() over many read(2)s: lines of every length up to the
 * limit cross the buffer's end anywhere; a line with a NUL or too long
 * is bad, the last one may lack its LF, and closing wipes the buffer.
 */
START_TEST(test_auth_read_lines)
{
	struct tbuf b = { 0 };
	struct auth_file af;
	char line[64], want[64];
	size_t i, k, n, lines = 0;
	int r;

	for (i = 0; i < 3000; i++) {
		n = i % 70;
		for (k = 0; k < n; k++)
			tbuf_add(&b, &"abcdefghij"[(i + k) % 10], 1);
		tbuf_addstr(&b, "\n");
	}
	tbuf_add(&b, "nul\0line\nlast", 13);
	fixture_write(tmpdir, "lines", b.data, b.len);
	ck_assert_int_eq(auth_file_open(&af, fixture_path(want, sizeof(want),
	    tmpdir, "lines")), 0);
	for (i = 0; i < 3000; i++) {
		r = auth_read_line(&af, line, sizeof(line));
		n = i % 70;
		if (n + 2 > sizeof(line)) {
			ck_assert_int_eq(r, AUTH_LINE_BAD);
			continue;
		}
		for (k = 0; k < n; k++)
			want[k] = "abcdefghij"[(i + k) % 10];
		want[n] = '\0';
		ck_assert_int_eq(r, (int)n);
		ck_assert_str_eq(line, want);
		lines++;
	}
	/* Lengths 63 to 69 are too long: 7 in each of 42 rounds of 70. */
	ck_assert_uint_eq(lines, 3000 - 42 * 7);
	ck_assert_int_eq(auth_read_line(&af, line, sizeof(line)),
	    AUTH_LINE_BAD);
	ck_assert_int_eq(auth_read_line(&af, line, sizeof(line)), 4);
	ck_assert_str_eq(line, "last");
	ck_assert_int_eq(auth_read_line(&af, line, sizeof(line)), -1);
	ck_assert_int_eq(af.error, 0);
	auth_file_close(&af);
	for (i = 0; i < sizeof(af.buf); i++)
		ck_assert_int_eq(af.buf[i], 0);
	tbuf_free(&b);
}
END_TEST

START_TEST(test_auth_file_line_near_limit_accepted)
{
	struct tbuf b = { 0 };
	struct auth_user u;
	char err[256];

	/* PASSWD_LINE_MAX - 2 octets and the LF: well within the limit. */
	tbuf_addstr(&b, "near:{PLAIN}pw:5:6:");
	while (b.len < PASSWD_LINE_MAX - 2 - strlen(":/home/near"))
		tbuf_addstr(&b, "g");
	tbuf_addstr(&b, ":/home/near\n");
	ck_assert_uint_eq(b.len, PASSWD_LINE_MAX - 1);
	tbuf_addstr(&b, "after:{PLAIN}pw\n");
	fixture_write(tmpdir, "passwd", b.data, b.len);
	ck_assert_int_eq(lookup("near", "pw", &u, err, sizeof(err)),
	    AUTH_OK);
	ck_assert_str_eq(u.home, "/home/near");
	ck_assert_int_eq(lookup("after", "pw", &u, err, sizeof(err)),
	    AUTH_OK);
	tbuf_free(&b);
}
END_TEST

/* A line with a NUL in it is no entry, and the next line is whole. */
START_TEST(test_auth_file_nul_line_skipped)
{
	static const char file[] = "#\0x\n"
	    "alice:{PLAIN}secret:1000:1000::/home/alice::\n"
	    "nul:{PLAIN}pw\0:1:1::/h\n";
	struct auth_user u;
	char err[256];

	fixture_write(tmpdir, "passwd", file, sizeof(file) - 1);
	ck_assert_int_eq(lookup("alice", "secret", &u, err, sizeof(err)),
	    AUTH_OK);
	ck_assert_int_eq(lookup("nul", "pw", &u, err, sizeof(err)),
	    AUTH_FAIL);
}
END_TEST

START_TEST(test_auth_file_last_line_without_newline)
{
	struct auth_user u;
	char err[256];

	ck_assert_int_eq(lookup("zed", "last", &u, err, sizeof(err)),
	    AUTH_OK);
	ck_assert_int_eq(lookup("zed", "las", &u, err, sizeof(err)),
	    AUTH_FAIL);
}
END_TEST

START_TEST(test_auth_file_ids)
{
	struct auth_user u;
	char err[256];

	ck_assert_int_eq(lookup("noids", "pw", &u, err, sizeof(err)),
	    AUTH_OK);
	ck_assert_int_eq(u.have_ids, 0);
	ck_assert_str_eq(u.home, "");
	ck_assert_int_eq(lookup("badids", "pw", &u, err, sizeof(err)),
	    AUTH_OK);
	ck_assert_int_eq(u.have_ids, 0);
	ck_assert_str_eq(u.home, "/home/badids");
	ck_assert_int_eq(lookup("bigid", "pw", &u, err, sizeof(err)),
	    AUTH_OK);
	ck_assert_int_eq(u.have_ids, 0);
}
END_TEST

START_TEST(test_auth_file_missing_is_temp)
{
	char path[FIXTURE_PATH_MAX], err[256];
	struct auth_user u;

	fixture_path(path, sizeof(path), tmpdir, "nonexistent");
	err[0] = '\0';
	ck_assert_int_eq(auth_passwd_file(path, "alice", "secret", &u, err,
	    sizeof(err)), AUTH_TEMP);
	ck_assert(err[0] != '\0');
	/* A directory cannot be read either. */
	err[0] = '\0';
	ck_assert_int_eq(auth_passwd_file(tmpdir, "alice", "secret", &u, err,
	    sizeof(err)), AUTH_TEMP);
	ck_assert(err[0] != '\0');
}
END_TEST

START_TEST(test_auth_file_empty)
{
	struct auth_user u;
	char err[256];

	fixture_write(tmpdir, "passwd", "", 0);
	ck_assert_int_eq(lookup("alice", "secret", &u, err, sizeof(err)),
	    AUTH_FAIL);
	ck_assert_int_eq(lookup("alice", "", &u, err, sizeof(err)),
	    AUTH_FAIL);
}
END_TEST

/* The privilege drop. */

START_TEST(test_auth_become_not_root_is_noop)
{
	struct auth_user u;
	uid_t uid = getuid(), euid = geteuid();
	gid_t gid = getgid();
	char err[256];

	if (geteuid() == 0)
		return;		/* see test_auth_become_as_root */
	memset(&u, 0, sizeof(u));
	(void)snprintf(u.name, sizeof(u.name), "someone");
	u.uid = uid + 1;
	u.gid = gid + 1;
	u.have_ids = 1;
	ck_assert_int_eq(auth_become(&u, err, sizeof(err)), 0);
	u.uid = 0;
	u.gid = 0;
	ck_assert_int_eq(auth_become(&u, err, sizeof(err)), 0);
	u.have_ids = 0;
	ck_assert_int_eq(auth_become(&u, err, sizeof(err)), 0);
	ck_assert_uint_eq(getuid(), uid);
	ck_assert_uint_eq(geteuid(), euid);
	ck_assert_uint_eq(getgid(), gid);
}
END_TEST

/*
 * In a child running as root: refuse uid 0 and missing ids, then become
 * nobody for good.  Returns 0, or the number of the check that failed.
 */
static int
become_as_root(void)
{
	struct auth_user u;
	gid_t groups[8];
	uid_t uid;
	gid_t gid;
	char err[256];

	fixture_mail_ids(&uid, &gid);
	memset(&u, 0, sizeof(u));
	(void)snprintf(u.name, sizeof(u.name), "toor");
	u.have_ids = 1;
	err[0] = '\0';
	if (auth_become(&u, err, sizeof(err)) != -1)
		return 1;
	if (strstr(err, "uid 0") == NULL || geteuid() != 0)
		return 2;
	u.uid = uid;
	u.gid = gid;
	u.have_ids = 0;
	err[0] = '\0';
	if (auth_become(&u, err, sizeof(err)) != -1 || err[0] == '\0' ||
	    geteuid() != 0)
		return 3;
	u.have_ids = 1;
	if (auth_become(&u, err, sizeof(err)) != 0)
		return 4;
	if (getuid() != uid || geteuid() != uid || getgid() != gid ||
	    getegid() != gid)
		return 5;
	if (getgroups(8, groups) != 1 || groups[0] != gid)
		return 6;
	if (setuid(0) != -1 || seteuid(0) != -1)
		return 7;
	return 0;
}

START_TEST(test_auth_become_as_root)
{
	int status;
	pid_t pid;

	if (geteuid() != 0)
		return;		/* see test_auth_become_not_root_is_noop */
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0)
		_exit(become_as_root());
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "check %d of the privilege drop failed",
	    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	ck_assert_uint_eq(geteuid(), 0);
}
END_TEST

Suite *
auth_suite(void)
{
	Suite *s = suite_create("auth");
	TCase *tc;

	tc = tcase_create("name");
	tcase_add_loop_test(tc, test_auth_name_valid, 0,
	    (int)(sizeof(names) / sizeof(names[0])));
	tcase_add_test(tc, test_auth_name_length_limit);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse");
	tcase_add_test(tc, test_auth_parse_full_line);
	tcase_add_test(tc, test_auth_parse_comment_and_blank);
	tcase_add_test(tc, test_auth_parse_name_and_password_only);
	tcase_add_test(tc, test_auth_parse_partial_fields);
	tcase_add_test(tc, test_auth_parse_extra_fields);
	tcase_add_test(tc, test_auth_parse_malformed);
	suite_add_tcase(s, tc);

	tc = tcase_create("password");
	tcase_add_test(tc, test_auth_password_plain);
	tcase_add_test(tc, test_auth_password_hash_made_here);
	tcase_add_test(tc, test_auth_password_dovecot_schemes);
	tcase_add_test(tc, test_auth_password_unknown_scheme);
	tcase_add_test(tc, test_auth_password_locked_or_broken);
	tcase_add_test(tc, test_auth_wipe);
	tcase_set_timeout(tc, 20);
	suite_add_tcase(s, tc);

	tc = tcase_create("passwd-file");
	tcase_add_checked_fixture(tc, auth_setup, auth_teardown);
	tcase_add_test(tc, test_auth_file_ok);
	tcase_add_test(tc, test_auth_file_wrong_password_and_unknown_user_fail);
	tcase_add_test(tc, test_auth_file_first_entry_wins);
	tcase_add_test(tc, test_auth_file_malformed_lines_skipped);
	tcase_add_test(tc, test_auth_file_long_line_skipped);
	tcase_add_test(tc, test_auth_file_line_near_limit_accepted);
	tcase_add_test(tc, test_auth_read_lines);
	tcase_add_test(tc, test_auth_file_nul_line_skipped);
	tcase_add_test(tc, test_auth_file_last_line_without_newline);
	tcase_add_test(tc, test_auth_file_ids);
	tcase_add_test(tc, test_auth_file_missing_is_temp);
	tcase_add_test(tc, test_auth_file_empty);
	tcase_set_timeout(tc, 20);
	suite_add_tcase(s, tc);

	tc = tcase_create("become");
	tcase_add_test(tc, test_auth_become_not_root_is_noop);
	tcase_add_test(tc, test_auth_become_as_root);
	suite_add_tcase(s, tc);
	return s;
}
