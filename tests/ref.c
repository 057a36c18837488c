/*
 * ref.c: the growing buffer, the reference converter and the reference
 * mbox parser that the Check unit tests and the libFuzzer harnesses
 * share (see ref.h).
 */
#include <stdlib.h>
#include <string.h>

#include "ref.h"

void
tbuf_add(struct tbuf *b, const void *data, size_t len)
{
	size_t ncap;
	char *p;

	/* One octet into room there is: the reference's common case. */
	if (len == 1 && b->data != NULL && b->len + 2 <= b->cap) {
		b->data[b->len++] = *(const char *)data;
		b->data[b->len] = '\0';
		return;
	}
	if (b->data == NULL || b->len + len + 1 > b->cap) {
		ncap = b->cap ? b->cap : 256;
		while (ncap < b->len + len + 1)
			ncap *= 2;
		if ((p = realloc(b->data, ncap)) == NULL)
			abort();
		b->data = p;
		b->cap = ncap;
	}
	if (len > 0)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void
tbuf_addstr(struct tbuf *b, const char *s)
{
	tbuf_add(b, s, strlen(s));
}

void
tbuf_reset(struct tbuf *b)
{
	tbuf_add(b, "", 0);
	b->len = 0;
	b->data[0] = '\0';
}

void
tbuf_free(struct tbuf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int
tbuf_emit(void *ctx, const char *buf, size_t len)
{
	tbuf_add(ctx, buf, len);
	return 0;
}

/*
 * The rules of stream.h applied one octet at a time: a "." at the start
 * of a line is doubled, an LF without CR before it gets one, a last line
 * without LF gets CRLF.  For TOP (lines >= 0) the output stops after the
 * first blank line ("" or "\r") and that many more lines.
 */
void
ref_convert(const char *in, size_t len, long lines, struct tbuf *out)
{
	size_t i, line_len = 0;
	int bol = 1, header = 1, blank;
	char prev = '\0';

	tbuf_reset(out);
	for (i = 0; i < len; i++) {
		if (bol && in[i] == '.')
			tbuf_add(out, ".", 1);
		bol = 0;
		if (in[i] != '\n') {
			tbuf_add(out, &in[i], 1);
			line_len++;
			prev = in[i];
			continue;
		}
		if (prev != '\r')
			tbuf_add(out, "\r", 1);
		tbuf_add(out, "\n", 1);
		blank = line_len == 0 || (line_len == 1 && prev == '\r');
		line_len = 0;
		prev = '\n';
		bol = 1;
		if (lines < 0)
			continue;
		if (header) {
			if (blank)
				header = 0;
			if (blank && lines == 0)
				return;
		} else if (--lines == 0)
			return;
	}
	if (!bol)
		tbuf_add(out, "\r\n", 2);
}

int
ref_empty_line(const char *p, size_t len)
{
	return (len == 1 && p[0] == '\n') ||
	    (len == 2 && p[0] == '\r' && p[1] == '\n');
}

/*
 * The messages of buf, one line at a time.  A line is a From_ line when
 * it starts with "From " and is the first of the file or follows an
 * empty line; the empty line before a From_ line, and an empty last
 * line of the file, are separators.  The array grows to as many
 * messages as buf holds, so that no input is too big for the reference.
 */
int
ref_mbox_parse(const char *buf, size_t len, struct ref_msg **vp, size_t *n)
{
	size_t pos = 0, next, prev = 0, cap = 0;
	struct ref_msg *v = NULL, *nv;
	int prev_empty = 1, empty = 0;
	const char *lf;

	*vp = NULL;
	*n = 0;
	if (len == 0)
		return 0;
	if (len < 5 || memcmp(buf, "From ", 5) != 0)
		return 1;
	while (pos < len) {
		lf = memchr(buf + pos, '\n', len - pos);
		next = lf == NULL ? len : (size_t)(lf - buf) + 1;
		if (prev_empty && next - pos >= 5 &&
		    memcmp(buf + pos, "From ", 5) == 0) {
			/* The empty line before it is a separator. */
			if (*n > 0)
				v[*n - 1].end = prev;
			if (*n == cap) {
				cap = cap ? 2 * cap : 16;
				if ((nv = reallocarray(v, cap, sizeof(*v))) ==
				    NULL)
					abort();
				v = nv;
			}
			v[*n].from = pos;
			v[*n].start = next;
			v[*n].end = len;
			(*n)++;
		}
		empty = ref_empty_line(buf + pos, next - pos);
		prev_empty = empty;
		prev = pos;
		pos = next;
	}
	/*
	 * So is an empty last line (never the From_ line itself).  The first
	 * line is a From_ line, so *n > 0; the test is for the analyzers.
	 */
	if (empty && *n > 0)
		v[*n - 1].end = prev;
	*vp = v;
	return 0;
}
