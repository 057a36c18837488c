/*
 * stream.c: convert a message to its POP3 form and count its size.
 *
 * The converter scans for LF with memchr and handles whole runs of
 * octets at once; a whole message goes sixteen octets at a time where
 * the machine has SSE2 and the octets allow.  The sizer counts LFs in
 * vector-sized rows.  Neither allocates, so any message is sent in
 * constant memory.  The rules are in stream.h.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "pop3d.h"
#include "stream.h"

/*
 * The sizer counts bare LFs in lanes of octet counters, a row of lanes
 * at a time, and adds the lanes up before one could overflow: compilers
 * turn a row into one vector compare and add.
 */
#define SIZE_LANES	16
#define SIZE_ROWS	255

/*
 * RETR reads at least DIRECT_READ octets at a time: a room smaller than
 * DIRECT_ROOM is flushed first.
 */
#define DIRECT_READ	(16 * 1024)
#define DIRECT_ROOM	(2 * DIRECT_READ + STREAM_GAP)

_Static_assert(STREAM_GAP > 33, "a block writes 33 octets ahead");

/* What TOP reads first: most headers fit. */
#define TOP_FIRST_READ	4096

static int	stream_line_end(struct stream *);
static char	*stream_convert(struct stream *, const char *, const char *,
		    char *);
#ifdef __SSE2__
static size_t	stream_block(const char *, char *, int *, int *);
#endif

/* read(2), again when a signal interrupted it. */
ssize_t
stream_read(int fd, char *buf, size_t len)
{
	ssize_t n;

	while ((n = read(fd, buf, len)) == -1 && errno == EINTR)
		;
	return n;
}

void
stream_init(struct stream *st, long body_lines, stream_emit emit, void *ctx)
{
	memset(st, 0, sizeof(*st));
	st->emit = emit;
	st->ctx = ctx;
	st->lines_left = body_lines;
	st->in_header = 1;
	st->bol = 1;
}

#ifdef __SSE2__
/*
 * Sixteen octets of a whole message at once, with SSE2: most blocks have
 * at most one LF without a CR before it and no line that starts with a
 * dot.  Such a block is stored as it is, then again from its LF on one
 * octet further, with the CR in between.  Writes up to o + 33 and reads
 * up to p + 32.  Returns the octets written, or 0 for any other block,
 * which the line loop then takes.  *bol and *prev_cr are those of struct
 * stream, kept apart from it while blocks follow each other: a store to
 * the output could change the struct as far as a compiler knows, so the
 * struct's own fields would be read again for every block.
 */
static size_t
stream_block(const char *p, char *o, int *bol, int *prev_cr)
{
	const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
	unsigned int lf, cr, dot, bare, k, add;

	lf = (unsigned int)_mm_movemask_epi8(_mm_cmpeq_epi8(v,
	    _mm_set1_epi8('\n')));
	cr = (unsigned int)_mm_movemask_epi8(_mm_cmpeq_epi8(v,
	    _mm_set1_epi8('\r')));
	dot = (unsigned int)_mm_movemask_epi8(_mm_cmpeq_epi8(v,
	    _mm_set1_epi8('.')));
	/* Bit i of each mask is octet i.  An LF is bare unless the octet
	 * before it (in this block, or the last one seen) is CR. */
	bare = lf & ~(cr << 1 | (unsigned int)*prev_cr);
	if ((dot & (lf << 1 | (unsigned int)*bol)) != 0 ||
	    (bare & (bare - 1)) != 0)
		return 0;
	k = (unsigned int)__builtin_ctz(bare | 0x10000);	/* 16: none */
	add = bare != 0;
	_mm_storeu_si128((__m128i *)(void *)o, v);
	o[k] = '\r';
	_mm_storeu_si128((__m128i *)(void *)(o + k + add),
	    _mm_loadu_si128((const __m128i *)(const void *)(p + k)));
	*prev_cr = (int)(cr >> 15);
	*bol = (int)(lf >> 15);
	return 16 + add;
}
#endif

/*
 * The whole-message path: convert the octets from p to end into o,
 * sixteen at a time where stream_block() can, else a line at a time,
 * and return the end of what was written, at most 2 * (end - p) octets.
 * The input may lie after o in the same buffer, as stream_fd_direct()
 * puts it, if it starts at least (end - p) + STREAM_GAP octets after o.
 * No input octet gives more than two, so the distance from the output
 * to the input not yet read never falls below what is left of the input
 * plus STREAM_GAP: the copy of a line never overlaps it, and a block,
 * which writes 33 octets, never reaches input not yet read.
 */
static char *
stream_convert(struct stream *st, const char *p, const char *end, char *o)
{
	const char *lf;
	size_t n;
#ifdef __SSE2__
	int bol, prev_cr;
#endif

	while (p < end) {
#ifdef __SSE2__
		bol = st->bol;
		prev_cr = st->prev_cr;
		while (end - p >= 32 &&
		    (n = stream_block(p, o, &bol, &prev_cr)) > 0) {
			p += 16;
			o += n;
		}
		st->bol = bol;
		st->prev_cr = prev_cr;
#endif
		if (st->bol && *p == '.')
			*o++ = '.';
		st->bol = 0;
		if ((lf = memchr(p, '\n', (size_t)(end - p))) == NULL) {
			n = (size_t)(end - p);
			memcpy(o, p, n);
			o += n;
			st->prev_cr = end[-1] == '\r';
			break;
		}
		n = (size_t)(lf - p);
		memcpy(o, p, n);
		o += n;
		if (!(n > 0 ? lf[-1] == '\r' : st->prev_cr))
			*o++ = '\r';
		*o++ = '\n';
		st->bol = 1;
		st->prev_cr = 0;
		p = lf + 1;
	}
	return o;
}

int
stream_done(const struct stream *st)
{
	return st->done;
}

/* Account for the end of a line: TOP stops after the body lines asked. */
static int
stream_line_end(struct stream *st)
{
	int blank;

	blank = st->line_len == 0 || (st->line_len == 1 && st->prev_cr);
	if (st->in_header) {
		if (blank) {
			st->in_header = 0;
			if (st->lines_left == 0)
				st->done = 1;
		}
	} else if (st->lines_left > 0 && --st->lines_left == 0)
		st->done = 1;
	st->bol = 1;
	st->prev_cr = 0;
	st->line_len = 0;
	return 0;
}

int
stream_feed(struct stream *st, const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len, *lf;
	size_t n;

	while (p < end && !st->done) {
		if (st->bol && *p == '.' && st->emit(st->ctx, ".", 1) == -1)
			return -1;
		st->bol = 0;
		lf = memchr(p, '\n', (size_t)(end - p));
		if (lf == NULL) {
			n = (size_t)(end - p);
			if (st->emit(st->ctx, p, n) == -1)
				return -1;
			st->prev_cr = end[-1] == '\r';
			st->line_len += n > 2 ? 2 : (int)n;
			if (st->line_len > 2)
				st->line_len = 2;
			break;
		}
		n = (size_t)(lf - p);
		if (n > 0) {
			st->prev_cr = lf[-1] == '\r';
			st->line_len += n > 2 ? 2 : (int)n;
			if (st->line_len > 2)
				st->line_len = 2;
		}
		/* Send the line with its LF, or with CRLF if it had no CR. */
		if (st->prev_cr) {
			if (st->emit(st->ctx, p, n + 1) == -1)
				return -1;
		} else if ((n > 0 && st->emit(st->ctx, p, n) == -1) ||
		    st->emit(st->ctx, "\r\n", 2) == -1)
			return -1;
		stream_line_end(st);
		p = lf + 1;
	}
	return 0;
}

int
stream_finish(struct stream *st)
{
	if (st->bol || st->done)
		return 0;
	if (st->emit(st->ctx, "\r\n", 2) == -1)
		return -1;
	return stream_line_end(st);
}

int
stream_fd(int fd, long body_lines, stream_emit emit, void *ctx)
{
	struct stream st;
	char buf[FILE_BUF_SIZE];
	size_t want;
	ssize_t n;

	stream_init(&st, body_lines, emit, ctx);
	/* TOP most often wants the header alone: read a little first. */
	want = body_lines < 0 ? sizeof(buf) : TOP_FIRST_READ;
	while (!stream_done(&st)) {
		if ((n = stream_read(fd, buf, want)) == -1)
			return -1;
		want = sizeof(buf);
		if (n == 0)
			break;
		if (stream_feed(&st, buf, (size_t)n) == -1)
			return -2;
	}
	return stream_finish(&st) == -1 ? -2 : 0;
}

/*
 * Each room is read into its far end and converted to its start, so
 * RETR needs no buffer of its own (see stream_convert()).
 */
int
stream_fd_direct(int fd, stream_emit emit, stream_reserve reserve,
    stream_commit commit, void *ctx)
{
	struct stream st;
	char *out, *in;
	size_t room, want;
	ssize_t n;

	stream_init(&st, -1, emit, ctx);
	for (;;) {
		if ((out = reserve(ctx, DIRECT_ROOM, &room)) == NULL)
			return -2;
		if (room < DIRECT_ROOM) {	/* not what was asked */
			commit(ctx, 0);
			return -2;
		}
		want = (room - STREAM_GAP) / 2;
		in = out + room - want;
		if ((n = stream_read(fd, in, want)) <= 0) {
			commit(ctx, 0);
			if (n == -1)
				return -1;
			break;
		}
		commit(ctx, (size_t)(stream_convert(&st, in, in + n, out) -
		    out));
		/* A short read of a regular file is its end: no read more
		 * just to be told so. */
		if ((size_t)n < want)
			break;
	}
	return stream_finish(&st) == -1 ? -2 : 0;
}

void
stream_size_init(struct stream_size *sz)
{
	memset(sz, 0, sizeof(*sz));
	sz->empty = 1;
}

void
stream_size_feed(struct stream_size *sz, const char *buf, size_t len)
{
	const unsigned char *p = (const unsigned char *)buf;
	unsigned char lane[SIZE_LANES];
	size_t i, j, row;

	if (len == 0)
		return;
	/* Every LF without a CR before it is sent as CRLF: one octet more. */
	sz->size += len;
	if (p[0] == '\n' && !sz->prev_cr)
		sz->size++;
	for (i = 1; len - i >= SIZE_LANES; ) {
		memset(lane, 0, sizeof(lane));
		for (row = 0; row < SIZE_ROWS && len - i >= SIZE_LANES; row++) {
			for (j = 0; j < SIZE_LANES; j++)
				lane[j] = (unsigned char)(lane[j] +
				    ((p[i + j] == '\n') & (p[i + j - 1] != '\r')));
			i += SIZE_LANES;
		}
		for (j = 0; j < SIZE_LANES; j++)
			sz->size += lane[j];
	}
	for (; i < len; i++)
		sz->size += (p[i] == '\n') & (p[i - 1] != '\r');
	sz->prev_cr = p[len - 1] == '\r';
	sz->last_lf = p[len - 1] == '\n';
	sz->empty = 0;
}

uint64_t
stream_size_end(const struct stream_size *sz)
{
	/* A last line without newline is sent with CRLF. */
	if (!sz->empty && !sz->last_lf)
		return sz->size + 2;
	return sz->size;
}

int
stream_size_fd(int fd, uint64_t *size)
{
	struct stream_size sz;
	char buf[FILE_BUF_SIZE];
	ssize_t n;

	stream_size_init(&sz);
	while ((n = stream_read(fd, buf, sizeof(buf))) > 0) {
		stream_size_feed(&sz, buf, (size_t)n);
		/* A short read of a regular file is its end: no read more
		 * just to be told so. */
		if ((size_t)n < sizeof(buf))
			break;
	}
	if (n == -1)
		return -1;
	*size = stream_size_end(&sz);
	return 0;
}
