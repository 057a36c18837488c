/*
 * ref.c: the growing buffer and the reference converter that the Check
 * unit tests and the libFuzzer harnesses share (see ref.h).
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
