/*
 * mbox.c: index, send and rewrite mbox spool files.
 *
 * Reading goes through a line reader that always shows the first
 * LINE_PEEK octets of a line at once, so that "From " lines, ">From "
 * quoting and header names are seen whatever the read boundaries.
 *
 * A commit rewrites the file in place from the first deleted message on,
 * since users seldom may create files in /var/mail.  The new tail is
 * first written to a journal and made durable, then copied over the
 * mbox, which is then cut to length; mbox_recover() repeats the copy
 * after a crash.  The journal's header says where the tail goes (H), how
 * long the file becomes (F), how long it was (S1), and the MD5 of the
 * octets that lay between F and S1, which tells whether the cut was
 * made.  An undeleted message is never lost, whenever the process dies.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "fmt.h"
#include "log.h"
#include "mbox.h"
#include "md5.h"
#include "pop3d.h"

#define LINE_PEEK	128	/* octets of a line's start seen at once */
#define JOURNAL_HEAD	256	/* the journal's header, padded */
#define MD5_HEX		(2 * MD5_DIGEST_LEN + 1)

/* Octets [off, off + len) of fd. */
struct range {
	int	 fd;
	off_t	 off;
	off_t	 len;
};

struct lreader {
	int	 fd;
	off_t	 next;		/* file offset of the next read */
	off_t	 end;		/* where reading stops */
	off_t	 base;		/* file offset of buf[0] */
	size_t	 pos;
	size_t	 len;
	int	 bol;		/* the next piece starts a line */
	char	 buf[FILE_BUF_SIZE];
};

/* mboxrd unquoting across pieces of a line. */
enum uq_state { UQ_NONE, UQ_RUN, UQ_MATCH };
struct unquote {
	enum uq_state	 state;
	size_t		 matched;	/* octets of "From " seen */
};
typedef int (*unquote_out)(void *, const char *, size_t);

/* The message being indexed. */
struct scan {
	struct mbox_entry	*e;
	struct unquote		 uq;
	struct stream_size	 size;
	struct md5		 md5;
	int			 in_header;
	int			 skip;		/* a header left out of the UIDL */
	int			 pending;	/* an empty line held back */
	off_t			 pending_off;
	size_t			 pending_len;
	int			 have_xuidl;
};

/* Headers that MUAs rewrite, left out of the UIDL digest. */
static const char *const volatile_headers[] = {
	"Status:", "X-Status:", "X-Keywords:", "X-UID:", "X-IMAP:",
	"X-IMAPbase:", "Content-Length:", "Lines:", NULL
};

static void	lr_init(struct lreader *, int, off_t, off_t);
static int	lr_fill(struct lreader *);
static int	lr_next(struct lreader *, const char **, size_t *, int *,
		    off_t *);
static int	unquote_feed(struct unquote *, const char *, size_t, int,
		    unquote_out, void *);
static int	unquote_end(struct unquote *, unquote_out, void *);
static int	size_out(void *, const char *, size_t);
static int	stream_out(void *, const char *, size_t);
static int	is_empty_line(const char *, size_t);
static struct mbox_entry *index_add(struct mbox_index *);
static void	scan_end(struct scan *, off_t);
static void	scan_line(struct scan *, const char *, size_t);
static void	scan_feed(struct scan *, const char *, size_t, int);
static int	md5_range(int, off_t, off_t, char *);
static int	copy_range(int, off_t, off_t, int, off_t, struct md5 *);
static int	journal_path(const char *, const char *, int, char *,
		    size_t);
static int	journal_write(const char *, int, off_t, const struct range *,
		    size_t, off_t, char *, size_t);
static int	journal_apply(int, const char *, char *, size_t);
static int	fsync_dir(const char *);
static int	dotlock_dead(const char *);

static void
lr_init(struct lreader *lr, int fd, off_t start, off_t end)
{
	lr->fd = fd;
	lr->next = lr->base = start;
	lr->end = end;
	lr->pos = lr->len = 0;
	lr->bol = 1;
}

/* Keep what is unread at the front and read more.  0 or -1. */
static int
lr_fill(struct lreader *lr)
{
	ssize_t n;
	size_t want;

	memmove(lr->buf, lr->buf + lr->pos, lr->len - lr->pos);
	lr->base += (off_t)lr->pos;
	lr->len -= lr->pos;
	lr->pos = 0;
	while (lr->len < sizeof(lr->buf) && lr->next < lr->end) {
		want = sizeof(lr->buf) - lr->len;
		if ((off_t)want > lr->end - lr->next)
			want = (size_t)(lr->end - lr->next);
		n = pread(lr->fd, lr->buf + lr->len, want, lr->next);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0) {
			lr->end = lr->next;	/* the file is shorter */
			break;
		}
		lr->len += (size_t)n;
		lr->next += n;
	}
	return 0;
}

/*
 * The next piece of a line: up to and with its LF, or as much as the
 * buffer holds.  A piece that starts a line (*bol) holds LINE_PEEK
 * octets or the whole line.  1, 0 at the end, -1 on error.
 */
static int
lr_next(struct lreader *lr, const char **p, size_t *n, int *bol, off_t *off)
{
	const char *start, *lf;

	if (lr->pos == lr->len || (lr->bol && lr->len - lr->pos < LINE_PEEK &&
	    lr->next < lr->end &&
	    memchr(lr->buf + lr->pos, '\n', lr->len - lr->pos) == NULL)) {
		if (lr_fill(lr) == -1)
			return -1;
		if (lr->pos == lr->len)
			return 0;
	}
	start = lr->buf + lr->pos;
	lf = memchr(start, '\n', lr->len - lr->pos);
	*n = lf != NULL ? (size_t)(lf - start) + 1 : lr->len - lr->pos;
	*p = start;
	*bol = lr->bol;
	*off = lr->base + (off_t)lr->pos;
	lr->bol = lf != NULL;
	lr->pos += *n;
	return 1;
}

/*
 * Undo mboxrd quoting: a line of one or more '>' and then "From " loses
 * one '>'.  Lines come in pieces and the '>' run may be longer than any
 * buffer, so the first '>' is held back until what follows the run
 * shows whether it goes; the rest of the run is passed on at once, which
 * gives the same octets.
 */
static int
unquote_feed(struct unquote *uq, const char *p, size_t n, int bol,
    unquote_out out, void *ctx)
{
	static const char from[] = "From ";
	size_t i = 0, run;

	if (bol) {
		uq->state = p[0] == '>' ? UQ_RUN : UQ_NONE;
		uq->matched = 0;
		i = uq->state == UQ_RUN;	/* hold the first '>' */
	}
	if (uq->state == UQ_RUN) {
		for (run = i; run < n && p[run] == '>'; run++)
			;
		if (run > i && out(ctx, p + i, run - i) == -1)
			return -1;
		i = run;
		if (i < n)
			uq->state = UQ_MATCH;
	}
	while (uq->state == UQ_MATCH && i < n) {
		if (p[i] != from[uq->matched]) {
			/* Not "From ": the held '>' and the matched part go. */
			if (out(ctx, ">", 1) == -1 ||
			    (uq->matched > 0 && out(ctx, from, uq->matched) == -1))
				return -1;
			uq->state = UQ_NONE;
			break;
		}
		i++;
		if (++uq->matched == sizeof(from) - 1) {
			if (out(ctx, from, uq->matched) == -1)
				return -1;
			uq->state = UQ_NONE;	/* the '>' is dropped */
		}
	}
	if (uq->state == UQ_MATCH || uq->state == UQ_RUN)
		return 0;	/* all of the piece is held or passed on */
	return i < n ? out(ctx, p + i, n - i) : 0;
}

/* At the end of the message: what is still held goes out. */
static int
unquote_end(struct unquote *uq, unquote_out out, void *ctx)
{
	int r = 0;

	if (uq->state == UQ_RUN || uq->state == UQ_MATCH)
		r = out(ctx, ">", 1) == -1 || (uq->matched > 0 &&
		    out(ctx, "From ", uq->matched) == -1) ? -1 : 0;
	uq->state = UQ_NONE;
	return r;
}

static int
is_empty_line(const char *p, size_t n)
{
	return (n == 1 && p[0] == '\n') || (n == 2 && p[0] == '\r' &&
	    p[1] == '\n');
}

static struct mbox_entry *
index_add(struct mbox_index *idx)
{
	struct mbox_entry *v;
	size_t cap;

	if (idx->n == idx->cap) {
		cap = idx->cap ? idx->cap * 2 : 64;
		if ((v = reallocarray(idx->v, cap, sizeof(*v))) == NULL)
			return NULL;
		idx->v = v;
		idx->cap = cap;
	}
	v = &idx->v[idx->n++];
	memset(v, 0, sizeof(*v));
	return v;
}

void
mbox_index_free(struct mbox_index *idx)
{
	free(idx->v);
	memset(idx, 0, sizeof(*idx));
}

/* unquote_out for the size count. */
static int
size_out(void *ctx, const char *p, size_t n)
{
	stream_size_feed(ctx, p, n);
	return 0;
}

/* Feed content to the size and, unless left out, the digest. */
static void
scan_feed(struct scan *sc, const char *p, size_t n, int bol)
{
	(void)unquote_feed(&sc->uq, p, n, bol, size_out, &sc->size);
	if (!sc->skip)
		md5_update(&sc->md5, p, n);
}

/* The first piece of a content line (not a From_ line). */
static void
scan_line(struct scan *sc, const char *p, size_t n)
{
	size_t i, len, vlen;
	const char *v, *end;

	if (sc->pending) {	/* the held empty line was content */
		sc->pending = 0;
		sc->skip = 0;
		scan_feed(sc, sc->pending_len == 2 ? "\r\n" : "\n",
		    sc->pending_len, 1);
	}
	if (!sc->in_header)
		return;
	if (p[0] == ' ' || p[0] == '\t')
		return;		/* a continuation: as the header before */
	sc->skip = 0;
	for (i = 0; volatile_headers[i] != NULL; i++) {
		len = strlen(volatile_headers[i]);
		if (n >= len && strncasecmp(p, volatile_headers[i], len) == 0)
			sc->skip = 1;
	}
	/* "X-UIDL: id", the whole line in this piece (up to its LF), the
	 * id printable and alone on it; else the digest is the id. */
	if (n > 7 && p[n - 1] == '\n' && strncasecmp(p, "X-UIDL:", 7) == 0 &&
	    !sc->have_xuidl) {
		end = p + n - 1;
		for (v = p + 7; v < end && (*v == ' ' || *v == '\t'); v++)
			;
		for (vlen = 0; v + vlen < end && v[vlen] >= 0x21 &&
		    v[vlen] <= 0x7e; vlen++)
			;
		for (i = vlen; v + i < end && (v[i] == ' ' || v[i] == '\t' ||
		    v[i] == '\r'); i++)
			;
		if (vlen > 0 && vlen <= MBOX_UIDL_MAX && v + i == end) {
			memcpy(sc->e->uidl, v, vlen);
			sc->e->uidl[vlen] = '\0';
			sc->have_xuidl = 1;
		}
	}
}

/* The message ends at end (a held empty line was its separator). */
static void
scan_end(struct scan *sc, off_t end)
{
	unsigned char d[MD5_DIGEST_LEN];
	size_t i;

	if (sc->e == NULL)
		return;
	(void)unquote_end(&sc->uq, size_out, &sc->size);
	sc->e->end = sc->pending ? sc->pending_off : end;
	if (sc->e->end < sc->e->start)
		sc->e->end = sc->e->start;
	sc->e->size = stream_size_end(&sc->size);
	md5_final(&sc->md5, d);
	if (!sc->have_xuidl) {
		for (i = 0; i < MD5_DIGEST_LEN; i++)
			(void)fmt_buf(sc->e->uidl + 2 * i, 3, "%02x", d[i]);
	}
	sc->e = NULL;
}

int
mbox_scan(int fd, off_t len, struct mbox_index *idx)
{
	struct lreader *lr;
	struct scan sc;
	const char *p;
	size_t n;
	off_t off;
	int bol, r, prev_empty = 1, from_line = 0, first = 1;

	memset(idx, 0, sizeof(*idx));
	memset(&sc, 0, sizeof(sc));
	if ((lr = malloc(sizeof(*lr))) == NULL)
		return -1;
	lr_init(lr, fd, 0, len);
	while ((r = lr_next(lr, &p, &n, &bol, &off)) == 1) {
		if (!bol) {
			if (!from_line && sc.e != NULL)
				scan_feed(&sc, p, n, 0);
			from_line = from_line && p[n - 1] != '\n';
			if (!from_line && sc.e != NULL && sc.e->start == 0)
				sc.e->start = off + (off_t)n;
			continue;
		}
		if (prev_empty && n >= 5 && memcmp(p, "From ", 5) == 0) {
			scan_end(&sc, off);
			if ((sc.e = index_add(idx)) == NULL) {
				r = -1;
				break;
			}
			stream_size_init(&sc.size);
			md5_init(&sc.md5);
			sc.in_header = 1;
			sc.skip = sc.pending = sc.have_xuidl = 0;
			sc.uq.state = UQ_NONE;
			sc.e->from = off;
			from_line = p[n - 1] != '\n';
			sc.e->start = from_line ? 0 : off + (off_t)n;
			if (from_line && off + (off_t)n == len)
				sc.e->start = len;	/* a From_ line at EOF */
			prev_empty = 0;
			first = 0;
			continue;
		}
		if (first) {
			r = 1;		/* no "From " at the start */
			break;
		}
		scan_line(&sc, p, n);
		if (is_empty_line(p, n)) {
			/* Content, or the separator before a From_ line. */
			sc.in_header = 0;
			sc.skip = 0;
			sc.pending = 1;
			sc.pending_off = off;
			sc.pending_len = n;
			prev_empty = 1;
			continue;
		}
		prev_empty = 0;
		scan_feed(&sc, p, n, 1);
	}
	if (r == 0)
		scan_end(&sc, lr->base + (off_t)lr->pos);
	free(lr);
	if (r != 0) {
		mbox_index_free(idx);
		return r;
	}
	return 0;
}

/* unquote_out for sending: into the POP3 converter. */
static int
stream_out(void *ctx, const char *p, size_t n)
{
	return stream_feed(ctx, p, n);
}

int
mbox_send(int fd, const struct mbox_entry *e, long body_lines,
    stream_emit emit, void *ctx)
{
	struct lreader *lr;
	struct stream st;
	const char *p;
	struct unquote uq = { UQ_NONE, 0 };
	size_t n;
	off_t off;
	int bol, r = 0;

	if ((lr = malloc(sizeof(*lr))) == NULL)
		return -1;
	lr_init(lr, fd, e->start, e->end);
	stream_init(&st, body_lines, emit, ctx);
	while (!stream_done(&st) && (r = lr_next(lr, &p, &n, &bol, &off)) == 1) {
		if (unquote_feed(&uq, p, n, bol, stream_out, &st) == -1) {
			free(lr);
			return -2;
		}
	}
	free(lr);
	if (!stream_done(&st) && r == -1)
		return -1;
	if (!stream_done(&st) && unquote_end(&uq, stream_out, &st) == -1)
		return -2;
	return stream_finish(&st) == -1 ? -2 : 0;
}

/* Whether the dotlock names a process id that no longer runs. */
static int
dotlock_dead(const char *lock)
{
	char buf[32];
	ssize_t n;
	long pid;
	char *end;
	int fd;

	if ((fd = open(lock, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	errno = 0;
	pid = strtol(buf, &end, 10);
	if (errno != 0 || end == buf || (*end != '\n' && *end != '\0') ||
	    pid <= 1 || pid > 0x7fffffffL)
		return 0;
	return kill((pid_t)pid, 0) == -1 && errno == ESRCH;
}

int
mbox_lock(const char *path, int fd, int *dotlocked, char *err,
    size_t errlen)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	struct timespec tick = { 0, 100 * 1000 * 1000 };
	int mode = fcntl(fd, F_GETFL);
	char lock[PATH_MAX_POP3], tmp[PATH_MAX_POP3 + 32], pid[32];
	struct stat sb;
	int n, lfd, tries, held = 0, made = 0;

	*dotlocked = 0;
	/* A mailbox we may only read gets a read lock, and no rewrite. */
	if (mode != -1 && (mode & O_ACCMODE) == O_RDONLY)
		fl.l_type = F_RDLCK;
	n = fmt_buf(lock, sizeof(lock), "%s.lock", path);
	if (n < 0 || (size_t)n >= sizeof(lock)) {
		log_errbuf(err, errlen, "%s: path too long", path);
		return -1;
	}
	/*
	 * The lock is made whole, pid and all, under another name and then
	 * linked into place (as liblockfile does), so that a lock of ours
	 * always names its process, even if we die right after making it.
	 * That name is the same for every session: they take turns (the
	 * session holds the spool's flock), and one killed between making
	 * and removing it leaves no file that the next would not reuse.
	 */
	n = fmt_buf(tmp, sizeof(tmp), "%s.lock.pop3d", path);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		log_errbuf(err, errlen, "%s: path too long", path);
		return -1;
	}
	n = fmt_buf(pid, sizeof(pid), "%ld\n", (long)getpid());
	lfd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	    0644);
	if (lfd != -1) {
		made = write(lfd, pid, (size_t)n) == n;
		close(lfd);
		if (!made)
			(void)unlink(tmp);
	}
	/* Without the right to write here, there is no dotlock to take:
	 * the other writers lock by fcntl too. */
	for (tries = 0; made && tries < MBOX_LOCK_WAIT * 10; tries++) {
		if (link(tmp, lock) == 0) {
			*dotlocked = 1;
			break;
		}
		if (errno != EEXIST) {
			held = 0;
			break;
		}
		held = 1;
		/* A lock left by a writer that died is stale: at once when
		 * it names a process of this host that is gone, else after a
		 * while. */
		if (lstat(lock, &sb) == 0 &&
		    (time(NULL) - sb.st_mtime > MBOX_DOTLOCK_STALE ||
		    dotlock_dead(lock))) {
			(void)unlink(lock);
			continue;
		}
		(void)nanosleep(&tick, NULL);
	}
	if (made)
		(void)unlink(tmp);	/* its work is done */
	if (!*dotlocked && held) {
		log_errbuf(err, errlen, "%s is held by another program", lock);
		return -1;
	}
	for (tries = 0; tries < MBOX_LOCK_WAIT * 10; tries++) {
		if (fcntl(fd, F_SETLK, &fl) == 0)
			return 0;
		if (errno != EAGAIN && errno != EACCES && errno != EINTR)
			break;
		(void)nanosleep(&tick, NULL);
	}
	log_errbuf(err, errlen, "%s: fcntl lock: %s", path, strerror(errno));
	mbox_unlock(path, fd, *dotlocked);
	return -1;
}

void
mbox_unlock(const char *path, int fd, int dotlocked)
{
	struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };
	char lock[PATH_MAX_POP3];
	int n;

	(void)fcntl(fd, F_SETLK, &fl);
	n = fmt_buf(lock, sizeof(lock), "%s.lock", path);
	if (dotlocked && n > 0 && (size_t)n < sizeof(lock))
		(void)unlink(lock);
}

/* The MD5 of octets [start, end) of fd, as hex.  0 or -1. */
static int
md5_range(int fd, off_t start, off_t end, char *hex)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char d[MD5_DIGEST_LEN], buf[FILE_BUF_SIZE];
	struct md5 m;
	ssize_t n;
	size_t i;

	md5_init(&m);
	while (start < end) {
		n = pread(fd, buf, end - start < (off_t)sizeof(buf) ?
		    (size_t)(end - start) : sizeof(buf), start);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		md5_update(&m, buf, (size_t)n);
		start += n;
	}
	md5_final(&m, d);
	for (i = 0; i < MD5_DIGEST_LEN; i++) {
		hex[2 * i] = digits[d[i] >> 4];
		hex[2 * i + 1] = digits[d[i] & 15];
	}
	hex[2 * MD5_DIGEST_LEN] = '\0';
	return 0;
}

/* Copy len octets from fd `from` at off to fd `to` at dst.  0 or -1. */
static int
copy_range(int from, off_t off, off_t len, int to, off_t dst, struct md5 *m)
{
	char buf[FILE_BUF_SIZE];
	ssize_t n, w;

	while (len > 0) {
		n = pread(from, buf, len < (off_t)sizeof(buf) ? (size_t)len :
		    sizeof(buf), off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		if (m != NULL)
			md5_update(m, buf, (size_t)n);
		for (w = 0; w < n; ) {
			ssize_t k = pwrite(to, buf + w, (size_t)(n - w),
			    dst + w);

			if (k == -1 && errno == EINTR)
				continue;
			if (k <= 0)
				return -1;
			w += k;
		}
		off += n;
		dst += n;
		len -= n;
	}
	return 0;
}

static int
fsync_dir(const char *file)
{
	char buf[PATH_MAX_POP3];
	int fd, r;

	(void)fmt_buf(buf, sizeof(buf), "%s", file);
	if ((fd = open(dirname(buf), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

/*
 * Where the journal of the mbox at path lives: beside it when its
 * directory lets us write (which = 0), else in the user's home (which =
 * 1).  0, or -1 when there is no such place.
 */
static int
journal_path(const char *path, const char *home, int which, char *buf,
    size_t len)
{
	char dir[PATH_MAX_POP3], base[PATH_MAX_POP3];
	int n;

	(void)fmt_buf(dir, sizeof(dir), "%s", path);
	(void)fmt_buf(base, sizeof(base), "%s", path);
	if (which == 0) {
		if (access(dirname(dir), W_OK) == -1)
			return -1;
		n = fmt_buf(buf, len, "%s.pop3d-journal", path);
	} else {
		if (home == NULL || home[0] != '/')
			return -1;
		n = fmt_buf(buf, len, "%s/.pop3d-journal.%s", home,
		    basename(base));
	}
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/*
 * Write the journal for putting the octets of ranges (nr of them) at h
 * of the mbox fd, which is s1 octets long now, and make it the journal
 * at jpath atomically (write, fsync, rename, fsync the directory).
 * 0 or -1.
 */
static int
journal_write(const char *jpath, int fd, off_t h, const struct range *ranges,
    size_t nr, off_t s1, char *err, size_t errlen)
{
	char tmp[PATH_MAX_POP3], head[JOURNAL_HEAD], g[MD5_HEX], d[MD5_HEX];
	unsigned char digest[MD5_DIGEST_LEN];
	struct md5 m;
	off_t len = 0;
	size_t i;
	int jfd, n;

	n = fmt_buf(tmp, sizeof(tmp), "%s.tmp", jpath);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		log_errbuf(err, errlen, "journal %s: path too long", jpath);
		return -1;
	}
	jfd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (jfd == -1)
		goto fail;
	md5_init(&m);
	for (i = 0; i < nr; i++) {
		if (copy_range(ranges[i].fd, ranges[i].off, ranges[i].len, jfd,
		    JOURNAL_HEAD + len, &m) == -1)
			goto fail;
		len += ranges[i].len;
	}
	md5_final(&m, digest);
	for (i = 0; i < MD5_DIGEST_LEN; i++)
		(void)fmt_buf(d + 2 * i, 3, "%02x", digest[i]);
	if (md5_range(fd, h + len, s1, g) == -1)
		goto fail;
	memset(head, ' ', sizeof(head));
	n = fmt_buf(head, sizeof(head), "pop3d-mbox-journal 1 %lld %lld %lld "
	    "%s %s", (long long)h, (long long)(h + len), (long long)s1, g, d);
	head[n] = ' ';
	head[sizeof(head) - 1] = '\n';
	if (pwrite(jfd, head, sizeof(head), 0) != (ssize_t)sizeof(head) ||
	    fsync(jfd) == -1)
		goto fail;
	n = close(jfd);
	jfd = -1;
	if (n == -1 || rename(tmp, jpath) == -1 || fsync_dir(jpath) == -1)
		goto fail;
	return 0;
fail:
	log_errbuf(err, errlen, "journal %s: %s", jpath, strerror(errno));
	if (jfd != -1)
		close(jfd);
	(void)unlink(tmp);
	return -1;
}

/*
 * Carry out the journal at jpath on the mbox fd: copy its tail to H and
 * cut the file at F, then remove the journal.  If the octets between F
 * and S1 are no longer those the journal names, the cut was made before
 * a crash, and what follows F is mail delivered since: only the journal
 * goes.  Mail appended after S1 before the cut gets a journal of its own
 * first.  0 or -1.
 */
static int
journal_apply(int fd, const char *jpath, char *err, size_t errlen)
{
	char head[JOURNAL_HEAD + 1], g[MD5_HEX], d[MD5_HEX], now[MD5_HEX];
	struct range more[2];
	long long h, f, s1;
	struct stat jsb, sb;
	int jfd, r;

	if ((jfd = open(jpath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return errno == ENOENT ? 0 : -1;
	if (pread(jfd, head, JOURNAL_HEAD, 0) != JOURNAL_HEAD ||
	    fstat(jfd, &jsb) == -1 || fstat(fd, &sb) == -1)
		goto bad;
	head[JOURNAL_HEAD] = '\0';
	if (sscanf(head, "pop3d-mbox-journal 1 %lld %lld %lld %32s %32s", &h,
	    &f, &s1, g, d) != 5 || h < 0 || f < h || s1 < f ||
	    jsb.st_size != JOURNAL_HEAD + (f - h) ||
	    md5_range(jfd, JOURNAL_HEAD, jsb.st_size, now) == -1 ||
	    strcmp(now, d) != 0)
		goto bad;
	if (sb.st_size < s1 || md5_range(fd, (off_t)f, (off_t)s1, now) == -1 ||
	    strcmp(now, g) != 0)
		goto done;	/* cut already */
	if (sb.st_size > s1) {
		more[0] = (struct range){ jfd, JOURNAL_HEAD, (off_t)(f - h) };
		more[1] = (struct range){ fd, (off_t)s1, sb.st_size - s1 };
		r = journal_write(jpath, fd, (off_t)h, more, 2, sb.st_size, err,
		    errlen);
		close(jfd);
		return r == -1 ? -1 : journal_apply(fd, jpath, err, errlen);
	}
	if (copy_range(jfd, JOURNAL_HEAD, (off_t)(f - h), fd, (off_t)h,
	    NULL) == -1 || fsync(fd) == -1 || ftruncate(fd, (off_t)f) == -1 ||
	    fsync(fd) == -1) {
		log_errbuf(err, errlen, "mbox rewrite: %s", strerror(errno));
		close(jfd);
		return -1;
	}
done:
	close(jfd);
	if (unlink(jpath) == -1 || fsync_dir(jpath) == -1) {
		log_errbuf(err, errlen, "journal %s: %s", jpath,
		    strerror(errno));
		return -1;
	}
	return 0;
bad:
	/* Not a whole journal: the mbox was not touched after it. */
	close(jfd);
	(void)unlink(jpath);
	return 0;
}

int
mbox_recover(int fd, const char *path, const char *home, char *err,
    size_t errlen)
{
	char jpath[PATH_MAX_POP3], tmp[PATH_MAX_POP3 + 8];
	int which;

	for (which = 0; which < 2; which++) {
		if (journal_path(path, home, which, jpath, sizeof(jpath)) == -1)
			continue;
		/* A journal never renamed into place: nothing was done. */
		(void)fmt_buf(tmp, sizeof(tmp), "%s.tmp", jpath);
		(void)unlink(tmp);
		if (journal_apply(fd, jpath, err, errlen) == -1)
			return -1;
	}
	return 0;
}

int
mbox_commit(int fd, const char *path, const char *home,
    const struct mbox_index *idx, const unsigned char *deleted, off_t snap,
    char *err, size_t errlen)
{
	char jpath[PATH_MAX_POP3];
	struct range *ranges;
	struct stat sb;
	size_t i, first, nr = 0;
	off_t end;
	int r;

	for (first = 0; first < idx->n && !deleted[first]; first++)
		;
	if (first == idx->n)
		return 0;	/* nothing to delete */
	if ((fcntl(fd, F_GETFL) & O_ACCMODE) != O_RDWR) {
		log_errbuf(err, errlen, "%s: read-only mailbox", path);
		return -1;
	}
	if (fstat(fd, &sb) == -1 || sb.st_size < snap) {
		log_errbuf(err, errlen, "%s changed under the session", path);
		return -1;
	}
	if (journal_path(path, home, 0, jpath, sizeof(jpath)) == -1 &&
	    journal_path(path, home, 1, jpath, sizeof(jpath)) == -1) {
		log_errbuf(err, errlen, "%s: no place for a journal (neither "
		    "its directory nor the home is writable)", path);
		return -1;
	}
	if ((ranges = calloc(idx->n + 1, sizeof(*ranges))) == NULL) {
		log_errbuf(err, errlen, "out of memory");
		return -1;
	}
	/* The kept messages after the first deleted one, each with its
	 * From_ line and separator, then what was appended since. */
	for (i = first; i < idx->n; i++) {
		end = i + 1 < idx->n ? idx->v[i + 1].from : snap;
		if (deleted[i])
			continue;
		if (nr > 0 && ranges[nr - 1].off + ranges[nr - 1].len ==
		    idx->v[i].from)
			ranges[nr - 1].len += end - idx->v[i].from;
		else
			ranges[nr++] = (struct range){ fd, idx->v[i].from,
			    end - idx->v[i].from };
	}
	if (sb.st_size > snap)
		ranges[nr++] = (struct range){ fd, snap, sb.st_size - snap };
	r = journal_write(jpath, fd, idx->v[first].from, ranges, nr,
	    sb.st_size, err, errlen);
	free(ranges);
	if (r == -1)
		return -1;
	return journal_apply(fd, jpath, err, errlen);
}
