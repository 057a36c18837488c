"""End-to-end fault tests of pop3d on Maildir: no fault makes it crash,
lose mail or keep its lock.

- SIGKILL at many moments of a QUIT that deletes 5,000 of 10,000
  messages: every message not deleted is still there, once, byte for
  byte, and the next session gets in at once and shows what is there.
- A client gone in the middle of RETR of a 64 MiB message (pipe closed,
  TCP reset), and SIGTERM, SIGHUP or SIGKILL meanwhile: nothing deleted,
  the lock free, and (for the client) a log line saying why it ended.
- Disk and directory errors: a Maildir made read-only under a session or
  before it, a message made unreadable or removed or renamed under a
  session, a full file system (a small tmpfs, as root), and through
  tests/faultshim.c, an LD_PRELOAD library that makes chosen libc calls
  fail (EIO reading a message, ENOSPC writing the size cache or the lock,
  EIO from unlink and fsync at QUIT, renames that fail): the exact
  -ERR [SYS/TEMP] replies, and nothing lost.
- 100,000 messages: peak memory bounded, and the time of a login, a
  listing and a commit growing linearly with the mailbox.

Plain unittest cases, loaded by e2e.py; alone:
    cd tests && python3 -m unittest fault_e2e -v
with POP3D_BINARY naming the binary (default: ../pop3d).

The shim is compiled for each class that needs it, with cc; without a
compiler those tests are skipped.  Every test works in its own
temporary directory and ends every process it started.
"""

import errno
import hashlib
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pop3test import (Box, Pop3Assertions, check_status,  # noqa: E402
                      convert, proc_status, stuff, wire, SLOW,
                      UNDER_VALGRIND)

IS_ROOT = os.geteuid() == 0
HERE = os.path.dirname(os.path.abspath(__file__))
SHIM_SOURCE = os.path.join(HERE, 'faultshim.c')

# How long a login may take when no other session holds the lock (longer
# under valgrind).
LOGIN_AT_ONCE = 5.0 * SLOW

STAT_RE = re.compile(rb'\+OK (\d+) (\d+)\r\n\Z')


def pop3d_binary():
    """The binary under test, as e2e.py resolved it."""
    return os.environ.get('POP3D_BINARY', os.path.join(
        os.path.dirname(HERE), 'pop3d'))


def small(n):
    """A small distinct message, with the lines conversion cares about."""
    body = [b'From: sender%d@example.org' % n, b'To: alice@example.org',
            b'Subject: message %d' % n, b'']
    body += [b'line %d of message %d' % (k, n) for k in range(n % 7)]
    if n % 5 == 0:
        body += [b'.', b'.dot line']
    eol = b'\r\n' if n % 11 == 0 else b'\n'
    return eol.join(body) + eol


def name_of(n, base_time=1600000000):
    """The Maildir name of message n in cur/: numbered in order of n."""
    return '%d.M%dP%d.fault:2,' % (base_time + n, n, 4242)


def base_of(name):
    return name.split(':', 1)[0]


def session_lines(box, pid):
    """The log lines pop3d process pid wrote."""
    tag = b'pop3d[%d]: ' % pid
    return [l[len(tag):] for l in box.log().splitlines() if l.startswith(tag)]


def shim_lines(box, pid):
    """The faults the shim injected in process pid."""
    tag = b'faultshim[%d]: ' % pid
    return [l[len(tag):] for l in box.log().splitlines() if l.startswith(tag)]


def wait_gone(s, timeout=10.0):
    """Reap a pop3d process; its exit status (negative: the signal)."""
    try:
        return s.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError('pop3d did not exit within %gs' % timeout)


class FaultTest(Pop3Assertions, unittest.TestCase):
    """A test with its own Maildir."""

    def setUp(self):
        self.box = Box(pop3d_binary())
        self.addCleanup(self.box.cleanup)
        self.cur = os.path.join(self.box.maildir, 'cur')

    # Mailboxes.

    def fill(self, contents, sub='cur'):
        """Messages with the given contents, in order; their names."""
        self.box.make_maildir()
        names = []
        for i, data in enumerate(contents):
            names.append(self.box.deliver(data, name_of(i), sub))
        return names

    def files(self):
        """The message files in cur/, by name: content."""
        out = {}
        for name in os.listdir(self.cur):
            with open(os.path.join(self.cur, name), 'rb') as f:
                out[name] = f.read()
        return out

    def assertNothingLost(self, contents, names, deleted=(), what=''):
        """cur/ holds each message i of contents (named names[i]) not in
        deleted exactly once and unchanged, flags aside; the deleted
        ones may be there or not; new/ and tmp/ hold nothing, and no
        other file is in cur/."""
        by_base = {base_of(n): i for i, n in enumerate(names)}
        seen = {}
        for name, data in self.files().items():
            i = by_base.get(base_of(name))
            self.assertIsNotNone(i, '%s: unknown file cur/%s' % (what, name))
            self.assertNotIn(i, seen, '%s: message %d twice: %s and %s'
                             % (what, i + 1, seen.get(i), name))
            seen[i] = name
            self.assertTrue(data == contents[i], '%s: cur/%s changed'
                            % (what, name))
        lost = [i + 1 for i in range(len(contents))
                if i not in seen and i not in deleted]
        self.assertEqual(lost, [], '%s: messages lost' % what)
        for sub in ('new', 'tmp'):
            self.assertEqual(self.box.listdir(sub), [], '%s: %s/' % (what, sub))
        return seen

    # Sessions.

    def login(self, env=None):
        """A session logged in, which must get in at once."""
        s = self.box.start(env=env)
        s.ok('USER alice')
        t0 = time.monotonic()
        reply = s.cmd('PASS secret', LOGIN_AT_ONCE + 5)
        self.assertNotIn(b'[IN-USE]', reply, 'the lock was kept')
        self.assertOk(reply)
        self.assertLess(time.monotonic() - t0, LOGIN_AT_ONCE,
                        'login took too long')
        return s

    def stat(self, s):
        reply = s.cmd('STAT')
        m = STAT_RE.match(reply)
        self.assertTrue(m, reply)
        return int(m.group(1)), int(m.group(2))

    def dele(self, s, numbers):
        """DELE each of numbers, pipelined."""
        s.send(b''.join(b'DELE %d\r\n' % n for n in numbers))
        for n in numbers:
            reply = s.reply()
            if reply != b'+OK Message %d deleted\r\n' % n:
                self.fail('DELE %d: %r' % (n, reply))

    def assertServes(self, contents, names, present=None):
        """A new session gets in at once and shows the messages of cur/
        (present: their indexes; default all), RETR giving each."""
        if present is None:
            present = range(len(contents))
        present = sorted(present)
        s = self.login()
        self.assertEqual(self.stat(s), (len(present), sum(
            len(convert(contents[i])) for i in present)))
        self.assertEqual(self.uidls(s), [base_of(names[i]) for i in present])
        for n, i in enumerate(present, 1):
            self.assertEqual(self.retr(s, n), wire(contents[i]),
                             'RETR %d' % n)
        s.quit()

    def assertEndLogged(self, s, left, reason=None):
        """The session logged how it ended, deleting nothing."""
        lines = session_lines(self.box, s.pid)
        end = [l for l in lines if l.startswith((b'logout:', b'disconnected:'))]
        self.assertEqual(len(end), 1, lines)
        m = re.match(rb'logout: user=alice rip=\S+ reason=(.+) retr=\d+ '
                     rb'bytes=\d+ del=0 left=%d\Z' % left, end[0])
        self.assertTrue(m, end[0])
        self.assertNotEqual(m.group(1), b'quit', end[0])
        if reason is not None:
            self.assertEqual(m.group(1), reason, end[0])


# 1. SIGKILL during the commit of 5,000 deletions.

COMMIT_MESSAGES = 10000
# Kill once the commit has removed this many messages (0: at once).
KILL_AFTER_UNLINKS = (0, 1, 3, 20, 100, 400, 1000, 1750, 2500, 3300, 4100,
                      4750, 4990, 5000)
# And after a wait, as fractions of an uninterrupted commit's duration.
KILL_AFTER_SPAN = (0.15, 0.45, 0.75, 1.05)


class CommitKillTest(FaultTest):
    """SIGKILL during QUIT never loses or duplicates a message that was
    not deleted, and never leaves the mailbox locked.

    The messages are written once, to a template directory, and linked
    into cur/ (hard links: pop3d only unlinks and renames names, never
    writes a message), with the size cache of the first login, so that
    every login is as fast as a later one.  Each round checks that
    every name in cur/ is still a link to its message's template file
    (the same inode), and the template files are compared with the
    generated octets at the end: a message changed in any round would
    show there.  The removal of the k-th deleted message is seen as its
    template's link count falling to 1; pop3d runs on another CPU than
    the test, so that the kill is not delayed by pop3d waking up."""

    def setUp(self):
        super().setUp()
        self.contents = [small(i) for i in range(COMMIT_MESSAGES)]
        self.names = [name_of(i) for i in range(COMMIT_MESSAGES)]
        self.index = {base_of(n): i for i, n in enumerate(self.names)}
        self.tpl = os.path.join(self.box.base, 'template')
        os.mkdir(self.tpl)
        self.inodes = []
        for name, data in zip(self.names, self.contents):
            path = os.path.join(self.tpl, name)
            with open(path, 'wb') as f:
                f.write(data)
            if IS_ROOT:
                os.lchown(path, self.box.uid, self.box.gid)
            self.inodes.append(os.stat(path).st_ino)
        self.sizes = [len(convert(c)) for c in self.contents]
        self.box.make_maildir()
        self.cache_path = os.path.join(self.box.maildir, 'pop3d.sizes')
        # Box.start chowns the whole home each time; only the
        # directories need it here (the links share the template's owner).
        self.box._own = self.own_dirs
        self.restore()
        # The first login measures every message and writes the cache.
        s = self.login()
        self.assertEqual(self.stat(s), (COMMIT_MESSAGES, sum(self.sizes)))
        s.quit()
        with open(self.cache_path, 'rb') as f:
            self.cache = f.read()
        # Odd message numbers are deleted; every 9th kept one is
        # retrieved, so that the commit renames (S flag) as it goes.
        self.deleted = set(range(0, COMMIT_MESSAGES, 2))
        self.retrieved = {i for i in range(1, COMMIT_MESSAGES, 2)
                          if i % 9 == 1}
        self.order = sorted(self.deleted)   # the order of the unlinks
        self.kept = sorted(set(range(COMMIT_MESSAGES)) - self.deleted)
        cpus = sorted(os.sched_getaffinity(0))
        self.cpus = cpus[:2] if len(cpus) >= 2 else None
        if self.cpus:
            self.addCleanup(os.sched_setaffinity, 0, set(cpus))

    def own_dirs(self):
        if IS_ROOT:
            for root in (self.box.home, self.box.maildir, self.cur):
                os.lchown(root, self.box.uid, self.box.gid)

    def scan(self, what='', flagged=None):
        """Check cur/ (and new/, tmp/): every name a link to a message's
        template, no message twice, none of the kept ones missing, the S
        flag only on the retrieved ones (or flagged).  Returns
        {message: name}."""
        flagged = self.retrieved if flagged is None else flagged
        seen = {}
        with os.scandir(self.cur) as it:
            for e in it:
                i = self.index.get(base_of(e.name))
                if i is None:
                    self.fail('%s: unknown file cur/%s' % (what, e.name))
                if i in seen:
                    self.fail('%s: message %d twice: %s and %s'
                              % (what, i + 1, seen[i], e.name))
                if e.inode() != self.inodes[i]:
                    self.fail('%s: cur/%s is another file' % (what, e.name))
                if e.name != self.names[i] and not (
                        i in flagged and e.name == self.names[i] + 'S'):
                    self.fail('%s: cur/%s renamed' % (what, e.name))
                seen[i] = e.name
        lost = [i + 1 for i in self.kept if i not in seen]
        self.assertEqual(lost, [], '%s: messages lost' % what)
        for sub in ('new', 'tmp'):
            self.assertEqual(self.box.listdir(sub), [], '%s: %s/' % (what, sub))
        return seen

    def restore(self):
        """cur/ holds exactly the template's names again, and the cache
        is the first login's."""
        have = set()
        with os.scandir(self.cur) as it:
            for e in it:
                i = self.index[base_of(e.name)]
                if e.name != self.names[i]:
                    os.rename(e.path, os.path.join(self.cur, self.names[i]))
                have.add(i)
        for i, name in enumerate(self.names):
            if i not in have:
                os.link(os.path.join(self.tpl, name),
                        os.path.join(self.cur, name))
        if hasattr(self, 'cache'):
            with open(self.cache_path, 'wb') as f:
                f.write(self.cache)
            if IS_ROOT:
                os.lchown(self.cache_path, self.box.uid, self.box.gid)
        self.own_dirs()

    def removed(self, i):
        return os.stat(os.path.join(self.tpl, self.names[i])).st_nlink == 1

    def start_commit(self):
        """A session with the deletions and retrievals made, QUIT sent."""
        s = self.login()
        if self.cpus:
            os.sched_setaffinity(s.pid, {self.cpus[1]})
            os.sched_setaffinity(0, {self.cpus[0]})
        self.dele(s, [i + 1 for i in self.order])
        retrieved = sorted(self.retrieved)
        s.send(b''.join(b'RETR %d\r\n' % (i + 1) for i in retrieved))
        for i in retrieved:
            self.assertOk(s.reply())
            self.assertEqual(b''.join(s.multi()) + b'.\r\n',
                             wire(self.contents[i]))
        s.send(b'QUIT\r\n')
        return s

    def kill_round(self, what, unlinks=None, wait=None):
        """One commit killed; returns the number of messages it removed."""
        self.restore()
        s = self.start_commit()
        if unlinks:
            watch = self.order[unlinks - 1]
            deadline = time.monotonic() + 10
            while not self.removed(watch) and s.proc.poll() is None:
                if time.monotonic() > deadline:
                    self.fail('%s: the commit did not get there' % what)
        elif wait is not None:
            until = time.perf_counter() + wait
            while time.perf_counter() < until:
                pass
        s.proc.send_signal(signal.SIGKILL)
        status = wait_gone(s)
        acked = bool(select.select([s.rfd], [], [], 0)[0]) and \
            b'+OK' in os.read(s.rfd, 4096)
        if status != -signal.SIGKILL:
            # The commit ended before the kill: it must be whole.
            self.assertEqual(status, 0, what)
            acked = True

        seen = self.scan(what)
        gone = sum(1 for i in self.deleted if i not in seen)
        if acked:
            self.assertEqual(gone, len(self.deleted),
                             '%s: QUIT said +OK before every deletion '
                             'was done' % what)

        # The next session gets in at once and shows what is there;
        # its QUIT removes the rest.
        present = sorted(seen)
        s = self.login()
        self.assertEqual(self.stat(s), (len(present), sum(
            self.sizes[i] for i in present)), what)
        self.assertEqual(self.uidls(s),
                         [base_of(self.names[i]) for i in present], what)
        numbers = sorted({1, len(present) // 3, len(present) // 2,
                          len(present)})
        for n in numbers:
            self.assertEqual(self.retr(s, n),
                             wire(self.contents[present[n - 1]]), what)
        self.dele(s, [n for n, i in enumerate(present, 1)
                      if i in self.deleted])
        s.quit()
        flagged = self.retrieved | {present[n - 1] for n in numbers}
        self.assertEqual(sorted(self.scan(what, flagged)), self.kept, what)
        return gone

    def test_sigkill_during_commit_of_5000_deletions(self):
        # An uninterrupted commit, for its duration and its result.
        s = self.start_commit()
        t0 = time.monotonic()
        self.assertEqual(s.reply(), b'+OK Bye, %d messages deleted\r\n'
                         % len(self.deleted))
        span = time.monotonic() - t0
        self.assertEqual(s.read_eof(), b'')
        self.assertEqual(s.wait(), 0)
        seen = self.scan()
        self.assertEqual(sorted(seen), self.kept)
        self.assertEqual(sorted(i for i, name in seen.items()
                                if name.endswith(':2,S')),
                         sorted(self.retrieved))

        cut = []
        for k in KILL_AFTER_UNLINKS:
            what = 'kill after %d of %d unlinks' % (k, len(self.deleted))
            gone = self.kill_round(what, unlinks=k)
            self.assertGreaterEqual(gone, k, what)
            cut.append(gone)
        for frac in KILL_AFTER_SPAN:
            what = 'kill %.1f ms after QUIT (commit takes %.1f ms)' % (
                frac * span * 1000, span * 1000)
            cut.append(self.kill_round(what, wait=frac * span))
        # The kills must have cut commits at many different places.
        inside = {g for g in cut if 0 < g < len(self.deleted)}
        self.assertGreaterEqual(len(inside), 8, 'removed per round: %s; '
                                'the commit takes %.1f ms'
                                % (cut, span * 1000))
        # No message was changed in any round.
        for i, name in enumerate(self.names):
            with open(os.path.join(self.tpl, name), 'rb') as f:
                self.assertTrue(f.read() == self.contents[i],
                                'message %d changed' % (i + 1))


# 2. The end of a session in the middle of RETR of a 64 MiB message.

BIG_NAME = '1700000100.M1P1.big:2,'
_big = {}


def big_message():
    """A message file of a little over 64 MiB, made once: its path, its
    SHA-256, the size LIST gives, and the first 8 MiB RETR sends."""
    if not _big:
        row = b'%06d the quick brown fox jumps over the lazy dog 0123456789\n'
        block = b''.join((b'.' + row % i) if i % 97 == 0 else row % i
                         for i in range(16000))
        head = b'From: big@example.org\nSubject: big\n\n'
        blocks = (64 << 20) // len(block) + 1
        d = tempfile.mkdtemp(prefix='pop3d-fault-big-')
        os.chmod(d, 0o755)
        path = os.path.join(d, BIG_NAME)
        digest = hashlib.sha256()
        with open(path, 'wb') as f:
            f.write(head)
            for _ in range(blocks):
                f.write(block)
        digest.update(head)
        for _ in range(blocks):
            digest.update(block)
        sent = stuff(convert(head)) + stuff(convert(block)) * (
            (8 << 20) // len(block) + 1)
        _big.update(dir=d, path=path, sha=digest.hexdigest(),
                    size=len(convert(head)) + blocks * len(convert(block)),
                    start=sent[:8 << 20])
    return _big


class RetrInterruptTest(FaultTest):
    """A client that goes away, or a signal, in the middle of RETR of a
    64 MiB message, after DELE of others: nothing deleted, the lock
    free at once."""

    @classmethod
    def setUpClass(cls):
        cls.big = big_message()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.big['dir'], ignore_errors=True)
        _big.clear()

    def setUp(self):
        super().setUp()
        self.contents = [small(i) for i in range(4)]
        self.names = self.fill(self.contents)
        os.link(self.big['path'], os.path.join(self.cur, BIG_NAME))
        self.big_no = len(self.contents) + 1

    def assertBigIntact(self):
        digest = hashlib.sha256()
        with open(os.path.join(self.cur, BIG_NAME), 'rb') as f:
            for chunk in iter(lambda: f.read(1 << 20), b''):
                digest.update(chunk)
        self.assertEqual(digest.hexdigest(), self.big['sha'])

    def assertUntouched(self):
        """Every message still there, the lock free."""
        names = self.names + [BIG_NAME]
        self.assertEqual(sorted(os.listdir(self.cur)), sorted(names))
        for name, data in zip(self.names, self.contents):
            with open(os.path.join(self.cur, name), 'rb') as f:
                self.assertTrue(f.read() == data, name)
        self.assertBigIntact()
        s = self.login()
        self.assertEqual(self.stat(s), (self.big_no, self.big['size'] + sum(
            len(convert(c)) for c in self.contents)))
        s.quit()

    def start_retr(self, s, mib=4):
        """DELE 1 and 3, RETR of the big message, some MiB of it read."""
        self.dele(s, [1, 3])
        self.assertEqual(s.cmd('RETR %d' % self.big_no),
                         b'+OK %d octets\r\n' % self.big['size'])
        data = s.read_exact(mib << 20, timeout=30)
        self.assertTrue(data == self.big['start'][:len(data)],
                        'RETR sent other octets')

    def test_reader_closes_mid_retr(self):
        """The client closes its read end while pop3d writes (its input
        stays open): pop3d gets EPIPE, not a deadly SIGPIPE, and ends
        with status 1 and a log line."""
        s = self.login()
        self.start_retr(s)
        s.proc.stdout.close()
        self.assertEqual(wait_gone(s), 1)
        self.assertEndLogged(s, left=self.big_no, reason=b'connection lost')
        self.assertUntouched()

    def test_client_closes_pipes_mid_retr(self):
        s = self.login()
        self.start_retr(s)
        s.proc.stdout.close()
        s.close_input()
        self.assertEqual(wait_gone(s), 1)
        self.assertEndLogged(s, left=self.big_no, reason=b'connection lost')
        self.assertUntouched()

    def test_tcp_reset_mid_retr(self):
        """A TCP client that resets the connection after some MiB."""
        with socket.create_server(('127.0.0.1', 0)) as srv:
            client = socket.create_connection(srv.getsockname(), 5)
            conn, _ = srv.accept()
        self.addCleanup(client.close)
        self.box._own()
        env = {k: v for k, v in os.environ.items()
               if k not in ('TCPREMOTEIP', 'REMOTE_HOST')}
        with conn:
            proc = subprocess.Popen(self.box.argv(), stdin=conn, stdout=conn,
                                    stderr=self.box.log_file, env=env)
        self.box.procs.append(proc)
        client.settimeout(10)
        f = client.makefile('rb')
        self.addCleanup(f.close)

        def cmd(line):
            client.sendall(line + b'\r\n')
            return check_status(f.readline())

        self.assertTrue(check_status(f.readline()).startswith(b'+OK'))
        self.assertOk(cmd(b'USER alice'))
        self.assertOk(cmd(b'PASS secret'))
        self.assertOk(cmd(b'DELE 2'))
        self.assertEqual(cmd(b'RETR %d' % self.big_no),
                         b'+OK %d octets\r\n' % self.big['size'])
        data = f.read(3 << 20)
        self.assertTrue(data == self.big['start'][:3 << 20],
                        'RETR sent other octets')
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                          struct.pack('ii', 1, 0))
        f.close()
        client.close()
        try:
            self.assertEqual(proc.wait(10), 1)
        except subprocess.TimeoutExpired:
            self.fail('pop3d did not end after the reset')
        lines = session_lines(self.box, proc.pid)
        self.assertIn(b'login ok: user=alice rip=127.0.0.1 messages=%d '
                      b'expired=0' % self.big_no, lines)
        self.assertIn(b'logout: user=alice rip=127.0.0.1 reason=connection '
                      b'lost retr=0 bytes=0 del=0 left=%d' % self.big_no, lines)
        self.assertUntouched()

    def _signal_mid_retr(self, sig):
        s = self.login()
        self.start_retr(s)
        os.kill(s.pid, sig)
        status = wait_gone(s)
        # Ended by the signal, or by itself on it (not with QUIT's 0).
        self.assertIn(status, (-sig, 1, 75), 'exit status')
        self.assertUntouched()
        return s

    def test_sigterm_mid_retr(self):
        self._signal_mid_retr(signal.SIGTERM)

    def test_sighup_mid_retr(self):
        self._signal_mid_retr(signal.SIGHUP)

    def test_sigkill_mid_retr(self):
        self._signal_mid_retr(signal.SIGKILL)

    def test_signal_end_is_logged(self):
        for sig in (signal.SIGTERM, signal.SIGHUP):
            s = self._signal_mid_retr(sig)
            self.assertEndLogged(s, left=self.big_no)


# 3. Disk and directory errors.

class DirectoryErrorTest(FaultTest):
    """Permissions and other processes changing the Maildir: errors are
    answered with -ERR [SYS/...], the session goes on where it can, and
    nothing is lost."""

    def setUp(self):
        super().setUp()
        self.contents = [small(i) for i in range(5)]
        self.names = self.fill(self.contents)
        self.addCleanup(self.restore_modes)

    def restore_modes(self):
        for path in (self.box.maildir, self.cur,
                     os.path.join(self.box.maildir, 'new')):
            if os.path.isdir(path):
                os.chmod(path, 0o700)
        if os.path.isdir(self.cur):
            for name in os.listdir(self.cur):
                os.chmod(os.path.join(self.cur, name), 0o600)

    def read_only(self):
        os.chmod(self.cur, 0o500)
        os.chmod(self.box.maildir, 0o500)

    def test_read_only_maildir_under_session(self):
        s = self.login()
        self.assertEqual(self.retr(s, 2), wire(self.contents[1]))
        self.dele(s, [1, 4])
        self.read_only()
        self.assertEqual(s.cmd('QUIT'), b'-ERR [SYS/TEMP] 2 of 2 messages '
                         b'could not be deleted\r\n')
        self.assertEqual(s.read_eof(), b'')
        self.assertEqual(s.wait(), 75)
        lines = session_lines(self.box, s.pid)
        self.assertTrue(any(re.match(rb'update failed: user=alice rip=local: '
                                     rb'unlink cur/\S+: Permission denied\Z',
                                     l) for l in lines), lines)
        self.assertIn(b'logout: user=alice rip=local reason=update failed '
                      b'retr=1 bytes=%d del=0 left=5' % len(convert(self.contents[1])),
                      lines)
        seen = self.assertNothingLost(self.contents, self.names)
        self.assertEqual(sorted(seen.values()), sorted(self.names))
        self.restore_modes()
        self.assertServes(self.contents, self.names)

    def test_read_only_maildir_at_login(self):
        # The lock file exists (an earlier session made it): the session
        # opens, serves cur/, but cannot delete.  Mail in new/ cannot be
        # moved to cur/ and waits for the next session.
        s = self.login()
        s.quit()
        self.contents.append(small(5))
        late = self.box.deliver(self.contents[5], base_of(name_of(5)), 'new')
        self.names.append(late + ':2,')
        self.read_only()
        os.chmod(os.path.join(self.box.maildir, 'new'), 0o500)
        s = self.login()
        self.assertEqual(self.stat(s)[0], 5)
        self.assertEqual(self.retr(s, 5), wire(self.contents[4]))
        self.dele(s, [2])
        self.assertEqual(s.cmd('QUIT'), b'-ERR [SYS/TEMP] 1 of 1 messages '
                         b'could not be deleted\r\n')
        self.assertEqual(s.read_eof(), b'')
        self.assertEqual(s.wait(), 75)
        self.assertEqual(self.box.listdir('new'), [late])
        self.restore_modes()
        self.assertServes(self.contents, self.names)

    def test_read_only_maildir_without_lock_file(self):
        self.assertFalse(os.path.exists(os.path.join(self.box.maildir,
                                                     'pop3d.lock')))
        self.read_only()
        s = self.box.start()
        s.ok('USER alice')
        self.assertEqual(s.cmd('PASS secret'),
                         b'-ERR [SYS/PERM] Mailbox cannot be opened\r\n')
        self.assertEqual(s.read_eof(), b'')
        self.assertEqual(s.wait(), 75)
        lines = session_lines(self.box, s.pid)
        self.assertIn(b'mailbox not opened: user=alice rip=local: lock file '
                      b'pop3d.lock: Permission denied', lines)
        self.assertIn(b'disconnected: rip=local reason=error', lines)
        self.restore_modes()
        self.assertNothingLost(self.contents, self.names)
        self.assertServes(self.contents, self.names)

    def test_unreadable_message_under_session(self):
        s = self.login()
        os.chmod(os.path.join(self.cur, self.names[2]), 0)
        self.assertEqual(s.cmd('RETR 3'), b'-ERR [SYS/TEMP] Message 3 cannot '
                         b'be read\r\n')
        self.assertEqual(s.cmd('TOP 3 0'), b'-ERR [SYS/TEMP] Message 3 cannot '
                         b'be read\r\n')
        for n in (1, 2, 4, 5):
            self.assertEqual(self.retr(s, n), wire(self.contents[n - 1]))
        self.assertEqual(s.cmd('LIST 3'), b'+OK 3 %d\r\n'
                         % len(convert(self.contents[2])))
        self.dele(s, [5])
        s.quit()
        lines = session_lines(self.box, s.pid)
        self.assertIn(b'message 3 not readable: user=alice rip=local: cur/%s: '
                      b'Permission denied' % self.names[2].encode(), lines)
        self.restore_modes()
        self.assertNothingLost(self.contents, self.names, {4})
        self.assertEqual(len(os.listdir(self.cur)), 4)
        self.assertServes(self.contents, self.names, range(4))

    # A RETR answered -ERR because the file could not be opened must not
    # count as a retrieval: no S flag at QUIT, not in LAST, not in the
    # logout line's retr= and bytes=.  (It once did all three.)
    def test_failed_retr_is_not_a_retrieval(self):
        s = self.login()
        os.chmod(os.path.join(self.cur, self.names[2]), 0)
        self.assertEqual(s.cmd('RETR 3'), b'-ERR [SYS/TEMP] Message 3 cannot '
                         b'be read\r\n')
        os.chmod(os.path.join(self.cur, self.names[2]), 0o600)
        last = s.cmd('LAST')
        s.quit()
        self.assertEqual(sorted(os.listdir(self.cur)), sorted(self.names),
                         'a message was flagged seen')
        self.assertIn(b'logout: user=alice rip=local reason=quit retr=0 '
                      b'bytes=0 del=0 left=5', session_lines(self.box, s.pid))
        self.assertEqual(last, b'+OK 0\r\n')

    def test_unreadable_message_at_first_login(self):
        # No size cache yet: the message must be read for its size.  It
        # cannot be, so it is not served (and counted in the log); the
        # others are, and nothing changes.
        os.chmod(os.path.join(self.cur, self.names[1]), 0)
        s = self.box.start()
        s.ok('USER alice')
        self.assertEqual(s.cmd('PASS secret'), b'+OK Logged in, 4 messages '
                         b'(%d octets)\r\n' % sum(len(convert(c)) for c in
                                                  self.contents[:1] +
                                                  self.contents[2:]))
        self.assertEqual(self.uidls(s), [n.split(':')[0] for i, n in
                                         enumerate(self.names) if i != 1])
        s.quit()
        self.assertTrue(any(l.startswith(b'mailbox: user=alice: 1 files in '
                                         b'cur/ not served') for l in
                            session_lines(self.box, s.pid)))
        self.restore_modes()
        self.assertNothingLost(self.contents, self.names)
        self.assertServes(self.contents, self.names)

    def test_message_removed_under_session(self):
        s = self.login()
        os.unlink(os.path.join(self.cur, self.names[1]))
        self.assertEqual(s.cmd('RETR 2'), b'-ERR [SYS/TEMP] Message 2 cannot '
                         b'be read\r\n')
        for n in (1, 3, 4, 5):
            self.assertEqual(self.retr(s, n), wire(self.contents[n - 1]))
        self.dele(s, [4])
        s.quit()
        self.assertIn(b'message 2 not readable: user=alice rip=local: cur/%s: '
                      b'No such file or directory' % self.names[1].encode(),
                      session_lines(self.box, s.pid))
        self.assertNothingLost(self.contents, self.names, {1, 3})
        self.assertServes(self.contents, self.names, (0, 2, 4))

    def test_removed_message_deleted(self):
        """The client deletes a message another process removed
        meanwhile: what the client asked for is done."""
        s = self.login()
        os.unlink(os.path.join(self.cur, self.names[1]))
        self.dele(s, [2, 3])
        self.assertEqual(s.cmd('QUIT'), b'+OK Bye, 2 messages deleted\r\n')
        self.assertEqual(s.read_eof(), b'')
        self.assertEqual(s.wait(), 0)
        self.assertNothingLost(self.contents, self.names, {1, 2})
        self.assertServes(self.contents, self.names, (0, 3, 4))

    def test_message_renamed_under_session(self):
        """An IMAP server sets a flag (renames the file) meanwhile: RETR,
        DELE and the S flag follow the new name."""
        s = self.login()
        for i in (1, 3):
            os.rename(os.path.join(self.cur, self.names[i]),
                      os.path.join(self.cur, self.names[i] + 'F'))
        self.assertEqual(self.retr(s, 2), wire(self.contents[1]))
        self.dele(s, [4])
        s.quit()
        self.assertNothingLost(self.contents, self.names, {3})
        self.assertEqual(sorted(os.listdir(self.cur)), sorted(
            [self.names[0], self.names[1] + 'FS', self.names[2],
             self.names[4]]))


def mount_tmpfs(path, options):
    """Mount a tmpfs at path; False when this machine does not allow it."""
    if not IS_ROOT or not shutil.which('mount'):
        return False
    r = subprocess.run(['mount', '-t', 'tmpfs', '-o', options, 'tmpfs',
                       path], capture_output=True, timeout=30)
    return r.returncode == 0


def umount(path):
    subprocess.run(['umount', '-l', path], capture_output=True, timeout=30)


class FullDiskTest(FaultTest):
    """A Maildir on a small tmpfs (as root, where mount works): a file
    system without room for the size cache, or without an inode for the
    lock file."""

    def setUp(self):
        super().setUp()
        os.makedirs(self.box.maildir)
        opts = 'size=512k,nr_inodes=64,mode=0700'
        if IS_ROOT:
            opts += ',uid=%d,gid=%d' % (self.box.uid, self.box.gid)
        if not mount_tmpfs(self.box.maildir, opts):
            self.skipTest('cannot mount a tmpfs here (needs root and '
                          'mount permission)')
        self.addCleanup(umount, self.box.maildir)
        self.contents = [small(i) for i in range(5)]
        self.names = self.fill(self.contents)
        self.cache = os.path.join(self.box.maildir, 'pop3d.sizes')

    def fill_up(self):
        """Take every free block; returns the filler's path."""
        path = os.path.join(self.box.maildir, 'tmp', 'filler')
        with open(path, 'wb', buffering=0) as f:
            try:
                while True:
                    f.write(b'\0' * 4096)
            except OSError as e:
                self.assertEqual(e.errno, errno.ENOSPC)
        return path

    def test_no_room_for_the_size_cache(self):
        # The lock file, empty, needs an inode but no block.
        filler = self.fill_up()
        s = self.login()
        self.assertEqual(self.stat(s), (5, sum(len(convert(c))
                                               for c in self.contents)))
        self.assertEqual(self.retr(s, 3), wire(self.contents[2]))
        self.dele(s, [1])
        s.quit()
        self.assertFalse(os.path.exists(self.cache))
        self.assertEqual([n for n in os.listdir(self.box.maildir)
                          if n.startswith('pop3d.sizes')], [],
                         'a temporary cache file was left')
        os.unlink(filler)
        self.assertNothingLost(self.contents, self.names, {0})
        self.assertServes(self.contents, self.names, range(1, 5))
        # Room again: the next login writes the cache.
        self.assertTrue(os.path.exists(self.cache))

    def test_no_inode_for_the_lock_file(self):
        self.box.make_maildir()
        self.box._own()
        k = 0
        try:
            while True:
                open(os.path.join(self.box.maildir, 'tmp', 'f%d' % k),
                     'wb').close()
                k += 1
        except OSError as e:
            self.assertEqual(e.errno, errno.ENOSPC)
        s = self.box.start()
        s.ok('USER alice')
        self.assertEqual(s.cmd('PASS secret'), b'-ERR [SYS/TEMP] Mailbox '
                         b'cannot be opened, try again later\r\n')
        self.assertEqual(s.wait(), 75)
        self.assertIn(b'mailbox not opened: user=alice rip=local: lock file '
                      b'pop3d.lock: No space left on device',
                      session_lines(self.box, s.pid))
        for j in range(k):
            os.unlink(os.path.join(self.box.maildir, 'tmp', 'f%d' % j))
        self.assertNothingLost(self.contents, self.names)
        self.assertServes(self.contents, self.names)


# Faults injected with the LD_PRELOAD shim.

class ShimTest(FaultTest):
    """pop3d with tests/faultshim.c preloaded."""

    @classmethod
    def setUpClass(cls):
        cls.shim_dir = None
        cc = shutil.which('cc') or shutil.which('gcc')
        if cc is None:
            raise unittest.SkipTest('no C compiler (cc) to build '
                                    'tests/faultshim.c')
        cls.shim_dir = tempfile.mkdtemp(prefix='pop3d-faultshim-')
        os.chmod(cls.shim_dir, 0o755)
        cls.shim = os.path.join(cls.shim_dir, 'faultshim.so')
        r = subprocess.run([cc, '-shared', '-fPIC', '-o', cls.shim,
                            SHIM_SOURCE, '-ldl'], capture_output=True,
                           timeout=120)
        if r.returncode != 0:
            shutil.rmtree(cls.shim_dir, ignore_errors=True)
            raise AssertionError('cannot build faultshim.so:\n'
                                 + r.stderr.decode(errors='replace'))

    @classmethod
    def tearDownClass(cls):
        if cls.shim_dir is not None:
            shutil.rmtree(cls.shim_dir, ignore_errors=True)

    def setUp(self):
        super().setUp()
        self.contents = [small(i) for i in range(5)]
        self.contents[2] = b'Subject: large\n\n' + b''.join(
            b'%07d a line of the large message\n' % k for k in range(40000))
        self.names = self.fill(self.contents)
        self.cache = os.path.join(self.box.maildir, 'pop3d.sizes')

    def env(self, call, err='EIO', **more):
        """The environment of a pop3d whose calls named call fail."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith('FAULT_')}
        env['LD_PRELOAD'] = self.shim
        asan = env.get('ASAN_OPTIONS', '')
        env['ASAN_OPTIONS'] = (asan + ':' if asan else '') + \
            'verify_asan_link_order=0'
        env['FAULT_CALL'] = call
        env['FAULT_ERRNO'] = err
        for k, v in more.items():
            env['FAULT_' + k.upper()] = str(v)
        return env

    def warm(self):
        """A login without faults, so that the size cache exists."""
        s = self.login()
        s.quit()
        self.assertTrue(os.path.exists(self.cache))

    def assertInjected(self, s, pattern):
        """The shim injected a fault in s matching pattern (a regex)."""
        lines = shim_lines(self.box, s.pid)
        self.assertTrue(any(re.search(pattern, l) for l in lines),
                        'no fault matching %r injected: %r'
                        % (pattern, lines))

    # The passwd-file.

    def test_eio_reading_passwd_file(self):
        """The passwd-file cannot be read: the login fails for now and
        the session ends, the log says why, and the mailbox is not
        opened."""
        s = self.box.start(env=self.env('read', path=self.box.passwd))
        s.ok('USER alice')
        self.assertErr(s.cmd('PASS secret'), b'-ERR [SYS/TEMP]')
        self.assertEqual(s.read_eof(), b'')
        self.assertInjected(s, rb'^read \S+/passwd: Input/output error')
        self.assertIn(b'login failed: user=UNKNOWN rip=local: %s: '
                      b'Input/output error' % self.box.passwd.encode(),
                      session_lines(self.box, s.pid))
        self.assertFalse(os.path.exists(self.cache))
        self.assertNothingLost(self.contents, self.names)

    def test_eintr_reading_passwd_file(self):
        """A read of the passwd-file that a signal interrupts is made
        again."""
        s = self.login(self.env('read', 'EINTR', path=self.box.passwd,
                                times=1))
        self.assertInjected(s, rb'^read \S+/passwd: Interrupted')
        self.assertEqual(self.retr(s, 1), wire(self.contents[0]))
        s.quit()

    # Reading messages.

    def test_eio_reading_message_mid_retr(self):
        """The second read of a message fails: +OK and part of it were
        sent already, so the session ends at once; the client sees the
        end without the terminating line."""
        self.warm()
        s = self.login(self.env('read', path='/cur/' + self.names[2],
                                after=2))
        self.dele(s, [1])
        self.assertEqual(s.cmd('RETR 3'), b'+OK %d octets\r\n'
                         % len(convert(self.contents[2])))
        rest = s.read_eof()
        self.assertGreater(len(rest), 0)
        self.assertLess(len(rest), len(wire(self.contents[2])))
        self.assertTrue(wire(self.contents[2]).startswith(rest))
        self.assertEqual(s.wait(), 75)
        self.assertInjected(s, rb'^read \S+/cur/%s: Input/output error'
                            % re.escape(self.names[2].encode()))
        lines = session_lines(self.box, s.pid)
        self.assertIn(b'message 3 read error: user=alice rip=local: '
                      b'Input/output error', lines)
        self.assertIn(b'logout: user=alice rip=local reason=error retr=0 '
                      b'bytes=0 del=0 left=5', lines)
        self.assertNothingLost(self.contents, self.names)
        self.assertServes(self.contents, self.names)

    def test_eio_on_first_read_of_message(self):
        self.warm()
        s = self.login(self.env('read', path='/cur/' + self.names[1]))
        self.assertEqual(s.cmd('RETR 2'), b'+OK %d octets\r\n'
                         % len(convert(self.contents[1])))
        self.assertEqual(s.read_eof(), b'')
        self.assertEqual(s.wait(), 75)
        self.assertIn(b'message 2 read error: user=alice rip=local: '
                      b'Input/output error', session_lines(self.box, s.pid))
        self.assertNothingLost(self.contents, self.names)

    def test_eio_opening_message(self):
        """The message cannot be opened: -ERR before +OK, and the
        session goes on."""
        self.warm()
        s = self.login(self.env('openat', path='/cur/' + self.names[3]))
        self.assertEqual(s.cmd('RETR 4'), b'-ERR [SYS/TEMP] Message 4 cannot '
                         b'be read\r\n')
        self.assertEqual(s.cmd('TOP 4 1'), b'-ERR [SYS/TEMP] Message 4 cannot '
                         b'be read\r\n')
        for n in (1, 2, 3, 5):
            self.assertEqual(self.retr(s, n), wire(self.contents[n - 1]))
        self.dele(s, [2, 4])
        s.quit()
        self.assertInjected(s, rb'^openat \S+/cur/%s: Input/output error'
                            % re.escape(self.names[3].encode()))
        self.assertIn(b'message 4 not readable: user=alice rip=local: '
                      b'cur/%s: Input/output error' % self.names[3].encode(),
                      session_lines(self.box, s.pid))
        self.assertNothingLost(self.contents, self.names, {1, 3})
        self.assertServes(self.contents, self.names, (0, 2, 4))

    def test_eio_reading_message_at_first_login(self):
        s = self.box.start(env=self.env('read',
                                        path='/cur/' + self.names[4]))
        s.ok('USER alice')
        self.assertEqual(s.cmd('PASS secret'), b'-ERR [SYS/TEMP] Mailbox '
                         b'cannot be opened, try again later\r\n')
        self.assertEqual(s.wait(), 75)
        self.assertIn(b'mailbox not opened: user=alice rip=local: cur/%s: '
                      b'Input/output error' % self.names[4].encode(),
                      session_lines(self.box, s.pid))
        self.assertFalse(os.path.exists(self.cache))
        self.assertNothingLost(self.contents, self.names)
        self.assertServes(self.contents, self.names)

    def test_eio_reading_one_of_many_at_first_login(self):
        """Hundreds of messages to size are read in two threads where
        there is more than one CPU; a read error in either still refuses
        the login, names the file and changes nothing."""
        self.contents += [small(i) for i in range(5, 600)]
        self.names += [self.box.deliver(data, name_of(i), 'cur') for i, data
                       in enumerate(self.contents[5:], 5)]
        bad = self.names[450].encode()
        s = self.box.start(env=self.env('read', path='/cur/' + bad.decode()))
        s.ok('USER alice')
        self.assertEqual(s.cmd('PASS secret'), b'-ERR [SYS/TEMP] Mailbox '
                         b'cannot be opened, try again later\r\n')
        self.assertEqual(s.wait(), 75)
        self.assertInjected(s, rb'^read \S+/cur/%s: Input/output error'
                            % re.escape(bad))
        self.assertIn(b'mailbox not opened: user=alice rip=local: cur/%s: '
                      b'Input/output error' % bad,
                      session_lines(self.box, s.pid))
        self.assertFalse(os.path.exists(self.cache))
        self.assertNothingLost(self.contents, self.names)
        self.assertServes(self.contents, self.names)

    def test_eio_reading_cur_directory(self):
        s = self.box.start(env=self.env('readdir', path='/cur'))
        s.ok('USER alice')
        self.assertEqual(s.cmd('PASS secret'), b'-ERR [SYS/TEMP] Mailbox '
                         b'cannot be opened, try again later\r\n')
        self.assertEqual(s.wait(), 75)
        self.assertIn(b'mailbox not opened: user=alice rip=local: cur/: '
                      b'Input/output error', session_lines(self.box, s.pid))
        self.assertNothingLost(self.contents, self.names)
        self.assertServes(self.contents, self.names)

    # The size cache.

    def _cache_not_written(self, call, err, path='pop3d.sizes', **more):
        s = self.login(self.env(call, err, path=path, **more))
        sizes = [len(convert(c)) for c in self.contents]
        self.assertEqual(self.stat(s), (5, sum(sizes)))
        self.assertOk(s.cmd('LIST'))
        self.assertEqual(s.multi(), [b'%d %d\r\n' % (n, size)
                                     for n, size in enumerate(sizes, 1)])
        self.dele(s, [5])
        s.quit()
        self.assertInjected(s, rb'^%s \S*pop3d\.sizes' % call.encode())
        self.assertFalse(os.path.exists(self.cache))
        self.assertEqual([n for n in os.listdir(self.box.maildir)
                          if n.startswith('pop3d.sizes')], [],
                         'a temporary cache file was left')
        self.assertNothingLost(self.contents, self.names, {4})
        # The next login, without the fault, writes it.
        self.assertServes(self.contents, self.names, range(4))
        self.assertTrue(os.path.exists(self.cache))

    def test_enospc_creating_size_cache(self):
        self._cache_not_written('openat', 'ENOSPC')

    def test_enospc_writing_size_cache(self):
        self._cache_not_written('pwrite', 'ENOSPC')

    def test_eio_renaming_size_cache(self):
        self._cache_not_written('renameat', 'EIO')

    def test_enospc_creating_lock_file(self):
        s = self.box.start(env=self.env('openat', 'ENOSPC',
                                        path='pop3d.lock'))
        s.ok('USER alice')
        self.assertEqual(s.cmd('PASS secret'), b'-ERR [SYS/TEMP] Mailbox '
                         b'cannot be opened, try again later\r\n')
        self.assertEqual(s.wait(), 75)
        self.assertIn(b'mailbox not opened: user=alice rip=local: lock file '
                      b'pop3d.lock: No space left on device',
                      session_lines(self.box, s.pid))
        self.assertNothingLost(self.contents, self.names)
        self.assertServes(self.contents, self.names)

    # QUIT.

    def test_fsync_fails_at_quit(self):
        self.warm()
        s = self.login(self.env('fsync'))
        self.dele(s, [2, 4])
        self.assertEqual(s.cmd('QUIT'), b'-ERR [SYS/TEMP] Deletions may not '
                         b'have been saved\r\n')
        self.assertEqual(s.read_eof(), b'')
        self.assertEqual(s.wait(), 75)
        self.assertInjected(s, rb'^fsync \S+/cur: Input/output error')
        lines = session_lines(self.box, s.pid)
        self.assertIn(b'update failed: user=alice rip=local: fsync cur/: '
                      b'Input/output error', lines)
        # The unlinks were done; only their durability is in doubt.
        self.assertIn(b'logout: user=alice rip=local reason=update failed '
                      b'retr=0 bytes=0 del=2 left=3', lines)
        # The deleted ones may be gone; no other.
        seen = self.assertNothingLost(self.contents, self.names, {1, 3})
        self.assertServes(self.contents, self.names, seen)

    def test_quit_without_changes_waits_for_no_disk(self):
        """cur/ is synced at QUIT only when something in it was removed
        or renamed: a session that retrieved only messages seen already,
        or nothing, gets +OK with every fsync failing."""
        self.warm()
        s = self.login()
        self.retr(s, 1)
        s.quit()
        seen = sorted(os.listdir(self.cur))
        for batch in ([], ['RETR 1']):
            s = self.login(self.env('fsync'))
            for c in batch:
                self.assertOk(s.cmd(c))
                s.multi()
            self.assertOk(s.cmd('QUIT'))
            self.assertEqual(s.wait(), 0)
            self.assertEqual(shim_lines(self.box, s.pid), [])
        self.assertEqual(sorted(os.listdir(self.cur)), seen)
        # A first retrieval renames (the S flag): synced, and it fails.
        s = self.login(self.env('fsync'))
        self.retr(s, 2)
        self.assertErr(s.cmd('QUIT'), b'-ERR [SYS/TEMP]')
        self.assertInjected(s, rb'^fsync \S+/cur: Input/output error')

    def test_unlink_fails_at_quit(self):
        self.warm()
        s = self.login(self.env('unlinkat', 'EIO', path='/cur/', times=2))
        self.dele(s, [1, 3, 5])
        self.assertEqual(s.cmd('QUIT'), b'-ERR [SYS/TEMP] 2 of 3 messages '
                         b'could not be deleted\r\n')
        self.assertEqual(s.read_eof(), b'')
        self.assertEqual(s.wait(), 75)
        self.assertTrue(any(re.match(rb'update failed: user=alice rip=local: '
                                     rb'unlink cur/\S+: Input/output error\Z',
                                     l)
                            for l in session_lines(self.box, s.pid)))
        # The first two could not be removed, the third was.
        self.assertNothingLost(self.contents, self.names, {4})
        self.assertEqual(sorted(os.listdir(self.cur)), sorted(self.names[:4]))
        self.assertServes(self.contents, self.names, range(4))

    def test_rename_fails_at_quit(self):
        """The S flag is best effort: QUIT succeeds without it."""
        self.warm()
        s = self.login(self.env('renameat', 'EIO', path='/cur/'))
        for n in (1, 2, 4):
            self.assertEqual(self.retr(s, n), wire(self.contents[n - 1]))
        self.dele(s, [2])
        s.quit()
        self.assertInjected(s, rb'^renameat \S+/cur/%s: Input/output error'
                            % re.escape(self.names[0].encode()))
        self.assertNothingLost(self.contents, self.names, {1})
        self.assertEqual(sorted(os.listdir(self.cur)), sorted(
            self.names[i] for i in (0, 2, 3, 4)), 'a flag was set')
        self.assertServes(self.contents, self.names, (0, 2, 3, 4))

    def test_exdev_moving_new_mail(self):
        """new/ cannot be moved to cur/: that mail waits, the rest is
        served."""
        late = self.box.deliver(small(9), name_of(9)[:-3], 'new')
        s = self.login(self.env('renameat', 'EXDEV', path='/new/'))
        self.assertEqual(self.stat(s)[0], 5)
        s.quit()
        self.assertEqual(self.box.listdir('new'), [late])
        self.assertServes(self.contents + [small(9)],
                          self.names + [late + ':2,'])

    def test_write_to_client_fails(self):
        """Writing the reply fails (EIO on fd 1) mid-RETR: the session
        ends, logged, nothing deleted."""
        self.warm()
        s = self.login(self.env('write', 'EIO', path='pipe:', fds='all',
                                after=6))
        self.dele(s, [1])
        s.send(b'RETR 3\r\n')
        s.read_eof()
        self.assertEqual(wait_gone(s), 1)
        self.assertInjected(s, rb'^write pipe:')
        self.assertEndLogged(s, left=5, reason=b'connection lost')
        self.assertNothingLost(self.contents, self.names)


# 4. 100,000 messages.

BIG_BOX = 100000
SMALL_BOX = 10000
DISTINCT = 20     # files behind the links (ext4: at most 65,000 links each)


class ScaleTest(FaultTest):
    """A 100,000-message Maildir (hard links to 20 files, so that it is
    made in a second): pop3d's peak memory stays bounded, and logins,
    listings and commits take time linear in the messages."""

    def make(self, maildir, count):
        cur = os.path.join(maildir, 'cur')
        for sub in ('cur', 'new', 'tmp'):
            os.makedirs(os.path.join(maildir, sub))
        for i in range(count):
            os.link(self.sources[i % DISTINCT],
                    os.path.join(cur, name_of(i, 1500000000)))
        if IS_ROOT:
            for path in (maildir, cur, os.path.join(maildir, 'new'),
                         os.path.join(maildir, 'tmp')):
                os.lchown(path, self.box.uid, self.box.gid)

    def setUp(self):
        super().setUp()
        src = os.path.join(self.box.base, 'sources')
        os.mkdir(src)
        self.sources = []
        for k in range(DISTINCT):
            path = os.path.join(src, 'm%d' % k)
            with open(path, 'wb') as f:
                f.write(small(k) * (k + 1))
            if IS_ROOT:
                os.lchown(path, self.box.uid, self.box.gid)
            self.sources.append(path)
        self.sizes = [len(convert(small(k) * (k + 1)))
                      for k in range(DISTINCT)]
        if IS_ROOT:
            os.chown(self.box.home, self.box.uid, self.box.gid)
        self.box._own = lambda: None
        self.make(self.box.maildir, BIG_BOX)
        self.box.add_user('bob', '{PLAIN}secret',
                          home=os.path.join(self.box.base, 'bob'))
        os.mkdir(os.path.join(self.box.base, 'bob'))
        if IS_ROOT:
            os.chown(os.path.join(self.box.base, 'bob'), self.box.uid,
                     self.box.gid)
        self.make(os.path.join(self.box.base, 'bob', 'Maildir'), SMALL_BOX)

    def size(self, i):
        return self.sizes[i % DISTINCT]

    def session(self, user, count, dele=False):
        """Login, STAT, LIST, UIDL (and DELE of every other message and
        QUIT when dele); returns (seconds, peak RSS in KiB)."""
        t0 = time.monotonic()
        s = self.box.start()
        s.ok('USER ' + user)
        s.ok('PASS secret')
        self.assertEqual(self.stat(s), (count, sum(
            self.size(i) for i in range(count))))
        self.assertOk(s.cmd('LIST'))
        lines = s.multi(timeout=60)
        self.assertEqual(len(lines), count)
        self.assertEqual(lines[-1], b'%d %d\r\n' % (count,
                                                     self.size(count - 1)))
        self.assertOk(s.cmd('UIDL'))
        lines = s.multi(timeout=60)
        self.assertEqual(lines[-1], b'%d %s\r\n' % (count, base_of(
            name_of(count - 1, 1500000000)).encode()))
        if dele:
            s.send(b''.join(b'DELE %d\r\n' % n for n in range(1, count + 1,
                                                                2)))
            for _ in range(1, count + 1, 2):
                self.assertOk(s.reply(30))
        hwm = int(proc_status(s.pid)['VmHWM'].split()[0])
        reply = s.cmd('QUIT', 60)
        self.assertEqual(reply, b'+OK Bye, %d messages deleted\r\n'
                         % ((count + 1) // 2 if dele else 0))
        self.assertEqual(s.read_eof(), b'')
        self.assertEqual(s.wait(60), 0)
        return time.monotonic() - t0, hwm

    def test_100000_messages(self):
        runs = {}
        # Interleaved, so that a busy moment of the machine hits both.
        for key in ('first', 'later', 'later', 'dele'):
            for user, count in (('alice', BIG_BOX), ('bob', SMALL_BOX)):
                runs.setdefault((key, count), []).append(
                    self.session(user, count, dele=key == 'dele'))
        times = ', '.join('%s %d: %s' % (key, count, ' '.join(
            '%.3fs' % t for t, _ in r)) for (key, count), r in runs.items())
        hwm = max(h for r in runs.values() for _, h in r)
        # Generous: the README measures about 12 MiB.  (Under valgrind,
        # valgrind's own memory counts.)
        if not UNDER_VALGRIND:
            self.assertLess(hwm, 64 * 1024, 'peak RSS (KiB); times: '
                            + times)
        # Ten times the messages: linear is about ten times the time,
        # quadratic a hundred.  The small box's time is floored so that
        # a fast machine's noise does not count.
        for key in ('first', 'later', 'dele'):
            big = min(t for t, _ in runs[key, BIG_BOX])
            small_t = min(t for t, _ in runs[key, SMALL_BOX])
            self.assertLess(big, 40 * max(small_t, 0.02), times)
        kept = sorted(os.listdir(self.cur))
        self.assertEqual(len(kept), BIG_BOX // 2)
        self.assertEqual(kept[0], name_of(1, 1500000000))

if __name__ == '__main__':
    unittest.main()
