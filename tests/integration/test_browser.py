"""The web pages (issue 7) in a real browser: Debian's chromium driven by
playwright-core (tests/browser/webpages.mjs) against a real apache2 with
mod_certauth, serving build/htdocs at /ca/ with the web-page lines of the
shipped conf/example-vhost.conf.  Then the files the browser saved are
checked with openssl and imported with NSS pk12util, and the API and the
CRL are asked whether the renewal and the revocations happened.

Needs `make web browser-deps` (make integration and make test run them).
Screenshots and the saved files stay in tests/out/browser/.
"""
import base64
import json
import os
import re
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from harness import REPO, USERS, run

HTDOCS_SRC = os.path.join(REPO, "htdocs")
WEB = os.path.join(REPO, "build", "htdocs")
BROWSER = os.path.join(REPO, "tests", "browser")
SCRIPT = os.path.join(BROWSER, "webpages.mjs")
OUT = os.path.join(REPO, "tests", "out", "browser")
VHOST_EXAMPLE = os.path.join(REPO, "conf", "example-vhost.conf")
P12_PASS = "Correct-Horse-7-battery"

# The Location's own profile: 20 days, so that the default renewal window
# (30 days) is open at once and the browser can renew what it just got.
LOC = """
        CertAuthSubjectRDN O "certauth tests"
        CertAuthSubjectRDN CN "%{REMOTE_USER}"
        CertAuthKeyTypes rsa:2048 ec:P-256 ec:P-384
        CertAuthExtendedKeyUsage clientAuth emailProtection
        CertAuthValidityDays 20
"""

# The pages that enroll need the login; My certificates the login or a
# certificate (the endpoints themselves are protected by the harness).
PAGES_AUTH = """
    <LocationMatch "^/ca/(request|pkcs12)\\.html$">
        AuthType Basic
        AuthName certauth-test
        AuthBasicProvider file
        AuthUserFile {users}
        Require valid-user
    </LocationMatch>
    <LocationMatch "^/ca/mycerts\\.html$">
        AuthType Basic
        AuthName certauth-test
        AuthBasicProvider file
        AuthUserFile {users}
        <RequireAny>
            Require ssl-verify-client
            Require valid-user
        </RequireAny>
    </LocationMatch>
"""


# An EST profile whose requests wait for an administrator (the admin part
# of My certificates approves one).
APPROVAL_PROFILE = """
    <CertAuthProfile appr>
        CertAuthApproval On
    </CertAuthProfile>
"""


def shipped_web_conf(web):
    """The web-page lines of conf/example-vhost.conf, pointed at web."""
    with open(VHOST_EXAMPLE) as f:
        text = f.read()
    m = re.search(r"# --- web pages: begin\n(.*?)# --- web pages: end", text,
                  re.S)
    assert m, "conf/example-vhost.conf has no web pages section"
    conf = m.group(1)
    assert "/usr/local/share/certauth/htdocs" in conf
    return conf.replace("/usr/local/share/certauth/htdocs", web)


def require_built():
    missing = [p for p in (os.path.join(WEB, "index.html"),
                           os.path.join(WEB, "js", "request.js"),
                           os.path.join(BROWSER, "node_modules",
                                        "playwright-core"))
               if not os.path.exists(p)]
    if missing:
        pytest.fail("missing %s: run `make web browser-deps`" % missing)
    for tool in ("node", "/usr/bin/chromium", "pk12util", "certutil"):
        if not shutil.which(tool):
            pytest.fail("%s is missing: run tests/install-deps.sh test" % tool)


def nss_db(path, ca_pem=None):
    """A fresh NSS database (what Firefox and Chromium on Linux use)."""
    os.makedirs(path, exist_ok=True)
    run(["certutil", "-N", "-d", "sql:" + path, "--empty-password"])
    if ca_pem:
        run(["certutil", "-A", "-d", "sql:" + path, "-n", "certauth test CA",
             "-t", "C,,", "-i", ca_pem])
    return path


def openssl_p12(p12, password, tmp):
    """openssl pkcs12 (OpenSSL 3 defaults, no -legacy): the protection it
    reports, the certificate and the key; the key must match."""
    info = run(["openssl", "pkcs12", "-info", "-noout", "-in", p12,
                "-passin", "pass:" + password]).stderr.decode()
    certs = run(["openssl", "pkcs12", "-in", p12, "-clcerts", "-nokeys",
                 "-passin", "pass:" + password]).stdout
    key = run(["openssl", "pkcs12", "-in", p12, "-nocerts", "-noenc",
               "-passin", "pass:" + password]).stdout
    cas = run(["openssl", "pkcs12", "-in", p12, "-cacerts", "-nokeys",
               "-passin", "pass:" + password]).stdout
    cert = x509.load_pem_x509_certificate(certs)
    k = serialization.load_pem_private_key(key, None)
    assert k.public_key().public_numbers() == \
        cert.public_key().public_numbers(), "key and certificate differ"
    # a wrong password is refused (the MAC is checked)
    bad = run(["openssl", "pkcs12", "-info", "-noout", "-in", p12,
               "-passin", "pass:wrong-" + password], check=False)
    assert bad.returncode != 0
    return info, cert, k, cas


def pk12util_import(p12, password, dbdir):
    """Import into a fresh NSS database: a user certificate with its key."""
    nss_db(dbdir)
    r = run(["pk12util", "-i", p12, "-d", "sql:" + dbdir, "-W", password],
            check=False)
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode == 0 and "SUCCESSFUL" in out, out
    certs = run(["certutil", "-L", "-d", "sql:" + dbdir]).stdout.decode()
    keys = run(["certutil", "-K", "-d", "sql:" + dbdir],
               check=False).stdout.decode()
    assert re.search(r"u,u,u", certs), certs
    assert re.search(r"<\s*0>\s+(ec|rsa)\s+[0-9a-f]{40}", keys), keys
    return certs, keys


def serial_hex(cert):
    s = "%X" % cert.serial_number
    return "0" + s if len(s) % 2 else s


def test_pages_reference_nothing_outside():
    """No page loads anything from another site, and nothing a strict
    Content-Security-Policy blocks: no inline scripts, styles or handlers."""
    bad = []
    attr = re.compile(r"""\b(src|href|action|formaction|poster|data|srcset|"""
                      r"""manifest|background|cite)\s*=\s*["']?([^"'\s>]*)""",
                      re.I)
    outside = re.compile(r"^([a-z][a-z0-9+.-]*:|//|\\\\)", re.I)
    for dirpath, dirs, files in os.walk(HTDOCS_SRC):
        dirs[:] = [d for d in dirs if d != "node_modules"]
        for name in files:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, REPO)
            if name.endswith((".json",)):
                continue
            with open(path, encoding="utf-8") as f:
                text = f.read()
            if name.endswith(".html"):
                for m in attr.finditer(text):
                    if outside.match(m.group(2)):
                        bad.append("%s: %s=%s" % (rel, m.group(1),
                                                  m.group(2)))
                if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text, re.I):
                    bad.append(rel + ": inline <script>")
                if re.search(r"<style\b|\sstyle\s*=", text, re.I):
                    bad.append(rel + ": inline style")
                if re.search(r"\son[a-z]+\s*=", text, re.I):
                    bad.append(rel + ": inline event handler")
                if re.search(r"http-equiv\s*=\s*[\"']?refresh", text, re.I):
                    bad.append(rel + ": meta refresh")
            elif name.endswith(".css"):
                for m in re.finditer(r"(url\(|@import)\s*[\"']?([^\"')\s]*)",
                                     text):
                    if outside.match(m.group(2)):
                        bad.append("%s: %s" % (rel, m.group(0)))
            elif name.endswith(".js"):
                for m in re.finditer(r"""["'`]((?:https?:)?//[^"'`]*)""",
                                     text):
                    bad.append("%s: %s" % (rel, m.group(1)))
                if re.search(r"\beval\(|new Function\(|innerHTML|"
                             r"document\.write", text):
                    bad.append(rel + ": eval/innerHTML/document.write")
    assert not bad, "\n".join(bad)


def test_browser_request_renew_revoke(make_httpd, ca, tmp_path):
    require_built()
    h = make_httpd(start=False, location_conf=LOC)
    # a copy of build/htdocs in the server root, which the children
    # (www-data when run as root) can read wherever the checkout is
    web = os.path.join(h.root, "web")
    shutil.copytree(WEB, web)
    h.vhost_conf = shipped_web_conf(web) + APPROVAL_PROFILE
    h.write_conf()
    # the pages' login, with the server's own users file, after the
    # harness's <Location /ca> (later sections win, as in the example vhost)
    with open(h.conf) as f:
        conf = f.read()
    i = conf.rindex("</VirtualHost>")
    with open(h.conf, "w") as f:
        f.write(conf[:i] + PAGES_AUTH.format(users=h.users_file) + conf[i:])
    h.start()

    # headers of the shipped configuration
    st, hd, body = h.get("/ca/")
    assert st == 200 and b"Certificate authority" in body
    assert "script-src 'self'" in hd["content-security-policy"]
    assert "default-src 'none'" in hd["content-security-policy"]
    assert hd["x-content-type-options"] == "nosniff"
    st, hd, _ = h.get("/ca")
    assert st == 301 and hd["location"].endswith("/ca/")
    assert h.get("/ca/request.html")[0] == 401
    assert h.get("/ca/request.html", user="alice")[0] == 200
    assert h.get("/ca/mycerts.html")[0] == 401

    # an EST enrollment that waits for approval
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([
        x509.NameAttribute(x509.NameOID.COMMON_NAME, "approve-in-browser")
    ])).sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    st, _, body = h.request(
        "POST", "/.well-known/est/appr/simpleenroll", user="alice",
        body=base64.b64encode(csr.public_bytes(serialization.Encoding.DER)),
        headers={"Content-Type": "application/pkcs10"})
    assert st == 202, body

    home = tmp_path / "home"
    nss_db(str(home / ".pki" / "nssdb"), ca.cert)
    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    env = dict(os.environ, HOME=str(home), NODE_EXTRA_CA_CERTS=ca.cert,
               CERTAUTH_URL="https://127.0.0.1:%d" % h.port,
               CERTAUTH_USERS=json.dumps(USERS), CERTAUTH_OUT=OUT,
               CERTAUTH_P12_PASS=P12_PASS)
    r = subprocess.run(["node", SCRIPT], env=env, cwd=BROWSER,
                       capture_output=True, timeout=240)
    out = (r.stdout + r.stderr).decode(errors="replace")
    print(out)
    assert r.returncode == 0, out + "\n" + h.log_tail()
    with open(os.path.join(OUT, "result.json")) as f:
        res = json.load(f)
    assert res["problems"] == []
    # axe-core on every state: no violations
    assert res["axe"] and all(v == [] for v in res["axe"].values()), res["axe"]

    # Home: the fingerprint the page computed is the CA's
    fp = run(["openssl", "x509", "-in", ca.cert, "-noout", "-fingerprint",
              "-sha256"]).stdout.decode().strip().split("=", 1)[1]
    assert res["fingerprint"] == fp
    assert "certauth test root CA" in res["ca_subject"]

    ca_cert = x509.load_pem_x509_certificate(ca.pem)
    made = {}
    for kind in ("ec", "rsa", "p384", "rsa3072", "fallback", "renewed"):
        p12 = res[kind]["file"]
        info, cert, key, cas = openssl_p12(p12, P12_PASS, tmp_path)
        # AES-256-CBC with PBKDF2/HMAC-SHA-256 and a SHA-256 MAC
        assert "MAC: sha256" in info, info
        assert re.search(r"Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, "
                         r"Iteration \d+, PRF hmacWithSHA256", info), info
        assert re.search(r"PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC",
                         info), info
        assert serial_hex(cert) == res[kind]["serial"]
        assert cert.issuer == ca_cert.subject
        assert b"certauth test root CA" in cas   # the chain comes along
        assert cert.subject.rfc4514_string() == "CN=alice,O=certauth tests"
        if kind.startswith("rsa"):
            assert isinstance(key, rsa.RSAPrivateKey), (kind, key)
            assert key.key_size == (3072 if kind == "rsa3072" else 2048)
        else:
            assert isinstance(key, ec.EllipticCurvePrivateKey), (kind, key)
            assert key.curve.name == ("secp384r1" if kind == "p384"
                                      else "secp256r1")
        run(["openssl", "verify", "-CAfile", ca.cert], input=cert.public_bytes(
            serialization.Encoding.PEM))
        certs, _ = pk12util_import(p12, P12_PASS,
                                   str(tmp_path / ("nss-" + kind)))
        # the friendly name pairs key and certificate: the CN, the CA's
        # name, the expiry and the serial (issue 16)
        assert re.search(r"^alice \(certauth test root CA, until "
                         r"\d{4}-\d\d-\d\d, serial %s\)\s+u,u,u"
                         % res[kind]["serial"][:8], certs, re.M), certs
        made[kind] = serial_hex(cert)

    # the API says what the browser did
    st, _, body = h.get("/ca/api/certs?owner=alice&limit=100", user="admin")
    assert st == 200, body
    certs = {c["serial"]: c for c in json.loads(body)["certificates"]}
    assert certs[made["ec"]]["status"] == "superseded"
    assert certs[made["ec"]]["replaced_by"] == made["renewed"]
    assert certs[made["renewed"]]["status"] == "valid"
    assert certs[made["rsa"]]["status"] == "revoked"
    assert certs[made["rsa"]]["reason"] == "keyCompromise"
    assert certs[made["fallback"]]["status"] == "revoked"
    assert certs[made["fallback"]]["reason"] == "affiliationChanged"
    # the administrator approved the EST request
    st, _, body = h.get("/ca/api/pending?status=approved", user="admin")
    assert st == 200, body
    approved = json.loads(body)["requests"]
    assert [p["owner"] for p in approved] == ["alice"], approved
    assert approved[0]["decided_by"] == "admin"
    assert "approve-in-browser" in res["pending_row"]
    # and the CRL lists the revocations
    st, _, der = h.get("/ca/crl")
    crl = x509.load_der_x509_crl(der)
    listed = {e.serial_number for e in crl}
    for kind in ("rsa", "fallback"):
        assert int(made[kind], 16) in listed

    for name in ("home", "request", "request-no-webcrypto", "pkcs12", "mycerts-login",
                 "mycerts-certificate", "revoke-dialog", "renewed", "admin",
                 "grid", "phone-home", "phone-request"):
        assert os.path.getsize(os.path.join(OUT, name + ".png")) > 1000


def test_server_pkcs12_legacy_with_openssl_and_pk12util(make_httpd, ca,
                                                        tmp_path):
    """The fallback's legacy option (3DES/SHA-1, for old importers) also
    imports with OpenSSL 3 and NSS."""
    require_built()
    h = make_httpd(location_conf=LOC)
    st, hd, body = h.request(
        "POST", "/ca/pkcs12", user="alice",
        body=json.dumps({"password": P12_PASS, "key_type": "rsa:2048",
                         "legacy": True}),
        headers={"Content-Type": "application/json"})
    assert st == 201, body
    p12 = str(tmp_path / "legacy.p12")
    with open(p12, "wb") as f:
        f.write(body)
    info = run(["openssl", "pkcs12", "-info", "-noout", "-in", p12,
                "-passin", "pass:" + P12_PASS]).stderr.decode()
    assert "MAC: sha1" in info, info
    assert re.search(r"Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC", info, re.I), info
    pk12util_import(p12, P12_PASS, str(tmp_path / "nss"))


# Issue 16: the bad paths.  The default profile allows 2 valid certificates
# of 20 days (renewal window open at once); "long" is 365 days (the window
# opens 30 days before expiry).
LOC_BAD = """
        CertAuthSubjectRDN O "certauth tests"
        CertAuthSubjectRDN CN "%{REMOTE_USER}"
        CertAuthKeyTypes rsa:2048 ec:P-256 ec:P-384
        CertAuthExtendedKeyUsage clientAuth emailProtection
        CertAuthValidityDays 20
        CertAuthMaxValidPerOwner 2
"""
LONG_PROFILE = """
    <CertAuthProfile long>
        CertAuthSubjectRDN O "certauth tests"
        CertAuthSubjectRDN CN "%{REMOTE_USER}"
        CertAuthExtendedKeyUsage clientAuth emailProtection
        CertAuthValidityDays 365
        CertAuthRenewalWindowDays 30
    </CertAuthProfile>
"""


# a page nobody may open: Apache's 403, answered with the site's page
FORBIDDEN = """
    <Location /ca/forbidden.html>
        Require all denied
    </Location>
"""


def start_pages_httpd(make_httpd, location_conf, extra_vhost):
    """An httpd with the shipped web-page lines (error documents included)
    and the pages' login, serving a copy of build/htdocs."""
    h = make_httpd(start=False, location_conf=location_conf)
    web = os.path.join(h.root, "web")
    shutil.copytree(WEB, web)
    h.vhost_conf = shipped_web_conf(web) + extra_vhost
    h.write_conf()
    with open(h.conf) as f:
        conf = f.read()
    i = conf.rindex("</VirtualHost>")
    with open(h.conf, "w") as f:
        f.write(conf[:i] + PAGES_AUTH.format(users=h.users_file)
                + FORBIDDEN + conf[i:])
    h.start()
    return h


def run_browser(h, ca, tmp_path, script):
    home = tmp_path / "home"
    nss_db(str(home / ".pki" / "nssdb"), ca.cert)
    os.makedirs(OUT, exist_ok=True)
    env = dict(os.environ, HOME=str(home), NODE_EXTRA_CA_CERTS=ca.cert,
               CERTAUTH_URL="https://127.0.0.1:%d" % h.port,
               CERTAUTH_USERS=json.dumps(USERS), CERTAUTH_OUT=OUT,
               CERTAUTH_P12_PASS=P12_PASS)
    r = subprocess.run(["node", os.path.join(BROWSER, script)], env=env,
                       cwd=BROWSER, capture_output=True, timeout=400)
    out = (r.stdout + r.stderr).decode(errors="replace")
    print(out)
    return r.returncode, out


def p12_info(p12):
    return run(["openssl", "pkcs12", "-info", "-noout", "-in", p12,
                "-passin", "pass:" + P12_PASS]).stderr.decode()


def p12_friendly_names(p12):
    out = run(["openssl", "pkcs12", "-in", p12, "-nodes", "-passin",
               "pass:" + P12_PASS]).stdout.decode()
    return re.findall(r"friendlyName: (.*)", out)


def test_browser_bad_paths(make_httpd, ca, tmp_path):
    """Issue 16: error documents, the password rule, the limit, renewal
    window, revocation, the administrator's search, every state checked by
    axe-core, at 390 px and with the keyboard (tests/browser/badpaths.mjs)."""
    require_built()
    h = start_pages_httpd(make_httpd, LOC_BAD, LONG_PROFILE)
    code, out = run_browser(h, ca, tmp_path, "badpaths.mjs")
    with open(os.path.join(OUT, "badpaths.json")) as f:
        res = json.load(f)
    # the error documents (checked after the browser, which records
    # every finding first) are the site's, the API's errors stay JSON
    st, hd, body = h.get("/ca/nothing-here")
    assert st == 404 and b'<html lang="en">' in body, body[:300]
    assert b'href="/ca/css/certauth.css"' in body
    st, hd, body = h.get("/ca/forbidden.html")
    assert st == 403 and b"Not allowed" in body, body[:300]
    st, hd, body = h.get("/ca/api/certs")
    assert st == 401 and b"<html" in body   # Apache's own 401: the page
    st, hd, body = h.get("/ca/api/certs?limit=x", user="alice")
    assert st == 400 and json.loads(body)["error"] == "bad request", body
    st, hd, body = h.request(
        "POST", "/ca/pkcs12", user="alice",
        body=json.dumps({"password": "Password123"}),
        headers={"Content-Type": "application/json"})
    assert st == 400 and json.loads(body)["error"] == "bad password", body

    failed = {k: v for k, v in res["checks"].items()
              if not v["ok"] and k not in res["xfail"]}
    assert not failed, json.dumps(failed, indent=1)
    assert res["problems"] == [], res["problems"]
    assert code == 0, out + "\n" + h.log_tail()
    for name, violations in res["axe"].items():
        assert violations == [], (name, violations)

    # the files: friendly name, iterations, names
    ca_name = "certauth test root CA"
    for kind in ("ec", "server"):
        p12 = res["files"][kind]
        info = p12_info(p12)
        names = p12_friendly_names(p12)
        cert = x509.load_pem_x509_certificate(run(
            ["openssl", "pkcs12", "-in", p12, "-clcerts", "-nokeys",
             "-passin", "pass:" + P12_PASS]).stdout)
        serial = serial_hex(cert)
        expect = "alice (%s, until %s, serial %s)" % (
            ca_name, cert.not_valid_after.strftime("%Y-%m-%d"),
            serial[:8])
        assert expect in names, (kind, names)
        assert re.search(r"Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, "
                         r"Iteration 100000, PRF hmacWithSHA256", info), info
        assert res["files"][kind + "_name"] == "alice-%s.p12" % serial[:8]
        certs, _ = pk12util_import(p12, P12_PASS,
                                   str(tmp_path / ("nss-bp-" + kind)))
        assert expect in certs, certs
