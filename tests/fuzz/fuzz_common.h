/*
 * fuzz_common.h: what the libFuzzer harnesses of pop3d share.
 *
 * Temporary files and directories, a small deterministic random
 * generator for split points, and the removal of the stuffing dots; the
 * growing buffer and the references come from tests/ref.h, as in the
 * unit tests.  Every helper that fails aborts, which libFuzzer reports
 * as a crash with the input that caused it.
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "../ref.h"

/* abort() with a message on stderr when cond is false. */
#define FUZZ_CHECK(cond, ...) do {					\
	if (!(cond))							\
		fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);	\
} while (0)
void	fuzz_fail(const char *file, int line, const char *cond,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5),
	    noreturn));

/* Whether a and b hold the same octets. */
int	tbuf_equal(const struct tbuf *, const struct tbuf *);
/* Abort with the first difference unless got equals want. */
void	tbuf_expect(const char *what, const struct tbuf *got,
	    const struct tbuf *want);

/*
 * An unlinked temporary file, in $TMPDIR or /tmp.  fuzz_rewrite() makes
 * it hold exactly len octets of data, its offset at the start.
 */
int	fuzz_tempfd(const char *tag);
void	fuzz_rewrite(int fd, const void *data, size_t len);
/* Read all of fd from offset 0 into b (replacing its contents). */
void	fuzz_readall(int fd, struct tbuf *b);

/*
 * A directory made for this process in $TMPDIR or /tmp, its path into buf
 * (len octets), removed with all it holds when the process exits.
 */
void	fuzz_tempdir(const char *tag, char *buf, size_t len);
/* rm -r path, symbolic links not followed; nothing if it is missing. */
void	fuzz_remove_tree(const char *path);
/* dir/name into buf (len octets). */
void	fuzz_path(char *buf, size_t len, const char *dir, const char *name);
/* Make dir/name hold exactly len octets of data (mode 0600). */
void	fuzz_write_file(const char *dir, const char *name, const void *data,
	    size_t len);

/* xorshift32, seeded from the input: split points that reproduce. */
uint32_t fuzz_rng(uint32_t *);

/* Remove the stuffing dot of every line that starts with "." */
void	fuzz_unstuff(const char *in, size_t len, struct tbuf *out);
/*
 * Check what the converter sent: every LF has its CR, a non-empty
 * output ends in CRLF, and no line is a lone "." (the terminator).
 */
void	fuzz_check_wire(const char *what, const struct tbuf *);

#endif
