/*
 * stream.h: a message as POP3 sends it (RFC 1939 sections 3 and 10).
 *
 * Every LF not preceded by CR becomes CRLF, a line that starts with "."
 * gets one more ".", and a message whose last line has no newline still
 * ends with CRLF.  The size of a message is the octets sent this way,
 * without the stuffed dots and without the final ".\r\n", so that STAT,
 * LIST and RETR always agree.
 */
#ifndef STREAM_H
#define STREAM_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

/* Where converted octets go; returns 0, or -1 to stop the stream. */
typedef int (*stream_emit)(void *ctx, const char *buf, size_t len);

/*
 * A faster way out for whole messages: reserve gives room for at least
 * need octets at the end of the caller's buffer (flushing it as it
 * must) and says how much in *room, or NULL to stop (less room stops
 * the stream too); commit says how much was written there.
 * stream_fd_direct() reads the message into the last
 * (room - STREAM_GAP) / 2 octets of each room and converts it to the
 * start of the room, in place: RETR needs no other buffer, and the room
 * past what is committed is left overwritten.
 */
typedef char	*(*stream_reserve)(void *ctx, size_t need, size_t *room);
typedef void	 (*stream_commit)(void *ctx, size_t used);

#define STREAM_GAP	64

/* The converter; the fields are private to stream.c. */
struct stream {
	stream_emit	 emit;
	void		*ctx;
	long		 lines_left;	/* body lines still to send, -1 all */
	int		 in_header;	/* before the blank line */
	int		 bol;		/* at the beginning of a line */
	int		 prev_cr;	/* the last octet seen was CR */
	int		 line_len;	/* octets in the line so far, max 2 */
	int		 done;		/* TOP has sent all it should */
};

/* The size counter; the fields are private to stream.c. */
struct stream_size {
	uint64_t	 size;
	int		 prev_cr;
	int		 empty;
	int		 last_lf;
};

/*
 * Start converting a message: body_lines < 0 sends it whole (RETR),
 * otherwise the header, the blank line and that many body lines (TOP).
 */
void	stream_init(struct stream *, long body_lines, stream_emit, void *ctx);

/* Convert the next part of the message.  Returns 0, or -1 if emit did. */
int	stream_feed(struct stream *, const char *buf, size_t len);

/* End the message (CRLF after a last line that had none).  0 or -1. */
int	stream_finish(struct stream *);

/* Nonzero once TOP has sent all it should: the rest need not be read. */
int	stream_done(const struct stream *);

/*
 * Send the message read from fd to its end.  Returns 0; -1 with errno
 * set when read failed; -2 when emit stopped the stream.
 */
int	stream_fd(int fd, long body_lines, stream_emit, void *ctx);

/* stream_fd() of a whole message (RETR) in the caller's own buffer,
 * reserved and committed as above; emit ends the last line.  fd is a
 * regular file: a short read is taken as its end. */
int	stream_fd_direct(int fd, stream_emit, stream_reserve, stream_commit,
	    void *ctx);

/* Count the size of a message given in parts. */
void	stream_size_init(struct stream_size *);
void	stream_size_feed(struct stream_size *, const char *buf, size_t len);
uint64_t stream_size_end(const struct stream_size *);

/* read(2), again when a signal cut it short. */
ssize_t	stream_read(int fd, char *buf, size_t len);

/* The size of the message read from fd to its end.  0, or -1 (errno). */
int	stream_size_fd(int fd, uint64_t *size);

#endif
