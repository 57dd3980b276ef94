"""Bad input gets its status, a JSON body, and leaves no row; the server
never answers 500 to bad input and never crashes."""
import base64
import json
import os
import random
import subprocess
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from conftest import make_csr, openssl_csr, weak_csr, flip_signature
from harness import run, assert_no_crash


def assert_json_error(st, hd, body, status):
    assert st == status, (st, body)
    assert hd["content-type"] == "application/json"
    doc = json.loads(body)
    assert set(doc) == {"error", "detail"} and doc["error"]
    assert isinstance(doc["detail"], str)
    return doc


P256 = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]


@pytest.fixture(scope="module")
def bad_inputs(ca):
    p256, _ = make_csr("p256")
    der, _ = make_csr("p256", encoding="der")
    rsa1024 = openssl_csr(["-newkey", "rsa:1024"])
    assert x509.load_pem_x509_csr(rsa1024).public_key().key_size == 1024
    ca_true = make_csr("p256", ca_true=True)[0]
    assert x509.load_pem_x509_csr(ca_true).extensions.get_extension_for_class(
        x509.BasicConstraints).value.ca
    ca_der = x509.load_pem_x509_certificate(ca.pem).public_bytes(
        serialization.Encoding.DER)
    return {
        # name: (body, content type, extra headers, user, status)
        "no login": (p256, "application/pkcs10", {}, None, 401),
        "wrong password": (p256, "application/pkcs10", {}, "mallory", 401),
        "json content type": (p256, "application/json", {}, "alice", 415),
        "image content type": (p256, "image/png", {}, "alice", 415),
        "form content type": (p256, "application/x-www-form-urlencoded",
                              {"X-Requested-With": "x"}, "alice", 415),
        "multipart content type": (p256, "multipart/form-data; boundary=x",
                                   {"X-Requested-With": "x"}, "alice", 415),
        "no content type": (p256, None, {}, "alice", 415),
        "text/plain without X-Requested-With": (p256, "text/plain", {},
                                                "alice", 403),
        "too large": (b"A" * 70000, "application/pkcs10", {}, "alice", 413),
        "garbage": (b"this is not a CSR", "application/pkcs10", {}, "alice",
                    400),
        "empty": (b"", "application/pkcs10", {}, "alice", 400),
        "truncated DER": (der[:len(der) // 2], "application/pkcs10", {},
                          "alice", 400),
        "truncated PEM": (p256[:len(p256) // 2], "application/pkcs10", {},
                          "alice", 400),
        "DER with trailing garbage": (der + b"\x00junk", "application/pkcs10",
                                      {}, "alice", 400),
        "bad base64": (b"MIIB!!!!", "application/pkcs10", {}, "alice", 400),
        "certificate PEM instead of CSR": (ca.pem, "application/pkcs10", {},
                                           "alice", 400),
        "certificate DER instead of CSR": (ca_der, "application/pkcs10", {},
                                           "alice", 400),
        "RSA 1024": (rsa1024, "application/pkcs10", {}, "alice", 422),
        "P-256 SHA-1 signature": (weak_csr(P256, "sha1"),
                                  "application/pkcs10", {}, "alice", 422),
        "RSA SHA-1 signature": (weak_csr(["-newkey", "rsa:2048"], "sha1"),
                                "application/pkcs10", {}, "alice", 422),
        "MD5 signature": (weak_csr(["-newkey", "rsa:2048"], "md5"),
                          "application/pkcs10", {}, "alice", 422),
        "bad signature": (flip_signature(p256), "application/pkcs10", {},
                          "alice", 422),
        "CA:TRUE requested": (ca_true, "application/pkcs10", {}, "alice",
                              422),
        "secp256k1": (make_csr("secp256k1")[0], "application/pkcs10", {},
                      "alice", 422),
        "P-521": (openssl_csr(["-newkey", "ec", "-pkeyopt",
                               "ec_paramgen_curve:P-521"]),
                  "application/pkcs10", {}, "alice", 422),
    }


BAD_NAMES = [
    "no login", "wrong password", "json content type", "image content type",
    "form content type", "multipart content type", "no content type",
    "text/plain without X-Requested-With", "too large", "garbage", "empty",
    "truncated DER", "truncated PEM", "DER with trailing garbage",
    "bad base64", "certificate PEM instead of CSR",
    "certificate DER instead of CSR", "RSA 1024", "P-256 SHA-1 signature",
    "RSA SHA-1 signature", "MD5 signature", "bad signature",
    "CA:TRUE requested", "secp256k1", "P-521",
]


def test_bad_names_cover_inputs(bad_inputs):
    assert sorted(BAD_NAMES) == sorted(bad_inputs)


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_input(httpd, bad_inputs, name):
    body, ctype, headers, user, status = bad_inputs[name]
    before = httpd.rows()
    st, hd, data = httpd.enroll(body, user=user, ctype=ctype, headers=headers)
    if status == 401 and st == 401 and \
            hd.get("content-type", "").startswith("text/html"):
        # httpd's own Basic authentication answered before the module (the
        # module's JSON 401 is test_401_from_module_without_login)
        assert hd.get("www-authenticate", "").startswith("Basic"), name
    else:
        assert_json_error(st, hd, data, status)
    assert "location" not in hd
    assert httpd.rows() == before, name


def test_bad_input_with_curl(httpd, tmp_path):
    """The same refusals seen by curl (the way operators enroll)."""
    key = tmp_path / "k.pem"
    req = tmp_path / "r.csr"
    run(["openssl", "req", "-new", "-newkey", "rsa:1024", "-nodes",
         "-keyout", str(key), "-subj", "/CN=x", "-out", str(req)])
    before = httpd.rows()
    st, headers, body = httpd.curl(
        "-u", "alice:alice-secret-1", "-H", "Content-Type: application/pkcs10",
        "--data-binary", "@" + str(req), httpd.base + "/enroll")
    assert st == 422, body
    doc = json.loads(body)
    assert set(doc) == {"error", "detail"}
    st, headers, body = httpd.curl(
        "-u", "alice:alice-secret-1", "-H", "Content-Type: application/json",
        "--data-binary", "@" + str(req), httpd.base + "/enroll")
    assert st == 415, body
    assert set(json.loads(body)) == {"error", "detail"}
    assert httpd.rows() == before


def test_chunked_body_over_limit(httpd):
    """A body without Content-Length is bounded as well."""
    before = httpd.rows()

    def chunks():
        for _ in range(25):
            yield b"B" * 4096

    st, hd, data = httpd.enroll(chunks())
    assert_json_error(st, hd, data, 413)
    # a chunked CSR within the bound is accepted
    pem, _ = make_csr("p256")
    st, hd, data = httpd.enroll(iter([pem[:100], pem[100:]]))
    assert st == 201, data
    assert httpd.rows() == before + 1


def test_configured_body_bound(make_httpd):
    h = make_httpd(location_conf="CertAuthMaxRequestBody 1024")
    big, _ = make_csr("rsa2048")            # about 1 KB PEM ...
    big = big + b"\n" * (1100 - len(big))   # ... over the bound
    st, hd, data = h.enroll(big)
    doc = assert_json_error(st, hd, data, 413)
    assert "1024" in doc["detail"]
    small, _ = make_csr("p256")
    st, hd, data = h.enroll(small)
    assert st == 201, data
    assert h.rows() == 1


def test_401_from_module_without_login(make_httpd):
    # enroll reached without any authentication configured: the module's own
    # JSON 401, nothing stored
    h = make_httpd(enroll_auth=False)
    csr, _ = make_csr("p256")
    st, hd, body = h.enroll(csr, user=None)
    assert_json_error(st, hd, body, 401)
    assert h.rows() == 0


def test_methods(httpd):
    st, hd, body = httpd.get("/ca/enroll", user="alice")
    assert_json_error(st, hd, body, 405)
    assert "POST" in hd["allow"]
    for method in ("PUT", "DELETE"):
        st, hd, body = httpd.request(method, "/ca/enroll", body=b"x",
                                     user="alice")
        assert_json_error(st, hd, body, 405)
    st, hd, body = httpd.request("POST", "/ca/cacert.crt", body=b"x")
    assert_json_error(st, hd, body, 405)


def fuzz_samples(n, seed):
    rnd = random.Random(seed)
    good, _ = make_csr("p256", encoding="der")
    pem, _ = make_csr("p256")
    samples = []
    for i in range(n):
        kind = i % 6
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
        elif kind == 4:
            body = base64.b64encode(good)[:rnd.randrange(1, 200)]
        else:
            # ASN.1 length fields made huge or inconsistent
            b = bytearray(good)
            pos = rnd.choice([1, 2, 3, 5, 6, 7])
            b[pos] = rnd.choice([0x80, 0x84, 0xff, 0x00, 0x7f])
            body = bytes(b)
        samples.append(body)
    return samples


def test_fuzz_never_500(httpd):
    samples = fuzz_samples(200, 1234)
    before = httpd.rows()
    issued = 0
    for body in samples:
        st, hd, data = httpd.enroll(body, timeout=10)
        assert st in (201, 400, 422), (st, data, body)
        if st != 201:
            assert_json_error(st, hd, data, st)
        issued += st == 201
    assert httpd.rows() == before + issued
    assert_no_crash(httpd)
    st, _, _ = httpd.get("/ca/cacert.crt")
    assert st == 200


def test_database_unavailable_503(make_httpd):
    h = make_httpd(db_path="/nonexistent-dir/certauth.db")
    csr, _ = make_csr("p256")
    st, hd, body = h.enroll(csr)
    assert_json_error(st, hd, body, 503)
    assert hd.get("retry-after", "").isdigit()
    st, hd, body = h.get("/ca/certs/0A0B0C")
    assert st == 503 and hd.get("retry-after", "").isdigit()
    # publishing the CA certificate needs no database
    st, _, _ = h.get("/ca/cacert.crt")
    assert st == 200


def test_database_not_sqlite_503(make_httpd):
    h = make_httpd(start=False)
    with open(h.db, "wb") as f:
        f.write(b"this is not an SQLite database\n" * 200)
    if h.user:
        import pwd
        pw = pwd.getpwnam(h.user)
        os.chown(h.db, pw.pw_uid, pw.pw_gid)
    h.start()
    csr, _ = make_csr("p256")
    st, hd, body = h.enroll(csr)
    assert_json_error(st, hd, body, 503)
    assert hd.get("retry-after", "").isdigit()
    with open(h.db, "rb") as f:
        assert f.read().startswith(b"this is not an SQLite database\n")


LOCKER = """
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
c.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
c.execute("ROLLBACK")
c.close()
"""


def test_database_locked_503_then_recovers(make_httpd):
    """Another writer holds the database: after the busy timeout the
    enrollment is refused with 503 + Retry-After and nothing is issued;
    once the lock is gone enrollment works again."""
    h = make_httpd()
    csr, _ = make_csr("p256")
    st, hd, body = h.enroll(csr)   # the schema exists, the file too
    assert st == 201, body
    before = h.rows()
    locker = subprocess.Popen(["/usr/bin/python3", "-c", LOCKER, h.db],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              user=h.user, group=h.user)
    try:
        assert locker.stdout.readline().strip() == b"locked"
        t0 = time.time()
        st, hd, body = h.enroll(make_csr("p256")[0], timeout=40)
        assert_json_error(st, hd, body, 503)
        assert hd.get("retry-after", "").isdigit()
        assert time.time() - t0 < 35
    finally:
        try:
            locker.communicate(b"\n", timeout=10)
        except subprocess.TimeoutExpired:
            locker.kill()
            locker.wait(5)
    assert h.rows() == before
    st, hd, body = h.enroll(make_csr("p256")[0])
    assert st == 201, body
    assert h.rows() == before + 1


def test_concurrent_enrollments(mpm_httpd):
    httpd = mpm_httpd
    before = httpd.rows()
    csrs = [make_csr("p256")[0] for _ in range(20)]
    results = [None] * len(csrs)

    def worker(i):
        try:
            results[i] = httpd.enroll(csrs[i], user=("alice", "bob")[i % 2],
                                      timeout=60)
        except Exception as e:   # reported below, per request
            results[i] = (None, {}, repr(e).encode())

    threads = [threading.Thread(target=worker, args=(i,))
               for i in range(len(csrs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    serials = set()
    for st, hd, body in results:
        assert st == 201, body
        cert = x509.load_pem_x509_certificate(body)
        serials.add(cert.serial_number)
        assert hd["location"].endswith("/certs/%0*X" % (
            (cert.serial_number.bit_length() + 7) // 8 * 2,
            cert.serial_number))
    assert len(serials) == 20
    assert httpd.rows() == before + 20
