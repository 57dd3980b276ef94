"""ACME (RFC 8555): the server below /acme, with real clients (certbot, lego,
mod_md in a second httpd) and protocol refusals made with the python3-acme
and josepy libraries (Debian packages that certbot brings)."""
import base64
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

import pytest
import josepy as jose
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from harness import (ADMIN, APACHE, MODDIR, TestCA, free_port, run, serving)
from test_lifecycle import poll_crl

CERTBOT = shutil.which("certbot") or "/usr/bin/certbot"
LEGO = shutil.which("lego") or "/usr/bin/lego"


TLS_PORT = free_port()


def acme_conf(http_port, extra=""):
    return r"""
<CertAuthProfile acme-server>
    %s
    CertAuthValidityDays 90
    CertAuthExtendedKeyUsage serverAuth
    CertAuthRequire "%%{REMOTE_USER} != 'bob'"
</CertAuthProfile>
CertAuthACMEProfile acme-server localhost *.localhost *.invalid
CertAuthACMEChallengePort %d
CertAuthACMETLSPort %d
<Location /acme>
    CertAuthACME On
    Require all granted
</Location>
""" % (extra, http_port, TLS_PORT)


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return TestCA(str(tmp_path_factory.mktemp("acme")))


@pytest.fixture(scope="module")
def http_port():
    return free_port()


@pytest.fixture(scope="module")
def h(ca, http_port):
    """The ACME server, with the OCSP responder named in its certificates."""
    from harness import Httpd, assert_no_crash
    srv = Httpd(ca, vhost_conf=acme_conf(http_port))
    try:
        srv.vhost_conf += ("CertAuthOCSP On\nCertAuthOCSPURL %s/ca/ocsp\n"
                           % srv.url)
        srv.write_conf()
        srv.start()
        yield srv
        srv.stop()
        assert_no_crash(srv)
    finally:
        srv.cleanup()


def ocsp_status(h, leaf):
    """The OCSP responder's answer for an issued certificate, through the
    URL the certificate names."""
    from cryptography.x509 import ocsp
    from cryptography.x509.oid import AuthorityInformationAccessOID
    aia = leaf.extensions.get_extension_for_class(
        x509.AuthorityInformationAccess).value
    url = [d.access_location.value for d in aia
           if d.access_method == AuthorityInformationAccessOID.OCSP][0]
    assert url.startswith(h.url + "/"), url
    req = ocsp.OCSPRequestBuilder().add_certificate(
        leaf, x509.load_pem_x509_certificate(h.ca.pem),
        hashes.SHA1()).build().public_bytes(serialization.Encoding.DER)
    st, hd, body = h.request("POST", url[len(h.url):], body=req,
                             headers={"Content-Type":
                                      "application/ocsp-request"})
    assert st == 200, body
    return ocsp.load_der_ocsp_response(body).certificate_status


def directory_url(h):
    return h.url + "/acme/directory"


def eab(h, user="alice"):
    st, hd, body = h.request("POST", "/ca/api/acme/eab", user=user,
                             headers={"Content-Type": "application/json"},
                             body=b"{}")
    assert st == 201, body
    assert hd["content-type"].startswith("application/json")
    d = json.loads(body)
    assert d["directory"] == directory_url(h)
    assert not d["kid"].startswith("-") and not d["hmac_key"].startswith("-")
    return d["kid"], d["hmac_key"]


def my_serials(h, user="alice"):
    st, _, body = h.request("GET", "/ca/api/certs", user=user)
    assert st == 200, body
    d = json.loads(body)
    certs = d["certificates"]
    return {c["serial"]: c for c in certs}


class Responder:
    """http-01: serves /.well-known/acme-challenge/TOKEN on 127.0.0.1."""

    def __init__(self, port):
        self.tokens = {}
        self.redirect = None
        tokens = self.tokens
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                t = self.path.rsplit("/", 1)[-1]
                if outer.redirect:
                    self.send_response(302)
                    self.send_header("Location", outer.redirect)
                    self.end_headers()
                    return
                body = tokens.get(t)
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


class EdKey:
    """An Ed25519 account key (josepy 1.13 has no OKP keys)."""

    def __init__(self):
        self.key = ed25519.Ed25519PrivateKey.generate()

    def public_key(self):
        return self

    def to_partial_json(self):
        raw = self.key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519",
                "x": jose.b64encode(raw).decode()}

    def thumbprint(self):
        import hashlib
        return hashlib.sha256(json.dumps(
            self.to_partial_json(), sort_keys=True,
            separators=(",", ":")).encode()).digest()


class EdAlg:
    name = "EdDSA"

    def sign(self, key, msg):
        return key.sign(msg)


# ---------------------------------------------------------------------------
# a small JWS client (josepy), so that each request can be spoiled on purpose

class Client:
    def __init__(self, h, key=None, alg=None):
        self.h = h
        self.key = key or jose.JWKEC(key=ec.generate_private_key(
            ec.SECP256R1()))
        self.alg = alg or jose.ES256
        self.kid = None
        st, hd, body = h.get("/acme/directory")
        assert st == 200, body
        self.dir = json.loads(body)

    def path(self, url):
        assert url.startswith(self.h.url)
        return url[len(self.h.url):]

    def nonce(self):
        st, hd, _ = self.h.request("HEAD", self.path(self.dir["newNonce"]))
        assert st == 200
        return hd["replay-nonce"]

    def jws(self, url, payload, nonce=None, kid=None, jwk=False, key=None,
            alg=None):
        key = key or self.key
        prot = {"alg": (alg or self.alg).name, "url": url,
                "nonce": nonce if nonce is not None else self.nonce()}
        if jwk or not (kid or self.kid):
            prot["jwk"] = key.public_key().to_partial_json()
        else:
            prot["kid"] = kid or self.kid
        p64 = jose.b64encode(json.dumps(prot).encode()).decode()
        pl = b"" if payload is None else json.dumps(payload).encode()
        pl64 = jose.b64encode(pl).decode()
        sig = (alg or self.alg).sign(key.key,
                                     ("%s.%s" % (p64, pl64)).encode())
        return {"protected": p64, "payload": pl64,
                "signature": jose.b64encode(sig).decode()}

    def post_raw(self, url, obj, ctype="application/jose+json"):
        st, hd, body = self.h.request(
            "POST", self.path(url), body=json.dumps(obj).encode(),
            headers={"Content-Type": ctype})
        return st, hd, body

    def post(self, url, payload, **kw):
        return self.post_raw(url, self.jws(url, payload, **kw))

    def eab_binding(self, kid, hmac_key, url=None):
        url = url or self.dir["newAccount"]
        prot = {"alg": "HS256", "kid": kid, "url": url}
        p64 = jose.b64encode(json.dumps(prot).encode()).decode()
        pl64 = jose.b64encode(json.dumps(
            self.key.public_key().to_partial_json()).encode()).decode()
        import hmac as _h
        mac = _h.new(jose.b64decode(hmac_key),
                     ("%s.%s" % (p64, pl64)).encode(), "sha256").digest()
        return {"protected": p64, "payload": pl64,
                "signature": jose.b64encode(mac).decode()}

    def register(self, kid, hmac_key):
        st, hd, body = self.post(self.dir["newAccount"], {
            "termsOfServiceAgreed": True,
            "externalAccountBinding": self.eab_binding(kid, hmac_key)},
            jwk=True)
        assert st == 201, body
        self.kid = hd["location"]
        return json.loads(body)

    def order(self, names):
        st, hd, body = self.post(self.dir["newOrder"], {
            "identifiers": [{"type": "dns", "value": n} for n in names]})
        return st, hd, json.loads(body)

    def thumbprint(self):
        return jose.b64encode(self.key.thumbprint()).decode()

    def validate(self, order, responder, wait=30):
        for az_url in order["authorizations"]:
            st, _, body = self.post(az_url, None)
            assert st == 200, body
            az = json.loads(body)
            ch = [c for c in az["challenges"] if c["type"] == "http-01"][0]
            responder.tokens[ch["token"]] = (
                "%s.%s" % (ch["token"], self.thumbprint())).encode()
            st, _, body = self.post(ch["url"], {})
            assert st == 200, body
        return self.poll(order, wait)

    def poll(self, order_or_url, wait=30, until=("ready", "invalid",
                                                  "valid")):
        url = order_or_url if isinstance(order_or_url, str) else None
        deadline = time.time() + wait
        while True:
            st, _, body = self.post(url or self.order_url, None)
            assert st == 200, body
            o = json.loads(body)
            if o["status"] in until or time.time() > deadline:
                return o
            time.sleep(0.3)

    def csr(self, names, cn=None, key=None):
        key = key or ec.generate_private_key(ec.SECP256R1())
        b = x509.CertificateSigningRequestBuilder().subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]
                      if cn else []))
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName(n) for n in names]), critical=False)
        der = b.sign(key, hashes.SHA256()).public_bytes(
            serialization.Encoding.DER)
        return jose.b64encode(der).decode(), key


def load_chain(pem):
    end = b"-----END CERTIFICATE-----"
    return [x509.load_pem_x509_certificate(p + end)
            for p in pem.split(end) if p.strip()]


def problem(st, hd, body, status, ptype):
    assert st == status, (st, body)
    assert hd["content-type"].startswith("application/problem+json"), hd
    d = json.loads(body)
    assert d["type"] == "urn:ietf:params:acme:error:" + ptype, d
    return d


@pytest.fixture
def responder(http_port):
    r = Responder(http_port)
    yield r
    r.close()


def issue(c, responder, names=("localhost",)):
    st, hd, o = c.order(list(names))
    assert st == 201, o
    c.order_url = hd["location"]
    o = c.validate(o, responder)
    assert o["status"] == "ready", o
    csr, key = c.csr(list(names))
    st, hd, body = c.post(o["finalize"], {"csr": csr})
    assert st == 200, body
    o = json.loads(body)
    assert o["status"] == "valid", o
    st, hd, pem = c.post(o["certificate"], None)
    assert st == 200, pem
    assert hd["content-type"] == "application/pem-certificate-chain"
    certs = load_chain(pem)
    return certs, key, o


# ---------------------------------------------------------------------------

def test_directory_and_nonce(h):
    st, hd, body = h.get("/acme/directory")
    assert st == 200
    d = json.loads(body)
    for k in ("newNonce", "newAccount", "newOrder", "revokeCert",
              "keyChange"):
        assert d[k].startswith(h.url + "/acme/"), d
    assert d["meta"]["externalAccountRequired"] is True
    st, hd, _ = h.request("HEAD", "/acme/new-nonce")
    assert st == 200 and hd["replay-nonce"]
    assert hd["cache-control"] == "no-store"
    st, hd2, _ = h.get("/acme/new-nonce")
    assert st == 204 and hd2["replay-nonce"] != hd["replay-nonce"]


def test_eab_needs_login_and_profile_rule(h):
    st, _, _ = h.request("POST", "/ca/api/acme/eab",
                         headers={"Content-Type": "application/json"},
                         body=b"{}")
    assert st == 401
    # bob is not allowed by the profile's CertAuthRequire
    st, _, body = h.request("POST", "/ca/api/acme/eab", user="bob",
                            headers={"Content-Type": "application/json"},
                            body=b"{}")
    assert st == 403, body
    # a cross-site form post is refused (the route takes JSON only), and so
    # is an empty POST without X-Requested-With (the cross-site rule)
    st, _, body = h.request("POST", "/ca/api/acme/eab", user="alice",
                            headers={"Content-Type":
                                     "application/x-www-form-urlencoded"},
                            body=b"a=b")
    assert st == 415, body
    st, _, body = h.request("POST", "/ca/api/acme/eab", user="alice",
                            body=b"")
    assert st == 403 and b"cross-site" in body, body
    st, _, body = h.request("POST", "/ca/api/acme/eab", user="alice",
                            body=b"", headers={"X-Requested-With": "x"})
    assert st == 201, body
    st, _, body = h.request("GET", "/ca/api/acme/eab", user="alice")
    assert st == 405


def test_python_client_full_flow(h, responder):
    """Account (EAB), order, http-01, finalize, download, revoke by the
    account; the certificate is alice's in the store."""
    c = Client(h)
    kid, key = eab(h)
    acct = c.register(kid, key)
    assert acct["status"] == "valid"
    assert acct["externalAccountBinding"]["kid"] == kid
    certs, _, o = issue(c, responder)
    leaf = certs[0]
    assert leaf.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == ["localhost"]
    assert len(certs) >= 2  # the chain: the CA follows
    serial = "%X" % leaf.serial_number
    if len(serial) % 2:
        serial = "0" + serial
    mine = my_serials(h)
    assert serial in mine and mine[serial]["profile"] == "acme-server"
    # the account's orders list names it
    st, _, body = c.post(c.kid + "/orders", None)
    assert st == 200 and c.order_url in json.loads(body)["orders"]
    from cryptography.x509 import ocsp
    assert ocsp_status(h, leaf) == ocsp.OCSPCertStatus.GOOD
    # revoke by the account; then it is revoked, on the CRL and in OCSP
    der = leaf.public_bytes(serialization.Encoding.DER)
    st, hd, body = c.post(c.dir["revokeCert"],
                          {"certificate": jose.b64encode(der).decode(),
                           "reason": 4})
    assert st == 200, body
    st, hd, body = c.post(c.dir["revokeCert"],
                          {"certificate": jose.b64encode(der).decode()})
    problem(st, hd, body, 400, "alreadyRevoked")
    assert my_serials(h)[serial]["status"] == "revoked"
    # audited: account, issue, revocation
    st, _, body = h.request("GET", "/ca/api/audit?serial=" + serial,
                            user="admin")
    assert st == 200, body
    ev = {(e["action"], e["outcome"], e["actor"])
          for e in json.loads(body)["events"]}
    assert ("acme_issue", "ok", "alice") in ev, ev
    assert ("revoke", "ok", "alice") in ev, ev
    # made by the watchdog within CertAuthCRLDelay
    crl = poll_crl(h, lambda c: c.get_revoked_certificate_by_serial_number(
        leaf.serial_number) is not None, "the ACME revocation")
    assert crl.get_revoked_certificate_by_serial_number(
        leaf.serial_number) is not None
    assert ocsp_status(h, leaf) == ocsp.OCSPCertStatus.REVOKED


def test_prefork_validates_after_the_response(ca, http_port, responder):
    """prefork has no threads to spare: the validation runs in the child
    after the response to the challenge POST; the flow is the same.  The
    same server has a per-owner limit of 1 and EAB optional."""
    conf = acme_conf(http_port, "CertAuthMaxValidPerOwner 1") + \
        "CertAuthACMERequireEAB Off\n"
    for hp in serving(ca, mpm="prefork", vhost_conf=conf):
        c = Client(hp)
        c.register(*eab(hp))
        certs, _, o = issue(c, responder)
        assert "%X" % certs[0].serial_number in \
            {k.lstrip("0") for k in my_serials(hp)}
        # ACME certificates count in the profile's per-owner limit
        st, hd, o = c.order(["localhost"])
        c.order_url = hd["location"]
        o = c.validate(o, responder)
        csr, _ = c.csr(["localhost"])
        st, hd, body = c.post(o["finalize"], {"csr": csr})
        d = problem(st, hd, body, 403, "unauthorized")
        assert "1 valid" in d["detail"] or "limit" in d["detail"], d
        assert len(my_serials(hp)) == 1
        assert c.poll(c.order_url)["status"] == "invalid"
        # CertAuthACMERequireEAB Off: an account without EAB, owned by
        # acme:ID, gets certificates; the directory says so
        st, _, body = hp.get("/acme/directory")
        assert json.loads(body)["meta"]["externalAccountRequired"] is False
        anon = Client(hp)
        st, hd, body = anon.post(anon.dir["newAccount"],
                                 {"termsOfServiceAgreed": True}, jwk=True)
        assert st == 201, body
        anon.kid = hd["location"]
        certs, _, _ = issue(anon, responder)
        owner = "acme:" + anon.kid.rsplit("/", 1)[1]
        st, _, body = hp.request("GET", "/ca/api/certs?owner=" + owner,
                                 user="admin")
        assert st == 200, body
        assert len(json.loads(body)["certificates"]) == 1


def test_two_front_ends_on_postgresql(ca, http_port, responder):
    """Two front ends sharing one PostgreSQL database: a nonce of one is
    good on the other (once), and one order goes through both."""
    import test_pg
    if test_pg.pg_missing() or test_pg.pgsql_driver_missing():
        pytest.skip("PostgreSQL 15 or APR's pgsql driver absent")
    pg = test_pg.Postgres()
    gens = []
    try:
        pg.start()
        pg.createdb()
        conf = acme_conf(http_port) + "DBDMin 0\nDBDKeep 2\nDBDMax 8\n"
        fe = []
        for _ in range(2):
            g = serving(ca, db_driver="pgsql", db_params=pg.params,
                        vhost_conf=conf)
            fe.append(next(g))
            gens.append(g)
        h1, h2 = fe
        c1, c2 = Client(h1), Client(h2)
        c1.register(*eab(h1))
        c2.key, c2.kid = c1.key, c1.kid.replace(h1.url, h2.url)
        # a nonce of front end 1, spent on front end 2, then refused on 1
        n = c1.nonce()
        st, hd, body = c2.post(c2.dir["newOrder"], {
            "identifiers": [{"type": "dns", "value": "localhost"}]}, nonce=n)
        assert st == 201, body
        order_path = hd["location"][len(h2.url):]
        st, hd, body = c1.post(c1.dir["newOrder"], {
            "identifiers": [{"type": "dns", "value": "localhost"}]}, nonce=n)
        d = problem(st, hd, body, 400, "badNonce")
        # refused as spent (the two share the key and the spent nonces)
        assert "used already" in d["detail"], d
        # and a nonce served with that refusal is good on the other one
        st, hd, body = c2.post(c2.dir["newOrder"], {
            "identifiers": [{"type": "dns", "value": "localhost"}]},
            nonce=hd["replay-nonce"])
        assert st == 201, body
        # handing out nonces writes nothing on PostgreSQL either
        count = ("SELECT (SELECT COUNT(*) FROM certauth_acme_spent_nonces)"
                 " || '/' || (SELECT COUNT(*) FROM certauth_acme_nonce_key)")
        before = pg.psql(count)
        assert before == "3/1", before     # newAccount, two newOrders
        nonces(h1, 100)
        nonces(h2, 100)
        assert pg.psql(count) == before
        # the order of front end 2, validated and finalized through 1
        c1.order_url = h1.url + order_path
        st, _, body = c1.post(c1.order_url, None)
        o = c1.validate(json.loads(body), responder)
        assert o["status"] == "ready", o
        csr, _ = c1.csr(["localhost"])
        st, _, body = c1.post(o["finalize"], {"csr": csr})
        assert st == 200, body
        o = json.loads(body)
        st, hd, pem = c2.post(o["certificate"].replace(h1.url, h2.url), None)
        assert st == 200 and b"BEGIN CERTIFICATE" in pem
        assert pg.psql("SELECT COUNT(*) FROM certauth_certs "
                       "WHERE owner = 'alice'") == "1"
        for g in gens:
            for _ in g:       # stops the front end, checks for crashes
                pass
    finally:
        for g in gens:
            g.close()         # a failed test: stopped and removed all the same
        pg.cleanup()


def test_finalize_retried_after_a_store_failure(h, responder):
    """A finalize the store cannot complete (503) leaves the order ready,
    not invalid: the client's retry gets the certificate."""
    c = Client(h)
    kid, key = eab(h)
    c.register(kid, key)
    st, hd, o = c.order(["localhost"])
    assert st == 201, o
    c.order_url = hd["location"]
    o = c.validate(o, responder)
    assert o["status"] == "ready", o
    csr, _ = c.csr(["localhost"])

    def settled():
        """the order as the server reads it once every pooled connection
        has seen the schema change (each fails once, 503, and is
        replaced)"""
        ok = 0
        for _ in range(40):
            st, _, body = c.post(c.order_url, None)
            ok = ok + 1 if st == 200 else 0
            if ok == 4:
                return json.loads(body)
        raise AssertionError(body)

    run(["sqlite3", h.db, "CREATE TRIGGER test_refuse BEFORE INSERT ON "
         "certauth_certs BEGIN SELECT RAISE(ABORT, 'refused by the test'); "
         "END;"])
    try:
        assert settled()["status"] == "ready"
        st, hd, body = c.post(o["finalize"], {"csr": csr})
        problem(st, hd, body, 503, "serverInternal")
    finally:
        run(["sqlite3", h.db, "DROP TRIGGER test_refuse;"])
    assert settled()["status"] == "ready"
    st, hd, body = c.post(o["finalize"], {"csr": csr})
    assert st == 200, body
    assert json.loads(body)["status"] == "valid", body


def test_revoke_by_certificate_key(h, responder):
    c = Client(h)
    c.register(*eab(h))
    certs, certkey, _ = issue(c, responder)
    der = certs[0].public_bytes(serialization.Encoding.DER)
    # another account (bob cannot get one; alice's second) may not
    other = Client(h)
    other.register(*eab(h, "admin"))
    st, hd, body = other.post(other.dir["revokeCert"],
                              {"certificate": jose.b64encode(der).decode()})
    problem(st, hd, body, 403, "unauthorized")
    # the certificate's own key may, signed with jwk
    kc = Client(h, key=jose.JWKEC(key=certkey))
    st, hd, body = kc.post(kc.dir["revokeCert"],
                           {"certificate": jose.b64encode(der).decode()},
                           jwk=True)
    assert st == 200, body


@pytest.mark.parametrize("kind", ["rsa", "p384", "ed25519"])
def test_account_key_types(h, kind):
    if kind == "rsa":
        key = jose.JWKRSA(key=rsa.generate_private_key(65537, 2048))
        alg = jose.RS256
    elif kind == "p384":
        key = jose.JWKEC(key=ec.generate_private_key(ec.SECP384R1()))
        alg = jose.ES384
    else:
        key, alg = EdKey(), EdAlg()
    c = Client(h, key=key, alg=alg)
    acct = c.register(*eab(h))
    assert acct["status"] == "valid"
    st, hd, body = c.post(c.kid, None)
    assert st == 200, body


def test_account_existing_deactivate_keychange(h):
    c = Client(h)
    # onlyReturnExisting for an unknown key
    st, hd, body = c.post(c.dir["newAccount"], {"onlyReturnExisting": True},
                          jwk=True)
    problem(st, hd, body, 400, "accountDoesNotExist")
    # no EAB
    st, hd, body = c.post(c.dir["newAccount"], {"termsOfServiceAgreed": True},
                          jwk=True)
    problem(st, hd, body, 401, "externalAccountRequired")
    kid, hk = eab(h)
    c.register(kid, hk)
    # the same EAB credentials do not bind a second account
    c2 = Client(h)
    st, hd, body = c2.post(c2.dir["newAccount"], {
        "externalAccountBinding": c2.eab_binding(kid, hk)}, jwk=True)
    problem(st, hd, body, 401, "unauthorized")
    # a wrong HMAC key
    kid2, hk2 = eab(h)
    st, hd, body = c2.post(c2.dir["newAccount"], {
        "externalAccountBinding": c2.eab_binding(kid2, hk)}, jwk=True)
    problem(st, hd, body, 401, "unauthorized")
    # onlyReturnExisting finds the account
    st, hd, body = c.post(c.dir["newAccount"], {"onlyReturnExisting": True},
                          jwk=True)
    assert st == 200 and hd["location"] == c.kid
    # keyChange
    newkey = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    url = c.dir["keyChange"]
    inner_prot = {"alg": "ES256", "jwk": newkey.public_key().to_partial_json(),
                  "url": url}
    ip64 = jose.b64encode(json.dumps(inner_prot).encode()).decode()
    ipl64 = jose.b64encode(json.dumps({
        "account": c.kid,
        "oldKey": c.key.public_key().to_partial_json()}).encode()).decode()
    isig = jose.ES256.sign(newkey.key, ("%s.%s" % (ip64, ipl64)).encode())
    inner = {"protected": ip64, "payload": ipl64,
             "signature": jose.b64encode(isig).decode()}
    st, hd, body = c.post(url, inner)
    assert st == 200, body
    # the old key no longer works, the new one does
    st, hd, body = c.post(c.kid, None)
    problem(st, hd, body, 400, "malformed")
    c.key = newkey
    st, hd, body = c.post(c.kid, None)
    assert st == 200, body
    # deactivate; then the account is refused
    st, hd, body = c.post(c.kid, {"status": "deactivated"})
    assert st == 200 and json.loads(body)["status"] == "deactivated"
    st, hd, body = c.post(c.dir["newOrder"], {
        "identifiers": [{"type": "dns", "value": "localhost"}]})
    problem(st, hd, body, 401, "unauthorized")


def test_refusals(h, responder):
    c = Client(h)
    c.register(*eab(h))
    url = c.dir["newOrder"]
    ids = {"identifiers": [{"type": "dns", "value": "localhost"}]}
    # bad signature
    j = c.jws(url, ids)
    sig = bytearray(jose.b64decode(j["signature"]))
    sig[5] ^= 1
    j["signature"] = jose.b64encode(bytes(sig)).decode()
    st, hd, body = c.post_raw(url, j)
    problem(st, hd, body, 400, "malformed")
    assert "verification" in json.loads(body)["detail"]
    # replayed nonce: the first use works, the second is badNonce with a
    # fresh nonce
    n = c.nonce()
    st, hd, body = c.post(url, ids, nonce=n)
    assert st == 201, body
    st, hd, body = c.post(url, ids, nonce=n)
    problem(st, hd, body, 400, "badNonce")
    assert hd["replay-nonce"] and hd["replay-nonce"] != n
    # a made-up nonce
    st, hd, body = c.post(url, ids, nonce="AAAA")
    problem(st, hd, body, 400, "badNonce")
    # wrong URL: signed for another resource
    j = c.jws(c.dir["revokeCert"], ids)
    st, hd, body = c.post_raw(url, j)
    problem(st, hd, body, 401, "unauthorized")
    # unknown account
    st, hd, body = c.post(url, ids, kid=h.url + "/acme/acct/nosuchaccount")
    problem(st, hd, body, 400, "accountDoesNotExist")
    # the wrong media type
    st, hd, body = c.post_raw(url, c.jws(url, ids), ctype="application/json")
    problem(st, hd, body, 415, "malformed")
    # alg none
    j = c.jws(url, ids)
    prot = json.loads(jose.b64decode(j["protected"]))
    prot["alg"] = "none"
    j["protected"] = jose.b64encode(json.dumps(prot).encode()).decode()
    st, hd, body = c.post_raw(url, j)
    problem(st, hd, body, 400, "badSignatureAlgorithm")
    # names outside the profile
    st, hd, body = c.post(url, {"identifiers": [
        {"type": "dns", "value": "localhost"},
        {"type": "dns", "value": "www.example.com"}]})
    d = problem(st, hd, body, 400, "rejectedIdentifier")
    assert d["subproblems"][0]["identifier"]["value"] == "www.example.com"
    st, hd, body = c.post(url, {"identifiers": [
        {"type": "dns", "value": "*.localhost"}]})
    problem(st, hd, body, 400, "rejectedIdentifier")
    st, hd, body = c.post(url, {"identifiers": [
        {"type": "ip", "value": "127.0.0.1"}]})
    problem(st, hd, body, 400, "unsupportedIdentifier")
    # finalize before the order is ready
    st, hd, o = c.order(["localhost"])
    assert st == 201
    csr, _ = c.csr(["localhost"])
    st, hd, body = c.post(o["finalize"], {"csr": csr})
    problem(st, hd, body, 403, "orderNotReady")
    st, hd, o = c.order(["localhost", "nothing.invalid"])
    assert st == 201
    c.order_url = hd["location"]
    # nothing.invalid does not resolve (RFC 6761): its challenge fails
    o2 = c.validate(o, responder)
    assert o2["status"] == "invalid", o2
    # failed challenge: the authorization and the order are invalid
    st, _, body = c.post(o["authorizations"][1], None)
    az = json.loads(body)
    assert az["status"] == "invalid"
    ch = az["challenges"][0]
    assert ch["status"] == "invalid"
    assert ch["error"]["type"].startswith("urn:ietf:params:acme:error:")
    # the CSR check, on a ready order
    st, hd, o = c.order(["localhost"])
    c.order_url = hd["location"]
    o = c.validate(o, responder)
    assert o["status"] == "ready"
    for names, cn in ((["localhost", "x.localhost"], None),
                      (["other.localhost"], None),
                      (["localhost"], "wrong.localhost")):
        csr, _ = c.csr(names, cn=cn)
        st, hd, body = c.post(o["finalize"], {"csr": csr})
        problem(st, hd, body, 400, "badCSR")
    # nothing issued for the refused CSRs; the order is still ready
    o = c.poll(c.order_url)
    assert o["status"] == "ready"


def test_wrong_key_authorization_and_redirects(h, responder, http_port):
    c = Client(h)
    c.register(*eab(h))
    st, hd, o = c.order(["localhost"])
    c.order_url = hd["location"]
    st, _, body = c.post(o["authorizations"][0], None)
    ch = json.loads(body)["challenges"][0]
    responder.tokens[ch["token"]] = b"wrong.answer"
    st, _, body = c.post(ch["url"], {})
    assert st == 200, body
    o = c.poll(c.order_url, until=("invalid", "ready"))
    assert o["status"] == "invalid"
    st, _, body = c.post(ch["url"], None)
    assert json.loads(body)["error"]["type"].endswith("incorrectResponse")
    # a redirect to a name the profile does not allow is not followed
    st, hd, o = c.order(["localhost"])
    c.order_url = hd["location"]
    st, _, body = c.post(o["authorizations"][0], None)
    ch = json.loads(body)["challenges"][0]
    responder.redirect = "http://www.example.com:%d/x" % http_port
    try:
        st, _, body = c.post(ch["url"], {})
        o = c.poll(c.order_url, until=("invalid", "ready"))
    finally:
        responder.redirect = None
    assert o["status"] == "invalid"
    st, _, body = c.post(ch["url"], None)
    err = json.loads(body)["error"]
    assert err["type"].endswith("unauthorized") and "example.com" in \
        err["detail"]


# ---------------------------------------------------------------------------
# real clients

def cert_serial_hex(path):
    with open(path, "rb") as f:
        c = x509.load_pem_x509_certificate(f.read())
    s = "%X" % c.serial_number
    return ("0" + s if len(s) % 2 else s), c


def test_certbot_obtain_renew_revoke(h, http_port, tmp_path):
    kid, hmac_key = eab(h)
    d = str(tmp_path)
    env = dict(os.environ, REQUESTS_CA_BUNDLE=h.ca.cert)
    common = ["--config-dir", d + "/config", "--work-dir", d + "/work",
              "--logs-dir", d + "/logs", "--non-interactive"]
    r = run([CERTBOT, "certonly", "--standalone", "--http-01-port",
             str(http_port), "--http-01-address", "127.0.0.1",
             "--server", directory_url(h), "--eab-kid=" + kid,
             "--eab-hmac-key=" + hmac_key, "--agree-tos",
             "--register-unsafely-without-email", "-d", "localhost",
             "--cert-name", "t1"] + common, env=env, check=False,
            timeout=180)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()
    live = d + "/config/live/t1/"
    s1, c1 = cert_serial_hex(live + "cert.pem")
    with open(live + "chain.pem", "rb") as f:
        assert x509.load_pem_x509_certificate(f.read()).subject == \
            x509.load_pem_x509_certificate(h.ca.pem).subject
    mine = my_serials(h)
    assert s1 in mine and mine[s1]["status"] == "valid"
    # renew (forced: the certificate is new)
    r = run([CERTBOT, "renew", "--force-renewal", "--cert-name", "t1",
             "--no-random-sleep-on-renew"]
            + common, env=env, check=False, timeout=180)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()
    s2, c2 = cert_serial_hex(live + "cert.pem")
    assert s2 != s1 and s2 in my_serials(h)
    # revoke the renewed one
    r = run([CERTBOT, "revoke", "--cert-path", live + "cert.pem",
             "--reason", "superseded", "--no-delete-after-revoke",
             "--server", directory_url(h)] + common, env=env, check=False,
            timeout=180)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()
    assert my_serials(h)[s2]["status"] == "revoked"
    # made by the watchdog within CertAuthCRLDelay
    crl = poll_crl(h, lambda c: c.get_revoked_certificate_by_serial_number(
        c2.serial_number) is not None, "certbot's revocation")
    assert crl.get_revoked_certificate_by_serial_number(
        c2.serial_number) is not None


def test_lego_obtain_renew_revoke(h, http_port, tmp_path):
    kid, hmac_key = eab(h)
    d = str(tmp_path)
    env = dict(os.environ, LEGO_CA_CERTIFICATES=h.ca.cert)
    common = [LEGO, "--server", directory_url(h), "--path", d,
              "--accept-tos", "--email", "lego@example.org", "--eab",
              "--kid=" + kid, "--hmac=" + hmac_key, "--domains", "localhost",
              "--http", "--http.port", "127.0.0.1:%d" % http_port]
    r = run(common + ["run"], env=env, check=False, timeout=180)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()
    crt = os.path.join(d, "certificates", "localhost.crt")
    s1, _ = cert_serial_hex(crt)
    assert s1 in my_serials(h)
    r = run(common + ["renew", "--days", "3650", "--no-random-sleep"],
            env=env, check=False,
            timeout=180)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()
    s2, _ = cert_serial_hex(crt)
    assert s2 != s1 and s2 in my_serials(h)
    r = run(common + ["revoke"], env=env, check=False, timeout=180)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()
    assert my_serials(h)[s2]["status"] == "revoked"


class MdHttpd:
    """A second apache2 with mod_md, getting its certificate for localhost
    from the CA's ACME server (http-01 on http_port, MDPortMap)."""

    def __init__(self, h, http_port, kid, hmac_key):
        self.root = tempfile.mkdtemp(prefix="certauth-md-")
        os.chmod(self.root, 0o755)
        self.h = h
        self.http_port = http_port
        self.https_port = free_port()
        self.kid, self.hmac = kid, hmac_key
        self.conf = os.path.join(self.root, "httpd.conf")
        self.pidfile = os.path.join(self.root, "httpd.pid")
        self.log = os.path.join(self.root, "error_log")
        for d in ("run", "htdocs"):
            os.makedirs(os.path.join(self.root, d), exist_ok=True)
        # the children (www-data) read it; the test CA's directory is 0700
        self.cacert = os.path.join(self.root, "cacert.pem")
        shutil.copy(h.ca.cert, self.cacert)
        os.chmod(self.cacert, 0o644)
        self.write(renew_window=None)

    def write(self, renew_window):
        mods = ["mpm_event", "authz_core", "ssl", "socache_shmcb",
                "md", "mime"]
        conf = "\n".join("LoadModule %s_module %s/mod_%s.so" % (m, MODDIR, m)
                         for m in mods)
        user = ""
        if os.geteuid() == 0:
            user = "User www-data\nGroup www-data\n"
        conf += """
ServerRoot "{root}"
DefaultRuntimeDir "{root}/run"
PidFile "{pid}"
Mutex file:{root}/run default
{user}
ServerName localhost
ServerAdmin mailto:webmaster@example.org
ErrorLog "{log}"
LogLevel warn md:info
Listen 127.0.0.1:{http}
Listen 127.0.0.1:{https}
TypesConfig /etc/mime.types
DocumentRoot "{root}/htdocs"
SSLSessionCache "shmcb:{root}/run/ssl_scache(512000)"
MDStoreDir "{root}/md"
MDCertificateAuthority {directory}
MDCACertificateFile {cacert}
MDExternalAccountBinding {kid} {hmac}
MDPortMap 80:{http} 443:{https}
MDCAChallenges http-01
MDCertificateAgreement accepted
{window}
MDomain localhost
<VirtualHost 127.0.0.1:{http}>
    ServerName localhost
</VirtualHost>
<VirtualHost 127.0.0.1:{https}>
    ServerName localhost
    SSLEngine on
</VirtualHost>
""".format(root=self.root, pid=self.pidfile, user=user, log=self.log,
           http=self.http_port, https=self.https_port,
           directory=directory_url(self.h), cacert=self.cacert,
           kid=self.kid, hmac=self.hmac,
           window=("MDRenewWindow %s" % renew_window) if renew_window
           else "")
        with open(self.conf, "w") as f:
            f.write(conf)

    def apachectl(self, *args):
        r = run([APACHE, "-f", self.conf] + list(args), check=False)
        assert r.returncode == 0, (r.stdout + r.stderr).decode() + \
            self.log_text()

    def log_text(self):
        try:
            with open(self.log) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def pid(self):
        try:
            with open(self.pidfile) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def wait_staged(self, old_serial=None, timeout=120):
        """Until mod_md has a new certificate staged for activation."""
        path = os.path.join(self.root, "md", "staging", "localhost",
                            "pubcert.pem")
        deadline = time.time() + timeout
        while time.time() < deadline:
            if os.path.exists(path):
                with open(path, "rb") as f:
                    c = x509.load_pem_x509_certificate(f.read())
                if "%X" % c.serial_number != old_serial:
                    return
            time.sleep(0.5)
        raise AssertionError("mod_md staged no certificate:\n"
                             + self.log_text())

    def served(self, timeout=30):
        """The certificate served for localhost (after a graceful
        restart, once the children serve it)."""
        import socket
        import ssl
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                ctx = ssl.create_default_context(cafile=self.h.ca.cert)
                with socket.create_connection(("127.0.0.1", self.https_port),
                                              timeout=5) as s:
                    with ctx.wrap_socket(s, server_hostname="localhost") as t:
                        return x509.load_der_x509_certificate(
                            t.getpeercert(True))
            except (OSError, ssl.SSLError) as e:
                last = e
                time.sleep(0.5)
        raise AssertionError("no certificate of the CA served: %s\n%s"
                             % (last, self.log_text()))

    def stop(self):
        pid = self.pid()
        if pid:
            try:
                os.kill(pid, 15)
            except ProcessLookupError:
                pass
            deadline = time.time() + 15
            while time.time() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.2)
        if not os.environ.get("CERTAUTH_KEEP"):
            shutil.rmtree(self.root, ignore_errors=True)


def hexserial(c):
    s = "%X" % c.serial_number
    return "0" + s if len(s) % 2 else s


def test_mod_md_obtains_serves_renews(h, http_port):
    """mod_md in a second httpd gets a certificate for localhost with EAB
    credentials of alice, serves it after a graceful restart, renews it
    (a renewal window longer than the validity) and serves the new one;
    alice revokes it on the site (mod_md has no revocation)."""
    kid, hmac_key = eab(h)
    md = MdHttpd(h, http_port, kid, hmac_key)
    try:
        md.apachectl("-t")
        md.apachectl("-k", "start")
        md.wait_staged()
        md.apachectl("-k", "graceful")
        c1 = md.served()
        # until the graceful restart is done, mod_md's fallback may show
        deadline = time.time() + 30
        while c1.issuer != x509.load_pem_x509_certificate(h.ca.pem).subject \
                and time.time() < deadline:
            time.sleep(0.5)
            c1 = md.served()
        assert c1.issuer == x509.load_pem_x509_certificate(h.ca.pem).subject
        s1 = hexserial(c1)
        mine = my_serials(h)
        assert s1 in mine and mine[s1]["status"] == "valid"
        # renewal
        md.write(renew_window="91d")
        md.apachectl("-k", "graceful")
        md.wait_staged(old_serial="%X" % c1.serial_number)
        md.apachectl("-k", "graceful")
        deadline = time.time() + 30
        c2 = md.served()
        while c2.serial_number == c1.serial_number and \
                time.time() < deadline:
            time.sleep(0.5)
            c2 = md.served()
        assert c2.serial_number != c1.serial_number
        s2 = hexserial(c2)
        assert s2 in my_serials(h)
    finally:
        md.stop()
    st, _, body = h.request("POST", "/ca/revoke", user="alice",
                            headers={"Content-Type": "application/json"},
                            body=json.dumps({"serial": s2,
                                             "reason": "superseded"}).encode())
    assert st == 200, body
    assert my_serials(h)[s2]["status"] == "revoked"


def test_lego_tls_alpn_01(h, tmp_path):
    """tls-alpn-01 (RFC 8737) with lego's own TLS server on the port of
    CertAuthACMETLSPort."""
    kid, hmac_key = eab(h)
    d = str(tmp_path)
    env = dict(os.environ, LEGO_CA_CERTIFICATES=h.ca.cert)
    r = run([LEGO, "--server", directory_url(h), "--path", d, "--accept-tos",
             "--email", "lego@example.org", "--eab", "--kid=" + kid,
             "--hmac=" + hmac_key, "--domains", "localhost", "--tls",
             "--tls.port", "127.0.0.1:%d" % TLS_PORT, "run"], env=env,
            check=False, timeout=180)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()
    s1, _ = cert_serial_hex(os.path.join(d, "certificates", "localhost.crt"))
    assert s1 in my_serials(h)


def test_tls_alpn_01_refused_without_server(h):
    """Nobody answers on the tls-alpn-01 port: the challenge, the
    authorization and the order are invalid, with a connection problem."""
    c = Client(h)
    c.register(*eab(h))
    st, hd, o = c.order(["localhost"])
    c.order_url = hd["location"]
    st, _, body = c.post(o["authorizations"][0], None)
    ch = [x for x in json.loads(body)["challenges"]
          if x["type"] == "tls-alpn-01"][0]
    st, _, body = c.post(ch["url"], {})
    assert st == 200, body
    o = c.poll(c.order_url, until=("invalid", "ready"))
    assert o["status"] == "invalid"
    st, _, body = c.post(ch["url"], None)
    ch = json.loads(body)
    assert ch["status"] == "invalid"
    assert ch["error"]["type"].endswith(":connection"), ch


def test_malformed_requests_never_500(h):
    """Garbage in every place an ACME request has one: a problem document
    with a 4xx status, never a 500."""
    c = Client(h)
    c.register(*eab(h))
    d = c.dir
    bad_bodies = [b"", b"not json", b"[]", b"{}", b'{"protected":1}',
                  b'{"protected":"!!","payload":"","signature":""}',
                  json.dumps({"protected": jose.b64encode(b"[1]").decode(),
                              "payload": "", "signature": ""}).encode()]
    for url in (d["newAccount"], d["newOrder"], d["revokeCert"],
                d["keyChange"], c.kid):
        for body in bad_bodies:
            st, hd, out = h.request("POST", c.path(url), body=body,
                                    headers={"Content-Type":
                                             "application/jose+json"})
            assert 400 <= st < 500, (url, body, st, out)
            assert hd["content-type"].startswith("application/problem+json")
    payloads = [[], "x", {"identifiers": "x"}, {"identifiers": [1]},
                {"identifiers": [{"type": "dns"}]},
                {"identifiers": [{"type": "dns", "value": "a..b"}]},
                {"identifiers": [{"type": "dns", "value": "x" * 300}]},
                {"identifiers": [{"type": "dns", "value": "localhost"}],
                 "notAfter": "2030-01-01T00:00:00Z"},
                {"csr": "!!!"}, {"csr": jose.b64encode(b"junk").decode()},
                {"certificate": "!!"},
                {"certificate": jose.b64encode(b"junk").decode()},
                {"certificate": jose.b64encode(b"junk").decode(),
                 "reason": "x"},
                {"contact": "x"}, {"contact": ["http://x"]},
                {"status": "valid"}, {"status": 1}]
    st, hd, o = c.order(["localhost"])
    assert st == 201
    for url in (d["newOrder"], o["finalize"], d["revokeCert"], c.kid,
                o["authorizations"][0], d["keyChange"]):
        for pl in payloads:
            st, hd, out = c.post(url, pl)
            assert st < 500, (url, pl, st, out)
    # unknown resources and methods
    for path in ("/acme/nothing", "/acme/order/", "/acme/acct/x/y",
                 "/acme/cert/zz/zz"):
        st, hd, out = h.request("POST", path, body=b"{}",
                                headers={"Content-Type":
                                         "application/jose+json"})
        assert st == 404, (path, st, out)
    st, hd, out = h.get("/acme/new-account")
    assert st == 405 and hd["allow"] == "POST"
    st, hd, out = h.request("POST", "/acme/directory", body=b"{}")
    assert st == 405


def test_stuck_validation_is_taken_over(h, responder):
    """A challenge left processing (its child went away mid-validation)
    is validated again when the client asks once more, after 90 s."""
    c = Client(h)
    c.register(*eab(h))
    st, hd, o = c.order(["localhost"])
    c.order_url = hd["location"]
    st, _, body = c.post(o["authorizations"][0], None)
    ch = [x for x in json.loads(body)["challenges"]
          if x["type"] == "http-01"][0]
    cid = ch["url"].rsplit("/", 1)[1]
    # as if a child had started it long ago and died
    run(["sqlite3", h.db, "UPDATE certauth_acme_challenges SET "
         "status = 'processing', validated_at = %d WHERE id = '%s'"
         % (int(time.time()) - 600, cid)], user=h.user)
    responder.tokens[ch["token"]] = (
        "%s.%s" % (ch["token"], c.thumbprint())).encode()
    st, _, body = c.post(ch["url"], {})
    assert st == 200, body
    assert c.poll(c.order_url)["status"] == "ready"
    # a recent one is left alone
    st, hd, o = c.order(["localhost"])
    c.order_url = hd["location"]
    st, _, body = c.post(o["authorizations"][0], None)
    ch = [x for x in json.loads(body)["challenges"]
          if x["type"] == "http-01"][0]
    cid = ch["url"].rsplit("/", 1)[1]
    run(["sqlite3", h.db, "UPDATE certauth_acme_challenges SET "
         "status = 'processing', validated_at = %d WHERE id = '%s'"
         % (int(time.time()), cid)], user=h.user)
    responder.tokens[ch["token"]] = (
        "%s.%s" % (ch["token"], c.thumbprint())).encode()
    st, _, body = c.post(ch["url"], {})
    assert json.loads(body)["status"] == "processing"
    time.sleep(2)
    assert c.poll(c.order_url, wait=0)["status"] == "pending"


@pytest.mark.parametrize("conf,needle", [
    ("CertAuthACMEProfile nosuch localhost\n"
     "<Location /acme>\nCertAuthACME On\n</Location>\n", "nosuch"),
    ("<Location /acme>\nCertAuthACME On\n</Location>\n",
     "needs CertAuthACMEProfile"),
    ("CertAuthACMEProfile server\n", "at least one DNS name pattern"),
    ("<CertAuthProfile server>\n</CertAuthProfile>\n"
     "CertAuthACMEProfile server http://x\n", "not a DNS name pattern"),
    ("CertAuthACMEChallengePort 0\n", "CertAuthACMEChallengePort"),
])
def test_configuration_mistakes(ca, conf, needle):
    """Each mistake stops `apache2 -t` with a line that names it."""
    from harness import Httpd
    h = Httpd(ca, vhost_conf=conf)
    try:
        rc, out = h.configtest()
        assert rc != 0 and needle in out, out
    finally:
        h.cleanup()


# ---------------------------------------------------------------------------
# nonces: made without the database (HMAC under a key in the database),
# spent (one row) only by a request whose signature verifies

def nonce_key(h):
    import sqlite3
    con = sqlite3.connect(h.db, timeout=30)
    try:
        return jose.b64decode(con.execute(
            "SELECT hmac_key FROM certauth_acme_nonce_key").fetchone()[0])
    finally:
        con.close()


def make_nonce(key, at, rnd=None):
    """A nonce as the server makes one (README, chapter ACME)."""
    import hmac as _h
    tr = int(at).to_bytes(8, "big") + (rnd or os.urandom(16))
    return jose.b64encode(
        tr + _h.new(key, tr, "sha256").digest()[:16]).decode()


def table_rows(h, tables=None):
    """{table: rows} of the database (every table when tables is None)."""
    import sqlite3
    con = sqlite3.connect(h.db, timeout=30)
    try:
        if tables is None:
            tables = [r[0] for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: con.execute("SELECT COUNT(*) FROM %s" % t).fetchone()[0]
                for t in tables}
    finally:
        con.close()


def spent(h):
    return table_rows(h, ["certauth_acme_spent_nonces"])[
        "certauth_acme_spent_nonces"]


def test_nonce_forged_expired(h):
    c = Client(h)
    c.register(*eab(h))
    url = c.dir["newOrder"]
    ids = {"identifiers": [{"type": "dns", "value": "localhost"}]}
    key = nonce_key(h)
    assert len(key) == 32
    n = c.nonce()
    assert len(n) == 54
    # made here with the server's key and the time now: accepted (so the
    # refusals below are for the MAC and the age, not the format)
    st, hd, body = c.post(url, ids, nonce=make_nonce(key, time.time()))
    assert st == 201, body
    # forged: a MAC changed, another key, a served nonce's time changed
    forged = n[:-2] + ("B" if n[-2] != "B" else "C") + n[-1]
    for bad in (forged, make_nonce(os.urandom(32), time.time()),
                jose.b64encode(
                    (int(time.time()) - 5).to_bytes(8, "big")
                    + jose.b64decode(n)[8:]).decode()):
        before = spent(h)
        st, hd, body = c.post(url, ids, nonce=bad)
        d = problem(st, hd, body, 400, "badNonce")
        assert "not issued by this server" in d["detail"], d
        assert len(hd["replay-nonce"]) == 54 and hd["replay-nonce"] != bad
        assert spent(h) == before
    # expired: the server's key, issued more than an hour ago
    old = make_nonce(key, time.time() - 3700)
    st, hd, body = c.post(url, ids, nonce=old)
    d = problem(st, hd, body, 400, "badNonce")
    assert "expired" in d["detail"], d
    assert hd["replay-nonce"]
    # the fresh nonce of a badNonce answer works
    st, hd, body = c.post(url, ids, nonce=hd["replay-nonce"])
    assert st == 201, body


def test_spent_only_when_signed(h):
    """Unsigned, badly signed or refused-before-verification requests leave
    the spent table as it was, and their nonce still works afterwards."""
    c = Client(h)
    c.register(*eab(h))
    url = c.dir["newOrder"]
    ids = {"identifiers": [{"type": "dns", "value": "localhost"}]}
    before = spent(h)
    n = c.nonce()
    # badly signed
    j = c.jws(url, ids, nonce=n)
    sig = bytearray(jose.b64decode(j["signature"]))
    sig[3] ^= 1
    j["signature"] = jose.b64encode(bytes(sig)).decode()
    st, hd, body = c.post_raw(url, j)
    problem(st, hd, body, 400, "malformed")
    # unsigned (empty signature)
    j = c.jws(url, ids, nonce=n)
    j["signature"] = ""
    st, hd, body = c.post_raw(url, j)
    assert st == 400, body
    # signed by another key than the account's
    other = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    st, hd, body = c.post_raw(url, c.jws(url, ids, nonce=n, key=other))
    problem(st, hd, body, 400, "malformed")
    # signed for another URL, an unknown account
    st, hd, body = c.post_raw(url, c.jws(c.dir["revokeCert"], ids, nonce=n))
    problem(st, hd, body, 401, "unauthorized")
    st, hd, body = c.post(url, ids, nonce=n,
                          kid=h.url + "/acme/acct/nosuchaccount")
    problem(st, hd, body, 400, "accountDoesNotExist")
    assert spent(h) == before
    # the nonce was never spent: a good request with it works, once
    st, hd, body = c.post(url, ids, nonce=n)
    assert st == 201, body
    assert spent(h) == before + 1
    st, hd, body = c.post(url, ids, nonce=n)
    problem(st, hd, body, 400, "badNonce")
    assert spent(h) == before + 1


def nonces(h, count):
    """count newNonce requests (HEAD and GET in turn) over kept-alive
    connections; the nonces served."""
    import http.client
    out = []
    conn = None
    for i in range(count):
        if conn is None:
            conn = http.client.HTTPSConnection(
                "127.0.0.1", h.port, context=h.ssl_context(None), timeout=60)
        conn.request("HEAD" if i % 2 else "GET", "/acme/new-nonce")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == (200 if i % 2 else 204), resp.status
        out.append(resp.getheader("Replay-Nonce"))
        if resp.will_close:
            conn.close()
            conn = None
    if conn is not None:
        conn.close()
    return out


def test_new_nonce_writes_nothing(h):
    """1,000 newNonce requests add no row and take no write lock: they are
    answered while the sqlite3 shell holds an exclusive lock."""
    import sqlite3
    nonces(h, 20)              # the children have read the key
    rows = table_rows(h)
    sh = subprocess.Popen(["sqlite3", h.db], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    try:
        sh.stdin.write("BEGIN EXCLUSIVE;\nSELECT 'locked';\n")
        sh.stdin.flush()
        assert sh.stdout.readline().strip() == "locked"
        # the lock is held: no other writer gets in
        con = sqlite3.connect(h.db, timeout=0)
        with pytest.raises(sqlite3.OperationalError):
            con.execute("BEGIN IMMEDIATE")
        con.close()
        got = nonces(h, 1000)
        assert len(set(got)) == 1000 and all(len(n) == 54 for n in got)
        st, _, body = h.get("/acme/directory")
        assert st == 200, body
        assert sh.poll() is None     # the lock was held throughout
    finally:
        sh.stdin.write("ROLLBACK;\n.quit\n")
        sh.stdin.flush()
        sh.communicate(timeout=30)
    assert table_rows(h) == rows
    # and they are good nonces
    c = Client(h)
    c.register(*eab(h))
    st, hd, body = c.post(c.dir["newOrder"], {"identifiers": [
        {"type": "dns", "value": "localhost"}]}, nonce=got[-1])
    assert st == 201, body
