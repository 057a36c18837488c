/*
 * faultshim.c: make chosen libc calls fail, for the fault tests
 * (tests/fault_e2e.py).  Loaded with LD_PRELOAD; configured by the
 * environment:
 *
 *   FAULT_CALL   the calls to fail, separated by '|' or ',': open,
 *                openat, read, pread, write, pwrite, fsync, fdatasync,
 *                ftruncate, rename, renameat, unlink, unlinkat,
 *                utimensat, futimens, mkdir, mkdirat, readdir.  Each name
 *                covers its 64-bit and _FORTIFY_SOURCE (__*_chk) forms.
 *   FAULT_ERRNO  the errno they fail with: a name (ENOSPC, EIO, EROFS,
 *                EACCES, EPERM, ENOENT, EDQUOT, EMFILE, ENOMEM, EXDEV,
 *                EBUSY, EINTR, EAGAIN) or a number; EIO by default.
 *   FAULT_AFTER  fail the Nth matching call and every later one (1 by
 *                default: all of them).
 *   FAULT_TIMES  fail at most this many calls (no limit by default).
 *   FAULT_PATH   only calls on a path containing this substring: the
 *                path given (joined to the directory of the dirfd for
 *                the *at calls) or, for calls taking a descriptor, what
 *                /proc/self/fd/N names.
 *   FAULT_FDS    "all" lets calls on descriptors 0, 1 and 2 fail too;
 *                by default they never do, so the client still gets its
 *                replies and the log its lines.
 *
 * Every failure injected is reported on stderr as a line starting with
 * "faultshim[PID]: ", so that a test can tell that its fault happened.
 */
#define _GNU_SOURCE
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum call {
	C_OPEN, C_OPENAT, C_READ, C_PREAD, C_WRITE, C_PWRITE, C_FSYNC,
	C_FDATASYNC, C_FTRUNCATE, C_RENAME, C_RENAMEAT, C_UNLINK, C_UNLINKAT,
	C_UTIMENSAT, C_FUTIMENS, C_MKDIR, C_MKDIRAT, C_READDIR, C_NCALLS
};

static const char *const call_names[C_NCALLS] = {
	"open", "openat", "read", "pread", "write", "pwrite", "fsync",
	"fdatasync", "ftruncate", "rename", "renameat", "unlink", "unlinkat",
	"utimensat", "futimens", "mkdir", "mkdirat", "readdir"
};

static const struct {
	const char	*name;
	int		 value;
} errnos[] = {
	{ "ENOSPC", ENOSPC }, { "EIO", EIO }, { "EROFS", EROFS },
	{ "EACCES", EACCES }, { "EPERM", EPERM }, { "ENOENT", ENOENT },
	{ "EDQUOT", EDQUOT }, { "EMFILE", EMFILE }, { "ENOMEM", ENOMEM },
	{ "EXDEV", EXDEV }, { "EBUSY", EBUSY }, { "EINTR", EINTR },
	{ "EAGAIN", EAGAIN }
};

static int		 inited;
static int		 selected[C_NCALLS];
static int		 fault_errno = EIO;
static unsigned long	 fault_after = 1;
static unsigned long	 fault_times;	/* 0: no limit */
static const char	*fault_path;
static int		 fault_std_fds;
static atomic_ulong	 seen, failed;	/* pop3d may size messages in
					   two threads */

static void
init(void)
{
	const char *v, *p;
	size_t i, n;
	char *end;

	if (inited)
		return;
	inited = 1;
	if ((v = getenv("FAULT_CALL")) == NULL)
		return;
	for (p = v; *p != '\0'; p += n) {
		p += strspn(p, "|, ");
		n = strcspn(p, "|, ");
		for (i = 0; i < C_NCALLS; i++)
			if (strlen(call_names[i]) == n &&
			    strncmp(call_names[i], p, n) == 0)
				selected[i] = 1;
	}
	if ((v = getenv("FAULT_ERRNO")) != NULL && *v != '\0') {
		for (i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++)
			if (strcmp(errnos[i].name, v) == 0)
				fault_errno = errnos[i].value;
		if (*v >= '0' && *v <= '9')
			fault_errno = (int)strtol(v, NULL, 10);
	}
	if ((v = getenv("FAULT_AFTER")) != NULL && *v != '\0') {
		fault_after = strtoul(v, &end, 10);
		if (fault_after == 0)
			fault_after = 1;
	}
	if ((v = getenv("FAULT_TIMES")) != NULL && *v != '\0')
		fault_times = strtoul(v, NULL, 10);
	if ((v = getenv("FAULT_PATH")) != NULL && *v != '\0')
		fault_path = v;
	if ((v = getenv("FAULT_FDS")) != NULL && strcmp(v, "all") == 0)
		fault_std_fds = 1;
}

static void *
real(const char *name)
{
	void *f = dlsym(RTLD_NEXT, name);

	if (f == NULL) {
		static const char msg[] = "faultshim: missing libc symbol\n";

		(void)!write(2, msg, sizeof(msg) - 1);
		abort();
	}
	return f;
}

/* What descriptor fd names, or "" when it cannot be told. */
static void
fd_path(int fd, char *buf, size_t len)
{
	char link[64];
	ssize_t n;

	(void)snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, buf, len - 1);
	buf[n > 0 ? n : 0] = '\0';
}

/* The path of an *at call, joined to its directory. */
static void
at_path(int dirfd, const char *path, char *buf, size_t len)
{
	size_t n;

	buf[0] = '\0';
	if (path == NULL)
		return;
	if (path[0] != '/' && dirfd != AT_FDCWD)
		fd_path(dirfd, buf, len);
	n = strlen(buf);
	(void)snprintf(buf + n, len - n, "%s%s", n > 0 ? "/" : "", path);
}

/*
 * Whether this call fails: fd is the descriptor it works on (-1: none)
 * and path what it names (NULL: ask /proc for fd's).
 */
static int
fault(enum call c, int fd, const char *path)
{
	char buf[4096], msg[4400];
	unsigned long nth;
	int n;

	init();
	if (!selected[c])
		return 0;
	if (fd >= 0 && fd <= 2 && !fault_std_fds)
		return 0;
	if (path == NULL && fault_path != NULL) {
		fd_path(fd, buf, sizeof(buf));
		path = buf;
	}
	if (fault_path != NULL && strstr(path, fault_path) == NULL)
		return 0;
	if ((nth = atomic_fetch_add(&seen, 1) + 1) < fault_after)
		return 0;
	if (fault_times != 0 && atomic_fetch_add(&failed, 1) >= fault_times)
		return 0;
	if (path == NULL) {
		fd_path(fd, buf, sizeof(buf));
		path = buf;
	}
	n = snprintf(msg, sizeof(msg), "faultshim[%ld]: %s %s: %s (call %lu)\n",
	    (long)getpid(), call_names[c], path, strerror(fault_errno), nth);
	if (n > 0) {
		ssize_t (*w)(int, const void *, size_t) = real("write");

		(void)!w(2, msg, (size_t)n < sizeof(msg) ? (size_t)n :
		    sizeof(msg) - 1);
	}
	errno = fault_errno;
	return 1;
}

#define MODE_ARG(flags, mode) do {					\
	va_list ap;							\
	(mode) = 0;							\
	if ((flags) & (O_CREAT | O_TMPFILE)) {				\
		va_start(ap, flags);					\
		(mode) = (mode_t)va_arg(ap, int);			\
		va_end(ap);						\
	}								\
} while (0)

static int
do_open(const char *sym, const char *path, int flags, mode_t mode)
{
	int (*f)(const char *, int, ...) = real(sym);

	if (fault(C_OPEN, -1, path))
		return -1;
	return f(path, flags, mode);
}

static int
do_openat(const char *sym, int dirfd, const char *path, int flags,
    mode_t mode)
{
	int (*f)(int, const char *, int, ...) = real(sym);
	char buf[4096];

	at_path(dirfd, path, buf, sizeof(buf));
	if (fault(C_OPENAT, -1, buf))
		return -1;
	return f(dirfd, path, flags, mode);
}

int
open(const char *path, int flags, ...)
{
	mode_t mode;

	MODE_ARG(flags, mode);
	return do_open("open", path, flags, mode);
}

int
open64(const char *path, int flags, ...)
{
	mode_t mode;

	MODE_ARG(flags, mode);
	return do_open("open64", path, flags, mode);
}

int
__open_2(const char *path, int flags)
{
	return do_open("open", path, flags, 0);
}

int
__open64_2(const char *path, int flags)
{
	return do_open("open64", path, flags, 0);
}

int
openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode;

	MODE_ARG(flags, mode);
	return do_openat("openat", dirfd, path, flags, mode);
}

int
openat64(int dirfd, const char *path, int flags, ...)
{
	mode_t mode;

	MODE_ARG(flags, mode);
	return do_openat("openat64", dirfd, path, flags, mode);
}

int
__openat_2(int dirfd, const char *path, int flags)
{
	return do_openat("openat", dirfd, path, flags, 0);
}

int
__openat64_2(int dirfd, const char *path, int flags)
{
	return do_openat("openat64", dirfd, path, flags, 0);
}

ssize_t
read(int fd, void *buf, size_t len)
{
	ssize_t (*f)(int, void *, size_t) = real("read");

	if (fault(C_READ, fd, NULL))
		return -1;
	return f(fd, buf, len);
}

ssize_t
__read_chk(int fd, void *buf, size_t len, size_t buflen)
{
	if (len > buflen)
		abort();
	return read(fd, buf, len);
}

ssize_t
pread(int fd, void *buf, size_t len, off_t off)
{
	ssize_t (*f)(int, void *, size_t, off_t) = real("pread");

	if (fault(C_PREAD, fd, NULL))
		return -1;
	return f(fd, buf, len, off);
}

ssize_t
pread64(int fd, void *buf, size_t len, off_t off)
{
	return pread(fd, buf, len, off);
}

ssize_t
__pread_chk(int fd, void *buf, size_t len, off_t off, size_t buflen)
{
	if (len > buflen)
		abort();
	return pread(fd, buf, len, off);
}

ssize_t
__pread64_chk(int fd, void *buf, size_t len, off_t off, size_t buflen)
{
	return __pread_chk(fd, buf, len, off, buflen);
}

ssize_t
write(int fd, const void *buf, size_t len)
{
	ssize_t (*f)(int, const void *, size_t) = real("write");

	if (fault(C_WRITE, fd, NULL))
		return -1;
	return f(fd, buf, len);
}

ssize_t
pwrite(int fd, const void *buf, size_t len, off_t off)
{
	ssize_t (*f)(int, const void *, size_t, off_t) = real("pwrite");

	if (fault(C_PWRITE, fd, NULL))
		return -1;
	return f(fd, buf, len, off);
}

ssize_t
pwrite64(int fd, const void *buf, size_t len, off_t off)
{
	return pwrite(fd, buf, len, off);
}

int
fsync(int fd)
{
	int (*f)(int) = real("fsync");

	if (fault(C_FSYNC, fd, NULL))
		return -1;
	return f(fd);
}

int
fdatasync(int fd)
{
	int (*f)(int) = real("fdatasync");

	if (fault(C_FDATASYNC, fd, NULL))
		return -1;
	return f(fd);
}

int
ftruncate(int fd, off_t len)
{
	int (*f)(int, off_t) = real("ftruncate");

	if (fault(C_FTRUNCATE, fd, NULL))
		return -1;
	return f(fd, len);
}

int
ftruncate64(int fd, off_t len)
{
	return ftruncate(fd, len);
}

int
rename(const char *from, const char *to)
{
	int (*f)(const char *, const char *) = real("rename");

	if (fault(C_RENAME, -1, from))
		return -1;
	return f(from, to);
}

int
renameat(int fromfd, const char *from, int tofd, const char *to)
{
	int (*f)(int, const char *, int, const char *) = real("renameat");
	char buf[4096];

	at_path(fromfd, from, buf, sizeof(buf));
	if (fault(C_RENAMEAT, -1, buf))
		return -1;
	return f(fromfd, from, tofd, to);
}

int
renameat2(int fromfd, const char *from, int tofd, const char *to,
    unsigned int flags)
{
	int (*f)(int, const char *, int, const char *, unsigned int) =
	    real("renameat2");
	char buf[4096];

	at_path(fromfd, from, buf, sizeof(buf));
	if (fault(C_RENAMEAT, -1, buf))
		return -1;
	return f(fromfd, from, tofd, to, flags);
}

int
unlink(const char *path)
{
	int (*f)(const char *) = real("unlink");

	if (fault(C_UNLINK, -1, path))
		return -1;
	return f(path);
}

int
unlinkat(int dirfd, const char *path, int flags)
{
	int (*f)(int, const char *, int) = real("unlinkat");
	char buf[4096];

	at_path(dirfd, path, buf, sizeof(buf));
	if (fault(C_UNLINKAT, -1, buf))
		return -1;
	return f(dirfd, path, flags);
}

int
utimensat(int dirfd, const char *path, const struct timespec times[2],
    int flags)
{
	int (*f)(int, const char *, const struct timespec *, int) =
	    real("utimensat");
	char buf[4096];

	at_path(dirfd, path, buf, sizeof(buf));
	if (fault(C_UTIMENSAT, -1, buf))
		return -1;
	return f(dirfd, path, times, flags);
}

int
futimens(int fd, const struct timespec times[2])
{
	int (*f)(int, const struct timespec *) = real("futimens");

	if (fault(C_FUTIMENS, fd, NULL))
		return -1;
	return f(fd, times);
}

int
mkdir(const char *path, mode_t mode)
{
	int (*f)(const char *, mode_t) = real("mkdir");

	if (fault(C_MKDIR, -1, path))
		return -1;
	return f(path, mode);
}

int
mkdirat(int dirfd, const char *path, mode_t mode)
{
	int (*f)(int, const char *, mode_t) = real("mkdirat");
	char buf[4096];

	at_path(dirfd, path, buf, sizeof(buf));
	if (fault(C_MKDIRAT, -1, buf))
		return -1;
	return f(dirfd, path, mode);
}

struct dirent *
readdir(DIR *dir)
{
	struct dirent *(*f)(DIR *) = real("readdir");

	if (fault(C_READDIR, dirfd(dir), NULL))
		return NULL;
	return f(dir);
}

struct dirent64 *
readdir64(DIR *dir)
{
	struct dirent64 *(*f)(DIR *) = real("readdir64");

	if (fault(C_READDIR, dirfd(dir), NULL))
		return NULL;
	return f(dir);
}
