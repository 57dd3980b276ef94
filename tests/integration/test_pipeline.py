"""Issue 12: one request pipeline.  Each finding of the issue reproduced
against a real apache2 (each of these failed before the change), and the
route-table walk: every state-changing route refuses a cross-site-shaped
request and stores nothing.
"""
import json
import os
import re
import ssl
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

import harness
from conftest import make_csr
from harness import run, serving
from test_lifecycle import Holder, enroll, revoke, api_certs, jrequest
from test_est import (EST, b64, csr_for, est_post, one_cert, cn, multipart,
                      sh, write_identity)

LOC = """
        CertAuthSubjectRDN O "certauth tests"
        CertAuthSubjectRDN CN "%{REMOTE_USER}"
        CertAuthSANFromCSR DNS example.org "*.example.org"
        CertAuthValidityDays 20
"""

VHOST = """
    <CertAuthProfile bobs>
        CertAuthSubjectRDN CN "%{REMOTE_USER}"
        CertAuthRequire "%{REMOTE_USER} == 'bob'"
        CertAuthValidityDays 20
        CertAuthEnrollWithCertificate On
    </CertAuthProfile>
    <CertAuthProfile closed>
        CertAuthRequire "%{REMOTE_USER} == 'nobody-at-all'"
    </CertAuthProfile>
    <CertAuthProfile bycert>
        CertAuthSubjectRDN CN "%{REMOTE_USER}"
        CertAuthValidityDays 20
        CertAuthEnrollWithCertificate On
    </CertAuthProfile>
    <CertAuthProfile anykey>
        CertAuthSubjectRDN CN "%{REMOTE_USER}"
        CertAuthKeyTypes ec:P-256 ec:P-384 rsa:2048
        CertAuthValidityDays 20
    </CertAuthProfile>
    <CertAuthProfile one>
        CertAuthSubjectRDN CN "%{REMOTE_USER}"
        CertAuthKeyTypes rsa:3072
        CertAuthMaxValidPerOwner 1
        CertAuthValidityDays 20
    </CertAuthProfile>
"""


@pytest.fixture(scope="module")
def keydir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("pipekeys"))


@pytest.fixture(scope="module")
def h(ca):
    yield from serving(ca, location_conf=LOC, vhost_conf=VHOST)


def strict_json(body):
    """The body must be valid UTF-8 JSON (json.loads of bytes would
    replace nothing, but make sure with an explicit strict decode)."""
    return json.loads(body.decode("utf-8", errors="strict"))


def status_of(h, serial):
    st, _, doc, body = api_certs(h, "?owner=&limit=1000", user="admin")
    assert st == 200, body
    return {c["serial"]: c["status"] for c in doc["certificates"]}.get(serial)


# --- finding 1: cross-site renew ---------------------------------------------

def test_cross_site_renew_refused(h, keydir):
    c = enroll(h, keydir, "alice")
    before = h.rows()
    st, hd, body = h.request("POST", "/ca/renew", body=b"",
                             headers={"Content-Type": "text/plain"},
                             client_cert=c.tls)
    assert st == 403, (st, body)
    assert strict_json(body)["error"]
    assert h.rows() == before
    assert status_of(h, c.serial) == "valid"
    # a foreign Origin is refused even with X-Requested-With
    st, hd, body = h.request("POST", "/ca/renew", body=b"",
                             headers={"X-Requested-With": "x",
                                      "Origin": "https://evil.example"},
                             client_cert=c.tls)
    assert st == 403, (st, body)
    assert h.rows() == before
    # the site's own origin with the header is fine
    st, hd, body = h.request("POST", "/ca/renew", body=b"",
                             headers={"X-Requested-With": "x",
                                      "Origin": h.url},
                             client_cert=c.tls)
    assert st == 201, (st, body)


# --- finding 2: invalid JSON -------------------------------------------------

def test_json_profile_bytes(h):
    csr, _ = make_csr()
    st, hd, body = h.enroll(csr, path="/ca/enroll?profile=%ff%fe")
    assert st == 404, body
    doc = strict_json(body)
    assert "\\xFF\\xFE" in doc["detail"], doc
    st, hd, body = h.enroll(csr, path="/ca/enroll?profile=%3Cb%3E")
    assert st == 404, body
    doc = strict_json(body)
    assert "'<b>'" in doc["detail"], doc


def test_json_san_invalid_utf8_audited(h, tmp_path):
    key = tmp_path / "k.pem"
    out = tmp_path / "r.csr"
    run(["openssl", "ecparam", "-genkey", "-name", "prime256v1", "-noout",
         "-out", str(key)])
    run(["openssl", "req", "-new", "-key", str(key), "-subj", "/CN=x",
         "-addext", b"subjectAltName=DNS:a\xffb.example.com", "-out",
         str(out)])
    st, hd, body = h.enroll(out.read_bytes(), user="bob")
    assert st == 422, body
    doc = strict_json(body)
    assert "a\\xFFb.example.com" in doc["detail"], doc
    st, hd, body = h.request("GET", "/ca/api/audit?limit=50", user="admin")
    assert st == 200, body
    events = strict_json(body)["events"]
    assert any("a\\xFFb.example.com" in (e["detail"] or "")
               for e in events), events


def test_revoke_numeric_serial(h, keydir):
    # a JSON number is the serial's value: 12 is serial 0C
    st, hd, doc, body = jrequest(h, "POST", "/ca/revoke", body=json.dumps(
        {"serial": 12, "reason": "superseded"}),
        headers={"Content-Type": "application/json"}, user="alice")
    assert st == 404, body
    assert "0C" in doc["detail"], doc
    st, hd, doc, body = jrequest(h, "POST", "/ca/revoke", body=json.dumps(
        {"serial": -12}), headers={"Content-Type": "application/json"},
        user="alice")
    assert st == 400 and doc["error"] == "bad serial", body


# --- finding 3: a revoked certificate locks the person out ---------------

def test_revoked_certificate_does_not_lock_out(h, keydir):
    c = enroll(h, keydir, "alice")
    st, _, _, body = revoke(h, c.serial, "keyCompromise", user="alice")
    assert st == 200, body
    target = enroll(h, keydir, "alice")
    # the stale certificate alone: a challenge for the login
    st, hd, doc, body = api_certs(h, client_cert=c.tls)
    assert st == 401, body
    assert hd.get("www-authenticate", "").startswith("Basic"), hd
    # with the login beside it: the login counts
    st, hd, doc, body = api_certs(h, client_cert=c.tls, user="alice")
    assert st == 200, body
    assert doc["owner"] == "alice" and doc["presented"] is None
    st, _, doc, body = revoke(h, target.serial, "keyCompromise",
                              user="alice", client_cert=c.tls)
    assert st == 200, body


# --- finding 4: administrators by certificate ------------------------------

def test_administrator_by_certificate(h, keydir):
    adm = enroll(h, keydir, "admin")
    alice = enroll(h, keydir, "alice")
    st, hd, doc, body = api_certs(h, client_cert=adm.tls)
    assert st == 200, body
    assert doc["admin"] is True, doc
    st, hd, doc, body = api_certs(h, client_cert=alice.tls, user="admin")
    assert st == 200, body
    assert doc["admin"] is True, doc
    st, hd, doc, body = api_certs(h, client_cert=alice.tls)
    assert st == 200 and doc["admin"] is False, doc


# --- finding 5: certificates issued on the strength of a certificate --------

def test_enroll_by_certificate_off_by_default(h, ca, tmp_path):
    der, _ = csr_for()
    der, key = csr_for()
    cert = one_cert(ca, est_post(h, "simpleenroll", b64(der), user="bob"),
                    tmp_path)
    ident = write_identity(tmp_path, "bob0", cert, key)
    before = h.rows()
    der2, _ = csr_for()
    r = est_post(h, "simpleenroll", b64(der2), user=None, cert=ident)
    assert r.status == 403, r
    assert h.rows() == before


def test_enroll_by_certificate_cascade(h, ca, tmp_path):
    der, key = csr_for()
    cert = one_cert(ca, est_post(h, "simpleenroll", b64(der), user="bob",
                                 label="bycert"), tmp_path)
    ident = write_identity(tmp_path, "bob1", cert, key)
    der2, key2 = csr_for()
    child = one_cert(ca, est_post(h, "simpleenroll", b64(der2), user=None,
                                  cert=ident, label="bycert"), tmp_path)
    assert cn(child) == "bob"
    child_serial = "%X" % child.serial_number
    parent_serial = "%X" % cert.serial_number
    st, _, doc, body = revoke(h, parent_serial, "keyCompromise", user="bob")
    assert st == 200, body
    certs = {int(c["serial"].replace(":", ""), 16): c for c in
             api_certs(h, "?owner=bob&limit=1000", user="admin")[2]
             ["certificates"]}
    assert certs[child.serial_number]["status"] == "revoked", certs
    assert certs[child.serial_number]["reason"] == "keyCompromise"
    st, _, body = h.request("GET", "/ca/api/audit?limit=50", user="admin")
    events = strict_json(body)["events"]
    assert any(e["action"] == "revoke" and e["serial"]
               and int(e["serial"].replace(":", ""), 16)
               == child.serial_number and parent_serial.lstrip("0")
               in (e["detail"] or "").replace(":", "") for e in events), \
        events
    del child_serial


# --- finding 6: labelled EST and CertAuthRequire ----------------------------

def test_labelled_est_certificate_holder(h, ca, tmp_path):
    der, key = csr_for()
    cert = one_cert(ca, est_post(h, "simpleenroll", b64(der), user="bob",
                                 label="bobs"), tmp_path)
    ident = write_identity(tmp_path, "bobs", cert, key)
    der2, _ = csr_for(subject=cert.subject)
    new = one_cert(ca, est_post(h, "simplereenroll", b64(der2), user=None,
                                cert=ident, label="bobs"), tmp_path)
    assert cn(new) == "bob"
    # alice's certificate on bob's label: the rule says no
    der3, key3 = csr_for()
    acert = one_cert(ca, est_post(h, "simpleenroll", b64(der3),
                                  user="alice", label="bycert"), tmp_path)
    aident = write_identity(tmp_path, "alice-bycert", acert, key3)
    der4, _ = csr_for()
    r = est_post(h, "simpleenroll", b64(der4), user=None, cert=aident,
                 label="bobs")
    assert r.status == 403, r


def test_csrattrs_public_on_any_label(h):
    st, hd, body = h.request("GET", EST + "/closed/csrattrs")
    assert st in (200, 204), (st, body)


# --- finding 7: serverkeygen -------------------------------------------------

def test_serverkeygen_follows_csr_key(h, tmp_path):
    der, _ = csr_for(key=None)
    from cryptography.hazmat.primitives.asymmetric import rsa
    k = rsa.generate_private_key(65537, 2048)
    der, _ = csr_for(key=k)
    r = est_post(h, "serverkeygen", b64(der), user="alice", label="anykey")
    assert r.status == 200, r
    parts = multipart(r)
    out = sh("openssl base64 -d | openssl pkey -inform DER -noout -text",
             parts[0][1])
    assert b"Private-Key: (2048 bit" in out.stdout, out.stdout[:200]


def test_serverkeygen_limit_before_key(h, tmp_path):
    der, _ = csr_for()
    r = est_post(h, "serverkeygen", b64(der), user="admin", label="one")
    assert r.status == 200, r
    mark = len(h.log())
    r = est_post(h, "serverkeygen", b64(der), user="admin", label="one")
    assert r.status == 409, r
    assert "making a" not in h.log()[mark:], h.log()[mark:]


# --- finding 10: security headers ------------------------------------------

def test_nosniff_everywhere(h):
    for path in ("/ca/cacert.pem", "/ca/certs/zz", "/ca/crl",
                 "/ca/renew", EST + "/cacerts", EST + "/csrattrs"):
        st, hd, body = h.request("GET", path)
        assert hd.get("x-content-type-options") == "nosniff", (path, hd)


# --- the route table walk ---------------------------------------------------

ROUTES_C = os.path.join(harness.REPO, "mod_certauth", "routes.c")
ROUTE_RE = re.compile(
    r'^\s*ROUTE\("([^"]+)", (\d), (M_GET|M_POST), (.+?), (\d), (\d+), '
    r'(CERTAUTH_\w+), (\d), (NULL|"\w+"), (\w+)\),\s*$')


def routes():
    """The module's route table, read from routes.c (one ROUTE per line)."""
    text = open(ROUTES_C).read()
    defines = dict(re.findall(r'#define (\w+_TYPES) ((?:"[^"]*"\s*\\?\s*)+)',
                              text))
    out = []
    for line in text.splitlines():
        if "ROUTE(NULL" in line or "#define ROUTE" in line:
            continue
        m = ROUTE_RE.match(line)
        if not m and "ROUTE(" in line:
            raise AssertionError("unparsable route line: %r" % line)
        if not m:
            continue
        media = m.group(4)
        for k, v in defines.items():
            media = media.replace(k, v)
        media = "".join(re.findall(r'"([^"]*)"', media)).split()
        if m.group(2) == "2":
            continue    # ACME's routes: JWS, walked by test_acme.py
        out.append({"path": m.group(1), "est": m.group(2) == "1",
                    "method": m.group(3)[2:], "media": media,
                    "caller": m.group(7), "state": m.group(8) == "1"})
    return out


def test_route_table_parsed():
    rs = routes()
    names = {(r["est"], r["path"]) for r in rs}
    # every endpoint the README documents is in the table
    for want in ["cacert.crt", "cacert.pem", "certs/*", "crl", "crl.pem",
                 "enroll", "renew", "revoke", "pkcs12", "api/certs",
                 "api/audit", "api/pending", "api/pending/*",
                 "api/acme/eab"]:
        assert (False, want) in names, want
    for want in ["cacerts", "csrattrs", "simpleenroll", "simplereenroll",
                 "serverkeygen"]:
        assert (True, want) in names, want
    assert sum(r["state"] for r in rs) == 9, rs


def url_of(route):
    path = route["path"].replace("*", "0A1B")
    return (EST + "/" if route["est"] else "/ca/") + path


def audit_ok_count(h):
    st, _, body = h.request("GET", "/ca/api/audit?limit=1000", user="admin")
    return sum(1 for e in strict_json(body)["events"] if e["outcome"] == "ok")


def credentials(route, holder):
    if route["caller"] == "CERTAUTH_CERT":
        return {"client_cert": holder.tls}
    if route["caller"] == "CERTAUTH_ADMIN":
        return {"user": "admin"}
    return {"user": "alice"}


def good_body(route, target):
    """A body the route accepts, of its first media type."""
    mt = route["media"][0] if route["media"] else None
    if route["est"]:
        der, _ = csr_for()
        return mt, b64(der)
    if route["path"] == "revoke":
        return mt, json.dumps({"serial": target.serial}).encode()
    if route["path"] == "pkcs12":
        return mt, json.dumps({"password": "a-long-password"}).encode()
    if route["path"].startswith("api/pending"):
        return mt, b'{"decision": "approve"}'
    if route["path"] == "api/acme/eab":
        return mt, b"{}"
    if route["path"] == "renew":
        return None, b""
    csr, _ = make_csr()
    return mt, csr


def test_every_state_changing_route_refuses_cross_site(h, keydir):
    holder = enroll(h, keydir, "alice")
    target = enroll(h, keydir, "alice")
    rows = h.rows()
    oks = audit_ok_count(h)
    walked = 0
    for route in routes():
        if not route["state"]:
            continue
        walked += 1
        url = url_of(route)
        cred = credentials(route, holder)
        shapes = [
            ({"Content-Type": "text/plain"}, b"serial=" + target.serial.encode()),
            ({"Content-Type": "application/x-www-form-urlencoded"},
             b"serial=" + target.serial.encode() + b"&reason=keyCompromise"),
            ({"Content-Type": "multipart/form-data; boundary=x"},
             b"--x--\r\n"),
            ({}, b""),
        ]
        for headers, body in shapes:
            st, hd, resp = h.request("POST", url, body=body, headers=headers,
                                     **cred)
            assert st in (403, 415), (url, headers, st, resp)
        # the route's own media type, but from another site's page
        mt, body = good_body(route, target)
        headers = {"Origin": "https://evil.example", "X-Requested-With": "x"}
        if mt:
            headers["Content-Type"] = mt
        st, hd, resp = h.request("POST", url, body=body, headers=headers,
                                 **cred)
        assert st == 403, (url, st, resp)
        assert b"cross-site" in resp, resp
    assert walked == 9
    assert h.rows() == rows
    assert status_of(h, holder.serial) == "valid"
    assert status_of(h, target.serial) == "valid"
    assert audit_ok_count(h) == oks


def test_route_rules_405_413_415(h):
    for route in routes():
        url = url_of(route)
        other = "GET" if route["method"] == "POST" else "POST"
        st, hd, body = h.request(other, url, body=b"" if other == "POST"
                                 else None, user="admin")
        if st == 401:   # httpd's own authentication came first
            continue
        assert st == 405, (url, st, body)
        assert route["method"] in hd.get("allow", ""), (url, hd)
        assert hd.get("x-content-type-options") == "nosniff"
        if route["media"]:
            st, hd, body = h.request("POST", url, body=b"x" * 70000,
                                     headers={"Content-Type":
                                              route["media"][0]},
                                     user="admin")
            assert st == 413, (url, st, body)
            st, hd, body = h.request("POST", url, body=b"x",
                                     headers={"Content-Type": "image/png"},
                                     user="admin")
            assert st == 415, (url, st, body)


# --- findings 8 and 9: the shipped profiles ---------------------------------

from test_profiles import SHIPPED_SERVER, SHIPPED_VHOST  # noqa: E402

ODD_USERS = {"ann-marie": "ann-marie-secret", "a<b": "odd-secret-1",
             "x=y": "odd-secret-2"}


@pytest.fixture(scope="module")
def shipped(ca):
    h = harness.Httpd(ca, server_conf=SHIPPED_SERVER,
                      vhost_conf=SHIPPED_VHOST,
                      location_conf="CertAuthDefaultProfile user")
    for u, pw in ODD_USERS.items():
        run(["htpasswd", "-bB", h.users_file, u, pw])
    try:
        h.start()
        yield h
        h.stop()
        harness.assert_no_crash(h)
    finally:
        h.cleanup()


def basic_as(user):
    import base64
    return "Basic " + base64.b64encode(
        ("%s:%s" % (user, ODD_USERS[user])).encode()).decode()


def test_shipped_protogeni_chars(shipped):
    h = shipped
    csr, _ = make_csr()
    st, hd, body = h.request("POST", "/ca/enroll?profile=protogeni",
                             body=csr, headers={
                                 "Content-Type": "application/pkcs10",
                                 "Authorization": basic_as("ann-marie")})
    assert st == 201, body
    cert = x509.load_pem_x509_certificate(body)
    ou = [a.value for a in cert.subject
          if a.oid == x509.oid.NameOID.ORGANIZATIONAL_UNIT_NAME]
    assert ou == ["example.org.ann-marie"], ou
    for user in ("a<b", "x=y"):
        before = h.rows()
        st, hd, body = h.request("POST", "/ca/enroll?profile=protogeni",
                                 body=csr, headers={
                                     "Content-Type": "application/pkcs10",
                                     "Authorization": basic_as(user)})
        assert st == 422, (user, st, body)
        assert "OU" in strict_json(body)["detail"]
        assert h.rows() == before


def test_chars_range_across_classes_refused(make_httpd):
    h = make_httpd(start=False, location_conf=
                   'CertAuthSubjectRDN OU "%{REMOTE_USER}" chars=a-zA-Z0-9.-_')
    rc, out = h.configtest()
    assert rc != 0, out
    assert "character set 'a-zA-Z0-9.-_'" in out, out
    assert "first or last" in out, out


def test_shipped_server_certificate_authenticates_itself(shipped, tmp_path):
    """The shipped server profile's certificate is accepted by mod_ssl as a
    client certificate (clientAuth beside serverAuth): it reaches the
    module, which identifies it; renewing it is then only a matter of its
    renewal window."""
    h = shipped
    key = tmp_path / "srv.key"
    csrf = tmp_path / "srv.csr"
    run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-subj",
         "/CN=www.example.org", "-addext",
         "subjectAltName=DNS:www.example.org", "-out", str(csrf)])
    st, hd, body = h.enroll(csrf.read_bytes(), user="admin",
                            path="/ca/enroll?profile=server")
    assert st == 201, body
    cert = x509.load_pem_x509_certificate(body)
    ekus = list(cert.extensions.get_extension_for_class(
        x509.ExtendedKeyUsage).value)
    assert ekus == [ExtendedKeyUsageOID.SERVER_AUTH,
                    ExtendedKeyUsageOID.CLIENT_AUTH]
    certf = tmp_path / "srv.pem"
    certf.write_bytes(body)
    # curl presents it: the module knows who it is
    st, headers, out = h.curl("--cert", str(certf), "--key", str(key),
                              h.base + "/api/certs")
    assert st == 200, out
    doc = strict_json(out)
    assert doc["presented"] == "%032X" % cert.serial_number \
        or int(doc["presented"], 16) == cert.serial_number, doc
    # renew: the window (30 of 397 days) is not open yet, and the module
    # says so (before: the TLS handshake refused the certificate)
    st, headers, out = h.curl("--cert", str(certf), "--key", str(key),
                              "-X", "POST", "-H", "X-Requested-With: curl",
                              h.base + "/renew")
    assert st == 403, out
    assert "renewal opens 30 days before expiry" in strict_json(out)["detail"]
    # EST simplereenroll under the server label: the label's
    # CertAuthRequire sees the certificate's owner (admin)
    recsr = tmp_path / "re.csr"
    run(["openssl", "req", "-new", "-key", str(key), "-subj",
         "/O=Test Org/CN=www.example.org", "-addext",
         "subjectAltName=DNS:www.example.org", "-out", str(recsr)])
    der = run(["openssl", "req", "-in", str(recsr), "-outform",
               "DER"]).stdout
    r = est_post(h, "simplereenroll", b64(der), label="server", user=None,
                 cert=(str(certf), str(key)))
    assert r.status == 403, r
    assert b"renewal opens" in r.body, r
    assert b"may not use profile" not in r.body, r


def test_shipped_stunnel_renew_with_certauth_stunnel(shipped, tmp_path):
    """certauth-stunnel enroll then renew --profile stunnel against the
    shipped stunnel profile (CertAuthRequire admins): the renewal reaches
    the profile's rule as the certificate's owner; what remains is the
    renewal window, named in the message (before: 403 "you may not use
    profile" and a hint to log in)."""
    from test_stunnel import helper, password_file, REFUSED, OK
    d = str(tmp_path)
    os.chmod(d, 0o755)
    kc = os.path.join(d, "key-cert.pem")
    rc, out, err = helper("enroll", "--url", shipped.url, "--ca",
                          shipped.ca.cert, "--user", "admin",
                          "--password-file", password_file(d, "admin"),
                          "--profile", "stunnel", "--cn", "peer-1", "--san",
                          "DNS:localhost", "--out", kc)
    assert rc == OK, (out, err)
    rc, out, err = helper("renew", "--url", shipped.url, "--ca",
                          shipped.ca.cert, "--in", kc, "--profile",
                          "stunnel", "--force")
    assert rc == REFUSED, (rc, out, err)
    assert "renewal opens 30 days before expiry" in err, err
    assert "may not use profile" not in err, err


# --- the authorization matrix: login x certificate x every route -------------

MATRIX_LOC = """
        CertAuthSubjectRDN O "certauth tests"
        CertAuthSubjectRDN CN "%{REMOTE_USER}"
        CertAuthValidityDays 20
"""
TLS = "TLS refused"
LOGINS = [None, "alice", "bob", "admin"]
CERTS = ["none", "valid", "revoked", "superseded", "foreign"]
PUBLIC = {"cacert.crt", "cacert.pem", "certs/*", "crl", "crl.pem",
          "est:cacerts", "est:csrattrs", "ocsp", "ocsp/*"}
BEHIND_LOGIN = {"enroll", "pkcs12"}          # Require valid-user
BEHIND_EITHER = {"revoke", "api/certs", "api/audit", "api/pending",
                 "api/pending/*", "est:simpleenroll", "est:serverkeygen",
                 "est:simplereenroll", "api/acme/eab"}  # <RequireAny>


def expected(route, login, cert):
    """What the identity model and the route table say (README "Identity
    and authorization"); the certificate is always alice's."""
    if cert == "foreign":
        return TLS
    valid, presented = cert == "valid", cert != "none"
    if route in PUBLIC:
        return 200
    if route in ("crl/*", "cacert/*"):
        # public, but no CA of this server has the key identifier 0A1B
        # (crl/KEYID and crl/previous after a rollover, cacert/KEYID.crt:
        # test_rollover.py)
        return 404
    # httpd's own authentication, before the module
    if route in BEHIND_LOGIN and not login:
        return 401
    if route in BEHIND_EITHER and not login and not presented:
        return 401
    if route in ("renew", "est:simplereenroll"):
        if valid:
            return 201 if route == "renew" else 200
        return 403 if presented else 401
    if route in BEHIND_LOGIN:
        return 201
    someone = login or valid
    if not someone:
        return 401
    if route == "revoke":
        return 200 if (login in ("alice", "admin") or valid) else 403
    if route == "api/certs":
        return 200
    if route in ("api/audit", "api/pending", "api/pending/*"):
        if login != "admin":
            return 403
        return 404 if route == "api/pending/*" else 200
    if route in ("est:simpleenroll", "est:serverkeygen"):
        # a certificate alone obtains no new certificate by default
        return 200 if login else 403
    if route == "api/acme/eab":
        # the login's; this server has no ACME server (404)
        return 404 if login else 401
    raise AssertionError(route)


@pytest.fixture(scope="module")
def mx(ca, tmp_path_factory):
    import datetime
    from test_lifecycle import handmade_cert, renew as lc_renew
    h = harness.Httpd(ca, location_conf=MATRIX_LOC)
    try:
        h.start()
        kd = str(tmp_path_factory.mktemp("mxkeys"))
        foreign_ca = harness.TestCA(str(tmp_path_factory.mktemp("mxforeign")))
        now = datetime.datetime.now(datetime.timezone.utc)
        env = {"kd": kd, "valid": enroll(h, kd, "alice"),
               "foreign": handmade_cert(foreign_ca, kd,
                                        now - datetime.timedelta(hours=1),
                                        now + datetime.timedelta(days=10))}
        c = enroll(h, kd, "alice")
        assert revoke(h, c.serial, "keyCompromise", user="alice")[0] == 200
        env["revoked"] = c
        c = enroll(h, kd, "alice")
        st, _, body = lc_renew(h, c)
        assert st == 201, body
        env["superseded"] = c
        yield h, env
        h.stop()
        harness.assert_no_crash(h)
    finally:
        h.cleanup()


def matrix_call(h, env, route, login, cert):
    kw = {}
    if login:
        kw["user"] = login
    holder = None
    if cert != "none":
        # renew and simplereenroll consume a valid certificate: a fresh one
        holder = (enroll(h, env["kd"], "alice")
                  if cert == "valid" and route in ("renew",
                                                   "est:simplereenroll")
                  else env[cert])
        kw["client_cert"] = holder.tls
    est = route.startswith("est:")
    name = route[4:] if est else route
    url = (EST + "/" if est else "/ca/") + name.replace(
        "*", env["valid"].serial if name == "certs/*" else "0A1B")
    headers, body, method = {}, None, "GET"
    if est and name in ("simpleenroll", "serverkeygen", "simplereenroll"):
        method = "POST"
        subject = holder.cert.subject if (holder and name ==
                                          "simplereenroll") else None
        der, _ = csr_for(subject=subject)
        headers["Content-Type"] = "application/pkcs10"
        body = b64(der)
    elif name == "enroll":
        method, body = "POST", make_csr()[0]
        headers["Content-Type"] = "application/pkcs10"
    elif name == "renew":
        method, body = "POST", b""
        headers["X-Requested-With"] = "test"
    elif name == "revoke":
        target = enroll(h, env["kd"], "alice")
        method = "POST"
        body = json.dumps({"serial": target.serial}).encode()
        headers["Content-Type"] = "application/json"
    elif name == "pkcs12":
        method = "POST"
        body = json.dumps({"password": "matrix-password-1"}).encode()
        headers["Content-Type"] = "application/json"
    elif name == "api/pending/*":
        method, body = "POST", b'{"decision": "reject"}'
        headers["Content-Type"] = "application/json"
    elif name == "api/acme/eab":
        method, body = "POST", b"{}"
        headers["Content-Type"] = "application/json"
    elif name.startswith("ocsp"):
        # OCSP (issue 17): the valid certificate's status, POST or GET
        import base64
        from cryptography.hazmat.primitives import hashes
        from cryptography.x509 import ocsp
        req = ocsp.OCSPRequestBuilder().add_certificate(
            env["valid"].cert, x509.load_pem_x509_certificate(h.ca.pem),
            hashes.SHA1()).build().public_bytes(
                serialization.Encoding.DER)
        if name == "ocsp":
            method, body = "POST", req
            headers["Content-Type"] = "application/ocsp-request"
        else:
            # base64url: no %2F, which this server (without
            # AllowEncodedSlashes NoDecode) would refuse itself
            url = "/ca/ocsp/" + base64.urlsafe_b64encode(req).decode() \
                .rstrip("=")
    try:
        st, hd, out = h.request(method, url, body=body, headers=headers,
                                **kw)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return TLS, b""
    if st == 201 and name == "renew" and holder:
        # the renewal is of the presented certificate, for its owner
        assert x509.load_pem_x509_certificate(out).subject \
            == holder.cert.subject
    return st, out


def test_authorization_matrix_every_route(mx):
    h, env = mx
    wrong = []
    cells = 0
    for route in routes():
        key = ("est:" if route["est"] else "") + route["path"]
        for login in LOGINS:
            for cert in CERTS:
                cells += 1
                want = expected(key, login, cert)
                got, body = matrix_call(h, env, key, login, cert)
                if got != want:
                    wrong.append((key, login, cert, want, got, body[:160]))
    # 23 routes (crl/*, cacert/*: issue 18; ocsp, ocsp/*: issue 17;
    # api/acme/eab: issue 19)
    assert cells == 23 * 4 * 5
    assert not wrong, "\n".join(repr(w) for w in wrong)


# --- the shipped configuration: a stale certificate locks nobody out ---------

def example_vhost_parts(users_file):
    """The access block of revoke/api and the CertAuthAdmin line, as
    conf/example-vhost.conf ships them, with the test's password file."""
    text = open(os.path.join(harness.REPO, "conf", "example-vhost.conf")).read()
    m = re.search(r'\n(\s*<LocationMatch "\^/ca/\(revoke.*?</LocationMatch>)',
                  text, re.S)
    assert m, "no revoke/api block in conf/example-vhost.conf"
    block = re.sub(r"AuthUserFile \S+", "AuthUserFile " + users_file,
                   m.group(1))
    admin = re.search(r"^\s*(CertAuthAdmin .*)$", text, re.M)
    assert admin, "no CertAuthAdmin in conf/example-vhost.conf"
    return block, admin.group(1)


def test_example_vhost_stale_certificate(ca, make_httpd, tmp_path):
    h = make_httpd(start=False, enroll_auth=False)
    block, admin = example_vhost_parts(h.users_file)
    h.write_conf()
    extra = block + """
    <LocationMatch "^/ca/enroll$">
        AuthType Basic
        AuthName Example
        AuthBasicProvider file
        AuthUserFile %s
        Require valid-user
    </LocationMatch>
""" % h.users_file
    with open(h.conf) as f:
        conf = f.read()
    # the example's CertAuthAdmin instead of the harness's; its access
    # block after the <Location /ca>, as in the example
    conf = conf.replace("CertAuthAdmin \"%{REMOTE_USER} == 'admin'\"",
                        admin, 1)
    conf = conf.replace("</VirtualHost>", extra + "</VirtualHost>", 1)
    with open(h.conf, "w") as f:
        f.write(conf)
    h.start()
    kd = str(tmp_path)
    stale = enroll(h, kd, "alice")
    assert revoke(h, stale.serial, "keyCompromise", user="alice")[0] == 200
    # the stale certificate alone: the module's 401 asks for the login
    st, hd, doc, body = api_certs(h, client_cert=stale.tls)
    assert st == 401 and hd["www-authenticate"].startswith("Basic"), body
    # with the login: in, as alice, and revoking works
    st, hd, doc, body = api_certs(h, client_cert=stale.tls, user="alice")
    assert st == 200 and doc["owner"] == "alice", body
    other = enroll(h, kd, "alice")
    st, _, doc, body = revoke(h, other.serial, "keyCompromise",
                              client_cert=stale.tls, user="alice")
    assert st == 200, body
    # administrators by either credential
    adm = enroll(h, kd, "admin")
    assert api_certs(h, client_cert=adm.tls)[2]["admin"] is True
    good = enroll(h, kd, "alice")
    assert api_certs(h, client_cert=good.tls, user="admin")[2]["admin"] \
        is True
    assert api_certs(h, client_cert=adm.tls, user="alice")[2]["admin"] \
        is True
    assert api_certs(h, client_cert=good.tls)[2]["admin"] is False


# --- finding 10: one rule for HTTP and certauth-admin -----------------------

def test_certauth_admin_same_revocation_rules(h, ca, tmp_path):
    from harness import ADMIN
    db = "sqlite3:" + h.db
    c = enroll(h, str(tmp_path), "alice")
    for reason in ("cACompromise", "aACompromise"):
        r = run([ADMIN, "revoke", "--db", db, c.serial, "--reason", reason],
                check=False, user=h.user)
        assert r.returncode == 2, r
        assert b"end-entity" in r.stderr, r.stderr
        st, _, doc, body = revoke(h, c.serial, reason, user="alice")
        assert st == 400 and "end-entity" in doc["detail"], body
    assert status_of(h, c.serial) == "valid"
    # keyCompromise by the operator: the certificates it authorised too
    der, key = csr_for()
    parent = one_cert(ca, est_post(h, "simpleenroll", b64(der), user="bob",
                                   label="bycert"), tmp_path)
    ident = write_identity(tmp_path, "bob-admin", parent, key)
    der2, _ = csr_for()
    child = one_cert(ca, est_post(h, "simpleenroll", b64(der2), user=None,
                                  cert=ident, label="bycert"), tmp_path)
    pserial = "%X" % parent.serial_number
    r = run([ADMIN, "revoke", "--db", db, pserial, "--reason",
             "keyCompromise"], check=False, user=h.user)
    assert r.returncode == 0, r
    certs = {int(x["serial"], 16): x for x in api_certs(
        h, "?owner=bob&limit=1000", user="admin")[2]["certificates"]}
    assert certs[child.serial_number]["status"] == "revoked"
    assert certs[child.serial_number]["reason"] == "keyCompromise"
