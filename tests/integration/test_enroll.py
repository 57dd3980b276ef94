"""Enrollment (POST enroll) and publishing (cacert.*, certs/{serial})."""
import base64
import datetime
import json
import os
import subprocess
import tempfile

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import (ExtendedKeyUsageOID, NameOID,
                                   AuthorityInformationAccessOID)

from conftest import make_csr
from harness import run


def ca_cert(ca):
    return x509.load_pem_x509_certificate(ca.pem)


def openssl_verify(ca, pem):
    with tempfile.NamedTemporaryFile(suffix=".pem") as f:
        f.write(pem)
        f.flush()
        r = run(["openssl", "verify", "-x509_strict", "-CAfile", ca.cert,
                 f.name], check=False)
        return r.returncode, (r.stdout + r.stderr).decode()


def check_issued(ca, h, pem, csr_key, user, kind):
    rc, out = openssl_verify(ca, pem)
    assert rc == 0, out
    cert = x509.load_pem_x509_certificate(pem)
    cac = ca_cert(ca)
    assert cert.version == x509.Version.v3
    assert cert.serial_number > 0
    assert cert.serial_number.bit_length() >= 64
    assert (cert.serial_number.bit_length() + 8) // 8 <= 20
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == user
    assert cert.issuer == cac.subject
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca is False
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature
    assert ku.value.key_encipherment == (kind == "rsa2048")
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert list(eku.value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert ski.value.digest == x509.SubjectKeyIdentifier.from_public_key(
        cert.public_key()).digest
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    ca_ski = cac.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert aki.value.key_identifier == ca_ski.value.digest
    cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    assert [n.value for dp in cdp.value for n in dp.full_name] == [h.base + "/crl"]
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    assert [(d.access_method, d.access_location.value) for d in aia.value] == [
        (AuthorityInformationAccessOID.CA_ISSUERS, h.base + "/cacert.crt")]
    assert cert.signature_hash_algorithm.name == "sha256"
    assert cert.public_key().public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo) == \
        csr_key.public_key().public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert


def test_cacert_crt_and_pem(httpd, ca):
    st, hd, body = httpd.get("/ca/cacert.crt")
    assert st == 200
    assert hd["content-type"] == "application/x-x509-ca-cert"
    assert body == ca_cert(ca).public_bytes(serialization.Encoding.DER)
    st, hd, body = httpd.get("/ca/cacert.pem")
    assert st == 200
    assert x509.load_pem_x509_certificate(body) == ca_cert(ca)


@pytest.mark.parametrize("kind", ["p256", "p384", "rsa2048", "ed25519"])
def test_enroll_key_types(httpd, ca, kind):
    csr, key = make_csr(kind, cn="not-alice")
    st, hd, body = httpd.enroll(csr)
    assert st == 201, body
    assert hd["content-type"] == "application/x-pem-file"
    cert = check_issued(ca, httpd, body, key, "alice", kind)
    serial = "%X" % cert.serial_number
    if len(serial) % 2:
        serial = "0" + serial
    assert hd["location"] == httpd.base + "/certs/" + serial
    # the same bytes by serial, DER and PEM, any case, with colons
    st, hd2, der = httpd.get("/ca/certs/" + serial)
    assert st == 200 and hd2["content-type"] == "application/pkix-cert"
    assert der == cert.public_bytes(serialization.Encoding.DER)
    st, _, pem = httpd.get("/ca/certs/" + serial.lower() + ".pem")
    assert st == 200 and pem == body
    colons = ":".join(serial[i:i + 2] for i in range(0, len(serial), 2))
    st, _, der2 = httpd.get("/ca/certs/" + colons)
    assert st == 200 and der2 == der


def test_enroll_der_base64_and_accept_der(httpd, ca):
    der, key = make_csr("p256", encoding="der")
    st, hd, body = httpd.enroll(der)
    assert st == 201, body
    check_issued(ca, httpd, body, key, "alice", "p256")
    b64 = base64.encodebytes(der)  # 76-column lines with newlines
    st, hd, body = httpd.enroll(b64, headers={"Accept": "application/pkix-cert"})
    assert st == 201, body
    assert hd["content-type"] == "application/pkix-cert"
    cert = x509.load_der_x509_certificate(body)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"


def test_enroll_with_curl(httpd, ca, tmp_path):
    key = tmp_path / "k.pem"
    req = tmp_path / "r.csr"
    run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-subj",
         "/CN=bob", "-out", str(req)])
    st, headers, body = httpd.curl("-u", "bob:bob-secret-2", "-H",
                                   "Content-Type: application/pkcs10",
                                   "--data-binary", "@" + str(req),
                                   httpd.base + "/enroll")
    assert st == 201, body
    assert "Location: " + httpd.base + "/certs/" in headers
    rc, out = openssl_verify(ca, body)
    assert rc == 0, out


def test_serial_errors(httpd):
    for bad in ("xyz", "0" * 2 + "A" * 41, "12-34", "0"):
        st, hd, body = httpd.get("/ca/certs/" + bad)
        assert st == 400, (bad, st, body)
        assert hd["content-type"] == "application/json"
        assert set(json.loads(body)) == {"error", "detail"}
    st, hd, body = httpd.get("/ca/certs/0123456789ABCDEF")
    assert st == 404
    assert json.loads(body)["error"]


def test_methods(httpd):
    st, hd, body = httpd.get("/ca/enroll", user="alice")
    assert st == 405 and "POST" in hd["allow"]
    st, hd, body = httpd.request("POST", "/ca/cacert.crt", body=b"x")
    assert st == 405


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
    cert = x509.load_pem_x509_certificate(body)
    assert cert.subject.rfc4514_string() == "CN=bob,O=Example Org,C=FR"
    life = cert.not_valid_after - cert.not_valid_before
    assert datetime.timedelta(days=30) <= life <= datetime.timedelta(days=30, minutes=10)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.key_agreement and not ku.key_encipherment
    out = run(["sh", "-c", "true"])  # keep run imported for readability
    serial = "%X" % cert.serial_number
    r = run([__import__("harness").ADMIN, "show", "--db", "sqlite3:" + h.db,
             serial], user=h.user)
    assert b"profile:    people" in r.stdout
    assert b"owner:      bob" in r.stdout


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


@pytest.mark.parametrize("mpm", ["prefork", "worker"])
def test_other_mpms(make_httpd, ca, mpm):
    h = make_httpd(mpm=mpm)
    st, hd, body = h.get("/ca/cacert.crt")
    assert st == 200
    serials = set()
    for kind in ("p256", "rsa2048"):
        csr, key = make_csr(kind)
        st, hd, body = h.enroll(csr)
        assert st == 201, body
        cert = check_issued(ca, h, body, key, "alice", kind)
        serials.add(cert.serial_number)
        st, _, der = h.get(hd["location"][len(h.url):])
        assert st == 200 and der == cert.public_bytes(serialization.Encoding.DER)
    assert len(serials) == 2 and h.rows() == 2
