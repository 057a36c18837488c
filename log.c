/*
 * log.c: log lines to syslog or stderr.
 *
 * A line for syslog goes to the local socket, _PATH_LOG (/dev/log), as
 * "<PRI>pop3d[PID]: text": what syslog(3) sends, less the time stamp,
 * which the daemons on that socket (journald, rsyslog, syslog-ng,
 * busybox syslogd) take from when they got the line.  glibc's syslog(3)
 * formats with stdio and reads the time zone, which would map into a
 * session the code that fmt_buf() keeps out of it (fmt.h).
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "fmt.h"
#include "log.h"

#ifndef _PATH_LOG
#define _PATH_LOG	"/dev/log"
#endif

static int	log_stderr;
static int	log_fd = -1;	/* the syslog socket, once a line is sent */
static int	log_stream;	/* log_fd is SOCK_STREAM: a NUL ends a line */

static void	log_connect(void);
static void	log_send(const char *, size_t);

void
log_init(int to_stderr)
{
	log_stderr = to_stderr;
}

void
log_msg(int prio, const char *fmt, ...)
{
	char line[1024], out[1100];
	const char *tag;
	va_list ap;
	int n;

	va_start(ap, fmt);
	(void)fmt_vbuf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* Syslog gets this without its LF, stderr without "<PRI>" and in
	 * one write, so that lines of processes sharing it do not mix. */
	n = fmt_buf(out, sizeof(out), "<%d>pop3d[%ld]: %s\n",
	    LOG_MAIL | (prio & LOG_PRIMASK), (long)getpid(), line);
	if (n < 0 || (size_t)n >= sizeof(out))
		return;			/* cannot be: line is shorter */
	if (!log_stderr) {
		out[n - 1] = '\0';
		log_send(out, (size_t)n - 1);
		return;
	}
	tag = strchr(out, '>') + 1;
	while (write(STDERR_FILENO, tag, (size_t)(out + n - tag)) == -1 &&
	    errno == EINTR)
		;
}

/* Connect log_fd to the syslog socket: datagrams, else a stream. */
static void
log_connect(void)
{
	struct sockaddr_un sun;
	int type = SOCK_DGRAM;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, _PATH_LOG, sizeof(_PATH_LOG));
	for (;;) {
		if ((log_fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0)) == -1)
			return;
		if (connect(log_fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
			log_stream = type == SOCK_STREAM;
			return;
		}
		(void)close(log_fd);
		log_fd = -1;
		if (type == SOCK_STREAM || errno != EPROTOTYPE)
			return;
		type = SOCK_STREAM;
	}
}

/*
 * Send one line of len octets, NUL-ended, to syslog.  When the socket
 * fails (the daemon restarted) or a signal interrupts the send, connect
 * again and send once more; a line that cannot be sent is lost, as with
 * syslog(3).  A daemon that reads nothing blocks the send, as there.
 */
static void
log_send(const char *msg, size_t len)
{
	ssize_t r;
	size_t n;
	int tries;

	for (tries = 0; tries < 2; tries++) {
		if (log_fd == -1)
			log_connect();
		if (log_fd == -1)
			return;
		n = len + (size_t)log_stream;	/* the NUL ends it there */
		r = send(log_fd, msg, n, MSG_NOSIGNAL);
		if (r == (ssize_t)n)
			return;
		(void)close(log_fd);
		log_fd = -1;
	}
}

void
log_errbuf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen == 0)
		return;
	va_start(ap, fmt);
	(void)fmt_vbuf(err, errlen, fmt, ap);
	va_end(ap);
}

const char *
log_safe(const char *s, char *buf, size_t len)
{
	size_t i;

	if (len == 0)
		return "";
	for (i = 0; s[i] != '\0' && i + 1 < len; i++)
		buf[i] = s[i] >= 0x21 && s[i] <= 0x7e ? s[i] : '?';
	buf[i] = '\0';
	return buf;
}
