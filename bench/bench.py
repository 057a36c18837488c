#!/usr/bin/env python3
"""Benchmark of pop3d beside Dovecot's pop3 and popa3d (`make bench`).

    python3 bench/bench.py [--quick] [--pop3d PATH] [--no-peers] [-v]

Run as root on Debian, from anywhere; ./pop3d must be built.  It prints a
table and writes it as Markdown to bench/results.md.  Timings are reported,
never asserted: the exit status is 0 unless a reply fails verification (1)
or pop3d itself cannot run (2).

Data (bench/data/, git-ignored, reused while its stamp matches)
    m100k/  a Maildir of 100,000 messages (about 1.7 GB) and the same
            messages as an mbox spool file; full run only
    m10k/   the same for 10,000 messages
    big/    one message of 64 MiB, as Maildir and mbox, and the octets
            RETR must send for it
    Fixed seed; sizes mostly 2-36 KB, 2% from 48 KB to 900 KB; LF line
    ends; some lines start with "."; 10% of the messages in new/, the rest
    in cur/ with names like 1700000037.M7919P1131.bench,S=25339:2,S (S= is
    the file size; no W=).  Each mailbox has a manifest and a stamp.
    Each run works on copies in bench/data/work/ (hard links for Maildir,
    real copies for mbox), removed at the end.

Peers (bench/peers/, git-ignored): `apt-get download dovecot-core
dovecot-pop3d popa3d` (plus any library they depend on that is not
installed), unpacked with `dpkg-deb -x`; nothing is installed.  A peer that
cannot be had or run is skipped with a message; pop3d is benchmarked anyway.
    Dovecot   the `pop3` binary, pre-authenticated, as the mail user
              (setpriv --reuid --regid --clear-groups), env USER and HOME,
              LD_LIBRARY_PATH=peers/root/usr/lib/dovecot, argument
              -o mail_location=maildir:PATH.  pop3 would run the compiled-in
              /usr/bin/doveconf at every start; instead the unpacked
              doveconf runs once per benchmark on a minimal config
              (protocols = pop3, ssl = no, log_path = /dev/stderr, login
              and internal user = pop3bench) with `-e /usr/bin/env`, and
              the settings it exports (DOVECONF_ENV=1 and friends) are
              given to every pop3 process, as Dovecot's own re-exec would.
              Dovecot sends no greeting in this mode, and opens the mailbox
              before it reads a command.
    popa3d    inetd mode on stdin/stdout as root; it logs in system users
              and serves only /var/mail/USER, so each mbox copy is renamed
              into /var/mail/pop3bench for its sessions (and out again).
    pop3d     as root, `-u USERS -m maildir:PATH --log stderr
              --fail-delay 0`, USERS holding one {PLAIN} entry for
              pop3bench; the binary is copied at the start, so that a
              rebuild cannot change it halfway through a run.
    Each server's stderr goes to bench/data/work/NAME.log, whose last
    lines are shown when something fails.

Changes to the system, idempotent and kept between runs:
    - system user and group `pop3bench`, the owner of all benchmark mail;
      its password (for popa3d) is set at every run with chpasswd, hashed
      with SHA-512 at 1000 rounds so that popa3d's password check costs
      little;
    - system user `popa3d` and the directory /var/lib/popa3d, which popa3d
      needs;
    - /var/mail/pop3bench exists only during a run.

Workloads: each session is a fresh server process on two pipes raised to
1 MiB (F_SETPIPE_SZ); the client logs in step by step, then writes the rest
of the session in one write and reads until EOF into a preallocated buffer.
Servers take turns in every repetition; the table gives medians.  Copies
made for a session are synced to disk before it is timed.
    1. login, STAT, LIST, UIDL, QUIT on 100k, first login: a fresh copy
       of the generated Maildir (server caches dropped); popa3d keeps none.
       The floor of a Maildir server is reading every message file once
       (open, read, close each: bench/readall.c), which an exact first
       LIST needs.
    2. the same, later logins (caches kept, page cache warm).
    3. the same on 10k, later logins.
    4. RETR of the 64 MiB message: MB/s of reply octets from the RETR to
       the end of the session; every reply is compared byte for byte, in
       the reader's buffer (a 64 MiB copy between sessions slows the next
       one).  The ceiling is `cat` of the expected reply into the same
       reader.
    5. TOP n 0 for all 10,000 messages of 10k, in one write, then QUIT.
    6. DELE of all 10,000 messages of a fresh copy of 10k, then QUIT.
    7. sessions per second of greeting + QUIT (Dovecot: start + QUIT).
    8. peak RSS of the server (GNU time's %M, i.e. the server's own
       ru_maxrss) for a later login on 100k and for the RETR of 4: the
       median of 15 sessions (5 with --quick).
    --quick uses 10k for 1 and 2 (no 100k mailbox) and fewer repetitions.

Verification: STAT gives the message count and the sum of LIST; LIST gives
every expected size; UIDL has one unique line per message; about 50 RETRs
per mailbox (the largest among them) must give exactly the expected octets,
as many as LIST said; every TOP reply must be the message's header; DELE
must empty the mailbox.  A failure is reported loudly and the run exits 1.
"""

import argparse
import email.utils
import fcntl
import glob
import grp
import json
import math
import os
import pwd
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.path.join(HERE, 'data')
PEERS = os.path.join(HERE, 'peers')
RESULTS = os.path.join(HERE, 'results.md')

GEN_VERSION = 1
SEED = 20231114
MAIL_USER = 'pop3bench'
MAIL_PASS = 'bench-secret'
SPOOL = '/var/mail/' + MAIL_USER
BIG_SIZE = 64 << 20
PEER_PACKAGES = ['dovecot-core', 'dovecot-pop3d', 'popa3d']

F_SETPIPE_SZ = 1031
F_GETPIPE_SZ = 1032
PIPE_SIZE = 1 << 20
SESSION_TIMEOUT = 900.0

FULL = dict(first=3, later100k=9, later10k=15, retr=15, top=11, dele=11,
            greet_blocks=7, greet_sessions=40, rss=15, sample=50)
QUICK = dict(first=2, later10k=5, retr=3, top=3, dele=3,
             greet_blocks=3, greet_sessions=20, rss=5, sample=30)


class VerifyError(Exception):
    """A reply that is not what the mailbox holds."""


class SessionError(Exception):
    """A session that did not run to its end (exit status, -ERR, timeout)."""


def say(*args):
    print(*args, flush=True)


def human_bytes(n):
    return '%.1f MiB' % (n / 1048576) if n < 1 << 30 else \
        '%.2f GiB' % (n / (1 << 30))


# ---------------------------------------------------------------- the data

WORDS_LETTERS = 'abcdefghijklmnopqrstuvwxyz'
DOT_LINES = ['.', '..', '...', '.signature', '. a line that starts with a dot',
             '.hidden', '.. two dots']


def make_words(rng):
    return [''.join(rng.choices(WORDS_LETTERS, k=rng.randint(1, 11)))
            for _ in range(4000)]


def make_pool(rng, words, size):
    """Body text: lines of 20-76 octets, some empty, 1.5% starting with a
    dot; none starts with "From " or ">From" (mbox would quote them)."""
    lines = []
    total = 0
    while total < size:
        r = rng.random()
        if r < 0.03:
            line = ''
        elif r < 0.045:
            line = rng.choice(DOT_LINES)
        else:
            want = rng.randint(20, 76)
            parts = rng.choices(words, k=14)
            line = parts[0]
            for w in parts[1:]:
                if len(line) + 1 + len(w) > want:
                    break
                line += ' ' + w
        lines.append(line)
        total += len(line) + 1
    return ('\n'.join(lines) + '\n').encode()


def make_header(rng, words, tag, i, ts):
    date = email.utils.formatdate(ts, usegmt=True)
    w = rng.choices(words, k=3)
    sender = '%s.%s@%s.example.org' % (w[0], w[1], w[2])
    subject = ' '.join(rng.choices(words, k=rng.randint(2, 9)))
    head = ('Return-Path: <%s>\n'
            'Delivered-To: pop3bench@bench.example\n'
            'Received: from mail%d.example.org (mail%d.example.org '
            '[192.0.2.%d])\n'
            '\tby mx.bench.example (Postfix) with ESMTPS id %010X\n'
            '\tfor <pop3bench@bench.example>; %s\n'
            'Date: %s\n'
            'From: %s %s <%s>\n'
            'To: pop3bench@bench.example\n'
            'Subject: %s\n'
            'Message-ID: <%s.%d@bench.example>\n'
            'MIME-Version: 1.0\n'
            'Content-Type: text/plain; charset=us-ascii\n'
            'Content-Transfer-Encoding: 7bit\n'
            '\n') % (sender, rng.randrange(1, 99), rng.randrange(1, 99),
                     rng.randrange(1, 255), rng.getrandbits(40), date, date,
                     w[0].capitalize(), w[1].capitalize(), sender, subject,
                     tag, i)
    from_line = 'From %s %s\n' % (sender, time.asctime(time.gmtime(ts)))
    return head.encode(), from_line.encode()


def message_size(rng):
    if rng.random() < 0.02:
        return int(math.exp(rng.uniform(math.log(48_000), math.log(900_000))))
    return int(math.exp(rng.uniform(math.log(2_000), math.log(36_000))))


def body_slice(rng, pool, want):
    """(start, end) of whole lines of the pool, about want octets."""
    start = pool.find(b'\n', rng.randrange(len(pool) - want - 4096)) + 1
    end = pool.find(b'\n', start + want) + 1
    return start, end


def wire_body(raw):
    """What RETR sends for raw (LF) octets: CRLF, dot-stuffed, ".\\r\\n"."""
    conv = raw.replace(b'\n', b'\r\n')
    conv = conv.replace(b'\r\n.', b'\r\n..')
    if conv.startswith(b'.'):
        conv = b'.' + conv
    return conv + b'.\r\n'


def write_all(fd, bufs):
    want = sum(len(b) for b in bufs)
    done = os.writev(fd, bufs)
    if done != want:
        # a short write: finish it the simple way
        rest = b''.join(bytes(b) for b in bufs)[done:]
        while rest:
            rest = rest[os.write(fd, rest):]


class Mailbox:
    """A generated mailbox: the master Maildir, the mbox, the manifest."""

    def __init__(self, tag, n):
        self.tag = tag
        self.n = n
        self.dir = os.path.join(DATA, tag)
        self.maildir = os.path.join(self.dir, 'Maildir')
        self.mbox = os.path.join(self.dir, 'mbox')
        self.manifest = os.path.join(self.dir, 'manifest.tsv')
        self.stamp = os.path.join(self.dir, 'stamp.json')
        self.entries = None          # index i -> (relpath, raw, crlf, hlen)
        self._headers = None

    def params(self):
        return {'version': GEN_VERSION, 'seed': SEED, 'tag': self.tag,
                'n': self.n, 'big': BIG_SIZE if self.tag == 'big' else None}

    def ensure(self, uid, gid):
        stamp = None
        try:
            with open(self.stamp) as f:
                stamp = json.load(f)
        except (OSError, ValueError):
            pass
        if stamp is None or stamp.get('params') != self.params():
            t = time.monotonic()
            say('generating %s (%d message%s) in %s ...' % (
                self.tag, self.n, '' if self.n == 1 else 's', self.dir))
            shutil.rmtree(self.dir, ignore_errors=True)
            os.makedirs(self.dir)
            self.generate(uid, gid)
            stamp = {'params': self.params(), 'uid': uid, 'gid': gid}
            self.write_stamp(stamp)
            say('  done in %.1f s' % (time.monotonic() - t))
        elif (stamp.get('uid'), stamp.get('gid')) != (uid, gid):
            say('%s: mail user changed, re-owning the files' % self.tag)
            for sub in ('cur', 'new'):
                d = os.path.join(self.maildir, sub)
                for name in os.listdir(d):
                    os.chown(os.path.join(d, name), uid, gid)
            stamp['uid'], stamp['gid'] = uid, gid
            self.write_stamp(stamp)
        self.load()

    def write_stamp(self, stamp):
        with open(self.stamp + '.tmp', 'w') as f:
            json.dump(stamp, f)
        os.rename(self.stamp + '.tmp', self.stamp)

    def generate(self, uid, gid):
        rng = random.Random('%d-%s' % (SEED, self.tag))
        words = make_words(rng)
        pool = make_pool(rng, words, 4 << 20)
        for sub in ('cur', 'new', 'tmp'):
            os.makedirs(os.path.join(self.maildir, sub))
        mfd = os.open(self.mbox, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        pending = []
        pending_len = 0
        manifest = []
        flags_choice = ['S', 'S', 'S', 'S', 'RS', '']
        for i in range(1, self.n + 1):
            ts = 1700000000 + 13 * i + rng.randrange(13)
            head, from_line = make_header(rng, words, self.tag, i, ts)
            if self.tag == 'big':
                body = self.big_body(rng, pool, BIG_SIZE - len(head))
                bstart, bend = 0, len(body)
            else:
                want = max(message_size(rng) - len(head), 200)
                bstart, bend = body_slice(rng, pool, want)
                body = pool
            bview = memoryview(body)[bstart:bend]
            raw = len(head) + (bend - bstart)
            lfs = head.count(b'\n') + body.count(b'\n', bstart, bend)
            base = '%d.M%dP%d.bench,S=%d' % (
                ts, rng.randrange(1000000), rng.randrange(100, 65536), raw)
            if self.tag != 'big' and rng.random() < 0.10:
                rel = 'new/' + base
            else:
                rel = 'cur/%s:2,%s' % (base, rng.choice(flags_choice))
            fd = os.open(os.path.join(self.maildir, rel),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.fchown(fd, uid, gid)
            write_all(fd, [head, bview])
            os.close(fd)
            manifest.append('%d\t%s\t%d\t%d\t%d\n' % (
                i, rel, raw, raw + lfs, len(head)))
            pending += [from_line, head, bview, b'\n']
            pending_len += len(from_line) + raw + 1
            if pending_len > (8 << 20) or len(pending) > 800:
                write_all(mfd, pending)
                pending, pending_len = [], 0
            if self.tag == 'big':
                with open(os.path.join(self.dir, 'reply'), 'wb') as f:
                    f.write(wire_body(head + bytes(bview)))
        if pending:
            write_all(mfd, pending)
        os.close(mfd)
        with open(self.manifest, 'w') as f:
            f.writelines(manifest)

    @staticmethod
    def big_body(rng, pool, want):
        pieces = []
        have = 0
        while have < want:
            s, e = body_slice(rng, pool, 1 << 20)
            pieces.append(pool[s:e])
            have += e - s
        body = b''.join(pieces)[:want]
        body = body[:body.rfind(b'\n') + 1]
        pad = want - len(body)
        if pad:
            body += b'x' * (pad - 1) + b'\n'
        return body

    def load(self):
        self.entries = [None]
        with open(self.manifest) as f:
            for line in f:
                i, rel, raw, crlf, hlen = line.rstrip('\n').split('\t')
                self.entries.append((rel, int(raw), int(crlf), int(hlen)))
        if len(self.entries) != self.n + 1:
            raise SystemExit('%s: broken manifest; remove %s'
                             % (self.tag, self.dir))
        self.total = sum(e[2] for e in self.entries[1:])
        self.sizes_sorted = sorted(e[2] for e in self.entries[1:])
        self.raw_total = sum(e[1] for e in self.entries[1:])

    def raw(self, i):
        with open(os.path.join(self.maildir, self.entries[i][0]), 'rb') as f:
            return f.read()

    def expected(self, i):
        """The message as RETR sends it, before stuffing and terminator."""
        return self.raw(i).replace(b'\n', b'\r\n')

    def headers(self):
        """index -> header block as TOP n 0 sends it (CRLF, blank line)."""
        if self._headers is None:
            h = {}
            for i in range(1, self.n + 1):
                rel, _, _, hlen = self.entries[i]
                fd = os.open(os.path.join(self.maildir, rel), os.O_RDONLY)
                try:
                    h[i] = os.pread(fd, hlen, 0).replace(b'\n', b'\r\n')
                finally:
                    os.close(fd)
            self._headers = h
        return self._headers

    def warm(self):
        """Read every file once, so that no server pays for the disk."""
        buf = bytearray(1 << 20)
        paths = [os.path.join(self.maildir, e[0]) for e in self.entries[1:]]
        paths.append(self.mbox)
        for p in paths:
            with open(p, 'rb', buffering=0) as f:
                while f.readinto(buf):
                    pass


# ------------------------------------------------------------ the sessions

class Reader:
    """The client: a preallocated buffer, filled straight from the pipe."""

    def __init__(self, size):
        self.buf = bytearray(b'\1') * size    # touched: no faults later
        self.mv = memoryview(self.buf)

    def grow(self):
        new = bytearray(b'\1') * (2 * len(self.buf))
        new[:len(self.buf)] = self.buf
        self.mv.release()
        self.buf = new
        self.mv = memoryview(self.buf)


class Result:
    def __init__(self):
        self.marks = []       # perf_counter() when each step began
        self.end = None       # after EOF and the server's exit
        self.length = 0
        self.status = None
        self.rusage = None

    def span(self, step=0):
        return self.end - self.marks[step]


def _alarm(signum, frame):
    raise TimeoutError('session timed out')


signal.signal(signal.SIGALRM, _alarm)
LIVE = set()


def run_session(argv, env, steps, reader, log_fd, timeout=SESSION_TIMEOUT):
    """Start argv on two pipes and play steps: (data, 'line' | 'eof').  A
    'line' step writes data and waits for one more line; 'eof' writes data
    and reads to the end.  Result.marks[k] is when step k began; marks[0]
    is just before the spawn."""
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    pid = None
    res = Result()
    try:
        for fd in (in_w, out_r):
            fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)
        insize = fcntl.fcntl(in_w, F_GETPIPE_SZ)
        for data, _ in steps:
            if len(data) > insize:
                raise SessionError('a batch larger than the pipe')
        actions = [(os.POSIX_SPAWN_DUP2, in_r, 0),
                   (os.POSIX_SPAWN_DUP2, out_w, 1),
                   (os.POSIX_SPAWN_DUP2, log_fd, 2)]
        signal.setitimer(signal.ITIMER_REAL, timeout)
        mv = reader.mv
        pos = 0
        first = True
        for data, wait in steps:
            t = time.perf_counter()
            res.marks.append(t)
            if first:
                pid = os.posix_spawn(argv[0], argv, env,
                                     file_actions=actions)
                LIVE.add(pid)
                os.close(in_r)
                os.close(out_w)
                in_r = out_w = None
                first = False
            if data:
                os.write(in_w, data)      # fits in the pipe: never blocks
            if wait == 'line':
                start = pos
                while reader.buf.find(b'\n', start, pos) < 0:
                    if pos == len(reader.buf):
                        reader.grow()
                        mv = reader.mv
                    n = os.readv(out_r, [mv[pos:]])
                    if n == 0:
                        raise SessionError('EOF instead of a reply')
                    pos += n
            else:
                os.close(in_w)
                in_w = None
                while True:
                    if pos == len(reader.buf):
                        reader.grow()
                        mv = reader.mv
                    n = os.readv(out_r, [mv[pos:]])
                    if n == 0:
                        break
                    pos += n
        _, status, ru = os.wait4(pid, 0)
        res.end = time.perf_counter()
        LIVE.discard(pid)
        pid = None
        signal.setitimer(signal.ITIMER_REAL, 0)
        res.length = pos
        res.status = status
        res.rusage = ru
        return res
    except TimeoutError:
        raise SessionError('no end after %.0f s' % timeout)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for fd in (in_r, in_w, out_r, out_w):
            if fd is not None:
                os.close(fd)
        if pid is not None:
            kill(pid)


def kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
    LIVE.discard(pid)


# ------------------------------------------------------- checking replies

class Replies:
    """A POP3 transcript, read reply by reply."""

    def __init__(self, data, who):
        self.d = data
        self.p = 0
        self.who = who

    def fail(self, what):
        near = self.d[max(0, self.p - 80):self.p + 160]
        raise VerifyError('%s: %s (at octet %d: %r)' % (self.who, what,
                                                       self.p, near))

    def line(self, ok=True):
        e = self.d.find(b'\r\n', self.p)
        if e < 0:
            self.fail('an unterminated reply')
        line = self.d[self.p:e]
        self.p = e + 2
        if ok and not line.startswith(b'+OK'):
            self.p -= len(line) + 2
            self.fail('not +OK')
        return line

    def multi(self):
        """(first line, body with stuffing, terminator removed)."""
        first = self.line()
        if self.d.startswith(b'.\r\n', self.p):
            self.p += 3
            return first, b''
        e = self.d.find(b'\r\n.\r\n', self.p)
        if e < 0:
            self.fail('a multi-line reply without its end')
        body = self.d[self.p:e + 2]
        self.p = e + 5
        return first, body

    def end(self):
        if self.p != len(self.d):
            self.fail('%d octets after the last reply'
                      % (len(self.d) - self.p))


def unstuff(body):
    if body.startswith(b'.'):
        body = body[1:]
    return body.replace(b'\r\n.', b'\r\n')


MSGID_RE = re.compile(
    rb'\r\nMessage-ID: <([a-z0-9]+)\.([0-9]+)@bench\.example>')


def message_index(body, box, who):
    m = MSGID_RE.search(body)
    if not m or m.group(1).decode() != box.tag:
        raise VerifyError('%s: a message without its Message-ID' % who)
    i = int(m.group(2))
    if not 1 <= i <= box.n:
        raise VerifyError('%s: Message-ID %d out of range' % (who, i))
    return i


def check_login(data, srv, box):
    """STAT, LIST, UIDL, QUIT: returns the sizes by message number."""
    who = '%s on %s' % (srv.name, box.tag)
    r = Replies(data, who)
    for _ in range(srv.prefix_lines):
        r.line()
    stat = r.line().split()
    if len(stat) < 3 or not stat[1].isdigit() or not stat[2].isdigit():
        r.fail('a malformed STAT reply %r' % b' '.join(stat))
    count, octets = int(stat[1]), int(stat[2])
    _, body = r.multi()
    sizes = []
    for k, line in enumerate(body.split(b'\r\n')[:-1], 1):
        f = line.split(b' ')
        if len(f) != 2 or f[0] != b'%d' % k or not f[1].isdigit():
            raise VerifyError('%s: LIST line %d is %r' % (who, k, line))
        sizes.append(int(f[1]))
    _, body = r.multi()
    uids = set()
    lines = body.split(b'\r\n')[:-1]
    for k, line in enumerate(lines, 1):
        f = line.split(b' ')
        if (len(f) != 2 or f[0] != b'%d' % k or not 1 <= len(f[1]) <= 70
                or not all(0x21 <= c <= 0x7e for c in f[1])):
            raise VerifyError('%s: UIDL line %d is %r' % (who, k, line))
        uids.add(f[1])
    r.line()
    r.end()
    if count != box.n:
        raise VerifyError('%s: STAT says %d messages, the mailbox has %d'
                          % (who, count, box.n))
    if len(sizes) != box.n or octets != sum(sizes):
        raise VerifyError('%s: STAT says %d octets, LIST lists %d messages '
                          'of %d octets' % (who, octets, len(sizes),
                                            sum(sizes)))
    if octets != box.total or sorted(sizes) != box.sizes_sorted:
        raise VerifyError('%s: LIST sizes are not the messages\' sizes '
                          '(%d octets listed, %d expected)'
                          % (who, octets, box.total))
    if len(lines) != box.n or len(uids) != box.n:
        raise VerifyError('%s: UIDL gives %d lines, %d unique, for %d '
                          'messages' % (who, len(lines), len(uids), box.n))
    return sizes


def check_retr_sample(data, srv, box, numbers, sizes):
    who = '%s on %s' % (srv.name, box.tag)
    r = Replies(data, who)
    for _ in range(srv.prefix_lines):
        r.line()
    seen = set()
    for k in numbers:
        _, body = r.multi()
        msg = unstuff(body)
        if len(msg) != sizes[k - 1]:
            raise VerifyError('%s: RETR %d sent %d octets, LIST said %d'
                              % (who, k, len(msg), sizes[k - 1]))
        i = message_index(msg, box, who)
        if i in seen:
            raise VerifyError('%s: message %d sent twice' % (who, i))
        seen.add(i)
        if msg != box.expected(i):
            raise VerifyError('%s: RETR %d is not message %d as it should '
                              'be sent' % (who, k, i))
    r.line()
    r.end()


def check_top(data, srv, box):
    who = '%s on %s (TOP)' % (srv.name, box.tag)
    headers = box.headers()
    r = Replies(data, who)
    for _ in range(srv.prefix_lines):
        r.line()
    seen = set()
    for k in range(1, box.n + 1):
        _, body = r.multi()
        head = unstuff(body)
        i = message_index(head, box, who)
        if i in seen:
            raise VerifyError('%s: TOP %d gives message %d again'
                              % (who, k, i))
        seen.add(i)
        if head != headers[i]:
            raise VerifyError('%s: TOP %d 0 is not the header of message %d'
                              % (who, k, i))
    r.line()
    r.end()


def check_dele(data, srv, n):
    who = '%s (DELE)' % srv.name
    r = Replies(data, who)
    for _ in range(srv.prefix_lines):
        r.line()
    for _ in range(n):
        r.line()
    r.line()
    r.end()


def check_retr_big(data, srv, expected, length=None):
    """Checks the transcript, the first length octets of data (default
    all); returns the octets of the RETR reply.  The reply is compared
    where it is, never copied: 64 MiB allocated and freed between two
    sessions slows the next one down, for every server and for cat."""
    who = '%s (RETR 64 MiB)' % srv.name
    if length is None:
        length = len(data)
    r = Replies(bytes(data[:min(length, 4096)]), who)
    for _ in range(srv.prefix_lines):
        r.line()
    begin = r.p
    r.line()
    start = r.p
    end = start + len(expected)
    if end > length or not data.startswith(expected, start, end):
        raise VerifyError('%s: the octets differ from the expected reply'
                          % who)
    r = Replies(bytes(data[end:length]), who)
    r.line()
    r.end()
    return end - begin


def check_greeting(data, srv):
    r = Replies(data, '%s (greeting)' % srv.name)
    if srv.greeting:
        r.line()
    r.line()
    r.end()


# --------------------------------------------------------------- servers

def mail_ids():
    pw = pwd.getpwnam(MAIL_USER)
    return pw.pw_uid, pw.pw_gid


def ensure_user():
    try:
        pwd.getpwnam(MAIL_USER)
    except KeyError:
        subprocess.run(['useradd', '--system', '--user-group', '--home-dir',
                        '/nonexistent', '--shell', '/usr/sbin/nologin',
                        MAIL_USER], check=True)
    return mail_ids()


def mkdir_owned(path, uid, gid, mode=0o700):
    os.mkdir(path, mode)
    os.chown(path, uid, gid)


def clone_maildir(src, dst, uid, gid, root_files=True):
    """Hard links of the messages in new directories; the files in the
    root (a server's index or cache) are copied, as servers rewrite them."""
    mkdir_owned(dst, uid, gid)
    for sub in ('cur', 'new', 'tmp'):
        d = os.path.join(dst, sub)
        mkdir_owned(d, uid, gid)
        s = os.path.join(src, sub)
        for name in os.listdir(s):
            os.link(os.path.join(s, name), os.path.join(d, name))
    if root_files:
        for e in os.scandir(src):
            if e.is_file(follow_symlinks=False):
                shutil.copy2(e.path, os.path.join(dst, e.name))
                os.chown(os.path.join(dst, e.name), uid, gid)


def maildir_count(path):
    return sum(len(os.listdir(os.path.join(path, s))) for s in ('cur', 'new'))


class Server:
    name = '?'
    greeting = True        # sends a greeting
    prefix_lines = 3       # replies before the session's batch
    kind = 'maildir'

    def __init__(self, work, uid, gid):
        self.work = os.path.join(work, self.name)
        self.uid, self.gid = uid, gid
        self.failed = None
        os.makedirs(self.work)
        os.chown(self.work, uid, gid)
        self.log_path = os.path.join(work, self.name + '.log')
        self.log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT |
                              os.O_APPEND | os.O_TRUNC, 0o644)
        self.warm = {}

    def login_steps(self):
        return [(b'', 'line'),
                (b'USER %s\r\n' % MAIL_USER.encode(), 'line'),
                (b'PASS %s\r\n' % MAIL_PASS.encode(), 'line')]

    def steps(self, batch):
        return self.login_steps() + [(batch, 'eof')]

    # Maildir servers; popa3d overrides these.
    def prepare(self, box):
        path = os.path.join(self.work, box.tag)
        clone_maildir(box.maildir, path, self.uid, self.gid)
        self.warm[box.tag] = path
        return path

    def fresh_first(self, box):
        """A copy of the generated mailbox, as before any login."""
        path = os.path.join(self.work, box.tag + '-first')
        shutil.rmtree(path, ignore_errors=True)
        clone_maildir(box.maildir, path, self.uid, self.gid)
        self.drop_cache(path)
        return path

    def fresh_copy(self, box):
        """A copy of the warm mailbox, caches included."""
        path = os.path.join(self.work, box.tag + '-copy')
        shutil.rmtree(path, ignore_errors=True)
        clone_maildir(self.warm[box.tag], path, self.uid, self.gid)
        return path

    def discard(self, path):
        shutil.rmtree(path, ignore_errors=True)

    def is_empty(self, path):
        return maildir_count(path) == 0

    def drop_cache(self, path):
        pass

    def activate(self, path):
        pass

    def cleanup(self):
        os.close(self.log_fd)

    def log_tail(self, n=6):
        try:
            with open(self.log_path, 'rb') as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - 4000))
                lines = f.read().decode('utf-8', 'replace').splitlines()
            return '\n'.join('    | ' + l for l in lines[-n:])
        except OSError:
            return ''


class Pop3d(Server):
    name = 'pop3d'

    def __init__(self, work, uid, gid, binary):
        super().__init__(work, uid, gid)
        self.bin = os.path.join(self.work, 'pop3d')
        shutil.copy2(binary, self.bin)
        self.users = os.path.join(self.work, 'users')
        fd = os.open(self.users, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, ('%s:{PLAIN}%s:%d:%d::%s::\n' % (
            MAIL_USER, MAIL_PASS, uid, gid, self.work)).encode())
        os.close(fd)
        self.env = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin'}

    def command(self, path):
        return [self.bin, '-u', self.users, '-m', 'maildir:' + path,
                '--log', 'stderr', '--fail-delay', '0'], self.env

    def drop_cache(self, path):
        for name in os.listdir(path):
            if name.startswith('pop3d.') and name != 'pop3d.lock':
                os.unlink(os.path.join(path, name))


class Dovecot(Server):
    name = 'dovecot'
    greeting = False
    prefix_lines = 0

    def __init__(self, work, uid, gid, peers_root):
        super().__init__(work, uid, gid)
        self.libdir = os.path.join(peers_root, 'usr/lib/dovecot')
        self.bin = os.path.join(self.libdir, 'pop3')
        doveconf = os.path.join(peers_root, 'usr/bin/doveconf')
        check_libs([self.bin, doveconf], peer_libpath(peers_root,
                                                      self.libdir))
        self.home = os.path.join(self.work, 'home')
        mkdir_owned(self.home, uid, gid)
        self.conf = os.path.join(self.work, 'dovecot.conf')
        with open(self.conf, 'w') as f:
            f.write('protocols = pop3\n'
                    'ssl = no\n'
                    'mail_location = maildir:~/Maildir\n'
                    'log_path = /dev/stderr\n'
                    'default_login_user = %s\n'
                    'default_internal_user = %s\n' % (MAIL_USER, MAIL_USER))
        base = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin',
                'LD_LIBRARY_PATH': peer_libpath(peers_root, self.libdir)}
        p = subprocess.run([doveconf, '-c', self.conf, '-f', 'service=pop3',
                            '-m', 'pop3', '-p', '-e', '/usr/bin/env'],
                           env=base, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError('doveconf: ' + (p.stderr or p.stdout).strip())
        exported = {}
        for line in p.stdout.splitlines():
            k, eq, v = line.partition('=')
            if eq and k not in base and k not in ('_', 'PWD', 'SHLVL'):
                exported[k] = v
        if exported.get('DOVECONF_ENV') != '1':
            raise RuntimeError('doveconf exported no settings')
        self.env = dict(base, USER=MAIL_USER, HOME=self.home, **exported)
        self.setpriv = shutil.which('setpriv')
        self.empty = os.path.join(self.work, 'empty')
        mkdir_owned(self.empty, uid, gid)
        for sub in ('cur', 'new', 'tmp'):
            mkdir_owned(os.path.join(self.empty, sub), uid, gid)

    def command(self, path):
        return [self.setpriv, '--reuid=%d' % self.uid, '--regid=%d' % self.gid,
                '--clear-groups', self.bin, '-o',
                'mail_location=maildir:' + path], self.env

    def login_steps(self):
        return []

    def drop_cache(self, path):
        for name in os.listdir(path):
            p = os.path.join(path, name)
            if name.startswith('dovecot') and os.path.isfile(p):
                os.unlink(p)


class Popa3d(Server):
    name = 'popa3d'
    kind = 'mbox'

    def __init__(self, work, uid, gid, peers_root):
        super().__init__(work, uid, gid)
        self.bin = os.path.join(peers_root, 'usr/sbin/popa3d')
        check_libs([self.bin], peer_libpath(peers_root))
        try:
            pwd.getpwnam('popa3d')
        except KeyError:
            subprocess.run(['useradd', '--system', '--no-create-home',
                            '--home-dir', '/var/lib/popa3d', '--shell',
                            '/usr/sbin/nologin', 'popa3d'], check=True)
        os.makedirs('/var/lib/popa3d', exist_ok=True)
        subprocess.run(['chpasswd', '-c', 'SHA512', '-s', '1000'],
                       input='%s:%s\n' % (MAIL_USER, MAIL_PASS), text=True,
                       check=True)
        self.env = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin',
                    'LD_LIBRARY_PATH': peer_libpath(peers_root)}
        self.installed = None
        self.mail_gid = grp_gid('mail')
        if os.path.lexists(SPOOL):
            os.unlink(SPOOL)       # left by an interrupted run

    def command(self, path):
        self.activate(path)
        return [self.bin], self.env

    def activate(self, path):
        """Put the mbox at path in /var/mail/pop3bench (a rename)."""
        if self.installed == path:
            return
        self.deactivate()
        os.rename(path, SPOOL)
        self.installed = path

    def deactivate(self):
        if self.installed is not None:
            if os.path.exists(SPOOL):
                os.rename(SPOOL, self.installed)
            self.installed = None

    def copy_mbox(self, src, dst):
        self.deactivate()
        shutil.copyfile(src, dst)
        os.chown(dst, self.uid, self.mail_gid)
        os.chmod(dst, 0o600)
        st = os.stat(src)
        # popa3d waits out the second of a mailbox's mtime: keep the old one
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))

    def prepare(self, box):
        path = os.path.join(self.work, box.tag + '.mbox')
        self.copy_mbox(box.mbox, path)
        self.warm[box.tag] = path
        return path

    def fresh_first(self, box):
        return self.warm[box.tag]          # popa3d keeps no cache

    def fresh_copy(self, box):
        path = os.path.join(self.work, box.tag + '-copy.mbox')
        self.copy_mbox(self.warm[box.tag], path)
        return path

    def discard(self, path):
        if path in self.warm.values():
            return
        if self.installed == path:
            self.deactivate()
        os.unlink(path)

    def is_empty(self, path):
        return os.path.getsize(SPOOL if self.installed == path else path) == 0

    def cleanup(self):
        self.deactivate()
        super().cleanup()


def grp_gid(name):
    return grp.getgrnam(name).gr_gid


def peer_libpath(peers_root, *first):
    """LD_LIBRARY_PATH for an unpacked peer: its own directory, then the
    libraries unpacked beside it (those that are not installed)."""
    return ':'.join(list(first) + sorted(
        glob.glob(os.path.join(peers_root, 'usr/lib/*-linux-gnu*')) +
        glob.glob(os.path.join(peers_root, 'lib/*-linux-gnu*'))))


def check_libs(binaries, libdir):
    env = dict(os.environ)
    if libdir:
        env['LD_LIBRARY_PATH'] = libdir
    for b in binaries:
        if not os.access(b, os.X_OK):
            raise RuntimeError('%s is missing' % b)
        out = subprocess.run(['ldd', b], env=env, capture_output=True,
                             text=True).stdout
        missing = [l.split()[0] for l in out.splitlines() if 'not found' in l]
        if missing:
            raise RuntimeError('%s needs %s' % (b, ', '.join(missing)))


# ------------------------------------------------------------- the peers

def installed(pkg):
    p = subprocess.run(['dpkg-query', '-W', '-f=${db:Status-Status}', pkg],
                       capture_output=True, text=True)
    return p.returncode == 0 and p.stdout.strip() == 'installed'


def fetch_peers():
    """Unpack the peers' packages into bench/peers/root; None if that
    cannot be done.  Reused while bench/peers/stamp.json is there."""
    root = os.path.join(PEERS, 'root')
    stamp = os.path.join(PEERS, 'stamp.json')
    try:
        with open(stamp) as f:
            info = json.load(f)
        if info.get('packages') == PEER_PACKAGES and os.path.isdir(root):
            return root, info
    except (OSError, ValueError):
        pass
    say('fetching the peers: apt-get download %s' % ' '.join(PEER_PACKAGES))
    shutil.rmtree(PEERS, ignore_errors=True)
    debs = os.path.join(PEERS, 'debs')
    os.makedirs(debs)
    os.makedirs(root)

    def download(pkgs):
        p = subprocess.run(['apt-get', 'download'] + pkgs, cwd=debs,
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError('apt-get download %s: %s' % (
                ' '.join(pkgs), p.stderr.strip().splitlines()[-1:]))

    try:
        download(PEER_PACKAGES)
        extra = set()
        for deb in sorted(os.listdir(debs)):
            dep = subprocess.run(['dpkg-deb', '-f', os.path.join(debs, deb),
                                  'Depends'], capture_output=True,
                                 text=True).stdout
            for alt in dep.split(','):
                name = alt.split('|')[0].strip().split(' ')[0].split(':')[0]
                if name.startswith('lib') and not installed(name):
                    extra.add(name)
        if extra:
            say('  and libraries not installed: %s' % ' '.join(sorted(extra)))
            download(sorted(extra))
        versions = {}
        for deb in sorted(os.listdir(debs)):
            path = os.path.join(debs, deb)
            subprocess.run(['dpkg-deb', '-x', path, root], check=True)
            f = subprocess.run(['dpkg-deb', '-f', path, 'Package', 'Version'],
                               capture_output=True, text=True).stdout
            fields = dict(line.split(': ', 1) for line in f.splitlines()
                          if ': ' in line)
            versions[fields.get('Package', deb)] = fields.get('Version', '?')
    except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
        say('  peers unavailable: %s' % e)
        return None
    info = {'packages': PEER_PACKAGES, 'versions': versions}
    with open(stamp, 'w') as f:
        json.dump(info, f)
    return root, info


# -------------------------------------------------------------- workloads

LOGIN_BATCH = b'STAT\r\nLIST\r\nUIDL\r\nQUIT\r\n'


class Bench:
    def __init__(self, args, servers, boxes, reader):
        self.args = args
        self.servers = servers
        self.boxes = boxes
        self.reader = reader
        self.rows = []          # (label, unit, higher_is_better, {srv: [v]})
        self.rss = []           # (label, {srv: KiB})
        self.floors = {}        # label: [ms], a row's floor
        self.notes = []         # errors that took a peer out
        self.failures = []

    def active(self):
        return [s for s in self.servers if s.failed is None]

    def run(self, srv, path, batch, rss_file=None):
        """One session; its transcript is in self.reader.buf."""
        argv, env = srv.command(path)
        if rss_file:
            argv = [TIME, '-f', '%M', '-o', rss_file] + argv
        res = run_session(argv, env, srv.steps(batch), self.reader,
                          srv.log_fd)
        if res.status != 0:
            raise SessionError('exit status %#x' % res.status)
        return res

    def session(self, srv, path, batch, rss_file=None):
        """One session and a copy of its transcript."""
        res = self.run(srv, path, batch, rss_file)
        return res, bytes(self.reader.mv[:res.length])

    def attempt(self, srv, what, fn):
        """Run fn(); a failure takes srv out of the benchmark."""
        try:
            return fn()
        except VerifyError as e:
            srv.failed = 'verification failed'
            self.failures.append(str(e))
            say('\n*** VERIFICATION FAILED: %s\n%s\n' % (e, srv.log_tail()))
        except (SessionError, OSError, RuntimeError) as e:
            srv.failed = 'error'
            msg = '%s: %s: %s' % (srv.name, what, e)
            if srv.name == 'pop3d':
                self.failures.append(msg)
            self.notes.append(msg)
            say('\n*** %s\n%s\n' % (msg, srv.log_tail()))
        return None

    # -- preparation: a warm copy of each mailbox, verified
    def prepare(self, box):
        for srv in self.active():
            def prep():
                path = srv.prepare(box)
                res, data = self.session(srv, path, LOGIN_BATCH)
                sizes = check_login(data, srv, box)
                rng = random.Random('%d-sample-%s' % (SEED, box.tag))
                k = min(self.args.sample, box.n)
                numbers = set(rng.sample(range(1, box.n + 1), k))
                numbers.add(max(range(1, box.n + 1),
                                key=lambda j: sizes[j - 1]))
                numbers = sorted(numbers)
                batch = b''.join(b'RETR %d\r\n' % j for j in numbers)
                res, data = self.session(srv, path, batch + b'QUIT\r\n')
                check_retr_sample(data, srv, box, numbers, sizes)
                # once more, so that caches reflect the retrievals' flags
                res, data = self.session(srv, path, LOGIN_BATCH)
                check_login(data, srv, box)
            self.attempt(srv, 'preparing ' + box.tag, prep)

    def row(self, label, unit, higher, values):
        self.rows.append((label, unit, higher, values))
        shown = []
        for srv in self.servers:
            v = values.get(srv.name)
            if v:
                shown.append('%s %s' % (srv.name, fmt(statistics.median(v),
                                                        unit)))
        say('  %-44s %s' % (label, '   '.join(shown)))
        if self.args.verbose:
            for name, v in values.items():
                say('      %-8s %s' % (name, ' '.join(fmt(x, unit)
                                                     for x in v)))

    def read_all(self, box):
        """Milliseconds of bench/readall.c reading every message file of
        box once (open, read to the end, close)."""
        readall = os.path.join(DATA, 'work', 'readall')
        if not os.path.exists(readall):
            subprocess.run(['cc', '-O2', '-o', readall,
                            os.path.join(ROOT, 'bench', 'readall.c')],
                           check=True)
        names = os.path.join(DATA, 'work', 'names-' + box.tag)
        if not os.path.exists(names):
            with open(names, 'wb') as f:
                f.write(b''.join(os.fsencode(os.path.join(box.maildir, e[0]))
                                 + b'\0' for e in box.entries[1:]))
        with open(names, 'rb') as f:
            t = time.perf_counter()
            r = subprocess.run([readall], stdin=f)
            t = time.perf_counter() - t
        if r.returncode != 0:
            raise SystemExit('readall failed on %s' % box.tag)
        return t * 1000

    def login_workload(self, label, box, reps, first):
        values = {s.name: [] for s in self.active()}
        if first:
            self.floors[label] = []
        for _ in range(reps):
            if first:
                self.floors[label].append(self.read_all(box))
            for srv in self.active():
                def one():
                    path = srv.fresh_first(box) if first else srv.warm[box.tag]
                    if first:
                        os.sync()
                    try:
                        res, data = self.session(srv, path, LOGIN_BATCH)
                        check_login(data, srv, box)
                    finally:
                        if first and path != srv.warm[box.tag]:
                            srv.discard(path)
                    values[srv.name].append(res.span() * 1000)
                self.attempt(srv, label, one)
        self.row(label, 'ms', False, values)
        if first:
            say('  %-44s %s' % ('  floor: read every message file once',
                                fmt(statistics.median(self.floors[label]),
                                    'ms')))

    def retr_workload(self, label, box, reps):
        expected = self.big_reply
        values = {s.name: [] for s in self.active()}
        values['cat'] = []
        reply_path = os.path.join(box.dir, 'reply')
        cat = shutil.which('cat')
        for _ in range(reps):
            for srv in self.active():
                def one():
                    res = self.run(srv, srv.warm[box.tag],
                                   b'RETR 1\r\nQUIT\r\n')
                    octets = check_retr_big(self.reader.buf, srv, expected,
                                            res.length)
                    values[srv.name].append(octets / res.span(-1) / 1e6)
                self.attempt(srv, label, one)
            res = run_session([cat, reply_path], {}, [(b'', 'eof')],
                              self.reader, self.servers[0].log_fd)
            if res.length != len(expected) or \
                    not self.reader.buf.startswith(expected):
                raise SystemExit('cat does not give the expected reply?')
            values['cat'].append(len(expected) / res.span() / 1e6)
        self.ceiling = values.pop('cat')
        self.row(label, 'MB/s', True, values)
        say('  %-44s %s' % ('  ceiling: cat of the reply, same reader',
                            fmt(statistics.median(self.ceiling), 'MB/s')))

    def top_workload(self, label, box, reps):
        batch = b''.join(b'TOP %d 0\r\n' % k for k in range(1, box.n + 1))
        batch += b'QUIT\r\n'
        values = {s.name: [] for s in self.active()}
        for _ in range(reps):
            for srv in self.active():
                def one():
                    res, data = self.session(srv, srv.warm[box.tag], batch)
                    check_top(data, srv, box)
                    values[srv.name].append(res.span(-1) * 1000)
                self.attempt(srv, label, one)
        self.row(label, 'ms', False, values)

    def dele_workload(self, label, box, reps):
        batch = b''.join(b'DELE %d\r\n' % k for k in range(1, box.n + 1))
        batch += b'QUIT\r\n'
        values = {s.name: [] for s in self.active()}
        for _ in range(reps):
            for srv in self.active():
                def one():
                    path = srv.fresh_copy(box)
                    os.sync()
                    try:
                        res, data = self.session(srv, path, batch)
                        check_dele(data, srv, box.n)
                        if not srv.is_empty(path):
                            raise VerifyError('%s: the mailbox is not empty '
                                              'after DELE of every message '
                                              'and QUIT' % srv.name)
                    finally:
                        srv.discard(path)
                    values[srv.name].append(res.span(-1) * 1000)
                self.attempt(srv, label, one)
        self.row(label, 'ms', False, values)

    def greeting_sessions(self, srv, sessions):
        path = srv.empty if srv.name == 'dovecot' else \
            next(iter(srv.warm.values()))
        steps = ([(b'', 'line')] if srv.greeting else []) + \
            [(b'QUIT\r\n', 'eof')]
        t = time.perf_counter()
        for _ in range(sessions):
            argv, env = srv.command(path)
            res = run_session(argv, env, steps, self.reader, srv.log_fd)
            if res.status != 0:
                raise SessionError('exit status %#x' % res.status)
            check_greeting(bytes(self.reader.mv[:res.length]), srv)
        return sessions / (time.perf_counter() - t)

    def greeting_workload(self, label, blocks, sessions):
        values = {s.name: [] for s in self.active()}
        floor = []
        cat = shutil.which('cat')
        steps = [(b'+OK\r\n', 'line'), (b'QUIT\r\n', 'eof')]
        for srv in self.active():          # not timed: a warm-up
            self.attempt(srv, label, lambda: self.greeting_sessions(srv, 5))
        for _ in range(blocks):
            for srv in self.active():
                def one():
                    values[srv.name].append(
                        self.greeting_sessions(srv, sessions))
                self.attempt(srv, label, one)
            t = time.perf_counter()
            for _ in range(sessions):
                res = run_session([cat], {}, steps, self.reader,
                                  self.servers[0].log_fd)
                if bytes(self.reader.mv[:res.length]) != b'+OK\r\nQUIT\r\n':
                    raise SystemExit('cat does not echo?')
            floor.append(sessions / (time.perf_counter() - t))
        self.row(label, 'sessions/s', True, values)
        self.greet_floor = floor
        say('  %-44s %s' % ('  ceiling: cat echoing the same exchange',
                            fmt(statistics.median(floor), 'sessions/s')))

    def rss_workload(self, label, box, batch, check, reps):
        """The median of reps peak RSS samples of each server: the
        kernel maps library pages around each fault, so one sample of the
        same binary varies by some 100 KiB."""
        if not TIME:
            self.notes.append('GNU time is missing: no peak RSS')
            return
        samples = {s.name: [] for s in self.active()}
        rss_file = os.path.join(DATA, 'work', 'rss')
        for _ in range(reps):
            for srv in self.active():
                def one():
                    res, data = self.session(srv, srv.warm[box.tag], batch,
                                             rss_file=rss_file)
                    check(data, srv)
                    with open(rss_file) as f:
                        samples[srv.name].append(
                            int(f.read().split()[-1]))
                self.attempt(srv, label, one)
        values = {k: statistics.median(v) for k, v in samples.items() if v}
        self.rss.append((label, values))
        say('  peak RSS, %-33s %s' % (label, '   '.join(
            '%s %s' % (k, fmt_kib(v)) for k, v in values.items())))
        if self.args.verbose:
            for k, v in samples.items():
                say('      %-8s %s' % (k, ' '.join(fmt_kib(x) for x in v)))


TIME = '/usr/bin/time' if os.access('/usr/bin/time', os.X_OK) else None


def fmt(v, unit):
    if unit == 'ms':
        if v >= 10000:
            return '%.1f s' % (v / 1000)
        return ('%.0f ms' if v >= 100 else '%.1f ms' if v >= 10 else
                '%.2f ms') % v
    if unit == 'MB/s':
        return '%.0f MB/s' % v
    return '%.0f/s' % v


def ratio_cell(values, higher, peers):
    mine = values.get('pop3d')
    best = None
    for p in peers:
        v = values.get(p)
        if v:
            m = statistics.median(v)
            if best is None or (m > best if higher else m < best):
                best = m
    if not mine or best is None:
        return 'n/a'
    m = statistics.median(mine)
    r = m / best if higher else best / m
    return '%.2fx faster' % r if r >= 1 else '%.2fx slower' % (1 / r)


def table(bench):
    names = [s.name for s in bench.servers]
    peers = [n for n in names if n != 'pop3d']
    head = ['workload'] + names + ['pop3d vs best peer']
    lines = [head]
    status = {s.name: s.failed for s in bench.servers}
    for label, unit, higher, values in bench.rows:
        # numbers of a server that gave a wrong reply are not shown
        values = {n: v for n, v in values.items()
                  if status.get(n) != 'verification failed'}
        cells = [label]
        for n in names:
            v = values.get(n)
            cells.append(fmt(statistics.median(v), unit) if v else
                         (status.get(n) or 'n/a').upper())
        cells.append(ratio_cell(values, higher, peers))
        lines.append(cells)
        if label in bench.floors:
            lines.append(['  floor: read every message file once',
                          fmt(statistics.median(bench.floors[label]), 'ms')] +
                         [''] * (len(names) - 1) + [''])
        if unit == 'MB/s' and hasattr(bench, 'ceiling'):
            lines.append(['  ceiling: cat of the reply into the same reader',
                          fmt(statistics.median(bench.ceiling), 'MB/s')] +
                         [''] * (len(names) - 1) + [''])
        if unit == 'sessions/s' and hasattr(bench, 'greet_floor'):
            lines.append(['  ceiling: cat echoing the same exchange',
                          fmt(statistics.median(bench.greet_floor),
                              'sessions/s')] +
                         [''] * (len(names) - 1) + [''])
    return lines


def render_text(lines):
    widths = [max(len(r[i]) for r in lines) for i in range(len(lines[0]))]
    out = []
    for k, r in enumerate(lines):
        out.append(' | '.join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if k == 0:
            out.append('-+-'.join('-' * w for w in widths))
    return '\n'.join(out)


def render_md(lines):
    out = ['| ' + ' | '.join(lines[0]) + ' |',
           '|' + '|'.join(['---'] + ['---:'] * (len(lines[0]) - 1)) + '|']
    for r in lines[1:]:
        out.append('| ' + ' | '.join(c for c in r) + ' |')
    return '\n'.join(out)


def fmt_kib(v):
    """A peak RSS in KiB, as MiB with two decimals."""
    return '%.2f MiB' % (v / 1024)


def rss_lines(bench):
    out = []
    for label, values in bench.rss:
        out.append('peak RSS, %s: %s' % (label, ', '.join(
            '%s %s' % (k, fmt_kib(v)) for k, v in values.items())))
    return out


def machine_info():
    cpu = '?'
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    rev = subprocess.run(['git', '-C', ROOT, 'describe', '--always',
                          '--dirty'], capture_output=True, text=True)
    return cpu, os.cpu_count(), os.uname().release, \
        rev.stdout.strip() or '?'


# ------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true',
                    help='10k mailbox only, fewer repetitions')
    ap.add_argument('--pop3d', default=os.path.join(ROOT, 'pop3d'),
                    help='the pop3d binary (default: ./pop3d)')
    ap.add_argument('--no-peers', action='store_true',
                    help='benchmark pop3d alone')
    ap.add_argument('-v', '--verbose', action='store_true',
                    help='print every repetition')
    args = ap.parse_args()
    reps = QUICK if args.quick else FULL
    args.sample = reps['sample']
    if os.geteuid() != 0:
        say('bench: run as root (the servers switch to the mail user)')
        return 2
    if not os.access(args.pop3d, os.X_OK):
        say('bench: %s is not built: run make' % args.pop3d)
        return 2
    t_start = time.monotonic()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    uid, gid = ensure_user()
    os.makedirs(DATA, exist_ok=True)
    boxes = {'m10k': Mailbox('m10k', 10_000), 'big': Mailbox('big', 1)}
    if not args.quick:
        boxes['m100k'] = Mailbox('m100k', 100_000)
    for box in boxes.values():
        box.ensure(uid, gid)
    work = os.path.join(DATA, 'work')
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    os.chmod(DATA, 0o755)

    reader = Reader(96 << 20)
    servers = []
    peers_info = {}
    try:
        servers.append(Pop3d(work, uid, gid, args.pop3d))
        if not args.no_peers:
            got = fetch_peers()
            if got is None:
                say('peers skipped: their packages cannot be had')
            else:
                peers_root, peers_info = got
                for cls in (Dovecot, Popa3d):
                    try:
                        servers.append(cls(work, uid, gid, peers_root))
                    except (RuntimeError, OSError,
                            subprocess.CalledProcessError) as e:
                        say('%s skipped: %s' % (cls.name, e))
        # Can each server run at all?  A greeting and QUIT.
        for srv in list(servers):
            try:
                path = srv.empty if srv.name == 'dovecot' else None
                argv, env = srv.command(path) if path else \
                    (srv.command('/nonexistent') if srv.kind == 'maildir'
                     else ([srv.bin], srv.env))
                steps = ([(b'', 'line')] if srv.greeting else []) + \
                    [(b'QUIT\r\n', 'eof')]
                res = run_session(argv, env, steps, reader, srv.log_fd,
                                  timeout=30)
                check_greeting(bytes(reader.mv[:res.length]), srv)
                if res.status != 0:
                    raise SessionError('exit status %#x' % res.status)
            except (SessionError, VerifyError, OSError) as e:
                say('%s cannot run: %s\n%s' % (srv.name, e, srv.log_tail()))
                if srv.name == 'pop3d':
                    return 2
                say('%s skipped' % srv.name)
                servers.remove(srv)
                srv.cleanup()
        say('servers: %s' % ', '.join(s.name for s in servers))

        say('warming the page cache ...')
        for box in boxes.values():
            box.warm()
        bench = Bench(args, servers, boxes, reader)
        bench.big_reply = open(os.path.join(boxes['big'].dir, 'reply'),
                               'rb').read()
        for tag in (['m10k', 'big'] if args.quick else ['m100k', 'm10k',
                                                         'big']):
            say('preparing and verifying %s ...' % tag)
            bench.prepare(boxes[tag])
        if not any(s.name == 'pop3d' and s.failed is None for s in servers):
            say('\n*** FAILED:\n' + '\n'.join('  ' + f
                                              for f in bench.failures))
            return 1
        os.sync()     # the copies' writeback is not to run during timing

        say('\nmedians (%s):' % ('quick' if args.quick else 'full'))
        if args.quick:
            bench.login_workload('login+STAT+LIST+UIDL+QUIT, 10k, first',
                                 boxes['m10k'], reps['first'], True)
        else:
            bench.login_workload('login+STAT+LIST+UIDL+QUIT, 100k, first',
                                 boxes['m100k'], reps['first'], True)
            bench.login_workload('login+STAT+LIST+UIDL+QUIT, 100k, later',
                                 boxes['m100k'], reps['later100k'], False)
        bench.login_workload('login+STAT+LIST+UIDL+QUIT, 10k, later',
                             boxes['m10k'], reps['later10k'], False)
        bench.retr_workload('RETR of a 64 MiB message', boxes['big'],
                            reps['retr'])
        bench.top_workload('TOP n 0 x 10,000 pipelined (10k)', boxes['m10k'],
                           reps['top'])
        bench.dele_workload('DELE x 10,000 + QUIT (fresh 10k)', boxes['m10k'],
                            reps['dele'])
        bench.greeting_workload('greeting+QUIT, sequential sessions',
                                reps['greet_blocks'], reps['greet_sessions'])
        login_box = boxes['m10k' if args.quick else 'm100k']
        bench.rss_workload('later login, %s' % login_box.tag, login_box,
                           LOGIN_BATCH,
                           lambda d, s: check_login(d, s, login_box),
                           reps['rss'])
        bench.rss_workload('RETR 64 MiB', boxes['big'], b'RETR 1\r\nQUIT\r\n',
                           lambda d, s: check_retr_big(d, s, bench.big_reply),
                           reps['rss'])
        report(bench, args, peers_info, boxes, time.monotonic() - t_start)
        if bench.failures:
            say('\n*** FAILED:\n' + '\n'.join('  ' + f
                                              for f in bench.failures))
            return 1
        return 0
    finally:
        for pid in list(LIVE):
            kill(pid)
        for srv in servers:
            try:
                srv.cleanup()
            except OSError:
                pass
        shutil.rmtree(work, ignore_errors=True)


METHOD_NOTES = [
    'Dovecot runs pre-authenticated (its pop3 binary as the mail user), so '
    'it sends no greeting and does no password check; its greeting row is '
    'start + QUIT on an empty Maildir.',
    'popa3d checks a SHA-512 (1000 rounds) system password at each login; '
    'pop3d a {PLAIN} passwd-file entry.',
    'Peak RSS is the ru_maxrss of the server process (GNU time %M), the '
    'median of several sessions.',
]


def report(bench, args, peers_info, boxes, elapsed):
    lines = table(bench)
    cpu, ncpu, kernel, rev = machine_info()
    versions = peers_info.get('versions', {}) if peers_info else {}
    say('\n' + render_text(lines))
    for l in rss_lines(bench):
        say(l)
    for n in METHOD_NOTES:
        say('note: ' + n)
    for n in bench.notes:
        say('error: ' + n)
    say('(%.0f s)' % elapsed)
    md = ['# pop3d benchmark results', '',
          '%s run of `bench/bench.py` on %s: %s, %d cores, Linux %s; '
          'pop3d %s%s.' % (
              'Quick' if args.quick else 'Full',
              time.strftime('%Y-%m-%d'), cpu, ncpu, kernel, rev,
              ''.join('; %s %s' % (k, v) for k, v in sorted(versions.items())
                      if k in ('dovecot-pop3d', 'popa3d'))),
          '',
          'Mailboxes: %s.' % ', '.join(
              '%s = %d message%s, %s (LIST total %s)' % (
                  b.tag, b.n, '' if b.n == 1 else 's',
                  human_bytes(b.raw_total), human_bytes(b.total))
              for b in sorted(boxes.values(), key=lambda b: -b.n)),
          '',
          'Medians of interleaved repetitions (servers take turns).  '
          'Login rows '
          'time the whole session from the spawn of the server process; '
          'RETR, TOP and DELE are timed from the write of the batch to the '
          'end of the session (QUIT included).  "first" is a fresh copy of '
          'the generated Maildir, no cache of the server (popa3d keeps '
          'none: every login of it is a first one); "later" has the '
          'caches of earlier logins.', '',
          render_md(lines), '']
    md += ['- ' + l for l in rss_lines(bench)]
    md += ['- ' + l for l in METHOD_NOTES]
    md += ['- error: ' + n for n in bench.notes]
    md += ['', '## Every repetition', '']
    for label, unit, _, values in bench.rows:
        md.append('- %s: %s' % (label, '; '.join(
            '%s %s' % (n, ', '.join(fmt(x, unit) for x in v))
            for n, v in values.items() if v)))
    with open(RESULTS, 'w') as f:
        f.write('\n'.join(md) + '\n')
    say('written: %s' % os.path.relpath(RESULTS, ROOT))


if __name__ == '__main__':
    sys.exit(main())
