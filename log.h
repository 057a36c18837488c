/*
 * log.h: one line per event, to syslog (LOG_MAIL) or to stderr.
 *
 * Under xinetd, stderr is the client's socket: nothing is written there
 * unless --log stderr asked for it.  Callers pass only sanitised text
 * from the client (see log_safe()).
 */
#ifndef LOG_H
#define LOG_H

#include <stddef.h>
#include <syslog.h>

/* Log to stderr instead of syslog (0 or 1); the syslog socket is
 * connected when the first line is sent. */
void	log_init(int to_stderr);

void	log_msg(int prio, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/* Format an error message into err (errlen octets, may be 0) for a
 * caller to log. */
void	log_errbuf(char *err, size_t errlen, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

/*
 * Copy s into buf for a log line: octets outside 0x21..0x7E become '?',
 * and long strings are cut.  Returns buf.
 */
const char *log_safe(const char *s, char *buf, size_t len);

#endif
