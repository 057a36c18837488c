/*
 * proxy.c: read the PROXY protocol header a load balancer sends first.
 *
 * The header is read in pieces of known length (v2) or one octet at a
 * time up to its LF (v1), so that the POP3 octets after it stay unread
 * for the session.  Every field is checked; anything else is PROXY_BAD.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proxy.h"

static const unsigned char v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

static int	port_valid(const char *, size_t);
static int	read_full(int, void *, size_t, const struct timespec *);

/* A port: 1 to 5 digits, at most 65535. */
static int
port_valid(const char *s, size_t len)
{
	unsigned long v = 0;
	size_t i;

	if (len == 0 || len > 5)
		return 0;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	return v <= 65535;
}

enum proxy_result
proxy_parse_v1(const char *line, size_t len, char *addr, size_t addrlen)
{
	char field[4][48], buf[PROXY_V1_MAX + 1];
	unsigned char bin[16];
	const char *p;
	size_t n, i;
	int af;

	if (len < 8 || len > PROXY_V1_MAX || memcmp(line, "PROXY ", 6) != 0 ||
	    line[len - 2] != '\r' || line[len - 1] != '\n')
		return PROXY_BAD;
	n = len - 8;		/* without "PROXY " and CRLF */
	memcpy(buf, line + 6, n);
	buf[n] = '\0';
	if (n >= 7 && memcmp(buf, "UNKNOWN", 7) == 0 &&
	    (n == 7 || buf[7] == ' '))
		return PROXY_LOCAL;	/* the rest may be anything */
	if (strncmp(buf, "TCP4 ", 5) == 0)
		af = AF_INET;
	else if (strncmp(buf, "TCP6 ", 5) == 0)
		af = AF_INET6;
	else
		return PROXY_BAD;
	/* src dst sport dport, one space apart. */
	p = buf + 5;
	for (i = 0; i < 4; i++) {
		n = strcspn(p, " ");
		if (n == 0 || n >= sizeof(field[0]) ||
		    (i < 3 ? p[n] != ' ' : p[n] != '\0'))
			return PROXY_BAD;
		memcpy(field[i], p, n);
		field[i][n] = '\0';
		p += n + (i < 3);
	}
	if (inet_pton(af, field[0], bin) != 1 ||
	    inet_pton(af, field[1], bin) != 1 ||
	    !port_valid(field[2], strlen(field[2])) ||
	    !port_valid(field[3], strlen(field[3])) ||
	    strlen(field[0]) >= addrlen)
		return PROXY_BAD;
	memcpy(addr, field[0], strlen(field[0]) + 1);
	return PROXY_ADDR;
}

enum proxy_result
proxy_parse_v2(const unsigned char *hdr, size_t len, char *addr,
    size_t addrlen)
{
	size_t body;

	if (len < PROXY_V2_HEAD || memcmp(hdr, v2_sig, sizeof(v2_sig)) != 0 ||
	    (hdr[12] & 0xf0) != 0x20)
		return PROXY_BAD;
	body = (size_t)hdr[14] << 8 | hdr[15];
	if (len != PROXY_V2_HEAD + body)
		return PROXY_BAD;
	switch (hdr[12] & 0x0f) {
	case 0x0:
		return PROXY_LOCAL;	/* the balancer's health check */
	case 0x1:
		break;
	default:
		return PROXY_BAD;
	}
	switch (hdr[13] >> 4) {
	case 0x0:
		return PROXY_LOCAL;	/* AF_UNSPEC: nothing to say */
	case 0x1:
		if (body < 12 || inet_ntop(AF_INET, hdr + 16, addr,
		    (socklen_t)addrlen) == NULL)
			return PROXY_BAD;
		return PROXY_ADDR;
	case 0x2:
		if (body < 36 || inet_ntop(AF_INET6, hdr + 16, addr,
		    (socklen_t)addrlen) == NULL)
			return PROXY_BAD;
		return PROXY_ADDR;
	default:
		return PROXY_LOCAL;	/* AF_UNIX: no address to log */
	}
}

/* Read exactly len octets before the deadline.  0, or -1. */
static int
read_full(int fd, void *buf, size_t len, const struct timespec *deadline)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct timespec now;
	size_t off = 0;
	long long ms;
	ssize_t n;

	while (off < len) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (deadline->tv_sec - now.tv_sec) * 1000LL +
		    (deadline->tv_nsec - now.tv_nsec) / 1000000;
		if (ms <= 0)
			return -1;
		n = poll(&pfd, 1, ms > 60000 ? 60000 : (int)ms);
		if (n == -1 && errno != EINTR)
			return -1;
		if (n <= 0)
			continue;	/* the loop checks the clock */
		n = read(fd, (char *)buf + off, len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

enum proxy_result
proxy_read(int fd, unsigned int timeout, char *addr, size_t addrlen)
{
	unsigned char buf[PROXY_V2_HEAD + PROXY_V2_MAX];
	struct timespec deadline;
	size_t len = 6, body;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout;
	if (read_full(fd, buf, len, &deadline) == -1)
		return PROXY_BAD;
	if (memcmp(buf, "PROXY ", 6) == 0) {
		/* v1: up to the LF, one octet at a time. */
		while (buf[len - 1] != '\n') {
			if (len == PROXY_V1_MAX ||
			    read_full(fd, buf + len, 1, &deadline) == -1)
				return PROXY_BAD;
			len++;
		}
		return proxy_parse_v1((const char *)buf, len, addr, addrlen);
	}
	if (memcmp(buf, v2_sig, 6) != 0 ||
	    read_full(fd, buf + len, PROXY_V2_HEAD - len, &deadline) == -1)
		return PROXY_BAD;
	body = (size_t)buf[14] << 8 | buf[15];
	if (body > PROXY_V2_MAX ||
	    read_full(fd, buf + PROXY_V2_HEAD, body, &deadline) == -1)
		return PROXY_BAD;
	return proxy_parse_v2(buf, PROXY_V2_HEAD + body, addr, addrlen);
}
