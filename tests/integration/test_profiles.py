"""Issue 3: certificate profiles and issuance policy, against the real module
in apache2.

Servers are few (start-up dominates the run time): one with a profile per
option, one with the shipped conf/profiles.conf, one for the per-owner limit
and the unique-subject rule under concurrent requests.  Start-up validation
reuses one generated server root for all `apache2 -t` cases.

Every refusal is checked for its status, a JSON body {"error", "detail"}
whose detail names the field or rule, and that nothing was stored.
"""
import collections
import datetime
import ipaddress
import json
import re
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import (AuthorityInformationAccessOID,
                                   ExtendedKeyUsageOID, NameOID,
                                   ObjectIdentifier)

from conftest import key_of
from harness import ADMIN, REPO, Httpd, run

PG_OID = "2.25.305821105408246119474742976030998643995"

FIELDS = {
    "C": NameOID.COUNTRY_NAME, "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "L": NameOID.LOCALITY_NAME, "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME, "CN": NameOID.COMMON_NAME,
    "UID": NameOID.USER_ID, "serialNumber": NameOID.SERIAL_NUMBER,
    "emailAddress": NameOID.EMAIL_ADDRESS, "DC": NameOID.DOMAIN_COMPONENT,
}
FIELD_NAMES = {v: k for k, v in FIELDS.items()}

# --------------------------------------------------------------------------
# CSRs and certificates
# --------------------------------------------------------------------------

_keys = {}


def cached_key(kind):
    """One key per type for the whole module (RSA 3072 is slow to make)."""
    if kind not in _keys:
        if kind == "rsa3072":
            from cryptography.hazmat.primitives.asymmetric import rsa
            _keys[kind] = rsa.generate_private_key(65537, 3072)
        else:
            _keys[kind] = key_of(kind)
    return _keys[kind]


def san_obj(spec):
    typ, value = spec.split(":", 1)
    if typ == "DNS":
        return x509.DNSName(value)
    if typ == "email":
        return x509.RFC822Name(value)
    if typ == "URI":
        return x509.UniformResourceIdentifier(value)
    if typ == "IP":
        return x509.IPAddress(ipaddress.ip_address(value))
    raise ValueError(spec)


def csr(subject=(("CN", "ignored-by-ca"),), sans=(), kind="p256", key=None):
    """PEM CSR with the subject [(field, value), ...] in that order and the
    subjectAltNames ["DNS:x", "IP:1.2.3.4", ...] requested."""
    key = key or cached_key(kind)
    b = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(
        [x509.NameAttribute(FIELDS[f], v) for f, v in subject]))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(
            [san_obj(s) for s in sans]), critical=False)
    csr_ = b.sign(key, None if kind == "ed25519" else hashes.SHA256())
    return csr_.public_bytes(serialization.Encoding.PEM)


def subject(cert):
    """[(field, value), ...] in DER order (most significant first)."""
    return [(FIELD_NAMES.get(a.oid, a.oid.dotted_string), a.value)
            for a in cert.subject]


def sans(cert):
    try:
        ext = cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    out = []
    for g in ext.value:
        if isinstance(g, x509.DNSName):
            out.append("DNS:" + g.value)
        elif isinstance(g, x509.RFC822Name):
            out.append("email:" + g.value)
        elif isinstance(g, x509.UniformResourceIdentifier):
            out.append("URI:" + g.value)
        elif isinstance(g, x509.IPAddress):
            out.append("IP:" + str(g.value))
        else:
            out.append(repr(g))
    return out


def eku(cert):
    return list(cert.extensions.get_extension_for_class(
        x509.ExtendedKeyUsage).value)


def ku(cert):
    v = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    names = []
    for attr in ("digital_signature", "content_commitment", "key_encipherment",
                 "data_encipherment", "key_agreement"):
        if getattr(v, attr):
            names.append(attr)
    return names


def aia(cert):
    return [(d.access_method.dotted_string, d.access_location.value)
            for d in cert.extensions.get_extension_for_class(
                x509.AuthorityInformationAccess).value]


def life(cert):
    return cert.not_valid_after - cert.not_valid_before


def about_days(cert, days):
    d = life(cert)
    return (datetime.timedelta(days=days) <= d
            <= datetime.timedelta(days=days, minutes=10))


def openssl_verify(ca, pem):
    with tempfile.NamedTemporaryFile(suffix=".pem") as f:
        f.write(pem)
        f.flush()
        r = run(["openssl", "verify", "-x509_strict", "-CAfile", ca.cert,
                 f.name], check=False)
        return r.returncode, (r.stdout + r.stderr).decode()


def stored(h):
    """Rows of the database: dicts of serial, status, owner, profile..."""
    r = run([ADMIN, "list", "--db", "sqlite3:" + h.db, "--limit", "100000"],
            user=h.user)
    keys = ("serial", "status", "not_after", "owner", "profile", "subject")
    return [dict(zip(keys, line.split(None, 5)))
            for line in r.stdout.decode().splitlines()[1:]]


def names(detail, word):
    """Does the detail name `word` as a word of its own (O, not OU)?"""
    return re.search(r"(?<![\w-])%s(?![\w])" % re.escape(word), detail)


class Client:
    """Enrollment with bookkeeping: ok() expects 201 and counts the row,
    refused() expects a JSON refusal naming the words and no new row."""

    def __init__(self, h):
        self.h = h
        self.n = h.rows()

    def post(self, body, user, profile, headers):
        path = "/ca/enroll"
        if profile is not None:
            path += "?profile=" + profile
        return self.h.enroll(body, user=user, path=path, headers=headers)

    def ok(self, body, user="alice", profile=None, headers=None):
        st, hd, data = self.post(body, user, profile, headers)
        assert st == 201, (profile, user, st, data)
        self.n += 1
        return x509.load_pem_x509_certificate(data), data

    def refused(self, status, body, *words, user="alice", profile=None,
                headers=None):
        st, hd, data = self.post(body, user, profile, headers)
        assert st == status, (profile, user, status, st, data)
        assert hd.get("content-type", "").startswith("application/json"), hd
        j = json.loads(data)
        assert set(j) == {"error", "detail"}, j
        assert j["error"] and j["detail"], j
        for w in words:
            assert names(j["detail"], w), (w, j)
        assert self.h.rows() == self.n, "a refused request stored a row"
        return j


# --------------------------------------------------------------------------
# 1. Every option, positive and negative
# --------------------------------------------------------------------------

OPTIONS_SERVER = r"""
<CertAuthProfile clash>
    CertAuthSubjectRDN O "Main server"
    CertAuthSubjectRDN CN "%{REMOTE_USER}"
</CertAuthProfile>
<CertAuthProfile global>
    CertAuthSubjectRDN O "Global"
    CertAuthSubjectRDN CN "%{REMOTE_USER}"
</CertAuthProfile>
"""

OPTIONS_VHOST = r"""
<CertAuthProfile clash>
    CertAuthSubjectRDN O "Virtual host"
    CertAuthSubjectRDN CN "%{REMOTE_USER}"
</CertAuthProfile>
<CertAuthProfile dflt>
    CertAuthSubjectRDN O "Default Org"
    CertAuthSubjectRDN CN "%{REMOTE_USER}"
</CertAuthProfile>
<CertAuthProfile tmpl>
    CertAuthSubjectRDN C "FR"
    CertAuthSubjectRDN O "Example Org"
    CertAuthSubjectRDN OU "%{req:X-Unit}" optional maxlen=8 chars=a-z0-9-
    CertAuthSubjectRDN CN "%{REMOTE_USER}" maxlen=4
    CertAuthSubjectRDN serialNumber "%{CERTAUTH_UUID}"
    CertAuthSubjectRDN UID "%{CERTAUTH_UUID}"
    CertAuthValidityDays 10
    CertAuthRenewalWindowDays 5
</CertAuthProfile>
<CertAuthProfile needed>
    CertAuthSubjectRDN CN "%{REMOTE_USER}"
    CertAuthSubjectRDN OU "%{req:X-Unit}"
</CertAuthProfile>
<CertAuthProfile csr>
    CertAuthSubjectRDN C "FR"
    CertAuthSubjectCSR O match
    CertAuthSubjectCSR OU match "value=Research Lab"
    CertAuthSubjectCSR UID match value=%{REMOTE_USER}
    CertAuthSubjectCSR CN supplied maxlen=12 chars=a-z0-9.
    CertAuthSubjectCSR L optional maxlen=6 chars=A-Za-z
    CertAuthSubjectCSR serialNumber forbidden
</CertAuthProfile>
<CertAuthProfile sans>
    CertAuthSubjectRDN CN "%{REMOTE_USER}"
    CertAuthSAN email "%{REMOTE_USER}@example.org"
    CertAuthSAN DNS "%{REMOTE_USER}.users.example.org"
    CertAuthSAN URI "urn:example:user:%{REMOTE_USER}"
    CertAuthSAN IP "192.0.2.7"
    CertAuthSAN IP "2001:db8::7"
    CertAuthSAN email "%{req:X-Alt-Mail}" optional
</CertAuthProfile>
<CertAuthProfile sanreq>
    CertAuthSubjectRDN CN "%{REMOTE_USER}"
    CertAuthSAN DNS "%{req:X-Host}"
</CertAuthProfile>
<CertAuthProfile sancsr>
    CertAuthSubjectRDN CN "%{REMOTE_USER}"
    CertAuthSAN URI "urn:example:user:%{REMOTE_USER}"
    CertAuthSANFromCSR DNS example.org *.example.org
    CertAuthSANFromCSR IP 192.0.2.* ::1
    CertAuthSANFromCSR email *@example.org
</CertAuthProfile>
<CertAuthProfile keys>
    CertAuthSubjectRDN CN "%{REMOTE_USER}"
    CertAuthKeyTypes rsa:3072 ec:P-384
</CertAuthProfile>
<CertAuthProfile edonly>
    CertAuthSubjectRDN CN "%{REMOTE_USER}"
    CertAuthKeyTypes ed25519
</CertAuthProfile>
<CertAuthProfile usage>
    CertAuthSubjectRDN CN "%{REMOTE_USER}"
    CertAuthKeyUsage digitalSignature nonRepudiation keyEncipherment
    CertAuthExtendedKeyUsage codeSigning 1.3.6.1.4.1.55555.1
    CertAuthValidityDays 3
</CertAuthProfile>
<CertAuthProfile aia>
    CertAuthSubjectRDN CN "%{REMOTE_USER}"
    CertAuthAIA 1.3.6.1.4.1.55555.7 https://rpc.example.org:12369/rpc
    CertAuthAIA 1.3.6.1.5.5.7.48.1 http://ocsp.example.org/
</CertAuthProfile>
<CertAuthProfile staff>
    CertAuthSubjectRDN CN "%{REMOTE_USER}"
    CertAuthRequire "%{REMOTE_USER} in {'bob', 'admin'}"
</CertAuthProfile>
<CertAuthProfile nobody>
    CertAuthSubjectRDN CN "%{REMOTE_USER}"
    CertAuthRequire "false"
</CertAuthProfile>
"""


@pytest.fixture(scope="module")
def opt(ca):
    h = Httpd(ca, server_conf=OPTIONS_SERVER, vhost_conf=OPTIONS_VHOST,
              location_conf="CertAuthDefaultProfile dflt")
    try:
        h.start()
        yield Client(h)
    finally:
        h.cleanup()


def test_selection_default_unknown_and_server_level(opt, ca):
    c = opt
    # no ?profile: the Location's default profile
    cert, pem = c.ok(csr(), user="alice")
    assert subject(cert) == [("O", "Default Org"), ("CN", "alice")]
    assert about_days(cert, 365)
    assert openssl_verify(ca, pem)[0] == 0
    # the same by name; another by name overrides the default
    cert, _ = c.ok(csr(), user="bob", profile="dflt")
    assert subject(cert) == [("O", "Default Org"), ("CN", "bob")]
    cert, _ = c.ok(csr(), user="bob", profile="global")  # main server's
    assert subject(cert) == [("O", "Global"), ("CN", "bob")]
    cert, _ = c.ok(csr(), user="bob", profile="clash")   # vhost's wins
    assert subject(cert) == [("O", "Virtual host"), ("CN", "bob")]
    # unknown profiles: 404 naming it
    c.refused(404, csr(), "nope", profile="nope")
    c.refused(404, csr(), "DFLT", profile="DFLT")
    c.refused(404, csr(), profile="")
    # the profile is stored with each certificate
    profiles = collections.Counter(r["profile"] for r in stored(c.h))
    assert profiles == {"dflt": 2, "global": 1, "clash": 1}


def test_subject_templates(opt):
    c = opt
    # order = directive order; optional OU left out when empty; the UUID
    # is a v4 UUID, the same within one request, new for each request
    cert, _ = c.ok(csr([("CN", "x"), ("O", "CSR org")]), user="bob",
                   profile="tmpl")
    s = subject(cert)
    assert [f for f, _ in s] == ["C", "O", "CN", "serialNumber", "UID"], s
    assert s[:3] == [("C", "FR"), ("O", "Example Org"), ("CN", "bob")]
    u1 = uuid.UUID(s[3][1])
    assert u1.version == 4 and str(u1) == s[3][1] and s[4][1] == s[3][1]
    assert about_days(cert, 10)
    cert, _ = c.ok(csr(), user="bob", profile="tmpl",
                   headers={"X-Unit": "dev-1"})
    s = subject(cert)
    assert [f for f, _ in s] == ["C", "O", "OU", "CN", "serialNumber", "UID"]
    assert s[2] == ("OU", "dev-1")
    assert uuid.UUID(s[4][1]) != u1
    # maxlen and chars of templates
    c.refused(422, csr(), "CN", user="alice", profile="tmpl")  # 5 > 4
    c.refused(422, csr(), "OU", user="bob", profile="tmpl",
              headers={"X-Unit": "Dev"})
    c.refused(422, csr(), "OU", user="bob", profile="tmpl",
              headers={"X-Unit": "dev_1"})
    c.refused(422, csr(), "OU", user="bob", profile="tmpl",
              headers={"X-Unit": "abcdefghi"})
    c.ok(csr(), user="bob", profile="tmpl", headers={"X-Unit": "abcdefgh"})
    # a template that is not optional may not be empty
    c.refused(422, csr(), "OU", user="bob", profile="needed")
    cert, _ = c.ok(csr(), user="bob", profile="needed",
                   headers={"X-Unit": "ops"})
    assert subject(cert) == [("CN", "bob"), ("OU", "ops")]


CSR_GOOD = [("CN", "web1.lab"), ("L", "Lyon"), ("UID", "alice"),
            ("OU", "Research Lab"), ("O", "certauth tests"), ("C", "DE"),
            ("ST", "Bavaria")]


def with_(fields, **change):
    """CSR subject fields with some replaced (value) or removed (None)."""
    out = []
    for f, v in fields:
        if f in change:
            if change[f] is not None:
                out.append((f, change[f]))
        else:
            out.append((f, v))
    for f, v in change.items():
        if v is not None and f not in dict(fields):
            out.append((f, v))
    return out


def test_subject_from_csr(opt):
    c = opt
    # match (CA's own O; value=; value= with an expression), supplied,
    # optional present; the order is the profile's; C comes from the
    # template, not the CSR; ST, named by no rule, is dropped
    cert, _ = c.ok(csr(CSR_GOOD), profile="csr")
    assert subject(cert) == [
        ("C", "FR"), ("O", "certauth tests"), ("OU", "Research Lab"),
        ("UID", "alice"), ("CN", "web1.lab"), ("L", "Lyon")]
    # optional absent
    cert, _ = c.ok(csr(with_(CSR_GOOD, L=None)), profile="csr")
    assert subject(cert) == [
        ("C", "FR"), ("O", "certauth tests"), ("OU", "Research Lab"),
        ("UID", "alice"), ("CN", "web1.lab")]
    # value=%{REMOTE_USER} is evaluated for each request
    cert, _ = c.ok(csr(with_(CSR_GOOD, UID="bob")), user="bob", profile="csr")
    assert ("UID", "bob") in subject(cert)
    c.refused(422, csr(with_(CSR_GOOD, UID="bob")), "UID", user="alice",
              profile="csr")
    c.refused(422, csr(with_(CSR_GOOD, UID=None)), "UID", profile="csr")
    # match against the CA's O
    c.refused(422, csr(with_(CSR_GOOD, O="Evil Corp")), "O", profile="csr")
    c.refused(422, csr(with_(CSR_GOOD, O=None)), "O", profile="csr")
    # match against value=
    c.refused(422, csr(with_(CSR_GOOD, OU="Research")), "OU", profile="csr")
    c.refused(422, csr(with_(CSR_GOOD, OU=None)), "OU", profile="csr")
    # supplied: present, maxlen, chars
    c.refused(422, csr(with_(CSR_GOOD, CN=None)), "CN", profile="csr")
    c.refused(422, csr(with_(CSR_GOOD, CN="web1.lab.example")), "CN",
              profile="csr")
    c.refused(422, csr(with_(CSR_GOOD, CN="Web1.lab")), "CN", profile="csr")
    c.refused(422, csr(with_(CSR_GOOD, CN="web1 lab")), "CN", profile="csr")
    # optional: maxlen and chars when present
    c.refused(422, csr(with_(CSR_GOOD, L="Marseille")), "L", profile="csr")
    c.refused(422, csr(with_(CSR_GOOD, L="Lyon2")), "L", profile="csr")
    # forbidden
    c.refused(422, csr(with_(CSR_GOOD, serialNumber="1234")), "serialNumber",
              profile="csr")


def test_san_templates(opt):
    c = opt
    # CSR names are ignored without CertAuthSANFromCSR
    body = csr(sans=["DNS:evil.example.com", "IP:10.9.9.9"])
    cert, _ = c.ok(body, user="bob", profile="sans")
    assert sans(cert) == ["email:bob@example.org",
                          "DNS:bob.users.example.org",
                          "URI:urn:example:user:bob", "IP:192.0.2.7",
                          "IP:2001:db8::7"]
    cert, _ = c.ok(csr(), user="bob", profile="sans",
                   headers={"X-Alt-Mail": "b.alt@example.net"})
    assert sans(cert)[-1] == "email:b.alt@example.net"
    assert len(sans(cert)) == 6
    # a SAN template that is not optional may not be empty
    c.refused(422, csr(), "DNS", user="bob", profile="sanreq")
    cert, _ = c.ok(csr(), user="bob", profile="sanreq",
                   headers={"X-Host": "h1.example.org"})
    assert sans(cert) == ["DNS:h1.example.org"]
    # profiles without SAN directives give no subjectAltName at all
    cert, _ = c.ok(csr(sans=["DNS:evil.example.com"]), user="bob",
                   profile="dflt")
    assert sans(cert) == []


def test_san_from_csr(opt):
    c = opt
    good = ["DNS:www.example.org", "DNS:Mail.EXAMPLE.org", "DNS:example.org",
            "IP:192.0.2.5", "IP:::1", "email:bob@example.org"]
    cert, _ = c.ok(csr(sans=good), profile="sancsr")
    assert collections.Counter(sans(cert)) == collections.Counter(
        ["URI:urn:example:user:alice"] + good)
    cert, _ = c.ok(csr(), profile="sancsr")
    assert sans(cert) == ["URI:urn:example:user:alice"]
    for bad, word in [("DNS:www.example.com", "www.example.com"),
                      ("DNS:example.org.evil.com", "example.org.evil.com"),
                      ("DNS:org", "org"),
                      ("IP:10.0.0.1", "10.0.0.1"),
                      ("IP:192.0.3.5", "192.0.3.5"),
                      ("email:bob@evil.org", "bob@evil.org"),
                      # a type the profile does not list
                      ("URI:https://www.example.org/", "URI")]:
        c.refused(422, csr(sans=["DNS:www.example.org", bad]), word,
                  profile="sancsr")


def test_key_types(opt):
    c = opt
    c.refused(422, csr(kind="rsa2048"), "RSA", "3072", profile="keys")
    c.refused(422, csr(kind="p256"), "P-256", profile="keys")
    c.refused(422, csr(kind="ed25519"), "Ed25519", profile="keys")
    cert, _ = c.ok(csr(kind="rsa3072"), profile="keys")
    assert cert.public_key().key_size == 3072
    c.ok(csr(kind="p384"), profile="keys")
    c.ok(csr(kind="ed25519"), profile="edonly")
    c.refused(422, csr(kind="p256"), "P-256", profile="edonly")
    c.refused(422, csr(kind="rsa2048"), "RSA", profile="edonly")


def test_key_usage_eku_validity(opt):
    c = opt
    cert, _ = c.ok(csr(kind="rsa2048"), profile="usage")
    assert ku(cert) == ["digital_signature", "content_commitment",
                        "key_encipherment"]
    assert eku(cert) == [ExtendedKeyUsageOID.CODE_SIGNING,
                         ObjectIdentifier("1.3.6.1.4.1.55555.1")]
    assert about_days(cert, 3)
    # keyEncipherment is left out for a key that cannot encipher
    cert, _ = c.ok(csr(kind="p256"), profile="usage")
    assert ku(cert) == ["digital_signature", "content_commitment"]
    # defaults elsewhere: clientAuth only, digitalSignature only (EC)
    cert, _ = c.ok(csr(kind="p256"), profile="dflt")
    assert eku(cert) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert ku(cert) == ["digital_signature"]
    assert about_days(cert, 365)


def ca_kid(ca):
    """The CA's key identifier: its caIssuers URL is cacert/KEYID.crt."""
    return x509.load_pem_x509_certificate(ca.pem).extensions \
        .get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex()


def test_aia_entries(opt, ca):
    c = opt
    cert, pem = c.ok(csr(), profile="aia")
    base = c.h.base + "/cacert/%s.crt" % ca_kid(ca)
    assert collections.Counter(aia(cert)) == collections.Counter([
        (AuthorityInformationAccessOID.CA_ISSUERS.dotted_string, base),
        ("1.3.6.1.4.1.55555.7", "https://rpc.example.org:12369/rpc"),
        (AuthorityInformationAccessOID.OCSP.dotted_string,
         "http://ocsp.example.org/")])
    assert openssl_verify(ca, pem)[0] == 0
    cert, _ = c.ok(csr(), profile="dflt")
    assert aia(cert) == [
        (AuthorityInformationAccessOID.CA_ISSUERS.dotted_string, base)]


def test_require(opt):
    c = opt
    c.refused(403, csr(), "staff", user="alice", profile="staff")
    cert, _ = c.ok(csr(), user="bob", profile="staff")
    assert subject(cert) == [("CN", "bob")]
    c.ok(csr(), user="admin", profile="staff")
    for user in ("alice", "bob", "admin"):
        c.refused(403, csr(), "nobody", user=user, profile="nobody")
    # who may use it is checked before the CSR: a bad CSR still gets 403
    c.refused(403, b"not a csr", user="alice", profile="staff")


# --------------------------------------------------------------------------
# 2. The shipped profiles (conf/profiles.conf)
# --------------------------------------------------------------------------

SHIPPED_SERVER = """
Define CERTAUTH_ORG "Test Org"
Define CERTAUTH_DOMAIN example.org
Define CERTAUTH_ADMINS "'admin'"
Define CERTAUTH_PG_AUTHORITY example.org
Define CERTAUTH_PG_XMLRPC_URL https://pg.example.org/xmlrpc
"""

# AUTHENTICATE_MAIL as mod_authnz_ldap would set it; here from a request
# header so that one server shows both a login with and one without e-mail
SHIPPED_VHOST = """
Include %s/conf/profiles.conf
SetEnvIf X-Test-Mail "^(.+)$" AUTHENTICATE_MAIL=$1
""" % REPO

MAIL = {"X-Test-Mail": "alice@example.org"}


@pytest.fixture(scope="module")
def shipped(ca):
    h = Httpd(ca, server_conf=SHIPPED_SERVER, vhost_conf=SHIPPED_VHOST,
              location_conf="CertAuthDefaultProfile user")
    try:
        rc, out = h.configtest()
        assert rc == 0, out
        h.start()
        yield Client(h)
    finally:
        h.cleanup()


def test_shipped_user(shipped, ca):
    c = shipped
    body = csr([("CN", "evil"), ("O", "Evil")], sans=["DNS:evil.example.org"])
    cert, pem = c.ok(body, user="alice")  # default profile
    assert subject(cert) == [("O", "Test Org"), ("CN", "alice")]
    assert sans(cert) == []  # no e-mail known for the login
    assert eku(cert) == [ExtendedKeyUsageOID.CLIENT_AUTH,
                         ExtendedKeyUsageOID.EMAIL_PROTECTION]
    assert about_days(cert, 365)
    assert openssl_verify(ca, pem)[0] == 0
    cert, _ = c.ok(csr(), user="alice", profile="user", headers=MAIL)
    assert subject(cert) == [("O", "Test Org"), ("CN", "alice")]
    assert sans(cert) == ["email:alice@example.org"]
    cert, _ = c.ok(csr(kind="rsa2048"), user="bob", profile="user")
    assert "key_encipherment" in ku(cert)
    c.refused(422, csr(kind="ed25519"), "Ed25519", user="alice")
    assert {r["profile"] for r in stored(c.h)} == {"user"}


def test_shipped_server(shipped):
    c = shipped
    good = csr([("CN", "www.example.org"), ("O", "Whatever")],
               sans=["DNS:www.example.org", "DNS:example.org",
                     "DNS:*.example.org"])
    c.refused(403, good, "server", user="alice", profile="server")
    cert, _ = c.ok(good, user="admin", profile="server")
    assert subject(cert) == [("O", "Test Org"), ("CN", "www.example.org")]
    assert sans(cert) == ["DNS:www.example.org", "DNS:example.org",
                          "DNS:*.example.org"]
    # clientAuth too: the certificate authenticates its own renewal
    # (issue 12)
    assert eku(cert) == [ExtendedKeyUsageOID.SERVER_AUTH,
                         ExtendedKeyUsageOID.CLIENT_AUTH]
    assert about_days(cert, 397)
    c.refused(422, csr([("CN", "www.example.org")],
                       sans=["DNS:www.example.org", "DNS:www.example.com"]),
              "www.example.com", user="admin", profile="server")
    c.refused(422, csr([("CN", "www.example.org")],
                       sans=["IP:192.0.2.1"]),
              "IP", user="admin", profile="server")
    c.refused(422, csr([("O", "Test Org")], sans=["DNS:www.example.org"]),
              "CN", user="admin", profile="server")
    c.refused(422, csr([("CN", "www example.org")]), "CN", user="admin",
              profile="server")
    c.refused(422, csr([("CN", "w" * 65)]), "CN", user="admin",
              profile="server")


def test_shipped_stunnel(shipped):
    c = shipped
    body = csr([("CN", "peer-1")], sans=["DNS:localhost", "IP:127.0.0.1"],
               kind="ed25519")
    c.refused(403, body, "stunnel", user="bob", profile="stunnel")
    cert, _ = c.ok(body, user="admin", profile="stunnel")
    assert subject(cert) == [("O", "Test Org"), ("CN", "peer-1")]
    assert sans(cert) == ["DNS:localhost", "IP:127.0.0.1"]
    assert eku(cert) == [ExtendedKeyUsageOID.SERVER_AUTH,
                         ExtendedKeyUsageOID.CLIENT_AUTH]
    assert about_days(cert, 90)
    c.refused(422, csr([("CN", "peer-1")], sans=["IP:10.1.1.1"]),
              "10.1.1.1", user="admin", profile="stunnel")


def pg_check(cert, user, mail):
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert len(cn) == 1
    u = uuid.UUID(cn[0].value)
    assert u.version == 4 and u.variant == uuid.RFC_4122
    assert str(u) == cn[0].value
    ou = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    assert [a.value for a in ou] == ["example.org." + user]
    em = cert.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)
    assert [a.value for a in em] == ([mail] if mail else [])
    san = cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert len(san) == 1
    assert isinstance(san[0], x509.UniformResourceIdentifier)
    assert san[0].value == "urn:publicid:IDN+example.org+user+" + user
    assert eku(cert) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    return u


def test_shipped_protogeni(shipped, ca):
    c = shipped
    # names asked for in the CSR change nothing
    body = csr([("CN", "mine"), ("OU", "other.bob")],
               sans=["URI:urn:publicid:IDN+evil+user+bob"])
    cert, pem = c.ok(body, user="alice", profile="protogeni")
    u1 = pg_check(cert, "alice", None)
    assert [f for f, _ in subject(cert)] == ["OU", "CN"]
    assert openssl_verify(ca, pem)[0] == 0
    cert, _ = c.ok(csr(), user="alice", profile="protogeni", headers=MAIL)
    u2 = pg_check(cert, "alice", "alice@example.org")
    assert [f for f, _ in subject(cert)] == ["OU", "CN", "emailAddress"]
    assert u1 != u2
    cert, _ = c.ok(csr(kind="p384"), user="bob", profile="protogeni")
    pg_check(cert, "bob", None)


# python3-cryptography 38 (Debian 12) cannot parse an OID arc above 2**64:
# with ProtoGENI's access method 2.25.305821105408246119474742976030998643995
# in authorityInfoAccess, cert.extensions raises ValueError.  The subject is
# still read with python3-cryptography; the extensions then come from a
# minimal DER reader over cert.tbs_certificate_bytes, cross-checked with
# `openssl x509 -ext`.

def der_items(data):
    """(tag, content) of each TLV in data (single-byte tags, as in X.509)."""
    pos = 0
    while pos < len(data):
        tag, n = data[pos], data[pos + 1]
        pos += 2
        if n & 0x80:
            k = n & 0x7F
            n = int.from_bytes(data[pos:pos + k], "big")
            pos += k
        yield tag, data[pos:pos + n]
        pos += n


def der_oid(b):
    arcs, v = [], 0
    for byte in b:
        v = (v << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(v)
            v = 0
    first = arcs[0]
    head = [first // 40, first % 40] if first < 80 else [2, first - 80]
    return ".".join(str(a) for a in head + arcs[1:])


GN_TAGS = {0x81: "email", 0x82: "DNS", 0x86: "URI", 0x87: "IP"}


def der_extensions(cert):
    """{oid: decoded} for SAN (["URI:..."]), AIA ([(oid, "URI:...")]) and
    EKU ([oid]); other extensions as raw bytes."""
    (_, tbs), = der_items(cert.tbs_certificate_bytes)
    out = {}
    for tag, val in der_items(tbs):
        if tag != 0xA3:
            continue
        (_, seq), = der_items(val)
        for _, ext in der_items(seq):
            parts = list(der_items(ext))
            oid, value = der_oid(parts[0][1]), parts[-1][1]
            (_, inner), = der_items(value)
            if oid == "2.5.29.17":
                out[oid] = [GN_TAGS.get(t, hex(t)) + ":" + (
                    str(ipaddress.ip_address(v)) if t == 0x87 else v.decode())
                    for t, v in der_items(inner)]
            elif oid == "1.3.6.1.5.5.7.1.1":
                out[oid] = []
                for _, ad in der_items(inner):
                    (_, m), (t, loc) = der_items(ad)
                    out[oid].append((der_oid(m), GN_TAGS.get(t, hex(t)) + ":"
                                     + loc.decode()))
            elif oid == "2.5.29.37":
                out[oid] = [der_oid(v) for _, v in der_items(inner)]
            else:
                out[oid] = value
    return out


def test_shipped_protogeni_authority(shipped, ca, tmp_path):
    c = shipped
    c.refused(403, csr(), "protogeni-authority", user="alice",
              profile="protogeni-authority")
    c.refused(403, csr(), "protogeni-authority", user="bob",
              profile="protogeni-authority")
    cert, pem = c.ok(csr(kind="rsa2048"), user="admin",
                     profile="protogeni-authority")
    assert openssl_verify(ca, pem)[0] == 0
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert uuid.UUID(cn).version == 4 and str(uuid.UUID(cn)) == cn
    assert [a.value for a in cert.subject.get_attributes_for_oid(
        NameOID.ORGANIZATIONAL_UNIT_NAME)] == ["example.org.sa"]
    try:
        exts = cert.extensions
    except ValueError:
        exts = None  # python3-cryptography 38: OID arc too large
    if exts is not None:
        entries = [(d.access_method.dotted_string,
                    "URI:" + d.access_location.value)
                   for d in exts.get_extension_for_class(
                       x509.AuthorityInformationAccess).value]
        got_sans = sans(cert)
        got_eku = [o.dotted_string for o in eku(cert)]
    else:
        raw = der_extensions(cert)
        entries = raw["1.3.6.1.5.5.7.1.1"]
        got_sans = raw["2.5.29.17"]
        got_eku = raw["2.5.29.37"]
    assert [e for e in entries if e[0] == PG_OID] == [
        (PG_OID, "URI:https://pg.example.org/xmlrpc")]
    assert (AuthorityInformationAccessOID.CA_ISSUERS.dotted_string,
            "URI:" + c.h.base + "/cacert/%s.crt" % ca_kid(c.h.ca)) in entries
    assert got_sans == ["URI:urn:publicid:IDN+example.org+authority+sa"]
    assert got_eku == [ExtendedKeyUsageOID.SERVER_AUTH.dotted_string,
                       ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string]
    # the same seen by openssl
    f = tmp_path / "pga.pem"
    f.write_bytes(pem)
    out = run(["openssl", "x509", "-in", str(f), "-noout", "-ext",
               "authorityInfoAccess,subjectAltName"]).stdout.decode()
    assert PG_OID + " - URI:https://pg.example.org/xmlrpc" in out, out
    assert "URI:urn:publicid:IDN+example.org+authority+sa" in out, out
    # the user profile has no such entry (and parses with cryptography)
    cert, _ = c.ok(csr(), user="admin", profile="protogeni")
    assert PG_OID not in [m for m, _ in aia(cert)]


# --------------------------------------------------------------------------
# 3. Per-owner limit and unique subjects under concurrent requests
# --------------------------------------------------------------------------

LIMIT_LOCATION = r"""
        CertAuthSubjectRDN CN "%{REMOTE_USER}"
        CertAuthMaxValidPerOwner 2
"""

LIMIT_VHOST = r"""
<CertAuthProfile uniq>
    CertAuthSubjectRDN O "Uniq"
    CertAuthSubjectCSR CN supplied
    CertAuthUniqueSubject On
</CertAuthProfile>
"""


def parallel(h, jobs, stalls):
    """jobs: [(body, user, path)], all sent at once.  Returns
    [(status, headers, body)] (status None: no answer within 20 s);
    requests slower than 5 s are noted in `stalls`."""
    barrier = threading.Barrier(len(jobs))

    def one(job):
        body, user, path = job
        barrier.wait(timeout=20)
        t0 = time.monotonic()
        try:
            res = h.request("POST", path, body=body, user=user, timeout=20,
                            headers={"Content-Type": "application/pkcs10"})
        except OSError as e:
            res = (None, {}, repr(e).encode())
        took = time.monotonic() - t0
        if took > 5:
            stalls.append("POST %s as %s: %s after %.1f s" % (
                path, user, res[0] or "no answer", took))
        return res

    with ThreadPoolExecutor(len(jobs)) as ex:
        return list(ex.map(one, jobs))


def outcome(res, stalls):
    return "statuses %s; slow requests: %s" % (
        dict(collections.Counter(st for st, _, _ in res)), stalls)


def check_409(resp, *words):
    st, hd, data = resp
    assert st == 409, (st, data)
    assert hd.get("content-type", "").startswith("application/json")
    j = json.loads(data)
    assert set(j) == {"error", "detail"}
    for w in words:
        assert w in j["detail"], (w, j)


def test_limit_and_unique_subject_concurrent(make_httpd):
    h = make_httpd(location_conf=LIMIT_LOCATION, vhost_conf=LIMIT_VHOST)
    stalls = []
    # 10 parallel requests of alice against the Location's own profile
    # (no ?profile, no default profile) with CertAuthMaxValidPerOwner 2
    res = parallel(h, [(csr(kind="p256", key=key_of("p256")), "alice",
                        "/ca/enroll") for _ in range(10)], stalls)
    codes = collections.Counter(st for st, _, _ in res)
    assert codes == {201: 2, 409: 8}, outcome(res, stalls)
    for r in res:
        if r[0] == 409:
            check_409(r, "alice", "2")
        else:
            cert = x509.load_pem_x509_certificate(r[2])
            assert subject(cert) == [("CN", "alice")]
    rows = stored(h)
    assert len(rows) == 2
    assert [(r["owner"], r["profile"]) for r in rows] == [
        ("alice", "default")] * 2
    # bob is not limited by alice's certificates, but by his own
    c = Client(h)
    c.ok(csr(), user="bob")
    c.ok(csr(), user="bob")
    c.refused(409, csr(), "bob", user="bob")
    c.refused(409, csr(), "alice", user="alice")
    # the limit is per profile: alice may still use another one
    c.ok(csr([("CN", "alice-host")]), user="alice", profile="uniq")

    # 10 parallel requests for one subject, by three owners: exactly one
    res = parallel(h, [(csr([("CN", "shared.example.org")], key=key_of(
        "p256")), ("alice", "bob", "admin")[i % 3], "/ca/enroll?profile=uniq")
        for i in range(10)], stalls)
    codes = collections.Counter(st for st, _, _ in res)
    assert codes == {201: 1, 409: 9}, outcome(res, stalls)
    for r in res:
        if r[0] == 409:
            check_409(r, "unique", "shared.example.org")
    c.n += 1
    assert h.rows() == c.n
    assert len([r for r in stored(h)
                if "shared.example.org" in r["subject"]]) == 1
    # sequentially as well, and another subject is fine
    c.refused(409, csr([("CN", "shared.example.org")]), "unique",
              user="admin", profile="uniq")
    c.ok(csr([("CN", "other.example.org")]), user="admin", profile="uniq")
    # without CertAuthUniqueSubject the same subject may be issued twice
    a, _ = c.ok(csr(), user="admin")
    b, _ = c.ok(csr(), user="admin")
    assert a.subject == b.subject and a.serial_number != b.serial_number
    # concurrent requests are queued, not stalled
    assert not stalls, "concurrent requests stalled: %s" % stalls


# --------------------------------------------------------------------------
# 4. Start-up validation (apache2 -t)
# --------------------------------------------------------------------------

def prof(body, name="bad"):
    return ("<CertAuthProfile %s>\n"
            "    CertAuthSubjectRDN CN \"%%{REMOTE_USER}\"\n"
            "%s\n"
            "</CertAuthProfile>\n" % (name, body))


def bad(ident, body, words, marker=None, location="", name="bad"):
    """A profile `name` whose last line `body` is wrong: the message must
    contain `words` and name the line holding `marker` (default: the last
    line of body; the last such line of the file)."""
    if marker is None:
        marker = body.splitlines()[-1].strip()
    return (ident, prof(body, name) if body is not None else "", location,
            marker, words)


SECTION = "<CertAuthProfile bad>"

# (id, vhost_conf, location_conf, marker of the line that must be named,
#  words the message must contain)
BAD_CONFIGS = [
    # unknown or bad values
    bad("ku-unknown", "CertAuthKeyUsage digitalSignature frobnicate",
        ["CertAuthKeyUsage", "frobnicate"]),
    bad("eku-unknown", "CertAuthExtendedKeyUsage clientAuth notAnEku",
        ["CertAuthExtendedKeyUsage", "notAnEku"]),
    bad("keytype-unknown", "CertAuthKeyTypes ec:P-256 dsa",
        ["CertAuthKeyTypes", "dsa"]),
    bad("keytype-curve", "CertAuthKeyTypes ec:P-521",
        ["CertAuthKeyTypes", "P-521"]),
    bad("rsa-bits", "CertAuthKeyTypes rsa:1024", ["CertAuthKeyTypes", "1024"]),
    bad("validity-zero", "CertAuthValidityDays 0",
        ["CertAuthValidityDays", "'0'"]),
    bad("validity-word", "CertAuthValidityDays soon",
        ["CertAuthValidityDays", "soon"]),
    bad("renewal-negative", "CertAuthRenewalWindowDays -3",
        ["CertAuthRenewalWindowDays", "-3"]),
    bad("limit-word", "CertAuthMaxValidPerOwner many",
        ["CertAuthMaxValidPerOwner", "many"]),
    bad("unique-word", "CertAuthUniqueSubject yes",
        ["CertAuthUniqueSubject"]),
    bad("field-unknown", "CertAuthSubjectRDN Colour blue",
        ["CertAuthSubjectRDN", "Colour"]),
    bad("csr-field-unknown", "CertAuthSubjectCSR Colour supplied",
        ["CertAuthSubjectCSR", "Colour"]),
    bad("csr-kind-unknown", "CertAuthSubjectCSR OU required",
        ["CertAuthSubjectCSR", "required"]),
    bad("csr-value-not-match", "CertAuthSubjectCSR OU supplied value=x",
        ["CertAuthSubjectCSR", "value="]),
    bad("option-unknown", "CertAuthSubjectRDN O x bogus=1",
        ["CertAuthSubjectRDN", "bogus=1"]),
    bad("maxlen-zero", "CertAuthSubjectCSR OU optional maxlen=0",
        ["CertAuthSubjectCSR", "'0'"]),
    bad("chars-bad", "CertAuthSubjectRDN O x chars=z-a",
        ["CertAuthSubjectRDN", "z-a"]),
    bad("san-type", "CertAuthSAN X400 foo", ["CertAuthSAN"]),
    bad("san-from-csr-type", "CertAuthSANFromCSR X400 *",
        ["CertAuthSANFromCSR"]),
    # bad expressions
    bad("expr-rdn", "CertAuthSubjectRDN O \"%{REMOTE_USER\"",
        ["CertAuthSubjectRDN", "expression"]),
    bad("expr-san", "CertAuthSAN DNS \"%{req:Host\"",
        ["CertAuthSAN", "expression"]),
    bad("expr-match", "CertAuthSubjectCSR O match \"value=%{env:X\"",
        ["CertAuthSubjectCSR", "expression"]),
    bad("expr-require", "CertAuthRequire \"%{REMOTE_USER} in\"",
        ["CertAuthRequire", "expression"]),
    bad("expr-require-func", "CertAuthRequire \"nosuchfunc('x') == 'y'\"",
        ["CertAuthRequire"]),
    # bad OIDs and URLs
    bad("aia-oid", "CertAuthAIA not-an-oid https://rpc.example.org/",
        ["CertAuthAIA", "not-an-oid"]),
    bad("aia-oid-dots", "CertAuthAIA 1.2..3 https://rpc.example.org/",
        ["CertAuthAIA", "1.2..3"]),
    bad("aia-oid-trailing-dot",
        "CertAuthAIA 1.2.3.4. https://rpc.example.org/",
        ["CertAuthAIA", "1.2.3.4."]),
    bad("aia-oid-first-arc", "CertAuthAIA 3.1 https://rpc.example.org/",
        ["CertAuthAIA", "3.1"]),
    bad("eku-oid-dots", "CertAuthExtendedKeyUsage 1.3.6..1",
        ["CertAuthExtendedKeyUsage", "1.3.6..1"]),
    bad("aia-url", "CertAuthAIA 1.2.3.4 rpc.example.org",
        ["CertAuthAIA", "rpc.example.org"]),
    # contradictions: named by the profile's section line
    bad("contra-keyenc-ec", "CertAuthKeyTypes ec:P-256\n"
        "CertAuthKeyUsage digitalSignature keyEncipherment",
        ["CertAuthProfile bad", "keyEncipherment", "CertAuthKeyTypes"], SECTION),
    bad("contra-keyagree-rsa", "CertAuthKeyTypes rsa ed25519\n"
        "CertAuthKeyUsage keyAgreement",
        ["CertAuthProfile bad", "keyAgreement", "CertAuthKeyTypes"], SECTION),
    bad("contra-renewal", "CertAuthValidityDays 30\n"
        "CertAuthRenewalWindowDays 30",
        ["CertAuthProfile bad", "CertAuthRenewalWindowDays", "CertAuthValidityDays"],
        SECTION),
    bad("contra-renewal-longer", "CertAuthValidityDays 20\n"
        "CertAuthRenewalWindowDays 40",
        ["CertAuthProfile bad", "CertAuthRenewalWindowDays"], SECTION),
    bad("contra-two-csr-rules", "CertAuthSubjectCSR OU supplied\n"
        "CertAuthSubjectCSR OU optional", ["CertAuthProfile bad", "OU"], SECTION),
    bad("contra-forbidden-supplied", "CertAuthSubjectCSR OU forbidden\n"
        "CertAuthSubjectCSR OU supplied", ["CertAuthProfile bad", "OU", "forbidden"],
        SECTION),
    bad("contra-limit-zero", "CertAuthMaxValidPerOwner 0",
        ["CertAuthProfile bad", "CertAuthMaxValidPerOwner"], SECTION),
    # what may stand inside <CertAuthProfile>
    bad("foreign-directive", "Require all granted", ["CertAuthProfile bad", "Require"]),
    bad("foreign-directive-2", "SetEnv X y", ["CertAuthProfile bad", "SetEnv"]),
    bad("certauth-on-inside", "CertAuth On", ["CertAuthProfile bad", "CertAuth"]),
    bad("default-inside", "CertAuthDefaultProfile bad",
        ["CertAuthProfile bad", "CertAuthDefaultProfile"]),
    # profiles: names, definitions, references
    ("defined-twice", prof("", "dup") + prof("", "dup"), "",
     "<CertAuthProfile dup>", ["dup", "twice"]),
    ("profile-name", prof("", "bad/name"), "", "<CertAuthProfile bad/name>",
     ["bad/name"]),
    ("profile-in-location", "", prof("", "inloc"), "<CertAuthProfile inloc>",
     ["CertAuthProfile"]),
    ("default-undefined", prof("", "real"), "CertAuthDefaultProfile ghost",
     "CertAuthDefaultProfile ghost", ["CertAuthDefaultProfile", "ghost"]),
    ("default-at-vhost", prof("", "real") + "CertAuthDefaultProfile real\n",
     "", "CertAuthDefaultProfile real", ["CertAuthDefaultProfile"]),
]


@pytest.fixture(scope="module")
def cfg(ca):
    h = Httpd(ca)
    try:
        yield h
    finally:
        h.cleanup()


def configtest(h, vhost_conf="", location_conf="", server_conf=""):
    h.vhost_conf, h.location_conf, h.server_conf = (vhost_conf, location_conf,
                                                    server_conf)
    h.write_conf()
    return h.configtest()


def line_of(h, marker):
    """Number of the line holding marker: the last one inside a
    <CertAuthProfile> section if any (the harness's own lines may hold the
    same text), else the last one of the file."""
    with open(h.conf) as f:
        lines = f.read().splitlines()
    hits, inside = [], []
    in_prof = False
    for i, line in enumerate(lines):
        if line.strip().startswith("<CertAuthProfile"):
            in_prof = True
        if marker in line:
            hits.append(i + 1)
            if in_prof:
                inside.append(i + 1)
        if line.strip().startswith("</CertAuthProfile"):
            in_prof = False
    assert hits, marker
    return (inside or hits)[-1]


def test_good_configs(cfg):
    # a profile with every directive, the Location's own profile, and the
    # shipped profiles: all accepted
    every = prof("""
    CertAuthSubjectRDN O "Example" maxlen=20 chars=A-Za-z
    CertAuthSubjectRDN OU "%{env:X}" optional
    CertAuthSubjectCSR C match value=FR
    CertAuthSubjectCSR L supplied maxlen=10 chars=A-Za-z-
    CertAuthSubjectCSR ST optional
    CertAuthSubjectCSR serialNumber forbidden
    CertAuthSAN email "%{REMOTE_USER}@example.org" optional
    CertAuthSAN DNS x.example.org
    CertAuthSAN URI "urn:x:%{REMOTE_USER}"
    CertAuthSAN IP 192.0.2.1
    CertAuthSANFromCSR DNS *.example.org
    CertAuthSANFromCSR IP 192.0.2.*
    CertAuthKeyTypes rsa:3072 ec:P-256 ec:P-384 ed25519
    CertAuthKeyUsage digitalSignature keyEncipherment keyAgreement
    CertAuthExtendedKeyUsage clientAuth serverAuth 1.2.3.4
    CertAuthValidityDays 30
    CertAuthRenewalWindowDays 29
    CertAuthMaxValidPerOwner 1
    CertAuthUniqueSubject On
    CertAuthAIA PGOID https://pg.example.org/xmlrpc
    CertAuthRequire "%{REMOTE_USER} in {'admin'}"
""".replace("PGOID", PG_OID), "every")
    rc, out = configtest(cfg, vhost_conf=every,
                         location_conf="CertAuthDefaultProfile every")
    assert rc == 0 and "Syntax OK" in out, out
    rc, out = configtest(cfg, location_conf=LIMIT_LOCATION,
                         vhost_conf=LIMIT_VHOST)
    assert rc == 0 and "Syntax OK" in out, out
    rc, out = configtest(cfg, server_conf=SHIPPED_SERVER,
                         vhost_conf=SHIPPED_VHOST,
                         location_conf="CertAuthDefaultProfile protogeni")
    assert rc == 0 and "Syntax OK" in out, out


@pytest.mark.parametrize("vhost,location,marker,words",
                         [c[1:] for c in BAD_CONFIGS],
                         ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config(cfg, vhost, location, marker, words):
    rc, out = configtest(cfg, vhost_conf=vhost, location_conf=location)
    assert rc != 0, out
    assert "Syntax OK" not in out
    for w in words:
        assert w in out, (w, out)
    n = line_of(cfg, marker)
    assert ("line %d of %s" % (n, cfg.conf) in out
            or "%s:%d" % (cfg.conf, n) in out), (n, out)
