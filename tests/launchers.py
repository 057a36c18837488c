"""pop3d under the launchers it ships configuration for, on loopback ports.

(tcpserver, socat and systemd-socket-activate are in e2e.py's ClientTest;
the other shipped setups are in deploy.py, which shares the helpers here.)

The xinetd test runs the shipped xinetd.d/pop3 with only the port, the
paths and "disable" changed, so a broken shipped file fails it.  These
tests are loaded by e2e.py.
"""

import os
import poplib
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import pop3test

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def wait_port(port, proc, seconds=5.0):
    """Wait until something accepts on 127.0.0.1:port; the probe's own
    session is given time to end so that the mailbox lock is free."""
    deadline = time.monotonic() + seconds * pop3test.SLOW
    while True:
        try:
            with socket.create_connection(('127.0.0.1', port), 1) as s:
                s.settimeout(2 * pop3test.SLOW)
                s.recv(512)
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError('nothing listens on port %d' % port)
            time.sleep(0.05)
    time.sleep(0.2)


def log_wrapper(box):
    """A script that runs pop3d with box's options and its stderr in the
    box's log: under inetd-style launchers fd 2 is the client's socket."""
    script = os.path.join(box.base, 'pop3d-logged')
    with open(script, 'w') as f:
        f.write('#!/bin/sh\nexec "$@" 2>>%s\n' % box.log_path)
    os.chmod(script, 0o755)
    return [script] + box.argv()


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class MailboxCase(unittest.TestCase):
    """A mailbox of two messages, fetched and deleted through a launcher,
    then checked with a second login."""

    def setUp(self):
        self.box = pop3test.Box(pop3test_binary())
        self.messages = [b'Subject: one\n\nfirst\n.dot line\n',
                         b'Subject: two\r\n\r\nsecond\r\n']
        for m in self.messages:
            self.box.deliver(m)
        self.addCleanup(self.box.cleanup)

    def fetch_and_delete(self, port):
        p = poplib.POP3('127.0.0.1', port, timeout=10)
        self.addCleanup(p.close)
        p.user('alice')
        p.pass_('secret')
        self.assertEqual(p.stat()[0], 2)
        for i, m in enumerate(self.messages, 1):
            lines = p.retr(i)[1]
            self.assertEqual(b''.join(l + b'\r\n' for l in lines),
                             pop3test.convert(m))
        p.dele(1)
        p.quit()
        p = poplib.POP3('127.0.0.1', port, timeout=10)
        self.addCleanup(p.close)
        p.user('alice')
        p.pass_('secret')
        self.assertEqual(p.stat()[0], 1)
        self.assertEqual(b''.join(l + b'\r\n' for l in p.retr(1)[1]),
                         pop3test.convert(self.messages[1]))
        p.quit()

    def serve(self, port, argv):
        """Run a launcher listening on port, then fetch and delete through
        it; the log must show the client's address."""
        self.box._own()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL,
                                stderr=self.box.log_file)
        self.addCleanup(stop, proc)
        wait_port(port, proc)
        self.fetch_and_delete(port)
        self.assertRegex(self.box.log(),
                         rb'login ok: user=alice rip=127\.0\.0\.1')



class XinetdTest(MailboxCase):

    @unittest.skipUnless(shutil.which('xinetd'), 'xinetd is not installed')
    @unittest.skipUnless(os.geteuid() == 0, 'xinetd runs pop3d as root')
    def test_xinetd_shipped_file(self):
        port = pop3test.free_port()
        argv = log_wrapper(self.box)
        self.serve(port, xinetd_argv(
            self.box.base, 'pop3', port,
            (('disable', 'no'), ('server', argv[0]),
             ('server_args', ' '.join(argv[1:])))))


def xinetd_argv(base, name, port, values):
    """xinetd in the foreground with the shipped xinetd.d/NAME as its only
    service, on 127.0.0.1:port; values are (attribute, value) pairs to
    replace, each of which the shipped file must set exactly once.  The
    configuration is written under base."""
    with open(os.path.join(TOP, 'xinetd.d', name)) as f:
        shipped = f.read()
    service, n = re.subn(r'(?m)^service %s$' % re.escape(name),
                         'service %stest' % name, shipped)
    if n != 1:
        raise AssertionError('xinetd.d/%s: no "service %s" line'
                             % (name, name))
    for key, value in values:
        service, n = re.subn(r'(?m)^(\t%s\t+= ).*$' % key,
                             lambda m, v=value: m.group(1) + v, service)
        if n != 1:
            raise AssertionError('xinetd.d/%s sets %s %d times'
                                 % (name, key, n))
    # A service not in /etc/services needs its port and a type.
    service = service.replace(
        '{\n', '{\n\ttype\t\t= UNLISTED\n\tport\t\t= %d\n'
        '\tbind\t\t= 127.0.0.1\n' % port, 1)
    conf_dir = os.path.join(base, 'xinetd.d')
    os.makedirs(conf_dir, exist_ok=True)
    with open(os.path.join(conf_dir, name + 'test'), 'w') as f:
        f.write(service)
    conf = os.path.join(base, 'xinetd-%s.conf' % name)
    with open(conf, 'w') as f:
        f.write('defaults\n{\n}\nincludedir %s\n' % conf_dir)
    return ['xinetd', '-dontfork', '-f', conf, '-pidfile',
            os.path.join(base, 'xinetd-%s.pid' % name)]


class FromLoopback2(poplib.POP3):
    """A POP3 client connecting from 127.0.0.2."""

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        ('127.0.0.2', 0))


@unittest.skipUnless(shutil.which('haproxy'), 'haproxy is not installed')
class HAProxyTest(MailboxCase):
    """HAProxy in front of tcpserver + pop3d --proxy-protocol: the client's
    address comes from the PROXY header, not from the connection, which
    is HAProxy's.  The client connects from 127.0.0.2 to tell them apart."""

    def haproxy(self, backend_port, send):
        port = pop3test.free_port()
        conf = os.path.join(self.box.base, 'haproxy-%s.cfg' % send)
        with open(conf, 'w') as f:
            f.write('global\n\tmaxconn 100\n'
                    'defaults\n\tmode tcp\n\ttimeout connect 5s\n'
                    '\ttimeout client 30s\n\ttimeout server 30s\n'
                    'frontend pop3\n\tbind 127.0.0.1:%d\n'
                    '\tdefault_backend pop3d\n'
                    'backend pop3d\n\tserver s1 127.0.0.1:%d %s\n'
                    % (port, backend_port, send))
        proc = subprocess.Popen(['haproxy', '-db', '-f', conf],
                                stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL,
                                stderr=self.box.log_file)
        self.addCleanup(stop, proc)
        # No probe through HAProxy: it would open a session of its own.
        deadline = time.monotonic() + 5
        while not self.listening(port):
            self.assertLess(time.monotonic(), deadline, 'haproxy')
            self.assertIsNone(proc.poll(), 'haproxy exited')
            time.sleep(0.05)
        return port

    @staticmethod
    def listening(port):
        with socket.socket() as s:
            return s.connect_ex(('127.0.0.1', port)) == 0

    def test_send_proxy_v1_and_v2(self):
        backend = pop3test.Listener(self.box, '--proxy-protocol')
        self.addCleanup(backend.stop)
        for send in ('send-proxy', 'send-proxy-v2'):
            with self.subTest(send=send):
                port = self.haproxy(backend.port, send)
                p = FromLoopback2('127.0.0.1', port, timeout=10)
                self.addCleanup(p.close)
                p.user('alice')
                p.pass_('secret')
                self.assertEqual(p.stat()[0], 2)
                p.quit()
        log = self.box.log()
        self.assertEqual(len(re.findall(
            rb'login ok: user=alice rip=127\.0\.0\.2 ', log)), 2, log)
        # A connection without a header is refused before the greeting.
        with socket.create_connection(('127.0.0.1', backend.port), 5) as s:
            s.sendall(b'CAPA\r\n')
            s.settimeout(5)
            self.assertEqual(s.recv(512), b'')


class InstallTest(unittest.TestCase):
    """make install puts the binary, the man page and every example where
    README says, with the installed binary's path in them; make uninstall
    takes them all away again."""

    def test_install_uninstall(self):
        dest = tempfile.mkdtemp(prefix='pop3d-install-')
        self.addCleanup(shutil.rmtree, dest, True)
        make = ['make', '-s', '-C', TOP, 'DESTDIR=' + dest, 'PREFIX=/usr']
        subprocess.run(make + ['install'], check=True, timeout=120,
                       stdout=subprocess.DEVNULL)
        files = sorted(os.path.relpath(os.path.join(d, f), dest)
                       for d, _, names in os.walk(dest) for f in names)
        examples = ['usr/share/pop3d/' + f for f in (
            's6/pop3d/run', 's6/pop3d/type', 'stunnel/pop3s-inetd.conf',
            'stunnel/pop3s.conf', 'systemd/pop3d.socket',
            'systemd/pop3d@.service', 'systemd/pop3s.socket',
            'systemd/pop3s@.service', 'tcpserver/rules', 'tcpserver/run',
            'xinetd.d/pop3', 'xinetd.d/pop3s', 'fail2ban/filter.d/pop3d.conf',
            'fail2ban/jail.d/pop3d.conf')]
        self.assertEqual(files, sorted(['usr/sbin/pop3d',
                                        'usr/share/man/man8/pop3d.8']
                                       + examples))
        self.assertTrue(os.access(os.path.join(dest, 'usr/sbin/pop3d'),
                                  os.X_OK))
        for f in ('usr/share/pop3d/tcpserver/run',
                  'usr/share/pop3d/s6/pop3d/run'):
            self.assertTrue(os.access(os.path.join(dest, f), os.X_OK), f)
        with open(os.path.join(dest, 'usr/share/pop3d/xinetd.d/pop3')) as f:
            self.assertIn('server\t\t= /usr/sbin/pop3d\n', f.read())
        subprocess.run(make + ['uninstall'], check=True, timeout=60,
                       stdout=subprocess.DEVNULL)
        left = [os.path.join(d, f) for d, _, names in os.walk(dest)
                for f in names]
        self.assertEqual(left, [])


def pop3test_binary():
    """The binary under test, as e2e.py resolved it."""
    return os.environ.get('POP3D_BINARY',
                          os.path.join(TOP, 'pop3d'))
