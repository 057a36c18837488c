/*
 * md5.h: MD5 (RFC 1321), for APOP digests and stable fallback UIDLs.
 * Not used for anything that needs collision resistance.
 */
#ifndef MD5_H
#define MD5_H

#include <stddef.h>
#include <stdint.h>

#define MD5_DIGEST_LEN	16

struct md5 {
	uint32_t	state[4];
	uint64_t	bytes;
	unsigned char	block[64];
};

void	md5_init(struct md5 *);
void	md5_update(struct md5 *, const void *, size_t);
void	md5_final(struct md5 *, unsigned char digest[MD5_DIGEST_LEN]);

/* The digest of buf as 32 lower-case hex digits and a NUL. */
void	md5_hex(const void *buf, size_t len, char hex[2 * MD5_DIGEST_LEN + 1]);

#endif
