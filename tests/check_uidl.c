/*
 * check_uidl.c: tests of uidl.c, the UIDLs of Dovecot and Courier read
 * from their files in a Maildir.
 *
 * Each test writes the files into a fresh mkdtemp() directory (a checked
 * fixture).  The first samples of each format are what Dovecot 2.3.19's
 * pop3 and Courier 1.0.16's courierpop3d wrote for a Maildir of two
 * messages, with the ids their UIDL listings gave.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "../uidl.h"
#include "check_pop3d.h"

/* The messages of the 100,000-line files. */
#define SCALE_COUNT	100000
/* Seconds the 100,000-line tests may take, sanitizers included. */
#define SCALE_TIMEOUT	60

static char	tmpdir[FIXTURE_PATH_MAX];

static void	uidl_setup(void);
static void	uidl_teardown(void);
static struct uidl_map *load_ok(enum uidl_source);
static void	load_fails(enum uidl_source, const char *);
static void	expect_id(const struct uidl_map *, const char *, const char *);
static void	expect_none(const struct uidl_map *, const char *);
static void	expect_unchanged(const char *, const struct tbuf *);

static void
uidl_setup(void)
{
	fixture_mkdtemp(tmpdir, sizeof(tmpdir), "uidl");
}

static void
uidl_teardown(void)
{
	fixture_rmtree(tmpdir);
}

static struct uidl_map *
load_ok(enum uidl_source src)
{
	struct uidl_map *m = NULL;
	char err[1024] = "";

	ck_assert_msg(uidl_map_load(&m, tmpdir, src, err, sizeof(err)) == 0,
	    "uidl_map_load %s: %s", uidl_source_name(src), err);
	return m;
}

/* Loading fails, and err has want in it. */
static void
load_fails(enum uidl_source src, const char *want)
{
	struct uidl_map *m = (struct uidl_map *)1;
	char err[1024] = "";

	ck_assert_msg(uidl_map_load(&m, tmpdir, src, err, sizeof(err)) == -1,
	    "%s loaded, wanted \"%s\"", uidl_source_name(src), want);
	ck_assert_ptr_null(m);
	ck_assert_msg(strstr(err, want) != NULL, "error \"%s\", want \"%s\"",
	    err, want);
}

static void
expect_id(const struct uidl_map *m, const char *base, const char *want)
{
	const char *id;
	size_t len = 0;

	id = uidl_map_find(m, base, strlen(base), &len);
	ck_assert_msg(id != NULL, "no id for %s, want %s", base, want);
	ck_assert_msg(len == strlen(want) && memcmp(id, want, len) == 0,
	    "id of %s: \"%.*s\", want \"%s\"", base, (int)len, id, want);
	ck_assert_int_eq(id[len], '\0');
}

static void
expect_none(const struct uidl_map *m, const char *base)
{
	size_t len = 0;
	const char *id;

	id = uidl_map_find(m, base, strlen(base), &len);
	ck_assert_msg(id == NULL, "id \"%s\" for %s, want none", id, base);
}

/* The file is as it was before loading: the map only reads. */
static void
expect_unchanged(const char *name, const struct tbuf *before)
{
	struct tbuf after = { 0 };

	fixture_read(tmpdir, name, &after);
	ck_assert_uint_eq(before->len, after.len);
	ck_assert_int_eq(memcmp(before->data, after.data, before->len), 0);
	tbuf_free(&after);
}

START_TEST(test_uidl_source_names)
{
	static const char *const names[] = {
		"own", "dovecot", "courier", "qmail", "auto"
	};
	static const char *const bad[] = {
		"", "Dovecot", "dovecot ", "courier-imap", "none", "qmail:",
		NULL
	};
	enum uidl_source src;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		ck_assert_int_eq(uidl_source_parse(names[i], &src), 0);
		ck_assert_str_eq(uidl_source_name(src), names[i]);
	}
	ck_assert_int_eq(uidl_source_parse("dovecot", &src), 0);
	ck_assert_int_eq(src, UIDL_DOVECOT);
	ck_assert_int_eq(uidl_source_parse("own", &src), 0);
	ck_assert_int_eq(src, UIDL_OWN);
	for (i = 0; bad[i] != NULL; i++)
		ck_assert_msg(uidl_source_parse(bad[i], &src) == -1,
		    "accepted \"%s\"", bad[i]);
}
END_TEST

/* What Dovecot 2.3.19 wrote; its UIDL gave 000000016b0b3d1f first. */
START_TEST(test_uidl_dovecot_v3)
{
	struct tbuf before = { 0 };
	struct uidl_map *m;

	fixture_writestr(tmpdir, "dovecot-uidlist",
	    "3 V1795898655 N4 Gf53f422e1f3d0b6bd779000083ecc375\n"
	    "1 W20 :1700000001.M1P1.host\n"
	    "2 W21 :1700000002.M2P1.host,S=18\n"
	    "3 S300 W310 G0123456789abcdef0123456789abcdef "
	    ":1700000003.M3P1.host,S=300,W=310\n");
	fixture_read(tmpdir, "dovecot-uidlist", &before);
	m = load_ok(UIDL_DOVECOT);
	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(uidl_map_count(m), 3);
	ck_assert_uint_eq(uidl_map_skipped(m, NULL), 0);
	ck_assert_ptr_nonnull(strstr(uidl_map_path(m), "/dovecot-uidlist"));
	expect_id(m, "1700000001.M1P1.host", "000000016b0b3d1f");
	expect_id(m, "1700000002.M2P1.host", "000000026b0b3d1f");
	expect_id(m, "1700000003.M3P1.host", "000000036b0b3d1f");
	expect_none(m, "1700000001.M1P1");
	expect_none(m, "1700000001.M1P1.hostx");
	expect_none(m, "1700000004.M4P1.host");
	expect_none(m, "");
	uidl_map_free(m);
	expect_unchanged("dovecot-uidlist", &before);
	tbuf_free(&before);
}
END_TEST

START_TEST(test_uidl_dovecot_hex_width)
{
	struct uidl_map *m;

	fixture_writestr(tmpdir, "dovecot-uidlist",
	    "3 V4294967295 N4294967295\n"
	    "255 :a\n"
	    "4294967294 :b\n");
	m = load_ok(UIDL_DOVECOT);
	expect_id(m, "a", "000000ffffffffff");
	expect_id(m, "b", "fffffffeffffffff");
	uidl_map_free(m);
}
END_TEST

/* A P field is the id; an empty P is the name up to ':'. */
START_TEST(test_uidl_dovecot_p_fields)
{
	struct uidl_map *m;

	fixture_writestr(tmpdir, "dovecot-uidlist",
	    "3 V7 N20 Gabc\n"
	    "1 PUID5-1234 :1700000001.M1P1.host,S=10\n"
	    "2 O1 Pqmail-style-id W99 :1700000002.M2P1.host\n"
	    "3 P :1700000003.M3P1.host,S=5,W=6\n"
	    "4 Pfirst Psecond :1700000004.M4P1.host\n"
	    "5 x-not-a-key !junk :1700000005.M5P1.host\n"
	    "6 P:colon:in:id :1700000006.M6P1.host\n");
	m = load_ok(UIDL_DOVECOT);
	ck_assert_uint_eq(uidl_map_count(m), 6);
	expect_id(m, "1700000001.M1P1.host", "UID5-1234");
	expect_id(m, "1700000002.M2P1.host", "qmail-style-id");
	expect_id(m, "1700000003.M3P1.host",
	    "1700000003.M3P1.host,S=5,W=6");
	expect_id(m, "1700000004.M4P1.host", "first");
	expect_id(m, "1700000005.M5P1.host", "0000000500000007");
	expect_id(m, "1700000006.M6P1.host", ":colon:in:id");
	uidl_map_free(m);
}
END_TEST

START_TEST(test_uidl_dovecot_v1)
{
	struct uidl_map *m;

	fixture_writestr(tmpdir, "dovecot-uidlist",
	    "1 1234 10\n"
	    "3 1700000001.M1P1.host:2,S\n"
	    "7  1700000002.M2P1.host,S=99\n"
	    "9 1700000003.M3P1.host\n");
	m = load_ok(UIDL_DOVECOT);
	ck_assert_uint_eq(uidl_map_count(m), 3);
	expect_id(m, "1700000001.M1P1.host", "00000003000004d2");
	expect_id(m, "1700000002.M2P1.host", "00000007000004d2");
	expect_id(m, "1700000003.M3P1.host", "00000009000004d2");
	uidl_map_free(m);
}
END_TEST

/* Dovecot keeps the later line of a name listed twice. */
START_TEST(test_uidl_dovecot_duplicate_name)
{
	struct uidl_map *m;

	fixture_writestr(tmpdir, "dovecot-uidlist",
	    "3 V16 N9\n"
	    "1 :b\n"
	    "2 :a,S=1\n"
	    "5 :c\n"
	    "8 :a,S=2\n");
	m = load_ok(UIDL_DOVECOT);
	ck_assert_uint_eq(uidl_map_count(m), 3);
	expect_id(m, "a", "0000000800000010");
	expect_id(m, "b", "0000000100000010");
	expect_id(m, "c", "0000000500000010");
	uidl_map_free(m);
}
END_TEST

/* A header only: a map with nothing in it. */
START_TEST(test_uidl_dovecot_empty_mailbox)
{
	struct uidl_map *m;

	fixture_writestr(tmpdir, "dovecot-uidlist", "3 V1 N1 G00\n");
	m = load_ok(UIDL_DOVECOT);
	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(uidl_map_count(m), 0);
	expect_none(m, "a");
	uidl_map_free(m);
}
END_TEST

/* A last line without its newline is being appended: left out. */
START_TEST(test_uidl_dovecot_partial_last_line)
{
	struct uidl_map *m;

	fixture_writestr(tmpdir, "dovecot-uidlist", "3 V1 N5\n1 :a\n2 :b");
	m = load_ok(UIDL_DOVECOT);
	ck_assert_uint_eq(uidl_map_count(m), 1);
	expect_id(m, "a", "0000000100000001");
	expect_none(m, "b");
	uidl_map_free(m);
}
END_TEST

START_TEST(test_uidl_dovecot_malformed)
{
	static const struct {
		const char	*text;
		const char	*err;
	} bad[] = {
		{ "", "dovecot-uidlist line 1: no header line" },
		{ "3 V1 N5", "line 1: no header line" },
		{ "2 V1 N5\n",
		    "line 1: unsupported dovecot-uidlist version 2" },
		{ "x\n", "line 1: not a dovecot-uidlist header" },
		{ "3\n", "line 1: not a dovecot-uidlist header" },
		{ "31 V1 N5\n", "line 1: not a dovecot-uidlist header" },
		{ "3 N5 Gab\n", "line 1: no uidvalidity or next uid" },
		{ "3 V1\n", "line 1: no uidvalidity or next uid" },
		{ "3 V0 N5\n", "line 1: no uidvalidity or next uid" },
		{ "3 V12x N5\n", "line 1: malformed V field" },
		{ "3 V N5\n", "line 1: malformed V field" },
		{ "3 V4294967296 N5\n", "line 1: malformed V field" },
		{ "3 V1 N-5\n", "line 1: malformed N field" },
		{ "1 5\n", "line 1: malformed version 1 header" },
		{ "1 5 6 7\n", "line 1: malformed version 1 header" },
		{ "1 5 0\n", "line 1: no uidvalidity or next uid" },
		{ "3 V1 N5\n\n", "line 2: malformed uid" },
		{ "3 V1 N5\n0 :a\n", "line 2: malformed uid" },
		{ "3 V1 N5\n-1 :a\n", "line 2: malformed uid" },
		{ "3 V1 N5\n1:a\n", "line 2: malformed uid" },
		{ "3 V1 N5\n1\n", "line 2: malformed uid" },
		{ "3 V1 N5\n4294967295 :a\n", "line 2: malformed uid" },
		{ "3 V1 N5\n99999999999999999999999 :a\n",
		    "line 2: malformed uid" },
		{ "3 V1 N5\n2 :a\n2 :b\n", "line 3: uid 2 not above 2" },
		{ "3 V1 N5\n2 :a\n1 :b\n", "line 3: uid 1 not above 2" },
		{ "3 V1 N5\n1 S5 a\n", "line 2: no ':' before the file name" },
		{ "3 V1 N5\n1 \n", "line 2: no ':' before the file name" },
		{ "3 V1 N5\n1 :\n", "line 2: no file name" },
		{ "3 V1 N5\n1 :cur/a\n", "line 2: '/' in the file name" },
		{ "1 1 3\n1 a\n3 b\n",
		    "line 3: uid 3 not below the next uid 3" },
		{ "1 1 3\n1 \n", "line 2: no file name" },
		{ NULL, NULL }
	};
	size_t i;

	for (i = 0; bad[i].text != NULL; i++) {
		fixture_writestr(tmpdir, "dovecot-uidlist", bad[i].text);
		load_fails(UIDL_DOVECOT, bad[i].err);
	}
}
END_TEST

START_TEST(test_uidl_dovecot_limits)
{
	struct tbuf b = { 0 };
	char name[8192];

	memset(name, 'x', sizeof(name));
	/* A NUL octet. */
	fixture_write(tmpdir, "dovecot-uidlist", "3 V1 N5\n1 :a\0b\n", 15);
	load_fails(UIDL_DOVECOT, "line 2: NUL octet");
	/* A line of 4097 octets. */
	tbuf_addstr(&b, "3 V1 N5\n1 :");
	tbuf_add(&b, name, 4097 - 3);
	tbuf_addstr(&b, "\n");
	fixture_write(tmpdir, "dovecot-uidlist", b.data, b.len);
	load_fails(UIDL_DOVECOT, "line 2: longer than 4096 octets");
	/* 4096 are a line, but not a file name. */
	tbuf_reset(&b);
	tbuf_addstr(&b, "3 V1 N5\n1 :");
	tbuf_add(&b, name, 4096 - 3);
	tbuf_addstr(&b, "\n");
	fixture_write(tmpdir, "dovecot-uidlist", b.data, b.len);
	load_fails(UIDL_DOVECOT, "line 2: file name longer than 255 octets");
	/* A name of 255 octets is one. */
	tbuf_reset(&b);
	tbuf_addstr(&b, "3 V1 N5\n1 :");
	tbuf_add(&b, name, 255);
	tbuf_addstr(&b, "\n");
	fixture_write(tmpdir, "dovecot-uidlist", b.data, b.len);
	uidl_map_free(load_ok(UIDL_DOVECOT));
	tbuf_free(&b);
}
END_TEST

/* Ids that are not valid UIDLs are left out, with the first reason. */
START_TEST(test_uidl_dovecot_invalid_ids_skipped)
{
	char text[1024], id70[71], id71[72];
	struct uidl_map *m;
	const char *why;

	memset(id70, 'a', 70);
	id70[70] = '\0';
	memset(id71, 'b', 71);
	id71[71] = '\0';
	(void)snprintf(text, sizeof(text), "3 V1 N20\n"
	    "1 P%s :m1\n"		/* 70 octets: fine */
	    "2 P%s :m2\n"		/* 71 */
	    "3 Pbad\x7f :m3\n"		/* DEL */
	    "4 Pcaf\xc3\xa9 :m4\n"	/* 8-bit */
	    "5 Pa\tb :m5\n"		/* a control */
	    "6 P :m6%s\n"		/* an empty P: the name, too long */
	    "7 :,S=5\n"			/* no unique part */
	    "8 ::2,S\n"
	    "9 :m9\n", id70, id71, id71);
	fixture_writestr(tmpdir, "dovecot-uidlist", text);
	m = load_ok(UIDL_DOVECOT);
	ck_assert_uint_eq(uidl_map_count(m), 2);
	ck_assert_uint_eq(uidl_map_skipped(m, &why), 7);
	ck_assert_msg(strstr(why, "dovecot-uidlist line 3: id longer than "
	    "70 octets") != NULL, "why: %s", why);
	expect_id(m, "m1", id70);
	expect_none(m, "m2");
	expect_none(m, "m3");
	expect_none(m, "m4");
	expect_none(m, "m5");
	expect_id(m, "m9", "0000000900000001");
	uidl_map_free(m);
}
END_TEST

/* What Courier 1.0.16's courierpop3d wrote, and the ids it gave. */
START_TEST(test_uidl_courier_v3)
{
	struct tbuf before = { 0 };
	struct uidl_map *m;

	fixture_writestr(tmpdir, "courierpop3dsizelist",
	    "/3 3 1795898646\n"
	    "1700000001.M1P1.host:2, 20 1:1795898646:0\n"
	    "1700000002.M2P1.host,S=18:2,S 21 2:1795898646:0\n");
	fixture_read(tmpdir, "courierpop3dsizelist", &before);
	m = load_ok(UIDL_COURIER);
	ck_assert_uint_eq(uidl_map_count(m), 2);
	ck_assert_ptr_nonnull(strstr(uidl_map_path(m),
	    "/courierpop3dsizelist"));
	expect_id(m, "1700000001.M1P1.host", "UID1-1795898646");
	expect_id(m, "1700000002.M2P1.host", "UID2-1795898646");
	expect_none(m, "1700000003.M3P1.host");
	uidl_map_free(m);
	expect_unchanged("courierpop3dsizelist", &before);
	tbuf_free(&before);
}
END_TEST

START_TEST(test_uidl_courier_v2_and_forms)
{
	struct uidl_map *m;

	fixture_writestr(tmpdir, "courierpop3dsizelist",
	    "/2 9 100\n"
	    "a:2,S 12 3:100\n"				/* version 2 */
	    "b 1 4:0\n"					/* no uidvalidity */
	    "c d e 5 5:100:1\n"				/* spaces in a name */
	    "f,S=5:2, 5 007:0100:0\n"			/* leading zeros */
	    "g 0 18446744073709551615:18446744073709551615:0\n"
	    "h.x:2,S 5 0:100:0\n"			/* uid 0: the name */
	    "i+x:2,S 5 0:100:0\n");			/* ... encoded */
	m = load_ok(UIDL_COURIER);
	ck_assert_uint_eq(uidl_map_count(m), 6);
	ck_assert_uint_eq(uidl_map_skipped(m, NULL), 1);
	expect_id(m, "a", "UID3-100");
	expect_id(m, "b", "UID4");
	expect_id(m, "c d e", "UID5-100");
	expect_id(m, "f", "UID7-100");
	expect_id(m, "g", "UID18446744073709551615-18446744073709551615");
	expect_id(m, "h.x", "h.x");
	expect_none(m, "i+x");
	uidl_map_free(m);
	/* A header without the uidvalidity is Courier's too. */
	fixture_writestr(tmpdir, "courierpop3dsizelist", "/3 1\na 1 1:2:0\n");
	m = load_ok(UIDL_COURIER);
	expect_id(m, "a", "UID1-2");
	uidl_map_free(m);
}
END_TEST

START_TEST(test_uidl_courier_malformed)
{
	static const struct {
		const char	*text;
		const char	*err;
	} bad[] = {
		{ "", "courierpop3dsizelist line 1: no header line" },
		{ "/3 1 1", "line 1: no header line" },
		{ "3 1 1\n", "line 1: not a courierpop3dsizelist header" },
		{ "/3\n", "line 1: not a courierpop3dsizelist header" },
		{ "/x 1 1\n", "line 1: not a courierpop3dsizelist header" },
		{ "/3 1 x\n", "line 1: malformed uidvalidity" },
		{ "/3 1 1 1\n", "line 1: malformed uidvalidity" },
		{ "/1 1 1\n",
		    "line 1: unsupported courierpop3dsizelist version 1" },
		{ "/4 1 1\n",
		    "line 1: unsupported courierpop3dsizelist version 4" },
		{ "/3 1 1\nname\n", "line 2: fewer than three fields" },
		{ "/3 1 1\nname 1:1:0\n", "line 2: fewer than three fields" },
		{ "/3 1 1\n\n", "line 2: fewer than three fields" },
		{ "/3 1 1\nname x 1:1:0\n", "line 2: malformed size" },
		{ "/3 1 1\nname  1:1:0\n", "line 2: malformed size" },
		{ "/3 1 1\nname 5 1:1:0 \n", "line 2: malformed size" },
		{ "/3 1 1\nname 5 1-1\n", "line 2: malformed uid:uidvalidity" },
		{ "/3 1 1\nname 5 1:\n", "line 2: malformed uid:uidvalidity" },
		{ "/3 1 1\nname 5 1:1:x\n",
		    "line 2: malformed uid:uidvalidity" },
		{ "/3 1 1\nname 5 1:1:0:0\n",
		    "line 2: malformed uid:uidvalidity" },
		{ "/3 1 1\nname 5 18446744073709551616:1:0\n",
		    "line 2: malformed uid:uidvalidity" },
		{ "/3 1 1\n 5 1:1:0\n", "line 2: no file name" },
		{ "/3 1 1\ncur/name 5 1:1:0\n",
		    "line 2: '/' in the file name" },
		{ NULL, NULL }
	};
	size_t i;

	for (i = 0; bad[i].text != NULL; i++) {
		fixture_writestr(tmpdir, "courierpop3dsizelist", bad[i].text);
		load_fails(UIDL_COURIER, bad[i].err);
	}
}
END_TEST

START_TEST(test_uidl_auto)
{
	struct uidl_map *m = (struct uidl_map *)1;
	char err[512] = "";

	/* Nothing there: no map, no error. */
	ck_assert_int_eq(uidl_map_load(&m, tmpdir, UIDL_AUTO, err,
	    sizeof(err)), 0);
	ck_assert_ptr_null(m);
	/* Courier's file alone. */
	fixture_writestr(tmpdir, "courierpop3dsizelist",
	    "/3 2 50\nm1:2,S 5 1:50:0\n");
	m = load_ok(UIDL_AUTO);
	ck_assert_ptr_nonnull(strstr(uidl_map_path(m),
	    "/courierpop3dsizelist"));
	expect_id(m, "m1", "UID1-50");
	uidl_map_free(m);
	/* Both: Dovecot's. */
	fixture_writestr(tmpdir, "dovecot-uidlist", "3 V80 N2\n1 :m1\n");
	m = load_ok(UIDL_AUTO);
	ck_assert_ptr_nonnull(strstr(uidl_map_path(m), "/dovecot-uidlist"));
	expect_id(m, "m1", "0000000100000050");
	uidl_map_free(m);
	/* A damaged dovecot-uidlist is an error, not a reason to guess. */
	fixture_writestr(tmpdir, "dovecot-uidlist", "3 V80 N2\n1 m1\n");
	load_fails(UIDL_AUTO, "dovecot-uidlist line 2: no ':'");
}
END_TEST

/* own and qmail read no file; dovecot and courier need theirs. */
START_TEST(test_uidl_no_file)
{
	static const enum uidl_source srcs[] = {
		UIDL_OWN, UIDL_QMAIL, UIDL_DOVECOT, UIDL_COURIER
	};
	struct uidl_map *m;
	char err[512];
	size_t i, len;

	for (i = 0; i < sizeof(srcs) / sizeof(srcs[0]); i++) {
		m = (struct uidl_map *)1;
		ck_assert_int_eq(uidl_map_load(&m, tmpdir, srcs[i], err,
		    sizeof(err)), 0);
		ck_assert_ptr_null(m);
	}
	fixture_writestr(tmpdir, "dovecot-uidlist", "garbage\n");
	fixture_writestr(tmpdir, "courierpop3dsizelist", "garbage\n");
	for (i = 0; i < 2; i++) {
		m = (struct uidl_map *)1;
		ck_assert_int_eq(uidl_map_load(&m, tmpdir, srcs[i], err,
		    sizeof(err)), 0);
		ck_assert_ptr_null(m);
	}
	/* A missing Maildir is a mailbox never opened. */
	m = (struct uidl_map *)1;
	ck_assert_int_eq(uidl_map_load(&m, "/nonexistent/Maildir",
	    UIDL_DOVECOT, err, sizeof(err)), 0);
	ck_assert_ptr_null(m);
	/* NULL maps. */
	ck_assert_ptr_null(uidl_map_find(NULL, "a", 1, &len));
	ck_assert_uint_eq(uidl_map_count(NULL), 0);
	ck_assert_uint_eq(uidl_map_skipped(NULL, NULL), 0);
	uidl_map_free(NULL);
}
END_TEST

/* A directory, a symbolic link and a FIFO are refused, at once. */
START_TEST(test_uidl_unreadable)
{
	char path[FIXTURE_PATH_MAX], target[FIXTURE_PATH_MAX];

	fixture_mkdir(tmpdir, "dovecot-uidlist");
	load_fails(UIDL_DOVECOT, "dovecot-uidlist: not a regular file");
	fixture_path(path, sizeof(path), tmpdir, "courierpop3dsizelist");
	fixture_path(target, sizeof(target), tmpdir, "elsewhere");
	fixture_writestr(tmpdir, "elsewhere", "/3 2 50\nm1 5 1:50:0\n");
	ck_assert_int_eq(symlink(target, path), 0);
	load_fails(UIDL_COURIER, "courierpop3dsizelist: ");
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	load_fails(UIDL_COURIER, "courierpop3dsizelist: not a regular file");
}
END_TEST

/*
 * A file made for its names to collide, with uidl.c's hash (FNV-1a) and
 * table size (a power of 2, at least twice the lines): 1024 names on
 * one slot are still found, 1025 are refused, not searched for ever.
 */
static uint32_t
fnv1a(const char *s)
{
	uint32_t h = 2166136261U;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619U;
	}
	return h;
}

/* Writes the uidlist; the last name goes into last. */
static void
colliding_uidlist(size_t n, uint32_t mask, char *last, size_t lastlen)
{
	struct tbuf b = { 0 };
	char name[32], line[64];
	size_t k, found = 0;
	int r;

	tbuf_addstr(&b, "3 V1 N99999\n");
	for (k = 0; found < n; k++) {
		(void)snprintf(name, sizeof(name), "m%zu", k);
		if ((fnv1a(name) & mask) != 0)
			continue;
		r = snprintf(line, sizeof(line), "%zu :%s\n", ++found, name);
		ck_assert(r > 0 && (size_t)r < sizeof(line));
		tbuf_addstr(&b, line);
		(void)snprintf(last, lastlen, "%s", name);
	}
	fixture_write(tmpdir, "dovecot-uidlist", b.data, b.len);
	tbuf_free(&b);
}

START_TEST(test_uidl_hash_collisions)
{
	struct uidl_map *m;
	char last[32];

	/* 1025 or 1026 lines: 4096 slots. */
	colliding_uidlist(1024, 4095, last, sizeof(last));
	m = load_ok(UIDL_DOVECOT);
	ck_assert_uint_eq(uidl_map_count(m), 1024);
	expect_id(m, last, "0000040000000001");
	expect_none(m, "m-none");
	uidl_map_free(m);
	colliding_uidlist(1025, 4095, last, sizeof(last));
	load_fails(UIDL_DOVECOT, "line 1026: more than 1024 names that hash "
	    "alike");
}
END_TEST

/* 100,000 messages: one read, then every one found. */
START_TEST(test_uidl_dovecot_100k)
{
	struct tbuf b = { 0 };
	struct uidl_map *m;
	char line[256], base[64], want[32];
	size_t i, len, wrong = 0;
	const char *id;
	int n;

	tbuf_addstr(&b, "3 V1700000000 N200001 "
	    "G0123456789abcdef0123456789abcdef\n");
	for (i = 1; i <= SCALE_COUNT; i++) {
		/* Every tenth line has a P field. */
		if (i % 10 == 0)
			n = snprintf(line, sizeof(line), "%zu Pkeep-%zu W%zu "
			    ":%zu.M%zuP42.host.example.org,S=%zu\n", 2 * i, i,
			    i + 7, 1700000000 + i, i, i + 5);
		else
			n = snprintf(line, sizeof(line), "%zu W%zu "
			    ":%zu.M%zuP42.host.example.org,S=%zu\n", 2 * i,
			    i + 7, 1700000000 + i, i, i + 5);
		ck_assert(n > 0 && (size_t)n < sizeof(line));
		tbuf_add(&b, line, (size_t)n);
	}
	fixture_write(tmpdir, "dovecot-uidlist", b.data, b.len);
	tbuf_free(&b);
	m = load_ok(UIDL_DOVECOT);
	ck_assert_uint_eq(uidl_map_count(m), SCALE_COUNT);
	/* In an order unlike the file's. */
	for (i = SCALE_COUNT; i >= 1; i--) {
		(void)snprintf(base, sizeof(base),
		    "%zu.M%zuP42.host.example.org", 1700000000 + i, i);
		if (i % 10 == 0)
			(void)snprintf(want, sizeof(want), "keep-%zu", i);
		else	/* 1700000000 is 0x6553f100 */
			(void)snprintf(want, sizeof(want), "%08zx6553f100",
			    2 * i);
		id = uidl_map_find(m, base, strlen(base), &len);
		/* One assertion at the end: each one costs a message to
		 * the runner. */
		if (id == NULL || strcmp(id, want) != 0 ||
		    len != strlen(want))
			wrong++;
	}
	ck_assert_uint_eq(wrong, 0);
	expect_none(m, "1700000000.M0P42.host.example.org");
	uidl_map_free(m);
}
END_TEST

START_TEST(test_uidl_courier_100k)
{
	struct tbuf b = { 0 };
	struct uidl_map *m;
	char line[256], base[64], want[32];
	size_t i, len, wrong = 0;
	const char *id;
	int n;

	tbuf_addstr(&b, "/3 100001 1600000000\n");
	for (i = 1; i <= SCALE_COUNT; i++) {
		n = snprintf(line, sizeof(line), "%zu.M%zuP7.mx,S=%zu:2,S "
		    "%zu %zu:1600000000:0\n", 1600000000 + i, i, i, i + 2, i);
		ck_assert(n > 0 && (size_t)n < sizeof(line));
		tbuf_add(&b, line, (size_t)n);
	}
	fixture_write(tmpdir, "courierpop3dsizelist", b.data, b.len);
	tbuf_free(&b);
	m = load_ok(UIDL_COURIER);
	ck_assert_uint_eq(uidl_map_count(m), SCALE_COUNT);
	for (i = 1; i <= SCALE_COUNT; i++) {
		(void)snprintf(base, sizeof(base), "%zu.M%zuP7.mx",
		    1600000000 + i, i);
		(void)snprintf(want, sizeof(want), "UID%zu-1600000000", i);
		id = uidl_map_find(m, base, strlen(base), &len);
		if (id == NULL || strcmp(id, want) != 0 ||
		    len != strlen(want))
			wrong++;
	}
	ck_assert_uint_eq(wrong, 0);
	uidl_map_free(m);
}
END_TEST

Suite *
uidl_suite(void)
{
	Suite *s = suite_create("uidl");
	TCase *tc;

	tc = tcase_create("source");
	tcase_add_checked_fixture(tc, uidl_setup, uidl_teardown);
	tcase_add_test(tc, test_uidl_source_names);
	tcase_add_test(tc, test_uidl_auto);
	tcase_add_test(tc, test_uidl_no_file);
	tcase_add_test(tc, test_uidl_unreadable);
	suite_add_tcase(s, tc);

	tc = tcase_create("dovecot");
	tcase_add_checked_fixture(tc, uidl_setup, uidl_teardown);
	tcase_add_test(tc, test_uidl_dovecot_v3);
	tcase_add_test(tc, test_uidl_dovecot_hex_width);
	tcase_add_test(tc, test_uidl_dovecot_p_fields);
	tcase_add_test(tc, test_uidl_dovecot_v1);
	tcase_add_test(tc, test_uidl_dovecot_duplicate_name);
	tcase_add_test(tc, test_uidl_dovecot_empty_mailbox);
	tcase_add_test(tc, test_uidl_dovecot_partial_last_line);
	tcase_add_test(tc, test_uidl_dovecot_malformed);
	tcase_add_test(tc, test_uidl_dovecot_limits);
	tcase_add_test(tc, test_uidl_dovecot_invalid_ids_skipped);
	suite_add_tcase(s, tc);

	tc = tcase_create("courier");
	tcase_add_checked_fixture(tc, uidl_setup, uidl_teardown);
	tcase_add_test(tc, test_uidl_courier_v3);
	tcase_add_test(tc, test_uidl_courier_v2_and_forms);
	tcase_add_test(tc, test_uidl_courier_malformed);
	suite_add_tcase(s, tc);

	tc = tcase_create("scale");
	tcase_add_checked_fixture(tc, uidl_setup, uidl_teardown);
	tcase_set_timeout(tc, SCALE_TIMEOUT);
	tcase_add_test(tc, test_uidl_hash_collisions);
	tcase_add_test(tc, test_uidl_dovecot_100k);
	tcase_add_test(tc, test_uidl_courier_100k);
	suite_add_tcase(s, tc);
	return s;
}
