/*
 * fuzz_sasl.c: strict base64 (base64.h) and SASL PLAIN messages
 * (auth_sasl_plain() in auth.h), on arbitrary octets.
 *
 * base64_decode() must agree with a reference decoder that follows RFC
 * 4648 section 4 to the letter (length a multiple of 4, '=' only as the
 * last one or two octets, no other octet outside the alphabet, the bits
 * the padding drops zero), and must write only into the buffer it is
 * given, of BASE64_DECODED_MAX(len) octets or one less (exact heap
 * blocks, so that ASan sees an overrun).  Whatever
 * it accepts is canonical: encoding the result again gives the input
 * back.  The input's octets, encoded by the reference, must decode to
 * themselves.  auth_sasl_plain() must agree with a reference split of
 * "authzid NUL authcid NUL password", on the raw input and on what the
 * input decodes to, as the AUTH PLAIN command hands it over.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../auth.h"
#include "../../base64.h"
#include "fuzz_common.h"

/* The longest SASL PLAIN field (RFC 4616 allows 255 octets). */
#define PLAIN_FIELD_MAX	255

static const char b64_digits[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int	ref_value(unsigned char);
static ssize_t	ref_decode(const unsigned char *, size_t, unsigned char *);
static void	ref_encode(const unsigned char *, size_t, struct tbuf *);
static void	check_decode(const unsigned char *, size_t);
static void	check_round_trip(const unsigned char *, size_t);
static int	ref_plain(const char *, size_t, size_t *, size_t *);
static void	check_plain(const unsigned char *, size_t);

static int
ref_value(unsigned char c)
{
	const char *p;

	if (c == '\0' || (p = strchr(b64_digits, c)) == NULL)
		return -1;
	return (int)(p - b64_digits);
}

/* RFC 4648 decoding of canonical input only; -1 for anything else. */
static ssize_t
ref_decode(const unsigned char *in, size_t len, unsigned char *out)
{
	size_t i, j, o = 0, pad = 0;
	uint32_t v;
	int d;

	if (len % 4 != 0)
		return -1;
	if (len > 0 && in[len - 1] == '=')
		pad = len > 1 && in[len - 2] == '=' ? 2 : 1;
	for (i = 0; i < len; i += 4) {
		v = 0;
		for (j = 0; j < 4; j++) {
			if (i + j >= len - pad) {
				v <<= 6;
				continue;
			}
			if ((d = ref_value(in[i + j])) == -1)
				return -1;
			v = v << 6 | (uint32_t)d;
		}
		if (i + 4 == len && pad > 0 &&
		    (v & (pad == 1 ? 0xffu : 0xffffu)) != 0)
			return -1;
		out[o++] = (unsigned char)(v >> 16);
		if (i + 4 < len || pad < 2)
			out[o++] = (unsigned char)(v >> 8);
		if (i + 4 < len || pad < 1)
			out[o++] = (unsigned char)v;
	}
	return (ssize_t)o;
}

static void
ref_encode(const unsigned char *in, size_t len, struct tbuf *out)
{
	char q[4];
	uint32_t v;
	size_t i;

	tbuf_reset(out);
	for (i = 0; i < len; i += 3) {
		v = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		q[0] = b64_digits[v >> 18 & 63];
		q[1] = b64_digits[v >> 12 & 63];
		q[2] = i + 1 < len ? b64_digits[v >> 6 & 63] : '=';
		q[3] = i + 2 < len ? b64_digits[v & 63] : '=';
		tbuf_add(out, q, 4);
	}
}

static void
check_decode(const unsigned char *in, size_t len)
{
	size_t max = BASE64_DECODED_MAX(len);
	unsigned char *out, *ref;
	struct tbuf again = { 0 };
	ssize_t n, r;

	/* Exact heap blocks: one octet too many written is an overrun. */
	if (((out = malloc(max)) == NULL && max > 0) ||
	    (ref = malloc(max + 1)) == NULL)
		abort();
	n = base64_decode((const char *)in, len, out, max);
	r = ref_decode(in, len, ref);
	FUZZ_CHECK(n == r, "base64_decode gave %zd, the reference %zd", n, r);
	FUZZ_CHECK(n < 0 || (size_t)n <= max, "%zd octets from %zu", n, len);
	if (n > 0)
		FUZZ_CHECK(memcmp(out, ref, (size_t)n) == 0,
		    "base64_decode: other octets than the reference");
	if (n >= 0) {
		/* Canonical: the one encoding of what it decoded to. */
		ref_encode(out, (size_t)n, &again);
		FUZZ_CHECK(again.len == len && (len == 0 ||
		    memcmp(again.data, in, len) == 0),
		    "accepted a form that is not canonical");
		check_plain(out, (size_t)n);
	}
	free(out);
	/* One octet less room: refused, or the same result within it. */
	if (max > 0) {
		if ((out = malloc(max - 1)) == NULL && max > 1)
			abort();
		n = base64_decode((const char *)in, len, out, max - 1);
		FUZZ_CHECK(n == -1 || (n == r && (n == 0 ||
		    memcmp(out, ref, (size_t)n) == 0)),
		    "base64_decode into %zu octets gave %zd", max - 1, n);
		free(out);
	}
	free(ref);
	tbuf_free(&again);
}

static void
check_round_trip(const unsigned char *in, size_t len)
{
	struct tbuf enc = { 0 };
	unsigned char *out;
	ssize_t n;

	ref_encode(in, len, &enc);
	if ((out = malloc(BASE64_DECODED_MAX(enc.len) + 1)) == NULL)
		abort();
	n = base64_decode(enc.data, enc.len, out,
	    BASE64_DECODED_MAX(enc.len));
	FUZZ_CHECK(n == (ssize_t)len, "round trip of %zu octets gave %zd",
	    len, n);
	FUZZ_CHECK(len == 0 || memcmp(out, in, len) == 0,
	    "round trip changed the octets");
	free(out);
	tbuf_free(&enc);
}

/*
 * RFC 4616 with pop3d's limits: exactly two NULs, authcid and password
 * of 1 to 255 octets, authzid of at most 255 and empty or the authcid.
 * 0 with the offsets of authcid and password, or -1.
 */
static int
ref_plain(const char *msg, size_t len, size_t *authcid, size_t *password)
{
	size_t i, nul[2], nnul = 0, zlen, clen, plen;

	for (i = 0; i < len; i++) {
		if (msg[i] != '\0')
			continue;
		if (nnul == 2)
			return -1;
		nul[nnul++] = i;
	}
	if (nnul != 2)
		return -1;
	zlen = nul[0];
	clen = nul[1] - nul[0] - 1;
	plen = len - nul[1] - 1;
	if (clen == 0 || plen == 0 || zlen > PLAIN_FIELD_MAX ||
	    clen > PLAIN_FIELD_MAX || plen > PLAIN_FIELD_MAX)
		return -1;
	if (zlen != 0 && (zlen != clen ||
	    memcmp(msg, msg + nul[0] + 1, zlen) != 0))
		return -1;
	*authcid = nul[0] + 1;
	*password = nul[1] + 1;
	return 0;
}

static void
check_plain(const unsigned char *in, size_t len)
{
	const char *authcid = NULL, *password = NULL;
	size_t c = 0, p = 0;
	char *msg;
	int r, want;

	/* NUL-terminated after len octets, as the session leaves it. */
	if ((msg = malloc(len + 1)) == NULL)
		abort();
	if (len > 0)
		memcpy(msg, in, len);
	msg[len] = '\0';
	r = auth_sasl_plain(msg, len, &authcid, &password);
	want = ref_plain(msg, len, &c, &p);
	FUZZ_CHECK(r == want, "auth_sasl_plain gave %d, the reference %d", r,
	    want);
	if (r == 0)
		FUZZ_CHECK(authcid == msg + c && password == msg + p,
		    "auth_sasl_plain split at other places");
	free(msg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_decode(data, size);
	check_round_trip(data, size);
	check_plain(data, size);
	return 0;
}
