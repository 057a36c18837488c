"""End-to-end tests of the fail2ban files shipped with pop3d
(fail2ban/filter.d/pop3d.conf and fail2ban/jail.d/pop3d.conf), run
against the log lines of the real binary.

The binary logs failed logins of every kind (USER/PASS, AUTH PLAIN, AUTH
LOGIN, APOP; wrong password, unknown user, malformed responses) from
IPv4, IPv6 and IPv4-mapped addresses, successful logins, a plaintext
refusal and failures without an address; its --log stderr lines get a
syslog timestamp and host, as /var/log/mail.log or journalctl show them,
and fail2ban-regex must find exactly the failures, with their addresses.
A user name chosen to carry " rip=6.6.6.6" must never get 6.6.6.6
banned.

Needs the Debian package fail2ban (fail2ban-regex, fail2ban-client and
/etc/fail2ban/filter.d/common.conf); skipped without it.

Plain unittest cases, loaded by e2e.py; alone:
    cd tests && python3 -m unittest admin_e2e -v
"""

import ast
import base64
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pop3test import Box, Pop3Assertions  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILTER = os.path.join(ROOT, 'fail2ban', 'filter.d', 'pop3d.conf')
JAIL = os.path.join(ROOT, 'fail2ban', 'jail.d', 'pop3d.conf')
FAIL2BAN_ETC = '/etc/fail2ban'
COMMON = os.path.join(FAIL2BAN_ETC, 'filter.d', 'common.conf')
NO_FAIL2BAN = 'fail2ban is not installed (apt-get install fail2ban)'

AUTH_FAILED = b'-ERR [AUTH] Authentication failed'
# How a syslog file (and journalctl -o short) shows a line.
SYSLOG_PREFIX = 'Nov 28 20:%02d:%02d mailhost '


def pop3d_binary():
    """The binary under test, as e2e.py resolved it."""
    return os.environ.get('POP3D_BINARY', os.path.join(ROOT, 'pop3d'))


def have_fail2ban():
    return (shutil.which('fail2ban-regex') is not None and
            os.path.isfile(COMMON))


def b64(data):
    return base64.b64encode(data.encode()).decode('ascii')


@unittest.skipUnless(have_fail2ban(), NO_FAIL2BAN)
class Fail2banFilterTest(Pop3Assertions, unittest.TestCase):
    """fail2ban-regex with filter.d/pop3d.conf on pop3d's own lines."""

    def setUp(self):
        self.box = Box(pop3d_binary())
        self.addCleanup(self.box.cleanup)
        self.box.make_maildir()
        # A real account whose name is made to look like a field.
        self.box.add_user('rip=6.6.6.6', '{PLAIN}other')
        # fail2ban resolves "before = common.conf" beside the filter.
        self.conf = os.path.join(self.box.base, 'fail2ban')
        os.makedirs(os.path.join(self.conf, 'filter.d'))
        shutil.copy(COMMON, os.path.join(self.conf, 'filter.d'))
        shutil.copy(FILTER, os.path.join(self.conf, 'filter.d'))

    def session(self, addr, *extra):
        """A session whose client address is addr (None: no address, as
        on a pipe, which pop3d logs as "local")."""
        env = dict(os.environ)
        env.pop('TCPREMOTEIP', None)
        env.pop('REMOTE_HOST', None)
        if addr is not None:
            env['TCPREMOTEIP'] = addr
        return self.box.start('--allow-plaintext', *extra, env=env)

    def refused(self, s, line):
        """Send a login command that must fail on its credentials."""
        self.assertErr(s.cmd(line), AUTH_FAILED)

    def dialogues(self):
        """Every kind of login pop3d logs; returns the addresses whose
        failures fail2ban must count, in order."""
        want = []
        # USER/PASS: a wrong password, an unknown user.
        s = self.session('192.0.2.1')
        s.ok('USER alice')
        self.refused(s, 'PASS wrong')
        s.quit()
        want.append('192.0.2.1')
        s = self.session('192.0.2.2')
        s.ok('USER mallory')
        self.refused(s, 'PASS guess')
        s.quit()
        want.append('192.0.2.2')
        # AUTH PLAIN: a wrong password, a malformed response (IPv6).
        s = self.session('2001:db8::3')
        self.refused(s, 'AUTH PLAIN ' + b64('\0alice\0wrong'))
        s.quit()
        want.append('2001:db8::3')
        s = self.session('2001:db8::4')
        self.refused(s, 'AUTH PLAIN ' + b64('alice'))
        s.quit()
        want.append('2001:db8::4')
        # AUTH LOGIN with a wrong password.
        s = self.session('198.51.100.5')
        s.send(b'AUTH LOGIN\r\n')
        self.assertEqual(s.readline(), b'+ VXNlcm5hbWU6\r\n')
        s.send(b64('alice').encode() + b'\r\n')
        self.assertEqual(s.readline(), b'+ UGFzc3dvcmQ6\r\n')
        self.refused(s, b64('wrong'))
        s.quit()
        want.append('198.51.100.5')
        # APOP, from an IPv4-mapped address: banned as the IPv4 one.
        s = self.session('::ffff:198.51.100.6', '--apop')
        self.refused(s, 'APOP alice ' + '0' * 32)
        s.quit()
        want.append('198.51.100.6')
        s = self.session('198.51.100.7', '--apop')
        self.refused(s, 'APOP nobody ' + 'f' * 32)
        s.quit()
        want.append('198.51.100.7')
        # Names that carry a field: refused before the log, logged as
        # UNKNOWN, or a real user whose name has no space.
        s = self.session('203.0.113.8')
        self.assertErr(s.cmd('USER x rip=6.6.6.6'))
        self.refused(s, 'AUTH PLAIN ' + b64('\0x rip=6.6.6.6\0pw'))
        s.quit()
        want.append('203.0.113.8')
        s = self.session('203.0.113.9')
        s.ok('USER rip=6.6.6.6')
        self.refused(s, 'PASS wrong')
        s.quit()
        want.append('203.0.113.9')
        # Three failures in one session: three lines, then pop3d closes.
        s = self.session('2001:db8::a')
        s.ok('USER alice')
        self.refused(s, 'PASS one')
        s.ok('USER alice')
        self.refused(s, 'PASS two')
        s.ok('USER alice')
        self.assertErr(s.cmd('PASS three'), AUTH_FAILED)
        self.assertEqual(s.read_eof(), b'')
        want += ['2001:db8::a'] * 3
        # Not to be counted: logins that worked, a policy refusal, and a
        # failure without a client address.
        s = self.session('192.0.2.10')
        s.login('alice', 'secret')
        s.quit()
        env = dict(os.environ, TCPREMOTEIP='192.0.2.11')
        s = self.box.start(env=env)
        self.assertErr(s.cmd('USER alice'), b'-ERR [AUTH] Plaintext')
        s.quit()
        s = self.session(None)
        s.ok('USER alice')
        self.refused(s, 'PASS wrong')
        s.quit()
        s = self.session('2001:db8::c')
        s.login('rip=6.6.6.6', 'other')
        s.quit()
        return want

    def syslog_file(self):
        """pop3d's stderr lines as a syslog file shows them."""
        lines = self.box.log().decode().splitlines()
        self.assertTrue(lines)
        path = os.path.join(self.box.base, 'mail.log')
        with open(path, 'w') as f:
            for i, line in enumerate(lines):
                self.assertRegex(line, r'\Apop3d\[\d+\]: ')
                f.write(SYSLOG_PREFIX % (i // 60, i % 60) + line + '\n')
        return path, lines

    def regex(self, log, *opts):
        p = subprocess.run(['fail2ban-regex'] + list(opts) +
                           [log, os.path.join(self.conf, 'filter.d',
                                              'pop3d.conf')],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
        return p.stdout

    def test_failed_logins_match_and_nothing_else(self):
        want = self.dialogues()
        log, lines = self.syslog_file()
        # The log has what the filter must tell apart.
        text = '\n'.join(lines)
        for needle in ('login ok: user=alice rip=192.0.2.10 ',
                       'logout: user=alice rip=192.0.2.10 ',
                       'disconnected: rip=192.0.2.1 reason=quit',
                       'login refused: rip=192.0.2.11 reason=plaintext',
                       'login failed: user=alice rip=local ',
                       'login failed: user=UNKNOWN rip=203.0.113.8 '
                       'reason=invalid user name',
                       'login failed: user=rip=6.6.6.6 rip=203.0.113.9 '
                       'reason=wrong password',
                       'login ok: user=rip=6.6.6.6 rip=2001:db8::c '):
            self.assertIn(needle, text)
        # One row per failure: [ip, time, {user, ip4, ip6}].
        rows = [ast.literal_eval(line.rstrip(',')) for line in
                self.regex(log, '-o', 'row').splitlines() if line.strip()]
        self.assertEqual([r[0] for r in rows], want)
        self.assertNotIn('6.6.6.6', [r[0] for r in rows])
        users = {r[0]: r[2]['user'] for r in rows}
        self.assertEqual(users['192.0.2.1'], 'alice')
        self.assertEqual(users['192.0.2.2'], 'UNKNOWN')
        self.assertEqual(users['203.0.113.9'], 'rip=6.6.6.6')
        self.assertEqual(rows[2][2]['ip6'], '2001:db8::3')
        # Every credential failure with an address, and nothing else.
        failed = [l for l in lines if ': login failed: ' in l and
                  ' reason=' in l and ' rip=local ' not in l]
        self.assertEqual(len(failed), len(want))
        summary = self.regex(log)
        self.assertIn('Lines: %d lines, 0 ignored, %d matched, %d missed'
                      % (len(lines), len(want), len(lines) - len(want)),
                      summary)

    def test_database_failure_is_not_a_guess(self):
        """An unreadable passwd-file: -ERR [SYS/TEMP] and a log line
        without reason=, which the filter leaves alone."""
        s = self.session('192.0.2.20')
        s.ok('USER alice')
        os.rename(self.box.passwd, self.box.passwd + '.gone')
        self.assertErr(s.cmd('PASS secret'), b'-ERR [SYS/TEMP]')
        log, lines = self.syslog_file()
        self.assertTrue(any('login failed: user=' in l and
                            'rip=192.0.2.20: ' in l for l in lines), lines)
        self.assertEqual(self.regex(log, '-o', 'ip').strip(), '')

    def test_line_shapes(self):
        """journalctl -o short-iso and -o short lines; another daemon's
        line; UTF-8 user names (RFC 6856), one with a no-break space
        before a fake field."""
        path = os.path.join(self.box.base, 'journal.log')
        with open(path, 'w', encoding='utf-8') as f:
            f.write('2026-11-28T20:40:10+0000 mailhost pop3d[7]: login '
                    'failed: user=alice rip=192.0.2.30 reason=wrong '
                    'password\n')
            f.write('Nov 28 20:40:11 mailhost pop3d[8]: login failed: '
                    'user=UNKNOWN rip=2001:db8::31 reason=unknown user\n')
            f.write('Nov 28 20:40:12 mailhost imapd[9]: login failed: '
                    'user=UNKNOWN rip=192.0.2.32 reason=unknown user\n')
            f.write('Nov 28 20:40:13 mailhost pop3d[10]: login failed: '
                    'user=jos\u00e9 rip=192.0.2.33 reason=wrong '
                    'password\n')
            f.write('Nov 28 20:40:14 mailhost pop3d[11]: login failed: '
                    'user=x\u00a0rip=6.6.6.6 rip=192.0.2.34 reason=wrong '
                    'password\n')
        self.assertEqual(self.regex(path, '-o', 'ip').split(),
                         ['192.0.2.30', '2001:db8::31', '192.0.2.33',
                          '192.0.2.34'])


@unittest.skipUnless(have_fail2ban() and shutil.which('fail2ban-client'),
                     NO_FAIL2BAN)
class Fail2banJailTest(unittest.TestCase):
    """jail.d/pop3d.conf is a valid jail with the documented settings."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='pop3d-f2b-')
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.conf = os.path.join(self.tmp, 'fail2ban')
        shutil.copytree(FAIL2BAN_ETC, self.conf, symlinks=True)
        # Only this jail: the distribution's would need their logs.
        jails = os.path.join(self.conf, 'jail.d')
        for name in os.listdir(jails):
            os.unlink(os.path.join(jails, name))
        for name in ('jail.local', 'fail2ban.local'):
            if os.path.exists(os.path.join(self.conf, name)):
                os.unlink(os.path.join(self.conf, name))
        shutil.copy(FILTER, os.path.join(self.conf, 'filter.d'))
        self.mail_log = os.path.join(self.tmp, 'mail.log')
        open(self.mail_log, 'w').close()

    def install_jail(self, text):
        with open(os.path.join(self.conf, 'jail.d', 'pop3d.conf'), 'w') as f:
            f.write(text)

    def client(self, *args):
        return subprocess.run(['fail2ban-client', '-c', self.conf] +
                              list(args), capture_output=True, text=True,
                              timeout=60)

    def jail_text(self):
        with open(JAIL) as f:
            return f.read()

    def test_shipped_disabled(self):
        text = self.jail_text()
        self.assertRegex(text, r'(?m)^\[pop3d\]$')
        self.assertRegex(text, r'(?m)^enabled\s*=\s*false$')
        self.install_jail(text)
        p = self.client('-t')
        self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
        p = self.client('-d')
        self.assertNotIn("'pop3d'", p.stdout)

    def test_enabled_on_mail_log(self):
        """Enabled with the /var/log/mail.log variant of the comments."""
        text = self.jail_text()
        text = text.replace('enabled  = false', 'enabled  = true')
        text = text.replace('\nbackend      = systemd', '\n#')
        text = text.replace('\njournalmatch = ', '\n#')
        text = text.replace('#backend = auto', 'backend = auto')
        text = text.replace('#logpath = /var/log/mail.log',
                            'logpath = ' + self.mail_log)
        self.install_jail(text)
        p = self.client('-t')
        self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
        dump = self.client('-d').stdout
        for want in ("['add', 'pop3d', 'auto']",
                     "['set', 'pop3d', 'maxretry', 5]",
                     "['set', 'pop3d', 'findtime', '10m']",
                     "['set', 'pop3d', 'bantime', '1h']",
                     "'addlogpath', '%s'" % self.mail_log,
                     'rip=(?:::f{4,6}:)?<ADDR> reason='):
            self.assertIn(want, dump)

    def test_enabled_on_journal(self):
        """Enabled as shipped otherwise: the systemd backend, reading
        pop3d's syslog identifier."""
        text = self.jail_text().replace('enabled  = false',
                                        'enabled  = true')
        self.install_jail(text)
        p = self.client('-t')
        self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
        dump = self.client('-d').stdout
        self.assertIn("['add', 'pop3d', 'systemd']", dump)
        self.assertIn("['set', 'pop3d', 'addjournalmatch', "
                      "'SYSLOG_IDENTIFIER=pop3d']", dump)


if __name__ == '__main__':
    unittest.main()
