/*
 * admin.h: checks for the administrator, pop3d --check-user and
 * pop3d --check-config.  Both read only: no mailbox, database or stamp
 * is changed.  They print to stdout and return an exit status.
 */
#ifndef ADMIN_H
#define ADMIN_H

#include "session.h"

/*
 * Resolve name through the databases of cfg as a login does (without a
 * password), become the user as a login does, and look at the mailbox
 * without changing it: no move from new/ to cur/, no size cache, no
 * expiry, no login stamp, and no lock held beyond a non-blocking test.
 * Prints "key: value" lines, the last "result: ok" or "result: refused:
 * why" (or "result: cannot tell: why" when a checkpassword program
 * would decide).  Returns 0 when a login would work now, else 1.  The
 * privileges dropped are not regained: call it last.
 */
int	admin_check_user(const struct session_config *cfg, const char *name);

/*
 * Check the passwd-files, the mail spec and the checkpassword programs
 * of cfg.  Prints one line per problem, "FILE:LINE: problem" or
 * "WHAT: problem", and "ok" when there is none.  Returns 0 when there is
 * none, else 1.
 */
int	admin_check_config(const struct session_config *cfg);

#endif
