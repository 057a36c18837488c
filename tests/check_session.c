/*
 * check_session.c: tests of session.c, the POP3 dialogue.
 *
 * Each test runs session_run() in a child process on one end of a
 * socketpair and talks to it from the other: a script is written, the
 * replies are read to EOF and compared octet for octet, CRLF included.
 * The checked fixture makes a home with a Maildir of three messages and
 * a passwd-file whose entries carry the ids the session may serve as:
 * when the tests run as root that is "nobody" (the session drops to it,
 * as pop3d would), otherwise the current user.
 */
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "../log.h"
#include "../pop3d.h"
#include "../session.h"
#include "../store.h"
#include "check_pop3d.h"

/* How long the test side waits for the server before it gives up, ms. */
#define TALK_WAIT_MS	10000
/* The session's idle timeout unless a test sets its own, seconds. */
#define TALK_TIMEOUT	5
#define LISTING_MAX	4096
#define ESCAPE_MAX	16384

#define GREETING	"+OK pop3d ready\r\n"
#define LOGIN		"USER alice\r\nPASS secret\r\n"
#define LOGIN_OK	"+OK\r\n+OK Logged in, 3 messages (131 octets)\r\n"
#define AUTH_FAILED	"-ERR [AUTH] Authentication failed\r\n"
#define BYE0		"+OK Bye, 0 messages deleted\r\n"

#define NAME1		"1000000001.A.host"
#define NAME2		"1000000002.B.host"
#define NAME3		"1000000003.C.host"
#define MSG1		"From: a@example.org\nSubject: one\n\nbody one\n" \
			".dot line\n"
#define MSG2		"Subject: two\r\n\r\nl1\r\nl2\r\nl3\r\n"
#define MSG3		"Subject: three\n\nlast line without newline"
#define WIRE1		"From: a@example.org\r\nSubject: one\r\n\r\n" \
			"body one\r\n..dot line\r\n"
#define WIRE2		MSG2
#define WIRE3		"Subject: three\r\n\r\nlast line without newline\r\n"
#define RETR1		"+OK 58 octets\r\n" WIRE1 ".\r\n"
#define RETR2		"+OK 28 octets\r\n" WIRE2 ".\r\n"
#define RETR3		"+OK 45 octets\r\n" WIRE3 ".\r\n"

#define CAPA_HEAD	"+OK Capability list follows\r\nTOP\r\n"
#define CAPA_MID	"UIDL\r\nRESP-CODES\r\nPIPELINING\r\n"
#define CAPA_TAIL	"EXPIRE NEVER\r\nLOGIN-DELAY 0\r\n" \
			"AUTH-RESP-CODE\r\nUTF8 USER\r\n" \
			"IMPLEMENTATION pop3d\r\n.\r\n"
#define CAPA_AUTH	CAPA_HEAD "USER\r\n" CAPA_MID \
			"SASL PLAIN LOGIN\r\n" CAPA_TAIL
#define CAPA_TRANS	CAPA_HEAD CAPA_MID CAPA_TAIL

#define ALL_UNSEEN	NAME1 ":2,|" NAME2 ":2,|" NAME3 ":2,"

/* One session: the child serving it and what it has sent so far. */
struct talk {
	pid_t		 pid;
	int		 fd;
	struct tbuf	 out;
	size_t		 seen;		/* octets already compared */
};

static char	tmpdir[FIXTURE_PATH_MAX];
static char	maildir[FIXTURE_PATH_MAX];
static char	curdir[FIXTURE_PATH_MAX];
static char	newdir[FIXTURE_PATH_MAX];
static char	passwd[FIXTURE_PATH_MAX];
static char	logfile[FIXTURE_PATH_MAX];
static uid_t	mail_uid;
static gid_t	mail_gid;
/* The configuration the next session starts with; tests may change it. */
static struct session_config cfg;

static void	session_setup(void);
static void	session_teardown(void);
static void	talk_child(int);
static void	talk_start(struct talk *);
static void	talk_sendn(struct talk *, const char *, size_t);
static void	talk_send(struct talk *, const char *);
static size_t	talk_read(struct talk *);
static void	talk_expect(struct talk *, const char *);
static int	talk_end(struct talk *, const char *);
static void	dialogue(const char *, const char *, int);
static void	dialogue_n(const char *, size_t, const char *, int);
static void	expect_text(const char *, size_t, const char *, size_t);
static void	expect_cur(const char *);
static void	rename_cur(const char *, const char *);
static void	check_reply_lines(const struct tbuf *);

static void
session_setup(void)
{
	char line[3 * FIXTURE_PATH_MAX];
	int n;

	fixture_mail_ids(&mail_uid, &mail_gid);
	fixture_mkdtemp(tmpdir, sizeof(tmpdir), "session");
	fixture_maildir(tmpdir, "Maildir");
	fixture_path(maildir, sizeof(maildir), tmpdir, "Maildir");
	fixture_path(curdir, sizeof(curdir), maildir, "cur");
	fixture_path(newdir, sizeof(newdir), maildir, "new");
	fixture_path(passwd, sizeof(passwd), tmpdir, "passwd");
	fixture_path(logfile, sizeof(logfile), tmpdir, "log");
	fixture_writestr(curdir, NAME1 ":2,", MSG1);
	fixture_writestr(curdir, NAME2 ":2,", MSG2);
	fixture_writestr(newdir, NAME3, MSG3);

	n = snprintf(line, sizeof(line),
	    "# test users\n"
	    "alice:{PLAIN}secret:%lu:%lu::%s::\n"
	    "bob:{PLAIN}pass word:%lu:%lu::%s::\n"
	    "nohome:{PLAIN}pw:%lu:%lu::::\n"
	    "badbox:{PLAIN}pw:%lu:%lu::/dev/null::\n"
	    "toor:{PLAIN}pw:0:0::%s::\n",
	    (unsigned long)mail_uid, (unsigned long)mail_gid, tmpdir,
	    (unsigned long)mail_uid, (unsigned long)mail_gid, tmpdir,
	    (unsigned long)mail_uid, (unsigned long)mail_gid,
	    (unsigned long)mail_uid, (unsigned long)mail_gid, tmpdir);
	ck_assert(n > 0 && (size_t)n < sizeof(line));
	fixture_write(tmpdir, "passwd", line, (size_t)n);
	fixture_writestr(tmpdir, "log", "");
	if (geteuid() == 0)
		fixture_chown_tree(tmpdir, mail_uid, mail_gid);

	memset(&cfg, 0, sizeof(cfg));
	cfg.auth.db[0].type = AUTH_DB_FILE;
	cfg.auth.db[0].path = passwd;
	cfg.auth.ndb = 1;
	cfg.mail_spec = "maildir:~/Maildir";
	cfg.remote = "192.0.2.1";
	cfg.timeout = TALK_TIMEOUT;
	cfg.fail_delay_ms = 0;
	cfg.plaintext_ok = 1;
	cfg.in_fd = cfg.out_fd = -1;
}

static void
session_teardown(void)
{
	fixture_rmtree(tmpdir);
}

/* The server side: never returns. */
static void
talk_child(int fd)
{
	struct session_config c = cfg;
	int logfd;

	(void)signal(SIGPIPE, SIG_IGN);
	logfd = open(logfile, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (logfd == -1 || dup2(logfd, STDERR_FILENO) == -1)
		_exit(100);
	(void)close(logfd);
	log_init(1);
	c.in_fd = c.out_fd = fd;
	_exit((int)session_run(&c));
}

static void
talk_start(struct talk *t)
{
	int sv[2];

	memset(t, 0, sizeof(*t));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    sv), 0);
	t->pid = fork();
	ck_assert_int_ne(t->pid, -1);
	if (t->pid == 0) {
		(void)close(sv[0]);
		talk_child(sv[1]);
	}
	(void)close(sv[1]);
	t->fd = sv[0];
	tbuf_reset(&t->out);
}

/* Write all of buf; a server that has hung up just misses the rest. */
static void
talk_sendn(struct talk *t, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = send(t->fd, buf, len, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EPIPE || errno == ECONNRESET))
			return;
		ck_assert_msg(n > 0, "send: %s", strerror(errno));
		buf += n;
		len -= (size_t)n;
	}
}

static void
talk_send(struct talk *t, const char *s)
{
	talk_sendn(t, s, strlen(s));
}

/* Read what the server sent next; 0 at EOF.  Fails on a silent server. */
static size_t
talk_read(struct talk *t)
{
	struct pollfd pfd = { .fd = t->fd, .events = POLLIN };
	char buf[65536];
	ssize_t n;
	int r;

	for (;;) {
		r = poll(&pfd, 1, TALK_WAIT_MS);
		if (r == -1 && errno == EINTR)
			continue;
		ck_assert_msg(r == 1, "no reply from the server within %d ms",
		    TALK_WAIT_MS);
		n = read(t->fd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == ECONNRESET)
			return 0;
		ck_assert_msg(n >= 0, "read: %s", strerror(errno));
		tbuf_add(&t->out, buf, (size_t)n);
		return (size_t)n;
	}
}

/* Fail with both sides shown unless got is exactly want. */
static void
expect_text(const char *got, size_t got_len, const char *want,
    size_t want_len)
{
	static char g[ESCAPE_MAX], w[ESCAPE_MAX];

	if (got_len == want_len && memcmp(got, want, want_len) == 0)
		return;
	ck_abort_msg("got \"%s\"\n want \"%s\"",
	    tbuf_escape(got, got_len, g, sizeof(g)),
	    tbuf_escape(want, want_len, w, sizeof(w)));
}

/* The next octets from the server are exactly want. */
static void
talk_expect(struct talk *t, const char *want)
{
	size_t need = t->seen + strlen(want);

	while (t->out.len < need && talk_read(t) > 0)
		;
	expect_text(t->out.data + t->seen,
	    (t->out.len < need ? t->out.len : need) - t->seen, want,
	    strlen(want));
	t->seen = need;
}

/*
 * End the input, read the rest to EOF, which must be exactly rest, and
 * reap the child.  Returns what session_run() returned.
 */
static int
talk_end(struct talk *t, const char *rest)
{
	int status;

	(void)shutdown(t->fd, SHUT_WR);
	while (talk_read(t) > 0)
		;
	(void)close(t->fd);
	ck_assert_int_eq(waitpid(t->pid, &status, 0), t->pid);
	if (rest != NULL)
		expect_text(t->out.data + t->seen, t->out.len - t->seen, rest,
		    strlen(rest));
	t->seen = t->out.len;
	ck_assert_msg(WIFEXITED(status), "the session crashed (status %#x)",
	    status);
	ck_assert_msg(WEXITSTATUS(status) != 100, "no log file");
	return WEXITSTATUS(status);
}

static void
dialogue_n(const char *script, size_t len, const char *want, int result)
{
	struct talk t;
	int r;

	talk_start(&t);
	talk_sendn(&t, script, len);
	r = talk_end(&t, want);
	ck_assert_msg(r == result, "session_run returned %d, want %d", r,
	    result);
	tbuf_free(&t.out);
}

/* Send all of script at once, then EOF; the replies must be want. */
static void
dialogue(const char *script, const char *want, int result)
{
	dialogue_n(script, strlen(script), want, result);
}

static void
expect_cur(const char *want)
{
	char buf[LISTING_MAX];

	ck_assert_str_eq(fixture_listing(curdir, buf, sizeof(buf)), want);
}

static void
rename_cur(const char *from, const char *to)
{
	char a[FIXTURE_PATH_MAX], b[FIXTURE_PATH_MAX];

	ck_assert_int_eq(rename(fixture_path(a, sizeof(a), curdir, from),
	    fixture_path(b, sizeof(b), curdir, to)), 0);
}

/* Every line sent ends with CRLF and is at most POP3_REPLY_MAX octets. */
static void
check_reply_lines(const struct tbuf *b)
{
	const char *p = b->data, *end = b->data + b->len, *lf;

	while (p < end) {
		lf = memchr(p, '\n', (size_t)(end - p));
		ck_assert_msg(lf != NULL, "the output does not end with LF");
		ck_assert_msg(lf > p && lf[-1] == '\r', "a bare LF was sent");
		ck_assert_msg((size_t)(lf + 1 - p) <= POP3_REPLY_MAX,
		    "a line of %zu octets was sent", (size_t)(lf + 1 - p));
		p = lf + 1;
	}
}

/* Parse. */

START_TEST(test_session_greeting_and_quit)
{
	dialogue("QUIT\r\n", GREETING "+OK Bye\r\n", SESSION_QUIT);
}
END_TEST

START_TEST(test_session_eof_after_greeting)
{
	dialogue("", GREETING, SESSION_DROPPED);
}
END_TEST

START_TEST(test_session_unknown_command)
{
	dialogue("FOO\r\n\r\nAPOPX alice 0123\r\nXAUTH PLAIN\r\nSTLS\r\n"
	    " QUIT\r\nQUITX\r\nQUI\r\nQUIT\r\n",
	    GREETING
	    "-ERR Unknown command\r\n"
	    "-ERR Unknown command\r\n"
	    "-ERR Unknown command\r\n"
	    "-ERR Unknown command\r\n"
	    "-ERR Unknown command\r\n"
	    "-ERR Unknown command\r\n"
	    "-ERR Unknown command\r\n"
	    "-ERR Unknown command\r\n"
	    "+OK Bye\r\n", SESSION_QUIT);
}
END_TEST

START_TEST(test_session_keywords_case_insensitive)
{
	dialogue("capa\r\nuser alice\r\npAsS secret\r\nstat\r\nNoOp\r\n"
	    "Quit\r\n",
	    GREETING CAPA_AUTH LOGIN_OK "+OK 3 131\r\n+OK\r\n" BYE0,
	    SESSION_QUIT);
}
END_TEST

START_TEST(test_session_bare_lf)
{
	dialogue("USER alice\nPASS secret\nSTAT\nRETR 2\nQUIT\n",
	    GREETING LOGIN_OK "+OK 3 131\r\n" RETR2 BYE0, SESSION_QUIT);
}
END_TEST

START_TEST(test_session_nul_makes_line_invalid)
{
	static const char script[] =
	    "NO\0OP\r\n"
	    "USER al\0ice\r\n"
	    "USER alice\r\nPASS sec\0ret\r\n"
	    "PASS secret\r\n"
	    "\0\r\n"
	    "QUIT\r\n";

	/* The PASS with a NUL is not a failed login: it is no command. */
	dialogue_n(script, sizeof(script) - 1,
	    GREETING
	    "-ERR Invalid command line\r\n"
	    "-ERR Invalid command line\r\n"
	    "+OK\r\n-ERR Invalid command line\r\n"
	    "+OK Logged in, 3 messages (131 octets)\r\n"
	    "-ERR Invalid command line\r\n"
	    BYE0, SESSION_QUIT);
}
END_TEST

START_TEST(test_session_line_length_limit)
{
	struct tbuf s = { 0 };
	char pad[POP3_LINE_MAX + 2];

	/* "PASS " and 248 octets and CRLF: POP3_LINE_MAX, accepted. */
	memset(pad, 'p', sizeof(pad));
	tbuf_addstr(&s, "PASS ");
	tbuf_add(&s, pad, POP3_LINE_MAX - 7);
	tbuf_addstr(&s, "\r\n");
	ck_assert_uint_eq(s.len, POP3_LINE_MAX);
	/* The same with bare LF, one octet longer before it. */
	tbuf_addstr(&s, "PASS ");
	tbuf_add(&s, pad, POP3_LINE_MAX - 6);
	tbuf_addstr(&s, "\n");
	/* One more octet: too long. */
	tbuf_addstr(&s, "PASS ");
	tbuf_add(&s, pad, POP3_LINE_MAX - 6);
	tbuf_addstr(&s, "\r\n");
	tbuf_addstr(&s, "PASS ");
	tbuf_add(&s, pad, POP3_LINE_MAX - 5);
	tbuf_addstr(&s, "\n");
	tbuf_addstr(&s, "QUIT\r\n");
	dialogue(s.data,
	    GREETING
	    "-ERR USER first\r\n"
	    "-ERR USER first\r\n"
	    "-ERR Line too long\r\n"
	    "-ERR Line too long\r\n"
	    "+OK Bye\r\n", SESSION_QUIT);
	tbuf_free(&s);
}
END_TEST

START_TEST(test_session_long_line_then_continues)
{
	struct tbuf s = { 0 };
	size_t i;

	/* 300 octets with CRLF, then a line longer than the input buffer. */
	tbuf_addstr(&s, "USER ");
	for (i = 0; i < 293; i++)
		tbuf_addstr(&s, "a");
	tbuf_addstr(&s, "\r\n");
	ck_assert_uint_eq(s.len, 300);
	tbuf_addstr(&s, "CAPA ");
	for (i = 0; i < 3 * IN_BUF_SIZE; i++)
		tbuf_addstr(&s, i % 100 == 99 ? "\r" : "b");
	tbuf_addstr(&s, "\r\n");
	tbuf_addstr(&s, LOGIN "STAT\r\nQUIT\r\n");
	dialogue(s.data,
	    GREETING
	    "-ERR Line too long\r\n"
	    "-ERR Line too long\r\n"
	    LOGIN_OK "+OK 3 131\r\n" BYE0, SESSION_QUIT);
	tbuf_free(&s);
}
END_TEST

START_TEST(test_session_long_line_rest_is_dropped)
{
	struct timespec pause = { 0, 100 * 1000 * 1000 };
	char pad[POP3_LINE_MAX + 45];
	struct talk t;

	/*
	 * The start of a long line arrives alone and is dropped; what comes
	 * after it, up to LF, is still part of that line and no command.
	 */
	memset(pad, 'x', sizeof(pad));
	talk_start(&t);
	talk_expect(&t, GREETING);
	talk_sendn(&t, pad, sizeof(pad));
	(void)nanosleep(&pause, NULL);
	talk_send(&t, "CAPA\r\nQUIT\r\n");
	ck_assert_int_eq(talk_end(&t, "-ERR Line too long\r\n+OK Bye\r\n"),
	    SESSION_QUIT);
	tbuf_free(&t.out);
}
END_TEST

START_TEST(test_session_argument_limits)
{
	char arg[USER_NAME_MAX + 2], line[128];
	struct tbuf s = { 0 };

	/* A user name of USER_NAME_MAX octets is an argument (longer than
	 * POP3_ARG_MAX); one more is not. */
	memset(arg, 'a', sizeof(arg));
	arg[USER_NAME_MAX + 1] = '\0';
	(void)snprintf(line, sizeof(line), "USER %s\r\n", arg);
	tbuf_addstr(&s, line);
	arg[USER_NAME_MAX] = '\0';
	(void)snprintf(line, sizeof(line), "USER %s\r\n", arg);
	tbuf_addstr(&s, line);
	tbuf_addstr(&s,
	    "USER\r\n"
	    "USER a b\r\n"
	    "USER .alice\r\n"
	    "USER a/b\r\n"
	    "USER alice\r\nUSER .x\r\nPASS secret\r\n"
	    "USER  alice \r\nPASS secret\r\n"
	    "QUIT\r\n");
	dialogue(s.data,
	    GREETING
	    "-ERR Usage: USER name\r\n"
	    "+OK\r\n"
	    "-ERR Usage: USER name\r\n"
	    "-ERR Usage: USER name\r\n"
	    "-ERR Invalid user name\r\n"
	    "-ERR Invalid user name\r\n"
	    "+OK\r\n-ERR Invalid user name\r\n-ERR USER first\r\n"
	    LOGIN_OK
	    BYE0, SESSION_QUIT);
	tbuf_free(&s);
}
END_TEST

/* Authorization. */

START_TEST(test_session_capa_authorization)
{
	dialogue("CAPA\r\nQUIT\r\n", GREETING CAPA_AUTH "+OK Bye\r\n",
	    SESSION_QUIT);
}
END_TEST

START_TEST(test_session_login_ok)
{
	dialogue(LOGIN "QUIT\r\n", GREETING LOGIN_OK BYE0, SESSION_QUIT);
	/* new/ was moved to cur/; nothing else changed. */
	expect_cur(ALL_UNSEEN);
}
END_TEST

START_TEST(test_session_password_with_spaces)
{
	dialogue("USER bob\r\nPASS pass word\r\nQUIT\r\n",
	    GREETING LOGIN_OK BYE0, SESSION_QUIT);
	dialogue("USER bob\r\nPASS pass  word\r\nQUIT\r\n",
	    GREETING "+OK\r\n" AUTH_FAILED "+OK Bye\r\n", SESSION_QUIT);
}
END_TEST

START_TEST(test_session_login_failures_look_alike)
{
	const char *want = GREETING "+OK\r\n" AUTH_FAILED "+OK Bye\r\n";

	dialogue("USER alice\r\nPASS wrong\r\nQUIT\r\n", want, SESSION_QUIT);
	dialogue("USER nosuch\r\nPASS secret\r\nQUIT\r\n", want,
	    SESSION_QUIT);
	dialogue("USER alice\r\nPASS\r\nQUIT\r\n", want, SESSION_QUIT);
	/* A failure forgets the user: PASS again needs USER again. */
	dialogue("USER alice\r\nPASS wrong\r\nPASS secret\r\n" LOGIN
	    "QUIT\r\n",
	    GREETING "+OK\r\n" AUTH_FAILED "-ERR USER first\r\n" LOGIN_OK
	    BYE0, SESSION_QUIT);
	expect_cur(ALL_UNSEEN);
}
END_TEST

START_TEST(test_session_three_failures_close)
{
	dialogue("USER alice\r\nPASS a\r\nUSER nosuch\r\nPASS b\r\n"
	    "USER alice\r\nPASS c\r\n" LOGIN "QUIT\r\n",
	    GREETING
	    "+OK\r\n" AUTH_FAILED
	    "+OK\r\n" AUTH_FAILED
	    "+OK\r\n-ERR [AUTH] Authentication failed, closing connection\r\n",
	    SESSION_DROPPED);
	/* Bad commands in between do not reset the count. */
	dialogue("USER alice\r\nPASS a\r\nFOO\r\nCAPA\r\nUSER alice\r\n"
	    "PASS b\r\nUSER alice\r\nPASS c\r\nQUIT\r\n",
	    GREETING
	    "+OK\r\n" AUTH_FAILED
	    "-ERR Unknown command\r\n" CAPA_AUTH
	    "+OK\r\n" AUTH_FAILED
	    "+OK\r\n-ERR [AUTH] Authentication failed, closing connection\r\n",
	    SESSION_DROPPED);
}
END_TEST

START_TEST(test_session_pass_without_user)
{
	dialogue("PASS secret\r\nQUIT\r\n",
	    GREETING "-ERR USER first\r\n+OK Bye\r\n", SESSION_QUIT);
}
END_TEST

START_TEST(test_session_wrong_state)
{
	dialogue("STAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 1 1\r\nDELE 1\r\n"
	    "NOOP\r\nRSET\r\nLAST\r\n" LOGIN "USER alice\r\nPASS secret\r\n"
	    "QUIT\r\n",
	    GREETING
	    "-ERR Not logged in\r\n"
	    "-ERR Not logged in\r\n"
	    "-ERR Not logged in\r\n"
	    "-ERR Not logged in\r\n"
	    "-ERR Not logged in\r\n"
	    "-ERR Not logged in\r\n"
	    "-ERR Not logged in\r\n"
	    "-ERR Not logged in\r\n"
	    "-ERR Not logged in\r\n"
	    LOGIN_OK
	    "-ERR Already logged in\r\n"
	    "-ERR Already logged in\r\n"
	    BYE0, SESSION_QUIT);
}
END_TEST

START_TEST(test_session_quit_in_authorization_changes_nothing)
{
	char buf[LISTING_MAX];

	dialogue("USER alice\r\nQUIT\r\n", GREETING "+OK\r\n+OK Bye\r\n",
	    SESSION_QUIT);
	expect_cur(NAME1 ":2,|" NAME2 ":2,");
	ck_assert_str_eq(fixture_listing(newdir, buf, sizeof(buf)), NAME3);
}
END_TEST

START_TEST(test_session_plaintext_refused)
{
	struct tbuf log = { 0 };

	/* Not encrypted, not local: USER and PASS are refused, unread. */
	cfg.plaintext_ok = 0;
	dialogue("CAPA\r\nUSER alice\r\nPASS secret\r\nSTAT\r\nQUIT\r\n",
	    GREETING CAPA_TRANS
	    "-ERR [AUTH] Plaintext authentication disallowed on non-secure "
	    "connection\r\n"
	    "-ERR [AUTH] Plaintext authentication disallowed on non-secure "
	    "connection\r\n"
	    "-ERR Not logged in\r\n"
	    "+OK Bye\r\n", SESSION_QUIT);
	expect_cur(NAME1 ":2,|" NAME2 ":2,");
	fixture_read(tmpdir, "log", &log);
	ck_assert_ptr_null(strstr(log.data, "secret"));
	tbuf_free(&log);
}
END_TEST

START_TEST(test_session_users_file_missing)
{
	cfg.auth.db[0].path = "/nonexistent/pop3d/passwd";
	dialogue(LOGIN "QUIT\r\n",
	    GREETING "+OK\r\n-ERR [SYS/TEMP] Authentication is unavailable, "
	    "try again later\r\n", SESSION_DROPPED);
}
END_TEST

START_TEST(test_session_mailbox_in_use)
{
	struct store *st = NULL;
	char path[FIXTURE_PATH_MAX], err[256];

	/* The lock file must be the user's, as a session would leave it. */
	fixture_writestr(maildir, "pop3d.lock", "");
	if (geteuid() == 0)
		ck_assert_int_eq(lchown(fixture_path(path, sizeof(path),
		    maildir, "pop3d.lock"), mail_uid, mail_gid), 0);
	ck_assert_int_eq(store_open(&st, maildir, NULL, err, sizeof(err)),
	    STORE_OK);
	dialogue(LOGIN "STAT\r\nQUIT\r\n",
	    GREETING "+OK\r\n-ERR [IN-USE] Mailbox is locked by another "
	    "POP3 session\r\n", SESSION_DROPPED);
	store_close(st);
	dialogue(LOGIN "QUIT\r\n", GREETING LOGIN_OK BYE0, SESSION_QUIT);
}
END_TEST

START_TEST(test_session_no_home)
{
	dialogue("USER nohome\r\nPASS pw\r\nQUIT\r\n",
	    GREETING "+OK\r\n-ERR [SYS/PERM] No mailbox for this account\r\n",
	    SESSION_FAILED);
}
END_TEST

START_TEST(test_session_mailbox_cannot_be_opened)
{
	dialogue("USER badbox\r\nPASS pw\r\nQUIT\r\n",
	    GREETING "+OK\r\n-ERR [SYS/PERM] Mailbox cannot be opened\r\n",
	    SESSION_FAILED);
}
END_TEST

START_TEST(test_session_root_account_refused)
{
	if (geteuid() != 0)
		return;		/* not root: pop3d serves as the current user */
	dialogue("USER toor\r\nPASS pw\r\nQUIT\r\n",
	    GREETING "+OK\r\n-ERR [SYS/PERM] This account cannot receive "
	    "mail here\r\n", SESSION_FAILED);
	expect_cur(NAME1 ":2,|" NAME2 ":2,");
}
END_TEST

START_TEST(test_session_password_never_logged)
{
	struct tbuf log = { 0 };

	/* A password typed as the name is not logged either. */
	dialogue("USER alice\r\nPASS hunter2-wrong\r\nUSER hunter3\r\n"
	    "PASS x\r\n" LOGIN "QUIT\r\n",
	    GREETING "+OK\r\n" AUTH_FAILED "+OK\r\n" AUTH_FAILED LOGIN_OK
	    BYE0, SESSION_QUIT);
	fixture_read(tmpdir, "log", &log);
	ck_assert_msg(strstr(log.data, "login failed: user=alice") != NULL,
	    "no failed login in the log: %s", log.data);
	ck_assert_msg(strstr(log.data, "login failed: user=UNKNOWN") != NULL,
	    "unknown user not logged as UNKNOWN: %s", log.data);
	ck_assert_ptr_null(strstr(log.data, "hunter3"));
	ck_assert_msg(strstr(log.data, "login ok: user=alice") != NULL,
	    "no login in the log: %s", log.data);
	ck_assert_ptr_null(strstr(log.data, "hunter2"));
	ck_assert_ptr_null(strstr(log.data, "secret"));
	tbuf_free(&log);
}
END_TEST

/* Transaction. */

START_TEST(test_session_capa_transaction)
{
	dialogue(LOGIN "CAPA\r\nQUIT\r\n", GREETING LOGIN_OK CAPA_TRANS BYE0,
	    SESSION_QUIT);
}
END_TEST

START_TEST(test_session_stat_list_uidl)
{
	dialogue(LOGIN "STAT\r\nLIST\r\nLIST 2\r\nUIDL\r\nUIDL 3\r\n"
	    "LIST \r\nQUIT\r\n",
	    GREETING LOGIN_OK
	    "+OK 3 131\r\n"
	    "+OK 3 messages (131 octets)\r\n1 58\r\n2 28\r\n3 45\r\n.\r\n"
	    "+OK 2 28\r\n"
	    "+OK Unique-ID listing follows\r\n1 " NAME1 "\r\n2 " NAME2
	    "\r\n3 " NAME3 "\r\n.\r\n"
	    "+OK 3 " NAME3 "\r\n"
	    "+OK 3 messages (131 octets)\r\n1 58\r\n2 28\r\n3 45\r\n.\r\n"
	    BYE0, SESSION_QUIT);
}
END_TEST

START_TEST(test_session_retr_and_seen_flags)
{
	dialogue(LOGIN "RETR 1\r\nRETR 2\r\nRETR 3\r\nRETR 2\r\nQUIT\r\n",
	    GREETING LOGIN_OK RETR1 RETR2 RETR3 RETR2 BYE0, SESSION_QUIT);
	expect_cur(NAME1 ":2,S|" NAME2 ":2,S|" NAME3 ":2,S");
}
END_TEST

START_TEST(test_session_top)
{
	dialogue(LOGIN "TOP 1 0\r\nTOP 1 1\r\nTOP 1 2\r\nTOP 1 99\r\n"
	    "TOP 3 0\r\nTOP 2 2\r\nLAST\r\nQUIT\r\n",
	    GREETING LOGIN_OK
	    "+OK Top of message follows\r\n"
	    "From: a@example.org\r\nSubject: one\r\n\r\n.\r\n"
	    "+OK Top of message follows\r\n"
	    "From: a@example.org\r\nSubject: one\r\n\r\nbody one\r\n.\r\n"
	    "+OK Top of message follows\r\n" WIRE1 ".\r\n"
	    "+OK Top of message follows\r\n" WIRE1 ".\r\n"
	    "+OK Top of message follows\r\nSubject: three\r\n\r\n.\r\n"
	    "+OK Top of message follows\r\n"
	    "Subject: two\r\n\r\nl1\r\nl2\r\n.\r\n"
	    "+OK 0\r\n"
	    BYE0, SESSION_QUIT);
	/* TOP is not RETR: nothing becomes seen. */
	expect_cur(ALL_UNSEEN);
}
END_TEST

START_TEST(test_session_dele)
{
	dialogue(LOGIN "DELE 1\r\nDELE 1\r\nRETR 1\r\nLIST 1\r\nTOP 1 0\r\n"
	    "UIDL 1\r\nSTAT\r\nLIST\r\nUIDL\r\nQUIT\r\n",
	    GREETING LOGIN_OK
	    "+OK Message 1 deleted\r\n"
	    "-ERR Message 1 is deleted\r\n"
	    "-ERR Message 1 is deleted\r\n"
	    "-ERR Message 1 is deleted\r\n"
	    "-ERR Message 1 is deleted\r\n"
	    "-ERR Message 1 is deleted\r\n"
	    "+OK 2 73\r\n"
	    "+OK 2 messages (73 octets)\r\n2 28\r\n3 45\r\n.\r\n"
	    "+OK Unique-ID listing follows\r\n2 " NAME2 "\r\n3 " NAME3
	    "\r\n.\r\n"
	    "+OK Bye, 1 messages deleted\r\n", SESSION_QUIT);
	expect_cur(NAME2 ":2,|" NAME3 ":2,");
}
END_TEST

START_TEST(test_session_rset)
{
	char buf[LISTING_MAX];

	dialogue(LOGIN "DELE 1\r\nDELE 2\r\nRETR 3\r\nLAST\r\nSTAT\r\n"
	    "RSET\r\nLAST\r\nSTAT\r\nRETR 1\r\nDELE 3\r\nRSET\r\nQUIT\r\n",
	    GREETING LOGIN_OK
	    "+OK Message 1 deleted\r\n"
	    "+OK Message 2 deleted\r\n"
	    RETR3
	    "+OK 3\r\n"
	    "+OK 1 45\r\n"
	    "+OK Maildrop has 3 messages (131 octets)\r\n"
	    "+OK 0\r\n"
	    "+OK 3 131\r\n"
	    RETR1
	    "+OK Message 3 deleted\r\n"
	    "+OK Maildrop has 3 messages (131 octets)\r\n"
	    BYE0, SESSION_QUIT);
	/* Nothing was deleted. */
	fixture_listing(curdir, buf, sizeof(buf));
	ck_assert_msg(strstr(buf, NAME1) && strstr(buf, NAME2) &&
	    strstr(buf, NAME3), "cur/ holds %s", buf);
}
END_TEST

START_TEST(test_session_last)
{
	/* Message 2 was seen before: LAST starts there. */
	rename_cur(NAME2 ":2,", NAME2 ":2,S");
	dialogue(LOGIN "LAST\r\nRETR 1\r\nLAST\r\nRETR 3\r\nLAST\r\n"
	    "RSET\r\nLAST\r\nQUIT\r\n",
	    GREETING LOGIN_OK
	    "+OK 2\r\n" RETR1 "+OK 2\r\n" RETR3 "+OK 3\r\n"
	    "+OK Maildrop has 3 messages (131 octets)\r\n+OK 2\r\n" BYE0,
	    SESSION_QUIT);
}
END_TEST

START_TEST(test_session_last_after_retr)
{
	dialogue(LOGIN "LAST\r\nRETR 2\r\nLAST\r\nRETR 1\r\nLAST\r\nQUIT\r\n",
	    GREETING LOGIN_OK "+OK 0\r\n" RETR2 "+OK 2\r\n" RETR1 "+OK 2\r\n"
	    BYE0, SESSION_QUIT);
}
END_TEST

START_TEST(test_session_quit_deletes)
{
	dialogue(LOGIN "DELE 2\r\nDELE 3\r\nQUIT\r\n",
	    GREETING LOGIN_OK "+OK Message 2 deleted\r\n"
	    "+OK Message 3 deleted\r\n+OK Bye, 2 messages deleted\r\n",
	    SESSION_QUIT);
	expect_cur(NAME1 ":2,");
	dialogue(LOGIN "QUIT\r\n",
	    GREETING "+OK\r\n+OK Logged in, 1 messages (58 octets)\r\n" BYE0,
	    SESSION_QUIT);
}
END_TEST

START_TEST(test_session_eof_deletes_nothing)
{
	dialogue(LOGIN "DELE 1\r\nDELE 2\r\nRETR 3\r\n",
	    GREETING LOGIN_OK "+OK Message 1 deleted\r\n"
	    "+OK Message 2 deleted\r\n" RETR3, SESSION_DROPPED);
	expect_cur(ALL_UNSEEN);
	/* A QUIT without its line end is no QUIT either. */
	dialogue(LOGIN "DELE 1\r\nQUIT",
	    GREETING LOGIN_OK "+OK Message 1 deleted\r\n", SESSION_DROPPED);
	expect_cur(ALL_UNSEEN);
}
END_TEST

START_TEST(test_session_commands_without_arguments)
{
	dialogue(LOGIN "NOOP\r\nNOOP x\r\nSTAT x\r\nRSET x\r\nLAST x\r\n"
	    "NOOP\r\nQUIT\r\n",
	    GREETING LOGIN_OK "+OK\r\n"
	    "-ERR Usage: NOOP\r\n"
	    "-ERR Usage: STAT\r\n"
	    "-ERR Usage: RSET\r\n"
	    "-ERR Usage: LAST\r\n"
	    "+OK\r\n" BYE0, SESSION_QUIT);
}
END_TEST

START_TEST(test_session_retr_vanished_message)
{
	char path[FIXTURE_PATH_MAX];
	struct talk t;

	talk_start(&t);
	talk_send(&t, LOGIN);
	talk_expect(&t, GREETING LOGIN_OK);
	ck_assert_int_eq(unlink(fixture_path(path, sizeof(path), curdir,
	    NAME1 ":2,")), 0);
	talk_send(&t, "RETR 1\r\nTOP 1 0\r\nRETR 2\r\nQUIT\r\n");
	ck_assert_int_eq(talk_end(&t,
	    "-ERR [SYS/TEMP] Message 1 cannot be read\r\n"
	    "-ERR [SYS/TEMP] Message 1 cannot be read\r\n"
	    RETR2 BYE0), SESSION_QUIT);
	tbuf_free(&t.out);
	expect_cur(NAME2 ":2,S|" NAME3 ":2,");
}
END_TEST

/* Removed by another process before QUIT: deleted, as asked. */
START_TEST(test_session_dele_vanished_message)
{
	char path[FIXTURE_PATH_MAX];
	struct talk t;

	talk_start(&t);
	talk_send(&t, LOGIN "DELE 1\r\nDELE 2\r\n");
	talk_expect(&t, GREETING LOGIN_OK "+OK Message 1 deleted\r\n"
	    "+OK Message 2 deleted\r\n");
	ck_assert_int_eq(unlink(fixture_path(path, sizeof(path), curdir,
	    NAME1 ":2,")), 0);
	talk_send(&t, "QUIT\r\n");
	ck_assert_int_eq(talk_end(&t, "+OK Bye, 2 messages deleted\r\n"),
	    SESSION_QUIT);
	tbuf_free(&t.out);
	expect_cur(NAME3 ":2,");
}
END_TEST

START_TEST(test_session_message_renamed_during_session)
{
	struct talk t;

	/* Another client flags messages 1 and 2 while we are logged in. */
	talk_start(&t);
	talk_send(&t, LOGIN);
	talk_expect(&t, GREETING LOGIN_OK);
	rename_cur(NAME1 ":2,", NAME1 ":2,F");
	rename_cur(NAME2 ":2,", NAME2 ":2,R");
	talk_send(&t, "RETR 1\r\nUIDL 1\r\nDELE 2\r\nQUIT\r\n");
	ck_assert_int_eq(talk_end(&t, RETR1 "+OK 1 " NAME1 "\r\n"
	    "+OK Message 2 deleted\r\n+OK Bye, 1 messages deleted\r\n"),
	    SESSION_QUIT);
	tbuf_free(&t.out);
	expect_cur(NAME1 ":2,FS|" NAME3 ":2,");
}
END_TEST

/* Message numbers, strictly: one row per command. */
static const struct {
	const char	*cmd;
	const char	*tail;		/* after the number, e.g. TOP's lines */
	const char	*usage;
	const char	*ok1;		/* the reply to "cmd 1 tail" */
	int		 optional;	/* without a number it lists all */
} number_cmds[] = {
	{ "RETR", "", "-ERR Usage: RETR message\r\n", RETR1, 0 },
	{ "LIST", "", "-ERR Usage: LIST [message]\r\n", "+OK 1 58\r\n", 1 },
	{ "DELE", "", "-ERR Usage: DELE message\r\n",
	  "+OK Message 1 deleted\r\n", 0 },
	{ "TOP", " 0", "-ERR Usage: TOP message lines\r\n",
	  "+OK Top of message follows\r\n"
	  "From: a@example.org\r\nSubject: one\r\n\r\n.\r\n", 0 },
	{ "UIDL", "", "-ERR Usage: UIDL [message]\r\n",
	  "+OK 1 " NAME1 "\r\n", 1 },
};

START_TEST(test_session_strict_numbers)
{
	static const char *const invalid[] = {
		"-1", "+1", "1x", "x1", "1.0", "0x1", "99999999999999999999",
		"18446744073709551616", "1e3",
	};
	static const char *const missing[] = { "0", "4", "00", "4294967297" };
	const char *cmd = number_cmds[_i].cmd, *tail = number_cmds[_i].tail;
	struct tbuf s = { 0 }, want = { 0 };
	char line[256], big[POP3_ARG_MAX + 2];
	size_t i;

	tbuf_addstr(&s, LOGIN);
	tbuf_addstr(&want, GREETING LOGIN_OK);
	for (i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		(void)snprintf(line, sizeof(line), "%s %s%s\r\n", cmd,
		    invalid[i], tail);
		tbuf_addstr(&s, line);
		(void)snprintf(line, sizeof(line),
		    "-ERR Invalid message number: %s\r\n", invalid[i]);
		tbuf_addstr(&want, line);
	}
	tbuf_addstr(&s, "NOOP\r\n");
	tbuf_addstr(&want, "+OK\r\n");
	for (i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
		(void)snprintf(line, sizeof(line), "%s %s%s\r\n", cmd,
		    missing[i], tail);
		tbuf_addstr(&s, line);
		tbuf_addstr(&want, "-ERR No such message\r\n");
	}
	/* Too many arguments; an argument over POP3_ARG_MAX octets. */
	(void)snprintf(line, sizeof(line), "%s 1%s 1\r\n", cmd, tail);
	tbuf_addstr(&s, line);
	tbuf_addstr(&want, number_cmds[_i].usage);
	memset(big, '0', POP3_ARG_MAX);
	big[POP3_ARG_MAX] = '1';
	big[POP3_ARG_MAX + 1] = '\0';
	(void)snprintf(line, sizeof(line), "%s %s%s\r\n", cmd, big, tail);
	tbuf_addstr(&s, line);
	tbuf_addstr(&want, number_cmds[_i].usage);
	if (!number_cmds[_i].optional) {
		(void)snprintf(line, sizeof(line), "%s\r\n", cmd);
		tbuf_addstr(&s, line);
		tbuf_addstr(&want, number_cmds[_i].usage);
	}
	/* And the right way, with extra spaces. */
	(void)snprintf(line, sizeof(line), "%s  1%s \r\n", cmd, tail);
	tbuf_addstr(&s, line);
	tbuf_addstr(&want, number_cmds[_i].ok1);
	tbuf_addstr(&s, "QUIT\r\n");
	tbuf_addstr(&want, strcmp(cmd, "DELE") == 0 ?
	    "+OK Bye, 1 messages deleted\r\n" : BYE0);
	dialogue(s.data, want.data, SESSION_QUIT);
	tbuf_free(&s);
	tbuf_free(&want);
}
END_TEST

START_TEST(test_session_top_strict_line_count)
{
	dialogue(LOGIN "TOP 1 -1\r\nTOP 1 +0\r\nTOP 1 x\r\nTOP 1 1x\r\n"
	    "TOP 1 99999999999999999999\r\nTOP 1\r\nTOP\r\nTOP 1 2 3\r\n"
	    "TOP 2 4294967296\r\nQUIT\r\n",
	    GREETING LOGIN_OK
	    "-ERR Invalid number of lines: -1\r\n"
	    "-ERR Invalid number of lines: +0\r\n"
	    "-ERR Invalid number of lines: x\r\n"
	    "-ERR Invalid number of lines: 1x\r\n"
	    "-ERR Invalid number of lines: 99999999999999999999\r\n"
	    "-ERR Usage: TOP message lines\r\n"
	    "-ERR Usage: TOP message lines\r\n"
	    "-ERR Usage: TOP message lines\r\n"
	    "+OK Top of message follows\r\n" WIRE2 ".\r\n"
	    BYE0, SESSION_QUIT);
}
END_TEST

/* Pipelining. */

START_TEST(test_session_pipelined_burst)
{
	struct tbuf s = { 0 }, want = { 0 };
	size_t i;

	tbuf_addstr(&s, LOGIN);
	tbuf_addstr(&want, GREETING LOGIN_OK);
	for (i = 0; i < 300; i++) {
		tbuf_addstr(&s, i % 3 == 0 ? "NOOP\r\n" : i % 3 == 1 ?
		    "LIST 2\r\n" : "RETR 2\r\n");
		tbuf_addstr(&want, i % 3 == 0 ? "+OK\r\n" : i % 3 == 1 ?
		    "+OK 2 28\r\n" : RETR2);
	}
	tbuf_addstr(&s, "DELE 3\r\nSTAT\r\nUIDL 1\r\nQUIT\r\n");
	tbuf_addstr(&want, "+OK Message 3 deleted\r\n+OK 2 86\r\n"
	    "+OK 1 " NAME1 "\r\n+OK Bye, 1 messages deleted\r\n");
	dialogue(s.data, want.data, SESSION_QUIT);
	expect_cur(NAME1 ":2,|" NAME2 ":2,S");
	tbuf_free(&s);
	tbuf_free(&want);
}
END_TEST

START_TEST(test_session_octet_by_octet)
{
	static const char script[] = LOGIN "STAT\r\nRETR 1\r\nQUIT\r\n";
	struct talk t;
	size_t i;

	talk_start(&t);
	for (i = 0; i < sizeof(script) - 1; i++)
		talk_sendn(&t, &script[i], 1);
	ck_assert_int_eq(talk_end(&t, GREETING LOGIN_OK "+OK 3 131\r\n"
	    RETR1 BYE0), SESSION_QUIT);
	tbuf_free(&t.out);
}
END_TEST

START_TEST(test_session_reply_before_next_command)
{
	struct talk t;

	/* Each reply comes without waiting for more input. */
	talk_start(&t);
	talk_expect(&t, GREETING);
	talk_send(&t, "USER alice\r\n");
	talk_expect(&t, "+OK\r\n");
	talk_send(&t, "PASS secret\r\n");
	talk_expect(&t, "+OK Logged in, 3 messages (131 octets)\r\n");
	talk_send(&t, "RETR 1\r\n");
	talk_expect(&t, RETR1);
	talk_send(&t, "LIST\r\nST");
	talk_expect(&t, "+OK 3 messages (131 octets)\r\n1 58\r\n2 28\r\n"
	    "3 45\r\n.\r\n");
	talk_send(&t, "AT\r\n");
	talk_expect(&t, "+OK 3 131\r\n");
	talk_send(&t, "QUIT\r\n");
	talk_expect(&t, "+OK Bye, 0 messages deleted\r\n");
	ck_assert_int_eq(talk_end(&t, ""), SESSION_QUIT);
	tbuf_free(&t.out);
}
END_TEST

START_TEST(test_session_large_message)
{
	struct tbuf msg = { 0 }, wire = { 0 }, want = { 0 };
	char line[256];
	size_t i, k, size;

	/*
	 * Larger than the reply buffer, with "." lines all through and one
	 * line longer than a read of the file.
	 */
	for (i = 0; msg.len < 3 * OUT_BUF_SIZE; i++) {
		(void)snprintf(line, sizeof(line), "%sline %06zu\n",
		    i % 7 == 0 ? "." : "", i);
		if (i == 5000) {
			for (k = 0; k < FILE_BUF_SIZE + 1000; k++) {
				tbuf_add(&msg, "y", 1);
				tbuf_add(&wire, "y", 1);
			}
		}
		tbuf_addstr(&msg, line);
		(void)snprintf(line, sizeof(line), "%sline %06zu\r\n",
		    i % 7 == 0 ? ".." : "", i);
		tbuf_addstr(&wire, line);
	}
	size = msg.len + i;		/* a CR for each of the i lines */
	fixture_write(curdir, "1000000004.D.host:2,", msg.data, msg.len);
	if (geteuid() == 0)
		fixture_chown_tree(curdir, mail_uid, mail_gid);
	(void)snprintf(line, sizeof(line),
	    "+OK Logged in, 4 messages (%zu octets)\r\n"
	    "+OK 4 %zu\r\n+OK %zu octets\r\n", 131 + size, size, size);
	tbuf_addstr(&want, GREETING "+OK\r\n");
	tbuf_addstr(&want, line);
	tbuf_add(&want, wire.data, wire.len);
	tbuf_addstr(&want, ".\r\n" RETR2 BYE0);
	dialogue(LOGIN "LIST 4\r\nRETR 4\r\nRETR 2\r\nQUIT\r\n", want.data,
	    SESSION_QUIT);
	tbuf_free(&msg);
	tbuf_free(&wire);
	tbuf_free(&want);
}
END_TEST

/* Limits. */

START_TEST(test_session_idle_timeout)
{
	struct timespec t0, t1;
	struct talk t;
	long ms;

	cfg.timeout = 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	talk_start(&t);
	talk_expect(&t, GREETING "-ERR Disconnected for inactivity\r\n");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_int_eq(talk_end(&t, ""), SESSION_DROPPED);
	ms = (long)(t1.tv_sec - t0.tv_sec) * 1000 +
	    (t1.tv_nsec - t0.tv_nsec) / 1000000;
	ck_assert_msg(ms >= 900 && ms < 4000, "timed out after %ld ms", ms);
	tbuf_free(&t.out);
}
END_TEST

START_TEST(test_session_idle_timeout_in_transaction)
{
	struct talk t;

	cfg.timeout = 1;
	talk_start(&t);
	talk_send(&t, LOGIN "DELE 1\r\nNOO");
	talk_expect(&t, GREETING LOGIN_OK "+OK Message 1 deleted\r\n");
	/* The partial line does not keep the session alive. */
	talk_expect(&t, "-ERR Disconnected for inactivity\r\n");
	ck_assert_int_eq(talk_end(&t, ""), SESSION_DROPPED);
	tbuf_free(&t.out);
	expect_cur(ALL_UNSEEN);
}
END_TEST

START_TEST(test_session_too_many_bad_commands)
{
	struct tbuf s = { 0 }, want = { 0 };
	int i;

	/* A good command in between starts the count again. */
	tbuf_addstr(&want, GREETING);
	for (i = 0; i < POP3_MAX_BAD_COMMANDS - 1; i++) {
		tbuf_addstr(&s, "FOO\r\n");
		tbuf_addstr(&want, "-ERR Unknown command\r\n");
	}
	tbuf_addstr(&s, "CAPA\r\n");
	tbuf_addstr(&want, CAPA_AUTH);
	for (i = 0; i < POP3_MAX_BAD_COMMANDS - 1; i++) {
		tbuf_addstr(&s, "STAT\r\n");
		tbuf_addstr(&want, "-ERR Not logged in\r\n");
	}
	tbuf_addstr(&s, "QUIT\r\n");
	tbuf_addstr(&want, "+OK Bye\r\n");
	dialogue(s.data, want.data, SESSION_QUIT);

	/* POP3_MAX_BAD_COMMANDS in a row end the session. */
	tbuf_reset(&s);
	tbuf_reset(&want);
	tbuf_addstr(&want, GREETING);
	for (i = 0; i < POP3_MAX_BAD_COMMANDS; i++) {
		tbuf_addstr(&s, i % 2 ? "FOO\r\n" : "NOOP\r\n");
		tbuf_addstr(&want, i % 2 ? "-ERR Unknown command\r\n" :
		    "-ERR Not logged in\r\n");
	}
	tbuf_addstr(&s, "QUIT\r\n");
	tbuf_addstr(&want, "-ERR Too many bad commands, closing "
	    "connection\r\n");
	dialogue(s.data, want.data, SESSION_DROPPED);
	tbuf_free(&s);
	tbuf_free(&want);
}
END_TEST

START_TEST(test_session_reply_lines_bounded)
{
	char arg[POP3_ARG_MAX + 1], line[POP3_LINE_MAX];
	struct tbuf s = { 0 };
	struct talk t;

	memset(arg, 'x', POP3_ARG_MAX);
	arg[POP3_ARG_MAX] = '\0';
	(void)snprintf(line, sizeof(line), "CAPA\r\nUSER %s\r\nPASS %s\r\n",
	    arg, arg);
	tbuf_addstr(&s, line);
	tbuf_addstr(&s, LOGIN "CAPA\r\nSTAT\r\nLIST\r\nUIDL\r\n");
	(void)snprintf(line, sizeof(line), "RETR %s\r\nLIST %s\r\n"
	    "UIDL %s\r\nDELE %s\r\nTOP 1 %s\r\n", arg, arg, arg, arg, arg);
	tbuf_addstr(&s, line);
	(void)snprintf(line, sizeof(line), "TOP %s 1\r\nNOOP %s\r\n"
	    "TOP 2 1\r\nRETR 3\r\nLAST\r\nRSET\r\nQUIT\r\n", arg, arg);
	tbuf_addstr(&s, line);
	talk_start(&t);
	talk_sendn(&t, s.data, s.len);
	ck_assert_int_eq(talk_end(&t, NULL), SESSION_QUIT);
	check_reply_lines(&t.out);
	(void)snprintf(line, sizeof(line),
	    "-ERR Invalid message number: %s\r\n", arg);
	ck_assert_ptr_nonnull(strstr(t.out.data, line));
	tbuf_free(&s);
	tbuf_free(&t.out);
}
END_TEST

START_TEST(test_session_format_directives_echoed_verbatim)
{
	dialogue("USER %s%n%x\r\nPASS %s%n\r\n" LOGIN "RETR %s%n%p\r\n"
	    "TOP 1 %n\r\nQUIT\r\n",
	    GREETING "+OK\r\n" AUTH_FAILED LOGIN_OK
	    "-ERR Invalid message number: %s%n%p\r\n"
	    "-ERR Invalid number of lines: %n\r\n" BYE0, SESSION_QUIT);
}
END_TEST

Suite *
session_suite(void)
{
	Suite *s = suite_create("session");
	TCase *tc;

	tc = tcase_create("parse");
	tcase_add_checked_fixture(tc, session_setup, session_teardown);
	tcase_add_test(tc, test_session_greeting_and_quit);
	tcase_add_test(tc, test_session_eof_after_greeting);
	tcase_add_test(tc, test_session_unknown_command);
	tcase_add_test(tc, test_session_keywords_case_insensitive);
	tcase_add_test(tc, test_session_bare_lf);
	tcase_add_test(tc, test_session_nul_makes_line_invalid);
	tcase_add_test(tc, test_session_line_length_limit);
	tcase_add_test(tc, test_session_long_line_then_continues);
	tcase_add_test(tc, test_session_long_line_rest_is_dropped);
	tcase_add_test(tc, test_session_argument_limits);
	suite_add_tcase(s, tc);

	tc = tcase_create("authorization");
	tcase_add_checked_fixture(tc, session_setup, session_teardown);
	tcase_add_test(tc, test_session_capa_authorization);
	tcase_add_test(tc, test_session_login_ok);
	tcase_add_test(tc, test_session_password_with_spaces);
	tcase_add_test(tc, test_session_login_failures_look_alike);
	tcase_add_test(tc, test_session_three_failures_close);
	tcase_add_test(tc, test_session_pass_without_user);
	tcase_add_test(tc, test_session_wrong_state);
	tcase_add_test(tc, test_session_quit_in_authorization_changes_nothing);
	tcase_add_test(tc, test_session_plaintext_refused);
	tcase_add_test(tc, test_session_users_file_missing);
	tcase_add_test(tc, test_session_mailbox_in_use);
	tcase_add_test(tc, test_session_no_home);
	tcase_add_test(tc, test_session_mailbox_cannot_be_opened);
	tcase_add_test(tc, test_session_root_account_refused);
	tcase_add_test(tc, test_session_password_never_logged);
	suite_add_tcase(s, tc);

	tc = tcase_create("transaction");
	tcase_add_checked_fixture(tc, session_setup, session_teardown);
	tcase_add_test(tc, test_session_capa_transaction);
	tcase_add_test(tc, test_session_stat_list_uidl);
	tcase_add_test(tc, test_session_retr_and_seen_flags);
	tcase_add_test(tc, test_session_top);
	tcase_add_test(tc, test_session_dele);
	tcase_add_test(tc, test_session_rset);
	tcase_add_test(tc, test_session_last);
	tcase_add_test(tc, test_session_last_after_retr);
	tcase_add_test(tc, test_session_quit_deletes);
	tcase_add_test(tc, test_session_eof_deletes_nothing);
	tcase_add_test(tc, test_session_commands_without_arguments);
	tcase_add_test(tc, test_session_retr_vanished_message);
	tcase_add_test(tc, test_session_dele_vanished_message);
	tcase_add_test(tc, test_session_message_renamed_during_session);
	tcase_add_loop_test(tc, test_session_strict_numbers, 0,
	    (int)(sizeof(number_cmds) / sizeof(number_cmds[0])));
	tcase_add_test(tc, test_session_top_strict_line_count);
	suite_add_tcase(s, tc);

	tc = tcase_create("pipelining");
	tcase_add_checked_fixture(tc, session_setup, session_teardown);
	tcase_add_test(tc, test_session_pipelined_burst);
	tcase_add_test(tc, test_session_octet_by_octet);
	tcase_add_test(tc, test_session_reply_before_next_command);
	tcase_add_test(tc, test_session_large_message);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_checked_fixture(tc, session_setup, session_teardown);
	tcase_add_test(tc, test_session_idle_timeout);
	tcase_add_test(tc, test_session_idle_timeout_in_transaction);
	tcase_add_test(tc, test_session_too_many_bad_commands);
	tcase_add_test(tc, test_session_reply_lines_bounded);
	tcase_add_test(tc, test_session_format_directives_echoed_verbatim);
	tcase_set_timeout(tc, 10);
	suite_add_tcase(s, tc);
	return s;
}
