/*
 * fuzz_stream.c: the POP3 message converter (stream.h), differentially.
 *
 * Input: one octet choosing the TOP line count (0 to 15, or near
 * LONG_MAX), four octets seeding the split points and buffer sizes, then
 * the message.  What every way of sending it gives must equal a
 * reference converter that works one octet at a time: stream_feed() in
 * one piece and cut at random points (empty pieces too), for RETR and
 * TOP; stream_fd() on a file; stream_fd_direct() on a file of the
 * message repeated past a few reads (RETR read into and converted in
 * reserved room of random size, each room a heap block of exactly that
 * size so that an overrun is caught).  The sizer, in pieces and on the
 * file, must give the octets RETR sends less the stuffing dots, and a
 * count made without converting.  An emit or a reserve that fails must
 * stop the stream with the right return value after a prefix of the
 * right output.  Any difference aborts.
 */
#include <sys/types.h>

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../stream.h"
#include "fuzz_common.h"

/* Most pieces an input is cut into. */
#define MAX_CUTS	8
/* Room given beyond what stream_fd_direct() asks for, at most. */
#define ROOM_EXTRA	4096
/* The message is repeated to this many octets or more for it. */
#define DIRECT_LEN	36000

/* The caller's buffer of the direct path. */
struct direct {
	struct tbuf	*out;
	uint32_t	*rng;
	char		*cur;		/* reserved and not committed */
	size_t		 room;
	int		 budget;	/* reserves before one fails; -1 none */
};

/* An emit that fails once its budget of calls is spent. */
struct limited {
	struct tbuf	*out;
	int		 budget;
};

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char	*direct_reserve(void *, size_t, size_t *);
static void	 direct_commit(void *, size_t);
static int	 direct_emit(void *, const char *, size_t);
static int	 limited_emit(void *, const char *, size_t);
static uint64_t	 ref_size(const char *, size_t);
static void	 feed_split(struct stream *, const char *, size_t, uint32_t *);
static void	 convert(const char *, size_t, long, uint32_t *, struct tbuf *);
static uint64_t	 size_split(const char *, size_t, uint32_t *);
static void	 repeat(const char *, size_t, struct tbuf *);
static void	 check_fd(int, const char *, size_t, long,
		    const struct tbuf *, const struct tbuf *, uint64_t,
		    uint32_t *);
static void	 check_failures(int, const char *, size_t,
		    const struct tbuf *, uint32_t *);
static void	 expect_prefix(const char *, const struct tbuf *,
		    const struct tbuf *);

static char *
direct_reserve(void *ctx, size_t need, size_t *room)
{
	struct direct *d = ctx;

	FUZZ_CHECK(d->cur == NULL, "reserve twice without a commit");
	FUZZ_CHECK(need > STREAM_GAP, "reserve of %zu octets", need);
	if (d->budget == 0)
		return NULL;
	if (d->budget > 0)
		d->budget--;
	d->room = need + fuzz_rng(d->rng) % (ROOM_EXTRA + 1);
	if ((d->cur = malloc(d->room)) == NULL)
		abort();
	*room = d->room;
	return d->cur;
}

static void
direct_commit(void *ctx, size_t used)
{
	struct direct *d = ctx;

	FUZZ_CHECK(d->cur != NULL, "commit without a reserve");
	FUZZ_CHECK(used <= d->room, "committed %zu octets of %zu", used,
	    d->room);
	tbuf_add(d->out, d->cur, used);
	free(d->cur);
	d->cur = NULL;
}

static int
direct_emit(void *ctx, const char *buf, size_t len)
{
	struct direct *d = ctx;

	FUZZ_CHECK(d->cur == NULL, "emit between reserve and commit");
	tbuf_add(d->out, buf, len);
	return 0;
}

static int
limited_emit(void *ctx, const char *buf, size_t len)
{
	struct limited *l = ctx;

	if (l->budget == 0)
		return -1;
	l->budget--;
	tbuf_add(l->out, buf, len);
	return 0;
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

/* Feed the message cut at random points, some pieces empty. */
static void
feed_split(struct stream *st, const char *msg, size_t len, uint32_t *rng)
{
	size_t cuts = fuzz_rng(rng) % (MAX_CUTS + 1), from = 0, to, i;

	for (i = 0; i <= cuts; i++) {
		to = i == cuts ? len : from + fuzz_rng(rng) % (len - from + 1);
		FUZZ_CHECK(stream_feed(st, msg + from, to - from) == 0,
		    "stream_feed failed");
		from = to;
	}
}

static void
convert(const char *msg, size_t len, long lines, uint32_t *rng,
    struct tbuf *out)
{
	struct stream st;

	tbuf_reset(out);
	stream_init(&st, lines, tbuf_emit, out);
	if (rng == NULL)
		FUZZ_CHECK(stream_feed(&st, msg, len) == 0, "stream_feed");
	else
		feed_split(&st, msg, len, rng);
	FUZZ_CHECK(stream_finish(&st) == 0, "stream_finish failed");
}

static uint64_t
size_split(const char *msg, size_t len, uint32_t *rng)
{
	size_t cuts = fuzz_rng(rng) % (MAX_CUTS + 1), from = 0, to, i;
	struct stream_size sz;

	stream_size_init(&sz);
	for (i = 0; i <= cuts; i++) {
		to = i == cuts ? len : from + fuzz_rng(rng) % (len - from + 1);
		stream_size_feed(&sz, msg + from, to - from);
		from = to;
	}
	return stream_size_end(&sz);
}

/* The message repeated to DIRECT_LEN octets or more, in *rep. */
static void
repeat(const char *msg, size_t len, struct tbuf *rep)
{
	tbuf_reset(rep);
	do
		tbuf_add(rep, msg, len);
	while (len > 0 && rep->len < DIRECT_LEN);
}

/* The file-reading entry points, on fd holding the message. */
static void
check_fd(int fd, const char *msg, size_t len, long lines,
    const struct tbuf *whole, const struct tbuf *top, uint64_t size,
    uint32_t *rng)
{
	struct tbuf out = { 0 }, rep = { 0 }, want = { 0 };
	struct direct d = { &out, rng, NULL, 0, -1 };
	uint64_t fsize = UINT64_MAX;

	fuzz_rewrite(fd, msg, len);
	tbuf_reset(&out);
	FUZZ_CHECK(stream_fd(fd, -1, tbuf_emit, &out) == 0, "stream_fd");
	tbuf_expect("stream_fd RETR", &out, whole);

	fuzz_rewrite(fd, msg, len);
	tbuf_reset(&out);
	FUZZ_CHECK(stream_fd(fd, lines, tbuf_emit, &out) == 0, "stream_fd");
	tbuf_expect("stream_fd TOP", &out, top);

	repeat(msg, len, &rep);
	ref_convert(rep.data, rep.len, -1, &want);
	fuzz_rewrite(fd, rep.data, rep.len);
	tbuf_reset(&out);
	FUZZ_CHECK(stream_fd_direct(fd, direct_emit, direct_reserve,
	    direct_commit, &d) == 0, "stream_fd_direct");
	FUZZ_CHECK(d.cur == NULL, "reserved room left uncommitted");
	tbuf_expect("stream_fd_direct RETR", &out, &want);

	fuzz_rewrite(fd, msg, len);
	FUZZ_CHECK(stream_size_fd(fd, &fsize) == 0, "stream_size_fd");
	FUZZ_CHECK(fsize == size, "stream_size_fd %llu, want %llu",
	    (unsigned long long)fsize, (unsigned long long)size);
	tbuf_free(&out);
	tbuf_free(&rep);
	tbuf_free(&want);
}

static void
expect_prefix(const char *what, const struct tbuf *got,
    const struct tbuf *want)
{
	FUZZ_CHECK(got->len <= want->len && (got->len == 0 ||
	    memcmp(got->data, want->data, got->len) == 0),
	    "%s: %zu octets sent are not a prefix of the output", what,
	    got->len);
}

/* Emits and reserves that fail stop the stream, after a prefix. */
static void
check_failures(int fd, const char *msg, size_t len, const struct tbuf *whole,
    uint32_t *rng)
{
	struct tbuf out = { 0 };
	struct limited l = { &out, 0 };
	struct direct d = { &out, rng, NULL, 0, 0 };
	int r;

	l.budget = (int)(fuzz_rng(rng) % 8);
	fuzz_rewrite(fd, msg, len);
	tbuf_reset(&out);
	r = stream_fd(fd, -1, limited_emit, &l);
	FUZZ_CHECK(r == 0 || r == -2, "stream_fd gave %d", r);
	if (r == 0)
		tbuf_expect("stream_fd within its emit budget", &out, whole);
	else
		expect_prefix("stream_fd, emit failed", &out, whole);

	d.budget = (int)(fuzz_rng(rng) % 4);
	fuzz_rewrite(fd, msg, len);
	tbuf_reset(&out);
	r = stream_fd_direct(fd, direct_emit, direct_reserve, direct_commit,
	    &d);
	FUZZ_CHECK(r == 0 || r == -2, "stream_fd_direct gave %d", r);
	FUZZ_CHECK(d.cur == NULL, "reserved room left uncommitted");
	if (r == 0)
		tbuf_expect("stream_fd_direct within its budget", &out, whole);
	else
		expect_prefix("stream_fd_direct, reserve failed", &out, whole);
	tbuf_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	struct tbuf whole = { 0 }, top = { 0 }, out = { 0 }, plain = { 0 };
	uint32_t rng = 0;
	const char *msg;
	uint64_t sz;
	size_t len, i;
	long lines;

	if (fd == -1)
		fd = fuzz_tempfd("stream");
	if (size < 5)
		return 0;
	lines = data[0] < 0xf0 ? (long)(data[0] % 16) :
	    LONG_MAX - (long)(0xff - data[0]);
	for (i = 1; i < 5; i++)
		rng = rng << 8 | data[i];
	msg = (const char *)data + 5;
	len = size - 5;

	ref_convert(msg, len, -1, &whole);
	ref_convert(msg, len, lines, &top);
	fuzz_check_wire("reference RETR", &whole);
	fuzz_check_wire("reference TOP", &top);

	/* The size: what RETR sends, less the stuffing dots. */
	fuzz_unstuff(whole.data, whole.len, &plain);
	sz = ref_size(msg, len);
	FUZZ_CHECK(plain.len == sz, "reference: %zu octets unstuffed, "
	    "size %llu", plain.len, (unsigned long long)sz);
	FUZZ_CHECK(size_split(msg, len, &rng) == sz, "stream_size_feed");
	FUZZ_CHECK(size_split(msg, len, &rng) == sz, "stream_size_feed");

	convert(msg, len, -1, NULL, &out);
	tbuf_expect("RETR in one piece", &out, &whole);
	convert(msg, len, -1, &rng, &out);
	tbuf_expect("RETR in pieces", &out, &whole);
	convert(msg, len, lines, NULL, &out);
	tbuf_expect("TOP in one piece", &out, &top);
	convert(msg, len, lines, &rng, &out);
	tbuf_expect("TOP in pieces", &out, &top);

	check_fd(fd, msg, len, lines, &whole, &top, sz, &rng);
	check_failures(fd, msg, len, &whole, &rng);

	tbuf_free(&whole);
	tbuf_free(&top);
	tbuf_free(&out);
	tbuf_free(&plain);
	return 0;
}
