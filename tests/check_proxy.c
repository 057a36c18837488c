/*
 * check_proxy.c: the PROXY protocol header parsers (proxy.c).
 */
#include <arpa/inet.h>

#include <check.h>
#include <string.h>
#include <unistd.h>

#include "../proxy.h"
#include "check_pop3d.h"

static enum proxy_result
v1(const char *line, char *addr, size_t len)
{
	return proxy_parse_v1(line, strlen(line), addr, len);
}

/* A v2 header of command cmd and family fam around body. */
static size_t
v2(unsigned char *buf, int cmd, int fam, const void *body, size_t len)
{
	static const unsigned char sig[12] = {
		0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49,
		0x54, 0x0a
	};

	memcpy(buf, sig, sizeof(sig));
	buf[12] = (unsigned char)(0x20 | cmd);
	buf[13] = (unsigned char)fam;
	buf[14] = (unsigned char)(len >> 8);
	buf[15] = (unsigned char)len;
	memcpy(buf + 16, body, len);
	return 16 + len;
}

START_TEST(test_proxy_v1_addresses)
{
	char addr[64];

	ck_assert_int_eq(v1("PROXY TCP4 192.0.2.1 10.0.0.1 5555 110\r\n", addr,
	    sizeof(addr)), PROXY_ADDR);
	ck_assert_str_eq(addr, "192.0.2.1");
	ck_assert_int_eq(v1("PROXY TCP6 2001:db8::1 ::1 0 65535\r\n", addr,
	    sizeof(addr)), PROXY_ADDR);
	ck_assert_str_eq(addr, "2001:db8::1");
	ck_assert_int_eq(v1("PROXY UNKNOWN\r\n", addr, sizeof(addr)),
	    PROXY_LOCAL);
	ck_assert_int_eq(v1("PROXY UNKNOWN junk here\r\n", addr,
	    sizeof(addr)), PROXY_LOCAL);
}
END_TEST

START_TEST(test_proxy_v1_malformed)
{
	static const char *const bad[] = {
		"", "PROXY\r\n", "PROXY \r\n", "proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n",
		"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n",
		"PROXY TCP4 1.2.3.4 1.2.3.4 1 2",
		"PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n",
		"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n",
		"PROXY TCP4 1.2.3.4  1.2.3.4 1 2\r\n",
		"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 \r\n",
		"PROXY TCP4 ::1 1.2.3.4 1 2\r\n",
		"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
		"PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n",
		"PROXY TCP4 1.2.3.4 1.2.3.4 -1 2\r\n",
		"PROXY TCP4 1.2.3.4 1.2.3.4 1x 2\r\n",
		"PROXY TCP4 1.2.3.256 1.2.3.4 1 2\r\n",
		"PROXY UNKNOWNX\r\n", "PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n",
		NULL
	};
	char addr[64];
	size_t i;

	for (i = 0; bad[i] != NULL; i++)
		ck_assert_msg(v1(bad[i], addr, sizeof(addr)) == PROXY_BAD,
		    "accepted %s", bad[i]);
	/* Too long for the caller's buffer. */
	ck_assert_int_eq(v1("PROXY TCP6 2001:db8::1 ::1 1 2\r\n", addr, 8),
	    PROXY_BAD);
}
END_TEST

START_TEST(test_proxy_v2)
{
	unsigned char hdr[128], body[64];
	char addr[64];
	size_t n;

	memset(body, 0, sizeof(body));
	inet_pton(AF_INET, "198.51.100.7", body);
	n = v2(hdr, 1, 0x11, body, 12);
	ck_assert_int_eq(proxy_parse_v2(hdr, n, addr, sizeof(addr)),
	    PROXY_ADDR);
	ck_assert_str_eq(addr, "198.51.100.7");
	inet_pton(AF_INET6, "2001:db8::7", body);
	n = v2(hdr, 1, 0x21, body, 40);		/* with a TLV after it */
	ck_assert_int_eq(proxy_parse_v2(hdr, n, addr, sizeof(addr)),
	    PROXY_ADDR);
	ck_assert_str_eq(addr, "2001:db8::7");
	n = v2(hdr, 0, 0x00, body, 0);		/* LOCAL */
	ck_assert_int_eq(proxy_parse_v2(hdr, n, addr, sizeof(addr)),
	    PROXY_LOCAL);
	n = v2(hdr, 1, 0x00, body, 0);		/* PROXY, AF_UNSPEC */
	ck_assert_int_eq(proxy_parse_v2(hdr, n, addr, sizeof(addr)),
	    PROXY_LOCAL);
	n = v2(hdr, 1, 0x11, body, 8);		/* address block cut */
	ck_assert_int_eq(proxy_parse_v2(hdr, n, addr, sizeof(addr)),
	    PROXY_BAD);
	n = v2(hdr, 2, 0x11, body, 12);		/* unknown command */
	ck_assert_int_eq(proxy_parse_v2(hdr, n, addr, sizeof(addr)),
	    PROXY_BAD);
	n = v2(hdr, 1, 0x11, body, 12);
	ck_assert_int_eq(proxy_parse_v2(hdr, n - 1, addr, sizeof(addr)),
	    PROXY_BAD);			/* length disagrees */
	hdr[12] = 0x11;			/* version 1 */
	ck_assert_int_eq(proxy_parse_v2(hdr, n, addr, sizeof(addr)),
	    PROXY_BAD);
	n = v2(hdr, 1, 0x11, body, 12);
	hdr[3] = 'x';			/* signature */
	ck_assert_int_eq(proxy_parse_v2(hdr, n, addr, sizeof(addr)),
	    PROXY_BAD);
}
END_TEST

/* proxy_read reads the header and not one octet more. */
START_TEST(test_proxy_read_stops_at_header)
{
	static const char in[] = "PROXY TCP4 192.0.2.9 10.0.0.1 1 110\r\nCAPA\r\n";
	unsigned char hdr[64], body[12] = { 192, 0, 2, 10 };
	char addr[64], rest[16];
	int p[2];
	size_t n;

	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(write(p[1], in, sizeof(in) - 1), sizeof(in) - 1);
	ck_assert_int_eq(proxy_read(p[0], 5, addr, sizeof(addr)), PROXY_ADDR);
	ck_assert_str_eq(addr, "192.0.2.9");
	ck_assert_int_eq(read(p[0], rest, 6), 6);
	ck_assert_int_eq(memcmp(rest, "CAPA\r\n", 6), 0);
	n = v2(hdr, 1, 0x11, body, sizeof(body));
	ck_assert_int_eq(write(p[1], hdr, n), (ssize_t)n);
	ck_assert_int_eq(write(p[1], "NOOP", 4), 4);
	ck_assert_int_eq(proxy_read(p[0], 5, addr, sizeof(addr)), PROXY_ADDR);
	ck_assert_str_eq(addr, "192.0.2.10");
	ck_assert_int_eq(read(p[0], rest, 4), 4);
	ck_assert_int_eq(memcmp(rest, "NOOP", 4), 0);
	/* End of input before a whole header. */
	ck_assert_int_eq(write(p[1], "PROXY TCP4", 10), 10);
	close(p[1]);
	ck_assert_int_eq(proxy_read(p[0], 5, addr, sizeof(addr)), PROXY_BAD);
	close(p[0]);
}
END_TEST

Suite *
proxy_suite(void)
{
	Suite *s = suite_create("proxy");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, test_proxy_v1_addresses);
	tcase_add_test(tc, test_proxy_v1_malformed);
	tcase_add_test(tc, test_proxy_v2);
	tcase_add_test(tc, test_proxy_read_stops_at_header);
	suite_add_tcase(s, tc);
	return s;
}
