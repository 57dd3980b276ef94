"""A CA key in a PKCS#11 token (issue 18): SoftHSM2 tokens in a temporary
directory (SOFTHSM2_CONF), the key made there by `certauth-admin init
--pkcs11`, a real httpd (event and prefork) that enrolls, renews, revokes
and signs CRLs with it through OpenSSL's pkcs11 engine; the parent holds no
PKCS#11 module after start (sessions are the children's own); a wrong PIN
or a missing token fails configtest with one clear line."""
import concurrent.futures
import os
import pwd
import shutil
import subprocess
import tempfile
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from conftest import make_csr
from harness import ADMIN, Httpd, run, assert_no_crash
from test_lifecycle import LOC, Holder, get_crl, poll_crl, renew, revoke

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "4711-ca"


def softhsm(root, label="ca"):
    """A SoftHSM2 configuration and one initialised token in root; the
    httpd children (www-data) must read and lock its files."""
    tokens = os.path.join(root, "tokens")
    os.makedirs(tokens)
    conf = os.path.join(root, "softhsm2.conf")
    with open(conf, "w") as f:
        f.write("directories.tokendir = %s\nobjectstore.backend = file\n"
                "log.level = ERROR\n" % tokens)
    env = dict(os.environ, SOFTHSM2_CONF=conf)
    run(["softhsm2-util", "--init-token", "--free", "--label", label,
         "--pin", PIN, "--so-pin", "so-" + PIN], env=env)
    return conf, tokens


def give_to_httpd(path):
    if os.geteuid() != 0:
        return
    pw = pwd.getpwnam("www-data")
    for dirpath, dirs, files in os.walk(path):
        os.chown(dirpath, pw.pw_uid, pw.pw_gid)
        for f in files:
            os.chown(os.path.join(dirpath, f), pw.pw_uid, pw.pw_gid)


class HsmCA:
    """What harness.Httpd needs of a CA (cert, server_cert, server_key):
    the TLS server certificate is the session test CA's, the clients trust
    a bundle of both CAs; the CA of the module is the token's."""

    def __init__(self, root, test_ca, uri, pinfile):
        self.dir = os.path.join(root, "hsmca")
        self.uri = uri
        self.pinfile = pinfile
        r = run([ADMIN, "init", "--dir", self.dir, "--pkcs11", uri, "--pass",
                 "file:" + pinfile, "--subject",
                 "CN=certauth token root CA,O=certauth tests"])
        self.init_out = r.stdout.decode()
        self.ca_cert = os.path.join(self.dir, "cacert.pem")
        self.cert = os.path.join(root, "trust.pem")
        with open(self.cert, "wb") as f:
            f.write(open(self.ca_cert, "rb").read() + test_ca.pem)
        self.server_cert = test_ca.server_cert
        self.server_key = test_ca.server_key
        with open(self.ca_cert, "rb") as f:
            self.x509 = x509.load_pem_x509_certificate(f.read())

    def directives(self, uri=None, pinfile=None):
        return ("CertAuthCACertificateFile %s\nCertAuthCAKeyFile \"%s\"\n"
                "CertAuthCAPassPhrase file:%s\n"
                "CertAuthBaseURL https://127.0.0.1/ca\n"
                % (self.ca_cert, uri or self.uri, pinfile or self.pinfile))


@pytest.fixture(scope="module")
def token(ca):
    # in /tmp itself, as harness.Httpd's roots: the children (www-data)
    # must reach softhsm2.conf and the tokens
    root = tempfile.mkdtemp(prefix="certauth-softhsm-")
    os.chmod(root, 0o755)
    conf, tokens = softhsm(root)
    old = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = conf
    pinfile = os.path.join(root, "pin")
    with open(pinfile, "w") as f:
        f.write(PIN + "\n")
    os.chmod(pinfile, 0o600)
    uri = "pkcs11:token=ca;object=cakey;type=private?module-path=" + MODULE
    try:
        hca = HsmCA(root, ca, uri, pinfile)
        hca.tokens = tokens
        give_to_httpd(tokens)
        yield hca
    finally:
        if old is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = old
        shutil.rmtree(root, ignore_errors=True)


def test_init_made_key_in_token(token):
    assert "(made in the token)" in token.init_out
    # the private key is in the token, not extractable; no key file
    assert os.listdir(token.dir) == ["cacert.pem"]
    out = run(["pkcs11-tool", "--module", MODULE, "--token-label", "ca",
               "--login", "--pin", PIN, "--list-objects",
               "--type", "privkey"]).stdout.decode()
    assert "label:      cakey" in out
    assert "never extractable" in out
    # a second init with the same URI keeps that key
    d2 = os.path.join(os.path.dirname(token.dir), "again")
    r = run([ADMIN, "init", "--dir", d2, "--pkcs11", token.uri, "--pass",
             "file:" + token.pinfile])
    assert "(was in the token already)" in r.stdout.decode()
    with open(os.path.join(d2, "cacert.pem"), "rb") as f:
        again = x509.load_pem_x509_certificate(f.read())
    assert again.public_key().public_numbers() == \
        token.x509.public_key().public_numbers()


def test_init_errors(token, tmp_path):
    bad = str(tmp_path / "badpin")
    with open(bad, "w") as f:
        f.write("0000\n")
    r = run([ADMIN, "init", "--dir", str(tmp_path / "x"), "--pkcs11",
             token.uri.replace("cakey", "other"), "--pass", "file:" + bad],
            check=False)
    assert r.returncode == 1
    assert "cannot log in to the token" in r.stderr.decode()
    assert "wrong PIN" in r.stderr.decode()
    r = run([ADMIN, "init", "--dir", str(tmp_path / "y"), "--pkcs11",
             token.uri.replace("token=ca", "token=absent"), "--pass",
             "file:" + token.pinfile], check=False)
    assert r.returncode == 1 and "no token matches" in r.stderr.decode()


def verify(ca_file, pem, tmp_path, crl=None):
    leaf = str(tmp_path / "leaf.pem")
    with open(leaf, "wb") as f:
        f.write(pem)
    args = ["openssl", "verify", "-CAfile", ca_file]
    if crl:
        args += ["-crl_check", "-CRLfile", crl]
    return run(args + [leaf], check=False)


def enroll_retrying(h, keydir):
    """enroll, as a client does: a 503 (SQLite busy on a loaded machine,
    Retry-After) is tried again; the log check after the enrollments makes
    sure no 503 came from a child without the key."""
    for attempt in range(10):
        csr, key = make_csr("p256")
        st, hd, body = h.enroll(csr, user="alice")
        if st != 503:
            break
        time.sleep(1)
    assert st == 201, (st, body)
    return Holder(body, key, keydir)


def modules_mapped(pid):
    with open("/proc/%d/maps" % pid) as f:
        return "libsofthsm2" in f.read()


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_token_ca_lifecycle(token, mpm, tmp_path):
    keydir = str(tmp_path / "keys")
    os.makedirs(keydir)
    # the tools run as root above may have rewritten token files (SoftHSM
    # replaces them): the children (www-data) must read them
    give_to_httpd(token.tokens)
    h = Httpd(token, mpm=mpm, ca_directives=token.directives(),
              location_conf=LOC)
    try:
        h.start()
        # the parent let go of the module before it forked
        assert not modules_mapped(h.pid()), "parent holds the PKCS#11 module"
        # enrollments in parallel: several children / threads, each with
        # its own session
        with concurrent.futures.ThreadPoolExecutor(6) as ex:
            holders = list(ex.map(
                lambda i: enroll_retrying(h, keydir), range(12)))
        # every child opened the token: no child without the key
        assert "CA1801" not in h.log()
        assert "not available in this process" not in h.log()
        for hd in holders:
            assert hd.cert.issuer == token.x509.subject
            r = verify(token.ca_cert, hd.pem, tmp_path)
            assert r.returncode == 0, r.stdout + r.stderr
        assert any(modules_mapped(c) for c in h.children())
        # renew with the client certificate
        st, _, body = renew(h, holders[0])
        assert st == 201, body
        new = x509.load_pem_x509_certificate(body)
        assert new.issuer == token.x509.subject
        r = verify(token.ca_cert, body, tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
        # revoke one, the CRL signed by the token lists it
        st, _, doc, body = revoke(h, holders[1].serial,
                                  reason="keyCompromise",
                                  client_cert=holders[1].tls)
        assert st == 200, body
        # made by the watchdog within CertAuthCRLDelay
        poll_crl(h, lambda c: c.get_revoked_certificate_by_serial_number(
            holders[1].cert.serial_number) is not None, "the revocation")
        crl, _, der = get_crl(h)
        assert crl.is_signature_valid(token.x509.public_key())
        assert crl.get_revoked_certificate_by_serial_number(
            holders[1].cert.serial_number) is not None
        crlfile = str(tmp_path / "crl.pem")
        _, _, pem = get_crl(h, pem=True)
        with open(crlfile, "wb") as f:
            f.write(pem)
        r = verify(token.ca_cert, holders[1].pem, tmp_path, crl=crlfile)
        assert r.returncode != 0 and b"revoked" in r.stdout + r.stderr
        r = verify(token.ca_cert, holders[2].pem, tmp_path, crl=crlfile)
        assert r.returncode == 0, r.stdout + r.stderr
        # certauth-admin gencrl with the same token beside the running
        # server (a session of its own), as root (the PIN file is root's)
        # on a copy of the database (root must not make SQLite's files
        # next to the server's)
        db2 = str(tmp_path / "copy.db")
        run(["sqlite3", h.db, ".backup " + db2])
        r = run([ADMIN, "gencrl", "--db", "sqlite3:" + db2, "--ca-cert",
                 token.ca_cert, "--ca-key", token.uri, "--pass",
                 "file:" + token.pinfile, "--out", crlfile])
        assert b"CRL number" in r.stdout
        with open(crlfile, "rb") as f:
            crl2 = x509.load_pem_x509_crl(f.read())
        assert crl2.is_signature_valid(token.x509.public_key())
        h.stop()
        assert_no_crash(h)
    finally:
        h.cleanup()


def one_line(out, *words):
    lines = [l for l in out.splitlines() if "CertAuth" in l]
    assert len(lines) == 1, out
    for w in words:
        assert w in lines[0], out
    return lines[0]


def test_configtest_wrong_pin(token, tmp_path):
    bad = str(tmp_path / "badpin")
    with open(bad, "w") as f:
        f.write("0000\n")
    h = Httpd(token, ca_directives=token.directives(pinfile=bad))
    try:
        rc, out = h.configtest()
    finally:
        h.cleanup()
    assert rc != 0
    one_line(out, "CertAuthCAKeyFile", "object=cakey", "wrong PIN")


def test_configtest_missing_token(token):
    h = Httpd(token, ca_directives=token.directives(
        uri=token.uri.replace("token=ca", "token=gone")))
    try:
        rc, out = h.configtest()
    finally:
        h.cleanup()
    assert rc != 0
    one_line(out, "CertAuthCAKeyFile", "token=gone", "no such token or key")


def test_configtest_bad_uri_and_pin_value(token):
    for uri, words in [
            ("pkcs11:token=ca;object=%zz", ("not a PKCS#11 URI",)),
            ("pkcs11:token=ca;object=cakey;pin-value=" + PIN,
             ("pin-value is refused",))]:
        h = Httpd(token, ca_directives=token.directives(uri=uri))
        try:
            rc, out = h.configtest()
        finally:
            h.cleanup()
        assert rc != 0
        assert "CertAuthCAKeyFile" in out and words[0] in out, out
        assert PIN not in out


def test_configtest_good(token):
    h = Httpd(token, ca_directives=token.directives())
    try:
        rc, out = h.configtest()
    finally:
        h.cleanup()
    assert rc == 0, out


def test_rollover_from_token(token, tmp_path):
    """The token CA rolled over to a key file: the token's key signs the
    link certificate NewWithOld and, as CertAuthPreviousCAKeyFile (a URI
    and its PIN source), the previous CA's CRL in each child."""
    root = tempfile.mkdtemp(prefix="certauth-p11roll-")
    os.chmod(root, 0o755)
    new = os.path.join(root, "new")
    try:
        run([ADMIN, "rollover", "--ca-cert", token.ca_cert, "--ca-key",
             token.uri, "--pass", "file:" + token.pinfile, "--dir", new])
        links = open(os.path.join(new, "links.pem"), "rb").read()
        nwo = x509.load_pem_x509_certificate(
            links.split(b"-----END CERTIFICATE-----")[0]
            + b"-----END CERTIFICATE-----\n")
        assert nwo.issuer == token.x509.subject
        # signed by the token's key: verifies against the token CA
        nwo_file = os.path.join(root, "nwo.pem")
        with open(nwo_file, "wb") as f:
            f.write(nwo.public_bytes(serialization.Encoding.PEM))
        r = run(["openssl", "verify", "-CAfile", token.ca_cert, nwo_file],
                check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        d = ("CertAuthCACertificateFile %s/cacert.pem\n"
             "CertAuthCAKeyFile %s/private/cakey.pem\n"
             "CertAuthPreviousCACertificateFile %s/previous-cacert.pem\n"
             "CertAuthPreviousCAKeyFile \"%s\" file:%s\n"
             "CertAuthCALinkCertificates %s/links.pem\n"
             "CertAuthBaseURL https://127.0.0.1/ca\n"
             % (new, new, new, token.uri, token.pinfile, new))
        give_to_httpd(token.tokens)
        h = Httpd(token, ca_directives=d)
        try:
            h.start()
            assert not modules_mapped(h.pid())
            st, _, der = h.get("/ca/crl/previous")
            assert st == 200, der
            crl = x509.load_der_x509_crl(der)
            assert crl.issuer == token.x509.subject
            assert crl.is_signature_valid(token.x509.public_key())
            h.stop()
            assert_no_crash(h)
        finally:
            h.cleanup()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_rollover_into_token(tmp_path, token):
    """A key-file CA rolled over to a new key made in the token."""
    root = tempfile.mkdtemp(prefix="certauth-p11roll2-")
    try:
        old = os.path.join(root, "old")
        run([ADMIN, "init", "--dir", old])
        uri = token.uri.replace("object=cakey", "object=cakey2")
        r = run([ADMIN, "rollover", "--ca-cert", old + "/cacert.pem",
                 "--ca-key", old + "/private/cakey.pem", "--dir",
                 root + "/new", "--pkcs11", uri, "--new-pass",
                 "file:" + token.pinfile])
        assert uri in r.stdout.decode()
        assert not os.path.exists(root + "/new/private/cakey.pem")
        # NewWithOld: the token's new key certified by the old CA
        links = open(root + "/new/links.pem", "rb").read()
        nwo = x509.load_pem_x509_certificate(
            links.split(b"-----END CERTIFICATE-----")[0]
            + b"-----END CERTIFICATE-----\n")
        newca = x509.load_pem_x509_certificate(
            open(root + "/new/cacert.pem", "rb").read())
        oldca = x509.load_pem_x509_certificate(
            open(old + "/cacert.pem", "rb").read())
        assert nwo.public_key().public_numbers() == \
            newca.public_key().public_numbers()
        assert nwo.issuer == oldca.subject
        # the new key signs: gencrl with it
        r = run([ADMIN, "gencrl", "--db", "sqlite3:" + root + "/x.db",
                 "--ca-cert", root + "/new/cacert.pem", "--ca-key", uri,
                 "--pass", "file:" + token.pinfile])
        assert b"CRL number 1" in r.stdout
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_configtest_token_key_not_matching(token, ca):
    """The token's key with another CA's certificate: the probe says so."""
    h = Httpd(token, ca_directives=token.directives().replace(
        token.ca_cert, ca.cert))
    try:
        rc, out = h.configtest()
    finally:
        h.cleanup()
    assert rc != 0
    one_line(out, "CertAuthCAKeyFile", "does not match the CA certificate")
