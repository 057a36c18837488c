/*
 * store.h: the mailbox behind a POP3 session.
 *
 * A store is opened once per session, after authentication and the
 * privilege drop: it is locked for the whole session, its messages are
 * numbered and sized once, and nothing in it changes until store_commit()
 * applies the deletions at UPDATE.  store_close() releases everything;
 * the lock also goes with the process, however it ends.
 */
#ifndef STORE_H
#define STORE_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "stream.h"
#include "uidl.h"

enum store_result {
	STORE_OK = 0,
	STORE_INUSE,		/* another session holds the lock */
	STORE_TOOSOON,		/* the last login was too recent */
	STORE_TEMP,		/* a failure that may pass: retry later */
	STORE_PERM		/* a failure that needs the administrator */
};

struct store;

/*
 * The mailbox path for a user from a mail spec such as
 * "maildir:~/Maildir": "~" at the start and %h stand for home, %u for
 * the user name, %n and %d for its parts before and after '@', %% for
 * '%'.  The user name must be valid (auth_name_valid()).  0, or -1 with
 * err set.
 */
int	store_path(const char *spec, const char *user, const char *home,
	    char *buf, size_t len, char *err, size_t errlen);

/* What a login asks of the mailbox (RFC 2449 section 6.4 and 6.5). */
struct store_options {
	/* Refuse a login sooner than this many seconds after the last one
	 * (stamp: the mtime of pop3d.login in the Maildir); 0 never. */
	unsigned int	 login_delay;
	/* Remove messages seen (S flag) more than this many days ago, by
	 * their atime, which store_commit() sets; -1 never. */
	long		 expire_days;
	/* The user's home: an mbox's journal goes there when the mbox's
	 * directory is not writable.  NULL: none. */
	const char	*home;
	/* --takeover (Maildir): when the lock holder's last command is
	 * older than this many seconds, end it and take the lock; 0 never.
	 * The session then keeps a holder record (store_activity()). */
	unsigned int	 takeover;
	/* --uidl-from (Maildir): the ids another server gave, where it
	 * left a record of them (uidl.h); UIDL_OWN for pop3d's own. */
	enum uidl_source uidl_from;
};

/*
 * Open, lock and scan the Maildir at path, creating it (mode 0700) when
 * it does not exist yet, or the mbox at "mbox:PATH" (see mbox.h); opts may be NULL (no delay, no expiry).  The
 * login-delay check comes first and changes nothing when it refuses.
 * On failure *stp is NULL and err says why, for the log.
 */
enum store_result store_open(struct store **stp, const char *path,
	    const struct store_options *opts, char *err, size_t errlen);

/* Messages removed by expiry when the store was opened. */
size_t	store_expired(const struct store *);

/* The pid of the idle session store_open() ended for --takeover, or 0. */
pid_t	store_taken_from(const struct store *);

/* A command came: the holder record says so (at most once a second). */
void	store_activity(struct store *);

/* Files in cur/ not served: symbolic links, files that cannot be read,
 * and files that are not regular files owned by the mail user (the
 * effective uid). */
size_t	store_skipped(const struct store *);

/* Messages, numbered 0 .. store_count() - 1 here (1 .. n in POP3). */
size_t	store_count(const struct store *);
/* The octets RETR sends for message i (see stream.h). */
uint64_t store_size(const struct store *, size_t i);
/* The unique id of message i, 1 to 70 octets in 0x21..0x7E; not
 * NUL-terminated, and valid until the next call. */
const char *store_uidl(struct store *, size_t i, size_t *len);
/* Whether message i had been seen (Maildir S flag) before this session. */
int	store_seen(const struct store *, size_t i);

/*
 * Open message i for reading.  Returns a file descriptor, or -1 with
 * errno set and err filled in.
 */
int	store_msg_open(struct store *, size_t i, char *err, size_t errlen);

/*
 * Send message i, read from the fd store_msg_open() gave, as POP3 does
 * (see stream.h): whole when body_lines < 0, else TOP; reserve and
 * commit (may be NULL) let whole messages go straight into the caller's
 * buffer.  0; -1 when
 * reading failed (errno); -2 when emit stopped the stream.
 */
int	store_msg_send(struct store *, size_t i, int fd, long body_lines,
	    stream_emit emit, stream_reserve reserve, stream_commit commit,
	    void *ctx);

/* Marks kept until store_commit(): deleted, and retrieved (gets S). */
void	store_set_deleted(struct store *, size_t i, int on);
int	store_deleted(const struct store *, size_t i);
void	store_set_retrieved(struct store *, size_t i);

/*
 * UPDATE: remove exactly the messages marked deleted, flag the
 * retrieved ones seen (and set their atime, for expiry), and make it
 * durable.  Returns 0, or -1 when a
 * deletion failed or could not be made durable: *failed counts the
 * messages that could not be removed, and err says why.
 */
int	store_commit(struct store *, size_t *failed, char *err, size_t errlen);

/* Release the lock and free the store; NULL is allowed. */
void	store_close(struct store *);

/* The length of the unique part of a Maildir name (before ':' or ','). */
size_t	store_maildir_base(const char *name);

/* The length of a Maildir name without its info (before ':'). */
size_t	store_maildir_colon(const char *name);

/* Parse a strict ",W=<size>" field of a Maildir name.  0 or -1. */
int	store_maildir_wsize(const char *name, uint64_t *size);

#endif
