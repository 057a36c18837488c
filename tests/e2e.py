#!/usr/bin/env python3
"""End-to-end tests of pop3d: the binary driven over pipes and over TCP.

Usage: python3 tests/e2e.py [--pop3d PATH] [-v] [-k PATTERN ...]
                            [--shard K/N]

Each test builds its mailbox in a fresh temporary directory and kills
every process it started.  The last line printed is
"e2e: N passed, N failed[, N skipped]"; the exit status is 1 if any test
failed.
"""

import argparse
import base64
import hashlib
import os
import poplib
import re
import shutil
import socket
import stat
import struct
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import admin_check_e2e  # noqa: E402
import admin_e2e  # noqa: E402
import auth_e2e  # noqa: E402
import deploy  # noqa: E402
import fault_e2e  # noqa: E402
import launchers  # noqa: E402
import mbox_e2e  # noqa: E402
import migrate_e2e  # noqa: E402
from pop3test import (Box, Listener, Pop3Assertions, check_status, convert,  # noqa: E402
                      proc_status, stuff, top, unstuff, valgrind_test, wire,
                      SLOW, UNDER_VALGRIND, VALGRIND_FD_MIN)

POP3D = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'pop3d')
IS_ROOT = os.geteuid() == 0

# Message files covering the line-end and byte-stuffing cases.
SAMPLES = [
    ('lf', b'From: a@example.org\nSubject: lf\n\nline one\nline two\n'),
    ('crlf', b'From: b@example.org\r\nSubject: crlf\r\n\r\n'
             b'line one\r\nline two\r\n'),
    ('mixed', b'From: c@example.org\r\nSubject: mixed\n\r\n'
              b'body\r\nmore\nend\n'),
    ('no final newline', b'From: d@example.org\nSubject: nofinal\n\nlast'),
    ('empty', b''),
    ('dot lines', b'From: e@example.org\nSubject: dots\n\n'
                  b'.\n..\n.x\n...\nend\n.\n'),
    ('dot at end without newline', b'From: f@example.org\n\nbody\n.'),
    ('dot on first line', b'.From: g@example.org\nSubject: x\n\nbody\n'),
    ('lone newline', b'\n'),
    ('crlf dots', b'Subject: h\r\n\r\n.\r\n.x\r\n..\r\nend\r\n'),
]

CAPA_AUTHORIZATION = {'TOP', 'USER', 'UIDL', 'RESP-CODES', 'PIPELINING',
                      'EXPIRE NEVER', 'LOGIN-DELAY 0', 'AUTH-RESP-CODE',
                      'SASL PLAIN LOGIN', 'UTF8 USER'}

LIST_RE = re.compile(rb'\+OK (\d+) (\d+)\r\n\Z')


# The calls that open or look at a file by name.
TOUCH_CALLS = 'open,openat,stat,newfstatat,statx,lstat'


def cache_sum(h, data):
    """The checksum of pop3d.sizes, taken line by line: FNV-1a's step on
    eight octets at a time (in the machine's order), the high half folded
    down."""
    m = (1 << 64) - 1
    whole = len(data) - len(data) % 8
    for i in range(0, whole, 8):
        h = ((h ^ int.from_bytes(data[i:i + 8], sys.byteorder)) *
             0x100000001b3) & m
        h ^= h >> 32
    for b in data[whole:]:
        h = ((h ^ b) * 0x100000001b3) & m
        h ^= h >> 32
    return h


def msg(n):
    """A small distinct message."""
    return (b'From: sender%d@example.org\nSubject: message %d\n\n'
            b'This is message %d.\n' % (n, n, n))


def run(args, stdin=b'', timeout=10):
    return subprocess.run([POP3D] + args, input=stdin, capture_output=True,
                          timeout=timeout)


class Pop3Test(Pop3Assertions, unittest.TestCase):
    """A test with its own mailbox."""

    def setUp(self):
        self.box = Box(POP3D)
        self.addCleanup(self.box.cleanup)

    def list_size(self, s, n):
        m = LIST_RE.match(s.cmd('LIST %d' % n))
        self.assertTrue(m, 'LIST %d' % n)
        self.assertEqual(int(m.group(1)), n)
        return int(m.group(2))



class CommandLineTest(Pop3Test):

    def test_version(self):
        for opt in ('-V', '--version'):
            r = run([opt])
            self.assertEqual(r.returncode, 0, opt)
            self.assertRegex(r.stdout, rb'\Apop3d \S+\n\Z', opt)

    def test_help(self):
        for opt in ('-h', '--help'):
            r = run([opt])
            self.assertEqual(r.returncode, 0, opt)
            self.assertIn(b'usage', (r.stdout + r.stderr).lower(), opt)

    def test_usage_errors_exit_64(self):
        for args in (['--no-such-option'], ['-Z'], ['-u'],
                     ['--timeout', 'abc']):
            r = run(args)
            self.assertEqual(r.returncode, 64, args)
            self.assertNotIn(b'+OK', r.stdout, args)

    def test_hash_password(self):
        r = run(['--hash-password'], b'correct horse\n')
        self.assertEqual(r.returncode, 0)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 1, r.stdout)
        hash1 = lines[0].decode()
        self.assertNotIn('correct horse', hash1)
        self.assertNotIn(':', hash1)
        hash2 = run(['--hash-password'], b'correct horse\n').stdout.strip()
        self.assertNotEqual(hash1.encode(), hash2, 'same salt twice')
        box = self.box
        box.add_user('carol', hash1)
        box.add_user('dave', '{CRYPT}' + hash1)
        for user in ('carol', 'dave'):
            s = box.start()
            s.ok('USER ' + user)
            self.assertErr(s.cmd('PASS correct horsE'), b'-ERR [AUTH]')
            s.ok('USER ' + user)
            s.ok('PASS correct horse')
            s.ok('STAT')
            s.quit()


class GreetingSyntaxTest(Pop3Test):

    def test_greeting_is_one_line_at_once(self):
        s = self.box.start()
        self.assertTrue(s.greeting.startswith(b'+OK'))
        s.quiet()
        self.assertOk(s.cmd('QUIT'))
        self.assertEqual(s.read_eof(), b'')
        self.assertEqual(s.wait(), 0)

    def test_commands_case_insensitive(self):
        self.box.deliver(msg(1))
        s = self.box.start()
        s.ok('user alice')
        s.ok('pAsS secret')
        self.assertEqual(s.cmd('stat'), b'+OK 1 %d\r\n' % len(convert(msg(1))))
        self.assertEqual(self.list_size(s, 1), len(convert(msg(1))))
        s.ok('Noop')
        self.assertOk(s.cmd('rEtR 1'))
        s.multi()
        s.ok('quit')

    def test_bare_lf_accepted(self):
        self.box.deliver(msg(1))
        s = self.box.start()
        s.send(b'USER alice\nPASS secret\nSTAT\nNOOP\n')
        self.assertOk(s.reply())
        self.assertOk(s.reply())
        self.assertEqual(s.reply(), b'+OK 1 %d\r\n' % len(convert(msg(1))))
        self.assertOk(s.reply())
        s.quit()

    def test_unknown_and_invalid_commands(self):
        s = self.box.start()
        for line in (b'FOO', b'XYZZY 1', b'', b'NOOPX', b'NOOP\0',
                     b'US\0ER alice'):
            self.assertErr(s.cmd(line))
        s.login()
        for line in (b'FOO', b'RETRX 1', b'', b'\0'):
            self.assertErr(s.cmd(line))
        s.ok('NOOP')
        s.quit()

    def test_wrong_state(self):
        self.box.deliver(msg(1))
        s = self.box.start()
        for line in ('STAT', 'LIST', 'LIST 1', 'RETR 1', 'DELE 1', 'NOOP',
                     'RSET', 'TOP 1 0', 'UIDL', 'UIDL 1', 'LAST'):
            self.assertErr(s.cmd(line))
        s.login()
        for line in ('USER alice', 'PASS secret', 'USER bob'):
            self.assertErr(s.cmd(line))
        s.ok('STAT')
        s.quit()

    def test_eof_ends_session_with_status_1(self):
        s = self.box.start()
        s.ok('USER alice')
        s.close_input()
        self.assertEqual(s.read_eof(), b'')
        self.assertEqual(s.wait(), 1)

    def test_quit_in_authorization(self):
        s = self.box.start()
        s.ok('USER alice')
        s.quit()

    def _long_line(self, size, login):
        self.box.deliver(msg(1))
        s = self.box.start()
        if login:
            s.login()
        line = b'NOOP ' + b'x' * (size - 7) + b'\r\n'
        self.assertEqual(len(line), size)
        s.send(line + (b'NOOP\r\n' if login else b'CAPA\r\n'))
        reply = s.reply()
        self.assertErr(reply)
        self.assertIn(b'too long', reply.lower())
        self.assertOk(s.reply())
        if not login:
            s.multi()
            s.login()
            s.ok('NOOP')
        s.quiet()
        s.quit()

    def test_line_of_10000_octets(self):
        self._long_line(10000, login=True)

    def test_line_of_100_kib(self):
        self._long_line(100 * 1024, login=True)

    def test_long_line_before_login(self):
        self._long_line(10000, login=False)

    def test_long_lines_of_various_sizes(self):
        # Sizes whose tail is short after any power-of-two input buffer.
        s = self.box.open()
        for size in (256, 300, 4200, 8252, 65600, 131100):
            line = b'NOOP ' + b'x' * (size - 7) + b'\r\n'
            s.send(line + b'NOOP\r\n')
            reply = s.reply()
            self.assertIn(b'too long', reply.lower(), size)
            self.assertErr(reply)
            self.assertOk(s.reply())
            s.quiet(0.1)
        s.quit()

    def test_line_limit_is_255_octets(self):
        password = 'p' * 248                # "PASS " + 248 + CRLF = 255
        self.box.add_user('long', '{PLAIN}' + password)
        s = self.box.start()
        s.ok('USER long')
        reply = s.cmd('PASS ' + password + 'q')
        self.assertErr(reply)
        self.assertIn(b'too long', reply.lower())
        s.ok('USER long')
        s.ok('PASS ' + password)
        s.ok('STAT')
        s.quit()


class CapaTest(Pop3Test):

    def test_capa_authorization(self):
        s = self.box.start()
        caps = self.capa(s)
        impl = [c for c in caps if c.startswith('IMPLEMENTATION')]
        self.assertEqual(len(impl), 1, caps)
        self.assertRegex(impl[0], r'^IMPLEMENTATION pop3d( |$)')
        self.assertEqual(set(caps) - set(impl), CAPA_AUTHORIZATION)
        self.assertEqual(len(caps), len(set(caps)), 'duplicates')
        s.quit()

    def test_capa_transaction(self):
        s = self.box.open()
        caps = self.capa(s)
        self.assertNotIn('USER', caps)
        self.assertNotIn('LAST', caps)
        impl = [c for c in caps if c.startswith('IMPLEMENTATION')]
        self.assertEqual(set(caps) - set(impl),
                         CAPA_AUTHORIZATION - {'USER', 'SASL PLAIN LOGIN'})
        s.quit()


class Utf8Test(Pop3Test):
    """RFC 6856: UTF-8 user names and passwords; messages are sent as
    stored, before UTF8 and after it."""

    NAME = 'j\u00f6rg.\u5f20'
    MESSAGE = ('From: J\u00f6rg <j\u00f6rg@b\u00fccher.example>\n'
               'Subject: Gr\u00fc\u00dfe\n\nK\u00e4se.\n').encode()

    def setUp(self):
        super().setUp()
        self.box.add_user(self.NAME, '{PLAIN}p\u00e4ss')
        self.box.deliver(self.MESSAGE)

    def test_utf8_command(self):
        s = self.box.start()
        self.assertEqual(s.cmd('UTF8'), b'+OK UTF8 enabled\r\n')
        self.assertErr(s.cmd('UTF8 on'))
        s.ok('USER ' + self.NAME)
        s.ok('PASS p\u00e4ss')
        self.assertIn('UTF8 USER', self.capa(s))
        self.assertErr(s.cmd('UTF8'))
        self.assertEqual(self.retr(s, 1), wire(self.MESSAGE))
        s.quit()

    def test_utf8_names_without_the_command(self):
        s = self.box.start()
        s.ok('USER ' + self.NAME)
        s.ok('PASS p\u00e4ss')
        self.assertEqual(self.retr(s, 1), wire(self.MESSAGE))
        self.assertEqual(s.cmd('TOP 1 0'), b'+OK Top of message follows\r\n')
        self.assertEqual(b''.join(s.multi()) + b'.\r\n',
                         top(self.MESSAGE, 0))
        s.quit()
        s = self.box.start()
        plain = ('\0%s\0p\u00e4ss' % self.NAME).encode()
        s.ok('AUTH PLAIN ' + base64.b64encode(plain).decode())
        s.quit()
        s = self.box.start()
        s.ok('USER ' + self.NAME)
        self.assertErr(s.cmd('PASS p\u00e4sS'), b'-ERR [AUTH]')
        s.quit()
        # Valid UTF-8, so logged as it is.
        self.assertIn(('login ok: user=%s rip=local' % self.NAME).encode(),
                      self.box.log())


class AuthTest(Pop3Test):

    def test_login(self):
        s = self.box.start()
        self.assertOk(s.cmd('USER alice'))
        self.assertOk(s.cmd('PASS secret'))
        s.ok('STAT')
        s.quit()

    def test_unknown_user_and_wrong_password_look_alike(self):
        s = self.box.start()
        self.assertOk(s.cmd('USER alice'))
        wrong = s.cmd('PASS wrong')
        self.assertOk(s.cmd('USER nosuchuser'))
        unknown = s.cmd('PASS secret')
        self.assertErr(wrong, b'-ERR [AUTH]')
        self.assertEqual(wrong, unknown)
        s.login()                       # two failures: still allowed
        s.quit()

    def test_pass_without_user(self):
        s = self.box.start()
        self.assertErr(s.cmd('PASS secret'))
        s.ok('QUIT')

    def test_three_failures_close_the_session(self):
        s = self.box.start()
        for _ in range(3):
            s.ok('USER alice')
            self.assertErr(s.cmd('PASS wrong'), b'-ERR [AUTH]')
        self.assertEqual(s.read_eof(), b'')
        self.assertEqual(s.wait(), 1)

    def test_password_with_spaces(self):
        self.box.add_user('bob', '{PLAIN}pass with spaces')
        s = self.box.start()
        s.ok('USER bob')
        self.assertErr(s.cmd('PASS pass with'), b'-ERR [AUTH]')
        s.ok('USER bob')
        s.ok('PASS pass with spaces')
        s.quit()

    def test_plaintext_refused_off_loopback(self):
        self.box.deliver(msg(1))
        refused = (b'-ERR [AUTH] Plaintext authentication disallowed on '
                   b'non-secure connection\r\n')
        for var in ('TCPREMOTEIP', 'REMOTE_HOST'):
            env = dict(os.environ, **{var: '192.0.2.7'})
            s = self.box.start(env=env)
            self.assertNotIn('USER', self.capa(s))
            self.assertEqual(s.cmd('USER alice'), refused)
            self.assertEqual(s.cmd('PASS secret'), refused)
            s.quit()
            self.assertIn(b'login refused: rip=192.0.2.7 reason=plaintext',
                          self.box.log())
        # Allowed with TLS in front, when told so, and on the loopback.
        for extra, addr in ((['--tls'], '192.0.2.7'),
                            (['--allow-plaintext'], '2001:db8::1'),
                            ([], '127.0.0.9'), ([], '::1'),
                            ([], '::ffff:127.0.0.1')):
            env = dict(os.environ, TCPREMOTEIP=addr)
            s = self.box.start(*extra, env=env)
            self.assertIn('USER', self.capa(s))
            s.login()
            self.assertOk(s.cmd('STAT'), b'+OK 1 %d\r\n'
                          % len(convert(msg(1))))
            s.quit()
            self.assertIn(b'login ok: user=alice rip=' + addr.encode(),
                          self.box.log())

    def test_fail_delay(self):
        s = self.box.start(fail_delay=100)
        s.ok('USER alice')
        t0 = time.monotonic()
        self.assertErr(s.cmd('PASS wrong'), b'-ERR [AUTH]')
        self.assertGreaterEqual(time.monotonic() - t0, 0.1)

    def test_unknown_user_logged_as_unknown(self):
        # STYLE.md: never log passwords; log unknown names as UNKNOWN
        # (a password typed into USER must not reach the log).
        s = self.box.start()
        s.ok('USER Hunter2isMyPassword')
        self.assertErr(s.cmd('PASS secret'), b'-ERR [AUTH]')
        s.ok('QUIT')
        log = self.box.log()
        self.assertIn(b'login failed', log)
        self.assertNotIn(b'Hunter2isMyPassword', log)
        self.assertIn(b'user=UNKNOWN', log)

    def test_unreadable_users_file_is_sys_temp(self):
        # A database that cannot be read might know the user: no guess.
        os.unlink(self.box.passwd)
        s = self.box.start()
        s.ok('USER alice')
        reply = s.cmd('PASS secret')
        self.assertErr(reply, b'-ERR [SYS/TEMP]')

    def test_log_lines(self):
        self.box.add_user('bob', '{PLAIN}Tr0ub4dor')
        env = dict(os.environ, TCPREMOTEIP='127.0.0.5')
        s = self.box.start(env=env)
        s.ok('USER bob')
        self.assertErr(s.cmd('PASS WrongHorse'))
        s.login('bob', 'Tr0ub4dor')
        s.quit()
        log = self.box.log()
        for word in (b'login failed', b'login ok', b'user=bob',
                     b'rip=127.0.0.5', b'logout'):
            self.assertIn(word, log)
        ok = [l for l in log.splitlines() if b'login ok' in l]
        self.assertIn(b'user=bob', ok[0])
        self.assertIn(b'rip=127.0.0.5', ok[0])
        self.assertNotIn(b'Tr0ub4dor', log)
        self.assertNotIn(b'WrongHorse', log)


class TransactionTest(Pop3Test):

    def setUp(self):
        super().setUp()
        self.msgs = [msg(1), msg(2), msg(3)]
        self.names = [self.box.deliver(m) for m in self.msgs]
        self.sizes = [len(convert(m)) for m in self.msgs]

    def test_stat_list_retr(self):
        s = self.box.open()
        self.assertEqual(s.cmd('STAT'), b'+OK 3 %d\r\n' % sum(self.sizes))
        self.assertOk(s.cmd('LIST'))
        self.assertEqual(s.multi(), [b'%d %d\r\n' % (i + 1, n)
                                     for i, n in enumerate(self.sizes)])
        self.assertEqual(s.cmd('LIST 2'), b'+OK 2 %d\r\n' % self.sizes[1])
        self.assertEqual(self.retr(s, 2), wire(self.msgs[1]))
        s.quit()

    def test_dele_and_rset(self):
        s = self.box.open()
        self.assertOk(s.cmd('DELE 2'))
        self.assertErr(s.cmd('DELE 2'))
        for line in ('LIST 2', 'RETR 2', 'TOP 2 0', 'UIDL 2'):
            self.assertErr(s.cmd(line))
        self.assertEqual(s.cmd('STAT'), b'+OK 2 %d\r\n'
                         % (self.sizes[0] + self.sizes[2]))
        self.assertOk(s.cmd('LIST'))
        self.assertEqual(s.multi(), [b'1 %d\r\n' % self.sizes[0],
                                     b'3 %d\r\n' % self.sizes[2]])
        self.assertOk(s.cmd('UIDL'))
        self.assertEqual([l.split()[0] for l in s.multi()], [b'1', b'3'])
        self.assertOk(s.cmd('RSET'))
        self.assertEqual(s.cmd('STAT'), b'+OK 3 %d\r\n' % sum(self.sizes))
        self.assertEqual(self.retr(s, 2), wire(self.msgs[1]))
        s.ok('NOOP')
        s.quit()
        self.assertEqual(len(self.box.listdir('cur')), 3)

    def test_uidl(self):
        s = self.box.open()
        self.assertEqual(self.uidls(s), self.names)
        self.assertEqual(s.cmd('UIDL 3'),
                         b'+OK 3 %s\r\n' % self.names[2].encode())
        s.quit()

    def test_last(self):
        s = self.box.open()
        self.assertEqual(s.cmd('LAST'), b'+OK 0\r\n')
        self.retr(s, 2)
        self.assertEqual(s.cmd('LAST'), b'+OK 2\r\n')
        self.retr(s, 1)
        self.assertEqual(s.cmd('LAST'), b'+OK 2\r\n')
        s.ok('RSET')
        self.assertEqual(s.cmd('LAST'), b'+OK 0\r\n')
        s.quit()

    def test_strict_message_numbers(self):
        s = self.box.open()
        for line in ('RETR 0', 'RETR -1', 'RETR +1', 'RETR 1x', 'RETR x',
                     'RETR 99999999999999999999999', 'RETR 4294967297',
                     'RETR', 'RETR 1 2', 'RETR 4', 'LIST 0', 'LIST 4',
                     'LIST 1x', 'DELE 0', 'DELE 4', 'DELE 1 1', 'UIDL 0',
                     'UIDL 4', 'TOP 1', 'TOP 1 -1', 'TOP 1 x', 'TOP 4 0',
                     'TOP 0 1', 'TOP 1 1x', 'TOP 1 0 0',
                     'RETR ' + '0' * 40 + '1', 'RETR 1\t', 'RETR \t1'):
            self.assertErr(s.cmd(line))
            self.assertOk(s.cmd('NOOP'))
        self.assertEqual(s.cmd('STAT'), b'+OK 3 %d\r\n' % sum(self.sizes))
        s.quit()
        self.assertEqual(len(self.box.listdir('cur')), 3)


class ContentTest(Pop3Test):

    def test_sizes_and_conversion(self):
        for _, data in SAMPLES:
            self.box.deliver(data)
        s = self.box.open()
        total = 0
        for i, (label, data) in enumerate(SAMPLES, 1):
            with self.subTest(label):
                size = self.list_size(s, i)
                self.assertEqual(size, len(convert(data)))
                self.assertOk(s.cmd('RETR %d' % i))
                lines = s.multi()
                self.assertEqual(len(unstuff(lines)), size)
                self.assertEqual(unstuff(lines), convert(data))
                self.assertEqual(b''.join(lines) + b'.\r\n', wire(data))
                total += size
        self.assertEqual(s.cmd('STAT'),
                         b'+OK %d %d\r\n' % (len(SAMPLES), total))
        s.quit()

    def test_bare_cr_passes_through(self):
        data = b'Subject: cr\n\nbefore\rafter\n\r\r\n'
        self.box.deliver(data)
        s = self.box.open()
        self.assertEqual(self.list_size(s, 1), len(convert(data)))
        self.assertEqual(self.retr(s, 1), wire(data))
        s.quit()

    def test_read_buffer_boundaries(self):
        # Put CR/LF pairs, dots and the header end across the offsets at
        # which a reader with a power-of-two buffer splits the file.
        head = b'Subject: boundary\n\n'
        filler = (b'a' * 99 + b'\n') * 3000
        cases = []
        for k in (4096, 65536, 131072, 262144):
            for before, after in ((b'\r', b'\n.after crlf\n'),
                                  (b'\n', b'.dot at offset\n'),
                                  (b'\r', b'x bare cr\n'),
                                  (b'', b'\n.z\n')):
                pad = filler[:k - len(head) - len(before)]
                data = head + pad + before + after + b'end\n'
                self.assertEqual(data[k - len(before):k], before)
                cases.append(data)
            cases.append(b'Subject: ' + b's' * (k - 11) + b'\n\r\nb1\nb2\n')
        for data in cases:
            self.box.deliver(data)
        s = self.box.open()
        for i, data in enumerate(cases, 1):
            with self.subTest(message=i):
                self.assertEqual(self.list_size(s, i), len(convert(data)))
                self.assertEqual(self.retr(s, i), wire(data))
                for n in (0, 1):
                    self.assertOk(s.cmd('TOP %d %d' % (i, n)))
                    self.assertEqual(b''.join(s.multi()) + b'.\r\n',
                                     top(data, n))
        s.quit()

    def test_top(self):
        for _, data in SAMPLES:
            self.box.deliver(data)
        body = b'From: t@example.org\nSubject: top\n\nb1\n.b2\nb3\n'
        self.box.deliver(body)
        s = self.box.open()
        n = len(SAMPLES) + 1
        for lines in (0, 1, 2, 3, 4, 100):
            with self.subTest(lines=lines):
                self.assertOk(s.cmd('TOP %d %d' % (n, lines)))
                self.assertEqual(b''.join(s.multi()) + b'.\r\n',
                                 top(body, lines))
        self.assertOk(s.cmd('TOP %d 2' % n))
        self.assertEqual(s.multi(), [b'From: t@example.org\r\n',
                                     b'Subject: top\r\n', b'\r\n',
                                     b'b1\r\n', b'..b2\r\n'])
        for i, (label, data) in enumerate(SAMPLES, 1):
            with self.subTest(label):
                self.assertOk(s.cmd('TOP %d 1000' % i))
                self.assertEqual(b''.join(s.multi()) + b'.\r\n', wire(data))
                self.assertOk(s.cmd('TOP %d 0' % i))
                self.assertEqual(b''.join(s.multi()) + b'.\r\n', top(data, 0))
        s.quit()

    def test_64_mib_message(self):
        line = b'%06d the quick brown fox jumps over the lazy dog 0123456789\n'
        rows = []
        for i in range(16000):
            rows.append(b'.' + line % i if i % 97 == 0 else line % i)
        block = b''.join(rows)
        blocks = (64 << 20) // len(block) + 1
        head = b'From: big@example.org\nSubject: big\n\n'
        self.box.make_maildir()
        name = '1700000001.M1P1.big'
        with open(os.path.join(self.box.maildir, 'new', name), 'wb') as f:
            f.write(head)
            for _ in range(blocks):
                f.write(block)
        size = len(convert(head)) + blocks * len(convert(block))
        self.assertGreater(size, 64 << 20)
        expect = hashlib.sha256(stuff(convert(head)))
        cblock = stuff(convert(block))
        for _ in range(blocks):
            expect.update(cblock)
        expect.update(b'.\r\n')
        wire_len = len(stuff(convert(head))) + blocks * len(cblock) + 3

        s = self.box.open()
        self.assertEqual(s.cmd('STAT'), b'+OK 1 %d\r\n' % size)
        self.assertEqual(self.list_size(s, 1), size)
        self.assertOk(s.cmd('RETR 1'))
        got = hashlib.sha256()
        left = wire_len
        deadline = time.monotonic() + 60
        while left:
            if not s.buf and not s._fill(deadline):
                self.fail('EOF with %d octets to go' % left)
            chunk = bytes(s.buf[:left])
            del s.buf[:len(chunk)]
            got.update(chunk)
            left -= len(chunk)
        self.assertEqual(got.hexdigest(), expect.hexdigest())
        self.assertOk(s.cmd('TOP 1 0'))
        self.assertEqual(b''.join(s.multi()), stuff(convert(head)))
        hwm = proc_status(s.pid)['VmHWM'].split()
        self.assertEqual(hwm[1], 'kB')
        if not UNDER_VALGRIND:      # valgrind's own memory counts there
            self.assertLess(int(hwm[0]), 16 * 1024, 'peak RSS of pop3d')
        s.quit()


class MaildirTest(Pop3Test):

    def test_new_moves_to_cur_at_login(self):
        a = self.box.deliver(msg(1))
        b = self.box.deliver(msg(2), sub='cur', name='1700000009.M9P9.t:2,S')
        s = self.box.open()
        self.assertEqual(self.box.listdir('new'), [])
        self.assertEqual(self.box.listdir('cur'), sorted([a + ':2,', b]))
        self.assertEqual(self.uidls(s), [a, '1700000009.M9P9.t'])
        s.quit()
        self.assertEqual(self.box.listdir('cur'), sorted([a + ':2,', b]))

    def test_new_never_replaces_a_message_in_cur(self):
        """A file in new/ whose name a message in cur/ has already is
        left in new/: neither is lost, and the name is served once."""
        name = '1700000005.M5P5.t'
        self.box.deliver(msg(1), name + ':2,', 'cur')
        self.box.deliver(msg(2), name, 'new')
        s = self.box.open()
        self.assertEqual(self.uidls(s), [name])
        self.assertEqual(self.retr(s, 1), wire(msg(1)))
        s.quit()
        with open(os.path.join(self.box.maildir, 'new', name), 'rb') as f:
            self.assertEqual(f.read(), msg(2))
        self.assertEqual(self.box.listdir('cur'), [name + ':2,S'])

    def test_numbering_by_delivery_time_then_name(self):
        names = ['1700000010.a.host', '999999999.b.host',
                 '1700000010.A.host', '1700000002.x.host']
        self.box.deliver(msg(1), names[0], 'cur')
        self.box.deliver(msg(2), names[1], 'new')
        self.box.deliver(msg(3), names[2] + ':2,S', 'cur')
        self.box.deliver(msg(4), names[3], 'new')
        s = self.box.open()
        self.assertEqual(self.uidls(s), [names[1], names[3], names[2],
                                         names[0]])
        self.assertEqual(self.retr(s, 1), wire(msg(2)))
        self.assertEqual(self.retr(s, 4), wire(msg(1)))
        s.quit()

    def test_uidl_is_name_before_colon_or_comma(self):
        m1, m2 = msg(1), msg(2)
        n1 = '1700000001.M1P1.host,S=%d,W=%d:2,S' % (len(m1),
                                                    len(convert(m1)))
        n2 = '1700000002.M2P2.host,S=%d' % len(m2)
        self.box.deliver(m1, n1, 'cur')
        self.box.deliver(m2, n2, 'new')
        for _ in range(2):
            s = self.box.open()
            self.assertEqual(self.uidls(s), ['1700000001.M1P1.host',
                                             '1700000002.M2P2.host'])
            self.assertEqual(s.cmd('UIDL 1'),
                             b'+OK 1 1700000001.M1P1.host\r\n')
            self.assertEqual(self.list_size(s, 1), len(convert(m1)))
            self.assertEqual(self.list_size(s, 2), len(convert(m2)))
            self.assertEqual(self.retr(s, 1), wire(m1))
            s.quit()

    def test_w_size_field(self):
        """,W= is the CRLF size as Dovecot writes it: it leaves out the CRLF
        sent after a last line without newline, so LIST must add it."""
        bodies = [b'Subject: w\n\nabc\n', b'Subject: w\n\nabc',
                  b'Subject: w\r\n\r\nabc']
        for i, m in enumerate(bodies, 1):
            w = len(m) + m.count(b'\n') - m.count(b'\r\n')
            self.box.deliver(m, '17000000%02d.M%dP1.host,S=%d,W=%d:2,'
                             % (i, i, len(m), w), 'cur')
        s = self.box.open()
        for i, m in enumerate(bodies, 1):
            self.assertEqual(self.list_size(s, i), len(convert(m)))
            self.assertEqual(self.retr(s, i), wire(m))
        s.quit()

    def test_fallback_uidl_for_unusable_names(self):
        names = [b'1700000001.M1P1.ok', b'1700000002.M1P1.ho st',
                 b'1700000003.M\xe9P1.host', b'1700000004.' + b'x' * 80,
                 b'1700000005.M1P1.ta\tb', b'1700000006.' + b'y' * 59]
        for i, name in enumerate(names):
            self.box.deliver(msg(i), name, 'new')
        seen = []
        for _ in range(2):
            s = self.box.open()
            ids = self.uidls(s)
            for i, uid in enumerate(ids, 1):
                self.assertTrue(1 <= len(uid) <= 70, uid)
                self.assertTrue(all(0x21 <= ord(c) <= 0x7e for c in uid), uid)
                self.assertEqual(s.cmd('UIDL %d' % i),
                                 b'+OK %d %s\r\n' % (i, uid.encode()))
            self.assertEqual(len(set(ids)), len(ids), ids)
            self.assertEqual(ids[0], '1700000001.M1P1.ok')
            self.assertEqual(ids[5], names[5].decode())
            seen.append(ids)
            s.quit()
        self.assertEqual(seen[0], seen[1])

    def test_only_regular_files_in_cur_and_new_count(self):
        name = self.box.deliver(msg(1))
        self.box.deliver(msg(2), '.1700000002.M2P2.hidden', 'new')
        self.box.deliver(msg(3), '1700000003.M3P3.tmp', 'tmp')
        os.mkdir(os.path.join(self.box.maildir, 'cur', '1700000004.M4P4.d'))
        os.symlink(os.path.join(self.box.maildir, 'new', name),
                   os.path.join(self.box.maildir, 'cur', '1700000005.M5.l'))
        s = self.box.open()
        self.assertEqual(self.uidls(s), [name])
        s.quit()

    def test_many_messages(self):
        names = [self.box.deliver(msg(i)) for i in range(2000)]
        s = self.box.open()
        total = sum(len(convert(msg(i))) for i in range(2000))
        self.assertEqual(s.cmd('STAT'), b'+OK 2000 %d\r\n' % total)
        self.assertEqual(self.uidls(s), names)
        self.assertOk(s.cmd('LIST'))
        self.assertEqual(s.multi(), [b'%d %d\r\n' % (i + 1,
                                                    len(convert(msg(i))))
                                     for i in range(2000)])
        self.assertEqual(self.retr(s, 1234), wire(msg(1233)))
        for i in range(1, 2001, 2):
            s.ok('DELE %d' % i)
        s.quit()
        s = self.box.open()
        self.assertEqual(self.uidls(s), names[1::2])
        s.quit()

    def test_missing_maildir_is_created(self):
        s = self.box.open()
        self.assertEqual(s.cmd('STAT'), b'+OK 0 0\r\n')
        self.assertOk(s.cmd('LIST'))
        self.assertEqual(s.multi(), [])
        s.quit()
        for sub in ('', 'cur', 'new', 'tmp'):
            st = os.lstat(os.path.join(self.box.maildir, sub))
            self.assertTrue(stat.S_ISDIR(st.st_mode), sub)
            self.assertEqual(st.st_uid, self.box.uid, sub)
            self.assertEqual(stat.S_IMODE(st.st_mode) & 0o077, 0, sub)

    def test_file_in_the_way(self):
        with open(self.box.maildir, 'w') as f:
            f.write('not a directory\n')
        s = self.box.start()
        s.ok('USER alice')
        self.assertErr(s.cmd('PASS secret'), b'-ERR [SYS/')
        s.kill()
        s = self.box.start('-m', 'maildir:%h/Maildir/sub/Maildir')
        s.ok('USER alice')
        self.assertErr(s.cmd('PASS secret'), b'-ERR [SYS/')

    def test_mail_spec_with_user_name(self):
        os.mkdir(os.path.join(self.box.home, 'alice'))
        self.box.maildir = os.path.join(self.box.home, 'alice', 'md')
        self.box.deliver(msg(1))
        s = self.box.start('-m', 'maildir:~/%u/md')
        s.login()
        self.assertEqual(s.cmd('STAT'), b'+OK 1 %d\r\n' % len(convert(msg(1))))
        s.quit()


class UpdateTest(Pop3Test):

    def setUp(self):
        super().setUp()
        self.names = [self.box.deliver(msg(i)) for i in (1, 2, 3)]

    def test_dele_quit_removes(self):
        s = self.box.open()
        s.ok('DELE 1')
        s.ok('DELE 3')
        s.quit()
        self.assertEqual(self.box.listdir('cur'), [self.names[1] + ':2,'])
        self.assertEqual(self.box.listdir('new'), [])
        s = self.box.open()
        self.assertEqual(self.uidls(s), [self.names[1]])
        s.quit()

    def test_dele_eof_removes_nothing(self):
        s = self.box.open()
        s.ok('DELE 1')
        s.ok('DELE 2')
        s.close_input()
        self.assertEqual(s.read_eof(), b'')
        self.assertEqual(s.wait(), 1)
        self.assertEqual(len(self.box.listdir('cur')), 3)
        s = self.box.open()
        self.assertEqual(self.uidls(s), self.names)
        s.quit()

    def test_dele_rset_quit_removes_nothing(self):
        s = self.box.open()
        s.ok('DELE 1')
        s.ok('DELE 2')
        s.ok('RSET')
        s.quit()
        self.assertEqual(len(self.box.listdir('cur')), 3)

    def test_failed_removal_is_reported(self):
        s = self.box.open()
        s.ok('DELE 2')
        cur = os.path.join(self.box.maildir, 'cur')
        os.chmod(cur, 0o555)
        self.addCleanup(os.chmod, cur, 0o700)
        self.assertErr(s.cmd('QUIT'), b'-ERR [SYS/')
        self.assertEqual(s.read_eof(), b'')
        self.assertEqual(s.wait(), 75)
        self.assertEqual(len(self.box.listdir('cur')), 3)

    def test_retrieved_messages_get_seen_flag(self):
        flagged = self.box.deliver(msg(4), sub='cur',
                                   name='1700000099.M9P9.t:2,F')
        s = self.box.open()
        self.retr(s, 1)
        self.retr(s, 3)
        self.retr(s, 4)
        s.ok('DELE 3')
        s.quit()
        cur = self.box.listdir('cur')
        self.assertEqual(len(cur), 3, cur)
        flags = {}
        for name in cur:
            base, sep, info = name.partition(':2,')
            self.assertEqual(sep, ':2,', name)
            flags[base] = info
        self.assertIn('S', flags[self.names[0]])
        self.assertNotIn('S', flags[self.names[1]])
        self.assertEqual(flags['1700000099.M9P9.t'], 'FS')
        s = self.box.open()
        self.assertEqual(self.uidls(s), [self.names[0], self.names[1],
                                         '1700000099.M9P9.t'])
        s.quit()


def proxy_v2(command, family, body):
    """A PROXY protocol v2 header."""
    return (b'\r\n\r\n\x00\r\nQUIT\n' + bytes([0x20 | command, family])
            + struct.pack('!H', len(body)) + body)


class HardeningTest(Pop3Test):
    """What pop3d does to itself before it reads the client."""

    def test_fds_closed_no_core_private_umask(self):
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        argv = self.box.argv()
        self.box._own()
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, pass_fds=(w,))
        self.addCleanup(proc.kill)
        self.assertTrue(proc.stdout.readline().startswith(b'+OK'))
        fds = sorted(int(f) for f in os.listdir('/proc/%d/fd' % proc.pid))
        if UNDER_VALGRIND:
            fds = [f for f in fds if f < VALGRIND_FD_MIN]
        self.assertEqual(fds, [0, 1, 2], 'inherited descriptors kept')
        with open('/proc/%d/limits' % proc.pid) as f:
            core = [l for l in f if l.startswith('Max core file size')]
        self.assertEqual(core[0].split()[4:6], ['0', '0'], core)
        status = proc_status(proc.pid)
        self.assertEqual(status['Umask'], '0077')
        proc.stdin.write(b'QUIT\r\n')
        proc.stdin.close()
        self.assertEqual(proc.wait(10), 0)
        proc.stdout.close()

    def peak_kib(self, s):
        return int(proc_status(s.pid)['VmHWM'].split()[0])

    def test_ten_mib_without_newline(self):
        self.box.deliver(msg(1))
        s = self.box.open()
        self.assertTrue(s.send(b'N' * (10 << 20)))
        s.send(b'\r\n')
        self.assertEqual(s.reply(), b'-ERR Line too long\r\n')
        self.assertOk(s.cmd('NOOP'))
        if not UNDER_VALGRIND:
            self.assertLess(self.peak_kib(s), 16 * 1024)
        s.quit()

    def test_100000_pipelined_commands(self):
        self.box.deliver(msg(1))
        s = self.box.open()
        t0 = time.monotonic()
        batch = b'NOOP\r\nLIST 1\r\n' * 1000
        replies = 0
        for _ in range(50):
            self.assertTrue(s.send(batch))
            for _ in range(2000):
                line = s.readline(30)
                self.assertTrue(line.startswith(b'+OK'), line)
                replies += 1
        self.assertEqual(replies, 100000)
        self.assertLess(time.monotonic() - t0, 60)
        if not UNDER_VALGRIND:
            self.assertLess(self.peak_kib(s), 16 * 1024)
        s.quit()

    @unittest.skipUnless(shutil.which('ss'), 'ss (iproute2) is missing')
    @unittest.skipUnless(IS_ROOT, 'chown needs root')
    def test_files_of_other_owners_not_served(self):
        names = [self.box.deliver(msg(i), sub='cur') for i in range(1, 4)]
        cur = os.path.join(self.box.maildir, 'cur')
        # Sized on this login, with the other owner already in place.
        s = self.box.open()
        self.assertEqual(self.uidls(s), names)
        s.quit()
        self.box._own()
        os.chown(os.path.join(cur, names[1]), 0, 0)
        # The cache knows its size (same inode): listed, but RETR refuses.
        s = self.box.start()
        os.chown(os.path.join(cur, names[1]), 0, 0)
        s.login()
        self.assertEqual(self.retr(s, 1), wire(msg(1)))
        self.assertEqual(s.cmd('RETR 2'),
                         b'-ERR [SYS/TEMP] Message 2 cannot be read\r\n')
        self.assertEqual(s.cmd('TOP 2 0'),
                         b'-ERR [SYS/TEMP] Message 2 cannot be read\r\n')
        self.assertEqual(self.retr(s, 3), wire(msg(3)))
        s.quit()
        self.assertIn(b'not by the mail user', self.box.log())
        # A message that could not be read was not retrieved: no S flag.
        self.assertIn(names[1], self.box.listdir('cur'))
        # Measured again (a file put in place): not listed at all.
        os.unlink(os.path.join(self.box.maildir, 'pop3d.sizes'))
        s = self.box.start()
        os.chown(os.path.join(cur, names[1]), 0, 0)
        s.login()
        self.assertEqual(self.uidls(s), [names[0], names[2]])
        s.quit()
        self.assertIn(b'1 files in cur/ not served', self.box.log())
        self.assertTrue(os.path.exists(os.path.join(cur, names[1])))

    def keepalive_timer(self, *extra):
        """The keepalive timer ss shows on pop3d's socket, or None."""
        listener = Listener(self.box, *extra)
        self.addCleanup(listener.stop)
        with socket.create_connection(('127.0.0.1', listener.port),
                                      5) as c:
            c.settimeout(5)
            self.assertTrue(c.recv(512).startswith(b'+OK'))
            out = subprocess.run(['ss', '-tno', 'state', 'established',
                                  'sport', '=', ':%d' % listener.port],
                                 capture_output=True, text=True,
                                 timeout=10).stdout
            c.sendall(b'QUIT\r\n')
            c.recv(512)
        m = re.search(r'timer:\(keepalive,([0-9.]+)(min|sec)', out)
        if m is None:
            return None
        return float(m.group(1)) * (60 if m.group(2) == 'min' else 1)

    def test_keepalive_configured(self):
        t = self.keepalive_timer('--keepalive', '300,7,2')
        self.assertIsNotNone(t)
        self.assertGreater(t, 200)
        self.assertIsNone(self.keepalive_timer('--keepalive', 'off'))
        for bad in ('1,2', '0,1,1', '1,1,128', '60,5,4,1', 'x', ''):
            r = run(['--keepalive', bad, '-u', self.box.passwd])
            self.assertEqual(r.returncode, 64, bad)
            self.assertIn(b'bad keepalive', r.stderr)

    def test_tcp_keepalive(self):
        self.assertIsNotNone(self.keepalive_timer())


class SizeCacheTest(Pop3Test):
    """pop3d.sizes keeps the sizes of a Maildir's messages, so that a
    later login opens no message; a cache that is damaged, or a file put
    in a message's place, never gives a wrong size."""

    def setUp(self):
        super().setUp()
        self.msgs = [msg(i) * (i + 1) for i in range(1, 6)]
        self.msgs[2] = b'Subject: no final newline\n\nbody'
        self.names = [self.box.deliver(m) for m in self.msgs]
        self.cache = os.path.join(self.box.maildir, 'pop3d.sizes')

    def sizes(self):
        s = self.box.open()
        self.assertOk(s.cmd('LIST'))
        sizes = [int(l.split()[1]) for l in s.multi()]
        for i in range(len(sizes)):
            self.assertEqual(len(unstuff(self.retr(s, i + 1)[:-3]
                                         .splitlines(True))),
                             sizes[i])
        s.quit()
        return sizes

    def expected(self):
        return [len(convert(m)) for m in self.msgs]

    def test_sizes_come_from_the_cache(self):
        self.assertEqual(self.sizes(), self.expected())
        self.assertTrue(os.path.exists(self.cache))
        calls = self.traced_login(TOUCH_CALLS)
        self.assertEqual([l for l in calls if any(n in l for n in self.names)],
                         [], 'a later login touched messages')

    def listing(self):
        """LIST and UIDL of a login that retrieves nothing (a RETR would
        rename the message at QUIT, a change to cur/)."""
        s = self.box.open()
        self.assertOk(s.cmd('LIST'))
        sizes = s.multi()
        uidls = self.uidls(s)
        s.quit()
        return sizes, uidls

    def settle(self):
        """cur/ as between two polls: unchanged for a minute."""
        t = time.time() - 60
        os.utime(os.path.join(self.box.maildir, 'cur'), (t, t))

    def stamp(self):
        with open(self.cache, 'rb') as f:
            return f.readline().split()[3]

    def traced_login(self, calls, flags=()):
        """Strace a LIST+UIDL login for the given calls; the lines."""
        if not shutil.which('strace'):
            self.skipTest('strace is not installed')
        trace = os.path.join(self.box.base, 'trace')
        argv = ['strace', '-f', '-qq', *flags, '-e', 'trace=' + calls,
                '-o', trace] + self.box.argv()
        self.box._own()
        r = subprocess.run(argv, input=b'USER alice\r\nPASS secret\r\n'
                           b'LIST\r\nUIDL\r\nQUIT\r\n',
                           capture_output=True, timeout=30)
        self.assertIn(b'+OK Bye', r.stdout)
        with open(trace) as f:
            return f.readlines()

    def write_cache(self, version, lines):
        """Write a cache of version 3 or 4 (stamp: cur/'s mtime) with a
        good checksum, as pop3d would."""
        body = b''.join(l + b'\n' for l in lines)
        h = 0xcbf29ce484222325
        for l in lines:
            h = cache_sum(h, l + b'\n')
        if version == 3:
            head = b'pop3d-sizes 3 %016x\n' % h
        else:
            st = os.stat(os.path.join(self.box.maildir, 'cur'))
            stamp = b'%016x%08x' % (st.st_mtime_ns // 10**9,
                                    st.st_mtime_ns % 10**9)
            head = b'pop3d-sizes 4 %016x %s\n' % (
                cache_sum(h, stamp), stamp)
        with open(self.cache, 'wb') as f:
            f.write(head + body)

    def test_unchanged_cur_is_not_read(self):
        first = self.listing()
        self.settle()
        self.assertEqual(self.stamp(), b'0' * 24)  # changed just before
        self.assertEqual(self.listing(), first)
        self.assertNotEqual(self.stamp(), b'0' * 24)
        # The cache is the listing now: cur/ is not read (new/ is: -y
        # names the directory of each call).
        calls = self.traced_login('getdents64', ['-y'])
        self.assertEqual([l for l in calls if '/cur>' in l], [])
        self.assertTrue([l for l in calls if '/new>' in l], calls)
        self.assertEqual(self.listing(), first)

    def test_new_mail_is_added_to_the_cached_listing(self):
        """A poll that finds mail in new/, with a cache that is still the
        listing, reads new/ alone: the new message is moved, sized and
        numbered after the others, and the next login lists it too."""
        first = self.listing()
        self.settle()
        self.listing()      # the cache gets its stamp
        self.assertNotEqual(self.stamp(), b'0' * 24)
        late = msg(9) + b'.a dot line\nno final newline'
        name = self.box.deliver(late, '1700009999.M9P9.late')
        calls = self.traced_login('getdents64', ['-y'])
        self.assertEqual([l for l in calls if '/cur>' in l], [])
        self.assertEqual(self.box.listdir('new'), [])
        sizes, uidls = self.listing()
        self.assertEqual(sizes, first[0] + [b'6 %d\r\n' %
                                            len(convert(late))])
        self.assertEqual(uidls, first[1] + [name])

    def test_first_login_of_many_sizes_every_message(self):
        """Hundreds of messages to size at a first login are read in two
        threads where there is more than one CPU, and those in new/,
        spread through the listing, are moved meanwhile: every size is
        right, and files not owned by the mail user are left out wherever
        they are in the listing."""
        def many(i):
            m = msg(i) * (i % 9 + 1)
            if i % 4 == 1:
                m = m.replace(b'\n', b'\r\n')
            elif i % 4 == 2:
                m += b'.a dot line\nno final newline'
            elif i % 4 == 3:
                m += b'\n..\n\n'
            if i % 150 == 0:
                m += b'a line of a message larger than one read\n' * 2000
            return m
        msgs = self.msgs + [many(i) for i in range(600)]
        names = self.names + [
            self.box.deliver(m, name='%d.M%dP1.many' % (1700001000 + i, i),
                             sub='new') if i % 5 == 3 else
            self.box.deliver(m, name='%d.M%dP1.many:2,' % (1700001000 + i, i),
                             sub='cur') for i, m in enumerate(msgs[5:])]
        cur = os.path.join(self.box.maildir, 'cur')
        foreign = (12, 305, len(msgs) - 1)

        def disown():
            for k in foreign:
                os.chown(os.path.join(cur, names[k]), 0, 0)

        # The first login, traced for the threads it starts.
        trace = os.path.join(self.box.base, 'trace')
        strace = ['strace', '-f', '-qq', '-e', 'trace=clone,clone3', '-o',
                  trace] if shutil.which('strace') else []
        self.box._own()
        disown()
        r = subprocess.run(strace + self.box.argv(),
                           input=b'USER alice\r\nPASS secret\r\nQUIT\r\n',
                           capture_output=True, timeout=60)
        self.assertIn(b'+OK Logged in, %d messages' % (len(msgs) - 3),
                      r.stdout)
        self.assertIn(b'3 files in cur/ not served', r.stderr)
        if strace:
            with open(trace) as f:
                threads = [l for l in f if 'CLONE_THREAD' in l]
            self.assertEqual(len(threads), 1 if os.cpu_count() > 1 else 0,
                             threads)
        self.assertEqual(self.box.listdir('new'), [])
        self.assertEqual(self.box.listdir('cur'), sorted(
            n if ':' in n else n + ':2,' for n in names))
        # The sizes the first login measured are in the cache now.
        s = self.box.start()
        disown()
        s.login()
        self.assertOk(s.cmd('LIST'))
        served = [i for i in range(len(msgs)) if i not in foreign]
        self.assertEqual([int(l.split()[1]) for l in s.multi()],
                         [len(convert(msgs[i])) for i in served])
        self.assertEqual(self.uidls(s), [names[i].split(':')[0]
                                         for i in served])
        for n in (1, 14, 151, 302, len(served)):
            self.assertEqual(self.retr(s, n), wire(msgs[served[n - 1]]))
        s.quit()
        self.assertIn(b'3 files in cur/ not served', self.box.log())

    def test_first_login_of_many_in_new(self):
        """A first login with hundreds of messages all in new/: both
        threads move and size them, each once, in delivery order."""
        msgs = [msg(i) * (i % 7 + 1) for i in range(400)]
        names = [self.box.deliver(m, name='%d.M%dP1.new' % (1700002000 + i,
                                                            i))
                 for i, m in enumerate(msgs)]
        os.unlink(os.path.join(self.box.maildir, 'new', self.names[0]))
        for n in self.names[1:]:
            os.rename(os.path.join(self.box.maildir, 'new', n),
                      os.path.join(self.box.maildir, 'cur', n + ':2,S'))
        s = self.box.open()
        self.assertEqual(self.box.listdir('new'), [])
        self.assertOk(s.cmd('LIST'))
        self.assertEqual([int(l.split()[1]) for l in s.multi()],
                         [len(convert(m)) for m in self.msgs[1:] + msgs])
        self.assertEqual(self.uidls(s), self.names[1:] + names)
        for n in (1, 5, 200, 404):
            self.assertEqual(self.retr(s, n), wire((self.msgs[1:] +
                                                    msgs)[n - 1]))
        s.quit()
        self.assertEqual(self.box.listdir('cur'), sorted(
            [n + ':2,S' for n in self.names[1:]] +
            [n + (':2,S' if i in (0, 195, 399) else ':2,')
             for i, n in enumerate(names)]))

    def test_every_change_to_cur_is_seen(self):
        self.listing()
        cur = os.path.join(self.box.maildir, 'cur')

        def new_file():
            self.box.deliver(b'Subject: put in cur\n\nhello\n',
                             name='1700000100.M1P1.other:2,', sub='cur')

        def flags():
            name = self.box.listdir('cur')[0]
            os.rename(os.path.join(cur, name), os.path.join(cur, name + 'F'))

        def removed():
            os.unlink(os.path.join(cur, self.box.listdir('cur')[1]))

        def replaced():
            name = self.box.listdir('cur')[2]
            tmp = os.path.join(self.box.maildir, 'tmp', 'x')
            with open(tmp, 'wb') as f:
                f.write(b'Subject: replaced\n\n' + b'x\n' * 300)
            os.rename(tmp, os.path.join(cur, name))

        def new_mail():
            self.box.deliver(b'Subject: new\n\nnew\n')

        for change in (new_file, flags, removed, replaced, new_mail):
            with self.subTest(change=change.__name__):
                self.settle()
                self.listing()
                self.assertNotEqual(self.stamp(), b'0' * 24)
                change()
                seen = self.listing()
                os.unlink(self.cache)
                self.assertEqual(seen, self.listing())

    def test_listing_cache_checked(self):
        want = self.listing()
        self.settle()
        self.listing()
        with open(self.cache, 'rb') as f:
            lines = f.read().split(b'\n')[1:-1]
        name, ino, size = lines[1].split(b'\t')
        for bad in (
                # Damaged: the checksum does not match.
                lambda: open(self.cache, 'r+b').write(
                    open(self.cache, 'rb').read().replace(
                        b'\t' + size + b'\n', b'\t1' + size + b'\n')),
                # Good checksums, but not a listing pop3d wrote.
                lambda: self.write_cache(4, [lines[1], lines[0]] + lines[2:]),
                lambda: self.write_cache(4, lines + [lines[-1]]),
                lambda: self.write_cache(4, [b'../' + lines[0]] + lines[1:]),
                lambda: self.write_cache(4, [b'.' + lines[0]] + lines[1:]),
                lambda: self.write_cache(4, [b'a\tb\t' + lines[0]] +
                                         lines[1:])):
            with self.subTest(bad=bad):
                bad()
                self.assertEqual(self.listing(), want)
                self.assertIn(b'pop3d-sizes 4 ', open(self.cache, 'rb').read())

    def test_cache_of_an_empty_mailbox_then_mail(self):
        # A cache with no lines (all mail deleted), then more mail than
        # the room taken from the cache's size: the arrays grow.
        s = self.box.open()
        for i in range(1, len(self.msgs) + 1):
            s.ok('DELE %d' % i)
        s.quit()
        self.settle()
        self.assertEqual(self.listing(), ([], []))
        self.assertEqual(open(self.cache, 'rb').read().count(b'\n'), 1)
        self.msgs = [msg(i) for i in range(3000)]
        for m in self.msgs:
            self.box.deliver(m)
        sizes, uidls = self.listing()
        self.assertEqual([int(l.split()[1]) for l in sizes], self.expected())
        self.assertEqual(len(set(uidls)), len(self.msgs))

    def test_version_3_cache_sizes_are_kept(self):
        want = self.listing()
        with open(self.cache, 'rb') as f:
            lines = f.read().split(b'\n')[1:-1]
        self.write_cache(3, [l.split(b':')[0] + b'\t' + l.split(b'\t', 1)[1]
                             for l in lines])
        names = self.box.listdir('cur')
        self.settle()
        calls = self.traced_login(TOUCH_CALLS)
        self.assertEqual([l for l in calls if any(n in l for n in names)], [],
                         'the sizes of a version 3 cache were not taken')
        self.assertEqual(self.listing(), want)
        self.assertIn(b'pop3d-sizes 4 ', open(self.cache, 'rb').read())

    def test_damaged_cache_is_rebuilt(self):
        self.assertEqual(self.sizes(), self.expected())
        # The cache as a login writes it now (RETR added flags), cur/
        # unchanged since (a time that may be trusted, and stays).
        self.settle()
        os.unlink(self.cache)
        self.assertEqual(self.sizes(), self.expected())
        with open(self.cache, 'rb') as f:
            good = f.read()
        self.assertNotEqual(self.stamp(), b'0' * 24)
        lines = good.split(b'\n')
        wrong = [l.rsplit(b'\t', 1)[0] + b'\t7' if b'\t' in l else l
                 for l in lines]
        for bad in (b'', b'garbage\n', good[:len(good) // 2],
                    good[:-1], b'\n'.join(wrong),
                    good.replace(b'pop3d-sizes ', b'pop3d-sizes 9', 1)):
            with self.subTest(bad=bad[:40]):
                with open(self.cache, 'wb') as f:
                    f.write(bad)
                self.assertEqual(self.sizes(), self.expected())
                with open(self.cache, 'rb') as f:
                    self.assertEqual(f.read(), good)

    def test_file_put_in_a_message_place(self):
        self.assertEqual(self.sizes(), self.expected())
        # Same name, new content, written the Maildir way (tmp + rename).
        name = self.box.listdir('cur')[1]
        self.msgs[1] = b'Subject: replaced\n\n' + b'x\n' * 500
        tmp = os.path.join(self.box.maildir, 'tmp', 'x')
        with open(tmp, 'wb') as f:
            f.write(self.msgs[1])
        os.rename(tmp, os.path.join(self.box.maildir, 'cur', name))
        self.assertEqual(self.sizes(), self.expected())

    def test_deleted_and_new_messages(self):
        self.assertEqual(self.sizes(), self.expected())
        s = self.box.open()
        s.ok('DELE 1')
        s.quit()
        del self.msgs[0]
        self.msgs.append(b'Subject: new\n\nnew one\n')
        self.box.deliver(self.msgs[-1])
        self.assertEqual(self.sizes(), self.expected())
        with open(self.cache, 'rb') as f:
            self.assertEqual(f.read().count(b'\n'), 1 + len(self.msgs))


class SyslogTest(Pop3Test):
    """--log syslog, the default: each line goes to /dev/log as
    "<PRI>pop3d[PID]: text", a datagram, or NUL-ended on a stream
    socket; nothing goes to stderr.  The tests bind /dev/log themselves,
    so they need root and no syslog daemon there."""

    LOG = '/dev/log'

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0 or os.path.lexists(self.LOG):
            self.skipTest('needs root and no %s' % self.LOG)

    def listen(self, kind):
        sock = socket.socket(socket.AF_UNIX, kind)
        sock.bind(self.LOG)
        self.addCleanup(sock.close)
        self.addCleanup(os.unlink, self.LOG)
        os.chmod(self.LOG, 0o666)
        sock.settimeout(10 * SLOW)
        if kind == socket.SOCK_STREAM:
            sock.listen(4)
        return sock

    def mine(self, lines, s):
        """The lines of session s (another test's pop3d may log too)."""
        return [l for l in lines if l.startswith(b'<22>pop3d[%d]: ' % s.pid)]

    def expect(self, lines, s):
        """The login and logout lines of session s, as syslog(3) would
        send them (LOG_MAIL, LOG_INFO), less the time stamp."""
        pid = b'%d' % s.pid
        self.assertEqual(len(lines), 2, lines)
        self.assertEqual(lines[0], b'<22>pop3d[' + pid + b']: login ok: '
                         b'user=alice rip=local messages=0 expired=0')
        self.assertRegex(lines[1], rb'\A<22>pop3d\[' + pid +
                         rb'\]: logout: user=alice rip=local reason=quit ')
        self.assertEqual(self.box.log(), b'')

    def datagrams(self, sock, s, n):
        """The next n datagrams of session s."""
        lines = []
        for _ in range(50):
            if len(lines) == n:
                break
            lines += self.mine([sock.recv(4096)], s)
        return lines

    def test_datagrams(self):
        sock = self.listen(socket.SOCK_DGRAM)
        s = self.box.open('alice', 'secret', '--log', 'syslog')
        s.quit()
        self.assertEqual(s.wait(), 0)
        self.expect(self.datagrams(sock, s, 2), s)

    def test_stream(self):
        sock = self.listen(socket.SOCK_STREAM)
        s = self.box.open('alice', 'secret', '--log', 'syslog')
        s.quit()
        self.assertEqual(s.wait(), 0)
        for _ in range(10):
            conn, _ = sock.accept()
            conn.settimeout(10 * SLOW)
            data = b''
            while True:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            conn.close()
            self.assertTrue(data.endswith(b'\0'), data)
            lines = self.mine(data[:-1].split(b'\0'), s)
            if lines:
                break
        self.expect(lines, s)

    def test_daemon_restarted(self):
        """The socket is made anew between two lines: the second line
        reaches the new one."""
        first = self.listen(socket.SOCK_DGRAM)
        s = self.box.open('alice', 'secret', '--log', 'syslog')
        login = self.datagrams(first, s, 1)
        first.close()
        os.unlink(self.LOG)
        second = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(second.close)
        second.bind(self.LOG)
        os.chmod(self.LOG, 0o666)
        second.settimeout(10 * SLOW)
        s.quit()
        self.assertEqual(s.wait(), 0)
        self.expect(login + self.datagrams(second, s, 1), s)

    def test_no_daemon(self):
        """No /dev/log: the session is served, and the lines are lost."""
        s = self.box.open('alice', 'secret', '--log', 'syslog')
        s.ok('STAT')
        s.quit()
        self.assertEqual(s.wait(), 0)
        self.assertEqual(self.box.log(), b'')


class ProxyProtocolTest(Pop3Test):
    """--proxy-protocol: the client address comes from the header, which
    must be there and valid; what follows it is the POP3 session."""

    V4 = socket.inet_aton('198.51.100.7') + socket.inet_aton('10.0.0.1') \
        + struct.pack('!HH', 40000, 110)
    V6 = socket.inet_pton(socket.AF_INET6, '2001:db8::7') \
        + socket.inet_pton(socket.AF_INET6, '2001:db8::1') \
        + struct.pack('!HH', 40000, 110)

    def session(self, header):
        """Send header and CAPA in one write; the CAPA lines, or None when
        the connection was refused without a greeting."""
        s = self.box.start('--proxy-protocol', greet=False,
                           env={'PATH': os.environ.get('PATH', '/usr/bin'),
                                'TCPREMOTEIP': '127.0.0.1'})
        s.send(header + b'CAPA\r\n')
        try:
            greeting = s.readline()
        except AssertionError:
            self.assertEqual(s.wait(), 1)
            return None
        self.assertTrue(greeting.startswith(b'+OK'), greeting)
        self.assertOk(s.reply())
        capa = [l[:-2] for l in s.multi()]
        s.quit()
        return capa

    def test_valid_headers_name_the_client(self):
        for header, rip, near in (
                (b'PROXY TCP4 198.51.100.7 10.0.0.1 40000 110\r\n',
                 b'198.51.100.7', False),
                (b'PROXY TCP6 2001:db8::7 2001:db8::1 40000 110\r\n',
                 b'2001:db8::7', False),
                (b'PROXY TCP4 127.0.0.3 127.0.0.1 40000 110\r\n',
                 b'127.0.0.3', True),
                (proxy_v2(1, 0x11, self.V4), b'198.51.100.7', False),
                (proxy_v2(1, 0x21, self.V6 + b'\x01\x00\x01x'),
                 b'2001:db8::7', False)):
            with self.subTest(header=header):
                capa = self.session(header)
                # Plaintext is decided on the header's address, not on
                # the balancer's (127.0.0.1 here).
                self.assertEqual(b'USER' in capa, near)
                self.assertIn(b'rip=' + rip + b' ', self.box.log())

    def test_header_without_client(self):
        # v1 UNKNOWN and v2 LOCAL: the balancer's own connection.
        for header in (b'PROXY UNKNOWN\r\n',
                       b'PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n',
                       proxy_v2(0, 0x00, b''), proxy_v2(0, 0x11, self.V4)):
            with self.subTest(header=header):
                self.assertIn(b'USER', self.session(header))

    def test_missing_or_malformed_header_refused(self):
        for header in (b'', b'USER alice\r\n',
                       b'PROXY TCP4 198.51.100.7 10.0.0.1 40000\r\n',
                       b'PROXY TCP4 198.51.100.7 10.0.0.1 40000 110\n',
                       b'PROXY TCP4 2001:db8::7 10.0.0.1 40000 110\r\n',
                       b'PROXY TCP4 198.51.100.7 10.0.0.1 70000 110\r\n',
                       b'PROXY TCP4  198.51.100.7 10.0.0.1 1 110\r\n',
                       b'PROXY TCP5 198.51.100.7 10.0.0.1 1 110\r\n',
                       b'PROXY ' + b'1' * 200 + b'\r\n',
                       proxy_v2(1, 0x11, self.V4[:8]),
                       proxy_v2(2, 0x11, self.V4),
                       b'\r\n\r\n\x00\r\nQUIX\n\x21\x11\x00\x0c' + self.V4,
                       b'\r\n\r\n\x00\r\nQUIT\n\x11\x11\x00\x0c' + self.V4):
            with self.subTest(header=header):
                self.assertIsNone(self.session(header))
        self.assertIn(b'connection refused: rip=127.0.0.1 reason=missing or '
                      b'malformed PROXY protocol header', self.box.log())

    def test_header_not_trusted_without_the_option(self):
        s = self.box.start()
        self.assertErr(s.cmd('PROXY TCP4 198.51.100.7 10.0.0.1 1 110'))
        s.quit()
        self.assertNotIn(b'198.51.100.7', self.box.log())


class SessionLimitsTest(Pop3Test):

    def test_mailbox_in_use(self):
        self.box.deliver(msg(1))
        a = self.box.open()
        b = self.box.start()
        b.ok('USER alice')
        self.assertErr(b.cmd('PASS secret'), b'-ERR [IN-USE]')
        self.assertEqual(b.read_eof(), b'')
        self.assertEqual(b.wait(), 1)
        a.ok('STAT')
        a.quit()
        c = self.box.open()
        self.assertEqual(c.cmd('STAT'), b'+OK 1 %d\r\n' % len(convert(msg(1))))
        c.quit()

    def test_lock_released_when_session_killed(self):
        self.box.deliver(msg(1))
        a = self.box.open()
        a.ok('DELE 1')
        a.kill()
        b = self.box.open()
        self.assertEqual(b.cmd('STAT'), b'+OK 1 %d\r\n' % len(convert(msg(1))))
        b.quit()

    def test_idle_timeout(self):
        self.box.deliver(msg(1))
        s = self.box.open('alice', 'secret', '-t', '1')
        s.ok('DELE 1')
        t0 = time.monotonic()
        rest = s.read_eof(timeout=6)
        self.assertLess(time.monotonic() - t0, 6)
        lines = rest.splitlines(keepends=True)
        self.assertLessEqual(len(lines), 1, rest)
        for line in lines:
            check_status(line)
            self.assertTrue(line.startswith(b'-ERR'), line)
        self.assertEqual(s.wait(), 1)
        self.assertEqual(len(self.box.listdir('cur')), 1)

    def test_idle_timeout_when_client_stops_reading(self):
        self.box.deliver(msg(1))
        self.box.deliver(b'Subject: big\n\n' + (b'y' * 70 + b'\n') * 40000)
        s = self.box.open('alice', 'secret', '-t', '2')
        s.ok('DELE 1')
        s.send(b'RETR 2\r\n')           # and read none of it
        deadline = time.monotonic() + 8
        while s.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertIsNotNone(s.proc.poll(), 'pop3d still blocked writing 8 s '
                             'after a RETR the client does not read (-t 2)')
        self.assertEqual(s.proc.returncode, 1)
        self.assertEqual(len(self.box.listdir('cur')), 2)

    def test_idle_timeout_before_login(self):
        s = self.box.start('-t', '1')
        for line in s.read_eof(timeout=6).splitlines(keepends=True):
            self.assertTrue(check_status(line).startswith(b'-ERR'), line)
        self.assertEqual(s.wait(), 1)

    def test_activity_resets_timeout(self):
        s = self.box.open('alice', 'secret', '-t', '2')
        for _ in range(4):
            time.sleep(1)
            s.ok('NOOP')
        s.quit()

    def test_pipelining(self):
        data = msg(1)
        name = self.box.deliver(data)
        s = self.box.open()
        cycle = ['LIST 1', 'UIDL 1', 'NOOP', 'TOP 1 0']
        cmds = [cycle[i % 4] for i in range(5000)]
        t0 = time.monotonic()
        s.send(b''.join(c.encode() + b'\r\n' for c in cmds) + b'QUIT\r\n')
        list1 = b'+OK 1 %d\r\n' % len(convert(data))
        uidl1 = b'+OK 1 %s\r\n' % name.encode()
        top0 = top(data, 0)
        for i, c in enumerate(cmds):
            reply = s.reply()
            if c == 'LIST 1':
                self.assertEqual(reply, list1, i)
            elif c == 'UIDL 1':
                self.assertEqual(reply, uidl1, i)
            else:
                self.assertOk(reply)
                if c == 'TOP 1 0':
                    self.assertEqual(b''.join(s.multi()) + b'.\r\n', top0, i)
        self.assertOk(s.reply())
        self.assertEqual(s.read_eof(), b'')
        self.assertEqual(s.wait(), 0)
        self.assertLess(time.monotonic() - t0, 5)


@unittest.skipUnless(IS_ROOT, 'needs root')
class TakeoverTest(Pop3Test):
    """--takeover: a session whose client went away without a word ends
    when the same user logs in again, without UPDATE; an active session
    is never disturbed."""

    # Under valgrind a newcomer takes a second or two to start: that much
    # idleness must not count.
    IDLE = 3 if UNDER_VALGRIND else 1

    def setUp(self):
        super().setUp()
        self.names = [self.box.deliver(msg(i)) for i in range(1, 4)]

    def holder(self, *extra):
        s = self.box.open('alice', 'secret', *extra)
        s.ok('DELE 1')
        return s

    def newcomer(self):
        s = self.box.start('--takeover', str(self.IDLE))
        s.ok('USER alice')
        return s, s.cmd('PASS secret')

    def test_idle_holder_ended_nothing_deleted(self):
        old = self.holder('--takeover', str(self.IDLE))
        time.sleep(self.IDLE + 1.2)
        new, reply = self.newcomer()
        self.assertOk(reply)
        self.assertEqual(old.read_eof(), b'')
        self.assertEqual(old.wait(), 1)
        self.assertEqual(self.uidls(new), self.names)
        new.quit()
        log = self.box.log()
        self.assertIn(b'pop3d[%d]: logout: user=alice rip=local '
                      b'reason=signal TERM' % old.pid, log)
        self.assertIn(b'takeover: user=alice rip=local: ended session '
                      b'pid %d' % old.pid, log)

    def test_active_holder_not_disturbed(self):
        old = self.holder('--takeover', str(self.IDLE + 1))
        for _ in range(8):
            old.ok('NOOP')
            time.sleep(0.4)
        new, reply = self.newcomer()
        self.assertErr(reply, b'-ERR [IN-USE]')
        self.assertEqual(new.wait(), 1)
        old.ok('STAT')
        old.quit()
        self.assertEqual(self.box.listdir('cur'), sorted(
            n + ':2,' for n in self.names[1:]))

    def test_holder_sending_slowly_is_active(self):
        big = b'Subject: big\n\n' + b'x' * 1000 + b'\n'
        big = big * (8 << 10)
        self.box.deliver(big)
        old = self.box.open('alice', 'secret', '--takeover', str(self.IDLE))
        old.send(b'RETR 4\r\n')
        got = 0
        for _ in range(14):             # 2.8 s of a slow reader
            got += len(old.read_exact(256 << 10))
            time.sleep(0.2)
        new, reply = self.newcomer()
        self.assertErr(reply, b'-ERR [IN-USE]')
        self.assertEqual(new.wait(), 1)
        rest = len(wire(big)) + len(b'+OK %d octets\r\n' % len(
            convert(big))) - got
        old.read_exact(rest)
        old.quit()

    def test_holder_without_record_not_ended(self):
        old = self.holder()
        time.sleep(self.IDLE + 1.2)
        new, reply = self.newcomer()
        self.assertErr(reply, b'-ERR [IN-USE]')
        self.assertEqual(new.wait(), 1)
        old.quit()

    def test_forged_record_names_no_other_process(self):
        old = self.holder('--takeover', str(self.IDLE))
        victim = subprocess.Popen(['sleep', '30'])
        self.addCleanup(victim.wait)
        self.addCleanup(victim.kill)
        with open(os.path.join(self.box.maildir, 'pop3d.lock'), 'w') as f:
            f.write('%d 0\n' % victim.pid)
        time.sleep(self.IDLE + 1.2)
        new, reply = self.newcomer()
        self.assertErr(reply, b'-ERR [IN-USE]')
        self.assertIsNone(victim.poll())
        old.quit()

    def test_two_newcomers_at_once(self):
        old = self.holder('--takeover', str(self.IDLE))
        time.sleep(self.IDLE + 1.2)
        a = self.box.start('--takeover', str(self.IDLE))
        b = self.box.start('--takeover', str(self.IDLE))
        a.ok('USER alice')
        b.ok('USER alice')
        a.send(b'PASS secret\r\n')
        b.send(b'PASS secret\r\n')
        got = {a: a.reply(), b: b.reply()}
        winners = [x for x in got if got[x].startswith(b'+OK')]
        losers = [x for x in got if got[x].startswith(b'-ERR [IN-USE]')]
        self.assertEqual((len(winners), len(losers)), (1, 1), got)
        self.assertEqual(old.wait(), 1)
        self.assertEqual(losers[0].wait(), 1)
        self.assertEqual(self.uidls(winners[0]), self.names)
        winners[0].quit()
        self.assertEqual(len(self.box.listdir('cur')), 3)


class QuotaTest(Pop3Test):
    """Maildir++ quota: messages removed are subtracted in maildirsize
    with one appended line, when the Maildir has that file."""

    HEAD = b'1000000S,1000C\n12345 7\n'

    def setUp(self):
        super().setUp()
        self.msgs = [msg(i) * i for i in range(1, 5)]
        self.names = [self.box.deliver(m, sub='cur') for m in self.msgs]
        self.quota = os.path.join(self.box.maildir, 'maildirsize')

    def quota_lines(self):
        with open(self.quota, 'rb') as f:
            return f.read()

    def test_deletions_subtracted(self):
        with open(self.quota, 'wb') as f:
            f.write(self.HEAD)
        s = self.box.open()
        s.ok('DELE 1')
        s.ok('DELE 3')
        s.ok('RETR 2')
        s.multi()
        s.quit()
        self.assertEqual(self.quota_lines(), self.HEAD + b'-%d -2\n' % (
            len(self.msgs[0]) + len(self.msgs[2])))
        # Nothing deleted: nothing written.
        s = self.box.open()
        s.quit()
        self.assertEqual(self.quota_lines(), self.HEAD + b'-%d -2\n' % (
            len(self.msgs[0]) + len(self.msgs[2])))

    def test_vanished_message_not_counted(self):
        with open(self.quota, 'wb') as f:
            f.write(self.HEAD)
        s = self.box.open()
        os.unlink(os.path.join(self.box.maildir, 'cur', self.names[1]))
        s.ok('DELE 2')
        s.ok('DELE 4')
        s.quit()
        self.assertEqual(self.quota_lines(),
                         self.HEAD + b'-%d -1\n' % len(self.msgs[3]))

    def test_expired_messages_subtracted(self):
        with open(self.quota, 'wb') as f:
            f.write(self.HEAD)
        cur = os.path.join(self.box.maildir, 'cur')
        old = time.time() - 3 * 86400
        for i in (0, 1):
            seen = os.path.join(cur, self.names[i] + ':2,S')
            os.rename(os.path.join(cur, self.names[i]), seen)
            os.utime(seen, (old, old))
        s = self.box.open('alice', 'secret', '--expire', '1')
        self.assertEqual(s.cmd('STAT')[:6], b'+OK 2 ')
        s.quit()
        self.assertEqual(self.quota_lines(), self.HEAD + b'-%d -2\n' % (
            len(self.msgs[0]) + len(self.msgs[1])))

    def test_no_maildirsize_none_made(self):
        s = self.box.open()
        s.ok('DELE 1')
        s.quit()
        self.assertFalse(os.path.exists(self.quota))


class PrivilegeTest(Pop3Test):

    def test_session_runs_as_mail_user(self):
        s = self.box.start()
        s.login()
        status = proc_status(s.pid)
        self.assertEqual(status['Uid'].split(), [str(self.box.uid)] * 4)
        self.assertEqual(status['Gid'].split(), [str(self.box.gid)] * 4)
        self.assertLessEqual(set(status['Groups'].split()),
                             {str(self.box.gid)})
        s.quit()

    def test_uid_0_refused(self):
        self.box.add_user('toor', '{PLAIN}secret', uid=0, gid=0)
        s = self.box.start()
        s.ok('USER toor')
        self.assertErr(s.cmd('PASS secret'), b'-ERR [SYS/PERM]')
        self.assertFalse(os.path.exists(self.box.maildir))


class ClientTest(Pop3Test):

    def setUp(self):
        super().setUp()
        self.msgs = [SAMPLES[0][1], SAMPLES[5][1], SAMPLES[3][1]]
        self.names = [self.box.deliver(m) for m in self.msgs]
        self.listener = Listener(self.box)
        self.addCleanup(lambda: self.listener.stop())

    def pop(self):
        return poplib.POP3('127.0.0.1', self.listener.port, timeout=10)

    def curl(self, *args):
        r = subprocess.run(['curl', '-s', '--max-time', '10', '-u',
                            'alice:secret'] + list(args), capture_output=True,
                           timeout=20)
        self.assertEqual(r.returncode, 0, (args, r.stderr))
        return r.stdout

    def url(self, path=''):
        return 'pop3://127.0.0.1:%d/%s' % (self.listener.port, path)

    def test_poplib(self):
        p = self.pop()
        self.addCleanup(p.close)
        p.user('alice')
        p.pass_('secret')
        sizes = [len(convert(m)) for m in self.msgs]
        self.assertEqual(p.stat(), (3, sum(sizes)))
        _, lines, _ = p.list()
        self.assertEqual(lines, [b'%d %d' % (i + 1, n)
                                 for i, n in enumerate(sizes)])
        for i, m in enumerate(self.msgs, 1):
            _, lines, _ = p.retr(i)
            self.assertEqual(b''.join(l + b'\r\n' for l in lines), convert(m))
        _, lines, _ = p.uidl()
        self.assertEqual(lines, [b'%d %s' % (i, n.encode())
                                 for i, n in enumerate(self.names, 1)])
        p.dele(2)
        p.quit()
        p = self.pop()
        p.user('alice')
        p.pass_('secret')
        self.assertEqual(p.stat(), (2, sizes[0] + sizes[2]))
        _, lines, _ = p.uidl()
        self.assertEqual(lines, [b'1 ' + self.names[0].encode(),
                                 b'2 ' + self.names[2].encode()])
        p.quit()
        if self.listener.launcher == 'tcpserver':
            self.assertIn(b'rip=127.0.0.1', self.box.log())

    def test_socket_on_stdin(self):
        # No launcher variables: the address comes from the socket itself.
        if not shutil.which('systemd-socket-activate'):
            self.skipTest('systemd-socket-activate is not installed')
        self.listener.stop()
        self.listener = Listener(self.box, launcher='systemd-socket-activate')
        p = self.pop()
        p.user('alice')
        p.pass_('secret')
        self.assertEqual(p.stat()[0], 3)
        _, lines, _ = p.retr(2)
        self.assertEqual(b''.join(l + b'\r\n' for l in lines),
                         convert(self.msgs[1]))
        p.quit()
        self.assertRegex(self.box.log(), rb'login ok: .*rip=127\.0\.0\.1')

    def test_curl(self):
        for i, m in enumerate(self.msgs, 1):
            self.assertEqual(self.curl(self.url(str(i))), convert(m))
        sizes = [len(convert(m)) for m in self.msgs]
        self.assertEqual(self.curl(self.url()),
                         b''.join(b'%d %d\r\n' % (i, n)
                                  for i, n in enumerate(sizes, 1)))
        self.curl('-X', 'DELE', '-I', self.url('1'))
        self.assertEqual(self.curl(self.url()),
                         b'1 %d\r\n2 %d\r\n' % (sizes[1], sizes[2]))
        self.assertEqual(self.curl(self.url('1')), convert(self.msgs[1]))


class Result(unittest.TextTestResult):
    """Counts tests, not subtests: a test fails if any part of it failed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.bad = set()

    def startTest(self, test):
        valgrind_test(test.id().replace('__main__.', ''))
        super().startTest(test)

    def _mark(self, test):
        self.bad.add(getattr(test, 'test_case', test).id())

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._mark(test)

    def addError(self, test, err):
        super().addError(test, err)
        self._mark(test)

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._mark(subtest)

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._mark(test)


def shard(suite, k, n):
    """Part k of n of the tests: whole test classes, each to the part
    with the fewest tests so far."""
    tests, count = [], {}

    def walk(s):
        for t in s:
            if isinstance(t, unittest.TestSuite):
                walk(t)
            else:
                tests.append(t)
                count[type(t)] = count.get(type(t), 0) + 1
    walk(suite)
    load, part = [0] * n, {}
    for cls, c in count.items():
        part[cls] = load.index(min(load))
        load[part[cls]] += c
    return unittest.TestSuite(t for t in tests if part[type(t)] == k - 1)


def main():
    global POP3D
    ap = argparse.ArgumentParser(description='pop3d end-to-end tests')
    ap.add_argument('--pop3d', default=POP3D, help='pop3d binary')
    ap.add_argument('-v', '--verbose', action='store_true')
    ap.add_argument('-k', dest='patterns', action='append',
                    help='run only tests whose name contains PATTERN')
    ap.add_argument('--shard', metavar='K/N',
                    help='run only part K of N of the test classes')
    opts = ap.parse_args()
    POP3D = os.path.abspath(opts.pop3d)
    if not os.access(POP3D, os.X_OK):
        print('e2e: no executable pop3d at %s' % POP3D, file=sys.stderr)
        print('e2e: 0 passed, 1 failed')
        return 1
    loader = unittest.TestLoader()
    if opts.patterns:
        loader.testNamePatterns = ['*%s*' % p for p in opts.patterns]
    os.environ['POP3D_BINARY'] = POP3D
    suite = loader.loadTestsFromModule(sys.modules[__name__])
    suite.addTests(loader.loadTestsFromModule(launchers))
    suite.addTests(loader.loadTestsFromModule(deploy))
    suite.addTests(loader.loadTestsFromModule(auth_e2e))
    suite.addTests(loader.loadTestsFromModule(mbox_e2e))
    suite.addTests(loader.loadTestsFromModule(fault_e2e))
    suite.addTests(loader.loadTestsFromModule(migrate_e2e))
    suite.addTests(loader.loadTestsFromModule(admin_e2e))
    suite.addTests(loader.loadTestsFromModule(admin_check_e2e))
    if opts.shard:
        k, n = (int(x) for x in opts.shard.split('/'))
        suite = shard(suite, k, n)
    runner = unittest.TextTestRunner(verbosity=2 if opts.verbose else 1,
                                     resultclass=Result, stream=sys.stderr)
    result = runner.run(suite)
    failed = len(result.bad)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    line = 'e2e: %d passed, %d failed' % (passed, failed)
    if skipped:
        line += ', %d skipped' % skipped
    sys.stdout.flush()
    print(line)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
