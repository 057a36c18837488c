/*
 * store.c: Maildir mailboxes.
 *
 * At open the Maildir is locked with flock() on "pop3d.lock" in its
 * root, cur/ is read once, and the mail in new/ is moved to cur/: each
 * message gets its number (by the delivery time that starts its name,
 * then by name), its size as POP3 sends it, and its UIDL (the unique
 * part of its name).  Names live in one buffer, without the delivery
 * time that starts them when the message's number keeps it; nothing else
 * is allocated per message.
 * Only store_commit() removes anything.
 */
#define _GNU_SOURCE		/* O_NOATIME: reading a message leaves its
				   atime alone (msg_openat()) */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fmt.h"
#include "log.h"
#include "mbox.h"
#include "md5.h"
#include "pop3d.h"
#include "store.h"
#include "stream.h"

#define LOCK_NAME	"pop3d.lock"
#define LOGIN_STAMP	"pop3d.login"
#define QUOTA_NAME	"maildirsize"	/* Maildir++ quota, if used */
#define NAMES_MAX	UINT32_MAX	/* octets of names: offsets fit */
#define UIDL_MAX	70
#define SORT_SHORT	12	/* runs left to an insertion sort */
#define SORT_DEPTH	64	/* quicksort levels before a heapsort */
#define AHEAD		8	/* messages whose names are fetched into
				   the CPU's cache before they are read */

/* The names are in directory order, read in message order: each one a
 * cache miss unless asked for ahead. */
#if defined(__GNUC__)
#define NAME_AHEAD(st, i) do {						\
	if ((i) < (st)->count)						\
		__builtin_prefetch((st)->names + (st)->msgs[i].name);	\
} while (0)
#else
#define NAME_AHEAD(st, i) do { } while (0)
#endif

#define MSG_DELETED	0x01
#define MSG_RETRIEVED	0x02
#define MSG_SEEN	0x04
#define MSG_SIZED	0x08	/* the size came from the cache */
#define MSG_UIDL_AFTER	0x10	/* the UIDL follows the name's NUL */
#define MSG_TIME_CUT	0x20	/* the name's leading digits are left out
				   of the buffer: they are the decimal
				   number in time */
#define MSG_UNSIZED	0x40	/* its size could not be read: size holds
				   the errno */
#define MSG_NEW		0x80	/* still in new/, named without the ":2,"
				   it gets in cur/ when it is sized */

/*
 * Sizing every message is most of a first login, spent opening and
 * reading files while the client waits, so with more than one CPU a
 * second thread sizes messages too.  The messages are cut in batches of
 * SIZE_BATCH; the second thread takes them from the front, the first
 * from the back, where the messages from new/ are, which it moves to
 * cur/ while the other sizes.  Each takes a batch by counting it in
 * "taken", so the two never take the same, and each writes only to the
 * messages it took; nothing else is shared.  Below SIZE_THREAD_MIN
 * messages to move or size, a thread is not worth starting.
 */
#define SIZE_BATCH	32
#define SIZE_THREAD_MIN	256

struct sizer {
	struct store	*st;
	int		 newfd;		/* new/ */
	size_t		 batches;
	atomic_size_t	 taken;
};

/*
 * The size cache in the Maildir: a header "pop3d-sizes 4 SUM STAMP" (16
 * hex digits of a checksum of the rest, then 16 and 8 of a time), then
 * "name TAB inode TAB size" lines in message order.  A size is taken for
 * the message of the same name up to its info (flags may change; the
 * base carries S= where the MDA writes it) and the same inode: a file put
 * in a message's place gets another inode, so its size is not taken.
 * The stamp is cur/'s mtime when it was read for these lines: while cur/
 * keeps it, nothing was added, removed or renamed there, and the lines
 * are the listing, so cur/ is not read at all.  0 when that cannot be
 * told: cur/ had changed less than CACHE_TRUST seconds before (a change
 * in the same clock tick would leave the time as it was), or some file
 * was left out of the lines.  Version 3, without the stamp and with the
 * names up to their info, is read for its sizes.
 */
#define CACHE_NAME	"pop3d.sizes"
#define CACHE_MAGIC	"pop3d-sizes 4"
#define CACHE_MAGIC_3	"pop3d-sizes 3"
#define CACHE_HEAD	(sizeof(CACHE_MAGIC) + 16 + 1 + 16 + 8 + 1)
#define CACHE_TRUST	2
#define CACHE_SUM_INIT	0xcbf29ce484222325ULL
#define CACHE_BUF	(64 * 1024)	/* read at a time; longer lines
					   mean damage */

/* 24 octets a message: a mailbox of 100,000 keeps 2.4 MB of these, and
 * about 3.3 MB of names (Maildir only; an mbox has its index). */
struct msg {
	uint64_t	 size;
	uint32_t	 name;		/* offset of its name in cur/ in the
					   names buffer (msg_name()) */
	uint32_t	 time;		/* leading number of the name */
	uint32_t	 ino;		/* from readdir, its low 32 bits: a
					   file replaced gets another, and
					   no cached size */
	unsigned char	 uidl_len;
	unsigned char	 flags;
};

/* A cache line's name without info, its length, how many of its leading
 * digits name_cut() leaves out, and the time they say. */
struct cache_key {
	const char	*name;
	size_t		 len;
	size_t		 cut;
	uint32_t	 time;
};

struct store {
	int			 mbox;		/* an mbox, not a Maildir */
	int			 mfd;		/* the mbox, flock()ed */
	char			 mpath[PATH_MAX_POP3];
	char			 home[PATH_MAX_POP3];	/* for the journal */
	struct mbox_index	 idx;
	off_t			 snap;		/* mbox length at login */
	int			 dirfd;		/* the Maildir */
	int			 curfd;		/* its cur/ */
	int			 lockfd;
	struct msg		*msgs;
	size_t			 count;
	size_t			 cap;
	size_t			 expired;	/* removed at open */
	size_t			 skipped;	/* not regular files of the
						   mail user: not served */
	int			 holder;	/* keeps a holder record */
	time_t			 active;	/* its time, monotonic */
	pid_t			 taken_from;	/* idle session ended */
	long long		 quota_bytes;	/* removed, not yet in */
	long long		 quota_count;	/* maildirsize */
	time_t			 expire_before;	/* seen and atime older: gone */
	char			*names;		/* NUL-terminated, one after
						   the other */
	size_t			 names_len;
	size_t			 names_cap;
	char			 namebuf[NAME_MAX + 1];	/* store_uidl() */
	struct timespec		 listed;	/* cur/'s mtime before it was
						   read, or {0, 0} if it had
						   changed just before */
	uid_t			 euid;		/* the mail user: the owner
						   of every message */
};

static enum store_result store_errno_result(int);
static int	 store_reserve(struct store *, size_t, size_t);
static size_t	 name_cut(const char *);
static size_t	 decimal(uint64_t, char *);
static int	 msg_set_name(struct store *, struct msg *, const char *,
		    size_t);
static const char *msg_name(const struct store *, const struct msg *,
		    char *);
static const char *msg_stored(const struct store *, const struct msg *);
static int	 mkdir_p(const char *);
static int	 maildir_subdirs(int);
static enum store_result maildir_open(struct store *, const char *,
		    char *, size_t);
static enum store_result maildir_lock(struct store *, char *, size_t);
static enum store_result maildir_takeover(struct store *, unsigned int,
		    char *, size_t);
static int	 holder_write(struct store *, time_t);
static int	 quota_write(struct store *);
static time_t	 monotonic_now(void);
static int	 maildir_regular(int, const struct dirent *);
static DIR	*opendir_at(int);
static int	 maildir_rename(int, const char *, int, const char *);
static enum store_result maildir_read_new(struct store *, int *, char *,
		    size_t);
static enum store_result maildir_scan(struct store *, char *, size_t);
static int	 maildir_read_cur(struct store *, long *, struct timespec *,
		    char *, size_t);
static enum store_result maildir_uidl_from(struct store *, const char *,
		    enum uidl_source, char *, size_t);
static int	 maildir_add(struct store *, const char *, uint64_t, char *,
		    size_t);
static int	 maildir_expire(struct store *, const char *);
static enum store_result maildir_login_delay(struct store *, unsigned int,
		    char *, size_t);
static int	 maildir_msg_size(struct store *, const char *, uint64_t *);
static int	 msg_openat(int, const char *);
static int	 maildir_find_renamed(struct store *, struct msg *);
static int	 maildir_seen_name(const char *, char *, size_t);
static int	 msg_cmp(const struct store *, const struct msg *,
		    const struct msg *);
static void	 msg_sift(const struct store *, struct msg *, size_t, size_t);
static void	 msg_swap(struct msg *, struct msg *);
static void	 msg_sort(const struct store *, struct msg *, size_t,
		    unsigned int);
static int	 base_cmp(const char *, const char *);
static int	 base_vs(const char *, const char *);
static uint32_t	 name_time(const char *);
static int	 msg_vs(const struct store *, const struct msg *,
		    const struct cache_key *);
static const char *cache_number(const char *, const char *, char,
		    uint64_t *);
static char	*cache_fields(char *, size_t, uint64_t *, uint64_t *);
static int	 cache_line(struct store *, char *, size_t, size_t *);
static int	 cache_entry(struct store *, char *, size_t);
static int	 hex_field(const char *, size_t, uint64_t *);
static int	 cache_head(const char *, size_t, uint64_t *,
		    struct timespec *);
static long	 cache_read(struct store *, int, struct timespec *);
static struct timespec cache_stamp(const struct store *);
static int	 cache_write(struct store *);
static int	 cache_put(int, const char *, size_t);
static uint64_t	 cache_sum(uint64_t, const char *, size_t);
static int	 maildir_sizes(struct store *, int, size_t, long,
		    const struct timespec *, char *, size_t);
static void	 maildir_measure(struct store *, int);
static void	 maildir_size_one(struct store *, int, struct msg *);
static void	 sizer_run(struct sizer *, int);
static void	*sizer_thread(void *);
static int	 path_put(char *, size_t, size_t *, const char *, size_t);
static enum store_result mbox_open(struct store *, const char *, char *,
		    size_t);
static int	 mbox_update(struct store *, size_t *, char *, size_t);

/* Permission and layout problems need the administrator; others pass. */
static enum store_result
store_errno_result(int e)
{
	switch (e) {
	case EACCES:
	case EPERM:
	case ENOTDIR:
	case ELOOP:
	case EROFS:
		return STORE_PERM;
	default:
		return STORE_TEMP;
	}
}

/*
 * The number of leading digits of a Maildir name that msg_name() can
 * write back from the number alone: 1 to 10 of them, no leading zero, at
 * most UINT32_MAX.  0 when the name does not start so.
 */
static size_t
name_cut(const char *name)
{
	uint64_t t = 0;
	size_t k;

	if (name[0] < '1' || name[0] > '9')
		return 0;
	for (k = 0; k < 10 && name[k] >= '0' && name[k] <= '9'; k++)
		t = t * 10 + (uint64_t)(name[k] - '0');
	if ((name[k] >= '0' && name[k] <= '9') || t > UINT32_MAX)
		return 0;
	return k;
}

/*
 * Room for n more messages and names of names octets more.  realloc()
 * moves large buffers by remapping them, and the part not yet written
 * costs no memory: room is cheap.  0, or -1 when out of memory.
 */
static int
store_reserve(struct store *st, size_t n, size_t names)
{
	struct msg *msgs;
	char *grown;

	if (n > 0) {
		if (n > SIZE_MAX / sizeof(*msgs) - st->cap ||
		    (msgs = reallocarray(st->msgs, st->cap + n,
		    sizeof(*msgs))) == NULL)
			return -1;
		st->msgs = msgs;
		st->cap += n;
	}
	if (names > 0) {
		if (names > NAMES_MAX - st->names_cap ||
		    (grown = realloc(st->names, st->names_cap + names)) ==
		    NULL)
			return -1;
		st->names = grown;
		st->names_cap += names;
	}
	return 0;
}

/*
 * Give m the name s of len octets (a file name, perhaps followed by a NUL
 * and a UIDL), with m->time set from it: appended to the names buffer
 * without the digits the time keeps.  s must not point into that buffer,
 * which may move.  0, or -1 when out of memory.
 */
static int
msg_set_name(struct store *st, struct msg *m, const char *s, size_t len)
{
	size_t cut = name_cut(s), more;

	if (len - cut + 1 > st->names_cap - st->names_len) {
		more = st->names_cap ? st->names_cap / 2 : 64 * 1024;
		if (more < len - cut + 1 || more > NAMES_MAX - st->names_cap)
			more = len - cut + 1;
		if (store_reserve(st, 0, more) == -1)
			return -1;
	}
	m->time = name_time(s);
	m->name = (uint32_t)st->names_len;
	if (cut > 0)
		m->flags |= MSG_TIME_CUT;
	else
		m->flags &= (unsigned char)~MSG_TIME_CUT;
	memcpy(st->names + st->names_len, s + cut, len - cut);
	st->names[st->names_len + len - cut] = '\0';
	st->names_len += len - cut + 1;
	return 0;
}

/* The part of m's name kept in the names buffer (a NUL ends it). */
static const char *
msg_stored(const struct store *st, const struct msg *m)
{
	return st->names + m->name;
}

/* Write t in decimal to buf, at most 20 octets; its length. */
static size_t
decimal(uint64_t t, char *buf)
{
	char digits[20];
	size_t n = 0, k = 0;

	do
		digits[n++] = (char)('0' + t % 10);
	while ((t /= 10) != 0);
	while (n > 0)
		buf[k++] = digits[--n];
	return k;
}

/* m's name in cur/: in the names buffer, or made in buf (NAME_MAX + 1
 * octets) when its leading digits were left out of it. */
static const char *
msg_name(const struct store *st, const struct msg *m, char *buf)
{
	const char *rest = msg_stored(st, m);
	size_t k, len;

	if (!(m->flags & MSG_TIME_CUT))
		return rest;
	k = decimal(m->time, buf);
	/* At most NAME_MAX in all, as the name it was cut from. */
	if ((len = strlen(rest)) > NAME_MAX - k)
		len = NAME_MAX - k;
	memcpy(buf + k, rest, len);
	buf[k + len] = '\0';
	return buf;
}

/* Append n octets of s to buf at *pos.  0, or -1 when it does not fit. */
static int
path_put(char *buf, size_t len, size_t *pos, const char *s, size_t n)
{
	if (n >= len - *pos)
		return -1;
	memcpy(buf + *pos, s, n);
	*pos += n;
	buf[*pos] = '\0';
	return 0;
}

int
store_path(const char *spec, const char *user, const char *home,
    char *buf, size_t len, char *err, size_t errlen)
{
	const char *p = spec, *at = strchr(user, '@'), *s;
	size_t pos = 0, n;
	int r = 0;

	if (len == 0)
		return -1;
	buf[0] = '\0';
	if (strncmp(p, "maildir:", 8) == 0)
		p += 8;
	else if (strncmp(p, "mbox:", 5) == 0) {
		/* The prefix stays: store_open() goes by it. */
		p += 5;
		r = path_put(buf, len, &pos, "mbox:", 5);
	}
	if (p[0] == '~' && (p[1] == '/' || p[1] == '\0')) {
		p++;
		if (home[0] == '\0') {
			log_errbuf(err, errlen, "user %s has no home", user);
			return -1;
		}
		r = path_put(buf, len, &pos, home, strlen(home));
	}
	for (; r == 0 && *p != '\0'; p++) {
		if (*p != '%') {
			r = path_put(buf, len, &pos, p, 1);
			continue;
		}
		switch (*++p) {
		case 'h':
			if (home[0] == '\0') {
				log_errbuf(err, errlen, "user %s has no home",
				    user);
				return -1;
			}
			s = home, n = strlen(home);
			break;
		case 'u':
			s = user, n = strlen(user);
			break;
		case 'n':
			s = user, n = at ? (size_t)(at - user) : strlen(user);
			break;
		case 'd':
			s = at ? at + 1 : "", n = strlen(s);
			break;
		case '%':
			s = "%", n = 1;
			break;
		default:
			log_errbuf(err, errlen, "mail spec %s: unknown %%%c",
			    spec, *p ? *p : ' ');
			return -1;
		}
		r = path_put(buf, len, &pos, s, n);
	}
	if (r == -1) {
		log_errbuf(err, errlen, "mail spec %s: path too long", spec);
		return -1;
	}
	if (buf[strncmp(buf, "mbox:", 5) == 0 ? 5 : 0] != '/') {
		log_errbuf(err, errlen, "mail spec %s: %s is not absolute",
		    spec, buf);
		return -1;
	}
	return 0;
}

size_t
store_maildir_base(const char *name)
{
	return strcspn(name, ":,");
}

size_t
store_maildir_colon(const char *name)
{
	return strcspn(name, ":");
}

int
store_maildir_wsize(const char *name, uint64_t *size)
{
	const char *p = name, *end = name + strcspn(name, ":");
	uint64_t v;
	int digits;

	while ((p = strchr(p, ',')) != NULL && p < end) {
		p++;
		if (strncmp(p, "W=", 2) != 0)
			continue;
		v = 0;
		digits = 0;
		for (p += 2; *p >= '0' && *p <= '9'; p++, digits++) {
			if (v > (UINT64_MAX - 9) / 10)
				return -1;
			v = v * 10 + (uint64_t)(*p - '0');
		}
		if (digits == 0 || (*p != ',' && *p != ':' && *p != '\0'))
			return -1;
		*size = v;
		return 0;
	}
	return -1;
}

/* mkdir -p with mode 0700 for what it creates. */
static int
mkdir_p(const char *path)
{
	char buf[PATH_MAX_POP3];
	size_t len = strlen(path), i;

	if (len == 0 || len >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, len + 1);
	for (i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0700) == -1 && errno != EEXIST)
			return -1;
		buf[i] = path[i];
	}
	return 0;
}

/* Create cur/, new/ and tmp/ where missing. */
static int
maildir_subdirs(int dirfd)
{
	static const char *const sub[] = { "cur", "new", "tmp" };
	size_t i;

	for (i = 0; i < sizeof(sub) / sizeof(sub[0]); i++)
		if (mkdirat(dirfd, sub[i], 0700) == -1 && errno != EEXIST)
			return -1;
	return 0;
}

static enum store_result
maildir_open(struct store *st, const char *path, char *err, size_t errlen)
{
	struct stat sb;

	if (path[0] != '/') {
		log_errbuf(err, errlen, "mailbox path %s is not absolute", path);
		return STORE_PERM;
	}
	if (stat(path, &sb) == -1) {
		if (errno != ENOENT || mkdir_p(path) == -1) {
			log_errbuf(err, errlen, "mailbox %s: %s", path,
			    strerror(errno));
			return store_errno_result(errno);
		}
	} else if (!S_ISDIR(sb.st_mode)) {
		log_errbuf(err, errlen, "mailbox %s is not a directory", path);
		return STORE_PERM;
	}
	st->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->dirfd == -1 || maildir_subdirs(st->dirfd) == -1) {
		log_errbuf(err, errlen, "mailbox %s: %s", path, strerror(errno));
		return store_errno_result(errno);
	}
	st->curfd = openat(st->dirfd, "cur",
	    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (st->curfd == -1) {
		log_errbuf(err, errlen, "mailbox %s/cur: %s", path,
		    strerror(errno));
		return store_errno_result(errno);
	}
	return STORE_OK;
}

static enum store_result
maildir_lock(struct store *st, char *err, size_t errlen)
{
	st->lockfd = openat(st->dirfd, LOCK_NAME,
	    O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (st->lockfd == -1) {
		log_errbuf(err, errlen, "lock file %s: %s", LOCK_NAME,
		    strerror(errno));
		return store_errno_result(errno);
	}
	if (flock(st->lockfd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK) {
			log_errbuf(err, errlen, "mailbox is locked");
			return STORE_INUSE;
		}
		log_errbuf(err, errlen, "flock: %s", strerror(errno));
		return STORE_TEMP;
	}
	return STORE_OK;
}

/* Seconds of CLOCK_MONOTONIC: the same clock in every process, and
 * deaf to changes of the time of day. */
static time_t
monotonic_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/*
 * The holder record of --takeover in the lock file: "pid seconds\n",
 * seconds being the monotonic time of the holder's last command, under
 * an fcntl() write lock on the file's first octet, through which
 * F_GETLK names the holder's pid (a record alone could be a dead
 * session's).  0 or -1.
 */
static int
holder_write(struct store *st, time_t now)
{
	char rec[HOLDER_RECORD];
	int n;

	n = fmt_buf(rec, sizeof(rec), "%ld %lld\n", (long)getpid(),
	    (long long)now);
	if (n < 0 || (size_t)n >= sizeof(rec) ||
	    pwrite(st->lockfd, rec, (size_t)n, 0) != n ||
	    ftruncate(st->lockfd, n) == -1)
		return -1;
	st->active = now;
	return 0;
}

/*
 * --takeover: the mailbox is locked by another session.  If that
 * session keeps a holder record and its last command is more than idle
 * seconds old, end it with SIGTERM (it ends without UPDATE: nothing is
 * deleted) and wait a bounded time for its lock.  An active holder, or
 * one that keeps no record, is left alone: STORE_INUSE.
 */
static enum store_result
maildir_takeover(struct store *st, unsigned int idle, char *err,
    size_t errlen)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
	    .l_start = 0, .l_len = 1 };
	char rec[HOLDER_RECORD];
	long long pid, when;
	time_t now;
	ssize_t n;
	int i;

	if (fcntl(st->lockfd, F_GETLK, &fl) == -1 || fl.l_type == F_UNLCK ||
	    (n = pread(st->lockfd, rec, sizeof(rec) - 1, 0)) <= 0)
		return STORE_INUSE;	/* no record kept: not ours to end */
	rec[n] = '\0';
	now = monotonic_now();
	if (sscanf(rec, "%lld %lld", &pid, &when) != 2 ||
	    pid != (long long)fl.l_pid || pid <= 1 || when > (long long)now ||
	    now - (time_t)when <= (time_t)idle)
		return STORE_INUSE;	/* active, or just starting */
	if (kill(fl.l_pid, SIGTERM) == -1) {
		log_errbuf(err, errlen, "mailbox is locked by pid %lld, which "
		    "cannot be ended: %s", pid, strerror(errno));
		return STORE_INUSE;
	}
	for (i = 0; i < TAKEOVER_WAIT_MS / TAKEOVER_POLL_MS; i++) {
		if (flock(st->lockfd, LOCK_EX | LOCK_NB) == 0) {
			st->taken_from = fl.l_pid;
			return STORE_OK;
		}
		if (errno != EWOULDBLOCK)
			break;
		(void)nanosleep(&(struct timespec){ 0,
		    TAKEOVER_POLL_MS * 1000000L }, NULL);
	}
	/* Another newcomer may have been quicker: its record is fresh. */
	log_errbuf(err, errlen, "mailbox is locked (idle pid %lld was ended, "
	    "another session took the lock)", pid);
	return STORE_INUSE;
}

/*
 * Whether a directory entry is a message: a regular file (not a link,
 * not a directory) whose name does not start with '.'.
 */
static int
maildir_regular(int dirfd, const struct dirent *de)
{
	struct stat sb;

	if (de->d_name[0] == '.')
		return 0;
	if (de->d_type != DT_UNKNOWN)
		return de->d_type == DT_REG;
	return fstatat(dirfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(sb.st_mode);
}

/*
 * LOGIN-DELAY: refuse when the stamp is younger than delay seconds, else
 * renew it.  A stamp that cannot be written is logged, not fatal.
 */
static enum store_result
maildir_login_delay(struct store *st, unsigned int delay, char *err,
    size_t errlen)
{
	struct stat sb;
	time_t now = time(NULL);
	int fd;

	if (delay == 0)
		return STORE_OK;
	if (fstatat(st->dirfd, LOGIN_STAMP, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
	    sb.st_mtime <= now && now - sb.st_mtime < (time_t)delay) {
		log_errbuf(err, errlen, "last login %lld seconds ago",
		    (long long)(now - sb.st_mtime));
		return STORE_TOOSOON;
	}
	fd = openat(st->dirfd, LOGIN_STAMP,
	    O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd != -1) {
		(void)futimens(fd, NULL);
		close(fd);
	}
	return STORE_OK;
}

/*
 * A directory stream of its own on the directory dirfd is open on: a
 * dup() would share the read position, and a second pass would find
 * nothing.
 */
static DIR *
opendir_at(int dirfd)
{
	DIR *dir;
	int fd;

	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return NULL;
	if ((dir = fdopendir(fd)) == NULL)
		close(fd);
	return dir;
}

/*
 * Rename from/NAME to to/TO, unless TO is there: a message in cur/ is
 * never replaced by one from new/ that has the same name.
 */
static int
maildir_rename(int from, const char *name, int to, const char *toname)
{
#ifdef RENAME_NOREPLACE
	/* Where the file system cannot, a plain rename. */
	if (renameat2(from, name, to, toname, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
#endif
	return renameat(from, name, to, toname);
}

/*
 * Add the messages in new/ after those of cur/, each as cur/NAME:2,, its
 * name there, with MSG_NEW: maildir_size_one() moves it.  A name that
 * has info already is moved at once, as it is.  *newfd is new/, left
 * open for the moves.
 */
static enum store_result
maildir_read_new(struct store *st, int *newfd, char *err, size_t errlen)
{
	char to[NAME_MAX + 1];
	struct dirent *de;
	DIR *dir;
	int n, r;

	*newfd = openat(st->dirfd, "new",
	    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*newfd == -1 || (dir = opendir_at(*newfd)) == NULL) {
		log_errbuf(err, errlen, "new/: %s", strerror(errno));
		return store_errno_result(errno);
	}
	while ((errno = 0, de = readdir(dir)) != NULL) {
		if (!maildir_regular(*newfd, de))
			continue;
		if (strchr(de->d_name, ':') != NULL) {
			/* Another process may have moved it first: then it
			 * is served from the next login on. */
			if (maildir_rename(*newfd, de->d_name, st->curfd,
			    de->d_name) == -1)
				continue;
			r = maildir_add(st, de->d_name, (uint64_t)de->d_ino,
			    err, errlen);
		} else {
			n = fmt_buf(to, sizeof(to), "%s:2,", de->d_name);
			if (n < 0 || (size_t)n >= sizeof(to))
				continue;
			r = maildir_add(st, to, (uint64_t)de->d_ino, err,
			    errlen);
			if (r == 0)
				st->msgs[st->count - 1].flags |= MSG_NEW;
		}
		if (r == -1) {
			closedir(dir);
			return STORE_TEMP;
		}
	}
	if (errno != 0) {
		log_errbuf(err, errlen, "new/: %s", strerror(errno));
		closedir(dir);
		return STORE_TEMP;
	}
	closedir(dir);
	return STORE_OK;
}

/*
 * Open a message to read it.  Reading leaves its atime alone where the
 * system can (O_NOATIME, allowed to the file's owner), so that no inode
 * is written for it: the atime EXPIRE goes by is set at QUIT for the
 * messages retrieved (store_commit()).  A file of another owner is
 * opened as before, for the owner check to refuse it by name.
 */
static int
msg_openat(int dirfd, const char *name)
{
#ifdef O_NOATIME
	int fd;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
	if (fd != -1 || errno != EPERM)
		return fd;
#endif
	return openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
}

/*
 * The size of cur/NAME as POP3 sends it.  A ",W=" field gives it without
 * reading the message, but Dovecot and maildrop do not count the CRLF
 * that a last line without newline is sent with: the last octet says.
 */
static int
maildir_msg_size(struct store *st, const char *name, uint64_t *size)
{
	struct stat sb;
	int fd, r = 0, e;
	char last;

	if ((fd = msg_openat(st->curfd, name)) == -1)
		return -1;
	if (fstat(fd, &sb) == -1)
		r = -1;
	else if (!S_ISREG(sb.st_mode) || sb.st_uid != st->euid) {
		errno = EPERM;
		r = -1;
	} else if (store_maildir_wsize(name, size) == 0) {
		if (sb.st_size > 0 &&
		    pread(fd, &last, 1, sb.st_size - 1) != 1)
			r = -1;
		else if (sb.st_size > 0 && last != '\n')
			*size += 2;
	} else
		r = stream_size_fd(fd, size);
	e = errno;
	close(fd);
	errno = e;
	return r;
}

/*
 * EXPIRE: remove cur/NAME, a seen message, if it was last retrieved
 * at or before expire_before (its atime).  1 when it is gone.
 */
static int
maildir_expire(struct store *st, const char *name)
{
	struct stat sb;

	if (fstatat(st->curfd, name, &sb, AT_SYMLINK_NOFOLLOW) == -1 ||
	    sb.st_atime > st->expire_before ||
	    unlinkat(st->curfd, name, 0) == -1)
		return 0;
	st->expired++;
	st->quota_bytes += sb.st_size;
	st->quota_count++;
	return 1;
}

/*
 * Add cur/NAME as a message, its size still unknown (maildir_sizes()).
 * 0, 1 when skipped, -1 on error.
 */
static int
maildir_add(struct store *st, const char *name, uint64_t ino, char *err,
    size_t errlen)
{
	char buf[NAME_MAX + 2 + 2 * MD5_DIGEST_LEN + 1];
	const char *flags;
	struct msg *m;
	size_t base, i, len;
	int r;

	/* Half as much room again, 1024 at least: cache_read() may have
	 * reserved room for a single message, and half of that is none. */
	if (st->count == st->cap &&
	    store_reserve(st, st->cap > 2048 ? st->cap / 2 : 1024, 0) == -1) {
		log_errbuf(err, errlen, "out of memory");
		return -1;
	}
	m = &st->msgs[st->count];
	memset(m, 0, sizeof(*m));
	if ((flags = strstr(name, ":2,")) != NULL &&
	    strchr(flags + 3, 'S') != NULL)
		m->flags |= MSG_SEEN;
	/* Before the size is read, which may set the atime. */
	if ((m->flags & MSG_SEEN) && st->expire_before != 0 &&
	    maildir_expire(st, name))
		return 1;
	m->ino = (uint32_t)ino;

	/* The UIDL is the unique part of the name if RFC 1939 allows it,
	 * else the MD5 of that part, kept after the name. */
	len = strlen(name);
	base = store_maildir_base(name);
	for (i = 0; i < base; i++)
		if (name[i] < 0x21 || name[i] > 0x7e)
			break;
	if (base > 0 && base <= UIDL_MAX && i == base) {
		m->uidl_len = (unsigned char)base;
		r = msg_set_name(st, m, name, len);
	} else {
		memcpy(buf, name, len + 1);
		md5_hex(name, base, buf + len + 1);
		m->flags |= MSG_UIDL_AFTER;
		m->uidl_len = 2 * MD5_DIGEST_LEN;
		r = msg_set_name(st, m, buf, len + 1 + 2 * MD5_DIGEST_LEN);
	}
	if (r == -1) {
		log_errbuf(err, errlen, "out of memory");
		return -1;
	}
	st->count++;
	return 0;
}

static int
msg_cmp(const struct store *st, const struct msg *x, const struct msg *y)
{
	char bx[NAME_MAX + 1], by[NAME_MAX + 1];

	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	/* With the same time, both names start with the same digits when
	 * both were cut: the rest tells. */
	if ((x->flags & MSG_TIME_CUT) == (y->flags & MSG_TIME_CUT))
		return base_cmp(msg_stored(st, x), msg_stored(st, y));
	return base_cmp(msg_name(st, x, bx), msg_name(st, y, by));
}

static void
msg_swap(struct msg *a, struct msg *b)
{
	struct msg t = *a;

	*a = *b;
	*b = t;
}

/* Move m[i] down the heap of n messages to its place. */
static void
msg_sift(const struct store *st, struct msg *m, size_t i, size_t n)
{
	size_t c;

	while ((c = 2 * i + 1) < n) {
		if (c + 1 < n && msg_cmp(st, &m[c], &m[c + 1]) < 0)
			c++;
		if (msg_cmp(st, &m[i], &m[c]) >= 0)
			return;
		msg_swap(&m[i], &m[c]);
		i = c;
	}
}

/*
 * Sort the messages in numbering order, in place (qsort() would take a
 * copy of the whole array for its merge, as much memory again): a
 * quicksort on the median of three, which falls back to a heapsort when
 * it goes deeper than depth, and leaves short runs to an insertion sort.
 */
static void
msg_sort(const struct store *st, struct msg *m, size_t n,
    unsigned int depth)
{
	size_t i, j;

	while (n > SORT_SHORT) {
		if (depth-- == 0) {
			for (i = n / 2; i-- > 0; )
				msg_sift(st, m, i, n);
			for (i = n; i-- > 1; ) {
				msg_swap(&m[0], &m[i]);
				msg_sift(st, m, 0, i);
			}
			return;
		}
		/* m[0] <= m[1], the pivot, <= m[n - 1]: both ends stop the
		 * scans below. */
		msg_swap(&m[n / 2], &m[1]);
		if (msg_cmp(st, &m[1], &m[0]) < 0)
			msg_swap(&m[1], &m[0]);
		if (msg_cmp(st, &m[n - 1], &m[0]) < 0)
			msg_swap(&m[n - 1], &m[0]);
		if (msg_cmp(st, &m[n - 1], &m[1]) < 0)
			msg_swap(&m[n - 1], &m[1]);
		for (i = 1, j = n - 1;;) {
			while (msg_cmp(st, &m[++i], &m[1]) < 0)
				;
			while (msg_cmp(st, &m[1], &m[--j]) < 0)
				;
			if (i >= j)
				break;
			msg_swap(&m[i], &m[j]);
		}
		msg_swap(&m[1], &m[j]);
		/* The shorter side first, the longer in this loop: the
		 * recursion stays within log2(n) levels. */
		if (j < n - j - 1) {
			msg_sort(st, m, j, depth);
			m += j + 1;
			n -= j + 1;
		} else {
			msg_sort(st, m + j + 1, n - j - 1, depth);
			n = j;
		}
	}
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && msg_cmp(st, &m[j], &m[j - 1]) < 0; j--)
			msg_swap(&m[j], &m[j - 1]);
}

/* The leading number of a Maildir name, its delivery time (at most
 * UINT32_MAX: the year 2106). */
static uint32_t
name_time(const char *name)
{
	uint64_t t = 0;

	for (; *name >= '0' && *name <= '9' && t <= UINT32_MAX; name++)
		t = t * 10 + (uint64_t)(*name - '0');
	return t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

/* Compare message m with a cache key, in message order. */
static int
msg_vs(const struct store *st, const struct msg *m, const struct cache_key *k)
{
	char buf[NAME_MAX + 1];
	const char *name = msg_stored(st, m), *key = k->name;
	size_t len = k->len;

	if (m->time != k->time)
		return m->time < k->time ? -1 : 1;
	if (m->flags & MSG_TIME_CUT) {
		if (k->cut == 0)
			return base_vs(msg_name(st, m, buf), key);
		key += k->cut;	/* the same digits: the same time */
		len -= k->cut;
	} else if (k->cut > 0)
		return base_vs(msg_name(st, m, buf), key);
	/* Mostly the same message: the name is the key, then its info. */
	if (strncmp(name, key, len) == 0 &&
	    (name[len] == ':' || name[len] == '\0'))
		return 0;
	return base_vs(name, key);
}

/*
 * The messages: from the size cache when cur/ has not changed since it
 * was written (see CACHE_MAGIC), else from cur/ itself; then those in
 * new/, which move to cur/ as they are sized.
 */
static enum store_result
maildir_scan(struct store *st, char *err, size_t errlen)
{
	struct timespec stamp, now;
	struct stat sb;
	enum store_result r;
	size_t old;
	long entries;
	int newfd, cached = 0;

	/* Its mtime before it is read: a change meanwhile makes it newer,
	 * unless it comes in the same clock tick as the one before. */
	if (fstat(st->curfd, &sb) == -1 ||
	    clock_gettime(CLOCK_REALTIME, &now) == -1) {
		log_errbuf(err, errlen, "cur/: %s", strerror(errno));
		return STORE_TEMP;
	}
	if (sb.st_mtim.tv_sec > 0 &&
	    now.tv_sec - sb.st_mtim.tv_sec >= CACHE_TRUST)
		st->listed = sb.st_mtim;
	/* Expiry looks at each message: only a read of cur/ does that. */
	if (st->expire_before == 0 &&
	    (entries = cache_read(st, 1, &stamp)) != -1)
		cached = 1;
	else if (maildir_read_cur(st, &entries, &stamp, err, errlen) == -1)
		return STORE_TEMP;
	old = st->count;
	if ((r = maildir_read_new(st, &newfd, err, errlen)) == STORE_OK &&
	    st->count > old) {
		/* cur/ changes as they move in: no stamp from before. */
		st->listed.tv_sec = 0;
		st->listed.tv_nsec = 0;
	}
	/* The cache as the listing, and nothing new: every size is known,
	 * and the cache says just that (the usual later login). */
	if (r == STORE_OK && (!cached || st->count > old) &&
	    maildir_sizes(st, newfd, old, entries, &stamp, err, errlen) == -1)
		r = STORE_TEMP;
	if (newfd != -1)
		close(newfd);
	if (r != STORE_OK)
		return r;
	if (st->count > 0 && st->count < st->cap) {
		struct msg *fit = reallocarray(st->msgs, st->count,
		    sizeof(*st->msgs));

		if (fit != NULL) {
			st->msgs = fit;
			st->cap = st->count;
		}
	}
	return STORE_OK;
}

/*
 * Read cur/, in message order, with the sizes the cache knows; *entries
 * and *stamp as cache_read() gives them.  0 or -1.
 */
static int
maildir_read_cur(struct store *st, long *entries, struct timespec *stamp,
    char *err, size_t errlen)
{
	struct dirent *de;
	DIR *dir;

	if ((dir = opendir_at(st->curfd)) == NULL) {
		log_errbuf(err, errlen, "cur/: %s", strerror(errno));
		return -1;
	}
	while ((errno = 0, de = readdir(dir)) != NULL) {
		if (!maildir_regular(st->curfd, de)) {
			if (de->d_type == DT_LNK)
				st->skipped++;	/* never followed */
			continue;
		}
		if (maildir_add(st, de->d_name, (uint64_t)de->d_ino, err,
		    errlen) == -1) {
			closedir(dir);
			return -1;
		}
	}
	if (errno != 0) {
		log_errbuf(err, errlen, "cur/: %s", strerror(errno));
		closedir(dir);
		return -1;
	}
	closedir(dir);
	msg_sort(st, st->msgs, st->count, SORT_DEPTH);
	*entries = cache_read(st, 0, stamp);
	return 0;
}

/*
 * --uidl-from: the ids another server gave (uidl.h) replace the own ones
 * where it knows the message; the others keep theirs.  A mapped id is
 * kept after the name, in a new copy of it.
 */
static enum store_result
maildir_uidl_from(struct store *st, const char *path, enum uidl_source src,
    char *err, size_t errlen)
{
	char buf[NAME_MAX + 2 + UIDL_MAX + 1];
	struct uidl_map *map;
	struct msg *m;
	const char *id, *name;
	size_t i, k, n, idlen;

	if (src == UIDL_OWN)
		return STORE_OK;
	if (src == UIDL_QMAIL) {
		/* qmail-pop3d: the name up to ':', where it is a UIDL. */
		for (i = 0; i < st->count; i++) {
			m = &st->msgs[i];
			name = msg_name(st, m, buf);
			n = store_maildir_colon(name);
			for (k = 0; k < n; k++)
				if (name[k] < 0x21 || name[k] > 0x7e)
					break;
			if (n > 0 && n <= UIDL_MAX && k == n &&
			    !(m->flags & MSG_UIDL_AFTER))
				m->uidl_len = (unsigned char)n;
		}
		return STORE_OK;
	}
	if (uidl_map_load(&map, path, src, err, errlen) == -1)
		return STORE_TEMP;
	for (i = 0; i < st->count && map != NULL; i++) {
		m = &st->msgs[i];
		name = msg_name(st, m, buf);
		id = uidl_map_find(map, name, store_maildir_base(name),
		    &idlen);
		if (id == NULL || idlen == 0 || idlen > UIDL_MAX)
			continue;
		n = strlen(name);
		if (name != buf)
			memcpy(buf, name, n + 1);
		memcpy(buf + n + 1, id, idlen);
		if (msg_set_name(st, m, buf, n + 1 + idlen) == -1) {
			uidl_map_free(map);
			log_errbuf(err, errlen, "out of memory");
			return STORE_TEMP;
		}
		m->flags |= MSG_UIDL_AFTER;
		m->uidl_len = (unsigned char)idlen;
	}
	uidl_map_free(map);
	return STORE_OK;
}

/* Compare the name up to ':' with key (a name without info). */
static int
base_vs(const char *name, const char *key)
{
	const unsigned char *x = (const void *)name, *y = (const void *)key;
	int cx, cy;

	for (;; x++, y++) {
		cx = *x == ':' ? 0 : *x;
		cy = *y;
		if (cx != cy || cx == 0)
			return cx - cy;
	}
}

/* Order by the name up to ':' (flags may change, the order does not). */
static int
base_cmp(const char *x, const char *y)
{
	const unsigned char *p = (const void *)x, *q = (const void *)y;
	int cx, cy;

	for (;; p++, q++) {
		cx = *p == ':' ? 0 : *p;
		cy = *q == ':' ? 0 : *q;
		if (cx != cy || cx == 0)
			return cx - cy;
	}
}

/* A decimal number of at most 20 digits ending at the octet end, which
 * must be stop.  The pointer after stop, or NULL. */
static const char *
cache_number(const char *p, const char *end, char stop, uint64_t *v)
{
	const char *start = p;
	uint64_t n = 0, d;

	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		d = (uint64_t)(*p - '0');
		if (n > (UINT64_MAX - d) / 10)
			return NULL;
		n = n * 10 + d;
	}
	if (p == start || p == end || *p != stop)
		return NULL;
	*v = n;
	return p + 1;
}

/*
 * The fields of a cache line "name TAB inode TAB size LF" of len octets:
 * the name is NUL-terminated where its TAB was.  Its end, or NULL when the
 * line is malformed.
 */
static char *
cache_fields(char *line, size_t len, uint64_t *ino, uint64_t *size)
{
	const char *end = line + len, *p;
	char *tab;

	if ((tab = memchr(line, '\t', len)) == NULL || tab == line ||
	    (p = cache_number(tab + 1, end, '\t', ino)) == NULL ||
	    cache_number(p, end, '\n', size) == NULL)
		return NULL;
	*tab = '\0';
	return tab;
}

/*
 * Take the sizes from one cache line of len octets, by a merge: the
 * messages from *ip on and the lines are both in message order.  0, or
 * -1 when the line is malformed.
 */
static int
cache_line(struct store *st, char *line, size_t len, size_t *ip)
{
	struct cache_key key;
	uint64_t ino, size;
	size_t i, k;
	int c;

	if (cache_fields(line, len, &ino, &size) == NULL)
		return -1;
	key.name = line;
	key.len = store_maildir_colon(line);
	line[key.len] = '\0';
	key.cut = name_cut(line);
	key.time = name_time(line);
	for (i = *ip, c = -1; i < st->count &&
	    (c = msg_vs(st, &st->msgs[i], &key)) < 0; i++)
		;
	*ip = i;
	NAME_AHEAD(st, i + AHEAD);
	for (k = i; c == 0; ) {
		/* Another inode is another file now: measured again. */
		if (st->msgs[k].ino == (uint32_t)ino) {
			st->msgs[k].size = size;
			st->msgs[k].flags |= MSG_SIZED;
		}
		c = ++k < st->count ? msg_vs(st, &st->msgs[k], &key) : 1;
	}
	return 0;
}

/*
 * One cache line of len octets as the next message, when the cache is
 * the listing.  0, or -1 when it is malformed, names no file of cur/ or
 * is not after the one before.  A name longer than NAME_MAX is none, and
 * maildir_add() has room for no more.
 */
static int
cache_entry(struct store *st, char *line, size_t len)
{
	char err[64];
	uint64_t ino, size;
	struct msg *m;
	char *end;

	if ((end = cache_fields(line, len, &ino, &size)) == NULL ||
	    end - line > NAME_MAX ||
	    line[0] == '.' || memchr(line, '/', (size_t)(end - line)) ||
	    memchr(line, '\0', (size_t)(end - line)) ||
	    maildir_add(st, line, ino, err, sizeof(err)) != 0)
		return -1;
	m = &st->msgs[st->count - 1];
	if (st->count > 1 && msg_cmp(st, m - 1, m) >= 0)
		return -1;
	m->size = size;
	m->flags |= MSG_SIZED;
	return 0;
}

/* n lower-case hex digits at p.  0, or -1. */
static int
hex_field(const char *p, size_t n, uint64_t *v)
{
	*v = 0;
	for (; n > 0; p++, n--) {
		if (*p >= '0' && *p <= '9')
			*v = *v << 4 | (uint64_t)(*p - '0');
		else if (*p >= 'a' && *p <= 'f')
			*v = *v << 4 | (uint64_t)(*p - 'a' + 10);
		else
			return -1;
	}
	return 0;
}

/*
 * The header line of len octets (LF included): the checksum to expect
 * and the stamp ({0, 0} for version 3).  The version, or -1.
 */
static int
cache_head(const char *line, size_t len, uint64_t *sum,
    struct timespec *stamp)
{
	static const char magic3[] = CACHE_MAGIC_3 " ";
	static const char magic[] = CACHE_MAGIC " ";
	uint64_t sec, nsec;

	stamp->tv_sec = 0;
	stamp->tv_nsec = 0;
	if (len == sizeof(magic3) - 1 + 16 + 1 &&
	    memcmp(line, magic3, sizeof(magic3) - 1) == 0 &&
	    hex_field(line + sizeof(magic3) - 1, 16, sum) == 0)
		return 3;
	if (len != CACHE_HEAD || memcmp(line, magic, sizeof(magic) - 1) != 0 ||
	    hex_field(line + sizeof(magic) - 1, 16, sum) == -1 ||
	    line[sizeof(magic) - 1 + 16] != ' ' ||
	    hex_field(line + sizeof(magic) + 16, 16, &sec) == -1 ||
	    hex_field(line + sizeof(magic) + 32, 8, &nsec) == -1 ||
	    sec > INT64_MAX || nsec > 999999999)
		return -1;
	stamp->tv_sec = (time_t)sec;
	stamp->tv_nsec = (long)nsec;
	return 4;
}

/*
 * Read the cache.  To merge (list == 0): give the messages read from cur/
 * the sizes it knows.  To list: the messages are its lines, if its stamp
 * is st->listed, else nothing is read.  Returns the number of lines, or
 * -1 when the cache is missing, damaged, of another version or, to list,
 * stale: then nothing is taken from it.  A damaged cache is never half
 * trusted: when its checksum does not match, every size (or message)
 * taken from it is dropped again.  *stamp: the stamp it has.
 */
static long
cache_read(struct store *st, int list, struct timespec *stamp)
{
	char buf[CACHE_BUF];
	uint64_t sum = CACHE_SUM_INIT, want = 0;
	size_t have = 0, pos, len, i = 0, k;
	long entries = -1;	/* -1 until the header is read */
	ssize_t n = 0;
	struct stat sb;
	char *lf;
	int fd, bad = 0, version = 0;

	stamp->tv_sec = 0;
	stamp->tv_nsec = 0;
	fd = openat(st->dirfd, CACHE_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return -1;
	/* The names are in the file; lines are 40 octets and more. */
	if (list && fstat(fd, &sb) == 0 && sb.st_size > 0 &&
	    (uint64_t)sb.st_size < NAMES_MAX)
		(void)store_reserve(st, (size_t)sb.st_size / 40,
		    (size_t)sb.st_size);
	while (!bad && (n = stream_read(fd, buf + have,
	    sizeof(buf) - have)) > 0) {
		have += (size_t)n;
		for (pos = 0; !bad && (lf = memchr(buf + pos, '\n',
		    have - pos)) != NULL; pos += len) {
			len = (size_t)(lf - (buf + pos)) + 1;
			if (entries == -1) {
				version = cache_head(buf + pos, len, &want,
				    stamp);
				bad = version == -1 || (list &&
				    (version != 4 || stamp->tv_sec == 0 ||
				    stamp->tv_sec != st->listed.tv_sec ||
				    stamp->tv_nsec != st->listed.tv_nsec));
				entries = 0;
				continue;
			}
			sum = cache_sum(sum, buf + pos, len);
			entries++;
			bad = (list ? cache_entry(st, buf + pos, len) :
			    cache_line(st, buf + pos, len, &i)) == -1;
		}
		/* The start of a line cut by the buffer's end moves to the
		 * front; a line longer than the buffer is damage. */
		memmove(buf, buf + pos, have - pos);
		have -= pos;
		bad |= have == sizeof(buf);
	}
	if (version == 4) {
		char t[16 + 8 + 1];

		(void)fmt_buf(t, sizeof(t), "%016llx%08lx",
		    (unsigned long long)stamp->tv_sec,
		    (unsigned long)stamp->tv_nsec);
		sum = cache_sum(sum, t, 16 + 8);
	}
	bad |= n == -1 || have != 0 || entries == -1;
	close(fd);
	if (bad || sum != want) {
		/* Not one size from a damaged cache is kept. */
		if (list) {
			st->count = 0;
			st->names_len = 0;
		}
		for (k = 0; k < st->count; k++)
			st->msgs[k].flags &= (unsigned char)~MSG_SIZED;
		return -1;
	}
	return entries;
}

/*
 * The stamp for a cache of the messages read from cur/: its mtime before
 * it was read, unless that was less than CACHE_TRUST seconds old or some
 * file there was left out.  {0, 0} if not.
 */
static struct timespec
cache_stamp(const struct store *st)
{
	struct timespec none = { 0, 0 };

	return st->skipped > 0 ? none : st->listed;
}

/*
 * Write the cache of the sizes of all messages, atomically: the lines,
 * then the header with their checksum in front, then the rename.
 */
static int
cache_write(struct store *st)
{
	char tmp[64], head[CACHE_HEAD + 1], buf[NAME_MAX + 1], t[16 + 8 + 1];
	char out[CACHE_BUF];
	struct timespec stamp = cache_stamp(st);
	const char *name;
	uint64_t sum = CACHE_SUM_INIT;
	size_t i, have, len, n;
	int fd, r = 0;

	(void)fmt_buf(tmp, sizeof(tmp), "%s.%ld", CACHE_NAME, (long)getpid());
	fd = openat(st->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (fd == -1)
		return -1;
	memset(out, '0', CACHE_HEAD);	/* the header's place, written last */
	have = CACHE_HEAD;
	for (i = 0; i < st->count && !r; i++) {
		NAME_AHEAD(st, i + AHEAD);
		name = msg_name(st, &st->msgs[i], buf);
		len = strcspn(name, "\t\n");
		if (name[len] != '\0') {
			/* Measured again at the next login, which reads
			 * cur/ for it. */
			stamp.tv_sec = 0;
			stamp.tv_nsec = 0;
			continue;
		}
		/* The line: name TAB inode TAB size LF, at most NAME_MAX
		 * + 1 + 10 + 1 + 20 + 1 octets. */
		if (sizeof(out) - have < NAME_MAX + 33) {
			r = cache_put(fd, out, have);
			have = 0;
		}
		n = have;
		memcpy(out + n, name, len);
		n += len;
		out[n++] = '\t';
		n += decimal(st->msgs[i].ino, out + n);
		out[n++] = '\t';
		n += decimal(st->msgs[i].size, out + n);
		out[n++] = '\n';
		sum = cache_sum(sum, out + have, n - have);
		have = n;
	}
	(void)fmt_buf(t, sizeof(t), "%016llx%08lx",
	    (unsigned long long)stamp.tv_sec, (unsigned long)stamp.tv_nsec);
	sum = cache_sum(sum, t, 16 + 8);
	n = (size_t)fmt_buf(head, sizeof(head), CACHE_MAGIC " %016llx %s\n",
	    (unsigned long long)sum, t);
	if (r == 0)
		r = cache_put(fd, out, have);
	if (r == 0 && (n != CACHE_HEAD ||
	    pwrite(fd, head, CACHE_HEAD, 0) != (ssize_t)CACHE_HEAD))
		r = -1;
	if (close(fd) == -1)
		r = -1;
	if (r == -1 || renameat(st->dirfd, tmp, st->dirfd, CACHE_NAME) == -1) {
		(void)unlinkat(st->dirfd, tmp, 0);
		return -1;
	}
	return 0;
}

/* Write n octets at p to fd.  0 or -1. */
static int
cache_put(int fd, const char *p, size_t n)
{
	ssize_t k;

	while (n > 0) {
		if ((k = write(fd, p, n)) <= 0) {
			if (k == -1 && errno == EINTR)
				continue;
			return -1;
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* FNV-1a's step on eight octets at a time, with the high half folded
 * down: enough to tell a damaged cache from a good one, and no octet
 * loop to wait on. */
static uint64_t
cache_sum(uint64_t h, const char *p, size_t n)
{
	uint64_t w;

	for (; n >= sizeof(w); p += sizeof(w), n -= sizeof(w)) {
		memcpy(&w, p, sizeof(w));
		h = (h ^ w) * 0x100000001b3ULL;
		h ^= h >> 32;
	}
	for (; n > 0; p++, n--) {
		h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
		h ^= h >> 32;
	}
	return h;
}

/*
 * Move and size the messages that need it, put those from new/, which
 * follow the old ones of cur/, in their places, leave out those that
 * cannot be served, and write the cache unless it says just what was
 * found: it had entries lines and stamp (cache_read()).  0 or -1.
 */
static int
maildir_sizes(struct store *st, int newfd, size_t old, long entries,
    const struct timespec *stamp, char *err, size_t errlen)
{
	char buf[NAME_MAX + 1];
	struct timespec want;
	size_t i, kept = 0, misses = 0;
	int e;

	maildir_measure(st, newfd);
	if (st->count > old) {
		/* Mostly later than all in cur/: sorted as they are. */
		msg_sort(st, st->msgs + old, st->count - old, SORT_DEPTH);
		if (old > 0 &&
		    msg_cmp(st, &st->msgs[old], &st->msgs[old - 1]) < 0)
			msg_sort(st, st->msgs, st->count, SORT_DEPTH);
	}
	for (i = 0; i < st->count; i++) {
		struct msg *m = &st->msgs[i];

		if (m->flags & MSG_UNSIZED) {
			e = (int)m->size;
			if (e == ENOENT)
				continue;	/* gone: not served */
			if (e == ELOOP || e == EPERM || e == EACCES) {
				st->skipped++;	/* not served */
				continue;
			}
			log_errbuf(err, errlen, "cur/%s: %s",
			    msg_name(st, m, buf), strerror(e));
			return -1;
		}
		if (!(m->flags & MSG_SIZED))
			misses++;
		st->msgs[kept++] = *m;
	}
	want = cache_stamp(st);
	if (misses > 0 || (entries != (long)kept && !(kept == 0 &&
	    entries == -1)) || (entries >= 0 &&
	    (stamp->tv_sec != want.tv_sec || stamp->tv_nsec != want.tv_nsec))) {
		st->count = kept;
		(void)cache_write(st);	/* a cache not written costs time only */
	}
	st->count = kept;
	return 0;
}

/*
 * Move and size every message that needs it, in one or two threads (see
 * SIZE_BATCH).  The first thread starts at the back, where the messages
 * from new/ are.
 */
static void
maildir_measure(struct store *st, int newfd)
{
	struct sizer z;
	sigset_t all, old;
	pthread_t t;
	size_t i, todo = 0;
	int two = 0;

	z.st = st;
	z.newfd = newfd;
	z.batches = (st->count + SIZE_BATCH - 1) / SIZE_BATCH;
	atomic_init(&z.taken, 0);
	for (i = 0; i < st->count; i++)
		todo += (st->msgs[i].flags & (MSG_SIZED | MSG_NEW)) !=
		    MSG_SIZED;
	if (todo == 0)
		return;		/* the cache gave every size */
	if (todo >= SIZE_THREAD_MIN && sysconf(_SC_NPROCESSORS_ONLN) > 1) {
		/* Signals stay with the main thread. */
		(void)sigfillset(&all);
		if (pthread_sigmask(SIG_BLOCK, &all, &old) == 0) {
			two = pthread_create(&t, NULL, sizer_thread, &z) == 0;
			(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
		}
	}
	sizer_run(&z, 1);
	if (two)
		(void)pthread_join(t, NULL);
}

/* Take batches from the back or the front until none is left. */
static void
sizer_run(struct sizer *z, int back)
{
	struct store *st = z->st;
	size_t nth, b, i, end;

	for (nth = 0; atomic_fetch_add(&z->taken, 1) < z->batches; nth++) {
		b = back ? z->batches - 1 - nth : nth;
		i = b * SIZE_BATCH;
		end = st->count - i > SIZE_BATCH ? i + SIZE_BATCH : st->count;
		for (; i < end; i++) {
			NAME_AHEAD(st, i + AHEAD);
			maildir_size_one(st, z->newfd, &st->msgs[i]);
		}
	}
}

/*
 * Move m to cur/ if it is in new/, then size it unless the cache did.
 * One that cannot be moved (another process may have moved it first)
 * stays where it is, and is served from a later login.  A failed size
 * leaves its errno in m (MSG_UNSIZED), for maildir_sizes().
 */
static void
maildir_size_one(struct store *st, int newfd, struct msg *m)
{
	char buf[NAME_MAX + 1], from[NAME_MAX + 1];
	const char *name = msg_name(st, m, buf);
	size_t len;

	if (m->flags & MSG_NEW) {
		m->flags &= (unsigned char)~MSG_NEW;
		len = strlen(name) - 3;		/* less its ":2," */
		memcpy(from, name, len);
		from[len] = '\0';
		if (maildir_rename(newfd, from, st->curfd, name) == -1) {
			m->size = ENOENT;
			m->flags |= MSG_UNSIZED;
			return;
		}
	}
	if (!(m->flags & MSG_SIZED) &&
	    maildir_msg_size(st, name, &m->size) == -1) {
		m->size = (uint64_t)errno;
		m->flags |= MSG_UNSIZED;
	}
}

static void *
sizer_thread(void *z)
{
	sizer_run(z, 0);
	return NULL;
}

/*
 * Open, lock and index the mbox at path.  The session keeps a flock on
 * it; the MTA's locks (dotlock, fcntl) are held only while it is read
 * here and while it is rewritten at UPDATE, so mail can be delivered
 * meanwhile.  A missing file is an empty mailbox.
 */
static enum store_result
mbox_open(struct store *st, const char *path, char *err, size_t errlen)
{
	enum store_result r = STORE_OK;
	struct stat sb;
	size_t i;
	int dotlocked, n;

	st->mbox = 1;
	n = fmt_buf(st->mpath, sizeof(st->mpath), "%s", path);
	if (n < 0 || (size_t)n >= sizeof(st->mpath))
		return STORE_PERM;
	st->mfd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (st->mfd == -1 && errno == EACCES)
		st->mfd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (st->mfd == -1) {
		if (errno == ENOENT)
			return STORE_OK;	/* no mail yet */
		log_errbuf(err, errlen, "%s: %s", path, strerror(errno));
		return store_errno_result(errno);
	}
	if (fstat(st->mfd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		log_errbuf(err, errlen, "%s is not a regular file", path);
		return STORE_PERM;
	}
	if (sb.st_uid != st->euid) {
		log_errbuf(err, errlen, "%s is owned by uid %lu, not by the "
		    "mail user", path, (unsigned long)sb.st_uid);
		return STORE_PERM;
	}
	if (flock(st->mfd, LOCK_EX | LOCK_NB) == -1) {
		log_errbuf(err, errlen, "mailbox is locked");
		return errno == EWOULDBLOCK ? STORE_INUSE : STORE_TEMP;
	}
	if (mbox_lock(path, st->mfd, &dotlocked, err, errlen) == -1)
		return STORE_TEMP;
	if (mbox_recover(st->mfd, path, st->home, err, errlen) == -1 ||
	    fstat(st->mfd, &sb) == -1)
		r = STORE_TEMP;
	else {
		st->snap = sb.st_size;
		switch (mbox_scan(st->mfd, st->snap, &st->idx)) {
		case 0:
			break;
		case 1:
			log_errbuf(err, errlen, "%s is not an mbox (no From_ "
			    "line at its start); left as it is", path);
			r = STORE_PERM;
			break;
		default:
			log_errbuf(err, errlen, "%s: %s", path,
			    strerror(errno));
			r = STORE_TEMP;
		}
	}
	mbox_unlock(path, st->mfd, dotlocked);
	if (r != STORE_OK)
		return r;
	if (st->idx.n > 0 && (st->msgs = calloc(st->idx.n,
	    sizeof(*st->msgs))) == NULL) {
		log_errbuf(err, errlen, "out of memory");
		return STORE_TEMP;
	}
	/* The UIDLs stay in the index (store_uidl()). */
	for (i = 0; i < st->idx.n; i++) {
		st->msgs[i].size = st->idx.v[i].size;
		st->msgs[i].uidl_len = (unsigned char)strlen(st->idx.v[i].uidl);
	}
	st->count = st->cap = st->idx.n;
	return STORE_OK;
}

enum store_result
store_open(struct store **stp, const char *path,
    const struct store_options *opts, char *err, size_t errlen)
{
	struct store *st;
	enum store_result r;

	*stp = NULL;
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		log_errbuf(err, errlen, "out of memory");
		return STORE_TEMP;
	}
	st->dirfd = st->curfd = st->lockfd = st->mfd = -1;
	st->euid = geteuid();
	if (opts != NULL && opts->home != NULL)
		(void)fmt_buf(st->home, sizeof(st->home), "%s", opts->home);
	if (strncmp(path, "mbox:", 5) == 0) {
		if ((r = mbox_open(st, path + 5, err, errlen)) != STORE_OK) {
			store_close(st);
			return r;
		}
		*stp = st;
		return STORE_OK;
	}
	if (opts != NULL && opts->expire_days >= 0)
		st->expire_before = time(NULL) - opts->expire_days * 86400L;
	if ((r = maildir_open(st, path, err, errlen)) == STORE_OK &&
	    (r = maildir_lock(st, err, errlen)) == STORE_INUSE &&
	    opts != NULL && opts->takeover > 0)
		r = maildir_takeover(st, opts->takeover, err, errlen);
	if (r == STORE_OK && opts != NULL && opts->takeover > 0) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
		    .l_start = 0, .l_len = 1 };

		/* The record first, so no newcomer finds it stale. */
		st->holder = fcntl(st->lockfd, F_SETLK, &fl) == 0 &&
		    holder_write(st, monotonic_now()) == 0;
	}
	if (r != STORE_OK ||
	    (r = maildir_login_delay(st, opts ? opts->login_delay : 0, err,
	    errlen)) != STORE_OK ||
	    (r = maildir_scan(st, err, errlen)) != STORE_OK ||
	    (r = maildir_uidl_from(st, path, opts ? opts->uidl_from :
	    UIDL_OWN, err, errlen)) != STORE_OK) {
		(void)quota_write(st);	/* what expiry removed */
		store_close(st);
		return r;
	}
	(void)quota_write(st);
	*stp = st;
	return STORE_OK;
}

size_t
store_expired(const struct store *st)
{
	return st->expired;
}

size_t
store_skipped(const struct store *st)
{
	return st->skipped;
}

pid_t
store_taken_from(const struct store *st)
{
	return st->taken_from;
}

void
store_activity(struct store *st)
{
	time_t now;

	if (!st->holder || (now = monotonic_now()) == st->active)
		return;
	if (holder_write(st, now) == -1)
		st->holder = 0;	/* newcomers will see it stale: no harm
				   beyond an idle-looking session */
}

size_t
store_count(const struct store *st)
{
	return st->count;
}

uint64_t
store_size(const struct store *st, size_t i)
{
	return st->msgs[i].size;
}

const char *
store_uidl(struct store *st, size_t i, size_t *len)
{
	const struct msg *m = &st->msgs[i];
	const char *p;
	size_t k;

	*len = m->uidl_len;
	if (st->mbox)
		return st->idx.v[i].uidl;
	NAME_AHEAD(st, i + AHEAD);
	p = msg_stored(st, m);
	if (m->flags & MSG_UIDL_AFTER)
		return p + strlen(p) + 1;
	if (!(m->flags & MSG_TIME_CUT))
		return p;
	/* The first uidl_len octets of the name, which has them all. */
	k = decimal(m->time, st->namebuf);
	if (k < *len)
		memcpy(st->namebuf + k, p, *len - k);
	return st->namebuf;
}

int
store_seen(const struct store *st, size_t i)
{
	return (st->msgs[i].flags & MSG_SEEN) != 0;
}

void
store_set_deleted(struct store *st, size_t i, int on)
{
	if (on)
		st->msgs[i].flags |= MSG_DELETED;
	else
		st->msgs[i].flags &= (unsigned char)~MSG_DELETED;
}

int
store_deleted(const struct store *st, size_t i)
{
	return (st->msgs[i].flags & MSG_DELETED) != 0;
}

void
store_set_retrieved(struct store *st, size_t i)
{
	st->msgs[i].flags |= MSG_RETRIEVED;
}

/*
 * An IMAP server on the same Maildir may have renamed the message to
 * change its flags: find it again by its unique part.  0 or -1.
 */
static int
maildir_find_renamed(struct store *st, struct msg *m)
{
	char buf[NAME_MAX + 2 + UIDL_MAX + 1], old[NAME_MAX + 1];
	const char *name = msg_name(st, m, old), *id;
	size_t base = store_maildir_base(name), len;
	struct dirent *de;
	int r = -1;
	DIR *dir;

	if ((dir = opendir_at(st->curfd)) == NULL)
		return -1;
	while ((de = readdir(dir)) != NULL) {
		if (strncmp(de->d_name, name, base) == 0 &&
		    store_maildir_base(de->d_name) == base &&
		    strcmp(de->d_name, name) != 0) {
			/* The UIDL kept after the name, if any, moves with
			 * it. */
			len = strlen(de->d_name);
			memcpy(buf, de->d_name, len + 1);
			if (m->flags & MSG_UIDL_AFTER) {
				id = msg_stored(st, m);
				memcpy(buf + len + 1, id + strlen(id) + 1,
				    m->uidl_len);
				len += 1 + m->uidl_len;
			}
			r = msg_set_name(st, m, buf, len);
			break;
		}
	}
	closedir(dir);
	if (r == -1)
		errno = ENOENT;
	return r;
}

int
store_msg_open(struct store *st, size_t i, char *err, size_t errlen)
{
	struct msg *m = &st->msgs[i];
	char buf[NAME_MAX + 1];
	const char *name;
	struct stat sb;
	int fd;

	if (st->mbox) {
		if ((fd = dup(st->mfd)) == -1)
			log_errbuf(err, errlen, "dup: %s", strerror(errno));
		return fd;
	}

	name = msg_name(st, m, buf);
	fd = msg_openat(st->curfd, name);
	if (fd == -1 && errno == ENOENT && maildir_find_renamed(st, m) == 0) {
		name = msg_name(st, m, buf);
		fd = msg_openat(st->curfd, name);
	}
	if (fd == -1) {
		log_errbuf(err, errlen, "cur/%s: %s", name, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		log_errbuf(err, errlen, "cur/%s: not a regular file", name);
		close(fd);
		errno = EINVAL;
		return -1;
	}
	if (sb.st_uid != st->euid) {
		log_errbuf(err, errlen, "cur/%s: owned by uid %lu, not by the "
		    "mail user", name, (unsigned long)sb.st_uid);
		close(fd);
		errno = EPERM;
		return -1;
	}
	return fd;
}

int
store_msg_send(struct store *st, size_t i, int fd, long body_lines,
    stream_emit emit, stream_reserve reserve, stream_commit commit,
    void *ctx)
{
	if (st->mbox)
		return mbox_send(fd, &st->idx.v[i], body_lines, emit, ctx);
	if (body_lines < 0)
		return stream_fd_direct(fd, emit, reserve, commit, ctx);
	return stream_fd(fd, body_lines, emit, ctx);
}

/*
 * Maildir++ quota: when the Maildir has a maildirsize file (kept by the
 * MDA, Dovecot, Courier, maildrop), the messages removed are subtracted
 * from it with one appended line "-BYTES -COUNT", as the Maildir++
 * specification asks of every process that removes mail, so the quota
 * stays right without a recalculation.  Without the file, nothing.
 * -1 when the line could not be written: the MDA's next recalculation
 * puts the quota right, and no mail is at stake.
 */
static int
quota_write(struct store *st)
{
	char line[64];
	int fd, n, r = 0;

	if (st->quota_count > 0 && (fd = openat(st->dirfd, QUOTA_NAME,
	    O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC)) != -1) {
		n = fmt_buf(line, sizeof(line), "-%lld -%lld\n",
		    st->quota_bytes, st->quota_count);
		/* One write: appends by other processes do not mix in. */
		if (n <= 0 || (size_t)n >= sizeof(line) ||
		    write(fd, line, (size_t)n) != n)
			r = -1;
		close(fd);
	}
	st->quota_bytes = st->quota_count = 0;
	return r;
}

/* UPDATE for an mbox: rewrite it without the deleted messages. */
static int
mbox_update(struct store *st, size_t *failed, char *err, size_t errlen)
{
	unsigned char *deleted;
	size_t i;
	int dotlocked, r;

	*failed = 0;
	if (st->idx.n == 0)
		return 0;
	if ((deleted = calloc(st->idx.n, 1)) == NULL) {
		log_errbuf(err, errlen, "out of memory");
		*failed = st->idx.n;
		return -1;
	}
	for (i = 0; i < st->idx.n; i++) {
		deleted[i] = (st->msgs[i].flags & MSG_DELETED) != 0;
		*failed += deleted[i];
	}
	if (*failed == 0) {
		free(deleted);
		return 0;	/* nothing to rewrite */
	}
	r = mbox_lock(st->mpath, st->mfd, &dotlocked, err, errlen);
	if (r == 0) {
		r = mbox_commit(st->mfd, st->mpath, st->home, &st->idx,
		    deleted, st->snap, err, errlen);
		mbox_unlock(st->mpath, st->mfd, dotlocked);
	}
	free(deleted);
	if (r == 0)
		*failed = 0;
	return r;
}

/* The name with the S flag added, in ASCII order.  0, or -1 if none. */
static int
maildir_seen_name(const char *name, char *buf, size_t len)
{
	const char *info = strstr(name, ":2,"), *p;
	int n;

	if (info == NULL) {
		if (strchr(name, ':') != NULL)
			return -1;	/* an info part we do not know */
		n = fmt_buf(buf, len, "%s:2,S", name);
	} else {
		if (strchr(info + 3, 'S') != NULL)
			return -1;	/* seen already */
		for (p = info + 3; *p != '\0' && *p < 'S'; p++)
			;
		n = fmt_buf(buf, len, "%.*sS%s", (int)(p - name), name, p);
	}
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int
store_commit(struct store *st, size_t *failed, char *err, size_t errlen)
{
	static const struct timespec retrieved[2] = {
		{ 0, UTIME_NOW }, { 0, UTIME_OMIT }
	};
	char seen[NAME_MAX + 1], buf[NAME_MAX + 1];
	const char *name;
	struct stat sb;
	struct msg *m;
	size_t i, changed = 0;
	int r, quota, sized;

	if (st->mbox)
		return mbox_update(st, failed, err, errlen);
	*failed = 0;
	quota = faccessat(st->dirfd, QUOTA_NAME, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
	for (i = 0; i < st->count; i++) {
		m = &st->msgs[i];
		if (!(m->flags & (MSG_DELETED | MSG_RETRIEVED)))
			continue;
		name = msg_name(st, m, buf);
		if (m->flags & MSG_DELETED) {
			sized = quota && fstatat(st->curfd, name, &sb,
			    AT_SYMLINK_NOFOLLOW) == 0;
			r = unlinkat(st->curfd, name, 0);
			if (r == -1 && errno == ENOENT &&
			    maildir_find_renamed(st, m) == 0) {
				name = msg_name(st, m, buf);
				sized = quota && fstatat(st->curfd, name,
				    &sb, AT_SYMLINK_NOFOLLOW) == 0;
				r = unlinkat(st->curfd, name, 0);
			}
			if (r == 0)
				changed++;
			if (r == 0 && sized) {
				st->quota_bytes += sb.st_size;
				st->quota_count++;
			}
			/* Gone already (another process): as asked. */
			if (r == -1 && errno != ENOENT) {
				log_errbuf(err, errlen, "unlink cur/%s: %s",
				    name, strerror(errno));
				(*failed)++;
			}
		} else if (m->flags & MSG_RETRIEVED) {
			/* Best effort: a missing S flag loses nothing.  The
			 * atime says when it was retrieved, for EXPIRE. */
			if (maildir_seen_name(name, seen, sizeof(seen)) == 0 &&
			    renameat(st->curfd, name, st->curfd, seen) == 0) {
				name = seen;
				changed++;
			}
			(void)utimensat(st->curfd, name, retrieved, 0);
		}
	}
	(void)quota_write(st);
	/* What was removed or renamed is on disk before +OK; a session
	 * that changed nothing in cur/ waits for no disk. */
	if (changed > 0 && fsync(st->curfd) == -1) {
		log_errbuf(err, errlen, "fsync cur/: %s", strerror(errno));
		return -1;
	}
	return *failed == 0 ? 0 : -1;
}

void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	free(st->names);
	free(st->msgs);
	mbox_index_free(&st->idx);
	if (st->mfd != -1)
		close(st->mfd);
	if (st->lockfd != -1)
		close(st->lockfd);
	if (st->curfd != -1)
		close(st->curfd);
	if (st->dirfd != -1)
		close(st->dirfd);
	free(st);
}
