"""End-to-end tests of mbox mailboxes (-m mbox:PATH): the binary reads
and rewrites an mbox spool file beside an MTA that appends to it.

What RETR, TOP, LIST and UIDL must give comes from a reference parser
written here (parse_mbox): a message starts at a "From " line at the
start of the file or after an empty line, the empty line before it is a
separator, ">From " quoting loses one ">", and Content-Length is not
trusted.  The file itself is checked byte for byte after every commit:
the kept messages, in order, then whatever an MTA appended meanwhile.

Plain unittest cases, loaded by e2e.py; alone:
    cd tests && python3 -m unittest mbox_e2e -v

As root the mailbox belongs to the test mail user (pop3dtest) and, like
/var/mail, to the group "mail"; otherwise everything runs as the current
user.  Every test works in its own temporary directory and ends every
process it started.
"""

import errno
import fcntl
import grp
import os
import poplib
import pwd
import random
import re
import select
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pop3test import (Box, Listener, Pop3Assertions, convert,  # noqa: E402
                      top, wire, SLOW)

IS_ROOT = os.geteuid() == 0

# A dotlock older than this is stale (seconds); one this old is not.
DOTLOCK_STALE = 300
# How long login or commit may wait for a fresh dotlock before
# -ERR [SYS/TEMP]: about 15 s, never 30.
LOCK_WAIT_MAX = 30.0
# How long a login may take when nothing holds a lock (longer under
# valgrind).
LOGIN_AT_ONCE = 5.0 * SLOW

HEX32_RE = re.compile(r'\A[0-9a-f]{32}\Z')
QUOTED_RE = re.compile(rb'^>(>*From )', re.MULTILINE)
STAT_RE = re.compile(rb'\+OK (\d+) (\d+)\r\n\Z')
XUIDL_RE = re.compile(rb'^X-UIDL: ([!-~]+)\r?$', re.MULTILINE)

FROM_LINE = b'From sender@example.org Mon Jan  1 00:00:00 2024\n'


def pop3d_binary():
    """The binary under test, as e2e.py resolved it."""
    return os.environ.get('POP3D_BINARY', os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        'pop3d'))


# The reference.

def lines_of(data):
    """The lines of data, each with its LF (the last maybe without)."""
    out = []
    pos = 0
    while pos < len(data):
        i = data.find(b'\n', pos)
        nxt = len(data) if i < 0 else i + 1
        out.append(data[pos:nxt])
        pos = nxt
    return out


class Msg:
    """One message of an mbox: offsets, the From_ line and the content."""

    def __init__(self, data, frm, start, end, chunk_end):
        self.frm, self.start, self.end = frm, start, end
        self.from_line = data[frm:start]
        self.content = data[start:end]
        # From its From_ line up to the next one: what a commit keeps.
        self.chunk = data[frm:chunk_end]

    def unquoted(self):
        return QUOTED_RE.sub(rb'\1', self.content)

    def size(self):
        """What LIST says: the octets RETR sends without stuffing."""
        return len(convert(self.unquoted()))

    def retr(self):
        """The multi-line body of RETR, terminator included."""
        return wire(self.unquoted())

    def top(self, n):
        return top(self.unquoted(), n)

    def xuidl(self):
        """The X-UIDL in the header, if any."""
        head = self.content.split(b'\n\n', 1)[0].split(b'\n\r\n', 1)[0]
        m = XUIDL_RE.search(head)
        return m.group(1).decode() if m else None


def parse_mbox(data):
    """The messages of data; ValueError when it is not an mbox."""
    if not data:
        return []
    if not data.startswith(b'From '):
        raise ValueError('not an mbox: %r' % data[:40])
    spans = []
    pos = prev = 0
    prev_empty = True
    empty = False
    for line in lines_of(data):
        if prev_empty and line.startswith(b'From '):
            if spans:
                spans[-1][2] = prev     # the separator before it
                spans[-1][3] = pos
            spans.append([pos, pos + len(line), len(data), len(data)])
        empty = line in (b'\n', b'\r\n')
        prev_empty = empty
        prev = pos
        pos += len(line)
    if empty:
        spans[-1][2] = prev             # an empty last line
    return [Msg(data, *s) for s in spans]


# Building mailboxes.

WORDS = (b'alpha bravo charlie delta echo foxtrot golf hotel india juliet '
         b'kilo lima mike november oscar papa quebec romeo sierra tango '
         b'uniform victor whiskey xray yankee zulu From from >From .').split()


def message(rng, n, size, uid=True, crlf=False):
    """A message of about size octets with the awkward lines an mbox can
    hold: quoted and unquoted "From " lines inside paragraphs, lines
    starting with ".", and X-UIDL k<n> when uid is set."""
    head = [b'From: sender%d@example.org' % n, b'To: alice@example.org',
            b'Subject: message %d' % n,
            b'Message-ID: <%d.%d@example.org>' % (n, rng.randrange(1 << 30))]
    if uid:
        head.append(b'X-UIDL: k%d' % n)
    lines = head + [b'']
    total = sum(len(x) + 1 for x in lines)
    para = 0
    while total < size:
        kind = rng.randrange(12)
        if para and kind == 0:
            line = b'From the archive, line %d' % total   # not after a blank
        elif kind == 1:
            line = b'>' * rng.randrange(1, 3) + b'From quoted %d' % total
        elif kind == 2:
            line = rng.choice([b'.', b'..', b'.dot', b'...'])
        elif kind == 3 and para > 2:
            line = b''
        else:
            line = b' '.join(rng.choice(WORDS)
                             for _ in range(rng.randrange(1, 14)))
            if line.startswith(b'From '):
                line = b'x' + line
        if not para and line.startswith(b'From '):
            line = b'>' + line
        para = para + 1 if line else 0
        lines.append(line)
        total += len(line) + 1
    if lines[-1] == b'':
        lines.pop()
    eol = b'\r\n' if crlf else b'\n'
    return eol.join(lines) + eol


def mbox_of(contents, from_line=FROM_LINE):
    """An mbox holding contents (each ending in a newline), separated by
    blank lines as MTAs write them."""
    return b''.join(from_line + c + b'\n' for c in contents)


def file_state(path):
    st = os.stat(path)
    return (st.st_ino, st.st_uid, st.st_gid, st.st_mode, st.st_size)


def mail_group():
    """The gid of group "mail", or None."""
    try:
        return grp.getgrnam('mail').gr_gid
    except KeyError:
        return None


class MboxBox(Box):
    """A Box whose mailbox is an mbox: at home/mbox by default, or with
    spool=True in base/spool/alice, a directory the user cannot write
    (root:mail 2775 like /var/mail as root, else 0555)."""

    def __init__(self, pop3d, spool=False):
        super().__init__(pop3d)
        self.spool = None
        if spool:
            self.spool = os.path.join(self.base, 'spool')
            os.mkdir(self.spool)
            self.path = os.path.join(self.spool, 'alice')
            self.spec = 'mbox:' + os.path.join(self.spool, '%u')
        else:
            self.path = os.path.join(self.home, 'mbox')
            self.spec = 'mbox:%h/mbox'
        self.dir = os.path.dirname(self.path)
        self.lock = self.path + '.lock'
        self._own()

    def argv(self, *extra, fail_delay=0):
        return [self.pop3d, '--log', 'stderr', '--fail-delay',
                str(fail_delay), '-u', self.passwd, '-m',
                self.spec] + list(extra)

    def _own(self):
        """Only the home belongs to the user; files keep the owner, group
        and mode a test gives them."""
        if IS_ROOT:
            os.lchown(self.home, self.uid, self.gid)

    def close_spool(self):
        """Take away the user's write permission on the spool."""
        if self.spool is None:
            return
        if IS_ROOT:
            gid = mail_group()
            name = _user_name(self.uid)
            if gid is None or name in grp.getgrgid(gid).gr_mem:
                gid = 0
            os.chown(self.spool, 0, gid)
            os.chmod(self.spool, 0o2775 if gid else 0o755)
        else:
            os.chmod(self.spool, 0o555)

    def open_spool(self):
        if self.spool is not None and os.path.isdir(self.spool):
            os.chmod(self.spool, 0o755)

    def write(self, data, mode=0o600, gid=None):
        """Make the mbox hold exactly data, owned by the mail user."""
        self.open_spool()
        with open(self.path, 'wb') as f:
            f.write(data)
        if IS_ROOT:
            os.chown(self.path, self.uid, self.gid if gid is None else gid)
        os.chmod(self.path, mode)
        self.close_spool()

    def read(self):
        with open(self.path, 'rb') as f:
            return f.read()

    def cleanup(self):
        self.open_spool()
        super().cleanup()


def _user_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def mta_append(path, data, dotlock=True, timeout=10.0):
    """Deliver data as an MTA does: dotlock (when asked), fcntl lock,
    append, unlock."""
    lock = path + '.lock'
    deadline = time.monotonic() + timeout
    have_dotlock = False
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        while dotlock:
            try:
                os.close(os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                                 0o644))
                have_dotlock = True
                break
            except FileExistsError:
                if time.monotonic() > deadline:
                    raise AssertionError('dotlock %s stays taken' % lock)
                time.sleep(0.01)
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() > deadline:
                    raise AssertionError('fcntl lock on %s stays taken'
                                         % path)
                time.sleep(0.01)
        os.write(fd, data)
        os.fsync(fd)
        fcntl.lockf(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
        if have_dotlock:
            os.unlink(lock)


class MboxTest(Pop3Assertions, unittest.TestCase):
    """A test with its own mbox."""

    spool = False

    def setUp(self):
        self.box = MboxBox(pop3d_binary(), spool=self.spool)
        self.addCleanup(self.box.cleanup)

    def use_spool(self):
        """Switch this test to a mailbox in a directory the user cannot
        write."""
        self.box.cleanup()
        self.box = MboxBox(pop3d_binary(), spool=True)
        self.addCleanup(self.box.cleanup)

    def open(self, timeout=LOGIN_AT_ONCE):
        s = self.box.start()
        s.ok('USER alice')
        reply = s.cmd('PASS secret', timeout)
        self.assertOk(reply)
        return s

    def stat(self, s):
        """The message count and total size STAT gives."""
        reply = s.cmd('STAT')
        m = STAT_RE.match(reply)
        self.assertTrue(m, reply)
        return int(m.group(1)), int(m.group(2))

    def sizes(self, s):
        self.assertOk(s.cmd('LIST'))
        out = []
        for i, line in enumerate(s.multi(), 1):
            num, _, size = line[:-2].partition(b' ')
            self.assertEqual(int(num), i, line)
            out.append(int(size))
        return out

    def dele(self, s, numbers):
        """DELE each of numbers, pipelined."""
        s.send(b''.join(b'DELE %d\r\n' % n for n in numbers))
        for n in numbers:
            self.assertOk(s.reply())

    def assertServes(self, s, msgs):
        """The session shows exactly msgs: STAT, LIST, RETR, UIDL."""
        sizes = [m.size() for m in msgs]
        self.assertEqual(s.cmd('STAT'),
                         b'+OK %d %d\r\n' % (len(msgs), sum(sizes)))
        self.assertEqual(self.sizes(s), sizes)
        for i, m in enumerate(msgs, 1):
            self.assertEqual(self.retr(s, i), m.retr(), 'RETR %d' % i)
        uids = self.uidls(s)
        for i, m in enumerate(msgs):
            want = m.xuidl()
            if want is not None:
                self.assertEqual(uids[i], want, 'UIDL %d' % (i + 1))
            else:
                self.assertRegex(uids[i], HEX32_RE, 'UIDL %d' % (i + 1))
        return uids

    def listing(self, path):
        return sorted(os.listdir(path))


# Sample messages (content only; the From_ line and separator are added).
SAMPLES = [
    b'From: a@example.org\nSubject: plain\nX-UIDL: plain-1\n\n'
    b'line one\nline two\n',
    b'From: b@example.org\nSubject: quoting\n\n'
    b'>From the start of a paragraph\n>>From twice\nSo:\n'
    b'From inside a paragraph\n>>>From thrice\n>From: not quoting\n',
    b'From: c@example.org\r\nSubject: crlf\r\nX-UIDL: crlf-2\r\n\r\n'
    b'line one\r\n.\r\n.dot\r\n',
    b'From: d@example.org\nSubject: lying\nContent-Length: 3\n\n'
    b'much longer than three octets\n\n\nwith blank lines\n',
    b'From: e@example.org\nSubject: headers only\nContent-Length: 99999\n',
    b'From: f@example.org\nSubject: dots\n\n.\n..\n...\n.x\nend\n',
]
LAST_NO_NEWLINE = b'From: g@example.org\nSubject: last\n\nno final newline'


class MboxSessionTest(MboxTest):

    def sample_mbox(self):
        data = mbox_of(SAMPLES) + FROM_LINE + LAST_NO_NEWLINE
        msgs = parse_mbox(data)
        self.assertEqual([m.content for m in msgs],
                         SAMPLES + [LAST_NO_NEWLINE])
        return data, msgs

    def test_stat_list_retr_top_uidl(self):
        data, msgs = self.sample_mbox()
        self.box.write(data)
        s = self.open()
        uids = self.assertServes(s, msgs)
        self.assertEqual(uids[0], 'plain-1')
        self.assertEqual(uids[2], 'crlf-2')
        self.assertEqual(len(set(uids)), len(uids), uids)
        for i, m in enumerate(msgs, 1):
            self.assertEqual(s.cmd('LIST %d' % i),
                             b'+OK %d %d\r\n' % (i, m.size()))
            self.assertEqual(s.cmd('UIDL %d' % i),
                             b'+OK %d %s\r\n' % (i, uids[i - 1].encode()))
            for n in (0, 1, 2, 1000):
                self.assertOk(s.cmd('TOP %d %d' % (i, n)))
                self.assertEqual(b''.join(s.multi()) + b'.\r\n', m.top(n),
                                 'TOP %d %d' % (i, n))
        self.assertErr(s.cmd('RETR %d' % (len(msgs) + 1)))
        s.quit()
        self.assertEqual(self.box.read(), data)

    def test_quoting_undone_once(self):
        data, msgs = self.sample_mbox()
        self.box.write(data)
        s = self.open()
        self.assertEqual(self.retr(s, 2),
                         b'From: b@example.org\r\nSubject: quoting\r\n\r\n'
                         b'From the start of a paragraph\r\n'
                         b'>From twice\r\nSo:\r\nFrom inside a paragraph\r\n'
                         b'>>From thrice\r\n>From: not quoting\r\n.\r\n')
        self.assertEqual(self.retr(s, 7), b'From: g@example.org\r\n'
                         b'Subject: last\r\n\r\nno final newline\r\n.\r\n')
        s.quit()

    def test_dele_quit_removes_exactly_those(self):
        data, msgs = self.sample_mbox()
        self.box.write(data)
        s = self.open()
        uids = self.uidls(s)
        s.ok('DELE 2')
        s.ok('DELE 4')
        self.assertErr(s.cmd('RETR 2'))
        self.assertErr(s.cmd('DELE 2'))
        kept = [m for i, m in enumerate(msgs) if i not in (1, 3)]
        self.assertEqual(s.cmd('STAT'), b'+OK %d %d\r\n'
                         % (len(kept), sum(m.size() for m in kept)))
        s.quit()
        self.assertEqual(self.box.read(), b''.join(m.chunk for m in kept))
        s = self.open()
        self.assertEqual(self.assertServes(s, kept),
                         [u for i, u in enumerate(uids) if i not in (1, 3)])
        s.quit()

    def test_dele_first_and_last(self):
        data, msgs = self.sample_mbox()
        self.box.write(data)
        s = self.open()
        s.ok('DELE 1')
        s.ok('DELE %d' % len(msgs))
        s.quit()
        kept = msgs[1:-1]
        self.assertEqual(self.box.read(), b''.join(m.chunk for m in kept))
        s = self.open()
        self.assertServes(s, parse_mbox(self.box.read()))
        self.assertEqual(self.stat(s)[0], len(kept))
        s.quit()

    def test_dele_all_leaves_an_empty_file(self):
        data, msgs = self.sample_mbox()
        self.box.write(data, mode=0o640)
        before = file_state(self.box.path)
        s = self.open()
        self.dele(s, range(1, len(msgs) + 1))
        s.quit()
        self.assertEqual(self.box.read(), b'')
        after = file_state(self.box.path)
        self.assertEqual(after[1:4], before[1:4], 'owner, group or mode')
        s = self.open()
        self.assertEqual(s.cmd('STAT'), b'+OK 0 0\r\n')
        s.quit()

    def test_eof_rset_and_quit_keep_everything(self):
        data, msgs = self.sample_mbox()
        self.box.write(data)
        s = self.open()
        s.ok('DELE 1')
        s.ok('DELE 2')
        s.close_input()
        self.assertEqual(s.read_eof(), b'')
        self.assertEqual(s.wait(), 1)
        self.assertEqual(self.box.read(), data)
        s = self.open()
        s.ok('DELE 1')
        s.ok('RSET')
        self.assertEqual(self.stat(s)[0], len(msgs))
        s.quit()
        self.assertEqual(self.box.read(), data)
        s = self.open()
        for i in range(1, len(msgs) + 1):
            self.retr(s, i)
        s.quit()
        self.assertEqual(self.box.read(), data)
        self.assertEqual(self.listing(self.box.dir), ['mbox'])

    def test_uidl_stable_across_sessions_muas_and_deletions(self):
        contents = [b'Subject: one\n\nfirst\n', b'Subject: two\n\nsecond\n',
                    b'Subject: three\nX-UIDL: third\n\nthird\n',
                    b'Subject: four\n\nfourth\n']
        self.box.write(mbox_of(contents))
        s = self.open()
        uids = self.uidls(s)
        s.quit()
        self.assertEqual(uids[2], 'third')
        for u in uids[:2] + uids[3:]:
            self.assertRegex(u, HEX32_RE)
        self.assertEqual(len(set(uids)), 4, uids)
        s = self.open()
        self.assertEqual(self.uidls(s), uids)
        s.quit()
        # A MUA marks messages read and flags one.
        read = [contents[0].replace(b'\n\n', b'\nStatus: RO\n\n', 1),
                contents[1].replace(b'\n\n', b'\nStatus: O\nX-Status: F\n'
                                    b'X-Keywords: $Label1\nX-UID: 12\n'
                                    b'Content-Length: 7\nLines: 1\n\n', 1),
                contents[2].replace(b'Subject', b'X-IMAPbase: 1 2\n'
                                    b'X-IMAP: 1 2\nSubject', 1),
                contents[3]]
        self.box.write(mbox_of(read))
        s = self.open()
        self.assertEqual(self.uidls(s), uids)
        s.ok('DELE 1')
        s.quit()
        s = self.open()
        self.assertEqual(self.uidls(s), uids[1:])
        s.quit()
        # A body that differs is another message.
        self.box.write(mbox_of([contents[0], contents[1] + b'more\n']))
        s = self.open()
        self.assertEqual(self.uidls(s)[0], uids[0])
        self.assertNotEqual(self.uidls(s)[1], uids[1])
        s.quit()

    def test_large_messages(self):
        # Messages larger than any read buffer, with a "\n\nFrom "
        # at each 64 KiB step from the start of the file.
        rng = random.Random(3)
        contents = []
        size = 0
        for i in range(3):
            c = message(rng, i, 300 * 1024 if i != 1 else 1000)
            contents.append(c)
            size += len(FROM_LINE) + len(c) + 1
        data = mbox_of(contents)
        msgs = parse_mbox(data)
        self.assertEqual(len(msgs), 3)
        self.box.write(data)
        s = self.open()
        self.assertServes(s, msgs)
        for n in (0, 10, 5000):
            self.assertOk(s.cmd('TOP 1 %d' % n))
            self.assertEqual(b''.join(s.multi()) + b'.\r\n', msgs[0].top(n))
        s.ok('DELE 2')
        s.quit()
        self.assertEqual(self.box.read(), msgs[0].chunk + msgs[2].chunk)

    def test_read_only_mbox_loses_nothing(self):
        # A mailbox the user may read but not write: served read-only
        # with a commit that fails and says so, or refused as a
        # permanent problem; the file is untouched either way.
        data = mbox_of(SAMPLES)
        self.box.write(data, mode=0o400)
        s = self.box.start()
        s.ok('USER alice')
        reply = s.cmd('PASS secret')
        if reply.startswith(b'-ERR'):
            self.assertErr(reply, b'-ERR [SYS/PERM]')
        else:
            self.assertServes(s, parse_mbox(data))
            s.ok('DELE 1')
            reply = s.cmd('QUIT')
            if reply.startswith(b'+OK'):
                self.assertEqual(self.box.read(), mbox_of(SAMPLES[1:]))
                return
            self.assertErr(reply, b'-ERR [SYS/')
        self.assertEqual(self.box.read(), data)
        self.assertEqual(oct(os.stat(self.box.path).st_mode & 0o7777),
                         oct(0o400))

    def test_empty_file_is_an_empty_mailbox(self):
        self.box.write(b'')
        s = self.open()
        self.assertEqual(s.cmd('STAT'), b'+OK 0 0\r\n')
        self.assertOk(s.cmd('LIST'))
        self.assertEqual(s.multi(), [])
        self.assertErr(s.cmd('RETR 1'))
        s.quit()
        self.assertEqual(self.box.read(), b'')

    def _missing(self):
        before = self.listing(self.box.dir)
        s = self.open()
        self.assertEqual(s.cmd('STAT'), b'+OK 0 0\r\n')
        self.assertOk(s.cmd('UIDL'))
        self.assertEqual(s.multi(), [])
        s.quit()
        self.assertFalse(os.path.lexists(self.box.path))
        self.assertEqual(self.listing(self.box.dir), before)

    def test_missing_file_is_an_empty_mailbox(self):
        self._missing()

    def test_missing_file_in_spool_is_an_empty_mailbox(self):
        self.use_spool()
        self.box.close_spool()
        self._missing()

    def test_not_an_mbox_is_refused_and_untouched(self):
        for data in (b'Hello, this is no mbox.\nFrom a\n\nFrom b\n',
                     b'\nFrom a@example.org Mon Jan  1 00:00:00 2024\nx\n',
                     b'\x00\x01\x02 binary\n'):
            with self.subTest(data=data[:20]):
                self.box.write(data)
                os.utime(self.box.path, (1e9, 1e9))
                before = file_state(self.box.path)
                listing = self.listing(self.box.dir)
                s = self.box.start()
                s.ok('USER alice')
                self.assertErr(s.cmd('PASS secret'), b'-ERR [SYS/PERM]')
                s.close_input()
                s.read_eof()
                s.wait()
                self.assertEqual(self.box.read(), data)
                self.assertEqual(file_state(self.box.path), before)
                self.assertEqual(os.stat(self.box.path).st_mtime, 1e9)
                self.assertEqual(self.listing(self.box.dir), listing)
                self.assertRegex(self.box.log(), rb'(?i)not an? mbox')

    def test_second_session_is_in_use(self):
        data, msgs = self.sample_mbox()
        self.box.write(data)
        s1 = self.open()
        s2 = self.box.start()
        s2.ok('USER alice')
        self.assertErr(s2.cmd('PASS secret'), b'-ERR [IN-USE]')
        # The session holds flock(LOCK_EX) on the file itself.
        with open(self.box.path, 'rb') as f:
            with self.assertRaises(BlockingIOError):
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        s1.ok('DELE 1')
        s1.quit()
        with open(self.box.path, 'rb') as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        s3 = self.open()
        self.assertEqual(self.stat(s3)[0], len(msgs) - 1)
        s3.quit()

    def test_flock_held_elsewhere_is_in_use(self):
        data, msgs = self.sample_mbox()
        self.box.write(data)
        with open(self.box.path, 'rb') as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            s = self.box.start()
            s.ok('USER alice')
            self.assertErr(s.cmd('PASS secret'), b'-ERR [IN-USE]')
        self.assertEqual(self.box.read(), data)


class MboxCommitTest(MboxTest):
    """Owner, group and mode survive a commit, whether or not the user
    may write the directory."""

    def _commit_keeps_file_identity(self, mode, gid=None, in_place=False):
        rng = random.Random(7)
        contents = [message(rng, i, 600) for i in range(8)]
        data = mbox_of(contents)
        msgs = parse_mbox(data)
        self.box.write(data, mode=mode, gid=gid)
        before = file_state(self.box.path)
        home = self.listing(self.box.home)
        spool = self.listing(self.box.dir)
        s = self.open()
        self.dele(s, [1, 4, 8])
        s.quit()
        kept = [m for i, m in enumerate(msgs) if i not in (0, 3, 7)]
        self.assertEqual(self.box.read(), b''.join(m.chunk for m in kept))
        after = file_state(self.box.path)
        self.assertEqual(after[1], before[1], 'owner changed')
        self.assertEqual(after[2], before[2], 'group changed')
        self.assertEqual(oct(after[3]), oct(before[3]), 'mode changed')
        if in_place:
            self.assertEqual(after[0], before[0], 'not the same inode')
        # No temporary file, lock or journal left behind.
        self.assertEqual(self.listing(self.box.dir), spool)
        self.assertEqual(self.listing(self.box.home), home)
        s = self.open()
        self.assertServes(s, kept)
        s.quit()

    def test_writable_dir_own_group_0600(self):
        self._commit_keeps_file_identity(0o600)

    def test_writable_dir_group_mail_0660(self):
        gid = mail_group() if IS_ROOT else None
        if IS_ROOT and gid is None:
            self.skipTest('no group "mail"')
        self._commit_keeps_file_identity(0o660, gid)

    def test_writable_dir_mode_0640(self):
        self._commit_keeps_file_identity(0o640)

    def test_spool_dir_not_writable_group_mail_0660(self):
        self.use_spool()
        gid = mail_group() if IS_ROOT else None
        if IS_ROOT and gid is None:
            self.skipTest('no group "mail"')
        self._commit_keeps_file_identity(0o660, gid, in_place=True)

    def test_spool_dir_not_writable_0600(self):
        self.use_spool()
        self._commit_keeps_file_identity(0o600, in_place=True)


class MboxDeliveryTest(MboxTest):
    """An MTA appends while a session runs."""

    def _append_during_session(self, dotlock):
        rng = random.Random(11)
        contents = [message(rng, i, 900) for i in range(5)]
        data = mbox_of(contents)
        msgs = parse_mbox(data)
        self.box.write(data)
        s = self.open()
        uids = self.uidls(s)
        new = FROM_LINE + message(rng, 99, 700, uid=False) + b'\n'
        mta_append(self.box.path, new, dotlock=dotlock)
        self.assertEqual(self.box.read(), data + new)
        # Not shown in this session.
        self.assertEqual(s.cmd('STAT'), b'+OK %d %d\r\n'
                         % (len(msgs), sum(m.size() for m in msgs)))
        self.assertErr(s.cmd('RETR %d' % (len(msgs) + 1)))
        s.ok('DELE 1')
        s.quit()
        self.assertEqual(self.box.read(),
                         b''.join(m.chunk for m in msgs[1:]) + new)
        s = self.open()
        got = self.assertServes(s, msgs[1:] + parse_mbox(new))
        self.assertEqual(got[:-1], uids[1:])
        s.quit()

    def test_append_during_session(self):
        self._append_during_session(dotlock=True)

    def test_append_during_session_spool(self):
        self.use_spool()
        self._append_during_session(dotlock=False)

    def test_appends_while_nothing_deleted(self):
        data = mbox_of(SAMPLES[:3])
        self.box.write(data)
        s = self.open()
        new = FROM_LINE + SAMPLES[3] + b'\n'
        mta_append(self.box.path, new)
        s.quit()
        self.assertEqual(self.box.read(), data + new)

    def _login_while_mta_writes(self, dotlock):
        """An MTA holds its locks with half a message written when the
        login comes: pop3d waits for it (or gives up with SYS/TEMP), but
        never shows half a message."""
        data = mbox_of(SAMPLES[:2])
        self.box.write(data)
        new = FROM_LINE + SAMPLES[0].replace(b'plain-1', b'late') + b'\n'
        half = len(new) // 2
        fd = os.open(self.box.path, os.O_WRONLY | os.O_APPEND)
        try:
            if dotlock:
                os.close(os.open(self.box.lock, os.O_WRONLY | os.O_CREAT |
                                 os.O_EXCL, 0o644))
            fcntl.lockf(fd, fcntl.LOCK_EX)
            os.write(fd, new[:half])
            s = self.box.start()
            s.ok('USER alice')
            s.send(b'PASS secret\r\n')
            # No reply while the MTA holds its locks; without a dotlock
            # pop3d may give up at once.
            early = select.select([s.rfd], [], [], 1.0)[0]
            if early:
                reply = s.reply()
                self.assertFalse(dotlock, 'no wait for a fresh dotlock: '
                                 '%r' % reply)
                self.assertErr(reply, b'-ERR [SYS/TEMP]')
            os.write(fd, new[half:])
            fcntl.lockf(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
            if dotlock and os.path.exists(self.box.lock):
                os.unlink(self.box.lock)
        if early:
            return
        t0 = time.monotonic()
        reply = s.reply(LOCK_WAIT_MAX)
        self.assertLess(time.monotonic() - t0, LOCK_WAIT_MAX)
        if reply.startswith(b'-ERR'):
            self.assertErr(reply, b'-ERR [SYS/TEMP]')
            return
        self.assertServes(s, parse_mbox(data + new))
        s.quit()
        self.assertEqual(self.box.read(), data + new)

    def _quit_while_mta_writes(self, dotlock):
        """QUIT comes while an MTA holds its locks mid-delivery: the
        commit waits for it, and keeps the whole new message."""
        rng = random.Random(5)
        data = mbox_of([message(rng, i, 800) for i in range(4)])
        msgs = parse_mbox(data)
        self.box.write(data)
        s = self.open()
        s.ok('DELE 2')
        new = FROM_LINE + message(rng, 50, 2000) + b'\n'
        half = len(new) // 2
        fd = os.open(self.box.path, os.O_WRONLY | os.O_APPEND)
        try:
            if dotlock:
                os.close(os.open(self.box.lock, os.O_WRONLY | os.O_CREAT |
                                 os.O_EXCL, 0o644))
            fcntl.lockf(fd, fcntl.LOCK_EX)
            os.write(fd, new[:half])
            s.send(b'QUIT\r\n')
            early = select.select([s.rfd], [], [], 1.0)[0]
            os.write(fd, new[half:])
            fcntl.lockf(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
            if dotlock and os.path.exists(self.box.lock):
                os.unlink(self.box.lock)
        reply = s.reply(LOCK_WAIT_MAX)
        if reply.startswith(b'-ERR'):
            self.assertFalse(dotlock, 'no wait for a fresh dotlock')
            self.assertErr(reply, b'-ERR [SYS/TEMP]')
            self.assertEqual(self.box.read(), data + new)
            return
        self.assertFalse(early, 'QUIT answered while the MTA held its '
                         'locks: %r' % reply)
        kept = [m for i, m in enumerate(msgs) if i != 1]
        self.assertEqual(self.box.read(),
                         b''.join(m.chunk for m in kept) + new)
        s = self.open()
        self.assertServes(s, kept + parse_mbox(new))
        s.quit()

    def test_quit_waits_for_mta_locks(self):
        self._quit_while_mta_writes(dotlock=True)

    def test_quit_waits_for_mta_fcntl_lock_spool(self):
        self.use_spool()
        self._quit_while_mta_writes(dotlock=False)

    def test_login_waits_for_mta_locks(self):
        self._login_while_mta_writes(dotlock=True)

    def test_login_waits_for_mta_fcntl_lock_spool(self):
        self.use_spool()
        self._login_while_mta_writes(dotlock=False)


class MboxDotlockTest(MboxTest):

    def test_stale_dotlock_is_broken(self):
        data = mbox_of(SAMPLES[:3])
        self.box.write(data)
        with open(self.box.lock, 'wb') as f:
            f.write(b'12345\n')
        old = time.time() - (DOTLOCK_STALE + 100)
        os.utime(self.box.lock, (old, old))
        s = self.open()
        self.assertFalse(os.path.exists(self.box.lock) and
                         os.stat(self.box.lock).st_mtime < old + 1,
                         'the stale dotlock is still there')
        self.assertServes(s, parse_mbox(data))
        s.ok('DELE 1')
        s.quit()
        self.assertEqual(self.box.read(), mbox_of(SAMPLES[1:3]))
        self.assertFalse(os.path.exists(self.box.lock))

    def test_fresh_dotlock_login_and_commit_get_sys_temp(self):
        # Four mailboxes side by side, so that all the waits run at once:
        # a fresh dotlock taken before PASS or before QUIT, holding the
        # pid of a running process (as MTAs write it) or nothing.
        cases = []
        data = mbox_of(SAMPLES)
        for when in ('login', 'commit'):
            for content in (b'%d\n' % os.getpid(), b''):
                box = self.box if not cases else MboxBox(pop3d_binary())
                if cases:
                    self.addCleanup(box.cleanup)
                box.write(data)
                cases.append((when, content, box))
        sessions = []
        for when, content, box in cases:
            s = box.start()
            if when == 'commit':
                s.login()
                s.ok('DELE 1')
                s.ok('DELE 2')
            else:
                s.ok('USER alice')
            with open(box.lock, 'wb') as f:
                f.write(content)
            sessions.append(s)
        t0 = time.monotonic()
        for (when, _, _), s in zip(cases, sessions):
            s.send(b'PASS secret\r\n' if when == 'login' else b'QUIT\r\n')
        replies = []
        for s in sessions:
            left = t0 + LOCK_WAIT_MAX - time.monotonic()
            replies.append((s.reply(max(left, 0.1)), time.monotonic() - t0))
        for s in sessions:
            s.kill()
        for (when, content, box), (reply, took) in zip(cases, replies):
            with self.subTest(when=when, lock=content):
                self.assertErr(reply, b'-ERR [SYS/TEMP]')
                self.assertLess(took, LOCK_WAIT_MAX)
                self.assertEqual(box.read(), data)
                # Someone else's fresh dotlock is left alone.
                with open(box.lock, 'rb') as f:
                    self.assertEqual(f.read(), content)
                # Once it is gone, all works; nothing was deleted.
                os.unlink(box.lock)
                s = box.start()
                s.login()
                self.assertEqual(self.stat(s)[0], len(SAMPLES))
                s.ok('DELE 1')
                s.quit()
                self.assertEqual(box.read(), mbox_of(SAMPLES[1:]))


# The crash tests: a big mbox, half of it deleted, pop3d killed at
# several moments of the commit.
CRASH_MESSAGES = 2000
CRASH_DELAYS = (0.0, 0.001, 0.003, 0.005, 0.01, 0.02, 0.035, 0.05, 0.1)
CRASH_RANDOM = 4
_crash_data = None


def crash_mbox():
    """2,000 messages of a few KB each (some CRLF, some without X-UIDL),
    built once."""
    global _crash_data
    if _crash_data is None:
        rng = random.Random(2024)
        contents = [message(rng, i, rng.randrange(1000, 5000),
                            uid=i % 10 != 3, crlf=i % 17 == 5)
                    for i in range(CRASH_MESSAGES)]
        _crash_data = mbox_of(contents)
    return _crash_data


class MboxCrashTest(MboxTest):
    """SIGKILL during a commit never loses a message."""

    def _check_survivors(self, msgs, deleted, what):
        """The mbox, read after a login (and any recovery), holds every
        kept message byte for byte, once, in order; the others may be
        back.  Returns the messages of the file."""
        now = parse_mbox(self.box.read())
        by_chunk = {m.from_line + m.content: i for i, m in enumerate(msgs)}
        seen = []
        for m in now:
            i = by_chunk.get(m.from_line + m.content)
            self.assertIsNotNone(i, '%s: a message that was never there '
                                 '(%d octets at %d: %r...)'
                                 % (what, len(m.content), m.frm,
                                    m.content[:80]))
            seen.append(i)
        kept_seen = [i for i in seen if i not in deleted]
        kept = [i for i in range(len(msgs)) if i not in deleted]
        missing = sorted(set(kept) - set(kept_seen))
        self.assertEqual(missing, [], '%s: %d kept messages lost'
                         % (what, len(missing)))
        self.assertEqual(kept_seen, kept, '%s: kept messages duplicated '
                         'or out of order' % what)
        return now, seen

    def _crash_round(self, data, msgs, deleted, delay, what):
        self.box.write(data, mode=0o660 if IS_ROOT else 0o600,
                       gid=mail_group() if IS_ROOT else None)
        before = file_state(self.box.path)
        s = self.open()
        self.dele(s, [i + 1 for i in sorted(deleted)])
        s.send(b'QUIT\r\n')
        if delay:
            time.sleep(delay)
        os.kill(s.pid, signal.SIGKILL)
        s.proc.wait()
        acked = False
        r, _, _ = select.select([s.rfd], [], [], 0)
        if r:
            acked = b'+OK' in os.read(s.rfd, 4096)

        # A fresh session gets in at once and sees every kept message.
        t0 = time.monotonic()
        s = self.open(timeout=LOGIN_AT_ONCE)
        self.assertLess(time.monotonic() - t0, LOGIN_AT_ONCE, what)
        now, seen = self._check_survivors(msgs, deleted, what)
        self.assertEqual(self.stat(s)[0], len(now), what)
        uids = self.uidls(s)
        for n in sorted({0, len(now) - 1, len(now) // 2} |
                        set(random.Random(delay).sample(range(len(now)),
                                                        8))):
            self.assertEqual(self.retr(s, n + 1), now[n].retr(),
                             '%s: RETR %d' % (what, n + 1))
            want = now[n].xuidl()
            if want is not None:
                self.assertEqual(uids[n], want, what)
        # A normal QUIT removes the leftovers.
        self.dele(s, [n + 1 for n, i in enumerate(seen) if i in deleted])
        s.quit()
        kept = [m for i, m in enumerate(msgs) if i not in deleted]
        got = self.box.read()
        self.assertTrue(got == b''.join(m.chunk for m in kept),
                        '%s: after the second commit the mbox is not the '
                        'kept messages' % what)
        after = file_state(self.box.path)
        self.assertEqual(after[1:4], before[1:4],
                         '%s: owner, group or mode changed' % what)
        # Nothing a crash left (journal, lock, temporary file) stays.
        self.assertEqual(self.listing(self.box.dir),
                         [os.path.basename(self.box.path)], what)
        self.assertEqual([n for n in self.listing(self.box.home)
                          if n != 'mbox'], [], what)
        return acked

    def _crash(self):
        data = crash_mbox()
        msgs = parse_mbox(data)
        self.assertEqual(len(msgs), CRASH_MESSAGES)
        rng = random.Random(31)
        deleted = set(rng.sample(range(CRASH_MESSAGES), CRASH_MESSAGES // 2))
        # How long an uninterrupted commit takes, for the random kills.
        self.box.write(data)
        s = self.open()
        self.dele(s, [i + 1 for i in sorted(deleted)])
        t0 = time.monotonic()
        s.quit()
        span = max(time.monotonic() - t0, 0.02)
        self.assertEqual(self.box.read(),
                         b''.join(m.chunk for i, m in enumerate(msgs)
                                  if i not in deleted))
        delays = list(CRASH_DELAYS) + [rng.uniform(0, span * 1.2)
                                       for _ in range(CRASH_RANDOM)]
        acked = 0
        for delay in delays:
            what = 'kill after %.1f ms (commit takes %.1f ms)' % (
                delay * 1000, span * 1000)
            acked += self._crash_round(data, msgs, deleted, delay, what)
        # Some kills must land before the commit was done.
        self.assertLess(acked, len(delays), 'every kill came too late')

    def test_kill_during_commit(self):
        self._crash()

    def test_kill_during_commit_spool(self):
        self.use_spool()
        self._crash()


class MboxClientTest(MboxTest):
    """Real clients behind a TCP listener."""

    def setUp(self):
        super().setUp()
        self.data = mbox_of(SAMPLES[:4]) + FROM_LINE + LAST_NO_NEWLINE
        self.msgs = parse_mbox(self.data)
        self.box.write(self.data)
        self.listener = Listener(self.box)
        self.addCleanup(self.listener.stop)

    def pop(self):
        p = poplib.POP3('127.0.0.1', self.listener.port, timeout=10)
        self.addCleanup(p.close)
        p.user('alice')
        p.pass_('secret')
        return p

    def curl(self, *args):
        r = subprocess.run(['curl', '-s', '--max-time', '10', '-u',
                            'alice:secret'] + list(args),
                           capture_output=True, timeout=20)
        self.assertEqual(r.returncode, 0, (args, r.stderr))
        return r.stdout

    def url(self, path=''):
        return 'pop3://127.0.0.1:%d/%s' % (self.listener.port, path)

    def test_poplib(self):
        p = self.pop()
        sizes = [m.size() for m in self.msgs]
        self.assertEqual(p.stat(), (len(sizes), sum(sizes)))
        _, lines, _ = p.list()
        self.assertEqual(lines, [b'%d %d' % (i, n)
                                 for i, n in enumerate(sizes, 1)])
        for i, m in enumerate(self.msgs, 1):
            _, lines, _ = p.retr(i)
            self.assertEqual(b''.join(x + b'\r\n' for x in lines),
                             convert(m.unquoted()))
        _, lines, _ = p.top(2, 1)
        self.assertEqual(b''.join(x + b'\r\n' for x in lines) + b'.\r\n',
                         self.msgs[1].top(1))
        _, uids, _ = p.uidl()
        p.dele(2)
        p.dele(5)
        p.quit()
        kept = [self.msgs[0], self.msgs[2], self.msgs[3]]
        self.assertEqual(self.box.read(), b''.join(m.chunk for m in kept))
        p = self.pop()
        self.assertEqual(p.stat(), (3, sum(m.size() for m in kept)))
        _, lines, _ = p.uidl()
        self.assertEqual([x.split()[1] for x in lines],
                         [uids[0].split()[1], uids[2].split()[1],
                          uids[3].split()[1]])
        p.quit()

    def test_curl(self):
        for i, m in enumerate(self.msgs, 1):
            self.assertEqual(self.curl(self.url(str(i))),
                             convert(m.unquoted()))
        sizes = [m.size() for m in self.msgs]
        self.assertEqual(self.curl(self.url()),
                         b''.join(b'%d %d\r\n' % (i, n)
                                  for i, n in enumerate(sizes, 1)))
        self.curl('-X', 'DELE', '-I', self.url('1'))
        kept = self.msgs[1:]
        self.assertEqual(self.box.read(), b''.join(m.chunk for m in kept))
        self.assertEqual(self.curl(self.url()),
                         b''.join(b'%d %d\r\n' % (i, m.size())
                                  for i, m in enumerate(kept, 1)))
        self.assertEqual(self.curl(self.url('1')),
                         convert(kept[0].unquoted()))


if __name__ == '__main__':
    unittest.main()
