/*
 * pop3d.h: every size and limit of pop3d in one place.
 *
 * The protocol limits come from RFC 1939 section 3 and RFC 2449 section 4;
 * the rest are local choices, each explained where it is defined.
 */
#ifndef POP3D_H
#define POP3D_H

#define POP3D_VERSION		"0.1"

/* A command line, CRLF included (RFC 2449 section 4). */
#define POP3_LINE_MAX		255
/* One argument of a command, except PASS (RFC 1939 section 3). */
#define POP3_ARG_MAX		40
/* The first line of any reply, CRLF included (RFC 1939 section 3). */
#define POP3_REPLY_MAX		512

/* A SASL response line (RFC 5034 section 4 sets no limit): room for a
 * PLAIN message of three 255-octet fields, base64-encoded. */
#define SASL_LINE_MAX		2048
#define SASL_DECODED_MAX	(SASL_LINE_MAX / 4 * 3)

/* Idle timeout in seconds; RFC 1939 section 3 asks for at least 600. */
#define POP3_TIMEOUT_DEFAULT	600
/* Failed logins allowed in one session before it is closed. */
#define POP3_MAX_FAILURES	3
/* Base delay after a failed login, in milliseconds; doubles each time. */
#define POP3_FAIL_DELAY_MS	1000
/* Unknown or malformed commands in a row before the session is closed. */
#define POP3_MAX_BAD_COMMANDS	20

/* The lowest uid of a system account that may read mail (--first-uid). */
#define AUTH_FIRST_UID		1000

/* Seconds a checkpassword program may take before it is killed. */
#define CHECKPASSWORD_TIMEOUT	30

/* mbox locking: seconds to wait for a lock, and the age at which a
 * dotlock is taken to be left by a writer that died (as liblockfile). */
#define MBOX_LOCK_WAIT		10

/* --takeover: how long a newcomer waits for the lock of the idle
 * session it ended, polling this often; the holder record's size. */
#define TAKEOVER_WAIT_MS	5000
#define TAKEOVER_POLL_MS	20
#define HOLDER_RECORD		64
#define MBOX_DOTLOCK_STALE	300

/* A user name, in octets (it ends up in paths and log lines). */
#define USER_NAME_MAX		64
/* A passwd-file line, in octets; longer lines are skipped as malformed. */
#define PASSWD_LINE_MAX		1024

/* Client input buffer: a few pipelined command lines at a time. */
#define IN_BUF_SIZE		4096
/* Reply buffer: pipelined replies and message data are written in
 * chunks of this size. */
#define OUT_BUF_SIZE		(128 * 1024)
/* Read size when streaming or sizing a message file. */
#define FILE_BUF_SIZE		(64 * 1024)

/* A path built from the mail spec. */
#define PATH_MAX_POP3		4096

/* TCP keepalive on the client's socket: probes after 30 s of silence,
 * every 10 s, 3 unanswered end the session (about a minute in all). */
#define TCP_KEEPALIVE_IDLE	30
#define TCP_KEEPALIVE_INTVL	10
#define TCP_KEEPALIVE_CNT	3

/* Exit statuses of pop3d (see pop3d.8). */
#define EXIT_QUIT		0	/* the client said QUIT */
#define EXIT_DROPPED		1	/* EOF, timeout, too many failures */
#define EXIT_USAGE		64	/* bad command line */
#define EXIT_TEMPFAIL		75	/* system error */

#endif
