"""EST (RFC 7030) under /.well-known/est: every operation, labels, the 401
challenge flow, re-enrollment, request encodings, malformed input and manual
approval, against a real apache2.

Responses are decoded with the openssl command line (`openssl base64 -d |
openssl pkcs7 -inform DER -print_certs`, `openssl pkey`, `openssl asn1parse`)
and fetched with curl where a real client matters.  Where the exact bytes on
the wire matter (status line, Content-Length, no chunking, header spelling)
a raw TLS socket speaks HTTP/1.1 with keep-alive, so that a server that
would chunk the response could do so.
"""
import base64
import datetime
import json
import os
import re
import socket
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from harness import USERS, run, serving

EST = "/.well-known/est"
PKCS7_CERTS = "application/pkcs7-mime; smime-type=certs-only"

# Named profiles used as labels.  The Location's own profile (EST_CONF) is
# short-lived with a renewal window longer than its validity, so that
# simplereenroll is allowed at once (Location-own profiles are not checked
# for that contradiction).
VHOST_CONF = """
    <CertAuthProfile srv>
        CertAuthExtendedKeyUsage serverAuth
        CertAuthValidityDays 40
        CertAuthRenewalWindowDays 5
    </CertAuthProfile>
    <CertAuthProfile p384>
        CertAuthKeyTypes ec:P-384
    </CertAuthProfile>
    <CertAuthProfile closed>
        CertAuthRequire "%{REMOTE_USER} == 'nobody-at-all'"
    </CertAuthProfile>
    <CertAuthProfile appr>
        CertAuthApproval On
    </CertAuthProfile>
    <CertAuthProfile bycert>
        CertAuthEnrollWithCertificate On
    </CertAuthProfile>
"""
EST_CONF = """
        CertAuthValidityDays 1
        CertAuthRenewalWindowDays 2
"""


@pytest.fixture(scope="module")
def h(ca):
    """One event-MPM server for the whole module (tests that count rows
    compare before and after)."""
    yield from serving(ca, vhost_conf=VHOST_CONF, est_conf=EST_CONF)


# --------------------------------------------------------------------------
# a raw HTTP/1.1 client over TLS


class Resp:
    def __init__(self, status_line, headers, body, chunked_raw=None):
        self.status_line = status_line
        self.status = int(status_line.split()[1])
        self.headers = headers          # [(name, value)] as sent
        self.body = body
        self.chunked_raw = chunked_raw

    def all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def get(self, name):
        v = self.all(name)
        assert len(v) <= 1, (name, v)
        return v[0] if v else None

    def __repr__(self):
        return "<%s %r %r>" % (self.status_line, self.headers, self.body[:300])


def tls_context(h, cert=None):
    ctx = ssl.create_default_context(cafile=h.ca.cert)
    if cert:
        ctx.load_cert_chain(cert[0], cert[1])
    return ctx


def basic(user):
    cred = "%s:%s" % (user, USERS[user])
    return "Basic " + base64.b64encode(cred.encode()).decode()


def raw(h, method, path, body=None, headers=None, user=None, cert=None):
    """One request on a keep-alive HTTP/1.1 connection; reads exactly the
    response (by Content-Length, or by chunks when chunked) and checks that
    nothing follows it."""
    hdrs = [("Host", "127.0.0.1:%d" % h.port), ("User-Agent", "est-test")]
    if user:
        hdrs.append(("Authorization", basic(user)))
    for k, v in (headers or {}).items():
        hdrs.append((k, v))
    if body is not None:
        hdrs.append(("Content-Length", str(len(body))))
    req = "%s %s HTTP/1.1\r\n" % (method, path)
    req += "".join("%s: %s\r\n" % kv for kv in hdrs) + "\r\n"
    data = req.encode() + (body or b"")
    with socket.create_connection(("127.0.0.1", h.port), timeout=20) as s:
        with tls_context(h, cert).wrap_socket(
                s, server_hostname="127.0.0.1") as t:
            t.sendall(data)
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = t.recv(65536)
                assert chunk, "connection closed in the headers: %r" % buf
                buf += chunk
            head, rest = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            headers_out = []
            for line in lines[1:]:
                k, v = line.split(":", 1)
                headers_out.append((k, v.strip()))
            r = Resp(lines[0], headers_out, b"")
            te = r.get("Transfer-Encoding")
            cl = r.get("Content-Length")
            if method == "HEAD" or r.status in (204, 304):
                r.body = rest
                return r
            if te and "chunked" in te.lower():
                while not rest.endswith(b"0\r\n\r\n"):
                    chunk = t.recv(65536)
                    if not chunk:
                        break
                    rest += chunk
                r.chunked_raw = rest
                return r
            if cl is not None:
                n = int(cl)
                while len(rest) < n:
                    chunk = t.recv(65536)
                    assert chunk, "closed after %d of %d bytes" % (len(rest), n)
                    rest += chunk
                assert len(rest) == n, "more bytes than Content-Length"
                # the connection stays open and quiet: nothing beyond the
                # announced length
                t.settimeout(0.3)
                try:
                    extra = t.recv(65536)
                except (socket.timeout, TimeoutError):
                    extra = b""
                assert extra == b"", "bytes after the body: %r" % extra[:100]
                r.body = rest
                return r
            # neither: read until close
            while True:
                chunk = t.recv(65536)
                if not chunk:
                    break
                rest += chunk
            r.body = rest
            return r


def est_post(h, op, body, label=None, ctype="application/pkcs10",
             user="alice", cert=None, cte=None, extra=None):
    path = EST + ("/" + label if label else "") + "/" + op
    headers = {}
    if ctype:
        headers["Content-Type"] = ctype
    if cte:
        headers["Content-Transfer-Encoding"] = cte
    headers.update(extra or {})
    return raw(h, "POST", path, body=body, headers=headers, user=user,
               cert=cert)


def assert_wire(r):
    """What deployed EST clients rely on, for any response."""
    assert r.status_line.startswith("HTTP/1.1 "), r.status_line
    assert r.get("Transfer-Encoding") is None, r
    assert r.chunked_raw is None, r
    assert r.get("Content-Length") is not None, r
    assert int(r.get("Content-Length")) == len(r.body), r


def assert_text_error(r, status):
    assert r.status == status, r
    assert_wire(r)
    ct = r.get("Content-Type")
    assert ct and ct.split(";")[0].strip() == "text/plain", r
    assert r.body.strip(), "an error needs a reason: %r" % r


def assert_b64_lines(body):
    text = body.decode("ascii")
    lines = text.replace("\r\n", "\n").split("\n")
    assert lines[-1] == "", "the base64 ends with a line break"
    for line in lines[:-1]:
        assert 0 < len(line) <= 64, repr(line)
        assert re.fullmatch(r"[A-Za-z0-9+/=]+", line), repr(line)


# --------------------------------------------------------------------------
# openssl decoding


def curl_headers(text, name):
    """The values of header `name` in curl's -D output (last response)."""
    blocks = [b for b in re.split(r"\r?\n\r?\n", text) if b.strip()]
    out = []
    for line in blocks[-1].splitlines()[1:]:
        k, v = line.rstrip("\r").split(":", 1)
        if k.lower() == name.lower():
            out.append(v.strip())
    return out


def sh(cmd, data=None):
    return run(["sh", "-c", cmd], input=data)


def pkcs7_certs(b64):
    """`openssl base64 -d | openssl pkcs7 -inform DER -print_certs`: the
    certificates (cryptography objects) and the text openssl printed."""
    out = sh("openssl base64 -d | openssl pkcs7 -inform DER -print_certs",
             b64).stdout.decode()
    pems = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----",
                      out, re.S)
    return [x509.load_pem_x509_certificate(p.encode()) for p in pems], out


def openssl_verify(ca, cert, tmp_path):
    f = tmp_path / ("verify-%x.pem" % cert.serial_number)
    f.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    r = run(["openssl", "verify", "-x509_strict", "-CAfile", ca.cert,
             str(f)], check=False)
    return r.returncode, (r.stdout + r.stderr).decode()


def one_cert(ca, r, tmp_path):
    """A certs-only EST response: checked on the wire, decoded by openssl,
    verified against the CA; returns the certificate."""
    assert r.status == 200, r
    assert_wire(r)
    assert r.get("Content-Type") == PKCS7_CERTS, r
    assert r.get("Content-Transfer-Encoding") == "base64", r
    assert_b64_lines(r.body)
    certs, text = pkcs7_certs(r.body)
    assert len(certs) == 1, text
    rc, out = openssl_verify(ca, certs[0], tmp_path)
    assert rc == 0, out
    return certs[0]


def cn(cert):
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def spki(pub):
    return pub.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


# --------------------------------------------------------------------------
# CSRs


def csr_for(key=None, subject=None, sans=None, cn_value="est-client"):
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = subject or x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, cn_value)])
    b = x509.CertificateSigningRequestBuilder().subject_name(name)
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    req = b.sign(key, hashes.SHA256())
    return req.public_bytes(serialization.Encoding.DER), key


def b64(der):
    """base64 DER in 64-character lines, as EST clients send it."""
    s = base64.b64encode(der).decode()
    return ("\n".join(s[i:i + 64] for i in range(0, len(s), 64)) + "\n").encode()


def write_identity(tmp_path, name, cert, key):
    c = tmp_path / (name + ".crt")
    k = tmp_path / (name + ".key")
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    os.chmod(k, 0o600)
    return str(c), str(k)


def enroll_identity(h, ca, tmp_path, user="alice", name="id"):
    """A certificate of this CA for `user` by simpleenroll (Basic), with
    its key, written to files for TLS client authentication."""
    der, key = csr_for()
    cert = one_cert(ca, est_post(h, "simpleenroll", b64(der), user=user),
                    tmp_path)
    assert cn(cert) == user
    return cert, key, write_identity(tmp_path, name, cert, key)


def admin_certs(h, owner):
    st, hd, body = h.request("GET", "/ca/api/certs?owner=%s&limit=1000"
                             % owner, user="admin")
    assert st == 200, body
    return {int(c["serial"].replace(":", ""), 16): c
            for c in json.loads(body)["certificates"]}


# --------------------------------------------------------------------------
# cacerts and csrattrs (anonymous)


def test_cacerts_curl_openssl(h, ca):
    st, headers, body = h.curl(h.url + EST + "/cacerts")
    assert st == 200, body
    assert curl_headers(headers, "Content-Type") == [
        "application/pkcs7-mime"], headers
    assert curl_headers(headers, "Content-Transfer-Encoding") == [
        "base64"], headers
    certs, text = pkcs7_certs(body)
    cacert = x509.load_pem_x509_certificate(ca.pem)
    # the chain up to and including the self-signed root: here the root
    assert certs == [cacert], text
    assert "certauth test root CA" in text


def test_cacerts_wire_and_label(h, ca):
    for path in (EST + "/cacerts", EST + "/srv/cacerts"):
        r = raw(h, "GET", path)
        assert r.status == 200, r
        assert_wire(r)
        # exactly, with no parameter
        assert r.get("Content-Type") == "application/pkcs7-mime", r
        assert r.get("Content-Transfer-Encoding") == "base64", r
        assert_b64_lines(r.body)
        certs, _ = pkcs7_certs(r.body)
        assert certs == [x509.load_pem_x509_certificate(ca.pem)]
    r = raw(h, "GET", EST + "/no-such-label/cacerts")
    assert_text_error(r, 404)


def asn1parse(b64body):
    return sh("openssl base64 -d | openssl asn1parse -inform DER",
              b64body).stdout.decode()


def test_csrattrs(h):
    r = raw(h, "GET", EST + "/csrattrs")
    assert r.status == 200, r
    assert_wire(r)
    assert r.get("Content-Type") == "application/csrattrs", r
    assert r.get("Content-Transfer-Encoding") == "base64", r
    assert_b64_lines(r.body)
    text = asn1parse(r.body)
    assert text.splitlines()[0].rstrip().endswith("cons: SEQUENCE"), text
    # the defaults: RSA, P-256, P-384, Ed25519
    for oid in ("id-ecPublicKey", "prime256v1", "secp384r1",
                "rsaEncryption", "ED25519"):
        assert oid in text, (oid, text)

    # a profile allowing only P-384 says so, and nothing about P-256
    st, headers, body = h.curl(h.url + EST + "/p384/csrattrs")
    assert st == 200, body
    assert curl_headers(headers, "Content-Type") == [
        "application/csrattrs"], headers
    text = asn1parse(body)
    assert "secp384r1" in text, text
    assert "prime256v1" not in text, text
    assert "rsaEncryption" not in text, text


# --------------------------------------------------------------------------
# simpleenroll


def test_simpleenroll_wire(h, ca, tmp_path):
    before = h.rows()
    der, key = csr_for(cn_value="wire-client")
    r = est_post(h, "simpleenroll", b64(der))
    cert = one_cert(ca, r, tmp_path)        # wire checks, openssl verify
    assert r.status_line.startswith("HTTP/1.1 200"), r.status_line
    assert cn(cert) == "alice"              # the Location's own profile
    assert spki(cert.public_key()) == spki(key.public_key())
    life = cert.not_valid_after - cert.not_valid_before
    assert datetime.timedelta(days=1) <= life <= \
        datetime.timedelta(days=1, minutes=10)
    assert h.rows() == before + 1


def test_simpleenroll_curl_openssl_req(h, ca, tmp_path):
    """The README's recipe: openssl req | base64, curl -u, decode."""
    key = tmp_path / "host.key"
    sh("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
       "-keyout %s -subj /CN=host.example.org -outform DER | base64 > %s"
       % (key, tmp_path / "host.b64"))
    st, headers, body = h.curl(
        "-u", "bob:" + USERS["bob"], "-H", "Content-Type: application/pkcs10",
        "--data-binary", "@%s" % (tmp_path / "host.b64"),
        h.url + EST + "/simpleenroll")
    assert st == 200, body
    assert headers.startswith("HTTP/1.1 200"), headers
    assert curl_headers(headers, "Content-Type") == [PKCS7_CERTS], headers
    assert curl_headers(headers, "Content-Transfer-Encoding") == [
        "base64"], headers
    assert "chunked" not in headers.lower()
    certs, text = pkcs7_certs(body)
    assert len(certs) == 1, text
    rc, out = openssl_verify(ca, certs[0], tmp_path)
    assert rc == 0, out
    assert cn(certs[0]) == "bob"
    # the certificate carries the key of host.key
    pub = sh("openssl pkey -in %s -pubout" % key).stdout
    assert spki(certs[0].public_key()) == spki(
        serialization.load_pem_public_key(pub))


def test_simpleenroll_client_certificate(h, ca, tmp_path):
    cert, key, ident = enroll_identity(h, ca, tmp_path, user="bob")
    der, key2 = csr_for(cn_value="whatever")
    # no password: the certificate of this CA authenticates, for a profile
    # that allows it (CertAuthEnrollWithCertificate, issue 12); by default
    # a certificate alone does not obtain another one
    before = h.rows()
    r = est_post(h, "simpleenroll", b64(der), user=None, cert=ident)
    assert_text_error(r, 403)
    assert h.rows() == before
    r = est_post(h, "simpleenroll", b64(der), user=None, cert=ident,
                 label="bycert")
    new = one_cert(ca, r, tmp_path)
    assert cn(new) == "bob"                 # the certificate's owner
    assert new.serial_number != cert.serial_number
    assert spki(new.public_key()) == spki(key2.public_key())
    # and with curl
    der3, _ = csr_for()
    f = tmp_path / "c3.b64"
    f.write_bytes(b64(der3))
    st, headers, body = h.curl("--cert", ident[0], "--key", ident[1], "-H",
                               "Content-Type: application/pkcs10",
                               "--data-binary", "@%s" % f,
                               h.url + EST + "/bycert/simpleenroll")
    assert st == 200, body
    certs, text = pkcs7_certs(body)
    assert len(certs) == 1 and cn(certs[0]) == "bob", text


# --------------------------------------------------------------------------
# simplereenroll


def test_simplereenroll(h, ca, tmp_path):
    old, key, ident = enroll_identity(h, ca, tmp_path, user="alice")
    before = h.rows()
    # same subject, new key (rekey), with curl and the certificate
    der, key2 = csr_for(subject=old.subject)
    f = tmp_path / "re.b64"
    f.write_bytes(b64(der))
    st, headers, body = h.curl("--cert", ident[0], "--key", ident[1], "-H",
                               "Content-Type: application/pkcs10",
                               "--data-binary", "@%s" % f,
                               h.url + EST + "/simplereenroll")
    assert st == 200, (headers, body)
    assert curl_headers(headers, "Content-Type") == [PKCS7_CERTS], headers
    certs, text = pkcs7_certs(body)
    assert len(certs) == 1, text
    new = certs[0]
    rc, out = openssl_verify(ca, new, tmp_path)
    assert rc == 0, out
    assert new.serial_number != old.serial_number
    assert new.subject == old.subject
    assert spki(new.public_key()) == spki(key2.public_key())
    assert h.rows() == before + 1
    rows = admin_certs(h, "alice")
    assert rows[old.serial_number]["status"] == "superseded", \
        rows[old.serial_number]
    assert int(rows[old.serial_number]["replaced_by"].replace(":", ""),
               16) == new.serial_number
    assert rows[new.serial_number]["status"] == "valid"

    # the superseded certificate cannot re-enroll again
    der, _ = csr_for(subject=old.subject)
    r = est_post(h, "simplereenroll", b64(der), user=None, cert=ident)
    assert_text_error(r, 403)
    assert h.rows() == before + 1


def test_simplereenroll_same_sans_raw(h, ca, tmp_path):
    """The raw socket: HTTP/1.1, Content-Length, certs-only."""
    old, key, ident = enroll_identity(h, ca, tmp_path, user="bob")
    der, _ = csr_for(key=key, subject=old.subject)  # same key is fine too
    new = one_cert(ca, est_post(h, "simplereenroll", b64(der), user=None,
                                cert=ident), tmp_path)
    assert new.subject == old.subject
    assert new.serial_number != old.serial_number


def test_simplereenroll_mismatch_refused(h, ca, tmp_path):
    old, key, ident = enroll_identity(h, ca, tmp_path, user="alice")
    before = h.rows()
    # another subject
    der, _ = csr_for(cn_value="mallory")
    r = est_post(h, "simplereenroll", b64(der), user=None, cert=ident)
    assert_text_error(r, 400)
    assert b"subject" in r.body.lower(), r
    # the same subject with a subjectAltName the certificate does not have
    der, _ = csr_for(subject=old.subject,
                     sans=[x509.DNSName("extra.example.org")])
    r = est_post(h, "simplereenroll", b64(der), user=None, cert=ident)
    assert_text_error(r, 400)
    assert h.rows() == before
    assert admin_certs(h, "alice")[old.serial_number]["status"] == "valid"


def test_simplereenroll_revoked_refused(h, ca, tmp_path):
    old, key, ident = enroll_identity(h, ca, tmp_path, user="alice")
    serial = "%X" % old.serial_number
    st, hd, body = h.request(
        "POST", "/ca/revoke",
        body=json.dumps({"serial": serial, "reason": "keyCompromise"}),
        headers={"Content-Type": "application/json"}, user="admin")
    assert st == 200, body
    assert admin_certs(h, "alice")[old.serial_number]["status"] == "revoked"
    before = h.rows()
    der, _ = csr_for(subject=old.subject)
    r = est_post(h, "simplereenroll", b64(der), user=None, cert=ident)
    assert_text_error(r, 403)
    assert b"revoked" in r.body, r
    # a revoked certificate does not authenticate simpleenroll either
    # (401: a password may still do)
    r = est_post(h, "simpleenroll", b64(der), user=None, cert=ident)
    assert r.status == 401, r
    assert h.rows() == before


def test_simplereenroll_without_certificate(h, tmp_path):
    before = h.rows()
    der, _ = csr_for()
    # neither password nor certificate: httpd's challenge
    r = est_post(h, "simplereenroll", b64(der), user=None)
    assert r.status == 401, r
    assert r.get("WWW-Authenticate").startswith("Basic "), r
    # a password is not the certificate being renewed: still 401, not 403
    r = est_post(h, "simplereenroll", b64(der), user="alice")
    assert_text_error(r, 401)
    assert r.get("WWW-Authenticate"), r
    assert h.rows() == before


# --------------------------------------------------------------------------
# serverkeygen


def multipart(r):
    ct = r.get("Content-Type")
    m = re.fullmatch(r'multipart/mixed\s*;\s*boundary="?([^";]+)"?', ct)
    assert m, ct
    boundary = m.group(1).encode()
    body = r.body
    assert body.rstrip().endswith(b"--" + boundary + b"--"), body[-200:]
    parts = []
    for chunk in body.split(b"--" + boundary)[1:-1]:
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk
        head, content = chunk.split(b"\r\n\r\n", 1)
        hdrs = {}
        for line in head.decode().split("\r\n"):
            k, v = line.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
        parts.append((hdrs, content))
    return parts


def test_serverkeygen(h, ca, tmp_path):
    before = h.rows()
    der, csr_key = csr_for(cn_value="keygen-client")
    r = est_post(h, "serverkeygen", b64(der), user="bob")
    assert r.status == 200, r
    assert_wire(r)
    parts = multipart(r)
    assert [p[0]["content-type"] for p in parts] == [
        "application/pkcs8", PKCS7_CERTS], parts
    for hdrs, content in parts:
        assert hdrs["content-transfer-encoding"] == "base64"
        assert_b64_lines(content)
    key_b64, certs_b64 = parts[0][1], parts[1][1]

    # the key: openssl pkey reads the PKCS#8 DER
    keyfile = tmp_path / "server.key"
    out = sh("openssl base64 -d | openssl pkey -inform DER", key_b64)
    assert b"-----BEGIN PRIVATE KEY-----" in out.stdout
    keyfile.write_bytes(out.stdout)
    key_pub = sh("openssl pkey -in %s -pubout" % keyfile).stdout

    certs, text = pkcs7_certs(certs_b64)
    assert len(certs) == 1, text
    cert = certs[0]
    rc, vout = openssl_verify(ca, cert, tmp_path)
    assert rc == 0, vout
    assert cn(cert) == "bob"
    certfile = tmp_path / "server.crt"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    cert_pub = sh("openssl x509 -in %s -noout -pubkey" % certfile).stdout
    assert key_pub == cert_pub
    # the server's key, not the CSR's
    assert spki(cert.public_key()) != spki(csr_key.public_key())
    assert h.rows() == before + 1
    # never logged
    b64_line = key_b64.split(b"\r\n")[0].decode()
    assert b64_line not in h.log()


# --------------------------------------------------------------------------
# labels


def test_label_selects_profile(h, ca, tmp_path):
    der, _ = csr_for()
    cert = one_cert(ca, est_post(h, "simpleenroll", b64(der), label="srv"),
                    tmp_path)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    life = cert.not_valid_after - cert.not_valid_before
    assert datetime.timedelta(days=40) <= life <= \
        datetime.timedelta(days=40, minutes=10)
    rows = admin_certs(h, "alice")
    assert rows[cert.serial_number]["profile"] == "srv"
    # without a label: the Location's own profile (clientAuth, 1 day)
    cert = one_cert(ca, est_post(h, "simpleenroll", b64(der)), tmp_path)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_label_unknown_and_forbidden(h):
    before = h.rows()
    der, _ = csr_for()
    r = est_post(h, "simpleenroll", b64(der), label="no-such-label")
    assert_text_error(r, 404)
    r = est_post(h, "serverkeygen", b64(der), label="no-such-label")
    assert_text_error(r, 404)
    r = raw(h, "GET", EST + "/no-such-label/csrattrs")
    assert_text_error(r, 404)
    # a label key type policy applies: P-256 under the P-384-only label
    r = est_post(h, "simpleenroll", b64(der), label="p384")
    assert_text_error(r, 400)
    # more than one label segment is no EST path
    r = est_post(h, "simpleenroll", b64(der), label="srv/srv")
    assert r.status == 404, r
    assert h.rows() == before
    der, key = csr_for(key=ec.generate_private_key(ec.SECP384R1()))
    r = est_post(h, "simpleenroll", b64(der), label="p384")
    assert r.status == 200, r
    assert h.rows() == before + 1


def test_label_forbidden_403(h):
    """A label whose CertAuthRequire is false for the caller: 403 with a
    text/plain reason, for every operation that uses the profile."""
    before = h.rows()
    der, _ = csr_for()
    # csrattrs is public, as the README says, whatever the label's rule
    # (issue 12)
    r = raw(h, "GET", EST + "/closed/csrattrs")
    assert r.status in (200, 204), r
    for op in ("simpleenroll", "serverkeygen"):
        r = est_post(h, op, b64(der), label="closed")
        assert_text_error(r, 403)
    assert h.rows() == before


# --------------------------------------------------------------------------
# the 401 challenge flow


def test_challenge_flow_raw(h, ca, tmp_path):
    before = h.rows()
    der, _ = csr_for()
    for op in ("simpleenroll", "serverkeygen"):
        r = est_post(h, op, b64(der), user=None)
        assert r.status == 401, r          # never 403
        assert r.status_line.startswith("HTTP/1.1 401"), r.status_line
        assert r.get("WWW-Authenticate").startswith("Basic "), r
        assert_wire(r)
    # a wrong password: 401 again
    r = raw(h, "POST", EST + "/simpleenroll", body=b64(der),
            headers={"Content-Type": "application/pkcs10",
                     "Authorization": "Basic " + base64.b64encode(
                         b"alice:wrong").decode()})
    assert r.status == 401, r
    assert h.rows() == before
    # the client answers the challenge
    one_cert(ca, est_post(h, "simpleenroll", b64(der), user="alice"),
             tmp_path)
    assert h.rows() == before + 1


def test_challenge_flow_curl_anyauth(h, tmp_path):
    """curl --anyauth sends no credentials until it sees the challenge, as
    EST clients do."""
    der, _ = csr_for()
    f = tmp_path / "c.b64"
    f.write_bytes(b64(der))
    st, headers, body = h.curl("--anyauth", "-u", "alice:" + USERS["alice"],
                               "-H", "Content-Type: application/pkcs10",
                               "--data-binary", "@%s" % f,
                               h.url + EST + "/simpleenroll")
    statuses = [int(l.split()[1]) for l in headers.splitlines()
                if l.startswith("HTTP/")]
    assert statuses == [401, 200], headers
    assert re.search(r"^WWW-Authenticate: Basic ", headers, re.M | re.I)
    certs, text = pkcs7_certs(body)
    assert len(certs) == 1 and cn(certs[0]) == "alice", text


# --------------------------------------------------------------------------
# request encodings


def test_request_encodings(h, ca, tmp_path):
    before = h.rows()
    n = 0
    der, key = csr_for()
    s = base64.b64encode(der).decode()
    variants = {
        "crlf-and-spaces": ("\r\n".join(" " + s[i:i + 40] + "  "
                                        for i in range(0, len(s), 40))
                            + "\r\n").encode(),
        "one-line": s.encode(),
        "76-columns": base64.encodebytes(der),
        "der": der,
    }
    for name, body in variants.items():
        for cte in (None, "base64"):
            if name == "der" and cte:
                continue
            r = est_post(h, "simpleenroll", body, cte=cte)
            assert r.status == 200, (name, cte, r)
            cert = one_cert(ca, r, tmp_path)
            assert spki(cert.public_key()) == spki(key.public_key())
            n += 1
    # the media type with a parameter
    r = est_post(h, "simpleenroll", b64(der),
                 ctype="application/pkcs10; charset=us-ascii")
    assert r.status == 200, r
    n += 1
    assert h.rows() == before + n


# --------------------------------------------------------------------------
# malformed input, content types, methods


def test_malformed_400_no_row(h):
    before = h.rows()
    der, _ = csr_for()
    bad = {
        "not base64": b"!!!! this is not base64 at all ****\n",
        "base64 of garbage": base64.b64encode(os.urandom(300)) + b"\n",
        "truncated base64 DER": b64(der[:len(der) // 2]),
        "truncated DER": der[:len(der) - 10],
        "empty": b"",
        "DER of a certificate, not a CSR": b64(x509.load_pem_x509_certificate(
            h.ca.pem).public_bytes(serialization.Encoding.DER)),
    }
    for name, body in bad.items():
        for op in ("simpleenroll", "serverkeygen"):
            r = est_post(h, op, body)
            assert r.status == 400, (name, op, r)
            assert_text_error(r, 400)
    assert h.rows() == before


def test_wrong_content_type_415(h):
    before = h.rows()
    der, _ = csr_for()
    for ctype in ("application/json", None, "application/pkcs10x",
                  "text/plain"):
        for op in ("simpleenroll", "serverkeygen"):
            r = est_post(h, op, b64(der), ctype=ctype)
            assert_text_error(r, 415)
    assert h.rows() == before


def test_wrong_methods_405(h):
    r = raw(h, "GET", EST + "/simpleenroll", user="alice")
    assert_text_error(r, 405)
    assert "POST" in r.get("Allow"), r
    r = raw(h, "POST", EST + "/cacerts", body=b"x",
            headers={"Content-Type": "application/pkcs10"})
    assert_text_error(r, 405)
    assert "GET" in r.get("Allow"), r
    r = raw(h, "POST", EST + "/csrattrs", body=b"x",
            headers={"Content-Type": "application/pkcs10"})
    assert_text_error(r, 405)


# --------------------------------------------------------------------------
# manual approval


def pending(h, user="admin", status=None):
    path = "/ca/api/pending" + ("?status=" + status if status else "")
    st, hd, body = h.request("GET", path, user=user)
    return st, hd, body


def decide(h, rid, decision, user="admin"):
    return h.request("POST", "/ca/api/pending/" + rid,
                     body=json.dumps({"decision": decision}),
                     headers={"Content-Type": "application/json"}, user=user)


def find_pending(h, cn_value):
    st, hd, body = pending(h)
    assert st == 200, body
    assert hd["content-type"] == "application/json"
    found = [p for p in json.loads(body)["requests"]
             if cn_value in p["subject"]]
    assert len(found) == 1, body
    return found[0]


def test_approval_flow(h, ca, tmp_path):
    before = h.rows()
    der, key = csr_for(cn_value="approval-one")

    r = est_post(h, "simpleenroll", b64(der), label="appr")
    assert r.status == 202, r
    assert r.status_line.startswith("HTTP/1.1 202"), r.status_line
    assert_wire(r)
    assert re.fullmatch(r"[0-9]+", r.get("Retry-After") or ""), r
    assert int(r.get("Retry-After")) > 0
    assert h.rows() == before
    # the retry before a decision: 202 again, still one request
    r = est_post(h, "simpleenroll", b64(der), label="appr")
    assert r.status == 202, r
    assert r.get("Retry-After"), r
    assert h.rows() == before

    p = find_pending(h, "approval-one")
    assert p["owner"] == "alice"
    assert p["profile"] == "appr"
    assert p["status"] == "pending"
    assert p["id"]
    rid = p["id"]

    # not for everyone
    st, hd, body = pending(h, user="alice")
    assert st == 403, body
    st, hd, body = decide(h, rid, "approve", user="alice")
    assert st == 403, body
    st, hd, body = decide(h, rid, "maybe")
    assert st == 400, body
    st, hd, body = decide(h, "0123456789abcdef", "approve")
    assert st == 404, body

    st, hd, body = decide(h, rid, "approve")
    assert st == 200, body
    assert json.loads(body) == {"id": rid, "status": "approved"}
    assert h.rows() == before

    # the client's retry with the same CSR gets the certificate
    cert = one_cert(ca, est_post(h, "simpleenroll", b64(der), label="appr"),
                    tmp_path)
    assert cn(cert) == "alice"
    assert spki(cert.public_key()) == spki(key.public_key())
    assert h.rows() == before + 1
    # and the same one again, not a second certificate
    again = one_cert(ca, est_post(h, "simpleenroll", b64(der), label="appr"),
                     tmp_path)
    assert again.serial_number == cert.serial_number
    assert h.rows() == before + 1
    assert admin_certs(h, "alice")[cert.serial_number]["profile"] == "appr"
    # no longer in the pending list
    st, hd, body = pending(h)
    assert rid not in [q["id"] for q in json.loads(body)["requests"]], body

    # deciding twice
    st, hd, body = decide(h, rid, "reject")
    assert st == 409, body

    # a second request, rejected
    der2, _ = csr_for(cn_value="approval-two")
    r = est_post(h, "simpleenroll", b64(der2), label="appr")
    assert r.status == 202, r
    rid2 = find_pending(h, "approval-two")["id"]
    assert rid2 != rid
    st, hd, body = decide(h, rid2, "reject")
    assert st == 200, body
    assert json.loads(body) == {"id": rid2, "status": "rejected"}
    r = est_post(h, "simpleenroll", b64(der2), label="appr")
    assert_text_error(r, 403)
    r = est_post(h, "simpleenroll", b64(der2), label="appr")
    assert_text_error(r, 403)
    st, hd, body = decide(h, rid2, "approve")
    assert st == 409, body
    r = est_post(h, "simpleenroll", b64(der2), label="appr")
    assert_text_error(r, 403)
    assert h.rows() == before + 1


def test_approval_is_per_owner(h):
    """Bob retrying alice's CSR does not get alice's approval."""
    before = h.rows()
    der, _ = csr_for(cn_value="approval-three")
    r = est_post(h, "simpleenroll", b64(der), label="appr", user="alice")
    assert r.status == 202, r
    rid = find_pending(h, "approval-three")["id"]
    st, hd, body = decide(h, rid, "approve")
    assert st == 200, body
    r = est_post(h, "simpleenroll", b64(der), label="appr", user="bob")
    assert r.status == 202, r
    assert h.rows() == before
