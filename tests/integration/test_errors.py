"""Bad input gets its status, a JSON body, and leaves no row; the server
never answers 500 to bad input and never crashes."""
import base64
import json
import os
import random
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from conftest import make_csr, openssl_csr


def assert_json_error(st, hd, body, status):
    assert st == status, (st, body)
    assert hd["content-type"] == "application/json"
    doc = json.loads(body)
    assert set(doc) == {"error", "detail"} and doc["error"]
    return doc


def flip_signature(pem):
    """The same CSR with one bit of its signature changed."""
    der = x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER)
    b = bytearray(der)
    b[-5] ^= 0x01
    return bytes(b)


@pytest.fixture(scope="module")
def bad_inputs():
    p256, _ = make_csr("p256")
    der, _ = make_csr("p256", encoding="der")
    return [
        # (name, body, content type, headers, user, status)
        ("no login", p256, "application/pkcs10", {}, None, 401),
        ("wrong password", p256, "application/pkcs10", {}, "mallory", 401),
        ("json content type", p256, "application/json", {}, "alice", 415),
        ("image content type", p256, "image/png", {}, "alice", 415),
        ("form content type", p256, "application/x-www-form-urlencoded",
         {"X-Requested-With": "x"}, "alice", 415),
        ("no content type", p256, None, {}, "alice", 415),
        ("text/plain without X-Requested-With", p256, "text/plain", {},
         "alice", 403),
        ("too large", b"A" * 70000, "application/pkcs10", {}, "alice", 413),
        ("garbage", b"this is not a CSR", "application/pkcs10", {}, "alice",
         400),
        ("empty", b"", "application/pkcs10", {}, "alice", 400),
        ("truncated DER", der[:len(der) // 2], "application/pkcs10", {},
         "alice", 400),
        ("bad base64", b"MIIB!!!!", "application/pkcs10", {}, "alice", 400),
        ("certificate instead of CSR", open(
            os.path.join(os.path.dirname(__file__), "conftest.py"), "rb").read(),
         "application/pkcs10", {}, "alice", 400),
        ("RSA 1024", openssl_csr(["-newkey", "rsa:1024"]),
         "application/pkcs10", {}, "alice", 422),
        ("SHA-1 signature", openssl_csr(["-newkey", "ec", "-pkeyopt",
                                         "ec_paramgen_curve:P-256"], "sha1"),
         "application/pkcs10", {}, "alice", 422),
        ("MD5 signature", openssl_csr(["-newkey", "rsa:2048"], "md5"),
         "application/pkcs10", {}, "alice", 422),
        ("bad signature", flip_signature(p256), "application/pkcs10", {},
         "alice", 422),
        ("CA:TRUE requested", make_csr("p256", ca_true=True)[0],
         "application/pkcs10", {}, "alice", 422),
        ("secp256k1", make_csr("secp256k1")[0], "application/pkcs10", {},
         "alice", 422),
        ("Ed448/other curve P-521", openssl_csr(
            ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"]),
         "application/pkcs10", {}, "alice", 422),
    ]


def test_bad_inputs(httpd, bad_inputs):
    before = httpd.rows()
    for name, body, ctype, headers, user, status in bad_inputs:
        st, hd, data = httpd.enroll(body, user=user, ctype=ctype,
                                    headers=headers)
        if status == 401 and st == 401 and hd.get("content-type", "").startswith("text/html"):
            # httpd's own Basic authentication answered before the module
            assert "www-authenticate" in hd, name
            continue
        assert st == status, (name, st, data)
        assert_json_error(st, hd, data, status)
    assert httpd.rows() == before
    log = httpd.log()
    assert "exit signal" not in log


def test_401_from_module_when_location_has_no_login(make_httpd):
    # enroll reached without any authentication configured: the module's own
    # JSON 401, nothing stored
    h = make_httpd(enroll_auth=False)
    csr, _ = make_csr("p256")
    st, hd, body = h.enroll(csr, user=None)
    assert_json_error(st, hd, body, 401)
    assert h.rows() == 0


def test_fuzz_never_500(httpd):
    rnd = random.Random(1234)
    good, _ = make_csr("p256", encoding="der")
    pem, _ = make_csr("p256")
    samples = []
    for i in range(150):
        kind = i % 5
        if kind == 0:
            body = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 600)))
        elif kind == 1:
            b = bytearray(good)
            for _ in range(rnd.randint(1, 8)):
                b[rnd.randrange(len(b))] = rnd.getrandbits(8)
            body = bytes(b)
        elif kind == 2:
            body = good[:rnd.randrange(len(good))]
        elif kind == 3:
            b = bytearray(pem)
            b[rnd.randrange(len(b))] = rnd.choice(b"AZaz09+/=-\n ")
            body = bytes(b)
        else:
            body = base64.b64encode(good)[:rnd.randrange(1, 200)]
        samples.append(body)
    before = httpd.rows()
    issued = 0
    for body in samples:
        st, hd, data = httpd.enroll(body)
        assert st in (201, 400, 422), (st, data, body)
        issued += st == 201
    assert httpd.rows() == before + issued
    assert "exit signal" not in httpd.log()
    st, _, _ = httpd.get("/ca/cacert.crt")
    assert st == 200


def test_database_unavailable_503(make_httpd, tmp_path):
    h = make_httpd(db_path="/nonexistent-dir/certauth.db")
    csr, _ = make_csr("p256")
    st, hd, body = h.enroll(csr)
    assert_json_error(st, hd, body, 503)
    assert hd.get("retry-after", "").isdigit()
    st, hd, body = h.get("/ca/certs/0A0B0C")
    assert st == 503 and hd.get("retry-after")
    # publishing the CA certificate needs no database
    st, _, _ = h.get("/ca/cacert.crt")
    assert st == 200


def test_concurrent_enrollments(httpd):
    before = httpd.rows()
    csrs = [make_csr("p256")[0] for _ in range(20)]
    results = [None] * len(csrs)

    def worker(i):
        results[i] = httpd.enroll(csrs[i], user=("alice", "bob")[i % 2])

    threads = [threading.Thread(target=worker, args=(i,))
               for i in range(len(csrs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    serials = set()
    for st, hd, body in results:
        assert st == 201, body
        serials.add(x509.load_pem_x509_certificate(body).serial_number)
    assert len(serials) == 20
    assert httpd.rows() == before + 20
