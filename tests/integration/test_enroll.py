"""Enrollment (POST enroll) and publishing (cacert.*, certs/{serial}).

The core tests use `mpm_httpd`: they run once against the event MPM and once
against prefork."""
import base64
import datetime
import json
import tempfile

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import (AuthorityInformationAccessOID,
                                   ExtendedKeyUsageOID, ExtensionOID,
                                   NameOID, SignatureAlgorithmOID)

from conftest import key_of, make_csr
from harness import ADMIN, run


def ca_cert(ca):
    return x509.load_pem_x509_certificate(ca.pem)


def openssl_verify(ca, pem):
    with tempfile.NamedTemporaryFile(suffix=".pem") as f:
        f.write(pem)
        f.flush()
        r = run(["openssl", "verify", "-x509_strict", "-purpose", "sslclient",
                 "-CAfile", ca.cert, f.name], check=False)
        return r.returncode, (r.stdout + r.stderr).decode()


def spki(key):
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def serial_hex(cert):
    """The serial as the module writes it: upper-case hex, even length."""
    s = "%X" % cert.serial_number
    return "0" + s if len(s) % 2 else s


EXPECTED_EXTENSIONS = {
    ExtensionOID.BASIC_CONSTRAINTS, ExtensionOID.KEY_USAGE,
    ExtensionOID.EXTENDED_KEY_USAGE, ExtensionOID.SUBJECT_KEY_IDENTIFIER,
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    ExtensionOID.CRL_DISTRIBUTION_POINTS,
    ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
}


def check_issued(ca, h, pem, csr_key, user, kind):
    """Everything issue 2 asks of an issued certificate (default profile)."""
    rc, out = openssl_verify(ca, pem)
    assert rc == 0, out
    cert = x509.load_pem_x509_certificate(pem)
    cac = ca_cert(ca)
    assert cert.version == x509.Version.v3
    assert cert.serial_number > 0
    assert cert.serial_number.bit_length() >= 64
    # DER INTEGER content octets (a leading 0 when the top bit is set)
    assert cert.serial_number.bit_length() // 8 + 1 <= 20
    # the subject is the CA's (CN = login), not the CSR's
    assert cert.subject == x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, user)])
    assert cert.issuer == cac.subject
    now = datetime.datetime.utcnow()
    assert cert.not_valid_before <= now + datetime.timedelta(minutes=1)
    life = cert.not_valid_after - cert.not_valid_before
    assert datetime.timedelta(days=365) <= life <= \
        datetime.timedelta(days=365, hours=1)
    assert cert.not_valid_after <= cac.not_valid_after
    assert {e.oid for e in cert.extensions} == EXPECTED_EXTENSIONS
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca is False
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature
    assert ku.value.key_encipherment == (kind.startswith("rsa"))
    assert not ku.value.key_cert_sign and not ku.value.crl_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert list(eku.value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert not ski.critical
    assert ski.value.digest == x509.SubjectKeyIdentifier.from_public_key(
        cert.public_key()).digest
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    ca_ski = cac.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert not aki.critical
    assert aki.value.key_identifier == ca_ski.value.digest
    cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    assert [n.value for dp in cdp.value for n in dp.full_name] == \
        [h.base + "/crl"]
    aia = cert.extensions.get_extension_for_class(
        x509.AuthorityInformationAccess)
    assert [(d.access_method, d.access_location.value) for d in aia.value] == [
        (AuthorityInformationAccessOID.CA_ISSUERS,
         h.base + "/cacert/%s.crt" % ca_ski.value.digest.hex())]
    # the test CA is EC P-256: ECDSA with SHA-256
    assert cert.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA256
    assert spki(cert.public_key()) == spki(csr_key.public_key())
    return cert


def evil_csr(kind, encoding="pem"):
    """A CSR asking for things the default profile must not copy: another
    subject, a DNS name, serverAuth."""
    key = key_of(kind)
    b = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "XX"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Evil Corp"),
        x509.NameAttribute(NameOID.COMMON_NAME, "not-alice"),
        x509.NameAttribute(NameOID.EMAIL_ADDRESS, "root@evil.example"),
    ])).add_extension(
        x509.SubjectAlternativeName([x509.DNSName("evil.example")]),
        critical=False,
    ).add_extension(
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
        critical=False)
    req = b.sign(key, None if kind == "ed25519" else hashes.SHA256())
    enc = (serialization.Encoding.DER if encoding == "der"
           else serialization.Encoding.PEM)
    return req.public_bytes(enc), key


def test_cacert_crt_and_pem(mpm_httpd, ca):
    h = mpm_httpd
    st, hd, body = h.get("/ca/cacert.crt")
    assert st == 200
    assert hd["content-type"] == "application/x-x509-ca-cert"
    assert body == ca_cert(ca).public_bytes(serialization.Encoding.DER)
    st, hd, body = h.get("/ca/cacert.pem")
    assert st == 200
    assert hd["content-type"] == "application/x-pem-file"
    assert x509.load_pem_x509_certificate(body) == ca_cert(ca)
    assert body.strip() == ca.pem.strip()
    # HEAD: the same headers, no body
    st, hd, body = h.request("HEAD", "/ca/cacert.crt")
    assert st == 200 and body == b""
    assert hd["content-type"] == "application/x-x509-ca-cert"


def test_cacert_with_curl(mpm_httpd, ca, tmp_path):
    h = mpm_httpd
    st, headers, body = h.curl(h.base + "/cacert.crt")
    assert st == 200
    assert "content-type: application/x-x509-ca-cert" in headers.lower()
    out = tmp_path / "ca.der"
    out.write_bytes(body)
    r = run(["openssl", "x509", "-inform", "DER", "-in", str(out),
             "-outform", "PEM"])
    assert x509.load_pem_x509_certificate(r.stdout) == ca_cert(ca)


@pytest.mark.parametrize("kind", ["p256", "p384", "rsa2048", "ed25519"])
def test_enroll_key_types(mpm_httpd, ca, kind):
    h = mpm_httpd
    before = h.rows()
    csr, key = evil_csr(kind)
    st, hd, body = h.enroll(csr)
    assert st == 201, body
    assert hd["content-type"] == "application/x-pem-file"
    assert body.startswith(b"-----BEGIN CERTIFICATE-----")
    cert = check_issued(ca, h, body, key, "alice", kind)
    serial = serial_hex(cert)
    assert hd["location"] == h.base + "/certs/" + serial
    assert h.rows() == before + 1
    # the same bytes by serial, DER and PEM, any case, with colons
    st, hd2, der = h.get("/ca/certs/" + serial)
    assert st == 200 and hd2["content-type"] == "application/pkix-cert"
    assert der == cert.public_bytes(serialization.Encoding.DER)
    st, hd3, pem = h.get("/ca/certs/" + serial.lower() + ".pem")
    assert st == 200 and pem == body
    assert hd3["content-type"] == "application/x-pem-file"
    colons = ":".join(serial[i:i + 2] for i in range(0, len(serial), 2))
    st, _, der2 = h.get("/ca/certs/" + colons)
    assert st == 200 and der2 == der
    st, _, der3 = h.get("/ca/certs/" + colons.lower())
    assert st == 200 and der3 == der


def test_enroll_der_base64_and_accept_der(mpm_httpd, ca):
    h = mpm_httpd
    der, key = evil_csr("p256", encoding="der")
    st, hd, body = h.enroll(der)
    assert st == 201, body
    check_issued(ca, h, body, key, "alice", "p256")
    b64 = base64.encodebytes(der)  # 76-column lines with newlines
    st, hd, body = h.enroll(b64, user="bob",
                            headers={"Accept": "application/pkix-cert"})
    assert st == 201, body
    assert hd["content-type"] == "application/pkix-cert"
    cert = x509.load_der_x509_certificate(body)
    check_issued(ca, h, cert.public_bytes(serialization.Encoding.PEM), key,
                 "bob", "p256")
    # the DER response is the same certificate the serial URL returns
    st, _, der2 = h.get(hd["location"][len(h.url):])
    assert st == 200 and der2 == body
    # base64 on one line
    st, hd, body = h.enroll(base64.b64encode(der))
    assert st == 201, body


def test_enroll_with_curl(mpm_httpd, ca, tmp_path):
    h = mpm_httpd
    key = tmp_path / "k.pem"
    req = tmp_path / "r.csr"
    run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-subj",
         "/CN=someone-else/O=Other", "-out", str(req)])
    st, headers, body = h.curl("-u", "bob:bob-secret-2", "-H",
                               "Content-Type: application/pkcs10",
                               "--data-binary", "@" + str(req),
                               h.base + "/enroll")
    assert st == 201, body
    assert "location: " + h.base.lower() + "/certs/" in headers.lower()
    rc, out = openssl_verify(ca, body)
    assert rc == 0, out
    cert = x509.load_pem_x509_certificate(body)
    assert cert.subject.rfc4514_string() == "CN=bob"
    # the certificate matches the key curl's user kept
    r = run(["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"])
    assert spki(cert.public_key()) == r.stdout


def test_serial_errors(httpd):
    for bad in ("xyz", "A" * 50, "0" * 2 + "A" * 41, "12-34", "0", "0x12",
                "12:3", "..%2e%2e"):
        st, hd, body = httpd.get("/ca/certs/" + bad)
        assert st == 400, (bad, st, body)
        assert hd["content-type"] == "application/json"
        assert set(json.loads(body)) == {"error", "detail"}
    # a NUL or an encoded slash in the path: httpd itself refuses these with
    # 404 before any module runs (AllowEncodedSlashes Off); nothing is served
    for bad in ("%00", "..%2f..%2fetc%2fpasswd"):
        st, hd, body = httpd.get("/ca/certs/" + bad)
        assert st == 404, (bad, st, body)
        assert b"root:" not in body and b"BEGIN" not in body
    for unknown in ("0123456789ABCDEF", "0123456789abcdef.pem",
                    "01:23:45:67:89:AB:CD:EF"):
        st, hd, body = httpd.get("/ca/certs/" + unknown)
        assert st == 404, (unknown, st, body)
        assert hd["content-type"] == "application/json"
        assert set(json.loads(body)) == {"error", "detail"}


def test_custom_subject_validity_eku(make_httpd, ca):
    h = make_httpd(location_conf="""
        CertAuthSubjectRDN C "FR"
        CertAuthSubjectRDN O "Example Org"
        CertAuthSubjectRDN CN "%{REMOTE_USER}"
        CertAuthValidityDays 30
        CertAuthProfileName people
        CertAuthExtendedKeyUsage serverAuth clientAuth
        CertAuthKeyUsage digitalSignature keyAgreement
    """)
    csr, key = make_csr("p256")
    st, hd, body = h.enroll(csr, user="bob")
    assert st == 201, body
    rc, out = openssl_verify(ca, body)
    assert rc == 0, out
    cert = x509.load_pem_x509_certificate(body)
    # DER order: most significant first, as the directives are written
    assert [(a.oid, a.value) for a in cert.subject] == [
        (NameOID.COUNTRY_NAME, "FR"), (NameOID.ORGANIZATION_NAME, "Example Org"),
        (NameOID.COMMON_NAME, "bob")]
    assert cert.subject.rfc4514_string() == "CN=bob,O=Example Org,C=FR"
    life = cert.not_valid_after - cert.not_valid_before
    assert datetime.timedelta(days=30) <= life <= \
        datetime.timedelta(days=30, minutes=10)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH,
                         ExtendedKeyUsageOID.CLIENT_AUTH]
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.key_agreement and not ku.key_encipherment
    r = run([ADMIN, "show", "--db", "sqlite3:" + h.db, serial_hex(cert)],
            user=h.user)
    assert b"profile:    people" in r.stdout
    assert b"owner:      bob" in r.stdout


def test_subject_from_expression_and_eku_server(make_httpd):
    """O + CN from the login (the brief's example), serverAuth only."""
    h = make_httpd(location_conf="""
        CertAuthSubjectRDN O "Example Org"
        CertAuthSubjectRDN CN "%{REMOTE_USER}"
        CertAuthExtendedKeyUsage serverAuth
    """)
    csr, _ = make_csr("rsa2048")
    st, hd, body = h.enroll(csr, user="admin")
    assert st == 201, body
    cert = x509.load_pem_x509_certificate(body)
    assert [(a.oid, a.value) for a in cert.subject] == [
        (NameOID.ORGANIZATION_NAME, "Example Org"),
        (NameOID.COMMON_NAME, "admin")]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.key_encipherment


def test_empty_template_value_refused(make_httpd):
    h = make_httpd(location_conf="""
        CertAuthSubjectRDN CN "%{REMOTE_USER}"
        CertAuthSubjectRDN emailAddress "%{env:NO_SUCH_VARIABLE}"
    """)
    csr, _ = make_csr("p256")
    st, hd, body = h.enroll(csr)
    assert st == 422
    assert "emailAddress" in json.loads(body)["detail"]
    assert h.rows() == 0


def test_worker_mpm(make_httpd, ca):
    """Besides event and prefork (mpm_httpd), the worker MPM."""
    h = make_httpd(mpm="worker")
    st, hd, body = h.get("/ca/cacert.crt")
    assert st == 200
    serials = set()
    for kind in ("p256", "rsa2048"):
        csr, key = evil_csr(kind)
        st, hd, body = h.enroll(csr)
        assert st == 201, body
        cert = check_issued(ca, h, body, key, "alice", kind)
        serials.add(cert.serial_number)
        st, _, der = h.get(hd["location"][len(h.url):])
        assert st == 200 and der == cert.public_bytes(serialization.Encoding.DER)
    assert len(serials) == 2 and h.rows() == 2
