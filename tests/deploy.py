"""pop3d as the shipped deployment files start it, on loopback ports.

Each test reads a shipped file (tcpserver/run and tcpserver/rules,
s6/pop3d/, systemd/*, stunnel/*.conf, xinetd.d/pop3s) and changes only the
port, the paths and the users file, so a broken shipped file fails it.  In
place of /usr/local/sbin/pop3d runs a stand-in script that runs the pop3d
under test with the shipped arguments plus "--log stderr", its log in the
box.  A test that needs a client outside makes the stand-in announce
192.0.2.1 as the client address, the way a launcher would.

Every test fetches byte for byte, deletes and checks the deletion with a
second login; as root, it also checks that the session runs as the mail
user.  Run alone with: cd tests && python3 -m unittest deploy -v
"""

import os
import poplib
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

import launchers
import pop3test

TOP = launchers.TOP
SBIN = '/usr/local/sbin/pop3d'
USERS = '/etc/pop3d/users'
CERT = '/etc/ssl/certs/pop3s.pem'
KEY = '/etc/ssl/private/pop3s.key'
INETD_CONF = '/etc/pop3d/pop3s-inetd.conf'
# TEST-NET-1 (RFC 5737): an address that is neither loopback nor ours.
OUTSIDE = '192.0.2.1'
REFUSED = (b'-ERR [AUTH] Plaintext authentication disallowed on '
           b'non-secure connection\r\n')
LAUNCHER_VARS = ('TCPREMOTEIP', 'REMOTE_HOST')
WAIT = 5.0 * pop3test.SLOW


def shipped(*path):
    with open(os.path.join(TOP, *path)) as f:
        return f.read()


def replace(text, old, new, where):
    """text with old replaced by new; old must be in it."""
    if old not in text:
        raise AssertionError('%s: %r not found' % (where, old))
    return text.replace(old, new)


def clean_env():
    """The environment without the variables a launcher sets."""
    return {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS}


def unit_file(name):
    """A shipped systemd unit as {section: {key: [values]}}."""
    units = {}
    section = None
    for line in shipped('systemd', name).splitlines():
        line = line.strip()
        if not line or line[0] in '#;':
            continue
        if line.startswith('[') and line.endswith(']'):
            section = units.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition('=')
        section.setdefault(key.strip(), []).append(value.strip())
    return units


def unit_value(units, section, key):
    values = units.get(section, {}).get(key, [])
    if len(values) != 1:
        raise AssertionError('[%s] %s= is set %d times'
                             % (section, key, len(values)))
    return values[0]


def exec_start(units):
    """The argv of a unit's ExecStart=, without systemd's prefixes."""
    argv = shlex.split(unit_value(units, 'Service', 'ExecStart'))
    argv[0] = argv[0].lstrip('-@:+!')
    return argv


def wait_listen(port, proc, context=None):
    """Wait until a greeting comes on 127.0.0.1:port, through TLS when
    context is given.  The probe logs in nowhere, so no lock stays."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            with socket.create_connection(('127.0.0.1', port), 1) as s:
                s.settimeout(WAIT)
                if context is not None:
                    with context.wrap_socket(
                            s, server_hostname='127.0.0.1') as t:
                        greeting = t.recv(512)
                else:
                    greeting = s.recv(512)
            if greeting.startswith(b'+OK'):
                return
            raise AssertionError('greeting on port %d: %r'
                                 % (port, greeting))
        except (OSError, ssl.SSLError):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError('nothing serves port %d' % port)
            time.sleep(0.05)


def wait_closed(port):
    """Wait until nothing accepts on 127.0.0.1:port."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            socket.create_connection(('127.0.0.1', port), 1).close()
        except OSError:
            return
        time.sleep(0.05)
    raise AssertionError('port %d still accepts' % port)


class DeployTest(unittest.TestCase):
    """A box with two messages, and a stand-in for /usr/local/sbin/pop3d."""

    context = None          # an SSL context for the TLS setups

    def setUp(self):
        self.box = pop3test.Box(launchers.pop3test_binary())
        self.addCleanup(self.box.cleanup)
        self.addCleanup(self.reap)
        self.messages = [b'Subject: one\n\nfirst\n.dot line\n',
                         b'Subject: two\r\n\r\nsecond\r\n']
        for m in self.messages:
            self.box.deliver(m)
        self.rip_file = os.path.join(self.box.base, 'rip')
        self.pop3d = os.path.join(self.box.base, 'pop3d')
        with open(self.pop3d, 'w') as f:
            f.write('#!/bin/sh\n'
                    'if [ -f {rip} ]; then\n'
                    '\tTCPREMOTEIP=$(cat {rip})\n'
                    '\tREMOTE_HOST=$TCPREMOTEIP\n'
                    '\texport TCPREMOTEIP REMOTE_HOST\n'
                    'fi\n'
                    'exec {bin} --log stderr "$@" 2>>{log}\n'.format(
                        rip=shlex.quote(self.rip_file),
                        bin=shlex.quote(self.box.pop3d),
                        log=shlex.quote(self.box.log_path)))
        os.chmod(self.pop3d, 0o755)
        self.box._own()

    def reap(self):
        """Kill what the test left running, found by PID: every process
        whose command line names a file in the box (a session still open,
        a launcher that outlived its supervisor)."""
        base = os.fsencode(self.box.base) + b'/'
        for pid in os.listdir('/proc'):
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                with open('/proc/%s/cmdline' % pid, 'rb') as f:
                    args = f.read().split(b'\0')
            except OSError:
                continue
            if any(a.startswith(base) for a in args):
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass

    def paths(self, text, where):
        """A shipped text with the pop3d binary and the users file
        replaced by the test's."""
        text = replace(text, SBIN, self.pop3d, where)
        return replace(text, USERS, self.box.passwd, where)

    def write(self, name, text, mode=0o644):
        path = os.path.join(self.box.base, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def start(self, argv, port, cwd=None):
        """Start a launcher, its output in the box's log; wait for port."""
        proc = subprocess.Popen(argv, cwd=cwd, env=clean_env(),
                                stdin=subprocess.DEVNULL,
                                stdout=self.box.log_file,
                                stderr=self.box.log_file)
        self.addCleanup(launchers.stop, proc)
        wait_listen(port, proc, self.context)
        return proc

    # Clients.

    def connect(self, port):
        if self.context is None:
            p = poplib.POP3('127.0.0.1', port, timeout=10)
        else:
            p = poplib.POP3_SSL('127.0.0.1', port, timeout=10,
                                context=self.context)
        self.addCleanup(p.close)
        return p

    def login(self, port):
        p = self.connect(port)
        p.user('alice')
        p.pass_('secret')
        return p

    def fetch_and_delete(self, port):
        """Fetch both messages byte for byte, delete the first, and check
        with a second login that it is gone; the log shows loopback."""
        p = self.login(port)
        self.assertEqual(p.stat()[0], 2)
        for i, m in enumerate(self.messages, 1):
            self.assertEqual(b''.join(l + b'\r\n' for l in p.retr(i)[1]),
                             pop3test.convert(m))
        p.dele(1)
        p.quit()
        p = self.login(port)
        self.assertEqual(p.stat()[0], 1)
        self.assertEqual(b''.join(l + b'\r\n' for l in p.retr(1)[1]),
                         pop3test.convert(self.messages[1]))
        p.quit()
        self.assertRegex(self.box.log(),
                         rb'login ok: user=alice rip=127\.0\.0\.1 ')

    def login_from_outside(self, port):
        """Log in as if from OUTSIDE: the shipped options must allow
        USER/PASS there (--allow-plaintext on 110, --tls on 995)."""
        with open(self.rip_file, 'w') as f:
            f.write(OUTSIDE)
        try:
            p = self.login(port)
            self.assertEqual(p.stat()[0], 1)
            p.quit()
        finally:
            os.unlink(self.rip_file)
        self.assertIn(('login ok: user=alice rip=%s ' % OUTSIDE).encode(),
                      self.box.log())

    def check_identity(self, port, launcher):
        """While a session is open, its pop3d (a descendant of launcher)
        runs as the mail user, with only the mail group."""
        p = self.login(port)
        pids = re.findall(rb'pop3d\[(\d+)\]: login ok: user=alice',
                          self.box.log())
        self.assertTrue(pids, 'no login in the log')
        pid = int(pids[-1])
        status = pop3test.proc_status(pid)
        self.assertEqual(status['Uid'].split(), [str(self.box.uid)] * 4)
        self.assertEqual(status['Gid'].split(), [str(self.box.gid)] * 4)
        if os.geteuid() == 0:
            self.assertNotEqual(self.box.uid, 0)
            self.assertEqual(status['Groups'].split(), [str(self.box.gid)])
        ancestor = pid
        for _ in range(10):
            ancestor = int(pop3test.proc_status(ancestor)['PPid'])
            if ancestor in (launcher.pid, 0, 1):
                break
        self.assertEqual(ancestor, launcher.pid,
                         'pop3d %d is not under the launcher' % pid)
        p.quit()


@unittest.skipUnless(shutil.which('tcpserver') and shutil.which('tcprules'),
                     'tcpserver and tcprules (ucspi-tcp) are not installed')
class TcpserverTest(DeployTest):
    """tcpserver/run with a cdb compiled from tcpserver/rules."""

    def tcprules(self, cdb, rules):
        r = subprocess.run(['tcprules', cdb, cdb + '.tmp'], input=rules,
                           text=True, capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)

    def run_script(self, port):
        """tcpserver/run on 127.0.0.1:port, as sv/pop3d/run in the box,
        with the rules cdb built from tcpserver/rules."""
        self.cdb = os.path.join(self.box.base, 'tcp.cdb')
        self.tcprules(self.cdb, shipped('tcpserver', 'rules'))
        run = self.paths(shipped('tcpserver', 'run'), 'tcpserver/run')
        run = replace(run, '/etc/pop3d/tcp.cdb', self.cdb, 'tcpserver/run')
        run = replace(run, ' 0 110 ', ' 127.0.0.1 %d ' % port,
                      'tcpserver/run')
        return self.write('sv/pop3d/run', run, 0o755)

    def test_run_script(self):
        port = pop3test.free_port()
        run = self.run_script(port)
        rules = shipped('tcpserver', 'rules')
        proc = self.start([run], port, cwd=os.path.dirname(run))
        self.fetch_and_delete(port)
        self.check_identity(port, proc)
        # A rule's variables reach pop3d: one that makes the client an
        # outside address shows that the script allows USER/PASS there.
        self.tcprules(self.cdb, '127.0.0.1:allow,TCPREMOTEIP="%s"\n%s'
                      % (OUTSIDE, rules))
        p = self.login(port)
        self.assertEqual(p.stat()[0], 1)
        p.quit()
        self.assertIn(('login ok: user=alice rip=%s ' % OUTSIDE).encode(),
                      self.box.log())
        # And a deny rule closes the connection before pop3d runs.
        self.tcprules(self.cdb, '127.0.0.1:deny\n' + rules)
        with socket.create_connection(('127.0.0.1', port), 5) as s:
            s.settimeout(5)
            self.assertEqual(s.recv(512), b'')

    @unittest.skipUnless(shutil.which('s6-supervise'), 's6 is not installed')
    def test_run_script_under_s6_supervise(self):
        """tcpserver/run as an s6 service; s6-svc -d stops it.

        s6/pop3d/run points to it for systems without s6-networking."""
        port = pop3test.free_port()
        service = os.path.dirname(self.run_script(port))
        self.write('sv/pop3d/type', shipped('s6', 'pop3d', 'type'))
        supervise(self, service, port)
        self.fetch_and_delete(port)
        subprocess.run(['s6-svc', '-d', service], timeout=10, check=True)
        wait_closed(port)


def supervise(test, service, port, path=None):
    """Run s6-supervise on a service directory until the test ends; path
    goes first on its PATH."""
    env = clean_env()
    if path:
        env['PATH'] = path + os.pathsep + env.get('PATH', '/usr/bin:/bin')
    proc = subprocess.Popen(['s6-supervise', service], env=env,
                            stdin=subprocess.DEVNULL,
                            stdout=test.box.log_file,
                            stderr=test.box.log_file)

    def down():
        if proc.poll() is None:
            subprocess.run(['s6-svc', '-xd', service], timeout=10,
                           check=False)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    test.addCleanup(down)
    wait_listen(port, proc)
    return proc


class S6Test(DeployTest):
    """s6/pop3d: an s6 service directory and s6-rc source definition."""

    def test_service_directory(self):
        self.assertEqual(shipped('s6', 'pop3d', 'type'), 'longrun\n')
        run = os.path.join(TOP, 's6', 'pop3d', 'run')
        self.assertTrue(os.access(run, os.X_OK), 's6/pop3d/run is not '
                        'executable')
        r = subprocess.run(['sh', '-n', run], capture_output=True,
                           text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)

    # s6-networking is not in Debian 12: without it, a stand-in takes
    # s6-tcpserver's documented command line (-c, -C, address, port,
    # program) and runs tcpserver with it, so that the run script and the
    # pop3d command in it are still run for real under s6-supervise.
    S6_TCPSERVER_STANDIN = """#!/bin/sh
c=40
while getopts c:C: o; do
	case $o in c) c=$OPTARG ;; C) ;; *) exit 100 ;; esac
done
shift $((OPTIND - 1))
ip=$1 port=$2
shift 2
exec tcpserver -R -H -l 0 -c "$c" "$ip" "$port" "$@"
"""

    @unittest.skipUnless(shutil.which('s6-supervise'), 's6 is not installed')
    def test_s6_tcpserver(self):
        port = pop3test.free_port()
        run = self.paths(shipped('s6', 'pop3d', 'run'), 's6/pop3d/run')
        run = replace(run, ' 0.0.0.0 110 ', ' 127.0.0.1 %d ' % port,
                      's6/pop3d/run')
        service = os.path.dirname(self.write('sv/pop3d/run', run, 0o755))
        self.write('sv/pop3d/type', shipped('s6', 'pop3d', 'type'))
        standin = None
        if not shutil.which('s6-tcpserver'):
            if not shutil.which('tcpserver'):
                self.skipTest('neither s6-tcpserver nor tcpserver')
            standin = os.path.dirname(self.write(
                'bin/s6-tcpserver', self.S6_TCPSERVER_STANDIN, 0o755))
        proc = supervise(self, service, port, standin)
        self.fetch_and_delete(port)
        self.login_from_outside(port)
        self.check_identity(port, proc)


class TLSSetup(DeployTest):
    """A self-signed certificate for 127.0.0.1, and a client context that
    trusts it."""

    def setUp(self):
        for tool in ('stunnel', 'openssl'):
            if not shutil.which(tool):
                self.skipTest('%s is not installed' % tool)
        super().setUp()
        self.cert = os.path.join(self.box.base, 'cert.pem')
        self.key = os.path.join(self.box.base, 'key.pem')
        r = subprocess.run(
            ['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
             'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
             '-subj', '/CN=localhost', '-addext',
             'subjectAltName=IP:127.0.0.1,DNS:localhost',
             '-keyout', self.key, '-out', self.cert],
            capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.context = ssl.create_default_context(cafile=self.cert)

    def stunnel_conf(self, name, where):
        """A shipped stunnel configuration with the test's certificate,
        key, pop3d and users file."""
        conf = self.paths(shipped('stunnel', name), where)
        conf = replace(conf, CERT, self.cert, where)
        return replace(conf, KEY, self.key, where)

    def inetd_conf(self):
        """stunnel/pop3s-inetd.conf for the test: no "accept", so inetd
        mode, and no "foreground", which would log to the client."""
        conf = self.stunnel_conf('pop3s-inetd.conf', 'pop3s-inetd.conf')
        self.assertNotRegex(conf, r'(?m)^\s*(accept|foreground)\s*=')
        self.assertRegex(conf, r'(?m)^execArgs = pop3d .*--tls')
        return self.write('pop3s-inetd.conf', conf)

    def curl(self, port, path):
        r = subprocess.run(['curl', '-s', '--max-time', '10', '--insecure',
                            '-u', 'alice:secret',
                            'pop3s://127.0.0.1:%d/%s' % (port, path)],
                           capture_output=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout


class StunnelTest(TLSSetup):
    """stunnel/pop3s.conf, and xinetd.d/pop3s with
    stunnel/pop3s-inetd.conf."""

    def test_stunnel_daemon(self):
        """stunnel/pop3s.conf, as Debian's stunnel@pop3s.service runs it."""
        port = pop3test.free_port()
        conf = self.stunnel_conf('pop3s.conf', 'stunnel/pop3s.conf')
        self.assertRegex(conf, r'(?m)^foreground = yes$')
        conf = replace(conf, '\naccept = 995\n',
                       '\naccept = 127.0.0.1:%d\n' % port,
                       'stunnel/pop3s.conf')
        proc = self.start(['stunnel', self.write('pop3s.conf', conf)], port)
        if shutil.which('curl'):
            self.assertEqual(self.curl(port, '1'),
                             pop3test.convert(self.messages[0]))
        self.fetch_and_delete(port)
        self.login_from_outside(port)
        self.check_identity(port, proc)

    @unittest.skipUnless(shutil.which('xinetd'), 'xinetd is not installed')
    @unittest.skipUnless(os.geteuid() == 0, 'xinetd runs pop3d as root')
    def test_xinetd_stunnel_inetd(self):
        """xinetd.d/pop3s starting stunnel with stunnel/pop3s-inetd.conf."""
        port = pop3test.free_port()
        text = shipped('xinetd.d', 'pop3s')
        server = re.search(r'(?m)^\tserver\t+= (\S+)$', text)
        self.assertTrue(server and os.access(server.group(1), os.X_OK),
                        'xinetd.d/pop3s: server is not an executable')
        self.assertRegex(text, r'(?m)^\tserver_args\t+= %s$'
                         % re.escape(INETD_CONF))
        argv = launchers.xinetd_argv(
            self.box.base, 'pop3s', port,
            (('disable', 'no'), ('server_args', self.inetd_conf())))
        proc = self.start(argv, port)
        self.fetch_and_delete(port)
        self.login_from_outside(port)
        self.check_identity(port, proc)


def systemd_argv(test, socket_unit, service_unit, port, argv):
    """systemd-socket-activate doing what the shipped socket and service
    units ask for, on 127.0.0.1:port, running argv."""
    sock = unit_file(socket_unit)
    service = unit_file(service_unit)
    test.assertRegex(unit_value(sock, 'Socket', 'ListenStream'),
                     r'^(\S+:)?\d+$')
    test.assertEqual(unit_value(sock, 'Socket', 'Accept'), 'yes')
    for key in ('StandardInput', 'StandardOutput'):
        test.assertEqual(unit_value(service, 'Service', key), 'socket')
    test.assertEqual(unit_value(service, 'Service', 'StandardError'),
                     'journal')
    return ['systemd-socket-activate', '--inetd', '--accept',
            '--listen=127.0.0.1:%d' % port] + argv


@unittest.skipUnless(shutil.which('systemd-socket-activate'),
                     'systemd-socket-activate is not installed')
class SystemdTest(DeployTest):
    """systemd/pop3d.socket and pop3d@.service, one pop3d a connection."""

    def test_pop3d_socket(self):
        units = unit_file('pop3d@.service')
        self.assertEqual(unit_value(unit_file('pop3d.socket'), 'Socket',
                                    'ListenStream'), '110')
        ours = {SBIN: self.pop3d, USERS: self.box.passwd}
        argv = [ours.get(a, a) for a in exec_start(units)]
        self.assertEqual(argv[0], self.pop3d)
        self.assertIn(self.box.passwd, argv)
        port = pop3test.free_port()
        proc = self.start(systemd_argv(self, 'pop3d.socket',
                                       'pop3d@.service', port, argv), port)
        self.fetch_and_delete(port)
        self.login_from_outside(port)
        self.check_identity(port, proc)


@unittest.skipUnless(shutil.which('systemd-socket-activate'),
                     'systemd-socket-activate is not installed')
class SystemdTLSTest(TLSSetup):
    """systemd/pop3s.socket and pop3s@.service: stunnel in inetd mode."""

    def test_pop3s_socket(self):
        units = unit_file('pop3s@.service')
        self.assertEqual(unit_value(unit_file('pop3s.socket'), 'Socket',
                                    'ListenStream'), '995')
        argv = exec_start(units)
        self.assertTrue(os.access(argv[0], os.X_OK),
                        'pop3s@.service: %s is not an executable' % argv[0])
        self.assertEqual(argv[1:], [INETD_CONF])
        argv[1] = self.inetd_conf()
        port = pop3test.free_port()
        proc = self.start(systemd_argv(self, 'pop3s.socket',
                                       'pop3s@.service', port, argv), port)
        self.fetch_and_delete(port)
        self.login_from_outside(port)
        self.check_identity(port, proc)


@unittest.skipUnless(shutil.which('systemd-analyze'),
                     'systemd-analyze is not installed')
class SystemdUnitTest(unittest.TestCase):
    """The unit files as systemd reads them, on copies that point to the
    binary under test."""

    UNITS = ('pop3d.socket', 'pop3d@.service', 'pop3s.socket',
             'pop3s@.service')

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='pop3d-units-')
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        binary = launchers.pop3test_binary()
        for name in self.UNITS:
            with open(os.path.join(self.dir, name), 'w') as f:
                f.write(shipped('systemd', name).replace(SBIN, binary))

    def analyze(self, *args):
        return subprocess.run(['systemd-analyze'] + list(args),
                              capture_output=True, text=True, timeout=60)

    def test_verify(self):
        if not shutil.which('stunnel'):
            self.skipTest('stunnel is not installed: pop3s@.service '
                          'runs it')
        r = self.analyze('verify', '--man=no',
                         *[os.path.join(self.dir, n) for n in self.UNITS])
        self.assertEqual((r.returncode, r.stderr), (0, ''))

    def test_sandbox_exposure(self):
        """systemd's rating of the sandbox: at most 2.0 of 10 ("OK")."""
        for name in ('pop3d@.service', 'pop3s@.service'):
            with self.subTest(unit=name):
                r = self.analyze('security', '--offline=true',
                                 os.path.join(self.dir, name))
                m = re.search(r'Overall exposure level for \S+: '
                              r'(\d+\.\d)', r.stdout)
                self.assertTrue(m, r.stdout[-300:] + r.stderr)
                self.assertLessEqual(float(m.group(1)), 2.0,
                                     r.stdout[-2000:])

if __name__ == '__main__':
    unittest.main()
