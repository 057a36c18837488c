/*
 * mbox.h: mbox spool files (/var/mail/USER), read and rewritten safely
 * beside the MTA and the MUA.
 *
 * A message starts at a "From " line at the start of the file or after
 * an empty line; the empty line before it is a separator.  ">From "
 * quoting is undone on the way out (mboxrd; mboxo reads the same), and
 * Content-Length is not trusted.
 */
#ifndef MBOX_H
#define MBOX_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "stream.h"

#define MBOX_UIDL_MAX	70

struct mbox_entry {
	off_t		 from;		/* the "From " line */
	off_t		 start;		/* the message, after that line */
	off_t		 end;		/* one past it, separator excluded */
	uint64_t	 size;		/* octets RETR sends */
	char		 uidl[MBOX_UIDL_MAX + 1];
};

struct mbox_index {
	struct mbox_entry	*v;
	size_t			 n;
	size_t			 cap;
};

/*
 * Index the first len octets of the mbox open on fd.  Returns 0, 1 when
 * the file is not an mbox (not empty and no "From " at its start), or -1
 * with errno set.
 */
int	mbox_scan(int fd, off_t len, struct mbox_index *);
void	mbox_index_free(struct mbox_index *);

/*
 * Send message e from fd as POP3 does (see stream.h): whole when
 * body_lines < 0, else TOP.  0; -1 when reading failed; -2 when emit
 * stopped the stream.
 */
int	mbox_send(int fd, const struct mbox_entry *e, long body_lines,
	    stream_emit emit, void *ctx);

/*
 * Take the locks every mbox writer honours while the file is read or
 * rewritten: a dotlock PATH.lock where the directory lets us make one
 * (stale after MBOX_DOTLOCK_STALE seconds), and an fcntl write lock on
 * fd.  Waits at most MBOX_LOCK_WAIT seconds.  0, or -1 (err says why).
 */
int	mbox_lock(const char *path, int fd, int *dotlocked, char *err,
	    size_t errlen);
void	mbox_unlock(const char *path, int fd, int dotlocked);

/*
 * Remove the messages marked in deleted[] (one flag per entry of idx)
 * from the mbox on fd, locked by the caller, whose first snap octets
 * idx describes; mail appended since is kept after the rest.  A journal
 * in jdir (PATH's directory where writable, else the user's home) makes
 * it safe against a crash at any moment: mbox_recover() finishes the
 * work at the next open.  0, or -1 with err set.
 */
int	mbox_commit(int fd, const char *path, const char *home,
	    const struct mbox_index *idx, const unsigned char *deleted,
	    off_t snap, char *err, size_t errlen);

/*
 * Finish a commit that a crash interrupted, if its journal is there.
 * Called with the mbox locked.  0, or -1 with err set.
 */
int	mbox_recover(int fd, const char *path, const char *home, char *err,
	    size_t errlen);

#endif
