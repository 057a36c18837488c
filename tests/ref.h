/*
 * ref.h: shared by the Check unit tests and the libFuzzer harnesses: a
 * growing buffer (aborts when memory runs out) and the POP3 conversion of
 * stream.h done one octet at a time, the reference for the converters.
 */
#ifndef REF_H
#define REF_H

#include <stddef.h>

/* Octets collected from a stream, a session or a file; always NUL-ended. */
struct tbuf {
	char	*data;
	size_t	 len;
	size_t	 cap;
};

void	tbuf_add(struct tbuf *, const void *, size_t);
void	tbuf_addstr(struct tbuf *, const char *);
void	tbuf_reset(struct tbuf *);
void	tbuf_free(struct tbuf *);
/* A stream_emit that appends to the struct tbuf in ctx; returns 0. */
int	tbuf_emit(void *ctx, const char *, size_t);

/*
 * The rules of stream.h applied one octet at a time, as a reference for
 * the converters: RETR when lines < 0, else TOP with that many lines.
 */
void	ref_convert(const char *in, size_t len, long lines, struct tbuf *out);

#endif
