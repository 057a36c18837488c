/*
 * fuzz_common.h: what the libFuzzer harnesses of pop3d share.
 *
 * A growing output buffer and the stream_emit that fills it, temporary
 * files, a small deterministic random generator for split points, and the
 * reference forms of stream.h: the POP3 conversion done one octet at a
 * time (as ref_convert() in tests/check_main.c) and the removal of the
 * stuffing dots.  Every helper that fails aborts, which libFuzzer reports
 * as a crash with the input that caused it.
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Octets collected from a stream; data is NUL-ended. */
struct fbuf {
	char	*data;
	size_t	 len;
	size_t	 cap;
};

void	fbuf_add(struct fbuf *, const void *, size_t);
void	fbuf_reset(struct fbuf *);
void	fbuf_free(struct fbuf *);
/* A stream_emit that appends to the struct fbuf in ctx; returns 0. */
int	fbuf_emit(void *ctx, const char *, size_t);

/* abort() with a message on stderr when cond is false. */
#define FUZZ_CHECK(cond, ...) do {					\
	if (!(cond))							\
		fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);	\
} while (0)
void	fuzz_fail(const char *file, int line, const char *cond,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5),
	    noreturn));

/* Whether a and b hold the same octets. */
int	fbuf_equal(const struct fbuf *, const struct fbuf *);
/* Abort with the first difference unless got equals want. */
void	fbuf_expect(const char *what, const struct fbuf *got,
	    const struct fbuf *want);

/*
 * An unlinked temporary file, in $TMPDIR or /tmp.  fuzz_rewrite() makes
 * it hold exactly len octets of data, its offset at the start.
 */
int	fuzz_tempfd(const char *tag);
void	fuzz_rewrite(int fd, const void *data, size_t len);
/* Read all of fd from offset 0 into b (replacing its contents). */
void	fuzz_readall(int fd, struct fbuf *b);

/* xorshift32, seeded from the input: split points that reproduce. */
uint32_t fuzz_rng(uint32_t *);

/*
 * The rules of stream.h applied one octet at a time: RETR when
 * lines < 0, else TOP with that many body lines.  Replaces out.
 */
void	fuzz_ref_convert(const char *in, size_t len, long lines,
	    struct fbuf *out);
/* Remove the stuffing dot of every line that starts with "." */
void	fuzz_unstuff(const char *in, size_t len, struct fbuf *out);
/*
 * Check what the converter sent: every LF has its CR, a non-empty
 * output ends in CRLF, and no line is a lone "." (the terminator).
 */
void	fuzz_check_wire(const char *what, const struct fbuf *);

#endif
