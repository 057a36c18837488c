"""End-to-end tests of pop3d's checks for the administrator:
--check-user NAME (a user looked up as a login does, and the mailbox
looked at without a change) and --check-config (passwd-files, the mail
spec and checkpassword programs).

--check-user must leave the mailbox exactly as it was: no move from new/
to cur/, no pop3d.sizes, pop3d.lock or pop3d.login, no expiry, no change
of any mtime, and no atime of a message file or an mbox; the tests
compare a full listing before and after.

Plain unittest cases, loaded by e2e.py; alone:
    cd tests && python3 -m unittest admin_check_e2e -v

Parts that create system users or switch uids need root and are skipped
otherwise; system users made here are removed again.
"""

import hashlib
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pop3test import Box  # noqa: E402

IS_ROOT = os.geteuid() == 0
NEEDS_ROOT = 'needs root (system users, uid switch)'
EXIT_USAGE = 64

# The keys --check-user prints for a Maildir that a login can open, in
# order.
USER_KEYS = ['user', 'database', 'uid', 'gid', 'home', 'mailbox', 'type',
             'messages', 'new', 'skipped', 'octets', 'lock', 'result']


def pop3d_binary():
    """The binary under test, as e2e.py resolved it."""
    return os.environ.get('POP3D_BINARY', os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        'pop3d'))


def msg(n):
    return (b'From: sender%d@example.org\nSubject: message %d\n\n'
            b'This is message %d.\n' % (n, n, n))


def read_noatime(path):
    """The content of a file, read without changing its atime."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOATIME)
    except PermissionError:
        fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return b''.join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def snapshot(top):
    """Everything under top: type, mode, owner, size and mtime of each
    entry, the atime and a digest of each regular file, the target of
    each link."""
    out = {}
    for root, dirs, files in os.walk(top):
        for name in [''] + dirs + files:
            path = os.path.join(root, name) if name else root
            st = os.lstat(path)
            entry = [stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode),
                     st.st_uid, st.st_gid, st.st_mtime_ns]
            if stat.S_ISREG(st.st_mode):
                entry += [st.st_size, st.st_atime_ns,
                          hashlib.sha256(read_noatime(path)).hexdigest()]
            elif stat.S_ISLNK(st.st_mode):
                entry.append(os.readlink(path))
            out[os.path.relpath(path, top)] = entry
    return out


def parse(stdout):
    """The "key: value" lines of --check-user: (keys in order, dict)."""
    keys, values = [], {}
    for line in stdout.decode().splitlines():
        key, sep, value = line.partition(': ')
        if not sep:
            raise AssertionError('not a "key: value" line: %r' % line)
        keys.append(key)
        values[key] = value
    return keys, values


class CheckCase(unittest.TestCase):
    """A test with its own mailbox and passwd-file (alice,
    {PLAIN}secret)."""

    def setUp(self):
        self.box = Box(pop3d_binary())
        self.addCleanup(self.box.cleanup)

    def run_pop3d(self, argv, **kwargs):
        return subprocess.run(argv, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=60, **kwargs)

    def check_user(self, name='alice', *extra, argv=None, status=None,
                   own=True):
        """pop3d --check-user: (status, keys, values), after giving the
        home to the mail user (unless not own); the output never carries
        a password."""
        if own:
            self.box._own()
        if argv is None:
            argv = self.box.argv(*extra)
        p = self.run_pop3d(argv + ['--check-user', name])
        self.assertEqual(p.stderr, b'')
        self.assertNotIn(b'secret', p.stdout)
        keys, values = parse(p.stdout)
        self.assertEqual(keys[-1], 'result', p.stdout)
        self.assertEqual(p.returncode, 0 if values['result'] == 'ok' else 1,
                         p.stdout)
        if status is not None:
            self.assertEqual(p.returncode, status, p.stdout)
        return p.returncode, keys, values

    def check_config(self, *args):
        """pop3d --check-config: (status, output lines)."""
        p = self.run_pop3d([self.box.pop3d, '--check-config'] + list(args))
        return p.returncode, p.stdout.decode().splitlines()

    def assertRefused(self, values, *words):
        result = values['result']
        self.assertTrue(result.startswith('refused: '), result)
        for w in words:
            self.assertIn(w, result)


class CheckUserTest(CheckCase):
    """--check-user on a Maildir."""

    def test_good_user_and_nothing_changes(self):
        for n in (1, 2):
            self.box.deliver(msg(n))
        self.box.deliver(msg(3), name='1690000000.M3P3.test:2,S', sub='cur')
        self.box.deliver(msg(4), name='1690000001.M4P4.test:2,', sub='cur')
        os.symlink('/etc/passwd', os.path.join(self.box.maildir, 'cur',
                                               '1690000002.link:2,'))
        self.box._own()
        before = snapshot(self.box.home)
        _, keys, v = self.check_user('alice', '--login-delay', '3600',
                                     '--expire', '0', status=0)
        self.assertEqual(keys, USER_KEYS)
        self.assertEqual(v['user'], 'alice')
        self.assertEqual(v['database'], 'passwd-file ' + self.box.passwd)
        self.assertEqual(v['uid'], str(self.box.uid))
        self.assertEqual(v['gid'], str(self.box.gid))
        self.assertEqual(v['home'], self.box.home)
        self.assertEqual(v['mailbox'], self.box.maildir)
        self.assertEqual(v['type'], 'maildir')
        self.assertEqual(int(v['messages']), 4)
        self.assertEqual(int(v['new'].split()[0]), 2)
        self.assertEqual(int(v['skipped'].split()[0]), 1)
        self.assertEqual(v['octets'], '%d on disk' % sum(
            len(msg(n)) for n in range(1, 5)))
        self.assertEqual(v['lock'], 'free')
        self.assertEqual(snapshot(self.box.home), before)
        for name in ('pop3d.sizes', 'pop3d.lock', 'pop3d.login'):
            self.assertFalse(os.path.lexists(os.path.join(self.box.maildir,
                                                          name)), name)
        self.assertEqual(len(self.box.listdir('new')), 2)
        # A login sees what the check counted.
        s = self.box.open()
        self.assertTrue(s.cmd('STAT').startswith(b'+OK 4 '))
        s.quit()

    def test_missing_maildir_is_not_created(self):
        _, keys, v = self.check_user(status=0)
        self.assertEqual(int(v['messages'].split()[0]), 0)
        self.assertEqual(v['lock'], 'free')
        self.assertFalse(os.path.exists(self.box.maildir))

    def test_unknown_and_invalid_users(self):
        _, keys, v = self.check_user('nobody' + secrets.token_hex(3),
                                     status=1)
        self.assertEqual(keys, ['user', 'result'])
        self.assertEqual(v['result'], 'refused: unknown user')
        _, _, v = self.check_user('../alice', status=1)
        self.assertRefused(v, 'invalid user name')

    def test_refused_entries(self):
        self.box.add_user('locked', '!{PLAIN}secret')
        self.box.add_user('sha1', '{SHA1}W6ph5Mm5Pz8GgiULbPgzG37mj9g=')
        self.box.add_user('broken', '$6$salt$short')
        _, keys, v = self.check_user('locked', status=1)
        self.assertRefused(v, 'account locked')
        self.assertIn('uid', keys)
        _, _, v = self.check_user('sha1', status=1)
        self.assertRefused(v, 'unknown password scheme {SHA1}')
        _, _, v = self.check_user('broken', status=1)
        self.assertRefused(v, 'crypt(3)')
        self.assertNotIn('short', v['result'])
        if IS_ROOT:
            self.box.add_user('rooty', '{PLAIN}secret', uid=0, gid=0)
            _, _, v = self.check_user('rooty', status=1)
            self.assertRefused(v, 'uid 0')

    def test_in_use(self):
        self.box.deliver(msg(1))
        s = self.box.open()
        before = snapshot(self.box.home)
        _, _, v = self.check_user(status=1)
        self.assertEqual(v['lock'], 'in use')
        self.assertRefused(v, 'in use', '[IN-USE]')
        self.assertEqual(int(v['messages']), 1)
        self.assertEqual(snapshot(self.box.home), before)
        # The session is not disturbed, and the lock is free after it.
        self.assertEqual(s.cmd('NOOP'), b'+OK\r\n')
        s.quit()
        _, _, v = self.check_user(status=0)
        self.assertEqual(v['lock'], 'free')
        # A --takeover session names itself in an fcntl lock.
        s = self.box.open('alice', 'secret', '--takeover', '600')
        _, _, v = self.check_user(status=1)
        self.assertEqual(v['lock'], 'in use by pid %d' % s.pid)
        s.quit()

    def test_unreadable_mailbox(self):
        self.box.deliver(msg(1))
        self.box._own()
        cur = os.path.join(self.box.maildir, 'cur')
        os.chmod(cur, 0o500)
        _, _, v = self.check_user(status=1)
        self.assertRefused(v, cur, 'Permission denied')
        os.chmod(cur, 0o700)
        os.chmod(self.box.maildir, 0)
        try:
            _, keys, v = self.check_user(status=1)
        finally:
            os.chmod(self.box.maildir, 0o700)
        self.assertRefused(v, self.box.maildir, 'Permission denied')
        self.assertEqual(keys[-3:], ['mailbox', 'type', 'result'])

    @unittest.skipUnless(IS_ROOT, NEEDS_ROOT)
    def test_files_of_other_owners_are_skipped(self):
        self.box.deliver(msg(1))
        self.box._own()
        path = os.path.join(self.box.maildir, 'cur', '1690000000.root:2,')
        with open(path, 'wb') as f:
            f.write(msg(2))
        os.chown(path, 0, 0)
        _, _, v = self.check_user(status=0, own=False)
        self.assertEqual(int(v['messages']), 1)
        self.assertEqual(int(v['skipped'].split()[0]), 1)

    @unittest.skipUnless(IS_ROOT and shutil.which('setpriv'), NEEDS_ROOT)
    def test_run_as_another_user(self):
        nobody = pwd.getpwnam('nobody')
        argv = ['setpriv', '--reuid', str(nobody.pw_uid), '--regid',
                str(nobody.pw_gid), '--clear-groups'] + self.box.argv()
        _, _, v = self.check_user(argv=argv, status=1)
        self.assertRefused(v, 'running as uid %d' % nobody.pw_uid,
                           'check as root or as the user')

    def test_login_delay(self):
        s = self.box.open('alice', 'secret', '--login-delay', '3600')
        s.quit()
        stamp = os.path.join(self.box.maildir, 'pop3d.login')
        mtime = os.stat(stamp).st_mtime_ns
        _, keys, v = self.check_user('alice', '--login-delay', '3600',
                                     status=1)
        self.assertIn('last-login', keys)
        self.assertRefused(v, 'login delay')
        self.assertEqual(os.stat(stamp).st_mtime_ns, mtime)
        self.check_user(status=0)

    def test_uidl_from(self):
        self.box.deliver(msg(1))
        _, keys, v = self.check_user('alice', '--uidl-from', 'dovecot',
                                     status=0)
        self.assertIn("pop3d's own ids", v['uidl-from'])
        path = os.path.join(self.box.maildir, 'dovecot-uidlist')
        with open(path, 'wb') as f:
            f.write(b'3 V1 N9\n1 :a\nx :b\n')
        _, _, v = self.check_user('alice', '--uidl-from', 'dovecot',
                                  status=1)
        self.assertRefused(v, 'dovecot-uidlist line 3')

    def test_checkpassword_cannot_tell(self):
        argv = self.box.argv('--checkpassword', '/bin/false')
        _, keys, v = self.check_user('zed', argv=argv, status=1)
        self.assertEqual(v['database'], 'checkpassword /bin/false')
        self.assertTrue(v['result'].startswith('cannot tell: '), v)
        # The passwd-file before it knows alice: it decides.
        self.check_user('alice', argv=argv, status=0)


class CheckMboxTest(CheckCase):
    """--check-user on an mbox spool file."""

    def setUp(self):
        super().setUp()
        self.mbox = os.path.join(self.box.home, 'mbox')
        self.spec = ['-m', 'mbox:%h/mbox']

    def write(self, data):
        with open(self.mbox, 'wb') as f:
            f.write(data)
        self.box._own()
        old = time.time() - 86400
        os.utime(self.mbox, (old, old + 60))   # read before delivery

    def test_mbox(self):
        data = (b'From a@example.org Mon Jan  1 00:00:00 2024\n' + msg(1) +
                b'\nFrom b@example.org Mon Jan  1 00:00:01 2024\n' + msg(2))
        self.write(data)
        before = snapshot(self.box.home)
        _, keys, v = self.check_user('alice', *self.spec, status=0)
        self.assertEqual(keys, [k for k in USER_KEYS
                                if k not in ('new', 'skipped')])
        self.assertEqual(v['mailbox'], 'mbox:' + self.mbox)
        self.assertEqual(v['type'], 'mbox')
        self.assertEqual(int(v['messages']), 2)
        self.assertEqual(v['octets'], '%d on disk' % len(data))
        self.assertEqual(v['lock'], 'free')
        self.assertEqual(snapshot(self.box.home), before)
        s = self.box.open('alice', 'secret', *self.spec)
        _, _, v = self.check_user('alice', *self.spec, status=1)
        self.assertEqual(v['lock'], 'in use')
        self.assertRefused(v, 'in use')
        s.quit()

    def test_missing_and_not_an_mbox(self):
        _, _, v = self.check_user('alice', *self.spec, status=0)
        self.assertEqual(int(v['messages'].split()[0]), 0)
        self.assertFalse(os.path.exists(self.mbox))
        self.write(b'Subject: not an mbox\n\nbody\n')
        _, _, v = self.check_user('alice', *self.spec, status=1)
        self.assertRefused(v, 'not an mbox')

    @unittest.skipUnless(IS_ROOT, NEEDS_ROOT)
    def test_file_of_another_owner(self):
        self.write(b'From a@b Mon Jan  1 00:00:00 2024\n' + msg(1))
        os.chown(self.mbox, 0, 0)
        os.chmod(self.mbox, 0o644)
        _, _, v = self.check_user('alice', *self.spec, status=1, own=False)
        self.assertRefused(v, 'owned by uid 0')


@unittest.skipUnless(IS_ROOT, NEEDS_ROOT)
class CheckSystemUserTest(CheckCase):
    """--check-user with -S: accounts made with useradd."""

    PASSWORD = 'Pw-123456'

    def make_user(self, *useradd):
        """A system user with a password and a home under the box;
        removed again when the test ends."""
        name = 'p3c' + secrets.token_hex(5)
        home = os.path.join(self.box.base, name)
        r = subprocess.run(['useradd', '-m', '-d', home,
                            '-s', '/usr/sbin/nologin'] + list(useradd)
                           + [name], capture_output=True, timeout=30)
        if r.returncode != 0:
            self.fail('useradd: %r' % r.stderr)
        self.addCleanup(self.remove_user, name)
        r = subprocess.run(['chpasswd'], input=('%s:%s\n' % (
            name, self.PASSWORD)).encode(), capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return pwd.getpwnam(name)

    def remove_user(self, name):
        for force in ([], ['-f']):
            r = subprocess.run(['userdel', '-r'] + force + [name],
                               capture_output=True, timeout=30)
            try:
                pwd.getpwnam(name)
            except KeyError:
                return
        raise AssertionError('userdel %s: %r' % (name, r.stderr))

    def usermod(self, *args):
        r = subprocess.run(['usermod'] + list(args), capture_output=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)

    def system(self, name, *extra, status):
        argv = [self.box.pop3d, '-S'] + list(extra)
        return self.check_user(name, argv=argv, status=status)

    def test_locked_and_expired_accounts(self):
        pw = self.make_user()
        if pw.pw_uid < 1000:
            self.skipTest('useradd picked uid %d' % pw.pw_uid)
        _, _, v = self.system(pw.pw_name, status=0)
        self.assertEqual(v['database'], 'system accounts')
        self.assertEqual(v['uid'], str(pw.pw_uid))
        self.assertEqual(v['home'], pw.pw_dir)
        self.assertEqual(v['mailbox'], os.path.join(pw.pw_dir, 'Maildir'))
        self.assertFalse(os.path.exists(v['mailbox']))
        self.usermod('-L', pw.pw_name)
        _, keys, v = self.system(pw.pw_name, status=1)
        self.assertRefused(v, 'account locked')
        self.assertNotIn('mailbox', keys)
        self.usermod('-U', pw.pw_name)
        self.usermod('-e', '1', pw.pw_name)
        _, _, v = self.system(pw.pw_name, status=1)
        self.assertRefused(v, 'account expired')
        self.usermod('-e', '', pw.pw_name)
        self.system(pw.pw_name, status=0)
        # --first-uid above the account's uid: a login passes it over.
        _, _, v = self.system(pw.pw_name, '--first-uid', str(pw.pw_uid + 1),
                              status=1)
        self.assertRefused(v, 'unknown user', 'below --first-uid')

    def test_root_and_system_uids(self):
        _, _, v = self.system('root', status=1)
        self.assertRefused(v, 'uid 0')
        pw = self.make_user('--system')
        if pw.pw_uid >= 1000:
            self.skipTest('useradd --system picked uid %d' % pw.pw_uid)
        _, _, v = self.system(pw.pw_name, status=1)
        self.assertRefused(v, 'uid %d, below --first-uid 1000'
                           % pw.pw_uid)


class CheckConfigTest(CheckCase):
    """--check-config."""

    def write(self, name, lines, mode=0o600):
        path = os.path.join(self.box.base, name)
        with open(path, 'w') as f:
            f.write(''.join(line + '\n' for line in lines))
        os.chmod(path, mode)
        return path

    def entry(self, name, password, uid=None, gid=None, home=None):
        return '%s:%s:%s:%s::%s::' % (
            name, password, self.box.uid if uid is None else uid,
            self.box.gid if gid is None else gid,
            self.box.home if home is None else home)

    def hash(self, password):
        r = subprocess.run([self.box.pop3d, '--hash-password'],
                           input=password.encode() + b'\n',
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r)
        return r.stdout.decode().strip()

    def test_good_file(self):
        path = self.write('users', [
            '# users', '',
            self.entry('alice', '{PLAIN}secret'),
            self.entry('bob', self.hash('pw')),
            self.entry('carol', '{SHA512-CRYPT}' + self.hash('pw')),
            self.entry('dave', '!' + self.hash('pw')),    # locked: fine
            self.entry('erin', '{PLAIN}x', home='')])
        status, out = self.check_config('-u', path, '-m', '/var/mail/%u')
        self.assertEqual((status, out), (0, ['ok']))
        status, out = self.check_config('-u', path, '-S',
                                        '--checkpassword', '/bin/true')
        self.assertEqual(status, 1)
        self.assertEqual(out, ['%s:7: user erin: no home, which the mail '
                               'spec maildir:~/Maildir needs' % path])

    def test_problems_in_a_passwd_file(self):
        unknown = '$9$abcdefgh$' + 'x' * 40
        path = self.write('users', [
            self.entry('alice', '{PLAIN}secret'),           # 1
            'a line without colons',                        # 2
            self.entry('bad/name', '{PLAIN}x'),             # 3
            'nopassword::1000:1000::/home/x::',             # 4
            self.entry('alice', '{PLAIN}again'),            # 5
            self.entry('sha', '{SHA1}W6ph5Mm5Pz8GgiULbPgzG37mj9g='),  # 6
            self.entry('nine', unknown),                    # 7
            self.entry('rel', '{PLAIN}x', home='home/rel'),  # 8
            self.entry('letters', '{PLAIN}x', uid='abc'),   # 9
            self.entry('rooty', '{PLAIN}x', uid=0),         # 10
            self.entry('noid', '{PLAIN}x', uid='', gid=''),  # 11
            'long:{PLAIN}' + 'y' * 2000 + ':1:1::/h::',     # 12
            self.entry('crlf', '{PLAIN}x') + '\r',          # 13
            self.entry('clear', 'secret'),                  # 14
        ], mode=0o644)
        status, out = self.check_config('-u', path)
        self.assertEqual(status, 1)
        want = {
            0: 'readable by every user (mode 0644): chmod 600',
            2: "malformed entry: no ':'",
            3: 'malformed entry: invalid user name bad/name',
            4: 'malformed entry: user nopassword has an empty password',
            5: 'duplicate user alice: the entry on line 1 is the one used',
            6: 'user sha: unknown password scheme {SHA1}',
            7: 'user nine: a hash crypt(3) does not take (method $9$)',
            8: 'user rel: home home/rel is not absolute',
            9: 'user letters: uid abc is not a number',
            10: 'user rooty: uid 0 (root: never served)',
            11: 'user noid: no uid',
            12: 'line longer than 1022 octets or with a NUL octet: skipped',
            13: 'line ends with CR',
            14: 'user clear: not a whole crypt(3) hash',
        }
        self.assertEqual(len(out), len(want) + 1, out)     # noid: gid too
        for line, text in want.items():
            prefix = '%s:%d: ' % (path, line) if line else path + ': '
            self.assertTrue(any(o.startswith(prefix + text) for o in out),
                            '%r not in %r' % (prefix + text, out))
        self.assertIn('%s:11: user noid: no gid (pop3d run as root needs '
                      'one)' % path, out)
        self.assertNotIn('ok', out)
        text = '\n'.join(out)
        for secret in ('W6ph5Mm5Pz8GgiULbPgzG37mj9g=', 'x' * 40, 'again',
                       'secret'):
            self.assertNotIn(secret, text)

    def test_mail_spec(self):
        path = self.write('users', [self.entry('alice', '{PLAIN}x')])
        for spec, problem in [
                ('maildir:/var/vmail/%d/%n', None),
                ('mbox:/var/mail/%u', None),
                ('~/Maildir', None),
                ('/var/vmail/%q/%u', 'unknown escape %q'),
                ('/var/vmail/%u%', '% at the end'),
                ('Maildir/%u', 'is not absolute'),
                ('/var/mail/shared', 'every user gets the same mailbox'),
                ('mdir:/var/mail/%u', 'unknown mailbox type mdir:')]:
            with self.subTest(spec=spec):
                status, out = self.check_config('-u', path, '-m', spec)
                if problem is None:
                    self.assertEqual((status, out), (0, ['ok']))
                    continue
                self.assertEqual(status, 1)
                self.assertEqual(len(out), 1, out)
                self.assertTrue(out[0].startswith('--mail %s: ' % spec), out)
                self.assertIn(problem, out[0])

    def test_checkpassword_program(self):
        noexec = self.write('prog', ['#!/bin/sh', 'exit 1'], mode=0o644)
        status, out = self.check_config(
            '--checkpassword', '/bin/true', '--checkpassword', noexec,
            '--checkpassword', 'bin/true',
            '--checkpassword', os.path.join(self.box.base, 'missing'))
        self.assertEqual(status, 1)
        self.assertEqual(out, [
            '--checkpassword %s: not executable' % noexec,
            '--checkpassword bin/true: not an absolute path',
            '--checkpassword %s: No such file or directory'
            % os.path.join(self.box.base, 'missing')])
        self.assertEqual(self.check_config('--checkpassword', '/bin/true'),
                         (0, ['ok']))

    def test_usage_errors_and_missing_file(self):
        for args in ([], ['-u', self.box.passwd, '--first-uid', 'x'],
                     ['-u', self.box.passwd, '--check-user', 'alice'],
                     ['-u', self.box.passwd, 'extra']):
            with self.subTest(args=args):
                p = self.run_pop3d([self.box.pop3d, '--check-config'] + args)
                self.assertEqual(p.returncode, EXIT_USAGE, p)
                self.assertEqual(p.stdout, b'')
        missing = os.path.join(self.box.base, 'nothere')
        self.assertEqual(self.check_config('-u', missing), (1, [
            '%s: No such file or directory' % missing]))


if __name__ == '__main__':
    unittest.main()
