/*
 * admin.c: pop3d --check-user and --check-config.
 *
 * --check-user finds a user as a login does, becomes them, and looks at
 * the mailbox with readdir, stat and a non-blocking lock test only:
 * store_open() would move new/ to cur/, write the size cache, expire
 * messages and renew the login stamp, which a check must not do.
 * --check-config reads the passwd-files line by line and tries the mail
 * spec on a sample user and on every user of the files.
 */
#define _GNU_SOURCE		/* O_NOATIME: reading an mbox leaves its
				   atime, which tells "new mail", alone */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "auth.h"
#include "log.h"
#include "mbox.h"
#include "pop3d.h"
#include "store.h"
#include "uidl.h"

#define LOCK_NAME	"pop3d.lock"	/* as store.c */
#define LOGIN_STAMP	"pop3d.login"
#define SAMPLE_USER	"sample@example.org"
#define SAMPLE_HOME	"/home/sample"

/* What a look at a Maildir found. */
struct tally {
	size_t		 messages;	/* regular files of the mail user */
	size_t		 fresh;		/* of them, in new/ */
	size_t		 skipped;	/* links, files of other owners */
	uint64_t	 octets;	/* their sizes on disk */
};

/* A user seen in a passwd-file, for duplicates. */
struct seen {
	char		 name[USER_NAME_MAX + 1];
	unsigned long	 line;
};

static void	put(const char *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static int	refuse(const char *, ...)
		    __attribute__((format(printf, 1, 2)));
static void	problem(const char *, unsigned long, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static const char *db_name(const struct auth_config *, size_t, char *,
		    size_t);
static int	become(const struct auth_user *);
static int	creatable(const char *, char *, size_t);
static int	lock_test(int, pid_t *);
static int	count_dir(int, const char *, struct tally *);
static int	check_subdirs(int, const char *);
static int	check_lock(int, const char *, char *, size_t);
static int	check_login_delay(int, unsigned int);
static int	check_uidl(const char *, enum uidl_source);
static int	check_maildir(const struct session_config *, const char *);
static int	check_mbox(const char *);
static int	uses_home(const char *);
static int	check_spec(const char *);
static int	check_program(const char *);
static void	check_entry(const char *, unsigned long, struct auth_entry *,
		    const char *, int *);
static int	check_seen(const char *, unsigned long, const char *,
		    struct seen **, size_t *, size_t *);
static void	malformed(const char *, unsigned long, const char *, int *);
static int	check_passwd_file(const char *, const char *, int);

/*
 * Print "key: value", with control characters shown as '?': values
 * come from files and the command line.
 */
static void
put(const char *key, const char *fmt, ...)
{
	char buf[PATH_MAX_POP3 + 256];
	va_list ap;
	size_t i;

	va_start(ap, fmt);
	(void)vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	for (i = 0; buf[i] != '\0'; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = '?';
	(void)printf("%s: %s\n", key, buf);
}

/* "result: refused: why"; the status of a check that failed. */
static int
refuse(const char *fmt, ...)
{
	char buf[PATH_MAX_POP3 + 256];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	put("result", "refused: %s", buf);
	return 1;
}

/* "WHERE:LINE: problem", or "WHERE: problem" for line 0. */
static void
problem(const char *where, unsigned long line, const char *fmt, ...)
{
	char buf[PATH_MAX_POP3 + 256], at[PATH_MAX_POP3 + 32];
	va_list ap;
	size_t i;

	va_start(ap, fmt);
	(void)vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (line > 0)
		(void)snprintf(at, sizeof(at), "%s:%lu", where, line);
	else
		(void)snprintf(at, sizeof(at), "%s", where);
	for (i = 0; buf[i] != '\0'; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = '?';
	(void)printf("%s: %s\n", at, buf);
}

/* How the database i of cfg is named in the output. */
static const char *
db_name(const struct auth_config *cfg, size_t i, char *buf, size_t len)
{
	switch (cfg->db[i].type) {
	case AUTH_DB_FILE:
		(void)snprintf(buf, len, "passwd-file %s", cfg->db[i].path);
		break;
	case AUTH_DB_SYSTEM:
		(void)snprintf(buf, len, "system accounts");
		break;
	case AUTH_DB_CHECKPASSWORD:
		(void)snprintf(buf, len, "checkpassword %s", cfg->db[i].path);
		break;
	}
	return buf;
}

/*
 * Become the user as a login does, so that permissions show as they
 * would; not root, only check that this is the user.  0, or 1 with the
 * result printed.
 */
static int
become(const struct auth_user *u)
{
	char err[512];

	if (geteuid() != 0) {
		if (u->have_ids && u->uid != geteuid())
			return refuse("running as uid %lu, not as the user's "
			    "uid %lu: check as root or as the user",
			    (unsigned long)geteuid(), (unsigned long)u->uid);
		return 0;
	}
	err[0] = '\0';
	if (auth_become(u, err, sizeof(err)) == -1)
		return refuse("%s", err);
	return 0;
}

/*
 * Whether the user can create the directory path, as a login does for a
 * Maildir that does not exist: its nearest existing ancestor must be
 * writable.  0, or -1 with why set.
 */
static int
creatable(const char *path, char *why, size_t whylen)
{
	char dir[PATH_MAX_POP3];
	struct stat sb;
	char *slash;
	int n;

	n = snprintf(dir, sizeof(dir), "%s", path);
	if (n < 0 || (size_t)n >= sizeof(dir)) {
		log_errbuf(why, whylen, "mailbox path too long");
		return -1;
	}
	for (;;) {
		if ((slash = strrchr(dir, '/')) == NULL)
			return -1;
		if (slash == dir)
			slash[1] = '\0';
		else
			*slash = '\0';
		if (stat(dir, &sb) == 0)
			break;
		if (errno != ENOENT) {
			log_errbuf(why, whylen, "%s: %s", dir, strerror(errno));
			return -1;
		}
	}
	if (!S_ISDIR(sb.st_mode) || access(dir, W_OK | X_OK) == -1) {
		log_errbuf(why, whylen, "mailbox %s does not exist, and %s is "
		    "not a directory the user can write to", path, dir);
		return -1;
	}
	return 0;
}

/*
 * Whether a session holds the flock on fd: a shared lock, asked without
 * waiting and given back at once.  *pid gets the holder when it keeps
 * an fcntl lock too (--takeover), else 0.  1 busy, 0 free, -1 error.
 */
static int
lock_test(int fd, pid_t *pid)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
	    .l_start = 0, .l_len = 1 };

	*pid = 0;
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		(void)flock(fd, LOCK_UN);
		return 0;
	}
	if (errno != EWOULDBLOCK)
		return -1;
	if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
		*pid = fl.l_pid;
	return 1;
}

/*
 * Count the messages in sub (cur or new) of the Maildir on dirfd, as a
 * login would serve them: regular files of the mail user, not dot-files.
 * Symbolic links and files of other owners count as skipped.  0 or -1.
 */
static int
count_dir(int dirfd, const char *sub, struct tally *t)
{
	struct dirent *de;
	struct stat sb;
	DIR *dir;
	int fd;

	fd = openat(dirfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd == -1)
		return errno == ENOENT ? 0 : -1;
	if ((dir = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	while ((errno = 0, de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (fstatat(fd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == -1)
			continue;	/* gone meanwhile */
		if (S_ISLNK(sb.st_mode) ||
		    (S_ISREG(sb.st_mode) && sb.st_uid != geteuid()))
			t->skipped++;
		else if (S_ISREG(sb.st_mode)) {
			t->messages++;
			if (strcmp(sub, "new") == 0)
				t->fresh++;
			t->octets += (uint64_t)sb.st_size;
		}
	}
	if (errno != 0) {
		fd = errno;
		closedir(dir);
		errno = fd;
		return -1;
	}
	closedir(dir);
	return 0;
}

/*
 * cur/, new/ and tmp/ of the Maildir on dirfd at path: directories the
 * user can read, write and search, or missing from a Maildir the user
 * can write to (a login makes them).  0, or 1 with the result printed.
 */
static int
check_subdirs(int dirfd, const char *path)
{
	static const char *const sub[] = { "cur", "new", "tmp" };
	struct stat sb;
	size_t i;

	for (i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
		if (fstatat(dirfd, sub[i], &sb, AT_SYMLINK_NOFOLLOW) == -1) {
			if (errno != ENOENT)
				return refuse("%s/%s: %s", path, sub[i],
				    strerror(errno));
			if (faccessat(dirfd, ".", W_OK | X_OK, 0) == -1)
				return refuse("%s/%s is missing, and the user "
				    "cannot make it: %s", path, sub[i],
				    strerror(errno));
			continue;
		}
		if (!S_ISDIR(sb.st_mode))
			return refuse("%s/%s is not a directory", path, sub[i]);
		if (faccessat(dirfd, sub[i], R_OK | W_OK | X_OK, 0) == -1)
			return refuse("%s/%s: %s (the user needs to read and "
			    "write it)", path, sub[i], strerror(errno));
	}
	return 0;
}

/*
 * The session lock, pop3d.lock in the Maildir on dirfd, opened read-only
 * and never created.  *state gets "free" or "in use..."; 0, 1 when a
 * session holds it, or -1 with state set to why.
 */
static int
check_lock(int dirfd, const char *path, char *state, size_t len)
{
	pid_t pid;
	int fd, busy;

	fd = openat(dirfd, LOCK_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1) {
		if (errno != ENOENT) {
			log_errbuf(state, len, "%s/%s: %s", path, LOCK_NAME,
			    strerror(errno));
			return -1;
		}
		if (faccessat(dirfd, ".", W_OK | X_OK, 0) == -1) {
			log_errbuf(state, len, "%s/%s is missing, and the user "
			    "cannot make it: %s", path, LOCK_NAME,
			    strerror(errno));
			return -1;
		}
		log_errbuf(state, len, "free");
		return 0;
	}
	if (faccessat(dirfd, LOCK_NAME, R_OK | W_OK, 0) == -1) {
		log_errbuf(state, len, "%s/%s: %s (the user needs to write "
		    "it)", path, LOCK_NAME, strerror(errno));
		close(fd);
		return -1;
	}
	busy = lock_test(fd, &pid);
	close(fd);
	if (busy == -1) {
		log_errbuf(state, len, "flock %s/%s: %s", path, LOCK_NAME,
		    strerror(errno));
		return -1;
	}
	if (busy && pid > 0)
		log_errbuf(state, len, "in use by pid %ld", (long)pid);
	else
		log_errbuf(state, len, busy ? "in use" : "free");
	return busy;
}

/* --login-delay: 1 with the result printed when a login now is too soon. */
static int
check_login_delay(int dirfd, unsigned int delay)
{
	struct stat sb;
	time_t now = time(NULL);

	if (delay == 0 ||
	    fstatat(dirfd, LOGIN_STAMP, &sb, AT_SYMLINK_NOFOLLOW) == -1)
		return 0;
	put("last-login", "%lld seconds ago", (long long)(now - sb.st_mtime));
	if (sb.st_mtime <= now && now - sb.st_mtime < (time_t)delay)
		return refuse("login delay: the last login was %lld seconds "
		    "ago, --login-delay is %u", (long long)(now - sb.st_mtime),
		    delay);
	return 0;
}

/* --uidl-from: the other server's list must load, as at login.  0 or 1. */
static int
check_uidl(const char *path, enum uidl_source src)
{
	struct uidl_map *map;
	char err[512];

	if (src == UIDL_OWN)
		return 0;
	err[0] = '\0';
	if (uidl_map_load(&map, path, src, err, sizeof(err)) == -1) {
		put("uidl-from", "%s: cannot be used", uidl_source_name(src));
		return refuse("uidl-from: %s", err);
	}
	if (map == NULL)
		put("uidl-from", "%s: %s", uidl_source_name(src),
		    src == UIDL_QMAIL ? "the message names" :
		    "no list in the Maildir: pop3d's own ids");
	else
		put("uidl-from", "%s: %zu ids in %s", uidl_source_name(src),
		    uidl_map_count(map), uidl_map_path(map));
	uidl_map_free(map);
	return 0;
}

/* The Maildir at path, looked at without a change.  0 or 1. */
static int
check_maildir(const struct session_config *cfg, const char *path)
{
	struct tally t;
	struct stat sb;
	char state[PATH_MAX_POP3 + 128];
	int dirfd, r;

	memset(&t, 0, sizeof(t));
	put("type", "maildir");
	if (stat(path, &sb) == -1) {
		if (errno != ENOENT)
			return refuse("mailbox %s: %s", path, strerror(errno));
		if (creatable(path, state, sizeof(state)) == -1)
			return refuse("%s", state);
		put("messages", "0 (no Maildir yet: a login makes it)");
		put("octets", "0 on disk");
		put("lock", "free");
		put("result", "ok");
		return 0;
	}
	if (!S_ISDIR(sb.st_mode))
		return refuse("mailbox %s is not a directory", path);
	dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd == -1)
		return refuse("mailbox %s: %s", path, strerror(errno));
	if ((r = check_subdirs(dirfd, path)) != 0)
		goto out;
	if (count_dir(dirfd, "cur", &t) == -1 ||
	    count_dir(dirfd, "new", &t) == -1) {
		r = refuse("mailbox %s: %s", path, strerror(errno));
		goto out;
	}
	put("messages", "%zu", t.messages);
	put("new", "%zu (moved to cur/ at the next login)", t.fresh);
	put("skipped", "%zu (symbolic links and files of other owners)",
	    t.skipped);
	put("octets", "%llu on disk", (unsigned long long)t.octets);
	r = check_lock(dirfd, path, state, sizeof(state));
	if (r == -1) {
		r = refuse("%s", state);
		goto out;
	}
	put("lock", "%s", state);
	if (r == 1) {
		r = refuse("in use: another session holds the mailbox "
		    "([IN-USE])");
		goto out;
	}
	if ((r = check_login_delay(dirfd, cfg->login_delay)) != 0 ||
	    (r = check_uidl(path, cfg->uidl_from)) != 0)
		goto out;
	put("result", "ok");
out:
	close(dirfd);
	return r;
}

/* The mbox at path, read without a change, even of its atime.  0 or 1. */
static int
check_mbox(const char *path)
{
	struct mbox_index idx;
	struct stat sb;
	pid_t pid;
	int fd, busy, lock_errno, r, e;

	put("type", "mbox");
	if (lstat(path, &sb) == -1) {
		if (errno != ENOENT)
			return refuse("%s: %s", path, strerror(errno));
		put("messages", "0 (no file: an empty mailbox)");
		put("octets", "0 on disk");
		put("lock", "free");
		put("result", "ok");
		return 0;
	}
	if (!S_ISREG(sb.st_mode))
		return refuse("%s is not a regular file", path);
	if (sb.st_uid != geteuid())
		return refuse("%s is owned by uid %lu, not by the mail user",
		    path, (unsigned long)sb.st_uid);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NOATIME | O_CLOEXEC);
	if (fd == -1)
		return refuse("%s: %s", path, strerror(errno));
	busy = lock_test(fd, &pid);
	lock_errno = errno;
	r = mbox_scan(fd, sb.st_size, &idx);
	e = errno;
	close(fd);
	if (r == 0)
		put("messages", "%zu", idx.n);
	mbox_index_free(&idx);
	if (r == 1)
		return refuse("%s is not an mbox (no From_ line at its start)",
		    path);
	if (r == -1)
		return refuse("%s: %s", path, strerror(e));
	put("octets", "%lld on disk", (long long)sb.st_size);
	if (busy == -1)
		return refuse("flock %s: %s", path, strerror(lock_errno));
	put("lock", "%s", busy ? "in use" : "free");
	if (busy)
		return refuse("in use: another session holds the mailbox "
		    "([IN-USE])");
	put("result", "ok");
	return 0;
}

int
admin_check_user(const struct session_config *cfg, const char *name)
{
	struct auth_user u;
	char why[PATH_MAX_POP3 + 128], path[PATH_MAX_POP3], db[PATH_MAX_POP3];
	enum auth_lookup_result r;
	size_t i;

	put("user", "%s", name);
	if (!auth_name_valid(name))
		return refuse("invalid user name (1 to %d octets of printable "
		    "ASCII or UTF-8 without space, /, : or \\, not starting "
		    "with .)", USER_NAME_MAX);
	why[0] = '\0';
	r = auth_lookup(&cfg->auth, name, &u, &i, why, sizeof(why));
	if (i < cfg->auth.ndb)
		put("database", "%s", db_name(&cfg->auth, i, db, sizeof(db)));
	switch (r) {
	case AUTH_LOOKUP_FOUND:
	case AUTH_LOOKUP_REFUSED:
		break;
	case AUTH_LOOKUP_ASK:
		put("result", "cannot tell: %s", why);
		return 1;
	case AUTH_LOOKUP_TEMP:
		return refuse("the database cannot be read ([SYS/TEMP]): %s",
		    why);
	default:
		return refuse("%s", why);
	}
	if (u.have_ids) {
		put("uid", "%lu", (unsigned long)u.uid);
		put("gid", "%lu", (unsigned long)u.gid);
	} else
		put("uid", "none (pop3d must then run as the user)");
	put("home", "%s", u.home[0] != '\0' ? u.home : "none");
	if (r == AUTH_LOOKUP_REFUSED)
		return refuse("%s", why);
	if (store_path(cfg->mail_spec, u.name, u.home, path, sizeof(path),
	    why, sizeof(why)) == -1)
		return refuse("%s", why);
	put("mailbox", "%s", path);
	if (become(&u) != 0)
		return 1;
	if (strncmp(path, "mbox:", 5) == 0)
		return check_mbox(path + 5);
	return check_maildir(cfg, path);
}

/* Whether the mail spec uses the home: "~" at the start, or %h. */
static int
uses_home(const char *spec)
{
	const char *p = spec;

	if (strncmp(p, "maildir:", 8) == 0)
		p += 8;
	else if (strncmp(p, "mbox:", 5) == 0)
		p += 5;
	if (p[0] == '~' && (p[1] == '/' || p[1] == '\0'))
		return 1;
	for (; *p != '\0'; p++) {
		if (*p != '%')
			continue;
		if (*++p == 'h')
			return 1;
		if (*p == '\0')
			break;
	}
	return 0;
}

/*
 * The mail spec: a known type, known %-escapes, an absolute path for a
 * sample user, and not one mailbox for all.  The problems it has.
 */
static int
check_spec(const char *spec)
{
	char where[PATH_MAX_POP3], a[PATH_MAX_POP3], b[PATH_MAX_POP3];
	char err[PATH_MAX_POP3 + 64];
	const char *p = spec, *colon, *slash;
	int n = 0;

	(void)snprintf(where, sizeof(where), "--mail %s", spec);
	if (strncmp(p, "maildir:", 8) == 0)
		p += 8;
	else if (strncmp(p, "mbox:", 5) == 0)
		p += 5;
	else if ((colon = strchr(p, ':')) != NULL &&
	    ((slash = strchr(p, '/')) == NULL || colon < slash)) {
		problem(where, 0, "unknown mailbox type %.*s: (maildir: or "
		    "mbox:)", (int)(colon - p < 32 ? colon - p : 32), p);
		return 1;
	}
	for (; *p != '\0'; p++) {
		if (*p != '%')
			continue;
		if (*++p == '\0') {
			problem(where, 0, "%% at the end (%%%% for a %%)");
			return n + 1;
		}
		if (strchr("hund%", *p) == NULL) {
			problem(where, 0, "unknown escape %%%c (%%h, %%u, %%n, "
			    "%%d or %%%%)", *p);
			n++;
		}
	}
	if (n > 0)
		return n;
	if (store_path(spec, SAMPLE_USER, SAMPLE_HOME, a, sizeof(a), err,
	    sizeof(err)) == -1) {
		problem(where, 0, "%s", err);
		return 1;
	}
	if (store_path(spec, "other@example.net", "/home/other", b, sizeof(b),
	    err, sizeof(err)) == 0 && strcmp(a, b) == 0) {
		problem(where, 0, "every user gets the same mailbox %s (use "
		    "~, %%h, %%u, %%n or %%d)", a);
		return 1;
	}
	return 0;
}

/* A checkpassword program: an absolute path to an executable file. */
static int
check_program(const char *prog)
{
	char where[PATH_MAX_POP3];
	struct stat sb;

	(void)snprintf(where, sizeof(where), "--checkpassword %s", prog);
	if (prog[0] != '/') {
		problem(where, 0, "not an absolute path");
		return 1;
	}
	if (stat(prog, &sb) == -1) {
		problem(where, 0, "%s", strerror(errno));
		return 1;
	}
	if (!S_ISREG(sb.st_mode)) {
		problem(where, 0, "not a regular file");
		return 1;
	}
	if ((sb.st_mode & 0111) == 0 || access(prog, X_OK) == -1) {
		problem(where, 0, "not executable");
		return 1;
	}
	if (sb.st_mode & S_IWOTH) {
		problem(where, 0, "writable by every user");
		return 1;
	}
	return 0;
}

/*
 * The fields of a well-formed passwd-file entry: the password, uid, gid
 * and home, and the mail spec for this user (when spec_ok).  Adds the
 * problems to *n.
 */
static void
check_entry(const char *file, unsigned long line, struct auth_entry *e,
    const char *spec, int *n)
{
	char why[PATH_MAX_POP3 + 64], path[PATH_MAX_POP3], safe[48];
	const char *what[2] = { "uid", "gid" };
	const char *id[2];
	unsigned long v;
	size_t i;

	id[0] = e->uid;
	id[1] = e->gid;
	if (auth_stored_check(e->password, why, sizeof(why)) ==
	    AUTH_STORED_BAD) {
		problem(file, line, "user %s: %s", e->name, why);
		(*n)++;
	}
	for (i = 0; i < 2; i++) {
		if (id[i][0] == '\0') {
			problem(file, line, "user %s: no %s (pop3d run as "
			    "root needs one)", e->name, what[i]);
			(*n)++;
		} else if (auth_parse_id(id[i], &v) == -1) {
			problem(file, line, "user %s: %s %s is not a number",
			    e->name, what[i], log_safe(id[i], safe,
			    sizeof(safe)));
			(*n)++;
		} else if (v == 0) {
			problem(file, line, "user %s: %s 0 (root%s)", e->name,
			    what[i], i == 0 ? ": never served" : "'s group");
			(*n)++;
		}
	}
	if (e->home[0] != '\0' && e->home[0] != '/') {
		problem(file, line, "user %s: home %s is not absolute", e->name,
		    e->home);
		(*n)++;
	} else if (e->home[0] == '\0' && spec != NULL && uses_home(spec)) {
		problem(file, line, "user %s: no home, which the mail spec "
		    "%s needs", e->name, spec);
		(*n)++;
	} else if (spec != NULL && store_path(spec, e->name, e->home, path,
	    sizeof(path), why, sizeof(why)) == -1) {
		problem(file, line, "user %s: %s", e->name, why);
		(*n)++;
	}
}

/*
 * Remember name from line; 1 with a problem printed when it was seen
 * before (the first entry is the one used), 0, or -1 out of memory.
 */
static int
check_seen(const char *file, unsigned long line, const char *name,
    struct seen **v, size_t *count, size_t *cap)
{
	struct seen *s = *v;
	size_t i;

	for (i = 0; i < *count; i++) {
		if (strcmp(s[i].name, name) == 0) {
			problem(file, line, "duplicate user %s: the entry on "
			    "line %lu is the one used", name, s[i].line);
			return 1;
		}
	}
	if (*count == *cap) {
		if ((s = reallocarray(s, *cap ? *cap * 2 : 64,
		    sizeof(*s))) == NULL)
			return -1;
		*cap = *cap ? *cap * 2 : 64;
		*v = s;
	}
	(void)snprintf(s[*count].name, sizeof(s[*count].name), "%s", name);
	s[(*count)++].line = line;
	return 0;
}

/* Why auth_parse_line() refused line (an unchanged copy). */
static void
malformed(const char *file, unsigned long line, const char *text, int *n)
{
	char name[USER_NAME_MAX + 2], safe[USER_NAME_MAX + 2];
	size_t len = strcspn(text, ":");

	(*n)++;
	if (text[len] == '\0') {
		problem(file, line, "malformed entry: no ':' (name:password:"
		    "uid:gid:gecos:home:shell:extra)");
		return;
	}
	(void)snprintf(name, sizeof(name), "%.*s",
	    (int)(len < USER_NAME_MAX + 1 ? len : USER_NAME_MAX + 1), text);
	if (len > USER_NAME_MAX || !auth_name_valid(name))
		problem(file, line, "malformed entry: invalid user name %s",
		    log_safe(name, safe, sizeof(safe)));
	else
		problem(file, line, "malformed entry: user %s has an empty "
		    "password field", name);
}

/*
 * One passwd-file: its mode, and every line as a login reads it.  spec
 * is tried on each user when spec_ok.  The problems it has.
 */
static int
check_passwd_file(const char *file, const char *spec, int spec_ok)
{
	char line[PASSWD_LINE_MAX], copy[PASSWD_LINE_MAX];
	struct auth_entry e;
	struct seen *seen = NULL;
	struct stat sb;
	unsigned long lineno = 0;
	size_t nseen = 0, cap = 0, len;
	int n = 0, r;
	struct auth_file af;

	if (auth_file_open(&af, file) == -1) {
		problem(file, 0, "%s", strerror(errno));
		return 1;
	}
	if (fstat(af.fd, &sb) == 0 && (sb.st_mode & (S_IROTH | S_IWOTH))) {
		problem(file, 0, "%s by every user (mode %04o): chmod 600",
		    (sb.st_mode & S_IROTH) == 0 ? "writable" :
		    (sb.st_mode & S_IWOTH) == 0 ? "readable" :
		    "readable and writable", (unsigned int)(sb.st_mode & 07777));
		n++;
	}
	while ((r = auth_read_line(&af, line, sizeof(line))) != -1) {
		lineno++;
		if (r == AUTH_LINE_BAD) {
			problem(file, lineno, "line longer than %d octets or "
			    "with a NUL octet: skipped", PASSWD_LINE_MAX - 2);
			n++;
			continue;
		}
		len = (size_t)r;
		if (len > 0 && line[len - 1] == '\r') {
			problem(file, lineno, "line ends with CR (CRLF line "
			    "ends?)");
			n++;
		}
		memcpy(copy, line, len + 1);
		switch (auth_parse_line(line, &e)) {
		case 1:
			break;
		case -1:
			malformed(file, lineno, copy, &n);
			break;
		default:
			switch (check_seen(file, lineno, e.name, &seen, &nseen,
			    &cap)) {
			case 1:
				n++;
				break;
			case -1:
				problem(file, lineno, "out of memory");
				n++;
				goto out;
			default:
				check_entry(file, lineno, &e,
				    spec_ok ? spec : NULL, &n);
			}
		}
	}
	if (af.error != 0) {
		problem(file, 0, "read error: %s", strerror(af.error));
		n++;
	}
out:
	auth_wipe(line, sizeof(line));
	auth_wipe(copy, sizeof(copy));
	free(seen);
	auth_file_close(&af);
	return n;
}

int
admin_check_config(const struct session_config *cfg)
{
	size_t i;
	int n, spec_ok;

	n = check_spec(cfg->mail_spec);
	spec_ok = n == 0;
	for (i = 0; i < cfg->auth.ndb; i++) {
		if (cfg->auth.db[i].type == AUTH_DB_FILE)
			n += check_passwd_file(cfg->auth.db[i].path,
			    cfg->mail_spec, spec_ok);
		else if (cfg->auth.db[i].type == AUTH_DB_CHECKPASSWORD)
			n += check_program(cfg->auth.db[i].path);
	}
	if (n == 0)
		(void)printf("ok\n");
	return n == 0 ? 0 : 1;
}
