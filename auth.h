/*
 * auth.h: who may log in, and becoming them.
 *
 * Users come from a Dovecot-compatible passwd-file:
 *	name:password:uid:gid:gecos:home:shell:extra
 * where password is a crypt(3) string, optionally behind {CRYPT} (or
 * Dovecot's {SHA512-CRYPT}, {SHA256-CRYPT}, {BLF-CRYPT}, {MD5-CRYPT}),
 * or {PLAIN}secret.  Nothing here writes to the client.
 */
#ifndef AUTH_H
#define AUTH_H

#include <sys/types.h>

#include <stddef.h>

#include "pop3d.h"

struct auth_user {
	char	name[USER_NAME_MAX + 1];
	char	home[PATH_MAX_POP3];
	uid_t	uid;
	gid_t	gid;
	int	have_ids;	/* uid and gid were given */
	int	system;		/* a system account: initgroups() applies */
};

/* The user databases, asked in order: the first that knows a user decides. */
enum auth_db_type {
	AUTH_DB_FILE,		/* a passwd-file */
	AUTH_DB_SYSTEM,		/* getpwnam + getspnam */
	AUTH_DB_CHECKPASSWORD	/* a qmail checkpassword program */
};

#define AUTH_DB_MAX	8

struct auth_config {
	struct {
		enum auth_db_type	 type;
		const char		*path;	/* file or program */
	}		 db[AUTH_DB_MAX];
	size_t		 ndb;
	unsigned long	 first_uid;	/* lowest uid of a system account */
	const char	*self;		/* pop3d, as checkpassword's subprogram */
	const char	*remote;	/* client address, for checkpassword */
};

/* One login attempt. */
struct auth_request {
	const char	*name;
	const char	*secret;	/* the password, or APOP's digest */
	const char	*timestamp;	/* the greeting's APOP timestamp, or "" */
	int		 apop;		/* secret is an APOP digest */
};

enum auth_result {
	AUTH_OK = 0,
	AUTH_FAIL,		/* unknown user or wrong password */
	AUTH_TEMP		/* the user database could not be read */
};

/* One passwd-file line split in place; the strings point into it. */
struct auth_entry {
	char	*name;
	char	*password;
	char	*uid;
	char	*gid;
	char	*home;
};

/*
 * Whether name may be used at all: 1 to USER_NAME_MAX octets of
 * printable ASCII without space, '/', ':' or '\', and valid UTF-8 for
 * characters from U+00A0 up (RFC 6856), not starting with '.'.  Only
 * such names reach a path, a log line or a program.  1 or 0.
 */
int	auth_name_valid(const char *name);

/* A passwd-file being read: read(2) into a buffer that is wiped. */
struct auth_file {
	int	fd;
	int	error;		/* errno of a failed read, or 0 */
	size_t	pos, len;
	char	buf[4096];
};

/* Open file for auth_read_line().  0, or -1 with errno set. */
int	auth_file_open(struct auth_file *af, const char *file);
/* Close it and wipe what was read. */
void	auth_file_close(struct auth_file *af);

/*
 * The next line of a passwd-file into buf, without its LF.  Returns its
 * length; AUTH_LINE_BAD for a line of more than len - 2 octets or with a
 * NUL in it, which is no entry (read to its end, so the next line is
 * whole); -1 at the end of the file or on a read error (af->error).
 */
#define AUTH_LINE_BAD	(-2)
int	auth_read_line(struct auth_file *af, char *buf, size_t len);

/* A uid or gid: decimal digits only, at most 2^32 - 1.  0 or -1. */
int	auth_parse_id(const char *s, unsigned long *v);

/*
 * Split a passwd-file line (without its newline) into e.  Returns 0,
 * 1 for a comment or blank line, -1 for a malformed line.
 */
int	auth_parse_line(char *line, struct auth_entry *e);

/*
 * Check a password against a stored one ("{PLAIN}x", "{CRYPT}$6$...",
 * "$y$...").  Constant time in the password.  1 when it matches.
 */
int	auth_check_password(const char *stored, const char *password);

/*
 * Look name up in the passwd-file and check password.  Unknown users
 * and wrong passwords take the same path and the same time.  On
 * AUTH_OK *u is filled in; on AUTH_FAIL u->name is set only if the user
 * exists (so that a mistyped password in USER stays out of the log), and
 * err says why, for the log.
 */
enum auth_result auth_passwd_file(const char *file, const char *name,
	    const char *password, struct auth_user *u, char *err,
	    size_t errlen);

/*
 * Check a login against the databases of cfg, in order; the first that
 * knows the user decides (a checkpassword program knows everyone).
 * Unknown users cost what known ones do.  On AUTH_OK *u is filled in;
 * on AUTH_FAIL u->name is set only if the user exists.  err says why,
 * for the log.
 */
enum auth_result auth_check(const struct auth_config *cfg,
	    const struct auth_request *req, struct auth_user *u, char *err,
	    size_t errlen);

/*
 * Split a SASL PLAIN message (RFC 4616) of len octets, NUL-terminated
 * after them: authzid NUL authcid NUL password.  The authzid must be
 * empty or the authcid; the others 1 to 255 octets.  0, or -1.
 */
int	auth_sasl_plain(char *msg, size_t len, const char **authcid,
	    const char **password);

/*
 * checkpassword's subprogram: report the identity checkpassword gave
 * (uid, gid, $HOME) on fd 4, for auth_check().  Returns an exit status.
 */
int	auth_checkpassword_reply(void);

/*
 * Become u when running as root: setgroups, setgid, setuid, each
 * checked, and setuid(0) must fail afterwards.  Never as uid 0.  When
 * not root, nothing changes.  0, or -1 with err set.
 */
int	auth_become(const struct auth_user *u, char *err, size_t errlen);

/* What a stored password allows (auth_stored_check()). */
enum auth_stored {
	AUTH_STORED_OK = 0,	/* the right password matches it */
	AUTH_STORED_LOCKED,	/* "!" or "*" first: locked on purpose */
	AUTH_STORED_BAD		/* no password can ever match it */
};

/*
 * Whether any password can match a stored one: {PLAIN}secret, or a
 * crypt(3) hash, bare or behind a scheme of auth_check_password(), that
 * crypt(3) takes (a dummy password hashed with it must give a result of
 * the hash's length).  Costs one crypt(3).  why (whylen may be 0) says
 * what is wrong, without the hash.
 */
enum auth_stored auth_stored_check(const char *stored, char *why,
	    size_t whylen);

/* What auth_lookup() found. */
enum auth_lookup_result {
	AUTH_LOOKUP_FOUND = 0,	/* the right password would let in */
	AUTH_LOOKUP_UNKNOWN,	/* no database knows the user */
	AUTH_LOOKUP_REFUSED,	/* known, but no password lets in */
	AUTH_LOOKUP_TEMP,	/* a database could not be read */
	AUTH_LOOKUP_ASK		/* a checkpassword program decides, and it
				   is asked only with the password */
};

/*
 * Find name in the databases of cfg without a password, in the order a
 * login asks them, for pop3d --check-user.  *db is the index of the
 * database that decided (or cfg->ndb).  On FOUND and REFUSED *u is
 * filled in.  why says why a user is refused, unknown (a system account
 * below first_uid, which a login passes over) or not found out; never
 * the password.
 */
enum auth_lookup_result auth_lookup(const struct auth_config *cfg,
	    const char *name, struct auth_user *u, size_t *db, char *why,
	    size_t whylen);

/* A crypt(3) hash of password with the system's preferred method. */
int	auth_hash_password(const char *password, char *out, size_t outlen);

/* Overwrite a secret so that the compiler cannot skip it. */
void	auth_wipe(void *, size_t);

#endif
