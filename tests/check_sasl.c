/*
 * check_sasl.c: strict base64 (base64.c) and SASL PLAIN messages
 * (auth_sasl_plain() in auth.c).
 */
#include <check.h>
#include <string.h>

#include "../auth.h"
#include "../base64.h"
#include "check_pop3d.h"

static ssize_t
decode(const char *in, unsigned char *out, size_t outlen)
{
	return base64_decode(in, strlen(in), out, outlen);
}

START_TEST(test_base64_rfc4648_vectors)
{
	static const char *const vec[][2] = {
		{ "", "" }, { "Zg==", "f" }, { "Zm8=", "fo" }, { "Zm9v", "foo" },
		{ "Zm9vYg==", "foob" }, { "Zm9vYmE=", "fooba" },
		{ "Zm9vYmFy", "foobar" }
	};
	unsigned char out[16];
	size_t i;
	ssize_t n;

	for (i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		n = decode(vec[i][0], out, sizeof(out));
		ck_assert_int_eq(n, (ssize_t)strlen(vec[i][1]));
		ck_assert_int_eq(memcmp(out, vec[i][1], (size_t)n), 0);
	}
	/* All 64 digits, and octets that are not text. */
	n = decode("AAECA/7/+/8=", out, sizeof(out));
	ck_assert_int_eq(n, 8);
	ck_assert_int_eq(memcmp(out, "\x00\x01\x02\x03\xfe\xff\xfb\xff", 8),
	    0);
}
END_TEST

START_TEST(test_base64_rejects_noncanonical)
{
	static const char *const bad[] = {
		"Zg", "Zg=", "Zm9", "Zg=a", "Z===", "====", "Zg==Zg==",
		"Zm9v YmFy", "Zm9v\nYmFy", "Zm9vYmFy ", "Zh==", "Zm9=",
		"Zm-v", "Zm_v", "Zm9v*mFy", NULL
	};
	unsigned char out[32];
	size_t i;

	for (i = 0; bad[i] != NULL; i++)
		ck_assert_msg(decode(bad[i], out, sizeof(out)) == -1,
		    "accepted \"%s\"", bad[i]);
	/* An output buffer too small is refused, not overrun. */
	ck_assert_int_eq(decode("Zm9vYmFy", out, 5), -1);
}
END_TEST

/* auth_sasl_plain on the len octets of msg (which may hold NULs). */
static int
plain(const char *msg, size_t len, const char **authcid,
    const char **password)
{
	static char buf[1024];

	memcpy(buf, msg, len);
	buf[len] = '\0';
	return auth_sasl_plain(buf, len, authcid, password);
}

START_TEST(test_sasl_plain)
{
	const char *c, *p;
	char longname[300];

	ck_assert_int_eq(plain("\0alice\0secret", 13, &c, &p), 0);
	ck_assert_str_eq(c, "alice");
	ck_assert_str_eq(p, "secret");
	ck_assert_int_eq(plain("alice\0alice\0two words", 21, &c, &p), 0);
	ck_assert_str_eq(p, "two words");
	/* Another authzid, fields missing or empty, one NUL too many. */
	ck_assert_int_eq(plain("bob\0alice\0secret", 16, &c, &p), -1);
	ck_assert_int_eq(plain("\0alice", 6, &c, &p), -1);
	ck_assert_int_eq(plain("alice\0secret", 12, &c, &p), -1);
	ck_assert_int_eq(plain("\0\0secret", 8, &c, &p), -1);
	ck_assert_int_eq(plain("\0alice\0", 7, &c, &p), -1);
	ck_assert_int_eq(plain("\0alice\0sec\0ret", 14, &c, &p), -1);
	ck_assert_int_eq(plain("", 0, &c, &p), -1);
	/* Fields of more than 255 octets. */
	memset(longname, 'a', sizeof(longname));
	longname[0] = '\0';
	longname[257] = '\0';
	ck_assert_int_eq(plain(longname, 262, &c, &p), -1);
}
END_TEST

Suite *
sasl_suite(void)
{
	Suite *s = suite_create("sasl");
	TCase *tc = tcase_create("decode");

	tcase_add_test(tc, test_base64_rfc4648_vectors);
	tcase_add_test(tc, test_base64_rejects_noncanonical);
	tcase_add_test(tc, test_sasl_plain);
	suite_add_tcase(s, tc);
	return s;
}
