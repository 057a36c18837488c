/*
 * base64.c: strict base64 decoding (RFC 4648).
 */
#include "base64.h"

static int	b64_value(char);

/* The value of a base64 digit, or -1. */
static int
b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

ssize_t
base64_decode(const char *in, size_t len, unsigned char *out, size_t outlen)
{
	size_t i, j, o = 0, pad;
	unsigned long v;
	int d;

	if (len % 4 != 0 || BASE64_DECODED_MAX(len) > outlen)
		return -1;
	for (i = 0; i < len; i += 4) {
		/* Padding: one or two '=' in the last group only. */
		pad = 0;
		if (i + 4 == len) {
			if (in[i + 3] == '=')
				pad = in[i + 2] == '=' ? 2 : 1;
		}
		v = 0;
		for (j = 0; j < 4; j++) {
			if (j >= 4 - pad) {
				v <<= 6;
				continue;
			}
			if ((d = b64_value(in[i + j])) == -1)
				return -1;
			v = v << 6 | (unsigned long)d;
		}
		/* Canonical: the bits that padding drops are zero. */
		if ((pad == 1 && (v & 0xff) != 0) ||
		    (pad == 2 && (v & 0xffff) != 0))
			return -1;
		out[o++] = (unsigned char)(v >> 16);
		if (pad < 2)
			out[o++] = (unsigned char)(v >> 8);
		if (pad < 1)
			out[o++] = (unsigned char)v;
	}
	return (ssize_t)o;
}
