"""Fixtures: a test CA, apache2 servers with mod_certauth, CSR makers."""
import os
import subprocess
import tempfile

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from harness import TestCA, Httpd, run, MODULE, ADMIN


def pytest_sessionstart(session):
    for f in (MODULE, ADMIN):
        if not os.path.exists(f):
            raise pytest.UsageError("%s missing: run make first" % f)


@pytest.fixture(scope="session")
def ca(tmp_path_factory):
    root = tmp_path_factory.mktemp("ca")
    os.chmod(str(root), 0o755)
    return TestCA(str(root))


@pytest.fixture
def make_httpd(ca):
    """Factory: make_httpd(location_conf=..., mpm=...) -> started Httpd."""
    servers = []

    def factory(start=True, **kw):
        h = Httpd(ca, **kw)
        servers.append(h)
        if start:
            h.start()
        return h
    yield factory
    for h in servers:
        h.cleanup()


@pytest.fixture(scope="module")
def httpd(ca):
    """A shared event-MPM server for tests that only add certificates."""
    h = Httpd(ca)
    h.start()
    yield h
    h.cleanup()


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


@pytest.fixture
def csr():
    return make_csr
