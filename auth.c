/*
 * auth.c: passwd-file users, password checks and the privilege drop.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <crypt.h>
#include <ctype.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <shadow.h>
#include <signal.h>
#include <time.h>
#include <errno.h>
#include <grp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "fmt.h"
#include "log.h"
#include "md5.h"
#include "stream.h"

/* Dovecot scheme prefixes whose value is a crypt(3) string. */
static const char *const crypt_schemes[] = {
	"{CRYPT}", "{SHA512-CRYPT}", "{SHA256-CRYPT}", "{BLF-CRYPT}",
	"{MD5-CRYPT}", NULL
};

/* Checked against when the user is unknown, so that it costs the same. */
static const char dummy_hash[] =
    "$y$j9T$xhgj017WRjPJUIw1DOeqm0$/XRhwdFQSzPC2kjkSJtrKZuyVtAQxMyb88WJRYpWvH.";

static int	equal_ct(const char *, const char *);
static size_t	utf8_len(const unsigned char *);
static int	system_why(const char *, unsigned long, char *, size_t);
static void	hash_method(const char *, char *, size_t);

void
auth_wipe(void *p, size_t len)
{
	explicit_bzero(p, len);
}

int
auth_name_valid(const char *name)
{
	const unsigned char *p = (const unsigned char *)name;
	size_t i, n;

	if (p[0] == '\0' || p[0] == '.')
		return 0;
	for (i = 0; p[i] != '\0'; i += n) {
		n = p[i] < 0x80 ? 1 : utf8_len(p + i);
		if (n == 0)
			return 0;
		if (i + n > USER_NAME_MAX)
			return 0;
		if (n == 1 && (p[i] < 0x21 || p[i] > 0x7e || p[i] == '/' ||
		    p[i] == ':' || p[i] == '\\'))
			return 0;
	}
	return 1;
}

/*
 * The length of the UTF-8 sequence of a character from U+00A0 up at s
 * (RFC 3629: the shortest form, no surrogates, at most U+10FFFF; C1
 * controls excluded), or 0.
 */
static size_t
utf8_len(const unsigned char *s)
{
	size_t n, i;
	uint32_t c;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		c = s[0] & 0x1fu;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		c = s[0] & 0x0fu;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		c = s[0] & 0x07u;
	} else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3fu);
	}
	if (c < 0xa0 || (n == 3 && c < 0x800) || (n == 4 && c < 0x10000) ||
	    (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
		return 0;
	return n;
}

int
auth_parse_line(char *line, struct auth_entry *e)
{
	char *field[7], *p = line;
	size_t n = 0;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0' || *p == '#')
		return 1;
	/* name:password:uid:gid:gecos:home:shell, the rest ignored. */
	field[n++] = line;
	for (p = line; *p != '\0' && n < 7; p++) {
		if (*p == ':') {
			*p = '\0';
			field[n++] = p + 1;
		}
	}
	if (n < 2 || !auth_name_valid(field[0]) || field[1][0] == '\0')
		return -1;
	if (n < 7 && (p = strchr(field[n - 1], ':')) != NULL)
		*p = '\0';
	e->name = field[0];
	e->password = field[1];
	e->uid = n > 2 ? field[2] : "";
	e->gid = n > 3 ? field[3] : "";
	e->home = n > 5 ? field[5] : "";
	return 0;
}

int
auth_file_open(struct auth_file *af, const char *file)
{
	af->error = 0;
	af->pos = af->len = 0;
	af->fd = open(file, O_RDONLY | O_CLOEXEC);
	return af->fd == -1 ? -1 : 0;
}

void
auth_file_close(struct auth_file *af)
{
	(void)close(af->fd);
	af->fd = -1;
	auth_wipe(af->buf, sizeof(af->buf));
}

/* The next octet of af, or -1 at its end or on a read error. */
static int
auth_file_getc(struct auth_file *af)
{
	ssize_t r;

	if (af->pos == af->len) {
		if ((r = stream_read(af->fd, af->buf, sizeof(af->buf))) <= 0) {
			if (r == -1)
				af->error = errno;
			return -1;
		}
		af->pos = 0;
		af->len = (size_t)r;
	}
	return (unsigned char)af->buf[af->pos++];
}

int
auth_read_line(struct auth_file *af, char *buf, size_t len)
{
	size_t n = 0;
	int c, bad = 0;

	while ((c = auth_file_getc(af)) != -1 && c != '\n') {
		if (c == '\0' || n + 2 >= len)
			bad = 1;	/* read on to the LF all the same */
		else
			buf[n++] = (char)c;
	}
	if (c == -1 && n == 0 && !bad)
		return -1;
	buf[n] = '\0';
	return bad ? AUTH_LINE_BAD : (int)n;
}

int
auth_parse_id(const char *s, unsigned long *v)
{
	unsigned long n = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || n > (UINT32_MAX - 9) / 10)
			return -1;
		n = n * 10 + (unsigned long)(*s - '0');
	}
	*v = n;
	return 0;
}

/* String equality in time that depends on the lengths only.  1 or 0. */
static int
equal_ct(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, n = la > lb ? la : lb;
	unsigned char d = la != lb;

	for (i = 0; i < n; i++)
		d |= (unsigned char)((i < la ? a[i] : 0) ^ (i < lb ? b[i] : 0));
	return d == 0;
}

int
auth_check_password(const char *stored, const char *password)
{
	struct crypt_data *cd;
	const char *hash = stored, *out;
	size_t i, len;
	int ok;

	if (strncmp(stored, "{PLAIN}", 7) == 0)
		return equal_ct(stored + 7, password);
	for (i = 0; crypt_schemes[i] != NULL; i++) {
		len = strlen(crypt_schemes[i]);
		if (strncmp(stored, crypt_schemes[i], len) == 0) {
			hash = stored + len;
			break;
		}
	}
	if (hash[0] == '{' || (cd = calloc(1, sizeof(*cd))) == NULL)
		return 0;	/* a scheme we do not know */
	out = crypt_r(password, hash, cd);
	ok = out != NULL && out[0] != '*' && equal_ct(out, hash);
	auth_wipe(cd, sizeof(*cd));
	free(cd);
	return ok;
}

/*
 * Find name in a passwd-file.  Returns 1 with *u and stored filled in,
 * 0 when the file does not know the user, -1 when it cannot be read.
 * The whole file is read whatever the name, so as to take the same
 * time, and dummy gets a hash to check unknown users against.
 */
static int
passwd_find(const char *file, const char *name, struct auth_user *u,
    char *stored, size_t storedlen, char *dummy, size_t dummylen,
    char *err, size_t errlen)
{
	char line[PASSWD_LINE_MAX];
	struct auth_entry e;
	unsigned long uid, gid;
	struct auth_file af;
	int found = 0, r;

	if (auth_file_open(&af, file) == -1) {
		log_errbuf(err, errlen, "%s: %s", file, strerror(errno));
		return -1;
	}
	while ((r = auth_read_line(&af, line, sizeof(line))) != -1) {
		if (r == AUTH_LINE_BAD || auth_parse_line(line, &e) != 0)
			continue;
		/* Prefer a crypt hash: it is what known users cost. */
		if (dummy[0] == '\0' || (strncmp(dummy, "{PLAIN}", 7) == 0 &&
		    strncmp(e.password, "{PLAIN}", 7) != 0))
			(void)fmt_buf(dummy, dummylen, "%s", e.password);
		if (found || strcmp(e.name, name) != 0)
			continue;
		found = 1;
		(void)fmt_buf(u->name, sizeof(u->name), "%s", e.name);
		u->have_ids = auth_parse_id(e.uid, &uid) == 0 &&
		    auth_parse_id(e.gid, &gid) == 0;
		u->uid = u->have_ids ? (uid_t)uid : 0;
		u->gid = u->have_ids ? (gid_t)gid : 0;
		u->system = 0;
		r = fmt_buf(u->home, sizeof(u->home), "%s", e.home);
		if (r < 0 || (size_t)r >= sizeof(u->home))
			u->home[0] = '\0';
		(void)fmt_buf(stored, storedlen, "%s", e.password);
	}
	r = af.error;
	auth_file_close(&af);
	auth_wipe(line, sizeof(line));
	if (r != 0) {
		log_errbuf(err, errlen, "%s: %s", file, strerror(r));
		return -1;
	}
	return found;
}

/*
 * Find name among the system accounts (uid at least first_uid).  1, 0,
 * or -1 as passwd_find(); stored is "!" for an account that is locked
 * or expired, which no password matches.
 */
static int
system_find(const char *name, unsigned long first_uid, struct auth_user *u,
    char *stored, size_t storedlen, char *err, size_t errlen)
{
	const char *hash;
	struct passwd *pw;
	struct spwd *sp;
	long today;
	int r;

	errno = 0;
	if ((pw = getpwnam(name)) == NULL) {
		if (errno == 0 || errno == ENOENT || errno == ESRCH)
			return 0;
		log_errbuf(err, errlen, "getpwnam: %s", strerror(errno));
		return -1;
	}
	if ((unsigned long)pw->pw_uid < first_uid || pw->pw_uid == 0)
		return 0;	/* a system account, not a mail user */
	(void)fmt_buf(u->name, sizeof(u->name), "%s", pw->pw_name);
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	u->have_ids = 1;
	u->system = 1;
	r = fmt_buf(u->home, sizeof(u->home), "%s", pw->pw_dir);
	if (r < 0 || (size_t)r >= sizeof(u->home))
		u->home[0] = '\0';
	hash = pw->pw_passwd;
	if ((sp = getspnam(name)) != NULL) {
		hash = sp->sp_pwdp;
		today = (long)(time(NULL) / 86400);
		if (sp->sp_expire >= 0 && sp->sp_expire <= today)
			hash = "!";	/* the account has expired */
	}
	/* "!" and "*" lock an account; crypt(3) would reject them fast. */
	if (hash == NULL || hash[0] == '!' || hash[0] == '*' ||
	    hash[0] == '\0')
		hash = "!";
	(void)fmt_buf(stored, storedlen, "%s", hash);
	return 1;
}

/* APOP (RFC 1939 section 7): MD5 of timestamp and a {PLAIN} secret. */
static int
apop_check(const char *stored, const char *timestamp, const char *digest)
{
	char buf[PASSWD_LINE_MAX + 256], hex[2 * MD5_DIGEST_LEN + 1];
	char lower[2 * MD5_DIGEST_LEN + 1];
	size_t i;
	int n, ok;

	for (i = 0; i < sizeof(lower) - 1 && digest[i] != '\0'; i++)
		lower[i] = (char)tolower((unsigned char)digest[i]);
	lower[i] = '\0';
	n = fmt_buf(buf, sizeof(buf), "%s%s", timestamp,
	    strncmp(stored, "{PLAIN}", 7) == 0 ? stored + 7 : "");
	md5_hex(buf, n > 0 ? strlen(buf) : 0, hex);
	auth_wipe(buf, sizeof(buf));
	ok = equal_ct(hex, lower) && digest[i] == '\0';
	/* Only a secret kept in clear can make the digest. */
	return ok && strncmp(stored, "{PLAIN}", 7) == 0;
}

/* Check a request against a stored password.  1 when it matches. */
static int
verify(const char *stored, const struct auth_request *req)
{
	if (req->apop)
		return apop_check(stored, req->timestamp, req->secret);
	return auth_check_password(stored, req->secret);
}

enum auth_result
auth_passwd_file(const char *file, const char *name, const char *password,
    struct auth_user *u, char *err, size_t errlen)
{
	struct auth_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.db[0].type = AUTH_DB_FILE;
	cfg.db[0].path = file;
	cfg.ndb = 1;
	return auth_check(&cfg, &(struct auth_request){ .name = name,
	    .secret = password, .timestamp = "" }, u, err, errlen);
}

/*
 * The exit status of child pid, waiting at most secs seconds before it
 * is killed; -1 when it had to be.
 */
static int
wait_bounded(pid_t pid, unsigned int secs)
{
	struct timespec tick = { 0, 10 * 1000 * 1000 };
	unsigned int n;
	int status;

	for (n = 0; n < secs * 100; n++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
		(void)nanosleep(&tick, NULL);
	}
	(void)kill(pid, SIGKILL);
	(void)waitpid(pid, &status, 0);
	return -1;
}

/*
 * Read what checkpassword's subprogram reported on fd 4 into *u: three
 * lines, uid, gid and home.  0 or -1.
 */
static int
checkpassword_identity(char *reply, const char *name, struct auth_user *u)
{
	char *line[3], *p = reply;
	unsigned long uid, gid;
	size_t i;
	int n;

	for (i = 0; i < 3; i++) {
		line[i] = p;
		if ((p = strchr(p, '\n')) == NULL)
			return -1;
		*p++ = '\0';
	}
	if (auth_parse_id(line[0], &uid) == -1 ||
	    auth_parse_id(line[1], &gid) == -1)
		return -1;
	n = fmt_buf(u->home, sizeof(u->home), "%s", line[2]);
	if (n < 0 || (size_t)n >= sizeof(u->home))
		return -1;
	(void)fmt_buf(u->name, sizeof(u->name), "%s", name);
	u->uid = (uid_t)uid;
	u->gid = (gid_t)gid;
	u->have_ids = 1;
	u->system = 0;
	return 0;
}

/*
 * Run a checkpassword program (the qmail interface): fd 3 carries
 * "name\0secret\0timestamp\0"; exit 0 is a match, 1 a mismatch, any
 * other status a temporary failure.  On a match the program runs pop3d
 * --checkpassword-reply as the user, which tells uid, gid and home on
 * fd 4.
 */
static enum auth_result
checkpassword(const struct auth_config *cfg, const char *prog,
    const struct auth_request *req, struct auth_user *u, char *err,
    size_t errlen)
{
	char data[3 * 512], reply[PATH_MAX_POP3 + 64], remote[80];
	char argv0[PATH_MAX_POP3], self[PATH_MAX_POP3];
	char reply_opt[] = "--checkpassword-reply";
	char *const argv[] = { argv0, self, reply_opt, NULL };
	char path[] = "PATH=/usr/local/bin:/usr/bin:/bin", proto[] = "PROTO=TCP";
	char *envp[] = { path, proto, remote, NULL };
	struct pollfd pfd;
	size_t dlen = 0, rlen = 0;
	int in[2], out[2], status, n;
	pid_t pid;

	n = fmt_buf(data, sizeof(data), "%s%c%s%c%s%c", req->name, 0,
	    req->secret, 0, req->timestamp, 0);
	if (n < 0 || (size_t)n >= sizeof(data)) {
		log_errbuf(err, errlen, "checkpassword: request too long");
		return AUTH_FAIL;
	}
	dlen = (size_t)n;
	/* The client's address, when it has one (not "local"). */
	if (cfg->remote != NULL && strpbrk(cfg->remote, ".:") != NULL)
		(void)fmt_buf(remote, sizeof(remote), "TCPREMOTEIP=%s",
		    cfg->remote);
	else
		envp[2] = NULL;
	(void)fmt_buf(argv0, sizeof(argv0), "%s", prog);
	(void)fmt_buf(self, sizeof(self), "%s", cfg->self);
	if (pipe(in) == -1)
		goto syserr;
	if (pipe(out) == -1) {
		close(in[0]);
		close(in[1]);
		goto syserr;
	}
	if ((pid = fork()) == -1) {
		close(in[0]);
		close(in[1]);
		close(out[0]);
		close(out[1]);
		goto syserr;
	}
	if (pid == 0) {
		/* fd 3: the request; fd 4: the reply; no other fds.  Both
		 * are moved out of the way first, as either may be 3 or 4. */
		in[0] = fcntl(in[0], F_DUPFD, 10);
		out[1] = fcntl(out[1], F_DUPFD, 10);
		if (in[0] == -1 || out[1] == -1 || dup2(in[0], 3) == -1 ||
		    dup2(out[1], 4) == -1)
			_exit(111);
		closefrom(5);
		execve(prog, argv, envp);
		_exit(111);
	}
	close(in[0]);
	close(out[1]);
	/* The program may exit without reading: no SIGPIPE (ignored). */
	n = write(in[1], data, dlen) == (ssize_t)dlen;
	auth_wipe(data, sizeof(data));
	close(in[1]);
	/* The reply, within a bounded time; then the exit status. */
	pfd.fd = out[0];
	pfd.events = POLLIN;
	while (rlen < sizeof(reply) - 1 &&
	    poll(&pfd, 1, CHECKPASSWORD_TIMEOUT * 1000) == 1) {
		ssize_t r = read(out[0], reply + rlen, sizeof(reply) - 1 - rlen);

		if (r <= 0)
			break;
		rlen += (size_t)r;
	}
	reply[rlen] = '\0';
	close(out[0]);
	status = wait_bounded(pid, CHECKPASSWORD_TIMEOUT);
	if (!n || status == -1 || !WIFEXITED(status)) {
		log_errbuf(err, errlen, "checkpassword %s failed", prog);
		return AUTH_TEMP;
	}
	switch (WEXITSTATUS(status)) {
	case 0:
		if (checkpassword_identity(reply, req->name, u) == 0)
			return AUTH_OK;
		log_errbuf(err, errlen, "checkpassword %s: no identity reported",
		    prog);
		return AUTH_TEMP;
	case 1:
		(void)fmt_buf(u->name, sizeof(u->name), "%s", req->name);
		log_errbuf(err, errlen, "checkpassword refused");
		return AUTH_FAIL;
	default:
		log_errbuf(err, errlen, "checkpassword %s: exit %d", prog,
		    WEXITSTATUS(status));
		return AUTH_TEMP;
	}
syserr:
	auth_wipe(data, sizeof(data));
	log_errbuf(err, errlen, "checkpassword: %s", strerror(errno));
	return AUTH_TEMP;
}

enum auth_result
auth_check(const struct auth_config *cfg, const struct auth_request *req,
    struct auth_user *u, char *err, size_t errlen)
{
	char stored[PASSWD_LINE_MAX], dummy[PASSWD_LINE_MAX];
	size_t i;
	int found = 0, ok;

	memset(u, 0, sizeof(*u));
	stored[0] = dummy[0] = '\0';
	for (i = 0; i < cfg->ndb && !found; i++) {
		switch (cfg->db[i].type) {
		case AUTH_DB_FILE:
			found = passwd_find(cfg->db[i].path, req->name, u,
			    stored, sizeof(stored), dummy, sizeof(dummy),
			    err, errlen);
			break;
		case AUTH_DB_SYSTEM:
			found = system_find(req->name, cfg->first_uid, u,
			    stored, sizeof(stored), err, errlen);
			break;
		case AUTH_DB_CHECKPASSWORD:
			auth_wipe(dummy, sizeof(dummy));
			return checkpassword(cfg, cfg->db[i].path, req, u,
			    err, errlen);
		}
		if (found == -1) {
			auth_wipe(dummy, sizeof(dummy));
			return AUTH_TEMP;
		}
	}
	/* Unknown or locked users are checked against a real hash too. */
	if (!found || stored[0] == '!')
		(void)verify(dummy[0] != '\0' ? dummy : dummy_hash, req);
	ok = found && stored[0] != '!' && verify(stored, req);
	auth_wipe(stored, sizeof(stored));
	auth_wipe(dummy, sizeof(dummy));
	if (!found) {
		memset(u, 0, sizeof(*u));
		log_errbuf(err, errlen, "unknown user");
		return AUTH_FAIL;
	}
	if (!ok) {
		log_errbuf(err, errlen, stored[0] == '!' ?
		    "account locked or expired" : "wrong password");
		return AUTH_FAIL;
	}
	return AUTH_OK;
}

/*
 * The crypt(3) method of a hash, "$id$", for a message; "" when it has
 * none that can be shown (the rest of a hash is never shown).
 */
static void
hash_method(const char *hash, char *buf, size_t len)
{
	size_t n;

	buf[0] = '\0';
	if (hash[0] != '$')
		return;
	n = 1 + strspn(hash + 1, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
	if (n <= 8 && hash[n] == '$')
		(void)fmt_buf(buf, len, " (method %.*s)", (int)n + 1, hash);
}

enum auth_stored
auth_stored_check(const char *stored, char *why, size_t whylen)
{
	struct crypt_data *cd;
	const char *hash = stored, *out;
	char method[16];
	enum auth_stored r = AUTH_STORED_OK;
	size_t i, len;

	if (strncmp(stored, "{PLAIN}", 7) == 0) {
		if (stored[7] != '\0')
			return AUTH_STORED_OK;
		log_errbuf(why, whylen, "empty {PLAIN} password");
		return AUTH_STORED_BAD;
	}
	for (i = 0; crypt_schemes[i] != NULL; i++) {
		len = strlen(crypt_schemes[i]);
		if (strncmp(stored, crypt_schemes[i], len) == 0) {
			hash = stored + len;
			break;
		}
	}
	if (hash[0] == '!' || hash[0] == '*') {
		log_errbuf(why, whylen, "account locked (password starts with "
		    "%c)", hash[0]);
		return AUTH_STORED_LOCKED;
	}
	if (hash[0] == '{') {
		len = strspn(hash + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "abcdefghijklmnopqrstuvwxyz0123456789-_.");
		if (hash[len + 1] == '}' && len <= 32)
			log_errbuf(why, whylen, "unknown password scheme %.*s",
			    (int)len + 2, hash);
		else
			log_errbuf(why, whylen, "unknown password scheme");
		return AUTH_STORED_BAD;
	}
	if (hash[0] == '\0') {
		log_errbuf(why, whylen, "empty password field");
		return AUTH_STORED_BAD;
	}
	if ((cd = calloc(1, sizeof(*cd))) == NULL) {
		log_errbuf(why, whylen, "out of memory");
		return AUTH_STORED_BAD;
	}
	out = crypt_r("pop3d-check", hash, cd);
	hash_method(hash, method, sizeof(method));
	if (out == NULL || out[0] == '*') {
		log_errbuf(why, whylen, "a hash crypt(3) does not take%s",
		    method);
		r = AUTH_STORED_BAD;
	} else if (strlen(out) != strlen(hash)) {
		log_errbuf(why, whylen, "not a whole crypt(3) hash%s: no "
		    "password matches it ({PLAIN} for one in clear)", method);
		r = AUTH_STORED_BAD;
	}
	auth_wipe(cd, sizeof(*cd));
	free(cd);
	return r;
}

/*
 * Why the system account name is not let in, when the reason is one of
 * its account: uid 0, a uid below first_uid, a shadow entry that cannot
 * be read, an expired or locked account.  1 with why set, or 0.
 */
static int
system_why(const char *name, unsigned long first_uid, char *why,
    size_t whylen)
{
	struct passwd *pw;
	struct spwd *sp;

	if ((pw = getpwnam(name)) == NULL)
		return 0;
	if (pw->pw_uid == 0) {
		log_errbuf(why, whylen, "system account with uid 0, which "
		    "never logs in");
		return 1;
	}
	if ((unsigned long)pw->pw_uid < first_uid) {
		log_errbuf(why, whylen, "system account with uid %lu, below "
		    "--first-uid %lu", (unsigned long)pw->pw_uid, first_uid);
		return 1;
	}
	errno = 0;
	if ((sp = getspnam(name)) == NULL) {
		if (errno != EACCES && errno != EPERM)
			return 0;
		log_errbuf(why, whylen, "the shadow entry cannot be read: %s",
		    strerror(errno));
		return 1;
	}
	if (sp->sp_expire >= 0 && sp->sp_expire <= (long)(time(NULL) / 86400))
		log_errbuf(why, whylen, "account expired (chage -E)");
	else if (sp->sp_pwdp == NULL || sp->sp_pwdp[0] == '\0')
		log_errbuf(why, whylen, "account without a password");
	else if (sp->sp_pwdp[0] == '!' || sp->sp_pwdp[0] == '*')
		log_errbuf(why, whylen, "account locked (password starts with "
		    "%c)", sp->sp_pwdp[0]);
	else
		return 0;
	return 1;
}

enum auth_lookup_result
auth_lookup(const struct auth_config *cfg, const char *name,
    struct auth_user *u, size_t *db, char *why, size_t whylen)
{
	char stored[PASSWD_LINE_MAX], dummy[PASSWD_LINE_MAX], note[256];
	enum auth_lookup_result r = AUTH_LOOKUP_UNKNOWN;
	size_t i;
	int found = 0;

	memset(u, 0, sizeof(*u));
	stored[0] = dummy[0] = note[0] = '\0';
	log_errbuf(why, whylen, "unknown user");
	*db = cfg->ndb;
	for (i = 0; i < cfg->ndb && found == 0; i++) {
		*db = i;
		switch (cfg->db[i].type) {
		case AUTH_DB_FILE:
			found = passwd_find(cfg->db[i].path, name, u, stored,
			    sizeof(stored), dummy, sizeof(dummy), why, whylen);
			break;
		case AUTH_DB_SYSTEM:
			found = system_find(name, cfg->first_uid, u, stored,
			    sizeof(stored), why, whylen);
			/* Passed over: the reason, if none comes later. */
			if (found == 0 && note[0] == '\0')
				(void)system_why(name, cfg->first_uid, note,
				    sizeof(note));
			break;
		case AUTH_DB_CHECKPASSWORD:
			log_errbuf(why, whylen, "checkpassword %s is asked "
			    "only with the password", cfg->db[i].path);
			r = AUTH_LOOKUP_ASK;
			goto out;
		}
	}
	if (found == -1)
		r = AUTH_LOOKUP_TEMP;
	else if (found == 0) {
		*db = cfg->ndb;
		if (note[0] != '\0')
			log_errbuf(why, whylen, "unknown user: %s", note);
	} else if (u->system && system_why(name, cfg->first_uid, why,
	    whylen))
		r = AUTH_LOOKUP_REFUSED;
	else if (stored[0] == '!') {
		log_errbuf(why, whylen, "account locked (password starts "
		    "with !)");
		r = AUTH_LOOKUP_REFUSED;
	} else if (auth_stored_check(stored, why, whylen) != AUTH_STORED_OK)
		r = AUTH_LOOKUP_REFUSED;
	else {
		log_errbuf(why, whylen, "ok");
		r = AUTH_LOOKUP_FOUND;
	}
out:
	auth_wipe(stored, sizeof(stored));
	auth_wipe(dummy, sizeof(dummy));
	return r;
}

int
auth_sasl_plain(char *msg, size_t len, const char **authcid,
    const char **password)
{
	char *authzid = msg, *nul1, *nul2;

	if ((nul1 = memchr(msg, '\0', len)) == NULL ||
	    (nul2 = memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - msg)))
	    == NULL || memchr(nul2 + 1, '\0',
	    len - (size_t)(nul2 + 1 - msg)) != NULL)
		return -1;	/* exactly two NULs */
	*authcid = nul1 + 1;
	*password = nul2 + 1;
	if (**authcid == '\0' || **password == '\0' ||
	    strlen(authzid) > 255 || strlen(*authcid) > 255 ||
	    strlen(*password) > 255)
		return -1;
	/* Acting as another user is not allowed (RFC 4616 section 2). */
	if (*authzid != '\0' && strcmp(authzid, *authcid) != 0)
		return -1;
	return 0;
}

int
auth_checkpassword_reply(void)
{
	const char *home = getenv("HOME");
	char buf[PATH_MAX_POP3 + 64];
	int n;

	n = fmt_buf(buf, sizeof(buf), "%lu\n%lu\n%s\n",
	    (unsigned long)getuid(), (unsigned long)getgid(),
	    home != NULL ? home : "");
	if (n < 0 || (size_t)n >= sizeof(buf) ||
	    write(4, buf, (size_t)n) != n)
		return 111;
	return 0;
}

int
auth_become(const struct auth_user *u, char *err, size_t errlen)
{
	if (geteuid() != 0)
		return 0;	/* an ordinary user serves as itself */
	if (!u->have_ids) {
		log_errbuf(err, errlen, "user %s has no uid/gid", u->name);
		return -1;
	}
	if (u->uid == 0) {
		log_errbuf(err, errlen, "user %s has uid 0", u->name);
		return -1;
	}
	if ((u->system ? initgroups(u->name, u->gid) :
	    setgroups(1, &u->gid)) == -1 || setgid(u->gid) == -1 ||
	    setuid(u->uid) == -1) {
		log_errbuf(err, errlen, "cannot become %lu:%lu: %s",
		    (unsigned long)u->uid, (unsigned long)u->gid,
		    strerror(errno));
		return -1;
	}
	if (getuid() != u->uid || geteuid() != u->uid ||
	    getgid() != u->gid || getegid() != u->gid || setuid(0) != -1) {
		log_errbuf(err, errlen, "privilege drop to %lu:%lu did not hold",
		    (unsigned long)u->uid, (unsigned long)u->gid);
		return -1;
	}
	return 0;
}

int
auth_hash_password(const char *password, char *out, size_t outlen)
{
	struct crypt_data *cd;
	const char *hash;
	char *salt;
	int n = -1;

	if ((salt = crypt_gensalt_ra(NULL, 0, NULL, 0)) == NULL)
		return -1;
	if ((cd = calloc(1, sizeof(*cd))) != NULL) {
		hash = crypt_r(password, salt, cd);
		if (hash != NULL && hash[0] != '*')
			n = fmt_buf(out, outlen, "%s", hash);
		auth_wipe(cd, sizeof(*cd));
		free(cd);
	}
	free(salt);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}
