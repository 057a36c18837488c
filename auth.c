/*
 * auth.c: passwd-file users, password checks and the privilege drop.
 */
#include <sys/types.h>

#include <crypt.h>
#include <errno.h>
#include <grp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "log.h"

/* Dovecot scheme prefixes whose value is a crypt(3) string. */
static const char *const crypt_schemes[] = {
	"{CRYPT}", "{SHA512-CRYPT}", "{SHA256-CRYPT}", "{BLF-CRYPT}",
	"{MD5-CRYPT}", NULL
};

/* Checked against when the user is unknown, so that it costs the same. */
static const char dummy_hash[] =
    "$y$j9T$xhgj017WRjPJUIw1DOeqm0$/XRhwdFQSzPC2kjkSJtrKZuyVtAQxMyb88WJRYpWvH.";

static int	parse_id(const char *, unsigned long *);
static int	equal_ct(const char *, const char *);

void
auth_wipe(void *p, size_t len)
{
	explicit_bzero(p, len);
}

int
auth_name_valid(const char *name)
{
	size_t i;

	if (name[0] == '\0' || name[0] == '.')
		return 0;
	for (i = 0; name[i] != '\0'; i++) {
		if (i >= USER_NAME_MAX)
			return 0;
		if (name[i] < 0x21 || name[i] > 0x7e || name[i] == '/' ||
		    name[i] == ':' || name[i] == '\\')
			return 0;
	}
	return 1;
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

/* A uid or gid: decimal digits only, no overflow.  0 or -1. */
static int
parse_id(const char *s, unsigned long *v)
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

enum auth_result
auth_passwd_file(const char *file, const char *name, const char *password,
    struct auth_user *u, char *err, size_t errlen)
{
	char line[PASSWD_LINE_MAX], dummy[PASSWD_LINE_MAX];
	struct auth_entry e;
	unsigned long uid, gid;
	int have_found = 0, toolong = 0, r;
	size_t len;
	FILE *fp;

	if ((fp = fopen(file, "re")) == NULL) {
		log_errbuf(err, errlen, "%s: %s", file, strerror(errno));
		return AUTH_TEMP;
	}
	/* Read the whole file whatever the name, so as to take the same time. */
	dummy[0] = '\0';
	while (fgets(line, sizeof(line), fp) != NULL) {
		len = strlen(line);
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		else if (!feof(fp)) {
			toolong = 1;	/* skip to the end of this line */
			continue;
		}
		if (toolong) {
			toolong = 0;
			continue;
		}
		if (auth_parse_line(line, &e) != 0)
			continue;
		/* Prefer a crypt hash: it is what known users cost. */
		if (!have_found && (dummy[0] == '\0' ||
		    (strncmp(dummy, "{PLAIN}", 7) == 0 &&
		    strncmp(e.password, "{PLAIN}", 7) != 0)))
			(void)snprintf(dummy, sizeof(dummy), "%s", e.password);
		if (!have_found && strcmp(e.name, name) == 0) {
			have_found = 1;
			(void)snprintf(u->name, sizeof(u->name), "%s", e.name);
			u->have_ids = parse_id(e.uid, &uid) == 0 &&
			    parse_id(e.gid, &gid) == 0;
			u->uid = u->have_ids ? (uid_t)uid : 0;
			u->gid = u->have_ids ? (gid_t)gid : 0;
			r = snprintf(u->home, sizeof(u->home), "%s", e.home);
			if (r < 0 || (size_t)r >= sizeof(u->home))
				u->home[0] = '\0';
			(void)snprintf(dummy, sizeof(dummy), "%s", e.password);
		}
	}
	r = ferror(fp);
	fclose(fp);
	auth_wipe(line, sizeof(line));
	if (r) {
		auth_wipe(dummy, sizeof(dummy));
		log_errbuf(err, errlen, "%s: read error", file);
		return AUTH_TEMP;
	}
	/* An unknown user is checked against some real hash all the same. */
	r = auth_check_password(dummy[0] != '\0' ? dummy : dummy_hash,
	    password);
	auth_wipe(dummy, sizeof(dummy));
	if (!have_found) {
		log_errbuf(err, errlen, "unknown user");
		return AUTH_FAIL;
	}
	if (!r) {
		log_errbuf(err, errlen, "wrong password");
		return AUTH_FAIL;
	}
	return AUTH_OK;
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
	if (setgroups(1, &u->gid) == -1 || setgid(u->gid) == -1 ||
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
			n = snprintf(out, outlen, "%s", hash);
		auth_wipe(cd, sizeof(*cd));
		free(cd);
	}
	free(salt);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}
