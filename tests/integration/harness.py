"""A real Debian apache2 in a generated server root, for the integration tests.

Modelled on the pyhttpd idea of httpd's and mod_md's test suites: every server
gets its own directory with httpd.conf, logs, database and users, listens on a
free 127.0.0.1 port, and is stopped by its PID when the test is done.
"""
import atexit
import grp
import http.client
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(REPO, "build")
MODULE = os.path.join(BUILD, "mod_certauth.so")
BUILT_ADMIN = os.path.join(BUILD, "certauth-admin")
BUILT_STUNNEL = os.path.join(BUILD, "certauth-stunnel")


def _public_tools():
    """The programs the tests run as unprivileged users (certauth-admin as
    www-data, certauth-stunnel as nobody), copied to a directory anyone can
    reach: the checkout may sit below a directory they cannot search, such
    as /root (0700).  Removed when the test run ends."""
    d = tempfile.mkdtemp(prefix="certauth-tools-")
    os.chmod(d, 0o755)
    atexit.register(shutil.rmtree, d, True)
    for src in (BUILT_ADMIN, BUILT_STUNNEL):
        if os.path.exists(src):
            shutil.copy2(src, d)
            os.chmod(os.path.join(d, os.path.basename(src)), 0o755)
    return d


TOOLS = _public_tools()
ADMIN = os.path.join(TOOLS, "certauth-admin")
STUNNEL_HELPER = os.path.join(TOOLS, "certauth-stunnel")
MODDIR = "/usr/lib/apache2/modules"
APACHE = "/usr/sbin/apache2"

BASE_MODULES = [
    "authz_core", "authz_host", "authz_user", "authn_core", "authn_file",
    "auth_basic", "mime", "ssl", "socache_shmcb", "dbd", "headers", "env",
    "setenvif", "alias", "dir",
]

USERS = {"alice": "alice-secret-1", "bob": "bob-secret-2",
         "admin": "admin-secret-3"}


def _allow_cores():
    import resource
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY,
                                                  resource.RLIM_INFINITY))
    except (ValueError, OSError):
        pass


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_user(user):
    """subprocess arguments that run a command as `user` with that user's
    own groups only (subprocess's user= alone keeps root's groups, gid 0)."""
    if not user:
        return {}
    pw = pwd.getpwnam(user)
    groups = [g.gr_gid for g in grp.getgrall() if user in g.gr_mem]
    return {"user": pw.pw_uid, "group": pw.pw_gid,
            "extra_groups": sorted(set(groups) | {pw.pw_gid})}


def run(cmd, timeout=30, check=True, user=None, **kw):
    kw.update(as_user(user))
    r = subprocess.run(cmd, capture_output=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s %s" % (
            cmd, r.returncode, r.stdout.decode(errors="replace"),
            r.stderr.decode(errors="replace")))
    return r


def wait_gone(pid, seconds):
    """True once process pid has exited (or is a zombie), False if it still
    runs after seconds."""
    deadline = time.time() + seconds
    while True:
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True     # exited, not yet reaped by its parent
        except (OSError, IndexError):
            return True
        if time.time() >= deadline:
            return False
        time.sleep(0.05)


def assert_no_crash(h):
    """No httpd child died of a signal (a crash in the module): httpd logs
    "AH00052: child pid N exit signal Segmentation fault (11)".  The report
    carries gdb backtraces of the cores the children left."""
    bad = [l for l in h.log().splitlines()
           if "exit signal" in l or "AH00052" in l or "AH00060" in l]
    assert not bad, "httpd children crashed:\n%s\n%s" % (
        "\n".join(bad), h.backtraces())


def serving(ca, **kw):
    """Generator for module-scoped fixtures: a started Httpd(ca, **kw),
    stopped, checked for crashed children and removed afterwards, pass or
    fail.  Use as `yield from serving(ca, ...)`."""
    h = Httpd(ca, **kw)
    try:
        h.start()
        yield h
        h.stop()
        assert_no_crash(h)
    finally:
        h.cleanup()


class TestCA:
    """A CA made by certauth-admin, and a server certificate it signed."""

    __test__ = False            # a fixture's class, not tests for pytest

    def __init__(self, root, key_type="ec"):
        self.dir = os.path.join(root, "ca")
        run([ADMIN, "init", "--dir", self.dir, "--key-type", key_type,
             "--subject", "CN=certauth test root CA,O=certauth tests"])
        self.cert = os.path.join(self.dir, "cacert.pem")
        self.key = os.path.join(self.dir, "private", "cakey.pem")
        tls = os.path.join(root, "tls")
        os.makedirs(tls, exist_ok=True)
        self.server_key = os.path.join(tls, "server.key")
        self.server_cert = os.path.join(tls, "server.crt")
        ext = os.path.join(tls, "ext.cnf")
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                    "extendedKeyUsage=serverAuth\n"
                    "basicConstraints=critical,CA:FALSE\n")
        run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-keyout", self.server_key,
             "-subj", "/CN=localhost", "-out", os.path.join(tls, "server.csr")])
        run(["openssl", "x509", "-req", "-in", os.path.join(tls, "server.csr"),
             "-CA", self.cert, "-CAkey", self.key, "-CAcreateserial",
             "-days", "30", "-sha256", "-extfile", ext,
             "-out", self.server_cert])
        os.chmod(self.server_key, 0o600)
        with open(self.cert, "rb") as f:
            self.pem = f.read()


class Httpd:
    """One apache2 instance with mod_certauth."""

    def __init__(self, ca, mpm="event", location_conf="", vhost_conf="",
                 server_conf="", db_path=None, base_url=None,
                 ca_directives=None, enroll_auth=True, est_conf="",
                 db_driver="sqlite3", db_params=None):
        self.ca = ca
        self.mpm = mpm
        self.root = tempfile.mkdtemp(prefix="certauth-httpd-")
        self.port = free_port()
        self.url = "https://127.0.0.1:%d" % self.port
        self.base = self.url + "/ca"
        self.pidfile = os.path.join(self.root, "httpd.pid")
        self.error_log = os.path.join(self.root, "logs", "error_log")
        self.conf = os.path.join(self.root, "httpd.conf")
        self.dbdir = os.path.join(self.root, "db")
        self.db = db_path or os.path.join(self.dbdir, "certauth.db")
        # another database (e.g. db_driver="pgsql", db_params="host=...")
        self.db_driver = db_driver
        self.db_params = db_params or self.db
        self.location_conf = location_conf
        self.vhost_conf = vhost_conf
        self.server_conf = server_conf
        self.base_url = base_url or self.base
        self.ca_directives = ca_directives
        self.enroll_auth = enroll_auth
        self.est_conf = est_conf
        for d in ("logs", "db", "run", "htdocs", "cores"):
            os.makedirs(os.path.join(self.root, d), exist_ok=True)
        self.users_file = os.path.join(self.root, "users")
        for i, (u, p) in enumerate(sorted(USERS.items())):
            run(["htpasswd", "-b" + ("c" if i == 0 else "") + "B",
                 self.users_file, u, p])
        self.user = None
        if os.geteuid() == 0:
            self.user = "www-data"
            pw = pwd.getpwnam(self.user)
            os.chown(self.dbdir, pw.pw_uid, pw.pw_gid)
            os.chown(os.path.join(self.root, "cores"), pw.pw_uid, pw.pw_gid)
            # the server root must be reachable for www-data
            os.chmod(self.root, 0o755)
        self.write_conf()

    def write_conf(self):
        mods = ["LoadModule mpm_%s_module %s/mod_mpm_%s.so"
                % (self.mpm, MODDIR, self.mpm)]
        mods += ["LoadModule %s_module %s/mod_%s.so" % (m, MODDIR, m)
                 for m in BASE_MODULES]
        # mod_watchdog makes the CRLs (built into Debian's apache2)
        if (os.path.exists(os.path.join(MODDIR, "mod_watchdog.so"))
                and b"mod_watchdog.c" not in subprocess.run(
                    [APACHE, "-l"], capture_output=True).stdout):
            mods.append("LoadModule watchdog_module %s/mod_watchdog.so"
                        % MODDIR)
        mods.append("LoadModule certauth_module %s" % MODULE)
        user = ("User %s\nGroup %s\n" % (self.user, self.user)
                if self.user else "")
        ca = self.ca_directives
        if ca is None:
            ca = ("CertAuthCACertificateFile %s\nCertAuthCAKeyFile %s\n"
                  "CertAuthBaseURL %s\n"
                  % (self.ca.cert, self.ca.key, self.base_url))
        auth = ""
        if self.enroll_auth:
            auth = """<LocationMatch "^/ca/(enroll|pkcs12)$">
        AuthType Basic
        AuthName certauth-test
        AuthBasicProvider file
        AuthUserFile %s
        Require valid-user
    </LocationMatch>
    <LocationMatch "^/ca/(revoke|api/)">
        AuthType Basic
        AuthName certauth-test
        AuthBasicProvider file
        AuthUserFile %s
        # a login, when one is sent, is checked even beside a certificate
        # (a stale certificate in the browser never hides the login)
        <RequireAny>
            <RequireAll>
                Require ssl-verify-client
                Require expr "-z req('Authorization')"
            </RequireAll>
            Require valid-user
        </RequireAny>
    </LocationMatch>
    <Location /.well-known/est>
        CertAuth On
        CertAuthAdmin "%%{REMOTE_USER} == 'admin'"
        %s
        AuthType Basic
        AuthName certauth-test
        AuthBasicProvider file
        AuthUserFile %s
        # a login, when one is sent, is checked even beside a certificate
        # (a stale certificate in the browser never hides the login)
        <RequireAny>
            <RequireAll>
                Require ssl-verify-client
                Require expr "-z req('Authorization')"
            </RequireAll>
            Require valid-user
        </RequireAny>
    </Location>
    <LocationMatch "^/\\.well-known/est/([^/]+/)?(cacerts|csrattrs)$">
        Require all granted
    </LocationMatch>""" % (self.users_file, self.users_file,
                           self.est_conf, self.users_file)
        conf = """
ServerRoot "{root}"
DefaultRuntimeDir "{root}/run"
PidFile "{pidfile}"
CoreDumpDirectory "{root}/cores"
GracefulShutdownTimeout 5
Mutex file:{root}/run default
Listen 127.0.0.1:{port}
ServerName 127.0.0.1
{mods}
{user}
ErrorLog "{root}/logs/error_log"
LogLevel warn certauth:debug
TypesConfig /etc/mime.types
Timeout 20
StartServers 2
<IfModule !mpm_prefork_module>
    ThreadsPerChild 8
    MinSpareThreads 8
    MaxSpareThreads 32
</IfModule>
MaxRequestWorkers 32
ServerLimit 16
DocumentRoot "{root}/htdocs"
<Directory />
    Require all denied
    # no .htaccess lookups on every request (as a production server should)
    AllowOverride None
</Directory>
<Directory "{root}/htdocs">
    Require all granted
</Directory>
SSLSessionCache "shmcb:{root}/run/ssl_scache(512000)"
{server_conf}
<VirtualHost 127.0.0.1:{port}>
    ServerName 127.0.0.1
    SSLEngine on
    SSLCertificateFile {server_cert}
    SSLCertificateKeyFile {server_key}
    # people without a certificate still reach the site; a certificate of
    # this CA identifies its holder for renew, revoke and api
    SSLVerifyClient optional
    SSLVerifyDepth 2
    SSLCACertificateFile {ca_cert}
    DBDriver {db_driver}
    DBDParams "{db}"
    {ca}
    {vhost_conf}
    <Location /ca>
        CertAuth On
        Require all granted
        CertAuthAdmin "%{{REMOTE_USER}} == 'admin'"
        {location_conf}
    </Location>
    {auth}
</VirtualHost>
""".format(root=self.root, pidfile=self.pidfile, port=self.port,
           mods="\n".join(mods), user=user, server_cert=self.ca.server_cert,
           server_key=self.ca.server_key, db=self.db_params,
           db_driver=self.db_driver, ca=ca,
           vhost_conf=self.vhost_conf, location_conf=self.location_conf,
           auth=auth, server_conf=self.server_conf, ca_cert=self.ca.cert)
        with open(self.conf, "w") as f:
            f.write(conf)

    def configtest(self):
        r = run([APACHE, "-t", "-f", self.conf], check=False)
        return r.returncode, (r.stdout + r.stderr).decode(errors="replace")

    def start(self):
        # a crashing child leaves a core in cores/ (see backtraces())
        r = run([APACHE, "-f", self.conf, "-k", "start"], check=False,
                preexec_fn=_allow_cores)
        if r.returncode != 0:
            raise RuntimeError("apache2 did not start: %s%s\n%s" % (
                r.stdout.decode(), r.stderr.decode(), self.log_tail()))
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                self.get("/ca/cacert.pem")
                return self
            except (OSError, http.client.HTTPException):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("apache2 does not answer:\n" + self.log_tail())

    def pid(self):
        try:
            with open(self.pidfile) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def children(self):
        """PIDs of the server's child processes, sorted."""
        pid = self.pid()
        out = []
        for d in os.listdir("/proc") if pid else []:
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(d))
        return sorted(out)

    def stop(self):
        """Stop gracefully first, as Debian's apache2.service does
        (apachectl graceful-stop: SIGWINCH, requests in progress finish),
        and once the children are gone SIGTERM the parent (else it would
        poll for them once a second), then SIGKILL.  A SIGTERM while
        children run makes the event MPM abort the sockets of busy workers
        from another thread (close_worker_sockets), which races with a
        worker finishing its connection and now and then kills the child in
        apr_os_sock_get: an httpd shutdown race, not a fault of the module
        under test."""
        pid = self.pid()
        if not pid:
            return
        kids = self.children()
        try:
            os.kill(pid, signal.SIGWINCH)
        except ProcessLookupError:
            return
        deadline = time.time() + 8
        for kid in kids:
            wait_gone(kid, max(0.0, deadline - time.time()))
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        if wait_gone(pid, 10):
            return
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass

    def cleanup(self):
        self.stop()
        if not os.environ.get("CERTAUTH_KEEP"):
            shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, n=30):
        try:
            with open(self.error_log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return "(no error log)"

    def backtraces(self):
        """gdb backtraces of the cores crashed children left, for reports."""
        out = []
        cores = os.path.join(self.root, "cores")
        for name in sorted(os.listdir(cores)) if os.path.isdir(cores) else []:
            core = os.path.join(cores, name)
            if not shutil.which("gdb"):
                out.append("%s (install gdb for a backtrace)" % core)
                continue
            # the crashing thread first, then the others, shorter
            r = run(["gdb", "-batch", "-nx", "-ex", "bt 40",
                     "-ex", "thread apply all bt 12", APACHE, core],
                    timeout=120, check=False)
            text = r.stdout.decode(errors="replace")
            out.append("%s:\n%s" % (core, text[:16000]))
        return "\n".join(out)

    def log(self):
        try:
            with open(self.error_log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # --- clients ---------------------------------------------------------
    def ssl_context(self, client_cert=None):
        ctx = ssl.create_default_context(cafile=self.ca.cert)
        if client_cert:
            # (certificate file, key file): TLS client authentication
            ctx.load_cert_chain(client_cert[0], client_cert[1])
        return ctx

    def request(self, method, path, body=None, headers=None, user=None,
                timeout=20, client_cert=None):
        """Python http.client; returns (status, headers dict, body bytes).
        client_cert=(cert file, key file) presents a client certificate."""
        h = dict(headers or {})
        if user:
            import base64
            cred = "%s:%s" % (user, USERS.get(user, "wrong-password"))
            h["Authorization"] = "Basic " + base64.b64encode(
                cred.encode()).decode()
        conn = http.client.HTTPSConnection("127.0.0.1", self.port,
                                           context=self.ssl_context(
                                               client_cert),
                                           timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=h)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def enroll(self, csr, user="alice", ctype="application/pkcs10",
               headers=None, path="/ca/enroll", **kw):
        h = {"Content-Type": ctype} if ctype else {}
        h.update(headers or {})
        return self.request("POST", path, body=csr, headers=h, user=user,
                            **kw)

    def curl(self, *args, timeout=30):
        """curl against this server; returns (status, headers text, body)."""
        hdr = tempfile.NamedTemporaryFile(delete=False)
        hdr.close()
        try:
            r = run(["curl", "-sS", "--cacert", self.ca.cert, "-D", hdr.name,
                     "-o", "-", "--max-time", str(timeout)] + list(args),
                    timeout=timeout + 5, check=False)
            with open(hdr.name) as f:
                headers = f.read()
        finally:
            os.unlink(hdr.name)
        status = 0
        for line in headers.splitlines():
            if line.startswith("HTTP/"):
                status = int(line.split()[1])
        return status, headers, r.stdout

    def rows(self):
        """Number of certificates stored."""
        # as the server's user: files SQLite creates (-wal, -shm) must stay
        # writable for the httpd children
        r = run([ADMIN, "list", "--db", self.db_driver + ":" + self.db_params,
                 "--limit",
                 "100000"], user=self.user)
        return len(r.stdout.decode().splitlines()) - 1
