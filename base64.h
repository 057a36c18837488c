/*
 * base64.h: strict base64 decoding (RFC 4648 section 4), for SASL.
 */
#ifndef BASE64_H
#define BASE64_H

#include <stddef.h>
#include <sys/types.h>

/* Octets that decoding len characters can give, at most. */
#define BASE64_DECODED_MAX(len)	((len) / 4 * 3)

/*
 * Decode len characters of in into out (outlen octets).  Only the
 * canonical form is accepted: a length that is a multiple of 4, '='
 * padding only at the end, no white space, unused bits zero.  Returns
 * the decoded length, or -1.
 */
ssize_t	base64_decode(const char *in, size_t len, unsigned char *out,
	    size_t outlen);

#endif
