# pop3d: a POP3 server for xinetd, systemd, tcpserver and s6.

PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
DESTDIR ?=

CC ?= cc
PYTHON ?= python3

WARN = -std=c11 -Wall -Wextra -Werror -Wshadow -Wconversion \
	-Wpointer-arith -Wcast-qual -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wsign-compare -Werror=implicit-function-declaration
HARDEN = -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
POP3D_CPPFLAGS = -D_DEFAULT_SOURCE -D_XOPEN_SOURCE=700
POP3D_CFLAGS = -O2 -g -pthread $(WARN) $(HARDEN)
POP3D_LDFLAGS = -pie -Wl,-z,relro,-z,now,-z,noexecstack
LIBS = -lcrypt -pthread

ALL_CFLAGS = $(POP3D_CPPFLAGS) $(POP3D_CFLAGS) $(CPPFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(POP3D_LDFLAGS) $(LDFLAGS)

OBJS = session.o store.o auth.o stream.o md5.o log.o proxy.o base64.o fmt.o \
	mbox.o uidl.o admin.o
TEST_OBJS = tests/ref.o tests/check_main.o tests/check_session.o tests/check_store.o \
	tests/check_fmt.o \
	tests/check_auth.o tests/check_stream.o tests/check_proxy.o \
	tests/check_sasl.o tests/check_mbox.o tests/check_uidl.o

all: pop3d

pop3d: pop3d.o $(OBJS)
	$(CC) $(ALL_CFLAGS) -o $@ pop3d.o $(OBJS) $(ALL_LDFLAGS) $(LIBS)

.c.o:
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

tests/check_pop3d: $(TEST_OBJS) $(OBJS)
	$(CC) $(ALL_CFLAGS) -o $@ $(TEST_OBJS) $(OBJS) $(ALL_LDFLAGS) \
		$(LIBS) `pkg-config --libs check`

$(TEST_OBJS): tests/check_pop3d.h
$(TEST_OBJS): CFLAGS += `pkg-config --cflags check`

# The tests: Check unit tests, then the real binary end to end.
check: deps
	$(MAKE) pop3d tests/check_pop3d
	cd tests && ./check_pop3d
	$(PYTHON) tests/e2e.py --pop3d ./pop3d

# Installs what the tests need when it is missing (Debian, as root).
deps:
	@sh tests/deps.sh

# The same tests built with AddressSanitizer and UBSan.
check-asan sanitize:
	$(MAKE) clean
	$(MAKE) check POP3D_CFLAGS="-O1 -g -pthread $(WARN) -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
		POP3D_LDFLAGS="-fsanitize=address,undefined"
	$(MAKE) clean

# The unit and end-to-end tests with every pop3d under valgrind memcheck,
# errors fatal (tests/valgrind.sh; needs valgrind).
check-valgrind: deps
	$(MAKE) pop3d tests/check_pop3d
	PYTHON=$(PYTHON) sh tests/valgrind.sh

# Static checks: cppcheck (KNF declares at the top of a function, so the
# scope hint is off) and clang-tidy with .clang-tidy.
SRCS = pop3d.c $(OBJS:.o=.c)
lint:
	cppcheck --enable=warning,style,performance,portability --std=c11 \
		--error-exitcode=1 --quiet --suppress=variableScope \
		-D_DEFAULT_SOURCE $(SRCS)
	clang-tidy --quiet --warnings-as-errors='*' $(SRCS) -- \
		$(POP3D_CPPFLAGS) -std=c11

# The libFuzzer harnesses in tests/fuzz (clang, libFuzzer), FUZZ_SECONDS
# each; 0 replays the seed corpora once.
FUZZ_SECONDS ?= 60
fuzz:
	sh tests/fuzz/run.sh $(FUZZ_SECONDS)

# The benchmark against Dovecot and popa3d (see README.md, Performance);
# QUICK=1 runs the 10,000-message mailbox only.  Not part of check.
bench: pop3d
	$(PYTHON) bench/bench.py $(if $(QUICK),--quick)

# A demo mailbox served on 127.0.0.1:1110 (user demo, password demo).
demo: pop3d
	@sh tests/demo.sh

# The binary and the man page; the example configurations go under
# share/pop3d with the binary's path in them, to be copied into place
# (see README.md, "Deploy").
SHAREDIR = $(PREFIX)/share/pop3d
EXAMPLES = xinetd.d/pop3 xinetd.d/pop3s systemd/pop3d.socket \
	systemd/pop3d@.service systemd/pop3s.socket systemd/pop3s@.service \
	tcpserver/run tcpserver/rules s6/pop3d/run s6/pop3d/type \
	stunnel/pop3s.conf stunnel/pop3s-inetd.conf \
	fail2ban/filter.d/pop3d.conf fail2ban/jail.d/pop3d.conf

install: pop3d
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8
	install -m 755 pop3d $(DESTDIR)$(SBINDIR)/pop3d
	install -m 644 pop3d.8 $(DESTDIR)$(MANDIR)/man8/pop3d.8
	for f in $(EXAMPLES); do \
		install -d $(DESTDIR)$(SHAREDIR)/`dirname $$f` && \
		sed 's|/usr/local/sbin/pop3d|$(SBINDIR)/pop3d|g' $$f \
			> $(DESTDIR)$(SHAREDIR)/$$f && \
		chmod 644 $(DESTDIR)$(SHAREDIR)/$$f || exit 1; \
	done
	chmod 755 $(DESTDIR)$(SHAREDIR)/tcpserver/run \
		$(DESTDIR)$(SHAREDIR)/s6/pop3d/run

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/pop3d $(DESTDIR)$(MANDIR)/man8/pop3d.8
	rm -rf $(DESTDIR)$(SHAREDIR)

clean:
	rm -f pop3d *.o $(OBJS:.o=.d) pop3d.d tests/*.o $(TEST_OBJS:.o=.d) tests/check_pop3d
	rm -rf tests/fuzz/build

.PHONY: all check deps check-asan sanitize check-valgrind lint fuzz bench demo install uninstall clean

-include $(OBJS:.o=.d) pop3d.d $(TEST_OBJS:.o=.d)
