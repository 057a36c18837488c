/*
 * fuzz_session.c: a whole POP3 session (session.h) driven by arbitrary
 * client octets, from the greeting through AUTHORIZATION and TRANSACTION
 * to UPDATE.
 *
 * The input is what the client sends: it is written to a file that is
 * the session's in_fd, so that the session reads it all and then sees
 * EOF, and replies go to another file, read back afterwards.  The user
 * database is a passwd-file: alice ({PLAIN}secret), bob ({PLAIN}pass
 * word), carol (an MD5-crypt hash of "pw"), dave (no home) and erin
 * (locked), all with their home in a temporary directory whose Maildir
 * ("maildir:%h/Maildir") is rebuilt before each input: messages with LF
 * and with CRLF line ends, lines starting with ".", one without a final
 * newline, an empty one, one in new/, one already seen, one with a ",W="
 * size and one whose name is too long for a UIDL.  APOP is offered,
 * plaintext logins allowed, failed logins not delayed, EXPIRE and
 * LOGIN-DELAY on.  Inputs starting "USER alice\r\nPASS secret\r\n" in the
 * seed corpus reach TRANSACTION.
 *
 * Checked after each session: the replies start with the greeting, every
 * LF in them has its CR and they end with CRLF; no message was removed
 * unless the session ended with QUIT, and then exactly the number the
 * "+OK Bye" line gives.  ASan, UBSan and LeakSanitizer watch the rest.
 *
 * Privileges: auth_become() drops to the user's uid for good when the
 * process runs as root, which would leave the next input without the
 * rights it started with, and check_session.c forks a child per session
 * for that reason, which would hide the session's coverage from
 * libFuzzer.  So when run as root the harness serves each input with the
 * effective uid and gid of "nobody" (the real and saved uid stay 0, and
 * it takes them back afterwards): auth_become() then finds no root
 * privilege and serves as the current user, as pop3d does when started
 * by an ordinary user.  The fixture belongs to that user.  A crash report
 * may be written with those ids, so the artifact directory must let them
 * write (run.sh makes it so).  Log lines are formatted as usual and then
 * dropped by setlogmask().  session_run() sets a SIGALRM handler and
 * alarms of its own, which would stop libFuzzer's -timeout: libFuzzer's
 * are put back after each session, and a watchdog thread aborts a
 * session that runs for more than SESSION_HANG seconds.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "../../log.h"
#include "../../session.h"
#include "fuzz_common.h"

#define GREETING	"+OK pop3d ready <"
#define BYE		"\r\n+OK Bye, "
/* The session's idle timeout, seconds: input is a file, never late. */
#define IDLE_TIMEOUT	2
/* A session running longer than this, seconds, is reported as a hang
 * (libFuzzer's own -timeout is off meanwhile, see above). */
#define SESSION_HANG	10
#define PATH_LEN	4096

/* One message of the fixture Maildir. */
struct fixture_msg {
	const char	*dir;		/* "cur" or "new" */
	const char	*name;
	const char	*text;
};

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	empty_dir(const char *);
static void	restore_maildir(void);
static size_t	count_messages(void);
static void	become_user(void);
static void	become_root(void);
static long	now_seconds(void);
static void	*watchdog(void *);
static enum session_result run_session(void);
static void	check_output(const struct tbuf *, enum session_result);

static const char msg4[] = "Subject: four\r\nX: mixed\n\n..\r\n.\nend\n";
/* A unique part longer than a UIDL may be: its MD5 stands in. */
static const char long_name[] = "1000000005."
    "uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu"
    "uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu:2,";
static char w_name[128];	/* message 4, with its ,W= size */

static const struct fixture_msg messages[] = {
	{ "cur", "1000000001.A.host:2,", "From: a@example.org\n"
	    "Subject: one\n\nbody one\n.dot line\n" },
	{ "cur", "1000000002.B.host:2,S", "Subject: two\r\n\r\nl1\r\n.\r\n"
	    "l3\r\n" },
	{ "new", "1000000003.C.host", "Subject: three\n\n"
	    "last line without newline" },
	{ "cur", w_name, msg4 },
	{ "cur", long_name, "" },
	{ "cur", "1000000006.F.host", "\n\n.\n" },
};
#define NMESSAGES	(sizeof(messages) / sizeof(messages[0]))

static char	top[PATH_LEN];		/* the home of every user */
static char	maildir[PATH_LEN];
static char	passwd[PATH_LEN];
static uid_t	user_uid;
static gid_t	user_gid;
static int	as_root;
static int	in_fd = -1, out_fd = -1;
static struct session_config cfg;
/* When the running session started (now_seconds()), or 0. */
static atomic_long session_start;

/* Remove what dir holds, directories but cur, new and tmp included. */
static void
empty_dir(const char *dir)
{
	char path[PATH_LEN];
	struct dirent *de;
	struct stat sb;
	DIR *d;

	d = opendir(dir);
	FUZZ_CHECK(d != NULL, "%s: %s", dir, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		fuzz_path(path, sizeof(path), dir, de->d_name);
		if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
			if (strcmp(de->d_name, "cur") == 0 ||
			    strcmp(de->d_name, "new") == 0 ||
			    strcmp(de->d_name, "tmp") == 0)
				empty_dir(path);
			else
				fuzz_remove_tree(path);
		} else
			FUZZ_CHECK(unlink(path) == 0, "%s: %s", path,
			    strerror(errno));
	}
	(void)closedir(d);
}

/* The Maildir as the fixture has it, whatever the last session did. */
static void
restore_maildir(void)
{
	char sub[PATH_LEN];
	size_t i;

	empty_dir(maildir);
	for (i = 0; i < NMESSAGES; i++) {
		fuzz_path(sub, sizeof(sub), maildir, messages[i].dir);
		if (mkdir(sub, 0700) == -1)
			FUZZ_CHECK(errno == EEXIST, "%s: %s", sub,
			    strerror(errno));
		fuzz_write_file(sub, messages[i].name, messages[i].text,
		    strlen(messages[i].text));
	}
	fuzz_path(sub, sizeof(sub), maildir, "tmp");
	if (mkdir(sub, 0700) == -1)
		FUZZ_CHECK(errno == EEXIST, "%s: %s", sub, strerror(errno));
}

/* Messages in cur/ and new/. */
static size_t
count_messages(void)
{
	static const char *const subs[] = { "cur", "new" };
	char sub[PATH_LEN];
	struct dirent *de;
	size_t i, n = 0;
	DIR *d;

	for (i = 0; i < 2; i++) {
		fuzz_path(sub, sizeof(sub), maildir, subs[i]);
		d = opendir(sub);
		FUZZ_CHECK(d != NULL, "%s: %s", sub, strerror(errno));
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				n++;
		(void)closedir(d);
	}
	return n;
}

static void
become_user(void)
{
	if (!as_root)
		return;
	FUZZ_CHECK(setegid(user_gid) == 0, "setegid: %s", strerror(errno));
	FUZZ_CHECK(seteuid(user_uid) == 0, "seteuid: %s", strerror(errno));
}

static void
become_root(void)
{
	if (!as_root)
		return;
	FUZZ_CHECK(seteuid(0) == 0, "seteuid(0): %s", strerror(errno));
	FUZZ_CHECK(setegid(0) == 0, "setegid(0): %s", strerror(errno));
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct passwd *pw;
	pthread_t tid;
	struct tbuf conv = { 0 }, plain = { 0 };
	char buf[3 * PATH_LEN];
	int n;

	(void)argc;
	(void)argv;
	log_init(0);
	(void)setlogmask(LOG_MASK(LOG_EMERG));	/* pop3d logs no EMERG */
	(void)signal(SIGPIPE, SIG_IGN);
	if (geteuid() == 0) {
		as_root = 1;
		pw = getpwnam("nobody");
		user_uid = pw != NULL && pw->pw_uid != 0 ? pw->pw_uid : 65534;
		user_gid = pw != NULL && pw->pw_uid != 0 ? pw->pw_gid : 65534;
	} else {
		user_uid = getuid();
		user_gid = getgid();
	}
	fuzz_tempdir("session", top, sizeof(top));
	fuzz_path(maildir, sizeof(maildir), top, "Maildir");
	fuzz_path(passwd, sizeof(passwd), top, "passwd");
	FUZZ_CHECK(mkdir(maildir, 0700) == 0, "%s: %s", maildir,
	    strerror(errno));

	/* Message 4 is named with its size, as some MDAs write it. */
	ref_convert(msg4, strlen(msg4), -1, &conv);
	fuzz_unstuff(conv.data, conv.len, &plain);
	n = snprintf(w_name, sizeof(w_name), "1000000004.D.host,S=%zu,W=%zu:2,",
	    strlen(msg4), plain.len);
	FUZZ_CHECK(n > 0 && (size_t)n < sizeof(w_name), "name too long");

	n = snprintf(buf, sizeof(buf),
	    "# users of the session harness\n"
	    "alice:{PLAIN}secret:%lu:%lu::%s::\n"
	    "bob:{PLAIN}pass word:%lu:%lu:Bob:%s:/bin/sh:\n"
	    "carol:$1$saltsalt$6SNdNaZLKst2LlSm7oPPL1:%lu:%lu::%s::\n"
	    "dave:{PLAIN}pw:%lu:%lu::::\n"
	    "erin:!{PLAIN}pw:%lu:%lu::%s::\n",
	    (unsigned long)user_uid, (unsigned long)user_gid, top,
	    (unsigned long)user_uid, (unsigned long)user_gid, top,
	    (unsigned long)user_uid, (unsigned long)user_gid, top,
	    (unsigned long)user_uid, (unsigned long)user_gid,
	    (unsigned long)user_uid, (unsigned long)user_gid, top);
	FUZZ_CHECK(n > 0 && (size_t)n < sizeof(buf), "passwd too long");
	fuzz_write_file(top, "passwd", buf, (size_t)n);
	if (as_root) {
		FUZZ_CHECK(chown(top, user_uid, user_gid) == 0 &&
		    chown(maildir, user_uid, user_gid) == 0 &&
		    chown(passwd, user_uid, user_gid) == 0, "chown: %s",
		    strerror(errno));
	}
	in_fd = fuzz_tempfd("session-in");
	out_fd = fuzz_tempfd("session-out");
	FUZZ_CHECK(pthread_create(&tid, NULL, watchdog, NULL) == 0,
	    "pthread_create");

	memset(&cfg, 0, sizeof(cfg));
	cfg.auth.db[0].type = AUTH_DB_FILE;
	cfg.auth.db[0].path = passwd;
	cfg.auth.ndb = 1;
	cfg.mail_spec = "maildir:%h/Maildir";
	cfg.remote = "192.0.2.1";
	cfg.timeout = IDLE_TIMEOUT;
	cfg.fail_delay_ms = 0;
	cfg.login_delay = 1;
	cfg.expire = 1;
	cfg.expire_days = 30;
	cfg.apop = 1;
	cfg.plaintext_ok = 1;
	cfg.in_fd = in_fd;
	cfg.out_fd = out_fd;
	tbuf_free(&conv);
	tbuf_free(&plain);
	return 0;
}

static long
now_seconds(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec + 1;	/* never 0 */
}

/* Abort a session that hangs: libFuzzer then saves its input. */
static void *
watchdog(void *arg)
{
	long start;

	(void)arg;
	for (;;) {
		(void)sleep(1);
		start = atomic_load(&session_start);
		if (start != 0 && now_seconds() - start > SESSION_HANG)
			fuzz_fail(__FILE__, __LINE__, "hang", "session running "
			    "for more than %d seconds", SESSION_HANG);
	}
	return NULL;
}

/*
 * session_run(), which sets its own SIGALRM handler and alarm: those of
 * libFuzzer, which catch a hang, are put back after it, and meanwhile the
 * watchdog looks out for one.
 */
static enum session_result
run_session(void)
{
	struct sigaction sa;
	struct itimerval it;
	enum session_result r;

	FUZZ_CHECK(sigaction(SIGALRM, NULL, &sa) == 0, "sigaction");
	FUZZ_CHECK(getitimer(ITIMER_REAL, &it) == 0, "getitimer");
	atomic_store(&session_start, now_seconds());
	r = session_run(&cfg);
	atomic_store(&session_start, 0);
	FUZZ_CHECK(sigaction(SIGALRM, &sa, NULL) == 0, "sigaction");
	FUZZ_CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0, "setitimer");
	return r;
}

static void
check_output(const struct tbuf *out, enum session_result r)
{
	size_t left = count_messages(), want = NMESSAGES, i;
	unsigned long deleted;
	const char *bye = NULL, *p;

	FUZZ_CHECK(out->len >= strlen(GREETING) &&
	    memcmp(out->data, GREETING, strlen(GREETING)) == 0,
	    "no greeting");
	for (i = 0; i < out->len; i++)
		FUZZ_CHECK(out->data[i] != '\n' || (i > 0 &&
		    out->data[i - 1] == '\r'), "bare LF sent at %zu", i);
	FUZZ_CHECK(out->len >= 2 &&
	    memcmp(out->data + out->len - 2, "\r\n", 2) == 0,
	    "the replies do not end in CRLF");
	/* The last "+OK Bye, N messages deleted": what UPDATE removed. */
	for (p = out->data; (p = strstr(p, BYE)) != NULL; p++)
		bye = p + strlen(BYE);
	if (r == SESSION_QUIT && bye != NULL) {
		deleted = strtoul(bye, NULL, 10);
		FUZZ_CHECK(deleted <= NMESSAGES, "%lu deleted", deleted);
		want -= deleted;
	}
	FUZZ_CHECK(left == want, "%zu messages left, want %zu (session "
	    "result %d)", left, want, (int)r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tbuf out = { 0 };
	enum session_result r;

	become_user();
	restore_maildir();
	fuzz_rewrite(in_fd, data, size);
	fuzz_rewrite(out_fd, "", 0);
	r = run_session();
	fuzz_readall(out_fd, &out);
	check_output(&out, r);
	become_root();
	tbuf_free(&out);
	return 0;
}
