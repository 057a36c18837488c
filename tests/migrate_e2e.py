"""End-to-end tests of --uidl-from: after a move from Dovecot, Courier or
qmail-pop3d to pop3d, UIDL gives every message the id the old server
gave it, so that clients that leave mail on the server fetch nothing
twice.

- Dovecot: the real pop3 of Debian's dovecot-pop3d (2.3.19) serves a
  Maildir pre-authenticated and writes its dovecot-uidlist; pop3d with
  --uidl-from dovecot (and auto) must give the same UIDL listing, also
  after deletions and new mail, and for P fields (the ids a migration
  into Dovecot kept).
- Courier: the real courierpop3d of Debian's courier-pop (1.0.16), run
  pre-authenticated as courierpop3login runs it (environment
  AUTHENTICATED, the Maildir as its argument), writes its
  courierpop3dsizelist; pop3d with --uidl-from courier (and auto) must
  give its listing.
- qmail: qmail-pop3d is not in Debian; its UIDL is the message's name up
  to ':' (printfn() in qmail-pop3d.c), which pop3d --uidl-from qmail
  must give.
- Files written here in the documented formats check the cases the real
  servers do not produce on their own (version 1, damaged files, ids
  that are not valid UIDLs), and run without any peer.

The peers are fetched as bench/bench.py fetches Dovecot: `apt-get
download` of the packages and of the libraries they need that are not
installed, unpacked with `dpkg-deb -x` into bench/peers/e2e/ (git-ignored;
POP3D_PEERS overrides), nothing installed.  Dovecot unpacked by
`make bench` is used when it is there.  A peer that cannot be had is
skipped with the reason.  As root the peers run as the test mail user
(setpriv), like pop3d.

Plain unittest cases, loaded by e2e.py; alone:
    cd tests && python3 -m unittest migrate_e2e -v
"""

import glob
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pop3test import Box, Pop3Assertions  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_PEERS = os.path.join(ROOT, 'bench', 'peers')
PEERS = os.environ.get('POP3D_PEERS', os.path.join(BENCH_PEERS, 'e2e'))
IS_ROOT = os.geteuid() == 0

DOVECOT_PACKAGES = ['dovecot-core', 'dovecot-pop3d']
# courierpop3d needs libcourierauth from courier-authlib, which is not a
# library package by name.
COURIER_PACKAGES = ['courier-pop', 'courier-authlib']
PEER_TIMEOUT = 60
FETCH_TIMEOUT = 300

DOVECOT_ID_RE = re.compile(r'\A[0-9a-f]{16}\Z')
COURIER_ID_RE = re.compile(r'\AUID\d+-\d+\Z')
# What --uidl-from must refuse.
EXIT_USAGE = 64


def pop3d_binary():
    """The binary under test, as e2e.py resolved it."""
    return os.environ.get('POP3D_BINARY', os.path.join(ROOT, 'pop3d'))


def msg(n):
    return (b'From: sender%d@example.org\nSubject: message %d\n\n'
            b'This is message %d.\n' % (n, n, n))


def base(name):
    """pop3d's own UIDL: the unique part of a name."""
    return re.split(r'[,:]', name, maxsplit=1)[0]


def qmail_id(name):
    """qmail-pop3d's UIDL: the name up to ':'."""
    return name.split(':', 1)[0]


class Unavailable(Exception):
    """A peer that cannot be fetched or run here."""


# Fetching the peers.

_fetched = {}


def installed(pkg):
    p = subprocess.run(['dpkg-query', '-W', '-f=${db:Status-Status}', pkg],
                       capture_output=True, text=True)
    return p.returncode == 0 and p.stdout.strip() == 'installed'


def apt_download(pkgs, debs):
    try:
        p = subprocess.run(['apt-get', 'download'] + pkgs, cwd=debs,
                           capture_output=True, text=True,
                           timeout=FETCH_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise Unavailable('apt-get download %s timed out' % ' '.join(pkgs))
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ['?'])[-1]
        raise Unavailable('apt-get download %s: %s' % (' '.join(pkgs),
                                                       last))


def unpack(name, packages):
    """Unpack packages, and the libraries they need that are not
    installed, into PEERS/name/root; reused while its stamp matches."""
    top = os.path.join(PEERS, name)
    root = os.path.join(top, 'root')
    stamp = os.path.join(top, 'stamp.json')
    try:
        with open(stamp) as f:
            if json.load(f).get('packages') == packages:
                return root
    except (OSError, ValueError):
        pass
    for tool in ('apt-get', 'dpkg-deb', 'dpkg-query'):
        if shutil.which(tool) is None:
            raise Unavailable('%s is not installed' % tool)
    shutil.rmtree(top, ignore_errors=True)
    debs = os.path.join(top, 'debs')
    os.makedirs(debs)
    os.makedirs(root)
    apt_download(packages, debs)
    extra = set()
    for deb in sorted(os.listdir(debs)):
        dep = subprocess.run(['dpkg-deb', '-f', os.path.join(debs, deb),
                              'Depends'], capture_output=True,
                             text=True).stdout
        for alt in dep.split(','):
            pkg = alt.split('|')[0].strip().split(' ')[0].split(':')[0]
            if pkg.startswith('lib') and not installed(pkg):
                extra.add(pkg)
    if extra:
        apt_download(sorted(extra), debs)
    versions = {}
    for deb in sorted(os.listdir(debs)):
        path = os.path.join(debs, deb)
        subprocess.run(['dpkg-deb', '-x', path, root], check=True)
        out = subprocess.run(['dpkg-deb', '-f', path, 'Package', 'Version'],
                             capture_output=True, text=True).stdout
        fields = dict(line.split(': ', 1) for line in out.splitlines()
                      if ': ' in line)
        versions[fields.get('Package', deb)] = fields.get('Version', '?')
    with open(stamp, 'w') as f:
        json.dump({'packages': packages, 'versions': versions}, f)
    return root


def bench_dovecot():
    """The Dovecot that `make bench` unpacked, if any."""
    try:
        with open(os.path.join(BENCH_PEERS, 'stamp.json')) as f:
            packages = json.load(f).get('packages', [])
    except (OSError, ValueError):
        return None
    root = os.path.join(BENCH_PEERS, 'root')
    if all(p in packages for p in DOVECOT_PACKAGES) and os.path.isdir(root):
        return root
    return None


def peer_root(name):
    """The unpacked peer, fetched once per run; Unavailable if not."""
    if name not in _fetched:
        try:
            root = bench_dovecot() if name == 'dovecot' else None
            if root is None:
                root = unpack(name, DOVECOT_PACKAGES if name == 'dovecot'
                              else COURIER_PACKAGES)
            _fetched[name] = root
        except (Unavailable, OSError, subprocess.SubprocessError) as e:
            _fetched[name] = Unavailable('%s: %s' % (name, e))
    if isinstance(_fetched[name], Unavailable):
        raise _fetched[name]
    return _fetched[name]


def libpath(root, *first):
    """LD_LIBRARY_PATH for binaries unpacked under root."""
    return ':'.join(list(first) + sorted(
        glob.glob(os.path.join(root, 'usr/lib/*-linux-gnu*')) +
        glob.glob(os.path.join(root, 'lib/*-linux-gnu*'))))


def check_libs(binary, env):
    if not os.access(binary, os.X_OK):
        raise Unavailable('%s is missing' % binary)
    out = subprocess.run(['ldd', binary], env=env, capture_output=True,
                         text=True).stdout
    missing = [l.split()[0] for l in out.splitlines() if 'not found' in l]
    if missing:
        raise Unavailable('%s needs %s' % (binary, ', '.join(missing)))


# Running the peers.

class Peer:
    """An old POP3 server run pre-authenticated on a Maildir, as the mail
    user, with a script of commands on its standard input."""

    greeting = False

    def __init__(self, box):
        self.box = box
        self.setpriv = None
        if IS_ROOT:
            self.setpriv = shutil.which('setpriv')
            if self.setpriv is None:
                raise Unavailable('setpriv (util-linux) is not installed')

    def argv(self, maildir):
        raise NotImplementedError

    def run(self, script):
        """Run one session; returns its output lines (CRLF removed)."""
        self.box._own()
        argv = self.argv(self.box.maildir)
        if self.setpriv:
            argv = [self.setpriv, '--reuid=%d' % self.box.uid,
                    '--regid=%d' % self.box.gid, '--clear-groups'] + argv
        p = subprocess.run(argv, input=script, capture_output=True,
                           env=self.env, timeout=PEER_TIMEOUT)
        if p.returncode != 0:
            raise AssertionError('%s: exit %d: %r %r' % (
                argv[-2:], p.returncode, p.stdout[-300:], p.stderr[-300:]))
        lines = p.stdout.decode('ascii').split('\r\n')
        if self.greeting:
            if not lines[0].startswith('+OK'):
                raise AssertionError('no greeting: %r' % p.stdout[:300])
            lines = lines[1:]
        for line in lines:
            if line.startswith('-ERR'):
                raise AssertionError('%s: %s' % (argv[-2:], line))
        return lines

    def uidls(self):
        """The ids of the UIDL listing, in message order."""
        lines = self.run(b'UIDL\r\nQUIT\r\n')
        if not lines or not lines[0].startswith('+OK'):
            raise AssertionError('UIDL: %r' % lines[:3])
        out = []
        for i, line in enumerate(lines[1:], 1):
            if line == '.':
                return out
            num, _, uid = line.partition(' ')
            if int(num) != i:
                raise AssertionError('UIDL line %r' % line)
            out.append(uid)
        raise AssertionError('UIDL listing not ended: %r' % lines)

    def dele(self, *numbers):
        """Delete messages and QUIT, so the server applies it."""
        self.run(b''.join(b'DELE %d\r\n' % n for n in numbers) +
                 b'QUIT\r\n')


class Dovecot(Peer):
    """Dovecot's pop3 binary, pre-authenticated (as bench/bench.py runs
    it): no greeting; the settings that doveconf exports once are given
    to it in its environment, as Dovecot's own re-exec would."""

    def __init__(self, box):
        super().__init__(box)
        root = peer_root('dovecot')
        libdir = os.path.join(root, 'usr/lib/dovecot')
        self.bin = os.path.join(libdir, 'pop3')
        doveconf = os.path.join(root, 'usr/bin/doveconf')
        base_env = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin',
                    'LD_LIBRARY_PATH': libpath(root, libdir)}
        check_libs(self.bin, base_env)
        check_libs(doveconf, base_env)
        user = pwd.getpwuid(box.uid).pw_name
        conf = os.path.join(box.base, 'dovecot.conf')
        with open(conf, 'w') as f:
            f.write('protocols = pop3\n'
                    'ssl = no\n'
                    'log_path = /dev/stderr\n'
                    'default_login_user = %s\n'
                    'default_internal_user = %s\n' % (user, user))
        p = subprocess.run([doveconf, '-c', conf, '-f', 'service=pop3', '-m',
                            'pop3', '-p', '-e', '/usr/bin/env'],
                           env=base_env, capture_output=True, text=True,
                           timeout=PEER_TIMEOUT)
        if p.returncode != 0:
            raise Unavailable('doveconf: ' + (p.stderr or p.stdout).strip())
        exported = {}
        for line in p.stdout.splitlines():
            k, eq, v = line.partition('=')
            if eq and k not in base_env and k not in ('_', 'PWD', 'SHLVL'):
                exported[k] = v
        if exported.get('DOVECONF_ENV') != '1':
            raise Unavailable('doveconf exported no settings')
        self.env = dict(base_env, USER=user, HOME=box.home, **exported)

    def argv(self, maildir):
        return [self.bin, '-o', 'mail_location=maildir:' + maildir]


class Courier(Peer):
    """Courier's courierpop3d after courierpop3login has authenticated:
    AUTHENTICATED names the user, the Maildir is its argument."""

    greeting = True

    def __init__(self, box):
        super().__init__(box)
        root = peer_root('courier')
        self.bin = os.path.join(root, 'usr/lib/courier/courier/courierpop3d')
        self.env = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin',
                    # libcourierauth is in /usr/lib itself.
                    'LD_LIBRARY_PATH': libpath(root, os.path.join(
                        root, 'usr/lib')),
                    'AUTHENTICATED': 'alice', 'TCPREMOTEIP': '127.0.0.1'}
        check_libs(self.bin, self.env)

    def argv(self, maildir):
        return [self.bin, maildir]


# The tests.

class MigrateCase(Pop3Assertions, unittest.TestCase):
    """A mailbox, and pop3d's UIDL listing of it."""

    def setUp(self):
        self.box = Box(pop3d_binary())
        self.addCleanup(self.box.cleanup)
        self.box.make_maildir()
        self.names = []

    def deliver(self, n, name=None, sub='new'):
        name = self.box.deliver(msg(n), name=name, sub=sub)
        self.names.append(name)
        return name

    def deliver_mix(self, first, count):
        """Messages first..first+count-1 with later and later times, in
        new/ and in cur/ (seen, or with an MDA's ,S= size)."""
        for n in range(first, first + count):
            stem = '%d.M%dP%d.mx.example.org' % (1700000000 + 100 * n, n,
                                                 4000 + n)
            if n % 3 == 0:
                self.deliver(n, stem)
            elif n % 3 == 1:
                self.deliver(n, '%s,S=%d:2,S' % (stem, len(msg(n))),
                             sub='cur')
            else:
                self.deliver(n, stem + ':2,', sub='cur')

    def pop3d_uidls(self, *extra):
        s = self.box.open('alice', 'secret', *extra)
        ids = self.uidls(s)
        s.quit()
        return ids

    def assert_same_uidls(self, want, *sources):
        """pop3d gives want with --uidl-from each of sources, twice (the
        second time after its own first login moved and flagged mail)."""
        for src in sources:
            for _ in range(2):
                self.assertEqual(self.pop3d_uidls('--uidl-from', src), want,
                                 '--uidl-from %s' % src)

    def read(self, name):
        with open(os.path.join(self.box.maildir, name), 'rb') as f:
            return f.read()

    def write(self, name, data):
        with open(os.path.join(self.box.maildir, name), 'wb') as f:
            f.write(data)


class DovecotTest(MigrateCase):
    """Dovecot's dovecot-uidlist, written by the real Dovecot."""

    def setUp(self):
        super().setUp()
        try:
            self.dovecot = Dovecot(self.box)
        except Unavailable as e:
            self.skipTest('Dovecot cannot be run here: %s' % e)

    def test_same_uidls_as_dovecot(self):
        self.deliver_mix(1, 9)
        want = self.dovecot.uidls()
        self.assertEqual(len(want), 9)
        for uid in want:
            self.assertRegex(uid, DOVECOT_ID_RE)
        before = self.read('dovecot-uidlist')
        self.assert_same_uidls(want, 'dovecot', 'auto')
        # Without the option, pop3d's own ids: the test means something.
        self.assertEqual(self.pop3d_uidls(), [base(n) for n in self.names])
        # pop3d never writes Dovecot's file.
        self.assertEqual(self.read('dovecot-uidlist'), before)

    def test_after_deletions_and_new_mail(self):
        """uids with gaps, and uids Dovecot gave in a later session."""
        self.deliver_mix(1, 8)
        self.dovecot.uidls()
        self.dovecot.dele(2, 5, 6)
        self.deliver_mix(9, 4)
        want = self.dovecot.uidls()
        self.assertEqual(len(want), 9)
        self.assert_same_uidls(want, 'dovecot', 'auto')

    def test_p_fields(self):
        """P<id> is the UIDL, an empty P the name up to ':' (as a
        migration into Dovecot leaves them); Dovecot serves them, and so
        must pop3d."""
        self.deliver_mix(1, 4)
        self.dovecot.uidls()
        lines = self.read('dovecot-uidlist').decode().split('\n')
        self.assertRegex(lines[0], r'\A3 V\d+ N\d+ G[0-9a-f]+')
        edited = [lines[0]]
        for line in lines[1:]:
            uid, _, rest = line.partition(' ')
            if uid == '1':
                line = '1 PUID77-1234567890 ' + rest
            elif uid == '2':
                line = '2 P ' + rest
            edited.append(line)
        self.write('dovecot-uidlist', '\n'.join(edited).encode())
        want = self.dovecot.uidls()
        self.assertEqual(want[0], 'UID77-1234567890')
        self.assertEqual(want[1], qmail_id(self.names[1]))
        self.assertRegex(want[2], DOVECOT_ID_RE)
        self.assert_same_uidls(want, 'dovecot', 'auto')


class CourierTest(MigrateCase):
    """Courier's courierpop3dsizelist, written by the real courierpop3d."""

    def setUp(self):
        super().setUp()
        try:
            self.courier = Courier(self.box)
        except Unavailable as e:
            self.skipTest('Courier cannot be run here: %s' % e)

    def test_same_uidls_as_courier(self):
        self.deliver_mix(1, 9)
        want = self.courier.uidls()
        self.assertEqual(len(want), 9)
        for uid in want:
            self.assertRegex(uid, COURIER_ID_RE)
        before = self.read('courierpop3dsizelist')
        self.assert_same_uidls(want, 'courier', 'auto')
        self.assertEqual(self.pop3d_uidls(), [base(n) for n in self.names])
        self.assertEqual(self.read('courierpop3dsizelist'), before)

    def test_after_deletions_and_new_mail(self):
        self.deliver_mix(1, 8)
        self.courier.uidls()
        self.courier.dele(1, 4, 8)
        self.deliver_mix(9, 4)
        want = self.courier.uidls()
        self.assertEqual(len(want), 9)
        self.assert_same_uidls(want, 'courier', 'auto')


class WrittenFilesTest(MigrateCase):
    """The formats as documented, written here: no peer needed."""

    def test_dovecot_version_3(self):
        self.deliver_mix(1, 6)
        n = self.names
        lines = ['3 V1795898655 N40 G0123456789abcdef0123456789abcdef',
                 '3 W20 :%s' % base(n[0]),
                 '4 :%s' % qmail_id(n[1]),
                 '7 W99 PUID1-17 :%s' % base(n[2]),
                 '9 P :%s' % qmail_id(n[3]),
                 '12 :1600000000.gone.example.org',
                 # n[4] is not listed: pop3d's own id.
                 '30 S5 :%s' % base(n[5])]
        self.write('dovecot-uidlist', ('\n'.join(lines) + '\n').encode())
        want = ['000000036b0b3d1f', '000000046b0b3d1f', 'UID1-17',
                qmail_id(n[3]), base(n[4]), '0000001e6b0b3d1f']
        self.assert_same_uidls(want, 'dovecot', 'auto')

    def test_dovecot_version_1(self):
        self.deliver_mix(1, 3)
        self.write('dovecot-uidlist', ('1 1234 100\n' + ''.join(
            '%d %s\n' % (10 + i, name)
            for i, name in enumerate(self.names))).encode())
        want = ['%08x000004d2' % (10 + i) for i in range(3)]
        self.assert_same_uidls(want, 'dovecot')

    def test_courier_versions_2_and_3(self):
        self.deliver_mix(1, 4)
        n = self.names
        self.write('courierpop3dsizelist', (
            '/3 9 1795898646\n'
            '%s 20 1:1795898646:0\n'
            '%s 21 2:1795898646\n'
            '%s 22 5:0:1\n' % (n[0], base(n[1]), n[3])).encode())
        want = ['UID1-1795898646', 'UID2-1795898646', base(n[2]), 'UID5']
        self.assert_same_uidls(want, 'courier', 'auto')

    def test_auto_prefers_dovecot(self):
        self.deliver_mix(1, 2)
        self.write('courierpop3dsizelist', ('/3 3 50\n%s 1 1:50:0\n%s 1 '
                                            '2:50:0\n' % tuple(self.names)
                                            ).encode())
        self.write('dovecot-uidlist', ('3 V80 N3\n1 :%s\n2 :%s\n' % tuple(
            self.names)).encode())
        self.assertEqual(self.pop3d_uidls('--uidl-from', 'auto'),
                         ['0000000100000050', '0000000200000050'])
        self.assertEqual(self.pop3d_uidls('--uidl-from', 'courier'),
                         ['UID1-50', 'UID2-50'])

    def test_no_file_own_ids(self):
        """A mailbox the old server never opened: pop3d's own ids."""
        self.deliver_mix(1, 3)
        want = [base(n) for n in self.names]
        self.assert_same_uidls(want, 'dovecot', 'courier', 'auto', 'own')

    def test_invalid_ids_fall_back(self):
        """An id that is not a valid UIDL (here 71 octets) is not sent:
        that message gets pop3d's own id, the others theirs."""
        self.deliver_mix(1, 2)
        self.write('dovecot-uidlist', ('3 V1 N9\n1 P%s :%s\n2 :%s\n' % (
            'x' * 71, base(self.names[0]), base(self.names[1]))).encode())
        self.assert_same_uidls([base(self.names[0]), '0000000200000001'],
                               'dovecot')

    def test_damaged_file_refuses_login(self):
        """A damaged file is not guessed around: the login fails with
        -ERR and the log names the file and the line."""
        self.deliver_mix(1, 2)
        self.write('dovecot-uidlist', b'3 V1 N9\n1 :%s\nx :%s\n' % (
            base(self.names[0]).encode(), base(self.names[1]).encode()))
        s = self.box.start('--uidl-from', 'dovecot')
        s.ok('USER alice')
        self.assertErr(s.cmd('PASS secret'))
        self.assertIn(b'dovecot-uidlist line 3', self.box.log())

    def test_bad_source_is_a_usage_error(self):
        p = subprocess.run(self.box.argv('--uidl-from', 'outlook'),
                           input=b'', capture_output=True, timeout=10)
        self.assertEqual(p.returncode, EXIT_USAGE, p)
        self.assertIn(b'uidl-from', p.stderr)


class QmailTest(MigrateCase):
    """qmail-pop3d's ids are the names up to ':'."""

    def test_same_uidls_as_qmail_pop3d(self):
        self.deliver(1, '1700000100.4242.mx.example.org')
        self.deliver(2, '1700000200.M5P6.mx.example.org,S=%d' % len(msg(2)))
        self.deliver(3, '1700000300.V801I5M7.mx.example.org,S=%d:2,S'
                     % len(msg(3)), sub='cur')
        self.deliver(4, '1700000400.M8P9.mx.example.org:2,', sub='cur')
        want = [qmail_id(n) for n in self.names]
        self.assert_same_uidls(want, 'qmail')
        # Where the names carry ,S= the two differ.
        self.assertNotEqual(self.pop3d_uidls(), want)


if __name__ == '__main__':
    unittest.main()
