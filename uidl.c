/*
 * uidl.c: the UIDLs of another POP3 server, read from its files in a
 * Maildir (see uidl.h).
 *
 * dovecot-uidlist, as Dovecot's maildir-uidlist.c reads and writes it:
 *   version 1: a header "1 <uidvalidity> <next uid>", then lines
 *     "<uid> <file name>";
 *   version 3 (Dovecot 1.1 and later): a header "3" followed by fields
 *     "<key><value>" (V uidvalidity, N next uid, G mailbox GUID; others
 *     are ignored here), then lines "<uid> [<key><value> ...] :<file
 *     name>", where a key is one of 'A'..'Z' (S size, W virtual size,
 *     P POP3 UIDL, O POP3 order, G GUID); Dovecot drops fields with
 *     another first octet, and only P matters here.
 *   The uids rise strictly from line to line (a version 1 uid also stays
 *   below the next uid); the file name has no '/' and, as Dovecot writes
 *   it, no ":2,<flags>" (it may have ",S=" and ",W=").  Dovecot treats a
 *   line that breaks these rules as a broken file: it deletes the file
 *   and numbers the messages anew, so the ids in a damaged file are not
 *   the ones its clients would see either.
 *   The POP3 UIDL is the P field when the line has one (an empty P
 *   stands for the file name up to ':'), else pop3_uidl_format, whose
 *   default "%08Xu%08Xv" is the uid and the uidvalidity, each as at
 *   least 8 hex digits; Dovecot's X modifier prints them in lower case.
 *
 * courierpop3dsizelist, as Courier's pop3d (imap/pop3dserver.c) reads
 * and writes it:
 *   a header "/<version> <next uid> <uidvalidity>", version 2 or 3, then
 *   lines "<file name> <size> <uid>:<uidvalidity>" (version 2) or
 *   "<file name> <size> <uid>:<uidvalidity>:<utf8 flag>" (version 3),
 *   split at their last two spaces; the file name is the one in cur/,
 *   ":2,<flags>" included.  The UIDL is "UID<uid>-<uidvalidity>", or
 *   "UID<uid>" when the uidvalidity is 0, or for uid 0 the name up to
 *   ':' with octets outside 0x21..0x7E, '\'', '"' and '+' written as
 *   "+XX" (ids of that kind that would need it are skipped here).
 *
 * A message is found by the unique part of its name, up to the first
 * ',' or ':', whatever flags or size fields it has gained since.
 *
 * The file is read once into one buffer.  As each line is parsed, the
 * unique part of its name and its id (when the id is in the text) are
 * moved to the front of that buffer, which then shrinks to them and
 * grows by the ids made here; an open-addressing hash table of offsets
 * into it finds a name in O(1).  Nothing is allocated per message.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fmt.h"
#include "log.h"
#include "uidl.h"

#define DOVECOT_FILE	"dovecot-uidlist"
#define COURIER_FILE	"courierpop3dsizelist"

/*
 * The largest file read, in octets: a line is about 60 octets, so this
 * is room for some four million messages, far more than one Maildir
 * holds.  The text kept and the ids made stay below 4 GiB (a line of 5
 * octets makes an id of 17 at most), so 32-bit offsets address them.
 */
#define UIDL_FILE_MAX	(256UL * 1024 * 1024)
/*
 * The longest line, newline excluded: a file name is at most NAME_MAX
 * (255) octets, and Dovecot's fields (a 32-digit GUID, sizes, a P id)
 * add less than a hundred more.  A longer line is damage.
 */
#define UIDL_LINE_MAX	4096
/* The unique part of a file name: a name is at most NAME_MAX octets. */
#define UIDL_KEY_MAX	255
/* Dovecot's default id: two 32-bit numbers as 8 hex digits each. */
#define DOVECOT_ID_LEN	16
/* Courier's id: "UID" and two 64-bit numbers joined by '-'. */
#define COURIER_ID_LEN	(3 + 20 + 1 + 20)
/* Hash slots: at least this many, and at least twice the lines, so a
 * probe meets a free slot soon. */
#define UIDL_SLOTS_MIN	16
/*
 * The slots one lookup looks at: a name is entered within this many of
 * the slot its hash picks, or the file is refused.  A real file comes
 * nowhere near it (the table is at most half full); a file made for
 * its names to collide cannot make a load quadratic.
 */
#define UIDL_PROBE_MAX	1024
/* The path of the file, and the first reason a line was skipped. */
#define UIDL_PATH_MAX	4096
#define UIDL_WHY_MAX	512

/* FNV-1a, 32 bits. */
#define FNV_OFFSET	2166136261U
#define FNV_PRIME	16777619U

/* A hash slot: offsets into the map's text. */
struct uidl_ent {
	uint32_t	 key;		/* the unique part of the name */
	uint32_t	 id;		/* NUL-terminated; while loading, the
					   uid of an id still to be made */
	uint8_t		 keylen;	/* 0: a free slot */
	uint8_t		 idlen;		/* 0: the id is still to be made */
};

struct uidl_map {
	char		*text;		/* names and ids, then ids made */
	struct uidl_ent	*slot;
	size_t		 mask;		/* slots - 1, a power of 2 */
	size_t		 n;
	size_t		 skipped;
	char		 path[UIDL_PATH_MAX];
	char		 why[UIDL_WHY_MAX];
};

/* The state of one parse. */
struct uidl_parse {
	struct uidl_map	*m;
	char		*w;		/* where the next octets kept go */
	size_t		 lineno;
	int		 version;
	uint64_t	 uidvalidity;
	uint64_t	 nextuid;
	uint64_t	 prevuid;
	char		*err;
	size_t		 errlen;
};

static int	 read_file(const char *, char **, size_t *, char *, size_t);
static int	 load_file(struct uidl_map **, const char *, const char *,
		    enum uidl_source, char *, size_t);
static int	 parse(struct uidl_parse *, size_t, enum uidl_source);
static int	 make_ids(struct uidl_parse *);
static int	 bad(struct uidl_parse *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static void	 skip(struct uidl_parse *, const char *);
static int	 parse_num(char **, const char *, uint64_t, uint64_t *);
static int	 parse_field(char *, const char *, uint64_t, uint64_t *);
static size_t	 name_base(const char *, size_t);
static size_t	 name_colon(const char *, size_t);
static int	 id_valid(const char *, size_t);
static int	 add(struct uidl_parse *, const char *, size_t, const char *,
		    size_t, uint32_t);
static uint32_t	 keep(struct uidl_parse *, const char *, size_t, int);
static int	 dovecot_header(struct uidl_parse *, char *, size_t);
static int	 dovecot_line(struct uidl_parse *, char *, size_t);
static int	 courier_header(struct uidl_parse *, char *, size_t);
static int	 courier_line(struct uidl_parse *, char *, size_t);
static char	*last_space(char *, const char *);
static uint32_t	 key_hash(const char *, size_t);
static struct uidl_ent *slot_for(const struct uidl_map *, const char *,
		    size_t);

static const char *const source_names[] = {
	[UIDL_OWN] = "own",
	[UIDL_DOVECOT] = "dovecot",
	[UIDL_COURIER] = "courier",
	[UIDL_QMAIL] = "qmail",
	[UIDL_AUTO] = "auto"
};

int
uidl_source_parse(const char *s, enum uidl_source *src)
{
	size_t i;

	for (i = 0; i < sizeof(source_names) / sizeof(source_names[0]); i++)
		if (strcmp(s, source_names[i]) == 0) {
			*src = (enum uidl_source)i;
			return 0;
		}
	return -1;
}

const char *
uidl_source_name(enum uidl_source src)
{
	if ((size_t)src >= sizeof(source_names) / sizeof(source_names[0]))
		return "?";
	return source_names[src];
}

int
uidl_map_load(struct uidl_map **mp, const char *dir, enum uidl_source src,
    char *err, size_t errlen)
{
	int r;

	*mp = NULL;
	switch (src) {
	case UIDL_DOVECOT:
		return load_file(mp, dir, DOVECOT_FILE, src, err, errlen);
	case UIDL_COURIER:
		return load_file(mp, dir, COURIER_FILE, src, err, errlen);
	case UIDL_AUTO:
		r = load_file(mp, dir, DOVECOT_FILE, UIDL_DOVECOT, err,
		    errlen);
		if (r == -1 || *mp != NULL)
			return r;
		return load_file(mp, dir, COURIER_FILE, UIDL_COURIER, err,
		    errlen);
	case UIDL_OWN:
	case UIDL_QMAIL:
		return 0;
	}
	log_errbuf(err, errlen, "unknown UIDL source %d", (int)src);
	return -1;
}

const char *
uidl_map_find(const struct uidl_map *m, const char *base, size_t len,
    size_t *idlen)
{
	const struct uidl_ent *e;

	if (m == NULL || len == 0 || len > UIDL_KEY_MAX)
		return NULL;
	if ((e = slot_for(m, base, len)) == NULL || e->keylen == 0)
		return NULL;
	*idlen = e->idlen;
	return m->text + e->id;
}

size_t
uidl_map_count(const struct uidl_map *m)
{
	return m == NULL ? 0 : m->n;
}

size_t
uidl_map_skipped(const struct uidl_map *m, const char **why)
{
	if (why != NULL)
		*why = m == NULL ? "" : m->why;
	return m == NULL ? 0 : m->skipped;
}

const char *
uidl_map_path(const struct uidl_map *m)
{
	return m == NULL ? "" : m->path;
}

void
uidl_map_free(struct uidl_map *m)
{
	if (m == NULL)
		return;
	free(m->text);
	free(m->slot);
	free(m);
}

/*
 * Read the file at path whole into a new buffer (NUL-terminated after
 * *lenp octets).  1; 0 when there is no such file; -1 with err set.
 */
static int
read_file(const char *path, char **bufp, size_t *lenp, char *err,
    size_t errlen)
{
	struct stat sb;
	size_t len = 0, size;
	ssize_t n;
	char *buf = NULL;
	int fd, ret = -1;

	/* O_NONBLOCK: a FIFO put there must not hang the login. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd == -1) {
		if (errno == ENOENT)
			return 0;
		log_errbuf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) == -1) {
		log_errbuf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		log_errbuf(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if ((uint64_t)sb.st_size > UIDL_FILE_MAX) {
		log_errbuf(err, errlen, "%s: larger than %lu octets", path,
		    UIDL_FILE_MAX);
		goto out;
	}
	size = (size_t)sb.st_size;
	if ((buf = malloc(size + 1)) == NULL) {
		log_errbuf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	/* A file that shrinks meanwhile ends early: its last line is
	 * partial, and left out like any line without its newline. */
	while (len < size) {
		n = read(fd, buf + len, size - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			log_errbuf(err, errlen, "%s: %s", path,
			    strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*bufp = buf;
	*lenp = len;
	buf = NULL;
	ret = 1;
out:
	free(buf);
	(void)close(fd);
	return ret;
}

/* Load dir/name as a file of src (dovecot or courier). */
static int
load_file(struct uidl_map **mp, const char *dir, const char *name,
    enum uidl_source src, char *err, size_t errlen)
{
	struct uidl_parse ps;
	struct uidl_map *m;
	size_t len, lines, slots;
	char *p;
	int r;

	if ((m = calloc(1, sizeof(*m))) == NULL) {
		log_errbuf(err, errlen, "out of memory");
		return -1;
	}
	r = fmt_buf(m->path, sizeof(m->path), "%s/%s", dir, name);
	if (r < 0 || (size_t)r >= sizeof(m->path)) {
		log_errbuf(err, errlen, "%s/%s: path too long", dir, name);
		goto fail;
	}
	if ((r = read_file(m->path, &m->text, &len, err, errlen)) != 1) {
		uidl_map_free(m);
		return r;
	}
	/* Every line but the header may be an entry. */
	lines = 0;
	for (p = m->text; (p = memchr(p, '\n', len -
	    (size_t)(p - m->text))) != NULL; p++)
		lines++;
	for (slots = UIDL_SLOTS_MIN; slots < 2 * lines; slots *= 2)
		;
	if ((m->slot = calloc(slots, sizeof(m->slot[0]))) == NULL) {
		log_errbuf(err, errlen, "%s: out of memory", m->path);
		goto fail;
	}
	m->mask = slots - 1;

	memset(&ps, 0, sizeof(ps));
	ps.m = m;
	ps.w = m->text;
	ps.err = err;
	ps.errlen = errlen;
	if (parse(&ps, len, src) == -1 || make_ids(&ps) == -1)
		goto fail;
	*mp = m;
	return 0;
fail:
	uidl_map_free(m);
	return -1;
}

/* Parse the len octets of the map's text, line by line. */
static int
parse(struct uidl_parse *ps, size_t len, enum uidl_source src)
{
	char *p = ps->m->text, *end = p + len, *nl;
	size_t n;
	int r;

	while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		ps->lineno++;
		n = (size_t)(nl - p);
		if (n > UIDL_LINE_MAX)
			return bad(ps, "longer than %d octets", UIDL_LINE_MAX);
		if (memchr(p, '\0', n) != NULL)
			return bad(ps, "NUL octet");
		*nl = '\0';
		if (ps->lineno == 1)
			r = src == UIDL_DOVECOT ? dovecot_header(ps, p, n) :
			    courier_header(ps, p, n);
		else
			r = src == UIDL_DOVECOT ? dovecot_line(ps, p, n) :
			    courier_line(ps, p, n);
		if (r == -1)
			return -1;
		p = nl + 1;
	}
	if (ps->lineno == 0) {
		ps->lineno = 1;
		return bad(ps, "no header line");
	}
	return 0;
}

/*
 * Shrink the text to what was kept, and add the ids that Dovecot makes
 * from the uid and the uidvalidity.
 */
static int
make_ids(struct uidl_parse *ps)
{
	struct uidl_map *m = ps->m;
	struct uidl_ent *e;
	size_t i, pending = 0, at;
	char *p;

	for (i = 0; i <= m->mask; i++)
		if (m->slot[i].keylen != 0 && m->slot[i].idlen == 0)
			pending++;
	at = (size_t)(ps->w - m->text);
	if ((p = realloc(m->text, at + pending * (DOVECOT_ID_LEN + 1) + 1)) ==
	    NULL) {
		log_errbuf(ps->err, ps->errlen, "%s: out of memory", m->path);
		return -1;
	}
	m->text = p;
	for (i = 0; i <= m->mask; i++) {
		e = &m->slot[i];
		if (e->keylen == 0 || e->idlen != 0)
			continue;
		/* pop3_uidl_format %08Xu%08Xv */
		(void)fmt_buf(m->text + at, DOVECOT_ID_LEN + 1,
		    "%08" PRIx32 "%08" PRIx32, e->id,
		    (uint32_t)ps->uidvalidity);
		e->id = (uint32_t)at;
		e->idlen = DOVECOT_ID_LEN;
		at += DOVECOT_ID_LEN + 1;
	}
	return 0;
}

/* A damaged line: "PATH line N: why" into err.  Returns -1. */
static int
bad(struct uidl_parse *ps, const char *fmt, ...)
{
	char why[UIDL_WHY_MAX];
	va_list ap;

	va_start(ap, fmt);
	(void)fmt_vbuf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_errbuf(ps->err, ps->errlen, "%s line %zu: %s", ps->m->path,
	    ps->lineno, why);
	return -1;
}

/* A line left out; the first reason is kept for the log. */
static void
skip(struct uidl_parse *ps, const char *why)
{
	if (ps->m->skipped++ == 0)
		log_errbuf(ps->m->why, sizeof(ps->m->why), "%s line %zu: %s",
		    ps->m->path, ps->lineno, why);
}

/*
 * Decimal digits at *pp, before end, into *v: at least one, no sign,
 * not above max.  Advances *pp past them.  0, or -1.
 */
static int
parse_num(char **pp, const char *end, uint64_t max, uint64_t *v)
{
	char *p = *pp;
	uint64_t d;

	*v = 0;
	if (p >= end || *p < '0' || *p > '9')
		return -1;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		d = (uint64_t)(*p - '0');
		if (*v > (max - d) / 10)
			return -1;
		*v = *v * 10 + d;
	}
	*pp = p;
	return 0;
}

/* A field that is a number and nothing else. */
static int
parse_field(char *p, const char *end, uint64_t max, uint64_t *v)
{
	return parse_num(&p, end, max, v) == -1 || p != end ? -1 : 0;
}

/* The unique part of a name: up to the first ',' or ':'. */
static size_t
name_base(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len && s[i] != ',' && s[i] != ':'; i++)
		;
	return i;
}

/* A name without its info: up to the first ':'. */
static size_t
name_colon(const char *s, size_t len)
{
	const char *c = memchr(s, ':', len);

	return c == NULL ? len : (size_t)(c - s);
}

/* 1 when s is a valid UIDL (RFC 1939 section 7), else 0. */
static int
id_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > UIDL_ID_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return 0;
	return 1;
}

/*
 * Enter the id of the message named name (namelen octets): idlen
 * octets at id, or for id NULL the one Dovecot makes from uid.  0, or
 * -1 when the name cannot be a Maildir name.
 */
static int
add(struct uidl_parse *ps, const char *name, size_t namelen, const char *id,
    size_t idlen, uint32_t uid)
{
	struct uidl_ent *e;
	uint32_t key, idoff = uid;
	size_t keylen;

	if (namelen == 0)
		return bad(ps, "no file name");
	if (memchr(name, '/', namelen) != NULL)
		return bad(ps, "'/' in the file name");
	if (namelen > UIDL_KEY_MAX)
		return bad(ps, "file name longer than %d octets", UIDL_KEY_MAX);
	keylen = name_base(name, namelen);
	if (keylen == 0) {
		skip(ps, "no unique part before ',' or ':' in the file name");
		return 0;
	}
	if (id != NULL && !id_valid(id, idlen)) {
		skip(ps, idlen > UIDL_ID_MAX ? "id longer than 70 octets" :
		    "id not 1 to 70 octets in 0x21..0x7E");
		return 0;
	}
	/*
	 * Move what is kept to the front of the text in the order of the
	 * line, so that nothing is overwritten before it has moved: the
	 * kept octets of a line are never more than the line and its
	 * newline.
	 */
	if (id == name)			/* the key is the id's start */
		key = idoff = keep(ps, id, idlen, 1);
	else if (id != NULL && id < name) {
		idoff = keep(ps, id, idlen, 1);
		key = keep(ps, name, keylen, 0);
	} else {
		key = keep(ps, name, keylen, 0);
		if (id != NULL)
			idoff = keep(ps, id, idlen, 1);
	}
	/* A name listed again: the later line wins. */
	if ((e = slot_for(ps->m, ps->m->text + key, keylen)) == NULL)
		return bad(ps, "more than %d names that hash alike",
		    UIDL_PROBE_MAX);
	if (e->keylen == 0)
		ps->m->n++;
	e->key = key;
	e->keylen = (uint8_t)keylen;
	e->id = idoff;
	e->idlen = id != NULL ? (uint8_t)idlen : 0;
	return 0;
}

/* Move len octets to the front of the text, NUL-ended if nul is set. */
static uint32_t
keep(struct uidl_parse *ps, const char *s, size_t len, int nul)
{
	uint32_t at = (uint32_t)(ps->w - ps->m->text);

	memmove(ps->w, s, len);
	ps->w += len;
	if (nul)
		*ps->w++ = '\0';
	return at;
}

static int
dovecot_header(struct uidl_parse *ps, char *line, size_t len)
{
	char *p = line + 2, *end = line + len, *f;
	int key;

	if (len < 2 || line[0] < '0' || line[0] > '9' || line[1] != ' ')
		return bad(ps, "not a dovecot-uidlist header");
	ps->version = line[0] - '0';
	if (ps->version == 1) {
		/* "1 <uidvalidity> <next uid>" */
		if (parse_num(&p, end, UINT32_MAX, &ps->uidvalidity) == -1 ||
		    p == end || *p++ != ' ' ||
		    parse_field(p, end, UINT32_MAX, &ps->nextuid) == -1)
			return bad(ps, "malformed version 1 header");
	} else if (ps->version == 3) {
		/* "3 V<uidvalidity> N<next uid> G<guid> ..." */
		while (p < end) {
			key = *p++;
			for (f = p; p < end && *p != ' '; p++)
				;
			if (key == 'V' && parse_field(f, p, UINT32_MAX,
			    &ps->uidvalidity) == -1)
				return bad(ps, "malformed V field");
			if (key == 'N' && parse_field(f, p, UINT32_MAX,
			    &ps->nextuid) == -1)
				return bad(ps, "malformed N field");
			while (p < end && *p == ' ')
				p++;
		}
	} else
		return bad(ps, "unsupported dovecot-uidlist version %d",
		    ps->version);
	if (ps->uidvalidity == 0 || ps->nextuid == 0)
		return bad(ps, "no uidvalidity or next uid");
	return 0;
}

/*
 * Version 1: "<uid> <file name>"; version 3: "<uid> [<key><value> ...]
 * :<file name>".
 */
static int
dovecot_line(struct uidl_parse *ps, char *line, size_t len)
{
	char *p = line, *end = line + len, *f, *pval = NULL, *name;
	size_t plen = 0, namelen;
	uint64_t uid;

	if (parse_num(&p, end, UINT32_MAX - 1, &uid) == -1 || uid == 0 ||
	    p == end || *p != ' ')
		return bad(ps, "malformed uid");
	if (uid <= ps->prevuid)
		return bad(ps, "uid %llu not above %llu",
		    (unsigned long long)uid, (unsigned long long)ps->prevuid);
	if (ps->version == 1 && uid >= ps->nextuid)
		return bad(ps, "uid %llu not below the next uid %llu",
		    (unsigned long long)uid, (unsigned long long)ps->nextuid);
	ps->prevuid = uid;
	while (p < end && *p == ' ')
		p++;
	if (ps->version == 3) {
		/* Fields up to the one that starts with ':'. */
		while (p < end && *p != ':') {
			for (f = p; p < end && *p != ' '; p++)
				;
			if (*f == 'P' && pval == NULL) {
				pval = f + 1;
				plen = (size_t)(p - pval);
			}
			while (p < end && *p == ' ')
				p++;
		}
		if (p == end)
			return bad(ps, "no ':' before the file name");
		p++;
	}
	name = p;
	namelen = (size_t)(end - p);
	if (pval != NULL && plen > 0)
		return add(ps, name, namelen, pval, plen, 0);
	if (pval != NULL)	/* an empty P: the name up to ':' */
		return add(ps, name, namelen, name,
		    name_colon(name, namelen), 0);
	return add(ps, name, namelen, NULL, 0, (uint32_t)uid);
}

/* "/<version> <next uid> [<uidvalidity>]", version 2 or 3. */
static int
courier_header(struct uidl_parse *ps, char *line, size_t len)
{
	char *p = line + 1, *end = line + len;
	uint64_t version;

	if (len < 2 || line[0] != '/' ||
	    parse_num(&p, end, UINT32_MAX, &version) == -1 ||
	    p == end || *p++ != ' ' ||
	    parse_num(&p, end, UINT64_MAX, &ps->nextuid) == -1)
		return bad(ps, "not a courierpop3dsizelist header");
	if (p < end && (*p++ != ' ' ||
	    parse_field(p, end, UINT64_MAX, &ps->uidvalidity) == -1))
		return bad(ps, "malformed uidvalidity");
	if (version != 2 && version != 3)
		return bad(ps, "unsupported courierpop3dsizelist version %llu",
		    (unsigned long long)version);
	ps->version = (int)version;
	return 0;
}

/* The last space in [s, end), or NULL. */
static char *
last_space(char *s, const char *end)
{
	char *p, *found = NULL;

	for (p = s; p < end; p++)
		if (*p == ' ')
			found = p;
	return found;
}

/* "<file name> <size> <uid>:<uidvalidity>[:<utf8 flag>]" */
static int
courier_line(struct uidl_parse *ps, char *line, size_t len)
{
	char *end = line + len, *sp2, *sp3, *p, id[COURIER_ID_LEN + 1];
	uint64_t size, uid, uidv, flag;
	size_t i, n;
	int r;

	if ((sp3 = last_space(line, end)) == NULL ||
	    (sp2 = last_space(line, sp3)) == NULL)
		return bad(ps, "fewer than three fields");
	if (parse_field(sp2 + 1, sp3, UINT64_MAX, &size) == -1)
		return bad(ps, "malformed size");
	p = sp3 + 1;
	if (parse_num(&p, end, UINT64_MAX, &uid) == -1 || p == end ||
	    *p++ != ':' || parse_num(&p, end, UINT64_MAX, &uidv) == -1 ||
	    (p < end && (*p++ != ':' ||
	    parse_field(p, end, UINT32_MAX, &flag) == -1)))
		return bad(ps, "malformed uid:uidvalidity");
	n = (size_t)(sp2 - line);
	if (uid == 0) {
		/* Courier's version 0 id: the name up to ':', encoded. */
		i = name_colon(line, n);
		if (strcspn(line, "'\"+") < i) {
			skip(ps, "uid 0 and a name Courier would encode");
			return 0;
		}
		return add(ps, line, n, line, i, 0);
	}
	/*
	 * The id is written over " <size> <uid>:<uidv>", which is at least
	 * as long as "UID<uid>-<uidv>" and its NUL: the size has a digit,
	 * and the file's digits are at least as many as printed here.
	 */
	if (uidv != 0)
		r = fmt_buf(id, sizeof(id), "UID%llu-%llu",
		    (unsigned long long)uid, (unsigned long long)uidv);
	else
		r = fmt_buf(id, sizeof(id), "UID%llu",
		    (unsigned long long)uid);
	if (r < 0 || (size_t)r >= sizeof(id) || (size_t)r > (size_t)(end - sp2))
		return bad(ps, "no room for the id");
	memcpy(sp2, id, (size_t)r + 1);
	return add(ps, line, n, sp2, (size_t)r, 0);
}

static uint32_t
key_hash(const char *s, size_t len)
{
	uint32_t h = FNV_OFFSET;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= FNV_PRIME;
	}
	return h;
}

/*
 * The slot of the name key (len octets): its own, or the free one where
 * it goes; NULL when neither is within UIDL_PROBE_MAX slots.
 */
static struct uidl_ent *
slot_for(const struct uidl_map *m, const char *key, size_t len)
{
	struct uidl_ent *e;
	size_t i, n;

	i = key_hash(key, len) & m->mask;
	for (n = 0; n < UIDL_PROBE_MAX; n++, i = (i + 1) & m->mask) {
		e = &m->slot[i];
		if (e->keylen == 0 || (e->keylen == len &&
		    memcmp(m->text + e->key, key, len) == 0))
			return e;
	}
	return NULL;
}
