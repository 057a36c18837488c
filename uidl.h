/*
 * uidl.h: the UIDLs another POP3 server gave to the messages of a
 * Maildir, read from the files it keeps there, so that clients see the
 * same ids after a migration and fetch nothing twice.
 *
 * Sources:
 * - dovecot: "dovecot-uidlist" (versions 1 and 3) as Dovecot's POP3 uses
 *   it with the default pop3_uidl_format "%08Xu%08Xv": the IMAP uid and
 *   the UIDVALIDITY as 8 lower-case hex digits each (Dovecot's %X prints
 *   lower case), or the P field of a line when it has one.  Other
 *   pop3_uidl_format settings are not supported.
 * - courier: "courierpop3dsizelist" (versions 2 and 3) as Courier's
 *   pop3d uses it: "UID<uid>-<uidvalidity>".
 * - qmail: qmail-pop3d's ids are the message names up to ':' and own
 *   ids the unique part of the names: both need no file, so no map.
 * - auto: dovecot-uidlist if there is one, else courierpop3dsizelist.
 *
 * The files are only read, never written or locked.
 */
#ifndef UIDL_H
#define UIDL_H

#include <stddef.h>

/* A UIDL: 1 to this many octets in 0x21..0x7E (RFC 1939 section 7). */
#define UIDL_ID_MAX	70

enum uidl_source {
	UIDL_OWN = 0,		/* the unique part of the name */
	UIDL_DOVECOT,		/* dovecot-uidlist */
	UIDL_COURIER,		/* courierpop3dsizelist */
	UIDL_QMAIL,		/* the name up to ':' */
	UIDL_AUTO		/* dovecot, else courier, else own */
};

struct uidl_map;

/*
 * "own", "dovecot", "courier", "qmail" or "auto" into *src.  0, or -1
 * for any other string.
 */
int	uidl_source_parse(const char *s, enum uidl_source *src);

/* The name uidl_source_parse() takes for src. */
const char *uidl_source_name(enum uidl_source src);

/*
 * Load the ids src keeps in the Maildir at dir.  *mp is NULL when there
 * is nothing to use: for own and qmail (the ids come from the names),
 * and when the file is not there (a mailbox the old server never
 * opened).  Returns 0, or -1 with *mp NULL and err saying which file
 * and which line, when the file cannot be read or is damaged: its ids
 * are the only record of what the clients saw, so none is guessed.
 * A line whose id is not a valid UIDL is skipped (uidl_map_skipped()),
 * and so is a last line without its newline (a writer is appending).
 */
int	uidl_map_load(struct uidl_map **mp, const char *dir,
	    enum uidl_source src, char *err, size_t errlen);

/*
 * The id of the message whose name's unique part (up to the first ','
 * or ':') is the len octets at base, NUL-terminated, *idlen octets of
 * 0x21..0x7E, at most UIDL_ID_MAX; NULL when the map has none (or m is
 * NULL).  Valid until uidl_map_free().  O(log n).
 */
const char *uidl_map_find(const struct uidl_map *m, const char *base,
	    size_t len, size_t *idlen);

/* The ids in the map; 0 for NULL. */
size_t	uidl_map_count(const struct uidl_map *m);

/*
 * The lines left out because their id is not a valid UIDL; *why (may
 * be NULL) gets the first of them, "FILE line N: reason", for the log.
 */
size_t	uidl_map_skipped(const struct uidl_map *m, const char **why);

/* The path of the file the map was read from. */
const char *uidl_map_path(const struct uidl_map *m);

/* Free the map; NULL is allowed. */
void	uidl_map_free(struct uidl_map *m);

#endif
