"""The OCSP responder (issue 17) against clients nobody here wrote:
`openssl ocsp` (POST, GET form, nonce, several certificates, SHA-256
CertIDs), GnuTLS `ocsptool`, NSS `vfychain -pp -g leaf -m ocsp`, mod_ssl
stapling (`openssl s_client -status`) and stunnel4 `OCSPaia = yes`; plus
malformed and hostile requests, each answered with a well-formed OCSP
error response.

The responder is served on a plain-HTTP virtual host (as mod_ssl and stunnel
fetch OCSP over http://) next to the harness's HTTPS one; both share the
database.  Every process started here is stopped by its PID when the test
ends, pass or fail.
"""
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from harness import (APACHE, MODDIR, Httpd, assert_no_crash, free_port, run)

STUNNEL = shutil.which("stunnel4") or shutil.which("stunnel") \
    or "/usr/bin/stunnel4"

# The Location's own profile: names from the CSR (servers and clients)
LOCATION_CONF = """
        CertAuthSubjectCSR CN supplied maxlen=64 chars=a-zA-Z0-9._-
        CertAuthSANFromCSR DNS localhost
        CertAuthSANFromCSR IP 127.0.0.1
        CertAuthExtendedKeyUsage serverAuth clientAuth
"""

HTTP_VHOST = """
Listen 127.0.0.1:{hp}
<VirtualHost 127.0.0.1:{hp}>
    ServerName 127.0.0.1
    AllowEncodedSlashes NoDecode
    MergeSlashes Off
    # what httpd refuses before any module (a bad %-escape) still gets an
    # OCSP response
    ErrorDocument 400 /ca/ocsp/error
    DBDriver {driver}
    DBDParams "{db}"
    CertAuthCACertificateFile {cert}
    CertAuthCAKeyFile {key}
    CertAuthBaseURL {base}
    CertAuthCRLRefreshSeconds 1
    CertAuthOCSP On
    {extra}
    <Location /ca>
        CertAuth On
        Require all granted
    </Location>
    # over plain HTTP only what relying parties fetch
    <LocationMatch "^/ca/(?!ocsp(/|$)|crl$|cacert\\.(crt|pem)$)">
        Require all denied
    </LocationMatch>
</VirtualHost>
"""


class OcspServer:
    """The harness's HTTPS server (enroll, revoke) plus the plain-HTTP
    virtual host with the responder."""

    def __init__(self, ca, extra="", mpm="event", **kw):
        self.hp = free_port()
        self.ocsp_url = "http://127.0.0.1:%d/ca/ocsp" % self.hp
        self.h = Httpd(ca, mpm=mpm, location_conf=LOCATION_CONF, **kw,
                       vhost_conf="CertAuthOCSP On\n"
                                  "    CertAuthOCSPURL %s\n"
                                  "    CertAuthCRLRefreshSeconds 1\n"
                                  "    AllowEncodedSlashes NoDecode\n"
                                  "    MergeSlashes Off\n    %s"
                                  % (self.ocsp_url, extra))
        self.h.server_conf = HTTP_VHOST.format(
            hp=self.hp, db=self.h.db_params, driver=self.h.db_driver,
            cert=ca.cert, key=ca.key,
            base=self.h.base, extra=extra)
        self.h.write_conf()
        self.h.start()


def serve(ca, **kw):
    s = None
    try:
        s = OcspServer(ca, **kw)
        yield s
        s.h.stop()
        assert_no_crash(s.h)
    finally:
        if s:
            s.h.cleanup()


@pytest.fixture(scope="module")
def srv(ca):
    yield from serve(ca)


@pytest.fixture(scope="module")
def wd(tmp_path_factory):
    d = tmp_path_factory.mktemp("ocsp")
    os.chmod(str(d), 0o755)
    return str(d)


class Holder:
    def __init__(self, wd, name, pem, key):
        self.cert = os.path.join(wd, name + ".pem")
        self.key = os.path.join(wd, name + ".key")
        with open(self.cert, "wb") as f:
            f.write(pem)
        with open(self.key, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        os.chmod(self.key, 0o600)
        self.x509 = x509.load_pem_x509_certificate(pem)
        s = "%X" % self.x509.serial_number
        self.serial = "0" + s if len(s) % 2 else s


_n = [0]


def enroll(srv, wd, cn=None):
    _n[0] += 1
    cn = cn or "host%d.localhost" % _n[0]
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    ).add_extension(x509.SubjectAlternativeName(
        [x509.DNSName("localhost")]), critical=False).sign(key,
                                                           hashes.SHA256())
    st, hd, body = srv.h.enroll(csr.public_bytes(serialization.Encoding.PEM),
                                user="alice")
    assert st == 201, body
    return Holder(wd, cn, body, key)


def revoke(srv, holder, reason="keyCompromise"):
    st, hd, body = srv.h.request(
        "POST", "/ca/revoke", user="admin",
        body=json.dumps({"serial": holder.serial, "reason": reason}),
        headers={"Content-Type": "application/json"})
    assert st == 200, body


def openssl_ocsp(srv, ca, *args, certs=(), url=None, check=True):
    cmd = ["openssl", "ocsp", "-issuer", ca.cert, "-CAfile", ca.cert,
           "-url", url or srv.ocsp_url, "-timeout", "20"] + list(args)
    for c in certs:
        cmd += ["-cert", c.cert]
    r = subprocess.run(cmd, capture_output=True, timeout=60)
    out = (r.stdout + r.stderr).decode(errors="replace")
    if check:
        assert r.returncode == 0, out
    return out


def post(srv, body, ctype="application/ocsp-request", method="POST"):
    req = urllib.request.Request(srv.ocsp_url, data=body, method=method,
                                 headers={"Content-Type": ctype}
                                 if ctype else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def request_der(ca_cert, holders, nonce=None, algo=None):
    issuer = x509.load_pem_x509_certificate(ca_cert)
    b = ocsp.OCSPRequestBuilder()
    for h in holders:
        b = b.add_certificate(h.x509, issuer, algo or hashes.SHA1())
    if nonce is not None:
        b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
    return b.build().public_bytes(serialization.Encoding.DER)


def openssl_request(ca, holders, *args):
    """An OCSP request made by `openssl ocsp -reqout` (several CertIDs)."""
    with tempfile.TemporaryDirectory() as d:
        f = os.path.join(d, "req.der")
        cmd = ["openssl", "ocsp", "-issuer", ca.cert, "-no_nonce",
               "-reqout", f] + list(args)
        for h in holders:
            cmd += ["-cert", h.cert]
        run(cmd)
        with open(f, "rb") as r:
            return r.read()


def assert_error(st, hd, body, http, status):
    """A well-formed OCSP error response, nothing else."""
    assert st == http, (st, body[:200])
    assert hd.get("Content-Type") == "application/ocsp-response", hd
    resp = ocsp.load_der_ocsp_response(body)
    assert resp.response_status == status, resp.response_status
    assert "no-store" in hd.get("Cache-Control", "")


# --------------------------------------------------------------------------
# openssl ocsp

@pytest.fixture(scope="module")
def certs(srv, wd):
    """Three valid certificates and one revoked for keyCompromise."""
    good = [enroll(srv, wd) for _ in range(3)]
    bad = enroll(srv, wd)
    revoke(srv, bad, "keyCompromise")
    wait_on_crl(srv, bad)
    return good, bad


def wait_on_crl(srv, holder):
    """The CRL that lists a revocation comes from the watchdog within
    CertAuthCRLDelay; wait for it, so that the CRL generation stays put."""
    deadline = time.time() + 10
    while True:
        st, _, der = srv.h.get("/ca/crl")
        assert st == 200
        if x509.load_der_x509_crl(der).get_revoked_certificate_by_serial_number(
                holder.x509.serial_number) is not None:
            break
        assert time.time() < deadline, "the revocation is not on the CRL"
        time.sleep(0.1)


def test_aia_names_responder(srv, certs):
    good, _ = certs
    aia = good[0].x509.extensions.get_extension_for_class(
        x509.AuthorityInformationAccess).value
    got = {(d.access_method._name, d.access_location.value) for d in aia}
    assert ("OCSP", srv.ocsp_url) in got, got
    # caIssuers: the issuing CA's own URL, cacert/KEYID.crt
    kid = x509.load_pem_x509_certificate(srv.h.ca.pem).extensions \
        .get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert ("caIssuers", srv.h.base + "/cacert/%s.crt" % kid.hex()) in got, \
        got
    # what `openssl x509 -ocsp_uri` prints is what the clients use
    r = run(["openssl", "x509", "-noout", "-ocsp_uri", "-in", good[0].cert])
    assert r.stdout.decode().strip() == srv.ocsp_url


def test_openssl_good(srv, ca, certs):
    good, _ = certs
    out = openssl_ocsp(srv, ca, certs=[good[0]])
    assert "Response verify OK" in out, out
    assert "%s: good" % good[0].cert in out, out
    assert "WARNING" not in out, out


def test_openssl_revoked_with_reason(srv, ca, certs):
    _, bad = certs
    out = openssl_ocsp(srv, ca, "-no_nonce", certs=[bad])
    assert "Response verify OK" in out, out
    assert "%s: revoked" % bad.cert in out, out
    assert "Reason: keyCompromise" in out, out
    assert "Revocation Time:" in out, out


def test_openssl_unknown_serial(srv, ca):
    out = openssl_ocsp(srv, ca, "-serial", "0x1234567890ABCDEF")
    assert "Response verify OK" in out, out
    assert "0x1234567890ABCDEF: unknown" in out, out


def test_openssl_several_and_sha256(srv, ca, certs):
    good, bad = certs
    for md in ([], ["-sha256"]):
        out = openssl_ocsp(srv, ca, "-resp_text", *md,
                           certs=[good[1], bad, good[2]])
        assert "Response verify OK" in out, out
        assert "%s: good" % good[1].cert in out
        assert "%s: good" % good[2].cert in out
        assert "%s: revoked" % bad.cert in out
        # the CertIDs come back with the client's hash algorithm
        algs = re.findall(r"Hash Algorithm: (\S+)", out)
        assert algs and set(algs) == {"sha256" if md else "sha1"}, algs


def test_openssl_nonce_fresh_cached_without(srv, ca, certs, wd):
    good, _ = certs
    outs = []
    for i in range(2):
        f = os.path.join(wd, "n%d.der" % i)
        out = openssl_ocsp(srv, ca, "-resp_text", "-respout", f,
                           certs=[good[0]])
        assert "Response verify OK" in out and "WARNING" not in out, out
        assert "OCSP Nonce" in out, out
        outs.append(open(f, "rb").read())
    assert outs[0] != outs[1]       # each nonce its own signed response
    cached = []
    for i in range(2):
        f = os.path.join(wd, "c%d.der" % i)
        out = openssl_ocsp(srv, ca, "-no_nonce", "-respout", f,
                           certs=[good[0]])
        assert "%s: good" % good[0].cert in out, out
        cached.append(open(f, "rb").read())
    assert cached[0] == cached[1]   # pre-produced, the same bytes


def test_nonce_lengths(srv, ca, certs):
    good, _ = certs
    for n in (1, 16, 32):
        st, hd, body = post(srv, request_der(ca.pem, [good[0]], b"\x07" * n))
        assert st == 200
        resp = ocsp.load_der_ocsp_response(body)
        assert resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
        nonce = resp.extensions.get_extension_for_class(x509.OCSPNonce)
        assert nonce.value.nonce == b"\x07" * n
    st, hd, body = post(srv, request_der(ca.pem, [good[0]], b"\x07" * 33))
    assert_error(st, hd, body, 400,
                 ocsp.OCSPResponseStatus.MALFORMED_REQUEST)


def revalidate(url, hd, body):
    """GET url with If-None-Match: the ETag of the answer (hd, body) got
    before.  The pre-produced response is made anew when the CRL changes (the
    watchdog's next CRL, another test's revocation), so a 200 is right when
    the response changed in between: only then, and only when the 200
    carries another ETag than the one sent, the new answer is revalidated in
    turn (at most 3 times).  A 200 with the ETag that was sent fails at
    once.  Returns the last (status, headers, body) of the answer
    revalidated."""
    for _ in range(3):
        st, hd2, body2 = get(url, {"If-None-Match": hd["ETag"]})
        if st != 200:
            return st, hd, body
        assert hd2.get("ETag") and hd2["ETag"] != hd["ETag"], \
            "200 to If-None-Match with the current ETag %s" % hd["ETag"]
        assert body2 != body, "a new ETag for the same bytes"
        hd, body = hd2, body2
    pytest.fail("the response changed at each of 3 revalidations")


def same_answer(fetch, url, body):
    """fetch() -> (status, headers, bytes) should answer the pre-produced
    response `body` got from GET url.  When it answers other bytes, the
    response may have been made anew in between (a new CRL): GET url again,
    and only if that changed too, fetch() once more to compare with the new
    one.  Returns (status, bytes fetched, the reference bytes)."""
    st, _, got = fetch()
    if st == 200 and got != body:
        st2, _, now = get(url)
        assert st2 == 200
        if now != body:
            body = now
            st, _, got = fetch()
    return st, got, body


def test_get_revalidation_after_a_change(srv, ca, certs, wd):
    """The race revalidate() allows for, made on purpose: a revocation of
    another certificate makes a new CRL and so a new response for this one;
    the old ETag then gets a 200 with the new response and its new ETag, and
    that one a 304."""
    good, bad = certs
    url = srv.ocsp_url + "/" + urllib.parse.quote(
        base64.b64encode(request_der(ca.pem, [good[2]])).decode(), safe="")
    st, hd, body = get(url)
    assert st == 200 and hd.get("ETag")
    other = enroll(srv, wd)
    revoke(srv, other, "superseded")
    wait_on_crl(srv, other)
    deadline = time.time() + 30
    while True:
        st, hd2, body2 = get(url)
        assert st == 200
        if hd2["ETag"] != hd["ETag"]:
            break
        assert time.time() < deadline, "no new response after a revocation"
        time.sleep(0.2)
    assert body2 != body
    st, hd3, body3 = get(url, {"If-None-Match": hd["ETag"]})
    assert st == 200 and hd3["ETag"] == hd2["ETag"], (st, hd3.get("ETag"))
    st, _, _ = get(url, {"If-None-Match": hd2["ETag"]})
    assert st == 304, st
    st, hd4, body4 = revalidate(url, hd, body)
    assert st == 304 and hd4["ETag"] == hd2["ETag"]


def test_get_form_and_caching_headers(srv, ca, certs, wd):
    good, bad = certs
    der = request_der(ca.pem, [bad])
    b64 = base64.b64encode(der).decode()
    url = srv.ocsp_url + "/" + urllib.parse.quote(b64, safe="")
    st, hd, body = get(url)
    assert st == 200, body
    assert hd["Content-Type"] == "application/ocsp-response"
    cc = hd["Cache-Control"]
    m = re.search(r"max-age=(\d+)", cc)
    assert m and 0 < int(m.group(1)) <= 3600, cc
    assert "public" in cc and "no-transform" in cc, cc
    assert hd.get("ETag") and hd.get("Last-Modified") and hd.get("Expires")
    f = os.path.join(wd, "get.der")
    with open(f, "wb") as o:
        o.write(body)
    out = run(["openssl", "ocsp", "-respin", f, "-issuer", ca.cert,
               "-CAfile", ca.cert, "-cert", bad.cert]).stdout.decode()
    assert "%s: revoked" % bad.cert in out, out
    # a cache revalidates with the ETag
    st, hd, body = revalidate(url, hd, body)
    assert st == 304, st
    # base64url without padding, and '/' left unencoded: the same answer
    url2 = srv.ocsp_url + "/" + base64.urlsafe_b64encode(der).decode() \
        .rstrip("=")
    st, body3, body = same_answer(lambda: get(url2), url, body)
    assert st == 200 and body3 == body
    st, body4, body = same_answer(
        lambda: get(srv.ocsp_url + "/" + b64.replace("+", "%2B")), url, body)
    assert st == 200 and body4 == body
    # '/' left unencoded where base64 has "//" (0xFF octets in a nonce make
    # one for sure): httpd must not fold it (MergeSlashes Off), or the
    # request no longer decodes
    der_n = request_der(ca.pem, [bad], nonce=b"\xff" * 8)
    raw = base64.b64encode(der_n).decode()
    assert "//" in raw
    st, hd5, body5 = get(srv.ocsp_url + "/" + raw.replace("+", "%2B"))
    assert st == 200, body5
    assert hd5["Content-Type"] == "application/ocsp-response"
    # POST answers the same pre-produced response, without caching headers
    st, body5, body = same_answer(lambda: post(srv, der), url, body)
    assert st == 200 and body5 == body
    hd5 = post(srv, der)[1]
    assert "max-age" not in hd5.get("Cache-Control", "")


def test_responder_certificate(srv, ca, certs):
    good, _ = certs
    st, hd, body = post(srv, request_der(ca.pem, [good[0]]))
    resp = ocsp.load_der_ocsp_response(body)
    assert resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert resp.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert resp.responder_key_hash and resp.responder_name is None
    assert len(resp.certificates) == 1
    rc = resp.certificates[0]
    issuer = x509.load_pem_x509_certificate(ca.pem)
    assert rc.issuer == issuer.subject
    issuer.public_key().verify(rc.signature, rc.tbs_certificate_bytes,
                               ec.ECDSA(rc.signature_hash_algorithm))
    eku = rc.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.OCSP_SIGNING]
    assert rc.extensions.get_extension_for_class(x509.OCSPNoCheck)
    life = rc.not_valid_after - rc.not_valid_before
    assert life.days <= 3, life
    assert resp.signature_hash_algorithm.name == "sha256"
    # nextUpdate within the configured hour, never after the responder's
    assert resp.next_update - resp.this_update <= \
        __import__("datetime").timedelta(seconds=3600)
    assert resp.next_update <= rc.not_valid_after
    # issued like every certificate: in the store
    st, hd, body = srv.h.request("GET", "/ca/api/certs?owner=ocsp-responder",
                                 user="admin")
    assert st == 200, body
    sers = [c["serial"].replace(":", "").upper()
            for c in json.loads(body)["certificates"]]
    s = "%X" % rc.serial_number
    assert ("0" + s if len(s) % 2 else s) in sers, sers


def test_unauthorized_other_issuer(srv, ca, wd):
    d = tempfile.mkdtemp(dir=wd)
    key, crt = os.path.join(d, "k.pem"), os.path.join(d, "c.pem")
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-subj",
         "/CN=another CA", "-days", "2", "-out", crt])
    r = subprocess.run(["openssl", "ocsp", "-issuer", crt, "-serial", "0x42",
                        "-url", srv.ocsp_url, "-no_nonce"],
                       capture_output=True, timeout=60)
    out = (r.stdout + r.stderr).decode()
    assert "unauthorized (6)" in out, out


def test_revocation_visible_at_once(srv, ca, wd):
    h = enroll(srv, wd)
    out = openssl_ocsp(srv, ca, "-no_nonce", certs=[h])
    assert "%s: good" % h.cert in out, out
    revoke(srv, h, "affiliationChanged")
    out = openssl_ocsp(srv, ca, "-no_nonce", certs=[h])
    assert "%s: revoked" % h.cert in out, out
    assert "Reason: affiliationChanged" in out, out


def test_revocation_by_admin_tool_within_refresh(srv, ca, wd):
    """certauth-admin revoke outside httpd: the front end sees it at its
    next database check (CertAuthCRLRefreshSeconds 1 here)."""
    from harness import ADMIN
    h = enroll(srv, wd)
    out = openssl_ocsp(srv, ca, "-no_nonce", certs=[h])
    assert "%s: good" % h.cert in out, out
    run([ADMIN, "revoke", "--db", "sqlite3:" + srv.h.db, "--reason",
         "superseded", h.serial], user=srv.h.user)
    deadline = time.time() + 30
    while True:
        out = openssl_ocsp(srv, ca, "-no_nonce", certs=[h])
        if "%s: revoked" % h.cert in out or time.time() > deadline:
            break
        time.sleep(0.5)
    assert "%s: revoked" % h.cert in out, out
    assert "Reason: superseded" in out, out


# --------------------------------------------------------------------------
# malformed and hostile requests

def test_malformed_requests(srv, ca, certs):
    good, _ = certs
    MAL = ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    der = request_der(ca.pem, [good[0]])
    assert_error(*post(srv, b"garbage"), 400, MAL)
    assert_error(*post(srv, der[:len(der) // 2]), 400, MAL)     # truncated
    assert_error(*post(srv, der + b"\x00"), 400, MAL)            # trailing
    assert_error(*post(srv, b""), 400, MAL)
    assert_error(*post(srv, b"\x30" * 200000), 413, MAL)          # huge
    assert_error(*post(srv, der, ctype="application/x-www-form-urlencoded"),
                 415, MAL)
    assert_error(*post(srv, der, ctype=None), 415, MAL)
    assert_error(*post(srv, der, method="PUT"), 405, MAL)
    assert_error(*get(srv.ocsp_url + "/not-base64!!"), 400, MAL)
    assert_error(*get(srv.ocsp_url + "/%%%%bad-escape"), 400, MAL)
    assert_error(*get(srv.ocsp_url + "/" + "A" * 5), 400, MAL)
    # GET without a request: the path is the POST route's
    assert_error(*get(srv.ocsp_url), 405, MAL)
    assert_error(*get(srv.ocsp_url + "/"
                      + base64.b64encode(b"\x30\x03\x02\x01\x01").decode()),
                 400, MAL)
    # too many certificates in one request (bounded)
    many = openssl_request(ca, [good[0]] * 25)
    assert_error(*post(srv, many), 400, MAL)
    # and a bound that is not a size: 20 pass
    st, hd, body = post(srv, openssl_request(ca, [good[0]] * 20))
    assert st == 200
    assert len(list(ocsp.load_der_ocsp_response(body).responses)) == 20
    assert_error(*post(srv, many), 400, MAL)
    # nonce longer than RFC 8954 allows
    assert_error(*post(srv, request_der(ca.pem, [good[0]], b"x" * 64)),
                 400, MAL)
    # the responder still answers
    st, hd, body = post(srv, der)
    assert st == 200
    assert ocsp.load_der_ocsp_response(body).certificate_status == \
        ocsp.OCSPCertStatus.GOOD


# --------------------------------------------------------------------------
# GnuTLS ocsptool, NSS vfychain

def test_gnutls_ocsptool(srv, ca, certs, wd):
    good, bad = certs
    for h, want in ((good[0], "good"), (bad, "revoked")):
        r = subprocess.run(["ocsptool", "--ask=" + srv.ocsp_url,
                            "--load-issuer", ca.cert, "--load-cert", h.cert,
                            "--load-trust", ca.cert, "--nonce"],
                           capture_output=True, timeout=60)
        out = (r.stdout + r.stderr).decode(errors="replace")
        assert re.search(r"Certificate Status: %s" % want, out), out
        assert "Verifying OCSP Response: Success." in out, out
    # without a URL: the one in the certificate's authorityInfoAccess
    r = subprocess.run(["ocsptool", "--ask", "--load-issuer", ca.cert,
                        "--load-cert", good[0].cert, "--load-trust",
                        ca.cert], capture_output=True, timeout=60)
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert "Certificate Status: good" in out, out
    assert "Verifying OCSP Response: Success." in out, out


def nss_db(wd, ca):
    d = tempfile.mkdtemp(dir=wd)
    run(["certutil", "-N", "-d", "sql:" + d, "--empty-password"])
    run(["certutil", "-A", "-d", "sql:" + d, "-n", "certauth-test-ca",
         "-t", "CT,C,C", "-i", ca.cert])
    return d


def test_nss_vfychain(srv, ca, certs, wd):
    good, bad = certs
    d = nss_db(wd, ca)
    res = {}
    for h in (good[1], bad):
        r = subprocess.run(["vfychain", "-d", "sql:" + d, "-pp", "-u", "1",
                            "-g", "leaf", "-h", "requireFreshInfo",
                            "-m", "ocsp", "-s", "failIfNoInfo",
                            "-a", h.cert], capture_output=True, timeout=60)
        res[h.cert] = (r.returncode,
                       (r.stdout + r.stderr).decode(errors="replace"))
    rc, out = res[good[1].cert]
    assert rc == 0 and "Chain is good!" in out, out
    rc, out = res[bad.cert]
    # -8180: SEC_ERROR_REVOKED_CERTIFICATE
    assert rc != 0 and "ERROR -8180" in out and "revoked" in out, out


# --------------------------------------------------------------------------
# mod_ssl stapling

STAPLE_CONF = """
ServerRoot "{root}"
DefaultRuntimeDir "{root}"
PidFile "{root}/httpd.pid"
Mutex file:{root} default
Listen 127.0.0.1:{port}
ServerName 127.0.0.1
LoadModule mpm_event_module {moddir}/mod_mpm_event.so
LoadModule authz_core_module {moddir}/mod_authz_core.so
LoadModule socache_shmcb_module {moddir}/mod_socache_shmcb.so
LoadModule ssl_module {moddir}/mod_ssl.so
{user}
ErrorLog "{root}/error_log"
LogLevel warn ssl:info
DocumentRoot "{root}"
SSLStaplingCache "shmcb:{root}/stapling(128000)"
SSLStaplingStandardCacheTimeout 1
SSLStaplingErrorCacheTimeout 1
SSLStaplingResponderTimeout 20
<VirtualHost 127.0.0.1:{port}>
    SSLEngine on
    SSLCertificateFile {cert}
    SSLCertificateKeyFile {key}
    SSLCACertificateFile {ca}
    SSLUseStapling on
</VirtualHost>
"""


def s_client_status(port, ca):
    r = subprocess.run(["openssl", "s_client", "-connect",
                        "127.0.0.1:%d" % port, "-status", "-CAfile", ca,
                        "-servername", "localhost"],
                       input=b"", capture_output=True, timeout=60)
    return (r.stdout + r.stderr).decode(errors="replace")


def test_mod_ssl_stapling(srv, ca, wd):
    site = enroll(srv, wd, cn="localhost")
    root = tempfile.mkdtemp(prefix="certauth-staple-")
    os.chmod(root, 0o755)
    port = free_port()
    user = "User www-data\nGroup www-data\n" if os.geteuid() == 0 else ""
    conf = os.path.join(root, "httpd.conf")
    for f in (site.cert, site.key):
        shutil.copy(f, root)
    with open(conf, "w") as f:
        f.write(STAPLE_CONF.format(root=root, port=port, moddir=MODDIR,
                                   user=user, ca=ca.cert,
                                   cert=os.path.join(root, "localhost.pem"),
                                   key=os.path.join(root, "localhost.key")))
    pidfile = os.path.join(root, "httpd.pid")
    try:
        run([APACHE, "-f", conf, "-k", "start"])
        out = ""
        deadline = time.time() + 30
        while time.time() < deadline:
            out = s_client_status(port, ca.cert)
            if "Cert Status: good" in out:
                break
            time.sleep(0.5)
        assert "OCSP Response Status: successful" in out, out
        assert "Cert Status: good" in out, out
        revoke(srv, site, "keyCompromise")
        deadline = time.time() + 30
        while time.time() < deadline:
            out = s_client_status(port, ca.cert)
            if "Cert Status: revoked" in out:
                break
            time.sleep(0.5)
        assert "Cert Status: revoked" in out, out
        assert "Revocation Reason: keyCompromise" in out, out
    finally:
        try:
            with open(pidfile) as f:
                pid = int(f.read().strip())
            os.kill(pid, 15)
            from harness import wait_gone
            wait_gone(pid, 15)
        except (OSError, ValueError):
            pass
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------
# stunnel4 OCSPaia

class Echo:
    def __init__(self):
        import threading
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.stop_ = False
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.stop_:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                c.settimeout(10)
                try:
                    data = c.recv(4096)
                    if data:
                        c.sendall(data)
                except OSError:
                    pass

    def stop(self):
        self.stop_ = True
        self.sock.close()


def test_stunnel_ocspaia(srv, ca, wd):
    valid = enroll(srv, wd, cn="client-ok")
    revoked = enroll(srv, wd, cn="client-revoked")
    revoke(srv, revoked, "keyCompromise")
    echo = Echo()
    d = tempfile.mkdtemp(dir=wd)
    port = free_port()
    conf, log, pid = (os.path.join(d, n) for n in
                      ("stunnel.conf", "stunnel.log", "stunnel.pid"))
    with open(conf, "w") as f:
        f.write("foreground = yes\npid = %s\noutput = %s\ndebug = 7\n"
                "\n[echo]\naccept = 127.0.0.1:%d\nconnect = 127.0.0.1:%d\n"
                "cert = %s\nkey = %s\nCAfile = %s\nverifyChain = yes\n"
                "requireCert = yes\nOCSPaia = yes\n"
                % (pid, log, port, echo.port, ca.server_cert, ca.server_key,
                   ca.cert))
    proc = subprocess.Popen([STUNNEL, conf], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                time.sleep(0.1)

        def through(holder):
            import ssl
            ctx = ssl.create_default_context(cafile=ca.cert)
            ctx.check_hostname = False
            ctx.load_cert_chain(holder.cert, holder.key)
            got = b""
            try:
                with socket.create_connection(("127.0.0.1", port),
                                              timeout=30) as so:
                    with ctx.wrap_socket(so) as t:
                        t.sendall(b"ping through stunnel\n")
                        while b"\n" not in got:
                            chunk = t.recv(4096)
                            if not chunk:
                                break
                            got += chunk
            except (OSError, ssl.SSLError):
                pass
            return got
        assert b"ping through stunnel" in through(valid), \
            open(log, errors="replace").read()
        assert b"ping through stunnel" not in through(revoked)
        text = open(log, errors="replace").read()
        assert "OCSP: Status: good" in text, text
        assert "Rejected by OCSP at depth=0: CN=client-revoked" in text, text
        assert "OCSP: Certificate revoked: 1: keyCompromise" in text, text
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        echo.stop()


# --------------------------------------------------------------------------
# the CA key as signer

def test_signer_ca_key(ca, wd):
    for s in serve(ca, extra="CertAuthOCSPSigner ca"):
        h = enroll(s, wd)
        out = openssl_ocsp(s, ca, "-resp_text", certs=[h])
        assert "Response verify OK" in out, out
        assert "%s: good" % h.cert in out, out
        st, hd, body = post(s, request_der(ca.pem, [h]))
        resp = ocsp.load_der_ocsp_response(body)
        assert resp.certificates == []
        issuer = x509.load_pem_x509_certificate(ca.pem)
        ski = issuer.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier).value.digest
        assert resp.responder_key_hash == ski


# --------------------------------------------------------------------------
# several front ends on PostgreSQL; tryLater while the database is down

def test_pg_front_ends_agree(ca, wd):
    from test_pg import Postgres, pg_missing, pgsql_driver_missing
    if pg_missing() or pgsql_driver_missing():
        pytest.skip("PostgreSQL 15 or the APR pgsql driver is missing")
    pg = Postgres()
    fronts = []
    try:
        pg.start()
        pg.createdb()
        for _ in range(2):
            fronts.append(OcspServer(ca, extra="CertAuthCRLRefreshSeconds 2",
                                     db_driver="pgsql", db_params=pg.params))
        a, b = fronts
        h = enroll(a, wd)
        nonced = request_der(ca.pem, [h], b"\x01" * 16)
        for f in fronts:
            out = openssl_ocsp(f, ca, "-no_nonce", certs=[h])
            assert "%s: good" % h.cert in out, out
        revoke(a, h, "keyCompromise")
        # at once on the front end that revoked; on the other within its
        # CertAuthCRLRefreshSeconds (2 s; polled with a margin)
        out = openssl_ocsp(a, ca, "-no_nonce", certs=[h])
        assert "%s: revoked" % h.cert in out, out
        deadline = time.time() + 20
        while True:
            out = openssl_ocsp(b, ca, "-no_nonce", certs=[h])
            if "%s: revoked" % h.cert in out or time.time() > deadline:
                break
            time.sleep(0.5)
        assert "%s: revoked" % h.cert in out, out
        assert "Reason: keyCompromise" in out
        # each front end signs with its own responder certificate, both
        # issued by the CA and stored in the shared database
        signers = set()
        for f in fronts:
            st, hd, body = post(f, nonced)
            resp = ocsp.load_der_ocsp_response(body)
            assert resp.certificate_status == ocsp.OCSPCertStatus.REVOKED
            signers.add(resp.certificates[0].serial_number)
        assert len(signers) == 2
        n = pg.psql("SELECT count(*) FROM certauth_certs WHERE "
                    "owner = 'ocsp-responder'")
        assert int(n) == 2, n
        # the database goes away: pre-produced responses are still served
        # while valid; a nonce needs the database: tryLater, 503
        st, hd, cached = post(b, request_der(ca.pem, [h]))
        assert st == 200
        pg.stop()
        st, hd, body = post(b, request_der(ca.pem, [h]))
        assert st == 200 and body == cached
        st, hd, body = post(b, request_der(ca.pem, [h], b"\x02" * 16))
        assert_error(st, hd, body, 503, ocsp.OCSPResponseStatus.TRY_LATER)
        assert hd.get("Retry-After", "").isdigit()
        # and back
        pg.start()
        deadline = time.time() + 30
        while True:
            st, hd, body = post(b, request_der(ca.pem, [h], b"\x03" * 16))
            if st == 200 or time.time() > deadline:
                break
            time.sleep(0.5)
        assert st == 200
    finally:
        for f in fronts:
            f.h.stop()
        for f in fronts:
            assert_no_crash(f.h)
            f.h.cleanup()
        pg.cleanup()


def test_prefork_children_share_responses(ca, wd):
    """Pre-produced responses are shared by the children (the file in the
    runtime directory): with the prefork MPM, many connections land on
    several children and all get the same bytes (an ECDSA signature made
    again would differ)."""
    for s in serve(ca, mpm="prefork"):
        h = enroll(s, wd)
        der = request_der(ca.pem, [h])
        bodies = set()
        # made once (several children missing it at the same moment may
        # each make a valid one; then each is kept)
        st, hd, first = post(s, der)
        assert st == 200
        import concurrent.futures
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            for st, hd, body in ex.map(lambda _: post(s, der), range(40)):
                assert st == 200
                bodies.add(body)
        assert bodies == {first}
        pids = s.h.children()
        assert len(pids) >= 2, pids
        resp = ocsp.load_der_ocsp_response(bodies.pop())
        assert resp.certificate_status == ocsp.OCSPCertStatus.GOOD


def test_warns_without_allow_encoded_slashes(make_httpd):
    h = make_httpd(vhost_conf="CertAuthOCSP On")
    assert "CA1704" in h.log() and "AllowEncodedSlashes" in h.log()
    # the responder answers on the HTTPS host too (POST needs no %2F)
    st, hd, body = h.request("POST", "/ca/ocsp", body=b"junk",
                             headers={"Content-Type":
                                      "application/ocsp-request"})
    assert st == 400 and hd["content-type"] == "application/ocsp-response"
    assert ocsp.load_der_ocsp_response(body).response_status == \
        ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_responder_certificate_reused_then_renewed(ca, wd):
    """The responder certificate in the runtime directory is used while
    less than half of its validity has passed, and replaced by a new one
    issued through the store once more has."""
    import datetime
    import pwd
    from cryptography.hazmat.primitives.serialization import (
        load_pem_private_key)
    issuer = x509.load_pem_x509_certificate(ca.pem)
    with open(ca.key, "rb") as f:
        ca_key = load_pem_private_key(f.read(), None)
    fp = issuer.fingerprint(hashes.SHA256()).hex().upper()[:16]
    now = datetime.datetime.now(datetime.timezone.utc)

    def responder_pem(nb, na):
        k = ec.generate_private_key(ec.SECP256R1())
        c = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(
                 NameOID.COMMON_NAME, "OCSP Responder")]))
             .issuer_name(issuer.subject).public_key(k.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(nb).not_valid_after(na)
             .add_extension(x509.ExtendedKeyUsage(
                 [ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
             .add_extension(x509.OCSPNoCheck(), critical=False)
             .sign(ca_key, hashes.SHA256()))
        return c, k.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()) + c.public_bytes(
                serialization.Encoding.PEM)

    hour = datetime.timedelta(hours=1)
    for past, renewed in ((1, False), (30, True)):
        gen = serve(ca)
        s = next(gen)
        try:
            cert, pem = responder_pem(now - past * hour,
                                      now + (48 - past) * hour)
            path = os.path.join(s.h.root, "run", "certauth",
                                "ocsp-%s-responder.pem" % fp)
            with open(path, "wb") as f:
                f.write(pem)
            os.chmod(path, 0o600)
            if os.geteuid() == 0:
                pw = pwd.getpwnam("www-data")
                os.chown(path, pw.pw_uid, pw.pw_gid)
            h = enroll(s, wd)
            st, hd, body = post(s, request_der(ca.pem, [h], b"\x05" * 16))
            resp = ocsp.load_der_ocsp_response(body)
            assert resp.certificate_status == ocsp.OCSPCertStatus.GOOD
            used = resp.certificates[0]
            if renewed:
                assert used.serial_number != cert.serial_number
                assert used.not_valid_after > cert.not_valid_after
                with open(path, "rb") as f:
                    assert x509.load_pem_x509_certificate(
                        f.read().split(b"-----END PRIVATE KEY-----")[1]
                        .strip()).serial_number == used.serial_number
                assert oct(os.stat(path).st_mode & 0o777) == "0o600"
            else:
                assert used.serial_number == cert.serial_number
        finally:
            for _ in gen:
                pass


def test_cache_directory_sweep(ca, wd):
    """Responses past their nextUpdate (certificates no one asked about
    since) are removed from the runtime directory (a tmpfs on Debian);
    current ones stay."""
    for s in serve(ca):
        h1 = enroll(s, wd)
        st, _, first = post(s, request_der(ca.pem, [h1]))
        assert st == 200
        rundir = os.path.join(s.h.root, "run", "certauth")
        cdir = [os.path.join(rundir, d) for d in os.listdir(rundir)
                if d.startswith("ocsp-") and os.path.isdir(
                    os.path.join(rundir, d))][0]
        kept = [f for f in os.listdir(cdir) if f.endswith(".der")]
        assert len(kept) == 1, kept
        stale = os.path.join(cdir, "0" * 64 + "-r.der")
        with open(stale, "wb") as f:
            f.write(b"CERTAUTHOCSP1 1:1 1 2 0\n")
        two_days = time.time() - 2 * 86400
        os.utime(stale, (two_days, two_days))
        # the last sweep was an hour ago: the next response made sweeps
        os.utime(os.path.join(cdir, ".swept"), (two_days, two_days))
        h2 = enroll(s, wd)
        st, _, _ = post(s, request_der(ca.pem, [h2]))
        assert st == 200
        left = sorted(f for f in os.listdir(cdir) if f.endswith(".der"))
        assert not os.path.exists(stale)
        assert len(left) == 2 and kept[0] in left, left
        # the kept response is still served from the cache, same bytes
        st, _, again = post(s, request_der(ca.pem, [h1]))
        assert again == first


def test_ocsp_path_configurable(make_httpd, ca):
    h = make_httpd(vhost_conf="CertAuthOCSP On\n"
                              "    CertAuthOCSPPath status/ocsp")
    ctype = {"Content-Type": "application/ocsp-request"}
    st, hd, body = h.request("POST", "/ca/status/ocsp", body=b"junk",
                             headers=ctype)
    assert st == 400 and hd["content-type"] == "application/ocsp-response"
    st, hd, body = h.request("POST", "/ca/ocsp", body=b"junk",
                             headers=ctype)
    assert hd.get("content-type") != "application/ocsp-response", st
    # an unknown serial of this CA, through the configured path
    der = openssl_request_serial(ca, "0x0BADC0DE")
    st, hd, body = h.request("POST", "/ca/status/ocsp", body=der,
                             headers=ctype)
    assert st == 200
    assert ocsp.load_der_ocsp_response(body).certificate_status == \
        ocsp.OCSPCertStatus.UNKNOWN


def openssl_request_serial(ca, serial):
    with tempfile.TemporaryDirectory() as d:
        f = os.path.join(d, "req.der")
        run(["openssl", "ocsp", "-issuer", ca.cert, "-serial", serial,
             "-no_nonce", "-reqout", f])
        with open(f, "rb") as r:
            return r.read()
