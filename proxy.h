/*
 * proxy.h: the HAProxy PROXY protocol, versions 1 (text) and 2 (binary).
 *
 * A load balancer in front of pop3d sends one header before any POP3
 * octet, naming the client it accepted the connection from.  pop3d reads
 * it only when told to (--proxy-protocol); a connection without a valid
 * header is then refused.
 */
#ifndef PROXY_H
#define PROXY_H

#include <stddef.h>

/* The longest v1 header (with CRLF) and the v2 fixed part. */
#define PROXY_V1_MAX	107
#define PROXY_V2_HEAD	16
/* The most a v2 header may carry after its fixed part (TLVs too). */
#define PROXY_V2_MAX	1024

enum proxy_result {
	PROXY_ADDR,		/* addr holds the client's address */
	PROXY_LOCAL,		/* no client address: the balancer's own
				   connection (v1 UNKNOWN, v2 LOCAL) */
	PROXY_BAD		/* not a valid header */
};

/*
 * Parse a v1 header line of len octets, CRLF included.  On PROXY_ADDR
 * the source address is written to addr as text.
 */
enum proxy_result proxy_parse_v1(const char *line, size_t len, char *addr,
	    size_t addrlen);

/* Parse a whole v2 header (fixed part and the rest), the same way. */
enum proxy_result proxy_parse_v2(const unsigned char *hdr, size_t len,
	    char *addr, size_t addrlen);

/*
 * Read and parse the header from fd, waiting at most timeout seconds for
 * it, and reading not one octet past it.
 */
enum proxy_result proxy_read(int fd, unsigned int timeout, char *addr,
	    size_t addrlen);

#endif
