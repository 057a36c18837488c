/*
 * log.c: log lines to syslog or stderr.
 */
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

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
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (log_stderr) {
		(void)fprintf(stderr, "pop3d[%ld]: %s\n", (long)getpid(), line);
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
	(void)vsnprintf(err, errlen, fmt, ap);
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
