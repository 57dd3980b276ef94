"""Certificate lifecycle (issue 4): renew and revoke authenticated by real
client certificates (curl --cert/--key and Python ssl), the CRL, api/certs,
api/audit, and certauth-admin revoke/gencrl on the server's database.

Every server here has `SSLVerifyClient optional` with the test CA (see
harness.Httpd), so a request may come with no certificate, a login, a
certificate, or both.

A note on the expired and foreign-CA certificates of the authorization
matrix: under `SSLVerifyClient optional` mod_ssl itself refuses the TLS
handshake when the client presents a certificate that does not verify
(expired, or issued by a CA it does not trust); only `optional_no_ca` would
let such a connection through.  The module never sees those requests, so the
expected outcome of those cells is a failed connection (ssl.SSLError in
Python, curl exit status 35 or 56), not an HTTP status.
"""
import datetime
import http.client
import json
import os
import pwd
import re
import shutil
import ssl
import tempfile
import time
import urllib.parse

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import (ExtendedKeyUsageOID, NameOID)

from conftest import make_csr
import harness
from harness import ADMIN, Httpd, run

DAY = 86400
UTC = datetime.timezone.utc

# The Location's own profile for most servers here: 20 days of validity, so
# that the default renewal window (30 days) is open at once; subjectAltNames
# to check that a renewal keeps them; an OU taken from a request header so
# that tests can tag certificates for the subject search.
LOC = """
        CertAuthSubjectRDN O "certauth tests"
        CertAuthSubjectRDN OU "%{req:X-Test-Tag}" optional
        CertAuthSubjectRDN CN "%{REMOTE_USER}"
        CertAuthSAN email "%{REMOTE_USER}@example.org"
        CertAuthSAN URI "urn:test:user:%{REMOTE_USER}"
        CertAuthValidityDays 20
"""

API_FIELDS = {"serial", "subject", "owner", "profile", "not_before",
              "not_after", "status", "revoked_at", "reason", "replaced_by",
              "renewal_opens"}


# --- helpers -----------------------------------------------------------------

def serial_hex(cert):
    s = "%X" % cert.serial_number
    return "0" + s if len(s) % 2 else s


def utc(dt):
    """cryptography 38 returns naive UTC datetimes."""
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def iso(dt):
    return utc(dt).strftime("%Y-%m-%dT%H:%M:%SZ")


def spki(obj):
    key = obj.public_key() if hasattr(obj, "public_key") else obj
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def sans(cert):
    try:
        ext = cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return sorted((type(n).__name__, n.value) for n in ext.value)


class Holder:
    """A certificate with its private key in files, for --cert/--key."""

    def __init__(self, pem, key, directory):
        self.pem = pem
        self.cert = x509.load_pem_x509_certificate(pem)
        self.key = key
        self.serial = serial_hex(self.cert)
        self.cert_file = os.path.join(directory, "c-%s.pem" % self.serial)
        self.key_file = os.path.join(directory, "k-%s.pem" % self.serial)
        with open(self.cert_file, "wb") as f:
            f.write(pem)
        fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                     0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))

    @property
    def tls(self):
        return (self.cert_file, self.key_file)

    def curl(self):
        return ["--cert", self.cert_file, "--key", self.key_file]


@pytest.fixture(scope="module")
def keydir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("clientkeys"))


def enroll(h, keydir, user="alice", tag=None, profile=None, key=None):
    csr, key = make_csr("p256", key=key)
    headers = {"X-Test-Tag": tag} if tag else None
    path = "/ca/enroll" + ("?profile=" + profile if profile else "")
    st, hd, body = h.enroll(csr, user=user, headers=headers, path=path)
    assert st == 201, (st, body)
    return Holder(body, key, keydir)


def jrequest(h, method, path, **kw):
    st, hd, body = h.request(method, path, **kw)
    doc = None
    if hd.get("content-type", "").startswith("application/json"):
        doc = json.loads(body)
    return st, hd, doc, body


def api_certs(h, query="", **kw):
    return jrequest(h, "GET", "/ca/api/certs" + query, **kw)


def revoke(h, serial=None, reason=None, invalidity=None, form=False,
           xrw=True, **kw):
    args = {}
    if serial is not None:
        args["serial"] = serial
    if reason is not None:
        args["reason"] = reason
    if invalidity is not None:
        args["invalidity_date"] = invalidity
    if form:
        body = urllib.parse.urlencode(args)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if xrw:
            headers["X-Requested-With"] = "test"
    else:
        body = json.dumps(args)
        headers = {"Content-Type": "application/json"}
    return jrequest(h, "POST", "/ca/revoke", body=body, headers=headers, **kw)


def renew(h, holder, csr=None, **kw):
    # an empty body has no Content-Type: X-Requested-With shows it is not a
    # cross-site request (issue 12)
    headers = ({"Content-Type": "application/pkcs10"} if csr
               else {"X-Requested-With": "test"})
    return h.request("POST", "/ca/renew", body=csr or b"", headers=headers,
                     client_cert=holder.tls, **kw)


def get_crl(h, pem=False, headers=None):
    st, hd, body = h.get("/ca/crl.pem" if pem else "/ca/crl", headers=headers)
    assert st == 200, (st, body)
    crl = (x509.load_pem_x509_crl(body) if pem
           else x509.load_der_x509_crl(body))
    return crl, hd, body


def poll_crl(h, pred, what, seconds=10):
    """GET crl until pred(crl): a change of status is on the CRL within
    CertAuthCRLDelay (2 s), a revocation by certauth-admin within
    CertAuthCRLRefreshSeconds."""
    deadline = time.time() + seconds
    while True:
        crl, _, _ = get_crl(h)
        if pred(crl):
            return crl
        if time.time() > deadline:
            pytest.fail("%s not served within %d s (CRL number %d, "
                        "thisUpdate %s)" % (what, seconds, crl_number(crl),
                                            iso(crl.last_update)))
        time.sleep(0.2)


def admin_revoke(h, holder, reason):
    r = as_server_user(h, [ADMIN, "revoke", "--db", "sqlite3:" + h.db,
                           holder.serial, "--reason", reason])
    assert r.returncode == 0, r.stderr
    assert holder.serial.encode() in r.stdout
    return r


def revoked_at(h, holder):
    st, _, doc, body = api_certs(h, "?owner=%s&limit=1000"
                                 % holder.cert.subject.get_attributes_for_oid(
                                     NameOID.COMMON_NAME)[0].value,
                                 user="admin")
    assert st == 200, body
    return {x["serial"]: x for x in doc["certificates"]}[holder.serial]


def crl_number(crl):
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def entry(crl, holder):
    return crl.get_revoked_certificate_by_serial_number(
        holder.cert.serial_number)


def entry_reason(rev):
    try:
        return rev.extensions.get_extension_for_class(
            x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return None


def curl_rc(h, *args, timeout=20):
    """curl against h: (exit status, HTTP status, body)."""
    r = run(["curl", "-sS", "--cacert", h.ca.cert, "-o", "-", "-w",
             "\n%{http_code}", "--max-time", str(timeout)] + list(args),
            timeout=timeout + 5, check=False)
    out, _, code = r.stdout.rpartition(b"\n")
    return r.returncode, int(code or 0), out


def openssl_crl_check(ca, crl_pem, holder):
    with tempfile.TemporaryDirectory() as d:
        crlf = os.path.join(d, "crl.pem")
        with open(crlf, "wb") as f:
            f.write(crl_pem)
        r = run(["openssl", "verify", "-crl_check", "-CAfile", ca.cert,
                 "-CRLfile", crlf, holder.cert_file], check=False)
        return r.returncode, (r.stdout + r.stderr).decode()


def ca_key(ca):
    with open(ca.key, "rb") as f:
        return serialization.load_pem_private_key(f.read(), None)


def handmade_cert(ca, keydir, not_before, not_after, cn="alice"):
    """A client certificate signed directly with the CA's key (not issued
    through the module, so unknown to its database)."""
    cacert = x509.load_pem_x509_certificate(ca.pem)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "certauth tests"),
                x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(cacert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                cacert.public_key()), critical=False)
            .sign(ca_key(ca), hashes.SHA256()))
    return Holder(cert.public_bytes(serialization.Encoding.PEM), key, keydir)


def as_server_user(h, cmd):
    # as the server's user: files SQLite creates (-wal, -shm) must stay
    # writable for the httpd children (see Httpd.rows)
    return run(cmd, user=h.user, check=False)


# --- the whole lifecycle -----------------------------------------------------

@pytest.fixture(scope="module")
def life(ca):
    h = Httpd(ca, location_conf=LOC)
    try:
        h.start()
        yield h
    finally:
        h.cleanup()


def test_lifecycle(life, ca, keydir):
    h = life
    c1 = enroll(h, keydir, "alice")
    assert sans(c1.cert) == sorted([
        ("RFC822Name", "alice@example.org"),
        ("UniformResourceIdentifier", "urn:test:user:alice")])

    # My certificates: the same list with the certificate and the login
    st, _, by_cert, body = api_certs(h, client_cert=c1.tls)
    assert st == 200, body
    st, _, by_login, body = api_certs(h, user="alice")
    assert st == 200, body
    # the same list; who asks: the presented certificate (what renew would
    # renew, for the web page) only with the certificate
    assert by_cert["presented"] == c1.serial and by_login["presented"] is None
    del by_cert["presented"], by_login["presented"]
    assert by_cert == by_login
    assert set(by_cert) == {"certificates", "limit", "offset", "more",
                            "owner", "admin", "cert_problem", "quota",
                            "password_rule"}
    # issue 16: nothing wrong with the certificate presented; the password
    # rule the pages apply (POST pkcs12 enforces it)
    assert by_cert["cert_problem"] is None
    assert by_cert["password_rule"]["min_length"] == 10
    assert "at least 5 different characters" in \
        by_cert["password_rule"]["text"]
    assert by_cert["owner"] == "alice" and by_cert["admin"] is False
    assert by_cert["limit"] == 100 and by_cert["offset"] == 0
    assert by_cert["more"] is False
    mine = {c["serial"]: c for c in by_cert["certificates"]}
    assert all(c["owner"] == "alice" for c in mine.values())
    e = mine[c1.serial]
    assert set(e) == API_FIELDS
    assert e["status"] == "valid" and e["owner"] == "alice"
    assert e["profile"] == "default"
    assert "CN=alice" in e["subject"] and "certauth tests" in e["subject"]
    assert e["not_before"] == iso(c1.cert.not_valid_before)
    assert e["not_after"] == iso(c1.cert.not_valid_after)
    assert e["revoked_at"] is None and e["reason"] is None
    assert e["replaced_by"] is None
    # when renew accepts it: the default window, 30 days before expiry
    assert e["renewal_opens"] == iso(c1.cert.not_valid_after
                                     - datetime.timedelta(days=30))

    # renew with curl and an empty body: the same key signed again (an
    # empty body needs X-Requested-With: the cross-site rule, issue 12)
    rc, st, body = curl_rc(h, *c1.curl(), "-X", "POST", "-H",
                           "X-Requested-With: curl", h.base + "/renew")
    assert rc == 0 and st == 201, (rc, st, body)
    c2 = Holder(body, c1.key, keydir)
    assert c2.serial != c1.serial
    assert spki(c2.cert) == spki(c1.cert)
    assert c2.cert.subject == c1.cert.subject
    assert sans(c2.cert) == sans(c1.cert)
    assert c2.cert.issuer == c1.cert.issuer
    life_days = utc(c2.cert.not_valid_after) - utc(c2.cert.not_valid_before)
    assert abs(life_days - datetime.timedelta(days=20)) < datetime.timedelta(
        minutes=10)
    assert utc(c2.cert.not_valid_before) >= utc(c1.cert.not_valid_before)

    st, _, doc, body = api_certs(h, user="alice")
    mine = {c["serial"]: c for c in doc["certificates"]}
    assert mine[c1.serial]["status"] == "superseded", mine[c1.serial]
    assert mine[c1.serial]["replaced_by"] == c2.serial
    assert mine[c1.serial]["revoked_at"] is not None
    assert mine[c2.serial]["status"] == "valid"
    assert mine[c2.serial]["replaced_by"] is None

    # the superseded certificate can neither renew nor list
    st, hd, body = renew(h, c1)
    assert st == 403, (st, body)
    assert "superseded" in json.loads(body)["detail"]
    st, hd, doc, body = api_certs(h, client_cert=c1.tls)
    assert st == 401, (st, body)
    assert "superseded" in doc["detail"]

    # ... and is on the CRL with reason superseded (grace 0 by default)
    crl = poll_crl(h, lambda c: entry(c, c1) is not None, "c1 superseded")
    rev = entry(crl, c1)
    assert rev is not None
    assert entry_reason(rev) == x509.ReasonFlags.superseded
    assert entry(crl, c2) is None

    # rekey: renew c2 with a CSR for a new key, with Python ssl
    csr, k3 = make_csr("p256", cn="whatever")
    st, hd, body = renew(h, c2, csr=csr)
    assert st == 201, (st, body)
    assert hd["content-type"] == "application/x-pem-file"
    c3 = Holder(body, k3, keydir)
    assert hd["location"] == h.base + "/certs/" + c3.serial
    assert spki(c3.cert) == spki(k3.public_key()) != spki(c2.cert)
    assert c3.cert.subject == c1.cert.subject
    assert sans(c3.cert) == sans(c1.cert)
    st, _, der = h.get("/ca/certs/" + c3.serial)
    assert st == 200 and der == c3.cert.public_bytes(serialization.Encoding.DER)
    st, _, doc, _ = api_certs(h, client_cert=c3.tls)
    assert st == 200
    mine = {c["serial"]: c for c in doc["certificates"]}
    assert mine[c2.serial]["status"] == "superseded"
    assert mine[c2.serial]["replaced_by"] == c3.serial
    assert mine[c3.serial]["status"] == "valid"

    # openssl verify -crl_check: the old ones rejected, the new one accepted
    poll_crl(h, lambda c: entry(c, c2) is not None, "c2 superseded")
    _, _, crl_pem = h.get("/ca/crl.pem")
    for old in (c1, c2):
        rc, out = openssl_crl_check(ca, crl_pem, old)
        assert rc != 0 and "revoked" in out, out
    rc, out = openssl_crl_check(ca, crl_pem, c3)
    assert rc == 0, out


def test_renew_too_early(httpd, keydir):
    """Default profile: 365 days of validity, window 30 days -> 403 with the
    date the window opens; nothing stored."""
    c = enroll(httpd, keydir, "alice")
    rows = httpd.rows()
    st, hd, body = renew(httpd, c)
    assert st == 403, (st, body)
    doc = json.loads(body)
    opens = utc(c.cert.not_valid_after) - datetime.timedelta(days=30)
    assert iso(opens) in doc["detail"], doc
    assert "30 days" in doc["detail"]
    assert httpd.rows() == rows
    st, _, doc, _ = api_certs(httpd, client_cert=c.tls)
    assert st == 200
    assert {x["serial"]: x["status"] for x in doc["certificates"]}[
        c.serial] == "valid"


def test_renew_without_certificate(life):
    st, hd, body = life.request("POST", "/ca/renew", body=b"", user="alice")
    assert st == 401, (st, body)
    assert "certificate" in json.loads(body)["detail"]


def test_supersede_grace(make_httpd, keydir):
    h = make_httpd(location_conf=LOC,
                   vhost_conf="CertAuthSupersedeGraceSeconds 3600")
    c1 = enroll(h, keydir, "bob")
    crl0, _, _ = get_crl(h)
    st, hd, body = renew(h, c1)
    assert st == 201, (st, body)
    c2 = Holder(body, c1.key, keydir)
    st, _, doc, _ = api_certs(h, user="bob")
    mine = {c["serial"]: c for c in doc["certificates"]}
    assert mine[c1.serial]["status"] == "superseded"
    assert mine[c1.serial]["replaced_by"] == c2.serial
    crl, _, _ = get_crl(h)
    assert entry(crl, c1) is None, "listed before the grace ended"
    # superseded all the same: it cannot renew again
    st, _, body = renew(h, c1)
    assert st == 403, (st, body)


# --- revoke --------------------------------------------------------------------

def test_revoke(make_httpd, ca, keydir):
    h = make_httpd(location_conf=LOC)
    a1, a2, a3, a4 = (enroll(h, keydir, "alice") for _ in range(4))
    b1, b2 = (enroll(h, keydir, "bob") for _ in range(2))

    # with one's own certificate, JSON, curl
    rc, st, body = curl_rc(h, *a1.curl(), "-H",
                           "Content-Type: application/json", "-d",
                           json.dumps({"serial": a1.serial,
                                       "reason": "keyCompromise"}),
                           h.base + "/revoke")
    assert rc == 0 and st == 200, (rc, st, body)
    doc = json.loads(body)
    assert doc["serial"] == a1.serial and doc["status"] == "revoked"
    assert doc["reason"] == "keyCompromise"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["revoked_at"])

    # with the site login, as a form: X-Requested-With is required
    st, _, doc, body = revoke(h, a2.serial, "affiliationChanged", form=True,
                              xrw=False, user="alice")
    assert st == 403, (st, body)
    st, _, doc, _ = api_certs(h, user="alice")
    assert {c["serial"]: c["status"] for c in doc["certificates"]}[
        a2.serial] == "valid"
    st, _, doc, body = revoke(h, a2.serial, "affiliationChanged", form=True,
                              user="alice")
    assert st == 200, (st, body)
    assert doc["reason"] == "affiliationChanged"

    # an administrator revokes bob's certificate
    st, _, doc, body = revoke(h, b1.serial, "privilegeWithdrawn",
                              user="admin")
    assert st == 200, (st, body)

    # another owner's serial: 403, by login and by certificate
    st, _, doc, body = revoke(h, b2.serial, "keyCompromise", user="alice")
    assert st == 403, (st, body)
    st, _, doc, body = revoke(h, b2.serial, client_cert=a3.tls)
    assert st == 403, (st, body)
    st, _, doc, _ = api_certs(h, user="bob")
    assert {c["serial"]: c["status"] for c in doc["certificates"]}[
        b2.serial] == "valid"

    # unknown 404, already revoked 409 with the existing status
    st, _, doc, body = revoke(h, "0123456789ABCDEF01", user="alice")
    assert st == 404, (st, body)
    st, _, doc, body = revoke(h, a1.serial.lower(), "unspecified",
                              user="alice")
    assert st == 409, (st, body)
    assert "revoked" in doc["detail"] and "keyCompromise" in doc["detail"], doc

    # bad reason, bad serial, bad dates: 400
    for kw in ({"serial": a3.serial, "reason": "stolen"},
               {"serial": a3.serial, "reason": "cACompromise"},
               {"serial": "xyz"}, {"serial": ""}, {},
               {"serial": a3.serial,
                "invalidity": iso(datetime.datetime.now(UTC)
                                  + datetime.timedelta(days=2))},
               {"serial": a3.serial, "invalidity": "yesterday"}):
        st, _, doc, body = revoke(h, user="alice", **kw)
        assert st == 400, (kw, st, body)
        assert set(doc) == {"error", "detail"}
    st, _, doc, body = revoke(h, "zz", form=True, user="alice")
    assert st == 400, (st, body)

    # an invalidity date in the past: invalidityDate on the CRL entry
    when = (datetime.datetime.now(UTC) - datetime.timedelta(days=3)).replace(
        microsecond=0)
    st, _, doc, body = revoke(h, a3.serial, "keyCompromise", iso(when),
                              client_cert=a4.tls)
    assert st == 200, (st, body)

    expect = {a1: x509.ReasonFlags.key_compromise,
              a2: x509.ReasonFlags.affiliation_changed,
              b1: x509.ReasonFlags.privilege_withdrawn,
              a3: x509.ReasonFlags.key_compromise}
    crl = poll_crl(h, lambda c: all(entry(c, x) is not None for x in expect),
                   "the four revocations")
    for holder, reason in expect.items():
        rev = entry(crl, holder)
        assert rev is not None, holder.serial
        assert entry_reason(rev) == reason
    for holder in (a4, b2):
        assert entry(crl, holder) is None
    inv = entry(crl, a3).extensions.get_extension_for_class(
        x509.InvalidityDate).value.invalidity_date
    assert utc(inv) == when
    with pytest.raises(x509.ExtensionNotFound):
        entry(crl, a1).extensions.get_extension_for_class(x509.InvalidityDate)


# --- the authorization matrix ---------------------------------------------------

TLS_FAIL = "TLS handshake refused"
OWN = "only the caller's own"
OTHERS = "the other owner's"

# who -> (renew, revoke, list, admin search, audit)
MATRIX = {
    "anonymous":       (401, 401, 401, 401, 401),
    "other_login":     (401, 403, 200, OWN, 403),
    "own_cert":        (201, 200, 200, OWN, 403),
    "revoked_cert":    (403, 401, 401, 401, 401),
    "expired_cert":    (TLS_FAIL,) * 5,
    "foreign_ca_cert": (TLS_FAIL,) * 5,
    "administrator":   (401, 200, 200, OTHERS, 200),
    # beyond the list: a certificate that verifies (signed with the
    # CA's key) but that the store does not know, and a superseded one
    "unknown_cert":    (403, 401, 401, 401, 401),
    "superseded_cert": (403, 401, 401, 401, 401),
}
ACTIONS = ("renew", "revoke", "list", "search", "audit")
CELLS = [(who, act, MATRIX[who][i]) for who in MATRIX
         for i, act in enumerate(ACTIONS)]


@pytest.fixture(scope="module")
def matrix_env(ca, life, keydir, tmp_path_factory):
    now = datetime.datetime.now(UTC)
    foreign = harness.TestCA(str(tmp_path_factory.mktemp("foreign")))
    env = {
        "expired": handmade_cert(ca, keydir, now - datetime.timedelta(days=40),
                                 now - datetime.timedelta(days=10)),
        "unknown": handmade_cert(ca, keydir, now - datetime.timedelta(hours=1),
                                 now + datetime.timedelta(days=10)),
        "foreign": handmade_cert(foreign, keydir,
                                 now - datetime.timedelta(hours=1),
                                 now + datetime.timedelta(days=10)),
        "bob": enroll(life, keydir, "bob"),
    }
    return env


def identity(h, who, env, keydir):
    """(request keyword arguments, the caller's owner name or None)."""
    if who == "anonymous":
        return {}, None
    if who == "other_login":
        return {"user": "bob"}, "bob"
    if who == "administrator":
        return {"user": "admin"}, "admin"
    if who == "own_cert":
        return {"client_cert": enroll(h, keydir, "alice").tls}, "alice"
    if who == "revoked_cert":
        c = enroll(h, keydir, "alice")
        st, _, _, body = revoke(h, c.serial, "keyCompromise", user="alice")
        assert st == 200, body
        return {"client_cert": c.tls}, "alice"
    if who == "superseded_cert":
        c = enroll(h, keydir, "alice")
        st, _, body = renew(h, c)
        assert st == 201, body
        return {"client_cert": c.tls}, "alice"
    if who == "expired_cert":
        return {"client_cert": env["expired"].tls}, "alice"
    if who == "unknown_cert":
        return {"client_cert": env["unknown"].tls}, "alice"
    if who == "foreign_ca_cert":
        return {"client_cert": env["foreign"].tls}, "alice"
    raise ValueError(who)


@pytest.mark.parametrize("who,action,expected", CELLS,
                         ids=["%s-%s" % c[:2] for c in CELLS])
def test_authorization_matrix(life, keydir, matrix_env, who, action,
                              expected):
    h = life
    kw, me = identity(h, who, matrix_env, keydir)
    # the object of renew is the presented certificate; of revoke, a valid
    # certificate of alice's (not the presented one); the admin search asks
    # for the certificates of somebody else than the caller
    target = enroll(h, keydir, "alice")
    other = "alice" if me == "bob" else "bob"
    if action == "renew":
        call = lambda: h.request("POST", "/ca/renew", body=b"",
                                 headers={"X-Requested-With": "test"}, **kw)
    elif action == "revoke":
        call = lambda: h.request("POST", "/ca/revoke", body=json.dumps(
            {"serial": target.serial, "reason": "keyCompromise"}),
            headers={"Content-Type": "application/json"}, **kw)
    elif action == "list":
        call = lambda: h.request("GET", "/ca/api/certs", **kw)
    elif action == "search":
        call = lambda: h.request("GET", "/ca/api/certs?owner=%s&limit=1000"
                                 % other, **kw)
    else:
        call = lambda: h.request("GET", "/ca/api/audit", **kw)

    if expected == TLS_FAIL:
        with pytest.raises(ssl.SSLError):
            call()
        # curl as well: 35 (handshake) or 56 (TLS 1.3: the alert comes
        # with the first read)
        rc, st, out = curl_rc(h, "--cert", kw["client_cert"][0], "--key",
                              kw["client_cert"][1],
                              h.base + ("/api/certs" if action != "renew"
                                        else "/renew"),
                              *(["-X", "POST"] if action == "renew" else []))
        assert rc in (35, 56) and st == 0, (rc, st, out)
        return

    st, hd, body = call()
    status = 200 if expected in (OWN, OTHERS) else expected
    assert st == status, (who, action, st, body)
    doc = json.loads(body) if hd.get("content-type", "").startswith(
        "application/json") else None
    if st in (401, 403) and who.endswith("_cert") and doc:
        word = {"revoked_cert": "revoked", "superseded_cert": "superseded",
                "unknown_cert": "unknown"}.get(who)
        if word:
            assert word in doc["detail"], doc
    if action == "renew" and st == 201:
        assert x509.load_pem_x509_certificate(body).subject == \
            x509.load_pem_x509_certificate(
                open(kw["client_cert"][0], "rb").read()).subject
    if action == "revoke":
        st2, _, doc2, _ = api_certs(h, "?owner=alice&limit=1000",
                                    user="admin")
        status_of = {c["serial"]: c["status"]
                     for c in doc2["certificates"]}
        assert status_of[target.serial] == ("revoked" if st == 200
                                            else "valid")
    if action == "list" and st == 200:
        owners = {c["owner"] for c in doc["certificates"]}
        if who == "administrator":
            assert {"alice", "bob"} <= owners
        else:
            assert owners == {me}
    if action == "search" and st == 200:
        owners = {c["owner"] for c in doc["certificates"]}
        assert owners == ({me} if expected == OWN else {other}), owners
    if action == "audit" and st == 200:
        assert isinstance(doc["events"], list) and doc["events"]


# --- CRL -------------------------------------------------------------------------

def tbs_elements(tbs):
    """The tags and lengths of the elements of a DER TBSCertList."""
    def header(buf, i):
        tag = buf[i]
        n = buf[i + 1]
        i += 2
        if n & 0x80:
            k = n & 0x7f
            n = int.from_bytes(buf[i:i + k], "big")
            i += k
        return tag, n, i
    tag, n, i = header(tbs, 0)
    assert tag == 0x30
    out = []
    while i < len(tbs):
        tag, n, j = header(tbs, i)
        out.append((tag, n))
        i = j + n
    return out


def test_crl(make_httpd, ca, keydir):
    h = make_httpd(location_conf=LOC)
    cacert = x509.load_pem_x509_certificate(ca.pem)
    ca_ski = cacert.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier).value.digest

    crl, hd, der = get_crl(h)
    assert hd["content-type"] == "application/pkix-crl"
    assert crl.is_signature_valid(cacert.public_key())
    assert crl.issuer == cacert.subject
    aki = crl.extensions.get_extension_for_class(
        x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ca_ski
    n0 = crl_number(crl)
    assert n0 >= 1 and len(crl) == 0
    # v2, and no empty revokedCertificates list: version, signature, issuer,
    # thisUpdate, nextUpdate, [0] extensions
    elems = tbs_elements(crl.tbs_certlist_bytes)
    assert elems[0] == (0x02, 1)
    assert [t for t, _ in elems] == [0x02, 0x30, 0x30, 0x17, 0x17, 0xA0], \
        elems
    # the PEM form: the same CRL
    pcrl, phd, _ = get_crl(h, pem=True)
    assert phd["content-type"] == "application/x-pem-file"
    assert pcrl.public_bytes(serialization.Encoding.DER) == der

    # caching headers
    etag, lm = hd["etag"], hd["last-modified"]
    m = re.search(r"max-age=(\d+)", hd["cache-control"])
    assert m and 0 < int(m.group(1)) <= 7 * DAY, hd["cache-control"]
    nu = utc(crl.next_update)
    assert utc(crl.last_update) < nu <= utc(crl.last_update) + \
        datetime.timedelta(days=7)
    assert lm == utc(crl.last_update).strftime("%a, %d %b %Y %H:%M:%S GMT")
    for cond in ({"If-None-Match": etag}, {"If-Modified-Since": lm}):
        st, hd2, body = h.get("/ca/crl", headers=cond)
        assert st == 304 and body == b"", (cond, st, body)
        assert hd2.get("etag") == etag
    st, _, body = h.get("/ca/crl", headers={"If-None-Match": '"other"'})
    assert st == 200 and body == der

    # revocations: the number only grows, openssl agrees
    good, bad1, bad2 = (enroll(h, keydir, "alice") for _ in range(3))
    st, _, _, body = revoke(h, bad1.serial, "keyCompromise", user="alice")
    assert st == 200, body
    poll_crl(h, lambda c: crl_number(c) > n0, "a CRL after the revocation")
    crl1, hd1, _ = get_crl(h)
    assert crl_number(crl1) > n0
    assert hd1["etag"] != etag
    st, _, body = h.get("/ca/crl", headers={"If-None-Match": etag})
    assert st == 200, "the old ETag must not match the new CRL"
    st, _, _, body = revoke(h, bad2.serial, "cessationOfOperation",
                            client_cert=bad2.tls)
    assert st == 200, body
    crl2 = poll_crl(h, lambda c: entry(c, bad2) is not None,
                    "the second revocation")
    assert crl_number(crl2) > crl_number(crl1)
    assert crl2.is_signature_valid(cacert.public_key())
    assert entry_reason(entry(crl2, bad1)) == x509.ReasonFlags.key_compromise
    assert entry_reason(entry(crl2, bad2)) == \
        x509.ReasonFlags.cessation_of_operation
    assert [t for t, _ in tbs_elements(crl2.tbs_certlist_bytes)] == \
        [0x02, 0x30, 0x30, 0x17, 0x17, 0x30, 0xA0]
    _, _, crl_pem = h.get("/ca/crl.pem")
    for holder in (bad1, bad2):
        rc, out = openssl_crl_check(ca, crl_pem, holder)
        assert rc != 0 and "certificate revoked" in out, out
    rc, out = openssl_crl_check(ca, crl_pem, good)
    assert rc == 0, out


def test_crl_validity_days(make_httpd):
    h = make_httpd(vhost_conf="CertAuthCRLValidityDays 2")
    crl, hd, _ = get_crl(h)
    assert utc(crl.next_update) - utc(crl.last_update) == \
        datetime.timedelta(days=2)
    m = re.search(r"max-age=(\d+)", hd["cache-control"])
    assert m and 0 < int(m.group(1)) <= 2 * DAY


def test_crl_cache_shared_by_children(make_httpd, keydir):
    """A revocation made in one prefork child is served at once by the
    others (default CertAuthCRLRefreshSeconds 60, so no child may wait for
    the database)."""
    h = make_httpd(start=False, mpm="prefork", location_conf=LOC)
    access = os.path.join(h.root, "logs", "access_log")
    h.server_conf = ("StartServers 8\nMinSpareServers 8\nMaxSpareServers 12\n"
                     'LogFormat "%P %{remote}p %U %>s" pids\n'
                     'CustomLog "' + access + '" pids\n')
    h.write_conf()
    h.start()
    victim = enroll(h, keydir, "alice")

    def pid_of(port):
        # the access log line is written just after the response is sent
        deadline = time.time() + 3
        while time.time() < deadline:
            with open(access) as f:
                for line in reversed(f.read().splitlines()):
                    pid, p, path, _ = line.split()
                    if int(p) == port and path == "/ca/crl":
                        return int(pid)
            time.sleep(0.05)
        return None

    def get_on(conn):
        conn.request("GET", "/ca/crl")
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200
        return crl_number(x509.load_der_x509_crl(body))

    # four keep-alive connections held open at once: prefork serves each in
    # its own child, and each child loads the CRL into its own cache
    held = [http.client.HTTPSConnection("127.0.0.1", h.port,
                                        context=h.ssl_context(), timeout=10)
            for _ in range(4)]
    try:
        before = [get_on(c) for c in held]
        assert len(set(before)) == 1
        ports = [c.sock.getsockname()[1] for c in held]
        pids = [pid_of(p) for p in ports]
        assert None not in pids and len(set(pids)) == 4, pids

        st, _, _, body = revoke(h, victim.serial, "keyCompromise",
                                user="alice")
        assert st == 200, body

        # made by the watchdog within CertAuthCRLDelay, then served by
        # every child at once
        deadline = time.time() + 10
        while get_on(held[0]) <= before[0] and time.time() < deadline:
            time.sleep(0.1)
        after = [get_on(c) for c in held]
        assert [c.sock.getsockname()[1] for c in held] == ports
        assert all(n > before[0] for n in after), (before, after)
        assert len(set(after)) == 1
    finally:
        for c in held:
            c.close()
    new = after[0]
    # and 20 fresh connections, whichever children they reach
    for _ in range(20):
        crl, _, _ = get_crl(h)
        assert crl_number(crl) == new
        assert entry(crl, victim) is not None
    with open(access) as f:
        seen = {line.split()[0] for line in f if " /ca/crl " in line}
    assert len(seen) >= 4, seen


# --- api/certs filters --------------------------------------------------------------

PROFILE_SHORT = """
    <CertAuthProfile short>
        CertAuthSubjectRDN CN "%{REMOTE_USER}"
        CertAuthValidityDays 10
    </CertAuthProfile>
"""


def test_api_certs_filters(make_httpd, keydir):
    h = make_httpd(location_conf=LOC, vhost_conf=PROFILE_SHORT)
    a1 = enroll(h, keydir, "alice", tag="zebra")
    a2 = enroll(h, keydir, "alice", tag="lion")
    a3 = enroll(h, keydir, "alice", profile="short")
    b1 = enroll(h, keydir, "bob", tag="zebra")
    b2 = enroll(h, keydir, "bob", tag="lion")
    b3 = enroll(h, keydir, "bob", tag="tiger")
    b4 = enroll(h, keydir, "bob", profile="short")
    everyone = {c.serial for c in (a1, a2, a3, b1, b2, b3, b4)}
    st, _, _, body = revoke(h, b2.serial, "keyCompromise", user="admin")
    assert st == 200, body

    def serials(query, user="admin", **kw):
        st, _, doc, body = api_certs(h, query, user=user, **kw)
        assert st == 200, (query, st, body)
        return {c["serial"] for c in doc["certificates"]}, doc

    assert serials("")[0] == everyone
    assert serials("?status=revoked")[0] == {b2.serial}
    assert serials("?status=valid")[0] == everyone - {b2.serial}
    assert serials("?owner=bob")[0] == {b1.serial, b2.serial, b3.serial,
                                        b4.serial}
    assert serials("?owner=alice&status=valid")[0] == {a1.serial, a2.serial,
                                                       a3.serial}
    assert serials("?subject=zebra")[0] == {a1.serial, b1.serial}
    assert serials("?subject=OU%3Dlion")[0] == {a2.serial, b2.serial}
    # LIKE wildcards are searched literally
    assert serials("?subject=%25")[0] == set()
    assert serials("?subject=_")[0] == set()
    assert serials("?expiring_within_days=15")[0] == {a3.serial, b4.serial}
    assert serials("?expiring_within_days=25&owner=bob&status=valid")[0] == \
        {b1.serial, b3.serial, b4.serial}
    _, doc = serials("?owner=alice")
    assert {c["profile"] for c in doc["certificates"]} == {"default", "short"}

    # paging
    seen = []
    for offset, more in ((0, True), (3, True), (6, False)):
        got, doc = serials("?limit=3&offset=%d" % offset)
        assert doc["limit"] == 3 and doc["offset"] == offset
        assert doc["more"] is more
        assert len(got) == (3 if more else 1)
        seen += list(got)
    assert len(seen) == len(set(seen)) and set(seen) == everyone
    got, doc = serials("?limit=7")
    assert len(got) == 7 and doc["more"] is False
    got, doc = serials("?offset=100")
    assert got == set() and doc["more"] is False

    # not an administrator: one's own only, whatever owner= says
    assert serials("?owner=bob", user="alice")[0] == {a1.serial, a2.serial,
                                                      a3.serial}
    assert serials("?status=revoked", user="bob")[0] == {b2.serial}
    assert serials("?owner=alice", client_cert=b1.tls, user=None)[0] == \
        {b1.serial, b2.serial, b3.serial, b4.serial}

    for bad in ("limit=0", "limit=1001", "limit=x", "limit=", "offset=-1",
                "expiring_within_days=-1", "expiring_within_days=z",
                "status=bogus"):
        st, _, doc, body = api_certs(h, "?" + bad, user="admin")
        assert st == 400, (bad, st, body)
        assert set(doc) == {"error", "detail"}


# --- audit ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def audited(ca, tmp_path_factory):
    """A server with one of each event; returns (server, events, holders)."""
    keys = str(tmp_path_factory.mktemp("auditkeys"))
    h = Httpd(ca, location_conf=LOC)
    try:
        h.start()
        a1 = enroll(h, keys, "alice")
        st, _, body = renew(h, a1)
        assert st == 201, body
        a2 = Holder(body, a1.key, keys)
        a3 = enroll(h, keys, "alice")
        b1 = enroll(h, keys, "bob")
        assert revoke(h, a3.serial, "keyCompromise", user="alice")[0] == 200
        assert revoke(h, b1.serial, "privilegeWithdrawn",
                      user="admin")[0] == 200
        assert revoke(h, a2.serial, "keyCompromise", user="bob")[0] == 403
        # the CRLs are made outside the requests, within CertAuthCRLDelay
        poll_crl(h, lambda crl: entry(crl, a3) is not None
                 and entry(crl, b1) is not None, "the revocations")
        st, _, doc, body = jrequest(h, "GET", "/ca/api/audit?limit=1000",
                                    user="admin")
        assert st == 200, body
        yield h, doc["events"], dict(a1=a1, a2=a2, a3=a3, b1=b1)
    finally:
        h.cleanup()


def find(events, **want):
    return [e for e in events if all(e.get(k) == v for k, v in want.items())]


def test_audit(audited):
    h, events, c = audited
    for e in events:
        assert set(e) == {"at", "actor", "auth", "client", "action", "serial",
                          "outcome", "detail"}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", e["at"])
        # CRLs are made by the server itself (its watchdog), not a client
        assert e["client"] == ("" if e["action"] == "crl" else "127.0.0.1")
    ren = find(events, action="renew", outcome="ok", serial=c["a2"].serial)
    assert len(ren) == 1, events
    assert ren[0]["actor"] == "alice" and ren[0]["auth"] == "cert"
    assert c["a1"].serial in ren[0]["detail"]
    rev = find(events, action="revoke", outcome="ok", serial=c["a3"].serial)
    assert len(rev) == 1 and rev[0]["actor"] == "alice"
    assert rev[0]["auth"] == "login"
    rev = find(events, action="revoke", outcome="ok", serial=c["b1"].serial)
    assert len(rev) == 1 and rev[0]["actor"] == "admin"
    assert rev[0]["auth"] == "admin"
    ref = find(events, action="revoke", outcome="refused",
               serial=c["a2"].serial)
    assert len(ref) == 1 and ref[0]["actor"] == "bob"
    assert ref[0]["auth"] == "login" and ref[0]["detail"]
    # CRLs were made after the renewal and the revocations (a burst of
    # changes may share one)
    crls = find(events, action="crl", outcome="ok")
    assert len(crls) >= 1 and all(e["actor"] == "-" for e in crls), crls
    # newest first, and ?serial= selects
    ats = [e["at"] for e in events]
    assert ats == sorted(ats, reverse=True)
    st, _, doc, body = jrequest(h, "GET", "/ca/api/audit?serial=" +
                                c["a2"].serial.lower(), user="admin")
    assert st == 200, body
    assert doc["events"] and all(e["serial"] == c["a2"].serial
                                 for e in doc["events"])
    st, _, doc, body = jrequest(h, "GET", "/ca/api/audit?limit=2",
                                user="admin")
    assert st == 200 and len(doc["events"]) == 2
    # administrators only
    for kw in ({"user": "alice"}, {"client_cert": c["a2"].tls}):
        st, _, doc, body = jrequest(h, "GET", "/ca/api/audit", **kw)
        assert st == 403, (kw, body)
    # and in the error log at level info
    log = h.log()
    assert re.search(r"audit: renew ok serial=%s by alice \(cert\) from "
                     r"127\.0\.0\.1" % c["a2"].serial, log), log[-3000:]
    assert re.search(r"audit: revoke ok serial=%s by admin \(admin\)"
                     % c["b1"].serial, log)


def test_audit_records_enrollment(audited):
    """README: "Every enrollment, renewal, revocation (and refusal) and CRL
    is recorded in the database"."""
    h, events, c = audited
    enr = [e for e in events if e["serial"] == c["a1"].serial
           and e["outcome"] == "ok" and e["action"] != "renew"]
    assert enr, "no audit event for the enrollment of %s: %s" % (
        c["a1"].serial, sorted({(e["action"], e["outcome"])
                                for e in events}))
    assert enr[0]["actor"] == "alice" and enr[0]["auth"] == "login"
    assert enr[0]["client"] == "127.0.0.1"


def test_audit_records_refused_renewal(httpd, keydir):
    """A renewal refused as too early is a refusal, recorded like the
    others."""
    c = enroll(httpd, keydir, "alice")
    st, _, body = renew(httpd, c)
    assert st == 403, body
    st, _, doc, body = jrequest(httpd, "GET", "/ca/api/audit?limit=1000",
                                user="admin")
    assert st == 200, body
    got = [e for e in doc["events"] if e["action"] == "renew"
           and e["outcome"] == "refused" and e["serial"] == c.serial]
    assert got, sorted({(e["action"], e["outcome"], e["serial"])
                        for e in doc["events"]})
    assert got[0]["auth"] == "cert" and got[0]["actor"] == "alice"


# --- certauth-admin on the server's database -----------------------------------

def test_certauth_admin_revoke_and_gencrl(make_httpd, ca, keydir):
    h = make_httpd(location_conf=LOC,
                   vhost_conf="CertAuthCRLRefreshSeconds 1")
    b1 = enroll(h, keydir, "bob")
    b2 = enroll(h, keydir, "bob")

    crl0, _, _ = get_crl(h)   # the server makes its first CRL now
    # (a revocation in the very second of the CRL's thisUpdate is the
    # subject of the next test)
    time.sleep(1.1)
    admin_revoke(h, b1, "keyCompromise")
    crl = poll_crl(h, lambda c: entry(c, b1) is not None,
                   "the revocation made by certauth-admin revoke")
    assert entry_reason(entry(crl, b1)) == x509.ReasonFlags.key_compromise
    assert crl_number(crl) > crl_number(crl0)
    assert revoked_at(h, b1)["status"] == "revoked"
    # revoked from the shell: the certificate no longer authenticates
    st, _, doc, body = api_certs(h, client_cert=b1.tls)
    assert st == 401 and "revoked" in doc["detail"], body

    # gencrl, with copies of the CA files the server's user can read
    ops = os.path.join(h.root, "ops")
    os.makedirs(ops)
    key = os.path.join(ops, "cakey.pem")
    cert = os.path.join(ops, "cacert.pem")
    shutil.copyfile(ca.key, key)
    shutil.copyfile(ca.cert, cert)
    os.chmod(key, 0o600)
    if h.user:
        pw = pwd.getpwnam(h.user)
        for p in (ops, key, cert):
            os.chown(p, pw.pw_uid, pw.pw_gid)
    out = os.path.join(ops, "crl.pem")
    admin_revoke(h, b2, "superseded")
    r = as_server_user(h, [ADMIN, "gencrl", "--db", "sqlite3:" + h.db,
                           "--ca-cert", cert, "--ca-key", key, "--days", "3",
                           "--out", out])
    assert r.returncode == 0, r.stderr
    m = re.search(rb"CRL number (\d+)", r.stdout)
    assert m, r.stdout
    number = int(m.group(1))
    assert number > crl_number(crl)
    with open(out, "rb") as f:
        made = x509.load_pem_x509_crl(f.read())
    assert crl_number(made) == number
    assert entry_reason(entry(made, b2)) == x509.ReasonFlags.superseded
    crl = poll_crl(h, lambda c: crl_number(c) >= number,
                   "the CRL made by certauth-admin gencrl")
    # the very CRL gencrl made, with both revocations
    assert crl.public_bytes(serialization.Encoding.DER) == \
        made.public_bytes(serialization.Encoding.DER)
    assert utc(crl.next_update) - utc(crl.last_update) == \
        datetime.timedelta(days=3)
    assert entry(crl, b1) is not None and entry(crl, b2) is not None


def test_certauth_admin_revoke_in_the_second_of_the_crl(make_httpd, keydir):
    """certauth-admin revoke in the same second as the server made its CRL
    (the ordinary case: somebody fetches the CRL, the operator revokes).
    README: "httpd serves ... one reflecting a revocation made by revoke,
    within CertAuthCRLRefreshSeconds"."""
    h = make_httpd(location_conf=LOC,
                   vhost_conf="CertAuthCRLRefreshSeconds 1")
    b1 = enroll(h, keydir, "bob")
    # start at the beginning of a second, so that the CRL and the
    # revocation below share it
    time.sleep(1.02 - time.time() % 1)
    crl0, _, _ = get_crl(h)   # the server makes its first CRL now
    admin_revoke(h, b1, "keyCompromise")
    same = revoked_at(h, b1)["revoked_at"] == iso(crl0.last_update)
    if not same:
        pytest.skip("could not revoke within the CRL's second (slow host)")
    poll_crl(h, lambda c: entry(c, b1) is not None,
             "a revocation by certauth-admin in the second of thisUpdate "
             "(%s)" % iso(crl0.last_update))
