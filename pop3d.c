/*
 * pop3d.c: the process.  Options, the launcher's environment, logging
 * and exit status; the session itself is session_run().
 */
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "admin.h"
#include "auth.h"
#include "fmt.h"
#include "log.h"
#include "pop3d.h"
#include "proxy.h"
#include "session.h"

enum {
	OPT_HASH_PASSWORD = 256,
	OPT_LOG,
	OPT_FAIL_DELAY,
	OPT_TLS,
	OPT_ALLOW_PLAINTEXT,
	OPT_PROXY_PROTOCOL,
	OPT_FIRST_UID,
	OPT_CHECKPASSWORD,
	OPT_CHECKPASSWORD_REPLY,
	OPT_APOP,
	OPT_MAX_FAILURES,
	OPT_LOGIN_DELAY,
	OPT_EXPIRE,
	OPT_TAKEOVER,
	OPT_UIDL_FROM,
	OPT_KEEPALIVE,
	OPT_CHECK_USER,
	OPT_CHECK_CONFIG
};

static const struct option long_options[] = {
	{ "users", required_argument, NULL, 'u' },
	{ "system", no_argument, NULL, 'S' },
	{ "first-uid", required_argument, NULL, OPT_FIRST_UID },
	{ "checkpassword", required_argument, NULL, OPT_CHECKPASSWORD },
	{ "checkpassword-reply", no_argument, NULL, OPT_CHECKPASSWORD_REPLY },
	{ "apop", no_argument, NULL, OPT_APOP },
	{ "max-failures", required_argument, NULL, OPT_MAX_FAILURES },
	{ "login-delay", required_argument, NULL, OPT_LOGIN_DELAY },
	{ "expire", required_argument, NULL, OPT_EXPIRE },
	{ "takeover", required_argument, NULL, OPT_TAKEOVER },
	{ "uidl-from", required_argument, NULL, OPT_UIDL_FROM },
	{ "mail", required_argument, NULL, 'm' },
	{ "timeout", required_argument, NULL, 't' },
	{ "log", required_argument, NULL, OPT_LOG },
	{ "fail-delay", required_argument, NULL, OPT_FAIL_DELAY },
	{ "tls", no_argument, NULL, OPT_TLS },
	{ "allow-plaintext", no_argument, NULL, OPT_ALLOW_PLAINTEXT },
	{ "proxy-protocol", no_argument, NULL, OPT_PROXY_PROTOCOL },
	{ "hash-password", no_argument, NULL, OPT_HASH_PASSWORD },
	{ "keepalive", required_argument, NULL, OPT_KEEPALIVE },
	{ "check-user", required_argument, NULL, OPT_CHECK_USER },
	{ "check-config", no_argument, NULL, OPT_CHECK_CONFIG },
	{ "version", no_argument, NULL, 'V' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

static void	usage(FILE *);
static int	parse_uint(const char *, unsigned long, unsigned int *);
static int	bad_number(const char *, const char *);
static int	hash_password(void);
static int	is_loopback(const char *);
static int	parse_keepalive(const char *, unsigned int[3]);
static void	harden(const unsigned int[3]);
static const char *remote_address(char *, size_t, int *);

static void
usage(FILE *fp)
{
	(void)fprintf(fp,
	    "usage: pop3d [options]    one POP3 session on stdin/stdout\n"
	    "  -u, --users FILE      passwd-file of virtual users\n"
	    "  -S, --system          system accounts (passwd, shadow)\n"
	    "      --first-uid N     lowest uid of a system account, %d\n"
	    "      --checkpassword PROG  a qmail checkpassword program\n"
	    "                        (user databases: in the order given)\n"
	    "      --apop            offer APOP ({PLAIN} secrets only)\n"
	    "      --max-failures N  failed logins before closing, %d\n"
	    "      --login-delay SECS    minimum time between logins\n"
	    "      --expire DAYS     remove messages DAYS after retrieval\n"
	    "      --takeover SECS   end a session of the same user idle\n"
	    "                        longer than SECS instead of [IN-USE]\n"
	    "      --uidl-from SRC   UIDLs another server gave: dovecot,\n"
	    "                        courier, qmail or auto (Maildir)\n"
	    "  -m, --mail SPEC       mailbox, default maildir:~/Maildir\n"
	    "  -t, --timeout SECS    idle timeout, default %d\n"
	    "      --fail-delay MS   delay after a failed login, default %d\n"
	    "      --log syslog|stderr   where log lines go, default syslog\n"
	    "      --tls             the connection is encrypted (stunnel...)\n"
	    "      --allow-plaintext allow USER/PASS without TLS off loopback\n"
	    "      --proxy-protocol  read the client address from a PROXY header\n"
	    "      --keepalive IDLE,INTVL,CNT  TCP keepalive timings, default\n"
	    "                        %d,%d,%d; off to leave it off\n"
	    "      --hash-password   read a password, print a hash for FILE\n"
	    "      --check-user NAME look NAME up and at its mailbox, as a\n"
	    "                        login would, changing nothing\n"
	    "      --check-config    check the passwd-files, the mail spec\n"
	    "                        and the checkpassword programs\n"
	    "  -V, --version         print the version\n"
	    "  -h, --help            print this help\n",
	    AUTH_FIRST_UID, POP3_MAX_FAILURES, POP3_TIMEOUT_DEFAULT,
	    POP3_FAIL_DELAY_MS, TCP_KEEPALIVE_IDLE, TCP_KEEPALIVE_INTVL,
	    TCP_KEEPALIVE_CNT);
}

/* A decimal number from 0 to max, strictly.  0 or -1. */
static int
parse_uint(const char *s, unsigned long max, unsigned int *v)
{
	unsigned long n = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		n = n * 10 + (unsigned long)(*s - '0');
		if (n > max)
			return -1;
	}
	*v = (unsigned int)n;
	return 0;
}

/* Say that an option's number is out of range; the usage status. */
static int
bad_number(const char *option, const char *value)
{
	(void)fprintf(stderr, "pop3d: bad %s: %s\n", option, value);
	return EXIT_USAGE;
}

/* --hash-password: one line from stdin, without echo on a terminal. */
static int
hash_password(void)
{
	char pass[1024], hash[512];
	struct termios t, saved;
	int tty = isatty(0), ok;
	size_t len;

	if (tty) {
		(void)fprintf(stderr, "Password: ");
		if (tcgetattr(0, &saved) == 0) {
			t = saved;
			t.c_lflag &= (tcflag_t)~ECHO;
			(void)tcsetattr(0, TCSAFLUSH, &t);
		}
	}
	ok = fgets(pass, sizeof(pass), stdin) != NULL;
	if (tty) {
		(void)tcsetattr(0, TCSAFLUSH, &saved);
		(void)fprintf(stderr, "\n");
	}
	if (!ok) {
		(void)fprintf(stderr, "pop3d: no password on stdin\n");
		return EXIT_USAGE;
	}
	len = strcspn(pass, "\r\n");
	pass[len] = '\0';
	ok = auth_hash_password(pass, hash, sizeof(hash)) == 0;
	auth_wipe(pass, sizeof(pass));
	if (!ok) {
		(void)fprintf(stderr, "pop3d: crypt(3) failed\n");
		return EXIT_TEMPFAIL;
	}
	(void)printf("%s\n", hash);
	return fflush(stdout) == 0 ? 0 : EXIT_TEMPFAIL;
}

/* Whether a textual address is on the loopback: 127/8, ::1, ::ffff:127/104. */
static int
is_loopback(const char *addr)
{
	unsigned char a[16];
	static const unsigned char v4mapped[12] =
	    { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	size_t i;

	if (inet_pton(AF_INET, addr, a) == 1)
		return a[0] == 127;
	if (inet_pton(AF_INET6, addr, a) != 1)
		return 0;
	if (memcmp(a, v4mapped, sizeof(v4mapped)) == 0)
		return a[12] == 127;
	for (i = 0; i < 15; i++)
		if (a[i] != 0)
			return 0;
	return a[15] == 1;
}

/*
 * The client's address: from the launcher (tcpserver and s6 set
 * TCPREMOTEIP, xinetd and stunnel REMOTE_HOST), else from the socket on
 * fd 0, else "local" (a terminal or a pipe).  *near is set when the
 * client is on this machine: local or on the loopback.
 */
static const char *
remote_address(char *buf, size_t len, int *near)
{
	static const char *const vars[] = { "TCPREMOTEIP", "REMOTE_HOST" };
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	const void *addr = NULL;
	const char *v;
	size_t i;

	*near = 0;
	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		v = getenv(vars[i]);
		if (v != NULL && *v != '\0' && strlen(v) < len &&
		    strspn(v, "0123456789abcdefABCDEF.:") == strlen(v)) {
			(void)fmt_buf(buf, len, "%s", v);
			*near = is_loopback(buf);
			return buf;
		}
	}
	if (getpeername(0, (struct sockaddr *)&ss, &sslen) == 0) {
		if (ss.ss_family == AF_INET)
			addr = &((struct sockaddr_in *)&ss)->sin_addr;
		else if (ss.ss_family == AF_INET6)
			addr = &((struct sockaddr_in6 *)&ss)->sin6_addr;
		else if (ss.ss_family == AF_UNIX) {
			*near = 1;
			return "local";
		}
		if (addr == NULL || inet_ntop(ss.ss_family, addr, buf,
		    (socklen_t)len) == NULL)
			return "unknown";
		*near = is_loopback(buf);
		return buf;
	}
	/* Not a socket: a terminal or a pipe. */
	*near = errno == ENOTSOCK;
	return *near ? "local" : "unknown";
}

/*
 * --keepalive: "IDLE,INTVL,CNT" (seconds before the first probe, seconds
 * between probes, unanswered probes; as TCP_KEEPIDLE, TCP_KEEPINTVL and
 * TCP_KEEPCNT allow), or "off" (all 0).  0 or -1.
 */
static int
parse_keepalive(const char *s, unsigned int ka[3])
{
	static const unsigned long max[3] = { 32767, 32767, 127 };
	char buf[32], *field, *rest;
	int i;

	if (strcmp(s, "off") == 0) {
		ka[0] = ka[1] = ka[2] = 0;
		return 0;
	}
	if (strlen(s) >= sizeof(buf))
		return -1;
	(void)fmt_buf(buf, sizeof(buf), "%s", s);
	rest = buf;
	for (i = 0; i < 3; i++) {
		if ((field = strsep(&rest, ",")) == NULL ||
		    parse_uint(field, max[i], &ka[i]) == -1 || ka[i] == 0)
			return -1;
	}
	return rest == NULL ? 0 : -1;
}

/*
 * Cheap hardening before anything is read from the client: no file
 * descriptor but 0, 1 and 2 from the launcher, a private umask, no core
 * dump that could hold a password, SIGPIPE as an error from write(), and
 * TCP keepalive so that a session whose client vanished (Wi-Fi, laptop
 * lid) ends in about a minute and frees the mailbox lock.
 */
static void
harden(const unsigned int ka[3])
{
	struct rlimit nocore = { 0, 0 };
	int on = 1, idle = (int)ka[0], intvl = (int)ka[1], cnt = (int)ka[2];

	closefrom(3);
	umask(077);
	(void)setrlimit(RLIMIT_CORE, &nocore);
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	(void)signal(SIGPIPE, SIG_IGN);
	/* Fails harmlessly when fd 0 is not a TCP socket. */
	if (idle > 0 &&
	    setsockopt(0, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) == 0) {
		(void)setsockopt(0, IPPROTO_TCP, TCP_KEEPIDLE, &idle,
		    sizeof(idle));
		(void)setsockopt(0, IPPROTO_TCP, TCP_KEEPINTVL, &intvl,
		    sizeof(intvl));
		(void)setsockopt(0, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	}
}

int
main(int argc, char *argv[])
{
	struct session_config cfg;
	char remote[INET6_ADDRSTRLEN + 1];
	char self[PATH_MAX_POP3];
	const char *check_user = NULL;
	unsigned int keepalive[3] = { TCP_KEEPALIVE_IDLE, TCP_KEEPALIVE_INTVL,
	    TCP_KEEPALIVE_CNT };
	unsigned int n;
	int c, log_stderr = 0, tls = 0, allow_plaintext = 0, proxy = 0, near;
	int check_config = 0;
	enum proxy_result pr = PROXY_LOCAL;

	memset(&cfg, 0, sizeof(cfg));
	cfg.mail_spec = "maildir:~/Maildir";
	cfg.timeout = POP3_TIMEOUT_DEFAULT;
	cfg.fail_delay_ms = POP3_FAIL_DELAY_MS;
	cfg.max_failures = POP3_MAX_FAILURES;
	cfg.auth.first_uid = AUTH_FIRST_UID;
	memset(self, 0, sizeof(self));
	while ((c = getopt_long(argc, argv, "u:Sm:t:Vh", long_options,
	    NULL)) != -1) {
		switch (c) {
		case 'u':
		case 'S':
		case OPT_CHECKPASSWORD:
			if (cfg.auth.ndb == AUTH_DB_MAX) {
				(void)fprintf(stderr, "pop3d: at most %d user "
				    "databases\n", AUTH_DB_MAX);
				return EXIT_USAGE;
			}
			cfg.auth.db[cfg.auth.ndb].type = c == 'u' ?
			    AUTH_DB_FILE : c == 'S' ? AUTH_DB_SYSTEM :
			    AUTH_DB_CHECKPASSWORD;
			cfg.auth.db[cfg.auth.ndb++].path = optarg;
			break;
		case OPT_FIRST_UID:
			if (parse_uint(optarg, UINT32_MAX, &n) == -1)
				return bad_number("first-uid", optarg);
			cfg.auth.first_uid = n;
			break;
		case OPT_CHECKPASSWORD_REPLY:
			return auth_checkpassword_reply();
		case OPT_APOP:
			cfg.apop = 1;
			break;
		case OPT_MAX_FAILURES:
			if (parse_uint(optarg, 1000, &cfg.max_failures) == -1 ||
			    cfg.max_failures == 0)
				return bad_number("max-failures", optarg);
			break;
		case OPT_LOGIN_DELAY:
			if (parse_uint(optarg, 86400 * 366,
			    &cfg.login_delay) == -1)
				return bad_number("login-delay", optarg);
			break;
		case OPT_EXPIRE:
			if (parse_uint(optarg, 36500, &cfg.expire_days) == -1)
				return bad_number("expire", optarg);
			cfg.expire = 1;
			break;
		case OPT_TAKEOVER:
			if (parse_uint(optarg, 86400, &cfg.takeover) == -1 ||
			    cfg.takeover == 0)
				return bad_number("takeover", optarg);
			break;
		case OPT_UIDL_FROM:
			if (uidl_source_parse(optarg, &cfg.uidl_from) == -1) {
				(void)fprintf(stderr, "pop3d: bad uidl-from: "
				    "%s (own, dovecot, courier, qmail or "
				    "auto)\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'm':
			cfg.mail_spec = optarg;
			break;
		case 't':
			if (parse_uint(optarg, 86400, &cfg.timeout) == -1 ||
			    cfg.timeout == 0)
				return bad_number("timeout", optarg);
			break;
		case OPT_FAIL_DELAY:
			if (parse_uint(optarg, 60000, &cfg.fail_delay_ms) ==
			    -1)
				return bad_number("fail-delay", optarg);
			break;
		case OPT_LOG:
			if (strcmp(optarg, "stderr") == 0)
				log_stderr = 1;
			else if (strcmp(optarg, "syslog") == 0)
				log_stderr = 0;
			else {
				(void)fprintf(stderr, "pop3d: bad log: %s\n",
				    optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_TLS:
			tls = 1;
			break;
		case OPT_ALLOW_PLAINTEXT:
			allow_plaintext = 1;
			break;
		case OPT_PROXY_PROTOCOL:
			proxy = 1;
			break;
		case OPT_HASH_PASSWORD:
			return hash_password();
		case OPT_KEEPALIVE:
			if (parse_keepalive(optarg, keepalive) == -1) {
				(void)fprintf(stderr, "pop3d: bad keepalive: "
				    "%s (IDLE,INTVL,CNT or off)\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_CHECK_USER:
			check_user = optarg;
			break;
		case OPT_CHECK_CONFIG:
			check_config = 1;
			break;
		case 'V':
			(void)printf("pop3d %s\n", POP3D_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (check_user != NULL && check_config) {
		(void)fprintf(stderr, "pop3d: --check-user and --check-config "
		    "go one at a time\n");
		return EXIT_USAGE;
	}
	if (cfg.auth.ndb == 0) {
		(void)fprintf(stderr, "pop3d: no user database: use -u FILE, "
		    "-S or --checkpassword PROG\n");
		return EXIT_USAGE;
	}
	/* Checks for the administrator, on the terminal: no session. */
	if (check_user != NULL)
		return admin_check_user(&cfg, check_user);
	if (check_config)
		return admin_check_config(&cfg);
	/* checkpassword runs this program again as its subprogram. */
	if (readlink("/proc/self/exe", self, sizeof(self) - 1) > 0)
		cfg.auth.self = self;
	else
		cfg.auth.self = argv[0];
	harden(keepalive);
	log_init(log_stderr);
	/* Behind a load balancer, its header names the client. */
	if (proxy)
		pr = proxy_read(0, cfg.timeout, remote, sizeof(remote));
	if (pr == PROXY_ADDR) {
		cfg.remote = remote;
		near = is_loopback(remote);
	} else
		cfg.remote = remote_address(remote, sizeof(remote), &near);
	cfg.auth.remote = cfg.remote;
	if (pr == PROXY_BAD) {
		log_msg(LOG_WARNING, "connection refused: rip=%s reason=missing "
		    "or malformed PROXY protocol header", cfg.remote);
		return EXIT_DROPPED;
	}
	cfg.plaintext_ok = tls || near || allow_plaintext;
	cfg.in_fd = 0;
	cfg.out_fd = 1;
	switch (session_run(&cfg)) {
	case SESSION_QUIT:
		return EXIT_QUIT;
	case SESSION_DROPPED:
		return EXIT_DROPPED;
	default:
		return EXIT_TEMPFAIL;
	}
}
