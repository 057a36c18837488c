"""Pieces shared by the pop3d end-to-end tests.

- convert(), stuff(), wire(): what RETR must send for a message file.
- Session: one pop3d process spoken to over pipes; every read has a
  deadline, so a server that hangs fails the test instead of blocking it.
- Box: a temporary home with a Maildir and a passwd-file, torn down with
  everything started from it.
- Listener: pop3d behind a loopback TCP listener, for real clients.

When the tests run as root, pop3d switches to the uid of the passwd-file
entry and refuses uid 0, so the mailboxes belong to a system user made for
the tests (MAIL_USER).  Otherwise pop3d serves as the current user.
"""

import os
import pwd
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time

MAIL_USER = 'pop3dtest'
# Under tests/valgrind.sh ("make check-valgrind"), every pop3d runs under
# valgrind memcheck, which logs into this directory: pop3d is much slower,
# and its memory and descriptors are partly valgrind's.
VALGRIND_DIR = os.environ.get('POP3D_VALGRIND_DIR')
UNDER_VALGRIND = bool(VALGRIND_DIR)
# What waits for pop3d are multiplied by.
SLOW = 5.0 if UNDER_VALGRIND else 1.0
# valgrind keeps its own descriptors at the top of the hard limit.
VALGRIND_FD_MIN = resource.getrlimit(resource.RLIMIT_NOFILE)[1] - 64
READ_TIMEOUT = 10.0 * SLOW
REPLY_MAX = 512

STATUS_RE = re.compile(rb'(\+OK|-ERR)( [^\r\n]*)?\r\n\Z')
LF_RE = re.compile(rb'(?<!\r)\n')
DOT_RE = re.compile(rb'^\.', re.MULTILINE)


def convert(data):
    """Octets RETR sends for a file, before byte-stuffing: bare LF becomes
    CRLF, and a non-empty file not ending in LF gets a CRLF."""
    out = LF_RE.sub(b'\r\n', data)
    if out and not out.endswith(b'\n'):
        out += b'\r\n'
    return out


def stuff(converted):
    """Byte-stuff converted octets: a line starting with "." gets another."""
    return DOT_RE.sub(b'..', converted)


def wire(data):
    """The multi-line body of RETR for a file, terminator included."""
    return stuff(convert(data)) + b'.\r\n'


def top(data, n):
    """The multi-line body of TOP for a file: headers, the blank line and
    n body lines (the whole message when the body is shorter)."""
    conv = convert(data)
    sep = conv.find(b'\r\n\r\n')
    if sep < 0:
        return stuff(conv) + b'.\r\n'
    head, body = conv[:sep + 4], conv[sep + 4:]
    lines = body.split(b'\r\n')
    if len(lines) - 1 > n:
        body = b''.join(line + b'\r\n' for line in lines[:n])
    return stuff(head + body) + b'.\r\n'


def unstuff(lines):
    """Join the lines of a multi-line reply, removing stuffing dots."""
    return b''.join(line[1:] if line.startswith(b'.') else line
                    for line in lines)


def check_status(line):
    """Fail unless line is a well-formed first line of a reply."""
    if len(line) > REPLY_MAX or not STATUS_RE.match(line):
        raise AssertionError('malformed status line (%d octets): %r'
                             % (len(line), line[:600]))
    return line


class Closed(AssertionError):
    """The server closed its output while a reply was expected."""


def valgrind_test(test_id):
    """Under valgrind: the pop3d processes started from now on belong to
    test_id (their logs are named after it)."""
    if not UNDER_VALGRIND:
        return
    tmp = os.path.join(VALGRIND_DIR, 'test.tmp')
    with open(tmp, 'w') as f:
        f.write(re.sub(r'[^\w.-]', '_', test_id) + '\n')
    os.chmod(tmp, 0o644)        # pop3d reads it as the mail user too
    os.replace(tmp, os.path.join(VALGRIND_DIR, 'test'))


def mail_identity():
    """The uid and gid pop3d must serve the test mailboxes as."""
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    try:
        pw = pwd.getpwnam(MAIL_USER)
    except KeyError:
        subprocess.run(['useradd', '--system', '--no-create-home',
                        '--shell', '/usr/sbin/nologin', MAIL_USER],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=30, check=False)
        pw = pwd.getpwnam(MAIL_USER)
    return pw.pw_uid, pw.pw_gid


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def proc_status(pid):
    """/proc/PID/status as a dict of field name to text."""
    fields = {}
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            key, _, value = line.partition(':')
            fields[key] = value.strip()
    return fields


class Session:
    """A pop3d process serving one session on pipes."""

    def __init__(self, argv, log, env=None):
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=log,
                                     env=env)
        self.pid = self.proc.pid
        self.rfd = self.proc.stdout.fileno()
        self.wfd = self.proc.stdin.fileno()
        os.set_blocking(self.wfd, False)
        self.buf = bytearray()
        self.eof = False
        self.greeting = None

    # Reading.

    def _fill(self, deadline):
        """Read what the server has sent, waiting until deadline.  Returns
        False at EOF."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([self.rfd], [], [], left)[0]:
            raise AssertionError('no reply within the deadline; pending %r'
                                 % bytes(self.buf[:200]))
        chunk = os.read(self.rfd, 1 << 16)
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def readline(self, timeout=READ_TIMEOUT):
        """The next line, LF included."""
        deadline = time.monotonic() + timeout
        while True:
            i = self.buf.find(b'\n')
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return line
            if not self._fill(deadline):
                raise Closed('server closed the connection; pending %r'
                             % bytes(self.buf))

    def read_exact(self, n, timeout=READ_TIMEOUT):
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise Closed('EOF after %d of %d octets'
                             % (len(self.buf), n))
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def reply(self, timeout=READ_TIMEOUT):
        """The first line of a reply, checked for form."""
        return check_status(self.readline(timeout))

    def multi(self, timeout=READ_TIMEOUT):
        """The lines of a multi-line body up to ".CRLF", which is left out."""
        deadline = time.monotonic() + timeout
        lines = []
        while True:
            line = self.readline(max(0.0, deadline - time.monotonic()))
            if line == b'.\r\n':
                return lines
            if not line.endswith(b'\r\n'):
                raise AssertionError('line without CRLF in a multi-line '
                                     'reply: %r' % line[:200])
            lines.append(line)

    def read_eof(self, timeout=READ_TIMEOUT):
        """Everything the server sends until it closes its output."""
        deadline = time.monotonic() + timeout
        while self._fill(deadline):
            pass
        data = bytes(self.buf)
        self.buf.clear()
        return data

    def quiet(self, wait=0.3):
        """Fail if the server sends anything within wait seconds."""
        if self.buf:
            raise AssertionError('unexpected data %r' % bytes(self.buf))
        if select.select([self.rfd], [], [], wait)[0]:
            chunk = os.read(self.rfd, 4096)
            raise AssertionError('unexpected data %r' % chunk)

    # Writing.

    def send(self, data):
        """Write data, reading replies meanwhile so that neither side can
        block the other.  Returns False if the server stopped reading."""
        view = memoryview(data)
        deadline = time.monotonic() + READ_TIMEOUT
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError('server stopped reading its input')
            rlist = [] if self.eof else [self.rfd]
            r, w, _ = select.select(rlist, [self.wfd], [], left)
            if r:
                chunk = os.read(self.rfd, 1 << 16)
                if chunk:
                    self.buf += chunk
                else:
                    self.eof = True
            if w:
                try:
                    n = os.write(self.wfd, view)
                except BlockingIOError:
                    continue
                except BrokenPipeError:
                    return False
                view = view[n:]
                deadline = time.monotonic() + READ_TIMEOUT
        return True

    def cmd(self, line, timeout=READ_TIMEOUT):
        """Send one command line (CRLF added) and return the reply line."""
        if isinstance(line, str):
            line = line.encode('utf-8', 'surrogateescape')
        self.send(line + b'\r\n')
        return self.reply(timeout)

    def ok(self, line):
        """Send a command that must succeed; returns its reply line."""
        reply = self.cmd(line)
        if not reply.startswith(b'+OK'):
            raise AssertionError('%r got %r' % (line, reply))
        return reply

    def err(self, line):
        """Send a command that must fail; returns its reply line."""
        reply = self.cmd(line)
        if not reply.startswith(b'-ERR'):
            raise AssertionError('%r got %r' % (line, reply))
        return reply

    def login(self, user='alice', password='secret'):
        self.ok('USER ' + user)
        self.ok('PASS ' + password)

    def close_input(self):
        if not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass

    def wait(self, timeout=READ_TIMEOUT):
        """The exit status, after the server has ended by itself."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError('pop3d did not exit within %gs' % timeout)

    def quit(self):
        """QUIT, expect +OK, EOF and exit status 0."""
        reply = self.ok('QUIT')
        rest = self.read_eof()
        if rest:
            raise AssertionError('data after QUIT reply: %r' % rest[:200])
        status = self.wait()
        if status != 0:
            raise AssertionError('exit status %d after QUIT' % status)
        return reply

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass


class Pop3Assertions:
    """Checks and small dialogues shared by the end-to-end test cases;
    mixed into unittest.TestCase subclasses."""

    def assertOk(self, reply, expected=None):
        if expected is not None:
            self.assertEqual(reply, expected)
        self.assertTrue(reply.startswith(b'+OK'), reply)

    def assertErr(self, reply, prefix=b'-ERR'):
        self.assertTrue(reply.startswith(prefix),
                        'expected %r..., got %r' % (prefix, reply))

    def capa(self, s):
        """The CAPA lines, as text."""
        self.assertOk(s.cmd('CAPA'))
        return [line[:-2].decode() for line in s.multi()]

    def retr(self, s, n):
        """The multi-line body of RETR n, terminator included."""
        self.assertOk(s.cmd('RETR %d' % n))
        return b''.join(s.multi()) + b'.\r\n'

    def uidls(self, s):
        """The UIDL listing, checked to be numbered 1, 2, ..."""
        self.assertOk(s.cmd('UIDL'))
        out = []
        for i, line in enumerate(s.multi(), 1):
            num, _, uid = line[:-2].partition(b' ')
            self.assertEqual(int(num), i, line)
            out.append(uid.decode('ascii'))
        return out


class Box:
    """A temporary home with a Maildir, a passwd-file and a log file.

    base/           0755, owned by the test runner
      passwd        the passwd-file
      pop3d.log     stderr of every pop3d started from here
      home/         the users' home, owned by the mail user
        Maildir/    cur, new, tmp
    """

    def __init__(self, pop3d):
        self.pop3d = pop3d
        self.uid, self.gid = mail_identity()
        self.base = tempfile.mkdtemp(prefix='pop3d-e2e-')
        os.chmod(self.base, 0o755)
        self.home = os.path.join(self.base, 'home')
        os.mkdir(self.home, 0o700)
        self.maildir = os.path.join(self.home, 'Maildir')
        self.passwd = os.path.join(self.base, 'passwd')
        self.log_path = os.path.join(self.base, 'pop3d.log')
        self.log_file = open(self.log_path, 'ab')
        self.entries = {}
        self.sessions = []
        self.procs = []
        self.seq = 0
        self.add_user('alice', '{PLAIN}secret')

    def add_user(self, name, password, uid=None, gid=None, home=None):
        self.entries[name] = '%s:%s:%d:%d::%s::' % (
            name, password, self.uid if uid is None else uid,
            self.gid if gid is None else gid,
            self.home if home is None else home)
        with open(self.passwd, 'w') as f:
            f.write('# pop3d test users\n\n')
            f.write(''.join(e + '\n' for e in self.entries.values()))
        os.chmod(self.passwd, 0o644)

    def make_maildir(self):
        for sub in ('cur', 'new', 'tmp'):
            os.makedirs(os.path.join(self.maildir, sub), exist_ok=True)

    def deliver(self, content, name=None, sub='new'):
        """Write a message file; returns its name.  Default names sort in
        delivery order."""
        self.make_maildir()
        if name is None:
            self.seq += 1
            name = '%d.M%dP%d.test' % (1700000000 + self.seq, self.seq,
                                       os.getpid())
        path = os.path.join(os.fsencode(self.maildir), os.fsencode(sub),
                            os.fsencode(name))
        with open(path, 'wb') as f:
            f.write(content)
        return name

    def listdir(self, sub):
        return sorted(os.listdir(os.path.join(self.maildir, sub)))

    def _own(self):
        if os.geteuid() != 0:
            return
        for root, dirs, files in os.walk(os.fsencode(self.home)):
            os.lchown(root, self.uid, self.gid)
            for name in dirs + files:
                os.lchown(os.path.join(root, name), self.uid, self.gid)

    def argv(self, *extra, fail_delay=0):
        return [self.pop3d, '--log', 'stderr', '--fail-delay',
                str(fail_delay), '-u', self.passwd,
                '-m', 'maildir:%h/Maildir'] + list(extra)

    def start(self, *extra, fail_delay=0, env=None, greet=True):
        """Start pop3d on pipes; reads and checks the greeting."""
        self._own()
        s = Session(self.argv(*extra, fail_delay=fail_delay), self.log_file,
                    env)
        self.sessions.append(s)
        if greet:
            s.greeting = s.reply(5.0 * SLOW)
        return s

    def open(self, user='alice', password='secret', *extra):
        """A session logged in as user."""
        s = self.start(*extra)
        s.login(user, password)
        return s

    def log(self):
        self.log_file.flush()
        with open(self.log_path, 'rb') as f:
            return f.read()

    def cleanup(self):
        for s in self.sessions:
            s.kill()
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        self.log_file.close()
        shutil.rmtree(self.base, ignore_errors=True)


class Listener:
    """pop3d behind a loopback TCP listener: tcpserver, else socat, or
    systemd-socket-activate when asked."""

    def __init__(self, box, *extra, launcher=None):
        self.port = free_port()
        script = os.path.join(box.base, 'serve.sh')
        with open(script, 'w') as f:
            f.write('#!/bin/sh\n')
            if launcher == 'systemd-socket-activate':
                f.write('unset TCPREMOTEIP REMOTE_HOST\n')
            f.write('exec %s 2>>%s\n' % (
                ' '.join(_sh_quote(a) for a in box.argv(*extra)),
                _sh_quote(box.log_path)))
        os.chmod(script, 0o755)
        box._own()
        if launcher is None:
            launcher = 'tcpserver' if shutil.which('tcpserver') else 'socat'
        self.launcher = launcher
        if launcher == 'systemd-socket-activate':
            argv = ['systemd-socket-activate', '--inetd', '-a',
                    '-l', '127.0.0.1:%d' % self.port, script]
        elif launcher == 'tcpserver':
            argv = ['tcpserver', '-q', '-R', '-H', '-l', 'localhost',
                    '127.0.0.1', str(self.port), script]
        elif launcher == 'socat' and shutil.which('socat'):
            # socat hands pop3d a socketpair: no client address to see.
            argv = ['socat', 'TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork'
                    % self.port, 'EXEC:' + script]
        else:
            raise OSError('neither tcpserver nor socat is installed')
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=box.log_file)
        box.procs.append(self.proc)
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection(('127.0.0.1', self.port), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise OSError('listener on port %d did not start'
                                  % self.port)
                time.sleep(0.05)
        # The probe above opened one session; let it end before tests
        # count on the mailbox lock being free.
        time.sleep(0.2)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _sh_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"
