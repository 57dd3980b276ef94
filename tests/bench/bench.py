#!/usr/bin/python3
"""mod_certauth benchmarks: the module against cfssl, `openssl ca` and Apache
serving static files, all measured in one run on this machine.

    tests/bench/bench.py [--quick] [--out DIR]

Every server is started here on a free 127.0.0.1 port (the module's httpd
through tests/integration/harness.py, a plain Apache static-file vhost,
`cfssl serve`, optionally PostgreSQL) and stopped by its PID at the end, also
after a failure.  One EC P-256 CA (made by certauth-admin) signs everywhere.
The results are printed as one table with ratios and the targets of issue 8
next to them; a target that is not met is reported as "short", never as a
failure of the run: timings depend on the machine.  The table is also
written to DIR/results.md (default tests/out/bench).

Rows (see tests/bench/README.md):
  a  enrollment throughput over HTTPS keep-alive (wrk, 2 threads) against the
     module (durable SQLite), `cfssl serve`'s /api/v1/cfssl/sign, the
     how-to's `openssl ca` (one process per certificate) and Apache serving a
     1 KB static file; PostgreSQL when the module and the machine can
  b  cost per certificate with 0 / 100k / 1M certificates already stored,
     and `openssl ca` with an empty and a 100k-line index.txt
  c  CRL generation with 100k / 1M revoked entries against `openssl ca
     -gencrl`; CRL serving against Apache serving the same bytes
  d  RSS of the httpd child before and after many enrollments
  o  OCSP responses/s: pre-produced and nonce responses against a static
     file of the same size (keep-alive, wrk) and against `openssl ocsp
     -index -multi 2` (a new connection per request, ab), with the server's
     and the client's CPU per answer (--only-ocsp: this row alone;
     BENCH_OCSP_PROFILE=DIR: perf profiles of each server under load)
  p  enrollment with the CA key in a SoftHSM2 token (PKCS#11) against the
     same httpd with the key file (--only-token: this row alone)

The PostgreSQL row is tried when postgresql-15 is installed and reported as
skipped (with the reason) when the module cannot enroll on it; BENCH_PG=0
leaves it out.
"""
import argparse
import base64
import json
import os
import platform
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402

REPO = harness.REPO
ADMIN = harness.ADMIN
MODDIR = harness.MODDIR
APACHE = harness.APACHE
LUA = os.path.join(HERE, "rotate.lua")
OSSL_LOOP = os.path.join(HERE, "openssl-ca-loop.sh")
PG_BIN = "/usr/lib/postgresql/15/bin"

SIZES = {
    "full": dict(duration=8, conns=[8, 32], rounds=3, fsync_secs=5,
                 cost_conns=16,
                 stored=[0, 100000, 1000000], crl=[100000, 1000000],
                 rss_warm=2000, rss_n=100000, ossl_n=200, index_n=100000,
                 gencrl_runs=2),
    "quick": dict(duration=3, conns=[8, 32], rounds=3, fsync_secs=3,
                  cost_conns=16,
                  stored=[0, 20000, 100000], crl=[20000, 100000],
                  rss_warm=500, rss_n=3000, ossl_n=40, index_n=20000,
                  gencrl_runs=1),
}
NCSR = 16
# the same worker settings for the module's httpd and the static Apache
WORKERS = ("ServerLimit 2\nStartServers 2\nThreadsPerChild 32\n"
           "MinSpareThreads 1\nMaxSpareThreads 64\nMaxRequestWorkers 64\n")
USER, PASSWORD = "alice", harness.USERS["alice"]


def log(msg):
    sys.stderr.write("[bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def human(n):
    if n >= 1000000 and n % 1000000 == 0:
        return "%dM" % (n // 1000000)
    if n >= 1000 and n % 1000 == 0:
        return "%dk" % (n // 1000)
    return str(n)


def run(cmd, timeout=600, check=True, **kw):
    return harness.run(cmd, timeout=timeout, check=check, **kw)


# ---------------------------------------------------------------------------
# load generator

def wrk(url, bodies, method, path, ctype, auth, conns, duration):
    """wrk with rotate.lua; returns dict with ok/s and the counts."""
    dirname, count = bodies if bodies else ("-", 1)
    cmd = ["wrk", "-t2", "-c%d" % conns, "-d%ds" % duration,
           "--timeout", "30s", "-s", LUA, url, "--", dirname, str(count),
           method, path, ctype or "-", auth or "-"]
    r = run(cmd, timeout=duration + 900)
    out = r.stdout.decode(errors="replace")
    m = re.search(r"BENCH-JSON (\{.*\})", out)
    if not m:
        raise RuntimeError("wrk printed no summary:\n" + out)
    res = json.loads(m.group(1))
    ok = sum(v for k, v in res["statuses"].items() if 200 <= int(k) < 300)
    secs = res["duration_us"] / 1e6
    res["ok"] = ok
    res["secs"] = secs
    res["rate"] = ok / secs if secs > 0 else 0.0
    # answers other than 2xx; socket errors are mostly connections the
    # server closed (a child stopped by the MPM's spare-thread management)
    res["refused"] = res["requests"] - ok
    res["sockerr"] = sum(res["errors"][k] for k in
                         ("connect", "read", "write", "timeout"))
    res["failed"] = res["refused"]
    log("wrk %s %s%s c=%d: %.0f ok/s (%d ok, statuses %s, errors %s)"
        % (method, url, path, conns, res["rate"], ok, res["statuses"],
           res["errors"]))
    return res


def fmt(res, unit="/s"):
    """'1234/s', with the answers that were not 2xx and the socket errors
    when there were any."""
    out = "%.0f%s" % (res["rate"], unit)
    notes = []
    if res["refused"]:
        notes.append("%d not 2xx" % res["refused"])
    if res["sockerr"]:
        notes.append("%d socket errors" % res["sockerr"])
    return out + (" (%s)" % ", ".join(notes) if notes else "")


# ---------------------------------------------------------------------------
# servers

class Procs:
    """Everything started, stopped by PID at the end."""

    def __init__(self):
        self.items = []

    def add(self, obj):
        self.items.append(obj)
        return obj

    def stop_all(self):
        for obj in reversed(self.items):
            try:
                getattr(obj, "cleanup", obj.stop)()
            except Exception as e:  # keep stopping the others
                log("stopping %r: %s" % (obj, e))
        self.items = []


class BenchHttpd(harness.Httpd):
    """The module's httpd with warn-level logging, unlimited keep-alive
    requests, optionally one child or another database, and the site's login
    checked against a SHA-1 htpasswd entry: the harness's bcrypt entries cost
    about 1.5 ms of CPU per request (mod_authn_socache caches the lookup, not
    the hash check), which would measure the password hash, not the CA."""

    def __init__(self, ca, db_path=None, one_child=False, db_driver="sqlite3",
                 db_params=None):
        self.one_child = one_child
        # two children of 32 threads that stay for the whole run (no child
        # stopped or started by the MPM's spare-thread management while
        # wrk runs); the static Apache gets the same
        # every connection may wait to write (CertAuthDBMaxWaiters, default
        # 8, counts the requests writing or waiting to write, those queued
        # for a group commit too): 64 for up to 32 connections
        server_conf = ("LogLevel warn\nMaxKeepAliveRequests 0\n"
                       "CertAuthDBMaxWaiters 64\n")
        if not one_child:
            server_conf += WORKERS
        else:
            server_conf += ("StartServers 1\nServerLimit 1\nThreadsPerChild 16\n"
                            "MinSpareThreads 1\nMaxSpareThreads 16\n"
                            "MaxRequestWorkers 16\n")
        # the static Apache and cfssl ask for no client certificate: nor
        # does this (a later SSLVerifyClient in the vhost wins); callers
        # add to vhost_conf, not replace it
        super().__init__(ca, enroll_auth=False, db_path=db_path,
                         server_conf=server_conf, db_driver=db_driver,
                         db_params=db_params,
                         vhost_conf="SSLVerifyClient none")
        self.bench_users = os.path.join(self.root, "bench-users")
        run(["htpasswd", "-cbs", self.bench_users, USER, PASSWORD])
        self.write_conf()

    def start(self):
        super().start()
        self.pid()  # remembered now
        return self

    def pid(self):
        """The parent's PID from the pid file, remembered: the server is
        stopped by it even if its directory was removed under it (seen on
        the shared machine: a pid file gone, an httpd left running)."""
        pid = super().pid()
        if pid:
            self._pid = pid
            return pid
        pid = getattr(self, "_pid", None)
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                if self.conf.encode() in f.read():
                    return pid
        except (OSError, TypeError):
            pass
        return None

    def rows(self):
        """Certificates stored (SQLite: counted; certauth-admin list stops
        at its --limit)."""
        if self.db_driver != "sqlite3":
            return super().rows()
        r = run(["sqlite3", "-batch", self.db,
                 "SELECT COUNT(*) FROM certauth_certs"], user=self.user)
        return int(r.stdout.strip())

    def write_conf(self):
        super().write_conf()
        with open(self.conf) as f:
            text = f.read()
        # after the harness's <Location /ca> (Require all granted), so that
        # it applies
        auth = """    <Location /ca/enroll>
        AuthType Basic
        AuthName certauth-bench
        AuthBasicProvider file
        AuthUserFile %s
        Require valid-user
    </Location>
</VirtualHost>""" % getattr(self, "bench_users", self.users_file)
        if text.count("</VirtualHost>") != 1:
            raise RuntimeError("harness configuration changed: not one "
                               "virtual host")
        text = text.replace("</VirtualHost>", auth)
        with open(self.conf, "w") as f:
            f.write(text)


def rss_kb(pid):
    """VmRSS and its anonymous part (heap, pools, SQLite's page caches) in
    KB."""
    out = {"VmRSS": 0, "RssAnon": 0}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key = line.split(":")[0]
            if key in out:
                out[key] = int(line.split()[1])
    return out


class StaticApache:
    """A plain Apache (event MPM, mod_ssl, no mod_certauth) serving files
    over HTTPS with the same certificate and the same worker settings as the
    module's test server."""

    def __init__(self, ca):
        self.root = tempfile.mkdtemp(prefix="certauth-static-")
        self.port = harness.free_port()
        self.url = "https://127.0.0.1:%d" % self.port
        self.htdocs = os.path.join(self.root, "htdocs")
        self.pidfile = os.path.join(self.root, "httpd.pid")
        for d in ("logs", "run", "htdocs"):
            os.makedirs(os.path.join(self.root, d), exist_ok=True)
        if os.geteuid() == 0:
            os.chmod(self.root, 0o755)
        user = "User www-data\nGroup www-data\n" if os.geteuid() == 0 else ""
        mods = "\n".join("LoadModule %s_module %s/mod_%s.so" % (m, MODDIR, m)
                         for m in ("mpm_event", "authz_core", "mime", "ssl",
                                   "socache_shmcb"))
        conf = """ServerRoot "{root}"
DefaultRuntimeDir "{root}/run"
PidFile "{pidfile}"
Mutex file:{root}/run default
Listen 127.0.0.1:{port}
ServerName 127.0.0.1
{mods}
{user}
ErrorLog "{root}/logs/error_log"
LogLevel warn
TypesConfig /etc/mime.types
AddType application/pkix-crl .crl
Timeout 20
MaxKeepAliveRequests 0
{workers}DocumentRoot "{root}/htdocs"
# no .htaccess lookups, as in the module's server (harness.py)
<Directory />
    AllowOverride None
</Directory>
<Directory "{root}/htdocs">
    Require all granted
</Directory>
SSLSessionCache "shmcb:{root}/run/ssl_scache(512000)"
<VirtualHost 127.0.0.1:{port}>
    ServerName 127.0.0.1
    SSLEngine on
    SSLCertificateFile {cert}
    SSLCertificateKeyFile {key}
</VirtualHost>
""".format(root=self.root, pidfile=self.pidfile, port=self.port, mods=mods,
           user=user, cert=ca.server_cert, key=ca.server_key,
           workers=WORKERS)
        self.conf = os.path.join(self.root, "httpd.conf")
        with open(self.conf, "w") as f:
            f.write(conf)

    def put(self, name, data):
        with open(os.path.join(self.htdocs, name), "wb") as f:
            f.write(data)
        os.chmod(os.path.join(self.htdocs, name), 0o644)

    def start(self):
        run([APACHE, "-f", self.conf, "-k", "start"])
        deadline = time.time() + 15
        while time.time() < deadline:
            if os.path.exists(self.pidfile):
                r = run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}",
                         self.url + "/"], check=False)
                if r.stdout.strip() and r.stdout.strip() != b"000":
                    return self
            time.sleep(0.1)
        raise RuntimeError("static apache does not answer")

    def pid(self):
        try:
            with open(self.pidfile) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def children(self):
        return harness.Httpd.children(self)

    def stop(self):
        stop_pid(self.pid())
        shutil.rmtree(self.root, ignore_errors=True)


def stop_pid(pid, timeout=10):
    if not pid:
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (OSError, ChildProcessError):
        pass


class Cfssl:
    """`cfssl serve` over HTTPS with the CA, storing what it signs in its
    own SQLite certdb (so that it, like the module, keeps a record)."""

    def __init__(self, ca, workdir):
        self.dir = os.path.join(workdir, "cfssl")
        os.makedirs(self.dir, exist_ok=True)
        self.port = harness.free_port()
        self.url = "https://127.0.0.1:%d" % self.port
        cfg = os.path.join(self.dir, "config.json")
        with open(cfg, "w") as f:
            json.dump({"signing": {"default": {
                "expiry": "8760h",
                "usages": ["digital signature", "client auth"]}}}, f)
        self.db = os.path.join(self.dir, "certs.db")
        # the certdb table of cfssl's SQLite migrations
        run(["sqlite3", self.db, """CREATE TABLE certificates (
  serial_number blob NOT NULL, authority_key_identifier blob NOT NULL,
  ca_label blob, status blob NOT NULL, reason int, expiry timestamp,
  revoked_at timestamp, pem blob NOT NULL, issued_at timestamp,
  not_before timestamp, metadata text, sans text, common_name text,
  PRIMARY KEY(serial_number, authority_key_identifier));
CREATE TABLE ocsp_responses (
  serial_number blob NOT NULL, authority_key_identifier blob NOT NULL,
  body blob NOT NULL, expiry timestamp,
  PRIMARY KEY(serial_number, authority_key_identifier));"""])
        dbcfg = os.path.join(self.dir, "db.json")
        with open(dbcfg, "w") as f:
            # the module's durability: WAL, and every commit synced
            # (go-sqlite3 reads these from the DSN; the journal mode is
            # checked in the file after the run, see journal_mode())
            json.dump({"driver": "sqlite3", "data_source":
                       "file:%s?_journal_mode=WAL&_synchronous=FULL"
                       % self.db}, f)
        self.log = open(os.path.join(self.dir, "cfssl.log"), "wb")
        self.proc = subprocess.Popen(
            ["cfssl", "serve", "-address", "127.0.0.1", "-port",
             str(self.port), "-ca", ca.cert, "-ca-key", ca.key, "-config",
             cfg, "-db-config", dbcfg, "-tls-cert", ca.server_cert,
             "-tls-key", ca.server_key, "-loglevel", "3"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def start(self, csr_pem):
        deadline = time.time() + 20
        while time.time() < deadline:
            r = run(["curl", "-s", "--cacert", harness_ca.cert,
                     "-o", "/dev/null", "-w", "%{http_code}", "-d",
                     json.dumps({"certificate_request": csr_pem}),
                     self.url + "/api/v1/cfssl/sign"], check=False)
            if r.stdout.strip() == b"200":
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError("cfssl serve does not sign: %s" % open(
            self.log.name, errors="replace").read()[-2000:])

    def rows(self):
        r = run(["sqlite3", self.db, "SELECT COUNT(*) FROM certificates"])
        return int(r.stdout.strip())

    def journal_mode(self):
        """The journal mode recorded in the database file: 'wal' once cfssl
        opened it in WAL mode (persistent), 'delete' if it ignored the DSN."""
        r = run(["sqlite3", self.db, "PRAGMA journal_mode"])
        return r.stdout.decode().strip()

    def stop(self):
        stop_pid(self.proc.pid)
        self.log.close()


class Postgres:
    """A throw-away PostgreSQL cluster on a loopback port (initdb + pg_ctl),
    run as the postgres user when started as root."""

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "pg")
        self.port = harness.free_port()
        self.pid = None
        os.makedirs(self.dir, exist_ok=True)
        self.as_user = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        data = os.path.join(self.dir, "data")
        run(self.as_user + [PG_BIN + "/initdb", "-A", "trust", "-U",
                            "certauth", "-D", data], timeout=120)
        run(self.as_user + [PG_BIN + "/pg_ctl", "-D", data, "-w", "-l",
                            os.path.join(self.dir, "log"), "-o",
                            "-p %d -k %s -c listen_addresses=127.0.0.1 "
                            "-c fsync=on -c synchronous_commit=on"
                            % (self.port, self.dir), "start"], timeout=120)
        with open(os.path.join(data, "postmaster.pid")) as f:
            self.pid = int(f.readline())
        run(self.as_user + [PG_BIN + "/createdb", "-h", "127.0.0.1", "-p",
                            str(self.port), "-U", "certauth", "certauth"])
        self.params = ("host=127.0.0.1 port=%d dbname=certauth user=certauth"
                       % self.port)

    def pids(self):
        """The postmaster and its children (backends, WAL writer, ...)."""
        out = [self.pid]
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.pid:
                out.append(int(d))
        return out

    def scalar(self, sql):
        r = run(self.as_user + ["/usr/bin/psql", "-h", "127.0.0.1", "-p",
                                str(self.port), "-U", "certauth", "-At",
                                "-c", sql, "certauth"], check=False)
        return r.stdout.decode().strip()

    def stop(self):
        stop_pid(self.pid, timeout=20)


# ---------------------------------------------------------------------------
# fixtures

def make_csrs(workdir, n=NCSR):
    """n EC P-256 CSRs (CN bench-i) as PKCS#10 PEM bodies, and the same as
    cfssl sign requests; returns ((pemdir, n), (jsondir, n), first pem)."""
    pemdir = os.path.join(workdir, "csr")
    jsondir = os.path.join(workdir, "csr-json")
    os.makedirs(pemdir, exist_ok=True)
    os.makedirs(jsondir, exist_ok=True)
    keydir = os.path.join(workdir, "csr-keys")
    os.makedirs(keydir, exist_ok=True)
    first = None
    for i in range(n):
        out = os.path.join(pemdir, str(i))
        run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-keyout",
             os.path.join(keydir, "%d.key" % i), "-subj",
             "/O=bench/CN=bench-%d" % i, "-out", out])
        with open(out) as f:
            pem = f.read()
        first = first or pem
        with open(os.path.join(jsondir, str(i)), "w") as f:
            json.dump({"certificate_request": pem}, f)
    return (pemdir, n), (jsondir, n), first


def sample_pem(ca):
    with open(ca.server_cert) as f:
        return f.read()


def fill_store(db, n, pem, status="revoked"):
    """The module's schema (certauth-admin migrate), then n certificates with
    random 16-octet serials (as the module makes them: first octet 01..7f,
    upper-case hex) and one audit record each, in one SQLite transaction.
    status 'revoked' (reason keyCompromise) puts every one on the CRL."""
    run([ADMIN, "migrate", "--db", "sqlite3:" + db])
    if n > 0:
        now = int(time.time())
        sql = """PRAGMA synchronous=OFF;
PRAGMA cache_size=-1000000;
BEGIN;
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {n})
INSERT INTO certauth_certs (serial, subject, owner, profile, not_before,
  not_after, issued_at, status, revoked_at, reason, cert_pem, invalidity_at,
  replaced_by)
SELECT printf('%02X', 1 + abs(random()) % 127) || hex(randomblob(15)),
  'CN=user' || (i % 100000) || ',O=bench', 'user' || (i % 100000), 'default',
  {nb}, {na}, {nb} + i % 86400, '{status}',
  CASE WHEN '{status}' = 'revoked' THEN {rv} + i % 3600 ELSE 0 END,
  CASE WHEN '{status}' = 'revoked' THEN 1 ELSE -1 END, '{pem}', 0, ''
FROM c;
INSERT INTO certauth_audit (id, at, actor, auth, client, action, serial,
  outcome, detail)
SELECT lower(hex(randomblob(12))), issued_at, owner, 'login', '127.0.0.1',
  'enroll', serial, 'ok', 'profile default, subject ' || subject
FROM certauth_certs;
COMMIT;
""".format(n=n, nb=now - 86400, na=now + 365 * 86400, status=status,
           rv=now - 7200, pem=pem.replace("'", "''"))
        run(["sqlite3", db], input=sql.encode(), timeout=3600)
    if os.geteuid() == 0:
        pw = pwd.getpwnam("www-data")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.chown(db + suffix, pw.pw_uid, pw.pw_gid)


def remove_db(db):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.unlink(db + suffix)


def asn1_time(t):
    return time.strftime("%y%m%d%H%M%SZ", time.gmtime(t))


class OpensslCA:
    """The how-to's CA directory (seed 004): openssl.cnf, index.txt, serial,
    newcerts/, private/cakey.pem; the same CA key and certificate, SHA-256."""

    def __init__(self, ca, workdir, name):
        self.dir = os.path.join(workdir, name)
        for d in ("newcerts", "private"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        shutil.copy(ca.cert, os.path.join(self.dir, "cacert.pem"))
        shutil.copy(ca.key, os.path.join(self.dir, "private", "cakey.pem"))
        os.chmod(os.path.join(self.dir, "private", "cakey.pem"), 0o600)
        with open(os.path.join(self.dir, "serial"), "w") as f:
            f.write("01\n")
        with open(os.path.join(self.dir, "index.txt.attr"), "w") as f:
            f.write("unique_subject = no\n")
        open(os.path.join(self.dir, "index.txt"), "w").close()
        self.cnf = os.path.join(self.dir, "openssl.cnf")
        with open(self.cnf, "w") as f:
            f.write("""dir = {dir}
[ ca ]
default_ca = CA_default
[ CA_default ]
serial = $dir/serial
database = $dir/index.txt
new_certs_dir = $dir/newcerts
certificate = $dir/cacert.pem
private_key = $dir/private/cakey.pem
default_days = 365
default_crl_days = 7
default_md = sha256
preserve = no
email_in_dn = no
nameopt = default_ca
certopt = default_ca
policy = policy_match
unique_subject = no
x509_extensions = usr_cert
[ policy_match ]
organizationName = optional
commonName = supplied
[ usr_cert ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
crlDistributionPoints = URI:https://127.0.0.1/ca/crl
""".format(dir=self.dir))

    def fill_index(self, n, revoked):
        """n lines of index.txt: valid ('V') or revoked ('R', keyCompromise)
        certificates with random 16-octet serials, like the module's."""
        now = int(time.time())
        exp = asn1_time(now + 365 * 86400)
        rev = asn1_time(now - 7200)
        raw = os.urandom(16 * n)
        with open(os.path.join(self.dir, "index.txt"), "w") as f:
            for i in range(n):
                b = bytearray(raw[16 * i:16 * i + 16])
                b[0] = b[0] % 0x7f + 1
                if revoked:
                    f.write("R\t%s\t%s,keyCompromise\t%s\tunknown\t"
                            "/O=bench/CN=user%d\n" % (exp, rev, b.hex().upper(),
                                                      i % 100000))
                else:
                    f.write("V\t%s\t\t%s\tunknown\t/O=bench/CN=user%d\n"
                            % (exp, b.hex().upper(), i % 100000))

    def sign_loop(self, csrs, n):
        """n certificates, one `openssl ca` process each; seconds taken."""
        t0 = time.perf_counter()
        run(["sh", OSSL_LOOP, self.cnf, csrs[0], str(csrs[1]), str(n),
             os.path.join(self.dir, "out")], timeout=3600)
        return time.perf_counter() - t0


# ---------------------------------------------------------------------------
# interleaved comparisons (row a)
#
# A comparison is two arms measured in turn, A B A B ..., at least three
# rounds per connection count; each round gives the ratio A/B, and the table
# shows the median of those per-round ratios with their min-max spread, the
# 1-minute load average taken before each round (the machine may be shared),
# and the server CPU time per answered request of each arm.  A new
# comparison (another endpoint, another peer) is one more Comparison in the
# list that enroll_comparisons() builds.

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_ticks(pid, with_children=False):
    """utime + stime of one process (and of its waited-for children), in
    clock ticks; 0 when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    # fields[0] is state (field 3): utime is field 14, stime 15, cutime 16,
    # cstime 17
    t = int(fields[11]) + int(fields[12])
    if with_children:
        t += int(fields[13]) + int(fields[14])
    return t


def httpd_pids(h):
    pid = h.pid()
    return ([pid] if pid else []) + h.children()


def httpd_ticks(h):
    """CPU ticks of an httpd: the parent with the children it reaped (a
    child that exits during a run is counted there) plus the live children."""
    pid = h.pid()
    if not pid:
        return 0
    return proc_ticks(pid, True) + sum(proc_ticks(c) for c in h.children())


class Arm:
    """One side of a comparison: a label, how to load it (wrk arguments
    without the connection count and duration), how to read its server's
    CPU ticks and PIDs."""

    def __init__(self, label, url, bodies, method, path, ctype, auth, ticks,
                 pids):
        self.label = label
        self.args = (url, bodies, method, path, ctype, auth)
        self.ticks = ticks
        self.pids = pids
        self.ok_total = 0   # answers counted over every run (stored check)
        self.inflight = 0   # at most one unanswered request per connection
        self.rates = []
        self.cpu_ms = []

    def load(self, conns, duration):
        r = wrk(*self.args, conns=conns, duration=duration)
        self.ok_total += r["ok"]
        self.inflight += conns
        return r

    def run(self, conns, duration):
        t0 = self.ticks()
        r = self.load(conns, duration)
        t1 = self.ticks()
        r["cpu_ms"] = ((t1 - t0) * 1000.0 / CLK_TCK / r["ok"]
                       if r["ok"] else float("inf"))
        self.rates.append(r["rate"])
        self.cpu_ms.append(r["cpu_ms"])
        return r


class Comparison:
    def __init__(self, name, a, b, target=None):
        self.name = name
        self.a = a
        self.b = b
        self.target = target  # minimum median ratio A/B, or None

    def measure(self, conns, rounds, duration, warm=2):
        """rounds of A and B, B first every other round (neither always
        runs on a machine the other just left); first an unmeasured load
        of warm seconds on each, so no round measures children starting."""
        out = []
        if warm:
            self.a.load(conns, warm)
            self.b.load(conns, warm)
        for i in range(rounds):
            load = os.getloadavg()[0]
            if i % 2:
                rb = self.b.run(conns, duration)
                ra = self.a.run(conns, duration)
            else:
                ra = self.a.run(conns, duration)
                rb = self.b.run(conns, duration)
            ratio = ra["rate"] / rb["rate"] if rb["rate"] else 0.0
            log("%s, %d conns, round %d: %.0f/s / %.0f/s = %.2f (load %.2f)"
                % (self.name, conns, i + 1, ra["rate"], rb["rate"], ratio,
                   load))
            out.append(dict(a=ra, b=rb, ratio=ratio, load=load))
        return out


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    if not n:
        return 0.0
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2.0


def notes(rounds, key):
    bad = sum(r[key]["refused"] for r in rounds)
    sock = sum(r[key]["sockerr"] for r in rounds)
    n = []
    if bad:
        n.append("%d not 2xx" % bad)
    if sock:
        n.append("%d socket errors" % sock)
    return " (%s)" % ", ".join(n) if n else ""


def report_comparison(table, cmp_, conns, rounds, row="a"):
    ratios = [r["ratio"] for r in rounds]
    loads = ", ".join("%.1f" % r["load"] for r in rounds)
    for key, arm in (("a", cmp_.a), ("b", cmp_.b)):
        rates = [r[key]["rate"] for r in rounds]
        cpus = [r[key]["cpu_ms"] for r in rounds]
        table.add(row, "%s, %d conns" % (arm.label, conns),
                  "%.0f/s (rounds %s); server CPU %.2f ms/answer%s"
                  % (median(rates), " ".join("%.0f" % x for x in rates),
                     median(cpus), notes(rounds, key)))
    m = median(ratios)
    table.add(row, "%s, %d conns: median of %d per-round ratios"
              % (cmp_.name, conns, len(rounds)),
              "%.2f× (min %.2f, max %.2f; load %s)"
              % (m, min(ratios), max(ratios), loads),
              "≥ %.1f×" % cmp_.target if cmp_.target else "",
              verdict(m >= cmp_.target) if cmp_.target else "")
    return m


def count_fsyncs(pids, seconds):
    """fsync + fdatasync calls made by the given processes (all their
    threads) in `seconds`, counted by perf's syscall tracepoints; None when
    perf cannot."""
    if not shutil.which("perf") or not pids:
        return None
    # perf refuses a list with a process that is gone (a short-lived
    # PostgreSQL backend): only those alive now
    pids = [p for p in pids if os.path.exists("/proc/%d" % p)]
    r = run(["perf", "stat", "-x", ",", "-e",
             "syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync",
             "-p", ",".join(str(p) for p in pids), "--", "sleep",
             str(seconds)], check=False, timeout=seconds + 60)
    total = 0
    seen = False
    for line in r.stderr.decode(errors="replace").splitlines():
        parts = line.split(",")
        if len(parts) > 2 and "sys_enter_f" in parts[2]:
            try:
                total += int(parts[0])
                seen = True
            except ValueError:
                return None
    return total if seen else None


def fsync_row(table, arm, conns, seconds, target=None):
    """Run arm under load while perf counts its server's fsyncs; target: the
    most fsyncs per answer that passes."""
    import threading
    pids = arm.pids()
    box = {}
    th = threading.Thread(target=lambda: box.update(
        n=count_fsyncs(pids, seconds)))
    th.start()
    time.sleep(0.2)
    r = arm.load(conns, max(1, seconds - 1))
    th.join()
    n = box.get("n")
    if n is None:
        table.add("a", "fsyncs per answer, %s, %d conns" % (arm.label, conns),
                  "not measured (perf syscall tracepoints unavailable)")
        return None
    per = n / r["ok"] if r["ok"] else float("inf")
    table.add("a", "fsyncs per answer, %s, %d conns" % (arm.label, conns),
              "%.2f (%d fsync/fdatasync for %d answers, perf)"
              % (per, n, r["ok"]), "< %g" % target if target else "",
              verdict(per < target) if target else "")
    return per


# ---------------------------------------------------------------------------
# the table

class Table:
    def __init__(self):
        self.rows = []

    def add(self, row, what, result, target="", verdict=""):
        self.rows.append((row, what, result, target, verdict))
        log("%s %s: %s %s %s" % (row, what, result, target, verdict))

    def markdown(self):
        out = ["| row | measured | result | target | |",
               "|---|---|---|---|---|"]
        for r in sorted(self.rows, key=lambda r: r[0]):
            out.append("| %s |" % " | ".join(r))
        return "\n".join(out)


def verdict(ok):
    return "pass" if ok else "short"


def rate_s(x):
    return "%.0f/s" % x


# ---------------------------------------------------------------------------
# the benchmark

harness_ca = None


def main():
    global harness_ca
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only-a", action="store_true",
                    help="only row a (the interleaved throughput "
                    "comparisons), not PostgreSQL, stored, CRL, memory")
    ap.add_argument("--only-ocsp", action="store_true",
                    help="only the OCSP row (o)")
    ap.add_argument("--only-token", action="store_true",
                    help="only the PKCS#11 token row (p)")
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "out",
                                                  "bench"))
    args = ap.parse_args()
    mode = "quick" if args.quick else "full"
    S = SIZES[mode]
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="certauth-bench-")
    if os.geteuid() == 0:
        os.chmod(work, 0o755)
    procs = Procs()
    table = Table()
    t_start = time.time()
    try:
        if args.only_ocsp:
            harness_ca = harness.TestCA(work)
            bench_ocsp(S, work, procs, table, harness_ca)
        elif args.only_token:
            harness_ca = harness.TestCA(work)
            csrs = make_csrs(work)[0]
            bench_token(S, work, procs, table, harness_ca, csrs, "Basic " +
                        base64.b64encode(("%s:%s" % (USER, PASSWORD))
                                         .encode()).decode())
        else:
            bench(S, mode, work, procs, table, args.only_a)
    finally:
        procs.stop_all()
        if not os.environ.get("CERTAUTH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.time() - t_start
    header = machine_header(mode, elapsed)
    text = header + "\n\n" + table.markdown() + "\n"
    print(text)
    with open(os.path.join(args.out, "results-%s.md" % mode), "w") as f:
        f.write(text)
    log("written %s" % os.path.join(args.out, "results-%s.md" % mode))


def version(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=10)
        return (r.stdout + r.stderr).decode(errors="replace").splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "?"


def machine_header(mode, elapsed):
    try:
        with open("/proc/cpuinfo") as f:
            cpu = [l.split(":", 1)[1].strip() for l in f
                   if l.startswith("model name")][0]
    except (OSError, IndexError):
        cpu = platform.processor()
    git = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                         capture_output=True).stdout.decode().strip()
    return ("mod_certauth benchmark (%s, %.0f s), %s UTC, commit %s\n"
            "machine: %d cores (%s), %s; %s; %s; %s; cfssl %s; %s; SQLite %s"
            % (mode, elapsed, time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
               git, os.cpu_count(), cpu, platform.platform(),
               version([APACHE, "-v"]).replace("Server version: ", ""),
               version(["openssl", "version"]), version(["wrk", "-v"]).split(
                   " [")[0],
               version(["cfssl", "version"]).replace("Version: ", ""),
               version(["hyperfine", "--version"]),
               version(["sqlite3", "--version"]).split(" ")[0]))


def bench(S, mode, work, procs, table, only_a=False):
    global harness_ca
    log("mode %s, work directory %s" % (mode, work))
    ca = harness.TestCA(work)
    harness_ca = ca
    auth = "Basic " + base64.b64encode(
        ("%s:%s" % (USER, PASSWORD)).encode()).decode()
    csrs, cfssl_bodies, first_csr = make_csrs(work)
    pem = sample_pem(ca)
    conns = S["conns"]
    dur = S["duration"]

    # --- a: enrollment throughput, interleaved comparisons ---------------
    static = procs.add(StaticApache(ca)).start()
    static.put("1k.bin", os.urandom(1024))
    mod = procs.add(BenchHttpd(ca)).start()
    cf = procs.add(Cfssl(ca, work)).start(first_csr)
    mod_arm = Arm("enroll, mod_certauth + SQLite (WAL, synchronous=FULL)",
                  mod.url, csrs, "POST", "/ca/enroll", "application/pkcs10",
                  auth, lambda: httpd_ticks(mod), lambda: httpd_pids(mod))
    cf_arm = Arm("sign, cfssl serve + SQLite certdb (WAL, "
                 "synchronous=FULL)", cf.url, cfssl_bodies, "POST",
                 "/api/v1/cfssl/sign", "application/json", None,
                 lambda: proc_ticks(cf.proc.pid), lambda: [cf.proc.pid])
    static_arm = Arm("GET 1 KB static file, Apache", static.url, None, "GET",
                     "/1k.bin", None, None, lambda: httpd_ticks(static),
                     lambda: httpd_pids(static))
    comparisons = [
        Comparison("mod_certauth / cfssl", mod_arm, cf_arm, target=1.5),
        Comparison("mod_certauth / Apache static 1 KB", mod_arm, static_arm,
                   target=0.7),
    ]
    for c in conns:
        for cmp_ in comparisons:
            rounds = cmp_.measure(c, S["rounds"], dur)
            report_comparison(table, cmp_, c, rounds)
    for c in conns:
        fsync_row(table, mod_arm, c, S["fsync_secs"], target=1.0)
        fsync_row(table, cf_arm, c, S["fsync_secs"])
    cpu = median(mod_arm.cpu_ms)
    table.add("a", "server CPU per enrollment, mod_certauth (median of all "
              "runs)", "%.2f ms" % cpu, "≤ 0.5 ms", verdict(cpu <= 0.5))
    stored = mod.rows()
    sent = mod_arm.ok_total
    cf_rows = cf.rows()
    cf_ok = cf_arm.ok_total
    jm = cf.journal_mode()
    table.add("a", "check: cfssl certdb journal mode after the run "
              "(PRAGMA journal_mode)", jm, "wal", "ok" if jm == "wal"
              else "MISMATCH")
    procs.items.remove(cf)
    cf.stop()

    ossl = OpensslCA(ca, work, "openssl-empty")
    secs = ossl.sign_loop(csrs, S["ossl_n"])
    ossl_rate = S["ossl_n"] / secs
    ossl_empty_ms = secs * 1000 / S["ossl_n"]
    table.add("a", "openssl ca, one process per certificate (%d, serial)"
              % S["ossl_n"], rate_s(ossl_rate))
    # the module's median over all its runs (both connection counts), not
    # interleaved with openssl ca, which also writes without fsync
    mid = median(mod_arm.rates)
    table.add("a", "mod_certauth (median of its runs, fsync) / openssl ca "
              "(one run, no fsync)", "%.1f×" % (mid / ossl_rate))
    # requests still in flight when wrk stops are answered (and stored)
    # but not counted by wrk: at most one per connection and run
    table.add("a", "check: certificates stored by mod_certauth / 201 answers",
              "%d / %d" % (stored, sent), "answers ≤ stored ≤ answers + %d "
              "in flight" % mod_arm.inflight,
              "ok" if sent <= stored <= sent + mod_arm.inflight
              else "MISMATCH")
    table.add("a", "check: certificates stored by cfssl / 200 answers",
              "%d / %d (+1 probe)" % (cf_rows, cf_ok), "the same",
              "ok" if cf_ok + 1 <= cf_rows <= cf_ok + 1 + cf_arm.inflight
              else "MISMATCH")
    procs.items.remove(mod)
    mod.cleanup()
    if only_a:
        return

    bench_pg(S, work, procs, table, ca, csrs, auth)

    # --- p: the CA key in a PKCS#11 token ------------------------------
    try:
        bench_token(S, work, procs, table, ca, csrs, auth)
    except Exception as e:  # reported in the table; the other rows run
        log("row p failed: %r" % e)
        table.add("p", "enroll with the CA key in a SoftHSM2 token",
                  "FAILED: %s" % str(e).splitlines()[0][:160])

    # --- b and c: stored certificates, CRLs -------------------------------
    crl_serve_done = False
    dbdir = os.path.join(work, "db")
    os.makedirs(dbdir, exist_ok=True)
    if os.geteuid() == 0:
        # SQLite makes its -wal and -shm files next to the database
        pw = pwd.getpwnam("www-data")
        os.chown(dbdir, pw.pw_uid, pw.pw_gid)
    kept = {}  # stored size -> (httpd, db): measured together below
    for n in sorted(set(S["stored"]) | set(S["crl"])):
        db = os.path.join(dbdir, "store-%d.db" % n)
        t0 = time.perf_counter()
        fill_store(db, n, pem)
        log("fixture: %d revoked certificates + audit in %.1f s"
            % (n, time.perf_counter() - t0))
        h = BenchHttpd(ca, db_path=db)
        procs.add(h).start()
        if n in S["crl"]:
            crl_row(S, h, n, table, static, auth)
            if not crl_serve_done:
                crl_serve(S, h, n, table, static)
                crl_serve_done = True
        if n in S["stored"]:
            kept[n] = (h, db)
        else:
            procs.items.remove(h)
            h.cleanup()
        if n in S["crl"]:
            gencrl_compare(S, work, ca, db, n, table)
        if n not in kept:
            remove_db(db)
    # b: the enroll load on every stored size in turn, round after round
    # (the order reversed every other round), so that the machine's load
    # weighs on all alike; cost = 1 / rate, ratios per round
    arms = {}
    for n, (h, db) in kept.items():
        arms[n] = Arm("enroll, %s stored" % human(n), h.url, csrs, "POST",
                      "/ca/enroll", "application/pkcs10", auth,
                      lambda h=h: httpd_ticks(h), lambda h=h: httpd_pids(h))
    sizes = list(S["stored"])
    top, base_n = sizes[-1], sizes[0]
    runs = {n: [] for n in sizes}
    loads = []
    for n in sizes:     # unmeasured, as Comparison.measure does
        arms[n].load(S["cost_conns"], 2)
    for i in range(S["rounds"]):
        loads.append(os.getloadavg()[0])
        for n in (sizes if i % 2 == 0 else list(reversed(sizes))):
            runs[n].append(arms[n].run(S["cost_conns"], dur))
    for n in sizes:
        costs = [1000.0 / r["rate"] if r["rate"] else float("inf")
                 for r in runs[n]]
        bad = sum(r["refused"] for r in runs[n])
        table.add("b", "cost per certificate, %s stored, %d conns"
                  % (human(n), S["cost_conns"]),
                  "%.2f ms (rounds %s)" % (median(costs), " ".join(
                      "%.2f" % c for c in costs))
                  + (" (%d not 2xx)" % bad if bad else ""))
    ratios = [(runs[base_n][i]["rate"] / runs[top][i]["rate"])
              if runs[top][i]["rate"] else float("inf")
              for i in range(S["rounds"])]
    ratio = median(ratios)
    table.add("b", "cost with %s stored / empty: median of %d per-round "
              "ratios" % (human(top), len(ratios)),
              "%.2f× (min %.2f, max %.2f; load %s)"
              % (ratio, min(ratios), max(ratios),
                 ", ".join("%.1f" % x for x in loads)),
              "≤ 1.2×", verdict(ratio <= 1.2))
    for n, (h, db) in kept.items():
        procs.items.remove(h)
        h.cleanup()
        remove_db(db)

    ossl_big = OpensslCA(ca, work, "openssl-index")
    ossl_big.fill_index(S["index_n"], revoked=False)
    secs = ossl_big.sign_loop(csrs, S["ossl_n"])
    big_ms = secs * 1000 / S["ossl_n"]
    table.add("b", "openssl ca per certificate, empty index.txt",
              "%.2f ms" % ossl_empty_ms)
    table.add("b", "openssl ca per certificate, %s-line index.txt"
              % human(S["index_n"]), "%.2f ms (%.1f× empty)"
              % (big_ms, big_ms / ossl_empty_ms))
    shutil.rmtree(ossl_big.dir, ignore_errors=True)

    # --- d: memory ---------------------------------------------------------
    rss_row(S, work, procs, table, ca, csrs, auth)

    # --- o: OCSP ---------------------------------------------------------
    bench_ocsp(S, work, procs, table, ca)


def crl_row(S, h, n, table, static, auth):
    """The first GET /ca/crl on a fresh store makes the CRL in the server:
    read the entries, build, sign, store, write the cache file."""
    t0 = time.perf_counter()
    status, headers, body = h.get("/ca/crl", timeout=600)
    secs = time.perf_counter() - t0
    if status != 200:
        raise RuntimeError("GET /ca/crl: %d %s" % (status, body[:300]))
    r = run(["openssl", "crl", "-inform", "DER", "-noout", "-text"],
            input=body)
    entries = r.stdout.decode().count("Serial Number:")
    h.crl_der = body
    target = verdict(secs <= 2.0) if n >= 1000000 else ""
    table.add("c", "CRL made by mod_certauth (first GET /ca/crl), %s revoked"
              % human(n), "%.2f s (%d entries, %.1f MB)"
              % (secs, entries, len(body) / 1e6),
              "≤ 2 s for 1M" if n >= 1000000 else "", target)


def crl_serve(S, h, n, table, static):
    static.put("crl.crl", h.crl_der)
    c = S["cost_conns"]
    mod = Arm("GET /ca/crl (%s entries, %.1f MB), mod_certauth"
              % (human(n), len(h.crl_der) / 1e6), h.url, None, "GET",
              "/ca/crl", None, None, lambda: httpd_ticks(h),
              lambda: httpd_pids(h))
    st = Arm("the same bytes as a static file, Apache", static.url, None,
             "GET", "/crl.crl", None, None, lambda: httpd_ticks(static),
             lambda: httpd_pids(static))
    cmp_ = Comparison("CRL serving, mod_certauth / static", mod, st,
                      target=0.9)
    report_comparison(table, cmp_, c, cmp_.measure(c, S["rounds"],
                                                   S["duration"]), row="c")


def hyperfine(cmds, runs, work):
    out = os.path.join(work, "hyperfine.json")
    cmd = ["hyperfine", "--runs", str(runs), "--export-json", out,
           "--style", "none"]
    run(cmd + cmds, timeout=7200)
    with open(out) as f:
        data = json.load(f)
    return [r["mean"] for r in data["results"]]


def gencrl_compare(S, work, ca, db, n, table):
    """certauth-admin gencrl on the same store against `openssl ca -gencrl`
    on an index.txt with as many revoked entries."""
    ossl = OpensslCA(ca, work, "openssl-crl")
    ossl.fill_index(n, revoked=True)
    ours = ("%s gencrl --db sqlite3:%s --ca-cert %s --ca-key %s --out %s"
            % (ADMIN, db, ca.cert, ca.key, os.path.join(work, "ours.crl")))
    theirs = ("openssl ca -gencrl -config %s -out %s"
              % (ossl.cnf, os.path.join(work, "theirs.crl")))
    t_ours, t_theirs = hyperfine([ours, theirs], S["gencrl_runs"], work)
    table.add("c", "certauth-admin gencrl, %s revoked (mean of %d)"
              % (human(n), S["gencrl_runs"]), "%.2f s" % t_ours,
              "≤ 2 s for 1M" if n >= 1000000 else "",
              verdict(t_ours <= 2.0) if n >= 1000000 else "")
    table.add("c", "openssl ca -gencrl, %s-line index.txt (mean of %d)"
              % (human(n), S["gencrl_runs"]), "%.2f s (%.1f× ours)"
              % (t_theirs, t_theirs / t_ours if t_ours else 0))
    shutil.rmtree(ossl.dir, ignore_errors=True)


def enroll_count(h, csrs, auth, n, conns=8):
    """At least n enrollments, in wrk runs of a few seconds (wrk stops by
    time, not by count)."""
    total = {"ok": 0, "failed": 0}
    chunk = 3
    while total["ok"] < n:
        r = wrk(h.url, csrs, "POST", "/ca/enroll", "application/pkcs10",
                auth, conns, chunk)
        total["ok"] += r["ok"]
        total["failed"] += r["failed"]
        if r["ok"] == 0:
            raise RuntimeError("no enrollment succeeded: %s" % r)
        left = n - total["ok"]
        chunk = max(1, min(60, int(left / r["rate"]) + 1))
    return total


# glibc gives every thread that allocates its own malloc arena, and APR keeps
# up to MaxMemFree (2 MB) of freed blocks per allocator: both fill as more of
# the child's threads take turns, which looks like growth but is bounded.
# The second run caps both, as an operator can (MALLOC_ARENA_MAX in
# /etc/apache2/envvars, MaxMemFree in apache2.conf), to tell that from a leak.
RSS_TUNED_ENV = {"MALLOC_ARENA_MAX": "1"}
RSS_TUNED_CONF = "MaxMemFree 64\n"


def rss_row(S, work, procs, table, ca, csrs, auth):
    rss_run(S, procs, table, ca, csrs, auth, "", {})
    rss_run(S, procs, table, ca, csrs, auth, RSS_TUNED_CONF, RSS_TUNED_ENV)


def rss_run(S, procs, table, ca, csrs, auth, conf, env):
    h = BenchHttpd(ca, one_child=True)
    if conf:
        with open(h.conf) as f:
            text = f.read()
        with open(h.conf, "w") as f:
            f.write(text.replace("LogLevel warn\n", "LogLevel warn\n" + conf,
                                 1))
    procs.add(h)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        h.start()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    warm = enroll_count(h, csrs, auth, S["rss_warm"])
    kids = h.children()
    if len(kids) != 1:
        raise RuntimeError("expected one httpd child, found %s" % kids)
    before = rss_kb(kids[0])
    t0 = time.perf_counter()
    r1 = enroll_count(h, csrs, auth, S["rss_n"] // 2)
    half = rss_kb(kids[0])
    r2 = enroll_count(h, csrs, auth, S["rss_n"] - r1["ok"])
    secs = time.perf_counter() - t0
    kids2 = h.children()
    if kids2 != kids:
        raise RuntimeError("the httpd child changed during the run: %s -> %s"
                           % (kids, kids2))
    after = rss_kb(kids[0])
    n = r1["ok"] + r2["ok"]
    failed = r1["failed"] + r2["failed"]
    growth = (after["VmRSS"] - before["VmRSS"]) / 1024.0
    tuned = ""
    if env or conf:
        tuned = "; %s, %s" % (
            " ".join("%s=%s" % kv for kv in sorted(env.items())),
            conf.strip())
    table.add("d", "httpd child RSS before / after %s more enrollments "
              "(one child, 16 threads; after %s warm-up%s)"
              % (human(n), human(warm["ok"]), tuned),
              "%.1f MB / %.1f MB: %+.2f MB (first half %+.2f, second half "
              "%+.2f), of which anonymous %+.2f MB (%.0f/s%s)"
              % (before["VmRSS"] / 1024.0, after["VmRSS"] / 1024.0, growth,
                 (half["VmRSS"] - before["VmRSS"]) / 1024.0,
                 (after["VmRSS"] - half["VmRSS"]) / 1024.0,
                 (after["RssAnon"] - before["RssAnon"]) / 1024.0,
                 n / secs,
                 ", %d not 2xx" % failed if failed else ""),
              "≤ 2 MB growth",
              verdict(growth <= 2.0))
    procs.items.remove(h)
    h.cleanup()


def bench_pg(S, work, procs, table, ca, csrs, auth):
    want = os.environ.get("BENCH_PG", "")
    what = "enroll, mod_certauth + PostgreSQL, %d conns" % S["cost_conns"]
    if want == "0":
        table.add("a", what, "skipped (BENCH_PG=0)")
        return
    if not os.path.exists(PG_BIN + "/initdb"):
        table.add("a", what, "skipped (postgresql-15 not installed)")
        return
    try:
        pg = procs.add(Postgres(work))
    except Exception as e:
        table.add("a", what, "skipped (PostgreSQL did not start: %s)"
                  % str(e).splitlines()[0][:80])
        return
    h = None
    try:
        h = BenchHttpd(ca, db_driver="pgsql", db_params=pg.params)
        procs.add(h)
        try:
            h.start()
        except RuntimeError as e:
            table.add("a", what, "skipped (httpd with DBDriver pgsql did not "
                      "start: %s)" % str(e).splitlines()[0][:80])
            return
        with open(os.path.join(csrs[0], "0"), "rb") as f:
            status, _, body = h.enroll(f.read())
        if status != 201:
            try:
                why = json.loads(body)["error"]
            except (ValueError, KeyError, TypeError):
                why = body[:60].decode(errors="replace").strip()
            table.add("a", what, "skipped (the module does not enroll on "
                      "PostgreSQL here: %d %s)" % (status, why))
            return
        r = wrk(h.url, csrs, "POST", "/ca/enroll", "application/pkcs10",
                auth, S["cost_conns"], S["duration"])
        rows = pg.scalar("SELECT COUNT(*) FROM certauth_certs")
        table.add("a", what, "%s; %s stored / %d answers"
                  % (fmt(r), rows, r["ok"] + 1))
        # PostgreSQL's own group commit: concurrent commits of its backends
        # share WAL flushes (commit_delay / commit_siblings can widen that)
        pg_arm = Arm("enroll, mod_certauth + PostgreSQL (server processes' "
                     "fsyncs; commit_delay %s, commit_siblings %s)"
                     % (pg.scalar("SHOW commit_delay"),
                        pg.scalar("SHOW commit_siblings")),
                     h.url, csrs, "POST", "/ca/enroll", "application/pkcs10",
                     auth, lambda: 0, pg.pids)
        time.sleep(1)  # the backends of the SHOW queries are gone
        fsync_row(table, pg_arm, S["cost_conns"], S["fsync_secs"])
    finally:
        if h:
            procs.items.remove(h)
            h.cleanup()
        procs.items.remove(pg)
        pg.stop()



# ---------------------------------------------------------------------------
# o: OCSP (issue 17), a separate function so that it merges with the
# interleaved restructuring of the rows above

OCSP_HTTP_VHOST = """
Listen 127.0.0.1:{hp}
Listen [::1]:{hp}
<VirtualHost 127.0.0.1:{hp} [::1]:{hp}>
    ServerName 127.0.0.1
    AllowEncodedSlashes NoDecode
    MergeSlashes Off
    DBDriver sqlite3
    DBDParams "{db}"
    CertAuthCACertificateFile {cert}
    CertAuthCAKeyFile {key}
    CertAuthBaseURL {base}
    CertAuthOCSP On
    <Location /ca>
        CertAuth On
        Require all granted
    </Location>
    Alias /static/ "{static}/"
    <Directory "{static}">
        Require all granted
    </Directory>
</VirtualHost>
"""


def ab(url, body, conns, duration, nproc=1):
    """ApacheBench (apache2-utils) for the new-connection transport: HTTP/1.0
    POST of the file `body` (application/ocsp-request; GET when None)
    without keep-alive,
    so every request opens a connection and the server closes it, as `openssl
    ocsp` does with every client.  nproc ab processes (one ab is one thread)
    of conns/nproc connections each run side by side.  Returns a dict like
    wrk()'s: answers that are 2xx count; "Length" failures are not errors
    here (ab compares every body's length with the first one's, and an
    ECDSA signature's DER length varies by a byte or two)."""
    per = max(1, conns // nproc)
    # ab allocates a record per request (-n) up front; -t first, then -n
    limit = ["-t", str(duration), "-n", str(max(200000, 60000 * duration))]
    runs = []
    for _ in range(nproc):
        out = tempfile.TemporaryFile()
        cmd = ["ab", "-q", "-r", "-s", "30"] + limit + ["-c", str(per)]
        if body:
            cmd += ["-p", body, "-T", "application/ocsp-request"]
        cmd.append(url)
        runs.append((subprocess.Popen(cmd, stdout=out,
                                      stderr=subprocess.STDOUT), out))
    res = dict(ok=0, rate=0.0, refused=0, sockerr=0, body_bytes=0,
               secs=0.0, length_diff=0)
    errors = []
    cpu = 0.0
    for p, out in runs:
        # wait4: the rusage of this ab alone (the client's CPU)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        cpu += ru.ru_utime + ru.ru_stime
        out.seek(0)
        text = out.read().decode(errors="replace")
        out.close()

        def num(pat, default=None):
            m = re.search(pat, text)
            if m:
                return m.group(1)
            if default is None:
                raise RuntimeError("ab printed no %r:\n%s" % (pat, text))
            return default
        done = int(num(r"Complete requests:\s+(\d+)"))
        secs = float(num(r"Time taken for tests:\s+([\d.]+)"))
        non2xx = int(num(r"Non-2xx responses:\s+(\d+)", "0"))
        html = int(num(r"HTML transferred:\s+(\d+)"))
        m = re.search(r"\(Connect: (\d+), Receive: (\d+), Length: (\d+), "
                      r"Exceptions: (\d+)\)", text)
        conn_e, recv_e, len_e, exc_e = (int(x) for x in m.groups()) if m \
            else (0, 0, 0, 0)
        ok = max(0, done - non2xx - conn_e - recv_e - exc_e)
        res["ok"] += ok
        res["refused"] += non2xx
        res["sockerr"] += conn_e + recv_e + exc_e
        res["length_diff"] += len_e
        res["body_bytes"] += html
        res["secs"] = max(res["secs"], secs)
        if p.returncode:
            errors.append("ab exit %d" % p.returncode)
    # the answers of all ab over the time of the slowest (they start
    # together; one that ends first leaves the other alone for a moment)
    res["rate"] = res["ok"] / res["secs"] if res["secs"] else 0.0
    res["body_mean"] = res["body_bytes"] / res["ok"] if res["ok"] else 0
    res["client_cpu"] = cpu
    res["failed"] = res["refused"]
    log("ab x%d %s %s c=%d: %.0f ok/s (%d ok, %d not 2xx, %d socket "
        "errors, %d other lengths, %.0f B per body)%s"
        % (nproc, "POST" if body else "GET", url, conns, res["rate"],
           res["ok"], res["refused"],
           res["sockerr"], res["length_diff"], res["body_mean"],
           " " + ", ".join(errors) if errors else ""))
    return res


def proc_children(pid):
    """PIDs whose parent is pid."""
    out = []
    for d in os.listdir("/proc"):
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


def children_cpu_s():
    import resource
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


class OcspArm:
    """One load of the OCSP row: a label, a function (no arguments) that
    runs the load and returns wrk()'s or ab()'s dict, and the CPU ticks of
    the server it loads.  Each run records the rate, the server's CPU per
    answer and the client's (the load generator's rusage, reaped by this
    process) per answer and in cores."""

    def __init__(self, label, load, ticks):
        self.label = label
        self.load = load
        self.ticks = ticks
        self.runs = []

    def run(self):
        t0, c0, w0 = self.ticks(), children_cpu_s(), time.time()
        r = self.load()
        t1, c1, w1 = self.ticks(), children_cpu_s(), time.time()
        # a load that starts its own server measures it itself
        ticks = r.get("server_ticks", t1 - t0)
        wall = r.get("server_wall", w1 - w0)
        client = r.get("client_cpu", c1 - c0)
        ok = r["ok"]
        # no ticks at all: the server's processes could not be read
        r["cpu_ms"] = (ticks * 1000.0 / CLK_TCK / ok if ok and ticks > 0
                       else float("inf"))
        r["client_ms"] = client * 1000.0 / ok if ok else float("inf")
        r["client_cores"] = client / wall
        r["server_cores"] = ticks / CLK_TCK / wall
        self.runs.append(r)
        return r


def perf_profile(base, pids, seconds, load):
    """perf record (call graphs) of the processes pids while load() runs;
    writes base.txt: the share of samples by shared object and by symbol
    (self time), and by caller chain."""
    data = base + ".data"
    rec = subprocess.Popen(
        ["perf", "record", "-F", "299", "--call-graph", "dwarf,16384",
         "-o", data, "-p",
         ",".join(str(p) for p in pids), "--", "sleep", str(seconds + 1)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    load()
    rec.wait(seconds + 120)
    out = []
    for args in (["--sort", "dso", "-g", "none"],
                 ["--sort", "dso,sym", "-g", "none", "--percent-limit",
                  "0.7"],
                 ["--children", "--sort", "sym", "-g", "none",
                  "--percent-limit", "1.5"]):
        r = run(["perf", "report", "-i", data, "--stdio"]
                + (["--no-children"] if "--children" not in args else [])
                + args, check=False)
        out.append(r.stdout.decode(errors="replace"))
    with open(base + ".txt", "w") as f:
        f.write("\n".join(out))
    log("profile written: %s.txt" % base)


class OsslResponder:
    """`openssl ocsp -index` as a responder (-multi n: n processes).

    -multi: the parent calls setpgid(0, 0) first (apps/lib/http_server.c,
    spawn_loop) and exits with status 1 when that fails, which it does for a
    session leader (EPERM; the message goes to syslog only): so it runs in a
    process group of its own, not in a new session.  SIGTERM to the group
    ends the children, and the parent then ends itself (after a second).

    Started afresh for every load: a client that closes a connection before
    sending a request line (ab does so with the connections it has open when
    its time is up) leaves the process that accepted it reading EOF forever
    at 100% CPU, answering nobody (OpenSSL issue #31129, also #23934, open
    in 3.0.19): a second load against the same processes stalls."""

    def __init__(self, odir, rsigner, cacert, probe_cert, multi):
        self.odir = odir
        self.cacert = cacert
        self.probe_cert = probe_cert
        self.port = harness.free_port()
        # it listens on [::] with IPV6_V6ONLY; the module's plain-HTTP host
        # listens on [::1] too, so both are loaded over IPv6 loopback
        self.url = "http://[::1]:%d/" % self.port
        self.cmd = ["openssl", "ocsp", "-index",
                    os.path.join(odir, "index.txt"), "-port", str(self.port),
                    "-rsigner", rsigner, "-rkey", rsigner, "-CA", cacert,
                    "-nmin", "60", "-resp_key_id", "-ignore_err"]
        if multi > 1:
            self.cmd += ["-multi", str(multi)]
        self.proc = None

    def start(self):
        with open(os.path.join(self.odir, "openssl-ocsp.log"), "ab") as logf:
            self.proc = subprocess.Popen(
                self.cmd, stdin=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                stdout=logf, process_group=0)
        deadline = time.time() + 15
        out = ""
        while time.time() < deadline and self.proc.poll() is None:
            good, _, out = ocsp_answer(self.url, self.cacert,
                                       self.probe_cert, False)
            if good:
                return self
            time.sleep(0.2)
        with open(os.path.join(self.odir, "openssl-ocsp.log"), "rb") as f:
            raise RuntimeError("openssl ocsp -index does not answer (exit "
                               "%s): %s%s" % (self.proc.poll(), out, f.read()
                                              .decode(errors="replace")))

    def ticks(self):
        if not self.proc:
            return 0
        pid = self.proc.pid
        return proc_ticks(pid, True) + sum(proc_ticks(c)
                                           for c in proc_children(pid))

    def load(self, body, conns, duration, nproc=1):
        """ab against a fresh responder."""
        self.stop()
        self.start()
        t0, w0 = self.ticks(), time.time()
        r = ab(self.url, body, conns, duration, nproc)
        r["server_ticks"] = self.ticks() - t0
        r["server_wall"] = time.time() - w0
        return r

    def stop(self):
        if not self.proc:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except OSError:
            pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(15)
        self.proc = None


def ocsp_answer(url, cafile, certfile, nonce):
    """`openssl ocsp` as a client against url: (status line ok, nonce
    echoed) for one certificate."""
    cmd = ["openssl", "ocsp", "-issuer", cafile, "-cert", certfile,
           "-url", url, "-CAfile", cafile]
    cmd += ["-nonce"] if nonce else ["-no_nonce"]
    r = run(cmd, check=False)
    out = (r.stdout + r.stderr).decode(errors="replace")
    return (": good" in out and "Response verify OK" in out,
            nonce and "WARNING: no nonce" not in out
            and "Nonce Verify error" not in out, out)


def post_der(url, reqfile):
    with open(reqfile, "rb") as f:
        body = f.read()
    r = run(["curl", "-s", "-g", "--data-binary", "@-", "-H",
             "Content-Type: application/ocsp-request", url], input=body)
    return r.stdout


def bench_ocsp(S, work, procs, table, ca, rounds=None):
    """OCSP responses/s (issue 17 item 7), two transports, all arms run in
    turn round by round (order reversed every other round):

    - keep-alive, plain HTTP (wrk, 16 connections): mod_certauth's
      pre-produced responses (no nonce) against the same httpd serving a
      static file of the same bytes; nonce responses for information;
    - a new connection per request, HTTP/1.0 (ab, see ab()): mod_certauth
      (pre-produced and nonce) against `openssl ocsp -index` (OpenSSL's own
      responder: the same certificates in its index.txt, the module's own
      responder key and certificate, byKey responder ID, `-multi` one
      process per core, as httpd uses both cores), and the static file for
      information.  `openssl ocsp` answers HTTP/1.0 and closes every
      connection, so this is the transport both responders can share.

    Reported: each arm's median rate with its rounds, the server's CPU per
    answer (/proc of its processes), the client's CPU per answer and in
    cores (to see whether the client is the bottleneck), and the median of
    the per-round ratios with their min-max and the load average."""
    n = 32
    dur = max(3, S["duration"] // 2)
    rounds = rounds or (3 if S is SIZES["quick"] else 5)
    conns = S["cost_conns"]
    multi = int(os.environ.get("BENCH_OCSP_MULTI", str(os.cpu_count() or 2)))
    odir = os.path.join(work, "ocsp")
    static_dir = os.path.join(odir, "static")
    os.makedirs(static_dir, exist_ok=True)
    if os.geteuid() == 0:
        os.chmod(odir, 0o755)
    hp = harness.free_port()
    h = BenchHttpd(ca)
    h.vhost_conf += "\n    CertAuthOCSP On\n    CertAuthOCSPURL http://127.0.0.1:%d" \
                   "/ca/ocsp\n" % hp
    h.write_conf()
    # the plain-HTTP host after BenchHttpd's own (it edits the one vhost)
    with open(h.conf, "a") as f:
        f.write(OCSP_HTTP_VHOST.format(hp=hp, db=h.db, cert=ca.cert,
                                       key=ca.key, base=h.base,
                                       static=static_dir))
    procs.add(h).start()
    url = "http://127.0.0.1:%d" % hp
    url6 = "http://[::1]:%d" % hp

    # certificates issued by the module, and the same in an index.txt
    from cryptography import x509 as cx509
    from cryptography.hazmat.primitives import hashes as chashes
    from cryptography.hazmat.primitives import serialization as cser
    from cryptography.hazmat.primitives.asymmetric import ec as cec
    from cryptography.x509.oid import NameOID as CNameOID
    auth = "Basic " + base64.b64encode(
        ("%s:%s" % (USER, PASSWORD)).encode()).decode()
    certs = []
    index = []
    for i in range(n):
        key = cec.generate_private_key(cec.SECP256R1())
        csr = cx509.CertificateSigningRequestBuilder().subject_name(
            cx509.Name([cx509.NameAttribute(CNameOID.COMMON_NAME,
                                            "ocsp%d" % i)])).sign(
            key, chashes.SHA256())
        st, hd, body = h.request("POST", "/ca/enroll",
                                 body=csr.public_bytes(cser.Encoding.PEM),
                                 headers={"Content-Type":
                                          "application/pkcs10",
                                          "Authorization": auth})
        if st != 201:
            raise RuntimeError("enroll for the OCSP bench: %d %s"
                               % (st, body[:300]))
        path = os.path.join(odir, "c%d.pem" % i)
        with open(path, "wb") as f:
            f.write(body)
        certs.append(path)
        c = cx509.load_pem_x509_certificate(body)
        index.append("V\t%s\t\t%X\tunknown\t/CN=ocsp%d\n" % (
            asn1_time(int(time.time()) + 86400), c.serial_number, i))
    with open(os.path.join(odir, "index.txt"), "w") as f:
        f.write("".join(index))
    with open(os.path.join(odir, "index.txt.attr"), "w") as f:
        f.write("unique_subject = no\n")

    # request bodies: one per certificate without nonce, and with nonces
    plain, nonce = os.path.join(odir, "plain"), os.path.join(odir, "nonce")
    os.makedirs(plain)
    os.makedirs(nonce)
    for i, c in enumerate(certs):
        run(["openssl", "ocsp", "-issuer", ca.cert, "-cert", c, "-no_nonce",
             "-reqout", os.path.join(plain, str(i))])
        run(["openssl", "ocsp", "-issuer", ca.cert, "-cert", c,
             "-reqout", os.path.join(nonce, str(i))])
    # warm the cache; one response's bytes as the static file
    for i in range(n):
        resp = post_der(url + "/ca/ocsp", os.path.join(plain, str(i)))
    size = len(resp)
    with open(os.path.join(static_dir, "resp.der"), "wb") as f:
        f.write(resp)
    os.chmod(os.path.join(static_dir, "resp.der"), 0o644)

    # OpenSSL's responder with the module's own responder key and
    # certificate (see OsslResponder)
    rfile = [f for f in os.listdir(os.path.join(h.root, "run", "certauth"))
             if f.endswith("-responder.pem")]
    if not rfile:
        raise RuntimeError("no responder certificate in the runtime dir")
    # a copy of its own, read at every start
    rsigner = os.path.join(odir, "responder.pem")
    shutil.copy(os.path.join(h.root, "run", "certauth", rfile[0]), rsigner)
    os.chmod(rsigner, 0o600)
    ossl = procs.add(OsslResponder(odir, rsigner, ca.cert, certs[0], multi))
    ossl.start()
    ourl = ossl.url
    nkids = len(proc_children(ossl.proc.pid))

    # checks: both answer good, echo the nonce, sign nonce requests per
    # request (the same request twice gets two signatures: ECDSA is
    # randomized) and the module answers the same bytes without nonce
    checks = []
    for name, u in (("mod_certauth", url6 + "/ca/ocsp"),
                    ("openssl ocsp", ourl)):
        g1, _, o1 = ocsp_answer(u, ca.cert, certs[1], False)
        g2, echoed, o2 = ocsp_answer(u, ca.cert, certs[1], True)
        a = post_der(u, os.path.join(nonce, "1"))
        b = post_der(u, os.path.join(nonce, "1"))
        c1 = post_der(u, os.path.join(plain, "1"))
        c2 = post_der(u, os.path.join(plain, "1"))
        ok = g1 and g2 and echoed and a != b
        checks.append(ok)
        table.add("o", "check: %s over [::1] answers good (openssl ocsp "
                  "client, verified), echoes the nonce, signs the same nonce "
                  "request anew each time" % name,
                  "good %s, nonce %s, two nonce answers %s; no-nonce answers "
                  "%s; %d / %d B (no nonce / nonce)"
                  % (g1 and g2, "echoed" if echoed else "MISSING",
                     "differ" if a != b else "IDENTICAL",
                     "identical" if c1 == c2 else "differ", len(c1), len(a)),
                  "", "ok" if ok else "MISMATCH")
        if not ok:
            log("%s check output:\n%s\n%s" % (name, o1, o2))

    ka_cached = OcspArm(
        "OCSP pre-produced (no nonce), mod_certauth, keep-alive (wrk %d "
        "conns)" % conns,
        lambda: wrk(url, (plain, n), "POST", "/ca/ocsp",
                    "application/ocsp-request", None, conns, dur),
        lambda: httpd_ticks(h))
    ka_static = OcspArm(
        "GET static file of the same bytes (%d B), the same httpd, "
        "keep-alive (wrk %d conns)" % (size, conns),
        lambda: wrk(url, None, "GET", "/static/resp.der", None, None, conns,
                    dur),
        lambda: httpd_ticks(h))
    ka_nonce = OcspArm(
        "OCSP nonce (signed per request), mod_certauth, keep-alive (wrk %d "
        "conns)" % conns,
        lambda: wrk(url, (nonce, n), "POST", "/ca/ocsp",
                    "application/ocsp-request", None, conns, dur),
        lambda: httpd_ticks(h))
    pf, nf = os.path.join(plain, "0"), os.path.join(nonce, "0")
    how = "new connection per request (ab, %d conns)" % conns
    nc_cached = OcspArm(
        "OCSP pre-produced (no nonce), mod_certauth, " + how,
        lambda: ab(url6 + "/ca/ocsp", pf, conns, dur),
        lambda: httpd_ticks(h))
    nc_ossl = OcspArm(
        "OCSP no nonce, openssl ocsp -index -multi %d, %s" % (multi, how),
        lambda: ossl.load(pf, conns, dur), ossl.ticks)
    nc_nonce = OcspArm(
        "OCSP nonce, mod_certauth, " + how,
        lambda: ab(url6 + "/ca/ocsp", nf, conns, dur),
        lambda: httpd_ticks(h))
    nc_ossl_nonce = OcspArm(
        "OCSP nonce, openssl ocsp -index -multi %d, %s" % (multi, how),
        lambda: ossl.load(nf, conns, dur), ossl.ticks)
    # the static file over the same transport (GET: Apache's default
    # handler refuses a POST to a file)
    nc_static = OcspArm(
        "GET static file of the same bytes, the same httpd, " + how,
        lambda: ab(url6 + "/static/resp.der", None, conns, dur),
        lambda: httpd_ticks(h))
    # is one ab the bottleneck?  The same load from two ab processes (it
    # cannot be used against `openssl ocsp`: the first ab to stop leaves
    # it dead for the other, see OsslResponder)
    nc_cached2 = OcspArm(
        "OCSP pre-produced (no nonce), mod_certauth, new connection per "
        "request, two ab of %d conns" % (conns // 2),
        lambda: ab(url6 + "/ca/ocsp", pf, conns, dur, 2),
        lambda: httpd_ticks(h))
    order = [ka_cached, ka_static, ka_nonce, nc_cached, nc_ossl, nc_nonce,
             nc_ossl_nonce, nc_static, nc_cached2]
    loads = []
    for rnd in range(rounds):
        loads.append(os.getloadavg()[0])
        log("OCSP round %d of %d (load %.2f)" % (rnd + 1, rounds, loads[-1]))
        for arm in (order if rnd % 2 == 0 else list(reversed(order))):
            arm.run()
    pdir = os.environ.get("BENCH_OCSP_PROFILE")
    if pdir:
        os.makedirs(pdir, exist_ok=True)

        def fresh_ossl_pids():
            ossl.stop()
            ossl.start()
            return proc_children(ossl.proc.pid)
        for name, pids, load in (
                ("mod_certauth-nonce-ab", h.children,
                 lambda: ab(url6 + "/ca/ocsp", nf, conns, dur)),
                ("mod_certauth-cached-ab", h.children,
                 lambda: ab(url6 + "/ca/ocsp", pf, conns, dur)),
                ("mod_certauth-cached-wrk", h.children, ka_cached.load),
                ("mod_certauth-nonce-wrk", h.children, ka_nonce.load),
                ("static-ab", h.children,
                 lambda: ab(url6 + "/static/resp.der", None, conns, dur)),
                ("openssl-ocsp-nonce-ab", fresh_ossl_pids,
                 lambda: ab(ossl.url, nf, conns, dur))):
            perf_profile(os.path.join(pdir, name), pids(), dur, load)
    procs.items.remove(ossl)
    ossl.stop()
    procs.items.remove(h)
    h.cleanup()

    def med(xs):
        xs = [x for x in xs if x != float("inf")]
        return median(xs) if xs else float("nan")
    for arm in order:
        rs = arm.runs
        extra = ""
        if "length_diff" in rs[0]:
            extra = "; %.0f B per answer" % med([r["body_mean"] for r in rs])
        table.add("o", arm.label,
                  "%.0f/s (rounds %s); server CPU %.3f ms/answer (%.2f "
                  "cores); client CPU %.3f ms/answer (%.2f cores)%s%s"
                  % (med([r["rate"] for r in rs]),
                     " ".join("%.0f" % r["rate"] for r in rs),
                     med([r["cpu_ms"] for r in rs]),
                     med([r["server_cores"] for r in rs]),
                     med([r["client_ms"] for r in rs]),
                     med([r["client_cores"] for r in rs]), extra,
                     notes([{"x": r} for r in rs], "x")))
    lt = ", ".join("%.1f" % x for x in loads)

    def ratio_row(what, a, b, key="rate", target=None, invert=False):
        rs = []
        for ra, rb in zip(a.runs, b.runs):
            x, y = ra[key], rb[key]
            if invert:
                x, y = y, x
            if y and x != float("inf") and y != float("inf"):
                rs.append(x / y)
        if not rs:
            table.add("o", what, "not measured")
            return None
        m = median(rs)
        table.add("o", "%s: median of %d per-round ratios" % (what, len(rs)),
                  "%.2f× (min %.2f, max %.2f; load %s)"
                  % (m, min(rs), max(rs), lt),
                  "≥ %g×" % target if target else "",
                  verdict(m >= target) if target else "")
        return m
    ratio_row("OCSP pre-produced / static file, keep-alive", ka_cached,
              ka_static, target=0.8)
    ratio_row("OCSP pre-produced, mod_certauth / openssl ocsp, new "
              "connection per request", nc_cached, nc_ossl, target=10)
    ratio_row("OCSP nonce, mod_certauth / openssl ocsp nonce, new "
              "connection per request", nc_nonce, nc_ossl_nonce, target=10)
    ratio_row("server CPU per answer, openssl ocsp / mod_certauth "
              "pre-produced (new connection)", nc_cached, nc_ossl,
              key="cpu_ms", invert=True)
    ratio_row("server CPU per answer, openssl ocsp / mod_certauth nonce "
              "(new connection)", nc_nonce, nc_ossl_nonce, key="cpu_ms",
              invert=True)
    ratio_row("OCSP pre-produced / static file, new connection per request",
              nc_cached, nc_static)
    ratio_row("client check: OCSP pre-produced, two ab / one ab",
              nc_cached2, nc_cached)
    # each at its best transport (`openssl ocsp` has only the one)
    ratio_row("OCSP pre-produced keep-alive (wrk) / openssl ocsp no nonce "
              "(ab)", ka_cached, nc_ossl)
    # what 10× openssl ocsp asks of httpd: Apache's own static file against
    # OpenSSL's responder, on the same rounds
    ratio_row("ceiling: GET static file keep-alive (wrk) / openssl ocsp no "
              "nonce (ab)", ka_static, nc_ossl)
    ratio_row("ceiling: GET static file, new connection / openssl ocsp no "
              "nonce, new connection (ab)", nc_static, nc_ossl)
    table.add("o", "openssl ocsp responder processes (-multi %d)" % multi,
              "%d children of one parent; %s" % (nkids, version(
                  ["openssl", "version"])))



# ---------------------------------------------------------------------------
# p: the CA key in a PKCS#11 token (issue 18), a separate function

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
TOKEN_PIN = "4711-bench"
# what each side's server processes do per answer besides the CPU time:
# system calls, and among them the ones SoftHSM's file object store makes
# (it re-reads and locks its token files)
SYSCALL_EVENTS = ("raw_syscalls:sys_enter", "syscalls:sys_enter_openat",
                  "syscalls:sys_enter_fcntl", "syscalls:sys_enter_flock",
                  "syscalls:sys_enter_newfstatat", "syscalls:sys_enter_read",
                  "syscalls:sys_enter_futex")


def softhsm_token(work, ca):
    """A SoftHSM2 token in work/softhsm holding the CA's own key (the
    private key and its public half, label cakey, id 01), imported with
    pkcs11-tool; the files handed to www-data (the httpd children open the
    token).  Returns (SOFTHSM2_CONF, URI, PIN file)."""
    root = os.path.join(work, "softhsm")
    tokens = os.path.join(root, "tokens")
    os.makedirs(tokens)
    conf = os.path.join(root, "softhsm2.conf")
    with open(conf, "w") as f:
        f.write("directories.tokendir = %s\nobjectstore.backend = file\n"
                "log.level = ERROR\n" % tokens)
    env = dict(os.environ, SOFTHSM2_CONF=conf)
    run(["softhsm2-util", "--init-token", "--free", "--label", "ca",
         "--pin", TOKEN_PIN, "--so-pin", "so-" + TOKEN_PIN], env=env)
    der = os.path.join(root, "cakey.der")
    pub = os.path.join(root, "capub.der")
    run(["openssl", "pkey", "-in", ca.key, "-outform", "DER", "-out", der])
    run(["openssl", "pkey", "-in", ca.key, "-pubout", "-outform", "DER",
         "-out", pub])
    login = ["pkcs11-tool", "--module", SOFTHSM_MODULE, "--token-label",
             "ca", "--login", "--pin", TOKEN_PIN]
    run(login + ["--write-object", der, "--type", "privkey", "--id", "01",
                 "--label", "cakey", "--usage-sign", "--sensitive"], env=env)
    run(login + ["--write-object", pub, "--type", "pubkey", "--id", "01",
                 "--label", "cakey"], env=env)
    os.unlink(der)
    pinfile = os.path.join(root, "pin")
    with open(pinfile, "w") as f:
        f.write(TOKEN_PIN + "\n")
    os.chmod(pinfile, 0o600)
    os.chmod(root, 0o755)
    if os.geteuid() == 0:
        pw = pwd.getpwnam("www-data")
        for dirpath, dirs, files in os.walk(tokens):
            os.chown(dirpath, pw.pw_uid, pw.pw_gid)
            for name in files:
                os.chown(os.path.join(dirpath, name), pw.pw_uid, pw.pw_gid)
    uri = ("pkcs11:token=ca;object=cakey;type=private?module-path="
           + SOFTHSM_MODULE)
    return conf, uri, pinfile


def count_syscalls(pids, seconds):
    """SYSCALL_EVENTS counted by perf for the given processes over
    `seconds`: {event: count}, or None when perf cannot."""
    if not shutil.which("perf") or not pids:
        return None
    pids = [p for p in pids if os.path.exists("/proc/%d" % p)]
    r = run(["perf", "stat", "-x", ",", "-e", ",".join(SYSCALL_EVENTS),
             "-p", ",".join(str(p) for p in pids), "--", "sleep",
             str(seconds)], check=False, timeout=seconds + 60)
    out = {}
    for line in r.stderr.decode(errors="replace").splitlines():
        parts = line.split(",")
        if len(parts) > 2 and parts[2] in SYSCALL_EVENTS:
            try:
                out[parts[2]] = int(parts[0])
            except ValueError:
                return None
    return out if len(out) == len(SYSCALL_EVENTS) else None


def syscall_row(table, arm, conns, seconds):
    """One more run of arm while perf counts its server's system calls;
    a row with the counts per answer."""
    import threading
    pids = arm.pids()
    box = {}
    th = threading.Thread(target=lambda: box.update(
        n=count_syscalls(pids, seconds)))
    th.start()
    time.sleep(0.2)
    r = arm.load(conns, max(1, seconds - 1))
    th.join()
    n = box.get("n")
    what = "system calls per answer, %s, %d conns" % (arm.label, conns)
    if n is None or not r["ok"]:
        table.add("p", what, "not measured (perf syscall tracepoints "
                  "unavailable)")
        return None
    per = {k.split(":")[1].replace("sys_enter_", "").replace(
        "sys_enter", "all"): v / r["ok"] for k, v in n.items()}
    table.add("p", what, "; ".join(
        "%s %.1f" % (k, per[k]) for k in ("all", "futex", "openat",
                                          "newfstatat", "read", "fcntl",
                                          "flock")) + " (perf, %d answers)"
              % r["ok"])
    return per


P11SPEED = os.path.join(HERE, "p11speed.c")


def sign_speed_rows(work, table, ca, uri, pinfile, conf, secs=3):
    """Signatures per second in one process, as `openssl speed` gives them
    but with the module's own key loading (tests/bench/p11speed.c, linked
    with build/libcertauth.a: ca_pkcs11_load_key through the pkcs11
    engine): the key file and the token, with 1 and 2 threads sharing the
    key (as the threads of an httpd child do); CPU ms per signature."""
    exe = os.path.join(work, "p11speed")
    cflags = []
    for cmd in (["apr-1-config", "--cppflags", "--cflags", "--includes"],
                ["apu-1-config", "--includes"],
                ["pkg-config", "--cflags", "p11-kit-1"]):
        cflags += run(cmd).stdout.decode().split()
    libs = []
    for cmd in (["apr-1-config", "--link-ld", "--libs"],
                ["apu-1-config", "--link-ld", "--libs"],
                ["pkg-config", "--libs", "p11-kit-1"]):
        libs += run(cmd).stdout.decode().split()
    r = run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-std=gnu11"]
            + cflags + ["-I" + os.path.join(REPO, "mod_certauth", "core"),
                        "-o", exe, P11SPEED,
                        os.path.join(harness.BUILD, "libcertauth.a")]
            + libs + ["-lcrypto", "-lsqlite3", "-lpthread"], check=False,
            timeout=120)
    if r.returncode != 0:
        table.add("p", "signatures/s in one process (p11speed)",
                  "not measured (does not build: %s)"
                  % r.stderr.decode(errors="replace").strip()[:120])
        return
    env = dict(os.environ, SOFTHSM2_CONF=conf)
    per = {}
    for threads in (1, 2):
        for name, key, pin in (("key file", ca.key, "-"),
                               ("token", uri, pinfile)):
            r = run([exe, key, pin, str(secs), str(threads)], env=env,
                    timeout=secs + 60)
            m = re.match(r"signs (\d+) secs ([\d.]+) cpu_ms ([\d.]+)",
                         r.stdout.decode())
            n, t, c = int(m.group(1)), float(m.group(2)), float(m.group(3))
            per[(name, threads)] = n / t
            table.add("p", "ECDSA P-256 signatures/s, one process, %d "
                      "thread%s, %s (p11speed, %d s)"
                      % (threads, "s" if threads > 1 else "", name, secs),
                      "%.0f/s; CPU %.3f ms/signature"
                      % (n / t, c / n if n else float("inf")))
    for threads in (1, 2):
        a, b = per[("token", threads)], per[("key file", threads)]
        table.add("p", "signatures/s token / key file, %d thread%s"
                  % (threads, "s" if threads > 1 else ""),
                  "%.2f×" % (a / b if b else 0))


def maps_softhsm(pid):
    try:
        with open("/proc/%d/maps" % pid) as f:
            return "libsofthsm2" in f.read()
    except OSError:
        return False


def token_rounds(S, work, table, ca, csrs, auth, tok, mod, conf):
    """Row p's measurements on the two servers (not started yet)."""
    # the children find the token through SOFTHSM2_CONF (inherited at start)
    saved = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = conf
    try:
        tok.start()
    finally:
        if saved is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = saved
    mod.start()
    # every child of the token side has the key (no 503 from a child
    # without it): a few enrollments, then the log
    with open(os.path.join(csrs[0], "0"), "rb") as f:
        csr = f.read()
    for _ in range(8):
        st, _, body = tok.enroll(csr)
        if st != 201:
            raise RuntimeError("enroll with the token: %d %s\n%s"
                               % (st, body[:300], tok.log_tail()))
    if "CA1801" in tok.log():
        raise RuntimeError("a child could not open the token:\n"
                           + tok.log_tail())
    tok_arm = Arm("enroll, CA key in SoftHSM2 token (pkcs11 engine), SQLite "
                  "(WAL, synchronous=FULL)", tok.url, csrs, "POST",
                  "/ca/enroll", "application/pkcs10", auth,
                  lambda: httpd_ticks(tok), lambda: httpd_pids(tok))
    file_arm = Arm("enroll, CA key file, SQLite (WAL, synchronous=FULL)",
                   mod.url, csrs, "POST", "/ca/enroll", "application/pkcs10",
                   auth, lambda: httpd_ticks(mod), lambda: httpd_pids(mod))
    cmp_ = Comparison("token / key file", tok_arm, file_arm)
    conns = S["cost_conns"]
    # measure() first loads each side for 2 s unmeasured: else the first
    # round would also measure the children's start (sessions, caches)
    rounds = cmp_.measure(conns, S["rounds"], S["duration"])
    report_comparison(table, cmp_, conns, rounds, row="p")
    secs = S["fsync_secs"]
    syscall_row(table, tok_arm, conns, secs)
    syscall_row(table, file_arm, conns, secs)
    for h, arm in ((tok, tok_arm), (mod, file_arm)):
        stored, sent = h.rows(), arm.ok_total + 8 * (h is tok)
        table.add("p", "check: certificates stored / 201 answers, %s"
                  % ("token" if h is tok else "key file"),
                  "%d / %d" % (stored, sent), "answers ≤ stored ≤ answers "
                  "+ %d in flight" % arm.inflight,
                  "ok" if sent <= stored <= sent + arm.inflight
                  else "MISMATCH")
    # the token side signs through SoftHSM2 (its children have the module
    # loaded), the file side does not; the signature verifies
    kids_t, kids_f = tok.children(), mod.children()
    ok = (kids_t and all(maps_softhsm(k) for k in kids_t)
          and not any(maps_softhsm(k) for k in kids_f))
    table.add("p", "check: SoftHSM2 loaded in every child of the token side "
              "(%d), in none of the key-file side (%d)"
              % (len(kids_t), len(kids_f)), "ok" if ok else "MISMATCH")
    with open(os.path.join(work, "token-leaf.pem"), "wb") as f:
        f.write(tok.enroll(csr)[2])
    r = run(["openssl", "verify", "-CAfile", ca.cert,
             os.path.join(work, "token-leaf.pem")], check=False)
    table.add("p", "check: a certificate signed through the token verifies "
              "with the CA certificate", "ok" if r.returncode == 0
              else "FAILED: " + r.stdout.decode(errors="replace")[:80])


def bench_token(S, work, procs, table, ca, csrs, auth):
    """Enrollment with the CA key in a SoftHSM2 token against the same
    httpd with the key file: the same CA key (imported into the token),
    both on SQLite in WAL mode with synchronous=FULL, HTTPS keep-alive, the
    same wrk load; rounds interleaved A B A B, the median of the per-round
    ratios with their spread, server CPU per answer; then each side once
    more while perf counts its system calls."""
    missing = [t for t in ("softhsm2-util", "pkcs11-tool") if not
               shutil.which(t)]
    if not os.path.exists(SOFTHSM_MODULE):
        missing.append(SOFTHSM_MODULE)
    if missing:
        table.add("p", "enroll with the CA key in a SoftHSM2 token",
                  "skipped (%s missing: tests/install-deps.sh bench)"
                  % ", ".join(missing))
        return
    conf, uri, pinfile = softhsm_token(work, ca)
    tok = BenchHttpd(ca)
    tok.ca_directives = ("CertAuthCACertificateFile %s\n"
                         "CertAuthCAKeyFile \"%s\"\n"
                         "CertAuthCAPassPhrase file:%s\n"
                         "CertAuthBaseURL %s\n"
                         % (ca.cert, uri, pinfile, tok.base))
    tok.write_conf()
    procs.add(tok)
    mod = procs.add(BenchHttpd(ca))
    try:
        token_rounds(S, work, table, ca, csrs, auth, tok, mod, conf)
    finally:
        # stopped here, also after a failure: the rows after this one
        # must not share the machine with them
        for h in (tok, mod):
            procs.items.remove(h)
            h.cleanup()

    sign_speed_rows(work, table, ca, uri, pinfile, conf)


if __name__ == "__main__":
    main()
