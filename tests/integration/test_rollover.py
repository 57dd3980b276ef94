"""CA rollover (issue 18): a CA made by certauth-admin issues certificates
(Basic-auth enrollment, certauth-stunnel over EST); `certauth-admin
rollover` prepares a new key and certificate with the link certificates;
the server restarted on the new CA (CertAuthPreviousCACertificateFile,
CertAuthCALinkCertificates) and the same database: cacert.crt is the new
CA, cacert.pem and EST cacerts carry both and the links, old-CA client
certificates still identify their holders and renew into new-CA
certificates (curl, certauth-stunnel renew), and openssl verify accepts
old and new certificates with either root."""
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from conftest import make_csr
from harness import ADMIN, Httpd, run, assert_no_crash
from test_lifecycle import LOC, Holder, enroll
from test_stunnel import EST_CONF, OK, helper, password_file


class RollCA:
    """What harness.Httpd needs: TLS from the session test CA; clients
    and mod_ssl trust a bundle of the test CA and both CA generations."""

    def __init__(self, root, test_ca):
        self.root = root
        self.old_dir = os.path.join(root, "old")
        self.new_dir = os.path.join(root, "new")
        run([ADMIN, "init", "--dir", self.old_dir, "--subject",
             "CN=certauth rollover root CA,O=certauth tests"])
        self.old_cert = os.path.join(self.old_dir, "cacert.pem")
        self.old_key = os.path.join(self.old_dir, "private", "cakey.pem")
        self.new_cert = os.path.join(self.new_dir, "cacert.pem")
        self.new_key = os.path.join(self.new_dir, "private", "cakey.pem")
        self.links = os.path.join(self.new_dir, "links.pem")
        self.prev = os.path.join(self.new_dir, "previous-cacert.pem")
        self.test_pem = test_ca.pem
        self.server_cert = test_ca.server_cert
        self.server_key = test_ca.server_key
        self.cert = os.path.join(root, "trust.pem")
        self.write_trust()

    def write_trust(self):
        pem = open(self.old_cert, "rb").read() + self.test_pem
        if os.path.exists(self.new_cert):
            pem += open(self.new_cert, "rb").read()
        with open(self.cert, "wb") as f:
            f.write(pem)

    def old_directives(self):
        return ("CertAuthCACertificateFile %s\nCertAuthCAKeyFile %s\n"
                "CertAuthBaseURL https://127.0.0.1/ca\n"
                % (self.old_cert, self.old_key))

    def new_directives(self, prev_key=True):
        return ("CertAuthCACertificateFile %s\nCertAuthCAKeyFile %s\n"
                "CertAuthPreviousCACertificateFile %s\n"
                "%s"
                "CertAuthCALinkCertificates %s\n"
                "CertAuthBaseURL https://127.0.0.1/ca\n"
                % (self.new_cert, self.new_key, self.prev,
                   "CertAuthPreviousCAKeyFile %s\n" % self.old_key
                   if prev_key else "", self.links))


def load(path):
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def pem_certs(data):
    out = []
    for block in data.split(b"-----END CERTIFICATE-----")[:-1]:
        out.append(x509.load_pem_x509_certificate(
            block + b"-----END CERTIFICATE-----\n"))
    return out


def ski(cert):
    return cert.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier).value.digest


def aki(cert):
    return cert.extensions.get_extension_for_class(
        x509.AuthorityKeyIdentifier).value.key_identifier


def verify(trust, leaf_pem, tmp, untrusted=None):
    leaf = os.path.join(tmp, "leaf-verify.pem")
    with open(leaf, "wb") as f:
        f.write(leaf_pem)
    args = ["openssl", "verify", "-CAfile", trust]
    if untrusted:
        args += ["-untrusted", untrusted]
    r = run(args + [leaf], check=False)
    return r.returncode == 0, (r.stdout + r.stderr).decode()


@pytest.fixture
def roll(ca):
    root = tempfile.mkdtemp(prefix="certauth-rollover-")
    os.chmod(root, 0o755)
    try:
        yield RollCA(root, ca)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_rollover_command(roll, tmp_path):
    r = run([ADMIN, "rollover", "--ca-cert", roll.old_cert, "--ca-key",
             roll.old_key, "--dir", roll.new_dir])
    out = r.stdout.decode()
    assert "CertAuthPreviousCACertificateFile " + roll.prev in out
    old, new = load(roll.old_cert), load(roll.new_cert)
    assert new.subject == old.subject and ski(new) != ski(old)
    assert oct(os.stat(roll.new_key).st_mode & 0o777) == "0o600"
    nwo, own = pem_certs(open(roll.links, "rb").read())
    # NewWithOld: the new key, certified by the old CA; OldWithNew the
    # other way round; both valid until the old CA expires
    assert ski(nwo) == ski(new) and aki(nwo) == ski(old)
    assert ski(own) == ski(old) and aki(own) == ski(new)
    assert nwo.not_valid_after == old.not_valid_after
    assert own.not_valid_after == old.not_valid_after
    assert load(roll.prev) == old
    # a second run does not overwrite the new CA
    r = run([ADMIN, "rollover", "--ca-cert", roll.old_cert, "--ca-key",
             roll.old_key, "--dir", roll.new_dir], check=False)
    assert r.returncode == 1 and "not overwriting" in r.stderr.decode()
    assert load(roll.new_cert) == new


def test_bad_link_certificates(roll, ca):
    run([ADMIN, "rollover", "--ca-cert", roll.old_cert, "--ca-key",
         roll.old_key, "--dir", roll.new_dir])
    roll.write_trust()
    # links of another rollover do not join these two keys
    other = os.path.join(roll.root, "other")
    run([ADMIN, "rollover", "--ca-cert", roll.old_cert, "--ca-key",
         roll.old_key, "--dir", other])
    h = Httpd(roll, ca_directives=roll.new_directives().replace(
        roll.links, os.path.join(other, "links.pem")))
    try:
        rc, out = h.configtest()
    finally:
        h.cleanup()
    assert rc != 0
    assert "CertAuthCALinkCertificates" in out and "links neither" in out


def test_rollover_with_live_clients(roll, tmp_path):
    keydir = str(tmp_path / "keys")
    os.makedirs(keydir)
    wd = tempfile.mkdtemp(prefix="certauth-rollover-wd-")
    os.chmod(wd, 0o755)
    db = os.path.join(roll.root, "db", "certauth.db")
    os.makedirs(os.path.dirname(db))
    h1 = Httpd(roll, ca_directives=roll.old_directives(), location_conf=LOC,
               est_conf=EST_CONF, db_path=db)
    if h1.user:
        import pwd
        pw = pwd.getpwnam(h1.user)
        os.chown(os.path.dirname(db), pw.pw_uid, pw.pw_gid)
    h2 = None
    try:
        # --- before: the old CA issues -----------------------------------
        h1.start()
        alice = enroll(h1, keydir, user="alice")
        bob = enroll(h1, keydir, user="bob")
        dave = enroll(h1, keydir, user="bob")
        kc = os.path.join(wd, "key-cert.pem")
        rc, out, err = helper("enroll", "--url", h1.url, "--ca", roll.cert,
                              "--user", "admin", "--password-file",
                              password_file(wd), "--cn", "stunnel.localhost",
                              "--san", "DNS:localhost", "--out", kc)
        assert rc == OK, err
        old = load(roll.old_cert)
        st_old = x509.load_pem_x509_certificate(open(kc, "rb").read())
        for c in (alice.cert, bob.cert, st_old):
            assert aki(c) == ski(old)
        h1.stop()
        assert_no_crash(h1)

        # --- the rollover ------------------------------------------------
        run([ADMIN, "rollover", "--ca-cert", roll.old_cert, "--ca-key",
             roll.old_key, "--dir", roll.new_dir])
        roll.write_trust()     # mod_ssl and the clients: both roots
        new = load(roll.new_cert)
        h2 = Httpd(roll, ca_directives=roll.new_directives(),
                   location_conf=LOC, est_conf=EST_CONF, db_path=db)
        h2.start()

        # cacert.crt: the new CA; cacert.pem and EST cacerts: both + links
        st, _, body = h2.get("/ca/cacert.crt")
        assert st == 200 and x509.load_der_x509_certificate(body) == new
        st, _, body = h2.get("/ca/cacert.pem")
        got = pem_certs(body)
        assert len(got) == 4 and got[0] == new and old in got
        links = pem_certs(open(roll.links, "rb").read())
        assert all(l in got for l in links)
        st, _, body = h2.get("/.well-known/est/cacerts")
        assert st == 200
        p7 = run(["openssl", "pkcs7", "-inform", "DER", "-print_certs"],
                 input=base64.b64decode(body)).stdout
        assert len(pem_certs(p7)) == 4

        # an old-CA certificate still identifies alice; renewal (curl with
        # the old certificate) gives a certificate of the new CA
        r = run(["curl", "-sS", "--cacert", roll.cert, "--cert",
                 alice.cert_file, "--key", alice.key_file, "-X", "POST",
                 "-H", "X-Requested-With: curl",
                 "-o", "-", "-w", "\n%{http_code}", h2.url + "/ca/renew"],
                check=False)
        body, code = r.stdout.rsplit(b"\n", 1)
        assert code == b"201", r.stdout + r.stderr
        renewed = x509.load_pem_x509_certificate(body)
        assert aki(renewed) == ski(new)
        assert renewed.subject == alice.cert.subject
        # certauth-stunnel renew over EST with its old-CA certificate
        rc, out, err = helper("renew", "--url", h2.url, "--ca", roll.cert,
                              "--in", kc, "--force")
        assert rc == OK, (out, err)
        st_new = x509.load_pem_x509_certificate(_first_cert(kc))
        assert aki(st_new) == ski(new) and st_new.serial_number != \
            st_old.serial_number
        # a new enrollment: the new CA
        carol = enroll(h2, keydir, user="admin")
        assert aki(carol.cert) == ski(new)

        # openssl verify with either root: new certificates through
        # NewWithOld for the old root, old ones through OldWithNew for the
        # new root
        tmp = str(tmp_path)
        for leaf in (carol.pem, body):
            ok, why = verify(roll.new_cert, leaf, tmp)
            assert ok, why
            ok, why = verify(roll.old_cert, leaf, tmp, roll.links)
            assert ok, why
            ok, why = verify(roll.old_cert, leaf, tmp)
            assert not ok      # the old root alone does not know the new
        ok, why = verify(roll.new_cert, bob.pem, tmp, roll.links)
        assert ok, why
        ok, why = verify(roll.old_cert, bob.pem, tmp)
        assert ok, why
        # AIA caIssuers: each certificate names its own CA generation's
        # URL, which goes on serving that CA after the rollover (the old
        # CA for bob's certificate, not the new one of cacert.crt)
        for leaf, issuer in ((bob.cert, old), (st_old, old),
                             (carol.cert, new), (renewed, new)):
            url = ca_issuers(leaf)
            assert url == "https://127.0.0.1/ca/cacert/%s.crt" % \
                ski(issuer).hex(), url
            st, hd, der = h2.get("/" + url.split("/", 3)[3])
            assert st == 200, der
            assert hd.get("content-type") == "application/pkix-cert"
            got = x509.load_der_x509_certificate(der)
            assert got == issuer and ski(got) == aki(leaf)
            st, _, pem = h2.get("/" + url.split("/", 3)[3][:-4] + ".pem")
            assert st == 200 and pem_certs(pem) == [issuer]
        for bad in ("ab" * 20 + ".crt", ski(new).hex(), ski(new).hex()
                    + ".der"):
            st, _, body5 = h2.get("/ca/cacert/" + bad)
            assert st == 404, (bad, body5)
        # bob, not renewed yet, still reaches the API with his old-CA
        # certificate
        st, _, body2 = h2.request("GET", "/ca/api/certs",
                                  client_cert=bob.tls)
        assert st == 200, body2
        doc = json.loads(body2)
        assert doc.get("presented") == bob.serial, doc
        assert {c["serial"] for c in doc["certificates"]} == {bob.serial,
                                                               dave.serial}

        # --- each CA generation's CRL where its certificates look ---------
        # bob's old-CA certificate revoked (with itself), and carol's of
        # the new CA; dave (old) and the renewed alice (new) stay valid
        for holder, reason in ((bob, "keyCompromise"),
                               (carol, "superseded")):
            st, _, b3 = h2.request(
                "POST", "/ca/revoke", body=json.dumps(
                    {"serial": holder.serial, "reason": reason}),
                headers={"Content-Type": "application/json"},
                client_cert=holder.tls)
            assert st == 200, b3
        # the CDP of the old certificates is still base/crl; new ones name
        # base/crl/KEYID of the new CA
        assert cdp(bob.cert) == "https://127.0.0.1/ca/crl"
        new_kid = ski(new).hex()
        assert cdp(carol.cert) == "https://127.0.0.1/ca/crl/" + new_kid
        assert cdp(renewed) == cdp(carol.cert) != cdp(bob.cert)
        num = lambda c: c.extensions.get_extension_for_class(
            x509.CRLNumber).value.crl_number
        # made by the watchdog within CertAuthCRLDelay
        crl_old = poll(h2, cdp_path(bob.cert), lambda c: c.get_revoked_certificate_by_serial_number(bob.cert.serial_number) is not None)
        crl_new = poll(h2, cdp_path(carol.cert), lambda c: c.get_revoked_certificate_by_serial_number(carol.cert.serial_number) is not None)
        assert crl_new.issuer == new.subject and crl_old.issuer == old.subject
        assert crl_new.is_signature_valid(new.public_key())
        assert crl_old.is_signature_valid(old.public_key())
        assert not crl_old.is_signature_valid(new.public_key())
        assert crl_old.extensions.get_extension_for_class(
            x509.AuthorityKeyIdentifier).value.key_identifier == ski(old)
        # each lists only the certificates its CA issued
        assert crl_old.get_revoked_certificate_by_serial_number(
            carol.cert.serial_number) is None
        assert crl_new.get_revoked_certificate_by_serial_number(
            bob.cert.serial_number) is None
        # openssl verify -crl_check with the CRL each certificate names
        for holder, pem, root, revoked in (
                (bob, bob.pem, roll.old_cert, True),
                (dave, dave.pem, roll.old_cert, False),
                (carol, carol.pem, roll.new_cert, True),
                (None, body, roll.new_cert, False)):
            leaf = x509.load_pem_x509_certificate(pem)
            st, _, crl_pem = h2.get(cdp_path(leaf) + ".pem")
            assert st == 200, crl_pem
            lf = os.path.join(tmp, "leaf-%x.pem" % leaf.serial_number)
            cf = os.path.join(tmp, "crl-%x.pem" % leaf.serial_number)
            _write(lf, pem)
            _write(cf, crl_pem)
            r = run(["openssl", "verify", "-crl_check", "-CAfile", root,
                     "-CRLfile", cf, lf], check=False)
            out = r.stdout + r.stderr
            if revoked:
                assert r.returncode != 0 and b"revoked" in out, out
            else:
                assert r.returncode == 0, out
        # crl/previous and crl/KEYID of the old CA: the old CA's CRL (the
        # same as crl_old, or a later one: the watchdog may make one more
        # right after the one polled for, see revalidates)
        for path in ("/ca/crl/previous", "/ca/crl/" + ski(old).hex()):
            st, _, der = h2.get(path)
            assert st == 200, der
            c = x509.load_der_x509_crl(der)
            assert c == crl_old or (num(c) > num(crl_old)
                                    and c.issuer == old.subject
                                    and c.is_signature_valid(
                                        old.public_key())), path
        st, _, _ = h2.get("/ca/crl/" + "ab" * 20)
        assert st == 404
        # conditional GETs on both, as on the current CRL
        for path in (cdp_path(bob.cert), cdp_path(carol.cert)):
            revalidates(h2, path)
        # the previous CA's CRL is audited like the current one
        st, _, ab = h2.request("GET", "/ca/api/audit?limit=1000",
                               user="admin")
        assert st == 200, ab
        details = [e["detail"] for e in json.loads(ab)["events"]
                   if e["action"] == "crl"]
        assert any(d.startswith("previous CA's CRL number %d"
                                % num(crl_old)) for d in details), details
        # a later revocation: a new number on both, still each its own
        st, _, body4 = h2.request(
            "POST", "/ca/revoke", body=json.dumps(
                {"serial": dave.serial, "reason": "superseded"}),
            headers={"Content-Type": "application/json"},
            client_cert=dave.tls)
        assert st == 200, body4
        crl_old2 = poll(h2, "/ca/crl", lambda c: c.get_revoked_certificate_by_serial_number(dave.cert.serial_number) is not None)
        assert num(crl_old2) > num(crl_old)
        assert crl_old2.is_signature_valid(old.public_key())
        crl_new2 = poll(h2, cdp_path(carol.cert),
                        lambda c: num(c) >= num(crl_old2))
        assert crl_new2.get_revoked_certificate_by_serial_number(
            dave.cert.serial_number) is None

        # --- OCSP: certificates of both CAs answered ---------------------
        for leaf, issuer, want in ((bob.cert, old, ocsp.OCSPCertStatus.REVOKED),
                                   (dave.cert, old, ocsp.OCSPCertStatus.REVOKED),
                                   (st_new, new, ocsp.OCSPCertStatus.GOOD),
                                   (carol.cert, new, ocsp.OCSPCertStatus.REVOKED)):
            resp = ocsp_ask(h2, leaf, issuer)
            assert resp.response_status == \
                ocsp.OCSPResponseStatus.SUCCESSFUL, resp.response_status
            assert resp.certificate_status == want, (leaf.serial_number,
                                                     resp.certificate_status)
            # openssl checks the signature against the certificate's root
            rf = os.path.join(tmp, "ocsp-%x.der" % leaf.serial_number)
            lf = os.path.join(tmp, "ocsp-leaf-%x.pem" % leaf.serial_number)
            _write(rf, resp_der(h2, leaf, issuer))
            _write(lf, leaf.public_bytes(serialization.Encoding.PEM))
            isf = roll.old_cert if issuer == old else roll.new_cert
            r = run(["openssl", "ocsp", "-respin", rf, "-issuer", isf,
                     "-CAfile", isf, "-cert", lf], check=False)
            out = (r.stdout + r.stderr).decode()
            assert r.returncode == 0 and "Response verify OK" in out, out
        # --- OCSP: one request naming certificates of both CAs ----------
        # answered in one response, each CertID for its own CA (bob of the
        # old: revoked; st_new of the new: good), signed for the first
        # CertID's CA, as OpenSSL's own responder does with several -CA
        mixed_ocsp(h2, roll, tmp, [(bob.cert, roll.old_cert, "revoked"),
                                   (st_new, roll.new_cert, "good")])
        mixed_ocsp(h2, roll, tmp, [(st_new, roll.new_cert, "good"),
                                   (dave.cert, roll.old_cert, "revoked"),
                                   (carol.cert, roll.new_cert, "revoked")])
        # a certificate of the new CA asked with the old CA's hashes: the
        # old CA never issued that serial
        resp = ocsp_ask(h2, carol.cert, old)
        assert resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
        assert resp.certificate_status == ocsp.OCSPCertStatus.UNKNOWN
        # another CA's hashes: unauthorized, as before
        other = x509.load_pem_x509_certificate(roll.test_pem)
        resp = ocsp_ask(h2, bob.cert, other)
        assert resp.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED
        h2.stop()
        assert_no_crash(h2)
    finally:
        h1.cleanup()
        if h2:
            h2.cleanup()
        shutil.rmtree(wd, ignore_errors=True)


def cdp(cert):
    dps = cert.extensions.get_extension_for_class(
        x509.CRLDistributionPoints).value
    assert len(dps) == 1 and len(dps[0].full_name) == 1
    return dps[0].full_name[0].value


def ca_issuers(cert):
    aia = cert.extensions.get_extension_for_class(
        x509.AuthorityInformationAccess).value
    urls = [d.access_location.value for d in aia
            if d.access_method == x509.AuthorityInformationAccessOID.CA_ISSUERS]
    assert len(urls) == 1, urls
    return urls[0]


def cdp_path(cert):
    """The path of the certificate's CRL distribution point (the test
    server's base URL names 127.0.0.1 without its port)."""
    return "/" + cdp(cert).split("/", 3)[3]


def poll(h, path, pred, seconds=15):
    deadline = time.time() + seconds
    while True:
        st, _, der = h.get(path)
        assert st == 200, der
        crl = x509.load_der_x509_crl(der)
        if pred(crl):
            return crl
        assert time.time() < deadline, "%s: not on the CRL in time" % path
        time.sleep(0.2)


def revalidates(h, path, seconds=15):
    """A conditional GET with the served ETag (and Last-Modified) gets 304.
    The watchdog may make one more CRL right after the one polled for (a
    change of status counted after it was on the CRL): a 200 then carries
    a new ETag, and the pair is asked again."""
    deadline = time.time() + seconds
    while True:
        st, hd, _ = h.get(path)
        assert st == 200 and hd.get("etag") and hd.get("last-modified")
        st1, hd1, _ = h.get(path, headers={"If-None-Match": hd["etag"]})
        st2, hd2, _ = h.get(path, headers={
            "If-Modified-Since": hd["last-modified"]})
        if st1 == 304 and st2 == 304:
            return
        # never a 200 for the CRL that is still served
        assert st1 == 304 or hd1.get("etag") != hd["etag"], (path, st1)
        assert st2 == 304 or hd2.get("last-modified") != \
            hd["last-modified"], (path, st2)
        assert time.time() < deadline, "%s: no 304" % path
        time.sleep(0.5)


def resp_der(h, leaf, issuer):
    req = ocsp.OCSPRequestBuilder().add_certificate(
        leaf, issuer, hashes.SHA1()).build()
    st, hd, body = h.request(
        "POST", "/ca/ocsp", body=req.public_bytes(serialization.Encoding.DER),
        headers={"Content-Type": "application/ocsp-request"})
    assert st == 200, body
    return body


def mixed_ocsp(h, roll, tmp, asked):
    """`openssl ocsp -issuer A -cert a -issuer B -cert b` against h: a
    successful response with each status; openssl verifies it when the
    client trusts the responder (-VAfile, or the root marked for OCSP
    signing), not with a CA file alone (OpenSSL accepts a response whose
    CertIDs name one issuer only: ocsp_check_ids)."""
    args = []
    for i, (leaf, issuer, _) in enumerate(asked):
        lf = os.path.join(tmp, "mixed-%d.pem" % i)
        _write(lf, leaf.public_bytes(serialization.Encoding.PEM))
        args += ["-issuer", issuer, "-cert", lf]
    reqf = os.path.join(tmp, "mixed-req.der")
    run(["openssl", "ocsp", "-no_nonce", "-reqout", reqf] + args)
    st, _, body = h.request(
        "POST", "/ca/ocsp", body=open(reqf, "rb").read(),
        headers={"Content-Type": "application/ocsp-request"})
    assert st == 200, body
    resp = ocsp.load_der_ocsp_response(body)
    assert resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL, \
        resp.response_status
    got = [(r.serial_number, r.certificate_status.name.lower())
           for r in resp.responses]
    assert got == [(leaf.serial_number, want) for leaf, _, want in asked]
    rf = os.path.join(tmp, "mixed-resp.der")
    _write(rf, body)
    first_root = asked[0][1]
    # a CA file alone: the statuses, but no verification
    r = run(["openssl", "ocsp", "-respin", rf, "-CAfile", first_root] + args,
            check=False)
    out = (r.stdout + r.stderr).decode()
    assert "Response Verify Failure" in out, out
    for i, (_, _, want) in enumerate(asked):
        assert "mixed-%d.pem: %s" % (i, want) in out, out
    # the responder trusted as given (-VAfile: RFC 6960 4.2.2.2's local
    # configuration of OCSP signing authority)
    signer = resp.certificates[0] if resp.certificates else None
    vaf = os.path.join(tmp, "mixed-responder.pem")
    _write(vaf, signer.public_bytes(serialization.Encoding.PEM) if signer
           else open(first_root, "rb").read())
    r = run(["openssl", "ocsp", "-respin", rf, "-VAfile", vaf] + args,
            check=False)
    out = (r.stdout + r.stderr).decode()
    assert r.returncode == 0 and "Response verify OK" in out, out
    # or the first CertID's root trusted for OCSP signing
    trusted = os.path.join(tmp, "mixed-root-ocsp.pem")
    run(["openssl", "x509", "-in", first_root, "-addtrust", "OCSPSigning",
         "-out", trusted])
    r = run(["openssl", "ocsp", "-respin", rf, "-CAfile", trusted] + args,
            check=False)
    out = (r.stdout + r.stderr).decode()
    assert r.returncode == 0 and "Response verify OK" in out, out


def ocsp_ask(h, leaf, issuer):
    return ocsp.load_der_ocsp_response(resp_der(h, leaf, issuer))


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return True


def test_no_previous_key_no_previous_crl(roll):
    run([ADMIN, "rollover", "--ca-cert", roll.old_cert, "--ca-key",
         roll.old_key, "--dir", roll.new_dir])
    roll.write_trust()
    h = Httpd(roll, ca_directives=roll.new_directives(prev_key=False))
    try:
        h.start()
        st, _, body = h.get("/ca/crl/previous")
        assert st == 404 and b"CertAuthPreviousCAKeyFile" in body
        # base/crl is the previous CA's (its certificates name it): not the
        # new CA's CRL in its place
        st, _, body = h.get("/ca/crl")
        assert st == 404 and b"CertAuthPreviousCAKeyFile" in body
        h.stop()
        assert_no_crash(h)
    finally:
        h.cleanup()


def _first_cert(path):
    data = open(path, "rb").read()
    start = data.index(b"-----BEGIN CERTIFICATE-----")
    end = data.index(b"-----END CERTIFICATE-----", start)
    return data[start:end + len(b"-----END CERTIFICATE-----\n")]


def _cert_file(tmp, name, cert):
    path = os.path.join(tmp, name)
    _write(path, cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_rollover_twice_with_live_clients(roll, tmp_path):
    """A -> B -> C while A's certificates still live: C issues; A and B
    keep their CRLs (each at the URL its certificates name) and their OCSP
    answers, their certificates renew into C's; cacert.pem and EST cacerts
    carry the three CAs and both pairs of links; openssl verify accepts
    every generation's certificates with each root; `certauth-admin
    rollover` works a second time and carries A's lines over."""
    keydir = str(tmp_path / "keys")
    os.makedirs(keydir)
    tmp = str(tmp_path)
    db = os.path.join(roll.root, "db", "certauth.db")
    os.makedirs(os.path.dirname(db))
    c_dir = os.path.join(roll.root, "third")
    c_cert = os.path.join(c_dir, "cacert.pem")
    h1 = Httpd(roll, ca_directives=roll.old_directives(), location_conf=LOC,
               est_conf=EST_CONF, db_path=db)
    if h1.user:
        import pwd
        pw = pwd.getpwnam(h1.user)
        os.chown(os.path.dirname(db), pw.pw_uid, pw.pw_gid)
    h2 = h3 = None
    try:
        # --- A issues ------------------------------------------------------
        h1.start()
        a_alice = enroll(h1, keydir, user="alice")
        a_bob = enroll(h1, keydir, user="bob")
        a_dave = enroll(h1, keydir, user="bob")
        h1.stop()
        assert_no_crash(h1)

        # --- A -> B: B issues ----------------------------------------------
        r = run([ADMIN, "rollover", "--ca-cert", roll.old_cert, "--ca-key",
                 roll.old_key, "--dir", roll.new_dir])
        conf_b = open(os.path.join(roll.new_dir, "rollover.conf")).read()
        assert conf_b.count("CertAuthPreviousCACertificateFile") == 1
        roll.write_trust()
        h2 = Httpd(roll, ca_directives=conf_b + "CertAuthBaseURL "
                   "https://127.0.0.1/ca\n", location_conf=LOC,
                   est_conf=EST_CONF, db_path=db)
        h2.start()
        b_carol = enroll(h2, keydir, user="alice")
        b_frank = enroll(h2, keydir, user="admin")
        h2.stop()
        assert_no_crash(h2)

        # --- B -> C, the second rollover: A's lines carried over -----------
        r = run([ADMIN, "rollover", "--ca-cert", roll.new_cert, "--ca-key",
                 roll.new_key, "--dir", c_dir])
        out = r.stdout.decode()
        conf_c = open(os.path.join(c_dir, "rollover.conf")).read()
        assert conf_c.count("CertAuthPreviousCACertificateFile") == 2
        assert conf_c.count("CertAuthPreviousCAKeyFile") == 2
        assert conf_c.count("CertAuthCALinkCertificates") == 3
        assert roll.old_key in conf_c and roll.links in conf_c
        assert "CertAuthPreviousCACertificateFile " + roll.prev in out
        with open(roll.cert, "ab") as f:
            f.write(open(c_cert, "rb").read())
        A, B, C = load(roll.old_cert), load(roll.new_cert), load(c_cert)
        assert len({ski(A), ski(B), ski(C)}) == 3
        h3 = Httpd(roll, ca_directives=conf_c + "CertAuthBaseURL "
                   "https://127.0.0.1/ca\n", location_conf=LOC,
                   est_conf=EST_CONF, db_path=db)
        h3.start()
        c_erin = enroll(h3, keydir, user="admin")
        assert aki(c_erin.cert) == ski(C)

        # links.pem of the second rollover: NewWithOld, OldWithNew; and
        # A's key certified by C (OldWithNew straight to C) in a file of
        # its own, named after A's key identifier
        direct = os.path.join(c_dir, "link-%s.pem" % ski(A).hex())
        assert "CertAuthCALinkCertificates " + direct in conf_c
        links_c = pem_certs(open(os.path.join(c_dir, "links.pem"),
                                 "rb").read()) + pem_certs(
                                     open(direct, "rb").read())
        assert [(ski(l), aki(l)) for l in links_c] == [
            (ski(C), ski(B)), (ski(B), ski(C)), (ski(A), ski(C))]
        # cacert.crt: C; cacert.pem, EST cacerts: C, B, A, the links of
        # both rollovers (the first's first)
        st, _, body = h3.get("/ca/cacert.crt")
        assert st == 200 and x509.load_der_x509_certificate(body) == C
        st, _, body = h3.get("/ca/cacert.pem")
        got = pem_certs(body)
        links = pem_certs(open(roll.links, "rb").read()) + links_c
        assert got == [C, B, A] + links, len(got)
        st, _, body = h3.get("/.well-known/est/cacerts")
        assert st == 200
        p7 = run(["openssl", "pkcs7", "-inform", "DER", "-print_certs"],
                 input=base64.b64decode(body)).stdout
        assert len(pem_certs(p7)) == 8

        # renewal with an A certificate (curl) gives a C certificate
        r = run(["curl", "-sS", "--cacert", roll.cert, "--cert",
                 a_alice.cert_file, "--key", a_alice.key_file, "-X", "POST",
                 "-H", "X-Requested-With: curl", "-o", "-", "-w",
                 "\n%{http_code}", h3.url + "/ca/renew"], check=False)
        body, code = r.stdout.rsplit(b"\n", 1)
        assert code == b"201", r.stdout + r.stderr
        renewed = x509.load_pem_x509_certificate(body)
        assert aki(renewed) == ski(C)

        # AIA caIssuers of each generation: its own CA
        for leaf, issuer in ((a_bob.cert, A), (b_carol.cert, B),
                             (c_erin.cert, C)):
            url = ca_issuers(leaf)
            st, _, der = h3.get("/" + url.split("/", 3)[3])
            assert st == 200 and x509.load_der_x509_certificate(der) == \
                issuer, url

        # openssl verify: each generation's certificates with each root
        # (the links of both rollovers as untrusted intermediates)
        allinks = os.path.join(tmp, "all-links.pem")
        _write(allinks, open(roll.links, "rb").read()
               + open(os.path.join(c_dir, "links.pem"), "rb").read()
               + open(direct, "rb").read())
        bad = []
        for li, leaf in enumerate((a_bob.pem, b_carol.pem, c_erin.pem, body)):
            for ri, root in enumerate((roll.old_cert, roll.new_cert, c_cert)):
                ok, why = verify(root, leaf, tmp, allinks)
                if not ok:
                    bad.append((li, ri, why))
        assert not bad, bad

        # --- revocations on the three CRLs --------------------------------
        for holder in (a_bob, b_carol, c_erin):
            st, _, b3 = h3.request(
                "POST", "/ca/revoke", body=json.dumps(
                    {"serial": holder.serial, "reason": "keyCompromise"}),
                headers={"Content-Type": "application/json"},
                client_cert=holder.tls)
            assert st == 200, b3
        # A's name base/crl (A had no previous CA), B's and C's crl/KEYID
        assert cdp(a_bob.cert) == "https://127.0.0.1/ca/crl"
        assert cdp(b_carol.cert) == "https://127.0.0.1/ca/crl/" + \
            ski(B).hex()
        assert cdp(c_erin.cert) == "https://127.0.0.1/ca/crl/" + \
            ski(C).hex()
        crls = {}
        for holder, issuer in ((a_bob, A), (b_carol, B), (c_erin, C)):
            c = poll(h3, cdp_path(holder.cert),
                     lambda c, s=holder.cert.serial_number:
                     c.get_revoked_certificate_by_serial_number(s)
                     is not None)
            assert c.issuer == issuer.subject
            assert c.is_signature_valid(issuer.public_key())
            crls[ski(issuer)] = c
        # each lists only its own CA's certificates
        for holder, issuer in ((a_bob, A), (b_carol, B), (c_erin, C)):
            for other in (A, B, C):
                if other != issuer:
                    assert crls[ski(other)] \
                        .get_revoked_certificate_by_serial_number(
                            holder.cert.serial_number) is None
        # crl/previous: B (the CA before C); crl/KEYID of A: base/crl's
        st, _, der = h3.get("/ca/crl/previous")
        assert st == 200
        assert x509.load_der_x509_crl(der).issuer == B.subject
        assert x509.load_der_x509_crl(der).is_signature_valid(B.public_key())
        st, _, der = h3.get("/ca/crl/" + ski(A).hex())
        assert st == 200
        assert x509.load_der_x509_crl(der).is_signature_valid(A.public_key())
        # openssl verify -crl_check with the CRL each certificate names
        for holder, root, revoked in ((a_bob, roll.old_cert, True),
                                      (a_dave, roll.old_cert, False),
                                      (b_carol, roll.new_cert, True),
                                      (b_frank, roll.new_cert, False),
                                      (c_erin, c_cert, True)):
            st, _, crl_pem = h3.get(cdp_path(holder.cert) + ".pem")
            assert st == 200, crl_pem
            cf = os.path.join(tmp, "crl-%s.pem" % holder.serial)
            _write(cf, crl_pem)
            r = run(["openssl", "verify", "-crl_check", "-CAfile", root,
                     "-CRLfile", cf, holder.cert_file], check=False)
            o = r.stdout + r.stderr
            if revoked:
                assert r.returncode != 0 and b"revoked" in o, o
            else:
                assert r.returncode == 0, o
        # every generation's CRL is audited
        st, _, ab = h3.request("GET", "/ca/api/audit?limit=1000",
                               user="admin")
        details = [e["detail"] for e in json.loads(ab)["events"]
                   if e["action"] == "crl"]
        for issuer in (A, B):
            assert any(d.startswith("previous CA's CRL number")
                       and ski(issuer).hex() in d for d in details), details

        # --- OCSP for the three generations (openssl ocsp) ----------------
        for holder, root, want in (
                (a_bob, roll.old_cert, ocsp.OCSPCertStatus.REVOKED),
                (a_dave, roll.old_cert, ocsp.OCSPCertStatus.GOOD),
                (b_carol, roll.new_cert, ocsp.OCSPCertStatus.REVOKED),
                (b_frank, roll.new_cert, ocsp.OCSPCertStatus.GOOD),
                (c_erin, c_cert, ocsp.OCSPCertStatus.REVOKED)):
            issuer = load(root)
            resp = ocsp_ask(h3, holder.cert, issuer)
            assert resp.response_status == \
                ocsp.OCSPResponseStatus.SUCCESSFUL, resp.response_status
            assert resp.certificate_status == want, holder.serial
            rf = os.path.join(tmp, "ocsp-%s.der" % holder.serial)
            _write(rf, resp_der(h3, holder.cert, issuer))
            r = run(["openssl", "ocsp", "-respin", rf, "-issuer", root,
                     "-CAfile", root, "-cert", holder.cert_file],
                    check=False)
            o = (r.stdout + r.stderr).decode()
            assert r.returncode == 0 and "Response verify OK" in o, o
        # one request naming all three generations
        mixed_ocsp(h3, roll, tmp, [(a_dave.cert, roll.old_cert, "good"),
                                   (b_carol.cert, roll.new_cert, "revoked"),
                                   (c_erin.cert, c_cert, "revoked")])
        h3.stop()
        assert_no_crash(h3)
    finally:
        h1.cleanup()
        for h in (h2, h3):
            if h:
                h.cleanup()
