/*
 * check_mbox.c: tests of mbox.c, the reading side of mbox spool files.
 *
 * The expected results come from fixed cases written out by hand and
 * from a reference parser written in the plainest way, one line at a
 * time (ref_mbox_parse in ref.c, which the fuzzer shares), with its own
 * converter (ref_output): mboxrd unquoting, CRLF line ends, dot-stuffing
 * and TOP.  The fixed cases pin the rules; large files check that
 * read-buffer boundaries change nothing; random files from a fixed seed
 * compare mbox.c against the reference.
 *
 * Every file is an unlinked temporary file, so nothing is left behind.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "../mbox.h"
#include "../pop3d.h"
#include "../stream.h"
#include "check_pop3d.h"

/* Random mboxes: how many, and how many pieces at most in each. */
#define RANDOM_CASES	3000
#define RANDOM_PIECES	40
/* The read size of the tests of buffer boundaries. */
#define BOUNDARY	((size_t)FILE_BUF_SIZE)

/* An mbox and the raw octets of each message it must hold. */
struct scan_case {
	const char	*in;
	size_t		 in_len;
	size_t		 n;
	const char	*msg[4];
};

#define SCAN(i, n, ...)	{ i, sizeof(i) - 1, n, { __VA_ARGS__ } }

static const struct scan_case scan_cases[] = {
	/* One message, ending in one LF, in two, in none. */
	SCAN("From a@example.org Sat Jan  1 00:00:00 2000\nH: 1\n\nbody\n",
	    1, "H: 1\n\nbody\n"),
	SCAN("From a@example.org Sat Jan  1 00:00:00 2000\nH: 1\n\nbody\n\n",
	    1, "H: 1\n\nbody\n"),
	SCAN("From a\nH: 1\n\nbody", 1, "H: 1\n\nbody"),
	/* Two messages; the blank line between them is a separator. */
	SCAN("From a\nH: 1\n\nb1\n\nFrom b\nH: 2\n\nb2\n\n",
	    2, "H: 1\n\nb1\n", "H: 2\n\nb2\n"),
	/* "From " inside a paragraph is content, quoted or not. */
	SCAN("From a\nH: 1\n\nline\nFrom here on\n\nFrom b\nH: 2\n\nx\n",
	    2, "H: 1\n\nline\nFrom here on\n", "H: 2\n\nx\n"),
	SCAN("From a\nFrom b\n", 1, "From b\n"),
	SCAN("From a\nH: 1\n\n>From x\n>>From y\n\nFrom b\nH: 2\n\n",
	    2, "H: 1\n\n>From x\n>>From y\n", "H: 2\n"),
	/* Only the From_ line. */
	SCAN("From a@example.org Sat Jan  1 00:00:00 2000\n", 1, ""),
	SCAN("From a@example.org", 1, ""),
	SCAN("From a\n\n", 1, ""),
	/* Headers only, and empty messages in a row. */
	SCAN("From a\nH: 1\nH: 2\n\nFrom b\nH: 3\n", 2, "H: 1\nH: 2\n",
	    "H: 3\n"),
	SCAN("From a\n\nFrom b\n\nFrom c\nx\n", 3, "", "", "x\n"),
	/* Only the last of several blank lines is a separator. */
	SCAN("From a\nH: 1\n\nb\n\n\n\nFrom b\nx\n", 2, "H: 1\n\nb\n\n\n",
	    "x\n"),
	SCAN("From a\n\n\nFrom b\n", 2, "\n", ""),
	/* A Content-Length that lies changes nothing. */
	SCAN("From a\nContent-Length: 3\n\nlonger than three\n\n"
	    "From b\nContent-Length: 99999\n\nx\n\nFrom c\ny\n",
	    3, "Content-Length: 3\n\nlonger than three\n",
	    "Content-Length: 99999\n\nx\n", "y\n"),
	/* CRLF files; a CRLF blank line separates like an LF one. */
	SCAN("From a\r\nH: 1\r\n\r\nbody\r\n\r\nFrom b\r\nH: 2\r\n\r\nb2\r\n",
	    2, "H: 1\r\n\r\nbody\r\n", "H: 2\r\n\r\nb2\r\n"),
	SCAN("From a\r\nx\r\n\nFrom b\r\ny\n\r\nFrom c\r\n", 3, "x\r\n",
	    "y\n", ""),
	/* Lines that only look like From_ lines or blank lines. */
	SCAN("From a\nx\n\nFrom\n\nFromage\n\nfrom b\n\n FROM c\n",
	    1, "x\n\nFrom\n\nFromage\n\nfrom b\n\n FROM c\n"),
	SCAN("From a\nx\n \nFrom b\n\r\rFrom c\n", 1,
	    "x\n \nFrom b\n\r\rFrom c\n"),
};

/* Files that are not an mbox. */
#define BAD(s)	{ s, sizeof(s) - 1 }
static const struct {
	const char	*in;
	size_t		 in_len;
} not_mbox[] = {
	BAD("Hello\nworld\n"),
	BAD("from a\nx\n"),
	BAD(" From a\nx\n"),
	BAD("From"),
	BAD("From\n"),
	BAD("From:a\n\nFrom b\n"),
	BAD("\nFrom a\nx\n"),
	BAD("\r\nFrom a\nx\n"),
	BAD("\0From a\n"),
	BAD("\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
};

/* The exact octets mbox_send gives for message i, RETR or TOP. */
struct send_case {
	const char	*in;
	size_t		 in_len;
	size_t		 i;
	long		 lines;
	const char	*out;
	size_t		 out_len;
};

#define SEND(in, i, n, o) { in, sizeof(in) - 1, i, n, o, sizeof(o) - 1 }
#define QUOTED	"From a\nH: 1\nH: >From 2\n\nb1\n>From b2\n>>From b3\n" \
		"From b4\n.b5\n>From: b6\n\nFrom b\nH: 3\n"
#define LFEND	"From a\nH: 1\n\nb1\nb2\n\nFrom b\nH: 2\n\nlast"

static const struct send_case send_cases[] = {
	SEND(QUOTED, 0, -1, "H: 1\r\nH: >From 2\r\n\r\nb1\r\nFrom b2\r\n"
	    ">From b3\r\nFrom b4\r\n..b5\r\n>From: b6\r\n"),
	SEND(QUOTED, 0, 0, "H: 1\r\nH: >From 2\r\n\r\n"),
	SEND(QUOTED, 0, 1, "H: 1\r\nH: >From 2\r\n\r\nb1\r\n"),
	SEND(QUOTED, 0, 2, "H: 1\r\nH: >From 2\r\n\r\nb1\r\nFrom b2\r\n"),
	SEND(QUOTED, 0, 4, "H: 1\r\nH: >From 2\r\n\r\nb1\r\nFrom b2\r\n"
	    ">From b3\r\nFrom b4\r\n"),
	SEND(QUOTED, 0, 1000, "H: 1\r\nH: >From 2\r\n\r\nb1\r\nFrom b2\r\n"
	    ">From b3\r\nFrom b4\r\n..b5\r\n>From: b6\r\n"),
	SEND(QUOTED, 1, -1, "H: 3\r\n"),
	SEND(QUOTED, 1, 0, "H: 3\r\n"),
	SEND(LFEND, 0, -1, "H: 1\r\n\r\nb1\r\nb2\r\n"),
	SEND(LFEND, 1, -1, "H: 2\r\n\r\nlast\r\n"),
	SEND(LFEND, 1, 0, "H: 2\r\n\r\n"),
	SEND(LFEND, 1, 1, "H: 2\r\n\r\nlast\r\n"),
	/* A quoted From_ line as the first header. */
	SEND("From a\n>From b\n\nx\n", 0, -1, "From b\r\n\r\nx\r\n"),
	/* CRLF in the file: nothing doubled. */
	SEND("From a\r\nH: 1\r\n\r\n>From x\r\n.\r\n\r\nFrom b\r\n", 0, -1,
	    "H: 1\r\n\r\nFrom x\r\n..\r\n"),
	SEND("From a\r\nH: 1\r\n\r\nb1\r\nb2\r\n", 0, 1,
	    "H: 1\r\n\r\nb1\r\n"),
	/* Empty messages send nothing; a message of one blank line. */
	SEND("From a\n\nFrom b\n", 0, -1, ""),
	SEND("From a\n\nFrom b\n", 1, 0, ""),
	SEND("From a\n\n\nFrom b\n", 0, -1, "\r\n"),
	/* No final newline at EOF: a CRLF is added. */
	SEND("From a\nH: 1\n\n>From x", 0, -1, "H: 1\r\n\r\nFrom x\r\n"),
	SEND("From a\nH: 1", 0, 0, "H: 1\r\n"),
};

static uint32_t	rng_next(uint32_t *);
static int	temp_file(const char *, size_t);
static void	temp_rewrite(int, const char *, size_t);
static void	ref_unquote(const char *, size_t, struct tbuf *);
static void	ref_output(const char *, const struct ref_msg *, long,
		    struct tbuf *);
static uint64_t	ref_size(const char *, const struct ref_msg *);
static void	unstuff(const char *, size_t, struct tbuf *);
static void	expect_mem(const char *, const char *, size_t, const char *,
		    size_t);
static int	scan_fd(int, size_t, struct mbox_index *);
static void	scan_ok(const char *, size_t, struct mbox_index *);
static void	send_ok(int, const struct mbox_entry *, long, struct tbuf *);
static void	compare_with_ref(const char *, const char *, size_t, int,
		    const struct mbox_index *, int);
static int	count_emit(void *, const char *, size_t);
static int	is_hex_uidl(const char *);
static int	is_valid_uidl(const char *);
static void	uidls_of(const char *, struct mbox_index *);
static void	put(char *, size_t *, const char *);
static void	fill_to(char *, size_t *, size_t, uint32_t *);

/* xorshift32: the same inputs on every machine. */
static uint32_t
rng_next(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

/* An unlinked temporary file holding data, its offset at the start. */
static int
temp_file(const char *data, size_t len)
{
	char path[] = "/tmp/pop3d-check-mbox.XXXXXX";
	int fd;

	fd = mkstemp(path);
	ck_assert_msg(fd != -1, "mkstemp: %s", strerror(errno));
	ck_assert_int_eq(unlink(path), 0);
	temp_rewrite(fd, data, len);
	return fd;
}

/* Make the file on fd hold exactly data, offset at the start. */
static void
temp_rewrite(int fd, const char *data, size_t len)
{
	size_t off = 0;
	ssize_t n;

	ck_assert_int_eq(ftruncate(fd, 0), 0);
	ck_assert_int_eq((int)lseek(fd, 0, SEEK_SET), 0);
	while (off < len) {
		n = write(fd, data + off, len - off);
		if (n == -1 && errno == EINTR)
			continue;
		ck_assert_msg(n > 0, "write: %s", strerror(errno));
		off += (size_t)n;
	}
	ck_assert_int_eq((int)lseek(fd, 0, SEEK_SET), 0);
}

/* The content with one ">" removed from each line matching ^>+From . */
static void
ref_unquote(const char *in, size_t len, struct tbuf *out)
{
	size_t i, j;
	int bol = 1;

	tbuf_reset(out);
	for (i = 0; i < len; i++) {
		if (bol && in[i] == '>') {
			for (j = i; j < len && in[j] == '>'; j++)
				;
			if (len - j >= 5 && memcmp(in + j, "From ", 5) == 0)
				i++;
		}
		bol = in[i] == '\n';
		tbuf_add(out, &in[i], 1);
	}
}

/* What RETR (lines < 0) or TOP sends for message m of buf. */
static void
ref_output(const char *buf, const struct ref_msg *m, long lines,
    struct tbuf *out)
{
	struct tbuf plain = { 0 };

	ref_unquote(buf + m->start, m->end - m->start, &plain);
	ref_convert(plain.data, plain.len, lines, out);
	tbuf_free(&plain);
}

/* The size of message m: what RETR sends without the stuffing dots. */
static uint64_t
ref_size(const char *buf, const struct ref_msg *m)
{
	struct tbuf out = { 0 }, plain = { 0 };
	uint64_t size;

	ref_output(buf, m, -1, &out);
	unstuff(out.data, out.len, &plain);
	size = plain.len;
	tbuf_free(&out);
	tbuf_free(&plain);
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

/* Fail with both sides escaped unless got is exactly want. */
static void
expect_mem(const char *what, const char *got, size_t got_len,
    const char *want, size_t want_len)
{
	char g[1024], w[1024];
	size_t i;

	if (got_len == want_len &&
	    (want_len == 0 || memcmp(got, want, want_len) == 0))
		return;
	for (i = 0; i < got_len && i < want_len && got[i] == want[i]; i++)
		;
	if (want_len > 300 || got_len > 300)
		ck_abort_msg("%s: %zu octets, want %zu; first difference at "
		    "%zu: \"%s\", want \"%s\"", what, got_len, want_len, i,
		    tbuf_escape(got + i, got_len - i > 40 ? 40 : got_len - i,
		    g, sizeof(g)),
		    tbuf_escape(want + i, want_len - i > 40 ? 40 :
		    want_len - i, w, sizeof(w)));
	ck_abort_msg("%s: got \"%s\", want \"%s\"", what,
	    tbuf_escape(got, got_len, g, sizeof(g)),
	    tbuf_escape(want, want_len, w, sizeof(w)));
}

/* mbox_scan of the first len octets of fd, read from its start. */
static int
scan_fd(int fd, size_t len, struct mbox_index *idx)
{
	memset(idx, 0, sizeof(*idx));
	ck_assert_int_eq((int)lseek(fd, 0, SEEK_SET), 0);
	return mbox_scan(fd, (off_t)len, idx);
}

/* Scan data as a whole file; it must be an mbox. */
static void
scan_ok(const char *data, size_t len, struct mbox_index *idx)
{
	char e[256];
	int fd, r;

	fd = temp_file(data, len);
	r = scan_fd(fd, len, idx);
	ck_assert_msg(r == 0, "mbox_scan \"%s\": %d",
	    tbuf_escape(data, len, e, sizeof(e)), r);
	(void)close(fd);
}

static void
send_ok(int fd, const struct mbox_entry *e, long lines, struct tbuf *out)
{
	tbuf_reset(out);
	ck_assert_int_eq(mbox_send(fd, e, lines, tbuf_emit, out), 0);
}

/*
 * Check idx, the scan of the len octets of buf on fd, against the
 * reference: offsets, sizes, and what RETR and TOP send.  TOP is tried
 * with 0, 1, 2 and many body lines when tops is set.
 */
static void
compare_with_ref(const char *what, const char *buf, size_t len, int fd,
    const struct mbox_index *idx, int tops)
{
	static const long lines[] = { -1, 0, 1, 2, 1000000 };
	struct ref_msg *ref;
	struct tbuf got = { 0 }, want = { 0 }, plain = { 0 };
	const struct mbox_entry *e;
	size_t n, i, k, nlines;
	char label[512];

	ck_assert_int_eq(ref_mbox_parse(buf, len, &ref, &n), 0);
	ck_assert_msg(idx->n == n, "%s: %zu messages, want %zu", what, idx->n,
	    n);
	nlines = tops ? sizeof(lines) / sizeof(lines[0]) : 1;
	for (i = 0; i < n; i++) {
		e = &idx->v[i];
		ck_assert_msg(e->from == (off_t)ref[i].from &&
		    e->start == (off_t)ref[i].start &&
		    e->end == (off_t)ref[i].end,
		    "%s: message %zu at %lld/%lld/%lld, want %zu/%zu/%zu",
		    what, i + 1, (long long)e->from, (long long)e->start,
		    (long long)e->end, ref[i].from, ref[i].start, ref[i].end);
		ck_assert_msg(e->size == ref_size(buf, &ref[i]),
		    "%s: message %zu size %llu, want %llu", what, i + 1,
		    (unsigned long long)e->size,
		    (unsigned long long)ref_size(buf, &ref[i]));
		ck_assert_msg(is_valid_uidl(e->uidl),
		    "%s: message %zu has a bad UIDL", what, i + 1);
		for (k = 0; k < nlines; k++) {
			send_ok(fd, e, lines[k], &got);
			ref_output(buf, &ref[i], lines[k], &want);
			(void)snprintf(label, sizeof(label),
			    "%s: message %zu, lines %ld", what, i + 1,
			    lines[k]);
			expect_mem(label, got.data, got.len, want.data,
			    want.len);
			if (lines[k] < 0) {
				unstuff(got.data, got.len, &plain);
				ck_assert_msg(plain.len == e->size,
				    "%s: %zu octets sent unstuffed, size %llu",
				    label, plain.len,
				    (unsigned long long)e->size);
			}
		}
	}
	free(ref);
	tbuf_free(&got);
	tbuf_free(&want);
	tbuf_free(&plain);
}

/* Counts its calls in *ctx. */
static int
count_emit(void *ctx, const char *buf, size_t len)
{
	int *calls = ctx;

	(void)buf;
	(void)len;
	(*calls)++;
	return 0;
}

/* 32 lower-case hex digits: the digest form of a UIDL. */
static int
is_hex_uidl(const char *u)
{
	size_t i;

	for (i = 0; u[i] != '\0'; i++)
		if (!((u[i] >= '0' && u[i] <= '9') ||
		    (u[i] >= 'a' && u[i] <= 'f')))
			return 0;
	return i == 32;
}

/* 1 to 70 octets in 0x21..0x7E, NUL-terminated (RFC 1939 section 7). */
static int
is_valid_uidl(const char *u)
{
	size_t i;

	for (i = 0; i <= MBOX_UIDL_MAX && u[i] != '\0'; i++)
		if ((unsigned char)u[i] < 0x21 || (unsigned char)u[i] > 0x7e)
			return 0;
	return i >= 1 && i <= MBOX_UIDL_MAX && u[i] == '\0';
}

/* Scan an mbox made of the string s. */
static void
uidls_of(const char *s, struct mbox_index *idx)
{
	scan_ok(s, strlen(s), idx);
}

static void
put(char *buf, size_t *pos, const char *s)
{
	size_t len = strlen(s);

	memcpy(buf + *pos, s, len);
	*pos += len;
}

/*
 * Lines of text up to exactly target, none of them empty, now and then
 * one starting with ".".
 */
static void
fill_to(char *buf, size_t *pos, size_t target, uint32_t *seed)
{
	size_t left, line;

	ck_assert(target > *pos + 1);
	while (*pos < target) {
		left = target - *pos;
		line = 2 + rng_next(seed) % 77;
		if (line > left || left - line == 1)
			line = left;
		if (rng_next(seed) % 16 == 0) {
			buf[(*pos)++] = '.';
			line--;
		}
		while (line-- > 1)
			buf[(*pos)++] = (char)('a' + rng_next(seed) % 26);
		buf[(*pos)++] = '\n';
	}
}

/* Scan. */

START_TEST(test_mbox_scan_cases)
{
	const struct scan_case *c = &scan_cases[_i];
	struct ref_msg *ref;
	struct mbox_index idx;
	const struct mbox_entry *e;
	const char *lf;
	size_t i, n, want_len;
	char what[256];
	int fd;

	tbuf_escape(c->in, c->in_len, what, sizeof(what));
	/* The reference agrees with the case first. */
	ck_assert_int_eq(ref_mbox_parse(c->in, c->in_len, &ref, &n), 0);
	ck_assert_msg(n == c->n, "reference on \"%s\": %zu messages", what,
	    n);
	for (i = 0; i < n; i++)
		expect_mem("reference", c->in + ref[i].start,
		    ref[i].end - ref[i].start, c->msg[i], strlen(c->msg[i]));
	free(ref);

	fd = temp_file(c->in, c->in_len);
	ck_assert_msg(scan_fd(fd, c->in_len, &idx) == 0, "mbox_scan \"%s\"",
	    what);
	ck_assert_msg(idx.n == c->n, "\"%s\": %zu messages, want %zu", what,
	    idx.n, c->n);
	for (i = 0; i < idx.n; i++) {
		e = &idx.v[i];
		ck_assert(e->from >= 0 && e->from < e->start &&
		    e->start <= e->end && e->end <= (off_t)c->in_len);
		ck_assert_msg(memcmp(c->in + e->from, "From ", 5) == 0,
		    "\"%s\": message %zu: no From_ line at %lld", what, i + 1,
		    (long long)e->from);
		lf = memchr(c->in + e->from, '\n', c->in_len -
		    (size_t)e->from);
		ck_assert_msg(e->start == (lf == NULL ? (off_t)c->in_len :
		    (off_t)(lf - c->in) + 1),
		    "\"%s\": message %zu starts at %lld", what, i + 1,
		    (long long)e->start);
		want_len = strlen(c->msg[i]);
		expect_mem(what, c->in + e->start, (size_t)(e->end - e->start),
		    c->msg[i], want_len);
	}
	compare_with_ref(what, c->in, c->in_len, fd, &idx, 1);
	mbox_index_free(&idx);
	(void)close(fd);
}
END_TEST

START_TEST(test_mbox_scan_empty_file)
{
	struct mbox_index idx;
	int fd;

	fd = temp_file("", 0);
	ck_assert_int_eq(scan_fd(fd, 0, &idx), 0);
	ck_assert_uint_eq(idx.n, 0);
	mbox_index_free(&idx);
	(void)close(fd);
}
END_TEST

START_TEST(test_mbox_scan_not_an_mbox)
{
	struct mbox_index idx;
	char e[256];
	int fd, r;

	fd = temp_file(not_mbox[_i].in, not_mbox[_i].in_len);
	r = scan_fd(fd, not_mbox[_i].in_len, &idx);
	ck_assert_msg(r == 1, "\"%s\": %d, want 1",
	    tbuf_escape(not_mbox[_i].in, not_mbox[_i].in_len, e, sizeof(e)),
	    r);
	mbox_index_free(&idx);
	(void)close(fd);
}
END_TEST

START_TEST(test_mbox_scan_only_the_given_length)
{
	/* Mail an MTA appended after the snapshot is not scanned. */
	static const char mbox[] = "From a\nH: 1\n\nx\n\nFrom b\nH: 2\n\ny\n";
	struct mbox_index idx;
	size_t snap;
	int fd;

	snap = (size_t)(strstr(mbox, "From b") - mbox);
	fd = temp_file(mbox, sizeof(mbox) - 1);
	ck_assert_int_eq(scan_fd(fd, snap, &idx), 0);
	ck_assert_uint_eq(idx.n, 1);
	ck_assert_int_eq((int)idx.v[0].start, 7);
	ck_assert_int_eq((int)idx.v[0].end, (int)snap - 1);
	ck_assert_uint_eq(idx.v[0].size, 11);
	compare_with_ref("snapshot", mbox, snap, fd, &idx, 1);
	mbox_index_free(&idx);
	ck_assert_int_eq(scan_fd(fd, sizeof(mbox) - 1, &idx), 0);
	ck_assert_uint_eq(idx.n, 2);
	mbox_index_free(&idx);
	(void)close(fd);
}
END_TEST

START_TEST(test_mbox_scan_many_messages)
{
	struct tbuf mbox = { 0 };
	struct mbox_index idx;
	char line[128];
	size_t i;
	int fd;

	/* More than any small initial capacity of the index. */
	for (i = 0; i < 1000; i++) {
		(void)snprintf(line, sizeof(line), "From m%zu@example.org "
		    "Sat Jan  1 00:00:00 2000\nSubject: %zu\n\nbody %zu\n\n",
		    i, i, i);
		tbuf_addstr(&mbox, line);
	}
	fd = temp_file(mbox.data, mbox.len);
	ck_assert_int_eq(scan_fd(fd, mbox.len, &idx), 0);
	ck_assert_uint_eq(idx.n, 1000);
	ck_assert_uint_le(idx.n, idx.cap);
	for (i = 1; i < idx.n; i++)
		ck_assert(idx.v[i].from == idx.v[i - 1].end + 1);
	ck_assert_str_ne(idx.v[0].uidl, idx.v[1].uidl);
	mbox_index_free(&idx);
	(void)close(fd);
	tbuf_free(&mbox);
}
END_TEST

START_TEST(test_mbox_index_free_empty)
{
	struct mbox_index idx;

	memset(&idx, 0, sizeof(idx));
	mbox_index_free(&idx);
	mbox_index_free(&idx);
}
END_TEST

START_TEST(test_mbox_scan_bad_fd)
{
	struct mbox_index idx;

	memset(&idx, 0, sizeof(idx));
	ck_assert_int_eq(mbox_scan(-1, 100, &idx), -1);
	mbox_index_free(&idx);
}
END_TEST

/* Send. */

START_TEST(test_mbox_send_cases)
{
	const struct send_case *c = &send_cases[_i];
	struct tbuf out = { 0 }, plain = { 0 };
	struct mbox_index idx;
	char what[512], e[256];
	int fd;

	(void)snprintf(what, sizeof(what), "message %zu lines %ld of \"%s\"",
	    c->i + 1, c->lines, tbuf_escape(c->in, c->in_len, e, sizeof(e)));
	fd = temp_file(c->in, c->in_len);
	ck_assert_int_eq(scan_fd(fd, c->in_len, &idx), 0);
	ck_assert_uint_lt(c->i, idx.n);
	send_ok(fd, &idx.v[c->i], c->lines, &out);
	expect_mem(what, out.data, out.len, c->out, c->out_len);
	if (c->lines < 0) {
		unstuff(out.data, out.len, &plain);
		ck_assert_msg(plain.len == idx.v[c->i].size,
		    "%s: size %llu, %zu octets unstuffed", what,
		    (unsigned long long)idx.v[c->i].size, plain.len);
	}
	mbox_index_free(&idx);
	(void)close(fd);
	tbuf_free(&out);
	tbuf_free(&plain);
}
END_TEST

START_TEST(test_mbox_send_ignores_file_offset)
{
	static const char mbox[] = "From a\nH: 1\n\nfirst\n\nFrom b\nH: 2\n\n"
	    "second\n\nFrom c\nH: 3\n\nthird\n";
	static const char *want[] = { "H: 1\r\n\r\nfirst\r\n",
	    "H: 2\r\n\r\nsecond\r\n", "H: 3\r\n\r\nthird\r\n" };
	static const size_t order[] = { 2, 0, 1, 1, 0, 2 };
	struct tbuf out = { 0 };
	struct mbox_index idx;
	size_t i;
	int fd;

	fd = temp_file(mbox, sizeof(mbox) - 1);
	ck_assert_int_eq(scan_fd(fd, sizeof(mbox) - 1, &idx), 0);
	ck_assert_uint_eq(idx.n, 3);
	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		(void)lseek(fd, (off_t)(i * 7 % sizeof(mbox)), SEEK_SET);
		send_ok(fd, &idx.v[order[i]], -1, &out);
		expect_mem("out of order", out.data, out.len, want[order[i]],
		    strlen(want[order[i]]));
	}
	mbox_index_free(&idx);
	(void)close(fd);
	tbuf_free(&out);
}
END_TEST

START_TEST(test_mbox_send_errors)
{
	static const char mbox[] = "From a\nH: 1\n\nx\n\nFrom b\nH: 2\n\ny";
	struct tbuf out = { 0 };
	struct mbox_index idx;
	int fd, left, calls;

	fd = temp_file(mbox, sizeof(mbox) - 1);
	ck_assert_int_eq(scan_fd(fd, sizeof(mbox) - 1, &idx), 0);
	ck_assert_uint_eq(idx.n, 2);
	ck_assert_int_eq(mbox_send(fd, &idx.v[0], -1, fail_emit, NULL), -2);
	ck_assert_int_eq(mbox_send(fd, &idx.v[1], 0, fail_emit, NULL), -2);
	/* The last emit (the CRLF after a last line without LF) can fail. */
	calls = 0;
	ck_assert_int_eq(mbox_send(fd, &idx.v[1], -1, count_emit, &calls), 0);
	ck_assert_int_gt(calls, 0);
	left = calls - 1;
	ck_assert_int_eq(mbox_send(fd, &idx.v[1], -1, countdown_emit, &left),
	    -2);
	ck_assert_int_eq(mbox_send(-1, &idx.v[0], -1, tbuf_emit, &out), -1);
	mbox_index_free(&idx);
	(void)close(fd);
	tbuf_free(&out);
}
END_TEST

START_TEST(test_mbox_send_empty_message_emits_nothing)
{
	static const char mbox[] = "From a\n\nFrom b\n";
	struct mbox_index idx;
	int fd;

	fd = temp_file(mbox, sizeof(mbox) - 1);
	ck_assert_int_eq(scan_fd(fd, sizeof(mbox) - 1, &idx), 0);
	ck_assert_uint_eq(idx.n, 2);
	ck_assert_uint_eq(idx.v[0].size, 0);
	ck_assert_uint_eq(idx.v[1].size, 0);
	ck_assert_int_eq(mbox_send(fd, &idx.v[0], -1, fail_emit, NULL), 0);
	ck_assert_int_eq(mbox_send(fd, &idx.v[1], 5, fail_emit, NULL), 0);
	mbox_index_free(&idx);
	(void)close(fd);
}
END_TEST

/* UIDL. */

START_TEST(test_mbox_uidl_from_x_uidl_header)
{
	struct mbox_index idx;

	uidls_of("From a\nSubject: s\nX-UIDL: 1b2c3d-x.y@z!\n\nbody\n\n"
	    "From b\r\nX-UIDL: crlf-uid\r\nH: 2\r\n\r\nbody\r\n\r\n"
	    "From c\nX-UIDL: "
	    "0123456789012345678901234567890123456789012345678901234567890123456789"
	    "\n\nbody\n", &idx);
	ck_assert_uint_eq(idx.n, 3);
	ck_assert_str_eq(idx.v[0].uidl, "1b2c3d-x.y@z!");
	ck_assert_str_eq(idx.v[1].uidl, "crlf-uid");
	ck_assert_str_eq(idx.v[2].uidl, "0123456789012345678901234567890123"
	    "456789012345678901234567890123456789");
	mbox_index_free(&idx);
}
END_TEST

START_TEST(test_mbox_uidl_bad_x_uidl_falls_back_to_digest)
{
	static const char *bad[] = {
		"From a\nX-UIDL: has space\n\nbody\n",
		"From a\nX-UIDL: \n\nbody\n",
		"From a\nX-UIDL: "
		"01234567890123456789012345678901234567890123456789012345678901234567890"
		"\n\nbody\n",
		"From a\nX-UIDL: caf\xc3\xa9\n\nbody\n",
		"From a\nX-UIDL: tab\there\n\nbody\n",
		/* In the body it is no header. */
		"From a\nSubject: s\n\nX-UIDL: in-the-body\n",
		/* A last line without its LF: not known to be whole. */
		"From a\nH: 1\nX-UIDL: 1b2c3",
		"From a\nX-UIDL: abc\x01\n\nbody\n",
	};
	struct mbox_index idx;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uidls_of(bad[i], &idx);
		ck_assert_uint_eq(idx.n, 1);
		ck_assert_msg(is_hex_uidl(idx.v[0].uidl),
		    "case %zu: UIDL \"%s\", want 32 hex digits", i,
		    idx.v[0].uidl);
		mbox_index_free(&idx);
	}
}
END_TEST

/* An X-UIDL line cut by the end of the file, after a message long
 * enough to fill the reader's buffer: the id is what the line says, not
 * what an earlier read left in the buffer. */
START_TEST(test_mbox_uidl_x_uidl_at_end_after_big_message)
{
	struct tbuf mbox = { 0 };
	struct mbox_index idx;
	size_t i;

	tbuf_addstr(&mbox, "From a\nSubject: big\n\n");
	for (i = 0; i < 3000; i++)
		tbuf_addstr(&mbox, "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
		    "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz\n");
	tbuf_addstr(&mbox, "\nFrom b\nX-UIDL: abc\n");
	scan_ok(mbox.data, mbox.len, &idx);
	ck_assert_uint_eq(idx.n, 2);
	ck_assert_str_eq(idx.v[1].uidl, "abc");
	mbox_index_free(&idx);
	/* No final LF: the digest. */
	scan_ok(mbox.data, mbox.len - 1, &idx);
	ck_assert_uint_eq(idx.n, 2);
	ck_assert(is_hex_uidl(idx.v[1].uidl));
	mbox_index_free(&idx);
	tbuf_free(&mbox);
}
END_TEST

START_TEST(test_mbox_uidl_digest_form_and_distinct)
{
	struct mbox_index idx;

	uidls_of("From a\nSubject: one\n\nbody\n\n"
	    "From a\nSubject: two\n\nbody\n\n"
	    "From a\nSubject: one\n\nbodY\n\n"
	    "From a\nSubject: one\n\nbody\nStatus: RO\n", &idx);
	ck_assert_uint_eq(idx.n, 4);
	ck_assert(is_hex_uidl(idx.v[0].uidl));
	ck_assert(is_hex_uidl(idx.v[1].uidl));
	ck_assert(is_hex_uidl(idx.v[2].uidl));
	ck_assert(is_hex_uidl(idx.v[3].uidl));
	ck_assert_str_ne(idx.v[0].uidl, idx.v[1].uidl);
	ck_assert_str_ne(idx.v[0].uidl, idx.v[2].uidl);
	/* A "Status:" line in the body is content. */
	ck_assert_str_ne(idx.v[0].uidl, idx.v[3].uidl);
	mbox_index_free(&idx);
}
END_TEST

START_TEST(test_mbox_uidl_ignores_headers_muas_rewrite)
{
	static const char *plain = "From a Sat Jan  1 00:00:00 2000\n"
	    "Subject: s\nMessage-ID: <1@x>\n\nbody\n";
	static const char *rewritten[] = {
		"From a Sat Jan  1 00:00:00 2000\n"
		"Subject: s\nMessage-ID: <1@x>\nStatus: RO\n\nbody\n",
		"From a Sat Jan  1 00:00:00 2000\n"
		"Status: O\nSubject: s\nMessage-ID: <1@x>\n\nbody\n",
		"From a Sat Jan  1 00:00:00 2000\n"
		"Subject: s\nStatus: RO\nX-Status: A\nX-Keywords: $Label1\n"
		"X-UID: 7\nMessage-ID: <1@x>\nContent-Length: 5\nLines: 1\n"
		"\nbody\n",
		"From a Sat Jan  1 00:00:00 2000\n"
		"X-IMAPbase: 1234567890 0000000042\nX-IMAP: 1 2\n"
		"Subject: s\nMessage-ID: <1@x>\n\nbody\n",
	};
	struct mbox_index idx;
	char want[MBOX_UIDL_MAX + 1];
	size_t i;

	uidls_of(plain, &idx);
	ck_assert_uint_eq(idx.n, 1);
	memcpy(want, idx.v[0].uidl, sizeof(want));
	ck_assert(is_hex_uidl(want));
	mbox_index_free(&idx);
	for (i = 0; i < sizeof(rewritten) / sizeof(rewritten[0]); i++) {
		uidls_of(rewritten[i], &idx);
		ck_assert_uint_eq(idx.n, 1);
		ck_assert_msg(strcmp(idx.v[0].uidl, want) == 0,
		    "case %zu: UIDL %s, want %s", i, idx.v[0].uidl, want);
		mbox_index_free(&idx);
	}
}
END_TEST

START_TEST(test_mbox_uidl_not_position_dependent)
{
	static const char m1[] = "From a\nSubject: 1\n\none\n\n";
	static const char m2[] = "From b\nSubject: 2\n\ntwo\n\n";
	static const char m3[] = "From c\nSubject: 3\nX-UIDL: three\n\n3\n\n";
	struct mbox_index all, rest;
	char buf[256];

	(void)snprintf(buf, sizeof(buf), "%s%s%s", m1, m2, m3);
	uidls_of(buf, &all);
	(void)snprintf(buf, sizeof(buf), "%s%s", m2, m3);
	uidls_of(buf, &rest);
	ck_assert_uint_eq(all.n, 3);
	ck_assert_uint_eq(rest.n, 2);
	ck_assert_str_eq(all.v[1].uidl, rest.v[0].uidl);
	ck_assert_str_eq(all.v[2].uidl, rest.v[1].uidl);
	ck_assert_str_eq(rest.v[1].uidl, "three");
	mbox_index_free(&all);
	mbox_index_free(&rest);

	/* The same again and again: the same UIDLs. */
	(void)snprintf(buf, sizeof(buf), "%s%s%s", m1, m2, m3);
	uidls_of(buf, &rest);
	uidls_of(buf, &all);
	ck_assert_str_eq(all.v[0].uidl, rest.v[0].uidl);
	ck_assert_str_eq(all.v[1].uidl, rest.v[1].uidl);
	mbox_index_free(&all);
	mbox_index_free(&rest);
}
END_TEST

/* Read-buffer boundaries. */

/*
 * A message of about 384 KiB, then one of 300 KiB, then a small one.
 * ">>From " straddles the first read boundary, "From " inside a
 * paragraph the second, "\n\nFrom " (end of message 1, separator, next
 * From_ line) the third with its first _i octets before it; a dot line,
 * a CRLF and the end of message 2 sit on later ones.
 */
START_TEST(test_mbox_large_messages_across_buffers)
{
	size_t len = 6 * BOUNDARY + 65536, pos = 0, k = (size_t)_i;
	uint32_t seed = 0x9e3779b9u + (uint32_t)_i;
	struct mbox_index idx;
	char what[64], *buf;
	int fd;

	buf = malloc(len);
	ck_assert_ptr_nonnull(buf);
	put(buf, &pos, "From big@example.org Mon Jan  1 00:00:00 2024\n"
	    "Subject: big\nX-UIDL: big-one\n\n");
	fill_to(buf, &pos, BOUNDARY - 3, &seed);
	put(buf, &pos, ">>From quoted twice\n");
	fill_to(buf, &pos, 2 * BOUNDARY - 2, &seed);
	put(buf, &pos, "From inside a paragraph\n");
	fill_to(buf, &pos, 3 * BOUNDARY - k + 1, &seed);
	/* The last LF of message 1 is the first octet of "\n\nFrom ". */
	pos--;
	ck_assert_uint_eq(pos, 3 * BOUNDARY - k);
	put(buf, &pos, "\n\nFrom second@example.org Mon Jan  1 00:00:01 2024\n"
	    "Subject: second\n\n");
	fill_to(buf, &pos, 4 * BOUNDARY - 1, &seed);
	put(buf, &pos, ".\n");
	fill_to(buf, &pos, 5 * BOUNDARY - 2, &seed);
	put(buf, &pos, "x\r\n");
	fill_to(buf, &pos, 5 * BOUNDARY + 60000, &seed);
	put(buf, &pos, ">From the end\n\nFrom third@example.org\n"
	    "Subject: third\n\nno final newline");
	ck_assert_uint_lt(pos, len);

	(void)snprintf(what, sizeof(what), "split %zu", k);
	fd = temp_file(buf, pos);
	ck_assert_int_eq(scan_fd(fd, pos, &idx), 0);
	ck_assert_uint_eq(idx.n, 3);
	ck_assert_int_eq((long long)idx.v[1].from, (long long)(3 * BOUNDARY -
	    k + 2));
	ck_assert_uint_gt(idx.v[0].size, 2 * BOUNDARY);
	ck_assert_uint_gt(idx.v[1].size, 2 * BOUNDARY);
	ck_assert_str_eq(idx.v[0].uidl, "big-one");
	compare_with_ref(what, buf, pos, fd, &idx, 0);
	mbox_index_free(&idx);
	(void)close(fd);
	free(buf);
}
END_TEST

/*
 * Lines longer than any read buffer: a From_ line, a quoted ">>...>From "
 * line, a header before X-UIDL, and lines of the lengths around powers
 * of two that chunked readers get wrong.
 */
START_TEST(test_mbox_long_lines)
{
	static const size_t lens[] = { 255, 256, 257, 4095, 4096, 4097,
	    65535, 65536, 65537, BOUNDARY - 1, BOUNDARY, BOUNDARY + 1 };
	struct tbuf mbox = { 0 };
	struct mbox_index idx;
	size_t i, j;
	int fd;

	/* A From_ line of 200 KB, a long header, then X-UIDL. */
	tbuf_addstr(&mbox, "From ");
	for (i = 0; i < 200000; i++)
		tbuf_add(&mbox, "x", 1);
	tbuf_addstr(&mbox, "\nX-Long: ");
	for (i = 0; i < 150000; i++)
		tbuf_add(&mbox, "h", 1);
	tbuf_addstr(&mbox, "\nX-UIDL: after-long\n\n");
	/* A quoted From_ line behind 100000 '>'. */
	for (i = 0; i < 100000; i++)
		tbuf_add(&mbox, ">", 1);
	tbuf_addstr(&mbox, "From deep\n");
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		/* "From " right after a line of that length, and one more
		 * line of that length starting with "." */
		for (j = 0; j < lens[i]; j++)
			tbuf_add(&mbox, "a", 1);
		tbuf_addstr(&mbox, "\nFrom not a separator\n.");
		for (j = 1; j < lens[i]; j++)
			tbuf_add(&mbox, "b", 1);
		tbuf_addstr(&mbox, "\n\nFrom next\nH: x\n\n");
	}
	tbuf_addstr(&mbox, "end");

	fd = temp_file(mbox.data, mbox.len);
	ck_assert_int_eq(scan_fd(fd, mbox.len, &idx), 0);
	ck_assert_uint_eq(idx.n, 1 + sizeof(lens) / sizeof(lens[0]));
	ck_assert_str_eq(idx.v[0].uidl, "after-long");
	compare_with_ref("long lines", mbox.data, mbox.len, fd, &idx, 1);
	mbox_index_free(&idx);
	(void)close(fd);
	tbuf_free(&mbox);
}
END_TEST

/*
 * ">...>From " lines of several depths placed so that a read boundary
 * falls at every few octets of them: the size and what RETR sends must
 * agree with each other and with the reference.
 */
START_TEST(test_mbox_quote_across_buffer_boundary)
{
	static const size_t depths[] = { 1, 3, 60, 123, 124, 128, 200 };
	size_t backs[8], len, pos, d, k, i;
	uint32_t seed = 0x1234567u;
	struct mbox_index idx;
	char what[64], *buf;
	int fd;

	len = BOUNDARY + 4096;
	buf = malloc(len);
	ck_assert_ptr_nonnull(buf);
	fd = temp_file("", 0);
	for (i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
		d = depths[i];
		backs[0] = 1;
		backs[1] = 2;
		backs[2] = d / 2 + 1;
		backs[3] = d;
		backs[4] = d + 1;
		backs[5] = d + 3;
		backs[6] = d + 5;
		backs[7] = d + 6;
		for (k = 0; k < sizeof(backs) / sizeof(backs[0]); k++) {
			pos = 0;
			put(buf, &pos, "From a\nH: 1\n\n");
			fill_to(buf, &pos, BOUNDARY - backs[k], &seed);
			memset(buf + pos, '>', d);
			pos += d;
			put(buf, &pos, "From deep\nend\n");
			temp_rewrite(fd, buf, pos);
			(void)snprintf(what, sizeof(what), "depth %zu, %zu "
			    "before the boundary", d, backs[k]);
			ck_assert_int_eq(scan_fd(fd, pos, &idx), 0);
			compare_with_ref(what, buf, pos, fd, &idx, 0);
			mbox_index_free(&idx);
		}
	}
	(void)close(fd);
	free(buf);
}
END_TEST

/* ">...>From " with more '>' than a read buffer holds: still quoting. */
START_TEST(test_mbox_quote_deeper_than_buffer)
{
	struct tbuf mbox = { 0 };
	struct mbox_index idx;
	size_t i;
	int fd;

	tbuf_addstr(&mbox, "From a\nH: 1\n\n");
	for (i = 0; i < BOUNDARY + 1000; i++)
		tbuf_add(&mbox, ">", 1);
	tbuf_addstr(&mbox, "From deep\n");
	fd = temp_file(mbox.data, mbox.len);
	ck_assert_int_eq(scan_fd(fd, mbox.len, &idx), 0);
	ck_assert_uint_eq(idx.n, 1);
	/* "H: 1", the blank line, one '>' less, CRLF. */
	ck_assert_uint_eq(idx.v[0].size, 6 + 2 + BOUNDARY + 999 + 9 + 2);
	compare_with_ref("deep quote", mbox.data, mbox.len, fd, &idx, 0);
	mbox_index_free(&idx);
	(void)close(fd);
	tbuf_free(&mbox);
}
END_TEST

/* Random files against the reference. */

START_TEST(test_mbox_random_against_reference)
{
	static const char *pieces[] = {
		"From a\n", "From b\r\n", ">From x\n", ">>From y\n", "\n",
		"\n", "\r\n", "a", ".", "\r", "From ", ">", "H: 1\n",
		"Status: RO\n", "X-UIDL: u\n",
	};
	struct tbuf mbox = { 0 };
	struct mbox_index idx;
	uint32_t seed = 0x2545f491u;
	size_t n, i, count;
	char what[300], e[256];
	int fd;

	fd = temp_file("", 0);
	for (n = 0; n < RANDOM_CASES; n++) {
		tbuf_reset(&mbox);
		tbuf_addstr(&mbox, "From r\n");
		count = rng_next(&seed) % (RANDOM_PIECES + 1);
		for (i = 0; i < count; i++)
			tbuf_addstr(&mbox, pieces[rng_next(&seed) %
			    (sizeof(pieces) / sizeof(pieces[0]))]);
		temp_rewrite(fd, mbox.data, mbox.len);
		(void)snprintf(what, sizeof(what), "case %zu \"%s\"", n,
		    tbuf_escape(mbox.data, mbox.len, e, sizeof(e)));
		ck_assert_msg(scan_fd(fd, mbox.len, &idx) == 0, "%s", what);
		compare_with_ref(what, mbox.data, mbox.len, fd, &idx, n % 4 == 0);
		mbox_index_free(&idx);
	}
	(void)close(fd);
	tbuf_free(&mbox);
}
END_TEST

Suite *
mbox_suite(void)
{
	Suite *s = suite_create("mbox");
	TCase *tc;
	int nscan = (int)(sizeof(scan_cases) / sizeof(scan_cases[0]));
	int nbad = (int)(sizeof(not_mbox) / sizeof(not_mbox[0]));
	int nsend = (int)(sizeof(send_cases) / sizeof(send_cases[0]));

	tc = tcase_create("scan");
	tcase_add_loop_test(tc, test_mbox_scan_cases, 0, nscan);
	tcase_add_test(tc, test_mbox_scan_empty_file);
	tcase_add_loop_test(tc, test_mbox_scan_not_an_mbox, 0, nbad);
	tcase_add_test(tc, test_mbox_scan_only_the_given_length);
	tcase_add_test(tc, test_mbox_scan_many_messages);
	tcase_add_test(tc, test_mbox_index_free_empty);
	tcase_add_test(tc, test_mbox_scan_bad_fd);
	suite_add_tcase(s, tc);

	tc = tcase_create("send");
	tcase_add_loop_test(tc, test_mbox_send_cases, 0, nsend);
	tcase_add_test(tc, test_mbox_send_ignores_file_offset);
	tcase_add_test(tc, test_mbox_send_errors);
	tcase_add_test(tc, test_mbox_send_empty_message_emits_nothing);
	suite_add_tcase(s, tc);

	tc = tcase_create("uidl");
	tcase_add_test(tc, test_mbox_uidl_from_x_uidl_header);
	tcase_add_test(tc, test_mbox_uidl_bad_x_uidl_falls_back_to_digest);
	tcase_add_test(tc, test_mbox_uidl_x_uidl_at_end_after_big_message);
	tcase_add_test(tc, test_mbox_uidl_digest_form_and_distinct);
	tcase_add_test(tc, test_mbox_uidl_ignores_headers_muas_rewrite);
	tcase_add_test(tc, test_mbox_uidl_not_position_dependent);
	suite_add_tcase(s, tc);

	tc = tcase_create("buffers");
	tcase_add_loop_test(tc, test_mbox_large_messages_across_buffers, 0, 8);
	tcase_add_test(tc, test_mbox_quote_across_buffer_boundary);
	tcase_add_test(tc, test_mbox_long_lines);
	tcase_add_test(tc, test_mbox_quote_deeper_than_buffer);
	tcase_set_timeout(tc, 20);
	suite_add_tcase(s, tc);

	tc = tcase_create("random");
	tcase_add_test(tc, test_mbox_random_against_reference);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}
