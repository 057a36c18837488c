/*
 * session.h: one POP3 session (RFC 1939, RFC 2449, RFC 3206).
 */
#ifndef SESSION_H
#define SESSION_H

struct session_config {
	const char	*users_file;	/* passwd-file */
	const char	*mail_spec;	/* "maildir:~/Maildir" */
	const char	*remote;	/* client address, for log lines */
	unsigned int	 timeout;	/* idle timeout, seconds */
	unsigned int	 fail_delay_ms;	/* first failed-login delay */
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
