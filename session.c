/*
 * session.c: the POP3 command loop.
 *
 * session_run() greets, then reads one command line at a time, looks its
 * keyword up in the command table, and calls the handler, which writes
 * its own reply.  Replies are buffered and written when no further
 * command is waiting (PIPELINING), when the buffer is full, and before
 * the session ends.  The mailbox is only changed by QUIT in the
 * TRANSACTION state; any other end leaves it as it was.
 */
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "base64.h"
#include "fmt.h"
#include "log.h"
#include "pop3d.h"
#include "session.h"
#include "store.h"
#include "stream.h"

enum state {
	STATE_AUTH = 1,		/* AUTHORIZATION */
	STATE_TRANS = 2		/* TRANSACTION */
};

/* What a command handler tells the loop. */
enum cmd_result {
	CMD_OK,			/* done, go on */
	CMD_BAD,		/* answered -ERR for bad syntax, go on */
	CMD_ERR,		/* answered -ERR, not the client's fault: go
				   on, and nothing counts as done */
	CMD_QUIT,		/* the session is over, as the client asked */
	CMD_CLOSE,		/* end the session now (failures, lock) */
	CMD_FAIL		/* a system error: end the session */
};

/* How a line read ended. */
enum read_result {
	READ_LINE,
	READ_TOOLONG,		/* the line was too long and was dropped */
	READ_INVALID,		/* the line had a NUL in it */
	READ_EOF,
	READ_TIMEOUT,
	READ_ERROR
};

struct session {
	const struct session_config *cfg;
	enum state	 state;
	int		 io_failed;	/* writing to the client failed */

	char		 in[IN_BUF_SIZE];
	size_t		 in_start, in_end;
	int		 discarding;	/* skipping the rest of a long line */

	char		 out[OUT_BUF_SIZE];
	size_t		 out_len;

	char		 timestamp[128];	/* APOP's, in the greeting */
	char		 user[USER_NAME_MAX + 1];	/* given by USER */
	char		 logname[USER_NAME_MAX + 1];	/* for log lines */
	int		 failures;	/* failed logins */
	int		 bad;		/* bad commands in a row */

	struct store	*store;
	size_t		 count;		/* messages, deleted ones too */
	size_t		 left;		/* messages not marked deleted */
	size_t		 removed;	/* by UPDATE, for the log */
	int		 update_failed;
	uint64_t	 left_bytes;
	size_t		 last;		/* LAST: highest number retrieved */
	size_t		 last_start;	/* its value at login, for RSET */
	size_t		 retr;		/* retrieved, for the log */
	uint64_t	 retr_bytes;
};

struct command {
	const char	*name;
	int		 states;
	enum cmd_result	 (*fn)(struct session *, char *);
};

/* Set by SIGALRM while a write blocks for longer than the timeout. */
static volatile sig_atomic_t write_timed_out;
static volatile sig_atomic_t stop_signal;	/* SIGTERM or SIGHUP came */

static void	on_alarm(int);
static void	on_stop(int);
static int	out_flush(struct session *);
static int	out_put(struct session *, const char *, size_t);
static int	out_emit(void *, const char *, size_t);
static char	*out_reserve(void *, size_t, size_t *);
static void	 out_commit(void *, size_t);
static void	scan_line(struct session *, size_t, const char *, size_t,
		    uint64_t);
static void	reply(struct session *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static enum read_result read_line(struct session *, char **, size_t);
static int	input_wait(struct session *, const struct timespec *);
static int	split_args(char *, char **, int, size_t);
static int	parse_number(const char *, uint64_t *);
static int	get_msg(struct session *, const char *, size_t *);
static enum cmd_result dispatch(struct session *, char *);
static void	apop_timestamp(char *, size_t);
static void	fail_delay(const struct session *);
static enum cmd_result plaintext_refused(struct session *);
static enum cmd_result login(struct session *, const struct auth_user *);
static enum cmd_result send_message(struct session *, size_t, long);
static enum cmd_result cmd_capa(struct session *, char *);
static enum cmd_result cmd_user(struct session *, char *);
static enum cmd_result cmd_pass(struct session *, char *);
static enum cmd_result cmd_auth(struct session *, char *);
static enum cmd_result cmd_apop(struct session *, char *);
static enum cmd_result auth_failed(struct session *, const char *,
		    const char *);
static enum cmd_result authenticate(struct session *,
		    const struct auth_request *);
static enum cmd_result sasl_response(struct session *, const char *,
		    char *, unsigned char *, size_t, size_t *);
static enum cmd_result cmd_quit(struct session *, char *);
static enum cmd_result cmd_stat(struct session *, char *);
static enum cmd_result cmd_list(struct session *, char *);
static enum cmd_result cmd_uidl(struct session *, char *);
static enum cmd_result cmd_retr(struct session *, char *);
static enum cmd_result cmd_top(struct session *, char *);
static enum cmd_result cmd_dele(struct session *, char *);
static enum cmd_result cmd_noop(struct session *, char *);
static enum cmd_result cmd_rset(struct session *, char *);
static enum cmd_result cmd_last(struct session *, char *);
static enum cmd_result cmd_utf8(struct session *, char *);

static const struct command commands[] = {
	{ "CAPA", STATE_AUTH | STATE_TRANS, cmd_capa },
	{ "USER", STATE_AUTH, cmd_user },
	{ "PASS", STATE_AUTH, cmd_pass },
	{ "AUTH", STATE_AUTH, cmd_auth },
	{ "APOP", STATE_AUTH, cmd_apop },
	{ "UTF8", STATE_AUTH, cmd_utf8 },
	{ "QUIT", STATE_AUTH | STATE_TRANS, cmd_quit },
	{ "STAT", STATE_TRANS, cmd_stat },
	{ "LIST", STATE_TRANS, cmd_list },
	{ "UIDL", STATE_TRANS, cmd_uidl },
	{ "RETR", STATE_TRANS, cmd_retr },
	{ "TOP", STATE_TRANS, cmd_top },
	{ "DELE", STATE_TRANS, cmd_dele },
	{ "NOOP", STATE_TRANS, cmd_noop },
	{ "RSET", STATE_TRANS, cmd_rset },
	{ "LAST", STATE_TRANS, cmd_last },
	{ NULL, 0, NULL }
};

static void
on_alarm(int sig)
{
	(void)sig;
	write_timed_out = 1;
}

/*
 * SIGTERM, SIGHUP: the session ends at the next read or write, without
 * UPDATE, and says so in the log.  A signal that comes just before a
 * write or poll() blocks does not interrupt it: SIGALRM a second later
 * does.
 */
static void
on_stop(int sig)
{
	stop_signal = sig;
	(void)alarm(1);
}

/*
 * Write out what is buffered.  A client that reads nothing for the
 * idle timeout is dropped.  0, or -1 once writing has failed.
 */
static int
out_flush(struct session *s)
{
	size_t off = 0;
	ssize_t n;

	if (s->io_failed)
		return -1;
	write_timed_out = 0;
	alarm(s->cfg->timeout);
	while (off < s->out_len) {
		if (stop_signal) {
			s->io_failed = 1;
			break;
		}
		n = write(s->cfg->out_fd, s->out + off, s->out_len - off);
		if (n > 0) {
			off += (size_t)n;
			/* A long RETR to a slow client is not idleness. */
			if (s->store != NULL)
				store_activity(s->store);
		}
		/* SIGALRM may also just cut a write short. */
		if (write_timed_out || stop_signal || n == 0 ||
		    (n == -1 && errno != EINTR)) {
			s->io_failed = 1;
			break;
		}
	}
	alarm(0);
	s->out_len = 0;
	return s->io_failed ? -1 : 0;
}

static int
out_put(struct session *s, const char *buf, size_t len)
{
	if (len > sizeof(s->out) - s->out_len && out_flush(s) == -1)
		return -1;
	while (len > sizeof(s->out)) {
		memcpy(s->out, buf, sizeof(s->out));
		s->out_len = sizeof(s->out);
		if (out_flush(s) == -1)
			return -1;
		buf += sizeof(s->out);
		len -= sizeof(s->out);
	}
	memcpy(s->out + s->out_len, buf, len);
	s->out_len += len;
	return 0;
}

/* stream_reserve: room at the end of the reply buffer. */
static char *
out_reserve(void *ctx, size_t need, size_t *room)
{
	struct session *s = ctx;

	if (sizeof(s->out) - s->out_len < need && out_flush(s) == -1)
		return NULL;
	*room = sizeof(s->out) - s->out_len;
	return s->out + s->out_len;
}

/* stream_commit: what was written there. */
static void
out_commit(void *ctx, size_t used)
{
	((struct session *)ctx)->out_len += used;
}

/* stream_emit for message data. */
static int
out_emit(void *ctx, const char *buf, size_t len)
{
	return out_put(ctx, buf, len);
}

/*
 * One line of a LIST or UIDL listing, "n size" or "n uidl": formatted
 * here rather than by reply(), as a listing may have 100,000 of them.
 */
static void
scan_line(struct session *s, size_t n, const char *word, size_t len,
    uint64_t size)
{
	char line[24 + 1 + 70 + 2], digits[24];
	size_t k = 0, d = 0;

	do
		digits[d++] = (char)('0' + n % 10);
	while ((n /= 10) > 0);
	while (d > 0)
		line[k++] = digits[--d];
	line[k++] = ' ';
	if (word != NULL) {
		memcpy(line + k, word, len);	/* len <= 70: a UIDL */
		k += len;
	} else {
		do
			digits[d++] = (char)('0' + size % 10);
		while ((size /= 10) > 0);
		while (d > 0)
			line[k++] = digits[--d];
	}
	line[k++] = '\r';
	line[k++] = '\n';
	(void)out_put(s, line, k);
}

/* One reply line, CRLF added, never longer than RFC 1939 allows. */
static void
reply(struct session *s, const char *fmt, ...)
{
	char line[POP3_REPLY_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = fmt_vbuf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(line) - 3)
		n = (int)(sizeof(line) - 3);
	line[n++] = '\r';
	line[n++] = '\n';
	(void)out_put(s, line, (size_t)n);
}

/*
 * Wait until input can be read or the deadline passes.  Replies are
 * flushed first unless more input is already waiting.  1 readable,
 * 0 timeout, -1 error.
 */
static int
input_wait(struct session *s, const struct timespec *deadline)
{
	struct pollfd pfd = { .fd = s->cfg->in_fd, .events = POLLIN };
	struct timespec now;
	long long ms;
	int r;

	if (s->out_len > 0 && poll(&pfd, 1, 0) != 1 &&
	    out_flush(s) == -1)
		return -1;
	for (;;) {
		if (stop_signal)
			return -1;
		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (deadline->tv_sec - now.tv_sec) * 1000LL +
		    (deadline->tv_nsec - now.tv_nsec) / 1000000;
		if (ms <= 0)
			return 0;
		r = poll(&pfd, 1, ms > INT_MAX ? INT_MAX : (int)ms);
		if (r == -1 && errno == EINTR && !stop_signal)
			continue;
		return r > 0 ? 1 : r;
	}
}

/*
 * Read the next line into *line, without its CRLF or LF.  A line longer
 * than max octets (POP3_LINE_MAX for commands) is dropped up to its LF
 * and reported as READ_TOOLONG.  The idle timeout runs from the call.
 */
static enum read_result
read_line(struct session *s, char **line, size_t max)
{
	struct timespec deadline;
	char *start, *lf;
	size_t len;
	ssize_t n;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += s->cfg->timeout;
	for (;;) {
		start = s->in + s->in_start;
		len = s->in_end - s->in_start;
		if ((lf = memchr(start, '\n', len)) != NULL) {
			s->in_start += (size_t)(lf - start) + 1;
			if (s->discarding || (size_t)(lf - start) + 1 > max) {
				s->discarding = 0;
				return READ_TOOLONG;
			}
			if (memchr(start, '\0', (size_t)(lf - start)) != NULL)
				return READ_INVALID;
			*lf = '\0';
			if (lf > start && lf[-1] == '\r')
				lf[-1] = '\0';
			*line = start;
			return READ_LINE;
		}
		if (len >= max) {
			s->discarding = 1;	/* no LF in time: drop it all */
			s->in_start = s->in_end = 0;
		} else if (s->in_start > 0) {
			memmove(s->in, start, len);
			s->in_start = 0;
			s->in_end = len;
		}
		if ((r = input_wait(s, &deadline)) <= 0)
			return r == 0 ? READ_TIMEOUT : READ_ERROR;
		n = read(s->cfg->in_fd, s->in + s->in_end,
		    sizeof(s->in) - s->in_end);
		if (n == -1 && errno == EINTR && !stop_signal)
			continue;
		if (n <= 0)
			return n == 0 ? READ_EOF : READ_ERROR;
		s->in_end += (size_t)n;
	}
}

/*
 * Split arguments at spaces into argv.  Returns their number, or -1
 * when there are more than max or one is longer than maxlen octets
 * (POP3_ARG_MAX, RFC 1939 section 3, but for user names).
 */
static int
split_args(char *args, char **argv, int max, size_t maxlen)
{
	char *p = args;
	int n = 0;

	for (;;) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			return n;
		if (n == max)
			return -1;
		argv[n++] = p;
		p += strcspn(p, " ");
		if ((size_t)(p - argv[n - 1]) > maxlen)
			return -1;
		if (*p == ' ')
			*p++ = '\0';
	}
}

/* Decimal digits only: no sign, no junk, no overflow.  0 or -1. */
static int
parse_number(const char *s, uint64_t *v)
{
	uint64_t n = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || n > (UINT64_MAX - 9) / 10)
			return -1;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	*v = n;
	return 0;
}

/* The message a client's number names, or -1 after replying -ERR. */
static int
get_msg(struct session *s, const char *arg, size_t *idx)
{
	uint64_t n;

	if (parse_number(arg, &n) == -1) {
		reply(s, "-ERR Invalid message number: %s", arg);
		return -1;
	}
	if (n == 0 || n > s->count) {
		reply(s, "-ERR No such message");
		return -1;
	}
	if (store_deleted(s->store, (size_t)n - 1)) {
		reply(s, "-ERR Message %llu is deleted", (unsigned long long)n);
		return -1;
	}
	*idx = (size_t)n - 1;
	return 0;
}

static enum cmd_result
cmd_capa(struct session *s, char *args)
{
	(void)args;
	reply(s, "+OK Capability list follows");
	reply(s, "TOP");
	if (s->state == STATE_AUTH && s->cfg->plaintext_ok)
		reply(s, "USER");
	reply(s, "UIDL");
	reply(s, "RESP-CODES");
	reply(s, "PIPELINING");
	if (s->state == STATE_AUTH && s->cfg->plaintext_ok)
		reply(s, "SASL PLAIN LOGIN");
	if (s->cfg->expire)
		reply(s, "EXPIRE %u", s->cfg->expire_days);
	else
		reply(s, "EXPIRE NEVER");
	reply(s, "LOGIN-DELAY %u", s->cfg->login_delay);
	reply(s, "AUTH-RESP-CODE");
	reply(s, "UTF8 USER");
	reply(s, "IMPLEMENTATION pop3d");
	reply(s, ".");
	return CMD_OK;
}

static enum cmd_result
cmd_user(struct session *s, char *args)
{
	char *argv[1];

	s->user[0] = '\0';
	if (!s->cfg->plaintext_ok)
		return plaintext_refused(s);
	/* A name may be longer than POP3_ARG_MAX: up to USER_NAME_MAX. */
	if (split_args(args, argv, 1, USER_NAME_MAX) != 1) {
		reply(s, "-ERR Usage: USER name");
		return CMD_BAD;
	}
	if (!auth_name_valid(argv[0])) {
		reply(s, "-ERR Invalid user name");
		return CMD_BAD;
	}
	(void)fmt_buf(s->user, sizeof(s->user), "%s", argv[0]);
	reply(s, "+OK");
	return CMD_OK;
}

/*
 * USER/PASS on a connection that is neither encrypted nor local (RFC 2595
 * section 2.4, RFC 8314): refused, like Dovecot's disable_plaintext_auth.
 */
static enum cmd_result
plaintext_refused(struct session *s)
{
	log_msg(LOG_NOTICE, "login refused: rip=%s reason=plaintext "
	    "authentication on non-secure connection", s->cfg->remote);
	reply(s, "-ERR [AUTH] Plaintext authentication disallowed on "
	    "non-secure connection");
	return CMD_BAD;
}

/* Wait after a failed login, twice as long each time. */
static void
fail_delay(const struct session *s)
{
	unsigned long long ms = s->cfg->fail_delay_ms;
	struct timespec ts;
	int shift = s->failures - 1;

	if (ms == 0)
		return;
	ms <<= shift < 10 ? shift : 10;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/*
 * A login failed for the user's credentials: log it, wait, and close the
 * session after too many.  logname is the name if the user exists, else
 * UNKNOWN: an unknown name may be a password typed in the wrong place.
 */
static enum cmd_result
auth_failed(struct session *s, const char *logname, const char *why)
{
	unsigned int max = s->cfg->max_failures ? s->cfg->max_failures :
	    POP3_MAX_FAILURES;

	s->failures++;
	log_msg(LOG_NOTICE, "login failed: user=%s rip=%s reason=%s", logname,
	    s->cfg->remote, why);
	s->user[0] = '\0';
	fail_delay(s);
	if ((unsigned int)s->failures >= max) {
		reply(s, "-ERR [AUTH] Authentication failed, closing "
		    "connection");
		return CMD_CLOSE;
	}
	reply(s, "-ERR [AUTH] Authentication failed");
	return CMD_OK;
}

/* Check a login request, and on success open the mailbox. */
static enum cmd_result
authenticate(struct session *s, const struct auth_request *req)
{
	struct auth_user u;
	char err[256];
	enum auth_result r;

	err[0] = '\0';
	if (!auth_name_valid(req->name))
		return auth_failed(s, "UNKNOWN", "invalid user name");
	r = auth_check(&s->cfg->auth, req, &u, err, sizeof(err));
	if (r == AUTH_OK)
		return login(s, &u);
	if (r == AUTH_TEMP) {
		log_msg(LOG_ERR, "login failed: user=%s rip=%s: %s",
		    u.name[0] != '\0' ? req->name : "UNKNOWN", s->cfg->remote,
		    err);
		reply(s, "-ERR [SYS/TEMP] Authentication is unavailable, "
		    "try again later");
		return CMD_CLOSE;
	}
	return auth_failed(s, u.name[0] != '\0' ? req->name : "UNKNOWN", err);
}

static enum cmd_result
cmd_pass(struct session *s, char *args)
{
	struct auth_request req = { .name = s->user, .secret = args,
	    .timestamp = s->timestamp };
	enum cmd_result r;

	if (!s->cfg->plaintext_ok)
		r = plaintext_refused(s);
	else if (s->user[0] == '\0') {
		reply(s, "-ERR USER first");
		r = CMD_BAD;
	} else
		r = authenticate(s, &req);
	auth_wipe(args, strlen(args));
	return r;
}

/* APOP name digest (RFC 1939 section 7), with --apop only. */
static enum cmd_result
cmd_apop(struct session *s, char *args)
{
	struct auth_request req = { .timestamp = s->timestamp, .apop = 1 };
	char *argv[2];

	if (!s->cfg->apop) {
		reply(s, "-ERR APOP is not available");
		return CMD_BAD;
	}
	if (split_args(args, argv, 2, USER_NAME_MAX) != 2) {
		reply(s, "-ERR Usage: APOP name digest");
		return CMD_BAD;
	}
	req.name = argv[0];
	req.secret = argv[1];
	return authenticate(s, &req);
}

/*
 * Read a client response to a SASL challenge, decoded into buf (NUL-
 * terminated after *len octets).  Returns CMD_OK with the response,
 * or the command's result when there is none: "*" cancels (RFC 5034
 * section 4), bad base64 is refused, and a client gone ends the session.
 */
static enum cmd_result
sasl_response(struct session *s, const char *challenge, char *initial,
    unsigned char *buf, size_t buflen, size_t *len)
{
	char *line = initial;
	ssize_t n;

	if (line == NULL) {
		reply(s, "+ %s", challenge);
		switch (read_line(s, &line, SASL_LINE_MAX)) {
		case READ_LINE:
			break;
		case READ_TOOLONG:
		case READ_INVALID:
			reply(s, "-ERR Invalid SASL response");
			return CMD_BAD;
		default:
			return CMD_CLOSE;
		}
	}
	if (strcmp(line, "*") == 0) {
		reply(s, "-ERR Authentication cancelled");
		return CMD_BAD;
	}
	/* "=" is an empty initial response. */
	n = strcmp(line, "=") == 0 && initial != NULL ? 0 :
	    base64_decode(line, strlen(line), buf, buflen - 1);
	auth_wipe(line, strlen(line));
	if (n < 0) {
		reply(s, "-ERR Invalid base64 data");
		return CMD_BAD;
	}
	buf[n] = '\0';
	*len = (size_t)n;
	return CMD_OK;
}

/*
 * AUTH (RFC 5034) with PLAIN (RFC 4616) or LOGIN; bare AUTH lists the
 * mechanisms, as RFC 1734 clients expect.
 */
static enum cmd_result
cmd_auth(struct session *s, char *args)
{
	unsigned char user[SASL_DECODED_MAX + 1], pass[SASL_DECODED_MAX + 1];
	struct auth_request req = { .timestamp = s->timestamp };
	const char *authcid, *password;
	char *argv[2] = { NULL, NULL };
	enum cmd_result r;
	size_t ulen, plen;
	int plain;

	/* The initial response may be longer than POP3_ARG_MAX. */
	argv[0] = args + strspn(args, " ");
	if ((argv[1] = strchr(argv[0], ' ')) != NULL) {
		*argv[1]++ = '\0';
		argv[1] += strspn(argv[1], " ");
		argv[1][strcspn(argv[1], " ")] = '\0';
		if (*argv[1] == '\0')
			argv[1] = NULL;
	}
	if (*argv[0] == '\0') {
		reply(s, "+OK Mechanisms follow");
		if (s->cfg->plaintext_ok) {
			reply(s, "PLAIN");
			reply(s, "LOGIN");
		}
		reply(s, ".");
		return CMD_OK;
	}
	plain = strcasecmp(argv[0], "PLAIN") == 0;
	if (!plain && strcasecmp(argv[0], "LOGIN") != 0) {
		reply(s, "-ERR Unsupported authentication mechanism");
		return CMD_BAD;
	}
	if (!s->cfg->plaintext_ok) {
		if (argv[1] != NULL)
			auth_wipe(argv[1], strlen(argv[1]));
		return plaintext_refused(s);
	}
	if (plain) {
		r = sasl_response(s, "", argv[1], pass, sizeof(pass), &plen);
		if (r != CMD_OK)
			return r;
		if (auth_sasl_plain((char *)pass, plen, &authcid,
		    &password) == -1) {
			auth_wipe(pass, sizeof(pass));
			return auth_failed(s, "UNKNOWN", "malformed PLAIN "
			    "response");
		}
		req.name = authcid;
		req.secret = password;
	} else {
		/* "Username:" and "Password:", as the LOGIN draft has it. */
		r = sasl_response(s, "VXNlcm5hbWU6", argv[1], user,
		    sizeof(user), &ulen);
		if (r == CMD_OK)
			r = sasl_response(s, "UGFzc3dvcmQ6", NULL, pass,
			    sizeof(pass), &plen);
		if (r != CMD_OK) {
			auth_wipe(pass, sizeof(pass));
			return r;
		}
		if (strlen((char *)user) != ulen ||
		    strlen((char *)pass) != plen) {
			auth_wipe(pass, sizeof(pass));
			return auth_failed(s, "UNKNOWN", "NUL in LOGIN "
			    "response");
		}
		req.name = (char *)user;
		req.secret = (char *)pass;
	}
	r = authenticate(s, &req);
	auth_wipe(pass, sizeof(pass));
	return r;
}

/* The password was right: become the user and open the mailbox. */
static enum cmd_result
login(struct session *s, const struct auth_user *u)
{
	char path[PATH_MAX_POP3], err[512];
	struct store_options opts;
	enum store_result r;
	size_t i;

	(void)fmt_buf(s->logname, sizeof(s->logname), "%s", u->name);
	s->user[0] = '\0';
	err[0] = '\0';
	if (auth_become(u, err, sizeof(err)) == -1) {
		log_msg(LOG_ERR, "login refused: user=%s rip=%s: %s",
		    s->logname, s->cfg->remote, err);
		reply(s, "-ERR [SYS/PERM] This account cannot receive mail "
		    "here");
		return CMD_FAIL;
	}
	if (store_path(s->cfg->mail_spec, u->name, u->home, path,
	    sizeof(path), err, sizeof(err)) == -1) {
		log_msg(LOG_ERR, "login refused: user=%s rip=%s: %s",
		    s->logname, s->cfg->remote, err);
		reply(s, "-ERR [SYS/PERM] No mailbox for this account");
		return CMD_FAIL;
	}
	opts.home = u->home;
	opts.login_delay = s->cfg->login_delay;
	opts.expire_days = s->cfg->expire ? (long)s->cfg->expire_days : -1;
	opts.takeover = s->cfg->takeover;
	opts.uidl_from = s->cfg->uidl_from;
	r = store_open(&s->store, path, &opts, err, sizeof(err));
	if (r != STORE_OK) {
		log_msg(r == STORE_INUSE || r == STORE_TOOSOON ? LOG_NOTICE :
		    LOG_ERR, "mailbox not opened: user=%s rip=%s: %s",
		    s->logname, s->cfg->remote, err);
		if (r == STORE_INUSE) {
			reply(s, "-ERR [IN-USE] Mailbox is locked by another "
			    "POP3 session");
			return CMD_CLOSE;
		}
		if (r == STORE_TOOSOON) {
			reply(s, "-ERR [LOGIN-DELAY] Minimum time between "
			    "logins is %u seconds", s->cfg->login_delay);
			return CMD_CLOSE;
		}
		if (r == STORE_PERM)
			reply(s, "-ERR [SYS/PERM] Mailbox cannot be opened");
		else
			reply(s, "-ERR [SYS/TEMP] Mailbox cannot be opened, "
			    "try again later");
		return CMD_FAIL;
	}
	s->count = s->left = store_count(s->store);
	for (i = 0; i < s->count; i++) {
		s->left_bytes += store_size(s->store, i);
		if (store_seen(s->store, i))
			s->last_start = i + 1;
	}
	s->last = s->last_start;
	s->state = STATE_TRANS;
	log_msg(LOG_INFO, "login ok: user=%s rip=%s messages=%zu expired=%zu",
	    s->logname, s->cfg->remote, s->count, store_expired(s->store));
	if (store_taken_from(s->store) != 0)
		log_msg(LOG_NOTICE, "takeover: user=%s rip=%s: ended session "
		    "pid %ld, idle longer than %u s", s->logname,
		    s->cfg->remote, (long)store_taken_from(s->store),
		    s->cfg->takeover);
	if (store_skipped(s->store) > 0)
		log_msg(LOG_WARNING, "mailbox: user=%s: %zu files in cur/ not "
		    "served (symbolic links, unreadable, or not regular files "
		    "owned by the mail user)", s->logname, store_skipped(s->store));
	reply(s, "+OK Logged in, %zu messages (%llu octets)", s->left,
	    (unsigned long long)s->left_bytes);
	return CMD_OK;
}

static enum cmd_result
cmd_quit(struct session *s, char *args)
{
	char err[512];
	size_t failed, deleted = s->count - s->left;

	(void)args;
	if (s->state == STATE_AUTH) {
		reply(s, "+OK Bye");
		return CMD_QUIT;
	}
	/* UPDATE (RFC 1939 section 6). */
	err[0] = '\0';
	if (store_commit(s->store, &failed, err, sizeof(err)) == -1) {
		log_msg(LOG_ERR, "update failed: user=%s rip=%s: %s",
		    s->logname, s->cfg->remote, err);
		s->removed = deleted - failed;
		s->update_failed = 1;
		if (failed > 0)
			reply(s, "-ERR [SYS/TEMP] %zu of %zu messages could "
			    "not be deleted", failed, deleted);
		else
			reply(s, "-ERR [SYS/TEMP] Deletions may not have "
			    "been saved");
		return CMD_FAIL;
	}
	s->removed = deleted;
	reply(s, "+OK Bye, %zu messages deleted", deleted);
	return CMD_QUIT;
}

static enum cmd_result
cmd_stat(struct session *s, char *args)
{
	char *argv[1];

	if (split_args(args, argv, 0, POP3_ARG_MAX) != 0) {
		reply(s, "-ERR Usage: STAT");
		return CMD_BAD;
	}
	reply(s, "+OK %zu %llu", s->left, (unsigned long long)s->left_bytes);
	return CMD_OK;
}

static enum cmd_result
cmd_list(struct session *s, char *args)
{
	char *argv[1];
	size_t i;
	int n;

	if ((n = split_args(args, argv, 1, POP3_ARG_MAX)) == -1) {
		reply(s, "-ERR Usage: LIST [message]");
		return CMD_BAD;
	}
	if (n == 1) {
		if (get_msg(s, argv[0], &i) == -1)
			return CMD_BAD;
		reply(s, "+OK %zu %llu", i + 1,
		    (unsigned long long)store_size(s->store, i));
		return CMD_OK;
	}
	reply(s, "+OK %zu messages (%llu octets)", s->left,
	    (unsigned long long)s->left_bytes);
	for (i = 0; i < s->count; i++)
		if (!store_deleted(s->store, i))
			scan_line(s, i + 1, NULL, 0, store_size(s->store, i));
	reply(s, ".");
	return CMD_OK;
}

static enum cmd_result
cmd_uidl(struct session *s, char *args)
{
	const char *uidl;
	char *argv[1];
	size_t i, len;
	int n;

	if ((n = split_args(args, argv, 1, POP3_ARG_MAX)) == -1) {
		reply(s, "-ERR Usage: UIDL [message]");
		return CMD_BAD;
	}
	if (n == 1) {
		if (get_msg(s, argv[0], &i) == -1)
			return CMD_BAD;
		uidl = store_uidl(s->store, i, &len);
		reply(s, "+OK %zu %.*s", i + 1, (int)len, uidl);
		return CMD_OK;
	}
	reply(s, "+OK Unique-ID listing follows");
	for (i = 0; i < s->count; i++) {
		if (store_deleted(s->store, i))
			continue;
		uidl = store_uidl(s->store, i, &len);
		scan_line(s, i + 1, uidl, len, 0);
	}
	reply(s, ".");
	return CMD_OK;
}

/*
 * Send message i, whole (body_lines < 0) or for TOP.  The file is
 * opened before +OK so that a failure can still be answered; a failure
 * after it ends the session, as the reply cannot be mended.
 */
static enum cmd_result
send_message(struct session *s, size_t i, long body_lines)
{
	char err[512];
	int fd, r;

	err[0] = '\0';
	if ((fd = store_msg_open(s->store, i, err, sizeof(err))) == -1) {
		log_msg(LOG_ERR, "message %zu not readable: user=%s rip=%s: "
		    "%s", i + 1, s->logname, s->cfg->remote, err);
		reply(s, "-ERR [SYS/TEMP] Message %zu cannot be read", i + 1);
		return CMD_ERR;
	}
	if (body_lines < 0)
		reply(s, "+OK %llu octets",
		    (unsigned long long)store_size(s->store, i));
	else
		reply(s, "+OK Top of message follows");
	r = store_msg_send(s->store, i, fd, body_lines, out_emit, out_reserve,
	    out_commit, s);
	close(fd);
	if (r == -1) {
		log_msg(LOG_ERR, "message %zu read error: user=%s rip=%s: %s",
		    i + 1, s->logname, s->cfg->remote, strerror(errno));
		return CMD_FAIL;
	}
	if (r == -2 || out_put(s, ".\r\n", 3) == -1)
		return CMD_CLOSE;
	return CMD_OK;
}

static enum cmd_result
cmd_retr(struct session *s, char *args)
{
	enum cmd_result r;
	char *argv[1];
	size_t i;

	if (split_args(args, argv, 1, POP3_ARG_MAX) != 1) {
		reply(s, "-ERR Usage: RETR message");
		return CMD_BAD;
	}
	if (get_msg(s, argv[0], &i) == -1)
		return CMD_BAD;
	if ((r = send_message(s, i, -1)) != CMD_OK)
		return r;
	store_set_retrieved(s->store, i);
	if (i + 1 > s->last)
		s->last = i + 1;
	s->retr++;
	s->retr_bytes += store_size(s->store, i);
	return CMD_OK;
}

static enum cmd_result
cmd_top(struct session *s, char *args)
{
	char *argv[2];
	uint64_t lines;
	size_t i;

	if (split_args(args, argv, 2, POP3_ARG_MAX) != 2) {
		reply(s, "-ERR Usage: TOP message lines");
		return CMD_BAD;
	}
	if (get_msg(s, argv[0], &i) == -1)
		return CMD_BAD;
	if (parse_number(argv[1], &lines) == -1) {
		reply(s, "-ERR Invalid number of lines: %s", argv[1]);
		return CMD_BAD;
	}
	return send_message(s, i, lines > LONG_MAX ? LONG_MAX : (long)lines);
}

static enum cmd_result
cmd_dele(struct session *s, char *args)
{
	char *argv[1];
	size_t i;

	if (split_args(args, argv, 1, POP3_ARG_MAX) != 1) {
		reply(s, "-ERR Usage: DELE message");
		return CMD_BAD;
	}
	if (get_msg(s, argv[0], &i) == -1)
		return CMD_BAD;
	store_set_deleted(s->store, i, 1);
	s->left--;
	s->left_bytes -= store_size(s->store, i);
	reply(s, "+OK Message %zu deleted", i + 1);
	return CMD_OK;
}

/*
 * RFC 6856: UTF-8 in user names and passwords is accepted with or
 * without it (valid UTF-8 only, compared as received), and messages are
 * sent as they are stored either way: nothing to switch.
 */
static enum cmd_result
cmd_utf8(struct session *s, char *args)
{
	char *argv[1];

	if (split_args(args, argv, 0, POP3_ARG_MAX) != 0) {
		reply(s, "-ERR Usage: UTF8");
		return CMD_BAD;
	}
	reply(s, "+OK UTF8 enabled");
	return CMD_OK;
}

static enum cmd_result
cmd_noop(struct session *s, char *args)
{
	char *argv[1];

	if (split_args(args, argv, 0, POP3_ARG_MAX) != 0) {
		reply(s, "-ERR Usage: NOOP");
		return CMD_BAD;
	}
	reply(s, "+OK");
	return CMD_OK;
}

static enum cmd_result
cmd_rset(struct session *s, char *args)
{
	char *argv[1];
	size_t i;

	if (split_args(args, argv, 0, POP3_ARG_MAX) != 0) {
		reply(s, "-ERR Usage: RSET");
		return CMD_BAD;
	}
	s->left_bytes = 0;
	for (i = 0; i < s->count; i++) {
		store_set_deleted(s->store, i, 0);
		s->left_bytes += store_size(s->store, i);
	}
	s->left = s->count;
	s->last = s->last_start;
	reply(s, "+OK Maildrop has %zu messages (%llu octets)", s->left,
	    (unsigned long long)s->left_bytes);
	return CMD_OK;
}

static enum cmd_result
cmd_last(struct session *s, char *args)
{
	char *argv[1];

	if (split_args(args, argv, 0, POP3_ARG_MAX) != 0) {
		reply(s, "-ERR Usage: LAST");
		return CMD_BAD;
	}
	reply(s, "+OK %zu", s->last);
	return CMD_OK;
}

/*
 * The APOP timestamp of the greeting, unique for the host: <pid.time@host>
 * (RFC 1939 section 7), with nanoseconds so that two sessions of one
 * process id never share it.
 */
static void
apop_timestamp(char *buf, size_t len)
{
	char host[256];
	struct timespec now;
	size_t i;

	if (gethostname(host, sizeof(host)) == -1)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	for (i = 0; host[i] != '\0'; i++)
		if (!isalnum((unsigned char)host[i]) && host[i] != '-' &&
		    host[i] != '.')
			host[i] = '-';
	clock_gettime(CLOCK_REALTIME, &now);
	(void)fmt_buf(buf, len, "<%ld.%lld.%09ld@%.64s>", (long)getpid(),
	    (long long)now.tv_sec, now.tv_nsec,
	    host[0] != '\0' ? host : "localhost");
}

/* Find the command of a line and run it if the state allows. */
static enum cmd_result
dispatch(struct session *s, char *line)
{
	const struct command *c;
	size_t klen = strcspn(line, " ");
	char *args = line + klen;

	if (*args == ' ')
		*args++ = '\0';
	for (c = commands; c->name != NULL; c++)
		if (strlen(c->name) == klen &&
		    strncasecmp(c->name, line, klen) == 0)
			break;
	if (c->name == NULL) {
		reply(s, "-ERR Unknown command");
		return CMD_BAD;
	}
	if ((c->states & (int)s->state) == 0) {
		reply(s, s->state == STATE_AUTH ? "-ERR Not logged in" :
		    "-ERR Already logged in");
		return CMD_BAD;
	}
	/* PASS takes the rest of the line: spaces may be in a password. */
	return c->fn(s, args);
}

enum session_result
session_run(const struct session_config *cfg)
{
	enum session_result result = SESSION_DROPPED;
	struct sigaction sa;
	const char *why = "eof";
	enum read_result rr;
	enum cmd_result cr;
	struct session *s;
	char *line;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_msg(LOG_ERR, "out of memory");
		return SESSION_FAILED;
	}
	s->cfg = cfg;
	s->state = STATE_AUTH;
	(void)fmt_buf(s->logname, sizeof(s->logname), "-");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;	/* no SA_RESTART: interrupt write */
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGALRM, &sa, NULL);
	sa.sa_handler = on_stop;
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGHUP, &sa, NULL);

	if (cfg->apop) {
		apop_timestamp(s->timestamp, sizeof(s->timestamp));
		reply(s, "+OK pop3d ready %s", s->timestamp);
	} else
		reply(s, "+OK pop3d ready");
	for (;;) {
		rr = read_line(s, &line, POP3_LINE_MAX);
		if (rr == READ_EOF || rr == READ_ERROR)
			break;
		if (rr == READ_TIMEOUT) {
			why = "timeout";
			reply(s, "-ERR Disconnected for inactivity");
			break;
		}
		if (rr == READ_TOOLONG) {
			reply(s, "-ERR Line too long");
			cr = CMD_BAD;
		} else if (rr == READ_INVALID) {
			reply(s, "-ERR Invalid command line");
			cr = CMD_BAD;
		} else {
			if (s->store != NULL)
				store_activity(s->store);
			cr = dispatch(s, line);
		}
		if (cr == CMD_BAD && ++s->bad >= POP3_MAX_BAD_COMMANDS) {
			why = "too many bad commands";
			reply(s, "-ERR Too many bad commands, closing "
			    "connection");
			break;
		}
		if (cr != CMD_BAD)
			s->bad = 0;
		if (cr == CMD_QUIT) {
			why = "quit";
			result = SESSION_QUIT;
			break;
		}
		if (cr == CMD_CLOSE || cr == CMD_FAIL) {
			why = cr == CMD_CLOSE ? "closed" : s->update_failed ?
			    "update failed" : "error";
			if (cr == CMD_FAIL)
				result = SESSION_FAILED;
			break;
		}
		if (s->io_failed)
			break;
	}
	if (s->io_failed)
		why = "connection lost";
	if (stop_signal)
		why = stop_signal == SIGHUP ? "signal HUP" : "signal TERM";
	(void)out_flush(s);
	if (s->state == STATE_TRANS)
		log_msg(LOG_INFO, "logout: user=%s rip=%s reason=%s retr=%zu "
		    "bytes=%llu del=%zu left=%zu", s->logname, cfg->remote,
		    why, s->retr, (unsigned long long)s->retr_bytes,
		    s->removed, s->count - s->removed);
	else
		log_msg(LOG_INFO, "disconnected: rip=%s reason=%s",
		    cfg->remote, why);
	store_close(s->store);
	auth_wipe(s->in, sizeof(s->in));
	free(s);
	return result;
}
