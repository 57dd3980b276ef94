"""Fixtures: a test CA, apache2 servers with mod_certauth, CSR makers."""
import os
import tempfile

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from harness import (TestCA, Httpd, run, MODULE, BUILT_ADMIN, assert_no_crash,
                     serving)


def pytest_sessionstart(session):
    for f in (MODULE, BUILT_ADMIN):
        if not os.path.exists(f):
            raise pytest.UsageError("%s missing: run make first" % f)


@pytest.fixture(scope="session")
def ca(tmp_path_factory):
    root = tmp_path_factory.mktemp("ca")
    os.chmod(str(root), 0o755)
    return TestCA(str(root))


@pytest.fixture
def make_httpd(ca):
    """Factory: make_httpd(location_conf=..., mpm=...) -> started Httpd.
    Every server made is stopped when the test ends, pass or fail, and its
    error_log is checked for crashed children."""
    servers = []

    def factory(start=True, **kw):
        h = Httpd(ca, **kw)
        servers.append(h)
        if start:
            h.start()
        return h
    yield factory
    try:
        for h in servers:
            h.stop()
        for h in servers:
            assert_no_crash(h)
    finally:
        for h in servers:
            h.cleanup()


@pytest.fixture(scope="module")
def httpd(ca):
    """A shared event-MPM server for tests that only add certificates."""
    yield from serving(ca, mpm="event")


@pytest.fixture(scope="module", params=["event", "prefork"])
def mpm_httpd(request, ca):
    """The core tests (publishing, enrollment) run once per MPM."""
    yield from serving(ca, mpm=request.param)


def key_of(kind):
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "secp256k1":
        return ec.generate_private_key(ec.SECP256K1())
    if kind == "rsa2048":
        return rsa.generate_private_key(65537, 2048)
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(kind)


def make_csr(kind="p256", cn="ignored-by-ca", encoding="pem", ca_true=False,
             key=None):
    key = key or key_of(kind)
    b = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
    if ca_true:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None),
                            critical=True)
    algo = None if kind == "ed25519" else hashes.SHA256()
    csr = b.sign(key, algo)
    if encoding == "der":
        return csr.public_bytes(serialization.Encoding.DER), key
    return csr.public_bytes(serialization.Encoding.PEM), key


def openssl_csr(args, digest=None):
    """A CSR made by the openssl CLI (for weak keys and digests that
    python3-cryptography refuses to make)."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "req.pem")
        cmd = ["openssl", "req", "-new", "-nodes", "-keyout",
               os.path.join(d, "k.pem"), "-subj", "/CN=weak", "-out", out]
        cmd += args
        if digest:
            cmd.append("-" + digest)
        run(cmd)
        with open(out, "rb") as f:
            return f.read()


def weak_csr(keyargs, digest):
    """A CSR whose signature uses `digest` (sha1, md5): python3-cryptography
    refuses to sign with them, the openssl CLI does.  Checked, so that a
    CSR silently signed with something else cannot make a test pass."""
    pem = openssl_csr(keyargs, digest)
    req = x509.load_pem_x509_csr(pem)
    assert req.signature_hash_algorithm.name == digest, \
        req.signature_hash_algorithm
    assert req.is_signature_valid
    return pem


def flip_signature(pem):
    """The same CSR, DER, with one bit of its signature changed: it still
    parses, its signature no longer verifies."""
    der = x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER)
    b = bytearray(der)
    b[-5] ^= 0x01
    bad = x509.load_der_x509_csr(bytes(b))
    assert not bad.is_signature_valid
    return bytes(b)


@pytest.fixture
def csr():
    return make_csr
