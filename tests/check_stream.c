/*
 * check_stream.c: tests of stream.c, the POP3 form of a message.
 *
 * The expected output comes from a converter written in the plainest way,
 * one octet at a time (ref_convert), and from a size formula that does
 * not convert at all (ref_size).  Fixed cases pin the exact octets; split
 * feeds check that chunk boundaries change nothing; random inputs from a
 * fixed seed compare stream.c against the reference.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "../pop3d.h"
#include "../stream.h"
#include "check_pop3d.h"

/* Random inputs: how many, and how long at most. */
#define RANDOM_CASES	4000
#define RANDOM_LEN	48
/* Long messages for the sizer: a few of its 4080-octet rows. */
#define LONG_CASES	400
#define LONG_LEN	(3 * 4080 + 37)	/* odd */
/* Messages of many reads for RETR in place. */
#define DIRECT_CASES	40
/* Past what TOP reads first (4096). */
#define TOP_HEADER_LEN	4096

struct conv_case {
	const char	*in;
	size_t		 in_len;
	const char	*out;		/* RETR form, stuffing included */
	size_t		 out_len;
	uint64_t	 size;
};

#define CASE(i, o, n)	{ i, sizeof(i) - 1, o, sizeof(o) - 1, n }

/* The conversion rules of stream.h, one case each. */
static const struct conv_case conv_cases[] = {
	CASE("", "", 0),
	CASE("a\nb\n", "a\r\nb\r\n", 6),			/* LF */
	CASE("a\r\nb\r\n", "a\r\nb\r\n", 6),			/* CRLF */
	CASE("a\r\nb\nc\r\n", "a\r\nb\r\nc\r\n", 9),		/* mixed */
	CASE("a\nb", "a\r\nb\r\n", 6),			/* no final LF */
	CASE("\n", "\r\n", 2),
	CASE("\n\n", "\r\n\r\n", 4),
	CASE(".\n", "..\r\n", 3),				/* lone dot */
	CASE(".\r\n", "..\r\n", 3),
	CASE("..\n", "...\r\n", 4),
	CASE(".", "..\r\n", 3),				/* dot at EOF */
	CASE("a\n.\nb\n", "a\r\n..\r\nb\r\n", 9),
	CASE("a.\n.b\n", "a.\r\n..b\r\n", 8),
	CASE("a\r", "a\r\r\n", 4),				/* CR at EOF */
	CASE("\r", "\r\r\n", 3),
	CASE("a\rb\n", "a\rb\r\n", 5),				/* lone CR */
	CASE("\r\r\n", "\r\r\n", 3),
	CASE("\n\r\n", "\r\n\r\n", 4),
	CASE("a\0b\n", "a\0b\r\n", 5),				/* NUL */
	CASE("\0", "\0\r\n", 3),
	CASE(".\0\n", "..\0\r\n", 4),
};

/* TOP n on one message. */
struct top_case {
	const char	*in;
	size_t		 in_len;
	long		 lines;
	const char	*out;
	size_t		 out_len;
};

#define TOP(i, n, o)	{ i, sizeof(i) - 1, n, o, sizeof(o) - 1 }
#define MSG_LF		"H: 1\nH: 2\n\nb1\n.b2\nb3\n"
#define MSG_CRLF	"H: 1\r\nH: 2\r\n\r\nb1\r\n.b2\r\nb3\r\n"

static const struct top_case top_cases[] = {
	TOP(MSG_LF, 0, "H: 1\r\nH: 2\r\n\r\n"),
	TOP(MSG_LF, 1, "H: 1\r\nH: 2\r\n\r\nb1\r\n"),
	TOP(MSG_LF, 2, "H: 1\r\nH: 2\r\n\r\nb1\r\n..b2\r\n"),
	TOP(MSG_LF, 3, "H: 1\r\nH: 2\r\n\r\nb1\r\n..b2\r\nb3\r\n"),
	TOP(MSG_LF, 1000, "H: 1\r\nH: 2\r\n\r\nb1\r\n..b2\r\nb3\r\n"),
	TOP(MSG_CRLF, 0, "H: 1\r\nH: 2\r\n\r\n"),
	TOP(MSG_CRLF, 1, "H: 1\r\nH: 2\r\n\r\nb1\r\n"),
	TOP(MSG_CRLF, 1000, "H: 1\r\nH: 2\r\n\r\nb1\r\n..b2\r\nb3\r\n"),
	/* A blank line of "\r\n" after LF headers, and the other way. */
	TOP("H: 1\n\r\nb1\nb2\n", 1, "H: 1\r\n\r\nb1\r\n"),
	TOP("H: 1\r\n\nb1\r\nb2\r\n", 1, "H: 1\r\n\r\nb1\r\n"),
	/* No blank line: all of it is header. */
	TOP("H: 1\nH: 2\n", 0, "H: 1\r\nH: 2\r\n"),
	TOP("H: 1\nH: 2", 0, "H: 1\r\nH: 2\r\n"),
	/* Lines that only look blank. */
	TOP("H: 1\n \nb1\n\nb2\n", 0, "H: 1\r\n \r\nb1\r\n\r\n"),
	TOP("H: 1\n\r\r\nb1\n\nb2\n", 0, "H: 1\r\n\r\r\nb1\r\n\r\n"),
	TOP("H: 1\n.\nb1\n\nb2\n", 0, "H: 1\r\n..\r\nb1\r\n\r\n"),
	/* The blank line comes first; a last body line without LF. */
	TOP("\nb1\nb2\n", 1, "\r\nb1\r\n"),
	TOP("H: 1\n\nb1", 1, "H: 1\r\n\r\nb1\r\n"),
	TOP("H: 1\n\nb1", 0, "H: 1\r\n\r\n"),
	/* Empty body lines count as lines. */
	TOP("H: 1\n\n\n\nb3\n", 2, "H: 1\r\n\r\n\r\n\r\n"),
	TOP("", 0, ""),
};

static uint32_t	rng_next(uint32_t *);
static void	random_message(uint32_t *, char *, size_t *);
static void	text_message(uint32_t *, char *, size_t, size_t *);
static uint64_t	ref_size(const char *, size_t);
static void	unstuff(const char *, size_t, struct tbuf *);
static void	crlf_to_lf(const char *, size_t, struct tbuf *);
static void	convert_once(const char *, size_t, long, struct tbuf *);
static void	convert_split(const char *, size_t, long, const size_t *,
		    size_t, struct tbuf *);
static uint64_t	size_once(const char *, size_t);
static uint64_t	size_split(const char *, size_t, const size_t *, size_t);
static void	expect_mem(const char *, const struct tbuf *, const char *,
		    size_t);
static int	has_dot_line(const struct tbuf *);
static void	temp_rewrite(int, const char *, size_t);
static int	temp_file(const char *, size_t);

/* xorshift32: the same inputs on every machine. */
static uint32_t
rng_next(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

static void
random_message(uint32_t *seed, char *buf, size_t *len)
{
	static const char alphabet[] = { 'a', '.', '\r', '\n' };
	size_t i;

	*len = rng_next(seed) % (RANDOM_LEN + 1);
	for (i = 0; i < *len; i++)
		buf[i] = alphabet[rng_next(seed) % 4];
}

/* RETR size without converting: one more octet per bare LF, 2 at EOF. */
static uint64_t
ref_size(const char *in, size_t len)
{
	uint64_t size = len;
	size_t i;

	for (i = 0; i < len; i++)
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			size++;
	if (len > 0 && in[len - 1] != '\n')
		size += 2;
	return size;
}

/* Remove the stuffing dot of every line that starts with "." */
static void
unstuff(const char *in, size_t len, struct tbuf *out)
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

static void
crlf_to_lf(const char *in, size_t len, struct tbuf *out)
{
	size_t i;

	tbuf_reset(out);
	for (i = 0; i < len; i++)
		if (!(in[i] == '\r' && i + 1 < len && in[i + 1] == '\n'))
			tbuf_add(out, &in[i], 1);
}

static void
convert_once(const char *in, size_t len, long lines, struct tbuf *out)
{
	struct stream st;

	tbuf_reset(out);
	stream_init(&st, lines, tbuf_emit, out);
	ck_assert_int_eq(stream_feed(&st, in, len), 0);
	ck_assert_int_eq(stream_finish(&st), 0);
}

/* Feed in at the cut offsets given (ascending), in ncut + 1 parts. */
static void
convert_split(const char *in, size_t len, long lines, const size_t *cut,
    size_t ncut, struct tbuf *out)
{
	struct stream st;
	size_t i, from = 0, to;

	tbuf_reset(out);
	stream_init(&st, lines, tbuf_emit, out);
	for (i = 0; i <= ncut; i++) {
		to = i < ncut ? cut[i] : len;
		ck_assert_int_eq(stream_feed(&st, in + from, to - from), 0);
		from = to;
	}
	ck_assert_int_eq(stream_finish(&st), 0);
}

static uint64_t
size_once(const char *in, size_t len)
{
	struct stream_size sz;

	stream_size_init(&sz);
	stream_size_feed(&sz, in, len);
	return stream_size_end(&sz);
}

static uint64_t
size_split(const char *in, size_t len, const size_t *cut, size_t ncut)
{
	struct stream_size sz;
	size_t i, from = 0, to;

	stream_size_init(&sz);
	for (i = 0; i <= ncut; i++) {
		to = i < ncut ? cut[i] : len;
		stream_size_feed(&sz, in + from, to - from);
		from = to;
	}
	return stream_size_end(&sz);
}

/* Fail with both sides escaped unless got holds exactly want. */
static void
expect_mem(const char *what, const struct tbuf *got, const char *want,
    size_t want_len)
{
	char g[1024], w[1024];

	if (got->len == want_len &&
	    (want_len == 0 || memcmp(got->data, want, want_len) == 0))
		return;
	ck_abort_msg("%s: got \"%s\", want \"%s\"", what,
	    tbuf_escape(got->data, got->len, g, sizeof(g)),
	    tbuf_escape(want, want_len, w, sizeof(w)));
}

/* Whether converted output holds a line of just "." (the terminator). */
static int
has_dot_line(const struct tbuf *b)
{
	size_t i;

	for (i = 0; i + 3 <= b->len; i++)
		if ((i == 0 || b->data[i - 1] == '\n') &&
		    memcmp(b->data + i, ".\r\n", 3) == 0)
			return 1;
	return 0;
}

/* Make the file on fd hold exactly data, read from its start. */
static void
temp_rewrite(int fd, const char *data, size_t len)
{
	size_t off = 0;
	ssize_t n;

	ck_assert_int_eq(ftruncate(fd, 0), 0);
	while (off < len) {
		n = pwrite(fd, data + off, len - off, (off_t)off);
		ck_assert_msg(n > 0, "pwrite: %s", strerror(errno));
		off += (size_t)n;
	}
	ck_assert_int_eq((int)lseek(fd, 0, SEEK_SET), 0);
}

/* An unlinked temporary file holding data, read from its start. */
static int
temp_file(const char *data, size_t len)
{
	char path[] = "/tmp/pop3d-check-stream.XXXXXX";
	int fd;

	fd = mkstemp(path);
	ck_assert_msg(fd != -1, "mkstemp: %s", strerror(errno));
	ck_assert_int_eq(unlink(path), 0);
	temp_rewrite(fd, data, len);
	return fd;
}

/* Conversion. */

START_TEST(test_stream_convert_cases)
{
	const struct conv_case *c = &conv_cases[_i];
	struct tbuf out = { 0 }, ref = { 0 };
	char e[256];

	tbuf_escape(c->in, c->in_len, e, sizeof(e));
	convert_once(c->in, c->in_len, -1, &out);
	expect_mem(e, &out, c->out, c->out_len);
	ref_convert(c->in, c->in_len, -1, &ref);
	expect_mem("reference", &ref, c->out, c->out_len);
	ck_assert_msg(size_once(c->in, c->in_len) == c->size,
	    "size of \"%s\": %llu, want %llu", e,
	    (unsigned long long)size_once(c->in, c->in_len),
	    (unsigned long long)c->size);
	ck_assert_uint_eq(ref_size(c->in, c->in_len), c->size);
	tbuf_free(&out);
	tbuf_free(&ref);
}
END_TEST

START_TEST(test_stream_size_matches_unstuffed_output)
{
	const struct conv_case *c = &conv_cases[_i];
	struct tbuf out = { 0 }, plain = { 0 };

	convert_once(c->in, c->in_len, -1, &out);
	unstuff(out.data, out.len, &plain);
	ck_assert_uint_eq(plain.len, size_once(c->in, c->in_len));
	tbuf_free(&out);
	tbuf_free(&plain);
}
END_TEST

START_TEST(test_stream_cr_before_chunk_boundary)
{
	struct tbuf out = { 0 };
	struct stream st;
	struct stream_size sz;

	/* The CR ends one feed and its LF starts the next. */
	stream_init(&st, -1, tbuf_emit, &out);
	ck_assert_int_eq(stream_feed(&st, "a\r", 2), 0);
	ck_assert_int_eq(stream_feed(&st, "\nb\n", 3), 0);
	ck_assert_int_eq(stream_finish(&st), 0);
	expect_mem("CR|LF", &out, "a\r\nb\r\n", 6);
	stream_size_init(&sz);
	stream_size_feed(&sz, "a\r", 2);
	stream_size_feed(&sz, "\nb\n", 3);
	ck_assert_uint_eq(stream_size_end(&sz), 6);

	/* A CR that is not followed by LF stays alone. */
	tbuf_reset(&out);
	stream_init(&st, -1, tbuf_emit, &out);
	ck_assert_int_eq(stream_feed(&st, "a\r", 2), 0);
	ck_assert_int_eq(stream_feed(&st, "b\n", 2), 0);
	ck_assert_int_eq(stream_finish(&st), 0);
	expect_mem("CR|b", &out, "a\rb\r\n", 5);
	stream_size_init(&sz);
	stream_size_feed(&sz, "a\r", 2);
	stream_size_feed(&sz, "b\n", 2);
	ck_assert_uint_eq(stream_size_end(&sz), 5);

	/* An LF alone in a feed after a line that ended without CR. */
	tbuf_reset(&out);
	stream_init(&st, -1, tbuf_emit, &out);
	ck_assert_int_eq(stream_feed(&st, "a", 1), 0);
	ck_assert_int_eq(stream_feed(&st, "\n", 1), 0);
	ck_assert_int_eq(stream_feed(&st, "\r", 1), 0);
	ck_assert_int_eq(stream_feed(&st, "\n", 1), 0);
	ck_assert_int_eq(stream_finish(&st), 0);
	expect_mem("a|LF|CR|LF", &out, "a\r\n\r\n", 5);
	tbuf_free(&out);
}
END_TEST

START_TEST(test_stream_dot_at_chunk_boundary)
{
	struct tbuf out = { 0 };
	struct stream st;

	stream_init(&st, -1, tbuf_emit, &out);
	ck_assert_int_eq(stream_feed(&st, "a\n", 2), 0);
	ck_assert_int_eq(stream_feed(&st, ".b\n", 3), 0);
	ck_assert_int_eq(stream_feed(&st, "c", 1), 0);
	ck_assert_int_eq(stream_feed(&st, ".d\n", 3), 0);
	ck_assert_int_eq(stream_feed(&st, ".", 1), 0);
	ck_assert_int_eq(stream_feed(&st, "\n", 1), 0);
	ck_assert_int_eq(stream_finish(&st), 0);
	expect_mem("dots", &out, "a\r\n..b\r\nc.d\r\n..\r\n", 17);
	tbuf_free(&out);
}
END_TEST

START_TEST(test_stream_empty_feeds_change_nothing)
{
	struct tbuf out = { 0 };
	struct stream st;
	struct stream_size sz;

	stream_init(&st, -1, tbuf_emit, &out);
	ck_assert_int_eq(stream_feed(&st, "", 0), 0);
	ck_assert_int_eq(stream_feed(&st, ".a", 2), 0);
	ck_assert_int_eq(stream_feed(&st, "", 0), 0);
	ck_assert_int_eq(stream_finish(&st), 0);
	expect_mem("empty feeds", &out, "..a\r\n", 5);
	stream_size_init(&sz);
	stream_size_feed(&sz, "", 0);
	ck_assert_uint_eq(stream_size_end(&sz), 0);
	stream_size_feed(&sz, "a\r", 2);
	stream_size_feed(&sz, "", 0);
	stream_size_feed(&sz, "\n", 1);
	ck_assert_uint_eq(stream_size_end(&sz), 3);
	tbuf_free(&out);
}
END_TEST

START_TEST(test_stream_emit_failure_stops)
{
	struct stream st;

	stream_init(&st, -1, fail_emit, NULL);
	ck_assert_int_eq(stream_feed(&st, "a\n", 2), -1);
	stream_init(&st, -1, fail_emit, NULL);
	ck_assert_int_eq(stream_feed(&st, ".a", 2), -1);
	stream_init(&st, -1, fail_emit, NULL);
	ck_assert_int_eq(stream_feed(&st, "", 0), 0);
	ck_assert_int_eq(stream_finish(&st), 0);
}
END_TEST

/* Chunk boundaries. */

START_TEST(test_stream_split_at_every_boundary)
{
	const struct conv_case *c = &conv_cases[_i];
	static const long lines[] = { -1, 0, 1, 2 };
	struct tbuf whole = { 0 }, part = { 0 };
	size_t cut[2], i, j, k;

	for (k = 0; k < sizeof(lines) / sizeof(lines[0]); k++) {
		convert_once(c->in, c->in_len, lines[k], &whole);
		for (i = 0; i <= c->in_len; i++) {
			cut[0] = i;
			convert_split(c->in, c->in_len, lines[k], cut, 1,
			    &part);
			expect_mem("two parts", &part, whole.data, whole.len);
			if (lines[k] == -1)
				ck_assert_uint_eq(size_split(c->in, c->in_len,
				    cut, 1), c->size);
			for (j = i; j <= c->in_len; j++) {
				cut[1] = j;
				convert_split(c->in, c->in_len, lines[k], cut,
				    2, &part);
				expect_mem("three parts", &part, whole.data,
				    whole.len);
				if (lines[k] == -1)
					ck_assert_uint_eq(size_split(c->in,
					    c->in_len, cut, 2), c->size);
			}
		}
	}
	tbuf_free(&whole);
	tbuf_free(&part);
}
END_TEST

START_TEST(test_stream_split_top_at_every_boundary)
{
	const struct top_case *c = &top_cases[_i];
	struct tbuf part = { 0 };
	size_t cut[2], i, j;

	for (i = 0; i <= c->in_len; i++) {
		cut[0] = i;
		convert_split(c->in, c->in_len, c->lines, cut, 1, &part);
		expect_mem("two parts", &part, c->out, c->out_len);
		for (j = i; j <= c->in_len; j++) {
			cut[1] = j;
			convert_split(c->in, c->in_len, c->lines, cut, 2,
			    &part);
			expect_mem("three parts", &part, c->out, c->out_len);
		}
	}
	tbuf_free(&part);
}
END_TEST

START_TEST(test_stream_octet_by_octet)
{
	static const char msg[] = ".H: 1\r\nH: 2\n\r\n.\r\n..\nx\r\r\ny\r";
	struct tbuf whole = { 0 }, part = { 0 };
	struct stream_size sz;
	struct stream st;
	size_t i;

	convert_once(msg, sizeof(msg) - 1, -1, &whole);
	stream_init(&st, -1, tbuf_emit, &part);
	stream_size_init(&sz);
	for (i = 0; i < sizeof(msg) - 1; i++) {
		ck_assert_int_eq(stream_feed(&st, &msg[i], 1), 0);
		stream_size_feed(&sz, &msg[i], 1);
	}
	ck_assert_int_eq(stream_finish(&st), 0);
	expect_mem("octet by octet", &part, whole.data, whole.len);
	ck_assert_uint_eq(stream_size_end(&sz), ref_size(msg,
	    sizeof(msg) - 1));
	tbuf_free(&whole);
	tbuf_free(&part);
}
END_TEST

/* TOP. */

START_TEST(test_stream_top_cases)
{
	const struct top_case *c = &top_cases[_i];
	struct tbuf out = { 0 }, ref = { 0 };
	char e[256];

	tbuf_escape(c->in, c->in_len, e, sizeof(e));
	convert_once(c->in, c->in_len, c->lines, &out);
	ck_assert_msg(out.len == c->out_len &&
	    memcmp(out.data, c->out, c->out_len) == 0,
	    "TOP %ld of \"%s\": got \"%s\"", c->lines, e,
	    tbuf_escape(out.data, out.len, e, sizeof(e)));
	ref_convert(c->in, c->in_len, c->lines, &ref);
	expect_mem("reference", &ref, c->out, c->out_len);
	tbuf_free(&out);
	tbuf_free(&ref);
}
END_TEST

START_TEST(test_stream_top_done_ignores_the_rest)
{
	struct tbuf out = { 0 };
	struct stream st;

	stream_init(&st, 1, tbuf_emit, &out);
	ck_assert_int_eq(stream_done(&st), 0);
	ck_assert_int_eq(stream_feed(&st, "H: 1\n\n", 6), 0);
	ck_assert_int_eq(stream_done(&st), 0);
	ck_assert_int_eq(stream_feed(&st, "b1\nb2", 5), 0);
	ck_assert_int_ne(stream_done(&st), 0);
	ck_assert_int_eq(stream_feed(&st, "\nb3\n", 4), 0);
	ck_assert_int_eq(stream_finish(&st), 0);
	expect_mem("TOP 1", &out, "H: 1\r\n\r\nb1\r\n", 12);

	/* RETR is never done before the end. */
	tbuf_reset(&out);
	stream_init(&st, -1, tbuf_emit, &out);
	ck_assert_int_eq(stream_feed(&st, "H: 1\n\nb1\n", 9), 0);
	ck_assert_int_eq(stream_done(&st), 0);
	tbuf_free(&out);
}
END_TEST

/* Random inputs against the reference. */

START_TEST(test_stream_random_matches_reference)
{
	static const long lines[] = { -1, 0, 1, 2, 5 };
	struct tbuf out = { 0 }, ref = { 0 };
	char msg[RANDOM_LEN], e[256];
	uint32_t seed = 0x9e3779b9u;
	size_t len, cut[2], n;
	long l;

	for (n = 0; n < RANDOM_CASES; n++) {
		l = lines[n % (sizeof(lines) / sizeof(lines[0]))];
		random_message(&seed, msg, &len);
		tbuf_escape(msg, len, e, sizeof(e));
		ref_convert(msg, len, l, &ref);
		convert_once(msg, len, l, &out);
		ck_assert_msg(out.len == ref.len &&
		    memcmp(out.data, ref.data, ref.len) == 0,
		    "case %zu, lines %ld, \"%s\": differs from reference", n,
		    l, e);
		cut[0] = len ? rng_next(&seed) % (len + 1) : 0;
		cut[1] = cut[0] + (len - cut[0] ?
		    rng_next(&seed) % (len - cut[0] + 1) : 0);
		convert_split(msg, len, l, cut, 2, &out);
		ck_assert_msg(out.len == ref.len &&
		    memcmp(out.data, ref.data, ref.len) == 0,
		    "case %zu, lines %ld, \"%s\" cut at %zu,%zu: differs", n,
		    l, e, cut[0], cut[1]);
	}
	tbuf_free(&out);
	tbuf_free(&ref);
}
END_TEST

/*
 * The caller's buffer of stream_fd_direct(): each room is a heap block
 * of exactly its size, so that a write past it is caught (under ASan),
 * need octets and up to extra more, at random.
 */
struct direct {
	struct tbuf	*out;
	uint32_t	 seed;
	size_t		 extra;
	int		 budget;	/* reserves before one fails; -1 none */
	size_t		 need;		/* asked by the last reserve */
	size_t		 reserves;	/* rooms given */
	char		*room;		/* reserved and not committed */
	size_t		 size;
};

static char *
direct_reserve(void *ctx, size_t need, size_t *room)
{
	struct direct *d = ctx;

	ck_assert_ptr_null(d->room);
	if (d->budget == 0)
		return NULL;
	if (d->budget > 0)
		d->budget--;
	d->need = need;
	d->reserves++;
	d->size = need + (d->extra > 0 ? rng_next(&d->seed) % (d->extra + 1) :
	    0);
	d->room = malloc(d->size);
	ck_assert_ptr_nonnull(d->room);
	*room = d->size;
	return d->room;
}

static void
direct_commit(void *ctx, size_t used)
{
	struct direct *d = ctx;

	ck_assert_ptr_nonnull(d->room);
	ck_assert_uint_le(used, d->size);
	tbuf_add(d->out, d->room, used);
	free(d->room);
	d->room = NULL;
}

static int
direct_emit(void *ctx, const char *buf, size_t len)
{
	struct direct *d = ctx;

	ck_assert_ptr_null(d->room);
	return tbuf_emit(d->out, buf, len);
}

/* Case n: msg, from the file fd, sent whole into d's rooms gives what
 * the reference does. */
static void
direct_check(size_t n, int fd, const char *msg, size_t len,
    struct direct *d, struct tbuf *ref)
{
	temp_rewrite(fd, msg, len);
	ref_convert(msg, len, -1, ref);
	tbuf_reset(d->out);
	ck_assert_int_eq(stream_fd_direct(fd, direct_emit, direct_reserve,
	    direct_commit, d), 0);
	ck_assert_ptr_null(d->room);
	ck_assert_msg(d->out->len == ref->len &&
	    memcmp(d->out->data, ref->data, ref->len) == 0,
	    "case %zu (%zu octets): differs from reference", n, len);
}

/* What stream_fd_direct() reads at a time from rooms of just the size
 * it asks for. */
static size_t
direct_read_size(void)
{
	struct tbuf out = { 0 };
	struct direct d = { &out, 1, 0, -1, 0, 0, NULL, 0 };
	int fd;

	fd = temp_file("", 0);
	ck_assert_int_eq(stream_fd_direct(fd, direct_emit, direct_reserve,
	    direct_commit, &d), 0);
	(void)close(fd);
	tbuf_free(&out);
	ck_assert_uint_gt(d.need, STREAM_GAP + 2);
	return (d.need - STREAM_GAP) / 2;
}

/* RETR of small messages straight into the caller's buffer gives what
 * the reference does. */
START_TEST(test_stream_direct_matches_reference)
{
	struct tbuf out = { 0 }, ref = { 0 };
	struct direct d = { &out, 0x2545f491u, 300, -1, 0, 0, NULL, 0 };
	char msg[RANDOM_LEN];
	uint32_t seed = 0x7f4a7c15u;
	size_t len, n;
	int fd;

	fd = temp_file("", 0);
	for (n = 0; n < RANDOM_CASES; n++) {
		random_message(&seed, msg, &len);
		direct_check(n, fd, msg, len, &d, &ref);
	}
	(void)close(fd);
	tbuf_free(&out);
	tbuf_free(&ref);
}
END_TEST

/*
 * Text-like messages: lines of up to 40 letters, some starting with a
 * dot, some ending in CRLF, the last one without LF at times.  Most
 * sixteen-octet blocks of these take the block path (stream_block()),
 * and every way in and out of it is met: an LF or a CR as a block's
 * last octet, a dot as the next block's first, a slice ending anywhere.
 */
static void
text_message(uint32_t *seed, char *buf, size_t max, size_t *len)
{
	size_t i = 0, n, want = rng_next(seed) % (max - 48);

	while (i < want) {
		if (rng_next(seed) % 8 == 0)
			buf[i++] = '.';
		for (n = rng_next(seed) % 41; n > 0; n--)
			buf[i++] = (char)('a' + rng_next(seed) % 26);
		if (rng_next(seed) % 4 == 0)
			buf[i++] = '\r';
		buf[i++] = '\n';
	}
	if (i > 0 && rng_next(seed) % 4 == 0)
		i--;
	*len = i;
}

/*
 * Messages of many reads, into rooms of random sizes: every way in and
 * out of the block path, and a read ending anywhere in a line.
 */
START_TEST(test_stream_direct_long_messages)
{
	static const char alphabet[] = { 'a', '.', '\r', '\n' };
	struct tbuf out = { 0 }, ref = { 0 };
	struct direct d = { &out, 0x6a09e667u, 0, -1, 0, 0, NULL, 0 };
	uint32_t seed = 0xbb67ae85u;
	size_t r = direct_read_size(), max = 20 * r, len, n, i;
	char *msg;
	int fd;

	d.extra = 6 * r;	/* reads of one to four times the least */
	msg = malloc(max);
	ck_assert_ptr_nonnull(msg);
	fd = temp_file("", 0);
	for (n = 0; n < DIRECT_CASES; n++) {
		if (n % 4 == 3) {
			len = rng_next(&seed) % max;
			for (i = 0; i < len; i++)
				msg[i] = alphabet[rng_next(&seed) % 16 < 13 ?
				    0 : rng_next(&seed) % 4];
		} else
			text_message(&seed, msg, max, &len);
		direct_check(n, fd, msg, len, &d, &ref);
	}
	(void)close(fd);
	free(msg);
	tbuf_free(&out);
	tbuf_free(&ref);
}
END_TEST

/*
 * The converted octets take up to twice the room of the input they are
 * written over: messages that double throughout, into rooms of just the
 * size asked, where the output comes closest to the input not yet read.
 * A CRLF, a dot line and a dot after LF cut by a read, too.
 */
START_TEST(test_stream_direct_in_place)
{
	static const char *const fill[] = { ".\n", "\n", ".", "\r\n", "a\n",
	    "\r" };
	struct tbuf out = { 0 }, ref = { 0 };
	struct direct d = { &out, 1, 0, -1, 0, 0, NULL, 0 };
	size_t r = direct_read_size(), len = 3 * r + 7, i, f, k;
	char *msg;
	int fd;

	msg = malloc(len);
	ck_assert_ptr_nonnull(msg);
	fd = temp_file("", 0);
	for (f = 0; f < sizeof(fill) / sizeof(fill[0]); f++) {
		k = strlen(fill[f]);
		for (i = 0; i < len; i++)
			msg[i] = fill[f][i % k];
		direct_check(f, fd, msg, len, &d, &ref);
	}
	memset(msg, 'x', len);
	msg[r - 1] = '\r';		/* CRLF across the first read */
	msg[r] = '\n';
	msg[2 * r - 1] = '\n';	/* dot line across the second */
	msg[2 * r] = '.';
	msg[2 * r + 1] = '\n';
	msg[3 * r - 1] = '\n';	/* dot after LF across the third */
	msg[3 * r] = '.';
	direct_check(f, fd, msg, len, &d, &ref);
	(void)close(fd);
	free(msg);
	tbuf_free(&out);
	tbuf_free(&ref);
}
END_TEST

/* A message that ends before a read does takes one room: the short
 * read is its end, and no read more is made to be told so. */
START_TEST(test_stream_direct_short_read_ends)
{
	struct tbuf out = { 0 }, ref = { 0 };
	struct direct d = { &out, 1, 0, -1, 0, 0, NULL, 0 };
	size_t r = direct_read_size();
	char *msg;
	int fd;

	msg = malloc(r);
	ck_assert_ptr_nonnull(msg);
	memset(msg, 'x', r);
	fd = temp_file("", 0);
	direct_check(0, fd, msg, r - 1, &d, &ref);
	ck_assert_uint_eq(d.reserves, 1);
	/* A full read may not be the end: one more tells. */
	d.reserves = 0;
	direct_check(1, fd, msg, r, &d, &ref);
	ck_assert_uint_eq(d.reserves, 2);
	(void)close(fd);
	free(msg);
	tbuf_free(&out);
	tbuf_free(&ref);
}
END_TEST

/* A reserve that gives less room than it was asked for. */
static char *
short_reserve(void *ctx, size_t need, size_t *room)
{
	static char buf[STREAM_GAP];

	(void)ctx;
	ck_assert_uint_gt(need, sizeof(buf));
	*room = sizeof(buf);
	return buf;
}

static void
empty_commit(void *ctx, size_t used)
{
	(void)ctx;
	ck_assert_uint_eq(used, 0);
}

/* A reserve that fails stops RETR after a prefix; so does one that
 * gives too little room, and emit, which ends a last line without LF;
 * a read that fails gives -1. */
START_TEST(test_stream_direct_failures)
{
	struct tbuf out = { 0 }, ref = { 0 };
	struct direct d = { &out, 1, 0, 0, 0, 0, NULL, 0 };
	size_t r = direct_read_size(), len = 2 * r + 1, k;
	char *msg;
	int fd;

	msg = malloc(len);
	ck_assert_ptr_nonnull(msg);
	memset(msg, 'x', len);
	fd = temp_file(msg, len);
	ref_convert(msg, len, -1, &ref);
	for (k = 0; k < 3; k++) {
		d.budget = (int)k;
		ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
		tbuf_reset(&out);
		ck_assert_int_eq(stream_fd_direct(fd, direct_emit,
		    direct_reserve, direct_commit, &d), -2);
		ck_assert_ptr_null(d.room);
		ck_assert_uint_eq(out.len, k * r);
		ck_assert_int_eq(memcmp(out.data, ref.data, out.len), 0);
	}
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	ck_assert_int_eq(stream_fd_direct(fd, direct_emit, short_reserve,
	    empty_commit, &d), -2);
	/* Every read succeeds; the CRLF after the last "x" cannot go. */
	d.budget = -1;
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	ck_assert_int_eq(stream_fd_direct(fd, fail_emit, direct_reserve,
	    direct_commit, &d), -2);
	(void)close(fd);
	errno = 0;
	ck_assert_int_eq(stream_fd_direct(-1, direct_emit, direct_reserve,
	    direct_commit, &d), -1);
	ck_assert_int_eq(errno, EBADF);
	ck_assert_ptr_null(d.room);
	free(msg);
	tbuf_free(&out);
	tbuf_free(&ref);
}
END_TEST

START_TEST(test_stream_random_size_and_round_trip)
{
	struct tbuf out = { 0 }, plain = { 0 }, got = { 0 }, want = { 0 };
	char msg[RANDOM_LEN], e[256];
	uint32_t seed = 0x2545f491u;
	size_t len, cut[2], n, i;
	uint64_t size;

	for (n = 0; n < RANDOM_CASES; n++) {
		random_message(&seed, msg, &len);
		tbuf_escape(msg, len, e, sizeof(e));
		convert_once(msg, len, -1, &out);
		size = size_once(msg, len);
		ck_assert_msg(size == ref_size(msg, len),
		    "case %zu \"%s\": size %llu, want %llu", n, e,
		    (unsigned long long)size,
		    (unsigned long long)ref_size(msg, len));
		cut[0] = len ? rng_next(&seed) % (len + 1) : 0;
		cut[1] = cut[0] + (len - cut[0] ?
		    rng_next(&seed) % (len - cut[0] + 1) : 0);
		ck_assert_msg(size_split(msg, len, cut, 2) == size,
		    "case %zu \"%s\": split size differs", n, e);

		/* What RETR sends, stuffing removed, is the size. */
		unstuff(out.data, out.len, &plain);
		ck_assert_msg(plain.len == size,
		    "case %zu \"%s\": %zu octets sent, size %llu", n, e,
		    plain.len, (unsigned long long)size);

		/* Every LF has its CR; the end is CRLF; no "." line. */
		for (i = 0; i < out.len; i++)
			ck_assert_msg(out.data[i] != '\n' ||
			    (i > 0 && out.data[i - 1] == '\r'),
			    "case %zu \"%s\": bare LF sent", n, e);
		if (out.len > 0)
			ck_assert(out.len >= 2 &&
			    memcmp(out.data + out.len - 2, "\r\n", 2) == 0);
		ck_assert_msg(!has_dot_line(&out),
		    "case %zu \"%s\": a lone \".\" line sent", n, e);

		/* Back to LF line ends, it is the message plus a last LF. */
		crlf_to_lf(plain.data, plain.len, &got);
		crlf_to_lf(msg, len, &want);
		if (len > 0 && msg[len - 1] != '\n')
			tbuf_add(&want, "\n", 1);
		ck_assert_msg(got.len == want.len &&
		    memcmp(got.data, want.data, want.len) == 0,
		    "case %zu \"%s\": does not round-trip", n, e);
	}
	tbuf_free(&out);
	tbuf_free(&plain);
	tbuf_free(&got);
	tbuf_free(&want);
}
END_TEST

/*
 * Long messages: the sizer counts in rows of lanes and adds them up every
 * few thousand octets, so only long input reaches those sums.
 */
START_TEST(test_stream_size_long_messages)
{
	static char msg[LONG_LEN];
	static const char alphabet[] = { 'a', '.', '\r', '\n' };
	uint32_t seed = 0x9e3779b9u;
	size_t len, cut[2], n, i;

	/* Every octet a bare LF: each lane counts to its limit. */
	memset(msg, '\n', sizeof(msg));
	ck_assert_uint_eq(size_once(msg, sizeof(msg)), 2 * sizeof(msg));
	/* CRLF pairs whose CR and LF fall in different lanes and rows. */
	for (i = 0; i < sizeof(msg); i++)
		msg[i] = i % 2 ? '\n' : '\r';
	ck_assert_uint_eq(size_once(msg, sizeof(msg) - 1), sizeof(msg) - 1);
	ck_assert_uint_eq(size_once(msg + 1, sizeof(msg) - 1),
	    ref_size(msg + 1, sizeof(msg) - 1));

	for (n = 0; n < LONG_CASES; n++) {
		len = rng_next(&seed) % (sizeof(msg) + 1);
		for (i = 0; i < len; i++)
			msg[i] = alphabet[rng_next(&seed) % (n % 2 ? 4 : 2) +
			    (n % 2 ? 0 : 2)];
		ck_assert_msg(size_once(msg, len) == ref_size(msg, len),
		    "case %zu: size %llu, want %llu", n,
		    (unsigned long long)size_once(msg, len),
		    (unsigned long long)ref_size(msg, len));
		cut[0] = len ? rng_next(&seed) % (len + 1) : 0;
		cut[1] = cut[0] + (len - cut[0] ?
		    rng_next(&seed) % (len - cut[0] + 1) : 0);
		ck_assert_msg(size_split(msg, len, cut, 2) == ref_size(msg, len),
		    "case %zu: split size differs", n);
	}
}
END_TEST

/* Files. */

START_TEST(test_stream_fd_large_file)
{
	struct tbuf out = { 0 }, ref = { 0 };
	size_t len = 2 * FILE_BUF_SIZE + 5000, i;
	uint64_t size;
	char *msg;
	int fd;

	msg = malloc(len);
	ck_assert_ptr_nonnull(msg);
	for (i = 0; i < len; i++)
		msg[i] = i % 61 == 60 ? '\n' : (char)('a' + i % 26);
	/* A "." line right at the first read boundary. */
	msg[FILE_BUF_SIZE - 1] = '\n';
	msg[FILE_BUF_SIZE] = '.';
	msg[FILE_BUF_SIZE + 1] = '\n';
	msg[FILE_BUF_SIZE + 2] = '.';
	msg[FILE_BUF_SIZE + 3] = '.';
	msg[FILE_BUF_SIZE + 4] = '\n';
	/* A CRLF cut by the second one. */
	msg[2 * FILE_BUF_SIZE - 1] = '\r';
	msg[2 * FILE_BUF_SIZE] = '\n';
	msg[2 * FILE_BUF_SIZE + 1] = '.';
	msg[len - 1] = 'z';	/* no final LF */

	fd = temp_file(msg, len);
	ck_assert_int_eq(stream_fd(fd, -1, tbuf_emit, &out), 0);
	ref_convert(msg, len, -1, &ref);
	ck_assert_uint_eq(out.len, ref.len);
	ck_assert_int_eq(memcmp(out.data, ref.data, ref.len), 0);
	ck_assert_int_eq((int)lseek(fd, 0, SEEK_SET), 0);
	ck_assert_int_eq(stream_size_fd(fd, &size), 0);
	ck_assert_uint_eq(size, ref_size(msg, len));
	unstuff(out.data, out.len, &ref);
	ck_assert_uint_eq(size, ref.len);
	(void)close(fd);
	free(msg);
	tbuf_free(&out);
	tbuf_free(&ref);
}
END_TEST

START_TEST(test_stream_fd_small_files)
{
	const struct conv_case *c = &conv_cases[_i];
	struct tbuf out = { 0 };
	uint64_t size = 12345;
	int fd;

	fd = temp_file(c->in, c->in_len);
	ck_assert_int_eq(stream_fd(fd, -1, tbuf_emit, &out), 0);
	expect_mem("stream_fd", &out, c->out, c->out_len);
	ck_assert_int_eq((int)lseek(fd, 0, SEEK_SET), 0);
	ck_assert_int_eq(stream_size_fd(fd, &size), 0);
	ck_assert_uint_eq(size, c->size);
	(void)close(fd);
	tbuf_free(&out);
}
END_TEST

START_TEST(test_stream_fd_top)
{
	const struct top_case *c = &top_cases[_i];
	struct tbuf out = { 0 };
	int fd;

	fd = temp_file(c->in, c->in_len);
	ck_assert_int_eq(stream_fd(fd, c->lines, tbuf_emit, &out), 0);
	expect_mem("stream_fd TOP", &out, c->out, c->out_len);
	(void)close(fd);
	tbuf_free(&out);
}
END_TEST

/*
 * TOP reads a little of the file first: headers longer than that, with
 * the blank line or a CRLF just across the first read, and a dot-stuffed
 * body line after it.
 */
START_TEST(test_stream_fd_top_long_header)
{
	static char msg[3 * TOP_HEADER_LEN];
	struct tbuf out = { 0 }, ref = { 0 };
	size_t len = 0, end = TOP_HEADER_LEN - 3 + (size_t)_i;
	long lines;
	int fd;

	while (len < end - 20)
		len += (size_t)snprintf(msg + len, sizeof(msg) - len,
		    "X-Header-%zu: some value\r\n", len);
	while (len < end - 2)
		msg[len++] = 'x';
	memcpy(msg + len, "\r\n\r\n.body 1\nbody 2\n", 19);
	len += 19;
	fd = temp_file(msg, len);
	for (lines = 0; lines < 3; lines++) {
		ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
		tbuf_reset(&out);
		ck_assert_int_eq(stream_fd(fd, lines, tbuf_emit, &out), 0);
		ref_convert(msg, len, lines, &ref);
		expect_mem("TOP of a long header", &out, ref.data, ref.len);
	}
	(void)close(fd);
	tbuf_free(&out);
	tbuf_free(&ref);
}
END_TEST

START_TEST(test_stream_fd_errors)
{
	uint64_t size;
	int fd, left;

	errno = 0;
	ck_assert_int_eq(stream_fd(-1, -1, tbuf_emit, NULL), -1);
	ck_assert_int_eq(errno, EBADF);
	errno = 0;
	ck_assert_int_eq(stream_size_fd(-1, &size), -1);
	ck_assert_int_eq(errno, EBADF);
	fd = temp_file("a\nb\n", 4);
	ck_assert_int_eq(stream_fd(fd, -1, fail_emit, NULL), -2);
	(void)close(fd);
	/* The CRLF after a last line without LF can fail too. */
	fd = temp_file("a", 1);
	left = 1;
	ck_assert_int_eq(stream_fd(fd, -1, countdown_emit, &left), -2);
	(void)close(fd);
	/* An empty message emits nothing, so nothing can fail. */
	fd = temp_file("", 0);
	ck_assert_int_eq(stream_fd(fd, -1, fail_emit, NULL), 0);
	(void)close(fd);
}
END_TEST

Suite *
stream_suite(void)
{
	Suite *s = suite_create("stream");
	TCase *tc;
	int nconv = (int)(sizeof(conv_cases) / sizeof(conv_cases[0]));
	int ntop = (int)(sizeof(top_cases) / sizeof(top_cases[0]));

	tc = tcase_create("convert");
	tcase_add_loop_test(tc, test_stream_convert_cases, 0, nconv);
	tcase_add_loop_test(tc, test_stream_size_matches_unstuffed_output, 0,
	    nconv);
	tcase_add_test(tc, test_stream_emit_failure_stops);
	suite_add_tcase(s, tc);

	tc = tcase_create("chunks");
	tcase_add_test(tc, test_stream_cr_before_chunk_boundary);
	tcase_add_test(tc, test_stream_dot_at_chunk_boundary);
	tcase_add_test(tc, test_stream_empty_feeds_change_nothing);
	tcase_add_loop_test(tc, test_stream_split_at_every_boundary, 0,
	    nconv);
	tcase_add_loop_test(tc, test_stream_split_top_at_every_boundary, 0,
	    ntop);
	tcase_add_test(tc, test_stream_octet_by_octet);
	suite_add_tcase(s, tc);

	tc = tcase_create("top");
	tcase_add_loop_test(tc, test_stream_top_cases, 0, ntop);
	tcase_add_test(tc, test_stream_top_done_ignores_the_rest);
	suite_add_tcase(s, tc);

	tc = tcase_create("random");
	tcase_add_test(tc, test_stream_random_matches_reference);
	tcase_add_test(tc, test_stream_direct_matches_reference);
	tcase_add_test(tc, test_stream_direct_long_messages);
	tcase_add_test(tc, test_stream_direct_in_place);
	tcase_add_test(tc, test_stream_direct_failures);
	tcase_add_test(tc, test_stream_direct_short_read_ends);
	tcase_add_test(tc, test_stream_random_size_and_round_trip);
	tcase_add_test(tc, test_stream_size_long_messages);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("files");
	tcase_add_test(tc, test_stream_fd_large_file);
	tcase_add_loop_test(tc, test_stream_fd_small_files, 0, nconv);
	tcase_add_loop_test(tc, test_stream_fd_top, 0, ntop);
	tcase_add_loop_test(tc, test_stream_fd_top_long_header, 0, 6);
	tcase_add_test(tc, test_stream_fd_errors);
	suite_add_tcase(s, tc);
	return s;
}
