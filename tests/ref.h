/*
 * ref.h: shared by the Check unit tests and the libFuzzer harnesses: a
 * growing buffer (aborts when memory runs out), the POP3 conversion of
 * stream.h done one octet at a time, the reference for the converters,
 * and an mbox parser done one line at a time, the reference for mbox.c.
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

/* A message as the reference parser sees it, in offsets of the file. */
struct ref_msg {
	size_t	from;		/* its From_ line */
	size_t	start;		/* the line after the From_ line */
	size_t	end;		/* its separator, or the end of the file */
};

/* Whether the line of len octets at p, its LF included, is empty. */
int	ref_empty_line(const char *p, size_t len);
/*
 * The messages of the len octets of buf into *vp, an array to free
 * (NULL when there are none), and their number into *n.  Returns 0, or
 * 1 when buf is not an mbox; aborts when memory runs out.
 */
int	ref_mbox_parse(const char *buf, size_t len, struct ref_msg **vp,
	    size_t *n);

#endif
