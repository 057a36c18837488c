/*
 * fuzz_passwd.c: the passwd-file reader (auth.h): auth_name_valid(),
 * auth_parse_line() and auth_passwd_file(), on arbitrary octets.
 *
 * Input: a user name line, a password line, then the passwd-file.
 * auth_name_valid() must agree with the rule of auth.h written out
 * plainly, and auth_parse_line() with a plain split of every line of the
 * file at ':' (each line copied into an exact heap block, so that ASan
 * sees a read past its NUL).  auth_passwd_file() is then asked for the
 * name and password on the file, and must give what a reference reader
 * says, following README.md: lines of up to PASSWD_LINE_MAX - 2 octets
 * are read (longer ones, like malformed ones, are skipped, and the line
 * after them is read as usual), the first entry of the name decides,
 * AUTH_OK fills in the entry's name, ids and home, and AUTH_FAIL leaves
 * the name set only when the user exists.  A line with a NUL in it may
 * be skipped or read as cut at the NUL, but it must not hide the next.
 *
 * crypt(3) costs what its parameters say, so lines whose hash would be
 * slow to check (yescrypt, bcrypt, rounds=, extended DES) are turned into
 * comments before the file is written, and a {PLAIN} entry goes first,
 * so that an unknown user costs a {PLAIN} check (not yescrypt's dummy).
 */
#include <sys/types.h>

#include <crypt.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../auth.h"
#include "../../pop3d.h"
#include "fuzz_common.h"

/* The longest line auth_passwd_file() reads, its LF not counted. */
#define LINE_READ_MAX	(PASSWD_LINE_MAX - 2)
/* Fields auth_parse_line() splits a line into. */
#define FIELDS		7
#define FIRST_ENTRY	"fuzz-first:{PLAIN}x:1:1::/nonexistent::\n"

/* How the reference reads a line with a NUL in it. */
enum nul_rule {
	NUL_SKIP,		/* as a malformed line */
	NUL_CUT			/* as if it ended at the NUL */
};

/* The verdict of the reference on one login. */
struct verdict {
	enum auth_result r;
	int		 found;
	char		 line[PASSWD_LINE_MAX];	/* the user's entry */
	struct auth_entry e;
};

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	cleanup(void);
static int	ref_name_valid(const char *);
static int	ref_parse_line(char *, struct auth_entry *);
static void	check_parse_line(const char *, size_t);
static int	cheap_password(const char *);
static void	sanitize(const char *, size_t, struct tbuf *);
static int	ref_password(const char *, const char *);
static void	ref_login(const char *, size_t, const char *, const char *,
		    enum nul_rule, struct verdict *);
static int	digits(const char *);
static const char *user_differs(const struct auth_user *,
		    const struct verdict *, const char *);
static void	check_login(const char *, size_t, const char *, const char *);
static size_t	line_length(const char *, const char *);

static char	file_path[4096];

static void
cleanup(void)
{
	if (file_path[0] != '\0')
		(void)unlink(file_path);
}

/*
 * Printable ASCII but "/:\\", or a character from U+00A0 up in UTF-8
 * written the shortest way (RFC 3629), no surrogate, at most U+10FFFF;
 * decoded here by counting the leading one bits of each first octet.
 */
static int
ref_name_valid(const char *name)
{
	const unsigned char *p = (const unsigned char *)name;
	size_t len = strlen(name), i, k, n;
	unsigned long cp;

	if (len < 1 || len > USER_NAME_MAX || name[0] == '.')
		return 0;
	for (i = 0; i < len; i += n) {
		if (p[i] < 0x80) {
			if (p[i] < 0x21 || p[i] > 0x7e ||
			    strchr("/:\\", name[i]) != NULL)
				return 0;
			n = 1;
			continue;
		}
		for (n = 0; n < 8 && (p[i] & (0x80 >> n)); n++)
			;
		if (n < 2 || n > 4 || i + n > len)
			return 0;
		cp = p[i] & (0xffu >> (n + 1));
		for (k = 1; k < n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if (cp < 0xa0 || (n == 3 && cp < 0x800) ||
		    (n == 4 && cp < 0x10000) || (n == 2 && cp < 0x80) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return 0;
	}
	return 1;
}

/*
 * name:password:uid:gid:gecos:home:shell, the shell field taking the
 * rest: 0, 1 for a comment or blank line, -1 when malformed.
 */
static int
ref_parse_line(char *line, struct auth_entry *e)
{
	char *field[FIELDS], *p;
	size_t n = 1;

	p = line + strspn(line, " \t");
	if (*p == '\0' || *p == '#')
		return 1;
	field[0] = line;
	for (p = line; n < FIELDS && (p = strchr(p, ':')) != NULL; p++) {
		*p = '\0';
		field[n++] = p + 1;
	}
	if (n < 2 || !ref_name_valid(field[0]) || field[1][0] == '\0')
		return -1;
	e->name = field[0];
	e->password = field[1];
	e->uid = n > 2 ? field[2] : "";
	e->gid = n > 3 ? field[3] : "";
	e->home = n > 5 ? field[5] : "";
	return 0;
}

static void
check_parse_line(const char *p, size_t len)
{
	struct auth_entry e, want;
	char *line, *ref;
	int r, w;

	/* Exact heap blocks, NUL-terminated after len octets. */
	if ((line = malloc(len + 1)) == NULL || (ref = malloc(len + 1)) == NULL)
		abort();
	memcpy(line, p, len);
	line[len] = '\0';
	memcpy(ref, line, len + 1);
	memset(&e, 0, sizeof(e));
	r = auth_parse_line(line, &e);
	w = ref_parse_line(ref, &want);
	FUZZ_CHECK(r == w, "auth_parse_line gave %d, the reference %d", r, w);
	if (r == 0) {
		FUZZ_CHECK(e.name == line + (want.name - ref) &&
		    e.password == line + (want.password - ref),
		    "auth_parse_line: name or password elsewhere");
		FUZZ_CHECK(strcmp(e.name, want.name) == 0 &&
		    strcmp(e.password, want.password) == 0 &&
		    strcmp(e.uid, want.uid) == 0 &&
		    strcmp(e.gid, want.gid) == 0 &&
		    strcmp(e.home, want.home) == 0,
		    "auth_parse_line: fields differ from the reference");
	}
	free(line);
	free(ref);
}

/* Whether checking a password against this one is quick. */
static int
cheap_password(const char *pw)
{
	static const char *const schemes[] = {
		"{CRYPT}", "{SHA512-CRYPT}", "{SHA256-CRYPT}", "{BLF-CRYPT}",
		"{MD5-CRYPT}", NULL
	};
	size_t i, n;

	for (i = 0; schemes[i] != NULL; i++) {
		n = strlen(schemes[i]);
		if (strncmp(pw, schemes[i], n) == 0) {
			pw += n;
			break;
		}
	}
	if (pw[0] == '$')
		return strncmp(pw, "$1$", 3) == 0 ||
		    ((strncmp(pw, "$5$", 3) == 0 ||
		    strncmp(pw, "$6$", 3) == 0) &&
		    strstr(pw, "rounds=") == NULL);
	return pw[0] != '_';
}

/*
 * The file to write: FIRST_ENTRY, then the input's lines, those with a
 * slow hash made comments.
 */
static void
sanitize(const char *in, size_t len, struct tbuf *out)
{
	struct auth_entry e;
	const char *lf;
	size_t pos = 0, n;
	char *line;

	tbuf_reset(out);
	tbuf_add(out, FIRST_ENTRY, strlen(FIRST_ENTRY));
	while (pos < len) {
		lf = memchr(in + pos, '\n', len - pos);
		n = lf != NULL ? (size_t)(lf - (in + pos)) : len - pos;
		if ((line = malloc(n + 1)) == NULL)
			abort();
		memcpy(line, in + pos, n);
		line[n] = '\0';
		if (ref_parse_line(line, &e) == 0 &&
		    !cheap_password(e.password))
			tbuf_add(out, "#", 1);
		else
			tbuf_add(out, in + pos, n);
		if (lf != NULL)
			tbuf_add(out, "\n", 1);
		free(line);
		pos += n + (lf != NULL);
	}
}

/* Whether password matches stored, as auth.h describes it.  1 or 0. */
static int
ref_password(const char *stored, const char *password)
{
	static const char *const schemes[] = {
		"{CRYPT}", "{SHA512-CRYPT}", "{SHA256-CRYPT}", "{BLF-CRYPT}",
		"{MD5-CRYPT}", NULL
	};
	struct crypt_data *cd;
	const char *out;
	size_t i, n;
	int ok;

	if (stored[0] == '!')
		return 0;	/* locked */
	if (strncmp(stored, "{PLAIN}", 7) == 0)
		return strcmp(stored + 7, password) == 0;
	for (i = 0; schemes[i] != NULL; i++) {
		n = strlen(schemes[i]);
		if (strncmp(stored, schemes[i], n) == 0) {
			stored += n;
			break;
		}
	}
	if (stored[0] == '{')
		return 0;
	if ((cd = calloc(1, sizeof(*cd))) == NULL)
		abort();
	out = crypt_r(password, stored, cd);
	ok = out != NULL && out[0] != '*' && strcmp(out, stored) == 0;
	free(cd);
	return ok;
}

/* What logging in as name with password on file should give. */
static void
ref_login(const char *file, size_t len, const char *name,
    const char *password, enum nul_rule rule, struct verdict *v)
{
	struct auth_entry e;
	const char *lf;
	size_t pos = 0, n;

	memset(v, 0, sizeof(*v));
	v->r = AUTH_FAIL;
	for (; pos < len; pos += n + (lf != NULL)) {
		lf = memchr(file + pos, '\n', len - pos);
		n = lf != NULL ? (size_t)(lf - (file + pos)) : len - pos;
		if (n > LINE_READ_MAX)
			continue;
		if (memchr(file + pos, '\0', n) != NULL && rule == NUL_SKIP)
			continue;
		memcpy(v->line, file + pos, n);
		v->line[n] = '\0';
		if (ref_parse_line(v->line, &e) != 0 ||
		    strcmp(e.name, name) != 0)
			continue;
		v->found = 1;
		v->e = e;
		v->r = ref_password(e.password, password) ? AUTH_OK : AUTH_FAIL;
		return;
	}
}

/* 1 to 9 decimal digits: an id that must be taken. */
static int
digits(const char *s)
{
	size_t n = strspn(s, "0123456789");

	return n >= 1 && n <= 9 && s[n] == '\0';
}

/* Whether u is what v says auth_passwd_file() gives: NULL, or why not. */
static const char *
user_differs(const struct auth_user *u, const struct verdict *v,
    const char *name)
{
	const struct auth_entry *e = &v->e;

	if (v->r != AUTH_OK) {
		if (strcmp(u->name, v->found ? name : "") != 0)
			return "AUTH_FAIL: the name is set only for a user "
			    "that exists";
		return NULL;
	}
	if (strcmp(u->name, name) != 0)
		return "AUTH_OK: another name";
	if (strcmp(u->home, e->home) != 0)
		return "AUTH_OK: another home";
	if (u->system)
		return "AUTH_OK: a passwd-file user marked as a system one";
	if (!u->have_ids)
		return digits(e->uid) && digits(e->gid) ?
		    "AUTH_OK: the ids were not taken" : NULL;
	if (strspn(e->uid, "0123456789") != strlen(e->uid) ||
	    strspn(e->gid, "0123456789") != strlen(e->gid) ||
	    strtoull(e->uid, NULL, 10) > UINT32_MAX ||
	    strtoull(e->gid, NULL, 10) > UINT32_MAX ||
	    strtoull(e->uid, NULL, 10) != u->uid ||
	    strtoull(e->gid, NULL, 10) != u->gid)
		return "AUTH_OK: ids that are not those of the entry";
	return NULL;
}

static void
check_login(const char *in, size_t len, const char *name,
    const char *password)
{
	struct tbuf file = { 0 };
	struct verdict skip, cut;
	const char *why_skip, *why_cut;
	struct auth_user u;
	enum auth_result r;
	char err[256];
	FILE *fp;

	sanitize(in, len, &file);
	if ((fp = fopen(file_path, "we")) == NULL ||
	    fwrite(file.data, 1, file.len, fp) != file.len || fclose(fp) != 0)
		fuzz_fail(__FILE__, __LINE__, "write", "%s: %s", file_path,
		    strerror(errno));
	err[0] = '\0';
	r = auth_passwd_file(file_path, name, password, &u, err, sizeof(err));
	ref_login(file.data, file.len, name, password, NUL_SKIP, &skip);
	ref_login(file.data, file.len, name, password, NUL_CUT, &cut);
	why_skip = r != skip.r ? "another result" :
	    user_differs(&u, &skip, name);
	why_cut = r != cut.r ? "another result" :
	    user_differs(&u, &cut, name);
	FUZZ_CHECK(why_skip == NULL || why_cut == NULL, "auth_passwd_file "
	    "gave %d (%s), the reference %d (NULs skipped: %s) or %d (NULs "
	    "cut: %s)", (int)r, err, (int)skip.r, why_skip, (int)cut.r,
	    why_cut);
	tbuf_free(&file);
}

/* The octets of the line at p, up to its LF or end. */
static size_t
line_length(const char *p, const char *end)
{
	const char *lf = memchr(p, '\n', (size_t)(end - p));

	return (size_t)((lf != NULL ? lf : end) - p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *tmp;
	char name[PASSWD_LINE_MAX], password[PASSWD_LINE_MAX];
	size_t n;

	if (file_path[0] == '\0') {
		tmp = getenv("TMPDIR");
		n = (size_t)snprintf(file_path, sizeof(file_path),
		    "%s/pop3d-fuzz-passwd.%ld", tmp != NULL && tmp[0] != '\0' ?
		    tmp : "/tmp", (long)getpid());
		FUZZ_CHECK(n < sizeof(file_path), "path too long");
		(void)atexit(cleanup);
	}
	/* The name and the password: the first two lines, as C strings. */
	n = line_length(p, end);
	(void)snprintf(name, sizeof(name), "%.*s",
	    (int)(n < sizeof(name) ? n : sizeof(name) - 1), p);
	p += n < (size_t)(end - p) ? n + 1 : n;
	n = line_length(p, end);
	(void)snprintf(password, sizeof(password), "%.*s",
	    (int)(n < sizeof(password) ? n : sizeof(password) - 1), p);
	p += n < (size_t)(end - p) ? n + 1 : n;

	FUZZ_CHECK(auth_name_valid(name) == ref_name_valid(name),
	    "auth_name_valid(\"%s\") gave %d", name, auth_name_valid(name));
	check_login(p, (size_t)(end - p), name, password);
	while (p < end) {
		n = line_length(p, end);
		check_parse_line(p, n);
		p += n + 1;
	}
	return 0;
}
