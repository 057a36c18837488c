/*
 * fuzz_cache.c: a Maildir's size cache (pop3d.sizes, see the comment
 * above CACHE_NAME in store.c) taken as the listing of cur/, against a
 * reference reader of the cache.
 *
 * While the stamp in the cache's header is the mtime cur/ has,
 * store_open() numbers the messages from the cache's lines and does not
 * read cur/ at all; a line that is malformed, that could not be the name
 * of a file in cur/, or that is not after the line before in message
 * order makes it read cur/ after all.  The fixture is a Maildir made once
 * per process, with a few messages in cur/ whose mtime is then set to a
 * fixed time long past: the listing is trusted only when cur/ had not
 * changed for CACHE_TRUST seconds, and the fixed stamp lets seeds carry
 * a whole header that is right.  Nothing changes cur/ afterwards: new/
 * stays empty, nothing expires (no options) and store_commit(), which
 * renames and removes, is never called; the harness checks after each
 * input that cur/ still has its mtime.
 *
 * Input: one octet of mode, then the cache.  With mode 'R' the rest is
 * the whole file, header included, so that its parser is fuzzed too.
 * With any other, the rest is the cache's lines, and a version 4 header
 * goes in front with the fixture's stamp and the lines' right checksum:
 * the checksum never rejects them, and only the lines decide.  Either
 * way the file replaces the one before, and the one pop3d writes itself
 * after it has read cur/.
 *
 * The reference says the cache is the listing when its header is
 * "pop3d-sizes 4 SUM STAMP" (lower-case hex) with the fixture's stamp and
 * the right checksum, and every line after it is "name TAB inode TAB size
 * LF": the name of 1 to NAME_MAX octets, none of them '/' or NUL, the
 * first not '.'; the numbers decimal (leading zeros too) and within 64
 * bits; no line, LF included, longer than the buffer store.c reads with
 * (CACHE_BUF); the file ends with an LF; each name after the one before in
 * message order (the number the name starts with, UINT32_MAX when larger,
 * then the name up to its info, ':', octet by octet).  Then the store must
 * list exactly those lines: their sizes, the UIDL maildir_add() derives
 * from the name (its unique part, up to ',' or ':', when that is 1 to 70
 * octets in 0x21..0x7E, else the MD5 of that part in hex), the seen flag
 * (an 'S' after ":2,"), and a line that names a message of the fixture
 * must open that very file.  Else the store must list the fixture's
 * messages as a read of cur/ does: all of them, in order, with their
 * UIDLs, seen flags and real sizes; a read of cur/ also takes the size of
 * a message from a well-formed cache line with the same name up to ':' and
 * the same inode, by design, so such a line's size is allowed too.  ASan,
 * UBSan and LeakSanitizer watch the rest.
 *
 * Privileges: none change.  The fixture belongs to the harness's
 * effective uid, the mail user store.c serves, root or not.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../md5.h"
#include "../../store.h"
#include "fuzz_common.h"

/* store.c's, restated: the cache's name, the magic that starts its
 * header and the header's length, the checksum's start, the octets read
 * at a time (a longer line is damage), and the longest UIDL. */
#define CACHE_NAME	"pop3d.sizes"
#define CACHE_MAGIC	"pop3d-sizes 4 "
#define MAGIC_LEN	(sizeof(CACHE_MAGIC) - 1)
#define CACHE_HEAD	(MAGIC_LEN + 16 + 1 + 16 + 8 + 1)
#define CACHE_SUM_INIT	0xcbf29ce484222325ULL
#define CACHE_BUF	(64 * 1024)
#define UIDL_MAX	70
#define UIDL_HEX	(2 * MD5_DIGEST_LEN)
_Static_assert(UIDL_HEX <= UIDL_MAX, "an MD5 UIDL is a UIDL");
/* cur/'s mtime, November 2023: the stamp a cache must have. */
#define STAMP_SEC	1700000000
#define STAMP_NSEC	123456789L
#define MODE_RAW	'R'
#define PATH_LEN	4096

/* One message of the fixture, in cur/. */
struct fixture_msg {
	const char	*name;
	const char	*text;
	uint64_t	 size;		/* as RETR sends it, less the
					   stuffing dots */
	uint32_t	 ino;		/* its low 32 bits, as the cache's
					   merge compares them */
};

/* A cache line as the reference reads it. */
struct ref_line {
	const char	*name;		/* in the file: not NUL-terminated */
	size_t		 len;
	uint64_t	 ino;
	uint64_t	 size;
};

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static uint64_t	ref_sum(uint64_t, const char *, size_t);
static void	make_cache(struct tbuf *, const char *, size_t);
static uint32_t	ref_time(const char *, size_t);
static size_t	info_start(const char *, size_t);
static int	ref_order(const char *, size_t, const char *, size_t);
static const char *ref_number(const char *, const char *, char,
		    uint64_t *);
static int	ref_fields(const char *, size_t, struct ref_line *);
static int	ref_entry(const char *, size_t, struct ref_line *);
static int	ref_hex(const char *, size_t, uint64_t *);
static int	ref_head(const char *, size_t, uint64_t *);
static int	ref_listing(const char *, size_t, size_t *);
static size_t	ref_uidl(const char *, size_t, char *);
static int	ref_seen(const char *, size_t);
static int	merged_size(const char *, size_t, const struct fixture_msg *,
		    uint64_t);
static void	check_message(struct store *, size_t, const char *, size_t);
static void	check_listing(struct store *, size_t);
static void	check_cur(struct store *, const char *, size_t);
static void	check_cur_unchanged(void);

static const char w_text[] = "Subject: sized\r\n\r\nline\r\n.\r\nend\r\n";
static char w_name[128];	/* with its ,W= size, made at start */
/* A unique part longer than a UIDL may be: its MD5 stands in. */
static const char long_name[] = "1000000003."
    "uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu"
    "uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu:2,";

/*
 * In message order (checked at start): a name without a leading number
 * (time 0), a 9-digit time, the usual 10 digits, a ",W=" size, a UIDL by
 * MD5, and two names with time UINT32_MAX, the first with its digits
 * left out of store.c's name buffer, the second (over UINT32_MAX) not.
 */
static struct fixture_msg fixture[] = {
	{ "abc.host:2,S", "Subject: no time\n\nbody\n", 0, 0 },
	{ "999999999.early.host:2,", "Subject: early\r\n\r\n.\r\n..\r\n",
	    0, 0 },
	{ "1000000001.A.host:2,S", "From: a@example.org\nSubject: one\n\n"
	    "body one\n.dot line\n", 0, 0 },
	{ w_name, w_text, 0, 0 },
	{ long_name, "no final newline", 0, 0 },
	{ "4294967295.max.host:2,", "", 0, 0 },
	{ "4294967296.over.host:2,ST", "\n\n.\n", 0, 0 },
};
#define NFIXTURE	(sizeof(fixture) / sizeof(fixture[0]))

static char	maildir[PATH_LEN];
static char	curdir[PATH_LEN];
/* The reference's lines of the last input, when they are the listing. */
static struct ref_line *lines;
static size_t	lines_cap;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const struct timespec times[2] = {
		{ STAMP_SEC, STAMP_NSEC }, { STAMP_SEC, STAMP_NSEC }
	};
	struct tbuf conv = { 0 }, plain = { 0 };
	char top[PATH_LEN], sub[PATH_LEN];
	struct stat sb;
	size_t i;
	int n;

	(void)argc;
	(void)argv;
	fuzz_tempdir("cache", top, sizeof(top));
	fuzz_path(maildir, sizeof(maildir), top, "Maildir");
	fuzz_path(curdir, sizeof(curdir), maildir, "cur");
	FUZZ_CHECK(mkdir(maildir, 0700) == 0 && mkdir(curdir, 0700) == 0,
	    "%s: %s", maildir, strerror(errno));
	fuzz_path(sub, sizeof(sub), maildir, "new");
	FUZZ_CHECK(mkdir(sub, 0700) == 0, "%s: %s", sub, strerror(errno));
	fuzz_path(sub, sizeof(sub), maildir, "tmp");
	FUZZ_CHECK(mkdir(sub, 0700) == 0, "%s: %s", sub, strerror(errno));

	/* The ,W= message is named with its size, as some MDAs write it. */
	ref_convert(w_text, strlen(w_text), -1, &conv);
	fuzz_unstuff(conv.data, conv.len, &plain);
	n = snprintf(w_name, sizeof(w_name), "1000000002.B.host,S=%zu,W=%zu:2,",
	    strlen(w_text), plain.len);
	FUZZ_CHECK(n > 0 && (size_t)n < sizeof(w_name), "name too long");

	for (i = 0; i < NFIXTURE; i++) {
		struct fixture_msg *m = &fixture[i];

		FUZZ_CHECK(i == 0 || ref_order(fixture[i - 1].name,
		    strlen(fixture[i - 1].name), m->name,
		    strlen(m->name)) < 0, "fixture %zu out of order", i);
		fuzz_write_file(curdir, m->name, m->text, strlen(m->text));
		fuzz_path(sub, sizeof(sub), curdir, m->name);
		FUZZ_CHECK(stat(sub, &sb) == 0, "%s: %s", sub,
		    strerror(errno));
		m->ino = (uint32_t)sb.st_ino;
		ref_convert(m->text, strlen(m->text), -1, &conv);
		fuzz_unstuff(conv.data, conv.len, &plain);
		m->size = plain.len;
	}
	/* Last: every file made in cur/ has changed its mtime. */
	FUZZ_CHECK(utimensat(AT_FDCWD, curdir, times, 0) == 0, "%s: %s",
	    curdir, strerror(errno));
	tbuf_free(&conv);
	tbuf_free(&plain);
	return 0;
}

/*
 * The checksum of the cache, continued from h over n octets: FNV-1a's
 * step on eight octets at a time, taken in the machine's order, the high
 * half folded down after each step, then on the octets left one by one.
 */
static uint64_t
ref_sum(uint64_t h, const char *p, size_t n)
{
	uint64_t w;

	while (n >= sizeof(w)) {
		memcpy(&w, p, sizeof(w));
		h = (h ^ w) * 0x100000001b3ULL;
		h ^= h >> 32;
		p += sizeof(w);
		n -= sizeof(w);
	}
	while (n-- > 0) {
		h = (h ^ (unsigned char)*p++) * 0x100000001b3ULL;
		h ^= h >> 32;
	}
	return h;
}

/*
 * A version 4 cache of the len octets of body, which are its lines: the
 * header has the fixture's stamp and the checksum of the lines, each
 * with its LF, chained from CACHE_SUM_INIT, then of the stamp's text.  A
 * last line without its LF counts as the octets it has.
 */
static void
make_cache(struct tbuf *file, const char *body, size_t len)
{
	char stamp[16 + 8 + 1], head[CACHE_HEAD + 1];
	uint64_t sum = CACHE_SUM_INIT;
	const char *lf;
	size_t pos, n;
	int k;

	for (pos = 0; pos < len; pos += n) {
		lf = memchr(body + pos, '\n', len - pos);
		n = lf == NULL ? len - pos : (size_t)(lf - body) + 1 - pos;
		sum = ref_sum(sum, body + pos, n);
	}
	k = snprintf(stamp, sizeof(stamp), "%016llx%08lx",
	    (unsigned long long)STAMP_SEC, (unsigned long)STAMP_NSEC);
	FUZZ_CHECK(k == 24, "stamp of %d octets", k);
	sum = ref_sum(sum, stamp, 24);
	k = snprintf(head, sizeof(head), CACHE_MAGIC "%016llx %s\n",
	    (unsigned long long)sum, stamp);
	FUZZ_CHECK(k == (int)CACHE_HEAD, "header of %d octets", k);
	tbuf_reset(file);
	tbuf_add(file, head, CACHE_HEAD);
	tbuf_add(file, body, len);
}

/* The number a message is ordered by first: the value of the decimal
 * digits its name starts with (0 when none), UINT32_MAX when larger. */
static uint32_t
ref_time(const char *name, size_t len)
{
	uint64_t t = 0;
	size_t i;

	for (i = 0; i < len && name[i] >= '0' && name[i] <= '9'; i++) {
		t = t * 10 + (uint64_t)(name[i] - '0');
		if (t > UINT32_MAX)
			return UINT32_MAX;
	}
	return (uint32_t)t;
}

/* The length of the name without its info, which starts at ':'. */
static size_t
info_start(const char *name, size_t len)
{
	const char *colon = memchr(name, ':', len);

	return colon == NULL ? len : (size_t)(colon - name);
}

/*
 * Message order: <0, 0 or >0 as name a goes before, in the same place
 * as, or after name b.  By their times, then by the names up to their
 * info, octet by octet as unsigned, a name before the longer ones it
 * starts.  The info (flags) may change; the order may not.
 */
static int
ref_order(const char *a, size_t alen, const char *b, size_t blen)
{
	uint32_t ta = ref_time(a, alen), tb = ref_time(b, blen);
	int d;

	if (ta != tb)
		return ta < tb ? -1 : 1;
	alen = info_start(a, alen);
	blen = info_start(b, blen);
	if ((d = memcmp(a, b, alen < blen ? alen : blen)) != 0)
		return d;
	return alen < blen ? -1 : alen > blen;
}

/* A decimal number from p ended by the octet stop before end: one digit
 * or more, at most UINT64_MAX.  The octet after stop, or NULL. */
static const char *
ref_number(const char *p, const char *end, char stop, uint64_t *v)
{
	const char *start = p;
	unsigned int d;

	for (*v = 0; p < end && *p >= '0' && *p <= '9'; p++) {
		d = (unsigned int)(*p - '0');
		if (*v > UINT64_MAX / 10 ||
		    (*v == UINT64_MAX / 10 && d > UINT64_MAX % 10))
			return NULL;
		*v = *v * 10 + d;
	}
	return p == start || p == end || *p != stop ? NULL : p + 1;
}

/* The line of len octets at p, its LF last: 0 when it is "name TAB
 * inode TAB size LF" with a name of an octet or more, else -1. */
static int
ref_fields(const char *p, size_t len, struct ref_line *l)
{
	const char *end = p + len, *tab = memchr(p, '\t', len), *q;

	if (tab == NULL || tab == p ||
	    (q = ref_number(tab + 1, end, '\t', &l->ino)) == NULL ||
	    (q = ref_number(q, end, '\n', &l->size)) == NULL || q != end)
		return -1;
	l->name = p;
	l->len = (size_t)(tab - p);
	return 0;
}

/* A line that may be a message of the listing: well-formed, not longer
 * than store.c reads, and its name one that a file of cur/ can have and
 * that readdir() does not hide.  0 or -1. */
static int
ref_entry(const char *p, size_t len, struct ref_line *l)
{
	if (len > CACHE_BUF || ref_fields(p, len, l) == -1 ||
	    l->len > NAME_MAX || l->name[0] == '.' ||
	    memchr(l->name, '/', l->len) != NULL ||
	    memchr(l->name, '\0', l->len) != NULL)
		return -1;
	return 0;
}

/* n lower-case hex digits at p.  0 or -1. */
static int
ref_hex(const char *p, size_t n, uint64_t *v)
{
	const char *digits = "0123456789abcdef", *d;

	for (*v = 0; n > 0; p++, n--) {
		if (*p == '\0' || (d = strchr(digits, *p)) == NULL)
			return -1;
		*v = *v << 4 | (uint64_t)(d - digits);
	}
	return 0;
}

/* The header line of len octets, LF included: 0 with the checksum it
 * gives in *sum when it is version 4 with the fixture's stamp, else -1. */
static int
ref_head(const char *p, size_t len, uint64_t *sum)
{
	uint64_t sec, nsec;

	if (len != CACHE_HEAD || memcmp(p, CACHE_MAGIC, MAGIC_LEN) != 0 ||
	    ref_hex(p + MAGIC_LEN, 16, sum) == -1 ||
	    p[MAGIC_LEN + 16] != ' ' ||
	    ref_hex(p + MAGIC_LEN + 17, 16, &sec) == -1 ||
	    ref_hex(p + MAGIC_LEN + 33, 8, &nsec) == -1)
		return -1;
	return sec == STAMP_SEC && nsec == (uint64_t)STAMP_NSEC ? 0 : -1;
}

/*
 * Whether the cache file of len octets is the listing: 1 with its lines
 * in lines[0 .. *n - 1], else 0 (cur/ must be read).
 */
static int
ref_listing(const char *file, size_t len, size_t *n)
{
	const char *lf, *p;
	uint64_t sum = CACHE_SUM_INIT, want;
	size_t pos, k;

	*n = 0;
	if (len == 0 || (lf = memchr(file, '\n', len)) == NULL ||
	    ref_head(file, (size_t)(lf - file) + 1, &want) == -1)
		return 0;
	for (pos = (size_t)(lf - file) + 1; pos < len; pos += k) {
		p = file + pos;
		if ((lf = memchr(p, '\n', len - pos)) == NULL)
			return 0;	/* the last line is cut */
		k = (size_t)(lf - p) + 1;
		if (*n == lines_cap) {
			lines_cap = lines_cap ? 2 * lines_cap : 64;
			lines = reallocarray(lines, lines_cap,
			    sizeof(*lines));
			FUZZ_CHECK(lines != NULL, "out of memory");
		}
		if (ref_entry(p, k, &lines[*n]) == -1 || (*n > 0 &&
		    ref_order(lines[*n - 1].name, lines[*n - 1].len,
		    lines[*n].name, lines[*n].len) >= 0))
			return 0;
		sum = ref_sum(sum, p, k);
		(*n)++;
	}
	/* Then the stamp's text, as it is in the header. */
	sum = ref_sum(sum, file + MAGIC_LEN + 17, 24);
	return sum == want;
}

/*
 * The UIDL of a message named name (len octets) into uidl (UIDL_MAX
 * octets): the unique part of the name, up to ',' or ':', when it is 1
 * to UIDL_MAX octets in 0x21..0x7E (RFC 1939), else the MD5 of that part
 * in lower-case hex.  Its length.
 */
static size_t
ref_uidl(const char *name, size_t len, char *uidl)
{
	unsigned char d[MD5_DIGEST_LEN];
	struct md5 md5;
	size_t base, i;

	for (base = 0; base < len && name[base] != ',' && name[base] != ':';
	    base++)
		;
	for (i = 0; i < base && name[i] >= 0x21 && name[i] <= 0x7e; i++)
		;
	if (base > 0 && base <= UIDL_MAX && i == base) {
		memcpy(uidl, name, base);
		return base;
	}
	md5_init(&md5);
	md5_update(&md5, name, base);
	md5_final(&md5, d);
	for (i = 0; i < MD5_DIGEST_LEN; i++) {
		uidl[2 * i] = "0123456789abcdef"[d[i] >> 4];
		uidl[2 * i + 1] = "0123456789abcdef"[d[i] & 15];
	}
	return UIDL_HEX;
}

/* Whether the name (len octets) says seen: an 'S' anywhere after its
 * first ":2,". */
static int
ref_seen(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i + 3 <= len; i++)
		if (memcmp(name + i, ":2,", 3) == 0)
			return memchr(name + i + 3, 'S', len - i - 3) != NULL;
	return 0;
}

/*
 * Whether a line of the cache file could give fixture message m the
 * size: a read of cur/ takes sizes from the cache's well-formed lines
 * for the same name up to ':' and the same inode (see cache_line()).
 * Any such line is allowed here, in order or not.
 */
static int
merged_size(const char *file, size_t len, const struct fixture_msg *m,
    uint64_t size)
{
	size_t base = info_start(m->name, strlen(m->name)), pos, k;
	const char *lf;
	struct ref_line l;

	if ((lf = memchr(file, '\n', len)) == NULL)
		return 0;
	for (pos = (size_t)(lf - file) + 1; pos < len; pos += k) {
		if ((lf = memchr(file + pos, '\n', len - pos)) == NULL)
			return 0;
		k = (size_t)(lf - (file + pos)) + 1;
		if (ref_fields(file + pos, k, &l) == 0 && l.size == size &&
		    (uint32_t)l.ino == m->ino &&
		    info_start(l.name, l.len) == base &&
		    memcmp(l.name, m->name, base) == 0)
			return 1;
	}
	return 0;
}

/* Message i's UIDL and seen flag, for a message named name. */
static void
check_message(struct store *st, size_t i, const char *name, size_t len)
{
	char want[UIDL_MAX];
	const char *uidl;
	size_t n, wn = ref_uidl(name, len, want);

	uidl = store_uidl(st, i, &n);
	FUZZ_CHECK(n == wn && memcmp(uidl, want, n) == 0, "message %zu: UIDL "
	    "\"%.*s\", want \"%.*s\"", i + 1, (int)n, uidl, (int)wn, want);
	FUZZ_CHECK(store_seen(st, i) == ref_seen(name, len), "message %zu: "
	    "seen %d", i + 1, store_seen(st, i));
}

/* The store lists the n lines of the cache. */
static void
check_listing(struct store *st, size_t n)
{
	char err[256];
	struct stat sb;
	size_t i, k;
	int fd;

	FUZZ_CHECK(store_count(st) == n, "%zu messages, the cache lists %zu",
	    store_count(st), n);
	for (i = 0; i < n; i++) {
		FUZZ_CHECK(store_size(st, i) == lines[i].size, "message %zu: "
		    "size %llu, the cache says %llu", i + 1,
		    (unsigned long long)store_size(st, i),
		    (unsigned long long)lines[i].size);
		check_message(st, i, lines[i].name, lines[i].len);
		/* The name as store.c keeps it: the file it opens. */
		for (k = 0; k < NFIXTURE; k++) {
			if (strlen(fixture[k].name) != lines[i].len ||
			    memcmp(fixture[k].name, lines[i].name,
			    lines[i].len) != 0)
				continue;
			fd = store_msg_open(st, i, err, sizeof(err));
			FUZZ_CHECK(fd != -1, "message %zu: %s", i + 1, err);
			FUZZ_CHECK(fstat(fd, &sb) == 0 &&
			    (uint32_t)sb.st_ino == fixture[k].ino,
			    "message %zu: not %s", i + 1, fixture[k].name);
			(void)close(fd);
		}
	}
}

/* The store lists the fixture, as a read of cur/ gives it. */
static void
check_cur(struct store *st, const char *file, size_t len)
{
	const struct fixture_msg *m;
	size_t i;

	FUZZ_CHECK(store_count(st) == NFIXTURE && store_skipped(st) == 0,
	    "%zu messages (%zu skipped), cur/ has %zu", store_count(st),
	    store_skipped(st), NFIXTURE);
	for (i = 0; i < NFIXTURE; i++) {
		m = &fixture[i];
		FUZZ_CHECK(store_size(st, i) == m->size ||
		    merged_size(file, len, m, store_size(st, i)),
		    "message %zu (%s): size %llu, want %llu", i + 1, m->name,
		    (unsigned long long)store_size(st, i),
		    (unsigned long long)m->size);
		check_message(st, i, m->name, strlen(m->name));
	}
}

/* Nothing was added, removed or renamed in cur/: its mtime is as set. */
static void
check_cur_unchanged(void)
{
	struct stat sb;

	FUZZ_CHECK(stat(curdir, &sb) == 0, "%s: %s", curdir, strerror(errno));
	FUZZ_CHECK(sb.st_mtim.tv_sec == STAMP_SEC &&
	    sb.st_mtim.tv_nsec == STAMP_NSEC, "cur/ changed");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tbuf file;	/* kept from run to run */
	struct store *st;
	char err[256];
	size_t n;
	int listed;

	if (size == 0)
		return 0;
	if (data[0] == MODE_RAW) {
		tbuf_reset(&file);
		tbuf_add(&file, data + 1, size - 1);
	} else
		make_cache(&file, (const char *)data + 1, size - 1);
	fuzz_write_file(maildir, CACHE_NAME, file.data, file.len);
	listed = ref_listing(file.data, file.len, &n);

	err[0] = '\0';
	FUZZ_CHECK(store_open(&st, maildir, NULL, err, sizeof(err)) ==
	    STORE_OK, "store_open: %s", err);
	if (listed)
		check_listing(st, n);
	else
		check_cur(st, file.data, file.len);
	store_close(st);
	check_cur_unchanged();
	return 0;
}
