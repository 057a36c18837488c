/*
 * log.c: log lines to syslog or stderr.
 */
#include <errno.h>
#include <stdarg.h>
#include <unistd.h>

#include "fmt.h"
#include "log.h"

static int log_stderr;
static int log_opened;

void
log_init(int to_stderr)
{
	log_stderr = to_stderr;
}

void
log_msg(int prio, const char *fmt, ...)
{
	char line[1024], out[1100];
	va_list ap;
	int n;

	va_start(ap, fmt);
	(void)fmt_vbuf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (log_stderr) {
		/* One write per line, so that lines of processes sharing
		 * stderr do not mix. */
		n = fmt_buf(out, sizeof(out), "pop3d[%ld]: %s\n",
		    (long)getpid(), line);
		if (n < 0 || (size_t)n >= sizeof(out))
			return;		/* cannot be: line is shorter */
		while (write(STDERR_FILENO, out, (size_t)n) == -1 &&
		    errno == EINTR)
			;
		return;
	}
	if (!log_opened) {
		openlog("pop3d", LOG_PID | LOG_NDELAY, LOG_MAIL);
		log_opened = 1;
	}
	syslog(prio, "%s", line);
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
