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
 * printable ASCII without space, '/', ':' or '\', not starting with '.'.
 * Only such names reach a path, a log line or a program.  1 or 0.
 */
int	auth_name_valid(const char *name);

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
 * Become u when running as root: setgroups, setgid, setuid, each
 * checked, and setuid(0) must fail afterwards.  Never as uid 0.  When
 * not root, nothing changes.  0, or -1 with err set.
 */
int	auth_become(const struct auth_user *u, char *err, size_t errlen);

/* A crypt(3) hash of password with the system's preferred method. */
int	auth_hash_password(const char *password, char *out, size_t outlen);

/* Overwrite a secret so that the compiler cannot skip it. */
void	auth_wipe(void *, size_t);

#endif
