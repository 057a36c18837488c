/*
 * session.h: one POP3 session (RFC 1939, RFC 2449, RFC 3206).
 */
#ifndef SESSION_H
#define SESSION_H

#include "auth.h"
#include "uidl.h"

struct session_config {
	struct auth_config auth;	/* the user databases */
	const char	*mail_spec;	/* "maildir:~/Maildir" */
	const char	*remote;	/* client address, for log lines */
	unsigned int	 timeout;	/* idle timeout, seconds */
	unsigned int	 fail_delay_ms;	/* first failed-login delay */
	unsigned int	 max_failures;	/* failed logins before closing;
					   0: POP3_MAX_FAILURES */
	unsigned int	 login_delay;	/* LOGIN-DELAY, seconds; 0 none */
	int		 expire;	/* EXPIRE announced and applied */
	unsigned int	 expire_days;	/* EXPIRE, days */
	unsigned int	 takeover;	/* end a session of the same mailbox
					   idle this long; 0 never */
	enum uidl_source uidl_from;	/* UIDLs another server gave */
	int		 apop;		/* offer APOP: timestamp in greeting */
	int		 plaintext_ok;	/* USER/PASS allowed: TLS, loopback,
					   local, or --allow-plaintext */
	int		 in_fd;		/* commands come from here */
	int		 out_fd;	/* replies go there */
};

enum session_result {
	SESSION_QUIT,		/* the client said QUIT, all went well */
	SESSION_DROPPED,	/* EOF, timeout, too many failures */
	SESSION_FAILED		/* a system error ended the session */
};

/*
 * Greet, authenticate, serve the mailbox, and on QUIT apply the
 * deletions.  Returns when the session is over; never exits.
 */
enum session_result session_run(const struct session_config *);

#endif
