/*
 * check_fmt.c: tests of fmt.c, snprintf for the conversions pop3d uses.
 *
 * libc's snprintf is the reference: every supported conversion must give
 * the same return value and the same octets, in buffers of every size
 * from none to more than enough.  Conversions fmt_buf() does not know
 * must fail, with what came before them terminated.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "../fmt.h"
#include "check_pop3d.h"

/* Random conversions the random test compares. */
#define RANDOM_ROUNDS	20000
/* The largest buffer the comparisons use: more than any result. */
#define CMP_MAX		200

/*
 * The format strings of the random test are built at run time, which
 * -Wformat=2 would refuse: the checks below hold the argument types to
 * the conversion by hand.
 */
#pragma GCC diagnostic ignored "-Wformat-nonliteral"

static void	same(const char *, int, const char *, int, const char *,
		    size_t);

/*
 * Compare fmt_buf() with snprintf() for one format and its arguments,
 * in buffers of every size from 0 to CMP_MAX.
 */
#define SAME(...) do {							\
	char want_[CMP_MAX], got_[CMP_MAX];				\
	int wn_, gn_;							\
	size_t size_;							\
									\
	for (size_ = 0; size_ <= CMP_MAX; size_++) {			\
		memset(want_, 'W', sizeof(want_));			\
		memset(got_, 'W', sizeof(got_));			\
		wn_ = snprintf(size_ ? want_ : NULL, size_, __VA_ARGS__); \
		gn_ = fmt_buf(size_ ? got_ : NULL, size_, __VA_ARGS__);	\
		same(want_, wn_, got_, gn_, #__VA_ARGS__, size_);	\
	}								\
} while (0)

static void
same(const char *want, int wn, const char *got, int gn, const char *what,
    size_t size)
{
	char a[4 * CMP_MAX + 8], b[4 * CMP_MAX + 8];

	ck_assert_msg(gn == wn, "%s, size %zu: returned %d, snprintf %d",
	    what, size, gn, wn);
	/* What was stored, its terminator, and the rest left alone. */
	ck_assert_msg(memcmp(got, want, CMP_MAX) == 0,
	    "%s, size %zu: \"%s\", snprintf \"%s\"", what, size,
	    tbuf_escape(got, CMP_MAX, a, sizeof(a)),
	    tbuf_escape(want, CMP_MAX, b, sizeof(b)));
}

START_TEST(test_fmt_plain)
{
	SAME("%s", "");
	SAME("no conversion at all");
	SAME("100%% sure");
	SAME("%s%s", "ab", "cd");
	SAME("+OK %s ready %s", "pop3d", "<1.2@host>");
	SAME("%.64s|", "a long line that is cut at sixty-four octets by its "
	    "precision, the rest never shows");
	SAME("%.*s|%.*s|%.*s", 3, "abcdef", 0, "abc", -1, "whole");
	SAME("%.*s", 5, "ab");
	SAME("[%8s][%-8s][%*s][%*s]", "ab", "ab", 6, "x", -6, "x");
	SAME("%c%c%c", 'a', 0, 0xff);
	SAME("%s%c%s%c%s%c", "user", 0, "name", 0, "secret", 0);
	SAME("[%5c][%-3c]", 'x', 'y');
}
END_TEST

START_TEST(test_fmt_numbers)
{
	SAME("%d %d %d %d %d", 0, 1, -1, INT_MAX, INT_MIN);
	SAME("%i %u %u %u", -42, 0u, 7u, UINT_MAX);
	SAME("%ld %ld %ld", 0L, LONG_MAX, LONG_MIN);
	SAME("%lld %lld %lld", -1LL, LLONG_MAX, LLONG_MIN);
	SAME("%lu %llu %zu", ULONG_MAX, ULLONG_MAX, SIZE_MAX);
	SAME("%zu octets", (size_t)67108864);
	SAME("%x %X %lx %llx %zx", 0xdeadbeefu, 0xdeadbeefu, 0xabcUL,
	    ULLONG_MAX, (size_t)0);
	SAME("%08X|%016llx|%08lx|%02x|%09ld", 0x1a2bu, 0x123456789abcULL,
	    0x0UL, 0xfu, -12345L);
	SAME("[%5d][%-5d][%05d][%05d]", 42, 42, 42, -42);
	SAME("[%*d][%*d][%0*u]", 4, 7, -4, 7, 6, 12u);
	SAME("[%1d][%2d][%3d]", -100, -100, -100);
	SAME("%u.%lu@%s", 1700000037u, 7919UL, "host");
}
END_TEST

START_TEST(test_fmt_truncated)
{
	char buf[8];

	/* Every size is compared by SAME; here the plain facts. */
	memset(buf, 'x', sizeof(buf));
	ck_assert_int_eq(fmt_buf(buf, sizeof(buf), "%s", "0123456789"), 10);
	ck_assert_str_eq(buf, "0123456");
	memset(buf, 'x', sizeof(buf));
	ck_assert_int_eq(fmt_buf(buf, 1, "%d", 12345), 5);
	ck_assert_int_eq(buf[0], '\0');
	ck_assert_int_eq(buf[1], 'x');
	ck_assert_int_eq(fmt_buf(NULL, 0, "%llu", ULLONG_MAX), 20);
}
END_TEST

/* What fmt_buf() does not know fails, and keeps what came before. */
START_TEST(test_fmt_unknown)
{
	static const char *const bad[] = {
		"ab%n", "ab%f", "ab%p", "ab%hd", "ab%hhu", "ab%zd", "ab%jd",
		"ab%+d", "ab% d", "ab%#x", "ab%.3d", "ab%.2c", "ab%lc",
		"ab%ls", "ab%lllu", "ab%lzu", "ab%o", "ab%", "ab%-",
		"ab%5", "ab%2147483648d", "ab%.2147483648s", "ab%q",
	};
	char buf[16];
	size_t i;
	int n = 5;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(buf, 'x', sizeof(buf));
		ck_assert_msg(fmt_buf(buf, sizeof(buf), bad[i], &n, "s", 1.0)
		    == -1, "%s", bad[i]);
		ck_assert_msg(strcmp(buf, "ab") == 0, "%s: \"%s\"", bad[i],
		    buf);
	}
	ck_assert_int_eq(n, 5);	/* %n wrote nothing */
	/* A result longer than INT_MAX fails as well (the width is not a
	 * constant, which the compiler would refuse). */
	n = (int)strtol("2147483647", NULL, 10);
	ck_assert_int_eq(fmt_buf(buf, sizeof(buf), "x%*d", n, 1), -1);
	ck_assert_str_eq(buf, "x              ");
}
END_TEST

/* One of the array a, at random. */
#define PICK(a)	((a)[(size_t)random() % (sizeof(a) / sizeof((a)[0]))])

/* Random flags, widths, precisions, lengths and values. */
START_TEST(test_fmt_random)
{
	static const char *const flags[] = { "", "-", "0", "-0", "0-", "00" };
	static const char *const widths[] = { "", "1", "2", "7", "19", "21",
	    "*" };
	static const char *const convs[] = { "d", "i", "u", "x", "X", "ld",
	    "lu", "lx", "lld", "llu", "llX", "zu", "zx", "c", "s", ".3s",
	    ".*s", ".0s", "%" };
	static const char *const words[] = { "", "a", "pop3d", "+OK ready",
	    "a string of some length" };
	char f[64], want[CMP_MAX], got[CMP_MAX];
	const char *conv, *width, *word;
	unsigned long long r;
	int i, wn, gn, star, w, p;
	size_t size;

	srandom(42);
	for (i = 0; i < RANDOM_ROUNDS; i++) {
		conv = PICK(convs);
		width = PICK(widths);
		star = strcmp(width, "*") == 0;
		(void)snprintf(f, sizeof(f), "<%%%s%s%s>", PICK(flags), width,
		    conv);
		r = ((unsigned long long)random() << 33) ^
		    ((unsigned long long)random() << 11) ^
		    (unsigned long long)random();
		r >>= random() % 64;
		size = (size_t)random() % 40;
		w = (int)(random() % 41) - 20;
		p = (int)(random() % 9) - 2;
		word = PICK(words);
		memset(want, 'W', sizeof(want));
		memset(got, 'W', sizeof(got));
		/* A '*' width comes first, then a ".*" precision. */
#define BOTH(...) do {							\
	wn = snprintf(want, size, f, __VA_ARGS__);			\
	gn = fmt_buf(got, size, f, __VA_ARGS__);			\
} while (0)
#define ONE(v) do {							\
	if (star)							\
		BOTH(w, v);						\
	else								\
		BOTH(v, 0);						\
} while (0)
		if (strcmp(conv, "%") == 0)
			BOTH(0);
		else if (strcmp(conv, "d") == 0 || strcmp(conv, "i") == 0)
			ONE((int)r);
		else if (strcmp(conv, "u") == 0 || strcmp(conv, "x") == 0 ||
		    strcmp(conv, "X") == 0)
			ONE((unsigned)r);
		else if (strcmp(conv, "ld") == 0)
			ONE((long)r);
		else if (conv[0] == 'l' && conv[1] != 'l')
			ONE((unsigned long)r);
		else if (strcmp(conv, "lld") == 0)
			ONE((long long)r);
		else if (conv[0] == 'l')
			ONE(r);
		else if (conv[0] == 'z')
			ONE((size_t)r);
		else if (strcmp(conv, "c") == 0)
			ONE((int)(unsigned char)r);
		else if (strcmp(conv, ".*s") == 0 && star)
			BOTH(w, p, word);
		else if (strcmp(conv, ".*s") == 0)
			BOTH(p, word);
		else
			ONE(word);
#undef ONE
#undef BOTH
		same(want, wn, got, gn, f, size);
	}
}
END_TEST

Suite *
fmt_suite(void)
{
	Suite *s = suite_create("fmt");
	TCase *tc = tcase_create("fmt");

	tcase_add_test(tc, test_fmt_plain);
	tcase_add_test(tc, test_fmt_numbers);
	tcase_add_test(tc, test_fmt_truncated);
	tcase_add_test(tc, test_fmt_unknown);
	tcase_add_test(tc, test_fmt_random);
	suite_add_tcase(s, tc);
	return s;
}
