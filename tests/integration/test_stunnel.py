"""certauth-stunnel against the real module in apache2: enroll over EST,
Debian's stunnel4 serving the key-cert.pem in front of a loopback echo
service, `openssl s_client -verify_return_error` through it, renew with
mutual TLS and a SIGHUP reload, and the failure cases (nothing due, wrong
password, CA down, revoked certificate, read-only directory, corrupt file),
plus check, combine and split-p12 checked with the openssl command line.

Every process started here (apache2, stunnel, the echo server) is stopped
by its PID when the test ends, pass or fail.
"""
import fcntl
import json
import os
import pwd
import re
import signal
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from harness import STUNNEL_HELPER, USERS, as_user, free_port, run, serving

HELPER = STUNNEL_HELPER
STUNNEL = shutil.which("stunnel4") or shutil.which("stunnel") \
    or "/usr/bin/stunnel4"

# Exit codes documented in certauth-stunnel(1).
OK, EXPIRING, INVALID, USAGE, UNREACHABLE, REFUSED, LOCAL = 0, 1, 2, 3, 4, 5, 6

# The EST Location's own profile (no label): names from the CSR, one day of
# validity and a renewal window longer than that, so that simplereenroll is
# allowed at once.  A named profile "stunnel" as shipped (90 days, window
# 30 days) is the label for --profile.
EST_CONF = """
        CertAuthSubjectCSR CN supplied maxlen=64 chars=a-zA-Z0-9._-
        CertAuthSANFromCSR DNS localhost
        CertAuthSANFromCSR IP 127.0.0.1
        CertAuthExtendedKeyUsage serverAuth clientAuth
        CertAuthValidityDays 1
        CertAuthRenewalWindowDays 2
"""
VHOST_CONF = """
    <CertAuthProfile stunnel>
        CertAuthSubjectRDN O "certauth tests"
        CertAuthSubjectCSR CN supplied maxlen=64 chars=a-zA-Z0-9._-
        CertAuthSANFromCSR DNS localhost
        CertAuthSANFromCSR IP 127.0.0.1
        CertAuthExtendedKeyUsage serverAuth clientAuth
        CertAuthValidityDays 90
        CertAuthRenewalWindowDays 30
        CertAuthRequire "%{REMOTE_USER} == 'admin'"
    </CertAuthProfile>
    <CertAuthProfile held>
        CertAuthSubjectCSR CN supplied
        CertAuthApproval On
    </CertAuthProfile>
"""


@pytest.fixture(scope="module")
def h(ca):
    yield from serving(ca, vhost_conf=VHOST_CONF, est_conf=EST_CONF)


@pytest.fixture
def wd():
    """A work directory any user can enter (the read-only test runs the
    helper as an unprivileged user)."""
    d = tempfile.mkdtemp(prefix="certauth-stunnel-")
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def helper(*args, env=None, user=None, timeout=60):
    e = {k: v for k, v in os.environ.items() if k != "CERTAUTH_PASSWORD"}
    e.update(env or {})
    r = subprocess.run([HELPER] + list(args), capture_output=True,
                       timeout=timeout, env=e, stdin=subprocess.DEVNULL,
                       start_new_session=True, **as_user(user))
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def password_file(wd, user="admin", password=None):
    f = os.path.join(wd, "pw-" + user)
    with open(f, "w") as fh:
        fh.write((password if password is not None else USERS[user]) + "\n")
    os.chmod(f, 0o600)
    return f


def enroll(h, wd, out, cn="stunnel.localhost", extra=(), user="admin",
           pwfile=None):
    return helper("enroll", "--url", h.url, "--ca", h.ca.cert, "--user", user,
                  "--password-file", pwfile or password_file(wd, user),
                  "--cn", cn, "--san", "DNS:localhost", "--san",
                  "IP:127.0.0.1", "--out", out, *extra)


def renew(h, path, *extra, url=None):
    return helper("renew", "--url", url or h.url, "--ca", h.ca.cert, "--in",
                  path, *extra)


def openssl(*args, data=None):
    return run(["openssl"] + list(args), input=data)


def enrolled_parts(h, wd):
    """Enroll key-cert.pem in wd, and split it with openssl into key.pem
    and cert.pem: (key-cert, key, cert) paths."""
    kc = os.path.join(wd, "key-cert.pem")
    assert enroll(h, wd, kc)[0] == OK
    key = os.path.join(wd, "key.pem")
    cert = os.path.join(wd, "cert.pem")
    openssl("pkey", "-in", kc, "-out", key)
    openssl("x509", "-in", kc, "-out", cert)
    return kc, key, cert


def file_serial(path):
    """The serial of the certificate in a key-cert file, by openssl."""
    out = openssl("x509", "-in", path, "-noout", "-serial").stdout.decode()
    return out.strip().split("=", 1)[1].upper()


def file_pub(path, passin=None):
    """The public key of the private key in a file, by openssl."""
    args = ["pkey", "-in", path, "-pubout"]
    if passin:
        args += ["-passin", "pass:" + passin]
    return openssl(*args).stdout


def cert_pub(path):
    return openssl("x509", "-in", path, "-noout", "-pubkey").stdout


def leftovers(d):
    """Temporary files the helper may have left behind."""
    return [n for n in os.listdir(d) if ".tmp" in n]


def mode(path):
    return os.stat(path).st_mode & 0o777


def serial_hex(n):
    s = "%X" % n
    return ("0" + s) if len(s) % 2 else s


# --------------------------------------------------------------------------
# stunnel and an echo service


class Echo:
    """A loopback TCP echo service (the plain service stunnel protects)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    @staticmethod
    def serve(c):
        with c:
            c.settimeout(10)
            try:
                while True:
                    data = c.recv(4096)
                    if not data:
                        return
                    c.sendall(data)
            except OSError:
                return

    def stop(self):
        self.stopped = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)


class Stunnel:
    """Debian's stunnel4 in the foreground, with the key-cert file as its
    certificate, forwarding to the echo service."""

    def __init__(self, wd, keycert, echo_port):
        self.port = free_port()
        self.pidfile = os.path.join(wd, "stunnel.pid")
        self.log = os.path.join(wd, "stunnel.log")
        self.conf = os.path.join(wd, "stunnel.conf")
        with open(self.conf, "w") as f:
            f.write("foreground = yes\npid = %s\noutput = %s\ndebug = 5\n"
                    "\n[echo]\naccept = 127.0.0.1:%d\n"
                    "connect = 127.0.0.1:%d\ncert = %s\n"
                    % (self.pidfile, self.log, self.port, echo_port,
                       keycert))
        self.proc = subprocess.Popen([STUNNEL, self.conf],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("stunnel exited %s:\n%s"
                                   % (self.proc.returncode, self.log_text()))
            if os.path.exists(self.pidfile):
                try:
                    socket.create_connection(("127.0.0.1", self.port),
                                             timeout=1).close()
                    return
                except OSError:
                    pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("stunnel does not listen:\n" + self.log_text())

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return "(no log)"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def echo():
    e = Echo()
    try:
        yield e
    finally:
        e.stop()


@pytest.fixture
def stunnels():
    started = []
    yield started
    for s in started:
        s.stop()


def s_client_serial(port, cafile):
    """`openssl s_client -verify_return_error -CAfile` through stunnel: the
    serial of the certificate it served (openssl x509 -serial)."""
    r = subprocess.run(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
         "-verify_return_error", "-CAfile", cafile, "-verify_ip",
         "127.0.0.1"], input=b"", capture_output=True, timeout=30)
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, out + r.stderr.decode(errors="replace")
    assert "Verify return code: 0 (ok)" in out, out
    pem = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----",
                    out, re.S).group(0)
    ser = openssl("x509", "-noout", "-serial", data=pem.encode())
    return ser.stdout.decode().strip().split("=", 1)[1].upper()


def served(port, cafile):
    """s_client_serial, or None while stunnel is not answering."""
    try:
        return s_client_serial(port, cafile)
    except (AssertionError, AttributeError, subprocess.TimeoutExpired):
        return None


def echo_through(port, cafile, msg=b"hello through stunnel\n"):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s) as t:
            t.sendall(msg)
            got = b""
            while len(got) < len(msg):
                chunk = t.recv(4096)
                if not chunk:
                    break
                got += chunk
    return got


def wait_for(pred, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.2)
    return pred()


def admin_status(h, serial):
    st, hd, body = h.request("GET", "/ca/api/certs?owner=admin&limit=1000",
                             user="admin")
    assert st == 200, body
    for c in json.loads(body)["certificates"]:
        if c["serial"].replace(":", "").upper().lstrip("0") == \
                serial.lstrip("0"):
            return c["status"]
    return None


# --------------------------------------------------------------------------
# enroll -> stunnel -> renew with --pidfile -> the new serial is served


def test_enroll_stunnel_renew_reload(h, wd, echo, stunnels):
    kc = os.path.join(wd, "key-cert.pem")
    rc, out, err = enroll(h, wd, kc)
    assert rc == OK, (out, err)
    assert mode(kc) == 0o600
    assert leftovers(wd) == []
    # key first, then the certificate, as `cat key.pem cert.pem`
    text = open(kc).read()
    assert text.index("PRIVATE KEY-----") < text.index("BEGIN CERTIFICATE")
    assert file_pub(kc) == cert_pub(kc)
    r = run(["openssl", "verify", "-CAfile", h.ca.cert, kc], check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    subj = openssl("x509", "-in", kc, "-noout", "-subject", "-ext",
                   "subjectAltName").stdout.decode()
    assert "CN = stunnel.localhost" in subj, subj
    assert "DNS:localhost" in subj and "IP Address:127.0.0.1" in subj, subj
    serial1 = file_serial(kc)
    assert "serial=%s" % serial1 in out, out

    st = Stunnel(wd, kc, echo.port)
    stunnels.append(st)
    assert s_client_serial(st.port, h.ca.cert) == serial1
    assert echo_through(st.port, h.ca.cert) == b"hello through stunnel\n"

    # renewed without a reload: stunnel keeps serving what it loaded
    rc, out, err = renew(h, kc, "--if-expires-within", "3d")
    assert rc == OK, (out, err)
    serial_mid = file_serial(kc)
    assert serial_mid != serial1
    assert s_client_serial(st.port, h.ca.cert) == serial1

    # renewal due (window larger than the lifetime): simplereenroll with
    # the certificate itself, new key, file replaced, SIGHUP to stunnel
    rc, out, err = renew(h, kc, "--if-expires-within", "3d", "--pidfile",
                         st.pidfile)
    assert rc == OK, (out, err)
    serial2 = file_serial(kc)
    assert serial2 not in (serial1, serial_mid)
    assert "renewed" in out and serial2 in out, out
    assert mode(kc) == 0o600
    assert leftovers(wd) == []
    assert file_pub(kc) == cert_pub(kc)
    assert admin_status(h, serial1) == "superseded"
    assert admin_status(h, serial_mid) == "superseded"
    assert admin_status(h, serial2) == "valid"
    # stunnel reloaded: the new serial is served, the service still works
    assert wait_for(lambda: served(st.port, h.ca.cert) == serial2), \
        st.log_text()
    assert echo_through(st.port, h.ca.cert) == b"hello through stunnel\n"
    assert st.proc.poll() is None

    # nothing due: exit 0, the file is not touched at all
    before = open(kc, "rb").read()
    ino = os.stat(kc).st_ino
    rc, out, err = renew(h, kc, "--if-expires-within", "1h", "--pidfile",
                         st.pidfile)
    assert rc == OK, (out, err)
    assert "not due" in out, out
    assert open(kc, "rb").read() == before and os.stat(kc).st_ino == ino
    assert s_client_serial(st.port, h.ca.cert) == serial2

    # check: the one-day certificate is "expiring" within the default 30
    # days, and fine with a warning window shorter than what is left
    rc, out, err = helper("check", "--in", kc, "--ca", h.ca.cert)
    assert rc == EXPIRING, (out, err)
    assert "serial=%s" % serial2 in out and "WARNING" in out, out
    rc, out, err = helper("check", "--in", kc, "--ca", h.ca.cert,
                          "--warn-days", "0")
    assert rc == OK, (out, err)
    assert "OK:" in out and "chain=verified" in out, out


def test_renew_with_reload_command_keeps_owner_and_backup(h, wd):
    kc = os.path.join(wd, "key-cert.pem")
    assert enroll(h, wd, kc)[0] == OK
    if os.geteuid() == 0:
        os.chown(kc, 0, 1)   # group "daemon": the file's group is kept
    old = open(kc, "rb").read()
    marker = os.path.join(wd, "reloaded")
    rc, out, err = renew(h, kc, "--if-expires-within", "3d", "--same-key",
                         "--backup", "--reload", "touch " + marker)
    assert rc == OK, (out, err)
    assert os.path.exists(marker)
    assert open(kc + ".bak", "rb").read() == old
    assert mode(kc + ".bak") == 0o600
    # --same-key: the private key is the old one
    assert file_pub(kc) == file_pub(kc + ".bak")
    assert file_serial(kc) != file_serial(kc + ".bak")
    if os.geteuid() == 0:
        assert os.stat(kc).st_gid == 1
    # a reload that fails: the file is replaced, exit 7
    rc, out, err = renew(h, kc, "--if-expires-within", "3d", "--reload",
                         "exit 3")
    assert rc == 7, (out, err)
    assert "reload" in err, err
    # --out elsewhere, another key type: the input file stays as it was
    before = open(kc, "rb").read()
    other = os.path.join(wd, "p384.pem")
    rc, out, err = renew(h, kc, "--if-expires-within", "3d", "--out", other,
                         "--key-type", "ec:P-384", "-q")
    assert rc == OK and out == "", (out, err)
    assert open(kc, "rb").read() == before
    assert "NIST CURVE: P-384" in openssl("pkey", "-in", other, "-noout",
                                          "-text").stdout.decode()
    assert file_pub(other) == cert_pub(other)
    assert file_serial(other) != file_serial(kc)


def test_enroll_label_and_refusals(h, wd):
    kc = os.path.join(wd, "key-cert.pem")
    # the label picks the named profile (90 days, O written by the CA)
    rc, out, err = enroll(h, wd, kc, extra=("--profile", "stunnel",
                                            "--key-type", "rsa:3072"))
    assert rc == OK, (out, err)
    text = openssl("x509", "-in", kc, "-noout", "-subject", "-dates",
                   "-text").stdout.decode()
    assert "O = certauth tests" in text, text
    assert "Public-Key: (3072 bit)" in text, text
    serial = file_serial(kc)
    # an existing valid file is not overwritten without --force
    before = open(kc, "rb").read()
    rc, out, err = enroll(h, wd, kc)
    assert rc == LOCAL, (out, err)
    assert "--force" in err, err
    assert open(kc, "rb").read() == before
    # default timing (two thirds of 90 days): nothing due
    rc, out, err = renew(h, kc)
    assert rc == OK and "not due" in out, (out, err)
    # forced renewal before the profile's window: the CA refuses, exit 5
    rc, out, err = renew(h, kc, "--force")
    assert rc == REFUSED, (out, err)
    assert "renewal opens 30 days before expiry" in err, err
    assert open(kc, "rb").read() == before and leftovers(wd) == []
    assert file_serial(kc) == serial
    # a profile the user may not use: 403, nothing written
    out2 = os.path.join(wd, "bob.pem")
    rc, out, err = enroll(h, wd, out2, user="bob",
                          extra=("--profile", "stunnel"))
    assert rc == REFUSED, (out, err)
    assert "403" in err, err
    assert not os.path.exists(out2) and leftovers(wd) == []


def test_enroll_wrong_password_and_password_sources(h, wd):
    kc = os.path.join(wd, "key-cert.pem")
    bad = password_file(wd, "admin", "not-the-password")
    rc, out, err = enroll(h, wd, kc, pwfile=bad)
    assert rc == REFUSED, (out, err)
    assert "password of user 'admin'" in err and "401" in err, err
    assert not os.path.exists(kc)
    assert leftovers(wd) == []
    # no password source at all (no terminal, no file, no variable): usage
    rc, out, err = helper("enroll", "--url", h.url, "--ca", h.ca.cert,
                          "--user", "admin", "--cn", "x", "--out", kc)
    assert rc == USAGE, (out, err)
    assert "CERTAUTH_PASSWORD" in err, err
    assert not os.path.exists(kc)
    # a password on the command line does not exist as an option
    rc, out, err = helper("enroll", "--password", "x")
    assert rc == USAGE and "unknown option" in err, err
    # from the environment; the subject as a whole name
    rc, out, err = helper("enroll", "--url", h.url, "--ca", h.ca.cert,
                          "--user", "admin", "--subject",
                          "/CN=env.localhost", "--out", kc,
                          env={"CERTAUTH_PASSWORD": USERS["admin"]})
    assert rc == OK, (out, err)
    assert "CN = env.localhost" in openssl(
        "x509", "-in", kc, "-noout", "-subject").stdout.decode()


def test_enroll_chain_and_approval(h, wd):
    kc = os.path.join(wd, "key-cert.pem")
    # --chain full: the CA's certificate follows the leaf
    rc, out, err = enroll(h, wd, kc, extra=("--chain", "full"))
    assert rc == OK, (out, err)
    pems = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----",
                      open(kc).read(), re.S)
    assert len(pems) == 2
    assert openssl("x509", "-noout", "-fingerprint", data=pems[1].encode()
                   ).stdout == openssl("x509", "-noout", "-fingerprint", "-in",
                                       h.ca.cert).stdout
    rc, out, err = helper("check", "--in", kc, "--ca", h.ca.cert,
                          "--warn-days", "0")
    assert rc == OK and "1 certificate in the file after the leaf" in out, \
        (out, err)
    # a profile with manual approval: 202, exit 8, nothing written
    held = os.path.join(wd, "held.pem")
    rc, out, err = enroll(h, wd, held, extra=("--profile", "held"))
    assert rc == 8, (out, err)
    assert "approval" in err, err
    assert not os.path.exists(held) and leftovers(wd) == []


def test_ca_down_keeps_old_file(h, wd):
    kc = os.path.join(wd, "key-cert.pem")
    assert enroll(h, wd, kc)[0] == OK
    before = open(kc, "rb").read()
    down = "https://127.0.0.1:%d" % free_port()
    rc, out, err = renew(h, kc, "--if-expires-within", "3d", url=down)
    assert rc == UNREACHABLE, (out, err)
    assert "cannot reach the CA" in err, err
    assert open(kc, "rb").read() == before and leftovers(wd) == []
    # a server whose certificate does not verify with --ca: also exit 4
    other = os.path.join(wd, "other-ca.pem")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            os.path.join(wd, "other.key"), "-subj", "/CN=other", "-out",
            other)
    rc, out, err = helper("renew", "--url", h.url, "--ca", other, "--in", kc,
                          "--if-expires-within", "3d")
    assert rc == UNREACHABLE, (out, err)
    assert "does not verify" in err, err
    assert open(kc, "rb").read() == before and leftovers(wd) == []


def test_revoked_renew_refused(h, wd):
    kc = os.path.join(wd, "key-cert.pem")
    assert enroll(h, wd, kc)[0] == OK
    serial = file_serial(kc)
    st, hd, body = h.request(
        "POST", "/ca/revoke",
        body=json.dumps({"serial": serial, "reason": "keyCompromise"}),
        headers={"Content-Type": "application/json"}, user="admin")
    assert st == 200, body
    before = open(kc, "rb").read()
    rc, out, err = renew(h, kc, "--if-expires-within", "3d")
    assert rc == REFUSED, (out, err)
    assert "revoked" in err and "enroll again" in err, err
    assert open(kc, "rb").read() == before and leftovers(wd) == []


def test_read_only_directory(h, wd):
    ro = os.path.join(wd, "ro")
    os.mkdir(ro)
    kc = os.path.join(ro, "key-cert.pem")
    assert enroll(h, wd, kc)[0] == OK
    before = open(kc, "rb").read()
    user = None
    if os.geteuid() == 0:
        # root writes anywhere: an unprivileged owner of the file, in a
        # directory it cannot write
        user = "nobody"
        pw = pwd.getpwnam(user)
        os.chown(kc, pw.pw_uid, pw.pw_gid)
        # its lock file (left by the enroll) goes with it, as chown -R would
        os.chown(os.path.join(ro, ".key-cert.pem.lock"), pw.pw_uid,
                 pw.pw_gid)
    cafile = os.path.join(wd, "cacert.pem")
    shutil.copy(h.ca.cert, cafile)
    os.chmod(cafile, 0o644)
    os.chmod(ro, 0o555)
    try:
        rc, out, err = helper("renew", "--url", h.url, "--ca", cafile,
                              "--in", kc, "--if-expires-within", "3d",
                              user=user)
        assert rc == LOCAL, (out, err)
        assert "cannot create a file in %s" % ro in err, err
        assert "Permission denied" in err, err
        assert open(kc, "rb").read() == before
        # enroll into it: the same, before the CA is asked
        rc, out, err = helper("enroll", "--url", h.url, "--ca", cafile,
                              "--user", "admin", "--cn", "ro.localhost",
                              "--out", os.path.join(ro, "new.pem"),
                              env={"CERTAUTH_PASSWORD": USERS["admin"]},
                              user=user)
        assert rc == LOCAL, (out, err)
        assert "cannot create a file in %s" % ro in err, err
        # nothing new: only the file and the lock file the enroll left
        assert sorted(os.listdir(ro)) == [".key-cert.pem.lock",
                                          "key-cert.pem"]
    finally:
        os.chmod(ro, 0o755)


def test_enroll_keeps_unreadable_file(h, wd):
    """A file whose key cannot be checked (encrypted) or that is corrupt is
    not known to be dead: enroll keeps it unless --force."""
    kc, key, cert = enrolled_parts(h, wd)
    enc = openssl("pkey", "-in", key, "-aes256", "-passout", "pass:secret1234"
                  ).stdout.decode()
    text = enc + open(cert).read()
    with open(kc, "w") as f:
        f.write(text)
    rc, out, err = enroll(h, wd, kc)
    assert rc == LOCAL, (out, err)
    assert kc in err and "--force" in err, err
    assert open(kc).read() == text and leftovers(wd) == []
    with open(kc, "w") as f:
        f.write("garbage\n")
    rc, out, err = enroll(h, wd, kc)
    assert rc == LOCAL and "--force" in err, (out, err)
    assert open(kc).read() == "garbage\n"
    assert enroll(h, wd, kc, extra=("--force",))[0] == OK
    assert helper("check", "--in", kc, "--warn-days", "0")[0] == OK


def test_corrupt_keycert(h, wd):
    kc = os.path.join(wd, "key-cert.pem")
    assert enroll(h, wd, kc)[0] == OK
    text = open(kc).read()
    # damage the base64 of the certificate
    i = text.index("BEGIN CERTIFICATE-----") + 40
    bad = text[:i] + "!!!!" + text[i + 4:]
    with open(kc, "w") as f:
        f.write(bad)
    rc, out, err = helper("check", "--in", kc)
    assert rc == INVALID, (out, err)
    assert "CRITICAL" in out and "corrupt" in out, out
    rc, out, err = renew(h, kc, "--if-expires-within", "3d")
    assert rc == LOCAL, (out, err)
    assert kc in err and "corrupt" in err, err
    assert open(kc).read() == bad and leftovers(wd) == []
    # a key that is not the certificate's
    other = os.path.join(wd, "other.pem")
    assert enroll(h, wd, other, cn="other.localhost")[0] == OK
    key_only = openssl("pkey", "-in", other).stdout.decode()
    cert_only = openssl("x509", "-in", os.path.join(wd, "other.pem")
                        ).stdout.decode()
    assert enroll(h, wd, kc, extra=("--force",))[0] == OK
    mine = openssl("x509", "-in", kc).stdout.decode()
    with open(kc, "w") as f:
        f.write(key_only + mine)
    rc, out, err = helper("check", "--in", kc)
    assert rc == INVALID and "does not match" in out, (out, err)
    # not a PEM file at all
    with open(kc, "w") as f:
        f.write("hello\n")
    rc, out, err = helper("check", "--in", kc)
    assert rc == INVALID and "no PEM data" in out, (out, err)
    rc, out, err = helper("check", "--in", os.path.join(wd, "missing.pem"))
    assert rc == INVALID and "cannot read" in out, (out, err)
    assert cert_only  # the other file stays usable below
    rc, out, err = helper("check", "--in", other, "--ca", h.ca.cert,
                          "--warn-days", "0")
    assert rc == OK, (out, err)


def test_check_chain_and_expired(h, wd):
    kc = os.path.join(wd, "key-cert.pem")
    assert enroll(h, wd, kc)[0] == OK
    # another CA's certificate as --ca: the chain does not verify
    other = os.path.join(wd, "other-ca.pem")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            os.path.join(wd, "other.key"), "-subj", "/CN=other", "-out",
            other)
    rc, out, err = helper("check", "--in", kc, "--ca", other)
    assert rc == INVALID and "does not verify" in out, (out, err)
    # an expired self-made certificate in the same form
    old = os.path.join(wd, "old.pem")
    expired_selfsigned(old)
    with open(old, "w") as f:
        f.write(open(old + ".key").read() + open(old + ".crt").read())
    rc, out, err = helper("check", "--in", old)
    assert rc == INVALID and "expired" in out, (out, err)
    # and renew refuses it locally: the CA does not renew expired ones
    rc, out, err = renew(h, old)
    assert rc == REFUSED and "enroll again" in err, (out, err)


def expired_selfsigned(old):
    """A key and a certificate that expired in 2020 (python3-cryptography:
    OpenSSL 3.0's req has no -not_after)."""
    import datetime
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old")])
    t0 = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1234)
            .not_valid_before(t0)
            .not_valid_after(t0 + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    with open(old + ".key", "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(old + ".crt", "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


# --------------------------------------------------------------------------
# combine and split-p12


def test_combine_round_trip(h, wd):
    kc, key, cert = enrolled_parts(h, wd)
    out = os.path.join(wd, "combined.pem")
    rc, o, err = helper("combine", "--key", key, "--cert", cert, "--out", out)
    assert rc == OK, (o, err)
    assert mode(out) == 0o600
    assert file_pub(out) == cert_pub(out) == cert_pub(kc)
    assert file_serial(out) == file_serial(kc)
    text = open(out).read()
    assert text.index("PRIVATE KEY") < text.index("BEGIN CERTIFICATE")
    rc, o, err = helper("check", "--in", out, "--ca", h.ca.cert,
                        "--warn-days", "0")
    assert rc == OK, (o, err)
    # an encrypted key: its pass phrase from --password-file
    enc = os.path.join(wd, "key-enc.pem")
    openssl("pkey", "-in", key, "-aes256", "-passout", "pass:s3cret-pp",
            "-out", enc)
    out2 = os.path.join(wd, "combined2.pem")
    rc, o, err = helper("combine", "--key", enc, "--cert", cert, "--out",
                        out2, "--password-file",
                        password_file(wd, "pp", "s3cret-pp"))
    assert rc == OK, (o, err)
    assert file_pub(out2) == cert_pub(kc)
    # a key that does not match: refused, nothing written
    other = os.path.join(wd, "other.key")
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-out", other)
    out3 = os.path.join(wd, "combined3.pem")
    rc, o, err = helper("combine", "--key", other, "--cert", cert, "--out",
                        out3)
    assert rc == LOCAL and "does not match" in err, (o, err)
    assert not os.path.exists(out3) and leftovers(wd) == []


def test_split_p12_round_trip(h, wd):
    kc = os.path.join(wd, "key-cert.pem")
    assert enroll(h, wd, kc)[0] == OK
    p12 = os.path.join(wd, "mycert.p12")
    openssl("pkcs12", "-export", "-in", kc, "-out", p12, "-passout",
            "pass:import-pw", "-name", "mine")
    globus = os.path.join(wd, "globus")
    imp = password_file(wd, "import", "import-pw")
    new = password_file(wd, "new", "new-pem-pass")
    # a wrong import password: clear error, no files
    rc, o, err = helper("split-p12", "--in", p12, "--out-dir", globus,
                        "--password-file", password_file(wd, "bad", "nope"),
                        "--new-password-file", new)
    assert rc == LOCAL and "wrong import password" in err, (o, err)
    assert not os.path.exists(os.path.join(globus, "userkey.pem"))
    rc, o, err = helper("split-p12", "--in", p12, "--out-dir", globus,
                        "--password-file", imp, "--new-password-file", new)
    assert rc == OK, (o, err)
    ucert = os.path.join(globus, "usercert.pem")
    ukey = os.path.join(globus, "userkey.pem")
    assert mode(ucert) == 0o644 and mode(ukey) == 0o600
    assert "ENCRYPTED PRIVATE KEY" in open(ukey).read()
    # the seed's check, and the key opens with the new pass phrase only
    text = openssl("x509", "-in", ucert, "-subject", "-issuer", "-dates",
                   "-noout").stdout.decode()
    assert "subject=" in text and "notAfter=" in text, text
    assert file_serial(ucert) == file_serial(kc)
    assert file_pub(ukey, "new-pem-pass") == cert_pub(ucert) == cert_pub(kc)
    r = run(["openssl", "pkey", "-in", ukey, "-passin", "pass:import-pw",
             "-noout"], check=False)
    assert r.returncode != 0
    # existing files: refused without --force
    rc, o, err = helper("split-p12", "--in", p12, "--out-dir", globus,
                        "--password-file", imp, "--nodes")
    assert rc == LOCAL and "--force" in err, (o, err)
    # --nodes, passwords from the environment
    g2 = os.path.join(wd, "g2")
    rc, o, err = helper("split-p12", "--in", p12, "--out-dir", g2, "--nodes",
                        env={"CERTAUTH_PASSWORD": "import-pw"})
    assert rc == OK, (o, err)
    assert "ENCRYPTED" not in open(os.path.join(g2, "userkey.pem")).read()
    assert file_pub(os.path.join(g2, "userkey.pem")) == cert_pub(kc)
    g3 = os.path.join(wd, "g3")
    rc, o, err = helper("split-p12", "--in", p12, "--out-dir", g3,
                        env={"CERTAUTH_PASSWORD": "import-pw",
                             "CERTAUTH_NEW_PASSWORD": "env-pem-pass"})
    assert rc == OK, (o, err)
    assert file_pub(os.path.join(g3, "userkey.pem"),
                    "env-pem-pass") == cert_pub(kc)
    # not a PKCS#12 file
    rc, o, err = helper("split-p12", "--in", kc, "--out-dir", g3 + "x",
                        "--nodes", env={"CERTAUTH_PASSWORD": "x"})
    assert rc == LOCAL and "not a PKCS#12" in err, (o, err)


def test_usage_errors(wd):
    rc, o, err = helper("frobnicate")
    assert rc == USAGE and "unknown command" in err
    rc, o, err = helper("check")
    assert rc == USAGE and "--in is required" in err
    rc, o, err = helper("renew", "--url", "https://x", "--in", "f",
                        "--if-expires-within", "soon")
    assert rc == USAGE and "duration" in err
    rc, o, err = helper("renew", "--url", "https://x", "--in", "f",
                        "--rekey", "--same-key")
    assert rc == USAGE
    rc, o, err = helper("check", "--in", "f", "--url", "https://x")
    assert rc == USAGE and "not an option of check" in err
    rc, o, err = helper("--help")
    assert rc == OK and "Exit codes" in o


# --------------------------------------------------------------------------
# two runs on one file are serialised by the lock file .key-cert.pem.lock


def renewed_serial(out):
    m = re.search(r"^renewed .*serial=([0-9A-F]+) ", out, re.M)
    assert m, out
    return m.group(1)


def test_concurrent_renews_serialised(h, wd):
    """What is asserted: while another process holds the lock, a renew
    gives up after --timeout with exit 6 and a message naming the holder,
    file untouched; two renew --force started together while the lock is
    held both wait, and once it is released both succeed one after the
    other: the second renews the certificate the first wrote (without the
    lock both would renew the same old certificate and the CA would refuse
    the superseded one), the file holds the second's certificate, valid,
    and both earlier ones are superseded; no temporary file is left."""
    kc = os.path.join(wd, "key-cert.pem")
    assert enroll(h, wd, kc)[0] == OK
    serial0 = file_serial(kc)
    lockpath = os.path.join(wd, ".key-cert.pem.lock")
    assert os.path.exists(lockpath) and mode(lockpath) == 0o600
    before = open(kc, "rb").read()
    lock = open(lockpath, "r+")
    procs = []
    try:
        fcntl.lockf(lock, fcntl.LOCK_EX)
        rc, out, err = renew(h, kc, "--force", "--timeout", "1")
        assert rc == LOCAL, (out, err)
        assert "being replaced by another run (process %d holds the lock" \
            % os.getpid() in err, err
        assert "gave up after waiting 1 second" in err, err
        assert open(kc, "rb").read() == before and leftovers(wd) == []
        # two at once, both waiting on the lock
        e = {k: v for k, v in os.environ.items() if k != "CERTAUTH_PASSWORD"}
        for _ in range(2):
            procs.append(subprocess.Popen(
                [HELPER, "renew", "--url", h.url, "--ca", h.ca.cert, "--in",
                 kc, "--force", "--timeout", "60"], env=e,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, start_new_session=True))
        # a blocked run cannot finish; give them time to reach the lock
        time.sleep(1)
        assert [p.poll() for p in procs] == [None, None]
        assert open(kc, "rb").read() == before
        fcntl.lockf(lock, fcntl.LOCK_UN)
        results = []
        for p in procs:
            out, err = p.communicate(timeout=120)
            results.append((p.returncode, out.decode(), err.decode()))
    finally:
        lock.close()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for rc, out, err in results:
        assert rc == OK, (out, err)
    serials = [renewed_serial(out) for rc, out, err in results]
    final = file_serial(kc)
    assert serial0 not in serials and serials[0] != serials[1], serials
    assert final in serials, (final, serials)
    first = serials[0] if final == serials[1] else serials[1]
    assert admin_status(h, serial0) == "superseded"
    assert admin_status(h, first) == "superseded"
    assert admin_status(h, final) == "valid"
    rc, out, err = helper("check", "--in", kc, "--ca", h.ca.cert,
                          "--warn-days", "0")
    assert rc == OK, (out, err)
    assert file_pub(kc) == cert_pub(kc) and mode(kc) == 0o600
    assert leftovers(wd) == []
    # a mistyped --in: exit 6, and no lock file next to it
    rc, out, err = renew(h, os.path.join(wd, "typo.pem"), "--force")
    assert rc == LOCAL and "typo.pem: cannot read" in err, (out, err)
    assert not os.path.exists(os.path.join(wd, ".typo.pem.lock"))


# --------------------------------------------------------------------------
# a full disk: the old file stays, exit 6, no temporary file


def test_full_disk_keeps_old_file(h, wd):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    kc, key, cert = enrolled_parts(h, wd)
    full = os.path.join(wd, "full")
    os.mkdir(full)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755",
                        "tmpfs", full], capture_output=True)
    if r.returncode != 0:
        os.rmdir(full)
        pytest.skip("cannot mount a tmpfs here: %s"
                    % r.stderr.decode(errors="replace").strip())
    try:
        target = os.path.join(full, "key-cert.pem")
        shutil.copyfile(kc, target)
        os.chmod(target, 0o600)
        before = open(target, "rb").read()
        # fill it: big writes, then single bytes, until ENOSPC
        with open(os.path.join(full, "filler"), "wb", buffering=0) as f:
            for chunk in (b"\0" * 4096, b"\0"):
                try:
                    while True:
                        f.write(chunk)
                except OSError as e:
                    assert e.errno == 28, e   # ENOSPC
        serial0 = file_serial(target)
        rc, out, err = renew(h, target, "--force")
        assert rc == LOCAL, (out, err)
        assert "No space left on device" in err, err
        assert "the old file is unchanged" in err, err
        assert open(target, "rb").read() == before
        assert leftovers(full) == []
        # found before the CA was asked: the old certificate is not
        # superseded by one that could not be written
        assert admin_status(h, serial0) == "valid"
        rc, out, err = helper("combine", "--key", key, "--cert", cert,
                              "--out", target, "--force")
        assert rc == LOCAL, (out, err)
        assert "No space left on device" in err, err
        assert "the old file is unchanged" in err, err
        assert open(target, "rb").read() == before
        assert leftovers(full) == []
        assert sorted(os.listdir(full)) == [".key-cert.pem.lock",
                                            "filler", "key-cert.pem"]
    finally:
        subprocess.run(["umount", full])
        os.rmdir(full)


# --------------------------------------------------------------------------
# --pidfile signals only a running stunnel


def test_pidfile_not_stunnel(h, wd):
    kc, key, cert = enrolled_parts(h, wd)
    pidfile = os.path.join(wd, "stunnel.pid")
    sleeper = subprocess.Popen(["sleep", "300"])
    try:
        with open(pidfile, "w") as f:
            f.write("%d\n" % sleeper.pid)
        ino = os.stat(kc).st_ino
        rc, out, err = helper("combine", "--key", key, "--cert", cert,
                              "--out", kc, "--force", "--pidfile", pidfile)
        assert rc == 7, (out, err)
        assert "the file was replaced, but process %d (from %s) is 'sleep', " \
            "not stunnel: no SIGHUP sent" % (sleeper.pid, pidfile) in err, err
        # replaced all the same (a new inode from the rename), and valid
        assert os.stat(kc).st_ino != ino and "combined" in out, out
        assert file_pub(kc) == cert_pub(kc)
        # no SIGHUP reached sleep: a SIGHUP pending or delivered would end
        # it with signal 1 before the SIGTERM sent now
        assert sleeper.poll() is None
    finally:
        sleeper.terminate()
        sleeper.wait(10)
    assert sleeper.returncode == -signal.SIGTERM
    # a process that has ended (reaped above): not running, exit 7
    rc, out, err = renew(h, kc, "--force", "--pidfile", pidfile)
    assert rc == 7, (out, err)
    assert "the file was replaced, but process %d (from %s) is not running" \
        % (sleeper.pid, pidfile) in err, err
    assert "renewed" in out and file_serial(kc) == renewed_serial(out), out
