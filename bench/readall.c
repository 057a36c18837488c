/*
 * readall: open, read to the end and close each file named on standard
 * input (NUL-terminated names), with one buffer for all: the floor of a
 * first login that must read every message once to learn its size.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char	buf[128 * 1024];

int
main(void)
{
	char name[4096];
	size_t n = 0;
	int c, fd;

	while ((c = getchar()) != EOF) {
		if (c != '\0') {
			if (n + 1 >= sizeof(name))
				return 2;
			name[n++] = (char)c;
			continue;
		}
		name[n] = '\0';
		n = 0;
		if ((fd = open(name, O_RDONLY)) == -1) {
			perror(name);
			return 1;
		}
		while (read(fd, buf, sizeof(buf)) > 0)
			;
		close(fd);
	}
	return 0;
}
