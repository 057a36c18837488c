/*
 * fuzz_mbox.c: the mbox reader (mbox.h): mbox_scan() and mbox_send() on
 * arbitrary files, against a reference reader written one line at a
 * time (its parser, ref_mbox_parse, is the unit tests' one, in ref.c).
 *
 * Input: one octet of options, one octet placing a buffer boundary, then
 * the mbox.  The options: the TOP line count in the low four bits; in
 * the next two, how many times emit succeeds during TOP (3: always);
 * when the top three are set, a filler message of about FILE_BUF_SIZE
 * octets goes first, so that the rest lies across the reader's buffer
 * boundary.  The file also holds octets past the length mbox_scan() is
 * given, which must not count.
 *
 * mbox_scan() must say "not an mbox" exactly when the reference does,
 * and otherwise find the same messages: the From_ line, the start and
 * the end of each (so offsets within the length, in order, separator
 * excluded), the size that RETR sends (the octets mbox_send() gives,
 * less the stuffing dots), and the UIDL: the value of the first usable
 * X-UIDL header (1 to 70 octets in 0x21..0x7E, nothing after it but
 * white space up to the LF that ends the line), else the MD5 of the message without the headers that
 * mail readers rewrite.  mbox_send() must give what the reference does
 * (">From " unquoted, then stream.h's conversion) for RETR and TOP n
 * (only RETR for messages over BIG_MESSAGE octets, such as the filler),
 * and with an emit that fails, stop with -2 after a prefix of it.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../mbox.h"
#include "../../md5.h"
#include "../../pop3d.h"
#include "fuzz_common.h"

/* Octets in the file after the length mbox_scan() is given. */
#define TAIL		"\nFrom tail\nX-UIDL: tail\n\ntail\n"
#define FILLER_FROM	"From filler@example.org Sat Jan  1 00:00:00 2000\n"
#define FILLER_LINE	64
/* Messages longer than this are only checked with RETR. */
#define BIG_MESSAGE	(16 * 1024)

struct limited {
	struct tbuf	*out;
	int		 budget;	/* calls before emit fails; -1 never */
};

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int	limited_emit(void *, const char *, size_t);
static size_t	line_end(const char *, size_t, size_t);
static void	ref_unquote(const char *, size_t, struct tbuf *);
static void	ref_output(const char *, const struct ref_msg *, long,
		    struct tbuf *);
static int	volatile_header(const char *, size_t);
static int	ref_xuidl(const char *, size_t, char *);
static void	ref_uidl(const char *, const struct ref_msg *, char *);
static void	make_filler(struct tbuf *, size_t);
static int	big_seen(const char *, const struct ref_msg *,
		    const struct mbox_entry *);
static void	big_keep(const char *, const struct ref_msg *,
		    const struct mbox_entry *);
static void	check_message(int, const char *, const struct ref_msg *,
		    const struct mbox_entry *, long, int);

static int
limited_emit(void *ctx, const char *buf, size_t len)
{
	struct limited *l = ctx;

	if (l->budget == 0)
		return -1;
	if (l->budget > 0)
		l->budget--;
	tbuf_add(l->out, buf, len);
	return 0;
}

/* The offset after the line at pos: past its LF, or len. */
static size_t
line_end(const char *buf, size_t len, size_t pos)
{
	const char *lf = memchr(buf + pos, '\n', len - pos);

	return lf == NULL ? len : (size_t)(lf - buf) + 1;
}

/* One '>' off each line that is '>'s and then "From ". */
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

static void
ref_output(const char *buf, const struct ref_msg *m, long lines,
    struct tbuf *out)
{
	static struct tbuf plain;	/* kept: messages may be 128 KiB */

	ref_unquote(buf + m->start, m->end - m->start, &plain);
	ref_convert(plain.data, plain.len, lines, out);
}

/* A header that mail readers rewrite, left out of the digest. */
static int
volatile_header(const char *p, size_t n)
{
	static const char *const names[] = {
		"Status:", "X-Status:", "X-Keywords:", "X-UID:", "X-IMAP:",
		"X-IMAPbase:", "Content-Length:", "Lines:", NULL
	};
	size_t i;

	for (i = 0; names[i] != NULL; i++)
		if (n >= strlen(names[i]) &&
		    strncasecmp(p, names[i], strlen(names[i])) == 0)
			return 1;
	return 0;
}

/*
 * The id of an "X-UIDL:" header line of n octets (its LF included, if
 * it has one) into uidl: 1 when usable, else 0.  A line without its LF
 * (at the end of the file) is not known to be whole: not usable.
 */
static int
ref_xuidl(const char *p, size_t n, char *uidl)
{
	size_t i = 7, v, vlen;

	if (n <= 7 || strncasecmp(p, "X-UIDL:", 7) != 0 || p[n - 1] != '\n')
		return 0;
	n--;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	for (v = i; i < n && p[i] > 0x20 && p[i] < 0x7f; i++)
		;
	vlen = i - v;
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r'))
		i++;
	if (i < n || vlen == 0 || vlen > MBOX_UIDL_MAX)
		return 0;
	memcpy(uidl, p + v, vlen);
	uidl[vlen] = '\0';
	return 1;
}

static void
ref_uidl(const char *buf, const struct ref_msg *m, char *uidl)
{
	unsigned char d[MD5_DIGEST_LEN];
	size_t pos, next, i;
	int header = 1, skip = 0;
	struct md5 md5;

	for (pos = m->start; header && pos < m->end; pos = next) {
		next = line_end(buf, m->end, pos);
		if (ref_empty_line(buf + pos, next - pos))
			header = 0;
		else if (buf[pos] != ' ' && buf[pos] != '\t' &&
		    ref_xuidl(buf + pos, next - pos, uidl))
			return;
	}
	md5_init(&md5);
	header = 1;
	for (pos = m->start; pos < m->end; pos = next) {
		next = line_end(buf, m->end, pos);
		if (header && ref_empty_line(buf + pos, next - pos))
			header = skip = 0;
		else if (header && buf[pos] != ' ' && buf[pos] != '\t')
			skip = volatile_header(buf + pos, next - pos);
		if (!skip)
			md5_update(&md5, buf + pos, next - pos);
	}
	md5_final(&md5, d);
	for (i = 0; i < MD5_DIGEST_LEN; i++) {
		uidl[2 * i] = "0123456789abcdef"[d[i] >> 4];
		uidl[2 * i + 1] = "0123456789abcdef"[d[i] & 15];
	}
	uidl[2 * MD5_DIGEST_LEN] = '\0';
}

/* A message of len octets in lines of FILLER_LINE, ending "\n\n". */
static void
make_filler(struct tbuf *b, size_t len)
{
	char line[FILLER_LINE];

	tbuf_add(b, FILLER_FROM, strlen(FILLER_FROM));
	len -= strlen(FILLER_FROM);
	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\n';
	while (len > sizeof(line) + 1) {
		tbuf_add(b, line, sizeof(line));
		len -= sizeof(line);
	}
	/* 2 to FILLER_LINE + 1 octets left: a last line, an empty one. */
	tbuf_add(b, line, len - 2);
	tbuf_add(b, "\n\n", 2);
}

/*
 * The last big message (the filler, mostly) that passed, and what
 * mbox_scan() said of it: the same octets need no new check, as pop3d's
 * reading of them is the same, and that saves most of the time.
 */
static struct {
	struct tbuf	 text;
	uint64_t	 size;
	char		 uidl[MBOX_UIDL_MAX + 1];
} big;

static int
big_seen(const char *buf, const struct ref_msg *m,
    const struct mbox_entry *e)
{
	size_t len = m->end - m->start;

	if (len <= BIG_MESSAGE || big.text.len != len ||
	    memcmp(big.text.data, buf + m->start, len) != 0)
		return 0;
	FUZZ_CHECK(e->size == big.size && strcmp(e->uidl, big.uidl) == 0,
	    "the same message, another size or UIDL");
	return 1;
}

static void
big_keep(const char *buf, const struct ref_msg *m,
    const struct mbox_entry *e)
{
	tbuf_reset(&big.text);
	tbuf_add(&big.text, buf + m->start, m->end - m->start);
	big.size = e->size;
	memcpy(big.uidl, e->uidl, sizeof(big.uidl));
}

static void
check_message(int fd, const char *buf, const struct ref_msg *m,
    const struct mbox_entry *e, long lines, int budget)
{
	static struct tbuf got, want, plain;	/* kept from run to run */
	struct limited l = { &got, budget };
	char uidl[MBOX_UIDL_MAX + 1];
	int r;

	FUZZ_CHECK(e->from == (off_t)m->from && e->start == (off_t)m->start &&
	    e->end == (off_t)m->end, "message at %lld/%lld/%lld, want "
	    "%zu/%zu/%zu", (long long)e->from, (long long)e->start,
	    (long long)e->end, m->from, m->start, m->end);
	if (big_seen(buf, m, e))
		return;
	ref_uidl(buf, m, uidl);
	FUZZ_CHECK(strcmp(e->uidl, uidl) == 0, "UIDL \"%s\", want \"%s\"",
	    e->uidl, uidl);

	tbuf_reset(&got);
	FUZZ_CHECK(mbox_send(fd, e, -1, tbuf_emit, &got) == 0, "mbox_send");
	ref_output(buf, m, -1, &want);
	tbuf_expect("RETR", &got, &want);
	fuzz_check_wire("RETR", &got);
	fuzz_unstuff(got.data, got.len, &plain);
	FUZZ_CHECK(plain.len == e->size, "size %llu, %zu octets sent "
	    "unstuffed", (unsigned long long)e->size, plain.len);

	if (m->end - m->start > BIG_MESSAGE) {
		big_keep(buf, m, e);
		return;		/* the filler: RETR is enough */
	}
	/* TOP, through an emit that may fail (budget >= 0). */
	tbuf_reset(&got);
	r = mbox_send(fd, e, lines, limited_emit, &l);
	ref_output(buf, m, lines, &want);
	FUZZ_CHECK(r == 0 || (r == -2 && budget >= 0), "mbox_send gave %d",
	    r);
	if (r == 0) {
		tbuf_expect("TOP", &got, &want);
		fuzz_check_wire("TOP", &got);
	} else
		FUZZ_CHECK(got.len <= want.len && (got.len == 0 ||
		    memcmp(got.data, want.data, got.len) == 0),
		    "TOP with a failing emit: not a prefix of the output");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static struct tbuf file;
	struct mbox_index idx;
	struct ref_msg *ref;
	size_t n, i, len;
	long lines;
	int r, want, budget;

	if (fd == -1)
		fd = fuzz_tempfd("mbox");
	if (size < 2)
		return 0;
	lines = data[0] & 15;
	budget = (data[0] >> 4 & 3) == 3 ? -1 : data[0] >> 4 & 3;
	tbuf_reset(&file);
	if (data[0] >> 5 == 7)
		make_filler(&file, FILE_BUF_SIZE - 1 - (size_t)data[1]);
	tbuf_add(&file, data + 2, size - 2);
	len = file.len;
	tbuf_add(&file, TAIL, strlen(TAIL));
	fuzz_rewrite(fd, file.data, file.len);

	r = mbox_scan(fd, (off_t)len, &idx);
	want = ref_mbox_parse(file.data, len, &ref, &n);
	FUZZ_CHECK(r == want, "mbox_scan gave %d, the reference %d", r, want);
	if (r == 0) {
		FUZZ_CHECK(idx.n == n, "%zu messages, want %zu", idx.n, n);
		for (i = 0; i < n; i++) {
			FUZZ_CHECK(idx.v[i].from < idx.v[i].start &&
			    idx.v[i].start <= idx.v[i].end &&
			    idx.v[i].end <= (off_t)len && (i == 0 ||
			    idx.v[i - 1].end <= idx.v[i].from),
			    "message %zu out of place", i + 1);
			check_message(fd, file.data, &ref[i], &idx.v[i], lines,
			    budget);
		}
		mbox_index_free(&idx);
	}
	free(ref);
	return 0;
}
